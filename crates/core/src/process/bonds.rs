//! A process's bonds to other processes (links, monitors both ways, exit hooks, the calls
//! it holds) and its life state (alive, exit reason, closed), with the protocols that
//! make and break them: linking, monitoring, and the exit announcement.
//!
//! This is the part of a process that those protocols work on, cut out of the
//! [`Header`](super::Header) so that it needs no runtime: where the other processes live
//! and how they are told of an exit is a [`Peers`], the runtime's process table in
//! production (`signal.rs`) and a model's own table under loom (`tests/loom_signals.rs`).
//! The header holds a `Bonds` as a field and forwards to it; after monomorphisation the
//! production code is the code it was before the cut (same locks, same order, same
//! lookups), and the loom models drive these same functions.
//!
//! Invariants:
//! - `exit_reason` is set once, by the first [`Bonds::begin_exit`]; `alive` turns false
//!   right after, and never back. Everything that reads the reason checks `alive` first.
//! - `watchers.closed` turns true once, in [`Bonds::announce`], after the process's names
//!   are released; links, monitors and hooks added later are refused (the caller then acts
//!   as if the target were already dead: `NoProc`).
//! - `calls.closed` turns true once, in `announce`, when the calls the process holds are
//!   failed with its exit reason; a call it dequeues later is failed at once.
//! - No two of these locks are ever held at once (nor one of them with a lock of another
//!   process), and no lock is held while user code (a hook, an observer, a message's
//!   `Drop`) runs or while another process is told anything.

// Items are `pub` (in a private module) so that the loom models can reach them through
// `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::error::CallError;
use crate::reply::Abort;
use crate::sync::{AtomicBool, Mutex, Ordering, Serial};
use crate::{ExitReason, NoProc, Pid};
use slab::Slab;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

/// Identifies one monitor: fresh for each `monitor` call (S31).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef(pub(crate) u64);

/// Fresh monitor and hook references (one sequence for both).
static NEXT_REF: Serial = Serial::new(1);

impl MonitorRef {
    /// A reference never handed out before.
    pub fn fresh() -> MonitorRef {
        MonitorRef(NEXT_REF.next())
    }
}

/// Identifies one exit hook (see `RuntimeHandle::on_exit`), for its removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookRef(pub(crate) u64);

/// Told when a process exits: the seam behind which a remote monitor or link can stand,
/// and how code outside any process waits for an exit.
pub trait ExitObserver: Send + Sync + 'static {
    /// `pid` exited with `reason`. Runs on the thread that ended the process: keep it
    /// short and never block.
    fn on_exit(&self, pid: Pid, reason: &ExitReason);
}

impl<F> ExitObserver for F
where
    F: Fn(Pid, &ExitReason) + Send + Sync + 'static,
{
    fn on_exit(&self, pid: Pid, reason: &ExitReason) {
        self(pid, reason)
    }
}

/// Who hears of a process's exit through a monitor.
pub enum Watcher {
    /// A process: gets `handle_down`.
    Process(Pid),
    /// Anything else (an outside waiter, a remote node): its callback runs.
    Observer(Arc<dyn ExitObserver>),
}

/// Where the processes that a protocol step reaches live, and how they are told.
///
/// Production: the runtime's process table (`impl Peers for RtShared` in `signal.rs`);
/// a loom model: its own small table. Every method is called with no lock of any
/// [`Bonds`] held.
pub trait Peers {
    /// A process found by pid.
    type Proc;
    /// The process `pid` while the table holds it (alive, or exiting and not yet
    /// finalized); `None` once it is gone.
    fn find(&self, pid: Pid) -> Option<Self::Proc>;
    /// The process's bonds.
    fn bonds(p: &Self::Proc) -> &Bonds;
    /// An exit signal from `from`: kills `p`, is queued as a message if it traps exits,
    /// or is ignored (a `Normal` signal from another process), as `deliver_exit` decides.
    fn exit_signal(&self, p: &Self::Proc, from: Pid, reason: ExitReason);
    /// Queues the message of a trapped exit signal (`{'EXIT', from, reason}`) for `p`.
    fn exit_message(&self, p: &Self::Proc, from: Pid, reason: ExitReason);
    /// Queues a `Down` for `p`: its monitor `monitor` of `pid` fired with `reason`.
    fn down(&self, p: Self::Proc, monitor: MonitorRef, pid: Pid, reason: ExitReason);
}

