//! arbor-dist against real `erl` nodes: calls, casts and sends both ways, errors, monitors,
//! links, faults. Each test starts its own epmd and nodes, and its guards kill them.

mod common;

use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
use arbor_dist::{Node, RemoteCallError, Term};
use common::*;
use std::sync::mpsc;
use std::time::Duration;

/// A server for the BEAM to drive: replies `{got, Req}`; `defer` is answered by the next
/// call (a deferred reply); `crash` panics; casts and infos go to a channel.
struct Echo {
    seen: mpsc::Sender<Term>,
    deferred: Option<ReplyTo<Term>>,
}

impl GenServer for Echo {
    type Args = mpsc::Sender<Term>;
    type Info = Term;
    type Call = Term;
    type Reply = Term;

    fn init(seen: mpsc::Sender<Term>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Echo { seen, deferred: None })
    }

    fn handle_call(&mut self, req: Term, from: ReplyTo<Term>, _ctx: &mut Context<'_, Self>) -> CallFlow<Term> {
        if req.is_atom("defer") {
            self.deferred = Some(from);
            return CallFlow::NoReply;
        }
        if req.is_atom("crash") {
            panic!("asked to crash");
        }
        if let Some(d) = self.deferred.take() {
            d.reply(Term::tuple([Term::atom("deferred"), req.clone()]));
        }
        CallFlow::Reply(Term::tuple([Term::atom("got"), req]))
    }

    fn handle_info(&mut self, msg: Term, _ctx: &mut Context<'_, Self>) -> Flow {
        let _ = self.seen.send(msg);
        Flow::Continue
    }
}

struct Setup {
    rt: Runtime,
    node: Node,
    epmd: Epmd,
    seen: mpsc::Receiver<Term>,
    echo: arbor_core::ServerRef<Echo>,
}

