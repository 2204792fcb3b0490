//! Candidate reorderings of one execution, and the strategy that runs them.
//!
//! A candidate is a plan: the execution's concurrent steps in a new order that keeps each
//! actor's program order and every happens-before edge the move does not question. Kinds:
//! - *free before use*: a page-table page (or its ptlock) is freed after another CPU used it,
//!   unordered by happens-before; the plan runs everything the free needs, then the free, then
//!   the use.
//! - *walk before unlink*: a CPU read an entry after another CPU unlinked the table it used to
//!   point at, unordered; the plan lets the read see the table (read first), holds that CPU back
//!   until the table is freed, then lets it walk on into the table.
//! - *walk before unshare*: the same, held only until the unlink (wrong mm, no free needed).
//! - *fill before flush*: a CPU's hardware walk moves before another CPU's entry change and
//!   the walker is held until that CPU's TLB flush; its next walk may use a stale entry.
//! - *critical-section flip*: a share-count check and a sharer drop swap (prepares the others).
//!
//! [`Guided`] follows a plan leniently: at each step it runs the runnable actor whose next
//! planned step comes first. When the reordered run behaves as the original did this is
//! exactly the plan; where it differs (a read now sees another value) it degrades gracefully
//! instead of giving up, and only the engine's checkers decide whether the violation happened.

use super::hb::{self, Vc};
use crate::engine::strategy::{Choice, Diverged, Strategy};
use crate::env::Env;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Actor, Event, Object, Trace};
use std::collections::BTreeMap;

/// What a candidate tries to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `free` (concurrent-step index) moves before `use_`.
    FreeBeforeUse { use_: usize, free: usize },
    /// `read` moves before `unlink`, and is held back until `free`.
    WalkBeforeUnlink { unlink: usize, read: usize, free: usize },
    /// `read` moves before `unlink`, and is held back until the unlink: the reader then walks
    /// on into a table its mm no longer maps (wrong mm), whether or not it is ever freed.
    WalkBeforeUnshare { unlink: usize, read: usize },
    /// `fill` (a CPU's hardware walk, which fills its TLB) moves before another CPU's entry
    /// change `change`; the walker is held back until that CPU's TLB flush `flush` claimed
    /// completion, then its next hardware walk `use_` may use what the fill cached (stale TLB).
    FillBeforeFlush { fill: usize, change: usize, flush: usize, use_: usize },
    /// The sharer drop `unshare` moves before the critical section holding the share-count
    /// read `read`, so that the reader finds the table exclusive and frees it. The run this
    /// gives is analysed again (its free may now be unordered with a use).
    UnshareBeforeCheck { read: usize, unshare: usize },
}

/// A reordering of the concurrent steps of one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub kind: Kind,
    /// The table whose free the candidate moves.
    pub pfn: u64,
    /// Actors in the planned order, one entry per step.
    pub plan: Vec<Actor>,
    /// The two actors whose order the candidate changes (earlier, later in the execution).
    pub plan_key: (Actor, Actor),
}

impl Candidate {
    /// What the candidate reorders, independent of step numbers (each event named by actor,
    /// operation, step within it and function), so the same reordering found again in a
    /// reordered run is recognised.
    pub fn key(&self, ev: &[Event]) -> String {
        let (tag, at) = self.parts();
        let mut k = format!("{tag} 0x{:x}", self.pfn);
        for i in at {
            let e = &ev[i];
            k.push_str(&format!(" {:?}/{}/{}/{}", e.actor, e.op, e.op_step, e.func));
        }
        k
    }

