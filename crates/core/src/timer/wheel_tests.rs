use super::{TimerKey, Wheel};
use std::collections::BTreeMap;

/// Advances `wheel` to `now` and returns the fired values.
fn fire<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<T> {
    let mut out = Vec::new();
    wheel.advance(now, &mut out);
    out.into_iter().map(|(_, v)| v).collect()
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn fires_at_exact_deadline_and_not_before() {
    let mut w = Wheel::new(1000);
    let k = w.insert(1100, "a");
    assert_eq!(w.len(), 1);
    assert_eq!(w.deadline(k), Some(1100));
    assert!(fire(&mut w, 1099).is_empty());
    assert_eq!(w.now(), 1099);
    assert_eq!(w.deadline(k), Some(1100));
    let mut out = Vec::new();
    w.advance(1100, &mut out);
    assert_eq!(out, vec![(k, "a")]);
    assert!(w.is_empty());
    assert_eq!(w.deadline(k), None);
    assert_eq!(w.next_expiration(), None);
}

#[test]
fn past_or_present_deadline_fires_on_next_advance() {
    let mut w = Wheel::new(500);
    w.insert(500, 1);
    w.insert(10, 2);
    w.insert(0, 3);
    assert_eq!(w.next_expiration(), Some(0));
    // Even an advance that does not move time fires them, sorted by deadline.
    assert_eq!(fire(&mut w, 500), vec![3, 2, 1]);
    assert!(w.is_empty());
    w.insert(499, 4);
    assert_eq!(fire(&mut w, 0), vec![4]);
    assert_eq!(w.now(), 500);
}

#[test]
fn time_never_goes_backwards() {
    let mut w = Wheel::new(100);
    w.insert(150, ());
    assert!(fire(&mut w, 50).is_empty());
    assert_eq!(w.now(), 100);
    assert_eq!(fire(&mut w, 150).len(), 1);
}

#[test]
fn cancel_returns_deadline_and_value_and_prevents_firing() {
    let mut w = Wheel::new(0);
    let a = w.insert(70, "a");
    let b = w.insert(70, "b");
    let c = w.insert(5000, "c");
    assert_eq!(w.cancel(b), Some((70, "b")));
    assert_eq!(w.cancel(b), None);
    assert_eq!(w.deadline(b), None);
    assert_eq!(w.cancel(c), Some((5000, "c")));
    assert_eq!(w.len(), 1);
    assert_eq!(fire(&mut w, 10_000), vec!["a"]);
    assert_eq!(w.cancel(a), None, "fired key must not cancel");
    assert!(w.is_empty());
}

#[test]
fn stale_key_after_index_reuse_is_rejected() {
    let mut w = Wheel::new(0);
    let old = w.insert(10, 1);
    assert_eq!(w.cancel(old), Some((10, 1)));
    let new = w.insert(20, 2);
    assert_ne!(old, new);
    assert_eq!(w.cancel(old), None);
    assert_eq!(w.deadline(old), None);
    assert_eq!(w.deadline(new), Some(20));
    assert_eq!(TimerKey::from_u64(new.to_u64()), new);
    let fired = {
        let mut out = Vec::new();
        w.advance(20, &mut out);
        out
    };
    assert_eq!(fired, vec![(new, 2)]);
    // Fired keys are stale too, even once the index is reused again.
    let newer = w.insert(30, 3);
    assert_eq!(w.cancel(new), None);
    assert_eq!(w.cancel(TimerKey::from_u64(u64::MAX)), None);
    assert_eq!(w.cancel(newer), Some((30, 3)));
}

#[test]
fn orders_by_deadline_then_insertion() {
    let mut w = Wheel::new(0);
    // Same deadline reached through different levels and insertion times.
    w.insert(4200, 0);
    w.insert(300, 1);
    w.insert(4200, 2);
    w.insert(1, 3);
    w.insert(300, 4);
    assert_eq!(fire(&mut w, 4000), vec![3, 1, 4]);
    w.insert(4200, 5);
    w.insert(4100, 6);
    w.insert(4200, 7);
    assert_eq!(fire(&mut w, 5000), vec![6, 0, 2, 5, 7]);
}

#[test]
fn equal_far_deadlines_keep_insertion_order() {
    let far = 5 << 40;
    let mut w = Wheel::new(0);
    w.insert(far, 0);
    let gone = w.insert(far - 1, 9);
    assert!(fire(&mut w, 1 << 38).is_empty());
    w.insert(far, 1);
    assert_eq!(w.cancel(gone), Some((far - 1, 9)));
    // The overflow list is empty now and is refilled from scratch.
    assert!(fire(&mut w, far - (1 << 30)).is_empty());
    w.insert(far, 2);
    assert!(fire(&mut w, far - 100).is_empty());
    w.insert(far, 3);
    assert!(w.next_expiration().is_some_and(|at| at > far - 100 && at <= far));
    assert!(fire(&mut w, far - 1).is_empty());
    assert_eq!(fire(&mut w, far), vec![0, 1, 2, 3]);
}

#[test]
fn far_deadlines_fire_at_the_right_time() {
    let start = 123_456_789;
    let far = start + (1 << 40);
    let mut w = Wheel::new(start);
    w.insert(far, "far");
    w.insert(far + 1, "later");
    w.insert(u64::MAX, "max");
    let mut now = start;
    // Follow next_expiration: it must never overshoot the deadline.
    while let Some(at) = w.next_expiration() {
        assert!(at > now && at <= far, "at {at} now {now}");
        now = at;
        let fired = fire(&mut w, now);
        if !fired.is_empty() {
            assert_eq!(fired, vec!["far"]);
            assert_eq!(now, far);
            break;
        }
    }
    assert_eq!(now, far);
    assert!(fire(&mut w, far + 1 - 1).is_empty());
    assert_eq!(fire(&mut w, far + 1), vec!["later"]);
    assert!(fire(&mut w, u64::MAX - 1).is_empty());
    assert_eq!(w.next_expiration(), Some(u64::MAX));
    assert_eq!(fire(&mut w, u64::MAX), vec!["max"]);
    assert!(w.is_empty());
}

#[test]
fn large_jumps_fire_everything_in_order() {
    let mut w = Wheel::new(7);
    let deadlines = [1u64 << 50, 3, 64, 1 << 36, (1 << 36) - 1, 4096, 1 << 20, 65];
    for (i, &d) in deadlines.iter().enumerate() {
        w.insert(d, i);
    }
    assert_eq!(fire(&mut w, 1 << 36), vec![1, 2, 7, 5, 6, 4, 3]);
    assert_eq!(w.len(), 1);
    assert!(fire(&mut w, (1 << 50) - 1).is_empty());
    assert_eq!(fire(&mut w, u64::MAX), vec![0]);
}

#[test]
fn matches_naive_model() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..30 {
        let start = match round % 3 {
            0 => 0,
            1 => rng.below(1 << 40),
            _ => u64::MAX - (1 << 38) - rng.below(1 << 30),
        };
        let mut w = Wheel::new(start);
        // (deadline, seq) -> (key, value); the value is the seq.
        let mut model: BTreeMap<(u64, u64), TimerKey> = BTreeMap::new();
        // Every key ever issued: cancelling a fired one must return None.
        let mut keys: Vec<(TimerKey, u64, u64)> = Vec::new();
        let mut seq = 0u64;
        let mut now = start;
        for _ in 0..4000 {
            match rng.below(10) {
                0..=4 => {
                    let offset = match rng.below(9) {
                        0 => past_deadline(&mut rng, now),
                        // Reuse a pending deadline (ties at every level).
                        8 if !keys.is_empty() => keys[rng.below(keys.len() as u64) as usize].1,
                        1..=3 => now.saturating_add(rng.below(100)),
                        4 | 5 => now.saturating_add(rng.below(1 << 14)),
                        6 => now.saturating_add(rng.below(1 << 30)),
                        _ => now.saturating_add(rng.below(1 << 42)),
                    };
                    let key = w.insert(offset, seq);
                    model.insert((offset, seq), key);
                    keys.push((key, offset, seq));
                    seq += 1;
                }
                5 | 6 if !keys.is_empty() => {
                    let i = rng.below(keys.len() as u64) as usize;
                    let (key, deadline, s) = keys.swap_remove(i);
                    let expected = model.remove(&(deadline, s)).map(|_| (deadline, s));
                    assert_eq!(w.cancel(key), expected);
                    assert_eq!(w.cancel(key), None);
                }
                _ => {
                    let step = match rng.below(6) {
                        0 => 0,
                        1 | 2 => rng.below(70),
                        3 => rng.below(5000),
                        4 => rng.below(1 << 32),
                        _ => rng.below(1 << 41),
                    };
                    let target = now.saturating_add(step);
                    let mut out = Vec::new();
                    w.advance(target, &mut out);
                    now = target;
                    let mut expected = Vec::new();
                    while let Some(entry) = model.first_entry() {
                        if entry.key().0 > now {
                            break;
                        }
                        let ((_, s), key) = entry.remove_entry();
                        expected.push((key, s));
                    }
                    assert_eq!(out, expected);
                }
            }
            assert_eq!(w.now(), now);
            assert_eq!(w.len(), model.len());
            match (w.next_expiration(), model.keys().next()) {
                (None, None) => {}
                (Some(at), Some(&(earliest, _))) => {
                    assert!(at <= earliest, "next {at} > earliest {earliest}");
                    assert!(at > now || earliest <= now, "next {at} < now {now}");
                }
                other => panic!("next_expiration mismatch: {other:?}"),
            }
        }
        // Drain: everything left fires exactly once, in order.
        let mut out = Vec::new();
        w.advance(u64::MAX, &mut out);
        let expected: Vec<_> = model.iter().map(|(&(_, s), &k)| (k, s)).collect();
        assert_eq!(out, expected);
        assert!(w.is_empty());
    }
}

