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
use crate::{signal, ExitObserver, ExitReason, GenServer, MonitorRef, NoProc, Pid, ServerRef, StartError, StartOpts};
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
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            threads: None,
            name: "arbor".to_string(),
            stack_size: None,
            shutdown_timeout: Duration::from_secs(30),
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
        })?;
        let timers = TimerService::start(&self.name)?;
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
    /// shutdown timeout is killed. Called from inside one of this runtime's processes, it
    /// stops the processes but cannot join the thread it runs on: the threads then exit
    /// on their own.
    pub fn shutdown(self) {
        self.handle.shutdown_inner();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.handle.shutdown_inner();
    }
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

    /// Removes a monitor set with [`RuntimeHandle::monitor`]; true if it was active.
    pub fn demonitor(&self, pid: Pid, monitor: MonitorRef) -> bool {
        signal::demonitor(&self.shared, pid, monitor)
    }

    /// Adds an exit hook to `pid`: it runs when `pid` exits, *before* its links and
    /// monitors are told. This is how a registry releases names before anyone learns of
    /// the exit. `Err(NoProc)` if `pid` is not alive.
    ///
    /// # Errors
    ///
    /// `NoProc` if `pid` is not alive; `hook` is then never run.
    pub fn on_exit(&self, pid: Pid, hook: impl ExitObserver) -> Result<(), NoProc> {
        signal::add_hook(&self.shared, pid, Arc::new(hook))
    }

    /// Links `a` and `b` from outside either (both must be alive on this runtime).
    ///
    /// # Errors
    ///
    /// `NoProc` if `a` or `b` is not alive on this runtime; no link is left behind.
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
        Ok(())
    }

    fn shutdown_inner(&self) {
        let s = &self.shared;
        if s.shutting_down.swap(true, Ordering::SeqCst) {
            return;
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
            log::warn!(
                "arbor: runtime {} shut down from its own worker; not joining threads",
                s.name
            );
            return;
        }
        let deadline = Instant::now() + s.shutdown_timeout;
        if !s.table.wait_empty(deadline) {
            log::warn!(
                "arbor: {} processes still alive after the shutdown timeout; killing them",
                s.table.len()
            );
            for p in s.table.snapshot() {
                deliver_exit(&p, from, ExitReason::Killed, true);
            }
            s.table.wait_empty(Instant::now() + Duration::from_secs(1));
        }
        s.timers.shutdown();
        s.pool.shutdown(Duration::from_secs(5));
        let mut runtimes = RUNTIMES.lock();
        if runtimes
            .get(s.id as usize)
            .is_some_and(|w| w.as_ptr() == Arc::as_ptr(s))
        {
            runtimes.remove(s.id as usize);
        }
    }
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
