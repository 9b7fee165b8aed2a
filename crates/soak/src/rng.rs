//! A small seeded PRNG (SplitMix64), so every choice of the soak follows from its seed.
//!
//! Invariant: one generator per thread, each derived from the run's seed and the thread's
//! role, so a run's choices per thread replay from the seed (the interleaving of threads is
//! the operating system's, and is not replayed).

/// SplitMix64: tiny, fast, and good enough to drive test choices.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `role` (a thread's number) under the run's `seed`.
    pub(crate) fn new(seed: u64, role: u64) -> Rng {
        let mut r = Rng(seed ^ role.wrapping_mul(0xA24B_AED4_963E_E407));
        r.next();
        r
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
