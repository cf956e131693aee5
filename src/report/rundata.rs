//! A run folder as typed rows: what `heldout run` writes, what the GUI draws live and reopens.
//!
//! The runner appends rows here as events arrive and serialises them to the folder's CSV files;
//! it also sends each batch of new rows to its listener (`RunEvent::Data`), so the live view and
//! a reopened run are drawn from the same rows.

use crate::detect::Stage;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Test metrics of one (method, seed, held-out family) at τ*.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub method: String,
    pub seed: u64,
    pub held_out: String,
    pub precision: f64,
    pub recall: f64,
    pub accuracy: f64,
    pub f1: f64,
    pub ap: f64,
    pub auc: f64,
    pub fpr95: f64,
    pub tau: f64,
    /// How τ was chosen: `val_best_f1` (τ* on the seen-family validation pool) or
    /// `fallback_0.5` (the pool could not give one; the run warned) — the primary rows, one per
    /// (method, seed, held-out family) — or another `tau_policy`'s label (`val_fpr_0.05`: a
    /// target false-positive rate on validation normals); `unrecorded` in folders written before
    /// the column existed.
    pub threshold: String,
    /// The false-positive rate realised on the test block's normals at τ (NaN in folders
    /// written before the column existed).
    pub fpr: f64,
}

impl MetricRow {
    /// Whether this is the row of the primary threshold τ* (or its fallback): the one row per
    /// (method, seed, held-out family) that every AUC table reads (AUC-ROC and AP are the same
    /// on every policy's row).
    pub fn is_primary(&self) -> bool {
        matches!(
            self.threshold.as_str(),
            "val_best_f1" | "fallback_0.5" | "unrecorded"
        )
    }
}

/// The primary rows of `metrics` ([`MetricRow::is_primary`]).
pub fn primary_metrics(metrics: &[MetricRow]) -> Vec<MetricRow> {
    metrics.iter().filter(|m| m.is_primary()).cloned().collect()
}

/// Which unit (method × seed × rotation) a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitKey {
    pub method: String,
    pub seed: u64,
    /// The held-out families of the rotation, joined with `+`.
    pub rotation: String,
}

/// A checkpoint's metrics on one family's fixed pool.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    pub unit: UnitKey,
    pub episode: usize,
    pub stage: Stage,
    pub family: String,
    /// Held out in this rotation (else a seen few-shot family).
    pub held_out: bool,
    pub auc: f64,
    pub ap: f64,
    /// Mean calibrated normal logit of normals minus that of anomalies.
    pub margin: f64,
    pub temperature: f64,
}

/// One histogram bin of a checkpoint's scores (fixed bins over [0, 1]).
#[derive(Debug, Clone, PartialEq)]
pub struct HistRow {
    pub unit: UnitKey,
    pub episode: usize,
    pub stage: Stage,
    pub family: String,
    pub anomaly: bool,
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// ROC or PR curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// x = false-positive rate, y = true-positive rate.
    Roc,
    /// x = recall, y = precision.
    Pr,
}

impl Curve {
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::Roc => "roc",
            Curve::Pr => "pr",
        }
    }
}

/// One point of a held-out family's curve at a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    pub unit: UnitKey,
    pub episode: usize,
    pub stage: Stage,
    pub family: String,
    pub curve: Curve,
    pub x: f64,
    pub y: f64,
}

/// The cosine between two task gradients at one outer step, before projection.
#[derive(Debug, Clone, PartialEq)]
pub struct PcgradRow {
    pub unit: UnitKey,
    pub episode: usize,
    pub step: usize,
    /// `inner`, `outer_pooled` or a family name.
    pub task_i: String,
    pub task_j: String,
    pub cosine: f64,
    /// Whether PCGrad projected one of the pair (cosine < 0).
    pub projected: bool,
}

/// The training loss of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct LossRow {
    pub unit: UnitKey,
    pub episode: usize,
    pub stage: Stage,
    pub step: usize,
    pub loss: f64,
}

