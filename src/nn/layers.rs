//! Layers of the meta-learner (spec §1.4) — layer norm, GELU and frozen-weight products through
//! the fused CPU kernels of [`super::fused`] (candle's own fused layer norm has no backward
//! pass) — initialised like PyTorch's defaults from
//! SplitMix64: Linear weights and biases `U(±1/√fan_in)`, LayerNorm γ = 1, β = 0.

use super::fused::gelu_erf;
use super::Params;
use crate::rng::SplitMix64;
use candle_core::{DType, Device, Result, Tensor, Var};

/// Train or eval behaviour of dropout-like layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Which parameters a forward pass records for backpropagation. Untracked parameters enter the
/// graph detached, so a backward pass computes no gradient for them (frozen layers, or an input
/// gradient for ODIN, cost no weight-gradient work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    All,
    /// Only the encoder's last block (and the head, which has its own flag).
    LastBlock,
    Nothing,
}

#[inline]
fn param(v: &Var, track: bool) -> Tensor {
    if track {
        v.as_tensor().clone()
    } else {
        v.as_tensor().detach()
    }
}

fn uniform(rng: &mut SplitMix64, n: usize, bound: f64) -> Vec<f32> {
    (0..n)
        .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
        .collect()
}

/// `y = x·W + b`, `W` stored as (in, out).
#[derive(Debug, Clone)]
pub struct Linear {
    pub w: Var,
    pub b: Var,
}

impl Linear {
    pub fn new(
        p: &mut Params,
        name: &str,
        d_in: usize,
        d_out: usize,
        rng: &mut SplitMix64,
        dev: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / (d_in as f64).sqrt();
        let w = Var::from_tensor(&Tensor::from_vec(
            uniform(rng, d_in * d_out, bound),
            (d_in, d_out),
            dev,
        )?)?;
        let b = Var::from_tensor(&Tensor::from_vec(uniform(rng, d_out, bound), d_out, dev)?)?;
        p.push(format!("{name}.weight"), w.clone());
        p.push(format!("{name}.bias"), b.clone());
        Ok(Linear { w, b })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, true)
    }

    /// With `track = false` the parameters get no gradient.
    pub fn forward_t(&self, x: &Tensor, track: bool) -> Result<Tensor> {
        let y = if track {
            x.matmul(self.w.as_tensor())?
        } else {
            super::fused::matmul_const_rhs(x, self.w.as_tensor())?
        };
        y.broadcast_add(&param(&self.b, track))
    }
}

/// Layer normalisation over the last dimension, eps 1e-5.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub gamma: Var,
    pub beta: Var,
}

impl LayerNorm {
    pub fn new(p: &mut Params, name: &str, d: usize, dev: &Device) -> Result<Self> {
        let gamma = Var::from_tensor(&Tensor::ones(d, DType::F32, dev)?)?;
        let beta = Var::from_tensor(&Tensor::zeros(d, DType::F32, dev)?)?;
        p.push(format!("{name}.weight"), gamma.clone());
        p.push(format!("{name}.bias"), beta.clone());
        Ok(LayerNorm { gamma, beta })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, true)
    }

    /// With `track = false` the parameters get no gradient.
    pub fn forward_t(&self, x: &Tensor, track: bool) -> Result<Tensor> {
        super::fused::layer_norm(
            x,
            &param(&self.gamma, track),
            &param(&self.beta, track),
            1e-5,
        )
    }
}

/// Pre-norm residual block with a half-scaled residual and whole-batch stochastic depth:
/// `out = x + 0.5·W₂·GELU(LN₂(W₁·GELU(LN₁(x))))`.
#[derive(Debug, Clone)]
pub struct ResBlock {
    pub(crate) ln1: LayerNorm,
    pub(crate) l1: Linear,
    pub(crate) ln2: LayerNorm,
    pub(crate) l2: Linear,
    pub(crate) drop_path: f64,
}

