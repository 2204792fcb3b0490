//! The visited-state key of the exhaustive search: a 64-bit [`StateHasher`] fingerprint of the
//! engine's state and the checker's history, with step numbers that only say *when* something
//! happened left out (provenance sites keep their actor, op and function; of TLB fill and
//! flush times, only whether each entry was filled before its mm's last flush claim, all the
//! stale-TLB check compares), so schedules that commute independent steps meet again.
//!
//! Nothing is cloned or normalised in place: every struct is hashed field by field with its
//! fields named (a new field does not compile until it is placed here), tables and page caches
//! contribute their kept sums ([`crate::model::fingerprint`]), and the parts of the state
//! cache their fingerprints until written ([`crate::model::fingerprint::Keyed`]), so a key
//! costs what the parts a step touched cost.

use crate::engine::{Engine, State};
use crate::model::cpu::Cpu;
use crate::model::fingerprint::{hash_of, StateHasher};
use crate::model::mm::Mm;
use crate::model::rcu::{Rcu, RcuCallback};
use crate::model::Kernel;
use std::hash::{Hash, Hasher};

/// Hash `state` with its step numbers left out (see the module doc). The mms, files, CPUs,
/// page-table frames and programs each contribute a fingerprint they cache until written.
pub fn hash_state<H: Hasher>(state: &State, h: &mut H) {
    let State { k, progs, step: _ } = state;
    let Kernel { mem, mms, files, cpus, rcu, fault_mutex } = k;
    mem.hash_without_steps(h);
    mms.len().hash(h);
    for m in mms {
        h.write_u64(m.key(mm_key));
    }
    files.len().hash(h);
    for f in files {
        h.write_u64(f.key(hash_of));
    }
    cpus.len().hash(h);
    for c in cpus {
        h.write_u64(c.key(cpu_key));
        // of the fill times, what the stale-TLB check compares: filled before the last
        // flush its mm claimed complete, or not
        let flushed_at = |mm: u8| mms.get(mm as usize).map_or(0, |m| m.flushed_at);
        h.write_u8(c.tlb.filled_before_flush(flushed_at));
    }
    let Rcu { callbacks } = rcu;
    callbacks.len().hash(h);
    for cb in callbacks {
        let RcuCallback { wait_mask, qs_snapshot, what, queued } = cb;
        (wait_mask, qs_snapshot, what, queued.actor, queued.op, queued.func).hash(h);
    }
    fault_mutex.hash(h);
    progs.len().hash(h);
    for p in progs {
        h.write_u64(p.key_cache.get_or(|| hash_of(p)));
    }
}

/// An mm's part of the key: everything but the step of its last flush claim (the CPUs' parts
/// say which TLB entries were filled before it).
fn mm_key(m: &Mm) -> u64 {
    let Mm {
        pgd,
        mmap_lock,
        page_table_lock,
        vmas,
        nr_pmds,
        cpumask,
        next_vma_id,
        flushed_at: _,
        mm_lock_seq,
        dup_mmap,
    } = m;
    hash_of(&(
        pgd,
        mmap_lock,
        page_table_lock,
        vmas,
        nr_pmds,
        cpumask,
        next_vma_id,
        mm_lock_seq,
        dup_mmap,
    ))
}

/// A CPU's part of the key: its TLB without the fill times.
fn cpu_key(c: &Cpu) -> u64 {
    let Cpu {
        irqs_off,
        rcu_nesting,
        qs,
        ipi_from,
        ipi_waiting,
        ipi_flush,
        ipi_flush_leaf_only,
        tlb,
    } = c;
    let mut h = StateHasher::default();
    (irqs_off, rcu_nesting, qs, ipi_from, ipi_waiting, ipi_flush, ipi_flush_leaf_only).hash(&mut h);
    tlb.hash_without_times(&mut h);
    h.finish()
}

/// The key of `eng`'s state and of the checker's reports so far (kind, object and function,
/// in an order-independent sum): schedules that only commute independent steps get the same
/// key, and a path that already filed a report is told apart from one that did not (which
/// reports a path filed decides what the rest of it can still report).
pub fn state_key(eng: &Engine) -> u64 {
    let mut h = StateHasher::default();
    hash_state(&eng.state, &mut h);
    let mut reports = 0u64;
    for r in &eng.check.reports {
        let mut rh = StateHasher::default();
        (r.kind, r.object, r.at.func.as_str()).hash(&mut rh);
        reports = reports.wrapping_add(rh.finish());
    }
    (eng.check.reports.len(), reports).hash(&mut h);
    h.finish()
}