    /// The kind's short name (`walk-before-unshare`).
    pub fn tag(&self) -> &'static str {
        self.parts().0
    }

    fn parts(&self) -> (&'static str, Vec<usize>) {
        match self.kind {
            Kind::FreeBeforeUse { use_, free } => ("free-before-use", vec![use_, free]),
            Kind::WalkBeforeUnlink { unlink, read, free } => {
                ("walk-before-unlink", vec![unlink, read, free])
            }
            Kind::WalkBeforeUnshare { unlink, read } => ("walk-before-unshare", vec![unlink, read]),
            Kind::FillBeforeFlush { fill, change, flush, use_ } => {
                ("fill-before-flush", vec![fill, change, flush, use_])
            }
            Kind::UnshareBeforeCheck { read, unshare } => ("flip", vec![read, unshare]),
        }
    }

    /// One line for humans.
    pub fn describe(&self, ev: &[Event]) -> String {
        let at = |i: usize| {
            let e = &ev[i];
            format!("{} {} at step {}", crate::check::actor_name(e.actor), e.func, e.step)
        };
        match self.kind {
            Kind::FreeBeforeUse { use_, free } => {
                format!("free of pfn 0x{:x} ({}) before its use ({})", self.pfn, at(free), at(use_))
            }
            Kind::WalkBeforeUnlink { unlink, read, free } => format!(
                "walk ({}) before the unlink of pfn 0x{:x} ({}), held until its free ({})",
                at(read),
                self.pfn,
                at(unlink),
                at(free)
            ),
            Kind::WalkBeforeUnshare { unlink, read } => format!(
                "walk ({}) before the unlink of pfn 0x{:x} ({}), held until the unlink",
                at(read),
                self.pfn,
                at(unlink)
            ),
            Kind::FillBeforeFlush { fill, change, flush, use_ } => format!(
                "TLB fill ({}) before the entry change ({}), held until its flush ({}), then the next use ({})",
                at(fill),
                at(change),
                at(flush),
                at(use_)
            ),
            Kind::UnshareBeforeCheck { read, unshare } => format!(
                "sharer drop of pfn 0x{:x} ({}) before the share-count check ({})",
                self.pfn,
                at(unshare),
                at(read)
            ),
        }
    }
}

/// Candidates tried per execution at most.
pub const MAX_CANDIDATES: usize = 8;

/// Whether `o` is a use of what the free `freed` frees: the table page (its descriptor, its
/// entries, its ptlock), or only its ptlock when the free destroys the ptlock.
fn uses(o: Object, freed: Object) -> bool {
    match freed {
        Object::PtLock(pfn) => o == Object::PtLock(pfn),
        Object::Table(pfn) => {
            matches!(o, Object::Table(p) | Object::PtLock(p) if p == pfn)
                || matches!(o, Object::Entry { pfn: p, .. } if p == pfn)
        }
        _ => false,
    }
}

fn is_free(e: &Event) -> Option<u64> {
    match (e.object, e.access) {
        (Object::Table(p), Access::Free) | (Object::PtLock(p), Access::LockFree) => Some(p),
        _ => None,
    }
}

/// The value an entry event read or wrote, decoded with the architecture from the event's
/// structured [`mmsim_traces::EntryValue`] (schema 4; `None` for any other event).
pub fn entry_value(env: &Env, e: &Event) -> Option<Entry> {
    let v = e.value?;
    env.arch.decode(v.level as usize, v.raw).ok()
}

fn concurrent(a: Actor) -> bool {
    !matches!(a, Actor::Setup | Actor::Teardown)
}

/// The plan: `first` (indices in order), then every other index in trace order.
fn plan_of(ev: &[Event], first: &[usize], skip_actor_until: Option<(Actor, usize)>) -> Vec<Actor> {
    let mut placed = vec![false; ev.len()];
    let mut plan = Vec::with_capacity(ev.len());
    for &i in first {
        placed[i] = true;
        plan.push(ev[i].actor);
    }
    // the held-back actor's remaining steps come after `until` is placed
    if let Some((held, until)) = skip_actor_until {
        for i in 0..ev.len() {
            if !placed[i] && ev[i].actor != held && i <= until {
                placed[i] = true;
                plan.push(ev[i].actor);
            }
        }
    }
    for i in 0..ev.len() {
        if !placed[i] {
            plan.push(ev[i].actor);
        }
    }
    plan
}

