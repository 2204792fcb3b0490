//! A Mermaid `sequenceDiagram` (mdBook-friendly): participants are the CPU lanes (plus setup,
//! RCU and teardown when they act) and the key page-table pages; lock operations are notes with
//! activation bars, lifetime events and entry accesses are messages to the table, IPIs are
//! messages between CPUs, and the race is a `-x` message in a red box with the report.
//!
//! Owns what is worth a line: only "key" tables (shared, unshared, queued, freed, reported or
//! focused) get a participant; consecutive accesses to their entries collapse into one line;
//! plain reads and writes elsewhere are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use mmsim_traces::{Access, Event, Object, Report, Trace};

use crate::label::{mermaid_text as txt, object_label, pfn_of, Lane, LockKind};
use crate::lifetime::SpanEventKind;
use crate::view::{RenderOptions, View};

/// Render the trace as a Mermaid sequence diagram.
pub fn render_mermaid(trace: &Trace, opts: &RenderOptions) -> String {
    let v = View::new(trace, opts);
    let mut seq = Seq {
        trace,
        keys: key_tables(&v, opts),
        reports: BTreeMap::new(),
        body: Vec::new(),
        lanes: BTreeSet::new(),
        tables: BTreeSet::new(),
        active: BTreeMap::new(),
        pending: BTreeMap::new(),
    };
    for r in &v.reports {
        seq.reports.entry(r.at.step).or_default().push(*r);
    }
    for e in &v.events {
        seq.event(e);
    }
    seq.flush();

    let mut out = String::from("sequenceDiagram\n");
    let h = &trace.header;
    let title = v
        .reports
        .first()
        .map_or_else(|| format!("{} ({})", h.scenario, trace.verdict), |r| r.title.clone());
    let _ = writeln!(out, "    title {}", txt(&title));
    let mut lanes = seq.lanes.clone();
    if opts.focus_pfn.is_none() {
        lanes.extend(v.lanes.iter().copied().filter(|l| matches!(l, Lane::Cpu(_))));
    }
    for lane in &lanes {
        let mut alias = lane.name(trace);
        if let Some(mm) = lane.mm(trace).filter(|m| !m.is_empty()) {
            let _ = write!(alias, " (mm {mm})");
        }
        let _ = writeln!(out, "    participant {} as {}", lane.id(), txt(&alias));
    }
    for p in &seq.tables {
        let _ = writeln!(out, "    participant {} as table {p:#x}", table_id(*p));
    }
    for l in seq.body {
        out.push_str("    ");
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// How much a step is worth in the diagram.
enum Worth {
    /// Left out.
    Skip,
    /// Collapsed with its lane's neighbours into one summary line.
    Routine,
    /// A line of its own.
    Notable,
}

struct Seq<'t> {
    trace: &'t Trace,
    keys: BTreeSet<u64>,
    reports: BTreeMap<u64, Vec<&'t Report>>,
    body: Vec<String>,
    /// Participants used.
    lanes: BTreeSet<Lane>,
    tables: BTreeSet<u64>,
    /// Open activations per lane (sleeping-lock holds we drew).
    active: BTreeMap<Lane, usize>,
    /// Routine steps not yet written, per lane.
    pending: BTreeMap<Lane, Vec<&'t Event>>,
}

impl<'t> Seq<'t> {
    fn key(&self, e: &Event) -> Option<u64> {
        pfn_of(e.object).filter(|p| self.keys.contains(p))
    }

    fn worth(&self, e: &Event) -> Worth {
        let lane = Lane::of(e.actor);
        let key = self.key(e).is_some();
        let lifetime = matches!(
            e.access,
            Access::Alloc | Access::Share | Access::Unshare | Access::QueueFree | Access::Free
        ) || (e.access == Access::LockFree && matches!(e.object, Object::PtLock(_)));
        if self.reports.contains_key(&e.step) || (key && lifetime) {
            return Worth::Notable;
        }
        if matches!(lane, Lane::Setup | Lane::Teardown) {
            return Worth::Routine;
        }
        let lock = LockKind::of(e.object);
        match e.access {
            Access::LockRead | Access::LockWrite | Access::UnlockRead | Access::UnlockWrite => {
                match lock {
                    Some(LockKind::PtLock) if key => Worth::Routine,
                    Some(LockKind::PtLock) | None => Worth::Skip,
                    Some(_) => Worth::Notable,
                }
            }
            Access::Read | Access::Write if key => Worth::Routine,
            Access::IpiSend | Access::IpiHandle | Access::IpiWait => Worth::Notable,
            Access::GracePeriod | Access::TlbFlush => Worth::Notable,
            _ => Worth::Skip,
        }
    }

    fn event(&mut self, e: &'t Event) {
        match self.worth(e) {
            Worth::Skip => {}
            Worth::Routine => self.pending.entry(Lane::of(e.actor)).or_default().push(e),
            Worth::Notable => {
                self.flush();
                self.notable(e);
            }
        }
    }

    fn push(&mut self, lane: Lane, line: String) {
        self.lanes.insert(lane);
        self.body.push(line);
    }

    fn table(&mut self, pfn: u64) -> String {
        self.tables.insert(pfn);
        table_id(pfn)
    }

    /// Write every lane's pending routine steps, earliest run first.
    fn flush(&mut self) {
        let mut runs: Vec<(Lane, Vec<&Event>)> =
            std::mem::take(&mut self.pending).into_iter().collect();
        runs.sort_by_key(|(_, r)| r.first().map(|e| e.step));
        for (lane, run) in runs {
            self.run(lane, &run);
        }
    }

    fn run(&mut self, lane: Lane, run: &[&Event]) {
        let me = lane.id();
        let (Some(first), Some(last)) = (run.first(), run.last()) else { return };
        let same_table = run.iter().map(|e| self.key(e)).collect::<BTreeSet<_>>();
        let target = match same_table.iter().next() {
            Some(Some(p)) if same_table.len() == 1 => Some(*p),
            _ => None,
        };
        let text = if run.len() == 1 {
            let e = first;
            let mut t = format!("s{} {}", e.step, what(e));
            if let Object::Entry { index, .. } = e.object {
                let _ = write!(t, " [{index}]");
            }
            if !e.detail.is_empty() {
                let _ = write!(t, " {}", e.detail);
            }
            let _ = write!(t, " ({})", e.func);
            txt(&t)
        } else {
            let mut counts: Vec<(String, usize)> = Vec::new();
            let mut funcs: Vec<&str> = Vec::new();
            for e in run {
                let w = what(e);
                match counts.iter_mut().find(|(k, _)| *k == w) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((w, 1)),
                }
                if !funcs.contains(&e.func.as_str()) {
                    funcs.push(&e.func);
                }
            }
            let mut t = format!("s{}-s{} {} steps: ", first.step, last.step, run.len());
            let parts: Vec<String> = counts
                .iter()
                .take(4)
                .map(|(k, n)| if *n > 1 { format!("{k} x{n}") } else { k.clone() })
                .collect();
            t.push_str(&parts.join(", "));
            if counts.len() > 4 {
                t.push_str(", ...");
            }
            let more = if funcs.len() > 3 { ", ..." } else { "" };
            let _ = write!(t, " ({}{more})", funcs[..funcs.len().min(3)].join(", "));
            txt(&t)
        };
        let line = match target {
            Some(p) => format!("{me}->>{}: {text}", self.table(p)),
            None => format!("Note over {me}: {text}"),
        };
        self.push(lane, line);
    }

    fn notable(&mut self, e: &'t Event) {
        let lane = Lane::of(e.actor);
        let me = lane.id();
        let step = e.step;
        let func = txt(&e.func);
        let key = self.key(e);
        if let Some(reports) = self.reports.get(&step).cloned() {
            // The offending access: a red box, a crossed arrow and the report.
            let target = key.map_or_else(|| me.clone(), |p| self.table(p));
            self.push(lane, "rect rgb(255, 215, 215)".into());
            let obj = txt(&object_label(e.object));
            self.push(lane, format!("{me}-x{target}: s{step} {} {obj} ({func})", verb(e.access)));
            for r in reports {
                let mut note = txt(&r.title);
                if let Some(f) = r.freed.as_ref().or(r.queued.as_ref()) {
                    let by = Lane::of(f.actor).name(self.trace);
                    let _ =
                        write!(note, " - freed at s{} by {} in {}", f.step, txt(&by), txt(&f.func));
                } else if let Some((s, cause)) = crate::graph::race_origin(self.trace, r) {
                    if let Some(u) = self.trace.events.iter().find(|e| e.step == s) {
                        let by = Lane::of(u.actor).name(self.trace);
                        let _ = write!(
                            note,
                            " - {} at s{s} by {} in {}",
                            cause.name(),
                            txt(&by),
                            txt(&u.func)
                        );
                    }
                }
                let over = if target == me { me.clone() } else { format!("{me},{target}") };
                self.push(lane, format!("Note over {over}: {note}"));
            }
            self.push(lane, "end".into());
            return;
        }
        if let Some(p) = key {
            // Lifetime event of a key table.
            let t = self.table(p);
            let arrow =
                if matches!(e.access, Access::Free | Access::LockFree) { "-x" } else { "->>" };
            let what = if e.access == Access::LockFree { "ptlock freed" } else { e.access.name() };
            self.push(lane, format!("{me}{arrow}{t}: s{step} {what} ({func})"));
            return;
        }
        match (e.object, e.access) {
            (obj, Access::LockRead | Access::LockWrite) => {
                let mode = if e.access == Access::LockRead { "R" } else { "W" };
                let obj = txt(&object_label(obj));
                self.push(lane, format!("Note over {me}: s{step} + {obj} {mode} ({func})"));
                self.push(lane, format!("activate {me}"));
                *self.active.entry(lane).or_default() += 1;
            }
            (obj, Access::UnlockRead | Access::UnlockWrite) => {
                let n = self.active.entry(lane).or_default();
                if *n > 0 {
                    *n -= 1;
                    let mode = if e.access == Access::UnlockRead { "R" } else { "W" };
                    let obj = txt(&object_label(obj));
                    self.push(lane, format!("Note over {me}: s{step} - {obj} {mode} ({func})"));
                    self.push(lane, format!("deactivate {me}"));
                }
            }
            (Object::Cpu(t), Access::IpiSend) => {
                let to = Lane::Cpu(t);
                self.lanes.insert(to);
                self.push(lane, format!("{me}->>{}: s{step} IPI ({func})", to.id()));
            }
            (_, Access::IpiHandle) => {
                self.push(lane, format!("Note over {me}: s{step} IPI handled ({func})"));
            }
            (Object::Cpu(t), Access::IpiWait) if Lane::Cpu(t) != lane => {
                let from = Lane::Cpu(t);
                self.lanes.insert(from);
                self.push(lane, format!("{}-->>{me}: s{step} IPI acked ({func})", from.id()));
            }
            (_, Access::IpiWait) => {
                self.push(lane, format!("Note over {me}: s{step} IPI acked ({func})"));
            }
            (_, Access::GracePeriod) => {
                self.push(lane, format!("Note over {me}: s{step} grace period ({func})"));
            }
            (obj, Access::TlbFlush) => {
                let obj = txt(&object_label(obj));
                self.push(lane, format!("Note over {me}: s{step} TLB flush {obj} ({func})"));
            }
            _ => {}
        }
    }
}

