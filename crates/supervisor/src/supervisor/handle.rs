//! [`Supervisor`]: the public handle to a static supervisor, a typed [`ServerRef`] to its
//! process (`server.rs`).
//!
//! Invariants:
//! - Options and specs are checked here, before any process is started or contacted (S39,
//!   S53); a spec passed to `start_child` is checked again by the process.
//! - Every request is one call without a timeout (OTP's `:infinity`); the process answers each
//!   with the [`SupReply`] variant matching its [`SupCall`], so any other variant is a bug
//!   (`unreachable!`). A dead supervisor makes the call fail at once.
//! - A boot failure is reported through `Boot::failure`, which `init` fills before it fails:
//!   if it is set, the error names the child; otherwise the start itself failed.

use super::server::{Boot, StaticServer, SupCall, SupReply};
use crate::error::{ChildError, StartChildError, SupervisorStartError};
use crate::info::{ChildCounts, ChildInfo};
use crate::opts::SupervisorOpts;
use crate::report::SupervisorReport;
use crate::spec::{validate_all, ChildSpec};
use arbor_core::{CallError, CallFuture, ExitFuture, ExitReason, GenServer, Naming, Pid, ServerRef, StartError};
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A handle to a static supervisor: Elixir's `Supervisor`.
///
/// Its children are given at start and started in list order, each synchronously (S52);
/// it restarts them by its [`Strategy`](crate::Strategy) and stops them one by one in
/// reverse start order (S61). Children are named by their spec ids, which must be unique
/// (S53).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Supervisor {
    server: ServerRef<StaticServer>,
}

impl Supervisor {
    fn boot(children: Vec<ChildSpec>, opts: SupervisorOpts, link: bool) -> Result<Supervisor, SupervisorStartError> {
        opts.limits.validate().map_err(SupervisorStartError::Options)?;
        validate_all(&children).map_err(SupervisorStartError::Spec)?;
        let failure = Arc::new(Mutex::new(None));
        let start = opts.limits.start.clone();
        let boot = Boot {
            specs: children,
            opts,
            failure: failure.clone(),
        };
        let started = if link {
            StaticServer::start_link(boot, start)
        } else {
            StaticServer::start(boot, start)
        };
        match started {
            Ok(server) => Ok(Supervisor { server }),
            Err(e) => match failure.lock().take() {
                Some((id, error)) => Err(SupervisorStartError::ChildFailed { id, error }),
                None => Err(SupervisorStartError::Start(e)),
            },
        }
    }

    /// Starts a supervisor linked to the calling process (if any) and its children, in list
    /// order; returns once all have started (S52). Bad options or specs are rejected before
    /// anything starts (S39, S53); if a child fails to start, the ones started before it are
    /// stopped in reverse order and the error names it (S53). From outside any process, name
    /// the runtime in the options.
    ///
    /// # Errors
    ///
    /// `Options(..)` or `Spec(..)` before anything starts; `ChildFailed { id, error }` if a child
    /// failed to start (those started before it have been stopped); `Start(..)` with core's
    /// [`StartError`](arbor_core::StartError) if the supervisor's own process could not start.
    pub fn start_link(children: Vec<ChildSpec>, opts: SupervisorOpts) -> Result<Supervisor, SupervisorStartError> {
        Supervisor::boot(children, opts, true)
    }

    /// Like [`Supervisor::start_link`], without a link.
    ///
    /// # Errors
    ///
    /// As [`Supervisor::start_link`].
    pub fn start(children: Vec<ChildSpec>, opts: SupervisorOpts) -> Result<Supervisor, SupervisorStartError> {
        Supervisor::boot(children, opts, false)
    }

    /// A spec that starts this supervisor, with these children, as the child `id` of another
    /// supervisor (type `Supervisor`, shutdown `Infinity`).
    pub fn child_spec(id: impl Into<String>, children: Vec<ChildSpec>, opts: SupervisorOpts) -> ChildSpec {
        ChildSpec::supervisor(id, move || {
            Supervisor::start_link(children.clone(), opts.clone())
                .map(|s| s.pid())
                .map_err(StartError::from)
        })
    }

    /// The handle of the static supervisor running as `pid`, if it is one.
    pub fn from_pid(pid: Pid) -> Option<Supervisor> {
        ServerRef::from_pid(pid).map(|server| Supervisor { server })
    }

    /// The supervisor registered under `name`, if any.
    pub fn whereis(name: &dyn Naming) -> Option<Supervisor> {
        name.whereis().and_then(Supervisor::from_pid)
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.server.pid()
    }

    /// True until it begins to exit.
    pub fn is_alive(&self) -> bool {
        self.server.is_alive()
    }

    fn call(&self, req: SupCall) -> Result<SupReply, CallError> {
        self.server.call_timeout(req, Duration::MAX)
    }

