//! The HTTP layer: a [`tiny_http`] server on a socket of our own, a fixed number of
//! threads that answer requests, and the routes.
//!
//! Invariants:
//! - No request runs on one of the runtime's worker threads: requests are answered by the
//!   observer's own threads (a fixed number, [`ObserverBuilder::threads`]), which read the
//!   runtime through its public introspection only (see `snapshot.rs`).
//! - A slow or silent client cannot hold anything for long: the listening socket carries
//!   read and write timeouts ([`ObserverBuilder::io_timeout`]), which every accepted
//!   connection inherits, so a connection that sends nothing, or does not read its answer,
//!   is dropped after the timeout; a request body is read up to [`MAX_BODY`] bytes only.
//! - Every request that is not understood gets an HTTP error (400, 401, 403, 404, 405, 413)
//!   and touches nothing. A process asked for its state (`/api/state`) that does not answer
//!   within the call timeout gets 504; the request is dropped, the process is not disturbed.
//! - Without a token, a request whose `Host` is not a loopback name (`localhost`, `127.x`,
//!   `[::1]`) is refused (403): a page of another site that points its own domain at
//!   127.0.0.1 (DNS rebinding) cannot read the observer.
//! - Killing a process is refused (403) unless [`ObserverBuilder::allow_kill`] was set, and
//!   needs a POST with the header `X-Arbor-Observer: 1`, which a page from another origin
//!   cannot send without a CORS preflight that this server never grants.

use crate::error::ObserverError;
use crate::json::Json;
use crate::progress::Progress;
use crate::render;
use crate::snapshot::{Limits, RegistryLister, RegistryView, Snapshot};
use arbor_core::{CallError, Pid, RuntimeHandle};
use arbor_registry::Registry;
use std::fmt::Debug;
use std::hash::Hash;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, Server};

/// The page, embedded in the binary.
const PAGE: &str = include_str!("page.html");

/// Largest request body read (bodies are not used by any route; this bounds what a client can
/// make the server read).
pub const MAX_BODY: u64 = 4096;

/// Default of [`ObserverBuilder::stuck_after`].
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(5);

/// Configures an [`Observer`] before it serves.
pub struct ObserverBuilder {
    rt: RuntimeHandle,
    token: Option<String>,
    allow_kill: bool,
    threads: usize,
    io_timeout: Duration,
    stuck_after: Duration,
    limits: Limits,
    registries: Vec<RegistryLister>,
}

impl ObserverBuilder {
    /// A token every request must carry (`?token=...` in the URL, or an
    /// `Authorization: Bearer ...` header). Required to serve on an address that is not a
    /// loopback address.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Lets the page kill a process (`POST /api/kill?pid=<0.1.2>`; default off).
    pub fn allow_kill(mut self, on: bool) -> Self {
        self.allow_kill = on;
        self
    }

    /// Threads that answer requests (default 2, at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Read and write timeout of every connection (default 5 s).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a process with work waiting must go without handling a message to be shown
    /// as stuck (default [`DEFAULT_STUCK_AFTER`]).
    pub fn stuck_after(mut self, after: Duration) -> Self {
        self.stuck_after = after;
        self
    }

    /// Bounds on what one snapshot gathers.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Shows `registry`'s entries under `name` (keys and values through `Debug`).
    pub fn registry<K, V>(mut self, name: impl Into<String>, registry: &Registry<K, V>) -> Self
    where
        K: Eq + Hash + Clone + Send + Sync + Debug + 'static,
        V: Clone + Send + Sync + Debug + 'static,
    {
        let name = name.into();
        let registry = registry.clone();
        self.registries.push(Arc::new(move |limit| RegistryView {
            name: name.clone(),
            pid: registry.pid(),
            count: registry.count(),
            entries: registry
                .entries(limit)
                .into_iter()
                .map(|(k, pid, v)| (format!("{k:?}"), pid, format!("{v:?}")))
                .collect(),
        }));
        self
    }

