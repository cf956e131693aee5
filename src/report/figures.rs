//! Figure files drawn from a run's rows at publication quality: SVG (vector) or PNG (raster at
//! [`PNG_SCALE`]× the SVG size), chosen by the file's extension. Not screen grabs: every figure is
//! drawn from [`RunData`] with plotters, its text through `ab_glyph` with egui's bundled Ubuntu
//! font (no system fonts needed).
//!
//! The data behind each panel comes from small pure functions ([`histogram_grid`],
//! [`curve_series`], [`training_series`], [`pcgrad_series`], [`method_auc_bars`],
//! [`test_roc_series`]) that the GUI can reuse and the tests check. Colours are fixed per
//! checkpoint stage ([`stage_color`]) and per class ([`class_color`]) across all figures.
//!
//! Odd data never panics: a figure or panel without rows is drawn with a note saying so.

use super::rundata::{Curve, MetricRow, RunData, UnitKey};
use super::table::{FamilyTable, Stat};
use crate::detect::Stage;
use anyhow::{bail, Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// PNG files are drawn at this multiple of the SVG (logical) size.
pub const PNG_SCALE: u32 = 2;

/// The checkpoint stages, in episode order.
pub const STAGES: [Stage; 3] = [Stage::Pre, Stage::Inner, Stage::Outer];

/// The column index of AUC-ROC in [`COLUMNS`](super::table::COLUMNS).
pub const AUC_COLUMN: usize = 5;

/// The font family name the figures register and use.
const FONT: &str = "sans-serif";

/// A figure of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// The paper's Fig. 2: per family (rows) and checkpoint (columns pre / after inner / after
    /// outer), histograms of the scores of normals and anomalies, with the AUC in each panel.
    Histograms {
        unit: UnitKey,
        /// `None`: the unit's last episode.
        episode: Option<usize>,
        /// Also rows for the seen (few-shot) families, after the held-out ones.
        seen: bool,
    },
    /// ROC or PR curves of a held-out family at the three checkpoints of an episode.
    Curves {
        unit: UnitKey,
        family: String,
        curve: Curve,
        /// `None`: the last episode with curve rows.
        episode: Option<usize>,
    },
    /// Per episode: mean loss per stage, calibrated-logit margins, temperature T, τ*.
    Training { unit: UnitKey },
    /// PCGrad: pairwise cosines between task gradients per outer step, and the share projected.
    Pcgrad { unit: UnitKey },
    /// Test AUC-ROC per held-out family, mean ± std over seeds, per method (grouped bars).
    MethodAuc,
    /// Test-set ROC curve of each method on one held-out family.
    TestRoc {
        family: String,
        /// `None`: the scores of all seeds pooled.
        seed: Option<u64>,
    },
}

/// Label of a checkpoint stage in figures: `pre`, `after inner`, `after outer`.
pub fn stage_label(s: Stage) -> &'static str {
    match s {
        Stage::Pre => "pre",
        Stage::Inner => "after inner",
        Stage::Outer => "after outer",
        Stage::Pretrain => "stage 0",
        Stage::Final => "trained",
    }
}

/// The colour of a checkpoint stage (Okabe–Ito, colour-blind safe).
pub fn stage_color(s: Stage) -> RGBColor {
    match s {
        Stage::Pre => RGBColor(0x88, 0x88, 0x88),
        Stage::Inner => RGBColor(0xE6, 0x9F, 0x00),
        Stage::Outer => RGBColor(0x00, 0x9E, 0x73),
        Stage::Pretrain => RGBColor(0x56, 0xB4, 0xE9),
        Stage::Final => RGBColor(0x00, 0x9E, 0x73),
    }
}

/// The colour of a class: normal blue, anomaly vermilion.
pub fn class_color(anomaly: bool) -> RGBColor {
    if anomaly {
        RGBColor(0xD5, 0x5E, 0x00)
    } else {
        RGBColor(0x00, 0x72, 0xB2)
    }
}

/// The colour of the `i`-th method.
pub fn method_color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(0x00, 0x72, 0xB2),
        RGBColor(0xD5, 0x5E, 0x00),
        RGBColor(0x00, 0x9E, 0x73),
        RGBColor(0xCC, 0x79, 0xA7),
        RGBColor(0x56, 0xB4, 0xE9),
        RGBColor(0xE6, 0x9F, 0x00),
    ];
    C[i % C.len()]
}

const GREY: RGBColor = RGBColor(0x60, 0x60, 0x60);

