//! ETF bytes to [`Term`]s, for bytes a peer chose.
//!
//! Invariants that keep a hostile peer from hurting the node:
//! - no count read from the input reserves memory before the bytes it announces are known
//!   to be there: every element takes at least one byte, so a count larger than the bytes
//!   left is an error before any allocation (the decoded term is thus bounded by a small
//!   multiple of the frame, which the connection bounds in turn);
//! - nesting is bounded ([`DecodeLimits::max_depth`]), so recursion cannot overflow the
//!   stack;
//! - every malformed input is a [`DecodeError`]; nothing here panics;
//! - compressed terms and the atom cache are refused (arbor never negotiates them), so
//!   there is no decompression bomb to defuse.

use super::{Atom, BigInt, ExtPid, ExtPort, ExtRef, Term};
use std::fmt;

pub(crate) const VERSION: u8 = 131;

pub(crate) const NEW_FLOAT_EXT: u8 = 70;
pub(crate) const BIT_BINARY_EXT: u8 = 77;
const COMPRESSED: u8 = 80;
const ATOM_CACHE_REF: u8 = 82;
pub(crate) const NEW_PID_EXT: u8 = 88;
const NEW_PORT_EXT: u8 = 89;
pub(crate) const NEWER_REFERENCE_EXT: u8 = 90;
pub(crate) const SMALL_INTEGER_EXT: u8 = 97;
pub(crate) const INTEGER_EXT: u8 = 98;
const FLOAT_EXT: u8 = 99;
const ATOM_EXT: u8 = 100;
const REFERENCE_EXT: u8 = 101;
const PORT_EXT: u8 = 102;
const PID_EXT: u8 = 103;
pub(crate) const SMALL_TUPLE_EXT: u8 = 104;
pub(crate) const LARGE_TUPLE_EXT: u8 = 105;
pub(crate) const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
pub(crate) const LIST_EXT: u8 = 108;
pub(crate) const BINARY_EXT: u8 = 109;
pub(crate) const SMALL_BIG_EXT: u8 = 110;
pub(crate) const LARGE_BIG_EXT: u8 = 111;
const NEW_FUN_EXT: u8 = 112;
const EXPORT_EXT: u8 = 113;
const NEW_REFERENCE_EXT: u8 = 114;
const SMALL_ATOM_EXT: u8 = 115;
pub(crate) const MAP_EXT: u8 = 116;
const FUN_EXT: u8 = 117;
pub(crate) const ATOM_UTF8_EXT: u8 = 118;
pub(crate) const SMALL_ATOM_UTF8_EXT: u8 = 119;
pub(crate) const V4_PORT_EXT: u8 = 120;
const LOCAL_EXT: u8 = 121;

/// Bounds the decoder keeps beyond those the input's length imposes.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Deepest nesting of tuples, lists and maps accepted (default 128; the reader threads' stacks are sized for it).
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_depth: 128 }
    }
}

