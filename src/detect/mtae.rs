//! MTAE, the multi-task autoencoder (Ghifary et al., ICCV 2015), as the core paper's baseline
//! (spec §1.20; the authors' variant: padmaksha18/MTRAE `baselines/DMTAE.py` at de2ba34875ea,
//! with `mtrae/multitaskAE_orig.py` and `mtrae/BASELINES/mtae_coral` for the classifier).
//!
//! **Network** (the authors' `MultitaskAutoencoder`, widths `h1 = 25`, `h2 = 20`, `latent = 15`):
//! a shared encoder `D → h1 → h2 → h2` (each `Linear` + `BatchNorm1d` + ReLU) `→ latent`
//! (`Linear` + ReLU); **one decoder per domain** (Ghifary's design; the authors' DMTAE uses one
//! decoder for all targets): `latent → latent → h2` (`Linear` + ReLU each) `→ h2 → h1` (`Linear` +
//! `BatchNorm1d` + ReLU each) `→ D` (`Linear` + `BatchNorm1d`, no activation); a linear classifier
//! `latent → 2` (logit 0 = normal, 1 = anomaly). Batch norm as torch's defaults (affine, ε 1e-5,
//! momentum 0.1, batch statistics in training, running ones when scoring).
//!
//! **Domains.** One domain per seen family with few-shot rows (one decoder each): its anomalies
//! and as many normal rows, a fresh random sample of the normals per domain and epoch
//! ([`aligned_domains`]). The authors' domains are CSE-CIC-IDS2018 captures, each holding benign
//! and attack traffic, paired across domains by index (their `Dataset` returns `(X_train[i],
//! X_cross_dom[i], y[i])` from two index-aligned arrays); what they make invariant is the capture,
//! not the class. heldout's seen families play the captures and the pairing keeps the label: at
//! batch position `k` every domain holds a normal row, or every domain holds one of its family's
//! anomalies, so decoder `j` reconstructs domain `j`'s row of the *same label* from the code of
//! domain `i`'s row — for every pair `(i, j)`, `i = j` included (plain reconstruction). The code
//! is pushed to be invariant across seen families but not across normal/anomalous: the family-
//! generalising features the paper wants from it. (An earlier version made the normals a domain
//! of their own; cross-domain reconstruction then paired normal rows with anomalies and taught
//! the code to forget the label: seen-family AUC 0.55 on the CIC-IDS2017 sample.) An epoch has
//! `2·n_pos` positions, `n_pos` = the largest family's few-shot rows (smaller families wrap).
//! See [`step_rows`] and [`cross_targets`].
//!
//! **Loss and schedule** (the authors'): the reconstruction term is the MSE over all pairs
//! `(i, j)`, positions and features (`nn.MSELoss`, mean); torch `Adam` (L2 decay in the gradient)
//! with lr 5e-3 and weight decay 1e-5; 300 epochs; batches of 200 positions. Like the authors'
//! loop (`final_loss = mean(stack(losses)); final_loss.backward(); optimizer.step()` once per
//! epoch), **one optimiser step per epoch** on the mean of the epoch's batch losses (the
//! gradients are accumulated batch by batch, which is the same gradient without holding every
//! batch's graph).
//!
//! **Classifier** (parameter `classifier`): `frozen` (default) follows `DMTAE.py`, whose
//! cross-entropy term is commented out — the autoencoder trains on the reconstruction alone and
//! the authors then classify its codes (with a 3-NN on the codes); heldout trains the network's
//! own linear classifier on the frozen, eval-mode codes instead (cross-entropy; each epoch passes
//! over every normal row, each step half normals and half labelled anomalies drawn uniformly; one
//! Adam step per batch; `classifier_epochs` epochs), so that the score is a probability like the
//! other baselines'.
//! `joint` follows `multitaskAE_orig.py` / `mtae_coral`: cross-entropy + reconstruction in the
//! same steps (weight 1 each). Score: `softmax(logits)[anomaly] = σ(ℓ₁ − ℓ₀)` in eval mode, in
//! `f64` (higher = more anomalous).

use super::mlp::{nan_error, rows_of, score_rows, EpochDone};
use super::DetectError;
use crate::nn::{Adam, AdamConfig, Linear, Params};
use crate::rng::SplitMix64;
use candle_core::{DType, Device, Tensor, TensorId, Var};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

type R<T> = Result<T, DetectError>;

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;
/// Rows per forward pass when computing codes and scoring.
const EVAL_CHUNK: usize = 4096;

/// How MTAE's classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtaeClassifier {
    /// After the autoencoder, on its frozen codes (DMTAE.py trains without cross-entropy).
    #[default]
    Frozen,
    /// Cross-entropy with the reconstruction, in the same steps (multitaskAE_orig.py).
    Joint,
}

/// Settings of MTAE; the defaults are the authors' (DMTAE.py).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaeParams {
    /// Width of the encoder's first hidden layer (and the decoders' last).
    pub h1: usize,
    /// Width of the encoder's second and third hidden layers.
    pub h2: usize,
    /// Width of the code.
    pub latent: usize,
    /// Epochs of the autoencoder (one optimiser step each).
    pub epochs: usize,
    /// Batch positions per step (each takes one row of every domain).
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam L2 weight decay (added to the gradient, as torch's Adam).
    pub weight_decay: f64,
    /// How the classifier is trained.
    pub classifier: MtaeClassifier,
    /// Epochs of the classifier on the frozen codes (`classifier: frozen` only).
    pub classifier_epochs: usize,
    /// Every input feature is clipped to `[−input_clip, input_clip]` before the encoder, in
    /// training and scoring (0 = off), as heldout's other autoencoder baselines (see
    /// [`super::deep_coral::clip_inputs`]).
    pub input_clip: f64,
}

