//! The OTP 23+ connection handshake (protocol version 6, `DFLAG_HANDSHAKE_23`), both sides,
//! over any `Read + Write`: pure protocol, no node state. Every message is length-prefixed
//! (2 bytes); the caller sets a read timeout, so a silent peer cannot hold it forever.
//!
//! Initiator A, receiver B:
//! A `N` name → B `s` status → (status `alive`: A `s` true) → B `N` challenge →
//! A `r` challenge + digest → B `a` digest. A digest is MD5(cookie ++ decimal challenge):
//! each side proves it knows the cookie without sending it. A wrong digest ends the
//! handshake with [`HandshakeError::BadCookie`].

use crate::md5;
use std::fmt;
use std::io::{self, Read, Write};

/// Distribution flags (`DFLAG_*`).
pub(crate) mod flags {
    pub(crate) const PUBLISHED: u64 = 0x1;
    pub(crate) const EXTENDED_REFERENCES: u64 = 0x4;
    pub(crate) const DIST_MONITOR: u64 = 0x8;
    pub(crate) const FUN_TAGS: u64 = 0x10;
    pub(crate) const DIST_MONITOR_NAME: u64 = 0x20;
    pub(crate) const NEW_FUN_TAGS: u64 = 0x80;
    pub(crate) const EXTENDED_PIDS_PORTS: u64 = 0x100;
    pub(crate) const EXPORT_PTR_TAG: u64 = 0x200;
    pub(crate) const BIT_BINARIES: u64 = 0x400;
    pub(crate) const NEW_FLOATS: u64 = 0x800;
    pub(crate) const SMALL_ATOM_TAGS: u64 = 0x4000;
    pub(crate) const UTF8_ATOMS: u64 = 0x10000;
    pub(crate) const MAP_TAG: u64 = 0x20000;
    pub(crate) const BIG_CREATION: u64 = 0x40000;
    pub(crate) const SEND_SENDER: u64 = 0x80000;
    pub(crate) const EXIT_PAYLOAD: u64 = 0x400000;
    pub(crate) const HANDSHAKE_23: u64 = 0x1000000;
    pub(crate) const UNLINK_ID: u64 = 0x2000000;
    pub(crate) const V4_NC: u64 = 1 << 34;
    pub(crate) const ALIAS: u64 = 1 << 35;

    /// What arbor offers. No atom cache and no fragments: every message goes as a
    /// pass-through frame, so nothing is kept between frames.
    pub(crate) const OURS: u64 = EXTENDED_REFERENCES
        | DIST_MONITOR
        | FUN_TAGS
        | DIST_MONITOR_NAME
        | NEW_FUN_TAGS
        | EXTENDED_PIDS_PORTS
        | EXPORT_PTR_TAG
        | BIT_BINARIES
        | NEW_FLOATS
        | SMALL_ATOM_TAGS
        | UTF8_ATOMS
        | MAP_TAG
        | BIG_CREATION
        | SEND_SENDER
        | EXIT_PAYLOAD
        | HANDSHAKE_23
        | UNLINK_ID
        | V4_NC
        | ALIAS;

    /// What arbor requires of a peer (OTP 23's mandatory set, which arbor's encoder relies on).
    pub(crate) const REQUIRED: u64 =
        EXTENDED_REFERENCES | EXTENDED_PIDS_PORTS | UTF8_ATOMS | NEW_FLOATS | MAP_TAG | BIG_CREATION | HANDSHAKE_23;
}

/// Why a handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum HandshakeError {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The peer's digest does not match our cookie (or ours did not match its).
    BadCookie,
    /// The peer answered a status other than `ok` (`nok`: it is connecting to us at the
    /// same time and its attempt wins; `not_allowed`; `alive` refused).
    Refused(String),
    /// The peer is not the node we dialled.
    WrongNode(String),
    /// The peer lacks flags arbor needs (a node before OTP 23).
    MissingFlags(u64),
    /// A handshake message arbor cannot read.
    Malformed(&'static str),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "i/o: {e}"),
            HandshakeError::BadCookie => f.write_str("cookie mismatch"),
            HandshakeError::Refused(s) => write!(f, "refused with status {s:?}"),
            HandshakeError::WrongNode(n) => write!(f, "answered as {n}"),
            HandshakeError::MissingFlags(m) => write!(f, "peer lacks required flags {m:#x}"),
            HandshakeError::Malformed(what) => write!(f, "malformed handshake message: {what}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

/// The peer, as the handshake revealed it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) name: String,
    pub(crate) flags: u64,
    pub(crate) creation: u32,
}

/// Who we are in a handshake.
pub(crate) struct Me<'a> {
    pub(crate) name: &'a str,
    pub(crate) flags: u64,
    pub(crate) creation: u32,
    pub(crate) cookie: &'a str,
}

/// What the receiver tells an initiator after reading its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Go on.
    Ok,
    /// Go on; our own attempt to connect to you is abandoned (your name is greater).
    OkSimultaneous,
    /// Stop: our own attempt to connect to you wins (our name is greater).
    Nok,
    /// We already have a connection to you; go on only if you say it is stale.
    Alive,
}

const MAX_MESSAGE: usize = 1024;

fn send(s: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    s.write_all(&out)?;
    s.flush()
}

