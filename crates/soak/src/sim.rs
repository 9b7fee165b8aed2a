//! `arbor-soak --sim --seeds N`: the chaos soak on the deterministic runtime.
//!
//! Each seed is one short run on an `arbor::sim::SimRuntime`: a tree (root Supervisor,
//! Registry, two DynamicSupervisors of on-demand workers, a one_for_all Supervisor of three
//! permanent workers) is built, then [`OPS`] operations chosen from the seed (calls with
//! timeouts, deferred replies, calls made from inside handlers, counted sends, timers armed
//! and cancelled, starts and terminations of on-demand workers, kills, exit signals, crashes
//! and stops) run between short advances of the virtual clock, while the runtime injects
//! faults from the same seed. Then the load stops, the on-demand workers are removed, and the
//! soak checks what the real soak checks after a phase, and more exactly, since time is
//! virtual:
//!
//! - every call returns within its timeout (to the tick: no allowance for the host);
//! - a call gets its own reply or a typed error;
//! - an accepted message is handled once, or dropped only with its dead process; after
//!   shutdown, every message has ended one way or the other;
//! - per-sender FIFO; no cancelled timer's message handled; no `Down` after `demonitor`
//!   (workers monitor each other and drop monitors);
//! - a name never points at a dead process (checked after every operation: names are
//!   released before anyone learns of an exit, so no bound is needed);
//! - the tree converges to its specs; the permanent workers are back; no orphan (on-demand
//!   workers start helpers with `start_link`, which must go with them); processes
//!   and pending timers back to the baseline; shutdown kills nothing;
//! - the same seed gives the same trace (the first seeds run twice; digests compared).
//!
//! One thread, no sleeps: 10,000 seeds take seconds.

use crate::ledger::{Kind, Ledger, Token};
use crate::rng::Rng;
use arbor::prelude::*;
use arbor::sim::{Faults, SimConfig, SimRuntime};
use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Restart, Strategy, Supervisor, SupervisorOpts};
use arbor::CrashReports;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operations per seed.
pub(crate) const OPS: usize = 120;
/// DynamicSupervisors of on-demand workers.
const DYN: usize = 2;
/// Permanent workers of the one_for_all supervisor.
const STATIC_WORKERS: usize = 3;
/// On-demand worker keys.
const KEYS: usize = 8;
/// How often a worker ticks (its deferred replies are answered on ticks).
const TICK: Duration = Duration::from_millis(5);
/// Seeds run twice to check that the trace replays.
const REPLAYED: u64 = 20;

#[derive(Clone)]
struct Shared {
    ledger: Arc<Ledger>,
    names: Registry<String>,
    seed: u64,
}

/// A worker of the simulated soak.
struct SimWorker {
    shared: Shared,
    last_seq: HashMap<u64, u64>,
    deferred: Vec<(ReplyTo<u64>, u64)>,
    /// Monitors it holds, and those it dropped (a `Down` of one is a violation).
    monitors: Vec<(Pid, MonitorRef)>,
    dropped: Vec<MonitorRef>,
}

/// A helper a worker starts with `start_link`: it monitors its parent and stops when the
/// parent exits, so one alive after its parent is an orphan.
struct SimHelper;

impl GenServer for SimHelper {
    type Args = Pid;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(parent: Pid, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.monitor(parent);
        Ok(SimHelper)
    }
    fn handle_down(&mut self, _down: Down, _ctx: &mut Context<'_, Self>) -> Flow {
        Flow::Stop(ExitReason::Normal)
    }
}

enum Msg {
    Counted { sender: u64, seq: u64, token: Token },
    Timer(Token),
    Tick,
}

enum Req {
    Echo(u64),
    Defer(u64),
    Forward(Pid, u64, Duration),
    Arm { delay: Duration, cancel: bool },
    Monitor(Pid),
    Demonitor,
    Helper,
    Panic,
}

impl GenServer for SimWorker {
    type Args = Shared;
    type Info = Msg;
    type Call = Req;
    type Reply = u64;

    fn init(shared: Shared, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_after(TICK, Msg::Tick);
        Ok(SimWorker {
            shared,
            last_seq: HashMap::new(),
            deferred: Vec::new(),
            monitors: Vec::new(),
            dropped: Vec::new(),
        })
    }

