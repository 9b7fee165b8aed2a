//! The node: its identity, epmd registration, listener, and the table of connections
//! (with simultaneous connects settled as OTP settles them).
//!
//! Invariants:
//! - at most one live connection per peer name: a slot is `Pending` while one handshake
//!   runs, `Up` after; whoever installs `Up` wakes everyone waiting on `Pending`;
//! - a connection's loss is handled once (`Inner::down`), after which nothing refers to
//!   it: its calls failed with `NodeDown`, its monitors and links told `noconnection`.

use crate::conn::{Conn, Dispatch, Limits};
use crate::control::Control;
use crate::epmd::{self, Registration};
use crate::error::DistError;
use crate::handshake::{self, flags, HandshakeError, Me, Status};
use crate::routing::Tables;
use crate::term::{Atom, DecodeLimits, ExtPid, ExtRef};
use arbor_core::RuntimeHandle;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How to start a [`Node`](crate::Node): `Node::builder("name@host")`.
#[derive(Clone, Debug)]
pub struct Builder {
    name: String,
    cookie: Option<String>,
    epmd_port: Option<u16>,
    listen: IpAddr,
    hidden: bool,
    net_ticktime: Duration,
    max_frame: usize,
    max_calls_in_flight: usize,
    connect_timeout: Duration,
    embedded_epmd: bool,
    receive_coalesce: Duration,
    send_coalesce: Duration,
    run_calls_on_reader: bool,
}

impl Builder {
    pub(crate) fn new(name: &str) -> Builder {
        Builder {
            name: name.to_string(),
            cookie: None,
            epmd_port: None,
            listen: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            hidden: true,
            net_ticktime: Duration::from_secs(60),
            max_frame: 16 << 20,
            max_calls_in_flight: 65_536,
            connect_timeout: Duration::from_secs(7),
            embedded_epmd: false,
            receive_coalesce: Duration::from_micros(50),
            send_coalesce: Duration::from_micros(50),
            run_calls_on_reader: true,
        }
    }

    /// Runs an epmd inside this node if none answers on the epmd port (as `erl` starts
    /// one), so that arbor-only nodes cluster with no Erlang installed. It listens on the
    /// node's listen address and lives as long as the node; nodes registered with it lose
    /// it when this node stops.
    pub fn embedded_epmd(mut self, on: bool) -> Builder {
        self.embedded_epmd = on;
        self
    }

    /// The cookie. Default: the contents of `~/.erlang.cookie`, as `erl` reads it.
    pub fn cookie(mut self, cookie: impl Into<String>) -> Builder {
        self.cookie = Some(cookie.into());
        self
    }

    /// The port of the epmd to register with and to ask about other nodes. Default:
    /// `$ERL_EPMD_PORT`, else 4369.
    pub fn epmd_port(mut self, port: u16) -> Builder {
        self.epmd_port = Some(port);
        self
    }

    /// The address the distribution listener binds. Default: all IPv4 interfaces, as
    /// `erl` does.
    pub fn listen_addr(mut self, ip: IpAddr) -> Builder {
        self.listen = ip;
        self
    }

    /// Hidden (the default): peers do not add this node to their `Node.list()`, and do not
    /// pull it into their global groups. `false` makes it a visible node; arbor runs no
    /// `global_name_server`, so a BEAM peer's `global:sync()` then never completes (calls
    /// and the connection are unaffected).
    pub fn hidden(mut self, hidden: bool) -> Builder {
        self.hidden = hidden;
        self
    }

    /// Erlang's `net_ticktime` (default 60 s): a peer that sends nothing for this long is
    /// declared down; this node ticks every quarter of it. Set the peers to the same value.
    pub fn net_ticktime(mut self, t: Duration) -> Builder {
        self.net_ticktime = t.max(Duration::from_millis(400));
        self
    }

    /// The largest frame accepted from a peer (default 16 MiB). A longer one closes that
    /// connection before any of it is read.
    pub fn max_frame(mut self, bytes: usize) -> Builder {
        self.max_frame = bytes.max(64);
        self
    }

    /// The most incoming calls one connection may have waiting for their replies at once
    /// (default 65,536, at least 1); at the bound the connection's reader stops reading
    /// until a reply makes room, so a peer that floods calls meets TCP's back-pressure.
    pub fn max_calls_in_flight(mut self, n: usize) -> Builder {
        self.max_calls_in_flight = n.max(1);
        self
    }

