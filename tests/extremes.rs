//! Issue 20, tested the way it was found: every number of every experiment file in
//! `experiments/` set, one at a time, to an extreme (0, 1, 2^32, 2^64 − 1, 1e308, NaN, inf, and
//! the hand-typed widths of the report), then validated as `heldout validate` does (in process:
//! parse, check, load the data, build the plan, estimate the cost and refuse what cannot fit in
//! memory — a panic is caught and fails the test); and every
//! variant of `experiments/demo.ron` that validates is also *run* by the real binary for a
//! bounded time (then stopped with SIGINT, as Ctrl-C does). No variant may panic, abort or be
//! killed by the system, and every refusal is one `error:` line.
//!
//! The runs are limited to the demo's variants: the method and episode numbers are the same
//! fields in every file, and the other files' data is slower to load than the run bound.

use heldout::experiment::{plan_load_data, Experiment, Plan};
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXTREMES: [&str; 9] = [
    "0",
    "1",
    "4294967296",
    "18446744073709551615",
    "1e308",
    "NaN",
    "inf",
    "-1",
    "100000000",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Byte ranges of the numeric literals of a RON text, comments left out.
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if starts {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            out.push((s, i));
            continue;
        }
        i += 1;
    }
    out
}

/// The variants of one file: (what was changed, the new text).
fn variants(text: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (s, e) in numbers(text) {
        let line = text[..s].matches('\n').count() + 1;
        for x in EXTREMES {
            if &text[s..e] == x {
                continue;
            }
            let mut t = String::with_capacity(text.len() + 24);
            t.push_str(&text[..s]);
            t.push_str(x);
            t.push_str(&text[e..]);
            v.push((format!("line {line}: {} → {x}", &text[s..e]), t));
        }
    }
    v
}

/// What `heldout validate` does, in process; Err is the refusal's text.
fn validate(path: &Path, cache: &mut HashMap<String, heldout::data::Table>) -> Result<(), String> {
    let exp = Experiment::load(path, &[]).map_err(|e| format!("{e:#}"))?;
    let key = format!("{:?}", exp.experiment().data);
    if !cache.contains_key(&key) {
        let t = plan_load_data(&exp, exp.base()).map_err(|e| format!("{e:#}"))?;
        cache.insert(key.clone(), t);
    }
    Plan::build(&exp, &cache[&key], 3).map_err(|e| format!("{e:#}"))?;
    // the cost estimate, and the refusal of what cannot fit in memory
    let est = heldout::experiment::Estimate::of(&exp, &cache[&key])?;
    assert!(
        est.peak_bytes.is_finite() && est.total_seconds >= 0.0,
        "{}: estimate {} B, {} s",
        path.display(),
        est.peak_bytes,
        est.total_seconds
    );
    est.check_memory(&exp)
}

/// Runs the binary on `file` for at most `bound`, then stops it as Ctrl-C does; returns
/// (exit status, stderr).
fn run_bounded(file: &Path, out: &Path, bound: Duration) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heldout"))
        .args(["run"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .env("HELDOUT_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut stopped = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if !stopped && t0.elapsed() > bound {
            // SIGINT, as Ctrl-C: the run stops within a second and keeps what it had
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            stopped = true;
        }
        if t0.elapsed() > bound + Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("{}: did not stop within 20 s of SIGINT", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

#[test]
fn every_number_of_every_experiment_file_at_an_extreme_is_refused_or_runs() {
    let dir = root().join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    // the variants sit at the same depth as experiments/, so their relative data paths hold
    let work = tempfile::tempdir_in(root()).unwrap();
    let (mut refused, mut accepted, mut ran) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f).unwrap();
        let mut cache = HashMap::new();
        for (i, (what, t)) in variants(&text).into_iter().enumerate() {
            let p = work.path().join(format!("{i}-{name}"));
            std::fs::write(&p, &t).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| validate(&p, &mut cache)));
            match r {
                Err(_) => failures.push(format!("{name} {what}: validation panicked")),
                Ok(Err(e)) => {
                    refused += 1;
                    if e.trim().is_empty() || e.trim().lines().count() > 1 {
                        failures.push(format!("{name} {what}: refusal not one line: {e:?}"));
                    }
                }
                Ok(Ok(())) => {
                    accepted += 1;
                    if name != "demo.ron" {
                        continue;
                    }
                    let out = work.path().join(format!("run-{i}"));
                    let (status, err) = run_bounded(&p, &out, Duration::from_secs(2));
                    ran += 1;
                    if let Some(sig) = status.signal() {
                        failures.push(format!("{name} {what}: run killed by signal {sig}: {err}"));
                    } else if err.contains("panicked") {
                        failures.push(format!("{name} {what}: run panicked: {err}"));
                    } else if !status.success() && status.code() != Some(130) {
                        let errors: Vec<&str> =
                            err.lines().filter(|l| l.starts_with("error:")).collect();
                        if errors.len() != 1 {
                            failures.push(format!(
                                "{name} {what}: run failed (exit {:?}) without one error line: {err}",
                                status.code()
                            ));
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "{} files: {refused} variants refused, {accepted} accepted, {ran} of those run",
        files.len()
    );
    assert!(
        refused > 100 && accepted > 10 && ran > 5,
        "{refused} / {accepted} / {ran}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
