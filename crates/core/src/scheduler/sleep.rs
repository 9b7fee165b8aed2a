//! Parking idle workers and waking them, with no lost wake-up.
//!
//! The race to prevent: a worker finds every queue empty and decides to park while, at
//! the same moment, a producer pushes work and looks for a worker to wake. If the
//! producer looks before the worker is listed as idle, and the worker parks after the
//! push, the work sits with everyone asleep.
//!
//! The protocol (a Dekker handshake, both sides `SeqCst`):
//! - worker: list itself as idle (store `num_idle`), fence, look at the queues again;
//!   park only if they are still empty.
//! - producer: push, fence, read `num_idle`; if non-zero, take one idle worker off the
//!   list and unpark it.
//!
//! Either the worker's second look sees the work, or the producer's read sees the idle
//! worker (or both). Parking is token-based (`Thread::unpark` before `park` makes `park`
//! return at once), so an unpark that lands between the second look and the park is not
//! lost. A worker that wakes removes itself from the list if it is still there (a
//! spurious or timed wake-up).
//!
//! Spinning: before it parks, one worker at a time may spin for work
//! ([`Sleep::start_spinning`]). A producer that sees a spinner does not wake a parked
//! worker ([`Sleep::notify`]): the spinner takes the work, without a futex call on either
//! side. Two races, both closed by the same `SeqCst` pattern (store, fence, load):
//! - The spinner gives up just as the work arrives: it stops counting as a spinner before
//!   it lists itself idle and takes its second look, so either the producer sees no
//!   spinner (and wakes someone) or the second look sees the work.
//! - More work arrives than the spinner will take: when it stops spinning (whether it
//!   found work or gave up) it reads the queue length, after it stopped counting as a
//!   spinner, and wakes one more worker if there is more than the one task it will take;
//!   a producer whose push it could miss is one that saw it no longer spinning, and woke
//!   a worker itself. A worker that takes a task and sees more queued wakes another in
//!   turn, so a burst absorbed by a spinner still spreads over every idle worker.
//!
//! Modelled by loom in `tests/loom_sleep.rs`.

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::sync::{fence, park_timeout, thread, AtomicUsize, Mutex, Ordering};
use std::time::Duration;

/// The list of parked workers.
pub struct Sleep {
    idle: Mutex<Vec<thread::Thread>>,
    num_idle: AtomicUsize,
    /// Workers spinning for work (at most one at a time).
    spinning: AtomicUsize,
}

impl Default for Sleep {
    fn default() -> Self {
        Self::new()
    }
}

impl Sleep {
    /// No worker is idle.
    pub fn new() -> Self {
        Sleep {
            idle: Mutex::new(Vec::new()),
            num_idle: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
        }
    }

    /// Makes the caller the spinning worker; false if another worker spins already.
    pub fn start_spinning(&self) -> bool {
        if self.spinning.fetch_add(1, Ordering::SeqCst) > 0 {
            self.spinning.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Ends the caller's spin. Producers skipped their wake-up while it spun, and it will
    /// take one task at most (the one it found, or one its second look before parking
    /// finds): if `queued` (the number of queued tasks, read after this call stops
    /// counting the caller as a spinner) says there are more, wakes another worker.
    pub fn stop_spinning(&self, queued: impl Fn() -> usize) {
        self.spinning.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if queued() > 1 {
            self.wake_one();
        }
    }

    /// After work was pushed (with a `SeqCst` store the workers' look at the queues can
    /// see): wakes an idle worker, unless a worker is spinning and will take it.
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.spinning.load(Ordering::SeqCst) == 0 {
            self.wake_one();
        }
    }

    /// Number of parked (or parking) workers.
    pub fn idle_count(&self) -> usize {
        self.num_idle.load(Ordering::SeqCst)
    }

    /// Parks the calling worker unless `has_work` (evaluated after it is listed as idle)
    /// says there is work. `timeout = None` parks until woken.
    /// Returns true if the worker was woken by a producer (rather than by a timeout or
    /// a second look that found work).
    pub fn sleep(&self, timeout: Option<Duration>, has_work: impl Fn() -> bool) -> bool {
        let me = thread::current();
        {
            let mut idle = self.idle.lock();
            idle.push(me.clone());
            self.num_idle.store(idle.len(), Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if has_work() {
            return !self.unlist(&me);
        }
        match timeout {
            Some(t) => park_timeout(t),
            None => thread::park(),
        }
        !self.unlist(&me)
    }

    /// Removes `me` from the idle list; true if it was still there (nobody woke it).
    fn unlist(&self, me: &thread::Thread) -> bool {
        let mut idle = self.idle.lock();
        let id = me.id();
        if let Some(i) = idle.iter().position(|t| t.id() == id) {
            idle.swap_remove(i);
            self.num_idle.store(idle.len(), Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    /// Producer side: after making work visible, wakes one idle worker if there is one.
    /// Returns true if it woke someone.
    pub fn wake_one(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.num_idle.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let woken = {
            let mut idle = self.idle.lock();
            let t = idle.pop();
            self.num_idle.store(idle.len(), Ordering::SeqCst);
            t
        };
        match woken {
            Some(t) => {
                t.unpark();
                true
            }
            None => false,
        }
    }

    /// Wakes every idle worker (shutdown).
    pub fn wake_all(&self) {
        let all = {
            let mut idle = self.idle.lock();
            self.num_idle.store(0, Ordering::SeqCst);
            std::mem::take(&mut *idle)
        };
        for t in all {
            t.unpark();
        }
    }
}
