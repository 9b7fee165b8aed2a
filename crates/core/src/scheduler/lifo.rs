//! A worker's LIFO slot: the task to run next on that worker.
//!
//! Its owner fills and empties it on every hop of a message chain; another thread (the
//! pool's monitor) takes the task only when the worker has been running one task for a long
//! time, so the lock is almost never contended (an uncontended `parking_lot` lock and
//! unlock: two atomic operations). Each task put in the slot is taken exactly once, by its
//! owner or by the monitor. Modelled by loom in `tests/loom_lifo.rs`.
//!
//! (A spin flag with a plain-store release was tried: within noise of the lock on
//! thread_ring, and a spin loop that loom cannot model.)

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::sync::Mutex;

/// One task, or none.
pub struct LifoSlot<T> {
    task: Mutex<Option<T>>,
}

impl<T> Default for LifoSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LifoSlot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        LifoSlot { task: Mutex::new(None) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> R {
        f(&mut self.task.lock())
    }

    /// Takes the task, if any.
    pub fn take(&self) -> Option<T> {
        self.with(Option::take)
    }

    /// Puts `task` in, returning the one it displaces.
    pub fn replace(&self, task: T) -> Option<T> {
        self.with(|t| t.replace(task))
    }

    /// True if a task waits in the slot.
    pub fn is_some(&self) -> bool {
        self.with(|t| t.is_some())
    }
}
