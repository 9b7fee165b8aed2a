//! Processes: the layer that joins a GenServer to a mailbox and to the scheduler.
//!
//! - `header.rs`: the untyped part of a process (pid, name, runtime, statistics) and
//!   exit-signal delivery.
//! - `bonds.rs`: what the header holds of the process's links, monitors, exit hooks, held
//!   calls and life state, and the link, monitor and exit-announcement protocols, generic
//!   over where the other processes live (the only part built under loom).
//! - `cell.rs`: the typed process, its run loop, and starting one.
//! - `table.rs`: the runtime's process table (pid to process).
//! - `current.rs`: which process, if any, the current thread is running.
//!
//! Life of a process: *starting* (its creator runs `init`), *alive* (scheduled on demand),
//! *exiting* (`die` has run: mailbox closed, names released, calls failed, links and
//! monitors told; its state may still be held by a handler that has not returned),
//! *finalized* (state dropped by a worker, slot freed in the table).

pub(crate) mod bonds;
#[cfg(not(loom))]
mod cell;
#[cfg(not(loom))]
mod current;
#[cfg(not(loom))]
mod header;
#[cfg(not(loom))]
mod table;

pub use bonds::{ExitObserver, HookRef, MonitorRef};
#[cfg(not(loom))]
pub(crate) use cell::{start, Cell, Envelope, Local, NOT_HELD};
#[cfg(not(loom))]
pub(crate) use current::current;
#[cfg(not(loom))]
pub(crate) use header::{deliver_exit, Header, Process, SysMsg};
#[cfg(not(loom))]
pub(crate) use table::Table;
