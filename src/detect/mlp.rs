//! The supervised MLP baseline (reference `refbench/deep.py`, `mlp_fewshot` / `mlp_full`):
//! `D → 256 → 128 → 1` with ReLU, trained with binary cross-entropy on logits by the reference's
//! `_train_balanced` schedule — `epochs` passes over the normal rows, each step `half_batch`
//! normals in the order of a fresh permutation plus as many anomalies drawn uniformly with
//! replacement; AdamW, global gradient-norm clipping, cosine decay to 0 over all steps.
//! Score: `σ(logit)` computed in `f64` (higher = more anomalous).
//!
//! The two reference variants differ only in the anomaly rows the caller passes
//! ([`AnomalyRows`]): the few-shot rows (`mlp_fewshot`) or all seen-family train rows (`mlp_full`).

use super::DetectError;
use crate::nn::{
    clip_grad_norm, cosine_lr, Adam, AdamConfig, Linear, Params,
};
pub use crate::nn::ops::{bce_mean, const_lhs_matmul, fusable, linear_act, linear_act_composed, with_f32};
use crate::rng::SplitMix64;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

type R<T> = Result<T, DetectError>;

/// The per-epoch report of a fit: `(stage, epoch (1-based), epochs, &[(term, mean over the
/// epoch's steps)])`.
pub type EpochDone<'a> = dyn FnMut(&'static str, usize, usize, &[(&'static str, f64)]) + 'a;

/// Which labelled anomalies the MLP trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyRows {
    /// The few-shot rows of the seen families (reference `mlp_fewshot`).
    #[default]
    FewShot,
    /// Every train row of the seen families (reference `mlp_full`, an upper reference).
    AllSeen,
}

/// Settings of the supervised MLP; the defaults are the reference's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpParams {
    /// Widths of the hidden ReLU layers, input side first.
    pub hidden: Vec<usize>,
    /// Passes over the normal training rows.
    pub epochs: usize,
    /// Normal rows per step; each step adds as many anomalies drawn with replacement.
    pub half_batch: usize,
    /// Peak AdamW learning rate (cosine-decayed to 0 over all steps).
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Largest global L2 norm of the gradient (larger gradients are scaled down).
    pub clip_norm: f64,
    /// Which labelled anomalies to train on: the few-shot rows or all seen-family train rows.
    pub anomalies: AnomalyRows,
}

impl Default for MlpParams {
    fn default() -> Self {
        MlpParams {
            hidden: vec![256, 128],
            epochs: 5,
            half_batch: 128,
            lr: 1e-3,
            weight_decay: 1e-4,
            clip_norm: 1.0,
            anomalies: AnomalyRows::FewShot,
        }
    }
}

impl MlpParams {
    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.hidden.is_empty() || self.hidden.len() > 8 {
            return Err((
                "hidden",
                format!(
                    "must list 1 to 8 layer widths (got {}); deeper plain MLPs train poorly",
                    self.hidden.len()
                ),
            ));
        }
        if let Some(&w) = self.hidden.iter().find(|&&w| w == 0 || w > 8192) {
            return Err((
                "hidden",
                format!("every width must be 1 to 8192 (got {w}); wider layers would not fit a CPU's time budget"),
            ));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err((
                "epochs",
                format!(
                    "must be 1 to 10000 (got {}); the reference uses 5",
                    self.epochs
                ),
            ));
        }
        if self.half_batch == 0 || self.half_batch > 65_536 {
            return Err((
                "half_batch",
                format!("must be 1 to 65536 (got {})", self.half_batch),
            ));
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err((
                "lr",
                format!(
                    "must be > 0 and ≤ 1 (got {}); larger steps diverge",
                    self.lr
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.weight_decay) {
            return Err((
                "weight_decay",
                format!(
                    "must be ≥ 0 and < 1 (got {}); decay ≥ 1 erases the weights",
                    self.weight_decay
                ),
            ));
        }
        if !(self.clip_norm > 0.0 && self.clip_norm.is_finite()) {
            return Err((
                "clip_norm",
                format!("must be a finite number > 0 (got {})", self.clip_norm),
            ));
        }
        Ok(())
    }
}

/// Rows per forward pass when scoring.
const SCORE_CHUNK: usize = 8192;

/// A trained MLP.
pub struct MlpModel {
    d: usize,
    params: Params,
    layers: Vec<Linear>,
    out: Linear,
    device: Device,
}

impl MlpModel {
    /// Trains on `normals` and `anomalies` (row-major, `d` columns, already scaled). Calls
    /// `epoch_done("train", epoch (1-based), epochs, &[("bce", mean loss over the epoch's
    /// steps)])` after each epoch and checks `stop` every step.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        p: &MlpParams,
        normals: &[f32],
        anomalies: &[f32],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("mlp: {k} {m}")))?;
        let n = rows_of("mlp", "normal", normals, d)?;
        let n_a = rows_of("mlp", "anomaly", anomalies, d)?;

