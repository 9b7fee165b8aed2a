//! The worker pool.
//!
//! Run queues: one global FIFO (the injector) shared by every worker, plus a LIFO slot per
//! worker. A task scheduled *from* a worker goes into that worker's LIFO slot and runs
//! next on the same worker, so a process that wakes another hands it over without
//! crossing cores (ping-pong stays on one core); the slot's previous occupant moves to the
//! injector, where any worker can take it. After [`MAX_LIFO_STREAK`] LIFO runs in a row a
//! worker that finds tasks waiting in the injector queues its LIFO task behind them and
//! takes from the injector first, so a pair of processes bouncing messages cannot
//! starve the queue; with the injector empty the streak just goes on (moving the task
//! would only wake another worker to take it, and split the pair across cores). Tasks
//! scheduled from outside the pool, and tasks that spent their budget, go to the
//! injector.
//!
//! Blocking: a worker about to block (a call made from inside a handler, see
//! [`block_in_place`]) first empties its LIFO slot into the injector and counts itself as
//! blocked. If fewer than `target` workers are then left unblocked, a new worker thread is
//! started to compensate (up to `max_blocking_threads` beyond the target: at that cap the
//! worker blocks uncompensated, and the refusal is logged and counted). A stalled worker
//! (one running one task for over [`STALL`], in code that blocks without telling arbor)
//! has its LIFO task handed to the other workers by the pool's monitor thread. When the
//! blocked worker resumes, the pool may
//! briefly have more than `target` runnable workers; the excess retire after they have
//! been idle for [`KEEP_ALIVE`]. So with one worker thread, a chain of 64 servers, each
//! calling the next inside `handle_call`, completes: each blocked link of the chain is
//! compensated by a thread of its own.
//!
//! Lifecycle states of a worker thread: *running* a task, *searching* the queues,
//! *idle* (parked, listed in [`Sleep`]), *blocked* (inside `block_in_place`), *retired*.
//!
//! Under `cfg(loom)` this same code is model-checked (`tests/loom_pool.rs`, through
//! [`loom_face`]): loom's threads, thread-locals, atomics and locks, a streak of 2, one
//! spin round, and no monitor thread (a model calls [`Pool::monitor_round`] itself).

// Under loom, the parts only the runtime uses (introspection, the watchdog) go unused.
#![cfg_attr(loom, allow(dead_code))]

use super::lifo::LifoSlot;
use super::sleep::Sleep;
use crate::sync::{is_finished, thread, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(loom))]
use super::inline::RunnerShared;
#[cfg(not(loom))]
use crate::panic::message as panic_message;

/// loom: the panic module (and its hook) is not built.
#[cfg(loom)]
fn panic_message(_payload: &(dyn std::any::Any + Send)) -> String {
    "<a panic in a loom model>".to_string()
}

/// Something the pool can run: a process, type-erased.
pub(crate) trait Runnable: Send + Sync + 'static {
    /// Runs a slice of work. The task re-schedules itself if it has more.
    ///
    /// A panic that escapes it is caught by the worker, which then calls
    /// [`Runnable::recover`] on the task that [`note_escape`]d itself while unwinding (a
    /// drop guard: no `catch_unwind` of its own on the path every message takes).
    fn run(self: Arc<Self>);
    /// Cleans up after a panic escaped [`Runnable::run`] (after the unwinding, outside
    /// any destructor), given the panic's payload.
    fn recover(self: Arc<Self>, payload: Box<dyn std::any::Any + Send>) {
        drop(self);
        log::error!(
            "arbor: a task panicked outside its callbacks ({}); the worker carries on",
            panic_message(&*payload)
        );
    }
    /// Who this task runs, for the watchdog: a process's serial and its place (runtime
    /// and slot, packed), or zeros.
    fn id(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// A worker that has been running one task for longer than the watchdog's threshold.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stall {
    /// The task's `Runnable::id`.
    pub(crate) id: (u64, u64),
    /// How long it has been running, as the monitor saw it.
    pub(crate) running_for: Duration,
}

/// Told of each stall once, when it passes the threshold.
pub(crate) type StallHook = Box<dyn Fn(Stall) + Send + Sync>;

/// A unit of scheduling.
pub(crate) type Task = Arc<dyn Runnable>;

/// Consecutive LIFO-slot runs before a worker looks at the injector first.
#[cfg(not(loom))]
const MAX_LIFO_STREAK: u32 = 32;
/// loom: a streak short enough for a model to cut it.
#[cfg(loom)]
const MAX_LIFO_STREAK: u32 = 2;

/// How long an idle worker spins for work before it parks, at least (about 512 rounds of
/// the spin on the machine of docs/performance.md).
#[cfg(not(loom))]
const SPIN_BASE: Duration = Duration::from_micros(16);
/// How long an idle worker spins at most: when workers were woken this soon after they
/// ran out of work, the spin is stretched to cover that gap (see `Pool::note_wake`).
#[cfg(not(loom))]
const SPIN_MAX: Duration = Duration::from_micros(200);
/// loom: one look, enough to take the spinning paths of the sleep protocol (no clock).
#[cfg(loom)]
const SPIN_ROUNDS: u32 = 1;

