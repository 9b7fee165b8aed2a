//! fan_in: 4 OS threads outside the runtime send u64s to one process; then one call
//! returns the count. Messages/s. Raw: 4 threads into one channel, one consumer thread.

use super::{rate, runtime, Config, Figure, Figures, Workload, DEADLINE};
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo};
use std::time::Instant;

pub(crate) const WORKLOAD: Workload = Workload {
    name: "fan_in",
    summary: &[Figure {
        key: "msgs_per_s",
        unit: "/s",
        higher_is_better: true,
    }],
    arbor,
    raw: Some(raw),
    na_reason: "",
    fresh_process: false,
};

const SENDERS: u64 = 4;

fn per_sender(cfg: &Config) -> u64 {
    cfg.size.pick(25_000, 2_500_000)
}

/// Count and sum of what the senders send: each sends 0..per.
fn expected(per: u64) -> (u64, u64) {
    (SENDERS * per, SENDERS * (per * (per - 1) / 2))
}

/// Counts and sums what it receives.
struct Counter {
    count: u64,
    sum: u64,
}

impl GenServer for Counter {
    type Args = ();
    type Info = u64;
    type Call = ();
    /// (count, sum)
    type Reply = (u64, u64);

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter { count: 0, sum: 0 })
    }

    fn handle_info(&mut self, x: u64, _ctx: &mut Context<'_, Self>) -> Flow {
        self.count += 1;
        self.sum += x;
        Flow::Continue
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<(u64, u64)>, _ctx: &mut Context<'_, Self>) -> CallFlow<(u64, u64)> {
        CallFlow::Reply((self.count, self.sum))
    }
}

fn arbor(cfg: &Config) -> Figures {
    let per = per_sender(cfg);
    let rt = runtime(cfg);
    let counter = rt.start::<Counter>(()).expect("start counter");

    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..SENDERS {
            let c = counter.clone();
            s.spawn(move || {
                for x in 0..per {
                    c.send(x).expect("counter is alive");
                }
            });
        }
    });
    let got = counter
        .call_timeout((), DEADLINE)
        .unwrap_or_else(|e| panic!("fan_in: call failed: {e}"));
    let elapsed = t0.elapsed();

    assert_eq!(got, expected(per), "fan_in: (count, sum) mismatch");
    rt.shutdown();
    let n = SENDERS * per;
    vec![("msgs_per_s", rate(n, elapsed)), ("elapsed_s", elapsed.as_secs_f64())]
}

fn raw(cfg: &Config) -> Figures {
    let per = per_sender(cfg);
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    let t0 = Instant::now();
    let consumer = std::thread::spawn(move || {
        let (mut count, mut sum) = (0u64, 0u64);
        while let Ok(x) = rx.recv() {
            count += 1;
            sum += x;
        }
        (count, sum)
    });
    std::thread::scope(|s| {
        for _ in 0..SENDERS {
            let tx = tx.clone();
            s.spawn(move || {
                for x in 0..per {
                    tx.send(x).unwrap();
                }
            });
        }
    });
    drop(tx);
    let got = consumer.join().unwrap();
    let elapsed = t0.elapsed();

    assert_eq!(got, expected(per), "raw fan_in: (count, sum) mismatch");
    let n = SENDERS * per;
    vec![("msgs_per_s", rate(n, elapsed)), ("elapsed_s", elapsed.as_secs_f64())]
}