/// A deadline at or before `now`.
fn past_deadline(rng: &mut Rng, now: u64) -> u64 {
    now.saturating_sub(rng.below(200))
}

#[test]
fn one_million_timers_fire_exactly_once() {
    const N: usize = 1_000_000;
    let mut rng = Rng(42);
    let mut w = Wheel::new(0);
    let mut keys = Vec::with_capacity(N);
    let mut deadlines = Vec::with_capacity(N);
    for i in 0..N {
        let deadline = 1 + rng.below(1 << 21);
        keys.push(w.insert(deadline, i as u32));
        deadlines.push(deadline);
    }
    assert_eq!(w.len(), N);
    for i in (0..N).step_by(2) {
        assert_eq!(w.cancel(keys[i]), Some((deadlines[i], i as u32)));
    }
    assert_eq!(w.len(), N / 2);
    let mut fired = vec![0u8; N];
    let mut out = Vec::new();
    // First one millisecond at a time: each timer fires exactly at its deadline.
    for now in 1..=50_000 {
        w.advance(now, &mut out);
        for (_, v) in out.drain(..) {
            assert_eq!(deadlines[v as usize], now);
            fired[v as usize] += 1;
        }
    }
    // Then one big jump: the rest fire in deadline order.
    w.advance(1 << 22, &mut out);
    let mut previous = 50_000;
    for (key, v) in out.drain(..) {
        assert_eq!(w.deadline(key), None);
        let deadline = deadlines[v as usize];
        assert!(deadline > 50_000 && deadline >= previous);
        previous = deadline;
        fired[v as usize] += 1;
    }
    assert!(w.is_empty());
    assert_eq!(w.next_expiration(), None);
    for (i, &count) in fired.iter().enumerate() {
        assert_eq!(count, u8::from(i % 2 == 1), "timer {i}");
    }
}
