//! Per-family metric tables with macro and micro summaries.

use std::collections::BTreeMap;

use serde::Serialize;

use super::curves::ranking_metrics;
use super::{check_both_classes, check_pairs, EvalError, ThresholdMetrics};

/// One row of a metrics table: the threshold-free metrics of a score vector and the
/// thresholded ones at a given τ. For a macro row every metric is the mean of the per-family
/// values; the counts are totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    /// Family name, or "macro" / "micro" / "all".
    pub name: String,
    /// Normal samples (label 0).
    pub n_normal: usize,
    /// Anomalous samples (label 1).
    pub n_anomaly: usize,
    /// Precision at τ.
    pub precision: f64,
    /// Recall at τ.
    pub recall: f64,
    /// Accuracy at τ.
    pub accuracy: f64,
    /// F1 at τ.
    pub f1: f64,
    /// Matthews correlation coefficient at τ.
    pub mcc: f64,
    /// Average precision (step-wise, scikit-learn's `average_precision_score`).
    pub ap: f64,
    /// AUC-PR by the trapezoid rule (`auc(recall, precision)`).
    pub auc_pr: f64,
    /// AUC-ROC (ties averaged).
    pub auc_roc: f64,
    /// FPR@95 with anomalies positive (share of normals flagged when ≥ 95 % of anomalies are).
    pub fpr95: f64,
    /// FPR@95 with normals positive, ODIN style (share of anomalies accepted when ≥ 95 % of
    /// normals are).
    pub fpr95_id: f64,
}

/// The [`MetricRow`] of one labelled score vector at threshold `tau` (anomaly iff `s >= tau`).
/// Needs both classes.
pub fn metric_row(
    name: &str,
    labels: &[bool],
    scores: &[f64],
    tau: f64,
) -> Result<MetricRow, EvalError> {
    let r = ranking_metrics(labels, scores)?;
    let t = ThresholdMetrics::at(labels, scores, tau)?;
    let n_anomaly = labels.iter().filter(|&&y| y).count();
    Ok(MetricRow {
        name: name.to_string(),
        n_normal: labels.len() - n_anomaly,
        n_anomaly,
        precision: t.precision,
        recall: t.recall,
        accuracy: t.accuracy,
        f1: t.f1,
        mcc: t.mcc,
        ap: r.average_precision,
        auc_pr: r.auc_pr_trapezoid,
        auc_roc: r.auc_roc,
        fpr95: r.fpr95.anomaly_positive.fpr,
        fpr95_id: r.fpr95.normal_positive.fpr,
    })
}

/// One family's labelled scores (its anomalies and the normals it is tested against).
#[derive(Debug, Clone, Copy)]
pub struct FamilySet<'a> {
    /// The family's name.
    pub name: &'a str,
    /// `true` = anomaly.
    pub labels: &'a [bool],
    /// Higher = more anomalous.
    pub scores: &'a [f64],
}

/// Per-family rows plus their macro and micro summaries, all at one threshold τ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyTable {
    /// The one global threshold the thresholded metrics use (anomaly iff `s >= tau`).
    pub tau: f64,
    /// One row per family.
    pub rows: Vec<MetricRow>,
    /// Mean of the per-family values of each metric (every family weighs the same).
    #[serde(rename = "macro")]
    pub macro_avg: MetricRow,
    /// The metrics of all families' sets pooled into one (concatenated) set.
    #[serde(rename = "micro")]
    pub micro_avg: MetricRow,
}

/// Metrics of each family's set at threshold `tau`, with macro (mean of the per-family
/// values) and micro (metrics of the concatenation of all sets — a normal shared by several
/// sets counts once per set) rows. Every set needs both classes; an error names the family.
pub fn family_table(sets: &[FamilySet<'_>], tau: f64) -> Result<FamilyTable, EvalError> {
    if sets.is_empty() {
        return Err(EvalError::Empty {
            what: "the family list",
        });
    }
    let mut rows = Vec::with_capacity(sets.len());
    let mut pooled_labels = Vec::new();
    let mut pooled_scores = Vec::new();
    for s in sets {
        let row = metric_row(s.name, s.labels, s.scores, tau).map_err(|e| EvalError::Family {
            family: s.name.to_string(),
            source: Box::new(e),
        })?;
        rows.push(row);
        pooled_labels.extend_from_slice(s.labels);
        pooled_scores.extend_from_slice(s.scores);
    }
    let micro_avg = metric_row("micro", &pooled_labels, &pooled_scores, tau)?;
    let macro_avg = macro_row(&rows);
    Ok(FamilyTable {
        tau,
        rows,
        macro_avg,
        micro_avg,
    })
}

/// The per-family table of a labelled score vector whose anomalies carry a family: each
/// family's anomalies against **all** normals, at threshold `tau`. `family[i]` is ignored
/// for normal rows. Families are listed in sorted order of their names.
pub fn families_against_normals<S: AsRef<str>>(
    labels: &[bool],
    scores: &[f64],
    family: &[S],
    tau: f64,
) -> Result<FamilyTable, EvalError> {
    check_pairs(labels, scores)?;
    check_both_classes(labels)?;
    if family.len() != labels.len() {
        return Err(EvalError::LengthMismatch {
            left_name: "the label list",
            left: labels.len(),
            right_name: "the family list",
            right: family.len(),
        });
    }
    let normal_scores: Vec<f64> = (0..labels.len())
        .filter(|&i| !labels[i])
        .map(|i| scores[i])
        .collect();
    let mut by_family: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in (0..labels.len()).filter(|&i| labels[i]) {
        by_family
            .entry(family[i].as_ref())
            .or_default()
            .push(scores[i]);
    }
    let mut owned: Vec<(&str, Vec<bool>, Vec<f64>)> = Vec::with_capacity(by_family.len());
    for (name, anomalies) in by_family {
        let mut l = vec![false; normal_scores.len()];
        l.resize(normal_scores.len() + anomalies.len(), true);
        let mut s = normal_scores.clone();
        s.extend_from_slice(&anomalies);
        owned.push((name, l, s));
    }
    let sets: Vec<FamilySet<'_>> = owned
        .iter()
        .map(|(name, l, s)| FamilySet {
            name,
            labels: l,
            scores: s,
        })
        .collect();
    family_table(&sets, tau)
}

fn macro_row(rows: &[MetricRow]) -> MetricRow {
    let k = rows.len() as f64;
    let mean = |f: fn(&MetricRow) -> f64| rows.iter().map(f).sum::<f64>() / k;
    MetricRow {
        name: "macro".to_string(),
        n_normal: rows.iter().map(|r| r.n_normal).sum(),
        n_anomaly: rows.iter().map(|r| r.n_anomaly).sum(),
        precision: mean(|r| r.precision),
        recall: mean(|r| r.recall),
        accuracy: mean(|r| r.accuracy),
        f1: mean(|r| r.f1),
        mcc: mean(|r| r.mcc),
        ap: mean(|r| r.ap),
        auc_pr: mean(|r| r.auc_pr),
        auc_roc: mean(|r| r.auc_roc),
        fpr95: mean(|r| r.fpr95),
        fpr95_id: mean(|r| r.fpr95_id),
    }
}
