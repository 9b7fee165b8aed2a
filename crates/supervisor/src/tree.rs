//! Printable supervision trees.
//!
//! Invariant: a tree is gathered by asking each supervisor for its children
//! (`which_children`), top-down, so each level is a consistent snapshot but the levels are
//! taken one after another; a tree of a system that is restarting may show a child that has
//! just gone. Children of type `Supervisor` that are not arbor supervisors are shown as leaves.

use crate::info::{ChildInfo, ChildStatus};
use crate::spec::ChildType;
use crate::{DynamicSupervisor, Supervisor};
use arbor_core::Pid;
use std::fmt;

/// Which kind of arbor supervisor a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupervisorKind {
    /// A static [`Supervisor`].
    Static,
    /// A [`DynamicSupervisor`].
    Dynamic,
}

/// One node of a supervision tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// The child's id (`"root"` for the root).
    pub id: String,
    /// Running, restarting or stopped.
    pub status: ChildStatus,
    /// Worker or supervisor.
    pub kind: ChildType,
    /// Restarts of this child by its supervisor (0 for the root).
    pub restarts: u64,
    /// Set if the node is an arbor supervisor whose children could be listed.
    pub supervisor: Option<SupervisorKind>,
    /// Its children: in start order for a static supervisor, insertion order for a dynamic
    /// one.
    pub children: Vec<TreeNode>,
}

fn list(pid: Pid) -> Option<(SupervisorKind, Vec<ChildInfo>)> {
    if let Some(sup) = DynamicSupervisor::from_pid(pid) {
        return sup.which_children().ok().map(|c| (SupervisorKind::Dynamic, c));
    }
    if let Some(sup) = Supervisor::from_pid(pid) {
        return sup.which_children().ok().map(|mut c| {
            c.reverse();
            (SupervisorKind::Static, c)
        });
    }
    None
}

fn node(info: ChildInfo) -> TreeNode {
    let mut node = TreeNode {
        id: info.id,
        status: info.status,
        kind: info.kind,
        restarts: info.restarts,
        supervisor: None,
        children: Vec::new(),
    };
    if let (ChildType::Supervisor, ChildStatus::Running(pid)) = (info.kind, info.status) {
        if let Some((kind, children)) = list(pid) {
            node.supervisor = Some(kind);
            node.children = children.into_iter().map(self::node).collect();
        }
    }
    node
}

/// The supervision tree under the supervisor `root` (static or dynamic), or `None` if `root`
/// is not a live arbor supervisor. Call from outside the tree's supervisors (a supervisor
/// asking itself gets `None` for its own level).
pub fn supervision_tree(root: Pid) -> Option<TreeNode> {
    let (kind, children) = list(root)?;
    Some(TreeNode {
        id: "root".to_string(),
        status: ChildStatus::Running(root),
        kind: ChildType::Supervisor,
        restarts: 0,
        supervisor: Some(kind),
        children: children.into_iter().map(node).collect(),
    })
}

/// The supervision tree under `root`, rendered as text: one line per process with its id,
/// pid, type, status and restart count. A `root` that is not a live supervisor renders as one
/// line saying so.
///
/// ```text
/// root <0.0.1> supervisor running restarts=0
/// ├── "Dynamic.Supervisor" <0.1.2> dynamic supervisor running restarts=0
/// │   ├── "Recording" <0.5.9> worker running restarts=2
/// │   └── "Recording" <0.6.4> worker running restarts=0
/// └── "Cache" undefined worker restarts=0
/// ```
pub fn render_tree(root: Pid) -> String {
    match supervision_tree(root) {
        Some(tree) => tree.to_string(),
        None => format!("{root} (not a running supervisor)\n"),
    }
}

impl TreeNode {
    fn line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (self.supervisor, self.kind) {
            (Some(SupervisorKind::Dynamic), _) => "dynamic supervisor",
            (Some(SupervisorKind::Static), _) | (None, ChildType::Supervisor) => "supervisor",
            (None, ChildType::Worker) => "worker",
        };
        let status = match self.status {
            ChildStatus::Running(pid) => format!("{pid} {kind} running"),
            ChildStatus::Restarting => format!("{kind} restarting"),
            ChildStatus::Stopped => format!("undefined {kind}"),
        };
        writeln!(f, "{status} restarts={}", self.restarts)
    }

    fn fmt_children(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        let n = self.children.len();
        for (i, child) in self.children.iter().enumerate() {
            let last = i + 1 == n;
            write!(f, "{prefix}{}{:?} ", if last { "└── " } else { "├── " }, child.id)?;
            child.line(f)?;
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            child.fmt_children(f, &deeper)?;
        }
        Ok(())
    }
}

impl fmt::Display for TreeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.id)?;
        self.line(f)?;
        self.fmt_children(f, "")
    }
}
