//! call_latency: an outside thread makes sequential calls to one server. Calls/s, p50
//! and p99 latency. Raw: a request channel, and a reply channel made per call (as a
//! call makes its own reply slot).

use super::{rate, runtime, Config, Figure, Figures, Workload, DEADLINE};
use crate::stats::percentile;
use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo};
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "call_latency",
    summary: &[
        Figure {
            key: "calls_per_s",
            unit: "/s",
            higher_is_better: true,
        },
        Figure {
            key: "p50_ns",
            unit: "ns",
            higher_is_better: false,
        },
        Figure {
            key: "p99_ns",
            unit: "ns",
            higher_is_better: false,
        },
    ],
    arbor,
    raw: Some(raw),
    na_reason: "",
    fresh_process: false,
};

fn calls(cfg: &Config) -> u64 {
    cfg.size.pick(5_000, 200_000)
}

/// Answers `x` with `x + 1`.
struct Echo;

impl GenServer for Echo {
    type Args = ();
    type Info = ();
    type Call = u64;
    type Reply = u64;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Echo)
    }

    fn handle_call(&mut self, x: u64, _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(x + 1)
    }
}

fn figures(n: u64, elapsed: Duration, mut lat: Vec<u64>) -> Figures {
    lat.sort_unstable();
    vec![
        ("calls_per_s", rate(n, elapsed)),
        ("p50_ns", percentile(&lat, 50.0) as f64),
        ("p99_ns", percentile(&lat, 99.0) as f64),
        ("max_ns", *lat.last().unwrap() as f64),
        ("elapsed_s", elapsed.as_secs_f64()),
    ]
}

fn arbor(cfg: &Config) -> Figures {
    let n = calls(cfg);
    let rt = runtime(cfg);
    let echo = rt.start::<Echo>(()).expect("start echo");
    let mut lat = Vec::with_capacity(n as usize);

    let t0 = Instant::now();
    for x in 0..n {
        let t = Instant::now();
        let got = echo
            .call_timeout(x, DEADLINE)
            .unwrap_or_else(|e| panic!("call_latency: call {x} failed: {e}"));
        lat.push(t.elapsed().as_nanos() as u64);
        assert_eq!(got, x + 1, "call_latency: wrong reply");
    }
    let elapsed = t0.elapsed();

    rt.shutdown();
    figures(n, elapsed, lat)
}

fn raw(cfg: &Config) -> Figures {
    let n = calls(cfg);
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, crossbeam_channel::Sender<u64>)>();
    let server = std::thread::spawn(move || {
        while let Ok((x, reply)) = rx.recv() {
            let _ = reply.send(x + 1);
        }
    });
    let mut lat = Vec::with_capacity(n as usize);

    let t0 = Instant::now();
    for x in 0..n {
        let t = Instant::now();
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        tx.send((x, rtx)).unwrap();
        let got = rrx.recv_timeout(DEADLINE).expect("raw call_latency: hang");
        lat.push(t.elapsed().as_nanos() as u64);
        assert_eq!(got, x + 1, "raw call_latency: wrong reply");
    }
    let elapsed = t0.elapsed();

    drop(tx);
    server.join().unwrap();
    figures(n, elapsed, lat)
}