/// How long a surplus worker (started to compensate a blocked one) lingers idle before it
/// exits.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Pool settings.
pub(crate) struct PoolConfig {
    /// Workers that run tasks at once (blocked ones aside).
    pub(crate) threads: usize,
    /// Prefix of worker thread names.
    pub(crate) name: String,
    /// Stack size of worker threads, if set.
    pub(crate) stack_size: Option<usize>,
    /// Most threads started beyond `threads` to stand in for blocked workers.
    pub(crate) max_blocking_threads: usize,
    /// How long one task may run before the watchdog reports it (`Duration::MAX`: never).
    pub(crate) watchdog: Duration,
    /// Whether an idle worker spins briefly for new work before it parks.
    pub(crate) busy_wait: bool,
}

/// How long a worker may run one task while a task waits in its LIFO slot before the
/// monitor hands that task to the other workers (a handler that blocks in code arbor
/// cannot see: I/O, a sleep, a std lock).
const STALL: Duration = Duration::from_millis(1);

/// The monitor's longest nap while every worker is idle.
const MONITOR_MAX_NAP: Duration = Duration::from_millis(16);

/// What a worker shares with the rest of the pool.
pub(crate) struct WorkerShared {
    /// The task to run next on this worker.
    lifo: LifoSlot<Task>,
    /// Task runs begun by this worker (written by it alone): unchanged between two of the
    /// monitor's looks means one task ran all that time.
    runs: AtomicUsize,
    /// True while the worker runs a task.
    busy: AtomicBool,
    /// The task it runs (`Runnable::id`), written by the worker before each run.
    cur_serial: AtomicU64,
    cur_place: AtomicU64,
}

/// Counters for introspection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PoolStats {
    pub(crate) threads: usize,
    pub(crate) blocked: usize,
    pub(crate) idle: usize,
    pub(crate) injector_len: usize,
    pub(crate) compensation_refused: u64,
    pub(crate) lifo_handoffs: u64,
    pub(crate) idle_spins: u64,
    pub(crate) inline_runners: usize,
}

struct Counts {
    /// Worker threads alive (running, searching, idle or blocked).
    threads: usize,
    /// Of those, how many are inside `block_in_place`.
    blocked: usize,
    /// Join handles of every worker ever started (finished ones are pruned).
    handles: Vec<thread::JoinHandle<()>>,
    /// Serial for thread names.
    next_name: usize,
    /// Every live worker's shared part, for the monitor.
    workers: Vec<Arc<WorkerShared>>,
    /// Times a blocked worker could not be compensated: the cap was reached.
    refused: u64,
    /// True while the cap holds (logged once per episode).
    at_cap: bool,
}

/// A pool of worker threads.
pub(crate) struct Pool {
    injector: Mutex<VecDeque<Task>>,
    injector_len: AtomicUsize,
    sleep: Sleep,
    counts: Mutex<Counts>,
    target: usize,
    name: String,
    stack_size: Option<usize>,
    max_blocking_threads: usize,
    /// Whether an idle worker spins for work before it parks (`Builder::busy_wait`).
    busy_wait: bool,
    shutdown: AtomicBool,
    /// Tasks the monitor took from a stalled worker's LIFO slot.
    handoffs: AtomicUsize,
    /// Spins of idle workers for work (`Builder::busy_wait`).
    idle_spins: AtomicUsize,
    /// How long the next idle spin lasts, in nanoseconds: `SPIN_BASE`, or longer while
    /// parked workers are woken soon after they ran out of work (see `note_wake`).
    spin_ns: AtomicU64,
    /// The monitor thread, joined at shutdown.
    monitor: Mutex<Option<thread::JoinHandle<()>>>,
    /// The watchdog's threshold.
    watchdog: Duration,
    /// Workers past the watchdog's threshold, as of the monitor's last look.
    stalls: Mutex<Vec<Stall>>,
    /// Told of each new stall.
    on_stall: std::sync::OnceLock<StallHook>,
    /// Threads outside the pool that run processes' turns inline, for the monitor.
    #[cfg(not(loom))]
    runners: Mutex<Vec<Arc<RunnerShared>>>,
}

struct WorkerCtx {
    pool: Arc<Pool>,
    shared: Arc<WorkerShared>,
}

impl WorkerCtx {
    fn take_lifo(&self) -> Option<Task> {
        self.shared.lifo.take()
    }
}

#[cfg(not(loom))]
thread_local! {
    static WORKER: RefCell<Option<WorkerCtx>> = const { RefCell::new(None) };
}
// loom runs its threads on one OS thread: a std thread-local would be shared by them.
#[cfg(loom)]
loom::thread_local! {
    static WORKER: RefCell<Option<WorkerCtx>> = RefCell::new(None);
}

