//! What to draw: [`RenderOptions`] (step window, focus on one page-table page) applied to a
//! trace, giving the visible events, lock holds, table spans, reports, edges and lanes that
//! every renderer draws.
//!
//! Owns the filtering rules so all formats agree on what `--window` and `--focus` mean.

use std::collections::BTreeSet;

use mmsim_traces::{Access, Event, Object, Report, Trace};

use crate::graph::{race_origin, EdgeKind, EventGraph, RaceCause, StepEdge};
use crate::label::{pfn_of, Lane};
use crate::lifetime::{Lifetimes, LockHold, TableSpan};

/// Restrictions on what a renderer draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Only this page-table page: its lifetime, the events touching its table, entries and
    /// ptlock (plus the grace periods that freed it and the reports about it), and the lock
    /// holds overlapping those.
    pub focus_pfn: Option<u64>,
    /// Only steps in this inclusive range.
    pub window: Option<(u64, u64)>,
}

/// A trace seen through [`RenderOptions`].
pub(crate) struct View<'t> {
    pub trace: &'t Trace,
    /// Lifetimes of the whole trace (unfiltered).
    pub lifetimes: Lifetimes,
    /// First and last visible step (inclusive); the x range.
    pub lo: u64,
    pub hi: u64,
    /// Visible events in step order.
    pub events: Vec<&'t Event>,
    /// Visible lock holds, clipped to `lo..=hi`.
    pub holds: Vec<LockHold>,
    /// Visible table spans, clipped to `lo..=hi` (events outside dropped).
    pub spans: Vec<TableSpan>,
    /// Visible reports.
    pub reports: Vec<&'t Report>,
    /// Edges whose two ends are visible, sorted.
    pub edges: Vec<StepEdge>,
    /// Lanes to draw, in order.
    pub lanes: Vec<Lane>,
    visible: BTreeSet<u64>,
}

