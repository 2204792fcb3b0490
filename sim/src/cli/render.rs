//! `mmsim render`: draw a trace file as an SVG swimlane, Graphviz DOT, a Mermaid sequence diagram
//! or Perfetto trace-event JSON (see `mmsim_viz`).

use super::fail;
use mmsim_viz::{render as draw, Format, RenderOptions};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The trace to draw (RON, as written by `mmsim run -o`).
    pub trace: PathBuf,
    /// Output format: svg, dot, mermaid or perfetto.
    #[arg(long, value_parser = parse_format, default_value = "svg")]
    pub format: Format,
    /// Write here (atomically) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Only this page-table page (pfn, decimal or 0x-hex): its lifetime, the events touching it
    /// and the lock holds overlapping them.
    #[arg(long, value_parser = parse_u64)]
    pub focus: Option<u64>,
    /// Only steps FROM..TO (inclusive).
    #[arg(long, value_parser = parse_window)]
    pub window: Option<(u64, u64)>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| e.to_string())
}

/// A number in decimal or `0x` hexadecimal.
pub(crate) fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not a number (decimal or 0x-hex)"))
}

/// `FROM..TO`, both inclusive, FROM <= TO.
fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) =
        s.split_once("..").ok_or_else(|| format!("`{s}` is not FROM..TO (e.g. 10..80)"))?;
    let (a, b) = (parse_u64(a.trim())?, parse_u64(b.trim())?);
    if a > b {
        return Err(format!("`{s}`: FROM ({a}) is after TO ({b})"));
    }
    Ok((a, b))
}

pub fn render(a: &RenderArgs) -> i32 {
    let trace = match mmsim_traces::read(&a.trace) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let name = a.trace.display();
    let (first, last) = match (trace.events.first(), trace.events.last()) {
        (Some(f), Some(l)) => (f.step, l.step),
        _ => {
            return fail(format!(
                "{name}: the trace has no events to draw (it was run without tracing)"
            ))
        }
    };
    if let Some((from, to)) = a.window {
        if to < first || from > last {
            return fail(format!(
                "{name}: --window {from}..{to} holds no step of the trace (steps {first}..{last})"
            ));
        }
    }
    if let Some(pfn) = a.focus {
        let touched = trace.events.iter().any(|e| mmsim_viz::label::pfn_of(e.object) == Some(pfn));
        if !touched {
            let pfns = mmsim_viz::Lifetimes::of(&trace)
                .tables
                .keys()
                .map(|p| format!("{p:#x}"))
                .collect::<Vec<_>>()
                .join(", ");
            return fail(format!(
                "{name}: --focus {pfn:#x}: no page-table page with that pfn in the trace (its pages: {pfns})"
            ));
        }
    }
    let opts = RenderOptions { focus_pfn: a.focus, window: a.window };
    let out = draw(&trace, a.format, &opts);
    match &a.output {
        Some(path) => match mmsim_traces::write_atomic_bytes(path, out.as_bytes()) {
            Ok(()) => 0,
            Err(e) => fail(e),
        },
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
                Ok(()) => 0,
                Err(e) => fail(format!("writing to standard output: {e}")),
            }
        }
    }
}
