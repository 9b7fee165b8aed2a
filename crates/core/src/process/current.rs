//! The process the current thread is running, if any.
//!
//! Set by a worker around each run of a process, and by a starter around the `init` it
//! runs for a new process (saved and restored, so starts nest). This is how `start_link`
//! finds the caller to link to, how a call detects calling itself or closing a cycle,
//! and how the registry knows who registers.

use super::Process;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Process>>> = const { RefCell::new(None) };
}

/// The process running on this thread, if any.
pub(crate) fn current() -> Option<Arc<dyn Process>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes a process current until dropped, restoring the previous one.
pub(crate) struct CurrentGuard {
    previous: Option<Arc<dyn Process>>,
}

impl CurrentGuard {
    pub(crate) fn enter(process: Arc<dyn Process>) -> CurrentGuard {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(process));
        CurrentGuard { previous }
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}