    /// Adds a child at the end of the start order and starts it (S56). `Ok(None)` if its
    /// `init` declined (`Ignore`): the spec is kept, stopped, unless temporary.
    /// `AlreadyStarted(pid)` / `AlreadyPresent` if the id is taken.
    ///
    /// # Errors
    ///
    /// `Spec(..)` for a bad spec (checked first); `AlreadyStarted(pid)` / `AlreadyPresent` for a
    /// taken id; `Start(e)` if the child failed to start; `ShuttingDown` while the supervisor
    /// stops; `Supervisor(e)` if it is not running.
    pub fn start_child(&self, spec: ChildSpec) -> Result<Option<Pid>, StartChildError> {
        spec.validate().map_err(StartChildError::Spec)?;
        match self.call(SupCall::Start(spec)) {
            Ok(SupReply::Start(r)) => r,
            Ok(_) => unreachable!("a start request gets a start reply"),
            Err(e) => Err(StartChildError::Supervisor(e)),
        }
    }

    /// Stops the child `id` with its shutdown procedure; returns once it has exited. The spec
    /// is kept, stopped (a temporary child's is dropped). `Ok` if it was already stopped;
    /// `NotFound` for an unknown id (S57).
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; `ShuttingDown` while the supervisor stops; `Supervisor(e)` if
    /// it is not running.
    pub fn terminate_child(&self, id: &str) -> Result<(), ChildError> {
        match self.call(SupCall::Terminate(id.to_string())) {
            Ok(SupReply::Child(r)) => r,
            Ok(_) => unreachable!("a terminate request gets a child reply"),
            Err(e) => Err(ChildError::Supervisor(e)),
        }
    }

    /// Starts the stopped child `id` again (S57): `Ok(Some(pid))`, `Ok(None)` if its `init`
    /// declined; `Running`, `Restarting`, `NotFound`, or the start's error otherwise.
    ///
    /// # Errors
    ///
    /// `Running`, `Restarting`, `NotFound`, `Start(e)` if the start failed, `ShuttingDown`, or
    /// `Supervisor(e)` if the supervisor is not running.
    pub fn restart_child(&self, id: &str) -> Result<Option<Pid>, ChildError> {
        match self.call(SupCall::Restart(id.to_string())) {
            Ok(SupReply::Restarted(r)) => r,
            Ok(_) => unreachable!("a restart request gets a restarted reply"),
            Err(e) => Err(ChildError::Supervisor(e)),
        }
    }

    /// Forgets the stopped child `id` (S57): `Running`, `Restarting` or `NotFound` otherwise.
    ///
    /// # Errors
    ///
    /// `Running`, `Restarting`, `NotFound`, `ShuttingDown`, or `Supervisor(e)` if the supervisor
    /// is not running.
    pub fn delete_child(&self, id: &str) -> Result<(), ChildError> {
        match self.call(SupCall::Delete(id.to_string())) {
            Ok(SupReply::Child(r)) => r,
            Ok(_) => unreachable!("a delete request gets a child reply"),
            Err(e) => Err(ChildError::Supervisor(e)),
        }
    }

