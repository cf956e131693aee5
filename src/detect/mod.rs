//! Detectors: one trait, one module per method, one registry. Every detector scores with
//! **higher = more anomalous**, converting at its own edge.
//!
//! To add a method: write `detect/NAME.rs` with its parameter struct implementing
//! [`MethodSpec`] and its [`Detector`], then add one line to the `registry!` list below.

pub mod cost;
pub mod registry;

pub use registry::{BuildCtx, Labels, MethodInfo, MethodSpec, ParamError, ParamInfo, ParamKind};

registry::registry! {
    meta => MetaLearner(MetaLearnerParams),
    odin => Odin(OdinParams),
    odin_sweep => OdinSweep(OdinSweepParams),
    iforest => IsolationForest(IsolationForestParams),
    ecod => Ecod(EcodParams),
    ocsvm => OneClassSvm(OneClassSvmParams),
    deep_svdd => DeepSvdd(DeepSvddParams),
    deep_sad => DeepSad(DeepSadParams),
    devnet => DevNet(DevNetParams),
    mlp => Mlp(MlpParams),
    fusion => Fusion(FusionParams),
    deep_coral => DeepCoral(DeepCoralParams),
    mtae => Mtae(MtaeParams),
    mtl_red => MtlRed(MtlRedParams),
    resad => ResAd(ResAdParams),
}
pub use meta::{InnerMode, PcgradTasks, TauPolicy};

impl Default for Method {
    /// The method heldout is about: the meta-learner with the paper's settings.
    fn default() -> Self {
        Method::MetaLearner(MetaLearnerParams::default())
    }
}

use crate::data::FamilyId;
use crate::rng::SplitMix64;
use crate::split::EpisodeSampler;
use candle_core::Device;
use std::sync::atomic::{AtomicBool, Ordering};

/// A row-major block of scaled features with labels (0 normal, 1 anomaly).
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub x: Vec<f32>,
    pub y: Vec<u8>,
}

impl Block {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// The checkpoint blocks of all families, stored so that the normal rows they share are scored
/// once: family `f`'s block is the first `m_f` rows of `normals` and its `m_f` anomalies.
#[derive(Debug, Clone, Default)]
pub struct CheckpointPools {
    pub normals: Vec<f32>,
    /// (family, its anomalies; their count is `m_f`).
    pub families: Vec<(FamilyId, Vec<f32>)>,
    /// Where each row of the validation pool sits among the checkpoint rows (normals, then every
    /// family's anomalies in order), when all of them do: the after-outer checkpoint's scores
    /// then give τ* without scoring the pool again.
    pub val_index: Option<Vec<usize>>,
}

impl CheckpointPools {
    /// From balanced pools (normals first, then as many anomalies), all taking their normals from
    /// the front of the same list, as [`crate::split::build_task`] makes them; `scale` gathers
    /// and scales rows.
    pub fn from_pools(
        pools: &[(FamilyId, crate::split::Pool)],
        scale: &dyn Fn(&[usize]) -> Vec<f32>,
    ) -> Self {
        let longest = pools
            .iter()
            .max_by_key(|(_, p)| p.rows.len())
            .map(|(_, p)| p.rows[..p.rows.len() / 2].to_vec())
            .unwrap_or_default();
        let families = pools
            .iter()
            .map(|(f, p)| {
                let m = p.rows.len() / 2;
                debug_assert_eq!(&p.rows[..m], &longest[..m]);
                (*f, scale(&p.rows[m..]))
            })
            .collect();
        CheckpointPools {
            normals: scale(&longest),
            families,
            val_index: None,
        }
    }

