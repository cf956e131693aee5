//! Ranking metrics: ROC and precision–recall curves, AUC-ROC, AP, AUC-PR (trapezoid),
//! FPR at a TPR level, and the best-F1 threshold.
//!
//! All functions take `labels` (`true` = anomaly, y = 1) and `scores` (higher = more
//! anomalous) in that order, as scikit-learn's `(y_true, y_score)`, and need both classes.

use serde::Serialize;

use super::{check_both_classes, check_pairs, EvalError};

/// The cumulative counts behind every curve, one entry per distinct score value in decreasing
/// order (scikit-learn's `_binary_clf_curve`): at `thresholds[i]`, predicting anomaly iff
/// `s >= thresholds[i]` gives `tps[i]` true and `fps[i]` false positives.
#[derive(Debug, Clone)]
pub(crate) struct ClfCurve {
    pub thresholds: Vec<f64>,
    pub tps: Vec<u64>,
    pub fps: Vec<u64>,
    pub n_pos: u64,
    pub n_neg: u64,
}

impl ClfCurve {
    /// Validates the input (non-empty, equal lengths, finite scores, both classes) and builds
    /// the counts.
    pub(crate) fn new(labels: &[bool], scores: &[f64]) -> Result<Self, EvalError> {
        check_pairs(labels, scores)?;
        let (n_pos, n_neg) = check_both_classes(labels)?;
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut thresholds = Vec::new();
        let mut tps = Vec::new();
        let mut fps = Vec::new();
        let (mut tp, mut fp) = (0u64, 0u64);
        for (k, &i) in order.iter().enumerate() {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            // Last index of a run of equal scores closes a threshold (-0.0 == 0.0 here).
            let last = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
            if last {
                thresholds.push(scores[i]);
                tps.push(tp);
                fps.push(fp);
            }
        }
        Ok(Self {
            thresholds,
            tps,
            fps,
            n_pos: n_pos as u64,
            n_neg: n_neg as u64,
        })
    }
}

/// A ROC curve as scikit-learn's `roc_curve(y, s, drop_intermediate=False)` returns it.
///
/// Point 0 is `(0, 0)` at threshold `+inf`; point `i ≥ 1` belongs to the `i`-th distinct
/// score value in decreasing order, with `fpr = FP/N`, `tpr = TP/P` for "anomaly iff
/// `s >= threshold`". No collinear point is dropped (scikit-learn's default
/// `drop_intermediate=True` would drop some; the area is the same).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    /// False-positive rate (share of normals flagged), non-decreasing.
    pub fpr: Vec<f64>,
    /// True-positive rate (share of anomalies flagged), non-decreasing.
    pub tpr: Vec<f64>,
    /// Thresholds, decreasing; the first is `+inf`.
    pub thresholds: Vec<f64>,
}

/// The ROC curve (see [`RocCurve`] for the exact points).
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Result<RocCurve, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    let (p, n) = (c.n_pos as f64, c.n_neg as f64);
    let mut fpr = vec![0.0];
    let mut tpr = vec![0.0];
    let mut thresholds = vec![f64::INFINITY];
    for i in 0..c.thresholds.len() {
        fpr.push(c.fps[i] as f64 / n);
        tpr.push(c.tps[i] as f64 / p);
        thresholds.push(c.thresholds[i]);
    }
    Ok(RocCurve {
        fpr,
        tpr,
        thresholds,
    })
}

/// AUC-ROC: the probability that a random anomaly scores above a random normal, ties counted
/// one half (Mann–Whitney U / (P·N)); equal to scikit-learn's `roc_auc_score`.
///
/// Computed as the exact trapezoid area under the full ROC curve in integer arithmetic, then
/// one division.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    Ok(auc_from_counts(&c))
}

pub(crate) fn auc_from_counts(c: &ClfCurve) -> f64 {
    // 2·area·P·N = Σ Δfp · (tp_i + tp_{i−1}); fits u128 for any realistic size.
    let (mut prev_tp, mut prev_fp) = (0u128, 0u128);
    let mut twice = 0u128;
    for i in 0..c.tps.len() {
        let (tp, fp) = (c.tps[i] as u128, c.fps[i] as u128);
        twice += (fp - prev_fp) * (tp + prev_tp);
        prev_tp = tp;
        prev_fp = fp;
    }
    twice as f64 / (2.0 * c.n_pos as f64 * c.n_neg as f64)
}

