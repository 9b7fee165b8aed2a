//! arbor-dist: an arbor node in an Erlang/Elixir cluster, speaking the BEAM's own
//! distribution protocol (no async runtime: blocking I/O on threads of its own).
//!
//! ```no_run
//! use arbor_dist::{Node, Term};
//! use std::time::Duration;
//!
//! let rt = arbor_core::Runtime::new().unwrap();
//! let node = Node::builder("arbor@127.0.0.1").cookie("secret").start(rt.handle()).unwrap();
//! // GenServer.call({:kv, :"elixir@127.0.0.1"}, {:get, "a"}) from arbor:
//! let reply = node.call(("kv", "elixir@127.0.0.1"), &(Term::atom("get"), "a"), Duration::from_secs(5));
//! ```
//!
//! Layers, each its own file, each treating the peer as untrusted input:
//! - [`term`]: the external term format, pure (bytes ↔ [`Term`]), with hard bounds;
//! - [`convert`]: [`ToTerm`] / [`FromTerm`] for user types, Elixir's conventions;
//! - the connection: epmd client, handshake, framing and ticks (one file each);
//! - the node: routing to arbor processes, monitor and link tables, on arbor-core's
//!   public API only.
//!
//! The guide, with an iex session, is `docs/dist.md`.

#![warn(missing_docs, unreachable_pub)]

mod api;
mod conn;
mod control;
pub mod convert;
mod epmd;
mod epmd_server;
mod error;
mod handshake;
mod md5;
mod node;
mod reason;
mod routing;
pub mod term;

pub use api::{Dest, Node, NodeMonitor, RemoteMonitor};
pub use convert::{field, Bytes, FromTerm, TermError, ToTerm};
pub use epmd_server::EmbeddedEpmd;
pub use error::{DistError, RemoteCallError};
pub use node::Builder;
pub use reason::{exit_to_term, term_to_exit};
pub use term::{Atom, BigInt, ExtPid, ExtPort, ExtRef, Term};

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod reader_cost;
#[cfg(test)]
mod route_memo_tests;
#[cfg(test)]
mod test_peer;
