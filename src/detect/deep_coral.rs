//! Deep CORAL (Sun & Saenko, ECCV-W 2016), in the form the core paper's authors ran it as a
//! baseline (spec §1.20; padmaksha18/MTRAE `mtrae/BASELINES/mtae_coral` with
//! `data_preprocess_coral.py`).
//!
//! Network (the authors' `MultitaskAutoencoder` defaults): encoder
//! `D → 25 → 20 → 20` (each Linear + BatchNorm1d + ReLU) `→ 11` (Linear + ReLU: the latent code
//! is non-negative in their code), a linear 2-class classifier on the code, and a decoder
//! `11 → 11 → 20` (Linear + ReLU) `→ 20 → 25` (Linear + BatchNorm + ReLU) `→ D` (Linear +
//! BatchNorm, no activation). Batch norm as torch's `BatchNorm1d` (affine, ε 1e-5, momentum
//! 0.1, running statistics updated by every training forward pass, the cross-domain one
//! included); Linear layers initialised as torch's defaults.
//!
//! Loss per batch: `CE(logits, y) + 0.6·MSE(recon, x) + 0.5·CORAL(C_x, C_y)`, where `C_x` and
//! `C_y` are the `(n − 1)`-normalised covariances of the latent codes of the source batch and of
//! the "cross-domain" batch, and CORAL is
//! - `authors` (default): `‖C_x − C_y‖_F / (‖C_x‖_F · ‖C_y‖_F)` (their `coral_loss`);
//! - `sun_saenko`: `‖C_x − C_y‖²_F / (4 d²)` with `d` the code width (the original paper).
//!
//! Each Frobenius norm is `√(Σ c² + 1e-12)`: the 1e-12 keeps the gradient of `√` finite when two
//! covariances coincide (or a code collapses to zero); it moves no value by more than ~1e-6.
//!
//! **Domains** (choice; the authors' files are fixed arrays): their source array `X_train` holds
//! benign rows with attack segments and the labels, and their cross-domain array holds rows of
//! *other* attack families (INFIL, SOLARIS), paired with the source rows by index. heldout may
//! use only the seen families, so: the source stream is every labelled training row (normals and
//! the few-shot rows of all seen families, label 0 / 1), shuffled each epoch and cut into
//! batches of `batch_size`; the cross-domain batch of source batch `b` is as many rows drawn
//! uniformly with replacement from the few-shot rows of seen family `b mod k` (the k seen
//! families with few-shot rows, in their order), so every seen family serves as the cross domain
//! in turn. Batches of fewer than 2 rows are skipped (batch norm and the `n − 1` covariance
//! need two).
//!
//! **Updates** (`update`): the authors' loop stacks the loss of every batch of an epoch and takes
//! *one* Adam step on their mean per epoch (`epoch`, the default: 200 epochs = 200 steps); `batch`
//! steps after every batch instead. Adam with L2-coupled weight decay (torch's `Adam`), lr 5e-3,
//! weight decay 1e-5, 200 epochs, batch 200.
//!
//! **Inputs** are clipped to ±`input_clip` (10) first, in training and scoring: a deviation
//! for the protocol's heavy-tailed robust scaling (see [`clip_inputs`]); 0 turns it off.
//!
//! Score: `softmax(logits)[anomaly]` in eval mode, computed as `σ(z₁ − z₀)` in `f64` (higher =
//! more anomalous).

use super::mlp::{nan_error, rows_of, score_rows};
use super::DetectError;
use crate::data::FamilyId;
use crate::nn::{Adam, AdamConfig, Linear, Params};
use crate::rng::SplitMix64;
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

type R<T> = Result<T, DetectError>;

/// torch `BatchNorm1d` defaults.
pub(crate) const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;
/// Rows per forward pass when scoring.
pub(crate) const SCORE_CHUNK: usize = 8192;
/// Added under every square root of a Frobenius norm (see the module notes).
const NORM_EPS: f64 = 1e-12;

/// Which CORAL distance the loss uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoralDistance {
    /// `‖C_x − C_y‖_F / (‖C_x‖_F · ‖C_y‖_F)` (the authors' `mtae_coral`).
    #[default]
    Authors,
    /// `‖C_S − C_T‖²_F / (4 d²)` (Sun & Saenko 2016).
    SunSaenko,
}

/// When Adam steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoralUpdate {
    /// Once per epoch, on the mean of the epoch's batch losses (the authors' loop).
    #[default]
    Epoch,
    /// After every batch.
    Batch,
}

/// Settings of Deep CORAL; the defaults are the authors' (spec §1.20).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepCoralParams {
    /// The CORAL distance: the authors' normalised form or the original paper's.
    pub distance: CoralDistance,
    /// Weight of the CORAL term.
    pub coral_weight: f64,
    /// Weight of the reconstruction MSE.
    pub recon_weight: f64,
    /// Width of the first encoder layer (and of the decoder's last hidden layer).
    pub hidden: usize,
    /// Width of the second and third encoder layers (and of the decoder's middle ones).
    pub hidden2: usize,
    /// Width of the latent code the covariances are computed on.
    pub latent: usize,
    pub epochs: usize,
    /// Rows per source batch (the cross-domain batch has as many).
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam L2 weight decay (added to the gradient, as torch's `Adam`).
    pub weight_decay: f64,
    /// One step per epoch (the authors') or one per batch.
    pub update: CoralUpdate,
    /// Inputs are clipped to `[−input_clip, input_clip]` before the network (0: not clipped).
    pub input_clip: f64,
}

