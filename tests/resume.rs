//! A run killed at any moment loses nothing and resumes: `kill -9` at random moments of
//! `heldout run` (some right while a file is being written), then `heldout run --resume`; the
//! resumed folder's files equal an uninterrupted run's byte for byte. A full disk or a
//! read-only output folder gives one clear error and leaves no half-written file.

use heldout::report::{run_status, RunFolder, RunStatus, FILES};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A small run with many units: the demo's six rotations × two seeds × three methods (the
/// meta-learner with one short episode, ECOD and Isolation Forest): 36 units.
const SETS: [&str; 4] = [
    "episodes.count=1",
    "method.MetaLearner.inner_per_family=128",
    "seeds=[0, 1]",
    "compare=[Ecod(), IsolationForest(n_estimators: 50)]",
];

fn heldout(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_heldout"));
    c.args(args);
    c
}

fn run_args(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["run".into(), "--demo".into()];
    for s in SETS {
        v.push("--set".into());
        v.push(s.into());
    }
    v.push("--out".into());
    v.push(out.display().to_string());
    v
}

fn only_folder(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(dirs.len() <= 1, "{dirs:?}");
    dirs.pop()
}

fn check_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A small xorshift for the kill moments (seeded: the trials are the same every time).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn has_temp(dir: &Path) -> bool {
    [dir.to_path_buf(), dir.join("models")].iter().any(|d| {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .unwrap_or(false)
    })
}

