//! End-to-end tests of `mmsim arch list` and `mmsim arch show`.

mod common;
use common::{mmsim, stdout};

#[test]
fn arch_list_has_one_row_per_config_with_sizes_policies_and_sharing() {
    let r = mmsim(&["arch", "list"]);
    assert_eq!(r.status.code(), Some(0));
    let out = stdout(&r);
    let header = out.lines().next().unwrap();
    for col in ["config", "format", "levels", "PMD_SIZE", "PUD_SIZE", "table free", "TLB flush"] {
        assert!(header.contains(col), "{col} missing in {header:?}");
    }
    for c in mmsim_arch::configs() {
        assert!(
            out.lines().any(|l| l.split_whitespace().next() == Some(c.name)),
            "{} has no row:\n{out}",
            c.name
        );
    }
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("x86_64"), "x86_64 x86_64 4 2 MiB 1 GiB after flush IPI yes");
    assert_eq!(row("x86_64-la57"), "x86_64-la57 x86_64-la57 5 2 MiB 1 GiB after flush IPI yes");
    assert_eq!(row("arm64-16k"), "arm64-16k arm64-16k-va47 3 32 MiB 64 GiB RCU broadcast yes");
    assert!(row("arm64-16k-va36").ends_with("RCU broadcast no: 2 levels, PMD folded"));
    assert!(row("arm64-64k").contains("512 MiB 4 TiB"));
    assert!(row("arm64-64k").contains("no: ARCH_WANT_HUGE_PMD_SHARE not selected"));
    assert!(row("riscv64-sv57-sbi").ends_with("5 2 MiB 1 GiB RCU SBI rfence yes"));
    assert!(row("x86_64-paravirt").contains("RCU paravirt yes"));
}

#[test]
fn arch_list_table_free_follows_the_profile_and_set() {
    let col = |args: &[&str], name: &str| {
        let out = stdout(&mmsim(args));
        let row = out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap();
        row.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    assert!(col(&["arch", "list", "--profile", "v6.14"], "x86_64").contains("after flush IPI"));
    assert!(col(&["arch", "list", "--profile", "v6.15"], "x86_64").contains("1 GiB RCU IPI"));
    assert!(col(&["arch", "list", "--profile", "v6.15"], "x86_64-la57").contains("RCU IPI"));
    let no_rcu = ["arch", "list", "--set", "rcu_table_free=false"];
    assert!(col(&no_rcu, "arm64-4k").contains("after flush broadcast"));
    let r = mmsim(&["arch", "list", "--profile", "v9.9"]);
    assert_eq!(r.status.code(), Some(2));
    let r = mmsim(&["arch", "list", "--set", "rcu_table_free=maybe"]);
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn arch_show_describes_levels_sizes_and_why_not_shared() {
    let r = mmsim(&["arch", "show", "arm64-16k"]);
    assert_eq!(r.status.code(), Some(0));
    let out = stdout(&r);
    assert!(out.starts_with("arm64-16k: arm64 16K granule, VA_BITS=47"), "{out}");
    assert!(out.contains("table free: Rcu, TLB flush: Broadcast"), "{out}");
    assert!(out.contains("PMD_SIZE 32 MiB (L2 entries), PUD_SIZE 64 GiB"), "{out}");
    assert!(out.contains("2048"), "16K tables have 2048 entries: {out}");

    let out = stdout(&mmsim(&["arch", "show", "arm64-16k-va36"]));
    assert!(out.contains("hugetlb PMD sharing: no: the PMD level is folded into the PGD"), "{out}");

    let out = stdout(&mmsim(&["arch", "show", "x86_64-la57"]));
    assert!(out.contains("5 levels") && out.contains("p4d"), "{out}");
}

#[test]
fn arch_show_of_an_unknown_name_is_a_usage_error_listing_the_names() {
    for args in [vec!["arch", "show", "vax"], vec!["arch", "show"], vec!["arch", "frob"]] {
        let r = mmsim(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&r.stderr).contains("panicked"));
    }
    let e = String::from_utf8_lossy(&mmsim(&["arch", "show", "vax"]).stderr).into_owned();
    assert!(
        e.contains("unknown architecture configuration `vax`") && e.contains("arm64-4k"),
        "{e}"
    );
}
