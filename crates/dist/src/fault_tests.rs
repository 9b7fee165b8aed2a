//! A hostile peer, speaking the handshake correctly and then sending garbage: the node
//! closes that connection and keeps serving everyone else. Needs `epmd` on the PATH.

use crate::handshake::{self, flags, Me};
use crate::{epmd, Node, Term};
use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "fault-cookie";

struct Epmd {
    port: u16,
    child: Child,
}

impl Drop for Epmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn epmd() -> Epmd {
    // never a port handed out before in this process: the tests run in parallel
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let port = loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            break port;
        }
    };
    let child = Command::new("epmd")
        .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("epmd (apt-get install -y erlang-base)");
    let e = Epmd { port, child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "epmd did not start");
        std::thread::park_timeout(Duration::from_millis(10));
    }
    e
}

struct Adder;

impl GenServer for Adder {
    type Args = ();
    type Info = Term;
    type Call = (i64, i64);
    type Reply = i64;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Adder)
    }

    fn handle_call(&mut self, (a, b): (i64, i64), _from: ReplyTo<i64>, _ctx: &mut Context<'_, Self>) -> CallFlow<i64> {
        CallFlow::Reply(a + b)
    }
}

fn start(rt: &Runtime, name: &str, e: &Epmd) -> Node {
    Node::builder(name)
        .cookie(COOKIE)
        .epmd_port(e.port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .max_frame(1 << 20)
        .start(rt.handle())
        .unwrap()
}

/// A raw peer that has passed the handshake with `target`.
fn raw_peer(e: &Epmd, target: &str, me: &str) -> TcpStream {
    let alive = target.split('@').next().unwrap();
    let (addr, _) = epmd::lookup("127.0.0.1", e.port, alive).unwrap().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = Me {
        name: me,
        flags: flags::OURS,
        creation: 7,
        cookie: COOKIE,
    };
    handshake::initiate(&mut s, &me, target, || true).unwrap();
    s
}

/// True once the node has closed `s` (reads reach EOF; ticks are skipped).
fn closed_by_node(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn malformed_and_oversized_frames_close_only_that_connection() {
    let e = epmd();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let a = start(&rt, "fa@127.0.0.1", &e);
    let adder = rt.start::<Adder>(()).unwrap();
    a.register("adder", &adder).unwrap();
    let b = start(&rt, "fb@127.0.0.1", &e);
    assert_eq!(
        b.call_as::<i64>(("adder", "fa@127.0.0.1"), &(2, 3), Duration::from_secs(5)),
        Ok(5)
    );

    // a frame that is not pass-through
    let mut s = raw_peer(&e, "fa@127.0.0.1", "raw1@127.0.0.1");
    s.write_all(&[0, 0, 0, 3, 68, 1, 2]).unwrap();
    assert!(closed_by_node(&mut s));
    // a control term that is not a term
    let mut s = raw_peer(&e, "fa@127.0.0.1", "raw2@127.0.0.1");
    s.write_all(&[0, 0, 0, 7, 112, 131, 108, 255, 255, 255, 255]).unwrap();
    assert!(closed_by_node(&mut s));
    // a well-formed term that is no control message
    let mut s = raw_peer(&e, "fa@127.0.0.1", "raw3@127.0.0.1");
    s.write_all(&[0, 0, 0, 4, 112, 131, 97, 1]).unwrap();
    assert!(closed_by_node(&mut s));
    // an oversized frame: refused from its length, before its body is sent
    let mut s = raw_peer(&e, "fa@127.0.0.1", "raw4@127.0.0.1");
    s.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    assert!(closed_by_node(&mut s));
    // garbage instead of a handshake
    let alive_addr = epmd::lookup("127.0.0.1", e.port, "fa").unwrap().unwrap().0;
    let mut g = TcpStream::connect(alive_addr).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    g.write_all(&[0xff; 64]).unwrap();
    assert!(closed_by_node(&mut g));

    // the node and its other connection are unharmed
    assert_eq!(
        b.call_as::<i64>(("adder", "fa@127.0.0.1"), &(20, 22), Duration::from_secs(5)),
        Ok(42)
    );
    let mut names: Vec<String> = a.nodes().iter().map(|n| n.as_str().to_string()).collect();
    names.sort();
    assert_eq!(names, vec!["fb@127.0.0.1".to_string()]);
}

/// Reports each message to a channel, with its own name.
struct Collector {
    name: &'static str,
    seen: std::sync::mpsc::Sender<(&'static str, Term)>,
}

impl GenServer for Collector {
    type Args = (&'static str, std::sync::mpsc::Sender<(&'static str, Term)>);
    type Info = Term;
    type Call = ();
    type Reply = ();

    fn init((name, seen): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Collector { name, seen })
    }

    fn handle_info(&mut self, msg: Term, _ctx: &mut Context<'_, Self>) -> arbor_core::Flow {
        let _ = self.seen.send((self.name, msg));
        arbor_core::Flow::Continue
    }
}

/// Many frames in one write (so one read takes them together): messages to two servers
/// interleaved, a run longer than a batch to one of them, then a malformed frame. Every
/// message before the bad frame arrives once, each server's in the order sent, and the
/// bad frame closes the connection.
#[test]
fn frames_read_together_reach_each_server_in_order_up_to_a_bad_frame() {
    use crate::control::{self, Control};
    let e = epmd();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let a = start(&rt, "ga@127.0.0.1", &e);
    let (tx, rx) = std::sync::mpsc::channel();
    let ca = rt.start::<Collector>(("ca", tx.clone())).unwrap();
    let cb = rt.start::<Collector>(("cb", tx)).unwrap();
    a.register("ca", &ca).unwrap();
    a.register("cb", &cb).unwrap();
    let from = crate::ExtPid {
        node: crate::Atom::new("rawg@127.0.0.1"),
        id: 1,
        serial: 0,
        creation: 7,
    };
    let mut bytes = Vec::new();
    let mut want = (Vec::new(), Vec::new());
    for i in 0..700i64 {
        // interleaved first, then a run of 400 to `ca` alone
        let to = if i < 300 && i % 3 == 0 { "cb" } else { "ca" };
        let msg = Term::tuple([Term::atom("$gen_cast"), Term::Int(i)]);
        let c = Control::RegSend {
            from: from.clone(),
            to: crate::Atom::new(to),
            msg,
        };
        bytes.extend(control::frame(&c, None).unwrap());
        if to == "ca" { &mut want.0 } else { &mut want.1 }.push(Term::Int(i));
    }
    bytes.extend([0, 0, 0, 4, 112, 131, 97, 1]);
    let mut s = raw_peer(&e, "ga@127.0.0.1", "rawg@127.0.0.1");
    s.write_all(&bytes).unwrap();
    assert!(closed_by_node(&mut s));
    let mut got = (Vec::new(), Vec::new());
    for _ in 0..700 {
        let (name, msg) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("every message before the bad frame");
        if name == "ca" { &mut got.0 } else { &mut got.1 }.push(msg);
    }
    assert_eq!(got, want);
    // and no more than those
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn simultaneous_connects_settle_on_one_connection() {
    let e = epmd();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let a = start(&rt, "sa@127.0.0.1", &e);
    let b = start(&rt, "sb@127.0.0.1", &e);
    for round in 0..20 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let (a2, b2) = (a.clone(), b.clone());
        let (ba, bb) = (barrier.clone(), barrier);
        let ta = std::thread::spawn(move || {
            ba.wait();
            a2.connect("sb@127.0.0.1")
        });
        let tb = std::thread::spawn(move || {
            bb.wait();
            b2.connect("sa@127.0.0.1")
        });
        assert!(ta.join().unwrap().is_ok(), "round {round}");
        assert!(tb.join().unwrap().is_ok(), "round {round}");
        assert_eq!(a.nodes().len(), 1);
        assert_eq!(b.nodes().len(), 1);
        a.disconnect("sb@127.0.0.1");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(a.nodes().is_empty() && b.nodes().is_empty()) {
            assert!(Instant::now() < deadline, "round {round}: not disconnected");
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }
}

/// Answers every call with a megabyte.
struct Big;

impl GenServer for Big {
    type Args = ();
    type Info = Term;
    type Call = Term;
    type Reply = Term;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Big)
    }

    fn handle_call(&mut self, _req: Term, _from: ReplyTo<Term>, _ctx: &mut Context<'_, Self>) -> CallFlow<Term> {
        CallFlow::Reply(Term::Binary(vec![7; 1 << 20]))
    }
}

