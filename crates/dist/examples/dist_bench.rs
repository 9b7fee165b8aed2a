//! arbor-dist's benchmark: calls and one-way messages between arbor and real `erl` nodes,
//! beside the same between two `erl` nodes, in one run on loopback.
//!
//! ```text
//! cargo run --release -p arbor-dist --example dist_bench -- [--calls 20000] [--casts 200000] [--flood-calls 2000] [--coalesce-us N] [--arbor-busy-wait 0]
//! ```
//!
//! Needs `epmd`, `erl` and `erlc` on the PATH. Starts a private epmd on a free port of
//! 127.0.0.1, an arbor node `A`, and two `erl` nodes, `B` (runs the counting echo server
//! `arbor_bench`, `bench/arbor_bench.erl`) and `C` (the client). Every OS process it starts
//! is killed by pid when it ends, also on a panic.
//!
//! - call latency, sequential calls after a warm-up: C → A (arbor's server) and C → B (a
//!   gen_server), alternating one call to each, so that the machine's load meets both
//!   alike; then A → B (arbor's client);
//! - one-way throughput: N casts then one call that is answered after them all: C → A,
//!   C → B, A → B.
//! - call latency in a flood: C's sequential calls to an `echo` server of A (of B) while
//!   another process of C floods A's (B's) `sink` with casts over the same connection, 100
//!   every millisecond; three rounds of A then B, medians. This is the latency that arbor's
//!   reader pays for waiting a moment in a flood of casts (`Builder::receive_coalesce`).
//! - CPU per message, a second round with fresh BEAM nodes B' and C' started with their
//!   schedulers' busy-waiting off (`+sbwt none`, so that a BEAM node's CPU time is its
//!   work, not its spinning), and a fresh arbor node A' on a runtime of its own built
//!   with `busy_wait(false)` for the same reason (its idle workers park at once; with
//!   `--arbor-busy-wait 1` they spin first, as by default, and that spin is counted):
//!   the CPU time (user + system, from `/proc/PID/stat`) each OS process spends per cast
//!   while C' → A', C' → B' and A' → B' casts run, one phase after the other (C' waits for
//!   arbor's go between phases). It measures each side on its own: a throughput between
//!   two nodes is bounded by the slower of the two, and on a machine of two cores by their
//!   sum. Ratios are the BEAM's cost over arbor's, same run.
//!
//! `--coalesce-us N` starts arbor's nodes with `receive_coalesce(N µs)` (0: off; without
//! the flag, the node's default); `--arbor-busy-wait 1` builds A''s runtime with its
//! default spin; `--calls-on-reader 0` starts arbor's nodes with
//! `run_calls_on_reader(false)` (every incoming call handed to a worker).

use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
use arbor_dist::{Node, Term};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "arbor-bench";

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Echoes calls, counts casts and messages; `count` returns the count.
struct Sink {
    n: i64,
}

impl GenServer for Sink {
    type Args = ();
    type Info = Term;
    type Call = Term;
    type Reply = Term;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Sink { n: 0 })
    }

    fn handle_call(&mut self, req: Term, _from: ReplyTo<Term>, _ctx: &mut Context<'_, Self>) -> CallFlow<Term> {
        if req.is_atom("count") {
            CallFlow::Reply(Term::Int(self.n))
        } else {
            CallFlow::Reply(req)
        }
    }

    fn handle_info(&mut self, _msg: Term, _ctx: &mut Context<'_, Self>) -> Flow {
        self.n += 1;
        Flow::Continue
    }
}

