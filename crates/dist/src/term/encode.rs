//! [`Term`]s to ETF bytes.
//!
//! Always the modern forms (UTF-8 atoms, `NEW_PID_EXT`, `NEWER_REFERENCE_EXT`,
//! `V4_PORT_EXT`, `NEW_FLOAT_EXT`) that every OTP 23+ node reads. The only failures are
//! values the format cannot carry: an atom over 255 characters, a length over 2^32 - 1.

use super::decode::*;
use super::{Atom, Term};
use std::fmt;

/// A term that the external format cannot carry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// An atom longer than 255 characters.
    AtomTooLong(usize),
    /// A binary, list, tuple or map longer than 2^32 - 1.
    TooLong,
    /// A bitstring whose bit count is not 1..=7, or that has no bytes.
    BadBitstring,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::AtomTooLong(n) => write!(f, "atom of {n} characters (the limit is 255)"),
            EncodeError::TooLong => f.write_str("length over 2^32 - 1"),
            EncodeError::BadBitstring => f.write_str("bitstring with a bit count outside 1..=7"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encodes `term` with the version byte first.
///
/// # Errors
///
/// An `EncodeError` for a term the external format cannot carry (an atom too long, say).
pub fn encode(term: &Term) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    encode_into(term, &mut out)?;
    Ok(out)
}

/// Appends `term`, version byte first, to `out`. On error `out` may hold a partial term.
///
/// # Errors
///
/// An `EncodeError` for a term the external format cannot carry (an atom too long, say).
pub fn encode_into(term: &Term, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(VERSION);
    put(term, out)
}

fn len32(n: usize) -> Result<[u8; 4], EncodeError> {
    u32::try_from(n).map(u32::to_be_bytes).map_err(|_| EncodeError::TooLong)
}

pub(crate) fn put_atom(a: &Atom, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let s = a.as_str();
    let len = s.len();
    if len <= 255 {
        out.push(SMALL_ATOM_UTF8_EXT);
        out.push(len as u8);
    } else {
        let chars = s.chars().count();
        if chars > 255 {
            return Err(EncodeError::AtomTooLong(chars));
        }
        out.push(ATOM_UTF8_EXT);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_big(negative: bool, magnitude: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if magnitude.len() <= 255 {
        out.push(SMALL_BIG_EXT);
        out.push(magnitude.len() as u8);
    } else {
        out.push(LARGE_BIG_EXT);
        out.extend_from_slice(&len32(magnitude.len())?);
    }
    out.push(negative as u8);
    out.extend_from_slice(magnitude);
    Ok(())
}

/// Appends a pid (`NEW_PID_EXT`).
/// Appends a reference (`NEWER_REFERENCE_EXT`).
pub(crate) fn put_ref(r: &super::ExtRef, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(NEWER_REFERENCE_EXT);
    out.extend_from_slice(&(r.id.len() as u16).to_be_bytes());
    put_atom(&r.node, out)?;
    out.extend_from_slice(&r.creation.to_be_bytes());
    for w in &r.id {
        out.extend_from_slice(&w.to_be_bytes());
    }
    Ok(())
}

pub(crate) fn put_pid(p: &super::ExtPid, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(NEW_PID_EXT);
    put_atom(&p.node, out)?;
    out.extend_from_slice(&p.id.to_be_bytes());
    out.extend_from_slice(&p.serial.to_be_bytes());
    out.extend_from_slice(&p.creation.to_be_bytes());
    Ok(())
}

/// Appends `term` without the version byte.
pub(crate) fn put(term: &Term, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match term {
        Term::Int(i) => {
            let i = *i;
            if (0..=255).contains(&i) {
                out.push(SMALL_INTEGER_EXT);
                out.push(i as u8);
            } else if i32::try_from(i).is_ok() {
                out.push(INTEGER_EXT);
                out.extend_from_slice(&(i as i32).to_be_bytes());
            } else {
                let m = i.unsigned_abs().to_le_bytes();
                let n = 8 - m.iter().rev().take_while(|b| **b == 0).count();
                put_big(i < 0, &m[..n], out)?;
            }
        }
        Term::BigInt(b) => {
            let n = b.magnitude.len() - b.magnitude.iter().rev().take_while(|x| **x == 0).count();
            put_big(b.negative && n > 0, &b.magnitude[..n], out)?;
        }
        Term::Float(f) => {
            out.push(NEW_FLOAT_EXT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Term::Atom(a) => put_atom(a, out)?,
        Term::Binary(b) => {
            out.push(BINARY_EXT);
            out.extend_from_slice(&len32(b.len())?);
            out.extend_from_slice(b);
        }
        Term::BitBinary(b, bits) => {
            if b.is_empty() || !(1..=7).contains(bits) {
                return Err(EncodeError::BadBitstring);
            }
            out.push(BIT_BINARY_EXT);
            out.extend_from_slice(&len32(b.len())?);
            out.push(*bits);
            out.extend_from_slice(b);
        }
        Term::List(items) => {
            if !items.is_empty() {
                out.push(LIST_EXT);
                out.extend_from_slice(&len32(items.len())?);
                for t in items {
                    put(t, out)?;
                }
            }
            out.push(NIL_EXT);
        }
        Term::ImproperList(b) => {
            let (items, tail) = &**b;
            out.push(LIST_EXT);
            out.extend_from_slice(&len32(items.len())?);
            for t in items {
                put(t, out)?;
            }
            put(tail, out)?;
        }
        Term::Tuple(items) => {
            if items.len() <= 255 {
                out.push(SMALL_TUPLE_EXT);
                out.push(items.len() as u8);
            } else {
                out.push(LARGE_TUPLE_EXT);
                out.extend_from_slice(&len32(items.len())?);
            }
            for t in items {
                put(t, out)?;
            }
        }
        Term::Map(pairs) => {
            out.push(MAP_EXT);
            out.extend_from_slice(&len32(pairs.len())?);
            for (k, v) in pairs {
                put(k, out)?;
                put(v, out)?;
            }
        }
        Term::Pid(p) => put_pid(p, out)?,
        Term::Ref(r) => put_ref(r, out)?,
        Term::Port(p) => {
            out.push(V4_PORT_EXT);
            put_atom(&p.node, out)?;
            out.extend_from_slice(&p.id.to_be_bytes());
            out.extend_from_slice(&p.creation.to_be_bytes());
        }
        Term::Fun(raw) => out.extend_from_slice(raw),
    }
    Ok(())
}
