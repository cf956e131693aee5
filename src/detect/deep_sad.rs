//! Deep SVDD and Deep SAD (reference `refbench/deep.py`, spec §6): one network, two methods.
//!
//! Network `D → 128 → 64 → 32`: each hidden layer `Linear` (no bias) + `BatchNorm1d` (ε 1e-4,
//! no affine) + LeakyReLU(0.01), a bias-free code layer, and a mirror decoder with a linear
//! output used only for autoencoder pre-training (squared error summed over features, mean over
//! rows). Then the centre `c` = mean eval-mode code of the training rows, with `|c_j| < 0.1`
//! pushed to ±0.1 (sign kept), and the encoder trained on
//! `where(s = 0, ‖φ(x) − c‖², η·(‖φ(x) − c‖² + 1e-6)^s)` with `s = −1` for labelled anomalies
//! (Deep SAD) or without labels (Deep SVDD). Adam (L2-coupled weight decay, torch semantics),
//! batches of a fresh permutation each epoch, batches of fewer than 2 rows skipped.
//! Batch norm in train mode uses the batch's statistics (biased variance) and updates running
//! statistics with momentum 0.1 (unbiased variance, as torch); eval mode uses the running ones.
//! Score: `‖φ(x) − c‖²` in eval mode (higher = more anomalous).

use super::mlp::{const_lhs_matmul, fusable, nan_error, rows_of, score_rows, with_f32, EpochDone};
use super::DetectError;
use crate::nn::{Adam, AdamConfig, Params};
use crate::rng::SplitMix64;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor, Var};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

type R<T> = Result<T, DetectError>;

const BN_EPS: f64 = 1e-4;
const BN_MOMENTUM: f64 = 0.1;
const LEAKY_SLOPE: f64 = 0.01;
/// Rows per forward pass when computing the centre and scoring.
const EVAL_CHUNK: usize = 4096;

/// Settings of Deep SVDD (no labels); the defaults are the reference's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepSvddParams {
    /// Widths of the encoder's hidden layers (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// Width of the code φ(x) the distance to the centre is measured in.
    pub rep_dim: usize,
    /// Epochs of autoencoder pre-training (0 skips it).
    pub pre_epochs: usize,
    /// Epochs of training the encoder towards the centre.
    pub epochs: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Adam learning rate (both stages).
    pub lr: f64,
    /// Adam L2 weight decay, added to the gradient (both stages).
    pub weight_decay: f64,
}

impl Default for DeepSvddParams {
    fn default() -> Self {
        // spec §6 says 100 / 50 epochs; the reference cut them to 5 / 15 for its CPU budget
        DeepSvddParams {
            hidden: vec![128, 64],
            rep_dim: 32,
            pre_epochs: 5,
            epochs: 15,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 1e-6,
        }
    }
}

/// Settings of Deep SAD (labelled anomalies pushed away from the centre); the defaults are the
/// reference's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepSadParams {
    /// Widths of the encoder's hidden layers (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// Width of the code φ(x) the distance to the centre is measured in.
    pub rep_dim: usize,
    /// Epochs of autoencoder pre-training (0 skips it).
    pub pre_epochs: usize,
    /// Epochs of training the encoder towards the centre.
    pub epochs: usize,
    /// Rows per batch (normal and labelled anomalous rows shuffled together).
    pub batch_size: usize,
    /// Adam learning rate (both stages).
    pub lr: f64,
    /// Adam L2 weight decay, added to the gradient (both stages).
    pub weight_decay: f64,
    /// Weight η of the labelled anomalies' inverse-distance term.
    pub eta: f64,
}

impl Default for DeepSadParams {
    fn default() -> Self {
        let s = DeepSvddParams::default();
        DeepSadParams {
            hidden: s.hidden,
            rep_dim: s.rep_dim,
            pre_epochs: s.pre_epochs,
            epochs: s.epochs,
            batch_size: s.batch_size,
            lr: s.lr,
            weight_decay: s.weight_decay,
            eta: 1.0,
        }
    }
}

/// The settings both methods share.
struct Common<'a> {
    hidden: &'a [usize],
    rep_dim: usize,
    pre_epochs: usize,
    epochs: usize,
    batch_size: usize,
    lr: f64,
    weight_decay: f64,
}

impl Common<'_> {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.hidden.len() > 8 {
            return Err((
                "hidden",
                format!(
                    "must list at most 8 layer widths (got {})",
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
        if self.rep_dim == 0 || self.rep_dim > 8192 {
            return Err((
                "rep_dim",
                format!("must be 1 to 8192 (got {})", self.rep_dim),
            ));
        }
        if self.pre_epochs > 10_000 {
            return Err((
                "pre_epochs",
                format!(
                    "must be at most 10000 (got {}); the reference uses 5",
                    self.pre_epochs
                ),
            ));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err((
                "epochs",
                format!(
                    "must be 1 to 10000 (got {}); the reference uses 15",
                    self.epochs
                ),
            ));
        }
        if self.batch_size < 2 || self.batch_size > 65_536 {
            return Err((
                "batch_size",
                format!(
                    "must be 2 to 65536 (got {}); batch norm needs at least 2 rows",
                    self.batch_size
                ),
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
        Ok(())
    }
}

impl DeepSvddParams {
    fn common(&self) -> Common<'_> {
        Common {
            hidden: &self.hidden,
            rep_dim: self.rep_dim,
            pre_epochs: self.pre_epochs,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
        }
    }

    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.common().validate()
    }
}

impl DeepSadParams {
    fn common(&self) -> Common<'_> {
        Common {
            hidden: &self.hidden,
            rep_dim: self.rep_dim,
            pre_epochs: self.pre_epochs,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
        }
    }

    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.common().validate()?;
        if !(self.eta > 0.0 && self.eta <= 1e6) {
            return Err(("eta", format!("must be > 0 and ≤ 1e6 (got {})", self.eta)));
        }
        Ok(())
    }
}

