//! The soak's processes: `Worker` (named, supervised, does everything a client asks, checks
//! what it can see from inside) and `Helper` (an unsupervised process a worker starts with
//! `start_link`, living exactly as long as its parent).
//!
//! Invariants checked here, inside the processes:
//! - per-sender FIFO: a worker remembers the last sequence number handled from each sender;
//! - no `Down` after `demonitor`: a worker remembers the monitors it dropped;
//! - no cancelled timer's message handled: the timer's token carries a flag set at cancel
//!   (see `ledger.rs`);
//! - a call made by a worker to another worker returns within its timeout + 100 ms.

use crate::ledger::{Kind, Ledger, Token};
use arbor::prelude::*;
use arbor::registry::Registry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How late a call may return past its timeout (the bound).
pub(crate) const CALL_SLACK: Duration = Duration::from_millis(100);

/// What every worker shares with the run.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) names: Registry<String>,
}

/// A worker's start arguments.
#[derive(Clone)]
pub(crate) struct Args {
    pub(crate) shared: Shared,
    pub(crate) key: String,
    /// `init` sleeps this long: widens the window in which chaos meets a start.
    pub(crate) init_delay: Duration,
    /// Whether this worker may start helpers (on-demand workers only: the static ones live
    /// on after chaos, and their helpers would too).
    pub(crate) helpers: bool,
}

/// Messages to `handle_info`.
pub(crate) enum Info {
    /// A counted message: `seq` is the sender's sequence number.
    Count { sender: u64, seq: u64, token: Token },
    /// Arm a timer whose message carries `token`; cancel it at once if `cancel`.
    Arm {
        delay: Duration,
        cancel: bool,
        token: Token,
    },
    /// The message of a timer armed by `Arm`.
    Timer { id: u64, token: Token },
    /// Cancel the oldest pending timer.
    CancelOne,
    /// Answer the oldest deferred call.
    ReplyDeferred,
    /// Monitor the process holding `key`, or drop the oldest monitor if `None`.
    Monitor(Option<String>),
    /// Link to the process holding `key`, or drop the oldest link if `None`.
    Link(Option<String>),
    /// Start a helper linked to this worker.
    SpawnHelper,
    /// Panic in `handle_info`.
    Panic,
    /// Stop with this reason.
    Stop(ExitReason),
}

/// Requests to `handle_call`.
pub(crate) enum Req {
    /// Reply `nonce` now.
    Echo(u64),
    /// Reply `nonce` after `delay`, through a kept `ReplyTo`.
    Deferred(u64, Duration),
    /// Panic in the handler.
    Panic,
    /// Stop mid-call: with the reply `nonce` (`Some`) or without one.
    Stop(ExitReason, Option<u64>),
    /// Call the worker holding `key` (with half of `timeout`), then reply `nonce`.
    Forward {
        nonce: u64,
        key: String,
        timeout: Duration,
        depth: u8,
    },
}

/// A named, supervised worker.
pub(crate) struct Worker {
    args: Args,
    /// Last sequence number handled, per sender.
    last_seq: HashMap<u64, u64>,
    /// Pending timers: id, ref, cancel flag.
    timers: Vec<(u64, TimerRef, Arc<AtomicBool>)>,
    next_timer: u64,
    monitors: Vec<(Pid, MonitorRef)>,
    demonitored: HashSet<MonitorRef>,
    links: Vec<Pid>,
    deferred: Vec<(ReplyTo<u64>, u64)>,
}

impl Worker {
    fn lookup(&self, key: &str) -> Option<Pid> {
        self.args.shared.names.whereis(key)
    }
}

impl GenServer for Worker {
    type Args = Args;
    type Info = Info;
    type Call = Req;
    type Reply = u64;

    fn init(args: Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        if !args.init_delay.is_zero() {
            std::thread::sleep(args.init_delay);
        }
        args.shared.ledger.count("worker inits");
        Ok(Worker {
            args,
            last_seq: HashMap::new(),
            timers: Vec::new(),
            next_timer: 0,
            monitors: Vec::new(),
            demonitored: HashSet::new(),
            links: Vec::new(),
            deferred: Vec::new(),
        })
    }