/// A name usable in a file name: letters, digits and `._+-` kept, anything else `_`.
pub fn file_part(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

fn unit_part(u: &UnitKey) -> String {
    format!(
        "{}_seed{}_{}",
        file_part(&u.method),
        u.seed,
        file_part(&u.rotation)
    )
}

fn unit_text(u: &UnitKey) -> String {
    format!("{}, seed {}, held out {}", u.method, u.seed, u.rotation)
}

impl Figure {
    /// The file name without extension, e.g. `histograms_meta_learner_seed0_Botnet`.
    pub fn file_stem(&self) -> String {
        let ep = |e: &Option<usize>| e.map(|e| format!("_ep{e}")).unwrap_or_default();
        match self {
            Figure::Histograms {
                unit,
                episode,
                seen,
            } => format!(
                "histograms_{}{}{}",
                unit_part(unit),
                if *seen { "" } else { "_heldout" },
                ep(episode)
            ),
            Figure::Curves {
                unit,
                family,
                curve,
                episode,
            } => {
                let fam = if family == &unit.rotation {
                    String::new()
                } else {
                    format!("_{}", file_part(family))
                };
                format!("{}_{}{fam}{}", curve.as_str(), unit_part(unit), ep(episode))
            }
            Figure::Training { unit } => format!("training_{}", unit_part(unit)),
            Figure::Pcgrad { unit } => format!("pcgrad_{}", unit_part(unit)),
            Figure::MethodAuc => "method_auc".into(),
            Figure::TestRoc { family, seed } => format!(
                "test_roc_{}_{}",
                file_part(family),
                seed.map(|s| format!("seed{s}"))
                    .unwrap_or_else(|| "pooled".into())
            ),
        }
    }

    /// The figure's title (it names what is drawn and from which rows).
    pub fn title(&self, data: &RunData) -> String {
        match self {
            Figure::Histograms { unit, episode, .. } => {
                let e = episode.or_else(|| last_hist_episode(data, unit));
                format!(
                    "Checkpoint scores: {}{}",
                    unit_text(unit),
                    e.map(|e| format!(", episode {e}")).unwrap_or_default()
                )
            }
            Figure::Curves {
                unit,
                family,
                curve,
                episode,
            } => {
                let e = episode.or_else(|| last_curve_episode(data, unit, family, *curve));
                format!(
                    "{} of {family} (held out): {}, seed {}{}",
                    match curve {
                        Curve::Roc => "ROC",
                        Curve::Pr => "Precision–recall",
                    },
                    unit.method,
                    unit.seed,
                    e.map(|e| format!(", episode {e}")).unwrap_or_default()
                )
            }
            Figure::Training { unit } => format!("Training: {}", unit_text(unit)),
            Figure::Pcgrad { unit } => {
                format!("PCGrad task-gradient cosines: {}", unit_text(unit))
            }
            Figure::MethodAuc => {
                let n = method_auc_bars(&data.metrics)
                    .bars
                    .iter()
                    .map(|b| b.stat.n)
                    .max()
                    .unwrap_or(0);
                format!(
                    "Test AUC-ROC per held-out family: mean ± std over {n} seed{}",
                    if n == 1 { "" } else { "s" }
                )
            }
            Figure::TestRoc { family, seed } => format!(
                "Test ROC of {family} (held out): {}",
                match seed {
                    Some(s) => format!("seed {s}"),
                    None => "all seeds pooled".into(),
                }
            ),
        }
    }

    /// Whether `data` has rows for this figure (else it is drawn with a note).
    pub fn has_data(&self, data: &RunData) -> bool {
        match self {
            Figure::Histograms {
                unit,
                episode,
                seen,
            } => !histogram_grid(data, unit, *episode, *seen).rows.is_empty(),
            Figure::Curves {
                unit,
                family,
                curve,
                episode,
            } => curve_series(data, unit, family, *curve, *episode)
                .1
                .iter()
                .any(|s| !s.points.is_empty()),
            Figure::Training { unit } => !training_series(data, unit).is_empty(),
            Figure::Pcgrad { unit } => !pcgrad_series(data, unit).points.is_empty(),
            Figure::MethodAuc => !method_auc_bars(&data.metrics).bars.is_empty(),
            Figure::TestRoc { family, seed } => !test_roc_series(data, family, *seed).is_empty(),
        }
    }

    /// The figure's size in SVG pixels; PNGs are [`PNG_SCALE`] times as large.
    pub fn size(&self, data: &RunData) -> (u32, u32) {
        match self {
            Figure::Histograms {
                unit,
                episode,
                seen,
            } => {
                let rows = histogram_grid(data, unit, *episode, *seen)
                    .rows
                    .len()
                    .max(1) as u32;
                // panels shrink (down to 150 px) when there are many families
                let row_h = if rows <= 10 {
                    220
                } else {
                    (2200 / rows).max(150)
                };
                (1080, 104 + row_h * rows)
            }
            Figure::Curves { .. } | Figure::TestRoc { .. } => (760, 640),
            Figure::Training { .. } => (1100, 760),
            Figure::Pcgrad { .. } => (1000, 760),
            Figure::MethodAuc => {
                let b = method_auc_bars(&data.metrics);
                let groups = b.families.len() as u32;
                let m = b.methods.len().max(1) as u32;
                ((180 + groups * (m * 26 + 36)).max(820), 580)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data extraction (pure)

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn last_hist_episode(data: &RunData, unit: &UnitKey) -> Option<usize> {
    data.histograms
        .iter()
        .filter(|h| &h.unit == unit)
        .map(|h| h.episode)
        .max()
}

fn last_curve_episode(data: &RunData, unit: &UnitKey, family: &str, curve: Curve) -> Option<usize> {
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
    let rows: Vec<&super::HistRow> = data
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
                let sel: Vec<&&super::HistRow> = rows
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
fn per_episode(values: impl Iterator<Item = (usize, f64)>) -> Vec<(usize, f64)> {
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
    TrainingSeries {
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
    let rows: Vec<&super::PcgradRow> = data
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

fn thin(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
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

fn ensure_font() -> Result<()> {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .is_ok()
    });
    if !ok {
        bail!("the built-in figure font (Ubuntu Light from epaint_default_fonts) did not load");
    }
    Ok(())
}

/// Writes `fig` to `path`: SVG for `.svg`, PNG ([`PNG_SCALE`]× size) for `.png`; atomically
/// (temp file + rename).
pub fn render(fig: &Figure, data: &RunData, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => {
            let svg = render_svg(fig, data)?;
            crate::atomic::write_atomic(path, &svg)
        }
        "png" => render_png_file(fig, data, path),
        _ => bail!(
            "{}: unknown figure format `.{ext}` — name the file .svg or .png",
            path.display()
        ),
    }
}

/// The figure as SVG text.
pub fn render_svg(fig: &Figure, data: &RunData) -> Result<String> {
    ensure_font()?;
    let size = fig.size(data);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw(fig, data, &root, 1.0)?;
        root.present()?;
    }
    Ok(s)
}

/// The figure as RGB pixels (row-major, 3 bytes each) at `scale`× its size; returns
/// (width, height, pixels). For previews.
pub fn render_rgb(fig: &Figure, data: &RunData, scale: u32) -> Result<(u32, u32, Vec<u8>)> {
    ensure_font()?;
    let (w, h) = fig.size(data);
    let (w, h) = (w * scale.max(1), h * scale.max(1));
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(fig, data, &root, f64::from(scale.max(1)))?;
        root.present()?;
    }
    Ok((w, h, buf))
}

fn render_png_file(fig: &Figure, data: &RunData, path: &Path) -> Result<()> {
    ensure_font()?;
    let (w, h) = fig.size(data);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // the encoder picks the format by extension, so the temp file ends in .png too
    let tmp = path.with_file_name(format!(".{name}.tmp.png"));
    let drawn = (|| -> Result<()> {
        let root = BitMapBackend::new(&tmp, (w * PNG_SCALE, h * PNG_SCALE)).into_drawing_area();
        draw(fig, data, &root, f64::from(PNG_SCALE))?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(path.display().to_string()));
    }
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

/// Sizes scaled for the output (1 for SVG, [`PNG_SCALE`] for PNG).
#[derive(Clone, Copy)]
struct Pen {
    s: f64,
}

impl Pen {
    fn px(&self, v: f64) -> u32 {
        (v * self.s).round().max(1.0) as u32
    }
    fn ipx(&self, v: f64) -> i32 {
        (v * self.s).round() as i32
    }
    fn font(&self, pt: f64) -> TextStyle<'static> {
        TextStyle::from(FontDesc::new(
            FontFamily::Name(FONT),
            pt * self.s,
            FontStyle::Normal,
        ))
        .color(&BLACK)
    }
    fn line(&self, c: impl Color, w: f64) -> ShapeStyle {
        ShapeStyle {
            color: c.to_rgba(),
            filled: false,
            stroke_width: self.px(w),
        }
    }
}

type Area<DB> = DrawingArea<DB, Shift>;
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticks, RangedCoordf64>>;

/// An f64 axis with ticks exactly at given values (labels come from a formatter).
struct Ticks {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl Ticks {
    fn new(range: Range<f64>, keys: Vec<f64>) -> Ticks {
        Ticks {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }
    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// A legend entry drawn by [`legend_row`].
#[derive(Clone)]
struct Swatch {
    label: String,
    color: RGBColor,
    mark: Mark,
}

#[derive(Clone, Copy)]
enum Mark {
    /// A light box, as the overlapping histogram bars.
    Box,
    /// A solid box, as the bars of the method comparison.
    Bar,
    Line,
    Dot,
}

fn draw<DB: DrawingBackend>(fig: &Figure, data: &RunData, root: &Area<DB>, s: f64) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pen = Pen { s };
    root.fill(&WHITE)?;
    let title = fig.title(data);
    match fig {
        Figure::Histograms {
            unit,
            episode,
            seen,
        } => draw_histograms(
            root,
            pen,
            &title,
            &histogram_grid(data, unit, *episode, *seen),
        ),
        Figure::Curves {
            unit,
            family,
            curve,
            episode,
        } => {
            let (ep, series) = curve_series(data, unit, family, *curve, *episode);
            let chance = match (curve, ep) {
                (Curve::Pr, Some(e)) => prevalence(data, unit, family, e),
                _ => None,
            };
            draw_curves(root, pen, &title, *curve, &series, chance)
        }
        Figure::Training { unit } => draw_training(root, pen, &title, &training_series(data, unit)),
        Figure::Pcgrad { unit } => draw_pcgrad(root, pen, &title, &pcgrad_series(data, unit)),
        Figure::MethodAuc => draw_method_auc(root, pen, &title, &method_auc_bars(&data.metrics)),
        Figure::TestRoc { family, seed } => {
            draw_test_roc(root, pen, &title, &test_roc_series(data, family, *seed))
        }
    }
}

/// Draws the title (and a legend row) at the top; returns the area below.
fn header<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    legend: &[Swatch],
) -> Result<Area<DB>>
where
    DB::ErrorType: 'static,
{
    let h = if legend.is_empty() { 46.0 } else { 76.0 };
    let (top, rest) = root.split_vertically(pen.ipx(h));
    let (w, _) = top.dim_in_pixel();
    top.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, pen.ipx(12.0)),
        pen.font(20.0).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    if !legend.is_empty() {
        legend_row(&top, pen, legend, pen.ipx(56.0))?;
    }
    Ok(rest)
}

/// A centred row of legend entries at height `y`.
fn legend_row<DB: DrawingBackend>(area: &Area<DB>, pen: Pen, items: &[Swatch], y: i32) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let font = pen.font(14.0);
    let (sw, gap, sep) = (pen.ipx(24.0), pen.ipx(7.0), pen.ipx(26.0));
    let mut widths = Vec::with_capacity(items.len());
    for it in items {
        widths.push(area.estimate_text_size(&it.label, &font)?.0 as i32);
    }
    let total: i32 =
        widths.iter().map(|w| sw + gap + w).sum::<i32>() + sep * (items.len() as i32 - 1).max(0);
    let (aw, _) = area.dim_in_pixel();
    let mut x = ((aw as i32 - total) / 2).max(0);
    for (it, w) in items.iter().zip(&widths) {
        swatch(area, pen, it, (x, y), sw)?;
        area.draw(&Text::new(
            it.label.clone(),
            (x + sw + gap, y),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += sw + gap + w + sep;
    }
    Ok(())
}

fn swatch<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    it: &Swatch,
    (x, y): (i32, i32),
    sw: i32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let hh = pen.ipx(6.0);
    match it.mark {
        Mark::Box => {
            area.draw(&Rectangle::new(
                [(x, y - hh), (x + sw, y + hh)],
                it.color.mix(0.45).filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x, y - hh), (x + sw, y + hh)],
                pen.line(it.color, 1.5),
            ))?;
        }
        Mark::Bar => area.draw(&Rectangle::new(
            [(x, y - hh), (x + sw, y + hh)],
            it.color.mix(0.85).filled(),
        ))?,
        Mark::Line => area.draw(&PathElement::new(
            vec![(x, y), (x + sw, y)],
            pen.line(it.color, 2.5),
        ))?,
        Mark::Dot => area.draw(&Circle::new(
            (x + sw / 2, y),
            pen.ipx(4.0),
            it.color.filled(),
        ))?,
    }
    Ok(())
}

/// A note in the middle of an area (for figures and panels without data).
fn note<DB: DrawingBackend>(area: &Area<DB>, pen: Pen, text: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        pen.font(15.0)
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// Tick positions at a "nice" step (1, 2 or 5 × 10^k), at most about `max` of them; with
/// `integer` the step is at least 1.
pub fn nice_keys(lo: f64, hi: f64, max: usize, integer: bool) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![];
    }
    let raw = (hi - lo) / max.max(1) as f64;
    let mut e = raw.log10().floor() as i32;
    let mut m = [1i64, 2, 5, 10]
        .into_iter()
        .find(|&m| m as f64 * 10f64.powi(e) >= raw)
        .unwrap_or(10);
    if integer && e < 0 {
        (m, e) = (1, 0);
    }
    // k·m·10^e, divided by an exact power of ten so that 0.6 prints as 0.6
    let at = |k: i64| {
        if e >= 0 {
            (k * m) as f64 * 10f64.powi(e)
        } else {
            (k * m) as f64 / 10f64.powi(-e)
        }
    };
    let step = at(1);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(at).collect()
}

/// A tick label with enough decimals to tell ticks `step` apart (at least three).
fn tick_for(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        ((-step.log10()).ceil().max(0.0) as usize + 1).clamp(3, 12)
    } else {
        3
    };
    if (v - v.round()).abs() < 1e-12 {
        return format!("{}", v.round() as i64);
    }
    let s = format!("{v:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Number text for tick labels: no trailing zeros.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A padded range covering `values` (finite ones) and `include`.
fn span(values: impl Iterator<Item = f64>, include: &[f64]) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values
        .chain(include.iter().copied())
        .filter(|v| v.is_finite())
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo < 1e-12 {
        let d = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            0.5
        };
        return (lo - d)..(hi + d);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad)..(hi + pad)
}

