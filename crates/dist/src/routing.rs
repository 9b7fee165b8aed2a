//! Routing between the wire and arbor: which arbor process an Erlang pid or registered
//! name stands for, the calls arbor is waiting on, and the monitors and links that cross
//! the connection. Everything here runs on connection reader threads or in exit observers,
//! and never blocks on the network: sends are queued to the connection's writer.
//!
//! Tables and their invariants:
//! - `locals`: each arbor process that the BEAM can address has one Erlang pid
//!   (`{node, id, 0, creation}`; id 0 is the node's proxy); an entry leaves when its
//!   process exits (an exit hook), and with it the names bound to it;
//! - `pending`: an outgoing call, keyed by its reference (which is also its alias and its
//!   monitor), resolved exactly once: by the reply, the monitor's `DOWN`, the loss of the
//!   connection, or the caller's timeout, whichever comes first;
//! - `watched`: BEAM processes monitoring arbor processes, keyed by (peer, reference);
//! - `watching`: arbor code monitoring BEAM processes, keyed by reference;
//! - `links`: (arbor pid, BEAM pid) pairs, both ways.

use crate::conn::Conn;
use crate::control::{self, Control, Payload, Proc, Remembered};
use crate::error::RemoteCallError;
use crate::node::Inner;
use crate::reason::{exit_to_term, term_to_exit};
use crate::term::{Atom, ExtPid, ExtRef, Term};
use crate::{FromTerm, TermError, ToTerm};
use arbor_core::{CallFlow, Context, ExitReason, GenServer, MonitorRef, Pid, ReplyTo, RuntimeHandle, ServerRef};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// What a message for an exported arbor process is: a call (`{'$gen_call', {Pid, Tag},
/// Req}`), or a message for `handle_info` (a cast's request, or anything else as it came).
enum Classified {
    Call { to: ExtPid, tag: Term, req: Term },
    Message(Term),
}

/// Where the reply to an incoming call goes: the caller's alias when it sent one (a late
/// reply to a caller that gave up is then dropped by its node), else its pid.
pub(crate) struct ReplyPath {
    conn: Arc<Conn>,
    to: ExtPid,
    tag: Term,
    me: ExtPid,
}

impl ReplyPath {
    /// Sends the reply (it runs in a `call_with` callback, on the replying server's worker
    /// thread), encoded straight from `reply`: written at once if no write is under way,
    /// a write blocking at most a couple of milliseconds; else left to the connection's
    /// writer thread.
    pub(crate) fn post(&self, reply: &(impl ToTerm + ?Sized)) {
        let alias = match &self.tag {
            Term::ImproperList(b) if b.0.len() == 1 && b.0[0].is_atom("alias") => match &b.1 {
                Term::Ref(r) if self.conn.has(crate::handshake::flags::ALIAS) => Some(&**r),
                _ => None,
            },
            _ => None,
        };
        let to = match alias {
            Some(alias) => control::ReplyTo::Alias(alias),
            None => control::ReplyTo::Pid(&self.to),
        };
        let sent = control::reply_frame(&self.me, to, &self.tag, reply)
            .map_err(crate::DistError::from)
            .and_then(|frame| self.conn.send_reply_frame(frame));
        if let Err(e) = sent {
            log::debug!("arbor-dist: reply to {} not sent: {e}", self.to);
        }
    }

