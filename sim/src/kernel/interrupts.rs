//! Transitions that are not a task's program: a CPU taking a pending IPI, and RCU invoking a
//! callback whose grace period has elapsed. The scheduler picks them like any other step.

use super::ctx::{Ctx, R};
use crate::model::fingerprint::Keyed;
use crate::model::rcu::Callback;
use crate::profile::PtlockDies;
use mmsim_traces::{Access, Object};

/// Whether CPU `cpu` can take an interrupt now: an IPI is pending and IRQs are enabled.
pub fn irq_enabled(cx_cpus: &[Keyed<crate::model::cpu::Cpu>], cpu: usize) -> bool {
    let c = &cx_cpus[cpu];
    c.ipi_from != 0 && c.irqs_off == 0
}

/// `local_irq_disable()` / `local_irq_save()`: from now on this CPU takes no IPI (the engine
/// delivers none while `irqs_off > 0`) and is an RCU reader (IRQs-off holds off grace periods
/// since the RCU flavours merged, v4.20).
pub fn local_irq_disable(cx: &mut Ctx, func: &'static str) -> R<()> {
    let me = cx.who.cpu;
    cx.touch(func, Object::Cpu(me), Access::IrqDisable)?;
    cx.k.cpus[me as usize].irqs_off += 1;
    Ok(())
}

/// `local_irq_enable()` / `local_irq_restore()`: leaving the outermost IRQs-off region with
/// no `rcu_read_lock()` held is a quiescent state (`Cpu::qs` moves on), and pending IPIs can
/// now be taken.
pub fn local_irq_enable(cx: &mut Ctx, func: &'static str) -> R<()> {
    let me = cx.who.cpu;
    cx.touch(func, Object::Cpu(me), Access::IrqEnable)?;
    let c = &mut cx.k.cpus[me as usize];
    c.irqs_off = c.irqs_off.saturating_sub(1);
    if !c.in_rcu_reader() {
        c.qs += 1;
    }
    Ok(())
}

/// The IPI handler (`flush_tlb_func()` / `tlb_remove_table_smp_sync()`), then the
/// acknowledgement each sender waits for in `csd_lock_wait()`.
pub fn handle_ipi(cx: &mut Ctx) -> R<()> {
    let me = cx.who.cpu;
    cx.touch("flush_smp_call_function_queue", Object::Cpu(me), Access::IpiHandle)?;
    let cpu: &mut crate::model::cpu::Cpu = &mut cx.k.cpus[me as usize];
    let from = std::mem::take(&mut cpu.ipi_from);
    let flush = std::mem::take(&mut cpu.ipi_flush);
    for mm in (0..8).filter(|m| flush & (1 << m) != 0) {
        cpu.tlb.flush_mm(mm, cpu.ipi_flush_leaf_only);
    }
    for s in 0..cx.k.cpus.len() {
        if from & (1 << s) != 0 {
            cx.k.cpus[s].ipi_waiting &= !(1 << me);
        }
    }
    Ok(())
}

/// Whether RCU has a callback to invoke.
pub fn rcu_ready(k: &crate::model::Kernel) -> bool {
    k.rcu.ready(&k.cpus).is_some()
}

/// `rcu_do_batch()` -> `tlb_remove_table_rcu()` -> `__tlb_remove_table()` for one table of the
/// oldest ready callback: run the dtor if the ptlock still lives (v6.14+), then free the page.
pub fn rcu_invoke(cx: &mut Ctx) -> R<()> {
    let Some(i) = cx.k.rcu.ready(&cx.k.cpus) else { return Ok(()) };
    let Callback::FreeTables(tables) = &cx.k.rcu.callbacks[i].what;
    let Some(&pfn) = tables.first() else {
        cx.touch("rcu_do_batch", Object::Rcu, Access::GracePeriod)?;
        cx.k.rcu.callbacks.remove(i);
        return Ok(());
    };
    let dtor_first = cx.env.sw.ptlock_dies == PtlockDies::WithTable
        && cx.k.mem.frame(pfn).is_some_and(|f| f.ptlock_alive);
    if dtor_first {
        cx.ptlock_free("__tlb_remove_table", pfn)?;
        return Ok(());
    }
    cx.free_table("__tlb_remove_table", pfn)?;
    let Callback::FreeTables(tables) = &mut cx.k.rcu.callbacks[i].what;
    tables.remove(0);
    if tables.is_empty() {
        cx.k.rcu.callbacks.remove(i);
    }
    Ok(())
}