    /// For each of `rows` (table row ids), its position among the checkpoint rows built by
    /// [`CheckpointPools::from_pools`] from the same `pools`; `None` unless every row is there.
    pub fn index_of(
        pools: &[(FamilyId, crate::split::Pool)],
        rows: &[usize],
    ) -> Option<Vec<usize>> {
        let longest = pools.iter().max_by_key(|(_, p)| p.rows.len())?;
        let normals = &longest.1.rows[..longest.1.rows.len() / 2];
        let mut at: std::collections::HashMap<usize, usize> =
            normals.iter().enumerate().map(|(i, &r)| (r, i)).collect();
        let mut off = normals.len();
        for (_, p) in pools {
            let m = p.rows.len() / 2;
            for (i, &r) in p.rows[m..].iter().enumerate() {
                at.entry(r).or_insert(off + i);
            }
            off += p.rows.len() - m;
        }
        rows.iter().map(|r| at.get(r).copied()).collect()
    }
}

/// Everything a detector may learn from in one (seed, rotation), already scaled.
pub struct TrainView {
    pub d: usize,
    /// Normal training rows.
    pub normals: Vec<f32>,
    /// Few-shot anomalies of each seen family.
    pub few_shot: Vec<(FamilyId, Vec<f32>)>,
    /// Every training row of each seen family: filled only for methods whose
    /// [`MethodInfo::labels`] is [`Labels::AllSeen`] (empty otherwise).
    pub seen_train: Vec<(FamilyId, Vec<f32>)>,
    /// The seen-family validation pool (threshold selection).
    pub val: Block,
    /// The family of each row of `val` (normals carry their normal family): heldout's fusion
    /// leaves one seen family out at a time with it.
    pub val_family: Vec<FamilyId>,
    /// Balanced validation blocks per family for checkpoint curves (logging only).
    pub checkpoint: CheckpointPools,
    /// The episode stream.
    pub episodes: EpisodeSampler,
    pub n_episodes: usize,
    /// Families by id, for messages.
    pub family_names: Vec<String>,
}

/// The three snapshots of an episode (spec §1.12); training steps are also tagged with the
/// stage they belong to, including the optional stage-0 pre-training (spec §1.8, episode 0, no
/// checkpoint). Methods without episodes have one snapshot, `Final`: the trained model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Pre,
    Inner,
    Outer,
    Pretrain,
    Final,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pre => "pre",
            Stage::Inner => "inner",
            Stage::Outer => "outer",
            Stage::Pretrain => "pretrain",
            Stage::Final => "final",
        }
    }
}

/// Scores of one family's checkpoint block.
#[derive(Debug, Clone)]
pub struct FamilyScores {
    pub family: FamilyId,
    pub scores: Vec<f64>,
    pub labels: Vec<u8>,
    /// Mean calibrated normal logit of normals minus that of anomalies.
    pub margin: f64,
}

/// What a detector reports while it trains. Episodic methods (the meta-learner) report
/// `Progress`, `Episode`, `Checkpoint`, `Pcgrad` and `Probe`; methods trained in epochs or built
/// piece by piece report `Step` and `Epoch`; every method may report `Threshold`.
#[derive(Debug, Clone)]
pub enum Event {
    /// Work done in a method without episodes: `done` of `total` units of `phase` (optimiser
    /// steps, trees, solver iterations…). For progress only; not written to the run folder.
    Step {
        phase: &'static str,
        done: usize,
        total: usize,
    },
    /// An epoch of a method trained in epochs ended: its loss terms, each averaged over the
    /// epoch's steps (the run folder's `epochs.csv`).
    Epoch {
        phase: &'static str,
        /// 1-based, of `epochs`.
        epoch: usize,
        epochs: usize,
        terms: Vec<(&'static str, f64)>,
    },
    /// A training step of an episodic method.
    Progress {
        episode: usize,
        stage: Stage,
        step: usize,
        steps: usize,
        loss: f64,
    },
    /// An episode's families.
    Episode(crate::split::Episode),
    /// A checkpoint's scores on the fixed per-family pools.
    Checkpoint {
        episode: usize,
        stage: Stage,
        temperature: f64,
        families: Vec<FamilyScores>,
    },
    /// PCGrad of one outer step: cosines between task gradients and projections; task 0 is the
    /// inner-consistency task, task k ≥ 1 the k-th outer family.
    Pcgrad {
        episode: usize,
        step: usize,
        tasks: Vec<FamilyId>,
        stats: crate::nn::PcgradStats,
    },
    /// The threshold chosen on the validation pool after an episode.
    Threshold { episode: usize, tau: f64, f1: f64 },
    /// The model as it is now, seen through [`Ctx::probe`]: emitted only when a probe is set, at
    /// the start of every episode (stage `Pre`, step 0) and after every inner and outer update
    /// (right after that update's `Progress`).
    Probe {
        episode: usize,
        stage: Stage,
        /// The update within its stage (1-based; 0 for `Pre`) and the stage's updates.
        step: usize,
        steps: usize,
        /// The score of each probe point (as test scoring: higher = more anomalous).
        scores: Vec<f64>,
        /// The training-time ODIN perturbation x̃ of each probe arrow row (same layout as
        /// [`Probe::arrows`], which holds the x each one starts from).
        perturbed: Vec<f32>,
        /// T at this moment.
        temperature: f64,
    },
}

/// What a detector should report about itself after every update, for teaching (the 2-D
/// playground): rows to score and rows whose ODIN perturbation to show. Row-major, `d` columns,
/// scaled like the training data. Computing it uses no training randomness, so a run with a
/// probe trains exactly as one without.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Points to score (e.g. a grid over the data).
    pub points: Vec<f32>,
    /// Rows whose training-time ODIN perturbation to report.
    pub arrows: Vec<f32>,
}

