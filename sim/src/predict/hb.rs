//! Happens-before over one recorded execution: a vector clock per event, and the race-pair
//! coverage built on it.
//!
//! Edges: program order per actor (each CPU's task, each CPU's interrupt context, RCU); the
//! setup phase before everything and teardown after everything; lock release to a later
//! acquire of the same lock (an rwsem's `down_read()` is ordered only after write releases,
//! so readers do not order each other; `down_write()` after every release); IPIs (send, then
//! the target's handler, then the sender's `csd_lock_wait()` that waits for the
//! acknowledgement; a handler that had to wait for the target's IRQs-off region to end is
//! ordered after its `local_irq_enable()`); RCU (a callback queued by `call_rcu()` runs after
//! the end of every read-side section or IRQs-off region that was open when it was queued).
//! The clocks are computed from the events alone (actor, object, access), so any recorded
//! trace can be analysed.

use mmsim_traces::{Access, Actor, Event, Object};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Vector-clock components: 8 CPU tasks, 8 interrupt contexts, RCU, setup, teardown.
pub const ACTORS: usize = 19;

/// A vector clock.
pub type Vc = [u32; ACTORS];

/// The clock component of an actor.
pub fn index(a: Actor) -> usize {
    match a {
        Actor::Cpu(c) => (c as usize).min(7),
        Actor::Irq(c) => 8 + (c as usize).min(7),
        Actor::Rcu => 16,
        Actor::Setup => 17,
        Actor::Teardown => 18,
    }
}

fn join(a: &mut Vc, b: &Vc) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = (*x).max(*y);
    }
}

/// Whether the event with clock `a` by `actor_a` happens before the event with clock `b`.
pub fn before(actor_a: Actor, a: &Vc, b: &Vc) -> bool {
    let i = index(actor_a);
    a[i] <= b[i]
}

#[derive(Default)]
struct Lock {
    /// Clock of the last write release.
    wrel: Vc,
    /// Join of every read release.
    rrel: Vc,
}

struct RcuCb {
    /// CPUs whose open read-side section the callback waits for.
    wait: u8,
    clock: Vc,
    tables: Vec<u64>,
}

