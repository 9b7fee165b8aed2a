//! The observer's page in a real browser: headless Chromium, driven through the DevTools
//! protocol over a websocket, against `examples/observer.rs` (the seed's program with the
//! observer on). Checks that the page loads without console errors, that the tree shows the
//! seed's supervisors and its recording, that a crash injected in the program appears in the
//! restart history within two seconds, and that sorting the process table works; saves a
//! screenshot (`target/tmp/observer-screenshot.png`).
//!
//! Skipped, with a message, when no `chromium` is installed and `CI` is not set; under CI
//! a missing browser fails the test (`.ci/run` installs it). Every process it starts is
//! killed by pid when the test ends, however it ends; everything binds to 127.0.0.1.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Kills and reaps a child process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // `Child::kill` signals this child's pid only.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes a directory (the browser's profile) when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The example's binary, built (or brought up to date) next to this test's: `cargo test`
/// does not rebuild examples when only a test target is selected, and a stale binary would
/// serve a stale page.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "arbor-observer", "--example", "observer"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the observer example failed");
    let bin = dir.join("examples").join("observer");
    assert!(bin.is_file(), "no example binary at {}", bin.display());
    bin
}

/// The running example: its stdin (to inject a crash) and its stdout lines.
struct Program {
    _child: KillOnDrop,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Program {
    fn start() -> Program {
        let mut child = Command::new(example_binary())
            .args(["--seconds", "120"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the observer example");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Program {
            _child: KillOnDrop(child),
            stdin,
            lines,
        }
    }

    /// The first stdout line starting with `prefix`, within `timeout`.
    fn line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?} from the example: {e}"),
            }
        }
    }
}

/// A DevTools session with one page.
struct DevTools {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    /// Console errors and uncaught exceptions seen so far.
    errors: Vec<Value>,
}

impl DevTools {
    fn connect(ws_url: &str) -> DevTools {
        let hostport = ws_url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("ws url");
        assert!(
            hostport.starts_with("127.0.0.1:"),
            "DevTools must listen on loopback: {hostport}"
        );
        let stream = TcpStream::connect(hostport).expect("connect to DevTools");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (ws, _) = tungstenite::client(ws_url, stream).expect("websocket handshake");
        DevTools {
            ws,
            next_id: 1,
            session: None,
            errors: Vec::new(),
        }
    }

    fn note_event(&mut self, msg: &Value) {
        let method = msg["method"].as_str().unwrap_or("");
        let error = match method {
            "Runtime.exceptionThrown" => true,
            "Runtime.consoleAPICalled" => msg["params"]["type"] == "error",
            "Log.entryAdded" => msg["params"]["entry"]["level"] == "error",
            _ => false,
        };
        if error {
            self.errors.push(msg.clone());
        }
    }

    /// Sends a command and waits for its answer (events that arrive meanwhile are noted).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut cmd = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            cmd["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(cmd.to_string())).expect("send to DevTools");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            let msg = match self.ws.read().expect("read from DevTools") {
                Message::Text(t) => serde_json::from_str::<Value>(t.as_ref()).expect("DevTools sends JSON"),
                _ => continue,
            };
            if msg["id"] == json!(id) {
                if let Some(err) = msg.get("error") {
                    panic!("{method} failed: {err}");
                }
                return msg["result"].clone();
            }
            self.note_event(&msg);
        }
    }

    /// Evaluates `expr` in the page; its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expr:?} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is `true`, within `timeout`; how long that took.
    fn wait_for(&mut self, expr: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.eval(expr) == json!(true) {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "{expr:?} not true within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Decodes standard base64 (what DevTools sends screenshots in).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|c| **c == b'=').count();
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= if *c == b'=' { 0 } else { val(*c) } << (18 - 6 * i);
        }
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    out
}

fn start_chromium(browser: &PathBuf, profile: &std::path::Path) -> (KillOnDrop, String) {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("stderr");
    let guard = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("chromium printed no DevTools address within 30 s");
    (guard, url)
}

