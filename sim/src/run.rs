//! One run, end to end: resolve a scenario against an arch configuration and a profile, run it
//! under a strategy, and turn the outcome into a [`Trace`]; or re-run a trace's decisions and
//! check every event matches (replay).

use crate::engine::strategy::{
    Diverged, FirstRunnable, Liveness, RandomPriorities, Replay, Strategy, SwarmConfig,
};
use crate::engine::{AfterSetup, Engine, Outcome};
use crate::env::Env;
use crate::profile::{self, SetError};
use crate::scenario::{ScenarioError, Source};
use mmsim_arch::{ArchConfig, NoShare};
use mmsim_traces::{CpuInfo, Header, Trace, SCHEMA_VERSION};

/// What to run.
#[derive(Clone, Debug)]
pub struct Request {
    pub source: Source,
    /// Overrides the scenario's arch / profile when set.
    pub arch: Option<String>,
    pub profile: Option<String>,
    /// `name=value` switch overrides applied after the scenario's own.
    pub set: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("unknown architecture configuration `{0}` (see `mmsim arch list`)")]
    UnknownArch(String),
    #[error("unknown kernel profile `{0}` (see `mmsim profiles`)")]
    UnknownProfile(String),
    #[error("{origin}: {err}")]
    Set { origin: String, err: SetError },
    #[error("{scenario} shares PMD tables, which {arch} cannot do: {why}")]
    CannotShare { scenario: String, arch: String, why: NoShare },
    #[error("--set tlb_flush: {0}")]
    TlbFlush(String),
    #[error("replay diverged at {0}")]
    Diverged(#[from] Diverged),
    /// The trace's strategy name does not parse back into its configuration.
    #[error("{0}")]
    Strategy(String),
}

/// Build the run environment for a request.
pub fn prepare(req: &Request) -> Result<Env, RunError> {
    let sc = req.source.parse()?;
    // a name the scenario gave that is unknown is an invalid value of its field
    let in_scenario = |field: &str, e: RunError| {
        let given = if field == "arch" { &req.arch } else { &req.profile };
        if given.is_some() {
            return e;
        }
        let (origin, field) = (req.source.origin.clone(), field.into());
        RunError::Scenario(ScenarioError::Invalid { origin, field, msg: e.to_string() })
    };
    let arch_name = req.arch.clone().or(sc.arch.clone()).unwrap_or_else(|| "x86_64".into());
    let cfg = ArchConfig::by_name(&arch_name)
        .ok_or_else(|| in_scenario("arch", RunError::UnknownArch(arch_name.clone())))?;
    let profile_name =
        req.profile.clone().or(sc.profile.clone()).unwrap_or_else(|| "latest".into());
    let prof = profile::by_name(&profile_name)
        .ok_or_else(|| in_scenario("profile", RunError::UnknownProfile(profile_name.clone())))?;
    let mut sw = prof.switches;
    for (i, s) in sc.set.iter().enumerate() {
        sw.set(s).map_err(|err| RunError::Set {
            origin: format!("{}: set[{i}]", req.source.origin),
            err,
        })?;
    }
    for s in &req.set {
        sw.set(s).map_err(|err| RunError::Set { origin: "--set".into(), err })?;
    }
    let scenario = sc.resolve(&req.source.origin, cfg.format)?;
    let shares = scenario
        .setup
        .iter()
        .filter(|(_, op)| matches!(op, crate::scenario::Op::MapFile { shared: true, .. }))
        .count()
        > 1;
    if shares {
        if let Err(why) = cfg.format.pmd_sharing() {
            return Err(RunError::CannotShare {
                scenario: scenario.name.clone(),
                arch: cfg.name.into(),
                why,
            });
        }
    }
    let serial_cpu = scenario.cpus.len() as u8;
    let tlb_flush = Env::tlb_flush_for(cfg, &sw).map_err(RunError::TlbFlush)?;
    // the trace header lists the mechanism used, not `arch`
    sw.tlb_flush = Some(tlb_flush);
    Ok(Env {
        tlb_flush,
        arch: cfg.format,
        cfg,
        profile: prof.name,
        sw,
        table_free: Env::table_free_for(cfg, &sw),
        scenario,
        serial_cpu,
        mutants: Default::default(),
    })
}

/// Run once with `strategy`; `tracing` keeps every event.
pub fn execute(env: &Env, strategy: &mut dyn Strategy, tracing: bool) -> Result<Outcome, Diverged> {
    Engine::new(env, tracing).run(strategy)
}

/// Bug depth of the default random strategy: two change points.
pub const DEFAULT_DEPTH: u32 = 3;