/// What `fit` gets besides data: event sink, stop flag, seeded RNG, device, and an optional
/// probe (`None` outside teaching; detectors may ignore it).
pub struct Ctx<'a> {
    pub emit: &'a mut dyn FnMut(Event),
    pub stop: &'a AtomicBool,
    pub rng: SplitMix64,
    pub device: Device,
    pub probe: Option<Probe>,
}

impl Ctx<'_> {
    /// Whether the user asked to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Why training ended early or failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("stopped")]
    Stopped,
    #[error("the loss became NaN in episode {episode}, {stage} stage — lower the learning rate or check the data for extreme values")]
    NanLoss { episode: usize, stage: &'static str },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Other(String),
}

/// A trained anomaly detector.
pub trait Detector {
    /// Name for tables and folders.
    fn name(&self) -> String;
    /// Trains on `data`, reporting through `ctx`.
    fn fit(&mut self, data: &mut TrainView, ctx: &mut Ctx) -> Result<(), DetectError>;
    /// Scores rows (row-major, `d` columns): higher = more anomalous.
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError>;
    /// The decision threshold: τ* chosen on the validation pool, or the 0.5 fallback with its
    /// reason.
    fn threshold(&self) -> Threshold;
    /// Saves the weights as safetensors (or, for models that are not tensors, as JSON: see
    /// [`Detector::model_extension`]).
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError>;
    /// The extension of the file `save` writes.
    fn model_extension(&self) -> &'static str {
        "safetensors"
    }
}

/// Why a plain model's fit did not produce a model (the classical detectors').
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    /// The stop flag was set.
    #[error("stopped")]
    Stopped,
    /// Invalid parameters or training data, or a degenerate solution; the message says which.
    #[error("{0}")]
    Invalid(String),
}

impl From<FitError> for DetectError {
    fn from(e: FitError) -> Self {
        match e {
            FitError::Stopped => DetectError::Stopped,
            FitError::Invalid(m) => DetectError::Other(m),
        }
    }
}

/// A model that is fitted once and then scores rows: what the standard detectors implement.
/// [`Fitted`] turns one into a [`Detector`] (τ* on the validation pool, the events, the stop flag
/// around it), so a method file holds only its model and its [`MethodSpec`].
pub trait Fit: Sized {
    type Params: Clone;
    /// Trains on `data` (already scaled), reporting progress through `ctx`.
    fn fit(
        p: &Self::Params,
        data: &TrainView,
        seed: u64,
        ctx: &mut Ctx,
    ) -> Result<Self, DetectError>;
    /// Higher = more anomalous.
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError>;
    /// Writes the fitted model to `path`, a file with extension [`Fit::MODEL_EXTENSION`].
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError>;
    /// `safetensors` for tensor models, `json` for models written by [`save_json`].
    const MODEL_EXTENSION: &'static str = "safetensors";
}

