//! The deterministic runtime (`arbor_core::sim`): the same seed makes the same choices
//! (compared by trace), time is virtual, calls work inside handlers without a thread,
//! cycles still answer `Deadlock`, and the helpers drive the clock.

mod common;

use arbor_core::sim::{Faults, SimConfig, SimRuntime, TraceEvent};
use arbor_core::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shared event log.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

/// Forwards each call to the next server in a chain (from inside `handle_call`), or
/// answers its depth at the end.
struct Link {
    next: Option<ServerRef<Link>>,
    depth: u64,
}

impl GenServer for Link {
    type Args = (Option<ServerRef<Link>>, u64);
    type Info = ();
    type Call = ();
    type Reply = u64;
    fn init((next, depth): Self::Args, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Link { next, depth })
    }
    fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        match &self.next {
            Some(next) => CallFlow::Reply(next.call(()).expect("the next link answers") + 1),
            None => CallFlow::Reply(self.depth),
        }
    }
}

#[test]
fn a_chain_of_64_calls_inside_handlers_completes_without_a_thread() {
    let sim = SimRuntime::new(1);
    let mut next = None;
    for depth in 0..64 {
        next = Some(sim.start::<Link>((next, depth)).unwrap());
    }
    let head = next.unwrap();
    assert_eq!(head.call(()), Ok(63), "63 hops from the head to the end");
    assert_eq!(sim.worker_count(), 0, "a deterministic runtime has no worker threads");
    assert_eq!(sim.elapsed(), Duration::ZERO, "no time passes without a timer");
}

/// Answers `Get` later: holds the reply handle until a `Release` call comes.
#[derive(Default)]
struct Deferred {
    held: Vec<ReplyTo<u64>>,
}

enum DReq {
    Get,
    Release(u64),
    Sleep(Duration),
}

impl GenServer for Deferred {
    type Args = ();
    type Info = ();
    type Call = DReq;
    type Reply = u64;
    fn init((): (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Deferred::default())
    }
    fn handle_call(&mut self, req: DReq, from: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        match req {
            DReq::Get => {
                self.held.push(from);
                CallFlow::NoReply
            }
            DReq::Release(v) => {
                let n = self.held.len() as u64;
                for h in self.held.drain(..) {
                    h.reply(v);
                }
                CallFlow::Reply(n)
            }
            DReq::Sleep(d) => {
                // A handler that "works" for `d`: virtual time, through a timer of its own
                // is not possible inside one handler; this just holds the reply.
                let _ = d;
                self.held.push(from);
                CallFlow::NoReply
            }
        }
    }
}

/// Calls a `Deferred` from its handler on `Go`, and logs what came back.
struct Asker {
    target: ServerRef<Deferred>,
    log: Log,
    timeout: Duration,
}

impl GenServer for Asker {
    type Args = (ServerRef<Deferred>, Log, Duration);
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((target, log, timeout): Self::Args, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Asker { target, log, timeout })
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        let t0 = ctx.now();
        let got = self.target.call_timeout(DReq::Get, self.timeout);
        self.log
            .push(format!("{got:?} after {:?}", ctx.now().duration_since(t0)));
        Flow::Continue
    }
}

/// Releases a `Deferred` after a delay.
struct Releaser {
    target: ServerRef<Deferred>,
}

impl GenServer for Releaser {
    type Args = (ServerRef<Deferred>, Duration);
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((target, after): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_after(after, ());
        Ok(Releaser { target })
    }
    fn handle_info(&mut self, (): (), _: &mut Context<'_, Self>) -> Flow {
        self.target.call(DReq::Release(7)).expect("release");
        Flow::Stop(ExitReason::Normal)
    }
}

#[test]
fn a_deferred_reply_reaches_a_caller_waiting_inside_a_handler_in_virtual_time() {
    let sim = SimRuntime::new(2);
    let log = Log::default();
    let deferred = sim.start::<Deferred>(()).unwrap();
    let asker = sim
        .start::<Asker>((deferred.clone(), log.clone(), Duration::from_secs(60)))
        .unwrap();
    asker.send(()).unwrap();
    sim.start::<Releaser>((deferred.clone(), Duration::from_secs(30)))
        .unwrap();
    assert!(sim.run_until(Duration::from_secs(120), || !log.get().is_empty()));
    assert_eq!(log.get(), vec!["Ok(7) after 30s".to_string()]);
    assert_eq!(sim.elapsed(), Duration::from_secs(30));
}

