//! The multidirectional meta-learner (spec §1): encoder + head (+ decoder) trained in episodes —
//! an inner stage on normals, an outer stage that separates normals from few anomalies of
//! rotating families with ODIN-perturbed inputs, a learned temperature `T = exp(ρ)` and a margin
//! hinge, the task gradients combined by PCGrad — with pre / after-inner / after-outer
//! checkpoints and τ* chosen on the seen-family validation pool.
//!
//! Choices the spec leaves open follow the reference (`../shared/reference/README.md`):
//! normals of "family k" are draws from the shared normal pool; ODIN directions are computed in
//! the mode of the pass they serve (eval at checkpoints and test; in the outer stage the encoder's
//! last block is in train mode, drop-path active); a family is a PCGrad task only with ≥ 1 normal and ≥ 1 anomaly
//! in the (truncated) batch; the outer cosine schedule length is
//! `episodes × outer_epochs × ⌈outer_families·2·shots/outer_batch⌉`.

use super::{
    CheckpointPools, Ctx, DetectError, Detector, Event, FamilyScores, Stage, Threshold, TrainView,
};
use crate::data::FamilyId;
use crate::eval;
use serde::{Deserialize, Serialize};
use crate::nn::{
    bce_with_logit_targets, bce_with_logits, clip_grad_norm, cosine_lr, frozen_threads, par_map,
    pcgrad, sign_pm1, Adam, AdamConfig, Decoder, Encoder, FrozenNet, FrozenWorkspace, Head,
    InnerNet, Mode, OuterAct, OuterNet, Params, Track,
};
use crate::rng::SplitMix64;
use candle_core::{DType, Device, Tensor, TensorId, Var};
use std::collections::HashMap;

type R<T> = Result<T, DetectError>;

/// Inner-stage training data (spec §1.17 #1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InnerMode {
    /// The paper: normals only, BCE(ℓ₀, normal) + reconstruction.
    #[default]
    NormalsOnly,
    /// The authors' code: supervised BCE on anomalies and normals of the inner families.
    SupervisedInnerFamilies,
}

/// The threshold kept at the end (spec §1.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TauPolicy {
    /// The final episode's τ* (the paper).
    #[default]
    Final,
    /// The τ* with the best validation F1 over episodes (v5555).
    BestValF1,
}

/// PCGrad tasks (spec §1.17 #3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcgradTasks {
    /// Inner-consistency task + one task per outer family (the paper).
    #[default]
    PerFamily,
    /// Two tasks: inner-consistency and the pooled outer loss, fixed order (the code).
    TwoTasks,
    /// No gradient surgery.
    Off,
}

/// Hyper-parameters of the meta-learner; defaults from spec §1.16.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaLearnerParams {
    pub enc_hidden: usize,
    pub enc_depth: usize,
    pub embed_dim: usize,
    pub dropout: f64,
    pub drop_path: f64,
    pub feature_dropout: f64,
    pub dec_hidden: usize,
    pub dec_depth: usize,
    pub lambda_rec: f64,
    pub inner_mode: InnerMode,
    pub inner_lr: f64,
    pub weight_decay: f64,
    pub inner_batch: usize,
    pub inner_epochs: usize,
    pub inner_per_family: usize,
    pub outer_batch: usize,
    pub outer_epochs: usize,
    pub lr_head: f64,
    pub lr_last_block: f64,
    pub lr_temperature: f64,
    pub unfreeze_last_block: bool,
    pub margin: f64,
    pub alpha_margin: f64,
    pub epsilon: f64,
    pub lambda_t: f64,
    /// ODIN steps in training (each ε/steps) and at evaluation.
    pub odin_steps_train: usize,
    pub odin_steps_eval: usize,
    /// +1: confidence-increasing (the paper); −1: the authors' code.
    pub odin_sign: i8,
    pub pcgrad: PcgradTasks,
    pub clip_norm: f64,
    pub tau_policy: TauPolicy,
    /// Stage-0 encoder pre-training epochs on normal rows (0 = off).
    pub pretrain_epochs: usize,
}

impl Default for MetaLearnerParams {
    fn default() -> Self {
        MetaLearnerParams {
            enc_hidden: 256,
            enc_depth: 3,
            embed_dim: 128,
            dropout: 0.1,
            drop_path: 0.05,
            feature_dropout: 0.05,
            dec_hidden: 128,
            dec_depth: 2,
            lambda_rec: 0.1,
            inner_mode: InnerMode::NormalsOnly,
            inner_lr: 3e-3,
            weight_decay: 1e-4,
            inner_batch: 256,
            inner_epochs: 10,
            inner_per_family: 20_000,
            outer_batch: 128,
            outer_epochs: 5,
            lr_head: 3e-3,
            lr_last_block: 1e-4,
            lr_temperature: 1e-3,
            unfreeze_last_block: true,
            margin: 0.5,
            alpha_margin: 0.1,
            epsilon: 2e-3,
            lambda_t: 1e-2,
            odin_steps_train: 5,
            odin_steps_eval: 1,
            odin_sign: 1,
            pcgrad: PcgradTasks::PerFamily,
            clip_norm: 1.0,
            tau_policy: TauPolicy::Final,
            pretrain_epochs: 0,
        }
    }
}


impl super::MethodSpec for MetaLearnerParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "Multidirectional meta-learner",
            paper: "Multidirectional meta-learning for class-generalizable anomaly detection (spec §1; reference refbench/mdml.py)",
            labels: super::Labels::FewShot,
            summary: "Encoder + head learn the normal manifold (inner stage), an outer stage with ODIN-perturbed inputs, a learned temperature and a margin hinge separates normals from few anomalies of rotating families; PCGrad resolves task conflicts. Score 1 − σ(ℓ₀(x̃)/T).",
        }
    }

    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const A: &str = "Architecture";
        const I: &str = "Inner stage (normal manifold)";
        const O: &str = "Outer stage (ODIN, temperature, margin, PCGrad)";
        // Widths are capped at 16,384 and batches at 2^20 rows: one step of a wider model or a
        // larger batch does not fit in the memory of a workstation (a 16,384-wide block is
        // already 1 GiB of weights + Adam state per block).
        const PARAMS: &[P] = &[
            P::int("enc_hidden", 1, 16_384, "hidden width of the encoder's ResBlocks (256)").in_group(A),
            P::int("enc_depth", 1, 64, "pre-norm ResBlocks in the encoder (3)").in_group(A),
            P::int("embed_dim", 1, 16_384, "encoder output width (128)").in_group(A),
            P::float("dropout", 0.0, 1.0, "dropout in the ResBlocks, in [0, 1) (0.1)").in_group(A),
            P::float("drop_path", 0.0, 1.0, "whole-batch stochastic depth, in [0, 1) (0.05)").in_group(A),
            P::float("feature_dropout", 0.0, 1.0, "input features zeroed in training, in [0, 1) (0.05)").in_group(A),
            P::int("dec_hidden", 1, 16_384, "width of the reconstruction decoder (128)").in_group(A),
            P::int("dec_depth", 1, 64, "blocks of the reconstruction decoder (2)").in_group(A),
            P::float("lambda_rec", 0.0, 1e6, "weight of the reconstruction term (0.1)").in_group(I),
            P::choice("inner_mode", &["normals_only", "supervised_inner_families"], "inner data: normals only (paper) or the inner families' anomalies too (authors' code, spec §1.17 #1)").in_group(I),
            P::float("inner_lr", 0.0, 10.0, "AdamW learning rate of the inner stage (3e-3)").in_group(I),
            P::float("weight_decay", 0.0, 10.0, "AdamW weight decay of the inner stage (1e-4)").in_group(I),
            P::int("inner_batch", 1, 1 << 20, "rows per inner step (256)").in_group(I),
            P::int("inner_epochs", 0, 100_000, "passes over the inner rows per episode (10)").in_group(I),
            P::int("inner_per_family", 1, 100_000_000, "normal rows drawn per inner family (20000)").in_group(I),
            P::int("outer_batch", 1, 1 << 20, "rows per outer step (128)").in_group(O),
            P::int("outer_epochs", 0, 100_000, "passes over the outer episode rows (5)").in_group(O),
            P::float("lr_head", 0.0, 10.0, "learning rate of the head in the outer stage (3e-3)").in_group(O),
            P::float("lr_last_block", 0.0, 10.0, "learning rate of the lightly unfrozen last encoder block (1e-4)").in_group(O),
            P::float("lr_temperature", 0.0, 10.0, "learning rate of ρ = log T (1e-3)").in_group(O),
            P::boolean("unfreeze_last_block", "train the encoder's last block in the outer stage (true)").in_group(O),
            P::float("margin", -1e6, 1e6, "hinge margin m on calibrated logits (0.5)").in_group(O),
            P::float("alpha_margin", 0.0, 1e6, "weight α of the margin hinge (0.1)").in_group(O),
            P::float("epsilon", 0.0, 1e3, "ODIN input perturbation size ε, fixed (2e-3)").in_group(O),
            P::float("lambda_t", 0.0, 1e6, "penalty λ_T·ρ² keeping T near 1 (1e-2)").in_group(O),
            P::int("odin_steps_train", 1, 1000, "ODIN steps J of ε/J in training (5)").in_group(O),
            P::int("odin_steps_eval", 1, 1000, "ODIN steps at checkpoints and test (1)").in_group(O),
            P::int("odin_sign", -1, 1, "+1 confidence-increasing (paper), −1 the authors' code").in_group(O),
            P::choice("pcgrad", &["per_family", "two_tasks", "off"], "PCGrad tasks: one per outer family (paper), two (code), or off (spec §1.17 #3)").in_group(O),
            P::float("clip_norm", 0.0, 1e9, "gradient clipping norm (1.0)").in_group(O),
            P::choice("tau_policy", &["final", "best_val_f1"], "τ* kept: the final episode's (paper) or the best validation F1's").in_group(O),
            P::int("pretrain_epochs", 0, 100_000, "stage-0 encoder pre-training epochs on normals (0 = off)").in_group(I),
        ];
        PARAMS
    }

    fn validate(&self) -> Result<(), super::ParamError> {
        if ![-1, 1].contains(&self.odin_sign) {
            return Err(super::ParamError::new(
                "odin_sign",
                format!("{} — allowed: 1 or -1", self.odin_sign),
            ));
        }
        for (n, v) in [
            ("dropout", self.dropout),
            ("drop_path", self.drop_path),
            ("feature_dropout", self.feature_dropout),
        ] {
            if v >= 1.0 {
                return Err(super::ParamError::new(n, format!("{v} — must be in [0, 1)")));
            }
        }
        Ok(())
    }

    fn name(&self) -> String {
        "meta_learner".into()
    }

    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let p = self;
        let (net, dec, norms) = p.layers(s.d);
        let params = dense_params(&net, true) + dense_params(&dec, true) + norms + 1.0;
        let both: Layers = net.iter().chain(&dec).copied().collect();
        let e = &s.episodes;
        let episodes = e.count as f64;
        // inner (as `fit`): a task of k families holds k·n_f normal rows; an epoch has
        // ⌈longest task / batch⌉ steps, each `inner_batch` rows of every task (fewer at a task's
        // end). Averaged over the sampler's draws; the most tasks for memory.
        let n_f = (p.inner_per_family as f64).min(s.normals);
        // with `supervised_inner_families` a task also holds its families' few-shot rows
        let mean_fs = s.few_shot_total() / (s.few_shot.len() as f64).max(1.0);
        let per_family = n_f
            + if p.inner_mode == InnerMode::SupervisedInnerFamilies {
                mean_fs
            } else {
                0.0
            };
        let b_in = p.inner_batch as f64;
        let per_epoch = |t: &[usize]| {
            let longest = t.iter().copied().max().unwrap_or(1).max(1) as f64 * per_family;
            (longest / b_in).ceil()
        };
        let inner_steps = p.inner_epochs as f64 * s.mean_draw(|t, _| per_epoch(t));
        // rows of all steps of an epoch: every task's rows once
        let task_families = |t: &[usize]| t.iter().map(|&k| k.max(1) as f64).sum::<f64>().max(1.0);
        let inner_rows = p.inner_epochs as f64 * s.mean_draw(|t, _| task_families(t) * per_family);
        // the episode's task row lists (16 bytes a row) and a permutation of the normals
        let most_families = s
            .draws
            .iter()
            .map(|(t, _)| task_families(t))
            .fold(task_families(&[]), f64::max);
        let task_lists = 16.0 * most_families * per_family + 8.0 * s.normals;
        let rows_per_inner = inner_rows / inner_steps.max(1.0);
        let max_tasks = s
            .draws
            .iter()
            .map(|(t, _)| t.len())
            .max()
            .unwrap_or(e.inner_tasks.1)
            .max(1) as f64;
        // outer: each outer anomaly with a normal row, in batches
        let set = 2.0 * s.mean_draw(|_, o| o as f64);
        let outer_batch = (p.outer_batch as f64).min(set.max(1.0));
        let outer_steps = p.outer_epochs as f64 * s.mean_draw(|_, o| (2.0 * o as f64 / p.outer_batch as f64).ceil());
        let outer_fams = (e.outer_families as f64).min(s.few_shot.len() as f64);
        let j_train = p.odin_steps_train as f64;
        let j_eval = p.odin_steps_eval as f64;
        // the ODIN input gradient is a backward pass through the whole encoder (2 forwards)
        let odin_eval = |rows: f64| (1.0 + 3.0 * j_eval) * dense_forward_flops(&net, rows);
        let checkpoints = 2.0 * episodes + 1.0;
        let pretrain_steps = p.pretrain_epochs as f64 * (s.normals / p.inner_batch as f64).ceil();
        let mut phases = vec![
            Phase {
                name: "inner steps",
                steps: episodes * inner_steps,
                flops: dense_train_flops(&both, rows_per_inner),
                speed: INNER_SPEED,
            },
            Phase {
                name: "outer steps",
                // J ODIN passes in train mode, then pass A (per-task losses; PCGrad) and pass B
                // (ρ) over head and last block, from features computed once
                steps: episodes * outer_steps,
                flops: (3.0 * j_train + 6.0) * dense_forward_flops(&net, outer_batch),
                speed: OUTER_SPEED,
            },
            Phase {
                name: "checkpoints",
                steps: checkpoints,
                flops: odin_eval(s.checkpoint),
                speed: SCORE_SPEED,
            },
            Phase {
                name: "scoring",
                steps: 1.0,
                flops: odin_eval(s.scored()),
                speed: SCORE_SPEED,
            },
        ];
        if pretrain_steps > 0.0 {
            phases.insert(
                0,
                Phase {
                    name: "pre-training",
                    steps: pretrain_steps,
                    flops: dense_train_flops(&both, (p.inner_batch as f64).min(s.normals)),
                    speed: INNER_SPEED,
                },
            );
        }
        // activations: residual, two layer norms, GELU and dropout masks per block (~6 copies)
        let step_bytes = task_lists
            + dense_activation_bytes(&both, max_tasks * b_in.min(n_f * e.families_per_task as f64), 6.0)
            .max((j_train + 2.0) * dense_activation_bytes(&net, outer_batch, 6.0))
            // frozen-path workspaces: blocks of 768 rows per thread at every width
            .max(2.0 * 768.0 * F32 * net.iter().map(|&(_, o)| o).sum::<f64>());
        let outer_tasks = outer_fams + 1.0;
        Cost {
            params,
            // weights, gradients and Adam moments of the inner optimiser, plus the outer
            // optimisers' moments (head, last block) and PCGrad's per-task gradients
            state_bytes: adam_state_bytes(params)
                + outer_tasks * F32 * p.last_block_params(),
            step_bytes,
            phases,
            records: episodes * (inner_steps + outer_steps * (1.0 + outer_tasks * outer_tasks / 2.0))
                + checkpoints * checkpoint_records(s) + final_records(s),
        }
    }

    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn Detector>, DetectError> {
        Ok(Box::new(MetaLearner::new(
            self.clone(),
            ctx.d,
            ctx.seed,
            ctx.device,
        )?))
    }
}

