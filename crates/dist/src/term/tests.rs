use super::*;

/// `term_to_binary({ok, <<"h\xe9llo">>, [1,2,3], #{a => 1.5}, 123456789012345678901234567890,
/// -5, 300, [], "ab", {}, true, [a|b]})` as OTP 25 wrote it.
const FROM_OTP: &[u8] = &[
    131, 104, 12, 100, 0, 2, 111, 107, 109, 0, 0, 0, 5, 104, 233, 108, 108, 111, 107, 0, 3, 1, 2, 3, 116, 0, 0, 0, 1,
    100, 0, 1, 97, 70, 63, 248, 0, 0, 0, 0, 0, 0, 110, 13, 0, 210, 10, 63, 78, 238, 224, 115, 195, 246, 15, 233, 142,
    1, 98, 255, 255, 255, 251, 98, 0, 0, 1, 44, 106, 107, 0, 2, 97, 98, 104, 0, 100, 0, 4, 116, 114, 117, 101, 108, 0,
    0, 0, 1, 100, 0, 1, 97, 100, 0, 1, 98,
];

fn sample() -> Term {
    Term::Tuple(vec![
        Term::atom("ok"),
        Term::Binary(vec![104, 233, 108, 108, 111]),
        Term::List(vec![Term::Int(1), Term::Int(2), Term::Int(3)]),
        Term::Map(vec![(Term::atom("a"), Term::Float(1.5))]),
        Term::BigInt(BigInt {
            negative: false,
            magnitude: vec![210, 10, 63, 78, 238, 224, 115, 195, 246, 15, 233, 142, 1],
        }),
        Term::Int(-5),
        Term::Int(300),
        Term::List(vec![]),
        Term::List(vec![Term::Int(97), Term::Int(98)]),
        Term::Tuple(vec![]),
        Term::atom("true"),
        Term::ImproperList(Box::new((vec![Term::atom("a")], Term::atom("b")))),
    ])
}

#[test]
fn decodes_what_otp_encoded() {
    assert_eq!(decode(FROM_OTP).unwrap(), sample());
    assert_eq!(sample().to_string(), "{:ok, <<104, 233, 108, 108, 111>>, [1, 2, 3], %{:a => 1.5}, 123456789012345678901234567890, -5, 300, [], [97, 98], {}, true, [:a | :b]}");
}

#[test]
fn roundtrips_every_kind() {
    let node = Atom::new("a@127.0.0.1");
    let terms = vec![
        sample(),
        Term::Int(i64::MIN),
        Term::Int(i64::MAX),
        Term::Int(i32::MIN as i64 - 1),
        Term::BigInt(BigInt::from_parts(true, u128::MAX)),
        Term::Float(-0.25),
        Term::atom("ünïcode"),
        Term::Atom(Atom::new(&"é".repeat(255))),
        Term::BitBinary(vec![1, 0b1010_0000], 3),
        Term::Pid(ExtPid {
            node: node.clone(),
            id: 7,
            serial: 1,
            creation: 99,
        }),
        Term::Ref(Box::new(ExtRef {
            node: node.clone(),
            creation: 3,
            id: vec![1, 2, 3, 4, 5],
        })),
        Term::Port(ExtPort {
            node,
            id: 1 << 40,
            creation: 2,
        }),
        Term::Tuple((0..300).map(Term::Int).collect()),
        Term::Binary(vec![7; 1000]),
    ];
    for t in terms {
        let bytes = encode(&t).unwrap();
        assert_eq!(decode(&bytes).unwrap(), t, "{t}");
    }
}

#[test]
fn refuses_what_cannot_be_encoded() {
    assert_eq!(
        encode(&Term::Atom(Atom::new(&"x".repeat(256)))),
        Err(EncodeError::AtomTooLong(256))
    );
    assert_eq!(encode(&Term::BitBinary(vec![1], 0)), Err(EncodeError::BadBitstring));
}

