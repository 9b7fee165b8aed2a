//! `Runtime`: owns the worker pool, the timer service and the process table.
//!
//! Runtimes are explicit instances (tests make their own). [`Runtime::shutdown`], or
//! dropping the `Runtime`, stops every process (root processes get an exit signal
//! `Shutdown` from the runtime, newest first; supervisors stop their children in their
//! own order), waits for them up to the shutdown timeout, kills what is left, then
//! stops the timer thread and joins the workers.

use crate::clock::Clock;
use crate::process::{deliver_exit, Table};
use crate::scheduler::{Pool, PoolConfig, Scheduler};
use crate::sync::PlainMutex as Mutex;
use crate::sync::{AtomicBool, Ordering};
use crate::timer::TimerService;
use crate::{
    signal, ExitObserver, ExitReason, GenServer, HookRef, MonitorRef, NoProc, Pid, ServerRef, StartError, StartOpts,
};
use slab::Slab;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Every live runtime, by id: how an untyped [`Pid`] finds its runtime.
static RUNTIMES: Mutex<Slab<Weak<RtShared>>> = Mutex::new(Slab::new());

thread_local! {
    /// The runtimes this thread created or entered, newest last, each with the token of
    /// the [`EnterGuard`] that entered it (0: made current by its creation). Weak: a
    /// runtime dropped (or shut down) stops being current by itself.
    static ENTERED: std::cell::RefCell<Vec<(u64, Weak<RtShared>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Tokens of [`EnterGuard`]s.
static NEXT_ENTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Makes `shared` current on this thread under `token`; forgets dead entries.
fn push_entered(token: u64, shared: &Arc<RtShared>) {
    ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        e.retain(|(_, w)| w.strong_count() > 0);
        e.push((token, Arc::downgrade(shared)));
    });
}

/// This thread's current runtime: the newest it created or entered that is still
/// running.
fn thread_current() -> Option<Arc<RtShared>> {
    ENTERED.with(|e| {
        let mut e = e.borrow_mut();
        // A runtime made current by its creation is forgotten once it is gone; a guard's
        // entry stays until its guard is dropped.
        e.retain(|(token, w)| *token != 0 || w.strong_count() > 0);
        e.iter()
            .rev()
            .filter_map(|(_, w)| w.upgrade())
            .find(|rt| !rt.is_shutting_down())
    })
}

/// The runtime a start with no runtime in its options goes to: the calling process's,
/// else this thread's current runtime (see [`RuntimeHandle::enter`]).
pub(crate) fn implicit_runtime() -> Option<Arc<RtShared>> {
    match crate::process::current() {
        Some(p) => Some(Arc::clone(p.header().rt())),
        None => thread_current(),
    }
}

/// Keeps a runtime current on this thread until dropped (see [`RuntimeHandle::enter`]).
/// Not `Send`: it belongs to the thread that entered.
#[must_use = "the runtime stops being current when the guard is dropped"]
pub struct EnterGuard {
    token: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let token = self.token;
        let _ = ENTERED.try_with(|e| e.borrow_mut().retain(|(t, _)| *t != token));
    }
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// The runtime's plain names ([`LocalName`](crate::LocalName)).
#[derive(Default)]
pub(crate) struct NameTable {
    names: Mutex<std::collections::HashMap<Arc<str>, Pid>>,
}

impl NameTable {
    /// Claims `name` for `pid`: taken if a live process holds it.
    pub(crate) fn claim(&self, name: &Arc<str>, pid: Pid) -> Result<(), crate::NameError> {
        let mut names = self.names.lock();
        if let Some(holder) = names.get(name) {
            if *holder != pid && crate::is_alive(*holder) {
                return Err(crate::NameError::Taken(*holder));
            }
        }
        names.insert(Arc::clone(name), pid);
        Ok(())
    }

    /// Releases `name` if `pid` holds it.
    pub(crate) fn release(&self, name: &str, pid: Pid) {
        let mut names = self.names.lock();
        if names.get(name) == Some(&pid) {
            names.remove(name);
        }
    }

    pub(crate) fn whereis(&self, name: &str) -> Option<Pid> {
        self.names.lock().get(name).copied()
    }

    fn len(&self) -> usize {
        self.names.lock().len()
    }
}

