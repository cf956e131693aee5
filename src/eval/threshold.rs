//! Metrics of the thresholded prediction `ŷ = 1{s ≥ τ}`, anomaly as the positive class.

use serde::Serialize;

use super::{check_pairs, EvalError};

/// Confusion counts and the usual rates at one threshold.
///
/// Every ratio whose denominator is zero is 0, as scikit-learn's `zero_division=0` and
/// `matthews_corrcoef` do. Single-class inputs are allowed here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdMetrics {
    /// The threshold τ: anomaly iff `s >= tau`.
    pub tau: f64,
    /// Anomalies flagged.
    pub tp: u64,
    /// Normals flagged.
    pub fp: u64,
    /// Normals not flagged.
    pub tn: u64,
    /// Anomalies missed (`"fn"` in JSON).
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// (TP + TN) / n.
    pub accuracy: f64,
    /// 2·TP / (2·TP + FP + FN).
    pub f1: f64,
    /// Matthews correlation coefficient, in [−1, 1].
    pub mcc: f64,
}

impl ThresholdMetrics {
    /// The metrics of `1{s >= tau}` against `labels` (`true` = anomaly). `tau` may be ±inf,
    /// not NaN.
    pub fn at(labels: &[bool], scores: &[f64], tau: f64) -> Result<Self, EvalError> {
        check_pairs(labels, scores)?;
        if tau.is_nan() {
            return Err(EvalError::NanThreshold);
        }
        let (mut tp, mut fp, mut tn, mut fn_) = (0u64, 0u64, 0u64, 0u64);
        for (&y, &s) in labels.iter().zip(scores) {
            match (y, s >= tau) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (false, false) => tn += 1,
                (true, false) => fn_ += 1,
            }
        }
        Ok(Self::from_counts(tau, tp, fp, tn, fn_))
    }

    /// The metrics of given confusion counts (at threshold `tau`, kept for the record).
    pub fn from_counts(tau: f64, tp: u64, fp: u64, tn: u64, fn_: u64) -> Self {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let n = tp + fp + tn + fn_;
        Self {
            tau,
            tp,
            fp,
            tn,
            fn_,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            accuracy: ratio(tp + tn, n),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            mcc: mcc(tp, fp, tn, fn_),
        }
    }
}

/// scikit-learn's `matthews_corrcoef` formula (covariances from the confusion matrix's row
/// and column sums), 0 when a covariance is 0.
fn mcc(tp: u64, fp: u64, tn: u64, fn_: u64) -> f64 {
    let n = (tp + fp + tn + fn_) as f64;
    let (t_neg, t_pos) = ((tn + fp) as f64, (tp + fn_) as f64);
    let (p_neg, p_pos) = ((tn + fn_) as f64, (tp + fp) as f64);
    let correct = (tp + tn) as f64;
    let cov_ytyp = correct * n - (t_neg * p_neg + t_pos * p_pos);
    let cov_ypyp = n * n - (p_neg * p_neg + p_pos * p_pos);
    let cov_ytyt = n * n - (t_neg * t_neg + t_pos * t_pos);
    let denom = cov_ypyp * cov_ytyt;
    if denom == 0.0 {
        0.0
    } else {
        (cov_ytyp / denom.sqrt()).clamp(-1.0, 1.0)
    }
}