#[test]
fn killed_runs_keep_what_finished_and_resume_to_identical_files() {
    // the uninterrupted run
    let full = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let o = heldout(
        &run_args(full.path())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .output()
    .unwrap();
    check_ok(&o, "the uninterrupted run");
    let took = t0.elapsed();
    let reference = only_folder(full.path()).unwrap();
    assert_eq!(run_status(&reference), RunStatus::Finished);
    let want_units = heldout::experiment::read_units(&reference).unwrap();
    assert_eq!(want_units.len(), 36);

    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut during_write, mut resumed_from_partial) = (0, 0);
    for trial in 0..20 {
        let out = tempfile::tempdir().unwrap();
        let args = run_args(out.path());
        let mut child = heldout(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if trial % 2 == 0 {
            // a random moment of the run
            let ms = rng.below(took.as_millis() as u64 + 1);
            std::thread::sleep(Duration::from_millis(ms));
        } else {
            // right while a file is being written: the k-th time a temporary file is seen
            let k = 1 + rng.below(40);
            let mut seen = 0;
            let t = Instant::now();
            while t.elapsed() < took * 2 {
                if let Some(dir) = only_folder(out.path()) {
                    if has_temp(&dir) {
                        seen += 1;
                        if seen >= k {
                            during_write += 1;
                            break;
                        }
                    }
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let Some(dir) = only_folder(out.path()) else {
            continue; // killed before the folder existed: nothing to lose
        };
        // the folder parses and holds config.ron and every unit it lists as finished
        assert!(
            dir.join("config.ron").exists() || !dir.join("status.txt").exists(),
            "trial {trial}: status without config"
        );
        if !dir.join("config.ron").exists() {
            continue; // killed between creating the folder and writing config.ron
        }
        let folder = RunFolder::load(&dir)
            .unwrap_or_else(|e| panic!("trial {trial}: the killed run's folder: {e:#}"));
        let done = heldout::experiment::read_units(&dir).unwrap();
        for u in &done {
            let fams: Vec<&str> = u.rotation.split('+').collect();
            assert!(
                folder.data.metrics.iter().any(|m| m.method == u.method
                    && m.seed == u.seed
                    && fams.contains(&m.held_out.as_str())),
                "trial {trial}: unit {u:?} listed as finished but not in metrics.csv"
            );
            assert!(
                folder.data.scores.iter().any(|s| &s.unit == u),
                "trial {trial}: unit {u:?} listed as finished but not in scores.csv"
            );
        }
        let status = run_status(&dir);
        match &status {
            RunStatus::Interrupted { done: d, total } => {
                assert!(*d <= done.len() && *total == 36 || *total == 0, "{status}");
                assert!(status.to_string().contains("--resume"), "{status}");
            }
            // killed before the first status write, or after the last
            RunStatus::Finished | RunStatus::Unknown(_) => {}
            other => panic!("trial {trial}: a killed run says {other}"),
        }
        if status == RunStatus::Finished {
            continue;
        }
        if !done.is_empty() {
            resumed_from_partial += 1;
        }
        let o = heldout(&["run", "--resume", dir.to_str().unwrap()])
            .output()
            .unwrap();
        check_ok(&o, &format!("trial {trial}: resume"));
        assert_eq!(run_status(&dir), RunStatus::Finished);
        assert!(!has_temp(&dir), "trial {trial}: temporary files left");
        for f in FILES {
            let (a, b) = (
                std::fs::read(reference.join(f)).unwrap(),
                std::fs::read(dir.join(f)).unwrap(),
            );
            assert!(
                a == b,
                "trial {trial}: {f} after resume differs from the uninterrupted run's"
            );
        }
        assert_eq!(heldout::experiment::read_units(&dir).unwrap(), want_units);
    }
    eprintln!(
        "uninterrupted run {took:?}; {during_write} kills while a temporary file existed, {resumed_from_partial} resumes of partly finished runs"
    );
    assert!(
        during_write >= 5,
        "only {during_write} kills during a write"
    );
    assert!(
        resumed_from_partial >= 5,
        "only {resumed_from_partial} trials resumed a partly finished run"
    );
}

#[test]
fn resume_refuses_a_finished_or_foreign_folder() {
    let empty = tempfile::tempdir().unwrap();
    let o = heldout(&["run", "--resume", empty.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a run folder (no config.ron)"), "{err}");

    let out = tempfile::tempdir().unwrap();
    let o = heldout(&[
        "run",
        "--demo",
        "--set",
        "episodes.count=1",
        "--set",
        "seeds=[0]",
        "--set",
        "method=Ecod()",
        "--set",
        "compare=[]",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    check_ok(&o, "the ECOD run");
    let dir = only_folder(out.path()).unwrap();
    let o = heldout(&["run", "--resume", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the run finished; there is nothing to resume"),
        "{err}"
    );
}

/// A small tmpfs mounted for one test (root only; the test says so and passes elsewhere).
struct Mount(tempfile::TempDir);
impl Mount {
    fn new(opts: &str) -> Option<Mount> {
        let d = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                opts,
                "tmpfs",
                d.path().to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            Some(Mount(d))
        } else {
            eprintln!("cannot mount a tmpfs here (needs root): not tested on this machine");
            None
        }
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_full_disk_gives_one_clear_error_and_no_half_written_file() {
    // room for config.ron and the first files, not for the run's scores
    let Some(m) = Mount::new("size=96k") else {
        return;
    };
    let o = heldout(
        &run_args(m.path())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .output()
    .unwrap();
    assert!(!o.status.success(), "a run on a 96 KB disk cannot finish");
    let err = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("the disk is full")
            && errors[0].contains("No space left on device")
            && errors[0].contains("--resume"),
        "{err}"
    );
    let dir = only_folder(m.path()).unwrap();
    let names = files_in(&dir);
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "half-written files left: {names:?}"
    );
    // every file that is there is whole: the folder parses
    RunFolder::load(&dir).unwrap();
}

#[test]
fn a_read_only_output_folder_gives_one_clear_error() {
    let Some(m) = Mount::new("size=1m,ro") else {
        return;
    };
    let o = heldout(
        &run_args(m.path())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .output()
    .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("read-only file system") && errors[0].contains("--out"),
        "{err}"
    );
    assert!(files_in(m.path()).is_empty());
}
