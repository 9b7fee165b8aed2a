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