/// The candidates of one clean execution, most promising first, at most [`MAX_CANDIDATES`].
/// `ev` are the trace's events of the concurrent phase only.
pub fn candidates(env: &Env, setup: &[Event], ev: &[Event]) -> Vec<Candidate> {
    let mut out = Vec::new();
    // the value of every entry as the setup phase left it
    let mut values: BTreeMap<Object, Option<Entry>> = BTreeMap::new();
    for e in setup {
        if let Some(v) = entry_value(env, e) {
            values.insert(e.object, Some(v));
        }
    }
    // every table freed in the concurrent phase, in order of its first free event
    let mut freed: Vec<(u64, usize)> = Vec::new();
    for (i, e) in ev.iter().enumerate() {
        if let Some(p) = is_free(e) {
            if !freed.iter().any(|&(q, g)| q == p && ev[g].object == e.object) {
                freed.push((p, i));
            }
        }
    }
    for (k, &(pfn, f)) in freed.iter().enumerate() {
        let vc = hb::clocks(ev, |o| o == Object::PtLock(pfn));
        // this generation of the table: from its last allocation before the free
        let born = ev[..f]
            .iter()
            .rposition(|e| e.object == Object::Table(pfn) && e.access == Access::Alloc)
            .map_or(0, |i| i + 1);
        free_before_use(env, ev, &vc, (pfn, born, f), &mut out);
        // walks: once per table, up to its first free (ptlock or page)
        if !freed[..k].iter().any(|&(q, _)| q == pfn) {
            walk_before_unlink(env, ev, &vc, values.clone(), (pfn, f), &mut out);
        }
    }
    out.truncate(MAX_CANDIDATES);
    fill_before_flush(env, ev, values.clone(), &mut out);
    walk_before_unshare(env, ev, values, &mut out);
    out.truncate(MAX_CANDIDATES);
    out
}

/// The unlinks of the concurrent phase: entry writes by a concurrent actor that replace a
/// pointer to a table, as `(write, table pfn)`, given the entry values the setup left.
fn unlinks(
    env: &Env,
    ev: &[Event],
    mut value: BTreeMap<Object, Option<Entry>>,
) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for (w, e) in ev.iter().enumerate() {
        let Some(v) = entry_value(env, e) else { continue };
        let old = value.insert(e.object, Some(v)).flatten();
        if let Some(Entry::Table { pfn }) = old {
            if e.access == Access::Write && v != (Entry::Table { pfn }) && concurrent(e.actor) {
                out.push((w, pfn));
            }
        }
    }
    out
}

/// Wrong-mm candidates: a CPU read an entry after another CPU unlinked the table it pointed
/// at, unordered; the read moves before the unlink and the CPU waits only for the unlink, so
/// that it walks on into a table its mm no longer maps. (With a free of the table too, that is
/// [`Kind::WalkBeforeUnlink`], tried first.)
fn walk_before_unshare(
    env: &Env,
    ev: &[Event],
    value: BTreeMap<Object, Option<Entry>>,
    out: &mut Vec<Candidate>,
) {
    for (w, pfn) in unlinks(env, ev, value) {
        let e = &ev[w];
        let vc = hb::clocks(ev, |o| o == Object::PtLock(pfn));
        let mut done: Vec<Actor> = vec![e.actor];
        for r in w + 1..ev.len() {
            if out.len() >= MAX_CANDIDATES {
                return;
            }
            let x = &ev[r];
            if x.object != e.object || done.contains(&x.actor) || !matches!(x.actor, Actor::Cpu(_))
            {
                continue;
            }
            done.push(x.actor);
            let tried = out.iter().any(|c| {
                matches!(c.kind, Kind::WalkBeforeUnlink { unlink, read, .. } if unlink == w && read == r)
            });
            if x.access != Access::Read || tried || hb::before(e.actor, &vc[w], &vc[r]) {
                continue;
            }
            let mut first: Vec<usize> = (0..w).collect();
            first.extend((w + 1..=r).filter(|&i| !hb::before(e.actor, &vc[w], &vc[i])));
            out.push(Candidate {
                kind: Kind::WalkBeforeUnshare { unlink: w, read: r },
                pfn,
                plan: plan_of(ev, &first, Some((x.actor, w))),
                plan_key: (e.actor, x.actor),
            });
        }
    }
}