        // weights as torch.manual_seed(seed + 40) + nn.Linear defaults, in layer order
        let mut wrng = SplitMix64::new(seed.wrapping_add(40));
        let mut params = Params::default();
        let mut layers = Vec::with_capacity(p.hidden.len());
        let mut prev = d;
        for (i, &h) in p.hidden.iter().enumerate() {
            layers.push(Linear::new(
                &mut params,
                &format!("fc{i}"),
                prev,
                h,
                &mut wrng,
                device,
            )?);
            prev = h;
        }
        let out = Linear::new(&mut params, "out", prev, 1, &mut wrng, device)?;
        let model = MlpModel {
            d,
            params,
            layers,
            out,
            device: device.clone(),
        };

        let vars = model.params.all();
        let mut opt = Adam::new(vars.clone(), AdamConfig::new(p.lr, p.weight_decay, true))?;
        let mut rng = SplitMix64::new(seed.wrapping_add(12345));
        let half = p.half_batch;
        let total = p.epochs * n.div_ceil(half);
        let full_targets = targets(half, device)?;
        let mut xb: Vec<f32> = Vec::with_capacity(2 * half * d);
        let mut perm: Vec<usize> = (0..n).collect();
        let mut step = 0usize;
        for epoch in 1..=p.epochs {
            // a fresh permutation of 0..n, as numpy's rng.permutation(n)
            for (i, v) in perm.iter_mut().enumerate() {
                *v = i;
            }
            rng.shuffle(&mut perm);
            let mut sum = 0.0;
            let mut count = 0usize;
            for chunk in perm.chunks(half) {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                let nb = chunk.len();
                xb.clear();
                for &r in chunk {
                    xb.extend_from_slice(&normals[r * d..(r + 1) * d]);
                }
                for _ in 0..nb {
                    let r = rng.below(n_a as u64) as usize;
                    xb.extend_from_slice(&anomalies[r * d..(r + 1) * d]);
                }
                let x = Tensor::from_slice(&xb, (2 * nb, d), device)?;
                let y = if nb == half {
                    full_targets.clone()
                } else {
                    targets(nb, device)?
                };
                let loss = bce_mean(&model.logits(&x)?, &y)?;
                let lv = f64::from(loss.to_scalar::<f32>()?);
                if !lv.is_finite() {
                    return Err(nan_error("mlp", "train", epoch));
                }
                sum += lv;
                count += 1;
                let g = loss.backward()?;
                let mut grads = HashMap::with_capacity(vars.len());
                for v in &vars {
                    if let Some(t) = g.get(v.as_tensor()) {
                        grads.insert(v.as_tensor().id(), t.clone());
                    }
                }
                clip_grad_norm(&mut grads, p.clip_norm)?;
                opt.step(&grads, cosine_lr(p.lr, step, total))?;
                step += 1;
            }
            epoch_done(
                "train",
                epoch,
                p.epochs,
                &[("bce", sum / count.max(1) as f64)],
            );
        }
        Ok(model)
    }

    /// Logits, shape (rows,), through the fused kernels on the CPU (training and scoring).
    fn logits(&self, x: &Tensor) -> R<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = linear_act(&h, l, true, i == 0)?;
        }
        Ok(linear_act(&h, &self.out, false, self.layers.is_empty())?.squeeze(1)?)
    }

    /// `σ(logit)` per row of `x` (row-major, `d` columns), in `f64`; higher = more anomalous.
    pub fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("mlp", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(SCORE_CHUNK * self.d) {
            let t = Tensor::from_slice(chunk, (chunk.len() / self.d, self.d), &self.device)?;
            let z = self.logits(&t)?.to_vec1::<f32>()?;
            out.extend(z.into_iter().map(|z| {
                let z = f64::from(z).clamp(-700.0, 700.0);
                1.0 / (1.0 + (-z).exp())
            }));
        }
        Ok(out)
    }

    /// The logit per row of `x` (row-major, `d` columns), in `f64`: the score before the
    /// sigmoid, which does not saturate for confident rows (heldout's fusion uses it).
    pub fn logits_f64(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("mlp", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(SCORE_CHUNK * self.d.max(1)) {
            let t = Tensor::from_slice(chunk, (chunk.len() / self.d, self.d), &self.device)?;
            out.extend(self.logits(&t)?.to_vec1::<f32>()?.into_iter().map(f64::from));
        }
        Ok(out)
    }

    /// Saves the weights (safetensors; `fc{i}.weight` stored (in, out), `out.bias`, …).
    pub fn save(&self, path: &std::path::Path) -> R<()> {
        Ok(self.params.save(path)?)
    }
}

