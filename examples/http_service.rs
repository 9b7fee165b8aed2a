//! A small HTTP service on axum whose handlers call supervised, Registry-named arbor
//! servers from async code: the shape of a Rust service that adopts arbor for its
//! supervision trees while keeping its tokio/axum front end.
//!
//! Each counter is a server started on demand under a DynamicSupervisor and named in a
//! Registry. The handlers send it typed requests (`Get` answers a `u64`, checked at compile
//! time) with `Registry::request_async`, which never blocks a tokio worker. A request to
//! `/counters/{name}/crash` makes the counter panic; the supervisor restarts it, and the
//! name works again, the count starting from zero.
//!
//! - `cargo run --example http_service` serves on a free port of 127.0.0.1, plays a short
//!   session against itself over HTTP (counts, a crash, the restart), and exits.
//! - `cargo run --example http_service -- 127.0.0.1:3000` serves until interrupted:
//!   `curl -X POST 127.0.0.1:3000/counters/a/incr`, `curl 127.0.0.1:3000/counters/a`,
//!   `curl -X POST 127.0.0.1:3000/counters/a/crash`, `curl 127.0.0.1:3000/children`.

use arbor::prelude::*;
use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, StartChildError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// --- the arbor side: a counter server and its typed requests ---

/// A named counter.
struct Counter {
    count: u64,
}

/// Reads the count.
struct Get;
impl Request for Get {
    type Reply = u64;
}

/// Adds one; answers the new count.
struct Incr;
impl Request for Incr {
    type Reply = u64;
}

/// A bug on purpose: panics the counter.
struct Crash;
impl Request for Crash {
    type Reply = ();
}

impl GenServer for Counter {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = ();

    fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter { count: 0 })
    }
}

impl HandleRequest<Get> for Counter {
    fn handle_request(&mut self, _: Get, _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.count)
    }
}

impl HandleRequest<Incr> for Counter {
    fn handle_request(&mut self, _: Incr, _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.count += 1;
        CallFlow::Reply(self.count)
    }
}

impl HandleRequest<Crash> for Counter {
    fn handle_request(&mut self, _: Crash, _: ReplyTo<()>, ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        panic!("counter {} crashed on request", ctx.pid());
    }
}

/// The counters: a Registry of names and a DynamicSupervisor of counters.
struct Counters {
    names: Registry<String>,
    sup: DynamicSupervisor,
}

impl Counters {
    fn start(rt: &Runtime) -> Result<Counters, Box<dyn std::error::Error>> {
        let names = Registry::start(rt.handle(), RegistryOpts::new())?;
        let sup = DynamicSupervisor::start(DynamicOpts::new().runtime(rt.handle()))?;
        Ok(Counters { names, sup })
    }

    /// Starts the counter `name` unless it runs; a start of a running name returns its pid.
    async fn ensure(&self, name: &str) -> Result<Pid, StartChildError> {
        if let Some(pid) = self.names.whereis(name) {
            return Ok(pid);
        }
        let via = self.names.via(name.to_string());
        let spec = ChildSpec::new(name.to_string(), move || {
            match Counter::start_link((), StartOpts::new().name(via.clone())) {
                Err(StartError::AlreadyStarted(pid)) => Ok(pid),
                other => other.map(|c| c.pid()),
            }
        });
        self.sup.start_child_async(spec).await
    }
}

// --- the HTTP side: axum handlers that await arbor calls ---

type Shared = Arc<Counters>;

fn error(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
}

async fn read(State(c): State<Shared>, Path(name): Path<String>) -> Result<String, (StatusCode, String)> {
    let count = c.names.request_async::<Counter, _, _>(&name, Get).await;
    match count {
        Ok(n) => Ok(format!("{n}\n")),
        Err(CallError::NoProc) => Err((StatusCode::NOT_FOUND, format!("no counter {name}\n"))),
        Err(e) => Err(error(e)),
    }
}

