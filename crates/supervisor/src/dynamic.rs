//! `DynamicSupervisor`: children started on demand, one_for_one, keyed by pid.
//!
//! Invariants:
//! - The supervisor traps exits. Every stored child is linked to it, so its exit arrives as
//!   `handle_exit(child, reason)`; an exit from the parent (or the runtime, for a root) starts
//!   the shutdown; exits from anyone else are ignored.
//! - `by_pid` maps each child's current pid (or, while it is restarting, its last pid, so
//!   that `terminate_child(old_pid)` still finds it, S48) to its key; `children` holds them in
//!   insertion order (S50). A pid is stored at most once: a start that returns the pid of an
//!   existing child stores nothing (S78).
//! - A child is `Running`, `Restarting` (its last restart failed; a `Retry` message is on its
//!   way, S47) or `Terminating` (a stop was begun; its exit is awaited). A terminating child
//!   is never restarted.
//! - Once `shutdown` is set it is never cleared: no child starts or restarts again, every
//!   child is terminating, and the process stops with that reason when the last child's exit
//!   has been handled. The worker thread is never blocked on a child (see `stop.rs`).

use crate::error::{ChildError, StartChildError, SupervisorStartError};
use crate::info::{ChildCounts, ChildInfo, ChildStatus};
use crate::intensity::{Clock, RestartIntensity};
use crate::opts::{DynamicOpts, Strategy};
use crate::report::{ChildReport, ExitAction, History, IntensityUse, SupervisorReport};
use crate::spec::{ChildSpec, ChildType};
use crate::stop::{begin_stop, report_exit, SupMsg};
use crate::tree::SupervisorKind;
use arbor_core::{
    CallError, CallFlow, CallFuture, Context, ExitFuture, ExitReason, Flow, GenServer, Naming, Pid, ReplyTo, ServerRef,
    StartError, TimerRef,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Requests to the supervisor process.
pub(crate) enum DynCall {
    Start(ChildSpec),
    Terminate(Pid),
    Which,
    Count,
    Report,
}

/// Its replies.
pub(crate) enum DynReply {
    Start(Result<Pid, StartChildError>),
    Terminate(Result<(), ChildError>),
    Which(Vec<ChildInfo>),
    Count(ChildCounts),
    Report(Box<SupervisorReport>),
}

enum State {
    Running,
    Restarting,
    Terminating {
        timer: Option<TimerRef>,
        reply: Option<ReplyTo<DynReply>>,
    },
}

struct Child {
    spec: ChildSpec,
    pid: Pid,
    state: State,
    restarts: u64,
}

impl Child {
    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id().to_string(),
            status: match self.state {
                State::Restarting => ChildStatus::Restarting,
                _ => ChildStatus::Running(self.pid),
            },
            kind: self.spec.get_child_type(),
            restart: self.spec.get_restart(),
            restarts: self.restarts,
        }
    }
}

/// The supervisor process.
pub(crate) struct DynServer {
    children: BTreeMap<u64, Child>,
    by_pid: HashMap<Pid, u64>,
    next_key: u64,
    intensity: RestartIntensity,
    clock: Arc<dyn Clock>,
    max_children: Option<usize>,
    shutdown: Option<ExitReason>,
    history: History,
}

impl DynServer {
    fn insert(&mut self, spec: ChildSpec, pid: Pid) {
        let key = self.next_key;
        self.next_key += 1;
        self.by_pid.insert(pid, key);
        self.children.insert(
            key,
            Child {
                spec,
                pid,
                state: State::Running,
                restarts: 0,
            },
        );
    }

    fn remove(&mut self, key: u64) -> Option<Child> {
        let child = self.children.remove(&key)?;
        if self.by_pid.get(&child.pid) == Some(&key) {
            self.by_pid.remove(&child.pid);
        }
        Some(child)
    }

    /// Stops once shutting down and childless.
    fn settle(&self) -> Flow {
        match &self.shutdown {
            Some(reason) if self.children.is_empty() => Flow::Stop(reason.clone()),
            _ => Flow::Continue,
        }
    }

