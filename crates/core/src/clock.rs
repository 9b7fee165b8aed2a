//! The one place a runtime reads time.
//!
//! A runtime's clock is either the real monotonic clock (`Instant::now()`) or, on a
//! deterministic runtime ([`SimRuntime`](crate::sim::SimRuntime)), a virtual clock: a base
//! instant taken when the runtime was made plus an offset that only the simulation's
//! driver moves forward. Both give `Instant`s, so every piece of deadline arithmetic in
//! core (call timeouts, timers, shutdown) and above it (restart-intensity windows) is the
//! same code in both modes.
//!
//! Invariants:
//! - A virtual clock never goes backwards: [`VirtualClock::advance_to`] keeps the larger
//!   of the two offsets.
//! - Only the simulation's driver moves it (one thread at a time): reads from other
//!   threads see some offset the driver set.

use crate::sync::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A runtime's source of time.
#[derive(Clone)]
pub(crate) enum Clock {
    /// `Instant::now()`.
    Real,
    /// Virtual time: moves only when the simulation's driver moves it.
    Virtual(Arc<VirtualClock>),
}

impl Clock {
    /// The current instant of this clock.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Virtual(v) => v.now(),
        }
    }

    /// `now() + timeout`, or `None` if that overflows (a timeout meaning "forever").
    #[inline]
    pub(crate) fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.now().checked_add(timeout)
    }
}

/// A clock that stands still until told to move.
pub(crate) struct VirtualClock {
    base: Instant,
    /// Nanoseconds since `base` (2^64 ns is 584 years: no overflow in practice; saturates).
    offset: AtomicU64,
}

impl VirtualClock {
    pub(crate) fn new() -> VirtualClock {
        VirtualClock {
            base: Instant::now(),
            offset: AtomicU64::new(0),
        }
    }

    /// The instant at offset zero.
    pub(crate) fn base(&self) -> Instant {
        self.base
    }

    /// Virtual time elapsed since the clock was made.
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.offset.load(Ordering::Acquire))
    }

    pub(crate) fn now(&self) -> Instant {
        self.base + self.elapsed()
    }

    /// Moves the clock to `elapsed` since its base, if that is later than now.
    pub(crate) fn advance_to(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        if nanos > self.offset.load(Ordering::Acquire) {
            self.offset.store(nanos, Ordering::Release);
        }
    }
}