fn recv(s: &mut impl Read) -> Result<Vec<u8>, HandshakeError> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let len = u16::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(HandshakeError::Malformed("message length"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

pub(crate) fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    md5::digest(format!("{cookie}{challenge}").as_bytes())
}

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// A fresh challenge: std's randomly seeded hasher over a counter and the clock.
pub(crate) fn challenge() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

fn name_message(me: &Me<'_>) -> Vec<u8> {
    let mut m = vec![b'N'];
    m.extend_from_slice(&me.flags.to_be_bytes());
    m.extend_from_slice(&me.creation.to_be_bytes());
    m.extend_from_slice(&(me.name.len() as u16).to_be_bytes());
    m.extend_from_slice(me.name.as_bytes());
    m
}

fn check_flags(flags: u64) -> Result<(), HandshakeError> {
    let missing = flags::REQUIRED & !flags;
    if missing != 0 {
        return Err(HandshakeError::MissingFlags(missing));
    }
    Ok(())
}

/// Dials: we are A. `expect` is the name of the node we meant to reach. If the peer says
/// it already has a connection to us (`alive`), `go_on` decides whether ours replaces it.
pub(crate) fn initiate<S: Read + Write>(
    s: &mut S,
    me: &Me<'_>,
    expect: &str,
    go_on: impl FnOnce() -> bool,
) -> Result<Peer, HandshakeError> {
    send(s, &name_message(me))?;
    let status = recv(s)?;
    if status[0] != b's' {
        return Err(HandshakeError::Malformed("status"));
    }
    match &status[1..] {
        b"ok" | b"ok_simultaneous" => {}
        b"alive" => {
            if !go_on() {
                send(s, b"sfalse")?;
                return Err(HandshakeError::Refused("alive".into()));
            }
            send(s, b"strue")?
        }
        other => return Err(HandshakeError::Refused(String::from_utf8_lossy(other).into_owned())),
    }
    let ch = recv(s)?;
    if ch.len() < 19 || ch[0] != b'N' {
        return Err(HandshakeError::Malformed("challenge"));
    }
    let flags = be_u64(&ch[1..9]);
    let their_challenge = be_u32(&ch[9..13]);
    let creation = be_u32(&ch[13..17]);
    let nlen = be_u16(&ch[17..19]) as usize;
    if ch.len() != 19 + nlen {
        return Err(HandshakeError::Malformed("challenge name"));
    }
    let name = String::from_utf8_lossy(&ch[19..]).into_owned();
    if name != expect {
        return Err(HandshakeError::WrongNode(name));
    }
    check_flags(flags)?;
    let ours = challenge();
    let mut reply = vec![b'r'];
    reply.extend_from_slice(&ours.to_be_bytes());
    reply.extend_from_slice(&digest(me.cookie, their_challenge));
    send(s, &reply)?;
    let ack = match recv(s) {
        Ok(a) => a,
        // B closes the socket on a digest that does not match its cookie
        Err(HandshakeError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(HandshakeError::BadCookie)
        }
        Err(e) => return Err(e),
    };
    if ack.len() != 17 || ack[0] != b'a' {
        return Err(HandshakeError::Malformed("challenge ack"));
    }
    if ack[1..] != digest(me.cookie, ours) {
        return Err(HandshakeError::BadCookie);
    }
    Ok(Peer { name, flags, creation })
}

/// Answers: we are B. `decide` picks the status for the peer's name; with `Status::Alive`,
/// it is told whether the peer insists (`true`: the old connection is stale).
pub(crate) fn accept<S: Read + Write>(
    s: &mut S,
    me: &Me<'_>,
    decide: impl FnOnce(&str) -> Status,
) -> Result<Peer, HandshakeError> {
    let first = recv(s)?;
    if first.len() < 15 || first[0] != b'N' {
        return Err(HandshakeError::Malformed("name (only protocol version 6 is spoken)"));
    }
    let flags = be_u64(&first[1..9]);
    let creation = be_u32(&first[9..13]);
    let nlen = be_u16(&first[13..15]) as usize;
    if first.len() != 15 + nlen {
        return Err(HandshakeError::Malformed("name length"));
    }
    let name = String::from_utf8(first[15..].to_vec()).map_err(|_| HandshakeError::Malformed("name"))?;
    if !name.contains('@') {
        return Err(HandshakeError::Malformed("name without a host"));
    }
    if let Err(e) = check_flags(flags) {
        send(s, b"snot_allowed")?;
        return Err(e);
    }
    match decide(&name) {
        Status::Ok => send(s, b"sok")?,
        Status::OkSimultaneous => send(s, b"sok_simultaneous")?,
        Status::Nok => {
            send(s, b"snok")?;
            return Err(HandshakeError::Refused("nok".into()));
        }
        Status::Alive => {
            send(s, b"salive")?;
            let answer = recv(s)?;
            if answer != b"strue" {
                return Err(HandshakeError::Refused("alive".into()));
            }
        }
    }
    let ours = challenge();
    let mut ch = vec![b'N'];
    ch.extend_from_slice(&me.flags.to_be_bytes());
    ch.extend_from_slice(&ours.to_be_bytes());
    ch.extend_from_slice(&me.creation.to_be_bytes());
    ch.extend_from_slice(&(me.name.len() as u16).to_be_bytes());
    ch.extend_from_slice(me.name.as_bytes());
    send(s, &ch)?;
    let reply = recv(s)?;
    if reply.len() != 21 || reply[0] != b'r' {
        return Err(HandshakeError::Malformed("challenge reply"));
    }
    let their_challenge = be_u32(&reply[1..5]);
    if reply[5..] != digest(me.cookie, ours) {
        return Err(HandshakeError::BadCookie);
    }
    let mut ack = vec![b'a'];
    ack.extend_from_slice(&digest(me.cookie, their_challenge));
    send(s, &ack)?;
    Ok(Peer { name, flags, creation })
}
