//! Chrome trace-event JSON (`{"traceEvents":[...]}`) for the Perfetto UI.
//!
//! One process per lane (named `CPU0 (mm A)`, ...), with thread 0 carrying one instant event
//! per step and one thread per lock carrying its holds as complete (`X`) events, so holds of
//! different locks may overlap without breaking slice nesting. A "page tables" process holds
//! one async (`b`/`e`) span per table lifetime keyed by pfn, with async instants (`n`) for
//! share/unshare/queue-free/ptlock death. Flow events (`s`/`f`) draw the IPI edges and the
//! race; their endpoints are 1-tick slices (flows bind to slices, not instants).
//! Timestamps: `ts` (microseconds) = step number; virtual time is in `args`.
//!
//! Owns the JSON shape; one event per line, keys sorted, so output is byte-stable.

use std::collections::{BTreeMap, BTreeSet};

use mmsim_traces::{Event, Object, Trace};
use serde_json::{json, Value};

use crate::graph::EdgeKind;
use crate::label::{access_label, actor_label, object_label, Lane};
use crate::lifetime::SpanEventKind;
use crate::view::{RenderOptions, View};

/// The pid of the page-tables process.
const TABLES_PID: u64 = 2000;

/// Render the trace as Chrome trace-event JSON.
pub fn render_perfetto(trace: &Trace, opts: &RenderOptions) -> String {
    let v = View::new(trace, opts);
    let mut evs: Vec<Value> = Vec::new();

    // Lock threads per lane: tid 1.. in lock order.
    let mut lock_tid: BTreeMap<(Lane, Object), u64> = BTreeMap::new();
    for lane in &v.lanes {
        let locks: BTreeSet<Object> =
            v.holds.iter().filter(|h| h.lane == *lane).map(|h| h.lock).collect();
        for (i, l) in locks.into_iter().enumerate() {
            lock_tid.insert((*lane, l), 1 + i as u64);
        }
    }

    // Metadata.
    for lane in &v.lanes {
        let pid = lane.number();
        let mut name = lane.name(trace);
        if let Some(mm) = lane.mm(trace) {
            name.push_str(&format!(" (mm {mm})"));
        }
        evs.push(meta("process_name", pid, 0, &name));
        evs.push(json!({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}}));
        evs.push(meta("thread_name", pid, 0, "steps"));
    }
    for ((lane, lock), tid) in &lock_tid {
        evs.push(meta("thread_name", lane.number(), *tid, &object_label(*lock)));
    }
    if !v.spans.is_empty() {
        evs.push(meta("process_name", TABLES_PID, 0, "page tables"));
        evs.push(json!({"ph": "M", "name": "process_sort_index", "pid": TABLES_PID, "tid": 0, "args": {"sort_index": TABLES_PID}}));
    }

    // Flow endpoints become slices so the arrows have something to bind to.
    let mut flows: Vec<(u64, u64, &str)> =
        v.edges.iter().filter(|e| e.kind == EdgeKind::Ipi).map(|e| (e.from, e.to, "ipi")).collect();
    for (from, to, ..) in v.race_edges() {
        if v.is_visible(from) && v.is_visible(to) {
            flows.push((from, to, "race"));
        }
    }
    let endpoints: BTreeSet<u64> = flows.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    let bad: BTreeSet<u64> = v.reports.iter().map(|r| r.at.step).collect();

    for e in &v.events {
        let pid = Lane::of(e.actor).number();
        let mut ev = json!({
            "name": e.func,
            "cat": category(e),
            "pid": pid,
            "tid": 0,
            "ts": e.step,
            "args": step_args(e),
        });
        if endpoints.contains(&e.step) {
            ev["ph"] = json!("X");
            ev["dur"] = json!(1);
        } else {
            ev["ph"] = json!("i");
            ev["s"] = json!("t");
        }
        if bad.contains(&e.step) {
            ev["cname"] = json!("terrible");
        }
        evs.push(ev);
    }

    for h in &v.holds {
        let tid = lock_tid[&(h.lane, h.lock)];
        evs.push(json!({
            "ph": "X",
            "name": format!("{} {}", h.kind.name(), h.mode.letter()),
            "cat": "lock",
            "pid": h.lane.number(),
            "tid": tid,
            "ts": h.from_step,
            "dur": h.to_step - h.from_step + 1,
            "args": {"lock": object_label(h.lock), "from_step": h.from_step, "to_step": h.to_step, "open_at_end": h.open},
        }));
    }

    for (n, s) in v.spans.iter().enumerate() {
        let id = format!("{:#x}.{n}", s.pfn);
        let name = format!("table {:#x}", s.pfn);
        evs.push(json!({
            "ph": "b", "cat": "pagetable", "name": name, "id": id, "pid": TABLES_PID, "tid": 0,
            "ts": s.start_step,
            "args": {"pfn": format!("{:#x}", s.pfn), "alloc_step": s.alloc_step, "freed": s.freed},
        }));
        for ev in &s.events {
            if matches!(ev.kind, SpanEventKind::Alloc | SpanEventKind::Free) {
                continue;
            }
            evs.push(json!({
                "ph": "n", "cat": "pagetable", "name": ev.kind.name(), "id": id, "pid": TABLES_PID,
                "tid": 0, "ts": ev.step, "args": {"by": ev.lane.name(trace)},
            }));
        }
        evs.push(json!({
            "ph": "e", "cat": "pagetable", "name": name, "id": id, "pid": TABLES_PID, "tid": 0,
            "ts": s.end_step + 1,
        }));
    }

    for (n, (from, to, cat)) in flows.iter().enumerate() {
        let (Some(a), Some(b)) = (v.event(*from), v.event(*to)) else { continue };
        let name = if *cat == "race" { "free -> use" } else { "ipi" };
        evs.push(json!({
            "ph": "s", "cat": cat, "name": name, "id": n, "pid": Lane::of(a.actor).number(),
            "tid": 0, "ts": from,
        }));
        evs.push(json!({
            "ph": "f", "bp": "e", "cat": cat, "name": name, "id": n,
            "pid": Lane::of(b.actor).number(), "tid": 0, "ts": to,
        }));
    }

    let mut out = String::from("{\"traceEvents\":[\n");
    for (i, e) in evs.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&serde_json::to_string(e).expect("json values serialise"));
    }
    let h = &trace.header;
    let other = json!({
        "scenario": h.scenario, "arch": h.arch, "profile": h.profile, "strategy": h.strategy,
        "seed": h.seed, "verdict": trace.verdict.to_string(),
        "reports": v.reports.iter().map(|r| r.title.clone()).collect::<Vec<_>>(),
        "ts_unit": "step",
    });
    out.push_str("\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":");
    out.push_str(&serde_json::to_string(&other).expect("json values serialise"));
    out.push_str("}\n");
    out
}

