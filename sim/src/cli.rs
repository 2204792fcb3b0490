//! The `mmsim` command line. Exit status: 0 nothing found, 1 a violation found, 2 bad usage or
//! input. Errors are printed as one clear line naming the file and what was expected.

use crate::run::{self, ReplayResult, Request};
use crate::scenario::{Source, BUILTIN};
use clap::{Parser, Subcommand};
use mmsim_traces::{Trace, Verdict};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "mmsim",
    version,
    about = "Deterministic emulator of Linux kernel memory management races"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a scenario: one seed, or the first violating seed of a range (--seeds).
    Run {
        /// Built-in scenario name (see `mmsim scenarios`) or a path to a .ron file.
        scenario: String,
        /// The seed of the random scheduler.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Try seeds seed..seed+N and stop at the first violation.
        #[arg(long)]
        seeds: Option<u64>,
        #[arg(long)]
        arch: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        /// Override a profile switch: --set name=value (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
        /// Write the trace (RON) here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Re-execute a trace's decisions and check every event reproduces.
    Replay {
        trace: PathBuf,
        /// Print every event as it is replayed.
        #[arg(long)]
        events: bool,
    },
    /// List the built-in scenarios.
    Scenarios,
    /// List the kernel profiles and their switches.
    Profiles,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("mmsim: error: {msg}");
    2
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_tracing();
    match cli.cmd {
        Cmd::Run { scenario, seed, seeds, arch, profile, set, output } => {
            let source = match Source::load(&scenario) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let req = Request { source, arch, profile, set };
            let prepared = match run::Prepared::new(&req) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            // scan quietly, then run the seed to report again with every event recorded
            let count = seeds.unwrap_or(1).max(1);
            let mut chosen = seed;
            for s in seed..seed.saturating_add(count) {
                chosen = s;
                match prepared.run_seed(s, false) {
                    Ok((_, out)) if out.verdict != Verdict::Clean => break,
                    Ok(_) => {}
                    Err(e) => return fail(e),
                }
            }
            let t = match prepared.run_seed(chosen, true) {
                Ok((t, _)) => t,
                Err(e) => return fail(e),
            };
            print_summary(&t, count);
            if let Some(path) = output {
                if let Err(e) = mmsim_traces::write_atomic(&path, &t) {
                    return fail(e);
                }
                println!("trace written to {}", path.display());
            }
            i32::from(t.verdict != Verdict::Clean)
        }
        Cmd::Replay { trace, events } => {
            let t = match mmsim_traces::read(&trace) {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            match run::replay(&t, &trace.display().to_string()) {
                Ok(ReplayResult::Identical(again)) => {
                    if events {
                        for e in &again.events {
                            println!("{}", e.summary());
                        }
                    }
                    println!(
                        "replay of {} identical: {} decisions, {} events, verdict {:?}",
                        trace.display(),
                        t.decisions.len(),
                        t.events.len(),
                        t.verdict
                    );
                    for r in &again.reports {
                        print!("{}", r.text);
                    }
                    i32::from(again.verdict != Verdict::Clean)
                }
                Ok(ReplayResult::Diverged(msg)) => {
                    fail(format!("{}: replay diverged: {msg}", trace.display()))
                }
                Err(e) => fail(format!("{}: {e}", trace.display())),
            }
        }
        Cmd::Scenarios => {
            for (name, text) in BUILTIN {
                let doc = Source { origin: format!("builtin:{name}"), text: text.to_string() }
                    .parse()
                    .map(|s| s.doc)
                    .unwrap_or_default();
                println!("{name:<20} {doc}");
            }
            0
        }
        Cmd::Profiles => {
            for p in crate::profile::profiles() {
                println!("{p}");
                for (n, v) in p.switches.list() {
                    println!("    {n} = {v}");
                }
            }
            0
        }
    }
}

fn print_summary(t: &Trace, seeds: u64) {
    let h = &t.header;
    println!(
        "{} on {} with profile {}, {} seed {}{}: {:?} after {} steps",
        h.scenario,
        h.arch,
        h.profile,
        h.strategy,
        h.seed,
        if seeds > 1 { format!(" (of {seeds} tried)") } else { String::new() },
        t.verdict,
        t.events.len()
    );
    for r in &t.reports {
        print!("{}", r.text);
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