impl Default for DeepCoralParams {
    fn default() -> Self {
        DeepCoralParams {
            distance: CoralDistance::Authors,
            coral_weight: 0.5,
            recon_weight: 0.6,
            hidden: 25,
            hidden2: 20,
            latent: 11,
            epochs: 200,
            batch_size: 200,
            lr: 5e-3,
            weight_decay: 1e-5,
            update: CoralUpdate::Epoch,
            input_clip: DEFAULT_INPUT_CLIP,
        }
    }
}

impl DeepCoralParams {
    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (name, v) in [
            ("coral_weight", self.coral_weight),
            ("recon_weight", self.recon_weight),
        ] {
            if !(v.is_finite() && (0.0..=1e6).contains(&v)) {
                return Err((
                    name,
                    format!("must be a finite number from 0 to 1e6 (got {v})"),
                ));
            }
        }
        for (name, v) in [
            ("hidden", self.hidden),
            ("hidden2", self.hidden2),
            ("latent", self.latent),
        ] {
            if v == 0 || v > 8192 {
                return Err((name, format!("must be 1 to 8192 (got {v})")));
            }
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return Err((
                "epochs",
                format!(
                    "must be 1 to 100000 (got {}); the authors use 200",
                    self.epochs
                ),
            ));
        }
        if self.batch_size < 2 || self.batch_size > 65_536 {
            return Err((
                "batch_size",
                format!(
                    "must be 2 to 65536 (got {}); batch norm and a covariance need two rows",
                    self.batch_size
                ),
            ));
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err(("lr", format!("must be > 0 and ≤ 1 (got {})", self.lr)));
        }
        if !(0.0..1.0).contains(&self.weight_decay) {
            return Err((
                "weight_decay",
                format!("must be ≥ 0 and < 1 (got {})", self.weight_decay),
            ));
        }
        check_clip(self.input_clip)
    }
}

/// The default of `input_clip` (both baselines; see [`clip_inputs`]).
pub(crate) const DEFAULT_INPUT_CLIP: f64 = 10.0;

/// `input_clip` must be 0 (off) or a finite positive bound.
pub(crate) fn check_clip(c: f64) -> Result<(), (&'static str, String)> {
    if c.is_finite() && (0.0..=1e12).contains(&c) {
        Ok(())
    } else {
        Err((
            "input_clip",
            format!("must be 0 (no clipping) or a bound up to 1e12 (got {c})"),
        ))
    }
}

/// Clips every value to `[−c, c]` (`c = 0`: unchanged). The authors fed these networks
/// normalised features; the protocol's robust 5–95 scaling leaves heavy tails (on the
/// CIC-IDS2017 sample 99 % of |x| are below 2.9, but 0.5 % exceed 10 and the largest is ~7·10⁵).
/// A batch-norm layer's batch variance is then set by one such row, which squeezes every other
/// row of the batch together, and the reconstruction MSE (~8·10⁶ unclipped) swamps the other
/// terms: without clipping neither baseline learns a seen family (AUC 0.68 and 0.33 in the
/// tests' settings). Clipping at ±10 touches 0.5 % of the values.
pub(crate) fn clip_inputs(x: &mut [f32], c: f64) {
    if c > 0.0 {
        let c = c as f32;
        for v in x {
            *v = v.clamp(-c, c);
        }
    }
}

/// `x` clipped as [`clip_inputs`] does, borrowed unchanged when `c` is 0 (for read-only blocks:
/// MTAE's and ResAD's training rows and scored chunks).
pub(crate) fn clip_rows(x: &[f32], c: f64) -> std::borrow::Cow<'_, [f32]> {
    if c > 0.0 {
        let mut v = x.to_vec();
        clip_inputs(&mut v, c);
        std::borrow::Cow::Owned(v)
    } else {
        std::borrow::Cow::Borrowed(x)
    }
}

/// torch's `BatchNorm1d` (affine): train mode normalises with the batch's mean and biased
/// variance and moves the running statistics (unbiased variance) by momentum 0.1; eval mode
/// normalises with the running ones.
#[derive(Debug, Clone)]
pub(crate) struct BatchNorm {
    name: String,
    gamma: Var,
    beta: Var,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl BatchNorm {
    /// γ = 1, β = 0, saved as `{name}.weight` / `{name}.bias` in `p`.
    pub(crate) fn new(p: &mut Params, name: &str, k: usize, dev: &Device) -> R<Self> {
        let gamma = Var::ones(k, DType::F32, dev)?;
        let beta = Var::zeros(k, DType::F32, dev)?;
        p.push(format!("{name}.weight"), gamma.clone());
        p.push(format!("{name}.bias"), beta.clone());
        Ok(BatchNorm {
            name: name.to_string(),
            gamma,
            beta,
            running_mean: vec![0.0; k],
            running_var: vec![1.0; k],
        })
    }

    pub(crate) fn train(&mut self, h: &Tensor) -> R<Tensor> {
        let n = h.dim(0)?;
        let mean = h.mean_keepdim(0)?;
        let xc = h.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(0)?;
        let m = mean.flatten_all()?.to_vec1::<f32>()?;
        let v = var.flatten_all()?.to_vec1::<f32>()?;
        let unbias = n as f64 / (n as f64 - 1.0).max(1.0);
        for (r, &b) in self.running_mean.iter_mut().zip(&m) {
            *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * f64::from(b)) as f32;
        }
        for (r, &b) in self.running_var.iter_mut().zip(&v) {
            *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * f64::from(b) * unbias) as f32;
        }
        let y = xc.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        Ok(y.broadcast_mul(self.gamma.as_tensor())?
            .broadcast_add(self.beta.as_tensor())?)
    }

    pub(crate) fn eval(&self, h: &Tensor) -> R<Tensor> {
        let k = self.running_mean.len();
        let dev = h.device();
        let mean = Tensor::from_slice(&self.running_mean, (1, k), dev)?;
        let inv: Vec<f32> = self
            .running_var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + BN_EPS).sqrt()) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, k), dev)?;
        Ok(h.broadcast_sub(&mean)?
            .broadcast_mul(&inv)?
            .broadcast_mul(self.gamma.as_tensor())?
            .broadcast_add(self.beta.as_tensor())?)
    }

    /// The running statistics as named tensors (`{name}.running_mean`, `{name}.running_var`).
    fn stats(&self, dev: &Device) -> R<[(String, Tensor); 2]> {
        let k = self.running_mean.len();
        Ok([
            (
                format!("{}.running_mean", self.name),
                Tensor::from_slice(&self.running_mean, k, dev)?,
            ),
            (
                format!("{}.running_var", self.name),
                Tensor::from_slice(&self.running_var, k, dev)?,
            ),
        ])
    }
}

