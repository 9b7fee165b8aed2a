//! [`ToTerm`] and [`FromTerm`]: user types to and from [`Term`]s, with Elixir's
//! conventions for the std types.
//!
//! | Rust | Elixir |
//! | --- | --- |
//! | `String`, `&str` | a binary (`"text"`) |
//! | `bool` | `true` / `false` |
//! | `()` | `:ok` |
//! | `Option<T>` | `nil` or the value |
//! | `Result<T, E>` | `{:ok, t}` / `{:error, e}` |
//! | integers, `f64`, `f32` | integers (big ones too, up to 128 bits), floats |
//! | tuples up to 8 | tuples |
//! | `Vec<T>` | a list |
//! | `HashMap`, `BTreeMap` | a map |
//! | [`Atom`], [`ExtPid`], [`ExtRef`], [`Term`] | themselves |
//! | [`Bytes`] | a binary of arbitrary bytes |
//!
//! A term that does not fit the asked type is a [`TermError`], never a panic.

use crate::term::{Atom, BigInt, ExtPid, ExtRef, Term};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;

/// A term that does not fit the type asked of it.
#[derive(Clone, Debug, PartialEq)]
pub struct TermError {
    /// What was expected ("a binary", "a 2-tuple", "one of :put, :get").
    pub expected: String,
    /// What came, as Elixir would print it (cut at 200 characters).
    pub got: String,
}

impl TermError {
    /// `expected` what `got` is not.
    pub fn new(expected: impl Into<String>, got: &Term) -> TermError {
        let mut got = got.to_string();
        if got.len() > 200 {
            let mut cut = 200;
            while !got.is_char_boundary(cut) {
                cut -= 1;
            }
            got.truncate(cut);
            got.push_str("...");
        }
        TermError {
            expected: expected.into(),
            got,
        }
    }
}

impl fmt::Display for TermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, got {}", self.expected, self.got)
    }
}

impl std::error::Error for TermError {}

/// A value that can be sent to the BEAM.
pub trait ToTerm {
    /// The value as a term.
    fn to_term(&self) -> Term;

    /// Appends the value in the external term format (without the version byte) to
    /// `out`: how it is sent. The default encodes [`ToTerm::to_term`]'s term; [`Term`]
    /// writes itself, without a copy.
    ///
    /// # Errors
    ///
    /// An `EncodeError` for a value the external format cannot carry (an atom too long).
    fn encode_term(&self, out: &mut Vec<u8>) -> Result<(), crate::term::EncodeError> {
        crate::term::encode::put(&self.to_term(), out)
    }
}

/// A value that can be read from a term a BEAM node sent.
pub trait FromTerm: Sized {
    /// The value, or why `term` does not fit.
    ///
    /// # Errors
    ///
    /// A `TermError` saying what was expected and what came.
    fn from_term(term: Term) -> Result<Self, TermError>;
}

/// A binary of arbitrary bytes (`Vec<u8>` itself is a list of integers, as any `Vec`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl ToTerm for Term {
    fn to_term(&self) -> Term {
        self.clone()
    }

    fn encode_term(&self, out: &mut Vec<u8>) -> Result<(), crate::term::EncodeError> {
        crate::term::encode::put(self, out)
    }
}

impl FromTerm for Term {
    fn from_term(term: Term) -> Result<Self, TermError> {
        Ok(term)
    }
}

impl<T: ToTerm + ?Sized> ToTerm for &T {
    fn to_term(&self) -> Term {
        (**self).to_term()
    }
}

impl<T: ToTerm + ?Sized> ToTerm for Box<T> {
    fn to_term(&self) -> Term {
        (**self).to_term()
    }
}

impl<T: FromTerm> FromTerm for Box<T> {
    fn from_term(term: Term) -> Result<Self, TermError> {
        T::from_term(term).map(Box::new)
    }
}

impl ToTerm for Atom {
    fn to_term(&self) -> Term {
        Term::Atom(self.clone())
    }
}

impl FromTerm for Atom {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Atom(a) => Ok(a),
            other => Err(TermError::new("an atom", &other)),
        }
    }
}

impl ToTerm for ExtPid {
    fn to_term(&self) -> Term {
        Term::Pid(self.clone())
    }
}

