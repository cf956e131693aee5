//! The ODIN baseline (spec §1.20, as in the reference `refbench/deep.py`): the meta-learner's
//! encoder + head trained supervised with a 2-class softmax cross-entropy on normals and the
//! few-shot anomalies, then scored the official ODIN way with a **fixed** temperature T and
//! perturbation ε: `ŷ = argmax ℓ(x)`, `x̃ = x − ε·sgn(∇ₓ CE(ℓ(x)/T, ŷ))` (sgn(0) = +1),
//! score `1 − softmax(ℓ(x̃)/T)[normal]`.

use super::{Ctx, DetectError, Detector, Event, Threshold, TrainView};
use super::MetaLearnerParams;
use serde::{Deserialize, Serialize};
use crate::nn::{
    clip_grad_norm, cosine_lr, sign_pm1, Adam, AdamConfig, Encoder, Head, Mode, Params,
};
use crate::rng::SplitMix64;
use candle_core::{DType, Device, Tensor, Var};

type R<T> = Result<T, DetectError>;

/// ODIN baseline settings: same encoder + head trained supervised, scored with fixed T and ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OdinParams {
    pub temperature: f64,
    pub epsilon: f64,
    pub epochs: usize,
    pub lr: f64,
}

impl Default for OdinParams {
    fn default() -> Self {
        // OpenOOD's odin.yml default; 5 epochs and AdamW 1e-3 as the reference.
        OdinParams {
            temperature: 1000.0,
            epsilon: 0.0014,
            epochs: 5,
            lr: 1e-3,
        }
    }
}


impl super::MethodSpec for OdinParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "ODIN (fixed T and ε)",
            paper: "Liang et al., Enhancing the reliability of out-of-distribution image detection (ICLR 2018); spec §1.20, reference refbench/deep.py",
            labels: super::Labels::FewShot,
            summary: "The meta-learner's encoder + head trained with a 2-class cross-entropy on normals and few-shot anomalies, scored with temperature scaling and an input perturbation: 1 − softmax(ℓ(x̃)/T)[normal].",
        }
    }

    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::float("temperature", 0.0, 1e9, "T of the softmax at scoring, > 0 (OpenOOD: 1000)"),
            P::float("epsilon", 0.0, 1e3, "input perturbation size ε (OpenOOD: 0.0014)"),
            P::int("epochs", 0, 100_000, "supervised training epochs over the normal rows (reference: 5)"),
            P::float("lr", 0.0, 10.0, "AdamW learning rate, cosine to 0 (reference: 1e-3)"),
        ];
        PARAMS
    }

    fn validate(&self) -> Result<(), super::ParamError> {
        if self.temperature <= 0.0 {
            return Err(super::ParamError::new(
                "temperature",
                format!("{} — must be > 0", self.temperature),
            ));
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("odin_T{}_eps{}", self.temperature, self.epsilon)
    }

    fn cost(&self, s: &super::cost::UnitSizes, main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let arch = match main {
            super::Method::MetaLearner(a) => a.clone(),
            _ => MetaLearnerParams::default(),
        };
        let (net, _, norms) = arch.layers(s.d);
        // no decoder: its layer norms are not built either
        let norms = norms - 4.0 * arch.dec_hidden as f64 * arch.dec_depth as f64;
        let params = dense_params(&net, true) + norms;
        let rows = BATCH as f64 + (BATCH as f64).min(s.normals);
        let steps = self.epochs as f64 * (s.normals / BATCH as f64).ceil();
        // scoring: forward, the input gradient (a backward, ~2 forwards), forward again
        let score = |n: f64| 4.0 * dense_forward_flops(&net, n);
        Cost {
            params,
            state_bytes: adam_state_bytes(params),
            // scoring on the CPU runs in blocks of 768 rows per thread (the graph path on a GPU
            // keeps 4,096-row chunks there)
            step_bytes: dense_activation_bytes(&net, rows, 6.0),
            phases: vec![
                Phase {
                    name: "training steps",
                    steps,
                    flops: dense_train_flops(&net, rows),
                    speed: TRAIN_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    flops: score(s.checkpoint + s.scored()),
                    speed: SCORE_SPEED,
                },
            ],
            records: self.epochs as f64 + checkpoint_records(s) + final_records(s),
        }
    }

    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn Detector>, DetectError> {
        // The reference trains ODIN on the meta-learner's encoder and head, same sizes.
        let arch = match ctx.main {
            super::Method::MetaLearner(a) => a.clone(),
            _ => MetaLearnerParams::default(),
        };
        Ok(Box::new(Odin::new(
            self.clone(),
            &arch,
            ctx.d,
            ctx.seed,
            ctx.device,
        )?))
    }
}

