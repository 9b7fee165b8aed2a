//! Links, monitors and exit signals between processes, by pid: the runtime's door to the
//! protocols of `process/bonds.rs`, with the runtime's process table as their [`Peers`].

use crate::process::bonds::{self, Bonds, Peers, Watcher};
use crate::process::{deliver_exit, Header, HookRef, MonitorRef, Process, SysMsg};
use crate::runtime::RtShared;
use crate::{Down, ExitObserver, ExitReason, NoProc, Pid};
use std::sync::Arc;

/// The runtime's processes, for the protocols of `bonds.rs`: found in its table (until
/// finalized), told through their mailboxes and `deliver_exit`.
impl Peers for RtShared {
    type Proc = Arc<dyn Process>;

    #[inline]
    fn find(&self, pid: Pid) -> Option<Arc<dyn Process>> {
        self.table.get(pid)
    }

    #[inline]
    fn bonds(p: &Arc<dyn Process>) -> &Bonds {
        p.header().bonds()
    }

    fn exit_signal(&self, p: &Arc<dyn Process>, from: Pid, reason: ExitReason) {
        deliver_exit(p, from, reason, false);
    }

    fn exit_message(&self, p: &Arc<dyn Process>, from: Pid, reason: ExitReason) {
        Arc::clone(p).deliver(SysMsg::Exit { from, reason });
    }

    fn down(&self, p: Arc<dyn Process>, monitor: MonitorRef, pid: Pid, reason: ExitReason) {
        p.deliver(SysMsg::Down(Down { monitor, pid, reason }));
    }
}

/// Links `me` and `other` both ways (S34, S37): see [`bonds::link`].
///
/// A process that is already exiting (killed while its handler still runs) makes no
/// link: the other side gets its exit signal instead, as if the link had been made just
/// before the exit, and the caller gets `Err(NoProc)`. So no live process is ever left
/// linked to a dead one that will never signal it.
pub(crate) fn link(me: &Arc<dyn Process>, other: Pid) -> Result<(), NoProc> {
    bonds::link(&**me.header().rt(), me, other)
}

/// Links `a` and `b` from outside either: see [`bonds::link_pair`].
pub(crate) fn link_pair(rt: &RtShared, a: Pid, b: Pid) -> Result<(), NoProc> {
    bonds::link_pair(rt, a, b)
}

/// Removes the link between `me` and `other`, if any.
pub(crate) fn unlink(me: &Header, other: Pid) {
    bonds::unlink(&**me.rt(), me.bonds(), other)
}

/// `me` monitors `target`; a dead target fires at once with `NoProc` (S32): see
/// [`bonds::monitor`].
pub(crate) fn monitor_from(me: &Header, target: Pid) -> MonitorRef {
    bonds::monitor(&**me.rt(), me.bonds(), target)
}

/// `me` removes its monitor `monitor` of `target`; true if it was active.
pub(crate) fn demonitor_from(me: &Header, target: Pid, monitor: MonitorRef) -> bool {
    bonds::demonitor(&**me.rt(), me.bonds(), target, monitor)
}

/// An observer watches `target`; `Err(NoProc)` if it is not alive.
pub(crate) fn monitor_observer(
    rt: &RtShared,
    target: Pid,
    observer: Arc<dyn ExitObserver>,
) -> Result<MonitorRef, NoProc> {
    let monitor = MonitorRef::fresh();
    match rt.table.get(target) {
        Some(p) if p.header().add_monitor(monitor, Watcher::Observer(observer)) => Ok(monitor),
        _ => Err(NoProc),
    }
}

/// An exit hook on `target`, run before its links and monitors are told.
pub(crate) fn add_hook(rt: &RtShared, target: Pid, hook: Arc<dyn ExitObserver>) -> Result<HookRef, NoProc> {
    rt.table
        .get(target)
        .and_then(|p| p.header().add_hook(hook))
        .ok_or(NoProc)
}

/// Removes an exit hook from `target`; true if it was there.
pub(crate) fn remove_hook(rt: &RtShared, target: Pid, hook: HookRef) -> bool {
    rt.table.get(target).is_some_and(|p| p.header().remove_hook(hook))
}

/// Removes a monitor from `target`; true if it was active.
pub(crate) fn demonitor(rt: &RtShared, target: Pid, monitor: MonitorRef) -> bool {
    bonds::remove_monitor(rt, target, monitor)
}

/// An exit signal from `from` to `target` (S36).
pub(crate) fn exit(rt: &RtShared, from: Pid, target: Pid, reason: ExitReason) {
    if let Some(p) = rt.table.get(target) {
        deliver_exit(&p, from, reason, false);
    }
}

/// Kills `target` (untrappable).
pub(crate) fn kill(rt: &RtShared, target: Pid) {
    if let Some(p) = rt.table.get(target) {
        deliver_exit(&p, target, ExitReason::Killed, true);
    }
}
