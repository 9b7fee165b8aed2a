//! The reader's remembered route (`routing::RouteMemo`) follows the tables: frames whose
//! control message is byte for byte the one before (the memo's) go where a lookup would
//! send them now, after a name is registered, re-registered, unregistered, or its
//! process exits.

use crate::control::To;
use crate::test_peer::Peer;
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Reports every message it gets, with its own tag.
struct Reporter {
    tag: char,
    seen: mpsc::Sender<(char, i64)>,
}

impl GenServer for Reporter {
    type Args = (char, mpsc::Sender<(char, i64)>);
    type Info = i64;
    type Call = ();
    type Reply = ();

    fn init((tag, seen): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Reporter { tag, seen })
    }

    fn handle_info(&mut self, n: i64, _ctx: &mut Context<'_, Self>) -> Flow {
        let _ = self.seen.send((self.tag, n));
        Flow::Continue
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<()>, _ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        CallFlow::Reply(())
    }
}

/// The next `n` reports, in order.
fn next(seen: &mpsc::Receiver<(char, i64)>, n: usize) -> Vec<(char, i64)> {
    (0..n)
        .map(|_| seen.recv_timeout(Duration::from_secs(10)).expect("a message"))
        .collect()
}

fn expect(tag: char, range: std::ops::RangeInclusive<i64>) -> Vec<(char, i64)> {
    range.map(|n| (tag, n)).collect()
}

#[test]
fn a_name_registered_again_mid_stream_takes_the_frames_after() {
    let mut p = Peer::start("rm1");
    let (tx, seen) = mpsc::channel();
    let a = p.rt.start::<Reporter>(('a', tx.clone())).unwrap();
    let b = p.rt.start::<Reporter>(('b', tx)).unwrap();
    p.node.register("svc", &a).unwrap();
    p.cast_all("svc", 1..=100i64);
    assert_eq!(next(&seen, 100), expect('a', 1..=100));
    // The same control message's bytes from here on: the reader's memo holds it.
    p.node.register("svc", &b).unwrap();
    p.cast_all("svc", 101..=200i64);
    assert_eq!(next(&seen, 100), expect('b', 101..=200));
    // Nothing more went to `a`: its mailbox is empty once this call is answered.
    a.call(()).unwrap();
    assert!(seen.try_recv().is_err());
    // And back.
    p.node.register("svc", &a).unwrap();
    p.cast_all("svc", 201..=210i64);
    assert_eq!(next(&seen, 10), expect('a', 201..=210));
    b.call(()).unwrap();
    assert!(seen.try_recv().is_err());
}

#[test]
fn frames_to_a_name_registered_late_reach_it_and_none_before() {
    let mut p = Peer::start("rm2");
    let (tx, seen) = mpsc::channel();
    let c = p.rt.start::<Reporter>(('c', tx)).unwrap();
    p.cast_all("late", 1..=20i64);
    // Every frame above is routed (to no one) once the node answers this.
    assert!(p.monitor_is_noproc("late"));
    p.node.register("late", &c).unwrap();
    p.cast_all("late", 21..=40i64);
    assert_eq!(next(&seen, 20), expect('c', 21..=40));
    c.call(()).unwrap();
    assert!(seen.try_recv().is_err());
}

#[test]
fn after_unregister_or_exit_the_frames_are_dropped() {
    let mut p = Peer::start("rm3");
    let (tx, seen) = mpsc::channel();
    let a = p.rt.start::<Reporter>(('a', tx.clone())).unwrap();
    let b = p.rt.start::<Reporter>(('b', tx)).unwrap();
    p.node.register("svc", &a).unwrap();
    p.cast_all("svc", 1..=10i64);
    assert_eq!(next(&seen, 10), expect('a', 1..=10));
    assert!(p.node.unregister("svc"));
    p.cast_all("svc", 11..=20i64);
    assert!(p.monitor_is_noproc("svc"));
    a.call(()).unwrap();
    assert!(
        seen.try_recv().is_err(),
        "a frame reached a server after its name was released"
    );

    // Exit: the name goes with the process.
    p.node.register("svc", &a).unwrap();
    p.cast_all("svc", 21..=30i64);
    assert_eq!(next(&seen, 10), expect('a', 21..=30));
    a.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    p.cast_all("svc", 31..=40i64);
    assert!(p.monitor_is_noproc("svc"));
    // The frames between the exit and the new registration are gone: the new server
    // gets only those after it.
    p.node.register("svc", &b).unwrap();
    p.cast_all("svc", 41..=50i64);
    assert_eq!(next(&seen, 10), expect('b', 41..=50));
    b.call(()).unwrap();
    assert!(seen.try_recv().is_err());
}

#[test]
fn frames_to_a_pid_stop_at_its_exit() {
    let mut p = Peer::start("rm4");
    let (tx, seen) = mpsc::channel();
    let a = p.rt.start::<Reporter>(('a', tx)).unwrap();
    let pid = p.node.pid_of(&a).unwrap();
    let frames = |p: &Peer, r: std::ops::RangeInclusive<i64>| -> Vec<u8> {
        r.flat_map(|n| p.cast_frame(To::Pid(&pid), &n)).collect()
    };
    let f = frames(&p, 1..=10);
    p.write(&f);
    assert_eq!(next(&seen, 10), expect('a', 1..=10));
    a.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    let f = frames(&p, 11..=20);
    p.write(&f);
    // (a monitor by name: a frame that leaves the memo as it is)
    assert!(p.monitor_is_noproc("nobody"));
    assert!(seen.try_recv().is_err());
}

/// Re-registrations racing a stream of frames with the same control message: every
/// frame reaches exactly one of the two servers, each server sees its share in the order
/// sent, and the frames written after the last registration all reach its server.
#[test]
fn registrations_racing_a_stream_lose_and_duplicate_nothing() {
    const N: i64 = 20_000;
    let mut p = Peer::start("rm5");
    let (tx, seen) = mpsc::channel();
    let a = p.rt.start::<Reporter>(('a', tx.clone())).unwrap();
    let b = p.rt.start::<Reporter>(('b', tx)).unwrap();
    p.node.register("svc", &a).unwrap();
    let delivered = Arc::new(AtomicBool::new(false));
    let toggler = {
        let node = p.node.clone();
        let (a, b, delivered) = (a.clone(), b.clone(), Arc::clone(&delivered));
        std::thread::spawn(move || {
            // Until every frame is delivered; the last registration is `a`.
            while !delivered.load(Ordering::Acquire) {
                node.register("svc", &b).unwrap();
                std::thread::yield_now();
                node.register("svc", &a).unwrap();
                std::thread::yield_now();
            }
        })
    };
    for chunk in (1..=N).collect::<Vec<_>>().chunks(500) {
        p.cast_all("svc", chunk.iter().copied());
    }
    let got = next(&seen, N as usize);
    delivered.store(true, Ordering::Release);
    toggler.join().unwrap();
    let mut seen_n = vec![false; N as usize + 1];
    let mut last = [0i64; 2];
    for (tag, n) in got {
        assert!(!std::mem::replace(&mut seen_n[n as usize], true), "{n} delivered twice");
        let side = usize::from(tag == 'b');
        assert!(n > last[side], "{tag} got {n} after {}", last[side]);
        last[side] = n;
    }
    // The toggler ended on `a`; what is written now goes there.
    p.cast_all("svc", N + 1..=N + 10);
    assert_eq!(next(&seen, 10), expect('a', N + 1..=N + 10));
    a.call(()).unwrap();
    b.call(()).unwrap();
    assert!(seen.try_recv().is_err());
}