#[test]
fn a_call_timeout_inside_a_handler_passes_in_virtual_time() {
    let sim = SimRuntime::new(3);
    let log = Log::default();
    let deferred = sim.start::<Deferred>(()).unwrap();
    let asker = sim
        .start::<Asker>((deferred.clone(), log.clone(), Duration::from_secs(5)))
        .unwrap();
    let real = Instant::now();
    asker.send(()).unwrap();
    assert!(sim.run_until(Duration::from_secs(10), || !log.get().is_empty()));
    assert_eq!(log.get(), vec!["Err(Timeout) after 5s".to_string()]);
    assert_eq!(sim.elapsed(), Duration::from_secs(5));
    println!("a 5 s call timeout took {:?} of real time", real.elapsed());
}

#[test]
fn a_call_from_outside_times_out_in_virtual_time() {
    let sim = SimRuntime::new(4);
    let deferred = sim.start::<Deferred>(()).unwrap();
    assert_eq!(
        deferred.call_timeout(DReq::Get, Duration::from_secs(600)),
        Err(CallError::Timeout)
    );
    assert_eq!(sim.elapsed(), Duration::from_secs(600));
}

#[test]
fn a_wait_that_nothing_can_ever_satisfy_is_deadlock_not_a_hang() {
    let sim = SimRuntime::new(5);
    let deferred = sim.start::<Deferred>(()).unwrap();
    assert_eq!(
        deferred.call_timeout(DReq::Get, Duration::MAX),
        Err(CallError::Deadlock)
    );
    // The server is fine: it still answers (and still held the abandoned call).
    assert_eq!(deferred.call(DReq::Release(1)), Ok(1));
}

/// Calls its peer from `handle_call` (A calls B, B calls A: a cycle).
struct Cyclic {
    peer: Arc<Mutex<Option<ServerRef<Cyclic>>>>,
}

impl GenServer for Cyclic {
    type Args = Arc<Mutex<Option<ServerRef<Cyclic>>>>;
    type Info = ();
    type Call = bool;
    type Reply = Result<(), CallError>;
    fn init(peer: Self::Args, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Cyclic { peer })
    }
    fn handle_call(
        &mut self,
        forward: bool,
        _: ReplyTo<Self::Reply>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<Self::Reply> {
        if !forward {
            return CallFlow::Reply(Ok(()));
        }
        let peer = self.peer.lock().clone().expect("peer set");
        CallFlow::Reply(peer.call(true).and_then(|r| r))
    }
}

#[test]
fn a_call_cycle_still_answers_deadlock() {
    let sim = SimRuntime::new(6);
    let a_peer = Arc::new(Mutex::new(None));
    let b_peer = Arc::new(Mutex::new(None));
    let a = sim.start::<Cyclic>(a_peer.clone()).unwrap();
    let b = sim.start::<Cyclic>(b_peer.clone()).unwrap();
    *a_peer.lock() = Some(b.clone());
    *b_peer.lock() = Some(a.clone());
    assert_eq!(a.call(true), Ok(Err(CallError::Deadlock)));
    assert_eq!(sim.elapsed(), Duration::ZERO, "at once, not at a timeout");
}

/// Ticks every `period` with `send_after`, `n` times, logging virtual times.
struct Ticker {
    period: Duration,
    left: u64,
    log: Log,
    start: Instant,
}

impl GenServer for Ticker {
    type Args = (Duration, u64, Log);
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((period, left, log): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_after(period, ());
        Ok(Ticker {
            period,
            left,
            log,
            start: ctx.now(),
        })
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        // `arbor_core::now()` in a process reads its runtime's clock, as `ctx.now()` does.
        self.log
            .push(format!("{:?}", arbor_core::now().duration_since(self.start)));
        self.left -= 1;
        if self.left == 0 {
            return Flow::Stop(ExitReason::Normal);
        }
        ctx.send_after(self.period, ());
        Flow::Continue
    }
}