    /// The reference of the caller's monitor on the server (`gen:call`'s tag is
    /// `[alias | Mref]`, or `Mref` itself).
    fn monitor_ref(&self) -> Option<ExtRef> {
        match &self.tag {
            Term::Ref(r) => Some((**r).clone()),
            Term::ImproperList(b) if b.0.len() == 1 && b.0[0].is_atom("alias") => match &b.1 {
                Term::Ref(r) => Some((**r).clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Fails the call at once with `reason`: its monitor fires, as if the server had
    /// exited, so `gen_server:call` exits with `reason` instead of waiting for its timeout.
    /// Runs on the reader thread: only queues.
    fn reject(&self, tables: &Tables, reason: Term) {
        let Some(reference) = self.monitor_ref() else { return };
        if let Some((_, Some((pid, mref)))) = tables
            .watched
            .lock()
            .remove(&(self.conn.peer.clone(), reference.clone()))
        {
            tables.rt.demonitor(pid, mref);
        }
        let _ = self.conn.post(
            &Control::MonitorPExit {
                from: Proc::Pid(self.me.clone()),
                to: self.to.clone(),
                reference,
                reason,
            },
            None,
        );
    }
}

/// Delivers to one arbor process (on the connection's reader thread: never blocks, but
/// for the bound on a connection's calls in flight).
pub(crate) trait Delivery: Send + Sync {
    /// An incoming call, answered through `reply`.
    fn call(&self, node: &Inner, reply: ReplyPath, req: Term);
    /// Messages for `handle_info`, in the order they came, pushed in one go.
    fn messages(&self, msgs: std::vec::Drain<'_, Term>);
}

/// A process's delivery, shared by the tables and the batches of the readers.
pub(crate) type Deliver = Arc<dyn Delivery>;

/// The most messages a batch gathers before it is pushed: bounds how long the first of
/// them waits while the reader decodes the rest.
const BATCH_MAX: usize = 128;

/// Messages for one arbor process from consecutive frames of one connection, not yet
/// pushed: a reader gathers the messages of what one `read` brought, and pushes them to
/// their server with one `ServerRef::send_all` (one lock of its mailbox, at most one
/// wake-up) instead of one send each. Any other frame pushes the batch first, and so does
/// the end of the bytes read, so the order of a connection's frames is kept: per sender,
/// and against its calls, links, monitors and exits.
#[derive(Default)]
pub(crate) struct Batch {
    to: Option<Deliver>,
    msgs: Vec<Term>,
}

impl Batch {
    /// Pushes what is gathered, if anything.
    pub(crate) fn flush(&mut self) {
        if let Some(to) = self.to.take() {
            to.messages(self.msgs.drain(..));
        }
    }

    /// True if the batch gathers for `d` (and may take one more).
    fn gathers_for(&self, d: &Deliver) -> bool {
        self.to.as_ref().is_some_and(|to| Arc::ptr_eq(to, d)) && self.msgs.len() < BATCH_MAX
    }
}

/// Where a reader's remembered control message (`control::Memo`) was routed: the
/// process's Erlang pid and delivery (`None` if no process had that name or pid), for
/// the memo's `serial`th control message, at the tables' `generation`. Held by the
/// reader alone; valid while both stay the same.
#[derive(Default)]
pub(crate) struct RouteMemo {
    serial: u64,
    generation: u64,
    to: Option<(ExtPid, Option<Deliver>)>,
}

struct Local {
    pid: Pid,
    ext: ExtPid,
    deliver: Option<Deliver>,
}

/// FNV-1a: the hasher of the tables looked up for every incoming message (ids and short
/// names). Only local code inserts into them, so a peer cannot aim collisions at them.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

#[derive(Default)]
struct Locals {
    by_id: FnvMap<u32, Local>,
    by_pid: FnvMap<Pid, u32>,
    names: FnvMap<Atom, u32>,
    next: u32,
}

enum CallState {
    Waiting,
    Done(Result<Term, RemoteCallError>),
    Registered(ReplyTo<Result<Term, RemoteCallError>>),
}

struct PendingCall {
    /// The connection it went over.
    conn: u64,
    state: CallState,
}

type DownFn = Box<dyn FnOnce(Term) + Send>;

struct OutMonitor {
    /// The connection it went over.
    conn: u64,
    on_down: DownFn,
}

type NodeDownFn = Box<dyn FnOnce(&Atom) + Send>;

/// The arbor side of a BEAM process's monitor: the watched process and core's monitor.
type Watch = (Pid, MonitorRef);

/// A BEAM process's monitor on an arbor process: the connection it came over, and the
/// watch (`None` while it is being set).
type Watched = (u64, Option<Watch>);

pub(crate) struct Tables {
    node: Weak<Inner>,
    rt: RuntimeHandle,
    locals: RwLock<Locals>,
    /// Bumped by every change of `locals`, under its write lock: a reader's
    /// [`RouteMemo`] made at generation `g` is what a lookup would find while this is `g`.
    generation: AtomicU64,
    pending: Mutex<HashMap<ExtRef, PendingCall>>,
    /// `None` while the monitor is being set: an exit in that window removes the entry.
    watched: Mutex<HashMap<(Atom, ExtRef), Watched>>,
    watching: Mutex<HashMap<ExtRef, OutMonitor>>,
    /// Each link with the connection it went over.
    links: Mutex<HashMap<(Pid, ExtPid), u64>>,
    node_monitors: Mutex<HashMap<Atom, Vec<(u64, NodeDownFn)>>>,
    next_unlink: AtomicU64,
    waiter: OnceLock<ServerRef<Waiter>>,
}

impl Tables {
    pub(crate) fn new(node: Weak<Inner>, rt: RuntimeHandle) -> Tables {
        Tables {
            node,
            rt,
            locals: RwLock::new(Locals {
                next: 1,
                ..Locals::default()
            }),
            generation: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            watched: Mutex::new(HashMap::new()),
            watching: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            node_monitors: Mutex::new(HashMap::new()),
            next_unlink: AtomicU64::new(1),
            waiter: OnceLock::new(),
        }
    }

    pub(crate) fn start_waiter(&self) -> Result<(), crate::DistError> {
        let w = self
            .rt
            .start::<Waiter>(self.node.clone())
            .map_err(|e| crate::DistError::Io(std::io::Error::other(e.to_string())))?;
        let _ = self.waiter.set(w);
        Ok(())
    }

    pub(crate) fn stop_waiter(&self) {
        if let Some(w) = self.waiter.get() {
            let _ = w.stop(ExitReason::Shutdown, Duration::from_secs(5));
        }
    }

    // ---- local processes -------------------------------------------------------------

    /// The tables of local processes, to change: the generation moves on (under the
    /// lock), so every reader's [`RouteMemo`] looks its destination up again.
    fn locals_mut(&self) -> parking_lot::RwLockWriteGuard<'_, Locals> {
        let l = self.locals.write();
        self.generation.fetch_add(1, Ordering::Release);
        l
    }

    /// The Erlang pid of arbor process `pid`, made addressable if it was not (with
    /// `deliver`, if given, replacing any previous one). `None` if `pid` is not alive.
    pub(crate) fn ext_pid(&self, node: &Inner, pid: Pid, deliver: Option<Deliver>) -> Option<ExtPid> {
        if deliver.is_none() {
            // A look-up changes nothing: no write lock, and the readers' routes stay.
            let l = self.locals.read();
            if let Some(e) = l.by_pid.get(&pid).and_then(|id| l.by_id.get(id)) {
                return Some(e.ext.clone());
            }
        }
        {
            let mut l = self.locals_mut();
            if let Some(id) = l.by_pid.get(&pid).copied() {
                let entry = l.by_id.get_mut(&id)?;
                if deliver.is_some() {
                    entry.deliver = deliver;
                }
                return Some(entry.ext.clone());
            }
        }
        let id = {
            let mut l = self.locals_mut();
            let id = l.next;
            l.next = l.next.wrapping_add(1).max(1);
            let ext = ExtPid {
                node: node.name.clone(),
                id,
                serial: 0,
                creation: node.creation,
            };
            l.by_id.insert(id, Local { pid, ext, deliver });
            l.by_pid.insert(pid, id);
            id
        };
        let weak = self.node.clone();
        let hooked = self.rt.on_exit(pid, move |pid: Pid, reason: &ExitReason| {
            if let Some(node) = weak.upgrade() {
                node.tables.local_exited(&node, pid, reason);
            }
        });
        if hooked.is_err() {
            let mut l = self.locals_mut();
            l.by_id.remove(&id);
            l.by_pid.remove(&pid);
            return None;
        }
        self.locals.read().by_id.get(&id).map(|e| e.ext.clone())
    }

    /// Binds `name` to the local process of `ext` (replacing any previous binding).
    pub(crate) fn bind_name(&self, name: Atom, ext: &ExtPid) {
        self.locals_mut().names.insert(name, ext.id);
    }

    pub(crate) fn unbind_name(&self, name: &Atom) -> bool {
        self.locals_mut().names.remove(name).is_some()
    }

    pub(crate) fn whereis(&self, name: &Atom) -> Option<ExtPid> {
        let l = self.locals.read();
        let id = l.names.get(name)?;
        l.by_id.get(id).map(|e| e.ext.clone())
    }

    fn local_of(&self, node: &Inner, pid: &ExtPid) -> Option<Pid> {
        if pid.node != node.name || pid.creation != node.creation {
            return None;
        }
        self.locals.read().by_id.get(&pid.id).map(|e| e.pid)
    }

    fn resolve_proc(&self, node: &Inner, p: &Proc) -> Option<Pid> {
        match p {
            Proc::Pid(pid) => self.local_of(node, pid),
            Proc::Name(n) => {
                let l = self.locals.read();
                l.names.get(n).and_then(|id| l.by_id.get(id)).map(|e| e.pid)
            }
        }
    }

    fn local_exited(&self, node: &Inner, pid: Pid, reason: &ExitReason) {
        let ext = {
            let mut l = self.locals_mut();
            let Some(id) = l.by_pid.remove(&pid) else { return };
            l.names.retain(|_, v| *v != id);
            l.by_id.remove(&id).map(|e| e.ext)
        };
        let Some(ext) = ext else { return };
        // Links: tell every linked BEAM process.
        let linked: Vec<ExtPid> = {
            let mut links = self.links.lock();
            let mine: Vec<ExtPid> = links
                .keys()
                .filter(|(p, _)| *p == pid)
                .map(|(_, r)| r.clone())
                .collect();
            for r in &mine {
                links.remove(&(pid, r.clone()));
            }
            mine
        };
        for remote in linked {
            if let Some(conn) = node.existing(&remote.node) {
                let _ = conn.post(
                    &Control::Exit {
                        from: ext.clone(),
                        to: remote,
                        reason: exit_to_term(reason),
                    },
                    None,
                );
            }
        }
    }

    // ---- the wire --------------------------------------------------------------------

    /// Routes one control message that came over `conn`. A message for `handle_info` joins
    /// `batch` (see [`Batch`]); anything else pushes the batch first.
    pub(crate) fn dispatch(&self, node: &Inner, conn: &Arc<Conn>, control: Control, batch: &mut Batch) {
        match control {
            Control::RegCast { from, to, req } => self.reg_send(node, conn, from, to, Classified::Message(req), batch),
            Control::RegSend { from, to, msg } => self.reg_send(node, conn, from, to, classify(msg), batch),
            Control::Cast { to, req } => self.send(node, conn, to, Classified::Message(req), batch),
            Control::Send { to, msg } => {
                if to.id == 0 && to.node == node.name {
                    batch.flush();
                    self.call_reply(msg);
                    return;
                }
                self.send(node, conn, to, classify(msg), batch)
            }
            other => {
                batch.flush();
                self.dispatch_signal(node, conn, other);
            }
        }
    }

    /// Routes a message whose control message is the reader's memo's (`control`, the
    /// `serial`th one remembered), as [`dispatch`](Tables::dispatch) routes it: through
    /// `route`, which keeps where that control message went, while neither the memo nor
    /// the tables changed (one atomic load), instead of a lookup under the tables' lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn message(
        &self,
        node: &Inner,
        conn: &Arc<Conn>,
        control: &Remembered,
        serial: u64,
        payload: Payload,
        route: &mut RouteMemo,
        batch: &mut Batch,
    ) {
        if route.serial != serial || route.generation != self.generation.load(Ordering::Acquire) {
            let l = self.locals.read();
            // Under the lock, which every change of the tables holds to bump it: the
            // generation of what this lookup sees.
            route.generation = self.generation.load(Ordering::Relaxed);
            route.serial = serial;
            let entry = match control {
                Remembered::RegSend { to, .. } => l.names.get(to).and_then(|id| l.by_id.get(id)),
                Remembered::Send { to } if to.node == node.name && to.creation == node.creation => l.by_id.get(&to.id),
                Remembered::Send { .. } => None,
            };
            route.to = entry.map(|e| (e.ext.clone(), e.deliver.clone()));
        }
        let msg = match payload {
            Payload::Cast(req) => Classified::Message(req),
            Payload::Msg(m) => {
                if let Remembered::Send { to } = control {
                    if to.id == 0 && to.node == node.name {
                        batch.flush();
                        self.call_reply(m);
                        return;
                    }
                }
                classify(m)
            }
        };
        let Some((me, Some(deliver))) = &route.to else {
            match (control, &route.to) {
                (Remembered::RegSend { from, to }, None) => {
                    log::debug!("arbor-dist: no process named {to}; dropped a message from {from}")
                }
                (Remembered::RegSend { from, .. }, Some((me, _))) => {
                    log::debug!("arbor-dist: {me} takes no messages; dropped one from {from}")
                }
                (Remembered::Send { to }, _) => log::debug!("arbor-dist: message to {to}, which takes none, dropped"),
            }
            return;
        };
        match msg {
            Classified::Call { to, tag, req } => {
                batch.flush();
                let reply = ReplyPath {
                    conn: Arc::clone(conn),
                    to,
                    tag,
                    me: me.clone(),
                };
                deliver.call(node, reply, req);
            }
            Classified::Message(m) => {
                if !batch.gathers_for(deliver) {
                    batch.flush();
                    batch.to = Some(Arc::clone(deliver));
                }
                batch.msgs.push(m);
            }
        }
    }

    /// A message to a registered name.
    fn reg_send(&self, node: &Inner, conn: &Arc<Conn>, from: ExtPid, to: Atom, msg: Classified, batch: &mut Batch) {
        let routed = {
            let l = self.locals.read();
            l.names
                .get(&to)
                .and_then(|id| l.by_id.get(id))
                .map(|e| route(e, msg, batch))
        };
        match routed {
            Some(Routed::NoMessages(ext)) => {
                log::debug!("arbor-dist: {ext} takes no messages; dropped one from {from}")
            }
            Some(routed) => deliver(node, conn, routed, batch),
            None => log::debug!("arbor-dist: no process named {to}; dropped a message from {from}"),
        }
    }

    /// A message to a pid.
    fn send(&self, node: &Inner, conn: &Arc<Conn>, to: ExtPid, msg: Classified, batch: &mut Batch) {
        let routed = if to.node == node.name && to.creation == node.creation {
            self.locals.read().by_id.get(&to.id).map(|e| route(e, msg, batch))
        } else {
            None
        };
        match routed {
            Some(Routed::NoMessages(_)) | None => {
                log::debug!("arbor-dist: message to {to}, which takes none, dropped")
            }
            Some(routed) => deliver(node, conn, routed, batch),
        }
    }

    /// Routes a control message that is not a message: links, monitors, exits, the
    /// replies to arbor's calls.
    fn dispatch_signal(&self, node: &Inner, conn: &Arc<Conn>, control: Control) {
        match control {
            // (`dispatch` routes these itself; here they would go alone, in order all the same)
            c @ (Control::RegSend { .. } | Control::Send { .. } | Control::RegCast { .. } | Control::Cast { .. }) => {
                let mut alone = Batch::default();
                self.dispatch(node, conn, c, &mut alone);
                alone.flush();
            }
            Control::AliasSend { alias, msg } => {
                if let Term::Tuple(mut t) = msg {
                    if t.len() == 2 {
                        let reply = t.pop().unwrap_or(Term::List(Vec::new()));
                        self.resolve(&alias, Ok(reply));
                    }
                }
            }
            Control::MonitorP { from, to, reference } => self.monitor_incoming(node, conn, from, to, reference),
            Control::DemonitorP { reference, .. } => {
                if let Some((_, Some((pid, mref)))) = self.watched.lock().remove(&(conn.peer.clone(), reference)) {
                    self.rt.demonitor(pid, mref);
                }
            }
            Control::MonitorPExit { reference, reason, .. } => {
                if self.pending.lock().contains_key(&reference) {
                    let err = if reason.is_atom("noproc") {
                        RemoteCallError::NoProc
                    } else if reason.is_atom("noconnection") {
                        RemoteCallError::NodeDown("noconnection".into())
                    } else {
                        RemoteCallError::Exited(reason)
                    };
                    self.resolve(&reference, Err(err));
                } else if let Some(m) = self.watching.lock().remove(&reference) {
                    guarded("a monitor's on_down", move || (m.on_down)(reason));
                }
            }
            Control::Link { from, to } => match self.local_of(node, &to) {
                Some(pid) if self.rt.is_alive(pid) => {
                    self.links.lock().insert((pid, from), conn.id);
                }
                _ => {
                    let _ = conn.post(
                        &Control::Exit {
                            from: to,
                            to: from,
                            reason: Term::atom("noproc"),
                        },
                        None,
                    );
                }
            },
            Control::UnlinkId { id, from, to } => {
                if let Some(pid) = self.local_of(node, &to) {
                    self.links.lock().remove(&(pid, from.clone()));
                }
                let _ = conn.post(&Control::UnlinkIdAck { id, from: to, to: from }, None);
            }
            Control::Unlink { from, to } => {
                if let Some(pid) = self.local_of(node, &to) {
                    self.links.lock().remove(&(pid, from));
                }
            }
            Control::UnlinkIdAck { .. } | Control::GroupLeader => {}
            Control::Exit { from, to, reason } => {
                if let Some(pid) = self.local_of(node, &to) {
                    if self.links.lock().remove(&(pid, from)).is_some() {
                        arbor_core::exit(pid, term_to_exit(&reason));
                    }
                }
            }
            Control::Exit2 { to, reason, .. } => {
                if let Some(pid) = self.local_of(node, &to) {
                    if reason.is_atom("kill") {
                        arbor_core::kill(pid);
                    } else {
                        arbor_core::exit(pid, term_to_exit(&reason));
                    }
                }
            }
        }
    }

    fn monitor_incoming(&self, node: &Inner, conn: &Arc<Conn>, from: ExtPid, to: Proc, reference: ExtRef) {
        let noproc = |to: Proc, from: ExtPid, reference: ExtRef| {
            let _ = conn.post(
                &Control::MonitorPExit {
                    from: to,
                    to: from,
                    reference,
                    reason: Term::atom("noproc"),
                },
                None,
            );
        };
        let Some(pid) = self.resolve_proc(node, &to) else {
            return noproc(to, from, reference);
        };
        let key = (conn.peer.clone(), reference.clone());
        // Entered before the monitor is set, so an exit that fires it at once finds (and
        // removes) the entry instead of leaving one behind.
        self.watched.lock().insert(key.clone(), (conn.id, None));
        let weak_node = self.node.clone();
        let weak_conn = Arc::downgrade(conn);
        let (to2, from2, key2) = (to.clone(), from.clone(), key.clone());
        let watched = self.rt.monitor(pid, move |_pid: Pid, reason: &ExitReason| {
            let Some(node) = weak_node.upgrade() else { return };
            node.tables.watched.lock().remove(&key2);
            let ref2 = key2.1.clone();
            if let Some(conn) = weak_conn.upgrade() {
                let _ = conn.post(
                    &Control::MonitorPExit {
                        from: to2.clone(),
                        to: from2.clone(),
                        reference: ref2.clone(),
                        reason: exit_to_term(reason),
                    },
                    None,
                );
            }
        });
        match watched {
            Ok(mref) => {
                if let Some(entry) = self.watched.lock().get_mut(&key) {
                    entry.1 = Some((pid, mref));
                }
            }
            Err(_) => {
                self.watched.lock().remove(&key);
                noproc(to, from, reference)
            }
        }
    }

    // ---- outgoing calls --------------------------------------------------------------

    fn call_reply(&self, msg: Term) {
        let Term::Tuple(mut t) = msg else { return };
        if t.len() != 2 {
            return;
        }
        let reply = t.pop().unwrap_or(Term::List(Vec::new()));
        let reference = match &t[0] {
            Term::Ref(r) => (**r).clone(),
            Term::ImproperList(b) if b.0.len() == 1 && b.0[0].is_atom("alias") => match &b.1 {
                Term::Ref(r) => (**r).clone(),
                _ => return,
            },
            _ => return,
        };
        self.resolve(&reference, Ok(reply));
    }

    fn resolve(&self, reference: &ExtRef, result: Result<Term, RemoteCallError>) {
        let mut pending = self.pending.lock();
        let Some(entry) = pending.get_mut(reference) else {
            return;
        };
        match std::mem::replace(&mut entry.state, CallState::Waiting) {
            CallState::Waiting => entry.state = CallState::Done(result),
            CallState::Done(first) => entry.state = CallState::Done(first),
            CallState::Registered(reply_to) => {
                pending.remove(reference);
                drop(pending);
                reply_to.reply(result);
            }
        }
    }

    pub(crate) fn begin_call(&self, reference: ExtRef, conn: &Conn) {
        self.pending.lock().insert(
            reference,
            PendingCall {
                conn: conn.id,
                state: CallState::Waiting,
            },
        );
    }

    /// Waits for the call's result (through the waiter, so a wait inside an arbor handler
    /// does not hold a worker thread).
    pub(crate) fn wait_call(&self, reference: &ExtRef, timeout: Duration) -> Result<Term, RemoteCallError> {
        let Some(waiter) = self.waiter.get() else {
            return Err(RemoteCallError::NodeDown("node stopped".into()));
        };
        let r = waiter.call_timeout(reference.clone(), timeout);
        match r {
            Ok(result) => result,
            Err(e) => {
                self.pending.lock().remove(reference);
                match e {
                    arbor_core::CallError::Timeout => Err(RemoteCallError::Timeout),
                    other => Err(RemoteCallError::NodeDown(format!("node stopped: {other}"))),
                }
            }
        }
    }

    pub(crate) fn forget_call(&self, reference: &ExtRef) {
        self.pending.lock().remove(reference);
    }

    // ---- outgoing monitors and links -------------------------------------------------

    pub(crate) fn add_watch(&self, reference: ExtRef, conn: &Conn, on_down: DownFn) {
        self.watching
            .lock()
            .insert(reference, OutMonitor { conn: conn.id, on_down });
    }

    pub(crate) fn remove_watch(&self, reference: &ExtRef) -> bool {
        self.watching.lock().remove(reference).is_some()
    }

    pub(crate) fn add_link(&self, pid: Pid, remote: ExtPid, conn: &Conn) {
        self.links.lock().insert((pid, remote), conn.id);
    }

    pub(crate) fn remove_link(&self, pid: Pid, remote: &ExtPid) -> bool {
        self.links.lock().remove(&(pid, remote.clone())).is_some()
    }

    pub(crate) fn unlink_id(&self) -> u64 {
        self.next_unlink.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn add_node_monitor(&self, peer: Atom, id: u64, f: NodeDownFn) {
        self.node_monitors.lock().entry(peer).or_default().push((id, f));
    }

    pub(crate) fn remove_node_monitor(&self, peer: &Atom, id: u64) -> bool {
        let mut m = self.node_monitors.lock();
        let Some(list) = m.get_mut(peer) else { return false };
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        before != list.len()
    }

    pub(crate) fn fire_node_monitor(&self, peer: &Atom, id: u64) {
        let f = {
            let mut m = self.node_monitors.lock();
            let Some(list) = m.get_mut(peer) else { return };
            let Some(i) = list.iter().position(|(x, _)| *x == id) else {
                return;
            };
            list.remove(i).1
        };
        guarded("a node monitor's on_down", move || f(peer));
    }

    /// Everything that went over `conn` learns that it is gone.
    pub(crate) fn connection_lost(&self, _node: &Inner, conn: &Arc<Conn>) {
        let (peer, id) = (&conn.peer, conn.id);
        let failed: Vec<ExtRef> = self
            .pending
            .lock()
            .iter()
            .filter(|(_, c)| c.conn == id)
            .map(|(r, _)| r.clone())
            .collect();
        for r in failed {
            self.resolve(&r, Err(RemoteCallError::NodeDown("noconnection".into())));
        }
        let unwatched: Vec<(Pid, MonitorRef)> = {
            let mut w = self.watched.lock();
            let keys: Vec<(Atom, ExtRef)> = w
                .iter()
                .filter(|(_, (c, _))| *c == id)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| w.remove(&k).and_then(|(_, watch)| watch))
                .collect()
        };
        for (pid, mref) in unwatched {
            self.rt.demonitor(pid, mref);
        }
        let downs: Vec<OutMonitor> = {
            let mut w = self.watching.lock();
            let keys: Vec<ExtRef> = w.iter().filter(|(_, m)| m.conn == id).map(|(k, _)| k.clone()).collect();
            keys.into_iter().filter_map(|k| w.remove(&k)).collect()
        };
        for m in downs {
            guarded("a monitor's on_down", move || (m.on_down)(Term::atom("noconnection")));
        }
        let broken: Vec<Pid> = {
            let mut links = self.links.lock();
            let gone: Vec<(Pid, ExtPid)> = links
                .iter()
                .filter(|(_, c)| **c == id)
                .map(|(k, _)| k.clone())
                .collect();
            for l in &gone {
                links.remove(l);
            }
            gone.into_iter().map(|(p, _)| p).collect()
        };
        for pid in broken {
            arbor_core::exit(pid, ExitReason::custom("noconnection"));
        }
        let monitors = self.node_monitors.lock().remove(peer).unwrap_or_default();
        for (_, f) in monitors {
            guarded("a node monitor's on_down", move || f(peer));
        }
    }
}

/// Runs user code on a reader thread: a panic in it is logged, and the connection goes on.
fn guarded(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("arbor-dist: {what} panicked; the connection goes on");
    }
}

/// A message with what the tables found for it: its process's delivery (and, for a call,
/// the process's pid), cloned only where the batch does not hold them already.
enum Routed {
    Call {
        me: ExtPid,
        deliver: Deliver,
        to: ExtPid,
        tag: Term,
        req: Term,
    },
    /// For `handle_info`, to a process the batch gathers for already.
    Join(Term),
    /// For `handle_info`, to another process: a new batch.
    Start(Deliver, Term),
    /// The process takes no messages: dropped.
    NoMessages(ExtPid),
}

/// Reads what `msg` needs from its process's entry (under the tables' lock: clones, no
/// user code).
fn route(e: &Local, msg: Classified, batch: &Batch) -> Routed {
    let Some(deliver) = &e.deliver else {
        return Routed::NoMessages(e.ext.clone());
    };
    match msg {
        Classified::Call { to, tag, req } => Routed::Call {
            me: e.ext.clone(),
            deliver: Arc::clone(deliver),
            to,
            tag,
            req,
        },
        Classified::Message(m) if batch.gathers_for(deliver) => Routed::Join(m),
        Classified::Message(m) => Routed::Start(Arc::clone(deliver), m),
    }
}

/// Hands a routed message to its process: a call at once (after the batch), a message
/// for `handle_info` to the batch.
fn deliver(node: &Inner, conn: &Arc<Conn>, routed: Routed, batch: &mut Batch) {
    match routed {
        Routed::Call {
            me,
            deliver,
            to,
            tag,
            req,
        } => {
            batch.flush();
            let reply = ReplyPath {
                conn: Arc::clone(conn),
                to,
                tag,
                me,
            };
            deliver.call(node, reply, req);
        }
        Routed::Join(m) => batch.msgs.push(m),
        Routed::Start(deliver, m) => {
            batch.flush();
            batch.to = Some(deliver);
            batch.msgs.push(m);
        }
        Routed::NoMessages(_) => {}
    }
}

/// Splits a message for an exported process into a call, or a message for `handle_info`
/// (a cast's request, or the message as it came).
fn classify(msg: Term) -> Classified {
    match msg {
        Term::Tuple(mut t) if t.len() == 3 && t[0].is_atom("$gen_call") => {
            let req = t.pop().unwrap_or(Term::List(Vec::new()));
            match t.pop() {
                Some(Term::Tuple(mut from)) if from.len() == 2 => {
                    let tag = from.pop().unwrap_or(Term::List(Vec::new()));
                    match from.pop() {
                        Some(Term::Pid(to)) => Classified::Call { to, tag, req },
                        other => Classified::Message(Term::Tuple(vec![
                            Term::atom("$gen_call"),
                            Term::Tuple(vec![other.unwrap_or(Term::List(Vec::new())), tag]),
                            req,
                        ])),
                    }
                }
                other => Classified::Message(Term::Tuple(vec![
                    Term::atom("$gen_call"),
                    other.unwrap_or(Term::List(Vec::new())),
                    req,
                ])),
            }
        }
        Term::Tuple(mut t) if t.len() == 2 && t[0].is_atom("$gen_cast") => {
            Classified::Message(t.pop().unwrap_or(Term::List(Vec::new())))
        }
        other => Classified::Message(other),
    }
}

/// Builds the delivery of a `G`: a call is pushed with `call_with`, whose callback posts
/// the reply (the reader goes on at once, so the frames of one connection reach their
/// servers in the order they arrived); casts and plain messages go to `handle_info`, a
/// batch of them with one `send_all`. A request that does not fit `G::Call` fails its
/// call at once (`{bad_request, Text}`); a message that does not fit `G::Info` is logged
/// and dropped.
pub(crate) fn deliver_to<G>(server: ServerRef<G>) -> Deliver
where
    G: GenServer,
    G::Call: FromTerm,
    G::Reply: ToTerm,
    G::Info: FromTerm,
{
    Arc::new(DeliverTo(server))
}

struct DeliverTo<G: GenServer>(ServerRef<G>);

impl<G> Delivery for DeliverTo<G>
where
    G: GenServer,
    G::Call: FromTerm,
    G::Reply: ToTerm,
    G::Info: FromTerm,
{
    fn call(&self, node: &Inner, reply: ReplyPath, req: Term) {
        let server = &self.0;
        match read_term::<G::Call>(req) {
            Ok(req) => {
                let conn = Arc::clone(&reply.conn);
                conn.call_started();
                // No timeout of ours: the BEAM caller has its own. An error needs no
                // answer: the caller's monitor on the server reports its exit, and a
                // dropped reply handle leaves it to its timeout, as on the BEAM.
                // On a reading thread, an idle server's turn is kept for that thread to run
                // (see `conn::Role`).
                arbor_core::InlineRunner::keep(|| {
                    server.call_with(req, Duration::MAX, move |r| {
                        if let Ok(r) = r {
                            reply.post(&r);
                        }
                        conn.call_ended();
                    })
                });
            }
            Err(e) => {
                log::warn!("arbor-dist: call to {} refused: {e}", server.pid());
                let why = Term::tuple([Term::atom("bad_request"), Term::binary(e.to_string())]);
                reply.reject(&node.tables, why);
            }
        }
    }

    fn messages(&self, msgs: std::vec::Drain<'_, Term>) {
        let server = &self.0;
        // A server that has exited drops them, as `send` to a dead pid does.
        let _ = server.send_all(msgs.filter_map(|m| match read_term::<G::Info>(m) {
            Ok(info) => Some(info),
            Err(e) => {
                log::warn!("arbor-dist: message to {} dropped: {e}", server.pid());
                None
            }
        }));
    }
}

/// Reads a term as the user's type on the connection's reader. `FromTerm` is user code:
/// a panic in it is that term's error (logged where the error is), never the end of the
/// reader and so of the connection.
fn read_term<T: FromTerm>(term: Term) -> Result<T, TermError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| T::from_term(term))).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        Err(TermError {
            expected: format!("a term that {} reads", std::any::type_name::<T>()),
            got: format!("a term whose FromTerm panicked: {msg}"),
        })
    })
}

