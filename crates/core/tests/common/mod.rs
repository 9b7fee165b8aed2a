//! Shared test helpers: a recording server, and waiting on events with a deadline.
#![allow(dead_code, unreachable_pub)]

use arbor_core::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any test waits for an event before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds or the deadline passes; returns whether it held.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::yield_now();
        std::thread::sleep(Duration::from_micros(200));
    }
    cond()
}

/// A runtime for one test.
pub fn rt(threads: usize) -> Runtime {
    Runtime::builder().worker_threads(threads).build().unwrap()
}

/// A shared event log.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    pub fn get(&self) -> Vec<String> {
        self.0.lock().clone()
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.lock().iter().any(|e| e == s)
    }
    pub fn wait_for(&self, s: &str) -> bool {
        wait_until(|| self.contains(s))
    }
}

/// What a `Probe` does in `init`.
#[derive(Clone)]
pub enum InitMode {
    Ok,
    Fail(ExitReason),
    Panic,
    Ignore,
    Trap,
    SendSelfThenContinue,
    Sleep(Duration),
}

/// Requests a `Probe` understands.
pub enum Req {
    Echo(u64),
    Sleep(Duration, u64),
    Stop(ExitReason, u64),
    StopNoReply(ExitReason),
    Panic,
    Defer,
    ReplyDeferred(u64),
    DropDeferred,
    Call(ServerRef<Probe>, Box<Req>),
    Link(Pid),
    Monitor(Pid),
    Demonitor(Pid, MonitorRef),
    Exit(Pid, ExitReason),
    Trap(bool),
    SendAfter(Duration, String),
    Cancel(usize),
    Read(usize),
    SendSelf(String),
    SleepThenCancel(Duration, usize),
    ArmMany(usize, Duration),
    SendSelfN(usize),
}

/// Replies from a `Probe`.
#[derive(Debug, PartialEq)]
pub enum Rep {
    N(u64),
    Called(Result<Box<Rep>, CallError>),
    Linked(Result<(), NoProc>),
    Mon(MonitorRef),
    Bool(bool),
    Timer(usize),
    Left(Option<Duration>),
    Unit,
}

/// A server that records what happens to it.
pub struct Probe {
    pub log: Log,
    pub deferred: Option<ReplyTo<Rep>>,
    pub timers: Vec<TimerRef>,
    pub name: String,
}

impl GenServer for Probe {
    type Args = (String, Log, InitMode);
    type Info = String;
    type Call = Req;
    type Reply = Rep;

    fn init((name, log, mode): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        log.push(format!("{name}:init"));
        let me = Probe {
            log,
            deferred: None,
            timers: Vec::new(),
            name,
        };
        match mode {
            InitMode::Ok => Ok(me),
            InitMode::Fail(r) => Err(r),
            InitMode::Panic => panic!("boom in init"),
            InitMode::Ignore => Err(ExitReason::Ignore),
            InitMode::Trap => {
                ctx.trap_exits(true);
                Ok(me)
            }
            InitMode::SendSelfThenContinue => {
                ctx.send_self("queued".to_string());
                ctx.continue_with(|s: &mut Probe, _ctx| {
                    s.log.push(format!("{}:continue", s.name));
                    Flow::Continue
                });
                Ok(me)
            }
            InitMode::Sleep(d) => {
                std::thread::sleep(d);
                Ok(me)
            }
        }
    }

    fn handle_info(&mut self, msg: String, _ctx: &mut Context<'_, Self>) -> Flow {
        self.log.push(format!("{}:info:{msg}", self.name));
        match msg.as_str() {
            "stop" => Flow::Stop(ExitReason::Normal),
            "crash" => Flow::Stop(ExitReason::custom("crash")),
            "panic" => panic!("boom in handle_info"),
            _ => Flow::Continue,
        }
    }

