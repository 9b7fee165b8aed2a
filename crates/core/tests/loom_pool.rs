//! loom models of the worker pool: the real `Pool` of `scheduler/pool.rs` (its worker loop,
//! LIFO slot, injector, spin-then-park, requeue and `block_in_place`), driven through
//! `loom_api::pool`. Under loom the streak is 2 and a worker spins one round.
//!
//! Each model waits for its tasks the way a lost wake-up would show: a waiting thread
//! parks until the last task unparks it, and nothing else wakes the workers before that
//! (shutdown comes after). A task left queued while every worker sleeps leaves every
//! thread parked, which loom reports as a deadlock. Each task counts its runs: exactly
//! once, after shutdown has joined every worker.
//!
//! Two constraints of loom 0.7 shape the waits. A wait that yields in a loop does not
//! do: loom may schedule the yielding thread again and again, and gives up ("exceeded
//! maximum number of branches"). And loom makes a thread that waits for a loom `Mutex`
//! runnable when it is unparked, then fails its own assertion ("expected to be able to
//! acquire lock"): so the thread the tasks unpark is a waiter of its own, which never
//! takes one of the pool's locks (the main thread does, when it injects).
#![cfg(loom)]

use arbor_core::loom_api::pool::{block_in_place, Job, Looks, PoolHandle};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// Checks `f` with at most `preemptions` preemptions (`LOOM_MAX_PREEMPTIONS` overrides
/// it): 2 for the models with one worker (under a second each), 1 for those with two
/// workers (seconds each; at 2 they take minutes: `LOOM_MAX_PREEMPTIONS=2` runs them so).
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

/// What the main thread waits on: tasks done, and who to unpark.
struct Done {
    count: std::sync::Arc<AtomicUsize>,
    /// The waiter thread, parked until the tasks are done.
    waiter: thread::Thread,
    handle: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
    /// Run order, by label. A std mutex: loom switches threads only at its own
    /// operations, so it is never contended, and it keeps loom's schedule smaller.
    order: std::sync::Mutex<Vec<&'static str>>,
}

