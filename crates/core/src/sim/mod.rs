//! A deterministic runtime: the same program with the same seed makes the same choices
//! every run, in virtual time.
//!
//! A [`SimRuntime`] is an ordinary runtime (it derefs to a [`RuntimeHandle`], so
//! GenServers, supervisors and registries start on it unchanged) with three differences:
//!
//! - **No worker threads.** Ready processes wait in a set; the thread that drives the
//!   runtime (a helper below, or any blocking call: a call, a stop, `wait_exit`, a start
//!   with a timeout) runs them one at a time, each time choosing among the ready ones with
//!   a generator seeded by the seed.
//! - **Virtual time.** The runtime's clock stands still while anything is ready, and
//!   jumps to the next timer when every process is idle. `send_after`, inactivity
//!   timeouts, call and stop timeouts, shutdown timeouts and the supervisors'
//!   restart-intensity windows all read it, so ten minutes of timers pass in
//!   microseconds.
//! - **A trace.** Every scheduling choice, delivery, timer firing, exit and injected
//!   fault is logged ([`SimRuntime::trace`]); the same seed gives the same trace.
//!
//! A call made inside a handler does not block a thread: the caller drives the
//! simulation on its own stack until its reply (or its virtual deadline) arrives.
//! Call-cycle detection still answers `Deadlock`; and a wait that nothing can ever
//! satisfy (no task ready, no timer pending, no deadline) answers `Deadlock` too, where
//! the real runtime would hang.
//!
//! ```
//! use arbor_core::sim::SimRuntime;
//! use arbor_core::{Context, ExitReason, Flow, GenServer};
//! use std::time::Duration;
//!
//! struct Alarm;
//! impl GenServer for Alarm {
//!     type Args = ();
//!     type Info = ();
//!     type Call = ();
//!     type Reply = ();
//!     fn init((): (), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
//!         ctx.send_after(Duration::from_secs(600), ());
//!         Ok(Alarm)
//!     }
//!     fn handle_info(&mut self, (): (), _ctx: &mut Context<'_, Self>) -> Flow {
//!         Flow::Stop(ExitReason::Normal)
//!     }
//! }
//!
//! let sim = SimRuntime::new(7);
//! let alarm = sim.start::<Alarm>(()).unwrap();
//! // Ten minutes of virtual time, in microseconds of real time.
//! assert_eq!(alarm.wait_exit(Duration::from_secs(3600)), Some(ExitReason::Normal));
//! assert_eq!(sim.elapsed(), Duration::from_secs(600));
//! ```
//!
//! See `docs/testing.md` for how to test a supervision tree with it.

mod driver;
mod rng;
mod trace;

pub(crate) use driver::Driver;
pub use trace::{MessageKind, TraceEvent};

use crate::clock::{Clock, VirtualClock};
use crate::{CrashReports, Pid, Runtime, RuntimeHandle, ShutdownReport};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable [`SimConfig::from_env`] reads a seed from.
pub const SEED_ENV: &str = "ARBOR_SIM_SEED";

/// Settings of a [`SimRuntime`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub(crate) seed: u64,
    pub(crate) keep_trace: bool,
    pub(crate) faults: Option<Faults>,
    pub(crate) name: String,
    pub(crate) crash_reports: CrashReports,
    pub(crate) shutdown_timeout: Duration,
}

impl SimConfig {
    /// A deterministic runtime driven by `seed`, keeping its trace, with no faults.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            keep_trace: true,
            faults: None,
            name: "arbor-sim".to_string(),
            crash_reports: CrashReports::Auto,
            shutdown_timeout: Duration::from_secs(30),
        }
    }

    /// The seed in [`SEED_ENV`] (`ARBOR_SIM_SEED`) if it is set and a number, else a fresh
    /// seed from the operating system's randomness: a test that runs with a new seed each
    /// time, and replays a failing one when the variable names it (the seed is printed
    /// when a test panics while the runtime is alive).
    pub fn from_env() -> SimConfig {
        let seed = std::env::var(SEED_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(fresh_seed);
        SimConfig::new(seed)
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether to keep every trace event in memory (default true), for
    /// [`SimRuntime::trace`]. The digest ([`SimRuntime::trace_digest`]) is kept either
    /// way; turn this off for long runs, whose trace would grow without bound.
    pub fn keep_trace(mut self, keep: bool) -> SimConfig {
        self.keep_trace = keep;
        self
    }

    /// Injects faults from the start (see [`Faults`]; [`SimRuntime::set_faults`] turns
    /// them on later, once a tree is up).
    pub fn faults(mut self, faults: Faults) -> SimConfig {
        self.faults = Some(faults);
        self
    }

    /// The runtime's name (default `arbor-sim`).
    pub fn name(mut self, name: impl Into<String>) -> SimConfig {
        self.name = name.into();
        self
    }

    /// Where crash reports go (as [`Builder::crash_reports`](crate::Builder::crash_reports)).
    pub fn crash_reports(mut self, to: CrashReports) -> SimConfig {
        self.crash_reports = to;
        self
    }

    /// How long (virtual time) shutdown waits for processes before killing them (default
    /// 30 s, as [`Builder::shutdown_timeout`](crate::Builder::shutdown_timeout)).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> SimConfig {
        self.shutdown_timeout = timeout;
        self
    }

    /// Makes the runtime.
    pub fn build(self) -> SimRuntime {
        SimRuntime::with_config(self)
    }
}

