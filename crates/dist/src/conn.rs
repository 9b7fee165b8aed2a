//! One connection to a peer node, after the handshake: a writer thread that owns the
//! socket's sending half, and a reader thread that owns its receiving half.
//!
//! - Sending: frames go through one queue, and only the holder of the socket's write lock
//!   pops them, so they leave in queue order. [`Conn::send`] queues its frame and, if the
//!   lock is free, writes what is queued itself (no thread hop on a call's request); if
//!   the lock is taken, its holder sees the frame queued when it lets go and kicks the
//!   writer thread for it. A frame sent within 10 µs of the previous one is part of a
//!   burst and is left to the writer thread, which writes what queued meanwhile in one
//!   system call. [`Conn::post`] only queues and kicks
//!   the writer thread: for the reader thread and exit observers, which must never block
//!   on a peer that does not read. The writer thread also sends a tick (an empty frame)
//!   whenever nothing was written for a tick interval (a quarter of the net tick time).
//! - Reader: parses frames out of its buffer; a frame longer than the node's maximum is
//!   refused from its length alone, before any of it is buffered; a malformed frame or
//!   term closes the connection with a log entry. It declares the peer dead when nothing,
//!   not even a tick, has arrived for the net tick time. It never waits on a server: an
//!   incoming call is pushed with `ServerRef::call_with` and the reply is posted from its
//!   callback, so one thread reads the connection, frames are routed in the order they
//!   arrived, and a call in flight holds no thread. The calls in flight over one
//!   connection are bounded (`Builder::max_calls_in_flight`): at the bound the reader waits for
//!   replies, so a peer that floods calls meets TCP's back-pressure.
//!
//! Closing is idempotent: the first `close` shuts the socket, which ends both threads;
//! the node is told once, by the reader, and then fails everything that went over it.

use crate::control::{self, Control, Parsed};
use crate::error::DistError;
use crate::routing::{Batch, RouteMemo};
use crate::term::{Atom, DecodeLimits, ExtPid};
use arbor_core::InlineRunner;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Condvar;
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A live connection. Shared by the node's tables and by exit observers that report over it.
pub(crate) struct Conn {
    /// Unique among this program's connections: what went over this one is tagged with
    /// it, so its loss fails exactly that, not what a newer connection to the same peer
    /// carries.
    pub(crate) id: u64,
    pub(crate) peer: Atom,
    pub(crate) flags: u64,
    queue: Sender<Vec<u8>>,
    pending: Receiver<Vec<u8>>,
    out: Mutex<Outbox>,
    /// Set while a write timed out with bytes left: replies then leave the writing to
    /// the writer thread instead of trying it themselves.
    congested: AtomicBool,
    /// A sender left a frame of a burst to the writer thread (see [`Conn::submit`]).
    burst: AtomicBool,
    net_ticktime: Duration,
    kick: Sender<()>,
    stream: TcpStream,
    closed: AtomicBool,
    /// Milliseconds since `epoch` of the last write (for ticks).
    last_write: AtomicU64,
    /// Nanoseconds since `epoch` of the last frame a sender sent (to tell bursts).
    last_send: AtomicU64,
    epoch: Instant,
    /// Incoming calls pushed to arbor servers and not yet answered.
    in_flight: AtomicUsize,
    /// The bound on `in_flight` (`Builder::max_calls_in_flight`).
    max_calls: usize,
    /// The thread that reads now (see [`Role`]), woken when a reply makes room below
    /// the bound.
    reader: Mutex<Option<std::thread::Thread>>,
}

/// A frame sent less than this after the previous one is left to the writer thread (see
/// [`Conn::send_frame`]). Sequential calls are tens of microseconds apart and are
/// written by their senders; a loop of casts is about a microsecond apart and is batched.
const BURST_GAP_NS: u64 = 10_000;

/// A read of at least this many bytes is not short: the reader is behind, and reads on
/// without waiting.
const COALESCE_BELOW: usize = 16 * 1024;