impl Done {
    /// Starts the waiter thread, which parks until `n` tasks are done.
    fn new(n: usize) -> std::sync::Arc<Done> {
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let handle = thread::spawn(move || {
            while seen.load(Ordering::SeqCst) < n {
                thread::park();
            }
        });
        std::sync::Arc::new(Done {
            count,
            waiter: handle.thread().clone(),
            handle: std::sync::Mutex::new(Some(handle)),
            order: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn finish(&self, label: &'static str) {
        self.order.lock().unwrap().push(label);
        self.count.fetch_add(1, Ordering::SeqCst);
        self.waiter.unpark();
    }

    /// Returns once the tasks are done (joins the waiter).
    fn wait(&self) {
        let handle = self.handle.lock().unwrap().take().expect("waited once");
        handle.join().unwrap();
    }

    fn order(&self) -> Vec<&'static str> {
        self.order.lock().unwrap().clone()
    }
}

/// A task that counts its runs and reports done.
struct Counted {
    label: &'static str,
    runs: AtomicUsize,
    done: std::sync::Arc<Done>,
}

impl Counted {
    fn new(label: &'static str, done: &std::sync::Arc<Done>) -> std::sync::Arc<Counted> {
        std::sync::Arc::new(Counted {
            label,
            runs: AtomicUsize::new(0),
            done: done.clone(),
        })
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Job for Counted {
    fn run_job(self: std::sync::Arc<Self>) {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.done.finish(self.label);
    }
}

/// A task injected while the only worker looks for work, spins and parks is run: no lost
/// wake-up between the injector and the sleep protocol.
#[test]
fn a_task_injected_while_the_only_worker_parks_is_run() {
    model(2, || {
        let pool = PoolHandle::start(1, 0);
        let done = Done::new(1);
        let task = Counted::new("a", &done);
        pool.inject(task.clone());
        done.wait();
        pool.shutdown();
        assert_eq!(task.runs(), 1);
        assert_eq!(pool.counts().threads, 0, "every worker retired");
    });
}

/// Two tasks injected into a pool of two workers (either may spin, park, or take both)
/// each run exactly once.
#[test]
fn injected_tasks_run_exactly_once_on_two_workers() {
    model(1, || {
        let pool = PoolHandle::start(2, 0);
        let done = Done::new(2);
        let (a, b) = (Counted::new("a", &done), Counted::new("b", &done));
        pool.inject(a.clone());
        pool.inject(b.clone());
        done.wait();
        pool.shutdown();
        assert_eq!((a.runs(), b.runs()), (1, 1));
    });
}

/// A task that schedules its successors from a worker (into the LIFO slot, displacing the
/// previous occupant to the injector): every task runs exactly once, on either worker.
struct Fan {
    pool: PoolHandle,
    next: Vec<std::sync::Arc<Counted>>,
    done: std::sync::Arc<Done>,
}

impl Job for Fan {
    fn run_job(self: std::sync::Arc<Self>) {
        for t in &self.next {
            self.pool.schedule(t.clone());
        }
        self.done.finish("fan");
    }
}

#[test]
fn tasks_scheduled_from_a_worker_run_exactly_once() {
    model(1, || {
        let pool = PoolHandle::start(2, 0);
        let done = Done::new(3);
        let (a, b) = (Counted::new("a", &done), Counted::new("b", &done));
        pool.inject(std::sync::Arc::new(Fan {
            pool: pool.clone(),
            next: vec![a.clone(), b.clone()],
            done: done.clone(),
        }));
        done.wait();
        pool.shutdown();
        assert_eq!((a.runs(), b.runs()), (1, 1));
    });
}

/// A task that spent its budget re-queues itself (as a process's runner does): the worker
/// wakes no one when nothing else waits, and takes the task again itself. With a second
/// worker idle (parked, or parking) the task still runs to its end, exactly once more.
/// With `lifo` the task first schedules another into its worker's LIFO slot, so the
/// re-queue must wake the idle worker (the first one runs the LIFO task first).
struct Budget {
    pool: PoolHandle,
    runs: AtomicUsize,
    lifo: Option<std::sync::Arc<Counted>>,
    done: std::sync::Arc<Done>,
}

impl Job for Budget {
    fn run_job(self: std::sync::Arc<Self>) {
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            if let Some(t) = &self.lifo {
                self.pool.schedule(t.clone());
            }
            self.pool.requeue(self.clone());
        } else {
            self.done.finish("budget");
        }
    }
}

fn requeue(lifo: bool) {
    model(1, move || {
        let pool = PoolHandle::start(2, 0);
        let done = Done::new(1 + usize::from(lifo));
        let other = lifo.then(|| Counted::new("lifo", &done));
        let task = std::sync::Arc::new(Budget {
            pool: pool.clone(),
            runs: AtomicUsize::new(0),
            lifo: other.clone(),
            done: done.clone(),
        });
        pool.inject(task.clone());
        done.wait();
        pool.shutdown();
        assert_eq!(task.runs.load(Ordering::SeqCst), 2);
        if let Some(o) = other {
            assert_eq!(o.runs(), 1);
        }
    });
}

#[test]
fn a_requeued_task_runs_with_a_second_worker_idle() {
    requeue(false);
}

#[test]
fn a_requeued_task_behind_a_lifo_task_runs() {
    requeue(true);
}

/// One hop of a message chain: schedules the next hop from its worker (into the LIFO
/// slot); the first hop also injects an outsider.
struct Hop {
    pool: PoolHandle,
    n: usize,
    labels: &'static [&'static str],
    outsider: Option<std::sync::Arc<Counted>>,
    done: std::sync::Arc<Done>,
}

impl Job for Hop {
    fn run_job(self: std::sync::Arc<Self>) {
        if let Some(o) = &self.outsider {
            self.pool.inject(o.clone());
        }
        if self.n + 1 < self.labels.len() {
            self.pool.schedule(std::sync::Arc::new(Hop {
                pool: self.pool.clone(),
                n: self.n + 1,
                labels: self.labels,
                outsider: None,
                done: self.done.clone(),
            }));
        }
        self.done.finish(self.labels[self.n]);
    }
}

/// The LIFO streak cut: after 2 (loom's streak) LIFO runs in a row, a worker that finds
/// a task in the injector queues its LIFO task behind it and runs the injected one
/// first; the LIFO task is not lost, and runs next. One worker, so the order is fixed.
#[test]
fn the_streak_cut_queues_the_lifo_task_behind_the_injector() {
    model(2, || {
        let pool = PoolHandle::start(1, 0);
        let done = Done::new(5);
        let outsider = Counted::new("outsider", &done);
        let labels: &'static [&'static str] = &["hop0", "hop1", "hop2", "hop3"];
        pool.inject(std::sync::Arc::new(Hop {
            pool: pool.clone(),
            n: 0,
            labels,
            outsider: Some(outsider.clone()),
            done: done.clone(),
        }));
        done.wait();
        pool.shutdown();
        assert_eq!(outsider.runs(), 1);
        assert_eq!(done.order(), ["hop0", "hop1", "hop2", "outsider", "hop3"]);
    });
}

/// Without an injected task the streak goes on past the cut: the chain stays on its
/// worker, in order, and nothing is queued.
#[test]
fn a_streak_with_nothing_injected_runs_on() {
    model(2, || {
        let pool = PoolHandle::start(1, 0);
        let done = Done::new(4);
        let labels: &'static [&'static str] = &["hop0", "hop1", "hop2", "hop3"];
        pool.inject(std::sync::Arc::new(Hop {
            pool: pool.clone(),
            n: 0,
            labels,
            outsider: None,
            done: done.clone(),
        }));
        done.wait();
        pool.shutdown();
        assert_eq!(done.order(), labels);
    });
}

