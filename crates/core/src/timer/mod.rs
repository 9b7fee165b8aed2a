//! The timer service: one thread per runtime, one hierarchical wheel.
//!
//! Any thread arms or cancels a timer under the wheel's lock (both O(1)). The timer thread
//! sleeps until the wheel's next expiration; arming a timer earlier than that wakes it.
//! A firing runs the timer's delivery closure on the timer thread: it pushes one envelope
//! into a mailbox and returns. Time is counted in ticks of [`TICK`] since the service
//! started; a deadline is rounded *up* to a tick, so a timer never fires early.
//!
//! On a deterministic runtime the service has no thread: time is the runtime's virtual
//! clock, and the simulation's driver fires due timers itself ([`TimerService::next_tick`],
//! [`TimerService::fire_until`]) on its own thread, in the wheel's order (by deadline, then
//! by insertion).

mod shared;
mod wheel;

pub use shared::Timer;
pub(crate) use shared::{send_after, send_interval, TimerCore};

use crate::clock::VirtualClock;
use crate::panic::catch;
use crate::sync::thread::{self, JoinHandle, Thread};
use crate::sync::PlainMutex as Mutex;
use crate::sync::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wheel::{TimerKey, Wheel};

/// The wheel's resolution.
pub(crate) const TICK: Duration = Duration::from_micros(100);

/// What a timer does when it fires; receives its own key.
pub(crate) type Fire = Box<dyn FnOnce(u64) + Send>;

struct Shared {
    wheel: Mutex<Wheel<Fire>>,
    epoch: Instant,
    /// The virtual clock the service counts from, on a deterministic runtime (its base is
    /// `epoch`); `None`: real time.
    virtual_clock: Option<Arc<VirtualClock>>,
    /// The tick the timer thread sleeps until (u64::MAX: no timer pending).
    sleeping_until: AtomicU64,
    shutdown: AtomicBool,
    thread: std::sync::OnceLock<Thread>,
}

/// One runtime's timers.
pub(crate) struct TimerService {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Time since the service started, on its clock.
    #[inline]
    fn elapsed(&self) -> Duration {
        match &self.virtual_clock {
            None => self.epoch.elapsed(),
            Some(v) => v.elapsed(),
        }
    }