/// What the runtime's parts share.
pub(crate) struct RtShared {
    id: u32,
    name: String,
    /// The scheduler: the worker pool, or a deterministic runtime's driver.
    pub(crate) pool: Scheduler,
    /// Where the runtime reads time: the real clock, or a deterministic runtime's virtual one.
    pub(crate) clock: Clock,
    pub(crate) table: Table,
    pub(crate) timers: TimerService,
    shutting_down: AtomicBool,
    shutdown_timeout: Duration,
    watchdog: Duration,
    pub(crate) crash_reports: CrashReports,
    pub(crate) names: Arc<NameTable>,
}

impl Drop for RtShared {
    fn drop(&mut self) {
        if self.prints_to_stderr() {
            crate::panic::set_backtraces(false);
        }
    }
}

impl RtShared {
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Whether this runtime's crash reports may go to standard error.
    fn prints_to_stderr(&self) -> bool {
        matches!(self.crash_reports, CrashReports::Auto | CrashReports::Stderr)
    }

    fn pool_watchdog(&self) -> Duration {
        self.watchdog
    }

    /// The process behind a stalled worker, if it is still in the table.
    fn resolve_stall(&self, stall: crate::scheduler::Stall) -> Option<StuckHandler> {
        let (serial, place) = stall.id;
        if serial == 0 || (place >> 32) as u32 != self.id {
            return None;
        }
        let p = self.table.get(Pid::new(self.id, place as u32, serial))?;
        let info = p.header().info(p.queue_len());
        Some(StuckHandler {
            pid: info.pid,
            name: info.name,
            type_name: info.type_name,
            callback: p.callback(),
            running_for: stall.running_for,
            alive: info.alive,
        })
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The runtime's current instant (virtual on a deterministic runtime).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Waits for `slot` up to `timeout` on this runtime's clock: parked (compensated
    /// inside a handler) on the real runtime; on a deterministic one, driving it on this
    /// thread until the slot is resolved or the virtual deadline passes.
    pub(crate) fn wait<R>(&self, slot: &crate::reply::Slot<R>, timeout: Duration) -> Result<R, crate::CallError> {
        match self.pool.sim() {
            None => slot.wait_for(timeout),
            Some(driver) => driver.wait(self, slot, self.clock.deadline(timeout)),
        }
    }
}

/// Builds a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    threads: Option<usize>,
    name: String,
    stack_size: Option<usize>,
    shutdown_timeout: Duration,
    max_blocking_threads: usize,
    watchdog: Duration,
    crash_reports: CrashReports,
    busy_wait: bool,
}

/// Where crash reports go ([`Builder::crash_reports`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashReports {
    /// Through `log` when a logger is installed (its maximum level is not `Off`), else
    /// to standard error: as Elixir, a crash is never silent by default.
    #[default]
    Auto,
    /// Always through `log` (`log::error!`).
    Log,
    /// Always to standard error.
    Stderr,
    /// Nowhere (the exit reason still reaches links, monitors and callers).
    Off,
}

/// Default of [`Builder::watchdog_threshold`].
pub const DEFAULT_WATCHDOG_THRESHOLD: Duration = Duration::from_secs(5);

/// Default of [`Builder::max_blocking_threads`].
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 256;

impl Default for Builder {
    fn default() -> Self {
        Builder {
            threads: None,
            name: "arbor".to_string(),
            stack_size: None,
            shutdown_timeout: Duration::from_secs(30),
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            watchdog: DEFAULT_WATCHDOG_THRESHOLD,
            crash_reports: CrashReports::Auto,
            busy_wait: true,
        }
    }
}

impl Builder {
    /// Worker threads that run processes at once (default: available cores). Workers
    /// blocked in a call are compensated by extra threads, so this is a floor on
    /// parallelism, not a cap on threads.
    pub fn worker_threads(mut self, n: usize) -> Builder {
        self.threads = Some(n.max(1));
        self
    }

