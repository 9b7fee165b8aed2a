//! The epmd client: register this node (the registration lives as long as its socket), and
//! look up another node's distribution port.

use crate::error::DistError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const ALIVE2_RESP: u8 = 121;
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;

/// The distribution protocol version arbor speaks (OTP 23+).
pub(crate) const VERSION: u16 = 6;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A live registration: dropping it unregisters the node.
pub(crate) struct Registration {
    _stream: TcpStream,
    pub(crate) creation: u32,
}

fn open(epmd: SocketAddr) -> Result<TcpStream, DistError> {
    let s = TcpStream::connect_timeout(&epmd, TIMEOUT)
        .map_err(|e| DistError::Epmd(format!("cannot reach epmd at {epmd}: {e}")))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn request(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Registers `alive` (the name's part before `@`) as listening on `port`.
pub(crate) fn register(epmd: SocketAddr, alive: &str, port: u16) -> Result<Registration, DistError> {
    let mut s = open(epmd)?;
    let mut body = vec![ALIVE2_REQ];
    body.extend_from_slice(&port.to_be_bytes());
    body.push(77); // a normal node; hidden-ness is a distribution flag
    body.push(0); // TCP over IPv4
    body.extend_from_slice(&VERSION.to_be_bytes());
    body.extend_from_slice(&VERSION.to_be_bytes());
    body.extend_from_slice(&(alive.len() as u16).to_be_bytes());
    body.extend_from_slice(alive.as_bytes());
    body.extend_from_slice(&0u16.to_be_bytes());
    s.write_all(&request(&body))?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)
        .map_err(|e| DistError::Epmd(format!("no answer to the registration: {e}")))?;
    let creation = match head {
        [ALIVE2_X_RESP, 0] => {
            let mut c = [0u8; 4];
            s.read_exact(&mut c)?;
            u32::from_be_bytes(c)
        }
        [ALIVE2_RESP, 0] => {
            let mut c = [0u8; 2];
            s.read_exact(&mut c)?;
            u16::from_be_bytes(c) as u32
        }
        [ALIVE2_X_RESP | ALIVE2_RESP, _] => {
            return Err(DistError::BadName(format!("{alive} is already registered with epmd")))
        }
        other => return Err(DistError::Epmd(format!("unexpected answer {other:?}"))),
    };
    s.set_read_timeout(None)?;
    Ok(Registration { _stream: s, creation })
}

/// The distribution port of `alive` on the epmd at `host:epmd_port`, `None` if it is not
/// registered there.
pub(crate) fn lookup(host: &str, epmd_port: u16, alive: &str) -> Result<Option<(SocketAddr, u16)>, DistError> {
    let addr = (host, epmd_port)
        .to_socket_addrs()
        .map_err(|e| DistError::NodeDown(format!("cannot resolve {host}: {e}")))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| DistError::NodeDown(format!("no IPv4 address for {host}")))?;
    let mut s = open(addr).map_err(|e| DistError::NodeDown(e.to_string()))?;
    let mut body = vec![PORT_PLEASE2_REQ];
    body.extend_from_slice(alive.as_bytes());
    s.write_all(&request(&body))?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    if head[0] != PORT2_RESP {
        return Err(DistError::Epmd(format!("unexpected answer {head:?}")));
    }
    if head[1] != 0 {
        return Ok(None);
    }
    let mut rest = [0u8; 8];
    s.read_exact(&mut rest)?;
    let port = u16::from_be_bytes([rest[0], rest[1]]);
    let highest = u16::from_be_bytes([rest[4], rest[5]]);
    Ok(Some((SocketAddr::new(addr.ip(), port), highest)))
}
