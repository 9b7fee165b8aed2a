//! The untyped half of a process, and exit signals.
//!
//! Its links, monitors, exit hooks, held calls and life state (alive, exit reason, closed)
//! are a [`Bonds`] (`bonds.rs`, with their invariants and the protocols that work on
//! them, built under loom too); the header adds what needs the runtime (its names, its
//! runtime, the deadlock detector's wait, the runner's statistics) and forwards the rest.
//!
//! Exit propagation is iterative: a signal that kills a process whose links must then be
//! signalled queues those signals on a per-thread work list that the outermost
//! [`deliver_exit`] drains, so a long chain or a cycle of links uses constant stack, and a
//! process already dead ignores further signals, so cycles end.

use super::bonds::{Bonds, Counts, HeldCalls, HookRef, MonitorRef, Watcher};
use crate::error::CallError;
use crate::runtime::RtShared;
use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use crate::{Down, ExitObserver, ExitReason, Naming, Pid};
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

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

/// Counts of what a process holds: for introspection and leak tests.
pub(crate) type HeaderCounts = Counts;

/// The untyped half of a process.
pub(crate) struct Header {
    /// Links, monitors, hooks, held calls, and the life state (with the pid).
    bonds: Bonds,
    parent: Pid,
    type_name: &'static str,
    rt: Arc<RtShared>,
    name: OnceLock<Arc<dyn Naming>>,
    /// The serial of the process this one is blocked calling, or 0: for cycle detection.
    waiting_on: AtomicU64,
    /// Where that process lives: its runtime and slot (see `begin_wait`).
    waiting_at: AtomicU64,
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
        // Read before the header is built: with the call in the middle of the literal, the
        // bonds were built aside and copied in (a `memcpy` per spawn under callgrind).
        let started = SystemTime::now();
        Header {
            bonds: Bonds::new(pid),
            parent,
            type_name,
            rt,
            name: OnceLock::new(),
            waiting_on: AtomicU64::new(0),
            waiting_at: AtomicU64::new(0),
            hot: Hot {
                handled: AtomicU64::new(0),
                callback: AtomicUsize::new(0),
            },
            started,
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
        // Stored only when it changes: a server handling one kind of message after another
        // then writes nothing here per message (a line of the header may neighbour its
        // cell, which senders write on every push; docs/performance.md, session 5).
        if self.hot.callback.load(Ordering::Relaxed) != c as usize {
            self.hot.callback.store(c as usize, Ordering::Relaxed);
        }
    }

    /// The callback running now (or last run).
    pub(crate) fn callback(&self) -> Callback {
        Callback::from_usize(self.hot.callback.load(Ordering::Relaxed))
    }

    pub(crate) fn pid(&self) -> Pid {
        self.bonds.pid()
    }

    /// Its links, monitors, hooks, held calls and life state.
    pub(crate) fn bonds(&self) -> &Bonds {
        &self.bonds
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
            pid: self.pid(),
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
            Some(n) => format!("{} ({})", n.describe(), self.pid()),
            None => self.pid().to_string(),
        }
    }

    pub(crate) fn trap_exits(&self) -> bool {
        self.bonds.trap_exits()
    }

    pub(crate) fn set_trap_exits(&self, on: bool) -> bool {
        self.bonds.set_trap_exits(on)
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.bonds.is_alive()
    }

    /// The exit reason, once the process has begun to exit.
    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        self.bonds.exit_reason()
    }

    /// First step of every death: records the reason. False if another death came first.
    pub(crate) fn begin_exit(&self, reason: &ExitReason) -> bool {
        self.bonds.begin_exit(reason)
    }

    /// Releases the process's names (its via-name, then every exit hook): before anyone
    /// else learns of the exit.
    pub(crate) fn release_names(&self, reason: &ExitReason) {
        if let Some(name) = self.name.get() {
            let name = Arc::clone(name);
            let pid = self.pid();
            if catch_unwind(AssertUnwindSafe(|| name.unregister(pid))).is_err() {
                log::error!("arbor: a name's unregister panicked for {pid}");
            }
        }
        for (_, hook) in self.bonds.take_hooks() {
            let pid = self.pid();
            if catch_unwind(AssertUnwindSafe(|| hook.on_exit(pid, reason))).is_err() {
                log::error!("arbor: an exit hook panicked for {pid}");
            }
        }
    }

    /// Tells everyone else: fails held calls, signals links, fires monitors (through the
    /// runtime's table: see `Bonds::announce`).
    pub(crate) fn announce(&self, reason: &ExitReason) {
        self.bonds.announce(&*self.rt, reason)
    }

    /// The target of a monitor this process holds, if it is still active.
    pub(crate) fn held_monitor_target(&self, monitor: MonitorRef) -> Option<Pid> {
        self.bonds.held_monitor_target(monitor)
    }

    /// What this process holds, counted.
    pub(crate) fn counts(&self) -> HeaderCounts {
        self.bonds.counts()
    }

    /// The pids this process is linked to.
    pub(crate) fn links(&self) -> Vec<Pid> {
        self.bonds.links()
    }

    /// Drops every link (of a process that never ran: see `cell::vanish`).
    pub(crate) fn remove_links(&self) {
        self.bonds.remove_links()
    }

    pub(crate) fn remove_link(&self, other: Pid) {
        self.bonds.remove_link(other)
    }

    /// Adds a monitor; false if this process is already exiting.
    pub(crate) fn add_monitor(&self, monitor: MonitorRef, watcher: Watcher) -> bool {
        self.bonds.add_monitor(monitor, watcher)
    }

    /// Adds an exit hook, run before links and monitors are told; `None` if exiting.
    pub(crate) fn add_hook(&self, hook: Arc<dyn ExitObserver>) -> Option<HookRef> {
        self.bonds.add_hook(hook)
    }

    /// Removes an exit hook; true if it was there (it has not run and will not).
    pub(crate) fn remove_hook(&self, hook: HookRef) -> bool {
        self.bonds.remove_hook(hook)
    }

    /// The calls (and stop requests) this process holds, locked: register them with
    /// [`HeldCalls::hold`] so that its death fails them.
    pub(crate) fn held_calls(&self) -> HeldCalls<'_> {
        self.bonds.held_calls()
    }

    /// The call was answered (or its handle dropped).
    pub(crate) fn forget_call(&self, key: usize) {
        self.bonds.forget_call(key)
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
        let me = self.pid().serial();
        self.waiting_at.store(place(target), Ordering::SeqCst);
        self.waiting_on.store(target.serial(), Ordering::SeqCst);
        let guard = WaitGuard { header: self };
        let mut next = target;
        for _ in 0..4096 {
            let found = if next.rt() == self.pid().rt() {
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

impl AsRef<Bonds> for Header {
    fn as_ref(&self) -> &Bonds {
        &self.bonds
    }
}
