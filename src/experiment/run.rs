//! The runner: every (seed, rotation, method) of an experiment, trained and evaluated, with
//! everything written into one run folder. Files are rewritten atomically (temp + rename) after
//! each finished unit, so a stopped or failed run leaves a complete, readable folder of what
//! finished. `config.ron` is written before any training.

use super::config::{CheckedExperiment, Device as DeviceSpec, Experiment, Method};
use super::plan::{load_data, prepare_rotation};
use crate::atomic::write_atomic;
use crate::data::{FamilyId, Table};
use crate::detect::{
    Block, BuildCtx, CheckpointPools, Ctx, DetectError, Detector, Event, Labels, TrainView,
};
use crate::eval::{self, ThresholdPolicy};
use crate::report::{
    CheckpointRow, Curve, CurveRow, EpochRow, FamilyTable, HistRow, LossRow, MetricRow, PcgradRow,
    RunData, ScoreRow, ThresholdRow, UnitKey,
};
use crate::rng::SplitMix64;
use crate::split::{split_with, EpisodeSampler, Pool};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// What the runner reports to its front end (terminal or GUI).
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A unit (seed × rotation × method) starts; `index` counts from 1 to `units`.
    Unit {
        index: usize,
        units: usize,
        method: String,
        seed: u64,
        held_out: String,
    },
    /// A detector event of the current unit.
    Detector(Event),
    /// New rows for the run folder (the same rows the files get): the live view's data.
    Data(Box<RunData>),
    /// The experiment's estimated cost (one line: time per unit and in all, peak memory),
    /// reported before the first unit.
    Estimate(String),
    /// Something the user must know that does not stop the run (e.g. the 0.5 threshold
    /// fallback); also listed in `summary.md`.
    Warning(String),
    /// A unit finished with these test metrics.
    Finished {
        method: String,
        seed: u64,
        held_out: String,
        auc: f64,
        ap: f64,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Finished,
    Stopped,
}

fn device(spec: DeviceSpec) -> Result<candle_core::Device> {
    Ok(match spec {
        DeviceSpec::Cpu => candle_core::Device::Cpu,
        DeviceSpec::Auto => candle_core::Device::cuda_if_available(0)?,
        DeviceSpec::Cuda(n) => candle_core::Device::new_cuda(n).with_context(|| {
            format!(
                "device Cuda({n}): build with `--features cuda` on a machine with an NVIDIA GPU"
            )
        })?,
    })
}

/// The run folder's files as they grow. Finished units' rows are on disk only: each unit's rows
/// are kept here while it trains and appended to the files (atomically) when it ends, so the
/// runner's memory holds one unit's rows however long the run, plus every metrics row (few;
/// `summary.md` is made from them).
#[derive(Default)]
struct Out {
    /// Rows of the unit being trained, not yet in the files.
    unit: RunData,
    /// Every metrics row so far, in the files' order.
    metrics: Vec<MetricRow>,
}

impl Out {
    /// Starts every file with `kept` (a resumed run's finished units; empty for a new run).
    fn start(dir: &Path, kept: RunData) -> Result<Out> {
        for (name, text) in kept.to_csv() {
            write_atomic(&dir.join(name), &text)?;
        }
        let out = Out {
            unit: RunData::default(),
            metrics: kept.metrics,
        };
        write_atomic(&dir.join("summary.md"), out.summary())?;
        Ok(out)
    }

    /// Appends the current unit's rows to the files and rewrites `summary.md`.
    fn flush(&mut self, dir: &Path) -> Result<()> {
        if !self.unit.is_empty() {
            for (name, rows) in self.unit.to_csv_rows() {
                if !rows.is_empty() {
                    crate::atomic::append_atomic(&dir.join(name), &rows)?;
                }
            }
            self.unit = RunData::default();
        }
        write_atomic(&dir.join("summary.md"), self.summary())
    }

