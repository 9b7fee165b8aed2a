//! Exit reasons.
//!
//! [`ExitReason`] is a plain enum, not an error: it says why a process ended, travels in
//! exit signals and `Down` messages, and decides restarts. "Clean" reasons (`Normal`,
//! `Shutdown`, `ShutdownWith`) are not crashes: they are not logged as errors and do not
//! restart a transient child (S22, S44).

use std::fmt;
use std::sync::Arc;

/// Why a process ended (or, as an exit signal, why another process should end).
#[derive(Clone)]
#[non_exhaustive]
pub enum ExitReason {
    /// A clean end. A `Normal` exit signal does not stop a non-trapping process (S34).
    Normal,
    /// A clean, ordered stop, as supervisors ask of their children.
    Shutdown,
    /// A clean stop with a payload: Elixir's `{:shutdown, term}`.
    ShutdownWith(Arc<str>),
    /// The process was killed: by [`kill`](crate::kill), a brutal-kill shutdown, or a
    /// shutdown timeout. Never trappable; `terminate` does not run.
    Killed,
    /// The process did not exist (a link or monitor to a dead pid delivers this).
    NoProc,
    /// A callback panicked; the payload is the panic message.
    Panic(Arc<str>),
    /// A user error.
    Error(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// Returned from `init` only: decline to start (Elixir's `:ignore`). The start call
    /// returns [`StartError::Ignore`](crate::StartError::Ignore) and the process exits
    /// with `Normal`.
    Ignore,
}

/// Any error converts into an exit reason (`ExitReason::Error`), so `?` works in `init`
/// (and in any function returning `Result<_, ExitReason>`) on every error type:
///
/// ```
/// use arbor_core::ExitReason;
/// fn port(text: &str) -> Result<u16, ExitReason> {
///     Ok(text.parse::<u16>()?)
/// }
/// assert_eq!(port("80").unwrap(), 80);
/// assert!(port("eighty").unwrap_err().to_string().contains("invalid digit"));
/// ```
impl<E: std::error::Error + Send + Sync + 'static> From<E> for ExitReason {
    fn from(err: E) -> ExitReason {
        ExitReason::error(err)
    }
}

impl ExitReason {
    /// `ShutdownWith` from anything printable.
    pub fn shutdown_with(payload: impl fmt::Display) -> ExitReason {
        ExitReason::ShutdownWith(payload.to_string().into())
    }

    /// `Error` from any error value.
    pub fn error(err: impl std::error::Error + Send + Sync + 'static) -> ExitReason {
        ExitReason::Error(Arc::new(err))
    }

    /// `Error` from a message: for reasons that are just text (Elixir's custom atoms).
    pub fn custom(message: impl fmt::Display) -> ExitReason {
        ExitReason::Error(Arc::new(Custom(message.to_string())))
    }

    /// `Panic` from a message.
    pub fn panic(message: impl fmt::Display) -> ExitReason {
        ExitReason::Panic(message.to_string().into())
    }

    /// True for `Normal`, `Shutdown` and `ShutdownWith`: ends that are not crashes (S22).
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_) | ExitReason::Ignore
        )
    }

    /// True for `Normal` (and `Ignore`, which a process that declined to start exits with).
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Ignore)
    }

    /// The reason linked processes and monitors see: `Ignore` is reported as `Normal`.
    pub(crate) fn as_exit(&self) -> ExitReason {
        match self {
            ExitReason::Ignore => ExitReason::Normal,
            other => other.clone(),
        }
    }
}

/// A textual user error, made by [`ExitReason::custom`].
#[derive(Debug)]
struct Custom(String);

impl fmt::Display for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Custom {}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(p) => write!(f, "shutdown: {p}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::Panic(m) => write!(f, "panic: {m}"),
            ExitReason::Error(e) => write!(f, "error: {e}"),
            ExitReason::Ignore => f.write_str("ignore"),
        }
    }
}

impl fmt::Debug for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("Normal"),
            ExitReason::Shutdown => f.write_str("Shutdown"),
            ExitReason::ShutdownWith(p) => write!(f, "ShutdownWith({p:?})"),
            ExitReason::Killed => f.write_str("Killed"),
            ExitReason::NoProc => f.write_str("NoProc"),
            ExitReason::Panic(m) => write!(f, "Panic({m:?})"),
            ExitReason::Error(e) => write!(f, "Error({:?})", e.to_string()),
            ExitReason::Ignore => f.write_str("Ignore"),
        }
    }
}

/// Reasons compare by kind and payload; `Error`s compare by their message.
impl PartialEq for ExitReason {
    fn eq(&self, other: &Self) -> bool {
        use ExitReason::*;
        match (self, other) {
            (Normal, Normal) | (Shutdown, Shutdown) | (Killed, Killed) | (NoProc, NoProc) => true,
            (Ignore, Ignore) => true,
            (ShutdownWith(a), ShutdownWith(b)) | (Panic(a), Panic(b)) => a == b,
            (Error(a), Error(b)) => Arc::ptr_eq(a, b) || a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for ExitReason {}