impl Pool {
    /// Starts `config.threads` workers.
    pub(crate) fn start(config: PoolConfig) -> std::io::Result<Arc<Pool>> {
        let pool = Arc::new(Pool {
            injector: Mutex::new(VecDeque::new()),
            injector_len: AtomicUsize::new(0),
            sleep: Sleep::new(),
            counts: Mutex::new(Counts {
                threads: 0,
                blocked: 0,
                handles: Vec::new(),
                next_name: 0,
                workers: Vec::new(),
                refused: 0,
                at_cap: false,
            }),
            target: config.threads.max(1),
            name: config.name,
            stack_size: config.stack_size,
            max_blocking_threads: config.max_blocking_threads,
            busy_wait: config.busy_wait,
            shutdown: AtomicBool::new(false),
            handoffs: AtomicUsize::new(0),
            idle_spins: AtomicUsize::new(0),
            #[cfg(not(loom))]
            spin_ns: AtomicU64::new(SPIN_BASE.as_nanos() as u64),
            #[cfg(loom)]
            spin_ns: AtomicU64::new(0),
            monitor: Mutex::new(None),
            watchdog: config.watchdog,
            stalls: Mutex::new(Vec::new()),
            on_stall: std::sync::OnceLock::new(),
            #[cfg(not(loom))]
            runners: Mutex::new(Vec::new()),
        });
        let started = (|| {
            for _ in 0..pool.target {
                let mut counts = pool.counts.lock();
                pool.spawn_worker(&mut counts)?;
            }
            // Under loom the monitor is no thread of its own: a model calls
            // `monitor_round` where it wants a look (a timed loop would not end).
            #[cfg(not(loom))]
            {
                let weak = Arc::downgrade(&pool);
                let monitor = thread::Builder::new()
                    .name(format!("{}-monitor", pool.name))
                    .spawn(move || monitor_main(weak))?;
                *pool.monitor.lock() = Some(monitor);
            }
            Ok(())
        })();
        if let Err(e) = started {
            // Leave no thread behind a start that failed part-way.
            pool.shutdown(Duration::from_secs(5));
            return Err(e);
        }
        Ok(pool)
    }

    fn spawn_worker(self: &Arc<Self>, counts: &mut Counts) -> std::io::Result<()> {
        counts.handles.retain(|h| !is_finished(h));
        let mut builder = thread::Builder::new().name(format!("{}-{}", self.name, counts.next_name));
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        let pool = Arc::clone(self);
        let shared = Arc::new(WorkerShared {
            lifo: LifoSlot::new(),
            runs: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            cur_serial: AtomicU64::new(0),
            cur_place: AtomicU64::new(0),
        });
        let mine = Arc::clone(&shared);
        let handle = builder.spawn(move || pool.worker_main(mine))?;
        counts.next_name += 1;
        counts.threads += 1;
        counts.handles.push(handle);
        counts.workers.push(shared);
        Ok(())
    }

    /// Schedules a task: into the current worker's LIFO slot when called on one of this
    /// pool's workers, else onto the injector.
    pub(crate) fn schedule(self: &Arc<Self>, task: Task) {
        let task = WORKER.with(|w| {
            let mut w = w.borrow_mut();
            match w.as_mut() {
                Some(ctx) if Arc::ptr_eq(&ctx.pool, self) => Ok(ctx.shared.lifo.replace(task)),
                _ => Err(task),
            }
        });
        let task = match task {
            Ok(displaced) => displaced,
            // Off the pool, an inline runner may keep it (see `inline.rs`).
            #[cfg(not(loom))]
            Err(task) => super::inline::keep(self, task),
            #[cfg(loom)]
            Err(task) => Some(task),
        };
        if let Some(task) = task {
            self.inject(task);
        }
    }

    /// Queues a task on the injector and wakes an idle worker if there is one and no
    /// worker is spinning for work already (see [`Sleep::notify`]).
    pub(crate) fn inject(&self, task: Task) {
        self.push_injector(task);
        self.sleep.notify();
    }

    /// Appends a task to the injector, waking no one; returns how many were queued
    /// before it.
    fn push_injector(&self, task: Task) -> usize {
        let mut q = self.injector.lock();
        let before = q.len();
        q.push_back(task);
        self.injector_len.store(q.len(), Ordering::SeqCst);
        before
    }

    /// Re-queues a task that spent its budget, from the worker that ran it. That worker
    /// looks at the injector next, so another worker is woken only if there is other work
    /// waiting for it: tasks already queued, or a task in this worker's LIFO slot (which
    /// runs first). A lone busy process then keeps its worker without a wake-up (a futex
    /// call) every budget. Off the pool, this is [`Pool::inject`].
    pub(crate) fn requeue(self: &Arc<Self>, task: Task) {
        let lifo_busy = WORKER.with(|w| match w.borrow().as_ref() {
            Some(ctx) if Arc::ptr_eq(&ctx.pool, self) => Some(ctx.shared.lifo.is_some()),
            _ => None,
        });
        let Some(lifo_busy) = lifo_busy else {
            return self.inject(task);
        };
        let others = self.push_injector(task) > 0;
        if others || lifo_busy {
            self.sleep.notify();
        }
    }