/// A read that returned within this of being asked, with casts only, is part of a flood
/// (see [`Flood`]): the peer's next frame was already there, or came at once.
const FLOOD_BLOCKED: Duration = Duration::from_micros(20);

/// Reads of a flood in a row after which the reader waits before reading again.
const FLOOD_READS: u32 = 4;

/// The longest one write to the socket may block (its `SO_SNDTIMEO`): a write that could
/// not finish in it leaves the rest to the writer thread, which tries again.
const WRITE_SLICE: Duration = Duration::from_millis(2);

/// Frames queued for a peer past which a sending thread (not a reply, not the reader)
/// waits for the queue to drain: back-pressure, so that a loop of casts to a peer that
/// reads slowly does not grow memory without bound.
const MAX_QUEUED: usize = 65_536;

/// The socket's sending half and the bytes not yet written.
struct Outbox {
    stream: TcpStream,
    buf: Vec<u8>,
    /// How much of `buf` is written.
    sent: usize,
}

/// What a drain did.
#[derive(PartialEq)]
enum Drained {
    /// Everything queued is written.
    All,
    /// A write timed out with bytes left (kept in the outbox).
    Congested,
    /// The connection failed and is closed.
    Failed,
}

/// What the reader hands the node.
pub(crate) trait Dispatch: Send + Sync + 'static {
    /// Routes a control message; never blocks (but for [`Conn::call_started`]'s bound).
    /// Messages for `handle_info` may wait in `batch` until the reader flushes it.
    fn dispatch(&self, conn: &std::sync::Arc<Conn>, control: Control, batch: &mut Batch);
    /// Routes a message whose control message the reader remembers (`control`, the
    /// `serial`th one): as `dispatch` would route it, through what `route` keeps of
    /// where that control message went.
    fn message(
        &self,
        conn: &std::sync::Arc<Conn>,
        control: &control::Remembered,
        serial: u64,
        payload: control::Payload,
        route: &mut RouteMemo,
        batch: &mut Batch,
    );
    fn down(&self, conn: &std::sync::Arc<Conn>, reason: &str);
}

