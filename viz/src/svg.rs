//! The standalone SVG swimlane, written by hand (no Graphviz).
//!
//! Layout, top to bottom: title (the report) and run facts; a step axis; one lane per CPU
//! (labelled with its mm and ops) holding a row of kernel-function runs, a row of event marks
//! (tooltips name the function, object, access and detail) and one sub-row per lock with its
//! holds as coloured bars; a "page tables" band with one row per pfn showing its lifetime bars
//! and alloc/share/unshare/queue-free/ptlock-death/free markers and the accesses to it; the race
//! (free -> use) as a red arrow; a legend. The x axis is the step number, scaled to the number
//! of visible steps with a minimum spacing.
//!
//! Owns geometry only: what is visible comes from [`RenderOptions`] via the view.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use mmsim_traces::{Access, Event, Object, Trace};

use crate::graph::EdgeKind;
use crate::label::{
    access_label, actor_label, object_label, pfn_of, truncate, xml_escape as esc, Lane, LockKind,
};
use crate::lifetime::SpanEventKind;
use crate::view::{is_landmark, RenderOptions, View};
use crate::xscale::XScale;

const LEFT: f64 = 200.0;
const RIGHT: f64 = 40.0;
const CHAR_W: f64 = 6.2;
const FUNC_ROW: f64 = 16.0;
const MARK_ROW: f64 = 16.0;
const LOCK_ROW: f64 = 14.0;
const PT_ROW: f64 = 22.0;
const RACE: &str = "#d62728";

/// Render the trace as a standalone SVG document.
pub fn render_svg(trace: &Trace, opts: &RenderOptions) -> String {
    let view = View::new(trace, opts);
    Svg::new(&view, opts).render()
}

struct Svg<'v, 't> {
    v: &'v View<'t>,
    opts: RenderOptions,
    scale: XScale,
    out: String,
    /// y of the marks row of each lane.
    mark_y: BTreeMap<Lane, f64>,
}

impl<'v, 't> Svg<'v, 't> {
    fn new(v: &'v View<'t>, opts: &RenderOptions) -> Self {
        let mut busy: BTreeSet<u64> =
            v.events.iter().filter(|e| is_landmark(e)).map(|e| e.step).collect();
        for r in &v.reports {
            busy.insert(r.at.step);
        }
        busy.extend(v.race_edges().iter().map(|&(from, ..)| from));
        let scale = XScale::new(v.lo, v.hi, LEFT, &busy);
        Svg { v, opts: *opts, scale, out: String::new(), mark_y: BTreeMap::new() }
    }

    fn x(&self, step: u64) -> f64 {
        self.scale.center(step)
    }

    fn plot_right(&self) -> f64 {
        self.scale.end()
    }

    fn in_gap(&self, step: u64) -> bool {
        self.scale.gap_of(step).is_some()
    }

