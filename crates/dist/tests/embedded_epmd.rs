//! Arbor nodes clustering through an embedded epmd (no `epmd` process), and an `erl` node
//! joining them through it.

mod common;

use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime};
use arbor_dist::{EmbeddedEpmd, Node, Term};
use common::*;
use std::time::Duration;

struct Greeter;

impl GenServer for Greeter {
    type Args = ();
    type Info = Term;
    type Call = String;
    type Reply = String;

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Greeter)
    }

    fn handle_call(&mut self, who: String, _from: ReplyTo<String>, _ctx: &mut Context<'_, Self>) -> CallFlow<String> {
        CallFlow::Reply(format!("hello, {who}"))
    }
}

fn node(rt: &Runtime, name: &str, port: u16) -> Node {
    Node::builder(name)
        .cookie(COOKIE)
        .epmd_port(port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .embedded_epmd(true)
        .start(rt.handle())
        .unwrap()
}

#[test]
fn arbor_nodes_cluster_through_an_embedded_epmd() {
    let port = free_port();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let a = node(&rt, &unique("ea"), port);
    let greeter = rt.start::<Greeter>(()).unwrap();
    a.register("greeter", &greeter).unwrap();
    // b finds a's epmd on the port and registers there
    let b = node(&rt, &unique("eb"), port);
    let r: String = b
        .call_as(("greeter", a.name().as_str()), &"b", Duration::from_secs(5))
        .unwrap();
    assert_eq!(r, "hello, b");
    // an erl node uses it too
    require_beam();
    let mut e = Beam::erl_on(port, &unique("erl"), COOKIE, &[]);
    let n = a.name().as_str().to_string();
    assert_eq!(
        e.eval(&format!("gen_server:call({{greeter, '{n}'}}, <<\"erl\">>).")),
        "<<\"hello, erl\">>"
    );
    // a request that does not fit the server's type fails the call at once
    let t0 = std::time::Instant::now();
    let r = e.eval(&format!("catch gen_server:call({{greeter, '{n}'}}, 42, 10000)."));
    let want = format!("{{'EXIT',{{{{bad_request,<<\"expected a binary (string), got 42\">>}},{{gen_server,call,[{{greeter,'{n}'}},42,10000]}}}}}}");
    assert_eq!(r, want);
    assert!(t0.elapsed() < Duration::from_secs(5));
    // and the server is unharmed
    let again = e.eval(&format!("gen_server:call({{greeter, '{n}'}}, <<\"again\">>)."));
    assert_eq!(again, "<<\"hello, again\">>");
}

#[test]
fn an_embedded_epmd_lists_and_releases_names() {
    let epmd = EmbeddedEpmd::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = epmd.addr().port();
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let name = unique("names");
    let n = Node::builder(&name)
        .cookie(COOKIE)
        .epmd_port(port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .start(rt.handle())
        .unwrap();
    let alive = name.split('@').next().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(5), || epmd
        .names()
        .iter()
        .any(|(a, _)| *a == alive)));
    // a second node may not take the name
    let again = Node::builder(&name)
        .cookie(COOKIE)
        .epmd_port(port)
        .listen_addr("127.0.0.1".parse().unwrap())
        .start(rt.handle());
    assert!(matches!(again, Err(arbor_dist::DistError::BadName(_))), "{again:?}");
    n.stop();
    assert!(wait_until(Duration::from_secs(5), || epmd.names().is_empty()));
}
