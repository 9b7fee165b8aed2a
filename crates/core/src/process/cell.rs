//! The typed process: a GenServer's state, its mailbox, its run loop, and its start.
//!
//! Invariants:
//! - The runner lock is held by whoever runs the process: the starter during `init`, then
//!   one worker at a time (the mailbox's `Running` state says who may take it, so the lock
//!   is never contended on the hot path). The state and the runner's own queues
//!   (continuations, live timers, stop waiters) are touched only under it.
//! - `finalized` is set once, by whoever drops the state (a worker, or the starter when
//!   `init` failed); the table slot is freed at the same time.
//! - A message popped after the process began to exit is failed or dropped, never
//!   handled.

use super::current::CurrentGuard;
use super::header::{Callback, Header, Process, SysMsg};
use crate::context::{Context, ContinueFn};
use crate::error::{CallError, StartError};
use crate::gen_server::{CallFlow, Flow, GenServer};
use crate::mailbox::{Mailbox, Pop};
use crate::panic::{catch, drop_quietly};
use crate::reply::{ReplyTo, Slot};
use crate::request::{ErasedCast, ErasedRequest, Handled};
use crate::runtime::RtShared;
use crate::scheduler::Runnable;
use crate::sync::Mutex;
use crate::timer::TimerCore;
use crate::{CrashReports, ExitReason, NameError, Pid, ServerRef, StartOpts};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Messages a run handles before it yields the worker.
const BUDGET: usize = 64;

/// Most `init`s nested on one thread (see [`StartError::NestedTooDeep`]). Each level
/// costs a few kilobytes of stack in an optimised build and tens of kilobytes in a debug
/// one; 100 levels fit the 2 MiB stack of a spawned thread in both.
pub(crate) const MAX_NESTED_INITS: usize = 100;

thread_local! {
    /// `init`s running on this thread, nested.
    static INIT_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The key of a call or stop request not (yet) registered with the process.
pub(crate) const NOT_HELD: usize = usize::MAX;

/// What a process's mailbox carries.
pub(crate) enum Envelope<G: GenServer> {
    /// For `handle_info`.
    Info(G::Info),
    /// For `handle_info`, from a timer: dropped if the timer was cancelled meanwhile.
    Timer(u64, G::Info),
    /// For `handle_info`, from a [`Timer`](crate::Timer) (one anyone may cancel): dropped
    /// unless the timer's claim succeeds (see `timer/shared.rs`).
    Timed(Arc<TimerCore>, G::Info),
    /// For `handle_call` (the slot knows the caller). The key under which the call is
    /// registered with the process ([`NOT_HELD`] until it is): see [`Cell::hold_batch`].
    Call(G::Call, Arc<Slot<G::Reply>>, usize),
    /// A stop request (S18), answered once the process has exited, and its key as for a
    /// call. Boxed, as is `Sys`: rare variants must not make every envelope, and so every
    /// queue slot, bigger.
    Stop(Box<(ExitReason, Arc<Slot<()>>, usize)>),
    /// A trapped exit or a `Down`.
    Sys(Box<SysMsg>),
    /// An inactivity timeout (S9) expired: its sequence number, stale unless it is the
    /// one armed now.
    Timeout(u64),
    /// For `handle_request` (a typed request: the request and its slot in one cell, which
    /// also keeps its held key).
    Request(Arc<dyn ErasedRequest<G>>),
    /// For `handle_cast`.
    Cast(Box<dyn ErasedCast<G>>),
}

/// The runner's own data, beside the state. What most processes never use (continuations,
/// timers, stop requests) lives in a box allocated on first use, to keep an idle process
/// small.
pub(crate) struct Local<G: GenServer> {
    extra: Option<Box<Extra<G>>>,
    finalized: bool,
    /// The runner's side of the mailbox (see `mailbox.rs`).
    batch: VecDeque<Envelope<G>>,
}

#[derive(Default)]
struct Extra<G: GenServer> {
    continues: VecDeque<ContinueFn<G>>,
    /// Live timers: the timer's id (what `TimerRef` holds, unique in the program and
    /// never reused) to its key on the timer wheel (whose slots are reused).
    timers: HashMap<u64, u64>,
    /// Stop requests taken, with the reason each asked for.
    stop_waiters: Vec<(Arc<Slot<()>>, ExitReason)>,
    /// A reply handle kept until the process has exited (see `handle`).
    hold: Option<Box<dyn Any + Send>>,
    /// The inactivity timeout the running callback asked for (S9).
    timeout_req: Option<Duration>,
    /// The armed inactivity timeout: its sequence number and its timer, if on the wheel.
    timeout: Option<(u64, Option<u64>)>,
    /// Sequence numbers of inactivity timeouts.
    timeout_seq: u64,
}

impl<G: GenServer> Default for Local<G> {
    fn default() -> Self {
        Local {
            extra: None,
            finalized: false,
            batch: VecDeque::new(),
        }
    }
}

impl<G: GenServer> Local<G> {
    fn extra(&mut self) -> &mut Extra<G> {
        self.extra.get_or_insert_with(|| {
            Box::new(Extra {
                continues: VecDeque::new(),
                timers: HashMap::new(),
                stop_waiters: Vec::new(),
                hold: None,
                timeout_req: None,
                timeout: None,
                timeout_seq: 0,
            })
        })
    }

    pub(crate) fn request_timeout(&mut self, after: Duration) {
        self.extra().timeout_req = Some(after);
    }

    pub(crate) fn push_continue(&mut self, f: ContinueFn<G>) {
        self.extra().continues.push_back(f);
    }

    fn pop_continue(&mut self) -> Option<ContinueFn<G>> {
        self.extra.as_mut().and_then(|e| e.continues.pop_front())
    }

    fn has_continues(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.continues.is_empty())
    }

    pub(crate) fn add_timer(&mut self, id: u64, key: u64) {
        self.extra().timers.insert(id, key);
    }

    /// Forgets a live timer, returning its wheel key; `None` if it was not live (fired
    /// and handled, or cancelled).
    pub(crate) fn remove_timer(&mut self, id: u64) -> Option<u64> {
        self.extra.as_mut().and_then(|e| e.timers.remove(&id))
    }

    /// The wheel key of a live timer.
    pub(crate) fn timer_key(&self, id: u64) -> Option<u64> {
        self.extra.as_ref().and_then(|e| e.timers.get(&id).copied())
    }
}

