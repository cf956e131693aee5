//! The data behind every panel, computed once from a run's rows: histogram bins, ROC/PR points,
//! training curves, PCGrad cosines, per-method AUC bars. The exporter draws them and the
//! workbench's live view draws the same series.

use super::*;

pub(super) fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

pub(super) fn last_hist_episode(data: &RunData, unit: &UnitKey) -> Option<usize> {
    data.histograms
        .iter()
        .filter(|h| &h.unit == unit)
        .map(|h| h.episode)
        .max()
}

pub(super) fn last_curve_episode(
    data: &RunData,
    unit: &UnitKey,
    family: &str,
    curve: Curve,
) -> Option<usize> {
    data.curves
        .iter()
        .filter(|c| &c.unit == unit && c.family == family && c.curve == curve)
        .map(|c| c.episode)
        .max()
}

/// The families of a unit's checkpoints, held-out first, then seen, each in first-seen order;
/// `true` = held out. Families known only from histogram rows count as held out when the
/// rotation names them.
pub fn unit_families(data: &RunData, unit: &UnitKey) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = Vec::new();
    let rotation: Vec<&str> = unit.rotation.split('+').collect();
    let all = data
        .checkpoints
        .iter()
        .filter(|c| &c.unit == unit)
        .map(|c| (&c.family, c.held_out))
        .chain(
            data.histograms
                .iter()
                .filter(|h| &h.unit == unit)
                .map(|h| (&h.family, rotation.contains(&h.family.as_str()))),
        );
    for (f, h) in all {
        if !v.iter().any(|(g, _)| g == f) {
            v.push((f.clone(), h));
        }
    }
    let (mut held, seen): (Vec<_>, Vec<_>) = v.into_iter().partition(|(_, h)| *h);
    held.extend(seen);
    held
}

/// One histogram panel: a family's scores at one checkpoint, normals and anomalies counted in
/// the same fixed bins.
#[derive(Debug, Clone, PartialEq)]
pub struct HistPanel {
    pub family: String,
    pub held_out: bool,
    pub stage: Stage,
    /// Bin edges, one more than bins (ascending).
    pub edges: Vec<f64>,
    pub normal: Vec<u64>,
    pub anomaly: Vec<u64>,
    /// The checkpoint's AUC-ROC on this family's pool.
    pub auc: Option<f64>,
}

impl HistPanel {
    /// Normals in the pool (the sum of the normal bins).
    pub fn n_normal(&self) -> u64 {
        self.normal.iter().sum()
    }
    /// Anomalies in the pool.
    pub fn n_anomaly(&self) -> u64 {
        self.anomaly.iter().sum()
    }
    /// Each class's counts as shares of that class (sums to 1 unless the class is empty).
    pub fn shares(&self, anomaly: bool) -> Vec<f64> {
        let c = if anomaly { &self.anomaly } else { &self.normal };
        let n = c.iter().sum::<u64>().max(1) as f64;
        c.iter().map(|&x| x as f64 / n).collect()
    }
}

/// One family's row of panels, one per column of [`HistGrid::columns`] (`None` where no rows).
#[derive(Debug, Clone, PartialEq)]
pub struct HistRowPanels {
    pub family: String,
    pub held_out: bool,
    pub panels: Vec<Option<HistPanel>>,
}

/// The checkpoint stages a unit's figures show: the trained model (`Final`) for a method
/// without episodes, pre / after inner / after outer otherwise.
pub fn unit_stages(data: &RunData, unit: &UnitKey) -> Vec<Stage> {
    if data
        .checkpoints
        .iter()
        .any(|c| &c.unit == unit && c.stage == Stage::Final)
    {
        vec![Stage::Final]
    } else {
        STAGES.to_vec()
    }
}

/// The panels of the histogram figure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistGrid {
    pub episode: Option<usize>,
    /// The stage of each column: pre / after inner / after outer for the meta-learner, the
    /// trained model alone (`Final`) for methods without episodes.
    pub columns: Vec<Stage>,
    pub rows: Vec<HistRowPanels>,
}

