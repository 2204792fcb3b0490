//! Simulated physical memory: page-table pages with their encoded entries and `struct ptdesc`
//! descriptors, and the hugetlb page pool.
//!
//! A frame's lifecycle is allocated -> (pending free) -> freed -> possibly allocated again: the
//! allocator hands out the most recently freed frame first, like the kernel's per-CPU page lists,
//! because reuse is how many page-table races bite. With `quarantine` freed frames are never
//! reused (KASAN's quarantine). Every lifecycle transition records its [`SiteRef`] for reports.

use super::fingerprint;
use super::fingerprint::{KeyCache, StateHasher};
use super::sync::RwLock;
use mmsim_traces::Actor;
use std::hash::Hasher;
use std::sync::Arc;

/// First pfn handed out for page-table pages (an arbitrary, realistic-looking base).
pub const TABLE_PFN_BASE: u64 = 0x1000;

/// Where something happened: enough to name the CPU, operation, kernel function and step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SiteRef {
    pub step: u64,
    pub actor: Actor,
    pub op: u16,
    pub func: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameState {
    Allocated,
    /// Unlinked and queued in an mmu_gather batch or an RCU callback; memory still intact.
    PendingFree,
    Freed,
}

/// A table's entries: only the non-zero ones, sorted by index. A table maps a handful of its
/// 512 (or 2048) entries, so a run neither allocates, zeroes, copies nor hashes a whole 4 KiB
/// page per table. Equal tables have equal lists. The list's [`fingerprint::slot`] sum is kept
/// up to date at every write, and `Hash` hashes only the count and the sum: hashing a table
/// for the exhaustive search's visited states costs the same whatever it maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    list: Vec<(u16, u64)>,
    sum: u64,
}

impl std::hash::Hash for Entries {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // equal lists have equal sums: consistent with Eq
        self.list.len().hash(h);
        self.sum.hash(h);
    }
}

impl Entries {
    /// The raw value of entry `index` (0 if never set or cleared).
    #[inline]
    pub fn get(&self, index: usize) -> u64 {
        match self.list.binary_search_by_key(&(index as u16), |&(i, _)| i) {
            Ok(k) => self.list[k].1,
            Err(_) => 0,
        }
    }

    /// Set entry `index` to `raw` (0 clears it).
    pub fn set(&mut self, index: usize, raw: u64) {
        let i = index as u64;
        match self.list.binary_search_by_key(&(index as u16), |&(i, _)| i) {
            Ok(k) => {
                self.sum = self.sum.wrapping_sub(fingerprint::slot(i, self.list[k].1));
                if raw == 0 {
                    self.list.remove(k);
                } else {
                    self.list[k].1 = raw;
                }
            }
            Err(k) if raw != 0 => self.list.insert(k, (index as u16, raw)),
            Err(_) => return,
        }
        if raw != 0 {
            self.sum = self.sum.wrapping_add(fingerprint::slot(i, raw));
        }
    }

    /// Every entry zero (a freshly allocated table).
    pub fn clear(&mut self) {
        self.list.clear();
        self.sum = 0;
    }

    /// The non-zero entries as (index, raw), in index order.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.list.iter().map(|&(i, raw)| (i as usize, raw))
    }
}

/// One page-table page and its descriptor (`struct ptdesc`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub state: FrameState,
    /// Bumped at every allocation: a pointer remembers the generation it was derived in, so a
    /// use through it after the frame was freed *and reused* is still a use-after-free.
    pub gen: u32,
    /// Index into the arch's `levels()` of the entries this table holds.
    pub level: u8,
    pub entries: Entries,
    /// The page refcount (`page_count()`); counted sharers before v6.13.
    pub refcount: u32,
    /// `ptdesc->pt_share_count`: sharers beyond the first (v6.13+).
    pub pt_share_count: u32,
    /// The split ptlock embedded in the ptdesc, and whether it is alive (ctor ran, dtor not yet).
    pub ptlock: RwLock,
    pub ptlock_alive: bool,
    /// Bit m set: mm m's page-table tree reaches this table.
    pub owners: u8,
    pub allocated: Option<SiteRef>,
    pub queued: Option<SiteRef>,
    pub freed: Option<SiteRef>,
    pub ptlock_freed: Option<SiteRef>,
    /// The last time an mm's tree stopped reaching this table (`pud_clear()` of an unshare,
    /// `pmd_clear()` in `free_pgtables()`): the mms it left (a bit mask) and where.
    pub unlinked: Option<(u8, SiteRef)>,
    /// The frame's part of the exhaustive search's state key, computed on demand and reset by
    /// every write ([`PhysMem::frame_mut`]). Derived data: not part of equality.
    pub key_cache: KeyCache,
}

