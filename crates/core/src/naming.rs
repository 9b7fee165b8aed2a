//! The seams other crates plug into: naming (for start options), exit observers, and the
//! options a start takes.

use crate::{Pid, RuntimeHandle};
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

/// A plain name, unique within one runtime, with no registry: Elixir's `name: MyServer`.
///
/// Give it in the start options (`StartOpts::new().local_name("kv")`); find the server
/// with [`RuntimeHandle::whereis`] or [`RuntimeHandle::server`]. The name is claimed before
/// `init` runs (a second start under it gets `AlreadyStarted` and never runs its `init`)
/// and released when the process exits, before its links and monitors are told.
///
/// ```
/// use arbor_core::{Context, ExitReason, GenServer, Runtime, StartOpts, StartError};
/// struct Kv;
/// impl GenServer for Kv {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = ();
///     fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Kv)
///     }
/// }
/// let rt = Runtime::new().unwrap();
/// let kv = rt.start_with::<Kv>((), StartOpts::new().local_name("kv")).unwrap();
/// assert_eq!(rt.whereis("kv"), Some(kv.pid()));
/// assert!(matches!(
///     rt.start_with::<Kv>((), StartOpts::new().local_name("kv")),
///     Err(StartError::AlreadyStarted(p)) if p == kv.pid()
/// ));
/// kv.kill();
/// kv.wait_exit(std::time::Duration::from_secs(5));
/// assert_eq!(rt.whereis("kv"), None);
/// ```
#[derive(Clone, Debug)]
pub struct LocalName {
    name: Arc<str>,
    /// The runtime's name table, once the name is claimed there.
    table: Arc<std::sync::OnceLock<std::sync::Weak<crate::runtime::NameTable>>>,
}

impl LocalName {
    /// The name `name`.
    pub fn new(name: impl Into<Arc<str>>) -> LocalName {
        LocalName {
            name: name.into(),
            table: Arc::default(),
        }
    }
}

impl Naming for LocalName {
    fn register(&self, pid: Pid) -> Result<(), NameError> {
        let rt = RuntimeHandle::of(pid).ok_or_else(|| NameError::Unavailable("the runtime is gone".into()))?;
        let table = rt.shared().names.clone();
        table.claim(&self.name, pid)?;
        let _ = self.table.set(Arc::downgrade(&table));
        Ok(())
    }

    fn unregister(&self, pid: Pid) {
        if let Some(table) = self.table.get().and_then(|t| t.upgrade()) {
            table.release(&self.name, pid);
        }
    }

    /// The holder on the runtime this name was claimed on; for a name never claimed
    /// through this value (or its clones), the holder on the current runtime
    /// ([`RuntimeHandle::current`]).
    fn whereis(&self) -> Option<Pid> {
        match self.table.get() {
            Some(t) => t.upgrade().and_then(|t| t.whereis(&self.name)),
            None => RuntimeHandle::current().and_then(|rt| rt.whereis(&self.name)),
        }
    }

    fn describe(&self) -> String {
        self.name.to_string()
    }
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
            NameError::Taken(p) => write!(f, "name taken by {p}: use that process, or pick another name"),
            NameError::Unavailable(why) => write!(
                f,
                "name unavailable ({why}): start the naming service (the registry) first"
            ),
        }
    }
}

impl std::error::Error for NameError {}

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

    /// Registers the server under a plain name, unique within its runtime (Elixir's
    /// `name: MyServer`; see [`LocalName`]).
    pub fn local_name(self, name: impl Into<Arc<str>>) -> StartOpts {
        self.name(LocalName::new(name))
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

    /// The name set with [`StartOpts::name`], [`StartOpts::local_name`] or
    /// [`StartOpts::name_arc`], if any.
    pub fn get_name(&self) -> Option<&Arc<dyn Naming>> {
        self.name.as_ref()
    }

    /// The runtime set with [`StartOpts::runtime`], if any (otherwise the start goes to
    /// [`RuntimeHandle::current`]).
    pub fn get_runtime(&self) -> Option<&RuntimeHandle> {
        self.runtime.as_ref()
    }

    /// The start timeout set with [`StartOpts::timeout`], if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
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