/// A task that wakes another (into its worker's LIFO slot), then blocks until that other
/// task has run: inside `block_in_place`, which must hand the LIFO task to the injector
/// and start a compensating worker to run it (the pool's only worker is the blocked one).
/// Without either, every thread parks: loom reports the deadlock.
struct Blocker {
    pool: PoolHandle,
    woken: std::sync::Arc<Wakee>,
    done: std::sync::Arc<Done>,
}

struct Wakee {
    ran: AtomicBool,
    runs: AtomicUsize,
    /// The thread waiting for it, if any, to unpark.
    waiter: std::sync::Mutex<Option<thread::Thread>>,
}

impl Job for Wakee {
    fn run_job(self: std::sync::Arc<Self>) {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.ran.store(true, Ordering::SeqCst);
        if let Some(t) = self.waiter.lock().unwrap().take() {
            t.unpark();
        }
    }
}

impl Job for Blocker {
    fn run_job(self: std::sync::Arc<Self>) {
        *self.woken.waiter.lock().unwrap() = Some(thread::current());
        self.pool.schedule(self.woken.clone());
        block_in_place(|| {
            let counts = self.pool.counts();
            assert_eq!(
                (counts.threads, counts.blocked),
                (2, 1),
                "a compensating worker was started"
            );
            while !self.woken.ran.load(Ordering::SeqCst) {
                thread::park();
            }
        });
        self.done.finish("blocker");
    }
}

#[test]
fn block_in_place_hands_the_lifo_task_to_a_compensating_worker() {
    model(2, || {
        let pool = PoolHandle::start(1, 1);
        let done = Done::new(1);
        let woken = std::sync::Arc::new(Wakee {
            ran: AtomicBool::new(false),
            runs: AtomicUsize::new(0),
            waiter: std::sync::Mutex::new(None),
        });
        pool.inject(std::sync::Arc::new(Blocker {
            pool: pool.clone(),
            woken: woken.clone(),
            done: done.clone(),
        }));
        done.wait();
        pool.shutdown();
        assert_eq!(woken.runs.load(Ordering::SeqCst), 1);
        assert_eq!(pool.counts().threads, 0);
    });
}

/// The pool's monitor takes the LIFO task of a worker stuck in one task (blocking in code
/// arbor cannot see) and injects it, where the idle second worker runs it: a task that
/// waits on the one in its LIFO slot completes. The monitor is a model thread making two
/// looks (the second sees the same run as the first, so the worker counts as stalled);
/// the stuck task gives up waiting once the monitor is done, so the model ends either
/// way, and then the stolen task (if the monitor took it) or its owner ran it once.
struct Stuck {
    pool: PoolHandle,
    woken: std::sync::Arc<Wakee>,
    monitor_done: std::sync::Arc<AtomicBool>,
    done: std::sync::Arc<Done>,
}

impl Job for Stuck {
    fn run_job(self: std::sync::Arc<Self>) {
        self.pool.schedule(self.woken.clone());
        while !self.woken.ran.load(Ordering::SeqCst) && !self.monitor_done.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        self.done.finish("stuck");
    }
}

#[test]
fn the_monitor_hands_a_stalled_workers_lifo_task_to_another_worker() {
    model(1, || {
        let pool = PoolHandle::start(2, 0);
        let done = Done::new(1);
        let woken = std::sync::Arc::new(Wakee {
            ran: AtomicBool::new(false),
            runs: AtomicUsize::new(0),
            waiter: std::sync::Mutex::new(None),
        });
        let monitor_done = std::sync::Arc::new(AtomicBool::new(false));
        pool.inject(std::sync::Arc::new(Stuck {
            pool: pool.clone(),
            woken: woken.clone(),
            monitor_done: monitor_done.clone(),
            done: done.clone(),
        }));
        let (p, m) = (pool.clone(), monitor_done.clone());
        let monitor = thread::spawn(move || {
            let mut looks = Looks::default();
            p.monitor_round(&mut looks);
            p.monitor_round(&mut looks);
            m.store(true, Ordering::SeqCst);
        });
        done.wait();
        monitor.join().unwrap();
        pool.shutdown();
        assert_eq!(
            woken.runs.load(Ordering::SeqCst),
            1,
            "run once, by its owner or after the steal"
        );
        assert!(pool.handoffs() <= 1);
    });
}
