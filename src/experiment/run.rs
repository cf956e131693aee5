//! The runner: every (seed, rotation, method) of an experiment, trained and evaluated, with
//! everything written into one run folder. Files are rewritten atomically (temp + rename) after
//! each finished unit, so a stopped or failed run leaves a complete, readable folder of what
//! finished. `config.ron` is written before any training.

use super::config::{Device as DeviceSpec, Experiment, Method};
use super::plan::{load_data, prepare_rotation};
use crate::data::{FamilyId, Table};
use crate::detect::meta::MetaLearner;
use crate::detect::{Block, CheckpointPools, Ctx, DetectError, Detector, Event, TrainView};
use crate::eval;
use crate::rng::SplitMix64;
use crate::split::{split_with, EpisodeSampler, Pool};
use anyhow::{Context, Result};
use std::fmt::Write as _;
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

/// Writes `text` to `path` atomically.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, text).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
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

/// Rows accumulated for the run folder's CSV files.
#[derive(Default)]
struct Out {
    metrics: String,
    checkpoints: String,
    pcgrad: String,
    histograms: String,
    curves: String,
    scores: String,
    thresholds: String,
    /// One entry per (method, held-out family, seed), for summary.md.
    cells: Vec<Cell>,
}

/// Test metrics of one (method, held-out family, seed).
struct Cell {
    method: String,
    family: String,
    seed: u64,
    at_tau: eval::ThresholdMetrics,
    ap: f64,
    auc: f64,
    fpr95: f64,
}

impl Out {
    fn new() -> Self {
        Out {
            metrics: "method,seed,held_out,precision,recall,accuracy,f1,ap,auc_roc,fpr95,tau\n"
                .into(),
            checkpoints:
                "method,seed,rotation,episode,stage,family,role,auc,ap,margin,temperature\n".into(),
            pcgrad: "method,seed,rotation,episode,step,task_i,task_j,cosine,projected\n".into(),
            histograms: "method,seed,rotation,episode,stage,family,class,bin_lo,bin_hi,count\n"
                .into(),
            curves: "method,seed,rotation,episode,stage,family,curve,x,y\n".into(),
            scores: "method,seed,rotation,row,label,score\n".into(),
            thresholds: "method,seed,rotation,episode,tau,val_f1\n".into(),
            cells: Vec::new(),
        }
    }

    fn write(&self, dir: &Path) -> Result<()> {
        for (name, text) in [
            ("metrics.csv", &self.metrics),
            ("checkpoints.csv", &self.checkpoints),
            ("pcgrad.csv", &self.pcgrad),
            ("histograms.csv", &self.histograms),
            ("curves.csv", &self.curves),
            ("scores.csv", &self.scores),
            ("thresholds.csv", &self.thresholds),
        ] {
            write_atomic(&dir.join(name), text)?;
        }
        write_atomic(&dir.join("summary.md"), &self.summary())
    }