    /// Begins the shutdown (S49): every running child is signalled at once; the exits are
    /// handled as they arrive.
    fn begin_shutdown(&mut self, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        if self.shutdown.is_none() {
            log::debug!("dynamic supervisor {} shutting down: {reason}", ctx.pid());
            self.shutdown = Some(reason);
        }
        let keys: Vec<u64> = self.children.keys().copied().collect();
        for key in keys {
            let child = self.children.get_mut(&key).expect("key listed above");
            match child.state {
                State::Running => {
                    let timer = begin_stop(ctx, child.pid, child.spec.get_shutdown());
                    child.state = State::Terminating { timer, reply: None };
                }
                State::Restarting => {
                    self.remove(key);
                }
                State::Terminating { .. } => {}
            }
        }
        self.settle()
    }

    fn child_exited(&mut self, key: u64, pid: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        let Some(child) = self.children.get_mut(&key) else {
            return Flow::Continue;
        };
        if child.pid != pid {
            return Flow::Continue;
        }
        match &mut child.state {
            State::Terminating { timer, reply } => {
                if let Some(t) = timer.take() {
                    ctx.cancel_timer(t);
                }
                if let Some(r) = reply.take() {
                    r.reply(DynReply::Terminate(Ok(())));
                }
                self.remove(key);
                self.settle()
            }
            State::Restarting => Flow::Continue,
            State::Running => {
                report_exit(ctx.pid(), child.spec.id(), pid, &reason);
                let action = if self.shutdown.is_some() {
                    ExitAction::ShuttingDown
                } else if !child.spec.get_restart().restarts_after(&reason) {
                    ExitAction::NotRestarted
                } else {
                    ExitAction::Restarted
                };
                self.history.record(child.spec.id(), pid, &reason, action);
                if action != ExitAction::Restarted {
                    self.remove(key);
                    return self.settle();
                }
                let flow = self.restart(key, ctx);
                if self.shutdown.is_some() {
                    self.history.amend_last(pid, ExitAction::GaveUp);
                }
                flow
            }
        }
    }

    /// Restarts the child with `key` (S45); a failed start is retried through a message (S47).
    /// Each attempt counts toward the intensity (S46).
    fn restart(&mut self, key: u64, ctx: &mut Context<'_, Self>) -> Flow {
        if !self.intensity.record(self.clock.now()) {
            log::error!(
                "dynamic supervisor {}: reached the maximum restart intensity; shutting down",
                ctx.pid()
            );
            // The exited child is not restarted, and there is no process left to stop.
            self.remove(key);
            return self.begin_shutdown(ExitReason::Shutdown, ctx);
        }
        let Some(child) = self.children.get(&key) else {
            return Flow::Continue;
        };
        match child.spec.start_child() {
            Ok(new) => {
                if self.by_pid.get(&new).is_some_and(|k| *k != key) {
                    // Restarted into another child's process (a shared name): store it once.
                    self.remove(key);
                    return Flow::Continue;
                }
                let old = child.pid;
                if self.by_pid.get(&old) == Some(&key) {
                    self.by_pid.remove(&old);
                }
                self.by_pid.insert(new, key);
                let child = self.children.get_mut(&key).expect("present above");
                child.pid = new;
                child.state = State::Running;
                child.restarts += 1;
                let _ = ctx.link(new);
            }
            Err(StartError::Ignore) => {
                self.remove(key);
            }
            Err(e) => {
                log::error!(
                    "dynamic supervisor {}: restart of child {:?} failed: {e}; retrying",
                    ctx.pid(),
                    child.spec.id()
                );
                self.children.get_mut(&key).expect("present above").state = State::Restarting;
                ctx.send_self(SupMsg::Retry(key));
            }
        }
        Flow::Continue
    }

    fn report(&self, pid: Pid) -> SupervisorReport {
        SupervisorReport {
            pid,
            kind: SupervisorKind::Dynamic,
            strategy: Strategy::OneForOne,
            children: self
                .children
                .values()
                .map(|c| ChildReport {
                    info: c.info(),
                    shutdown: c.spec.get_shutdown(),
                })
                .collect(),
            history: self.history.to_vec(),
            intensity: IntensityUse {
                max_restarts: self.intensity.max_restarts(),
                window: self.intensity.window(),
                used: self.intensity.recent(self.clock.now()),
            },
            max_children: self.max_children,
            shutting_down: self.shutdown.is_some(),
        }
    }