impl Default for MtaeParams {
    fn default() -> Self {
        MtaeParams {
            h1: 25,
            h2: 20,
            latent: 15,
            epochs: 300,
            batch_size: 200,
            lr: 5e-3,
            weight_decay: 1e-5,
            classifier: MtaeClassifier::Frozen,
            classifier_epochs: 30,
            input_clip: super::deep_coral::DEFAULT_INPUT_CLIP,
        }
    }
}

impl MtaeParams {
    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        super::deep_coral::check_clip(self.input_clip)?;
        for (name, v) in [("h1", self.h1), ("h2", self.h2), ("latent", self.latent)] {
            if v == 0 || v > 8192 {
                return Err((name, format!("must be 1 to 8192 (got {v})")));
            }
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return Err((
                "epochs",
                format!(
                    "must be 1 to 100000 (got {}); the authors use 300",
                    self.epochs
                ),
            ));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return Err((
                "batch_size",
                format!("must be 1 to 65536 (got {})", self.batch_size),
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
        if self.classifier_epochs > 100_000
            || (self.classifier == MtaeClassifier::Frozen && self.classifier_epochs == 0)
        {
            return Err((
                "classifier_epochs",
                format!(
                    "must be 1 to 100000 with classifier: frozen (got {})",
                    self.classifier_epochs
                ),
            ));
        }
        Ok(())
    }
}

/// Batch normalisation with torch's defaults (affine γ = 1, β = 0 at the start, ε 1e-5,
/// momentum 0.1): batch mean and biased variance in training, which move the running mean and
/// unbiased variance; the running statistics when scoring. Composed from candle's ops.
#[derive(Debug, Clone)]
pub(crate) struct BatchNorm {
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
}

impl BatchNorm {
    pub fn new(p: &mut Params, name: &str, k: usize, dev: &Device) -> R<Self> {
        let gamma = Var::from_tensor(&Tensor::ones(k, DType::F32, dev)?)?;
        let beta = Var::from_tensor(&Tensor::zeros(k, DType::F32, dev)?)?;
        p.push(format!("{name}.weight"), gamma.clone());
        p.push(format!("{name}.bias"), beta.clone());
        Ok(BatchNorm {
            gamma,
            beta,
            running_mean: vec![0.0; k],
            running_var: vec![1.0; k],
        })
    }

    /// Training mode (at least 2 rows).
    pub fn train(&mut self, h: &Tensor) -> R<Tensor> {
        let n = h.dim(0)?;
        let mean = h.mean_keepdim(0)?;
        let xc = h.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(0)?;
        let y = xc.broadcast_div(&(&var + BN_EPS)?.sqrt()?)?;
        let m = mean.flatten_all()?.to_vec1::<f32>()?;
        let v = var.flatten_all()?.to_vec1::<f32>()?;
        let unbias = n as f64 / (n as f64 - 1.0).max(1.0);
        for (r, &b) in self.running_mean.iter_mut().zip(&m) {
            *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * f64::from(b)) as f32;
        }
        for (r, &b) in self.running_var.iter_mut().zip(&v) {
            *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * f64::from(b) * unbias) as f32;
        }
        self.affine(&y)
    }

    /// Eval mode: the running statistics.
    pub fn eval(&self, h: &Tensor) -> R<Tensor> {
        let k = self.running_mean.len();
        let dev = h.device();
        let mean = Tensor::from_slice(&self.running_mean, (1, k), dev)?;
        let inv: Vec<f32> = self
            .running_var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + BN_EPS).sqrt()) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, k), dev)?;
        self.affine(&h.broadcast_sub(&mean)?.broadcast_mul(&inv)?)
    }

    fn affine(&self, y: &Tensor) -> R<Tensor> {
        Ok(y.broadcast_mul(&self.gamma.as_tensor().unsqueeze(0)?)?
            .broadcast_add(&self.beta.as_tensor().unsqueeze(0)?)?)
    }

    /// The running statistics as variables `{name}.running_mean` / `.running_var` (for saving).
    pub fn stats(&self, p: &mut Params, name: &str, dev: &Device) -> R<()> {
        let k = self.running_mean.len();
        p.push(
            format!("{name}.running_mean"),
            Var::from_slice(&self.running_mean, k, dev)?,
        );
        p.push(
            format!("{name}.running_var"),
            Var::from_slice(&self.running_var, k, dev)?,
        );
        Ok(())
    }
}

/// `Linear`, then batch norm, then ReLU if `relu`.
#[derive(Debug, Clone)]
struct LinBn {
    l: Linear,
    bn: BatchNorm,
    relu: bool,
}

impl LinBn {
    fn new(
        p: &mut Params,
        name: &str,
        i: usize,
        o: usize,
        relu: bool,
        rng: &mut SplitMix64,
        dev: &Device,
    ) -> R<Self> {
        let l = Linear::new(p, name, i, o, rng, dev)?;
        let bn = BatchNorm::new(p, &format!("{name}.bn"), o, dev)?;
        Ok(LinBn { l, bn, relu })
    }
    fn train(&mut self, x: &Tensor) -> R<Tensor> {
        let y = self.bn.train(&self.l.forward(x)?)?;
        Ok(if self.relu { y.relu()? } else { y })
    }
    fn eval(&self, x: &Tensor) -> R<Tensor> {
        let y = self.bn.eval(&self.l.forward(x)?)?;
        Ok(if self.relu { y.relu()? } else { y })
    }
}