/// One named loss term of a method trained in epochs, averaged over the epoch's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    pub unit: UnitKey,
    /// The training phase (`supervised`, `pretrain`, …).
    pub phase: String,
    /// 1-based, of `epochs` in the phase.
    pub epoch: usize,
    pub epochs: usize,
    /// The loss term (`loss`, `bce`, `reconstruction`, …).
    pub term: String,
    pub value: f64,
}

/// τ* chosen after an episode on the seen-family validation pool.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRow {
    pub unit: UnitKey,
    pub episode: usize,
    pub tau: f64,
    pub val_f1: f64,
}

/// One scored test row.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub unit: UnitKey,
    /// The test block's family (a held-out family of the rotation).
    pub family: String,
    /// Row number in the source table.
    pub row: u64,
    pub anomaly: bool,
    pub score: f64,
}

/// Everything a run folder holds besides the weights; also a batch of new rows during a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunData {
    pub metrics: Vec<MetricRow>,
    pub checkpoints: Vec<CheckpointRow>,
    pub histograms: Vec<HistRow>,
    pub curves: Vec<CurveRow>,
    pub pcgrad: Vec<PcgradRow>,
    pub losses: Vec<LossRow>,
    pub epochs: Vec<EpochRow>,
    pub thresholds: Vec<ThresholdRow>,
    pub scores: Vec<ScoreRow>,
}

/// The CSV files of a run folder, in the order they are written.
pub const FILES: [&str; 9] = [
    "metrics.csv",
    "checkpoints.csv",
    "pcgrad.csv",
    "histograms.csv",
    "curves.csv",
    "losses.csv",
    "epochs.csv",
    "thresholds.csv",
    "scores.csv",
];

/// A field for a CSV line: quoted when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Splits one CSV line (RFC 4180 quoting, no embedded line breaks).
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn stage_from(s: &str) -> Option<Stage> {
    match s {
        "pre" => Some(Stage::Pre),
        "inner" => Some(Stage::Inner),
        "final" => Some(Stage::Final),
        "outer" => Some(Stage::Outer),
        "pretrain" => Some(Stage::Pretrain),
        _ => None,
    }
}

/// Reads one CSV of a run folder, checking its header, and maps each row.
fn read_rows<T>(
    dir: &Path,
    file: &str,
    header: &str,
    mut f: impl FnMut(&[String]) -> Option<T>,
) -> Result<Vec<T>> {
    let path = dir.join(file);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut lines = text.lines();
    let head = lines.next().unwrap_or("");
    if head != header {
        bail!(
            "{}: unexpected header `{head}` (expected `{header}`) — written by another version of heldout?",
            path.display()
        );
    }
    let n = header.split(',').count();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields = split_csv_line(line);
        let row = if fields.len() == n { f(&fields) } else { None };
        match row {
            Some(r) => rows.push(r),
            None => bail!(
                "{}: line {} is not a valid row: `{line}`",
                path.display(),
                i + 2
            ),
        }
    }
    Ok(rows)
}

