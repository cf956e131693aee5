//! End to end: the meta-learner learns on real data, and `heldout run` is deterministic and
//! leaves a complete run folder.

fn run_demo(out: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
        .args([
            "run",
            "--demo",
            "--set",
            "episodes.count=2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[test]
fn the_demo_run_is_deterministic_and_complete() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let oa = run_demo(a.path());
    assert!(
        oa.status.success(),
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    let ob = run_demo(b.path());
    assert!(ob.status.success());
    let folder = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    let (fa, fb) = (folder(a.path()), folder(b.path()));
    let ma = std::fs::read_to_string(fa.join("metrics.csv")).unwrap();
    assert_eq!(
        ma,
        std::fs::read_to_string(fb.join("metrics.csv")).unwrap(),
        "same file + seed → same metrics"
    );
    // 6 held-out families × 2 methods
    assert_eq!(ma.lines().count(), 1 + 12, "{ma}");
    for f in [
        "config.ron",
        "checkpoints.csv",
        "pcgrad.csv",
        "histograms.csv",
        "curves.csv",
        "scores.csv",
        "summary.md",
        "status.txt",
    ] {
        assert!(fa.join(f).exists(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(fa.join("status.txt"))
            .unwrap()
            .trim(),
        "finished"
    );
    let cfg = std::fs::read_to_string(fa.join("config.ron")).unwrap();
    assert!(
        cfg.contains("count: 2"),
        "config.ron records the override: {cfg}"
    );
    assert!(std::fs::read_dir(fa.join("models")).unwrap().count() >= 12);

    // `heldout eval` reads the run's scores like any other tool's, with a per-family table.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
        .args([
            "eval",
            fa.join("scores.csv").to_str().unwrap(),
            "--score",
            "score",
            "--label",
            "label",
            "--family",
            "rotation",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    for fam in ["Burst", "Drift", "Flood", "Mimic", "Rare", "Scan"] {
        assert!(text.contains(fam), "{fam} missing from the family table");
    }
}
