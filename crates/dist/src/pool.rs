//! The threads that wait on arbor servers for incoming calls.
//!
//! A call from the BEAM must reach `handle_call` through [`ServerRef::call`]
//! (arbor_core::ServerRef::call), which blocks its thread until the server replies, maybe
//! much later (a deferred reply). The connection's reader must not wait, so each call
//! waits on a thread of this pool: idle threads are reused, a new one starts when none is
//! idle, up to `max`; past it calls queue until a thread frees up. The queue is bounded
//! too ([`QUEUE`]): when it is full the connection's reader waits, so a peer that floods
//! calls meets TCP's back-pressure instead of growing memory. Idle threads beyond the
//! first few leave after 10 s.

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct CallPool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    shared: Arc<Counts>,
    max: usize,
    name: String,
}

struct Counts {
    threads: AtomicUsize,
    idle: AtomicUsize,
}

const KEEP: usize = 4;
/// Calls that may wait for a free thread before the readers wait too.
pub(crate) const QUEUE: usize = 4096;
const IDLE_EXIT: Duration = Duration::from_secs(10);

impl CallPool {
    pub(crate) fn new(max: usize, name: String) -> CallPool {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        CallPool {
            tx,
            rx,
            shared: Arc::new(Counts {
                threads: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }),
            max: max.max(1),
            name,
        }
    }

    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        let job = match self.tx.try_send(job) {
            Ok(()) => None,
            Err(e) => Some(e.into_inner()),
        };
        if let Some(job) = job {
            // Full: make sure a thread is coming, then wait for room.
            if self.shared.threads.load(Ordering::Acquire) < self.max {
                self.spawn();
            }
            let _ = self.tx.send(job);
            return;
        }
        // Claim an idle thread for this job; start one if none is idle.
        let claimed = self
            .shared
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed && self.shared.threads.load(Ordering::Acquire) < self.max {
            self.spawn();
        }
    }

    fn spawn(&self) {
        self.shared.threads.fetch_add(1, Ordering::AcqRel);
        let rx = self.rx.clone();
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-call", self.name))
            .stack_size(8 << 20)
            .spawn(move || loop {
                match rx.recv_timeout(IDLE_EXIT) {
                    Ok(job) => {
                        job();
                        shared.idle.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        let n = shared.threads.load(Ordering::Acquire);
                        if n > KEEP
                            && shared
                                .idle
                                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                                .is_ok()
                        {
                            shared.threads.fetch_sub(1, Ordering::AcqRel);
                            return;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        shared.threads.fetch_sub(1, Ordering::AcqRel);
                        return;
                    }
                }
            });
        if spawned.is_err() {
            self.shared.threads.fetch_sub(1, Ordering::AcqRel);
            log::error!("arbor-dist: cannot start a call thread; calls wait for a free one");
        }
    }
}
