//! Fused CPU kernels for the two element-wise pieces of every block, GELU (erf form) and layer
//! normalisation, each with a hand-written backward pass.
//!
//! Composed from candle's primitive ops, a layer norm is 9 tensor ops forward and about 20
//! backward, and candle's GELU backward another 10, each allocating and sweeping a fresh tensor
//! (and, on two threads, synchronising). Profiling the meta-learner's steps put those sweeps,
//! allocation and thread hand-offs at about half of the CPU time. Here each is one pass forward
//! and one backward. The maths is PyTorch's (`F.gelu` exact, `nn.LayerNorm` with biased
//! variance and ε inside the root); `tests` check values and gradients against the composed ops.
//! Other devices (CUDA) keep the composed ops.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor, D,
};

pub(super) const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π)
pub(super) const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Whether the fused kernels apply: they exist for f32 on the CPU only.
fn fusable(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let v = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => bail!("{what}: f32 only"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{what}: contiguous input only"),
    }
}

/// erf in single precision without a library call (so loops over it vectorise): the rational
/// minimax approximation on [−4, 4] that Eigen and XLA use for float erf (outside that range
/// erf is ±1 in f32). Within 5e-7 of libm's `erff` (tested); exactly ±1 for |x| ≥ 3.9 (where
/// 1 − erf < 4e-8), so that GELU of a large negative input is exactly 0.
#[inline]
pub(super) fn erf(x: f32) -> f32 {
    erf_with::<false>(x)
}

/// [`erf`], its polynomials evaluated with fused multiply-adds when `FMA` (for code compiled
/// with the `fma` target feature, where `mul_add` is one instruction; elsewhere it is a libm
/// call).
#[inline(always)]
pub(super) fn erf_with<const FMA: bool>(x: f32) -> f32 {
    if x.abs() >= 3.9 {
        return x.signum();
    }
    let step = |p: f32, y: f32, c: f32| if FMA { p.mul_add(y, c) } else { p * y + c };
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = step(p, x2, 2.770_681_4e-8);
    p = step(p, x2, -2.101_024e-6);
    p = step(p, x2, -5.692_506_4e-5);
    p = step(p, x2, -7.349_906_3e-4);
    p = step(p, x2, -2.9546e-3);
    p = step(p, x2, -1.609_603_3e-2);
    p *= x;
    let mut q = -1.456_607_2e-5_f32;
    q = step(q, x2, -2.133_740_6e-4);
    q = step(q, x2, -1.682_827e-3);
    q = step(q, x2, -7.373_329e-3);
    q = step(q, x2, -1.426_474e-2);
    p / q
}

#[inline]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

#[inline]
fn gelu_grad(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// GELU, erf form: `x·Φ(x)`.
struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "heldout-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "gelu")?;
        Ok((
            CpuStorage::F32(x.iter().map(|&v| gelu(v)).collect()),
            l.shape().clone(),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            arg.apply_op2_no_bwd(&grad.contiguous()?, &GeluBackward)?,
        ))
    }
}

/// `dy · GELU'(x)` for (x, dy).
struct GeluBackward;

impl CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "heldout-gelu-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "gelu backward")?;
        let g = f32_slice(s2, l2, "gelu backward")?;
        if x.len() != g.len() {
            bail!("gelu backward: {} values, {} gradients", x.len(), g.len());
        }
        Ok((
            CpuStorage::F32(x.iter().zip(g).map(|(&x, &g)| g * gelu_grad(x)).collect()),
            l1.shape().clone(),
        ))
    }
}

/// `x · W` for a constant `W` (a frozen layer, or every layer in an input-gradient pass).
///
/// candle's backward of a matrix product always computes both operands' gradients, even when
/// one of them is a constant that nobody asked about; for the ODIN input gradients (10 per outer
/// step, 2 per scored row) that doubled the backward work. This op gives only `x` a gradient,
/// `dy · Wᵀ`, the same expression candle uses, so values are bit-identical.
struct MatmulConstRhs {
    w: Tensor,
}

impl CustomOp1 for MatmulConstRhs {
    fn name(&self) -> &'static str {
        "heldout-matmul-const-rhs"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = Tensor::from_slice(
            f32_slice(s, l, "matmul")?,
            l.shape(),
            &candle_core::Device::Cpu,
        )?;
        let y = x.matmul(&self.w)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.w.t()?)?))
    }
}