/// A precision–recall curve as scikit-learn's `precision_recall_curve(y, s)` returns it.
///
/// `thresholds` are the distinct score values in *increasing* order; `precision[i]` and
/// `recall[i]` belong to `thresholds[i]` (anomaly iff `s >= thresholds[i]`). The arrays
/// `precision` and `recall` have one more entry: the final point `(precision 1, recall 0)`,
/// which has no threshold. Recall is non-increasing along the arrays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrCurve {
    /// TP / (TP + FP) at each threshold, then 1.
    pub precision: Vec<f64>,
    /// TP / P at each threshold, then 0.
    pub recall: Vec<f64>,
    /// The distinct scores, increasing.
    pub thresholds: Vec<f64>,
}

/// The precision–recall curve (see [`PrCurve`]).
pub fn precision_recall_curve(labels: &[bool], scores: &[f64]) -> Result<PrCurve, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    Ok(pr_from_counts(&c))
}

fn pr_from_counts(c: &ClfCurve) -> PrCurve {
    let m = c.thresholds.len();
    let mut precision = Vec::with_capacity(m + 1);
    let mut recall = Vec::with_capacity(m + 1);
    let mut thresholds = Vec::with_capacity(m);
    for i in (0..m).rev() {
        let (tp, fp) = (c.tps[i] as f64, c.fps[i] as f64);
        // tp + fp ≥ 1: every threshold is some sample's score.
        precision.push(tp / (tp + fp));
        recall.push(tp / c.n_pos as f64);
        thresholds.push(c.thresholds[i]);
    }
    precision.push(1.0);
    recall.push(0.0);
    PrCurve {
        precision,
        recall,
        thresholds,
    }
}

/// Average precision, step-wise: `AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ` over the precision–recall curve
/// with no interpolation, exactly scikit-learn's `average_precision_score` (clipped at 0
/// against `-0.0`). This is the "AP" of the core paper, DeepOD and ADBench.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    Ok(ap_from_pr(&pr_from_counts(&c)))
}

fn ap_from_pr(pr: &PrCurve) -> f64 {
    let mut s = 0.0;
    for i in 0..pr.recall.len() - 1 {
        s += (pr.recall[i + 1] - pr.recall[i]) * pr.precision[i];
    }
    // Summing recall steps of 1/P can land one ulp outside [0, 1] (e.g. 1.0000000000000002).
    (-s).clamp(0.0, 1.0)
}

/// AUC-PR by the trapezoid rule, scikit-learn's `auc(recall, precision)` on the output of
/// `precision_recall_curve` (the linear interpolation between PR points, including the final
/// `(recall 0, precision 1)` point). This is MNPWAD's "AUC-PR" and Latent Sculpting's
/// "AUPRC"; it is *not* the same number as [`average_precision`].
pub fn auc_pr_trapezoid(labels: &[bool], scores: &[f64]) -> Result<f64, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    Ok(trapezoid_from_pr(&pr_from_counts(&c)))
}

fn trapezoid_from_pr(pr: &PrCurve) -> f64 {
    // recall is non-increasing, so scikit-learn flips the sign (direction = −1).
    let mut s = 0.0;
    for i in 0..pr.recall.len() - 1 {
        s += (pr.recall[i + 1] - pr.recall[i]) * (pr.precision[i + 1] + pr.precision[i]) / 2.0;
    }
    // as in `ap_from_pr`: keep float rounding of the sum inside [0, 1]
    (-s).clamp(0.0, 1.0)
}

/// One operating point chosen by [`fpr_at_tpr`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FprAtTpr {
    /// False-positive rate at the chosen threshold.
    pub fpr: f64,
    /// The TPR actually reached there (≥ the level asked for).
    pub tpr: f64,
    /// The threshold; see the function that returned it for its direction.
    pub threshold: f64,
}

/// FPR at the first ROC point whose TPR reaches `level`, with anomalies as positives.
///
/// Exact definition: among the distinct score values `t`, take the **largest** `t` such that
/// `TPR(t) = #{anomalies with s ≥ t} / P ≥ level`; return `FPR(t) = #{normals with s ≥ t} / N`,
/// `TPR(t)` and `t`. Because FPR and TPR both fall as `t` rises, this is the lowest FPR of
/// any threshold that reaches the level. No interpolation between ROC points.
/// `level` must be in (0, 1].
pub fn fpr_at_tpr(labels: &[bool], scores: &[f64], level: f64) -> Result<FprAtTpr, EvalError> {
    if !(level > 0.0 && level <= 1.0) {
        return Err(EvalError::BadLevel { level });
    }
    let c = ClfCurve::new(labels, scores)?;
    let (p, n) = (c.n_pos as f64, c.n_neg as f64);
    for i in 0..c.thresholds.len() {
        let tpr = c.tps[i] as f64 / p;
        if tpr >= level {
            return Ok(FprAtTpr {
                fpr: c.fps[i] as f64 / n,
                tpr,
                threshold: c.thresholds[i],
            });
        }
    }
    // Unreachable: the last threshold has TPR = 1 ≥ level.
    Err(EvalError::BadLevel { level })
}

