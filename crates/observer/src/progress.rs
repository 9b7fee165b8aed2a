//! Stuck handlers, told from what core reports today: a process that has work waiting (a
//! message in its mailbox or a call taken and not answered), or that has begun to exit, and
//! whose count of messages handled has not moved for a while.
//!
//! Core has no watchdog yet that says which callback a process is running and since when;
//! until it has, this is the observer's view, with two limits stated in `docs/observer.md`:
//! progress is sampled only when a snapshot is taken (nothing runs when nobody looks, so a
//! handler stuck before the first look is dated from that look), and a server that holds
//! calls on purpose to answer them later (a deferred reply) shows here once it has been
//! quiet for the threshold.
//!
//! Invariant: the table holds one entry per live process seen in the last snapshot; entries
//! of processes gone are dropped at each update, so it never outgrows the process table.

use arbor_core::{Pid, ProcessInfo};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A process that looks stuck in a handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckHandler {
    /// The process.
    pub pid: Pid,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// The Rust type of its state.
    pub type_name: &'static str,
    /// Messages waiting.
    pub mailbox_len: usize,
    /// Calls taken and not answered.
    pub held_calls: usize,
    /// True if it has begun to exit but its handler has not returned.
    pub exiting: bool,
    /// Its messages-handled count, unchanged since `since`.
    pub messages_handled: u64,
    /// How long it has made no progress, as far as the observer has seen.
    pub quiet_for: Duration,
}

struct Seen {
    handled: u64,
    since: Instant,
}

/// Messages handled per process at the last snapshot.
pub(crate) struct Progress {
    threshold: Duration,
    seen: Mutex<HashMap<Pid, Seen>>,
}

impl Progress {
    pub(crate) fn new(threshold: Duration) -> Progress {
        Progress {
            threshold,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `processes` and returns those with work waiting (or exiting) and no progress
    /// for at least the threshold.
    pub(crate) fn update(&self, processes: &[ProcessInfo]) -> Vec<StuckHandler> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = HashMap::with_capacity(processes.len());
        let mut stuck = Vec::new();
        for p in processes {
            let since = match seen.remove(&p.pid) {
                Some(s) if s.handled == p.messages_handled => s.since,
                _ => now,
            };
            let waiting = p.mailbox_len > 0 || p.held_calls > 0 || !p.alive;
            let quiet_for = now.duration_since(since);
            if waiting && quiet_for >= self.threshold {
                stuck.push(StuckHandler {
                    pid: p.pid,
                    name: p.name.clone(),
                    type_name: p.type_name,
                    mailbox_len: p.mailbox_len,
                    held_calls: p.held_calls,
                    exiting: !p.alive,
                    messages_handled: p.messages_handled,
                    quiet_for,
                });
            }
            next.insert(
                p.pid,
                Seen {
                    handled: p.messages_handled,
                    since,
                },
            );
        }
        *seen = next;
        stuck.sort_by_key(|s| std::cmp::Reverse(s.quiet_for));
        stuck
    }
}
