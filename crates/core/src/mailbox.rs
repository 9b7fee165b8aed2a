//! A process's mailbox and its handshake with the scheduler.
//!
//! One lock guards the queue, the scheduling state and the `closed` flag together, so the
//! handshake needs no further reasoning about memory order:
//!
//! - A sender pushes under the lock. If the state was [`Sched::Idle`] it becomes
//!   [`Sched::Scheduled`] and the sender, and only it, must hand the process to the
//!   scheduler. Any other state means someone already will run it.
//! - The runner pops under the lock. Finding the queue empty, it sets `Idle` in the same
//!   critical section, so a message pushed after that sees `Idle` and schedules: no
//!   wake-up is lost (modelled by loom in `tests/loom_mailbox.rs`).
//! - At the end of a run's budget the runner calls [`Mailbox::yield_now`]: `Scheduled` if
//!   messages wait (the caller re-queues the process), `Idle` otherwise.
//! - [`Mailbox::close`] (the process died) hands back every queued message, refuses later
//!   pushes, and schedules an idle process once more so a worker can finalize it.
//!
//! Per-sender FIFO holds because pushes from one thread are ordered by the lock and the
//! runner pops in queue order. User messages, calls, stops, trapped exits and `Down`s
//! share the queue (they are ordered as Erlang orders them); untrappable signals act on
//! the process directly instead of queueing (see `process/header.rs`).

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::sync::Mutex;
use std::collections::VecDeque;

/// Scheduling state of a process, guarded by the mailbox lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sched {
    /// Not queued and not running: the next push must schedule it.
    Idle,
    /// In a run queue (or about to be): pushes need do nothing more.
    Scheduled,
    /// A worker (set at its first pop), or the starter during `init`, owns it; it will look
    /// at the queue again before it lets go. For a sender this is the same as `Scheduled`.
    Running,
}

/// What the runner found.
pub enum Pop<M> {
    /// The next message.
    Msg(M),
    /// Nothing queued; the state is now `Idle`.
    Empty,
    /// The mailbox is closed: the process is dead and must be finalized.
    Closed,
}

struct Inner<M> {
    queue: VecDeque<M>,
    sched: Sched,
    closed: bool,
}

/// A multi-producer, single-consumer queue with the scheduling handshake built in.
pub struct Mailbox<M> {
    inner: Mutex<Inner<M>>,
}

impl<M> Mailbox<M> {
    /// A mailbox owned by its creator (state `Running`) until its first [`Mailbox::yield_now`].
    pub fn new_running() -> Self {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                sched: Sched::Running,
                closed: false,
            }),
        }
    }

    /// Queues `msg`. `Ok(true)`: the caller must schedule the process. `Err(msg)`: the
    /// process is dead and the message is handed back.
    pub fn push(&self, msg: M) -> Result<bool, M> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(msg);
        }
        inner.queue.push_back(msg);
        Ok(inner.mark_scheduled())
    }

    /// Runner only: takes the next message, or goes idle, or reports death.
    pub fn pop(&self) -> Pop<M> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Pop::Closed;
        }
        match inner.queue.pop_front() {
            Some(m) => {
                inner.sched = Sched::Running;
                Pop::Msg(m)
            }
            None => {
                inner.sched = Sched::Idle;
                Pop::Empty
            }
        }
    }

    /// Runner only, when its budget is spent: true if the process must be re-queued
    /// (messages, death, or `more` work of the runner's own wait), false if it went idle.
    pub fn yield_now(&self, more: bool) -> bool {
        let mut inner = self.inner.lock();
        if more || inner.closed || !inner.queue.is_empty() {
            inner.sched = Sched::Scheduled;
            true
        } else {
            inner.sched = Sched::Idle;
            false
        }
    }

    /// Closes the mailbox. The first call returns the queued messages and whether the
    /// caller must schedule the process (it was idle) so that a worker finalizes it; later
    /// calls return `None`.
    pub fn close(&self) -> Option<(VecDeque<M>, bool)> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return None;
        }
        inner.closed = true;
        let queue = std::mem::take(&mut inner.queue);
        let schedule = inner.mark_scheduled();
        Some((queue, schedule))
    }

    /// Drops the queued messages `pred` selects (runner only); returns them.
    pub fn remove_where(&self, pred: impl Fn(&M) -> bool) -> Vec<M> {
        let mut inner = self.inner.lock();
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(inner.queue.len());
        for m in inner.queue.drain(..) {
            if pred(&m) {
                removed.push(m);
            } else {
                kept.push_back(m);
            }
        }
        inner.queue = kept;
        removed
    }

    /// Number of queued messages.
    pub fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }
}

impl<M> Inner<M> {
    fn mark_scheduled(&mut self) -> bool {
        if self.sched == Sched::Idle {
            self.sched = Sched::Scheduled;
            true
        } else {
            false
        }
    }
}