/// The histogram panels of a unit at an episode (`None` = its last): one row per held-out
/// family (then per seen family when `seen`), one column per stage.
pub fn histogram_grid(
    data: &RunData,
    unit: &UnitKey,
    episode: Option<usize>,
    seen: bool,
) -> HistGrid {
    let Some(ep) = episode.or_else(|| last_hist_episode(data, unit)) else {
        return HistGrid::default();
    };
    let rows: Vec<&crate::report::HistRow> = data
        .histograms
        .iter()
        .filter(|h| &h.unit == unit && h.episode == ep)
        .collect();
    let columns: Vec<Stage> = unit_stages(data, unit);
    let mut out = Vec::new();
    for (family, held_out) in unit_families(data, unit) {
        if !held_out && !seen {
            continue;
        }
        let panels: Vec<Option<HistPanel>> = (0..columns.len())
            .map(|k| {
                let stage = columns[k];
                let sel: Vec<&&crate::report::HistRow> = rows
                    .iter()
                    .filter(|h| h.family == family && h.stage == stage)
                    .collect();
                if sel.is_empty() {
                    return None;
                }
                let mut bins: Vec<(f64, f64)> = sel.iter().map(|h| (h.lo, h.hi)).collect();
                bins.sort_by(|a, b| a.0.total_cmp(&b.0));
                bins.dedup_by(|a, b| a.0 == b.0);
                let mut normal = vec![0u64; bins.len()];
                let mut anomaly = vec![0u64; bins.len()];
                for h in &sel {
                    if let Some(i) = bins.iter().position(|b| b.0 == h.lo) {
                        let c = if h.anomaly { &mut anomaly } else { &mut normal };
                        c[i] += h.count;
                    }
                }
                let mut edges: Vec<f64> = bins.iter().map(|b| b.0).collect();
                edges.push(bins.last().map(|b| b.1).unwrap_or(1.0));
                let auc = data
                    .checkpoints
                    .iter()
                    .find(|c| {
                        &c.unit == unit && c.episode == ep && c.stage == stage && c.family == family
                    })
                    .and_then(|c| finite(c.auc));
                Some(HistPanel {
                    family: family.clone(),
                    held_out,
                    stage,
                    edges,
                    normal,
                    anomaly,
                    auc,
                })
            })
            .collect();
        if panels.iter().any(Option::is_some) {
            out.push(HistRowPanels {
                family,
                held_out,
                panels,
            });
        }
    }
    HistGrid {
        episode: Some(ep),
        columns,
        rows: out,
    }
}

/// A checkpoint's curve: its points and its AUC (ROC) or AP (PR).
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSeries {
    pub stage: Stage,
    pub points: Vec<(f64, f64)>,
    pub summary: Option<f64>,
}

/// The curves of a held-out family at the three checkpoints of an episode (`None` = the last
/// with curve rows); returns the episode and one series per stage that has points.
pub fn curve_series(
    data: &RunData,
    unit: &UnitKey,
    family: &str,
    curve: Curve,
    episode: Option<usize>,
) -> (Option<usize>, Vec<CurveSeries>) {
    let Some(ep) = episode.or_else(|| last_curve_episode(data, unit, family, curve)) else {
        return (None, Vec::new());
    };
    let mut out = Vec::new();
    for stage in unit_stages(data, unit) {
        let points: Vec<(f64, f64)> = data
            .curves
            .iter()
            .filter(|c| {
                &c.unit == unit
                    && c.episode == ep
                    && c.stage == stage
                    && c.family == family
                    && c.curve == curve
            })
            .filter(|c| c.x.is_finite() && c.y.is_finite())
            .map(|c| (c.x, c.y))
            .collect();
        if points.is_empty() {
            continue;
        }
        let summary = data
            .checkpoints
            .iter()
            .find(|c| &c.unit == unit && c.episode == ep && c.stage == stage && c.family == family)
            .and_then(|c| {
                finite(match curve {
                    Curve::Roc => c.auc,
                    Curve::Pr => c.ap,
                })
            });
        out.push(CurveSeries {
            stage,
            points,
            summary,
        });
    }
    (Some(ep), out)
}

