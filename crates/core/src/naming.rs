//! The seams other crates plug into: naming (for start options), exit observers, and the
//! options a start takes.

use crate::{ExitReason, Pid, RuntimeHandle};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A name a server can be started under: Elixir's `{:via, module, key}`. Core defines
/// the hook; `arbor-registry` implements it.
///
/// The name is claimed with `register` after the pid exists and *before* `init` runs, so
/// a second start under a taken name never runs its `init` (S7). It is released with
/// `unregister` when the process exits, before its links and monitors are told.
pub trait Naming: Send + Sync + 'static {
    /// Claims the name for `pid`: [`NameError::Taken`] with the holder if another live
    /// process holds it, [`NameError::Unavailable`] if the naming service cannot take
    /// names now (a registry that is not running).
    ///
    /// # Errors
    ///
    /// `Taken(holder)` or `Unavailable(why)`, as said above.
    fn register(&self, pid: Pid) -> Result<(), NameError>;
    /// Releases the name if `pid` holds it.
    fn unregister(&self, pid: Pid);
    /// The pid holding the name, if any.
    fn whereis(&self) -> Option<Pid>;
    /// The name, for logs and crash reports.
    fn describe(&self) -> String;
}

/// Why a name could not be claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is held by this live process: the start returns
    /// [`StartError::AlreadyStarted`](crate::StartError::AlreadyStarted).
    Taken(Pid),
    /// The naming service cannot register names now: the start returns
    /// [`StartError::NameUnavailable`](crate::StartError::NameUnavailable) with this text.
    Unavailable(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Taken(p) => write!(f, "name taken by {p}"),
            NameError::Unavailable(why) => write!(f, "name unavailable: {why}"),
        }
    }
}

impl std::error::Error for NameError {}

/// Told when a process exits: the seam behind which a remote monitor or link can stand,
/// and how code outside any process waits for an exit.
pub trait ExitObserver: Send + Sync + 'static {
    /// `pid` exited with `reason`. Runs on the thread that ended the process: keep it
    /// short and never block.
    fn on_exit(&self, pid: Pid, reason: &ExitReason);
}

impl<F> ExitObserver for F
where
    F: Fn(Pid, &ExitReason) + Send + Sync + 'static,
{
    fn on_exit(&self, pid: Pid, reason: &ExitReason) {
        self(pid, reason)
    }
}

/// Options for [`GenServer::start`](crate::GenServer::start) and
/// [`GenServer::start_link`](crate::GenServer::start_link).
#[derive(Clone, Default)]
pub struct StartOpts {
    pub(crate) name: Option<Arc<dyn Naming>>,
    pub(crate) runtime: Option<RuntimeHandle>,
    pub(crate) timeout: Option<Duration>,
}

impl StartOpts {
    /// No name, the caller's runtime, no start timeout.
    pub fn new() -> StartOpts {
        StartOpts::default()
    }

    /// Registers the server under `name` before `init` runs (S7).
    pub fn name(mut self, name: impl Naming) -> StartOpts {
        self.name = Some(Arc::new(name));
        self
    }

    /// Registers the server under a shared name.
    pub fn name_arc(mut self, name: Arc<dyn Naming>) -> StartOpts {
        self.name = Some(name);
        self
    }

    /// Starts on this runtime (needed from outside any process).
    pub fn runtime(mut self, runtime: &RuntimeHandle) -> StartOpts {
        self.runtime = Some(runtime.clone());
        self
    }

    /// Fails the start with [`StartError::Timeout`](crate::StartError::Timeout) if `init`
    /// takes longer (S6). `init` then runs on a worker rather than on the caller's thread.
    pub fn timeout(mut self, timeout: Duration) -> StartOpts {
        self.timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for StartOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartOpts")
            .field("name", &self.name.as_ref().map(|n| n.describe()))
            .field("timeout", &self.timeout)
            .finish()
    }
}