struct Watchers {
    closed: bool,
    links: Vec<Pid>,
    /// Monitors on this process: who to tell when it exits.
    monitors: Vec<(MonitorRef, Watcher)>,
    /// Monitors this process holds on others (the target of each): removed from their
    /// targets when this process exits, so a dead watcher leaves nothing behind.
    held_monitors: Vec<(MonitorRef, Pid)>,
    hooks: Vec<(HookRef, Arc<dyn ExitObserver>)>,
}

/// The calls (and stop requests) a process holds: failed with its exit reason when it
/// exits. Crate-visible for [`HeldCalls`].
pub struct Calls {
    closed: bool,
    held: Slab<Arc<dyn Abort>>,
}

/// Counts of what a process holds: for introspection and leak tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Links.
    pub links: usize,
    /// Monitors on this process.
    pub monitors: usize,
    /// Monitors this process holds on others.
    pub held_monitors: usize,
    /// Exit hooks.
    pub hooks: usize,
    /// Calls it holds (answered neither by a reply nor by the drop of the reply handle).
    pub held_calls: usize,
}

/// A process's bonds and life state (see the module's documentation).
pub struct Bonds {
    pid: Pid,
    trap: AtomicBool,
    alive: AtomicBool,
    exit_reason: OnceLock<ExitReason>,
    watchers: Mutex<Watchers>,
    calls: Mutex<Calls>,
}

impl Bonds {
    /// The bonds of a new, live process `pid`, with none yet. (Inlined so that the header
    /// is built in place, not copied in: see the callgrind A/B in `docs/scheduler.md`.)
    #[inline(always)]
    pub fn new(pid: Pid) -> Bonds {
        Bonds {
            pid,
            trap: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            exit_reason: OnceLock::new(),
            watchers: Mutex::new(Watchers {
                closed: false,
                links: Vec::new(),
                monitors: Vec::new(),
                held_monitors: Vec::new(),
                hooks: Vec::new(),
            }),
            calls: Mutex::new(Calls {
                closed: false,
                held: Slab::new(),
            }),
        }
    }

    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// True while the process traps exits.
    pub fn trap_exits(&self) -> bool {
        self.trap.load(Ordering::SeqCst)
    }

    /// Sets trapping; returns the previous value.
    pub fn set_trap_exits(&self, on: bool) -> bool {
        self.trap.swap(on, Ordering::SeqCst)
    }