    fn render(mut self) -> String {
        let width = self.plot_right() + RIGHT;
        let mut y = self.title();
        let axis_y = y + 14.0;
        y += 24.0;
        let lanes_top = y;
        for lane in self.v.lanes.clone() {
            y = self.lane(lane, y);
        }
        y = self.page_tables(y + 10.0);
        let grid_bottom = y;
        self.edges();
        self.races();
        y = self.legend(y + 16.0, width);
        let height = y + 10.0;

        let mut doc = String::new();
        let _ = writeln!(doc, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            doc,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">"#,
            w = width,
            h = height
        );
        doc.push_str(concat!(
            "<defs>\n",
            r##"<marker id="arrow-race" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#d62728"/></marker>"##,
            "\n",
            r##"<marker id="arrow-ipi" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2ca02c"/></marker>"##,
            "\n",
            r##"<marker id="arrow-gp" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#9467bd"/></marker>"##,
            "\n</defs>\n",
            "<style>.t{font-size:15px;font-weight:bold}.s{fill:#555}.ln{font-weight:bold;font-size:12px}.sm{font-size:9px;fill:#333}.ax{font-size:9px;fill:#777}</style>\n",
        ));
        let _ = writeln!(doc, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        // Grid first so everything else paints over it.
        for g in &self.scale.gaps {
            let _ = writeln!(
                doc,
                r##"<g class="gap"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#eeeeee" stroke="#bbbbbb" stroke-dasharray="2 2"/><text class="ax" x="{:.1}" y="{axis_y:.1}" text-anchor="middle">+{}</text><title>steps {}–{} squeezed: no lock, lifetime, IPI, RCU or TLB step</title></g>"##,
                g.x0,
                lanes_top - 4.0,
                g.width,
                grid_bottom - lanes_top + 4.0,
                g.x0 + g.width / 2.0,
                g.len(),
                g.from,
                g.to
            );
        }
        for s in self.scale.ticks() {
            let x = self.x(s);
            let _ = writeln!(
                doc,
                r##"<line class="grid" x1="{x:.1}" y1="{a:.1}" x2="{x:.1}" y2="{b:.1}" stroke="#e4e4e4"/><text class="ax" x="{x:.1}" y="{axis_y:.1}" text-anchor="middle">{s}</text>"##,
                a = lanes_top - 4.0,
                b = grid_bottom,
            );
        }
        let _ = writeln!(
            doc,
            r##"<text class="ax" x="{:.1}" y="{axis_y:.1}" text-anchor="end">step</text>"##,
            LEFT - 6.0
        );
        doc.push_str(&self.out);
        doc.push_str("</svg>\n");
        doc
    }

    fn title(&mut self) -> f64 {
        let t = self.v.trace;
        let h = &t.header;
        let title = match self.v.reports.first().copied().or(t.reports.first()) {
            Some(r) => r.title.clone(),
            None => format!("{}: {}", h.scenario, t.verdict),
        };
        let colour = if t.reports.is_empty() { "#222" } else { RACE };
        let more = if t.reports.len() > 1 {
            format!(" (+{} more reports)", t.reports.len() - 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            r#"<text class="t" x="12" y="22" fill="{colour}">{}{}</text>"#,
            esc(&title),
            esc(&more)
        );
        let mut facts = format!(
            "scenario {} · arch {} · profile {} · strategy {} · seed {} · verdict {} · steps {}–{}",
            h.scenario, h.arch, h.profile, h.strategy, h.seed, t.verdict, self.v.lo, self.v.hi
        );
        if let Some(p) = self.opts.focus_pfn {
            let _ = write!(facts, " · focus pfn {p:#x}");
        }
        if let Some((a, b)) = self.opts.window {
            let _ = write!(facts, " · window {a}–{b}");
        }
        let _ = writeln!(self.out, r#"<text class="s" x="12" y="40">{}</text>"#, esc(&facts));
        48.0
    }

    fn lane(&mut self, lane: Lane, top: f64) -> f64 {
        let t = self.v.trace;
        let events: Vec<&Event> =
            self.v.events.iter().copied().filter(|e| Lane::of(e.actor) == lane).collect();
        let locks: BTreeSet<Object> =
            self.v.holds.iter().filter(|h| h.lane == lane).map(|h| h.lock).collect();
        let locks: Vec<Object> = locks.into_iter().collect();

        // Label column: name, mm, ops.
        let mut label = vec![(lane.name(t), "ln")];
        if let Some(mm) = lane.mm(t) {
            label.push((format!("mm {mm}"), "s"));
        }
        let ops = lane.ops(t);
        for op in ops.iter().take(3) {
            label.push((truncate(op, 30), "sm"));
        }
        if ops.len() > 3 {
            label.push((format!("+{} more ops", ops.len() - 3), "sm"));
        }
        // Lock sub-rows start below both the marks and the label lines (their names share
        // the label column).
        let locks_top =
            (top + 6.0 + FUNC_ROW + MARK_ROW).max(top + 8.0 + 13.0 * label.len() as f64);
        let rows_h = locks_top - top + LOCK_ROW * locks.len() as f64 + 6.0;
        let label_h = 8.0 + 13.0 * label.len() as f64;
        let height = rows_h.max(label_h);
        let right = self.plot_right();
        let _ = writeln!(
            self.out,
            r##"<g class="lane" data-lane="{id}"><rect x="4" y="{top:.1}" width="{w:.1}" height="{height:.1}" fill="{fill}" stroke="#d0d0d0"/><title>{name}: {ops}</title></g>"##,
            id = lane.id(),
            w = right - 4.0,
            fill = if matches!(lane, Lane::Cpu(n) if n % 2 == 1) { "#f6f6f6" } else { "#fbfbfb" },
            name = esc(&lane.name(t)),
            ops = esc(&ops.join("; ")),
        );
        for (i, (text, class)) in label.iter().enumerate() {
            let _ = writeln!(
                self.out,
                r#"<text class="{class}" x="10" y="{:.1}">{}</text>"#,
                top + 16.0 + 13.0 * i as f64,
                esc(text)
            );
        }

        // Squeezed stretches: one summary box per gap.
        let func_y = top + 6.0;
        for g in self.scale.gaps.clone() {
            let inside: Vec<&Event> =
                events.iter().copied().filter(|e| g.contains(e.step)).collect();
            if inside.is_empty() {
                continue;
            }
            let mut funcs: Vec<&str> = Vec::new();
            for e in &inside {
                if !funcs.contains(&e.func.as_str()) {
                    funcs.push(&e.func);
                }
            }
            let _ = writeln!(
                self.out,
                r##"<rect class="gap-summary" x="{:.1}" y="{func_y:.1}" width="{:.1}" height="{:.1}" rx="2" fill="#dddddd" stroke="#999999"><title>{} steps of {} between {} and {}: {}</title></rect><text class="sm" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                g.x0,
                g.width,
                FUNC_ROW + MARK_ROW - 4.0,
                inside.len(),
                esc(&lane.name(t)),
                g.from,
                g.to,
                esc(&funcs.join(", ")),
                g.x0 + g.width / 2.0,
                func_y + 20.0,
                inside.len()
            );
        }
        let events: Vec<&Event> = events.into_iter().filter(|e| !self.in_gap(e.step)).collect();

        // Runs of the same kernel function.
        let mut i = 0;
        while i < events.len() {
            let mut j = i;
            while j + 1 < events.len()
                && events[j + 1].func == events[i].func
                && self
                    .scale
                    .gaps
                    .iter()
                    .all(|g| !(events[j].step < g.from && g.to < events[j + 1].step))
            {
                j += 1;
            }
            let (a, b) = (events[i].step, events[j].step);
            let x0 = self.scale.left(a);
            let w = self.scale.right(b) - x0;
            let func = &events[i].func;
            let _ = write!(
                self.out,
                r##"<rect class="func" x="{x0:.1}" y="{func_y:.1}" width="{w:.1}" height="{:.1}" rx="2" fill="#e8eef7" stroke="#b8c7dc"><title>{} (steps {a}–{b})</title></rect>"##,
                FUNC_ROW - 3.0,
                esc(func)
            );
            let fits = (w - 4.0) / CHAR_W;
            if fits >= 4.0 {
                let _ = write!(
                    self.out,
                    r#"<text class="sm" x="{:.1}" y="{:.1}">{}</text>"#,
                    x0 + 2.0,
                    func_y + 10.0,
                    esc(&truncate(func, fits as usize))
                );
            }
            self.out.push('\n');
            i = j + 1;
        }

        // One mark per event.
        let mark_y = top + 6.0 + FUNC_ROW + MARK_ROW / 2.0;
        self.mark_y.insert(lane, mark_y);
        let r = (self.scale.dx * 0.4).min(4.5);
        let at_steps: BTreeSet<u64> = self.v.reports.iter().map(|r| r.at.step).collect();
        for e in &events {
            let x = self.x(e.step);
            let _ = writeln!(
                self.out,
                r#"<circle class="mark" cx="{x:.1}" cy="{mark_y:.1}" r="{r:.1}" fill="{}"><title>{}</title></circle>"#,
                mark_colour(e),
                esc(&event_tooltip(e))
            );
            if at_steps.contains(&e.step) {
                let _ = writeln!(
                    self.out,
                    r#"<circle class="bad" cx="{x:.1}" cy="{mark_y:.1}" r="{:.1}" fill="none" stroke="{RACE}" stroke-width="2"/>"#,
                    r + 3.0
                );
            }
        }

        // One sub-row per lock, holds as bars.
        for (row, lock) in locks.iter().enumerate() {
            let y = locks_top + LOCK_ROW * row as f64;
            let kind = LockKind::of(*lock).expect("holds are on locks");
            let _ = writeln!(
                self.out,
                r#"<text class="sm" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 9.0,
                esc(&object_label(*lock))
            );
            for h in self.v.holds.iter().filter(|h| h.lane == lane && h.lock == *lock) {
                if self.scale.gap_of(h.from_step).is_some_and(|g| g.contains(h.to_step)) {
                    continue; // wholly inside a squeezed stretch
                }
                let x0 = self.scale.left(h.from_step);
                let w = self.scale.right(h.to_step) - x0;
                let text = format!("{} {}", kind.name(), h.mode.letter());
                let open = if h.open { ", still held at end" } else { "" };
                let _ = write!(
                    self.out,
                    r#"<rect class="hold lock-{k}" x="{x0:.1}" y="{:.1}" width="{w:.1}" height="10" rx="2" fill="{c}" fill-opacity="{op}" stroke="{c}"><title>{} {} by {}, steps {}–{}{open}</title></rect>"#,
                    y + 1.0,
                    esc(&object_label(*lock)),
                    h.mode.letter(),
                    esc(&lane.name(t)),
                    h.from_step,
                    h.to_step,
                    k = kind.name(),
                    c = kind.colour(),
                    op = if h.mode == crate::label::HoldMode::Write { "0.85" } else { "0.45" },
                );
                if (w - 4.0) / CHAR_W >= text.chars().count() as f64 {
                    let _ = write!(
                        self.out,
                        r##"<text class="sm" x="{:.1}" y="{:.1}" fill="#111">{}</text>"##,
                        x0 + 3.0,
                        y + 9.0,
                        esc(&text)
                    );
                }
                self.out.push('\n');
            }
        }
        top + height + 4.0
    }

    fn page_tables(&mut self, top: f64) -> f64 {
        let mut pfns: BTreeSet<u64> = self.v.spans.iter().map(|s| s.pfn).collect();
        pfns.extend(self.v.events.iter().filter_map(|e| pfn_of(e.object)));
        if pfns.is_empty() {
            return top;
        }
        let right = self.plot_right();
        let _ = writeln!(
            self.out,
            r##"<g class="band" data-band="page-tables"><rect x="4" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#fdfaf3" stroke="#d0d0d0"/><text class="ln" x="10" y="{:.1}">page tables</text></g>"##,
            right - 4.0,
            20.0 + PT_ROW * pfns.len() as f64,
            top + 15.0
        );
        let mut y = top + 20.0;
        let at_steps: BTreeSet<u64> = self.v.reports.iter().map(|r| r.at.step).collect();
        for pfn in pfns {
            let mid = y + PT_ROW / 2.0;
            let _ = writeln!(
                self.out,
                r#"<text class="s" x="{:.1}" y="{:.1}" text-anchor="end">pfn {pfn:#x}</text>"#,
                LEFT - 6.0,
                mid + 4.0
            );
            let spans: Vec<_> = self.v.spans.iter().filter(|s| s.pfn == pfn).collect();
            for (n, s) in spans.iter().enumerate() {
                let x0 = self.scale.left(s.start_step);
                let w = self.scale.right(s.end_step) - x0;
                let how = if s.freed { "freed" } else { "live at end" };
                let _ = writeln!(
                    self.out,
                    r##"<rect class="lifetime" data-pfn="{pfn:#x}" data-life="{n}" x="{x0:.1}" y="{:.1}" width="{w:.1}" height="10" rx="3" fill="#cfe3f7" stroke="#4e79a7"{dash}><title>table {pfn:#x}: steps {}–{} ({how})</title></rect>"##,
                    mid - 5.0,
                    s.start_step,
                    s.end_step,
                    dash = if s.freed { "" } else { r#" stroke-dasharray="4 2""# },
                );
                for ev in &s.events {
                    let tip = format!(
                        "step {}: {} of table {pfn:#x} by {} in {}",
                        ev.step,
                        ev.kind.name(),
                        ev.lane.name(self.v.trace),
                        self.v.event(ev.step).map_or("?", |e| e.func.as_str())
                    );
                    let x = self.x(ev.step);
                    self.out.push_str(&marker(ev.kind, x, mid, &tip));
                    self.out.push('\n');
                }
            }
            // Accesses to its entries and ptlock; red when no life of the page covers them.
            for e in self.v.events.iter().filter(|e| pfn_of(e.object) == Some(pfn)) {
                if matches!(e.object, Object::Table(_))
                    || (matches!(e.object, Object::PtLock(_)) && e.access == Access::LockFree)
                {
                    continue;
                }
                // Dead: after a recorded free and in no later life (unknown pages are not dead).
                let lives = self.v.lifetimes.tables.get(&pfn).map_or(&[][..], Vec::as_slice);
                let live = lives.iter().any(|s| s.start_step <= e.step && e.step <= s.end_step);
                let freed_before = lives.iter().any(|s| s.freed && s.end_step < e.step);
                let dead = (freed_before && !live) || at_steps.contains(&e.step);
                if !dead && self.in_gap(e.step) {
                    continue;
                }
                let x = self.x(e.step);
                let _ = writeln!(
                    self.out,
                    r##"<line class="{cl}" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{c}" stroke-width="{sw}"><title>{}</title></line>"##,
                    mid - 8.0,
                    mid + 8.0,
                    esc(&event_tooltip(e)),
                    cl = if dead { "use uaf" } else { "use" },
                    c = if dead { RACE } else { "#777" },
                    sw = if dead { 2.5 } else { 1.0 },
                );
            }
            y += PT_ROW;
        }
        y + 4.0
    }

    /// Cross-lane IPI and grace-period edges, thin.
    fn edges(&mut self) {
        for e in &self.v.edges {
            let (class, colour, marker, dash) = match e.kind {
                EdgeKind::Ipi => ("edge-ipi", "#2ca02c", "arrow-ipi", ""),
                EdgeKind::GracePeriod => {
                    ("edge-gp", "#9467bd", "arrow-gp", r#" stroke-dasharray="3 2""#)
                }
                _ => continue,
            };
            let (Some(a), Some(b)) = (self.point(e.from), self.point(e.to)) else { continue };
            let _ = writeln!(
                self.out,
                r#"<path class="{class}" d="M{:.1},{:.1} L{:.1},{:.1}" stroke="{colour}" stroke-width="1.2" fill="none"{dash} marker-end="url(#{marker})"><title>{}: step {} → {}</title></path>"#,
                a.0,
                a.1,
                b.0,
                b.1,
                e.kind.name(),
                e.from,
                e.to
            );
        }
    }

    fn point(&self, step: u64) -> Option<(f64, f64)> {
        if !self.v.is_visible(step) {
            return None;
        }
        let e = self.v.event(step)?;
        Some((self.x(step), *self.mark_y.get(&Lane::of(e.actor))?))
    }

    /// The race: a red arrow from the free to the use, for each visible report.
    fn races(&mut self) {
        for (from, to, r, cause) in self.v.race_edges() {
            let (Some(a), Some(b)) = (self.point(from), self.point(to)) else { continue };
            let lift = 26.0 + (b.0 - a.0).abs() * 0.08;
            let top = a.1.min(b.1) - lift;
            let _ = writeln!(
                self.out,
                r#"<path class="race" d="M{:.1},{:.1} C{:.1},{top:.1} {:.1},{top:.1} {:.1},{:.1}" stroke="{RACE}" stroke-width="2.2" fill="none" marker-end="url(#arrow-race)"><title>{}: {} at step {from}, used at step {to}</title></path>"#,
                a.0,
                a.1,
                a.0,
                b.0,
                b.0,
                b.1,
                esc(&r.title),
                cause.name()
            );
            let _ = writeln!(
                self.out,
                r#"<text class="sm" x="{:.1}" y="{:.1}" fill="{RACE}" text-anchor="middle">{}</text>"#,
                (a.0 + b.0) / 2.0,
                top + 10.0,
                r.kind
            );
        }
    }

    fn legend(&mut self, top: f64, width: f64) -> f64 {
        let mut items: Vec<String> = Vec::new();
        for k in LockKind::ALL {
            items.push(format!(
                r#"<rect x="0" y="-8" width="18" height="10" rx="2" fill="{c}" fill-opacity="0.85"/><text x="22" y="1">{} hold (pale: read)</text>"#,
                k.name(),
                c = k.colour()
            ));
        }
        items.push(
            r##"<rect x="0" y="-8" width="18" height="10" rx="3" fill="#cfe3f7" stroke="#4e79a7"/><text x="22" y="1">table lifetime (dashed: live at end)</text>"##
                .into(),
        );
        for k in SpanEventKind::ALL {
            items.push(format!(
                r#"{}<text x="22" y="1">{}</text>"#,
                marker(k, 9.0, -3.0, k.name()),
                k.name()
            ));
        }
        items.push(
            r##"<line x1="9" y1="-9" x2="9" y2="3" stroke="#777"/><text x="22" y="1">entry / ptlock access</text>"##.into(),
        );
        items.push(format!(
            r#"<line x1="9" y1="-9" x2="9" y2="3" stroke="{RACE}" stroke-width="2.5"/><text x="22" y="1">reported or use-after-free access</text>"#
        ));
        for (name, c) in [
            ("read", "#9aa0a6"),
            ("write", "#3c4043"),
            ("lock op (lock colour)", "#4e79a7"),
            ("lifetime", "#e15759"),
            ("ipi / rcu / tlb / irq", "#17becf"),
            ("other", "#c7c7c7"),
        ] {
            items.push(format!(
                r#"<circle cx="9" cy="-3" r="4" fill="{c}"/><text x="22" y="1">{name} step</text>"#
            ));
        }
        items.push(format!(
            r#"<path d="M0,-3 L18,-3" stroke="{RACE}" stroke-width="2.2" marker-end="url(#arrow-race)"/><text x="22" y="1">race: free (or unshare) → use</text>"#
        ));
        items.push(
            r##"<path d="M0,-3 L18,-3" stroke="#2ca02c" marker-end="url(#arrow-ipi)"/><text x="22" y="1">IPI send → handle → ack</text>"##.into(),
        );
        items.push(
            r##"<path d="M0,-3 L18,-3" stroke="#9467bd" stroke-dasharray="3 2" marker-end="url(#arrow-gp)"/><text x="22" y="1">queued → grace period → free</text>"##.into(),
        );
        let col_w = 225.0;
        let cols = (((width - 20.0) / col_w).floor() as usize).max(1);
        let _ = writeln!(
            self.out,
            r#"<g class="legend"><text class="ln" x="10" y="{:.1}">legend</text>"#,
            top + 4.0
        );
        let y0 = top + 22.0;
        for (i, item) in items.iter().enumerate() {
            let (c, r) = (i % cols, i / cols);
            let _ = writeln!(
                self.out,
                r#"<g transform="translate({:.1},{:.1})">{item}</g>"#,
                12.0 + col_w * c as f64,
                y0 + 16.0 * r as f64
            );
        }
        self.out.push_str("</g>\n");
        y0 + 16.0 * items.len().div_ceil(cols) as f64
    }
}

/// A lifetime marker shape centred on `(x, y)`.
fn marker(kind: SpanEventKind, x: f64, y: f64, tip: &str) -> String {
    let tip = esc(tip);
    let class = format!("lm lm-{}", kind.name().replace(' ', "-"));
    match kind {
        SpanEventKind::Alloc => format!(
            r##"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="4.5" fill="#2ca02c"><title>{tip}</title></circle>"##
        ),
        SpanEventKind::Share => format!(
            r##"<path class="{class}" d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} z" fill="#1f77b4"><title>{tip}</title></path>"##,
            x,
            y - 6.0,
            x + 5.0,
            y + 4.0,
            x - 5.0,
            y + 4.0
        ),
        SpanEventKind::Unshare => format!(
            r##"<path class="{class}" d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} z" fill="#ff7f0e"><title>{tip}</title></path>"##,
            x,
            y + 6.0,
            x + 5.0,
            y - 4.0,
            x - 5.0,
            y - 4.0
        ),
        SpanEventKind::QueueFree => format!(
            r##"<path class="{class}" d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} z" fill="#9467bd"><title>{tip}</title></path>"##,
            x,
            y - 6.0,
            x + 5.0,
            y,
            x,
            y + 6.0,
            x - 5.0,
            y
        ),
        SpanEventKind::PtlockFree => format!(
            r#"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="5" fill="none" stroke="{RACE}" stroke-width="2"><title>{tip}</title></circle>"#
        ),
        SpanEventKind::Free => format!(
            r##"<path class="{class}" d="M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}" stroke="#111" stroke-width="2.2"><title>{tip}</title></path>"##,
            x - 5.0,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0,
            y + 5.0,
            x + 5.0,
            y - 5.0
        ),
    }
}

fn mark_colour(e: &Event) -> &'static str {
    match e.access {
        Access::LockRead | Access::LockWrite | Access::UnlockRead | Access::UnlockWrite => {
            LockKind::of(e.object).map_or("#4e79a7", LockKind::colour)
        }
        Access::Read => "#9aa0a6",
        Access::Write => "#3c4043",
        Access::Alloc
        | Access::Share
        | Access::Unshare
        | Access::LockFree
        | Access::QueueFree
        | Access::Free => "#e15759",
        Access::IpiSend
        | Access::IpiHandle
        | Access::IpiWait
        | Access::GracePeriod
        | Access::TlbFlush
        | Access::IrqDisable
        | Access::IrqEnable
        | Access::RcuReadLock
        | Access::RcuReadUnlock => "#17becf",
        Access::Local => "#c7c7c7",
    }
}

/// `step 12 CPU0 follow_hugetlb_page: lock R mmap_lock[mm0] (mmap_read_lock)`.
fn event_tooltip(e: &Event) -> String {
    let mut s = format!(
        "step {} {} {}: {} {}",
        e.step,
        actor_label(e.actor),
        e.func,
        access_label(e.access),
        object_label(e.object)
    );
    if !e.detail.is_empty() {
        let _ = write!(s, " ({})", e.detail);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{busy, seed_race, OTHER, SHARED};

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).expect("well-formed SVG")
    }

    fn with_class<'a>(
        doc: &'a roxmltree::Document<'a>,
        class: &str,
    ) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| n.attribute("class").is_some_and(|c| c.split(' ').any(|c| c == class)))
            .collect()
    }

