//! What one unit of a method costs before it runs: the numbers it learns, the memory of its
//! model and of one training step, and the work of each phase (steps × floating-point operations
//! per step). Every method's [`super::MethodSpec::cost`] fills a [`Cost`] from the unit's
//! [`UnitSizes`]; `experiment::estimate` turns it into bytes and seconds on this machine.
//!
//! All sizes are `f64`: the products of user-given widths, batches and epochs can exceed any
//! integer type (an experiment file may ask for 2^64 − 1 of something), and an estimate only needs
//! three significant digits. Nothing here allocates in proportion to a user-given size.

use crate::split::EpisodeSpec;
use serde::Serialize;

/// Bytes of one `f32`.
pub const F32: f64 = 4.0;

/// The rows one unit (one method, seed and rotation) trains and scores on: the largest of the
/// experiment's rotations (the plan's first seed), so that the estimate is an upper bound per
/// unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitSizes {
    /// Feature columns.
    pub d: f64,
    /// Normal training rows.
    pub normals: f64,
    /// Few-shot rows of each seen family.
    pub few_shot: Vec<f64>,
    /// Every training row of the seen families (what an all-seen method trains on).
    pub seen_train: f64,
    /// Rows of the seen-family validation pool.
    pub val: f64,
    /// Rows scored at one checkpoint (the normals once, then each family's anomalies).
    pub checkpoint: f64,
    /// Rows of the test blocks.
    pub test: f64,
    /// Families whose pools are scored at a checkpoint (histograms and curves per family).
    pub families: f64,
    /// Held-out families of a rotation (ROC and PR curves at every checkpoint).
    pub held_out: f64,
    /// Histogram bins per family and checkpoint.
    pub bins: f64,
    pub episodes: EpisodeSpec,
    /// The first episodes' draws (at most [`DRAWS`]) of the largest rotation, as the sampler
    /// makes them: the families of each inner task, and the outer anomalies (Σ shots).
    pub draws: Vec<(Vec<usize>, usize)>,
}

/// Episodes drawn ahead for an estimate (their mean stands for the rest).
pub const DRAWS: usize = 1000;

impl UnitSizes {
    /// All few-shot rows.
    pub fn few_shot_total(&self) -> f64 {
        self.few_shot.iter().sum()
    }
    /// The largest seen family's few-shot rows.
    pub fn few_shot_max(&self) -> f64 {
        self.few_shot.iter().copied().fold(0.0, f64::max)
    }
    /// Mean over the drawn episodes of `f(inner task sizes, outer anomalies)`; without draws (no
    /// seen family has few-shot rows) an episode with no inner task and no outer anomaly, as the
    /// sampler then makes them.
    pub fn mean_draw(&self, f: impl Fn(&[usize], usize) -> f64) -> f64 {
        if self.draws.is_empty() {
            return f(&[], 0);
        }
        self.draws.iter().map(|(t, o)| f(t, *o)).sum::<f64>() / self.draws.len() as f64
    }
    /// Rows the unit scores after training outside any checkpoint: the validation pool (τ*) and
    /// the test blocks.
    pub fn scored(&self) -> f64 {
        self.val + self.test
    }
}

/// One phase of a unit: `steps` steps of `flops` floating-point operations each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub steps: f64,
    /// Floating-point operations per step (a multiply-add counts 2).
    pub flops: f64,
    /// How fast this kind of work runs, as a fraction of the calibrated matrix-multiply rate,
    /// and its fixed cost per step in microseconds on the machine the constants were measured on
    /// (see [`Speed`]).
    pub speed: Speed,
}

/// The speed constants of a kind of work, measured on the development machine (2-core AMD EPYC,
/// `bench/results/estimate-*.txt`): `efficiency` is the share of the calibrated matrix-multiply
/// rate this work reaches; `overhead_us` its fixed cost per step (launching, small tensors,
/// optimiser bookkeeping), scaled by the calibration on other machines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Speed {
    pub efficiency: f64,
    pub overhead_us: f64,
}

impl Speed {
    pub const fn new(efficiency: f64, overhead_us: f64) -> Self {
        Speed {
            efficiency,
            overhead_us,
        }
    }
}