/// A peer that calls and never reads its replies: the replies fill the socket, yet the
/// runtime's only worker is never held by the write (a local call is still answered at
/// once), and the connection is closed once the peer has taken no byte for the net tick
/// time.
#[test]
fn a_peer_that_does_not_read_holds_no_worker_and_is_dropped() {
    use crate::control::{frame, Control};
    use crate::term::{Atom, ExtPid, ExtRef};
    let e = epmd();
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let a = Node::builder("fr@127.0.0.1")
        .cookie(COOKIE)
        .epmd_port(e.port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .net_ticktime(Duration::from_secs(1))
        .start(rt.handle())
        .unwrap();
    let big = rt.start::<Big>(()).unwrap();
    a.register("big", &big).unwrap();
    let adder = rt.start::<Adder>(()).unwrap();
    let mut s = raw_peer(&e, "fr@127.0.0.1", "deaf@127.0.0.1");
    let me = ExtPid {
        node: Atom::new("deaf@127.0.0.1"),
        id: 1,
        serial: 0,
        creation: 7,
    };
    for i in 0..32 {
        let tag = Term::Ref(Box::new(ExtRef {
            node: me.node.clone(),
            creation: 7,
            id: vec![i, 0, 0],
        }));
        let call = Control::RegSend {
            from: me.clone(),
            to: Atom::new("big"),
            msg: Term::tuple([
                Term::atom("$gen_call"),
                Term::tuple([Term::Pid(me.clone()), tag]),
                Term::atom("give"),
            ]),
        };
        s.write_all(&frame(&call, None).unwrap()).unwrap();
    }
    // The peer ticks (so it is not declared silent) but never reads.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut ticker, stop2) = (s.try_clone().unwrap(), stop.clone());
    let ticks = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            if ticker.write_all(&[0, 0, 0, 0]).is_err() {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    });
    // 32 MiB of replies wait for a reader that never comes, while the only worker answers
    // local calls: none waits behind a blocked write (that would take the write timeout).
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(600) {
        let t = Instant::now();
        assert_eq!(adder.call_timeout((1, 2), Duration::from_secs(5)), Ok(3));
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "a local call took {:?}",
            t.elapsed()
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
    // Dropped after the net tick time without progress, though it ticks.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.nodes().is_empty() {
        assert!(Instant::now() < deadline, "the deaf peer is still connected");
        std::thread::park_timeout(Duration::from_millis(20));
    }
    assert_eq!(adder.call_timeout((20, 22), Duration::from_secs(2)), Ok(42));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ticks.join().unwrap();
    drop(s);
}
