//! Shared test helpers: a scriptable worker (`Probe`) that counts its starts and
//! terminations, an event log, and waiting on a condition with a deadline.
#![allow(dead_code, unreachable_pub)]

use arbor_core::*;
use arbor_supervisor::ChildSpec;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a test waits for an event before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds or `deadline` passes; returns whether it held.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `wait_until` with the default deadline from now.
pub fn eventually(cond: impl FnMut() -> bool) -> bool {
    wait_until(Instant::now() + DEADLINE, cond)
}

/// A runtime for one test.
pub fn rt() -> Runtime {
    Runtime::builder().worker_threads(2).build().unwrap()
}

/// A shared, ordered event log.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    pub fn get(&self) -> Vec<String> {
        self.0.lock().clone()
    }
    pub fn count(&self, s: &str) -> usize {
        self.0.lock().iter().filter(|e| *e == s).count()
    }
    /// Entries that start with `prefix`, in order.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .cloned()
            .collect()
    }
    pub fn clear(&self) {
        self.0.lock().clear()
    }
}

/// Counts of a probe's lives.
#[derive(Default)]
pub struct Counters {
    pub started: AtomicUsize,
    /// Incremented when `terminate` begins (before its sleep, if any).
    pub terminating: AtomicUsize,
    pub terminated: AtomicUsize,
}

impl Counters {
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
    pub fn terminated(&self) -> usize {
        self.terminated.load(Ordering::SeqCst)
    }
    pub fn terminating(&self) -> usize {
        self.terminating.load(Ordering::SeqCst)
    }
}

/// What one `init` of a probe does.
#[derive(Clone, Debug)]
pub enum Init {
    Ok,
    Fail(ExitReason),
    /// Sleeps, then fails: keeps a failing restart loop slow enough to observe.
    FailAfter(Duration, ExitReason),
    Ignore,
    Panic,
}

/// A probe's configuration; clone it into a spec.
#[derive(Clone)]
pub struct Probe {
    pub id: String,
    pub log: Log,
    pub counters: Arc<Counters>,
    /// Each `init` takes the next entry; `Init::Ok` once the script is empty.
    pub script: Arc<Mutex<VecDeque<Init>>>,
    pub trap: bool,
    pub terminate_sleep: Duration,
}

impl Probe {
    pub fn new(id: &str, log: &Log) -> Probe {
        Probe {
            id: id.to_string(),
            log: log.clone(),
            counters: Arc::new(Counters::default()),
            script: Arc::new(Mutex::new(VecDeque::new())),
            trap: true,
            terminate_sleep: Duration::ZERO,
        }
    }
    pub fn script(self, steps: impl IntoIterator<Item = Init>) -> Probe {
        self.script.lock().extend(steps);
        self
    }
    pub fn trap(mut self, on: bool) -> Probe {
        self.trap = on;
        self
    }
    pub fn terminate_sleep(mut self, d: Duration) -> Probe {
        self.terminate_sleep = d;
        self
    }
    /// A spec that starts this probe linked to the supervisor.
    pub fn spec(&self) -> ChildSpec {
        ChildSpec::server::<ProbeServer>(self.id.clone(), self.clone())
    }
}

/// What a probe is told to do.
pub enum Cmd {
    Stop(ExitReason),
    Panic,
}

pub struct ProbeServer {
    cfg: Probe,
}

impl GenServer for ProbeServer {
    type Args = Probe;
    type Info = Cmd;
    type Call = ();
    type Reply = Pid;

    fn init(cfg: Probe, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        let step = cfg.script.lock().pop_front().unwrap_or(Init::Ok);
        cfg.counters.started.fetch_add(1, Ordering::SeqCst);
        match step {
            Init::Ok => {}
            Init::Fail(r) => return Err(r),
            Init::FailAfter(d, r) => {
                std::thread::sleep(d);
                return Err(r);
            }
            Init::Ignore => return Err(ExitReason::Ignore),
            Init::Panic => panic!("probe {} init panics", cfg.id),
        }
        ctx.trap_exits(cfg.trap);
        cfg.log.push(format!("start:{}", cfg.id));
        Ok(ProbeServer { cfg })
    }

    fn handle_info(&mut self, cmd: Cmd, _ctx: &mut Context<'_, Self>) -> Flow {
        match cmd {
            Cmd::Stop(r) => Flow::Stop(r),
            Cmd::Panic => panic!("probe {} told to panic", self.cfg.id),
        }
    }

    fn handle_call(&mut self, _: (), _: ReplyTo<Pid>, ctx: &mut Context<'_, Self>) -> CallFlow<Pid> {
        CallFlow::Reply(ctx.pid())
    }

    fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Context<'_, Self>) {
        self.cfg.counters.terminating.fetch_add(1, Ordering::SeqCst);
        if !self.cfg.terminate_sleep.is_zero() {
            std::thread::sleep(self.cfg.terminate_sleep);
        }
        self.cfg.counters.terminated.fetch_add(1, Ordering::SeqCst);
        self.cfg.log.push(format!("terminate:{}:{:?}", self.cfg.id, reason));
    }
}

/// Makes the probe `pid` exit with `reason` (a kill for `Killed`).
pub fn exit_probe(pid: Pid, reason: ExitReason) {
    if reason == ExitReason::Killed {
        arbor_core::kill(pid);
    } else if let Some(p) = ServerRef::<ProbeServer>::from_pid(pid) {
        let _ = p.send(Cmd::Stop(reason));
    }
}

/// Logs `down:{label}:{reason:?}` when `pid` exits.
pub fn watch(rt: &RuntimeHandle, pid: Pid, label: &str, log: &Log) {
    let (label, log) = (label.to_string(), log.clone());
    rt.monitor(pid, move |_pid: Pid, reason: &ExitReason| {
        log.push(format!("down:{label}:{reason:?}"))
    })
    .expect("watching a live pid");
}
