//! thread_ring: processes in a ring pass a token around. Hops/s. Raw: the same number of
//! OS threads, each with a channel.

use super::{rate, runtime, Config, Figure, Figures, Workload, DEADLINE};
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, ServerRef};
use std::time::Instant;

pub(crate) const WORKLOAD: Workload = Workload {
    name: "thread_ring",
    summary: &[Figure {
        key: "hops_per_s",
        unit: "/s",
        higher_is_better: true,
    }],
    arbor,
    raw: Some(raw),
    na_reason: "",
    fresh_process: false,
};

fn sizes(cfg: &Config) -> (usize, u64) {
    cfg.size.pick((503, 20_000), (503, 10_000_000))
}

/// One link of the ring.
struct Node {
    next: Option<ServerRef<Node>>,
    hops: u64,
}

enum NodeMsg {
    /// The next node in the ring.
    Next(Option<ServerRef<Node>>),
    /// The token: hops still to go, and who to tell when there are none.
    Token(u64, ReplyTo<u64>),
}

enum NodeCall {
    /// Inject a token with this many hops; the reply comes when it has made them all.
    Run(u64),
    /// How many times this node passed the token on.
    Hops,
}

impl Node {
    fn pass(&mut self, left: u64, done: ReplyTo<u64>) {
        if left == 0 {
            assert!(done.reply(0), "thread_ring: the run call's caller is gone");
        } else {
            self.hops += 1;
            let next = self.next.as_ref().expect("ring is closed");
            if next.send(NodeMsg::Token(left - 1, done)).is_err() {
                panic!("thread_ring: next node is dead");
            }
        }
    }
}

impl GenServer for Node {
    type Args = ();
    type Info = NodeMsg;
    type Call = NodeCall;
    type Reply = u64;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Node { next: None, hops: 0 })
    }

    fn handle_info(&mut self, msg: NodeMsg, _ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            NodeMsg::Next(next) => self.next = next,
            NodeMsg::Token(left, done) => self.pass(left, done),
        }
        Flow::Continue
    }

    fn handle_call(&mut self, req: NodeCall, from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        match req {
            NodeCall::Run(n) => {
                self.pass(n, from);
                CallFlow::NoReply
            }
            NodeCall::Hops => CallFlow::Reply(self.hops),
        }
    }
}

fn arbor(cfg: &Config) -> Figures {
    let (size, n) = sizes(cfg);
    let rt = runtime(cfg);
    let nodes: Vec<ServerRef<Node>> = (0..size).map(|_| rt.start::<Node>(()).expect("start node")).collect();
    for (i, node) in nodes.iter().enumerate() {
        node.send(NodeMsg::Next(Some(nodes[(i + 1) % size].clone()))).unwrap();
    }

    let t0 = Instant::now();
    nodes[0]
        .call_timeout(NodeCall::Run(n), DEADLINE)
        .unwrap_or_else(|e| panic!("thread_ring: run call failed: {e}"));
    let elapsed = t0.elapsed();

    let mut total = 0;
    for node in &nodes {
        total += node.call(NodeCall::Hops).expect("hops");
        node.send(NodeMsg::Next(None)).unwrap(); // break the reference cycle
    }
    assert_eq!(total, n, "thread_ring: hops counted by the nodes");
    rt.shutdown();
    vec![("hops_per_s", rate(n, elapsed)), ("elapsed_s", elapsed.as_secs_f64())]
}

/// Tells a raw ring thread to pass the stop on and exit.
const STOP: u64 = u64::MAX;

fn raw(cfg: &Config) -> Figures {
    let (size, n) = sizes(cfg);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let channels: Vec<_> = (0..size).map(|_| crossbeam_channel::unbounded::<u64>()).collect();
    let first = channels[0].0.clone();
    let threads: Vec<_> = (0..size)
        .map(|i| {
            let rx = channels[i].1.clone();
            let next = channels[(i + 1) % size].0.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut hops = 0u64;
                    while let Ok(left) = rx.recv() {
                        if left == STOP {
                            let _ = next.send(STOP);
                            break;
                        } else if left == 0 {
                            done.send(()).unwrap();
                        } else {
                            hops += 1;
                            next.send(left - 1).unwrap();
                        }
                    }
                    hops
                })
                .expect("spawn ring thread")
        })
        .collect();
    drop(channels);

    let t0 = Instant::now();
    first.send(n).unwrap();
    done_rx.recv_timeout(DEADLINE).expect("raw thread_ring: hang");
    let elapsed = t0.elapsed();

    first.send(STOP).unwrap();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, n, "raw thread_ring: hops counted by the threads");
    vec![("hops_per_s", rate(n, elapsed)), ("elapsed_s", elapsed.as_secs_f64())]
}