    /// Per-family table (mean ± std over seeds), as the paper's Table 1.
    fn summary(&self) -> String {
        let mut s = String::from("| method | held-out family | precision | recall | accuracy | F1 | AP | AUC-ROC | FPR@95 |\n|---|---|---|---|---|---|---|---|---|\n");
        let mut keys: Vec<(String, String)> = self
            .cells
            .iter()
            .map(|c| (c.method.clone(), c.family.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let ms = |v: Vec<f64>| match eval::mean_std(&v) {
            Ok(m) => format!("{:.3} ± {:.3}", m.mean, m.std),
            Err(_) => "–".into(),
        };
        let mut methods: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        methods.dedup();
        for (m, f) in &keys {
            let c: Vec<_> = self
                .cells
                .iter()
                .filter(|c| &c.method == m && &c.family == f)
                .collect();
            let _ = writeln!(
                s,
                "| {m} | {f} | {} | {} | {} | {} | {} | {} | {} |",
                ms(c.iter().map(|c| c.at_tau.precision).collect()),
                ms(c.iter().map(|c| c.at_tau.recall).collect()),
                ms(c.iter().map(|c| c.at_tau.accuracy).collect()),
                ms(c.iter().map(|c| c.at_tau.f1).collect()),
                ms(c.iter().map(|c| c.ap).collect()),
                ms(c.iter().map(|c| c.auc).collect()),
                ms(c.iter().map(|c| c.fpr95).collect()),
            );
        }
        // macro: mean over held-out families per seed, then mean ± std over seeds
        let _ = writeln!(
            s,
            "\n| method | macro AUC-ROC | macro AP | macro F1 |\n|---|---|---|---|"
        );
        for m in &methods {
            let mut seeds: Vec<u64> = self
                .cells
                .iter()
                .filter(|c| &c.method == m)
                .map(|c| c.seed)
                .collect();
            seeds.sort();
            seeds.dedup();
            let per_seed = |pick: &dyn Fn(&Cell) -> f64| -> Vec<f64> {
                seeds
                    .iter()
                    .map(|sd| {
                        let v: Vec<f64> = self
                            .cells
                            .iter()
                            .filter(|c| &c.method == m && c.seed == *sd)
                            .map(pick)
                            .collect();
                        v.iter().sum::<f64>() / v.len().max(1) as f64
                    })
                    .collect()
            };
            let _ = writeln!(
                s,
                "| {m} | {} | {} | {} |",
                ms(per_seed(&|c| c.auc)),
                ms(per_seed(&|c| c.ap)),
                ms(per_seed(&|c| c.at_tau.f1))
            );
        }
        s
    }
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

/// Runs the whole experiment into `dir` (created; `config.ron` first).
pub fn run(
    exp: &Experiment,
    base: &Path,
    dir: &Path,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(RunEvent),
) -> Result<RunState> {
    std::fs::create_dir_all(dir.join("models")).with_context(|| dir.display().to_string())?;
    write_atomic(&dir.join("config.ron"), &exp.to_ron())?;
    write_atomic(&dir.join("status.txt"), "running\n")?;
    let result = run_inner(exp, base, dir, stop, sink);
    let status = match &result {
        Ok(RunState::Finished) => "finished\n".to_string(),
        Ok(RunState::Stopped) => "stopped: the folder holds the units that finished\n".to_string(),
        Err(e) => format!("failed: {e:#}\n"),
    };
    write_atomic(&dir.join("status.txt"), &status)?;
    result
}

fn run_inner(
    exp: &Experiment,
    base: &Path,
    dir: &Path,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(RunEvent),
) -> Result<RunState> {
    let table: Table = load_data(exp, base)?;
    let roles = exp.roles.resolve(&table).map_err(anyhow::Error::msg)?;
    let dev = device(exp.device)?;
    let methods: Vec<&Method> = std::iter::once(&exp.method).chain(&exp.compare).collect();
    let units = exp.seeds.len() * roles.rotations.len() * methods.len();
    let mut out = Out::new();
    out.write(dir)?;
    let name = |f: FamilyId| table.families[f as usize].clone();
    let mut index = 0;
    let d = table.n_features;
    for &seed in &exp.seeds {
        let splits = split_with(&table, seed, &exp.split);
        for rot in &roles.rotations {
            let (task, scaler, priority) =
                prepare_rotation(exp, &table, &splits, &roles.normal, rot, seed)?;
            let held = rot
                .held_out
                .iter()
                .map(|&f| name(f))
                .collect::<Vec<_>>()
                .join("+");
            let block = |p: &Pool| Block {
                x: scaler.transform(&table.features, &p.rows),
                y: p.label.clone(),
            };
            for method in &methods {
                index += 1;
                let mname = method.name();
                sink(RunEvent::Unit {
                    index,
                    units,
                    method: mname.clone(),
                    seed,
                    held_out: held.clone(),
                });
                let available: Vec<usize> = task.few_shot.iter().map(|(_, r)| r.len()).collect();
                let mut view = TrainView {
                    d,
                    normals: scaler.transform(&table.features, &task.normal_train),
                    few_shot: task
                        .few_shot
                        .iter()
                        .map(|(f, r)| (*f, scaler.transform(&table.features, r)))
                        .collect(),
                    val: block(&task.val_pool),
                    checkpoint: CheckpointPools::from_pools(
                        &task.checkpoint,
                        &|rows: &[usize]| scaler.transform(&table.features, rows),
                    ),
                    episodes: EpisodeSampler::new(
                        &exp.episodes,
                        &rot.seen,
                        &available,
                        &priority,
                        seed,
                    ),
                    n_episodes: exp.episodes.count,
                    family_names: table.families.clone(),
                };
                let mut det: Box<dyn Detector> = match method {
                    Method::MetaLearner(p) => Box::new(MetaLearner::new(p.clone(), d, seed, &dev)?),
                    Method::Odin(p) => {
                        let arch = match &exp.method {
                            Method::MetaLearner(a) => a.clone(),
                            Method::Odin(_) => Default::default(),
                        };
                        Box::new(crate::detect::odin::Odin::new(
                            p.clone(),
                            &arch,
                            d,
                            seed,
                            &dev,
                        )?)
                    }
                };
                let mut events: Vec<Event> = Vec::new();
                let fit = {
                    let mut emit = |e: Event| {
                        sink(RunEvent::Detector(e.clone()));
                        if !matches!(e, Event::Progress { .. }) {
                            events.push(e);
                        }
                    };
                    let mut ctx = Ctx {
                        emit: &mut emit,
                        stop,
                        rng: SplitMix64::new(seed.wrapping_add(40)),
                        device: dev.clone(),
                    };
                    det.fit(&mut view, &mut ctx)
                };
                match fit {
                    Ok(()) => {}
                    Err(DetectError::Stopped) => {
                        out.write(dir)?;
                        return Ok(RunState::Stopped);
                    }
                    Err(e) => {
                        out.write(dir)?;
                        return Err(anyhow::anyhow!(
                            "{mname}, seed {seed}, held out {held}: {e}"
                        ));
                    }
                }
                record_events(
                    &mut out,
                    &mname,
                    seed,
                    &held,
                    &events,
                    rot,
                    exp.pools.histogram_bins,
                    &name,
                );
                // test
                let tau = det.threshold();
                for (f, pool) in &task.test {
                    let b = block(pool);
                    let scores = det.score(&b.x)?;
                    let labels: Vec<bool> = b.y.iter().map(|&y| y == 1).collect();
                    let tm = eval::ThresholdMetrics::at(&labels, &scores, tau)?;
                    let auc = eval::roc_auc(&labels, &scores)?;
                    let ap = eval::average_precision(&labels, &scores)?;
                    let fpr = eval::fpr95(&labels, &scores)?.anomaly_positive.fpr;
                    let fname = name(*f);
                    let _ = writeln!(
                        out.metrics,
                        "{mname},{seed},{fname},{},{},{},{},{ap},{auc},{fpr},{tau}",
                        tm.precision, tm.recall, tm.accuracy, tm.f1
                    );
                    for (i, (&r, &s)) in pool.rows.iter().zip(&scores).enumerate() {
                        let _ = writeln!(
                            out.scores,
                            "{mname},{seed},{held},{},{},{s}",
                            table.source_row[r], b.y[i]
                        );
                    }
                    out.cells.push(Cell {
                        method: mname.clone(),
                        family: fname.clone(),
                        seed,
                        at_tau: tm,
                        ap,
                        auc,
                        fpr95: fpr,
                    });
                    sink(RunEvent::Finished {
                        method: mname.clone(),
                        seed,
                        held_out: fname,
                        auc,
                        ap,
                    });
                }
                det.save(&dir.join("models").join(format!(
                    "{mname}_seed{seed}_{}.safetensors",
                    held.replace(['/', ' '], "_")
                )))?;
                out.write(dir)?;
            }
        }
    }
    Ok(RunState::Finished)
}

#[allow(clippy::too_many_arguments)]
fn record_events(
    out: &mut Out,
    m: &str,
    seed: u64,
    rot_name: &str,
    events: &[Event],
    rot: &crate::split::Rotation,
    bins: usize,
    name: &dyn Fn(FamilyId) -> String,
) {
    let edges = eval::equal_bins(0.0, 1.0, bins).unwrap_or_default();
    let task_name = |t: FamilyId| match t {
        FamilyId::MAX => "inner".to_string(),
        x if x == FamilyId::MAX - 1 => "outer_pooled".to_string(),
        f => name(f),
    };
    for e in events {
        match e {
            Event::Checkpoint {
                episode,
                stage,
                temperature,
                families,
            } => {
                for fs in families {
                    let role = if rot.held_out.contains(&fs.family) {
                        "held_out"
                    } else {
                        "seen"
                    };
                    let labels: Vec<bool> = fs.labels.iter().map(|&y| y == 1).collect();
                    let auc = eval::roc_auc(&labels, &fs.scores).unwrap_or(f64::NAN);
                    let ap = eval::average_precision(&labels, &fs.scores).unwrap_or(f64::NAN);
                    let f = name(fs.family);
                    let st = stage.as_str();
                    let _ = writeln!(out.checkpoints, "{m},{seed},{rot_name},{episode},{st},{f},{role},{auc},{ap},{},{temperature}", fs.margin);
                    for (class, want) in [("normal", false), ("anomaly", true)] {
                        let v: Vec<f64> = fs
                            .scores
                            .iter()
                            .zip(&labels)
                            .filter(|(_, &l)| l == want)
                            .map(|(&s, _)| s)
                            .collect();
                        if let Ok(h) = eval::histogram(&v, &edges) {
                            for (i, c) in h.iter().enumerate() {
                                let _ = writeln!(
                                    out.histograms,
                                    "{m},{seed},{rot_name},{episode},{st},{f},{class},{},{},{c}",
                                    edges[i],
                                    edges[i + 1]
                                );
                            }
                        }
                    }
                    if role == "held_out" {
                        if let Ok(roc) = eval::roc_curve(&labels, &fs.scores) {
                            for (x, y) in decimate(&roc.fpr, &roc.tpr, 200) {
                                let _ = writeln!(
                                    out.curves,
                                    "{m},{seed},{rot_name},{episode},{st},{f},roc,{x},{y}"
                                );
                            }
                        }
                        if let Ok(pr) = eval::precision_recall_curve(&labels, &fs.scores) {
                            for (x, y) in decimate(&pr.recall, &pr.precision, 200) {
                                let _ = writeln!(
                                    out.curves,
                                    "{m},{seed},{rot_name},{episode},{st},{f},pr,{x},{y}"
                                );
                            }
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
                    let _ = writeln!(
                        out.pcgrad,
                        "{m},{seed},{rot_name},{episode},{step},{},{},{c},{projected}",
                        task_name(tasks[i]),
                        task_name(tasks[j])
                    );
                }
            }
            Event::Threshold { episode, tau, f1 } => {
                let _ = writeln!(out.thresholds, "{m},{seed},{rot_name},{episode},{tau},{f1}");
            }
            _ => {}
        }
    }
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