    fn handle_info(&mut self, msg: Info, ctx: &mut Context<'_, Self>) -> Flow {
        let ledger = self.args.shared.ledger.clone();
        match msg {
            Info::Count { sender, seq, token } => {
                token.consume(ctx.pid());
                let last = self.last_seq.entry(sender).or_insert(0);
                if seq <= *last {
                    let (me, prev) = (ctx.pid(), *last);
                    ledger.violation(Kind::FifoBroken, || {
                        format!("{me} handled seq {seq} from sender {sender} after seq {prev}")
                    });
                }
                *last = seq.max(*last);
            }
            Info::Arm {
                delay,
                cancel,
                mut token,
            } => {
                let id = self.next_timer;
                self.next_timer += 1;
                let flag = Arc::new(AtomicBool::new(false));
                token.on_timer(flag.clone());
                let tref = ctx.send_after(delay, Info::Timer { id, token });
                if cancel {
                    flag.store(true, Ordering::SeqCst);
                    ctx.cancel_timer(tref);
                    ledger.count("timers cancelled");
                } else {
                    self.timers.push((id, tref, flag));
                }
                ledger.count("timers armed");
            }
            Info::Timer { id, token } => {
                token.consume(ctx.pid());
                self.timers.retain(|t| t.0 != id);
                ledger.count("timer messages handled");
            }
            Info::CancelOne => {
                if !self.timers.is_empty() {
                    let (_, tref, flag) = self.timers.remove(0);
                    flag.store(true, Ordering::SeqCst);
                    ctx.cancel_timer(tref);
                    ledger.count("timers cancelled");
                }
            }
            Info::ReplyDeferred => {
                if !self.deferred.is_empty() {
                    let (to, nonce) = self.deferred.remove(0);
                    to.reply(nonce);
                }
            }
            Info::Monitor(Some(key)) => {
                if let Some(pid) = self.lookup(&key) {
                    if pid != ctx.pid() {
                        let m = ctx.monitor(pid);
                        self.monitors.push((pid, m));
                        ledger.count("monitors made");
                    }
                }
            }
            Info::Monitor(None) => {
                if !self.monitors.is_empty() {
                    let (pid, m) = self.monitors.remove(0);
                    ctx.demonitor(pid, m);
                    self.demonitored.insert(m);
                    ledger.count("monitors dropped");
                }
            }
            Info::Link(Some(key)) => {
                if let Some(pid) = self.lookup(&key) {
                    if pid != ctx.pid() && ctx.link(pid).is_ok() {
                        self.links.push(pid);
                        ledger.count("links made");
                    }
                }
            }
            Info::Link(None) => {
                if !self.links.is_empty() {
                    let pid = self.links.remove(0);
                    ctx.unlink(pid);
                    ledger.count("links dropped");
                }
            }
            Info::SpawnHelper => {
                if self.args.helpers {
                    match Helper::start_link(ledger.clone(), StartOpts::new()) {
                        Ok(_) => ledger.count("helpers started"),
                        Err(_) => ledger.count("helper starts failed"),
                    }
                }
            }
            Info::Panic => panic!("soak: a handler panics on purpose"),
            Info::Stop(reason) => return Flow::Stop(reason),
        }
        Flow::Continue
    }

    fn handle_call(&mut self, req: Req, from: ReplyTo<u64>, ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        match req {
            Req::Echo(nonce) => CallFlow::Reply(nonce),
            Req::Deferred(nonce, delay) => {
                self.deferred.push((from, nonce));
                ctx.send_after(delay, Info::ReplyDeferred);
                CallFlow::NoReply
            }
            Req::Panic => panic!("soak: a call handler panics on purpose"),
            Req::Stop(reason, Some(nonce)) => CallFlow::Stop(reason, nonce),
            Req::Stop(reason, None) => CallFlow::StopNoReply(reason),
            Req::Forward {
                nonce,
                key,
                timeout,
                depth,
            } => {
                let ledger = &self.args.shared.ledger;
                let inner = timeout / 2;
                if let Some(target) = self.lookup(&key).and_then(ServerRef::<Worker>::from_pid) {
                    let req = if depth > 0 {
                        Req::Forward {
                            nonce,
                            key: self.args.key.clone(),
                            timeout: inner,
                            depth: depth - 1,
                        }
                    } else {
                        Req::Echo(nonce)
                    };
                    let clock = CallClock::start();
                    let got = target.call_timeout(req, inner);
                    check_call(ledger, "nested", &clock, inner, nonce, &got);
                }
                CallFlow::Reply(nonce)
            }
        }
    }

