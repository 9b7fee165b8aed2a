//! Child specifications: what a supervisor knows about a child before it starts it.
//!
//! Invariants:
//! - A [`ChildSpec`] is immutable once handed to a supervisor; restarts call the same
//!   `start` closure again (S45), so a child's start is repeatable by construction.
//! - The shutdown default depends on the child's type and is resolved when read
//!   ([`ChildSpec::get_shutdown`]), so setting the type after the shutdown (or not at all)
//!   gives Elixir's defaults: 5 s for a worker, `Infinity` for a supervisor (S62).
//! - [`ChildSpec::validate`] is the single place a spec is judged: every supervisor calls it
//!   before it contacts a process or starts anything (S42, S53).

use crate::error::SpecError;
use arbor_core::{ExitReason, GenServer, Naming, Pid, StartError, StartOpts};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The default shutdown timeout of a worker: 5 seconds, as in Elixir (S62).
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

/// The closure a supervisor calls to start (and restart) a child.
pub(crate) type StartFn = Arc<dyn Fn() -> Result<Pid, StartError> + Send + Sync + 'static>;

/// When a child that has exited is restarted (S44).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted, whatever the exit reason (the default).
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit: not after `Normal`, `Shutdown` or
    /// `ShutdownWith` (S22).
    Transient,
    /// Never restarted; its spec is forgotten once it exits.
    Temporary,
}

impl Restart {
    /// True if a child of this restart type that exited with `reason` is to be restarted
    /// (the matrix of S44).
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_clean(),
            Restart::Temporary => false,
        }
    }
}

/// How a supervisor stops a child (S49, S61).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Kill the child at once: no `terminate`, reason `Killed`.
    BrutalKill,
    /// Send the child an exit signal `Shutdown` and wait this long for it to exit, then
    /// kill it. Must not be zero (OTP rejects `shutdown: 0` as well).
    Timeout(Duration),
    /// Send the child an exit signal `Shutdown` and wait as long as it takes (the default
    /// for supervisors, whose children need the time to stop).
    Infinity,
}

/// What kind of process a child is (S62). Only informs defaults, counts and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChildType {
    /// An ordinary process (the default).
    #[default]
    Worker,
    /// A supervisor: its shutdown defaults to `Infinity`, and trees are rendered through it.
    Supervisor,
}

/// Everything a supervisor needs to start, restart and stop one child: Elixir's child spec
/// map `%{id: .., start: .., restart: .., shutdown: .., type: ..}`.
///
/// ```
/// use arbor_supervisor::{ChildSpec, Restart, Shutdown};
/// use std::time::Duration;
/// # use arbor_core::{Pid, StartError};
/// # fn start_price_checker(_: u32) -> Result<Pid, StartError> { Err(StartError::NoRuntime) }
///
/// let spec = ChildSpec::new("PriceChecker", || start_price_checker(2))
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_millis(500)));
/// assert_eq!(spec.id(), "PriceChecker");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    id: String,
    start: StartFn,
    restart: Restart,
    shutdown: Option<Shutdown>,
    kind: ChildType,
}

