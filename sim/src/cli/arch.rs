//! `mmsim arch list` and `mmsim arch show NAME`: the architecture configurations, their
//! page-table formats and their table-free and TLB-flush policies.

use super::fail;
use crate::env::Env;
use crate::profile::Switches;
use mmsim_arch::{human_size, ArchConfig, NoShare, TableFree, TlbFlush};

/// The `arch` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ArchCmd {
    /// One line per configuration: format, levels, PMD_SIZE, PUD_SIZE, policies, sharing.
    List {
        /// Show the table-free policy a run with this kernel profile uses (default: each
        /// configuration's own default, as before v6.15).
        #[arg(long)]
        profile: Option<String>,
        /// Override a profile switch, e.g. --set rcu_table_free=false or --set tlb_flush=ipi
        /// (repeatable); configurations that cannot flush that way show `n/a`.
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Everything about one configuration: its levels with the manual's names, sizes, policies.
    Show {
        /// Configuration name (see `mmsim arch list`).
        name: String,
        /// Also show the policies a run with this kernel profile uses.
        #[arg(long)]
        profile: Option<String>,
        /// Override a profile switch, e.g. --set tlb_flush=broadcast (repeatable); an
        /// override the architecture cannot do is an error.
        #[arg(long = "set")]
        set: Vec<String>,
    },
}

pub fn arch(cmd: &ArchCmd) -> i32 {
    match cmd {
        ArchCmd::List { profile, set } => {
            let sw = match switches(profile.as_deref(), set) {
                Ok(sw) => sw,
                Err(e) => return fail(e),
            };
            print!("{}", list(sw.as_ref()));
            if sw.is_none() {
                println!(
                    "\ntable free: each configuration's default; from v6.15 x86_64 and x86_64-la57 \
                     free by RCU too (see --profile, and --set rcu_table_free=true|false)"
                );
            }
            0
        }
        ArchCmd::Show { name, profile, set } => match ArchConfig::by_name(name) {
            Some(c) => {
                let sw = match switches(profile.as_deref(), set) {
                    Ok(sw) => sw,
                    Err(e) => return fail(e),
                };
                let resolved = match sw.as_ref().map(|sw| Env::tlb_flush_for(c, sw)) {
                    Some(Err(e)) => return fail(format!("--set tlb_flush: {e}")),
                    Some(Ok(t)) => sw.as_ref().map(|sw| (Env::table_free_for(c, sw), t)),
                    None => None,
                };
                print!("{}", c.describe());
                if let Some((free, flush)) = resolved {
                    println!(
                        "  with profile {}{}: table free: {}, TLB flush: {}",
                        profile.as_deref().unwrap_or("latest"),
                        set.iter().map(|s| format!(" --set {s}")).collect::<String>(),
                        table_free_name(free),
                        tlb_flush_name(flush)
                    );
                }
                0
            }
            None => fail(format!(
                "unknown architecture configuration `{name}` (one of: {})",
                mmsim_arch::configs().iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            )),
        },
    }
}

/// The switches of `profile` with `set` applied; `None` when neither is given.
fn switches(profile: Option<&str>, set: &[String]) -> Result<Option<Switches>, String> {
    if profile.is_none() && set.is_empty() {
        return Ok(None);
    }
    let name = profile.unwrap_or("latest");
    let mut sw = crate::profile::by_name(name)
        .ok_or_else(|| format!("unknown kernel profile `{name}` (see `mmsim profiles`)"))?
        .switches;
    for s in set {
        sw.set(s).map_err(|e| format!("--set: {e}"))?;
    }
    Ok(Some(sw))
}

/// How a table-free policy is named in tables.
pub fn table_free_name(t: TableFree) -> &'static str {
    match t {
        TableFree::Rcu => "RCU",
        TableFree::AfterFlush => "after flush",
    }
}

/// How a TLB-flush mechanism is named in tables.
pub fn tlb_flush_name(t: TlbFlush) -> &'static str {
    match t {
        TlbFlush::Ipi => "IPI",
        TlbFlush::Broadcast => "broadcast",
        TlbFlush::Paravirt => "paravirt",
        TlbFlush::SbiRfence => "SBI rfence",
    }
}

/// A short reason for the table; `arch show` prints the long one.
fn short_reason(why: NoShare) -> String {
    match why {
        NoShare::TooFewLevels { levels } => format!("{levels} levels, PMD folded"),
        NoShare::NotSelected { .. } => "ARCH_WANT_HUGE_PMD_SHARE not selected".into(),
    }
}

/// The `arch list` table; with `sw`, the table-free policy those switches select.
pub fn list(sw: Option<&Switches>) -> String {
    let header = [
        "config",
        "format",
        "levels",
        "PMD_SIZE",
        "PUD_SIZE",
        "table free",
        "TLB flush",
        "sharing",
    ];
    let rows: Vec<[String; 8]> = mmsim_arch::configs()
        .iter()
        .map(|c| {
            let f = c.format;
            [
                c.name.to_string(),
                f.name().to_string(),
                f.levels().len().to_string(),
                human_size(f.pmd_size()),
                human_size(f.pud_size()),
                table_free_name(sw.map_or(c.table_free, |sw| Env::table_free_for(c, sw)))
                    .to_string(),
                match sw.map_or(Ok(c.tlb_flush), |sw| Env::tlb_flush_for(c, sw)) {
                    Ok(t) => tlb_flush_name(t).to_string(),
                    Err(_) => "n/a".to_string(),
                },
                match f.pmd_sharing() {
                    Ok(()) => "yes".to_string(),
                    Err(why) => format!("no: {}", short_reason(why)),
                },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}
