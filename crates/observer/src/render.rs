//! Snapshots as JSON: the shapes the page reads, documented in `docs/observer.md`.
//!
//! Invariant: every timestamp is milliseconds since the Unix epoch (wall clock), every
//! duration milliseconds; pids are their `Display` form (`<0.12.3>`), which the kill
//! endpoint accepts back.

use crate::json::Json;
use crate::progress::StuckHandler;
use crate::snapshot::{RegistryView, RestartEntry, Snapshot, TreeNode};
use arbor_core::{ProcessInfo, RuntimeStats};
use std::time::{Duration, SystemTime};

fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn dur(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub(crate) fn stats(j: &mut Json, runtime: &str, s: &RuntimeStats) {
    j.obj()
        .field_str("name", runtime)
        .field_num("processes", s.processes as u64)
        .field_num("worker_threads", s.worker_threads as u64)
        .field_num("blocked_workers", s.blocked_workers as u64)
        .field_num("idle_workers", s.idle_workers as u64)
        .field_num(
            "busy_workers",
            s.worker_threads.saturating_sub(s.blocked_workers + s.idle_workers) as u64,
        )
        .field_num("run_queue", s.run_queue as u64)
        .field_num("timers", s.timers as u64)
        .field_num("compensation_refused", s.compensation_refused)
        .field_num("lifo_handoffs", s.lifo_handoffs)
        .end_obj();
}

pub(crate) fn process(j: &mut Json, p: &ProcessInfo) {
    j.obj()
        .field_str("pid", &p.pid.to_string())
        .field_str("parent", &p.parent.to_string())
        .key("name")
        .opt_str(p.name.as_deref())
        .field_str("type_name", p.type_name)
        .key("alive")
        .bool(p.alive)
        .key("trap_exits")
        .bool(p.trap_exits)
        .key("links")
        .arr();
    for l in &p.links {
        j.str(&l.to_string());
    }
    j.end_arr()
        .field_num("monitored_by", p.monitored_by as u64)
        .field_num("monitors", p.monitors as u64)
        .field_num("exit_hooks", p.exit_hooks as u64)
        .field_num("held_calls", p.held_calls as u64)
        .field_num("mailbox_len", p.mailbox_len as u64)
        .field_num("messages_handled", p.messages_handled)
        .field_num("memory_estimate", p.memory_estimate as u64)
        .field_num("started_ms", ms(p.started))
        .end_obj();
}

pub(crate) fn processes(j: &mut Json, list: &[ProcessInfo]) {
    j.arr();
    for p in list {
        process(j, p);
    }
    j.end_arr();
}

fn tree(j: &mut Json, n: &TreeNode) {
    j.obj()
        .field_str("id", &n.id)
        .key("pid")
        .opt_str(n.pid.map(|p| p.to_string()).as_deref())
        .field_str("status", n.status)
        .field_str("kind", n.kind)
        .field_str("restart", &n.restart)
        .field_str("shutdown", &n.shutdown)
        .field_num("restarts", n.restarts)
        .key("name")
        .opt_str(n.name.as_deref())
        .key("type_name")
        .opt_str(n.type_name)
        .key("supervisor");
    match &n.supervisor {
        None => {
            j.null();
        }
        Some(s) => {
            j.obj()
                .field_str("kind", s.kind)
                .field_str("strategy", &s.strategy)
                .field_num("intensity_used", s.intensity_used as u64)
                .field_num("max_restarts", s.max_restarts as u64)
                .field_num("window_ms", dur(s.window))
                .key("max_children")
                .opt_num(s.max_children.map(|n| n as u64))
                .key("shutting_down")
                .bool(s.shutting_down)
                .key("error")
                .opt_str(s.error.as_deref())
                .end_obj();
        }
    }
    j.key("children").arr();
    for c in &n.children {
        tree(j, c);
    }
    j.end_arr().end_obj();
}

pub(crate) fn trees(j: &mut Json, list: &[TreeNode]) {
    j.arr();
    for t in list {
        tree(j, t);
    }
    j.end_arr();
}

pub(crate) fn restarts(j: &mut Json, list: &[RestartEntry]) {
    j.arr();
    for r in list {
        j.obj()
            .field_str("supervisor", &r.supervisor.to_string())
            .key("supervisor_name")
            .opt_str(r.supervisor_name.as_deref())
            .field_str("id", &r.exit.id)
            .field_str("pid", &r.exit.pid.to_string())
            .field_str("reason", &r.exit.reason.to_string())
            .key("abnormal")
            .bool(!r.exit.reason.is_clean())
            .field_num("at_ms", ms(r.exit.at))
            .field_str("action", r.exit.action.as_str())
            .end_obj();
    }
    j.end_arr();
}

pub(crate) fn registries(j: &mut Json, list: &[RegistryView]) {
    j.arr();
    for r in list {
        j.obj()
            .field_str("name", &r.name)
            .key("pid")
            .opt_str(r.pid.map(|p| p.to_string()).as_deref())
            .field_num("count", r.count as u64)
            .key("entries")
            .arr();
        for (k, pid, v) in &r.entries {
            j.obj()
                .field_str("key", k)
                .field_str("pid", &pid.to_string())
                .field_str("value", v)
                .end_obj();
        }
        j.end_arr().end_obj();
    }
    j.end_arr();
}

pub(crate) fn stuck(j: &mut Json, list: &[StuckHandler]) {
    j.arr();
    for s in list {
        j.obj()
            .field_str("pid", &s.pid.to_string())
            .key("name")
            .opt_str(s.name.as_deref())
            .field_str("type_name", s.type_name)
            .field_num("mailbox_len", s.mailbox_len as u64)
            .field_num("held_calls", s.held_calls as u64)
            .key("exiting")
            .bool(s.exiting)
            .field_num("messages_handled", s.messages_handled)
            .field_num("quiet_for_ms", dur(s.quiet_for))
            .end_obj();
    }
    j.end_arr();
}

/// Handlers past core's watchdog threshold.
pub(crate) fn watchdog(j: &mut Json, list: &[arbor_core::StuckHandler]) {
    j.arr();
    for s in list {
        j.obj()
            .field_str("pid", &s.pid.to_string())
            .key("name")
            .opt_str(s.name.as_deref())
            .field_str("type_name", s.type_name)
            .field_str("callback", &s.callback)
            .field_num("running_for_ms", dur(s.running_for))
            .key("alive")
            .bool(s.alive)
            .end_obj();
    }
    j.end_arr();
}

/// The whole snapshot, with the settings the page needs.
pub(crate) fn snapshot(s: &Snapshot, kill_enabled: bool, stuck_after: Duration) -> String {
    let mut j = Json::new();
    j.obj().field_num("taken_ms", ms(s.taken)).key("runtime");
    stats(&mut j, &s.runtime, &s.stats);
    j.key("kill_enabled").bool(kill_enabled);
    j.field_num("stuck_after_ms", dur(stuck_after));
    j.key("stuck_source")
        .str("observer: no progress while work waits; core's watchdog: a handler past its threshold");
    j.key("processes");
    processes(&mut j, &s.processes);
    j.field_num("processes_omitted", s.processes_omitted as u64);
    j.key("trees");
    trees(&mut j, &s.trees);
    j.key("restarts");
    restarts(&mut j, &s.restarts);
    j.key("registries");
    registries(&mut j, &s.registries);
    j.key("stuck");
    stuck(&mut j, &s.stuck);
    j.key("watchdog");
    watchdog(&mut j, &s.watchdog);
    j.end_obj();
    j.finish()
}
