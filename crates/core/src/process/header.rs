//! The untyped half of a process, and exit signals.
//!
//! Invariants:
//! - `exit_reason` is set once, by the first `die`; `alive` turns false right after, and
//!   never back. Everything that reads the reason checks `alive` first.
//! - `watchers.closed` turns true once, in `announce`, after the process's names are
//!   released; links, monitors and hooks added later are refused (the caller then acts as
//!   if the target were already dead: `NoProc`).
//! - `calls.closed` turns true once, when the calls the process holds are failed with its
//!   exit reason; a call it dequeues later is failed at once.
//! - No two of these locks are ever held at once, and no lock is held while user code
//!   (a hook, an observer, a message's `Drop`) runs.
//!
//! Exit propagation is iterative: a signal that kills a process whose links must then be
//! signalled queues those signals on a per-thread work list that the outermost
//! [`deliver_exit`] drains, so a long chain or a cycle of links uses constant stack, and a
//! process already dead ignores further signals, so cycles end.

use crate::error::CallError;
use crate::reply::Abort;
use crate::runtime::RtShared;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::{Down, ExitObserver, ExitReason, Naming, Pid};
use slab::Slab;
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// Identifies one monitor: fresh for each `monitor` call (S31).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef(pub(crate) u64);

static NEXT_REF: AtomicU64 = AtomicU64::new(1);

impl MonitorRef {
    pub(crate) fn fresh() -> MonitorRef {
        MonitorRef(NEXT_REF.fetch_add(1, Ordering::Relaxed))
    }
}

/// Who hears of a process's exit through a monitor.
pub(crate) enum Watcher {
    /// A process: gets `handle_down`.
    Process(Pid),
    /// Anything else (an outside waiter, a remote node): its callback runs.
    Observer(Arc<dyn ExitObserver>),
}

/// System messages that travel in the user lane (they are ordered with user messages,
/// as Erlang orders them).
pub(crate) enum SysMsg {
    /// A trapped exit signal.
    Exit { from: Pid, reason: ExitReason },
    /// A monitor fired.
    Down(Down),
    /// A request for the state, formatted (`RuntimeHandle::get_state`): answered by the
    /// runner between two messages, with no callback run and no timeout disturbed.
    GetState(Arc<crate::reply::Slot<Option<String>>>),
}

/// What the table holds: a process, type-erased.
pub(crate) trait Process: Send + Sync + 'static {
    /// The untyped half.
    fn header(&self) -> &Arc<Header>;
    /// Ends the process now with `reason` (no `terminate`): the untrappable path.
    fn die(self: Arc<Self>, reason: ExitReason);
    /// Queues a system message; false if the process is dead.
    fn deliver(self: Arc<Self>, msg: SysMsg) -> bool;
    /// For downcasts to the typed cell.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// Messages waiting, seen from outside.
    fn queue_len(&self) -> usize;
    /// True while a thread runs the process (a handler, or its `init`).
    fn is_running(&self) -> bool;
    /// The callback it runs (or last ran) and the type of what it handles, for the
    /// watchdog: `handle_call(my_app::Request)`.
    fn callback(&self) -> String;
    /// Bytes the process's own structures take with `queued` messages waiting (see
    /// `ProcessInfo::memory_estimate`).
    fn memory_estimate(&self, queued: usize) -> usize;
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

/// Identifies one exit hook (see `RuntimeHandle::on_exit`), for its removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookRef(pub(crate) u64);

/// Counts of what a process holds: for introspection and leak tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeaderCounts {
    pub(crate) links: usize,
    pub(crate) monitors: usize,
    pub(crate) held_monitors: usize,
    pub(crate) hooks: usize,
    pub(crate) held_calls: usize,
}

struct Calls {
    closed: bool,
    held: Slab<Arc<dyn Abort>>,
}

/// The untyped half of a process.
pub(crate) struct Header {
    pid: Pid,
    parent: Pid,
    type_name: &'static str,
    rt: Arc<RtShared>,
    name: OnceLock<Arc<dyn Naming>>,
    trap: AtomicBool,
    alive: AtomicBool,
    exit_reason: OnceLock<ExitReason>,
    /// The serial of the process this one is blocked calling, or 0: for cycle detection.
    waiting_on: AtomicU64,
    /// Where that process lives: its runtime and slot (see `begin_wait`).
    waiting_at: AtomicU64,
    watchers: Mutex<Watchers>,
    calls: Mutex<Calls>,
    /// What the runner writes as it runs.
    hot: Hot,
    /// When the process was created (wall clock), for `info`.
    started: SystemTime,
}