impl<'t> View<'t> {
    pub fn new(trace: &'t Trace, opts: &RenderOptions) -> View<'t> {
        let lifetimes = Lifetimes::of(trace);
        let graph = EventGraph::build(trace);
        let first = trace.events.iter().map(|e| e.step).min().unwrap_or(0);
        let last = lifetimes.last_step;
        let (wlo, whi) = match opts.window {
            Some((a, b)) => (a.min(b).max(first), a.max(b).min(last)),
            None => (first, last),
        };
        let in_window = |s: u64| s >= wlo && s <= whi;

        let mut visible: BTreeSet<u64> = BTreeSet::new();
        let reports: Vec<&Report>;
        let (lo, hi);
        match opts.focus_pfn {
            None => {
                visible.extend(trace.events.iter().map(|e| e.step).filter(|&s| in_window(s)));
                reports = trace.reports.iter().filter(|r| in_window(r.at.step)).collect();
                (lo, hi) = (wlo, whi);
            }
            Some(p) => {
                let touches: BTreeSet<u64> = trace
                    .events
                    .iter()
                    .filter(|e| pfn_of(e.object) == Some(p))
                    .map(|e| e.step)
                    .collect();
                reports = trace
                    .reports
                    .iter()
                    .filter(|r| {
                        r.object.and_then(pfn_of) == Some(p)
                            || touches.contains(&r.at.step)
                            || r.freed.as_ref().is_some_and(|f| touches.contains(&f.step))
                    })
                    .filter(|r| in_window(r.at.step))
                    .collect();
                let mut want = touches.clone();
                for r in &reports {
                    want.insert(r.at.step);
                    want.extend(r.freed.iter().chain(&r.queued).map(|s| s.step));
                }
                // The grace periods that freed it.
                for e in graph.edges_of(EdgeKind::GracePeriod) {
                    if touches.contains(&e.from) || touches.contains(&e.to) {
                        want.insert(e.from);
                        want.insert(e.to);
                    }
                }
                visible.extend(want.into_iter().filter(|&s| in_window(s)));
                let spans_extent = lifetimes
                    .tables
                    .get(&p)
                    .into_iter()
                    .flatten()
                    .flat_map(|s| [s.start_step, s.end_step]);
                let extent: Vec<u64> = visible.iter().copied().chain(spans_extent).collect();
                lo = extent.iter().copied().min().unwrap_or(wlo).max(wlo);
                hi = extent.iter().copied().max().unwrap_or(whi).min(whi);
            }
        }

        let events: Vec<&Event> =
            trace.events.iter().filter(|e| visible.contains(&e.step)).collect();
        let holds: Vec<LockHold> = lifetimes
            .holds
            .iter()
            .filter(|h| h.from_step <= hi && h.to_step >= lo)
            .map(|h| LockHold { from_step: h.from_step.max(lo), to_step: h.to_step.min(hi), ..*h })
            .collect();
        let spans: Vec<TableSpan> = lifetimes
            .spans()
            .filter(|s| opts.focus_pfn.is_none() || opts.focus_pfn == Some(s.pfn))
            .filter(|s| s.start_step <= hi && s.end_step >= lo)
            .map(|s| {
                let mut s = s.clone();
                s.events.retain(|e| e.step >= lo && e.step <= hi);
                s.start_step = s.start_step.max(lo);
                s.end_step = s.end_step.min(hi);
                s
            })
            .collect();
        let edges: Vec<StepEdge> = graph
            .edges()
            .iter()
            .filter(|e| visible.contains(&e.from) && visible.contains(&e.to))
            .copied()
            .collect();

        let mut lanes: BTreeSet<Lane> = events.iter().map(|e| Lane::of(e.actor)).collect();
        lanes.extend(holds.iter().map(|h| h.lane));
        if opts.focus_pfn.is_none() {
            lanes.extend((0..trace.header.cpus.len()).map(|n| Lane::Cpu(n as u8)));
        }
        let lanes = lanes.into_iter().collect();

        View { trace, lifetimes, lo, hi, events, holds, spans, reports, edges, lanes, visible }
    }

    /// Whether the event at `step` is drawn.
    pub fn is_visible(&self, step: u64) -> bool {
        self.visible.contains(&step)
    }

    /// The event at `step` (visible or not).
    pub fn event(&self, step: u64) -> Option<&'t Event> {
        let evs = &self.trace.events;
        match evs.get(step as usize) {
            Some(e) if e.step == step => Some(e),
            _ => evs.binary_search_by_key(&step, |e| e.step).ok().map(|i| &evs[i]),
        }
    }

    /// The `(from, to)` steps of each visible report's race edge (see [`race_origin`]), and
    /// what happened at `from`.
    pub fn race_edges(&self) -> Vec<(u64, u64, &'t Report, RaceCause)> {
        self.reports
            .iter()
            .filter_map(|r| {
                let (from, cause) = race_origin(self.trace, r)?;
                Some((from, r.at.step, *r, cause))
            })
            .collect()
    }
}

/// Steps that must stay individually visible when a renderer squeezes long runs: lock ops on
/// every lock but the split ptlock (taken per entry in loops), lifetime events, IPIs, RCU grace
/// periods and TLB flushes. Everything else (entry reads and writes, ptlock ops, local steps)
/// may be summarised.
pub(crate) fn is_landmark(e: &Event) -> bool {
    match e.access {
        Access::LockRead | Access::LockWrite | Access::UnlockRead | Access::UnlockWrite => {
            !matches!(e.object, Object::PtLock(_))
        }
        Access::Alloc
        | Access::Share
        | Access::Unshare
        | Access::LockFree
        | Access::QueueFree
        | Access::Free
        | Access::IpiSend
        | Access::IpiHandle
        | Access::IpiWait
        | Access::GracePeriod
        | Access::TlbFlush => true,
        _ => false,
    }
}