/// The share of anomalies in a family's checkpoint pool (the PR curve's chance level), from the
/// histogram rows of the episode's first stage that has them.
pub fn prevalence(data: &RunData, unit: &UnitKey, family: &str, episode: usize) -> Option<f64> {
    let g = histogram_grid(data, unit, Some(episode), true);
    let row = g.rows.iter().find(|r| r.family == family)?;
    let p = row.panels.iter().flatten().next()?;
    let n = p.n_normal() + p.n_anomaly();
    (n > 0).then(|| p.n_anomaly() as f64 / n as f64)
}

/// The per-episode series of the training figure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainingSeries {
    /// Mean loss over each episode's steps, per stage that has loss rows.
    pub loss: Vec<(Stage, Vec<(usize, f64)>)>,
    /// The loss at each step, per stage, when the unit trained a single episode (as ODIN
    /// does); empty otherwise.
    pub loss_steps: Vec<(Stage, Vec<(usize, f64)>)>,
    /// Mean calibrated-logit margin after the outer stage over the seen (outer) families.
    pub margin_seen: Vec<(usize, f64)>,
    /// The same over the held-out families.
    pub margin_held_out: Vec<(usize, f64)>,
    /// The temperature T after the outer stage.
    pub temperature: Vec<(usize, f64)>,
    /// τ* after each episode.
    pub tau: Vec<(usize, f64)>,
    /// The validation F1 at τ*.
    pub val_f1: Vec<(usize, f64)>,
    /// Mean held-out AUC per episode at each checkpoint stage.
    pub held_out_auc: Vec<(Stage, Vec<(usize, f64)>)>,
    /// Methods trained in epochs: per "phase · term", (epoch, the epoch's mean).
    pub epoch_terms: Vec<(String, Vec<(usize, f64)>)>,
}

impl TrainingSeries {
    pub fn is_empty(&self) -> bool {
        self.loss.iter().all(|(_, v)| v.is_empty())
            && self.margin_seen.is_empty()
            && self.margin_held_out.is_empty()
            && self.temperature.is_empty()
            && self.tau.is_empty()
    }
}

/// Means per episode of the finite values.
pub(super) fn per_episode(values: impl Iterator<Item = (usize, f64)>) -> Vec<(usize, f64)> {
    let mut m: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for (e, v) in values {
        if v.is_finite() {
            let s = m.entry(e).or_insert((0.0, 0));
            s.0 += v;
            s.1 += 1;
        }
    }
    m.into_iter().map(|(e, (s, n))| (e, s / n as f64)).collect()
}

