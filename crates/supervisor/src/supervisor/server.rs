//! The static supervisor's process: its state, the strategies that restart children, and
//! the sequential, asynchronous stop of children (S52–S62). Only `handle.rs` talks to it,
//! through [`SupCall`] / [`SupReply`].
//!
//! Invariants:
//! - `children` is in start order and ids are unique. A child is `Running(pid)` (linked to
//!   the supervisor), `Stopped` (spec kept, no process) or `Restarting` (a `Retry` message
//!   is on its way, S47). A temporary child's spec is dropped as soon as it stops.
//! - Stopping children is *sequential and asynchronous*: at most one [`Op`] runs at a time;
//!   it signals one child, waits for that child's exit as a message (a kill timer bounds a
//!   timeout shutdown), then signals the next. The worker thread is never blocked on a child.
//! - While an `Op` runs, every input that could change the children (calls other than the
//!   read-only `which_children` / `count_children`, unrelated child exits, restart retries)
//!   is deferred, in arrival order, and replayed once the `Op` is done: the supervisor
//!   behaves as if each strategy step were atomic, as OTP's blocking supervisor does.
//! - Once `shutdown` is set it is never cleared: the current `Op` becomes the shutdown (all
//!   running children, reverse start order), deferred calls are answered `ShuttingDown`, and
//!   the process stops with that reason when the last child is gone.
//! - Intensity is one window for all children (S60); each strategy event counts once (S59),
//!   and so does each retry of a failed restart (S47).
//! - The one synchronous wait is a boot failure's cleanup, inside `init` (no mailbox loop
//!   yet): it uses core's `RuntimeHandle::wait_exit`, which core compensates (S53).

use crate::error::{ChildError, StartChildError};
use crate::info::{ChildCounts, ChildInfo, ChildStatus};
use crate::intensity::{Clock, RestartIntensity};
use crate::opts::{Strategy, SupervisorOpts};
use crate::report::{ChildReport, ExitAction, History, IntensityUse, SupervisorReport};
use crate::spec::{ChildSpec, Restart};
use crate::stop::{begin_stop, report_exit, SupMsg};
use crate::tree::SupervisorKind;
use crate::Shutdown;
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, Pid, ReplyTo, StartError, TimerRef};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Requests to the supervisor process.
pub(crate) enum SupCall {
    Start(ChildSpec),
    Terminate(String),
    Restart(String),
    Delete(String),
    Which,
    Count,
    Report,
}

/// Its replies.
pub(crate) enum SupReply {
    Start(Result<Option<Pid>, StartChildError>),
    Child(Result<(), ChildError>),
    Restarted(Result<Option<Pid>, ChildError>),
    Which(Vec<ChildInfo>),
    Count(ChildCounts),
    Report(Box<SupervisorReport>),
}

impl SupCall {
    /// The answer to this request once the supervisor is shutting down.
    fn shutting_down(&self) -> SupReply {
        match self {
            SupCall::Start(_) => SupReply::Start(Err(StartChildError::ShuttingDown)),
            SupCall::Restart(_) => SupReply::Restarted(Err(ChildError::ShuttingDown)),
            _ => SupReply::Child(Err(ChildError::ShuttingDown)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Running(Pid),
    Stopped,
    Restarting,
}

struct Child {
    key: u64,
    spec: ChildSpec,
    status: Status,
    restarts: u64,
}

impl Child {
    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id().to_string(),
            status: match self.status {
                Status::Running(p) => ChildStatus::Running(p),
                Status::Stopped => ChildStatus::Stopped,
                Status::Restarting => ChildStatus::Restarting,
            },
            kind: self.spec.get_child_type(),
            restart: self.spec.get_restart(),
            restarts: self.restarts,
        }
    }
}

/// A sequence of children to stop, one at a time, and what to do afterwards.
struct Op {
    /// Still to stop, in this order (reverse start order).
    queue: VecDeque<Pid>,
    /// The child signalled last, whose exit is awaited, and its kill timer.
    current: Option<(Pid, Option<TimerRef>)>,
    then: Then,
}

enum Then {
    /// Start these children again, in start order (a one_for_all / rest_for_one restart).
    Restart(Vec<u64>),
    /// Answer a `terminate_child`.
    Reply(ReplyTo<SupReply>),
    /// Stop the supervisor with the reason in `shutdown`.
    Exit,
}

enum Deferred {
    Call(SupCall, ReplyTo<SupReply>),
    Exit(Pid, ExitReason),
    Retry(u64),
}

/// What `init` receives.
pub(crate) struct Boot {
    pub(super) specs: Vec<ChildSpec>,
    pub(super) opts: SupervisorOpts,
    /// Where `init` leaves the id and error of a child that failed to start (S53).
    pub(super) failure: Arc<Mutex<Option<(String, StartError)>>>,
}

/// The supervisor process.
pub(crate) struct StaticServer {
    children: Vec<Child>,
    next_key: u64,
    strategy: Strategy,
    intensity: RestartIntensity,
    clock: Arc<dyn Clock>,
    op: Option<Op>,
    deferred: VecDeque<Deferred>,
    shutdown: Option<ExitReason>,
    history: History,
}

impl StaticServer {
    fn index_of_pid(&self, pid: Pid) -> Option<usize> {
        self.children.iter().position(|c| c.status == Status::Running(pid))
    }

