//! The scheduler: runs type-erased [`Runnable`]s on a pool of worker threads. It knows
//! nothing of processes, mailboxes or GenServers.
//!
//! - `pool.rs`: the pool, its global run queue, the per-worker LIFO slot, and the
//!   compensation that keeps the pool busy while a worker blocks.
//! - `sleep.rs`: how idle workers park and how work wakes them, without lost wake-ups.
//!
//! The sleep/wake protocol and the blocking compensation are explained, race by race, in
//! `docs/scheduler.md`.

mod lifo;
mod pool;
mod sleep;

#[cfg(loom)]
pub use lifo::LifoSlot;
#[cfg(loom)]
pub use pool::loom_face;
#[cfg(not(loom))]
pub(crate) use pool::{block_in_place, note_escape, Pool, PoolConfig, Runnable, Stall, Task};
#[cfg(loom)]
pub use sleep::Sleep;