    fn now_tick(&self) -> u64 {
        (self.elapsed().as_nanos() / TICK.as_nanos()) as u64
    }

    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

impl TimerService {
    pub(crate) fn start(name: &str) -> std::io::Result<TimerService> {
        let shared = Arc::new(Shared {
            wheel: Mutex::new(Wheel::new(0)),
            epoch: Instant::now(),
            virtual_clock: None,
            sleeping_until: AtomicU64::new(u64::MAX),
            shutdown: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
        });
        let s = shared.clone();
        let handle = thread::Builder::new()
            .name(format!("{name}-timer"))
            .spawn(move || timer_main(s))?;
        let _ = shared.thread.set(handle.thread().clone());
        Ok(TimerService {
            shared,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// A service on a virtual clock, with no thread: the simulation's driver fires its
    /// timers.
    pub(crate) fn start_virtual(clock: Arc<VirtualClock>) -> TimerService {
        TimerService {
            shared: Arc::new(Shared {
                wheel: Mutex::new(Wheel::new(0)),
                epoch: clock.base(),
                virtual_clock: Some(clock),
                sleeping_until: AtomicU64::new(u64::MAX),
                shutdown: AtomicBool::new(false),
                thread: std::sync::OnceLock::new(),
            }),
            handle: Mutex::new(None),
        }
    }

    /// Virtual clock only: moves the wheel forward, no further than tick `limit`, until
    /// timers fire at some tick, and runs their deliveries (in deadline order, then
    /// insertion order). Returns that tick and how many fired, or `None` if none is due by
    /// `limit`. `before_firing` gets the tick and the count before any delivery runs (the
    /// driver moves its clock there).
    pub(crate) fn fire_until(&self, limit: u64, before_firing: impl FnOnce(u64, usize)) -> Option<(u64, usize)> {
        let s = &*self.shared;
        let mut fired = Vec::new();
        let at = {
            let mut wheel = s.wheel.lock();
            loop {
                let next = wheel.next_expiration()?;
                if next > limit {
                    return None;
                }
                let next = next.max(wheel.now());
                wheel.advance(next, &mut fired);
                if !fired.is_empty() {
                    break next;
                }
            }
        };
        let n = fired.len();
        before_firing(at, n);
        for (key, fire) in fired {
            if let Err(msg) = catch(move || fire(key.to_u64())) {
                log::error!("arbor: a timer delivery panicked: {msg}");
            }
        }
        Some((at, n))
    }

    /// Arms a timer that runs `fire` after `delay`; returns its key.
    pub(crate) fn insert(&self, delay: Duration, fire: Fire) -> u64 {
        self.insert_at(self.now().saturating_add(delay), fire)
    }

    /// The service's time: how long it has run (on the virtual clock, on a deterministic
    /// runtime).
    pub(crate) fn now(&self) -> Duration {
        self.shared.elapsed()
    }

    /// Arms a timer that runs `fire` at `at` on the service's time ([`TimerService::now`]),
    /// rounded up to a tick; a time already past fires at the next tick. Returns its key.
    pub(crate) fn insert_at(&self, at: Duration, fire: Fire) -> u64 {
        let s = &*self.shared;
        let deadline = at.as_nanos().div_ceil(TICK.as_nanos()).min(u64::MAX as u128 / 2) as u64;
        let key = s.wheel.lock().insert(deadline, fire);
        if deadline < s.sleeping_until.load(Ordering::SeqCst) {
            s.wake();
        }
        key.to_u64()
    }

    /// Cancels a pending timer; returns the time it had left.
    pub(crate) fn cancel(&self, key: u64) -> Option<Duration> {
        let s = &*self.shared;
        let removed = s.wheel.lock().cancel(TimerKey::from_u64(key));
        removed.map(|(deadline, fire)| {
            // The closure owns the timer's message: its `Drop` is user code.
            crate::panic::drop_quietly(fire, "a cancelled timer's message");
            left(s, deadline)
        })
    }

    /// The time a pending timer has left.
    pub(crate) fn remaining(&self, key: u64) -> Option<Duration> {
        let s = &*self.shared;
        let deadline = s.wheel.lock().deadline(TimerKey::from_u64(key))?;
        Some(left(s, deadline))
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.shared.wheel.lock().len()
    }

    /// Stops the timer thread; pending timers are dropped.
    pub(crate) fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake();
        if let Some(h) = self.handle.lock().take() {
            if h.thread().id() != thread::current().id() {
                let _ = h.join();
            }
        }
        let pending = std::mem::replace(&mut *self.shared.wheel.lock(), Wheel::new(0));
        crate::panic::drop_quietly(pending, "pending timers' messages");
    }
}

fn ticks(t: u64) -> Duration {
    Duration::from_nanos(t.saturating_mul(TICK.as_nanos() as u64))
}

/// Time left until `deadline`, never more than the delay asked for: the deadline was
/// rounded up by less than a tick, so a tick is taken off.
fn left(s: &Shared, deadline: u64) -> Duration {
    ticks(deadline).saturating_sub(s.elapsed()).saturating_sub(TICK)
}

/// The last stretch before a deadline is spun rather than slept: the OS's wake-up latency
/// would otherwise make every timer late.
const SPIN: Duration = Duration::from_micros(60);

fn timer_main(s: Arc<Shared>) {
    let mut fired = Vec::new();
    loop {
        if s.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = s.now_tick();
        let next = {
            let mut wheel = s.wheel.lock();
            wheel.advance(now, &mut fired);
            let next = if fired.is_empty() {
                wheel.next_expiration()
            } else {
                Some(now)
            };
            s.sleeping_until.store(next.unwrap_or(u64::MAX), Ordering::SeqCst);
            next
        };
        for (key, fire) in fired.drain(..) {
            if let Err(msg) = catch(move || fire(key.to_u64())) {
                log::error!("arbor: a timer delivery panicked: {msg}");
            }
        }
        match next {
            Some(t) if t <= now => continue,
            Some(t) => {
                let target = s.epoch + ticks(t);
                let wait = target.saturating_duration_since(Instant::now());
                if wait > SPIN {
                    // Woken early by an earlier timer, or close to the target: look again.
                    thread::park_timeout(wait - SPIN);
                    continue;
                }
                while Instant::now() < target && !s.shutdown.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            }
            None => thread::park(),
        }
    }
}
