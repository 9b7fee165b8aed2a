//! Erlang terms as Rust values, and the external term format (ETF) that carries them.
//!
//! [`Term`] is the dynamic type: every term a BEAM node can send decodes into one, and
//! every `Term` encodes back to the same bytes' meaning. The codec is pure (bytes in,
//! values out, no sockets) and treats its input as hostile: see [`decode`] for the bounds
//! it keeps.

pub(crate) mod decode;
mod display;
pub(crate) mod encode;

pub use decode::{decode, decode_prefix, DecodeError, DecodeLimits};
pub use encode::{encode, encode_into, EncodeError};

use std::sync::Arc;

/// An atom: Elixir's `:ok`, Erlang's `ok`. Cheap to clone. Equal, hashed and ordered by
/// its text, whatever its representation.
#[derive(Clone)]
pub struct Atom(Repr);

/// An atom's text: most atoms a peer sends (tags, node names, registered names) are in
/// the node's bounded table of decoded atoms ([`intern`]), and cost nothing to clone or
/// drop (no reference count whose cache line would travel between the reader that
/// decodes a message and the worker that drops it); any other atom is a shared string.
#[derive(Clone)]
enum Repr {
    Interned(&'static &'static str),
    Shared(Arc<str>),
}

impl Atom {
    /// The atom with this text. Atoms longer than 255 characters cannot be sent (the BEAM's
    /// limit); encoding one is an error.
    pub fn new(name: &str) -> Atom {
        Atom(Repr::Shared(Arc::from(name)))
    }

    /// The atom with this text, from the table of decoded atoms ([`intern`]) while it has
    /// room, else a shared string.
    pub(crate) fn interned(name: &str) -> Atom {
        match intern(name) {
            Some(text) => Atom(Repr::Interned(text)),
            None => Atom::new(name),
        }
    }

    /// The atom's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Interned(text) => text,
            Repr::Shared(text) => text,
        }
    }

    /// True if the atom's text is in the table of decoded atoms.
    #[cfg(test)]
    pub(crate) fn is_interned(&self) -> bool {
        matches!(self.0, Repr::Interned(_))
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Atom) -> bool {
        match (&self.0, &other.0) {
            // The table holds each text once: two interned atoms are equal if and only if
            // they are the same slot.
            (Repr::Interned(a), Repr::Interned(b)) => std::ptr::eq(*a, *b),
            (Repr::Shared(a), Repr::Shared(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for Atom {}

impl std::hash::Hash for Atom {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Atom) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Atom) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Most atoms the table of decoded atoms holds.
pub(crate) const INTERN_MAX_ATOMS: usize = 4096;

/// Most bytes of text the table of decoded atoms holds.
pub(crate) const INTERN_MAX_BYTES: usize = 128 * 1024;

/// The node-wide table of decoded atoms (the analogue of the BEAM's atom table, but
/// bounded): text to its interned slot. Entries are never removed; past either bound,
/// nothing more is added, and atoms not in it are shared strings that go with their
/// terms, so a peer that sends fresh atoms grows it by at most its bounds.
struct InternTable {
    slots: std::collections::HashMap<&'static str, &'static &'static str>,
    bytes: usize,
}

static INTERNED: parking_lot::Mutex<Option<InternTable>> = parking_lot::Mutex::new(None);

/// The interned slot of `text`, added if the table has room; `None` if it is not there
/// and the table is full. Called by the decoder only when its thread's cache misses.
fn intern(text: &str) -> Option<&'static &'static str> {
    let mut table = INTERNED.lock();
    let table = table.get_or_insert_with(|| InternTable {
        slots: std::collections::HashMap::new(),
        bytes: 0,
    });
    if let Some(slot) = table.slots.get(text) {
        return Some(slot);
    }
    if table.slots.len() >= INTERN_MAX_ATOMS || table.bytes + text.len() > INTERN_MAX_BYTES {
        return None;
    }
    // Leaked on purpose, within the bounds above: an interned atom lives as long as the
    // program, as on the BEAM.
    let text: &'static str = Box::leak(text.into());
    let slot: &'static &'static str = Box::leak(Box::new(text));
    table.slots.insert(text, slot);
    table.bytes += text.len();
    Some(slot)
}

/// Atoms in the table of decoded atoms, and the bytes of their text.
#[cfg(test)]
pub(crate) fn interned_count() -> (usize, usize) {
    INTERNED.lock().as_ref().map_or((0, 0), |t| (t.slots.len(), t.bytes))
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::new(s)
    }
}

impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom(Repr::Shared(Arc::from(s)))
    }
}

