//! The observer's HTTP endpoints, against a runtime built here: what they report, the
//! errors bad requests get, the token, killing from the page, slow clients and stuck
//! handlers. Everything binds to 127.0.0.1.

use arbor::prelude::*;
use arbor::registry::{Registry, RegistryOpts};
use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
use arbor_observer::{Observer, ObserverError};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One HTTP/1.1 request on a fresh connection: the status and the body.
fn request(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A GET with this `Host` header: the status.
fn request_host(addr: std::net::SocketAddr, host: &str, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line")
}

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = request(addr, "GET", path, &[]);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

struct Worker;

enum WorkerMsg {
    Crash,
    /// Block in the handler until the sender is dropped or sends.
    Block(mpsc::Receiver<()>),
    Nothing,
}

impl GenServer for Worker {
    type Args = ();
    type Info = WorkerMsg;
    type Call = ();
    type Reply = ();
    fn init(_: (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Worker)
    }
    fn handle_info(&mut self, msg: WorkerMsg, _: &mut Context<'_, Self>) -> Flow {
        match msg {
            WorkerMsg::Crash => panic!("boom from the test"),
            WorkerMsg::Block(rx) => {
                let _ = arbor::blocking(|| rx.recv());
                Flow::Continue
            }
            WorkerMsg::Nothing => Flow::Continue,
        }
    }
}

/// A root supervisor with a registry and a dynamic supervisor holding one worker.
struct App {
    rt: Runtime,
    app: Supervisor,
    dynamic: DynamicSupervisor,
    worker: Pid,
    registry: Registry<String>,
}

fn app() -> App {
    let rt = Runtime::builder()
        .worker_threads(2)
        .watchdog_threshold(Duration::from_millis(200))
        .build()
        .unwrap();
    let registry: Registry<String> = Registry::new(RegistryOpts::new());
    let app = Supervisor::start_link(
        vec![
            ChildSpec::new("Names", registry.child_start()),
            DynamicSupervisor::child_spec("Jobs", DynamicOpts::new()),
        ],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .unwrap();
    let dynamic = DynamicSupervisor::from_pid(app.child_pid("Jobs").unwrap().unwrap()).unwrap();
    let reg = registry.clone();
    let worker = dynamic
        .start_child(ChildSpec::new("job", move || {
            Worker::start_link((), StartOpts::new().name(reg.via("job-1".to_string()))).map(|s| s.pid())
        }))
        .unwrap();
    App {
        rt,
        app,
        dynamic,
        worker,
        registry,
    }
}

#[test]
fn snapshot_shows_the_tree_the_restart_history_and_the_registry() {
    let a = app();
    let obs = Observer::builder(a.rt.handle())
        .registry("Names", &a.registry)
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = obs.local_addr();
    assert!(obs.url().starts_with("http://127.0.0.1:"));

    let (status, page) = request(addr, "GET", "/", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("<title>arbor observer</title>"));

    ServerRef::<Worker>::from_pid(a.worker)
        .unwrap()
        .send(WorkerMsg::Crash)
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        get(addr, "/api/restarts").1.as_array().is_some_and(|r| !r.is_empty())
    }));
    let (status, snap) = get(addr, "/api/snapshot");
    assert_eq!(status, 200);
    let restart = &snap["restarts"][0];
    assert_eq!(restart["id"], "job");
    assert_eq!(restart["pid"], a.worker.to_string());
    assert_eq!(restart["supervisor"], a.dynamic.pid().to_string());
    assert_eq!(restart["reason"], "panic: boom from the test");
    assert_eq!(restart["action"], "restarted");
    assert_eq!(restart["abnormal"], true);

    let trees = snap["trees"].as_array().unwrap();
    assert_eq!(trees.len(), 1, "one root supervisor: {trees:?}");
    let root = &trees[0];
    assert_eq!(root["pid"], a.app.pid().to_string());
    assert_eq!(root["supervisor"]["kind"], "static");
    let ids: Vec<&str> = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["Names", "Jobs"]);
    let jobs = &root["children"][1];
    assert_eq!(jobs["supervisor"]["kind"], "dynamic");
    assert_eq!(jobs["supervisor"]["intensity_used"], 1);
    assert_eq!(jobs["supervisor"]["max_restarts"], 3);
    assert_eq!(jobs["children"][0]["id"], "job");
    assert_eq!(jobs["children"][0]["restarts"], 1);
    assert_eq!(jobs["children"][0]["restart"], "permanent");
    assert_eq!(jobs["children"][0]["shutdown"], "5000 ms");
    let new_worker = jobs["children"][0]["pid"].as_str().unwrap().to_string();
    assert_ne!(new_worker, a.worker.to_string());

    let regs = snap["registries"].as_array().unwrap();
    assert_eq!(regs[0]["name"], "Names");
    assert_eq!(regs[0]["count"], 1);
    assert_eq!(regs[0]["entries"][0]["key"], "\"job-1\"");
    assert_eq!(regs[0]["entries"][0]["pid"], new_worker);

    let procs = snap["processes"].as_array().unwrap();
    assert_eq!(procs.len(), a.rt.process_count());
    let p = procs.iter().find(|p| p["pid"] == new_worker.as_str()).unwrap();
    assert!(p["type_name"].as_str().unwrap().ends_with("Worker"));
    assert!(p["memory_estimate"].as_u64().unwrap() > 0);
    assert_eq!(snap["runtime"]["processes"], a.rt.process_count());
    assert_eq!(snap["kill_enabled"], false);

    let (status, one) = get(
        addr,
        &format!(
            "/api/process?pid={}",
            new_worker.replace('<', "%3C").replace('>', "%3E")
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(one["pid"], new_worker);
    for path in [
        "/api/stats",
        "/api/processes",
        "/api/trees",
        "/api/registries",
        "/api/stuck",
    ] {
        assert_eq!(get(addr, path).0, 200, "{path}");
    }
}

#[test]
fn bad_requests_get_http_errors_and_leave_the_runtime_alone() {
    let a = app();
    let obs = Observer::serve(a.rt.handle(), "127.0.0.1:0").unwrap();
    let addr = obs.local_addr();
    let before = a.rt.processes();
    assert_eq!(request(addr, "GET", "/nope", &[]).0, 404);
    assert_eq!(request(addr, "DELETE", "/api/stats", &[]).0, 405);
    assert_eq!(request(addr, "POST", "/api/snapshot", &[]).0, 405);
    assert_eq!(request(addr, "GET", "/api/process", &[]).0, 400);
    assert_eq!(request(addr, "GET", "/api/process?pid=nonsense", &[]).0, 400);
    assert_eq!(request(addr, "GET", "/api/process?pid=%3C0.1", &[]).0, 400);
    assert_eq!(request(addr, "GET", "/api/process?pid=%zz", &[]).0, 400);
    assert_eq!(request(addr, "GET", "/api/process?pid=%3C0.999.999%3E", &[]).0, 404);
    let worker = a.worker.to_string().replace('<', "%3C").replace('>', "%3E");
    let (status, body) = request(
        addr,
        "POST",
        &format!("/api/kill?pid={worker}"),
        &[("X-Arbor-Observer", "1")],
    );
    assert_eq!(status, 403, "{body}");
    // Without a token, a request addressed to another host name (DNS rebinding) is refused.
    assert_eq!(request_host(addr, "evil.example:80", "/api/stats"), 403);
    assert_eq!(request_host(addr, "localhost", "/api/stats"), 200);
    // Garbage that is not HTTP at all.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x00\x01\x02 not http\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // A body larger than the limit.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    // Nothing was killed, started or stopped.
    assert_eq!(a.rt.processes(), before);
    assert!(a.rt.is_alive(a.worker));
}

#[test]
fn killing_from_the_page_needs_it_enabled_and_the_header() {
    let a = app();
    let obs = Observer::builder(a.rt.handle())
        .allow_kill(true)
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = obs.local_addr();
    let worker = a.worker.to_string().replace('<', "%3C").replace('>', "%3E");
    let path = format!("/api/kill?pid={worker}");
    assert_eq!(request(addr, "POST", &path, &[]).0, 403, "no header");
    assert_eq!(request(addr, "GET", &path, &[("X-Arbor-Observer", "1")]).0, 405);
    assert!(a.rt.is_alive(a.worker));
    let (status, body) = request(addr, "POST", &path, &[("X-Arbor-Observer", "1")]);
    assert_eq!(status, 200, "{body}");
    // Killed (the reason shows in the restart history below), and restarted by its supervisor.
    assert!(wait_until(Duration::from_secs(5), || !a.rt.is_alive(a.worker)));
    assert!(wait_until(Duration::from_secs(5), || {
        get(addr, "/api/restarts").1[0]["reason"] == "killed"
    }));
    assert_eq!(
        request(addr, "POST", &path, &[("X-Arbor-Observer", "1")]).0,
        404,
        "gone"
    );
}

#[test]
fn a_token_is_required_off_loopback_and_checked_when_set() {
    let a = app();
    match Observer::serve(a.rt.handle(), "0.0.0.0:0") {
        Err(ObserverError::TokenRequired(addr)) => assert!(addr.ip().is_unspecified()),
        other => panic!("expected TokenRequired, got {other:?}"),
    }
    assert!(matches!(
        Observer::builder(a.rt.handle()).token("").serve("127.0.0.1:0"),
        Err(ObserverError::EmptyToken)
    ));
    assert!(matches!(
        Observer::serve(a.rt.handle(), "not an address"),
        Err(ObserverError::BadAddress(_))
    ));
    let obs = Observer::builder(a.rt.handle())
        .token("s3cret/+")
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = obs.local_addr();
    assert!(obs.url().ends_with("/?token=s3cret%2F%2B"), "{}", obs.url());
    assert_eq!(request(addr, "GET", "/api/stats", &[]).0, 401);
    assert_eq!(request(addr, "GET", "/", &[]).0, 401);
    assert_eq!(request(addr, "GET", "/api/stats?token=wrong", &[]).0, 401);
    assert_eq!(request(addr, "GET", "/api/stats?token=s3cret%2F%2B", &[]).0, 200);
    assert_eq!(
        request(addr, "GET", "/api/stats", &[("Authorization", "Bearer s3cret/+")]).0,
        200
    );
}

#[test]
fn silent_and_slow_clients_are_dropped_and_do_not_hold_up_others() {
    let a = app();
    let obs = Observer::builder(a.rt.handle())
        .io_timeout(Duration::from_millis(300))
        .threads(1)
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = obs.local_addr();
    // Clients that connect and send half a request, then nothing.
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /api/snap").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // Others are answered meanwhile, by the one request thread.
    let start = Instant::now();
    assert_eq!(get(addr, "/api/stats").0, 200);
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    // Each silent connection is closed by the server after the timeout (a 408, then EOF).
    for s in &mut silent {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    // The runtime went on meanwhile.
    assert!(a.rt.is_alive(a.worker));
}

#[test]
fn a_handler_that_makes_no_progress_with_work_waiting_is_listed_as_stuck() {
    let a = app();
    let obs = Observer::builder(a.rt.handle())
        .stuck_after(Duration::from_millis(200))
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = obs.local_addr();
    let worker = ServerRef::<Worker>::from_pid(a.worker).unwrap();
    let (release, blocked) = mpsc::channel();
    worker.send(WorkerMsg::Block(blocked)).unwrap();
    worker.send(WorkerMsg::Nothing).unwrap();
    let stuck = |addr| {
        get(addr, "/api/stuck")
            .1
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["pid"] == a.worker.to_string())
    };
    assert!(stuck(addr).is_none(), "not before the threshold");
    assert!(wait_until(Duration::from_secs(5), || stuck(addr).is_some()));
    let s = stuck(addr).unwrap();
    assert_eq!(s["mailbox_len"], 1);
    assert_eq!(s["exiting"], false);
    assert!(s["quiet_for_ms"].as_u64().unwrap() >= 200);
    // Core's watchdog sees the same handler, with its callback.
    let watched = |addr| {
        get(addr, "/api/watchdog")
            .1
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["pid"] == a.worker.to_string())
    };
    assert!(wait_until(Duration::from_secs(5), || watched(addr).is_some()));
    let w = watched(addr).unwrap();
    assert!(w["callback"].as_str().unwrap().starts_with("handle_info("), "{w}");
    assert!(w["running_for_ms"].as_u64().unwrap() >= 200);
    assert_eq!(w["alive"], true);
    release.send(()).unwrap();
    assert!(wait_until(Duration::from_secs(5), || stuck(addr).is_none()));
    assert!(wait_until(Duration::from_secs(5), || watched(addr).is_none()));
}

