//! Replay comparison: given the events a trace recorded and the events re-executing its decisions
//! produced, find the first step where they differ and describe both sides. Re-execution itself
//! belongs to the simulator; this module only compares.

use std::fmt;

use crate::schema::Event;

/// The first step at which a replay departed from its recording. At least one side is `Some`;
/// `None` means that side had already ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index into the event lists (equal to `Event::step` in a well-formed trace).
    pub step: u64,
    /// The recorded event at this step.
    pub expected: Option<Event>,
    /// The replayed event at this step.
    pub actual: Option<Event>,
}

impl Divergence {
    /// Names of the [`Event`] fields that differ (`["object", "detail"]`); empty when one side
    /// is missing.
    pub fn differing_fields(&self) -> Vec<&'static str> {
        let (Some(a), Some(b)) = (&self.expected, &self.actual) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if a.step != b.step {
            out.push("step");
        }
        if a.time != b.time {
            out.push("time");
        }
        if a.actor != b.actor {
            out.push("actor");
        }
        if a.op != b.op {
            out.push("op");
        }
        if a.op_step != b.op_step {
            out.push("op_step");
        }
        if a.func != b.func {
            out.push("func");
        }
        if a.object != b.object {
            out.push("object");
        }
        if a.access != b.access {
            out.push("access");
        }
        if a.detail != b.detail {
            out.push("detail");
        }
        if a.value != b.value {
            out.push("value");
        }
        out
    }
}

/// ```text
/// step 42 diverged:
///   recorded: CPU1 op 0 step 3 huge_pmd_unshare entry(pfn 0x1a3)[5] write 'pud_clear 0x40000000'
///   replayed: CPU0 op 0 step 5 hugetlb_walk entry(pfn 0x1a3)[5] read 'pud 0x1a3067'
///   differs in: actor, op_step, func, access, detail
/// ```
/// or, when one side is shorter,
/// `recorded trace ends at step 42, replay continued with:\n  replayed: ...` (and vice versa).
impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step;
        match (&self.expected, &self.actual) {
            (Some(rec), Some(rep)) => {
                writeln!(f, "step {step} diverged:")?;
                writeln!(f, "  recorded: {}", rec.summary())?;
                write!(f, "  replayed: {}", rep.summary())?;
                let fields = self.differing_fields();
                if !fields.is_empty() {
                    write!(f, "\n  differs in: {}", fields.join(", "))?;
                }
                if fields.contains(&"time") {
                    write!(f, " (recorded {}, replayed {})", rec.time, rep.time)?;
                }
                if fields.contains(&"value") {
                    write!(f, " (recorded {:?}, replayed {:?})", rec.value, rep.value)?;
                }
                Ok(())
            }
            (None, Some(rep)) => write!(
                f,
                "recorded trace ends at step {step}, replay continued with:\n  replayed: {}",
                rep.summary()
            ),
            (Some(rec), None) => write!(
                f,
                "replay ends at step {step}, recorded trace continues with:\n  recorded: {}",
                rec.summary()
            ),
            (None, None) => write!(f, "step {step}: both sides ended (no divergence)"),
        }
    }
}

/// The first step where `replayed` differs from `recorded` (any field, including time), or where
/// one list ends before the other. `None` when they are identical.
pub fn first_divergence(recorded: &[Event], replayed: &[Event]) -> Option<Divergence> {
    first_divergence_as_of(crate::SCHEMA_VERSION, recorded, replayed)
}