/// Saves the trainable tensors of `params` and every batch norm's running statistics
/// (safetensors).
pub(crate) fn save_model(
    params: &Params,
    bns: &[&BatchNorm],
    dev: &Device,
    path: &std::path::Path,
) -> R<()> {
    let mut map: HashMap<String, Tensor> = params
        .vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    for b in bns {
        for (n, t) in b.stats(dev)? {
            map.insert(n, t);
        }
    }
    Ok(candle_core::safetensors::save(&map, path)?)
}

/// 2-class cross-entropy (mean over rows) of `logits` (n, 2) against `y` (n,) in {0, 1}.
pub(crate) fn cross_entropy(logits: &Tensor, y: &Tensor) -> R<Tensor> {
    Ok(candle_nn::loss::cross_entropy(logits, y)?)
}

/// `softmax(logits)[1]` per row, as `σ(z₁ − z₀)` in `f64`.
pub(crate) fn anomaly_probability(logits: &Tensor) -> R<Vec<f64>> {
    let z = logits.to_vec2::<f32>()?;
    Ok(z.into_iter()
        .map(|r| {
            let t = (f64::from(r[1]) - f64::from(r[0])).clamp(-700.0, 700.0);
            1.0 / (1.0 + (-t).exp())
        })
        .collect())
}

/// The `(n − 1)`-normalised covariance (k, k) of the rows of `z` (n, k).
pub fn covariance(z: &Tensor) -> R<Tensor> {
    let n = z.dim(0)?;
    let zc = z.broadcast_sub(&z.mean_keepdim(0)?)?;
    Ok((zc.t()?.matmul(&zc)? / (n as f64 - 1.0))?)
}

/// `√(Σ c² + 1e-12)`.
fn frobenius(c: &Tensor) -> R<Tensor> {
    Ok((c.sqr()?.sum_all()? + NORM_EPS)?.sqrt()?)
}

/// The CORAL distance between the codes of a source batch `zs` and a target batch `zt`.
pub fn coral_distance(zs: &Tensor, zt: &Tensor, kind: CoralDistance) -> R<Tensor> {
    let cs = covariance(zs)?;
    let ct = covariance(zt)?;
    let diff = (&cs - &ct)?;
    match kind {
        CoralDistance::Authors => Ok((frobenius(&diff)? / (frobenius(&cs)? * frobenius(&ct)?)?)?),
        CoralDistance::SunSaenko => {
            let d = zs.dim(1)? as f64;
            Ok((diff.sqr()?.sum_all()? / (4.0 * d * d))?)
        }
    }
}

/// The authors' autoencoder with its classifier.
struct CoralNet {
    params: Params,
    l1: Linear,
    bn1: BatchNorm,
    l2: Linear,
    bn2: BatchNorm,
    l3: Linear,
    bn3: BatchNorm,
    code: Linear,
    cls: Linear,
    fc3: Linear,
    fc4: Linear,
    l4: Linear,
    bn4: BatchNorm,
    l5: Linear,
    bn5: BatchNorm,
    l6: Linear,
    bn6: BatchNorm,
}

impl CoralNet {
    fn new(d: usize, p: &DeepCoralParams, rng: &mut SplitMix64, dev: &Device) -> R<Self> {
        let (h, h2, lat) = (p.hidden, p.hidden2, p.latent);
        let mut ps = Params::default();
        let mut lin =
            |ps: &mut Params, name: &str, i: usize, o: usize| Linear::new(ps, name, i, o, rng, dev);
        let l1 = lin(&mut ps, "enc.linear1", d, h)?;
        let bn1 = BatchNorm::new(&mut ps, "enc.bn1", h, dev)?;
        let l2 = lin(&mut ps, "enc.linear2", h, h2)?;
        let bn2 = BatchNorm::new(&mut ps, "enc.bn2", h2, dev)?;
        let l3 = lin(&mut ps, "enc.linear3", h2, h2)?;
        let bn3 = BatchNorm::new(&mut ps, "enc.bn3", h2, dev)?;
        let code = lin(&mut ps, "enc.code", h2, lat)?;
        let cls = lin(&mut ps, "classifier", lat, 2)?;
        let fc3 = lin(&mut ps, "dec.fc3", lat, lat)?;
        let fc4 = lin(&mut ps, "dec.fc4", lat, h2)?;
        let l4 = lin(&mut ps, "dec.linear4", h2, h2)?;
        let bn4 = BatchNorm::new(&mut ps, "dec.bn4", h2, dev)?;
        let l5 = lin(&mut ps, "dec.linear5", h2, h)?;
        let bn5 = BatchNorm::new(&mut ps, "dec.bn5", h, dev)?;
        let l6 = lin(&mut ps, "dec.linear6", h, d)?;
        let bn6 = BatchNorm::new(&mut ps, "dec.bn6", d, dev)?;
        Ok(CoralNet {
            params: ps,
            l1,
            bn1,
            l2,
            bn2,
            l3,
            bn3,
            code,
            cls,
            fc3,
            fc4,
            l4,
            bn4,
            l5,
            bn5,
            l6,
            bn6,
        })
    }