/// Speed constants of the meta-learner's work (see [`super::cost::Speed`]), fitted on the
/// development machine by `heldout bench estimate` (bench/results/estimate-*.txt).
/// The fused kernels beat candle's 256³ product (the calibration) on these shapes, and the flop
/// counts are upper bounds (an input gradient needs no weight gradients), so the graph-free
/// passes' efficiencies exceed 1.
const INNER_SPEED: super::cost::Speed = super::cost::Speed::new(1.2, 100.0);
const OUTER_SPEED: super::cost::Speed = super::cost::Speed::new(0.95, 200.0);
pub(crate) const SCORE_SPEED: super::cost::Speed = super::cost::Speed::new(1.9, 5000.0);

impl MetaLearnerParams {
    /// The dense layers of encoder + head, those of the decoder, and the layer-norm parameters
    /// (two per block, the head's one; γ and β each), for `d` features.
    pub fn layers(&self, d: f64) -> (super::cost::Layers, super::cost::Layers, f64) {
        let (h, e, hd) = (
            self.enc_hidden as f64,
            self.embed_dim as f64,
            self.dec_hidden as f64,
        );
        let mut net = vec![(d, h)];
        for _ in 0..self.enc_depth {
            net.extend([(h, h), (h, h)]);
        }
        net.extend([(h, e), (e, 2.0)]);
        let mut dec = vec![(e, hd)];
        for _ in 0..self.dec_depth {
            dec.extend([(hd, hd), (hd, hd)]);
        }
        dec.push((hd, d));
        let norms = 4.0 * h * self.enc_depth as f64 + 4.0 * hd * self.dec_depth as f64 + 2.0 * e;
        (net, dec, norms)
    }

    /// Parameters of the encoder's last block and the head (what the outer stage trains).
    fn last_block_params(&self) -> f64 {
        let (h, e) = (self.enc_hidden as f64, self.embed_dim as f64);
        2.0 * (h * h + h) + 4.0 * h + 2.0 * e + 2.0 * e + 2.0
    }
}

/// Clamp of ρ = log T (spec §1.7): T ∈ [0.3, 10].
pub const RHO_MIN: f64 = -1.203_972_804_325_936; // ln 0.3
pub const RHO_MAX: f64 = std::f64::consts::LN_10;
/// Pull-back of the evaluation ODIN step (`ODIN_TAU`).
const PULL_BACK: f64 = 0.01;
/// Rows per block when scoring a probe's points.
const PROBE_BLOCK: usize = 768;

/// The meta-learner.
pub struct MetaLearner {
    pub p: MetaLearnerParams,
    pub d: usize,
    pub params: Params,
    enc: Encoder,
    head: Head,
    dec: Decoder,
    /// log T
    rho: Var,
    device: Device,
    tau: Threshold,
    /// Dropout, drop-path and batch draws.
    rng: std::cell::RefCell<SplitMix64>,
    /// Buffers of the frozen-weight path, one per thread, kept between calls (allocating and
    /// zeroing them per call cost ~10 % of an outer step).
    frozen_ws: std::cell::RefCell<Vec<FrozenWorkspace>>,
}

/// The optimisers of one fit (see [`MetaLearner::optimisers`]).
struct Optimisers {
    inner_vars: Vec<Var>,
    inner: Adam,
    /// Head, then the last encoder block: the parameters the outer stage trains.
    shared: Vec<Var>,
    head: Adam,
    last: Adam,
    rho: Adam,
}

/// `k` row indices below `n` drawn without replacement (rejection; repeats allowed only once all
/// `n` are drawn).
fn draw_distinct(rng: &mut SplitMix64, n: usize, k: usize) -> Vec<usize> {
    let mut drawn = std::collections::HashSet::with_capacity(k);
    (0..k)
        .map(|_| loop {
            let r = rng.below(n.max(1) as u64) as usize;
            if drawn.len() >= n || drawn.insert(r) {
                break r;
            }
        })
        .collect()
}

/// One checkpoint's scores (see [`MetaLearner::checkpoint_scores`]).
struct Checkpoint {
    families: Vec<FamilyScores>,
    /// Every checkpoint row's score: normals, then each family's anomalies.
    all: Vec<f64>,
    temperature: f64,
}

/// Learning rates of one outer step.
#[derive(Debug, Clone, Copy)]
struct OuterLr {
    head: f64,
    last: f64,
    rho: f64,
}

/// One outer batch: `x` holds k ID rows then k OOD rows; `labels` 0 = ID, 1 = OOD; `fams` the
/// family each row belongs to; `outer` the episode's outer families in order.
struct OuterBatch<'a> {
    x: &'a Tensor,
    labels: &'a [u8],
    fams: &'a [FamilyId],
    outer: &'a [FamilyId],
}

/// What an inner step did: the loss and the (clipped) gradients it applied.
struct InnerStep {
    loss: f64,
    #[cfg_attr(not(test), allow(dead_code))]
    grads: HashMap<TensorId, Tensor>,
}

/// What an outer step did.
struct OuterStep {
    /// Sum of the task losses of pass A.
    loss: f64,
    /// The task losses of pass A: inner consistency first, then the families'.
    #[cfg_attr(not(test), allow(dead_code))]
    losses: Vec<f64>,
    /// The combined, clipped gradients of the shared parameters.
    #[cfg_attr(not(test), allow(dead_code))]
    grads: HashMap<TensorId, Tensor>,
    /// The clipped gradient of ρ (pass B); empty when no ρ step was taken.
    #[cfg_attr(not(test), allow(dead_code))]
    rho_grads: HashMap<TensorId, Tensor>,
    /// Pass A's ODIN-perturbed inputs.
    #[cfg_attr(not(test), allow(dead_code))]
    perturbed: Tensor,
    /// PCGrad's task ids (`FamilyId::MAX` = inner consistency) and statistics.
    pcgrad: Option<(Vec<FamilyId>, crate::nn::PcgradStats)>,
}

