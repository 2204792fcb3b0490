//! The happens-before graph of a trace: one node per event, edges for program order, lock
//! handoff, IPI send/handle/ack, RCU grace periods (queue -> grace period -> free) and the
//! reported race: the free (or the unshare) of the object -> the offending access.
//!
//! Owns the edge rules. Edges are computed into a sorted, deduplicated list before insertion,
//! so node and edge iteration order is a function of the trace alone.

use std::collections::{BTreeMap, VecDeque};

use mmsim_traces::{Access, Actor, Object, Report, Trace};
use petgraph::stable_graph::{NodeIndex, StableGraph};

use crate::label::{pfn_of, Lane, LockKind};

/// Why one event happens before another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Consecutive events of the same CPU lane (task and its interrupts).
    ProgramOrder,
    /// A lock release and the next acquire of the same lock by another lane.
    LockHandoff,
    /// IPI send -> handle, and handle -> the sender's wait completing.
    Ipi,
    /// Queued free -> the grace period that ran it -> the free (or queue -> free when batched).
    GracePeriod,
    /// A report's free (or queued free) -> the offending access: the race. For a walk into a
    /// table its mm no longer maps (nothing freed yet), the unshare that took the table away.
    FreeToUse,
}

/// Where a report's race edge starts, and what happened there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceCause {
    Freed,
    QueuedFree,
    Unshared,
}

impl RaceCause {
    pub fn name(self) -> &'static str {
        match self {
            RaceCause::Freed => "freed",
            RaceCause::QueuedFree => "queued for free",
            RaceCause::Unshared => "unshared",
        }
    }
}

/// The step a report's race edge starts from: the object's free, else its queued free, else
/// (a page-table page used by an mm that no longer maps it) the last unshare of that page at or
/// before the offending access. `None` when the report names none of these.
pub fn race_origin(trace: &Trace, r: &Report) -> Option<(u64, RaceCause)> {
    if let Some(s) = &r.freed {
        return Some((s.step, RaceCause::Freed));
    }
    if let Some(s) = &r.queued {
        return Some((s.step, RaceCause::QueuedFree));
    }
    let pfn = r.object.and_then(pfn_of)?;
    trace
        .events
        .iter()
        .take_while(|e| e.step <= r.at.step)
        .filter(|e| e.access == Access::Unshare && e.object == Object::Table(pfn))
        .last()
        .map(|e| (e.step, RaceCause::Unshared))
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 5] = [
        EdgeKind::ProgramOrder,
        EdgeKind::LockHandoff,
        EdgeKind::Ipi,
        EdgeKind::GracePeriod,
        EdgeKind::FreeToUse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::ProgramOrder => "program order",
            EdgeKind::LockHandoff => "lock handoff",
            EdgeKind::Ipi => "ipi",
            EdgeKind::GracePeriod => "grace period",
            EdgeKind::FreeToUse => "free to use",
        }
    }
}

/// An edge by step numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepEdge {
    pub from: u64,
    pub to: u64,
    pub kind: EdgeKind,
}

/// Events as nodes (weight = step number), edges by [`EdgeKind`].
#[derive(Clone, Debug)]
pub struct EventGraph {
    pub graph: StableGraph<u64, EdgeKind>,
    nodes: BTreeMap<u64, NodeIndex>,
    edges: Vec<StepEdge>,
}

impl EventGraph {
    /// Build the graph of a trace.
    pub fn build(trace: &Trace) -> EventGraph {
        let mut graph = StableGraph::new();
        let mut nodes = BTreeMap::new();
        for e in &trace.events {
            nodes.entry(e.step).or_insert_with(|| graph.add_node(e.step));
        }
        let mut edges = step_edges(trace);
        edges.retain(|e| nodes.contains_key(&e.from) && nodes.contains_key(&e.to));
        edges.sort();
        edges.dedup();
        for e in &edges {
            graph.add_edge(nodes[&e.from], nodes[&e.to], e.kind);
        }
        EventGraph { graph, nodes, edges }
    }

    /// The node of the event at `step`.
    pub fn node(&self, step: u64) -> Option<NodeIndex> {
        self.nodes.get(&step).copied()
    }

    /// All edges, sorted by (from, to, kind).
    pub fn edges(&self) -> &[StepEdge] {
        &self.edges
    }

    /// Edges of one kind, sorted.
    pub fn edges_of(&self, kind: EdgeKind) -> impl Iterator<Item = &StepEdge> {
        self.edges.iter().filter(move |e| e.kind == kind)
    }
}

/// Build the graph of a trace (same as [`EventGraph::build`]).
pub fn build_graph(trace: &Trace) -> EventGraph {
    EventGraph::build(trace)
}

fn step_edges(trace: &Trace) -> Vec<StepEdge> {
    let mut out = Vec::new();
    program_order(trace, &mut out);
    lock_handoff(trace, &mut out);
    ipi(trace, &mut out);
    grace_period(trace, &mut out);
    free_to_use(trace, &mut out);
    out
}

fn program_order(trace: &Trace, out: &mut Vec<StepEdge>) {
    let mut last: BTreeMap<Lane, u64> = BTreeMap::new();
    for e in &trace.events {
        if let Some(prev) = last.insert(Lane::of(e.actor), e.step) {
            out.push(StepEdge { from: prev, to: e.step, kind: EdgeKind::ProgramOrder });
        }
    }
}