    /// Per-family table (mean ± std over seeds, best per column in bold), as the paper's Table 1.
    fn summary(&self) -> String {
        let table = FamilyTable::from_metrics(&self.metrics);
        format!(
            "# Results\n\nTest metrics at τ* per held-out family, mean ± std over seeds (macro: mean over held-out families within a seed, then over seeds). Best mean per column in bold.\n\n{}{}\n## In the core paper's Table 1 layout\n\nPer held-out family: precision, recall, AUC-ROC and F1 at τ*, mean ± std over seeds; best per column in bold.\n\n{}{}{}",
            fallback_warnings(&self.metrics),
            table.to_markdown(),
            table.paper_markdown(crate::report::table::PAPER_FAMILIES_PER_BLOCK),
            crate::report::table::transfer_markdown(&self.metrics),
            FamilyTable::paired_markdown(&self.metrics)
        )
    }

    /// Appends a batch of rows and passes it on to the listener.
    fn push(&mut self, delta: RunData, sink: &mut dyn FnMut(RunEvent)) {
        if !delta.is_empty() {
            self.metrics.extend(delta.metrics.iter().cloned());
            sink(RunEvent::Data(Box::new(delta.clone())));
            self.unit.extend(delta);
        }
    }
}

/// `summary.md`'s warning block: every (method, seed, held-out family) whose threshold is the
/// 0.5 fallback rather than τ* (empty when there are none).
fn fallback_warnings(metrics: &[MetricRow]) -> String {
    let bad: Vec<String> = metrics
        .iter()
        .filter(|m| m.threshold == FALLBACK)
        .map(|m| format!("- {}, seed {}, held out {}", m.method, m.seed, m.held_out))
        .collect();
    if bad.is_empty() {
        return String::new();
    }
    format!(
        "> **Warning: τ = 0.5 fallback.** τ* could not be chosen on the seen-family validation pool (empty, or one class only: the run log gives the reason) for {} of {} rows, so their precision, recall, accuracy and F1 are at 0.5, not τ* (`threshold` = `{FALLBACK}` in `metrics.csv`). AUC-ROC, AP and FPR@95 do not depend on τ.\n\n{}\n\n",
        bad.len(),
        metrics.iter().filter(|m| m.is_primary()).count(),
        bad.join("\n")
    )
}

/// `metrics.csv`'s `threshold` value for the 0.5 fallback.
const FALLBACK: &str = "fallback_0.5";

/// The file listing the units whose rows are complete in every file of the folder (written
/// after them): what `heldout run --resume` keeps.
pub const UNITS_FILE: &str = "units.csv";
const UNITS_HEADER: &str = "method,seed,rotation";

/// Where the experiment's relative paths resolve (one line), for `--resume`.
const BASE_FILE: &str = "base.txt";

fn write_units(dir: &Path, done: &[UnitKey]) -> Result<()> {
    use crate::report::csv_field;
    let mut text = format!("{UNITS_HEADER}\n");
    for u in done {
        text.push_str(&format!(
            "{},{},{}\n",
            csv_field(&u.method),
            u.seed,
            csv_field(&u.rotation)
        ));
    }
    write_atomic(&dir.join(UNITS_FILE), text)
}