/// The first line of a run-folder file, if it can be read.
fn header_of(dir: &Path, file: &str) -> Option<String> {
    use std::io::BufRead;
    let f = std::fs::File::open(dir.join(file)).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(f).read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

fn unit(f: &[String]) -> Option<UnitKey> {
    Some(UnitKey {
        method: f[0].clone(),
        seed: f[1].parse().ok()?,
        rotation: f[2].clone(),
    })
}

fn num(s: &str) -> Option<f64> {
    s.parse().ok()
}

pub const METRICS_HEADER: &str =
    "method,seed,held_out,precision,recall,accuracy,f1,ap,auc_roc,fpr95,tau,threshold,fpr";
/// `metrics.csv` as written before the `fpr` column (still read).
const METRICS_HEADER_V2: &str =
    "method,seed,held_out,precision,recall,accuracy,f1,ap,auc_roc,fpr95,tau,threshold";
/// `metrics.csv` as written before the `threshold` column (still read).
const METRICS_HEADER_V1: &str =
    "method,seed,held_out,precision,recall,accuracy,f1,ap,auc_roc,fpr95,tau";
pub const CHECKPOINTS_HEADER: &str =
    "method,seed,rotation,episode,stage,family,role,auc,ap,margin,temperature";
pub const PCGRAD_HEADER: &str = "method,seed,rotation,episode,step,task_i,task_j,cosine,projected";
pub const HISTOGRAMS_HEADER: &str =
    "method,seed,rotation,episode,stage,family,class,bin_lo,bin_hi,count";
pub const CURVES_HEADER: &str = "method,seed,rotation,episode,stage,family,curve,x,y";
pub const LOSSES_HEADER: &str = "method,seed,rotation,episode,stage,step,loss";
pub const EPOCHS_HEADER: &str = "method,seed,rotation,phase,epoch,epochs,term,value";
pub const THRESHOLDS_HEADER: &str = "method,seed,rotation,episode,tau,val_f1";
pub const SCORES_HEADER: &str = "method,seed,rotation,family,row,label,score";

impl RunData {
    /// Appends another batch of rows.
    pub fn extend(&mut self, other: RunData) {
        self.metrics.extend(other.metrics);
        self.checkpoints.extend(other.checkpoints);
        self.histograms.extend(other.histograms);
        self.curves.extend(other.curves);
        self.pcgrad.extend(other.pcgrad);
        self.losses.extend(other.losses);
        self.epochs.extend(other.epochs);
        self.thresholds.extend(other.thresholds);
        self.scores.extend(other.scores);
    }

    pub fn is_empty(&self) -> bool {
        *self == RunData::default()
    }

    /// Rows held, all tables together.
    pub fn row_count(&self) -> usize {
        self.metrics.len()
            + self.checkpoints.len()
            + self.histograms.len()
            + self.curves.len()
            + self.pcgrad.len()
            + self.losses.len()
            + self.epochs.len()
            + self.thresholds.len()
            + self.scores.len()
    }

    /// Reads the CSV files of a run folder (missing files are empty).
    pub fn load(dir: &Path) -> Result<RunData> {
        let metric = |f: &[String]| {
            Some(MetricRow {
                method: f[0].clone(),
                seed: f[1].parse().ok()?,
                held_out: f[2].clone(),
                precision: num(&f[3])?,
                recall: num(&f[4])?,
                accuracy: num(&f[5])?,
                f1: num(&f[6])?,
                ap: num(&f[7])?,
                auc: num(&f[8])?,
                fpr95: num(&f[9])?,
                tau: num(&f[10])?,
                threshold: f.get(11).cloned().unwrap_or_else(|| "unrecorded".into()),
                fpr: match f.get(12) {
                    Some(v) => num(v)?,
                    None => f64::NAN,
                },
            })
        };
        let metrics = match header_of(dir, "metrics.csv").as_deref() {
            Some(METRICS_HEADER_V1) => read_rows(dir, "metrics.csv", METRICS_HEADER_V1, metric)?,
            Some(METRICS_HEADER_V2) => read_rows(dir, "metrics.csv", METRICS_HEADER_V2, metric)?,
            _ => read_rows(dir, "metrics.csv", METRICS_HEADER, metric)?,
        };
        let checkpoints = read_rows(dir, "checkpoints.csv", CHECKPOINTS_HEADER, |f| {
            Some(CheckpointRow {
                unit: unit(f)?,
                episode: f[3].parse().ok()?,
                stage: stage_from(&f[4])?,
                family: f[5].clone(),
                held_out: match f[6].as_str() {
                    "held_out" => true,
                    "seen" => false,
                    _ => return None,
                },
                auc: num(&f[7])?,
                ap: num(&f[8])?,
                margin: num(&f[9])?,
                temperature: num(&f[10])?,
            })
        })?;
        let pcgrad = read_rows(dir, "pcgrad.csv", PCGRAD_HEADER, |f| {
            Some(PcgradRow {
                unit: unit(f)?,
                episode: f[3].parse().ok()?,
                step: f[4].parse().ok()?,
                task_i: f[5].clone(),
                task_j: f[6].clone(),
                cosine: num(&f[7])?,
                projected: f[8].parse().ok()?,
            })
        })?;
        let histograms = read_rows(dir, "histograms.csv", HISTOGRAMS_HEADER, |f| {
            Some(HistRow {
                unit: unit(f)?,
                episode: f[3].parse().ok()?,
                stage: stage_from(&f[4])?,
                family: f[5].clone(),
                anomaly: match f[6].as_str() {
                    "anomaly" => true,
                    "normal" => false,
                    _ => return None,
                },
                lo: num(&f[7])?,
                hi: num(&f[8])?,
                count: f[9].parse().ok()?,
            })
        })?;
        let curves = read_rows(dir, "curves.csv", CURVES_HEADER, |f| {
            Some(CurveRow {
                unit: unit(f)?,
                episode: f[3].parse().ok()?,
                stage: stage_from(&f[4])?,
                family: f[5].clone(),
                curve: match f[6].as_str() {
                    "roc" => Curve::Roc,
                    "pr" => Curve::Pr,
                    _ => return None,
                },
                x: num(&f[7])?,
                y: num(&f[8])?,
            })
        })?;
        let losses = read_rows(dir, "losses.csv", LOSSES_HEADER, |f| {
            Some(LossRow {
                unit: unit(f)?,
                episode: f[3].parse().ok()?,
                stage: stage_from(&f[4])?,
                step: f[5].parse().ok()?,
                loss: num(&f[6])?,
            })
        })?;
        let epochs = read_rows(dir, "epochs.csv", EPOCHS_HEADER, |f| {
            Some(EpochRow {
                unit: unit(f)?,
                phase: f[3].clone(),
                epoch: f[4].parse().ok()?,
                epochs: f[5].parse().ok()?,
                term: f[6].clone(),
                value: num(&f[7])?,
            })
        })?;
        let thresholds = read_rows(dir, "thresholds.csv", THRESHOLDS_HEADER, |f| {
            Some(ThresholdRow {
                unit: unit(f)?,
                episode: f[3].parse().ok()?,
                tau: num(&f[4])?,
                val_f1: num(&f[5])?,
            })
        })?;
        let scores = read_rows(dir, "scores.csv", SCORES_HEADER, |f| {
            Some(ScoreRow {
                unit: unit(f)?,
                family: f[3].clone(),
                row: f[4].parse().ok()?,
                anomaly: match f[5].as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                },
                score: num(&f[6])?,
            })
        })?;
        Ok(RunData {
            metrics,
            checkpoints,
            histograms,
            curves,
            pcgrad,
            losses,
            epochs,
            thresholds,
            scores,
        })
    }

    /// The CSV text of each file in [`FILES`], in that order.
    pub fn to_csv(&self) -> Vec<(&'static str, String)> {
        self.csv_text(true)
    }

    /// The rows of each file in [`FILES`] as CSV lines without the header: what a finished
    /// unit appends to the run folder's files.
    pub fn to_csv_rows(&self) -> Vec<(&'static str, String)> {
        self.csv_text(false)
    }

    fn csv_text(&self, header: bool) -> Vec<(&'static str, String)> {
        let head = |h: &str| {
            if header {
                format!("{h}\n")
            } else {
                String::new()
            }
        };
        let u = |k: &UnitKey| {
            format!(
                "{},{},{}",
                csv_field(&k.method),
                k.seed,
                csv_field(&k.rotation)
            )
        };
        let mut metrics = head(METRICS_HEADER);
        for r in &self.metrics {
            let _ = writeln!(
                metrics,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&r.method),
                r.seed,
                csv_field(&r.held_out),
                r.precision,
                r.recall,
                r.accuracy,
                r.f1,
                r.ap,
                r.auc,
                r.fpr95,
                r.tau,
                csv_field(&r.threshold),
                r.fpr
            );
        }
        let mut checkpoints = head(CHECKPOINTS_HEADER);
        for r in &self.checkpoints {
            let _ = writeln!(
                checkpoints,
                "{},{},{},{},{},{},{},{},{}",
                u(&r.unit),
                r.episode,
                r.stage.as_str(),
                csv_field(&r.family),
                if r.held_out { "held_out" } else { "seen" },
                r.auc,
                r.ap,
                r.margin,
                r.temperature
            );
        }
        let mut pcgrad = head(PCGRAD_HEADER);
        for r in &self.pcgrad {
            let _ = writeln!(
                pcgrad,
                "{},{},{},{},{},{},{}",
                u(&r.unit),
                r.episode,
                r.step,
                csv_field(&r.task_i),
                csv_field(&r.task_j),
                r.cosine,
                r.projected
            );
        }
        let mut histograms = head(HISTOGRAMS_HEADER);
        for r in &self.histograms {
            let _ = writeln!(
                histograms,
                "{},{},{},{},{},{},{},{}",
                u(&r.unit),
                r.episode,
                r.stage.as_str(),
                csv_field(&r.family),
                if r.anomaly { "anomaly" } else { "normal" },
                r.lo,
                r.hi,
                r.count
            );
        }
        let mut curves = head(CURVES_HEADER);
        for r in &self.curves {
            let _ = writeln!(
                curves,
                "{},{},{},{},{},{},{}",
                u(&r.unit),
                r.episode,
                r.stage.as_str(),
                csv_field(&r.family),
                r.curve.as_str(),
                r.x,
                r.y
            );
        }
        let mut losses = head(LOSSES_HEADER);
        for r in &self.losses {
            let _ = writeln!(
                losses,
                "{},{},{},{},{}",
                u(&r.unit),
                r.episode,
                r.stage.as_str(),
                r.step,
                r.loss
            );
        }
        let mut epochs = head(EPOCHS_HEADER);
        for r in &self.epochs {
            let _ = writeln!(
                epochs,
                "{},{},{},{},{},{}",
                u(&r.unit),
                csv_field(&r.phase),
                r.epoch,
                r.epochs,
                csv_field(&r.term),
                r.value
            );
        }
        let mut thresholds = head(THRESHOLDS_HEADER);
        for r in &self.thresholds {
            let _ = writeln!(
                thresholds,
                "{},{},{},{}",
                u(&r.unit),
                r.episode,
                r.tau,
                r.val_f1
            );
        }
        let mut scores = head(SCORES_HEADER);
        for r in &self.scores {
            let _ = writeln!(
                scores,
                "{},{},{},{},{}",
                u(&r.unit),
                csv_field(&r.family),
                r.row,
                u8::from(r.anomaly),
                r.score
            );
        }
        vec![
            ("metrics.csv", metrics),
            ("checkpoints.csv", checkpoints),
            ("pcgrad.csv", pcgrad),
            ("histograms.csv", histograms),
            ("curves.csv", curves),
            ("losses.csv", losses),
            ("epochs.csv", epochs),
            ("thresholds.csv", thresholds),
            ("scores.csv", scores),
        ]
    }

    /// Only the rows of `units` (what `heldout run --resume` keeps). A metrics row belongs to
    /// the unit of its method and seed whose rotation holds its held-out family.
    pub fn only_units(self, units: &[UnitKey]) -> RunData {
        let keep = |u: &UnitKey| units.contains(u);
        let metric_in = |m: &MetricRow| {
            units.iter().any(|u| {
                u.method == m.method
                    && u.seed == m.seed
                    && u.rotation.split('+').any(|f| f == m.held_out)
            })
        };
        RunData {
            metrics: self.metrics.into_iter().filter(metric_in).collect(),
            checkpoints: self
                .checkpoints
                .into_iter()
                .filter(|r| keep(&r.unit))
                .collect(),
            histograms: self
                .histograms
                .into_iter()
                .filter(|r| keep(&r.unit))
                .collect(),
            curves: self.curves.into_iter().filter(|r| keep(&r.unit)).collect(),
            pcgrad: self.pcgrad.into_iter().filter(|r| keep(&r.unit)).collect(),
            losses: self.losses.into_iter().filter(|r| keep(&r.unit)).collect(),
            epochs: self.epochs.into_iter().filter(|r| keep(&r.unit)).collect(),
            thresholds: self
                .thresholds
                .into_iter()
                .filter(|r| keep(&r.unit))
                .collect(),
            scores: self.scores.into_iter().filter(|r| keep(&r.unit)).collect(),
        }
    }

    /// Bounds the per-episode rows (histograms, curves, PCGrad cosines) to at most `max` + 1
    /// episodes per unit: episodes 1, 1 + s, 1 + 2s, … with the smallest power-of-two stride s
    /// that keeps `max` of them, plus the unit's latest episode. Checkpoint metrics, losses,
    /// epochs, thresholds and test metrics stay whole (one row per checkpoint or step). As s
    /// only grows with the latest episode, thinning again as rows stream in never needs a row
    /// dropped before: the workbench's live view stays bounded however many episodes a run has.
    pub fn thin_episodes(&mut self, max: usize) {
        self.thin_episodes_with(|_| max)
    }

    /// [`RunData::thin_episodes`] with a limit per unit (`max_for(unit)` episodes, at least 1,
    /// plus the latest): the workbench keeps more of the unit that is training than of finished
    /// ones. Rows stay in their order.
    pub fn thin_episodes_with(&mut self, max_for: impl Fn(&UnitKey) -> usize) {
        use std::collections::HashMap;
        let mut latest: HashMap<&UnitKey, usize> = HashMap::new();
        for (u, e) in self
            .histograms
            .iter()
            .map(|r| (&r.unit, r.episode))
            .chain(self.curves.iter().map(|r| (&r.unit, r.episode)))
            .chain(self.pcgrad.iter().map(|r| (&r.unit, r.episode)))
        {
            let l = latest.entry(u).or_insert(0);
            *l = (*l).max(e);
        }
        let rule: HashMap<UnitKey, (usize, usize)> = latest
            .into_iter()
            .map(|(u, last)| {
                let max = max_for(u).max(1);
                let mut stride = 1usize;
                while last.saturating_sub(1) / stride + 1 > max {
                    stride *= 2;
                }
                (u.clone(), (stride, last))
            })
            .collect();
        let keep = |u: &UnitKey, e: usize| {
            rule.get(u)
                .is_none_or(|&(s, last)| e == last || e.saturating_sub(1) % s == 0)
        };
        self.histograms.retain(|r| keep(&r.unit, r.episode));
        self.curves.retain(|r| keep(&r.unit, r.episode));
        self.pcgrad.retain(|r| keep(&r.unit, r.episode));
    }

    /// The methods, in first-seen order.
    pub fn methods(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let all = self
            .metrics
            .iter()
            .map(|m| &m.method)
            .chain(self.checkpoints.iter().map(|c| &c.unit.method))
            .chain(self.losses.iter().map(|c| &c.unit.method))
            .chain(self.epochs.iter().map(|c| &c.unit.method));
        for m in all {
            if !v.contains(m) {
                v.push(m.clone());
            }
        }
        v
    }

    /// The units that have checkpoints, sorted.
    pub fn units(&self) -> Vec<UnitKey> {
        let mut v: Vec<UnitKey> = self
            .checkpoints
            .iter()
            .map(|c| c.unit.clone())
            .chain(self.losses.iter().map(|c| c.unit.clone()))
            .chain(self.epochs.iter().map(|c| c.unit.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// How a run folder's run stands, from its `status.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Finished,
    /// Stopped when asked (the text says what it kept).
    Stopped(String),
    Failed(String),
    /// A process is writing it now.
    Running {
        pid: u32,
        done: usize,
        total: usize,
    },
    /// It says `running` but its process is gone (killed, crashed, machine restarted): the
    /// units it lists as finished are kept and `heldout run --resume` runs the rest.
    Interrupted {
        done: usize,
        total: usize,
    },
    /// No or an unreadable `status.txt`.
    Unknown(String),
}

impl RunStatus {
    /// Whether `heldout run --resume` (or the workbench's Resume) can continue it.
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            RunStatus::Interrupted { .. } | RunStatus::Stopped(_) | RunStatus::Failed(_)
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunStatus::Finished => write!(f, "finished"),
            RunStatus::Stopped(s) | RunStatus::Failed(s) | RunStatus::Unknown(s) => {
                write!(f, "{s}")
            }
            RunStatus::Running { pid, done, total } => {
                write!(f, "running (pid {pid}): {done} of {total} units finished")
            }
            RunStatus::Interrupted { done, total } => write!(
                f,
                "interrupted: {done} of {total} units finished — resume with `heldout run --resume` (or Resume in the Runs tab)"
            ),
        }
    }
}

