//! arbor-observer: a live page of a running arbor system, as Erlang's `:observer` and
//! Phoenix's LiveDashboard show a BEAM node: the supervision trees (collapsible), a process
//! table sortable by mailbox length and messages handled, the restart history (who, why,
//! when), the handlers that look stuck, the registries' entries, and the runtime's counters,
//! refreshed every second. Opt-in: nothing runs, and nothing is gathered, unless an
//! [`Observer`] serves.
//!
//! ```no_run
//! use arbor_core::Runtime;
//! use arbor_observer::Observer;
//!
//! let rt = Runtime::new().unwrap();
//! // ... start the application's supervisors ...
//! let observer = Observer::builder(rt.handle()).serve("127.0.0.1:4000").unwrap();
//! println!("observer at {}", observer.url());
//! ```
//!
//! Two layers: `snapshot.rs` gathers plain structs from core's introspection and the
//! supervisors' reports ([`Snapshot`]); `server.rs` serves them as JSON and the page
//! (`page.html`, embedded) over a synchronous HTTP server, on threads of its own. The
//! endpoints, the page, the limits and the security model are in `docs/observer.md`.

mod error;
mod json;
mod progress;
mod render;
mod server;
mod snapshot;

pub use error::ObserverError;
pub use progress::StuckHandler;
pub use server::{Observer, ObserverBuilder, DEFAULT_STUCK_AFTER, MAX_BODY};
pub use snapshot::{Limits, RegistryView, RestartEntry, Snapshot, SupervisorSummary, TreeNode};