    fn encode_train(&mut self, x: &Tensor) -> R<Tensor> {
        let h = self.bn1.train(&self.l1.forward(x)?)?.relu()?;
        let h = self.bn2.train(&self.l2.forward(&h)?)?.relu()?;
        let h = self.bn3.train(&self.l3.forward(&h)?)?.relu()?;
        Ok(self.code.forward(&h)?.relu()?)
    }

    fn encode_eval(&self, x: &Tensor) -> R<Tensor> {
        let h = self.bn1.eval(&self.l1.forward(x)?)?.relu()?;
        let h = self.bn2.eval(&self.l2.forward(&h)?)?.relu()?;
        let h = self.bn3.eval(&self.l3.forward(&h)?)?.relu()?;
        Ok(self.code.forward(&h)?.relu()?)
    }

    fn decode_train(&mut self, z: &Tensor) -> R<Tensor> {
        let h = self.fc3.forward(z)?.relu()?;
        let h = self.fc4.forward(&h)?.relu()?;
        let h = self.bn4.train(&self.l4.forward(&h)?)?.relu()?;
        let h = self.bn5.train(&self.l5.forward(&h)?)?.relu()?;
        self.bn6.train(&self.l6.forward(&h)?)
    }

    fn bns(&self) -> [&BatchNorm; 6] {
        [
            &self.bn1, &self.bn2, &self.bn3, &self.bn4, &self.bn5, &self.bn6,
        ]
    }
}

/// The per-epoch report of a fit: `(phase, epoch (1-based), epochs, terms)`.
pub(crate) type EpochDone<'a> = super::mlp::EpochDone<'a>;

/// A trained Deep CORAL model.
pub struct DeepCoralModel {
    d: usize,
    net: CoralNet,
    device: Device,
    clip: f64,
}

/// The labelled stream of a fit: every row (normals, then every family's few-shot rows), their
/// labels (0 / 1), and the few-shot rows of each family that has some (the cross domains).
pub(crate) struct LabelledStream<'a> {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub families: Vec<&'a [f32]>,
}

/// The [`LabelledStream`] of `normals` and `few_shot` (row-major, `d` columns); an error naming
/// `method` when there are no normal or no anomalous rows, or rows are ragged or not finite.
pub(crate) fn labelled_stream<'a>(
    method: &str,
    normals: &[f32],
    few_shot: &'a [(FamilyId, Vec<f32>)],
    d: usize,
) -> R<LabelledStream<'a>> {
    let n = rows_of(method, "normal", normals, d)?;
    let fams: Vec<&[f32]> = few_shot
        .iter()
        .filter(|(_, x)| !x.is_empty())
        .map(|(_, x)| x.as_slice())
        .collect();
    if fams.is_empty() {
        return Err(DetectError::Other(format!(
            "{method}: no anomaly rows to train on (no seen family has few-shot rows)"
        )));
    }
    let mut x = normals.to_vec();
    let mut y = vec![0u32; n];
    for f in &fams {
        let m = rows_of(method, "few-shot anomaly", f, d)?;
        x.extend_from_slice(f);
        y.extend(std::iter::repeat_n(1u32, m));
    }
    Ok(LabelledStream {
        x,
        y,
        families: fams,
    })
}

/// Keys a backward pass's gradients of `vars` for [`Adam::step`].
pub(crate) fn grads_of(
    g: &candle_core::backprop::GradStore,
    vars: &[Var],
) -> HashMap<candle_core::TensorId, Tensor> {
    vars.iter()
        .filter_map(|v| {
            g.get(v.as_tensor())
                .map(|t| (v.as_tensor().id(), t.clone()))
        })
        .collect()
}