impl PartialEq<str> for Atom {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Atom {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A process identifier of any node, as it crosses the wire (`NEW_PID_EXT`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtPid {
    /// The node the process lives on.
    pub node: Atom,
    /// The process's number on that node.
    pub id: u32,
    /// Its serial.
    pub serial: u32,
    /// The node's incarnation: a restarted node has a new creation, so its old pids stay
    /// distinct from its new ones.
    pub creation: u32,
}

/// A reference (`make_ref()`), also used as a process alias.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtRef {
    /// The node that made it.
    pub node: Atom,
    /// The node's incarnation.
    pub creation: u32,
    /// Its words (3 on nodes before OTP 24 or for ordinary refs; up to 5).
    pub id: Vec<u32>,
}

/// A port identifier of another node: carried, never used by arbor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtPort {
    /// The node the port lives on.
    pub node: Atom,
    /// The port's number.
    pub id: u64,
    /// The node's incarnation.
    pub creation: u32,
}

/// An integer outside the range of `i64`: sign and magnitude, the magnitude's bytes least
/// significant first, without trailing zero bytes (the wire's own form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BigInt {
    /// True for a negative number.
    pub negative: bool,
    /// Magnitude, little-endian bytes.
    pub magnitude: Vec<u8>,
}

impl BigInt {
    /// The value as an `i128`, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        if self.magnitude.len() > 16 {
            return None;
        }
        let mut m: u128 = 0;
        for (i, b) in self.magnitude.iter().enumerate() {
            m |= (*b as u128) << (8 * i);
        }
        if self.negative {
            if m <= i128::MAX as u128 + 1 {
                Some((m as i128).wrapping_neg())
            } else {
                None
            }
        } else {
            i128::try_from(m).ok()
        }
    }

    /// The value as a `u128`, if it fits.
    pub fn to_u128(&self) -> Option<u128> {
        if self.negative || self.magnitude.len() > 16 {
            return None;
        }
        Some(
            self.magnitude
                .iter()
                .enumerate()
                .fold(0u128, |m, (i, b)| m | (*b as u128) << (8 * i)),
        )
    }

    /// From sign and magnitude (trailing zero bytes are dropped).
    pub fn from_parts(negative: bool, magnitude: u128) -> BigInt {
        let mut bytes = magnitude.to_le_bytes().to_vec();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        BigInt {
            negative: negative && !bytes.is_empty(),
            magnitude: bytes,
        }
    }
}

/// Any Erlang term.
///
/// Integers that fit in an `i64` are always [`Term::Int`]; larger ones [`Term::BigInt`].
/// A proper list is [`Term::List`] (the empty list, Elixir's `[]`, is `List(vec![])`); a
/// charlist sent in the compact string form also decodes to a list of `Int`s, as in Erlang.
/// Maps keep the order they arrived in; compare them with [`Term::map_get`] rather than
/// by position.
#[derive(Clone, PartialEq)]
pub enum Term {
    /// An integer that fits in 64 bits.
    Int(i64),
    /// An integer beyond 64 bits.
    BigInt(BigInt),
    /// A float.
    Float(f64),
    /// An atom (`true`, `false` and `nil` are atoms too).
    Atom(Atom),
    /// A binary: Elixir's strings are binaries.
    Binary(Vec<u8>),
    /// A bitstring whose last byte holds only `bits` bits (1..=7), high bits first.
    BitBinary(Vec<u8>, u8),
    /// A proper list.
    List(Vec<Term>),
    /// An improper list: elements, then a tail that is not a list.
    ImproperList(Box<(Vec<Term>, Term)>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A map, as key-value pairs.
    Map(Vec<(Term, Term)>),
    /// A process identifier.
    Pid(ExtPid),
    /// A reference.
    Ref(Box<ExtRef>),
    /// A port.
    Port(ExtPort),
    /// A fun (`NEW_FUN_EXT` or `EXPORT_EXT`), kept as its encoded bytes (tag included):
    /// arbor cannot run it, but can hand it back.
    Fun(Vec<u8>),
}

impl Term {
    /// The atom `name`.
    pub fn atom(name: &str) -> Term {
        Term::Atom(Atom::new(name))
    }

    /// A binary holding `s`'s UTF-8 bytes (an Elixir string).
    pub fn binary(s: impl AsRef<[u8]>) -> Term {
        Term::Binary(s.as_ref().to_vec())
    }

    /// A tuple.
    pub fn tuple(elements: impl Into<Vec<Term>>) -> Term {
        Term::Tuple(elements.into())
    }

    /// The atom's text, if this is an atom.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(a) => Some(a.as_str()),
            _ => None,
        }
    }

    /// True if this is the atom `name`.
    pub fn is_atom(&self, name: &str) -> bool {
        self.as_atom() == Some(name)
    }

    /// The tuple's elements, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The value under `key`, if this is a map holding it.
    pub fn map_get(&self, key: &Term) -> Option<&Term> {
        match self {
            Term::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the term's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Term::Int(_) | Term::BigInt(_) => "integer",
            Term::Float(_) => "float",
            Term::Atom(_) => "atom",
            Term::Binary(_) => "binary",
            Term::BitBinary(..) => "bitstring",
            Term::List(_) => "list",
            Term::ImproperList(_) => "improper list",
            Term::Tuple(_) => "tuple",
            Term::Map(_) => "map",
            Term::Pid(_) => "pid",
            Term::Ref(_) => "reference",
            Term::Port(_) => "port",
            Term::Fun(_) => "fun",
        }
    }
}

#[cfg(test)]
mod tests;