    /// Takes the oldest injected task. If more wait, makes sure a worker is on its way for
    /// them (see [`Sleep::notify`]): a burst that a spinning worker absorbed spreads over
    /// the idle workers one wake-up at a time.
    fn pop_injector(&self) -> Option<Task> {
        if self.injector_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let (t, left) = {
            let mut q = self.injector.lock();
            let t = q.pop_front();
            self.injector_len.store(q.len(), Ordering::SeqCst);
            (t, q.len())
        };
        if t.is_some() && left > 0 {
            self.sleep.notify();
        }
        t
    }

    fn has_work(&self) -> bool {
        self.injector_len.load(Ordering::SeqCst) > 0 || self.shutdown.load(Ordering::SeqCst)
    }

    fn worker_main(self: Arc<Self>, shared: Arc<WorkerShared>) {
        WORKER.with(|w| {
            *w.borrow_mut() = Some(WorkerCtx {
                pool: Arc::clone(&self),
                shared: Arc::clone(&shared),
            })
        });
        let mut streak = 0u32;
        loop {
            let lifo = if streak < MAX_LIFO_STREAK {
                WORKER.with(|w| w.borrow().as_ref().and_then(|c| c.take_lifo()))
            } else {
                None
            };
            let task = match lifo {
                Some(t) => {
                    streak += 1;
                    Some(t)
                }
                None => {
                    streak = 0;
                    // A streak cut short leaves the LIFO task behind: queue it behind the
                    // injector's tasks, for fairness. With nothing queued there is no one
                    // to be fair to, and it just runs on.
                    match WORKER.with(|w| w.borrow().as_ref().and_then(|c| c.take_lifo())) {
                        Some(t) if self.injector_len.load(Ordering::SeqCst) == 0 => Some(t),
                        Some(t) => {
                            // Others wait, so `pop_injector` wakes a worker for the rest.
                            self.push_injector(t);
                            self.pop_injector()
                        }
                        None => self.pop_injector(),
                    }
                }
            };
            match task {
                Some(t) => {
                    // Only this thread writes `runs`: a load and a store, no read-modify-write.
                    shared
                        .runs
                        .store(shared.runs.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                    let (serial, place) = t.id();
                    shared.cur_serial.store(serial, Ordering::Relaxed);
                    shared.cur_place.store(place, Ordering::Relaxed);
                    shared.busy.store(true, Ordering::Relaxed);
                    // The last line of defence that keeps the worker thread alive whatever
                    // a task does: a task's callbacks are caught where they run, and a task
                    // that lets a panic escape notes itself (see `note_escape`) so that it
                    // can clean up after the unwinding, here.
                    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run())) {
                        // loom aborts a model with a panic (a failed assertion, a deadlock
                        // found): that one must reach loom, not the worker's catch.
                        #[cfg(loom)]
                        std::panic::resume_unwind(payload);
                        #[cfg(not(loom))]
                        recover_escaped(payload);
                    }
                    shared.busy.store(false, Ordering::Relaxed);
                }
                None => {
                    if self.shutdown.load(Ordering::SeqCst) {
                        self.retire(&shared);
                        break;
                    }
                    let spun_since = match self.spin_for_work() {
                        Ok(()) => continue,
                        Err(since) => since,
                    };
                    if !self.idle(&shared, spun_since) {
                        break;
                    }
                }
            }
        }
        WORKER.with(|w| {
            if let Some(ctx) = w.borrow_mut().take() {
                if let Some(t) = ctx.take_lifo() {
                    self.inject(t);
                }
            }
        });
    }

    /// Takes a worker off the books (under the counts lock, with `threads`).
    fn retire_locked(counts: &mut Counts, shared: &Arc<WorkerShared>) {
        counts.threads -= 1;
        counts.workers.retain(|w| !Arc::ptr_eq(w, shared));
    }

    fn retire(&self, shared: &Arc<WorkerShared>) {
        Self::retire_locked(&mut self.counts.lock(), shared);
    }

    /// Before parking, one worker at a time spins briefly for new work: a message that
    /// arrives within microseconds (a caller's next request, the next hop of a ring) is
    /// then picked up without a futex wake-up. Returns true if work appeared. Out of line,
    /// so that a profile shows the idle spin apart (docs/performance.md).
    ///
    /// `Err` if no work appeared, with when the spin began (`None` if this worker did not
    /// spin), for [`Pool::idle`]'s measure of the idle gap.
    #[inline(never)]
    fn spin_for_work(&self) -> Result<(), Option<std::time::Instant>> {
        if !self.busy_wait || !self.sleep.start_spinning() {
            return Err(None);
        }
        self.idle_spins.fetch_add(1, Ordering::Relaxed);
        let found = self.spin_rounds();
        self.sleep.stop_spinning(|| self.injector_len.load(Ordering::SeqCst));
        found
    }

    /// The spin itself: looks for work, yielding every 16 rounds, until some appears
    /// (`Ok`) or the spin's time is up (`Err`, with when it began). The clock is read at
    /// the yields only.
    #[cfg(not(loom))]
    fn spin_rounds(&self) -> Result<(), Option<std::time::Instant>> {
        let budget = Duration::from_nanos(self.spin_ns.load(Ordering::Relaxed));
        let start = std::time::Instant::now();
        let mut i = 0u32;
        loop {
            if self.has_work() {
                return Ok(());
            }
            i = i.wrapping_add(1);
            if i % 16 == 0 {
                if start.elapsed() >= budget {
                    return Err(Some(start));
                }
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// loom: `SPIN_ROUNDS` looks, no clock.
    #[cfg(loom)]
    fn spin_rounds(&self) -> Result<(), Option<std::time::Instant>> {
        if (0..SPIN_ROUNDS).any(|_| self.has_work()) {
            Ok(())
        } else {
            Err(None)
        }
    }

    /// A parked worker was woken for work `gap` after it ran out of work (its spin and its
    /// park together: measured from the park alone, a spin that just missed would shrink
    /// the next one, and every other call of a steady pace would pay a wake-up). A gap the
    /// spin could have covered (at most `SPIN_MAX`) stretches the next spins to twice the
    /// gap: work that
    /// comes back at a steady pace (a remote peer's next call, a timer's next tick) is then
    /// caught by the spin instead of by a futex wake-up, as the BEAM's busy-waiting
    /// schedulers catch it. A longer gap puts the spin back to `SPIN_BASE`. Spinning
    /// yields every few rounds, and `Builder::busy_wait(false)` turns it off.
    #[cfg(not(loom))]
    fn note_wake(&self, gap: Duration) {
        let ns = if gap <= SPIN_MAX {
            (gap * 2).clamp(SPIN_BASE, SPIN_MAX)
        } else {
            SPIN_BASE
        };
        self.spin_ns.store(ns.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Parks an idle worker. Returns false if this worker should retire.
    fn idle(self: &Arc<Self>, shared: &Arc<WorkerShared>, spun_since: Option<std::time::Instant>) -> bool {
        let surplus = {
            let counts = self.counts.lock();
            counts.threads - counts.blocked > self.target
        };
        let timeout = if surplus { Some(KEEP_ALIVE) } else { None };
        #[cfg(not(loom))]
        let idle_since = if self.busy_wait {
            spun_since.or_else(|| Some(std::time::Instant::now()))
        } else {
            None
        };
        #[cfg(loom)]
        let _ = spun_since;
        let woken = self.sleep.sleep(timeout, || self.has_work());
        #[cfg(not(loom))]
        if let (true, Some(since)) = (woken, idle_since) {
            self.note_wake(since.elapsed());
        }
        if surplus && !woken && !self.has_work() {
            let mut counts = self.counts.lock();
            if counts.threads - counts.blocked > self.target {
                // Retire. `threads` is decremented here, under the same lock as the
                // check, so two surplus workers cannot both retire for one surplus.
                Self::retire_locked(&mut counts, shared);
                return false;
            }
        }
        true
    }

    /// Stops every worker once the queues drain and joins them, waiting at most `grace`
    /// for threads stuck in a handler. Called off the pool.
    pub(crate) fn shutdown(&self, grace: Duration) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.sleep.wake_all();
        if let Some(monitor) = self.monitor.lock().take() {
            monitor.thread().unpark();
            let _ = monitor.join();
        }
        let deadline = std::time::Instant::now() + grace;
        loop {
            let handles = std::mem::take(&mut self.counts.lock().handles);
            if handles.is_empty() {
                break;
            }
            for h in handles {
                // loom: no clock to poll against; every modelled worker ends, so join it.
                #[cfg(loom)]
                let _ = (deadline, h.join());
                #[cfg(not(loom))]
                {
                    while !h.is_finished() && std::time::Instant::now() < deadline {
                        self.sleep.wake_all();
                        thread::sleep(Duration::from_millis(1));
                    }
                    if h.is_finished() {
                        let _ = h.join();
                    } else {
                        log::warn!("arbor: a worker thread is stuck in a handler; leaving it detached");
                    }
                }
            }
        }
    }

    /// True if the calling thread is one of this pool's workers, or runs one of its
    /// processes' turns inline.
    pub(crate) fn is_current(self: &Arc<Self>) -> bool {
        let worker = WORKER.with(|w| matches!(w.borrow().as_ref(), Some(c) if Arc::ptr_eq(&c.pool, self)));
        #[cfg(not(loom))]
        let worker = worker || super::inline::running_on(self);
        worker
    }

    /// Lets the monitor watch an inline runner's turns.
    #[cfg(not(loom))]
    pub(super) fn register_runner(&self, runner: &Arc<RunnerShared>) {
        self.runners.lock().push(Arc::clone(runner));
    }

    /// Stops watching an inline runner.
    #[cfg(not(loom))]
    pub(super) fn unregister_runner(&self, runner: &Arc<RunnerShared>) {
        self.runners.lock().retain(|r| !Arc::ptr_eq(r, runner));
    }

    /// Inline runners the monitor watches.
    #[cfg(not(loom))]
    pub(crate) fn runner_count(&self) -> usize {
        self.runners.lock().len()
    }

    /// Worker threads alive now (for tests and introspection).
    pub(crate) fn thread_count(&self) -> usize {
        self.counts.lock().threads
    }

    /// Counters, for introspection.
    pub(crate) fn stats(&self) -> PoolStats {
        let counts = self.counts.lock();
        PoolStats {
            threads: counts.threads,
            blocked: counts.blocked,
            idle: self.sleep.idle_count(),
            injector_len: self.injector_len.load(Ordering::Relaxed),
            compensation_refused: counts.refused,
            lifo_handoffs: self.handoffs.load(Ordering::Relaxed) as u64,
            idle_spins: self.idle_spins.load(Ordering::Relaxed) as u64,
            #[cfg(not(loom))]
            inline_runners: self.runner_count(),
            #[cfg(loom)]
            inline_runners: 0,
        }
    }

    /// Sets who is told of each new stall (once).
    pub(crate) fn set_stall_hook(&self, hook: StallHook) {
        let _ = self.on_stall.set(hook);
    }

    /// Workers running one task for longer than the watchdog's threshold.
    pub(crate) fn stalls(&self) -> Vec<Stall> {
        self.stalls.lock().clone()
    }

    /// One look of the monitor: hands the LIFO task of every worker that has run one task
    /// since the previous look to the injector, and reports tasks running past the
    /// watchdog's threshold. Returns whether any worker was busy.
    fn monitor_round(&self, last: &mut Vec<Look>) -> bool {
        let workers: Vec<Arc<WorkerShared>> = self.counts.lock().workers.clone();
        let now = std::time::Instant::now();
        let mut any_busy = false;
        let mut seen = Vec::with_capacity(workers.len());
        let mut stalls = Vec::new();
        for w in &workers {
            let key = Arc::as_ptr(w) as *const () as usize;
            let runs = w.runs.load(Ordering::Relaxed);
            let busy = w.busy.load(Ordering::Relaxed);
            any_busy |= busy;
            let (mut look, stalled) = Look::after(last, key, runs, busy, now);
            if stalled {
                let task = w.lifo.steal();
                if let Some(task) = task {
                    self.handoffs.fetch_add(1, Ordering::Relaxed);
                    self.inject(task);
                }
                let id = (
                    w.cur_serial.load(Ordering::Relaxed),
                    w.cur_place.load(Ordering::Relaxed),
                );
                self.watch(&mut look, now, id, &mut stalls);
            }
            seen.push(look);
        }
        // Inline runners: a turn seen at two looks in a row has run past the stall period;
        // its thread's own job is wanted elsewhere (`RunnerShared::stalled`, once a turn).
        #[cfg(not(loom))]
        let mut stalled_runners = Vec::new();
        #[cfg(not(loom))]
        for r in self.runners.lock().iter() {
            let key = Arc::as_ptr(r) as *const () as usize;
            let runs = r.runs.load(Ordering::Acquire);
            let busy = r.busy.load(Ordering::Acquire);
            any_busy |= busy;
            let (mut look, stalled) = Look::after(last, key, runs, busy, now);
            if stalled {
                stalled_runners.push(Arc::clone(r));
                let id = (
                    r.cur_serial.load(Ordering::Relaxed),
                    r.cur_place.load(Ordering::Relaxed),
                );
                self.watch(&mut look, now, id, &mut stalls);
            }
            seen.push(look);
        }
        // Their hooks run outside the list's lock (a hook may start a thread).
        #[cfg(not(loom))]
        for r in stalled_runners {
            r.stalled();
        }
        *last = seen;
        *self.stalls.lock() = stalls;
        any_busy
    }
}

impl Pool {
    /// The watchdog's part of a look at a run seen before (`look.since` is when it was
    /// first seen): past the threshold, the run is a stall, reported once.
    fn watch(&self, look: &mut Look, now: std::time::Instant, id: (u64, u64), stalls: &mut Vec<Stall>) {
        let running_for = now.saturating_duration_since(look.since);
        if running_for >= self.watchdog {
            let stall = Stall { id, running_for };
            stalls.push(stall);
            if !look.reported {
                look.reported = true;
                if let Some(hook) = self.on_stall.get() {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(stall)));
                }
            }
        }
    }
}

/// What the monitor saw of one worker at its last look.
#[derive(Clone, Copy)]
struct Look {
    key: usize,
    runs: usize,
    /// When the monitor first saw this run.
    since: std::time::Instant,
    /// Whether the watchdog reported it already.
    reported: bool,
}

impl Look {
    /// This look at a worker (or runner) `key` that has begun `runs` runs, and whether it
    /// is stalled: busy with the same run as at the previous look (`last`).
    fn after(last: &[Look], key: usize, runs: usize, busy: bool, now: std::time::Instant) -> (Look, bool) {
        match last.iter().find(|l| l.key == key && l.runs == runs && busy) {
            // The same run as at the previous look: stalled since that look's `since`.
            Some(prev) => (*prev, true),
            None => (
                Look {
                    key,
                    runs,
                    since: now,
                    reported: false,
                },
                false,
            ),
        }
    }
}

/// The pool's monitor: every [`STALL`] while any worker is busy (napping longer while
/// all are idle), it hands a stalled worker's LIFO task to the others, as Go's sysmon
/// retakes a processor from a thread stuck in a system call. Ends with the pool.
#[cfg(not(loom))]
fn monitor_main(pool: std::sync::Weak<Pool>) {
    let mut last = Vec::new();
    let mut nap = STALL;
    loop {
        {
            let Some(pool) = pool.upgrade() else { return };
            if pool.shutdown.load(Ordering::SeqCst) {
                return;
            }
            if pool.monitor_round(&mut last) {
                nap = STALL;
            } else {
                nap = (nap * 2).min(MONITOR_MAX_NAP);
            }
        }
        thread::park_timeout(nap);
    }
}

#[cfg(not(loom))]
thread_local! {
    /// The task whose `run` a panic is escaping, noted by its drop guard while unwinding.
    static ESCAPED: RefCell<Option<Task>> = const { RefCell::new(None) };
}
#[cfg(loom)]
loom::thread_local! {
    static ESCAPED: RefCell<Option<Task>> = RefCell::new(None);
}

/// Notes, from a drop guard running while a panic unwinds out of [`Runnable::run`], the
/// task to [`Runnable::recover`] once the worker has caught the panic.
pub(crate) fn note_escape(task: Task) {
    let _ = ESCAPED.try_with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            *e = Some(task);
        }
    });
}

