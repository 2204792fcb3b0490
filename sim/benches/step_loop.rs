//! The step loop: one whole execution of a built-in scenario (setup, the concurrent phase
//! under a strategy, teardown, final checks), with tracing off and on. `cargo bench -p mmsim`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mmsim::engine::strategy::RandomPriorities;
use mmsim::explore::{Config, StrategyKind};
use mmsim::run::{execute, Prepared, Request, DEFAULT_DEPTH};
use mmsim::scenario::Source;
use std::hint::black_box;

fn prepared(name: &str, profile: &str) -> Prepared {
    Prepared::new(&Request {
        source: Source::load(name).unwrap(),
        arch: Some("x86_64".into()),
        profile: Some(profile.into()),
        set: vec![],
    })
    .unwrap()
}

fn step_loop(c: &mut Criterion) {
    for (name, profile) in [("gup-vs-unshare", "v6.3"), ("fault-vs-unshare", "v6.1")] {
        let p = prepared(name, profile);
        // steps of seed 0, for a steps/s throughput figure
        let steps =
            execute(&p.env, &mut RandomPriorities::new(0, &p.lengths, DEFAULT_DEPTH), false)
                .unwrap()
                .steps;
        let mut g = c.benchmark_group(format!("{name}-{profile}"));
        g.throughput(Throughput::Elements(steps));
        let mut seed = 0u64;
        // one benchmark per strategy: a new strategy in `StrategyKind::ALL` gets its own
        for kind in StrategyKind::ALL {
            let cfg = Config { strategy: kind, ..Config::default() };
            g.bench_function(format!("{}/untraced", kind.cli_name()), |b| {
                b.iter(|| {
                    seed += 1;
                    let mut s = cfg.build(&p, seed % 64);
                    let configured = s.configure(&p.env);
                    let env = configured.as_ref().unwrap_or(&p.env);
                    black_box(execute(env, &mut *s, false).unwrap().steps)
                })
            });
        }
        g.bench_function("random/traced", |b| {
            b.iter(|| {
                seed += 1;
                let mut s = RandomPriorities::new(seed % 64, &p.lengths, DEFAULT_DEPTH);
                black_box(execute(&p.env, &mut s, true).unwrap().check.events.len())
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = step_loop
}
criterion_main!(benches);