    /// Binds `addr` (e.g. `"127.0.0.1:4000"`, port 0 for any free port) and starts serving.
    ///
    /// # Errors
    ///
    /// `BadAddress` if `addr` does not resolve; `TokenRequired` for an address that is not a
    /// loopback one without a token; `EmptyToken`; `Io` if the socket cannot be bound;
    /// `Http` if the server cannot start.
    pub fn serve(self, addr: &str) -> Result<Observer, ObserverError> {
        let sock: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|_| ObserverError::BadAddress(addr.to_string()))?
            .next()
            .ok_or_else(|| ObserverError::BadAddress(addr.to_string()))?;
        match &self.token {
            Some(t) if t.is_empty() => return Err(ObserverError::EmptyToken),
            None if !sock.ip().is_loopback() => return Err(ObserverError::TokenRequired(sock)),
            _ => {}
        }
        let listener = listen(sock, self.io_timeout)?;
        let local = listener.local_addr()?;
        let server = Server::from_listener(listener, None).map_err(|e| ObserverError::Http(e.to_string()))?;
        let shared = Arc::new(Shared {
            rt: self.rt,
            token: self.token,
            allow_kill: self.allow_kill,
            stuck_after: self.stuck_after,
            limits: self.limits,
            registries: self.registries,
            progress: Progress::new(self.stuck_after),
        });
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(self.threads);
        for n in 0..self.threads {
            let (srv, sh, st) = (server.clone(), shared.clone(), stop.clone());
            let t = std::thread::Builder::new()
                .name(format!("arbor-observer-{n}"))
                .spawn(move || serve_loop(&srv, &sh, &st));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    server.unblock();
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(ObserverError::Io(e));
                }
            }
        }
        Ok(Observer {
            addr: local,
            token: shared.token.clone(),
            server,
            stop,
            threads,
        })
    }
}