/// Timing and size limits of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) tick: Duration,
    pub(crate) net_ticktime: Duration,
    pub(crate) max_frame: usize,
    /// Incoming calls that may wait for their replies at once.
    pub(crate) max_calls: usize,
    pub(crate) decode: DecodeLimits,
    /// How long the reader waits before each read in a flood of casts
    /// (`Builder::receive_coalesce`; zero: it reads as bytes arrive, as the BEAM does).
    pub(crate) coalesce: Duration,
    /// How long the writer thread waits to gather a burst before it writes
    /// (`Builder::send_coalesce`; zero: it writes what it finds at once).
    pub(crate) send_coalesce: Duration,
    /// Whether the reading thread runs the turn of a server a call woke
    /// (`Builder::run_calls_on_reader`).
    pub(crate) inline_calls: bool,
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
        // Every write returns within a slice: a thread that writes for others (a reply on
        // an arbor worker) never waits long on a peer that does not read.
        stream.set_write_timeout(Some(WRITE_SLICE))?;
        stream.set_read_timeout(Some(limits.tick))?;
        let (queue, pending) = crossbeam_channel::unbounded();
        let (kick, kicked) = crossbeam_channel::bounded(1);
        static IDS: AtomicU64 = AtomicU64::new(1);
        let conn = std::sync::Arc::new(Conn {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            peer,
            flags,
            queue,
            pending,
            out: Mutex::new(Outbox {
                stream: stream.try_clone()?,
                buf: Vec::with_capacity(64 * 1024),
                sent: 0,
            }),
            congested: AtomicBool::new(false),
            burst: AtomicBool::new(false),
            net_ticktime: limits.net_ticktime,
            kick,
            stream: stream.try_clone()?,
            closed: AtomicBool::new(false),
            last_write: AtomicU64::new(0),
            last_send: AtomicU64::new(0),
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            max_calls: limits.max_calls,
            reader: Mutex::new(None),
        });
        let wc = std::sync::Arc::clone(&conn);
        std::thread::Builder::new()
            .name(format!("dist-w-{}", conn.peer.as_str()))
            .spawn(move || writer(&wc, kicked, limits.tick, limits.send_coalesce))?;
        let reader = Reader {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            last_heard: Instant::now(),
            holder: None,
            conn: std::sync::Arc::clone(&conn),
            limits,
            dispatch,
            batch: Batch::default(),
            memo: control::Memo::default(),
            route: RouteMemo::default(),
            casts: None,
            frames: 0,
            last_read: 0,
            last_blocked: Duration::MAX,
            flood: Flood::default(),
        };
        Role::start(reader)?;
        Ok(conn)
    }

    /// Sends a control message: queued, and written at once by this thread if no other
    /// is writing. May block while the peer's receive buffer is full: not for the reader
    /// thread or exit observers (they use [`post`](Conn::post)).
    pub(crate) fn send(&self, c: &Control, from: Option<&ExtPid>) -> Result<(), DistError> {
        let frame = control::frame(c, from)?;
        self.send_frame(frame)
    }

    /// Sends a frame from a thread that may wait (a user's send, cast or call): past
    /// [`MAX_QUEUED`] frames queued it waits for the queue to drain (at most the net tick
    /// time), so a flood meets back-pressure.
    pub(crate) fn send_frame(&self, frame: Vec<u8>) -> Result<(), DistError> {
        self.await_room()?;
        self.submit(frame)
    }

    /// Sends a call's monitor and request: queued in that order, then written by this
    /// thread at once (unless the peer is congested), whether or not the call follows
    /// other frames closely: the caller waits for the reply, so a hop through the writer
    /// thread would be latency on every call.
    pub(crate) fn send_call(&self, monitor: &Control, request: Vec<u8>) -> Result<(), DistError> {
        let monitor = control::frame(monitor, None)?;
        self.await_room()?;
        self.enqueue(monitor)?;
        self.enqueue(request)?;
        if self.congested.load(Ordering::Relaxed) {
            let _ = self.kick.try_send(());
        } else {
            self.flush_queue();
        }
        Ok(())
    }

    /// Past [`MAX_QUEUED`] frames queued, waits for the queue to drain (at most the net
    /// tick time).
    fn await_room(&self) -> Result<(), DistError> {
        if self.pending.len() >= MAX_QUEUED {
            let deadline = Instant::now() + self.net_ticktime;
            while self.pending.len() >= MAX_QUEUED && !self.is_closed() {
                if Instant::now() >= deadline {
                    return Err(DistError::NodeDown(format!("{} does not read", self.peer.as_str())));
                }
                let _ = self.kick.try_send(());
                std::thread::park_timeout(Duration::from_micros(500));
            }
        }
        Ok(())
    }

    /// Sends a reply's frame from a `call_with` callback (an arbor worker): as
    /// `send_frame`, but never waits for the queue, and writes only if no write is stuck.
    pub(crate) fn send_reply_frame(&self, frame: Vec<u8>) -> Result<(), DistError> {
        self.submit(frame)
    }

    /// Queues `frame`, then writes the queue on this thread, unless the frame is part of a
    /// burst or the peer is congested: then the writer thread does it.
    fn submit(&self, frame: Vec<u8>) -> Result<(), DistError> {
        self.enqueue(frame)?;
        // A lone frame (a call's request or reply) is written now, by this thread: no hop.
        // A frame that follows the previous one closely is part of a burst (a loop of
        // casts): it is left to the writer thread, which wakes once for what queued
        // meanwhile and writes it in one system call, instead of one per frame.
        let now = self.epoch.elapsed().as_nanos() as u64;
        let last = self.last_send.swap(now, Ordering::Relaxed);
        if self.congested.load(Ordering::Relaxed) {
            let _ = self.kick.try_send(());
            return Ok(());
        }
        if now.saturating_sub(last) < BURST_GAP_NS {
            self.burst.store(true, Ordering::Relaxed);
            let _ = self.kick.try_send(());
            return Ok(());
        }
        self.flush_queue();
        Ok(())
    }

    /// Queues a control message for the writer thread; never blocks.
    pub(crate) fn post(&self, c: &Control, from: Option<&ExtPid>) -> Result<(), DistError> {
        let frame = control::frame(c, from)?;
        self.enqueue(frame)?;
        let _ = self.kick.try_send(());
        Ok(())
    }

    fn enqueue(&self, frame: Vec<u8>) -> Result<(), DistError> {
        if self.is_closed() || self.queue.send(frame).is_err() {
            return Err(DistError::NodeDown(format!(
                "connection to {} closed",
                self.peer.as_str()
            )));
        }
        Ok(())
    }

    /// Writes what is queued if the write lock is free; frames queued meanwhile, and a
    /// write that cannot finish within [`WRITE_SLICE`], are left to the writer thread
    /// (whoever holds the lock checks the queue after unlocking, so no frame is left
    /// behind).
    fn flush_queue(&self) {
        if let Some(mut out) = self.out.try_lock() {
            if self.drain(&mut out, false) != Drained::All {
                drop(out);
                let _ = self.kick.try_send(());
                return;
            }
        }
        self.kick_if_pending();
    }

    /// Frames queued while the write lock was held (by this thread, or by another that
    /// found it taken) are left to the writer thread, which gathers a burst before it
    /// writes; a thread that wrote them at once would write a burst a few frames at a
    /// time, one system call each.
    fn kick_if_pending(&self) {
        if !self.pending.is_empty() {
            let _ = self.kick.try_send(());
        }
    }

    /// Moves every queued frame into the outbox and writes it. Called with the write lock
    /// held; each write blocks at most [`WRITE_SLICE`]. Only the writer thread is
    /// `patient`: any other stops at the first write the socket does not take whole.
    fn drain(&self, out: &mut Outbox, patient: bool) -> Drained {
        // What is queued now, no more: a sender that queues as fast as this loop takes
        // would keep it here frame by frame, the two threads trading the channel's cache
        // lines, with nothing written until the sender stops (arbor's sending cost went
        // from about 0.6 to 1.6-2.6 µs a cast when it happened: docs/performance.md).
        for frame in self.pending.try_iter().take(self.pending.len()) {
            out.buf.extend_from_slice(&frame);
        }
        let mut wrote = false;
        let result = loop {
            if out.sent == out.buf.len() {
                break Drained::All;
            }
            match out.stream.write(&out.buf[out.sent..]) {
                Ok(0) => break self.failed("the socket took no bytes"),
                Ok(n) => {
                    let whole = out.sent + n == out.buf.len();
                    out.sent += n;
                    wrote = true;
                    if !whole && !patient {
                        break Drained::Congested;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break Drained::Congested;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break self.failed(&e.to_string()),
            }
        };
        if wrote {
            self.last_write
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        if result == Drained::All {
            out.buf.clear();
            out.sent = 0;
            if out.buf.capacity() > 1 << 20 {
                out.buf.shrink_to(64 * 1024);
            }
        }
        self.congested.store(result == Drained::Congested, Ordering::Relaxed);
        result
    }

    fn failed(&self, why: &str) -> Drained {
        if !self.is_closed() {
            log::warn!("arbor-dist: writing to {} failed: {why}", self.peer.as_str());
        }
        self.close();
        Drained::Failed
    }

    /// Counts an incoming call about to be pushed to a server. Called by the reader only:
    /// at the bound it waits until a reply makes room (or the connection closes).
    pub(crate) fn call_started(&self) {
        if self.in_flight.load(Ordering::Acquire) >= self.max_calls {
            // A server kept for this thread's turn may hold the calls that would make room.
            InlineRunner::release();
        }
        while self.in_flight.load(Ordering::Acquire) >= self.max_calls && !self.is_closed() {
            std::thread::park_timeout(Duration::from_millis(100));
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// An incoming call is settled: wakes the reader if it waits for room.
    pub(crate) fn call_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == self.max_calls {
            self.unpark_reader();
        }
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
            let _ = self.kick.try_send(());
            self.unpark_reader();
        }
    }

    fn unpark_reader(&self) {
        if let Some(t) = self.reader.lock().as_ref() {
            t.unpark();
        }
    }
}

/// The writer thread: writes what others left it (`post`, bursts, congested writes),
/// and ticks when nothing was written for a tick interval. While the peer does not take
/// bytes it keeps trying, slice by slice; no byte taken for the net tick time closes the
/// connection.
fn writer(conn: &Conn, kicked: Receiver<()>, tick: Duration, gather: Duration) {
    precise_sleeps();
    let mut stuck_since: Option<Instant> = None;
    loop {
        let wait = if stuck_since.is_some() { WRITE_SLICE } else { tick };
        let timed_out = matches!(kicked.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
        if conn.is_closed() {
            return;
        }
        // Woken for a burst (a loop of casts or sends, each within microseconds of the
        // last): a moment's wait lets the rest of it queue, to go out in one write and
        // one wake-up of this thread, instead of one of each per few frames. A call is
        // not delayed by it: its sender writes what is queued, its own frames included
        // (`send_call`).
        if !timed_out && stuck_since.is_none() && !gather.is_zero() && conn.burst.swap(false, Ordering::Relaxed) {
            std::thread::sleep(gather);
        }
        let mut out = conn.out.lock();
        let before = out.sent;
        let mut drained = conn.drain(&mut out, true);
        let idle = (conn.epoch.elapsed().as_millis() as u64).saturating_sub(conn.last_write.load(Ordering::Relaxed));
        if drained == Drained::All && timed_out && idle >= tick.as_millis() as u64 {
            out.buf.extend_from_slice(&[0, 0, 0, 0]);
            drained = conn.drain(&mut out, true);
        }
        match drained {
            Drained::Failed => return,
            Drained::All => stuck_since = None,
            Drained::Congested => {
                let progressed = out.sent > before;
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if progressed {
                    stuck_since = Some(Instant::now());
                } else if since.elapsed() >= conn.net_ticktime {
                    drop(out);
                    log::warn!(
                        "arbor-dist: {} took no bytes for {:?}: closing",
                        conn.peer.as_str(),
                        conn.net_ticktime
                    );
                    conn.close();
                    return;
                }
            }
        }
        drop(out);
        // Frames queued while this thread held the lock: another round of this loop (the
        // kick is for this thread), which gathers them if they are a burst.
        if stuck_since.is_none() {
            conn.kick_if_pending();
        }
    }
}

/// Makes the calling thread's sleeps end when asked (a timer slack of 1 µs instead of
/// Linux's default 50 µs), for the reader's short wait in a flood of casts.
fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument (the slack in nanoseconds) and
    // changes only the calling thread's timer slack; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong);
    }
}

/// The reading of one connection, owned by its reader thread: its socket, its buffer of
/// received bytes, and when it last heard from the peer.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    last_heard: Instant,
    /// The thread that holds this reader, as last written to `Conn::reader` (the
    /// reader moves between threads: see [`Role`]).
    holder: Option<std::thread::ThreadId>,
    conn: std::sync::Arc<Conn>,
    limits: Limits,
    dispatch: std::sync::Arc<dyn Dispatch>,
    /// Messages of the frames parsed so far, pushed before the next `read` (or before any
    /// frame that is not one).
    batch: Batch,
    /// The last message frame's control message (see [`control::Memo`]).
    memo: control::Memo,
    /// Where the memo's control message was routed (see [`RouteMemo`]).
    route: RouteMemo,
    /// Since the last read: `None` if no frame came, `Some(true)` if every frame was a
    /// cast, `Some(false)` if one was not.
    casts: Option<bool>,
    /// Frames parsed since the last read.
    frames: u32,
    /// Bytes the last read brought.
    last_read: usize,
    /// How long the last read waited for its bytes.
    last_blocked: Duration,
    /// Whether the peer floods this connection with casts.
    flood: Flood,
}