pub(crate) struct Runner<G: GenServer> {
    state: Option<G>,
    local: Local<G>,
}

/// A process running the GenServer `G`.
pub(crate) struct Cell<G: GenServer> {
    header: Arc<Header>,
    mailbox: Mailbox<Envelope<G>>,
    runner: Mutex<Runner<G>>,
    /// On a deterministic runtime: each delivery goes to its trace (see `push`). Set at
    /// the start and never changed, so read outside the mailbox's lock.
    traced: bool,
}

enum Outcome {
    Continue,
    Stop(ExitReason, Option<Box<dyn FnOnce()>>),
}

impl<G: GenServer> Cell<G> {
    fn new(pid: Pid, parent: Pid, rt: Arc<RtShared>) -> Cell<G> {
        Cell {
            // On a deterministic runtime, deliveries go to its trace (see `push`).
            traced: rt.pool.sim().is_some(),
            mailbox: Mailbox::new_running(),
            header: Arc::new(Header::new(pid, parent, std::any::type_name::<G>(), rt)),
            runner: Mutex::new(Runner {
                state: None,
                local: Local::default(),
            }),
        }
    }

    pub(crate) fn header(&self) -> &Arc<Header> {
        &self.header
    }

    /// Queues an envelope and schedules the process if it was idle. On a deterministic
    /// runtime the delivery also goes to its trace (the real runtime pays one test of a
    /// flag that never changes).
    pub(crate) fn push(self: &Arc<Self>, env: Envelope<G>) -> Result<(), Envelope<G>> {
        if self.traced {
            return self.push_traced(env);
        }
        if self.mailbox.push(env)? {
            self.header.rt().pool.schedule(self.clone());
        }
        Ok(())
    }

    /// `push` on a deterministic runtime: the delivery, then its record in the trace.
    #[cold]
    #[inline(never)]
    fn push_traced(self: &Arc<Self>, env: Envelope<G>) -> Result<(), Envelope<G>> {
        let kind = kind_of(&env);
        let schedule = self.mailbox.push(env)?;
        if let Some(driver) = self.header.rt().pool.sim() {
            driver.trace_deliver(self.header.pid(), kind);
        }
        if schedule {
            self.header.rt().pool.schedule(self.clone());
        }
        Ok(())
    }

    /// Queues `envs` in order under one lock of the mailbox and schedules the process at
    /// most once (a batch of [`Cell::push`]es, for a sender that has many messages at
    /// hand). `Err(envs)`: the process is dead; nothing was queued.
    pub(crate) fn push_all(self: &Arc<Self>, envs: Vec<Envelope<G>>) -> Result<(), Vec<Envelope<G>>> {
        let kinds: Vec<crate::sim::MessageKind> = if self.traced {
            envs.iter().map(kind_of).collect()
        } else {
            Vec::new()
        };
        let schedule = self.mailbox.push_all(envs)?;
        if self.traced {
            if let Some(driver) = self.header.rt().pool.sim() {
                for kind in kinds {
                    driver.trace_deliver(self.header.pid(), kind);
                }
            }
        }
        if schedule {
            self.header.rt().pool.schedule(self.clone());
        }
        Ok(())
    }

    /// On a deterministic runtime, tells its trace that the process's slot is freed.
    fn forget_traced(&self) {
        if let Some(driver) = self.header.rt().pool.sim() {
            driver.forget(self.header.pid());
        }
    }

    /// Drops a queued `Down` of `monitor` (demonitor with flush, S33).
    pub(crate) fn flush_down(&self, local: &mut Local<G>, monitor: crate::MonitorRef) {
        let removed = self.mailbox.remove_where(
            &mut local.batch,
            |m| matches!(m, Envelope::Sys(sys) if matches!(&**sys, SysMsg::Down(d) if d.monitor == monitor)),
        );
        drop(removed);
    }

    /// Registers the calls and stop requests of a batch the runner just took from the
    /// inbox with the process (one lock for the batch), so that its death fails them at
    /// once, as it fails the inbox's, even while a handler still runs and the batch waits
    /// behind it. If the process is already exiting, they stay unregistered: the runner
    /// fails them itself, at once, since it finds the process dead at its next pop.
    fn hold_batch(&self, batch: &mut VecDeque<Envelope<G>>) {
        let mut held = self.header.held_calls();
        for env in batch.iter_mut() {
            let (slot, key): (Arc<dyn crate::reply::Abort>, &mut usize) = match env {
                Envelope::Call(_, slot, key) => (slot.clone(), key),
                Envelope::Stop(stop) => (stop.1.clone(), &mut stop.2),
                Envelope::Request(r) => match held.hold(r.clone().as_abort()) {
                    Some(k) => {
                        r.set_key(k);
                        continue;
                    }
                    None => return,
                },
                _ => continue,
            };
            match held.hold(slot) {
                Some(k) => *key = k,
                None => return,
            }
        }
    }

