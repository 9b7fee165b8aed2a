//! timers: many processes each arm `send_after` with delays spread over 1–100 ms, several
//! times in a row (each re-arms on firing). p50 and p99 lateness: when the message is
//! handled minus when it was due. Raw: one thread with a BinaryHeap of deadlines that
//! sleeps until the next.

use super::{runtime, Config, Figure, Figures, Workload, DEADLINE};
use crate::stats::percentile;
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, ServerRef};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "timers",
    summary: &[
        Figure {
            key: "p50_late_us",
            unit: "µs",
            higher_is_better: false,
        },
        Figure {
            key: "p99_late_us",
            unit: "µs",
            higher_is_better: false,
        },
    ],
    arbor,
    raw: Some(raw),
    na_reason: "",
    fresh_process: false,
};

struct Params {
    procs: u64,
    rounds: usize,
    max_delay_ms: u64,
}

fn params(cfg: &Config) -> Params {
    cfg.size.pick(
        Params {
            procs: 1_000,
            rounds: 3,
            max_delay_ms: 20,
        },
        Params {
            procs: 10_000,
            rounds: 5,
            max_delay_ms: 100,
        },
    )
}

/// Process `i`'s delay: spread evenly over 1..=max ms.
fn delay(i: u64, max_ms: u64) -> Duration {
    Duration::from_millis(1 + (i * 37) % max_ms)
}

/// Lateness of a firing in ns: negative if it fired early.
fn late_ns(now: Instant, due: Instant) -> i64 {
    match now.checked_duration_since(due) {
        Some(d) => d.as_nanos() as i64,
        None => -(due.duration_since(now).as_nanos() as i64),
    }
}

/// Arms a timer, re-arms it when it fires, reports its latenesses after the last round.
struct Sleeper {
    delay: Duration,
    due: Instant,
    late: Vec<i64>,
    rounds: usize,
    collector: ServerRef<Collector>,
}

/// A timer firing.
struct Fire;

impl Sleeper {
    fn arm(&mut self, ctx: &mut Context<'_, Self>) {
        // Due is taken before arming: the runtime's own deadline is no earlier.
        self.due = Instant::now() + self.delay;
        ctx.send_after(self.delay, Fire);
    }
}

impl GenServer for Sleeper {
    type Args = (Duration, usize, ServerRef<Collector>);
    type Info = Fire;
    type Call = ();
    type Reply = ();

    fn init((delay, rounds, collector): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        let mut s = Sleeper {
            delay,
            due: Instant::now(),
            late: Vec::with_capacity(rounds),
            rounds,
            collector,
        };
        s.arm(ctx);
        Ok(s)
    }

    fn handle_info(&mut self, _: Fire, ctx: &mut Context<'_, Self>) -> Flow {
        self.late.push(late_ns(Instant::now(), self.due));
        if self.late.len() < self.rounds {
            self.arm(ctx);
            Flow::Continue
        } else {
            let late = std::mem::take(&mut self.late);
            self.collector.send(late).expect("collector is alive");
            Flow::Stop(ExitReason::Normal)
        }
    }
}

/// Gathers every sleeper's latenesses; a call waits until `n` sleepers have reported.
struct Collector {
    reports: u64,
    late: Vec<i64>,
    waiting: Option<(u64, ReplyTo<Vec<i64>>)>,
}

impl Collector {
    fn check(&mut self) {
        if self.waiting.as_ref().is_some_and(|(n, _)| self.reports >= *n) {
            let (_, from) = self.waiting.take().unwrap();
            from.reply(std::mem::take(&mut self.late));
        }
    }
}

impl GenServer for Collector {
    type Args = ();
    type Info = Vec<i64>;
    type Call = u64;
    type Reply = Vec<i64>;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Collector {
            reports: 0,
            late: Vec::new(),
            waiting: None,
        })
    }

    fn handle_info(&mut self, late: Vec<i64>, _ctx: &mut Context<'_, Self>) -> Flow {
        self.reports += 1;
        self.late.extend(late);
        self.check();
        Flow::Continue
    }

    fn handle_call(&mut self, n: u64, from: ReplyTo<Vec<i64>>, _ctx: &mut Context<'_, Self>) -> CallFlow<Vec<i64>> {
        self.waiting = Some((n, from));
        self.check();
        CallFlow::NoReply
    }
}

fn figures(what: &str, p: &Params, mut late: Vec<i64>) -> Figures {
    let expected = p.procs as usize * p.rounds;
    assert_eq!(late.len(), expected, "{what}: number of firings");
    late.sort_unstable();
    let early = late.iter().take_while(|&&l| l < 0).count();
    assert_eq!(early, 0, "{what}: {early} timers fired early (earliest {} ns)", late[0]);
    let us = |ns: i64| ns as f64 / 1e3;
    vec![
        ("p50_late_us", us(percentile(&late, 50.0))),
        ("p99_late_us", us(percentile(&late, 99.0))),
        ("max_late_us", us(*late.last().unwrap())),
        ("firings", late.len() as f64),
    ]
}

fn arbor(cfg: &Config) -> Figures {
    let p = params(cfg);
    let rt = runtime(cfg);
    let collector = rt.start::<Collector>(()).expect("start collector");
    for i in 0..p.procs {
        rt.start::<Sleeper>((delay(i, p.max_delay_ms), p.rounds, collector.clone()))
            .expect("start sleeper");
    }
    let late = collector
        .call_timeout(p.procs, DEADLINE)
        .unwrap_or_else(|e| panic!("timers: collector call failed: {e}"));
    rt.shutdown();
    figures("timers", &p, late)
}

fn raw(cfg: &Config) -> Figures {
    let p = params(cfg);
    let delays: Vec<Duration> = (0..p.procs).map(|i| delay(i, p.max_delay_ms)).collect();
    let mut fired = vec![0usize; p.procs as usize];
    let mut heap = BinaryHeap::with_capacity(p.procs as usize);
    for (i, d) in delays.iter().enumerate() {
        heap.push(Reverse((Instant::now() + *d, i)));
    }
    let mut late = Vec::with_capacity(p.procs as usize * p.rounds);
    let start = Instant::now();
    while let Some(&Reverse((due, i))) = heap.peek() {
        assert!(start.elapsed() < DEADLINE, "raw timers: hang");
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
            continue;
        }
        heap.pop();
        late.push(late_ns(now, due));
        fired[i] += 1;
        if fired[i] < p.rounds {
            heap.push(Reverse((Instant::now() + delays[i], i)));
        }
    }
    figures("raw timers", &p, late)
}
