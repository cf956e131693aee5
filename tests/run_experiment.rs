//! End to end: the meta-learner learns on real data, and `heldout run` is deterministic and
//! leaves a complete run folder.

mod common;

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
    // 6 held-out families × 2 methods × 4 threshold policies (τ*, normals-only 1 % and 5 %,
    // worst seen family)
    assert_eq!(ma.lines().count(), 1 + 48, "{ma}");
    assert_eq!(ma.matches(",val_fpr_0.05,").count(), 12, "{ma}");
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
    let out = common::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_heldout")).args([
            "eval",
            fa.join("scores.csv").to_str().unwrap(),
            "--score",
            "score",
            "--label",
            "label",
            "--family",
            "rotation",
            "--json",
        ]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    for fam in ["Burst", "Drift", "Flood", "Mimic", "Rare", "Scan"] {
        assert!(text.contains(fam), "{fam} missing from the family table");
    }
}

#[test]
fn ctrl_c_stops_within_a_second_and_leaves_a_readable_folder() {
    stops_on_signal("-INT");
}

/// `kill`, `timeout` and job schedulers send SIGTERM: the same orderly stop.
#[test]
fn sigterm_stops_like_ctrl_c() {
    stops_on_signal("-TERM");
}

fn stops_on_signal(signal: &str) {
    let out = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
        .args([
            "run",
            "--demo",
            "--set",
            "episodes.count=20",
            "--out",
            out.path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // let it finish at least one unit, then interrupt; a run that ends or hangs first fails
    // the test with its stderr instead of hanging the suite
    let started = std::time::Instant::now();
    let folder = loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("heldout run ended ({status}) before a unit finished; stderr:\n{err}");
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            let _ = child.kill();
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("no unit finished within 300 s; stderr:\n{err}");
        }
        if let Some(Ok(e)) = std::fs::read_dir(out.path()).unwrap().next() {
            let m = e.path().join("metrics.csv");
            if std::fs::read_to_string(&m)
                .map(|t| t.lines().count() > 1)
                .unwrap_or(false)
            {
                break e.path();
            }
        }
    };
    let t0 = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let waited = t0.elapsed();
    assert!(
        waited.as_secs_f64() < 1.5,
        "{signal}: stopped after {waited:?}"
    );
    assert_eq!(code, Some(130));
    let st = std::fs::read_to_string(folder.join("status.txt")).unwrap();
    assert!(st.starts_with("stopped"), "{st}");
    let metrics = std::fs::read_to_string(folder.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("method,seed,held_out"));
    assert!(metrics.lines().count() >= 2);
    assert!(folder.join("summary.md").exists() && folder.join("config.ron").exists());
}