fn setup() -> Setup {
    require_beam();
    let epmd = Epmd::start();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let node = Node::builder(&unique("arbor"))
        .cookie(COOKIE)
        .epmd_port(epmd.port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .start(rt.handle())
        .unwrap();
    let (tx, seen) = mpsc::channel();
    let echo = rt.start::<Echo>(tx).unwrap();
    node.register("echo", &echo).unwrap();
    Setup {
        rt,
        node,
        epmd,
        seen,
        echo,
    }
}

fn erl(s: &Setup) -> Beam {
    Beam::erl(&s.epmd, &unique("erl"), COOKIE, &[])
}

fn recv(seen: &mpsc::Receiver<Term>) -> Term {
    seen.recv_timeout(Duration::from_secs(10))
        .expect("a message for the arbor server")
}

const SEC: Duration = Duration::from_secs(5);

#[test]
fn erlang_gen_server_call_reaches_handle_call() {
    let s = setup();
    let mut e = erl(&s);
    let n = s.node.name().as_str().to_string();
    assert_eq!(
        e.eval(&format!("gen_server:call({{echo, '{n}'}}, hello).")),
        "{got,hello}"
    );
    assert_eq!(
        e.eval(&format!("gen_server:call({{echo, '{n}'}}, {{a, <<\"bin\">>, [1,2]}}).")),
        "{got,{a,<<\"bin\">>,[1,2]}}"
    );
    drop(s.rt);
}

#[test]
fn erlang_deferred_reply_and_crash() {
    let s = setup();
    let mut e = erl(&s);
    let n = s.node.name().as_str().to_string();
    // a caller waiting on a deferred reply, answered when the next call comes
    e.eval(&format!(
        "Me = self(), spawn(fun() -> Me ! {{deferred, gen_server:call({{echo, '{n}'}}, defer)}} end), ok."
    ));
    let got = e.eval_until(
        &format!("gen_server:call({{echo, '{n}'}}, {{probe, 1}})."),
        "{got,{probe,1}}",
        SEC,
    );
    assert_eq!(got, "{got,{probe,1}}");
    assert_eq!(
        e.eval("receive {deferred, R} -> R after 5000 -> none end."),
        "{deferred,{probe,1}}"
    );
    // a server that panics mid-call: the caller gets its exit reason at once, not a timeout
    let r = e.eval(&format!("catch gen_server:call({{echo, '{n}'}}, crash, 4000)."));
    assert!(r.starts_with("{'EXIT',{{panic,<<\"asked to crash\">>}"), "{r}");
    // and the name is gone with it
    let r = e.eval(&format!("catch gen_server:call({{echo, '{n}'}}, hello, 4000)."));
    assert!(r.starts_with("{'EXIT',{noproc,"), "{r}");
}

#[test]
fn erlang_casts_and_sends_reach_handle_info() {
    let s = setup();
    let mut e = erl(&s);
    let n = s.node.name().as_str().to_string();
    e.eval(&format!("gen_server:cast({{echo, '{n}'}}, {{hello, <<\"cast\">>}})."));
    assert_eq!(recv(&s.seen).to_string(), "{:hello, \"cast\"}");
    e.eval(&format!("{{echo, '{n}'}} ! plain."));
    assert_eq!(recv(&s.seen), Term::atom("plain"));
    // by pid: arbor hands its pid to an Erlang process, which sends and calls through it
    e.eval("register(box, self()).");
    let pid = s.node.pid_of(&s.echo).unwrap();
    s.node.send(("box", e.name.as_str()), &Term::Pid(pid)).unwrap();
    assert_eq!(
        e.eval("receive P when is_pid(P) -> put(p, P), node(P) after 5000 -> none end."),
        format!("'{n}'")
    );
    assert_eq!(
        e.eval("get(p) ! by_pid, gen_server:call(get(p), by_pid_call)."),
        "{got,by_pid_call}"
    );
    assert_eq!(recv(&s.seen), Term::atom("by_pid"));
}

#[test]
fn erlang_call_to_missing_name_is_noproc() {
    let s = setup();
    let mut e = erl(&s);
    let n = s.node.name().as_str().to_string();
    let r = e.eval(&format!("catch gen_server:call({{nobody, '{n}'}}, hi, 3000)."));
    assert!(r.starts_with("{'EXIT',{noproc,"), "{r}");
}

#[test]
fn arbor_calls_casts_and_sends_to_erlang() {
    let s = setup();
    let mut e = erl(&s);
    e.eval("arbor_test:start(srv).");
    let dest = ("srv", e.name.as_str());
    let r = s.node.call(dest, &(Term::atom("hi"), "there"), SEC).unwrap();
    assert_eq!(r.to_string(), "{:echo, {:hi, \"there\"}}");
    let r: (arbor_dist::Atom, i64) = s
        .node
        .call_as(dest, &Term::tuple([Term::atom("sleep"), Term::Int(1)]), SEC)
        .unwrap();
    assert_eq!(r.0.as_str(), "slept");
    s.node.cast(dest, &"a cast").unwrap();
    s.node.send(dest, &7u8).unwrap();
    let want = "[{cast,<<\"a cast\">>},{info,7}]";
    assert_eq!(e.eval_until("arbor_test:seen(srv).", want, SEC), want);
    // by pid
    let me = Term::Pid(s.node.pid_of(&s.echo).unwrap());
    let whereis = (
        Term::atom("call"),
        Term::atom("erlang"),
        Term::atom("whereis"),
        vec![Term::atom("srv")],
        me,
    );
    let pid: arbor_dist::ExtPid = s.node.call_as(("rex", e.name.as_str()), &whereis, SEC).unwrap();
    assert_eq!(s.node.call(&pid, &1u8, SEC).unwrap().to_string(), "{:echo, 1}");
}

#[test]
fn arbor_call_errors_noproc_timeout_exit_nodedown() {
    let s = setup();
    let mut e = erl(&s);
    e.eval("arbor_test:start(srv).");
    let name = e.name.clone();
    let t0 = std::time::Instant::now();
    assert_eq!(
        s.node.call(("missing", name.as_str()), &1u8, SEC),
        Err(RemoteCallError::NoProc)
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "noproc comes at once");
    // timeout; the late reply is dropped, never taken for the next call's
    let sleep = |ms: i64| Term::tuple([Term::atom("sleep"), Term::Int(ms)]);
    let short = Duration::from_millis(100);
    assert_eq!(
        s.node.call(("srv", name.as_str()), &sleep(500), short),
        Err(RemoteCallError::Timeout)
    );
    assert_eq!(
        s.node
            .call(("srv", name.as_str()), &sleep(600), SEC)
            .unwrap()
            .to_string(),
        "{:slept, 600}"
    );
    // the server's exit reason when it dies mid-call
    let crash = Term::tuple([Term::atom("crash"), Term::atom("boom")]);
    assert_eq!(
        s.node.call(("srv", name.as_str()), &crash, SEC),
        Err(RemoteCallError::Exited(Term::atom("boom")))
    );
    // node down: the peer's OS process killed during a call
    e.eval("arbor_test:start(srv2).");
    let node = s.node.clone();
    let n2 = name.clone();
    let call = std::thread::spawn(move || node.call(("srv2", n2.as_str()), &sleep(20_000), Duration::from_secs(30)));
    let sleeping = "element(2, process_info(whereis(srv2), current_function)).";
    assert!(wait_until(SEC, || e.eval(sleeping) == "{timer,sleep,1}"));
    e.kill();
    let r = call.join().unwrap();
    assert!(matches!(r, Err(RemoteCallError::NodeDown(_))), "{r:?}");
    // and a node that does not exist
    assert!(matches!(
        s.node.call(("x", "nobody@127.0.0.1"), &1u8, SEC),
        Err(RemoteCallError::NodeDown(_))
    ));
}