    /// Number of queued messages, seen from outside (see `Mailbox::len`).
    pub(crate) fn queue_len(&self) -> usize {
        self.mailbox.len()
    }

    /// Number of queued messages, exactly, for the runner.
    pub(crate) fn queue_len_exact(&self, local: &Local<G>) -> usize {
        self.mailbox.len_with(&local.batch)
    }

    fn handle(self: &Arc<Self>, runner: &mut Runner<G>, env: Result<ContinueFn<G>, Envelope<G>>) -> Outcome {
        let Runner { state, local } = runner;
        let Some(st) = state.as_mut() else {
            return Outcome::Continue;
        };
        // The common case first, on a path of its own: a plain message for `handle_info`
        // (one match on the envelope instead of three; docs/performance.md, session 5).
        let env = match env {
            Err(Envelope::Info(m)) => {
                self.disarm_timeout(local);
                self.header.set_callback(Callback::Info);
                let mut ctx = Context::new(self, local);
                return match catch(|| try_flow(st.try_handle_info(m, &mut ctx))) {
                    Ok(outcome) => outcome,
                    Err(msg) => self.crashed("handle_info", &msg),
                };
            }
            env => env,
        };
        let what: &'static str;
        match &env {
            // Not an arrival: a cancelled timer's message, or an inactivity timeout
            // (handled below, if it is the armed one).
            Err(Envelope::Timer(id, _)) if local.timer_key(*id).is_none() => {}
            Err(Envelope::Timed(core, _)) if !core.is_live() => {}
            Err(Envelope::Timeout(_)) => {}
            // Not a message either: a debugger's look at the state.
            Err(Envelope::Sys(sys)) if matches!(**sys, SysMsg::GetState(_)) => {}
            _ => self.disarm_timeout(local),
        }
        self.header.set_callback(match &env {
            Ok(_) => Callback::Continue,
            Err(Envelope::Info(_)) => Callback::Info,
            Err(Envelope::Timer(..) | Envelope::Timed(..)) => Callback::Timer,
            Err(Envelope::Call(..)) => Callback::Call,
            Err(Envelope::Request(_)) => Callback::Request,
            Err(Envelope::Cast(_)) => Callback::Cast,
            Err(Envelope::Stop(_)) => Callback::Stop,
            Err(Envelope::Timeout(_)) => Callback::Timeout,
            Err(Envelope::Sys(sys)) => match &**sys {
                SysMsg::Exit { .. } => Callback::Exit,
                SysMsg::Down(_) => Callback::Down,
                SysMsg::GetState(_) => Callback::GetState,
            },
        });
        let mut ctx = Context::new(self, local);
        let result = match env {
            Ok(f) => {
                what = "a continuation";
                catch(|| flow(f(st, &mut ctx)))
            }
            Err(Envelope::Info(m)) => {
                what = "handle_info";
                catch(|| try_flow(st.try_handle_info(m, &mut ctx)))
            }
            Err(Envelope::Timer(id, m)) => {
                if ctx.local_mut().remove_timer(id).is_none() {
                    drop_quietly(m, "a cancelled timer's message");
                    return Outcome::Continue;
                }
                what = "handle_info (timer)";
                catch(|| try_flow(st.try_handle_info(m, &mut ctx)))
            }
            Err(Envelope::Timed(core, m)) => {
                if !core.claim() {
                    drop_quietly(m, "a cancelled timer's message");
                    return Outcome::Continue;
                }
                what = "handle_info (timer)";
                catch(|| try_flow(st.try_handle_info(m, &mut ctx)))
            }
            Err(Envelope::Call(req, slot, held)) => {
                what = "handle_call";
                let key = if held == NOT_HELD {
                    self.header.held_calls().hold(slot.clone())
                } else {
                    Some(held)
                };
                let Some(key) = key else {
                    let reason = self.header.exit_reason().unwrap_or(ExitReason::NoProc);
                    slot.resolve(Err(CallError::Exited(reason)));
                    drop_quietly(req, "a call request");
                    return Outcome::Continue;
                };
                let reply_to = ReplyTo::new(slot, self.header.clone(), key);
                let given = reply_to.clone();
                let result = catch(|| {
                    st.try_handle_call(req, given, &mut ctx)
                        .unwrap_or_else(CallFlow::StopNoReply)
                });
                // The runtime's own copy of the handle outlives the exit, so a caller whose
                // server stops without replying gets the exit reason, not `NoReply`.
                return match result {
                    Ok(CallFlow::Reply(r)) => {
                        // A reply the caller gave up on is dropped here: its `Drop` is user code.
                        let _ = catch(|| reply_to.reply(r));
                        Outcome::Continue
                    }
                    Ok(CallFlow::NoReply) => Outcome::Continue,
                    Ok(CallFlow::Stop(reason, r)) => Outcome::Stop(
                        reason,
                        Some(Box::new(move || {
                            reply_to.reply(r);
                        })),
                    ),
                    Ok(CallFlow::StopNoReply(reason)) => {
                        ctx.local_mut().extra().hold = Some(Box::new(reply_to));
                        Outcome::Stop(reason, None)
                    }
                    Err(msg) => {
                        ctx.local_mut().extra().hold = Some(Box::new(reply_to));
                        let reason = ExitReason::panic(&msg);
                        self.crash_report(what, &reason);
                        Outcome::Stop(reason, None)
                    }
                };
            }
            Err(Envelope::Request(r)) => {
                let held = r.key();
                let key = if held == NOT_HELD {
                    self.header.held_calls().hold(r.clone().as_abort())
                } else {
                    Some(held)
                };
                let Some(key) = key else {
                    let reason = self.header.exit_reason().unwrap_or(ExitReason::NoProc);
                    r.abort(CallError::Exited(reason));
                    r.discard();
                    return Outcome::Continue;
                };
                return match r.handle(st, &self.header, key, &mut ctx) {
                    Handled::Continue => Outcome::Continue,
                    Handled::Stop(reason, reply) => Outcome::Stop(reason, reply),
                    Handled::StopHolding(reason, reply_to) => {
                        ctx.local_mut().extra().hold = Some(reply_to);
                        Outcome::Stop(reason, None)
                    }
                    Handled::Panicked(msg, reply_to) => {
                        ctx.local_mut().extra().hold = Some(reply_to);
                        let reason = ExitReason::panic(&msg);
                        self.crash_report("handle_request", &reason);
                        Outcome::Stop(reason, None)
                    }
                };
            }
            Err(Envelope::Cast(c)) => {
                what = "handle_cast";
                catch(|| flow(c.handle(st, &mut ctx)))
            }
            Err(Envelope::Stop(stop)) => {
                let (reason, slot, held) = *stop;
                if held != NOT_HELD {
                    // From here on it is a stop waiter, answered when the process is gone.
                    self.header.forget_call(held);
                }
                what = "a stop request";
                ctx.local_mut().extra().stop_waiters.push((slot, reason.clone()));
                catch(|| flow(st.handle_stop(reason, &mut ctx)))
            }
            Err(Envelope::Timeout(seq)) => {
                let armed = ctx
                    .local_mut()
                    .extra
                    .as_mut()
                    .and_then(|e| e.timeout.take_if(|(s, _)| *s == seq));
                if armed.is_none() {
                    return Outcome::Continue;
                }
                what = "handle_timeout";
                catch(|| flow(st.handle_timeout(&mut ctx)))
            }
            Err(Envelope::Sys(sys)) => match *sys {
                SysMsg::Exit { from, reason } if ctx.is_parent(from) => {
                    // OTP's gen_server loop handles its parent's exit itself: an override
                    // of `handle_exit` cannot make the server ignore its shutdown.
                    what = "handle_stop (the parent's exit signal)";
                    catch(|| flow(st.handle_stop(reason, &mut ctx)))
                }
                SysMsg::Exit { from, reason } => {
                    what = "handle_exit";
                    catch(|| flow(st.handle_exit(from, reason, &mut ctx)))
                }
                SysMsg::Down(down) => {
                    what = "handle_down";
                    catch(|| flow(st.handle_down(down, &mut ctx)))
                }
                SysMsg::GetState(slot) => {
                    // `&self` on the runner's thread: never concurrent with a handler. A
                    // panic in the user's formatting is answered, and the server goes on.
                    let st: &G = st;
                    let formatted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| st.format_state()))
                        .unwrap_or_else(|p| Some(format!("<format_state panicked: {}>", crate::panic::message(&*p))));
                    slot.resolve(Ok(formatted));
                    return Outcome::Continue;
                }
            },
        };
        match result {
            Ok(outcome) => outcome,
            Err(msg) => self.crashed(what, &msg),
        }
    }

    /// A callback panicked with `msg`: reports it, and the process stops with the panic.
    #[cold]
    fn crashed(&self, what: &'static str, msg: &str) -> Outcome {
        let reason = ExitReason::panic(msg);
        self.crash_report(what, &reason);
        Outcome::Stop(reason, None)
    }

    /// Cancels the armed inactivity timeout, if any: a message arrived (S9).
    fn disarm_timeout(&self, local: &mut Local<G>) {
        if let Some(extra) = local.extra.as_mut() {
            if let Some((_, Some(key))) = extra.timeout.take() {
                self.header.rt().timers.cancel(key);
            }
        }
    }

    /// Arms the inactivity timeout the callback just run asked for, if any (S9). A zero
    /// timeout fires at once (through the mailbox, so a message that arrives meanwhile
    /// still cancels it) unless a message or a continuation is already waiting.
    fn arm_timeout(self: &Arc<Self>, local: &mut Local<G>) {
        let Some(after) = local.extra.as_mut().and_then(|e| e.timeout_req.take()) else {
            return;
        };
        if after == Duration::MAX {
            return;
        }
        if after.is_zero() && (local.has_continues() || self.mailbox.len_with(&local.batch) > 0) {
            return;
        }
        let extra = local.extra();
        extra.timeout_seq += 1;
        let seq = extra.timeout_seq;
        if after.is_zero() {
            extra.timeout = Some((seq, None));
            let _ = self.push(Envelope::Timeout(seq));
        } else {
            let cell = Arc::clone(self);
            let key = self.header.rt().timers.insert(
                after,
                Box::new(move |_| {
                    let _ = cell.push(Envelope::Timeout(seq));
                }),
            );
            extra.timeout = Some((seq, Some(key)));
        }
    }

    fn crash_report(&self, what: &str, reason: &ExitReason) {
        let site = crate::panic::take_site();
        let to = match self.header.rt().crash_reports {
            CrashReports::Off => return,
            CrashReports::Auto if log::max_level() == log::LevelFilter::Off => CrashReports::Stderr,
            CrashReports::Auto => CrashReports::Log,
            other => other,
        };
        if to == CrashReports::Log && !log::log_enabled!(log::Level::Error) {
            // Routed to `log`, which would drop it: not formatted at all (formatting it
            // was a sixth of a crash-and-restart's instructions, docs/performance.md).
            return;
        }
        // The name's `describe` and the reason's `Display` are user code: caught, like
        // every callback, so that a panic there cannot escape the runner.
        let report = catch(|| {
            let mut text = format!(
                "GenServer {} of type {} terminating while running {} ({}): {}",
                self.header.display_name(),
                self.header.type_name(),
                what,
                Process::callback(self),
                reason
            );
            if let Some(site) = &site {
                text.push_str(&format!("\n  panicked at {}", site.location));
                if let Some(bt) = &site.backtrace {
                    text.push_str(&format!("\n  backtrace:\n{bt}"));
                }
            }
            text
        })
        .unwrap_or_else(|msg| {
            format!(
                "GenServer {} of type {} terminating while running {} (its crash report panicked: {msg})",
                self.header.pid(),
                self.header.type_name(),
                what
            )
        });
        if to == CrashReports::Stderr {
            eprintln!("[arbor crash report] {report}");
        } else {
            log::error!("{report}");
        }
    }

    /// Runs `terminate` (unless already dead), then `after`, then dies and finalizes.
    fn exit(self: &Arc<Self>, runner: &mut Runner<G>, mut reason: ExitReason, after: Option<Box<dyn FnOnce()>>) {
        if self.header.is_alive() {
            if let Some(st) = runner.state.as_mut() {
                self.header.set_callback(Callback::Terminate);
                let mut ctx = Context::new(self, &mut runner.local);
                if let Err(msg) = catch(|| st.terminate(&reason, &mut ctx)) {
                    let panic = ExitReason::panic(&msg);
                    self.crash_report("terminate", &panic);
                    reason = panic;
                }
            }
            if !reason.is_clean() && log::log_enabled!(log::Level::Debug) {
                if let Ok(text) = catch(|| format!("{} exits: {}", self.header.display_name(), reason)) {
                    log::debug!("{text}");
                }
            }
            if let Some(after) = after {
                let _ = catch(after);
            }
            Arc::clone(self).die(reason);
        }
        self.finalize(runner);
    }

    /// Drops the state, cancels timers, answers stop waiters, frees the table slot.
    fn finalize(&self, runner: &mut Runner<G>) {
        if runner.local.finalized {
            return;
        }
        runner.local.finalized = true;
        if let Some(state) = runner.state.take() {
            drop_quietly(state, "a server's state");
        }
        let reason = self.header.exit_reason().unwrap_or(ExitReason::NoProc);
        for env in std::mem::take(&mut runner.local.batch) {
            abort_envelope(env, &reason);
        }
        let rt = self.header.rt();
        if let Some(extra) = runner.local.extra.take() {
            let Extra {
                continues,
                timers,
                stop_waiters,
                hold,
                timeout,
                ..
            } = *extra;
            for key in timers.into_values() {
                rt.timers.cancel(key);
            }
            if let Some((_, Some(key))) = timeout {
                rt.timers.cancel(key);
            }
            drop(hold);
            drop_quietly(continues, "pending continuations");
            // As OTP's `proc_lib:stop`: the stop succeeds if the process exited with the
            // reason asked for; otherwise (its `terminate` panicked, or it chose another
            // reason) the caller gets the reason it exited with.
            for (w, asked) in stop_waiters {
                if reason == asked {
                    w.resolve(Ok(()));
                } else {
                    w.resolve(Err(CallError::Exited(reason.clone())));
                }
            }
        }
        rt.table.remove(self.header.pid());
        self.forget_traced();
    }
}