/// The fields the runner writes while it runs. (Aligning them to a cache line of their own
/// doubled an idle process's size, 560 to 1,024 bytes, for no measurable gain.)
struct Hot {
    /// Messages (and continuations) handled: added to once per run by the worker running
    /// the process, read by `info`. Relaxed: a statistic, ordered with nothing.
    handled: AtomicU64,
    /// The callback running now (a `Callback` as a number), for the watchdog: one relaxed
    /// store per message by the runner.
    callback: AtomicUsize,
}

/// Which callback a process runs, for the watchdog and introspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callback {
    None = 0,
    Init,
    Info,
    Timer,
    Call,
    Stop,
    Timeout,
    Exit,
    Down,
    Continue,
    Terminate,
    GetState,
    Request,
    Cast,
}

impl Callback {
    fn from_usize(n: usize) -> Callback {
        use Callback::*;
        [
            None, Init, Info, Timer, Call, Stop, Timeout, Exit, Down, Continue, Terminate, GetState, Request, Cast,
        ]
        .get(n)
        .copied()
        .unwrap_or(None)
    }
}

impl Header {
    pub(crate) fn new(pid: Pid, parent: Pid, type_name: &'static str, rt: Arc<RtShared>) -> Header {
        Header {
            pid,
            parent,
            type_name,
            rt,
            name: OnceLock::new(),
            trap: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            exit_reason: OnceLock::new(),
            waiting_on: AtomicU64::new(0),
            waiting_at: AtomicU64::new(0),
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

            hot: Hot {
                handled: AtomicU64::new(0),
                callback: AtomicUsize::new(0),
            },
            started: SystemTime::now(),
        }
    }

