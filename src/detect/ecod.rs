//! ECOD (Li et al., TKDE 2022), the reference's **inductive** variant (`InductiveECOD` in
//! `refbench/classical.py`, the `ecod` baseline): the empirical CDFs come from the training rows
//! only, so a row's score does not depend on the batch it is scored with (PyOD's `ECOD` refits
//! the ECDFs on train ∪ scored rows).
//!
//! Per feature j, with the n training values: F_L(x) = (#{train ≤ x} + 1)/(n + 1),
//! F_R(x) = (#{train ≥ x} + 1)/(n + 1), U_l = −ln F_L, U_r = −ln F_R, and with s_j the sign of
//! the training column's skewness (scipy `skew`, biased; NaN, i.e. a constant column, → 0)
//! U_skew = U_l·(−sign(s_j − 1)) + U_r·sign(s_j + 1), i.e. U_r for s = 1, U_l for s = −1 and
//! U_l + U_r for s = 0. Score = Σ_j max(U_l, U_r, U_skew) (higher = more anomalous), in f64.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::FitError;

/// ECOD settings: the method has no hyper-parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcodParams {}

impl EcodParams {
    /// Always `Ok`: there is nothing to choose.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// A fitted inductive ECOD: each training column as its distinct values with cumulative
/// counts (the sorted column, run-length coded), and the columns' skewness signs. Loading
/// checks the structure, so a damaged file is a deserialisation error, not a panic later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "EcodFile")]
pub struct Ecod {
    /// Number of training rows.
    n: usize,
    /// Number of features.
    d: usize,
    /// Feature j's distinct training values, ascending, at `values[start[j]..start[j + 1]]`.
    values: Vec<f32>,
    /// `le[k]` = #{training values of that feature ≤ `values[k]`}.
    le: Vec<u32>,
    /// Where each feature's values begin (d + 1 entries).
    start: Vec<usize>,
    /// Sign (−1, 0, +1) of each training column's skewness.
    skew_sign: Vec<i8>,
}

/// [`Ecod`] as read from a file, before its checks.
#[derive(Deserialize)]
struct EcodFile {
    n: usize,
    d: usize,
    values: Vec<f32>,
    le: Vec<u32>,
    start: Vec<usize>,
    skew_sign: Vec<i8>,
}

impl TryFrom<EcodFile> for Ecod {
    type Error = String;

    fn try_from(f: EcodFile) -> Result<Self, String> {
        let bad = |m: &str| Err(format!("not a valid ECOD model: {m}"));
        if f.d == 0 || f.n == 0 || f.n > u32::MAX as usize {
            return bad("d and n must be at least 1");
        }
        if f.start.len() != f.d + 1 || f.start[0] != 0 || f.skew_sign.len() != f.d {
            return bad("per-feature lists of the wrong length");
        }
        if f.values.len() != f.le.len() || f.start[f.d] != f.values.len() {
            return bad("values and counts differ in length");
        }
        if f.skew_sign.iter().any(|s| !(-1..=1).contains(s)) {
            return bad("a skewness sign is not −1, 0 or 1");
        }
        for w in f.start.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a >= b || b > f.values.len() {
                return bad("a feature has no values");
            }
            let (v, c) = (&f.values[a..b], &f.le[a..b]);
            if v.iter().any(|x| x.is_nan())
                || v.windows(2).any(|p| p[0] >= p[1])
                || c.windows(2).any(|p| p[0] >= p[1])
                || c[0] == 0
                || c[c.len() - 1] as usize != f.n
            {
                return bad("a feature's values or counts are not increasing up to n");
            }
        }
        Ok(Ecod {
            n: f.n,
            d: f.d,
            values: f.values,
            le: f.le,
            start: f.start,
            skew_sign: f.skew_sign,
        })
    }
}

