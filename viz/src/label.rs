//! Names and colours: how actors, lanes, objects, accesses and lock kinds are spelled in every
//! renderer, plus escaping helpers for the output languages.
//!
//! Owns only presentation of single values; no layout and no trace analysis.

use mmsim_traces::{Access, Actor, Object, Trace};

/// A horizontal lane of the drawings. `Cpu(n)` and `Irq(n)` share the lane of CPU n.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Setup,
    Cpu(u8),
    Rcu,
    Teardown,
}

impl Lane {
    /// The lane an actor's steps are drawn in.
    pub fn of(actor: Actor) -> Lane {
        match actor {
            Actor::Cpu(n) | Actor::Irq(n) => Lane::Cpu(n),
            Actor::Rcu => Lane::Rcu,
            Actor::Setup => Lane::Setup,
            Actor::Teardown => Lane::Teardown,
        }
    }

    /// Short name (`CPU0`, from the header when it names the CPU; `RCU`, `setup`, `teardown`).
    pub fn name(self, trace: &Trace) -> String {
        match self {
            Lane::Cpu(n) => match trace.header.cpus.get(n as usize) {
                Some(c) if !c.name.is_empty() => c.name.clone(),
                _ => format!("CPU{n}"),
            },
            Lane::Rcu => "RCU".into(),
            Lane::Setup => "setup".into(),
            Lane::Teardown => "teardown".into(),
        }
    }

    /// An identifier safe in DOT, Mermaid and ids (`cpu0`, `rcu`, `setup`, `teardown`).
    pub fn id(self) -> String {
        match self {
            Lane::Cpu(n) => format!("cpu{n}"),
            Lane::Rcu => "rcu".into(),
            Lane::Setup => "setup".into(),
            Lane::Teardown => "teardown".into(),
        }
    }

    /// The mm a CPU lane runs in, from the header.
    pub fn mm(self, trace: &Trace) -> Option<&str> {
        match self {
            Lane::Cpu(n) => trace.header.cpus.get(n as usize).map(|c| c.mm.as_str()),
            _ => None,
        }
    }

    /// The operations a CPU lane runs, from the header.
    pub fn ops(self, trace: &Trace) -> &[String] {
        match self {
            Lane::Cpu(n) => trace.header.cpus.get(n as usize).map_or(&[], |c| c.ops.as_slice()),
            _ => &[],
        }
    }

    /// A stable small number per lane (used as Perfetto pid).
    pub fn number(self) -> u64 {
        match self {
            Lane::Setup => 0,
            Lane::Cpu(n) => 1 + u64::from(n),
            Lane::Rcu => 1000,
            Lane::Teardown => 1001,
        }
    }
}

/// `CPU0`, `CPU0.irq`, `RCU`, `setup`, `teardown` (the trace crate's `Display`, shared with the
/// CLI and replay messages).
pub fn actor_label(actor: Actor) -> String {
    actor.to_string()
}

/// `mmap_lock(mm0)`, `table(pfn 0x1003)`, `entry(pfn 0x1003)[5]`, ... (the trace crate's
/// `Display`).
pub fn object_label(obj: Object) -> String {
    obj.to_string()
}

/// `read`, `lock_write`, `queue_free`, ... (the trace crate's names).
pub fn access_label(access: Access) -> &'static str {
    access.name()
}

/// The page-table page an object belongs to (its table, one of its entries, or its ptlock).
pub fn pfn_of(obj: Object) -> Option<u64> {
    match obj {
        Object::Table(p) | Object::PtLock(p) | Object::Entry { pfn: p, .. } => Some(p),
        _ => None,
    }
}

/// The kinds of lock the trace knows, one colour each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockKind {
    MmapLock,
    PageTableLock,
    VmaLock,
    IMmapRwsem,
    FaultMutex,
    PtLock,
}

impl LockKind {
    pub const ALL: [LockKind; 6] = [
        LockKind::MmapLock,
        LockKind::VmaLock,
        LockKind::IMmapRwsem,
        LockKind::PageTableLock,
        LockKind::PtLock,
        LockKind::FaultMutex,
    ];

    /// The lock kind of an object, if it is a lock.
    pub fn of(obj: Object) -> Option<LockKind> {
        match obj {
            Object::MmapLock(_) => Some(LockKind::MmapLock),
            Object::PageTableLock(_) => Some(LockKind::PageTableLock),
            Object::VmaLock { .. } => Some(LockKind::VmaLock),
            Object::IMmapRwsem(_) => Some(LockKind::IMmapRwsem),
            Object::FaultMutex(_) => Some(LockKind::FaultMutex),
            Object::PtLock(_) => Some(LockKind::PtLock),
            _ => None,
        }
    }

    /// Kernel spelling: `mmap_lock`, `vma_lock`, `i_mmap_rwsem`, ...
    pub fn name(self) -> &'static str {
        match self {
            LockKind::MmapLock => "mmap_lock",
            LockKind::PageTableLock => "page_table_lock",
            LockKind::VmaLock => "vma_lock",
            LockKind::IMmapRwsem => "i_mmap_rwsem",
            LockKind::FaultMutex => "fault_mutex",
            LockKind::PtLock => "ptlock",
        }
    }

    /// Fill colour (SVG, hex).
    pub fn colour(self) -> &'static str {
        match self {
            LockKind::MmapLock => "#4e79a7",
            LockKind::PageTableLock => "#59a14f",
            LockKind::VmaLock => "#f28e2b",
            LockKind::IMmapRwsem => "#b07aa1",
            LockKind::FaultMutex => "#76b7b2",
            LockKind::PtLock => "#c9a227",
        }
    }
}

/// Whether a hold is shared (rwsem read) or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldMode {
    Read,
    Write,
}

impl HoldMode {
    pub fn letter(self) -> &'static str {
        match self {
            HoldMode::Read => "R",
            HoldMode::Write => "W",
        }
    }
}

/// Escape text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for a double-quoted DOT string.
pub fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Make text safe inside a Mermaid message or note: no statement separators, entity starts,
/// HTML or line breaks.
pub fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' => ',',
            '#' => ' ',
            '<' | '>' | '{' | '}' => ' ',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
