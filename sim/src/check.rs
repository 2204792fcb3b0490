//! Checkers and the event recorder.
//!
//! The recorder keeps every step's event when tracing. Checkers are called from `Ctx` at the
//! moment of the access they judge (use-after-free, wrong mm, lock rules, the `hugetlb_walk()`
//! contract) or at the end of a run (share counts, leaks, deadlock), and write reports in the
//! dialect of the kernel tool they imitate (KASAN, lockdep), with provenance: CPU, operation,
//! kernel function and step of the allocation, the (queued) free and the bad use.

use crate::env::Env;
use crate::kernel::ctx::{Ctx, Who};
use crate::model::mem::{EntryPtr, FrameState, SiteRef};
use crate::model::sync::Held;
use crate::model::Kernel;
use crate::profile::ShareCount;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Actor, Event, Object, Report, ReportKind, Site};

/// Collects events (when tracing) and reports (always).
#[derive(Clone, Debug, Default)]
pub struct Checker {
    pub tracing: bool,
    pub events: Vec<Event>,
    pub reports: Vec<Report>,
    /// (kind, object) pairs already reported: each is reported once per run, as KASAN does.
    seen: Vec<(ReportKind, Option<Object>)>,
    pub time: u64,
    /// Reports attempted from within steps, filed or dropped as already seen: a loop that
    /// skips repeating steps checks that the one it repeats attempted none.
    pub attempts: u64,
    /// Steps accounted without being run ([`crate::kernel::ctx::Ctx::skip_steps`]).
    pub skipped: u64,
    /// Of those, the steps of a CPU running alone in the concurrent phase.
    pub skipped_concurrent: u64,
}

impl crate::model::CopyFrom for Checker {
    fn copy_from(&mut self, src: &Self) {
        let Checker { tracing, events, reports, seen, time, attempts, skipped, skipped_concurrent } =
            src;
        self.tracing = *tracing;
        self.events.clone_from(events);
        self.reports.clone_from(reports);
        self.seen.clone_from(seen);
        (self.time, self.attempts) = (*time, *attempts);
        (self.skipped, self.skipped_concurrent) = (*skipped, *skipped_concurrent);
    }
}

impl Checker {
    pub fn new(tracing: bool) -> Self {
        Checker { tracing, ..Default::default() }
    }

    /// Inlined so that an untraced step pays one branch, not a call (profiled: 3% of the
    /// step loop as a call); the event itself is built out of line.
    #[inline]
    pub fn record(
        &mut self,
        step: u64,
        who: Who,
        func: &'static str,
        object: Object,
        access: Access,
    ) {
        if self.tracing {
            self.record_event(step, who, func, object, access);
        }
    }

    #[inline(never)]
    fn record_event(
        &mut self,
        step: u64,
        who: Who,
        func: &'static str,
        object: Object,
        access: Access,
    ) {
        self.events.push(Event {
            step,
            time: self.time,
            actor: who.actor,
            op: who.op,
            op_step: who.op_step,
            func: func.to_string(),
            object,
            access,
            detail: String::new(),
            value: None,
        });
    }

    pub fn set_detail(&mut self, d: String) {
        if let Some(e) = self.events.last_mut() {
            e.detail = d;
        }
    }

    pub fn append_detail(&mut self, d: String) {
        if let Some(e) = self.events.last_mut() {
            if !e.detail.is_empty() {
                e.detail.push_str("; ");
            }
            e.detail.push_str(&d);
        }
    }

    /// The entry value the current step's event read or wrote (only called when tracing).
    pub fn set_value(&mut self, v: mmsim_traces::EntryValue) {
        if let Some(e) = self.events.last_mut() {
            e.value = Some(v);
        }
    }

    pub fn violated(&self) -> bool {
        !self.reports.is_empty()
    }

    fn push(&mut self, r: Report) {
        let key = (r.kind, r.object);
        if !self.seen.contains(&key) {
            self.seen.push(key);
            self.reports.push(r);
        }
    }
}

