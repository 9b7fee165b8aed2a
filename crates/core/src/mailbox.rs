//! A process's mailbox and its handshake with the scheduler.
//!
//! Two lanes:
//!
//! - The **inbox**, where senders push, behind a lock that also guards the scheduling
//!   state and the `closed` flag, so the handshake needs no further reasoning about
//!   memory order.
//! - The **batch**, which the runner owns (it lives in the runner's own data, under the
//!   runner lock, and is passed in to [`Mailbox::pop`]). When the runner finds more than
//!   one message in the inbox, it swaps the whole inbox into its batch at once and pops
//!   the batch, without any lock, from then on. So a busy process takes the lock that
//!   senders contend for once per batch instead of once per message, and nothing else on
//!   its hot path. A lone message is taken directly, without touching the batch.
//!
//! The handshake:
//!
//! - A sender pushes under the inbox lock. If the state was [`Sched::Idle`] it becomes
//!   [`Sched::Scheduled`] and the sender, and only it, must hand the process to the
//!   scheduler. Any other state means someone already will run it.
//! - The runner pops its batch first, then the inbox. Finding both empty, it sets `Idle`
//!   in the inbox's critical section, so a message pushed after that sees `Idle` and
//!   schedules: no wake-up is lost (modelled by loom in `tests/loom_mailbox.rs`).
//! - At the end of a run's budget the runner calls [`Mailbox::yield_now`]: `Scheduled` if
//!   messages wait (the caller re-queues the process), `Idle` otherwise.
//! - [`Mailbox::close`] (the process died) hands back every message still in the inbox,
//!   refuses later pushes, and schedules an idle process once more so a worker can
//!   finalize it. Messages already in the runner's batch are the runner's to dispose of:
//!   it finds the process dead at its next pop and fails or drops them (the process
//!   layer registers the calls of a batch with the process when it takes the batch, so
//!   that a death fails them at once even while a handler still runs; see
//!   `process/cell.rs`).
//!
//! Per-sender FIFO holds because pushes from one thread are ordered by the inbox lock, the
//! batch only ever holds messages older than any in the inbox, and the runner pops the
//! batch first. User messages, calls, stops, trapped exits and `Down`s share the queue
//! (they are ordered as Erlang orders them); untrappable signals act on the process
//! directly instead of queueing (see `process/header.rs`).

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::sync::{AtomicUsize, Mutex, Ordering};
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
    /// The next message, taken with a fresh batch: the batch now holds the rest of what
    /// the inbox held.
    Refilled(M),
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
///
/// Aligned to a cache line of its own: senders take its lock on every push, and the
/// runner writes its own state (the batch it pops from, the server's state) on every
/// message; sharing a line made each pop cost the senders a cache miss (fan_in ran at
/// half speed; docs/performance.md, session 5).
#[repr(align(64))]
pub struct Mailbox<M> {
    inbox: Mutex<Inbox<M>>,
    /// Length of the runner's batch, as of its last refill or run (for [`Mailbox::len`]).
    batch_len: AtomicUsize,
}

