//! arbor-dist: an arbor node in an Erlang/Elixir cluster, speaking the BEAM's own
//! distribution protocol (no async runtime: blocking I/O on threads of its own).
//!
//! Layers, each one file or folder, each treating the peer as untrusted:
//! - [`term`]: the external term format, pure (bytes ↔ [`Term`]), with hard bounds;
//! - [`convert`]: [`ToTerm`] / [`FromTerm`] for user types, Elixir's conventions;
//!
//! The guide, with an iex session, is `docs/dist.md`.

#![warn(missing_docs, unreachable_pub)]

pub mod convert;
pub mod term;

pub use convert::{field, Bytes, FromTerm, TermError, ToTerm};
pub use term::{Atom, BigInt, ExtPid, ExtPort, ExtRef, Term};