/// A seed from the standard library's per-process random hashing keys (seeded by the
/// operating system) and the time: different on every call.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Seeded fault injection: at each scheduling step, with probability `1 / one_in`, the
/// driver kills a random live process, or sends it an exit signal with reason
/// `ExitReason::custom("injected fault")` (trappable: a supervisor gets it as an exit
/// message). Which step, which process and which kind all follow from the seed.
///
/// Root processes (started from outside any process: the top of a tree) are spared
/// unless [`Faults::include_roots`] says otherwise, and so is every pid given to
/// [`SimRuntime::protect`].
#[derive(Clone, Debug)]
pub struct Faults {
    pub(crate) rate: (u64, u64),
    pub(crate) kill_percent: u64,
    pub(crate) roots: bool,
    pub(crate) protected: Vec<Pid>,
    pub(crate) max: u64,
}

impl Faults {
    /// A fault at each step with probability `1 / one_in` (0: never); half kills, half
    /// exit signals; roots spared; no limit on their number.
    pub fn one_in(one_in: u64) -> Faults {
        Faults {
            rate: if one_in == 0 { (0, 0) } else { (1, one_in) },
            kill_percent: 50,
            roots: false,
            protected: Vec::new(),
            max: u64::MAX,
        }
    }

    /// The share of faults that are kills (the rest are exit signals), in percent (capped
    /// at 100).
    pub fn kill_percent(mut self, percent: u64) -> Faults {
        self.kill_percent = percent.min(100);
        self
    }

    /// Whether root processes may be hit too (default false).
    pub fn include_roots(mut self, yes: bool) -> Faults {
        self.roots = yes;
        self
    }

    /// At most `n` faults in the run.
    pub fn max(mut self, n: u64) -> Faults {
        self.max = n;
        self
    }
}

/// A deterministic runtime (see the [module docs](self)). It derefs to a
/// [`RuntimeHandle`]: start servers, supervisors and registries on it as on any runtime.
///
/// Dropping it shuts it down (in virtual time). If the thread is panicking when it is
/// dropped (a failed assertion in a test), it prints its seed to standard error first, so
/// that the failing run can be replayed exactly.
pub struct SimRuntime {
    runtime: Option<Runtime>,
    driver: Arc<Driver>,
}

impl SimRuntime {
    /// A deterministic runtime driven by `seed` (see [`SimConfig::new`]).
    pub fn new(seed: u64) -> SimRuntime {
        SimConfig::new(seed).build()
    }

    /// A deterministic runtime with these settings.
    pub fn with_config(config: SimConfig) -> SimRuntime {
        let clock = Arc::new(VirtualClock::new());
        let driver = Arc::new(Driver::new(&config, Arc::clone(&clock)));
        let runtime = crate::runtime::build_sim(&config, Arc::clone(&driver), Clock::Virtual(clock));
        SimRuntime {
            runtime: Some(runtime),
            driver,
        }
    }

    fn shared(&self) -> &Arc<crate::runtime::RtShared> {
        self.handle().shared()
    }

    /// The runtime's handle.
    pub fn handle(&self) -> &RuntimeHandle {
        self.runtime.as_ref().expect("present until dropped").handle()
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.driver.seed()
    }

    /// Virtual time since the runtime was made.
    pub fn elapsed(&self) -> Duration {
        self.driver.clock.elapsed()
    }

    /// The runtime's current (virtual) instant; also [`RuntimeHandle::now`].
    pub fn now(&self) -> Instant {
        self.driver.clock.now()
    }

    /// Runs one step: fires the timers due now, then runs one ready process (a slice of
    /// its messages) chosen by the seed. False if none was ready.
    pub fn step(&self) -> bool {
        match self.driver.enter() {
            Some(_driving) => self.driver.step(self.shared()),
            None => false,
        }
    }