/// A chart on `area` with the house style; x ticks at `x_keys`.
#[allow(clippy::too_many_arguments)]
fn chart<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    pen: Pen,
    caption: &str,
    x: Range<f64>,
    x_keys: Vec<f64>,
    y: Range<f64>,
    x_label_px: f64,
    y_label_px: f64,
) -> Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let mut b = ChartBuilder::on(area);
    if !caption.is_empty() {
        b.caption(caption, pen.font(15.0));
    }
    let c = b
        .margin(pen.px(10.0))
        .margin_right(pen.px(18.0))
        .x_label_area_size(pen.px(x_label_px))
        .y_label_area_size(pen.px(y_label_px))
        .build_cartesian_2d(Ticks::new(x, x_keys), y)?;
    Ok(c)
}

/// Draws the mesh of a chart in the house style; `fx` formats x ticks.
fn mesh<DB: DrawingBackend>(
    c: &mut Chart<'_, DB>,
    pen: Pen,
    x_desc: &str,
    y_desc: &str,
    fx: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(fx)
        .y_labels(7)
        .label_style(pen.font(13.0))
        .axis_desc_style(pen.font(14.0))
        .bold_line_style(BLACK.mix(0.10))
        .light_line_style(BLACK.mix(0.04))
        .axis_style(pen.line(BLACK.mix(0.75), 1.0))
        .set_all_tick_mark_size(pen.px(5.0))
        .draw()?;
    Ok(())
}