/// Batch normalisation without affine parameters, followed by LeakyReLU(0.01) (the two always
/// come together here). Holds the running statistics.
#[derive(Debug, Clone)]
struct BatchNorm {
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl BatchNorm {
    fn new(k: usize) -> Self {
        BatchNorm {
            running_mean: vec![0.0; k],
            running_var: vec![1.0; k],
        }
    }

    /// `(1 − m)·old + m·new` with the batch's mean and unbiased variance (torch's update).
    fn update(&mut self, mean: &[f64], var: &[f64], n: usize) {
        let unbias = n as f64 / (n as f64 - 1.0).max(1.0);
        for (r, &m) in self.running_mean.iter_mut().zip(mean) {
            *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * m) as f32;
        }
        for (r, &v) in self.running_var.iter_mut().zip(var) {
            *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * v * unbias) as f32;
        }
    }

    /// Train mode: LeakyReLU of `h` normalised with the batch's mean and biased variance; the
    /// running statistics move towards the batch's. Fused on the CPU.
    fn train_leaky(&mut self, h: &Tensor) -> R<Tensor> {
        if !fusable(h) {
            return self.train_leaky_composed(h);
        }
        let (n, k) = h.dims2()?;
        let (mean, var) = with_f32(h, "batch norm", |v| Ok(column_moments(v, k)))?;
        self.update(&mean, &var, n);
        let op = BnLeaky {
            mean: mean.iter().map(|&m| m as f32).collect(),
            inv_std: var
                .iter()
                .map(|&v| (1.0 / (v + BN_EPS).sqrt()) as f32)
                .collect(),
        };
        Ok(h.contiguous()?.apply_op1(op)?)
    }

    /// [`BatchNorm::train_leaky`] from candle's own ops (any device; reads the batch statistics
    /// back to update the running ones).
    fn train_leaky_composed(&mut self, h: &Tensor) -> R<Tensor> {
        let n = h.dim(0)?;
        let mean = h.mean_keepdim(0)?;
        let xc = h.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(0)?;
        let y = xc.broadcast_div(&(&var + BN_EPS)?.sqrt()?)?;
        let host = |t: &Tensor| -> R<Vec<f64>> {
            Ok(t.flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .map(f64::from)
                .collect())
        };
        self.update(&host(&mean)?, &host(&var)?, n);
        leaky_relu(&y)
    }

    /// Eval mode: LeakyReLU of `h` normalised with the running statistics.
    fn eval_leaky(&self, h: &Tensor) -> R<Tensor> {
        let k = self.running_mean.len();
        let dev = h.device();
        let mean = Tensor::from_slice(&self.running_mean, (1, k), dev)?;
        let inv: Vec<f32> = self
            .running_var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + BN_EPS).sqrt()) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, k), dev)?;
        leaky_relu(&h.broadcast_sub(&mean)?.broadcast_mul(&inv)?)
    }
}

/// Per-column mean and biased variance of a row-major (rows, k) block (two passes, f64 sums).
fn column_moments(h: &[f32], k: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (h.len() / k.max(1)).max(1) as f64;
    let mut mean = vec![0f64; k];
    for row in h.chunks_exact(k) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; k];
    for row in h.chunks_exact(k) {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
            let c = f64::from(v) - m;
            *s += c * c;
        }
    }
    var.iter_mut().for_each(|v| *v /= n);
    (mean, var)
}

/// `LeakyReLU((h − mean)·inv_std)` per column, with the batch statistics given. Backward (the
/// statistics depend on `h`): with `x̂ = (h − mean)·inv_std` and `ĝ = g·LeakyReLU'(x̂)`,
/// `dh = inv_std·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` per column.
struct BnLeaky {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl BnLeaky {
    #[inline]
    fn slope(x: f32) -> f32 {
        if x > 0.0 {
            1.0
        } else {
            LEAKY_SLOPE as f32
        }
    }
}

impl CustomOp1 for BnLeaky {
    fn name(&self) -> &'static str {
        "heldout-batch-norm-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let k = self.mean.len();
        let mut y = match s {
            CpuStorage::F32(v) => match l.contiguous_offsets() {
                Some((a, b)) => v[a..b].to_vec(),
                None => candle_core::bail!("batch norm: contiguous input only"),
            },
            _ => candle_core::bail!("batch norm: f32 only"),
        };
        if k == 0 || y.len() % k != 0 {
            candle_core::bail!("batch norm: {} values for {k} columns", y.len());
        }
        for row in y.chunks_exact_mut(k) {
            for ((v, &m), &r) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                let x = (*v - m) * r;
                *v = x * Self::slope(x);
            }
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, h: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let k = self.mean.len();
        let dh = with_f32(h, "batch norm backward", |hv| {
            with_f32(grad, "batch norm backward", |g| {
                if k == 0 || hv.len() != g.len() || hv.len() % k != 0 {
                    candle_core::bail!("batch norm backward: shapes do not match");
                }
                let n = (hv.len() / k) as f32;
                // x̂ and ĝ, then the column sums of ĝ and ĝ·x̂
                let mut xhat = vec![0f32; hv.len()];
                let mut gh = vec![0f32; hv.len()];
                let (mut s1, mut s2) = (vec![0f32; k], vec![0f32; k]);
                for (((hr, gr), xr), ghr) in hv
                    .chunks_exact(k)
                    .zip(g.chunks_exact(k))
                    .zip(xhat.chunks_exact_mut(k))
                    .zip(gh.chunks_exact_mut(k))
                {
                    for j in 0..k {
                        let x = (hr[j] - self.mean[j]) * self.inv_std[j];
                        let gj = gr[j] * Self::slope(x);
                        xr[j] = x;
                        ghr[j] = gj;
                        s1[j] += gj;
                        s2[j] += gj * x;
                    }
                }
                for j in 0..k {
                    s1[j] /= n;
                    s2[j] /= n;
                }
                for (xr, ghr) in xhat.chunks_exact(k).zip(gh.chunks_exact_mut(k)) {
                    for j in 0..k {
                        ghr[j] = self.inv_std[j] * (ghr[j] - s1[j] - xr[j] * s2[j]);
                    }
                }
                Ok(gh)
            })
        })?;
        Ok(Some(Tensor::from_vec(dh, h.shape(), h.device())?))
    }
}

