//! arbor-soak: a chaos soak of arbor, run by CI for 30 s at a fixed seed and at a random one.
//!
//! ```text
//! cargo run --release -p arbor-soak -- --seconds 30 [--seed S] [--clients 6] [--threads 2] [--keys 400]
//! ```
//!
//! It builds a real tree (`tree.rs`), then runs phases: in each, client threads and a chaos
//! thread load and break the tree (`load.rs`) while a watcher checks names and restarts
//! (`watch.rs`) and the processes check ordering, timers and monitors from inside
//! (`worker.rs`). Between phases the soak stops the load, brings the tree back to its specs,
//! and checks that no orphan is left and that processes, OS threads, pending timers and
//! memory are back to the baseline. At the end it shuts the runtime down within a bound,
//! checks that every message was handled or dropped with its process, prints a report and
//! exits 0 (every invariant held) or 1 (the report names each invariant that failed, with
//! the seed to replay).
//!
//! Every choice comes from the seed (printed first); the operating system's interleaving of
//! threads does not, so a replay meets the same kinds of trouble, not the same instants.

mod ledger;
mod load;
mod rng;
mod sim;
mod stall;
mod sys;
#[cfg(test)]
mod tests;
mod tree;
mod watch;
mod worker;

use arbor::prelude::*;
use arbor::CrashReports;
use ledger::{Kind, Ledger};
use load::Load;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tree::Tree;
use worker::{Helper, Worker};

/// Longest phase of load between two checks of the baseline.
const PHASE: Duration = Duration::from_secs(10);
/// How long the tree may take to converge once the load stops.
const CONVERGE_BOUND: Duration = Duration::from_secs(10);
/// How long orphans (helpers of removed workers) may take to go.
const ORPHAN_BOUND: Duration = Duration::from_secs(5);
/// How long surplus threads may linger (the pool keeps a compensating thread 5 s).
const THREAD_BOUND: Duration = Duration::from_secs(8);
/// How long the whole runtime shutdown may take.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(15);
/// The runtime's own shutdown timeout (past it, it kills what is left).
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Resident memory may exceed the first phase's by this much before it counts as growth.
const RSS_SLACK_KIB: u64 = 64 * 1024;