    fn title_of(n: roxmltree::Node) -> String {
        n.children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn seed_race_svg_has_lanes_lifetime_holds_and_race() {
        let svg = render_svg(&seed_race(), &RenderOptions::default());
        let doc = parse(&svg);
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let lanes: Vec<_> =
            with_class(&doc, "lane").iter().filter_map(|n| n.attribute("data-lane")).collect();
        assert_eq!(lanes, ["setup", "cpu0", "cpu1", "cpu2", "rcu"]);
        assert_eq!(lanes.iter().filter(|l| l.starts_with("cpu")).count(), 3);

        let lives: Vec<_> = with_class(&doc, "lifetime");
        let shared = format!("{SHARED:#x}");
        let life = lives.iter().find(|n| n.attribute("data-pfn") == Some(shared.as_str())).unwrap();
        assert!(title_of(*life).contains("steps 0–21 (freed)"), "{}", title_of(*life));
        for m in
            ["lm-alloc", "lm-share", "lm-unshare", "lm-queue-free", "lm-free", "lm-ptlock-freed"]
        {
            let on_shared = with_class(&doc, m)
                .iter()
                .filter(|n| title_of(**n).contains("table 0x1003"))
                .count();
            assert_eq!(on_shared, 1, "{m}");
        }
        for lock in ["lock-vma_lock", "lock-i_mmap_rwsem"] {
            let holds = with_class(&doc, lock);
            assert_eq!(holds.len(), 1, "{lock}");
            assert!(title_of(holds[0]).contains(" W by CPU1"), "{}", title_of(holds[0]));
        }
        let mmap: Vec<_> =
            with_class(&doc, "lock-mmap_lock").iter().map(|n| title_of(*n)).collect();
        assert!(mmap.iter().any(|t| t.contains("still held at end")), "{mmap:?}");
        assert!(svg.contains(">vma_lock W<"));

        let race = with_class(&doc, "race");
        assert_eq!(race.len(), 1);
        assert_eq!(race[0].attribute("stroke"), Some(RACE));
        assert!(title_of(race[0]).contains("freed at step 15, used at step 23"));
        assert_eq!(with_class(&doc, "uaf").len(), 1, "the dead ptlock taken");
        assert!(svg.contains("BUG: KASAN: use-after-free in huge_pte_lock"));
        assert_eq!(with_class(&doc, "edge-ipi").len(), 2);
        assert_eq!(with_class(&doc, "edge-gp").len(), 2);
        assert!(with_class(&doc, "legend").len() == 1);
        let marks = with_class(&doc, "mark");
        assert_eq!(marks.len(), seed_race().events.len());
        assert!(marks.iter().any(|m| title_of(*m).contains("follow_hugetlb_page")));
    }

    #[test]
    fn focus_keeps_one_page_and_window_cuts_steps() {
        let t = seed_race();
        let full = render_svg(&t, &RenderOptions::default());
        let focus = render_svg(&t, &RenderOptions { focus_pfn: Some(SHARED), window: None });
        let doc = parse(&focus);
        let pfns: BTreeSet<_> =
            with_class(&doc, "lifetime").iter().filter_map(|n| n.attribute("data-pfn")).collect();
        assert_eq!(pfns.into_iter().collect::<Vec<_>>(), ["0x1003"]);
        assert_eq!(with_class(&doc, "race").len(), 1);
        assert!(with_class(&doc, "mark").len() < t.events.len());
        assert!(!focus.contains(&format!("pfn {OTHER:#x}")));
        assert!(focus.len() < full.len());

        let win = render_svg(&t, &RenderOptions { focus_pfn: None, window: Some((5, 12)) });
        let doc = parse(&win);
        assert_eq!(with_class(&doc, "mark").len(), 8);
        assert!(with_class(&doc, "race").is_empty(), "free and use are outside the window");
    }

    #[test]
    fn long_quiet_loops_are_squeezed() {
        let t = crate::fixture::with_quiet_loop(3000);
        let svg = render_svg(&t, &RenderOptions::default());
        let doc = parse(&svg);
        let w: f64 = doc.root_element().attribute("width").unwrap().parse().unwrap();
        assert!(w <= 1600.0, "width {w}");
        assert_eq!(with_class(&doc, "gap").len(), 1);
        let summary = with_class(&doc, "gap-summary");
        assert_eq!(summary.len(), 1);
        assert!(title_of(summary[0]).contains("free_pgd_range"), "{}", title_of(summary[0]));
        assert!(with_class(&doc, "mark").len() < 100);
        assert_eq!(with_class(&doc, "race").len(), 1, "the race survives the squeeze");
        // A window inside the loop is drawn step by step again.
        let win = render_svg(&t, &RenderOptions { focus_pfn: None, window: Some((1000, 1100)) });
        assert_eq!(with_class(&parse(&win), "mark").len(), 101);
    }

    #[test]
    fn readable_at_three_cpus_by_two_hundred_steps() {
        let t = busy(200);
        let svg = render_svg(&t, &RenderOptions::default());
        let doc = parse(&svg);
        let w: f64 = doc.root_element().attribute("width").unwrap().parse().unwrap();
        assert!((1000.0..=1600.0).contains(&w), "width {w}");
        assert_eq!(svg, render_svg(&t, &RenderOptions::default()));
    }
}
