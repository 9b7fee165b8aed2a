//! The supervision tree the soak runs, and how it is brought back to its specs after chaos.
//!
//! ```text
//! root (Supervisor, one_for_one, never gives up)
//! ├── registry            the Registry's process: names of every worker and supervisor
//! ├── dyn-0 .. dyn-3      DynamicSupervisors: on-demand workers w0..w{N}, mixed restart types
//! ├── static-0            Supervisor one_for_one:  s0.0 .. s0.4 (permanent / transient)
//! ├── static-1            Supervisor one_for_all:  s1.0 .. s1.4
//! ├── static-2            Supervisor rest_for_one: s2.0 .. s2.4
//! └── static-3            Supervisor one_for_one:  s3.0, s3.1, nested (DynamicSupervisor: n0..n{M})
//! ```
//!
//! Invariant: the *skeleton* (everything but on-demand workers) is fixed. After chaos the
//! soak removes every on-demand worker and restarts every stopped static child, so the
//! converged tree is the skeleton again, and its process count is the baseline's.

use crate::ledger::Ledger;
use crate::worker::{Args, Shared, Worker};
use arbor::prelude::*;
use arbor::registry::Registry;
use arbor::supervisor::{
    supervision_tree, ChildSpec, ChildStatus, DynamicOpts, DynamicSupervisor, Restart, Shutdown, StartChildError,
    Strategy, Supervisor, SupervisorOpts, TreeNode,
};
use std::sync::Arc;
use std::time::Duration;

/// DynamicSupervisors directly under the root.
pub(crate) const DYN_SUPS: usize = 4;
/// Static sub-supervisors under the root.
pub(crate) const STATIC_SUPS: usize = 4;
/// Workers in each of static-0..2.
const STATIC_WORKERS: usize = 5;

/// The tree's handles and the names of its parts.
pub(crate) struct Tree {
    pub(crate) root: Supervisor,
    pub(crate) shared: Shared,
    /// Keys of on-demand workers ("w.." under dyn-*, "n.." under nested).
    pub(crate) demand_keys: Vec<String>,
    /// Keys of static workers, with their restart type.
    pub(crate) static_keys: Vec<(String, Restart)>,
}

/// Names of the dynamic supervisors that hold on-demand workers.
pub(crate) fn dyn_sup_names() -> Vec<String> {
    let mut v: Vec<String> = (0..DYN_SUPS).map(|i| format!("dyn-{i}")).collect();
    v.push("nested".to_string());
    v
}

/// Names of the static sub-supervisors.
pub(crate) fn static_sup_names() -> Vec<String> {
    (0..STATIC_SUPS).map(|i| format!("static-{i}")).collect()
}

fn worker_spec(shared: &Shared, key: &str, restart: Restart, helpers: bool, init_delay: Duration) -> ChildSpec {
    let args = Args {
        shared: shared.clone(),
        key: key.to_string(),
        init_delay,
        helpers,
    };
    let name = shared.names.via(key.to_string());
    ChildSpec::new(key.to_string(), move || {
        // The seed's pattern: a start under a taken name maps to the running pid.
        match Worker::start_link(args.clone(), StartOpts::new().name(name.clone())) {
            Err(StartError::AlreadyStarted(pid)) => Ok(pid),
            other => other.map(|s| s.pid()),
        }
    })
    .restart(restart)
    .shutdown(Shutdown::Timeout(Duration::from_millis(500)))
}

/// The restart type of on-demand worker `n`: a third each.
pub(crate) fn demand_restart(n: usize) -> Restart {
    match n % 3 {
        0 => Restart::Permanent,
        1 => Restart::Transient,
        _ => Restart::Temporary,
    }
}