impl<M> Mailbox<M> {
    /// A mailbox owned by its creator (state `Running`) until its first
    /// [`Mailbox::yield_now`].
    pub fn new_running() -> Self {
        Mailbox {
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                sched: Sched::Running,
                closed: false,
            }),
            batch_len: AtomicUsize::new(0),
        }
    }

    /// Queues `msg`. `Ok(true)`: the caller must schedule the process. `Err(msg)`: the
    /// process is dead and the message is handed back.
    #[inline(always)]
    pub fn push(&self, msg: M) -> Result<bool, M> {
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Err(msg);
        }
        inbox.queue.push_back(msg);
        Ok(inbox.mark_scheduled())
    }

    /// Queues every message of `msgs`, in order, under one lock: a batch of
    /// [`Mailbox::push`]es that takes the lock senders contend for once and schedules the
    /// process at most once. `Ok(true)`: the caller must schedule the process.
    /// `Err(msgs)`: the process is dead and every message is handed back (none was
    /// queued).
    pub fn push_all(&self, msgs: Vec<M>) -> Result<bool, Vec<M>> {
        if msgs.is_empty() {
            return Ok(false);
        }
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Err(msgs);
        }
        inbox.queue.extend(msgs);
        Ok(inbox.mark_scheduled())
    }

    /// Runner only: takes the next message (from `batch`, the runner's own, first), or
    /// goes idle, or reports death. The batch of a live process is only ever refilled
    /// here, when empty.
    pub fn pop(&self, batch: &mut VecDeque<M>) -> Pop<M> {
        if let Some(m) = batch.pop_front() {
            // No write to the mailbox here: its first cache line is the one senders
            // hammer (see `set_batch_len`).
            return Pop::Msg(m);
        }
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Pop::Closed;
        }
        if inbox.queue.len() > 1 {
            // The batch is empty, so the swap also hands the inbox the batch's spare
            // capacity.
            std::mem::swap(batch, &mut inbox.queue);
            inbox.sched = Sched::Running;
            self.batch_len.store(batch.len() - 1, Ordering::Relaxed);
            drop(inbox);
            let m = batch.pop_front().expect("the inbox held more than one message");
            return Pop::Refilled(m);
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
    /// batch that is not empty), false if it went idle.
    pub fn yield_now(&self, more: bool) -> bool {
        if more {
            // The state stays `Running`, which senders treat as `Scheduled`: no need to
            // take the lock they contend for (a busy process would otherwise queue for
            // it, behind them, once per budget).
            return true;
        }
        let mut inbox = self.inbox.lock();
        if inbox.closed || !inbox.queue.is_empty() {
            inbox.sched = Sched::Scheduled;
            true
        } else {
            inbox.sched = Sched::Idle;
            false
        }
    }

    /// Closes the mailbox. The first call returns the messages in the inbox and whether
    /// the caller must schedule the process (it was idle) so that a worker finalizes it;
    /// later calls return `None`.
    pub fn close(&self) -> Option<(VecDeque<M>, bool)> {
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return None;
        }
        inbox.closed = true;
        let queue = std::mem::take(&mut inbox.queue);
        let schedule = inbox.mark_scheduled();
        Some((queue, schedule))
    }

    /// Drops the queued messages `pred` selects, from the runner's `batch` and from the
    /// inbox (runner only); returns them.
    pub fn remove_where(&self, batch: &mut VecDeque<M>, pred: impl Fn(&M) -> bool) -> Vec<M> {
        let mut removed = Vec::new();
        let mut sift = |q: &mut VecDeque<M>| {
            let mut kept = VecDeque::with_capacity(q.len());
            for m in q.drain(..) {
                if pred(&m) {
                    removed.push(m);
                } else {
                    kept.push_back(m);
                }
            }
            *q = kept;
        };
        sift(batch);
        sift(&mut self.inbox.lock().queue);
        self.set_batch_len(batch.len());
        removed
    }

    /// Runner only: records the length of its batch for [`Mailbox::len`]. The runner calls
    /// this once per run rather than once per pop, so that a busy process does not write
    /// to the cache line its senders contend for with every message it handles.
    pub fn set_batch_len(&self, n: usize) {
        if self.batch_len.load(Ordering::Relaxed) != n {
            self.batch_len.store(n, Ordering::Relaxed);
        }
    }

    /// Number of queued messages, seen from outside the process: the inbox, and the
    /// runner's batch as of its last refill or the end of its last run (so it may count
    /// up to one run's worth of messages already handled).
    pub fn len(&self) -> usize {
        let inbox = self.inbox.lock();
        if inbox.closed {
            return 0;
        }
        inbox.queue.len() + self.batch_len.load(Ordering::Relaxed)
    }

    /// Number of queued messages, exactly, for the runner (which owns `batch`).
    pub fn len_with(&self, batch: &VecDeque<M>) -> usize {
        let inbox = self.inbox.lock();
        if inbox.closed {
            return 0;
        }
        inbox.queue.len() + batch.len()
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
