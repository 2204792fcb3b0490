//! Graphviz DOT of the happens-before graph: one cluster per lane (program order left to
//! right), lock handoffs, IPIs and grace periods between lanes, and the race edge in red.
//!
//! Owns the DOT spelling and edge styles only; the edges themselves come from [`crate::graph`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use mmsim_traces::{Event, Object, Trace};

use crate::graph::EdgeKind;
use crate::label::{access_label, dot_escape as esc, object_label, Lane, LockKind};
use crate::view::{is_landmark, RenderOptions, View};

/// Runs of at least this many unremarkable steps of one lane become one node.
const COLLAPSE_MIN: usize = 6;

/// `s91–s3162 · 2561 steps` with the counts per access and the functions.
fn run_label(run: &[&Event]) -> String {
    let (first, last) = (run[0].step, run[run.len() - 1].step);
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut funcs: Vec<&str> = Vec::new();
    for e in run {
        let what = match e.object {
            Object::Entry { pfn, .. } => format!("{} entry(pfn {pfn:#x})", e.access),
            obj => format!("{} {obj}", e.access),
        };
        match counts.iter_mut().find(|(k, _)| *k == what) {
            Some((_, n)) => *n += 1,
            None => counts.push((what, 1)),
        }
        if !funcs.contains(&e.func.as_str()) {
            funcs.push(&e.func);
        }
    }
    let mut label = format!("s{first}–s{last} · {} steps", run.len());
    for (what, n) in counts.iter().take(4) {
        let _ = write!(label, "\n{n} × {what}");
    }
    if counts.len() > 4 {
        label.push_str("\n…");
    }
    let _ = write!(label, "\n{}", funcs[..funcs.len().min(3)].join(", "));
    if funcs.len() > 3 {
        label.push_str(", …");
    }
    label
}