/// Tells a flood of casts from other traffic, read by read: a read is part of a flood if
/// it brought casts only, was short (under [`COALESCE_BELOW`]: the reader keeps up), and
/// waited at most [`FLOOD_BLOCKED`] for its bytes (the peer sends faster than the reader
/// reads: each read finds the next frames there, and costs a system call, a TCP
/// acknowledgement and often a wake-up for one or two of them). After [`FLOOD_READS`]
/// such reads in a row the reader waits before each read, until a read that is not part
/// of the flood: one that held anything else, a long one, or one that waited for its
/// bytes (the stream thinned or stopped).
#[derive(Debug, Default)]
struct Flood {
    reads: u32,
}

impl Flood {
    /// Notes what one read brought, and how long it waited for it; true if the reader
    /// should wait before the next.
    fn note(&mut self, casts_only: bool, frames: u32, bytes: usize, blocked: Duration) -> bool {
        let part = casts_only && frames > 0 && bytes < COALESCE_BELOW && blocked <= FLOOD_BLOCKED;
        self.reads = if part { self.reads.saturating_add(1) } else { 0 };
        self.reads >= FLOOD_READS
    }
}

/// Why [`Reader::read`] returned.
enum Outcome {
    /// The connection ended, for this reason.
    Ended(String),
    /// A server that a call woke is kept for this thread's runner: run its turn.
    Turn,
}