/// `nb` zeros then `nb` ones (normals first, as the batches are built).
fn targets(nb: usize, device: &Device) -> R<Tensor> {
    let mut y = vec![0f32; nb];
    y.resize(2 * nb, 1.0);
    Ok(Tensor::from_vec(y, 2 * nb, device)?)
}

/// The row count of a training block, or an error naming the method and the block.
pub(crate) fn rows_of(method: &str, what: &str, x: &[f32], d: usize) -> R<usize> {
    if d == 0 {
        return Err(DetectError::Other(format!(
            "{method}: the data have no feature columns"
        )));
    }
    if x.len() % d != 0 {
        return Err(DetectError::Other(format!(
            "{method}: {} {what} values are not whole rows of {d} features",
            x.len()
        )));
    }
    if x.is_empty() {
        return Err(DetectError::Other(format!(
            "{method}: no {what} rows to train on"
        )));
    }
    check_finite(method, what, x, d)?;
    Ok(x.len() / d)
}

/// The row count of a block to score (may be 0).
pub(crate) fn score_rows(method: &str, x: &[f32], d: usize) -> R<usize> {
    if d == 0 || x.len() % d != 0 {
        return Err(DetectError::Other(format!(
            "{method}: {} values are not whole rows of {d} features",
            x.len()
        )));
    }
    check_finite(method, "scored", x, d)?;
    Ok(x.len() / d)
}

/// NaN or ±inf features are an error: candle's ReLU maps NaN to 0 (torch keeps NaN), so they
/// would otherwise pass silently as zeros.
fn check_finite(method: &str, what: &str, x: &[f32], d: usize) -> R<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(DetectError::Other(format!(
            "{method}: {what} row {} has a non-finite value ({}) in column {} — impute or drop \
             missing values before training",
            i / d,
            x[i],
            i % d
        ))),
    }
}

/// The error for a non-finite loss.
pub(crate) fn nan_error(method: &str, stage: &str, epoch: usize) -> DetectError {
    DetectError::Other(format!(
        "{method}: the loss became NaN or infinite in epoch {epoch} ({stage} stage) — lower the \
         learning rate or check the data for extreme values"
    ))
}