/// LeakyReLU(0.01) as `0.99·relu(x) + 0.01·x`.
fn leaky_relu(x: &Tensor) -> R<Tensor> {
    Ok(((x.relu()? * (1.0 - LEAKY_SLOPE))? + (x * LEAKY_SLOPE)?)?)
}

/// `Linear(no bias) + BatchNorm1d + LeakyReLU`.
#[derive(Debug, Clone)]
struct Block {
    w: Var,
    bn: BatchNorm,
}

impl Block {
    /// Train mode; `const_input`: `x` is the data batch (no gradient wanted for it).
    fn forward_train(&mut self, x: &Tensor, const_input: bool) -> R<Tensor> {
        let h = matmul_train(x, &self.w, const_input)?;
        self.bn.train_leaky(&h)
    }

    fn forward_eval(&self, x: &Tensor) -> R<Tensor> {
        self.bn.eval_leaky(&x.matmul(self.w.as_tensor())?)
    }
}

/// A bias-free weight `(d_in, d_out)` drawn like torch's `nn.Linear` default, `U(±1/√d_in)`.
fn weight(
    p: &mut Params,
    name: String,
    d_in: usize,
    d_out: usize,
    rng: &mut SplitMix64,
    dev: &Device,
) -> R<Var> {
    let bound = 1.0 / (d_in as f64).sqrt();
    let v: Vec<f32> = (0..d_in * d_out)
        .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
        .collect();
    let w = Var::from_tensor(&Tensor::from_vec(v, (d_in, d_out), dev)?)?;
    p.push(name, w.clone());
    Ok(w)
}

/// `x·W` in a pass that is backpropagated; with `const_input` (the data batch) through the
/// fused product that computes no gradient for `x` (CPU).
fn matmul_train(x: &Tensor, w: &Var, const_input: bool) -> R<Tensor> {
    if const_input && fusable(x) {
        Ok(const_lhs_matmul(x, w.as_tensor())?)
    } else {
        Ok(x.matmul(w.as_tensor())?)
    }
}

/// Encoder and decoder.
struct Net {
    enc: Vec<Block>,
    code: Var,
    dec: Vec<Block>,
    out: Var,
    enc_params: Params,
    dec_params: Params,
}

impl Net {
    fn new(d: usize, hidden: &[usize], rep: usize, rng: &mut SplitMix64, dev: &Device) -> R<Self> {
        let mut enc_params = Params::default();
        let mut dec_params = Params::default();
        let mut enc = Vec::with_capacity(hidden.len());
        let mut prev = d;
        for (i, &k) in hidden.iter().enumerate() {
            let w = weight(
                &mut enc_params,
                format!("enc.fc{i}.weight"),
                prev,
                k,
                rng,
                dev,
            )?;
            enc.push(Block {
                w,
                bn: BatchNorm::new(k),
            });
            prev = k;
        }
        let code = weight(
            &mut enc_params,
            "enc.code.weight".into(),
            prev,
            rep,
            rng,
            dev,
        )?;
        let mut dec = Vec::with_capacity(hidden.len());
        prev = rep;
        for (i, &k) in hidden.iter().rev().enumerate() {
            let w = weight(
                &mut dec_params,
                format!("dec.fc{i}.weight"),
                prev,
                k,
                rng,
                dev,
            )?;
            dec.push(Block {
                w,
                bn: BatchNorm::new(k),
            });
            prev = k;
        }
        let out = weight(&mut dec_params, "dec.out.weight".into(), prev, d, rng, dev)?;
        Ok(Net {
            enc,
            code,
            dec,
            out,
            enc_params,
            dec_params,
        })
    }

    fn encode_train(&mut self, x: &Tensor) -> R<Tensor> {
        let mut h = x.clone();
        for (i, b) in self.enc.iter_mut().enumerate() {
            h = b.forward_train(&h, i == 0)?;
        }
        matmul_train(&h, &self.code, self.enc.is_empty())
    }

    fn encode_eval(&self, x: &Tensor) -> R<Tensor> {
        let mut h = x.clone();
        for b in &self.enc {
            h = b.forward_eval(&h)?;
        }
        Ok(h.matmul(self.code.as_tensor())?)
    }

    fn decode_train(&mut self, z: &Tensor) -> R<Tensor> {
        let mut h = z.clone();
        for b in &mut self.dec {
            h = b.forward_train(&h, false)?;
        }
        Ok(h.matmul(self.out.as_tensor())?)
    }
}

/// Gradients of `vars` from a backward pass, keyed for [`Adam::step`].
fn grads_of(
    g: &candle_core::backprop::GradStore,
    vars: &[Var],
) -> HashMap<candle_core::TensorId, Tensor> {
    let mut out = HashMap::with_capacity(vars.len());
    for v in vars {
        if let Some(t) = g.get(v.as_tensor()) {
            out.insert(v.as_tensor().id(), t.clone());
        }
    }
    out
}

/// A trained Deep SVDD / Deep SAD model: encoder, batch-norm statistics and centre.
pub struct DeepSadModel {
    d: usize,
    net: Net,
    /// (1, rep_dim)
    c: Tensor,
    device: Device,
}