    fn index_of_key(&self, key: u64) -> Option<usize> {
        self.children.iter().position(|c| c.key == key)
    }

    fn index_of_id(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id() == id)
    }

    fn push(&mut self, spec: ChildSpec, status: Status) {
        let key = self.next_key;
        self.next_key += 1;
        self.children.push(Child {
            key,
            spec,
            status,
            restarts: 0,
        });
    }

    /// A child the supervisor stopped on purpose has exited: keep its spec as `Stopped`,
    /// unless it is temporary (S57, S59's temporary bystanders).
    fn on_stopped(&mut self, pid: Pid) {
        if let Some(i) = self.index_of_pid(pid) {
            if self.children[i].spec.get_restart() == Restart::Temporary {
                self.children.remove(i);
            } else {
                self.children[i].status = Status::Stopped;
            }
        }
    }

    /// Signals the next child of the current `Op`; when none is left, finishes the `Op` and
    /// replays what was deferred meanwhile.
    fn advance(&mut self, ctx: &mut Context<'_, Self>) -> Flow {
        loop {
            let Some(op) = self.op.as_mut() else {
                return Flow::Continue;
            };
            op.current = None;
            let Some(pid) = op.queue.pop_front() else {
                break;
            };
            if let Some(i) = self.index_of_pid(pid) {
                let timer = begin_stop(ctx, pid, self.children[i].spec.get_shutdown());
                self.op.as_mut().expect("checked above").current = Some((pid, timer));
                return Flow::Continue;
            }
        }
        let op = self.op.take().expect("checked above");
        match op.then {
            Then::Exit => {
                return Flow::Stop(self.shutdown.clone().unwrap_or(ExitReason::Shutdown));
            }
            Then::Reply(from) => {
                from.reply(SupReply::Child(Ok(())));
            }
            Then::Restart(keys) => {
                self.start_keys(&keys, ctx);
            }
        }
        self.replay(ctx)
    }

    /// Replays deferred inputs until one of them begins a new `Op` (or stops the supervisor).
    fn replay(&mut self, ctx: &mut Context<'_, Self>) -> Flow {
        while self.op.is_none() {
            let Some(d) = self.deferred.pop_front() else {
                break;
            };
            let flow = match d {
                Deferred::Call(req, from) => {
                    self.request(req, from, ctx);
                    Flow::Continue
                }
                Deferred::Exit(pid, reason) => self.child_exited(pid, reason, ctx),
                Deferred::Retry(key) => self.retry(key, ctx),
            };
            if let Flow::Stop(_) = flow {
                return flow;
            }
        }
        Flow::Continue
    }

    fn begin_op(&mut self, queue: VecDeque<Pid>, then: Then, ctx: &mut Context<'_, Self>) -> Flow {
        debug_assert!(self.op.is_none());
        self.op = Some(Op {
            queue,
            current: None,
            then,
        });
        self.advance(ctx)
    }

    /// Running children in reverse start order, optionally only from index `from` on, and
    /// skipping `except`.
    fn running_reversed(&self, from: usize, except: Option<Pid>) -> VecDeque<Pid> {
        self.children[from..]
            .iter()
            .rev()
            .filter_map(|c| match c.status {
                Status::Running(p) if Some(p) != except => Some(p),
                _ => None,
            })
            .collect()
    }

