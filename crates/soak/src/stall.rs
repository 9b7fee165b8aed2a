//! Host stalls: moments when this process's threads did not run, measured by a thread that
//! sleeps 2 ms at a time and records each wake-up more than 20 ms late.
//!
//! The report shows them as the host's load: on a machine whose cores are shared, a
//! thread may not run for hundreds of milliseconds. (Late calls are judged with the calling
//! thread's own run-queue wait instead, see `worker::check_call`: a busy thread is kept
//! waiting longer than this sleeping one.)

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(2);
const NOTICE: Duration = Duration::from_millis(20);
const KEEP: usize = 4096;

/// The stalls seen, most recent last.
#[derive(Default)]
pub(crate) struct Stalls {
    seen: Mutex<VecDeque<(Instant, Duration)>>,
    stop: AtomicBool,
}

impl Stalls {
    /// Records stalls until [`Stalls::stop`].
    pub(crate) fn run(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let before = Instant::now();
            // Measuring how late a sleep wakes is the point: no synchronisation waits on it.
            std::thread::sleep(TICK);
            let late = before.elapsed().saturating_sub(TICK);
            if late > NOTICE {
                let mut seen = self.seen.lock();
                if seen.len() == KEEP {
                    seen.pop_front();
                }
                seen.push_back((before, late));
            }
        }
    }

    /// Ends [`Stalls::run`].
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Count and longest of all stalls seen.
    pub(crate) fn summary(&self) -> (usize, Duration) {
        let seen = self.seen.lock();
        (seen.len(), seen.iter().map(|s| s.1).max().unwrap_or(Duration::ZERO))
    }
}
