//! A process's mailbox and its handshake with the scheduler.
//!
//! Two lanes, each behind its own lock:
//!
//! - The **inbox**, where senders push. Its lock also guards the scheduling state and the
//!   `closed` flag, so the handshake needs no further reasoning about memory order.
//! - The **batch**, the runner's side. When the runner finds more than one message in the
//!   inbox, it swaps the whole inbox into the batch at once and pops the batch from then
//!   on, so a busy process takes the lock that senders contend for once per batch instead
//!   of once per message. The batch lock is only ever taken by the runner, and by
//!   [`Mailbox::close`] and the other whole-mailbox operations: it is uncontended, and
//!   stays in the runner's cache.
//!
//! The runner keeps a hint (`batch`, a plain `bool` in its own data) that says whether the
//! batch may hold messages; only the runner adds to the batch and everyone else only
//! empties it, so a stale hint can only be too high, and costs one look at an empty batch.
//! A lone message in the inbox is taken directly, without touching the batch, so a
//! ping-pong pays one inbox lock per push and one per pop, as a single queue would.
//!
//! The handshake:
//!
//! - A sender pushes under the inbox lock. If the state was [`Sched::Idle`] it becomes
//!   [`Sched::Scheduled`] and the sender, and only it, must hand the process to the
//!   scheduler. Any other state means someone already will run it.
//! - The runner pops the batch first, then the inbox. Finding both empty, it sets `Idle`
//!   in the inbox's critical section, so a message pushed after that sees `Idle` and
//!   schedules: no wake-up is lost (modelled by loom in `tests/loom_mailbox.rs`).
//! - At the end of a run's budget the runner calls [`Mailbox::yield_now`]: `Scheduled` if
//!   messages wait (the caller re-queues the process), `Idle` otherwise.
//! - [`Mailbox::close`] (the process died) hands back every queued message of both lanes,
//!   in order, refuses later pushes, and schedules an idle process once more so a worker
//!   can finalize it.
//!
//! Lock order: batch before inbox. A runner that finds a batch's worth in the inbox lets
//! the inbox lock go and takes both in that order.
//!
//! Per-sender FIFO holds because pushes from one thread are ordered by the inbox lock, the
//! batch only ever holds messages older than any in the inbox, and the runner pops the
//! batch first. User messages, calls, stops, trapped exits and `Down`s share the queue
//! (they are ordered as Erlang orders them); untrappable signals act on the process
//! directly instead of queueing (see `process/header.rs`).

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::sync::Mutex;
use std::collections::VecDeque;

/// Scheduling state of a process, guarded by the inbox lock.
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

struct Inbox<M> {
    queue: VecDeque<M>,
    sched: Sched,
    closed: bool,
}

/// A multi-producer, single-consumer queue with the scheduling handshake built in.
pub struct Mailbox<M> {
    inbox: Mutex<Inbox<M>>,
    batch: Mutex<VecDeque<M>>,
}

impl<M> Mailbox<M> {
    /// A mailbox owned by its creator (state `Running`) until its first [`Mailbox::yield_now`].
    pub fn new_running() -> Self {
        Mailbox {
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                sched: Sched::Running,
                closed: false,
            }),
            batch: Mutex::new(VecDeque::new()),
        }
    }

    /// Queues `msg`. `Ok(true)`: the caller must schedule the process. `Err(msg)`: the
    /// process is dead and the message is handed back.
    pub fn push(&self, msg: M) -> Result<bool, M> {
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Err(msg);
        }
        inbox.queue.push_back(msg);
        Ok(inbox.mark_scheduled())
    }

    /// Runner only: takes the next message, or goes idle, or reports death. `batch` is the
    /// runner's hint that the batch may hold messages (false for a new mailbox).
    pub fn pop(&self, batch: &mut bool) -> Pop<M> {
        if *batch {
            let mut b = self.batch.lock();
            if let Some(m) = b.pop_front() {
                *batch = !b.is_empty();
                return Pop::Msg(m);
            }
            // Emptied by `close` or `remove_where`.
            *batch = false;
        }
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Pop::Closed;
        }
        if inbox.queue.len() > 1 {
            // Take the whole inbox at once, keeping the lock order (batch, then inbox).
            drop(inbox);
            let mut b = self.batch.lock();
            let mut inbox = self.inbox.lock();
            if inbox.closed {
                return Pop::Closed;
            }
            // The batch is empty (only the runner fills it), so the swap also hands the
            // inbox the batch's spare capacity. Meanwhile only `close` could have taken
            // messages, and it sets `closed`: the batch now holds at least two.
            std::mem::swap(&mut *b, &mut inbox.queue);
            inbox.sched = Sched::Running;
            drop(inbox);
            let m = b.pop_front().expect("the inbox held more than one message");
            *batch = !b.is_empty();
            return Pop::Msg(m);
        }
        match inbox.queue.pop_front() {
            Some(m) => {
                inbox.sched = Sched::Running;
                Pop::Msg(m)
            }
            None => {
                inbox.sched = Sched::Idle;
                Pop::Empty
            }
        }
    }

    /// Runner only, when its budget is spent: true if the process must be re-queued
    /// (messages, death, or `more` work of the runner's own: its continuations, or a
    /// batch hint that is set), false if it went idle.
    pub fn yield_now(&self, more: bool) -> bool {
        let mut inbox = self.inbox.lock();
        if more || inbox.closed || !inbox.queue.is_empty() {
            inbox.sched = Sched::Scheduled;
            true
        } else {
            inbox.sched = Sched::Idle;
            false
        }
    }

    /// Closes the mailbox. The first call returns the queued messages (batch, then inbox)
    /// and whether the caller must schedule the process (it was idle) so that a worker
    /// finalizes it; later calls return `None`.
    pub fn close(&self) -> Option<(VecDeque<M>, bool)> {
        let mut b = self.batch.lock();
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return None;
        }
        inbox.closed = true;
        let mut queue = std::mem::take(&mut *b);
        queue.append(&mut inbox.queue);
        inbox.queue = VecDeque::new();
        let schedule = inbox.mark_scheduled();
        Some((queue, schedule))
    }

    /// Drops the queued messages `pred` selects (runner only); returns them. Sets the
    /// runner's batch hint to match what is left in the batch.
    pub fn remove_where(&self, batch: &mut bool, pred: impl Fn(&M) -> bool) -> Vec<M> {
        let mut b = self.batch.lock();
        let mut inbox = self.inbox.lock();
        let mut removed = Vec::new();
        for q in [&mut *b, &mut inbox.queue] {
            let mut kept = VecDeque::with_capacity(q.len());
            for m in q.drain(..) {
                if pred(&m) {
                    removed.push(m);
                } else {
                    kept.push_back(m);
                }
            }
            *q = kept;
        }
        *batch = !b.is_empty();
        removed
    }

    /// Number of queued messages.
    pub fn len(&self) -> usize {
        let b = self.batch.lock();
        let inbox = self.inbox.lock();
        b.len() + inbox.queue.len()
    }
}

impl<M> Inbox<M> {
    fn mark_scheduled(&mut self) -> bool {
        if self.sched == Sched::Idle {
            self.sched = Sched::Scheduled;
            true
        } else {
            false
        }
    }
}