    /// How long a connection's reader waits before each read while the peer floods it
    /// with casts (default 50 µs; zero: never; at most 10 ms). A flood is four reads in
    /// a row of `GenServer.cast`s only (a plain send or a call ends it), each under
    /// 16 KiB, that each found its bytes waiting (the read returned within 20 µs): the
    /// peer sends faster than the reader reads them one or two at a time. Waiting then
    /// lets each read take tens of messages
    /// (one system call, one TCP acknowledgement, one push into the server's mailbox, one
    /// wake-up of the server) instead of one or two, as a network card's adaptive
    /// interrupt coalescing does; on the benchmark of docs/performance.md it takes
    /// arbor's CPU per message received from about 1.2-1.5 µs to about 0.7. The price is
    /// latency during the flood only: a call that arrives during a wait waits for it. A
    /// read that held anything else (a call, a reply, a link), a long read and a read
    /// that waited for its bytes end the flood at once, so that calls, replies and
    /// messages that come one at a time are read as they arrive, as the BEAM reads them.
    pub fn receive_coalesce(mut self, wait: Duration) -> Builder {
        self.receive_coalesce = wait.min(Duration::from_millis(10));
        self
    }

    /// Whether a connection's reading thread runs the turn of an exported server that an
    /// incoming call found idle (default on): the request is handled and the reply
    /// written by the thread that read it, with no hand-over to a worker thread, as the
    /// BEAM's scheduler that polled the socket runs the process. Other messages, and
    /// calls to a server that is busy, go to the workers as before. If the handler blocks
    /// in arbor (a call it makes, perhaps back over the same connection, or
    /// [`arbor_core::blocking`]), another thread takes over the reading at once; if it
    /// blocks otherwise or computes for long, as soon as the pool's monitor sees it (1 ms
    /// while workers are busy, up to 17 ms from an idle pool). Off, every call goes
    /// through the workers.
    pub fn run_calls_on_reader(mut self, on: bool) -> Builder {
        self.run_calls_on_reader = on;
        self
    }

    /// How long a connection's writer thread waits to gather a burst of outgoing casts
    /// and sends before it writes them (default 50 µs; zero: never; at most 10 ms). A
    /// frame sent within 10 µs of the previous one is part of a burst (a loop of casts)
    /// and is left to the writer thread; waiting a moment lets the rest of the burst
    /// queue, so that it goes out in one system call and one wake-up of the writer rather
    /// than one of each per few frames. Lone frames, a call's request and a reply are
    /// written by their sender at once and never wait.
    pub fn send_coalesce(mut self, wait: Duration) -> Builder {
        self.send_coalesce = wait.min(Duration::from_millis(10));
        self
    }

    /// Starts the node on `runtime`: listens, registers with epmd, and returns once it can
    /// be reached.
    ///
    /// # Errors
    ///
    /// A `DistError` if the name or cookie is invalid, the listener cannot bind, or epmd
    /// refuses the registration (the name is taken, or no epmd runs).
    pub fn start(self, runtime: &RuntimeHandle) -> Result<crate::Node, DistError> {
        let (alive, host) = split_name(&self.name)?;
        let cookie = match self.cookie {
            Some(c) => c,
            None => read_cookie()?,
        };
        let epmd_port = self
            .epmd_port
            .or_else(|| std::env::var("ERL_EPMD_PORT").ok()?.parse().ok())
            .unwrap_or(4369);
        let listener = TcpListener::bind(SocketAddr::new(self.listen, 0))?;
        let port = listener.local_addr()?.port();
        let epmd_addr = (host.as_str(), epmd_port)
            .to_socket_addrs_v4()
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), epmd_port));
        let embedded =
            if self.embedded_epmd && TcpStream::connect_timeout(&epmd_addr, Duration::from_millis(500)).is_err() {
                match crate::EmbeddedEpmd::start(SocketAddr::new(self.listen, epmd_port)) {
                    Ok(e) => Some(e),
                    // another node started one meanwhile
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => None,
                    Err(e) => return Err(DistError::Epmd(format!("cannot start an embedded epmd: {e}"))),
                }
            } else {
                None
            };
        let registration = epmd::register(epmd_addr, &alive, port)?;
        let limits = Limits {
            tick: self.net_ticktime / 4,
            net_ticktime: self.net_ticktime,
            max_frame: self.max_frame,
            max_calls: self.max_calls_in_flight,
            decode: DecodeLimits::default(),
            coalesce: self.receive_coalesce,
            send_coalesce: self.send_coalesce,
            inline_calls: self.run_calls_on_reader,
        };
        let mut our_flags = flags::OURS;
        if !self.hidden {
            our_flags |= flags::PUBLISHED;
        }
        let name = Atom::new(&self.name);
        let creation = registration.creation;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| Inner {
            name: name.clone(),
            cookie,
            flags: our_flags,
            creation,
            epmd_port,
            limits,
            connect_timeout: self.connect_timeout,
            conns: Mutex::new(HashMap::new()),
            tables: Tables::new(weak.clone(), runtime.clone()),
            refs: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            listen_addr: SocketAddr::new(
                if self.listen.is_unspecified() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    self.listen
                },
                port,
            ),
            registration: Mutex::new(Some(registration)),
            embedded: Mutex::new(embedded),
            me: weak.clone(),
        });
        inner.tables.start_waiter()?;
        let acceptor = Arc::clone(&inner);
        std::thread::Builder::new()
            .name(format!("dist-accept-{alive}"))
            .spawn(move || accept_loop(listener, acceptor))?;
        Ok(crate::Node::from_inner(inner))
    }
}