/// After the worker caught a panic that escaped a task: lets the task that noted itself
/// clean up (itself caught: the worker must survive that too).
pub(crate) fn recover_escaped(payload: Box<dyn std::any::Any + Send>) {
    match ESCAPED.with(|e| e.borrow_mut().take()) {
        Some(task) => {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.recover(payload))).is_err() {
                log::error!("arbor: a task panicked while cleaning up after a panic; the worker carries on");
            }
        }
        None => log::error!(
            "arbor: a task panicked outside its callbacks ({}); the worker carries on",
            panic_message(&*payload)
        ),
    }
}

/// True if the calling thread is a worker of any pool.
#[cfg(not(loom))]
pub(super) fn on_any_pool() -> bool {
    WORKER.with(|w| w.borrow().is_some())
}

/// Runs `f`, which may block, without starving the pool: if the calling thread is a
/// worker, its LIFO task is handed to the injector and, when no other worker is free, a
/// new worker is started to stand in for this one while it blocks. Off the pool, just runs
/// `f`.
pub(crate) fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
    let pool = WORKER.with(|w| {
        let w = w.borrow();
        w.as_ref().map(|ctx| (Arc::clone(&ctx.pool), ctx.take_lifo()))
    });
    let Some((pool, lifo)) = pool else {
        // A turn run inline by a thread outside the pool: that thread's own job must be
        // done elsewhere while it blocks.
        #[cfg(not(loom))]
        super::inline::about_to_block();
        return f();
    };
    if let Some(t) = lifo {
        pool.inject(t);
    }
    {
        let mut counts = pool.counts.lock();
        counts.blocked += 1;
        let unblocked = counts.threads - counts.blocked;
        // Fewer runnable (unblocked) workers than the target: start one, even if one of
        // those left is idle right now, since it counts towards the target already.
        if unblocked < pool.target && !pool.shutdown.load(Ordering::SeqCst) {
            if counts.threads >= pool.target + pool.max_blocking_threads {
                // At the cap: this worker blocks uncompensated. The pool runs with fewer
                // workers until a blocked one resumes.
                counts.refused += 1;
                if !counts.at_cap {
                    counts.at_cap = true;
                    log::warn!(
                        "arbor: {} workers blocked and the cap of {} compensating threads reached; \
                         processes wait for a worker to resume (raise Builder::max_blocking_threads, \
                         or block less inside handlers)",
                        counts.blocked,
                        pool.max_blocking_threads
                    );
                }
            } else if let Err(e) = pool.spawn_worker(&mut counts) {
                log::error!("arbor: could not start a compensating worker thread: {e}");
            }
        } else if counts.at_cap && counts.threads < pool.target + pool.max_blocking_threads {
            counts.at_cap = false;
        }
    }
    struct Unblock<'a>(&'a Pool);
    impl Drop for Unblock<'_> {
        fn drop(&mut self) {
            self.0.counts.lock().blocked -= 1;
        }
    }
    let _unblock = Unblock(&pool);
    f()
}