/// A socket bound to `addr` whose read and write timeouts every accepted connection inherits.
fn listen(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// What the request threads share.
struct Shared {
    rt: RuntimeHandle,
    token: Option<String>,
    allow_kill: bool,
    stuck_after: Duration,
    limits: Limits,
    registries: Vec<RegistryLister>,
    progress: Progress,
}

/// A live page of a running runtime, served over HTTP until it is stopped or dropped.
///
/// ```no_run
/// use arbor_core::Runtime;
/// use arbor_observer::Observer;
///
/// let rt = Runtime::new().unwrap();
/// let observer = Observer::serve(rt.handle(), "127.0.0.1:4000").unwrap();
/// println!("observer at {}", observer.url());
/// ```
pub struct Observer {
    addr: SocketAddr,
    token: Option<String>,
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Observer {
    /// Serves `rt`'s page on `addr` with the default settings (loopback addresses only; see
    /// [`Observer::builder`] for a token, killing from the page, registries).
    ///
    /// # Errors
    ///
    /// As [`ObserverBuilder::serve`].
    pub fn serve(rt: &RuntimeHandle, addr: &str) -> Result<Observer, ObserverError> {
        Observer::builder(rt).serve(addr)
    }

    /// A builder for an observer of `rt`.
    pub fn builder(rt: &RuntimeHandle) -> ObserverBuilder {
        ObserverBuilder {
            rt: rt.clone(),
            token: None,
            allow_kill: false,
            threads: 2,
            io_timeout: Duration::from_secs(5),
            stuck_after: DEFAULT_STUCK_AFTER,
            limits: Limits::default(),
            registries: Vec::new(),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL (with the token, if one is set).
    pub fn url(&self) -> String {
        match &self.token {
            Some(t) => format!("http://{}/?token={}", self.addr, percent_encode(t)),
            None => format!("http://{}/", self.addr),
        }
    }

    /// Stops serving and joins its threads (dropping it does the same).
    pub fn stop(self) {}
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("addr", &self.addr).finish()
    }
}

fn serve_loop(server: &Server, shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => answer(req, shared),
            Ok(None) => {}
            Err(e) => {
                log::warn!("arbor-observer: {e}");
                // The listener failed: nothing more will arrive.
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// A response ready to send.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(body: String) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body,
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        let mut j = Json::new();
        j.obj().field_str("error", message).end_obj();
        Reply {
            status,
            content_type: "application/json",
            body: j.finish(),
        }
    }
}

fn answer(mut req: Request, shared: &Shared) {
    let reply = route(&mut req, shared);
    let mut response = Response::from_string(reply.body).with_status_code(reply.status);
    for (k, v) in [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ] {
        if let Ok(h) = Header::from_bytes(k, v) {
            response.add_header(h);
        }
    }
    if let Err(e) = req.respond(response) {
        log::debug!("arbor-observer: a client went away: {e}");
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn route(req: &mut Request, shared: &Shared) -> Reply {
    if req.body_length().is_some_and(|n| n as u64 > MAX_BODY) {
        return Reply::error(413, "request body too large");
    }
    // Drain a small body, if any, so that the connection stays usable.
    let mut sink = Vec::new();
    if req.as_reader().take(MAX_BODY).read_to_end(&mut sink).is_err() {
        return Reply::error(400, "unreadable request body");
    }
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let params = match parse_query(query) {
        Some(p) => p,
        None => return Reply::error(400, "malformed query string"),
    };
    if shared.token.is_none() && !header(req, "Host").is_some_and(loopback_host) {
        // Without a token, only a browser that addressed the observer by a loopback name
        // gets an answer: a page of another site that points its own domain at 127.0.0.1
        // (DNS rebinding) sends its domain in `Host`, and is refused.
        return Reply::error(
            403,
            "without a token, the observer answers only requests addressed to a loopback host",
        );
    }
    if let Some(token) = &shared.token {
        let given = params
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.as_str())
            .or_else(|| header(req, "Authorization").and_then(|h| h.strip_prefix("Bearer ")));
        if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            return Reply::error(401, "missing or wrong token");
        }
    }
    let get = *req.method() == Method::Get || *req.method() == Method::Head;
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match path {
        "/" | "/index.html" if get => Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: PAGE.to_string(),
        },
        "/api/snapshot" if get => Reply::json(render::snapshot(
            &collect(shared),
            shared.allow_kill,
            shared.stuck_after,
        )),
        "/api/stats" if get => {
            let mut j = Json::new();
            render::stats(&mut j, shared.rt.name(), &shared.rt.stats());
            Reply::json(j.finish())
        }
        "/api/processes" if get => part(shared, |j, s| render::processes(j, &s.processes)),
        "/api/trees" if get => part(shared, |j, s| render::trees(j, &s.trees)),
        "/api/restarts" if get => part(shared, |j, s| render::restarts(j, &s.restarts)),
        "/api/registries" if get => part(shared, |j, s| render::registries(j, &s.registries)),
        "/api/stuck" if get => part(shared, |j, s| render::stuck(j, &s.stuck)),
        "/api/watchdog" if get => part(shared, |j, s| render::watchdog(j, &s.watchdog)),
        "/api/process" if get => match param("pid").map(|p| find_pid(&shared.rt, p)) {
            None => Reply::error(400, "missing pid"),
            Some(Err(r)) => r,
            Some(Ok(pid)) => match shared.rt.process_info(pid) {
                Some(info) => {
                    let mut j = Json::new();
                    render::process(&mut j, &info);
                    Reply::json(j.finish())
                }
                None => Reply::error(404, "no such process"),
            },
        },
        "/api/state" if get => match param("pid").map(|p| find_pid(&shared.rt, p)) {
            None => Reply::error(400, "missing pid"),
            Some(Err(r)) => r,
            Some(Ok(pid)) => {
                let type_name = shared.rt.process_info(pid).map(|i| i.type_name);
                match shared.rt.get_state(pid, shared.limits.call_timeout) {
                    Ok(state) => {
                        let mut j = Json::new();
                        j.obj()
                            .field_str("pid", &pid.to_string())
                            .key("type_name")
                            .opt_str(type_name)
                            .key("state")
                            .opt_str(state.as_deref())
                            .end_obj();
                        Reply::json(j.finish())
                    }
                    Err(CallError::Timeout) => {
                        Reply::error(504, "the process did not answer in time (a handler is running)")
                    }
                    Err(CallError::NoProc | CallError::Exited(_)) => Reply::error(404, "no such process"),
                    Err(e) => Reply::error(500, &e.to_string()),
                }
            }
        },
        "/api/kill" if *req.method() == Method::Post => {
            if !shared.allow_kill {
                return Reply::error(403, "killing from the observer is disabled");
            }
            if header(req, "X-Arbor-Observer") != Some("1") {
                return Reply::error(403, "missing X-Arbor-Observer header");
            }
            match param("pid").map(|p| find_pid(&shared.rt, p)) {
                None => Reply::error(400, "missing pid"),
                Some(Err(r)) => r,
                Some(Ok(pid)) => {
                    log::warn!("arbor-observer: killing {pid} at a client's request");
                    shared.rt.kill(pid);
                    let mut j = Json::new();
                    j.obj().field_str("killed", &pid.to_string()).end_obj();
                    Reply::json(j.finish())
                }
            }
        }
        "/" | "/index.html" | "/api/snapshot" | "/api/stats" | "/api/processes" | "/api/trees" | "/api/restarts"
        | "/api/registries" | "/api/stuck" | "/api/watchdog" | "/api/process" | "/api/kill" => {
            Reply::error(405, "method not allowed")
        }
        _ => Reply::error(404, "not found"),
    }
}

fn collect(shared: &Shared) -> Snapshot {
    Snapshot::collect(&shared.rt, &shared.limits, &shared.registries, &shared.progress)
}

fn part(shared: &Shared, f: impl FnOnce(&mut Json, &Snapshot)) -> Reply {
    let mut j = Json::new();
    f(&mut j, &collect(shared));
    Reply::json(j.finish())
}

/// True for a `Host` header naming a loopback address or `localhost` (with or without a port).
fn loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The live process whose pid prints as `text` (`<0.12.3>`).
fn find_pid(rt: &RuntimeHandle, text: &str) -> Result<Pid, Reply> {
    let well_formed = text.len() <= 64
        && text.starts_with('<')
        && text.ends_with('>')
        && text[1..text.len() - 1].split('.').count() == 3
        && text[1..text.len() - 1]
            .split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(Reply::error(400, "malformed pid (expected <R.I.S>)"));
    }
    rt.processes()
        .into_iter()
        .find(|p| p.to_string() == text)
        .ok_or_else(|| Reply::error(404, "no such process"))
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `a=1&b=%3C0.1.2%3E` into pairs; `None` if an escape is malformed or not UTF-8.
fn parse_query(q: &str) -> Option<Vec<(String, String)>> {
    if q.len() > 2048 {
        return None;
    }
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_bad_escapes_are_refused() {
        assert_eq!(
            parse_query("pid=%3C0.1.2%3E&token=a+b").unwrap(),
            vec![("pid".into(), "<0.1.2>".into()), ("token".into(), "a b".into())]
        );
        assert!(parse_query("pid=%3").is_none());
        assert!(parse_query("pid=%zz").is_none());
        assert!(parse_query("pid=%FF").is_none());
        assert_eq!(percent_decode(&percent_encode("a b/é?")).unwrap(), "a b/é?");
    }

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for ok in [
            "127.0.0.1:4000",
            "127.0.0.1",
            "localhost:80",
            "LOCALHOST",
            "[::1]:4000",
            "127.1.2.3:9",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:4000",
            "evil.example",
            "10.0.0.1:80",
            "[::2]:1",
            "",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
    }
}
