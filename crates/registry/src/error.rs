//! One error type per operation, each a plain enum: a registry operation never panics.

use arbor_core::Pid;
use std::fmt;

/// Why [`Registry::register`](crate::Registry::register) (or
/// [`Registry::register_pid`](crate::Registry::register_pid)) did not claim the key. A failed
/// attempt leaves no trace in the registry (S65).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A live process holds the key; this is its pid. Returned also when the caller itself
    /// holds it (S65).
    AlreadyRegistered(Pid),
    /// `register` was called from outside any process (there is no `self()` to register).
    NotAProcess,
    /// The pid given to `register_pid` is not alive (or is already exiting).
    NotAlive,
    /// The registry's process is not running (never started, or exited): its table is closed
    /// and empty.
    RegistryDown,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadyRegistered(p) => write!(f, "key already registered by {p}: use that process (`lookup`), or register another key"),
            RegisterError::NotAProcess => f.write_str("register called from outside any process: call it from the process to name (in init, say), or use `register_pid` or a via-name in its start options"),
            RegisterError::NotAlive => f.write_str("the process to register is not alive: register it while it runs (a via-name in its start options does so before init)"),
            RegisterError::RegistryDown => f.write_str("the registry is not running: start it (under the supervisor, before the servers it names)"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Why [`Registry::update_value`](crate::Registry::update_value) did not update (Elixir
/// returns `:error` for the first two, S68).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// No process holds the key.
    NotRegistered,
    /// Another process holds the key; this is its pid. Only the owner may update its value.
    NotOwner(Pid),
    /// `update_value` was called from outside any process.
    NotAProcess,
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::NotRegistered => f.write_str("key not registered: `register` it first"),
            UpdateError::NotOwner(p) => write!(
                f,
                "key owned by another process ({p}): only the owner may update its value; ask it with a call"
            ),
            UpdateError::NotAProcess => {
                f.write_str("update_value called from outside any process: call it from the key's owner")
            }
        }
    }
}

impl std::error::Error for UpdateError {}

/// An operation that acts for the calling process was called from outside any process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAProcess;

impl fmt::Display for NotAProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "called from outside any process: this acts for the calling process; call it from a handler or init",
        )
    }
}

impl std::error::Error for NotAProcess {}
