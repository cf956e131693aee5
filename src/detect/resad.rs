//! ResAD, the authors' tabular micro-variant (spec §1.20; padmaksha18/Multi-direcitonal-Meta-Learning
//! `BASELINES/Res_AD.ipynb` at b784cb759616, "ResAD — MICRO PILOT"). The original ResAD (NeurIPS
//! 2024, images) matches residuals against a few-shot reference set and scores them with a
//! normalising flow; the authors' tabular pilot replaces the first by per-family centroids and the
//! second by a diagonal Gaussian. heldout follows the pilot with its command-line defaults.
//!
//! 1. **Encoder** `D → 128` (GELU) → 1 ResBlock(128) (pre-norm, half-scaled, as the meta-learner's,
//!    no stochastic depth) → Dropout(0.05) → `64`; a decoder `64 → 128` (GELU) `→ D`. Pre-trained
//!    as an autoencoder for 3 epochs on the **normal** rows of each batch of the shuffled training
//!    rows (MSE, mean; batches without normals skipped), then **frozen** (eval mode; the notebook's
//!    default, `--finetune_encoder` off).
//! 2. **Centroids.** The notebook takes, per family, the mean code of that family's train normals
//!    (each CSE-CIC-IDS2018 file has its own benign rows), and gives every row — anomalies and
//!    test rows included — its own family's centroid (a test row's family is read from its label
//!    file). heldout pools the benign rows (one normal family) and does not know a test row's
//!    family, so: `centroids` centres from the eval-mode codes of the normal training rows
//!    (k-means, Lloyd's iterations from `centroids` distinct random normals; with the default 1 it
//!    is the mean code of all normals), and **every row uses its nearest centre** (squared
//!    Euclidean distance) — train normals, labelled anomalies and scored rows alike. Residual
//!    `r = z − c(z)`.
//! 3. **Feature constraintor** `64 → C` (BatchNorm1d, ReLU) `→ 64`, `r' = con(r)`. The notebook
//!    builds it with `hid = max(64, bottleneck) = 64`, so `C = 64` by default (the spec's 128 is
//!    the class's default, which that call overrides).
//! 4. **Losses** (the notebook's `occ_loss` and its boundary term), per batch of 512 shuffled rows
//!    (normals and labelled anomalies together):
//!    `L_occ = mean((1 − y)·(√(1 + ‖r'‖²) − 1) + y·‖r' − r‖²)` — normals' constrained residuals
//!    pulled to 0, anomalies' kept where they were; a running diagonal Gaussian `N(μ, σ²)` over the
//!    normals' `r'` (Welford, updated with every batch's normals before the loss, never reset;
//!    `σ² = M2/(n − 1) + 1e-5`, ones while `n < 2`); `logp = log N_diag(r')`;
//!    `b = mean(logp[normals]) − k·std(logp[normals])` (biased std, with its gradient, as the
//!    notebook), `L_bg = mean over all rows of relu(logp − (b − τ))`, τ = 0.1, k = 1;
//!    loss `L_occ + 0.5·L_bg`. torch Adam (L2 decay in the gradient) lr 1e-3, weight decay 5e-4,
//!    5 epochs, on the constraintor only. heldout skips `L_bg` in a batch with fewer than two
//!    normals (the notebook's mean over no rows is NaN) and batches of one row (torch's batch
//!    norm refuses them in training).
//! 5. **Score** `−log N_diag(r')` with the final running Gaussian, eval mode, in `f64`.
//!
//! Not taken over (the protocol supplies them): the notebook's 1,000 rows per class, family and
//! split, its online standardiser, its top-K-variance feature cap, and its threshold at 5 % FPR on
//! the validation rows (heldout uses τ* on its validation pool like every method).

use super::mlp::{nan_error, rows_of, score_rows, EpochDone};
use super::mtae::BatchNorm;
use super::DetectError;
use crate::nn::{Adam, AdamConfig, Linear, Mode, Params, ResBlock};
use crate::rng::SplitMix64;
use candle_core::{Device, Tensor, TensorId, Var};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

type R<T> = Result<T, DetectError>;

/// Rows per forward pass when computing codes and scoring.
const EVAL_CHUNK: usize = 4096;
/// The running Gaussian's variance floor (the notebook's `eps`).
const GAUSS_EPS: f64 = 1e-5;

/// Settings of ResAD; the defaults are the notebook's command-line defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResAdParams {
    /// Width of the encoder's hidden layer, its ResBlocks and the decoder's hidden layer.
    pub hidden: usize,
    /// ResBlocks in the encoder.
    pub blocks: usize,
    /// Width of the code (and of the residuals).
    pub latent: usize,
    /// Dropout before the encoder's last layer (autoencoder pre-training only).
    pub dropout: f64,
    /// Hidden width of the feature constraintor.
    pub constraintor_hidden: usize,
    /// Number of normal centres in latent space (k-means on the normals' codes).
    pub centroids: usize,
    /// Epochs of autoencoder pre-training.
    pub pre_epochs: usize,
    /// Epochs of the constraintor.
    pub epochs: usize,
    /// Rows per batch (normals and labelled anomalies shuffled together).
    pub batch_size: usize,
    /// Adam learning rate (both stages).
    pub lr: f64,
    /// Adam L2 weight decay (both stages).
    pub weight_decay: f64,
    /// Weight of the boundary term `L_bg`.
    pub lambda_bg: f64,
    /// Margin τ of the boundary hinge.
    pub tau: f64,
    /// k: the boundary is the normals' mean log-density minus k standard deviations.
    pub bn_k: f64,
    /// Every input feature is clipped to `[−input_clip, input_clip]` before the encoder, in
    /// training and scoring (0 = off). heldout's deviation, shared with the other autoencoder
    /// baselines: see [`super::deep_coral::clip_inputs`].
    pub input_clip: f64,
}