fn lock_handoff(trace: &Trace, out: &mut Vec<StepEdge>) {
    // Latest release of each lock, with the releasing lane.
    let mut released: BTreeMap<Object, (Lane, u64)> = BTreeMap::new();
    for e in &trace.events {
        if LockKind::of(e.object).is_none() {
            continue;
        }
        let lane = Lane::of(e.actor);
        match e.access {
            Access::UnlockRead | Access::UnlockWrite => {
                released.insert(e.object, (lane, e.step));
            }
            Access::LockRead | Access::LockWrite => {
                if let Some(&(by, step)) = released.get(&e.object) {
                    if by != lane {
                        out.push(StepEdge { from: step, to: e.step, kind: EdgeKind::LockHandoff });
                    }
                }
            }
            _ => {}
        }
    }
}

fn ipi(trace: &Trace, out: &mut Vec<StepEdge>) {
    // Sends not yet handled, per target CPU, FIFO: (sender lane, step).
    let mut pending: BTreeMap<u8, VecDeque<(Lane, u64)>> = BTreeMap::new();
    // Handles not yet acknowledged, per sender lane: (target, step).
    let mut handled: BTreeMap<Lane, Vec<(u8, u64)>> = BTreeMap::new();
    for e in &trace.events {
        let lane = Lane::of(e.actor);
        match (e.access, e.object) {
            (Access::IpiSend, Object::Cpu(t)) => {
                pending.entry(t).or_default().push_back((lane, e.step));
            }
            (Access::IpiHandle, Object::Cpu(t)) => {
                if let Some((sender, step)) = pending.get_mut(&t).and_then(|q| q.pop_front()) {
                    out.push(StepEdge { from: step, to: e.step, kind: EdgeKind::Ipi });
                    handled.entry(sender).or_default().push((t, e.step));
                }
            }
            (Access::IpiWait, obj) => {
                let Some(list) = handled.get_mut(&lane) else { continue };
                // Prefer the handles of the CPU waited on; otherwise every handle so far.
                let target = match obj {
                    Object::Cpu(t) if list.iter().any(|&(x, _)| x == t) => Some(t),
                    _ => None,
                };
                list.retain(|&(t, step)| {
                    if target.is_none() || target == Some(t) {
                        out.push(StepEdge { from: step, to: e.step, kind: EdgeKind::Ipi });
                        false
                    } else {
                        true
                    }
                });
            }
            _ => {}
        }
    }
}

fn grace_period(trace: &Trace, out: &mut Vec<StepEdge>) {
    let mut queued: BTreeMap<u64, u64> = BTreeMap::new();
    let mut last_gp: Option<u64> = None;
    for e in &trace.events {
        match (e.access, e.object) {
            (Access::GracePeriod, _) => last_gp = Some(e.step),
            (Access::QueueFree, Object::Table(p)) => {
                queued.insert(p, e.step);
            }
            (Access::Free, Object::Table(p)) => {
                let Some(q) = queued.remove(&p) else { continue };
                match last_gp {
                    // Freed by an RCU callback: through the grace period that ended after the queue.
                    Some(g) if e.actor == Actor::Rcu && g > q => {
                        out.push(StepEdge { from: q, to: g, kind: EdgeKind::GracePeriod });
                        out.push(StepEdge { from: g, to: e.step, kind: EdgeKind::GracePeriod });
                    }
                    _ => out.push(StepEdge { from: q, to: e.step, kind: EdgeKind::GracePeriod }),
                }
            }
            _ => {}
        }
    }
}

fn free_to_use(trace: &Trace, out: &mut Vec<StepEdge>) {
    for r in &trace.reports {
        if let Some((from, _)) = race_origin(trace, r) {
            out.push(StepEdge { from, to: r.at.step, kind: EdgeKind::FreeToUse });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::seed_race;
    use mmsim_traces::Event;

    fn kinds(g: &EventGraph, kind: EdgeKind) -> Vec<(u64, u64)> {
        g.edges_of(kind).map(|e| (e.from, e.to)).collect()
    }

    #[test]
    fn seed_race_edges() {
        let t = seed_race();
        let g = build_graph(&t);
        assert_eq!(g.graph.node_count(), t.events.len());
        assert_eq!(g.graph.edge_count(), g.edges().len());
        assert_eq!(kinds(&g, EdgeKind::FreeToUse), [(15, 23)]);
        assert_eq!(kinds(&g, EdgeKind::Ipi), [(17, 18), (18, 19)]);
        assert_eq!(kinds(&g, EdgeKind::GracePeriod), [(16, 20), (20, 21)]);
        // CPU0: 3 -> 4 -> 23; Irq(1) shares CPU1's lane: 12 -> 18.
        let po = kinds(&g, EdgeKind::ProgramOrder);
        assert!(po.contains(&(4, 23)) && po.contains(&(12, 18)));
        assert!(kinds(&g, EdgeKind::LockHandoff).is_empty());
        let race = g.graph.find_edge(g.node(15).unwrap(), g.node(23).unwrap()).unwrap();
        assert_eq!(g.graph[race], EdgeKind::FreeToUse);
    }

    #[test]
    fn lock_handoff_links_release_to_other_lanes_acquire() {
        let mut t = seed_race();
        let n = t.events.len() as u64;
        // CPU2 takes mm0's mmap_lock after CPU1 released it at step 12; CPU1 retakes it too.
        for (i, actor) in [Actor::Cpu(2), Actor::Cpu(1)].into_iter().enumerate() {
            t.events.push(Event {
                step: n + i as u64,
                time: 0,
                actor,
                op: 1,
                op_step: 0,
                func: "mmap_read_lock".into(),
                object: Object::MmapLock(0),
                access: Access::LockRead,
                detail: String::new(),
                value: None,
            });
        }
        let g = build_graph(&t);
        assert_eq!(kinds(&g, EdgeKind::LockHandoff), [(12, n)]);
    }
}
