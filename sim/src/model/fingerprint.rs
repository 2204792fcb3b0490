//! Fingerprints of kernel states, for the exhaustive search's visited-state table: a fast
//! deterministic 64-bit hasher ([`StateHasher`]) and the order-independent sums ([`slot`])
//! that a table's entries and a file's page cache keep up to date at every write, so that
//! hashing a state costs what its small parts cost, not what its tables and caches hold.
//!
//! A sum is `Σ slot(index, value)` (wrapping) over the non-empty slots: a write subtracts the
//! old slot and adds the new one, so equal contents always have equal sums whatever the order
//! of the writes that made them. Distinct contents collide with probability about 2^-64 per
//! pair, which is what the visited table already accepts of its 64-bit keys. A part that
//! changes rarely (a page-table frame, a CPU's program) caches its fingerprint in a
//! [`KeyCache`] that every write resets.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xd6e8_feb8_6659_fd93;
const K2: u64 = 0xa076_1d64_78bd_642f;

/// The 128-bit product of `a` and `b`, folded to 64 bits (the mixing step of wyhash).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The contribution of slot `index` holding `value` to a sum.
#[inline]
pub fn slot(index: u64, value: u64) -> u64 {
    fold(fold(index ^ K0, K1) ^ value, K2)
}

/// A fast 64-bit hasher with fixed constants: every integer is mixed as its value (not its
/// native bytes), so a state hashes the same on every machine and Rust release. Integers
/// narrower than 64 bits are packed into one word before it is mixed (a state is mostly small
/// fields: lock words, flags, indices, enum discriminants and lengths), so a mix, the one
/// costly operation, takes up to eight of them at once. Words go to four chains in turn
/// (word `i` to chain `i % 4`), so four multiplications are in flight where one chain would
/// wait for each in turn; `finish` folds the chains together in a fixed order.
#[derive(Clone, Copy, Debug)]
pub struct StateHasher {
    /// The chains, `acc[3]` next to take a word.
    acc: [u64; 4],
    /// Narrow integers not mixed yet, packed from the low bits up, and how many bits they use.
    buf: u64,
    bits: u32,
}

impl Default for StateHasher {
    fn default() -> Self {
        StateHasher { acc: [K0, K1, K2, K0 ^ K1], buf: 0, bits: 0 }
    }
}

impl StateHasher {
    /// Mix `w` into the chain whose turn it is; the chains rotate, so the next word goes to
    /// the next one (register moves, not a dependence on this multiplication).
    #[inline]
    fn mix(&mut self, w: u64) {
        let [a0, a1, a2, a3] = self.acc;
        self.acc = [fold(a3 ^ w, K0), a0, a1, a2];
    }

    /// A small value in 16 bits (its top bit clear), any other as a marker and a whole word:
    /// enum discriminants and lengths are small, and the encoding stays one-to-one.
    #[inline]
    fn small_or_word(&mut self, i: u64) {
        if i < 1 << 15 {
            self.pack(i, 16);
        } else {
            self.pack(1 << 15, 16);
            self.flush();
            self.mix(i);
        }
    }

    /// Mix the packed narrow integers, if any.
    #[inline]
    fn flush(&mut self) {
        if self.bits > 0 {
            self.mix(self.buf);
            (self.buf, self.bits) = (0, 0);
        }
    }

    /// Pack a `width`-bit integer (`width` < 64).
    #[inline]
    fn pack(&mut self, v: u64, width: u32) {
        if self.bits + width > 64 {
            self.flush();
        }
        self.buf |= v << self.bits;
        self.bits += width;
    }
}

impl Hasher for StateHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = *self;
        h.flush();
        // a chain at a time, each multiplied by a constant (never by another chain, which
        // could be a constant's complement and fold to zero)
        let [a0, a1, a2, a3] = h.acc;
        let x = fold(fold(fold(a0 ^ K1, K0) ^ a1, K1) ^ a2, K2);
        fold(fold(x ^ a3, K0), K1)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.flush();
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.pack(u64::from(i), 8);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.pack(u64::from(i), 16);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.pack(u64::from(i), 32);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.flush();
        self.mix(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.small_or_word(i as u64);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.small_or_word(i as u64);
    }
}

