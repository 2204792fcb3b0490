//! A user load or store as the MMU performs it: TLB lookup, else a hardware page walk that may
//! start from a walk-cache entry and fills the TLB on the way; a missing or read-only
//! translation raises a page fault (`handle_mm_fault()` -> `hugetlb_fault()`), after which the
//! access is retried. The hardware walker takes no locks and reads whatever tables its cached
//! pointers lead to, which is how a missed walk-cache invalidation turns into a use of an
//! unshared or freed table.

use super::ctx::{Ctx, R};
use super::ops::UserFault;
use super::walk::{pgd_offset, translate};
use crate::model::mem::{EntryPtr, HugePage};
use crate::model::tlb::TlbEntry;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Object, ReportKind};
use std::task::Poll;

/// Page faults one access may take before it gives up (a real task would get SIGSEGV or loop).
const FAULTS_MAX: u8 = 3;

/// The name events carry for steps of the hardware walker.
const HW: &str = "mmu_hw_walk";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserAccess {
    mm: u8,
    at: u64,
    write: bool,
    pc: u8,
    page: u64,
    faults: u8,
    fault: Option<UserFault>,
}

impl UserAccess {
    pub fn new(mm: u8, at: u64, write: bool) -> Self {
        UserAccess { mm, at, write, pc: 0, page: 0, faults: 0, fault: None }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let (mm, at, cpu) = (self.mm, self.at, cx.who.cpu as usize);
        if self.pc == 0 {
            // One step, as one instruction is: TLB lookup; on a leaf hit the access; else the
            // hardware walk (from the deepest walk-cache entry, or the PGD), filling the TLB,
            // and the access. Flushes wait for walks in progress (DSB on arm64, IPIs between
            // instructions on x86), so nothing interleaves inside.
            cx.touch(HW, Object::Tlb(cx.who.cpu), Access::Read)?;
            let tlb = &cx.k.cpus[cpu].tlb;
            let (leaf, walk) = (tlb.lookup_leaf(mm, at), tlb.lookup_walk(mm, at));
            if let Some(e) = leaf.filter(|e| e.write || !self.write) {
                self.page = e.target + ((at - e.va) >> cx.env.arch.page_shift());
                cx.detail(|| format!("TLB hit: 0x{at:x} -> pfn 0x{:x}", e.target));
                self.check_leaf_hit(cx, e);
                self.data_access(cx, e.target, Some(e));
                return Ok(Poll::Ready(()));
            }
            let mut cur = match walk {
                Some(w) => {
                    self.check_walk_cache(cx, w);
                    let index = cx.env.arch.levels()[w.level as usize].index(at) as u16;
                    EntryPtr {
                        pfn: w.target,
                        index,
                        level: w.level,
                        gen: w.gen,
                        addr: at & !(cx.env.arch.levels()[w.level as usize].entry_size() - 1),
                    }
                }
                None => pgd_offset(cx, mm, at),
            };
            let levels = cx.env.arch.levels();
            let step = cx.step;
            loop {
                let level = cur.level as usize;
                let info = levels[level];
                let base = at & !(info.entry_size() - 1);
                match cx.hw_read_entry(HW, cur, Some(mm)) {
                    Entry::Table { pfn } if level + 1 < levels.len() => {
                        let gen = cx.k.mem.frame(pfn).map_or(0, |f| f.gen);
                        cx.k.cpus[cpu].tlb.fill(TlbEntry {
                            mm,
                            leaf: false,
                            va: base,
                            size: info.entry_size(),
                            target: pfn,
                            level: (level + 1) as u8,
                            gen,
                            filled: step,
                            ..Default::default()
                        });
                        cur = cx.ptr(pfn, level + 1, at);
                    }
                    Entry::Leaf { pfn, flags } if flags.write || !self.write => {
                        cx.k.cpus[cpu].tlb.fill(TlbEntry {
                            mm,
                            leaf: true,
                            va: base,
                            size: info.entry_size(),
                            target: pfn,
                            write: flags.write,
                            filled: step,
                            ..Default::default()
                        });
                        cx.detail(|| format!("walk: 0x{at:x} -> pfn 0x{pfn:x}"));
                        self.data_access(cx, pfn, None);
                        return Ok(Poll::Ready(()));
                    }
                    _ => {
                        cx.detail(|| {
                            format!("walk: 0x{at:x} not mapped (or read-only): page fault")
                        });
                        self.pc = 1;
                        return Ok(Poll::Pending);
                    }
                }
            }
        }
        // page fault: handle_mm_fault() under mmap_lock, then retry the access
        if self.faults >= FAULTS_MAX {
            return Ok(Poll::Ready(()));
        }
        let (write, f) = (self.write, &mut self.fault);
        let fault = f.get_or_insert_with(|| UserFault::new(mm, at, write));
        if fault.step(cx)?.is_ready() {
            self.fault = None;
            self.faults += 1;
            self.pc = 0;
        }
        Ok(Poll::Pending)
    }

