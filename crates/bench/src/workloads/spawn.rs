//! spawn: start many servers, send each a message, each replies once to a collector,
//! stop them all and wait until they are gone. Servers/s, and bytes per idle server
//! (RSS growth while they are all started and idle, divided by their count). Raw: n/a.

use super::{rate, runtime, wait_until, Config, Figure, Figures, Workload, DEADLINE};
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, ServerRef};
use std::time::Instant;

pub(crate) const WORKLOAD: Workload = Workload {
    name: "spawn",
    summary: &[
        Figure {
            key: "servers_per_s",
            unit: "/s",
            higher_is_better: true,
        },
        Figure {
            key: "bytes_per_idle_server",
            unit: "B",
            higher_is_better: false,
        },
    ],
    arbor,
    raw: None,
    na_reason: "an OS thread per server is not comparable to a process",
    fresh_process: true,
};

fn servers(cfg: &Config) -> u64 {
    cfg.size.pick(2_000, 100_000)
}

/// A server that does nothing until told.
struct Worker {
    id: u64,
}

enum WorkerMsg {
    /// Reply once, to this collector.
    Ping(ServerRef<Collector>),
    /// Stop normally.
    Quit,
}

impl GenServer for Worker {
    type Args = u64;
    type Info = WorkerMsg;
    type Call = ();
    type Reply = ();

    fn init(id: u64, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Worker { id })
    }

    fn handle_info(&mut self, msg: WorkerMsg, _ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            WorkerMsg::Ping(collector) => {
                collector.send(self.id).expect("collector is alive");
                Flow::Continue
            }
            WorkerMsg::Quit => Flow::Stop(ExitReason::Normal),
        }
    }
}

/// Counts replies; a call waits until `n` have arrived.
struct Collector {
    count: u64,
    sum: u64,
    waiting: Option<(u64, ReplyTo<(u64, u64)>)>,
}

impl Collector {
    fn check(&mut self) {
        if let Some((n, _)) = &self.waiting {
            if self.count >= *n {
                let (_, from) = self.waiting.take().unwrap();
                from.reply((self.count, self.sum));
            }
        }
    }
}

impl GenServer for Collector {
    type Args = ();
    /// A worker's id.
    type Info = u64;
    /// Wait for this many replies.
    type Call = u64;
    /// (count, sum of ids)
    type Reply = (u64, u64);

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Collector {
            count: 0,
            sum: 0,
            waiting: None,
        })
    }

    fn handle_info(&mut self, id: u64, _ctx: &mut Context<'_, Self>) -> Flow {
        self.count += 1;
        self.sum += id;
        self.check();
        Flow::Continue
    }

    fn handle_call(&mut self, n: u64, from: ReplyTo<(u64, u64)>, _ctx: &mut Context<'_, Self>) -> CallFlow<(u64, u64)> {
        self.waiting = Some((n, from));
        self.check();
        CallFlow::NoReply
    }
}

/// Resident set size in bytes: /proc/self/statm's resident pages times the page size.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The page size, from /proc/self/smaps (4096 if it cannot be read).
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

fn arbor(cfg: &Config) -> Figures {
    let n = servers(cfg);
    let rt = runtime(cfg);
    let collector = rt.start::<Collector>(()).expect("start collector");
    let mut workers: Vec<ServerRef<Worker>> = Vec::with_capacity(n as usize);
    let rss0 = rss_bytes();

    let t0 = Instant::now();
    for id in 0..n {
        workers.push(rt.start::<Worker>(id).expect("start worker"));
    }
    let started = t0.elapsed();
    let rss1 = rss_bytes();
    assert_eq!(rt.process_count() as u64, n + 1, "spawn: process count after start");

    for w in &workers {
        w.send(WorkerMsg::Ping(collector.clone())).expect("worker is alive");
    }
    let got = collector
        .call_timeout(n, DEADLINE)
        .unwrap_or_else(|e| panic!("spawn: collector call failed: {e}"));
    assert_eq!(got, (n, n * (n - 1) / 2), "spawn: replies (count, sum of ids) mismatch");

    for w in &workers {
        w.send(WorkerMsg::Quit).expect("worker is alive");
    }
    collector.stop(ExitReason::Normal, DEADLINE).expect("stop collector");
    wait_until("spawn: every server gone", DEADLINE, || rt.process_count() == 0);
    let elapsed = t0.elapsed();

    assert!(workers.iter().all(|w| !w.is_alive()), "spawn: a worker is still alive");
    drop(workers);
    rt.shutdown();

    let mut figs = vec![
        ("servers_per_s", rate(n, elapsed)),
        ("starts_per_s", rate(n, started)),
        ("elapsed_s", elapsed.as_secs_f64()),
    ];
    if let (Some(a), Some(b)) = (rss0, rss1) {
        figs.push(("bytes_per_idle_server", b.saturating_sub(a) as f64 / n as f64));
    }
    figs
}