/// [`first_divergence`] for a recording of schema version `schema`: the fields that version
/// lacks (schema 3: [`Event::value`]) are not compared.
pub fn first_divergence_as_of(
    schema: u32,
    recorded: &[Event],
    replayed: &[Event],
) -> Option<Divergence> {
    let same = |a: &Event, b: &Event| {
        if schema < 4 {
            Event { value: None, ..a.clone() } == Event { value: None, ..b.clone() }
        } else {
            a == b
        }
    };
    let common = recorded.len().min(replayed.len());
    let i = (0..common)
        .find(|&i| !same(&recorded[i], &replayed[i]))
        .or((recorded.len() != replayed.len()).then_some(common))?;
    Some(Divergence {
        step: i as u64,
        expected: recorded.get(i).cloned(),
        actual: replayed.get(i).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::tests::sample;
    use crate::schema::{Access, Actor, Object};

    #[test]
    fn identical_lists_do_not_diverge() {
        let events = sample().events;
        assert_eq!(first_divergence(&events, &events.clone()), None);
        assert_eq!(first_divergence(&[], &[]), None);
    }

    #[test]
    fn edited_event_is_found_at_its_step() {
        let recorded = sample().events;
        let mut replayed = recorded.clone();
        replayed[2].object = Object::Entry { pfn: 0x1a3, index: 6 };
        replayed[2].access = Access::Write;
        // A later difference must not be reported first.
        replayed[4].detail = "other".to_owned();
        let d = first_divergence(&recorded, &replayed).expect("diverges");
        assert_eq!(d.step, 2);
        assert_eq!(d.expected.as_ref(), Some(&recorded[2]));
        assert_eq!(d.actual.as_ref(), Some(&replayed[2]));
        assert_eq!(d.differing_fields(), vec!["object", "access"]);
        let msg = d.to_string();
        assert_eq!(
            msg,
            "step 2 diverged:\n  \
             recorded: CPU1 op 0 step 2 huge_pmd_unshare vma_lock(mm1 vma2) lock_write 'detail 2'\n  \
             replayed: CPU1 op 0 step 2 huge_pmd_unshare entry(pfn 0x1a3)[6] write 'detail 2'\n  \
             differs in: object, access"
        );
    }

    #[test]
    fn time_only_divergence_is_visible() {
        let recorded = sample().events;
        let mut replayed = recorded.clone();
        replayed[0].time += 1;
        let d = first_divergence(&recorded, &replayed).unwrap();
        assert_eq!(d.step, 0);
        let msg = d.to_string();
        assert!(msg.ends_with("differs in: time (recorded 0, replayed 1)"), "{msg}");
    }

    #[test]
    fn value_only_divergence_is_visible_unless_the_recording_predates_values() {
        let recorded = sample().events;
        let mut replayed = recorded.clone();
        replayed[1].value = None;
        let d = first_divergence(&recorded, &replayed).unwrap();
        assert_eq!((d.step, d.differing_fields()), (1, vec!["value"]));
        assert!(d.to_string().contains("(recorded Some(EntryValue"), "{d}");
        // a schema-3 recording has no values: only the other fields are compared
        assert_eq!(first_divergence_as_of(3, &replayed, &recorded), None);
        replayed[1].detail = "other".to_owned();
        assert_eq!(first_divergence_as_of(3, &replayed, &recorded).map(|d| d.step), Some(1));
    }

    #[test]
    fn replay_continuing_past_the_recording() {
        let replayed = sample().events;
        let recorded = &replayed[..3];
        let d = first_divergence(recorded, &replayed).unwrap();
        assert_eq!(d.step, 3);
        assert_eq!(d.expected, None);
        assert_eq!(d.actual.as_ref(), Some(&replayed[3]));
        assert!(d.differing_fields().is_empty());
        assert_eq!(
            d.to_string(),
            "recorded trace ends at step 3, replay continued with:\n  \
             replayed: RCU op 0 step 3 rcu_gp rcu grace_period 'detail 3'"
        );
    }

    #[test]
    fn replay_ending_early() {
        let recorded = sample().events;
        let d = first_divergence(&recorded, &recorded[..1]).unwrap();
        assert_eq!(d.step, 1);
        assert_eq!(d.actual, None);
        assert_eq!(d.expected.as_ref(), Some(&recorded[1]));
        let msg = d.to_string();
        assert!(
            msg.starts_with(
                "replay ends at step 1, recorded trace continues with:\n  recorded: CPU0 "
            ),
            "{msg}"
        );
        let d = first_divergence(&recorded, &[]).unwrap();
        assert_eq!(d.step, 0);
        assert_eq!(d.expected.as_ref().map(|e| e.actor), Some(Actor::Setup));
    }
}
