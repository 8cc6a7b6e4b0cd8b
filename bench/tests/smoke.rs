//! Runs `coro-bench --quick` and checks that it measures every contender and prints the ratios.

use std::process::Command;

#[test]
fn quick_run_prints_the_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_coro-bench")).arg("--quick").output().expect("run coro-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "coro-bench --quick failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "switch round trip",
        "create + run to completion + destroy",
        "coro (C ABI)",
        "coro (Rust API)",
        "corosensei 0.3",
        "ratio vs corosensei",
        "target:",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    // Every row has a finite, positive median.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains(" ns   [")).collect();
    let switch_rows = if cfg!(have_boost_context) { 5 } else { 4 };
    assert_eq!(rows.len(), switch_rows + 5, "expected {switch_rows} switch rows and 5 create rows:\n{stdout}");
    for row in rows {
        let median: f64 = row
            .split(" ns ")
            .next()
            .and_then(|s| s.split_whitespace().last())
            .map(|s| s.trim_end_matches('k'))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no median in {row:?}"));
        assert!(median.is_finite() && median > 0.0, "bad median in {row:?}");
    }
}
