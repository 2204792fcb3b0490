//! The SVG x axis: step number to pixels, linear with a minimum spacing, except that long
//! quiet stretches (no lock op, lifetime event, IPI, RCU or TLB step, no report endpoint) are
//! squeezed into a short break so a 3 000-step loop does not push the race off the page.
//!
//! Owns only the mapping; which steps are quiet is decided by the caller.

use std::collections::BTreeSet;

/// Target width of the plot for a trace without gaps.
const TARGET_PLOT_WIDTH: f64 = 1100.0;
const MIN_DX: f64 = 5.0;
const MAX_DX: f64 = 28.0;
/// Quiet stretches shorter than this stay linear.
const GAP_MIN: u64 = 40;
/// Steps of context kept linear on each side of a squeezed stretch.
const GAP_MARGIN: u64 = 3;
/// Width of a squeezed stretch, in ordinary steps.
const GAP_STEPS: f64 = 6.0;
/// Traces this short are never squeezed.
const SQUEEZE_OVER: u64 = 120;

/// A squeezed stretch of steps `from..=to`, drawn from `x0` over `width` pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Gap {
    pub from: u64,
    pub to: u64,
    pub x0: f64,
    pub width: f64,
}

impl Gap {
    pub fn len(&self) -> u64 {
        self.to - self.from + 1
    }

    pub fn contains(&self, step: u64) -> bool {
        self.from <= step && step <= self.to
    }
}

pub(crate) struct XScale {
    lo: u64,
    hi: u64,
    left: f64,
    /// Pixels per ordinary step.
    pub dx: f64,
    pub gaps: Vec<Gap>,
}

impl XScale {
    /// A scale for steps `lo..=hi` starting at pixel `left`; `busy` are the steps that must
    /// stay readable.
    pub fn new(lo: u64, hi: u64, left: f64, busy: &BTreeSet<u64>) -> XScale {
        let mut quiet: Vec<(u64, u64)> = Vec::new();
        if hi - lo + 1 > SQUEEZE_OVER {
            let mut start = lo;
            for s in busy.range(lo..=hi).copied().chain(std::iter::once(hi + 1)) {
                let (a, b) = (start + GAP_MARGIN, s.saturating_sub(GAP_MARGIN + 1));
                if s > start && b >= a && b - a + 1 >= GAP_MIN {
                    quiet.push((a, b));
                }
                start = s + 1;
            }
        }
        let squeezed: u64 = quiet.iter().map(|(a, b)| b - a + 1).sum();
        let effective = (hi - lo + 1 - squeezed) as f64 + GAP_STEPS * quiet.len() as f64;
        let dx = (TARGET_PLOT_WIDTH / effective).clamp(MIN_DX, MAX_DX);
        let mut gaps = Vec::with_capacity(quiet.len());
        let (mut x, mut next) = (left, lo);
        for (a, b) in quiet {
            x += (a - next) as f64 * dx;
            let width = GAP_STEPS * dx;
            gaps.push(Gap { from: a, to: b, x0: x, width });
            x += width;
            next = b + 1;
        }
        XScale { lo, hi, left, dx, gaps }
    }

    /// The gap holding `step`, if squeezed.
    pub fn gap_of(&self, step: u64) -> Option<&Gap> {
        let i = self.gaps.partition_point(|g| g.from <= step);
        self.gaps[..i].last().filter(|g| g.contains(step))
    }

    /// Width of one step at `step`.
    pub fn step_width(&self, step: u64) -> f64 {
        self.gap_of(step).map_or(self.dx, |g| g.width / g.len() as f64)
    }

    /// Left edge of `step`'s slot.
    pub fn left(&self, step: u64) -> f64 {
        let step = step.clamp(self.lo, self.hi.max(self.lo));
        let i = self.gaps.partition_point(|g| g.from <= step);
        match self.gaps[..i].last() {
            Some(g) if g.contains(step) => g.x0 + (step - g.from) as f64 * g.width / g.len() as f64,
            Some(g) => g.x0 + g.width + (step - g.to - 1) as f64 * self.dx,
            None => self.left + (step - self.lo) as f64 * self.dx,
        }
    }

    /// Centre of `step`'s slot.
    pub fn center(&self, step: u64) -> f64 {
        self.left(step) + self.step_width(step) / 2.0
    }

    /// Right edge of `step`'s slot.
    pub fn right(&self, step: u64) -> f64 {
        self.left(step) + self.step_width(step)
    }

    /// Right edge of the plot.
    pub fn end(&self) -> f64 {
        self.right(self.hi)
    }

    /// Labelled steps: multiples of 1, 2, 5, 10, ... at least 45 px apart, outside gaps.
    pub fn ticks(&self) -> Vec<u64> {
        let mut tick = 1u64;
        'find: for base in (0..19).map(|e| 10u64.pow(e)) {
            for m in [1, 2, 5] {
                if (base * m) as f64 * self.dx >= 45.0 {
                    tick = base * m;
                    break 'find;
                }
            }
        }
        (self.lo.div_ceil(tick)..=self.hi / tick)
            .map(|k| k * tick)
            .filter(|&s| self.gap_of(s).is_none())
            .filter(|&s| {
                // Keep labels clear of the gaps' own labels.
                let x = self.center(s);
                self.gaps.iter().all(|g| (x - (g.x0 + g.width / 2.0)).abs() >= 36.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_traces_are_linear() {
        let x = XScale::new(0, 99, 10.0, &BTreeSet::new());
        assert!(x.gaps.is_empty());
        assert_eq!(x.dx, 11.0);
        assert_eq!(x.left(3), 10.0 + 33.0);
        assert_eq!(x.ticks()[..3], [0, 5, 10]);
    }

    #[test]
    fn long_quiet_stretches_are_squeezed_and_monotone() {
        let busy: BTreeSet<u64> = [0, 10, 20, 3000, 3005].into();
        let x = XScale::new(0, 3010, 0.0, &busy);
        assert_eq!(x.gaps.len(), 1);
        let g = x.gaps[0];
        assert_eq!((g.from, g.to), (24, 2996));
        assert!(x.end() < 1200.0, "{}", x.end());
        let mut prev = -1.0;
        for s in 0..=3010 {
            let c = x.center(s);
            assert!(c > prev, "step {s}");
            prev = c;
        }
        assert!(x.ticks().iter().all(|&t| x.gap_of(t).is_none()));
    }
}
