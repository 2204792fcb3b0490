//! End-to-end tests of `mmsim book`: generation is deterministic to the byte, and `--check`
//! names every missing, stale or foreign file and exits 1.

mod common;
use common::{fresh_dir, mmsim, stderr};

#[test]
fn generation_is_deterministic_and_check_names_stale_files() {
    let (a, b) = (fresh_dir("book", "a"), fresh_dir("book", "b"));
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());

    let o = mmsim(&["book", "--check", "--out", sa]);
    assert_eq!(o.status.code(), Some(1), "an empty directory is stale");
    assert!(stderr(&o).contains("gup-vs-unshare.svg: missing"), "{}", stderr(&o));

    for d in [sa, sb] {
        let o = mmsim(&["book", "--out", d]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let mut names: Vec<_> =
        std::fs::read_dir(&a).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for ext in ["svg", "mmd", "md"] {
        assert!(names.iter().any(|n| n.to_string_lossy() == format!("gup-vs-unshare.{ext}")));
    }
    for n in &names {
        assert!(
            std::fs::read(a.join(n)).unwrap() == std::fs::read(b.join(n)).unwrap(),
            "{n:?} differs between two runs"
        );
    }
    let o = mmsim(&["book", "--check", "--out", sa]);
    assert_eq!(o.status.code(), Some(0), "fresh output is current: {}", stderr(&o));

    let snippet = std::fs::read_to_string(a.join("gup-vs-unshare.md")).unwrap();
    assert!(snippet.contains("violation") && snippet.contains("mmsim run gup-vs-unshare --seed"));
    let svg = std::fs::read_to_string(a.join("gup-vs-unshare.svg")).unwrap();
    assert!(roxmltree::Document::parse(&svg).is_ok() && svg.contains(r#"class="race""#));

    std::fs::write(a.join("fault-vs-unshare.mmd"), "sequenceDiagram\n").unwrap();
    std::fs::write(a.join("old-scenario.svg"), "<svg/>").unwrap();
    let o = mmsim(&["book", "--check", "--out", sa]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("fault-vs-unshare.mmd: differs"), "{err}");
    assert!(err.contains("old-scenario.svg: not generated"), "{err}");
    assert!(err.contains("cargo run -p mmsim -- book"), "{err}");
}