    fn handle_info(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            Msg::Counted { sender, seq, token } => {
                if let Some(last) = self.last_seq.insert(sender, seq) {
                    if seq <= last {
                        let (me, s) = (ctx.pid(), self.shared.seed);
                        self.shared.ledger.violation(Kind::FifoBroken, || {
                            format!("seed {s}: {me} handled {sender}'s #{seq} after #{last}")
                        });
                    }
                }
                token.consume(ctx.pid());
            }
            Msg::Timer(token) => token.consume(ctx.pid()),
            Msg::Tick => {
                for (from, nonce) in self.deferred.drain(..) {
                    from.reply(nonce);
                }
                ctx.send_after(TICK, Msg::Tick);
            }
        }
        Flow::Continue
    }

    fn handle_call(&mut self, req: Req, from: ReplyTo<u64>, ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        match req {
            Req::Echo(n) => CallFlow::Reply(n),
            Req::Defer(n) => {
                self.deferred.push((from, n));
                CallFlow::NoReply
            }
            Req::Forward(to, n, timeout) => {
                if let Some(target) = ServerRef::<SimWorker>::from_pid(to) {
                    timed_call(&self.shared, ctx.now(), &target, Req::Echo(n), n, timeout);
                }
                CallFlow::Reply(n)
            }
            Req::Arm { delay, cancel } => {
                let mut token = Token::new(&self.shared.ledger, ctx.pid());
                let flag = Arc::new(AtomicBool::new(false));
                token.on_timer(flag.clone());
                let timer = ctx.send_after(delay, Msg::Timer(token));
                if cancel {
                    // Flagged first: the cancel drops the timer's message (and its token) at once.
                    flag.store(true, Ordering::SeqCst);
                    ctx.cancel_timer(timer);
                }
                CallFlow::Reply(0)
            }
            Req::Monitor(pid) => {
                let m = ctx.monitor(pid);
                self.monitors.push((pid, m));
                CallFlow::Reply(0)
            }
            Req::Demonitor => {
                if let Some((pid, m)) = self.monitors.pop() {
                    ctx.demonitor(pid, m);
                    self.dropped.push(m);
                }
                CallFlow::Reply(0)
            }
            Req::Helper => {
                let _ = SimHelper::start_link(ctx.pid(), StartOpts::new());
                CallFlow::Reply(0)
            }
            Req::Panic => panic!("arbor-soak: a handler that panics on purpose"),
        }
    }

    fn handle_down(&mut self, down: Down, ctx: &mut Context<'_, Self>) -> Flow {
        if self.dropped.contains(&down.monitor) {
            let (me, seed) = (ctx.pid(), self.shared.seed);
            self.shared.ledger.violation(Kind::DownAfterDemonitor, || {
                format!("seed {seed}: {me} got a Down of {} after demonitor", down.pid)
            });
        }
        self.monitors.retain(|(_, m)| *m != down.monitor);
        Flow::Continue
    }
}

/// Calls `target` with `req` (whose reply must be `nonce`) and checks the answer and its
/// time: within the timeout exactly (virtual time).
fn timed_call(shared: &Shared, t0: Instant, target: &ServerRef<SimWorker>, req: Req, nonce: u64, timeout: Duration) {
    let got = target.call_timeout(req, timeout);
    // The runtime's clock (virtual): `arbor::now()` is it only inside a process.
    let took = target.runtime().now().duration_since(t0);
    let seed = shared.seed;
    shared.ledger.count("calls");
    check_lateness(&shared.ledger, seed, timeout, took);
    match got {
        Ok(n) if n != nonce => shared.ledger.violation(Kind::WrongReply, || {
            format!("seed {seed}: a call for #{nonce} got the reply of #{n}")
        }),
        Ok(_) => shared.ledger.count("calls answered"),
        Err(CallError::Timeout) => shared.ledger.count("calls timed out"),
        Err(_) => shared.ledger.count("calls failed with a typed error"),
    }
}

/// A call that took longer than its timeout (on the virtual clock: exactly) is late.
pub(crate) fn check_lateness(ledger: &Ledger, seed: u64, timeout: Duration, took: Duration) {
    if took > timeout {
        ledger.violation(Kind::LateCall, || {
            format!("seed {seed}: a call with a {timeout:?} timeout returned after {took:?}")
        });
    }
}

fn worker_spec(shared: &Shared, key: &str, restart: Restart) -> ChildSpec {
    let (shared, k) = (shared.clone(), key.to_string());
    ChildSpec::new(key, move || {
        let name = shared.names.via(k.clone());
        match SimWorker::start_link(shared.clone(), StartOpts::new().name(name)) {
            Err(StartError::AlreadyStarted(pid)) => Ok(pid),
            other => other.map(|s| s.pid()),
        }
    })
    .restart(restart)
}

fn dyn_name(i: usize) -> String {
    format!("dyn-{i}")
}

