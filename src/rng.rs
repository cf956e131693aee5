//! SplitMix64: the generator the reference protocol pins down bit for bit
//! (`../shared/reference/PROTOCOL.md` §4), also used wherever heldout needs a small, seeded,
//! portable stream (demo data, episode draws). No crate is used so that the sequence can never
//! change under us with a dependency update.

/// SplitMix64 (Steele, Lea, Flood 2014), exactly as in the protocol.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is `mix(seed + GOLDEN)`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal draw (Box–Muller; one of the pair is discarded for simplicity).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `next_u64() mod n` — the protocol's (slightly biased, but pinned) bounded draw.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        // n = 0 has no value below it: 0, rather than a division by zero
        self.next_u64().checked_rem(n).unwrap_or(0)
    }

    /// The protocol's Fisher–Yates: for k = n−1 down to 1, j = next mod (k+1), swap.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for k in (1..v.len()).rev() {
            let j = self.below(k as u64 + 1) as usize;
            v.swap(k, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_splitmix64_vector() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c, also the values
        // in ../shared/reference/results/protocol_fixtures.json "splitmix64"."0").
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(g.next_u64(), 0x06C4_5D18_8009_454F);
    }
}
