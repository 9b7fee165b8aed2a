//! The data layer: a [`Snapshot`] of a running system, gathered from core's introspection
//! (`RuntimeHandle::stats`, `process_info`), the supervisors' reports and the registries'
//! entries. Plain structs, no HTTP: tested on their own.
//!
//! Invariants:
//! - Gathering never runs on one of the runtime's worker threads and never holds a lock of
//!   the runtime while it waits: each process is read under its own locks, one after
//!   another, and each supervisor is asked with a call that times out
//!   ([`Limits::call_timeout`]). A supervisor that does not answer in time shows as such;
//!   it delays one snapshot by at most that timeout, never the runtime.
//! - Sizes are bounded: at most [`Limits::max_processes`] processes (the busiest by
//!   mailbox, then by messages handled, are kept), [`Limits::max_registry_entries`] entries
//!   per registry, and each supervisor's own bounded history.
//! - The figures of one process agree with each other only as core promises (each under
//!   its own lock); the levels of a tree are asked one supervisor at a time.

use crate::progress::{Progress, StuckHandler};
use arbor_core::{CallError, Pid, ProcessInfo, RuntimeHandle, RuntimeStats};
use arbor_supervisor::{supervisor_report, ChildExit, ChildStatus, SupervisorReport};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Bounds on what one snapshot gathers.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long each supervisor is given to answer (default 1 s).
    pub call_timeout: Duration,
    /// Most processes listed (default 5,000).
    pub max_processes: usize,
    /// Most entries listed per registry (default 1,000).
    pub max_registry_entries: usize,
    /// Most restart history entries, over all supervisors (default 200).
    pub max_restarts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(1),
            max_processes: 5_000,
            max_registry_entries: 1_000,
            max_restarts: 200,
        }
    }
}

/// One registry's entries, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryView {
    /// The name the registry was added to the observer under.
    pub name: String,
    /// Its process, while it runs.
    pub pid: Option<Pid>,
    /// Keys held.
    pub count: usize,
    /// Up to the limit: key, holder, value (keys and values through `Debug`).
    pub entries: Vec<(String, Pid, String)>,
}

/// Lists a registry's entries as text; the observer holds one per registry added to it.
pub(crate) type RegistryLister = Arc<dyn Fn(usize) -> RegistryView + Send + Sync>;

/// One node of a supervision tree: a supervisor's child, or a root supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// The child's spec id (`"root"` for a root).
    pub id: String,
    /// Its process, if one runs.
    pub pid: Option<Pid>,
    /// `running`, `restarting` or `undefined`.
    pub status: &'static str,
    /// `worker` or `supervisor`.
    pub kind: &'static str,
    /// `permanent`, `transient` or `temporary` (empty for a root).
    pub restart: String,
    /// Its shutdown policy, as text (empty for a root).
    pub shutdown: String,
    /// Restarts of this child by its supervisor.
    pub restarts: u64,
    /// Its registered name and state type, if it runs.
    pub name: Option<String>,
    /// The Rust type of its state, if it runs.
    pub type_name: Option<&'static str>,
    /// If it is an arbor supervisor: what it reports of itself.
    pub supervisor: Option<SupervisorSummary>,
    /// Its children, in start order.
    pub children: Vec<TreeNode>,
}

/// What a supervisor node shows of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorSummary {
    /// `static` or `dynamic`.
    pub kind: &'static str,
    /// Its strategy.
    pub strategy: String,
    /// Restarts inside the intensity window now.
    pub intensity_used: usize,
    /// Restarts allowed inside the window.
    pub max_restarts: usize,
    /// The window.
    pub window: Duration,
    /// A dynamic supervisor's `max_children`.
    pub max_children: Option<usize>,
    /// Set once it has begun to shut down.
    pub shutting_down: bool,
    /// Set if it did not answer (its children are then unknown).
    pub error: Option<String>,
}

/// One exit in the merged restart history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartEntry {
    /// The supervisor that handled it.
    pub supervisor: Pid,
    /// The supervisor's registered name, if any.
    pub supervisor_name: Option<String>,
    /// The exit.
    pub exit: ChildExit,
}

/// A moment of a running system.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When it was taken.
    pub taken: SystemTime,
    /// The runtime's name.
    pub runtime: String,
    /// Its counters.
    pub stats: RuntimeStats,
    /// Processes (at most [`Limits::max_processes`]), busiest first.
    pub processes: Vec<ProcessInfo>,
    /// Processes alive that were left out by the limit.
    pub processes_omitted: usize,
    /// Supervision trees, one per root supervisor (a supervisor whose parent is not one).
    pub trees: Vec<TreeNode>,
    /// Exits handled by every live supervisor, newest first.
    pub restarts: Vec<RestartEntry>,
    /// Registries added to the observer.
    pub registries: Vec<RegistryView>,
    /// Processes that look stuck in a handler (see [`StuckHandler`]).
    pub stuck: Vec<StuckHandler>,
    /// Handlers past the runtime's watchdog threshold, as core's watchdog sees them
    /// (`RuntimeHandle::stuck_handlers`): the callback and how long it has run.
    pub watchdog: Vec<arbor_core::StuckHandler>,
}