/// The ODIN baseline.
/// Normal rows per training step (and as many few-shot anomalies), as the reference.
const BATCH: usize = 128;
/// Speed constants (see [`super::cost::Speed`]), fitted by `heldout bench estimate`.
/// Training runs on candle's graph; scoring on the meta-learner's graph-free ODIN pass.
const TRAIN_SPEED: super::cost::Speed = super::cost::Speed::new(0.3, 500.0);
use super::meta::SCORE_SPEED;

pub struct Odin {
    pub p: OdinParams,
    d: usize,
    embed_dim: usize,
    params: Params,
    enc: Encoder,
    head: Head,
    device: Device,
    tau: Threshold,
    rng: std::cell::RefCell<SplitMix64>,
}

impl Odin {
    /// The same encoder and head sizes as the meta-learner `arch`.
    pub fn new(
        p: OdinParams,
        arch: &MetaLearnerParams,
        d: usize,
        seed: u64,
        device: &Device,
    ) -> R<Self> {
        let mut rng = SplitMix64::new(seed.wrapping_add(40));
        let mut params = Params::default();
        let enc = Encoder::new(
            &mut params,
            d,
            arch.enc_hidden,
            arch.enc_depth,
            arch.embed_dim,
            arch.dropout,
            arch.drop_path,
            arch.feature_dropout,
            &mut rng,
            device,
        )?;
        let head = Head::new(&mut params, arch.embed_dim, &mut rng, device)?;
        Ok(Odin {
            p,
            d,
            embed_dim: arch.embed_dim,
            params,
            enc,
            head,
            device: device.clone(),
            tau: Threshold::fallback(crate::detect::EMPTY_VAL),
            rng: std::cell::RefCell::new(rng),
        })
    }

    fn logits(&self, x: &Tensor, mode: Mode) -> R<Tensor> {
        let mut rng = self.rng.borrow_mut();
        let z = self.enc.forward(x, mode, mode, &mut rng)?;
        Ok(self.head.forward(&z)?)
    }

    /// `(ℓ₀ − ℓ₁)/T` after the ODIN perturbation, per row: on the CPU through the meta-learner's
    /// graph-free frozen-weight path (a snapshot whose "ℓ₀" is the gap ℓ₀ − ℓ₁, on all cores in
    /// fixed row blocks), elsewhere through candle's graph. The two agree but at exact zeros of
    /// a gradient component (the graph steps −ε there when the predicted class is 0, the frozen
    /// path +ε) and in float rounding; `tests::frozen_scores_match_the_graph` checks them.
    pub fn calibrated_gap(&self, x: &[f32]) -> R<Vec<f64>> {
        if !self.device.is_cpu() {
            return self.calibrated_gap_graph(x);
        }
        let t = self.p.temperature;
        let net = crate::nn::FrozenNet::with_logit_gap(&self.enc, &self.head)?;
        let mut ws = net.workspaces(crate::nn::frozen_threads());
        let mut gap = vec![0f32; x.len() / self.d.max(1)];
        net.odin_logit0(
            &x[..gap.len() * self.d],
            1,
            self.p.epsilon as f32,
            1.0,
            0.0,
            &mut gap,
            &mut ws,
        );
        Ok(gap.into_iter().map(|v| v as f64 / t).collect())
    }

