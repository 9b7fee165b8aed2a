//! Links, monitors and exit signals between processes, by pid.

use crate::process::{deliver_exit, Header, MonitorRef, Process, SysMsg, Watcher};
use crate::runtime::RtShared;
use crate::{Down, ExitObserver, ExitReason, NoProc, Pid};
use std::sync::Arc;

/// Links `me` and `other` both ways (S34, S37).
pub(crate) fn link(me: &Arc<dyn Process>, other: Pid) -> Result<(), NoProc> {
    let h = me.header();
    if other == h.pid() {
        return Ok(());
    }
    let target = h.rt().table.get(other).filter(|p| p.header().add_link(h.pid()));
    match target {
        Some(_) => {
            h.add_link(other);
            Ok(())
        }
        None => {
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

/// Removes the link between `me` and `other`, if any.
pub(crate) fn unlink(me: &Header, other: Pid) {
    me.remove_link(other);
    if let Some(p) = me.rt().table.get(other) {
        p.header().remove_link(me.pid());
    }
}

/// `watcher` monitors `target`; a dead target fires at once with `NoProc` (S32).
pub(crate) fn monitor_from(me: &Header, target: Pid) -> MonitorRef {
    let monitor = MonitorRef::fresh();
    let added = me
        .rt()
        .table
        .get(target)
        .map(|p| p.header().add_monitor(monitor, Watcher::Process(me.pid())))
        .unwrap_or(false);
    if !added {
        if let Some(p) = me.rt().table.get(me.pid()) {
            p.deliver(SysMsg::Down(Down {
                monitor,
                pid: target,
                reason: ExitReason::NoProc,
            }));
        }
    }
    monitor
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
pub(crate) fn add_hook(rt: &RtShared, target: Pid, hook: Arc<dyn ExitObserver>) -> Result<(), NoProc> {
    match rt.table.get(target) {
        Some(p) if p.header().add_hook(hook) => Ok(()),
        _ => Err(NoProc),
    }
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