/// A [`Fit`] model as a [`Detector`].
pub struct Fitted<M: Fit> {
    p: M::Params,
    name: String,
    seed: u64,
    model: Option<M>,
    tau: Threshold,
}

impl<M: Fit> Fitted<M> {
    pub fn new(p: M::Params, name: String, seed: u64) -> Self {
        Fitted {
            p,
            name,
            seed,
            model: None,
            tau: Threshold::fallback("not fitted"),
        }
    }

    fn model(&self) -> Result<&M, DetectError> {
        self.model
            .as_ref()
            .ok_or_else(|| DetectError::Other(format!("{}: score called before fit", self.name)))
    }
}

impl<M: Fit> Detector for Fitted<M> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn fit(&mut self, data: &mut TrainView, ctx: &mut Ctx) -> Result<(), DetectError> {
        let m = M::fit(&self.p, data, self.seed, ctx)?;
        if ctx.stopped() {
            return Err(DetectError::Stopped);
        }
        self.tau = if data.val.is_empty() {
            Threshold::fallback(EMPTY_VAL)
        } else {
            let scores = m.score(&data.val.x)?;
            val_threshold(&data.val, &scores, ctx)
        };
        self.model = Some(m);
        Ok(())
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        self.model()?.score(x)
    }
    fn threshold(&self) -> Threshold {
        self.tau.clone()
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        self.model()?.save(path)
    }
    fn model_extension(&self) -> &'static str {
        M::MODEL_EXTENSION
    }
}

/// The scores of a trained detector on the checkpoint pools, per family (its balanced block:
/// the first `m_f` normals and its `m_f` anomalies), as the meta-learner's checkpoints report
/// them; `margin` is NaN (it is the meta-learner's calibrated-logit gap).
pub fn final_checkpoint(
    det: &dyn Detector,
    pools: &CheckpointPools,
    d: usize,
) -> Result<Vec<FamilyScores>, DetectError> {
    let mut rows = pools.normals.clone();
    for (_, a) in &pools.families {
        rows.extend_from_slice(a);
    }
    if rows.is_empty() || d == 0 {
        return Ok(Vec::new());
    }
    let all = det.score(&rows)?;
    let n_normals = pools.normals.len() / d;
    let mut off = n_normals;
    let mut out = Vec::with_capacity(pools.families.len());
    for (f, a) in &pools.families {
        let m = a.len() / d;
        if m == 0 {
            continue;
        }
        let mut scores = all[..m.min(n_normals)].to_vec();
        scores.extend_from_slice(&all[off..off + m]);
        off += m;
        let mut labels = vec![0u8; m.min(n_normals)];
        labels.extend(std::iter::repeat_n(1u8, m));
        out.push(FamilyScores {
            family: *f,
            scores,
            labels,
            margin: f64::NAN,
        });
    }
    Ok(out)
}

/// The [`Detector`] of a [`Fit`] model: what every such method's `MethodSpec::build` returns.
pub fn fitted<M: Fit + 'static>(
    p: M::Params,
    name: String,
    seed: u64,
) -> Result<Box<dyn Detector>, DetectError>
where
    M::Params: 'static,
{
    Ok(Box::new(Fitted::<M>::new(p, name, seed)))
}

/// A `progress(done, total)` callback for a plain model's fit that reports `Event::Step`s of
/// `phase`.
pub fn step_progress<'a>(
    emit: &'a mut dyn FnMut(Event),
    phase: &'static str,
) -> impl FnMut(usize, usize) + 'a {
    move |done, total| emit(Event::Step { phase, done, total })
}

/// The decision threshold a detector settled on, and how it was chosen (the `threshold`
/// column of `metrics.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub tau: f64,
    pub rule: ThresholdRule,
}