/// A request resolved once, ready to run many seeds.
pub struct Prepared {
    pub req: Request,
    pub env: Env,
    /// Steps each CPU takes when run alone in order (calibrates change points).
    pub lengths: Vec<u32>,
    /// Steps of the concurrent phase in that calibration run: PCT's k.
    pub steps_estimate: u64,
    /// Actors that can be scheduled: the CPUs, plus the interrupt and RCU actors the
    /// calibration run scheduled (PCT's n).
    pub actors: u32,
    /// What setup leaves in `env`: every untraced run starts there instead of running setup
    /// again (`None` if setup alone ends the run).
    after_setup: Option<AfterSetup>,
}

impl Prepared {
    pub fn new(req: &Request) -> Result<Prepared, RunError> {
        let env = prepare(req)?;
        let c = calibration(&env)?;
        Ok(Prepared {
            req: req.clone(),
            lengths: c.lengths,
            steps_estimate: c.steps,
            actors: c.actors,
            after_setup: Engine::after_setup(&env),
            env,
        })
    }

    /// Run once with `strategy` in `env` (this scenario's environment, or one `strategy`
    /// configured from it); `tracing` keeps every event. An untraced run in this scenario's
    /// own environment starts where setup left off ([`Engine::from_setup`]).
    pub fn execute(
        &self,
        env: &Env,
        strategy: &mut dyn Strategy,
        tracing: bool,
    ) -> Result<Outcome, Diverged> {
        self.engine(env, tracing).run(strategy)
    }

    /// The engine [`Prepared::execute`] runs: from the setup snapshot when `env` is this
    /// scenario's own environment (the same object, not an equal copy) and nothing is traced.
    pub fn engine<'e>(&'e self, env: &'e Env, tracing: bool) -> Engine<'e> {
        match &self.after_setup {
            Some(after) if !tracing && std::ptr::eq(env, &self.env) => {
                Engine::from_setup(env, after)
            }
            _ => Engine::new(env, tracing),
        }
    }

    /// Run one seed under `strategy` (built for that seed); `tracing` keeps every event.
    pub fn run_with(
        &self,
        seed: u64,
        strategy: &mut dyn Strategy,
        tracing: bool,
    ) -> Result<Trace, RunError> {
        let configured = strategy.configure(&self.env);
        let env = configured.as_ref().unwrap_or(&self.env);
        let out = self.execute(env, strategy, tracing)?;
        Ok(trace_of(&self.req, env, &strategy.name(), seed, out))
    }

    /// Run one seed of the default random strategy; `tracing` keeps every event.
    pub fn run_seed(&self, seed: u64, tracing: bool) -> Result<(Trace, Outcome), RunError> {
        let mut strat = RandomPriorities::new(seed, &self.lengths, DEFAULT_DEPTH);
        let out = self.execute(&self.env, &mut strat, tracing)?;
        let summary = Outcome {
            verdict: out.verdict,
            check: Default::default(),
            decisions: Vec::new(),
            steps: out.steps,
        };
        Ok((trace_of(&self.req, &self.env, &strat.name(), seed, out), summary))
    }
}

/// Steps per CPU when every CPU runs its operations alone, CPU 0 first.
pub fn calibrate(env: &Env) -> Result<Vec<u32>, RunError> {
    Ok(calibration(env)?.lengths)
}

/// What one run with every CPU alone in order (CPU 0 first) measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// Steps per CPU.
    pub lengths: Vec<u32>,
    /// Steps of the concurrent phase, interrupts and RCU included.
    pub steps: u64,
    /// The CPUs plus the distinct interrupt and RCU actors scheduled.
    pub actors: u32,
}

pub fn calibration(env: &Env) -> Result<Calibration, RunError> {
    let out = execute(env, &mut FirstRunnable, false)?;
    let mut lengths = vec![0u32; env.ncpus()];
    let mut others: Vec<mmsim_traces::Actor> = Vec::new();
    for d in &out.decisions {
        match d.actor {
            mmsim_traces::Actor::Cpu(c) => lengths[c as usize] += 1,
            a if !others.contains(&a) => others.push(a),
            _ => {}
        }
    }
    Ok(Calibration {
        lengths,
        steps: out.decisions.len() as u64,
        actors: (env.ncpus() + others.len()) as u32,
    })
}

/// Run one seed of the default random strategy and build its trace.
pub fn run_seed(req: &Request, seed: u64) -> Result<Trace, RunError> {
    Ok(Prepared::new(req)?.run_seed(seed, true)?.0)
}

