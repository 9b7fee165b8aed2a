//! One error type for applications: every arbor operation's error converts into
//! [`Error`], so that `?` works across calls, starts, supervisors, the registry and the
//! runtime in one function.

use arbor_core::{CallError, ExitReason, NameError, NoProc, SendError, StartError};
use arbor_registry::{NotAProcess, RegisterError, UpdateError};
use arbor_supervisor::{ChildError, OptionsError, SpecError, StartChildError, SupervisorStartError};
use std::fmt;

/// Any arbor error, for an application that wants one error type: `?` converts each
/// operation's own error into it (`From`), its `Display` is the inner error's (each says
/// what to do), and [`source`](std::error::Error::source) gives the inner error. Match
/// on the variant to handle one case; keep the precise types (`CallError`,
/// `StartChildError`, ...) where the code handles them itself.
///
/// ```
/// use arbor::prelude::*;
/// use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor};
///
/// fn run() -> Result<usize, arbor::Error> {
///     let rt = Runtime::new()?; // std::io::Error
///     let rooms = DynamicSupervisor::start(DynamicOpts::new())?; // SupervisorStartError
///     let names: Registry<String> = Registry::start_link(RegistryOpts::new())?; // StartError
///     names.register_pid(rooms.pid(), "rooms".to_string(), ())?; // RegisterError
///     let refused = rooms.start_child(ChildSpec::new("", || Err(StartError::Ignore)));
///     assert!(matches!(refused, Err(ref e) if e.to_string().contains("give it one")));
///     let active = rooms.count_children()?.active; // CallError
///     rt.shutdown();
///     Ok(active)
/// }
///
/// assert_eq!(run().unwrap(), 0);
///
/// // Each error's text says what to do, and `source` gives the operation's own error.
/// let e = arbor::Error::from(CallError::Timeout);
/// assert!(e.to_string().contains("call_timeout"));
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A call (or a stop) got no reply.
    Call(CallError),
    /// A server did not start.
    Start(StartError),
    /// A message was not delivered: the process is not alive. The message itself, which
    /// [`SendError`] hands back, is dropped by the conversion; this is its type's name.
    Send(&'static str),
    /// A link or monitor target was not alive.
    NoProc(NoProc),
    /// A name could not be claimed.
    Name(NameError),
    /// A child spec was rejected.
    Spec(SpecError),
    /// Supervisor options were rejected.
    Options(OptionsError),
    /// A supervisor did not start.
    SupervisorStart(SupervisorStartError),
    /// `start_child` did not start a child.
    StartChild(StartChildError),
    /// `terminate_child`, `restart_child` or `delete_child` failed.
    Child(ChildError),
    /// A registry key was not claimed.
    Register(RegisterError),
    /// A registry value was not updated.
    Update(UpdateError),
    /// An operation acting for the calling process was called outside any process.
    NotAProcess(NotAProcess),
    /// A process exited with this reason where the caller needed it alive (for code that
    /// turns an exit into an error).
    Exited(ExitReason),
    /// The runtime's threads could not be started.
    Runtime(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Call(e) => e.fmt(f),
            Error::Start(e) => e.fmt(f),
            Error::Send(ty) => write!(
                f,
                "sending a {ty} to a process that is not alive: look the server up again (a name, or its supervisor) if it was restarted"
            ),
            Error::NoProc(e) => e.fmt(f),
            Error::Name(e) => e.fmt(f),
            Error::Spec(e) => e.fmt(f),
            Error::Options(e) => e.fmt(f),
            Error::SupervisorStart(e) => e.fmt(f),
            Error::StartChild(e) => e.fmt(f),
            Error::Child(e) => e.fmt(f),
            Error::Register(e) => e.fmt(f),
            Error::Update(e) => e.fmt(f),
            Error::NotAProcess(e) => e.fmt(f),
            Error::Exited(r) => write!(f, "the process exited ({r}): see its crash report"),
            Error::Runtime(e) => write!(
                f,
                "the runtime's threads could not be started ({e}): check the process's thread limit and memory"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Call(e) => Some(e),
            Error::Start(e) => Some(e),
            Error::Send(_) => None,
            Error::NoProc(e) => Some(e),
            Error::Name(e) => Some(e),
            Error::Spec(e) => Some(e),
            Error::Options(e) => Some(e),
            Error::SupervisorStart(e) => Some(e),
            Error::StartChild(e) => Some(e),
            Error::Child(e) => Some(e),
            Error::Register(e) => Some(e),
            Error::Update(e) => Some(e),
            Error::NotAProcess(e) => Some(e),
            Error::Exited(_) => None,
            Error::Runtime(e) => Some(e),
        }
    }
}

macro_rules! from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$ty> for Error {
                fn from(e: $ty) -> Error {
                    Error::$variant(e)
                }
            }
        )*
    };
}

from! {
    CallError => Call,
    StartError => Start,
    NoProc => NoProc,
    NameError => Name,
    SpecError => Spec,
    OptionsError => Options,
    SupervisorStartError => SupervisorStart,
    StartChildError => StartChild,
    ChildError => Child,
    RegisterError => Register,
    UpdateError => Update,
    NotAProcess => NotAProcess,
    ExitReason => Exited,
    std::io::Error => Runtime,
}

impl<M> From<SendError<M>> for Error {
    fn from(e: SendError<M>) -> Error {
        drop_message(e);
        Error::Send(std::any::type_name::<M>())
    }
}

/// The undelivered message is dropped here, as `?` on a `SendError` asks.
fn drop_message<M>(e: SendError<M>) {
    drop(e.into_inner());
}
