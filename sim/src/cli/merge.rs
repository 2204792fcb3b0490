//! `mmsim merge`: combine the JSON summaries of `mmsim explore --shard` parts.

use super::explore::{print, Format};
use super::fail;
use crate::explore;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// JSON summaries (`explore --format json`, or summary.json from `--out`).
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn merge(a: &MergeArgs) -> i32 {
    let mut parts = Vec::new();
    for p in &a.parts {
        match explore::read_json(p) {
            Ok(s) => parts.push(s),
            Err(e) => return fail(e),
        }
    }
    match explore::merge(&parts) {
        Ok(s) => {
            print(&s, a.format);
            s.exit_code()
        }
        Err(e) => fail(e),
    }
}
