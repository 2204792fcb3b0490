//! Lifetimes derived from a trace: each page-table page's allocated spans (with its share,
//! unshare, queue-free, free and ptlock-death moments) and each lock hold.
//!
//! Owns the pairing rules (lock/unlock, alloc/free); renderers only read the result.

use std::collections::BTreeMap;

use mmsim_traces::{Access, Event, Object, Trace};

use crate::label::{HoldMode, Lane, LockKind};

/// What happened to a page-table page at one step of its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanEventKind {
    Alloc,
    Share,
    Unshare,
    QueueFree,
    Free,
    /// The split ptlock in its `struct ptdesc` was destroyed.
    PtlockFree,
}

impl SpanEventKind {
    pub fn name(self) -> &'static str {
        match self {
            SpanEventKind::Alloc => "alloc",
            SpanEventKind::Share => "share",
            SpanEventKind::Unshare => "unshare",
            SpanEventKind::QueueFree => "queue free",
            SpanEventKind::Free => "free",
            SpanEventKind::PtlockFree => "ptlock freed",
        }
    }

    pub const ALL: [SpanEventKind; 6] = [
        SpanEventKind::Alloc,
        SpanEventKind::Share,
        SpanEventKind::Unshare,
        SpanEventKind::QueueFree,
        SpanEventKind::PtlockFree,
        SpanEventKind::Free,
    ];
}

/// One lifetime event of a page-table page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanEvent {
    pub step: u64,
    pub lane: Lane,
    pub kind: SpanEventKind,
}

/// One lifetime of page-table page `pfn`: from its allocation (or first sighting) to its free
/// (or the end of the trace). A frame freed and allocated again has two spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpan {
    pub pfn: u64,
    /// The `Alloc` step; `None` when the trace starts with the page already live.
    pub alloc_step: Option<u64>,
    /// First step of the span (`alloc_step` when known).
    pub start_step: u64,
    /// The `Free` step, or the last step of the trace when never freed.
    pub end_step: u64,
    /// Whether the span ended with `Free` (false: still live at trace end).
    pub freed: bool,
    /// Alloc, share, unshare, queue-free, ptlock death and free, in step order.
    pub events: Vec<SpanEvent>,
}

impl TableSpan {
    /// First step at which the given kind happened in this span.
    pub fn step_of(&self, kind: SpanEventKind) -> Option<u64> {
        self.events.iter().find(|e| e.kind == kind).map(|e| e.step)
    }
}

/// One hold of a lock by one lane: from the acquiring step to the releasing step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockHold {
    pub lane: Lane,
    pub lock: Object,
    pub kind: LockKind,
    pub mode: HoldMode,
    pub from_step: u64,
    /// The release step, or the last step of the trace when `open`.
    pub to_step: u64,
    /// Still held at the end of the trace.
    pub open: bool,
}

/// Everything with a beginning and an end in a trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lifetimes {
    /// Spans of every page-table page, by pfn, each list in step order.
    pub tables: BTreeMap<u64, Vec<TableSpan>>,
    /// Lock holds sorted by (from_step, lane, lock).
    pub holds: Vec<LockHold>,
    /// Last step of the trace (where open spans and holds end).
    pub last_step: u64,
}

impl Lifetimes {
    /// Derive lifetimes from a trace's events.
    pub fn of(trace: &Trace) -> Lifetimes {
        let last_step = trace.events.iter().map(|e| e.step).max().unwrap_or(0);
        Lifetimes {
            tables: table_spans(&trace.events, last_step),
            holds: lock_holds(&trace.events, last_step),
            last_step,
        }
    }

    /// All spans of all pfns, in (pfn, start) order.
    pub fn spans(&self) -> impl Iterator<Item = &TableSpan> {
        self.tables.values().flatten()
    }
}

