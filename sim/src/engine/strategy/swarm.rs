//! `swarm`: swarm testing (Groce, Zhang, Eide, Chen, Regehr, ISSTA 2012). Each seed first
//! draws a configuration, then schedules under it: which of the scenario's operations run
//! (hence how many CPUs take part), the one profile switch that does not change the kernel
//! being modelled, and per-actor scheduling weights that act as delays.
//!
//! - **Operations**: each operation of each CPU is kept with probability 3/4; a draw that
//!   leaves fewer than two CPUs with work (or fewer CPUs than the scenario has, if it has one)
//!   is drawn again, up to [`REDRAWS`] times, then every operation is kept. A CPU whose
//!   operations are all dropped stays idle: it still takes the IPIs of the mm it belongs to
//!   (like a CPU in lazy-TLB mode), so CPU numbering and every mm's cpumask are unchanged.
//! - **Switches**: only `quarantine` (KASAN-style poisoning of freed tables instead of reuse)
//!   is drawn, with probability 1/2. It changes how a use-after-free is observed, not which
//!   kernel runs. Every other switch is a locking rule of a kernel release (`mmsim profiles`):
//!   varying it would change the profile's meaning, so swarm never does.
//! - **Delays**: every actor (CPUs, their interrupt contexts, RCU) gets a random priority
//!   rank (the highest-ranked runnable actor runs), and each CPU, with probability 1/2, a stall
//!   point: a step of its own, uniform over its calibrated length, at which it drops below
//!   every other actor (preempted there, or delayed by an interrupt, until the others finish
//!   or block). A CPU without a stall point and a high rank runs to completion first; a CPU
//!   stalled inside its critical window is the slow CPU a race needs.
//!
//! The configuration is the strategy's name, so it lands in every trace header and summary;
//! [`SwarmConfig::parse`] reads it back and `mmsim replay` re-applies the operation mask and
//! the switch (replay follows the recorded decisions, so the weights need no re-applying).

use super::{slot, Choice, Diverged, Strategy, SLOTS};
use crate::engine::rng::Rng;
use crate::env::Env;
use crate::model::cpu::MAX_CPUS;
use mmsim_traces::Actor;

/// How often an operation mask is redrawn before every operation is kept.
pub const REDRAWS: u32 = 16;

/// One seed's drawn configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmConfig {
    /// Per CPU, per operation of the scenario: whether it runs.
    pub ops: Vec<Vec<bool>>,
    /// Priority ranks (higher runs first) of the CPUs, of the interrupt contexts of the CPUs
    /// and the serial CPU, and of RCU: a permutation of 0..2n+2.
    pub cpu_prio: Vec<u32>,
    pub irq_prio: Vec<u32>,
    pub rcu_prio: u32,
    /// Per CPU: the step of its own at which it drops below everyone, if any.
    pub stall: Vec<Option<u32>>,
    pub quarantine: bool,
}

impl SwarmConfig {
    /// Draw a configuration for a scenario whose CPUs have `op_counts` operations each and
    /// take `lengths` steps when run alone (the calibration run).
    pub fn draw(rng: &mut Rng, op_counts: &[usize], lengths: &[u32]) -> SwarmConfig {
        let busy = op_counts.iter().filter(|&&n| n > 0).count();
        let need = busy.min(2);
        let mut ops = full_mask(op_counts);
        for _ in 0..REDRAWS {
            let mask: Vec<Vec<bool>> =
                op_counts.iter().map(|&n| (0..n).map(|_| rng.below(4) != 0).collect()).collect();
            if mask.iter().filter(|m| m.iter().any(|&on| on)).count() >= need {
                ops = mask;
                break;
            }
        }
        let n = op_counts.len();
        // a random order of the 2n + 2 actors (Fisher-Yates); priorities above any yield
        let mut prio: Vec<u32> = (0..2 * n as u32 + 2).collect();
        rng.shuffle(&mut prio);
        let rcu_prio = prio.pop().expect("2n + 2 > 0");
        let irq_prio = prio.split_off(n);
        let stall = (0..n)
            .map(|c| {
                let len = lengths.get(c).copied().unwrap_or(0);
                (rng.below(2) == 1 && len > 0).then(|| rng.below(len))
            })
            .collect();
        let quarantine = rng.below(2) == 1;
        SwarmConfig { ops, cpu_prio: prio, irq_prio, rcu_prio, stall, quarantine }
    }

