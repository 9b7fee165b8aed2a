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