fn table_spans(events: &[Event], last_step: u64) -> BTreeMap<u64, Vec<TableSpan>> {
    let mut done: BTreeMap<u64, Vec<TableSpan>> = BTreeMap::new();
    let mut open: BTreeMap<u64, TableSpan> = BTreeMap::new();
    let new_span = |pfn, step, alloc: bool| TableSpan {
        pfn,
        alloc_step: alloc.then_some(step),
        start_step: step,
        end_step: last_step,
        freed: false,
        events: Vec::new(),
    };
    for e in events {
        let lane = Lane::of(e.actor);
        let (pfn, kind) = match (e.object, e.access) {
            (Object::Table(p), Access::Alloc) => (p, SpanEventKind::Alloc),
            (Object::Table(p), Access::Share) => (p, SpanEventKind::Share),
            (Object::Table(p), Access::Unshare) => (p, SpanEventKind::Unshare),
            (Object::Table(p), Access::QueueFree) => (p, SpanEventKind::QueueFree),
            (Object::Table(p), Access::Free) => (p, SpanEventKind::Free),
            (Object::PtLock(p), Access::LockFree) => (p, SpanEventKind::PtlockFree),
            _ => continue,
        };
        let ev = SpanEvent { step: e.step, lane, kind };
        match kind {
            SpanEventKind::Alloc => {
                if let Some(mut prev) = open.remove(&pfn) {
                    // Allocated again without a recorded free: end the old life here.
                    prev.end_step = e.step;
                    done.entry(pfn).or_default().push(prev);
                }
                let mut s = new_span(pfn, e.step, true);
                s.events.push(ev);
                open.insert(pfn, s);
            }
            SpanEventKind::PtlockFree if !open.contains_key(&pfn) => {
                // The ptlock died after the page was freed: attach it to the last life.
                match done.get_mut(&pfn).and_then(|v| v.last_mut()) {
                    Some(last) => last.events.push(ev),
                    None => {
                        let mut s = new_span(pfn, e.step, false);
                        s.events.push(ev);
                        open.insert(pfn, s);
                    }
                }
            }
            _ => {
                let s = open.entry(pfn).or_insert_with(|| new_span(pfn, e.step, false));
                s.events.push(ev);
                if kind == SpanEventKind::Free {
                    let mut s = open.remove(&pfn).expect("span just touched");
                    s.end_step = e.step;
                    s.freed = true;
                    done.entry(pfn).or_default().push(s);
                }
            }
        }
    }
    for (pfn, s) in open {
        done.entry(pfn).or_default().push(s);
    }
    for spans in done.values_mut() {
        spans.sort_by_key(|s| s.start_step);
    }
    done
}

fn lock_holds(events: &[Event], last_step: u64) -> Vec<LockHold> {
    // Open holds per (lane, lock): a stack, so recursive read holds pair innermost-first.
    let mut open: BTreeMap<(Lane, Object), Vec<(u64, HoldMode)>> = BTreeMap::new();
    let mut holds = Vec::new();
    for e in events {
        let Some(kind) = LockKind::of(e.object) else { continue };
        let lane = Lane::of(e.actor);
        match e.access {
            Access::LockRead | Access::LockWrite => {
                let mode =
                    if e.access == Access::LockRead { HoldMode::Read } else { HoldMode::Write };
                open.entry((lane, e.object)).or_default().push((e.step, mode));
            }
            Access::UnlockRead | Access::UnlockWrite => {
                if let Some((from, mode)) = open.get_mut(&(lane, e.object)).and_then(|v| v.pop()) {
                    holds.push(LockHold {
                        lane,
                        lock: e.object,
                        kind,
                        mode,
                        from_step: from,
                        to_step: e.step,
                        open: false,
                    });
                }
            }
            _ => {}
        }
    }
    for ((lane, lock), stack) in open {
        for (from, mode) in stack {
            let kind = LockKind::of(lock).expect("only locks are opened");
            holds.push(LockHold {
                lane,
                lock,
                kind,
                mode,
                from_step: from,
                to_step: last_step,
                open: true,
            });
        }
    }
    holds.sort_by_key(|h| (h.from_step, h.lane, h.lock, h.to_step));
    holds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{seed_race, OTHER, SHARED};

    #[test]
    fn seed_race_lifetimes() {
        let l = Lifetimes::of(&seed_race());
        assert_eq!(l.last_step, 23);
        let shared = &l.tables[&SHARED];
        assert_eq!(shared.len(), 1);
        let s = &shared[0];
        assert_eq!((s.alloc_step, s.start_step, s.end_step, s.freed), (Some(0), 0, 21, true));
        let kinds: Vec<_> = s.events.iter().map(|e| (e.step, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (0, SpanEventKind::Alloc),
                (1, SpanEventKind::Share),
                (9, SpanEventKind::Unshare),
                (15, SpanEventKind::PtlockFree),
                (16, SpanEventKind::QueueFree),
                (21, SpanEventKind::Free),
            ]
        );
        assert_eq!(s.events[2].lane, Lane::Cpu(1));
        let other = &l.tables[&OTHER][0];
        assert_eq!((other.end_step, other.freed), (23, false));

        let h: Vec<_> = l
            .holds
            .iter()
            .map(|h| (h.lane, h.kind, h.mode, h.from_step, h.to_step, h.open))
            .collect();
        use HoldMode::*;
        use LockKind::*;
        assert_eq!(
            h,
            [
                (Lane::Cpu(0), MmapLock, Read, 3, 23, true),
                (Lane::Cpu(1), MmapLock, Read, 5, 12, false),
                (Lane::Cpu(1), VmaLock, Write, 6, 11, false),
                (Lane::Cpu(1), IMmapRwsem, Write, 7, 10, false),
                (Lane::Cpu(2), MmapLock, Write, 13, 22, false),
                (Lane::Cpu(0), PtLock, Write, 23, 23, true),
            ]
        );
    }

    #[test]
    fn a_reused_frame_has_two_lives() {
        let mut t = seed_race();
        let mut e = t.events[0].clone();
        e.step = t.events.len() as u64;
        e.actor = mmsim_traces::Actor::Cpu(2);
        t.events.push(e);
        let spans = &Lifetimes::of(&t).tables[&SHARED];
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[1].start_step, spans[1].freed), (24, false));
    }
}