impl FromTerm for ExtPid {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Pid(p) => Ok(p),
            other => Err(TermError::new("a pid", &other)),
        }
    }
}

impl ToTerm for ExtRef {
    fn to_term(&self) -> Term {
        Term::Ref(Box::new(self.clone()))
    }
}

impl FromTerm for ExtRef {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Ref(r) => Ok(*r),
            other => Err(TermError::new("a reference", &other)),
        }
    }
}

impl ToTerm for str {
    fn to_term(&self) -> Term {
        Term::Binary(self.as_bytes().to_vec())
    }
}

impl ToTerm for String {
    fn to_term(&self) -> Term {
        self.as_str().to_term()
    }
}

impl FromTerm for String {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Binary(b) => {
                String::from_utf8(b).map_err(|e| TermError::new("a UTF-8 binary", &Term::Binary(e.into_bytes())))
            }
            other => Err(TermError::new("a binary (string)", &other)),
        }
    }
}

impl ToTerm for Bytes {
    fn to_term(&self) -> Term {
        Term::Binary(self.0.clone())
    }
}

impl FromTerm for Bytes {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Binary(b) => Ok(Bytes(b)),
            other => Err(TermError::new("a binary", &other)),
        }
    }
}

impl ToTerm for bool {
    fn to_term(&self) -> Term {
        Term::atom(if *self { "true" } else { "false" })
    }
}

impl FromTerm for bool {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term.as_atom() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(TermError::new("a boolean", &term)),
        }
    }
}

impl ToTerm for () {
    fn to_term(&self) -> Term {
        Term::atom("ok")
    }
}

impl FromTerm for () {
    fn from_term(term: Term) -> Result<Self, TermError> {
        if term.is_atom("ok") {
            Ok(())
        } else {
            Err(TermError::new(":ok", &term))
        }
    }
}

macro_rules! small_ints {
    ($($t:ty),*) => {$(
        impl ToTerm for $t {
            fn to_term(&self) -> Term {
                Term::Int(*self as i64)
            }
        }
        impl FromTerm for $t {
            fn from_term(term: Term) -> Result<Self, TermError> {
                match term {
                    Term::Int(i) => <$t>::try_from(i).map_err(|_| TermError::new(concat!("an integer in the range of ", stringify!($t)), &term)),
                    other => Err(TermError::new(concat!("an integer (", stringify!($t), ")"), &other)),
                }
            }
        }
    )*};
}
small_ints!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! wide_ints {
    ($($t:ty),*) => {$(
        impl ToTerm for $t {
            fn to_term(&self) -> Term {
                match i64::try_from(*self) {
                    Ok(i) => Term::Int(i),
                    Err(_) => {
                        let v = *self as i128;
                        Term::BigInt(BigInt::from_parts(v < 0, v.unsigned_abs()))
                    }
                }
            }
        }
        impl FromTerm for $t {
            fn from_term(term: Term) -> Result<Self, TermError> {
                let wide: Option<i128> = match &term {
                    Term::Int(i) => Some(*i as i128),
                    Term::BigInt(b) => b.to_i128(),
                    _ => None,
                };
                wide.and_then(|w| <$t>::try_from(w).ok())
                    .ok_or_else(|| TermError::new(concat!("an integer in the range of ", stringify!($t)), &term))
            }
        }
    )*};
}
wide_ints!(u64, usize, isize, i128);

impl ToTerm for u128 {
    fn to_term(&self) -> Term {
        match i64::try_from(*self) {
            Ok(i) => Term::Int(i),
            Err(_) => Term::BigInt(BigInt::from_parts(false, *self)),
        }
    }
}

impl FromTerm for u128 {
    fn from_term(term: Term) -> Result<Self, TermError> {
        let v = match &term {
            Term::Int(i) => u128::try_from(*i).ok(),
            Term::BigInt(b) => b.to_u128(),
            _ => None,
        };
        v.ok_or_else(|| TermError::new("an integer in the range of u128", &term))
    }
}

impl ToTerm for f64 {
    fn to_term(&self) -> Term {
        Term::Float(*self)
    }
}

impl FromTerm for f64 {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Float(f) => Ok(f),
            other => Err(TermError::new("a float", &other)),
        }
    }
}

impl ToTerm for f32 {
    fn to_term(&self) -> Term {
        Term::Float(*self as f64)
    }
}