impl DeepSadModel {
    /// Deep SAD: trains on `normals` (unlabelled) and `anomalies` (labelled, `s = −1`), both
    /// row-major with `d` columns, already scaled. Calls `epoch_done("pretrain", epoch, epochs,
    /// &[("mse", …)])` after each pre-training epoch, then `epoch_done("svdd", epoch, epochs,
    /// &[("loss", …)])` (means over the epoch's batches); checks `stop` every step.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        p: &DeepSadParams,
        normals: &[f32],
        anomalies: &[f32],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("deep_sad: {k} {m}")))?;
        rows_of("deep_sad", "normal", normals, d)?;
        rows_of("deep_sad", "labelled anomaly", anomalies, d)?;
        Self::train(
            "deep_sad",
            &p.common(),
            Some(p.eta),
            normals,
            anomalies,
            d,
            seed,
            device,
            stop,
            epoch_done,
        )
    }

    /// Deep SVDD: [`DeepSadModel::fit`] on `normals` only, without labels.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_svdd(
        p: &DeepSvddParams,
        normals: &[f32],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("deep_svdd: {k} {m}")))?;
        rows_of("deep_svdd", "normal", normals, d)?;
        Self::train(
            "deep_svdd",
            &p.common(),
            None,
            normals,
            &[],
            d,
            seed,
            device,
            stop,
            epoch_done,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn train(
        method: &'static str,
        p: &Common,
        eta: Option<f64>,
        normals: &[f32],
        anomalies: &[f32],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        let n_n = normals.len() / d;
        let n = n_n + anomalies.len() / d;
        if n < 2 {
            return Err(DetectError::Other(format!(
                "{method}: needs at least 2 training rows (batch norm), got {n}"
            )));
        }
        // rows 0..n_n are normals (s = 0), the rest labelled anomalies (s = −1)
        let row = |r: usize| -> &[f32] {
            if r < n_n {
                &normals[r * d..(r + 1) * d]
            } else {
                &anomalies[(r - n_n) * d..(r - n_n + 1) * d]
            }
        };
        let mut wrng = SplitMix64::new(seed.wrapping_add(40));
        let mut net = Net::new(d, p.hidden, p.rep_dim, &mut wrng, device)?;
        let mut rng = SplitMix64::new(seed.wrapping_add(999));
        let bs = p.batch_size;
        let mut perm: Vec<usize> = (0..n).collect();
        let mut xb: Vec<f32> = Vec::with_capacity(bs * d);
        let mut ab: Vec<f32> = Vec::with_capacity(bs);
        let cfg = AdamConfig::new(p.lr, p.weight_decay, false);

        // 1. autoencoder pre-training
        let mut ae_vars = net.enc_params.all();
        ae_vars.extend(net.dec_params.all());
        let mut opt = Adam::new(ae_vars.clone(), cfg)?;
        for epoch in 1..=p.pre_epochs {
            fresh_permutation(&mut perm, &mut rng);
            let (mut sum, mut count) = (0.0, 0usize);
            for b in perm.chunks(bs) {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                if b.len() < 2 {
                    continue;
                }
                xb.clear();
                for &r in b {
                    xb.extend_from_slice(row(r));
                }
                let x = Tensor::from_slice(&xb, (b.len(), d), device)?;
                let z = net.encode_train(&x)?;
                let rec = net.decode_train(&z)?;
                let loss = (rec - &x)?.sqr()?.sum(1)?.mean_all()?;
                let lv = f64::from(loss.to_scalar::<f32>()?);
                if !lv.is_finite() {
                    return Err(nan_error(method, "pretrain", epoch));
                }
                sum += lv;
                count += 1;
                let g = loss.backward()?;
                opt.step(&grads_of(&g, &ae_vars), p.lr)?;
            }
            epoch_done(
                "pretrain",
                epoch,
                p.pre_epochs,
                &[("mse", sum / count.max(1) as f64)],
            );
        }

        // 2. the centre: mean eval-mode code over all training rows
        let rep = p.rep_dim;
        let mut csum = vec![0f64; rep];
        let mut rows: Vec<f32> = Vec::with_capacity(EVAL_CHUNK * d);
        for start in (0..n).step_by(EVAL_CHUNK) {
            rows.clear();
            let end = (start + EVAL_CHUNK).min(n);
            for r in start..end {
                rows.extend_from_slice(row(r));
            }
            let x = Tensor::from_slice(&rows, (end - start, d), device)?;
            let s = net.encode_eval(&x)?.sum(0)?.to_vec1::<f32>()?;
            for (a, v) in csum.iter_mut().zip(s) {
                *a += f64::from(v);
            }
        }
        let c: Vec<f32> = csum
            .iter()
            .map(|&s| {
                let v = (s / n as f64) as f32;
                // the reference: |c| < 0.1 → ±0.1 by sign; an exact 0 stays 0
                if v.abs() < 0.1 && v < 0.0 {
                    -0.1
                } else if v.abs() < 0.1 && v > 0.0 {
                    0.1
                } else {
                    v
                }
            })
            .collect();
        if c.iter().any(|v| !v.is_finite()) {
            return Err(nan_error(method, "centre", p.pre_epochs));
        }
        let c = Tensor::from_vec(c, (1, rep), device)?;

        // 3. the encoder towards c (labelled anomalies away from it)
        let enc_vars = net.enc_params.all();
        let mut opt = Adam::new(enc_vars.clone(), cfg)?;
        for epoch in 1..=p.epochs {
            fresh_permutation(&mut perm, &mut rng);
            let (mut sum, mut count) = (0.0, 0usize);
            for b in perm.chunks(bs) {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                if b.len() < 2 {
                    continue;
                }
                xb.clear();
                ab.clear();
                for &r in b {
                    xb.extend_from_slice(row(r));
                    ab.push(if r < n_n { 0.0 } else { 1.0 });
                }
                let x = Tensor::from_slice(&xb, (b.len(), d), device)?;
                let dist = net.encode_train(&x)?.broadcast_sub(&c)?.sqr()?.sum(1)?;
                let loss = match eta {
                    Some(eta) if ab.iter().any(|&a| a > 0.0) => {
                        let a = Tensor::from_slice(&ab, b.len(), device)?;
                        sad_loss(&dist, &a, eta)?
                    }
                    _ => dist.mean_all()?,
                };
                let lv = f64::from(loss.to_scalar::<f32>()?);
                if !lv.is_finite() {
                    return Err(nan_error(method, "svdd", epoch));
                }
                sum += lv;
                count += 1;
                let g = loss.backward()?;
                opt.step(&grads_of(&g, &enc_vars), p.lr)?;
            }
            epoch_done(
                "svdd",
                epoch,
                p.epochs,
                &[("loss", sum / count.max(1) as f64)],
            );
        }
        Ok(DeepSadModel {
            d,
            net,
            c,
            device: device.clone(),
        })
    }

    /// `‖φ(x) − c‖²` per row of `x` (row-major, `d` columns), eval mode; higher = more anomalous.
    pub fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("deep_sad", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(EVAL_CHUNK * self.d) {
            let t = Tensor::from_slice(chunk, (chunk.len() / self.d, self.d), &self.device)?;
            let dist = self
                .net
                .encode_eval(&t)?
                .broadcast_sub(&self.c)?
                .sqr()?
                .sum(1)?
                .to_vec1::<f32>()?;
            out.extend(dist.into_iter().map(f64::from));
        }
        Ok(out)
    }

    /// The centre `c`.
    pub fn centre(&self) -> R<Vec<f32>> {
        Ok(self.c.flatten_all()?.to_vec1()?)
    }

    /// Saves weights (stored (in, out)), batch-norm running statistics and the centre `c` as
    /// safetensors.
    pub fn save(&self, path: &std::path::Path) -> R<()> {
        let mut p = Params::default();
        p.vars.extend(self.net.enc_params.vars.iter().cloned());
        p.vars.extend(self.net.dec_params.vars.iter().cloned());
        let stats = |p: &mut Params, part: &str, blocks: &[Block]| -> R<()> {
            for (i, b) in blocks.iter().enumerate() {
                let k = b.bn.running_mean.len();
                p.push(
                    format!("{part}.bn{i}.running_mean"),
                    Var::from_slice(&b.bn.running_mean, k, &self.device)?,
                );
                p.push(
                    format!("{part}.bn{i}.running_var"),
                    Var::from_slice(&b.bn.running_var, k, &self.device)?,
                );
            }
            Ok(())
        };
        stats(&mut p, "enc", &self.net.enc)?;
        stats(&mut p, "dec", &self.net.dec)?;
        p.push("c".into(), Var::from_tensor(&self.c.flatten_all()?)?);
        Ok(p.save(path)?)
    }
}