/// The pool as the loom models (`tests/loom_pool.rs`) drive it: the real [`Pool`], its
/// worker loop and [`block_in_place`], behind a public face of its own, so that the pool's
/// items stay crate-private.
#[cfg(loom)]
pub mod loom_face {
    use super::{Pool, PoolConfig, Runnable};
    use std::sync::Arc;
    use std::time::Duration;

    /// A model's task.
    pub trait Job: Send + Sync + 'static {
        /// Runs it, on a worker.
        fn run_job(self: Arc<Self>);
    }

    impl<J: Job> Runnable for J {
        fn run(self: Arc<Self>) {
            self.run_job()
        }
    }

    /// A pool of modelled worker threads (no monitor thread: see [`PoolHandle::monitor_round`]).
    #[derive(Clone)]
    pub struct PoolHandle(Arc<Pool>);

    /// What the pool counts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Counts {
        /// Worker threads alive.
        pub threads: usize,
        /// Of those, inside `block_in_place`.
        pub blocked: usize,
        /// Blocked workers left uncompensated at the cap.
        pub refused: u64,
    }

    impl PoolHandle {
        /// Starts `threads` workers, with at most `max_blocking_threads` more to
        /// compensate blocked ones.
        pub fn start(threads: usize, max_blocking_threads: usize) -> PoolHandle {
            let pool = Pool::start(PoolConfig {
                threads,
                name: "loom".into(),
                stack_size: None,
                max_blocking_threads,
                watchdog: Duration::MAX,
                busy_wait: true,
            })
            .expect("loom spawns threads without fail");
            PoolHandle(pool)
        }

        /// [`Pool::schedule`]: into this worker's LIFO slot on a worker, else injected.
        pub fn schedule<J: Job>(&self, job: Arc<J>) {
            self.0.schedule(job)
        }

        /// [`Pool::inject`].
        pub fn inject<J: Job>(&self, job: Arc<J>) {
            self.0.inject(job)
        }

        /// [`Pool::requeue`]: a task that spent its budget.
        pub fn requeue<J: Job>(&self, job: Arc<J>) {
            self.0.requeue(job)
        }

        /// One look of the pool's monitor: hands the LIFO task of a worker seen running the
        /// same task as at the previous look (`looks`) to the injector.
        pub fn monitor_round(&self, looks: &mut Looks) {
            self.0.monitor_round(&mut looks.0);
        }

        /// [`Pool::shutdown`]: stops and joins every worker.
        pub fn shutdown(&self) {
            self.0.shutdown(Duration::from_secs(60))
        }

        /// The pool's counts.
        pub fn counts(&self) -> Counts {
            let c = self.0.counts.lock();
            Counts {
                threads: c.threads,
                blocked: c.blocked,
                refused: c.refused,
            }
        }

        /// Tasks the monitor handed from a stalled worker's slot to the injector.
        pub fn handoffs(&self) -> usize {
            self.0.handoffs.load(crate::sync::Ordering::SeqCst)
        }
    }

    /// What the monitor saw at its previous look.
    #[derive(Default)]
    pub struct Looks(Vec<super::Look>);

    /// [`super::block_in_place`].
    pub fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
        super::block_in_place(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Panics out of `run` with a guard that notes it, as a process's runner does.
    struct Bomb {
        recovered: mpsc::Sender<String>,
    }

    impl Runnable for Bomb {
        fn run(self: Arc<Self>) {
            struct Escape(Arc<Bomb>);
            impl Drop for Escape {
                fn drop(&mut self) {
                    note_escape(Arc::clone(&self.0) as Task);
                }
            }
            let _escape = Escape(Arc::clone(&self));
            std::panic::panic_any("the bomb went off".to_string());
        }

        fn recover(self: Arc<Self>, payload: Box<dyn std::any::Any + Send>) {
            let _ = self.recovered.send(crate::panic::message(&*payload));
        }
    }

    /// Sends once it has run.
    struct Ping(mpsc::Sender<String>);

    impl Runnable for Ping {
        fn run(self: Arc<Self>) {
            let _ = self.0.send("ran".into());
        }
    }

    #[test]
    fn a_panic_escaping_a_task_is_recovered_by_that_task_and_the_worker_survives() {
        let pool = Pool::start(PoolConfig {
            threads: 1,
            name: "escape-test".into(),
            stack_size: None,
            max_blocking_threads: 4,
            watchdog: Duration::MAX,
            busy_wait: true,
        })
        .expect("a pool");
        let (tx, rx) = mpsc::channel();
        pool.inject(Arc::new(Bomb { recovered: tx.clone() }));
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("recover was called");
        assert_eq!(got, "the bomb went off");
        // The only worker is still there to run the next task.
        pool.inject(Arc::new(Ping(tx)));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).expect("the worker survived"),
            "ran"
        );
        assert_eq!(pool.thread_count(), 1);
        pool.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn a_wake_soon_after_parking_stretches_the_spin_and_a_late_one_resets_it() {
        let pool = Pool::start(PoolConfig {
            threads: 1,
            name: "spin-test".into(),
            stack_size: None,
            max_blocking_threads: 1,
            watchdog: Duration::MAX,
            busy_wait: true,
        })
        .expect("a pool");
        let spin = || Duration::from_nanos(pool.spin_ns.load(Ordering::Relaxed));
        assert_eq!(spin(), SPIN_BASE);
        // Work came back 50 us after the worker parked: the next spins cover twice that.
        pool.note_wake(Duration::from_micros(50));
        assert_eq!(spin(), Duration::from_micros(100));
        // Never past the cap, never under the base.
        pool.note_wake(SPIN_MAX - Duration::from_micros(1));
        assert_eq!(spin(), SPIN_MAX);
        pool.note_wake(Duration::from_micros(1));
        assert_eq!(spin(), SPIN_BASE);
        // A gap no spin should cover puts it back to the base.
        pool.note_wake(Duration::from_micros(50));
        pool.note_wake(SPIN_MAX + Duration::from_micros(1));
        assert_eq!(spin(), SPIN_BASE);
        pool.shutdown(Duration::from_secs(5));
    }
}