/// Whether `e` is a hardware walk by a CPU's MMU (a TLB lookup that may fill it).
fn is_tlb_use(e: &Event) -> bool {
    matches!((e.actor, e.object, e.access), (Actor::Cpu(c), Object::Tlb(t), Access::Read) if c == t)
}

/// Stale-TLB candidates: for each TLB flush by a CPU, the first entry change that CPU made
/// since its previous flush; for each other CPU of the same mm with two hardware walks, its walk before the
/// change (or else its first walk, moved before the change) fills its TLB, and its next walk
/// moves after the flush. Whether the cached translation is stale by then, and whether the
/// flush claimed completion for its mm, the engine's stale-TLB checker decides.
fn fill_before_flush(
    env: &Env,
    ev: &[Event],
    mut value: BTreeMap<Object, Option<Entry>>,
    out: &mut Vec<Candidate>,
) {
    // (change, flush) pairs
    let mut pending: BTreeMap<Actor, usize> = BTreeMap::new();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, e) in ev.iter().enumerate() {
        if let Some(v) = entry_value(env, e) {
            let old = value.insert(e.object, Some(v)).flatten();
            if e.access == Access::Write && old != Some(v) && matches!(e.actor, Actor::Cpu(_)) {
                pending.entry(e.actor).or_insert(i);
            }
        }
        if e.access == Access::TlbFlush {
            if let Some(w) = pending.remove(&e.actor) {
                pairs.push((w, i));
            }
        }
    }
    if pairs.is_empty() {
        return;
    }
    let vc = hb::clocks(ev, |_| false);
    let mm_of = |a: Actor| match a {
        Actor::Cpu(c) => env.scenario.cpus.get(c as usize).map(|cpu| cpu.0),
        _ => None,
    };
    for (w, f) in pairs {
        let changer = ev[w].actor;
        for c in 0..env.ncpus().min(8) as u8 {
            if out.len() >= MAX_CANDIDATES {
                return;
            }
            let x = Actor::Cpu(c);
            // a CPU's TLB holds its own mm's translations: only a flush of that mm matters
            if x == changer || mm_of(x) != mm_of(changer) {
                continue;
            }
            let walks: Vec<usize> =
                (0..ev.len()).filter(|&i| ev[i].actor == x && is_tlb_use(&ev[i])).collect();
            // the fill: the last walk before the change, else the first walk
            let k = walks.iter().rposition(|&i| i < w).unwrap_or(0);
            let (Some(&fill), Some(&use_)) = (walks.get(k), walks.get(k + 1)) else { continue };
            // already in that order (and clean), or the fill cannot move before the change, or
            // the use cannot move after the flush
            if (fill < w && use_ > f)
                || (fill > w && hb::before(changer, &vc[w], &vc[fill]))
                || (use_ < f && hb::before(x, &vc[use_], &vc[f]))
            {
                continue;
            }
            // everything before the change but the walker's steps after the fill; then the
            // walker up to the fill; then the changer up to its flush; then the rest
            let mut first: Vec<usize> = (0..w).filter(|&i| ev[i].actor != x || i <= fill).collect();
            first.extend((w..=fill).filter(|&i| ev[i].actor == x));
            out.push(Candidate {
                kind: Kind::FillBeforeFlush { fill, change: w, flush: f, use_ },
                pfn: 0,
                plan: plan_of(ev, &first, Some((x, f))),
                plan_key: (changer, x),
            });
        }
    }
}