/// The arbor process through which outgoing calls wait: its `handle_call` parks the
/// caller's reply handle until the BEAM's reply resolves it (core's calls compensate a
/// blocked worker, so a remote call made inside a handler holds no worker thread).
pub(crate) struct Waiter {
    node: Weak<Inner>,
}

impl GenServer for Waiter {
    type Args = Weak<Inner>;
    type Info = ();
    type Call = ExtRef;
    type Reply = Result<Term, RemoteCallError>;

    fn init(node: Weak<Inner>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Waiter { node })
    }

    fn handle_call(
        &mut self,
        reference: ExtRef,
        from: ReplyTo<Self::Reply>,
        _ctx: &mut Context<'_, Self>,
    ) -> CallFlow<Self::Reply> {
        let Some(node) = self.node.upgrade() else {
            return CallFlow::Reply(Err(RemoteCallError::NodeDown("node stopped".into())));
        };
        let mut pending = node.tables.pending.lock();
        let Some(entry) = pending.get_mut(&reference) else {
            return CallFlow::Reply(Err(RemoteCallError::NodeDown("call forgotten".into())));
        };
        match std::mem::replace(&mut entry.state, CallState::Waiting) {
            CallState::Done(result) => {
                pending.remove(&reference);
                CallFlow::Reply(result)
            }
            CallState::Waiting => {
                entry.state = CallState::Registered(from);
                CallFlow::NoReply
            }
            CallState::Registered(first) => {
                entry.state = CallState::Registered(first);
                CallFlow::Reply(Err(RemoteCallError::NodeDown("call waited on twice".into())))
            }
        }
    }
}
