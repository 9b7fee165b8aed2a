//! The reading thread runs the turn of a server an incoming call found idle
//! (`Builder::run_calls_on_reader`), against real `erl` nodes: where handlers run, and
//! that a handler that blocks or runs long never leaves the connection unread.

mod common;

use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
use arbor_dist::{Node, Term};
use common::*;
use std::sync::mpsc;
use std::time::Duration;

/// What a `Where` server is asked to do.
#[derive(Clone)]
enum Job {
    /// Reply with the name of the thread the handler runs on.
    Name,
    /// Call `{name, node}` (arbor-dist's `Node::call`) and reply with its answer.
    CallBack(Node, String, String),
    /// Say `held` (on the infos channel), block without telling arbor until the test
    /// says go, then reply `released`.
    Hold(std::sync::Arc<std::sync::Mutex<mpsc::Receiver<()>>>),
    /// Block inside `arbor_core::blocking` (a hand-over at once), then reply `ok`.
    Blocking,
}

struct Where {
    job: Job,
    infos: mpsc::Sender<String>,
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

impl GenServer for Where {
    type Args = (Job, mpsc::Sender<String>);
    type Info = Term;
    type Call = Term;
    type Reply = Term;

    fn init((job, infos): (Job, mpsc::Sender<String>), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Where { job, infos })
    }

    fn handle_call(&mut self, req: Term, _: ReplyTo<Term>, _: &mut Context<'_, Self>) -> CallFlow<Term> {
        CallFlow::Reply(match &self.job {
            Job::Name => Term::binary(thread_name()),
            Job::CallBack(node, name, peer) => {
                match node.call((name.as_str(), peer.as_str()), &req, Duration::from_secs(2)) {
                    Ok(t) => t,
                    Err(e) => Term::tuple([Term::atom("error"), Term::binary(e.to_string())]),
                }
            }
            Job::Hold(go) => {
                let _ = self.infos.send("held".into());
                let _ = go.lock().unwrap().recv_timeout(Duration::from_secs(20));
                Term::atom("released")
            }
            Job::Blocking => arbor_core::blocking(|| Term::atom("ok")),
        })
    }

    fn handle_info(&mut self, _: Term, _: &mut Context<'_, Self>) -> Flow {
        let _ = self.infos.send(thread_name());
        Flow::Continue
    }
}

struct Setup {
    rt: Runtime,
    node: Node,
    epmd: Epmd,
    infos: mpsc::Receiver<String>,
    infos_tx: mpsc::Sender<String>,
    /// The tests of this file run one at a time, as they count this process's reading
    /// threads (dropped last).
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn setup(on_reader: bool) -> Setup {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_beam();
    // The previous test's reading threads end once its connections have closed.
    assert!(
        wait_until(Duration::from_secs(10), || threads_named("dist-r-") == 0),
        "reading threads left by an earlier test"
    );
    let epmd = Epmd::start();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let node = node_builder(&epmd)
        .run_calls_on_reader(on_reader)
        .start(rt.handle())
        .unwrap();
    let (infos_tx, infos) = mpsc::channel();
    Setup {
        rt,
        node,
        epmd,
        infos,
        infos_tx,
        _serial: serial,
    }
}

impl Setup {
    fn export(&self, name: &str, job: Job) {
        let s = self.rt.start::<Where>((job, self.infos_tx.clone())).unwrap();
        self.node.register(name, &s).unwrap();
    }
    fn n(&self) -> String {
        self.node.name().as_str().to_string()
    }
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|c| c.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_call_runs_on_the_thread_that_read_it_and_a_message_on_a_worker() {
    let s = setup(true);
    s.export("where", Job::Name);
    let mut e = Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[]);
    let n = s.n();
    let got = e.eval(&format!("gen_server:call({{where, '{n}'}}, x)."));
    assert!(got.starts_with("<<\"dist-r-"), "{got}");
    assert_eq!(e.eval(&format!("{{where, '{n}'}} ! hi, ok.")), "ok");
    let info = s.infos.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!info.starts_with("dist-r-"), "{info}");
}

#[test]
fn off_every_call_runs_on_a_worker() {
    let s = setup(false);
    s.export("where", Job::Name);
    let mut e = Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[]);
    let n = s.n();
    for _ in 0..20 {
        let got = e.eval(&format!("gen_server:call({{where, '{n}'}}, x)."));
        assert!(got.starts_with("<<\"") && !got.starts_with("<<\"dist-r-"), "{got}");
    }
}