fn chart_legend<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    pen: Pen,
    pos: SeriesLabelPosition,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    c.configure_series_labels()
        .position(pos)
        .margin(pen.px(10.0))
        .legend_area_size(pen.px(28.0))
        .label_font(pen.font(13.0))
        .background_style(WHITE.mix(0.88))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

fn line_legend(color: RGBColor, pen: Pen) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    let (len, style) = (pen.ipx(22.0), pen.line(color, 2.5));
    move |(x, y)| PathElement::new(vec![(x, y), (x + len, y)], style)
}

fn dash_legend(
    color: RGBColor,
    pen: Pen,
) -> impl Fn((i32, i32)) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, i32> {
    let (len, d, style) = (pen.ipx(22.0), pen.ipx(6.0), pen.line(color, 1.5));
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + len, y)], d, d * 2 / 3, style)
}

fn draw_histograms<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    grid: &HistGrid,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Swatch> = [false, true]
        .iter()
        .map(|&a| Swatch {
            label: if a { "anomaly" } else { "normal" }.into(),
            color: class_color(a),
            mark: Mark::Box,
        })
        .collect();
    let body = header(root, pen, title, &legend)?;
    if grid.rows.is_empty() {
        return note(
            &body,
            pen,
            "no histogram rows for this unit (no checkpoints recorded)",
        );
    }
    let (heads, panels) = body.split_vertically(pen.ipx(28.0));
    let nc = grid.columns.len().max(1);
    let cols = heads.split_evenly((1, nc));
    for (a, stage) in cols.iter().zip(&grid.columns) {
        let (w, h) = a.dim_in_pixel();
        // shift right by half the y-label area so headers sit over the plots
        a.draw(&Text::new(
            stage_label(*stage).to_string(),
            ((w as i32 + pen.ipx(50.0)) / 2, h as i32 / 2),
            pen.font(17.0).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    let n = grid.rows.len();
    let areas = panels.split_evenly((n, nc));
    for (r, row) in grid.rows.iter().enumerate() {
        for (k, p) in row.panels.iter().enumerate() {
            let area = &areas[r * nc + k];
            let tag = if row.held_out { "held out" } else { "seen" };
            let Some(p) = p else {
                note(
                    area,
                    pen,
                    &format!(
                        "{} ({tag}): no rows {}",
                        row.family,
                        stage_label(grid.columns[k])
                    ),
                )?;
                continue;
            };
            let caption = format!(
                "{} ({tag}) · AUC {}",
                p.family,
                p.auc
                    .map(|a| format!("{a:.3}"))
                    .unwrap_or_else(|| "–".into())
            );
            let (nf, af) = (p.shares(false), p.shares(true));
            let ymax = nf
                .iter()
                .chain(&af)
                .copied()
                .fold(0.0f64, f64::max)
                .max(1e-6)
                * 1.12;
            // the bins' own range (they span the checkpoint's scores): on a fixed [0, 1] axis
            // scores that crowd into a narrow band (ODIN's at T = 1000 sit within 1e-3 of 0.5)
            // become one spike and the separation cannot be seen
            let lo = p.edges.first().copied().unwrap_or(0.0);
            let hi = p.edges.last().copied().unwrap_or(1.0);
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5, lo + 0.5)
            };
            let bottom = r + 1 == n;
            let mut c = chart(
                area,
                pen,
                &caption,
                lo..hi,
                nice_keys(lo, hi, 5, false),
                0.0..ymax,
                if bottom { 44.0 } else { 26.0 },
                if k == 0 { 60.0 } else { 44.0 },
            )?;
            // ticks of a narrow score range need more than three decimals to differ
            let fx = |v: &f64| tick_for(*v, (hi - lo) / 5.0);
            mesh(
                &mut c,
                pen,
                if bottom { "anomaly score" } else { "" },
                if k == 0 { "share of class" } else { "" },
                &fx,
            )?;
            for (anomaly, shares) in [(false, &nf), (true, &af)] {
                let col = class_color(anomaly);
                c.draw_series(shares.iter().enumerate().filter(|(_, &v)| v > 0.0).map(
                    |(i, &v)| {
                        Rectangle::new(
                            [(p.edges[i], 0.0), (p.edges[i + 1], v)],
                            col.mix(0.42).filled(),
                        )
                    },
                ))?;
                let mut step = Vec::with_capacity(2 * shares.len() + 2);
                step.push((p.edges[0], 0.0));
                for (i, &v) in shares.iter().enumerate() {
                    step.push((p.edges[i], v));
                    step.push((p.edges[i + 1], v));
                }
                step.push((p.edges[shares.len()], 0.0));
                c.draw_series(LineSeries::new(step, pen.line(col, 1.2)))?;
            }
        }
    }
    Ok(())
}

fn draw_curves<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    curve: Curve,
    series: &[CurveSeries],
    chance: Option<f64>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if series.is_empty() {
        return note(&body, pen, "no curve rows for this family and unit");
    }
    let (xd, yd, metric) = match curve {
        Curve::Roc => ("false-positive rate", "true-positive rate", "AUC"),
        Curve::Pr => ("recall", "precision", "AP"),
    };
    let mut c = chart(
        &body,
        pen,
        "",
        0.0..1.0,
        nice_keys(0.0, 1.0, 5, false),
        0.0..1.02,
        48.0,
        62.0,
    )?;
    let fx = |v: &f64| tick(*v);
    mesh(&mut c, pen, xd, yd, &fx)?;
    let chance_line = match curve {
        Curve::Roc => Some((vec![(0.0, 0.0), (1.0, 1.0)], "chance".to_string())),
        Curve::Pr => chance.map(|p| {
            (
                vec![(0.0, p), (1.0, p)],
                format!("chance (prevalence {p:.3})"),
            )
        }),
    };
    if let Some((pts, label)) = chance_line {
        c.draw_series(DashedLineSeries::new(
            pts,
            pen.ipx(7.0),
            pen.ipx(5.0),
            pen.line(GREY, 1.5),
        ))?
        .label(label)
        .legend(dash_legend(GREY, pen));
    }
    for s in series {
        let col = stage_color(s.stage);
        c.draw_series(LineSeries::new(s.points.clone(), pen.line(col, 2.5)))?
            .label(format!(
                "{} ({metric} {})",
                stage_label(s.stage),
                s.summary
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "–".into())
            ))
            .legend(line_legend(col, pen));
    }
    chart_legend(
        &mut c,
        pen,
        match curve {
            Curve::Roc => SeriesLabelPosition::LowerRight,
            Curve::Pr => SeriesLabelPosition::LowerLeft,
        },
    )
}

