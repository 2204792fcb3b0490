//! The trace: everything one mmsim execution decided and observed, as a versioned RON document.
//!
//! Invariant: depends on nothing of mmsim's. A trace file alone is enough to replay (the resolved
//! scenario text is embedded) and to draw (`mmsim-viz` reads only this crate).
//!
//! - [`schema`](crate::Trace): the types, and [`SCHEMA_VERSION`].
//! - `io`: the fixed RON layout, version-checked parsing, atomic writes.
//! - `replay`: finding and describing the first divergence of a replay.
//! - `display`: the short names (`CPU0.irq`, `entry(pfn 0x1a3)[5]`) everything prints.

mod display;
mod io;
mod replay;
mod schema;

pub use io::*;
pub use replay::*;
pub use schema::*;