    /// A cached leaf is stale if the page tables no longer map `at` to its page; using it is a
    /// bug once a flush of the mm claimed completion after it was cached.
    /// A store through a cached writable leaf whose entry has since been write-protected
    /// (fork's `huge_ptep_set_wrprotect()`, mprotect) is stale too: it bypasses the write
    /// fault that copy-on-write or the protection change relies on.
    fn check_leaf_hit(&self, cx: &mut Ctx, e: TlbEntry) {
        let now = translate(cx.k, cx.env.arch, self.mm, self.at);
        let now_pfn = now.map(|(pfn, _)| pfn);
        if now_pfn != Some(self.page) {
            let now = now_pfn.map_or("nothing".to_string(), |p| format!("pfn 0x{p:x}"));
            self.stale(
                cx,
                e,
                format!("it led to page pfn 0x{:x}, the page tables now map {now}", self.page),
            );
        } else if self.write && now.is_some_and(|(_, f)| !f.write) {
            self.stale(
                cx,
                e,
                format!(
                    "it is writable, but the page tables now map pfn 0x{:x} read-only (write-protected): the store bypasses the write fault",
                    self.page
                ),
            );
        }
    }

    /// The load or store itself, on the data page `pfn` (head or sub-page): a store records
    /// its mm as the page's contents. Through a private hugetlb mapping the detail says whose
    /// data the access saw or wrote, and a store must land in a page that is this mapping's
    /// own (anonymous, mapped once), unless the mm's `dup_mmap()` is still running (a store
    /// before the fork's flush is part of what the child copies). `tlb` is the TLB entry a hit
    /// used.
    fn data_access(&self, cx: &mut Ctx, pfn: u64, tlb: Option<TlbEntry>) {
        let (mm, at) = (self.mm, self.at);
        let private = cx.k.mms[mm as usize]
            .find_vma(at)
            .is_some_and(|v| v.flags.hugetlb && !v.flags.mayshare);
        let Some(p) = cx.k.mem.huge_page(pfn).copied() else { return };
        if self.write {
            if private && (p.mapcount > 1 || !p.anon) && !cx.k.mms[mm as usize].dup_mmap {
                self.cow_violation(cx, pfn, p, tlb);
            }
            if let Some(page) = cx.k.mem.huge_page_mut(pfn) {
                page.data = u64::from(mm) + 1;
            }
        }
        if private {
            let (env, write) = (cx.env, self.write);
            cx.detail_more(|| {
                let whose = |d: u64| match d {
                    0 => "nobody's".to_string(),
                    d => format!("mm {}'s", env.mm_name((d - 1) as u8)),
                };
                if write {
                    format!("stores mm {}'s data (was {})", env.mm_name(mm), whose(p.data))
                } else {
                    format!("reads {} data", whose(p.data))
                }
            });
        }
    }

