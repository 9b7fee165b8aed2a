//! `ChildRef<T>`: a handle to a named process that keeps working across its restarts,
//! because it holds the name, not the pid, and looks the name up at each use.
//!
//! A supervised child gets a new pid at each restart; a pid (or a `ServerRef`,
//! `DynamicSupervisor`, `Supervisor` handle, which hold one) names the old process for
//! ever. Elixir code reaches such a child by its name (`name: Chat.RoomSupervisor`, or a
//! via-name); `ChildRef` is that, typed.

use crate::{DynamicSupervisor, Supervisor};
use arbor_core::{GenServer, LocalName, Naming, NoProc, Pid, ServerRef};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A handle type that can be made from the pid of a live process of the right kind (a
/// checked downcast): what [`ChildRef::get`] returns.
pub trait FromPid: Sized {
    /// The handle for `pid`, if it is alive and of this kind.
    fn from_pid(pid: Pid) -> Option<Self>;
}

impl<G: GenServer> FromPid for ServerRef<G> {
    fn from_pid(pid: Pid) -> Option<Self> {
        ServerRef::from_pid(pid)
    }
}

impl FromPid for DynamicSupervisor {
    fn from_pid(pid: Pid) -> Option<Self> {
        DynamicSupervisor::from_pid(pid)
    }
}

impl FromPid for Supervisor {
    fn from_pid(pid: Pid) -> Option<Self> {
        Supervisor::from_pid(pid)
    }
}

/// A handle to the process registered under a name, looked up at each use: it follows a
/// supervised child across its restarts (each restart registers the name again).
///
/// `T` is the handle it gives: `ServerRef<G>`, [`DynamicSupervisor`], [`Supervisor`].
/// Between a crash and the restart the name is free, and [`ChildRef::get`] says `NoProc`,
/// as a call by name does in Elixir.
///
/// ```
/// use arbor_core::{LocalName, Runtime};
/// use arbor_supervisor::{ChildRef, ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
/// use std::time::Duration;
///
/// let rt = Runtime::new().unwrap();
/// let name = LocalName::new("Rooms");
/// let rooms: ChildRef<DynamicSupervisor> = ChildRef::new(name.clone());
/// let app = Supervisor::start(
///     vec![DynamicSupervisor::child_spec("Rooms", DynamicOpts::new().name(name))],
///     SupervisorOpts::new(Strategy::OneForOne),
/// )
/// .unwrap();
/// let first = rooms.get().unwrap().pid();
/// arbor_core::kill(first); // the root restarts it, under the same name
/// while rooms.pid().map_or(true, |p| p == first) {
///     std::thread::yield_now();
/// }
/// assert_ne!(rooms.get().unwrap().pid(), first);
/// # drop(app);
/// ```
pub struct ChildRef<T> {
    name: Arc<dyn Naming>,
    _handle: PhantomData<fn() -> T>,
}

impl<T: FromPid> ChildRef<T> {
    /// The process registered under `name`: a [`LocalName`] (give a clone of it, or the
    /// same text, in the child's start options), or a registry's via-name.
    pub fn new(name: impl Naming) -> ChildRef<T> {
        ChildRef {
            name: Arc::new(name),
            _handle: PhantomData,
        }
    }

    /// The process with this runtime-local name ([`LocalName`]), on the runtime it was
    /// registered on.
    pub fn local(name: &str) -> ChildRef<T> {
        ChildRef::new(LocalName::new(name))
    }

    /// The handle of the process holding the name now.
    ///
    /// # Errors
    ///
    /// `NoProc` if no live process of type `T` holds the name (never started, or between
    /// a crash and its restart).
    pub fn get(&self) -> Result<T, NoProc> {
        self.name.whereis().and_then(T::from_pid).ok_or(NoProc)
    }

    /// The pid holding the name now, if any.
    pub fn pid(&self) -> Option<Pid> {
        self.name.whereis()
    }

    /// The name, as logs show it.
    pub fn name(&self) -> String {
        self.name.describe()
    }
}

impl<T> Clone for ChildRef<T> {
    fn clone(&self) -> Self {
        ChildRef {
            name: Arc::clone(&self.name),
            _handle: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ChildRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildRef")
            .field("name", &self.name.describe())
            .field("pid", &self.name.whereis())
            .finish()
    }
}