/// A line in a panel of [`line_panel`].
struct LineSpec {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn episodes_f(v: &[(usize, f64)]) -> Vec<(f64, f64)> {
    v.iter().map(|&(e, y)| (e as f64, y)).collect()
}

/// A panel of lines with point markers over episodes; `zero` draws a dashed zero line.
#[allow(clippy::too_many_arguments)]
fn line_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[LineSpec],
    y_include: &[f64],
    zero: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pts = || lines.iter().flat_map(|l| l.points.iter());
    if pts().next().is_none() {
        let (w, _) = area.dim_in_pixel();
        area.draw(&Text::new(
            caption.to_string(),
            (w as i32 / 2, pen.ipx(14.0)),
            pen.font(15.0).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        return note(area, pen, "no rows (the method records none)");
    }
    let xs = span(pts().map(|p| p.0), &[]);
    let (xlo, xhi) = (
        xs.start
            .min(pts().map(|p| p.0).fold(f64::INFINITY, f64::min) - 0.5),
        xs.end
            .max(pts().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max) + 0.5),
    );
    let y = span(pts().map(|p| p.1), y_include);
    let mut c = chart(
        area,
        pen,
        caption,
        xlo..xhi,
        nice_keys(xlo, xhi, 10, true),
        y,
        46.0,
        64.0,
    )?;
    let fx = |v: &f64| tick(*v);
    mesh(&mut c, pen, x_desc, y_desc, &fx)?;
    if zero {
        c.draw_series(DashedLineSeries::new(
            vec![(xlo, 0.0), (xhi, 0.0)],
            pen.ipx(7.0),
            pen.ipx(5.0),
            pen.line(GREY, 1.2),
        ))?;
    }
    let mut labelled = false;
    for l in lines.iter().filter(|l| !l.points.is_empty()) {
        c.draw_series(LineSeries::new(l.points.clone(), pen.line(l.color, 2.2)))?
            .label(l.label.clone())
            .legend(line_legend(l.color, pen));
        if l.points.len() <= 60 {
            let r = pen.ipx(3.2);
            c.draw_series(
                l.points
                    .iter()
                    .map(|&p| Circle::new(p, r, l.color.filled())),
            )?;
        }
        labelled = true;
    }
    if labelled {
        chart_legend(&mut c, pen, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}

fn draw_training<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    t: &TrainingSeries,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if t.is_empty() {
        return note(
            &body,
            pen,
            "no loss, checkpoint or threshold rows for this unit",
        );
    }
    let panels = body.split_evenly((2, 2));
    let per_step = !t.loss_steps.is_empty();
    let loss: Vec<LineSpec> = if per_step { &t.loss_steps } else { &t.loss }
        .iter()
        .map(|(s, v)| LineSpec {
            label: format!("{} stage", s.as_str()),
            color: stage_color(*s),
            points: episodes_f(v),
        })
        .collect();
    let (caption, x_desc) = if per_step {
        let e = t
            .loss
            .first()
            .and_then(|l| l.1.first())
            .map(|p| p.0)
            .unwrap_or(1);
        (
            "loss per step (a single episode)".to_string(),
            format!("step of episode {e}"),
        )
    } else {
        (
            "loss (mean over each episode's steps)".to_string(),
            "episode".to_string(),
        )
    };
    line_panel(
        &panels[0],
        pen,
        &caption,
        &x_desc,
        "loss",
        &loss,
        &[],
        false,
    )?;
    let margins = [
        LineSpec {
            label: "seen (outer) families".into(),
            color: class_color(false),
            points: episodes_f(&t.margin_seen),
        },
        LineSpec {
            label: "held-out families".into(),
            color: class_color(true),
            points: episodes_f(&t.margin_held_out),
        },
    ];
    line_panel(
        &panels[1],
        pen,
        "calibrated-logit margin after outer (normals − anomalies)",
        "episode",
        "margin",
        &margins,
        &[0.0],
        true,
    )?;
    let temp = [LineSpec {
        label: "T".into(),
        color: stage_color(Stage::Outer),
        points: episodes_f(&t.temperature),
    }];
    line_panel(
        &panels[2],
        pen,
        "temperature T after outer",
        "episode",
        "T",
        &temp,
        &[],
        false,
    )?;
    let tau = [
        LineSpec {
            label: "τ*".into(),
            color: RGBColor(0x33, 0x33, 0x33),
            points: episodes_f(&t.tau),
        },
        LineSpec {
            label: "validation F1 at τ*".into(),
            color: RGBColor(0xCC, 0x79, 0xA7),
            points: episodes_f(&t.val_f1),
        },
    ];
    line_panel(
        &panels[3],
        pen,
        "threshold τ* (seen-family validation pool)",
        "episode",
        "value",
        &tau,
        &[0.0, 1.0],
        false,
    )
}

fn draw_pcgrad<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    p: &PcgradSeries,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Swatch> = [PairKind::InnerVsFamily, PairKind::FamilyVsFamily]
        .iter()
        .map(|k| Swatch {
            label: k.label().into(),
            color: k.color(),
            mark: Mark::Dot,
        })
        .chain([Swatch {
            label: "episode start".into(),
            color: RGBColor(0xBB, 0xBB, 0xBB),
            mark: Mark::Line,
        }])
        .collect();
    let body = header(root, pen, title, &legend)?;
    if p.points.is_empty() {
        return note(
            &body,
            pen,
            "no PCGrad rows for this unit (the method records none, or no outer step ran)",
        );
    }
    let (_, h) = body.dim_in_pixel();
    let (top, bottom) = body.split_vertically((f64::from(h) * 0.6) as i32);
    let (xlo, xhi) = (-0.5, p.steps as f64 - 0.5);
    let keys = nice_keys(0.0, xhi, 10, true);
    let fx = |v: &f64| tick(*v);
    let boundaries: Vec<f64> = p
        .episode_starts
        .iter()
        .skip(1)
        .map(|&(_, i)| i as f64 - 0.5)
        .collect();
    {
        let mut c = chart(
            &top,
            pen,
            "cosine between task gradients, before projection",
            xlo..xhi,
            keys.clone(),
            -1.05..1.05,
            46.0,
            64.0,
        )?;
        mesh(&mut c, pen, "outer step", "cosine", &fx)?;
        for &b in &boundaries {
            c.draw_series(LineSeries::new(
                vec![(b, -1.05), (b, 1.05)],
                pen.line(RGBColor(0xBB, 0xBB, 0xBB), 1.0),
            ))?;
        }
        c.draw_series(DashedLineSeries::new(
            vec![(xlo, 0.0), (xhi, 0.0)],
            pen.ipx(7.0),
            pen.ipx(5.0),
            pen.line(BLACK, 1.2),
        ))?;
        let r = pen.ipx(2.6);
        for kind in [PairKind::InnerVsFamily, PairKind::FamilyVsFamily] {
            let col = kind.color();
            c.draw_series(
                p.points
                    .iter()
                    .filter(|q| q.kind == kind)
                    .map(|q| Circle::new((q.index as f64, q.cosine), r, col.mix(0.7).filled())),
            )?;
        }
    }
    let mut c = chart(
        &bottom,
        pen,
        &format!(
            "share of pairs projected (cosine < 0): {} overall",
            p.overall
                .map(|v| format!("{:.0}%", 100.0 * v))
                .unwrap_or_else(|| "–".into())
        ),
        xlo..xhi,
        keys,
        0.0..1.05,
        46.0,
        64.0,
    )?;
    mesh(&mut c, pen, "outer step", "share projected", &fx)?;
    for &b in &boundaries {
        c.draw_series(LineSeries::new(
            vec![(b, 0.0), (b, 1.05)],
            pen.line(RGBColor(0xBB, 0xBB, 0xBB), 1.0),
        ))?;
    }
    let col = RGBColor(0x33, 0x33, 0x33);
    c.draw_series(LineSeries::new(
        p.fraction.iter().map(|&(i, f)| (i as f64, f)),
        pen.line(col, 1.8),
    ))?;
    Ok(())
}

fn draw_method_auc<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    b: &AucBars,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Swatch> = b
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| Swatch {
            label: m.clone(),
            color: method_color(i),
            mark: Mark::Bar,
        })
        .chain([Swatch {
            label: "chance (0.5)".into(),
            color: GREY,
            mark: Mark::Line,
        }])
        .collect();
    let body = header(root, pen, title, &legend)?;
    if b.bars.is_empty() {
        return note(&body, pen, "no test metrics in this run yet");
    }
    let g = b.families.len();
    let m = b.methods.len().max(1);
    let ymax = b
        .bars
        .iter()
        .map(|x| x.stat.mean + x.stat.std)
        .fold(1.0f64, f64::max)
        * 1.04;
    let (xlo, xhi) = (-0.5, g as f64 - 0.5);
    let mut c = chart(
        &body,
        pen,
        "",
        xlo..xhi,
        (0..g).map(|i| i as f64).collect(),
        0.0..ymax,
        52.0,
        62.0,
    )?;
    let names = b.families.clone();
    let fx = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    mesh(&mut c, pen, "held-out family", "test AUC-ROC", &fx)?;
    if g > 1 && b.families.last().map(String::as_str) == Some("macro") {
        let x = g as f64 - 1.5;
        c.draw_series(LineSeries::new(
            vec![(x, 0.0), (x, ymax)],
            pen.line(RGBColor(0xBB, 0xBB, 0xBB), 1.0),
        ))?;
    }
    c.draw_series(DashedLineSeries::new(
        vec![(xlo, 0.5), (xhi, 0.5)],
        pen.ipx(7.0),
        pen.ipx(5.0),
        pen.line(GREY, 1.2),
    ))?;
    let width = 0.8 / m as f64;
    for (mi, method) in b.methods.iter().enumerate() {
        let col = method_color(mi);
        let mine: Vec<(f64, &AucBar)> = b
            .bars
            .iter()
            .filter(|x| &x.method == method)
            .filter_map(|x| {
                let gi = b.families.iter().position(|f| f == &x.family)?;
                Some((gi as f64 - 0.4 + (mi as f64 + 0.5) * width, x))
            })
            .collect();
        c.draw_series(mine.iter().map(|&(x, bar)| {
            Rectangle::new(
                [(x - width * 0.45, 0.0), (x + width * 0.45, bar.stat.mean)],
                col.mix(0.85).filled(),
            )
        }))?;
        let err = pen.line(BLACK, 1.3);
        for &(x, bar) in &mine {
            if bar.stat.n > 1 && bar.stat.std > 0.0 {
                let (lo, hi) = (
                    (bar.stat.mean - bar.stat.std).max(0.0),
                    bar.stat.mean + bar.stat.std,
                );
                let cap = width * 0.18;
                c.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], err),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], err),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], err),
                ])?;
            }
        }
    }
    Ok(())
}

