//! arbor-core: lightweight processes with mailboxes, scheduled on a pool of worker threads
//! of our own (no async executor), with timers, links, monitors, exit signals and the
//! [`GenServer`] trait: Elixir/Erlang's process model, in Rust.
//!
//! ```
//! use arbor_core::{Context, ExitReason, GenServer, CallFlow, ReplyTo, Runtime};
//!
//! struct Counter(u64);
//!
//! impl GenServer for Counter {
//!     type Args = u64;
//!     type Info = u64;
//!     type Call = ();
//!     type Reply = u64;
//!
//!     fn init(start: u64, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
//!         Ok(Counter(start))
//!     }
//!
//!     fn handle_info(&mut self, n: u64, _ctx: &mut Context<'_, Self>) -> arbor_core::Flow {
//!         self.0 += n;
//!         arbor_core::Flow::Continue
//!     }
//!
//!     fn handle_call(&mut self, _: (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
//!         CallFlow::Reply(self.0)
//!     }
//! }
//!
//! let rt = Runtime::new().unwrap();
//! let counter = rt.start::<Counter>(40).unwrap();
//! counter.send(2).unwrap();
//! assert_eq!(counter.call(()), Ok(42));
//! ```
//!
//! Beside `handle_call`'s `Call`/`Reply` pair, a request can carry its own reply type
//! ([`Request`], [`HandleRequest`]: `server.request(Get)` is a `Result<u64, CallError>`),
//! and casts have a door of their own ([`HandleCast`], Elixir's `handle_cast`). Every
//! operation a caller waits on has a future form for async code ([`ServerRef::call_async`],
//! [`CallFuture`]): plain `std::future::Future`s that need no executor.
//!
//! To test code in virtual time with a replayable, seeded choice of interleaving, run it on
//! a deterministic runtime: [`sim::SimRuntime`] (`docs/testing.md`).
//!
//! The contract (ordering, calls, exits, links, monitors, and every departure from OTP)
//! is in `docs/semantics.md`; the machinery in `docs/architecture.md`.

#![warn(missing_docs, unreachable_pub)]

#[cfg(not(loom))]
mod clock;
mod error;
mod exit;
mod mailbox;
mod pid;
mod process;
mod reply;
mod scheduler;
mod sync;

#[cfg(not(loom))]
mod context;
#[cfg(not(loom))]
mod future;
#[cfg(not(loom))]
mod gen_server;
#[cfg(not(loom))]
mod info;
#[cfg(not(loom))]
mod naming;
#[cfg(not(loom))]
mod panic;
#[cfg(not(loom))]
mod request;
#[cfg(not(loom))]
mod runtime;
#[cfg(not(loom))]
mod server_ref;
#[cfg(not(loom))]
mod signal;
#[cfg(not(loom))]
pub mod sim;
#[cfg(not(loom))]
mod timer;

pub use error::{CallError, NoProc, SendError, StartError};
pub use exit::ExitReason;
pub use pid::Pid;

#[cfg(not(loom))]
pub use context::{Context, TimerRef};
#[cfg(not(loom))]
pub use future::{CallFuture, ExitFuture};
#[cfg(not(loom))]
pub use gen_server::{CallFlow, Down, Flow, GenServer};
#[cfg(not(loom))]
pub use info::ProcessInfo;
#[cfg(not(loom))]
pub use naming::{LocalName, NameError, Naming, StartOpts};
pub use process::{ExitObserver, HookRef, MonitorRef};
#[cfg(not(loom))]
pub use reply::ReplyTo;
#[cfg(not(loom))]
pub use request::{HandleCast, HandleRequest, Request, TryHandleCast, TryHandleRequest};
#[cfg(not(loom))]
pub use runtime::{
    Builder, CrashReports, EnterGuard, Runtime, RuntimeHandle, RuntimeStats, ShutdownReport, StuckHandler,
    StuckProcess, DEFAULT_MAX_BLOCKING_THREADS, DEFAULT_WATCHDOG_THRESHOLD,
};
#[cfg(not(loom))]
pub use scheduler::inline::InlineRunner;
#[cfg(not(loom))]
pub use server_ref::{ServerRef, DEFAULT_CALL_TIMEOUT};
#[cfg(not(loom))]
pub use timer::Timer;

/// The pid of the process running on this thread, if any (Elixir's `self()` outside a
/// callback's context).
#[cfg(not(loom))]
pub fn current_pid() -> Option<Pid> {
    process::current().map(|p| p.header().pid())
}

/// The current instant of the runtime of the process running on this thread
/// ([`RuntimeHandle::now`]: virtual on a deterministic runtime), or `Instant::now()`
/// outside any process. Code in a process that measures time should read this rather than
/// `Instant::now()`, so that it follows the virtual clock under
/// [`SimRuntime`](sim::SimRuntime); on a real runtime it is `Instant::now()`.
#[cfg(not(loom))]
pub fn now() -> std::time::Instant {
    match process::current() {
        Some(p) => p.header().rt().now(),
        None => std::time::Instant::now(),
    }
}

/// Sends an exit signal to `pid`, from the calling process or from outside (S36).
/// Does nothing if `pid` is not alive.
#[cfg(not(loom))]
pub fn exit(pid: Pid, reason: ExitReason) {
    if let Some(rt) = RuntimeHandle::of(pid) {
        rt.exit(pid, reason)
    }
}

/// Kills `pid`: untrappable, reason `Killed`, `terminate` does not run.
#[cfg(not(loom))]
pub fn kill(pid: Pid) {
    if let Some(rt) = RuntimeHandle::of(pid) {
        rt.kill(pid)
    }
}

/// Runs `f`, which may block (file or network I/O, a sleep, a lock held by code outside
/// arbor, a blocking client library), from inside a handler without starving the other
/// processes: the worker's next task goes to the other workers, and while `f` runs a
/// thread may be started to stand in for this worker (up to
/// [`Builder::max_blocking_threads`]), as for a call made from a handler. Outside a
/// worker thread it just runs `f`.
///
/// ```
/// # use arbor_core::blocking;
/// let contents = blocking(|| std::fs::read_to_string("/definitely/not/here"));
/// assert!(contents.is_err());
/// ```
#[cfg(not(loom))]
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    scheduler::block_in_place(f)
}

/// True while `pid` is alive.
#[cfg(not(loom))]
pub fn is_alive(pid: Pid) -> bool {
    RuntimeHandle::of(pid).is_some_and(|rt| rt.is_alive(pid))
}

/// Internals exposed to the loom models in `tests/loom_*.rs` only.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_api {
    pub use crate::mailbox::{Mailbox, Pop};
    pub use crate::process::bonds::{Bonds, Counts, HeldCalls, Peers, Watcher};

    /// The link and monitor protocols, as `signal.rs` calls them.
    pub mod bonds {
        pub use crate::process::bonds::{
            demonitor, link, link_new_child, link_pair, monitor, remove_monitor, signal_as_linked, unlink,
        };
    }
    pub use crate::reply::{Abort, ReplyHandle, Slot};
    pub use crate::scheduler::loom_face as pool;
    pub use crate::scheduler::{LifoSlot, Sleep};

    /// A pid for a model's process number `index` (a model's own table maps it back).
    pub fn pid(index: u32) -> crate::Pid {
        crate::Pid::new(1, index, u64::from(index) + 1)
    }

    /// The number a model gave the process `pid` (see [`pid`]).
    pub fn index(pid: crate::Pid) -> u32 {
        pid.index()
    }
}