    fn handle_call(&mut self, req: Req, from: ReplyTo<Rep>, ctx: &mut Context<'_, Self>) -> CallFlow<Rep> {
        match req {
            Req::Echo(n) => CallFlow::Reply(Rep::N(n)),
            Req::Sleep(d, n) => {
                self.log.push(format!("{}:sleeping", self.name));
                std::thread::sleep(d);
                CallFlow::Reply(Rep::N(n))
            }
            Req::Stop(r, n) => CallFlow::Stop(r, Rep::N(n)),
            Req::StopNoReply(r) => CallFlow::StopNoReply(r),
            Req::Panic => panic!("boom in handle_call"),
            Req::Defer => {
                self.log.push(format!("{}:deferred", self.name));
                self.deferred = Some(from);
                CallFlow::NoReply
            }
            Req::ReplyDeferred(n) => {
                let ok = self.deferred.take().map(|f| f.reply(Rep::N(n))).unwrap_or(false);
                CallFlow::Reply(Rep::Bool(ok))
            }
            Req::DropDeferred => {
                self.deferred = None;
                CallFlow::Reply(Rep::Unit)
            }
            Req::Call(target, inner) => CallFlow::Reply(Rep::Called(target.call(*inner).map(Box::new))),
            Req::Link(pid) => CallFlow::Reply(Rep::Linked(ctx.link(pid))),
            Req::Monitor(pid) => CallFlow::Reply(Rep::Mon(ctx.monitor(pid))),
            Req::Demonitor(pid, m) => CallFlow::Reply(Rep::Bool(ctx.demonitor(pid, m))),
            Req::Exit(pid, r) => {
                ctx.exit(pid, r);
                CallFlow::Reply(Rep::Unit)
            }
            Req::Trap(on) => CallFlow::Reply(Rep::Bool(ctx.trap_exits(on))),
            Req::SendAfter(d, m) => {
                let t = ctx.send_after(d, m);
                self.timers.push(t);
                CallFlow::Reply(Rep::Timer(self.timers.len() - 1))
            }
            Req::Cancel(i) => CallFlow::Reply(Rep::Left(ctx.cancel_timer(self.timers[i]))),
            Req::Read(i) => CallFlow::Reply(Rep::Left(ctx.read_timer(self.timers[i]))),
            Req::SleepThenCancel(d, i) => {
                // Waits (up to `d`, and at least `d` has no meaning here) until the timer's
                // message has reached the mailbox, then cancels: an event, not a guess.
                let deadline = std::time::Instant::now() + d.max(DEADLINE);
                while ctx.mailbox_len() == 0 && std::time::Instant::now() < deadline {
                    std::thread::yield_now();
                }
                CallFlow::Reply(Rep::Left(ctx.cancel_timer(self.timers[i])))
            }
            Req::ArmMany(n, d) => {
                for i in 0..n {
                    let t = ctx.send_after(d, format!("many{i}"));
                    self.timers.push(t);
                }
                CallFlow::Reply(Rep::Unit)
            }
            Req::SendSelf(m) => {
                ctx.send_self(m);
                CallFlow::Reply(Rep::Unit)
            }
            Req::SendSelfN(n) => {
                for i in 0..n {
                    ctx.send_self(format!("n{i}"));
                }
                CallFlow::Reply(Rep::Unit)
            }
        }
    }

    fn handle_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        // Never the parent's: the runtime routes that to `handle_stop`.
        let who = if ctx.is_parent(from) { "parent" } else { "other" };
        self.log.push(format!("{}:exit:{who}:{reason}", self.name));
        Flow::Continue
    }

    fn handle_stop(&mut self, reason: ExitReason, _ctx: &mut Context<'_, Self>) -> Flow {
        self.log.push(format!("{}:stop:{reason}", self.name));
        Flow::Stop(reason)
    }

    fn handle_down(&mut self, down: Down, _ctx: &mut Context<'_, Self>) -> Flow {
        self.log.push(format!("{}:down:{}", self.name, down.reason));
        Flow::Continue
    }

    fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Context<'_, Self>) {
        self.log.push(format!("{}:terminate:{reason}", self.name));
    }
}

/// Starts a probe on `rt`.
pub fn probe(rt: &Runtime, name: &str, log: &Log, mode: InitMode) -> Result<ServerRef<Probe>, StartError> {
    rt.start::<Probe>((name.to_string(), log.clone(), mode))
}

/// A server that starts a linked child in `init` and reports it.
pub struct Parent;

impl GenServer for Parent {
    type Args = (Log, InitMode, bool);
    type Info = ();
    type Call = ();
    type Reply = Pid;
    fn init((log, child_mode, trap): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        if trap {
            ctx.trap_exits(true);
        }
        let child = Probe::start_link(("child".into(), log.clone(), child_mode), StartOpts::new())
            .map_err(ExitReason::custom)?;
        log.push(format!("child:{}", child.pid()));
        Ok(Parent)
    }
    fn handle_exit(&mut self, _from: Pid, reason: ExitReason, _ctx: &mut Context<'_, Self>) -> Flow {
        let _ = reason;
        Flow::Continue
    }
}

/// What a `Jobs` server runs for a call: anything a handler can do.
pub type Job = Box<dyn FnOnce(&mut Jobs, ReplyTo<String>, &mut Context<'_, Jobs>) -> Option<String> + Send>;

/// A server that runs the closures it is called with (`None`: no reply now).
#[derive(Default)]
pub struct Jobs {
    /// Reply handles a job kept, to answer (or drop) later.
    pub held: Vec<ReplyTo<String>>,
}

impl GenServer for Jobs {
    type Args = ();
    type Info = ();
    type Call = Job;
    type Reply = String;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Jobs::default())
    }

    fn handle_call(&mut self, job: Job, from: ReplyTo<String>, ctx: &mut Context<'_, Self>) -> CallFlow<String> {
        match job(self, from, ctx) {
            Some(r) => CallFlow::Reply(r),
            None => CallFlow::NoReply,
        }
    }
}

/// Boxes a closure as a `Jobs` call.
pub fn job(
    f: impl FnOnce(&mut Jobs, ReplyTo<String>, &mut Context<'_, Jobs>) -> Option<String> + Send + 'static,
) -> Job {
    Box::new(f)
}

/// A `Jobs` call the server holds unanswered (its `ReplyTo` kept in `held`).
pub fn hold() -> Job {
    job(|s, from, _| {
        s.held.push(from);
        None
    })
}

/// Adds up the numbers it is sent; a call answers the sum.
pub struct Summer(pub u64);

impl GenServer for Summer {
    type Args = ();
    type Info = u64;
    type Call = ();
    type Reply = u64;
    fn init((): (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Summer(0))
    }
    fn handle_info(&mut self, n: u64, _: &mut Context<'_, Self>) -> Flow {
        self.0 += n;
        Flow::Continue
    }
    fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.0)
    }
}