impl FromTerm for f32 {
    fn from_term(term: Term) -> Result<Self, TermError> {
        f64::from_term(term).map(|f| f as f32)
    }
}

impl<T: ToTerm> ToTerm for Option<T> {
    fn to_term(&self) -> Term {
        match self {
            None => Term::atom("nil"),
            Some(v) => v.to_term(),
        }
    }
}

impl<T: FromTerm> FromTerm for Option<T> {
    fn from_term(term: Term) -> Result<Self, TermError> {
        if term.is_atom("nil") {
            Ok(None)
        } else {
            T::from_term(term).map(Some)
        }
    }
}

impl<T: ToTerm, E: ToTerm> ToTerm for Result<T, E> {
    fn to_term(&self) -> Term {
        match self {
            Ok(v) => Term::Tuple(vec![Term::atom("ok"), v.to_term()]),
            Err(e) => Term::Tuple(vec![Term::atom("error"), e.to_term()]),
        }
    }
}

impl<T: FromTerm, E: FromTerm> FromTerm for Result<T, E> {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Tuple(mut t) if t.len() == 2 && (t[0].is_atom("ok") || t[0].is_atom("error")) => {
                let v = t.pop().unwrap_or(Term::List(Vec::new()));
                if t[0].is_atom("ok") {
                    T::from_term(v).map(Ok)
                } else {
                    E::from_term(v).map(Err)
                }
            }
            other => Err(TermError::new("{:ok, value} or {:error, reason}", &other)),
        }
    }
}

impl<T: ToTerm> ToTerm for [T] {
    fn to_term(&self) -> Term {
        Term::List(self.iter().map(ToTerm::to_term).collect())
    }
}

impl<T: ToTerm> ToTerm for Vec<T> {
    fn to_term(&self) -> Term {
        self.as_slice().to_term()
    }
}

impl<T: FromTerm> FromTerm for Vec<T> {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::List(items) => items.into_iter().map(T::from_term).collect(),
            other => Err(TermError::new("a list", &other)),
        }
    }
}

impl<K: ToTerm, V: ToTerm, S> ToTerm for HashMap<K, V, S> {
    fn to_term(&self) -> Term {
        Term::Map(self.iter().map(|(k, v)| (k.to_term(), v.to_term())).collect())
    }
}

impl<K: FromTerm + Eq + Hash, V: FromTerm> FromTerm for HashMap<K, V> {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Map(pairs) => pairs
                .into_iter()
                .map(|(k, v)| Ok((K::from_term(k)?, V::from_term(v)?)))
                .collect(),
            other => Err(TermError::new("a map", &other)),
        }
    }
}

impl<K: ToTerm, V: ToTerm> ToTerm for BTreeMap<K, V> {
    fn to_term(&self) -> Term {
        Term::Map(self.iter().map(|(k, v)| (k.to_term(), v.to_term())).collect())
    }
}

impl<K: FromTerm + Ord, V: FromTerm> FromTerm for BTreeMap<K, V> {
    fn from_term(term: Term) -> Result<Self, TermError> {
        match term {
            Term::Map(pairs) => pairs
                .into_iter()
                .map(|(k, v)| Ok((K::from_term(k)?, V::from_term(v)?)))
                .collect(),
            other => Err(TermError::new("a map", &other)),
        }
    }
}

macro_rules! tuples {
    ($( $n:literal => ($($name:ident),+) ),* $(,)?) => {$(
        impl<$($name: ToTerm),+> ToTerm for ($($name,)+) {
            #[allow(non_snake_case)]
            fn to_term(&self) -> Term {
                let ($($name,)+) = self;
                Term::Tuple(vec![$($name.to_term()),+])
            }
        }
        impl<$($name: FromTerm),+> FromTerm for ($($name,)+) {
            fn from_term(term: Term) -> Result<Self, TermError> {
                match term {
                    Term::Tuple(items) if items.len() == $n => {
                        let mut it = items.into_iter();
                        Ok(($($name::from_term(it.next().unwrap_or(Term::List(Vec::new())))?,)+))
                    }
                    other => Err(TermError::new(concat!("a ", $n, "-tuple"), &other)),
                }
            }
        }
    )*};
}

