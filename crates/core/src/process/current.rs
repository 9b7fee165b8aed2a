//! The process the current thread is running, if any.
//!
//! Set by a worker around each run of a process, and by a starter around the `init` it
//! runs for a new process (saved and restored, so starts nest). This is how `start_link`
//! finds the caller to link to, how a call detects calling itself or closing a cycle,
//! and how the registry knows who registers.
//!
//! The thread-local holds a pointer, not an `Arc`: setting it costs no reference-count
//! traffic on the path every message takes (an `Arc` clone and drop per run cost ping-pong
//! about 10 % of its instructions). [`CurrentGuard`] borrows the process's `Arc` for as long
//! as the pointer is set, so the process is alive whenever [`current`] reads it.

use super::Process;
use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

thread_local! {
    static CURRENT: Cell<Option<NonNull<dyn Process>>> = const { Cell::new(None) };
}

/// The process running on this thread, if any.
pub(crate) fn current() -> Option<Arc<dyn Process>> {
    let process = CURRENT.with(|c| c.get())?;
    // SAFETY: a pointer is in `CURRENT` only while the `CurrentGuard` that set it lives,
    // and that guard borrows an `Arc` of the process (its lifetime parameter), so the
    // allocation is alive with a strong count of at least one. The pointer is that `Arc`'s
    // `as_ptr`, unsized to `dyn Process` (the same data pointer and the vtable of its own
    // type, as an `Arc<P>` to `Arc<dyn Process>` coercion makes), so incrementing the count
    // and rebuilding an `Arc` from it is an `Arc::clone`. Guards restore the previous value
    // when dropped, innermost first (they live on the stack of the thread that set them,
    // and none is ever forgotten: `CurrentGuard` is crate-private and both of its uses drop
    // it in scope).
    unsafe {
        Arc::increment_strong_count(process.as_ptr());
        Some(Arc::from_raw(process.as_ptr()))
    }
}

/// Makes a process current until dropped, restoring the previous one.
///
/// Must be dropped, never forgotten (`std::mem::forget` would leave a pointer to a process
/// that may be freed in the thread-local): see the `SAFETY` argument of [`current`].
pub(crate) struct CurrentGuard<'a> {
    previous: Option<NonNull<dyn Process>>,
    /// The process's `Arc`, borrowed while it is current.
    _process: PhantomData<&'a ()>,
}

impl<'a> CurrentGuard<'a> {
    pub(crate) fn enter<P: Process>(process: &'a Arc<P>) -> CurrentGuard<'a> {
        let this: &dyn Process = &**process;
        let previous = CURRENT.with(|c| c.replace(Some(NonNull::from(this))));
        CurrentGuard {
            previous,
            _process: PhantomData,
        }
    }
}

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous;
        CURRENT.with(|c| c.set(previous));
    }
}