trait ToV4 {
    fn to_socket_addrs_v4(&self) -> Option<SocketAddr>;
}

impl ToV4 for (&str, u16) {
    fn to_socket_addrs_v4(&self) -> Option<SocketAddr> {
        use std::net::ToSocketAddrs;
        self.to_socket_addrs().ok()?.find(|a| a.is_ipv4())
    }
}

pub(crate) fn split_name(name: &str) -> Result<(String, String), DistError> {
    match name.split_once('@') {
        Some((alive, host)) if !alive.is_empty() && !host.is_empty() && !host.contains('@') && alive.len() <= 255 => {
            Ok((alive.to_string(), host.to_string()))
        }
        _ => Err(DistError::BadName(format!("{name:?} is not name@host"))),
    }
}

fn read_cookie() -> Result<String, DistError> {
    let home = std::env::var_os("HOME").ok_or(DistError::NoCookie)?;
    let text =
        std::fs::read_to_string(std::path::Path::new(&home).join(".erlang.cookie")).map_err(|_| DistError::NoCookie)?;
    let cookie = text.trim().to_string();
    if cookie.is_empty() {
        return Err(DistError::NoCookie);
    }
    Ok(cookie)
}

/// A handshake under way, waited on by whoever needs the connection meanwhile.
pub(crate) struct PendingConn {
    result: Mutex<Option<Result<Arc<Conn>, String>>>,
    done: Condvar,
    /// Set when the peer's own attempt won a simultaneous connect (we answered it
    /// `ok_simultaneous`): our attempt, if it gets that far, is dropped, as OTP drops it.
    superseded: AtomicBool,
}

impl PendingConn {
    fn new() -> Arc<PendingConn> {
        Arc::new(PendingConn {
            result: Mutex::new(None),
            done: Condvar::new(),
            superseded: AtomicBool::new(false),
        })
    }
}

impl PendingConn {
    fn complete(&self, r: Result<Arc<Conn>, String>) {
        let mut slot = self.result.lock();
        if slot.is_none() {
            *slot = Some(r);
        }
        self.done.notify_all();
    }

    fn wait(&self, deadline: Instant) -> Option<Result<Arc<Conn>, String>> {
        let mut slot = self.result.lock();
        while slot.is_none() {
            if self.done.wait_until(&mut slot, deadline).timed_out() {
                break;
            }
        }
        slot.clone()
    }
}

pub(crate) enum ConnSlot {
    Pending(Arc<PendingConn>),
    Up(Arc<Conn>),
}

pub(crate) struct Inner {
    pub(crate) name: Atom,
    cookie: String,
    flags: u64,
    pub(crate) creation: u32,
    epmd_port: u16,
    limits: Limits,
    connect_timeout: Duration,
    conns: Mutex<HashMap<Atom, ConnSlot>>,
    pub(crate) tables: Tables,
    refs: AtomicU64,
    stopping: AtomicBool,
    listen_addr: SocketAddr,
    registration: Mutex<Option<Registration>>,
    embedded: Mutex<Option<crate::EmbeddedEpmd>>,
    me: Weak<Inner>,
}

