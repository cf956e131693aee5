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
    moments: Moments,
}

/// First and second moments: plain vectors for f32 variables on the CPU (one loop per step;
/// through tensor ops a step of the meta-learner's 52 tensors was ~500 allocating ops, 2–3 ms),
/// tensors elsewhere.
enum Moments {
    Cpu(Vec<f32>, Vec<f32>),
    Device(Tensor, Tensor),
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
                let t = var.as_tensor();
                let moments = if t.device().is_cpu() && t.dtype() == candle_core::DType::F32 {
                    Moments::Cpu(vec![0.0; t.elem_count()], vec![0.0; t.elem_count()])
                } else {
                    let z = t.zeros_like()?;
                    Moments::Device(z.clone(), z)
                };
                Ok(Slot { var, moments })
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
            let (m, v) = match &mut s.moments {
                Moments::Cpu(m, v) => {
                    let t = s.var.as_tensor();
                    let mut p = t.flatten_all()?.to_vec1::<f32>()?;
                    let g = g.flatten_all()?.to_vec1::<f32>()?;
                    if g.len() != p.len() {
                        candle_core::bail!("adam: gradient of {} for {} values", g.len(), p.len());
                    }
                    adam_cpu(&c, &mut p, &g, m, v, lr, bc1, bc2);
                    s.var.set(&Tensor::from_vec(p, t.shape(), t.device())?)?;
                    continue;
                }
                Moments::Device(m, v) => (m, v),
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
            *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
            *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
            let denom = ((&*v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&*m / bc1)? / denom)?;
            let mut next = (&p - (update * lr)?)?;
            if c.decoupled && c.weight_decay > 0.0 {
                next = (next - (&p * (lr * c.weight_decay))?)?;
            }
            s.var.set(&next)?;
        }
        Ok(())
    }
}

/// One Adam(W) update of `p` in place, in f32 with the constants rounded to f32 once (as the
/// tensor path's scalar ops do), PyTorch's order of operations.
#[allow(clippy::too_many_arguments)]
fn adam_cpu(
    c: &AdamConfig,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f64,
    bc1: f64,
    bc2: f64,
) {
    let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
    let (omb1, omb2) = ((1.0 - c.beta1) as f32, (1.0 - c.beta2) as f32);
    let (inv_bc1, inv_bc2) = ((1.0 / bc1) as f32, (1.0 / bc2) as f32);
    let (eps, lr32) = (c.eps as f32, lr as f32);
    let l2 = (!c.decoupled && c.weight_decay > 0.0).then_some(c.weight_decay as f32);
    let decay = (c.decoupled && c.weight_decay > 0.0).then_some((lr * c.weight_decay) as f32);
    for (((pv, &gv), mv), vv) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let p0 = *pv;
        let gv = match l2 {
            Some(wd) => gv + p0 * wd,
            None => gv,
        };
        *mv = *mv * b1 + gv * omb1;
        *vv = *vv * b2 + gv * gv * omb2;
        let denom = (*vv * inv_bc2).sqrt() + eps;
        let mut next = p0 - (*mv * inv_bc1) / denom * lr32;
        if let Some(k) = decay {
            next -= p0 * k;
        }
        *pv = next;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use candle_core::Device;

    /// The tensor path (used off the CPU) and the CPU loop take the same steps.
    #[test]
    fn the_cpu_update_matches_the_tensor_update() {
        let dev = Device::Cpu;
        let mut rng = SplitMix64::new(5);
        let mut vals =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_normal() as f32).collect() };
        for decoupled in [false, true] {
            let init = vals(300);
            let a = Var::from_vec(init.clone(), (20, 15), &dev).unwrap();
            let b = Var::from_vec(init.clone(), (20, 15), &dev).unwrap();
            let cfg = AdamConfig::new(3e-3, 1e-2, decoupled);
            let mut cpu = Adam::new(vec![a.clone()], cfg).unwrap();
            let mut dev_path = Adam::new(vec![b.clone()], cfg).unwrap();
            for s in &mut dev_path.slots {
                let z = s.var.as_tensor().zeros_like().unwrap();
                s.moments = Moments::Device(z.clone(), z);
            }
            for step in 0..5 {
                let g = Tensor::from_vec(vals(300), (20, 15), &dev).unwrap();
                let ga = HashMap::from([(a.as_tensor().id(), g.clone())]);
                let gb = HashMap::from([(b.as_tensor().id(), g)]);
                let lr = cosine_lr(3e-3, step, 5);
                cpu.step(&ga, lr).unwrap();
                dev_path.step(&gb, lr).unwrap();
            }
            let values =
                |v: &Var| -> Vec<f32> { v.as_tensor().flatten_all().unwrap().to_vec1().unwrap() };
            let (x, y) = (values(&a), values(&b));
            for (p, q) in x.iter().zip(&y) {
                assert!((p - q).abs() < 1e-6, "{p} vs {q} (decoupled {decoupled})");
            }
            // and the steps did move the weights (so that the comparison means something)
            let moved = x
                .iter()
                .zip(&init)
                .filter(|(p, i)| (*p - *i).abs() > 1e-4)
                .count();
            assert!(moved > 250, "only {moved} of 300 weights moved");
        }
    }
}