/// The right to read a connection, passed between threads as leaders and followers do.
///
/// The thread that reads runs the turn of a server idle when a call came for it (kept by
/// its [`InlineRunner`]): the request is handled and the reply written by the thread that
/// read it, with no hand-over to a worker, as the BEAM's scheduler that polled the socket
/// runs the process. For the turn it leaves the [`Reader`] here. If the turn blocks in
/// arbor (a call made from the handler, perhaps over this very connection) or runs past
/// the pool monitor's stall period, the runner's hook asks for a follower: a thread
/// waiting here (started on first need) takes the reader and reads on. The thread whose
/// turn ends takes the reader back if it is still here; if not, it waits as the follower,
/// or ends if there is one already. So a connection has one reading thread, and one more
/// for each turn blocked at once.
struct Role {
    state: Mutex<RoleState>,
    wake: Condvar,
    /// `Builder::run_calls_on_reader`: off, the reading thread runs no turn and the
    /// reader never changes thread.
    inline: bool,
}

struct RoleState {
    /// The reader, while the thread that read last runs a turn.
    reader: Option<Reader>,
    /// A follower should take the reader: the turn blocked or runs long.
    wanted: bool,
    /// Threads waiting to follow.
    followers: usize,
    /// The connection ended: followers end.
    ended: bool,
}