/// What kind of message an envelope carries, for a deterministic runtime's trace.
fn kind_of<G: GenServer>(env: &Envelope<G>) -> crate::sim::MessageKind {
    use crate::sim::MessageKind as K;
    match env {
        Envelope::Info(_) => K::Info,
        Envelope::Timer(..) | Envelope::Timed(..) => K::Timer,
        Envelope::Call(..) => K::Call,
        Envelope::Stop(_) => K::Stop,
        Envelope::Sys(sys) => match &**sys {
            SysMsg::Exit { .. } => K::Exit,
            SysMsg::Down(_) => K::Down,
            SysMsg::GetState(_) => K::GetState,
        },
        Envelope::Timeout(_) => K::Timeout,
        Envelope::Request(_) => K::Request,
        Envelope::Cast(_) => K::Cast,
    }
}

/// A `try_` callback's result: an error is a stop with that reason.
fn try_flow(f: Result<Flow, ExitReason>) -> Outcome {
    flow(f.unwrap_or_else(Flow::Stop))
}

fn flow(f: Flow) -> Outcome {
    match f {
        Flow::Continue => Outcome::Continue,
        Flow::Stop(r) => Outcome::Stop(r, None),
    }
}

/// Fails or drops a message the process will never handle.
fn abort_envelope<G: GenServer>(env: Envelope<G>, reason: &ExitReason) {
    match env {
        Envelope::Call(req, slot, _) => {
            slot.resolve(Err(CallError::Exited(reason.clone())));
            drop_quietly(req, "a call request");
        }
        Envelope::Stop(stop) => {
            let (_, slot, _) = *stop;
            slot.resolve(Err(CallError::Exited(reason.clone())));
        }
        Envelope::Sys(sys) if matches!(*sys, SysMsg::GetState(_)) => {
            if let SysMsg::GetState(slot) = *sys {
                slot.resolve(Err(CallError::Exited(reason.clone())));
            }
        }
        Envelope::Request(r) => {
            r.abort(CallError::Exited(reason.clone()));
            r.discard();
        }
        other => drop_quietly(other, "a message"),
    }
}