/// How a [`Threshold`] was chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdRule {
    /// τ* = the best-F1 threshold on the seen-family validation pool (PROTOCOL §9).
    ValBestF1,
    /// No validation pool could give τ*: 0.5 was used, for the reason given. The runner warns
    /// in the log and in `summary.md`, and `metrics.csv` says `fallback_0.5`.
    Fallback(String),
}

impl Threshold {
    /// The fixed 0.5 used when τ* cannot be chosen, with the reason.
    pub fn fallback(reason: impl Into<String>) -> Self {
        Threshold {
            tau: 0.5,
            rule: ThresholdRule::Fallback(reason.into()),
        }
    }

    /// The name written in `metrics.csv`'s `threshold` column.
    pub fn label(&self) -> &'static str {
        match self.rule {
            ThresholdRule::ValBestF1 => "val_best_f1",
            ThresholdRule::Fallback(_) => "fallback_0.5",
        }
    }

    /// The reason for a fallback, `None` for τ*.
    pub fn fallback_reason(&self) -> Option<&str> {
        match &self.rule {
            ThresholdRule::ValBestF1 => None,
            ThresholdRule::Fallback(r) => Some(r),
        }
    }

    /// τ* on the validation pool `labels` / `scores` (with its F1), or the fallback naming why
    /// the pool cannot give it (empty, or one class only).
    pub fn best_f1_on_val(labels: &[bool], scores: &[f64]) -> (Threshold, Option<f64>) {
        if labels.is_empty() {
            return (Threshold::fallback(EMPTY_VAL), None);
        }
        match crate::eval::best_f1_threshold(labels, scores) {
            Ok(b) => (
                Threshold {
                    tau: b.tau,
                    rule: ThresholdRule::ValBestF1,
                },
                Some(b.f1),
            ),
            Err(e) => (
                Threshold::fallback(format!(
                    "the seen-family validation pool cannot give τ* ({e})"
                )),
                None,
            ),
        }
    }
}

/// The fallback reason when there is no validation pool at all.
pub const EMPTY_VAL: &str =
    "the seen-family validation pool is empty (too few rows per seen family for a validation split)";

/// τ* = the best-F1 threshold on the seen-family validation pool (PROTOCOL §9), announced as an
/// [`Event::Threshold`]; the 0.5 fallback, with its reason, when the pool cannot give one.
pub fn val_threshold(val: &Block, scores: &[f64], ctx: &mut Ctx) -> Threshold {
    let labels: Vec<bool> = val.y.iter().map(|&y| y == 1).collect();
    let (t, f1) = Threshold::best_f1_on_val(&labels, scores);
    if let Some(f1) = f1 {
        (ctx.emit)(Event::Threshold {
            episode: 1,
            tau: t.tau,
            f1,
        });
    }
    t
}

