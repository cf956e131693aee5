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

    /// Reads the CSV files of a run folder (missing files are empty).
    pub fn load(dir: &Path) -> Result<RunData> {
        let metrics = read_rows(dir, "metrics.csv", METRICS_HEADER, |f| {
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
            })
        })?;
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
        let u = |k: &UnitKey| {
            format!(
                "{},{},{}",
                csv_field(&k.method),
                k.seed,
                csv_field(&k.rotation)
            )
        };
        let mut metrics = format!("{METRICS_HEADER}\n");
        for r in &self.metrics {
            let _ = writeln!(
                metrics,
                "{},{},{},{},{},{},{},{},{},{},{}",
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
                r.tau
            );
        }
        let mut checkpoints = format!("{CHECKPOINTS_HEADER}\n");
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
        let mut pcgrad = format!("{PCGRAD_HEADER}\n");
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
        let mut histograms = format!("{HISTOGRAMS_HEADER}\n");
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
        let mut curves = format!("{CURVES_HEADER}\n");
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
        let mut losses = format!("{LOSSES_HEADER}\n");
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
        let mut epochs = format!("{EPOCHS_HEADER}\n");
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
        let mut thresholds = format!("{THRESHOLDS_HEADER}\n");
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
        let mut scores = format!("{SCORES_HEADER}\n");
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
        let status = std::fs::read_to_string(dir.join("status.txt"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown (no status.txt)".into());
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
    pub status: String,
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
            let status = std::fs::read_to_string(dir.join("status.txt"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
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

    #[test]
    fn csv_quoting_round_trips() {
        for s in ["plain", "a,b", "say \"hi\"", "", "x,\"y\",z"] {
            let line = format!("{},{}", csv_field(s), csv_field("tail"));
            assert_eq!(split_csv_line(&line), vec![s.to_string(), "tail".into()]);
        }
    }
}