/// A cached 64-bit fingerprint (0: not computed yet). It compares equal and hashes to nothing
/// ([`Unseen`]: it is a function of the data beside it), and it is atomic only so that a frame
/// shared by states of different threads stays `Sync`: every access is a relaxed load or store.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyCache(Unseen<AtomicU64>);

impl KeyCache {
    /// The cached value, or `compute()` cached.
    ///
    /// Debug builds recompute a cached value and assert it is unchanged: a write that forgot
    /// to [`KeyCache::reset`] would merge different states in the visited table.
    #[inline]
    pub fn get_or(&self, compute: impl Fn() -> u64) -> u64 {
        match self.0 .0.load(Ordering::Relaxed) {
            0 => {
                let v = compute().max(1);
                self.0 .0.store(v, Ordering::Relaxed);
                v
            }
            v => {
                debug_assert_eq!(v, compute().max(1), "a write did not reset its key cache");
                v
            }
        }
    }

    /// Forget the cached value (the data beside it is about to change).
    #[inline]
    pub fn reset(&mut self) {
        *self.0 .0.get_mut() = 0;
    }
}

impl Clone for KeyCache {
    fn clone(&self) -> Self {
        KeyCache(Unseen(AtomicU64::new(self.0 .0.load(Ordering::Relaxed))))
    }
}

/// A part of the state with its cached fingerprint ([`KeyCache`]): reading it goes through
/// `Deref`, and any access that could write it (`DerefMut`) forgets the cached value, so the
/// model writes its fields as it always did and the search's key rehashes only the parts a
/// step touched. Equality, hashing and `Debug` are those of the value.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Keyed<T> {
    value: T,
    key: KeyCache,
}

impl<T> Keyed<T> {
    pub fn new(value: T) -> Self {
        Keyed { value, key: KeyCache::default() }
    }

    /// The value's fingerprint by `compute`, cached until the next write (`compute` must
    /// be the same function at every call: the cache does not know which one filled it).
    #[inline]
    pub fn key(&self, compute: impl Fn(&T) -> u64) -> u64 {
        self.key.get_or(|| compute(&self.value))
    }
}

impl<T> std::ops::Deref for Keyed<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Keyed<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.key.reset();
        &mut self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Keyed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: super::CopyFrom> super::CopyFrom for Keyed<T> {
    fn copy_from(&mut self, src: &Self) {
        self.value.copy_from(&src.value);
        self.key = src.key.clone();
    }
}

/// Data kept beside a state that says nothing about it (a memo, a cache): it compares equal
/// and hashes to nothing, so states that differ only here are the same state to the visited
/// table, to equality and to a run's fingerprint: [`KeyCache`]'s cached value, and the memo
/// of `kernel::skip::EmptySlots`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unseen<T>(pub T);

impl<T> PartialEq for Unseen<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Unseen<T> {}

impl<T> std::hash::Hash for Unseen<T> {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// Hash `x` with [`StateHasher`].
pub fn hash_of<T: std::hash::Hash + ?Sized>(x: &T) -> u64 {
    let mut h = StateHasher::default();
    x.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_pinned_and_distinct_inputs_differ() {
        assert_eq!(hash_of(&0u64), hash_of(&0u8), "integers hash by value, not by width");
        assert_ne!(hash_of(&1u64), hash_of(&2u64));
        assert_ne!(hash_of("ab"), hash_of("ba"));
        assert_ne!(hash_of(&(1u64, 2u64)), hash_of(&(2u64, 1u64)));
        assert_ne!(slot(1, 2), slot(2, 1));
        assert_ne!(slot(0, 1), 0, "a slot holding a value always contributes");
        // short byte strings that differ only by trailing zeros do not collide
        let mut a = StateHasher::default();
        a.write(&[1]);
        let mut b = StateHasher::default();
        b.write(&[1, 0]);
        assert_ne!(a.finish(), b.finish());
        // narrow integers are packed: their order, and one past a full word, still count
        assert_ne!(hash_of(&(1u8, 2u8)), hash_of(&(2u8, 1u8)));
        assert_ne!(hash_of(&(1u16, 2u32, 3u8)), hash_of(&(1u16, 3u32, 2u8)));
        let nine = |last: u8| hash_of(&[1u8, 2, 3, 4, 5, 6, 7, 8, last]);
        assert_ne!(nine(9), nine(10));
        assert_ne!(hash_of(&(7u32, 0u64)), hash_of(&(0u32, 7u64)));
    }
}