/// `mean(where(a = 1, η / (dist + 1e-6), dist))` — the reference's
/// `where(s == 0, dist, η·(dist + 1e-6)^s)` with `s = −a`, `a` = 1 for labelled anomalies.
fn sad_loss(dist: &Tensor, a: &Tensor, eta: f64) -> R<Tensor> {
    let inv = ((dist + 1e-6)?.recip()? * eta)?;
    let blend = ((dist * &a.affine(-1.0, 1.0)?)? + (inv * a)?)?;
    Ok(blend.mean_all()?)
}

/// `perm` ← a fresh permutation of `0..n` (as numpy's `rng.permutation(n)`).
fn fresh_permutation(perm: &mut [usize], rng: &mut SplitMix64) {
    for (i, v) in perm.iter_mut().enumerate() {
        *v = i;
    }
    rng.shuffle(perm);
}

/// The parameters of Deep SAD and Deep SVDD in the registry (same network and schedule).
macro_rules! deep_sad_params {
    ($($extra:expr),*) => {{
        use super::ParamInfo as P;
        &[
            P::int_list("hidden", 1, 8192, 8, "widths of the encoder's hidden layers, the decoder mirrors them (spec §6: 128, 64)"),
            P::int("rep_dim", 1, 8192, "width of the code φ(x) the distance to the centre is measured in (32)"),
            P::int("pre_epochs", 0, 10_000, "autoencoder pre-training epochs, 0 = none (reference: 5; spec: 100)"),
            P::int("epochs", 1, 10_000, "epochs towards the centre (reference: 15; spec: 50)"),
            P::int("batch_size", 2, 65_536, "rows per batch (128)"),
            P::float("lr", 0.0, 1.0, "Adam learning rate, both stages (1e-3)"),
            P::float("weight_decay", 0.0, 1.0, "Adam L2 weight decay, both stages (1e-6)"),
            $($extra),*
        ]
    }};
}
pub(crate) use deep_sad_params;

impl super::MethodSpec for DeepSadParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "Deep SAD",
            paper: "Ruff et al., Deep semi-supervised anomaly detection (ICLR 2020); spec §6, reference refbench/deep.py",
            labels: super::Labels::FewShot,
            summary: "An encoder pulls normals towards a centre c and pushes the labelled anomalies away (inverse distance, weight η), after autoencoder pre-training; score ‖φ(x) − c‖².",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        const PARAMS: &[super::ParamInfo] = deep_sad_params!(super::ParamInfo::float(
            "eta",
            0.0,
            1e6,
            "weight η of the labelled anomalies' inverse-distance term, > 0 (1)"
        ));
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        DeepSadParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "deepsad".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        // normals and the labelled few-shot anomalies, shuffled together
        self.common().cost(s.normals + s.few_shot_total(), s)
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<DeepSadModel>(SadOrSvdd::Sad(self.clone()), super::MethodSpec::name(self), ctx.seed)
    }
}