/// Why bytes are not a term.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a term.
    Truncated,
    /// The first byte is not the format's version (131).
    BadVersion(u8),
    /// A tag this decoder does not know, or refuses (compressed terms, the atom cache,
    /// the old fun format, local terms).
    UnsupportedTag(u8),
    /// A count or length announces more than the input holds.
    LengthTooLarge,
    /// Nesting deeper than [`DecodeLimits::max_depth`].
    TooDeep,
    /// An atom that is not valid UTF-8, or too long.
    BadAtom,
    /// Something else malformed (a pid whose node is not an atom, a float that is not a
    /// number, ...).
    Malformed(&'static str),
    /// Bytes left over after a complete term.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("term truncated"),
            DecodeError::BadVersion(v) => write!(f, "bad term format version {v}"),
            DecodeError::UnsupportedTag(t) => write!(f, "unsupported term tag {t}"),
            DecodeError::LengthTooLarge => f.write_str("a length exceeds the input"),
            DecodeError::TooDeep => f.write_str("term nested too deeply"),
            DecodeError::BadAtom => f.write_str("malformed atom"),
            DecodeError::Malformed(what) => write!(f, "malformed term: {what}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes after the term"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one whole term (version byte first); bytes after it are an error.
///
/// # Errors
///
/// A `DecodeError` for a malformed, truncated, oversized or unsupported term.
pub fn decode(bytes: &[u8]) -> Result<Term, DecodeError> {
    let (term, used) = decode_prefix(bytes, DecodeLimits::default())?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(term)
}

/// Decodes the term at the start of `bytes` (version byte first) and returns it with the
/// number of bytes it took: how a distribution frame's control message and payload are
/// read one after the other.
///
/// # Errors
///
/// A `DecodeError` for a malformed, truncated or unsupported term, or one past `limits`.
pub fn decode_prefix(bytes: &[u8], limits: DecodeLimits) -> Result<(Term, usize), DecodeError> {
    let mut d = Decoder {
        buf: bytes,
        pos: 0,
        limits,
    };
    let v = d.u8()?;
    if v != VERSION {
        return Err(DecodeError::BadVersion(v));
    }
    let t = d.term(0)?;
    Ok((t, d.pos))
}

/// Decodes the tuple of `N` elements at the start of `bytes` (version byte first) into an
/// array, with the number of bytes it took: `decode_prefix` for a control message of a
/// known arity, without the tuple's vector. `None` if `bytes` does not start with a
/// small tuple of `N` elements (the caller then decodes it the general way).
pub(crate) fn decode_tuple_prefix<const N: usize>(
    bytes: &[u8],
    limits: DecodeLimits,
) -> Option<Result<([Term; N], usize), DecodeError>> {
    if bytes.len() < 3 || bytes[0] != VERSION || bytes[1] != SMALL_TUPLE_EXT || bytes[2] as usize != N {
        return None;
    }
    let mut d = Decoder {
        buf: bytes,
        pos: 3,
        limits,
    };
    // As `tuple` checks: each element takes a byte at least.
    if let Err(e) = d.count(N, 1) {
        return Some(Err(e));
    }
    let mut err = None;
    let elements: [Term; N] = std::array::from_fn(|_| {
        if err.is_some() {
            return Term::Int(0);
        }
        d.term(1).unwrap_or_else(|e| {
            err = Some(e);
            Term::Int(0)
        })
    });
    Some(match err {
        Some(e) => Err(e),
        None => Ok((elements, d.pos)),
    })
}

/// Decodes a cast, `{'$gen_cast', Req}`, at the start of `bytes` (version byte first)
/// into `Req`, with the number of bytes it took: `decode_prefix` for a cast's payload,
/// without the tuple's vector or the tag's atom. `None` if `bytes` does not start with
/// a small tuple of two whose first element is the atom `'$gen_cast'` (in any of the
/// atom encodings).
pub(crate) fn decode_cast_prefix(bytes: &[u8], limits: DecodeLimits) -> Option<Result<(Term, usize), DecodeError>> {
    const TAG: &[u8; 9] = b"$gen_cast";
    if bytes.len() < 3 || bytes[0] != VERSION || bytes[1] != SMALL_TUPLE_EXT || bytes[2] != 2 {
        return None;
    }
    let header = match *bytes.get(3)? {
        SMALL_ATOM_UTF8_EXT | SMALL_ATOM_EXT => 5,
        ATOM_UTF8_EXT | ATOM_EXT => 6,
        _ => return None,
    };
    if bytes.get(header - 1) != Some(&(TAG.len() as u8))
        || (header == 6 && bytes[4] != 0)
        || bytes.get(header..).and_then(|b| b.first_chunk::<9>()) != Some(TAG)
    {
        return None;
    }
    let mut d = Decoder {
        buf: bytes,
        pos: header + TAG.len(),
        limits,
    };
    // The request is the tuple's element: at depth 1, as `tuple` reads it.
    Some(d.term(1).map(|t| (t, d.pos)))
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: DecodeLimits,
}

impl<'a> Decoder<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A count of items of at least `min_bytes` each, checked against the input left.
    fn count(&mut self, n: usize, min_bytes: usize) -> Result<usize, DecodeError> {
        if n.saturating_mul(min_bytes) > self.left() {
            return Err(DecodeError::LengthTooLarge);
        }
        Ok(n)
    }

    fn term(&mut self, depth: usize) -> Result<Term, DecodeError> {
        if depth > self.limits.max_depth {
            return Err(DecodeError::TooDeep);
        }
        let start = self.pos;
        let tag = self.u8()?;
        Ok(match tag {
            SMALL_INTEGER_EXT => Term::Int(self.u8()? as i64),
            INTEGER_EXT => Term::Int(self.u32()? as i32 as i64),
            SMALL_BIG_EXT => {
                let n = self.u8()? as usize;
                self.big(n)?
            }
            LARGE_BIG_EXT => {
                let n = self.u32()? as usize;
                self.big(n)?
            }
            NEW_FLOAT_EXT => Term::Float(f64::from_bits(self.u64()?)),
            FLOAT_EXT => {
                let raw = self.take(31)?;
                let text = std::str::from_utf8(raw).map_err(|_| DecodeError::Malformed("float text"))?;
                let text = text.trim_end_matches('\0').trim();
                Term::Float(text.parse().map_err(|_| DecodeError::Malformed("float text"))?)
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => Term::Atom(self.atom_body(tag)?),
            SMALL_TUPLE_EXT => {
                let n = self.u8()? as usize;
                self.tuple(n, depth)?
            }
            LARGE_TUPLE_EXT => {
                let n = self.u32()? as usize;
                self.tuple(n, depth)?
            }
            NIL_EXT => Term::List(Vec::new()),
            STRING_EXT => {
                let n = self.u16()? as usize;
                let bytes = self.take(n)?;
                Term::List(bytes.iter().map(|b| Term::Int(*b as i64)).collect())
            }
            LIST_EXT => {
                let n = self.u32()? as usize;
                // n elements plus the tail
                let n = self.count(n, 1)?;
                let mut elements = Vec::with_capacity(n);
                for _ in 0..n {
                    elements.push(self.term(depth + 1)?);
                }
                match self.term(depth + 1)? {
                    Term::List(tail) if tail.is_empty() => Term::List(elements),
                    Term::List(tail) => {
                        // A list tail that is itself a list: flatten (the BEAM never sends
                        // this, but it is a proper list all the same).
                        elements.extend(tail);
                        Term::List(elements)
                    }
                    Term::ImproperList(b) => {
                        let (rest, last) = *b;
                        elements.extend(rest);
                        Term::ImproperList(Box::new((elements, last)))
                    }
                    last => Term::ImproperList(Box::new((elements, last))),
                }
            }
            BINARY_EXT => {
                let n = self.u32()? as usize;
                let n = self.count(n, 1)?;
                Term::Binary(self.take(n)?.to_vec())
            }
            BIT_BINARY_EXT => {
                let n = self.u32()? as usize;
                let bits = self.u8()?;
                let n = self.count(n, 1)?;
                let data = self.take(n)?.to_vec();
                match (n, bits) {
                    (0, _) => return Err(DecodeError::Malformed("empty bitstring with a bit count")),
                    (_, 8) => Term::Binary(data),
                    (_, 1..=7) => Term::BitBinary(data, bits),
                    _ => return Err(DecodeError::Malformed("bit count")),
                }
            }
            MAP_EXT => {
                let n = self.u32()? as usize;
                let n = self.count(n, 2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.term(depth + 1)?;
                    let v = self.term(depth + 1)?;
                    pairs.push((k, v));
                }
                Term::Map(pairs)
            }
            NEW_PID_EXT | PID_EXT => {
                let node = self.node_atom()?;
                let id = self.u32()?;
                let serial = self.u32()?;
                let creation = if tag == NEW_PID_EXT {
                    self.u32()?
                } else {
                    self.u8()? as u32
                };
                Term::Pid(ExtPid {
                    node,
                    id,
                    serial,
                    creation,
                })
            }
            V4_PORT_EXT | NEW_PORT_EXT | PORT_EXT => {
                let node = self.node_atom()?;
                let id = if tag == V4_PORT_EXT {
                    self.u64()?
                } else {
                    self.u32()? as u64
                };
                let creation = if tag == PORT_EXT {
                    self.u8()? as u32
                } else {
                    self.u32()?
                };
                Term::Port(ExtPort { node, id, creation })
            }
            NEWER_REFERENCE_EXT | NEW_REFERENCE_EXT => {
                let n = self.u16()? as usize;
                if n == 0 || n > 5 {
                    return Err(DecodeError::Malformed("reference length"));
                }
                let node = self.node_atom()?;
                let creation = if tag == NEWER_REFERENCE_EXT {
                    self.u32()?
                } else {
                    self.u8()? as u32
                };
                let mut id = Vec::with_capacity(n);
                for _ in 0..n {
                    id.push(self.u32()?);
                }
                Term::Ref(Box::new(ExtRef { node, creation, id }))
            }
            REFERENCE_EXT => {
                let node = self.node_atom()?;
                let id = self.u32()?;
                let creation = self.u8()? as u32;
                Term::Ref(Box::new(ExtRef {
                    node,
                    creation,
                    id: vec![id],
                }))
            }
            NEW_FUN_EXT => {
                let size = self.u32()? as usize;
                if size < 4 {
                    return Err(DecodeError::Malformed("fun size"));
                }
                self.count(size - 4, 1)?;
                self.take(size - 4)?;
                Term::Fun(self.buf[start..self.pos].to_vec())
            }
            EXPORT_EXT => {
                self.term(depth + 1)?;
                self.term(depth + 1)?;
                self.term(depth + 1)?;
                Term::Fun(self.buf[start..self.pos].to_vec())
            }
            COMPRESSED | ATOM_CACHE_REF | FUN_EXT | LOCAL_EXT => return Err(DecodeError::UnsupportedTag(tag)),
            other => return Err(DecodeError::UnsupportedTag(other)),
        })
    }

    fn big(&mut self, n: usize) -> Result<Term, DecodeError> {
        let sign = self.u8()?;
        let n = self.count(n, 1)?;
        let digits = self.take(n)?;
        let negative = match sign {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Malformed("bignum sign")),
        };
        let mut magnitude = digits.to_vec();
        while magnitude.last() == Some(&0) {
            magnitude.pop();
        }
        if magnitude.len() <= 8 {
            let m = magnitude
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, b)| m | (*b as u64) << (8 * i));
            if !negative && m <= i64::MAX as u64 {
                return Ok(Term::Int(m as i64));
            }
            if negative && m <= i64::MAX as u64 + 1 {
                return Ok(Term::Int((m as i64).wrapping_neg()));
            }
        }
        Ok(Term::BigInt(BigInt {
            negative: negative && !magnitude.is_empty(),
            magnitude,
        }))
    }

    fn tuple(&mut self, n: usize, depth: usize) -> Result<Term, DecodeError> {
        let n = self.count(n, 1)?;
        let mut elements = Vec::with_capacity(n);
        for _ in 0..n {
            elements.push(self.term(depth + 1)?);
        }
        Ok(Term::Tuple(elements))
    }

    fn node_atom(&mut self) -> Result<Atom, DecodeError> {
        let tag = self.u8()?;
        match tag {
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => self.atom_body(tag),
            _ => Err(DecodeError::Malformed("node is not an atom")),
        }
    }

    fn atom_body(&mut self, tag: u8) -> Result<Atom, DecodeError> {
        let n = match tag {
            ATOM_EXT | ATOM_UTF8_EXT => self.u16()? as usize,
            _ => self.u8()? as usize,
        };
        let bytes = self.take(n)?;
        let name = match tag {
            ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                // The same bytes as an atom decoded before are that atom: no need to
                // validate them again.
                if let Some(a) = cached_utf8(bytes) {
                    return Ok(a);
                }
                let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::BadAtom)?;
                // (a character is at least a byte: only a long atom can have too many)
                if s.len() > 255 && s.chars().count() > 255 {
                    return Err(DecodeError::BadAtom);
                }
                cached_atom(s)
            }
            // Latin-1: each byte is the code point.
            _ => {
                if bytes.is_ascii() {
                    // ASCII is valid UTF-8 as it stands.
                    cached_atom(std::str::from_utf8(bytes).map_err(|_| DecodeError::BadAtom)?)
                } else {
                    Atom::from(bytes.iter().map(|b| *b as char).collect::<String>())
                }
            }
        };
        Ok(name)
    }
}