impl<G: GenServer> Process for Cell<G> {
    fn header(&self) -> &Arc<Header> {
        &self.header
    }

    fn die(self: Arc<Self>, reason: ExitReason) {
        if !self.header.begin_exit(&reason) {
            return;
        }
        if let Some(driver) = self.header.rt().pool.sim() {
            driver.trace_exit(self.header.pid(), &reason);
        }
        let (queue, schedule) = self.mailbox.close().unwrap_or_default();
        self.header.release_names(&reason);
        for env in queue {
            abort_envelope(env, &reason);
        }
        self.header.announce(&reason);
        if schedule {
            let rt = Arc::clone(self.header.rt());
            rt.pool.schedule(self);
        }
    }

    fn deliver(self: Arc<Self>, msg: SysMsg) -> bool {
        self.push(Envelope::Sys(Box::new(msg))).is_ok()
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn queue_len(&self) -> usize {
        self.mailbox.len()
    }

    fn memory_estimate(&self, queued: usize) -> usize {
        // Two allocations (the cell and the header, each behind an `Arc`: two counters),
        // the state inline in the cell, one envelope per waiting message.
        std::mem::size_of::<Cell<G>>()
            + std::mem::size_of::<Header>()
            + 4 * std::mem::size_of::<usize>()
            + queued * std::mem::size_of::<Envelope<G>>()
    }

    fn is_running(&self) -> bool {
        self.runner.is_locked()
    }

    fn callback(&self) -> String {
        let t = std::any::type_name::<G>();
        match self.header.callback() {
            Callback::None => "nothing".to_string(),
            Callback::Init => format!("init({})", std::any::type_name::<G::Args>()),
            Callback::Info => format!("handle_info({})", std::any::type_name::<G::Info>()),
            Callback::Timer => format!("handle_info({}, from a timer)", std::any::type_name::<G::Info>()),
            Callback::Call => format!("handle_call({})", std::any::type_name::<G::Call>()),
            Callback::Stop => format!("handle_stop (in {t})"),
            Callback::Timeout => format!("handle_timeout (in {t})"),
            Callback::Exit => format!("handle_exit (in {t})"),
            Callback::Down => format!("handle_down (in {t})"),
            Callback::Continue => format!("a continuation (in {t})"),
            Callback::Terminate => format!("terminate (in {t})"),
            Callback::GetState => format!("format_state (in {t})"),
            Callback::Request => format!("handle_request (in {t})"),
            Callback::Cast => format!("handle_cast (in {t})"),
        }
    }
}

/// A process's identity for the watchdog: its serial, and its runtime and slot packed.
fn task_id(h: &Header) -> (u64, u64) {
    let pid = h.pid();
    (pid.serial(), ((pid.rt() as u64) << 32) | pid.index() as u64)
}

impl<G: GenServer> Runnable for Cell<G> {
    fn id(&self) -> (u64, u64) {
        task_id(&self.header)
    }