impl Frame {
    /// Hash everything but the step numbers of the provenance sites (see
    /// [`PhysMem::hash_without_steps`]). Every field is named, so a new one is not forgotten.
    fn hash_without_steps<H: std::hash::Hasher>(&self, h: &mut H) {
        use std::hash::Hash;
        let Frame {
            state,
            gen,
            level,
            entries,
            refcount,
            pt_share_count,
            ptlock,
            ptlock_alive,
            owners,
            allocated,
            queued,
            freed,
            ptlock_freed,
            unlinked,
            key_cache: _,
        } = self;
        (state, gen, level, entries, refcount, pt_share_count, ptlock, ptlock_alive, owners)
            .hash(h);
        let site = |s: &Option<SiteRef>, h: &mut H| {
            s.map(|SiteRef { step: _, actor, op, func }| (actor, op, func)).hash(h)
        };
        for s in [allocated, queued, freed, ptlock_freed] {
            site(s, h);
        }
        unlinked.map(|(mms, _)| mms).hash(h);
        site(&unlinked.map(|(_, s)| s), h);
    }
}

/// A pointer to one entry, as kernel code holds a `pte_t *` / `pmd_t *`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryPtr {
    pub pfn: u64,
    pub index: u16,
    /// Level (index into the arch's `levels()`) of the table.
    pub level: u8,
    /// Frame generation when the pointer was derived.
    pub gen: u32,
    /// The virtual address the walk derived the pointer for (`pmd_offset(pud, addr)`), rounded
    /// down to the span of one entry of this level: what the wrong-mm checker compares with
    /// the walker's own VMA.
    pub addr: u64,
}

/// What the copy-on-write protocol reads of a data page's `struct folio` (a huge page, or an
/// ordinary anonymous page, which the pool hands out too), and what it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HugePage {
    /// `folio_ref_count()`: one per page-table mapping, one for the page cache, plus transient
    /// references (`folio_get()` in `hugetlb_wp()`). Simplified: mmu_gather drops a zapped
    /// page's reference at the zap, not after the flush.
    pub refcount: u32,
    /// `folio_mapcount()`: page-table entries mapping it, in every mm.
    pub mapcount: u32,
    /// `folio_test_anon()`: a private copy (not in a file's page cache).
    pub anon: bool,
    /// The page's contents as far as the model cares: who stored last (`mm + 1`; 0: nobody
    /// since it was allocated, or copied from a page nobody wrote).
    pub data: u64,
}

/// Physical memory: page-table frames plus the hugetlb pool.
///
/// Frames are shared between clones of the state and copied on their first write
/// ([`PhysMem::frame_mut`]): the exhaustive search clones the state at every branch, and a
/// step changes one frame at most.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhysMem {
    frames: Vec<Arc<Frame>>,
    free_list: Vec<u64>,
    quarantine: bool,
    entries_per_table: usize,
    /// Hugetlb pool: next free huge page's head pfn, and the pfn stride of one huge page.
    next_huge_pfn: u64,
    huge_stride: u64,
    /// First pfn of the pool, and the descriptor of every page handed out, in pfn order.
    huge_base: u64,
    huge_pages: Vec<HugePage>,
    /// The whole memory's part of the search's key, reset by every `&mut self` method
    /// (derived data: not part of equality).
    key_cache: KeyCache,
}

impl super::CopyFrom for PhysMem {
    fn copy_from(&mut self, src: &Self) {
        let PhysMem {
            frames,
            free_list,
            quarantine,
            entries_per_table,
            next_huge_pfn,
            huge_stride,
            huge_base,
            huge_pages,
            key_cache,
        } = src;
        super::copy_arcs_from(&mut self.frames, frames);
        self.free_list.clone_from(free_list);
        (self.quarantine, self.entries_per_table) = (*quarantine, *entries_per_table);
        (self.next_huge_pfn, self.huge_stride, self.huge_base) =
            (*next_huge_pfn, *huge_stride, *huge_base);
        self.huge_pages.clone_from(huge_pages);
        self.key_cache = key_cache.clone();
    }
}

impl PhysMem {
    pub fn new(entries_per_table: usize, huge_base_pfn: u64, huge_stride: u64) -> Self {
        PhysMem {
            frames: Vec::new(),
            free_list: Vec::new(),
            quarantine: false,
            entries_per_table,
            next_huge_pfn: huge_base_pfn,
            huge_stride,
            huge_base: huge_base_pfn,
            huge_pages: Vec::new(),
            key_cache: KeyCache::default(),
        }
    }

