//! `heldout bench episode`: seconds per episode and per inner / outer step of the meta-learner
//! on the CIC-IDS2017 sample at the reference's sizes (`../shared/reference/results/cost.md`,
//! "3 / 1 / 2048": 3 episodes, 1 inner epoch, 2,048 normals per inner family, batch 256 / 128,
//! one held-out family, seed 0), timed from the detector's own events.

use super::config::{DataSpec, Device, Experiment, FileSpec, MetaLearnerParams, Method};
use super::run::{run, train_view, RunEvent};
use crate::detect::{Event, Stage};
use crate::split::{EpisodeSpec, HeldOut, Roles};
use anyhow::Result;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Timings of one benchmark run.
#[derive(Debug, Clone, Default)]
pub struct EpisodeTimings {
    pub episodes: usize,
    pub seconds_per_episode: f64,
    pub inner_steps_per_episode: f64,
    pub ms_per_inner_step: f64,
    pub outer_steps_per_episode: f64,
    pub ms_per_outer_step: f64,
    /// Seconds per episode outside the timed steps: checkpoints, τ*, the episode draw and
    /// bookkeeping (a remainder, not a measurement).
    pub eval_seconds_per_episode: f64,
    /// Checkpoint scoring per episode, measured: from the event before each checkpoint (the
    /// episode start or its stage's last step) to the checkpoint's event.
    pub checkpoint_seconds_per_episode: f64,
    /// Rows scored at a checkpoint (normals once, then every family's anomalies), and
    /// checkpoints scored per episode (the pre checkpoint reuses the previous after-outer one).
    pub rows_per_checkpoint: usize,
    pub checkpoints_per_episode: f64,
    pub peak_rss_mb: f64,
}

/// The reference-sized experiment on the CIC-IDS2017 sample.
pub fn reference_sized(data_dir: &Path, episodes: usize, device: Device) -> Experiment {
    let d = data_dir.join("cicids2017_improved_sample");
    Experiment {
        name: "bench-episode".into(),
        data: DataSpec::File(FileSpec {
            path: d.join("cicids2017_improved_sample.csv.gz"),
            label_column: "Label".into(),
            family_map: Some(d.join("family_map.csv")),
            keep_unmapped: false,
            drop_columns: vec![],
            categorical: Default::default(),
            missing: Default::default(),
            min_family_rows: 50,
            drop_duplicates: false,
            keep_identifiers: false,
        }),
        protocol: Default::default(),
        roles: Roles {
            normal: vec!["Benign".into()],
            held_out: HeldOut::Fixed(vec!["Botnet".into()]),
            few_shot: Default::default(),
            ignored: vec![],
        },
        split: Default::default(),
        pools: Default::default(),
        scaler: Default::default(),
        episodes: EpisodeSpec {
            count: episodes,
            ..Default::default()
        },
        method: Method::MetaLearner(MetaLearnerParams {
            inner_epochs: 1,
            inner_per_family: 2048,
            ..Default::default()
        }),
        compare: vec![],
        tau_policy: crate::eval::ThresholdPolicy::defaults(),
        seeds: vec![0],
        device,
        output: "runs".into(),
    }
}

/// A memory line of `/proc/self/status` (e.g. `"VmHWM:"`, peak RSS) in bytes; Linux only.
pub fn proc_status_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak RSS (`VmHWM`); writing "5" to `clear_refs` does so on Linux ≥ 4.0.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    proc_status_bytes("VmHWM:").map_or(0.0, |b| b as f64 / (1 << 20) as f64)
}

