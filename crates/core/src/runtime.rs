//! `Runtime`: owns the worker pool, the timer service and the process table.
//!
//! Runtimes are explicit instances (tests make their own). [`Runtime::shutdown`], or
//! dropping the `Runtime`, stops every process (root processes get an exit signal
//! `Shutdown` from the runtime, newest first; supervisors stop their children in their
//! own order), waits for them up to the shutdown timeout, kills what is left, then
//! stops the timer thread and joins the workers.

use crate::process::{deliver_exit, Table};
use crate::scheduler::{Pool, PoolConfig};
use crate::timer::TimerService;
use crate::{
    signal, ExitObserver, ExitReason, GenServer, HookRef, MonitorRef, NoProc, Pid, ServerRef, StartError, StartOpts,
};
use parking_lot::Mutex;
use slab::Slab;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Every live runtime, by id: how an untyped [`Pid`] finds its runtime.
static RUNTIMES: Mutex<Slab<Weak<RtShared>>> = Mutex::new(Slab::new());

/// What the runtime's parts share.
pub(crate) struct RtShared {
    id: u32,
    name: String,
    pub(crate) pool: Arc<Pool>,
    pub(crate) table: Table,
    pub(crate) timers: TimerService,
    shutting_down: AtomicBool,
    shutdown_timeout: Duration,
}

impl RtShared {
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
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
}

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
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let mut runtimes = RUNTIMES.lock();
        let entry = runtimes.vacant_entry();
        let id = entry.key() as u32;
        let pool = Pool::start(PoolConfig {
            threads,
            name: self.name.clone(),
            stack_size: self.stack_size,
            max_blocking_threads: self.max_blocking_threads,
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
            pool,
            table: Table::new(id),
            timers,
            shutting_down: AtomicBool::new(false),
            shutdown_timeout: self.shutdown_timeout,
        });
        entry.insert(Arc::downgrade(&shared));
        Ok(Runtime {
            handle: RuntimeHandle { shared },
        })
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

    /// The runtime of the process running on this thread, if any.
    pub fn current() -> Option<RuntimeHandle> {
        crate::process::current().map(|p| RuntimeHandle::from_shared(Arc::clone(p.header().rt())))
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

    /// A snapshot of `pid`: its links, monitors, exit hooks, held calls, mailbox length
    /// (Erlang's `process_info/1`). `None` once it has been removed from the runtime.
    pub fn process_info(&self, pid: Pid) -> Option<crate::ProcessInfo> {
        let p = self.shared.table.get(pid)?;
        Some(p.header().info(p.queue_len()))
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
        let got = slot.wait(Instant::now().checked_add(timeout)).ok();
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
        let pa = self.shared.table.get(a).ok_or(NoProc)?;
        let pb = self.shared.table.get(b).ok_or(NoProc)?;
        if !pa.header().add_link(b) {
            return Err(NoProc);
        }
        if !pb.header().add_link(a) {
            pa.header().remove_link(b);
            return Err(NoProc);
        }
        if pa.header().is_closed() {
            // `a` began its exit meanwhile and signalled `b` (or will): nothing is left.
            pb.header().remove_link(a);
            return Err(NoProc);
        }
        Ok(())
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
        if s.pool.is_current() {
            // A worker cannot join itself: a thread of its own finishes the shutdown.
            let shared = Arc::clone(s);
            let finisher = std::thread::Builder::new()
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

/// Waits for the processes (only those that can still make progress), kills what is left
/// at the deadline, stops the timer thread and the pool, and forgets the runtime.
fn finish_shutdown(s: &Arc<RtShared>, timeout: Duration) -> ShutdownReport {
    let from = Pid::runtime(s.id);
    let mut report = ShutdownReport::default();
    let deadline = Instant::now().checked_add(timeout);
    if !s.table.wait_settled(deadline) {
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
        s.table.wait_settled(Some(Instant::now() + Duration::from_secs(1)));
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
