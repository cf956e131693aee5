//! PCGrad (Yu et al. 2020), exactly as spec §1.10.1: for every task i, walk the other tasks in a
//! fresh random order and, when `⟨g_i^PC, g_j⟩ < 0`, project `g_i^PC` onto the normal plane of
//! the *original* `g_j` (denominator `‖g_j‖²`); the result is the *sum* of the projected
//! gradients.

use crate::rng::SplitMix64;

/// What happened in one PCGrad call: the cosine between every pair of original task gradients
/// and which (i, j) projections were made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PcgradStats {
    /// (i, j, cosine) for i < j.
    pub cosines: Vec<(usize, usize, f64)>,
    /// (i, j): g_i was projected against g_j.
    pub projected: Vec<(usize, usize)>,
}

/// Σ aᵢbᵢ in f64 with 8 independent accumulators (one sequential chain of f64 additions over
/// the ~130,000 shared parameters took a few percent of an outer step; this order vectorises).
/// `a` is the f32 gradient or its f64 projection.
#[inline(always)]
fn dot<A: Copy + Into<f64>>(a: &[A], b: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (ia, ib) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ia.remainder(), ib.remainder());
    for (x, y) in ia.zip(ib) {
        for k in 0..8 {
            acc[k] += x[k].into() * y[k] as f64;
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(&x, &y)| x.into() * y as f64).sum();
    acc.iter().sum::<f64>() + tail
}

pub fn pcgrad(grads: &[Vec<f32>], rng: &mut SplitMix64) -> (Vec<f32>, PcgradStats) {
    let n = grads.len();
    let orders: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            rng.shuffle(&mut order);
            order
        })
        .collect();
    pcgrad_ordered(grads, &orders)
}

/// [`pcgrad`] with the order of the other tasks given for every task.
///
/// Tasks are worked on in parallel (`HELDOUT_THREADS`), each one's projections in its own order
/// as in the sequential algorithm; the projected gradients are summed in task order, so the
/// result and the statistics do not depend on the thread count.
pub fn pcgrad_ordered(grads: &[Vec<f32>], orders: &[Vec<usize>]) -> (Vec<f32>, PcgradStats) {
    let n = grads.len();
    let len = grads.first().map_or(0, |g| g.len());
    let threads = super::frozen::threads();
    let norms2: Vec<f64> =
        super::frozen::par_map(threads, n, |i| dot_dispatch(&grads[i], &grads[i]));
    let per_task = super::frozen::par_map(threads, n, |i| project(grads, &norms2, &orders[i], i));
    let mut stats = PcgradStats::default();
    let mut total = vec![0f64; len];
    for (cosines, g, projected) in per_task {
        stats.cosines.extend(cosines);
        stats.projected.extend(projected);
        for (t, x) in total.iter_mut().zip(&g) {
            *t += x;
        }
    }
    (total.into_iter().map(|x| x as f32).collect(), stats)
}

/// What task `i` contributes: its cosines with the later tasks, its projected gradient, and
/// the projections made.
type TaskPart = (Vec<(usize, usize, f64)>, Vec<f64>, Vec<(usize, usize)>);

/// [`project_body`] in a copy compiled for AVX-512 where the CPU has it (same numbers: Rust
/// fuses no multiply-adds on its own, so only the vector width changes).
fn project(grads: &[Vec<f32>], norms2: &[f64], order: &[usize], i: usize) -> TaskPart {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn avx512(grads: &[Vec<f32>], norms2: &[f64], order: &[usize], i: usize) -> TaskPart {
            project_body(grads, norms2, order, i)
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features `avx512` is compiled for (checked above).
            return unsafe { avx512(grads, norms2, order, i) };
        }
    }
    project_body(grads, norms2, order, i)
}

#[inline(always)]
fn project_body(grads: &[Vec<f32>], norms2: &[f64], order: &[usize], i: usize) -> TaskPart {
    // plain loops: an iterator's `fold`/`collect` may stay out of line, compiled without the
    // caller's target features
    let n = grads.len();
    let mut cosines = Vec::with_capacity(n);
    for j in i + 1..n {
        let c = dot(&grads[i], &grads[j]) / (norms2[i].sqrt() * norms2[j].sqrt() + 1e-20);
        cosines.push((i, j, c));
    }
    let mut g = vec![0f64; grads[i].len()];
    for (x, &y) in g.iter_mut().zip(&grads[i]) {
        *x = y as f64;
    }
    let mut projected = Vec::new();
    for &j in order {
        let gj = &grads[j];
        let d = dot(&g, gj);
        if d < 0.0 {
            let k = d / (norms2[j] + 1e-12);
            for (x, &y) in g.iter_mut().zip(gj) {
                *x -= k * y as f64;
            }
            projected.push((i, j));
        }
    }
    (cosines, g, projected)
}