    fn run(self: Arc<Self>) {
        // Every callback is caught where it runs. What is left (a panic in a message's
        // `Drop`, say) must not leave a zombie: a process that looks alive but that no
        // worker will ever run or finalize again. A guard notes this process while such a
        // panic unwinds; the worker catches it and calls `recover`, which ends the process.
        // A guard, not a `catch_unwind` here: that cost ping-pong about 7% of its
        // instructions (docs/performance.md).
        struct Escape<'a, G: GenServer>(&'a Arc<Cell<G>>);
        impl<G: GenServer> Drop for Escape<'_, G> {
            fn drop(&mut self) {
                crate::scheduler::note_escape(Arc::clone(self.0) as crate::scheduler::Task);
            }
        }
        let escape = Escape(&self);
        let more = self.run_slice();
        std::mem::forget(escape);
        if more {
            let rt = Arc::clone(self.header.rt());
            rt.pool.requeue(self);
        }
    }

    fn recover(self: Arc<Self>, payload: Box<dyn std::any::Any + Send>) {
        let reason = ExitReason::panic(crate::panic::message(&*payload));
        log::error!(
            "arbor: a panic escaped the runner of {} ({}); the process exits: {reason}",
            self.header.pid(),
            self.header.type_name()
        );
        Arc::clone(&self).die(reason);
        let mut runner = self.runner.lock();
        self.finalize(&mut runner);
    }
}

impl<G: GenServer> Cell<G> {
    /// Runs up to [`BUDGET`] messages; true if the process must be re-queued.
    fn run_slice(self: &Arc<Self>) -> bool {
        let mut runner = self.runner.lock();
        let guard = CurrentGuard::enter(self);
        // Read once: the cell's first cache line is shared with the mailbox's inbox lock,
        // which senders keep taking while this runs.
        let (header, mailbox) = (&*self.header, &self.mailbox);
        // Messages handled in this run: added to the header's counter once, as the run ends.
        let mut handled = 0;
        for _ in 0..BUDGET {
            let work = match runner.local.pop_continue() {
                Some(f) => Ok(f),
                None => match mailbox.pop(&mut runner.local.batch) {
                    Pop::Msg(m) => Err(m),
                    Pop::Refilled(m) => {
                        self.hold_batch(&mut runner.local.batch);
                        Err(m)
                    }
                    Pop::Empty => {
                        mailbox.set_batch_len(0);
                        header.add_handled(handled);
                        return false;
                    }
                    Pop::Closed => {
                        header.add_handled(handled);
                        self.finalize(&mut runner);
                        return false;
                    }
                },
            };
            if !header.is_alive() {
                // Died between the reason being set and the mailbox closing, or while
                // this message waited in the runner's batch.
                if let Err(env) = work {
                    abort_envelope(env, &header.exit_reason().unwrap_or(ExitReason::NoProc));
                }
                continue;
            }
            handled += 1;
            match self.handle(&mut runner, work) {
                Outcome::Continue => {
                    if runner.local.extra.is_some() {
                        self.arm_timeout(&mut runner.local);
                    }
                }
                Outcome::Stop(reason, after) => {
                    header.add_handled(handled);
                    self.exit(&mut runner, reason, after);
                    return false;
                }
            }
        }
        drop(guard);
        header.add_handled(handled);
        mailbox.set_batch_len(runner.local.batch.len());
        let more = runner.local.has_continues() || !runner.local.batch.is_empty();
        drop(runner);
        self.mailbox.yield_now(more)
    }
}