impl MetaLearner {
    /// A fresh model; weights from `seed` (the reference uses `seed + 40` for the model).
    pub fn new(p: MetaLearnerParams, d: usize, seed: u64, device: &Device) -> R<Self> {
        let mut rng = SplitMix64::new(seed.wrapping_add(40));
        let mut params = Params::default();
        let enc = Encoder::new(
            &mut params,
            d,
            p.enc_hidden,
            p.enc_depth,
            p.embed_dim,
            p.dropout,
            p.drop_path,
            p.feature_dropout,
            &mut rng,
            device,
        )?;
        let head = Head::new(&mut params, p.embed_dim, &mut rng, device)?;
        let dec = Decoder::new(
            &mut params,
            p.embed_dim,
            p.dec_hidden,
            p.dec_depth,
            d,
            &mut rng,
            device,
        )?;
        let rho = Var::from_tensor(&Tensor::zeros((), DType::F32, device)?)?;
        params.push("odin.rho".into(), rho.clone());
        Ok(MetaLearner {
            p,
            d,
            params,
            enc,
            head,
            dec,
            rho,
            device: device.clone(),
            tau: Threshold::fallback(crate::detect::EMPTY_VAL),
            rng: std::cell::RefCell::new(rng),
            frozen_ws: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// Current temperature.
    pub fn temperature(&self) -> R<f64> {
        Ok((self.rho.as_tensor().to_scalar::<f32>()? as f64).exp())
    }

    fn tensor(&self, x: &[f32]) -> R<Tensor> {
        Ok(Tensor::from_slice(
            x,
            (x.len() / self.d, self.d),
            &self.device,
        )?)
    }

    /// The normal logit ℓ₀, shape (B,), recording gradients for no parameter.
    pub fn logit0(&self, x: &Tensor, mode: Mode, last: Mode) -> R<Tensor> {
        self.logit0_t(x, mode, last, Track::Nothing, false)
    }

    /// ℓ₀ recording gradients for the encoder parameters `track` names and, with `head`, the head.
    fn logit0_t(&self, x: &Tensor, mode: Mode, last: Mode, track: Track, head: bool) -> R<Tensor> {
        let mut rng = self.rng.borrow_mut();
        let z = self.enc.forward_t(x, mode, last, track, &mut rng)?;
        Ok(self.head.forward_t(&z, head)?.narrow(1, 0, 1)?.squeeze(1)?)
    }

    /// The ODIN direction `d(x) = sgn(ℓ₀(x)) ⊙ sgn(∇ₓ ℓ₀(x))` (spec §1.6; sgn(0) = +1), detached.
    /// T drops out of the direction (binary closed form).
    pub fn odin_direction(&self, x: &Tensor) -> R<Tensor> {
        self.odin_direction_t(x, Mode::Eval)
    }

    /// [`MetaLearner::odin_direction`] with the encoder's last block in mode `last` (the outer
    /// stage trains it, so its drop-path is active there, as in the reference).
    fn odin_direction_t(&self, x: &Tensor, last: Mode) -> R<Tensor> {
        let (l0, g) = self.input_gradient_t(x, last)?;
        let s = sign_pm1(&l0)?.unsqueeze(1)?;
        Ok(sign_pm1(&g)?.broadcast_mul(&s)?)
    }

    /// ℓ₀(x) (eval mode) and its gradient with respect to the input rows, `∇ₓ ℓ₀(x)` (B, D).
    pub fn input_gradient(&self, x: &Tensor) -> R<(Tensor, Tensor)> {
        self.input_gradient_t(x, Mode::Eval)
    }

    fn input_gradient_t(&self, x: &Tensor, last: Mode) -> R<(Tensor, Tensor)> {
        let xv = Var::from_tensor(&x.detach())?;
        let l0 = self.logit0(xv.as_tensor(), Mode::Eval, last)?;
        let grads = l0.sum_all()?.backward()?;
        let g = grads
            .get(xv.as_tensor())
            .ok_or_else(|| DetectError::Other("no input gradient".into()))?
            .clone();
        Ok((l0.detach(), g))
    }

    /// Sets log T (clamped to the allowed range).
    pub fn set_log_temperature(&self, rho: f64) -> R<()> {
        let t = Tensor::new(rho.clamp(RHO_MIN, RHO_MAX) as f32, &self.device)?;
        Ok(self.rho.set(&t)?)
    }

    /// `J` ODIN steps of total size `eps` (direction recomputed each step); with `pull_back`
    /// the result is pulled towards the input by 1 % (evaluation).
    pub fn odin(&self, x: &Tensor, steps: usize, eps: f64, pull_back: bool) -> R<Tensor> {
        self.odin_t(x, steps, eps, pull_back, Mode::Eval)
    }

    /// [`MetaLearner::odin`] with the encoder's last block in mode `last`.
    fn odin_t(&self, x: &Tensor, steps: usize, eps: f64, pull_back: bool, last: Mode) -> R<Tensor> {
        if let Some(net) = self.frozen()? {
            let (n, d) = x.dims2()?;
            let x0 = x.flatten_all()?.to_vec1::<f32>()?;
            let xt = self.with_workspaces(&net, |ws| {
                self.odin_rows(&net, ws, &x0, steps, eps, pull_back, last)
            });
            return Ok(Tensor::from_vec(xt, (n, d), &self.device)?);
        }
        let steps = steps.max(1);
        let sign = self.p.odin_sign as f64;
        let mut xt = x.detach();
        if eps > 0.0 {
            for _ in 0..steps {
                let d = self.odin_direction_t(&xt, last)?;
                xt = (xt + (d * (sign * eps / steps as f64))?)?;
            }
        }
        if pull_back {
            xt = ((xt * (1.0 - PULL_BACK))? + (x * PULL_BACK)?)?;
        }
        Ok(xt.detach())
    }

    /// The graph-free CPU path for ℓ₀ and ODIN ([`FrozenNet`]: a snapshot of the current encoder
    /// and head weights), where it applies: on the CPU. Other devices run candle's graph.
    fn frozen(&self) -> R<Option<FrozenNet>> {
        if self.device.is_cpu() {
            Ok(Some(FrozenNet::new(&self.enc, &self.head)?))
        } else {
            Ok(None)
        }
    }

    /// Runs `f` with this model's frozen-path buffers (one per thread; made on first use).
    fn with_workspaces<T>(
        &self,
        net: &FrozenNet,
        f: impl FnOnce(&mut Vec<FrozenWorkspace>) -> T,
    ) -> T {
        let mut ws = std::mem::take(&mut *self.frozen_ws.borrow_mut());
        let n = frozen_threads();
        if ws.len() != n || !ws.iter().all(|w| w.fits(net)) {
            ws = net.workspaces(n);
        }
        let out = f(&mut ws);
        *self.frozen_ws.borrow_mut() = ws;
        out
    }

    /// Whether a forward pass with the last encoder block in mode `last` drops that block: the
    /// same draw from the model's generator as `ResBlock::forward_t` makes.
    fn drops_last_block(&self, last: Mode) -> bool {
        match self.enc.blocks.last() {
            Some(b) if last == Mode::Train && b.drop_path > 0.0 => {
                self.rng.borrow_mut().next_f64() < b.drop_path
            }
            _ => false,
        }
    }

    /// [`MetaLearner::odin_t`] on plain rows through the frozen-weight path.
    #[allow(clippy::too_many_arguments)]
    fn odin_rows(
        &self,
        net: &FrozenNet,
        ws: &mut Vec<FrozenWorkspace>,
        x0: &[f32],
        steps: usize,
        eps: f64,
        pull_back: bool,
        last: Mode,
    ) -> Vec<f32> {
        let steps = steps.max(1);
        let mut xt = x0.to_vec();
        if eps > 0.0 {
            // the candle path's `d * (sign·ε/J)`: the step size in f32, added with d's sign
            let step = (self.p.odin_sign as f64 * eps / steps as f64) as f32;
            for _ in 0..steps {
                let skip = self.drops_last_block(last);
                net.odin_step(&mut xt, skip, step, ws);
            }
        }
        if pull_back {
            let (keep, back) = ((1.0 - PULL_BACK) as f32, PULL_BACK as f32);
            for (v, &o) in xt.iter_mut().zip(x0) {
                *v = *v * keep + o * back;
            }
        }
        xt
    }

    /// ℓ₀ (detached) with the encoder in eval mode and its last block in mode `last`.
    fn logit0_values(&self, x: &Tensor, last: Mode) -> R<Tensor> {
        let Some(net) = self.frozen()? else {
            return Ok(self.logit0(x, Mode::Eval, last)?.detach());
        };
        let n = x.dim(0)?;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let mut l0 = vec![0f32; n];
        let skip = self.drops_last_block(last);
        self.with_workspaces(&net, |ws| net.logit0(&xv, skip, &mut l0, ws));
        Ok(Tensor::from_vec(l0, n, &self.device)?)
    }

    /// Calibrated normal logits `ℓ₀(x̃)/T` after one evaluation ODIN step.
    pub fn calibrated_logits(&self, x: &[f32]) -> R<Vec<f64>> {
        let mut out = Vec::with_capacity(x.len() / self.d);
        let t = self.temperature()?;
        if let Some(net) = self.frozen()? {
            let p = &self.p;
            let steps = if p.epsilon > 0.0 {
                p.odin_steps_eval.max(1)
            } else {
                0
            };
            let step = (p.odin_sign as f64 * p.epsilon / p.odin_steps_eval.max(1) as f64) as f32;
            let (keep, back) = ((1.0 - PULL_BACK) as f32, PULL_BACK as f32);
            let mut l0 = vec![0f32; x.len() / self.d];
            self.with_workspaces(&net, |ws| {
                net.odin_logit0(x, steps, step, keep, back, &mut l0, ws)
            });
            out.extend(l0.iter().map(|&v| v as f64 / t));
            return Ok(out);
        }
        for chunk in x.chunks(2048 * self.d) {
            let xt = self.tensor(chunk)?;
            let xs = self.odin(&xt, self.p.odin_steps_eval, self.p.epsilon, true)?;
            let l0 = self.logit0(&xs, Mode::Eval, Mode::Eval)?;
            out.extend(l0.to_vec1::<f32>()?.into_iter().map(|v| v as f64 / t));
        }
        Ok(out)
    }

    /// Scores and calibrated logits of a block.
    fn score_block(&self, x: &[f32]) -> R<(Vec<f64>, Vec<f64>)> {
        let z = self.calibrated_logits(x)?;
        // s = 1 − σ(z) = σ(−z), in f64 so that confident rows do not tie at 0.
        let s = z.iter().map(|&z| 1.0 / (1.0 + z.exp())).collect();
        Ok((s, z))
    }

    /// Scores the checkpoint pools: per family its balanced block, and all checkpoint rows'
    /// scores in pool order (normals, then each family's anomalies) for reuse.
    fn checkpoint_scores(&self, pools: &CheckpointPools) -> R<Checkpoint> {
        let mut families = Vec::with_capacity(pools.families.len());
        // All rows in one call (rows are scored independently): one weight snapshot, and blocks
        // large enough to keep every thread busy.
        let mut rows = pools.normals.clone();
        for (_, anomalies) in &pools.families {
            rows.extend_from_slice(anomalies);
        }
        let (all, z_all) = self.score_block(&rows)?;
        let n_normals = pools.normals.len() / self.d;
        let (sn, zn) = (&all[..n_normals], &z_all[..n_normals]);
        let mut off = n_normals;
        for (f, anomalies) in &pools.families {
            let m = anomalies.len() / self.d;
            if m == 0 {
                continue;
            }
            let (sa, za) = (&all[off..off + m], &z_all[off..off + m]);
            off += m;
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let mut scores = sn[..m].to_vec();
            scores.extend(sa);
            let mut labels = vec![0u8; m];
            labels.extend(std::iter::repeat_n(1u8, m));
            families.push(FamilyScores {
                family: *f,
                margin: mean(&zn[..m]) - mean(za),
                scores,
                labels,
            });
        }
        Ok(Checkpoint {
            families,
            all,
            temperature: self.temperature()?,
        })
    }

    fn emit_checkpoint(&self, c: &Checkpoint, episode: usize, stage: Stage, ctx: &mut Ctx) {
        (ctx.emit)(Event::Checkpoint {
            episode,
            stage,
            temperature: c.temperature,
            families: c.families.clone(),
        });
    }

    /// With a probe in `ctx`: scores its points (the test-scoring path) and moves its arrow rows
    /// by the training-time ODIN step (J steps of ε/J, no pull-back), then emits
    /// [`Event::Probe`]. Eval mode throughout, so no randomness is drawn: training goes on
    /// exactly as without a probe.
    fn probe(
        &self,
        ctx: &mut Ctx,
        episode: usize,
        stage: Stage,
        step: usize,
        steps: usize,
    ) -> R<()> {
        let Some(probe) = &ctx.probe else {
            return Ok(());
        };
        if ctx.stopped() {
            return Err(DetectError::Stopped);
        }
        // In blocks: on the CPU the input-gradient pass of one 3,600-row block took 4× as long as
        // four 900-row blocks. Rows are scored independently (eval mode).
        let mut scores = Vec::with_capacity(probe.points.len() / self.d.max(1));
        for block in probe.points.chunks(PROBE_BLOCK * self.d) {
            scores.extend(self.score_block(block)?.0);
        }
        let perturbed = if probe.arrows.len() < self.d {
            Vec::new()
        } else {
            let x = self.tensor(&probe.arrows)?;
            self.odin(&x, self.p.odin_steps_train, self.p.epsilon, false)?
                .flatten_all()?
                .to_vec1::<f32>()?
        };
        let temperature = self.temperature()?;
        (ctx.emit)(Event::Probe {
            episode,
            stage,
            step,
            steps,
            scores,
            perturbed,
            temperature,
        });
        Ok(())
    }

    /// The optimisers of one fit, created once: their state persists across episodes (spec
    /// §1.9). Inner: AdamW over everything but ρ, β₂ = 0.99. Outer: Adam (L2 decay) on the head
    /// and, lightly unfrozen, the encoder's last block. Temperature: Adam on ρ, no decay.
    fn optimisers(&self) -> R<Optimisers> {
        let p = &self.p;
        // With stage-0 pre-training the inner stage trains only the head and the last encoder
        // block (spec §1.8).
        let inner_vars: Vec<Var> = if p.pretrain_epochs > 0 {
            let mut v = self.params.with_prefix("head.");
            v.extend(self.params.with_prefix(&self.enc.last_block_prefix()));
            v
        } else {
            self.params
                .vars
                .iter()
                .filter(|(n, _)| !n.starts_with("odin."))
                .map(|(_, v)| v.clone())
                .collect()
        };
        let inner = Adam::new(inner_vars.clone(), self.inner_adam())?;
        let head_vars = self.params.with_prefix("head.");
        let last_vars = if p.unfreeze_last_block {
            self.params.with_prefix(&self.enc.last_block_prefix())
        } else {
            Vec::new()
        };
        let shared: Vec<Var> = head_vars.iter().chain(&last_vars).cloned().collect();
        Ok(Optimisers {
            inner_vars,
            inner,
            shared,
            head: Adam::new(head_vars, AdamConfig::new(p.lr_head, p.weight_decay, false))?,
            last: Adam::new(
                last_vars,
                AdamConfig::new(p.lr_last_block, p.weight_decay, false),
            )?,
            rho: Adam::new(
                vec![self.rho.clone()],
                AdamConfig::new(p.lr_temperature, 0.0, false),
            )?,
        })
    }

    /// The inner stage's optimiser settings (also stage 0's): AdamW, β₂ = 0.99 (spec §1.9).
    fn inner_adam(&self) -> AdamConfig {
        AdamConfig {
            beta2: 0.99,
            ..AdamConfig::new(self.p.inner_lr, self.p.weight_decay, true)
        }
    }

    /// One inner-stage step (spec §1.9): `BCE(ℓ₀, y) + λ_rec·MSE(dec(z), x)` on the rows `x`
    /// (targets: all normal when `None`); trains everything but ρ (after stage-0 pre-training
    /// only the head and the last encoder block); global-norm clipping, AdamW.
    fn inner_step(
        &self,
        opt: &mut Optimisers,
        x: &Tensor,
        target: Option<Vec<f32>>,
        lr: f64,
        episode: usize,
    ) -> R<InnerStep> {
        let p = &self.p;
        let (loss, mut grads) = if self.device.is_cpu() {
            self.inner_grads_cpu(opt, x, target)?
        } else {
            self.inner_grads_graph(opt, x, target)?
        };
        Self::check_loss(loss, episode, "inner")?;
        clip_grad_norm(&mut grads, p.clip_norm)?;
        opt.inner.step(&grads, lr)?;
        Ok(InnerStep { loss, grads })
    }

    /// The inner step's loss and gradients (for `opt.inner_vars`) through candle's graph.
    fn inner_grads_graph(
        &self,
        opt: &Optimisers,
        x: &Tensor,
        target: Option<Vec<f32>>,
    ) -> R<(f64, HashMap<TensorId, Tensor>)> {
        let p = &self.p;
        let track = if p.pretrain_epochs > 0 {
            Track::LastBlock
        } else {
            Track::All
        };
        let (l0, recon) = {
            let mut mrng = self.rng.borrow_mut();
            let z = self
                .enc
                .forward_t(x, Mode::Train, Mode::Train, track, &mut mrng)?;
            let l0 = self.head.forward(&z)?.narrow(1, 0, 1)?.squeeze(1)?;
            (l0, self.dec.forward(&z, &mut mrng)?)
        };
        let bce = match target {
            None => bce_with_logits(&l0, 1.0)?,
            Some(t) => {
                let n = t.len();
                bce_with_logit_targets(&l0, &Tensor::from_vec(t, n, &self.device)?)?
            }
        };
        let rec = (recon - x)?.sqr()?.mean_all()?;
        let loss = (bce + (rec * p.lambda_rec)?)?;
        let lv = loss.to_scalar::<f32>()? as f64;
        Ok((lv, self.grads_of(&loss, &opt.inner_vars)?))
    }

    /// [`MetaLearner::inner_grads_graph`] through the graph-free CPU pass ([`InnerNet`]): same
    /// draws, same loss, gradients to float rounding.
    fn inner_grads_cpu(
        &self,
        opt: &Optimisers,
        x: &Tensor,
        target: Option<Vec<f32>>,
    ) -> R<(f64, HashMap<TensorId, Tensor>)> {
        let p = &self.p;
        let net = InnerNet::new(&self.enc, &self.head, &self.dec)?;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let pass = {
            let mut rng = self.rng.borrow_mut();
            net.pass(&xv, target.as_deref(), p.lambda_rec, &mut rng)?
        };
        let by_name: HashMap<&str, &Var> = self
            .params
            .vars
            .iter()
            .map(|(n, v)| (n.as_str(), v))
            .collect();
        let mut grads = HashMap::with_capacity(opt.inner_vars.len());
        for (name, g) in pass.grads {
            let Some(var) = by_name.get(name.as_str()) else {
                return Err(DetectError::Other(format!(
                    "inner pass: no parameter {name}"
                )));
            };
            let id = var.as_tensor().id();
            if opt.inner_vars.iter().any(|v| v.as_tensor().id() == id) {
                let t = Tensor::from_vec(g, var.as_tensor().shape(), &self.device)?;
                grads.insert(id, t);
            }
        }
        if grads.len() != opt.inner_vars.len() {
            return Err(DetectError::Other(format!(
                "inner pass: {} of {} gradients",
                grads.len(),
                opt.inner_vars.len()
            )));
        }
        Ok((pass.loss, grads))
    }

    /// Stage 0 (spec §1.8): the encoder and decoder pre-trained as an autoencoder (MSE) on the
    /// normal training rows for `pretrain_epochs` epochs — batches of `inner_batch`, reshuffled
    /// every epoch, AdamW at the inner stage's rate and decay with β₂ = 0.99, clipping and a
    /// cosine schedule over all its steps (settings the spec leaves open, taken from the inner
    /// stage). Steps are reported as `Stage::Pretrain` in episode 0.
    fn pretrain(&self, normals: &[f32], rng: &mut SplitMix64, ctx: &mut Ctx) -> R<()> {
        let p = &self.p;
        let d = self.d;
        let n = normals.len() / d;
        let vars: Vec<Var> = self
            .params
            .vars
            .iter()
            .filter(|(n, _)| n.starts_with("enc.") || n.starts_with("dec."))
            .map(|(_, v)| v.clone())
            .collect();
        let mut opt = Adam::new(vars.clone(), self.inner_adam())?;
        let per_epoch = n.div_ceil(p.inner_batch);
        let steps = p.pretrain_epochs * per_epoch;
        let mut order: Vec<usize> = (0..n).collect();
        let mut s = 0;
        for _ in 0..p.pretrain_epochs {
            rng.shuffle(&mut order);
            for rows in order.chunks(p.inner_batch) {
                if ctx.stopped() {
                    return Err(DetectError::Stopped);
                }
                let mut xb = Vec::with_capacity(rows.len() * d);
                for &r in rows {
                    xb.extend_from_slice(&normals[r * d..(r + 1) * d]);
                }
                let x = self.tensor(&xb)?;
                let recon = {
                    let mut mrng = self.rng.borrow_mut();
                    let z = self.enc.forward(&x, Mode::Train, Mode::Train, &mut mrng)?;
                    self.dec.forward(&z, &mut mrng)?
                };
                let loss = (recon - &x)?.sqr()?.mean_all()?;
                let lv = loss.to_scalar::<f32>()? as f64;
                Self::check_loss(lv, 0, "stage-0 pre-training")?;
                let mut g = self.grads_of(&loss, &vars)?;
                clip_grad_norm(&mut g, p.clip_norm)?;
                opt.step(&g, cosine_lr(p.inner_lr, s, steps))?;
                s += 1;
                (ctx.emit)(Event::Progress {
                    episode: 0,
                    stage: Stage::Pretrain,
                    step: s,
                    steps,
                    loss: lv,
                });
            }
        }
        Ok(())
    }

    /// One outer-stage step (spec §1.6–§1.10) on a batch of k ID rows followed by k OOD rows:
    /// pass A — J-step ODIN inputs, per-family losses on calibrated logits (T fixed) plus the
    /// inner-consistency task, PCGrad, clipping, Adam on the head and last block; pass B — the
    /// temperature on the same batch (re-perturbed with the updated weights), then ρ clamped.
    fn outer_step(
        &self,
        opt: &mut Optimisers,
        b: &OuterBatch,
        lr: OuterLr,
        rng: &mut SplitMix64,
        episode: usize,
    ) -> R<OuterStep> {
        let p = &self.p;
        let (labels, fams) = (b.labels, b.fams);
        // families that form a task: ≥ 1 ID and ≥ 1 OOD row
        let mut task_fams: Vec<FamilyId> = Vec::new();
        for f in b.outer {
            let has = |l: u8| fams.iter().zip(labels).any(|(g, &y)| g == f && y == l);
            if has(0) && has(1) {
                task_fams.push(*f);
            }
        }
        let index = |f: Option<FamilyId>, l: u8| -> R<Tensor> {
            let idx: Vec<u32> = (0..labels.len())
                .filter(|&i| labels[i] == l && f.is_none_or(|f| fams[i] == f))
                .map(|i| i as u32)
                .collect();
            let n = idx.len();
            Ok(Tensor::from_vec(idx, n, &self.device)?)
        };
        let family_loss = |z: &Tensor, f: Option<FamilyId>| -> R<Tensor> {
            let zi = z.index_select(&index(f, 0)?, 0)?;
            let zo = z.index_select(&index(f, 1)?, 0)?;
            let gap = (zi.mean_all()? - zo.mean_all()?)?;
            let hinge = (gap.neg()? + p.margin)?.relu()?;
            Ok(((bce_with_logits(&zi, 1.0)? + bce_with_logits(&zo, 0.0)?)?
                + (hinge * p.alpha_margin)?)?)
        };
        // pass A: shared parameters (T fixed). The outer stage keeps the encoder in eval mode
        // except its last block, which it trains: that block's drop-path is active in every
        // forward pass here, the ODIN directions included (as the reference's `_outer`).
        let xs = self.odin_t(b.x, p.odin_steps_train, p.epsilon, false, Mode::Train)?;
        let xs_a = xs.clone();
        let t = self.temperature()?;
        let (losses, flat) = if self.device.is_cpu() {
            self.pass_a_cpu(b, &xs, &task_fams, &opt.shared, t, episode)?
        } else {
            // record gradients for the head and (lightly unfrozen) last block only
            let tr = if p.unfreeze_last_block {
                Track::LastBlock
            } else {
                Track::Nothing
            };
            let z = (self.logit0_t(&xs, Mode::Eval, Mode::Train, tr, true)? / t)?;
            let x_id = b.x.index_select(&index(None, 0)?, 0)?;
            let l_in = bce_with_logits(
                &self.logit0_t(&x_id, Mode::Eval, Mode::Train, tr, true)?,
                1.0,
            )?;
            let mut task_losses: Vec<Tensor> = vec![l_in];
            match p.pcgrad {
                PcgradTasks::TwoTasks => task_losses.push(family_loss(&z, None)?),
                PcgradTasks::PerFamily | PcgradTasks::Off => {
                    for f in &task_fams {
                        task_losses.push(family_loss(&z, Some(*f))?);
                    }
                }
            }
            let mut losses = Vec::with_capacity(task_losses.len());
            for l in &task_losses {
                losses.push(l.to_scalar::<f32>()? as f64);
            }
            Self::check_loss(losses.iter().sum(), episode, "outer")?;
            let mut flat: Vec<Vec<f32>> = Vec::with_capacity(task_losses.len());
            for l in &task_losses {
                let g = self.grads_of(l, &opt.shared)?;
                let mut v = Vec::new();
                // `grads_of` returns an entry for every variable it was given.
                for var in &opt.shared {
                    v.extend(g[&var.as_tensor().id()].flatten_all()?.to_vec1::<f32>()?);
                }
                flat.push(v);
            }
            (losses, flat)
        };
        let loss: f64 = losses.iter().sum();
        let mut pcgrad_out = None;
        let combined = if p.pcgrad == PcgradTasks::Off {
            let mut sum = vec![0f32; flat[0].len()];
            for g in &flat {
                for (a, b) in sum.iter_mut().zip(g) {
                    *a += b;
                }
            }
            sum
        } else {
            let (sum, stats) = pcgrad(&flat, rng);
            let mut tasks = vec![FamilyId::MAX];
            if p.pcgrad == PcgradTasks::PerFamily {
                tasks.extend(&task_fams);
            } else {
                tasks.push(FamilyId::MAX - 1);
            }
            pcgrad_out = Some((tasks, stats));
            sum
        };
        let mut grads = HashMap::with_capacity(opt.shared.len());
        let mut off = 0;
        for var in &opt.shared {
            let n = var.as_tensor().elem_count();
            let t = Tensor::from_slice(
                &combined[off..off + n],
                var.as_tensor().shape(),
                &self.device,
            )?;
            grads.insert(var.as_tensor().id(), t);
            off += n;
        }
        clip_grad_norm(&mut grads, p.clip_norm)?;
        opt.head.step(&grads, lr.head)?;
        opt.last.step(&grads, lr.last)?;

        // pass B: temperature only
        let xs = self.odin_t(b.x, p.odin_steps_train, p.epsilon, false, Mode::Train)?;
        let l0 = self.logit0_values(&xs, Mode::Train)?;
        // No family with both classes in the batch: no temperature loss, no ρ step (the
        // reference's `if losses:`), though the passes above ran (and drew their drop-path).
        let mut rho_grads = HashMap::new();
        if !task_fams.is_empty() {
            let z = l0.broadcast_div(&self.rho.as_tensor().exp()?)?;
            let mut lt = (self.rho.as_tensor().sqr()? * p.lambda_t)?;
            let nb = task_fams.len() as f64;
            for f in &task_fams {
                lt = (lt + (family_loss(&z, Some(*f))? / nb)?)?;
            }
            rho_grads = self.grads_of(&lt, std::slice::from_ref(&self.rho))?;
            clip_grad_norm(&mut rho_grads, p.clip_norm)?;
            opt.rho.step(&rho_grads, lr.rho)?;
            let clamped = self.rho.as_tensor().clamp(RHO_MIN, RHO_MAX)?;
            self.rho.set(&clamped)?;
        }
        Ok(OuterStep {
            loss,
            losses,
            grads,
            rho_grads,
            pcgrad: pcgrad_out,
            perturbed: xs_a,
        })
    }

    /// Pass A of the outer step through the graph-free CPU path ([`OuterNet`]): the task losses
    /// (inner consistency first, then the families' or the pooled one, as the candle path) and
    /// each task's gradient for the shared parameters, flattened in `shared` order. Same draws
    /// (drop-path of the last block for the perturbed batch, then for the ID rows).
    fn pass_a_cpu(
        &self,
        b: &OuterBatch,
        xs: &Tensor,
        task_fams: &[FamilyId],
        shared: &[Var],
        t: f64,
        episode: usize,
    ) -> R<(Vec<f64>, Vec<Vec<f32>>)> {
        let p = &self.p;
        let (labels, fams, d) = (b.labels, b.fams, self.d);
        let net = OuterNet::new(&self.enc, &self.head)?;
        // drop-path of the last block: the perturbed batch's draw, then the ID rows'
        let skips = [
            self.drops_last_block(Mode::Train),
            self.drops_last_block(Mode::Train),
        ];
        let xs_v = xs.flatten_all()?.to_vec1::<f32>()?;
        let xv = b.x.flatten_all()?.to_vec1::<f32>()?;
        let x_id: Vec<f32> = xv
            .chunks_exact(d)
            .zip(labels)
            .filter(|(_, &l)| l == 0)
            .flat_map(|(r, _)| r.iter().copied())
            .collect();
        // the two forward passes, and below the tasks' backward passes, on all cores
        let inputs = [&xs_v, &x_id];
        let mut acts =
            par_map(frozen_threads(), 2, |i| net.forward(inputs[i], skips[i])).into_iter();
        let (Some(act), Some(act_id)) = (acts.next(), acts.next()) else {
            return Err(DetectError::Other(
                "outer pass: forward passes missing".into(),
            ));
        };
        let (act, act_id) = (act?, act_id?);
        let inv_t = (1.0 / t) as f32;
        let z: Vec<f32> = act.l0.iter().map(|&l| l * inv_t).collect();
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        // softplus(−v) = BCE(v, 1); softplus(v) = BCE(v, 0)
        let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
        // tasks as (loss, which pass, dloss/dℓ₀ per row of that pass)
        let mut tasks: Vec<(f64, &OuterAct, Vec<f32>)> = Vec::new();
        let n_id = act_id.l0.len() as f64;
        let mut l_in = 0.0;
        let mut d_in = vec![0f32; act_id.l0.len()];
        for (g, &l) in d_in.iter_mut().zip(&act_id.l0) {
            let l = l as f64;
            l_in += softplus(-l) / n_id;
            *g = ((sigmoid(l) - 1.0) / n_id) as f32;
        }
        tasks.push((l_in, &act_id, d_in));
        let family_task = |f: Option<FamilyId>| -> (f64, Vec<f32>) {
            let sel = |l: u8| -> Vec<usize> {
                (0..labels.len())
                    .filter(|&i| labels[i] == l && f.is_none_or(|f| fams[i] == f))
                    .collect()
            };
            let (ids, oods) = (sel(0), sel(1));
            let (ni, no) = (ids.len() as f64, oods.len() as f64);
            let mean =
                |ix: &[usize]| ix.iter().map(|&i| z[i] as f64).sum::<f64>() / ix.len() as f64;
            let gap = mean(&ids) - mean(&oods);
            let active = p.margin - gap > 0.0;
            let mut loss = p.alpha_margin * (p.margin - gap).max(0.0);
            let mut dl0 = vec![0f32; labels.len()];
            let hinge = if active { p.alpha_margin } else { 0.0 };
            for &i in &ids {
                let zi = z[i] as f64;
                loss += softplus(-zi) / ni;
                dl0[i] = (((sigmoid(zi) - 1.0) / ni - hinge / ni) / t) as f32;
            }
            for &i in &oods {
                let zo = z[i] as f64;
                loss += softplus(zo) / no;
                dl0[i] = ((sigmoid(zo) / no + hinge / no) / t) as f32;
            }
            (loss, dl0)
        };
        match p.pcgrad {
            PcgradTasks::TwoTasks => {
                let (l, g) = family_task(None);
                tasks.push((l, &act, g));
            }
            PcgradTasks::PerFamily | PcgradTasks::Off => {
                for f in task_fams {
                    let (l, g) = family_task(Some(*f));
                    tasks.push((l, &act, g));
                }
            }
        }
        let losses: Vec<f64> = tasks.iter().map(|t| t.0).collect();
        Self::check_loss(losses.iter().sum(), episode, "outer")?;
        let names: HashMap<TensorId, &str> = self
            .params
            .vars
            .iter()
            .map(|(n, v)| (v.as_tensor().id(), n.as_str()))
            .collect();
        let mut flat = Vec::with_capacity(tasks.len());
        let task_grads = par_map(frozen_threads(), tasks.len(), |k| {
            net.backward(tasks[k].1, &tasks[k].2)
        });
        for g in task_grads {
            let mut by_name: HashMap<String, Vec<f32>> = g?.into_iter().collect();
            let mut v = Vec::new();
            for var in shared {
                let g = names
                    .get(&var.as_tensor().id())
                    .and_then(|n| by_name.remove(*n))
                    .ok_or_else(|| {
                        DetectError::Other("outer pass: a shared parameter has no gradient".into())
                    })?;
                v.extend(g);
            }
            flat.push(v);
        }
        Ok((losses, flat))
    }

    fn grads_of(&self, loss: &Tensor, vars: &[Var]) -> R<HashMap<TensorId, Tensor>> {
        let g = loss.backward()?;
        let mut out = HashMap::with_capacity(vars.len());
        for v in vars {
            let t = match g.get(v.as_tensor()) {
                Some(t) => t.clone(),
                None => v.as_tensor().zeros_like()?,
            };
            out.insert(v.as_tensor().id(), t);
        }
        Ok(out)
    }

    fn check_loss(loss: f64, episode: usize, stage: &'static str) -> R<()> {
        if loss.is_finite() {
            Ok(())
        } else {
            Err(DetectError::NanLoss { episode, stage })
        }
    }
}

impl Detector for MetaLearner {
    fn name(&self) -> String {
        "meta_learner".into()
    }

    fn threshold(&self) -> Threshold {
        self.tau.clone()
    }

    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        Ok(self.params.save(path)?)
    }

    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        Ok(self.score_block(x)?.0)
    }

    fn fit(&mut self, data: &mut TrainView, ctx: &mut Ctx) -> Result<(), DetectError> {
        let p = self.p.clone();
        let d = self.d;
        let n_normals = data.normals.len() / d;
        if n_normals == 0 {
            return Err(DetectError::Other("no normal training rows".into()));
        }
        let mut opt = self.optimisers()?;

        let inner_rows_per_family = p.inner_per_family.min(n_normals);
        let k_outer = data.episodes.spec().outer_families.max(1);
        // As the reference: steps per epoch = ⌈families_per_task·n_f / batch⌉ (the longest task).
        let fpt = data.episodes.spec().families_per_task.max(1);
        let inner_total = data.n_episodes
            * p.inner_epochs
            * (fpt * inner_rows_per_family).div_ceil(p.inner_batch);
        let shots_max = data
            .few_shot
            .iter()
            .map(|(_, v)| v.len() / d)
            .max()
            .unwrap_or(0);
        let outer_total = data.n_episodes
            * p.outer_epochs
            * (k_outer * 2 * shots_max).div_ceil(p.outer_batch).max(1);
        let (mut inner_step, mut outer_step) = (0usize, 0usize);
        let mut best_val_f1 = f64::NEG_INFINITY;
        let mut rng = ctx.rng.clone();
        let mut after_outer: Option<Checkpoint> = None;
        if p.pretrain_epochs > 0 {
            self.pretrain(&data.normals, &mut rng, ctx)?;
        }

        for q in 1..=data.n_episodes {
            let ep = data.episodes.next_episode();
            (ctx.emit)(Event::Episode(ep.clone()));
            // The model has not changed since the previous episode's after-outer checkpoint
            // (τ* and the episode draw touch no weight; scoring is in eval mode, deterministic),
            // so its scores are this episode's pre checkpoint.
            let pre = match after_outer.take() {
                Some(c) => c,
                None => self.checkpoint_scores(&data.checkpoint)?,
            };
            self.emit_checkpoint(&pre, q, Stage::Pre, ctx);
            self.probe(ctx, q, Stage::Pre, 0, 0)?;

            // ---------------- inner stage ----------------
            // Per task: its families' normals, each one draw of n_f rows (no replacement) from the
            // shared normal pool (spec §1.2 mapping (b)); with `supervised_inner_families` also the
            // family's few-shot anomalies. Every step concatenates `inner_batch` rows of each task.
            let mut anomalies: Vec<f32> = Vec::new();
            let mut tasks: Vec<Vec<(usize, bool)>> = Vec::new();
            let task_list: Vec<Vec<FamilyId>> = if ep.inner_tasks.is_empty() {
                vec![Vec::new()]
            } else {
                ep.inner_tasks.clone()
            };
            for t in &task_list {
                let mut rows: Vec<(usize, bool)> = Vec::new();
                for _ in 0..t.len().max(1) {
                    let mut perm: Vec<usize> = (0..n_normals).collect();
                    rng.shuffle(&mut perm);
                    rows.extend(perm[..inner_rows_per_family].iter().map(|&r| (r, true)));
                }
                if p.inner_mode == InnerMode::SupervisedInnerFamilies {
                    for f in t {
                        if let Some((_, x)) = data.few_shot.iter().find(|(g, _)| g == f) {
                            for r in 0..x.len() / d {
                                rows.push((anomalies.len() / d, false));
                                anomalies.extend_from_slice(&x[r * d..(r + 1) * d]);
                            }
                        }
                    }
                }
                tasks.push(rows);
            }
            let longest = tasks.iter().map(Vec::len).max().unwrap_or(0);
            let per_epoch = longest.div_ceil(p.inner_batch);
            let steps = p.inner_epochs * per_epoch;
            let mut s = 0;
            for _ in 0..p.inner_epochs {
                for t in tasks.iter_mut() {
                    rng.shuffle(t);
                }
                for k in 0..per_epoch {
                    if ctx.stopped() {
                        return Err(DetectError::Stopped);
                    }
                    let batch: Vec<(usize, bool)> = tasks
                        .iter()
                        .flat_map(|t| {
                            let a = (k * p.inner_batch).min(t.len());
                            let b = ((k + 1) * p.inner_batch).min(t.len());
                            t[a..b].iter().copied()
                        })
                        .collect();
                    if batch.is_empty() {
                        continue;
                    }
                    let mut xb = Vec::with_capacity(batch.len() * d);
                    let mut target = Vec::with_capacity(batch.len());
                    for &(r, normal) in &batch {
                        let src = if normal { &data.normals } else { &anomalies };
                        xb.extend_from_slice(&src[r * d..(r + 1) * d]);
                        target.push(if normal { 1f32 } else { 0f32 });
                    }
                    let x = self.tensor(&xb)?;
                    let target = if target.iter().all(|&t| t == 1.0) {
                        None
                    } else {
                        Some(target)
                    };
                    let lr = cosine_lr(p.inner_lr, inner_step, inner_total.max(inner_step + 1));
                    let out = self.inner_step(&mut opt, &x, target, lr, q)?;
                    inner_step += 1;
                    s += 1;
                    (ctx.emit)(Event::Progress {
                        episode: q,
                        stage: Stage::Inner,
                        step: s,
                        steps,
                        loss: out.loss,
                    });
                    self.probe(ctx, q, Stage::Inner, s, steps)?;
                }
            }
            let c = self.checkpoint_scores(&data.checkpoint)?;
            self.emit_checkpoint(&c, q, Stage::Inner, ctx);

            // ---------------- outer stage ----------------
            // (row source, label, family): label 0 = normal (ID), 1 = anomaly (OOD)
            let mut set: Vec<(Vec<f32>, u8, FamilyId)> = Vec::new();
            for (f, &k) in ep.outer.iter().zip(&ep.shots) {
                let Some((_, xa)) = data.few_shot.iter().find(|(g, _)| g == f) else {
                    continue;
                };
                // as many distinct normal rows as shots (without replacement, as the reference)
                let k = k.min(xa.len() / d);
                let normal_rows = draw_distinct(&mut rng, n_normals, k);
                for (r, &nr) in normal_rows.iter().enumerate() {
                    set.push((xa[r * d..(r + 1) * d].to_vec(), 1, *f));
                    set.push((data.normals[nr * d..(nr + 1) * d].to_vec(), 0, *f));
                }
            }
            let steps = p.outer_epochs * set.len().div_ceil(p.outer_batch);
            let mut s = 0;
            for _ in 0..p.outer_epochs {
                rng.shuffle(&mut set);
                for batch in set.chunks(p.outer_batch) {
                    if ctx.stopped() {
                        return Err(DetectError::Stopped);
                    }
                    let n_id = batch.iter().filter(|b| b.1 == 0).count();
                    let n_ood = batch.len() - n_id;
                    let k = n_id.min(n_ood);
                    if k == 0 {
                        continue;
                    }
                    // k ID rows, then k OOD rows, each in batch order (as the reference truncates)
                    let mut ids: Vec<&(Vec<f32>, u8, FamilyId)> =
                        batch.iter().filter(|b| b.1 == 0).take(k).collect();
                    ids.extend(batch.iter().filter(|b| b.1 == 1).take(k));
                    let xb: Vec<f32> = ids.iter().flat_map(|b| b.0.iter().copied()).collect();
                    let labels: Vec<u8> = ids.iter().map(|b| b.1).collect();
                    let fams: Vec<FamilyId> = ids.iter().map(|b| b.2).collect();
                    let x = self.tensor(&xb)?;
                    let total = outer_total.max(outer_step + 1);
                    let lr = OuterLr {
                        head: cosine_lr(p.lr_head, outer_step, total),
                        last: cosine_lr(p.lr_last_block, outer_step, total),
                        rho: cosine_lr(p.lr_temperature, outer_step, total),
                    };
                    let out = self.outer_step(
                        &mut opt,
                        &OuterBatch {
                            x: &x,
                            labels: &labels,
                            fams: &fams,
                            outer: &ep.outer,
                        },
                        lr,
                        &mut rng,
                        q,
                    )?;
                    if let Some((tasks, stats)) = out.pcgrad {
                        (ctx.emit)(Event::Pcgrad {
                            episode: q,
                            step: outer_step,
                            tasks,
                            stats,
                        });
                    }
                    outer_step += 1;
                    s += 1;
                    (ctx.emit)(Event::Progress {
                        episode: q,
                        stage: Stage::Outer,
                        step: s,
                        steps,
                        loss: out.loss,
                    });
                    self.probe(ctx, q, Stage::Outer, s, steps)?;
                }
            }
            let c = self.checkpoint_scores(&data.checkpoint)?;
            self.emit_checkpoint(&c, q, Stage::Outer, ctx);

            // ---------------- τ* on the seen-family validation pool ----------------
            if !data.val.is_empty() {
                // the pool's rows are usually all among the checkpoint rows just scored
                let scores = match &data.checkpoint.val_index {
                    Some(ix) if ix.iter().all(|&i| i < c.all.len()) => {
                        ix.iter().map(|&i| c.all[i]).collect()
                    }
                    _ => self.score_block(&data.val.x)?.0,
                };
                let labels: Vec<bool> = data.val.y.iter().map(|&y| y == 1).collect();
                match Threshold::best_f1_on_val(&labels, &scores) {
                    (t, Some(f1)) => {
                        let keep = match p.tau_policy {
                            TauPolicy::Final => true,
                            TauPolicy::BestValF1 => f1 > best_val_f1,
                        };
                        (ctx.emit)(Event::Threshold {
                            episode: q,
                            tau: t.tau,
                            f1,
                        });
                        if keep {
                            self.tau = t;
                            best_val_f1 = best_val_f1.max(f1);
                        }
                    }
                    // no episode's pool gave τ* yet: keep the reason (the last one seen)
                    (t, None) => {
                        if self.tau.fallback_reason().is_some() {
                            self.tau = t;
                        }
                    }
                }
            }
            // ---------------- hardness for the `ema_hardness` curriculum (spec §1.11.4) ----------------
            // Per seen family, from its validation pool at the after-outer checkpoint: AUC, and
            // F1 at that family's own best-F1 threshold. The sampler keeps only seen families
            // (held-out families' pools are scored for the figures, never recorded).
            if data.episodes.spec().curriculum == crate::split::Curriculum::EmaHardness {
                for fs in &c.families {
                    let labels: Vec<bool> = fs.labels.iter().map(|&y| y == 1).collect();
                    let auc = eval::roc_auc(&labels, &fs.scores);
                    let (t, f1) = Threshold::best_f1_on_val(&labels, &fs.scores);
                    if let (Ok(auc), Some(f1)) = (auc, f1) {
                        data.episodes.record_hardness(fs.family, auc, f1, t.tau);
                    }
                }
            }
            after_outer = Some(c);
        }
        ctx.rng = rng;
        Ok(())
    }
}

/// Step equivalence with the PyTorch reference (`tests/fixtures/meta_step/make_fixture.py` runs
/// the reference's own `fit` for one inner and one outer step on real CIC-IDS2017 rows and records
/// what it computed). Dropout-like randomness is off on both sides; everything else is the
/// production code path.
#[cfg(test)]
mod step_tests {
    use super::*;
    use crate::detect::MetaLearnerParams;