impl DeepCoralModel {
    /// Trains on `normals` and the few-shot rows of each seen family (row-major, `d` columns,
    /// already scaled). Calls `epoch_done("train", epoch, epochs, &[("ce", …), ("recon", …),
    /// ("coral", …)])` (means over the epoch's batches) after each epoch; checks `stop` every
    /// batch.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        p: &DeepCoralParams,
        normals: &[f32],
        few_shot: &[(FamilyId, Vec<f32>)],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("deep_coral: {k} {m}")))?;
        let LabelledStream {
            x: mut xs,
            y: ys,
            families: fams,
        } = labelled_stream("deep_coral", normals, few_shot, d)?;
        clip_inputs(&mut xs, p.input_clip);
        let fams: Vec<Vec<f32>> = fams
            .iter()
            .map(|f| {
                let mut f = f.to_vec();
                clip_inputs(&mut f, p.input_clip);
                f
            })
            .collect();
        let n = ys.len();
        let mut wrng = SplitMix64::new(seed.wrapping_add(40));
        let mut net = CoralNet::new(d, p, &mut wrng, device)?;
        let vars = net.params.all();
        let mut opt = Adam::new(vars.clone(), AdamConfig::new(p.lr, p.weight_decay, false))?;
        let mut rng = SplitMix64::new(seed.wrapping_add(12345));
        let mut perm: Vec<usize> = (0..n).collect();
        let (mut xb, mut xc, mut yb) = (Vec::new(), Vec::new(), Vec::new());
        for epoch in 1..=p.epochs {
            for (i, v) in perm.iter_mut().enumerate() {
                *v = i;
            }
            rng.shuffle(&mut perm);
            let mut sums = [0f64; 3];
            let mut count = 0usize;
            let mut losses: Vec<Tensor> = Vec::new();
            for (b, chunk) in perm.chunks(p.batch_size).enumerate() {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                let nb = chunk.len();
                if nb < 2 {
                    continue;
                }
                xb.clear();
                yb.clear();
                for &r in chunk {
                    xb.extend_from_slice(&xs[r * d..(r + 1) * d]);
                    yb.push(ys[r]);
                }
                let fam = &fams[b % fams.len()];
                let nf = fam.len() / d;
                xc.clear();
                for _ in 0..nb {
                    let r = rng.below(nf as u64) as usize;
                    xc.extend_from_slice(&fam[r * d..(r + 1) * d]);
                }
                let x = Tensor::from_slice(&xb, (nb, d), device)?;
                let y = Tensor::from_slice(&yb, nb, device)?;
                let x_cross = Tensor::from_slice(&xc, (nb, d), device)?;
                let z = net.encode_train(&x)?;
                let logits = net.cls.forward(&z)?;
                let recon = net.decode_train(&z)?;
                let z_cross = net.encode_train(&x_cross)?;
                let ce = cross_entropy(&logits, &y)?;
                let rec = (recon - &x)?.sqr()?.mean_all()?;
                let coral = coral_distance(&z, &z_cross, p.distance)?;
                for (s, t) in sums.iter_mut().zip([&ce, &rec, &coral]) {
                    *s += f64::from(t.to_scalar::<f32>()?);
                }
                count += 1;
                let loss = ((ce + (rec * p.recon_weight)?)? + (coral * p.coral_weight)?)?;
                match p.update {
                    CoralUpdate::Batch => {
                        let g = loss.backward()?;
                        opt.step(&grads_of(&g, &vars), p.lr)?;
                    }
                    CoralUpdate::Epoch => losses.push(loss),
                }
            }
            if !losses.is_empty() {
                let total = Tensor::stack(&losses, 0)?.mean_all()?;
                let g = total.backward()?;
                opt.step(&grads_of(&g, &vars), p.lr)?;
            }
            let c = count.max(1) as f64;
            let terms = [
                ("ce", sums[0] / c),
                ("recon", sums[1] / c),
                ("coral", sums[2] / c),
            ];
            if terms.iter().any(|(_, v)| !v.is_finite()) {
                return Err(nan_error("deep_coral", "train", epoch));
            }
            epoch_done("train", epoch, p.epochs, &terms);
        }
        Ok(DeepCoralModel {
            d,
            net,
            device: device.clone(),
            clip: p.input_clip,
        })
    }

    /// `softmax(logits)[anomaly]` per row of `x` (row-major, `d` columns), eval mode.
    pub fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("deep_coral", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(SCORE_CHUNK * self.d) {
            let rows = chunk.len() / self.d;
            let mut chunk = chunk.to_vec();
            clip_inputs(&mut chunk, self.clip);
            let t = Tensor::from_vec(chunk, (rows, self.d), &self.device)?;
            let z = self.net.encode_eval(&t)?;
            out.extend(anomaly_probability(&self.net.cls.forward(&z)?)?);
        }
        Ok(out)
    }

    /// Saves weights (stored (in, out)), batch-norm γ, β and running statistics.
    pub fn save(&self, path: &std::path::Path) -> R<()> {
        save_model(&self.net.params, &self.net.bns(), &self.device, path)
    }
}