    /// Prefix of thread names (default `arbor`): workers are `NAME-0`, `NAME-1`..., the
    /// timer thread `NAME-timer`.
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.name = name.into();
        self
    }

    /// Stack size of worker threads.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Most threads started beyond [`Builder::worker_threads`] to stand in for workers
    /// blocked in a call made inside a handler, or in [`blocking`](crate::blocking) code
    /// (default [`DEFAULT_MAX_BLOCKING_THREADS`]). At the cap a worker that blocks is not
    /// compensated: the runtime runs on the workers left until a blocked one resumes (a
    /// warning is logged once per episode, and
    /// [`RuntimeStats::compensation_refused`] counts each refusal). Zero turns compensation
    /// off.
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.max_blocking_threads = n;
        self
    }

    /// Where crash reports go (default [`CrashReports::Auto`]: through `log` if a logger
    /// is installed, else to standard error). A report names the server (pid, name,
    /// type), the callback and the type of message it was handling, the reason, the
    /// panic's file and line, and a backtrace when `RUST_BACKTRACE` asks for one.
    pub fn crash_reports(mut self, to: CrashReports) -> Builder {
        self.crash_reports = to;
        self
    }

    /// Whether a worker that runs out of work spins for a moment before it parks (default
    /// `true`): 16 µs, stretched up to 200 µs while work comes back at a steady pace
    /// shorter than that (docs/scheduler.md). The spin picks up a message that arrives
    /// within it (a caller's next request, the next hop of a ring) without a thread wake-up;
    /// `false` parks at once, and the runtime then spends CPU only on work: for a host
    /// shared with other programs, for measuring what work costs, and the analogue of the
    /// BEAM's `+sbwt none`. Only one worker at a time spins.
    pub fn busy_wait(mut self, on: bool) -> Builder {
        self.busy_wait = on;
        self
    }

    /// How long a handler may run before the watchdog reports it as stuck (default
    /// [`DEFAULT_WATCHDOG_THRESHOLD`], 5 s; `Duration::MAX` turns the reports off). Rust
    /// cannot pre-empt a handler: the watchdog logs a warning once per stuck handler (the
    /// process, its name, the callback and the type of message it handles) and
    /// [`RuntimeHandle::stuck_handlers`] lists those stuck now. Measured per run of a
    /// process on its worker (a run handles up to 64 messages), with the resolution of
    /// the pool's monitor (a millisecond while workers are busy).
    pub fn watchdog_threshold(mut self, threshold: Duration) -> Builder {
        self.watchdog = threshold;
        self
    }

    /// How long shutdown waits for processes to stop before it kills the rest (default
    /// 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the runtime's threads.
    ///
    /// # Errors
    ///
    /// The I/O error of a thread that could not be spawned.
    pub fn build(self) -> std::io::Result<Runtime> {
        crate::panic::install_hook();
        let threads = self.threads.unwrap_or_else(|| {
            crate::sync::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let mut runtimes = RUNTIMES.lock();
        let entry = runtimes.vacant_entry();
        let id = entry.key() as u32;
        let pool = Pool::start(PoolConfig {
            threads,
            name: self.name.clone(),
            stack_size: self.stack_size,
            max_blocking_threads: self.max_blocking_threads,
            watchdog: self.watchdog,
            busy_wait: self.busy_wait,
        })?;
        let timers = match TimerService::start(&self.name) {
            Ok(t) => t,
            Err(e) => {
                // Leave no worker behind a start that failed part-way.
                pool.shutdown(Duration::from_secs(5));
                return Err(e);
            }
        };
        let shared = Arc::new(RtShared {
            id,
            name: self.name,
            pool: Scheduler::Pool(pool),
            clock: Clock::Real,
            table: Table::new(id),
            timers,
            shutting_down: AtomicBool::new(false),
            shutdown_timeout: self.shutdown_timeout,
            watchdog: self.watchdog,
            crash_reports: self.crash_reports,
            names: Arc::default(),
        });
        entry.insert(Arc::downgrade(&shared));
        if shared.prints_to_stderr() {
            crate::panic::set_backtraces(true);
        }
        let weak = Arc::downgrade(&shared);
        shared
            .pool
            .set_stall_hook(Box::new(move |stall: crate::scheduler::Stall| {
                if let Some(rt) = weak.upgrade() {
                    if let Some(stuck) = rt.resolve_stall(stall) {
                        log::warn!(
                            "arbor: a handler has been running for {:?} (watchdog threshold {:?}): {} {}{} is in {}",
                            stuck.running_for,
                            rt.pool_watchdog(),
                            stuck.type_name,
                            stuck.pid,
                            stuck.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default(),
                            stuck.callback
                        );
                    }
                }
            }));
        // The creating thread's current runtime from now on (see `RuntimeHandle::enter`).
        push_entered(0, &shared);
        Ok(Runtime {
            handle: RuntimeHandle { shared },
        })
    }
}

/// Makes a deterministic runtime (see `crate::sim`): no threads; `driver` schedules, `clock`
/// is virtual.
pub(crate) fn build_sim(config: &crate::sim::SimConfig, driver: Arc<crate::sim::Driver>, clock: Clock) -> Runtime {
    crate::panic::install_hook();
    let Clock::Virtual(virtual_clock) = &clock else {
        unreachable!("a deterministic runtime runs on a virtual clock")
    };
    let timers = TimerService::start_virtual(Arc::clone(virtual_clock));
    let mut runtimes = RUNTIMES.lock();
    let entry = runtimes.vacant_entry();
    let id = entry.key() as u32;
    let shared = Arc::new(RtShared {
        id,
        name: config.name.clone(),
        pool: Scheduler::Sim(driver),
        clock,
        table: Table::new(id),
        timers,
        shutting_down: AtomicBool::new(false),
        shutdown_timeout: config.shutdown_timeout,
        watchdog: Duration::MAX,
        crash_reports: config.crash_reports,
        names: Arc::default(),
    });
    entry.insert(Arc::downgrade(&shared));
    if shared.prints_to_stderr() {
        crate::panic::set_backtraces(true);
    }
    Runtime {
        handle: RuntimeHandle { shared },
    }
}

/// A runtime: worker threads, a timer thread, and the processes they run. Dropping it
/// shuts it down (see [`Runtime::shutdown`]).
pub struct Runtime {
    handle: RuntimeHandle,
}

impl Runtime {
    /// A runtime with default settings.
    ///
    /// # Errors
    ///
    /// The I/O error of a thread that could not be spawned.
    pub fn new() -> std::io::Result<Runtime> {
        Builder::default().build()
    }

    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A cloneable handle, for starting processes and for code that must not own the
    /// runtime.
    pub fn handle(&self) -> &RuntimeHandle {
        &self.handle
    }

    /// Stops every process and joins every thread. Root processes get an exit signal
    /// `Shutdown` from the runtime (newest first): a trapping one runs `terminate`, a
    /// supervisor stops its children in its own order. Whatever is still alive after the
    /// shutdown timeout ([`Builder::shutdown_timeout`]) is killed. Shutdown waits only for
    /// processes that can still make progress: one that has exited but whose handler has
    /// not returned (Rust cannot pre-empt it) is listed in the report as stuck, and its
    /// thread is left to finish on its own.
    ///
    /// Called from inside one of this runtime's processes, it signals the processes and
    /// returns at once (a thread of its own finishes the shutdown, since a worker cannot
    /// join itself); the report then lists nothing.
    pub fn shutdown(self) -> ShutdownReport {
        let timeout = self.handle.shared.shutdown_timeout;
        self.handle.shutdown_inner(timeout)
    }

    /// [`Runtime::shutdown`] with this timeout: returns within about `timeout` plus a
    /// small bound (a second at most to kill what is left), whatever the handlers do.
    pub fn shutdown_timeout(self, timeout: Duration) -> ShutdownReport {
        self.handle.shutdown_inner(timeout)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let timeout = self.handle.shared.shutdown_timeout;
        self.handle.shutdown_inner(timeout);
    }
}

/// What [`Runtime::shutdown`] saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Processes still alive at the shutdown timeout, which were killed.
    pub killed: usize,
    /// Processes that had exited but whose handler had not returned when shutdown ended:
    /// their threads are left running, detached.
    pub stuck: Vec<StuckProcess>,
}