impl Role {
    /// Starts the first reading thread.
    fn start(reader: Reader) -> std::io::Result<()> {
        let role = std::sync::Arc::new(Role {
            state: Mutex::new(RoleState {
                reader: None,
                wanted: false,
                followers: 0,
                ended: false,
            }),
            wake: Condvar::new(),
            inline: reader.limits.inline_calls,
        });
        let name = reader_name(&reader.conn.peer);
        Role::spawn(role, Some(reader), &name)
    }

    fn spawn(role: std::sync::Arc<Role>, reader: Option<Reader>, name: &str) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(name.to_string())
            .stack_size(8 << 20)
            .spawn(move || role.run(reader))
            .map(drop)
    }

    /// A reading thread: reads while it holds the reader, runs the turns its reads keep
    /// for it, and follows while another thread reads.
    fn run(self: std::sync::Arc<Self>, mut reader: Option<Reader>) {
        precise_sleeps();
        let me = std::sync::Arc::clone(&self);
        let runner = if self.inline {
            InlineRunner::enter(move || me.hand_over())
        } else {
            None
        };
        loop {
            let mut held = match reader.take() {
                Some(r) => r,
                None => match self.follow() {
                    Some(r) => r,
                    None => return,
                },
            };
            // Only when the reader changed thread: not a lock per turn.
            let this_thread = std::thread::current();
            if held.holder != Some(this_thread.id()) {
                held.holder = Some(this_thread.id());
                *held.conn.reader.lock() = Some(this_thread);
            }
            match held.read(runner.as_ref()) {
                Outcome::Ended(reason) => {
                    // What the frames before the end carried is delivered, as if read
                    // one by one.
                    held.batch.flush();
                    held.conn.close();
                    held.dispatch.down(&held.conn, &reason);
                    self.end();
                    return;
                }
                Outcome::Turn => {
                    self.state.lock().reader = Some(held);
                    if let Some(runner) = runner.as_ref() {
                        runner.run_pending();
                    }
                    let mut state = self.state.lock();
                    reader = state.reader.take();
                    if reader.is_some() {
                        state.wanted = false;
                    } else if state.followers > 0 || state.ended {
                        // Another thread reads and one follows already.
                        return;
                    }
                }
            }
        }
    }

    /// Waits until the reader is left for a follower (`Some`) or the connection ends.
    fn follow(&self) -> Option<Reader> {
        let mut state = self.state.lock();
        state.followers += 1;
        let taken = loop {
            if state.ended {
                break None;
            }
            if state.wanted && state.reader.is_some() {
                state.wanted = false;
                break state.reader.take();
            }
            self.wake.wait(&mut state);
        };
        state.followers -= 1;
        taken
    }

    /// The turn run by the thread that read last blocks or runs long: a follower takes
    /// the reader (one is started if none waits).
    fn hand_over(self: &std::sync::Arc<Self>) {
        let name = {
            let mut state = self.state.lock();
            let Some(name) = state.reader.as_ref().map(|r| reader_name(&r.conn.peer)) else {
                return;
            };
            if state.wanted {
                return;
            }
            state.wanted = true;
            if state.followers > 0 {
                self.wake.notify_one();
                return;
            }
            name
        };
        if let Err(e) = Role::spawn(std::sync::Arc::clone(self), None, &name) {
            log::error!("arbor-dist: could not start a thread to read {name} during a long turn: {e}");
        }
    }

    fn end(&self) {
        self.state.lock().ended = true;
        self.wake.notify_all();
    }
}