#[test]
fn hostile_counts_fail_before_allocating() {
    // a list, tuple, map, binary and bignum each announcing 2^32 - 1 items in a few bytes
    for tag in [108u8, 105, 116, 109, 111] {
        let bytes = [131, tag, 255, 255, 255, 255, 0];
        assert_eq!(decode(&bytes), Err(DecodeError::LengthTooLarge), "tag {tag}");
    }
    assert_eq!(decode(&[131, 82, 0]), Err(DecodeError::UnsupportedTag(82)));
    assert_eq!(
        decode(&[131, 80, 0, 0, 0, 10, 1, 2]),
        Err(DecodeError::UnsupportedTag(80))
    );
    assert_eq!(decode(&[130, 97, 1]), Err(DecodeError::BadVersion(130)));
    assert_eq!(decode(&[131, 97]), Err(DecodeError::Truncated));
    assert_eq!(decode(&[131, 97, 1, 0]), Err(DecodeError::TrailingBytes(1)));
    assert_eq!(
        decode(&[131, 77, 0, 0, 0, 1, 0, 5]),
        Err(DecodeError::Malformed("bit count"))
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut bytes = vec![131];
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[104, 1]);
    }
    bytes.push(106);
    assert_eq!(decode(&bytes), Err(DecodeError::TooDeep));
}

#[test]
fn mutated_inputs_never_panic() {
    // xorshift, fixed seed: every run checks the same 20,000 mutants
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let base = encode(&sample()).unwrap();
    let mut decoded_ok = 0;
    for _ in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..(1 + next() % 4) {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let cut = (next() as usize) % (b.len() + 1);
        if next() % 4 == 0 {
            b.truncate(cut);
        }
        if decode(&b).is_ok() {
            decoded_ok += 1;
        }
    }
    // some mutants (a changed digit, a changed byte in a binary) are still terms
    assert!(decoded_ok > 0);
}

/// Random terms of every kind, from a seeded xorshift: the same 2,000 each run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn atom(&mut self) -> Atom {
        let len = self.below(12) as usize;
        let s: String = (0..len)
            .map(|_| ['a', 'b', 'z', '_', 'é', '∂', '0'][self.below(7) as usize])
            .collect();
        Atom::new(&s)
    }

    fn term(&mut self, depth: u32) -> Term {
        let leaf = depth >= 4;
        match self.below(if leaf { 9 } else { 13 }) {
            0 => Term::Int(self.next() as i64 >> self.below(64)),
            1 => Term::BigInt(BigInt::from_parts(
                self.below(2) == 0,
                (self.next() as u128) << 64 | 1 << 64,
            )),
            2 => Term::Float(f64::from_bits(self.next() >> 2)),
            3 => Term::Atom(self.atom()),
            4 => Term::Binary((0..self.below(40)).map(|_| self.next() as u8).collect()),
            5 => Term::BitBinary(vec![self.next() as u8 & 0xf0, 0x80], 1 + self.below(7) as u8),
            6 => Term::Pid(ExtPid {
                node: self.atom(),
                id: self.next() as u32,
                serial: self.next() as u32,
                creation: self.next() as u32,
            }),
            7 => Term::Ref(Box::new(ExtRef {
                node: self.atom(),
                creation: self.next() as u32,
                id: (0..1 + self.below(5)).map(|_| self.next() as u32).collect(),
            })),
            8 => Term::Port(ExtPort {
                node: self.atom(),
                id: self.next(),
                creation: self.next() as u32,
            }),
            9 => Term::List((0..self.below(6)).map(|_| self.term(depth + 1)).collect()),
            10 => Term::Tuple((0..self.below(6)).map(|_| self.term(depth + 1)).collect()),
            11 => Term::Map(
                (0..self.below(4))
                    .map(|_| (self.term(depth + 1), self.term(depth + 1)))
                    .collect(),
            ),
            _ => {
                let items = (0..1 + self.below(4)).map(|_| self.term(depth + 1)).collect();
                Term::ImproperList(Box::new((items, Term::Atom(self.atom()))))
            }
        }
    }
}

#[test]
fn random_terms_round_trip() {
    let mut g = Gen(0x2545_F491_4F6C_DD1D);
    for i in 0..2_000 {
        let t = g.term(0);
        let bytes = encode(&t).unwrap();
        let back = decode(&bytes).unwrap_or_else(|e| panic!("term {i} ({t}): {e}"));
        // floats compare by bits (NaN payloads included)
        assert_eq!(encode(&back).unwrap(), bytes, "term {i}: {t}");
    }
}