    /// The encoder's embedding of each row of `x` (row-major, `d` columns), in eval mode (no
    /// dropout, no randomness drawn), row-major with [`Odin::embed_dim`] columns.
    pub fn embed(&self, x: &[f32]) -> R<Vec<f32>> {
        let mut out = Vec::with_capacity(x.len() / self.d.max(1) * self.embed_dim());
        let mut rng = self.rng.borrow_mut();
        for chunk in x.chunks(4096 * self.d.max(1)) {
            let xt = Tensor::from_slice(chunk, (chunk.len() / self.d, self.d), &self.device)?;
            let z = self.enc.forward_t(
                &xt,
                Mode::Eval,
                Mode::Eval,
                crate::nn::Track::Nothing,
                &mut rng,
            )?;
            out.extend(z.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Feature columns of the rows it scores.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Columns of [`Odin::embed`].
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// [`Odin::calibrated_gap`] on candle's graph.
    fn calibrated_gap_graph(&self, x: &[f32]) -> R<Vec<f64>> {
        let t = self.p.temperature;
        let mut out = Vec::with_capacity(x.len() / self.d);
        for chunk in x.chunks(4096 * self.d) {
            let xt = Tensor::from_slice(chunk, (chunk.len() / self.d, self.d), &self.device)?;
            let xv = Var::from_tensor(&xt)?;
            let l = self.logits(xv.as_tensor(), Mode::Eval)?;
            // one-hot of the predicted class
            let pred = l.argmax_keepdim(1)?.to_dtype(DType::F32)?; // 1.0 where class 1 wins
            let onehot = Tensor::cat(&[pred.affine(-1.0, 1.0)?, pred], 1)?;
            let logp = candle_nn::ops::log_softmax(&(l / t)?, 1)?;
            let ce = (logp * onehot)?.sum_all()?.neg()?;
            let g = ce.backward()?;
            let gx = g
                .get(xv.as_tensor())
                .ok_or_else(|| DetectError::Other("no input gradient".into()))?;
            let sgn = sign_pm1(gx)?;
            let xs = (xt - (sgn * self.p.epsilon)?)?;
            let l = self.logits(&xs, Mode::Eval)?;
            let gap = (l.narrow(1, 0, 1)? - l.narrow(1, 1, 1)?)?.squeeze(1)?;
            out.extend(gap.to_vec1::<f32>()?.into_iter().map(|v| v as f64 / t));
        }
        Ok(out)
    }
}

impl Detector for Odin {
    fn name(&self) -> String {
        format!("odin_T{}_eps{}", self.p.temperature, self.p.epsilon)
    }

    fn threshold(&self) -> Threshold {
        self.tau.clone()
    }

    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        Ok(self.params.save(path)?)
    }

    fn score(&self, x: &[f32]) -> Result<Vec<f64>, DetectError> {
        // 1 − softmax(ℓ/T)[normal] = σ(−(ℓ₀ − ℓ₁)/T), in f64
        Ok(self
            .calibrated_gap(x)?
            .into_iter()
            .map(|u| 1.0 / (1.0 + u.exp()))
            .collect())
    }

    fn fit(&mut self, data: &mut TrainView, ctx: &mut Ctx) -> Result<(), DetectError> {
        let anomalies: Vec<f32> = data
            .few_shot
            .iter()
            .flat_map(|(_, x)| x.iter().copied())
            .collect();
        let mut rng = ctx.rng.clone();
        self.train(&data.normals, &anomalies, &mut rng, &mut *ctx.emit, ctx.stop)?;
        if !data.val.is_empty() {
            let scores = self.score(&data.val.x)?;
            self.tau = crate::detect::val_threshold(&data.val, &scores, ctx);
        }
        ctx.rng = rng;
        Ok(())
    }
}

impl Odin {
    /// Supervised training on `normals` and labelled `anomalies` (row-major, scaled): `epochs`
    /// passes over the normals, each step a batch of normals plus as many anomalies drawn with
    /// replacement from `rng`; reports `Step` and `Epoch` events through `emit` and checks
    /// `stop` every step.
    pub fn train(
        &mut self,
        normals: &[f32],
        anomalies: &[f32],
        rng: &mut SplitMix64,
        emit: &mut dyn FnMut(Event),
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<(), DetectError> {
        let d = self.d;
        let n = normals.len() / d;
        let n_a = anomalies.len() / d;
        if n == 0 || n_a == 0 {
            return Err(DetectError::Other(
                "ODIN needs normal rows and few-shot anomalies".into(),
            ));
        }
        let batch = BATCH;
        let steps_per_epoch = n.div_ceil(batch);
        let total = self.p.epochs * steps_per_epoch;
        let mut opt = Adam::new(self.params.all(), AdamConfig::new(self.p.lr, 1e-4, true))?;
        let mut step = 0;
        for epoch in 0..self.p.epochs {
            let mut loss_sum = 0.0;
            let mut perm: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut perm);
            for rows in perm.chunks(batch) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(DetectError::Stopped);
                }
                let mut xb = Vec::with_capacity((rows.len() + batch) * d);
                for &r in rows {
                    xb.extend_from_slice(&normals[r * d..(r + 1) * d]);
                }
                for _ in 0..batch {
                    let r = rng.below(n_a as u64) as usize;
                    xb.extend_from_slice(&anomalies[r * d..(r + 1) * d]);
                }
                let b = rows.len() + batch;
                let x = Tensor::from_vec(xb, (b, d), &self.device)?;
                let mut y = vec![0u32; rows.len()];
                y.extend(std::iter::repeat_n(1u32, batch));
                let y = Tensor::from_vec(y, b, &self.device)?;
                let l = self.logits(&x, Mode::Train)?;
                let loss = candle_nn::loss::cross_entropy(&l, &y)?;
                let lv = loss.to_scalar::<f32>()? as f64;
                if !lv.is_finite() {
                    return Err(DetectError::NanLoss {
                        episode: 0,
                        stage: "supervised",
                    });
                }
                let g = loss.backward()?;
                let mut grads = std::collections::HashMap::new();
                for v in self.params.all() {
                    if let Some(t) = g.get(v.as_tensor()) {
                        grads.insert(v.as_tensor().id(), t.clone());
                    }
                }
                clip_grad_norm(&mut grads, 1.0)?;
                opt.step(&grads, cosine_lr(self.p.lr, step, total))?;
                step += 1;
                loss_sum += lv;
                emit(Event::Step {
                    phase: "supervised",
                    done: step,
                    total,
                });
            }
            emit(Event::Epoch {
                phase: "supervised",
                epoch: epoch + 1,
                epochs: self.p.epochs,
                terms: vec![("cross_entropy", loss_sum / steps_per_epoch.max(1) as f64)],
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU scoring path (frozen weights, gap head) computes what candle's graph does: the
    /// ODIN step's direction and the perturbed gap, on rows of very different scale, for the
    /// OpenOOD setting and for T = 1.
    #[test]
    fn frozen_scores_match_the_graph() {
        let d = 12;
        let arch = MetaLearnerParams {
            enc_hidden: 48,
            embed_dim: 16,
            ..Default::default()
        };
        let mut g = SplitMix64::new(7);
        let x: Vec<f32> = (0..700 * d)
            .map(|i| g.next_normal() as f32 * if i % 5 == 0 { 30.0 } else { 1.0 })
            .collect();
        for (t, eps) in [(1000.0, 0.0014), (1.0, 0.002)] {
            let p = OdinParams {
                temperature: t,
                epsilon: eps,
                ..Default::default()
            };
            let m = Odin::new(p, &arch, d, 3, &Device::Cpu).unwrap();
            let fast = m.calibrated_gap(&x).unwrap();
            let slow = m.calibrated_gap_graph(&x).unwrap();
            assert_eq!(fast.len(), 700);
            let worst = fast
                .iter()
                .zip(&slow)
                .map(|(a, b)| (a - b).abs() * t / (1.0 + b.abs() * t))
                .fold(0.0f64, f64::max);
            assert!(worst < 1e-4, "T {t}: largest relative gap difference {worst}");
            // and not trivially: the step moved the gaps
            let unperturbed = {
                let q = OdinParams {
                    temperature: t,
                    epsilon: 0.0,
                    ..Default::default()
                };
                Odin::new(q, &arch, d, 3, &Device::Cpu)
                    .unwrap()
                    .calibrated_gap(&x)
                    .unwrap()
            };
            assert!(fast.iter().zip(&unperturbed).any(|(a, b)| a != b));
        }
    }
}
