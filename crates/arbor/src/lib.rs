#![doc = include_str!("../../../README.md")]
//!
//! ## This crate
//!
//! `arbor` re-exports the three parts and gathers what most programs use in [`prelude`]:
//!
//! - [`core`] (`arbor-core`): processes, mailboxes, the scheduler, timers, links, monitors,
//!   exits and the [`GenServer`] trait (everything in it is also re-exported at this
//!   crate's root).
//! - [`supervisor`] (`arbor-supervisor`): `DynamicSupervisor` and the static `Supervisor`.
//! - [`registry`] (`arbor-registry`): unique names and via-names for start options.
//!
//! The guides of the repository's `docs/` folder are part of these docs, in [`docs`]; their
//! Rust examples are compiled and run as doctests.

mod error;

pub use error::Error;

pub use arbor_core as core;
pub use arbor_registry as registry;
pub use arbor_supervisor as supervisor;

pub use arbor_core::*;

/// What most programs need: `use arbor::prelude::*;`.
pub mod prelude {
    pub use arbor_core::{
        CallError, CallFlow, CallFuture, Context, Down, ExitReason, Flow, GenServer, HandleCast, HandleRequest,
        MonitorRef, Pid, ReplyTo, Request, Runtime, RuntimeHandle, SendError, ServerRef, StartError, StartOpts, Timer,
        TimerRef, TryHandleCast, TryHandleRequest,
    };
    pub use arbor_registry::{Registry, RegistryOpts};
}

/// The guides from the repository's `docs/` folder, included here so that they can be read
/// with the API beside them, and so that their Rust examples are compiled and run as
/// doctests (`cargo test -p arbor --doc`). Fragments that cannot run alone are marked
/// `ignore`, with the reason given beside them.
pub mod docs {
    #[doc = include_str!("../../../docs/tutorial.md")]
    pub mod tutorial {}

    #[doc = include_str!("../../../docs/guide.md")]
    pub mod guide {}

    #[doc = include_str!("../../../docs/behaviours.md")]
    pub mod behaviours {}

    #[doc = include_str!("../../../docs/semantics.md")]
    pub mod semantics {}

    #[doc = include_str!("../../../docs/supervisor.md")]
    pub mod supervisor {}

    #[doc = include_str!("../../../docs/registry.md")]
    pub mod registry {}

    #[doc = include_str!("../../../docs/architecture.md")]
    pub mod architecture {}

    #[doc = include_str!("../../../docs/scheduler.md")]
    pub mod scheduler {}

    #[doc = include_str!("../../../docs/performance.md")]
    pub mod performance {}

    #[doc = include_str!("../../../docs/unsafe.md")]
    pub mod unsafe_code {}

    #[doc = include_str!("../../../docs/testing.md")]
    pub mod testing {}
}