    /// `swarm(ops=1/01/1, prio=4,1,6/5,3,0,2/7, stall=12,-,-, quarantine=false)`: per CPU a
    /// 0/1 per operation; CPU / interrupt / RCU priority ranks; per-CPU stall steps.
    pub fn name(&self) -> String {
        let join = |w: &[u32]| w.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|m| m.iter().map(|&on| if on { '1' } else { '0' }).collect())
            .collect();
        format!(
            "swarm(ops={}, prio={}/{}/{}, stall={}, quarantine={})",
            ops.join("/"),
            join(&self.cpu_prio),
            join(&self.irq_prio),
            self.rcu_prio,
            self.stall
                .iter()
                .map(|s| s.map_or("-".into(), |x| x.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            self.quarantine
        )
    }

    /// Read a configuration back from a strategy name written by [`SwarmConfig::name`];
    /// `None` if the name is not a swarm strategy's.
    pub fn parse(name: &str) -> Option<Result<SwarmConfig, String>> {
        let body = name.strip_prefix("swarm(")?;
        let body = body.split_once(')').map_or(body, |(b, _)| b);
        Some(parse_body(body).map_err(|e| format!("strategy `{name}`: {e}")))
    }

    /// The environment this configuration runs in: `base` with the dropped operations
    /// removed and `quarantine` set. Fails if the mask does not fit the scenario.
    pub fn apply(&self, base: &Env) -> Result<Env, String> {
        let cpus = &base.scenario.cpus;
        if self.ops.len() != cpus.len()
            || self.ops.iter().zip(cpus).any(|(m, (_, ops))| m.len() != ops.len())
        {
            return Err(format!(
                "the swarm operation mask ({}) does not fit the scenario's CPUs ({})",
                self.ops.iter().map(|m| m.len().to_string()).collect::<Vec<_>>().join("/"),
                cpus.iter().map(|(_, o)| o.len().to_string()).collect::<Vec<_>>().join("/"),
            ));
        }
        let mut env = base.clone();
        for ((_, ops), mask) in env.scenario.cpus.iter_mut().zip(&self.ops) {
            let mut keep = mask.iter();
            ops.retain(|_| *keep.next().expect("lengths checked"));
        }
        env.sw.quarantine = self.quarantine;
        Ok(env)
    }

    /// Priority per actor slot (unused slots lowest).
    fn slot_prio(&self) -> [u32; SLOTS] {
        let mut w = [0u32; SLOTS];
        for (c, &x) in self.cpu_prio.iter().enumerate().take(MAX_CPUS) {
            w[c] = PRIO_BASE + x;
        }
        for (c, &x) in self.irq_prio.iter().enumerate().take(MAX_CPUS) {
            w[MAX_CPUS + c] = PRIO_BASE + x;
        }
        w[2 * MAX_CPUS] = PRIO_BASE + self.rcu_prio;
        w
    }
}

fn full_mask(op_counts: &[usize]) -> Vec<Vec<bool>> {
    op_counts.iter().map(|&n| vec![true; n]).collect()
}

fn parse_body(body: &str) -> Result<SwarmConfig, String> {
    let mut ops = None;
    let mut prio = None;
    let mut stall = None;
    let mut quarantine = None;
    let list = |v: &str, s: &str| -> Result<Vec<u32>, String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().map_err(|_| format!("`{v}`: `{x}` is not a number")))
            .collect()
    };
    for field in body.split(", ") {
        let (k, v) = field.split_once('=').ok_or_else(|| format!("`{field}`: expected k=v"))?;
        match k {
            "ops" => {
                let mask = v
                    .split('/')
                    .map(|m| {
                        m.chars()
                            .map(|c| match c {
                                '1' => Ok(true),
                                '0' => Ok(false),
                                _ => Err(format!("ops `{v}`: expected 0 and 1 per operation")),
                            })
                            .collect::<Result<Vec<bool>, String>>()
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                ops = Some(mask);
            }
            "prio" => {
                let parts: Vec<&str> = v.split('/').collect();
                let [c, i, r] = parts[..] else {
                    return Err(format!("prio `{v}`: expected CPUS/IRQS/RCU"));
                };
                let rcu = r.parse().map_err(|_| format!("prio `{v}`: `{r}`"))?;
                prio = Some((list(v, c)?, list(v, i)?, rcu));
            }
            "stall" => {
                stall = Some(
                    v.split(',')
                        .filter(|x| !x.is_empty())
                        .map(|x| match x {
                            "-" => Ok(None),
                            _ => x.parse().map(Some).map_err(|_| format!("stall `{v}`: `{x}`")),
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                )
            }
            "quarantine" => {
                quarantine =
                    Some(v.parse::<bool>().map_err(|_| format!("quarantine `{v}`: not a bool"))?)
            }
            _ => return Err(format!("unknown field `{k}`")),
        }
    }
    let (cpu_prio, irq_prio, rcu_prio) = prio.ok_or("no prio")?;
    Ok(SwarmConfig {
        ops: ops.ok_or("no ops")?,
        cpu_prio,
        irq_prio,
        rcu_prio,
        stall: stall.ok_or("no stall")?,
        quarantine: quarantine.ok_or("no quarantine")?,
    })
}

/// Priority ranks start here; a stalling CPU drops below it, one lower each time.
const PRIO_BASE: u32 = SLOTS as u32;

/// The swarm scheduler of one seed: its drawn configuration, priorities and stall points.
pub struct Swarm {
    pub config: SwarmConfig,
    prio: [u32; SLOTS],
    stall: [u32; MAX_CPUS],
    taken: [u32; MAX_CPUS],
    next_low: u32,
}

impl Swarm {
    /// Draw the configuration for `seed` over a scenario with `op_counts` operations per CPU
    /// taking `lengths` steps alone.
    pub fn new(seed: u64, op_counts: &[usize], lengths: &[u32]) -> Swarm {
        let mut rng = Rng::new(seed);
        let config = SwarmConfig::draw(&mut rng, op_counts, lengths);
        let prio = config.slot_prio();
        let mut stall = [u32::MAX; MAX_CPUS];
        for (y, c) in stall.iter_mut().zip(&config.stall) {
            *y = c.unwrap_or(u32::MAX);
        }
        Swarm { config, prio, stall, taken: [0; MAX_CPUS], next_low: PRIO_BASE - 1 }
    }

    /// For the CPUs of `env`, calibrated lengths `lengths` (`run::Prepared::lengths`).
    pub fn for_env(seed: u64, env: &Env, lengths: &[u32]) -> Swarm {
        let counts: Vec<usize> = env.scenario.cpus.iter().map(|(_, o)| o.len()).collect();
        Swarm::new(seed, &counts, lengths)
    }
}

impl Strategy for Swarm {
    /// `choose` with one CPU: its step count moves on, and it stalls once if its stall point
    /// is passed on the way.
    fn choose_alone(&mut self, _step: u64, c: Choice, n: u64) {
        let Actor::Cpu(cpu) = c.actor else { return };
        let cpu = cpu as usize;
        let from = self.taken[cpu];
        let to = from.saturating_add(n.min(u64::from(u32::MAX)) as u32);
        if (from..to).contains(&self.stall[cpu]) {
            self.prio[cpu] = self.next_low;
            self.next_low = self.next_low.saturating_sub(1);
            self.stall[cpu] = u32::MAX;
        }
        self.taken[cpu] = to;
    }

    /// A CPU above every other runs until the decision where it stalls, which may choose
    /// another.
    fn keeps_choosing(&self, actor: Actor, others: &[Actor]) -> u64 {
        let Actor::Cpu(c) = actor else { return 0 };
        let mine = self.prio[slot(actor)];
        if others.iter().any(|&o| self.prio[slot(o)] >= mine) {
            return 0;
        }
        let (taken, stall) = (self.taken[c as usize], self.stall[c as usize]);
        if stall >= taken && stall != u32::MAX {
            u64::from(stall - taken)
        } else {
            u64::MAX
        }
    }

    fn name(&self) -> String {
        self.config.name()
    }

    fn configure(&self, env: &Env) -> Option<Env> {
        Some(self.config.apply(env).expect("drawn for this environment's scenario"))
    }

    fn choose(&mut self, _step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        let highest = |prio: &[u32; SLOTS]| {
            let mut best = 0;
            for (i, c) in runnable.iter().enumerate().skip(1) {
                if prio[slot(c.actor)] > prio[slot(runnable[best].actor)] {
                    best = i;
                }
            }
            best
        };
        let mut i = highest(&self.prio);
        if let Actor::Cpu(c) = runnable[i].actor {
            let c = c as usize;
            if self.taken[c] == self.stall[c] {
                // the CPU about to run is delayed below everyone; pick again
                self.prio[c] = self.next_low;
                self.next_low = self.next_low.saturating_sub(1);
                self.stall[c] = u32::MAX;
                i = highest(&self.prio);
            }
        }
        if let Actor::Cpu(c) = runnable[i].actor {
            self.taken[c as usize] += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_parses_back_to_the_configuration() {
        for seed in 0..200 {
            let s = Swarm::new(seed, &[1, 3, 0, 2], &[10, 30, 0, 5]);
            let back = SwarmConfig::parse(&s.name()).expect("a swarm name").unwrap();
            assert_eq!(back, s.config, "{}", s.name());
        }
        assert!(SwarmConfig::parse("random(depth=3)").is_none());
        assert!(SwarmConfig::parse("swarm(ops=12, weights=1/1/1, quarantine=false)")
            .unwrap()
            .is_err());
    }

    #[test]
    fn at_least_two_cpus_keep_work_and_draws_vary() {
        let mut seen_drop = false;
        let mut seen_stall = false;
        let mut seen_quarantine = [false; 2];
        for seed in 0..300 {
            let c = Swarm::new(seed, &[1, 1, 1], &[9, 9, 9]).config;
            let busy = c.ops.iter().filter(|m| m.iter().any(|&x| x)).count();
            assert!(busy >= 2, "seed {seed}: {}", c.name());
            seen_drop |= busy == 2;
            seen_quarantine[usize::from(c.quarantine)] = true;
            let mut all: Vec<u32> =
                c.cpu_prio.iter().chain(&c.irq_prio).copied().chain([c.rcu_prio]).collect();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 8, "distinct priorities");
            assert!(c.stall.iter().all(|y| y.is_none_or(|y| y < 9)));
            seen_stall |= c.stall.iter().any(Option::is_some);
        }
        assert!(seen_drop && seen_stall && seen_quarantine == [true, true]);
        // a one-CPU scenario keeps its CPU busy
        for seed in 0..50 {
            assert!(Swarm::new(seed, &[2], &[4]).config.ops[0].iter().any(|&x| x));
        }
    }

    #[test]
    fn the_highest_priority_runs_until_its_stall_point() {
        let all: Vec<Choice> =
            (0..2).map(|c| Choice { actor: Actor::Cpu(c), op: 0, op_step: 0 }).collect();
        let mut s = Swarm::new(1, &[1, 1], &[10, 10]);
        s.prio[0] = PRIO_BASE + 10;
        s.prio[1] = PRIO_BASE + 5;
        s.stall = [u32::MAX; MAX_CPUS];
        s.stall[0] = 7;
        let picks: Vec<usize> = (0..20).map(|st| s.choose(st, &all).unwrap()).collect();
        let want: Vec<usize> = (0..20).map(|i| usize::from(i >= 7)).collect();
        assert_eq!(picks, want);
    }
}
