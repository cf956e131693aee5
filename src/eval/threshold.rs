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

/// How a decision threshold is chosen, without any held-out row (`tau_policy` in experiment
/// files; each policy gives its own row of `metrics.csv`, named by [`ThresholdPolicy::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub enum ThresholdPolicy {
    /// τ* = the best-F1 threshold on the seen-family validation pool (PROTOCOL §9, the paper's).
    BestF1,
    /// A target false-positive rate on normals: the split-conformal quantile of the scores of
    /// the validation normals — flag `s > s₍ₖ₎`, k = ⌈(n + 1)(1 − α)⌉ of the n sorted scores —
    /// so that a new normal is flagged with probability at most α. Needs no anomaly at all.
    NormalFpr(f64),
    /// The threshold that maximises the F1 of the seen family caught worst: each seen family's
    /// validation rows against all validation normals, at 1:1 prevalence (the test blocks'),
    /// F1_f(τ) = 2·R_f / (1 + R_f + FPR); τ maximises min_f F1_f (ties: the smallest τ). τ*
    /// maximises the pooled F1, which the easiest seen families dominate; an unseen family is
    /// more like the hardest.
    WorstSeenF1,
}

impl ThresholdPolicy {
    /// The policies every run reports unless the experiment file says otherwise: τ*, and the
    /// normals-only thresholds at 1 % and 5 % false positives.
    pub fn defaults() -> Vec<ThresholdPolicy> {
        vec![
            ThresholdPolicy::BestF1,
            ThresholdPolicy::NormalFpr(0.01),
            ThresholdPolicy::NormalFpr(0.05),
            ThresholdPolicy::WorstSeenF1,
        ]
    }

    /// The `threshold` value of its `metrics.csv` rows (τ*'s rows keep `val_best_f1` or
    /// `fallback_0.5`, which the detector's own threshold says).
    pub fn label(&self) -> String {
        match self {
            ThresholdPolicy::BestF1 => "val_best_f1".into(),
            ThresholdPolicy::NormalFpr(a) => format!("val_fpr_{a}"),
            ThresholdPolicy::WorstSeenF1 => "val_worst_family_f1".into(),
        }
    }

    /// `Err(message)` for a target outside (0, 1).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            ThresholdPolicy::BestF1 | ThresholdPolicy::WorstSeenF1 => Ok(()),
            ThresholdPolicy::NormalFpr(a) if a > 0.0 && a < 1.0 => Ok(()),
            ThresholdPolicy::NormalFpr(a) => Err(format!(
                "NormalFpr({a}): the target false-positive rate must be in (0, 1), e.g. NormalFpr(0.05)"
            )),
        }
    }
}

/// The threshold that flags a new normal with probability at most `alpha`, from the scores of
/// `n` held-aside normals (split conformal): with s₍₁₎ ≤ … ≤ s₍ₙ₎ and k = ⌈(n + 1)(1 − α)⌉
/// (capped at n), τ is the next `f64` above s₍ₖ₎, so that `s ≥ τ` flags exactly `s > s₍ₖ₎`.
/// `None` without normals or with a non-finite score.
pub fn normal_fpr_threshold(normal_scores: &[f64], alpha: f64) -> Option<f64> {
    if normal_scores.is_empty() || normal_scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let mut v = normal_scores.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let k = (((n + 1) as f64) * (1.0 - alpha)).ceil() as usize;
    let k = k.clamp(1, n);
    Some(next_up(v[k - 1]))
}