/// One domain's decoder: `latent → latent → h2` (ReLU), `→ h2 → h1` (BN + ReLU), `→ D` (BN).
#[derive(Debug, Clone)]
struct Dec {
    fc3: Linear,
    fc4: Linear,
    bn: [LinBn; 3],
}

impl Dec {
    fn train(&mut self, z: &Tensor) -> R<Tensor> {
        let mut h = self.fc4.forward(&self.fc3.forward(z)?.relu()?)?.relu()?;
        for b in &mut self.bn {
            h = b.train(&h)?;
        }
        Ok(h)
    }
}

/// The network: shared encoder, one decoder per domain, classifier.
struct Net {
    enc: [LinBn; 3],
    code: Linear,
    decs: Vec<Dec>,
    cls: Linear,
    enc_params: Params,
    dec_params: Params,
    cls_params: Params,
}

impl Net {
    fn new(p: &MtaeParams, d: usize, domains: usize, seed: u64, dev: &Device) -> R<Self> {
        let mut rng = SplitMix64::new(seed.wrapping_add(40));
        let (h1, h2, lat) = (p.h1, p.h2, p.latent);
        let mut ep = Params::default();
        let enc = [
            LinBn::new(&mut ep, "enc.fc0", d, h1, true, &mut rng, dev)?,
            LinBn::new(&mut ep, "enc.fc1", h1, h2, true, &mut rng, dev)?,
            LinBn::new(&mut ep, "enc.fc2", h2, h2, true, &mut rng, dev)?,
        ];
        let code = Linear::new(&mut ep, "enc.code", h2, lat, &mut rng, dev)?;
        let mut dp = Params::default();
        let mut decs = Vec::with_capacity(domains);
        for j in 0..domains {
            let n = |s: &str| format!("dec{j}.{s}");
            decs.push(Dec {
                fc3: Linear::new(&mut dp, &n("fc3"), lat, lat, &mut rng, dev)?,
                fc4: Linear::new(&mut dp, &n("fc4"), lat, h2, &mut rng, dev)?,
                bn: [
                    LinBn::new(&mut dp, &n("fc5"), h2, h2, true, &mut rng, dev)?,
                    LinBn::new(&mut dp, &n("fc6"), h2, h1, true, &mut rng, dev)?,
                    LinBn::new(&mut dp, &n("out"), h1, d, false, &mut rng, dev)?,
                ],
            });
        }
        let mut cp = Params::default();
        let cls = Linear::new(&mut cp, "cls", lat, 2, &mut rng, dev)?;
        Ok(Net {
            enc,
            code,
            decs,
            cls,
            enc_params: ep,
            dec_params: dp,
            cls_params: cp,
        })
    }

    fn encode_train(&mut self, x: &Tensor) -> R<Tensor> {
        let mut h = x.clone();
        for b in &mut self.enc {
            h = b.train(&h)?;
        }
        Ok(self.code.forward(&h)?.relu()?)
    }

    fn encode_eval(&self, x: &Tensor) -> R<Tensor> {
        let mut h = x.clone();
        for b in &self.enc {
            h = b.eval(&h)?;
        }
        Ok(self.code.forward(&h)?.relu()?)
    }
}

/// The rows of one step: for batch positions `start..end`, domain `i` contributes its row
/// `orders[i][k mod n_i]` at position `k` (`n_i = orders[i].len()`, all > 0). Returns, per
/// domain, the row ids in position order.
pub fn step_rows(orders: &[Vec<usize>], start: usize, end: usize) -> Vec<Vec<usize>> {
    orders
        .iter()
        .map(|o| (start..end).map(|k| o[k % o.len()]).collect())
        .collect()
}

/// The inputs of a step and each decoder's targets. `domains[i]` is domain `i`'s rows
/// (row-major, `d` columns); `rows` from [`step_rows`]. The inputs are domain-major: the `b`
/// rows of domain 0 in position order, then domain 1's, …; decoder `j`'s target for the input at
/// (domain `i`, position `k`) is domain `j`'s row at position `k` — its counterpart in domain
/// `j` — so `targets[j]` is domain `j`'s block repeated once per domain.
pub fn cross_targets(
    domains: &[&[f32]],
    d: usize,
    rows: &[Vec<usize>],
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let blocks: Vec<Vec<f32>> = domains
        .iter()
        .zip(rows)
        .map(|(x, r)| {
            r.iter()
                .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
                .collect()
        })
        .collect();
    let inputs: Vec<f32> = blocks.concat();
    let targets = blocks.iter().map(|b| b.repeat(domains.len())).collect();
    (inputs, targets)
}

/// Mean cross-entropy of 2-logit rows against labels (0/1).
fn cross_entropy(logits: &Tensor, labels: &[u32]) -> R<Tensor> {
    let n = labels.len();
    let mut onehot = vec![0f32; 2 * n];
    for (i, &y) in labels.iter().enumerate() {
        onehot[2 * i + y as usize] = 1.0;
    }
    let oh = Tensor::from_vec(onehot, (n, 2), logits.device())?;
    let lp = candle_nn::ops::log_softmax(logits, 1)?;
    Ok((lp * oh)?.sum_all()?.affine(-1.0 / n as f64, 0.0)?)
}

/// Labels of a domain-major step over label-aligned domains ([`aligned_domains`]): position
/// `p < n_pos` holds a normal row in every domain, the others an anomaly.
fn step_labels(rows: &[Vec<usize>], n_pos: usize) -> Vec<u32> {
    rows.iter()
        .flat_map(|r| r.iter().map(move |&p| u32::from(p >= n_pos)))
        .collect()
}

