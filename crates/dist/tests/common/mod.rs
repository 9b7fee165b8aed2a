//! Test harness: a private epmd on a free loopback port, real `erl` and `elixir` nodes
//! driven line by line through their standard input, and guards that kill every OS
//! process they started, by pid, when dropped (also when a test fails).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub(crate) const COOKIE: &str = "arbor-test-cookie";

/// A node builder for a test: a fresh name, the test cookie, the private epmd, loopback.
#[allow(dead_code)] // not every test file uses it
pub(crate) fn node_builder(epmd: &Epmd) -> arbor_dist::Builder {
    arbor_dist::Node::builder(&unique("arbor"))
        .cookie(COOKIE)
        .epmd_port(epmd.port)
        .listen_addr("127.0.0.1".parse().unwrap())
}

/// Fails the test at once, saying what to install, unless `erl`, `epmd` and `elixir` are
/// on the PATH (`.ci/run` installs Debian's `erlang-base` and `elixir` when missing).
pub(crate) fn require_beam() {
    for tool in ["erl", "epmd", "elixir"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} not found: the dist tests need erlang-base and elixir (apt-get install -y erlang-base elixir)"
        );
    }
}

/// A free port of 127.0.0.1, never one handed out before in this process (tests run in
/// parallel: two epmds must not be given the same port between its probe and its bind).
pub(crate) fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The directory holding `arbor_test.beam`, compiled once per test binary from
/// `tests/support/arbor_test.erl` with `erlc`.
pub(crate) fn support_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("arbor-dist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/arbor_test.erl");
        let status = Command::new("erlc")
            .arg("-o")
            .arg(&dir)
            .arg(src)
            .status()
            .expect("erlc");
        assert!(status.success(), "erlc failed");
        dir.to_string_lossy().into_owned()
    })
}

/// A unique node name for this test process.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}@127.0.0.1",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills the OS process when dropped.
pub(crate) struct Guard {
    pub(crate) child: Child,
}

impl Guard {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private epmd on a free port of 127.0.0.1.
pub(crate) struct Epmd {
    pub(crate) port: u16,
    _guard: Guard,
}

impl Epmd {
    pub(crate) fn start() -> Epmd {
        let port = free_port();
        let child = Command::new("epmd")
            .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd");
        let guard = Guard { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "epmd did not start");
            std::thread::yield_now();
            std::thread::park_timeout(Duration::from_millis(10));
        }
        Epmd { port, _guard: guard }
    }
}

/// A BEAM node (`erl` or `elixir`) evaluating one expression per line of its input and
/// printing each result on one line as `<<<result>>>`.
pub(crate) struct Beam {
    pub(crate) name: String,
    stdin: ChildStdin,
    lines: Receiver<String>,
    guard: Guard,
}

const ERL_DRIVER: &str = r#"
Print = fun(V) -> io:format("<<<~ts>>>~n", [io_lib:print(V, 1, 100000000, -1)]) end,
Loop = fun L(B) ->
    case io:get_line("") of
        eof -> halt();
        Line ->
            {V, B2} = try
                {ok, Toks, _} = erl_scan:string(Line),
                {ok, Exprs} = erl_parse:parse_exprs(Toks),
                {value, Val, NewB} = erl_eval:exprs(Exprs, B),
                {Val, NewB}
            catch C:E -> {{'EXCEPTION', C, E}, B} end,
            Print(V),
            L(B2)
    end
end,
io:format("READY~n"),
Loop(erl_eval:new_bindings()).
"#;

const EX_DRIVER: &str = r#"
defmodule Driver do
  def loop(b) do
    case IO.gets("") do
      :eof -> System.halt(0)
      line ->
        {v, b2} =
          try do
            Code.eval_string(line, b)
          catch
            c, e -> {{:EXCEPTION, c, e}, b}
          end
        IO.puts("<<<" <> inspect(v, limit: :infinity, printable_limit: :infinity, width: :infinity) <> ">>>")
        loop(b2)
    end
  end
end
IO.puts("READY")
Driver.loop([])
"#;

impl Beam {
    /// An `erl` node named `name` (long name), with `extra` arguments.
    pub(crate) fn erl(epmd: &Epmd, name: &str, cookie: &str, extra: &[&str]) -> Beam {
        Beam::erl_on(epmd.port, name, cookie, extra)
    }

    /// An `erl` node using the epmd on `epmd_port` (one this harness did not start).
    pub(crate) fn erl_on(epmd_port: u16, name: &str, cookie: &str, extra: &[&str]) -> Beam {
        Beam::erl_named(epmd_port, "-name", name, cookie, extra)
    }

    /// An `erl` node with a short name (`-sname name@host`).
    pub(crate) fn erl_short(epmd: &Epmd, name: &str, cookie: &str) -> Beam {
        Beam::erl_named(epmd.port, "-sname", name, cookie, &[])
    }

    fn erl_named(epmd_port: u16, flag: &str, name: &str, cookie: &str, extra: &[&str]) -> Beam {
        let mut cmd = Command::new("erl");
        cmd.args([flag, name, "-setcookie", cookie, "-noshell", "-start_epmd", "false"])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .args(["-pa", support_dir()])
            .args(extra)
            .args(["-eval", ERL_DRIVER]);
        Beam::spawn(cmd, epmd_port, name)
    }

    /// An `elixir` node named `name`.
    pub(crate) fn elixir(epmd: &Epmd, name: &str, cookie: &str) -> Beam {
        let mut cmd = Command::new("elixir");
        cmd.args(["--name", name, "--cookie", cookie])
            .args(["--erl", "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"])
            .args(["-pa", support_dir()])
            .args(["-e", EX_DRIVER]);
        Beam::spawn(cmd, epmd.port, name)
    }

    fn spawn(mut cmd: Command, epmd_port: u16, name: &str) -> Beam {
        cmd.env("ERL_EPMD_PORT", epmd_port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn a BEAM node");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let guard = Guard { child };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut beam = Beam {
            name: name.to_string(),
            stdin,
            lines: rx,
            guard,
        };
        beam.wait_line(|l| l == "READY", Duration::from_secs(30))
            .expect("the BEAM node did not start");
        beam
    }

    pub(crate) fn pid(&self) -> u32 {
        self.guard.pid()
    }

    fn wait_line(&mut self, want: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) if want(&l) => return Some(l),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Evaluates `expr` (an Erlang expression ending with `.`, or Elixir code, on one
    /// line) and returns the printed result.
    pub(crate) fn eval_timeout(&mut self, expr: &str, timeout: Duration) -> String {
        assert!(!expr.contains('\n'), "one line per expression");
        writeln!(self.stdin, "{expr}").unwrap();
        self.stdin.flush().unwrap();
        let line = self
            .wait_line(|l| l.starts_with("<<<"), timeout)
            .unwrap_or_else(|| panic!("no result for {expr}"));
        line.trim_start_matches("<<<").trim_end_matches(">>>").to_string()
    }

    pub(crate) fn eval(&mut self, expr: &str) -> String {
        self.eval_timeout(expr, Duration::from_secs(30))
    }

    /// Polls `expr` until it prints `want`, up to `timeout`.
    pub(crate) fn eval_until(&mut self, expr: &str, want: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.eval(expr);
            if got == want || Instant::now() >= deadline {
                return got;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Kills the node's OS process now.
    pub(crate) fn kill(&mut self) {
        let _ = self.guard.child.kill();
        let _ = self.guard.child.wait();
    }
}

/// Waits until `f` is true, up to `timeout`.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