    type Fixture = HashMap<String, Tensor>;

    fn fixture() -> Fixture {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/meta_step/fixture.safetensors");
        candle_core::safetensors::load(path, &Device::Cpu).unwrap()
    }

    fn params() -> MetaLearnerParams {
        MetaLearnerParams {
            enc_hidden: 32,
            embed_dim: 16,
            dec_hidden: 16,
            dropout: 0.0,
            drop_path: 0.0,
            feature_dropout: 0.0,
            ..Default::default()
        }
    }

    fn model(f: &Fixture, weights: &str, dev: &Device) -> MetaLearner {
        let d = f["d"].to_vec1::<i64>().unwrap()[0] as usize;
        let m = MetaLearner::new(params(), d, 0, dev).unwrap();
        for (n, v) in &m.params.vars {
            let t = f[&format!("{weights}/{n}")].to_device(dev).unwrap();
            v.set(&t.reshape(v.as_tensor().shape()).unwrap()).unwrap();
        }
        m
    }

    /// The GPU the `cuda` build's copies of these tests run on: they fail, rather than skip,
    /// where none is present, since a `cuda` build is made for a machine with one.
    #[cfg(feature = "cuda")]
    fn cuda() -> Device {
        Device::new_cuda(0).expect("the cuda build's tests need CUDA device 0")
    }

