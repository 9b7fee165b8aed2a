//! Running a process on a thread outside the pool: [`InlineRunner`] (its documentation
//! says how), and what `Pool::schedule`, `block_in_place` and the pool's monitor ask of it.

use super::pool::{recover_escaped, Pool, Task};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

/// What the pool's monitor sees of an inline runner.
pub(crate) struct RunnerShared {
    /// Turns begun (written by the runner's thread alone).
    pub(crate) runs: AtomicUsize,
    /// True while a turn runs.
    pub(crate) busy: AtomicBool,
    /// The process whose turn runs (`Runnable::id`).
    pub(crate) cur_serial: AtomicU64,
    pub(crate) cur_place: AtomicU64,
    /// The turn (`runs`) for which `on_stall` was last called, plus one; 0: never.
    told: AtomicUsize,
    on_stall: Box<dyn Fn() + Send + Sync>,
}

impl RunnerShared {
    /// Calls `on_stall` if it was not called for the running turn yet.
    pub(crate) fn stalled(&self) {
        let turn = self.runs.load(Ordering::Acquire).wrapping_add(1);
        if self.busy.load(Ordering::Acquire) && self.told.swap(turn, Ordering::AcqRel) != turn {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.on_stall)()));
        }
    }
}

struct RunnerCtx {
    /// Inside `keep`: the next task made runnable on this thread goes to `pending`.
    armed: bool,
    /// A task owed a turn, and the pool it belongs to.
    pending: Option<(Arc<Pool>, Task)>,
    /// While a turn runs on this thread: the pool of the process it runs.
    running: Option<Weak<Pool>>,
    shared: Arc<RunnerShared>,
    /// The pool whose monitor watches this runner.
    registered: Option<Weak<Pool>>,
}

thread_local! {
    static RUNNER: RefCell<Option<RunnerCtx>> = const { RefCell::new(None) };
}

/// Called by [`Pool::schedule`] for a task made runnable off the pool: kept in this
/// thread's runner slot if it is armed and empty (`None`), else handed back. Kept out of
/// line: the workers' path through `schedule` does not come here.
#[inline(never)]
pub(super) fn keep(pool: &Arc<Pool>, task: Task) -> Option<Task> {
    let mut task = Some(task);
    let _ = RUNNER.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if let Some(ctx) = r.as_mut().filter(|c| c.armed && c.pending.is_none()) {
                ctx.pending = task.take().map(|t| (Arc::clone(pool), t));
            }
        }
    });
    task
}

/// True if this thread runs a turn of one of `pool`'s processes inline now.
pub(super) fn running_on(pool: &Arc<Pool>) -> bool {
    RUNNER
        .try_with(|r| {
            r.try_borrow().is_ok_and(|r| {
                matches!(r.as_ref().and_then(|c| c.running.as_ref()), Some(p) if std::ptr::eq(p.as_ptr(), Arc::as_ptr(pool)))
            })
        })
        .unwrap_or(false)
}

/// Called by `block_in_place` off the pool: a turn running inline here is about to block,
/// so the runner's job must be done elsewhere.
pub(super) fn about_to_block() {
    let shared = RUNNER
        .try_with(|r| {
            r.try_borrow().ok().and_then(|r| {
                r.as_ref()
                    .filter(|c| c.running.is_some())
                    .map(|c| Arc::clone(&c.shared))
            })
        })
        .ok()
        .flatten();
    if let Some(shared) = shared {
        shared.stalled();
    }
}

/// A thread outside the pool that may run, itself, the next turn of a process it makes
/// runnable. Bound to the thread that entered it.
///
/// An I/O thread that makes a process runnable (a connection's reader that delivers a call
/// to an idle server) may run that process's next turn itself, instead of queueing it for a
/// worker: the turn starts without a hand-over between threads, and the reply leaves from
/// the thread that read the request, as a BEAM scheduler that polled a socket runs the
/// process the data was for.
///
/// Inside [`InlineRunner::keep`], the first process that the thread makes runnable is kept
/// in the runner's slot instead of the run queue; [`InlineRunner::run_pending`] runs its
/// turn (at most the usual budget of messages) exactly as a worker would, panics caught. A
/// process kept in the slot is owed a turn: [`InlineRunner::release`] (and dropping the
/// runner) hands it to the workers, so the thread must run or release it before it waits
/// for anything else.
///
/// While a turn runs here, the thread is not doing its own job (reading its socket). The
/// `on_stall` hook given to [`InlineRunner::enter`] is how that job gets done elsewhere: it
/// is called once per turn, on this thread, when the turn is about to block in arbor (a
/// call made from a handler, [`blocking`](crate::blocking)), or from the pool's monitor
/// thread when the turn has run past the monitor's stall period (a handler that blocks
/// without telling arbor, or computes for long). Such a turn is also reported by the
/// watchdog ([`RuntimeHandle::stuck_handlers`](crate::RuntimeHandle::stuck_handlers)) as
/// a worker's would be.
///
/// ```
/// use arbor_core::{CallFlow, Context, ExitReason, GenServer, InlineRunner, ReplyTo, Runtime};
/// use std::thread::ThreadId;
/// use std::time::Duration;
///
/// /// Replies with the thread its handler ran on.
/// struct Where;
/// impl GenServer for Where {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = ThreadId;
///     fn init((): (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Where)
///     }
///     fn handle_call(&mut self, (): (), _: ReplyTo<ThreadId>, _: &mut Context<'_, Self>) -> CallFlow<ThreadId> {
///         CallFlow::Reply(std::thread::current().id())
///     }
/// }
///
/// let rt = Runtime::new().unwrap();
/// let server = rt.start::<Where>(()).unwrap();
/// let runner = InlineRunner::enter(|| {}).unwrap();
/// let (tx, rx) = std::sync::mpsc::channel();
/// InlineRunner::keep(|| server.call_with((), Duration::from_secs(5), move |r| tx.send(r).unwrap()));
/// assert!(runner.has_pending());
/// assert!(runner.run_pending());
/// assert_eq!(rx.recv().unwrap(), Ok(std::thread::current().id()));
/// ```
pub struct InlineRunner {
    shared: Arc<RunnerShared>,
    _thread_bound: PhantomData<*const ()>,
}