    /// True until the process begins to exit.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// The exit reason, once the process has begun to exit.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        if self.is_alive() {
            None
        } else {
            self.exit_reason.get().cloned()
        }
    }

    /// First step of every death: records the reason. False if another death came first.
    pub fn begin_exit(&self, reason: &ExitReason) -> bool {
        if self.exit_reason.set(reason.as_exit()).is_err() {
            return false;
        }
        self.alive.store(false, Ordering::Release);
        true
    }

    /// Takes the exit hooks, to run them (a process's names go before anyone else learns
    /// of the exit; hooks added after this are run by `announce`).
    pub fn take_hooks(&self) -> Vec<(HookRef, Arc<dyn ExitObserver>)> {
        std::mem::take(&mut self.watchers.lock().hooks)
    }

    /// Tells everyone else: fails held calls, signals links, fires monitors, and removes
    /// the monitors this process held from their targets. Closes the bonds: nothing can
    /// be added to them after.
    pub fn announce<P: Peers>(&self, peers: &P, reason: &ExitReason) {
        let reason = reason.as_exit();
        let held = {
            let mut calls = self.calls.lock();
            calls.closed = true;
            std::mem::take(&mut calls.held)
        };
        for (_, slot) in held {
            slot.abort(CallError::Exited(reason.clone()));
        }
        let (links, monitors, held_monitors, hooks) = {
            let mut w = self.watchers.lock();
            w.closed = true;
            (
                std::mem::take(&mut w.links),
                std::mem::take(&mut w.monitors),
                std::mem::take(&mut w.held_monitors),
                std::mem::take(&mut w.hooks),
            )
        };
        // Hooks added after release_names ran (a race with registration): run them now.
        for (_, hook) in hooks {
            let pid = self.pid;
            let _ = catch_unwind(AssertUnwindSafe(|| hook.on_exit(pid, &reason)));
        }
        // The monitors this process held die with it: their targets forget them.
        for (monitor, target) in held_monitors {
            if let Some(p) = peers.find(target) {
                P::bonds(&p).remove_monitor(monitor);
            }
        }
        for other in links {
            if let Some(p) = peers.find(other) {
                P::bonds(&p).remove_link(self.pid);
                peers.exit_signal(&p, self.pid, reason.clone());
            }
        }
        for (monitor, watcher) in monitors {
            match watcher {
                Watcher::Process(w) => {
                    if let Some(p) = peers.find(w) {
                        P::bonds(&p).forget_held_monitor(monitor);
                        peers.down(p, monitor, self.pid, reason.clone());
                    }
                }
                Watcher::Observer(o) => {
                    let pid = self.pid;
                    if catch_unwind(AssertUnwindSafe(|| o.on_exit(pid, &reason))).is_err() {
                        log::error!("arbor: an exit observer panicked for {pid}");
                    }
                }
            }
        }
    }

    /// Adds a link to `other`; false if this process is already exiting.
    pub fn add_link(&self, other: Pid) -> bool {
        let mut w = self.watchers.lock();
        if w.closed {
            return false;
        }
        if !w.links.contains(&other) {
            w.links.push(other);
        }
        true
    }

    /// True once this process has told its links and monitors of its exit (or is telling
    /// them): a link or monitor added to it from now on would never be served.
    pub fn is_closed(&self) -> bool {
        self.watchers.lock().closed
    }

    /// Records a monitor this process holds on `target`; false if this process is
    /// already exiting (the caller then removes the monitor from the target).
    pub fn add_held_monitor(&self, monitor: MonitorRef, target: Pid) -> bool {
        let mut w = self.watchers.lock();
        if w.closed {
            return false;
        }
        w.held_monitors.push((monitor, target));
        true
    }

    /// The target of a monitor this process holds, if it is still active.
    pub fn held_monitor_target(&self, monitor: MonitorRef) -> Option<Pid> {
        let w = self.watchers.lock();
        w.held_monitors.iter().find(|(r, _)| *r == monitor).map(|(_, p)| *p)
    }

    /// Forgets a monitor this process held (it fired, or was removed).
    pub fn forget_held_monitor(&self, monitor: MonitorRef) {
        let mut w = self.watchers.lock();
        if let Some(i) = w.held_monitors.iter().position(|(r, _)| *r == monitor) {
            w.held_monitors.swap_remove(i);
        }
    }

    /// What this process holds, counted.
    pub fn counts(&self) -> Counts {
        let held_calls = self.calls.lock().held.len();
        let w = self.watchers.lock();
        Counts {
            links: w.links.len(),
            monitors: w.monitors.len(),
            held_monitors: w.held_monitors.len(),
            hooks: w.hooks.len(),
            held_calls,
        }
    }

    /// The pids this process is linked to.
    pub fn links(&self) -> Vec<Pid> {
        self.watchers.lock().links.clone()
    }

    /// Drops every link (of a process that never ran: see `cell::vanish`).
    pub fn remove_links(&self) {
        self.watchers.lock().links.clear();
    }

    /// Removes the link to `other`, if any.
    pub fn remove_link(&self, other: Pid) {
        let mut w = self.watchers.lock();
        w.links.retain(|p| *p != other);
    }

    /// Adds a monitor; false if this process is already exiting.
    pub fn add_monitor(&self, monitor: MonitorRef, watcher: Watcher) -> bool {
        let mut w = self.watchers.lock();
        if w.closed {
            return false;
        }
        w.monitors.push((monitor, watcher));
        true
    }

    /// Removes a monitor; true if it was active.
    pub fn remove_monitor(&self, monitor: MonitorRef) -> bool {
        // Order among watchers does not matter: each gets its own `Down`. An observer's
        // `Drop` (user code) runs after the lock is released.
        let removed = {
            let mut w = self.watchers.lock();
            w.monitors
                .iter()
                .position(|(r, _)| *r == monitor)
                .map(|i| w.monitors.swap_remove(i))
        };
        removed.is_some()
    }

    /// Adds an exit hook, run before links and monitors are told; `None` if exiting.
    pub fn add_hook(&self, hook: Arc<dyn ExitObserver>) -> Option<HookRef> {
        let mut w = self.watchers.lock();
        if w.closed {
            return None;
        }
        let r = HookRef(NEXT_REF.next());
        w.hooks.push((r, hook));
        Some(r)
    }

    /// Removes an exit hook; true if it was there (it has not run and will not).
    pub fn remove_hook(&self, hook: HookRef) -> bool {
        let removed = {
            let mut w = self.watchers.lock();
            w.hooks
                .iter()
                .position(|(r, _)| *r == hook)
                .map(|i| w.hooks.swap_remove(i))
        };
        // The hook's own `Drop` runs outside the lock.
        removed.is_some()
    }

    /// The calls (and stop requests) this process holds, locked: register them with
    /// [`HeldCalls::hold`] so that its death fails them.
    pub fn held_calls(&self) -> HeldCalls<'_> {
        HeldCalls(self.calls.lock())
    }

    /// The call held under `key` was answered (or its handle dropped): its entry goes.
    /// Called at most once per key that `hold` returned (see `reply.rs`), and never after
    /// `announce` took the entries (the slab is then empty and closed).
    pub fn forget_call(&self, key: usize) {
        let mut calls = self.calls.lock();
        if !calls.closed {
            calls.held.try_remove(key);
        }
    }
}

