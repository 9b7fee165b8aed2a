//! Shared test helpers: a process that runs closures, observers that run closures on exits,
//! and waiting on a condition with a deadline (never a fixed sleep).
#![allow(dead_code, unreachable_pub)]

use arbor_core::*;
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any test waits for an event before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds or `deadline` passes; returns whether it held.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
        std::thread::sleep(Duration::from_micros(200));
    }
    cond()
}

/// `wait_until` with the standard deadline from now.
pub fn eventually(cond: impl FnMut() -> bool) -> bool {
    wait_until(Instant::now() + DEADLINE, cond)
}

/// A runtime for one test.
pub fn rt() -> Runtime {
    Runtime::builder().worker_threads(2).build().unwrap()
}

type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

/// A process that runs the closures it is called with, inside itself (so `current_pid()` is
/// its pid): how a test makes "the calling process" do something.
pub struct Agent;

impl GenServer for Agent {
    type Args = ();
    type Info = Box<dyn FnOnce() + Send>;
    type Call = Job;
    type Reply = Box<dyn Any + Send>;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Agent)
    }

    fn handle_info(&mut self, f: Box<dyn FnOnce() + Send>, _ctx: &mut Context<'_, Self>) -> Flow {
        f();
        Flow::Continue
    }

    fn handle_call(
        &mut self,
        f: Job,
        _from: ReplyTo<Self::Reply>,
        _ctx: &mut Context<'_, Self>,
    ) -> CallFlow<Self::Reply> {
        CallFlow::Reply(f())
    }
}

/// Starts an agent on `rt`.
pub fn agent(rt: &Runtime) -> ServerRef<Agent> {
    rt.start::<Agent>(()).unwrap()
}

/// Runs `f` inside `agent` and returns its result.
pub fn exec<R: Send + 'static>(agent: &ServerRef<Agent>, f: impl FnOnce() -> R + Send + 'static) -> R {
    let reply = agent
        .call(Box::new(move || Box::new(f()) as Box<dyn Any + Send>))
        .unwrap();
    *reply.downcast::<R>().unwrap()
}

/// A server that counts how many times its `init` ran and answers calls with its pid.
pub struct Named;

impl GenServer for Named {
    type Args = Arc<AtomicUsize>;
    type Info = ();
    type Call = ();
    type Reply = Pid;

    fn init(inits: Arc<AtomicUsize>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        inits.fetch_add(1, Ordering::SeqCst);
        Ok(Named)
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<Pid>, ctx: &mut Context<'_, Self>) -> CallFlow<Pid> {
        CallFlow::Reply(ctx.pid())
    }
}

/// What a `Watcher` does when told of an exit, run inside the watcher process.
pub type OnExit = Arc<dyn Fn(Pid, ExitReason) + Send + Sync>;

/// Requests to a `Watcher`.
pub enum Watch {
    /// Monitor this pid.
    Monitor(Pid),
    /// Link to this pid (the watcher traps exits).
    Link(Pid),
}

/// A trapping process that monitors or links to others and runs a closure, inside itself,
/// when it hears of an exit (through `handle_down` or `handle_exit`).
pub struct Watcher(OnExit);

impl GenServer for Watcher {
    type Args = OnExit;
    type Info = ();
    type Call = Watch;
    type Reply = ();

    fn init(f: OnExit, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.trap_exits(true);
        Ok(Watcher(f))
    }

    fn handle_call(&mut self, w: Watch, _from: ReplyTo<()>, ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        match w {
            Watch::Monitor(pid) => {
                ctx.monitor(pid);
            }
            Watch::Link(pid) => ctx.link(pid).unwrap(),
        }
        CallFlow::Reply(())
    }

    fn handle_down(&mut self, down: Down, _ctx: &mut Context<'_, Self>) -> Flow {
        (self.0)(down.pid, down.reason);
        Flow::Continue
    }

    fn handle_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        if ctx.is_parent(from) {
            // The runtime's shutdown (or a parent's exit) stops the watcher as usual.
            return Flow::Stop(reason);
        }
        (self.0)(from, reason);
        Flow::Continue
    }
}