/// A process whose handler had not returned when shutdown ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StuckProcess {
    /// The process.
    pub pid: Pid,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// The Rust type of its state.
    pub type_name: &'static str,
}

/// A handler running for longer than the watchdog's threshold
/// ([`Builder::watchdog_threshold`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StuckHandler {
    /// The process.
    pub pid: Pid,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// The Rust type of its state.
    pub type_name: &'static str,
    /// The callback it runs, with the type of what it handles:
    /// `handle_call(my_app::Request)`.
    pub callback: String,
    /// How long its worker has been running it (at least; measured by the pool's monitor).
    pub running_for: Duration,
    /// False if the process was killed meanwhile (its handler still runs: Rust cannot
    /// pre-empt it).
    pub alive: bool,
}

/// Counters of a runtime, read without stopping it (each under its own lock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Live processes (exiting ones included until they are finalized).
    pub processes: usize,
    /// Worker threads alive (compensating ones included).
    pub worker_threads: usize,
    /// Of those, how many are blocked in a call or a `blocking` section.
    pub blocked_workers: usize,
    /// Of those, how many are parked for want of work.
    pub idle_workers: usize,
    /// Tasks waiting in the global run queue.
    pub run_queue: usize,
    /// Pending timers.
    pub timers: usize,
    /// Times a blocked worker was not compensated because the cap
    /// ([`Builder::max_blocking_threads`]) was reached.
    pub compensation_refused: u64,
    /// Tasks handed from a stalled worker (one running a handler for over a millisecond)
    /// to the others.
    pub lifo_handoffs: u64,
    /// Times an idle worker spun for work before parking ([`Builder::busy_wait`]; zero
    /// when it is off).
    pub idle_spins: u64,
    /// Threads outside the pool (a connection's reader) that have run a process's turn
    /// themselves and are still [`InlineRunner`](crate::InlineRunner)s.
    pub inline_runners: usize,
}

