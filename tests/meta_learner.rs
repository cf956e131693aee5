//! The meta-learner's mathematics and training, checked against independent computations.

mod common;
use candle_core::{Device, Tensor};
use heldout::detect::meta::{MetaLearner, RHO_MAX, RHO_MIN};
use heldout::experiment::MetaLearnerParams;
use heldout::nn::Mode;
use heldout::rng::SplitMix64;

fn small() -> MetaLearnerParams {
    MetaLearnerParams {
        enc_hidden: 32,
        embed_dim: 16,
        dec_hidden: 16,
        ..MetaLearnerParams::default()
    }
}

fn rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut g = SplitMix64::new(seed);
    (0..n * d).map(|_| g.next_normal() as f32).collect()
}

fn l0(m: &MetaLearner, x: &[f32], d: usize) -> Vec<f64> {
    let t = Tensor::from_slice(x, (x.len() / d, d), &Device::Cpu).unwrap();
    m.logit0(&t, Mode::Eval, Mode::Eval)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(|v| v as f64)
        .collect()
}

#[test]
fn input_gradient_matches_finite_differences() {
    let d = 7;
    let m = MetaLearner::new(small(), d, 3, &Device::Cpu).unwrap();
    let x = rows(4, d, 1);
    let t = Tensor::from_slice(&x, (4, d), &Device::Cpu).unwrap();
    let (_, g) = m.input_gradient(&t).unwrap();
    let g = g.to_vec2::<f32>().unwrap();
    let h = 1e-2f32;
    for r in 0..4 {
        for j in 0..d {
            let mut xp = x.clone();
            let mut xm = x.clone();
            xp[r * d + j] += h;
            xm[r * d + j] -= h;
            let fd = (l0(&m, &xp, d)[r] - l0(&m, &xm, d)[r]) / (2.0 * h as f64);
            let an = g[r][j] as f64;
            assert!(
                (fd - an).abs() <= 2e-3 + 2e-2 * an.abs(),
                "row {r} col {j}: autograd {an} vs finite difference {fd}"
            );
        }
    }
}

/// Spec §1.6: ∇ₓ log max(σ(z), 1−σ(z)) with z = ℓ₀/T has the sign of sgn(z)·∇ₓℓ₀ for every
/// T > 0, so the ODIN direction does not depend on T.
#[test]
fn odin_direction_is_the_binary_closed_form_and_independent_of_t() {
    let d = 5;
    let m = MetaLearner::new(small(), d, 11, &Device::Cpu).unwrap();
    let x = rows(6, d, 2);
    let t = Tensor::from_slice(&x, (6, d), &Device::Cpu).unwrap();
    let dir1 = m.odin_direction(&t).unwrap().to_vec2::<f32>().unwrap();
    m.set_log_temperature(1.5).unwrap();
    let dir2 = m.odin_direction(&t).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(dir1, dir2, "T changed the direction");
    // finite-difference gradient of log max(σ(z), 1 − σ(z)) at T = e^1.5
    let temp = 1.5f64.exp();
    let logmax = |v: f64| {
        let s = 1.0 / (1.0 + (-v / temp).exp());
        s.max(1.0 - s).ln()
    };
    let h = 1e-2f32;
    for r in 0..6 {
        for j in 0..d {
            let mut xp = x.clone();
            let mut xm = x.clone();
            xp[r * d + j] += h;
            xm[r * d + j] -= h;
            let fd = logmax(l0(&m, &xp, d)[r]) - logmax(l0(&m, &xm, d)[r]);
            if fd.abs() > 1e-7 {
                assert_eq!(dir1[r][j] as f64, fd.signum(), "row {r} col {j}");
            }
            assert!(dir1[r][j] == 1.0 || dir1[r][j] == -1.0);
        }
    }
}

#[test]
fn temperature_stays_in_its_clamp() {
    let m = MetaLearner::new(small(), 3, 0, &Device::Cpu).unwrap();
    m.set_log_temperature(50.0).unwrap();
    assert!((m.temperature().unwrap().ln() - RHO_MAX).abs() < 1e-6);
    m.set_log_temperature(-50.0).unwrap();
    assert!((m.temperature().unwrap().ln() - RHO_MIN).abs() < 1e-6);
    assert!((m.temperature().unwrap() - 0.3).abs() < 1e-6);
}
