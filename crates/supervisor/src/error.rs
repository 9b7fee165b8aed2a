//! One error type per operation: a bad spec, bad options, a failed supervisor start, a
//! failed `start_child`, and the by-pid / by-id child operations.
//!
//! Each converts into core's [`StartError`] where a start closure needs one, so that a
//! supervisor can be the child of another (`?` inside a spec's closure just works).

use arbor_core::{CallError, ExitReason, Pid, StartError};
use std::fmt;

/// A child spec that no supervisor accepts (S42, S53, S56). Nothing was started.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// The id is empty (OTP's `:missing_id`).
    EmptyId,
    /// Two children of one static supervisor share this id (`{:duplicate_child_name, id}`).
    DuplicateId(String),
    /// The child with this id has a zero shutdown timeout (`{:invalid_shutdown, 0}`).
    InvalidShutdown(String),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::EmptyId => f.write_str("child spec has an empty id: give it one (`ChildSpec::new(\"id\", ..)`)"),
            SpecError::DuplicateId(id) => write!(f, "duplicate child id {id:?}: ids of a static supervisor's children must differ; rename one"),
            SpecError::InvalidShutdown(id) => write!(f, "child {id:?} has a zero shutdown timeout: use `Shutdown::BrutalKill` to kill at once, or a timeout above zero"),
        }
    }
}

impl std::error::Error for SpecError {}

/// Supervisor options that are rejected before anything starts (S39, S62).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// The intensity window is zero (`{:invalid_period, 0}`).
    ZeroMaxSeconds,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::ZeroMaxSeconds => {
                f.write_str("max_seconds must be greater than zero: set a restart window of at least a millisecond")
            }
        }
    }
}

impl std::error::Error for OptionsError {}

/// Why a supervisor did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorStartError {
    /// The options are invalid (`{:supervisor_data, ..}`, S39); nothing started.
    Options(OptionsError),
    /// A child spec is invalid (`{:start_spec, ..}`, S53); nothing started.
    Spec(SpecError),
    /// The child with this id failed to start; the children started before it were stopped
    /// in reverse order before this was returned (`{:shutdown, {:failed_to_start_child, id,
    /// reason}}`, S53).
    ChildFailed {
        /// The failing child's id.
        id: String,
        /// Its start error.
        error: StartError,
    },
    /// The supervisor process itself did not start (its name is taken, no runtime, the
    /// runtime is shutting down).
    Start(StartError),
}

impl fmt::Display for SupervisorStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorStartError::Options(e) => write!(f, "invalid supervisor options ({e}); nothing started"),
            SupervisorStartError::Spec(e) => write!(f, "invalid child spec ({e}); nothing started"),
            SupervisorStartError::ChildFailed { id, error } => write!(f, "failed to start child {id:?}, so the supervisor stopped the children before it and did not start: {error}"),
            SupervisorStartError::Start(e) => write!(f, "the supervisor process did not start: {e}"),
        }
    }
}

impl std::error::Error for SupervisorStartError {}

impl From<SupervisorStartError> for StartError {
    /// For a supervisor started as another's child: a process-level start error passes
    /// through; a failed child becomes `Init(ShutdownWith(..))`, as OTP's
    /// `{:shutdown, {:failed_to_start_child, ..}}`; bad options or specs become
    /// `Failed(Error(..))`.
    fn from(e: SupervisorStartError) -> StartError {
        match e {
            SupervisorStartError::Start(e) => e,
            e @ SupervisorStartError::ChildFailed { .. } => {
                StartError::Init(ExitReason::shutdown_with(format_args!("{e}")))
            }
            e => StartError::Failed(ExitReason::error(e)),
        }
    }
}

/// Why `start_child` did not start a child.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartChildError {
    /// The spec is invalid; the supervisor was not contacted (S42, S56).
    Spec(SpecError),
    /// The child's start failed, and nothing was stored (S40): `Init(reason)` for an `init`
    /// error or panic, `Ignore` when `init` declined (a static supervisor keeps the spec
    /// then and returns `Ok(None)` instead, S56), `AlreadyStarted(pid)` for a name clash
    /// (S41), `Failed(..)` for the start closure's own error or panic.
    Start(StartError),
    /// The dynamic supervisor already has `max_children` children (S43).
    MaxChildren,
    /// Static supervisor: a child with this id is running, as this pid (S56).
    AlreadyStarted(Pid),
    /// Static supervisor: a child with this id exists but is not running (S56).
    AlreadyPresent,
    /// The supervisor is shutting down.
    ShuttingDown,
    /// The supervisor could not be reached (it is not alive, or exited meanwhile).
    Supervisor(CallError),
}