/// What one unit of a method costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// Numbers the method learns (weights; tree nodes or support vectors for classical models).
    pub params: f64,
    /// Bytes held for the whole fit: weights, gradients and optimiser state, model structures.
    pub state_bytes: f64,
    /// Bytes of the largest step's working memory: activations kept for the backward pass,
    /// batches, kernel caches, sort buffers.
    pub step_bytes: f64,
    /// The work, in order.
    pub phases: Vec<Phase>,
    /// Rows of the run's files this unit writes (losses, checkpoints' histograms and curves …):
    /// the runner holds them until the unit ends.
    pub records: f64,
}

impl Cost {
    /// Peak bytes of the method itself during its fit (state + the largest step).
    pub fn peak_bytes(&self) -> f64 {
        self.state_bytes + self.step_bytes
    }
    /// All floating-point operations of the unit.
    pub fn flops(&self) -> f64 {
        self.phases.iter().map(|p| p.steps * p.flops).sum()
    }
}

/// Run-file rows of one checkpoint: per family a checkpoint row and two histograms, and for each
/// held-out family a ROC and a PR curve of at most 200 points each.
pub fn checkpoint_records(s: &UnitSizes) -> f64 {
    s.families * (1.0 + 2.0 * s.bins) + 400.0 * s.held_out.max(1.0)
}

/// Run-file rows every unit writes at its end besides its checkpoints: a score row per test row
/// and a metrics row per held-out family.
pub fn final_records(s: &UnitSizes) -> f64 {
    s.test + s.held_out
}

/// Layer sizes of a dense network: `(inputs, outputs)` per linear layer.
pub type Layers = Vec<(f64, f64)>;

/// Weights and biases of dense layers (`bias`: whether each layer has one).
pub fn dense_params(layers: &[(f64, f64)], bias: bool) -> f64 {
    layers
        .iter()
        .map(|&(i, o)| i * o + if bias { o } else { 0.0 })
        .sum()
}

/// Forward multiply-add operations of dense layers for `rows` rows (2 per multiply-add).
pub fn dense_forward_flops(layers: &[(f64, f64)], rows: f64) -> f64 {
    2.0 * rows * layers.iter().map(|&(i, o)| i * o).sum::<f64>()
}

/// A training step (forward, backward through activations and weights): about 3 forwards.
pub fn dense_train_flops(layers: &[(f64, f64)], rows: f64) -> f64 {
    3.0 * dense_forward_flops(layers, rows)
}

/// Activation bytes a training step keeps for its backward pass: `copies` tensors of every
/// layer's output width (pre-activation, activation, normalisation, dropout mask …) plus the
/// input batch.
pub fn dense_activation_bytes(layers: &[(f64, f64)], rows: f64, copies: f64) -> f64 {
    let widths: f64 = layers.iter().map(|&(_, o)| o).sum();
    let input = layers.first().map_or(0.0, |&(i, _)| i);
    F32 * rows * (copies * widths + input)
}

/// Weights, gradients and the two moments of Adam (or one of RMSprop, counted as Adam): 4 copies.
pub fn adam_state_bytes(params: f64) -> f64 {
    4.0 * F32 * params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_counts_by_hand() {
        // 3 → 4 → 1 with biases: 12 + 4 + 4 + 1 = 21
        let l = vec![(3.0, 4.0), (4.0, 1.0)];
        assert_eq!(dense_params(&l, true), 21.0);
        assert_eq!(dense_params(&l, false), 16.0);
        // 10 rows: 2·10·(12 + 4) = 320
        assert_eq!(dense_forward_flops(&l, 10.0), 320.0);
        assert_eq!(dense_train_flops(&l, 10.0), 960.0);
        // 10 rows × (2 copies × 5 widths + 3 inputs) × 4 bytes
        assert_eq!(dense_activation_bytes(&l, 10.0, 2.0), 520.0);
    }

    #[test]
    fn sizes_beyond_integers_stay_finite() {
        let w = u64::MAX as f64;
        let l = vec![(w, w), (w, w)];
        // 2 · (2^64)² ≈ 6.8e38 weights and ~4e58 operations: large, finite, no overflow panic
        assert!(dense_params(&l, true) > 6e38 && dense_params(&l, true).is_finite());
        assert!(dense_train_flops(&l, w) > 1e58 && dense_train_flops(&l, w).is_finite());
    }
}