    /// The children, most recently started first (reverse start order, S55).
    ///
    /// # Errors
    ///
    /// `Err(e)` if the supervisor is not running (`NoProc`) or exits before it answers
    /// (`Exited(reason)`); the call itself waits without a timeout.
    pub fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        match self.call(SupCall::Which)? {
            SupReply::Which(v) => Ok(v),
            _ => unreachable!("a which request gets a which reply"),
        }
    }

    /// The pid of the child `id`: `Ok(None)` if it has no process or no such child exists.
    ///
    /// # Errors
    ///
    /// As [`Supervisor::which_children`].
    pub fn child_pid(&self, id: &str) -> Result<Option<Pid>, CallError> {
        Ok(self
            .which_children()?
            .into_iter()
            .find(|c| c.id == id)
            .and_then(|c| c.status.pid()))
    }

    /// Counts of children (S57).
    ///
    /// # Errors
    ///
    /// `Err(e)` if the supervisor is not running (`NoProc`) or exits before it answers
    /// (`Exited(reason)`); the call itself waits without a timeout.
    pub fn count_children(&self) -> Result<ChildCounts, CallError> {
        match self.call(SupCall::Count)? {
            SupReply::Count(c) => Ok(c),
            _ => unreachable!("a count request gets a count reply"),
        }
    }

    /// Its children (in start order) with their specs, the exits it handled (who, why,
    /// when, what it did) and its restart intensity's use, taken between two of its messages
    /// (see [`SupervisorReport`]). Answered even while it restarts or stops children.
    ///
    /// # Errors
    ///
    /// `NoProc` if it is not running, `Exited(reason)` if it exits before it answers,
    /// `Timeout` past `timeout`.
    pub fn report(&self, timeout: Duration) -> Result<SupervisorReport, CallError> {
        match self.server.call_timeout(SupCall::Report, timeout)? {
            SupReply::Report(r) => Ok(*r),
            _ => unreachable!("a report request gets a report reply"),
        }
    }

    /// Stops the supervisor with reason `Normal`: its children are stopped one by one in
    /// reverse start order; returns once all have exited (S61).
    ///
    /// # Errors
    ///
    /// As [`Supervisor::stop_with`].
    pub fn stop(&self) -> Result<(), CallError> {
        self.stop_with(ExitReason::Normal, Duration::MAX)
    }

    /// Stops the supervisor with `reason`, waiting up to `timeout` (`Duration::MAX`: forever).
    ///
    /// # Errors
    ///
    /// As [`ServerRef::stop`](arbor_core::ServerRef::stop): `NoProc` if it is not running,
    /// `CallingSelf` from the supervisor itself, `Timeout` past `timeout`.
    pub fn stop_with(&self, reason: ExitReason, timeout: Duration) -> Result<(), CallError> {
        self.server.stop(reason, timeout)
    }

    /// Waits up to `timeout` for the supervisor to exit; its exit reason, or `None` on
    /// timeout.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitReason> {
        self.server.wait_exit(timeout)
    }

    /// The request's reply, as a future that needs no executor (sent now).
    fn call_async(&self, req: SupCall) -> CallFuture<SupReply> {
        self.server.call_timeout_async(req, Duration::MAX)
    }

    /// [`Supervisor::start_child`] from async code: the spec is checked and the request
    /// sent now; the future resolves once the child has started. Dropping it does not cancel
    /// the start.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::start_child`].
    pub fn start_child_async(
        &self,
        spec: ChildSpec,
    ) -> impl Future<Output = Result<Option<Pid>, StartChildError>> + Send + 'static {
        let sent = spec
            .validate()
            .map_err(StartChildError::Spec)
            .map(|()| self.call_async(SupCall::Start(spec)));
        async move {
            match sent?.await {
                Ok(SupReply::Start(r)) => r,
                Ok(_) => unreachable!("a start request gets a start reply"),
                Err(e) => Err(StartChildError::Supervisor(e)),
            }
        }
    }

    /// [`Supervisor::terminate_child`] from async code. Dropping the future does not cancel
    /// the termination.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::terminate_child`].
    pub fn terminate_child_async(&self, id: &str) -> impl Future<Output = Result<(), ChildError>> + Send + 'static {
        let sent = self.call_async(SupCall::Terminate(id.to_string()));
        async move {
            match sent.await {
                Ok(SupReply::Child(r)) => r,
                Ok(_) => unreachable!("a terminate request gets a child reply"),
                Err(e) => Err(ChildError::Supervisor(e)),
            }
        }
    }

    /// [`Supervisor::restart_child`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::restart_child`].
    pub fn restart_child_async(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Pid>, ChildError>> + Send + 'static {
        let sent = self.call_async(SupCall::Restart(id.to_string()));
        async move {
            match sent.await {
                Ok(SupReply::Restarted(r)) => r,
                Ok(_) => unreachable!("a restart request gets a restarted reply"),
                Err(e) => Err(ChildError::Supervisor(e)),
            }
        }
    }

    /// [`Supervisor::delete_child`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::delete_child`].
    pub fn delete_child_async(&self, id: &str) -> impl Future<Output = Result<(), ChildError>> + Send + 'static {
        let sent = self.call_async(SupCall::Delete(id.to_string()));
        async move {
            match sent.await {
                Ok(SupReply::Child(r)) => r,
                Ok(_) => unreachable!("a delete request gets a child reply"),
                Err(e) => Err(ChildError::Supervisor(e)),
            }
        }
    }

    /// [`Supervisor::which_children`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::which_children`].
    pub fn which_children_async(&self) -> impl Future<Output = Result<Vec<ChildInfo>, CallError>> + Send + 'static {
        let sent = self.call_async(SupCall::Which);
        async move {
            match sent.await? {
                SupReply::Which(v) => Ok(v),
                _ => unreachable!("a which request gets a which reply"),
            }
        }
    }

    /// [`Supervisor::child_pid`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::which_children`].
    pub fn child_pid_async(&self, id: &str) -> impl Future<Output = Result<Option<Pid>, CallError>> + Send + 'static {
        let which = self.which_children_async();
        let id = id.to_string();
        async move {
            Ok(which
                .await?
                .into_iter()
                .find(|c| c.id == id)
                .and_then(|c| c.status.pid()))
        }
    }

    /// [`Supervisor::count_children`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::count_children`].
    pub fn count_children_async(&self) -> impl Future<Output = Result<ChildCounts, CallError>> + Send + 'static {
        let sent = self.call_async(SupCall::Count);
        async move {
            match sent.await? {
                SupReply::Count(c) => Ok(c),
                _ => unreachable!("a count request gets a count reply"),
            }
        }
    }

    /// [`Supervisor::stop_with`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Supervisor::stop_with`].
    pub fn stop_async(&self, reason: ExitReason, timeout: Duration) -> CallFuture<()> {
        self.server.stop_async(reason, timeout)
    }

    /// [`Supervisor::wait_exit`] from async code.
    pub fn wait_exit_async(&self, timeout: Duration) -> ExitFuture {
        self.server.wait_exit_async(timeout)
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Supervisor({})", self.pid())
    }
}