/// Slots in each thread's cache of decoded atoms.
const ATOM_CACHE: usize = 64;

thread_local! {
    /// The atoms this thread decoded last, by a hash of their text: a stream of messages
    /// repeats the same few (node names, registered names, tags), and a hit costs a
    /// reference count instead of an allocation. Direct-mapped: a fixed 64 slots whatever
    /// a peer sends.
    static ATOMS: std::cell::RefCell<[Option<Atom>; ATOM_CACHE]> =
        const { std::cell::RefCell::new([const { None }; ATOM_CACHE]) };
}

/// The cache's slot for an atom of text `bytes`: a multiplicative hash of its length and
/// its first and last bytes (eight of each, or four, or one: a few loads whatever the
/// length, no copy; atoms that collide only evict each other, and a hit is confirmed by
/// comparing the whole text).
fn atom_slot(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (Some(h), Some(t)) => (u64::from_le_bytes(*h), u64::from_le_bytes(*t)),
        _ => match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            (Some(h), Some(t)) => (u64::from(u32::from_le_bytes(*h)), u64::from(u32::from_le_bytes(*t))),
            _ => match (bytes.first(), bytes.last()) {
                (Some(h), Some(t)) => (u64::from(*h) | u64::from(bytes[n / 2]) << 8, u64::from(*t)),
                _ => (0, 0),
            },
        },
    };
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 58) as usize % ATOM_CACHE
}

