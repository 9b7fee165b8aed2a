//! [`Node`]: the public face of a running node.

use crate::control::{Control, Proc};
use crate::error::{DistError, RemoteCallError};
use crate::node::{Builder, Inner};
use crate::routing::deliver_to;
use crate::term::{Atom, ExtPid, ExtRef, Term};
use crate::{FromTerm, ToTerm};
use arbor_core::{GenServer, Pid, ServerRef};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A BEAM process to talk to: a pid, or a name registered on a node (`{name, node}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Dest {
    /// A process by pid.
    Pid(ExtPid),
    /// A process by its registered name on a node.
    Name {
        /// The registered name.
        name: Atom,
        /// The node.
        node: Atom,
    },
}

impl Dest {
    /// The node the destination lives on.
    pub fn node(&self) -> &Atom {
        match self {
            Dest::Pid(p) => &p.node,
            Dest::Name { node, .. } => node,
        }
    }

    fn proc(&self) -> Proc {
        match self {
            Dest::Pid(p) => Proc::Pid(p.clone()),
            Dest::Name { name, .. } => Proc::Name(name.clone()),
        }
    }
}

impl From<ExtPid> for Dest {
    fn from(p: ExtPid) -> Dest {
        Dest::Pid(p)
    }
}

impl From<&ExtPid> for Dest {
    fn from(p: &ExtPid) -> Dest {
        Dest::Pid(p.clone())
    }
}

impl From<(&str, &str)> for Dest {
    fn from((name, node): (&str, &str)) -> Dest {
        Dest::Name {
            name: Atom::new(name),
            node: Atom::new(node),
        }
    }
}

impl From<(Atom, Atom)> for Dest {
    fn from((name, node): (Atom, Atom)) -> Dest {
        Dest::Name { name, node }
    }
}

/// A monitor on a BEAM process, made by [`Node::monitor`].
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteMonitor {
    reference: ExtRef,
    node: Atom,
    target: Proc,
}

/// A node monitor, made by [`Node::monitor_node`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeMonitor {
    node: Atom,
    id: u64,
}

/// A running arbor node in a BEAM cluster. Cloning shares it; [`Node::stop`] (or dropping
/// the last clone) unregisters it from epmd and closes every connection.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.stop();
        self.0.tables.stop_waiter();
    }
}

static NODE_MONITORS: AtomicU64 = AtomicU64::new(1);

impl Node {
    /// Begins a node named `name` (`"name@host"`: a host with dots is a long name, as with
    /// `erl -name`; without, a short one, as with `-sname`).
    pub fn builder(name: &str) -> Builder {
        Builder::new(name)
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Node {
        Node {
            _owner: Arc::new(Owner(Arc::clone(&inner))),
            inner,
        }
    }

    /// This node's name.
    pub fn name(&self) -> &Atom {
        &self.inner.name
    }

    /// This node's creation (its incarnation, from epmd).
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// The nodes connected now.
    pub fn nodes(&self) -> Vec<Atom> {
        self.inner.connected()
    }

    /// Connects to `node` now (Erlang's `net_kernel:connect_node/1`); connecting also
    /// happens on demand, at the first call, send or monitor.
    ///
    /// # Errors
    ///
    /// A `DistError` if the node cannot be looked up, reached, or refuses the handshake
    /// (a wrong cookie, say).
    pub fn connect(&self, node: &str) -> Result<(), DistError> {
        self.inner.connection(&Atom::new(node)).map(|_| ())
    }

    /// Closes the connection to `node` (Erlang's `disconnect_node/1`): everything that
    /// went over it learns `noconnection`. False if there was none.
    pub fn disconnect(&self, node: &str) -> bool {
        self.inner.disconnect(&Atom::new(node))
    }

    /// Exports `server` under `name`: `GenServer.call({name, node}, req)` reaches its
    /// `handle_call` (the request read with `G::Call: FromTerm`, the reply sent with
    /// `G::Reply: ToTerm`); `GenServer.cast({name, node}, msg)` delivers `msg`, and a
    /// plain `send` the whole message, to `handle_info` (read with `G::Info: FromTerm`).
    /// A later `register` of the same name replaces this one (how a supervised server
    /// re-exports itself on restart); the name is released when the server exits.
    /// Returns the server's Erlang pid, or `None` if it is not alive.
    pub fn register<G>(&self, name: &str, server: &ServerRef<G>) -> Option<ExtPid>
    where
        G: GenServer,
        G::Call: FromTerm,
        G::Reply: ToTerm,
        G::Info: FromTerm,
    {
        let ext = self.pid_of(server)?;
        self.inner.tables.bind_name(Atom::new(name), &ext);
        Some(ext)
    }

    /// Removes the export `name`; true if there was one.
    pub fn unregister(&self, name: &str) -> bool {
        self.inner.tables.unbind_name(&Atom::new(name))
    }

    /// The Erlang pid of the process exported as `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<ExtPid> {
        self.inner.tables.whereis(&Atom::new(name))
    }

    /// The Erlang pid of `server`, through which the BEAM can call it, cast and send to
    /// it, monitor and link it. `None` if it is not alive.
    pub fn pid_of<G>(&self, server: &ServerRef<G>) -> Option<ExtPid>
    where
        G: GenServer,
        G::Call: FromTerm,
        G::Reply: ToTerm,
        G::Info: FromTerm,
    {
        self.inner
            .tables
            .ext_pid(&self.inner, server.pid(), Some(deliver_to(server.clone())))
    }

    /// The Erlang pid of any arbor process: the BEAM can monitor and link it, and
    /// messages to it are dropped (its types are unknown here; use
    /// [`pid_of`](Node::pid_of) for a server that takes messages). `None` if it is not
    /// alive.
    pub fn ext_pid(&self, pid: Pid) -> Option<ExtPid> {
        self.inner.tables.ext_pid(&self.inner, pid, None)
    }

    /// Calls a BEAM process (`GenServer.call`): waits up to `timeout` for the reply.
    /// `NoProc` at once for a missing name or a dead pid, `Exited(reason)` if it dies
    /// first, `NodeDown` if its node cannot be reached or the connection drops, `Timeout`.
    /// Inside an arbor handler the wait holds no worker thread.
    ///
    /// # Errors
    ///
    /// `RemoteCallError`: `NoProc`, `Exited`, `NodeDown`, `Timeout` as said above, `Encode`
    /// if the request cannot be written as a term.
    pub fn call(&self, dest: impl Into<Dest>, req: &impl ToTerm, timeout: Duration) -> Result<Term, RemoteCallError> {
        let dest = dest.into();
        let conn = self
            .inner
            .connection(dest.node())
            .map_err(|e| RemoteCallError::NodeDown(e.to_string()))?;
        let me = self.inner.proxy_pid();
        let reference = self.inner.make_ref();
        let tag = if conn.has(crate::handshake::flags::ALIAS) {
            Term::ImproperList(Box::new((
                vec![Term::atom("alias")],
                Term::Ref(Box::new(reference.clone())),
            )))
        } else {
            Term::Ref(Box::new(reference.clone()))
        };
        let msg = Term::Tuple(vec![
            Term::atom("$gen_call"),
            Term::Tuple(vec![Term::Pid(me.clone()), tag]),
            req.to_term(),
        ]);
        let target = dest.proc();
        let call = match &dest {
            Dest::Pid(p) => Control::Send { to: p.clone(), msg },
            Dest::Name { name, .. } => Control::RegSend {
                from: me.clone(),
                to: name.clone(),
                msg,
            },
        };
        let frame = crate::control::frame(&call, Some(&me)).map_err(|e| RemoteCallError::Encode(e.to_string()))?;
        self.inner.tables.begin_call(reference.clone(), &conn);
        let monitor = Control::MonitorP {
            from: me.clone(),
            to: target.clone(),
            reference: reference.clone(),
        };
        if conn.send_call(&monitor, frame).is_err() {
            self.inner.tables.forget_call(&reference);
            return Err(RemoteCallError::NodeDown("connection closed".into()));
        }
        let result = self.inner.tables.wait_call(&reference, timeout);
        if !matches!(
            result,
            Err(RemoteCallError::NoProc | RemoteCallError::Exited(_) | RemoteCallError::NodeDown(_))
        ) {
            let _ = conn.send(
                &Control::DemonitorP {
                    from: me,
                    to: target,
                    reference,
                },
                None,
            );
        }
        result
    }

    /// [`call`](Node::call), with the reply read as an `R`.
    ///
    /// # Errors
    ///
    /// Those of [`call`](Node::call), and `BadReply` if the reply does not fit an `R`.
    pub fn call_as<R: FromTerm>(
        &self,
        dest: impl Into<Dest>,
        req: &impl ToTerm,
        timeout: Duration,
    ) -> Result<R, RemoteCallError> {
        self.call(dest, req, timeout)
            .and_then(|t| R::from_term(t).map_err(RemoteCallError::BadReply))
    }

    /// Sends `msg` to a BEAM process (Erlang's `!`): asynchronous, no error if the process
    /// does not exist; an error only if its node cannot be reached.
    ///
    /// # Errors
    ///
    /// A `DistError` if the node cannot be reached or the message cannot be encoded.
    pub fn send(&self, dest: impl Into<Dest>, msg: &impl ToTerm) -> Result<(), DistError> {
        self.message(dest.into(), false, msg)
    }

    /// Sends `msg`, or `{'$gen_cast', msg}` if `cast`: the frame is written straight from
    /// `msg`, with no intermediate term.
    fn message(&self, dest: Dest, cast: bool, msg: &impl ToTerm) -> Result<(), DistError> {
        let conn = self.inner.connection(dest.node())?;
        let me = self.inner.proxy_pid();
        let to = match &dest {
            Dest::Pid(pid) => crate::control::To::Pid(pid),
            Dest::Name { name, .. } => crate::control::To::Name(name),
        };
        let frame = crate::control::message_frame(&me, to, cast, msg)?;
        conn.send_frame(frame)
    }

    /// Casts to a BEAM GenServer (`GenServer.cast`: sends `{:"$gen_cast", msg}`).
    ///
    /// # Errors
    ///
    /// A `DistError` if the node cannot be reached or the message cannot be encoded.
    pub fn cast(&self, dest: impl Into<Dest>, msg: &impl ToTerm) -> Result<(), DistError> {
        self.message(dest.into(), true, msg)
    }

    /// Monitors a BEAM process: `on_down` runs once with its exit reason (`noproc` if it
    /// was not alive, `noconnection` if the connection drops), on the connection's reader
    /// thread: keep it short (send a message to an arbor process, for instance).
    ///
    /// # Errors
    ///
    /// A `DistError` if the process's node cannot be reached.
    pub fn monitor(
        &self,
        dest: impl Into<Dest>,
        on_down: impl FnOnce(Term) + Send + 'static,
    ) -> Result<RemoteMonitor, DistError> {
        let dest = dest.into();
        let conn = self.inner.connection(dest.node())?;
        let reference = self.inner.make_ref();
        self.inner.tables.add_watch(reference.clone(), &conn, Box::new(on_down));
        let target = dest.proc();
        let sent = conn.send(
            &Control::MonitorP {
                from: self.inner.proxy_pid(),
                to: target.clone(),
                reference: reference.clone(),
            },
            None,
        );
        if let Err(e) = sent {
            self.inner.tables.remove_watch(&reference);
            return Err(e);
        }
        Ok(RemoteMonitor {
            reference,
            node: conn.peer.clone(),
            target,
        })
    }

    /// Removes a monitor; true if it had not fired. After this returns, its `on_down` never
    /// runs.
    pub fn demonitor(&self, monitor: &RemoteMonitor) -> bool {
        let active = self.inner.tables.remove_watch(&monitor.reference);
        if active {
            if let Some(conn) = self.inner.existing(&monitor.node) {
                let _ = conn.send(
                    &Control::DemonitorP {
                        from: self.inner.proxy_pid(),
                        to: monitor.target.clone(),
                        reference: monitor.reference.clone(),
                    },
                    None,
                );
            }
        }
        active
    }

    /// Links arbor process `local` with BEAM process `remote`, both ways: when `remote`
    /// exits, `local` gets the exit signal (with `noconnection` if the connection drops),
    /// and when `local` exits, `remote` gets it. A trapping `local` sees the signal's
    /// sender as the runtime's external pseudo-pid (arbor's exit signals carry no foreign
    /// pids).
    ///
    /// # Errors
    ///
    /// A `DistError` if `local` is not alive or `remote`'s node cannot be reached.
    pub fn link(&self, local: Pid, remote: &ExtPid) -> Result<(), DistError> {
        let conn = self.inner.connection(&remote.node)?;
        let me = self
            .ext_pid(local)
            .ok_or_else(|| DistError::NodeDown(format!("{local} is not alive")))?;
        self.inner.tables.add_link(local, remote.clone(), &conn);
        conn.send(
            &Control::Link {
                from: me,
                to: remote.clone(),
            },
            None,
        )
    }

    /// Removes a link made by either side; true if there was one.
    pub fn unlink(&self, local: Pid, remote: &ExtPid) -> bool {
        let had = self.inner.tables.remove_link(local, remote);
        if had {
            if let (Some(conn), Some(me)) = (self.inner.existing(&remote.node), self.ext_pid(local)) {
                let id = self.inner.tables.unlink_id();
                let _ = conn.send(
                    &Control::UnlinkId {
                        id,
                        from: me,
                        to: remote.clone(),
                    },
                    None,
                );
            }
        }
        had
    }

    /// Monitors a node (Erlang's `monitor_node/2`): connects if needed, and runs
    /// `on_down` once when the connection is lost (at once if it cannot be made).
    pub fn monitor_node(&self, node: &str, on_down: impl FnOnce(&Atom) + Send + 'static) -> NodeMonitor {
        let peer = Atom::new(node);
        let id = NODE_MONITORS.fetch_add(1, Ordering::Relaxed);
        self.inner.tables.add_node_monitor(peer.clone(), id, Box::new(on_down));
        if self.inner.connection(&peer).is_err() {
            // fire it (it is still registered unless the connection's loss already did)
            self.inner.tables.fire_node_monitor(&peer, id);
        }
        NodeMonitor { node: peer, id }
    }

    /// Removes a node monitor; true if it had not fired.
    pub fn demonitor_node(&self, monitor: &NodeMonitor) -> bool {
        self.inner.tables.remove_node_monitor(&monitor.node, monitor.id)
    }

    /// Stops the node: unregisters from epmd and closes every connection. Other clones see
    /// a stopped node (calls fail with `NodeDown`).
    pub fn stop(&self) {
        self.inner.stop();
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("name", &self.inner.name).finish()
    }
}
