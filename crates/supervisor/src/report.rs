//! Introspection of a supervisor: its children with their specs, the exits it handled
//! (who, why, when, and what it did), and how much of its restart intensity is used.
//!
//! Invariants:
//! - A report is taken inside the supervisor's process between two of its messages (a
//!   call answered at once, even while the supervisor is stopping children), so the
//!   children, the history and the intensity of one report agree with each other.
//! - The history is bounded: the newest [`RESTART_HISTORY_LEN`] exits are kept, so a
//!   supervisor that restarts a child forever holds a fixed amount of memory for it.
//! - Recording an exit costs one push into that bounded queue and one read of the wall
//!   clock, on the supervisor's own exit-handling path; nothing is recorded or computed on
//!   any other path.

use crate::info::ChildInfo;
use crate::opts::Strategy;
use crate::spec::Shutdown;
use crate::tree::SupervisorKind;
use crate::{DynamicSupervisor, Supervisor};
use arbor_core::{CallError, ExitReason, Pid};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// How many child exits a supervisor remembers (the newest are kept).
pub const RESTART_HISTORY_LEN: usize = 64;

/// What a supervisor did about a child's exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitAction {
    /// The child was started again (or, if its start failed, a retry was scheduled).
    Restarted,
    /// Its restart type says no restart after this reason (a temporary child, or a transient
    /// one that ended cleanly).
    NotRestarted,
    /// The supervisor was already stopping.
    ShuttingDown,
    /// Restarting it would have exceeded the restart intensity: the supervisor gave up and
    /// began to shut down.
    GaveUp,
}

impl ExitAction {
    /// A short lowercase word for reports: `restarted`, `not restarted`, `shutting down`,
    /// `gave up`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExitAction::Restarted => "restarted",
            ExitAction::NotRestarted => "not restarted",
            ExitAction::ShuttingDown => "shutting down",
            ExitAction::GaveUp => "gave up",
        }
    }
}

/// One exit of a child, as its supervisor handled it. Exits the supervisor caused itself
/// (terminating a child, stopping it for a one_for_all restart or a shutdown) are not
/// recorded: only those it had to decide about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildExit {
    /// The child's spec id.
    pub id: String,
    /// The process that exited.
    pub pid: Pid,
    /// Why it exited.
    pub reason: ExitReason,
    /// When the supervisor handled the exit (wall clock).
    pub at: SystemTime,
    /// What the supervisor did.
    pub action: ExitAction,
}

/// One child in a [`SupervisorReport`]: what `which_children` says, and its spec's
/// shutdown policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildReport {
    /// Id, status, type, restart type and restart count.
    pub info: ChildInfo,
    /// How it is stopped.
    pub shutdown: Shutdown,
}

/// How much of a supervisor's restart intensity is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntensityUse {
    /// Restarts allowed within the window.
    pub max_restarts: usize,
    /// The window.
    pub window: Duration,
    /// Restarts inside the window ending now. One more than `max_restarts` and the
    /// supervisor gives up.
    pub used: usize,
}

/// A supervisor seen from inside: see [`supervisor_report`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupervisorReport {
    /// The supervisor.
    pub pid: Pid,
    /// Static or dynamic.
    pub kind: SupervisorKind,
    /// Its restart strategy (a dynamic supervisor's is always one_for_one).
    pub strategy: Strategy,
    /// Its children: in start order for both kinds.
    pub children: Vec<ChildReport>,
    /// The newest exits it handled, oldest first (at most [`RESTART_HISTORY_LEN`]).
    pub history: Vec<ChildExit>,
    /// Its restart intensity and how much of it is used.
    pub intensity: IntensityUse,
    /// A dynamic supervisor's `max_children`, if set.
    pub max_children: Option<usize>,
    /// Set once it has begun to shut down.
    pub shutting_down: bool,
}

/// The report of the supervisor running as `pid` (static or dynamic), waiting at most
/// `timeout` for it: `None` if `pid` is not an arbor supervisor.
///
/// # Errors
///
/// `Some(Err(e))` if the supervisor does not answer: `NoProc` once it has exited,
/// `Exited(reason)` if it exits first, `Timeout` past `timeout` (a supervisor busy starting
/// a slow child answers only after that start), `CallingSelf` from the supervisor itself.
pub fn supervisor_report(pid: Pid, timeout: Duration) -> Option<Result<SupervisorReport, CallError>> {
    if let Some(sup) = DynamicSupervisor::from_pid(pid) {
        return Some(sup.report(timeout));
    }
    Supervisor::from_pid(pid).map(|sup| sup.report(timeout))
}

/// The bounded history a supervisor keeps.
#[derive(Default)]
pub(crate) struct History {
    exits: VecDeque<ChildExit>,
}

impl History {
    pub(crate) fn record(&mut self, id: &str, pid: Pid, reason: &ExitReason, action: ExitAction) {
        if self.exits.len() == RESTART_HISTORY_LEN {
            self.exits.pop_front();
        }
        self.exits.push_back(ChildExit {
            id: id.to_string(),
            pid,
            reason: reason.clone(),
            at: SystemTime::now(),
            action,
        });
    }

    /// The action of the newest exit of `pid`, changed to `action` (a restart that found the
    /// intensity exhausted turns `Restarted` into `GaveUp`).
    pub(crate) fn amend_last(&mut self, pid: Pid, action: ExitAction) {
        if let Some(last) = self.exits.back_mut() {
            if last.pid == pid {
                last.action = action;
            }
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<ChildExit> {
        self.exits.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DynamicOpts;
    use arbor_core::Runtime;

    #[test]
    fn history_keeps_the_newest_exits_only() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let pid = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle()))
            .unwrap()
            .pid();
        let mut h = History::default();
        for n in 0..(RESTART_HISTORY_LEN + 10) {
            h.record(&n.to_string(), pid, &ExitReason::Normal, ExitAction::Restarted);
        }
        let v = h.to_vec();
        assert_eq!(v.len(), RESTART_HISTORY_LEN);
        assert_eq!(v[0].id, "10");
        assert_eq!(v.last().unwrap().id, (RESTART_HISTORY_LEN + 9).to_string());
    }
}