impl AsRef<Bonds> for Bonds {
    fn as_ref(&self) -> &Bonds {
        self
    }
}

/// The lock over a process's held calls. Runs no user code while held.
pub struct HeldCalls<'a>(crate::sync::MutexGuard<'a, Calls>);

impl HeldCalls<'_> {
    /// Registers a call or stop request; `None` if the process is already exiting.
    pub fn hold(&mut self, slot: Arc<dyn Abort>) -> Option<usize> {
        if self.0.closed {
            return None;
        }
        Some(self.0.held.insert(slot))
    }
}

/// Links `me` and `other` both ways (S34, S37).
///
/// This side first: once the link is in, `me`'s own exit tells `other`. A process that
/// is already exiting (killed while its handler still runs) makes no link: `other` gets
/// its exit signal instead, as if the link had been made just before the exit, and the
/// caller gets `Err(NoProc)`. If `other` is dead (or exiting), `me` gets
/// `{'EXIT', other, NoProc}` if it traps exits (and `Ok`, as OTP's `link/1`), else
/// `Err(NoProc)`. So no live process is ever left linked to a dead one that will never
/// signal it.
///
/// # Errors
/// `Err(NoProc)` when no link was made: `me` is exiting, or `other` is not alive and
/// `me` does not trap exits (or began its exit meanwhile).
pub fn link<P: Peers>(peers: &P, me: &P::Proc, other: Pid) -> Result<(), NoProc> {
    let h = P::bonds(me);
    if other == h.pid() {
        return Ok(());
    }
    if !h.add_link(other) {
        signal_as_linked(peers, h, other);
        return Err(NoProc);
    }
    let target = peers.find(other).filter(|p| P::bonds(p).add_link(h.pid()));
    match target {
        Some(p) => {
            if h.is_closed() {
                // This process began its exit meanwhile; its announcement signalled
                // `other` (or will), but may have run before `other` recorded the link.
                P::bonds(&p).remove_link(h.pid());
                return Err(NoProc);
            }
            Ok(())
        }
        None => {
            h.remove_link(other);
            if h.is_closed() {
                // Exiting meanwhile: nobody is left to read an `EXIT` message.
                return Err(NoProc);
            }
            if h.trap_exits() {
                peers.exit_message(me, other, ExitReason::NoProc);
                Ok(())
            } else {
                Err(NoProc)
            }
        }
    }
}