/// `x · w` where `w` receives no gradient: when `x` is part of a gradient computation on the
/// CPU, through [`MatmulConstRhs`] (no wasted weight gradient), otherwise a plain product.
pub fn matmul_const_rhs(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.track_op() && fusable(x) {
        x.contiguous()?.apply_op1(MatmulConstRhs { w: w.detach() })
    } else {
        x.matmul(&w.detach())
    }
}

/// GELU (erf form) of `x`: fused on the CPU, candle's op elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if fusable(x) {
        x.contiguous()?.apply_op1(Gelu)
    } else {
        x.gelu_erf()
    }
}

/// Layer normalisation over the last dimension: (x, γ, β) → `(x − μ)/√(σ² + ε)·γ + β`.
struct LayerNormOp {
    eps: f32,
}

/// The feature count `d` of a (…, d) tensor; an error when it is 0.
fn last_dim(l: &Layout) -> Result<usize> {
    match l.dims().last() {
        Some(&d) if d > 0 => Ok(d),
        _ => bail!("layer norm: empty last dimension"),
    }
}

/// Mean and 1/√(var + ε) of one row (two-pass, f32 like PyTorch's CPU kernel; the sums in f64).
#[inline]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f64;
    let mean = (row.iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
    let var = (row
        .iter()
        .map(|&v| {
            let c = (v - mean) as f64;
            c * c
        })
        .sum::<f64>()
        / n) as f32;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "heldout-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "layer norm")?;
        let gamma = f32_slice(s2, l2, "layer norm")?;
        let beta = f32_slice(s3, l3, "layer norm")?;
        let d = last_dim(l1)?;
        if gamma.len() != d || beta.len() != d {
            bail!(
                "layer norm: {d} features, γ {} and β {}",
                gamma.len(),
                beta.len()
            );
        }
        let mut y = vec![0f32; x.len()];
        for (row, out) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let (mean, rstd) = moments(row, self.eps);
            for i in 0..d {
                out[i] = (row[i] - mean) * rstd * gamma[i] + beta[i];
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = x.dim(D::Minus1)?;
        let (x, gamma, grad) = (x.contiguous()?, gamma.contiguous()?, grad.contiguous()?);
        let (sx, lx) = x.storage_and_layout();
        let (sg, lg) = gamma.storage_and_layout();
        let (sd, ld) = grad.storage_and_layout();
        let (xs, gs, dy) = match (&*sx, &*sg, &*sd) {
            (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(c)) => (
                f32_slice(a, lx, "layer norm backward")?,
                f32_slice(b, lg, "layer norm backward")?,
                f32_slice(c, ld, "layer norm backward")?,
            ),
            _ => bail!("layer norm backward: CPU tensors only"),
        };
        let mut dx = vec![0f32; xs.len()];
        if d == 0 || dy.len() != xs.len() || gs.len() != d {
            bail!("layer norm backward: shapes do not match");
        }
        let mut dgamma = vec![0f32; d];
        let mut dbeta = vec![0f32; d];
        let mut xhat = vec![0f32; d];
        let mut dxhat = vec![0f32; d];
        for ((row, g), out) in xs
            .chunks_exact(d)
            .zip(dy.chunks_exact(d))
            .zip(dx.chunks_exact_mut(d))
        {
            let (mean, rstd) = moments(row, self.eps);
            let (mut s1, mut s2) = (0f64, 0f64);
            for i in 0..d {
                xhat[i] = (row[i] - mean) * rstd;
                dxhat[i] = g[i] * gs[i];
                dgamma[i] += g[i] * xhat[i];
                dbeta[i] += g[i];
                s1 += dxhat[i] as f64;
                s2 += (dxhat[i] * xhat[i]) as f64;
            }
            let (m1, m2) = ((s1 / d as f64) as f32, (s2 / d as f64) as f32);
            for i in 0..d {
                out[i] = rstd * (dxhat[i] - m1 - xhat[i] * m2);
            }
        }
        let dev = x.device();
        let (xshape, gshape) = (x.shape().clone(), gamma.shape().clone());
        drop((sx, sg, sd));
        Ok((
            Some(Tensor::from_vec(dx, xshape, dev)?),
            Some(Tensor::from_vec(dgamma, gshape.clone(), dev)?),
            Some(Tensor::from_vec(dbeta, gshape, dev)?),
        ))
    }
}