#[test]
fn ten_minutes_of_timers_pass_in_virtual_time() {
    let sim = SimRuntime::new(7);
    let log = Log::default();
    let real = Instant::now();
    let t = sim.start::<Ticker>((Duration::from_secs(60), 10, log.clone())).unwrap();
    assert_eq!(t.wait_exit(Duration::from_secs(3600)), Some(ExitReason::Normal));
    let expected: Vec<String> = (1..=10).map(|m| format!("{:?}", Duration::from_secs(60 * m))).collect();
    assert_eq!(log.get(), expected);
    assert_eq!(sim.elapsed(), Duration::from_secs(600));
    println!("ten minutes of timers took {:?} of real time", real.elapsed());
}

#[test]
fn advance_fires_what_is_due_and_stops_at_the_target() {
    let sim = SimRuntime::new(8);
    let log = Log::default();
    sim.start::<Ticker>((Duration::from_millis(250), 100, log.clone()))
        .unwrap();
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.elapsed(), Duration::from_secs(1));
    assert_eq!(log.get().len(), 4, "ticks at 250, 500, 750 and 1000 ms");
    sim.advance(Duration::from_millis(100));
    assert_eq!(log.get().len(), 4);
    assert_eq!(sim.elapsed(), Duration::from_millis(1100));
    assert_eq!(sim.run_until_idle(), 0, "nothing ready between timers");
    assert!(
        !sim.run_until_quiet(Duration::from_secs(2)),
        "the ticker is still armed at the limit"
    );
    assert!(sim.run_until_quiet(Duration::from_secs(60)));
    assert_eq!(log.get().len(), 100);
    assert_eq!(sim.elapsed(), Duration::from_secs(25));
}

/// Goes idle with an inactivity timeout (S9), and logs when it fires.
struct Idle {
    log: Log,
}

impl GenServer for Idle {
    type Args = Log;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(log: Log, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.set_timeout(Duration::from_secs(90));
        Ok(Idle { log })
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        self.log.push(format!("info at {:?}", ctx.now()));
        ctx.set_timeout(Duration::from_secs(90));
        Flow::Continue
    }
    fn handle_timeout(&mut self, _: &mut Context<'_, Self>) -> Flow {
        self.log.push("timeout");
        Flow::Stop(ExitReason::Normal)
    }
}

#[test]
fn an_inactivity_timeout_uses_the_virtual_clock() {
    let sim = SimRuntime::new(9);
    let log = Log::default();
    let idle = sim.start::<Idle>(log.clone()).unwrap();
    sim.advance(Duration::from_secs(60));
    idle.send(()).unwrap(); // re-arms: 90 s from 60 s
    sim.advance(Duration::from_secs(89));
    assert!(idle.is_alive());
    assert_eq!(idle.wait_exit(Duration::from_secs(10)), Some(ExitReason::Normal));
    assert_eq!(sim.elapsed(), Duration::from_secs(150));
    assert_eq!(log.get().last().map(String::as_str), Some("timeout"));
}

/// Counts what it receives, in order.
struct Sink {
    log: Log,
}

impl GenServer for Sink {
    type Args = Log;
    type Info = (u64, u64);
    type Call = ();
    type Reply = ();
    fn init(log: Log, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Sink { log })
    }
    fn handle_info(&mut self, (from, n): (u64, u64), _: &mut Context<'_, Self>) -> Flow {
        self.log.push(format!("{from}:{n}"));
        Flow::Continue
    }
}

/// Sends `n` messages to a sink, one per run (each send re-arms itself), and calls a
/// deferred server on the way.
struct Source {
    id: u64,
    left: u64,
    sink: ServerRef<Sink>,
}

impl GenServer for Source {
    type Args = (u64, u64, ServerRef<Sink>);
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((id, left, sink): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_self(());
        Ok(Source { id, left, sink })
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        let _ = self.sink.send((self.id, self.left));
        self.left -= 1;
        if self.left == 0 {
            return Flow::Stop(ExitReason::Normal);
        }
        if self.left % 3 == 0 {
            ctx.send_after(Duration::from_millis(self.id), ());
        } else {
            ctx.send_self(());
        }
        Flow::Continue
    }
}

