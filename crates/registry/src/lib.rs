//! arbor-registry: Elixir's `Registry` with unique keys, on arbor-core's public API only.
//!
//! A [`Registry`] maps keys to the processes that hold them, with a value each. The table is
//! shared memory, split into partitions (each a lock over a `HashMap`, chosen by hash), so
//! lookups and registrations never go through a message and threads on different keys rarely
//! meet. The registry also runs as a small process, so it has a pid that can be linked,
//! monitored, supervised and named; its table is usable while that process runs and emptied
//! when it exits.
//!
//! ```
//! use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime, StartError, StartOpts};
//! use arbor_registry::{Registry, RegistryOpts};
//!
//! struct Echo;
//! impl GenServer for Echo {
//!     type Args = ();
//!     type Info = ();
//!     type Call = u32;
//!     type Reply = u32;
//!     fn init(_: (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
//!         Ok(Echo)
//!     }
//!     fn handle_call(&mut self, n: u32, _: ReplyTo<u32>, _: &mut Context<'_, Self>) -> CallFlow<u32> {
//!         CallFlow::Reply(n)
//!     }
//! }
//!
//! let rt = Runtime::new().unwrap();
//! let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
//! let opts = || StartOpts::new().runtime(rt.handle()).name(reg.via("echo".to_string()));
//! let echo = Echo::start((), opts()).unwrap();
//! assert_eq!(reg.whereis("echo"), Some(echo.pid()));
//! assert_eq!(reg.call::<Echo, _>("echo", 7), Ok(7));
//! // A second start under the taken name never runs its init (S7, S70).
//! assert_eq!(Echo::start((), opts()).err(), Some(StartError::AlreadyStarted(echo.pid())));
//! ```
//!
//! The guarantees, the partitioning, the release-before-notify ordering and every departure
//! from Elixir's `Registry` are in `docs/registry.md`.
//!
//! Invariants, crate-wide: a registry operation never panics and never blocks on a message;
//! no user code (listeners, values' `Drop`, `update_value`'s function) runs under a registry
//! lock; a process's keys are released before its links and monitors learn of its exit.

mod directory;
mod error;
mod event;
mod opts;
mod registry;
mod server;
mod table;
mod via;

pub use error::{NotAProcess, RegisterError, UpdateError};
pub use event::RegistryEvent;
pub use opts::RegistryOpts;
pub use registry::Registry;
pub use via::Via;