fn dot_dispatch(a: &[f32], b: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn avx512(a: &[f32], b: &[f32]) -> f64 {
            dot(a, b)
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features `avx512` is compiled for (checked above).
            return unsafe { avx512(a, b) };
        }
    }
    dot(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_gradients_pass_unchanged() {
        let g = vec![vec![1.0, 2.0, 0.0], vec![2.0, 1.0, 1.0]];
        let (sum, st) = pcgrad(&g, &mut SplitMix64::new(0));
        assert_eq!(sum, vec![3.0, 3.0, 1.0]);
        assert!(st.projected.is_empty());
    }

    #[test]
    fn two_conflicting_tasks_by_hand() {
        // g1 = (1, 0), g2 = (−1, 1): ⟨g1, g2⟩ = −1.
        // g1' = g1 − (−1/2)·g2 = (0.5, 0.5);  g2' = g2 − (−1/1)·g1 = (0, 1);  sum = (0.5, 1.5).
        let g = vec![vec![1.0, 0.0], vec![-1.0, 1.0]];
        let (sum, st) = pcgrad(&g, &mut SplitMix64::new(3));
        assert!(
            (sum[0] - 0.5).abs() < 1e-6 && (sum[1] - 1.5).abs() < 1e-6,
            "{sum:?}"
        );
        assert_eq!(st.projected.len(), 2);
        assert!((st.cosines[0].2 + 1.0 / 2f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn three_tasks_hand_computed() {
        // g0 = (1, 0, 0), g1 = (−1, 1, 0), g2 = (0, −1, 1); orders 0:[1,2], 1:[2,0], 2:[0,1].
        // g0: ⟨g0,g1⟩ = −1 → g0 − (−1/2)·g1 = (0.5, 0.5, 0); ⟨·,g2⟩ = −0.5 → + (0.5/2)·g2
        //     = (0.5, 0.25, 0.25).
        // g1: ⟨g1,g2⟩ = −1 → g1 + ½·g2 = (−1, 0.5, 0.5); ⟨·,g0⟩ = −1 → + 1·g0 = (0, 0.5, 0.5).
        // g2: ⟨g2,g0⟩ = 0 → unchanged; ⟨g2,g1⟩ = −1 → + ½·g1 = (−0.5, −0.5, 1).
        // sum = (0, 0.25, 1.75).
        let g = vec![
            vec![1.0, 0.0, 0.0],
            vec![-1.0, 1.0, 0.0],
            vec![0.0, -1.0, 1.0],
        ];
        let orders = vec![vec![1, 2], vec![2, 0], vec![0, 1]];
        let (sum, st) = pcgrad_ordered(&g, &orders);
        for (a, b) in sum.iter().zip([0.0, 0.25, 1.75]) {
            assert!((a - b).abs() < 1e-6, "{sum:?}");
        }
        assert_eq!(st.projected, vec![(0, 1), (0, 2), (1, 2), (1, 0), (2, 1)]);
    }

    #[test]
    fn no_projected_gradient_conflicts_with_the_task_it_was_projected_on_last() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..200 {
            let n = 2 + (rng.below(4) as usize);
            let g: Vec<Vec<f32>> = (0..n)
                .map(|_| (0..6).map(|_| rng.next_normal() as f32).collect())
                .collect();
            let orders: Vec<Vec<usize>> = (0..n)
                .map(|i| {
                    let mut o: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                    rng.shuffle(&mut o);
                    o
                })
                .collect();
            let (_, st) = pcgrad_ordered(&g, &orders);
            // replay task i alone and check after each projection
            for i in 0..n {
                let mut gi: Vec<f64> = g[i].iter().map(|&x| x as f64).collect();
                for &j in &orders[i] {
                    let d: f64 = gi.iter().zip(&g[j]).map(|(a, &b)| a * b as f64).sum();
                    if d < 0.0 {
                        let nj: f64 = g[j].iter().map(|&b| (b as f64).powi(2)).sum();
                        for (a, &b) in gi.iter_mut().zip(&g[j]) {
                            *a -= d / (nj + 1e-12) * b as f64;
                        }
                        let after: f64 = gi.iter().zip(&g[j]).map(|(a, &b)| a * b as f64).sum();
                        assert!(after > -1e-9, "conflict left after projection: {after}");
                    }
                }
            }
            // with two tasks no conflicting pair is left at all
            if n == 2 {
                let (sum, _) = pcgrad_ordered(&g, &orders);
                assert!(sum.iter().all(|x| x.is_finite()));
                assert!(st.projected.len() == 2 || st.projected.is_empty());
            }
        }
    }
}
