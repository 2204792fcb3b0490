//! Skipping the iterations of a range loop that only step over empty slots: a simulator
//! shortcut, not kernel code, used by `__unmap_hugepage_range()`'s loop
//! ([`super::hugetlb::HugeRangeLoop`]), `zap_pte_range()` ([`super::anon::ZapPteRange`]) and
//! `free_pgd_range()`'s entry scan ([`super::mmu_gather::FreePgdRange`]).
//!
//! An iteration that ran alone (every step since the last one ended was its own), found its
//! slot empty and attempted no report left the state as it found it: its walk and its read
//! only read, and its unlock undid its lock. The next iteration, over the next slot of the
//! same table, then runs the same steps in the same state, so if that slot is empty too it
//! does the same nothing in as many steps, and so on, as long as nothing else runs and nothing
//! records the steps: an untraced run, in a serial phase or for as many decisions as the
//! strategy promises this CPU ([`super::ctx::Fuse::keeps_running`]). Those iterations are not
//! run: their steps are counted and their decisions made ([`Ctx::skip_steps`]), so every later
//! step number, decision, report, state and verdict is what running them gives
//! (`engine::tests` compares whole runs of every built-in scenario with and without the skip,
//! and with tracing, which never skips).

use super::ctx::Ctx;
use crate::model::fingerprint::Unseen;
use crate::model::mem::EntryPtr;

/// A range loop's memory of its last iteration, for [`EmptySlots::after_iteration`].
///
/// It compares equal and hashes to nothing ([`Unseen`]): two states that differ only here
/// run the same (the skip changes nothing but speed), and the exhaustive search's state keys
/// and a run's fingerprint must not tell them apart by the step numbers it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EmptySlots {
    /// Where the last iteration ended, when the loop may skip (an untraced run that lets
    /// it): its step, the op's own step count and the checker's report attempts then.
    last_end: Unseen<Option<(u64, u32, u64)>>,
}

impl EmptySlots {
    /// The loop left the table or jumped (no table, an unshare): the next iteration is not
    /// a repeat of the last one.
    pub fn forget(&mut self) {
        self.last_end.0 = None;
    }

    /// At the end of an iteration over slot `ptep` that found it empty iff `empty`, with
    /// `*addr` already moved `sz` on to the next slot's address: skip the iterations over the
    /// following empty slots of the same table, below `limit` (the range's end or the end of
    /// what the table maps, whichever is first), moving `*addr` past them.
    pub fn after_iteration(
        &mut self,
        cx: &mut Ctx,
        ptep: EntryPtr,
        empty: bool,
        addr: &mut u64,
        sz: u64,
        limit: u64,
    ) {
        if cx.skip_until == 0 {
            return;
        }
        let now = (cx.step, cx.who.op_step, cx.check.attempts);
        let Some((prev_step, prev_op_step, prev_attempts)) = self.last_end.0.replace(now) else {
            return;
        };
        // the iteration ran alone: every step since the last one ended was its own
        let per = now.0 - prev_step;
        let alone = u64::from(now.1 - prev_op_step) == per;
        if !empty || !alone || prev_attempts != now.2 || cx.k.mem.load(ptep) != 0 {
            return;
        }
        let room = cx.skippable(per);
        let ptrs = cx.env.arch.ptrs_per_table();
        let (mut n, mut index) = (0u64, ptep.index as usize + 1);
        while n < room
            && *addr < limit
            && index < ptrs
            && cx.k.mem.load(cx.k.mem.ptr(ptep.pfn, index, 0)) == 0
        {
            n += 1;
            index += 1;
            *addr += sz;
        }
        if n > 0 {
            cx.skip_steps(n * per);
            self.last_end.0 = Some((cx.step, now.1 + (n * per) as u32, now.2));
        }
    }
}