/// A program with interleavings to choose: four sources racing into one sink, a chain of
/// calls, deferred replies released by a timer.
fn program(sim: &SimRuntime) -> Vec<String> {
    let log = Log::default();
    let sink = sim.start::<Sink>(log.clone()).unwrap();
    for id in 1..=4 {
        sim.start::<Source>((id, 12, sink.clone())).unwrap();
    }
    let deferred = sim.start::<Deferred>(()).unwrap();
    let asks = Log::default();
    for _ in 0..3 {
        let a = sim
            .start::<Asker>((deferred.clone(), asks.clone(), Duration::from_secs(5)))
            .unwrap();
        a.send(()).unwrap();
    }
    sim.start::<Releaser>((deferred, Duration::from_millis(7))).unwrap();
    let mut next = None;
    for depth in 0..8 {
        next = Some(sim.start::<Link>((next, depth)).unwrap());
    }
    assert_eq!(next.unwrap().call(()), Ok(7));
    assert!(sim.run_until_quiet(Duration::from_secs(60)));
    let mut out = log.get();
    out.extend(asks.get());
    out
}

#[test]
fn the_same_seed_gives_the_same_trace_and_other_seeds_other_interleavings() {
    let run = |seed: u64| {
        let sim = SimRuntime::new(seed);
        let seen = program(&sim);
        (sim.trace(), sim.trace_digest(), seen)
    };
    let (trace_a, digest_a, seen_a) = run(42);
    let (trace_b, digest_b, seen_b) = run(42);
    assert!(
        trace_a.len() > 150,
        "a trace of every choice and delivery: {}",
        trace_a.len()
    );
    assert_eq!(trace_a, trace_b, "the same seed, the same trace");
    assert_eq!(digest_a, digest_b);
    assert_eq!(seen_a, seen_b);
    assert!(trace_a
        .iter()
        .any(|e| matches!(e, TraceEvent::Run { ready, .. } if *ready > 1)));
    assert!(trace_a.iter().any(|e| matches!(e, TraceEvent::Deliver { .. })));
    assert!(trace_a.iter().any(|e| matches!(e, TraceEvent::Timers { .. })));
    // Other seeds choose other interleavings (the sink sees the sources in other orders).
    let orders: std::collections::HashSet<Vec<String>> = (0..8).map(|s| run(s).2).collect();
    assert!(orders.len() > 1, "eight seeds, one interleaving");
    let digests: std::collections::HashSet<u64> = (0..8).map(|s| run(s).1).collect();
    assert!(digests.len() > 1);
}

#[test]
fn the_trace_prints_one_line_per_event() {
    let sim = SimRuntime::new(11);
    program(&sim);
    let text: Vec<String> = sim.trace().iter().map(|e| e.to_string()).collect();
    assert!(text.iter().any(|l| l.contains("spawn #1 by #0")), "{:?}", &text[..5]);
    assert!(text.iter().any(|l| l.contains("step 1: run #")));
    assert!(text.iter().any(|l| l.contains("deliver Call #0 -> #")));
    assert!(text.iter().any(|l| l.contains("timers: ")));
    assert_eq!(sim.trace_len() as usize, text.len());
}

#[test]
fn a_trace_can_be_kept_as_a_digest_only() {
    let full = SimRuntime::new(12);
    program(&full);
    let light = SimConfig::new(12).keep_trace(false).build();
    program(&light);
    assert!(light.trace().is_empty());
    assert_eq!(light.trace_digest(), full.trace_digest());
    assert_eq!(light.trace_len(), full.trace_len());
}

#[test]
fn a_call_future_resolves_under_block_on() {
    let sim = SimRuntime::new(13);
    let mut next = None;
    for depth in 0..3 {
        next = Some(sim.start::<Link>((next, depth)).unwrap());
    }
    let head = next.unwrap();
    assert_eq!(sim.block_on(head.call_async(()), Duration::from_secs(1)), Some(Ok(2)));
    let deferred = sim.start::<Deferred>(()).unwrap();
    let fut = deferred.call_timeout_async(DReq::Sleep(Duration::ZERO), Duration::from_secs(3));
    assert_eq!(
        sim.block_on(fut, Duration::from_secs(10)),
        Some(Err(CallError::Timeout))
    );
    assert_eq!(sim.elapsed(), Duration::from_secs(3));
}

/// Traps exits and takes `stop_after` of virtual time to stop: it re-arms a timer in
/// `handle_stop` instead of stopping at once.
struct Slow {
    log: Log,
}

impl GenServer for Slow {
    type Args = Log;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(log: Log, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.trap_exits(true);
        Ok(Slow { log })
    }
    fn handle_stop(&mut self, _reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        self.log.push(format!("asked to stop at {:?}", ctx.now()));
        ctx.send_after(Duration::from_secs(10), ());
        Flow::Continue
    }
    fn handle_info(&mut self, (): (), _: &mut Context<'_, Self>) -> Flow {
        self.log.push("stopping");
        Flow::Stop(ExitReason::Shutdown)
    }
}

