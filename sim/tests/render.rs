//! End-to-end tests of `mmsim render`: the README's seed-race trace drawn in every format,
//! byte-identical twice, the SVG parsed as XML and checked for what a reader must see, and bad
//! usage exiting 2 with a message that names the problem.

mod common;
use common::{mmsim, stderr};

use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmsim-render-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The README's command: v6.1 finds the seed race within 1000 seeds and writes its trace.
fn race_trace() -> &'static str {
    static TRACE: OnceLock<String> = OnceLock::new();
    TRACE.get_or_init(|| {
        let path = dir().join("race.ron");
        let p = path.to_str().unwrap().to_string();
        let r = mmsim(&["run", "gup-vs-unshare", "--seeds", "1000", "-o", &p]);
        assert_eq!(r.status.code(), Some(1), "the seed race is found: {}", stderr(&r));
        p
    })
}

fn render(format: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["render", race_trace(), "--format", format];
    args.extend_from_slice(extra);
    let o = mmsim(&args);
    assert_eq!(o.status.code(), Some(0), "render {format}: {}", stderr(&o));
    assert!(!o.stdout.is_empty(), "render {format} printed nothing");
    o.stdout
}

#[test]
fn every_format_renders_the_race_identically_twice() {
    for format in ["svg", "dot", "mermaid", "perfetto"] {
        let a = render(format, &[]);
        let b = render(format, &[]);
        assert!(a == b, "{format}: two renders of one trace differ");
        // -o writes the same bytes, atomically (no temporary file left behind)
        let out = dir().join(format!("race.{format}"));
        let o = mmsim(&["render", race_trace(), "--format", format, "-o", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(o.stdout.is_empty(), "-o prints nothing on stdout");
        assert!(std::fs::read(&out).unwrap() == a, "{format}: -o differs from stdout");
        assert!(!dir().join(format!(".race.{format}.tmp")).exists());
    }
    let dot = String::from_utf8(render("dot", &[])).unwrap();
    assert!(dot.starts_with("digraph") && dot.contains("#d62728"), "DOT has the red race");
    let mermaid = String::from_utf8(render("mermaid", &[])).unwrap();
    assert!(mermaid.starts_with("sequenceDiagram") || mermaid.contains("\nsequenceDiagram"));
    assert!(mermaid.contains("follow_hugetlb_page"));
    let json = String::from_utf8(render("perfetto", &[])).unwrap();
    assert!(
        json.trim_start().starts_with('{') && json.contains("\"traceEvents\""),
        "Perfetto JSON"
    );
}

#[test]
fn svg_shows_lanes_holds_the_shared_table_and_the_red_race() {
    let svg = String::from_utf8(render("svg", &[])).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let class = |n: &roxmltree::Node, c: &str| {
        n.attribute("class").is_some_and(|a| a.split(' ').any(|x| x == c))
    };
    let title = |n: roxmltree::Node| {
        n.children()
            .find(|c| c.tag_name().name() == "title")
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_string()
    };
    let all: Vec<_> = doc.descendants().filter(|n| n.is_element()).collect();

    let cpu_lanes: Vec<_> = all
        .iter()
        .filter(|n| class(n, "lane"))
        .filter_map(|n| n.attribute("data-lane"))
        .filter(|l| l.starts_with("cpu"))
        .collect();
    assert_eq!(cpu_lanes, ["cpu0", "cpu1", "cpu2"], "three CPU lanes");

    for lock in ["vma_lock", "i_mmap_rwsem"] {
        let holds = all.iter().filter(|n| class(n, &format!("lock-{lock}"))).count();
        assert!(holds > 0, "no {lock} hold drawn");
    }

    // The reported table: the one the race edge's report names, alive from its allocation
    // to its free, shared and unshared on the way.
    // the seed race's run reports the dead ptlock (huge_pte_lock) and the freed table
    // (follow_hugetlb_page): one red edge from each free to its use
    let trace = mmsim_traces::read(std::path::Path::new(race_trace())).unwrap();
    let race: Vec<_> = all.iter().filter(|n| class(n, "race")).collect();
    assert_eq!(race.len(), trace.reports.len(), "one race edge per report");
    assert!(race.len() >= 2, "the ptlock and the table: {}", trace.reports.len());
    assert!(race.iter().all(|r| r.attribute("stroke") == Some("#d62728")), "race edges are red");
    assert!(race.iter().any(|r| title(**r).contains("follow_hugetlb_page")), "no walk edge");
    assert!(race.iter().any(|r| title(**r).contains("huge_pte_lock")), "no ptlock edge");
    let pfn = match trace.reports[0].object {
        Some(mmsim_traces::Object::Table(p) | mmsim_traces::Object::PtLock(p)) => p,
        ref o => panic!("report object {o:?}"),
    };
    let pfn_attr = format!("{pfn:#x}");
    let life: Vec<_> = all
        .iter()
        .filter(|n| class(n, "lifetime") && n.attribute("data-pfn") == Some(&pfn_attr))
        .collect();
    assert_eq!(life.len(), 1, "one lifetime bar for table {pfn_attr}");
    assert!(title(*life[0]).contains("(freed)"), "{}", title(*life[0]));
    let marks: Vec<String> = all
        .iter()
        .filter(|n| class(n, "lm"))
        .map(|n| title(*n))
        .filter(|t| t.contains(&format!("table {pfn_attr}")))
        .collect();
    for what in ["alloc", "share", "unshare", "free"] {
        assert!(
            marks.iter().any(|t| t.contains(&format!(": {what} of table"))),
            "no {what} marker on table {pfn_attr}: {marks:?}"
        );
    }
}

#[test]
fn focus_and_window_shrink_the_picture() {
    let full = render("svg", &[]);
    let focus = render("svg", &["--focus", "0x1003"]);
    let window = render("svg", &["--window", "60..100"]);
    assert!(focus.len() < full.len() && window.len() < full.len());
    assert!(!render("dot", &["--window", "60..100", "--focus", "4099"]).is_empty());
}

#[test]
fn bad_usage_exits_2_naming_the_problem() {
    let t = race_trace();
    let cases: &[(&[&str], &str)] = &[
        (&["render", t, "--format", "png"], "unknown format `png`"),
        (&["render", t, "--window", "9..3"], "FROM (9) is after TO (3)"),
        (&["render", t, "--window", "3-9"], "is not FROM..TO"),
        (&["render", t, "--window", "900000..900010"], "holds no step of the trace"),
        (&["render", t, "--focus", "abc"], "`abc` is not a number"),
        (&["render", t, "--focus", "0x7777"], "no page-table page with that pfn"),
        (&["render", "/nonexistent/race.ron"], "/nonexistent/race.ron"),
    ];
    for (args, msg) in cases {
        let o = mmsim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: expected `{msg}` in: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    }
    let not_a_trace = dir().join("not-a-trace.ron");
    std::fs::write(&not_a_trace, "Scenario(name: \"x\")").unwrap();
    let o = mmsim(&["render", not_a_trace.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not-a-trace.ron"), "{}", stderr(&o));
}
