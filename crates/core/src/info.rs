//! Introspection: what a process holds, read without stopping it.

use crate::Pid;

/// A snapshot of one process, as [`RuntimeHandle::process_info`](crate::RuntimeHandle::process_info)
/// sees it (Erlang's `process_info/1`). Each figure is read under its own lock, so they are
/// consistent one by one, not with each other.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its parent (the process that `start_link`ed it, or the runtime's pseudo-pid).
    pub parent: Pid,
    /// Its registered name, as the naming service describes it.
    pub name: Option<String>,
    /// The Rust type of its state.
    pub type_name: &'static str,
    /// False once it has begun to exit (it may still be finishing a handler).
    pub alive: bool,
    /// Whether it traps exits.
    pub trap_exits: bool,
    /// The processes it is linked to.
    pub links: Vec<Pid>,
    /// Monitors others hold on it.
    pub monitored_by: usize,
    /// Monitors it holds on others.
    pub monitors: usize,
    /// Exit hooks on it (see [`RuntimeHandle::on_exit`](crate::RuntimeHandle::on_exit)).
    pub exit_hooks: usize,
    /// Calls it has taken and not yet answered (deferred replies included).
    pub held_calls: usize,
    /// Messages waiting in its mailbox (see [`ServerRef::mailbox_len`](crate::ServerRef::mailbox_len)).
    pub mailbox_len: usize,
    /// What it has taken from its mailbox and run so far: messages, calls, signals handled
    /// as callbacks, timeouts and continuations (`init` not included; a cancelled timer's
    /// message, dropped unhandled, counts too). Added to once per run of the process (up to
    /// 64 messages), so it lags a running process by at most that much.
    pub messages_handled: u64,
    /// When it was created (wall clock).
    pub started: std::time::SystemTime,
    /// A lower bound of the bytes it takes: its own structures, its state's inline size,
    /// and one envelope per waiting message. Heap memory that the state or the messages
    /// own (a `Vec`'s buffer, a `String`) is not counted: Rust cannot see it without help
    /// from the type.
    pub memory_estimate: usize,
}