#[test]
fn the_page_shows_the_seed_its_crash_and_sorts_in_a_real_browser() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed, and CI is set: .ci/run installs it (apt-get install -y chromium)");
        }
        eprintln!("SKIPPED: chromium is not installed (apt-get install -y chromium); the browser test did not run");
        return;
    };
    let program = Program::start();
    let url = program
        .line("observer: ", Duration::from_secs(30))
        .trim_start_matches("observer: ")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // Declared before the browser's guard, so dropped after it: the profile is removed once
    // the browser is gone, however the test ends.
    let profile = RemoveOnDrop(std::env::temp_dir().join(format!("arbor-observer-chromium-{}", std::process::id())));
    let (chromium_guard, ws_url) = start_chromium(&browser, &profile.0);
    let mut dt = DevTools::connect(&ws_url);
    let target = dt.call("Target.createTarget", json!({ "url": "about:blank" }));
    let attached = dt.call(
        "Target.attachToTarget",
        json!({ "targetId": target["targetId"], "flatten": true }),
    );
    dt.session = Some(attached["sessionId"].as_str().expect("session id").to_string());
    dt.call("Runtime.enable", json!({}));
    dt.call("Log.enable", json!({}));
    dt.call("Page.enable", json!({}));
    dt.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    dt.call("Page.navigate", json!({ "url": url }));

    // The page loads and draws a snapshot.
    dt.wait_for(
        "document.body && document.body.dataset.refreshed !== undefined",
        Duration::from_secs(10),
    );
    assert_eq!(dt.eval("document.title"), json!("arbor observer"));

    // The tree: the root supervisor, the registry, the DynamicSupervisor and recording 17.
    dt.wait_for(
        "(() => { const t = document.getElementById('trees').innerText;
                  return t.includes('ReactPhoenix.Dynamic.Supervisor') && t.includes('EventGenServer')
                      && t.includes('Recording') && t.includes('17_recording')
                      && t.includes('dynamic supervisor') && t.includes('one_for_one'); })()",
        Duration::from_secs(5),
    );
    // Collapsing a node keeps it collapsed across refreshes.
    dt.eval(
        "document.querySelector('details[data-node$=\"/ReactPhoenix.Dynamic.Supervisor\"] > summary').click(), true",
    );
    let refreshed = dt.eval("document.body.dataset.refreshed");
    dt.wait_for(
        &format!("document.body.dataset.refreshed !== {refreshed}"),
        Duration::from_secs(5),
    );
    assert_eq!(
        dt.eval("document.querySelector('details[data-node$=\"/ReactPhoenix.Dynamic.Supervisor\"]').open"),
        json!(false)
    );
    dt.eval(
        "document.querySelector('details[data-node$=\"/ReactPhoenix.Dynamic.Supervisor\"] > summary').click(), true",
    );

    // A crash injected in the program shows in the restart history within two seconds.
    program.stdin_write("crash\n");
    let took = dt.wait_for(
        "document.getElementById('restarts').innerText.includes('panic: crash injected from standard input')",
        Duration::from_secs(2),
    );
    println!("the crash reached the restart history after {took:?}");
    assert!(
        dt.eval("[...document.querySelectorAll('#restarts tbody tr')].some(r => r.innerText.includes('panic: crash') && r.innerText.includes('restarted') && r.className === 'abnormal')")
            == json!(true)
    );

    // Sorting: by messages handled, descending then ascending; then by mailbox length.
    let column = |key: &str| {
        format!(
            "[...document.querySelectorAll('#processes tbody td[data-col={key}]')].map(td => Number(td.textContent))"
        )
    };
    dt.eval("document.querySelector('#processes th[data-key=messages_handled]').click(), true");
    let desc = dt.eval(&column("messages_handled"));
    let desc: Vec<u64> = serde_json::from_value(desc).unwrap();
    assert!(
        desc.len() >= 4,
        "the process table lists the seed's processes: {desc:?}"
    );
    assert!(desc.windows(2).all(|w| w[0] >= w[1]), "descending: {desc:?}");
    assert!(
        desc.iter().any(|n| *n != desc[0]),
        "the column has distinct values to sort: {desc:?}"
    );
    dt.eval("document.querySelector('#processes th[data-key=messages_handled]').click(), true");
    let asc: Vec<u64> = serde_json::from_value(dt.eval(&column("messages_handled"))).unwrap();
    assert!(asc.windows(2).all(|w| w[0] <= w[1]), "ascending: {asc:?}");
    assert_eq!(
        dt.eval("document.querySelector('#processes th.sorted').dataset.key + (document.querySelector('#processes th.sorted').classList.contains('asc') ? ' asc' : ' desc')"),
        json!("messages_handled asc")
    );
    dt.eval("document.querySelector('#processes th[data-key=mailbox_len]').click(), true");
    let mailbox: Vec<u64> = serde_json::from_value(dt.eval(&column("mailbox_len"))).unwrap();
    assert!(
        mailbox.windows(2).all(|w| w[0] >= w[1]),
        "mailbox descending: {mailbox:?}"
    );
    // The sort order survives a refresh.
    let refreshed = dt.eval("document.body.dataset.refreshed");
    dt.wait_for(
        &format!("document.body.dataset.refreshed !== {refreshed}"),
        Duration::from_secs(5),
    );
    assert_eq!(
        dt.eval("document.querySelector('#processes th.sorted').dataset.key"),
        json!("mailbox_len")
    );
    dt.eval("document.querySelector('#processes th[data-key=messages_handled]').click(), true");

    // A supervisor does not: its type only.
    dt.eval("[...document.querySelectorAll('#processes tbody tr')].find(r => r.innerText.includes('StaticServer')).querySelector('a.pid-link').click(), true");
    dt.wait_for(
        "document.getElementById('detail-note').textContent.includes('does not format its state')",
        Duration::from_secs(5),
    );

    // A pid's state, as :sys.get_state shows it: recording 17 opts in (and stays on the
    // screenshot).
    dt.eval("[...document.querySelectorAll('#processes tbody tr')].find(r => r.innerText.includes('observer::Recording')).querySelector('a.pid-link').click(), true");
    dt.wait_for(
        "/^Recording \\{ state: \\d+ \\}$/.test(document.getElementById('detail-state').textContent)",
        Duration::from_secs(5),
    );
    // No console error, no uncaught exception, from the first load to here.
    dt.call("Runtime.evaluate", json!({ "expression": "1" }));
    assert!(dt.errors.is_empty(), "console errors: {:#?}", dt.errors);

    // The page's own height (the viewport's width), so the picture has no empty band.
    let height = dt.eval("Math.ceil(document.querySelector('main').getBoundingClientRect().bottom) + 8");
    let shot = dt.call(
        "Page.captureScreenshot",
        json!({ "format": "png", "clip": { "x": 0, "y": 0, "width": 1280, "height": height, "scale": 1 } }),
    );
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("observer-screenshot.png");
    std::fs::write(&path, &png).expect("save the screenshot");
    println!("screenshot: {}", path.display());

    // Ask the browser to close (it may drop the connection before answering); the guard
    // then kills it by pid if it has not gone.
    let _ = dt
        .ws
        .send(Message::text(json!({ "id": 0, "method": "Browser.close" }).to_string()));
    drop(chromium_guard);
    drop(profile);
}

impl Program {
    fn stdin_write(&self, s: &str) {
        let mut stdin = &self.stdin;
        stdin.write_all(s.as_bytes()).expect("write to the example");
        stdin.flush().expect("flush");
    }
}
