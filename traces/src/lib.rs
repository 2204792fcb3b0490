//! The trace: everything one mmsim execution decided and observed, as a versioned RON document.
//!
//! Invariant: depends on nothing of mmsim's. A trace file alone is enough to replay (the resolved
//! scenario text is embedded) and to draw (`mmsim-viz` reads only this crate).

mod schema;

pub use schema::*;
