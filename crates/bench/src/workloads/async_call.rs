//! async_call: calls to one server from async code (tokio), beside the blocking call in
//! the same run, so the two are measured under the same machine load.
//!
//! - one caller: sequential calls from one task on a current-thread tokio runtime,
//!   against sequential blocking calls from one OS thread (calls/s, p50, p99);
//! - many callers: `tasks` tasks on a multi-thread tokio runtime (`threads` workers)
//!   against `tasks` OS threads making blocking calls (calls/s).
//!
//! The ratios async/blocking are figures of their own: the target is a throughput ratio
//! of at least 0.8 and a p50 ratio of at most 2 (docs/performance.md). No raw baseline:
//! the blocking call is this workload's baseline.

use super::{rate, runtime, Config, Figure, Figures, Workload, DEADLINE};
use crate::stats::percentile;
use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, ServerRef};
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "async_call",
    summary: &[
        Figure {
            key: "async_calls_per_s",
            unit: "/s",
            higher_is_better: true,
        },
        Figure {
            key: "blocking_calls_per_s",
            unit: "/s",
            higher_is_better: true,
        },
        Figure {
            key: "throughput_ratio",
            unit: "x",
            higher_is_better: true,
        },
        Figure {
            key: "p50_ratio",
            unit: "x",
            higher_is_better: false,
        },
        Figure {
            key: "many_async_calls_per_s",
            unit: "/s",
            higher_is_better: true,
        },
        Figure {
            key: "many_blocking_calls_per_s",
            unit: "/s",
            higher_is_better: true,
        },
        Figure {
            key: "many_throughput_ratio",
            unit: "x",
            higher_is_better: true,
        },
    ],
    arbor,
    raw: None,
    na_reason: "the blocking call, measured in the same run, is the baseline",
    fresh_process: false,
};

fn calls(cfg: &Config) -> u64 {
    cfg.size.pick(5_000, 200_000)
}

/// Callers in the "many" measurement.
const TASKS: u64 = 64;

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

/// Calls/s, p50 and p99 of sequential latencies.
fn summarize(n: u64, elapsed: Duration, mut lat: Vec<u64>) -> (f64, f64, f64) {
    lat.sort_unstable();
    (
        rate(n, elapsed),
        percentile(&lat, 50.0) as f64,
        percentile(&lat, 99.0) as f64,
    )
}

fn blocking_one(echo: &ServerRef<Echo>, n: u64) -> (f64, f64, f64) {
    let mut lat = Vec::with_capacity(n as usize);
    let t0 = Instant::now();
    for x in 0..n {
        let t = Instant::now();
        let got = echo
            .call_timeout(x, DEADLINE)
            .expect("async_call: blocking call failed");
        lat.push(t.elapsed().as_nanos() as u64);
        assert_eq!(got, x + 1, "async_call: wrong reply");
    }
    summarize(n, t0.elapsed(), lat)
}

fn async_one(echo: &ServerRef<Echo>, n: u64) -> (f64, f64, f64) {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("async_call: tokio runtime");
    tokio_rt.block_on(async {
        let mut lat = Vec::with_capacity(n as usize);
        let t0 = Instant::now();
        for x in 0..n {
            let t = Instant::now();
            let got = echo
                .call_timeout_async(x, DEADLINE)
                .await
                .expect("async_call: async call failed");
            lat.push(t.elapsed().as_nanos() as u64);
            assert_eq!(got, x + 1, "async_call: wrong reply");
        }
        summarize(n, t0.elapsed(), lat)
    })
}

fn blocking_many(echo: &ServerRef<Echo>, n: u64) -> f64 {
    let per = n / TASKS;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..TASKS {
            s.spawn(|| {
                for x in 0..per {
                    assert_eq!(echo.call_timeout(x, DEADLINE), Ok(x + 1), "async_call: blocking call");
                }
            });
        }
    });
    rate(per * TASKS, t0.elapsed())
}

fn async_many(echo: &ServerRef<Echo>, n: u64, threads: usize) -> f64 {
    let per = n / TASKS;
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("async_call: tokio runtime");
    tokio_rt.block_on(async {
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let echo = echo.clone();
                tokio::spawn(async move {
                    for x in 0..per {
                        let got = echo.call_timeout_async(x, DEADLINE).await;
                        assert_eq!(got, Ok(x + 1), "async_call: async call");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("async_call: a task panicked");
        }
        rate(per * TASKS, t0.elapsed())
    })
}

fn arbor(cfg: &Config) -> Figures {
    let n = calls(cfg);
    let rt = runtime(cfg);
    let echo = rt.start::<Echo>(()).expect("start echo");
    // Warm both paths, then measure them back to back.
    blocking_one(&echo, n / 10);
    async_one(&echo, n / 10);
    let (b_rate, b_p50, b_p99) = blocking_one(&echo, n);
    let (a_rate, a_p50, a_p99) = async_one(&echo, n);
    let many_b = blocking_many(&echo, n);
    let many_a = async_many(&echo, n, cfg.threads);
    assert_eq!(rt.timer_count(), 0, "async_call: a call future left a timer behind");
    rt.shutdown();
    vec![
        ("async_calls_per_s", a_rate),
        ("blocking_calls_per_s", b_rate),
        ("throughput_ratio", a_rate / b_rate),
        ("async_p50_ns", a_p50),
        ("blocking_p50_ns", b_p50),
        ("p50_ratio", a_p50 / b_p50),
        ("async_p99_ns", a_p99),
        ("blocking_p99_ns", b_p99),
        ("many_async_calls_per_s", many_a),
        ("many_blocking_calls_per_s", many_b),
        ("many_throughput_ratio", many_a / many_b),
    ]
}