/// Whether process `pid` is alive. On systems without `/proc` it cannot be told: a run is
/// then taken as interrupted unless it is this process's.
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

/// Reads a run folder's status (see [`RunStatus`]).
pub fn run_status(dir: &Path) -> RunStatus {
    let text = match std::fs::read_to_string(dir.join("status.txt")) {
        Ok(t) => t.trim().to_string(),
        Err(_) => return RunStatus::Unknown("unknown (no status.txt)".into()),
    };
    if text == "finished" {
        return RunStatus::Finished;
    }
    if text.starts_with("stopped") {
        return RunStatus::Stopped(text);
    }
    if text.starts_with("failed") {
        return RunStatus::Failed(text);
    }
    if let Some(rest) = text.strip_prefix("running") {
        // `running (pid P): D of T units finished`; older folders say only `running`
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|t| t.parse().ok())
            .collect();
        return match nums[..] {
            [pid, done, total] if process_alive(pid as u32) => RunStatus::Running {
                pid: pid as u32,
                done: done as usize,
                total: total as usize,
            },
            [_, done, total] => RunStatus::Interrupted {
                done: done as usize,
                total: total as usize,
            },
            _ => RunStatus::Interrupted { done: 0, total: 0 },
        };
    }
    RunStatus::Unknown(text)
}

