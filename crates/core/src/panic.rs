//! Catching panics in callbacks, and keeping them quiet.
//!
//! A panic inside a callback is caught with `catch_unwind` and becomes
//! [`ExitReason::Panic`](crate::ExitReason::Panic); the crash report goes through `log`.
//! So that such panics do not also print the default "thread panicked" message to
//! stderr, the first runtime installs a panic hook that stays silent while a callback
//! runs on this thread and defers to the previous hook otherwise.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic caught in a callback on this thread happened, and its
    /// backtrace when the environment asks for one: for the crash report.
    static LAST_PANIC: std::cell::RefCell<Option<PanicSite>> = const { std::cell::RefCell::new(None) };
}

/// Where a callback panicked.
#[derive(Debug)]
pub(crate) struct PanicSite {
    /// `file:line:column`.
    pub(crate) location: String,
    /// Captured when `RUST_BACKTRACE` (or `RUST_LIB_BACKTRACE`) asks for one; symbolized
    /// only if a report prints it (symbolizing loads the binary's debug information).
    pub(crate) backtrace: Option<std::backtrace::Backtrace>,
}

/// Takes the site of the last panic caught on this thread.
pub(crate) fn take_site() -> Option<PanicSite> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

static HOOK: Once = Once::new();

/// Runtimes whose crash reports may go to standard error (`Auto` or `Stderr`): while there
/// is none and no logger listens, a panic's backtrace is not captured.
static WANT_BACKTRACES: crate::sync::AtomicUsize = crate::sync::AtomicUsize::new(0);

/// A runtime that may print crash reports to standard error starts (`true`) or stops.
pub(crate) fn set_backtraces(on: bool) {
    if on {
        WANT_BACKTRACES.fetch_add(1, crate::sync::Ordering::Relaxed);
    } else {
        WANT_BACKTRACES.fetch_sub(1, crate::sync::Ordering::Relaxed);
    }
}

/// Installs the quiet hook once per program.
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALLBACK.with(|c| c.get()) == 0 {
                previous(info);
                return;
            }
            // Capturing walks the stack (tens of microseconds): only when a report may
            // print it (see `set_backtraces`), and when the environment asks for it.
            let backtrace = if WANT_BACKTRACES.load(crate::sync::Ordering::Relaxed) > 0
                || log::max_level() != log::LevelFilter::Off
            {
                std::backtrace::Backtrace::capture()
            } else {
                std::backtrace::Backtrace::disabled()
            };
            let site = PanicSite {
                location: info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_else(|| "<unknown>".to_string()),
                backtrace: (backtrace.status() == std::backtrace::BacktraceStatus::Captured).then_some(backtrace),
            };
            let _ = LAST_PANIC.try_with(|p| {
                if let Ok(mut p) = p.try_borrow_mut() {
                    *p = Some(site);
                }
            });
        }));
    });
}

/// Runs `f`, catching a panic and turning it into its message. (Not forced inline: in
/// the runner's big function its landing pad made each panic's unwinding scan a longer
/// table, +15 % on restart_storm; docs/performance.md.)
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    IN_CALLBACK.with(|c| c.set(c.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_CALLBACK.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| message(&*payload))
}

/// Drops `value`, catching a panic in its `Drop`; logs what panicked.
pub(crate) fn drop_quietly<T>(value: T, what: &str) {
    if let Err(msg) = catch(move || drop(value)) {
        log::error!("arbor: dropping {what} panicked: {msg}");
    }
}

/// The text of a panic payload.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}
