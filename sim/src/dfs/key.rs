//! The visited-state key of the exhaustive search: a 64-bit [`StateHasher`] fingerprint of the
//! engine's state and the checker's history, with step numbers that only say *when* something
//! happened left out (provenance sites keep their actor, op and function; TLB fill and flush
//! times keep only their order, all the stale-TLB check compares), so schedules that commute
//! independent steps meet again.
//!
//! Nothing is cloned or normalised in place: every struct is hashed field by field with its
//! fields named (a new field does not compile until it is placed here), tables and page caches
//! contribute their kept sums ([`crate::model::fingerprint`]), and a key costs what the state's
//! small parts cost.

use crate::engine::{Engine, State};
use crate::model::cpu::Cpu;
use crate::model::fingerprint::{hash_of, StateHasher};
use crate::model::mm::Mm;
use crate::model::rcu::{Rcu, RcuCallback};
use crate::model::Kernel;
use std::hash::{Hash, Hasher};

/// Most time stamps a state holds: one flush time per mm and one fill time per TLB entry.
const MAX_TIMES: usize =
    8 + crate::model::cpu::MAX_CPUS * crate::model::tlb::TLB_ENTRIES + crate::model::cpu::MAX_CPUS;

/// A state's TLB fill and flush times, sorted and without repeats: a time is hashed as its
/// rank here (1-based; 0 for none).
struct Times {
    t: [u64; MAX_TIMES],
    n: usize,
}

impl Times {
    fn of(k: &Kernel) -> Self {
        let mut t = [0u64; MAX_TIMES];
        let mut n = 0;
        let mut push = |x: u64| {
            if n < MAX_TIMES {
                t[n] = x;
                n += 1;
            }
        };
        for m in &k.mms {
            push(m.flushed_at);
        }
        for c in &k.cpus {
            for e in c.tlb.entries.iter().filter(|e| e.valid) {
                push(e.filled);
            }
        }
        let s = &mut t[..n];
        s.sort_unstable();
        let mut w = 0;
        for r in 0..n {
            if r == 0 || s[r] != s[w - 1] {
                s[w] = s[r];
                w += 1;
            }
        }
        Times { t, n: w }
    }

    fn rank(&self, x: u64) -> u64 {
        self.t[..self.n].binary_search(&x).map_or(0, |i| i as u64 + 1)
    }
}

/// Hash `state` with its step numbers left out (see the module doc).
pub fn hash_state<H: Hasher>(state: &State, h: &mut H) {
    let State { k, progs, step: _ } = state;
    let Kernel { mem, mms, files, cpus, rcu, fault_mutex } = k;
    let times = Times::of(k);
    debug_assert!(
        mms.len() + cpus.len() * (crate::model::tlb::TLB_ENTRIES + 1) <= MAX_TIMES,
        "more time stamps than the key ranks"
    );
    mem.hash_without_steps(h);
    mms.len().hash(h);
    for m in mms {
        let Mm {
            pgd,
            mmap_lock,
            page_table_lock,
            vmas,
            nr_pmds,
            cpumask,
            next_vma_id,
            flushed_at,
            mm_lock_seq,
            dup_mmap,
        } = m;
        (pgd, mmap_lock, page_table_lock, vmas, nr_pmds, cpumask, next_vma_id, mm_lock_seq).hash(h);
        dup_mmap.hash(h);
        times.rank(*flushed_at).hash(h);
    }
    files.hash(h);
    cpus.len().hash(h);
    for c in cpus {
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
        (irqs_off, rcu_nesting, qs, ipi_from, ipi_waiting, ipi_flush, ipi_flush_leaf_only).hash(h);
        tlb.hash_with_times(h, |t| times.rank(t));
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
    fn the_key_keeps_the_order_of_tlb_times_and_drops_provenance_steps() {
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