/// Layer normalisation of `x` over its last dimension with γ, β (shape (d,)): fused on the
/// CPU, composed from candle ops elsewhere.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    if fusable(x) {
        x.contiguous()?.apply_op3(
            &gamma.contiguous()?,
            &beta.contiguous()?,
            LayerNormOp { eps: eps as f32 },
        )
    } else {
        layer_norm_composed(x, gamma, beta, eps)
    }
}

/// The same from candle's primitive ops (any device; the tests' yardstick).
pub fn layer_norm_composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xn.broadcast_mul(gamma)?.broadcast_add(beta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use candle_core::{Device, Var};

    fn randn(n: usize, scale: f64, rng: &mut SplitMix64) -> Vec<f32> {
        (0..n).map(|_| (rng.next_normal() * scale) as f32).collect()
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn erf_is_within_5e_7_of_libm() {
        let mut worst = 0f32;
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            worst = worst.max((erf(x) - libm::erff(x)).abs());
            worst = worst.max((erf_with::<true>(x) - libm::erff(x)).abs());
        }
        for x in [10.0f32, -10.0, 1e5, -1e5, f32::MAX, f32::MIN] {
            assert_eq!(erf(x), x.signum());
            assert_eq!(erf_with::<true>(x), x.signum());
        }
        assert!(worst < 5e-7, "max |erf − erff| = {worst}");
    }

    #[test]
    fn gelu_matches_candle_values_and_gradients() {
        let mut rng = SplitMix64::new(1);
        // wide range: the meta-learner sees |x| up to 1e5 after robust scaling
        let mut v = randn(600, 3.0, &mut rng);
        v.extend([0.0, -0.0, 1e5, -1e5, 40.0, -40.0]);
        let x = Var::from_vec(v.clone(), v.len(), &Device::Cpu).unwrap();
        let w = Tensor::from_vec(randn(v.len(), 1.0, &mut rng), v.len(), &Device::Cpu).unwrap();
        let ours = gelu_erf(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().gelu_erf().unwrap();
        close(&ours, &theirs, 1e-6);
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        close(
            g1.get(x.as_tensor()).unwrap(),
            g2.get(x.as_tensor()).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn matmul_with_a_constant_matches_candle_bit_for_bit() {
        let mut rng = SplitMix64::new(4);
        let x = Var::from_vec(randn(50 * 20, 1.0, &mut rng), (50, 20), &Device::Cpu).unwrap();
        let w = Tensor::from_vec(randn(20 * 7, 1.0, &mut rng), (20, 7), &Device::Cpu).unwrap();
        let g = Tensor::from_vec(randn(50 * 7, 1.0, &mut rng), (50, 7), &Device::Cpu).unwrap();
        let ours = matmul_const_rhs(x.as_tensor(), &w).unwrap();
        let theirs = x.as_tensor().matmul(&w).unwrap();
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(&ours), v(&theirs));
        let g1 = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(
            v(g1.get(x.as_tensor()).unwrap()),
            v(g2.get(x.as_tensor()).unwrap())
        );
    }

    #[test]
    fn layer_norm_matches_the_composed_ops_values_and_gradients() {
        let mut rng = SplitMix64::new(2);
        let (n, d) = (37, 24);
        let mut v = randn(n * d, 2.0, &mut rng);
        // one row with a huge offset and spread, one constant row
        for (i, x) in v[..d].iter_mut().enumerate() {
            *x = 1e4 + 50.0 * i as f32;
        }
        for x in &mut v[d..2 * d] {
            *x = 3.0;
        }
        let x = Var::from_vec(v, (n, d), &Device::Cpu).unwrap();
        let gamma = Var::from_vec(randn(d, 1.0, &mut rng), d, &Device::Cpu).unwrap();
        let beta = Var::from_vec(randn(d, 1.0, &mut rng), d, &Device::Cpu).unwrap();
        let w = Tensor::from_vec(randn(n * d, 1.0, &mut rng), (n, d), &Device::Cpu).unwrap();
        let ours = layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5).unwrap();
        let theirs =
            layer_norm_composed(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5).unwrap();
        close(&ours, &theirs, 1e-5);
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &gamma, &beta] {
            close(
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
                1e-4,
            );
        }
    }
}