/// A run folder: its rows, the experiment as run and how it ended.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// `finished`, `stopped: …`, `failed: …` or `running`.
    pub status: String,
    /// `config.ron` as written (parse it with `experiment::Experiment::parse`).
    pub config_text: String,
    pub data: RunData,
}

impl RunFolder {
    /// Reads a run folder written by `heldout run` or the workbench.
    pub fn load(dir: &Path) -> Result<RunFolder> {
        let cfg = dir.join("config.ron");
        if !cfg.exists() {
            bail!(
                "{}: not a run folder (no config.ron) — choose a folder written by `heldout run` or the workbench",
                dir.display()
            );
        }
        let config_text =
            std::fs::read_to_string(&cfg).with_context(|| cfg.display().to_string())?;
        let status = run_status(dir).to_string();
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            status,
            config_text,
            data: RunData::load(dir)?,
        })
    }

    /// The folder's name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A run folder found under a root, without its rows (for lists).
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub name: String,
    pub status: RunStatus,
    /// Seconds since the epoch of config.ron's modification.
    pub modified: u64,
}

/// Run folders directly under `root` (those with a config.ron), newest first.
pub fn list_runs(root: &Path) -> Vec<RunEntry> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut v: Vec<RunEntry> = rd
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let meta = std::fs::metadata(dir.join("config.ron")).ok()?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let status = run_status(&dir);
            Some(RunEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                dir,
                status,
                modified,
            })
        })
        .collect();
    v.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.name.cmp(&a.name)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streaming 200 episodes into a live copy and thinning at every new episode (as the
    /// workbench's job does) keeps at most max + 1 episodes per unit, always the first and the
    /// latest, and the same rows as thinning once at the end.
    #[test]
    fn thinning_bounds_the_episodes_kept_while_rows_stream_in() {
        let unit = |m: &str| UnitKey {
            method: m.into(),
            seed: 0,
            rotation: "A".into(),
        };
        let hist = |u: &UnitKey, episode: usize| HistRow {
            unit: u.clone(),
            episode,
            stage: Stage::Outer,
            family: "A".into(),
            anomaly: false,
            lo: 0.0,
            hi: 1.0,
            count: 1,
        };
        let (a, b) = (unit("meta"), unit("odin"));
        let mut live = RunData::default();
        let mut all = RunData::default();
        for e in 1..=200 {
            // unit b stops after 7 episodes (a method without episodes, or a short one)
            let mut rows = vec![hist(&a, e), hist(&a, e)];
            if e <= 7 {
                rows.push(hist(&b, e));
            }
            let batch = RunData {
                histograms: rows,
                checkpoints: Vec::new(),
                ..RunData::default()
            };
            all.extend(batch.clone());
            live.extend(batch);
            live.thin_episodes(24);
            let eps = |u: &UnitKey| {
                let mut v: Vec<usize> = live
                    .histograms
                    .iter()
                    .filter(|h| &h.unit == u)
                    .map(|h| h.episode)
                    .collect();
                v.dedup();
                v
            };
            let ea = eps(&a);
            assert!(ea.len() <= 25, "episode {e}: {} kept", ea.len());
            assert_eq!((ea[0], *ea.last().unwrap()), (1, e));
            assert_eq!(eps(&b), (1..=e.min(7)).collect::<Vec<_>>());
        }
        assert!(
            live.histograms.len() <= 2 * 25 + 7,
            "{}",
            live.histograms.len()
        );
        all.thin_episodes(24);
        assert_eq!(live, all);
    }

    /// Per-unit limits: a unit thinned later to fewer episodes keeps a subset of what it had
    /// (power-of-two strides nest), always its first and latest episode.
    #[test]
    fn a_finished_unit_is_thinned_to_fewer_episodes_than_the_training_one() {
        let unit = |m: &str| UnitKey {
            method: m.into(),
            seed: 0,
            rotation: "A".into(),
        };
        let (a, b) = (unit("done"), unit("training"));
        let mut d = RunData::default();
        for e in 1..=40 {
            for u in [&a, &b] {
                d.pcgrad.push(PcgradRow {
                    unit: u.clone(),
                    episode: e,
                    step: 1,
                    task_i: "inner".into(),
                    task_j: "outer_pooled".into(),
                    cosine: 0.0,
                    projected: false,
                });
            }
        }
        let eps = |d: &RunData, u: &UnitKey| -> Vec<usize> {
            d.pcgrad
                .iter()
                .filter(|r| &r.unit == u)
                .map(|r| r.episode)
                .collect()
        };
        d.thin_episodes(24);
        let before = eps(&d, &a);
        d.thin_episodes_with(|u| if u == &b { 24 } else { 6 });
        let after = eps(&d, &a);
        assert_eq!(after, vec![1, 9, 17, 25, 33, 40]);
        assert!(after.iter().all(|e| before.contains(e)), "{before:?}");
        assert_eq!(eps(&d, &b), before);
    }

    #[test]
    fn csv_quoting_round_trips() {
        for s in ["plain", "a,b", "say \"hi\"", "", "x,\"y\",z"] {
            let line = format!("{},{}", csv_field(s), csv_field("tail"));
            assert_eq!(split_csv_line(&line), vec![s.to_string(), "tail".into()]);
        }
    }
}