pub fn obj_name(o: Object) -> String {
    match o {
        Object::MmapLock(m) => format!("mmap_lock(mm{m})"),
        Object::PageTableLock(m) => format!("page_table_lock(mm{m})"),
        Object::VmaLock { mm, vma } => format!("hugetlb_vma_lock(mm{mm} vma{vma})"),
        Object::VmLock { mm, vma } => format!("vm_lock(mm{mm} vma{vma})"),
        Object::IMmapRwsem(f) => format!("i_mmap_rwsem(file{f})"),
        Object::FaultMutex(h) => format!("hugetlb_fault_mutex[{h}]"),
        Object::PtLock(p) => format!("ptlock(pfn 0x{p:x})"),
        Object::Table(p) => format!("page-table page pfn 0x{p:x}"),
        Object::Entry { pfn, index } => format!("entry {index} of pfn 0x{pfn:x}"),
        Object::Page(p) => format!("page pfn 0x{p:x}"),
        Object::Cpu(c) => format!("CPU{c}"),
        Object::Tlb(c) => format!("TLB of CPU{c}"),
        Object::Rcu => "RCU".into(),
        Object::Vmas(m) => format!("VMA tree of mm{m}"),
    }
}

pub fn actor_name(a: Actor) -> String {
    match a {
        Actor::Cpu(c) => format!("CPU{c}"),
        Actor::Irq(c) => format!("CPU{c} (IRQ)"),
        Actor::Rcu => "RCU".into(),
        Actor::Setup => "setup".into(),
        Actor::Teardown => "teardown".into(),
    }
}

/// `pmd[5] of pfn 0x1003` for event details.
pub fn entry_name(env: &Env, p: EntryPtr) -> String {
    let lvl = env.arch.levels().get(p.level as usize).map_or("?", |l| l.linux.name());
    format!("{lvl}[{}]@0x{:x}", p.index, p.pfn)
}

fn site(env: &Env, s: SiteRef) -> Site {
    Site {
        step: s.step,
        actor: s.actor,
        op: env.op(s.actor, s.op).map_or_else(|| "-".to_string(), |o| o.to_string()),
        func: s.func.to_string(),
    }
}

fn site_line(s: &Site) -> String {
    format!("  {} in {} at step {}, during {}", actor_name(s.actor), s.func, s.step, s.op)
}

fn held_list(k: &Kernel, cpu: u8) -> Vec<String> {
    k.held_by(cpu)
        .into_iter()
        .map(|(o, h)| {
            format!("{} ({})", obj_name(o), if h == Held::Read { "read" } else { "write" })
        })
        .collect()
}