impl super::Fit for DeepCoralModel {
    type Params = DeepCoralParams;
    fn fit(
        p: &DeepCoralParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, DetectError> {
        let device = ctx.device.clone();
        let emit = &mut *ctx.emit;
        DeepCoralModel::fit(
            p,
            &data.normals,
            &data.few_shot,
            data.d,
            seed,
            &device,
            ctx.stop,
            &mut |phase, epoch, epochs, terms| super::emit_epoch(emit, phase, epoch, epochs, terms),
        )
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        DeepCoralModel::score(self, x)
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        DeepCoralModel::save(self, path)
    }
}

impl super::MethodSpec for DeepCoralParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "Deep CORAL",
            paper: "Sun & Saenko, Deep CORAL (ECCV-W 2016), as the core paper's authors ran it (spec §1.20; padmaksha18/MTRAE mtrae/BASELINES/mtae_coral)",
            labels: super::Labels::FewShot,
            summary: "A batch-norm autoencoder D→25→20→20→11 with a 2-class head, trained with CE + 0.6·MSE + 0.5·CORAL between the latent covariances of the labelled batch and a cross-domain batch of one seen family's few-shot rows (each seen family in turn); score softmax[anomaly].",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::choice("distance", &["authors", "sun_saenko"], "CORAL distance: authors = ‖C_x − C_y‖_F / (‖C_x‖_F‖C_y‖_F) (their mtae_coral, default); sun_saenko = ‖C_S − C_T‖²_F / (4d²) (the original paper)"),
            P::float("coral_weight", 0.0, 1e6, "weight of the CORAL term (authors: 0.5)"),
            P::float("recon_weight", 0.0, 1e6, "weight of the reconstruction MSE (authors: 0.6)"),
            P::int("hidden", 1, 8192, "width of the first encoder layer and the decoder's last hidden one (authors: 25)"),
            P::int("hidden2", 1, 8192, "width of the second and third encoder layers (authors: 20)"),
            P::int("latent", 1, 8192, "width of the latent code the covariances are taken on (authors: 11)"),
            P::int("epochs", 1, 100_000, "passes over the labelled rows (authors: 200)"),
            P::int("batch_size", 2, 65_536, "rows per source batch; the cross-domain batch has as many (authors: 200)"),
            P::float("lr", 0.0, 1.0, "Adam learning rate, > 0 (authors: 5e-3)"),
            P::float("weight_decay", 0.0, 1.0, "Adam L2 weight decay, in [0, 1) (authors: 1e-5)"),
            P::choice("update", &["epoch", "batch"], "epoch = one Adam step per epoch on the mean of its batch losses (the authors' loop, default); batch = a step after every batch"),
            P::float("input_clip", 0.0, 1e12, "clip the scaled inputs to ±this before the network, 0 = off (heldout's 10: the authors fed normalised features, the robust scaling leaves outliers of 10⁵ that stall batch norm)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        DeepCoralParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        match self.distance {
            CoralDistance::Authors => "coral".into(),
            CoralDistance::SunSaenko => "coral_sun_saenko".into(),
        }
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        use super::mlp::{BN_TRAIN_SPEED, SCORE_SPEED};
        let (h, h2, lat) = (self.hidden as f64, self.hidden2 as f64, self.latent as f64);
        let enc: Layers = vec![(s.d, h), (h, h2), (h2, h2), (h2, lat)];
        let head: Layers = vec![(lat, 2.0)];
        let dec: Layers = vec![(lat, lat), (lat, h2), (h2, h2), (h2, h), (h, s.d)];
        let all: Layers = enc.iter().chain(&head).chain(&dec).copied().collect();
        // γ, β, running mean and variance of every batch norm
        let bn = h + h2 + h2 + h2 + h + s.d;
        let params = dense_params(&all, true) + 4.0 * bn;
        let n = s.normals + s.few_shot_total();
        let bs = (self.batch_size as f64).min(n);
        let per_epoch = (n / self.batch_size as f64).ceil();
        // one step per epoch keeps every batch's graph until the epoch's backward pass
        let kept = match self.update {
            CoralUpdate::Epoch => n,
            CoralUpdate::Batch => bs,
        };
        let enc_head: Layers = enc.iter().chain(&head).copied().collect();
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            step_bytes: 2.0 * n * s.d * F32
                + (dense_activation_bytes(&all, kept, 4.0)
                    + dense_activation_bytes(&enc, kept, 4.0))
                .max(dense_activation_bytes(&enc_head, SCORE_CHUNK as f64, 3.0)),
            phases: vec![
                Phase {
                    name: "training batches",
                    steps: self.epochs as f64 * per_epoch,
                    flops: dense_train_flops(&all, bs) + dense_train_flops(&enc, bs),
                    speed: BN_TRAIN_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    flops: dense_forward_flops(&enc_head, s.checkpoint + s.scored()),
                    speed: SCORE_SPEED,
                },
            ],
            records: 3.0 * self.epochs as f64 + checkpoint_records(s) + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<DeepCoralModel>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::{Scaler, ScalerKind, Table};
    use crate::detect::mlp::tests::cicids;

    /// One protocol rotation (seed 0) with the few-shot rows kept per family: benign train rows
    /// (at most `max_normals`), the first `shots` train rows of each seen family, a validation
    /// block (benign and seen-family validation rows) and a test block (benign test rows and as
    /// many of `family`'s), scaled robust 5–95 on the normal and seen train rows.
    pub(crate) struct FamilySplit {
        pub d: usize,
        pub normals: Vec<f32>,
        pub few_shot: Vec<(FamilyId, Vec<f32>)>,
        pub val: super::super::Block,
        pub test_x: Vec<f32>,
        pub test_y: Vec<bool>,
    }

    pub(crate) fn family_split(
        t: &Table,
        held_out: &str,
        family: &str,
        max_normals: usize,
        shots: usize,
    ) -> FamilySplit {
        let parts = crate::split::protocol_split(t, 0);
        let normal = t.family_id("Benign").unwrap();
        let held = t.family_id(held_out).unwrap();
        let fam = t.family_id(family).unwrap();
        let seen: Vec<u32> = (0..t.families.len() as u32)
            .filter(|&f| f != normal && f != held)
            .collect();
        let mut scaler_rows = parts[normal as usize].train.clone();
        for &f in &seen {
            scaler_rows.extend_from_slice(&parts[f as usize].train);
        }
        let d = t.n_features;
        let sc = Scaler::fit(ScalerKind::Robust595, &t.features, d, &scaler_rows).unwrap();
        let gather = |rows: &[usize]| -> Vec<f32> { sc.transform(&t.features, rows) };
        let ntr = &parts[normal as usize].train;
        let few_shot = seen
            .iter()
            .map(|&f| {
                let tr = &parts[f as usize].train;
                (f, gather(&tr[..tr.len().min(shots)]))
            })
            .collect();
        let nv = &parts[normal as usize].val;
        let mut vrows = nv[..nv.len().min(1000)].to_vec();
        let mut vy = vec![0u8; vrows.len()];
        for &f in &seen {
            let v = &parts[f as usize].val;
            let v = &v[..v.len().min(100)];
            vrows.extend_from_slice(v);
            vy.extend(std::iter::repeat_n(1u8, v.len()));
        }
        let nt = &parts[normal as usize].test;
        let ft = &parts[fam as usize].test;
        let m = nt.len().min(ft.len());
        let mut rows = nt[..m].to_vec();
        rows.extend_from_slice(&ft[..m]);
        let mut test_y = vec![false; m];
        test_y.resize(2 * m, true);
        FamilySplit {
            d,
            normals: gather(&ntr[..ntr.len().min(max_normals)]),
            few_shot,
            val: super::super::Block {
                x: gather(&vrows),
                y: vy,
            },
            test_x: gather(&rows),
            test_y,
        }
    }

