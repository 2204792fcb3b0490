//! `mmsim scenarios` and `mmsim profiles`: what is built in.

use crate::scenario::{Source, BUILTIN};

pub fn scenarios() -> i32 {
    for (name, text) in BUILTIN {
        let doc = Source { origin: format!("builtin:{name}"), text: text.to_string() }
            .parse()
            .map(|s| s.doc)
            .unwrap_or_default();
        println!("{name:<20} {doc}");
    }
    0
}

pub fn profiles() -> i32 {
    for p in crate::profile::profiles() {
        println!("{p}");
        for (n, v) in p.switches.list() {
            println!("    {n} = {v}");
        }
    }
    0
}
