//! DevNet (Pang et al. 2019; reference `refbench/deep.py`, spec §6): a scorer
//! `φ(x) = Linear(20 → 1)(ReLU(Linear(D → 20)(x)))` trained so that normals' scores stay near
//! a N(0, 1) prior and labelled anomalies' deviate by at least a margin:
//! `dev = (φ(x) − μ_R)/σ_R` with μ_R, σ_R the mean and (unbiased) std of 5000 N(0, 1) reference
//! scores drawn per batch, loss `mean((1 − y)·|dev| + y·max(0, 5 − dev)) + 0.01·‖W₁‖²`.
//! RMSprop (torch semantics, Keras defaults ρ 0.9, ε 1e-7), per-tensor gradient-norm clipping
//! at 1 (Keras `clipnorm`), 50 epochs × 20 batches × 512 rows (256 normals + 256 anomalies, both
//! drawn with replacement). Score: `φ(x)` (higher = more anomalous).

use super::mlp::{fusable, linear_act, nan_error, rows_of, score_rows, EpochDone};
use super::DetectError;
use crate::nn::{Linear, Params};
use crate::rng::SplitMix64;
use candle_core::{Device, Tensor, Var};
use std::sync::atomic::{AtomicBool, Ordering};

type R<T> = Result<T, DetectError>;

/// Rows per forward pass when scoring.
const SCORE_CHUNK: usize = 8192;

/// Settings of DevNet; the defaults are the reference's (the paper's and Keras').
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevNetParams {
    /// Width of the hidden ReLU layer.
    pub hidden: usize,
    /// Epochs (each of `batches_per_epoch` batches).
    pub epochs: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
    /// Rows per batch: half normals, half labelled anomalies, both drawn with replacement.
    pub batch_size: usize,
    /// N(0, 1) reference scores drawn per batch for the prior's mean and std.
    pub n_reference: usize,
    /// Deviation margin the anomalies' scores must exceed.
    pub margin: f64,
    /// L2 penalty (sum of squares) on the first layer's weights.
    pub l2: f64,
    /// RMSprop learning rate.
    pub lr: f64,
    /// RMSprop smoothing constant ρ of the squared-gradient average.
    pub rho: f64,
    /// RMSprop ε, added to the root of the squared-gradient average.
    pub eps: f64,
    /// Largest L2 norm of each parameter tensor's gradient.
    pub clip_norm: f64,
}

impl Default for DevNetParams {
    fn default() -> Self {
        DevNetParams {
            hidden: 20,
            epochs: 50,
            batches_per_epoch: 20,
            batch_size: 512,
            n_reference: 5000,
            margin: 5.0,
            l2: 0.01,
            lr: 1e-3,
            rho: 0.9,
            eps: 1e-7,
            clip_norm: 1.0,
        }
    }
}