/// Candidates that reorder whole critical sections: a share-count check and another CPU's
/// sharer drop (`huge_pmd_unshare()` on both sides), in either order. They are ordered only by
/// the locks both hold, so the analysis uses happens-before without lock edges, and moves the
/// later CPU's critical section before the earlier CPU's outermost critical section: a checker
/// that now finds the table exclusive frees it, and the run this gives is analysed again.
pub fn critical_section_flips(ev: &[Event]) -> Vec<Candidate> {
    let mut out = Vec::new();
    let vc = hb::clocks(ev, |_| true);
    let pair = |a: Access, b: Access| {
        matches!((a, b), (Access::Read, Access::Unshare) | (Access::Unshare, Access::Read))
    };
    for (i, e) in ev.iter().enumerate() {
        let Object::Table(pfn) = e.object else { continue };
        if !matches!(e.actor, Actor::Cpu(_)) || !matches!(e.access, Access::Read | Access::Unshare)
        {
            continue;
        }
        let Some(j) = (i + 1..ev.len()).find(|&j| {
            ev[j].object == e.object
                && ev[j].actor != e.actor
                && matches!(ev[j].actor, Actor::Cpu(_))
                && pair(e.access, ev[j].access)
        }) else {
            continue;
        };
        if hb::before(e.actor, &vc[i], &vc[j])
            || out.iter().any(|c: &Candidate| c.pfn == pfn && c.plan_key == (e.actor, ev[j].actor))
        {
            continue;
        }
        // the start of the earlier CPU's outermost critical section around `i`
        let mut depth = 0i32;
        let mut start = i;
        for (k, x) in ev[..i].iter().enumerate().filter(|(_, x)| x.actor == e.actor) {
            if depth == 0 {
                start = k;
            }
            match x.access {
                Access::LockRead | Access::LockWrite => depth += 1,
                Access::UnlockRead | Access::UnlockWrite => depth -= 1,
                _ => {}
            }
        }
        if depth == 0 {
            start = i;
        }
        let mut first: Vec<usize> = (0..start).collect();
        first.extend((start + 1..=j).filter(|&k| !hb::before(e.actor, &vc[start], &vc[k])));
        let (read, unshare) = if e.access == Access::Read { (i, j) } else { (j, i) };
        out.push(Candidate {
            kind: Kind::UnshareBeforeCheck { read, unshare },
            pfn,
            plan: plan_of(ev, &first, None),
            plan_key: (e.actor, ev[j].actor),
        });
    }
    out
}

/// Whether `actor` is inside an RCU read-side section or an IRQs-off region at every event
/// from `from` to `to` (inclusive), counting its own transitions from the start.
fn in_reader(ev: &[Event], actor: Actor, from: usize, to: usize) -> bool {
    let mut depth = 0i32;
    for (i, e) in ev[..=to].iter().enumerate().filter(|(_, e)| e.actor == actor) {
        match e.access {
            Access::IrqDisable | Access::RcuReadLock => depth += 1,
            Access::IrqEnable | Access::RcuReadUnlock => depth -= 1,
            _ => {}
        }
        if i >= from && depth <= 0 {
            return false;
        }
    }
    depth > 0
}

/// Whether the free `f` of `pfn` waits for every reader section that was open when the table
/// was unlinked at `w`: an RCU callback whose table was queued after `w`, or a free after an
/// IPI to `cpu` sent after `w` and acknowledged. A CPU that obtained its pointer to the table
/// inside such a section before the unlink, and uses it in the same section, cannot see the
/// free: a reordering that moves the free before its use is then infeasible.
fn free_waits_for_readers(ev: &[Event], pfn: u64, w: usize, f: usize, cpu: u8) -> bool {
    let range = &ev[w + 1..f];
    if ev[f].actor == Actor::Rcu {
        return range
            .iter()
            .any(|e| e.object == Object::Table(pfn) && e.access == Access::QueueFree);
    }
    range.iter().enumerate().any(|(i, s)| {
        s.access == Access::IpiSend
            && s.object == Object::Cpu(cpu)
            && range[i + 1..].iter().any(|x| x.actor == s.actor && x.access == Access::IpiWait)
    })
}

/// The read by `actor` before `before` that found the pointer to `pfn`, and the later write
/// by another actor that removed it (before `limit`).
fn pointer_and_unlink(
    env: &Env,
    ev: &[Event],
    actor: Actor,
    pfn: u64,
    before: usize,
    limit: usize,
) -> Option<(usize, usize)> {
    let r = (0..before).rev().find(|&i| {
        ev[i].actor == actor
            && ev[i].access == Access::Read
            && entry_value(env, &ev[i]) == Some(Entry::Table { pfn })
    })?;
    let w = (r + 1..limit).find(|&i| {
        ev[i].object == ev[r].object
            && ev[i].access == Access::Write
            && ev[i].actor != actor
            && entry_value(env, &ev[i]) != Some(Entry::Table { pfn })
    })?;
    Some((r, w))
}

