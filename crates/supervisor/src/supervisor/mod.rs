//! `Supervisor`: a static list of children, started in order, stopped in reverse order,
//! restarted one_for_one, one_for_all or rest_for_one (S52–S62).
//!
//! Two parts: `handle.rs`, the public [`Supervisor`] handle (checks options and specs, turns
//! each method into one call), and `server.rs`, the process (state, restart strategies,
//! sequential asynchronous stops). Invariants of each are stated in its file; the one that
//! joins them: the handle reaches the process only through `SupCall` / `SupReply`, and the
//! process is the only owner of the children.

mod handle;
mod server;

pub use handle::Supervisor;
