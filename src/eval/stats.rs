//! Summaries over seeds and the Wilcoxon signed-rank test between paired samples.

use serde::Serialize;

use super::EvalError;

/// Mean and standard deviation of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanStd {
    /// Arithmetic mean.
    pub mean: f64,
    /// **Population** standard deviation (ddof 0): `sqrt(mean((x − mean)²))`, numpy's
    /// `np.std` default, which the reference protocol uses for "mean ± std over seeds".
    pub std: f64,
    /// Number of values.
    pub n: usize,
}

/// Mean ± population std (ddof 0) of `values` (e.g. one metric over seeds). One value gives
/// std 0. The values must be finite and there must be at least one.
pub fn mean_std(values: &[f64]) -> Result<MeanStd, EvalError> {
    if values.is_empty() {
        return Err(EvalError::Empty {
            what: "the list of values",
        });
    }
    check_finite("value", values)?;
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    Ok(MeanStd {
        mean,
        std: var.sqrt(),
        n: values.len(),
    })
}

/// How the p-value of [`wilcoxon`] was computed (scipy 1.17's `method='auto'` choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// The exact null distribution of the signed-rank statistic (n ≤ 50, no ties, no zeros).
    Exact,
    /// All 2ⁿ sign flips of the differences enumerated (n ≤ 13 with ties or zeros); scipy's
    /// `PermutationMethod()`, which is exhaustive, hence deterministic, for n ≤ 13.
    Permutation,
    /// Normal approximation with tie correction and no continuity correction.
    Asymptotic,
}

/// The result of [`wilcoxon`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Wilcoxon {
    /// `min(R⁺, R⁻)`: the smaller of the rank sums of positive and negative differences.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// How the p-value was computed.
    pub method: WilcoxonMethod,
    /// Number of non-zero differences (the pairs that enter the ranks).
    pub n_nonzero: usize,
    /// The z statistic `(R⁺ − n(n+1)/4) / se` (also given when the p-value is not asymptotic).
    pub z: f64,
}

/// Wilcoxon signed-rank test of `x` against `y` (paired: e.g. two methods' per-family AUCs),
/// matching `scipy.stats.wilcoxon(x, y)` with its defaults in scipy 1.17: two-sided,
/// `zero_method='wilcox'`, `correction=False`, `method='auto'`.
///
/// The differences `d = x − y` that are exactly 0 are dropped; the rest are ranked by `|d|`
/// with ties averaged; `R⁺`/`R⁻` are the rank sums of positive/negative differences. The
/// statistic is `min(R⁺, R⁻)`. scipy 1.17's `'auto'` rule, with `n` = number of pairs
/// *including* zero differences:
/// - `n > 50`: normal approximation;
/// - `n ≤ 50` with no ties among `|d|` and no zeros: the exact distribution,
///   `p = min(1, 2·min(P(T ≥ R⁺), P(T ≤ R⁺)))`;
/// - `n ≤ 13` with ties or zeros: exhaustive sign-flip permutation of the non-zero differences,
///   same formula over the enumerated null;
/// - `14 ≤ n ≤ 50` with ties or zeros: normal approximation.
///
/// The normal approximation uses `z = (R⁺ − m(m+1)/4) / sqrt((m(m+1)(2m+1) − Σ(t³−t)/2)/24)`
/// (`m` non-zero differences, `t` the sizes of tie groups) and `p = 2·Φ(−|z|)`.
pub fn wilcoxon(x: &[f64], y: &[f64]) -> Result<Wilcoxon, EvalError> {
    if x.len() != y.len() {
        return Err(EvalError::LengthMismatch {
            left_name: "x",
            left: x.len(),
            right_name: "y",
            right: y.len(),
        });
    }
    if x.is_empty() {
        return Err(EvalError::Empty {
            what: "the paired sample",
        });
    }
    check_finite("x", x)?;
    check_finite("y", y)?;
    let n_total = x.len();
    let d: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(a, b)| a - b)
        .filter(|&v| v != 0.0)
        .collect();
    let m = d.len();
    if m == 0 {
        return Err(EvalError::AllZeroDifferences { n: n_total });
    }
    // Average ranks of |d|, kept doubled so that they are integers.
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| d[a].abs().total_cmp(&d[b].abs()));
    let mut rank2 = vec![0u64; m];
    let mut tie_sum = 0.0; // Σ (t³ − t)
    let mut has_ties = false;
    let mut start = 0;
    while start < m {
        let mut end = start + 1;
        while end < m && d[order[end]].abs() == d[order[start]].abs() {
            end += 1;
        }
        let t = (end - start) as u64;
        // ranks start+1 ..= end, average (start + 1 + end) / 2, doubled:
        let r2 = (start + 1 + end) as u64;
        for &i in &order[start..end] {
            rank2[i] = r2;
        }
        if t > 1 {
            has_ties = true;
            let tf = t as f64;
            tie_sum += tf * tf * tf - tf;
        }
        start = end;
    }
    let r_plus2: u64 = (0..m).filter(|&i| d[i] > 0.0).map(|i| rank2[i]).sum();
    let r_minus2: u64 = (0..m).filter(|&i| d[i] < 0.0).map(|i| rank2[i]).sum();
    let r_plus = r_plus2 as f64 / 2.0;
    let mf = m as f64;
    let mn = mf * (mf + 1.0) * 0.25;
    let se = ((mf * (mf + 1.0) * (2.0 * mf + 1.0) - tie_sum / 2.0) / 24.0).sqrt();
    let z = (r_plus - mn) / se;
    let has_zeros = m < n_total;
    let method = if n_total > 50 {
        WilcoxonMethod::Asymptotic
    } else if !has_ties && !has_zeros {
        WilcoxonMethod::Exact
    } else if n_total <= 13 {
        WilcoxonMethod::Permutation
    } else {
        WilcoxonMethod::Asymptotic
    };
    let p_value = match method {
        WilcoxonMethod::Asymptotic => erfc(z.abs() / std::f64::consts::SQRT_2),
        WilcoxonMethod::Exact | WilcoxonMethod::Permutation => {
            // Null: each non-zero difference positive or negative with probability ½, so R⁺
            // is a sum over a uniformly random subset of the (doubled) ranks.
            let total: u64 = rank2.iter().sum();
            let mut ways = vec![0u64; total as usize + 1];
            ways[0] = 1;
            let mut reach = 0usize;
            for &r in &rank2 {
                let r = r as usize;
                for s in (0..=reach).rev() {
                    ways[s + r] += ways[s];
                }
                reach += r;
            }
            let all = 2f64.powi(m as i32);
            let at = r_plus2 as usize;
            let le: u64 = ways[..=at].iter().sum();
            let ge: u64 = ways[at..].iter().sum();
            (2.0 * (le.min(ge) as f64 / all)).min(1.0)
        }
    };
    Ok(Wilcoxon {
        statistic: r_plus.min(r_minus2 as f64 / 2.0),
        p_value,
        method,
        n_nonzero: m,
        z,
    })
}