tuples! {
    1 => (A),
    2 => (A, B),
    3 => (A, B, C),
    4 => (A, B, C, D),
    5 => (A, B, C, D, E),
    6 => (A, B, C, D, E, F),
    7 => (A, B, C, D, E, F, G),
    8 => (A, B, C, D, E, F, G, H),
}

/// Reads the value under the atom key `key` of a map term: the building block of
/// hand-written [`FromTerm`] impls for structs (see [`term_struct!`](crate::term_struct)).
///
/// # Errors
///
/// A `TermError` if `map` is not a map, has no such key, or its value does not fit a `T`.
pub fn field<T: FromTerm>(map: &Term, key: &str) -> Result<T, TermError> {
    match map {
        Term::Map(pairs) => match pairs.iter().find(|(k, _)| k.is_atom(key)) {
            Some((_, v)) => T::from_term(v.clone()).map_err(|e| TermError {
                expected: format!("{} in field {key}", e.expected),
                got: e.got,
            }),
            None => Err(TermError::new(format!("a map with the key :{key}"), map)),
        },
        other => Err(TermError::new("a map", other)),
    }
}

/// Implements [`ToTerm`] and [`FromTerm`] for a struct with named fields, as an atom-keyed
/// map, or as an Elixir struct when a module name is given (`%MyApp.User{...}`: the map gets
/// the `__struct__` key, and reading checks it).
///
/// A proc-macro derive would need a crate of its own (a proc-macro crate) and `syn`;
/// this declarative macro covers the same ground for structs without either, as
/// [`term_enum!`](crate::term_enum) does for enums.
///
/// ```
/// use arbor_dist::{term_struct, FromTerm, ToTerm, Term};
///
/// #[derive(Debug, PartialEq)]
/// struct User { name: String, age: u32 }
/// term_struct!(User as "Elixir.MyApp.User" { name, age });
///
/// let t = User { name: "ana".into(), age: 41 }.to_term();
/// assert_eq!(t.map_get(&Term::atom("__struct__")), Some(&Term::atom("Elixir.MyApp.User")));
/// assert_eq!(User::from_term(t).unwrap(), User { name: "ana".into(), age: 41 });
/// ```
#[macro_export]
macro_rules! term_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::ToTerm for $ty {
            fn to_term(&self) -> $crate::Term {
                $crate::Term::Map(vec![$( ($crate::Term::atom(stringify!($field)), $crate::ToTerm::to_term(&self.$field)) ),*])
            }
        }
        impl $crate::FromTerm for $ty {
            fn from_term(term: $crate::Term) -> Result<Self, $crate::TermError> {
                Ok($ty { $( $field: $crate::field(&term, stringify!($field))? ),* })
            }
        }
    };
    ($ty:ident as $module:literal { $($field:ident),* $(,)? }) => {
        impl $crate::ToTerm for $ty {
            fn to_term(&self) -> $crate::Term {
                $crate::Term::Map(vec![
                    ($crate::Term::atom("__struct__"), $crate::Term::atom($module)),
                    $( ($crate::Term::atom(stringify!($field)), $crate::ToTerm::to_term(&self.$field)) ),*
                ])
            }
        }
        impl $crate::FromTerm for $ty {
            fn from_term(term: $crate::Term) -> Result<Self, $crate::TermError> {
                let module: $crate::Atom = $crate::field(&term, "__struct__")?;
                if module.as_str() != $module {
                    return Err($crate::TermError::new(concat!("a %", $module, "{} struct"), &term));
                }
                Ok($ty { $( $field: $crate::field(&term, stringify!($field))? ),* })
            }
        }
    };
}