impl std::ops::Deref for Runtime {
    type Target = RuntimeHandle;
    fn deref(&self) -> &RuntimeHandle {
        &self.handle
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.handle, f)
    }
}

/// A cloneable handle to a runtime.
#[derive(Clone)]
pub struct RuntimeHandle {
    shared: Arc<RtShared>,
}

impl RuntimeHandle {
    pub(crate) fn from_shared(shared: Arc<RtShared>) -> Self {
        RuntimeHandle { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<RtShared> {
        &self.shared
    }

    /// The runtime a start with no runtime in its options goes to: inside a process, its
    /// runtime; elsewhere, this thread's current runtime (the newest running one it
    /// created, or entered with [`RuntimeHandle::enter`]); else `None`.
    pub fn current() -> Option<RuntimeHandle> {
        implicit_runtime().map(RuntimeHandle::from_shared)
    }

    /// Makes this runtime the current one of this thread until the guard is dropped: what
    /// `G::start(args, StartOpts::new())`, `DynamicSupervisor::start(..)`,
    /// `Registry::start_link(..)` and every other start without a runtime in its options
    /// use outside a process. Inside a process, its own runtime always wins.
    ///
    /// The thread that builds a runtime has it current already, until it is dropped or
    /// shut down: `main` needs no guard. Enter it on other threads (a thread per
    /// connection, say), or to pick one of several runtimes. Guards nest; dropping one
    /// restores the previous current runtime.
    ///
    /// ```
    /// use arbor_core::{Context, ExitReason, GenServer, Runtime, StartOpts};
    ///
    /// struct Idle;
    ///
    /// impl GenServer for Idle {
    ///     type Args = ();
    ///     type Info = ();
    ///     type Call = ();
    ///     type Reply = ();
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Idle)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// // This thread built `rt`: it is current here.
    /// let a = Idle::start((), StartOpts::new()).unwrap();
    /// assert_eq!(a.runtime().name(), rt.name());
    ///
    /// let handle = rt.handle().clone();
    /// std::thread::spawn(move || {
    ///     assert!(Idle::start((), StartOpts::new()).is_err(), "no current runtime here");
    ///     let _in_rt = handle.enter();
    ///     Idle::start((), StartOpts::new()).unwrap();
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(rt.process_count(), 2);
    /// ```
    pub fn enter(&self) -> EnterGuard {
        let token = NEXT_ENTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        push_entered(token, &self.shared);
        EnterGuard {
            token,
            _not_send: std::marker::PhantomData,
        }
    }

    /// The runtime `pid` belongs to, if it is still running.
    pub fn of(pid: Pid) -> Option<RuntimeHandle> {
        let shared = RUNTIMES.lock().get(pid.rt() as usize)?.upgrade()?;
        if shared.id != pid.rt() {
            return None;
        }
        Some(RuntimeHandle { shared })
    }

    /// The runtime's name (its threads' name prefix).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The runtime's current instant: `Instant::now()`, or on a deterministic runtime
    /// ([`SimRuntime`](crate::sim::SimRuntime)) its virtual time. Timers, call and stop
    /// timeouts and supervisors' restart-intensity windows all read this clock; code that
    /// measures time in a process should too (see [`crate::now`]).
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// True on a deterministic runtime ([`SimRuntime`](crate::sim::SimRuntime)).
    pub fn is_simulated(&self) -> bool {
        self.shared.pool.sim().is_some()
    }

    /// Starts a `G` on this runtime, unlinked.
    ///
    /// # Errors
    ///
    /// As [`GenServer::start`].
    pub fn start<G: GenServer>(&self, args: G::Args) -> Result<ServerRef<G>, StartError> {
        G::start(args, StartOpts::new().runtime(self))
    }

    /// Starts a `G` on this runtime with options.
    ///
    /// # Errors
    ///
    /// As [`GenServer::start`].
    pub fn start_with<G: GenServer>(&self, args: G::Args, opts: StartOpts) -> Result<ServerRef<G>, StartError> {
        G::start(args, opts.runtime(self))
    }

    /// Number of live processes.
    pub fn process_count(&self) -> usize {
        self.shared.table.len()
    }

    /// Pids of every live process, newest first.
    pub fn processes(&self) -> Vec<Pid> {
        self.shared.table.snapshot().iter().map(|p| p.header().pid()).collect()
    }

    /// The process registered under the plain name `name` ([`LocalName`](crate::LocalName)),
    /// if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared.names.whereis(name)
    }