/// One epoch's label-aligned domains: domain `i` (seen family `i`) is `n_pos` normal rows — a
/// fresh random sample of the normals, drawn without replacement for each domain (with
/// replacement when there are fewer than `n_pos`) — followed by `n_pos` rows of family `i` in a
/// fresh random order (wrapping when the family is smaller). Position `p` holds a normal row in
/// every domain for `p < n_pos` and an anomaly otherwise, so a row's counterpart in another
/// domain ([`cross_targets`]) always has its label.
pub fn aligned_domains(
    normals: &[f32],
    n_norm: usize,
    fams: &[&[f32]],
    d: usize,
    n_pos: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<f32>> {
    let mut norm_order: Vec<usize> = (0..n_norm).collect();
    fams.iter()
        .map(|f| {
            let mut m = Vec::with_capacity(2 * n_pos * d);
            if n_norm >= n_pos {
                // a partial Fisher–Yates shuffle: the first n_pos of a fresh permutation
                for i in 0..n_pos {
                    let j = i + rng.below((n_norm - i) as u64) as usize;
                    norm_order.swap(i, j);
                    let r = norm_order[i];
                    m.extend_from_slice(&normals[r * d..(r + 1) * d]);
                }
            } else {
                for _ in 0..n_pos {
                    let r = rng.below(n_norm as u64) as usize;
                    m.extend_from_slice(&normals[r * d..(r + 1) * d]);
                }
            }
            let n_f = f.len() / d;
            let mut o: Vec<usize> = (0..n_f).collect();
            rng.shuffle(&mut o);
            for q in 0..n_pos {
                let r = o[q % n_f];
                m.extend_from_slice(&f[r * d..(r + 1) * d]);
            }
            m
        })
        .collect()
}

fn grads_into(
    acc: &mut HashMap<TensorId, Tensor>,
    g: &candle_core::backprop::GradStore,
    vars: &[Var],
) -> R<()> {
    for v in vars {
        if let Some(t) = g.get(v.as_tensor()) {
            let id = v.as_tensor().id();
            let sum = match acc.remove(&id) {
                Some(a) => (a + t)?,
                None => t.clone(),
            };
            acc.insert(id, sum);
        }
    }
    Ok(())
}

/// A trained MTAE.
pub struct MtaeModel {
    d: usize,
    net: Net,
    device: Device,
    /// [`MtaeParams::input_clip`] (0 = off).
    clip: f64,
}

impl MtaeModel {
    /// Trains on `normals` (domain 0) and `families` (one domain each; empty ones are skipped),
    /// all row-major with `d` columns, already scaled. Reports `epoch_done("train", …,
    /// &[("recon", …)])` (plus `("ce", …)` with `classifier: joint`) after each epoch, then
    /// `epoch_done("classifier", …, &[("ce", …)])` with `classifier: frozen`; checks `stop`
    /// every batch.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        p: &MtaeParams,
        normals: &[f32],
        families: &[&[f32]],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("mtae: {k} {m}")))?;
        let n_norm = rows_of("mtae", "normal", normals, d)?;
        let clip = p.input_clip;
        let normals = super::deep_coral::clip_rows(normals, clip);
        let normals: &[f32] = &normals;
        let clipped: Vec<std::borrow::Cow<'_, [f32]>> = families
            .iter()
            .copied()
            .filter(|f| !f.is_empty())
            .map(|x| super::deep_coral::clip_rows(x, clip))
            .collect();
        for f in &clipped {
            rows_of("mtae", "labelled anomaly", f, d)?;
        }
        let fams: Vec<&[f32]> = clipped.iter().map(|c| &**c).collect();
        if fams.is_empty() {
            return Err(DetectError::Other(
                "mtae: no labelled anomalies (few-shot rows of a seen family) to train on".into(),
            ));
        }
        let k = fams.len();
        let sizes: Vec<usize> = fams.iter().map(|x| x.len() / d).collect();
        // Positions per label and epoch: the largest family. Every domain holds as many normal
        // rows as anomalies (a fresh random sample of the normals per domain and epoch), as
        // the authors' domains — CSE-CIC-IDS2018 captures, each with its own benign and attack
        // traffic, index-aligned arrays of one size — do.
        let n_pos = sizes.iter().copied().max().unwrap_or(0);
        let mut net = Net::new(p, d, k, seed, device)?;
        let mut rng = SplitMix64::new(seed.wrapping_add(999));
        let bs = p.batch_size;
        let n_batches = (2 * n_pos).div_ceil(bs);
        let joint = p.classifier == MtaeClassifier::Joint;
        let cfg = AdamConfig::new(p.lr, p.weight_decay, false);

        // 1. the autoencoder (with the classifier when joint): one step per epoch
        let mut vars = net.enc_params.all();
        vars.extend(net.dec_params.all());
        if joint {
            vars.extend(net.cls_params.all());
        }
        let mut opt = Adam::new(vars.clone(), cfg)?;
        let mut perm: Vec<usize> = Vec::new();
        for epoch in 1..=p.epochs {
            let mats = aligned_domains(normals, n_norm, &fams, d, n_pos, &mut rng);
            let refs: Vec<&[f32]> = mats.iter().map(|m| m.as_slice()).collect();
            // one order of the 2·n_pos positions for every domain: label-aligned batches
            perm.clear();
            perm.extend(0..2 * n_pos);
            rng.shuffle(&mut perm);
            let orders = vec![perm.clone(); k];
            let mut acc: HashMap<TensorId, Tensor> = HashMap::new();
            let (mut rsum, mut csum) = (0.0, 0.0);
            for b in 0..n_batches {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                let rows = step_rows(&orders, b * bs, ((b + 1) * bs).min(2 * n_pos));
                let nb = rows[0].len();
                let (xin, targets) = cross_targets(&refs, d, &rows);
                let x = Tensor::from_vec(xin, (k * nb, d), device)?;
                let z = net.encode_train(&x)?;
                let mut recon: Option<Tensor> = None;
                for (dec, t) in net.decs.iter_mut().zip(targets) {
                    let t = Tensor::from_vec(t, (k * nb, d), device)?;
                    let l = (dec.train(&z)? - t)?.sqr()?.mean_all()?;
                    recon = Some(match recon {
                        Some(r) => (r + l)?,
                        None => l,
                    });
                }
                let recon = match recon {
                    Some(r) => (r / k as f64)?,
                    None => return Err(DetectError::Other("mtae: no decoder".into())),
                };
                rsum += f64::from(recon.to_scalar::<f32>()?);
                let mut loss = recon;
                if joint {
                    let ce = cross_entropy(&net.cls.forward(&z)?, &step_labels(&rows, n_pos))?;
                    csum += f64::from(ce.to_scalar::<f32>()?);
                    loss = (loss + ce)?;
                }
                let loss = (loss / n_batches as f64)?;
                if !f64::from(loss.to_scalar::<f32>()?).is_finite() {
                    return Err(nan_error("mtae", "train", epoch));
                }
                grads_into(&mut acc, &loss.backward()?, &vars)?;
            }
            opt.step(&acc, p.lr)?;
            let nbf = n_batches.max(1) as f64;
            if joint {
                epoch_done(
                    "train",
                    epoch,
                    p.epochs,
                    &[("recon", rsum / nbf), ("ce", csum / nbf)],
                );
            } else {
                epoch_done("train", epoch, p.epochs, &[("recon", rsum / nbf)]);
            }
        }

        // 2. the classifier on the frozen codes: every epoch passes over all normal rows, each
        // step half normals (in a fresh order) and half labelled anomalies drawn uniformly
        if !joint {
            let lat = p.latent;
            let zn = encode_rows(&net, normals, d, device)?;
            let mut za = Vec::new();
            for f in &fams {
                za.extend(encode_rows(&net, f, d, device)?);
            }
            let n_a = za.len() / lat;
            let half = (bs / 2).max(1);
            let c_batches = n_norm.div_ceil(half);
            let cvars = net.cls_params.all();
            let mut opt = Adam::new(cvars.clone(), cfg)?;
            let mut order: Vec<usize> = (0..n_norm).collect();
            for epoch in 1..=p.classifier_epochs {
                rng.shuffle(&mut order);
                let mut sum = 0.0;
                for chunk in order.chunks(half) {
                    if stop.load(Ordering::Relaxed) {
                        return Err(DetectError::Stopped);
                    }
                    let mut zin = Vec::with_capacity(2 * chunk.len() * lat);
                    for &r in chunk {
                        zin.extend_from_slice(&zn[r * lat..(r + 1) * lat]);
                    }
                    for _ in chunk {
                        let r = rng.below(n_a as u64) as usize;
                        zin.extend_from_slice(&za[r * lat..(r + 1) * lat]);
                    }
                    let mut y = vec![0u32; chunk.len()];
                    y.resize(2 * chunk.len(), 1);
                    let z = Tensor::from_vec(zin, (2 * chunk.len(), lat), device)?;
                    let ce = cross_entropy(&net.cls.forward(&z)?, &y)?;
                    let lv = f64::from(ce.to_scalar::<f32>()?);
                    if !lv.is_finite() {
                        return Err(nan_error("mtae", "classifier", epoch));
                    }
                    sum += lv;
                    let mut acc = HashMap::new();
                    grads_into(&mut acc, &ce.backward()?, &cvars)?;
                    opt.step(&acc, p.lr)?;
                }
                epoch_done(
                    "classifier",
                    epoch,
                    p.classifier_epochs,
                    &[("ce", sum / c_batches.max(1) as f64)],
                );
            }
        }
        Ok(MtaeModel {
            d,
            net,
            device: device.clone(),
            clip,
        })
    }

    /// The number of decoders (= domains).
    pub fn decoders(&self) -> usize {
        self.net.decs.len()
    }

    /// `softmax(logits)[anomaly]` per row of `x` (row-major, `d` columns), eval mode, in `f64`.
    pub fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("mtae", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(EVAL_CHUNK * self.d) {
            let chunk = super::deep_coral::clip_rows(chunk, self.clip);
            let t = Tensor::from_slice(&chunk, (chunk.len() / self.d, self.d), &self.device)?;
            let l = self
                .net
                .cls
                .forward(&self.net.encode_eval(&t)?)?
                .to_vec2::<f32>()?;
            out.extend(l.into_iter().map(|r| {
                let z = (f64::from(r[1]) - f64::from(r[0])).clamp(-700.0, 700.0);
                1.0 / (1.0 + (-z).exp())
            }));
        }
        Ok(out)
    }

    /// Saves every weight (stored (in, out)), every batch norm's γ, β and running statistics.
    pub fn save(&self, path: &std::path::Path) -> R<()> {
        let mut p = Params::default();
        p.vars.extend(self.net.enc_params.vars.iter().cloned());
        p.vars.extend(self.net.dec_params.vars.iter().cloned());
        p.vars.extend(self.net.cls_params.vars.iter().cloned());
        for (i, b) in self.net.enc.iter().enumerate() {
            b.bn.stats(&mut p, &format!("enc.bn{i}"), &self.device)?;
        }
        for (j, dec) in self.net.decs.iter().enumerate() {
            for (i, b) in dec.bn.iter().enumerate() {
                b.bn.stats(&mut p, &format!("dec{j}.bn{i}"), &self.device)?;
            }
        }
        Ok(p.save(path)?)
    }
}