/// The mms in bit mask `mask`, by name (`A, B`), or `none`.
fn mm_list(env: &Env, mask: u8) -> String {
    let names: Vec<&str> =
        (0..8u8).filter(|m| mask & (1 << m) != 0).map(|m| env.mm_name(m)).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// What a huge page is, for reports: `huge page pfn 0x200000 (index 0 of file huge)`, or an
/// anonymous page when no file's page cache holds it.
fn page_name(k: &Kernel, env: &Env, pfn: u64) -> String {
    for (f, file) in k.files.iter().enumerate() {
        if let Some(idx) = file.pages.iter().position(|&p| p == Some(pfn)) {
            let name = env.scenario.file_names.get(f).map_or("?", |s| s.as_str());
            return format!("page pfn 0x{pfn:x} (index {idx} of file {name})");
        }
    }
    format!("page pfn 0x{pfn:x} (not in any file's page cache: anonymous)")
}

/// Judge an access through `p`, a live table that mm `mm`'s tree no longer reaches (after an
/// unshare), by what it obtained (kernel-notes §4.1, the hugetlb_walk() rules):
/// - a read that got what `mm`'s own VMA maps at the walked address (the same page of the
///   same file at the same offset, with the same or fewer permissions), or an empty entry, is
///   a stale walk: the "pteval can be obsolete, but at least it's still always safe to access
///   the page" of rule 2.3, a Warning;
/// - a write (it lands in another mm's tables), a lower-level table the walker's mm does not
///   reach, another page or more permission than the VMA grants is a wrong-mm bug.
///
/// Returns the kind and the report's explanation line(s).
pub fn judge_foreign_walk(
    k: &Kernel,
    env: &Env,
    p: EntryPtr,
    mm: u8,
    write: bool,
) -> (ReportKind, String) {
    let owners = k.mem.frame(p.pfn).map_or(0, |f| f.owners);
    let raw = k.mem.load(p);
    let entry = env.arch.decode(p.level as usize, raw).unwrap_or(Entry::None);
    let level = env.arch.levels().get(p.level as usize);
    let lname = level.map_or("?", |l| l.linux.name());
    let head = format!(
        "{} of {lname}[{}] (0x{raw:x}) in page-table page pfn 0x{:x} at 0x{:x} on behalf of mm {}, which no longer maps that table (it belongs to {})",
        if write { "Write" } else { "Read" },
        p.index,
        p.pfn,
        p.addr,
        env.mm_name(mm),
        mm_list(env, owners)
    );
    let wrong = |why: String| (ReportKind::WrongMm, format!("{head}\n{why}"));
    if write {
        return wrong(format!(
            "the write lands in the tables of {}, not in mm {}'s own: it changes {}'s mapping at that address, and {}'s tables do not change",
            mm_list(env, owners),
            env.mm_name(mm),
            mm_list(env, owners),
            env.mm_name(mm)
        ));
    }
    let stale = |why: String| {
        (
            ReportKind::StaleWalk,
            format!(
                "{head}\n{why}: a stale but safe read (hugetlb_walk() rule 2.3: \"the pteval can be obsolete, but at least it's still always safe to access the page\")"
            ),
        )
    };
    match entry {
        Entry::None => stale("the entry is empty, so the walk obtained nothing".into()),
        Entry::Table { pfn } => {
            let child = k.mem.frame(pfn).map_or(0, |f| f.owners);
            if child & (1 << mm) != 0 {
                stale(format!(
                    "it leads to table pfn 0x{pfn:x}, which mm {} still reaches",
                    env.mm_name(mm)
                ))
            } else {
                wrong(format!(
                    "it leaks the lower-level page-table page pfn 0x{pfn:x}, which belongs to {}",
                    mm_list(env, child)
                ))
            }
        }
        Entry::Leaf { pfn, flags } => {
            let size = level.map_or(0, |l| l.entry_size());
            let ps = env.arch.page_shift();
            let vma = k.mms[mm as usize].find_vma(p.addr);
            let own = vma.and_then(|v| {
                let file = v.file.filter(|_| v.flags.hugetlb && v.huge_size == size)?;
                let idx = v.hugecache_index(p.addr, ps);
                let page = k.files[file as usize].pages.get(idx as usize).copied().flatten();
                Some((v, page))
            });
            let page = page_name(k, env, pfn);
            match own {
                Some((v, Some(mine))) if mine == pfn && (v.flags.write || !flags.write) => {
                    stale(format!("it maps {page}, which mm {}'s VMA maps there too", env.mm_name(mm)))
                }
                Some((v, Some(mine))) if mine == pfn => wrong(format!(
                    "it maps {page} writable, but mm {}'s VMA [0x{:x}, 0x{:x}) is read-only: the walk obtained more permission than its mm grants",
                    env.mm_name(mm),
                    v.start,
                    v.end
                )),
                Some((_, mine)) => wrong(format!(
                    "it leaks {page} of {}; mm {}'s VMA maps {} there",
                    mm_list(env, owners),
                    env.mm_name(mm),
                    mine.map_or("no page yet".to_string(), |m| page_name(k, env, m))
                )),
                None => wrong(format!(
                    "it leaks {page} of {}; mm {} maps no hugetlb file page of this size at 0x{:x}",
                    mm_list(env, owners),
                    env.mm_name(mm),
                    p.addr
                )),
            }
        }
    }
}

/// File a report about the access `cx` is making now.
pub fn report(cx: &mut Ctx, kind: ReportKind, func: &'static str, object: Object, what: String) {
    cx.check.attempts += 1;
    // reported once per run: skip building a report `push` would drop (profiled: a scenario
    // whose checker fires on every entry of a range spent most of its time formatting them)
    if cx.check.seen.contains(&(kind, Some(object))) {
        return;
    }
    let env = cx.env;
    let at = site(env, cx.site(func));
    let pfn = match object {
        Object::Table(p) | Object::PtLock(p) => Some(p),
        Object::Entry { pfn, .. } => Some(pfn),
        _ => None,
    };
    let frame = pfn.and_then(|p| cx.k.mem.frame(p));
    let unlinked = match (kind, frame) {
        (ReportKind::WrongMm | ReportKind::StaleWalk, Some(f)) => {
            f.unlinked.map(|(mask, s)| (mask, site(env, s)))
        }
        _ => None,
    };
    let (allocated, queued, freed) = match (kind, frame) {
        (ReportKind::UseAfterFreePtlock, Some(f)) => (
            f.allocated.map(|s| site(env, s)),
            f.queued.map(|s| site(env, s)),
            f.ptlock_freed.or(f.freed).map(|s| site(env, s)),
        ),
        (_, Some(f)) => (
            f.allocated.map(|s| site(env, s)),
            f.queued.map(|s| site(env, s)),
            f.freed.map(|s| site(env, s)),
        ),
        _ => (None, None, None),
    };
    let held = held_list(cx.k, cx.who.cpu);
    let title = match kind {
        ReportKind::UseAfterFreeTable | ReportKind::UseAfterFreePtlock => {
            format!("BUG: KASAN: use-after-free in {func}")
        }
        ReportKind::WrongMm => {
            format!("BUG: page-table page used by an mm that no longer maps it, in {func}")
        }
        ReportKind::StaleWalk => {
            format!("WARNING: stale walk through an unshared page-table page in {func}")
        }
        ReportKind::LockContract => {
            format!("WARNING: lock held when calling {func}() is not enough")
        }
        ReportKind::LockRule => format!("BUG: locking rule violated in {func}"),
        ReportKind::ShareCount => format!("BUG: Bad page state in {func}"),
        ReportKind::RangeRevisit => {
            format!("WARNING: {func} walks the PUD range it just unshared again")
        }
        ReportKind::SplitShared => {
            format!("WARNING: shared PMD table straddles a VMA boundary after {func}")
        }
        ReportKind::StaleTlb => {
            "BUG: stale TLB entry used after the flush claimed completion".to_string()
        }
        ReportKind::CowViolation => {
            "BUG: store through a private mapping into a shared page (copy-on-write broken)"
                .to_string()
        }
        _ => format!("BUG: {kind:?} in {func}"),
    };
    let mut text = String::new();
    text.push_str("==================================================================\n");
    text.push_str(&title);
    text.push('\n');
    text.push_str(&what);
    text.push('\n');
    text.push_str(&format!(
        "{} (mm {}) during {}\n",
        actor_name(at.actor),
        env.mm_name(cx.who.mm),
        at.op
    ));
    text.push_str(&site_line(&at));
    text.push('\n');
    if let Some(s) = &allocated {
        text.push_str("\nAllocated by:\n");
        text.push_str(&site_line(s));
        text.push('\n');
    }
    if let Some((mask, s)) = &unlinked {
        text.push_str(&format!("\nUnlinked from mm {} by:\n", mm_list(env, *mask)));
        text.push_str(&site_line(s));
        text.push('\n');
    }
    if let Some(s) = &queued {
        text.push_str("\nFree queued (tlb_remove_table / call_rcu) by:\n");
        text.push_str(&site_line(s));
        text.push('\n');
    }
    if let Some(s) = &freed {
        text.push_str(if kind == ReportKind::UseAfterFreePtlock {
            "\nptlock freed by:\n"
        } else {
            "\nFreed by:\n"
        });
        text.push_str(&site_line(s));
        text.push('\n');
    }
    text.push_str(&format!("\n{} locks held by {}:\n", held.len(), actor_name(at.actor)));
    for h in &held {
        text.push_str(&format!("  {h}\n"));
    }
    text.push_str("==================================================================\n");
    cx.check.push(Report {
        kind,
        title,
        object: Some(object),
        at,
        allocated,
        queued,
        freed,
        unlinked: unlinked.map(|(_, s)| s),
        held,
        text,
    });
}

/// `huge_pmd_unshare()`'s assertions (v6.1): `i_mmap_rwsem` held for write and, where the
/// profile has vma locks, the vma lock held for write.
/// With `unshare_asserts_first` (v6.1 to 2025-07) they run before the sharing check, and a
/// `VM_MAYSHARE` VMA without a vma lock fails them; afterwards they run only for a shared table.
/// `vma_lock: false` skips the vma-lock half (`hugetlb_split()`, see `HugePmdUnshare`).
pub fn assert_unshare_locks(cx: &mut Ctx, mm: u8, vma: u16, vma_lock: bool) {
    let cpu = cx.who.cpu;
    let Some(v) = cx.k.mms[mm as usize].vma(vma) else { return };
    let i_mmap_ok = v
        .file
        .is_some_and(|f| cx.k.files[f as usize].i_mmap_rwsem.held_by(cpu) == Some(Held::Write));
    let held = |l: &crate::model::sync::RwLock| l.held_by(cpu) == Some(Held::Write);
    let vma_ok = !vma_lock
        || !cx.env.sw.unsharer_vma_lock
        || !v.flags.mayshare
        || match v.vma_lock.as_ref() {
            Some(l) => held(l),
            None => !cx.env.sw.unshare_asserts_first,
        };
    if !i_mmap_ok || !vma_ok {
        let missing = if !i_mmap_ok { "i_mmap_rwsem" } else { "the hugetlb vma lock" };
        report(
            cx,
            ReportKind::LockRule,
            "huge_pmd_unshare",
            Object::VmaLock { mm, vma },
            format!("huge_pmd_unshare() called without {missing} held for write"),
        );
    }
}

/// The framed text of an end-of-run report.
fn frame_text(title: &str, what: &str, allocated: Option<&Site>) -> String {
    let mut t =
        String::from("==================================================================\n");
    t.push_str(title);
    t.push('\n');
    t.push_str(what);
    t.push('\n');
    if let Some(s) = allocated {
        t.push_str("\nAllocated by:\n");
        t.push_str(&site_line(s));
        t.push('\n');
    }
    t.push_str("==================================================================\n");
    t
}

/// End of the concurrent phase: every PMD table's share count must equal the number of PUD
/// entries pointing at it, minus one (oracle fact 1).
pub fn check_share_counts(k: &Kernel, env: &Env, step: u64, reports: &mut Checker) {
    let pud_level = env.pud_level() as u8;
    let pmd_level = env.pmd_level() as u8;
    for (pfn, f) in k.mem.frames() {
        if f.state != FrameState::Allocated || f.level != pmd_level {
            continue;
        }
        let mut pointers = 0u32;
        for (_, t) in k.mem.frames() {
            if t.state == FrameState::Allocated && t.level == pud_level {
                // a zero entry never points at a table
                pointers += t
                    .entries
                    .nonzero()
                    .filter(|&(_, raw)| {
                        env.arch.decode(pud_level as usize, raw) == Ok(Entry::Table { pfn })
                    })
                    .count() as u32;
            }
        }
        if pointers == 0 {
            continue;
        }
        let counted = match env.sw.share_count {
            ShareCount::Refcount => f.refcount.saturating_sub(1),
            ShareCount::PtShareCount => f.pt_share_count,
        };
        if counted != pointers - 1 {
            let at = Site {
                step,
                actor: Actor::Teardown,
                op: "-".into(),
                func: "check_share_counts".into(),
            };
            let what = format!(
                "PMD table pfn 0x{pfn:x}: {} PUD entries point at it, but its share count says {} sharers beyond the first",
                pointers, counted
            );
            let title = "BUG: bad PMD table share count".to_string();
            let text = frame_text(&title, &what, f.allocated.map(|s| site(env, s)).as_ref());
            reports.push(Report {
                kind: ReportKind::ShareCount,
                title,
                object: Some(Object::Table(pfn)),
                at,
                allocated: f.allocated.map(|s| site(env, s)),
                queued: None,
                freed: None,
                unlinked: None,
                held: vec![],
                text,
            });
        }
    }
}

/// After teardown every page-table page must be free.
pub fn check_leaks(k: &Kernel, env: &Env, step: u64, reports: &mut Checker) {
    for (pfn, f) in k.mem.frames() {
        if f.state != FrameState::Freed {
            let lvl = env.arch.levels().get(f.level as usize).map_or("?", |l| l.linux.name());
            let text = format!(
                "page-table page pfn 0x{pfn:x} ({lvl} table) is still {} after every mm exited",
                if f.state == FrameState::Allocated { "allocated" } else { "queued for freeing" }
            );
            let title = "BUG: page-table page leaked".to_string();
            let text = frame_text(&title, &text, f.allocated.map(|s| site(env, s)).as_ref());
            reports.push(Report {
                kind: ReportKind::Leak,
                title,
                object: Some(Object::Table(pfn)),
                at: Site {
                    step,
                    actor: Actor::Teardown,
                    op: "exit_mmap".into(),
                    func: "check_pgtables_leak".into(),
                },
                allocated: f.allocated.map(|s| site(env, s)),
                queued: f.queued.map(|s| site(env, s)),
                freed: None,
                unlinked: None,
                held: vec![],
                text,
            });
        }
    }
}

/// Nothing can run but work is left: name who waits for what, and who holds it.
pub fn report_deadlock(
    k: &Kernel,
    env: &Env,
    step: u64,
    waits: &[(Actor, &'static str, Object, Access)],
    reports: &mut Checker,
) {
    let mut text = String::from("INFO: task blocked forever: no CPU can make progress\n");
    for &(a, func, obj, acc) in waits {
        let holder = k.lock(obj).and_then(|l| l.some_holder());
        text.push_str(&format!(
            "  {} in {func} waits for {} ({acc:?}){}\n",
            actor_name(a),
            obj_name(obj),
            holder.map_or(String::new(), |h| format!(", held by CPU{h}"))
        ));
    }
    let (a, func, obj, _) =
        waits.first().copied().unwrap_or((Actor::Setup, "-", Object::Rcu, Access::Local));
    reports.push(Report {
        kind: ReportKind::Deadlock,
        title: "INFO: deadlock: every remaining CPU is blocked".into(),
        object: Some(obj),
        at: Site { step, actor: a, op: "-".into(), func: func.to_string() },
        allocated: None,
        queued: None,
        freed: None,
        unlinked: None,
        held: vec![],
        text,
    });
    let _ = env;
}

/// Starvation in the liveness phase, in the dialect of the kernel's hung-task detector: a CPU
/// stayed blocked under fair scheduling while the others completed more than `limit`
/// operations; `chain` says who waits for what, held by whom.
pub fn report_starvation(
    step: u64,
    (actor, func, obj): (Actor, &'static str, Object),
    op: String,
    limit: u64,
    chain: &[String],
    reports: &mut Checker,
) {
    let title = format!(
        "INFO: task {}:{func} blocked under fair scheduling while other CPUs completed more than {limit} operations",
        actor_name(actor)
    );
    let mut text =
        String::from("==================================================================\n");
    text.push_str(&title);
    text.push_str("\nBlocking chain (who waits for what, held by whom):\n");
    for l in chain {
        text.push_str(&format!("  {l}\n"));
    }
    text.push_str("==================================================================\n");
    reports.push(Report {
        kind: ReportKind::Starvation,
        title,
        object: Some(obj),
        at: Site { step, actor, op, func: func.to_string() },
        allocated: None,
        queued: None,
        freed: None,
        unlinked: None,
        held: vec![],
        text,
    });
}