fn arg(flag: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

/// An arbor node on 127.0.0.1, registered with the private epmd, exporting a `Sink` as
/// `sink`.
fn start_node(name: &str, epmd: u16, coalesce: Option<Duration>, on_reader: bool, rt: &Runtime) -> Node {
    let mut builder = Node::builder(name)
        .cookie(COOKIE)
        .epmd_port(epmd)
        .listen_addr("127.0.0.1".parse().unwrap())
        .run_calls_on_reader(on_reader);
    if let Some(wait) = coalesce {
        builder = builder.receive_coalesce(wait);
    }
    let node = builder.start(rt.handle()).unwrap();
    let sink = rt.start::<Sink>(()).unwrap();
    node.register("sink", &sink).unwrap();
    let echo = rt.start::<Sink>(()).unwrap();
    node.register("echo", &echo).unwrap();
    node
}

/// Waits until the BEAM node `beam`'s `sink` answers `node`.
fn await_sink(node: &Node, beam: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node
        .call(("sink", beam), &Term::atom("count"), Duration::from_secs(1))
        .is_err()
    {
        assert!(Instant::now() < deadline, "node {beam} did not start");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn erl(epmd: u16, name: &str, dir: &str, eval: &str, stdout: Stdio) -> Guard {
    erl_with(epmd, name, dir, eval, stdout, &[])
}

fn erl_with(epmd: u16, name: &str, dir: &str, eval: &str, stdout: Stdio, extra: &[&str]) -> Guard {
    let child = Command::new("erl")
        .args(extra)
        .args(["-name", name, "-setcookie", COOKIE, "-noshell", "-start_epmd", "false"])
        .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
        .args(["-pa", dir, "-eval", eval])
        .env("ERL_EPMD_PORT", epmd.to_string())
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn()
        .expect("erl");
    Guard(child)
}

/// Run time (ns) of each thread of an OS process, by thread id, from
/// `/proc/PID/task/TID/schedstat` (exact, where `/proc/PID/stat` counts 10 ms ticks).
fn thread_times(pid: u32) -> std::collections::HashMap<u32, (String, u64)> {
    let mut out = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let mut comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if std::env::var_os("ARBOR_BENCH_THREADS").is_some() {
            // read system calls and voluntary context switches, for the per-thread figures
            let io = std::fs::read_to_string(task.path().join("io")).unwrap_or_default();
            let st = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let field = |text: &str, key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map_or(String::new(), |v| v.trim().to_string())
            };
            comm = format!(
                "{} syscr={} vcs={}",
                comm.trim(),
                field(&io, "syscr:"),
                field(&st, "voluntary_ctxt_switches:")
            );
        }
        // A thread may have ended since the listing.
        let Some(ns) = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        else {
            continue;
        };
        out.insert(tid, (comm.trim().to_string(), ns));
    }
    out
}

/// CPU seconds a process's threads ran between two samples (a thread that ended between
/// them is left out: the bench's phases start after every such thread has ended).
fn cpu_between(
    before: &std::collections::HashMap<u32, (String, u64)>,
    after: &std::collections::HashMap<u32, (String, u64)>,
) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, (_, a))| a.saturating_sub(before.get(tid).map_or(0, |b| b.1)))
        .sum();
    ns as f64 / 1e9
}