/// Links `a` and `b` from outside either (`RuntimeHandle::link`): `a`'s side first, then
/// `b`'s, then `a` is looked at again (an exit announced in between may have missed `b`).
///
/// # Errors
/// `Err(NoProc)` unless both are alive; then no link is left on either side. If one of
/// them exits while the link is being made, the other gets its exit signal (the link came
/// first) or no link (it came too late).
pub fn link_pair<P: Peers>(peers: &P, a: Pid, b: Pid) -> Result<(), NoProc> {
    let pa = peers.find(a).ok_or(NoProc)?;
    let pb = peers.find(b).ok_or(NoProc)?;
    let (ha, hb) = (P::bonds(&pa), P::bonds(&pb));
    if !ha.add_link(b) {
        return Err(NoProc);
    }
    if !hb.add_link(a) {
        ha.remove_link(b);
        return Err(NoProc);
    }
    if ha.is_closed() {
        // `a` began its exit meanwhile and signalled `b` (or will): nothing is left.
        hb.remove_link(a);
        return Err(NoProc);
    }
    Ok(())
}

/// The link `start_link` makes, before `init`, between a new process `child` (known to no
/// one yet) and its caller `parent`: the child's side first, then the parent's.
///
/// # Errors
/// The parent's exit reason if it is already exiting (killed while the handler calling
/// `start_link` still runs): it has told its links already, so the child would never hear
/// of its exit. The start then fails before `init` and the child vanishes, its link with
/// it. A parent that begins its exit after this signals the child like any link.
pub fn link_new_child(child: &Bonds, parent: &Bonds) -> Result<(), ExitReason> {
    child.add_link(parent.pid());
    if !parent.add_link(child.pid()) {
        return Err(parent.exit_reason().unwrap_or(ExitReason::Killed));
    }
    Ok(())
}

/// `me` is exiting and asked to link to `other`: `other` gets `me`'s exit signal, as a
/// link made just before the exit would have given it.
pub fn signal_as_linked<P: Peers>(peers: &P, me: &Bonds, other: Pid) {
    if let (Some(p), Some(reason)) = (peers.find(other), me.exit_reason()) {
        peers.exit_signal(&p, me.pid(), reason);
    }
}

/// Removes the link between `me` and `other`, if any.
pub fn unlink<P: Peers>(peers: &P, me: &Bonds, other: Pid) {
    me.remove_link(other);
    if let Some(p) = peers.find(other) {
        P::bonds(&p).remove_link(me.pid());
    }
}

/// `me` monitors `target`; a dead target fires at once with `NoProc` (S32). The monitor
/// is recorded on both sides: the target tells `me` when it exits, and `me`'s own exit
/// removes the monitor from the target, so a dead watcher leaves nothing behind.
pub fn monitor<P: Peers>(peers: &P, me: &Bonds, target: Pid) -> MonitorRef {
    let monitor = MonitorRef::fresh();
    let watched = peers
        .find(target)
        .filter(|p| P::bonds(p).add_monitor(monitor, Watcher::Process(me.pid())));
    match watched {
        Some(p) => {
            if !me.add_held_monitor(monitor, target) {
                // This process is exiting: the monitor dies with it.
                P::bonds(&p).remove_monitor(monitor);
            } else if P::bonds(&p).is_closed() {
                // The target is telling its watchers (it may have looked at this side
                // before the monitor was recorded here): its `Down` comes all the same.
                me.forget_held_monitor(monitor);
            }
        }
        None => {
            if let Some(p) = peers.find(me.pid()) {
                peers.down(p, monitor, target, ExitReason::NoProc);
            }
        }
    }
    monitor
}

/// `me` removes its monitor `monitor` of `target`; true if it was active.
pub fn demonitor<P: Peers>(peers: &P, me: &Bonds, target: Pid, monitor: MonitorRef) -> bool {
    me.forget_held_monitor(monitor);
    remove_monitor(peers, target, monitor)
}

/// Removes a monitor from `target`; true if it was active.
pub fn remove_monitor<P: Peers>(peers: &P, target: Pid, monitor: MonitorRef) -> bool {
    match peers.find(target) {
        Some(p) => P::bonds(&p).remove_monitor(monitor),
        None => false,
    }
}
