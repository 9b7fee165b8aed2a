//! ping_pong: two processes bounce a message back and forth. Round trips/s.
//! Raw: two threads with two channels.

use super::{rate, runtime, Config, Figure, Figures, Workload, DEADLINE};
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, ServerRef};
use std::time::Instant;

pub(crate) const WORKLOAD: Workload = Workload {
    name: "ping_pong",
    summary: &[Figure {
        key: "round_trips_per_s",
        unit: "/s",
        higher_is_better: true,
    }],
    arbor,
    raw: Some(raw),
    na_reason: "",
    fresh_process: false,
};

fn round_trips(cfg: &Config) -> u64 {
    cfg.size.pick(10_000, 1_000_000)
}

/// Serves the ball: started by a call, answers it once the last round trip is back.
struct Pinger {
    peer: Option<ServerRef<Ponger>>,
    received: u64,
    done: Option<ReplyTo<u64>>,
}

/// Returns every ball to the pinger.
struct Ponger {
    peer: ServerRef<Pinger>,
    received: u64,
}

impl GenServer for Pinger {
    type Args = ();
    /// The ball: round trips still to go, this one included.
    type Info = u64;
    /// Start `n` round trips against this ponger.
    type Call = (ServerRef<Ponger>, u64);
    /// Balls received.
    type Reply = u64;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Pinger {
            peer: None,
            received: 0,
            done: None,
        })
    }

    fn handle_call(
        &mut self,
        (peer, n): Self::Call,
        from: ReplyTo<u64>,
        _ctx: &mut Context<'_, Self>,
    ) -> CallFlow<u64> {
        peer.send(n).expect("ponger is alive");
        self.peer = Some(peer);
        self.done = Some(from);
        CallFlow::NoReply
    }

    fn handle_info(&mut self, left: u64, _ctx: &mut Context<'_, Self>) -> Flow {
        self.received += 1;
        if left == 1 {
            self.peer = None; // no reference cycle left behind
            let done = self.done.take().expect("a pending start call");
            assert!(done.reply(self.received), "the start call's caller is gone");
        } else {
            self.peer
                .as_ref()
                .expect("a peer")
                .send(left - 1)
                .expect("ponger is alive");
        }
        Flow::Continue
    }
}

impl GenServer for Ponger {
    type Args = ServerRef<Pinger>;
    type Info = u64;
    type Call = ();
    /// Balls received.
    type Reply = u64;

    fn init(peer: ServerRef<Pinger>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Ponger { peer, received: 0 })
    }

    fn handle_info(&mut self, ball: u64, _ctx: &mut Context<'_, Self>) -> Flow {
        self.received += 1;
        self.peer.send(ball).expect("pinger is alive");
        Flow::Continue
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.received)
    }
}

fn arbor(cfg: &Config) -> Figures {
    let n = round_trips(cfg);
    let rt = runtime(cfg);
    let pinger = rt.start::<Pinger>(()).expect("start pinger");
    let ponger = rt.start::<Ponger>(pinger.clone()).expect("start ponger");

    let t0 = Instant::now();
    let got = pinger
        .call_timeout((ponger.clone(), n), DEADLINE)
        .unwrap_or_else(|e| panic!("ping_pong: call failed: {e}"));
    let elapsed = t0.elapsed();

    assert_eq!(got, n, "ping_pong: pinger received {got} balls, expected {n}");
    let back = ponger.call(()).expect("ponger count");
    assert_eq!(back, n, "ping_pong: ponger received {back} balls, expected {n}");
    rt.shutdown();
    vec![
        ("round_trips_per_s", rate(n, elapsed)),
        ("elapsed_s", elapsed.as_secs_f64()),
    ]
}

fn raw(cfg: &Config) -> Figures {
    let n = round_trips(cfg);
    let (to_b, b_rx) = crossbeam_channel::unbounded::<u64>();
    let (to_a, a_rx) = crossbeam_channel::unbounded::<u64>();
    let b = std::thread::spawn(move || {
        let mut received = 0u64;
        while let Ok(ball) = b_rx.recv() {
            received += 1;
            if to_a.send(ball).is_err() {
                break;
            }
        }
        received
    });

    let t0 = Instant::now();
    let mut received = 0u64;
    to_b.send(n).unwrap();
    loop {
        let left = a_rx.recv_timeout(DEADLINE).expect("raw ping_pong: hang");
        received += 1;
        if left == 1 {
            break;
        }
        to_b.send(left - 1).unwrap();
    }
    let elapsed = t0.elapsed();

    drop(to_b);
    let back = b.join().unwrap();
    assert_eq!(received, n, "raw ping_pong: a received {received}, expected {n}");
    assert_eq!(back, n, "raw ping_pong: b received {back}, expected {n}");
    vec![
        ("round_trips_per_s", rate(n, elapsed)),
        ("elapsed_s", elapsed.as_secs_f64()),
    ]
}