/// Eval-mode codes of rows `x` (row-major, `d` columns).
fn encode_rows(net: &Net, x: &[f32], d: usize, dev: &Device) -> R<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in x.chunks(EVAL_CHUNK * d) {
        let t = Tensor::from_slice(chunk, (chunk.len() / d, d), dev)?;
        out.extend(net.encode_eval(&t)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

impl super::MethodSpec for MtaeParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "MTAE (multi-task autoencoder)",
            paper: "Ghifary et al., Domain generalization for object recognition with multi-task autoencoders (ICCV 2015); the core paper's baseline, spec §1.20, authors' variant padmaksha18/MTRAE baselines/DMTAE.py",
            labels: super::Labels::FewShot,
            summary: "A shared BN+ReLU encoder D→25→20→20→15 and one decoder per domain (the normal rows, each seen family's few-shot rows): decoder j reconstructs, from the code of a row of domain i, the row of domain j at the same batch position; then a linear classifier on the code. Score softmax(logits)[anomaly].",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::int("h1", 1, 8192, "width of the encoder's first hidden layer and the decoders' last (authors: 25)"),
            P::int("h2", 1, 8192, "width of the encoder's second and third hidden layers (authors: 20)"),
            P::int("latent", 1, 8192, "width of the code (authors: 15)"),
            P::int("epochs", 1, 100_000, "autoencoder epochs, one Adam step each on the mean of the epoch's batch losses, as the authors (300)"),
            P::int("batch_size", 1, 65_536, "batch positions per step; position k takes one row of every domain (each seen family's few-shot rows and as many normals, label-aligned), and decoder j reconstructs domain j's row at position k from each of them (authors: 200)"),
            P::float("lr", 0.0, 1.0, "Adam learning rate, both stages (authors: 5e-3)"),
            P::float("weight_decay", 0.0, 1.0, "Adam L2 weight decay in the gradient, in [0, 1) (authors: 1e-5)"),
            P::choice("classifier", &["frozen", "joint"], "frozen: reconstruction only (DMTAE.py, whose cross-entropy is commented out), then the linear classifier on the frozen codes (the authors classify the codes with 3-NN); joint: cross-entropy + reconstruction together (multitaskAE_orig.py)"),
            P::int("classifier_epochs", 0, 100_000, "epochs of the classifier on the frozen codes, one Adam step per batch (classifier: frozen; ≥ 1 there) (30, heldout's choice)"),
            P::float("input_clip", 0.0, 1e12, "clip every scaled input feature to ±input_clip before the encoder, training and scoring; 0 = off (heldout's: the protocol's robust scaling leaves heavy tails that swamp the reconstruction MSE)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        MtaeParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "mtae".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let (h1, h2, lat) = (self.h1 as f64, self.h2 as f64, self.latent as f64);
        let enc: Layers = vec![(s.d, h1), (h1, h2), (h2, h2), (h2, lat)];
        let dec: Layers = vec![(lat, lat), (lat, h2), (h2, h2), (h2, h1), (h1, s.d)];
        let cls: Layers = vec![(lat, 2.0)];
        // one domain (and decoder) per seen family with few-shot rows
        let domains = s.few_shot.iter().filter(|&&n| n > 0.0).count().max(1) as f64;
        // weights and biases, plus γ, β, running mean and variance of every batch norm
        let params = dense_params(&enc, true)
            + 4.0 * (h1 + 2.0 * h2)
            + domains * (dense_params(&dec, true) + 4.0 * (h2 + h1 + s.d))
            + dense_params(&cls, true);
        // positions per epoch: twice the largest family (its rows and as many normals; see
        // `MtaeModel::fit`)
        let n_max = 2.0 * s.few_shot_max().max(1.0);
        let batches = (n_max / self.batch_size as f64).ceil().max(1.0);
        let bs = (self.batch_size as f64).min(n_max);
        let rows = domains * bs;
        // every decoder sees every input row of a step
        let step_flops = dense_train_flops(&enc, rows) + domains * dense_train_flops(&dec, rows);
        let all_layers: Layers = enc
            .iter()
            .copied()
            .chain((0..domains as usize).flat_map(|_| dec.iter().copied()))
            .collect();
        let cls_epochs = match self.classifier {
            MtaeClassifier::Frozen => self.classifier_epochs as f64,
            MtaeClassifier::Joint => 0.0,
        };
        let train_rows = s.normals + s.few_shot_total();
        use super::mlp::{BN_TRAIN_SPEED, SCORE_SPEED};
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            step_bytes: dense_activation_bytes(&all_layers, rows, 5.0)
                + 2.0 * domains * rows * s.d * F32,
            phases: vec![
                Phase {
                    name: "autoencoder steps",
                    steps: self.epochs as f64 * batches,
                    flops: step_flops,
                    speed: BN_TRAIN_SPEED,
                },
                Phase {
                    // every row of every domain, normals included (see `MtaeModel::fit`)
                    name: "classifier steps",
                    steps: cls_epochs
                        * (s.normals / (self.batch_size as f64 / 2.0).max(1.0)).ceil().max(1.0),
                    flops: dense_train_flops(&cls, rows),
                    speed: BN_TRAIN_SPEED,
                },
                Phase {
                    name: "codes and scoring",
                    steps: 1.0,
                    flops: dense_forward_flops(&enc, train_rows + s.checkpoint + s.scored()),
                    speed: SCORE_SPEED,
                },
            ],
            records: self.epochs as f64 + cls_epochs + checkpoint_records(s) + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<MtaeModel>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

impl super::Fit for MtaeModel {
    type Params = MtaeParams;
    fn fit(
        p: &MtaeParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, DetectError> {
        let device = ctx.device.clone();
        let emit = &mut *ctx.emit;
        let families: Vec<&[f32]> = data.few_shot.iter().map(|(_, x)| x.as_slice()).collect();
        MtaeModel::fit(
            p,
            &data.normals,
            &families,
            data.d,
            seed,
            &device,
            ctx.stop,
            &mut |phase, epoch, epochs, terms| super::emit_epoch(emit, phase, epoch, epochs, terms),
        )
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        MtaeModel::score(self, x)
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        MtaeModel::save(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::mlp::tests::{auc, cicids, split};

    /// (phase, epoch, terms) per reported epoch.
    type Log = Vec<(&'static str, usize, Vec<(&'static str, f64)>)>;

    /// Three domains of 3, 2 and 1 rows whose values say which row they are (domain·10 + row);
    /// row orders given by hand; a step of positions 1..3.
    #[test]
    fn cross_domain_targets_pair_rows_by_position() {
        let d = 2;
        let a: Vec<f32> = vec![0., 0., 1., 1., 2., 2.]; // domain 0: rows 0, 1, 2
        let b: Vec<f32> = vec![10., 10., 11., 11.]; // domain 1: rows 0, 1
        let c: Vec<f32> = vec![20., 20.]; // domain 2: row 0
        let orders = vec![vec![2, 0, 1], vec![1, 0], vec![0]];
        let rows = step_rows(&orders, 1, 3);
        // position 1: domain 0 → orders[0][1] = 0, domain 1 → orders[1][1] = 0, domain 2 → 0;
        // position 2: domain 0 → 1, domain 1 → orders[1][2 mod 2] = 1 (wraps), domain 2 → 0
        assert_eq!(rows, vec![vec![0, 1], vec![0, 1], vec![0, 0]]);
        let (inputs, targets) = cross_targets(&[&a, &b, &c], d, &rows);
        let first = |v: &[f32]| -> Vec<f32> { v.chunks(d).map(|r| r[0]).collect() };
        // inputs: domain-major, position order
        assert_eq!(first(&inputs), vec![0., 1., 10., 11., 20., 20.]);
        assert_eq!(targets.len(), 3);
        // decoder 0: every input at position 1 reconstructs domain 0's row 0, at position 2 row 1
        assert_eq!(first(&targets[0]), vec![0., 1., 0., 1., 0., 1.]);
        // decoder 1: domain 1's rows 0 and 1 (the counterpart of domain 2's row 0 at position 2
        // is domain 1's row 1)
        assert_eq!(first(&targets[1]), vec![10., 11., 10., 11., 10., 11.]);
        // decoder 2: its only row, for every input
        assert_eq!(first(&targets[2]), vec![20.; 6]);
        // labels from the row ids of label-aligned domains: with n_pos = 1, row 0 is normal,
        // row 1 an anomaly
        assert_eq!(step_labels(&rows, 1), vec![0, 1, 0, 1, 0, 0]);
        assert_eq!(step_labels(&[vec![0, 1], vec![0, 1]], 1), vec![0, 1, 0, 1]);
    }

    /// Label-aligned domains: every domain holds `n_pos` distinct normal rows then `n_pos` rows
    /// of its own family (wrapping), so a position's counterparts all share its label.
    #[test]
    fn aligned_domains_keep_the_label_at_every_position() {
        let d = 1;
        let normals: Vec<f32> = (0..10).map(|v| v as f32).collect(); // 0..9
        let f0: Vec<f32> = vec![100., 101., 102.];
        let f1: Vec<f32> = vec![200.];
        let mut rng = SplitMix64::new(3);
        let m = aligned_domains(&normals, 10, &[&f0, &f1], d, 3, &mut rng);
        assert_eq!(m.len(), 2);
        for (i, dom) in m.iter().enumerate() {
            assert_eq!(dom.len(), 6);
            let mut norm: Vec<f32> = dom[..3].to_vec();
            assert!(norm.iter().all(|&v| v < 10.0), "domain {i}: normals first {dom:?}");
            norm.sort_by(f32::total_cmp);
            norm.dedup();
            assert_eq!(norm.len(), 3, "drawn without replacement");
            let base = if i == 0 { 100.0 } else { 200.0 };
            assert!(dom[3..].iter().all(|&v| (base..base + 3.0).contains(&v)));
        }
        let mut f0_rows: Vec<f32> = m[0][3..].to_vec();
        f0_rows.sort_by(f32::total_cmp);
        assert_eq!(f0_rows, vec![100., 101., 102.], "each of family 0's rows once");
        assert_eq!(&m[1][3..], &[200., 200., 200.], "family 1 wraps");
        // the same permutation for both domains keeps the labels aligned
        let orders = vec![vec![4, 0, 5, 1, 3, 2]; 2];
        let rows = step_rows(&orders, 0, 6);
        assert_eq!(step_labels(&rows, 3), vec![1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
    }

    /// On the CIC-IDS2017 sample (Infiltration held out; 1,000 normals, the few-shot rows of
    /// each seen family as its domain), a short run separates a seen family's test rows; one
    /// decoder per domain; same seed → same scores, another seed → other ones.
    #[test]
    fn mtae_learns_a_seen_family_and_is_deterministic() {
        let s = split(cicids(), Some("Infiltration"), "DoS", 1000);
        let fams = &s.few_shot_families;
        let refs: Vec<&[f32]> = fams.iter().map(|f| f.as_slice()).collect();
        // a third of the default 300 epochs keeps the test short (defaults: DoS AUC 0.996)
        let p = MtaeParams {
            epochs: 100,
            classifier_epochs: 10,
            ..Default::default()
        };
        let stop = AtomicBool::new(false);
        let fit = |seed: u64, log: &mut Log| {
            MtaeModel::fit(
                &p,
                &s.normals,
                &refs,
                s.d,
                seed,
                &Device::Cpu,
                &stop,
                &mut |ph, e, _, t| log.push((ph, e, t.to_vec())),
            )
            .unwrap()
        };
        let t0 = std::time::Instant::now();
        let mut log = Vec::new();
        let m = fit(0, &mut log);
        let fit_s = t0.elapsed().as_secs_f64();
        let a = m.score(&s.test_x).unwrap();
        let auc = auc(&s, &a);
        eprintln!(
            "mtae: {} domains, fit {fit_s:.1}s, DoS AUC {auc:.4}, recon {:.4} → {:.4}",
            m.decoders(),
            log[0].2[0].1,
            log[99].2[0].1
        );
        assert_eq!(m.decoders(), fams.len());
        assert_eq!(log.len(), 110);
        assert_eq!((log[0].0, log[0].2[0].0), ("train", "recon"));
        assert_eq!((log[100].0, log[100].2[0].0), ("classifier", "ce"));
        assert!(log[99].2[0].1 < log[0].2[0].1, "the reconstruction falls");
        assert!(auc >= 0.9, "AUC {auc}");
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(a, fit(0, &mut Vec::new()).score(&s.test_x).unwrap());
        assert_ne!(a, fit(1, &mut Vec::new()).score(&s.test_x).unwrap());
        // the file holds one decoder per domain
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtae.safetensors");
        m.save(&path).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let decs = back.keys().filter(|k| k.ends_with(".fc3.weight")).count();
        assert_eq!(decs, fams.len());
        assert_eq!(back["enc.code.weight"].dims(), &[20, 15]);
    }

    /// Joint training reports both terms.
    #[test]
    fn joint_classifier_reports_ce_and_recon() {
        let s = split(cicids(), Some("Infiltration"), "DoS", 300);
        let fams = &s.few_shot_families;
        let refs: Vec<&[f32]> = fams.iter().map(|f| f.as_slice()).collect();
        let p = MtaeParams {
            epochs: 3,
            classifier: MtaeClassifier::Joint,
            ..Default::default()
        };
        let mut log = Vec::new();
        MtaeModel::fit(
            &p,
            &s.normals,
            &refs,
            s.d,
            0,
            &Device::Cpu,
            &AtomicBool::new(false),
            &mut |ph, _, _, t| log.push((ph, t.iter().map(|x| x.0).collect::<Vec<_>>())),
        )
        .unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0], ("train", vec!["recon", "ce"]));
    }

    #[test]
    fn invalid_params_are_rejected_by_name() {
        let d = MtaeParams::default;
        let bad = [
            (MtaeParams { h1: 0, ..d() }, "h1"),
            (MtaeParams { h2: 0, ..d() }, "h2"),
            (
                MtaeParams {
                    latent: 9000,
                    ..d()
                },
                "latent",
            ),
            (MtaeParams { epochs: 0, ..d() }, "epochs"),
            (
                MtaeParams {
                    batch_size: 0,
                    ..d()
                },
                "batch_size",
            ),
            (MtaeParams { lr: 0.0, ..d() }, "lr"),
            (
                MtaeParams {
                    lr: f64::NAN,
                    ..d()
                },
                "lr",
            ),
            (
                MtaeParams {
                    weight_decay: 1.0,
                    ..d()
                },
                "weight_decay",
            ),
            (
                MtaeParams {
                    classifier_epochs: 0,
                    ..d()
                },
                "classifier_epochs",
            ),
        ];
        for (p, name) in bad {
            let (k, msg) = p.validate().unwrap_err();
            assert_eq!(k, name, "{msg}");
            let err = MtaeModel::fit(
                &p,
                &[0.0; 4],
                &[&[1.0; 4]],
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
        // joint needs no classifier epochs
        assert!(MtaeParams {
            classifier: MtaeClassifier::Joint,
            classifier_epochs: 0,
            ..d()
        }
        .validate()
        .is_ok());
        assert!(ron::from_str::<MtaeParams>("(epoch: 2)").is_err());
        let p: MtaeParams = ron::from_str("(classifier: joint)").unwrap();
        assert_eq!(p.classifier, MtaeClassifier::Joint);
        // no anomalies, or stopped: errors, not panics
        let e = MtaeModel::fit(
            &d(),
            &[0.0; 4],
            &[],
            2,
            0,
            &Device::Cpu,
            &AtomicBool::new(false),
            &mut |_, _, _, _| {},
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("no labelled anomalies"), "{e}");
        let e = MtaeModel::fit(
            &d(),
            &[0.0; 4],
            &[&[1.0; 4]],
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