impl Common<'_> {
    /// One unit's cost with `n` training rows (normals, plus labelled anomalies for Deep SAD).
    fn cost(&self, n: f64, s: &super::cost::UnitSizes) -> super::cost::Cost {
        use super::cost::*;
        let mut enc: Layers = Vec::new();
        let mut prev = s.d;
        for &h in self.hidden {
            enc.push((prev, h as f64));
            prev = h as f64;
        }
        enc.push((prev, self.rep_dim as f64));
        // the mirror decoder: rep → … → first hidden → d
        let mut dec: Layers = Vec::new();
        let mut prev = self.rep_dim as f64;
        for &h in self.hidden.iter().rev() {
            dec.push((prev, h as f64));
            prev = h as f64;
        }
        dec.push((prev, s.d));
        let both: Layers = enc.iter().chain(&dec).copied().collect();
        // the weights, plus what the file also holds: the centre c and every batch norm's
        // running mean and variance (encoder and decoder)
        let hidden: f64 = self.hidden.iter().map(|&h| h as f64).sum();
        let params = dense_params(&enc, false)
            + dense_params(&dec, false)
            + self.rep_dim as f64
            + 4.0 * hidden;
        let bs = (self.batch_size as f64).min(n);
        let per_epoch = (n / self.batch_size as f64).ceil();
        use super::mlp::{BN_TRAIN_SPEED as TRAIN_SPEED, SCORE_SPEED};
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            // the centre and the scores run in chunks of 4,096 rows; what a chunk's graph keeps
            // (with candle's buffers) measured as ~12 copies of every layer's output per row:
            // 55 MB on the CIC-IDS2017 sample, 20 MB on the demo (bench/results/estimate-*.txt)
            step_bytes: dense_activation_bytes(&both, bs, 4.0).max(dense_activation_bytes(
                &enc,
                n.max(s.checkpoint).max(s.val).min(EVAL_CHUNK as f64),
                12.0,
            )),
            phases: vec![
                Phase {
                    name: "autoencoder pre-training",
                    steps: self.pre_epochs as f64 * per_epoch,
                    flops: dense_train_flops(&both, bs),
                    speed: TRAIN_SPEED,
                },
                Phase {
                    name: "training steps",
                    steps: self.epochs as f64 * per_epoch,
                    flops: dense_train_flops(&enc, bs),
                    speed: TRAIN_SPEED,
                },
                Phase {
                    name: "centre and scoring",
                    steps: 1.0,
                    flops: dense_forward_flops(&enc, n + s.checkpoint + s.scored()),
                    speed: SCORE_SPEED,
                },
            ],
            records: (self.pre_epochs + self.epochs) as f64 + checkpoint_records(s) + final_records(s),
        }
    }
}

impl DeepSvddParams {
    /// One unit's cost (see [`super::MethodSpec::cost`]): trained on the normals.
    pub fn cost_of(&self, s: &super::cost::UnitSizes) -> super::cost::Cost {
        self.common().cost(s.normals, s)
    }
}

/// Which of the two methods a [`DeepSadModel`] is fitted as.
#[derive(Debug, Clone)]
pub enum SadOrSvdd {
    Sad(DeepSadParams),
    Svdd(DeepSvddParams),
}