    fn start_child(&mut self, spec: ChildSpec, ctx: &mut Context<'_, Self>) -> Result<Pid, StartChildError> {
        if self.shutdown.is_some() {
            return Err(StartChildError::ShuttingDown);
        }
        spec.validate().map_err(StartChildError::Spec)?;
        if self.max_children.is_some_and(|max| self.children.len() >= max) {
            return Err(StartChildError::MaxChildren);
        }
        let pid = spec.start_child().map_err(StartChildError::Start)?;
        if !self.by_pid.contains_key(&pid) {
            self.insert(spec, pid);
            let _ = ctx.link(pid);
        }
        Ok(pid)
    }

    fn terminate_child(
        &mut self,
        pid: Pid,
        from: ReplyTo<DynReply>,
        ctx: &mut Context<'_, Self>,
    ) -> CallFlow<DynReply> {
        if self.shutdown.is_some() {
            return CallFlow::Reply(DynReply::Terminate(Err(ChildError::ShuttingDown)));
        }
        let Some(&key) = self.by_pid.get(&pid) else {
            return CallFlow::Reply(DynReply::Terminate(Err(ChildError::NotFound)));
        };
        let child = self.children.get_mut(&key).expect("by_pid and children agree");
        match child.state {
            State::Running => {
                let timer = begin_stop(ctx, pid, child.spec.get_shutdown());
                child.state = State::Terminating {
                    timer,
                    reply: Some(from),
                };
                CallFlow::NoReply
            }
            State::Restarting => {
                self.remove(key);
                CallFlow::Reply(DynReply::Terminate(Ok(())))
            }
            State::Terminating { .. } => CallFlow::Reply(DynReply::Terminate(Err(ChildError::NotFound))),
        }
    }

    fn which(&self) -> Vec<ChildInfo> {
        self.children.values().map(Child::info).collect()
    }
}

impl GenServer for DynServer {
    type Args = DynamicOpts;
    type Info = SupMsg;
    type Call = DynCall;
    type Reply = DynReply;

    fn init(opts: DynamicOpts, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.trap_exits(true);
        Ok(DynServer {
            children: BTreeMap::new(),
            by_pid: HashMap::new(),
            next_key: 0,
            intensity: opts.limits.intensity(),
            clock: opts.limits.clock,
            max_children: opts.max_children,
            shutdown: None,
            history: History::default(),
        })
    }

    fn handle_info(&mut self, msg: SupMsg, ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            SupMsg::KillTimer(pid) => {
                if let Some(child) = self.by_pid.get(&pid).and_then(|k| self.children.get_mut(k)) {
                    if let State::Terminating { timer, .. } = &mut child.state {
                        *timer = None;
                        log::warn!(
                            "dynamic supervisor {}: child {:?} ({pid}) did not stop in time; killing it",
                            ctx.pid(),
                            child.spec.id()
                        );
                        ctx.kill(pid);
                    }
                }
                Flow::Continue
            }
            SupMsg::Retry(key) => {
                let restarting = self
                    .children
                    .get(&key)
                    .is_some_and(|c| matches!(c.state, State::Restarting));
                if restarting && self.shutdown.is_none() {
                    self.restart(key, ctx)
                } else {
                    Flow::Continue
                }
            }
        }
    }

    fn handle_call(
        &mut self,
        req: DynCall,
        from: ReplyTo<DynReply>,
        ctx: &mut Context<'_, Self>,
    ) -> CallFlow<DynReply> {
        match req {
            DynCall::Start(spec) => CallFlow::Reply(DynReply::Start(self.start_child(spec, ctx))),
            DynCall::Terminate(pid) => self.terminate_child(pid, from, ctx),
            DynCall::Which => CallFlow::Reply(DynReply::Which(self.which())),
            DynCall::Count => CallFlow::Reply(DynReply::Count(ChildCounts::of(self.which()))),
            DynCall::Report => CallFlow::Reply(DynReply::Report(Box::new(self.report(ctx.pid())))),
        }
    }

    fn handle_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        if let Some(&key) = self.by_pid.get(&from) {
            return self.child_exited(key, from, reason, ctx);
        }
        if ctx.is_parent(from) {
            return self.begin_shutdown(reason, ctx);
        }
        Flow::Continue
    }

    fn handle_stop(&mut self, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        self.begin_shutdown(reason, ctx)
    }
}

