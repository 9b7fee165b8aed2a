//! A raw peer for tests: past the handshake with an arbor node (on an embedded epmd),
//! writing the frames an `erl` node writes, byte for byte as it chooses them.

use crate::control::{self, message_frame, Control, Proc, To};
use crate::handshake::{self, flags, Me};
use crate::term::DecodeLimits;
use crate::{Atom, ExtPid, ExtRef, Node, ToTerm};
use arbor_core::Runtime;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const COOKIE: &str = "peer-cookie";

/// An arbor node and a raw peer connected to it.
pub(crate) struct Peer {
    pub(crate) rt: Runtime,
    pub(crate) node: Node,
    stream: TcpStream,
    /// The peer's sending process.
    pub(crate) from: ExtPid,
    refs: u32,
}

impl Peer {
    /// Starts node `alive@127.0.0.1` and connects a peer to it.
    pub(crate) fn start(alive: &str) -> Peer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let name = format!("{alive}@127.0.0.1");
        let node = Node::builder(&name)
            .cookie(COOKIE)
            .epmd_port(port)
            .listen_addr("127.0.0.1".parse().unwrap())
            .embedded_epmd(true)
            .start(rt.handle())
            .unwrap();
        let (addr, _) = crate::epmd::lookup("127.0.0.1", port, alive).unwrap().unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let me = Me {
            name: "peer@127.0.0.1",
            flags: flags::OURS,
            creation: 7,
            cookie: COOKIE,
        };
        handshake::initiate(&mut stream, &me, &name, || true).unwrap();
        let from = ExtPid {
            node: Atom::new("peer@127.0.0.1"),
            id: 91,
            serial: 0,
            creation: 7,
        };
        Peer {
            rt,
            node,
            stream,
            from,
            refs: 0,
        }
    }

    /// The frame of `gen_server:cast(To, msg)` from the peer's process.
    pub(crate) fn cast_frame(&self, to: To<'_>, msg: &impl ToTerm) -> Vec<u8> {
        message_frame(&self.from, to, true, msg).unwrap()
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// A cast of each of `msgs` to the process named `name`, in one write.
    pub(crate) fn cast_all<T: ToTerm>(&mut self, name: &str, msgs: impl IntoIterator<Item = T>) {
        let name = Atom::new(name);
        let bytes: Vec<u8> = msgs
            .into_iter()
            .flat_map(|m| self.cast_frame(To::Name(&name), &m))
            .collect();
        self.write(&bytes);
    }

    /// Monitors the process named `name` (a frame that is no message: the reader's memo
    /// stays as it is), and waits for the node's answer, which comes after the reader
    /// routed every frame written before: returns true if the node answered `noproc`.
    pub(crate) fn monitor_is_noproc(&mut self, name: &str) -> bool {
        self.refs += 1;
        let reference = ExtRef {
            node: self.from.node.clone(),
            creation: 7,
            id: vec![self.refs, 0, 0],
        };
        let monitor = Control::MonitorP {
            from: self.from.clone(),
            to: Proc::Name(Atom::new(name)),
            reference: reference.clone(),
        };
        let frame = control::frame(&monitor, None).unwrap();
        self.write(&frame);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no answer to the monitor");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the node closed the connection"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
            while buf.len() >= 4 {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if buf.len() < 4 + len {
                    break;
                }
                let body: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
                if body.is_empty() {
                    continue;
                }
                if let Ok(Control::MonitorPExit {
                    reference: r, reason, ..
                }) = control::parse(&body, DecodeLimits::default())
                {
                    if r == reference {
                        return reason.is_atom("noproc");
                    }
                }
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.node.stop();
    }
}