#[test]
fn a_handler_that_calls_back_over_the_same_connection_gets_its_answer() {
    let s = setup(true);
    let mut e = Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[]);
    let peer = e.eval("atom_to_list(node()).").trim_matches('"').to_string();
    assert!(e.eval("is_pid(arbor_test:start(pong)).") == "true");
    s.export("bounce", Job::CallBack(s.node.clone(), "pong".into(), peer));
    let n = s.n();
    // The reply to arbor's call comes over the connection whose reading thread runs the
    // handler: another thread must read it.
    for i in 0..50 {
        assert_eq!(
            e.eval(&format!("gen_server:call({{bounce, '{n}'}}, {i}, 10000).")),
            format!("{{echo,{i}}}")
        );
    }
}

#[test]
fn a_handler_that_blocks_without_telling_arbor_leaves_the_connection_read() {
    let s = setup(true);
    let (go, held) = mpsc::channel();
    s.export("slow", Job::Hold(std::sync::Arc::new(std::sync::Mutex::new(held))));
    s.export("where", Job::Name);
    let mut e = Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[]);
    let n = s.n();
    // `slow` holds its handler (on the reading thread) until the test says go, which it
    // does only after a call to `where`, sent over the same connection once `slow` is
    // held, has been answered.
    assert_eq!(
        e.eval(&format!(
            "R = gen_server:send_request({{slow, '{n}'}}, x), put(r, R), ok."
        )),
        "ok"
    );
    assert_eq!(s.infos.recv_timeout(Duration::from_secs(10)).unwrap(), "held");
    let got = e.eval(&format!(
        "W = gen_server:call({{where, '{n}'}}, x, 10000), is_binary(W)."
    ));
    assert_eq!(got, "true");
    go.send(()).unwrap();
    assert_eq!(
        e.eval("gen_server:receive_response(get(r), 10000)."),
        "{reply,released}"
    );
}

#[test]
fn hand_overs_keep_at_most_two_reading_threads_and_end_with_the_connection() {
    let s = setup(true);
    s.export("blocker", Job::Blocking);
    let before = threads_named("dist-r-");
    let mut e = Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[]);
    let n = s.n();
    // Every call hands the reading over to the other thread (its handler blocks).
    let calls = 20_000;
    assert_eq!(
        e.eval_timeout(
            &format!("lists:all(fun(I) -> gen_server:call({{blocker, '{n}'}}, I) == ok end, lists:seq(1, {calls}))."),
            Duration::from_secs(120)
        ),
        "true"
    );
    // The reading thread and the one follower that takes over, in turn.
    let during = threads_named("dist-r-") - before;
    assert_eq!(during, 2, "reading threads for one connection");
    e.kill();
    assert!(
        wait_until(Duration::from_secs(30), || threads_named("dist-r-") == before),
        "{} reading threads left after the connection ended",
        threads_named("dist-r-") - before
    );
    assert_eq!(s.rt.stats().inline_runners, 0);
}

#[test]
fn a_connection_lost_during_a_held_turn_ends_its_reading_threads_and_the_turn_finishes() {
    let s = setup(true);
    let (go, held) = mpsc::channel();
    s.export("slow", Job::Hold(std::sync::Arc::new(std::sync::Mutex::new(held))));
    let before = threads_named("dist-r-");
    let mut e = Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[]);
    let n = s.n();
    assert_eq!(
        e.eval(&format!("_ = gen_server:send_request({{slow, '{n}'}}, x), ok.")),
        "ok"
    );
    assert_eq!(s.infos.recv_timeout(Duration::from_secs(10)).unwrap(), "held");
    // The monitor hands the reading to a follower while `slow` holds the first thread.
    assert!(wait_until(Duration::from_secs(10), || threads_named("dist-r-")
        - before
        == 2));
    let peer = e.eval("atom_to_list(node()).").trim_matches('"').to_string();
    let (down_tx, down) = mpsc::channel();
    let _watch = s.node.monitor_node(&peer, move |_| {
        let _ = down_tx.send(());
    });
    e.kill();
    // The follower reads the end of the connection: the node is told.
    down.recv_timeout(Duration::from_secs(10))
        .expect("nodedown while the turn is held");
    assert!(!s.node.nodes().iter().any(|a| a.as_str() == peer));
    // The held turn finishes (its reply has nowhere to go), and its thread ends too.
    go.send(()).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || threads_named("dist-r-") == before),
        "{} reading threads left",
        threads_named("dist-r-") - before
    );
    assert!(wait_until(Duration::from_secs(10), || s.rt.stats().inline_runners == 0));
}