    /// Begins the shutdown (S61): every running child, one at a time, reverse start order.
    fn begin_shutdown(&mut self, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        if self.shutdown.is_none() {
            log::debug!("supervisor {} shutting down: {reason}", ctx.pid());
            self.shutdown = Some(reason);
        }
        for d in self.deferred.drain(..) {
            if let Deferred::Call(req, from) = d {
                from.reply(req.shutting_down());
            }
        }
        for c in &mut self.children {
            if c.status == Status::Restarting {
                c.status = Status::Stopped;
            }
        }
        match self.op.take() {
            Some(mut op) => {
                let current = op.current.map(|(p, _)| p);
                op.queue = self.running_reversed(0, current);
                if let Then::Reply(from) = std::mem::replace(&mut op.then, Then::Exit) {
                    from.reply(SupReply::Child(Err(ChildError::ShuttingDown)));
                }
                let idle = op.current.is_none();
                self.op = Some(op);
                if idle {
                    self.advance(ctx)
                } else {
                    Flow::Continue
                }
            }
            None => {
                let queue = self.running_reversed(0, None);
                self.begin_op(queue, Then::Exit, ctx)
            }
        }
    }

    /// A running child exited on its own, with no `Op` in progress.
    fn child_exited(&mut self, pid: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        let Some(i) = self.index_of_pid(pid) else {
            return Flow::Continue;
        };
        report_exit(ctx.pid(), self.children[i].spec.id(), pid, &reason);
        let restart = self.children[i].spec.get_restart();
        let action = if self.shutdown.is_some() {
            ExitAction::ShuttingDown
        } else if !restart.restarts_after(&reason) {
            ExitAction::NotRestarted
        } else {
            ExitAction::Restarted
        };
        self.history.record(self.children[i].spec.id(), pid, &reason, action);
        if action != ExitAction::Restarted {
            if restart == Restart::Temporary {
                self.children.remove(i);
            } else {
                self.children[i].status = Status::Stopped;
            }
            return Flow::Continue;
        }
        self.children[i].status = Status::Stopped;
        if !self.intensity.record(self.clock.now()) {
            log::error!(
                "supervisor {}: reached the maximum restart intensity; shutting down",
                ctx.pid()
            );
            self.history.amend_last(pid, ExitAction::GaveUp);
            return self.begin_shutdown(ExitReason::Shutdown, ctx);
        }
        let key = self.children[i].key;
        match self.strategy {
            Strategy::OneForOne => {
                self.start_keys(&[key], ctx);
                Flow::Continue
            }
            Strategy::OneForAll => {
                let keys = self.children.iter().map(|c| c.key).collect();
                let queue = self.running_reversed(0, None);
                self.begin_op(queue, Then::Restart(keys), ctx)
            }
            Strategy::RestForOne => {
                let keys = self.children[i..].iter().map(|c| c.key).collect();
                let queue = self.running_reversed(i + 1, None);
                self.begin_op(queue, Then::Restart(keys), ctx)
            }
        }
    }

    /// Starts the stopped or restarting children among `keys`, in order. A failure marks that
    /// child and the rest of `keys` as restarting and sends a `Retry` (S47).
    fn start_keys(&mut self, keys: &[u64], ctx: &mut Context<'_, Self>) {
        for (n, key) in keys.iter().enumerate() {
            let Some(i) = self.index_of_key(*key) else {
                continue;
            };
            if matches!(self.children[i].status, Status::Running(_)) {
                continue;
            }
            match self.children[i].spec.start_child() {
                Ok(pid) => {
                    let c = &mut self.children[i];
                    c.status = Status::Running(pid);
                    c.restarts += 1;
                    let _ = ctx.link(pid);
                }
                Err(StartError::Ignore) => {
                    if self.children[i].spec.get_restart() == Restart::Temporary {
                        self.children.remove(i);
                    } else {
                        self.children[i].status = Status::Stopped;
                    }
                }
                Err(e) => {
                    log::error!(
                        "supervisor {}: restart of child {:?} failed: {e}; retrying",
                        ctx.pid(),
                        self.children[i].spec.id()
                    );
                    for rest in &keys[n..] {
                        if let Some(j) = self.index_of_key(*rest) {
                            if self.children[j].status == Status::Stopped {
                                self.children[j].status = Status::Restarting;
                            }
                        }
                    }
                    ctx.send_self(SupMsg::Retry(*key));
                    return;
                }
            }
        }
    }

    /// Retries a failed restart (S47): counts toward intensity, then starts the child, and
    /// for one_for_all / rest_for_one the restarting children after it.
    fn retry(&mut self, key: u64, ctx: &mut Context<'_, Self>) -> Flow {
        if self.shutdown.is_some() {
            return Flow::Continue;
        }
        let Some(i) = self.index_of_key(key) else {
            return Flow::Continue;
        };
        if self.children[i].status != Status::Restarting {
            return Flow::Continue;
        }
        if !self.intensity.record(self.clock.now()) {
            log::error!(
                "supervisor {}: reached the maximum restart intensity; shutting down",
                ctx.pid()
            );
            return self.begin_shutdown(ExitReason::Shutdown, ctx);
        }
        self.children[i].status = Status::Stopped;
        let keys: Vec<u64> = match self.strategy {
            Strategy::OneForOne => vec![key],
            _ => std::iter::once(key)
                .chain(
                    self.children[i + 1..]
                        .iter()
                        .filter(|c| c.status == Status::Restarting)
                        .map(|c| c.key),
                )
                .collect(),
        };
        self.start_keys(&keys, ctx);
        Flow::Continue
    }