/// The [`ThresholdPolicy::WorstSeenF1`] threshold from the validation normals' scores and each
/// seen family's validation scores: (τ, the worst family's F1 there). Candidates are the
/// distinct anomaly scores (flag `s ≥ τ`); `None` without normals, without a family with rows,
/// or with a non-finite score.
pub fn worst_family_f1_threshold(normals: &[f64], families: &[Vec<f64>]) -> Option<(f64, f64)> {
    let families: Vec<&Vec<f64>> = families.iter().filter(|f| !f.is_empty()).collect();
    if normals.is_empty()
        || families.is_empty()
        || normals
            .iter()
            .chain(families.iter().copied().flatten())
            .any(|s| !s.is_finite())
    {
        return None;
    }
    let mut neg = normals.to_vec();
    neg.sort_by(f64::total_cmp);
    let sorted: Vec<Vec<f64>> = families
        .iter()
        .map(|f| {
            let mut v = f.to_vec();
            v.sort_by(f64::total_cmp);
            v
        })
        .collect();
    // rows with score ≥ τ in an ascending list
    let at_least = |v: &[f64], t: f64| v.len() - v.partition_point(|&s| s < t);
    let mut cands: Vec<f64> = sorted.iter().flatten().copied().collect();
    cands.sort_by(f64::total_cmp);
    cands.dedup();
    let mut best: Option<(f64, f64)> = None;
    for &t in &cands {
        let fpr = at_least(&neg, t) as f64 / neg.len() as f64;
        let worst = sorted
            .iter()
            .map(|f| {
                let r = at_least(f, t) as f64 / f.len() as f64;
                2.0 * r / (1.0 + r + fpr)
            })
            .fold(f64::INFINITY, f64::min);
        // ascending candidates: strictly better only, so ties keep the smallest τ
        if best.is_none_or(|(_, b)| worst > b) {
            best = Some((t, worst));
        }
    }
    best
}

/// The least `f64` greater than finite `x` (`f64::next_up`, stable only after this crate's MSRV).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() + 1)
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn conformal_quantile_by_hand() {
        // 99 normals 1..=99: α = 0.05 → k = ⌈100 · 0.95⌉ = 95, flag s > 95 (4 of 99 flagged)
        let s: Vec<f64> = (1..=99).map(f64::from).collect();
        let t = normal_fpr_threshold(&s, 0.05).unwrap();
        assert!(t > 95.0 && t < 95.0 + 1e-12);
        assert_eq!(s.iter().filter(|&&v| v >= t).count(), 4);
        // α = 0.01 → k = 99: nothing among them is flagged
        let t = normal_fpr_threshold(&s, 0.01).unwrap();
        assert_eq!(s.iter().filter(|&&v| v >= t).count(), 0);
        // ties: every normal equal → none flagged, a larger score is
        let t = normal_fpr_threshold(&[2.0; 10], 0.5).unwrap();
        assert!(2.0 < t && 2.0000001 >= t);
        assert!(normal_fpr_threshold(&[], 0.05).is_none());
        for x in [0.0, -0.0, 1.0, -1.0, 1e-300, -1e300, 0.3] {
            let y = next_up(x);
            assert!(y > x && (y - x) <= f64::EPSILON * x.abs().max(f64::MIN_POSITIVE));
        }
        assert!(normal_fpr_threshold(&[1.0, f64::NAN], 0.05).is_none());
        assert_eq!(ThresholdPolicy::NormalFpr(0.05).label(), "val_fpr_0.05");
        assert_eq!(ThresholdPolicy::WorstSeenF1.label(), "val_worst_family_f1");
        assert!(ThresholdPolicy::NormalFpr(1.0).validate().is_err());
    }

    /// The worst-family rule by hand: 13 normals (0.0 … 0.9 and 0.86, 0.87, 0.88), an easy
    /// family at 2.0 and 3.0 and a hard one at 0.85 and 1.5. At τ = 0.85: FPR 4/13, both
    /// families fully caught → worst F1 = 2/(2 + 4/13); at 1.5 the hard family's recall halves
    /// (F1 2/3). τ* on the pooled, balanced rows prefers 1.5 (no false positive).
    #[test]
    fn worst_family_rule_by_hand() {
        let mut normals: Vec<f64> = (0..10).map(|i| f64::from(i) / 10.0).collect();
        normals.extend([0.86, 0.87, 0.88]);
        let fams = vec![vec![2.0, 3.0], vec![0.85, 1.5]];
        let (t, f1) = worst_family_f1_threshold(&normals, &fams).unwrap();
        assert_eq!(t, 0.85);
        assert!((f1 - 2.0 / (2.0 + 4.0 / 13.0)).abs() < 1e-12, "{f1}");
        let mut labels = vec![false; 13];
        labels.extend([true; 4]);
        let mut scores = normals.clone();
        scores.extend([2.0, 3.0, 0.85, 1.5]);
        assert_eq!(
            crate::eval::best_f1_threshold(&labels, &scores)
                .unwrap()
                .tau,
            1.5
        );
        assert!(worst_family_f1_threshold(&[], &fams).is_none());
        assert!(worst_family_f1_threshold(&normals, &[vec![]]).is_none());
    }
}