impl Tree {
    /// Builds the tree on `rt`: `demand` on-demand keys spread over the dynamic supervisors.
    pub(crate) fn build(rt: &Runtime, ledger: Arc<Ledger>, demand: usize) -> Tree {
        let names: Registry<String> = Registry::new(arbor::registry::RegistryOpts::new());
        let shared = Shared { ledger, names };
        let mut children = vec![ChildSpec::new("registry", shared.names.child_start())];
        for name in dyn_sup_names().into_iter().filter(|n| n.starts_with("dyn")) {
            let opts = DynamicOpts::new()
                .max_restarts(50)
                .max_seconds(1)
                .name(shared.names.via(name.clone()));
            children.push(DynamicSupervisor::child_spec(name, opts));
        }
        let strategies = [Strategy::OneForOne, Strategy::OneForAll, Strategy::RestForOne];
        let mut static_keys = Vec::new();
        for (i, name) in static_sup_names().into_iter().enumerate() {
            let mut kids = Vec::new();
            let count = if i < 3 { STATIC_WORKERS } else { 2 };
            for j in 0..count {
                let key = format!("s{i}.{j}");
                let restart = if j % 2 == 0 {
                    Restart::Permanent
                } else {
                    Restart::Transient
                };
                kids.push(worker_spec(&shared, &key, restart, false, Duration::ZERO));
                static_keys.push((key, restart));
            }
            if i == 3 {
                let opts = DynamicOpts::new()
                    .max_restarts(50)
                    .max_seconds(1)
                    .name(shared.names.via("nested".to_string()));
                kids.push(DynamicSupervisor::child_spec("nested", opts));
            }
            let strategy = strategies[i % strategies.len()];
            let opts = SupervisorOpts::new(strategy)
                .max_restarts(20)
                .max_seconds(1)
                .name(shared.names.via(name.clone()));
            children.push(Supervisor::child_spec(name, kids, opts));
        }
        let root = Supervisor::start_link(
            children,
            SupervisorOpts::new(Strategy::OneForOne)
                .max_restarts(1_000_000)
                .max_seconds(1)
                .runtime(rt.handle()),
        )
        .expect("the soak's tree starts");
        let demand_keys = (0..demand)
            .map(|n| if n % 8 == 7 { format!("n{n}") } else { format!("w{n}") })
            .collect();
        Tree {
            root,
            shared,
            demand_keys,
            static_keys,
        }
    }

    /// The dynamic supervisor that holds on-demand key `key` ("w{n}" or "n{n}").
    pub(crate) fn sup_of(&self, key: &str) -> Option<DynamicSupervisor> {
        let n: usize = key[1..].parse().ok()?;
        let name = if key.starts_with('n') {
            "nested".to_string()
        } else {
            format!("dyn-{}", n % DYN_SUPS)
        };
        DynamicSupervisor::whereis(&self.shared.names.via(name))
    }

    /// The worker under `key`, started on demand (through its dynamic supervisor) if absent.
    pub(crate) fn demand(&self, key: &str, init_delay: Duration) -> Result<Pid, StartChildError> {
        if let Some(pid) = self.shared.names.whereis(key) {
            return Ok(pid);
        }
        let sup = self.sup_of(key).ok_or(StartChildError::Supervisor(CallError::NoProc))?;
        let n: usize = key[1..].parse().unwrap_or(0);
        sup.start_child(worker_spec(&self.shared, key, demand_restart(n), true, init_delay))
    }

    /// Snapshot of the whole tree.
    pub(crate) fn snapshot(&self) -> Option<TreeNode> {
        supervision_tree(self.root.pid())
    }

    /// One step towards the skeleton: removes on-demand workers, restarts stopped static
    /// children. Returns true if the tree already was the skeleton, every process alive.
    pub(crate) fn converge_step(&self) -> bool {
        let mut settled = true;
        for name in dyn_sup_names() {
            match DynamicSupervisor::whereis(&self.shared.names.via(name)) {
                Some(sup) => {
                    if let Ok(kids) = sup.which_children() {
                        for kid in kids {
                            settled = false;
                            if let Some(pid) = kid.status.pid() {
                                let _ = sup.terminate_child(pid);
                            }
                        }
                    }
                }
                None => settled = false,
            }
        }
        for name in static_sup_names() {
            match Supervisor::whereis(&self.shared.names.via(name)) {
                Some(sup) => {
                    if let Ok(kids) = sup.which_children() {
                        for kid in kids {
                            match kid.status {
                                ChildStatus::Running(pid) if arbor::is_alive(pid) => {}
                                ChildStatus::Stopped => {
                                    settled = false;
                                    let _ = sup.restart_child(&kid.id);
                                }
                                _ => settled = false,
                            }
                        }
                    }
                }
                None => settled = false,
            }
        }
        settled && self.snapshot().is_some_and(|t| skeleton_ok(&t))
    }
}

/// True if `node` and everything under it is running and alive, with the skeleton's shape.
pub(crate) fn skeleton_ok(root: &TreeNode) -> bool {
    let expected = 1 + 1 + DYN_SUPS + STATIC_SUPS + 3 * STATIC_WORKERS + 2 + 1;
    all_alive(root) && count(root) == expected
}

fn all_alive(node: &TreeNode) -> bool {
    matches!(node.status, ChildStatus::Running(pid) if arbor::is_alive(pid)) && node.children.iter().all(all_alive)
}

/// Processes in the tree, the root included.
pub(crate) fn count(node: &TreeNode) -> usize {
    1 + node.children.iter().map(count).sum::<usize>()
}

/// Pids in the tree.
pub(crate) fn pids(node: &TreeNode, out: &mut Vec<Pid>) {
    if let Some(pid) = node.status.pid() {
        out.push(pid);
    }
    for c in &node.children {
        pids(c, out);
    }
}