impl ResBlock {
    pub fn new(
        p: &mut Params,
        name: &str,
        d: usize,
        drop_path: f64,
        rng: &mut SplitMix64,
        dev: &Device,
    ) -> Result<Self> {
        Ok(ResBlock {
            ln1: LayerNorm::new(p, &format!("{name}.ln1"), d, dev)?,
            l1: Linear::new(p, &format!("{name}.fc1"), d, d, rng, dev)?,
            ln2: LayerNorm::new(p, &format!("{name}.ln2"), d, dev)?,
            l2: Linear::new(p, &format!("{name}.fc2"), d, d, rng, dev)?,
            drop_path,
        })
    }

    pub fn forward(&self, x: &Tensor, mode: Mode, rng: &mut SplitMix64) -> Result<Tensor> {
        self.forward_t(x, mode, true, rng)
    }

    /// With `track = false` the parameters get no gradient.
    pub fn forward_t(
        &self,
        x: &Tensor,
        mode: Mode,
        track: bool,
        rng: &mut SplitMix64,
    ) -> Result<Tensor> {
        if mode == Mode::Train && self.drop_path > 0.0 && rng.next_f64() < self.drop_path {
            return Ok(x.clone());
        }
        let h = self
            .l1
            .forward_t(&gelu_erf(&self.ln1.forward_t(x, track)?)?, track)?;
        let h = self
            .l2
            .forward_t(&gelu_erf(&self.ln2.forward_t(&h, track)?)?, track)?;
        x + (h * 0.5)?
    }
}

/// A 0/1 mask with keep probability `1 − p`, scaled by `scale`.
fn mask(
    shape: (usize, usize),
    p: f64,
    scale: f32,
    rng: &mut SplitMix64,
    dev: &Device,
) -> Result<Tensor> {
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| if rng.next_f64() < p { 0.0 } else { scale })
        .collect();
    Tensor::from_vec(v, shape, dev)
}

/// Encoder f_θ: feature dropout (no rescale), `Linear(D→H)`, GELU, ResBlocks, Dropout, `Linear(H→Z)`.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub(crate) input: Linear,
    pub blocks: Vec<ResBlock>,
    pub(crate) output: Linear,
    pub(crate) dropout: f64,
    pub(crate) feature_dropout: f64,
}

impl Encoder {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        p: &mut Params,
        d: usize,
        hidden: usize,
        depth: usize,
        embed: usize,
        dropout: f64,
        drop_path: f64,
        feature_dropout: f64,
        rng: &mut SplitMix64,
        dev: &Device,
    ) -> Result<Self> {
        let input = Linear::new(p, "enc.input", d, hidden, rng, dev)?;
        let blocks = (0..depth)
            .map(|i| ResBlock::new(p, &format!("enc.block{i}"), hidden, drop_path, rng, dev))
            .collect::<Result<Vec<_>>>()?;
        let output = Linear::new(p, "enc.output", hidden, embed, rng, dev)?;
        Ok(Encoder {
            input,
            blocks,
            output,
            dropout,
            feature_dropout,
        })
    }

    /// The name prefix of the last block's parameters (the "lightly unfrozen" part).
    pub fn last_block_prefix(&self) -> String {
        format!("enc.block{}.", self.blocks.len().saturating_sub(1))
    }

    /// `mode` applies to feature dropout, dropout and all blocks but the last, which follows
    /// `last_mode` (the outer stage trains only the last block).
    pub fn forward(
        &self,
        x: &Tensor,
        mode: Mode,
        last_mode: Mode,
        rng: &mut SplitMix64,
    ) -> Result<Tensor> {
        self.forward_t(x, mode, last_mode, Track::All, rng)
    }

    /// [`Encoder::forward`] recording gradients only for the parameters `track` names.
    pub fn forward_t(
        &self,
        x: &Tensor,
        mode: Mode,
        last_mode: Mode,
        track: Track,
        rng: &mut SplitMix64,
    ) -> Result<Tensor> {
        let all = track == Track::All;
        let dev = x.device();
        let x = if mode == Mode::Train && self.feature_dropout > 0.0 {
            x.mul(&mask(x.dims2()?, self.feature_dropout, 1.0, rng, dev)?)?
        } else {
            x.clone()
        };
        let mut h = gelu_erf(&self.input.forward_t(&x, all)?)?;
        let n = self.blocks.len();
        for (i, b) in self.blocks.iter().enumerate() {
            let last = i + 1 == n;
            let tr = all || (last && track == Track::LastBlock);
            h = b.forward_t(&h, if last { last_mode } else { mode }, tr, rng)?;
        }
        if mode == Mode::Train && self.dropout > 0.0 {
            let scale = (1.0 / (1.0 - self.dropout)) as f32;
            h = h.mul(&mask(h.dims2()?, self.dropout, scale, rng, dev)?)?;
        }
        self.output.forward_t(&h, all)
    }
}

