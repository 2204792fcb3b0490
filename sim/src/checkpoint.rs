//! Crash safety of a seeded exploration (`explore --checkpoint-every N`, `--resume DIR`).
//!
//! Results fold into the [`Summary`] in ascending seed order, so a prefix of the seed range
//! and the summary of that prefix are all a resumed run needs: it folds the rest of the range
//! into that summary and ends with exactly the summary of an uninterrupted run (the same JSON
//! bytes). The checkpoint is `checkpoint.json` in the `--out` directory, replaced atomically
//! ([`mmsim_traces::write_atomic_bytes`]): a reader (or a resume after SIGKILL) sees the old
//! checkpoint or the new one, never a torn file. Nothing in it depends on the wall clock.
//!
//! A resume is refused, naming the field, when its configuration differs from the
//! checkpoint's (scenario and its text, arch, profile, switches, strategy, depth, seed range,
//! shard, `--min-severity`, `--stop-on-first`, coverage, the determinism check) or when the
//! checkpoint was written by another mmsim version.

use crate::explore::{Config, Summary};
use crate::run::Prepared;
use mmsim_traces::TraceError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checkpoint's file name inside the `--out` directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// Version of the checkpoint layout; a checkpoint of another is refused.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// What a resumed exploration starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`] of the writer.
    pub format: u32,
    /// The writer's mmsim version: a checkpoint is resumed only by the same version (another
    /// model could give the remaining seeds other results).
    pub mmsim_version: String,
    /// FNV-1a fingerprint of the scenario text (hex): an edited scenario file is refused.
    pub scenario_text: String,
    /// Whether failing and sampled seeds are re-run (`--no-determinism-check` turns it off).
    pub determinism_check: bool,
    /// The interval it was written at (a resume keeps it unless given another; it does not
    /// change the result).
    pub checkpoint_every: u64,
    /// How many seeds of the (sharded) range are done: always a prefix of it.
    pub seeds_done: u64,
    /// The first seed not done (none: the range is done).
    pub next_seed: Option<u64>,
    /// The summary of the seeds done, before the final touches (cut note, traces).
    pub summary: Summary,
}

/// Why a checkpoint could not be written, read or resumed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] TraceError),
    #[error("{}: not an mmsim explore checkpoint: {msg}", path.display())]
    Parse { path: PathBuf, msg: String },
    #[error("{}: checkpoint format {found}, this mmsim reads format {CHECKPOINT_FORMAT}", path.display())]
    Format { path: PathBuf, found: u32 },
    #[error(
        "{}: cannot resume: the checkpoint's {field} is {checkpoint}, this command's is {given}",
        path.display()
    )]
    Mismatch { path: PathBuf, field: &'static str, checkpoint: String, given: String },
    #[error("{}: inconsistent checkpoint: {msg}", path.display())]
    Inconsistent { path: PathBuf, msg: String },
}

/// Fingerprint of a scenario's text, as a checkpoint stores it.
pub fn scenario_fingerprint(p: &Prepared) -> String {
    format!("{:016x}", crate::engine::hash::fingerprint(p.req.source.text.as_str()))
}

impl Checkpoint {
    /// The checkpoint of `sum`, the fold of the first `seeds_done` seeds of `cfg`'s range.
    pub fn new(p: &Prepared, cfg: &Config, sum: &Summary, seeds_done: u64, every: u64) -> Self {
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            mmsim_version: env!("CARGO_PKG_VERSION").into(),
            scenario_text: scenario_fingerprint(p),
            determinism_check: cfg.check_determinism,
            checkpoint_every: every,
            seeds_done,
            next_seed: cfg.seeds().nth(seeds_done as usize),
            summary: sum.clone(),
        }
    }

    /// `dir/checkpoint.json`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CHECKPOINT_FILE)
    }

    /// Replace `dir/checkpoint.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), CheckpointError> {
        let mut j = serde_json::to_string_pretty(self).expect("a checkpoint serialises");
        j.push('\n');
        Ok(mmsim_traces::write_atomic_bytes(&Self::path(dir), j.as_bytes())?)
    }

    /// Read `dir/checkpoint.json` (the format checked first).
    pub fn read(dir: &Path) -> Result<Checkpoint, CheckpointError> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| CheckpointError::Io { path: path.clone(), source })?;
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let parse = |msg: serde_json::Error| CheckpointError::Parse {
            path: path.clone(),
            msg: msg.to_string(),
        };
        let probe: Probe = serde_json::from_str(&text).map_err(parse)?;
        if probe.format != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Format { path, found: probe.format });
        }
        serde_json::from_str(&text).map_err(parse)
    }

    /// Whether this checkpoint can be resumed by `cfg` over `p`: every field that decides a
    /// seed's result, or what the summary counts, must be the same. `dir` names the file.
    pub fn check(&self, p: &Prepared, cfg: &Config, dir: &Path) -> Result<(), CheckpointError> {
        let path = Self::path(dir);
        let fresh = Summary::new(p, cfg);
        let c = &self.summary;
        let shard = |s: &Summary| {
            let list: Vec<String> = s.shards.iter().map(|i| i.to_string()).collect();
            format!("{}/{}", list.join(","), s.shard_count)
        };
        let fields: [(&'static str, String, String); 15] = [
            ("mmsim version", self.mmsim_version.clone(), env!("CARGO_PKG_VERSION").into()),
            ("scenario", c.scenario.clone(), fresh.scenario.clone()),
            ("scenario text (fingerprint)", self.scenario_text.clone(), scenario_fingerprint(p)),
            ("arch", c.arch.clone(), fresh.arch.clone()),
            ("profile", c.profile.clone(), fresh.profile.clone()),
            ("switches", format!("{:?}", c.switches), format!("{:?}", fresh.switches)),
            ("strategy", c.strategy.cli_name().into(), fresh.strategy.cli_name().into()),
            ("depth", c.depth.to_string(), fresh.depth.to_string()),
            ("strategy configuration", c.strategy_name.clone(), fresh.strategy_name.clone()),
            (
                "seed range",
                format!("{}..{}", c.seed_start, c.seed_start.saturating_add(c.seed_count)),
                format!(
                    "{}..{}",
                    fresh.seed_start,
                    fresh.seed_start.saturating_add(fresh.seed_count)
                ),
            ),
            ("shard", shard(c), shard(&fresh)),
            ("min_severity", c.min_severity.to_string(), fresh.min_severity.to_string()),
            ("stop_on_first", c.stop_on_first.to_string(), fresh.stop_on_first.to_string()),
            ("coverage", c.coverage.to_string(), fresh.coverage.to_string()),
            (
                "determinism check",
                self.determinism_check.to_string(),
                cfg.check_determinism.to_string(),
            ),
        ];
        if let Some((field, checkpoint, given)) = fields.into_iter().find(|(_, a, b)| a != b) {
            return Err(CheckpointError::Mismatch { path, field, checkpoint, given });
        }
        let total = cfg.seeds().count() as u64;
        let msg = if self.seeds_done > total {
            format!("{} seeds done, but the range has only {total}", self.seeds_done)
        } else if self.summary.runs != self.seeds_done {
            format!(
                "{} seeds done, but its summary counts {} runs",
                self.seeds_done, self.summary.runs
            )
        } else {
            return Ok(());
        };
        Err(CheckpointError::Inconsistent { path, msg })
    }
}