/// The series of the training figure for a unit.
pub fn training_series(data: &RunData, unit: &UnitKey) -> TrainingSeries {
    let mut loss = Vec::new();
    for stage in std::iter::once(Stage::Pretrain).chain(STAGES) {
        let v = per_episode(
            data.losses
                .iter()
                .filter(|l| &l.unit == unit && l.stage == stage)
                .map(|l| (l.episode, l.loss)),
        );
        if !v.is_empty() {
            loss.push((stage, v));
        }
    }
    let mut episodes: Vec<usize> = data
        .losses
        .iter()
        .filter(|l| &l.unit == unit)
        .map(|l| l.episode)
        .collect();
    episodes.sort_unstable();
    episodes.dedup();
    let mut loss_steps = Vec::new();
    if episodes.len() == 1 {
        for stage in STAGES {
            let mut v: Vec<(usize, f64)> = data
                .losses
                .iter()
                .filter(|l| &l.unit == unit && l.stage == stage && l.loss.is_finite())
                .map(|l| (l.step, l.loss))
                .collect();
            v.sort_by_key(|p| p.0);
            if !v.is_empty() {
                loss_steps.push((stage, v));
            }
        }
    }
    let outer = || {
        data.checkpoints
            .iter()
            .filter(move |c| &c.unit == unit && c.stage == Stage::Outer)
    };
    let margin_seen = per_episode(
        outer()
            .filter(|c| !c.held_out)
            .map(|c| (c.episode, c.margin)),
    );
    let margin_held_out = per_episode(
        outer()
            .filter(|c| c.held_out)
            .map(|c| (c.episode, c.margin)),
    );
    let temperature = per_episode(outer().map(|c| (c.episode, c.temperature)));
    let th = || data.thresholds.iter().filter(|t| &t.unit == unit);
    let held_out_auc = STAGES
        .iter()
        .map(|&stage| {
            let v = per_episode(
                data.checkpoints
                    .iter()
                    .filter(|c| &c.unit == unit && c.stage == stage && c.held_out)
                    .map(|c| (c.episode, c.auc)),
            );
            (stage, v)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut epoch_terms: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for e in data.epochs.iter().filter(|e| &e.unit == unit) {
        let label = format!("{} · {}", e.phase, e.term);
        match epoch_terms.iter_mut().find(|(l, _)| *l == label) {
            Some((_, v)) => v.push((e.epoch, e.value)),
            None => epoch_terms.push((label, vec![(e.epoch, e.value)])),
        }
    }
    TrainingSeries {
        held_out_auc,
        epoch_terms,
        loss,
        loss_steps,
        margin_seen,
        margin_held_out,
        temperature,
        tau: per_episode(th().map(|t| (t.episode, t.tau))),
        val_f1: per_episode(th().map(|t| (t.episode, t.val_f1))),
    }
}

/// Which two tasks a PCGrad cosine compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairKind {
    /// The inner (normals) task against an outer task (a family or the pooled outer task).
    InnerVsFamily,
    /// Two outer tasks.
    FamilyVsFamily,
}

impl PairKind {
    pub fn of(task_i: &str, task_j: &str) -> PairKind {
        if task_i == "inner" || task_j == "inner" {
            PairKind::InnerVsFamily
        } else {
            PairKind::FamilyVsFamily
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            PairKind::InnerVsFamily => "inner vs family",
            PairKind::FamilyVsFamily => "family vs family",
        }
    }
    pub fn color(self) -> RGBColor {
        match self {
            PairKind::InnerVsFamily => RGBColor(0x00, 0x72, 0xB2),
            PairKind::FamilyVsFamily => RGBColor(0xCC, 0x79, 0xA7),
        }
    }
}

/// One pairwise cosine at an outer step; `index` counts the unit's outer steps from 0.
#[derive(Debug, Clone, PartialEq)]
pub struct PcgradPoint {
    pub index: usize,
    pub episode: usize,
    pub step: usize,
    pub kind: PairKind,
    pub cosine: f64,
    pub projected: bool,
}

/// The series of the PCGrad figure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PcgradSeries {
    pub points: Vec<PcgradPoint>,
    /// Outer steps with cosines.
    pub steps: usize,
    /// Per outer step (index): the share of its pairs that PCGrad projected.
    pub fraction: Vec<(usize, f64)>,
    /// The share over all pairs.
    pub overall: Option<f64>,
    /// The index of each episode's first outer step.
    pub episode_starts: Vec<(usize, usize)>,
}

