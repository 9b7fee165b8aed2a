//! One connection to a peer node, after the handshake: a writer thread that owns the
//! socket's sending half, and a reader thread that owns its receiving half.
//!
//! - Writer: drains the queue of frames into a buffer, flushes when the queue is empty
//!   (one system call for a burst), and sends a tick (an empty frame) whenever it has
//!   sent nothing for a tick interval (a quarter of the net tick time).
//! - Reader: parses frames out of its buffer; a frame longer than the node's maximum is
//!   refused from its length alone, before any of it is buffered; a malformed frame or
//!   term closes the connection with a log entry. It declares the peer dead when nothing,
//!   not even a tick, has arrived for the net tick time.
//!
//! Closing is idempotent: the first `close` shuts the socket, which ends both threads;
//! the node is told once, by the reader, and then fails everything that went over it.

use crate::control::{self, Control};
use crate::error::DistError;
use crate::term::{Atom, DecodeLimits, ExtPid};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A live connection. Shared by the node's tables and by exit observers that report over it.
pub(crate) struct Conn {
    pub(crate) peer: Atom,
    pub(crate) flags: u64,
    tx: Sender<Option<Vec<u8>>>,
    stream: TcpStream,
    closed: AtomicBool,
}

/// What the reader hands the node.
pub(crate) trait Dispatch: Send + Sync + 'static {
    fn dispatch(&self, conn: &std::sync::Arc<Conn>, control: Control);
    fn down(&self, conn: &std::sync::Arc<Conn>, reason: &str);
}

/// Timing and size limits of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) tick: Duration,
    pub(crate) net_ticktime: Duration,
    pub(crate) max_frame: usize,
    pub(crate) decode: DecodeLimits,
}

impl Conn {
    /// Starts the writer and reader threads on a socket whose handshake is done.
    pub(crate) fn start(
        stream: TcpStream,
        peer: Atom,
        flags: u64,
        limits: Limits,
        dispatch: std::sync::Arc<dyn Dispatch>,
    ) -> std::io::Result<std::sync::Arc<Conn>> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(limits.net_ticktime))?;
        stream.set_read_timeout(Some(limits.tick))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let conn = std::sync::Arc::new(Conn {
            peer,
            flags,
            tx,
            stream: stream.try_clone()?,
            closed: AtomicBool::new(false),
        });
        let w = stream.try_clone()?;
        let wc = std::sync::Arc::clone(&conn);
        std::thread::Builder::new()
            .name(format!("dist-w-{}", conn.peer.as_str()))
            .spawn(move || writer(w, rx, &wc, limits.tick))?;
        let rc = std::sync::Arc::clone(&conn);
        std::thread::Builder::new()
            .name(format!("dist-r-{}", conn.peer.as_str()))
            .stack_size(8 << 20)
            .spawn(move || {
                let reason = reader(stream, &rc, limits, &*dispatch);
                rc.close();
                dispatch.down(&rc, &reason);
            })?;
        Ok(conn)
    }

    /// Queues a control message. Fails only if the message cannot be encoded or the
    /// connection is closed.
    pub(crate) fn send(&self, c: &Control, from: Option<&ExtPid>) -> Result<(), DistError> {
        let frame = control::frame(c, from)?;
        self.send_frame(frame)
    }

    pub(crate) fn send_frame(&self, frame: Vec<u8>) -> Result<(), DistError> {
        if self.is_closed() || self.tx.send(Some(frame)).is_err() {
            return Err(DistError::NodeDown(format!(
                "connection to {} closed",
                self.peer.as_str()
            )));
        }
        Ok(())
    }

    pub(crate) fn has(&self, flag: u64) -> bool {
        self.flags & flag != 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Shuts the socket (both threads end soon after); idempotent.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.stream.shutdown(Shutdown::Both);
            let _ = self.tx.send(None);
        }
    }
}

fn writer(stream: TcpStream, rx: Receiver<Option<Vec<u8>>>, conn: &Conn, tick: Duration) {
    let mut w = BufWriter::with_capacity(64 * 1024, stream);
    loop {
        let result = match rx.recv_timeout(tick) {
            Ok(Some(frame)) => (|| {
                w.write_all(&frame)?;
                while let Ok(Some(frame)) = rx.try_recv() {
                    w.write_all(&frame)?;
                }
                w.flush()
            })(),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => w.write_all(&[0, 0, 0, 0]).and_then(|_| w.flush()),
        };
        if let Err(e) = result {
            if !conn.is_closed() {
                log::warn!("arbor-dist: writing to {} failed: {e}", conn.peer.as_str());
            }
            conn.close();
            return;
        }
    }
}

/// Reads frames until the connection ends; returns why it ended.
fn reader(mut stream: TcpStream, conn: &std::sync::Arc<Conn>, limits: Limits, dispatch: &dyn Dispatch) -> String {
    let mut buf: Vec<u8> = vec![0; 64 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut last_heard = Instant::now();
    loop {
        // Every complete frame in the buffer.
        loop {
            if end - start < 4 {
                break;
            }
            let len = u32::from_be_bytes([buf[start], buf[start + 1], buf[start + 2], buf[start + 3]]) as usize;
            if len > limits.max_frame {
                let why = format!("a frame of {len} bytes (the limit is {})", limits.max_frame);
                log::warn!("arbor-dist: closing the connection to {}: {why}", conn.peer.as_str());
                return why;
            }
            if end - start < 4 + len {
                if buf.len() - start < 4 + len {
                    // Make room: move the partial frame to the front, grow if it needs more.
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                    if buf.len() < 4 + len {
                        buf.resize(4 + len, 0);
                    }
                }
                break;
            }
            let body = &buf[start + 4..start + 4 + len];
            start += 4 + len;
            if len == 0 {
                continue; // a tick
            }
            match control::parse(body, limits.decode) {
                Ok(c) => dispatch.dispatch(conn, c),
                Err(e) => {
                    let why = format!("malformed frame: {e}");
                    log::warn!("arbor-dist: closing the connection to {}: {why}", conn.peer.as_str());
                    return why;
                }
            }
        }
        if start == end {
            start = 0;
            end = 0;
            if buf.len() > 1 << 20 {
                buf.truncate(64 * 1024);
                buf.shrink_to_fit();
            }
        } else if end == buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if conn.is_closed() {
            return "closed".into();
        }
        match stream.read(&mut buf[end..]) {
            Ok(0) => return "connection closed by peer".into(),
            Ok(n) => {
                end += n;
                last_heard = Instant::now();
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if last_heard.elapsed() >= limits.net_ticktime {
                    log::warn!(
                        "arbor-dist: {} sent nothing for {:?}: net tick timeout",
                        conn.peer.as_str(),
                        limits.net_ticktime
                    );
                    return "net_tick_timeout".into();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return format!("read failed: {e}"),
        }
    }
}