    /// Counts `n` more messages handled (once per run, by the runner).
    pub(crate) fn add_handled(&self, n: u64) {
        // Only the runner (under the runner lock) writes it: a load and a store, no
        // read-modify-write on the hot path.
        if n > 0 {
            let h = &self.hot.handled;
            h.store(h.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// Records the callback about to run.
    pub(crate) fn set_callback(&self, c: Callback) {
        self.hot.callback.store(c as usize, Ordering::Relaxed);
    }

    /// The callback running now (or last run).
    pub(crate) fn callback(&self) -> Callback {
        Callback::from_usize(self.hot.callback.load(Ordering::Relaxed))
    }

    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    pub(crate) fn parent(&self) -> Pid {
        self.parent
    }

    pub(crate) fn type_name(&self) -> &'static str {
        self.type_name
    }

    pub(crate) fn rt(&self) -> &Arc<RtShared> {
        &self.rt
    }

    pub(crate) fn set_name(&self, name: Arc<dyn Naming>) {
        let _ = self.name.set(name);
    }

    /// A snapshot for introspection (`mailbox_len` filled in by the caller).
    pub(crate) fn info(&self, mailbox_len: usize) -> crate::ProcessInfo {
        let name = self
            .name
            .get()
            .map(|n| catch_unwind(AssertUnwindSafe(|| n.describe())).unwrap_or_else(|_| "<describe panicked>".into()));
        let c = self.counts();
        crate::ProcessInfo {
            pid: self.pid,
            parent: self.parent,
            name,
            type_name: self.type_name,
            alive: self.is_alive(),
            trap_exits: self.trap_exits(),
            links: self.links(),
            monitored_by: c.monitors,
            monitors: c.held_monitors,
            exit_hooks: c.hooks,
            held_calls: c.held_calls,
            mailbox_len,
            messages_handled: self.hot.handled.load(Ordering::Relaxed),
            started: self.started,
            memory_estimate: 0,
        }
    }

    /// Name for logs: the registered name if any, else the pid.
    pub(crate) fn display_name(&self) -> String {
        match self.name.get() {
            Some(n) => format!("{} ({})", n.describe(), self.pid),
            None => self.pid.to_string(),
        }
    }

    pub(crate) fn trap_exits(&self) -> bool {
        self.trap.load(Ordering::SeqCst)
    }

    pub(crate) fn set_trap_exits(&self, on: bool) -> bool {
        self.trap.swap(on, Ordering::SeqCst)
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// The exit reason, once the process has begun to exit.
    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        if self.is_alive() {
            None
        } else {
            self.exit_reason.get().cloned()
        }
    }

    /// First step of every death: records the reason. False if another death came first.
    pub(crate) fn begin_exit(&self, reason: &ExitReason) -> bool {
        if self.exit_reason.set(reason.as_exit()).is_err() {
            return false;
        }
        self.alive.store(false, Ordering::Release);
        true
    }

    /// Releases the process's names (its via-name, then every exit hook): before anyone
    /// else learns of the exit.
    pub(crate) fn release_names(&self, reason: &ExitReason) {
        if let Some(name) = self.name.get() {
            let name = Arc::clone(name);
            let pid = self.pid;
            if catch_unwind(AssertUnwindSafe(|| name.unregister(pid))).is_err() {
                log::error!("arbor: a name's unregister panicked for {pid}");
            }
        }
        let hooks = {
            let mut w = self.watchers.lock();
            std::mem::take(&mut w.hooks)
        };
        for (_, hook) in hooks {
            let pid = self.pid;
            if catch_unwind(AssertUnwindSafe(|| hook.on_exit(pid, reason))).is_err() {
                log::error!("arbor: an exit hook panicked for {pid}");
            }
        }
    }

    /// Tells everyone else: fails held calls, signals links, fires monitors.
    pub(crate) fn announce(&self, reason: &ExitReason) {
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
            if let Some(p) = self.rt.table.get(target) {
                p.header().remove_monitor(monitor);
            }
        }
        for other in links {
            if let Some(p) = self.rt.table.get(other) {
                p.header().remove_link(self.pid);
                deliver_exit(&p, self.pid, reason.clone(), false);
            }
        }
        for (monitor, watcher) in monitors {
            match watcher {
                Watcher::Process(w) => {
                    if let Some(p) = self.rt.table.get(w) {
                        p.header().forget_held_monitor(monitor);
                        p.deliver(SysMsg::Down(Down {
                            monitor,
                            pid: self.pid,
                            reason: reason.clone(),
                        }));
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
    pub(crate) fn add_link(&self, other: Pid) -> bool {
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
    pub(crate) fn is_closed(&self) -> bool {
        self.watchers.lock().closed
    }

    /// Records a monitor this process holds on `target`; false if this process is
    /// already exiting (the caller then removes the monitor from the target).
    pub(crate) fn add_held_monitor(&self, monitor: MonitorRef, target: Pid) -> bool {
        let mut w = self.watchers.lock();
        if w.closed {
            return false;
        }
        w.held_monitors.push((monitor, target));
        true
    }

    /// The target of a monitor this process holds, if it is still active.
    pub(crate) fn held_monitor_target(&self, monitor: MonitorRef) -> Option<Pid> {
        let w = self.watchers.lock();
        w.held_monitors.iter().find(|(r, _)| *r == monitor).map(|(_, p)| *p)
    }

    /// Forgets a monitor this process held (it fired, or was removed).
    pub(crate) fn forget_held_monitor(&self, monitor: MonitorRef) {
        let mut w = self.watchers.lock();
        if let Some(i) = w.held_monitors.iter().position(|(r, _)| *r == monitor) {
            w.held_monitors.swap_remove(i);
        }
    }

    /// What this process holds, counted.
    pub(crate) fn counts(&self) -> HeaderCounts {
        let held_calls = self.calls.lock().held.len();
        let w = self.watchers.lock();
        HeaderCounts {
            links: w.links.len(),
            monitors: w.monitors.len(),
            held_monitors: w.held_monitors.len(),
            hooks: w.hooks.len(),
            held_calls,
        }
    }

    /// The pids this process is linked to.
    pub(crate) fn links(&self) -> Vec<Pid> {
        self.watchers.lock().links.clone()
    }

    /// Drops every link (of a process that never ran: see `cell::vanish`).
    pub(crate) fn remove_links(&self) {
        self.watchers.lock().links.clear();
    }

    pub(crate) fn remove_link(&self, other: Pid) {
        let mut w = self.watchers.lock();
        w.links.retain(|p| *p != other);
    }

    /// Adds a monitor; false if this process is already exiting.
    pub(crate) fn add_monitor(&self, monitor: MonitorRef, watcher: Watcher) -> bool {
        let mut w = self.watchers.lock();
        if w.closed {
            return false;
        }
        w.monitors.push((monitor, watcher));
        true
    }

    /// Removes a monitor; true if it was active.
    pub(crate) fn remove_monitor(&self, monitor: MonitorRef) -> bool {
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
    pub(crate) fn add_hook(&self, hook: Arc<dyn ExitObserver>) -> Option<HookRef> {
        let mut w = self.watchers.lock();
        if w.closed {
            return None;
        }
        let r = HookRef(NEXT_REF.fetch_add(1, Ordering::Relaxed));
        w.hooks.push((r, hook));
        Some(r)
    }

    /// Removes an exit hook; true if it was there (it has not run and will not).
    pub(crate) fn remove_hook(&self, hook: HookRef) -> bool {
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
    pub(crate) fn held_calls(&self) -> HeldCalls<'_> {
        HeldCalls(self.calls.lock())
    }

    /// The call was answered (or its handle dropped).
    pub(crate) fn forget_call(&self, key: usize) {
        let mut calls = self.calls.lock();
        if !calls.closed {
            calls.held.try_remove(key);
        }
    }

    /// Marks this process as blocked calling `target`, unless that closes a cycle, within
    /// this runtime or across runtimes.
    ///
    /// Each process in a wait publishes whom it waits on: the full serial (serials are
    /// global to the program and never reused, so a serial names one process for ever)
    /// in `waiting_on`, and where to find it (runtime and slot) in `waiting_at`. The two
    /// are read without a lock, so a reader may pair a serial with another wait's place;
    /// the lookup then finds no such process and the walk ends: a missed cycle at worst,
    /// never a false `Deadlock`, which needs this process's own serial in the chain.
    pub(crate) fn begin_wait(&self, target: Pid) -> Result<WaitGuard<'_>, CallError> {
        let me = self.pid.serial();
        self.waiting_at.store(place(target), Ordering::SeqCst);
        self.waiting_on.store(target.serial(), Ordering::SeqCst);
        let guard = WaitGuard { header: self };
        let mut next = target;
        for _ in 0..4096 {
            let found = if next.rt() == self.pid.rt() {
                self.rt.table.get(next)
            } else {
                crate::RuntimeHandle::of(next).and_then(|rt| rt.shared().table.get(next))
            };
            let Some(p) = found else {
                return Ok(guard);
            };
            let serial = p.header().waiting_on.load(Ordering::SeqCst);
            if serial == 0 {
                return Ok(guard);
            }
            if serial == me {
                return Err(CallError::Deadlock);
            }
            let at = p.header().waiting_at.load(Ordering::SeqCst);
            next = Pid::new((at >> 32) as u32, at as u32, serial);
        }
        Ok(guard)
    }
}

/// A pid's runtime and slot, packed for `waiting_at`.
fn place(pid: Pid) -> u64 {
    ((pid.rt() as u64) << 32) | pid.index() as u64
}

/// The lock over a process's held calls. Runs no user code while held.
pub(crate) struct HeldCalls<'a>(crate::sync::MutexGuard<'a, Calls>);

impl HeldCalls<'_> {
    /// Registers a call or stop request; `None` if the process is already exiting.
    pub(crate) fn hold(&mut self, slot: Arc<dyn Abort>) -> Option<usize> {
        if self.0.closed {
            return None;
        }
        Some(self.0.held.insert(slot))
    }
}

/// Clears `waiting_on` when the wait ends.
pub(crate) struct WaitGuard<'a> {
    header: &'a Header,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.header.waiting_on.store(0, Ordering::SeqCst);
    }
}

type Job = (Arc<dyn Process>, Pid, ExitReason, bool);

thread_local! {
    static PENDING: RefCell<Option<VecDeque<Job>>> = const { RefCell::new(None) };
}

/// Delivers an exit signal from `from` to `target` (S34–S36): `kill` ends it with
/// `Killed` whatever it does; otherwise a trapping target gets a message, a `Normal`
/// signal from another process is ignored, and anything else ends the target at once,
/// without `terminate` and without handling its queued messages.
pub(crate) fn deliver_exit(target: &Arc<dyn Process>, from: Pid, reason: ExitReason, kill: bool) {
    let job = (Arc::clone(target), from, reason, kill);
    // Inside a propagation already running on this thread, queue the job for it.
    let job = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        match p.as_mut() {
            Some(q) => {
                q.push_back(job);
                None
            }
            None => {
                *p = Some(VecDeque::new());
                Some(job)
            }
        }
    });
    let Some(job) = job else {
        return;
    };
    // Ends the propagation on this thread even if a signal unwinds, so that a later
    // signal is never mistaken for a nested one and left queued.
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            PENDING.with(|p| *p.borrow_mut() = None);
        }
    }
    let _done = Done;
    let mut next = Some(job);
    while let Some((target, from, reason, kill)) = next {
        signal_one(target, from, reason, kill);
        next = PENDING.with(|p| p.borrow_mut().as_mut().and_then(|q| q.pop_front()));
    }
}

fn signal_one(target: Arc<dyn Process>, from: Pid, reason: ExitReason, kill: bool) {
    let h = target.header();
    if kill {
        target.die(ExitReason::Killed);
    } else if h.trap_exits() {
        target.deliver(SysMsg::Exit { from, reason });
    } else if reason.is_normal() {
        if from == h.pid() {
            target.die(ExitReason::Normal);
        }
    } else {
        target.die(reason);
    }
}