/// Render the happens-before graph as a Graphviz `digraph`.
pub fn render_dot(trace: &Trace, opts: &RenderOptions) -> String {
    let v = View::new(trace, opts);
    let h = &trace.header;
    let mut out = String::new();
    let title = v
        .reports
        .first()
        .map_or_else(|| format!("{}: {}", h.scenario, trace.verdict), |r| r.title.clone());
    let facts = format!(
        "scenario {} · arch {} · profile {} · seed {} · steps {}–{}",
        h.scenario, h.arch, h.profile, h.seed, v.lo, v.hi
    );
    out.push_str("digraph mmsim {\n");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, newrank=true, nodesep=0.25, ranksep=0.3, fontname=\"Helvetica\", labelloc=t, label=\"{}\\n{}\"];",
        esc(&title),
        esc(&facts)
    );
    out.push_str("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");

    let bad: BTreeSet<u64> = v.reports.iter().map(|r| r.at.step).collect();
    let freed: BTreeSet<u64> = v.race_edges().iter().map(|&(f, ..)| f).collect();
    // Steps that keep a node of their own; runs of the rest collapse into one node.
    let mut keep: BTreeSet<u64> =
        v.events.iter().filter(|e| is_landmark(e)).map(|e| e.step).collect();
    keep.extend(bad.iter().chain(&freed));
    for e in v.edges.iter().filter(|e| e.kind != EdgeKind::ProgramOrder) {
        keep.extend([e.from, e.to]);
    }
    let mut by_lane: BTreeMap<Lane, Vec<&Event>> = BTreeMap::new();
    for e in &v.events {
        by_lane.entry(Lane::of(e.actor)).or_default().push(e);
    }
    let mut node_of: BTreeMap<u64, String> = BTreeMap::new();
    let mut lane_nodes: Vec<Vec<String>> = Vec::new();
    for (lane, events) in &by_lane {
        let mut label = lane.name(trace);
        if let Some(mm) = lane.mm(trace).filter(|m| !m.is_empty()) {
            let _ = write!(label, " (mm {mm})");
        }
        for op in lane.ops(trace) {
            let _ = write!(label, "\n{op}");
        }
        let _ = writeln!(out, "  subgraph cluster_{} {{", lane.id());
        let _ = writeln!(
            out,
            "    label=\"{}\"; style=filled; fillcolor=\"#f6f6f6\"; color=\"#c0c0c0\";",
            esc(&label)
        );
        let mut nodes = Vec::new();
        let mut i = 0;
        while i < events.len() {
            let mut j = i;
            while j + 1 < events.len()
                && !keep.contains(&events[i].step)
                && !keep.contains(&events[j + 1].step)
            {
                j += 1;
            }
            let id = if j + 1 - i >= COLLAPSE_MIN {
                let id = format!("r{}", events[i].step);
                let run = &events[i..=j];
                let _ = writeln!(
                    out,
                    "    {id} [label=\"{}\", style=\"rounded,dashed\"];",
                    esc(&run_label(run))
                );
                for e in run {
                    node_of.insert(e.step, id.clone());
                }
                id
            } else {
                j = i;
                let e = events[i];
                let id = format!("s{}", e.step);
                let mut label = format!(
                    "{} {}\n{} {}",
                    e.step,
                    e.func,
                    access_label(e.access),
                    object_label(e.object)
                );
                if !e.detail.is_empty() {
                    let _ = write!(label, "\n{}", e.detail);
                }
                let style = if bad.contains(&e.step) || freed.contains(&e.step) {
                    ", fillcolor=\"#f8d0d0\", color=\"#d62728\", penwidth=2".to_string()
                } else if let Some(k) = LockKind::of(e.object) {
                    format!(", color=\"{}\"", k.colour())
                } else {
                    String::new()
                };
                let _ = writeln!(out, "    {id} [label=\"{}\"{style}];", esc(&label));
                node_of.insert(e.step, id.clone());
                id
            };
            nodes.push(id);
            i = j + 1;
        }
        out.push_str("  }\n");
        lane_nodes.push(nodes);
    }

    // Program order between consecutive visible nodes of a lane (gaps from filtering included).
    for nodes in &lane_nodes {
        for w in nodes.windows(2) {
            let _ = writeln!(
                out,
                "  {} -> {} [color=\"#999999\", weight=10, arrowsize=0.6];",
                w[0], w[1]
            );
        }
    }
    let node = |step: u64| node_of.get(&step).cloned().unwrap_or_else(|| format!("s{step}"));
    for e in v.edges.iter().filter(|e| e.kind != EdgeKind::ProgramOrder) {
        let attrs = match e.kind {
            EdgeKind::LockHandoff => {
                let lock = v.event(e.to).map(|t| object_label(t.object)).unwrap_or_default();
                format!(
                    "color=\"#1f77b4\", style=dashed, constraint=false, label=\"{}\", fontcolor=\"#1f77b4\"",
                    esc(&lock)
                )
            }
            EdgeKind::Ipi => {
                "color=\"#2ca02c\", style=bold, constraint=false, label=\"ipi\", fontcolor=\"#2ca02c\""
                    .into()
            }
            EdgeKind::GracePeriod => "color=\"#9467bd\", style=dotted, penwidth=1.5, constraint=false, label=\"rcu\", fontcolor=\"#9467bd\"".into(),
            EdgeKind::FreeToUse | EdgeKind::ProgramOrder => continue,
        };
        let _ = writeln!(out, "  {} -> {} [{attrs}];", node(e.from), node(e.to));
    }
    for (from, to, r, _) in v.race_edges() {
        if v.is_visible(from) && v.is_visible(to) {
            let _ = writeln!(
                out,
                "  {} -> {} [color=\"#d62728\", penwidth=3, constraint=false, label=\"{}\", fontcolor=\"#d62728\", tooltip=\"{}\"];",
                node(from),
                node(to),
                r.kind,
                esc(&r.title)
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{seed_race, SHARED};

    /// Brace depth outside quoted strings never goes negative and ends at zero.
    fn balanced(dot: &str) -> bool {
        let (mut depth, mut quoted, mut escaped) = (0i64, false, false);
        for c in dot.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '{' if !quoted => depth += 1,
                '}' if !quoted => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                _ => {}
            }
        }
        depth == 0 && !quoted
    }

    fn edges(dot: &str) -> Vec<(u64, u64, String)> {
        dot.lines()
            .filter_map(|l| {
                let l = l.trim();
                let (ends, attrs) = l.split_once(" [")?;
                let (a, b) = ends.split_once(" -> ")?;
                Some((
                    a.strip_prefix('s')?.parse().ok()?,
                    b.strip_prefix('s')?.parse().ok()?,
                    attrs.to_string(),
                ))
            })
            .collect()
    }

    #[test]
    fn seed_race_dot_is_balanced_with_clusters_and_red_race() {
        let dot = render_dot(&seed_race(), &RenderOptions::default());
        assert!(dot.starts_with("digraph mmsim {"));
        assert!(balanced(&dot), "{dot}");
        for lane in ["cpu0", "cpu1", "cpu2", "rcu", "setup"] {
            assert!(dot.contains(&format!("subgraph cluster_{lane} {{")), "{lane}");
        }
        let e = edges(&dot);
        let red: Vec<_> = e.iter().filter(|(_, _, a)| a.contains("#d62728")).collect();
        assert_eq!(red.len(), 1);
        assert_eq!((red[0].0, red[0].1), (15, 23));
        // IPI send -> handle -> wait; queue -> grace period -> free; a mmap_lock handoff.
        for (a, b, colour) in
            [(17, 18, "#2ca02c"), (18, 19, "#2ca02c"), (16, 20, "#9467bd"), (20, 21, "#9467bd")]
        {
            assert!(e.iter().any(|x| x.0 == a && x.1 == b && x.2.contains(colour)), "{a}->{b}");
        }
        assert!(e.iter().filter(|x| x.2.contains("#999999")).count() >= 15);
    }

    #[test]
    fn quiet_runs_collapse_into_one_node() {
        let t = crate::fixture::with_quiet_loop(3000);
        let dot = render_dot(&t, &RenderOptions::default());
        assert!(balanced(&dot));
        let nodes = dot
            .lines()
            .filter(|l| l.trim_start().starts_with(['s', 'r']) && l.contains(" [label="))
            .count();
        assert!(nodes < 40, "{nodes} nodes");
        assert!(dot.contains("r24 [label=\"s24–s3023 · 3000 steps\\n3000 × read entry(pfn 0x2000)\\nfree_pgd_range\""), "{dot}");
        assert!(dot.contains("  s22 -> r24 ["), "program order into the run");
        assert!(dot.contains("  s15 -> s23 [color=\"#d62728\""));
    }

    #[test]
    fn focus_drops_unrelated_nodes() {
        let t = seed_race();
        let dot = render_dot(&t, &RenderOptions { focus_pfn: Some(SHARED), window: None });
        assert!(balanced(&dot));
        assert!(!dot.contains("s14 ["), "entry of another table");
        assert!(dot.contains("s23 ["));
        assert!(edges(&dot).iter().any(|x| x.0 == 15 && x.1 == 23));
    }
}
