//! `pct`: Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
//! ASPLOS 2010), as the paper states it.
//!
//! With bug depth d: every actor gets a random distinct initial priority from d, d+1, ...; d - 1
//! change points k_1 < ... < k_{d-1} are drawn uniformly over 1..=k, k being the estimated
//! number of steps of a run. The highest-priority runnable actor runs each step; when the
//! global step count reaches k_i, the actor about to run drops to priority d - i (below every
//! initial priority) and the scheduler picks again. Each run then finds any bug of depth d with
//! probability at least 1/(n k^(d-1)), n actors: [`guarantee`].
//!
//! The difference to [`super::RandomPriorities`] (the default `random`): there the change
//! points are per CPU and over that CPU's own steps, which gives no such bound but finds the
//! one-CPU-stalls shape faster when CPUs differ a lot in length.

use super::{slot, Choice, Diverged, Strategy, MAX_CHANGE_POINTS, SLOTS};
use crate::engine::rng::Rng;
use mmsim_traces::Actor;

pub struct Pct {
    /// Priority per actor slot: higher runs first.
    prio: [u32; SLOTS],
    /// Global step numbers (1-based) of the change points, ascending; `u64::MAX` when unused.
    change: [u64; MAX_CHANGE_POINTS],
    /// Steps chosen so far.
    taken: u64,
    depth: u32,
    steps_estimate: u64,
}

impl Pct {
    /// `steps_estimate`: k, the estimated steps of the concurrent phase (see `run::calibrate`);
    /// `depth`: bug depth d >= 1, at most `MAX_CHANGE_POINTS + 1`.
    pub fn new(seed: u64, steps_estimate: u64, depth: u32) -> Self {
        let depth = depth.clamp(1, MAX_CHANGE_POINTS as u32 + 1);
        let mut rng = Rng::new(seed);
        // initial priorities: a random permutation of depth..depth+SLOTS (Fisher-Yates)
        let mut prio = [0u32; SLOTS];
        for (i, p) in prio.iter_mut().enumerate() {
            *p = depth + i as u32;
        }
        rng.shuffle(&mut prio);
        let k = steps_estimate.clamp(1, u64::from(u32::MAX));
        let points = (depth as usize - 1).min(k as usize);
        let mut change = [u64::MAX; MAX_CHANGE_POINTS];
        let mut drawn = 0;
        while drawn < points {
            // distinct points: redraw a duplicate (points <= k, so this ends)
            let at = 1 + u64::from(rng.below(k as u32));
            if !change[..drawn].contains(&at) {
                change[drawn] = at;
                drawn += 1;
            }
        }
        // the i-th change point in draw order gets priority d - 1 - i; keep that pairing but
        // look points up by step
        Pct { prio, change, taken: 0, depth, steps_estimate }
    }

    fn highest(&self, runnable: &[Choice]) -> usize {
        let mut best = 0;
        for (i, c) in runnable.iter().enumerate().skip(1) {
            if self.prio[slot(c.actor)] > self.prio[slot(runnable[best].actor)] {
                best = i;
            }
        }
        best
    }
}

/// PCT's bound: one run finds a bug of depth `depth` with probability at least 1/(n k^(d-1)),
/// for `actors` = n and `steps` = k.
pub fn guarantee(actors: u32, steps: u64, depth: u32) -> f64 {
    let k = steps.max(1) as f64;
    1.0 / (f64::from(actors.max(1)) * k.powi(depth.saturating_sub(1) as i32))
}

impl Strategy for Pct {
    /// `choose` with one actor: the step count moves on, and each change point passed gives
    /// that actor its priority (in order, as the calls would).
    fn choose_alone(&mut self, _step: u64, c: Choice, n: u64) {
        let (from, to) = (self.taken, self.taken.saturating_add(n));
        let mut order: [usize; MAX_CHANGE_POINTS] = std::array::from_fn(|i| i);
        order.sort_unstable_by_key(|&cp| self.change[cp]);
        for cp in order {
            if self.change[cp] > from && self.change[cp] <= to {
                self.prio[slot(c.actor)] = self.depth - 1 - cp as u32;
            }
        }
        self.taken = to;
    }

    /// The highest-priority actor runs until the decision at the next change point, which
    /// may choose another.
    fn keeps_choosing(&self, actor: Actor, others: &[Actor]) -> u64 {
        let mine = self.prio[slot(actor)];
        if others.iter().any(|&o| self.prio[slot(o)] >= mine) {
            return 0;
        }
        let next = self.change.iter().copied().filter(|&at| at > self.taken).min();
        next.map_or(u64::MAX, |at| at - self.taken - 1)
    }

    fn name(&self) -> String {
        format!("pct(depth={}, k={})", self.depth, self.steps_estimate)
    }

    fn choose(&mut self, _step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        self.taken += 1;
        let mut i = self.highest(runnable);
        if let Some(cp) = self.change.iter().position(|&at| at == self.taken) {
            self.prio[slot(runnable[i].actor)] = self.depth - 1 - cp as u32;
            i = self.highest(runnable);
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmsim_traces::Actor;

    fn cpus(n: u8) -> Vec<Choice> {
        (0..n).map(|c| Choice { actor: Actor::Cpu(c), op: 0, op_step: 0 }).collect()
    }

    #[test]
    fn depth_one_never_switches_away_from_a_runnable_actor() {
        let all = cpus(3);
        for seed in 0..50 {
            let mut s = Pct::new(seed, 100, 1);
            let first = s.choose(0, &all).unwrap();
            for step in 1..100 {
                assert_eq!(s.choose(step, &all).unwrap(), first, "seed {seed}");
            }
        }
    }

    #[test]
    fn each_change_point_preempts_once_and_points_are_distinct() {
        let all = cpus(3);
        for seed in 0..200 {
            let mut s = Pct::new(seed, 20, 3);
            let mut pts: Vec<u64> = s.change.iter().copied().filter(|&a| a != u64::MAX).collect();
            assert_eq!(pts.len(), 2);
            pts.sort();
            pts.dedup();
            assert_eq!(pts.len(), 2, "seed {seed}: distinct");
            assert!(pts.iter().all(|&p| (1..=20).contains(&p)));
            let picks: Vec<usize> = (0..20).map(|st| s.choose(st, &all).unwrap()).collect();
            let switches = picks.windows(2).filter(|w| w[0] != w[1]).count();
            // with everyone always runnable, only a change point makes the scheduler switch
            assert!(switches <= 2, "seed {seed}: {picks:?}");
            assert!(switches >= 1, "seed {seed}: a change point lowers the running actor");
        }
    }

    #[test]
    fn guarantee_is_the_papers_bound() {
        assert_eq!(guarantee(3, 10, 1), 1.0 / 3.0);
        assert!((guarantee(2, 10, 3) - 1.0 / 200.0).abs() < 1e-12);
    }
}
