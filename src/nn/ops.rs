//! Fused CPU operations for small dense networks, shared by the deep baselines (Deep SVDD /
//! Deep SAD, DevNet, the supervised MLP) and open to any method built on candle: one pass each
//! for what candle's graph does in several ops. On other devices or dtypes the composed candle
//! ops run instead (`fusable`), behind the same functions, so a method never forks on the
//! device itself.
//!
//! candle's autograd spends most of a small network's step outside the matrix products: every
//! op allocates, every gradient is accumulated into a fresh zero tensor, the backward pass of a
//! bias (a broadcast) sums over rows with a divide-and-modulo per element (about a sixth of all
//! training time before these kernels), and a matrix product's backward also computes the
//! gradient of a constant input (as large a product as the weight's). The kernels below do the
//! same maths in one pass each; on other devices (or dtypes) the composed candle ops run instead,
//! and the tests check both give the same values and gradients.

use super::{bce_with_logit_targets, Linear};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Storage,
    Tensor,
};

/// Whether the fused kernels apply: f32 on the CPU.
pub fn fusable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let v = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("{what}: f32 only"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{what}: contiguous input only"),
    }
}

/// Runs `f` on the values of an f32 CPU tensor (made contiguous first).
pub fn with_f32<T>(
    t: &Tensor,
    what: &str,
    f: impl FnOnce(&[f32]) -> candle_core::Result<T>,
) -> candle_core::Result<T> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(cs) => f(cpu_f32(cs, l, what)?),
        _ => candle_core::bail!("{what}: CPU tensors only"),
    }
}

/// `x·W` for a constant `x` (the input batch), applied to `W`: the backward pass computes only
/// `W`'s gradient `xᵀ·g`.
struct MatmulConstLhs {
    x: Tensor,
}

impl CustomOp1 for MatmulConstLhs {
    fn name(&self) -> &'static str {
        "heldout-matmul-const-lhs"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let w = Tensor::from_slice(cpu_f32(s, l, "matmul")?, l.shape(), &Device::Cpu)?;
        let y = self.x.matmul(&w)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(
        &self,
        _w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.x.t()?.matmul(grad)?))
    }
}