impl ChildSpec {
    /// A worker spec: `start` must start the child *linked to the calling process* (the
    /// supervisor calls it from inside its own process, so `G::start_link(.., StartOpts::new())`
    /// does exactly that) and return its pid. Permanent, 5 s shutdown.
    pub fn new(
        id: impl Into<String>,
        start: impl Fn() -> Result<Pid, StartError> + Send + Sync + 'static,
    ) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            start: Arc::new(start),
            restart: Restart::Permanent,
            shutdown: None,
            kind: ChildType::Worker,
        }
    }

    /// A worker spec for the GenServer `G`, started with `G::start_link(args.clone(),
    /// StartOpts::new())`: the spec `use GenServer` generates (S24).
    pub fn server<G>(id: impl Into<String>, args: G::Args) -> ChildSpec
    where
        G: GenServer,
        G::Args: Clone + Sync,
    {
        ChildSpec::new(id, move || {
            G::start_link(args.clone(), StartOpts::new()).map(|s| s.pid())
        })
    }

    /// A worker spec for the GenServer `G` registered under `name` (a [`LocalName`]
    /// or a registry's via-name), started with `G::start_link(args.clone(),
    /// StartOpts::new().name(name))`: Elixir's `{Mod, arg}` child whose `start_link`
    /// passes `name:`. Its id is the name's text. A restart registers the same name, so
    /// callers that go through the name ([`ChildRef`](crate::ChildRef), the registry's
    /// `call`/`send`) follow it. A start under a name that is taken fails with
    /// `AlreadyStarted(pid)`; for "start it unless it runs", see
    /// [`StartChildError::already_started`](crate::StartChildError::already_started).
    ///
    /// [`LocalName`]: arbor_core::LocalName
    pub fn named<G>(name: impl Naming, args: G::Args) -> ChildSpec
    where
        G: GenServer,
        G::Args: Clone + Sync,
    {
        let name: Arc<dyn Naming> = Arc::new(name);
        ChildSpec::new(name.describe(), move || {
            G::start_link(args.clone(), StartOpts::new().name_arc(Arc::clone(&name))).map(|s| s.pid())
        })
    }

    /// A supervisor spec: type `Supervisor`, shutdown `Infinity`. `start` starts the child
    /// supervisor linked to the caller, e.g. `Supervisor::start_link(..)`; see also
    /// [`Supervisor::child_spec`](crate::Supervisor::child_spec) and
    /// [`DynamicSupervisor::child_spec`](crate::DynamicSupervisor::child_spec).
    pub fn supervisor(
        id: impl Into<String>,
        start: impl Fn() -> Result<Pid, StartError> + Send + Sync + 'static,
    ) -> ChildSpec {
        ChildSpec::new(id, start).child_type(ChildType::Supervisor)
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets the shutdown.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = Some(shutdown);
        self
    }

    /// Sets the child's type (Elixir's `:type`).
    pub fn child_type(mut self, kind: ChildType) -> ChildSpec {
        self.kind = kind;
        self
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The restart type (set with [`ChildSpec::restart`]).
    pub fn get_restart(&self) -> Restart {
        self.restart
    }

    /// The shutdown (set with [`ChildSpec::shutdown`]), with the default for the type if
    /// none was set (S62).
    pub fn get_shutdown(&self) -> Shutdown {
        self.shutdown.unwrap_or(match self.kind {
            ChildType::Worker => Shutdown::Timeout(DEFAULT_WORKER_SHUTDOWN),
            ChildType::Supervisor => Shutdown::Infinity,
        })
    }

    /// The child's type (set with [`ChildSpec::child_type`]).
    pub fn get_child_type(&self) -> ChildType {
        self.kind
    }

    /// The restart type.
    #[deprecated(since = "0.1.0", note = "renamed `get_restart`, after its setter `restart`")]
    pub fn restart_type(&self) -> Restart {
        self.get_restart()
    }

    /// The shutdown, with the default for the type.
    #[deprecated(since = "0.1.0", note = "renamed `get_shutdown`, after its setter `shutdown`")]
    pub fn shutdown_policy(&self) -> Shutdown {
        self.get_shutdown()
    }

    /// The child's type.
    #[deprecated(since = "0.1.0", note = "renamed `get_child_type`, after its setter `child_type`")]
    pub fn kind(&self) -> ChildType {
        self.get_child_type()
    }

    /// Checks the spec on its own (S42): a non-empty id, a non-zero shutdown timeout.
    ///
    /// # Errors
    ///
    /// `EmptyId` or `InvalidShutdown(id)`.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.id.is_empty() {
            return Err(SpecError::EmptyId);
        }
        if self.get_shutdown() == Shutdown::Timeout(Duration::ZERO) {
            return Err(SpecError::InvalidShutdown(self.id.clone()));
        }
        Ok(())
    }

    /// Runs the start closure; a panic in it becomes `StartError::Failed(Panic)` instead of
    /// taking the supervisor down (S40: "start fn raises" is an error result).
    pub(crate) fn start_child(&self) -> Result<Pid, StartError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.start)())) {
            Ok(result) => result,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "start function panicked".to_string());
                Err(StartError::Failed(ExitReason::panic(msg)))
            }
        }
    }
}

/// Checks a static supervisor's list (S53): each spec valid, ids unique.
pub(crate) fn validate_all(specs: &[ChildSpec]) -> Result<(), SpecError> {
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        spec.validate()?;
        if !seen.insert(spec.id()) {
            return Err(SpecError::DuplicateId(spec.id.clone()));
        }
    }
    Ok(())
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.get_shutdown())
            .field("type", &self.kind)
            .finish_non_exhaustive()
    }
}