async fn incr(State(c): State<Shared>, Path(name): Path<String>) -> Result<String, (StatusCode, String)> {
    c.ensure(&name).await.map_err(error)?;
    let n: u64 = c
        .names
        .request_async::<Counter, _, _>(&name, Incr)
        .await
        .map_err(error)?;
    Ok(format!("{n}\n"))
}

async fn crash(State(c): State<Shared>, Path(name): Path<String>) -> (StatusCode, String) {
    match c.names.request_async::<Counter, _, _>(&name, Crash).await {
        Err(CallError::Exited(reason)) => (StatusCode::OK, format!("crashed: {reason}\n")),
        Err(CallError::NoProc) => (StatusCode::NOT_FOUND, format!("no counter {name}\n")),
        other => (StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected {other:?}\n")),
    }
}

async fn children(State(c): State<Shared>) -> Result<String, (StatusCode, String)> {
    let children = c.sup.which_children_async().await.map_err(error)?;
    Ok(children
        .iter()
        .map(|ch| format!("{} {:?} restarts={}\n", ch.id, ch.status, ch.restarts))
        .collect())
}

fn app(counters: Shared) -> Router {
    Router::new()
        .route("/counters/{name}", get(read))
        .route("/counters/{name}/incr", post(incr))
        .route("/counters/{name}/crash", post(crash))
        .route("/children", get(children))
        .with_state(counters)
}

// --- a session against the service, over HTTP ---

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

async fn session(addr: std::net::SocketAddr, counters: Shared) -> Result<(), Box<dyn std::error::Error>> {
    let show = |what: &str, (status, body): (u16, String)| {
        println!("{what:<28} -> {status} {}", body.trim_end().replace('\n', "; "));
        (status, body)
    };
    for _ in 0..3 {
        show("POST /counters/a/incr", http(addr, "POST", "/counters/a/incr").await?);
    }
    show("POST /counters/b/incr", http(addr, "POST", "/counters/b/incr").await?);
    let (_, before) = show("GET /counters/a", http(addr, "GET", "/counters/a").await?);
    assert_eq!(before.trim(), "3");
    show("GET /counters/zz", http(addr, "GET", "/counters/zz").await?);
    show("GET /children", http(addr, "GET", "/children").await?);

    let old = counters.names.whereis("a").ok_or("counter a is not registered")?;
    show("POST /counters/a/crash", http(addr, "POST", "/counters/a/crash").await?);
    // The supervisor restarts the counter, which takes its name again as it starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let new = loop {
        match counters.names.whereis("a") {
            Some(pid) if pid != old => break pid,
            _ if Instant::now() > deadline => return Err("counter a was not restarted within 5 s".into()),
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    };
    println!("counter a restarted: {old} -> {new}");
    let (_, after) = show("GET /counters/a", http(addr, "GET", "/counters/a").await?);
    assert_eq!(after.trim(), "0", "a restarted counter starts from init");
    show("POST /counters/a/incr", http(addr, "POST", "/counters/a/incr").await?);
    let (_, b) = show("GET /counters/b", http(addr, "GET", "/counters/b").await?);
    assert_eq!(b.trim(), "1", "the other counter is untouched");
    show("GET /children", http(addr, "GET", "/children").await?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new()?;
    let counters = Arc::new(Counters::start(&rt)?);
    let serve_at = std::env::args().nth(1);
    let listener = tokio::net::TcpListener::bind(serve_at.as_deref().unwrap_or("127.0.0.1:0")).await?;
    let addr = listener.local_addr()?;
    println!("serving on http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = app(counters.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    if serve_at.is_some() {
        tokio::signal::ctrl_c().await?;
    } else {
        session(addr, counters.clone()).await?;
    }
    let _ = stop.send(());
    server.await??;
    drop(counters);
    rt.shutdown();
    println!("shut down cleanly");
    Ok(())
}
