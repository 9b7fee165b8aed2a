//! A connection's reader and the user's code it runs: a `FromTerm` that panics fails that
//! one call and leaves the connection up; `receive_coalesce` and `send_coalesce` keep
//! every cast, in order, and a call after them sees them all.
//! Two arbor nodes through an embedded epmd: no BEAM needed.

mod common;

use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
use arbor_dist::{FromTerm, Node, RemoteCallError, Term, TermError};
use common::*;
use std::time::Duration;

/// A request whose reading panics on the atom `boom` (a user's bug).
struct Touchy(i64);

impl FromTerm for Touchy {
    fn from_term(term: Term) -> Result<Self, TermError> {
        if term == Term::atom("boom") {
            panic!("Touchy cannot read boom");
        }
        i64::from_term(term).map(Touchy)
    }
}

/// Answers a call with the messages it was sent, in their order.
struct Recorder {
    seen: Vec<i64>,
}

impl GenServer for Recorder {
    type Args = ();
    type Info = i64;
    type Call = Touchy;
    type Reply = Vec<i64>;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Recorder { seen: Vec::new() })
    }

    fn handle_info(&mut self, n: i64, _ctx: &mut Context<'_, Self>) -> Flow {
        self.seen.push(n);
        Flow::Continue
    }

    fn handle_call(&mut self, t: Touchy, _from: ReplyTo<Vec<i64>>, _ctx: &mut Context<'_, Self>) -> CallFlow<Vec<i64>> {
        let mut out = std::mem::take(&mut self.seen);
        out.push(t.0);
        CallFlow::Reply(out)
    }
}

fn node(rt: &Runtime, name: &str, port: u16, coalesce: Duration) -> Node {
    Node::builder(name)
        .cookie(COOKIE)
        .epmd_port(port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .embedded_epmd(true)
        .receive_coalesce(coalesce)
        .send_coalesce(coalesce)
        .start(rt.handle())
        .unwrap()
}

#[test]
fn a_panicking_from_term_fails_its_call_and_the_connection_stays_up() {
    let port = free_port();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let a = node(&rt, &unique("ra"), port, Duration::ZERO);
    let b = node(&rt, &unique("rb"), port, Duration::ZERO);
    let rec = rt.start::<Recorder>(()).unwrap();
    a.register("rec", &rec).unwrap();
    let dest = ("rec", a.name().as_str());
    let r = b.call(dest, &Term::atom("boom"), Duration::from_secs(5));
    match r {
        Err(RemoteCallError::Exited(why)) => {
            let text = why.to_string();
            assert!(text.contains("bad_request") && text.contains("panicked"), "{text}");
        }
        other => panic!("expected the call to fail with bad_request, got {other:?}"),
    }
    // The same connection carries the next call: the reader survived.
    let got: Vec<i64> = b.call_as(dest, &7i64, Duration::from_secs(5)).unwrap();
    assert_eq!(got, vec![7]);
    assert!(rec.is_alive());
}

fn every_cast_arrives_in_order(coalesce: Duration) {
    let port = free_port();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let a = node(&rt, &unique("ca"), port, coalesce);
    let b = node(&rt, &unique("cb"), port, coalesce);
    let rec = rt.start::<Recorder>(()).unwrap();
    a.register("rec", &rec).unwrap();
    let dest = ("rec", a.name().as_str());
    let mut want = Vec::new();
    for round in 0..20i64 {
        // Bursts of casts and sends, each followed by a call that must see all of them.
        for i in 0..250i64 {
            let n = round * 1000 + i;
            if i % 2 == 0 {
                b.cast(dest, &n).unwrap();
            } else {
                b.send(dest, &n).unwrap();
            }
            want.push(n);
        }
        want.push(-round);
        let got: Vec<i64> = b.call_as(dest, &-round, Duration::from_secs(10)).unwrap();
        assert_eq!(got, want, "round {round}");
        want.clear();
    }
}

#[test]
fn casts_arrive_in_order_without_coalescing() {
    every_cast_arrives_in_order(Duration::ZERO);
}

#[test]
fn casts_arrive_in_order_with_coalescing() {
    every_cast_arrives_in_order(Duration::from_micros(100));
}