    #[cold]
    #[inline(never)]
    fn cow_violation(&self, cx: &mut Ctx, pfn: u64, p: HugePage, tlb: Option<TlbEntry>) {
        let (mm, at) = (self.mm, self.at);
        let head = cx.k.mem.huge_head(pfn);
        let others: Vec<&str> = (0..cx.k.mms.len() as u8)
            .filter(|&o| {
                o != mm
                    && translate(cx.k, cx.env.arch, o, at)
                        .is_some_and(|(q, _)| cx.k.mem.huge_head(q) == head)
            })
            .map(|o| cx.env.mm_name(o))
            .collect();
        let own = translate(cx.k, cx.env.arch, mm, at).map(|(_, f)| f.write);
        let how = match (tlb, own) {
            (Some(e), Some(false)) => format!(
                "through a TLB entry filled writable at step {}, while mm {}'s entry is write-protected: the flush that should have dropped it did not",
                e.filled,
                cx.env.mm_name(mm)
            ),
            (_, Some(true)) => format!(
                "through mm {}'s writable entry: the page was shared without write-protecting it",
                cx.env.mm_name(mm)
            ),
            _ => "through a stale translation".to_string(),
        };
        let whose = if p.anon {
            format!(
                "an anonymous page mapped {} times{}",
                p.mapcount,
                if others.is_empty() {
                    String::new()
                } else {
                    format!(", also by mm {}", others.join(", "))
                }
            )
        } else {
            "a page of the file's page cache".to_string()
        };
        let text = format!(
            "CPU{} stored at 0x{at:x} through mm {}'s private mapping into page pfn 0x{pfn:x}, {whose}, {how}; the other mapping sees the store (copy-on-write broken: memory corruption across processes)",
            cx.who.cpu,
            cx.env.mm_name(mm),
        );
        crate::check::report(cx, ReportKind::CowViolation, HW, Object::Page(pfn), text);
    }

    /// A walk-cache entry is stale if the mm's tables no longer lead to that table page.
    fn check_walk_cache(&self, cx: &mut Ctx, w: TlbEntry) {
        if !table_reachable(cx, self.mm, self.at, w) {
            let f = cx.k.mem.frame(w.target);
            let owners = f.map_or(0, |f| f.owners);
            let whose: Vec<&str> =
                (0..8u8).filter(|m| owners & (1 << m) != 0).map(|m| cx.env.mm_name(m)).collect();
            let why = format!(
                "it led into table pfn 0x{:x}, which mm {} no longer maps (mapped by: {})",
                w.target,
                cx.env.mm_name(self.mm),
                if whose.is_empty() { "nobody".to_string() } else { whose.join(", ") }
            );
            self.stale(cx, w, why);
        }
    }

    fn stale(&self, cx: &mut Ctx, e: TlbEntry, why: String) {
        let flushed = cx.k.mms[self.mm as usize].flushed_at;
        if flushed <= e.filled {
            return; // the kernel has not claimed a flush since: an ordinary race window
        }
        let what = if e.leaf { "leaf translation" } else { "walk-cache entry" };
        let text = format!(
            "CPU{} used a cached {what} for 0x{:x} (filled at step {}) after the flush of mm {} claimed completion at step {}: {why}",
            cx.who.cpu,
            self.at,
            e.filled,
            cx.env.mm_name(self.mm),
            flushed,
        );
        crate::check::report(cx, ReportKind::StaleTlb, HW, Object::Tlb(cx.who.cpu), text);
    }
}

/// Whether walking `mm`'s tables for `va` still reaches the table a walk-cache entry holds.
fn table_reachable(cx: &Ctx, mm: u8, va: u64, w: TlbEntry) -> bool {
    let arch = cx.env.arch;
    let mut table = cx.k.mms[mm as usize].pgd;
    for (l, info) in arch.levels().iter().enumerate().take(w.level as usize) {
        let Some(f) = cx.k.mem.frame(table) else { return false };
        match arch.decode(l, f.entries.get(info.index(va))) {
            Ok(Entry::Table { pfn }) => table = pfn,
            _ => return false,
        }
    }
    table == w.target && cx.k.mem.frame(table).is_some_and(|f| f.gen == w.gen)
}