impl std::fmt::Debug for InlineRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineRunner")
            .field("turns", &self.shared.runs.load(Ordering::Relaxed))
            .finish()
    }
}

impl InlineRunner {
    /// Makes the calling thread an inline runner. `on_stall` is called at most once per
    /// turn, when that turn is about to block in arbor (on this thread) or has run past the
    /// pool monitor's stall period (on the monitor's thread): the thread's own job should
    /// then be taken up by another thread. `None` if this thread is a worker of a pool or
    /// an inline runner already.
    pub fn enter(on_stall: impl Fn() + Send + Sync + 'static) -> Option<InlineRunner> {
        if super::pool::on_any_pool() {
            return None;
        }
        let shared = Arc::new(RunnerShared {
            runs: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            cur_serial: AtomicU64::new(0),
            cur_place: AtomicU64::new(0),
            told: AtomicUsize::new(0),
            on_stall: Box::new(on_stall),
        });
        RUNNER.with(|r| {
            let mut r = r.borrow_mut();
            if r.is_some() {
                return None;
            }
            *r = Some(RunnerCtx {
                armed: false,
                pending: None,
                running: None,
                shared: Arc::clone(&shared),
                registered: None,
            });
            Some(InlineRunner {
                shared,
                _thread_bound: PhantomData,
            })
        })
    }

    /// Runs `f`; the first process that `f` makes runnable (one that was idle) is kept for
    /// this thread's runner, if the thread has one and its slot is empty. Otherwise just
    /// runs `f`.
    pub fn keep<R>(f: impl FnOnce() -> R) -> R {
        struct Disarm(bool);
        impl Drop for Disarm {
            fn drop(&mut self) {
                if self.0 {
                    let _ = RUNNER.try_with(|r| {
                        if let Ok(Some(ctx)) = r.try_borrow_mut().as_deref_mut() {
                            ctx.armed = false;
                        }
                    });
                }
            }
        }
        let armed = RUNNER
            .try_with(|r| match r.try_borrow_mut().ok().as_deref_mut() {
                Some(Some(ctx)) if ctx.running.is_none() && !ctx.armed => {
                    ctx.armed = true;
                    true
                }
                _ => false,
            })
            .unwrap_or(false);
        let _disarm = Disarm(armed);
        f()
    }

    /// Hands the calling thread's pending process, if any, to the pool's workers. For a
    /// thread about to wait for something other than its own job.
    pub fn release() {
        let pending = RUNNER
            .try_with(|r| {
                r.try_borrow_mut()
                    .ok()
                    .and_then(|mut r| r.as_mut().and_then(|c| c.pending.take()))
            })
            .ok()
            .flatten();
        if let Some((pool, task)) = pending {
            pool.inject(task);
        }
    }

    /// True if a process is owed a turn on this runner.
    pub fn has_pending(&self) -> bool {
        RUNNER.with(|r| r.borrow().as_ref().is_some_and(|c| c.pending.is_some()))
    }

    /// Runs the pending process's turn on this thread, as a worker would; false if none
    /// was pending.
    pub fn run_pending(&self) -> bool {
        let taken = RUNNER.with(|r| {
            let mut r = r.borrow_mut();
            let ctx = r.as_mut()?;
            let (pool, task) = ctx.pending.take()?;
            let weak = Arc::downgrade(&pool);
            if !ctx.registered.as_ref().is_some_and(|p| p.ptr_eq(&weak)) {
                if let Some(old) = ctx.registered.take().and_then(|p| p.upgrade()) {
                    old.unregister_runner(&ctx.shared);
                }
                pool.register_runner(&ctx.shared);
                ctx.registered = Some(weak.clone());
            }
            ctx.running = Some(weak);
            Some((pool, task))
        });
        let Some((_pool, task)) = taken else { return false };
        let shared = &self.shared;
        let (serial, place) = task.id();
        shared.cur_serial.store(serial, Ordering::Relaxed);
        shared.cur_place.store(place, Ordering::Relaxed);
        // Only this thread writes `runs`.
        shared
            .runs
            .store(shared.runs.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        shared.busy.store(true, Ordering::Release);
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run())) {
            recover_escaped(payload);
        }
        shared.busy.store(false, Ordering::Release);
        RUNNER.with(|r| {
            if let Some(ctx) = r.borrow_mut().as_mut() {
                ctx.running = None;
            }
        });
        true
    }
}

impl Drop for InlineRunner {
    fn drop(&mut self) {
        InlineRunner::release();
        let ctx = RUNNER.try_with(|r| r.borrow_mut().take()).ok().flatten();
        if let Some(pool) = ctx.and_then(|c| c.registered).and_then(|p| p.upgrade()) {
            pool.unregister_runner(&self.shared);
        }
    }
}