fn draw_test_roc<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    series: &[TestRocSeries],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if series.is_empty() {
        return note(
            &body,
            pen,
            "no test scores with both normals and anomalies for this family",
        );
    }
    let mut c = chart(
        &body,
        pen,
        "",
        0.0..1.0,
        nice_keys(0.0, 1.0, 5, false),
        0.0..1.02,
        48.0,
        62.0,
    )?;
    let fx = |v: &f64| tick(*v);
    mesh(
        &mut c,
        pen,
        "false-positive rate",
        "true-positive rate",
        &fx,
    )?;
    c.draw_series(DashedLineSeries::new(
        vec![(0.0, 0.0), (1.0, 1.0)],
        pen.ipx(7.0),
        pen.ipx(5.0),
        pen.line(GREY, 1.5),
    ))?
    .label("chance")
    .legend(dash_legend(GREY, pen));
    for (i, s) in series.iter().enumerate() {
        let col = method_color(i);
        c.draw_series(LineSeries::new(s.points.clone(), pen.line(col, 2.5)))?
            .label(format!(
                "{} (AUC {:.3}; {} normal, {} anomalous)",
                s.method, s.auc, s.n_normal, s.n_anomaly
            ))
            .legend(line_legend(col, pen));
    }
    chart_legend(&mut c, pen, SeriesLabelPosition::LowerRight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckpointRow, CurveRow, HistRow, LossRow, PcgradRow, ScoreRow};

    fn unit(m: &str) -> UnitKey {
        UnitKey {
            method: m.into(),
            seed: 0,
            rotation: "A".into(),
        }
    }

    fn ck(u: &UnitKey, ep: usize, stage: Stage, fam: &str, auc: f64) -> CheckpointRow {
        CheckpointRow {
            unit: u.clone(),
            episode: ep,
            stage,
            family: fam.into(),
            held_out: fam == "A",
            auc,
            ap: auc - 0.1,
            margin: if fam == "A" { 0.5 } else { 1.5 } + ep as f64,
            temperature: 1.0 + ep as f64,
        }
    }

    /// Unit "m": families A (held out) and B (seen), episodes 1 and 2, 4 bins over [0, 1]:
    /// pool A has 10 normals + 3 anomalies, pool B 8 + 5.
    fn sample() -> RunData {
        let u = unit("m");
        let mut d = RunData::default();
        for ep in 1..=2 {
            for (k, stage) in STAGES.iter().enumerate() {
                for (fam, nn, na) in [
                    ("A", [4u64, 3, 2, 1], [0u64, 1, 1, 1]),
                    ("B", [5, 3, 0, 0], [0, 0, 2, 3]),
                ] {
                    d.checkpoints
                        .push(ck(&u, ep, *stage, fam, 0.6 + 0.1 * k as f64));
                    for (anomaly, counts) in [(false, nn), (true, na)] {
                        for (i, c) in counts.iter().enumerate() {
                            d.histograms.push(HistRow {
                                unit: u.clone(),
                                episode: ep,
                                stage: *stage,
                                family: fam.into(),
                                anomaly,
                                lo: i as f64 * 0.25,
                                hi: (i + 1) as f64 * 0.25,
                                count: *c,
                            });
                        }
                    }
                }
                for (x, y) in [(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)] {
                    d.curves.push(CurveRow {
                        unit: u.clone(),
                        episode: ep,
                        stage: *stage,
                        family: "A".into(),
                        curve: Curve::Roc,
                        x,
                        y,
                    });
                }
            }
            for (stage, losses) in [(Stage::Inner, [1.0, 3.0]), (Stage::Outer, [2.0, f64::NAN])] {
                for (step, l) in losses.iter().enumerate() {
                    d.losses.push(LossRow {
                        unit: u.clone(),
                        episode: ep,
                        stage,
                        step,
                        loss: *l * ep as f64,
                    });
                }
            }
            for step in 0..2 {
                for (i, j, c) in [("inner", "B", -0.5), ("B", "C", 0.25), ("inner", "C", 0.1)] {
                    d.pcgrad.push(PcgradRow {
                        unit: u.clone(),
                        episode: ep,
                        step,
                        task_i: i.into(),
                        task_j: j.into(),
                        cosine: c,
                        projected: c < 0.0,
                    });
                }
            }
        }
        d
    }

    #[test]
    fn a_method_without_episodes_gets_one_column_of_its_final_scores() {
        let mut d = sample();
        // the same rows, as a method without episodes reports them: one `Final` snapshot
        let u = unit("m");
        d.checkpoints
            .retain(|c| c.episode == 2 && c.stage == Stage::Outer);
        d.histograms
            .retain(|h| h.episode == 2 && h.stage == Stage::Outer);
        d.curves
            .retain(|c| c.episode == 2 && c.stage == Stage::Outer);
        for c in &mut d.checkpoints {
            c.stage = Stage::Final;
        }
        for h in &mut d.histograms {
            h.stage = Stage::Final;
        }
        for c in &mut d.curves {
            c.stage = Stage::Final;
        }
        assert_eq!(unit_stages(&d, &u), vec![Stage::Final]);
        let g = histogram_grid(&d, &u, None, true);
        assert_eq!(g.columns, vec![Stage::Final]);
        for r in &g.rows {
            assert_eq!(r.panels.len(), 1);
            let p = r.panels[0].as_ref().unwrap();
            assert_eq!(p.stage, Stage::Final);
            let (n, a) = if r.family == "A" { (10, 3) } else { (8, 5) };
            assert_eq!((p.n_normal(), p.n_anomaly()), (n, a));
        }
        let (_, series) = curve_series(&d, &u, "A", Curve::Roc, None);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].stage, Stage::Final);
    }

    #[test]
    fn histogram_panels_sum_to_the_pool_sizes() {
        let d = sample();
        let g = histogram_grid(&d, &unit("m"), None, true);
        assert_eq!(g.episode, Some(2), "None = the last episode");
        assert_eq!(
            g.rows
                .iter()
                .map(|r| (r.family.as_str(), r.held_out))
                .collect::<Vec<_>>(),
            vec![("A", true), ("B", false)],
            "held-out rows first"
        );
        for r in &g.rows {
            for (k, p) in r.panels.iter().enumerate() {
                let p = p.as_ref().unwrap();
                assert_eq!(p.stage, STAGES[k]);
                assert_eq!(p.edges, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
                let (n, a) = if r.family == "A" { (10, 3) } else { (8, 5) };
                assert_eq!((p.n_normal(), p.n_anomaly()), (n, a));
                assert!((p.shares(true).iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!((p.auc.unwrap() - (0.6 + 0.1 * k as f64)).abs() < 1e-12);
            }
        }
        assert_eq!(p_of(&g, "B").normal, vec![5, 3, 0, 0]);
        assert_eq!(p_of(&g, "B").anomaly, vec![0, 0, 2, 3]);
        let held = histogram_grid(&d, &unit("m"), Some(1), false);
        assert_eq!(held.rows.len(), 1);
        assert_eq!(held.episode, Some(1));
        assert!(histogram_grid(&d, &unit("other"), None, true)
            .rows
            .is_empty());
        assert!(histogram_grid(&d, &unit("m"), Some(9), true)
            .rows
            .is_empty());
        assert_eq!(prevalence(&d, &unit("m"), "A", 2), Some(3.0 / 13.0));
    }

    fn p_of<'a>(g: &'a HistGrid, fam: &str) -> &'a HistPanel {
        g.rows.iter().find(|r| r.family == fam).unwrap().panels[0]
            .as_ref()
            .unwrap()
    }

    #[test]
    fn curves_carry_the_checkpoint_auc_and_ap() {
        let d = sample();
        let (ep, s) = curve_series(&d, &unit("m"), "A", Curve::Roc, None);
        assert_eq!(ep, Some(2));
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].stage, Stage::Outer);
        assert_eq!(s[2].points, vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)]);
        assert!((s[2].summary.unwrap() - 0.8).abs() < 1e-12);
        let (ep, pr) = curve_series(&d, &unit("m"), "A", Curve::Pr, None);
        assert!(ep.is_none() && pr.is_empty(), "no PR rows");
        let (_, r1) = curve_series(&d, &unit("m"), "A", Curve::Roc, Some(1));
        assert!((r1[0].summary.unwrap() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn training_means_per_episode_skip_non_finite() {
        let d = sample();
        let t = training_series(&d, &unit("m"));
        assert_eq!(t.loss[0], (Stage::Inner, vec![(1, 2.0), (2, 4.0)]));
        assert_eq!(t.loss[1], (Stage::Outer, vec![(1, 2.0), (2, 4.0)]));
        assert!(t.loss_steps.is_empty(), "two episodes: per-episode means");
        assert_eq!(t.margin_held_out, vec![(1, 1.5), (2, 2.5)]);
        assert_eq!(t.margin_seen, vec![(1, 2.5), (2, 3.5)]);
        assert_eq!(t.temperature, vec![(1, 2.0), (2, 3.0)]);
        let mut one = d.clone();
        one.losses.retain(|l| l.episode == 1);
        let t1 = training_series(&one, &unit("m"));
        assert_eq!(t1.loss_steps[0], (Stage::Inner, vec![(0, 1.0), (1, 3.0)]));
        assert_eq!(t1.loss_steps[1], (Stage::Outer, vec![(0, 2.0)]));
        assert!(training_series(&d, &unit("x")).is_empty());
    }

    #[test]
    fn pcgrad_indexes_steps_and_counts_projections() {
        let p = pcgrad_series(&sample(), &unit("m"));
        assert_eq!(p.steps, 4);
        assert_eq!(p.points.len(), 12);
        assert_eq!(p.episode_starts, vec![(1, 0), (2, 2)]);
        assert!(p
            .fraction
            .iter()
            .all(|&(_, f)| (f - 1.0 / 3.0).abs() < 1e-12));
        assert!((p.overall.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let kinds: Vec<PairKind> = p.points.iter().take(3).map(|q| q.kind).collect();
        assert_eq!(
            kinds,
            vec![
                PairKind::InnerVsFamily,
                PairKind::FamilyVsFamily,
                PairKind::InnerVsFamily
            ]
        );
        assert_eq!(p.points.last().unwrap().index, 3);
    }

    fn metric(method: &str, seed: u64, fam: &str, auc: f64) -> MetricRow {
        MetricRow {
            method: method.into(),
            seed,
            held_out: fam.into(),
            precision: 0.5,
            recall: 0.5,
            accuracy: 0.5,
            f1: 0.5,
            ap: 0.5,
            auc,
            fpr95: 0.5,
            tau: 0.5,
            threshold: "val_best_f1".into(),
        }
    }

    #[test]
    fn method_bars_are_the_table_auc_with_macro_last() {
        assert_eq!(crate::report::table::COLUMNS[AUC_COLUMN], "AUC-ROC");
        let m = vec![
            metric("M", 0, "A", 0.9),
            metric("M", 1, "A", 0.7),
            metric("O", 0, "A", 0.6),
            metric("M", 0, "B", 0.5),
            metric("M", 1, "B", f64::NAN),
        ];
        let b = method_auc_bars(&m);
        assert_eq!(b.families, vec!["A", "B", "macro"]);
        assert_eq!(b.methods, vec!["M", "O"]);
        let a = &b.bars[0];
        assert_eq!(
            (a.family.as_str(), a.method.as_str(), a.stat.n),
            ("A", "M", 2)
        );
        assert!((a.stat.mean - 0.8).abs() < 1e-12 && (a.stat.std - 0.1).abs() < 1e-12);
        assert!(
            b.bars.iter().all(|x| x.stat.mean.is_finite()),
            "NaN means left out"
        );
        assert!(method_auc_bars(&[]).bars.is_empty());
    }

    #[test]
    fn test_roc_matches_eval_and_filters_seeds() {
        let mut d = RunData::default();
        let rows = [(false, 0.1), (false, 0.4), (true, 0.35), (true, 0.8)];
        for seed in [0u64, 1] {
            for (i, &(a, s)) in rows.iter().enumerate() {
                d.scores.push(ScoreRow {
                    unit: UnitKey {
                        method: "M".into(),
                        seed,
                        rotation: "A".into(),
                    },
                    family: "A".into(),
                    row: i as _,
                    anomaly: a,
                    score: if seed == 0 { s } else { 1.0 - s },
                });
            }
        }
        let s0 = test_roc_series(&d, "A", Some(0));
        assert_eq!(s0.len(), 1);
        assert!((s0[0].auc - 0.75).abs() < 1e-12);
        assert_eq!((s0[0].n_normal, s0[0].n_anomaly), (2, 2));
        assert_eq!(s0[0].points.first(), Some(&(0.0, 0.0)));
        assert_eq!(s0[0].points.last(), Some(&(1.0, 1.0)));
        let pooled = test_roc_series(&d, "A", None);
        assert_eq!((pooled[0].n_normal, pooled[0].n_anomaly), (4, 4));
        assert!(test_roc_series(&d, "B", None).is_empty());
    }

    #[test]
    fn nice_keys_and_names() {
        assert_eq!(
            nice_keys(0.0, 1.0, 5, false),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(nice_keys(0.5, 3.5, 10, true), vec![1.0, 2.0, 3.0]);
        assert_eq!(nice_keys(-0.5, 99.5, 10, true).len(), 10);
        assert!(nice_keys(1.0, 1.0, 5, false).is_empty());
        assert!(nice_keys(f64::NAN, 1.0, 5, false).is_empty());
        assert_eq!(file_part("a b/c:d+e.f"), "a_b_c_d+e.f");
        let f = Figure::Curves {
            unit: UnitKey {
                method: "odin_T1000_eps0.0014".into(),
                seed: 3,
                rotation: "Web Attack+DoS".into(),
            },
            family: "DoS".into(),
            curve: Curve::Pr,
            episode: Some(4),
        };
        assert_eq!(
            f.file_stem(),
            "pr_odin_T1000_eps0.0014_seed3_Web_Attack+DoS_DoS_ep4"
        );
    }

    #[test]
    fn every_figure_renders_with_data_and_without() {
        let d = sample();
        let u = unit("m");
        let figs = [
            Figure::Histograms {
                unit: u.clone(),
                episode: None,
                seen: true,
            },
            Figure::Curves {
                unit: u.clone(),
                family: "A".into(),
                curve: Curve::Roc,
                episode: None,
            },
            Figure::Curves {
                unit: u.clone(),
                family: "A".into(),
                curve: Curve::Pr,
                episode: None,
            },
            Figure::Training { unit: u.clone() },
            Figure::Pcgrad { unit: u.clone() },
            Figure::MethodAuc,
            Figure::TestRoc {
                family: "A".into(),
                seed: None,
            },
        ];
        let empty = RunData::default();
        for f in &figs {
            let svg = render_svg(f, &d).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            let e = render_svg(f, &empty).unwrap();
            assert!(e.contains("no "), "{f:?} without rows says so");
            assert!(!f.has_data(&empty));
        }
        let hist = render_svg(&figs[0], &d).unwrap();
        for t in [
            "pre",
            "after inner",
            "after outer",
            "normal",
            "anomaly",
            "A (held out)",
            "B (seen)",
            "AUC 0.800",
        ] {
            assert!(hist.contains(t), "{t}");
        }
        let (w, h, px) = render_rgb(&figs[3], &d, 1).unwrap();
        assert_eq!((w, h), figs[3].size(&d));
        assert_eq!(px.len(), (w * h * 3) as usize);
        assert!(px.iter().any(|&b| b < 128), "something dark was drawn");
    }

    #[test]
    fn render_refuses_unknown_extensions() {
        let e = render(&Figure::MethodAuc, &RunData::default(), Path::new("x.jpg")).unwrap_err();
        assert!(e.to_string().contains("x.jpg") && e.to_string().contains(".svg or .png"));
    }
}
