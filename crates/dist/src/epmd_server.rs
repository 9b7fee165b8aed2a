//! An embedded epmd: the name server that maps node names to distribution ports, so that
//! arbor nodes can cluster (and `erl` nodes can join them, with `-start_epmd false` and
//! `ERL_EPMD_PORT`) on a machine with no Erlang installed.
//!
//! It answers the requests nodes make (`ALIVE2_REQ`, `PORT_PLEASE2_REQ`, `NAMES_REQ`); a
//! registration lives as long as the registering node keeps its socket open, as with the
//! real epmd. `KILL_REQ` and `STOP_REQ` are refused. Requests are bounded (1 KiB, 5 s to
//! arrive), and so is the number of open connections (1,024): a client cannot grow it
//! without bound.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
const NAMES_REQ: u8 = 110;
const MAX_CONNECTIONS: usize = 1024;

#[derive(Clone)]
struct Entry {
    port: u16,
    node_type: u8,
    protocol: u8,
    highest: u16,
    lowest: u16,
    extra: Vec<u8>,
}

struct State {
    names: Mutex<HashMap<String, Entry>>,
    /// The registrations' sockets, shut when the epmd stops.
    streams: Mutex<HashMap<String, TcpStream>>,
    creation: AtomicU32,
    open: AtomicUsize,
    stopping: AtomicBool,
    port: u16,
}

/// A running embedded epmd; stops (and drops its registrations) when dropped.
pub struct EmbeddedEpmd {
    state: Arc<State>,
    addr: SocketAddr,
}

impl EmbeddedEpmd {
    /// Starts an epmd listening on `addr` (port 0 picks a free one).
    ///
    /// # Errors
    ///
    /// The I/O error if `addr` cannot be bound.
    pub fn start(addr: SocketAddr) -> io::Result<EmbeddedEpmd> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let seed = crate::handshake::challenge() | 1;
        let state = Arc::new(State {
            names: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            creation: AtomicU32::new(seed),
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            port: addr.port(),
        });
        let s = Arc::clone(&state);
        std::thread::Builder::new()
            .name("epmd".into())
            .spawn(move || accept(listener, s))?;
        Ok(EmbeddedEpmd { state, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The names registered now (as `epmd -names` lists them).
    pub fn names(&self) -> Vec<(String, u16)> {
        let names = self.state.names.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, u16)> = names.iter().map(|(n, e)| (n.clone(), e.port)).collect();
        v.sort();
        v
    }
}

impl Drop for EmbeddedEpmd {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        for (_, s) in self.state.streams.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let wake = if self.addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], self.addr.port()))
        } else {
            self.addr
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
    }
}

fn accept(listener: TcpListener, state: Arc<State>) {
    for stream in listener.incoming() {
        if state.stopping.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if state.open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            state.open.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: closed at once
        }
        let s = Arc::clone(&state);
        let spawned = std::thread::Builder::new().name("epmd-conn".into()).spawn(move || {
            let _ = serve(stream, &s);
            s.open.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            state.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn serve(mut s: TcpStream, state: &State) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let len = u16::from_be_bytes(len) as usize;
    if len == 0 || len > 1024 {
        return Ok(());
    }
    let mut req = vec![0u8; len];
    s.read_exact(&mut req)?;
    match req[0] {
        ALIVE2_REQ => alive(s, &req[1..], state),
        PORT_PLEASE2_REQ => {
            let name = String::from_utf8_lossy(&req[1..]).into_owned();
            let entry = state
                .names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&name)
                .cloned();
            let mut out = vec![PORT2_RESP];
            match entry {
                None => out.push(1),
                Some(e) => {
                    out.push(0);
                    out.extend_from_slice(&e.port.to_be_bytes());
                    out.push(e.node_type);
                    out.push(e.protocol);
                    out.extend_from_slice(&e.highest.to_be_bytes());
                    out.extend_from_slice(&e.lowest.to_be_bytes());
                    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(&(e.extra.len() as u16).to_be_bytes());
                    out.extend_from_slice(&e.extra);
                }
            }
            s.write_all(&out)
        }
        NAMES_REQ => {
            let mut out = (state.port as u32).to_be_bytes().to_vec();
            let names = state.names.lock().unwrap_or_else(|p| p.into_inner());
            for (n, e) in names.iter() {
                out.extend_from_slice(format!("name {n} at port {}\n", e.port).as_bytes());
            }
            drop(names);
            s.write_all(&out)
        }
        _ => Ok(()), // KILL_REQ, STOP_REQ and the rest: refused by closing
    }
}

fn alive(mut s: TcpStream, b: &[u8], state: &State) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed ALIVE2_REQ");
    if b.len() < 10 {
        return Err(bad());
    }
    let port = u16::from_be_bytes([b[0], b[1]]);
    let nlen = u16::from_be_bytes([b[8], b[9]]) as usize;
    let name_end = 10 + nlen;
    if nlen == 0 || b.len() < name_end + 2 {
        return Err(bad());
    }
    let name = String::from_utf8(b[10..name_end].to_vec()).map_err(|_| bad())?;
    let elen = u16::from_be_bytes([b[name_end], b[name_end + 1]]) as usize;
    let extra = b.get(name_end + 2..name_end + 2 + elen).ok_or_else(bad)?.to_vec();
    let entry = Entry {
        port,
        node_type: b[2],
        protocol: b[3],
        highest: u16::from_be_bytes([b[4], b[5]]),
        lowest: u16::from_be_bytes([b[6], b[7]]),
        extra,
    };
    let taken = {
        let mut names = state.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.contains_key(&name) {
            true
        } else {
            names.insert(name.clone(), entry);
            false
        }
    };
    if taken {
        return s.write_all(&[ALIVE2_X_RESP, 1, 0, 0, 0, 0]);
    }
    let creation = state.creation.fetch_add(1, Ordering::Relaxed).max(1);
    let mut out = vec![ALIVE2_X_RESP, 0];
    out.extend_from_slice(&creation.to_be_bytes());
    let written = s.write_all(&out);
    if written.is_ok() {
        // The registration lives until the node closes its socket.
        let _ = s.set_read_timeout(None);
        if let Ok(clone) = s.try_clone() {
            state
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), clone);
        }
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if state.stopping.load(Ordering::Acquire) {
                break;
            }
        }
    }
    state.names.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
    state.streams.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
    written
}