fn free_before_use(
    env: &Env,
    ev: &[Event],
    vc: &[Vc],
    (pfn, born, f): (u64, usize, usize),
    out: &mut Vec<Candidate>,
) {
    let fa = ev[f].actor;
    let mut prev_use = [false; hb::ACTORS];
    for u in born..f {
        if out.len() >= MAX_CANDIDATES {
            return;
        }
        let e = &ev[u];
        let a = hb::index(e.actor);
        let is_use = uses(e.object, ev[f].object) && e.actor != fa && concurrent(e.actor);
        let starts = is_use && !prev_use[a];
        if e.actor != fa {
            prev_use[a] = is_use;
        }
        if !starts || hb::before(e.actor, &vc[u], &vc[f]) {
            continue;
        }
        // the pointer was taken inside a reader section the free waits for
        if let (Actor::Cpu(c), Some((r, w))) =
            (e.actor, pointer_and_unlink(env, ev, e.actor, pfn, u, f))
        {
            if in_reader(ev, e.actor, r, u) && free_waits_for_readers(ev, pfn, w, f, c) {
                continue;
            }
        }
        // everything up to the free that does not need the use goes first, then the use
        let mut first: Vec<usize> = (0..u).collect();
        first.extend((u + 1..=f).filter(|&i| !hb::before(e.actor, &vc[u], &vc[i])));
        out.push(Candidate {
            kind: Kind::FreeBeforeUse { use_: u, free: f },
            pfn,
            plan: plan_of(ev, &first, None),
            plan_key: (e.actor, fa),
        });
    }
}

fn walk_before_unlink(
    env: &Env,
    ev: &[Event],
    vc: &[Vc],
    mut value: BTreeMap<Object, Option<Entry>>,
    (pfn, f): (u64, usize),
    out: &mut Vec<Candidate>,
) {
    for w in 0..f {
        if out.len() >= MAX_CANDIDATES {
            return;
        }
        let e = &ev[w];
        let v = entry_value(env, e);
        if v.is_none() {
            continue;
        }
        let old = value.insert(e.object, v).flatten();
        let unlinks = e.access == Access::Write
            && old == Some(Entry::Table { pfn })
            && v != Some(Entry::Table { pfn });
        if !unlinks || !concurrent(e.actor) {
            continue;
        }
        // the first read of that entry by each other CPU after the unlink, if unordered
        let mut done: Vec<Actor> = vec![e.actor];
        for r in w + 1..ev.len() {
            let x = &ev[r];
            if x.object != e.object || done.contains(&x.actor) || !matches!(x.actor, Actor::Cpu(_))
            {
                continue;
            }
            done.push(x.actor);
            if x.access != Access::Read || hb::before(e.actor, &vc[w], &vc[r]) {
                continue;
            }
            // a walk inside a reader section the free waits for cannot outlive the table
            if let Actor::Cpu(c) = x.actor {
                if in_reader(ev, x.actor, r, r) && free_waits_for_readers(ev, pfn, w, f, c) {
                    continue;
                }
            }
            let mut first: Vec<usize> = (0..w).collect();
            first.extend((w + 1..=r).filter(|&i| !hb::before(e.actor, &vc[w], &vc[i])));
            out.push(Candidate {
                kind: Kind::WalkBeforeUnlink { unlink: w, read: r, free: f },
                pfn,
                plan: plan_of(ev, &first, Some((x.actor, f.max(r)))),
                plan_key: (e.actor, x.actor),
            });
        }
    }
}

/// The events of a trace's concurrent phase (those that correspond to its decisions).
pub fn concurrent_events(t: &Trace) -> &[Event] {
    let start = t.events.iter().position(|e| e.actor != Actor::Setup).unwrap_or(t.events.len());
    let end = (start + t.decisions.len()).min(t.events.len());
    &t.events[start..end]
}