/// FPR at TPR ≥ 95 %, in both directions used in the literature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fpr95 {
    /// Anomalies positive: [`fpr_at_tpr`]`(labels, scores, 0.95)`. The share of **normals**
    /// flagged at the largest threshold that still flags ≥ 95 % of anomalies; the threshold
    /// reads "anomaly iff `s >= threshold`".
    pub anomaly_positive: FprAtTpr,
    /// Normals (in-distribution) positive, as the ODIN paper and OpenOOD report it: the score
    /// is negated (`−s` = confidence of being normal) and the labels flipped. The share of
    /// **anomalies** accepted as normal at the threshold that accepts ≥ 95 % of normals with
    /// the fewest anomalies; `tpr` is the share of normals accepted. The threshold is given on
    /// the original scale: "normal iff `s <= threshold`" (the smallest such value).
    pub normal_positive: FprAtTpr,
}

/// FPR@95 in both directions (see [`Fpr95`]).
pub fn fpr95(labels: &[bool], scores: &[f64]) -> Result<Fpr95, EvalError> {
    let anomaly_positive = fpr_at_tpr(labels, scores, 0.95)?;
    let flipped: Vec<bool> = labels.iter().map(|&y| !y).collect();
    let negated: Vec<f64> = scores.iter().map(|&s| -s).collect();
    let mut normal_positive = fpr_at_tpr(&flipped, &negated, 0.95)?;
    normal_positive.threshold = -normal_positive.threshold;
    Ok(Fpr95 {
        anomaly_positive,
        normal_positive,
    })
}

/// The threshold that maximises F1, with the metrics there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BestF1 {
    /// The threshold τ (anomaly iff `s >= tau`): one of the score values.
    pub tau: f64,
    /// F1 at τ.
    pub f1: f64,
    /// Precision at τ.
    pub precision: f64,
    /// Recall at τ.
    pub recall: f64,
}

/// The best-F1 threshold, the reference protocol's rule (`refbench/metrics.py`
/// `best_f1_threshold`): candidates are the distinct score values (the thresholds of
/// `precision_recall_curve`, whose precision and recall belong to the same index); F1 with
/// anomalies positive is `2·TP / max(2·TP + FP + FN, 1)`; take the argmax, and among exactly
/// equal F1 values keep the **smallest** threshold.
pub fn best_f1_threshold(labels: &[bool], scores: &[f64]) -> Result<BestF1, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    Ok(best_f1_from_counts(&c))
}

pub(crate) fn best_f1_from_counts(c: &ClfCurve) -> BestF1 {
    let mut best: Option<(usize, f64)> = None;
    // Thresholds decrease along i, so `>=` lets a later (smaller) tie win.
    for i in 0..c.thresholds.len() {
        let tp = c.tps[i];
        let denom = (2 * tp + c.fps[i] + (c.n_pos - tp)).max(1);
        let f1 = (2 * tp) as f64 / denom as f64;
        if best.is_none_or(|(_, b)| f1 >= b) {
            best = Some((i, f1));
        }
    }
    let (i, f1) = best.unwrap_or((0, 0.0));
    let (tp, fp) = (c.tps[i] as f64, c.fps[i] as f64);
    BestF1 {
        tau: c.thresholds[i],
        f1,
        precision: if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 },
        recall: tp / c.n_pos as f64,
    }
}

/// The threshold-free metrics of one score vector, computed from one sort.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankingMetrics {
    /// AUC-ROC (ties averaged).
    pub auc_roc: f64,
    /// Average precision (step-wise, scikit-learn).
    pub average_precision: f64,
    /// AUC-PR by the trapezoid rule.
    pub auc_pr_trapezoid: f64,
    /// FPR@95 in both directions.
    pub fpr95: Fpr95,
    /// The best-F1 threshold on these scores.
    pub best_f1: BestF1,
}

/// AUC-ROC, AP, AUC-PR (trapezoid), FPR@95 (both directions) and the best-F1 threshold, each
/// exactly as its own function defines it.
pub fn ranking_metrics(labels: &[bool], scores: &[f64]) -> Result<RankingMetrics, EvalError> {
    let c = ClfCurve::new(labels, scores)?;
    let pr = pr_from_counts(&c);
    Ok(RankingMetrics {
        auc_roc: auc_from_counts(&c),
        average_precision: ap_from_pr(&pr),
        auc_pr_trapezoid: trapezoid_from_pr(&pr),
        fpr95: fpr95(labels, scores)?,
        best_f1: best_f1_from_counts(&c),
    })
}