/// Starts a `G` (S1–S7): allocates the pid, claims the name, links, runs `init`.
pub(crate) fn start<G: GenServer>(args: G::Args, opts: StartOpts, link: bool) -> Result<ServerRef<G>, StartError> {
    let caller = super::current();
    let rt = match (&opts.runtime, &caller) {
        (Some(h), _) => Arc::clone(h.shared()),
        (None, Some(c)) => Arc::clone(c.header().rt()),
        (None, None) => crate::runtime::implicit_runtime().ok_or(StartError::NoRuntime)?,
    };
    if rt.is_shutting_down() {
        return Err(StartError::ShuttingDown);
    }
    let linked_caller = match &caller {
        Some(c) if link && Arc::ptr_eq(c.header().rt(), &rt) => Some(Arc::clone(c)),
        _ => None,
    };
    let parent = match &linked_caller {
        Some(c) => c.header().pid(),
        None => Pid::runtime(rt.id()),
    };
    let cell: Arc<Cell<G>> = rt.table.insert(|pid| Arc::new(Cell::new(pid, parent, Arc::clone(&rt))));
    let pid = cell.header.pid();
    if let Some(driver) = rt.pool.sim() {
        driver.born(&cell.header);
    }
    if rt.is_shutting_down() {
        // Shutdown began after the check above and may have taken its list of roots
        // before this process was in the table: it never runs.
        vanish(&cell, None);
        return Err(StartError::ShuttingDown);
    }
    if opts.timeout.is_none() && INIT_DEPTH.with(|d| d.get()) >= MAX_NESTED_INITS {
        // `init` would run on this thread, nested too deep in other `init`s.
        vanish(&cell, None);
        return Err(StartError::NestedTooDeep(MAX_NESTED_INITS));
    }
    // Link before anything else: a caller that is already exiting (killed while the
    // handler calling `start_link` still runs) has told its links already, so a child
    // linked to it now would never hear of its exit. Such a start fails before `init`.
    // A caller that begins its exit after this point signals the child like any link.
    if let Some(c) = &linked_caller {
        if let Err(reason) = super::bonds::link_new_child(cell.header.bonds(), c.header().bonds()) {
            vanish(&cell, None);
            return Err(StartError::CallerExited(reason));
        }
    }
    if let Some(name) = opts.name {
        let registered = match catch(|| name.register(pid)) {
            Ok(r) => r,
            Err(msg) => {
                // It may have claimed the name before it panicked: give it back.
                let _ = catch(|| name.unregister(pid));
                Err(NameError::Unavailable(format!("the name's register panicked: {msg}")))
            }
        };
        if let Err(e) = registered {
            // Never ran: no one can know of it yet, so it vanishes without notice.
            vanish(&cell, linked_caller.as_deref());
            return Err(match e {
                NameError::Taken(holder) => StartError::AlreadyStarted(holder),
                NameError::Unavailable(why) => StartError::NameUnavailable(why),
            });
        }
        cell.header.set_name(name);
    }
    match opts.timeout {
        None => {
            let mut runner = cell.runner.lock();
            let _wait = match &caller {
                Some(c) => c.header().begin_wait(pid).ok(),
                None => None,
            };
            let result = run_init(&cell, &mut runner, args);
            finish_start(&cell, runner, result, linked_caller.as_deref())
        }
        Some(timeout) => start_on_pool(cell, args, timeout, caller, linked_caller),
    }
}

/// Removes a process that never ran (its start failed before `init`) without notice:
/// no one can know of it yet. Its link to `linked_caller`, if any, goes first.
fn vanish<G: GenServer>(cell: &Arc<Cell<G>>, linked_caller: Option<&dyn Process>) {
    let pid = cell.header.pid();
    if let Some(c) = linked_caller {
        c.header().remove_link(pid);
    }
    let mut runner = cell.runner.lock();
    cell.header.remove_links();
    cell.header.begin_exit(&ExitReason::Normal);
    cell.mailbox.close();
    cell.header.announce(&ExitReason::Normal);
    runner.local.finalized = true;
    drop(runner);
    cell.header.rt().table.remove(pid);
    cell.forget_traced();
}

