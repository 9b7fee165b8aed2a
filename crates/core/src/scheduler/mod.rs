//! The scheduler: runs type-erased [`Runnable`]s on a pool of worker threads. It knows
//! nothing of processes, mailboxes or GenServers.
//!
//! - `pool.rs`: the pool, its global run queue, the per-worker LIFO slot, and the
//!   compensation that keeps the pool busy while a worker blocks.
//! - `sleep.rs`: how idle workers park and how work wakes them, without lost wake-ups.
//! - [`Scheduler`] (here): which of the two schedulers a runtime runs on, the worker pool
//!   or the deterministic driver of `crate::sim`, which keeps its ready processes in a
//!   set and runs them one at a time on the thread that drives it. The pool is untouched
//!   by it: the choice costs one predictable branch where a task is scheduled.
//!
//! The sleep/wake protocol and the blocking compensation are explained, race by race, in
//! `docs/scheduler.md`.

#[cfg(not(loom))]
pub(crate) mod inline;
mod lifo;
mod pool;
mod sleep;

#[cfg(loom)]
pub use lifo::LifoSlot;
#[cfg(loom)]
pub use pool::loom_face;
#[cfg(not(loom))]
pub(crate) use pool::{
    block_in_place, note_escape, recover_escaped, Pool, PoolConfig, PoolStats, Runnable, Stall, StallHook, Task,
};

#[cfg(not(loom))]
pub(crate) use select::Scheduler;

#[cfg(not(loom))]
mod select {
    use super::{Pool, PoolStats, Stall, StallHook, Task};
    use crate::sim::Driver;
    use std::sync::Arc;
    use std::time::Duration;

    /// A runtime's scheduler: the worker pool, or a deterministic runtime's driver.
    pub(crate) enum Scheduler {
        /// Worker threads (`pool.rs`).
        Pool(Arc<Pool>),
        /// One driving thread, a seeded choice among ready tasks (`crate::sim`).
        Sim(Arc<Driver>),
    }

    impl Scheduler {
        /// See [`Pool::schedule`]; on a deterministic runtime, adds the task to the ready set.
        #[inline]
        pub(crate) fn schedule(&self, task: Task) {
            match self {
                Scheduler::Pool(p) => p.schedule(task),
                Scheduler::Sim(d) => d.schedule(task),
            }
        }

        /// See [`Pool::inject`].
        #[inline]
        pub(crate) fn inject(&self, task: Task) {
            match self {
                Scheduler::Pool(p) => p.inject(task),
                Scheduler::Sim(d) => d.schedule(task),
            }
        }

        /// See [`Pool::requeue`].
        #[inline]
        pub(crate) fn requeue(&self, task: Task) {
            match self {
                Scheduler::Pool(p) => p.requeue(task),
                Scheduler::Sim(d) => d.schedule(task),
            }
        }

        /// The deterministic driver, on a deterministic runtime.
        #[inline]
        pub(crate) fn sim(&self) -> Option<&Arc<Driver>> {
            match self {
                Scheduler::Pool(_) => None,
                Scheduler::Sim(d) => Some(d),
            }
        }

        /// True if the calling thread runs one of this scheduler's tasks now.
        pub(crate) fn is_current(&self) -> bool {
            match self {
                Scheduler::Pool(p) => p.is_current(),
                Scheduler::Sim(d) => d.is_running_here(),
            }
        }

        /// Worker threads alive (none on a deterministic runtime).
        pub(crate) fn thread_count(&self) -> usize {
            match self {
                Scheduler::Pool(p) => p.thread_count(),
                Scheduler::Sim(_) => 0,
            }
        }

        pub(crate) fn stats(&self) -> PoolStats {
            match self {
                Scheduler::Pool(p) => p.stats(),
                Scheduler::Sim(d) => PoolStats {
                    injector_len: d.ready_len(),
                    ..PoolStats::default()
                },
            }
        }

        pub(crate) fn set_stall_hook(&self, hook: StallHook) {
            if let Scheduler::Pool(p) = self {
                p.set_stall_hook(hook)
            }
        }

        pub(crate) fn stalls(&self) -> Vec<Stall> {
            match self {
                Scheduler::Pool(p) => p.stalls(),
                Scheduler::Sim(_) => Vec::new(),
            }
        }

        /// Stops the workers (see [`Pool::shutdown`]); a driver drops the tasks left.
        pub(crate) fn shutdown(&self, grace: Duration) {
            match self {
                Scheduler::Pool(p) => p.shutdown(grace),
                Scheduler::Sim(d) => d.clear(),
            }
        }
    }
}
#[cfg(loom)]
pub use sleep::Sleep;