/// The finished units a run folder lists (none when it has no `units.csv`).
pub fn read_units(dir: &Path) -> Result<Vec<UnitKey>> {
    let path = dir.join(UNITS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(UNITS_HEADER) {
        anyhow::bail!(
            "{}: unexpected header (expected `{UNITS_HEADER}`) — written by another version of heldout?",
            path.display()
        );
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
        let f = crate::report::split_csv_line(line);
        let seed = f.get(1).and_then(|s| s.parse().ok());
        match (f.len(), seed) {
            (3, Some(seed)) => out.push(UnitKey {
                method: f[0].clone(),
                seed,
                rotation: f[2].clone(),
            }),
            _ => anyhow::bail!(
                "{}: line {} is not a valid row: `{line}`",
                path.display(),
                i + 2
            ),
        }
    }
    Ok(out)
}

/// `status.txt` while a run is going: the process, and how far it got. A reader that finds
/// this with no such process alive knows the run was interrupted (see
/// [`crate::report::run_status`]).
fn running_status(done: usize, total: usize) -> String {
    format!(
        "running (pid {}): {done} of {total} units finished\n",
        std::process::id()
    )
}

fn decimate(xs: &[f64], ys: &[f64], max: usize) -> Vec<(f64, f64)> {
    let n = xs.len();
    if n <= max {
        return xs.iter().copied().zip(ys.iter().copied()).collect();
    }
    (0..max)
        .map(|i| {
            let k = i * (n - 1) / (max - 1);
            (xs[k], ys[k])
        })
        .collect()
}

/// Returns freed heap memory to the system — after loading (the parser's buffers) and after each
/// unit (its working memory): glibc keeps up to 64 MiB of it per arena otherwise
/// (`M_TRIM_THRESHOLD`, set in `main`), which every later unit would carry as resident memory
/// (measured: units of 5 MB ran at 124 MB after a 120 MB meta-learner unit, 65 MB without it;
/// bench/results/estimate-*.txt).
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free heap pages to the system; it is thread-safe (it
    // takes the allocator's locks) and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs the whole experiment into `dir` (created; `config.ron` first).
pub fn run(
    exp: &CheckedExperiment,
    dir: &Path,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(RunEvent),
) -> Result<RunState> {
    std::fs::create_dir_all(dir.join("models"))
        .with_context(|| format!("{}: cannot create the run folder", dir.display()))
        .map_err(with_space_hint)?;
    write_atomic(&dir.join("config.ron"), exp.to_ron()).map_err(with_space_hint)?;
    let base = std::fs::canonicalize(exp.base()).unwrap_or_else(|_| exp.base().to_path_buf());
    write_atomic(
        &dir.join(BASE_FILE),
        format!("{}\n", base.to_string_lossy()),
    )
    .map_err(with_space_hint)?;
    finish(exp, dir, RunData::default(), Vec::new(), stop, sink)
}

/// Continues an interrupted (killed, stopped or failed) run in its folder: reads its
/// `config.ron`, keeps the units `units.csv` lists as finished (their rows in every file; rows of
/// a unit that did not finish are dropped) and runs only the others. Units are independent and
/// deterministic, so the folder ends as an uninterrupted run's would (`metrics.csv` and
/// `scores.csv` byte-identical, tested).
pub fn resume(dir: &Path, stop: &AtomicBool, sink: &mut dyn FnMut(RunEvent)) -> Result<RunState> {
    let exp = load_resumable(dir)?;
    let done = read_units(dir)?;
    let kept = RunData::load(dir)
        .with_context(|| format!("{}: cannot resume", dir.display()))?
        .only_units(&done);
    remove_stale_temps(dir);
    finish(&exp, dir, kept, done, stop, sink)
}

/// The experiment of a run folder that can be resumed (its `config.ron`, with relative paths
/// resolved where the run resolved them); an error when it cannot be (no config, or a process
/// is still writing it).
pub fn load_resumable(dir: &Path) -> Result<CheckedExperiment> {
    let cfg = dir.join("config.ron");
    if !cfg.exists() {
        anyhow::bail!(
            "{}: not a run folder (no config.ron) — give a folder written by `heldout run`",
            dir.display()
        );
    }
    match crate::report::run_status(dir) {
        crate::report::RunStatus::Running { pid, .. } => anyhow::bail!(
            "{}: the run is still going (process {pid}); stop it first, or wait for it to end",
            dir.display()
        ),
        crate::report::RunStatus::Finished => anyhow::bail!(
            "{}: the run finished; there is nothing to resume",
            dir.display()
        ),
        _ => {}
    }
    let base = match std::fs::read_to_string(dir.join(BASE_FILE)) {
        Ok(s) => PathBuf::from(s.trim_end_matches(['\n', '\r'])),
        Err(_) => dir.to_path_buf(),
    };
    let text = std::fs::read_to_string(&cfg).with_context(|| cfg.display().to_string())?;
    Experiment::load_text(&text, &cfg, &base, &[])
}

/// Hidden temporary files a killed process left behind (`.NAME.PID.K.tmp`, from
/// [`write_atomic`]): never read, removed on resume.
fn remove_stale_temps(dir: &Path) {
    for sub in [dir.to_path_buf(), dir.join("models")] {
        let Ok(rd) = std::fs::read_dir(&sub) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A write error caused by a full disk or a read-only folder gets what to do.
fn with_space_hint(e: anyhow::Error) -> anyhow::Error {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map(|io| (io.kind(), io.raw_os_error()));
    match kind {
        // ENOSPC = 28, EROFS = 30, EACCES = 13, EPERM = 1 on Linux
        Some((_, Some(28))) | Some((std::io::ErrorKind::StorageFull, _)) => e.context(
            "the disk is full: free space or choose another output folder (`--out`), then `heldout run --resume` the run folder",
        ),
        Some((_, Some(30))) | Some((std::io::ErrorKind::ReadOnlyFilesystem, _)) => e.context(
            "the output folder is on a read-only file system: choose another output folder (`--out`)",
        ),
        Some((std::io::ErrorKind::PermissionDenied, _)) => e.context(
            "no permission to write in the output folder: choose another one (`--out`)",
        ),
        _ => e,
    }
}

/// The common tail of [`run`] and [`resume`]: runs every unit not in `done`, keeping the status
/// file current, and marks the folder `finished`, `stopped` or `failed`.
fn finish(
    exp: &CheckedExperiment,
    dir: &Path,
    kept: RunData,
    done: Vec<UnitKey>,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(RunEvent),
) -> Result<RunState> {
    let result = run_inner(exp, exp.base(), dir, stop, sink, kept, done).map_err(with_space_hint);
    let status = match &result {
        Ok(RunState::Finished) => "finished\n".to_string(),
        Ok(RunState::Stopped) => "stopped: the folder holds the units that finished\n".to_string(),
        Err(e) => format!("failed: {e:#}\n"),
    };
    // on a full disk this can fail too: the error the run already has is the one to report
    let written = write_atomic(&dir.join("status.txt"), &status).map_err(with_space_hint);
    match (result, written) {
        (Ok(s), Ok(())) => Ok(s),
        (Ok(_), Err(e)) | (Err(e), _) => Err(e),
    }
}

fn run_inner(
    exp: &Experiment,
    base: &Path,
    dir: &Path,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(RunEvent),
    kept: RunData,
    mut done: Vec<UnitKey>,
) -> Result<RunState> {
    let table: Table = load_data(exp, base)?;
    release_freed_memory();
    let roles = exp.roles.resolve(&table).map_err(anyhow::Error::msg)?;
    // refused before anything is trained when it cannot fit in memory
    let estimate = super::Estimate::of(exp, &table).map_err(anyhow::Error::msg)?;
    estimate.check_memory(exp).map_err(anyhow::Error::msg)?;
    sink(RunEvent::Estimate(estimate.summary_line()));
    let dev = device(exp.device)?;
    let methods: Vec<&Method> = std::iter::once(&exp.method).chain(&exp.compare).collect();
    let units = exp.seeds.len() * roles.rotations.len() * methods.len();
    // the rows of units a resumed run kept: the live view starts from them
    if !kept.is_empty() {
        sink(RunEvent::Data(Box::new(kept.clone())));
    }
    let mut out = Out::start(dir, kept)?;
    write_units(dir, &done)?;
    write_atomic(&dir.join("status.txt"), running_status(done.len(), units))?;
    let name = |f: FamilyId| table.families[f as usize].clone();
    let mut index = 0;
    let d = table.n_features;
    for &seed in &exp.seeds {
        let mut splits = None;
        for rot in &roles.rotations {
            let held = rot
                .held_out
                .iter()
                .map(|&f| name(f))
                .collect::<Vec<_>>()
                .join("+");
            let key = |method: &Method| UnitKey {
                method: method.name(),
                seed,
                rotation: held.clone(),
            };
            if methods.iter().all(|m| done.contains(&key(m))) {
                index += methods.len();
                continue;
            }
            let splits = splits.get_or_insert_with(|| split_with(&table, seed, &exp.split));
            let (task, scaler, priority) =
                prepare_rotation(exp, &table, splits, &roles.normal, rot, seed)?;
            let block = |p: &Pool| Block {
                x: scaler.transform(&table.features, &p.rows),
                y: p.label.clone(),
            };
            for method in &methods {
                index += 1;
                let unit = key(method);
                if done.contains(&unit) {
                    continue;
                }
                let mname = method.name();
                sink(RunEvent::Unit {
                    index,
                    units,
                    method: mname.clone(),
                    seed,
                    held_out: held.clone(),
                });
                let mut view =
                    train_view(method, exp, &table, &task, &scaler, rot, &priority, seed);
                let mut det: Box<dyn Detector> = method.build(&BuildCtx {
                    d,
                    seed,
                    device: &dev,
                    main: &exp.method,
                })?;
                let mut had_checkpoints = false;
                let fit = {
                    let mut emit = |e: Event| {
                        had_checkpoints |= matches!(e, Event::Checkpoint { .. });
                        let delta = rows_of(&e, &unit, rot, exp.pools.histogram_bins, &name);
                        sink(RunEvent::Detector(e));
                        out.push(delta, sink);
                    };
                    let mut ctx = Ctx {
                        emit: &mut emit,
                        stop,
                        rng: SplitMix64::new(seed.wrapping_add(40)),
                        device: dev.clone(),
                        probe: None,
                    };
                    det.fit(&mut view, &mut ctx)
                };
                match fit {
                    Ok(()) => {}
                    // what the unfinished unit had goes into the files too (its curves so far);
                    // it is not listed in units.csv, so a resumed run drops and redoes it
                    Err(DetectError::Stopped) => {
                        out.flush(dir)?;
                        return Ok(RunState::Stopped);
                    }
                    Err(e) => {
                        out.flush(dir)?;
                        return Err(anyhow::anyhow!(
                            "{mname}, seed {seed}, held out {held}: {e}"
                        ));
                    }
                }
                // A method without episodes reports no checkpoints while it trains: its final
                // scores on the same per-family pools give the histograms and curves the
                // meta-learner's after-outer checkpoint gives (stage `final`).
                if !had_checkpoints {
                    let families =
                        crate::detect::final_checkpoint(det.as_ref(), &view.checkpoint, d)?;
                    let e = Event::Checkpoint {
                        episode: 1,
                        stage: crate::detect::Stage::Final,
                        temperature: f64::NAN,
                        families,
                    };
                    let delta = rows_of(&e, &unit, rot, exp.pools.histogram_bins, &name);
                    sink(RunEvent::Detector(e));
                    out.push(delta, sink);
                }
                // test
                let threshold = det.threshold();
                let tau = threshold.tau;
                if let Some(why) = threshold.fallback_reason() {
                    sink(RunEvent::Warning(format!(
                        "{mname}, seed {seed}, held out {held}: τ* could not be chosen ({why}); the test metrics at a threshold use 0.5 (`threshold` = `{FALLBACK}` in metrics.csv)"
                    )));
                }
                // every tau_policy's threshold, from training-side rows only: τ* from the
                // detector (the seen-family validation pool), the normals-only ones from the
                // scores of every validation normal
                let mut taus: Vec<(f64, String)> = Vec::with_capacity(exp.tau_policy.len());
                let mut normal_val_scores: Option<Vec<f64>> = None;
                for p in &exp.tau_policy {
                    match p {
                        ThresholdPolicy::BestF1 => {
                            taus.push((tau, threshold.label().to_string()));
                        }
                        ThresholdPolicy::NormalFpr(alpha) => {
                            if normal_val_scores.is_none() {
                                let x = scaler.transform(&table.features, &task.normal_val);
                                normal_val_scores = Some(det.score(&x)?);
                            }
                            let s = normal_val_scores.as_deref().unwrap_or_default();
                            match eval::normal_fpr_threshold(s, *alpha) {
                                Some(t) => taus.push((t, p.label())),
                                None => sink(RunEvent::Warning(format!(
                                    "{mname}, seed {seed}, held out {held}: no {} threshold (no validation normals, or a non-finite score among them); its metrics.csv rows are left out",
                                    p.label()
                                ))),
                            }
                        }
                        ThresholdPolicy::WorstSeenF1 => {
                            // the seen-family validation pool, split by family
                            let s = det.score(&view.val.x)?;
                            let mut normals = Vec::new();
                            let mut fams: Vec<(FamilyId, Vec<f64>)> = Vec::new();
                            for ((&y, &f), &v) in view.val.y.iter().zip(&view.val_family).zip(&s) {
                                if y == 0 {
                                    normals.push(v);
                                } else if let Some(e) = fams.iter_mut().find(|e| e.0 == f) {
                                    e.1.push(v);
                                } else {
                                    fams.push((f, vec![v]));
                                }
                            }
                            let fams: Vec<Vec<f64>> = fams.into_iter().map(|e| e.1).collect();
                            match eval::worst_family_f1_threshold(&normals, &fams) {
                                Some((t, _)) => taus.push((t, p.label())),
                                None => sink(RunEvent::Warning(format!(
                                    "{mname}, seed {seed}, held out {held}: no {} threshold (the validation pool has no normals or no seen family's rows, or a non-finite score); its metrics.csv rows are left out",
                                    p.label()
                                ))),
                            }
                        }
                    }
                }
                let mut delta = RunData::default();
                for (f, pool) in &task.test {
                    let b = block(pool);
                    let scores = det.score(&b.x)?;
                    let labels: Vec<bool> = b.y.iter().map(|&y| y == 1).collect();
                    let auc = eval::roc_auc(&labels, &scores)?;
                    let ap = eval::average_precision(&labels, &scores)?;
                    let fpr = eval::fpr95(&labels, &scores)?.anomaly_positive.fpr;
                    let fname = name(*f);
                    for (t, label) in &taus {
                        let tm = eval::ThresholdMetrics::at(&labels, &scores, *t)?;
                        let negatives = tm.fp + tm.tn;
                        delta.metrics.push(MetricRow {
                            method: mname.clone(),
                            seed,
                            held_out: fname.clone(),
                            precision: tm.precision,
                            recall: tm.recall,
                            accuracy: tm.accuracy,
                            f1: tm.f1,
                            ap,
                            auc,
                            fpr95: fpr,
                            tau: *t,
                            threshold: label.clone(),
                            fpr: if negatives == 0 {
                                f64::NAN
                            } else {
                                tm.fp as f64 / negatives as f64
                            },
                        });
                    }
                    for (i, (&r, &s)) in pool.rows.iter().zip(&scores).enumerate() {
                        delta.scores.push(ScoreRow {
                            unit: unit.clone(),
                            family: fname.clone(),
                            row: table.source_row[r],
                            anomaly: b.y[i] == 1,
                            score: s,
                        });
                    }
                    sink(RunEvent::Finished {
                        method: mname.clone(),
                        seed,
                        held_out: fname,
                        auc,
                        ap,
                    });
                }
                out.push(delta, sink);
                det.save(&dir.join("models").join(format!(
                    "{mname}_seed{seed}_{}.{}",
                    held.replace(['/', ' '], "_"),
                    det.model_extension()
                )))?;
                // the unit's rows are in every file before it is listed as finished
                out.flush(dir)?;
                done.push(unit);
                // the next unit does not carry this one's freed working memory
                release_freed_memory();
                write_units(dir, &done)?;
                write_atomic(&dir.join("status.txt"), running_status(done.len(), units))?;
            }
        }
    }
    Ok(RunState::Finished)
}

/// Everything `method` may learn from in one (seed, rotation), scaled: the rows its labels
/// allow (all seen-family training rows only for [`Labels::AllSeen`] methods), the validation
/// pool, the checkpoint pools and the episode stream.
#[allow(clippy::too_many_arguments)] // the parts of one rotation, as prepare_rotation returns them
pub fn train_view(
    method: &Method,
    exp: &Experiment,
    table: &Table,
    task: &crate::split::Task,
    scaler: &crate::data::Scaler,
    rot: &crate::split::Rotation,
    priority: &[FamilyId],
    seed: u64,
) -> TrainView {
    let scaled = |rows: &[usize]| scaler.transform(&table.features, rows);
    let per_family = |v: &[(FamilyId, Vec<usize>)]| -> Vec<(FamilyId, Vec<f32>)> {
        v.iter().map(|(f, r)| (*f, scaled(r))).collect()
    };
    let available: Vec<usize> = task.few_shot.iter().map(|(_, r)| r.len()).collect();
    TrainView {
        d: table.n_features,
        normals: scaled(&task.normal_train),
        few_shot: per_family(&task.few_shot),
        seen_train: if method.labels() == Labels::AllSeen {
            per_family(&task.seen_train)
        } else {
            Vec::new()
        },
        val: Block {
            x: scaled(&task.val_pool.rows),
            y: task.val_pool.label.clone(),
        },
        val_family: task.val_pool.family.clone(),
        checkpoint: CheckpointPools {
            val_index: CheckpointPools::index_of(&task.checkpoint, &task.val_pool.rows),
            ..CheckpointPools::from_pools(&task.checkpoint, &|rows: &[usize]| scaled(rows))
        },
        episodes: EpisodeSampler::new(&exp.episodes, &rot.seen, &available, priority, seed),
        n_episodes: exp.episodes.count,
        family_names: table.families.clone(),
    }
}

/// The run-folder rows of one detector event.
fn rows_of(
    e: &Event,
    unit: &UnitKey,
    rot: &crate::split::Rotation,
    bins: usize,
    name: &dyn Fn(FamilyId) -> String,
) -> RunData {
    let mut d = RunData::default();
    let task_name = |t: FamilyId| match t {
        FamilyId::MAX => "inner".to_string(),
        x if x == FamilyId::MAX - 1 => "outer_pooled".to_string(),
        f => name(f),
    };
    match e {
        Event::Progress {
            episode,
            stage,
            step,
            loss,
            ..
        } => d.losses.push(LossRow {
            unit: unit.clone(),
            episode: *episode,
            stage: *stage,
            step: *step,
            loss: *loss,
        }),
        Event::Checkpoint {
            episode,
            stage,
            temperature,
            families,
        } => {
            for fs in families {
                // Fixed bins shared by the normal and anomaly histograms of this checkpoint,
                // spanning its scores: scores crowd into a small part of [0, 1] (the demo's lie
                // in 0.05–0.15), where [0, 1] bins would draw one bar for an AUC of 0.98.
                let (lo, hi) = fs
                    .scores
                    .iter()
                    .filter(|s| s.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
                        (a.min(s), b.max(s))
                    });
                let (lo, hi) = if lo.is_finite() && hi > lo {
                    (lo, hi)
                } else if lo.is_finite() {
                    (lo - 0.5, lo + 0.5)
                } else {
                    (0.0, 1.0)
                };
                let edges = eval::equal_bins(lo, hi, bins).unwrap_or_default();
                let held_out = rot.held_out.contains(&fs.family);
                let labels: Vec<bool> = fs.labels.iter().map(|&y| y == 1).collect();
                let family = name(fs.family);
                d.checkpoints.push(CheckpointRow {
                    unit: unit.clone(),
                    episode: *episode,
                    stage: *stage,
                    family: family.clone(),
                    held_out,
                    auc: eval::roc_auc(&labels, &fs.scores).unwrap_or(f64::NAN),
                    ap: eval::average_precision(&labels, &fs.scores).unwrap_or(f64::NAN),
                    margin: fs.margin,
                    temperature: *temperature,
                });
                for anomaly in [false, true] {
                    let v: Vec<f64> = fs
                        .scores
                        .iter()
                        .zip(&labels)
                        .filter(|(_, &l)| l == anomaly)
                        .map(|(&s, _)| s)
                        .collect();
                    if let Ok(h) = eval::histogram(&v, &edges) {
                        for (i, &count) in h.iter().enumerate() {
                            d.histograms.push(HistRow {
                                unit: unit.clone(),
                                episode: *episode,
                                stage: *stage,
                                family: family.clone(),
                                anomaly,
                                lo: edges[i],
                                hi: edges[i + 1],
                                count,
                            });
                        }
                    }
                }
                if held_out {
                    let mut curve = |c: Curve, xs: &[f64], ys: &[f64]| {
                        for (x, y) in decimate(xs, ys, 200) {
                            d.curves.push(CurveRow {
                                unit: unit.clone(),
                                episode: *episode,
                                stage: *stage,
                                family: family.clone(),
                                curve: c,
                                x,
                                y,
                            });
                        }
                    };
                    if let Ok(roc) = eval::roc_curve(&labels, &fs.scores) {
                        curve(Curve::Roc, &roc.fpr, &roc.tpr);
                    }
                    if let Ok(pr) = eval::precision_recall_curve(&labels, &fs.scores) {
                        curve(Curve::Pr, &pr.recall, &pr.precision);
                    }
                }
            }
        }
        Event::Pcgrad {
            episode,
            step,
            tasks,
            stats,
        } => {
            for &(i, j, c) in &stats.cosines {
                let projected = stats
                    .projected
                    .iter()
                    .any(|&(a, b)| (a, b) == (i, j) || (a, b) == (j, i));
                d.pcgrad.push(PcgradRow {
                    unit: unit.clone(),
                    episode: *episode,
                    step: *step,
                    task_i: task_name(tasks[i]),
                    task_j: task_name(tasks[j]),
                    cosine: c,
                    projected,
                });
            }
        }
        Event::Threshold { episode, tau, f1 } => d.thresholds.push(ThresholdRow {
            unit: unit.clone(),
            episode: *episode,
            tau: *tau,
            val_f1: *f1,
        }),
        Event::Epoch {
            phase,
            epoch,
            epochs,
            terms,
        } => {
            for (term, value) in terms {
                d.epochs.push(EpochRow {
                    unit: unit.clone(),
                    phase: phase.to_string(),
                    epoch: *epoch,
                    epochs: *epochs,
                    term: term.to_string(),
                    value: *value,
                });
            }
        }
        Event::Episode(_) | Event::Probe { .. } | Event::Step { .. } => {}
    }
    d
}

/// A new run folder under the experiment's output folder: `NAME-YYYYmmdd-HHMMSS` (UTC), made
/// unique with a counter.
pub fn new_run_dir(root: &Path, name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dd = doy - (153 * mp + 2) / 5 + 1;
    let mm = if mp < 10 { mp + 3 } else { mp - 9 };
    let yy = yoe + era * 400 + i64::from(mm <= 2);
    let stamp = format!(
        "{yy:04}{mm:02}{dd:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let mut dir = root.join(format!("{name}-{stamp}"));
    let mut k = 1;
    while dir.exists() {
        k += 1;
        dir = root.join(format!("{name}-{stamp}-{k}"));
    }
    dir
}
