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

use mmsim_traces::{Access, Event, Object, Trace};

use crate::label::{mermaid_text as txt, object_label, pfn_of, Lane, LockKind};
use crate::view::{RenderOptions, View};

/// Render the trace as a Mermaid sequence diagram.
pub fn render_mermaid(trace: &Trace, opts: &RenderOptions) -> String {
    let v = View::new(trace, opts);
    let keys = key_tables(&v, opts);
    let mut body: Vec<String> = Vec::new();
    let mut used: BTreeSet<Lane> = BTreeSet::new();
    let mut used_tables: BTreeSet<u64> = BTreeSet::new();
    let mut active: BTreeMap<Lane, usize> = BTreeMap::new();
    let at_steps: BTreeMap<u64, Vec<&mmsim_traces::Report>> =
        v.reports.iter().fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.at.step).or_insert_with(Vec::new).push(*r);
            m
        });

    let events = &v.events;
    let mut i = 0;
    while i < events.len() {
        let e = events[i];
        let lane = Lane::of(e.actor);
        let me = lane.id();
        let step = e.step;
        let func = txt(&e.func);
        let table = pfn_of(e.object).filter(|p| keys.contains(p));
        let mut line = None;
        match (e.object, e.access) {
            // The offending access: a red box, a crossed arrow and the report.
            _ if at_steps.contains_key(&step) => {
                let target = table.map_or_else(|| me.clone(), table_id);
                table.map(|p| used_tables.insert(p));
                body.push("    rect rgb(255, 215, 215)".into());
                body.push(format!(
                    "    {me}-x{target}: s{step} {} {} ({func})",
                    access_word(e.access),
                    txt(&object_label(e.object))
                ));
                for r in &at_steps[&step] {
                    let mut note = txt(&r.title);
                    if let Some(f) = r.freed.as_ref().or(r.queued.as_ref()) {
                        let _ = write!(
                            note,
                            " - freed at s{} by {} in {}",
                            f.step,
                            txt(&Lane::of(f.actor).name(trace)),
                            txt(&f.func)
                        );
                    }
                    let over = if target == me { me.clone() } else { format!("{me},{target}") };
                    body.push(format!("    Note over {over}: {note}"));
                }
                body.push("    end".into());
            }
            (obj, Access::LockRead | Access::LockWrite) if LockKind::of(obj).is_some() => {
                let mode = if e.access == Access::LockRead { "R" } else { "W" };
                line = Some(match table {
                    Some(p) => {
                        used_tables.insert(p);
                        format!("{me}->>{}: s{step} lock ptlock ({func})", table_id(p))
                    }
                    None => format!(
                        "Note over {me}: s{step} + {} {mode} ({func})",
                        txt(&object_label(obj))
                    ),
                });
                *active.entry(lane).or_default() += 1;
                body.push(format!("    {}", line.take().expect("set above")));
                body.push(format!("    activate {me}"));
            }
            (obj, Access::UnlockRead | Access::UnlockWrite) if LockKind::of(obj).is_some() => {
                let mode = if e.access == Access::UnlockRead { "R" } else { "W" };
                line = Some(match table {
                    Some(p) => {
                        used_tables.insert(p);
                        format!("{me}->>{}: s{step} unlock ptlock ({func})", table_id(p))
                    }
                    None => format!(
                        "Note over {me}: s{step} - {} {mode} ({func})",
                        txt(&object_label(obj))
                    ),
                });
                let n = active.entry(lane).or_default();
                if *n > 0 {
                    *n -= 1;
                    body.push(format!("    {}", line.take().expect("set above")));
                    body.push(format!("    deactivate {me}"));
                }
            }
            (Object::Table(_) | Object::PtLock(_), acc) if table.is_some() => {
                let p = table.expect("guarded");
                used_tables.insert(p);
                let arrow =
                    if matches!(acc, Access::Free | Access::LockFree) { "-x" } else { "->>" };
                let what = match acc {
                    Access::LockFree => "ptlock freed".to_string(),
                    a => access_word(a).to_string(),
                };
                line = Some(format!("{me}{arrow}{}: s{step} {what} ({func})", table_id(p)));
            }
            (Object::Entry { .. }, acc @ (Access::Read | Access::Write)) if table.is_some() => {
                let p = table.expect("guarded");
                used_tables.insert(p);
                // Collapse a run of the same lane's same access to this table's entries.
                let mut j = i;
                while j + 1 < events.len() && same_run(e, events[j + 1], p) {
                    j += 1;
                }
                let idx: Vec<String> = events[i..=j]
                    .iter()
                    .map(|x| match x.object {
                        Object::Entry { index, .. } => format!("[{index}]"),
                        _ => String::new(),
                    })
                    .collect();
                let steps = if j > i {
                    format!("s{}-s{}", step, events[j].step)
                } else {
                    format!("s{step}")
                };
                let detail = if j == i && !e.detail.is_empty() {
                    format!(" {}", txt(&e.detail))
                } else {
                    String::new()
                };
                line = Some(format!(
                    "{me}->>{}: {steps} {} {}{detail} ({func})",
                    table_id(p),
                    access_word(acc),
                    txt(&idx.join(" "))
                ));
                i = j;
            }
            (Object::Cpu(t), Access::IpiSend) => {
                let to = Lane::Cpu(t);
                used.insert(to);
                line = Some(format!("{me}->>{}: s{step} IPI ({func})", to.id()));
            }
            (_, Access::IpiHandle) => {
                line = Some(format!("Note over {me}: s{step} IPI handled ({func})"));
            }
            (obj, Access::IpiWait) => {
                line = Some(match obj {
                    Object::Cpu(t) if Lane::Cpu(t) != lane => {
                        used.insert(Lane::Cpu(t));
                        format!("{}-->>{me}: s{step} IPI acked ({func})", Lane::Cpu(t).id())
                    }
                    _ => format!("Note over {me}: s{step} IPI acked ({func})"),
                });
            }
            (_, Access::GracePeriod) => {
                line = Some(format!("Note over {me}: s{step} grace period ({func})"));
            }
            (obj, Access::TlbFlush) => {
                line = Some(format!(
                    "Note over {me}: s{step} TLB flush {} ({func})",
                    txt(&object_label(obj))
                ));
            }
            _ => {}
        }
        if let Some(l) = line {
            body.push(format!("    {l}"));
        }
        if body.last().is_some_and(|l| l.contains(&me)) {
            used.insert(lane);
        }
        i += 1;
    }

    let mut out = String::from("sequenceDiagram\n");
    let h = &trace.header;
    let title = v
        .reports
        .first()
        .map_or_else(|| format!("{} ({:?})", h.scenario, trace.verdict), |r| r.title.clone());
    let _ = writeln!(out, "    title {}", txt(&title));
    let mut lanes: BTreeSet<Lane> = used;
    if opts.focus_pfn.is_none() {
        lanes.extend(v.lanes.iter().copied().filter(|l| matches!(l, Lane::Cpu(_))));
    }
    for lane in &lanes {
        let mut alias = lane.name(trace);
        if let Some(mm) = lane.mm(trace) {
            let _ = write!(alias, " (mm {mm})");
        }
        let _ = writeln!(out, "    participant {} as {}", lane.id(), txt(&alias));
    }
    for p in &used_tables {
        let _ = writeln!(out, "    participant {} as table {p:#x}", table_id(*p));
    }
    for l in body {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn table_id(pfn: u64) -> String {
    format!("t{pfn:x}")
}

fn access_word(a: Access) -> &'static str {
    match a {
        Access::LockRead => "lock R",
        Access::LockWrite => "lock W",
        other => crate::label::access_label(other),
    }
}

