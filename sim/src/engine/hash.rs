//! A deterministic 64-bit hasher (FNV-1a) for fingerprints of runs: the same bytes hash the
//! same on every machine and Rust release, unlike `DefaultHasher`, whose algorithm may change.

use std::hash::Hasher;

/// FNV-1a, 64 bits.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Hash `x` with [`Fnv64`].
pub fn fingerprint<T: std::hash::Hash + ?Sized>(x: &T) -> u64 {
    let mut h = Fnv64::default();
    x.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_values() {
        // FNV-1a test vectors
        let mut h = Fnv64::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fingerprint(&1u8), 0xaf63_bc4c_8601_b62c);
    }
}