    /// Handles a request that may change the children; answers through `from`, now or once
    /// its `Op` is done. Only called with no `Op` in progress and no shutdown.
    fn request(&mut self, req: SupCall, from: ReplyTo<SupReply>, ctx: &mut Context<'_, Self>) {
        if self.shutdown.is_some() {
            from.reply(req.shutting_down());
            return;
        }
        match req {
            SupCall::Start(spec) => {
                from.reply(SupReply::Start(self.start_child(spec, ctx)));
            }
            SupCall::Terminate(id) => {
                let Some(i) = self.index_of_id(&id) else {
                    from.reply(SupReply::Child(Err(ChildError::NotFound)));
                    return;
                };
                match self.children[i].status {
                    Status::Running(pid) => {
                        // Can only finish at once if the child is already gone.
                        let _ = self.begin_op(VecDeque::from([pid]), Then::Reply(from), ctx);
                    }
                    Status::Stopped | Status::Restarting => {
                        if self.children[i].spec.get_restart() == Restart::Temporary {
                            self.children.remove(i);
                        } else {
                            self.children[i].status = Status::Stopped;
                        }
                        from.reply(SupReply::Child(Ok(())));
                    }
                }
            }
            SupCall::Restart(id) => {
                let r = match self.index_of_id(&id).map(|i| (i, self.children[i].status)) {
                    None => Err(ChildError::NotFound),
                    Some((_, Status::Running(_))) => Err(ChildError::Running),
                    Some((_, Status::Restarting)) => Err(ChildError::Restarting),
                    Some((i, Status::Stopped)) => match self.children[i].spec.start_child() {
                        Ok(pid) => {
                            self.children[i].status = Status::Running(pid);
                            let _ = ctx.link(pid);
                            Ok(Some(pid))
                        }
                        Err(StartError::Ignore) => Ok(None),
                        Err(e) => Err(ChildError::Start(e)),
                    },
                };
                from.reply(SupReply::Restarted(r));
            }
            SupCall::Delete(id) => {
                let r = match self.index_of_id(&id).map(|i| (i, self.children[i].status)) {
                    None => Err(ChildError::NotFound),
                    Some((_, Status::Running(_))) => Err(ChildError::Running),
                    Some((_, Status::Restarting)) => Err(ChildError::Restarting),
                    Some((i, Status::Stopped)) => {
                        self.children.remove(i);
                        Ok(())
                    }
                };
                from.reply(SupReply::Child(r));
            }
            SupCall::Which | SupCall::Count | SupCall::Report => unreachable!("answered in handle_call"),
        }
    }

    /// S56: appends the child to the start order.
    fn start_child(&mut self, spec: ChildSpec, ctx: &mut Context<'_, Self>) -> Result<Option<Pid>, StartChildError> {
        spec.validate().map_err(StartChildError::Spec)?;
        if let Some(i) = self.index_of_id(spec.id()) {
            return Err(match self.children[i].status {
                Status::Running(pid) => StartChildError::AlreadyStarted(pid),
                _ => StartChildError::AlreadyPresent,
            });
        }
        match spec.start_child() {
            Ok(pid) => {
                let _ = ctx.link(pid);
                self.push(spec, Status::Running(pid));
                Ok(Some(pid))
            }
            Err(StartError::Ignore) => {
                if spec.get_restart() != Restart::Temporary {
                    self.push(spec, Status::Stopped);
                }
                Ok(None)
            }
            Err(e) => Err(StartChildError::Start(e)),
        }
    }

    fn report(&self, pid: Pid) -> SupervisorReport {
        SupervisorReport {
            pid,
            kind: SupervisorKind::Static,
            strategy: self.strategy,
            children: self
                .children
                .iter()
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
            max_children: None,
            shutting_down: self.shutdown.is_some(),
        }
    }

    fn which(&self) -> Vec<ChildInfo> {
        self.children.iter().rev().map(Child::info).collect()
    }
}