    fn t(v: &[f32], r: usize, c: usize) -> Tensor {
        Tensor::from_slice(v, (r, c), &Device::Cpu).unwrap()
    }

    /// The (n − 1) covariance with plain f64 loops.
    fn cov64(z: &[f32], n: usize, k: usize) -> Vec<f64> {
        let mut mean = vec![0f64; k];
        for i in 0..n {
            for j in 0..k {
                mean[j] += f64::from(z[i * k + j]) / n as f64;
            }
        }
        let mut c = vec![0f64; k * k];
        for a in 0..k {
            for b in 0..k {
                let mut s = 0.0;
                for i in 0..n {
                    s += (f64::from(z[i * k + a]) - mean[a]) * (f64::from(z[i * k + b]) - mean[b]);
                }
                c[a * k + b] = s / (n as f64 - 1.0);
            }
        }
        c
    }

    /// Both CORAL distances against a direct computation, on hand-made 4 × 2 and 3 × 2 codes.
    #[test]
    fn coral_distances_match_a_direct_computation() {
        // source: 4 rows; C_S by hand: column means (1.5, 1), centred columns
        // (−1.5, −0.5, 0.5, 1.5) and (−1, 1, −1, 1): var₁ = 5/3, var₂ = 4/3, cov = 2/3
        let zs = [0.0f32, 0.0, 1.0, 2.0, 2.0, 0.0, 3.0, 2.0];
        // target: 3 rows; means (1, 1); centred (−1, 0, 1) and (1, −1, 0): var₁ = 1, var₂ = 1,
        // cov = (−1 + 0 + 0)/2 = −1/2
        let zt = [0.0f32, 2.0, 1.0, 0.0, 2.0, 1.0];
        let cs = cov64(&zs, 4, 2);
        let ct = cov64(&zt, 3, 2);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(cs[0], 5.0 / 3.0) && close(cs[1], 2.0 / 3.0) && close(cs[3], 4.0 / 3.0));
        assert!(close(ct[0], 1.0) && close(ct[1], -0.5) && close(ct[3], 1.0));
        let got = covariance(&t(&zs, 4, 2)).unwrap().to_vec2::<f32>().unwrap();
        for a in 0..2 {
            for b in 0..2 {
                assert!(
                    (f64::from(got[a][b]) - cs[a * 2 + b]).abs() < 1e-6,
                    "{got:?}"
                );
            }
        }
        let fro = |c: &[f64]| c.iter().map(|v| v * v).sum::<f64>().sqrt();
        let diff: Vec<f64> = cs.iter().zip(&ct).map(|(a, b)| a - b).collect();
        let authors = fro(&diff) / (fro(&cs) * fro(&ct));
        let sun = fro(&diff).powi(2) / (4.0 * 2.0 * 2.0);
        // by hand: diff = [[2/3, 7/6], [7/6, 1/3]], ‖diff‖² = 16/36 + 2·49/36 + 4/36 = 118/36
        assert!(close(fro(&diff).powi(2), 118.0 / 36.0));
        assert!(close(sun, 118.0 / 576.0));
        let a = coral_distance(&t(&zs, 4, 2), &t(&zt, 3, 2), CoralDistance::Authors)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let s = coral_distance(&t(&zs, 4, 2), &t(&zt, 3, 2), CoralDistance::SunSaenko)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((f64::from(a) - authors).abs() < 1e-5, "{a} vs {authors}");
        assert!((f64::from(s) - sun).abs() < 1e-6, "{s} vs {sun}");
        // identical batches: both distances 0 (the authors' up to the 1e-12 guard), and the
        // gradient stays finite
        let z = Var::from_slice(&zs, (4, 2), &Device::Cpu).unwrap();
        for kind in [CoralDistance::Authors, CoralDistance::SunSaenko] {
            let v = coral_distance(z.as_tensor(), z.as_tensor(), kind).unwrap();
            assert!(v.to_scalar::<f32>().unwrap().abs() < 1e-5);
            let g = v.backward().unwrap();
            let g = g.get(z.as_tensor()).unwrap().flatten_all().unwrap();
            assert!(g.to_vec1::<f32>().unwrap().iter().all(|x| x.is_finite()));
        }
    }

    fn fit(p: &DeepCoralParams, s: &FamilySplit, seed: u64) -> (DeepCoralModel, Vec<[f64; 3]>) {
        let stop = AtomicBool::new(false);
        let mut log = Vec::new();
        let m = DeepCoralModel::fit(
            p,
            &s.normals,
            &s.few_shot,
            s.d,
            seed,
            &Device::Cpu,
            &stop,
            &mut |phase, _, _, terms| {
                assert_eq!(phase, "train");
                let names: Vec<&str> = terms.iter().map(|t| t.0).collect();
                assert_eq!(names, ["ce", "recon", "coral"]);
                log.push([terms[0].1, terms[1].1, terms[2].1]);
            },
        )
        .unwrap();
        assert_eq!(log.len(), p.epochs);
        (m, log)
    }

    /// The authors' setting (one step per epoch) learns a seen family (PortScan, Infiltration
    /// held out) on the CIC-IDS2017 sample; same seed → the same scores, another seed → others.
    #[test]
    fn coral_learns_a_seen_family_and_is_deterministic() {
        let s = family_split(cicids(), "Infiltration", "PortScan", 2000, 100);
        let p = DeepCoralParams::default();
        let t0 = std::time::Instant::now();
        let (m, log) = fit(&p, &s, 1);
        let fit_s = t0.elapsed().as_secs_f64();
        let a = m.score(&s.test_x).unwrap();
        let auc = crate::eval::roc_auc(&s.test_y, &a).unwrap();
        eprintln!(
            "coral (authors, {} epochs): fit {fit_s:.1}s, PortScan AUC {auc:.4}; first {:?} last {:?}",
            p.epochs,
            log[0],
            log[log.len() - 1]
        );
        assert!(auc >= 0.9, "AUC {auc}");
        assert!(log[log.len() - 1][0] < log[0][0], "CE falls: {log:?}");
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
        // determinism, on a short run
        let q = DeepCoralParams {
            epochs: 5,
            ..p.clone()
        };
        let b = fit(&q, &s, 1).0.score(&s.test_x).unwrap();
        assert_eq!(b, fit(&q, &s, 1).0.score(&s.test_x).unwrap());
        assert_ne!(b, fit(&q, &s, 2).0.score(&s.test_x).unwrap());
        // the model file: every weight, γ, β and running statistic
        let dir = tempfile::tempdir().unwrap();
        m.save(&dir.path().join("c.safetensors")).unwrap();
        let back =
            candle_core::safetensors::load(dir.path().join("c.safetensors"), &Device::Cpu).unwrap();
        assert_eq!(back["enc.linear1.weight"].dims(), &[s.d, 25]);
        assert_eq!(back["enc.code.weight"].dims(), &[20, 11]);
        assert_eq!(back["dec.bn6.running_var"].dims(), &[s.d]);
    }

    /// The original paper's distance with a step per batch also learns.
    #[test]
    fn coral_sun_saenko_per_batch_learns() {
        let s = family_split(cicids(), "Infiltration", "DDoS", 2000, 100);
        let p = DeepCoralParams {
            distance: CoralDistance::SunSaenko,
            update: CoralUpdate::Batch,
            epochs: 3,
            ..Default::default()
        };
        let (m, _) = fit(&p, &s, 0);
        let auc = crate::eval::roc_auc(&s.test_y, &m.score(&s.test_x).unwrap()).unwrap();
        eprintln!("coral (sun_saenko, per batch, 3 epochs): DDoS AUC {auc:.4}");
        assert!(auc >= 0.9, "AUC {auc}");
    }

    #[test]
    fn invalid_params_are_rejected_by_name() {
        let d = DeepCoralParams::default;
        let bad = [
            (
                DeepCoralParams {
                    coral_weight: -1.0,
                    ..d()
                },
                "coral_weight",
            ),
            (
                DeepCoralParams {
                    recon_weight: f64::NAN,
                    ..d()
                },
                "recon_weight",
            ),
            (DeepCoralParams { hidden: 0, ..d() }, "hidden"),
            (DeepCoralParams { hidden2: 0, ..d() }, "hidden2"),
            (DeepCoralParams { latent: 0, ..d() }, "latent"),
            (DeepCoralParams { epochs: 0, ..d() }, "epochs"),
            (
                DeepCoralParams {
                    batch_size: 1,
                    ..d()
                },
                "batch_size",
            ),
            (DeepCoralParams { lr: 0.0, ..d() }, "lr"),
            (
                DeepCoralParams {
                    weight_decay: 1.0,
                    ..d()
                },
                "weight_decay",
            ),
            (
                DeepCoralParams {
                    input_clip: -1.0,
                    ..d()
                },
                "input_clip",
            ),
        ];
        for (p, name) in bad {
            let e = crate::detect::registry::check_params(&p).unwrap_err();
            assert_eq!(e.param, name, "{e}");
            let err = DeepCoralModel::fit(
                &p,
                &[0.0; 4],
                &[(1, vec![1.0; 4])],
                2,
                0,
                &Device::Cpu,
                &AtomicBool::new(false),
                &mut |_, _, _, _| {},
            )
            .err()
            .unwrap();
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(crate::detect::registry::check_params(&d()).is_ok());
        let p: DeepCoralParams = ron::from_str("(distance: sun_saenko, update: batch)").unwrap();
        assert_eq!(p.distance, CoralDistance::SunSaenko);
        assert!(ron::from_str::<DeepCoralParams>("(distance: coral)").is_err());
        assert!(ron::from_str::<DeepCoralParams>("(epoch: 2)").is_err());
        // no few-shot rows: an error naming the method, not a panic; stop is honoured
        let stop = AtomicBool::new(false);
        let e = DeepCoralModel::fit(
            &d(),
            &[0.0; 4],
            &[(1, vec![])],
            2,
            0,
            &Device::Cpu,
            &stop,
            &mut |_, _, _, _| {},
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("deep_coral") && e.to_string().contains("few-shot"),
            "{e}"
        );
        let e = DeepCoralModel::fit(
            &d(),
            &[0.0, 1.0, 1.0, 0.0],
            &[(1, vec![1.0; 4])],
            2,
            0,
            &Device::Cpu,
            &AtomicBool::new(true),
            &mut |_, _, _, _| {},
        )
        .err()
        .unwrap();
        assert_eq!(e.to_string(), "stopped");
    }
}