/// Assemble a trace from an outcome.
pub fn trace_of(req: &Request, env: &Env, strategy: &str, seed: u64, out: Outcome) -> Trace {
    let cpus = env
        .scenario
        .cpus
        .iter()
        .enumerate()
        .map(|(i, (mm, ops))| CpuInfo {
            name: format!("CPU{i}"),
            mm: env.mm_name(*mm).to_string(),
            ops: ops.iter().map(|o| o.to_string()).collect(),
        })
        .collect();
    Trace {
        header: Header {
            mmsim_version: env!("CARGO_PKG_VERSION").to_string(),
            schema_version: SCHEMA_VERSION,
            scenario: env.scenario.name.clone(),
            scenario_source: req.source.text.clone(),
            arch: env.cfg.name.to_string(),
            profile: env.profile.to_string(),
            switches: env.sw.list(),
            strategy: strategy.to_string(),
            seed,
            cpus,
        },
        decisions: out.decisions,
        events: out.check.events,
        verdict: out.verdict,
        reports: out.check.reports,
    }
}

/// The request a trace was recorded from: its embedded scenario, arch, profile and switches.
/// A switch the header does not list did not exist when the trace was written: it gets its
/// value of before it existed (the oldest profile's), so old traces replay as recorded.
pub fn request_of(trace: &Trace, origin: &str) -> Request {
    let listed = |name: &str| trace.header.switches.iter().any(|(n, _)| n == name);
    let oldest = profile::profiles()[0].switches.list();
    let missing = oldest.into_iter().filter(|(n, _)| !listed(n));
    Request {
        source: Source {
            origin: format!("{origin} (embedded scenario)"),
            text: trace.header.scenario_source.clone(),
        },
        arch: Some(trace.header.arch.clone()),
        profile: Some(trace.header.profile.clone()),
        set: missing
            .chain(trace.header.switches.iter().cloned())
            .map(|(n, v)| format!("{n}={v}"))
            .collect(),
    }
}

/// What a replay found.
#[derive(Debug)]
pub enum ReplayResult {
    /// Every decision and event reproduced.
    Identical(Box<Trace>),
    /// The replayed run differs; the message names the first divergent step and both sides.
    Diverged(String),
}

/// Re-execute a trace's decisions and compare every event and the verdict.
pub fn replay(trace: &Trace, origin: &str) -> Result<ReplayResult, RunError> {
    let req = request_of(trace, origin);
    let mut env = prepare(&req)?;
    // a swarm run dropped operations: re-apply its mask (its switch is in the header already)
    if let Some(cfg) = SwarmConfig::parse(&trace.header.strategy) {
        env = cfg.and_then(|c| c.apply(&env)).map_err(RunError::Strategy)?;
    }
    let live = Liveness::parse(&trace.header.strategy).transpose().map_err(RunError::Strategy)?;
    let mut strat = Replay::new(&trace.decisions).with_liveness(live);
    let out = match execute(&env, &mut strat, true) {
        Ok(o) => o,
        Err(d) => return Ok(ReplayResult::Diverged(format!("decisions no longer apply: {d}"))),
    };
    let consumed = strat.consumed();
    let again = trace_of(&req, &env, &trace.header.strategy, trace.header.seed, out);
    // a schema-3 recording has no entry values: compared without them
    let schema = trace.header.schema_version;
    if let Some(d) = mmsim_traces::first_divergence_as_of(schema, &trace.events, &again.events) {
        return Ok(ReplayResult::Diverged(d.to_string()));
    }
    if consumed != trace.decisions.len() {
        return Ok(ReplayResult::Diverged(format!(
            "the run finished after {consumed} of {} recorded decisions",
            trace.decisions.len()
        )));
    }
    if again.verdict != trace.verdict || again.reports != trace.reports {
        let kinds = |t: &Trace| {
            let k: Vec<String> =
                t.reports.iter().map(|r| format!("{}@{}", r.kind, r.at.func)).collect();
            if k.is_empty() {
                "none".to_string()
            } else {
                k.join(", ")
            }
        };
        let why = if schema < 5 {
            format!(
                " (the trace is schema {schema}; from schema 5 on (this mmsim writes {SCHEMA_VERSION}) a walk through an unshared table is judged by what it obtained: a stale walk is a warning, wrong mm a bug; re-record it with this mmsim)"
            )
        } else {
            String::new()
        };
        return Ok(ReplayResult::Diverged(format!(
            "every event matches but the reports differ: recorded {:?} with [{}], replayed {:?} with [{}]{why}",
            trace.verdict,
            kinds(trace),
            again.verdict,
            kinds(&again)
        )));
    }
    Ok(ReplayResult::Identical(Box::new(again)))
}