/// The PCGrad cosines of a unit, in (episode, step) order.
pub fn pcgrad_series(data: &RunData, unit: &UnitKey) -> PcgradSeries {
    let rows: Vec<&crate::report::PcgradRow> = data
        .pcgrad
        .iter()
        .filter(|p| &p.unit == unit && p.cosine.is_finite())
        .collect();
    let mut keys: Vec<(usize, usize)> = rows.iter().map(|p| (p.episode, p.step)).collect();
    keys.sort_unstable();
    keys.dedup();
    let index = |k: (usize, usize)| keys.binary_search(&k).unwrap_or(0);
    let mut points: Vec<PcgradPoint> = rows
        .iter()
        .map(|p| PcgradPoint {
            index: index((p.episode, p.step)),
            episode: p.episode,
            step: p.step,
            kind: PairKind::of(&p.task_i, &p.task_j),
            cosine: p.cosine,
            projected: p.projected,
        })
        .collect();
    points.sort_by_key(|p| p.index);
    let mut per: Vec<(usize, usize)> = vec![(0, 0); keys.len()];
    for p in &points {
        per[p.index].1 += 1;
        per[p.index].0 += usize::from(p.projected);
    }
    let fraction = per
        .iter()
        .enumerate()
        .map(|(i, &(k, n))| (i, k as f64 / n.max(1) as f64))
        .collect();
    let total: usize = per.iter().map(|p| p.1).sum();
    let proj: usize = per.iter().map(|p| p.0).sum();
    let mut episode_starts = Vec::new();
    for (i, &(e, _)) in keys.iter().enumerate() {
        if episode_starts
            .last()
            .map(|&(le, _)| le != e)
            .unwrap_or(true)
        {
            episode_starts.push((e, i));
        }
    }
    PcgradSeries {
        points,
        steps: keys.len(),
        fraction,
        overall: (total > 0).then(|| proj as f64 / total as f64),
        episode_starts,
    }
}

/// One bar of the method comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct AucBar {
    pub family: String,
    pub method: String,
    pub stat: Stat,
}

/// The bars of the method comparison: groups per held-out family and `macro` last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AucBars {
    pub families: Vec<String>,
    pub methods: Vec<String>,
    pub bars: Vec<AucBar>,
}

/// Test AUC-ROC mean ± std over seeds per (held-out family, method), from the results table.
pub fn method_auc_bars(metrics: &[MetricRow]) -> AucBars {
    let t = FamilyTable::from_metrics(metrics);
    let mut families = t.families.clone();
    if !t.macro_rows.is_empty() {
        families.push("macro".into());
    }
    let mut bars = Vec::new();
    for f in &families {
        for r in t.family_rows(f) {
            if let Some(stat) = r.cells[AUC_COLUMN].filter(|s| s.mean.is_finite()) {
                bars.push(AucBar {
                    family: f.clone(),
                    method: r.method.clone(),
                    stat,
                });
            }
        }
    }
    AucBars {
        families,
        methods: t.methods,
        bars,
    }
}

/// A method's test ROC curve on one family.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRocSeries {
    pub method: String,
    /// (false-positive rate, true-positive rate), at most [`MAX_CURVE_POINTS`] points.
    pub points: Vec<(f64, f64)>,
    pub auc: f64,
    pub n_normal: usize,
    pub n_anomaly: usize,
}

/// Curves are thinned to this many points (evenly by index, ends kept).
pub const MAX_CURVE_POINTS: usize = 1000;

pub(super) fn thin(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    let n = xs.len().min(ys.len());
    if n <= MAX_CURVE_POINTS {
        return xs.iter().copied().zip(ys.iter().copied()).collect();
    }
    (0..MAX_CURVE_POINTS)
        .map(|i| {
            let k = i * (n - 1) / (MAX_CURVE_POINTS - 1);
            (xs[k], ys[k])
        })
        .collect()
}