impl Inner {
    fn me(&self) -> Option<Arc<Inner>> {
        self.me.upgrade()
    }

    fn handshake_me(&self) -> Me<'_> {
        Me {
            name: self.name.as_str(),
            flags: self.flags,
            creation: self.creation,
            cookie: &self.cookie,
        }
    }

    /// A new reference of this node (also used as an alias for call replies).
    pub(crate) fn make_ref(&self) -> ExtRef {
        let n = self.refs.fetch_add(1, Ordering::Relaxed);
        ExtRef {
            node: self.name.clone(),
            creation: self.creation,
            id: vec![(n & 0x3ffff) as u32, (n >> 18) as u32, (n >> 50) as u32],
        }
    }

    /// The pid that stands for arbor code outside any exported process: it sends casts
    /// and plain messages, and makes calls.
    pub(crate) fn proxy_pid(&self) -> ExtPid {
        ExtPid {
            node: self.name.clone(),
            id: 0,
            serial: 0,
            creation: self.creation,
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The live connection to `peer`, if there is one (no connection attempt).
    pub(crate) fn existing(&self, peer: &Atom) -> Option<Arc<Conn>> {
        match self.conns.lock().get(peer) {
            Some(ConnSlot::Up(c)) if !c.is_closed() => Some(Arc::clone(c)),
            _ => None,
        }
    }

    pub(crate) fn connected(&self) -> Vec<Atom> {
        self.conns
            .lock()
            .iter()
            .filter_map(|(k, v)| match v {
                ConnSlot::Up(c) if !c.is_closed() => Some(k.clone()),
                _ => None,
            })
            .collect()
    }

    /// The connection to `peer`, opened if needed (epmd lookup, handshake); waits for a
    /// handshake already under way rather than starting a second one.
    pub(crate) fn connection(&self, peer: &Atom) -> Result<Arc<Conn>, DistError> {
        if *peer == self.name {
            return Err(DistError::NodeDown("a node cannot connect to itself".into()));
        }
        if self.is_stopping() {
            return Err(DistError::NodeDown("this node is stopping".into()));
        }
        let deadline = Instant::now() + self.connect_timeout;
        let pending = {
            let mut conns = self.conns.lock();
            match conns.get(peer) {
                Some(ConnSlot::Up(c)) if !c.is_closed() => return Ok(Arc::clone(c)),
                Some(ConnSlot::Pending(p)) => Err(Arc::clone(p)),
                _ => {
                    let p = PendingConn::new();
                    conns.insert(peer.clone(), ConnSlot::Pending(Arc::clone(&p)));
                    Ok(p)
                }
            }
        };
        let ours = match pending {
            Err(theirs) => return self.wait_pending(peer, &theirs, deadline),
            Ok(p) => p,
        };
        match self.dial(peer, &ours) {
            // The peer's attempt won meanwhile: ours is dropped.
            Ok(_) if ours.superseded.load(Ordering::Acquire) => self.wait_pending(peer, &ours, deadline),
            Ok((stream, hs)) => {
                let conn = self
                    .install(stream, hs, Some(&ours))
                    .map_err(|e| DistError::NodeDown(e.to_string()))?;
                Ok(conn)
            }
            // The peer is dialling us too and its name is greater (`nok`), or its attempt
            // already won (`alive` refused): its attempt installs the connection.
            Err(DialError::Handshake(HandshakeError::Refused(s)))
                if s == "nok" || (s == "alive" && ours.superseded.load(Ordering::Acquire)) =>
            {
                self.wait_pending(peer, &ours, deadline)
            }
            Err(e) => {
                let why = e.to_string();
                let mut conns = self.conns.lock();
                if matches!(conns.get(peer), Some(ConnSlot::Pending(p)) if Arc::ptr_eq(p, &ours)) {
                    conns.remove(peer);
                }
                drop(conns);
                ours.complete(Err(why.clone()));
                Err(DistError::NodeDown(format!("{}: {why}", peer.as_str())))
            }
        }
    }

    fn wait_pending(&self, peer: &Atom, p: &Arc<PendingConn>, deadline: Instant) -> Result<Arc<Conn>, DistError> {
        match p.wait(deadline) {
            Some(Ok(c)) => Ok(c),
            Some(Err(why)) => Err(DistError::NodeDown(format!("{}: {why}", peer.as_str()))),
            None => {
                let mut conns = self.conns.lock();
                if matches!(conns.get(peer), Some(ConnSlot::Pending(q)) if Arc::ptr_eq(p, q)) {
                    conns.remove(peer);
                }
                drop(conns);
                p.complete(Err("connection attempt timed out".into()));
                Err(DistError::NodeDown(format!(
                    "{}: connection attempt timed out",
                    peer.as_str()
                )))
            }
        }
    }

    fn dial(&self, peer: &Atom, ours: &PendingConn) -> Result<(TcpStream, handshake::Peer), DialError> {
        let (alive, host) = split_name(peer.as_str()).map_err(|e| DialError::Other(e.to_string()))?;
        let (addr, version) = epmd::lookup(&host, self.epmd_port, &alive)
            .map_err(|e| DialError::Other(e.to_string()))?
            .ok_or_else(|| DialError::Other(format!("{alive} is not registered with epmd on {host}")))?;
        if version < epmd::VERSION {
            return Err(DialError::Other(format!(
                "{} speaks protocol version {version}; arbor needs 6 (OTP 23+)",
                peer.as_str()
            )));
        }
        let mut stream =
            TcpStream::connect_timeout(&addr, self.connect_timeout).map_err(|e| DialError::Other(e.to_string()))?;
        stream.set_nodelay(true).map_err(|e| DialError::Other(e.to_string()))?;
        stream
            .set_read_timeout(Some(self.connect_timeout))
            .map_err(|e| DialError::Other(e.to_string()))?;
        let go_on = || !ours.superseded.load(Ordering::Acquire);
        let hs = handshake::initiate(&mut stream, &self.handshake_me(), peer.as_str(), go_on)
            .map_err(DialError::Handshake)?;
        Ok((stream, hs))
    }

    /// Makes a handshaken socket the peer's connection, waking whoever waits for it.
    fn install(
        &self,
        stream: TcpStream,
        hs: handshake::Peer,
        ours: Option<&Arc<PendingConn>>,
    ) -> std::io::Result<Arc<Conn>> {
        let me = self.me().ok_or_else(|| std::io::Error::other("node stopped"))?;
        let peer = Atom::new(&hs.name);
        let conn = Conn::start(stream, peer.clone(), hs.flags, self.limits, me as Arc<dyn Dispatch>)?;
        let old = self.conns.lock().insert(peer.clone(), ConnSlot::Up(Arc::clone(&conn)));
        match old {
            Some(ConnSlot::Pending(p)) => p.complete(Ok(Arc::clone(&conn))),
            Some(ConnSlot::Up(old)) if !Arc::ptr_eq(&old, &conn) => {
                old.close();
            }
            _ => {}
        }
        if let Some(p) = ours {
            p.complete(Ok(Arc::clone(&conn)));
        }
        log::info!(
            "arbor-dist: {} connected to {} (creation {})",
            self.name.as_str(),
            peer.as_str(),
            hs.creation
        );
        Ok(conn)
    }

    /// Decides the status for an incoming handshake from `peer`. A handshake that goes on
    /// is entered in the table as pending (the one returned), so that a connect to `peer`
    /// made meanwhile waits for it instead of dialling: the peer then never sees a
    /// simultaneous attempt that it has already answered `ok`.
    fn decide(&self, peer: &str) -> (Status, Option<Arc<PendingConn>>) {
        let peer_atom = Atom::new(peer);
        let mut conns = self.conns.lock();
        let status = match conns.get(&peer_atom) {
            Some(ConnSlot::Up(c)) if !c.is_closed() => return (Status::Alive, None),
            // Simultaneous connect: the greater name's attempt wins; ours, if it loses,
            // gets `nok` from the peer and waits for this one (the same pending).
            Some(ConnSlot::Pending(p)) => {
                return if peer > self.name.as_str() {
                    p.superseded.store(true, Ordering::Release);
                    (Status::OkSimultaneous, Some(Arc::clone(p)))
                } else {
                    (Status::Nok, None)
                };
            }
            _ => Status::Ok,
        };
        let p = PendingConn::new();
        conns.insert(peer_atom, ConnSlot::Pending(Arc::clone(&p)));
        (status, Some(p))
    }

    fn accept_one(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(self.connect_timeout));
        let _ = stream.set_nodelay(true);
        let me = self.handshake_me();
        let mut pending: Option<(Atom, Arc<PendingConn>)> = None;
        let result = handshake::accept(&mut stream, &me, |peer| {
            let (status, p) = self.decide(peer);
            pending = p.map(|p| (Atom::new(peer), p));
            status
        });
        match result {
            Ok(hs) => {
                let ours = pending.as_ref().map(|(_, p)| p);
                if let Err(e) = self.install(stream, hs, ours) {
                    log::warn!("arbor-dist: cannot start a connection: {e}");
                }
                return;
            }
            Err(HandshakeError::BadCookie) => {
                log::warn!("arbor-dist: refused a connection: the peer's cookie does not match ours");
            }
            Err(HandshakeError::Refused(_)) => {}
            Err(e) => log::warn!("arbor-dist: incoming handshake failed: {e}"),
        }
        if let Some((peer, p)) = pending {
            let mut conns = self.conns.lock();
            if matches!(conns.get(&peer), Some(ConnSlot::Pending(q)) if Arc::ptr_eq(q, &p)) {
                conns.remove(&peer);
            }
            drop(conns);
            p.complete(Err("the incoming handshake failed".into()));
        }
    }

    /// Stops the node: unregisters from epmd, closes the listener and every connection.
    pub(crate) fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        self.registration.lock().take();
        self.embedded.lock().take();
        // wake the acceptor
        let _ = TcpStream::connect_timeout(&self.listen_addr, Duration::from_millis(200));
        let conns: Vec<Arc<Conn>> = self
            .conns
            .lock()
            .drain()
            .filter_map(|(_, v)| match v {
                ConnSlot::Up(c) => Some(c),
                ConnSlot::Pending(p) => {
                    p.complete(Err("node stopped".into()));
                    None
                }
            })
            .collect();
        for c in conns {
            c.close();
        }
    }

    pub(crate) fn disconnect(&self, peer: &Atom) -> bool {
        match self.existing(peer) {
            Some(c) => {
                c.close();
                true
            }
            None => false,
        }
    }
}