/// Head h_φ: `Linear(Z→2)(GELU(LN(z)))`; logit 0 is "normal".
#[derive(Debug, Clone)]
pub struct Head {
    pub(crate) ln: LayerNorm,
    pub(crate) out: Linear,
}

impl Head {
    pub fn new(p: &mut Params, embed: usize, rng: &mut SplitMix64, dev: &Device) -> Result<Self> {
        Ok(Head {
            ln: LayerNorm::new(p, "head.ln", embed, dev)?,
            out: Linear::new(p, "head.out", embed, 2, rng, dev)?,
        })
    }

    /// Both logits, (B, 2).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        self.forward_t(z, true)
    }

    /// With `track = false` the parameters get no gradient.
    pub fn forward_t(&self, z: &Tensor, track: bool) -> Result<Tensor> {
        self.out
            .forward_t(&gelu_erf(&self.ln.forward_t(z, track)?)?, track)
    }
}

/// Decoder for the reconstruction term: `Linear(Z→H)`, GELU, ResBlocks (no drop-path), `Linear(H→D)`.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub(crate) input: Linear,
    pub(crate) blocks: Vec<ResBlock>,
    pub(crate) output: Linear,
}

impl Decoder {
    pub fn new(
        p: &mut Params,
        embed: usize,
        hidden: usize,
        depth: usize,
        d: usize,
        rng: &mut SplitMix64,
        dev: &Device,
    ) -> Result<Self> {
        let input = Linear::new(p, "dec.input", embed, hidden, rng, dev)?;
        let blocks = (0..depth)
            .map(|i| ResBlock::new(p, &format!("dec.block{i}"), hidden, 0.0, rng, dev))
            .collect::<Result<Vec<_>>>()?;
        let output = Linear::new(p, "dec.output", hidden, d, rng, dev)?;
        Ok(Decoder {
            input,
            blocks,
            output,
        })
    }

    pub fn forward(&self, z: &Tensor, rng: &mut SplitMix64) -> Result<Tensor> {
        let mut h = gelu_erf(&self.input.forward(z)?)?;
        for b in &self.blocks {
            h = b.forward(&h, Mode::Eval, rng)?;
        }
        self.output.forward(&h)
    }
}

/// Mean binary cross-entropy with logits against a constant target, in the stable form
/// `max(z, 0) − z·y + log(1 + e^{−|z|})`.
pub fn bce_with_logits(z: &Tensor, target: f64) -> Result<Tensor> {
    bce_terms(z, &(z * target)?)
}

/// [`bce_with_logits`] with one target per row (`y` of the same shape as `z`).
pub fn bce_with_logit_targets(z: &Tensor, y: &Tensor) -> Result<Tensor> {
    bce_terms(z, &(z * y)?)
}

fn bce_terms(z: &Tensor, zy: &Tensor) -> Result<Tensor> {
    let stable = (z.relu()? - zy)?;
    let soft = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (stable + soft)?.mean_all()
}

/// Elementwise sign with `sgn(0) = +1` (the ODIN convention of spec §0), as f32.
pub fn sign_pm1(t: &Tensor) -> Result<Tensor> {
    t.ge(0f64)?.to_dtype(DType::F32)?.affine(2.0, -1.0)
}