fn check_finite(what: &'static str, values: &[f64]) -> Result<(), EvalError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// The complementary error function for `x ≥ 0` (relative error ≈ 1e-14 and better, also far
/// in the tail, which the normal approximation's tiny p-values need).
///
/// `x < 1.5`: `1 − erf(x)` with erf from the series `2/√π · e^{−x²} Σ 2ⁿ x^{2n+1} / (2n+1)!!`,
/// whose terms are all positive. `x ≥ 1.5`: Laplace's continued fraction
/// `e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`, evaluated backwards.
pub(crate) fn erfc(x: f64) -> f64 {
    const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.5 {
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        let mut k = 0.0;
        while term > sum * 1e-17 {
            k += 1.0;
            term *= 2.0 * x2 / (2.0 * k + 1.0);
            sum += term;
        }
        1.0 - 2.0 * FRAC_1_SQRT_PI * (-x2).exp() * sum
    } else {
        let mut f = x;
        for k in (1..=200).rev() {
            f = x + (k as f64 / 2.0) / f;
        }
        FRAC_1_SQRT_PI * (-x * x).exp() / f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_python_math_erfc() {
        // python3 -c "import math; print([repr(math.erfc(x)) for x in
        //   (0.0, 0.1, 0.5, 1.0, 1.49, 1.5, 2.0, 2.9, 3.0, 3.5, 5.0, 8.0, 12.0, 20.0, 26.0)])"
        let want = [
            (0.0, 1.0),
            (0.1, 0.8875370839817152),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (1.49, 0.03510213515679579),
            (1.5, 0.033894853524689274),
            (2.0, 0.004677734981047265),
            (2.9, 4.109787809945886e-05),
            (3.0, 2.2090496998585438e-05),
            (3.5, 7.430983723414128e-07),
            (5.0, 1.5374597944280351e-12),
            (8.0, 1.1224297172982928e-29),
            (12.0, 1.3562611692059042e-64),
            (20.0, 5.3958656116079005e-176),
            (26.0, 5.663192408856143e-296),
        ];
        for (x, e) in want {
            let g = erfc(x);
            assert!((g - e).abs() <= 1e-14 * e, "erfc({x}) = {g:e}, want {e:e}");
        }
        assert!((erfc(-1.0) - (2.0 - 0.15729920705028513)).abs() < 1e-15);
    }

    #[test]
    fn mean_std_is_population_std() {
        let m = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m.mean, 2.5);
        assert!((m.std - 1.25f64.sqrt()).abs() < 1e-15);
        assert_eq!(mean_std(&[0.7]).unwrap().std, 0.0);
        assert!(matches!(mean_std(&[]), Err(EvalError::Empty { .. })));
        assert!(matches!(
            mean_std(&[1.0, f64::NAN]),
            Err(EvalError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn wilcoxon_rejects_bad_input() {
        assert!(matches!(
            wilcoxon(&[1.0], &[1.0, 2.0]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(wilcoxon(&[], &[]), Err(EvalError::Empty { .. })));
        assert!(matches!(
            wilcoxon(&[1.0, 2.0], &[1.0, 2.0]),
            Err(EvalError::AllZeroDifferences { n: 2 })
        ));
        assert!(matches!(
            wilcoxon(&[1.0, f64::NAN], &[0.0, 0.0]),
            Err(EvalError::NonFinite {
                what: "x",
                index: 1,
                ..
            })
        ));
    }
}