    /// A test on the CPU (the hand-written passes of `nn::train` and `nn::frozen`) and, in
    /// `cuda` builds, its copy on the GPU (candle's graph).
    macro_rules! on_devices {
        ($cpu:ident, $gpu:ident, $body:ident) => {
            #[test]
            fn $cpu() {
                $body(&Device::Cpu)
            }

            #[cfg(feature = "cuda")]
            #[test]
            fn $gpu() {
                $body(&cuda())
            }
        };
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// ‖a − b‖ / ‖b‖
    fn rel(a: &[f32], b: &[f32]) -> f64 {
        assert_eq!(a.len(), b.len());
        let num: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum();
        let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
        (num / den.max(1e-30)).sqrt()
    }

    /// Largest |a − b| over elements whose reference gradient is not tiny: Adam's first step is
    /// `lr·g/(|g| + 1e-8)`, so where |g| is at float32 noise level the update's sign is noise.
    /// Also counts, into `SKIPPED`, the elements left out and how many of them differ by more
    /// than the tolerance (both reported by the tests and bounded there).
    fn max_diff_where(a: &[f32], b: &[f32], g: &[f32], g_min: f32) -> f64 {
        let (mut skipped, mut skipped_off) = (0usize, 0usize);
        let mut worst = 0.0f64;
        for ((x, y), g) in a.iter().zip(b).zip(g) {
            let d = (*x as f64 - *y as f64).abs();
            if g.abs() > g_min {
                worst = worst.max(d);
            } else {
                skipped += 1;
                skipped_off += usize::from(d >= 1e-6);
            }
        }
        SKIPPED.with(|c| {
            let (n, k, off) = c.get();
            c.set((n + a.len(), k + skipped, off + skipped_off))
        });
        worst
    }

    /// Measured on the fixture (2026-12-06, see experiments/RESULTS.md): the weights the step
    /// tests leave out of the comparison for a tiny reference gradient (of 12,754 inner and
    /// 12,755 outer), and how many of those may still differ by ≥ 1e-6: none.
    const INNER_SKIPPED: usize = 11_075;
    const INNER_SKIPPED_OFF: usize = 0;
    const OUTER_SKIPPED: usize = 18;
    const OUTER_SKIPPED_OFF: usize = 0;

    thread_local! {
        /// (weights compared, of them skipped for |g| ≤ 1e-6, of those off by ≥ 1e-6).
        static SKIPPED: std::cell::Cell<(usize, usize, usize)> = const { std::cell::Cell::new((0, 0, 0)) };
    }

    on_devices!(
        inner_step_matches_the_reference,
        inner_step_matches_the_reference_on_cuda,
        inner_step_matches_the_reference_on
    );

    fn inner_step_matches_the_reference_on(dev: &Device) {
        let f = fixture();
        let m = model(&f, "init", dev);
        let mut opt = m.optimisers().unwrap();
        let x = &f["x_inner"].to_device(dev).unwrap();
        let out = m.inner_step(&mut opt, x, None, m.p.inner_lr, 1).unwrap();
        let want = f["inner_loss"].to_vec1::<f64>().unwrap()[0];
        assert!(
            (out.loss - want).abs() < 1e-5 * want.abs().max(1.0),
            "inner loss {} vs reference {want}",
            out.loss
        );
        for (n, v) in m
            .params
            .vars
            .iter()
            .filter(|(n, _)| !n.starts_with("odin."))
        {
            let g = flat(&out.grads[&v.as_tensor().id()]);
            let g_ref = flat(&f[&format!("inner_grad/{n}")]);
            assert!(
                rel(&g, &g_ref) < 1e-4,
                "{n}: gradient off by {}",
                rel(&g, &g_ref)
            );
            let w = flat(v.as_tensor());
            let w_ref = flat(&f[&format!("inner/{n}")]);
            let diff = max_diff_where(&w, &w_ref, &g_ref, 1e-6);
            assert!(diff < 1e-6, "{n}: weight after the step off by {diff}");
        }
        let (n, skipped, off) = SKIPPED.with(|c| c.get());
        eprintln!("inner step: {n} weights, {skipped} with |g| <= 1e-6 not compared, {off} of those off by >= 1e-6");
        assert!(skipped == INNER_SKIPPED && off == INNER_SKIPPED_OFF, "{skipped} / {off}");
    }

    on_devices!(
        outer_step_matches_the_reference,
        outer_step_matches_the_reference_on_cuda,
        outer_step_matches_the_reference_on
    );

    fn outer_step_matches_the_reference_on(dev: &Device) {
        let f = fixture();
        let m = model(&f, "inner", dev);
        let mut opt = m.optimisers().unwrap();
        let x = &f["x_outer"].to_device(dev).unwrap();
        // the J-step training ODIN input (eval-mode direction, no pull-back)
        let xt = m.odin(x, m.p.odin_steps_train, m.p.epsilon, false).unwrap();
        let (xt, xt_ref) = (flat(&xt), flat(&f["xt_outer"]));
        let same = xt
            .iter()
            .zip(&xt_ref)
            .filter(|(a, b)| (*a - *b).abs() < 1e-6)
            .count();
        assert!(
            same as f64 >= 0.999 * xt.len() as f64,
            "ODIN inputs: only {same} of {} elements agree",
            xt.len()
        );

        let labels = f["labels_outer"].to_vec1::<u8>().unwrap();
        let fams: Vec<FamilyId> = f["fams_outer"]
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as FamilyId)
            .collect();
        let p = m.p.clone();
        let lr = OuterLr {
            head: p.lr_head,
            last: p.lr_last_block,
            rho: p.lr_temperature,
        };
        let batch = OuterBatch {
            x,
            labels: &labels,
            fams: &fams,
            outer: &[0, 1],
        };
        let mut rng = SplitMix64::new(99);
        let out = m.outer_step(&mut opt, &batch, lr, &mut rng, 1).unwrap();
        let want = f["outer_losses"].to_vec1::<f64>().unwrap();
        assert_eq!(out.losses.len(), want.len(), "task count");
        for (a, b) in out.losses.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-5,
                "task losses {:?} vs reference {want:?}",
                out.losses
            );
        }
        let shared: Vec<&(String, Var)> = m
            .params
            .vars
            .iter()
            .filter(|(n, _)| n.starts_with("head.") || n.starts_with("enc.block2."))
            .collect();
        assert_eq!(shared.len(), opt.shared.len());
        for (n, v) in &shared {
            let g = flat(&out.grads[&v.as_tensor().id()]);
            let g_ref = flat(&f[&format!("outer_grad/{n}")]);
            assert!(
                rel(&g, &g_ref) < 1e-4,
                "{n}: PCGrad gradient off by {}",
                rel(&g, &g_ref)
            );
        }
        let rg = flat(&out.rho_grads[&m.rho.as_tensor().id()])[0];
        let rg_ref = flat(&f["rho_grad"])[0];
        assert!(
            (rg - rg_ref).abs() < 1e-5,
            "ρ gradient {rg} vs reference {rg_ref}"
        );
        for (n, v) in &m.params.vars {
            let w = flat(v.as_tensor());
            let w_ref = flat(&f[&format!("outer/{n}")]);
            let g_ref = match f.get(&format!("outer_grad/{n}")) {
                Some(g) => flat(g),
                None if n == "odin.rho" => vec![rg_ref],
                // frozen: must not move at all
                None => vec![1.0; w.len()],
            };
            let diff = max_diff_where(&w, &w_ref, &g_ref, 1e-6);
            assert!(
                diff < 1e-6,
                "{n}: weight after the outer step off by {diff}"
            );
        }
        let (n, skipped, off) = SKIPPED.with(|c| c.get());
        eprintln!("outer step: {n} weights, {skipped} with |g| <= 1e-6 not compared, {off} of those off by >= 1e-6; ODIN inputs: {same} of {} within 1e-6", xt.len());
        assert!(skipped == OUTER_SKIPPED && off == OUTER_SKIPPED_OFF, "{skipped} / {off}");
    }

    on_devices!(
        score_matches_the_reference,
        score_matches_the_reference_on_cuda,
        score_matches_the_reference_on
    );

    fn score_matches_the_reference_on(dev: &Device) {
        let f = fixture();
        let m = model(&f, "outer", dev);
        let s = m.score(&flat(&f["x_score"])).unwrap();
        let s_ref = f["score"].to_vec1::<f64>().unwrap();
        assert_eq!(s.len(), s_ref.len());
        for (a, b) in s.iter().zip(&s_ref) {
            assert!((a - b).abs() < 1e-5, "score {a} vs reference {b}");
        }
    }
}

