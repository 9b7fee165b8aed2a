//! [`Registry`]: the cheap, cloneable handle to a registry's table and process.
//!
//! Invariants (the table's own are in `table.rs`):
//! - A `Registry` handle and every clone of it name one table for the handle's whole life. The
//!   table is open (usable) exactly while the registry's process runs; a handle outlives
//!   restarts of that process (each run reopens the same, empty table).
//! - Operations on keys never send a message: they lock one partition (two for a registration:
//!   the key's, then the pid's) and return.
//! - Operations "for the calling process" use `arbor_core::current_pid()`; outside any
//!   process they return a `NotAProcess` error rather than guess.

use crate::directory;
use crate::error::{NotAProcess, RegisterError, UpdateError};
use crate::opts::{default_partitions, RegistryOpts};
use crate::server::{ProcessName, RegistryServer};
use crate::table::Table;
use crate::via::Via;
use arbor_core::{
    CallError, CallFuture, ExitReason, GenServer, HandleCast, HandleRequest, Pid, Request, RuntimeHandle, SendError,
    ServerRef, StartError, StartOpts, DEFAULT_CALL_TIMEOUT,
};
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// A registry of unique keys: Elixir's `Registry` with `keys: :unique`.
///
/// Each key is held by at most one live process, with a value (`V`, `()` by default). The
/// table is shared memory split into partitions, so lookups and registrations never go through
/// a message and threads working on different keys rarely meet on a lock. The registry also
/// runs as a process (started with [`Registry::start`] or [`Registry::start_link`], or
/// supervised through [`Registry::child_start`]) that can be linked, monitored, supervised and
/// named; the table is usable exactly while that process runs, and emptied when it exits.
///
/// A process's keys are released when it exits, *before* its links and monitors are told, so a
/// process that has seen a `Down` or an exit signal finds the name free (beyond Elixir's S69).
///
/// `Registry` is a cheap `Clone` handle (one `Arc`).
///
/// ```
/// use arbor_core::Runtime;
/// use arbor_registry::{Registry, RegistryOpts};
///
/// let rt = Runtime::new().unwrap();
/// let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("doc-example")).unwrap();
/// assert_eq!(reg.lookup("nobody"), None);
/// assert_eq!(Registry::<String>::lookup_registry("doc-example"), Some(reg.clone()));
/// ```
pub struct Registry<K, V = ()> {
    table: Arc<Table<K, V>>,
}

