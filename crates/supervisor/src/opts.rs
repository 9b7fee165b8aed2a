//! Supervisor options: Elixir's `start_link` options and `init` flags (S38, S52, S62).
//!
//! Invariants: options are plain data, `Clone` (a child spec restarts a supervisor from a
//! copy) and checked by [`Limits::validate`] before any process starts (S39).

use crate::error::OptionsError;
use crate::intensity::{Clock, RestartIntensity, SystemClock};
use arbor_core::{Naming, RuntimeHandle, StartOpts};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The default intensity: 3 restarts...
pub const DEFAULT_MAX_RESTARTS: usize = 3;
/// ...within 5 seconds (S38, S52).
pub const DEFAULT_MAX_SECONDS: Duration = Duration::from_secs(5);

/// How a static supervisor restarts children when one exits (S59).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the exited child is restarted.
    OneForOne,
    /// Every other child is stopped (reverse start order), then all are started again in
    /// start order.
    OneForAll,
    /// The children started after the exited one are stopped (reverse order), then it and
    /// they are started again in start order.
    RestForOne,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
        })
    }
}

/// What both supervisors share: intensity, clock, start options.
#[derive(Clone)]
pub(crate) struct Limits {
    pub(crate) max_restarts: usize,
    pub(crate) max_seconds: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) start: StartOpts,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_restarts: DEFAULT_MAX_RESTARTS,
            max_seconds: DEFAULT_MAX_SECONDS,
            clock: Arc::new(SystemClock),
            start: StartOpts::new(),
        }
    }
}

impl Limits {
    pub(crate) fn validate(&self) -> Result<(), OptionsError> {
        if self.max_seconds.is_zero() {
            return Err(OptionsError::ZeroMaxSeconds);
        }
        Ok(())
    }

    pub(crate) fn intensity(&self) -> RestartIntensity {
        RestartIntensity::new(self.max_restarts, self.max_seconds)
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("max_restarts", &self.max_restarts)
            .field("max_seconds", &self.max_seconds)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

macro_rules! limit_setters {
    () => {
        /// At most this many restarts within `max_seconds` (default 3); past it the
        /// supervisor stops its children and exits with `Shutdown` (S46, S60). Zero makes
        /// the first restart fatal.
        pub fn max_restarts(mut self, n: usize) -> Self {
            self.limits.max_restarts = n;
            self
        }

        /// The intensity window in whole seconds (default 5). Zero is rejected at start.
        pub fn max_seconds(mut self, secs: u64) -> Self {
            self.limits.max_seconds = Duration::from_secs(secs);
            self
        }

        /// The intensity window as a `Duration`, for windows shorter than a second (beyond
        /// OTP, which counts whole seconds). Zero is rejected at start.
        pub fn max_period(mut self, window: Duration) -> Self {
            self.limits.max_seconds = window;
            self
        }

        /// The clock the intensity window reads (default: the system's monotonic clock).
        pub fn clock(mut self, clock: impl Clock) -> Self {
            self.limits.clock = Arc::new(clock);
            self
        }

        /// Registers the supervisor under `name` (Elixir's `name:` option).
        pub fn name(mut self, name: impl Naming) -> Self {
            self.limits.start = self.limits.start.name(name);
            self
        }

        /// Registers the supervisor under a plain runtime-local name (Elixir's
        /// `name: Chat.RoomSupervisor`): `.name(LocalName::new(name))`. Reach it across its
        /// restarts with [`ChildRef::local`](crate::ChildRef::local).
        pub fn local_name(self, name: &str) -> Self {
            self.name(arbor_core::LocalName::new(name))
        }

        /// Starts the supervisor on this runtime (needed when starting from outside any
        /// process).
        pub fn runtime(mut self, runtime: &RuntimeHandle) -> Self {
            self.limits.start = self.limits.start.runtime(runtime);
            self
        }

        /// Replaces the process start options (name, runtime) wholesale.
        pub fn start_opts(mut self, opts: StartOpts) -> Self {
            self.limits.start = opts;
            self
        }

        /// The restart limit set with `max_restarts`.
        pub fn get_max_restarts(&self) -> usize {
            self.limits.max_restarts
        }

        /// The intensity window in whole seconds, as `max_seconds` sets it (rounded down
        /// if `max_period` set a fraction).
        pub fn get_max_seconds(&self) -> u64 {
            self.limits.max_seconds.as_secs()
        }

        /// The intensity window, as `max_period` (or `max_seconds`) set it.
        pub fn get_max_period(&self) -> Duration {
            self.limits.max_seconds
        }

        /// The name set with `name` or `local_name`, if any.
        pub fn get_name(&self) -> Option<&Arc<dyn Naming>> {
            self.limits.start.get_name()
        }

        /// The runtime set with `runtime`, if any.
        pub fn get_runtime(&self) -> Option<&RuntimeHandle> {
            self.limits.start.get_runtime()
        }

        /// The process start options (name, runtime, timeout).
        pub fn get_start_opts(&self) -> &StartOpts {
            &self.limits.start
        }
    };
}

/// Options of a [`DynamicSupervisor`](crate::DynamicSupervisor) (S38).
#[derive(Clone, Debug, Default)]
pub struct DynamicOpts {
    pub(crate) limits: Limits,
    pub(crate) max_children: Option<usize>,
}

impl DynamicOpts {
    /// Defaults: 3 restarts in 5 s, no child limit, no name.
    pub fn new() -> DynamicOpts {
        DynamicOpts::default()
    }

    limit_setters!();

    /// At most this many children, restarting ones included (S43). Default: no limit.
    pub fn max_children(mut self, n: usize) -> Self {
        self.max_children = Some(n);
        self
    }

    /// The limit set with [`DynamicOpts::max_children`], if any.
    pub fn get_max_children(&self) -> Option<usize> {
        self.max_children
    }
}

/// Options of a static [`Supervisor`](crate::Supervisor) (S52, S62).
#[derive(Clone, Debug)]
pub struct SupervisorOpts {
    pub(crate) limits: Limits,
    pub(crate) strategy: Strategy,
}

impl SupervisorOpts {
    /// The strategy is required, as in Elixir (S52); the rest defaults to 3 restarts in 5 s.
    pub fn new(strategy: Strategy) -> SupervisorOpts {
        SupervisorOpts {
            limits: Limits::default(),
            strategy,
        }
    }

    limit_setters!();

    /// The strategy given to [`SupervisorOpts::new`].
    pub fn get_strategy(&self) -> Strategy {
        self.strategy
    }
}