/// The tree: root (one_for_one) over the registry, `dyn-0..`, and `static` (one_for_all
/// over `s0..`).
fn build(sim: &SimRuntime, shared: &Shared) -> Supervisor {
    let mut children = vec![ChildSpec::new("registry", shared.names.child_start())];
    for i in 0..DYN {
        let opts = DynamicOpts::new().max_restarts(50).max_seconds(1);
        children.push(DynamicSupervisor::child_spec(dyn_name(i), opts));
    }
    let statics: Vec<ChildSpec> = (0..STATIC_WORKERS)
        .map(|i| worker_spec(shared, &format!("s{i}"), Restart::Permanent))
        .collect();
    children.push(ChildSpec::supervisor("static", move || {
        let opts = SupervisorOpts::new(Strategy::OneForAll).max_restarts(50).max_seconds(1);
        Supervisor::start_link(statics.clone(), opts)
            .map(|s| s.pid())
            .map_err(|e| StartError::Failed(ExitReason::custom(e)))
    }));
    let opts = SupervisorOpts::new(Strategy::OneForOne)
        .max_restarts(100_000)
        .max_seconds(1)
        .runtime(sim.handle());
    Supervisor::start_link(children, opts).expect("the soak's tree starts")
}

fn keys() -> Vec<String> {
    let mut k: Vec<String> = (0..STATIC_WORKERS).map(|i| format!("s{i}")).collect();
    k.extend((0..KEYS).map(|i| format!("w{i}")));
    k
}

/// A live worker named `key`, if any.
fn worker(shared: &Shared, key: &str) -> Option<ServerRef<SimWorker>> {
    let (pid, ()) = shared.names.lookup(key)?;
    ServerRef::from_pid(pid)
}

fn dyn_sup(root: &Supervisor, i: usize) -> Option<DynamicSupervisor> {
    root.child_pid(&dyn_name(i))
        .ok()
        .flatten()
        .and_then(DynamicSupervisor::from_pid)
}

/// What one seed did.
pub(crate) struct SeedRun {
    pub(crate) digest: u64,
    pub(crate) steps: u64,
    pub(crate) faults: u64,
}