#[cfg(test)]
mod pretrain_tests {
    use super::*;
    use crate::detect::MetaLearnerParams;
    use std::sync::atomic::AtomicBool;

    /// Stage 0 lowers the reconstruction error; afterwards the inner stage moves only the head
    /// and the last encoder block (spec §1.8).
    #[test]
    fn stage_0_learns_and_then_the_inner_stage_trains_head_and_last_block_only() {
        let d = 6;
        let mut g = SplitMix64::new(3);
        // correlated normals: 3 latent factors spread over 6 features
        let normals: Vec<f32> = (0..600)
            .flat_map(|_| {
                let z: Vec<f64> = (0..3).map(|_| g.next_normal()).collect();
                (0..d)
                    .map(|j| (z[j % 3] + 0.5 * z[(j + 1) % 3]) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        let p = MetaLearnerParams {
            enc_hidden: 32,
            embed_dim: 16,
            dec_hidden: 16,
            inner_batch: 64,
            pretrain_epochs: 8,
            ..Default::default()
        };
        let m = MetaLearner::new(p, d, 0, &Device::Cpu).unwrap();
        let stop = AtomicBool::new(false);
        let mut losses = Vec::new();
        let mut emit = |e: Event| {
            if let Event::Progress {
                stage: Stage::Pretrain,
                loss,
                ..
            } = e
            {
                losses.push(loss)
            }
        };
        let mut ctx = Ctx {
            emit: &mut emit,
            stop: &stop,
            rng: SplitMix64::new(1),
            device: Device::Cpu,
            probe: None,
        };
        let mut rng = SplitMix64::new(2);
        m.pretrain(&normals, &mut rng, &mut ctx).unwrap();
        assert_eq!(losses.len(), 8 * 600usize.div_ceil(64));
        let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
        let last: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
        assert!(last < 0.5 * first, "reconstruction loss {first} -> {last}");

        let snapshot = |m: &MetaLearner| -> Vec<(String, Vec<f32>)> {
            m.params
                .vars
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
                    )
                })
                .collect()
        };
        let before = snapshot(&m);
        let mut opt = m.optimisers().unwrap();
        let x = m.tensor(&normals[..64 * d]).unwrap();
        m.inner_step(&mut opt, &x, None, m.p.inner_lr, 1).unwrap();
        let last = m.enc.last_block_prefix();
        for ((n, a), (_, b)) in before.iter().zip(snapshot(&m)) {
            let moved = a != &b;
            let trainable = n.starts_with("head.") || n.starts_with(&last);
            // LayerNorm β of the last block can have a zero gradient only by accident; every
            // trainable tensor moves, nothing else does
            assert_eq!(moved, trainable, "{n}: moved {moved}");
        }
    }
}