/// The visited table's hasher: its keys are fingerprints already, so it passes them on.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &State) -> u64 {
        let mut h = StateHasher::default();
        hash_state(s, &mut h);
        h.finish()
    }

    fn seed_race(profile: &str) -> crate::env::Env {
        let req = crate::run::Request {
            source: crate::scenario::Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some(profile.into()),
            set: vec![],
        };
        crate::run::prepare(&req).unwrap()
    }

    /// The engine at the start of the concurrent phase.
    fn after_setup(env: &crate::env::Env) -> Engine<'_> {
        let mut e = Engine::new(env, false);
        assert!(e.start_concurrent().is_none());
        e
    }

    #[test]
    fn the_key_keeps_which_tlb_entries_came_before_the_flush_and_drops_provenance_steps() {
        let env = seed_race("v6.1");
        let e = after_setup(&env);
        let mut a = e.state.clone();
        let mut b = e.state.clone();
        a.step = 100;
        b.step = 200;
        a.k.mms[0].flushed_at = 50;
        b.k.mms[0].flushed_at = 70;
        assert_eq!(key(&a), key(&b));
        b.k.cpus[0].tlb.entries[0].valid = true;
        b.k.cpus[0].tlb.entries[0].filled = 60;
        a.k.cpus[0].tlb.entries[0] = b.k.cpus[0].tlb.entries[0];
        a.k.cpus[0].tlb.entries[0].filled = 40;
        // filled before the flush in both: the same state
        assert_eq!(key(&a), key(&b));
        // filled after the flush in one: not the same state
        a.k.cpus[0].tlb.entries[0].filled = 55;
        assert_ne!(key(&a), key(&b));
        // two entries of mm 1 filled in either order, both after its flush: the same state (a
        // key of the order of the times told these apart: v6.3 bound 3 took 133 executions, 89)
        let mut f = e.state.clone();
        let mut g = e.state.clone();
        for (st, t0, t1) in [(&mut f, 80, 90), (&mut g, 90, 80)] {
            st.k.mms[1].flushed_at = 75;
            for (c, t) in [(1, t0), (2, t1)] {
                let x = &mut st.k.cpus[c].tlb.entries[0];
                (x.valid, x.mm, x.filled) = (true, 1, t);
            }
        }
        assert_eq!(key(&f), key(&g));
        // one of them before the flush: not
        g.k.cpus[2].tlb.entries[0].filled = 70;
        assert_ne!(key(&f), key(&g));
        // the steps of every provenance site of a frame are left out, the unlink's included
        // (kept, it split equal states: 63 executions of the seed race at bound 1 became 241)
        let mut c = e.state.clone();
        let mut d = e.state.clone();
        let (pfn, _) = c.k.mem.frames().next().expect("setup allocated tables");
        let site = |step| crate::model::mem::SiteRef {
            step,
            actor: mmsim_traces::Actor::Cpu(1),
            op: 0,
            func: "huge_pmd_unshare",
        };
        c.k.mem.frame_mut(pfn).unwrap().unlinked = Some((1, site(10)));
        d.k.mem.frame_mut(pfn).unwrap().unlinked = Some((1, site(20)));
        for st in [&mut c, &mut d] {
            let f = st.k.mem.frame_mut(pfn).unwrap();
            let s = f.unlinked.unwrap().1;
            (f.allocated, f.queued, f.freed, f.ptlock_freed) = (Some(s), Some(s), Some(s), Some(s));
        }
        d.k.mem.frame_mut(pfn).unwrap().freed.as_mut().unwrap().step = 30;
        assert_ne!(c, d);
        assert_eq!(key(&c), key(&d));
        // but not which mms it left, nor who unlinked it
        d.k.mem.frame_mut(pfn).unwrap().unlinked = Some((2, site(20)));
        assert_ne!(key(&c), key(&d));
        let mut other = site(10);
        other.actor = mmsim_traces::Actor::Cpu(0);
        d.k.mem.frame_mut(pfn).unwrap().unlinked = Some((1, other));
        assert_ne!(key(&c), key(&d));
        // an entry, a page-cache slot and a lock word each change the key
        let mut f = e.state.clone();
        let p = f.k.mem.ptr(pfn, 5, 0);
        f.k.mem.store(p, 0x1234_5067);
        assert_ne!(key(&f), key(&e.state));
        let mut g = e.state.clone();
        g.k.files[0].pages.set(1, Some(0x42_0000));
        assert_ne!(key(&g), key(&e.state));
        let mut l = e.state.clone();
        l.k.mms[1].mmap_lock.readers += 1;
        assert_ne!(key(&l), key(&e.state));
    }

    #[test]
    fn a_copy_into_an_engine_that_ran_elsewhere_is_the_clone() {
        use crate::model::CopyFrom;
        let env = seed_race("v6.1");
        let a = after_setup(&env);
        let mut b = a.clone();
        // b runs the concurrent phase to its end, the last runnable actor first: the munmap
        // removes its VMA and frees tables, the other CPUs fill TLBs and take locks
        loop {
            let r = b.runnable_now();
            let Some(&c) = r.last() else { break };
            b.exec_choice(c);
        }
        assert_ne!(b.state, a.state);
        assert_ne!(state_key(&b), state_key(&a));
        b.copy_from(&a);
        assert!(b.state == a.state, "the copy is the state it copied");
        assert_eq!(state_key(&b), state_key(&a));
        assert_eq!(format!("{:?}", b.check), format!("{:?}", a.check));
        assert_eq!(b.step_count(), a.step_count());
        let mut a = a;
        assert_eq!(b.runnable_now(), a.runnable_now());
    }

    #[test]
    fn a_clone_shares_its_tables_until_one_of_them_writes() {
        let env = seed_race("v6.3");
        let e = after_setup(&env);
        let before = key(&e.state);
        let mut c = e.state.clone();
        let (pfn, _) = c.k.mem.frames().last().expect("tables");
        let p = c.k.mem.ptr(pfn, 3, 0);
        c.k.mem.store(p, 0x77);
        assert_eq!(e.state.k.mem.load(p), 0, "the original is not written through the clone");
        assert_eq!(key(&e.state), before);
        assert_ne!(key(&c), before);
    }
}
