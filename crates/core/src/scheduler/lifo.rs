//! A worker's LIFO slot: the task to run next on that worker.
//!
//! Its owner fills and empties it on every hop of a message chain; another thread (the
//! pool's monitor) takes the task only when the worker has been running one task for a long
//! time. So the owner's path is kept to one read-modify-write per hop: filling an empty slot
//! is a plain store, taking it one compare-and-swap. The slot's state says who may touch
//! the cell:
//!
//! - `EMPTY`: only the owner, which fills it and then publishes `FULL` (Release).
//! - `FULL`: whoever wins the compare-and-swap `FULL -> BUSY` (the owner taking its next
//!   task, or the monitor stealing it) takes the task, then publishes `EMPTY` (Release).
//! - `BUSY`: the winner is taking the task; the owner waits a moment for `EMPTY`.
//!
//! So each task put in the slot is taken exactly once, by its owner or by the monitor.
//! Modelled by loom in `tests/loom_lifo.rs`. (A mutex costs two read-modify-writes per
//! operation, four per hop: ping_pong fell by about a third with it.)

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::sync::{spin_wait, AtomicUsize, Ordering, UnsafeCell};

const EMPTY: usize = 0;
const FULL: usize = 1;
const BUSY: usize = 2;

/// One task, or none; filled and emptied by its owner, stolen by others.
pub struct LifoSlot<T> {
    state: AtomicUsize,
    task: UnsafeCell<Option<T>>,
}

// SAFETY: the cell is only touched by the thread the state grants it to (see the module
// docs): the owner while `EMPTY`, the winner of `FULL -> BUSY` until it publishes `EMPTY`.
// The Release/Acquire pairs on `state` order those accesses. Moving a `T` between threads
// needs `T: Send`.
unsafe impl<T: Send> Sync for LifoSlot<T> {}

impl<T> Default for LifoSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LifoSlot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        LifoSlot {
            state: AtomicUsize::new(EMPTY),
            task: UnsafeCell::new(None),
        }
    }

    /// Takes the task if the slot is `FULL` and this thread wins it; waits out a steal in
    /// progress. `None` if the slot is (or becomes) empty.
    fn claim(&self, wait: bool) -> Option<T> {
        loop {
            match self.state.load(Ordering::Acquire) {
                EMPTY => return None,
                FULL => {
                    if self
                        .state
                        .compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        // SAFETY: winning `FULL -> BUSY` grants the cell to this thread
                        // until it publishes `EMPTY` below.
                        let task = self.task.with_mut(|t| unsafe { (*t).take() });
                        self.state.store(EMPTY, Ordering::Release);
                        return task;
                    }
                }
                _ if wait => spin_wait(),
                _ => return None,
            }
        }
    }

    /// The owner takes its next task.
    pub fn take(&self) -> Option<T> {
        self.claim(true)
    }

    /// Another thread takes the task, unless the owner is taking it right now.
    pub fn steal(&self) -> Option<T> {
        self.claim(false)
    }

    /// The owner puts `task` in, returning the one it displaces.
    pub fn replace(&self, task: T) -> Option<T> {
        let previous = self.take();
        // SAFETY: after `take` the state is `EMPTY`, and only the owner (this thread)
        // moves it out of `EMPTY`: the cell is ours until the store below publishes it.
        self.task.with_mut(|t| unsafe { *t = Some(task) });
        self.state.store(FULL, Ordering::Release);
        previous
    }

    /// True if a task waits in the slot.
    pub fn is_some(&self) -> bool {
        self.state.load(Ordering::Acquire) != EMPTY
    }
}