#[cfg(test)]
mod curriculum_tests {
    use super::*;
    use crate::detect::{Block, CheckpointPools, MetaLearnerParams, TrainView};
    use crate::split::{Curriculum, EpisodeSampler, EpisodeSpec};
    use std::sync::atomic::AtomicBool;

    /// With `ema_hardness` the fit records each seen family's validation hardness after every
    /// episode (spec §1.11.4), so the sampler's hardness leaves its initial 1.0 and the outer
    /// families drawn differ from those of a sampler that was told nothing; a held-out family's
    /// pool is never recorded.
    #[test]
    fn the_fit_records_hardness_and_it_changes_the_draws() {
        let d = 4;
        let mut g = SplitMix64::new(5);
        let mut rows = |n: usize, shift: f64| -> Vec<f32> {
            (0..n * d)
                .map(|j| (g.next_normal() + if j % d == 0 { shift } else { 0.0 }) as f32)
                .collect()
        };
        // seen families 1..=6 at growing distance from the normals; 9 is "held out"
        let seen: Vec<u32> = (1..=6).collect();
        let normals = rows(300, 0.0);
        let few_shot: Vec<(u32, Vec<f32>)> =
            seen.iter().map(|&f| (f, rows(8, 0.5 * f as f64))).collect();
        let val_n = rows(60, 0.0);
        let families: Vec<(u32, Vec<f32>)> = seen
            .iter()
            .chain(&[9])
            .map(|&f| (f, rows(20, 0.5 * f as f64)))
            .collect();
        let mut vx = val_n.clone();
        let mut vy = vec![0u8; 60];
        for (_, x) in &families[..6] {
            vx.extend_from_slice(x);
            vy.extend(std::iter::repeat_n(1u8, 20));
        }
        let spec = EpisodeSpec {
            curriculum: Curriculum::EmaHardness,
            outer_families: 2,
            shots: 4,
            ..EpisodeSpec::default()
        };
        let n_episodes = 6;
        let mut view = TrainView {
            d,
            normals,
            few_shot,
            seen_train: Vec::new(),
            // the meta-learner does not read the validation rows' families
            val_family: vec![0; vy.len()],
            val: Block { x: vx, y: vy },
            checkpoint: CheckpointPools {
                normals: val_n,
                families,
                val_index: None,
            },
            episodes: EpisodeSampler::new(&spec, &seen, &[8; 6], &[], 3),
            n_episodes,
            family_names: (0..10).map(|i| format!("f{i}")).collect(),
        };
        let mut twin = EpisodeSampler::new(&spec, &seen, &[8; 6], &[], 3);
        let p = MetaLearnerParams {
            enc_hidden: 16,
            embed_dim: 8,
            dec_hidden: 8,
            inner_per_family: 64,
            inner_batch: 32,
            outer_batch: 16,
            pretrain_epochs: 0,
            ..Default::default()
        };
        let mut m = MetaLearner::new(p, d, 0, &Device::Cpu).unwrap();
        let stop = AtomicBool::new(false);
        let mut drawn = Vec::new();
        let mut emit = |e: Event| {
            if let Event::Episode(ep) = e {
                drawn.push(ep.outer)
            }
        };
        let mut ctx = Ctx {
            emit: &mut emit,
            stop: &stop,
            rng: SplitMix64::new(1),
            device: Device::Cpu,
            probe: None,
        };
        m.fit(&mut view, &mut ctx).unwrap();
        assert_eq!(drawn.len(), n_episodes);
        let h = view.episodes.hardness();
        assert!(h.iter().all(|&x| x != 1.0), "hardness not recorded: {h:?}");
        let untold: Vec<Vec<u32>> = (0..n_episodes).map(|_| twin.next_episode().outer).collect();
        assert_eq!(drawn[0], untold[0], "the first episode is drawn before any record");
        assert_ne!(drawn, untold, "recorded hardness changes which families are drawn");
    }
}