    /// Keep freed tables poisoned instead of reusing them (KASAN's quarantine).
    pub fn set_quarantine(&mut self, on: bool) {
        self.key_cache.reset();
        self.quarantine = on;
    }

    /// `pagetable_alloc()` + ctor: a zeroed table at `level`, refcount 1, ptlock initialised.
    pub fn alloc_table(&mut self, level: u8, site: SiteRef) -> u64 {
        self.key_cache.reset();
        let pfn = match self.free_list.pop() {
            Some(pfn) => pfn,
            None => {
                self.frames.push(Arc::new(Frame {
                    state: FrameState::Freed,
                    gen: 0,
                    level,
                    entries: Entries::default(),
                    refcount: 0,
                    pt_share_count: 0,
                    ptlock: RwLock::default(),
                    ptlock_alive: false,
                    owners: 0,
                    allocated: None,
                    queued: None,
                    freed: None,
                    ptlock_freed: None,
                    unlinked: None,
                    key_cache: KeyCache::default(),
                }));
                TABLE_PFN_BASE + self.frames.len() as u64 - 1
            }
        };
        let f = self.frame_mut(pfn).expect("allocator handed out an unknown pfn");
        f.state = FrameState::Allocated;
        f.gen += 1;
        f.level = level;
        f.entries.clear();
        f.refcount = 1;
        f.pt_share_count = 0;
        f.ptlock = RwLock::default();
        f.ptlock_alive = true;
        f.owners = 0;
        f.allocated = Some(site);
        f.queued = None;
        f.freed = None;
        f.ptlock_freed = None;
        f.unlinked = None;
        pfn
    }

    /// The pfn the next [`PhysMem::alloc_table`] will return.
    pub fn peek_alloc(&self) -> u64 {
        self.free_list.last().copied().unwrap_or(TABLE_PFN_BASE + self.frames.len() as u64)
    }

    /// Return a table page to the allocator.
    pub fn free_table(&mut self, pfn: u64, site: SiteRef) {
        self.key_cache.reset();
        let quarantine = self.quarantine;
        if let Some(f) = self.frame_mut(pfn) {
            f.state = FrameState::Freed;
            f.freed = Some(site);
            f.ptlock_alive = false;
            f.owners = 0;
            if !quarantine {
                self.free_list.push(pfn);
            }
        }
    }

    /// `alloc_hugetlb_folio()` from the pool: the head pfn of a fresh huge page, holding the
    /// allocation's reference. The pool never runs out and pages are never reused.
    pub fn alloc_huge_page(&mut self) -> u64 {
        self.key_cache.reset();
        let pfn = self.next_huge_pfn;
        self.next_huge_pfn += self.huge_stride;
        self.huge_pages.push(HugePage { refcount: 1, ..HugePage::default() });
        pfn
    }

    /// The descriptor of the data page whose head (or any sub-page) is `pfn`.
    pub fn huge_page(&self, pfn: u64) -> Option<&HugePage> {
        let i = pfn.checked_sub(self.huge_base)? / self.huge_stride.max(1);
        self.huge_pages.get(i as usize)
    }

    /// The head pfn of the data page `pfn` lies in, if the pool handed it out.
    pub fn huge_head(&self, pfn: u64) -> Option<u64> {
        self.huge_page(pfn)?;
        let stride = self.huge_stride.max(1);
        Some(pfn - (pfn - self.huge_base) % stride)
    }

    pub fn huge_page_mut(&mut self, pfn: u64) -> Option<&mut HugePage> {
        self.key_cache.reset();
        let i = pfn.checked_sub(self.huge_base)? / self.huge_stride.max(1);
        self.huge_pages.get_mut(i as usize)
    }

    /// Add (or with a negative `by`, drop) a mapping of `pfn`: mapcount and refcount together
    /// (`folio_get()` + `page_dup_*_rmap()`, or `page_remove_rmap()` + the put).
    pub fn huge_page_map(&mut self, pfn: u64, by: i32) {
        self.key_cache.reset();
        if let Some(p) = self.huge_page_mut(pfn) {
            p.mapcount = p.mapcount.saturating_add_signed(by);
            p.refcount = p.refcount.saturating_add_signed(by);
        }
    }

    /// `folio_get()` / `folio_put()` of `pfn`.
    pub fn huge_page_ref(&mut self, pfn: u64, by: i32) {
        self.key_cache.reset();
        if let Some(p) = self.huge_page_mut(pfn) {
            p.refcount = p.refcount.saturating_add_signed(by);
        }
    }

    /// The head pfn the next [`PhysMem::alloc_huge_page`] will return.
    pub fn peek_huge_page(&self) -> u64 {
        self.next_huge_pfn
    }