impl<K, V> Registry<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A registry that is not running yet: its table is closed until [`Registry::run`],
    /// [`Registry::run_link`] or a [`Registry::child_start`] closure starts its process.
    pub fn new(opts: RegistryOpts<K, V>) -> Self {
        let partitions = opts.partitions.unwrap_or_else(default_partitions);
        Registry {
            table: Arc::new(Table::new(opts.name, partitions, opts.listeners)),
        }
    }

    /// Creates a registry and starts its process on `rt`, unlinked (Elixir's
    /// `Registry.start_link(keys: :unique, ...)` from outside a supervision tree).
    /// `Err(AlreadyStarted(pid))` if `opts` names a registry that is running (S63).
    ///
    /// # Errors
    ///
    /// `AlreadyStarted(pid)` if a running registry holds the name in `opts`; `ShuttingDown` if
    /// the runtime is stopping.
    pub fn start(rt: &RuntimeHandle, opts: RegistryOpts<K, V>) -> Result<Self, StartError> {
        let registry = Registry::new(opts);
        registry.run(rt)?;
        Ok(registry)
    }

    /// Creates a registry and starts its process linked to the calling process, on the caller's
    /// runtime (`StartError::NoRuntime` from outside any process). This is what a supervisor's
    /// start closure calls; see also [`Registry::child_start`].
    ///
    /// # Errors
    ///
    /// As [`Registry::start`], and `NoRuntime` outside any process.
    pub fn start_link(opts: RegistryOpts<K, V>) -> Result<Self, StartError> {
        let registry = Registry::new(opts);
        registry.run_link()?;
        Ok(registry)
    }

    /// Starts this registry's process on `rt`, unlinked, and opens its (empty) table.
    /// `Err(AlreadyStarted(pid))` if this registry's process is already running, or if another
    /// running registry holds this one's name.
    ///
    /// # Errors
    ///
    /// `AlreadyStarted(pid)`, as said above; `ShuttingDown` if the runtime is stopping.
    pub fn run(&self, rt: &RuntimeHandle) -> Result<Pid, StartError> {
        let name = ProcessName {
            table: Arc::clone(&self.table),
        };
        RegistryServer::start((), StartOpts::new().name(name).runtime(rt)).map(|s| s.pid())
    }

    /// Starts this registry's process linked to the calling process, on the caller's runtime,
    /// and opens its (empty) table. Errors as [`Registry::run`], and `NoRuntime` outside any
    /// process.
    ///
    /// # Errors
    ///
    /// As [`Registry::run`], and `NoRuntime` outside any process.
    pub fn run_link(&self) -> Result<Pid, StartError> {
        let name = ProcessName {
            table: Arc::clone(&self.table),
        };
        RegistryServer::start_link((), StartOpts::new().name(name)).map(|s| s.pid())
    }

    /// The start function a supervisor's child spec needs: each call starts this registry's
    /// process linked to the caller (the supervisor) with [`Registry::run_link`] and returns its
    /// pid. A restart reopens the same table, so this handle, its clones and via-names made
    /// from it keep working across restarts (the table starts empty each time).
    ///
    /// ```
    /// use arbor_registry::{Registry, RegistryOpts};
    ///
    /// let events: Registry<String> = Registry::new(RegistryOpts::named("EventGenServer"));
    /// let start = events.child_start();
    /// // Hand `start` to the supervisor: `ChildSpec::new("EventGenServer", start)`.
    /// # let _ = start;
    /// ```
    pub fn child_start(&self) -> impl Fn() -> Result<Pid, StartError> + Send + Sync + 'static {
        let registry = self.clone();
        move || registry.run_link()
    }

    /// The running registry named `name` with these key and value types, if any (Elixir finds
    /// registries by name; an unknown name there raises, S63). `None` if no registry by that
    /// name is running, or if it has other key or value types.
    pub fn lookup_registry(name: &str) -> Option<Self> {
        let (_pid, table) = directory::find(name)?;
        table.downcast::<Table<K, V>>().ok().map(|table| Registry { table })
    }

    /// Stops the registry's process with `reason` and waits up to `timeout` for it to exit; its
    /// table is then closed and empty. `NoProc` if it is not running.
    ///
    /// # Errors
    ///
    /// `NoProc` if the registry's process is not running; otherwise as
    /// [`ServerRef::stop`](arbor_core::ServerRef::stop).
    pub fn stop(&self, reason: ExitReason, timeout: Duration) -> Result<(), CallError> {
        let server = self
            .pid()
            .and_then(ServerRef::<RegistryServer>::from_pid)
            .ok_or(CallError::NoProc)?;
        server.stop(reason, timeout)
    }

    /// Claims `key` with `value` for the calling process (S64, S65).
    /// `Err(AlreadyRegistered(holder))` if a live process holds it, the caller included; a
    /// failed attempt changes nothing. A key whose holder has exited is free at once, even
    /// before its release has run (S69). `NotAProcess` outside any process, `RegistryDown` if
    /// the registry's process is not running.
    ///
    /// Unlike Elixir, the caller is not linked to the registry (see `docs/registry.md`).
    ///
    /// # Errors
    ///
    /// `AlreadyRegistered(holder)`, `NotAProcess` or `RegistryDown`, as said above.
    pub fn register(&self, key: K, value: V) -> Result<(), RegisterError> {
        let pid = arbor_core::current_pid().ok_or(RegisterError::NotAProcess)?;
        self.table.register(pid, key, value)
    }

    /// Claims `key` with `value` for `pid`, which need not be the caller (via-names use this
    /// from the starter's thread). `NotAlive` if `pid` is not alive or already exiting;
    /// otherwise as [`Registry::register`].
    ///
    /// # Errors
    ///
    /// `NotAlive`, `AlreadyRegistered(holder)` or `RegistryDown`.
    pub fn register_pid(&self, pid: Pid, key: K, value: V) -> Result<(), RegisterError> {
        self.table.register(pid, key, value)
    }

    /// Releases `key` if the calling process holds it. Always `Ok` from a process: with no
    /// entry, or with one that belongs to another process, which is left alone (S67).
    ///
    /// # Errors
    ///
    /// `NotAProcess` when called from outside any process.
    pub fn unregister<Q>(&self, key: &Q) -> Result<(), NotAProcess>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let pid = arbor_core::current_pid().ok_or(NotAProcess)?;
        self.table.unregister(pid, key);
        Ok(())
    }

    /// Releases `key` if `pid` holds it; leaves anyone else's entry alone.
    pub fn unregister_pid<Q>(&self, pid: Pid, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table.unregister(pid, key)
    }

    /// The process holding `key` and its value (S66). Once anyone has learnt of the holder's
    /// exit (a `Down`, an exit signal, `wait_exit`), this no longer returns it.
    pub fn lookup<Q>(&self, key: &Q) -> Option<(Pid, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table.lookup(key)
    }

    /// The process holding `key` (S23: `whereis` of a via-name), without its value.
    pub fn whereis<Q>(&self, key: &Q) -> Option<Pid>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table.whereis(key)
    }

    /// The keys `pid` holds, in no particular order (S66).
    pub fn keys(&self, pid: Pid) -> Vec<K> {
        self.table.keys(pid)
    }

    /// The value `pid` stored under `key`, if `pid` holds `key` (S66; with unique keys there is
    /// at most one).
    pub fn values<Q>(&self, key: &Q, pid: Pid) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table.value(key, pid)
    }

    /// Number of keys in each partition: how evenly keys spread, for tests and tuning.
    pub fn partition_counts(&self) -> Vec<usize> {
        self.table.partition_counts()
    }

    /// Up to `limit` of the registry's entries, `(key, pid, value)`, in no particular order
    /// (Elixir's `Registry.select/2` with a match-all spec, bounded). Each partition is read
    /// under its own lock, one after another, so under concurrent changes this is a moment's
    /// view of each partition, not of the whole table.
    pub fn entries(&self, limit: usize) -> Vec<(K, Pid, V)> {
        self.table.entries(limit)
    }

    /// Number of keys held (S66). Sums the partitions one at a time, so under concurrent
    /// changes it is a moment's estimate, exact once they settle.
    pub fn count(&self) -> usize {
        self.table.count()
    }

    /// Replaces the calling process's value under `key` with `f(&old)` and returns
    /// `(new, old)` (S68). Only the holder may: `NotOwner(holder)` for another's key,
    /// `NotRegistered` for a free one. `f` runs with no lock held, so it may use the registry.
    ///
    /// # Errors
    ///
    /// `NotRegistered` if no process holds `key`, `NotOwner(holder)` if another process does,
    /// `NotAProcess` outside any process.
    pub fn update_value<Q>(&self, key: &Q, f: impl FnOnce(&V) -> V) -> Result<(V, V), UpdateError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let pid = arbor_core::current_pid().ok_or(UpdateError::NotAProcess)?;
        let not_owned = |holder: Option<Pid>| match holder {
            Some(holder) => UpdateError::NotOwner(holder),
            None => UpdateError::NotRegistered,
        };
        let old = self.table.owned_value(key, pid).map_err(not_owned)?;
        let new = f(&old);
        // Only the holder (this process, on this thread) changes its value; the key can only
        // have gone meanwhile if `f` released it.
        match self.table.set_value(key, pid, new.clone()) {
            Ok(()) => Ok((new, old)),
            Err((_, holder)) => Err(not_owned(holder)),
        }
    }

    /// A name for `StartOpts::name` that registers the new server under `key` with
    /// `V::default()` (Elixir's `{:via, Registry, {reg, key}}`, S70). A start under a taken
    /// name returns `StartError::AlreadyStarted(holder)` without running `init` (S7).
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime, StartError, StartOpts};
    /// use arbor_registry::{Registry, RegistryOpts};
    ///
    /// struct Room;
    ///
    /// impl GenServer for Room {
    ///     type Args = ();
    ///     type Info = ();
    ///     type Call = ();
    ///     type Reply = &'static str;
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Room)
    ///     }
    ///
    ///     fn handle_call(&mut self, (): (), _: ReplyTo<&'static str>, _: &mut Context<'_, Self>) -> CallFlow<&'static str> {
    ///         CallFlow::Reply("welcome")
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let rooms: Registry<String> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    /// let opts = || StartOpts::new().runtime(rt.handle()).name(rooms.via("lobby".to_string()));
    /// let lobby = Room::start((), opts()).unwrap();
    /// assert_eq!(rooms.whereis("lobby"), Some(lobby.pid()));
    /// assert_eq!(rooms.call::<Room, _>("lobby", ()), Ok("welcome"));
    /// // The name is taken: a second start returns the holder, and its `init` never runs.
    /// assert_eq!(Room::start((), opts()).err(), Some(StartError::AlreadyStarted(lobby.pid())));
    /// // Released as the server exits, before anyone hears of the exit.
    /// lobby.stop(ExitReason::Normal, std::time::Duration::from_secs(5)).unwrap();
    /// assert_eq!(rooms.whereis("lobby"), None);
    /// ```
    pub fn via(&self, key: K) -> Via<K, V>
    where
        V: Default,
    {
        Via::new(Arc::clone(&self.table), key, V::default())
    }

    /// A name that registers the new server under `key` with `value` (Elixir's
    /// `{:via, Registry, {reg, key, value}}`, S70).
    pub fn via_with_value(&self, key: K, value: V) -> Via<K, V> {
        Via::new(Arc::clone(&self.table), key, value)
    }

    /// A typed handle to the server holding `key`: `None` if no process holds it or the holder
    /// is not a `G`.
    pub fn server<G: GenServer, Q>(&self, key: &Q) -> Option<ServerRef<G>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.whereis(key).and_then(ServerRef::from_pid)
    }

    /// Calls the server holding `key` (Elixir's `GenServer.call({:via, Registry, ...}, req)`)
    /// with the default 5 s timeout. `NoProc` if no process holds `key` (S71) or the holder is
    /// not a `G`.
    ///
    /// # Errors
    ///
    /// `NoProc` as said above; otherwise as [`ServerRef::call`](arbor_core::ServerRef::call).
    pub fn call<G: GenServer, Q>(&self, key: &Q, req: G::Call) -> Result<G::Reply, CallError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.call_timeout::<G, Q>(key, req, DEFAULT_CALL_TIMEOUT)
    }

    /// Calls the server holding `key`, waiting up to `timeout`; as [`Registry::call`].
    ///
    /// # Errors
    ///
    /// As [`Registry::call`].
    pub fn call_timeout<G: GenServer, Q>(&self, key: &Q, req: G::Call, timeout: Duration) -> Result<G::Reply, CallError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.server::<G, Q>(key)
            .ok_or(CallError::NoProc)?
            .call_timeout(req, timeout)
    }

    /// [`Registry::call`] from async code: a future of the reply (see
    /// [`ServerRef::call_async`](arbor_core::ServerRef::call_async)); `NoProc` at its first
    /// poll if no live `G` holds `key`.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Registry::call`].
    pub fn call_async<G: GenServer, Q>(&self, key: &Q, req: G::Call) -> CallFuture<G::Reply>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.call_timeout_async::<G, Q>(key, req, DEFAULT_CALL_TIMEOUT)
    }

    /// [`Registry::call_timeout`] from async code; as [`Registry::call_async`].
    ///
    /// # Errors
    ///
    /// The future's output: as [`Registry::call`].
    pub fn call_timeout_async<G: GenServer, Q>(&self, key: &Q, req: G::Call, timeout: Duration) -> CallFuture<G::Reply>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.server::<G, Q>(key) {
            Some(server) => server.call_timeout_async(req, timeout),
            None => CallFuture::failed(CallError::NoProc),
        }
    }

    /// Sends a typed request (see [`HandleRequest`]) to the server holding `key`, waiting
    /// up to 5 s; `NoProc` if no live `G` holds `key`.
    ///
    /// # Errors
    ///
    /// `NoProc` as said above; otherwise as [`ServerRef::request`](arbor_core::ServerRef::request).
    pub fn request<G: HandleRequest<R>, R: Request, Q>(&self, key: &Q, req: R) -> Result<R::Reply, CallError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.server::<G, Q>(key).ok_or(CallError::NoProc)?.request(req)
    }

    /// [`Registry::request`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`Registry::request`].
    pub fn request_async<G: HandleRequest<R>, R: Request, Q>(&self, key: &Q, req: R) -> CallFuture<R::Reply>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.server::<G, Q>(key) {
            Some(server) => server.request_async(req),
            None => CallFuture::failed(CallError::NoProc),
        }
    }

    /// Sends `msg` to the server holding `key`; hands the message back if no live `G` holds it
    /// (Elixir's `cast` would return `:ok` regardless, S71).
    ///
    /// # Errors
    ///
    /// `SendError(msg)`, handing the message back, if no live `G` holds `key`.
    pub fn send<G: GenServer, Q>(&self, key: &Q, msg: G::Info) -> Result<(), SendError<G::Info>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.server::<G, Q>(key) {
            Some(server) => server.send(msg),
            None => Err(SendError(msg)),
        }
    }

    /// Casts `msg` to the server holding `key` (Elixir's `GenServer.cast({:via, Registry,
    /// ...}, msg)`), to its [`HandleCast<M>`]; hands the message back if no live `G` holds
    /// `key`.
    ///
    /// # Errors
    ///
    /// `SendError(msg)` if no live `G` holds `key`.
    pub fn cast<G: HandleCast<M>, M: Send + 'static, Q>(&self, key: &Q, msg: M) -> Result<(), SendError<M>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.server::<G, Q>(key) {
            Some(server) => server.cast(msg),
            None => Err(SendError(msg)),
        }
    }
}

impl<K, V> Registry<K, V> {
    /// The registry's process, while it runs.
    pub fn pid(&self) -> Option<Pid> {
        self.table.process()
    }

    /// True while the registry's process runs (and its table is usable).
    pub fn is_running(&self) -> bool {
        self.table.is_open()
    }

    /// The registry's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.table.name().map(|n| &**n)
    }

    /// The number of partitions (shards) of the table.
    pub fn partitions(&self) -> usize {
        self.table.partitions()
    }
}

impl<K, V> Clone for Registry<K, V> {
    fn clone(&self) -> Self {
        Registry {
            table: Arc::clone(&self.table),
        }
    }
}

/// Two handles are equal when they name the same registry.
impl<K, V> PartialEq for Registry<K, V> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.table, &other.table)
    }
}

impl<K, V> Eq for Registry<K, V> {}

impl<K, V> fmt::Debug for Registry<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.table.name())
            .field("pid", &self.table.process())
            .field("partitions", &self.table.partitions())
            .finish()
    }
}