/// Runs one seed; violations go to `ledger`.
pub(crate) fn run_seed(ledger: &Arc<Ledger>, seed: u64) -> SeedRun {
    let sim = SimConfig::new(seed)
        .keep_trace(false)
        .crash_reports(CrashReports::Off)
        .shutdown_timeout(Duration::from_secs(5))
        .build();
    let shared = Shared {
        ledger: ledger.clone(),
        names: Registry::new(RegistryOpts::new()),
        seed,
    };
    let root = build(&sim, &shared);
    sim.advance(Duration::from_millis(1));
    let base_processes = sim.process_count();
    let base_timers = sim.timer_count();
    if let Some(registry) = shared.names.pid() {
        sim.protect(registry);
    }
    let mut rng = Rng::new(seed, 0x5111);
    let mut seq = 0u64;
    let mut nonce = 0u64;
    let all = keys();
    sim.set_faults(Some(Faults::one_in(150)));
    let timeouts = [
        Duration::from_millis(1),
        Duration::from_millis(4),
        Duration::from_millis(20),
        Duration::from_secs(1),
    ];
    for _ in 0..OPS {
        let key = rng.pick(&all).clone();
        let target = worker(&shared, &key);
        nonce += 1;
        match rng.below(12) {
            0..=2 => {
                if let Some(t) = &target {
                    let timeout = *rng.pick(&timeouts);
                    timed_call(&shared, sim.now(), t, Req::Echo(nonce), nonce, timeout);
                }
            }
            3 => {
                if let Some(t) = &target {
                    let timeout = *rng.pick(&timeouts);
                    timed_call(&shared, sim.now(), t, Req::Defer(nonce), nonce, timeout);
                }
            }
            4 => {
                let other = worker(&shared, rng.pick(&all).as_str());
                if let (Some(t), Some(o)) = (&target, other) {
                    let inner = *rng.pick(&timeouts);
                    let req = Req::Forward(o.pid(), nonce, inner);
                    timed_call(&shared, sim.now(), t, req, nonce, Duration::from_secs(2));
                }
            }
            5 | 6 => {
                if let Some(t) = &target {
                    for _ in 0..rng.below(4) + 1 {
                        seq += 1;
                        let token = Token::new(ledger, t.pid());
                        match t.send(Msg::Counted { sender: 0, seq, token }) {
                            Ok(()) => ledger.count("counted sends"),
                            Err(SendError(Msg::Counted { token, .. })) => token.reject(),
                            Err(_) => unreachable!("send hands back what it was given"),
                        }
                    }
                }
            }
            7 => {
                if let Some(t) = &target {
                    let delay = Duration::from_millis(rng.below(10));
                    let _ = t.call(Req::Arm {
                        delay,
                        cancel: rng.chance(50),
                    });
                    // Monitors made and dropped between workers; helpers of on-demand ones.
                    let other = worker(&shared, rng.pick(&all).as_str());
                    let req = match (rng.below(3), other) {
                        (0, Some(o)) => Req::Monitor(o.pid()),
                        (1, _) => Req::Demonitor,
                        _ if key.starts_with('w') => Req::Helper,
                        _ => Req::Demonitor,
                    };
                    let _ = t.call(req);
                }
            }
            8 => {
                let i = rng.below(KEYS as u64) as usize;
                let restart = [Restart::Permanent, Restart::Transient, Restart::Temporary][i % 3];
                if let Some(sup) = dyn_sup(&root, i % DYN) {
                    let _ = sup.start_child(worker_spec(&shared, &format!("w{i}"), restart));
                    ledger.count("on-demand starts");
                }
            }
            9 => {
                if let Some(sup) = dyn_sup(&root, rng.below(DYN as u64) as usize) {
                    if let Some(t) = &target {
                        let _ = sup.terminate_child(t.pid());
                    }
                }
            }
            10 => match (rng.below(5), &target) {
                (0, Some(t)) => t.kill(),
                (1, Some(t)) => t.exit(ExitReason::custom("chaos")),
                (2, Some(t)) => {
                    let _ = t.call_timeout(Req::Panic, Duration::from_secs(1));
                }
                (3, Some(t)) => {
                    let _ = t.stop(ExitReason::Normal, Duration::from_secs(1));
                }
                _ => {
                    if let Some(sup) = dyn_sup(&root, rng.below(DYN as u64) as usize) {
                        arbor::kill(sup.pid());
                    }
                }
            },
            _ => {
                if let Ok(Some(pid)) = root.child_pid("static") {
                    arbor::exit(pid, ExitReason::custom("chaos"));
                }
            }
        }
        ledger.count("operations");
        sim.advance(Duration::from_micros(rng.below(3000)));
        for k in &all {
            if let Some((pid, ())) = shared.names.lookup(k) {
                if !arbor::is_alive(pid) {
                    ledger.violation(Kind::StaleName, || format!("seed {seed}: {k:?} names the dead {pid}"));
                }
            }
        }
    }
    sim.set_faults(None);
    // Converge: remove every on-demand worker; supervisors restart what chaos took down.
    sim.advance(Duration::from_millis(50));
    for i in 0..DYN {
        if let Some(sup) = dyn_sup(&root, i) {
            for child in sup.which_children().unwrap_or_default() {
                if let Some(pid) = child.status.pid() {
                    let _ = sup.terminate_child(pid);
                }
            }
        }
    }
    sim.advance(Duration::from_millis(50));
    check_converged(&sim, &shared, &root, base_processes, base_timers);
    let run = SeedRun {
        digest: sim.trace_digest(),
        steps: sim.steps(),
        faults: sim.faults_injected(),
    };
    drop(root);
    let report = sim.shutdown();
    if report.killed != 0 || !report.stuck.is_empty() {
        ledger.violation(Kind::SlowShutdown, || {
            format!(
                "seed {seed}: shutdown killed {} and left {:?}",
                report.killed, report.stuck
            )
        });
    }
    run
}

fn check_converged(sim: &SimRuntime, shared: &Shared, root: &Supervisor, base_processes: usize, base_timers: usize) {
    let (ledger, seed) = (&shared.ledger, shared.seed);
    if !root.is_alive() {
        ledger.violation(Kind::NotConverged, || format!("seed {seed}: the root supervisor died"));
        return;
    }
    let mut known = vec![root.pid()];
    for c in root.which_children().unwrap_or_default() {
        match c.status.pid() {
            Some(pid) => known.push(pid),
            None => ledger.violation(Kind::NotConverged, || format!("seed {seed}: {} not running", c.id)),
        }
    }
    for i in 0..DYN {
        if let Some(sup) = dyn_sup(root, i) {
            let n = sup.count_children().map(|c| c.active).unwrap_or(usize::MAX);
            if n != 0 {
                ledger.violation(Kind::NotConverged, || {
                    format!("seed {seed}: dyn-{i} has {n} children left")
                });
            }
        }
    }
    if let Some(sup) = root.child_pid("static").ok().flatten().and_then(Supervisor::from_pid) {
        for c in sup.which_children().unwrap_or_default() {
            match c.status.pid() {
                Some(pid) => known.push(pid),
                None => ledger.violation(Kind::PermanentNotBack, || format!("seed {seed}: {} is not back", c.id)),
            }
        }
    }
    for i in 0..STATIC_WORKERS {
        let key = format!("s{i}");
        if !worker(shared, &key).is_some_and(|w| w.is_alive()) {
            ledger.violation(Kind::PermanentNotBack, || {
                format!("seed {seed}: {key} is not named to a live worker")
            });
        }
    }
    let orphans: Vec<Pid> = sim.processes().into_iter().filter(|p| !known.contains(p)).collect();
    if !orphans.is_empty() {
        ledger.violation(Kind::Orphan, || {
            format!("seed {seed}: processes outside the tree: {orphans:?}")
        });
    }
    if sim.process_count() != base_processes {
        let n = sim.process_count();
        ledger.violation(Kind::ProcessCount, || {
            format!("seed {seed}: {n} processes, baseline {base_processes}")
        });
    }
    if sim.timer_count() != base_timers {
        let n = sim.timer_count();
        ledger.violation(Kind::Timers, || {
            format!("seed {seed}: {n} pending timers, baseline {base_timers}")
        });
    }
}