    #[inline]
    pub fn frame(&self, pfn: u64) -> Option<&Frame> {
        pfn.checked_sub(TABLE_PFN_BASE).and_then(|i| self.frames.get(i as usize)).map(|f| &**f)
    }

    /// The frame, for writing: copied first if another clone of the state shares it.
    #[inline]
    pub fn frame_mut(&mut self, pfn: u64) -> Option<&mut Frame> {
        self.key_cache.reset();
        pfn.checked_sub(TABLE_PFN_BASE).and_then(|i| self.frames.get_mut(i as usize)).map(|f| {
            let f = Arc::make_mut(f);
            f.key_cache.reset();
            f
        })
    }

    /// All frames ever allocated, with their pfns, in pfn order.
    pub fn frames(&self) -> impl Iterator<Item = (u64, &Frame)> {
        self.frames.iter().enumerate().map(|(i, f)| (TABLE_PFN_BASE + i as u64, &**f))
    }

    /// Hash everything but the step numbers of the frames' provenance sites, which only say
    /// *when* something happened (the exhaustive search's state key: schedules that commute
    /// independent steps meet again). Every field is named, so a new one is not forgotten; a
    /// frame contributes its cached fingerprint, recomputed only after a write to it.
    pub fn hash_without_steps<H: std::hash::Hasher>(&self, h: &mut H) {
        use std::hash::Hash;
        let PhysMem {
            frames,
            free_list,
            quarantine,
            entries_per_table,
            next_huge_pfn,
            huge_stride,
            huge_base,
            huge_pages,
            key_cache,
        } = self;
        h.write_u64(key_cache.get_or(|| {
            let mut h = StateHasher::default();
            (free_list, quarantine, entries_per_table, next_huge_pfn, huge_stride).hash(&mut h);
            (huge_base, huge_pages).hash(&mut h);
            frames.len().hash(&mut h);
            for f in frames {
                h.write_u64(f.key_cache.get_or(|| {
                    let mut fh = StateHasher::default();
                    f.hash_without_steps(&mut fh);
                    fh.finish()
                }));
            }
            h.finish()
        }));
    }

    /// Raw entry value behind a pointer (no lifecycle checks: callers check first).
    pub fn load(&self, p: EntryPtr) -> u64 {
        self.frame(p.pfn).map_or(0, |f| f.entries.get(p.index as usize))
    }

    pub fn store(&mut self, p: EntryPtr, raw: u64) {
        debug_assert!((p.index as usize) < self.entries_per_table, "entry index out of table");
        if let Some(f) = self.frame_mut(p.pfn) {
            f.entries.set(p.index as usize, raw);
        }
    }

    /// A pointer to entry `index` of table `pfn` in its current generation, derived for `addr`.
    pub fn ptr(&self, pfn: u64, index: usize, addr: u64) -> EntryPtr {
        let f = self.frame(pfn);
        EntryPtr {
            pfn,
            index: index as u16,
            level: f.map_or(0, |f| f.level),
            gen: f.map_or(0, |f| f.gen),
            addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_equal_tables_have_equal_lists_whatever_the_order_of_writes() {
        let mut a = Entries::default();
        let mut b = Entries::default();
        a.set(7, 0x1003);
        a.set(511, 0x2003);
        a.set(3, 0x3003);
        b.set(511, 0x2003);
        b.set(3, 0x9);
        b.set(3, 0x3003);
        b.set(100, 0x5);
        assert_ne!(a, b);
        b.set(7, 0x1003);
        b.set(100, 0); // a cleared entry is as if never set
        assert_eq!(a, b);
        assert_eq!((a.get(7), a.get(511), a.get(3), a.get(4)), (0x1003, 0x2003, 0x3003, 0));
        let seen: Vec<(usize, u64)> = a.nonzero().collect();
        assert_eq!(seen, vec![(3, 0x3003), (7, 0x1003), (511, 0x2003)]);
        // the kept sum is the sum of the list, whatever the writes that made it
        let sum = |e: &Entries| {
            e.nonzero().fold(0u64, |s, (i, v)| s.wrapping_add(fingerprint::slot(i as u64, v)))
        };
        assert_eq!((a.sum, b.sum), (sum(&a), sum(&b)));
        assert_eq!(fingerprint::hash_of(&a), fingerprint::hash_of(&b));
        b.set(7, 0x1007);
        assert_ne!(fingerprint::hash_of(&a), fingerprint::hash_of(&b));
        a.clear();
        assert_eq!(a, Entries::default());
        assert_eq!(a.get(7), 0);
    }
}