    /// The server of type `G` registered under the plain name `name`, if any (`None` also
    /// if the process there runs another type).
    pub fn server<G: GenServer>(&self, name: &str) -> Option<ServerRef<G>> {
        self.whereis(name).and_then(ServerRef::from_pid)
    }

    /// Number of plain names held (for introspection and leak tests).
    pub fn name_count(&self) -> usize {
        self.shared.names.len()
    }

    /// A snapshot of `pid`: its links, monitors, exit hooks, held calls, mailbox length
    /// (Erlang's `process_info/1`). `None` once it has been removed from the runtime.
    pub fn process_info(&self, pid: Pid) -> Option<crate::ProcessInfo> {
        let p = self.shared.table.get(pid)?;
        let queued = p.queue_len();
        let mut info = p.header().info(queued);
        info.memory_estimate = p.memory_estimate(queued);
        Some(info)
    }

    /// `pid`'s state as its [`GenServer::format_state`] formats it (Erlang's
    /// `:sys.get_state/1`), asked for through a system request that the process answers
    /// between two of its messages, so never while a handler runs: `Ok(None)` for a server
    /// that does not opt in. Waits up to `timeout`; inside a handler the wait is compensated
    /// like a call.
    ///
    /// # Errors
    ///
    /// `NoProc` if `pid` is not alive, `CallingSelf` from `pid` itself, `Exited(reason)` if it
    /// exits first, `Timeout` past `timeout` (a handler that does not return delays the
    /// answer; the request is then dropped unanswered).
    pub fn get_state(&self, pid: Pid, timeout: Duration) -> Result<Option<String>, crate::CallError> {
        if crate::current_pid() == Some(pid) {
            return Err(crate::CallError::CallingSelf);
        }
        let p = self.shared.table.get(pid).ok_or(crate::CallError::NoProc)?;
        let slot = Arc::new(crate::reply::Slot::new());
        if !p.deliver(crate::process::SysMsg::GetState(slot.clone())) {
            return Err(crate::CallError::NoProc);
        }
        self.shared.wait(&slot, timeout)
    }

    /// Handlers running now for longer than the watchdog's threshold
    /// ([`Builder::watchdog_threshold`]), longest first.
    pub fn stuck_handlers(&self) -> Vec<StuckHandler> {
        let mut stuck: Vec<StuckHandler> = self
            .shared
            .pool
            .stalls()
            .into_iter()
            .filter_map(|s| self.shared.resolve_stall(s))
            .collect();
        stuck.sort_by_key(|s| std::cmp::Reverse(s.running_for));
        stuck
    }

