//! Adam with PyTorch semantics (L2 weight decay added to the gradient, as `torch.optim.Adam`) or
//! AdamW (decoupled decay), gradient-norm clipping and the cosine-to-zero schedule.

use candle_core::{Result, Tensor, Var};
use std::collections::HashMap;

/// Settings of one parameter group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled decay (AdamW) instead of L2 in the gradient (Adam).
    pub decoupled: bool,
}

impl AdamConfig {
    /// PyTorch's defaults with this learning rate and decay.
    pub fn new(lr: f64, weight_decay: f64, decoupled: bool) -> Self {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled,
        }
    }
}

struct Slot {
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// One parameter group; its state persists across calls (and across episodes).
pub struct Adam {
    pub cfg: AdamConfig,
    slots: Vec<Slot>,
    t: u64,
}

impl Adam {
    pub fn new(vars: Vec<Var>, cfg: AdamConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|var| {
                let z = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    m: z.clone(),
                    v: z,
                    var,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Adam { cfg, slots, t: 0 })
    }

    /// The group's variables.
    pub fn vars(&self) -> Vec<Var> {
        self.slots.iter().map(|s| s.var.clone()).collect()
    }

    /// One step with the given gradients (keyed by the variable's tensor id) at learning rate `lr`.
    pub fn step(&mut self, grads: &HashMap<candle_core::TensorId, Tensor>, lr: f64) -> Result<()> {
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.var.as_tensor().id()) else {
                continue;
            };
            // Everything here is detached: optimiser state must not keep the autograd history
            // of earlier steps alive (that leaked ~1 GB per episode).
            let p = s.var.as_tensor().detach();
            let g = g.detach();
            let g = if !c.decoupled && c.weight_decay > 0.0 {
                (g + (&p * c.weight_decay)?)?
            } else {
                g
            };
            s.m = ((&s.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
            s.v = ((&s.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
            let denom = ((&s.v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&s.m / bc1)? / denom)?;
            let mut next = (&p - (update * lr)?)?;
            if c.decoupled && c.weight_decay > 0.0 {
                next = (next - (&p * (lr * c.weight_decay))?)?;
            }
            s.var.set(&next)?;
        }
        Ok(())
    }
}

/// Scales the gradients so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm(
    grads: &mut HashMap<candle_core::TensorId, Tensor>,
    max_norm: f64,
) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.values() {
        sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sq.sqrt();
    if norm > max_norm && norm.is_finite() {
        let k = max_norm / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = (&*g * k)?;
        }
    }
    Ok(norm)
}

/// Cosine annealing to zero: `lr · ½(1 + cos(π·step/total))`, 0 after `total`.
pub fn cosine_lr(lr: f64, step: usize, total: usize) -> f64 {
    if total == 0 || step >= total {
        return 0.0;
    }
    lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos())
}