/// `ARBOR_BENCH_THREADS`: each of arbor's threads that ran during a phase, its CPU per
/// cast, and its counters (read system calls, voluntary context switches) before and after.
fn print_threads(
    phase: &str,
    before: &std::collections::HashMap<u32, (String, u64)>,
    after: &std::collections::HashMap<u32, (String, u64)>,
    casts: usize,
) {
    for (tid, (name, ns)) in after {
        let d = ns.saturating_sub(before.get(tid).map_or(0, |b| b.1));
        if d > 0 {
            println!(
                "  {phase}, thread {name}: {:.3} us per cast (before: {})",
                d as f64 / 1e3 / casts as f64,
                before.get(tid).map_or("", |b| b.0.as_str())
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).round() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_nanos() as f64 / 1000.0
}

fn main() {
    let calls = arg("--calls", 20_000);
    let casts = arg("--casts", 200_000);
    let coalesce = std::env::args()
        .any(|a| a == "--coalesce-us")
        .then(|| Duration::from_micros(arg("--coalesce-us", 0) as u64));
    let flood = arg("--flood-calls", 2000);
    let busy_wait = arg("--arbor-busy-wait", 0) != 0;
    let on_reader = arg("--calls-on-reader", 1) != 0;
    let warm = (calls / 10).max(100);

    let dir = std::env::temp_dir().join(format!("arbor-dist-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/arbor_bench.erl");
    let ok = Command::new("erlc")
        .arg("-o")
        .arg(&dir)
        .arg(src)
        .status()
        .expect("erlc");
    assert!(ok.success());
    let dir = dir.to_string_lossy().into_owned();

    let port = free_port();
    let _epmd = Guard(
        Command::new("epmd")
            .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "epmd did not start");
        std::thread::park_timeout(Duration::from_millis(10));
    }

    let id = std::process::id();
    let (a, b, c) = (
        format!("a{id}@127.0.0.1"),
        format!("b{id}@127.0.0.1"),
        format!("c{id}@127.0.0.1"),
    );
    let rt = Runtime::new().unwrap();
    let node = start_node(&a, port, coalesce, on_reader, &rt);

    let b_first = erl(
        port,
        &b,
        &dir,
        "arbor_bench:start(sink), arbor_bench:start(echo).",
        Stdio::null(),
    );
    await_sink(&node, &b);

    // C's measurements: against arbor, then against B, in the same run.
    let eval = format!(
        "A = {{sink, '{a}'}}, B = {{sink, '{b}'}}, \
         {{L1, L2}} = arbor_bench:call_latency_pair(A, B, {warm}, {calls}), \
         T1 = arbor_bench:cast_throughput(A, {casts}, bump), T2 = arbor_bench:cast_throughput(B, {casts}, bump), \
         EA = {{echo, '{a}'}}, EB = {{echo, '{b}'}}, \
         F = [arbor_bench:flood_call_latency(S, E, {flood}) || _ <- [1, 2, 3], {{S, E}} <- [{{A, EA}}, {{B, EB}}]], \
         io:format(\"RESULT ~w~n\", [{{L1, L2, T1, T2, F}}]), halt()."
    );
    let mut c_node = erl(port, &c, &dir, &eval, Stdio::piped());
    let out = c_node.0.stdout.take().unwrap();
    let line = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("RESULT"))
        .expect("C's results");
    let nums: Vec<f64> = line
        .trim_start_matches("RESULT ")
        .split(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == 'e' || ch == '-' || ch == '+'))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (l1, l2, t1, t2) = (
        (nums[0], nums[1], nums[2]),
        (nums[3], nums[4], nums[5]),
        nums[6],
        nums[7],
    );
    // Calls during a flood, three rounds of A then B: medians of p50, p99 and mean.
    let flood_of = |first: usize| {
        let at = |k: usize| {
            let mut v: Vec<f64> = (0..3).map(|r| nums[8 + r * 6 + first * 3 + k]).collect();
            median(&mut v)
        };
        (at(0), at(1), at(2))
    };
    let (f1, f2) = (flood_of(0), flood_of(1));

    // arbor's client: A → B.
    let dest = ("sink", b.as_str());
    for i in 0..warm {
        node.call(dest, &(Term::atom("ping"), i as i64), Duration::from_secs(5))
            .unwrap();
    }
    let mut lat = Vec::with_capacity(calls);
    for i in 0..calls {
        let t0 = Instant::now();
        node.call(dest, &(Term::atom("ping"), i as i64), Duration::from_secs(5))
            .unwrap();
        lat.push(t0.elapsed());
    }
    let mean = lat.iter().map(|d| d.as_nanos() as f64).sum::<f64>() / calls as f64 / 1000.0;
    lat.sort();
    let l3 = (percentile(&lat, 0.5), percentile(&lat, 0.99), mean);
    let before: i64 = node
        .call_as(dest, &Term::atom("count"), Duration::from_secs(5))
        .unwrap();
    let t0 = Instant::now();
    let bump = Term::atom("bump");
    for _ in 0..casts {
        node.cast(dest, &bump).unwrap();
    }
    let after: i64 = node
        .call_as(dest, &Term::atom("count"), Duration::from_secs(60))
        .unwrap();
    let t3 = casts as f64 / t0.elapsed().as_secs_f64();
    assert_eq!(after - before, casts as i64, "every cast counted once");

    println!("arbor-dist benchmark: {calls} sequential calls ({warm} warm-up), {casts} casts; loopback, one run");
    println!("{:<34} {:>9} {:>9} {:>9}", "call latency (us)", "p50", "p99", "mean");
    println!("{:<34} {:>9.1} {:>9.1} {:>9.1}", "erl C -> arbor A", l1.0, l1.1, l1.2);
    println!("{:<34} {:>9.1} {:>9.1} {:>9.1}", "erl C -> erl B", l2.0, l2.1, l2.2);
    println!("{:<34} {:>9.1} {:>9.1} {:>9.1}", "arbor A -> erl B", l3.0, l3.1, l3.2);
    println!("{:<34} {:>9.2}", "p50 C -> A / C -> B", l1.0 / l2.0);
    println!(
        "{:<34} {:>9.1} {:>9.1} {:>9.1}",
        "erl C -> arbor A, in a cast flood", f1.0, f1.1, f1.2
    );
    println!(
        "{:<34} {:>9.1} {:>9.1} {:>9.1}",
        "erl C -> erl B, in a cast flood", f2.0, f2.1, f2.2
    );
    println!("{:<34} {:>12}", "one-way casts (msgs/s)", "");
    println!("{:<34} {:>12.0}", "erl C -> arbor A", t1);
    println!("{:<34} {:>12.0}", "erl C -> erl B", t2);
    println!("{:<34} {:>12.0}", "arbor A -> erl B", t3);
    drop(c_node);
    drop(b_first);
    // The CPU round's arbor node A', on a runtime of its own: its idle workers park at
    // once, as the BEAM nodes of that round run without their schedulers' busy-waiting
    // (with `--arbor-busy-wait 1` they spin first, as a runtime does by default).
    let rt2 = Runtime::builder().busy_wait(busy_wait).build().unwrap();
    let node2 = start_node(&format!("a2{id}@127.0.0.1"), port, coalesce, on_reader, &rt2);
    cpu_round(&node2, port, &dir, casts, busy_wait);
    node2.stop();
    node.stop();
}