impl Default for ResAdParams {
    fn default() -> Self {
        ResAdParams {
            hidden: 128,
            blocks: 1,
            latent: 64,
            dropout: 0.05,
            constraintor_hidden: 64,
            centroids: 1,
            pre_epochs: 3,
            epochs: 5,
            batch_size: 512,
            lr: 1e-3,
            weight_decay: 5e-4,
            lambda_bg: 0.5,
            tau: 0.1,
            bn_k: 1.0,
            input_clip: super::deep_coral::DEFAULT_INPUT_CLIP,
        }
    }
}

impl ResAdParams {
    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        super::deep_coral::check_clip(self.input_clip)?;
        for (name, v) in [
            ("hidden", self.hidden),
            ("latent", self.latent),
            ("constraintor_hidden", self.constraintor_hidden),
        ] {
            if v == 0 || v > 8192 {
                return Err((name, format!("must be 1 to 8192 (got {v})")));
            }
        }
        if self.blocks > 16 {
            return Err(("blocks", format!("must be 0 to 16 (got {})", self.blocks)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err((
                "dropout",
                format!("must be ≥ 0 and < 1 (got {})", self.dropout),
            ));
        }
        if self.centroids == 0 || self.centroids > 1024 {
            return Err((
                "centroids",
                format!("must be 1 to 1024 (got {})", self.centroids),
            ));
        }
        if self.pre_epochs > 10_000 {
            return Err((
                "pre_epochs",
                format!("must be at most 10000 (got {})", self.pre_epochs),
            ));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err((
                "epochs",
                format!("must be 1 to 10000 (got {})", self.epochs),
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
            return Err(("lr", format!("must be > 0 and ≤ 1 (got {})", self.lr)));
        }
        if !(0.0..1.0).contains(&self.weight_decay) {
            return Err((
                "weight_decay",
                format!("must be ≥ 0 and < 1 (got {})", self.weight_decay),
            ));
        }
        for (name, v) in [
            ("lambda_bg", self.lambda_bg),
            ("tau", self.tau),
            ("bn_k", self.bn_k),
        ] {
            if !(v.is_finite() && (0.0..=1e6).contains(&v)) {
                return Err((name, format!("must be a number from 0 to 1e6 (got {v})")));
            }
        }
        Ok(())
    }
}

/// A diagonal Gaussian whose mean and variance follow every row it is given (Welford, in `f64`):
/// the notebook's `RunningDiagGaussian`.
#[derive(Debug, Clone)]
pub struct RunningDiagGaussian {
    n: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl RunningDiagGaussian {
    pub fn new(dim: usize) -> Self {
        RunningDiagGaussian {
            n: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    /// Adds rows (row-major, `dim` columns) one by one.
    pub fn update(&mut self, rows: &[f32]) {
        let dim = self.mean.len();
        for row in rows.chunks_exact(dim) {
            self.n += 1;
            let n = self.n as f64;
            for ((m, s), &x) in self.mean.iter_mut().zip(&mut self.m2).zip(row) {
                let x = f64::from(x);
                let d = x - *m;
                *m += d / n;
                *s += d * (x - *m);
            }
        }
    }

    /// `M2/(n − 1) + eps` (unbiased), or `1 + eps` per column while fewer than 2 rows were seen.
    pub fn var(&self) -> Vec<f64> {
        if self.n < 2 {
            return vec![1.0 + GAUSS_EPS; self.mean.len()];
        }
        self.m2
            .iter()
            .map(|s| s / (self.n - 1) as f64 + GAUSS_EPS)
            .collect()
    }

    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// `log N(x; μ, diag σ²)` per row, in `f64`.
    pub fn logp(&self, rows: &[f32]) -> Vec<f64> {
        let var = self.var();
        let dim = self.mean.len();
        let c = 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln()
            + 0.5 * var.iter().map(|v| v.ln()).sum::<f64>();
        rows.chunks_exact(dim)
            .map(|row| {
                let q: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(&var)
                    .map(|((&x, m), v)| (f64::from(x) - m).powi(2) / v)
                    .sum();
                -(c + 0.5 * q)
            })
            .collect()
    }

    /// The same as a differentiable function of `x` (rows, dim); μ and σ² are constants.
    pub fn logp_tensor(&self, x: &Tensor) -> R<Tensor> {
        let var = self.var();
        let dim = self.mean.len();
        let dev = x.device();
        let mu = Tensor::from_vec(
            self.mean.iter().map(|&m| m as f32).collect::<Vec<_>>(),
            (1, dim),
            dev,
        )?;
        let inv = Tensor::from_vec(
            var.iter().map(|&v| (1.0 / v) as f32).collect::<Vec<_>>(),
            (1, dim),
            dev,
        )?;
        let c = 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln()
            + 0.5 * var.iter().map(|v| v.ln()).sum::<f64>();
        let q = x.broadcast_sub(&mu)?.sqr()?.broadcast_mul(&inv)?.sum(1)?;
        Ok(q.affine(-0.5, -c)?)
    }
}

/// `mean((1 − y)·(√(1 + ‖r'‖²) − 1) + y·‖r' − r‖²)`: `rc` = r' (rows, dim), `r` the residuals
/// before the constraintor, `y` (rows,) 0 normal / 1 anomaly.
pub fn occ_loss(rc: &Tensor, r: &Tensor, y: &Tensor) -> R<Tensor> {
    let normal = ((rc.sqr()?.sum(1)? + 1.0)?.sqrt()? - 1.0)?;
    let anomal = (rc - r)?.sqr()?.sum(1)?;
    let one_minus = y.affine(-1.0, 1.0)?;
    Ok(((normal * one_minus)? + (anomal * y)?)?.mean_all()?)
}

/// `mean(relu(logp − (b − τ)))` over all rows, `b = mean(logp[normal]) − k·std(logp[normal])`
/// (biased std); `normal` (rows,) is 1 for the normal rows (at least 2 of them), 0 otherwise.
pub fn bg_loss(logp: &Tensor, normal: &Tensor, tau: f64, k: f64) -> R<Tensor> {
    let n = f64::from(normal.sum_all()?.to_scalar::<f32>()?);
    let m = (logp * normal)?.sum_all()?.affine(1.0 / n, 0.0)?;
    let var = (logp.broadcast_sub(&m)?.sqr()? * normal)?
        .sum_all()?
        .affine(1.0 / n, 0.0)?;
    // sqrt's gradient at 0 is infinite: identical log-densities give the boundary the mean
    let b = if var.to_scalar::<f32>()? > 0.0 {
        (&m - (var.sqrt()? * k)?)?
    } else {
        m
    };
    Ok(logp.broadcast_sub(&(b - tau)?)?.relu()?.mean_all()?)
}

/// k-means (Lloyd) on `z` (rows, dim): `k` distinct random rows to start, at most 100 rounds;
/// a centre left without rows keeps its place. With `k = 1`, the mean.
pub fn kmeans(z: &[f32], dim: usize, k: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let n = z.len() / dim;
    let mut idx: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut idx);
    let mut c: Vec<f64> = idx[..k.min(n)]
        .iter()
        .flat_map(|&i| z[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v)))
        .collect();
    let mut assign = vec![usize::MAX; n];
    for _ in 0..100 {
        let mut changed = false;
        for (i, a) in assign.iter_mut().enumerate() {
            let best = nearest(&c, dim, &z[i * dim..(i + 1) * dim]);
            if best != *a {
                *a = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sum = vec![0f64; c.len()];
        let mut cnt = vec![0usize; c.len() / dim];
        for (i, &a) in assign.iter().enumerate() {
            cnt[a] += 1;
            for (s, &v) in sum[a * dim..(a + 1) * dim]
                .iter_mut()
                .zip(&z[i * dim..(i + 1) * dim])
            {
                *s += f64::from(v);
            }
        }
        for (j, &m) in cnt.iter().enumerate() {
            if m > 0 {
                for (cv, s) in c[j * dim..(j + 1) * dim]
                    .iter_mut()
                    .zip(&sum[j * dim..(j + 1) * dim])
                {
                    *cv = s / m as f64;
                }
            }
        }
    }
    c
}

/// The index of the centre (rows of `c`, `dim` columns) nearest to `x`.
fn nearest(c: &[f64], dim: usize, x: &[f32]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (j, cj) in c.chunks_exact(dim).enumerate() {
        let d: f64 = cj
            .iter()
            .zip(x)
            .map(|(a, &b)| (f64::from(b) - a).powi(2))
            .sum();
        if d < best.1 {
            best = (j, d);
        }
    }
    best.0
}

/// `z − c(z)` per row, `c(z)` the nearest centre.
fn residuals(z: &[f32], c: &[f64], dim: usize) -> Vec<f32> {
    z.chunks_exact(dim)
        .flat_map(|row| {
            let j = nearest(c, dim, row);
            row.iter()
                .zip(&c[j * dim..(j + 1) * dim])
                .map(|(&v, &m)| (f64::from(v) - m) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

struct Encoder {
    inp: Linear,
    blocks: Vec<ResBlock>,
    out: Linear,
    dropout: f64,
}

impl Encoder {
    fn forward(&self, x: &Tensor, mode: Mode, rng: &mut SplitMix64) -> R<Tensor> {
        let mut h = self.inp.forward(x)?.gelu_erf()?;
        for b in &self.blocks {
            h = b.forward(&h, mode, rng)?;
        }
        if mode == Mode::Train && self.dropout > 0.0 {
            let (n, k) = h.dims2()?;
            let keep = (1.0 / (1.0 - self.dropout)) as f32;
            let m: Vec<f32> = (0..n * k)
                .map(|_| {
                    if rng.next_f64() < self.dropout {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect();
            h = (h * Tensor::from_vec(m, (n, k), x.device())?)?;
        }
        Ok(self.out.forward(&h)?)
    }
}

struct Constraintor {
    fc1: Linear,
    bn: BatchNorm,
    fc2: Linear,
}

impl Constraintor {
    fn train(&mut self, r: &Tensor) -> R<Tensor> {
        let h = self.bn.train(&self.fc1.forward(r)?)?.relu()?;
        Ok(self.fc2.forward(&h)?)
    }
    fn eval(&self, r: &Tensor) -> R<Tensor> {
        let h = self.bn.eval(&self.fc1.forward(r)?)?.relu()?;
        Ok(self.fc2.forward(&h)?)
    }
}

/// A trained ResAD.
pub struct ResAdModel {
    d: usize,
    latent: usize,
    enc: Encoder,
    con: Constraintor,
    /// (centroids, latent), row-major
    centres: Vec<f64>,
    gauss: RunningDiagGaussian,
    params: Params,
    device: Device,
    /// [`ResAdParams::input_clip`] (0 = off).
    clip: f64,
}


fn grads(g: &candle_core::backprop::GradStore, vars: &[Var]) -> HashMap<TensorId, Tensor> {
    vars.iter()
        .filter_map(|v| {
            g.get(v.as_tensor())
                .map(|t| (v.as_tensor().id(), t.clone()))
        })
        .collect()
}

impl ResAdModel {
    /// Trains on `normals` and `anomalies` (row-major, `d` columns, already scaled). Reports
    /// `epoch_done("pretrain", …, &[("recon", …)])` per pre-training epoch, then
    /// `epoch_done("train", …, &[("occ", …), ("bg", …)])` (means over the epoch's batches);
    /// checks `stop` every batch.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        p: &ResAdParams,
        normals: &[f32],
        anomalies: &[f32],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("resad: {k} {m}")))?;
        let n_n = rows_of("resad", "normal", normals, d)?;
        let n_a = rows_of("resad", "labelled anomaly", anomalies, d)?;
        let clip = p.input_clip;
        let normals = &*super::deep_coral::clip_rows(normals, clip);
        let anomalies = &*super::deep_coral::clip_rows(anomalies, clip);
        if p.centroids > n_n {
            return Err(DetectError::Other(format!(
                "resad: centroids {} exceeds the {n_n} normal training rows",
                p.centroids
            )));
        }
        let n = n_n + n_a;
        let row = |r: usize| -> &[f32] {
            if r < n_n {
                &normals[r * d..(r + 1) * d]
            } else {
                &anomalies[(r - n_n) * d..(r - n_n + 1) * d]
            }
        };
        let (h, lat, ch) = (p.hidden, p.latent, p.constraintor_hidden);
        let mut wrng = SplitMix64::new(seed.wrapping_add(40));
        let mut params = Params::default();
        let enc = Encoder {
            inp: Linear::new(&mut params, "enc.inp", d, h, &mut wrng, device)?,
            blocks: (0..p.blocks)
                .map(|i| {
                    ResBlock::new(
                        &mut params,
                        &format!("enc.block{i}"),
                        h,
                        0.0,
                        &mut wrng,
                        device,
                    )
                })
                .collect::<candle_core::Result<_>>()?,
            out: Linear::new(&mut params, "enc.out", h, lat, &mut wrng, device)?,
            dropout: p.dropout,
        };
        let dec_fc = Linear::new(&mut params, "dec.fc", lat, h, &mut wrng, device)?;
        let dec_out = Linear::new(&mut params, "dec.out", h, d, &mut wrng, device)?;
        let n_ae = params.vars.len();
        let mut con = Constraintor {
            fc1: Linear::new(&mut params, "con.fc1", lat, ch, &mut wrng, device)?,
            bn: BatchNorm::new(&mut params, "con.bn", ch, device)?,
            fc2: Linear::new(&mut params, "con.fc2", ch, lat, &mut wrng, device)?,
        };
        let cfg = AdamConfig::new(p.lr, p.weight_decay, false);
        let mut rng = SplitMix64::new(seed.wrapping_add(999));
        let bs = p.batch_size;
        let mut perm: Vec<usize> = (0..n).collect();
        let mut xb: Vec<f32> = Vec::with_capacity(bs * d);

        // 1. autoencoder pre-training on the normals of each batch
        let ae_vars: Vec<Var> = params.vars[..n_ae].iter().map(|(_, v)| v.clone()).collect();
        let mut opt = Adam::new(ae_vars.clone(), cfg)?;
        for epoch in 1..=p.pre_epochs {
            fresh(&mut perm, &mut rng);
            let (mut sum, mut count) = (0.0, 0usize);
            for b in perm.chunks(bs) {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                xb.clear();
                for &r in b.iter().filter(|&&r| r < n_n) {
                    xb.extend_from_slice(row(r));
                }
                if xb.is_empty() {
                    continue;
                }
                let x = Tensor::from_slice(&xb, (xb.len() / d, d), device)?;
                let z = enc.forward(&x, Mode::Train, &mut rng)?;
                let xhat = dec_out.forward(&dec_fc.forward(&z)?.gelu_erf()?)?;
                let loss = (xhat - &x)?.sqr()?.mean_all()?;
                let lv = f64::from(loss.to_scalar::<f32>()?);
                if !lv.is_finite() {
                    return Err(nan_error("resad", "pretrain", epoch));
                }
                sum += lv;
                count += 1;
                opt.step(&grads(&loss.backward()?, &ae_vars), p.lr)?;
            }
            epoch_done(
                "pretrain",
                epoch,
                p.pre_epochs,
                &[("recon", sum / count.max(1) as f64)],
            );
        }

        // 2. frozen encoder: codes, centres, residuals of every training row
        let mut all = normals.to_vec();
        all.extend_from_slice(anomalies);
        let z = encode_rows(&enc, &all, d, device)?;
        let centres = kmeans(&z[..n_n * lat], lat, p.centroids, &mut rng);
        let res = residuals(&z, &centres, lat);

        // 3. the feature constraintor
        let con_vars: Vec<Var> = params.vars[n_ae..].iter().map(|(_, v)| v.clone()).collect();
        let mut opt = Adam::new(con_vars.clone(), cfg)?;
        let mut gauss = RunningDiagGaussian::new(lat);
        let mut rb: Vec<f32> = Vec::with_capacity(bs * lat);
        for epoch in 1..=p.epochs {
            fresh(&mut perm, &mut rng);
            let (mut so, mut sb, mut count) = (0.0, 0.0, 0usize);
            for b in perm.chunks(bs) {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                if b.len() < 2 {
                    continue;
                }
                rb.clear();
                let mut y = Vec::with_capacity(b.len());
                let mut normal_ix = Vec::new();
                for (i, &r) in b.iter().enumerate() {
                    rb.extend_from_slice(&res[r * lat..(r + 1) * lat]);
                    y.push(if r < n_n { 0f32 } else { 1.0 });
                    if r < n_n {
                        normal_ix.push(i as u32);
                    }
                }
                let r = Tensor::from_slice(&rb, (b.len(), lat), device)?;
                let rc = con.train(&r)?;
                let rc_host = rc.flatten_all()?.to_vec1::<f32>()?;
                for &i in &normal_ix {
                    let i = i as usize;
                    gauss.update(&rc_host[i * lat..(i + 1) * lat]);
                }
                let yt = Tensor::from_vec(y, b.len(), device)?;
                let occ = occ_loss(&rc, &r, &yt)?;
                let loss = if normal_ix.len() >= 2 {
                    let logp = gauss.logp_tensor(&rc)?;
                    let mask: Vec<f32> = yt.to_vec1::<f32>()?.iter().map(|y| 1.0 - y).collect();
                    let ix = Tensor::from_vec(mask, b.len(), device)?;
                    let bg = bg_loss(&logp, &ix, p.tau, p.bn_k)?;
                    sb += f64::from(bg.to_scalar::<f32>()?);
                    (&occ + (bg * p.lambda_bg)?)?
                } else {
                    occ.clone()
                };
                so += f64::from(occ.to_scalar::<f32>()?);
                count += 1;
                if !f64::from(loss.to_scalar::<f32>()?).is_finite() {
                    return Err(nan_error("resad", "train", epoch));
                }
                opt.step(&grads(&loss.backward()?, &con_vars), p.lr)?;
            }
            let c = count.max(1) as f64;
            epoch_done("train", epoch, p.epochs, &[("occ", so / c), ("bg", sb / c)]);
        }
        Ok(ResAdModel {
            d,
            latent: lat,
            enc,
            con,
            centres,
            gauss,
            params,
            device: device.clone(),
            clip,
        })
    }

    /// `−log N_diag(r')` per row of `x` (row-major, `d` columns), eval mode, in `f64`.
    pub fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("resad", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(EVAL_CHUNK * self.d) {
            let chunk = super::deep_coral::clip_rows(chunk, self.clip);
            let z = encode_rows(&self.enc, &chunk, self.d, &self.device)?;
            let r = residuals(&z, &self.centres, self.latent);
            let r = Tensor::from_vec(r, (z.len() / self.latent, self.latent), &self.device)?;
            let rc = self.con.eval(&r)?.flatten_all()?.to_vec1::<f32>()?;
            out.extend(self.gauss.logp(&rc).into_iter().map(|v| -v));
        }
        Ok(out)
    }

    /// Saves the weights (stored (in, out)), the constraintor's batch-norm statistics, the
    /// centres and the Gaussian's mean and variance.
    pub fn save(&self, path: &std::path::Path) -> R<()> {
        let mut p = self.params.clone();
        let dev = &self.device;
        self.con.bn.stats(&mut p, "con.bn", dev)?;
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let k = self.centres.len() / self.latent;
        p.push(
            "centres".into(),
            Var::from_vec(f(&self.centres), (k, self.latent), dev)?,
        );
        p.push(
            "gauss.mean".into(),
            Var::from_vec(f(self.gauss.mean()), self.latent, dev)?,
        );
        p.push(
            "gauss.var".into(),
            Var::from_vec(f(&self.gauss.var()), self.latent, dev)?,
        );
        Ok(p.save(path)?)
    }
}

fn fresh(perm: &mut [usize], rng: &mut SplitMix64) {
    for (i, v) in perm.iter_mut().enumerate() {
        *v = i;
    }
    rng.shuffle(perm);
}

/// Eval-mode codes of rows `x` (row-major, `d` columns).
fn encode_rows(enc: &Encoder, x: &[f32], d: usize, dev: &Device) -> R<Vec<f32>> {
    // eval mode draws nothing
    let mut unused = SplitMix64::new(0);
    let mut out = Vec::new();
    for chunk in x.chunks(EVAL_CHUNK * d) {
        let t = Tensor::from_slice(chunk, (chunk.len() / d, d), dev)?;
        out.extend(
            enc.forward(&t, Mode::Eval, &mut unused)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        );
    }
    Ok(out)
}

impl super::MethodSpec for ResAdParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "ResAD (tabular micro-variant)",
            paper: "Yao et al., ResAD (NeurIPS 2024), as the core paper's tabular adaptation: spec §1.20, padmaksha18/Multi-direcitonal-Meta-Learning BASELINES/Res_AD.ipynb",
            labels: super::Labels::FewShot,
            summary: "A pre-trained, frozen encoder D→128→ResBlock→64; residuals to the nearest normal centre; a feature constraintor pulls normals' residuals to 0 and keeps the labelled anomalies', plus a hinge that keeps rows' log-density under a running diagonal Gaussian below the normals' mean − k·std; score −log N_diag(r').",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::int("hidden", 1, 8192, "width of the encoder's hidden layer and ResBlocks, and of the decoder's hidden layer (notebook: 128)"),
            P::int("blocks", 0, 16, "ResBlocks in the encoder (notebook: 1)"),
            P::int("latent", 1, 8192, "width of the code and the residuals (notebook: 64)"),
            P::float("dropout", 0.0, 1.0, "dropout before the encoder's last layer, pre-training only, in [0, 1) (notebook: 0.05)"),
            P::int("constraintor_hidden", 1, 8192, "hidden width of the feature constraintor (notebook: max(64, latent) = 64; the spec's 128 is the class default the notebook overrides)"),
            P::int("centroids", 1, 1024, "normal centres in latent space, k-means on the normals' codes; every row uses its nearest (the notebook: one per family's own benign rows, chosen by the row's family; heldout's benign rows are pooled and test families unknown: 1)"),
            P::int("pre_epochs", 0, 10_000, "autoencoder pre-training epochs on the normal rows, then the encoder is frozen (notebook: 3)"),
            P::int("epochs", 1, 10_000, "epochs of the feature constraintor (notebook: 5)"),
            P::int("batch_size", 2, 65_536, "rows per batch, normals and labelled anomalies shuffled together (notebook: 512)"),
            P::float("lr", 0.0, 1.0, "Adam learning rate, both stages (notebook: 1e-3)"),
            P::float("weight_decay", 0.0, 1.0, "Adam L2 weight decay, both stages, in [0, 1) (notebook: 5e-4)"),
            P::float("lambda_bg", 0.0, 1e6, "weight of the boundary hinge L_bg (notebook: 0.5)"),
            P::float("tau", 0.0, 1e6, "margin τ: rows are penalised while their log-density exceeds the boundary − τ (notebook: 0.1)"),
            P::float("bn_k", 0.0, 1e6, "k: the boundary is the batch normals' mean log-density − k standard deviations (notebook: 1)"),
            P::float("input_clip", 0.0, 1e12, "clip every scaled input feature to ±input_clip before the encoder, training and scoring; 0 = off (heldout's: the notebook's online standardiser and top-K feature cap are not used, and without a clip the autoencoder's MSE reaches ~1e7 on the CIC-IDS2017 sample's heavy tails)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        ResAdParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "resad".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let (h, lat, ch) = (
            self.hidden as f64,
            self.latent as f64,
            self.constraintor_hidden as f64,
        );
        let blocks = self.blocks as f64;
        let mut enc: Layers = vec![(s.d, h)];
        for _ in 0..self.blocks {
            enc.push((h, h));
            enc.push((h, h));
        }
        enc.push((h, lat));
        let dec: Layers = vec![(lat, h), (h, s.d)];
        let con: Layers = vec![(lat, ch), (ch, lat)];
        let k = self.centroids as f64;
        // weights and biases; layer norms' γ, β (2 per block); the batch norm's γ, β, running
        // mean and variance; the centres; the Gaussian's mean and variance
        let params = dense_params(&enc, true)
            + blocks * 4.0 * h
            + dense_params(&dec, true)
            + dense_params(&con, true)
            + 4.0 * ch
            + k * lat
            + 2.0 * lat;
        let n = s.normals + s.few_shot_total();
        let per_epoch = (n / self.batch_size as f64).ceil();
        let bs = (self.batch_size as f64).min(n);
        let ae: Layers = enc.iter().chain(&dec).copied().collect();
        use super::mlp::{BN_TRAIN_SPEED, SCORE_SPEED};
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            step_bytes: dense_activation_bytes(&ae, bs, 6.0).max(dense_activation_bytes(
                &enc,
                n.max(s.checkpoint).max(s.val).min(EVAL_CHUNK as f64),
                12.0,
            )) + n * lat * 2.0 * F32,
            phases: vec![
                Phase {
                    name: "autoencoder pre-training",
                    steps: self.pre_epochs as f64 * per_epoch,
                    flops: dense_train_flops(&ae, bs),
                    speed: BN_TRAIN_SPEED,
                },
                Phase {
                    name: "codes, centres",
                    steps: 1.0,
                    flops: dense_forward_flops(&enc, n) + 200.0 * k * n * lat,
                    speed: SCORE_SPEED,
                },
                Phase {
                    name: "constraintor steps",
                    steps: self.epochs as f64 * per_epoch,
                    flops: dense_train_flops(&con, bs),
                    speed: BN_TRAIN_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    flops: (dense_forward_flops(&enc, 1.0) + dense_forward_flops(&con, 1.0))
                        * (s.checkpoint + s.scored()),
                    speed: SCORE_SPEED,
                },
            ],
            records: (self.pre_epochs + self.epochs) as f64
                + checkpoint_records(s)
                + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<ResAdModel>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

impl super::Fit for ResAdModel {
    type Params = ResAdParams;
    fn fit(
        p: &ResAdParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, DetectError> {
        let device = ctx.device.clone();
        let emit = &mut *ctx.emit;
        ResAdModel::fit(
            p,
            &data.normals,
            &super::concat_rows(&data.few_shot),
            data.d,
            seed,
            &device,
            ctx.stop,
            &mut |phase, epoch, epochs, terms| super::emit_epoch(emit, phase, epoch, epochs, terms),
        )
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        ResAdModel::score(self, x)
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        ResAdModel::save(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::mlp::tests::{auc, cicids, split};

    fn t2(v: &[f32], r: usize, c: usize) -> Tensor {
        Tensor::from_slice(v, (r, c), &Device::Cpu).unwrap()
    }
    fn scalar(t: &Tensor) -> f64 {
        f64::from(t.to_scalar::<f32>().unwrap())
    }

    /// L_occ on two hand-made rows.
    #[test]
    fn occ_loss_by_hand() {
        // row 0, a normal: r' = (3, 4), ‖r'‖² = 25 → √(1 + 25) − 1 = √26 − 1 = 4.0990195
        // row 1, an anomaly: r' = (1, 0), r = (1, 2) → ‖r' − r‖² = 0² + (−2)² = 4
        // mean: (4.0990195 + 4) / 2 = 4.0495098
        let rc = t2(&[3., 4., 1., 0.], 2, 2);
        let r = t2(&[0., 0., 1., 2.], 2, 2);
        let y = Tensor::new(&[0f32, 1.], &Device::Cpu).unwrap();
        let l = scalar(&occ_loss(&rc, &r, &y).unwrap());
        assert!((l - (26f64.sqrt() - 1.0 + 4.0) / 2.0).abs() < 1e-6, "{l}");
        assert!((l - 4.0495098).abs() < 1e-6);
        // the normal term ignores r; the anomaly term ignores ‖r'‖
        let r2 = t2(&[9., 9., 1., 2.], 2, 2);
        assert_eq!(l, scalar(&occ_loss(&rc, &r2, &y).unwrap()));
        // both rows normal: (4.0990195 + (√2 − 1)) / 2
        let y0 = Tensor::new(&[0f32, 0.], &Device::Cpu).unwrap();
        let l0 = scalar(&occ_loss(&rc, &r, &y0).unwrap());
        assert!((l0 - (26f64.sqrt() - 1.0 + 2f64.sqrt() - 1.0) / 2.0).abs() < 1e-6);
    }

    /// L_bg on hand-made log-densities.
    #[test]
    fn bg_loss_by_hand() {
        // logp = (−1, −3, −5, 2), rows 0–2 normal:
        // mean −3; biased variance ((2)² + 0 + (−2)²)/3 = 8/3, std 1.6329932;
        // boundary b = −3 − 1·1.6329932 = −4.6329932; b − τ = −4.7329932;
        // relu(logp − (b − τ)) = (3.7329932, 1.7329932, 0 [−0.2670068], 6.7329932);
        // mean = 12.1989796 / 4 = 3.0497449
        let logp = Tensor::new(&[-1f32, -3., -5., 2.], &Device::Cpu).unwrap();
        let ix = Tensor::new(&[1f32, 1., 1., 0.], &Device::Cpu).unwrap();
        let l = scalar(&bg_loss(&logp, &ix, 0.1, 1.0).unwrap());
        assert!((l - 3.0497449).abs() < 1e-5, "{l}");
        // k = 0, τ = 0.5: b − τ = −3.5; relu(logp + 3.5) = (2.5, 0.5, 0 [−1.5], 5.5) → 8.5/4
        let l = scalar(&bg_loss(&logp, &ix, 0.5, 0.0).unwrap());
        assert!((l - 2.125).abs() < 1e-6, "{l}");
        // its gradient: each active row (0, 1, 3) gets +1/4 for itself, and through the boundary
        // b = mean of the normals' logp each normal row gets −(3 active)·(1/4)·(1/3) = −1/4:
        // row 0: 1/4 − 1/4 = 0; row 1: 0; row 2 (inactive): −1/4; row 3: 1/4
        let v = Var::new(&[-1f32, -3., -5., 2.], &Device::Cpu).unwrap();
        let g = bg_loss(v.as_tensor(), &ix, 0.5, 0.0)
            .unwrap()
            .backward()
            .unwrap();
        let g = g.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let want = [0.0, 0.0, -0.25, 0.25];
        for (a, b) in g.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{g:?}");
        }
    }

    /// The running Gaussian: Welford's mean and unbiased variance, and the log density against
    /// the textbook formula Σ_j −½·ln(2π σ_j²) − (x_j − μ_j)²/(2σ_j²).
    #[test]
    fn running_gaussian_log_density() {
        let mut g = RunningDiagGaussian::new(2);
        // fewer than 2 rows: unit variance (+ eps)
        g.update(&[5.0, -1.0]);
        let x = [4.0f32, 0.0];
        let lp1 = g.logp(&x)[0];
        let v = 1.0 + 1e-5;
        let direct1 = -(2.0 * std::f64::consts::PI * v).ln() - (1.0 + 1.0) / (2.0 * v);
        assert!((lp1 - direct1).abs() < 1e-12);
        g.update(&[1.0, 3.0, 3.0, 2.0]);
        // rows (5, −1), (1, 3), (3, 2): means (3, 4/3); unbiased variances
        // ((4 + 4 + 0)/2, ((−7/3)² + (5/3)² + (2/3)²)/2) = (4, (49 + 25 + 4)/18 = 13/3)
        assert!((g.mean()[0] - 3.0).abs() < 1e-12 && (g.mean()[1] - 4.0 / 3.0).abs() < 1e-12);
        let var = g.var();
        assert!((var[0] - (4.0 + 1e-5)).abs() < 1e-12);
        assert!((var[1] - (13.0 / 3.0 + 1e-5)).abs() < 1e-12);
        let rows = [4.0f32, 0.0, -2.0, 7.5];
        let lp = g.logp(&rows);
        let mu = [3.0, 4.0 / 3.0];
        for (i, row) in rows.chunks(2).enumerate() {
            let direct: f64 = (0..2)
                .map(|j| {
                    let x = f64::from(row[j]);
                    -0.5 * (2.0 * std::f64::consts::PI * var[j]).ln()
                        - (x - mu[j]).powi(2) / (2.0 * var[j])
                })
                .sum();
            assert!((lp[i] - direct).abs() < 1e-10, "{} vs {direct}", lp[i]);
        }
        // the tensor version (f32) agrees
        let t = g
            .logp_tensor(&t2(&rows, 2, 2))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in t.iter().zip(&lp) {
            assert!((f64::from(*a) - b).abs() < 1e-4, "{t:?} vs {lp:?}");
        }
    }

    /// k-means finds two obvious clusters; nearest-centre residuals.
    #[test]
    fn centres_and_residuals() {
        let z = [0f32, 0., 0., 2., 10., 10., 10., 12.];
        let c = kmeans(&z, 2, 1, &mut SplitMix64::new(1));
        assert_eq!(c, vec![5.0, 6.0]);
        let mut c = kmeans(&z, 2, 2, &mut SplitMix64::new(1));
        if c[0] > 5.0 {
            c.rotate_left(2);
        }
        assert_eq!(c, vec![0.0, 1.0, 10.0, 11.0]);
        assert_eq!(
            residuals(&[1., 1., 9., 13.], &c, 2),
            vec![1.0, 0.0, -1.0, 2.0]
        );
    }

    /// On the CIC-IDS2017 sample (Infiltration held out, all benign train rows, the few-shot rows
    /// of the other families), a longer run than the notebook's (10 + 20 epochs, inputs clipped
    /// at the default ±10) separates a seen family, PortScan (AUC 0.988 at seed 0; 0.925
    /// unclipped); same seed → same scores. With the notebook's 3 + 5 epochs the seen-family AUCs
    /// are unstable on these heavy-tailed, robust-scaled features (`explore_resad_aucs`, seed 0,
    /// unclipped / clipped at 10 / at 3: DoS 0.74 / 0.82 / 0.84, DDoS 0.89 / 0.97 / 0.97,
    /// PortScan 0.55 / 0.15 / 0.83, BruteForce 0.85 / 0.88 / 0.76; 10 + 20 epochs clipped at 10:
    /// 0.81, 0.99, 0.99, 0.97).
    #[test]
    fn resad_learns_a_seen_family_and_is_deterministic() {
        let s = split(cicids(), Some("Infiltration"), "PortScan", usize::MAX);
        let p = ResAdParams {
            pre_epochs: 10,
            epochs: 20,
            ..Default::default()
        };
        let stop = AtomicBool::new(false);
        let fit = |seed: u64, log: &mut Vec<(&'static str, Vec<(&'static str, f64)>)>| {
            ResAdModel::fit(
                &p,
                &s.normals,
                &s.few_shot,
                s.d,
                seed,
                &Device::Cpu,
                &stop,
                &mut |ph, _, _, t| log.push((ph, t.to_vec())),
            )
            .unwrap()
        };
        let t0 = std::time::Instant::now();
        let mut log = Vec::new();
        let m = fit(0, &mut log);
        let fit_s = t0.elapsed().as_secs_f64();
        let a = m.score(&s.test_x).unwrap();
        let auc = auc(&s, &a);
        eprintln!("resad: fit {fit_s:.1}s, PortScan AUC {auc:.4}, log {log:?}");
        assert_eq!(log.len(), 30);
        assert_eq!(log[0].1[0].0, "recon");
        assert_eq!(log[10].0, "train");
        assert_eq!(
            log[10].1.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec!["occ", "bg"]
        );
        assert!(log[9].1[0].1 < log[0].1[0].1, "pre-training lowers the MSE");
        assert!(auc >= 0.9, "AUC {auc}");
        assert_eq!(a, fit(0, &mut Vec::new()).score(&s.test_x).unwrap());
        assert_ne!(a, fit(1, &mut Vec::new()).score(&s.test_x).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resad.safetensors");
        m.save(&path).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back["centres"].dims(), &[1, 64]);
        assert_eq!(back["con.fc1.weight"].dims(), &[64, 64]);
        assert_eq!(back["enc.inp.weight"].dims(), &[s.d, 128]);
    }

    /// Exploration: seen-family AUCs (not a check).
    #[test]
    #[ignore]
    fn explore_resad_aucs() {
        for fam in ["DoS", "DDoS", "PortScan", "BruteForce"] {
            let s = split(cicids(), Some("Infiltration"), fam, usize::MAX);
            for (pre, ep, clip) in [(3, 5, 0.0), (3, 5, 10.0), (3, 5, 3.0), (10, 20, 10.0)] {
                let p = ResAdParams {
                    pre_epochs: pre,
                    epochs: ep,
                    input_clip: clip,
                    ..Default::default()
                };
                let m = ResAdModel::fit(
                    &p,
                    &s.normals,
                    &s.few_shot,
                    s.d,
                    0,
                    &Device::Cpu,
                    &AtomicBool::new(false),
                    &mut |_, _, _, _| {},
                )
                .unwrap();
                eprintln!(
                    "{fam} pre {pre} ep {ep} clip {clip}: AUC {:.4}",
                    auc(&s, &m.score(&s.test_x).unwrap())
                );
            }
        }
    }

    #[test]
    fn invalid_params_are_rejected_by_name() {
        let d = ResAdParams::default;
        let bad = [
            (ResAdParams { hidden: 0, ..d() }, "hidden"),
            (ResAdParams { latent: 0, ..d() }, "latent"),
            (ResAdParams { blocks: 17, ..d() }, "blocks"),
            (
                ResAdParams {
                    dropout: 1.0,
                    ..d()
                },
                "dropout",
            ),
            (
                ResAdParams {
                    constraintor_hidden: 0,
                    ..d()
                },
                "constraintor_hidden",
            ),
            (
                ResAdParams {
                    centroids: 0,
                    ..d()
                },
                "centroids",
            ),
            (
                ResAdParams {
                    pre_epochs: 20_000,
                    ..d()
                },
                "pre_epochs",
            ),
            (ResAdParams { epochs: 0, ..d() }, "epochs"),
            (
                ResAdParams {
                    batch_size: 1,
                    ..d()
                },
                "batch_size",
            ),
            (ResAdParams { lr: 0.0, ..d() }, "lr"),
            (
                ResAdParams {
                    weight_decay: -1.0,
                    ..d()
                },
                "weight_decay",
            ),
            (
                ResAdParams {
                    lambda_bg: f64::NAN,
                    ..d()
                },
                "lambda_bg",
            ),
            (ResAdParams { tau: -0.1, ..d() }, "tau"),
            (
                ResAdParams {
                    bn_k: f64::INFINITY,
                    ..d()
                },
                "bn_k",
            ),
        ];
        for (p, name) in bad {
            let (k, msg) = p.validate().unwrap_err();
            assert_eq!(k, name, "{msg}");
            let err = ResAdModel::fit(
                &p,
                &[0.0; 4],
                &[1.0; 4],
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
        // more centres than normal rows
        let e = ResAdModel::fit(
            &ResAdParams {
                centroids: 3,
                ..d()
            },
            &[0.0; 4],
            &[1.0; 4],
            2,
            0,
            &Device::Cpu,
            &AtomicBool::new(false),
            &mut |_, _, _, _| {},
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("centroids"), "{e}");
        assert!(ron::from_str::<ResAdParams>("(epoch: 2)").is_err());
        let e = ResAdModel::fit(
            &d(),
            &[0.0; 4],
            &[1.0; 4],
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