impl super::MethodSpec for MlpParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "Supervised MLP",
            paper: "the reference's supervised baselines mlp_fewshot / mlp_full (refbench/deep.py)",
            labels: super::Labels::FewShot,
            summary: "D→256→128→1 ReLU MLP trained with BCE on balanced batches of normals and labelled anomalies (the few-shot rows, or every seen-family training row); score σ(logit).",
        }
    }
    fn labels(&self) -> super::Labels {
        match self.anomalies {
            AnomalyRows::FewShot => super::Labels::FewShot,
            AnomalyRows::AllSeen => super::Labels::AllSeen,
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::int_list("hidden", 1, 8192, 8, "widths of the hidden ReLU layers, input side first (reference: 256, 128)"),
            P::int("epochs", 1, 10_000, "passes over the normal training rows (reference: 5)"),
            P::int("half_batch", 1, 65_536, "normal rows per step, plus as many anomalies drawn with replacement (reference: 128)"),
            P::float("lr", 0.0, 1.0, "peak AdamW learning rate, cosine to 0 (reference: 1e-3)"),
            P::float("weight_decay", 0.0, 1.0, "AdamW decoupled weight decay, in [0, 1) (reference: 1e-4)"),
            P::float("clip_norm", 0.0, 1e9, "largest global gradient norm, > 0 (reference: 1)"),
            P::choice("anomalies", &["few_shot", "all_seen"], "labelled anomalies: the few-shot rows (mlp_fewshot) or every seen-family training row (mlp_full)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        MlpParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        match self.anomalies {
            AnomalyRows::FewShot => "mlp_fewshot".into(),
            AnomalyRows::AllSeen => "mlp_full".into(),
        }
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let mut layers: Layers = Vec::new();
        let mut prev = s.d;
        for &h in &self.hidden {
            layers.push((prev, h as f64));
            prev = h as f64;
        }
        layers.push((prev, 1.0));
        let params = dense_params(&layers, true);
        let rows = 2.0 * (self.half_batch as f64);
        // the labelled rows gathered into one block (a second copy of every seen-family row)
        let anomalies = match self.anomalies {
            AnomalyRows::FewShot => s.few_shot_total(),
            AnomalyRows::AllSeen => s.seen_train,
        } * s.d
            * F32;
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            step_bytes: anomalies
                + dense_activation_bytes(&layers, rows, 3.0)
                    .max(dense_activation_bytes(&layers, SCORE_CHUNK as f64, 2.0)),
            phases: vec![
                Phase {
                    name: "training steps",
                    steps: self.epochs as f64 * (s.normals / self.half_batch as f64).ceil(),
                    flops: dense_train_flops(&layers, rows),
                    speed: TRAIN_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    flops: dense_forward_flops(&layers, s.checkpoint + s.scored()),
                    speed: SCORE_SPEED,
                },
            ],
            records: self.epochs as f64 + checkpoint_records(s) + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<MlpModel>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

/// Speed constants of the small dense networks' training and scoring (see
/// [`super::cost::Speed`]), fitted by `heldout bench estimate`.
pub(crate) const TRAIN_SPEED: super::cost::Speed = super::cost::Speed::new(0.7, 30.0);
pub(crate) const SCORE_SPEED: super::cost::Speed = super::cost::Speed::new(0.3, 500.0);
/// Deep SVDD / SAD (batch norm, small layers) and DevNet (one small layer, overhead-bound).
pub(crate) const BN_TRAIN_SPEED: super::cost::Speed = super::cost::Speed::new(0.4, 30.0);
pub(crate) const DEVNET_SPEED: super::cost::Speed = super::cost::Speed::new(0.3, 80.0);

impl super::Fit for MlpModel {
    type Params = MlpParams;
    fn fit(
        p: &MlpParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, DetectError> {
        let anomalies = super::concat_rows(match p.anomalies {
            AnomalyRows::FewShot => &data.few_shot,
            AnomalyRows::AllSeen => &data.seen_train,
        });
        let device = ctx.device.clone();
        let emit = &mut *ctx.emit;
        MlpModel::fit(
            p,
            &data.normals,
            &anomalies,
            data.d,
            seed,
            &device,
            ctx.stop,
            &mut |phase, epoch, epochs, terms| super::emit_epoch(emit, phase, epoch, epochs, terms),
        )
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        MlpModel::score(self, x)
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        MlpModel::save(self, path)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::bce_with_logit_targets;
    use crate::data::{load, LoadOptions, Scaler, ScalerKind, Table};
    use candle_core::Var;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    fn shared(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data")
            .join(rel)
    }

    /// The CIC-IDS2017 sample, loaded once per test binary with the protocol's cleaning.
    pub(crate) fn cicids() -> &'static Table {
        static T: OnceLock<Table> = OnceLock::new();
        T.get_or_init(|| {
            let o = LoadOptions {
                family_map: Some(shared("cicids2017_improved_sample/family_map.csv")),
                min_family_rows: 50,
                ..LoadOptions::new("Label")
            };
            load(
                &shared("cicids2017_improved_sample/cicids2017_improved_sample.csv.gz"),
                &o,
            )
            .expect("the CIC-IDS2017 sample loads")
        })
    }

    /// The CICIoT2023 sample (the reference drops `label_binary`).
    pub(crate) fn ciciot() -> &'static Table {
        static T: OnceLock<Table> = OnceLock::new();
        T.get_or_init(|| {
            let o = LoadOptions {
                min_family_rows: 50,
                drop_columns: vec!["label_binary".into()],
                ..LoadOptions::new("label_multiclass")
            };
            load(&shared("ciciot2023_sample/ciciot2023_sample.csv.gz"), &o)
                .expect("the CICIoT2023 sample loads")
        })
    }

    /// One protocol rotation (seed 0), scaled as the protocol does (robust 5–95 on the normal and
    /// seen families' train rows).
    pub(crate) struct Split {
        pub d: usize,
        /// benign train rows (at most `max_normals`, permutation order)
        pub normals: Vec<f32>,
        /// the first 100 train rows of each seen family
        pub few_shot: Vec<f32>,
        /// the same rows, one block per seen family
        pub few_shot_families: Vec<Vec<f32>>,
        /// all train rows of the seen families
        pub all_seen: Vec<f32>,
        /// benign test rows then as many of `family`'s test rows; labels alongside
        pub test_x: Vec<f32>,
        pub test_y: Vec<bool>,
    }

    /// `held_out` is not trained on (when given); `family` is the one whose test rows are used.
    pub(crate) fn split(
        t: &Table,
        held_out: Option<&str>,
        family: &str,
        max_normals: usize,
    ) -> Split {
        let parts = crate::split::protocol_split(t, 0);
        let normal = t.family_id("Benign").expect("a Benign family");
        let held = held_out.map(|h| t.family_id(h).expect("held-out family exists"));
        let fam = t.family_id(family).expect("test family exists");
        let seen: Vec<u32> = (0..t.families.len() as u32)
            .filter(|&f| f != normal && Some(f) != held)
            .collect();
        let mut scaler_rows = parts[normal as usize].train.clone();
        for &f in &seen {
            scaler_rows.extend_from_slice(&parts[f as usize].train);
        }
        let d = t.n_features;
        let sc = Scaler::fit(ScalerKind::Robust595, &t.features, d, &scaler_rows).unwrap();
        let gather = |rows: &[usize]| -> Vec<f32> { sc.transform(&t.features, rows) };
        let ntr = &parts[normal as usize].train;
        let normals = gather(&ntr[..ntr.len().min(max_normals)]);
        let mut few = Vec::new();
        let mut all = Vec::new();
        let mut few_shot_families = Vec::new();
        for &f in &seen {
            let tr = &parts[f as usize].train;
            few.extend_from_slice(&tr[..tr.len().min(100)]);
            few_shot_families.push(gather(&tr[..tr.len().min(100)]));
            all.extend_from_slice(tr);
        }
        let nt = &parts[normal as usize].test;
        let ft = &parts[fam as usize].test;
        let m = nt.len().min(ft.len());
        let mut rows = nt[..m].to_vec();
        rows.extend_from_slice(&ft[..m]);
        let mut test_y = vec![false; m];
        test_y.resize(2 * m, true);
        Split {
            d,
            normals,
            few_shot: gather(&few),
            few_shot_families,
            all_seen: gather(&all),
            test_x: gather(&rows),
            test_y,
        }
    }

    pub(crate) fn auc(s: &Split, scores: &[f64]) -> f64 {
        crate::eval::roc_auc(&s.test_y, scores).unwrap()
    }

    fn fit(p: &MlpParams, s: &Split, anomalies: &[f32], seed: u64) -> MlpModel {
        let stop = AtomicBool::new(false);
        let mut log = Vec::new();
        let m = MlpModel::fit(
            p,
            &s.normals,
            anomalies,
            s.d,
            seed,
            &Device::Cpu,
            &stop,
            &mut |stage, e, n, terms| log.push((stage, e, n, terms[0].0, terms[0].1)),
        )
        .unwrap();
        assert_eq!(log.len(), p.epochs);
        assert_eq!((log[0].0, log[0].3), ("train", "bce"));
        assert_eq!(
            (log[p.epochs - 1].1, log[p.epochs - 1].2),
            (p.epochs, p.epochs)
        );
        assert!(log.iter().all(|l| l.4.is_finite()));
        // the loss falls
        assert!(log[p.epochs - 1].4 < log[0].4, "{log:?}");
        m
    }

    /// Trained on the few-shot rows of the seen families (Infiltration held out), the MLP
    /// separates benign test rows from a seen family's (PortScan) test rows; the same seed gives
    /// bit-identical scores, another seed other ones.
    #[test]
    fn mlp_separates_a_seen_family_and_is_deterministic() {
        let s = split(cicids(), Some("Infiltration"), "PortScan", usize::MAX);
        let p = MlpParams::default();
        let t0 = std::time::Instant::now();
        let m = fit(&p, &s, &s.few_shot, 3);
        let fit_s = t0.elapsed().as_secs_f64();
        let a = m.score(&s.test_x).unwrap();
        let auc = auc(&s, &a);
        eprintln!(
            "mlp_fewshot: {} normals, {} anomalies, fit {fit_s:.2}s, PortScan AUC {auc:.4}",
            s.normals.len() / s.d,
            s.few_shot.len() / s.d
        );
        assert!(auc >= 0.9, "AUC {auc}");
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
        let b = fit(&p, &s, &s.few_shot, 3).score(&s.test_x).unwrap();
        assert_eq!(a, b);
        let c = fit(&p, &s, &s.few_shot, 4).score(&s.test_x).unwrap();
        assert_ne!(a, c);
    }

    /// `mlp_full`: the same model on every seen-family train row.
    #[test]
    fn mlp_full_separates_a_seen_family() {
        let s = split(cicids(), Some("Infiltration"), "DDoS", 4000);
        let p = MlpParams {
            anomalies: AnomalyRows::AllSeen,
            ..MlpParams::default()
        };
        let m = fit(&p, &s, &s.all_seen, 0);
        let auc = auc(&s, &m.score(&s.test_x).unwrap());
        eprintln!("mlp_full: DDoS AUC {auc:.4}");
        assert!(auc >= 0.9, "AUC {auc}");
        let dir = tempfile::tempdir().unwrap();
        m.save(&dir.path().join("mlp.safetensors")).unwrap();
        let back = candle_core::safetensors::load(dir.path().join("mlp.safetensors"), &Device::Cpu)
            .unwrap();
        assert_eq!(back["fc0.weight"].dims(), &[s.d, 256]);
        assert_eq!(back["out.bias"].dims(), &[1]);
    }

    /// The fused kernels give the values and gradients of candle's composed ops.
    #[test]
    fn fused_kernels_match_composed_ops() {
        let dev = Device::Cpu;
        let mut rng = SplitMix64::new(9);
        let mut vals =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_normal() as f32).collect() };
        let x = Tensor::from_vec(vals(7 * 5), (7, 5), &dev).unwrap();
        let up = Tensor::from_vec(vals(7 * 4), (7, 4), &dev).unwrap();
        let mut p = Params::default();
        let l = Linear::new(&mut p, "l", 5, 4, &mut SplitMix64::new(1), &dev).unwrap();
        let pre = Linear::new(&mut p, "pre", 5, 5, &mut SplitMix64::new(2), &dev).unwrap();
        let grads = |loss: Tensor| {
            let g = loss.backward().unwrap();
            p.all()
                .iter()
                .map(|v| {
                    g.get(v.as_tensor())
                        .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                })
                .collect::<Vec<_>>()
        };
        let close = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
            }
        };
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for relu in [false, true] {
            for const_input in [false, true] {
                // the constant batch, or an input that is itself trained (through `pre`)
                let input = |fused: bool| {
                    if const_input {
                        x.clone()
                    } else if fused {
                        linear_act(&x, &pre, true, true).unwrap()
                    } else {
                        linear_act_composed(&x, &pre, true).unwrap()
                    }
                };
                let yf = linear_act(&input(true), &l, relu, const_input).unwrap();
                let yc = linear_act_composed(&input(false), &l, relu).unwrap();
                close(&v(&yf), &v(&yc));
                let gf = grads((yf * &up).unwrap().sum_all().unwrap());
                let gc = grads((yc * &up).unwrap().sum_all().unwrap());
                for (a, b) in gf.iter().zip(&gc) {
                    match (a, b) {
                        (Some(a), Some(b)) => close(a, b),
                        (None, None) => {}
                        _ => panic!("a gradient on one side only"),
                    }
                }
                assert!(gf[0].is_some() && gf[1].is_some());
                assert_eq!(gf[2].is_some(), !const_input);
            }
        }
        // the single-output head after a trained layer
        let mut p2 = Params::default();
        let head = Linear::new(&mut p2, "head", 5, 1, &mut SplitMix64::new(3), &dev).unwrap();
        let up1 = Tensor::from_vec(vals(7), (7, 1), &dev).unwrap();
        let hf = linear_act(
            &linear_act(&x, &pre, true, true).unwrap(),
            &head,
            false,
            false,
        )
        .unwrap();
        let hc = linear_act_composed(&linear_act_composed(&x, &pre, true).unwrap(), &head, false)
            .unwrap();
        assert_eq!(hf.dims(), &[7, 1]);
        close(&v(&hf), &v(&hc));
        let all: Vec<Var> = p.all().into_iter().chain(p2.all()).collect();
        let gf = (hf * &up1).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (hc * &up1).unwrap().sum_all().unwrap().backward().unwrap();
        for var in &all[2..] {
            close(
                &v(gf.get(var.as_tensor()).unwrap()),
                &v(gc.get(var.as_tensor()).unwrap()),
            );
        }
        // BCE: value and gradient
        let z = Var::from_vec(vals(6), 6, &dev).unwrap();
        let y = Tensor::new(&[0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &dev).unwrap();
        let lf = bce_mean(z.as_tensor(), &y).unwrap();
        let lc = bce_with_logit_targets(z.as_tensor(), &y).unwrap();
        close(
            &[lf.to_scalar::<f32>().unwrap()],
            &[lc.to_scalar::<f32>().unwrap()],
        );
        let gf = lf
            .backward()
            .unwrap()
            .get(z.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let gc = lc
            .backward()
            .unwrap()
            .get(z.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        close(&gf, &gc);
    }

    #[test]
    fn invalid_params_are_rejected_by_name() {
        let bad = [
            (
                MlpParams {
                    hidden: vec![],
                    ..Default::default()
                },
                "hidden",
            ),
            (
                MlpParams {
                    hidden: vec![64, 0],
                    ..Default::default()
                },
                "hidden",
            ),
            (
                MlpParams {
                    epochs: 0,
                    ..Default::default()
                },
                "epochs",
            ),
            (
                MlpParams {
                    half_batch: 0,
                    ..Default::default()
                },
                "half_batch",
            ),
            (
                MlpParams {
                    lr: 0.0,
                    ..Default::default()
                },
                "lr",
            ),
            (
                MlpParams {
                    lr: f64::NAN,
                    ..Default::default()
                },
                "lr",
            ),
            (
                MlpParams {
                    weight_decay: -1e-3,
                    ..Default::default()
                },
                "weight_decay",
            ),
            (
                MlpParams {
                    clip_norm: 0.0,
                    ..Default::default()
                },
                "clip_norm",
            ),
        ];
        for (p, name) in bad {
            let (k, msg) = p.validate().unwrap_err();
            assert_eq!(k, name, "{msg}");
            let stop = AtomicBool::new(false);
            let err = MlpModel::fit(
                &p,
                &[0.0; 4],
                &[1.0; 4],
                2,
                0,
                &Device::Cpu,
                &stop,
                &mut |_, _, _, _| {},
            )
            .err()
            .unwrap();
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(MlpParams::default().validate().is_ok());
        // read from RON: missing fields take the defaults, unknown ones are refused
        let p: MlpParams = ron::from_str("(epochs: 2, anomalies: all_seen)").unwrap();
        assert_eq!(p.epochs, 2);
        assert_eq!(p.anomalies, AnomalyRows::AllSeen);
        assert_eq!(p.hidden, vec![256, 128]);
        assert!(ron::from_str::<MlpParams>("(epoch: 2)").is_err());
    }

    #[test]
    fn empty_or_ragged_data_and_stop_are_errors_not_panics() {
        let p = MlpParams::default();
        let stop = AtomicBool::new(false);
        let fit = |n: &[f32], a: &[f32], d: usize, stop: &AtomicBool| {
            MlpModel::fit(&p, n, a, d, 0, &Device::Cpu, stop, &mut |_, _, _, _| {})
                .err()
                .unwrap()
                .to_string()
        };
        assert!(fit(&[], &[1.0; 4], 2, &stop).contains("no normal rows"));
        assert!(fit(&[1.0; 4], &[], 2, &stop).contains("no anomaly rows"));
        assert!(fit(&[1.0; 5], &[1.0; 4], 2, &stop).contains("whole rows"));
        assert!(fit(&[1.0; 4], &[1.0; 4], 0, &stop).contains("no feature columns"));
        assert_eq!(
            fit(&[1.0; 4], &[1.0; 4], 2, &AtomicBool::new(true)),
            "stopped"
        );
        // non-finite inputs are refused up front, naming the row
        let e = fit(&[1.0, 2.0, 3.0, f32::NAN], &[1.0; 4], 2, &stop);
        assert!(e.contains("normal row 1") && e.contains("column 1"), "{e}");
        // a loss that overflows: an error naming the method and the epoch
        let e = fit(&[3e38, -3e38, -3e38, 3e38], &[3e38; 4], 2, &stop);
        assert!(
            e.contains("mlp") && e.contains("infinite in epoch 1"),
            "{e}"
        );
        // scoring: any number of rows, including none; ragged or non-finite input is an error
        let m = MlpModel::fit(
            &MlpParams {
                epochs: 1,
                ..Default::default()
            },
            &[0.0, 1.0, 1.0, 0.0],
            &[5.0; 2],
            2,
            0,
            &Device::Cpu,
            &stop,
            &mut |_, _, _, _| {},
        )
        .unwrap();
        assert!(m.score(&[]).unwrap().is_empty());
        assert_eq!(m.score(&[0.5; 6]).unwrap().len(), 3);
        assert!(m.score(&[0.5; 5]).is_err());
        assert!(m.score(&[0.5, f32::INFINITY]).is_err());
    }

    /// Fit and score seconds of the five baselines on one CIC-IDS2017 protocol rotation
    /// (Infiltration held out, seed 0: all 4,994 benign train rows, 569 few-shot rows), best of
    /// three, in CPU seconds of the calling thread, to compare with the reference's
    /// `cicids2017__*.cost.json` / `cost.md` (one torch thread). Run with
    /// `RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 cargo test --lib fit_times -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fit_times_on_cicids() {
        use crate::detect::deep_sad::{DeepSadModel, DeepSadParams, DeepSvddParams};
        use crate::detect::devnet::{DevNetModel, DevNetParams};
        let s = split(cicids(), Some("Infiltration"), "PortScan", usize::MAX);
        let stop = AtomicBool::new(false);
        let dev = Device::Cpu;
        let mut q = |_: &'static str, _: usize, _: usize, _: &[(&'static str, f64)]| {};
        // about the rows the reference scores per run (val pool + test block)
        let val: Vec<f32> = s.test_x.repeat(2);
        // CPU seconds of this thread (the dev machine is shared, so wall time is noisy; with one
        // compute thread candle and gemm run on it); wall time elsewhere
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        fn cpu_s() -> Option<f64> {
            let mut t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime only writes the timespec it is given.
            let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
            (rc == 0).then_some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        fn cpu_s() -> Option<f64> {
            None
        }
        fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
            let (c, t) = (cpu_s(), std::time::Instant::now());
            let v = f();
            match (c, cpu_s()) {
                (Some(a), Some(b)) => (v, b - a),
                _ => (v, t.elapsed().as_secs_f64()),
            }
        }
        let best = |f: &mut dyn FnMut() -> (f64, f64)| {
            let mut b = (f64::MAX, f64::MAX);
            for _ in 0..3 {
                let (x, y) = f();
                b = (b.0.min(x), b.1.min(y));
            }
            b
        };
        eprintln!(
            "{} normals, {} few-shot, {} all-seen rows, {} rows scored",
            s.normals.len() / s.d,
            s.few_shot.len() / s.d,
            s.all_seen.len() / s.d,
            val.len() / s.d
        );
        let p = MlpParams::default();
        let t = best(&mut || {
            let (m, f) = timed(|| {
                MlpModel::fit(&p, &s.normals, &s.few_shot, s.d, 0, &dev, &stop, &mut q).unwrap()
            });
            (f, timed(|| m.score(&val).unwrap()).1)
        });
        eprintln!(
            "mlp_fewshot fit {:.3}s score {:.4}s (reference 0.42 / 0.01)",
            t.0, t.1
        );
        let t = best(&mut || {
            let (m, f) = timed(|| {
                MlpModel::fit(&p, &s.normals, &s.all_seen, s.d, 0, &dev, &stop, &mut q).unwrap()
            });
            (f, timed(|| m.score(&val).unwrap()).1)
        });
        eprintln!(
            "mlp_full fit {:.3}s score {:.4}s (reference 0.49 / 0.01)",
            t.0, t.1
        );
        let p = DeepSvddParams::default();
        let t = best(&mut || {
            let (m, f) = timed(|| {
                DeepSadModel::fit_svdd(&p, &s.normals, s.d, 0, &dev, &stop, &mut q).unwrap()
            });
            (f, timed(|| m.score(&val).unwrap()).1)
        });
        eprintln!(
            "deepsvdd fit {:.3}s score {:.4}s (reference 0.91 / 0.00)",
            t.0, t.1
        );
        let p = DeepSadParams::default();
        let t = best(&mut || {
            let (m, f) = timed(|| {
                DeepSadModel::fit(&p, &s.normals, &s.few_shot, s.d, 0, &dev, &stop, &mut q).unwrap()
            });
            (f, timed(|| m.score(&val).unwrap()).1)
        });
        eprintln!(
            "deepsad fit {:.3}s score {:.4}s (reference 1.08 / 0.01)",
            t.0, t.1
        );
        let p = DevNetParams::default();
        let t = best(&mut || {
            let (m, f) = timed(|| {
                DevNetModel::fit(&p, &s.normals, &s.few_shot, s.d, 0, &dev, &stop, &mut q).unwrap()
            });
            (f, timed(|| m.score(&val).unwrap()).1)
        });
        eprintln!(
            "devnet fit {:.3}s score {:.4}s (reference 1.04 / 0.00)",
            t.0, t.1
        );
    }
}