/// Implements [`ToTerm`] and [`FromTerm`] for an enum, Elixir's way: a unit variant is an
/// atom, a tuple variant a tuple tagged with an atom (`{:put, key, value}`), a struct
/// variant a tagged atom-keyed map (`{:moved, %{x: 1, y: 2}}`). Each variant names its
/// fields (for tuple variants any names: they only bind the values) and its atom. A term
/// that matches no variant, or whose elements do not fit, is a [`TermError`].
///
/// ```
/// use arbor_dist::{term_enum, FromTerm, Term, ToTerm};
///
/// #[derive(Debug, PartialEq)]
/// enum Request { Put(String, i64), Get(String), Move { x: i64, y: i64 }, Clear }
/// term_enum!(Request { Put(key, value) as "put", Get(key) as "get", Move { x, y } as "move", Clear as "clear" });
///
/// let t = Request::Put("a".into(), 1).to_term();
/// assert_eq!(t.to_string(), r#"{:put, "a", 1}"#);
/// assert_eq!(Request::from_term(t).unwrap(), Request::Put("a".into(), 1));
/// assert_eq!(Request::Move { x: 1, y: 2 }.to_term().to_string(), "{:move, %{:x => 1, :y => 2}}");
/// assert_eq!(Request::from_term(Term::atom("clear")).unwrap(), Request::Clear);
/// let err = Request::from_term(Term::atom("drop")).unwrap_err();
/// assert_eq!(err.expected, "one of :put, :get, :move, :clear");
/// ```
#[macro_export]
macro_rules! term_enum {
    ($ty:ident { $( $v:ident $( ( $($f:ident),+ $(,)? ) )? $( { $($g:ident),+ $(,)? } )? as $name:literal ),+ $(,)? }) => {
        impl $crate::ToTerm for $ty {
            #[allow(non_snake_case)]
            fn to_term(&self) -> $crate::Term {
                match self {
                    $( $ty::$v $( ( $($f),+ ) )? $( { $($g),+ } )? =>
                        $crate::term_enum!(@build $name, [$( $($f),+ )?], [$( $($g),+ )?]), )+
                }
            }
        }
        impl $crate::FromTerm for $ty {
            fn from_term(term: $crate::Term) -> Result<Self, $crate::TermError> {
                match &term {
                    $crate::Term::Atom(a) => {
                        $( $crate::term_enum!(@unit a, $ty, $v, $name, [$( $($f),+ )?], [$( $($g),+ )?]); )+
                    }
                    $crate::Term::Tuple(t) if !t.is_empty() => {
                        $( $crate::term_enum!(@tuple t, $ty, $v, $name, [$( $($f),+ )?], [$( $($g),+ )?]); )+
                    }
                    _ => {}
                }
                let expected = [$( concat!(":", $name) ),+].join(", ");
                Err($crate::TermError::new(format!("one of {expected}"), &term))
            }
        }
    };
    (@build $name:literal, [], []) => { $crate::Term::atom($name) };
    (@build $name:literal, [$($f:ident),+], []) => {
        $crate::Term::Tuple(vec![$crate::Term::atom($name), $( $crate::ToTerm::to_term($f) ),+])
    };
    (@build $name:literal, [], [$($g:ident),+]) => {
        $crate::Term::Tuple(vec![
            $crate::Term::atom($name),
            $crate::Term::Map(vec![$( ($crate::Term::atom(stringify!($g)), $crate::ToTerm::to_term($g)) ),+]),
        ])
    };
    (@unit $a:ident, $ty:ident, $v:ident, $name:literal, [], []) => {
        if $a.as_str() == $name {
            return Ok($ty::$v);
        }
    };
    (@unit $a:ident, $ty:ident, $v:ident, $name:literal, [$($f:ident),*], [$($g:ident),*]) => {};
    (@tuple $t:ident, $ty:ident, $v:ident, $name:literal, [], []) => {};
    (@tuple $t:ident, $ty:ident, $v:ident, $name:literal, [$($f:ident),+], []) => {
        if $t[0].is_atom($name) && $t.len() == 1 + [$( stringify!($f) ),+].len() {
            let mut elements = $t.iter().skip(1).cloned();
            return Ok($ty::$v($( {
                let _ = stringify!($f);
                $crate::FromTerm::from_term(elements.next().unwrap_or($crate::Term::List(Vec::new())))
                    .map_err(|e| $crate::TermError { expected: format!("{} in {{:{}, ...}}", e.expected, $name), got: e.got })?
            } ),+));
        }
    };
    (@tuple $t:ident, $ty:ident, $v:ident, $name:literal, [], [$($g:ident),+]) => {
        if $t[0].is_atom($name) && $t.len() == 2 {
            let map = &$t[1];
            return Ok($ty::$v { $( $g: $crate::field(map, stringify!($g)).map_err(|e| $crate::TermError {
                expected: format!("{} in {{:{}, %{{...}}}}", e.expected, $name),
                got: e.got,
            })? ),+ });
        }
    };
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
