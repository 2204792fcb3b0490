//! Address spaces and files: `mm_struct`, `vm_area_struct` (with the hugetlb vma lock) and a
//! hugetlbfs file's `address_space` (with `i_mmap_rwsem`, the mapping VMAs and the page cache).

use super::fingerprint;
use super::sync::RwLock;
use std::sync::Arc;

/// `vm_flags` bits that matter here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VmFlags {
    /// `VM_SHARED`: MAP_SHARED and writable.
    pub shared: bool,
    /// `VM_MAYSHARE`: MAP_SHARED.
    pub mayshare: bool,
    pub read: bool,
    pub write: bool,
    /// `VM_HUGETLB`.
    pub hugetlb: bool,
}

/// A `vm_area_struct`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vma {
    /// Stable identity within its mm (never reused), used to name its vma lock.
    pub id: u16,
    pub start: u64,
    pub end: u64,
    pub flags: VmFlags,
    /// Index of the file in `Kernel::files`.
    pub file: Option<u8>,
    /// `vm_pgoff` in base pages.
    pub pgoff: u64,
    /// `huge_page_size(hstate_vma(vma))`.
    pub huge_size: u64,
    /// The hugetlb vma lock in `vm_private_data` (`struct hugetlb_vma_lock`); `None` when the
    /// VMA is not `VM_MAYSHARE` or `hugetlb_vma_lock_alloc()` failed (then it never shares).
    pub vma_lock: Option<RwLock>,
    /// The per-VMA lock `vma->vm_lock` (CONFIG_PER_VMA_LOCK, v6.4): page faults hold it for
    /// read instead of `mmap_lock`; `vma_start_write()` waits for them to leave. Never held
    /// for write: write-locked means `vm_lock_seq == mm_lock_seq`.
    pub vm_lock: RwLock,
    /// `vma->vm_lock_seq`: the `mm_lock_seq` of the `mmap_lock` write section that
    /// write-locked this VMA (`u32::MAX`: never).
    pub vm_lock_seq: u32,
}

impl Vma {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// `__vma_shareable_lock()`: a `VM_MAYSHARE` VMA with a vma lock.
    pub fn write_locked(&self, mm_lock_seq: u32) -> bool {
        self.vm_lock_seq == mm_lock_seq
    }
    pub fn shareable_lock(&self) -> bool {
        self.flags.mayshare && self.vma_lock.is_some()
    }
    /// Index of the huge page at `addr` in the file (`vma_hugecache_offset()`).
    pub fn hugecache_index(&self, addr: u64, page_shift: u32) -> u64 {
        ((addr - self.start) + (self.pgoff << page_shift)) / self.huge_size
    }
}

/// An `mm_struct`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mm {
    pub pgd: u64,
    pub mmap_lock: RwLock,
    pub page_table_lock: RwLock,
    /// The VMA tree, sorted by start address.
    pub vmas: Vec<Vma>,
    /// `mm->pgtables_bytes` in PMD tables (`mm_inc_nr_pmds()`/`mm_dec_nr_pmds()`).
    pub nr_pmds: i64,
    /// `mm_cpumask()`: CPUs that run (or ran) this mm.
    pub cpumask: u8,
    pub next_vma_id: u16,
    /// Step at which the last TLB flush of this mm claimed completion (0: none yet).
    pub flushed_at: u64,
    /// `mm->mm_lock_seq`: bumped by every `mmap_write_unlock()` (`vma_end_write_all()`), which
    /// ends the write lock of every VMA write-locked in that section.
    pub mm_lock_seq: u32,
    /// `dup_mmap()` of this mm is running (from `mmap_write_lock(oldmm)` to
    /// `mmap_write_unlock(oldmm)`): until it returns, a store through a TLB entry filled
    /// before the fork write-protected it is part of the parent's state the child copies.
    pub dup_mmap: bool,
}