impl super::Fit for DeepSadModel {
    type Params = SadOrSvdd;
    fn fit(
        p: &SadOrSvdd,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, DetectError> {
        let device = ctx.device.clone();
        let emit = &mut *ctx.emit;
        let mut epoch_done =
            |phase, epoch, epochs, terms: &[(&'static str, f64)]| super::emit_epoch(emit, phase, epoch, epochs, terms);
        match p {
            SadOrSvdd::Sad(p) => DeepSadModel::fit(
                p,
                &data.normals,
                &super::concat_rows(&data.few_shot),
                data.d,
                seed,
                &device,
                ctx.stop,
                &mut epoch_done,
            ),
            SadOrSvdd::Svdd(p) => DeepSadModel::fit_svdd(
                p,
                &data.normals,
                data.d,
                seed,
                &device,
                ctx.stop,
                &mut epoch_done,
            ),
        }
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        DeepSadModel::score(self, x)
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        DeepSadModel::save(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::mlp::tests::{auc, ciciot, split};

    fn quiet() -> impl FnMut(&'static str, usize, usize, &[(&'static str, f64)]) {
        |_, _, _, _| {}
    }

    fn close(a: &[f32], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((f64::from(*x) - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    /// Deep SVDD on CICIoT2023 benign rows: the reference reaches AUC 0.993 on DDoS (held out).
    #[test]
    fn deep_svdd_beats_0_8_on_ciciot_ddos() {
        let s = split(ciciot(), Some("DDoS"), "DDoS", usize::MAX);
        let p = DeepSvddParams::default();
        let stop = AtomicBool::new(false);
        let mut log = Vec::new();
        let t0 = std::time::Instant::now();
        let m = DeepSadModel::fit_svdd(
            &p,
            &s.normals,
            s.d,
            0,
            &Device::Cpu,
            &stop,
            &mut |st, e, n, t| log.push((st, e, n, t[0].0, t[0].1)),
        )
        .unwrap();
        let fit_s = t0.elapsed().as_secs_f64();
        let scores = m.score(&s.test_x).unwrap();
        let auc = auc(&s, &scores);
        eprintln!(
            "deep_svdd: {} normals, fit {fit_s:.2}s, DDoS AUC {auc:.4}",
            s.normals.len() / s.d
        );
        assert!(auc > 0.8, "AUC {auc}");
        assert_eq!(log.len(), 20);
        assert_eq!(log[0].0, "pretrain");
        assert_eq!(log[0].3, "mse");
        assert_eq!(log[5].0, "svdd");
        assert_eq!((log[19].1, log[19].2), (15, 15));
        assert!(log[4].4 < log[0].4, "pretraining lowers the MSE: {log:?}");
        // the centre follows the ±0.1 rule
        assert!(m
            .centre()
            .unwrap()
            .iter()
            .all(|v| v.abs() >= 0.1 || *v == 0.0));
        // same seed: identical scores
        let m2 = DeepSadModel::fit_svdd(&p, &s.normals, s.d, 0, &Device::Cpu, &stop, &mut quiet())
            .unwrap();
        assert_eq!(scores, m2.score(&s.test_x).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svdd.safetensors");
        m.save(&path).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back["c"].dims(), &[32]);
        assert_eq!(back["enc.bn1.running_var"].dims(), &[64]);
        assert_eq!(back["enc.fc0.weight"].dims(), &[s.d, 128]);
        assert_eq!(back["dec.out.weight"].dims(), &[128, s.d]);
    }

    /// Deep SAD with the few-shot rows of the other families: the reference reaches 1.0 on
    /// CICIoT2023 DDoS (held out).
    #[test]
    fn deep_sad_beats_0_8_on_ciciot_ddos_and_is_deterministic() {
        let s = split(ciciot(), Some("DDoS"), "DDoS", usize::MAX);
        let p = DeepSadParams::default();
        let stop = AtomicBool::new(false);
        let t0 = std::time::Instant::now();
        let fit = |seed| {
            DeepSadModel::fit(
                &p,
                &s.normals,
                &s.few_shot,
                s.d,
                seed,
                &Device::Cpu,
                &stop,
                &mut quiet(),
            )
            .unwrap()
        };
        let m = fit(1);
        let fit_s = t0.elapsed().as_secs_f64();
        let scores = m.score(&s.test_x).unwrap();
        let auc = auc(&s, &scores);
        eprintln!(
            "deep_sad: {} normals + {} labelled, fit {fit_s:.2}s, DDoS AUC {auc:.4}",
            s.normals.len() / s.d,
            s.few_shot.len() / s.d
        );
        assert!(auc > 0.8, "AUC {auc}");
        assert_eq!(scores, fit(1).score(&s.test_x).unwrap());
        assert_ne!(scores, fit(2).score(&s.test_x).unwrap());
    }

    /// Train mode normalises with the batch's mean and biased variance and moves the running
    /// statistics by 0.1 towards the batch's mean and unbiased variance; eval mode uses those.
    /// Both the fused kernel and the composed ops, then LeakyReLU(0.01).
    #[test]
    fn batch_norm_train_and_eval_statistics() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 0., 7., 2.], (4, 2), &dev).unwrap();
        let leaky = |v: f64| if v > 0.0 { v } else { 0.01 * v };
        let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        for fused in [true, false] {
            let mut bn = BatchNorm::new(2);
            let train = |bn: &mut BatchNorm| {
                if fused {
                    bn.train_leaky(&x).unwrap()
                } else {
                    bn.train_leaky_composed(&x).unwrap()
                }
            };
            let y = train(&mut bn);
            // columns: mean 4 and 2, biased variance 5 and 2, unbiased 20/3 and 8/3
            let (s0, s1) = ((5.0f64 + 1e-4).sqrt(), (2.0f64 + 1e-4).sqrt());
            let want: Vec<f64> = [
                -3.0 / s0,
                0.0,
                -1.0 / s0,
                2.0 / s1,
                1.0 / s0,
                -2.0 / s1,
                3.0 / s0,
                0.0,
            ]
            .into_iter()
            .map(leaky)
            .collect();
            close(&flat(&y), &want, 1e-6);
            let (rm, rv) = ([0.4, 0.2], [0.9 + 0.1 * 20.0 / 3.0, 0.9 + 0.1 * 8.0 / 3.0]);
            close(&bn.running_mean, &rm, 1e-6);
            close(&bn.running_var, &rv, 1e-6);
            let e = bn.eval_leaky(&x).unwrap();
            let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 7.0, 2.0];
            let want: Vec<f64> = xs
                .iter()
                .enumerate()
                .map(|(i, v)| leaky((v - rm[i % 2]) / (rv[i % 2] + 1e-4).sqrt()))
                .collect();
            close(&flat(&e), &want, 1e-6);
            // a second train step moves the running statistics again, from where they are
            train(&mut bn);
            close(&bn.running_mean, &[0.9 * 0.4 + 0.4, 0.9 * 0.2 + 0.2], 1e-6);
        }
    }

    /// The fused batch norm + LeakyReLU has the gradient of the composed ops.
    #[test]
    fn fused_batch_norm_gradient_matches_composed_ops() {
        let dev = Device::Cpu;
        let mut rng = SplitMix64::new(11);
        let mut vals =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_normal() as f32).collect() };
        let h = Var::from_vec(vals(6 * 3), (6, 3), &dev).unwrap();
        let up = Tensor::from_vec(vals(6 * 3), (6, 3), &dev).unwrap();
        let grad = |fused: bool| -> Vec<f32> {
            let mut bn = BatchNorm::new(3);
            let y = if fused {
                bn.train_leaky(h.as_tensor()).unwrap()
            } else {
                bn.train_leaky_composed(h.as_tensor()).unwrap()
            };
            let g = (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
            g.get(h.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let (f, c) = (grad(true), grad(false));
        let c64: Vec<f64> = c.iter().map(|&v| f64::from(v)).collect();
        close(&f, &c64, 1e-5);
        assert!(f.iter().any(|v| v.abs() > 1e-3));
    }

    /// The loss on a hand-made case: normals count their distance, labelled anomalies η/(dist+1e-6).
    #[test]
    fn sad_loss_by_hand() {
        let dev = Device::Cpu;
        let dist = Tensor::new(&[2f32, 0.5, 4.0, 1.0], &dev).unwrap();
        let a = Tensor::new(&[0f32, 0.0, 1.0, 1.0], &dev).unwrap();
        let l = sad_loss(&dist, &a, 2.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let want = (2.0 + 0.5 + 2.0 / (4.0 + 1e-6) + 2.0 / (1.0 + 1e-6)) / 4.0;
        assert!((f64::from(l) - want).abs() < 1e-6, "{l} vs {want}");
    }

    /// Adam with L2-coupled decay (torch.optim.Adam, lr 0.1, wd 0.5) for two steps on a
    /// hand-made case; the numbers are torch's update written out:
    /// g' = g + wd·p, m = β₁m + (1−β₁)g', v = β₂v + (1−β₂)g'², p −= lr·(m/bc₁)/(√(v/bc₂) + ε).
    #[test]
    fn adam_l2_two_steps_by_hand() {
        let dev = Device::Cpu;
        let p = Var::from_vec(vec![1f32, -2.0], 2, &dev).unwrap();
        let mut opt = Adam::new(vec![p.clone()], AdamConfig::new(0.1, 0.5, false)).unwrap();
        let step = |opt: &mut Adam, g: [f32; 2]| {
            let g = Tensor::new(&g, &dev).unwrap();
            opt.step(&HashMap::from([(p.as_tensor().id(), g)]), 0.1)
                .unwrap();
        };
        step(&mut opt, [0.5, 0.1]);
        // step 1: g' = (1.0, −0.9); m̂/√v̂ = ±1 → p = (0.9, −1.9)
        close(&p.as_tensor().to_vec1().unwrap(), &[0.9, -1.9], 1e-6);
        step(&mut opt, [-0.2, 0.3]);
        // step 2: g' = (0.25, −0.65); m = (0.1·0.9·1 + 0.1·0.25, 0.9·(−0.09) + 0.1·(−0.65))
        //   = (0.115, −0.146); v = (0.999·0.001 + 0.001·0.0625, 0.999·0.00081 + 0.001·0.4225)
        //   = (0.0010615, 0.00123169); bc₁ = 0.19, bc₂ = 0.001999
        let (m, v) = (
            [0.115f64, -0.146],
            [0.0010615f64, 0.000_809_19 + 0.000_422_5],
        );
        let want: Vec<f64> = [0.9f64, -1.9]
            .iter()
            .zip(m.iter().zip(&v))
            .map(|(p, (m, v))| p - 0.1 * (m / 0.19) / ((v / 0.001999).sqrt() + 1e-8))
            .collect();
        close(&p.as_tensor().to_vec1().unwrap(), &want, 1e-5);
        // (0.9 − 0.1·0.60526/0.72871 = 0.81694, −1.9 + 0.1·0.76842/0.78496 = −1.80211)
        close(
            &p.as_tensor().to_vec1().unwrap(),
            &[0.816_94, -1.802_11],
            1e-4,
        );
    }

    #[test]
    fn invalid_params_are_rejected_by_name() {
        let stop = AtomicBool::new(false);
        let svdd = [
            (
                DeepSvddParams {
                    hidden: vec![0],
                    ..Default::default()
                },
                "hidden",
            ),
            (
                DeepSvddParams {
                    rep_dim: 0,
                    ..Default::default()
                },
                "rep_dim",
            ),
            (
                DeepSvddParams {
                    epochs: 0,
                    ..Default::default()
                },
                "epochs",
            ),
            (
                DeepSvddParams {
                    pre_epochs: 100_000,
                    ..Default::default()
                },
                "pre_epochs",
            ),
            (
                DeepSvddParams {
                    batch_size: 1,
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                DeepSvddParams {
                    lr: -1.0,
                    ..Default::default()
                },
                "lr",
            ),
            (
                DeepSvddParams {
                    weight_decay: 2.0,
                    ..Default::default()
                },
                "weight_decay",
            ),
        ];
        for (p, name) in svdd {
            assert_eq!(p.validate().unwrap_err().0, name);
            let e = DeepSadModel::fit_svdd(&p, &[0.0; 8], 2, 0, &Device::Cpu, &stop, &mut quiet())
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(name), "{e}");
        }
        let sad = DeepSadParams {
            eta: 0.0,
            ..Default::default()
        };
        assert_eq!(sad.validate().unwrap_err().0, "eta");
        let sad = DeepSadParams {
            batch_size: 0,
            ..Default::default()
        };
        assert_eq!(sad.validate().unwrap_err().0, "batch_size");
        assert!(DeepSadParams::default().validate().is_ok());
        assert!(DeepSvddParams::default().validate().is_ok());
        let p: DeepSadParams = ron::from_str("(eta: 2.0)").unwrap();
        assert_eq!((p.eta, p.epochs), (2.0, 15));
        assert!(ron::from_str::<DeepSvddParams>("(eta: 2.0)").is_err());
    }

    #[test]
    fn empty_data_and_stop_are_errors_not_panics() {
        let stop = AtomicBool::new(false);
        let sad = DeepSadParams::default();
        let svdd = DeepSvddParams::default();
        let e = DeepSadModel::fit_svdd(&svdd, &[], 2, 0, &Device::Cpu, &stop, &mut quiet());
        assert!(e.err().unwrap().to_string().contains("no normal rows"));
        let e = DeepSadModel::fit_svdd(&svdd, &[1.0, 2.0], 2, 0, &Device::Cpu, &stop, &mut quiet());
        assert!(e.err().unwrap().to_string().contains("at least 2"));
        let e = DeepSadModel::fit(
            &sad,
            &[1.0; 8],
            &[],
            2,
            0,
            &Device::Cpu,
            &stop,
            &mut quiet(),
        );
        assert!(e
            .err()
            .unwrap()
            .to_string()
            .contains("no labelled anomaly rows"));
        let stopped = AtomicBool::new(true);
        let e = DeepSadModel::fit(
            &sad,
            &[1.0; 8],
            &[2.0; 2],
            2,
            0,
            &Device::Cpu,
            &stopped,
            &mut quiet(),
        );
        assert!(matches!(e, Err(DetectError::Stopped)));
        let e = DeepSadModel::fit(
            &sad,
            &[3e38, -3e38, -3e38, 3e38, 3e38, 3e38, -3e38, -3e38],
            &[2.0; 2],
            2,
            0,
            &Device::Cpu,
            &stop,
            &mut quiet(),
        );
        let e = e.err().unwrap().to_string();
        assert!(
            e.contains("deep_sad") && e.contains("in epoch 1 (pretrain"),
            "{e}"
        );
        let e = DeepSadModel::fit(
            &sad,
            &[f32::INFINITY; 8],
            &[2.0; 2],
            2,
            0,
            &Device::Cpu,
            &stop,
            &mut quiet(),
        );
        let e = e.err().unwrap().to_string();
        assert!(e.contains("non-finite"), "{e}");
        // a tiny but valid fit scores any number of rows, including none
        let m = DeepSadModel::fit_svdd(
            &DeepSvddParams {
                pre_epochs: 1,
                epochs: 1,
                ..Default::default()
            },
            &[0.0, 1.0, 1.0, 0.0, 2.0, 2.0],
            2,
            0,
            &Device::Cpu,
            &stop,
            &mut quiet(),
        )
        .unwrap();
        assert!(m.score(&[]).unwrap().is_empty());
        assert_eq!(m.score(&[0.5; 6]).unwrap().len(), 3);
        assert!(m.score(&[0.5; 5]).is_err());
    }
}