#[test]
fn shutdown_waits_in_virtual_time_and_kills_at_the_timeout() {
    let log = Log::default();
    let sim = SimConfig::new(14).shutdown_timeout(Duration::from_secs(5)).build();
    sim.start::<Slow>(log.clone()).unwrap();
    let real = Instant::now();
    let report = sim.shutdown();
    assert_eq!(report.killed, 1, "still stopping at the 5 s timeout: killed");
    assert!(real.elapsed() < Duration::from_secs(5), "virtual, not real, seconds");
    assert_eq!(log.get().len(), 1);

    let log = Log::default();
    let sim = SimConfig::new(14).shutdown_timeout(Duration::from_secs(30)).build();
    sim.start::<Slow>(log.clone()).unwrap();
    let report = sim.shutdown();
    assert_eq!(report.killed, 0);
    assert_eq!(log.get().last().map(String::as_str), Some("stopping"));
}

/// A worker under `Keeper`, which restarts it whenever it dies (a tiny supervisor).
struct Worker;

impl GenServer for Worker {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((): (), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_after(Duration::from_millis(10), ());
        Ok(Worker)
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        ctx.send_after(Duration::from_millis(10), ());
        Flow::Continue
    }
}

struct Keeper {
    restarts: Arc<AtomicU64>,
}

impl GenServer for Keeper {
    type Args = Arc<AtomicU64>;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(restarts: Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.trap_exits(true);
        for _ in 0..5 {
            Worker::start_link((), StartOpts::new()).map_err(|_| ExitReason::custom("start"))?;
        }
        Ok(Keeper { restarts })
    }
    fn handle_exit(&mut self, _from: Pid, _reason: ExitReason, _: &mut Context<'_, Self>) -> Flow {
        self.restarts.fetch_add(1, Ordering::SeqCst);
        let _ = Worker::start_link((), StartOpts::new());
        Flow::Continue
    }
}

#[test]
fn seeded_faults_kill_and_exit_processes_and_replay_exactly() {
    let run = |seed: u64| {
        let restarts = Arc::new(AtomicU64::new(0));
        let sim = SimConfig::new(seed).crash_reports(CrashReports::Off).build();
        let keeper = sim.start::<Keeper>(restarts.clone()).unwrap();
        sim.set_faults(Some(Faults::one_in(20)));
        sim.advance(Duration::from_secs(2));
        assert!(keeper.is_alive(), "the root is spared");
        let out = (
            sim.faults_injected(),
            restarts.load(Ordering::SeqCst),
            sim.trace_digest(),
        );
        sim.set_faults(None);
        out
    };
    let (faults, restarts, digest) = run(99);
    assert!(faults > 10, "faults injected: {faults}");
    assert_eq!(
        restarts, faults,
        "every fault killed or exited a worker, which was restarted"
    );
    assert_eq!(run(99), (faults, restarts, digest), "the same seed, the same faults");
    assert_ne!(run(100).2, digest);
}

#[test]
fn the_seed_is_printed_when_a_test_fails_with_the_runtime_alive() {
    // The failing test runs in a child process (this test binary, re-run) so that its
    // standard error can be read.
    if std::env::var_os("ARBOR_SIM_FAILING_CHILD").is_some() {
        let sim = SimRuntime::new(8_017_723_391);
        sim.start::<Deferred>(()).unwrap();
        sim.advance(Duration::from_secs(1));
        panic!("a failing assertion");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_seed_is_printed_when_a_test_fails_with_the_runtime_alive",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ARBOR_SIM_FAILING_CHILD", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child's test fails");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("with seed 8017723391; replay it with SimConfig::new(8017723391) or ARBOR_SIM_SEED=8017723391"),
        "{stderr}"
    );
}

#[test]
fn from_env_takes_the_seed_to_replay() {
    // The variable is read when set (the replay), and a fresh seed is drawn when not.
    // (Set here only through the config's parser, not the process environment, which
    // other tests share.)
    let a = SimConfig::from_env().seed();
    let b = SimConfig::from_env().seed();
    if std::env::var_os(arbor_core::sim::SEED_ENV).is_none() {
        assert_ne!(a, b, "a fresh seed each time");
    } else {
        assert_eq!(a, b);
    }
}