/// The vector clock of every event of `events`, in order. Lock edges through locks for which
/// `skip_lock` holds are left out: when asking whether a use of a table can move past the table's free, ordering
/// through the table's own ptlock is the use itself, not a reason it cannot move.
pub fn clocks(events: &[Event], skip_lock: impl Fn(Object) -> bool) -> Vec<Vc> {
    let mut cur = [[0u32; ACTORS]; ACTORS];
    let mut started = [false; ACTORS];
    let mut locks: BTreeMap<Object, Lock> = BTreeMap::new();
    // IPIs: per target CPU, the join of the pending sends and the senders
    let mut ipi_clock = [[0u32; ACTORS]; 8];
    let mut ipi_from = [0u8; 8];
    // sent while the target had IRQs off: the handler waits for the region's end
    let mut ipi_blocked = [false; 8];
    let mut acks = [[0u32; ACTORS]; 8];
    let mut irqs_off = [0u8; 8];
    let mut rcu_nesting = [0u8; 8];
    let mut callbacks: Vec<RcuCb> = Vec::new();
    let mut queued: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut teardown_joined = false;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let a = index(e.actor);
        if !started[a] {
            started[a] = true;
            let setup = cur[index(Actor::Setup)];
            join(&mut cur[a], &setup);
        }
        if e.actor == Actor::Teardown && !teardown_joined {
            teardown_joined = true;
            for i in 0..ACTORS {
                let c = cur[i];
                join(&mut cur[a], &c);
            }
        }
        // acquire-side joins
        let skip = skip_lock(e.object);
        match e.access {
            Access::LockRead if !skip => {
                if let Some(l) = locks.get(&e.object) {
                    let w = l.wrel;
                    join(&mut cur[a], &w);
                }
            }
            Access::LockWrite if !skip => {
                if let Some(l) = locks.get(&e.object) {
                    let (w, r) = (l.wrel, l.rrel);
                    join(&mut cur[a], &w);
                    join(&mut cur[a], &r);
                }
            }
            Access::IpiHandle => {
                if let (Actor::Irq(c), Object::Cpu(_)) = (e.actor, e.object) {
                    let c = (c as usize).min(7);
                    let pending = ipi_clock[c];
                    join(&mut cur[a], &pending);
                }
            }
            Access::IpiWait => {
                if let Actor::Cpu(c) = e.actor {
                    let ack = acks[(c as usize).min(7)];
                    join(&mut cur[a], &ack);
                }
            }
            _ => {}
        }
        if e.actor == Actor::Rcu {
            if let Object::Table(p) | Object::PtLock(p) = e.object {
                if let Some(cb) = callbacks.iter().find(|cb| cb.tables.contains(&p)) {
                    let c = cb.clock;
                    join(&mut cur[a], &c);
                }
            }
        }
        cur[a][a] += 1;
        let now = cur[a];
        // release-side effects
        match e.access {
            Access::UnlockWrite if !skip => locks.entry(e.object).or_default().wrel = now,
            Access::UnlockRead if !skip => join(&mut locks.entry(e.object).or_default().rrel, &now),
            Access::IpiSend => {
                if let (Actor::Cpu(s), Object::Cpu(t)) = (e.actor, e.object) {
                    let t = (t as usize).min(7);
                    join(&mut ipi_clock[t], &now);
                    ipi_from[t] |= 1 << s.min(7);
                    if irqs_off[t] > 0 {
                        ipi_blocked[t] = true;
                    }
                }
            }
            Access::IpiHandle => {
                if let Actor::Irq(c) = e.actor {
                    let c = (c as usize).min(7);
                    for (s, ack) in acks.iter_mut().enumerate() {
                        if ipi_from[c] & (1 << s) != 0 {
                            join(ack, &now);
                        }
                    }
                    ipi_from[c] = 0;
                    ipi_blocked[c] = false;
                    ipi_clock[c] = [0; ACTORS];
                }
            }
            Access::IrqDisable | Access::RcuReadLock => {
                if let Actor::Cpu(c) = e.actor {
                    let c = (c as usize).min(7);
                    if e.access == Access::IrqDisable {
                        irqs_off[c] += 1;
                    } else {
                        rcu_nesting[c] += 1;
                    }
                }
            }
            Access::IrqEnable | Access::RcuReadUnlock => {
                if let Actor::Cpu(c) = e.actor {
                    let c = (c as usize).min(7);
                    if e.access == Access::IrqEnable {
                        irqs_off[c] = irqs_off[c].saturating_sub(1);
                        if irqs_off[c] == 0 && ipi_blocked[c] {
                            join(&mut ipi_clock[c], &now);
                            ipi_blocked[c] = false;
                        }
                    } else {
                        rcu_nesting[c] = rcu_nesting[c].saturating_sub(1);
                    }
                    if irqs_off[c] == 0 && rcu_nesting[c] == 0 {
                        for cb in callbacks.iter_mut().filter(|cb| cb.wait & (1 << c) != 0) {
                            join(&mut cb.clock, &now);
                            cb.wait &= !(1 << c);
                        }
                    }
                }
            }
            Access::QueueFree => match e.object {
                Object::Table(p) => queued.entry(a).or_default().push(p),
                Object::Rcu => {
                    let wait = (0..8)
                        .filter(|&c| irqs_off[c] > 0 || rcu_nesting[c] > 0)
                        .fold(0u8, |m, c| m | (1 << c));
                    let tables = queued.remove(&a).unwrap_or_default();
                    callbacks.push(RcuCb { wait, clock: now, tables });
                }
                _ => {}
            },
            _ => {}
        }
        out.push(now);
    }
    out
}

/// One happens-before class of conflicting pairs: the kernel function and access of the
/// earlier and the later event, and whether happens-before orders them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RacePair {
    pub first: String,
    pub first_access: String,
    pub second: String,
    pub second_access: String,
    pub ordered: bool,
}