impl DevNetParams {
    /// Checks every setting; the error names the parameter and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.hidden == 0 || self.hidden > 8192 {
            return Err(("hidden", format!("must be 1 to 8192 (got {})", self.hidden)));
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return Err((
                "epochs",
                format!(
                    "must be 1 to 100000 (got {}); the reference uses 50",
                    self.epochs
                ),
            ));
        }
        if self.batches_per_epoch == 0 || self.batches_per_epoch > 100_000 {
            return Err((
                "batches_per_epoch",
                format!("must be 1 to 100000 (got {})", self.batches_per_epoch),
            ));
        }
        if self.batch_size < 2 || self.batch_size % 2 != 0 || self.batch_size > 131_072 {
            return Err((
                "batch_size",
                format!(
                    "must be an even number from 2 to 131072 (got {}); half of it are normals, half anomalies",
                    self.batch_size
                ),
            ));
        }
        if self.n_reference < 2 || self.n_reference > 10_000_000 {
            return Err((
                "n_reference",
                format!(
                    "must be 2 to 10000000 (got {}); the std needs two draws",
                    self.n_reference
                ),
            ));
        }
        if !(self.margin > 0.0 && self.margin <= 1e3) {
            return Err((
                "margin",
                format!("must be > 0 and ≤ 1000 (got {})", self.margin),
            ));
        }
        if !(0.0..=1e3).contains(&self.l2) {
            return Err(("l2", format!("must be 0 to 1000 (got {})", self.l2)));
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
        if !(0.0..1.0).contains(&self.rho) {
            return Err(("rho", format!("must be ≥ 0 and < 1 (got {})", self.rho)));
        }
        if !(self.eps > 0.0 && self.eps <= 1.0) {
            return Err(("eps", format!("must be > 0 and ≤ 1 (got {})", self.eps)));
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

/// RMSprop with torch semantics (no momentum, not centred, no weight decay) after Keras-style
/// per-tensor gradient clipping: `g ← g·min(1, c/(‖g‖ + 1e-6))`, `s ← ρ·s + (1 − ρ)·g²`,
/// `p ← p − lr·g/(√s + ε)`.
struct RmsProp {
    vars: Vec<Var>,
    /// squared-gradient averages, one per variable
    sq: Vec<Square>,
    lr: f64,
    rho: f64,
    eps: f64,
}

/// The squared-gradient average: a plain vector for f32 variables on the CPU (one loop per
/// tensor and step instead of a dozen tensor ops), a tensor elsewhere.
enum Square {
    Cpu(Vec<f32>),
    Device(Tensor),
}

impl RmsProp {
    fn new(vars: Vec<Var>, lr: f64, rho: f64, eps: f64) -> R<Self> {
        let sq = vars
            .iter()
            .map(|v| {
                let t = v.as_tensor();
                Ok(if fusable(t) {
                    Square::Cpu(vec![0.0; t.elem_count()])
                } else {
                    Square::Device(t.zeros_like()?)
                })
            })
            .collect::<R<Vec<_>>>()?;
        Ok(RmsProp {
            vars,
            sq,
            lr,
            rho,
            eps,
        })
    }

    /// One step; `grads[i]` is the gradient of `vars[i]` (`None`: no step for it), clipped to
    /// norm `max_norm` first (`f64::INFINITY`: no clipping).
    fn step(&mut self, grads: &[Option<Tensor>], max_norm: f64) -> R<()> {
        for ((v, s), g) in self.vars.iter().zip(&mut self.sq).zip(grads) {
            let Some(g) = g else { continue };
            match s {
                Square::Cpu(s) => {
                    let t = v.as_tensor();
                    let g = g.flatten_all()?.to_vec1::<f32>()?;
                    let mut p = t.flatten_all()?.to_vec1::<f32>()?;
                    if g.len() != p.len() || s.len() != p.len() {
                        return Err(DetectError::Other(format!(
                            "rmsprop: gradient of {} for {} values",
                            g.len(),
                            p.len()
                        )));
                    }
                    let norm = g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
                    let coef = (max_norm / (norm + 1e-6)).min(1.0) as f32;
                    let (rho, one_m) = (self.rho as f32, (1.0 - self.rho) as f32);
                    let (lr, eps) = (self.lr as f32, self.eps as f32);
                    for ((p, s), &g) in p.iter_mut().zip(s.iter_mut()).zip(&g) {
                        let g = g * coef;
                        *s = rho * *s + one_m * g * g;
                        *p -= lr * g / (s.sqrt() + eps);
                    }
                    v.set(&Tensor::from_vec(p, t.shape(), t.device())?)?;
                }
                Square::Device(s) => {
                    let g = clip_tensor(&g.detach(), max_norm)?;
                    *s = ((&*s * self.rho)? + (g.sqr()? * (1.0 - self.rho))?)?.detach();
                    let denom = (s.sqrt()? + self.eps)?;
                    let next = (v.as_tensor().detach() - ((g / denom)? * self.lr)?)?;
                    v.set(&next)?;
                }
            }
        }
        Ok(())
    }
}

/// `g · min(1, max_norm/(‖g‖ + 1e-6))` — torch's `clip_grad_norm_([p], max_norm)` on one
/// tensor, computed on the device (no host round trip).
fn clip_tensor(g: &Tensor, max_norm: f64) -> R<Tensor> {
    if max_norm.is_infinite() {
        return Ok(g.clone());
    }
    let norm = g.sqr()?.sum_all()?.sqrt()?;
    let coef = ((norm + 1e-6)?.recip()? * max_norm)?.clamp(0f32, 1f32)?;
    Ok(g.broadcast_mul(&coef)?)
}

/// The deviation loss (without the L2 term): `mean((1 − y)·|dev| + y·max(0, margin − dev))`,
/// `dev = (φ − μ)/σ`.
fn deviation_loss(phi: &Tensor, y: &Tensor, mu: f64, sigma: f64, margin: f64) -> R<Tensor> {
    let dev = phi.affine(1.0 / sigma, -mu / sigma)?;
    let inlier = (dev.abs()? * y.affine(-1.0, 1.0)?)?;
    let outlier = (dev.affine(-1.0, margin)?.relu()? * y)?;
    Ok((inlier + outlier)?.mean_all()?)
}

/// Mean and unbiased std of `n` N(0, 1) draws (Box–Muller from SplitMix64, both values of each
/// pair used).
fn reference_stats(rng: &mut SplitMix64, n: usize) -> (f64, f64) {
    let (mut s, mut s2) = (0.0f64, 0.0f64);
    let mut k = 0;
    while k < n {
        let u1 = 1.0 - rng.next_f64(); // (0, 1]
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        for z in [r * cos, r * sin].into_iter().take(n - k) {
            s += z;
            s2 += z * z;
            k += 1;
        }
    }
    let nf = n as f64;
    let mean = s / nf;
    let var = ((s2 - nf * mean * mean) / (nf - 1.0)).max(0.0);
    (mean, var.sqrt())
}

/// A trained DevNet.
pub struct DevNetModel {
    d: usize,
    params: Params,
    l1: Linear,
    l2: Linear,
    device: Device,
}

impl DevNetModel {
    /// Trains on `normals` and labelled `anomalies` (row-major, `d` columns, already scaled).
    /// Calls `epoch_done("train", epoch (1-based), epochs, &[("deviation", mean loss over the
    /// epoch's batches, L2 term included)])` after each epoch; checks `stop` every step.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        p: &DevNetParams,
        normals: &[f32],
        anomalies: &[f32],
        d: usize,
        seed: u64,
        device: &Device,
        stop: &AtomicBool,
        epoch_done: &mut EpochDone<'_>,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("devnet: {k} {m}")))?;
        let n = rows_of("devnet", "normal", normals, d)?;
        let n_a = rows_of("devnet", "labelled anomaly", anomalies, d)?;
        // weights as torch.manual_seed(seed + 40) + nn.Linear defaults; the reference scores
        // continue that stream (torch.randn on the same global generator)
        let mut wrng = SplitMix64::new(seed.wrapping_add(40));
        let mut params = Params::default();
        let l1 = Linear::new(&mut params, "l1", d, p.hidden, &mut wrng, device)?;
        let l2 = Linear::new(&mut params, "l2", p.hidden, 1, &mut wrng, device)?;
        let model = DevNetModel {
            d,
            params,
            l1,
            l2,
            device: device.clone(),
        };
        let vars = model.params.all();
        let mut opt = RmsProp::new(vars.clone(), p.lr, p.rho, p.eps)?;
        let mut rng = SplitMix64::new(seed.wrapping_add(31));
        let half = p.batch_size / 2;
        let mut y = vec![0f32; half];
        y.resize(2 * half, 1.0);
        let y = Tensor::from_vec(y, 2 * half, device)?;
        let mut xb: Vec<f32> = Vec::with_capacity(2 * half * d);
        for epoch in 1..=p.epochs {
            let mut sum = Tensor::zeros((), candle_core::DType::F32, device)?;
            for _ in 0..p.batches_per_epoch {
                if stop.load(Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                xb.clear();
                for _ in 0..half {
                    let r = rng.below(n as u64) as usize;
                    xb.extend_from_slice(&normals[r * d..(r + 1) * d]);
                }
                for _ in 0..half {
                    let r = rng.below(n_a as u64) as usize;
                    xb.extend_from_slice(&anomalies[r * d..(r + 1) * d]);
                }
                let x = Tensor::from_slice(&xb, (2 * half, d), device)?;
                let (mu, sigma) = reference_stats(&mut wrng, p.n_reference);
                let phi = model.phi(&x)?;
                let l2 = (model.l1.w.as_tensor().sqr()?.sum_all()? * p.l2)?;
                let loss = (deviation_loss(&phi, &y, mu, sigma, p.margin)? + l2)?;
                sum = (sum + loss.detach())?;
                let g = loss.backward()?;
                let grads: Vec<Option<Tensor>> =
                    vars.iter().map(|v| g.get(v.as_tensor()).cloned()).collect();
                opt.step(&grads, p.clip_norm)?;
            }
            // one host read per epoch: the mean loss (NaN anywhere in the epoch shows here)
            let mean = f64::from(sum.to_scalar::<f32>()?) / p.batches_per_epoch as f64;
            if !mean.is_finite() {
                return Err(nan_error("devnet", "train", epoch));
            }
            epoch_done("train", epoch, p.epochs, &[("deviation", mean)]);
        }
        Ok(model)
    }

    /// φ(x), shape (rows,), through the fused kernels on the CPU (training and scoring).
    fn phi(&self, x: &Tensor) -> R<Tensor> {
        let h = linear_act(x, &self.l1, true, true)?;
        Ok(linear_act(&h, &self.l2, false, false)?.squeeze(1)?)
    }

    /// `φ(x)` per row of `x` (row-major, `d` columns); higher = more anomalous.
    pub fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        let n = score_rows("devnet", x, self.d)?;
        let mut out = Vec::with_capacity(n);
        for chunk in x.chunks(SCORE_CHUNK * self.d) {
            let t = Tensor::from_slice(chunk, (chunk.len() / self.d, self.d), &self.device)?;
            out.extend(self.phi(&t)?.to_vec1::<f32>()?.into_iter().map(f64::from));
        }
        Ok(out)
    }

    /// Saves the weights (safetensors; `l1.weight` stored (in, out), `l1.bias`, `l2.…`).
    pub fn save(&self, path: &std::path::Path) -> R<()> {
        Ok(self.params.save(path)?)
    }
}

impl super::MethodSpec for DevNetParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "DevNet",
            paper: "Pang, Shen & van den Hengel, Deep anomaly detection with deviation networks (KDD 2019); spec §6, reference refbench/deep.py",
            labels: super::Labels::FewShot,
            summary: "A small network scores rows; a deviation loss pushes normals' scores to a N(0,1) prior's mean and the labelled anomalies' at least `margin` standard deviations above; score φ(x).",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::int("hidden", 1, 8192, "width of the hidden ReLU layer (20)"),
            P::int("epochs", 1, 100_000, "epochs (50)"),
            P::int("batches_per_epoch", 1, 100_000, "batches per epoch (20)"),
            P::int("batch_size", 2, 131_072, "rows per batch, even: half normals and half anomalies drawn with replacement (512)"),
            P::int("n_reference", 2, 10_000_000, "N(0,1) reference scores drawn per batch (5000)"),
            P::float("margin", 0.0, 1e3, "deviation margin a for anomalies, > 0 (5)"),
            P::float("l2", 0.0, 1e3, "L2 penalty on the first layer's weights (0.01)"),
            P::float("lr", 0.0, 1.0, "RMSprop learning rate (1e-3)"),
            P::float("rho", 0.0, 1.0, "RMSprop decay ρ, in [0, 1) (Keras: 0.9)"),
            P::float("eps", 0.0, 1.0, "RMSprop ε, > 0 (Keras: 1e-7)"),
            P::float("clip_norm", 0.0, 1e9, "per-tensor gradient clip norm (Keras clipnorm: 1)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        DevNetParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "devnet".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let layers = vec![(s.d, self.hidden as f64), (self.hidden as f64, 1.0)];
        let params = dense_params(&layers, true);
        let rows = self.batch_size as f64;
        use super::mlp::{DEVNET_SPEED as TRAIN_SPEED, SCORE_SPEED};
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            step_bytes: dense_activation_bytes(&layers, rows, 3.0)
                + F32 * self.n_reference as f64
                + dense_activation_bytes(&layers, SCORE_CHUNK as f64, 2.0),
            phases: vec![
                Phase {
                    name: "training steps",
                    steps: self.epochs as f64 * self.batches_per_epoch as f64,
                    // plus the reference scores: a normal draw (~20 operations) each
                    flops: dense_train_flops(&layers, rows) + 20.0 * self.n_reference as f64,
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
        super::fitted::<DevNetModel>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

impl super::Fit for DevNetModel {
    type Params = DevNetParams;
    fn fit(
        p: &DevNetParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, DetectError> {
        let device = ctx.device.clone();
        let emit = &mut *ctx.emit;
        DevNetModel::fit(
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
        DevNetModel::score(self, x)
    }
    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        DevNetModel::save(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::mlp::tests::{auc, cicids, split};

    fn quiet() -> impl FnMut(&'static str, usize, usize, &[(&'static str, f64)]) {
        |_, _, _, _| {}
    }

    /// Trained on few-shot rows (Infiltration held out), DevNet separates benign test rows from
    /// a seen family's (PortScan); same seed → identical scores.
    #[test]
    fn devnet_separates_a_seen_family_and_is_deterministic() {
        let s = split(cicids(), Some("Infiltration"), "PortScan", 1500);
        let p = DevNetParams::default();
        let stop = AtomicBool::new(false);
        let mut log = Vec::new();
        let t0 = std::time::Instant::now();
        let m = DevNetModel::fit(
            &p,
            &s.normals,
            &s.few_shot,
            s.d,
            5,
            &Device::Cpu,
            &stop,
            &mut |st, e, n, t| log.push((st, e, n, t[0].1)),
        )
        .unwrap();
        let fit_s = t0.elapsed().as_secs_f64();
        let scores = m.score(&s.test_x).unwrap();
        let auc = auc(&s, &scores);
        eprintln!("devnet: fit {fit_s:.2}s, PortScan AUC {auc:.4}");
        assert!(auc >= 0.9, "AUC {auc}");
        assert_eq!(log.len(), 50);
        assert!(log[49].3 < log[0].3, "{log:?}");
        let again = DevNetModel::fit(
            &p,
            &s.normals,
            &s.few_shot,
            s.d,
            5,
            &Device::Cpu,
            &stop,
            &mut quiet(),
        )
        .unwrap();
        assert_eq!(scores, again.score(&s.test_x).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devnet.safetensors");
        m.save(&path).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back["l1.weight"].dims(), &[s.d, 20]);
    }

    /// φ = (0, 1, 6, 2) with labels (0, 0, 1, 1), μ = 0, σ = 1: |0| + |1| + max(0, 5 − 6) +
    /// max(0, 5 − 2) = 4, mean 1; with μ = 1, σ = 2: dev = (−0.5, 0, 2.5, 0.5) → 0.5 + 0 + 2.5 +
    /// 4.5 = 7.5, mean 1.875.
    #[test]
    fn deviation_loss_by_hand() {
        let dev = Device::Cpu;
        let phi = Tensor::new(&[0f32, 1.0, 6.0, 2.0], &dev).unwrap();
        let y = Tensor::new(&[0f32, 0.0, 1.0, 1.0], &dev).unwrap();
        let l = |mu, sigma| {
            deviation_loss(&phi, &y, mu, sigma, 5.0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!((l(0.0, 1.0) - 1.0).abs() < 1e-6);
        assert!((l(1.0, 2.0) - 1.875).abs() < 1e-6);
    }

    /// torch's RMSprop (lr 0.1, α 0.9, ε 1e-7): s = 0.9s + 0.1g², p −= lr·g/(√s + ε), two
    /// steps, on the CPU loop and on the tensor path (used off the CPU).
    #[test]
    fn rmsprop_two_steps_by_hand() {
        let dev = Device::Cpu;
        for cpu in [true, false] {
            let p = Var::from_vec(vec![1f32, -2.0], 2, &dev).unwrap();
            let mut opt = RmsProp::new(vec![p.clone()], 0.1, 0.9, 1e-7).unwrap();
            if !cpu {
                opt.sq = vec![Square::Device(p.as_tensor().zeros_like().unwrap())];
            }
            let g = |v: [f32; 2]| [Some(Tensor::new(&v, &dev).unwrap())];
            opt.step(&g([0.5, 0.1]), f64::INFINITY).unwrap();
            // s = (0.025, 0.001); p = (1 − 0.1·0.5/(0.1581139 + 1e-7), −2 − 0.1·0.1/(0.0316228
            //   + 1e-7)) = (0.6837724, −2.3162268)
            let got: Vec<f32> = p.as_tensor().to_vec1().unwrap();
            assert!(
                (got[0] - 0.683_772_4).abs() < 1e-6 && (got[1] + 2.316_226_8).abs() < 1e-6,
                "{got:?}"
            );
            opt.step(&g([-0.2, 0.0]), f64::INFINITY).unwrap();
            // s = (0.0225 + 0.004, 0.0009) = (0.0265, 0.0009); p₀ += 0.1·0.2/0.1627883 =
            // 0.1228590; p₁ unchanged (zero gradient)
            let got: Vec<f32> = p.as_tensor().to_vec1().unwrap();
            assert!(
                (got[0] - 0.806_631_4).abs() < 1e-6 && (got[1] + 2.316_226_8).abs() < 1e-6,
                "{got:?}"
            );
            // clipped: g = (3, 4) has norm 5 → (0.6, 0.8)/(1 + 2e-7); s = 0.1·g² → each
            // weight moves by lr·g/(√(0.1g²) + ε) ≈ lr/√0.1 = 0.3162277
            let q = Var::from_vec(vec![0f32, 0.0], 2, &dev).unwrap();
            let mut opt = RmsProp::new(vec![q.clone()], 0.1, 0.9, 1e-7).unwrap();
            if !cpu {
                opt.sq = vec![Square::Device(q.as_tensor().zeros_like().unwrap())];
            }
            opt.step(&g([3.0, 4.0]), 1.0).unwrap();
            let got: Vec<f32> = q.as_tensor().to_vec1().unwrap();
            let want = |g: f64| -0.1 * g / ((0.1 * g * g).sqrt() + 1e-7);
            let (g0, g1) = (0.6 / (1.0 + 2e-7), 0.8 / (1.0 + 2e-7));
            assert!(
                (f64::from(got[0]) - want(g0)).abs() < 1e-6
                    && (f64::from(got[1]) - want(g1)).abs() < 1e-6,
                "{got:?}"
            );
            // the ε sits outside the root: g = 0 with s = 0 moves nothing (no 0/0)
            opt.step(&g([0.0, 0.0]), 1.0).unwrap();
            assert_eq!(q.as_tensor().to_vec1::<f32>().unwrap(), got);
        }
    }

    /// Per-tensor clipping on the tensor path: norm 5 is scaled to 1, norm 0.5 left alone.
    #[test]
    fn per_tensor_clip() {
        let dev = Device::Cpu;
        let g = Tensor::new(&[3f32, 4.0], &dev).unwrap();
        let c: Vec<f32> = clip_tensor(&g, 1.0).unwrap().to_vec1().unwrap();
        assert!(
            (c[0] - 0.6).abs() < 1e-6 && (c[1] - 0.8).abs() < 1e-6,
            "{c:?}"
        );
        let g = Tensor::new(&[0.3f32, 0.4], &dev).unwrap();
        let c: Vec<f32> = clip_tensor(&g, 1.0).unwrap().to_vec1().unwrap();
        assert_eq!(c, vec![0.3, 0.4]);
    }

    #[test]
    fn reference_scores_are_standard_normal() {
        let mut rng = SplitMix64::new(7);
        let (m, s) = reference_stats(&mut rng, 5000);
        assert!(m.abs() < 0.05 && (s - 1.0).abs() < 0.05, "{m} {s}");
        // an odd count uses one value of the last pair
        let (m, s) = reference_stats(&mut rng, 3);
        assert!(m.is_finite() && s.is_finite());
    }

    #[test]
    fn invalid_params_are_rejected_by_name() {
        let bad = [
            (
                DevNetParams {
                    hidden: 0,
                    ..Default::default()
                },
                "hidden",
            ),
            (
                DevNetParams {
                    epochs: 0,
                    ..Default::default()
                },
                "epochs",
            ),
            (
                DevNetParams {
                    batches_per_epoch: 0,
                    ..Default::default()
                },
                "batches_per_epoch",
            ),
            (
                DevNetParams {
                    batch_size: 511,
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                DevNetParams {
                    n_reference: 1,
                    ..Default::default()
                },
                "n_reference",
            ),
            (
                DevNetParams {
                    margin: 0.0,
                    ..Default::default()
                },
                "margin",
            ),
            (
                DevNetParams {
                    l2: -1.0,
                    ..Default::default()
                },
                "l2",
            ),
            (
                DevNetParams {
                    lr: 2.0,
                    ..Default::default()
                },
                "lr",
            ),
            (
                DevNetParams {
                    rho: 1.0,
                    ..Default::default()
                },
                "rho",
            ),
            (
                DevNetParams {
                    eps: 0.0,
                    ..Default::default()
                },
                "eps",
            ),
            (
                DevNetParams {
                    clip_norm: f64::INFINITY,
                    ..Default::default()
                },
                "clip_norm",
            ),
        ];
        let stop = AtomicBool::new(false);
        for (p, name) in bad {
            assert_eq!(p.validate().unwrap_err().0, name);
            let e = DevNetModel::fit(
                &p,
                &[0.0; 4],
                &[1.0; 4],
                2,
                0,
                &Device::Cpu,
                &stop,
                &mut quiet(),
            )
            .err()
            .unwrap()
            .to_string();
            assert!(e.contains(name), "{e}");
        }
        assert!(DevNetParams::default().validate().is_ok());
        let p: DevNetParams = ron::from_str("(margin: 3.0)").unwrap();
        assert_eq!((p.margin, p.hidden), (3.0, 20));
    }

    #[test]
    fn empty_data_nan_and_stop_are_errors_not_panics() {
        let p = DevNetParams {
            epochs: 1,
            batches_per_epoch: 2,
            ..Default::default()
        };
        let stop = AtomicBool::new(false);
        let fit = |n: &[f32], a: &[f32], stop: &AtomicBool| {
            DevNetModel::fit(&p, n, a, 2, 0, &Device::Cpu, stop, &mut quiet())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(fit(&[], &[1.0; 4], &stop).contains("no normal rows"));
        assert!(fit(&[1.0; 4], &[], &stop).contains("no labelled anomaly rows"));
        assert_eq!(fit(&[1.0; 4], &[1.0; 4], &AtomicBool::new(true)), "stopped");
        let e = fit(&[f32::NAN; 4], &[1.0; 4], &stop);
        assert!(e.contains("non-finite"), "{e}");
        let e = fit(&[3e38, -3e38, -3e38, 3e38], &[3e38; 4], &stop);
        assert!(e.contains("devnet") && e.contains("in epoch 1"), "{e}");
    }
}