/// The second round: CPU per cast on each side, with BEAM nodes that do not busy-wait;
/// `ROUNDS` rounds of the three phases, one after the other, so that a change in the
/// machine's load hits both sides alike; medians over the rounds.
fn cpu_round(node: &Node, port: u16, dir: &str, casts: usize, busy_wait: bool) {
    const ROUNDS: usize = 5;
    let id = std::process::id();
    let (a, b, c) = (
        node.name().as_str().to_string(),
        format!("b2{id}@127.0.0.1"),
        format!("c2{id}@127.0.0.1"),
    );
    let quiet = ["+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"];
    let b_node = erl_with(port, &b, dir, "arbor_bench:start(sink).", Stdio::null(), &quiet);
    await_sink(node, &b);
    let eval = format!(
        "register(driver, self()), A = {{sink, '{a}'}}, B = {{sink, '{b}'}}, \
         W = fun() -> receive go -> ok end end, \
         L = fun Loop(0) -> ok; Loop(K) -> \
               W(), T1 = arbor_bench:cast_throughput(A, {casts}, bump), io:format(\"PHASE ~w~n\", [T1]), \
               W(), T2 = arbor_bench:cast_throughput(B, {casts}, bump), io:format(\"PHASE ~w~n\", [T2]), \
               Loop(K - 1) end, \
         io:format(\"READY~n\"), L({ROUNDS}), halt()."
    );
    let mut c_node = erl_with(port, &c, dir, &eval, Stdio::piped(), &quiet);
    let (pb, pc, me) = (b_node.0.id(), c_node.0.id(), std::process::id());
    let sample = || [thread_times(me), thread_times(pb), thread_times(pc)];
    let out = c_node.0.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines().map_while(Result::ok);
    let mut next = |prefix: &str| {
        lines
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("C' did not say {prefix}"))
    };
    let go = || node.send(("driver", c.as_str()), &Term::atom("go")).unwrap();
    let rate = |l: String| -> f64 { l.trim_start_matches("PHASE ").trim().parse().unwrap() };
    let threads = std::env::var_os("ARBOR_BENCH_THREADS").is_some();
    next("READY");
    let dest = ("sink", b.as_str());
    let bump = Term::atom("bump");
    // Microseconds of CPU per cast, per round: [A, B', C'] in each phase.
    let mut recv = Vec::new(); // C' -> A
    let mut beam = Vec::new(); // C' -> B'
    let mut send = Vec::new(); // A -> B'
    let mut rates = Vec::new();
    let per = |x: &[std::collections::HashMap<u32, (String, u64)>; 3],
               y: &[std::collections::HashMap<u32, (String, u64)>; 3]| {
        [0, 1, 2].map(|i| cpu_between(&x[i], &y[i]) * 1e6 / casts as f64)
    };
    for _ in 0..ROUNDS {
        let s0 = sample();
        go();
        let t1 = rate(next("PHASE"));
        let s1 = sample();
        if threads {
            print_threads("C' -> A", &s0[0], &s1[0], casts);
        }
        go();
        let t2 = rate(next("PHASE"));
        let s2 = sample();
        let before: i64 = node
            .call_as(dest, &Term::atom("count"), Duration::from_secs(5))
            .unwrap();
        let s3 = sample();
        let t0 = Instant::now();
        for _ in 0..casts {
            node.cast(dest, &bump).unwrap();
        }
        let after: i64 = node
            .call_as(dest, &Term::atom("count"), Duration::from_secs(60))
            .unwrap();
        let t3 = casts as f64 / t0.elapsed().as_secs_f64();
        let s4 = sample();
        if threads {
            print_threads("A -> B'", &s3[0], &s4[0], casts);
        }
        assert_eq!(after - before, casts as i64, "every cast counted once");
        recv.push(per(&s0, &s1));
        beam.push(per(&s1, &s2));
        send.push(per(&s3, &s4));
        rates.push([t1, t2, t3]);
    }
    let med = |rows: &[[f64; 3]], i: usize| median(&mut rows.iter().map(|r| r[i]).collect::<Vec<_>>());
    println!(
        "CPU per cast (us, medians of {ROUNDS} rounds of {casts}; BEAM nodes without busy-waiting, arbor's {}; \
         C' -> A {:.0}, C' -> B' {:.0}, A -> B' {:.0} msgs/s)",
        if busy_wait { "spinning as by default" } else { "too" },
        med(&rates, 0),
        med(&rates, 1),
        med(&rates, 2)
    );
    println!("{:<34} {:>9} {:>9} {:>9}", "phase", "A", "B'", "C'");
    for (label, rows) in [
        ("C' -> A casts", &recv),
        ("C' -> B' casts", &beam),
        ("A -> B' casts", &send),
    ] {
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>9.2}",
            label,
            med(rows, 0),
            med(rows, 1),
            med(rows, 2)
        );
    }
    let (a_recv, b_recv) = (med(&recv, 0), med(&beam, 1));
    let (a_send, c_send) = (med(&send, 0), med(&beam, 2));
    println!(
        "receiving: BEAM {b_recv:.2} / arbor {a_recv:.2} us per cast = {:.2}x",
        b_recv / a_recv
    );
    println!(
        "sending:   BEAM {c_send:.2} / arbor {a_send:.2} us per cast = {:.2}x",
        c_send / a_send
    );
}