impl std::fmt::Display for RacePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.first,
            self.first_access,
            if self.ordered { "->" } else { "||" },
            self.second,
            self.second_access
        )
    }
}

/// Whether an access changes its object (as opposed to reading it or using it as a lock).
pub fn modifies(a: Access) -> bool {
    matches!(
        a,
        Access::Write
            | Access::Alloc
            | Access::Share
            | Access::Unshare
            | Access::LockFree
            | Access::QueueFree
            | Access::Free
    )
}

fn is_lock_op(a: Access) -> bool {
    matches!(a, Access::LockRead | Access::LockWrite | Access::UnlockRead | Access::UnlockWrite)
}

/// Objects whose accesses are data (or lifetime), not synchronisation.
fn is_data(o: Object) -> bool {
    matches!(
        o,
        Object::Entry { .. }
            | Object::Table(_)
            | Object::PtLock(_)
            | Object::Page(_)
            | Object::Vmas(_)
    )
}

/// Whether two accesses to one object conflict: one of them changes it, and they are not both
/// lock operations (which are synchronisation, not a race).
pub fn conflict(a: Access, b: Access) -> bool {
    (modifies(a) || modifies(b)) && !(is_lock_op(a) && is_lock_op(b))
}

fn concurrent_actor(a: Actor) -> bool {
    !matches!(a, Actor::Setup | Actor::Teardown)
}