/// A handle to a dynamic supervisor: Elixir's `DynamicSupervisor`, strategy one_for_one.
///
/// Children are started on demand with [`start_child`](DynamicSupervisor::start_child) and
/// keyed by pid: their ids are informative only (S41), and starting a child whose start
/// returns the pid of an existing child stores it once (S78).
///
/// ```
/// use arbor_core::{Context, ExitReason, GenServer, Runtime};
/// use arbor_supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor};
///
/// struct Worker;
/// impl GenServer for Worker {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = ();
///     fn init(_: (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Worker)
///     }
/// }
///
/// let rt = Runtime::new().unwrap();
/// let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
/// let pid = sup.start_child(ChildSpec::server::<Worker>("worker", ())).unwrap();
/// assert_eq!(sup.count_children().unwrap().active, 1);
/// sup.terminate_child(pid).unwrap();
/// sup.stop().unwrap();
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DynamicSupervisor {
    server: ServerRef<DynServer>,
}

impl DynamicSupervisor {
    /// Starts a dynamic supervisor linked to the calling process (if any). From outside any
    /// process, name the runtime in the options.
    ///
    /// # Errors
    ///
    /// `Options(..)` for options rejected before anything starts (S39); `Start(..)` with core's
    /// [`StartError`](arbor_core::StartError) if the process could not start (no runtime, a taken
    /// name, a runtime shutting down).
    pub fn start_link(opts: DynamicOpts) -> Result<DynamicSupervisor, SupervisorStartError> {
        opts.limits.validate().map_err(SupervisorStartError::Options)?;
        let start = opts.limits.start.clone();
        DynServer::start_link(opts, start)
            .map(|server| DynamicSupervisor { server })
            .map_err(SupervisorStartError::Start)
    }

    /// Starts a dynamic supervisor without a link.
    ///
    /// # Errors
    ///
    /// As [`DynamicSupervisor::start_link`].
    pub fn start(opts: DynamicOpts) -> Result<DynamicSupervisor, SupervisorStartError> {
        opts.limits.validate().map_err(SupervisorStartError::Options)?;
        let start = opts.limits.start.clone();
        DynServer::start(opts, start)
            .map(|server| DynamicSupervisor { server })
            .map_err(SupervisorStartError::Start)
    }

    /// A spec that starts this supervisor as the child `id` of another supervisor (type
    /// `Supervisor`, shutdown `Infinity`).
    pub fn child_spec(id: impl Into<String>, opts: DynamicOpts) -> ChildSpec {
        ChildSpec::supervisor(id, move || {
            DynamicSupervisor::start_link(opts.clone())
                .map(|s| s.pid())
                .map_err(StartError::from)
        })
        .child_type(ChildType::Supervisor)
    }

    /// The handle of the dynamic supervisor running as `pid`, if it is one.
    pub fn from_pid(pid: Pid) -> Option<DynamicSupervisor> {
        ServerRef::from_pid(pid).map(|server| DynamicSupervisor { server })
    }

    /// The dynamic supervisor registered under `name`, if any.
    pub fn whereis(name: &dyn Naming) -> Option<DynamicSupervisor> {
        name.whereis().and_then(DynamicSupervisor::from_pid)
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.server.pid()
    }

    /// True until it begins to exit.
    pub fn is_alive(&self) -> bool {
        self.server.is_alive()
    }

    fn call(&self, req: DynCall) -> Result<DynReply, CallError> {
        self.server.call_timeout(req, Duration::MAX)
    }

