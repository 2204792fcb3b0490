//! `random`: random priorities with per-CPU change points, the default strategy.

use super::{slot, Choice, Diverged, Strategy, MAX_CHANGE_POINTS, SLOTS};
use crate::engine::rng::Rng;
use crate::model::cpu::MAX_CPUS;
use mmsim_traces::Actor;

/// Random priorities with per-CPU change points (PCT-style, Burckhardt et al. 2010, with
/// change points drawn per CPU rather than over the global step count).
///
/// Each seed draws a random priority order of all actors and `depth - 1` change points, each
/// a (CPU, step-of-that-CPU) pair drawn uniformly over the CPU's length measured by a
/// calibration run. The highest-priority runnable actor always runs; when a CPU reaches a
/// change point its priority drops below everyone's. One CPU stalling at one exact point while
/// the others run to completion, the shape of most page-table races, then has probability
/// about 1/(actors x steps of that CPU) per seed, independent of how long the others run.
pub struct RandomPriorities {
    /// Priority per actor slot: higher runs first.
    prio: [u32; SLOTS],
    /// Change points: (CPU, its step index); `u32::MAX` marks an unused one.
    change: [(u8, u32); MAX_CHANGE_POINTS],
    /// Steps taken per CPU.
    taken: [u32; MAX_CPUS],
    next_low: u32,
    depth: u32,
}

impl RandomPriorities {
    /// `lengths[c]`: steps CPU c takes in a calibration run (see `engine::calibrate`);
    /// `depth`: bug depth d, giving d - 1 change points.
    pub fn new(seed: u64, lengths: &[u32], depth: u32) -> Self {
        let mut rng = Rng::new(seed);
        // a random permutation of priorities SLOTS..2*SLOTS (Fisher-Yates, our own sampling)
        let mut prio = [0u32; SLOTS];
        for (i, p) in prio.iter_mut().enumerate() {
            *p = (SLOTS + i) as u32;
        }
        rng.shuffle(&mut prio);
        let mut change = [(0u8, u32::MAX); MAX_CHANGE_POINTS];
        let points = (depth.saturating_sub(1) as usize).min(MAX_CHANGE_POINTS);
        let total: u32 = lengths.iter().sum();
        for cp in change.iter_mut().take(points) {
            if total == 0 {
                break;
            }
            // a uniformly random step of a uniformly random CPU that has steps
            let busy: Vec<usize> = (0..lengths.len()).filter(|&c| lengths[c] > 0).collect();
            let c = busy[rng.below(busy.len() as u32) as usize];
            *cp = (c as u8, rng.below(lengths[c]));
        }
        RandomPriorities { prio, change, taken: [0; MAX_CPUS], next_low: SLOTS as u32 - 1, depth }
    }
}

impl Strategy for RandomPriorities {
    /// `choose` with one CPU: its step count moves on, and each change point of it passed on
    /// the way lowers its priority (in order, as the calls would).
    fn choose_alone(&mut self, _step: u64, c: Choice, n: u64) {
        let Actor::Cpu(cpu) = c.actor else { return };
        let from = self.taken[cpu as usize];
        let to = from.saturating_add(n.min(u64::from(u32::MAX)) as u32);
        let mut points: [u32; MAX_CHANGE_POINTS] = [u32::MAX; MAX_CHANGE_POINTS];
        for (p, &(cc, at)) in points.iter_mut().zip(&self.change) {
            if cc == cpu && (from..to).contains(&at) {
                *p = at;
            }
        }
        points.sort_unstable();
        let mut last = None;
        for &at in points.iter().filter(|&&at| at != u32::MAX) {
            // `choose` lowers it once per step, however many points share the step
            if last != Some(at) {
                self.prio[cpu as usize] = self.next_low;
                self.next_low = self.next_low.saturating_sub(1);
                last = Some(at);
            }
        }
        self.taken[cpu as usize] = to;
    }

    /// A CPU above every other runs until its next change point, which it still takes.
    fn keeps_choosing(&self, actor: Actor, others: &[Actor]) -> u64 {
        let Actor::Cpu(cpu) = actor else { return 0 };
        let mine = self.prio[slot(actor)];
        if others.iter().any(|&o| self.prio[slot(o)] >= mine) {
            return 0;
        }
        let n = self.taken[cpu as usize];
        let next =
            self.change.iter().filter(|&&(c, at)| c == cpu && at >= n).map(|&(_, at)| at).min();
        next.map_or(u64::MAX, |at| u64::from(at - n) + 1)
    }

    fn name(&self) -> String {
        format!("random(depth={})", self.depth)
    }
    fn choose(&mut self, _step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        let (i, c) = runnable
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| self.prio[slot(c.actor)])
            .expect("runnable is never empty");
        if let Actor::Cpu(cpu) = c.actor {
            let n = self.taken[cpu as usize];
            if self.change.iter().any(|&(cc, at)| cc == cpu && at == n) {
                self.prio[cpu as usize] = self.next_low;
                self.next_low = self.next_low.saturating_sub(1);
            }
            self.taken[cpu as usize] = n + 1;
        }
        Ok(i)
    }
}