/// The race-pair coverage of one execution: every happens-before class of conflicting pairs
/// of accesses to one data object by two different actors. Each access is paired with the
/// latest access of every (actor, function, access) seen before it on that object.
pub fn race_pairs(events: &[Event]) -> BTreeSet<RacePair> {
    let vc = clocks(events, |_| false);
    // per object: (actor, func, access) -> (event index) of its latest occurrence
    let mut last: BTreeMap<Object, Vec<(Actor, usize)>> = BTreeMap::new();
    let mut classes: BTreeSet<(&str, u8, &str, u8, bool)> = BTreeSet::new();
    let mut access: BTreeMap<u8, Access> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if !concurrent_actor(e.actor) || !is_data(e.object) {
            continue;
        }
        let list = last.entry(e.object).or_default();
        for &(actor, j) in list.iter() {
            let p = &events[j];
            if actor == e.actor || !conflict(p.access, e.access) {
                continue;
            }
            let ordered = before(actor, &vc[j], &vc[i]);
            classes.insert((&p.func, p.access as u8, &e.func, e.access as u8, ordered));
            access.insert(p.access as u8, p.access);
            access.insert(e.access as u8, e.access);
        }
        match list.iter_mut().find(|(a, j)| {
            *a == e.actor && events[*j].func == e.func && events[*j].access == e.access
        }) {
            Some(slot) => slot.1 = i,
            None => list.push((e.actor, i)),
        }
    }
    let name = |code: u8| format!("{:?}", access[&code]);
    classes
        .into_iter()
        .map(|(f1, a1, f2, a2, ordered)| RacePair {
            first: f1.to_string(),
            first_access: name(a1),
            second: f2.to_string(),
            second_access: name(a2),
            ordered,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(actor: Actor, object: Object, access: Access) -> Event {
        Event {
            step: 0,
            time: 0,
            actor,
            op: 0,
            op_step: 0,
            func: "f".into(),
            object,
            access,
            detail: String::new(),
            value: None,
        }
    }

    fn hb(events: &[Event], i: usize, j: usize) -> bool {
        let vc = clocks(events, |_| false);
        before(events[i].actor, &vc[i], &vc[j])
    }

    const C0: Actor = Actor::Cpu(0);
    const C1: Actor = Actor::Cpu(1);

    #[test]
    fn lock_release_orders_a_later_acquire() {
        let l = Object::PtLock(7);
        let x = Object::Entry { pfn: 7, index: 0 };
        let evs = vec![
            ev(C0, l, Access::LockWrite),
            ev(C0, x, Access::Write),
            ev(C0, l, Access::UnlockWrite),
            ev(C1, l, Access::LockWrite),
            ev(C1, x, Access::Read),
        ];
        assert!(hb(&evs, 1, 4));
        // without the lock edge the two are unordered
        let vc = clocks(&evs, |o| o == l);
        assert!(!before(C0, &vc[1], &vc[4]));
        // and with no lock at all they are unordered
        let bare = vec![ev(C0, x, Access::Write), ev(C1, x, Access::Read)];
        assert!(!hb(&bare, 0, 1));
    }

    #[test]
    fn rwsem_readers_do_not_order_each_other_but_a_writer_does() {
        let l = Object::MmapLock(0);
        let x = Object::Table(3);
        let evs = vec![
            ev(C0, l, Access::LockRead),
            ev(C0, x, Access::Read),
            ev(C0, l, Access::UnlockRead),
            ev(C1, l, Access::LockRead),
            ev(C1, x, Access::Write),
            ev(C1, l, Access::UnlockRead),
            ev(Actor::Cpu(2), l, Access::LockWrite),
            ev(Actor::Cpu(2), x, Access::Free),
        ];
        assert!(!hb(&evs, 1, 4), "two readers of an rwsem are unordered");
        assert!(hb(&evs, 1, 7) && hb(&evs, 4, 7), "a writer comes after every reader");
    }

    #[test]
    fn rcu_callback_waits_for_readers_open_at_call_rcu() {
        let t = Object::Table(9);
        let e = Object::Entry { pfn: 9, index: 1 };
        let evs = vec![
            // CPU0 enters an IRQs-off walk (an RCU reader since the flavours merged)
            ev(C0, Object::Cpu(0), Access::IrqDisable),
            ev(C0, e, Access::Read),
            // CPU1 queues the table and calls call_rcu() while CPU0 is inside
            ev(C1, t, Access::QueueFree),
            ev(C1, Object::Rcu, Access::QueueFree),
            ev(C0, Object::Cpu(0), Access::IrqEnable),
            // a reader that starts after call_rcu() is not waited for
            ev(C0, Object::Rcu, Access::RcuReadLock),
            ev(C0, e, Access::Read),
            ev(Actor::Rcu, t, Access::Free),
        ];
        assert!(hb(&evs, 1, 7), "the read inside the old section precedes the free");
        assert!(hb(&evs, 3, 7), "call_rcu precedes its callback");
        assert!(!hb(&evs, 6, 7), "a reader that began after call_rcu is not ordered");
    }

    #[test]
    fn ipi_send_handle_ack_and_irqs_off_delay() {
        let x = Object::Entry { pfn: 5, index: 0 };
        let evs = vec![
            ev(C0, Object::Cpu(0), Access::IrqDisable),
            ev(C0, x, Access::Read),
            ev(C1, Object::Cpu(0), Access::IpiSend),
            ev(C0, Object::Cpu(0), Access::IrqEnable),
            ev(Actor::Irq(0), Object::Cpu(0), Access::IpiHandle),
            ev(C1, Object::Cpu(1), Access::IpiWait),
            ev(C1, Object::Table(5), Access::Free),
        ];
        assert!(hb(&evs, 1, 6), "the IRQs-off walk precedes the free after the acked IPI");
        assert!(hb(&evs, 2, 4), "send precedes handle");
    }

    #[test]
    fn race_pairs_classify_ordered_and_unordered() {
        let l = Object::PtLock(7);
        let x = Object::Entry { pfn: 7, index: 0 };
        let evs = vec![
            ev(C0, x, Access::Read),
            ev(C1, x, Access::Write),
            ev(C1, l, Access::UnlockWrite),
            ev(C0, l, Access::LockWrite),
            ev(C0, x, Access::Write),
        ];
        let p = race_pairs(&evs);
        assert_eq!(p.iter().filter(|p| !p.ordered).count(), 1, "{p:?}");
        assert_eq!(p.iter().filter(|p| p.ordered).count(), 1, "{p:?}");
    }
}