    /// The runtime's counters: workers busy, blocked and idle, run queue, timers.
    pub fn stats(&self) -> RuntimeStats {
        let pool = self.shared.pool.stats();
        RuntimeStats {
            processes: self.shared.table.len(),
            worker_threads: pool.threads,
            blocked_workers: pool.blocked,
            idle_workers: pool.idle,
            run_queue: pool.injector_len,
            timers: self.shared.timers.len(),
            compensation_refused: pool.compensation_refused,
            lifo_handoffs: pool.lifo_handoffs,
            idle_spins: pool.idle_spins,
            inline_runners: pool.inline_runners,
        }
    }

    /// Number of worker threads alive now (compensating threads included).
    pub fn worker_count(&self) -> usize {
        self.shared.pool.thread_count()
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.shared.timers.len()
    }

    /// True while `pid` is alive on this runtime.
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.shared.table.get(pid).is_some_and(|p| p.header().is_alive())
    }

    /// Sends an exit signal to `pid` from the calling process (or from outside, S36).
    pub fn exit(&self, pid: Pid, reason: ExitReason) {
        let from = crate::process::current()
            .map(|c| c.header().pid())
            .unwrap_or(Pid::external(self.shared.id));
        signal::exit(&self.shared, from, pid, reason)
    }

    /// Kills `pid`: untrappable, reason `Killed`, no `terminate`.
    pub fn kill(&self, pid: Pid) {
        signal::kill(&self.shared, pid)
    }

    /// Calls `observer` once `pid` exits (after its names are released), like a monitor
    /// held by code outside any process. `Err(NoProc)` if `pid` is not alive.
    ///
    /// # Errors
    ///
    /// `NoProc` if `pid` is not alive; `observer` is then never called.
    pub fn monitor(&self, pid: Pid, observer: impl ExitObserver) -> Result<MonitorRef, NoProc> {
        signal::monitor_observer(&self.shared, pid, Arc::new(observer))
    }

    /// Waits until `pid` has exited, up to `timeout`: its exit reason, `Some(NoProc)` if it
    /// was not alive, `None` on timeout. Inside a handler the wait is compensated like a
    /// call (the pool does not starve).
    pub fn wait_exit(&self, pid: Pid, timeout: Duration) -> Option<ExitReason> {
        let slot: Arc<crate::reply::Slot<ExitReason>> = Arc::new(crate::reply::Slot::new());
        let s = slot.clone();
        let watched = self.monitor(pid, move |_pid: Pid, reason: &ExitReason| {
            s.resolve(Ok(reason.clone()));
        });
        let monitor = match watched {
            Ok(m) => m,
            Err(NoProc) => {
                let exiting = self.shared.table.get(pid).and_then(|p| p.header().exit_reason());
                return Some(exiting.unwrap_or(ExitReason::NoProc));
            }
        };
        let got = self.shared.wait(&slot, timeout).ok();
        if got.is_none() {
            // Timed out: leave nothing attached to a process that goes on running.
            self.demonitor(pid, monitor);
        }
        got
    }

    /// [`RuntimeHandle::wait_exit`] from async code: a future of the exit reason
    /// (`Some(NoProc)` if `pid` was not alive), or `None` if `pid` is still running after
    /// `timeout`. It blocks no thread; dropping it removes its monitor.
    pub fn wait_exit_async(&self, pid: Pid, timeout: Duration) -> crate::ExitFuture {
        crate::ExitFuture::new(self, pid, timeout)
    }

    /// Removes a monitor set with [`RuntimeHandle::monitor`]; true if it was active.
    pub fn demonitor(&self, pid: Pid, monitor: MonitorRef) -> bool {
        signal::demonitor(&self.shared, pid, monitor)
    }

    /// Adds an exit hook to `pid`: it runs when `pid` exits, *before* its links and
    /// monitors are told. This is how a registry releases names before anyone learns of
    /// the exit. Remove it with [`RuntimeHandle::remove_exit_hook`] when it is no longer
    /// wanted, or it stays until `pid` exits.
    ///
    /// # Errors
    /// `Err(NoProc)` if `pid` is not alive.
    pub fn on_exit(&self, pid: Pid, hook: impl ExitObserver) -> Result<HookRef, NoProc> {
        signal::add_hook(&self.shared, pid, Arc::new(hook))
    }

    /// Removes an exit hook added with [`RuntimeHandle::on_exit`]: true if it was still
    /// there (it has not run, and now never will); false if `pid` has exited (the hook
    /// ran) or it was removed already.
    pub fn remove_exit_hook(&self, pid: Pid, hook: HookRef) -> bool {
        signal::remove_hook(&self.shared, pid, hook)
    }

    /// Links `a` and `b` from outside either.
    ///
    /// # Errors
    /// `Err(NoProc)` unless both are alive on this runtime; then no link is left on
    /// either side. If one of them exits while the link is being made, the other gets
    /// its exit signal (the link came first) and this returns `Err(NoProc)`.
    pub fn link(&self, a: Pid, b: Pid) -> Result<(), NoProc> {
        signal::link_pair(&self.shared, a, b)
    }

    fn shutdown_inner(&self, timeout: Duration) -> ShutdownReport {
        let s = &self.shared;
        if s.shutting_down.swap(true, Ordering::SeqCst) {
            return ShutdownReport::default();
        }
        let from = Pid::runtime(s.id);
        // Roots: processes started from outside, and orphans whose parent is gone. The
        // rest are stopped by their parents (supervisors, in their own order).
        for p in s.table.snapshot() {
            let parent = p.header().parent();
            if parent == from || s.table.get(parent).is_none() {
                deliver_exit(&p, from, ExitReason::Shutdown, false);
            }
        }
        if s.pool.is_current() && s.pool.sim().is_none() {
            // A worker cannot join itself: a thread of its own finishes the shutdown.
            let shared = Arc::clone(s);
            let finisher = crate::sync::thread::Builder::new()
                .name(format!("{}-shutdown", s.name))
                .spawn(move || finish_shutdown(&shared, timeout));
            if let Err(e) = finisher {
                log::error!("arbor: runtime {} could not start its shutdown thread: {e}", s.name);
            }
            return ShutdownReport::default();
        }
        finish_shutdown(s, timeout)
    }
}