impl Mm {
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        self.vmas.iter().find(|v| v.contains(addr))
    }
    pub fn vma(&self, id: u16) -> Option<&Vma> {
        self.vmas.iter().find(|v| v.id == id)
    }
    pub fn vma_mut(&mut self, id: u16) -> Option<&mut Vma> {
        self.vmas.iter_mut().find(|v| v.id == id)
    }
}

impl super::CopyFrom for Mm {
    fn copy_from(&mut self, src: &Self) {
        let Mm {
            pgd,
            mmap_lock,
            page_table_lock,
            vmas,
            nr_pmds,
            cpumask,
            next_vma_id,
            flushed_at,
            mm_lock_seq,
            dup_mmap,
        } = src;
        (self.pgd, self.mmap_lock, self.page_table_lock) = (*pgd, *mmap_lock, *page_table_lock);
        self.vmas.clone_from(vmas);
        (self.nr_pmds, self.cpumask, self.next_vma_id) = (*nr_pmds, *cpumask, *next_vma_id);
        (self.flushed_at, self.mm_lock_seq, self.dup_mmap) = (*flushed_at, *mm_lock_seq, *dup_mmap);
    }
}

/// A hugetlbfs file (or `memfd_create(MFD_HUGETLB)`) and its `address_space`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct File {
    pub i_mmap_rwsem: RwLock,
    /// The `i_mmap` interval tree, as (mm, vma id) in insertion order.
    pub i_mmap: Vec<(u8, u16)>,
    /// Page cache: head pfn of each huge page by file index.
    pub pages: PageCache,
}

impl super::CopyFrom for File {
    fn copy_from(&mut self, src: &Self) {
        let File { i_mmap_rwsem, i_mmap, pages } = src;
        self.i_mmap_rwsem = *i_mmap_rwsem;
        self.i_mmap.clone_from(i_mmap);
        self.pages.clone_from(pages);
    }
}

/// A file's page cache: the head pfn of each huge page by file index. Reads go through the
/// slice it derefs to; writes through [`PageCache::set`], which keeps the slots'
/// [`fingerprint::slot`] sum, so `Hash` costs the same whatever the file's size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageCache {
    /// Shared by clones of the state until one of them writes.
    slots: Arc<Vec<Option<u64>>>,
    sum: u64,
}

impl PageCache {
    /// An empty cache of `n` huge pages.
    pub fn new(n: usize) -> Self {
        PageCache { slots: Arc::new(vec![None; n]), sum: 0 }
    }

    /// Put `page` in slot `idx` (`None` removes it); an index past the end is ignored.
    pub fn set(&mut self, idx: usize, page: Option<u64>) {
        let Some(&old) = self.slots.get(idx) else { return };
        if old == page {
            return;
        }
        if let Some(old) = old {
            self.sum = self.sum.wrapping_sub(fingerprint::slot(idx as u64, old));
        }
        if let Some(new) = page {
            self.sum = self.sum.wrapping_add(fingerprint::slot(idx as u64, new));
        }
        Arc::make_mut(&mut self.slots)[idx] = page;
    }
}

impl std::ops::Deref for PageCache {
    type Target = [Option<u64>];
    fn deref(&self) -> &[Option<u64>] {
        &self.slots
    }
}

impl std::hash::Hash for PageCache {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // equal slots have equal sums: consistent with Eq
        self.slots.len().hash(h);
        self.sum.hash(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_cache_hashes_its_contents_whatever_the_order_of_writes() {
        let (mut a, mut b) = (PageCache::new(512), PageCache::new(512));
        a.set(3, Some(0x10_0000));
        a.set(500, Some(0x10_0200));
        b.set(500, Some(0x10_0200));
        b.set(3, Some(0x77));
        b.set(7, Some(0x78));
        b.set(3, Some(0x10_0000));
        assert_ne!(fingerprint::hash_of(&a), fingerprint::hash_of(&b));
        b.set(7, None);
        b.set(9999, Some(1)); // past the end: ignored
        assert_eq!(a, b);
        assert_eq!(fingerprint::hash_of(&a), fingerprint::hash_of(&b));
        assert_eq!((a[3], a[4], a.len()), (Some(0x10_0000), None, 512));
    }
}