fn table_id(pfn: u64) -> String {
    format!("t{pfn:x}")
}

/// `lock`, `lock R`, `unlock`, `unlock R`, else the access name.
fn verb(a: Access) -> &'static str {
    match a {
        Access::LockRead => "lock R",
        Access::LockWrite => "lock",
        Access::UnlockRead => "unlock R",
        Access::UnlockWrite => "unlock",
        a => a.name(),
    }
}

/// What a step does, briefly: `read entry`, `lock ptlock`, `lock_write mmap_lock`, `alloc table`.
fn what(e: &Event) -> String {
    let verb = verb(e.access);
    match e.object {
        Object::Entry { .. } => format!("{verb} entry"),
        Object::Table(_) => format!("{verb} table"),
        obj => match LockKind::of(obj) {
            Some(k) => format!("{verb} {}", k.name()),
            None => format!("{verb} {}", object_label(obj)),
        },
    }
}

/// Tables worth a participant: those a CPU or RCU (not setup or teardown) shares, unshares,
/// queues or frees in view, those a visible report names, and the focused one.
fn key_tables(v: &View, opts: &RenderOptions) -> BTreeSet<u64> {
    let mut keys: BTreeSet<u64> = v
        .spans
        .iter()
        .filter(|s| {
            s.events.iter().any(|e| {
                e.kind != SpanEventKind::Alloc && !matches!(e.lane, Lane::Setup | Lane::Teardown)
            })
        })
        .map(|s| s.pfn)
        .collect();
    keys.extend(v.reports.iter().filter_map(|r| r.object.and_then(pfn_of)));
    keys.extend(opts.focus_pfn);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{busy, seed_race, SHARED};

    #[test]
    fn seed_race_sequence_diagram() {
        let m = render_mermaid(&seed_race(), &RenderOptions::default());
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[0], "sequenceDiagram");
        assert_eq!(lines[1], "    title BUG: KASAN: use-after-free in huge_pte_lock");
        let participants: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.trim().strip_prefix("participant "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(participants, ["setup", "cpu0", "cpu1", "cpu2", "rcu", "t1003"]);
        assert!(m.contains("participant cpu0 as CPU0 (mm A)"));
        assert!(m.contains("participant t1003 as table 0x1003"));
        assert!(m.contains("cpu1->>t1003: s9 unshare (huge_pmd_unshare)"));
        assert!(m.contains("cpu2-xt1003: s15 ptlock freed (pagetable_pmd_dtor)"));
        assert!(m.contains("rcu-xt1003: s21 free (tlb_remove_table_rcu)"));
        assert!(m.contains("Note over cpu1: s6 + vma_lock(mm0 vma0) W"));
        assert!(m.contains("Note over cpu1: s7 + i_mmap_rwsem(file0) W"));
        assert!(m.contains("cpu2->>cpu1: s17 IPI"));
        assert!(m.contains("cpu1-->>cpu2: s19 IPI acked"));
        assert!(m.contains("Note over rcu: s20 grace period"));
        // The race in a red box.
        let rect = lines.iter().position(|l| l.trim().starts_with("rect rgb(255")).unwrap();
        assert!(lines[rect + 1].contains("cpu0-xt1003: s23"));
        assert!(lines[rect + 2].contains("Note over cpu0,t1003: BUG: KASAN"));
        assert!(lines[rect + 2].contains("freed at s15 by CPU2"));
        assert_eq!(lines[rect + 3].trim(), "end");
        // Activations balance: every deactivate follows an activate on the same lane.
        let mut depth: BTreeMap<&str, i32> = BTreeMap::new();
        for l in &lines {
            if let Some(p) = l.trim().strip_prefix("activate ") {
                *depth.entry(p).or_default() += 1;
            }
            if let Some(p) = l.trim().strip_prefix("deactivate ") {
                let d = depth.entry(p).or_default();
                *d -= 1;
                assert!(*d >= 0, "{p}");
            }
        }
        assert!(!m.contains(';') && !m.contains('#'));
    }

    #[test]
    fn stays_small_and_filters() {
        let t = busy(200);
        let m = render_mermaid(&t, &RenderOptions::default());
        assert!(m.lines().count() < 250, "{} lines", m.lines().count());
        let f =
            render_mermaid(&seed_race(), &RenderOptions { focus_pfn: Some(SHARED), window: None });
        assert!(f.contains("t1003") && !f.contains("mmap_lock(mm1)"));
        let w = render_mermaid(
            &seed_race(),
            &RenderOptions { focus_pfn: None, window: Some((12, 16)) },
        );
        assert!(!w.contains("s23") && w.contains("s15"));
        assert!(!w.contains("deactivate cpu1"), "release without its acquire in view");
    }
}
