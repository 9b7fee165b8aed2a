//! One error type per operation: [`DistError`] for starting a node, connecting and sending;
//! [`RemoteCallError`] for a call to a BEAM process.

use crate::term::Term;
use std::fmt;

/// Why a node did not start, or a connection, send or cast did not happen.
#[derive(Debug)]
#[non_exhaustive]
pub enum DistError {
    /// A socket error.
    Io(std::io::Error),
    /// epmd refused or could not be reached: the text says which.
    Epmd(String),
    /// The node name is not `name@host`, or the name is already registered with epmd.
    BadName(String),
    /// No cookie was given and `~/.erlang.cookie` could not be read.
    NoCookie,
    /// The peer node is down: not registered with its epmd, unreachable, refusing us
    /// (a wrong cookie, a name it does not allow), or the connection dropped.
    NodeDown(String),
    /// A message that cannot be encoded (an atom over 255 characters ...).
    Encode(crate::term::EncodeError),
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistError::Io(e) => write!(f, "i/o error: {e}"),
            DistError::Epmd(why) => write!(f, "epmd: {why}"),
            DistError::BadName(why) => write!(f, "bad node name: {why}"),
            DistError::NoCookie => f.write_str("no cookie given and ~/.erlang.cookie unreadable"),
            DistError::NodeDown(why) => write!(f, "node down: {why}"),
            DistError::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

impl std::error::Error for DistError {}

impl From<std::io::Error> for DistError {
    fn from(e: std::io::Error) -> Self {
        DistError::Io(e)
    }
}

impl From<crate::term::EncodeError> for DistError {
    fn from(e: crate::term::EncodeError) -> Self {
        DistError::Encode(e)
    }
}

/// Why a call to a BEAM process returned no reply: the errors of a local arbor call, plus
/// the ones only a network has.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RemoteCallError {
    /// No reply before the deadline; a late reply is dropped (it goes to an alias that is
    /// gone, as in OTP 24+).
    Timeout,
    /// No process was registered under the name, or the pid was not alive.
    NoProc,
    /// The server exited before it replied; this is its exit reason.
    Exited(Term),
    /// The node could not be reached, or the connection dropped during the call.
    NodeDown(String),
    /// The request could not be encoded.
    Encode(String),
    /// The reply did not fit the type asked for ([`Node::call_as`](crate::Node::call_as)).
    BadReply(crate::TermError),
}

impl RemoteCallError {
    /// The reason as Elixir would give it: `:timeout`, `:noproc`, `:nodedown`, the exit
    /// reason, `:badarg` for an unencodable request, `{:bad_reply, text}`.
    pub fn to_term(&self) -> Term {
        match self {
            RemoteCallError::Timeout => Term::atom("timeout"),
            RemoteCallError::NoProc => Term::atom("noproc"),
            RemoteCallError::Exited(reason) => reason.clone(),
            RemoteCallError::NodeDown(_) => Term::atom("nodedown"),
            RemoteCallError::Encode(_) => Term::atom("badarg"),
            RemoteCallError::BadReply(e) => Term::tuple([Term::atom("bad_reply"), Term::binary(e.to_string())]),
        }
    }
}

impl fmt::Display for RemoteCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteCallError::Timeout => f.write_str("call timed out"),
            RemoteCallError::NoProc => f.write_str("no such process"),
            RemoteCallError::Exited(r) => write!(f, "server exited: {r}"),
            RemoteCallError::NodeDown(why) => write!(f, "node down: {why}"),
            RemoteCallError::Encode(why) => write!(f, "cannot encode the request: {why}"),
            RemoteCallError::BadReply(e) => write!(f, "unexpected reply: {e}"),
        }
    }
}

impl std::error::Error for RemoteCallError {}
