//! The registry's process: a small GenServer that owns the table's lifetime.
//!
//! The process does no work and receives no traffic: lookups and registrations go straight to
//! the shared table. It exists so that a registry has a pid that can be linked, supervised,
//! monitored and named, and so that the table's life is a process's life. Its name (a
//! [`Naming`] over the table) is what opens and closes the table:
//! - `register(pid)`, called by core before `init`, opens the table for `pid` and lists it in
//!   the directory if the registry is named; if another process runs this table, or another
//!   registry holds the name, the start returns `AlreadyStarted(that pid)` (S63).
//! - `unregister(pid)`, called by core when the process exits (however it exits, killed
//!   included), before its links and monitors are told, closes and empties the table and
//!   removes it from the directory. So anyone who learns of the registry's exit finds it empty.

use crate::directory;
use crate::table::{Key, Table, Value};
use arbor_core::{CallFlow, Context, ExitReason, GenServer, NameError, Naming, Pid, ReplyTo};
use std::any::Any;
use std::sync::Arc;

/// The registry's process. It holds nothing: the table lives in shared memory.
pub(crate) struct RegistryServer;

impl GenServer for RegistryServer {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = ();

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(RegistryServer)
    }

    fn handle_info(&mut self, _: (), _ctx: &mut Context<'_, Self>) -> arbor_core::Flow {
        arbor_core::Flow::Continue
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<()>, _ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        CallFlow::Reply(())
    }
}

/// The registry process's own name: opens the table at start, closes it at exit.
pub(crate) struct ProcessName<K, V> {
    pub(crate) table: Arc<Table<K, V>>,
}

impl<K: Key, V: Value> Naming for ProcessName<K, V> {
    fn register(&self, pid: Pid) -> Result<(), NameError> {
        self.table
            .open(pid, || match self.table.name() {
                Some(name) => directory::claim(name, pid, Arc::clone(&self.table) as Arc<dyn Any + Send + Sync>),
                None => Ok(()),
            })
            .map_err(NameError::Taken)
    }

    fn unregister(&self, pid: Pid) {
        let closed = self.table.close(pid, || {
            if let Some(name) = self.table.name() {
                directory::release(name, pid);
            }
        });
        if closed {
            log::debug!(
                "arbor-registry: {} exited; its table is closed and empty",
                self.describe()
            );
        }
    }

    fn whereis(&self) -> Option<Pid> {
        self.table.process()
    }

    fn describe(&self) -> String {
        match self.table.name() {
            Some(name) => format!("Registry {name}"),
            None => "Registry".to_string(),
        }
    }
}