    /// Starts a child (S40): its `init` has run when this returns. The spec is checked first,
    /// without contacting the supervisor (S42). A child whose start fails or is ignored is
    /// not stored and not restarted. A start that returns the pid of a child already stored
    /// returns that pid and stores nothing new (S78).
    ///
    /// # Errors
    ///
    /// `Spec(..)` for a spec rejected before the supervisor is contacted; `Start(e)` with the
    /// child's [`StartError`](arbor_core::StartError) (its `init` failed or ignored the start, its
    /// name was taken, its start closure failed or panicked), nothing being stored; `MaxChildren`
    /// past [`DynamicOpts::max_children`](crate::DynamicOpts::max_children); `ShuttingDown` while
    /// the supervisor stops; `Supervisor(e)` if the supervisor is not running.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{Context, ExitReason, GenServer, Runtime, StartError};
    /// use arbor_supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, StartChildError};
    ///
    /// /// Starts only for an even number.
    /// struct Even;
    ///
    /// impl GenServer for Even {
    ///     type Args = u32;
    ///     type Info = ();
    ///     type Call = ();
    ///     type Reply = ();
    ///
    ///     fn init(n: u32, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         if n % 2 == 0 { Ok(Even) } else { Err(ExitReason::custom("odd")) }
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    /// let pid = sup.start_child(ChildSpec::server::<Even>("even", 2)).unwrap();
    /// assert!(arbor_core::is_alive(pid));
    /// // A child whose init fails is reported and neither stored nor restarted.
    /// let odd = sup.start_child(ChildSpec::server::<Even>("odd", 3));
    /// assert_eq!(odd, Err(StartChildError::Start(StartError::Init(ExitReason::custom("odd")))));
    /// assert_eq!(sup.count_children().unwrap().specs, 1);
    /// ```
    pub fn start_child(&self, spec: ChildSpec) -> Result<Pid, StartChildError> {
        spec.validate().map_err(StartChildError::Spec)?;
        match self.call(DynCall::Start(spec)) {
            Ok(DynReply::Start(r)) => r,
            Ok(_) => unreachable!("a start request gets a start reply"),
            Err(e) => Err(StartChildError::Supervisor(e)),
        }
    }

    /// Stops the child `pid` with its shutdown procedure and forgets it; it is not restarted
    /// (S48). Returns once it has exited. `NotFound` if `pid` is not a child (or is already
    /// being terminated). Works on a restarting child, named by its last pid.
    ///
    /// # Errors
    ///
    /// `NotFound` if `pid` is not a child (or is already being terminated); `ShuttingDown` while
    /// the supervisor stops; `Supervisor(e)` if the supervisor is not running.
    pub fn terminate_child(&self, pid: Pid) -> Result<(), ChildError> {
        match self.call(DynCall::Terminate(pid)) {
            Ok(DynReply::Terminate(r)) => r,
            Ok(_) => unreachable!("a terminate request gets a terminate reply"),
            Err(e) => Err(ChildError::Supervisor(e)),
        }
    }