impl Snapshot {
    /// Gathers a snapshot of `rt`: processes, supervision trees, restart history and
    /// registries, within `limits`. `progress` tracks each process's messages handled
    /// between snapshots, to tell the ones that look stuck.
    pub(crate) fn collect(
        rt: &RuntimeHandle,
        limits: &Limits,
        registries: &[RegistryLister],
        progress: &Progress,
    ) -> Snapshot {
        let stats = rt.stats();
        let mut processes: Vec<ProcessInfo> = rt.processes().into_iter().filter_map(|p| rt.process_info(p)).collect();
        let stuck = progress.update(&processes);
        let mut reports: HashMap<Pid, Result<SupervisorReport, CallError>> = HashMap::new();
        for p in &processes {
            if let Some(r) = supervisor_report(p.pid, limits.call_timeout) {
                reports.insert(p.pid, r);
            }
        }
        let by_pid: HashMap<Pid, &ProcessInfo> = processes.iter().map(|p| (p.pid, p)).collect();
        let sups: HashSet<Pid> = reports.keys().copied().collect();
        let mut roots: Vec<&ProcessInfo> = processes
            .iter()
            .filter(|p| sups.contains(&p.pid) && !sups.contains(&p.parent))
            .collect();
        roots.sort_by_key(|p| p.started);
        let trees = roots.iter().map(|p| root_node(p, &reports, &by_pid)).collect();
        let mut restarts: Vec<RestartEntry> = reports
            .iter()
            .filter_map(|(pid, r)| r.as_ref().ok().map(|r| (pid, r)))
            .flat_map(|(pid, r)| {
                let name = by_pid.get(pid).and_then(|p| p.name.clone());
                r.history.iter().map(move |exit| RestartEntry {
                    supervisor: *pid,
                    supervisor_name: name.clone(),
                    exit: exit.clone(),
                })
            })
            .collect();
        restarts.sort_by_key(|r| std::cmp::Reverse(r.exit.at));
        restarts.truncate(limits.max_restarts);
        processes.sort_by_key(|p| std::cmp::Reverse((p.mailbox_len, p.messages_handled)));
        let omitted = processes.len().saturating_sub(limits.max_processes);
        processes.truncate(limits.max_processes);
        Snapshot {
            taken: SystemTime::now(),
            runtime: rt.name().to_string(),
            stats,
            processes,
            processes_omitted: omitted,
            trees,
            restarts,
            registries: registries.iter().map(|l| l(limits.max_registry_entries)).collect(),
            stuck,
            watchdog: rt.stuck_handlers(),
        }
    }
}

fn summary(r: &Result<SupervisorReport, CallError>) -> (SupervisorSummary, Vec<arbor_supervisor::ChildReport>) {
    match r {
        Ok(r) => (
            SupervisorSummary {
                kind: match r.kind {
                    arbor_supervisor::SupervisorKind::Static => "static",
                    arbor_supervisor::SupervisorKind::Dynamic => "dynamic",
                },
                strategy: r.strategy.to_string(),
                intensity_used: r.intensity.used,
                max_restarts: r.intensity.max_restarts,
                window: r.intensity.window,
                max_children: r.max_children,
                shutting_down: r.shutting_down,
                error: None,
            },
            r.children.clone(),
        ),
        Err(e) => (
            SupervisorSummary {
                kind: "unknown",
                strategy: String::new(),
                intensity_used: 0,
                max_restarts: 0,
                window: Duration::ZERO,
                max_children: None,
                shutting_down: false,
                error: Some(e.to_string()),
            },
            Vec::new(),
        ),
    }
}

fn root_node(
    p: &ProcessInfo,
    reports: &HashMap<Pid, Result<SupervisorReport, CallError>>,
    by_pid: &HashMap<Pid, &ProcessInfo>,
) -> TreeNode {
    let mut seen = HashSet::new();
    let mut node = TreeNode {
        id: "root".to_string(),
        pid: Some(p.pid),
        status: "running",
        kind: "supervisor",
        restart: String::new(),
        shutdown: String::new(),
        restarts: 0,
        name: p.name.clone(),
        type_name: Some(p.type_name),
        supervisor: None,
        children: Vec::new(),
    };
    fill(&mut node, p.pid, reports, by_pid, &mut seen);
    node
}

/// Fills a supervisor node's summary and children from its report.
fn fill(
    node: &mut TreeNode,
    pid: Pid,
    reports: &HashMap<Pid, Result<SupervisorReport, CallError>>,
    by_pid: &HashMap<Pid, &ProcessInfo>,
    seen: &mut HashSet<Pid>,
) {
    let Some(report) = reports.get(&pid) else { return };
    if !seen.insert(pid) {
        return;
    }
    let (summary, children) = summary(report);
    node.supervisor = Some(summary);
    for child in children {
        let info = &child.info;
        let pid = info.status.pid();
        let process = pid.and_then(|p| by_pid.get(&p));
        let mut c = TreeNode {
            id: info.id.clone(),
            pid,
            status: match info.status {
                ChildStatus::Running(_) => "running",
                ChildStatus::Restarting => "restarting",
                ChildStatus::Stopped => "undefined",
            },
            kind: match info.kind {
                arbor_supervisor::ChildType::Worker => "worker",
                arbor_supervisor::ChildType::Supervisor => "supervisor",
            },
            restart: format!("{:?}", info.restart).to_lowercase(),
            shutdown: match child.shutdown {
                arbor_supervisor::Shutdown::BrutalKill => "brutal_kill".to_string(),
                arbor_supervisor::Shutdown::Infinity => "infinity".to_string(),
                arbor_supervisor::Shutdown::Timeout(d) => format!("{} ms", d.as_millis()),
            },
            restarts: info.restarts,
            name: process.and_then(|p| p.name.clone()),
            type_name: process.map(|p| p.type_name),
            supervisor: None,
            children: Vec::new(),
        };
        if let Some(pid) = pid {
            fill(&mut c, pid, reports, by_pid, seen);
        }
        node.children.push(c);
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
