//! The kernel's objects: physical memory and page-table pages, address spaces, files, locks,
//! CPUs and RCU. Plain data that is cheap to clone and hash; no scheduling, no checking.

pub mod cow;
pub mod cpu;
pub mod fingerprint;
pub mod mem;
pub mod mm;
pub mod rcu;
pub mod sync;
pub mod tlb;

use cpu::Cpu;
use fingerprint::Keyed;
use mem::PhysMem;
use mm::{File, Mm};
use mmsim_traces::Object;
use rcu::Rcu;
use sync::RwLock;

/// Overwrite a value with a copy of another, reusing the allocations it already holds: the
/// exhaustive search copies the state at every branch into an engine it recycled, where a
/// `clone()` would allocate every vector again. The result equals `src.clone()`; every struct
/// names its fields, so a new one does not compile until it is copied.
pub trait CopyFrom {
    fn copy_from(&mut self, src: &Self);
}

/// [`CopyFrom`] for a vector of values that hold allocations of their own.
pub fn copy_vec_from<T: Clone + CopyFrom>(dst: &mut Vec<T>, src: &[T]) {
    dst.truncate(src.len());
    let n = dst.len();
    for (d, s) in dst.iter_mut().zip(src) {
        d.copy_from(s);
    }
    dst.extend_from_slice(&src[n..]);
}

/// [`CopyFrom`] for shared parts: a slot that already holds the same part is left alone (no
/// reference count taken and dropped), which is most of them between states of one search.
pub fn copy_arcs_from<T>(dst: &mut Vec<std::sync::Arc<T>>, src: &[std::sync::Arc<T>]) {
    dst.truncate(src.len());
    let n = dst.len();
    for (d, s) in dst.iter_mut().zip(src) {
        if !std::sync::Arc::ptr_eq(d, s) {
            *d = s.clone();
        }
    }
    dst.extend_from_slice(&src[n..]);
}

impl CopyFrom for Kernel {
    fn copy_from(&mut self, src: &Self) {
        let Kernel { mem, mms, files, cpus, rcu, fault_mutex } = src;
        self.mem.copy_from(mem);
        copy_vec_from(&mut self.mms, mms);
        copy_vec_from(&mut self.files, files);
        self.cpus.clone_from(cpus);
        let Rcu { callbacks } = rcu;
        self.rcu.callbacks.clone_from(callbacks);
        self.fault_mutex = *fault_mutex;
    }
}

/// Number of `hugetlb_fault_mutex_table` entries (a power of two; the kernel uses ~8 x CPUs).
pub const FAULT_MUTEXES: usize = 8;

/// The whole simulated kernel state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub mem: PhysMem,
    /// Each part keeps its fingerprint for the search's key until it is written ([`Keyed`]).
    pub mms: Vec<Keyed<Mm>>,
    pub files: Vec<Keyed<File>>,
    pub cpus: Vec<Keyed<Cpu>>,
    pub rcu: Rcu,
    pub fault_mutex: [RwLock; FAULT_MUTEXES],
}

impl Kernel {
    /// The lock word behind a lock object, if it names a lock that exists.
    pub fn lock(&self, obj: Object) -> Option<&RwLock> {
        match obj {
            Object::MmapLock(m) => self.mms.get(m as usize).map(|m| &m.mmap_lock),
            Object::PageTableLock(m) => self.mms.get(m as usize).map(|m| &m.page_table_lock),
            Object::VmaLock { mm, vma } => self.mms.get(mm as usize)?.vma(vma)?.vma_lock.as_ref(),
            Object::VmLock { mm, vma } => Some(&self.mms.get(mm as usize)?.vma(vma)?.vm_lock),
            Object::IMmapRwsem(f) => self.files.get(f as usize).map(|f| &f.i_mmap_rwsem),
            Object::FaultMutex(h) => self.fault_mutex.get(h as usize),
            Object::PtLock(pfn) => self.mem.frame(pfn).map(|f| &f.ptlock),
            _ => None,
        }
    }

    pub fn lock_mut(&mut self, obj: Object) -> Option<&mut RwLock> {
        match obj {
            Object::MmapLock(m) => self.mms.get_mut(m as usize).map(|m| &mut m.mmap_lock),
            Object::PageTableLock(m) => {
                self.mms.get_mut(m as usize).map(|m| &mut m.page_table_lock)
            }
            Object::VmaLock { mm, vma } => {
                self.mms.get_mut(mm as usize)?.vma_mut(vma)?.vma_lock.as_mut()
            }
            Object::VmLock { mm, vma } => {
                Some(&mut self.mms.get_mut(mm as usize)?.vma_mut(vma)?.vm_lock)
            }
            Object::IMmapRwsem(f) => self.files.get_mut(f as usize).map(|f| &mut f.i_mmap_rwsem),
            Object::FaultMutex(h) => self.fault_mutex.get_mut(h as usize),
            Object::PtLock(pfn) => self.mem.frame_mut(pfn).map(|f| &mut f.ptlock),
            _ => None,
        }
    }

    /// Every lock `cpu` holds, in a stable order (for lockdep-style reports).
    pub fn held_by(&self, cpu: u8) -> Vec<(Object, sync::Held)> {
        let mut out = Vec::new();
        let mut push = |obj: Object, l: &RwLock| {
            if let Some(h) = l.held_by(cpu) {
                out.push((obj, h));
            }
        };
        for (i, m) in self.mms.iter().enumerate() {
            push(Object::MmapLock(i as u8), &m.mmap_lock);
            push(Object::PageTableLock(i as u8), &m.page_table_lock);
            for v in &m.vmas {
                if let Some(l) = &v.vma_lock {
                    push(Object::VmaLock { mm: i as u8, vma: v.id }, l);
                }
                push(Object::VmLock { mm: i as u8, vma: v.id }, &v.vm_lock);
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            push(Object::IMmapRwsem(i as u8), &f.i_mmap_rwsem);
        }
        for (i, l) in self.fault_mutex.iter().enumerate() {
            push(Object::FaultMutex(i as u16), l);
        }
        for (pfn, f) in self.mem.frames() {
            push(Object::PtLock(pfn), &f.ptlock);
        }
        out
    }
}