/// The test ROC of each method on `family` from the score rows of one seed (or all pooled);
/// methods whose rows lack a class are left out.
pub fn test_roc_series(data: &RunData, family: &str, seed: Option<u64>) -> Vec<TestRocSeries> {
    let mut methods = data.methods();
    for s in &data.scores {
        if !methods.contains(&s.unit.method) {
            methods.push(s.unit.method.clone());
        }
    }
    let mut out = Vec::new();
    for m in methods {
        let (labels, scores): (Vec<bool>, Vec<f64>) = data
            .scores
            .iter()
            .filter(|s| {
                s.unit.method == m
                    && s.family == family
                    && seed.is_none_or(|k| s.unit.seed == k)
                    && s.score.is_finite()
            })
            .map(|s| (s.anomaly, s.score))
            .unzip();
        let (Ok(roc), Ok(auc)) = (
            crate::eval::roc_curve(&labels, &scores),
            crate::eval::roc_auc(&labels, &scores),
        ) else {
            continue;
        };
        let n_anomaly = labels.iter().filter(|&&l| l).count();
        out.push(TestRocSeries {
            method: m,
            points: thin(&roc.fpr, &roc.tpr),
            auc,
            n_normal: labels.len() - n_anomaly,
            n_anomaly,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// The paper figure's panels: the held-out families' histograms of `unit` at `episode` (the
/// last one with histograms when `None`).
pub fn paper_grid(data: &RunData, unit: &UnitKey, episode: Option<usize>) -> HistGrid {
    histogram_grid(data, unit, episode, false)
}

/// The summary slide's numbers, from the test metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SummarySeries {
    /// In the order of the run's metrics (the experiment's method, then `compare`).
    pub methods: Vec<String>,
    /// Held-out families, in the order of the run's metrics.
    pub families: Vec<String>,
    pub seeds: Vec<u64>,
    /// Per method: (seed, macro AUC-ROC over that seed's held-out families).
    pub macro_per_seed: Vec<Vec<(u64, f64)>>,
    /// Per method: the mean of its per-seed macros.
    pub macro_mean: Vec<Option<f64>>,
    /// Per family (rows) and method (columns): mean AUC-ROC over seeds.
    pub cells: Vec<Vec<Option<f64>>>,
}

/// Macro AUC-ROC per method and seed (the mean over the seed's held-out families, then over
/// seeds, as the results table's macro row) and the per-family means.
pub fn summary_series(metrics: &[MetricRow]) -> SummarySeries {
    let primary = crate::report::rundata::primary_metrics(metrics);
    let metrics = primary.as_slice();
    let mut s = SummarySeries::default();
    for m in metrics {
        if !s.methods.contains(&m.method) {
            s.methods.push(m.method.clone());
        }
        if !s.families.contains(&m.held_out) {
            s.families.push(m.held_out.clone());
        }
        if !s.seeds.contains(&m.seed) {
            s.seeds.push(m.seed);
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    for method in &s.methods {
        let mut per_seed = Vec::new();
        for &seed in &s.seeds {
            let v: Vec<f64> = metrics
                .iter()
                .filter(|m| &m.method == method && m.seed == seed && m.auc.is_finite())
                .map(|m| m.auc)
                .collect();
            if let Some(x) = mean(&v) {
                per_seed.push((seed, x));
            }
        }
        let means: Vec<f64> = per_seed.iter().map(|p| p.1).collect();
        s.macro_mean.push(mean(&means));
        s.macro_per_seed.push(per_seed);
    }
    s.cells = s
        .families
        .iter()
        .map(|f| {
            s.methods
                .iter()
                .map(|method| {
                    let v: Vec<f64> = metrics
                        .iter()
                        .filter(|m| &m.method == method && &m.held_out == f && m.auc.is_finite())
                        .map(|m| m.auc)
                        .collect();
                    mean(&v)
                })
                .collect()
        })
        .collect();
    s
}

/// One threshold policy's line on the threshold-transfer figure.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferLine {
    /// The policy's `metrics.csv` label (`val_best_f1`, `val_fpr_0.05`, `fallback_0.5`).
    pub policy: String,
    pub tau: f64,
    /// Recall on the held-out family's test rows at τ.
    pub recall: f64,
    /// False-positive rate realised on the test block's normals at τ.
    pub fpr: f64,
    /// The policy's target false-positive rate (`val_fpr_α`).
    pub target: Option<f64>,
}

/// The threshold-transfer figure of one method, held-out family and seed: the test scores of
/// normals and of the family as histograms (shares of each class) and every policy's threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferSeries {
    pub method: String,
    pub family: String,
    pub seed: u64,
    /// Bin edges over the shown score range: the 1st to 99th percentile of the scores, widened
    /// to every threshold; scores beyond it are counted in the end bins.
    pub edges: Vec<f64>,
    pub normals: Vec<f64>,
    pub anomalies: Vec<f64>,
    pub n_normal: usize,
    pub n_anomaly: usize,
    /// Whether scores beyond the shown range were folded into the end bins.
    pub clipped: bool,
    pub lines: Vec<TransferLine>,
}

/// Bins of the threshold-transfer histograms.
pub const TRANSFER_BINS: usize = 40;

/// The (method, held-out family, seed) triples with test scores and metrics rows, in the order
/// of the run's methods, then families, then seeds.
pub fn transfer_choices(data: &RunData) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = Vec::new();
    for m in &data.metrics {
        let k = (m.method.clone(), m.held_out.clone(), m.seed);
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// The threshold-transfer series (`None` without test scores of both classes).
pub fn transfer_series(
    data: &RunData,
    method: &str,
    family: &str,
    seed: u64,
) -> Option<TransferSeries> {
    let (mut normals, mut anomalies) = (Vec::new(), Vec::new());
    for s in &data.scores {
        if s.unit.method == method
            && s.unit.seed == seed
            && s.family == family
            && s.score.is_finite()
        {
            if s.anomaly {
                anomalies.push(s.score);
            } else {
                normals.push(s.score);
            }
        }
    }
    if normals.is_empty() || anomalies.is_empty() {
        return None;
    }
    let mut lines: Vec<TransferLine> = data
        .metrics
        .iter()
        .filter(|m| m.method == method && m.seed == seed && m.held_out == family)
        .map(|m| TransferLine {
            policy: m.threshold.clone(),
            tau: m.tau,
            recall: m.recall,
            fpr: m.fpr,
            target: crate::report::table::TransferRow::target_of(&m.threshold),
        })
        .collect();
    lines.dedup_by(|a, b| a.policy == b.policy);
    let mut all: Vec<f64> = normals.iter().chain(&anomalies).copied().collect();
    all.sort_by(f64::total_cmp);
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    let (mut lo, mut hi) = (q(0.01), q(0.99));
    for l in &lines {
        if l.tau.is_finite() {
            lo = lo.min(l.tau);
            hi = hi.max(l.tau);
        }
    }
    if hi <= lo {
        hi = lo + 1.0;
        lo -= 1.0;
    }
    let pad = (hi - lo) * 0.02;
    let (lo, hi) = (lo - pad, hi + pad);
    let edges: Vec<f64> = (0..=TRANSFER_BINS)
        .map(|i| lo + (hi - lo) * i as f64 / TRANSFER_BINS as f64)
        .collect();
    let clipped = all[0] < lo || all[all.len() - 1] > hi;
    let share = |v: &[f64]| {
        let mut c = vec![0.0; TRANSFER_BINS];
        for &s in v {
            let i = (((s - lo) / (hi - lo)) * TRANSFER_BINS as f64).floor();
            c[(i.max(0.0) as usize).min(TRANSFER_BINS - 1)] += 1.0;
        }
        c.iter().map(|x| x / v.len() as f64).collect::<Vec<_>>()
    };
    Some(TransferSeries {
        method: method.into(),
        family: family.into(),
        seed,
        normals: share(&normals),
        anomalies: share(&anomalies),
        n_normal: normals.len(),
        n_anomaly: anomalies.len(),
        edges,
        clipped,
        lines,
    })
}

/// The legend text of a policy line: `τ* (best F1 on seen families): τ 0.53 · recall 0.41 ·
/// test FPR 0.8 %`.
pub fn transfer_line_label(l: &TransferLine) -> String {
    let name = match (l.policy.as_str(), l.target) {
        ("val_best_f1", _) => "τ* (best F1 on seen families)".to_string(),
        ("fallback_0.5", _) => "0.5 (τ* fallback)".to_string(),
        ("val_worst_family_f1", _) => "best F1 of the worst seen family".to_string(),
        (_, Some(t)) => format!("normals-only, target FPR {}", pct(t)),
        (p, None) => p.to_string(),
    };
    format!(
        "{name}: τ {} · recall {:.2} · test FPR {}",
        tick_for(l.tau, l.tau.abs().max(1e-3) / 100.0),
        l.recall,
        if l.fpr.is_finite() {
            pct(l.fpr)
        } else {
            "–".into()
        }
    )
}

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if p >= 10.0 || p == p.round() {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}
