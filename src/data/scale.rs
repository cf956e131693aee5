//! Normalisers fitted on any subset of rows and applied to any rows, matching scikit-learn's
//! `StandardScaler`, `MinMaxScaler` and `RobustScaler(quantile_range=(low, high))` (checked
//! against scikit-learn in `tests/scalers.rs`), and a median imputer. Statistics are computed
//! in `f64`; NaN cells are ignored when fitting and stay NaN when applied.

use super::error::{DataError, Result};
use serde::{Deserialize, Serialize};

/// Which normaliser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum ScalerKind {
    /// Leave values as they are.
    None,
    /// `(x − mean) / std` (population std), like `StandardScaler`.
    ZScore,
    /// `(x − min) / (max − min)`, like `MinMaxScaler`.
    MinMax,
    /// `(x − median) / (q_high − q_low)`, like `RobustScaler(quantile_range=(low, high))`;
    /// quantiles by linear interpolation (numpy's default).
    Robust { low: f64, high: f64 },
    /// The reference protocol's choice: `Robust { low: 5, high: 95 }`.
    #[default]
    Robust595,
}

/// A fitted normaliser: `x' = (x − centre) / scale`, per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: ScalerKind,
    pub centre: Vec<f64>,
    pub scale: Vec<f64>,
}

/// scikit-learn's `_handle_zeros_in_scale`: scales below `10·eps` become 1.
fn fix_zero(s: f64) -> f64 {
    if s < 10.0 * f64::EPSILON {
        1.0
    } else {
        s
    }
}

/// numpy's `quantile(.., method='linear')` of sorted values, `p` in `[0, 1]`.
pub fn quantile_sorted(v: &[f64], p: f64) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let w = h - lo as f64;
    v[lo] + (v[hi] - v[lo]) * w
}

impl Scaler {
    /// Fits on the given rows of a row-major `features` buffer with `d` columns.
    pub fn fit(kind: ScalerKind, features: &[f32], d: usize, rows: &[usize]) -> Result<Scaler> {
        if rows.is_empty() {
            return Err(DataError::Scaler("cannot fit on zero rows".into()));
        }
        if let ScalerKind::Robust { low, high } = kind {
            if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                return Err(DataError::Scaler(format!(
                    "robust quantile range ({low}, {high}) must satisfy 0 ≤ low < high ≤ 100"
                )));
            }
        }
        let mut centre = vec![0.0; d];
        let mut scale = vec![1.0; d];
        let mut col: Vec<f64> = Vec::with_capacity(rows.len());
        for j in 0..d {
            col.clear();
            col.extend(
                rows.iter()
                    .map(|&r| features[r * d + j] as f64)
                    .filter(|x| !x.is_nan()),
            );
            if col.is_empty() {
                continue;
            }
            let (c, s) = match kind {
                ScalerKind::None => (0.0, 1.0),
                ScalerKind::ZScore => {
                    let n = col.len() as f64;
                    let mean = col.iter().sum::<f64>() / n;
                    let var = col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                    (mean, fix_zero(var.sqrt()))
                }
                ScalerKind::MinMax => {
                    let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (lo, fix_zero(hi - lo))
                }
                ScalerKind::Robust { .. } | ScalerKind::Robust595 => {
                    let (low, high) = match kind {
                        ScalerKind::Robust { low, high } => (low, high),
                        _ => (5.0, 95.0),
                    };
                    col.sort_unstable_by(f64::total_cmp);
                    let med = quantile_sorted(&col, 0.5);
                    let s =
                        quantile_sorted(&col, high / 100.0) - quantile_sorted(&col, low / 100.0);
                    (med, fix_zero(s))
                }
            };
            centre[j] = c;
            scale[j] = s;
        }
        Ok(Scaler {
            kind,
            centre,
            scale,
        })
    }

    /// Scales the given rows into a new row-major buffer (computed in `f64`, stored as `f32`).
    pub fn transform(&self, features: &[f32], rows: &[usize]) -> Vec<f32> {
        let d = self.centre.len();
        let mut out = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            let row = &features[r * d..(r + 1) * d];
            out.extend(
                row.iter()
                    .zip(self.centre.iter().zip(&self.scale))
                    .map(|(&x, (&c, &s))| ((x as f64 - c) / s) as f32),
            );
        }
        out
    }

    /// Scales a row-major buffer in place.
    pub fn transform_in_place(&self, data: &mut [f32]) {
        let d = self.centre.len();
        for row in data.chunks_exact_mut(d) {
            for ((x, &c), &s) in row.iter_mut().zip(&self.centre).zip(&self.scale) {
                *x = ((*x as f64 - c) / s) as f32;
            }
        }
    }
}

/// Fills missing cells with the median of the rows it was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imputer {
    pub median: Vec<f64>,
}

impl Imputer {
    /// Medians per column over the given rows, ignoring NaN (0 for an all-NaN column).
    pub fn fit(features: &[f32], d: usize, rows: &[usize]) -> Imputer {
        let mut median = vec![0.0; d];
        let mut col: Vec<f64> = Vec::with_capacity(rows.len());
        for (j, m) in median.iter_mut().enumerate() {
            col.clear();
            col.extend(
                rows.iter()
                    .map(|&r| features[r * d + j] as f64)
                    .filter(|x| !x.is_nan()),
            );
            if !col.is_empty() {
                col.sort_unstable_by(f64::total_cmp);
                *m = quantile_sorted(&col, 0.5);
            }
        }
        Imputer { median }
    }

    /// Replaces NaN cells of a row-major buffer; returns how many were filled.
    pub fn fill(&self, data: &mut [f32]) -> usize {
        let d = self.median.len();
        let mut filled = 0;
        for row in data.chunks_exact_mut(d) {
            for (x, &m) in row.iter_mut().zip(&self.median) {
                if x.is_nan() {
                    *x = m as f32;
                    filled += 1;
                }
            }
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_linear_quantiles() {
        // numpy.quantile([1, 2, 3, 4], [0.05, 0.5, 0.95]) = [1.15, 2.5, 3.85]
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile_sorted(&v, 0.05) - 1.15).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.95) - 3.85).abs() < 1e-12);
    }

    #[test]
    fn bad_quantile_range_is_an_error() {
        let e = Scaler::fit(
            ScalerKind::Robust {
                low: 90.0,
                high: 10.0,
            },
            &[1.0],
            1,
            &[0],
        );
        assert!(e.is_err());
        assert!(Scaler::fit(ScalerKind::ZScore, &[1.0], 1, &[]).is_err());
    }
}
