//! Links, monitors and exit signals between processes, by pid.

use crate::process::{deliver_exit, Header, HookRef, MonitorRef, Process, SysMsg, Watcher};
use crate::runtime::RtShared;
use crate::{Down, ExitObserver, ExitReason, NoProc, Pid};
use std::sync::Arc;

/// Links `me` and `other` both ways (S34, S37).
///
/// A process that is already exiting (killed while its handler still runs) makes no
/// link: the other side gets its exit signal instead, as if the link had been made just
/// before the exit, and the caller gets `Err(NoProc)`. So no live process is ever left
/// linked to a dead one that will never signal it.
pub(crate) fn link(me: &Arc<dyn Process>, other: Pid) -> Result<(), NoProc> {
    let h = me.header();
    if other == h.pid() {
        return Ok(());
    }
    // This side first: once it is in, this process's own exit tells `other`.
    if !h.add_link(other) {
        signal_as_linked(h, other);
        return Err(NoProc);
    }
    let target = h.rt().table.get(other).filter(|p| p.header().add_link(h.pid()));
    match target {
        Some(p) => {
            if h.is_closed() {
                // This process began its exit meanwhile; its announcement signalled
                // `other` (or will), but may have run before `other` recorded the link.
                p.header().remove_link(h.pid());
                return Err(NoProc);
            }
            Ok(())
        }
        None => {
            h.remove_link(other);
            if h.trap_exits() {
                Arc::clone(me).deliver(SysMsg::Exit {
                    from: other,
                    reason: ExitReason::NoProc,
                });
                Ok(())
            } else {
                Err(NoProc)
            }
        }
    }
}

/// `me` is exiting and asked to link to `other`: `other` gets `me`'s exit signal, as a
/// link made just before the exit would have given it.
pub(crate) fn signal_as_linked(me: &Header, other: Pid) {
    if let (Some(p), Some(reason)) = (me.rt().table.get(other), me.exit_reason()) {
        deliver_exit(&p, me.pid(), reason, false);
    }
}

/// Removes the link between `me` and `other`, if any.
pub(crate) fn unlink(me: &Header, other: Pid) {
    me.remove_link(other);
    if let Some(p) = me.rt().table.get(other) {
        p.header().remove_link(me.pid());
    }
}

/// `me` monitors `target`; a dead target fires at once with `NoProc` (S32). The monitor
/// is recorded on both sides: the target tells `me` when it exits, and `me`'s own exit
/// removes the monitor from the target, so a dead watcher leaves nothing behind.
pub(crate) fn monitor_from(me: &Header, target: Pid) -> MonitorRef {
    let monitor = MonitorRef::fresh();
    let watched = me
        .rt()
        .table
        .get(target)
        .filter(|p| p.header().add_monitor(monitor, Watcher::Process(me.pid())));
    match watched {
        Some(p) => {
            if !me.add_held_monitor(monitor, target) {
                // This process is exiting: the monitor dies with it.
                p.header().remove_monitor(monitor);
            } else if p.header().is_closed() {
                // The target is telling its watchers (it may have looked at this side
                // before the monitor was recorded here): its `Down` comes all the same.
                me.forget_held_monitor(monitor);
            }
        }
        None => {
            if let Some(p) = me.rt().table.get(me.pid()) {
                p.deliver(SysMsg::Down(Down {
                    monitor,
                    pid: target,
                    reason: ExitReason::NoProc,
                }));
            }
        }
    }
    monitor
}

/// `me` removes its monitor `monitor` of `target`; true if it was active.
pub(crate) fn demonitor_from(me: &Header, target: Pid, monitor: MonitorRef) -> bool {
    me.forget_held_monitor(monitor);
    demonitor(me.rt(), target, monitor)
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
    match rt.table.get(target) {
        Some(p) => p.header().remove_monitor(monitor),
        None => false,
    }
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
