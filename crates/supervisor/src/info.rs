//! What supervisors report about their children: `which_children` entries and
//! `count_children` totals (S50, S55, S57).
//!
//! Invariant: these are snapshots, taken inside the supervisor's process between two of its
//! messages, so every entry of one report is consistent with the others.

use crate::spec::{ChildType, Restart};
use arbor_core::Pid;
use std::fmt;

/// A child's state, as `which_children` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildStatus {
    /// Alive, as this pid (it may be on its way out after a shutdown signal).
    Running(Pid),
    /// Its last restart failed; the supervisor retries (S47). Elixir's `:restarting`.
    Restarting,
    /// Static supervisors only: the spec is kept but no process runs (terminated, ignored at
    /// start, or a transient child that ended cleanly). Elixir's `:undefined`.
    Stopped,
}

impl ChildStatus {
    /// The pid, if running.
    pub fn pid(&self) -> Option<Pid> {
        match self {
            ChildStatus::Running(p) => Some(*p),
            _ => None,
        }
    }
}

impl fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildStatus::Running(p) => write!(f, "{p} running"),
            ChildStatus::Restarting => f.write_str("restarting"),
            ChildStatus::Stopped => f.write_str("undefined"),
        }
    }
}

/// One entry of `which_children`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The spec's id (a DynamicSupervisor reports it too, where Elixir shows `:undefined`).
    pub id: String,
    /// Running, restarting, or stopped.
    pub status: ChildStatus,
    /// Worker or supervisor.
    pub kind: ChildType,
    /// The restart type.
    pub restart: Restart,
    /// How many times this child has been restarted by its supervisor (beyond OTP; for
    /// reports such as [`render_tree`](crate::render_tree)).
    pub restarts: u64,
}

/// What `count_children` returns (S50, S57).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChildCounts {
    /// Children the supervisor knows of, running or not.
    pub specs: usize,
    /// Children that are alive.
    pub active: usize,
    /// Children of type `Supervisor`, whatever their state.
    pub supervisors: usize,
    /// Children of type `Worker`, whatever their state.
    pub workers: usize,
}

impl ChildCounts {
    pub(crate) fn of(children: impl IntoIterator<Item = ChildInfo>) -> ChildCounts {
        let mut c = ChildCounts::default();
        for info in children {
            c.specs += 1;
            if matches!(info.status, ChildStatus::Running(_)) {
                c.active += 1;
            }
            match info.kind {
                ChildType::Worker => c.workers += 1,
                ChildType::Supervisor => c.supervisors += 1,
            }
        }
        c
    }
}
