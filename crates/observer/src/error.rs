//! What can go wrong when an observer starts.

use std::fmt;

/// Why [`Observer::serve`](crate::Observer::serve) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ObserverError {
    /// The address did not parse or resolve to a socket address.
    BadAddress(String),
    /// The address is not a loopback address and no token was set
    /// ([`ObserverBuilder::token`](crate::ObserverBuilder::token)): the page would be open to
    /// the network.
    TokenRequired(std::net::SocketAddr),
    /// A token was set but is empty.
    EmptyToken,
    /// Binding or configuring the socket failed.
    Io(std::io::Error),
    /// The HTTP server could not start.
    Http(String),
}

impl fmt::Display for ObserverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObserverError::BadAddress(a) => write!(f, "not a socket address: {a:?}"),
            ObserverError::TokenRequired(a) => {
                write!(f, "{a} is not a loopback address: serving there requires a token")
            }
            ObserverError::EmptyToken => f.write_str("the token is empty"),
            ObserverError::Io(e) => write!(f, "socket: {e}"),
            ObserverError::Http(e) => write!(f, "http server: {e}"),
        }
    }
}

impl std::error::Error for ObserverError {}

impl From<std::io::Error> for ObserverError {
    fn from(e: std::io::Error) -> Self {
        ObserverError::Io(e)
    }
}
