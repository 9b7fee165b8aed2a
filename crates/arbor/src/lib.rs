//! arbor: Elixir/Erlang's GenServer, DynamicSupervisor and Registry, in Rust, on a runtime
//! of its own.
//!
//! This crate re-exports the three parts and gathers what most programs use in
//! [`prelude`]:
//!
//! - [`core`] (`arbor-core`): processes, mailboxes, the scheduler, timers, links, monitors,
//!   exits and the [`GenServer`] trait.
//! - [`supervisor`] (`arbor-supervisor`): `DynamicSupervisor` and the static `Supervisor`.
//! - [`registry`] (`arbor-registry`): unique names and via-names for start options.

pub use arbor_core as core;
pub use arbor_registry as registry;
pub use arbor_supervisor as supervisor;

pub use arbor_core::*;

/// What most programs need: `use arbor::prelude::*;`.
pub mod prelude {
    pub use arbor_core::{
        CallError, CallFlow, Context, Down, ExitReason, Flow, GenServer, MonitorRef, Pid, ReplyTo, Runtime,
        RuntimeHandle, SendError, ServerRef, StartError, StartOpts, TimerRef,
    };
    pub use arbor_registry::{Registry, RegistryOpts};
}