fn reader_name(peer: &Atom) -> String {
    format!("dist-r-{}", peer.as_str())
}

impl Reader {
    /// Reads and routes frames until the connection ends, or until a call kept a
    /// server's turn for `runner`.
    fn read(&mut self, runner: Option<&InlineRunner>) -> Outcome {
        let limits = self.limits;
        loop {
            // Every complete frame in the buffer.
            loop {
                let (start, end) = (self.start, self.end);
                let Some(head) = self.buf.get(start..end).and_then(|b| b.first_chunk::<4>()) else {
                    break;
                };
                let len = u32::from_be_bytes(*head) as usize;
                if len > limits.max_frame {
                    let why = format!("a frame of {len} bytes (the limit is {})", limits.max_frame);
                    log::warn!(
                        "arbor-dist: closing the connection to {}: {why}",
                        self.conn.peer.as_str()
                    );
                    return Outcome::Ended(why);
                }
                if end - start < 4 + len {
                    if self.buf.len() - start < 4 + len {
                        // Make room: move the partial frame to the front, grow if it needs more.
                        self.buf.copy_within(start..end, 0);
                        self.end -= start;
                        self.start = 0;
                        if self.buf.len() < 4 + len {
                            self.buf.resize(4 + len, 0);
                        }
                    }
                    break;
                }
                self.start += 4 + len;
                if len == 0 {
                    continue; // a tick
                }
                // Every frame but a tick counts towards a flood, whichever way it is read
                // (a malformed one ends the connection below).
                self.frames += 1;
                match control::parse_remembering(&self.buf[start + 4..start + 4 + len], limits.decode, &mut self.memo) {
                    Ok(Parsed::Message {
                        control,
                        serial,
                        payload,
                    }) => {
                        let cast = matches!(payload, control::Payload::Cast(_));
                        self.casts = Some(cast && self.casts != Some(false));
                        self.dispatch
                            .message(&self.conn, control, serial, payload, &mut self.route, &mut self.batch)
                    }
                    Ok(Parsed::Control(c)) => {
                        let cast = matches!(c, Control::Cast { .. } | Control::RegCast { .. });
                        self.casts = Some(cast && self.casts != Some(false));
                        self.dispatch.dispatch(&self.conn, c, &mut self.batch)
                    }
                    Err(e) => {
                        let why = format!("malformed frame: {e}");
                        log::warn!(
                            "arbor-dist: closing the connection to {}: {why}",
                            self.conn.peer.as_str()
                        );
                        return Outcome::Ended(why);
                    }
                }
            }
            // Every complete frame is routed: push their messages before waiting for more.
            self.batch.flush();
            // A call woke an idle server and kept its turn for this thread: run it now,
            // before waiting for more bytes.
            if runner.is_some_and(InlineRunner::has_pending) {
                return Outcome::Turn;
            }
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
                if self.buf.len() > 1 << 20 {
                    self.buf.truncate(64 * 1024);
                    self.buf.shrink_to_fit();
                }
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.conn.is_closed() {
                return Outcome::Ended("closed".into());
            }
            // During a flood of casts (the peer streams them faster than this reader
            // reads them one or two at a time), waiting a moment lets the next read take
            // many at once (one system call, one push into the server's mailbox, one
            // wake-up of the server) instead of a few, as a network card's adaptive
            // interrupt coalescing does. The price is latency for what arrives during the
            // wait, a call included; a read that held anything else (a call, a reply, a
            // signal), a long read and a read that waited for its bytes end the flood.
            let casts_only = self.casts.take() == Some(true);
            let frames = std::mem::take(&mut self.frames);
            if self.flood.note(casts_only, frames, self.last_read, self.last_blocked) && !limits.coalesce.is_zero() {
                std::thread::sleep(limits.coalesce);
            }
            let asked = Instant::now();
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Outcome::Ended("connection closed by peer".into()),
                Ok(n) => {
                    self.end += n;
                    self.last_read = n;
                    self.last_heard = Instant::now();
                    self.last_blocked = self.last_heard.saturating_duration_since(asked);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    self.last_blocked = Duration::MAX;
                    if self.last_heard.elapsed() >= limits.net_ticktime {
                        log::warn!(
                            "arbor-dist: {} sent nothing for {:?}: net tick timeout",
                            self.conn.peer.as_str(),
                            limits.net_ticktime
                        );
                        return Outcome::Ended("net_tick_timeout".into());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Ended(format!("read failed: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod flood_tests {
    use super::{Flood, COALESCE_BELOW, FLOOD_BLOCKED, FLOOD_READS};
    use std::time::Duration;

    const AT_ONCE: Duration = Duration::from_micros(3);

    #[test]
    fn a_flood_of_casts_engages_the_wait_and_anything_else_ends_it() {
        let mut f = Flood::default();
        // Reads of casts that found their bytes there: the wait starts with the
        // FLOOD_READS-th, one or two frames a read being enough.
        for i in 1..=FLOOD_READS + 3 {
            assert_eq!(f.note(true, 1 + i % 2, 120, AT_ONCE), i >= FLOOD_READS, "read {i}");
        }
        // A read that held a call ends it at once.
        assert!(!f.note(false, 2, 200, AT_ONCE));
        for _ in 1..FLOOD_READS {
            assert!(!f.note(true, 2, 120, AT_ONCE));
        }
        assert!(f.note(true, 40, 2_000, FLOOD_BLOCKED));
        // So does a long read (the reader is behind: no wait) ...
        assert!(!f.note(true, 400, COALESCE_BELOW, AT_ONCE));
        // ... and reads that waited for their bytes (casts one at a time, slower than the
        // reader: nothing to gather).
        for _ in 0..10 {
            assert!(!f.note(true, 1, 60, FLOOD_BLOCKED + Duration::from_micros(1)));
        }
        // A read of no frame (a partial frame, a tick) is no flood either.
        for i in 1..=FLOOD_READS {
            assert_eq!(f.note(true, 1, 60, AT_ONCE), i == FLOOD_READS);
        }
        assert!(!f.note(false, 0, 3, AT_ONCE));
        assert!(!f.note(true, 1, 60, AT_ONCE));
    }
}