#[cfg(test)]
mod outer_mode_tests {
    use super::*;
    use crate::detect::MetaLearnerParams;
    use crate::split::Pool;

    fn model(drop_path: f64) -> (MetaLearner, Vec<f32>) {
        let d = 5;
        let p = MetaLearnerParams {
            enc_hidden: 16,
            embed_dim: 8,
            dec_hidden: 8,
            dropout: 0.0,
            feature_dropout: 0.0,
            drop_path,
            ..Default::default()
        };
        let m = MetaLearner::new(p, d, 7, &Device::Cpu).unwrap();
        let mut g = SplitMix64::new(11);
        let x: Vec<f32> = (0..40 * d).map(|_| g.next_normal() as f32).collect();
        (m, x)
    }

    /// The outer stage runs the encoder's last block in train mode — its drop-path active in
    /// every pass, the ODIN directions included — as the reference's `_outer`. With drop-path
    /// 1 that block is always skipped there: the perturbed inputs are those of a model without
    /// it and the block gets no gradient.
    #[test]
    fn the_outer_stage_runs_the_last_block_in_train_mode() {
        let (m, x) = model(1.0);
        let x = m.tensor(&x).unwrap();
        let p = m.p.clone();
        let in_train = m
            .odin_t(&x, p.odin_steps_train, p.epsilon, false, Mode::Train)
            .unwrap();
        let in_eval = m.odin(&x, p.odin_steps_train, p.epsilon, false).unwrap();
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_ne!(
            v(&in_train),
            v(&in_eval),
            "the skipped block changes the directions"
        );
        let labels: Vec<u8> = (0..40).map(|i| (i >= 20) as u8).collect();
        let fams: Vec<FamilyId> = (0..40).map(|i| (i % 2) as FamilyId).collect();
        let mut opt = m.optimisers().unwrap();
        let out = m
            .outer_step(
                &mut opt,
                &OuterBatch {
                    x: &x,
                    labels: &labels,
                    fams: &fams,
                    outer: &[0, 1],
                },
                OuterLr {
                    head: p.lr_head,
                    last: p.lr_last_block,
                    rho: p.lr_temperature,
                },
                &mut SplitMix64::new(1),
                1,
            )
            .unwrap();
        assert_eq!(v(&out.perturbed), v(&in_train));
        let last = m.params.with_prefix(&m.enc.last_block_prefix());
        assert!(!last.is_empty());
        for var in &last {
            let g = v(&out.grads[&var.as_tensor().id()]);
            assert!(
                g.iter().all(|&x| x == 0.0),
                "the skipped block got a gradient"
            );
        }
        let head = m.params.with_prefix("head.");
        assert!(head.iter().any(|var| v(&out.grads[&var.as_tensor().id()])
            .iter()
            .any(|&x| x != 0.0)));
    }

    #[test]
    fn outer_normals_are_drawn_without_replacement() {
        let mut rng = SplitMix64::new(5);
        for (n, k) in [(10, 10), (1000, 100), (3, 2)] {
            let rows = draw_distinct(&mut rng, n, k);
            let set: std::collections::HashSet<_> = rows.iter().collect();
            assert_eq!(set.len(), k, "n {n}, k {k}: {rows:?}");
            assert!(rows.iter().all(|&r| r < n));
        }
        // more draws than rows: every row once, then repeats
        let rows = draw_distinct(&mut rng, 3, 5);
        let set: std::collections::HashSet<_> = rows.iter().collect();
        assert_eq!((rows.len(), set.len()), (5, 3));
    }

    /// τ* is computed from the after-outer checkpoint's scores looked up through `val_index`;
    /// they must be exactly what scoring the validation pool itself gives.
    #[test]
    fn reused_checkpoint_scores_equal_scoring_the_validation_pool() {
        let (m, _) = model(0.05);
        let d = m.d;
        let mut g = SplitMix64::new(8);
        // table rows 0..30 normal, 100.. family 1, 200.. family 2
        let feature = |r: usize| -> Vec<f32> {
            let mut h = SplitMix64::new(r as u64);
            (0..d)
                .map(|_| (h.next_normal() * (1.0 + r as f64 / 100.0)) as f32)
                .collect()
        };
        let pool = |normals: Vec<usize>, anomalies: Vec<usize>, f: FamilyId| {
            let rows: Vec<usize> = normals.iter().chain(&anomalies).copied().collect();
            let mut label = vec![0u8; normals.len()];
            label.extend(vec![1u8; anomalies.len()]);
            (
                f,
                Pool {
                    family: vec![f; rows.len()],
                    rows,
                    label,
                },
            )
        };
        let pools = vec![
            pool((0..12).collect(), (100..112).collect(), 1),
            pool((0..30).collect(), (200..230).collect(), 2),
        ];
        // a validation pool: some normals and both families' rows, interleaved
        let mut val_rows: Vec<usize> = (0..20).collect();
        for i in 0..10 {
            val_rows.push(100 + i);
            val_rows.push(200 + (g.below(30) as usize));
        }
        let scale =
            |rows: &[usize]| -> Vec<f32> { rows.iter().flat_map(|&r| feature(r)).collect() };
        let pools_x = CheckpointPools {
            val_index: CheckpointPools::index_of(&pools, &val_rows),
            ..CheckpointPools::from_pools(&pools, &scale)
        };
        let ix = pools_x
            .val_index
            .clone()
            .expect("every validation row is a checkpoint row");
        let c = m.checkpoint_scores(&pools_x).unwrap();
        let reused: Vec<f64> = ix.iter().map(|&i| c.all[i]).collect();
        let direct = m.score_block(&scale(&val_rows)).unwrap().0;
        assert_eq!(reused, direct);
    }
}
