//! The scheduler's randomness: ChaCha8 (rand_chacha, pinned exactly) seeded and sampled by our
//! own code, so a seed means the same schedule whatever `rand` does to its distributions.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

#[derive(Clone, Debug)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// The 32-byte ChaCha key is the seed in little-endian, zero-padded: no hashing of ours or
    /// rand_core's in between.
    pub fn new(seed: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(ChaCha8Rng::from_seed(key))
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-and-reject: unbiased, no division in
    /// the common case.
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        if (m as u32) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u32) < threshold {
                m = u64::from(self.next_u32()) * u64::from(n);
            }
        }
        (m >> 32) as u32
    }
}

impl Rng {
    /// Fisher-Yates shuffle in place, drawing with [`Rng::below`] from the last index down.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_means_the_same_stream_forever() {
        // Pinned values: if these change, every recorded seed changes meaning.
        let mut r = Rng::new(0);
        let first: Vec<u32> = (0..4).map(|_| r.below(1000)).collect();
        let mut again = Rng::new(0);
        let second: Vec<u32> = (0..4).map(|_| again.below(1000)).collect();
        assert_eq!(first, second);
        assert_eq!(first, PINNED_SEED0);
    }

    const PINNED_SEED0: [u32; 4] = [187, 836, 909, 631];

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(7);
        let mut seen = [false; 3];
        for _ in 0..100 {
            let v = r.below(3) as usize;
            assert!(v < 3);
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
