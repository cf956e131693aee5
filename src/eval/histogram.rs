//! Fixed-edge histograms with `numpy.histogram` semantics.

use super::EvalError;

/// Counts of `values` in the bins given by `edges`, as `numpy.histogram(values, bins=edges)`.
///
/// Bin `i` is `[edges[i], edges[i+1])`, except the last, which is closed:
/// `[edges[n−1], edges[n]]`. Values outside `[edges[0], edges[n]]` are not counted. `edges`
/// must hold at least two finite, strictly increasing values; `values` must be finite.
pub fn histogram(values: &[f64], edges: &[f64]) -> Result<Vec<u64>, EvalError> {
    check_edges(edges)?;
    let (first, last) = (edges[0], edges[edges.len() - 1]);
    let n_bins = edges.len() - 1;
    let mut counts = vec![0u64; n_bins];
    for (index, &x) in values.iter().enumerate() {
        if !x.is_finite() {
            return Err(EvalError::NonFinite {
                what: "value",
                index,
                value: x,
            });
        }
        if x < first || x > last {
            continue;
        }
        let bin = if x == last {
            n_bins - 1
        } else {
            // number of edges ≤ x, minus one: x ∈ [edges[bin], edges[bin + 1])
            edges.partition_point(|&e| e <= x) - 1
        };
        counts[bin] += 1;
    }
    Ok(counts)
}

/// `n` equal bins over `[lo, hi]`: the `n + 1` edges `numpy.linspace(lo, hi, n + 1)` gives
/// (`lo + i·(hi − lo)/n`, the last set to exactly `hi`), which is what
/// `numpy.histogram(values, bins=n, range=(lo, hi))` uses. Needs `n ≥ 1` and finite
/// `lo < hi`.
pub fn equal_bins(lo: f64, hi: f64, n: usize) -> Result<Vec<f64>, EvalError> {
    if n == 0 {
        return Err(EvalError::BadEdges {
            reason: "the number of bins must be at least 1".into(),
        });
    }
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(EvalError::BadEdges {
            reason: format!("the range [{lo}, {hi}] must be finite with lo < hi"),
        });
    }
    let step = (hi - lo) / n as f64;
    let mut edges: Vec<f64> = (0..=n).map(|i| i as f64 * step + lo).collect();
    edges[n] = hi;
    Ok(edges)
}

fn check_edges(edges: &[f64]) -> Result<(), EvalError> {
    if edges.len() < 2 {
        return Err(EvalError::BadEdges {
            reason: format!("{} edge(s) given, at least 2 are needed", edges.len()),
        });
    }
    for (index, &e) in edges.iter().enumerate() {
        if !e.is_finite() {
            return Err(EvalError::NonFinite {
                what: "edge",
                index,
                value: e,
            });
        }
    }
    if let Some(i) = edges.windows(2).position(|w| w[0] >= w[1]) {
        return Err(EvalError::BadEdges {
            reason: format!(
                "edges must increase strictly, but edge {} ({}) ≥ edge {} ({})",
                i,
                edges[i],
                i + 1,
                edges[i + 1]
            ),
        });
    }
    Ok(())
}