/// Runs `seeds` seeds from `first`; prints a report; true if every invariant held.
pub(crate) fn main(first: u64, seeds: u64) -> bool {
    let end = first.wrapping_add(seeds);
    println!("arbor-soak --sim: seeds {first}..{end} ({OPS} operations each, faults one in 150 steps)");
    println!("replay one: cargo run --release -p arbor-soak -- --sim --seeds 1 --seed <seed>");
    let ledger = Arc::new(Ledger::default());
    let began = Instant::now();
    let (mut steps, mut faults) = (0u64, 0u64);
    for i in 0..seeds {
        let seed = first.wrapping_add(i);
        let made = ledger.tokens_made.get();
        let ended = ledger.tokens_ended();
        let run = run_seed(&ledger, seed);
        if seeds <= 10 {
            println!(
                "seed {seed}: trace digest {:#018x}, {} steps, {} faults",
                run.digest, run.steps, run.faults
            );
        }
        steps += run.steps;
        faults += run.faults;
        let (made, ended) = (ledger.tokens_made.get() - made, ledger.tokens_ended() - ended);
        if made != ended {
            ledger.violation(Kind::LeakedMessages, || {
                format!(
                    "seed {seed}: {} of {made} counted messages neither handled nor dropped",
                    made - ended
                )
            });
        }
        if i < REPLAYED {
            let again = run_seed(&ledger, seed);
            if again.digest != run.digest {
                ledger.violation(Kind::NotReplayed, || {
                    format!("seed {seed}: trace digests {:#x} and {:#x}", run.digest, again.digest)
                });
            }
        }
    }
    let took = began.elapsed();
    println!(
        "\n== arbor-soak --sim report ({seeds} seeds in {:.2} s of real time)",
        took.as_secs_f64()
    );
    println!("  scheduling steps                              {steps}");
    println!("  faults injected                               {faults}");
    for (name, n) in ledger.counters() {
        println!("  {name:<45} {n}");
    }
    println!(
        "  counted messages: {} made = {} handled + {} refused at send + {} cancelled with their timer + {} dropped with their dead process",
        ledger.tokens_made.get(),
        ledger.handled.get(),
        ledger.rejected.get(),
        ledger.cancelled.get(),
        ledger.dropped_dead.get()
    );
    let violations = ledger.violations();
    println!("\n== invariants");
    for kind in SIM_KINDS {
        match violations.get(&kind) {
            None => println!("  ok      {}", kind.rule()),
            Some((n, examples)) => {
                println!("  FAILED  {} ({kind}: {n} violations)", kind.rule());
                for e in examples {
                    println!("            {e}");
                }
            }
        }
    }
    if violations.is_empty() {
        println!("\nRESULT: PASS, every invariant held for seeds {first}..{end}");
        true
    } else {
        println!("\nRESULT: FAIL (each violation names its seed; replay with --sim --seeds 1 --seed <seed>)");
        false
    }
}

/// The invariants the simulated soak checks.
const SIM_KINDS: [Kind; 15] = [
    Kind::LateCall,
    Kind::WrongReply,
    Kind::LostMessage,
    Kind::FifoBroken,
    Kind::CancelledTimerHandled,
    Kind::DownAfterDemonitor,
    Kind::StaleName,
    Kind::PermanentNotBack,
    Kind::NotConverged,
    Kind::Orphan,
    Kind::ProcessCount,
    Kind::Timers,
    Kind::LeakedMessages,
    Kind::SlowShutdown,
    Kind::NotReplayed,
];
