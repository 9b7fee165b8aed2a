//! Terms printed as Elixir prints them (`inspect`): `{:ok, "text"}`, `%{a: 1}`, `#PID<...>`.

use super::{Atom, BigInt, ExtPid, ExtRef, Term};
use std::fmt;

fn atom_needs_quotes(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        None => true,
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_uppercase() || c == '_' => {
            let rest: Vec<char> = chars.collect();
            let body_end = rest.len().saturating_sub(1);
            !rest.iter().enumerate().all(|(i, c)| {
                c.is_ascii_alphanumeric() || *c == '_' || *c == '@' || (i == body_end && (*c == '?' || *c == '!'))
            })
        }
        _ => true,
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        if matches!(s, "nil" | "true" | "false") {
            f.write_str(s)
        } else if atom_needs_quotes(s) {
            write!(f, ":{s:?}")
        } else {
            write!(f, ":{s}")
        }
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ExtPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#PID<{}.{}.{}@{}>",
            self.node.as_str(),
            self.id,
            self.serial,
            self.creation
        )
    }
}

impl fmt::Debug for ExtPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ExtRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Reference<{}", self.node.as_str())?;
        for w in self.id.iter().rev() {
            write!(f, ".{w}")?;
        }
        f.write_str(">")
    }
}

impl fmt::Debug for ExtRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.to_i128() {
            return write!(f, "{v}");
        }
        // Long division by 10 over the little-endian magnitude.
        let mut digits = Vec::new();
        let mut m = self.magnitude.clone();
        while m.iter().any(|b| *b != 0) {
            let mut rem = 0u32;
            for b in m.iter_mut().rev() {
                let cur = (rem << 8) | *b as u32;
                *b = (cur / 10) as u8;
                rem = cur % 10;
            }
            digits.push(b'0' + rem as u8);
        }
        if self.negative {
            f.write_str("-")?;
        }
        digits.reverse();
        f.write_str(std::str::from_utf8(&digits).unwrap_or("?"))
    }
}

fn seq(f: &mut fmt::Formatter<'_>, items: &[Term]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Int(i) => write!(f, "{i}"),
            Term::BigInt(b) => write!(f, "{b}"),
            Term::Float(x) => write!(f, "{x:?}"),
            Term::Atom(a) => write!(f, "{a}"),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => {
                    f.write_str("<<")?;
                    for (i, x) in b.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{x}")?;
                    }
                    f.write_str(">>")
                }
            },
            Term::BitBinary(b, bits) => write!(f, "<<{} bytes, {bits} bits>>", b.len().saturating_sub(1)),
            Term::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            Term::ImproperList(b) => {
                f.write_str("[")?;
                seq(f, &b.0)?;
                write!(f, " | {}]", b.1)
            }
            Term::Tuple(items) => {
                f.write_str("{")?;
                seq(f, items)?;
                f.write_str("}")
            }
            Term::Map(pairs) => {
                f.write_str("%{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_str("}")
            }
            Term::Pid(p) => write!(f, "{p}"),
            Term::Ref(r) => write!(f, "{r}"),
            Term::Port(p) => write!(f, "#Port<{}.{}>", p.node.as_str(), p.id),
            Term::Fun(_) => f.write_str("#Function<...>"),
        }
    }
}

impl fmt::Debug for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