    /// Runs processes until none is ready, without moving the clock (timers due now
    /// fire). Returns the number of steps taken.
    pub fn run_until_idle(&self) -> u64 {
        self.driver.run_until_idle(self.shared())
    }

    /// Moves the clock forward by `by`, running everything that becomes due on the way
    /// (timers in deadline order, each followed by the work it causes), and ends idle at
    /// exactly `now + by`.
    pub fn advance(&self, by: Duration) {
        let target = self.elapsed().saturating_add(by);
        self.driver.run_until(self.shared(), Some(target), || false);
    }

    /// Runs until `done` returns true, moving the clock from timer to timer, for at most
    /// `limit` of virtual time. Returns whether `done` held (`done` is checked before each
    /// step; it may look at anything, e.g. call a process: that call drives the runtime
    /// as any call does).
    pub fn run_until(&self, limit: Duration, done: impl FnMut() -> bool) -> bool {
        let target = self.elapsed().saturating_add(limit);
        self.driver.run_until(self.shared(), Some(target), done)
    }

    /// Runs until nothing is left to do: no process ready and no timer pending, for at
    /// most `limit` of virtual time. Returns whether it got there (a periodic timer never
    /// lets it).
    pub fn run_until_quiet(&self, limit: Duration) -> bool {
        let rt = Arc::clone(self.shared());
        let driver = Arc::clone(&self.driver);
        self.run_until(limit, move || driver.ready_len() == 0 && rt.timers.len() == 0)
    }

    /// Polls `future` to completion on this thread, driving the runtime while it is
    /// pending (a call future of this runtime resolves as its server runs), for at most
    /// `limit` of virtual time. `None` if it was still pending then.
    pub fn block_on<F: Future>(&self, future: F, limit: Duration) -> Option<F::Output> {
        use std::task::{Context, Poll, Wake, Waker};
        struct Flag(std::sync::atomic::AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(std::sync::atomic::AtomicBool::new(true)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        let mut out = None;
        self.run_until(limit, || {
            if flag.0.swap(false, std::sync::atomic::Ordering::SeqCst) {
                if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                    out = Some(v);
                }
            }
            out.is_some()
        });
        out
    }

    /// Every event so far (empty if [`SimConfig::keep_trace`] is off).
    pub fn trace(&self) -> Vec<TraceEvent> {
        self.driver.trace()
    }

    /// A digest of every event so far: equal for two runs whose traces are equal.
    pub fn trace_digest(&self) -> u64 {
        self.driver.trace_digest()
    }

    /// Number of events so far.
    pub fn trace_len(&self) -> u64 {
        self.driver.trace_len()
    }

    /// Scheduling steps taken so far.
    pub fn steps(&self) -> u64 {
        self.driver.steps()
    }

    /// The number the trace gives `pid` (its order of birth on this runtime), while it is
    /// in the runtime's table; 0 otherwise.
    pub fn process_number(&self, pid: Pid) -> u64 {
        self.driver.number(pid)
    }

    /// How many processes the trace holds a number for (the live ones, until they are
    /// finalized): for leak tests.
    pub fn numbered_processes(&self) -> usize {
        self.driver.numbered()
    }

    /// Turns fault injection on (or off, with `None`) from now on.
    pub fn set_faults(&self, faults: Option<Faults>) {
        self.driver.set_faults(faults);
    }

    /// Spares `pid` from fault injection.
    pub fn protect(&self, pid: Pid) {
        self.driver.protect(pid);
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.driver.faults_injected()
    }

    /// Shuts the runtime down in virtual time (as [`Runtime::shutdown`]): roots get an
    /// exit signal `Shutdown`, the runtime is driven until every process has exited or
    /// the shutdown timeout has passed (virtual), and what is left is killed.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.runtime.take().map(Runtime::shutdown).unwrap_or_default()
    }
}

impl std::ops::Deref for SimRuntime {
    type Target = RuntimeHandle;
    fn deref(&self) -> &RuntimeHandle {
        self.handle()
    }
}

impl std::fmt::Debug for SimRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRuntime")
            .field("seed", &self.seed())
            .field("elapsed", &self.elapsed())
            .field("steps", &self.steps())
            .finish()
    }
}

impl Drop for SimRuntime {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "arbor sim: panicked during a deterministic run with seed {seed}; replay it with \
                 SimConfig::new({seed}) or {SEED_ENV}={seed}",
                seed = self.seed()
            );
        }
    }
}