/// Runs the reference-sized experiment into `dir` and times it.
pub fn bench_episode(
    data_dir: &Path,
    episodes: usize,
    device: Device,
    checkpoint_cap: Option<usize>,
    dir: &Path,
) -> Result<EpisodeTimings> {
    let mut exp = reference_sized(data_dir, episodes, device);
    if let Some(cap) = checkpoint_cap {
        exp.pools.checkpoint_per_class = cap;
    }
    let (mut rows, mut checkpoints) = (0usize, 0usize);
    let stop = AtomicBool::new(false);
    let mut last: Option<(Stage, Instant)> = None;
    let (mut inner, mut outer) = (Vec::new(), Vec::new());
    let mut episode_start: Vec<Instant> = Vec::new();
    let mut episode_end: Option<Instant> = None;
    // the last training event (episode start or step) before a checkpoint, and the seconds
    // from it to each checkpoint's event: the checkpoint's scoring
    let mut before_checkpoint: Option<Instant> = None;
    let mut checkpoint_secs = 0.0f64;
    let mut sink = |e: RunEvent| {
        let now = Instant::now();
        if matches!(
            e,
            RunEvent::Detector(Event::Episode(_)) | RunEvent::Detector(Event::Progress { .. })
        ) {
            before_checkpoint = Some(now);
        }
        match e {
            RunEvent::Detector(Event::Episode(_)) => {
                episode_start.push(now);
                last = None;
            }
            RunEvent::Detector(Event::Progress { stage, .. }) => {
                if let Some((s, t)) = last {
                    if s == stage {
                        let ms = now.duration_since(t).as_secs_f64() * 1e3;
                        if stage == Stage::Inner {
                            inner.push(ms)
                        } else {
                            outer.push(ms)
                        }
                    }
                }
                last = Some((stage, now));
            }
            RunEvent::Detector(Event::Threshold { .. }) => episode_end = Some(now),
            RunEvent::Detector(Event::Checkpoint { families, .. }) => {
                checkpoints += 1;
                if let Some(t) = before_checkpoint.replace(now) {
                    checkpoint_secs += now.duration_since(t).as_secs_f64();
                }
                let count = |y: u8| {
                    let per = families
                        .iter()
                        .map(|f| f.labels.iter().filter(|&&l| l == y).count());
                    (per.clone().max().unwrap_or(0), per.sum::<usize>())
                };
                // the families share their normals (the longest family's); anomalies are their own
                rows = count(0).0 + count(1).1;
            }
            _ => {}
        }
    };
    let exp = exp.checked(Path::new("bench-episode"), Path::new("."))?;
    run(&exp, dir, &stop, &mut sink)?;
    let n = episode_start.len().max(1);
    let total = match (episode_start.first(), episode_end) {
        (Some(a), Some(b)) => b.duration_since(*a).as_secs_f64(),
        _ => 0.0,
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    // Each stage's first step also carries the previous stage's work, so it is not timed;
    // steps per episode count it back.
    let inner_steps = (inner.len() + n) as f64 / n as f64;
    let outer_steps = (outer.len() + n) as f64 / n as f64;
    let spe = total / n as f64;
    let eval = spe - (inner_steps * mean(&inner) + outer_steps * mean(&outer)) / 1e3;
    Ok(EpisodeTimings {
        episodes: n,
        seconds_per_episode: spe,
        inner_steps_per_episode: inner_steps,
        ms_per_inner_step: mean(&inner),
        outer_steps_per_episode: outer_steps,
        ms_per_outer_step: mean(&outer),
        eval_seconds_per_episode: eval.max(0.0),
        checkpoint_seconds_per_episode: checkpoint_secs / n as f64,
        rows_per_checkpoint: rows,
        checkpoints_per_episode: (checkpoints.saturating_sub(n - 1)) as f64 / n as f64,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Fit and score time of one method on one rotation (`heldout bench methods`).
#[derive(Debug, Clone)]
pub struct MethodTiming {
    pub method: String,
    /// Seconds of `fit` (τ* on the validation pool included, as every method chooses it there).
    pub fit_seconds: f64,
    /// Seconds to score the validation pool and the test block (the reference's `score_s`).
    pub score_seconds: f64,
    pub val_rows: usize,
    pub test_rows: usize,
    /// Test AUC-ROC (a check that the timed model is a working one).
    pub auc: f64,
    /// Peak RSS of the process while this method ran (the loaded table included).
    pub peak_rss_mb: f64,
}

/// Times each of `methods` on the CIC-IDS2017 sample with `held_out` held out, seed `seed`,
/// on the CPU, `repeat` times each (every repeat trains anew).
pub fn bench_methods(
    data_dir: &Path,
    methods: &[Method],
    held_out: &str,
    seed: u64,
    repeat: usize,
) -> Result<Vec<MethodTiming>> {
    use crate::detect::{BuildCtx, Ctx};
    let mut exp = reference_sized(data_dir, 1, Device::Cpu);
    exp.roles.held_out = HeldOut::Fixed(vec![held_out.into()]);
    let exp = exp.checked(Path::new("bench-methods"), Path::new("."))?;
    let table = super::plan::load_data(&exp, exp.base())?;
    let roles = exp.roles.resolve(&table).map_err(anyhow::Error::msg)?;
    let rot = roles
        .rotations
        .first()
        .ok_or_else(|| anyhow::anyhow!("held out {held_out}: no rotation"))?;
    let splits = crate::split::split_with(&table, seed, &exp.split);
    let (task, scaler, priority) =
        super::plan::prepare_rotation(&exp, &table, &splits, &roles.normal, rot, seed)?;
    let mut test_x = Vec::new();
    let mut test_y = Vec::new();
    for (_, pool) in &task.test {
        test_x.extend(scaler.transform(&table.features, &pool.rows));
        test_y.extend(pool.label.iter().map(|&y| y == 1));
    }
    let stop = AtomicBool::new(false);
    let mut out = Vec::new();
    for method in methods {
        for _ in 0..repeat.max(1) {
            reset_peak_rss();
            let mut view = train_view(method, &exp, &table, &task, &scaler, rot, &priority, seed);
            let mut det = method.build(&BuildCtx {
                d: table.n_features,
                seed,
                device: &candle_core::Device::Cpu,
                main: &exp.method,
            })?;
            let mut emit = |_e: Event| {};
            let mut ctx = Ctx {
                emit: &mut emit,
                stop: &stop,
                rng: crate::rng::SplitMix64::new(seed.wrapping_add(40)),
                device: candle_core::Device::Cpu,
                probe: None,
            };
            let t0 = Instant::now();
            det.fit(&mut view, &mut ctx)?;
            let fit_seconds = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let _val = det.score(&view.val.x)?;
            let scores = det.score(&test_x)?;
            let score_seconds = t1.elapsed().as_secs_f64();
            out.push(MethodTiming {
                method: method.name(),
                fit_seconds,
                score_seconds,
                val_rows: view.val.len(),
                test_rows: test_y.len(),
                auc: crate::eval::roc_auc(&test_y, &scores).unwrap_or(f64::NAN),
                peak_rss_mb: peak_rss_mb(),
            });
        }
    }
    Ok(out)
}

/// One unit of `heldout bench estimate`: wall time and peak RSS measured around it.
#[derive(Debug, Clone)]
pub struct UnitMeasure {
    pub method: String,
    pub seed: u64,
    pub held_out: String,
    /// From the unit's start to the next unit's (or the run's end): training, scoring, files.
    pub seconds: f64,
    /// Peak RSS of the process during the unit (reset at its start).
    pub peak_rss_bytes: f64,
}

/// Runs `exp` into `dir` and measures each unit; returns the estimate made before it (this
/// machine's calibration and limit), the units, the whole run's seconds and its peak RSS.
pub fn bench_estimate(
    exp: &super::CheckedExperiment,
    dir: &Path,
) -> Result<(super::Estimate, Vec<UnitMeasure>, f64, f64)> {
    let before = proc_status_bytes("VmRSS:").unwrap_or(0);
    let table = super::plan::load_data(exp, exp.base())?;
    super::run::release_freed_memory();
    eprintln!(
        "RSS before loading {:.0} MB, after (freed memory released) {:.0} MB; table {:.0} MB",
        before as f64 / 1e6,
        proc_status_bytes("VmRSS:").unwrap_or(0) as f64 / 1e6,
        super::estimate::table_bytes(&table) / 1e6
    );
    let est = super::Estimate::of(exp, &table).map_err(anyhow::Error::msg)?;
    drop(table);
    let stop = AtomicBool::new(false);
    let mut units: Vec<UnitMeasure> = Vec::new();
    let mut open: Option<(UnitMeasure, Instant)> = None;
    let close = |open: &mut Option<(UnitMeasure, Instant)>, units: &mut Vec<UnitMeasure>| {
        if let Some((mut u, t)) = open.take() {
            u.seconds = t.elapsed().as_secs_f64();
            u.peak_rss_bytes = proc_status_bytes("VmHWM:").unwrap_or(0) as f64;
            units.push(u);
        }
    };
    let t0 = Instant::now();
    let mut process_peak = 0f64;
    let mut sink = |e: RunEvent| {
        if let RunEvent::Unit {
            method,
            seed,
            held_out,
            ..
        } = e
        {
            close(&mut open, &mut units);
            process_peak = process_peak.max(units.last().map_or(0.0, |u| u.peak_rss_bytes));
            reset_peak_rss();
            open = Some((
                UnitMeasure {
                    method,
                    seed,
                    held_out,
                    seconds: 0.0,
                    peak_rss_bytes: 0.0,
                },
                Instant::now(),
            ));
        }
    };
    run(exp, dir, &stop, &mut sink)?;
    close(&mut open, &mut units);
    let total = t0.elapsed().as_secs_f64();
    let process_peak = units
        .iter()
        .map(|u| u.peak_rss_bytes)
        .fold(process_peak, f64::max);
    Ok((est, units, total, process_peak))
}

/// `heldout bench estimate`'s table: per method, the estimate beside the measurement and their
/// ratio (measured / estimated).
pub fn estimate_table(
    est: &super::Estimate,
    units: &[UnitMeasure],
    total: f64,
    process_peak: f64,
) -> String {
    use super::estimate::{bytes, duration};
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<26} {:>5} {:>10} {:>10} {:>10} {:>6}   {:>9} {:>9} {:>6}",
        "method",
        "units",
        "est s/unit",
        "meas mean",
        "meas max",
        "ratio",
        "est peak",
        "meas peak",
        "ratio"
    );
    for m in &est.methods {
        let mine: Vec<&UnitMeasure> = units.iter().filter(|u| u.method == m.name).collect();
        if mine.is_empty() {
            continue;
        }
        let mean = mine.iter().map(|u| u.seconds).sum::<f64>() / mine.len() as f64;
        let max = mine.iter().map(|u| u.seconds).fold(0.0, f64::max);
        let peak = mine.iter().map(|u| u.peak_rss_bytes).fold(0.0, f64::max);
        let est_peak = super::estimate::BASE_BYTES + est.data_bytes + m.unit_bytes();
        let _ = writeln!(
            s,
            "{:<26} {:>5} {:>10.3} {:>10.3} {:>10.3} {:>6.2}   {:>9} {:>9} {:>6.2}",
            m.name,
            mine.len(),
            m.seconds_per_unit,
            mean,
            max,
            mean / m.seconds_per_unit,
            bytes(est_peak),
            bytes(peak),
            peak / est_peak
        );
    }
    for m in &est.methods {
        let phases: Vec<String> = m
            .cost
            .phases
            .iter()
            .map(|p| {
                format!(
                    "{} {:.0} × {:.3} GFLOP = {:.3} s",
                    p.name,
                    p.steps,
                    p.flops / 1e9,
                    super::estimate::phase_seconds(p, &est.calibration)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  {}: {}; {:.0} run rows",
            m.name,
            phases.join(", "),
            m.cost.records
        );
    }
    let _ = writeln!(
        s,
        "whole run: estimated {} ({:.2} s), measured {:.2} s, ratio {:.2}; peak estimated {}, measured {} (process, training), ratio {:.2}",
        duration(est.total_seconds),
        est.total_seconds,
        total,
        total / est.total_seconds,
        bytes(est.peak_bytes),
        bytes(process_peak),
        process_peak / est.peak_bytes
    );
    s
}
