//! One error type per operation (crossbeam's habit): a failed send hands the message back,
//! a failed call says exactly why, a failed start says whether a name was taken or `init`
//! declined.

use crate::{ExitReason, Pid};
use std::fmt;

/// A message could not be delivered because the process is not alive; the message is
/// handed back.
#[derive(PartialEq, Eq)]
pub struct SendError<M>(pub M);

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        self.0
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending to a process that is not alive: the message is handed back (`into_inner`); look the server up again (a name, or a supervisor's `which_children`) if it was restarted")
    }
}

impl<M> std::error::Error for SendError<M> {}

/// Why a call (or a stop) did not return a reply. A call never hangs: each of these is
/// returned as soon as it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// No reply came before the deadline. The request may still be handled; its late reply
    /// is dropped, never delivered to a later call (S11). A zero timeout returns this at
    /// once without sending the request.
    Timeout,
    /// The server was not alive when the call was made (S12), or a name was not registered
    /// (S71).
    NoProc,
    /// A process called itself (S13).
    CallingSelf,
    /// The server exited before it replied; this is its exit reason (S14).
    Exited(ExitReason),
    /// The call would close a cycle of processes each waiting on the next (A calls B while
    /// B is calling A, directly or through others). Beyond OTP, which would wait for the
    /// timeouts.
    Deadlock,
    /// The server dropped the reply handle without replying, and is still alive.
    NoReply,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("call timed out: the server did not reply in time (busy, blocked, or slow); use `call_timeout` with a longer timeout, or have the server reply later with `CallFlow::NoReply` and `ReplyTo::reply`"),
            CallError::NoProc => f.write_str("no such process: the server is not running (it exited, or the name is not registered); start it, or look it up again after its supervisor restarts it"),
            CallError::CallingSelf => f.write_str("a process called itself, which would deadlock: do the work directly, or `ctx.send_self` a message"),
            CallError::Exited(r) => write!(f, "the server exited before replying ({r}): see its crash report; retry once its supervisor has restarted it"),
            CallError::Deadlock => f.write_str("call would deadlock: a cycle of calls (A calls B while B calls A); break the cycle with a cast or a message, or a deferred reply"),
            CallError::NoReply => f.write_str("the server dropped the reply handle without replying: make every path of its handle_call reply (or keep the `ReplyTo` until it does)"),
        }
    }
}

impl std::error::Error for CallError {}

/// Why a server did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The name is held by this running process; the new server's `init` never ran (S7).
    AlreadyStarted(Pid),
    /// `init` returned [`ExitReason::Ignore`] (S2).
    Ignore,
    /// `init` returned this error or panicked (S3, S4); or the new process was killed
    /// before `init` could return (its exit reason; `init` then never runs if the kill
    /// came first).
    Init(ExitReason),
    /// `init` did not finish within the start timeout (S6).
    Timeout,
    /// There is no runtime to start on: the caller is not a process and the options name
    /// none.
    NoRuntime,
    /// The runtime is shutting down.
    ShuttingDown,
    /// A start function (a supervisor child's) failed for its own reason.
    Failed(ExitReason),
    /// The naming service of the start's name could not take it (a registry that is not
    /// running); the server never ran.
    NameUnavailable(String),
    /// `start_link` was called by a process that is itself exiting (it was killed while
    /// the handler that starts runs): the child never ran, since nothing would be left
    /// to stop it. Carries the caller's exit reason.
    CallerExited(ExitReason),
    /// Starting from inside `init` (a server whose `init` starts another, whose `init`
    /// starts another...) went deeper than this many nested `init`s on one thread: each
    /// level runs on the caller's stack, so an unbounded chain would overflow it. The
    /// server never ran. Start deep chains from a handler, or with a start timeout (then
    /// `init` runs on a worker).
    NestedTooDeep(usize),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted(p) => write!(f, "already started as {p}: a server holds this name; use that pid (`whereis`), or pick another name"),
            StartError::Ignore => f.write_str("init returned ExitReason::Ignore: no server was started, by design of its init"),
            StartError::Init(r) => write!(f, "init failed ({r}): the server never ran; fix what init needs (its arguments, a dependency), or move slow or fallible work after init (`ctx.continue_with`, or a message to itself)"),
            StartError::Timeout => f.write_str("init timed out: it took longer than the start timeout; move slow work after init (`ctx.continue_with`), or raise `StartOpts::timeout`"),
            StartError::NoRuntime => f.write_str("no runtime to start on: this thread neither built a running runtime nor entered one; enter it here (`let _in_rt = rt.handle().enter();`), or start with `rt.start(..)`"),
            StartError::ShuttingDown => f.write_str("the runtime is shutting down: nothing new starts; start it before the shutdown, or on another runtime"),
            StartError::Failed(r) => write!(f, "the start function failed ({r}): see the child spec's start closure"),
            StartError::NameUnavailable(why) => write!(f, "name unavailable ({why}): start the registry before the servers it names, under the same supervisor, earlier"),
            StartError::NestedTooDeep(n) => write!(
                f,
                "more than {n} nested inits on one thread (an init that starts a server whose init starts another...): start the chain from a handler instead"
            ),
            StartError::CallerExited(r) => write!(f, "the caller of start_link is exiting ({r}): no child started, and none is needed"),
        }
    }
}

impl std::error::Error for StartError {}

/// A link or monitor target was not alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoProc;

impl fmt::Display for NoProc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no such process: the target exited (or never ran); a monitor on it would report Down(NoProc) at once",
        )
    }
}

impl std::error::Error for NoProc {}
