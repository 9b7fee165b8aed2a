//! Listener events (S73).
//!
//! Listeners are closures given in [`RegistryOpts`](crate::RegistryOpts). They run on the
//! thread that made the change, after every registry lock is released, so a listener may call
//! the registry. A listener that panics is caught and logged; the change stands. Events about
//! one key made by one thread arrive in order; events made by different threads (a release at
//! exit and a new registration, say) carry no order between them, as messages from different
//! senders carry none in Elixir.

use arbor_core::Pid;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A change to a registry, as told to its listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryEvent<K, V> {
    /// `pid` claimed `key` with `value` (by `register`, `register_pid` or a via-name).
    Register {
        /// The key.
        key: K,
        /// The new holder.
        pid: Pid,
        /// The value stored with it.
        value: V,
    },
    /// `pid` gave up `key`: by `unregister`, because it exited, or because a new process took
    /// over a key whose holder was already dead.
    Unregister {
        /// The key.
        key: K,
        /// The former holder.
        pid: Pid,
    },
}

/// A listener: told of every register and unregister.
pub(crate) type Listener<K, V> = Arc<dyn Fn(&RegistryEvent<K, V>) + Send + Sync + 'static>;

/// Tells every listener of every event, in order, catching panics.
pub(crate) fn emit<K, V>(listeners: &[Listener<K, V>], events: &[RegistryEvent<K, V>]) {
    for event in events {
        for listener in listeners {
            if catch_unwind(AssertUnwindSafe(|| listener(event))).is_err() {
                log::error!("arbor-registry: a listener panicked; the change stands");
            }
        }
    }
}