    fn handle_down(&mut self, down: Down, ctx: &mut Context<'_, Self>) -> Flow {
        let ledger = &self.args.shared.ledger;
        ledger.count("downs received");
        if self.demonitored.contains(&down.monitor) {
            let me = ctx.pid();
            ledger.violation(Kind::DownAfterDemonitor, || {
                format!("{me} got Down({}) for {} after demonitor", down.reason, down.pid)
            });
        }
        self.monitors.retain(|(_, m)| *m != down.monitor);
        Flow::Continue
    }
}

/// When a call began, and how long its thread had waited for a CPU by then.
pub(crate) struct CallClock {
    began: Instant,
    queued_ns: Option<u64>,
}

impl CallClock {
    /// Read on the thread that makes the call, just before it.
    pub(crate) fn start() -> CallClock {
        CallClock {
            queued_ns: crate::sys::queued_ns(),
            began: Instant::now(),
        }
    }

    /// How long this thread waited for a CPU since `start`.
    fn queued(&self) -> Duration {
        match (self.queued_ns, crate::sys::queued_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            _ => Duration::ZERO,
        }
    }
}

/// Checks one call's outcome: on time, and the reply its own. Errors are typed by
/// construction; each kind is counted.
///
/// On time means within `timeout + CALL_SLACK`, not counting the time the calling thread
/// spent runnable but waiting for a CPU (the host's, not arbor's, delay: on a machine of
/// two cores shared by many, it reaches hundreds of milliseconds). Calls late only by that
/// much are counted apart and shown in the report.
pub(crate) fn check_call(
    ledger: &Ledger,
    who: &'static str,
    clock: &CallClock,
    timeout: Duration,
    nonce: u64,
    got: &Result<u64, CallError>,
) {
    let took = clock.began.elapsed();
    if took > timeout + CALL_SLACK {
        let queued = clock.queued();
        if took <= timeout + CALL_SLACK + queued {
            ledger.count("late calls explained by waiting for a CPU");
        } else {
            ledger.violation(Kind::LateCall, || {
                format!("{who} call with timeout {timeout:?} returned after {took:?} ({queued:?} of it waiting for a CPU): {got:?}")
            });
        }
    }
    match got {
        Ok(n) if *n != nonce => {
            ledger.violation(Kind::WrongReply, || format!("{who} call for {nonce} got the reply {n}"))
        }
        Ok(_) => ledger.count("calls answered"),
        Err(CallError::Timeout) => ledger.count("calls timed out"),
        Err(CallError::NoProc) => ledger.count("calls NoProc"),
        Err(CallError::Exited(_)) => ledger.count("calls Exited"),
        Err(CallError::Deadlock) => ledger.count("calls Deadlock"),
        Err(CallError::NoReply) => ledger.count("calls NoReply"),
        Err(CallError::CallingSelf) => ledger.count("calls CallingSelf"),
        Err(_) => ledger.count("calls other error"),
    }
}

/// An unsupervised process started with `start_link` by a worker. It monitors its parent
/// and stops when the parent exits for any reason (a link alone would spare it on a
/// `Normal` exit), so once its parent is gone it must be gone too: one left behind is an
/// orphan.
pub(crate) struct Helper {
    parent: Pid,
}

impl GenServer for Helper {
    type Args = Arc<Ledger>;
    type Info = ();
    type Call = ();
    type Reply = ();

    fn init(_ledger: Arc<Ledger>, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        let parent = ctx.parent();
        ctx.monitor(parent);
        Ok(Helper { parent })
    }

    fn handle_down(&mut self, down: Down, _ctx: &mut Context<'_, Self>) -> Flow {
        if down.pid == self.parent {
            Flow::Stop(ExitReason::Normal)
        } else {
            Flow::Continue
        }
    }
}