/// `a == b`, for an atom's text: up to 16 bytes by two overlapping loads of each (no
/// call to `memcmp`, whose set-up costs more than such a comparison).
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 16 {
        return a == b;
    }
    if let (Some(ah), Some(at), Some(bh), Some(bt)) = (
        a.first_chunk::<8>(),
        a.last_chunk::<8>(),
        b.first_chunk::<8>(),
        b.last_chunk::<8>(),
    ) {
        return ah == bh && at == bt;
    }
    if let (Some(ah), Some(at), Some(bh), Some(bt)) = (
        a.first_chunk::<4>(),
        a.last_chunk::<4>(),
        b.first_chunk::<4>(),
        b.last_chunk::<4>(),
    ) {
        return ah == bh && at == bt;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The cached atom whose text is `bytes` (UTF-8 bytes not yet validated), if there is
/// one: equal bytes are the cached atom's valid text.
fn cached_utf8(bytes: &[u8]) -> Option<Atom> {
    let slot = atom_slot(bytes);
    ATOMS.with(|cache| match &cache.try_borrow().ok()?[slot] {
        Some(a) if same_bytes(a.as_str().as_bytes(), bytes) => Some(a.clone()),
        _ => None,
    })
}

/// The atom with text `s`, from this thread's cache when it is there.
fn cached_atom(s: &str) -> Atom {
    let slot = atom_slot(s.as_bytes());
    ATOMS.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return Atom::interned(s);
        };
        match &cache[slot] {
            Some(a) if same_bytes(a.as_str().as_bytes(), s.as_bytes()) => a.clone(),
            _ => {
                let a = Atom::interned(s);
                cache[slot] = Some(a.clone());
                a
            }
        }
    })
}
