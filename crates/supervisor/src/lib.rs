//! arbor-supervisor: Elixir's `DynamicSupervisor` and `Supervisor`, on arbor-core's public
//! API only.
//!
//! A supervisor is a [`GenServer`](arbor_core::GenServer) that traps exits, starts its
//! children linked to itself from [`ChildSpec`]s, restarts them as their [`Restart`] type
//! says, gives up past a restart intensity ([`RestartIntensity`]), and stops them in order
//! when it stops. Supervisors nest: a supervisor is a child like any other
//! ([`Supervisor::child_spec`], [`DynamicSupervisor::child_spec`]), and
//! [`render_tree`] prints a whole tree.
//!
//! ```
//! use arbor_core::{Context, ExitReason, GenServer, Runtime};
//! use arbor_supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
//!
//! struct Worker;
//! impl GenServer for Worker {
//!     type Args = u32;
//!     type Info = ();
//!     type Call = ();
//!     type Reply = ();
//!     fn init(_: u32, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
//!         Ok(Worker)
//!     }
//! }
//!
//! let rt = Runtime::new().unwrap();
//! let app = Supervisor::start_link(
//!     vec![
//!         ChildSpec::server::<Worker>("worker", 1),
//!         DynamicSupervisor::child_spec("jobs", DynamicOpts::new()),
//!     ],
//!     SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
//! )
//! .unwrap();
//! let jobs = app.child_pid("jobs").unwrap().and_then(DynamicSupervisor::from_pid).unwrap();
//! jobs.start_child(ChildSpec::server::<Worker>("job", 7)).unwrap();
//! println!("{}", arbor_supervisor::render_tree(app.pid()));
//! app.stop().unwrap();
//! ```
//!
//! Invariants, crate-wide:
//! - A supervisor never blocks its worker thread waiting for a child to stop: it signals the
//!   child, arms a kill timer, and handles the exit when it arrives (`stop.rs`). The one
//!   exception is a static supervisor's boot failure, which happens inside `init` (before the
//!   supervisor has a mailbox loop) and waits with `RuntimeHandle::wait_exit`, which core
//!   compensates.
//! - Every stored child is linked to its supervisor; children are started by calling their
//!   spec's closure from inside the supervisor's process.
//! - Specs and options are checked before any process is started or contacted.
//!
//! How both supervisors work, the asynchronous shutdown, the intensity window and every
//! departure from OTP: `docs/supervisor.md`.

mod child_ref;
mod dynamic;
mod error;
mod info;
mod intensity;
mod opts;
mod report;
mod spec;
mod stop;
mod supervisor;
mod tree;

pub use child_ref::{ChildRef, FromPid};
pub use dynamic::DynamicSupervisor;
pub use error::{ChildError, OptionsError, SpecError, StartChildError, SupervisorStartError};
pub use info::{ChildCounts, ChildInfo, ChildStatus};
pub use intensity::{Clock, ManualClock, RestartIntensity, SystemClock};
pub use opts::{DynamicOpts, Strategy, SupervisorOpts, DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS};
pub use report::{
    supervisor_report, ChildExit, ChildReport, ExitAction, IntensityUse, SupervisorReport, RESTART_HISTORY_LEN,
};
pub use spec::{ChildSpec, ChildType, Restart, Shutdown, DEFAULT_WORKER_SHUTDOWN};
pub use supervisor::Supervisor;
pub use tree::{render_tree, supervision_tree, SupervisorKind, TreeNode};