    /// The children, in the order they were first started (S50).
    ///
    /// # Errors
    ///
    /// `Err(e)` if the supervisor is not running (`NoProc`) or exits before it answers
    /// (`Exited(reason)`); the call itself waits without a timeout.
    pub fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        match self.call(DynCall::Which)? {
            DynReply::Which(v) => Ok(v),
            _ => unreachable!("a which request gets a which reply"),
        }
    }

    /// Counts of children (S50).
    ///
    /// # Errors
    ///
    /// `Err(e)` if the supervisor is not running (`NoProc`) or exits before it answers
    /// (`Exited(reason)`); the call itself waits without a timeout.
    pub fn count_children(&self) -> Result<ChildCounts, CallError> {
        match self.call(DynCall::Count)? {
            DynReply::Count(c) => Ok(c),
            _ => unreachable!("a count request gets a count reply"),
        }
    }

    /// Its children with their specs, the exits it handled (who, why, when, what it did) and
    /// its restart intensity's use, taken between two of its messages (see
    /// [`SupervisorReport`]).
    ///
    /// # Errors
    ///
    /// `NoProc` if it is not running, `Exited(reason)` if it exits before it answers,
    /// `Timeout` past `timeout`.
    pub fn report(&self, timeout: Duration) -> Result<SupervisorReport, CallError> {
        match self.server.call_timeout(DynCall::Report, timeout)? {
            DynReply::Report(r) => Ok(*r),
            _ => unreachable!("a report request gets a report reply"),
        }
    }

    /// Stops the supervisor with reason `Normal` and waits until it and all its children have
    /// exited (S51).
    ///
    /// # Errors
    ///
    /// As [`DynamicSupervisor::stop_with`].
    pub fn stop(&self) -> Result<(), CallError> {
        self.stop_with(ExitReason::Normal, Duration::MAX)
    }

    /// Stops the supervisor with `reason`, waiting up to `timeout` (`Duration::MAX`: forever).
    ///
    /// # Errors
    ///
    /// As [`ServerRef::stop`](arbor_core::ServerRef::stop): `NoProc` if it is not running,
    /// `CallingSelf` from the supervisor itself, `Timeout` past `timeout`.
    pub fn stop_with(&self, reason: ExitReason, timeout: Duration) -> Result<(), CallError> {
        self.server.stop(reason, timeout)
    }

    /// Waits up to `timeout` for the supervisor to exit; its exit reason, or `None` on
    /// timeout.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitReason> {
        self.server.wait_exit(timeout)
    }

    /// [`DynamicSupervisor::start_child`] from async code: the request is sent now (after
    /// the spec is checked) and the future resolves once the child's `init` has run. It
    /// blocks no thread and needs no particular executor. Dropping it does not cancel the
    /// start: the child is started and supervised all the same.
    ///
    /// # Errors
    ///
    /// The future's output: as [`DynamicSupervisor::start_child`].
    pub fn start_child_async(
        &self,
        spec: ChildSpec,
    ) -> impl Future<Output = Result<Pid, StartChildError>> + Send + 'static {
        let sent = spec
            .validate()
            .map_err(StartChildError::Spec)
            .map(|()| self.server.call_timeout_async(DynCall::Start(spec), Duration::MAX));
        async move {
            match sent?.await {
                Ok(DynReply::Start(r)) => r,
                Ok(_) => unreachable!("a start request gets a start reply"),
                Err(e) => Err(StartChildError::Supervisor(e)),
            }
        }
    }

    /// [`DynamicSupervisor::terminate_child`] from async code: resolves once the child has
    /// exited. Dropping the future does not cancel the termination.
    ///
    /// # Errors
    ///
    /// The future's output: as [`DynamicSupervisor::terminate_child`].
    pub fn terminate_child_async(&self, pid: Pid) -> impl Future<Output = Result<(), ChildError>> + Send + 'static {
        let sent = self.server.call_timeout_async(DynCall::Terminate(pid), Duration::MAX);
        async move {
            match sent.await {
                Ok(DynReply::Terminate(r)) => r,
                Ok(_) => unreachable!("a terminate request gets a terminate reply"),
                Err(e) => Err(ChildError::Supervisor(e)),
            }
        }
    }

    /// [`DynamicSupervisor::which_children`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`DynamicSupervisor::which_children`].
    pub fn which_children_async(&self) -> impl Future<Output = Result<Vec<ChildInfo>, CallError>> + Send + 'static {
        let sent = self.server.call_timeout_async(DynCall::Which, Duration::MAX);
        async move {
            match sent.await? {
                DynReply::Which(v) => Ok(v),
                _ => unreachable!("a which request gets a which reply"),
            }
        }
    }

    /// [`DynamicSupervisor::count_children`] from async code.
    ///
    /// # Errors
    ///
    /// The future's output: as [`DynamicSupervisor::count_children`].
    pub fn count_children_async(&self) -> impl Future<Output = Result<ChildCounts, CallError>> + Send + 'static {
        let sent = self.server.call_timeout_async(DynCall::Count, Duration::MAX);
        async move {
            match sent.await? {
                DynReply::Count(c) => Ok(c),
                _ => unreachable!("a count request gets a count reply"),
            }
        }
    }

    /// [`DynamicSupervisor::stop_with`] from async code: resolves once the supervisor and
    /// all its children have exited, or with `Timeout` after `timeout`.
    ///
    /// # Errors
    ///
    /// The future's output: as [`DynamicSupervisor::stop_with`].
    pub fn stop_async(&self, reason: ExitReason, timeout: Duration) -> CallFuture<()> {
        self.server.stop_async(reason, timeout)
    }

    /// [`DynamicSupervisor::wait_exit`] from async code.
    pub fn wait_exit_async(&self, timeout: Duration) -> ExitFuture {
        self.server.wait_exit_async(timeout)
    }
}

impl fmt::Debug for DynamicSupervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynamicSupervisor({})", self.pid())
    }
}