fn run_init<G: GenServer>(cell: &Arc<Cell<G>>, runner: &mut Runner<G>, args: G::Args) -> Result<G, ExitReason> {
    if let Some(reason) = cell.header.exit_reason() {
        // Killed before `init` could run (its start timed out, or its linked caller
        // exited): a dead process runs no code.
        drop_quietly(args, "a start's arguments");
        return Err(reason);
    }
    let _current = CurrentGuard::enter(cell);
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            INIT_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
    INIT_DEPTH.with(|d| d.set(d.get() + 1));
    let _depth = Depth;
    cell.header.set_callback(Callback::Init);
    let mut ctx = Context::new(cell, &mut runner.local);
    match catch(|| G::init(args, &mut ctx)) {
        Ok(r) => r,
        Err(msg) => {
            let reason = ExitReason::panic(&msg);
            cell.crash_report("init", &reason);
            Err(reason)
        }
    }
}

fn finish_start<G: GenServer>(
    cell: &Arc<Cell<G>>,
    mut runner: crate::sync::MutexGuard<'_, Runner<G>>,
    result: Result<G, ExitReason>,
    linked_caller: Option<&dyn Process>,
) -> Result<ServerRef<G>, StartError> {
    match result {
        Ok(state) => {
            runner.state = Some(state);
            if let Some(reason) = cell.header.exit_reason() {
                // Killed while in init (its name was already visible).
                cell.finalize(&mut runner);
                return Err(StartError::Init(reason));
            }
            cell.arm_timeout(&mut runner.local);
            let more = runner.local.has_continues();
            drop(runner);
            if cell.mailbox.yield_now(more) {
                cell.header.rt().pool.schedule(cell.clone());
            }
            Ok(ServerRef::from_cell(cell.clone()))
        }
        Err(reason) => {
            // The caller gets the error as a return value, not also as an exit signal.
            if let Some(c) = linked_caller {
                c.header().remove_link(cell.header.pid());
                cell.header.remove_link(c.header().pid());
            }
            let err = match &reason {
                ExitReason::Ignore => StartError::Ignore,
                r => StartError::Init(r.clone()),
            };
            Arc::clone(cell).die(reason);
            cell.finalize(&mut runner);
            Err(err)
        }
    }
}

/// S6: `init` runs on a worker; the starter waits until the deadline, then kills it.
fn start_on_pool<G: GenServer>(
    cell: Arc<Cell<G>>,
    args: G::Args,
    timeout: Duration,
    caller: Option<Arc<dyn Process>>,
    linked_caller: Option<Arc<dyn Process>>,
) -> Result<ServerRef<G>, StartError> {
    let slot: Arc<Slot<Result<ServerRef<G>, StartError>>> = Arc::new(Slot::new());
    let caller_pid = linked_caller.as_ref().map(|c| c.header().pid());
    let task = InitTask {
        cell: cell.clone(),
        args: Mutex::new(Some(args)),
        slot: slot.clone(),
        linked_caller,
    };
    let _wait = match &caller {
        Some(c) => c.header().begin_wait(cell.header.pid()).ok(),
        None => None,
    };
    cell.header.rt().pool.inject(Arc::new(task));
    match cell.header.rt().wait(&slot, timeout) {
        Ok(started) => started,
        Err(_) => {
            // As OTP's `proc_lib`: unlink, then kill, so that the caller gets the
            // timeout as a return value and not also the child's exit signal. `init`,
            // if it has not begun, never runs.
            if let (Some(c), Some(caller)) = (caller_pid, &caller) {
                caller.header().remove_link(cell.header.pid());
                cell.header.remove_link(c);
            }
            Arc::clone(&cell).die(ExitReason::Killed);
            Err(StartError::Timeout)
        }
    }
}

struct InitTask<G: GenServer> {
    cell: Arc<Cell<G>>,
    args: Mutex<Option<G::Args>>,
    slot: Arc<Slot<Result<ServerRef<G>, StartError>>>,
    linked_caller: Option<Arc<dyn Process>>,
}

impl<G: GenServer> Runnable for InitTask<G> {
    fn id(&self) -> (u64, u64) {
        task_id(&self.cell.header)
    }

    fn run(self: Arc<Self>) {
        // `init` is caught where it runs; this catches the rest (a panic in the
        // arguments' or the state's `Drop`), which the worker does not.
        let this = Arc::clone(&self);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let Some(args) = this.args.lock().take() else { return };
            let runner = this.cell.runner.lock();
            let mut runner = runner;
            let result = run_init(&this.cell, &mut runner, args);
            let started = finish_start(&this.cell, runner, result, this.linked_caller.as_deref());
            let server = started.as_ref().ok().cloned();
            if !this.slot.resolve(Ok(started)) {
                // The starter gave up at its deadline (and killed the process): make sure.
                if let Some(server) = server {
                    server.kill();
                }
            }
        }));
        if let Err(payload) = outcome {
            let reason = ExitReason::panic(crate::panic::message(&*payload));
            log::error!(
                "arbor: a panic escaped the start of {} ({}); the process exits: {reason}",
                self.cell.header.pid(),
                self.cell.header.type_name()
            );
            Arc::clone(&self.cell).die(reason.clone());
            let mut runner = self.cell.runner.lock();
            self.cell.finalize(&mut runner);
            drop(runner);
            let _ = self.slot.resolve(Ok(Err(StartError::Init(reason))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Envelope;
    use crate::{Context, ExitReason, GenServer};

    struct Small;
    impl GenServer for Small {
        type Args = ();
        type Info = u64;
        type Call = ();
        type Reply = u64;
        fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Small)
        }
    }

    /// Every queued message costs one envelope: rare variants are boxed so that a `u64`
    /// message takes 24 bytes (tag, timer key, payload), not the 48 of an inline `Down`.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_envelope_of_a_small_message_is_three_words() {
        assert_eq!(std::mem::size_of::<Envelope<Small>>(), 24);
    }
}
