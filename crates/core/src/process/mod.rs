//! Processes: the layer that joins a GenServer to a mailbox and to the scheduler.
//!
//! - `header.rs`: the untyped part of a process (pid, links, monitors, exit hooks, the
//!   calls it holds, its life state) and exit-signal delivery.
//! - `cell.rs`: the typed process, its run loop, and starting one.
//! - `table.rs`: the runtime's process table (pid to process).
//! - `current.rs`: which process, if any, the current thread is running.
//!
//! Life of a process: *starting* (its creator runs `init`), *alive* (scheduled on demand),
//! *exiting* (`die` has run: mailbox closed, names released, calls failed, links and
//! monitors told; its state may still be held by a handler that has not returned),
//! *finalized* (state dropped by a worker, slot freed in the table).

mod cell;
mod current;
mod header;
mod table;

pub(crate) use cell::{start, Cell, Envelope, Local, NOT_HELD};
pub(crate) use current::current;
pub(crate) use header::{deliver_exit, Header, Process, SysMsg, Watcher};
pub use header::{HookRef, MonitorRef};
pub(crate) use table::Table;
