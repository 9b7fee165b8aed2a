//! `examples/dist_node.rs` driven by a real Elixir node, as `docs/dist.md`'s iex session
//! drives it. The example is built by `cargo test` (examples are, by default).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_dist_node_example_serves_kv_and_recordings() {
    require_beam();
    let epmd = Epmd::start();
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("dist_node");
    assert!(bin.exists(), "{} not built", bin.display());
    let name = unique("arbor");
    let mut child = Command::new(&bin)
        .args([
            "--name",
            &name,
            "--cookie",
            COOKIE,
            "--epmd-port",
            &epmd.port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Guard { child };
    let mut lines = BufReader::new(stdout).lines();
    let up = lines.next().unwrap().unwrap();
    assert!(up.contains("is up"), "{up}");
    std::thread::spawn(move || for _ in lines {});

    let mut ex = Beam::elixir(&epmd, &unique("ex"), COOKIE);
    ex.eval(&format!(r#"n = :"{name}""#));
    assert_eq!(
        ex.eval(r#"GenServer.call({:kv, n}, {:put, "a", %{x: [1, 2.5]}})"#),
        ":ok"
    );
    assert_eq!(
        ex.eval(r#"GenServer.call({:kv, n}, {:get, "a"})"#),
        "{:ok, %{x: [1, 2.5]}}"
    );
    assert_eq!(ex.eval(r#"GenServer.call({:kv, n}, {:get, "b"})"#), ":error");
    ex.eval(r#"GenServer.cast({:kv, n}, {:delete, "a"})"#);
    assert_eq!(ex.eval(r#"GenServer.call({:kv, n}, {:get, "a"})"#), ":error");
    // :crash: the caller gets the exit reason; the supervisor restarts kv, empty
    ex.eval(r#"GenServer.call({:kv, n}, {:put, "k", 1})"#);
    let crash = ex.eval(r#"try do GenServer.call({:kv, n}, :crash) catch :exit, {r, _} -> r end"#);
    assert_eq!(crash, r#"{:panic, "kv was asked to crash"}"#);
    let again = r#"try do GenServer.call({:kv, n}, {:get, "k"}) catch :exit, _ -> :down end"#;
    assert_eq!(ex.eval_until(again, ":error", Duration::from_secs(5)), ":error");
    // kv calls out to the BEAM
    ex.eval("defmodule Echo do use GenServer; def init(x), do: {:ok, x}; def handle_call(r, _, s), do: {:reply, {:echo, r}, s} end");
    ex.eval("{:ok, _} = GenServer.start(Echo, nil, name: :echo)");
    assert_eq!(
        ex.eval(r#"GenServer.call({:kv, n}, {:call, node(), :echo, :hello})"#),
        "{:echo, :hello}"
    );
    assert_eq!(
        ex.eval(r#"GenServer.call({:kv, n}, {:call, node(), :missing, :hello})"#),
        "{:error, :noproc}"
    );
    assert_eq!(
        ex.eval(r#"GenServer.call({:kv, n}, {:call, :"ghost@127.0.0.1", :x, :hello})"#),
        "{:error, :nodedown}"
    );
    // recordings: the same event twice is the same pid, which stops :normal after its run
    ex.eval(r#"{:ok, pid} = GenServer.call({:recordings, n}, {:start_recording, 20})"#);
    assert_eq!(
        ex.eval(r#"{:ok, pid} == GenServer.call({:recordings, n}, {:start_recording, 20})"#),
        "true"
    );
    ex.eval("ref = Process.monitor(pid)");
    let down = ex.eval_timeout(
        "receive do {:DOWN, ^ref, :process, _, reason} -> reason after 10000 -> :none end",
        Duration::from_secs(15),
    );
    assert_eq!(down, ":normal");
}