#[test]
fn runtime_now_follows_the_virtual_clock() {
    let sim = SimRuntime::new(15);
    let t0 = sim.now();
    assert_eq!(RuntimeHandle::now(&sim), t0);
    sim.advance(Duration::from_secs(3));
    assert_eq!(sim.now() - t0, Duration::from_secs(3));
    assert!(sim.is_simulated());
    assert!(!Runtime::new().unwrap().is_simulated());
    // Inside a process, `arbor_core::now()` is its runtime's clock (what supervisors'
    // intensity windows read).
    let log = Log::default();
    let l = log.clone();
    let t = sim.start::<Ticker>((Duration::from_secs(2), 1, l)).unwrap();
    assert_eq!(t.wait_exit(Duration::from_secs(5)), Some(ExitReason::Normal));
    assert_eq!(log.get(), vec![format!("{:?}", Duration::from_secs(2))]);
    sim.advance(Duration::from_secs(3600));
    assert!(
        arbor_core::now() < sim.now(),
        "outside any process it is the real clock"
    );
}

/// Calls `target` (a `Deferred`) from its handler when told, logging the outcome and time.
struct Middle {
    target: ServerRef<Deferred>,
    log: Log,
}

impl GenServer for Middle {
    type Args = (ServerRef<Deferred>, Log);
    type Info = ();
    type Call = ();
    type Reply = u64;
    fn init((target, log): Self::Args, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Middle { target, log })
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        let got = self.target.call_timeout(DReq::Get, Duration::from_secs(60));
        self.log.push(format!("middle got {got:?} at {:?}", ctx.now()));
        Flow::Continue
    }
    fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(5)
    }
}

/// Calls `Middle` from its handler, a second after it starts.
struct Outer {
    middle: ServerRef<Middle>,
    log: Log,
}

impl GenServer for Outer {
    type Args = (ServerRef<Middle>, Log);
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((middle, log): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_after(Duration::from_secs(1), ());
        Ok(Outer { middle, log })
    }
    fn handle_info(&mut self, (): (), ctx: &mut Context<'_, Self>) -> Flow {
        let t0 = ctx.now();
        let got = self.middle.call_timeout((), Duration::from_secs(10));
        self.log.push(format!("outer got {got:?} after {:?}", ctx.now() - t0));
        Flow::Continue
    }
}

#[test]
fn a_wait_nested_above_the_process_it_needs_lasts_until_its_deadline() {
    // Middle waits (inside a handler) for a reply released at 2 s. Meanwhile, at 1 s,
    // Outer calls Middle: on the real runtime Outer would be answered at 2 s, once
    // Middle's handler returns. Here Outer's wait runs nested above Middle's on the one
    // driving thread, so Middle cannot resume before Outer's wait ends: Outer times out at
    // its deadline (10 s), then Middle resumes with its reply. Documented in testing.md
    // ("Nested waits"); deterministic, and never a hang.
    let sim = SimRuntime::new(16);
    let log = Log::default();
    let deferred = sim.start::<Deferred>(()).unwrap();
    let middle = sim.start::<Middle>((deferred.clone(), log.clone())).unwrap();
    middle.send(()).unwrap();
    sim.start::<Releaser>((deferred, Duration::from_secs(2))).unwrap();
    sim.start::<Outer>((middle, log.clone())).unwrap();
    assert!(sim.run_until(Duration::from_secs(60), || log.get().len() == 2));
    let t0 = sim.now() - sim.elapsed();
    let lines = log.get();
    assert_eq!(lines[0], "outer got Err(Timeout) after 10s");
    assert_eq!(
        lines[1],
        format!("middle got Ok(7) at {:?}", t0 + Duration::from_secs(11))
    );
}

#[test]
fn a_batch_of_sends_is_in_the_trace_one_delivery_per_message() {
    let sim = SimRuntime::new(5);
    let c = sim.start::<common::Summer>(()).unwrap();
    let infos = |sim: &SimRuntime| {
        sim.trace()
            .iter()
            .filter(|e| matches!(e, TraceEvent::Deliver { kind, .. } if format!("{kind:?}") == "Info"))
            .count()
    };
    let before = infos(&sim);
    c.send_all([1, 2, 3, 4]).unwrap();
    assert_eq!(c.call(()), Ok(10));
    assert_eq!(infos(&sim) - before, 4);
}