fn meta(kind: &str, pid: u64, tid: u64, name: &str) -> Value {
    json!({"ph": "M", "name": kind, "pid": pid, "tid": tid, "args": {"name": name}})
}

fn category(e: &Event) -> &'static str {
    use mmsim_traces::Access::*;
    match e.access {
        LockRead | LockWrite | UnlockRead | UnlockWrite => "lock",
        Alloc | Share | Unshare | LockFree | QueueFree | Free => "lifetime",
        Read | Write => "access",
        IpiSend | IpiHandle | IpiWait => "ipi",
        GracePeriod | RcuReadLock | RcuReadUnlock => "rcu",
        TlbFlush => "tlb",
        IrqDisable | IrqEnable => "irq",
        Local => "local",
    }
}

fn step_args(e: &Event) -> Value {
    json!({
        "step": e.step,
        "time": e.time,
        "actor": actor_label(e.actor),
        "op": e.op,
        "op_step": e.op_step,
        "object": object_label(e.object),
        "access": access_label(e.access),
        "detail": e.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{seed_race, SHARED};

    fn parse(s: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(s).expect("valid JSON");
        v["traceEvents"].as_array().expect("traceEvents array").clone()
    }

    fn count(evs: &[Value], ph: &str) -> usize {
        evs.iter().filter(|e| e["ph"] == ph).count()
    }

    #[test]
    fn seed_race_trace_events() {
        let t = seed_race();
        let evs = parse(&render_perfetto(&t, &RenderOptions::default()));
        let names: Vec<&str> = evs
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["setup", "CPU0 (mm A)", "CPU1 (mm A)", "CPU2 (mm B)", "RCU", "page tables"]
        );
        // One step event per event: instants, plus 1-tick slices at flow ends.
        let steps: Vec<&Value> = evs.iter().filter(|e| e["args"]["step"].is_u64()).collect();
        assert_eq!(steps.len(), t.events.len());
        assert!(steps.iter().all(|e| e["tid"] == 0 && (e["ph"] == "i" || e["ph"] == "X")));
        assert_eq!(steps.iter().filter(|e| e["ph"] == "X").count(), 5, "flow ends");
        let holds: Vec<&Value> = evs.iter().filter(|e| e["args"]["lock"].is_string()).collect();
        assert_eq!(holds.len(), 6);
        assert!(holds.iter().any(|h| h["name"] == "vma_lock W" && h["ts"] == 6 && h["dur"] == 6));
        assert!(holds.iter().any(|h| h["name"] == "i_mmap_rwsem W"));
        // Async lifetime of 0x1003 and its markers.
        let b: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "b").collect();
        assert_eq!(b.len(), 2);
        assert!(b.iter().any(|e| e["args"]["pfn"] == "0x1003" && e["ts"] == 0));
        assert_eq!(count(&evs, "e"), 2);
        let marks: Vec<&str> =
            evs.iter().filter(|e| e["ph"] == "n").map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(marks, ["share", "unshare", "ptlock freed", "queue free"]);
        // Flows: two IPI edges and the race.
        assert_eq!(count(&evs, "s"), 3);
        assert_eq!(count(&evs, "f"), 3);
        let race_s = evs.iter().find(|e| e["ph"] == "s" && e["cat"] == "race").unwrap();
        let race_f = evs.iter().find(|e| e["ph"] == "f" && e["cat"] == "race").unwrap();
        assert_eq!((race_s["ts"].as_u64(), race_f["ts"].as_u64()), (Some(15), Some(23)));
        assert_eq!(race_s["id"], race_f["id"]);
        assert!(evs.iter().any(|e| e["ts"] == 23 && e["cname"] == "terrible"));
    }

    #[test]
    fn filters_reduce_events() {
        let t = seed_race();
        let all = parse(&render_perfetto(&t, &RenderOptions::default())).len();
        let f =
            parse(&render_perfetto(&t, &RenderOptions { focus_pfn: Some(SHARED), window: None }));
        assert!(f.len() < all);
        assert!(f.iter().all(|e| e["ph"] != "b" || e["args"]["pfn"] == "0x1003"));
        let w =
            parse(&render_perfetto(&t, &RenderOptions { focus_pfn: None, window: Some((0, 10)) }));
        assert!(w.len() < all);
        assert!(w
            .iter()
            .filter(|e| e["ph"] == "i" || e["ph"] == "X")
            .all(|e| e["ts"].as_u64().unwrap() <= 10));
    }
}