/// `f(i)` for i in 0..n on up to `threads` scoped threads (at most one per `min_per_thread`
/// items), each thread taking one fixed, contiguous range of i; results in order. Each value
/// depends on its i only, so the output does not depend on `threads`. The scorers of the
/// classical detectors use it with `threads` = [`crate::nn::frozen_threads`] (HELDOUT_THREADS).
pub fn par_rows<T: Send>(
    n: usize,
    threads: usize,
    min_per_thread: usize,
    f: &(dyn Fn(usize) -> T + Sync),
) -> Vec<T> {
    let threads = threads.min(n / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let block = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(block)
            .map(|a| {
                let b = (a + block).min(n);
                let h = std::thread::Builder::new()
                    .spawn_scoped(s, move || (a..b).map(f).collect::<Vec<T>>());
                (a, b, h)
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for (a, b, h) in handles {
            match h {
                Ok(h) => match h.join() {
                    Ok(v) => out.extend(v),
                    Err(e) => std::panic::resume_unwind(e),
                },
                // no thread could be started: do this range here
                Err(_) => out.extend((a..b).map(f)),
            }
        }
        out
    })
}

/// The rows of every family in `v`, one after another (a method's labelled anomalies).
pub fn concat_rows(v: &[(FamilyId, Vec<f32>)]) -> Vec<f32> {
    v.iter().flat_map(|(_, x)| x.iter().copied()).collect()
}

/// Reports a finished epoch of a method trained in epochs: its loss terms (`Event::Epoch`) and
/// the progress (`Event::Step`, epochs done of all epochs of the phase).
pub fn emit_epoch(
    emit: &mut dyn FnMut(Event),
    phase: &'static str,
    epoch: usize,
    epochs: usize,
    terms: &[(&'static str, f64)],
) {
    emit(Event::Step {
        phase,
        done: epoch,
        total: epochs,
    });
    emit(Event::Epoch {
        phase,
        epoch,
        epochs,
        terms: terms.to_vec(),
    });
}

/// numpy's pairwise summation of a contiguous f64 array (`pairwise_sum_DOUBLE`): how
/// `S.sum(1)` (ECOD's row scores) and `X.var()` (the one-class SVM's γ = 'scale') add, so that
/// the classical detectors reproduce the reference's numbers to the last bit.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, v| s + v)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        for c in a[8..full].chunks_exact(8) {
            for (rk, ck) in r.iter_mut().zip(c) {
                *rk += ck;
            }
        }
        let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[full..] {
            s += v;
        }
        s
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Checks the shape and finiteness of a training matrix (row-major, `d` columns) of the
/// classical detectors; returns the number of rows (at most `u32::MAX`, their row index type).
pub fn check_training(x: &[f32], d: usize) -> Result<usize, FitError> {
    if d == 0 {
        return Err(FitError::Invalid(
            "the training data have no features (d = 0)".into(),
        ));
    }
    if x.is_empty() {
        return Err(FitError::Invalid("no training rows".into()));
    }
    if x.len() % d != 0 {
        return Err(FitError::Invalid(format!(
            "the training data length {} is not a multiple of the {d} features",
            x.len()
        )));
    }
    if let Some(k) = x.iter().position(|v| !v.is_finite()) {
        return Err(FitError::Invalid(format!(
            "training row {} feature {} is not finite ({})",
            k / d,
            k % d,
            x[k]
        )));
    }
    if x.len() / d > u32::MAX as usize {
        return Err(FitError::Invalid(format!(
            "too many training rows ({}; at most {})",
            x.len() / d,
            u32::MAX
        )));
    }
    Ok(x.len() / d)
}

/// Writes a serialisable model as JSON (for models that are not tensors).
pub fn save_json<T: serde::Serialize>(
    model: &T,
    path: &std::path::Path,
) -> Result<(), DetectError> {
    let text = serde_json::to_vec(model).map_err(|e| DetectError::Other(e.to_string()))?;
    crate::atomic::write_atomic(path, text).map_err(|e| DetectError::Other(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::Pool;

    fn pool(normals: &[usize], anomalies: &[usize], f: FamilyId) -> (FamilyId, Pool) {
        let rows: Vec<usize> = normals.iter().chain(anomalies).copied().collect();
        let mut label = vec![0u8; normals.len()];
        label.extend(vec![1u8; anomalies.len()]);
        let family = vec![f; rows.len()];
        (
            f,
            Pool {
                rows,
                label,
                family,
            },
        )
    }

    #[test]
    fn val_rows_are_located_among_checkpoint_rows() {
        // normals 10, 11, 12 (the longest block's); family 1: 20, 21; family 2: 30, 31, 32
        let pools = [
            pool(&[10, 11], &[20, 21], 1),
            pool(&[10, 11, 12], &[30, 31, 32], 2),
        ];
        let c = CheckpointPools::from_pools(&pools, &|rows: &[usize]| {
            rows.iter().map(|&r| r as f32).collect()
        });
        // the concatenation the positions refer to
        let mut all = c.normals.clone();
        for (_, a) in &c.families {
            all.extend(a);
        }
        let rows = [12, 10, 31, 20, 32];
        let ix = CheckpointPools::index_of(&pools, &rows).unwrap();
        let got: Vec<usize> = ix.iter().map(|&i| all[i] as usize).collect();
        assert_eq!(got, rows);
        // a row outside every block: no index
        assert!(CheckpointPools::index_of(&pools, &[10, 99]).is_none());
    }
}