/// Runs a plan leniently: the runnable actor whose next planned step comes first.
pub struct Guided {
    /// Plan positions of each actor's steps, per clock component.
    positions: Vec<Vec<u32>>,
    taken: [usize; hb::ACTORS],
    name: String,
}

impl Guided {
    pub fn new(plan: &[Actor], name: String) -> Self {
        let mut positions = vec![Vec::new(); hb::ACTORS];
        for (i, a) in plan.iter().enumerate() {
            positions[hb::index(*a)].push(i as u32);
        }
        Guided { positions, taken: [0; hb::ACTORS], name }
    }

    fn next(&self, a: Actor) -> u32 {
        let i = hb::index(a);
        self.positions[i].get(self.taken[i]).copied().unwrap_or(u32::MAX)
    }
}

impl Strategy for Guided {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn choose(&mut self, _step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        let (i, c) = runnable
            .iter()
            .enumerate()
            .min_by_key(|(i, c)| (self.next(c.actor), *i))
            .expect("runnable is never empty");
        self.taken[hb::index(c.actor)] += 1;
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Prepared, Request};
    use crate::scenario::Source;

    fn prepared() -> Prepared {
        Prepared::new(&Request {
            source: Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some("v6.1".into()),
            set: vec![],
        })
        .unwrap()
    }

    #[test]
    fn entry_values_decode_from_the_events_value_not_its_detail() {
        let p = prepared();
        let mut t = p.run_seed(0, true).unwrap().0;
        let none_at = t.events.iter().position(|e| e.detail.ends_with(":= 0x0")).unwrap();
        // the analysis does not read the human detail
        for e in &mut t.events {
            e.detail.clear();
        }
        // setup links A's PUD entry to the PMD table it then shares with B
        let linked = t
            .events
            .iter()
            .filter(|e| e.actor == Actor::Setup && e.access == Access::Write)
            .filter_map(|e| entry_value(&p.env, e))
            .filter(|v| matches!(v, Entry::Table { .. }))
            .count();
        assert!(linked >= 3, "pgd->pud, pud->pmd for two mms: {linked}");
        assert_eq!(entry_value(&p.env, &t.events[none_at]), Some(Entry::None));
        // every entry read and write carries its value, nothing else does
        for e in &t.events {
            let entry = matches!(e.object, Object::Entry { .. })
                && matches!(e.access, Access::Read | Access::Write);
            assert_eq!(e.value.is_some(), entry, "{e:?}");
        }
        assert!(t
            .events
            .iter()
            .filter(|e| !matches!(e.object, Object::Entry { .. }))
            .all(|e| entry_value(&p.env, e).is_none()));
    }

    #[test]
    fn guided_with_the_executions_own_order_reproduces_it() {
        let p = prepared();
        for seed in 0..4 {
            let t = p.run_seed(seed, true).unwrap().0;
            let plan: Vec<Actor> = concurrent_events(&t).iter().map(|e| e.actor).collect();
            let mut g = Guided::new(&plan, "guided".into());
            let again = p.run_with(seed, &mut g, true).unwrap();
            assert_eq!(again.decisions, t.decisions, "seed {seed}");
            assert_eq!(again.events, t.events, "seed {seed}");
        }
    }

    #[test]
    fn a_plan_keeps_every_actors_program_order() {
        let p = prepared();
        let t = p.run_seed(2, true).unwrap().0;
        let (setup, ev) = crate::predict::split(&t);
        let cands = candidates(&p.env, setup, ev);
        assert!(!cands.is_empty());
        for c in cands.iter().chain(critical_section_flips(ev).iter()) {
            assert_eq!(c.plan.len(), ev.len());
            for a in [Actor::Cpu(0), Actor::Cpu(1), Actor::Cpu(2)] {
                let n = |xs: &mut dyn Iterator<Item = Actor>| xs.filter(|&x| x == a).count();
                assert_eq!(n(&mut c.plan.iter().copied()), n(&mut ev.iter().map(|e| e.actor)));
            }
        }
    }
}