impl Dispatch for Inner {
    fn dispatch(&self, conn: &Arc<Conn>, control: Control, batch: &mut crate::routing::Batch) {
        self.tables.dispatch(self, conn, control, batch)
    }

    fn message(
        &self,
        conn: &Arc<Conn>,
        control: &crate::control::Remembered,
        serial: u64,
        payload: crate::control::Payload,
        route: &mut crate::routing::RouteMemo,
        batch: &mut crate::routing::Batch,
    ) {
        self.tables.message(self, conn, control, serial, payload, route, batch)
    }

    fn down(&self, conn: &Arc<Conn>, reason: &str) {
        {
            let mut conns = self.conns.lock();
            if matches!(conns.get(&conn.peer), Some(ConnSlot::Up(c)) if Arc::ptr_eq(c, conn)) {
                conns.remove(&conn.peer);
            }
        }
        log::info!("arbor-dist: connection to {} lost: {reason}", conn.peer.as_str());
        self.tables.connection_lost(self, conn);
    }
}

enum DialError {
    Handshake(HandshakeError),
    Other(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Handshake(e) => write!(f, "handshake: {e}"),
            DialError::Other(s) => f.write_str(s),
        }
    }
}

/// Handshakes under way at once; past this, new connections are closed unanswered, so a
/// flood of sockets cannot grow threads without bound.
const MAX_HANDSHAKES: usize = 64;

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    let under_way = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for stream in listener.incoming() {
        if inner.is_stopping() {
            return;
        }
        match stream {
            Ok(s) => {
                if under_way.fetch_add(1, Ordering::AcqRel) >= MAX_HANDSHAKES {
                    under_way.fetch_sub(1, Ordering::AcqRel);
                    log::warn!("arbor-dist: {MAX_HANDSHAKES} handshakes under way; a connection was refused");
                    continue;
                }
                let (i, n) = (Arc::clone(&inner), Arc::clone(&under_way));
                let spawned = std::thread::Builder::new()
                    .name("dist-handshake".into())
                    .spawn(move || {
                        i.accept_one(s);
                        n.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    under_way.fetch_sub(1, Ordering::AcqRel);
                }
            }
            Err(e) => {
                log::warn!("arbor-dist: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
