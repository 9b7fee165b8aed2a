//! arbor-dist against a real Elixir node: `GenServer.call`, `GenServer.cast`, `send`,
//! Elixir structs, and arbor calling an Elixir GenServer.

mod common;

use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
use arbor_dist::{term_struct, FromTerm, Node, RemoteCallError, Term, ToTerm};
use common::*;
use std::sync::mpsc;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Clone)]
struct Point {
    x: i64,
    y: f64,
    label: String,
}
term_struct!(Point as "Elixir.Point" { x, y, label });

/// Moves a `Point` by (1, 1.0); anything else is answered with `{:unknown, term}`.
struct Mover {
    seen: mpsc::Sender<Term>,
}

impl GenServer for Mover {
    type Args = mpsc::Sender<Term>;
    type Info = Term;
    type Call = Term;
    type Reply = Term;

    fn init(seen: mpsc::Sender<Term>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Mover { seen })
    }

    fn handle_call(&mut self, req: Term, _from: ReplyTo<Term>, _ctx: &mut Context<'_, Self>) -> CallFlow<Term> {
        match Point::from_term(req.clone()) {
            Ok(p) => CallFlow::Reply(
                Point {
                    x: p.x + 1,
                    y: p.y + 1.0,
                    label: p.label,
                }
                .to_term(),
            ),
            Err(_) => CallFlow::Reply(Term::tuple([Term::atom("unknown"), req])),
        }
    }

    fn handle_info(&mut self, msg: Term, _ctx: &mut Context<'_, Self>) -> Flow {
        let _ = self.seen.send(msg);
        Flow::Continue
    }
}

#[test]
fn elixir_drives_an_arbor_server_and_is_driven_by_one() {
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
    let mover = rt.start::<Mover>(tx).unwrap();
    node.register("mover", &mover).unwrap();
    let n = node.name().as_str().to_string();
    let mut ex = Beam::elixir(&epmd, &unique("ex"), COOKIE);

    ex.eval("defmodule Point do defstruct [:x, :y, :label] end");
    // GenServer.call with an Elixir struct, which comes back moved
    let r = ex.eval(&format!(
        r#"GenServer.call({{:mover, :"{n}"}}, %Point{{x: 1, y: 2.5, label: "p"}})"#
    ));
    assert_eq!(r, r#"%Point{x: 2, y: 3.5, label: "p"}"#);
    let r = ex.eval(&format!(
        r#"GenServer.call({{:mover, :"{n}"}}, {{:hello, %{{"k" => [1, 2]}}}})"#
    ));
    assert_eq!(r, r#"{:unknown, {:hello, %{"k" => [1, 2]}}}"#);
    // GenServer.cast and send reach handle_info
    ex.eval(&format!(r#"GenServer.cast({{:mover, :"{n}"}}, {{:moved, "far"}})"#));
    assert_eq!(seen.recv_timeout(SEC).unwrap().to_string(), r#"{:moved, "far"}"#);
    ex.eval(&format!(r#"send({{:mover, :"{n}"}}, :plain)"#));
    assert_eq!(seen.recv_timeout(SEC).unwrap(), Term::atom("plain"));
    // a missing name exits with :noproc
    let r = ex.eval(&format!(
        r#"try do GenServer.call({{:nobody, :"{n}"}}, :hi, 2000) catch :exit, {{reason, _}} -> reason end"#
    ));
    assert_eq!(r, ":noproc");

    // arbor calls an Elixir GenServer
    ex.eval("defmodule Doubler do use GenServer; def init(x), do: {:ok, x}; def handle_call(n, _from, s) when is_integer(n), do: {:reply, n * 2, s}; def handle_call({:sleep, ms}, _from, s), do: (Process.sleep(ms); {:reply, :woke, s}) end");
    ex.eval("{:ok, _} = GenServer.start(Doubler, nil, name: :doubler)");
    assert_eq!(node.call_as::<i64>(("doubler", ex.name.as_str()), &21, SEC), Ok(42));
    let sleepy = Term::tuple([Term::atom("sleep"), Term::Int(300)]);
    let r = node.call(("doubler", ex.name.as_str()), &sleepy, Duration::from_millis(50));
    assert_eq!(r, Err(RemoteCallError::Timeout));
    // a struct built in Rust reads as a struct in Elixir
    let p = Point {
        x: 3,
        y: 0.5,
        label: "from rust".into(),
    };
    ex.eval("Process.register(self(), :inbox)");
    node.send(("inbox", ex.name.as_str()), &p).unwrap();
    let r = ex.eval("receive do %Point{} = p -> p.label after 5000 -> :none end");
    assert_eq!(r, r#""from rust""#);
}