#[test]
fn the_atom_cache_answers_only_for_the_same_text() {
    // SMALL_ATOM_UTF8_EXT "é" (C3 A9), then SMALL_ATOM_EXT (Latin-1) of the same two bytes,
    // which is "Ã©": equal bytes under another encoding are another atom.
    let utf8 = [131, 119, 2, 0xc3, 0xa9];
    let latin1 = [131, 115, 2, 0xc3, 0xa9];
    for _ in 0..2 {
        assert_eq!(decode(&utf8).unwrap(), Term::atom("é"));
        assert_eq!(decode(&latin1).unwrap(), Term::atom("Ã©"));
    }
    // Many atoms of one length and the same first and last eight bytes' neighbours: each
    // decodes to itself, whatever evicts whom.
    for round in 0..3 {
        for i in 0..200u32 {
            let text = format!("node_{i:04}_x@127.0.0.1");
            let mut bytes = vec![131, 119, text.len() as u8];
            bytes.extend_from_slice(text.as_bytes());
            assert_eq!(decode(&bytes).unwrap(), Term::atom(&text), "round {round}");
        }
    }
    // Bytes that are not UTF-8 stay an error, also once a valid atom sits in their slot.
    assert_eq!(decode(&[131, 119, 2, 0xc3, 0x28]), Err(DecodeError::BadAtom));
}

/// The table of decoded atoms is bounded: a peer that sends a million distinct atoms
/// fills it up to its bounds and no further; the atoms past them are shared strings (they
/// go with their terms), equal to any other atom of the same text.
#[test]
fn a_million_distinct_atoms_stop_at_the_intern_tables_bounds() {
    let common = decode(&[131, 119, 4, b'b', b'u', b'm', b'p']).unwrap();
    for i in 0..1_000_000u32 {
        let text = format!("flood_{i}");
        let mut bytes = vec![131, 119, text.len() as u8];
        bytes.extend_from_slice(text.as_bytes());
        let t = decode(&bytes).unwrap();
        assert_eq!(t.as_atom(), Some(text.as_str()));
        let (atoms, text_bytes) = super::interned_count();
        assert!(
            atoms <= super::INTERN_MAX_ATOMS && text_bytes <= super::INTERN_MAX_BYTES,
            "{atoms} atoms, {text_bytes} bytes after {i}"
        );
    }
    let (atoms, _) = super::interned_count();
    assert!(atoms <= super::INTERN_MAX_ATOMS);
    // Full: a new atom is a shared string, and still equal by its text (and hashed so).
    let fresh = match decode(&[131, 119, 9, b'a', b'f', b't', b'e', b'r', b'_', b'a', b'l', b'l']).unwrap() {
        Term::Atom(a) => a,
        other => panic!("{other}"),
    };
    assert!(!fresh.is_interned());
    assert_eq!(fresh, Atom::new("after_all"));
    let mut set = std::collections::HashSet::new();
    set.insert(Atom::new("after_all"));
    assert!(set.contains(&fresh));
    // An atom decoded before the flood (in the table, unless another test filled it
    // first) is still the same atom.
    assert_eq!(common, Term::atom("bump"));
    assert_eq!(decode(&[131, 119, 4, b'b', b'u', b'm', b'p']).unwrap(), common);
}

/// Interned or shared, atoms compare, hash and order by their text.
#[test]
fn interned_and_shared_atoms_are_equal_by_text() {
    let interned = Atom::interned("same_text");
    let shared = Atom::new("same_text");
    assert_eq!(interned, shared);
    assert_eq!(interned.cmp(&Atom::new("same_texu")), std::cmp::Ordering::Less);
    let hash = |a: &Atom| {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(a)
    };
    assert_eq!(hash(&interned), hash(&shared));
    assert_eq!(interned.clone().as_str(), "same_text");
    // Two interned atoms: equal exactly when their texts are.
    assert_eq!(Atom::interned("same_text"), interned);
    assert_ne!(Atom::interned("same_texu"), interned);
    assert_ne!(Atom::interned("same_tex"), interned);
    let shared2 = shared.clone();
    assert_eq!(shared2, shared);
    assert_ne!(Atom::new("other"), shared);
}

/// The atom cache's comparison agrees with `==` at every length up to past its word
/// paths, for equal texts and for texts that differ in any one byte.
#[test]
fn same_bytes_is_equality() {
    use super::decode::same_bytes;
    for n in 0..40usize {
        let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
        assert!(same_bytes(&a, &a.clone()), "length {n}");
        for i in 0..n {
            let mut b = a.clone();
            b[i] ^= 0x20;
            assert!(!same_bytes(&a, &b), "length {n}, byte {i}");
        }
        let mut longer = a.clone();
        longer.push(b'z');
        assert!(!same_bytes(&a, &longer));
    }
}