fn same_run(first: &Event, next: &Event, pfn: u64) -> bool {
    next.actor == first.actor
        && next.access == first.access
        && matches!(next.object, Object::Entry { pfn: p, .. } if p == pfn)
}

/// Tables worth a participant: those shared, unshared, queued or freed in view, named by a
/// visible report, or focused.
fn key_tables(v: &View, opts: &RenderOptions) -> BTreeSet<u64> {
    let mut keys: BTreeSet<u64> = v
        .spans
        .iter()
        .filter(|s| {
            s.events.iter().any(|e| !matches!(e.kind, crate::lifetime::SpanEventKind::Alloc))
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
        assert!(m.contains("Note over cpu1: s6 + vma_lock[mm0.vma0] W"));
        assert!(m.contains("Note over cpu1: s7 + i_mmap_rwsem[file0] W"));
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
    #[ignore]
    fn dump() {
        std::fs::write("/tmp/seed.mmd", render_mermaid(&seed_race(), &RenderOptions::default()))
            .unwrap();
    }

    #[test]
    fn stays_small_and_filters() {
        let t = busy(200);
        let m = render_mermaid(&t, &RenderOptions::default());
        assert!(m.lines().count() < 250, "{} lines", m.lines().count());
        let f =
            render_mermaid(&seed_race(), &RenderOptions { focus_pfn: Some(SHARED), window: None });
        assert!(f.contains("t1003") && !f.contains("mmap_lock[mm1]"));
        let w = render_mermaid(
            &seed_race(),
            &RenderOptions { focus_pfn: None, window: Some((12, 16)) },
        );
        assert!(!w.contains("s23") && w.contains("s15"));
        assert!(!w.contains("deactivate cpu1"), "release without its acquire in view");
    }
}
