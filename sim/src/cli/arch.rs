//! `mmsim arch list` and `mmsim arch show NAME`: the architecture configurations, their
//! page-table formats and their table-free and TLB-flush policies.

use super::fail;
use mmsim_arch::{human_size, ArchConfig, NoShare, TableFree, TlbFlush};

/// The `arch` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ArchCmd {
    /// One line per configuration: format, levels, PMD_SIZE, PUD_SIZE, policies, sharing.
    List,
    /// Everything about one configuration: its levels with the manual's names, sizes, policies.
    Show {
        /// Configuration name (see `mmsim arch list`).
        name: String,
    },
}

pub fn arch(cmd: &ArchCmd) -> i32 {
    match cmd {
        ArchCmd::List => {
            print!("{}", list());
            0
        }
        ArchCmd::Show { name } => match ArchConfig::by_name(name) {
            Some(c) => {
                print!("{}", c.describe());
                0
            }
            None => fail(format!(
                "unknown architecture configuration `{name}` (one of: {})",
                mmsim_arch::configs().iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            )),
        },
    }
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

/// The `arch list` table.
pub fn list() -> String {
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
                table_free_name(c.table_free).to_string(),
                tlb_flush_name(c.tlb_flush).to_string(),
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