/// Stops `pid` and waits for it, inside `init` (boot failure only, S53). The wait is core's
/// `RuntimeHandle::wait_exit`, compensated like a call, so a one-thread runtime still has a
/// worker to run the child's `terminate`.
fn stop_and_wait(ctx: &mut Context<'_, StaticServer>, pid: Pid, shutdown: Shutdown) {
    let rt = ctx.runtime();
    match shutdown {
        Shutdown::BrutalKill => ctx.kill(pid),
        Shutdown::Timeout(after) => {
            ctx.exit(pid, ExitReason::Shutdown);
            if rt.wait_exit(pid, after).is_some() {
                return;
            }
            ctx.kill(pid);
        }
        Shutdown::Infinity => ctx.exit(pid, ExitReason::Shutdown),
    }
    rt.wait_exit(pid, Duration::MAX);
}

impl GenServer for StaticServer {
    type Args = Boot;
    type Info = SupMsg;
    type Call = SupCall;
    type Reply = SupReply;

    /// Starts the children in list order, each synchronously (S52). On a failure, stops the
    /// started ones in reverse order and fails (S53).
    fn init(boot: Boot, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.trap_exits(true);
        let mut sup = StaticServer {
            children: Vec::with_capacity(boot.specs.len()),
            next_key: 0,
            strategy: boot.opts.strategy,
            intensity: boot.opts.limits.intensity(),
            clock: boot.opts.limits.clock,
            op: None,
            deferred: VecDeque::new(),
            shutdown: None,
            history: History::default(),
        };
        for spec in boot.specs {
            match spec.start_child() {
                Ok(pid) => {
                    let _ = ctx.link(pid);
                    sup.push(spec, Status::Running(pid));
                }
                Err(StartError::Ignore) => {
                    if spec.get_restart() != Restart::Temporary {
                        sup.push(spec, Status::Stopped);
                    }
                }
                Err(error) => {
                    log::error!(
                        "supervisor {}: child {:?} failed to start: {error}",
                        ctx.pid(),
                        spec.id()
                    );
                    for c in sup.children.iter().rev() {
                        if let Status::Running(pid) = c.status {
                            stop_and_wait(ctx, pid, c.spec.get_shutdown());
                        }
                    }
                    let reason =
                        ExitReason::shutdown_with(format_args!("failed_to_start_child {:?}: {error}", spec.id()));
                    *boot.failure.lock() = Some((spec.id().to_string(), error));
                    return Err(reason);
                }
            }
        }
        Ok(sup)
    }

    fn handle_info(&mut self, msg: SupMsg, ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            SupMsg::KillTimer(pid) => {
                if let Some(op) = self.op.as_mut() {
                    if let Some((current, timer @ Some(_))) = op.current.as_mut() {
                        if *current == pid {
                            *timer = None;
                            log::warn!("supervisor {}: child {pid} did not stop in time; killing it", ctx.pid());
                            ctx.kill(pid);
                        }
                    }
                }
                Flow::Continue
            }
            SupMsg::Retry(key) => {
                if self.op.is_some() {
                    self.deferred.push_back(Deferred::Retry(key));
                    Flow::Continue
                } else {
                    self.retry(key, ctx)
                }
            }
        }
    }

    fn handle_call(
        &mut self,
        req: SupCall,
        from: ReplyTo<SupReply>,
        ctx: &mut Context<'_, Self>,
    ) -> CallFlow<SupReply> {
        match req {
            SupCall::Which => CallFlow::Reply(SupReply::Which(self.which())),
            SupCall::Count => CallFlow::Reply(SupReply::Count(ChildCounts::of(self.which()))),
            SupCall::Report => CallFlow::Reply(SupReply::Report(Box::new(self.report(ctx.pid())))),
            req if self.shutdown.is_some() => CallFlow::Reply(req.shutting_down()),
            req if self.op.is_some() => {
                self.deferred.push_back(Deferred::Call(req, from));
                CallFlow::NoReply
            }
            req => {
                self.request(req, from, ctx);
                CallFlow::NoReply
            }
        }
    }

    fn handle_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        if let Some(op) = self.op.as_mut() {
            if let Some((current, timer)) = op.current {
                if current == from {
                    if let Some(t) = timer {
                        ctx.cancel_timer(t);
                    }
                    self.on_stopped(from);
                    return self.advance(ctx);
                }
            }
            if let Some(at) = op.queue.iter().position(|p| *p == from) {
                // Due to be stopped anyway: it saved us the trouble.
                op.queue.remove(at);
                self.on_stopped(from);
                return Flow::Continue;
            }
        }
        if self.index_of_pid(from).is_some() {
            if self.op.is_some() {
                self.deferred.push_back(Deferred::Exit(from, reason));
                return Flow::Continue;
            }
            return self.child_exited(from, reason, ctx);
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