/// `h + b` (b added to every row), then ReLU when `relu`. Backward: `dh = g·1{y > 0}` (or
/// `g`), `db` = the column sums of `dh`.
struct BiasAct {
    relu: bool,
}

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "heldout-bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let h = cpu_f32(s1, l1, "bias")?;
        let b = cpu_f32(s2, l2, "bias")?;
        let n = b.len();
        if n == 0 || h.len() % n != 0 {
            candle_core::bail!("bias: {} values for {n} columns", h.len());
        }
        let mut y = vec![0f32; h.len()];
        for (out, row) in y.chunks_exact_mut(n).zip(h.chunks_exact(n)) {
            for ((o, &v), &bj) in out.iter_mut().zip(row).zip(b) {
                let z = v + bj;
                *o = if self.relu { z.max(0.0) } else { z };
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        h: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let n = b.elem_count();
        let dh = with_f32(grad, "bias backward", |g| {
            if !self.relu {
                return Ok(g.to_vec());
            }
            with_f32(res, "bias backward", |y| {
                Ok(g.iter()
                    .zip(y)
                    .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
                    .collect::<Vec<f32>>())
            })
        })?;
        let mut db = vec![0f32; n];
        for row in dh.chunks_exact(n.max(1)) {
            for (d, &g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
        Ok((
            Some(Tensor::from_vec(dh, h.shape(), h.device())?),
            Some(Tensor::from_vec(db, b.shape(), b.device())?),
        ))
    }
}

/// A single-output layer `z = h·w + b` (w of shape (k, 1)): row dot products. Backward
/// `dh = g·wᵀ`, `dw = hᵀ·g`, `db = Σ g`. As matrix products these are degenerate shapes
/// (k = 1 or n = 1) on which gemm spends 10–90 µs each.
struct Head1;

impl CustomOp3 for Head1 {
    fn name(&self) -> &'static str {
        "heldout-head1"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let h = cpu_f32(s1, l1, "head")?;
        let w = cpu_f32(s2, l2, "head")?;
        let b = cpu_f32(s3, l3, "head")?;
        let k = w.len();
        if k == 0 || h.len() % k != 0 || b.len() != 1 {
            candle_core::bail!("head: {} values, {k} weights, {} biases", h.len(), b.len());
        }
        let z: Vec<f32> = h
            .chunks_exact(k)
            .map(|row| row.iter().zip(w).map(|(&x, &w)| x * w).sum::<f32>() + b[0])
            .collect();
        let rows = z.len();
        Ok((CpuStorage::F32(z), Shape::from((rows, 1))))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let k = w.elem_count();
        let (dh, dw, db) = with_f32(h, "head backward", |hv| {
            with_f32(w, "head backward", |wv| {
                with_f32(grad, "head backward", |g| {
                    if k == 0 || hv.len() != g.len() * k {
                        candle_core::bail!("head backward: shapes do not match");
                    }
                    let mut dh = vec![0f32; hv.len()];
                    let mut dw = vec![0f32; k];
                    let mut db = 0f32;
                    for ((row, drow), &gi) in hv.chunks_exact(k).zip(dh.chunks_exact_mut(k)).zip(g)
                    {
                        for j in 0..k {
                            drow[j] = gi * wv[j];
                            dw[j] += row[j] * gi;
                        }
                        db += gi;
                    }
                    Ok((dh, dw, db))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dh, h.shape(), h.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
            Some(Tensor::from_vec(vec![db], b.shape(), b.device())?),
        ))
    }
}

/// Mean binary cross-entropy with logits `z` against `y`, in the stable form
/// `max(z, 0) − z·y + log(1 + e^{−|z|})` (sum in f64); backward `(σ(z) − y)/N`.
struct BceMean {
    y: Vec<f32>,
}

impl CustomOp1 for BceMean {
    fn name(&self) -> &'static str {
        "heldout-bce-mean"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let z = cpu_f32(s, l, "bce")?;
        if z.len() != self.y.len() || z.is_empty() {
            candle_core::bail!("bce: {} logits, {} targets", z.len(), self.y.len());
        }
        let sum: f64 = z
            .iter()
            .zip(&self.y)
            .map(|(&z, &y)| {
                let (z, y) = (f64::from(z), f64::from(y));
                z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
            })
            .sum();
        Ok((
            CpuStorage::F32(vec![(sum / z.len() as f64) as f32]),
            Shape::from(()),
        ))
    }

    fn bwd(&self, z: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = grad.to_scalar::<f32>()? / self.y.len() as f32;
        let dz = with_f32(z, "bce backward", |z| {
            Ok(z.iter()
                .zip(&self.y)
                .map(|(&z, &y)| (1.0 / (1.0 + (-z).exp()) - y) * g)
                .collect::<Vec<f32>>())
        })?;
        Ok(Some(Tensor::from_vec(dz, z.shape(), z.device())?))
    }
}

/// `act(x·W + b)` (ReLU or identity) of a [`Linear`] for a pass that is backpropagated; with
/// `const_input` (the data batch) no gradient is computed for `x`. Fused on the CPU.
pub fn linear_act(x: &Tensor, l: &Linear, relu: bool, const_input: bool) -> Result<Tensor> {
    let (w, b) = (l.w.as_tensor(), l.b.as_tensor());
    if !(fusable(x) && fusable(w)) {
        return linear_act_composed(x, l, relu);
    }
    if !relu && !const_input && w.dim(1)? == 1 {
        return x
            .contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, Head1);
    }
    let h = if const_input {
        const_lhs_matmul(x, w)?
    } else {
        x.matmul(w)?
    };
    h.contiguous()?
        .apply_op2(&b.contiguous()?, BiasAct { relu })
}

/// `x·W` for a constant `x` on the CPU: only `W` gets a gradient.
pub fn const_lhs_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    w.apply_op1(MatmulConstLhs {
        x: x.detach().contiguous()?,
    })
}

/// [`linear_act`] from candle's own ops (any device).
pub fn linear_act_composed(x: &Tensor, l: &Linear, relu: bool) -> Result<Tensor> {
    let h = x.matmul(l.w.as_tensor())?.broadcast_add(l.b.as_tensor())?;
    Ok(if relu { h.relu()? } else { h })
}

/// Mean BCE with logits of `z` (rows,) against the 0/1 targets `y` (rows,): fused on the CPU.
pub fn bce_mean(z: &Tensor, y: &Tensor) -> Result<Tensor> {
    if fusable(z) && fusable(y) {
        let yv = y.to_vec1::<f32>()?;
        z.contiguous()?.apply_op1(BceMean { y: yv })
    } else {
        bce_with_logit_targets(z, y)
    }
}
