//! Restart intensity: at most `max_restarts` restarts within a sliding window of
//! `max_seconds`, over all of a supervisor's children (S46, S60).
//!
//! Invariants:
//! - [`RestartIntensity`] is pure data: it never reads a clock, the caller passes `now`. The
//!   supervisors read their [`Clock`]: by default the runtime's own ([`SystemClock`], which
//!   is virtual on a deterministic runtime), or one that tests drive ([`ManualClock`]).
//! - The history holds only restarts inside the window (at most `max_restarts + 1` entries),
//!   so it never grows without bound.
//! - The window is inclusive, as OTP's (`T >= now - period` is kept); OTP counts in whole
//!   seconds, this counts in `Instant`s, which agrees within one second.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of monotonic time for restart intensity.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The runtime's clock ([`arbor_core::now`]): `Instant::now()` on a real runtime, the
/// virtual clock on a deterministic one ([`arbor_core::sim::SimRuntime`]), read from the
/// supervisor's own process. Outside any process it is `Instant::now()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        arbor_core::now()
    }
}

/// A clock that moves only when told to: for tests of the intensity window in virtual time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A clock stopped at the current instant.
    pub fn new() -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves the clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.now.lock() += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock()
    }
}

/// The sliding window of recent restarts.
#[derive(Clone)]
pub struct RestartIntensity {
    max_restarts: usize,
    window: Duration,
    history: VecDeque<Instant>,
}

impl RestartIntensity {
    /// At most `max_restarts` restarts within `window` (which should not be zero; the
    /// supervisors reject a zero window before they get here).
    pub fn new(max_restarts: usize, window: Duration) -> RestartIntensity {
        RestartIntensity {
            max_restarts,
            window,
            history: VecDeque::new(),
        }
    }

    /// Records a restart at `now`. Returns true if it is allowed: the restarts within the
    /// window ending at `now`, this one included, number at most `max_restarts`. False means
    /// the supervisor has reached its limit and must shut down.
    pub fn record(&mut self, now: Instant) -> bool {
        // If the window reaches back before the clock's origin, every restart is in it.
        if let Some(threshold) = now.checked_sub(self.window) {
            while self.history.front().is_some_and(|t| *t < threshold) {
                self.history.pop_front();
            }
        }
        self.history.push_back(now);
        let allowed = self.history.len() <= self.max_restarts;
        while self.history.len() > self.max_restarts.saturating_add(1) {
            self.history.pop_front();
        }
        allowed
    }

    /// Restarts allowed within the window.
    pub fn max_restarts(&self) -> usize {
        self.max_restarts
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Number of recorded restarts still inside the window ending at `now`.
    pub fn recent(&self, now: Instant) -> usize {
        match now.checked_sub(self.window) {
            Some(threshold) => self.history.iter().filter(|t| **t >= threshold).count(),
            None => self.history.len(),
        }
    }
}

impl fmt::Debug for RestartIntensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestartIntensity")
            .field("max_restarts", &self.max_restarts)
            .field("window", &self.window)
            .field("recorded", &self.history.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourth_restart_in_window_is_refused() {
        let clock = ManualClock::new();
        let mut i = RestartIntensity::new(3, Duration::from_secs(5));
        for _ in 0..3 {
            assert!(i.record(clock.now()));
            clock.advance(Duration::from_secs(1));
        }
        assert!(!i.record(clock.now()));
    }

    #[test]
    fn spaced_restarts_never_exceed() {
        // SUITE multiple_restarts: intensity 1, period 1, crashes 2.1 s apart.
        let clock = ManualClock::new();
        let mut i = RestartIntensity::new(1, Duration::from_secs(1));
        for _ in 0..10 {
            assert!(i.record(clock.now()));
            clock.advance(Duration::from_millis(2100));
        }
    }

    #[test]
    fn window_is_inclusive() {
        let clock = ManualClock::new();
        let mut i = RestartIntensity::new(1, Duration::from_secs(5));
        assert!(i.record(clock.now()));
        clock.advance(Duration::from_secs(5));
        assert!(!i.record(clock.now()), "a restart exactly max_seconds ago still counts");
    }

    #[test]
    fn zero_max_restarts_refuses_the_first() {
        let mut i = RestartIntensity::new(0, Duration::from_secs(5));
        assert!(!i.record(Instant::now()));
    }

    #[test]
    fn history_stays_bounded() {
        let clock = ManualClock::new();
        let mut i = RestartIntensity::new(2, Duration::from_secs(3600));
        for _ in 0..100 {
            i.record(clock.now());
        }
        assert!(i.history.len() <= 3);
    }
}