#[test]
fn state_endpoint_answers_for_servers_that_opt_in_and_times_out_on_a_busy_one() {
    let a = app();
    let obs = Observer::builder(a.rt.handle())
        .limits(arbor_observer::Limits {
            call_timeout: Duration::from_millis(200),
            ..Default::default()
        })
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = obs.local_addr();
    let enc = |p: Pid| p.to_string().replace('<', "%3C").replace('>', "%3E");
    // The worker does not implement format_state: null, with its type.
    let (status, body) = get(addr, &format!("/api/state?pid={}", enc(a.worker)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], Value::Null);
    assert!(body["type_name"].as_str().unwrap().ends_with("Worker"));
    // A handler that does not return: 504 after the timeout, and the worker is untouched.
    let worker = ServerRef::<Worker>::from_pid(a.worker).unwrap();
    let (release, blocked) = mpsc::channel();
    worker.send(WorkerMsg::Block(blocked)).unwrap();
    let start = Instant::now();
    assert_eq!(
        request(addr, "GET", &format!("/api/state?pid={}", enc(a.worker)), &[]).0,
        504
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    release.send(()).unwrap();
    assert!(a.rt.is_alive(a.worker));
    assert_eq!(get(addr, &format!("/api/state?pid={}", enc(a.worker))).0, 200);
    assert_eq!(request(addr, "GET", "/api/state", &[]).0, 400);
    assert_eq!(request(addr, "GET", "/api/state?pid=%3C0.999.1%3E", &[]).0, 404);
}
