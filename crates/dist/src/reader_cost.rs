//! The reader's cost per incoming message, through the real path: a raw peer (past the
//! handshake, over loopback) writes casts shaped as an `erl` node's
//! `gen_server:cast({sink, Node}, bump)` (`REG_SEND`) or `gen_server:cast(Pid, bump)`
//! (`SEND_SENDER`), and the node's reader parses, routes and pushes them to an arbor
//! server, which counts them. As a test it checks that each frame arrives exactly once;
//! under callgrind it counts the reader thread's instructions per frame:
//!
//! ```text
//! READER_COST_FRAMES=20000 valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/deps/arbor_dist-HASH reader_cost --test-threads 1
//! callgrind_annotate --inclusive=yes cg.out | grep 'Reader::run'
//! ```
//!
//! (two runs with different frame counts: the difference over the difference of the
//! counts is the cost per frame, without the set-up's.) `READER_COST_TO=pid` sends to
//! the server's pid instead of its name. With `READER_COST_FRAMES` set it also prints
//! each thread's CPU time per frame (`--nocapture`).

use crate::control::To;
use crate::test_peer::Peer;
use crate::{Atom, Term};
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo};
use std::sync::mpsc;
use std::time::Duration;

/// Counts messages; says so on `done` when it has `want` of them.
struct Counter {
    n: usize,
    want: usize,
    done: mpsc::Sender<usize>,
}

impl GenServer for Counter {
    type Args = (usize, mpsc::Sender<usize>);
    type Info = Term;
    type Call = Term;
    type Reply = Term;

    fn init((want, done): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter { n: 0, want, done })
    }

    fn handle_call(&mut self, req: Term, _from: ReplyTo<Term>, _ctx: &mut Context<'_, Self>) -> CallFlow<Term> {
        CallFlow::Reply(req)
    }

    fn handle_info(&mut self, msg: Term, _ctx: &mut Context<'_, Self>) -> Flow {
        assert!(msg.is_atom("bump"), "{msg}");
        self.n += 1;
        assert!(self.n <= self.want, "a frame delivered twice");
        if self.n == self.want {
            let _ = self.done.send(self.n);
        }
        Flow::Continue
    }
}

#[test]
fn reader_cost() {
    let frames: usize = std::env::var("READER_COST_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let by_pid = std::env::var("READER_COST_TO").is_ok_and(|v| v == "pid");
    let mut p = Peer::start("cost");
    let (done, finished) = mpsc::channel();
    let sink = p.rt.start::<Counter>((frames, done)).unwrap();
    let sink_pid = p.node.register("sink", &sink).unwrap();
    let sink_name = Atom::new("sink");
    let to = if by_pid {
        To::Pid(&sink_pid)
    } else {
        To::Name(&sink_name)
    };
    let frame = p.cast_frame(to, &Term::atom("bump"));
    let before = thread_times();
    // Written in chunks of a few hundred frames, as a busy peer's writes come.
    let chunk: Vec<u8> = frame.repeat(256);
    let mut left = frames;
    while left > 0 {
        let n = left.min(256);
        p.write(&chunk[..n * frame.len()]);
        left -= n;
    }
    let got = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("every frame delivered");
    assert_eq!(got, frames);
    if std::env::var_os("READER_COST_FRAMES").is_some() {
        // The CPU time of each thread that ran meanwhile, per frame (for timing runs).
        let after = thread_times();
        for (tid, (name, ns)) in &after {
            let was = before.get(tid).map_or(0, |(_, ns)| *ns);
            if ns - was > 1_000_000 {
                println!(
                    "reader_cost: thread {name}: {:.1} ns per frame",
                    (ns - was) as f64 / frames as f64
                );
            }
        }
    }
    // None more: a frame delivered twice would have failed the counter's assertion, and
    // with it this call.
    assert_eq!(
        sink.call_timeout(Term::atom("flush"), Duration::from_secs(5)).ok(),
        Some(Term::atom("flush"))
    );
}

/// Each thread of this process: its name and its time on a CPU so far (nanoseconds, from
/// `/proc/self/task/TID/schedstat`).
fn thread_times() -> std::collections::HashMap<String, (String, u64)> {
    let mut out = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let dir = t.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        out.insert(
            t.file_name().to_string_lossy().into_owned(),
            (name.trim().to_string(), ns),
        );
    }
    out
}