/// Sign of the biased sample skewness m₃/m₂^{3/2} of `col`, as `np.sign(scipy.stats.skew(col))`
/// with non-finite values mapped to 0: NaN when m₂ ≤ (ε·mean)² (scipy's "nearly constant" rule).
/// Sums run in row order in f64, as numpy reduces a C-ordered matrix along axis 0.
fn skew_sign(col: &[f64]) -> i8 {
    let n = col.len() as f64;
    let mean = col.iter().sum::<f64>() / n;
    let (mut s2, mut s3) = (0.0, 0.0);
    for &v in col {
        let dv = v - mean;
        s2 += dv * dv;
        s3 += dv * dv * dv;
    }
    let (m2, m3) = (s2 / n, s3 / n);
    if m2 <= (f64::EPSILON * mean) * (f64::EPSILON * mean) {
        return 0;
    }
    let s = m3 / m2.powf(1.5);
    if !s.is_finite() || s == 0.0 {
        0
    } else if s > 0.0 {
        1
    } else {
        -1
    }
}

impl Ecod {
    /// Fits on `x` (row-major, `d` columns, finite values): sorts each column and takes its
    /// skewness sign. `progress(done, total)` is called per feature; a set `stop` flag ends the
    /// fit with [`FitError::Stopped`].
    pub fn fit(
        p: &EcodParams,
        x: &[f32],
        d: usize,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, FitError> {
        p.validate()
            .map_err(|(k, m)| FitError::Invalid(format!("{k}: {m}")))?;
        let n = super::check_training(x, d)?;
        let (mut values, mut le, mut start) = (Vec::new(), Vec::new(), vec![0]);
        let mut skew = Vec::with_capacity(d);
        let mut col64 = vec![0f64; n];
        let mut col = vec![0f32; n];
        for j in 0..d {
            if stop.load(Ordering::Relaxed) {
                return Err(FitError::Stopped);
            }
            for ((c64, c), row) in col64.iter_mut().zip(col.iter_mut()).zip(x.chunks_exact(d)) {
                *c = row[j];
                *c64 = row[j] as f64;
            }
            skew.push(skew_sign(&col64));
            // −0.0 and 0.0 are one value (they compare equal)
            col.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            for (k, &v) in col.iter().enumerate() {
                if k > 0 && v == col[k - 1] {
                    if let Some(last) = le.last_mut() {
                        *last += 1;
                    }
                } else {
                    values.push(v);
                    le.push(k as u32 + 1);
                }
            }
            start.push(values.len());
            progress(j + 1, d);
        }
        Ok(Ecod {
            n,
            d,
            values,
            le,
            start,
            skew_sign: skew,
        })
    }

    /// Number of features the model was fitted on.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Number of training rows.
    pub fn n_train(&self) -> usize {
        self.n
    }

    /// Skewness sign (−1, 0, +1) of each training column.
    pub fn skew_signs(&self) -> &[i8] {
        &self.skew_sign
    }

    /// Scores of the rows of `x` (row-major, [`Self::dim`] columns; a trailing partial row is
    /// ignored): higher = more anomalous. A row with a NaN scores NaN; ±∞ count as beyond every
    /// training value. Uses all available cores; the numbers do not depend on their count.
    pub fn score(&self, x: &[f32]) -> Vec<f64> {
        self.score_threads(
            x,
            crate::nn::frozen_threads(),
        )
    }

    /// [`Self::score`] on at most `threads` threads (0 or 1: the calling thread).
    pub fn score_threads(&self, x: &[f32], threads: usize) -> Vec<f64> {
        let d = self.d;
        let rows = x.len() / d.max(1);
        // Fixed blocks of rows, each scored feature by feature (one feature's values stay in
        // cache); a row's score depends on that row only.
        const BLOCK: usize = 512;
        let blocks = rows.div_ceil(BLOCK);
        let per_block = super::par_rows(blocks, threads, 1, &|b| {
            let r = b * BLOCK..((b + 1) * BLOCK).min(rows);
            self.score_block(&x[r.start * d..r.end * d])
        });
        per_block.into_iter().flatten().collect()
    }

    /// Scores of the rows of `x` (a block), computed feature-major.
    fn score_block(&self, x: &[f32]) -> Vec<f64> {
        let (n, d) = (self.n, self.d);
        let rows = x.len() / d;
        let n1 = (n + 1) as f64;
        // per[r·d + j] = max(U_l, U_r, U_skew) of row r, feature j
        let mut per = vec![0f64; rows * d];
        for j in 0..d {
            let (a, b) = (self.start[j], self.start[j + 1]);
            let (vals, cum) = (&self.values[a..b], &self.le[a..b]);
            let sign = self.skew_sign[j];
            for (row, out) in x.chunks_exact(d).zip(per.chunks_exact_mut(d)) {
                let v = row[j];
                let p = vals.partition_point(|&t| t < v);
                let lt = if p == 0 { 0 } else { cum[p - 1] as usize }; // #{train < x}
                let le = if p < vals.len() && vals[p] == v {
                    cum[p] as usize // #{train ≤ x}
                } else {
                    lt
                };
                let ge = n - lt; // #{train ≥ x}
                let ul = -(((le + 1) as f64) / n1).ln();
                let ur = -(((ge + 1) as f64) / n1).ln();
                let us = match sign {
                    1 => ur,
                    -1 => ul,
                    _ => ul + ur,
                };
                out[j] = ul.max(ur).max(us);
            }
        }
        x.chunks_exact(d)
            .zip(per.chunks_exact(d))
            .map(|(row, s)| {
                if row.iter().any(|v| v.is_nan()) {
                    f64::NAN
                } else {
                    super::pairwise_sum(s)
                }
            })
            .collect()
    }
}


impl super::MethodSpec for EcodParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "ECOD (inductive)",
            paper: "Li et al., ECOD: unsupervised outlier detection using empirical cumulative distribution functions (TKDE 2022); inductive as the reference's InductiveECOD (refbench/classical.py)",
            labels: super::Labels::NormalsOnly,
            summary: "Per feature, the tail probabilities of a row under the training rows' empirical CDFs (left, right, and the skew-chosen side); score Σ_j max(U_l, U_r, U_skew).",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        &[]
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        EcodParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "ecod".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let n = s.normals.max(2.0);
        let log_n = n.log2();
        Cost {
            // each column's distinct values and counts
            params: 2.0 * n * s.d,
            state_bytes: 8.0 * n * s.d,
            // one column being sorted
            step_bytes: 16.0 * n,
            phases: vec![
                Phase {
                    name: "sorting columns",
                    steps: s.d,
                    flops: 4.0 * n * log_n,
                    speed: SORT_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    // a binary search per value, both tails
                    flops: 4.0 * (s.checkpoint + s.scored()) * s.d * log_n,
                    speed: SORT_SPEED,
                },
            ],
            records: checkpoint_records(s) + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<Ecod>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

/// Speed of sorting and binary searches (see [`super::cost::Speed`]), fitted by
/// `heldout bench estimate`.
const SORT_SPEED: super::cost::Speed = super::cost::Speed::new(0.02, 20.0);

impl super::Fit for Ecod {
    type Params = EcodParams;
    fn fit(
        p: &EcodParams,
        data: &super::TrainView,
        _seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, super::DetectError> {
        let mut progress = super::step_progress(&mut *ctx.emit, "features");
        Ok(Ecod::fit(p, &data.normals, data.d, ctx.stop, &mut progress)?)
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, super::DetectError> {
        Ok(Ecod::score(self, x))
    }
    fn save(&self, path: &std::path::Path) -> Result<(), super::DetectError> {
        super::save_json(self, path)
    }
    const MODEL_EXTENSION: &'static str = "json";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(x: &[f32], d: usize) -> Ecod {
        Ecod::fit(
            &EcodParams::default(),
            x,
            d,
            &AtomicBool::new(false),
            &mut |_, _| {},
        )
        .unwrap()
    }

    #[test]
    fn five_rows_by_hand() {
        // feature 0: 1 2 3 4 10 (right-skewed, s = +1); feature 1: constant 7 (s = 0)
        let x = [1.0, 7.0, 2.0, 7.0, 3.0, 7.0, 4.0, 7.0, 10.0, 7.0];
        let m = fit(&x, 2);
        assert_eq!(m.skew_signs(), &[1, 0]);
        let l = |k: f64| -(k / 6.0).ln();
        // x = (3, 7): #≤3 = 3, #≥3 = 3 → U_l = U_r = l(4); feature 1: #≤7 = #≥7 = 5 → 0 + 0
        // x = (11, 8): #≤11 = 5, #≥11 = 0 → U_r = l(1) (s = +1 picks U_r); feature 1: #≤8 = 5,
        //   #≥8 = 0 → U_l = 0, U_r = l(1), U_skew = U_l + U_r = l(1)
        // x = (0, 6): #≤0 = 0 → U_l = l(1), U_r = l(6) = 0, U_skew = U_r = 0 → l(1); feature 1:
        //   #≤6 = 0, #≥6 = 5 → l(1)
        let s = m.score(&[3.0, 7.0, 11.0, 8.0, 0.0, 6.0]);
        let want = [l(4.0), l(1.0) + l(1.0), l(1.0) + l(1.0)];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{a} {b}");
        }
        // left-skewed column → U_l; ties count on both sides
        let m = fit(&[-10.0, 1.0, 2.0, 2.0, 3.0], 1);
        assert_eq!(m.skew_signs(), &[-1]);
        let s = m.score(&[2.0]);
        // #≤2 = 4, #≥2 = 3 → max(l(5), l(4), l(5)) = l(4)
        assert!((s[0] - l(4.0)).abs() < 1e-15);
    }

    #[test]
    fn skew_sign_follows_scipy() {
        assert_eq!(skew_sign(&[1.0, 2.0, 3.0]), 0); // symmetric: exactly 0
        assert_eq!(skew_sign(&[5.0; 4]), 0); // constant: NaN in scipy → 0
        assert_eq!(skew_sign(&[0.0, 0.0, 0.0, 1.0]), 1);
        assert_eq!(skew_sign(&[0.0, 1.0, 1.0, 1.0]), -1);
        // nearly constant relative to its mean: scipy returns NaN
        assert_eq!(skew_sign(&[1e10, 1e10, 1e10 + 1e-6]), 0);
    }

    #[test]
    fn pairwise_sum_matches_sequential_for_short_rows() {
        let v: Vec<f64> = (0..300).map(|k| (k as f64 * 0.37).sin()).collect();
        assert_eq!(crate::detect::pairwise_sum(&v[..5]), v[..5].iter().fold(0.0, |s, x| s + x));
        let seq: f64 = v.iter().sum();
        assert!((crate::detect::pairwise_sum(&v) - seq).abs() < 1e-12);
        assert_eq!(crate::detect::pairwise_sum(&[]), 0.0);
    }

    #[test]
    fn outlier_scores_highest_and_threads_do_not_matter() {
        let mut g = crate::rng::SplitMix64::new(1);
        let mut x: Vec<f32> = (0..3 * 2000).map(|_| g.next_normal() as f32).collect();
        let m = fit(&x, 3);
        x.extend([9.0, -9.0, 9.0]);
        let s1 = m.score_threads(&x, 1);
        let top = s1
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(top, 2000);
        assert!(s1 == m.score_threads(&x, 3));
        let back: Ecod = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert!(back.score_threads(&x, 2) == s1);
        // a damaged file does not load
        let mut v: serde_json::Value = serde_json::to_value(&m).unwrap();
        v["start"][1] = serde_json::json!(1_000_000);
        let e = serde_json::from_value::<Ecod>(v).unwrap_err().to_string();
        assert!(e.contains("not a valid ECOD model"), "{e}");
        // NaN rows score NaN, infinities are beyond every training value
        let s = m.score(&[f32::NAN, 0.0, 0.0, f32::INFINITY, 0.0, 0.0]);
        assert!(s[0].is_nan() && s[1].is_finite());
    }

    #[test]
    fn invalid_data_and_stop() {
        let stop = AtomicBool::new(false);
        let p = EcodParams::default();
        let bad = |x: &[f32], d| match Ecod::fit(&p, x, d, &stop, &mut |_, _| {}) {
            Err(FitError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad(&[], 1).contains("no training rows"));
        assert!(bad(&[1.0], 0).contains("d = 0"));
        assert!(bad(&[1.0, 2.0, 3.0], 2).contains("multiple"));
        assert!(bad(&[1.0, f32::NEG_INFINITY], 1).contains("row 1 feature 0"));
        assert!(serde_json::from_str::<EcodParams>(r#"{"k": 1}"#).is_err());
        assert!(serde_json::from_str::<EcodParams>("{}").is_ok());
        let stop = AtomicBool::new(true);
        let r = Ecod::fit(&p, &[1.0, 2.0], 2, &stop, &mut |_, _| {});
        assert_eq!(r.unwrap_err(), FitError::Stopped);
    }
}
