//! Metrics layer: everything that turns anomaly scores and labels into numbers.
//!
//! Conventions (spec `methods.md` §0, reference `PROTOCOL.md` §9):
//! - **Labels** are `&[bool]`: `true` = anomaly (y = 1), `false` = normal (y = 0). Convert 0/1
//!   integers with [`labels_from_01`].
//! - **Scores** are `&[f64]`, higher = more anomalous, finite (NaN and ±inf are rejected, as
//!   scikit-learn does). `f32` detectors convert with `iter().map(|&s| f64::from(s))`; all
//!   arithmetic is in `f64`.
//! - **Prediction** at threshold τ: anomaly iff `s >= τ`; P/R/F1/MCC with anomaly positive,
//!   0 whenever a denominator is 0.
//! - Argument order is scikit-learn's: `(labels, scores)`.
//!
//! Each metric matches a named scikit-learn / scipy / numpy function; `tests/eval_metrics.rs`
//! checks them against `tests/fixtures/metrics.json`, which `tests/fixtures/make_metrics.py`
//! computes with those libraries on the shared satimage data.
//!
//! This layer depends on nothing else in the crate.

#![warn(missing_docs)]

mod curves;
mod error;
mod histogram;
pub mod scores_csv;
mod stats;
mod table;
mod threshold;

pub use curves::{
    auc_pr_trapezoid, average_precision, best_f1_threshold, fpr95, fpr_at_tpr,
    precision_recall_curve, ranking_metrics, roc_auc, roc_curve, BestF1, Fpr95, FprAtTpr, PrCurve,
    RankingMetrics, RocCurve,
};
pub use error::EvalError;
pub use histogram::{equal_bins, histogram};
pub use scores_csv::{eval_scores_csv, EvalReport};
pub use stats::{mean_std, wilcoxon, MeanStd, Wilcoxon, WilcoxonMethod};
pub use table::{
    families_against_normals, family_table, metric_row, FamilySet, FamilyTable, MetricRow,
};
pub use threshold::{
    normal_fpr_threshold, worst_family_f1_threshold, ThresholdMetrics, ThresholdPolicy,
};

/// 0/1 labels as the `bool` labels every metric takes (`1` → `true` = anomaly). Any other
/// value is an error naming its index.
pub fn labels_from_01(labels: &[u8]) -> Result<Vec<bool>, EvalError> {
    labels
        .iter()
        .enumerate()
        .map(|(index, &v)| match v {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(EvalError::BadLabel { index, value }),
        })
        .collect()
}

/// Non-empty, equal lengths, finite scores.
pub(crate) fn check_pairs(labels: &[bool], scores: &[f64]) -> Result<(), EvalError> {
    if scores.len() != labels.len() {
        return Err(EvalError::LengthMismatch {
            left_name: "the score list",
            left: scores.len(),
            right_name: "the label list",
            right: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(EvalError::Empty {
            what: "the score list",
        });
    }
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(EvalError::NonFinite {
            what: "score",
            index,
            value: scores[index],
        });
    }
    Ok(())
}

/// `(anomalies, normals)`, both ≥ 1.
pub(crate) fn check_both_classes(labels: &[bool]) -> Result<(usize, usize), EvalError> {
    let n_pos = labels.iter().filter(|&&y| y).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 {
        return Err(EvalError::SingleClass {
            n: labels.len(),
            class: "normal",
        });
    }
    if n_neg == 0 {
        return Err(EvalError::SingleClass {
            n: labels.len(),
            class: "anomalies",
        });
    }
    Ok((n_pos, n_neg))
}