struct Config {
    /// `--sim`: run on the deterministic runtime, `seeds` seeds from `seed`.
    sim: bool,
    seeds: u64,
    seconds: u64,
    seed: u64,
    clients: u64,
    threads: usize,
    keys: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("arbor-soak: {msg}");
    eprintln!("usage: arbor-soak [--seconds N] [--seed S] [--clients C] [--threads T] [--keys K]");
    eprintln!("       arbor-soak --sim [--seeds N] [--seed FIRST]   (the deterministic runtime: N seeds from FIRST)");
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut c = Config {
        sim: false,
        seeds: 1000,
        seconds: 30,
        seed: random_seed(),
        clients: 6,
        threads: 2,
        keys: 400,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> u64 {
            let v = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--seconds" => c.seconds = value().max(1),
            "--sim" => c.sim = true,
            "--seeds" => c.seeds = value().max(1),
            "--seed" => c.seed = value(),
            "--clients" => c.clients = value().clamp(1, 60),
            "--threads" => c.threads = value().clamp(1, 64) as usize,
            "--keys" => c.keys = value().clamp(8, 100_000) as usize,
            "--help" | "-h" => usage("a chaos soak of arbor"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    c
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    rng::Rng::new(nanos, u64::from(std::process::id())).next()
}

/// Polls `cond` until it holds or `bound` passes.
fn wait_for(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the quiet tree looks like.
#[derive(Clone, Copy, Debug)]
struct Sample {
    processes: usize,
    threads: Option<u64>,
    timers: usize,
    rss_kib: Option<u64>,
}

fn sample(rt: &Runtime) -> Sample {
    Sample {
        processes: rt.process_count(),
        threads: sys::threads(),
        timers: rt.timer_count(),
        rss_kib: sys::rss_kib(),
    }
}

/// What a pid left outside the tree is, for the report.
fn describe(tree: &Tree, pid: Pid) -> String {
    let kind = if ServerRef::<Worker>::from_pid(pid).is_some() {
        "Worker"
    } else if ServerRef::<Helper>::from_pid(pid).is_some() {
        "Helper (started with start_link by a worker that is gone)"
    } else if arbor::supervisor::DynamicSupervisor::from_pid(pid).is_some() {
        "DynamicSupervisor"
    } else if arbor::supervisor::Supervisor::from_pid(pid).is_some() {
        "Supervisor"
    } else {
        "other"
    };
    let names = tree.shared.names.keys(pid);
    format!("{pid} {kind} named {names:?} alive={}", arbor::is_alive(pid))
}

/// Stops the load, brings the tree back to its skeleton and checks the baseline.
fn quiesce(rt: &Runtime, tree: &Tree, load: &Load, base: &Sample, phase: u64) -> Sample {
    let ledger = &tree.shared.ledger;
    if !wait_for(CONVERGE_BOUND, || tree.converge_step()) {
        let shape = tree
            .snapshot()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "root not alive".into());
        ledger.violation(Kind::NotConverged, || {
            format!("phase {phase}: tree not back to its specs after {CONVERGE_BOUND:?}:\n{shape}")
        });
    }
    watch::check_downed(load, true);
    let in_tree = || {
        let mut pids = Vec::new();
        if let Some(t) = tree.snapshot() {
            tree::pids(&t, &mut pids);
        }
        pids
    };
    let outside = || {
        let known = in_tree();
        rt.processes()
            .into_iter()
            .filter(|p| !known.contains(p))
            .collect::<Vec<_>>()
    };
    if !wait_for(ORPHAN_BOUND, || outside().is_empty()) {
        let extra = outside();
        ledger.violation(Kind::Orphan, || {
            let shown: Vec<String> = extra.iter().take(8).map(|p| describe(tree, *p)).collect();
            format!(
                "phase {phase}: {} processes alive that no supervisor knows, e.g. {}",
                extra.len(),
                shown.join("; ")
            )
        });
    }
    if !wait_for(ORPHAN_BOUND, || rt.process_count() == base.processes) {
        let now = rt.process_count();
        ledger.violation(Kind::ProcessCount, || {
            format!("phase {phase}: {now} processes, baseline {}", base.processes)
        });
    }
    if let Some(base_threads) = base.threads {
        if !wait_for(THREAD_BOUND, || sys::threads().is_some_and(|t| t <= base_threads)) {
            let now = sys::threads();
            let workers = rt.worker_count();
            ledger.violation(Kind::Threads, || {
                format!("phase {phase}: {now:?} OS threads ({workers} workers), baseline {base_threads}")
            });
        }
    }
    if !wait_for(ORPHAN_BOUND, || rt.timer_count() <= base.timers) {
        let now = rt.timer_count();
        ledger.violation(Kind::Timers, || {
            format!("phase {phase}: {now} pending timers, baseline {}", base.timers)
        });
    }
    sample(rt)
}

/// Memory growth: past the first phase's by the slack, or rising five phases running.
fn check_memory(ledger: &Ledger, rss: &[u64]) {
    let (Some(first), Some(last)) = (rss.first(), rss.last()) else {
        return;
    };
    if *last > first + RSS_SLACK_KIB.max(first / 2) {
        let n = rss.len();
        ledger.violation(Kind::Memory, || {
            format!("RSS {last} KiB after phase {n}, {first} KiB after phase 1")
        });
    }
    if rss.len() >= 6 {
        let tail = &rss[rss.len() - 6..];
        if tail.windows(2).all(|w| w[1] > w[0] + 1024) {
            ledger.violation(Kind::Memory, || {
                format!("RSS rose over each of the last 5 phases: {tail:?} KiB")
            });
        }
    }
}

/// Shuts `rt` down on a thread of its own and waits at most `bound`: the time taken, or
/// `Err` past the bound (the thread is then left behind; the caller exits the process).
/// When core gains `Runtime::shutdown_timeout(d)` (issue 10's stuck-handler part), this is
/// the one place to call it, and the processes it reports stuck go into the report.
fn shutdown_bounded(rt: Runtime, bound: Duration) -> Result<Duration, Duration> {
    let (tx, rx) = std::sync::mpsc::channel();
    let began = Instant::now();
    std::thread::spawn(move || {
        rt.shutdown();
        let _ = tx.send(began.elapsed());
    });
    rx.recv_timeout(bound).map_err(|_| began.elapsed())
}

fn main() {
    let cfg = parse_args();
    if cfg.sim {
        let ok = sim::main(cfg.seed, cfg.seeds);
        std::process::exit(if ok { 0 } else { 1 });
    }
    println!(
        "arbor-soak: seed {} ({} s, {} clients, {} worker threads, {} on-demand keys)",
        cfg.seed, cfg.seconds, cfg.clients, cfg.threads, cfg.keys
    );
    println!(
        "replay: cargo run --release -p arbor-soak -- --seconds {} --seed {} --clients {} --threads {} --keys {}",
        cfg.seconds, cfg.seed, cfg.clients, cfg.threads, cfg.keys
    );
    let started = Instant::now();
    let ledger = Arc::new(Ledger::default());
    let l = ledger.clone();
    let stall_watch = std::thread::spawn(move || l.stalls.run());
    let rt = Runtime::builder()
        .worker_threads(cfg.threads)
        .thread_name("soak")
        .shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT)
        // The soak's handlers panic on purpose thousands of times: their crash reports
        // would drown its own report (no logger is installed, so they would go to stderr).
        .crash_reports(CrashReports::Off)
        .build()
        .expect("runtime");
    let tree = Arc::new(Tree::build(&rt, ledger.clone(), cfg.keys));
    if !wait_for(CONVERGE_BOUND, || tree.converge_step()) {
        eprintln!("arbor-soak: the tree did not come up:\n{:?}", tree.snapshot());
        std::process::exit(1);
    }
    // The baseline: the skeleton, idle, with no surplus thread left from its boot.
    wait_for(THREAD_BOUND, || rt.worker_count() <= cfg.threads);
    let base = sample(&rt);
    println!(
        "baseline: {} processes, {:?} OS threads, {} timers, {:?} KiB RSS",
        base.processes, base.threads, base.timers, base.rss_kib
    );

    let phase_len = PHASE.min(Duration::from_secs(cfg.seconds));
    let phases = (cfg.seconds / phase_len.as_secs()).max(1);
    let mut rss = Vec::new();
    for phase in 0..phases {
        let load = Arc::new(Load {
            tree: tree.clone(),
            seed: cfg.seed,
            stop: AtomicBool::new(false),
            downed: Default::default(),
        });
        let mut threads = Vec::new();
        for id in 0..cfg.clients {
            let l = load.clone();
            threads.push(std::thread::spawn(move || load::client(l, id, phase)));
        }
        let l = load.clone();
        threads.push(std::thread::spawn(move || load::chaos(l, phase)));
        let l = load.clone();
        threads.push(std::thread::spawn(move || watch::watch(l)));
        // The phase's length is the point of the soak: the main thread just lets it run.
        std::thread::sleep(phase_len);
        load.stop.store(true, Ordering::SeqCst);
        for t in threads {
            if t.join().is_err() {
                ledger.count("load threads panicked");
            }
        }
        let s = quiesce(&rt, &tree, &load, &base, phase + 1);
        if let Some(kib) = s.rss_kib {
            rss.push(kib);
        }
        let bad: u64 = ledger.violations().values().map(|v| v.0).sum();
        println!(
            "phase {}/{}: {} processes, {:?} OS threads, {} timers, {:?} KiB RSS, {} violations so far",
            phase + 1,
            phases,
            s.processes,
            s.threads,
            s.timers,
            s.rss_kib,
            bad
        );
    }
    check_memory(&ledger, &rss);

    drop(tree);
    let shutdown = shutdown_bounded(rt, SHUTDOWN_BOUND);
    match shutdown {
        Ok(took) => println!("shutdown: {took:?}"),
        Err(took) => ledger.violation(Kind::SlowShutdown, || format!("shutdown still running after {took:?}")),
    }
    if shutdown.is_ok() {
        let made = ledger.tokens_made.get();
        let ended = ledger.tokens_ended();
        if made != ended {
            ledger.violation(Kind::LeakedMessages, || {
                format!(
                    "{} of {made} counted messages neither handled nor dropped",
                    made - ended
                )
            });
        }
    }
    ledger.stalls.stop();
    let _ = stall_watch.join();
    let ok = report(&ledger, &cfg, started.elapsed());
    std::process::exit(if ok { 0 } else { 1 });
}

/// Prints the final report; true if every invariant held.
fn report(ledger: &Ledger, cfg: &Config, took: Duration) -> bool {
    println!(
        "\n== arbor-soak report (seed {}, {:.1} s)",
        cfg.seed,
        took.as_secs_f64()
    );
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
    let (stalls, longest) = ledger.stalls.summary();
    println!("  host stalls over 20 ms (a sleeping thread woke late): {stalls}, longest {longest:?}");
    let violations = ledger.violations();
    println!("\n== invariants");
    for kind in ALL_KINDS {
        match violations.get(&kind) {
            None => println!("  ok      {}", kind.rule()),
            Some((n, examples)) => {
                println!("  FAILED  {} ({kind}: {n} violations)", kind.rule());
                for e in examples {
                    for line in e.lines() {
                        println!("            {line}");
                    }
                }
            }
        }
    }
    if violations.is_empty() {
        println!("\nRESULT: PASS, every invariant held (seed {})", cfg.seed);
        true
    } else {
        let kinds: Vec<String> = violations.keys().map(|k| k.to_string()).collect();
        println!(
            "\nRESULT: FAIL, {} (seed {}; replay with --seconds {} --seed {} --clients {} --threads {} --keys {})",
            kinds.join(", "),
            cfg.seed,
            cfg.seconds,
            cfg.seed,
            cfg.clients,
            cfg.threads,
            cfg.keys
        );
        false
    }
}

const ALL_KINDS: [Kind; 16] = [
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
    Kind::Threads,
    Kind::Timers,
    Kind::Memory,
    Kind::LeakedMessages,
    Kind::SlowShutdown,
];
