//! Render a trace file without the simulator:
//! `cargo run -p mmsim-viz --example render -- TRACE.ron svg|dot|mermaid|perfetto
//!  [--focus PFN] [--window FROM-TO] > out`.

use std::path::Path;
use std::process::ExitCode;

use mmsim_viz::{render, Format, RenderOptions};

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: render TRACE.ron FORMAT [--focus PFN] [--window FROM-TO]";
    let (Some(path), Some(format)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let format: Format = match format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut opts = RenderOptions::default();
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().map(String::as_str).unwrap_or_default();
        match flag.as_str() {
            "--focus" => opts.focus_pfn = parse_u64(value),
            "--window" => {
                opts.window =
                    value.split_once('-').and_then(|(a, b)| Some((parse_u64(a)?, parse_u64(b)?)))
            }
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        }
    }
    match mmsim_traces::read(Path::new(path)) {
        Ok(trace) => {
            print!("{}", render(&trace, format, &opts));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