/// Waits until no process can still make progress towards its exit (see
/// `Table::wait_settled`); on a deterministic runtime, drives it until then. True if settled
/// by `deadline`.
fn settle(s: &Arc<RtShared>, deadline: Option<Instant>) -> bool {
    match s.pool.sim() {
        None => s.table.wait_settled(deadline),
        Some(driver) => driver.settle(s, deadline),
    }
}

/// Waits for the processes (only those that can still make progress), kills what is left
/// at the deadline, stops the timer thread and the pool, and forgets the runtime.
fn finish_shutdown(s: &Arc<RtShared>, timeout: Duration) -> ShutdownReport {
    let from = Pid::runtime(s.id);
    let mut report = ShutdownReport::default();
    let deadline = s.now().checked_add(timeout);
    if !settle(s, deadline) {
        let alive: Vec<_> = s
            .table
            .snapshot()
            .into_iter()
            .filter(|p| p.header().is_alive())
            .collect();
        report.killed = alive.len();
        log::warn!(
            "arbor: {} processes still alive after the shutdown timeout; killing them",
            alive.len()
        );
        for p in alive {
            deliver_exit(&p, from, ExitReason::Killed, true);
        }
        settle(s, Some(s.now() + Duration::from_secs(1)));
    }
    for p in s.table.snapshot() {
        let h = p.header();
        if !h.is_alive() && p.is_running() {
            let info = h.info(0);
            report.stuck.push(StuckProcess {
                pid: info.pid,
                name: info.name,
                type_name: info.type_name,
            });
        }
    }
    if !report.stuck.is_empty() {
        log::warn!(
            "arbor: runtime {} shut down with {} handlers still running (their threads are left detached): {:?}",
            s.name,
            report.stuck.len(),
            report.stuck
        );
    }
    s.timers.shutdown();
    // Workers stuck in a handler are not waited for: they finish on their own.
    let grace = if report.stuck.is_empty() {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(100)
    };
    s.pool.shutdown(grace);
    let mut runtimes = RUNTIMES.lock();
    if runtimes
        .get(s.id as usize)
        .is_some_and(|w| w.as_ptr() == Arc::as_ptr(s))
    {
        runtimes.remove(s.id as usize);
    }
    report
}

impl fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("processes", &self.shared.table.len())
            .finish()
    }
}