impl fmt::Display for StartChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartChildError::Spec(e) => write!(f, "invalid child spec ({e}); the supervisor was not contacted"),
            StartChildError::Start(e) => write!(f, "the child did not start, and is not kept: {e}"),
            StartChildError::MaxChildren => f.write_str("the supervisor has max_children children: stop one (`terminate_child`) or raise `max_children`"),
            StartChildError::AlreadyStarted(p) => write!(f, "a child with this id is running as {p}: use it, or give the new child another id"),
            StartChildError::AlreadyPresent => f.write_str("a child with this id exists, stopped: `restart_child` it, or `delete_child` it first"),
            StartChildError::ShuttingDown => f.write_str("the supervisor is shutting down: nothing new starts under it"),
            StartChildError::Supervisor(e) => write!(f, "the supervisor could not be reached (is it running? a handle that survives its restarts is `ChildRef`): {e}"),
        }
    }
}

impl std::error::Error for StartChildError {}

impl StartChildError {
    /// `Ok(pid)` if the child was not started because a process already runs under its
    /// name or id (`Start(AlreadyStarted(pid))`, or a static supervisor's
    /// `AlreadyStarted(pid)`), else the error back: "start it unless it runs", as the
    /// seed's `{:error, {:already_started, pid}} -> {:ok, pid}`, in one line:
    ///
    /// ```
    /// # use arbor_core::{Pid, StartError};
    /// # use arbor_supervisor::StartChildError;
    /// # fn start() -> Result<Pid, StartChildError> { Err(StartChildError::MaxChildren) }
    /// let room = start().or_else(StartChildError::already_started);
    /// assert_eq!(room, Err(StartChildError::MaxChildren));
    /// ```
    ///
    /// # Errors
    ///
    /// Every other `StartChildError`, handed back.
    pub fn already_started(self) -> Result<Pid, StartChildError> {
        match self {
            StartChildError::Start(StartError::AlreadyStarted(pid)) | StartChildError::AlreadyStarted(pid) => Ok(pid),
            e => Err(e),
        }
    }
}

impl From<StartChildError> for StartError {
    /// For code that returns core's error (the seed's `start_recording`): a child's own start
    /// error passes through; the supervisor's reasons become `Failed(Error(..))`.
    fn from(e: StartChildError) -> StartError {
        match e {
            StartChildError::Start(e) => e,
            StartChildError::AlreadyStarted(pid) => StartError::AlreadyStarted(pid),
            e => StartError::Failed(ExitReason::error(e)),
        }
    }
}

/// Why `terminate_child`, `restart_child` or `delete_child` failed (S48, S57).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildError {
    /// No such child (for a dynamic supervisor: the pid is not one of its children, or is
    /// already being terminated).
    NotFound,
    /// The child is running (`restart_child`, `delete_child`).
    Running,
    /// The child is waiting to be restarted (`restart_child`, `delete_child`).
    Restarting,
    /// `restart_child`: the child's start failed; it stays stopped.
    Start(StartError),
    /// The supervisor is shutting down.
    ShuttingDown,
    /// The supervisor could not be reached.
    Supervisor(CallError),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::NotFound => f.write_str(
                "no such child: it already exited or was never a child of this supervisor; `which_children` lists them",
            ),
            ChildError::Running => f.write_str("the child is running: `terminate_child` it first"),
            ChildError::Restarting => {
                f.write_str("the child is waiting to be restarted: try again once it runs, or `terminate_child` it")
            }
            ChildError::Start(e) => write!(f, "the child did not start, and stays stopped: {e}"),
            ChildError::ShuttingDown => f.write_str("the supervisor is shutting down: its children are being stopped"),
            ChildError::Supervisor(e) => write!(f, "the supervisor could not be reached (is it running?): {e}"),
        }
    }
}

impl std::error::Error for ChildError {}
