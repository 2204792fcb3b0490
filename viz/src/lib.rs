//! Lock/page lifetime graphs built from a trace (and only a trace), and their renderers.
//!
//! - [`graph`]: the happens-before graph (petgraph) of a trace's events.
//! - [`lifetime`]: page-table page lifetimes and lock holds derived from the events.
//! - [`label`]: how actors, lanes, objects and lock kinds are named and coloured.
//! - [`svg`], [`dot`], [`mermaid`], [`perfetto`]: the renderers, each a pure function of the
//!   trace and [`RenderOptions`], byte-for-byte deterministic.
//! - `view` (private): what `--window` and `--focus` leave visible, shared by every renderer.
//! - `xscale` (private): the SVG step axis, squeezing long quiet stretches.
//!
//! All iteration is over `Vec`s and `BTreeMap`s in trace order; nothing depends on hashing,
//! time or the environment.
//!
//! This crate depends on `mmsim-traces` only: a trace file alone is enough to draw.

use std::fmt;
use std::str::FromStr;

use mmsim_traces::Trace;

pub mod dot;
pub mod graph;
pub mod label;
pub mod lifetime;
pub mod mermaid;
pub mod perfetto;
pub mod svg;
mod view;
mod xscale;

#[cfg(test)]
mod fixture;

pub use dot::render_dot;
pub use graph::{build_graph, race_origin, EdgeKind, EventGraph, RaceCause, StepEdge};
pub use label::{HoldMode, Lane, LockKind};
pub use lifetime::{Lifetimes, LockHold, SpanEvent, SpanEventKind, TableSpan};
pub use mermaid::render_mermaid;
pub use perfetto::render_perfetto;
pub use svg::render_svg;
pub use view::RenderOptions;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Standalone SVG swimlane.
    Svg,
    /// Graphviz DOT of the happens-before graph.
    Dot,
    /// Mermaid `sequenceDiagram` (mdBook).
    Mermaid,
    /// Chrome trace-event JSON for the Perfetto UI.
    Perfetto,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Svg, Format::Dot, Format::Mermaid, Format::Perfetto];

    /// `svg`, `dot`, `mermaid`, `perfetto`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Dot => "dot",
            Format::Mermaid => "mermaid",
            Format::Perfetto => "perfetto",
        }
    }

    /// Conventional file extension: `svg`, `dot`, `mmd`, `json`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Dot => "dot",
            Format::Mermaid => "mmd",
            Format::Perfetto => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown format `{}` (expected svg, dot, mermaid or perfetto)", self.0)
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Accepts the names and a few aliases (`graphviz`, `mmd`, `json`, `chrome`), any case.
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s.to_ascii_lowercase().as_str() {
            "svg" => Ok(Format::Svg),
            "dot" | "graphviz" => Ok(Format::Dot),
            "mermaid" | "mmd" => Ok(Format::Mermaid),
            "perfetto" | "json" | "chrome" => Ok(Format::Perfetto),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// Render a trace in a format.
pub fn render(trace: &Trace, format: Format, opts: &RenderOptions) -> String {
    match format {
        Format::Svg => render_svg(trace, opts),
        Format::Dot => render_dot(trace, opts),
        Format::Mermaid => render_mermaid(trace, opts),
        Format::Perfetto => render_perfetto(trace, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!("JSON".parse::<Format>(), Ok(Format::Perfetto));
        assert!("png".parse::<Format>().is_err());
    }

    #[test]
    fn every_format_is_deterministic_and_filters_shrink_it() {
        let t = fixture::seed_race();
        let all = RenderOptions::default();
        let focus = RenderOptions { focus_pfn: Some(fixture::OTHER), window: None };
        let window = RenderOptions { focus_pfn: None, window: Some((3, 9)) };
        for f in Format::ALL {
            let a = render(&t, f, &all);
            assert_eq!(a, render(&t, f, &all), "{f} not deterministic");
            assert!(render(&t, f, &focus).len() < a.len(), "{f}: focus does not reduce");
            assert!(render(&t, f, &window).len() < a.len(), "{f}: window does not reduce");
        }
    }
}
