//! Per-CPU TLBs: cached leaf translations and walk-cache (non-leaf) entries, tagged by mm.
//!
//! Hardware fills them on user accesses; the kernel drops them with local flushes, flush IPIs
//! and broadcast invalidations, leaf-only or including walk caches. A fixed number of entries
//! replaced round-robin keeps the state small, copyable and deterministic. Simplification:
//! flushes drop every entry of the mm (no per-range invalidation).

/// Entries per TLB (leaf and walk-cache entries share the array).
pub const TLB_ENTRIES: usize = 8;

/// One cached translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlbEntry {
    pub valid: bool,
    pub mm: u8,
    /// A leaf translation (page), or a walk-cache entry (pointer to a lower table).
    pub leaf: bool,
    /// Start and size of the virtual range the entry covers.
    pub va: u64,
    pub size: u64,
    /// Leaf: page frame; walk cache: the table the walk continues in.
    pub target: u64,
    /// Walk cache: level (index into the arch's levels) of the cached table.
    pub level: u8,
    /// Walk cache: generation of the cached table page when it was cached.
    pub gen: u32,
    pub write: bool,
    /// Step at which hardware filled it.
    pub filled: u64,
}

impl TlbEntry {
    fn covers(&self, mm: u8, va: u64) -> bool {
        self.valid && self.mm == mm && self.va <= va && va - self.va < self.size
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tlb {
    pub entries: [TlbEntry; TLB_ENTRIES],
    next: u8,
}

impl Tlb {
    /// Hash the valid entries without their fill times (the exhaustive search's state key
    /// adds [`Tlb::filled_before_flush`]). An invalid entry is hashed as invalid only: nothing
    /// reads the rest of it before a fill overwrites it.
    pub fn hash_without_times<H: std::hash::Hasher>(&self, h: &mut H) {
        use std::hash::Hash;
        let Tlb { entries, next } = self;
        for e in entries {
            let TlbEntry { valid, mm, leaf, va, size, target, level, gen, write, filled: _ } = *e;
            if !valid {
                h.write_u64(0);
                continue;
            }
            let flags = 1
                | u64::from(leaf) << 1
                | u64::from(write) << 2
                | u64::from(level) << 8
                | u64::from(mm) << 16
                | u64::from(gen) << 32;
            (flags, va, size, target).hash(h);
        }
        next.hash(h);
    }

    /// Bit `i` set: entry `i` is valid and was filled before `flushed_at(its mm)`, the step
    /// at which a flush of the mm last claimed completion. That is all a fill time decides:
    /// the stale-TLB check reports a use of an entry only if so, a later claim comes after
    /// every fill so far, and a later fill after every claim.
    pub fn filled_before_flush(&self, flushed_at: impl Fn(u8) -> u64) -> u8 {
        const _: () = assert!(TLB_ENTRIES <= 8, "one bit per entry in a u8");
        let mut bits = 0;
        for (i, e) in self.entries.iter().enumerate() {
            if e.valid && e.filled < flushed_at(e.mm) {
                bits |= 1 << i;
            }
        }
        bits
    }

    pub fn lookup_leaf(&self, mm: u8, va: u64) -> Option<TlbEntry> {
        self.entries.iter().copied().find(|e| e.leaf && e.covers(mm, va))
    }

    /// The deepest walk-cache entry covering `va`.
    pub fn lookup_walk(&self, mm: u8, va: u64) -> Option<TlbEntry> {
        self.entries.iter().copied().filter(|e| !e.leaf && e.covers(mm, va)).max_by_key(|e| e.level)
    }

    /// Insert, replacing an entry for the same range and kind, else round-robin.
    pub fn fill(&mut self, e: TlbEntry) {
        let same = self.entries.iter().position(|x| {
            x.valid && x.mm == e.mm && x.leaf == e.leaf && x.va == e.va && x.size == e.size
        });
        let slot = match same {
            Some(i) => i,
            None => {
                let i = self.next as usize;
                self.next = ((i + 1) % TLB_ENTRIES) as u8;
                i
            }
        };
        self.entries[slot] = TlbEntry { valid: true, ..e };
    }

    /// Drop the mm's leaf entries, and its walk-cache entries too unless `leaf_only`.
    pub fn flush_mm(&mut self, mm: u8, leaf_only: bool) {
        for e in self.entries.iter_mut().filter(|e| e.valid && e.mm == mm) {
            if e.leaf || !leaf_only {
                e.valid = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(mm: u8, va: u64, size: u64, level: u8) -> TlbEntry {
        TlbEntry {
            valid: true,
            mm,
            leaf: false,
            va,
            size,
            target: 0x1000 + u64::from(level),
            level,
            gen: 1,
            write: false,
            filled: 0,
        }
    }

    #[test]
    fn leaf_only_flush_keeps_walk_cache_entries() {
        let mut t = Tlb::default();
        t.fill(walk(0, 0, 1 << 39, 1));
        t.fill(TlbEntry {
            leaf: true,
            va: 0x4000_0000,
            size: 2 << 20,
            target: 7,
            ..walk(0, 0, 0, 0)
        });
        t.flush_mm(0, true);
        assert!(t.lookup_leaf(0, 0x4000_0000).is_none());
        assert!(t.lookup_walk(0, 0x4000_0000).is_some());
        t.flush_mm(0, false);
        assert!(t.lookup_walk(0, 0x4000_0000).is_none());
    }

    #[test]
    fn deepest_walk_entry_wins_and_other_mms_are_untouched() {
        let mut t = Tlb::default();
        t.fill(walk(0, 0, 1 << 39, 1));
        t.fill(walk(0, 0x4000_0000, 1 << 30, 2));
        t.fill(walk(1, 0x4000_0000, 1 << 30, 2));
        assert_eq!(t.lookup_walk(0, 0x4000_1000).unwrap().level, 2);
        t.flush_mm(0, false);
        assert!(t.lookup_walk(0, 0x4000_1000).is_none());
        assert!(t.lookup_walk(1, 0x4000_1000).is_some());
    }
}
