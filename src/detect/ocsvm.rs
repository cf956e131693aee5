//! One-class SVM (Schölkopf et al., Neural Computation 2001) with an RBF kernel, as
//! scikit-learn's `OneClassSVM(kernel='rbf', gamma='scale', nu=0.1)` (libsvm inside), the
//! reference's `ocsvm` baseline (`refbench/classical.py`), fitted on the first ≤ 10,000 rows.
//!
//! Dual problem (libsvm's one-class form): min ½ αᵀQα subject to 0 ≤ αᵢ ≤ 1, Σαᵢ = ν·l, with
//! Qᵢⱼ = K(xᵢ, xⱼ) = exp(−γ‖xᵢ − xⱼ‖²). Solved as libsvm's `Solver` does: α starts at 1 for
//! the first rows until ν·l is used up (scikit-learn sums ν once per row, so the split is
//! `floor(ν·l)` ones then the remainder, up to rounding); SMO with the second-order working-set
//! selection (WSS3, τ = 1e-12); the shrinking heuristic every min(l, 1000) iterations with the
//! gradient reconstructed before the final check; stop when m(α) − M(α) < tol; the kernel
//! columns are cached as f32 (libsvm's `Qfloat`) in an LRU cache of `cache_mb`. ρ is the mean
//! gradient over the free αᵢ (or the midpoint of the bounds when none is free).
//! γ = 'scale' is 1/(d·Var(X)) over all entries of the training rows (1 when the variance is 0).
//!
//! Score = −decision_function = −(Σᵢ αᵢ K(xᵢ, x) − ρ): higher = more anomalous.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::FitError;

/// The rule for the RBF kernel width γ in K(x, y) = exp(−γ‖x − y‖²).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GammaRule {
    /// 1/(d·Var(X)), the variance over all entries of the training rows (scikit-learn 'scale').
    Scale,
    /// 1/d (scikit-learn 'auto').
    Auto,
    /// The fixed `gamma_value` > 0.
    Value,
}

/// One-class SVM settings (defaults = the reference's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OneClassSvmParams {
    /// ν in (0, 1): upper bound on the fraction of training rows outside the boundary, lower bound on the fraction of support vectors (reference: 0.1).
    pub nu: f64,
    /// RBF kernel width rule: scale = 1/(d·Var(X)), auto = 1/d, value = `gamma_value` (reference: scale).
    pub gamma: GammaRule,
    /// γ when `gamma` is `value` (ignored otherwise).
    pub gamma_value: f64,
    /// Solver stopping tolerance on the largest KKT violation m(α) − M(α) (scikit-learn: 1e-3).
    pub tol: f64,
    /// Training uses the first this many rows (reference: 10,000).
    pub max_train: usize,
    /// Kernel column cache in MiB (scikit-learn: 200); only speed depends on it.
    pub cache_mb: usize,
    /// Solver iteration limit, 0 = none (scikit-learn: -1 = none); a fit that hits it is kept and marked not converged.
    pub max_iter: usize,
    /// libsvm's shrinking heuristic (scikit-learn: true).
    pub shrinking: bool,
}

impl Default for OneClassSvmParams {
    fn default() -> Self {
        OneClassSvmParams {
            nu: 0.1,
            gamma: GammaRule::Scale,
            gamma_value: 0.1,
            tol: 1e-3,
            max_train: 10_000,
            cache_mb: 200,
            max_iter: 0,
            shrinking: true,
        }
    }
}

/// Largest accepted `max_train`: the solver's time grows about quadratically with the rows.
pub const MAX_TRAIN: usize = 200_000;
/// Largest accepted `cache_mb` (64 GiB).
pub const MAX_CACHE_MB: usize = 65_536;
/// Largest accepted `tol` (libsvm's default is 1e-3): far larger tolerances stop the solver
/// with α still close to where it started.
pub const MAX_TOL: f64 = 10.0;

impl OneClassSvmParams {
    /// `Err((parameter, message))` for a value out of range.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.nu > 0.0 && self.nu < 1.0) {
            return Err((
                "nu",
                format!(
                    "must be in (0, 1) (got {}): at ν = 1 every row is a bounded support vector and ρ is undefined",
                    self.nu
                ),
            ));
        }
        let g = self.gamma_value;
        if self.gamma == GammaRule::Value && !(g.is_finite() && g > 0.0) {
            return Err((
                "gamma_value",
                format!("a fixed γ must be finite and > 0 (got {g})"),
            ));
        }
        if !(self.tol > 0.0 && self.tol <= MAX_TOL) {
            return Err((
                "tol",
                format!(
                    "must be in (0, {MAX_TOL}] (got {}): larger stops the solver before it optimises",
                    self.tol
                ),
            ));
        }
        if self.max_train == 0 {
            return Err(("max_train", "must be at least 1 (got 0)".into()));
        }
        if self.max_train > MAX_TRAIN {
            return Err((
                "max_train",
                format!(
                    "must be at most {MAX_TRAIN} (got {}): the solver's time grows about quadratically with the rows",
                    self.max_train
                ),
            ));
        }
        if self.cache_mb == 0 || self.cache_mb > MAX_CACHE_MB {
            return Err((
                "cache_mb",
                format!("must be in 1..={MAX_CACHE_MB} MiB (got {})", self.cache_mb),
            ));
        }
        Ok(())
    }
}

/// f64 fields stored as their shortest round-trip decimal strings: serde_json without its
/// `float_roundtrip` feature may parse a number one ulp off, and a saved model must score
/// exactly as the one that was fitted.
mod exact {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| D::Error::custom(format!("{s:?}: {e}")))
    }

    pub mod vec {
        use serde::{de::Error, ser::SerializeSeq, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(&format!("{x:?}"))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            let v = Vec::<String>::deserialize(d)?;
            v.iter()
                .map(|s| {
                    s.parse()
                        .map_err(|e| D::Error::custom(format!("{s:?}: {e}")))
                })
                .collect()
        }
    }
}

/// A fitted one-class SVM: its support vectors, their coefficients α and the offset ρ. Loading
/// checks the shapes and values, so a damaged file is a deserialisation error, not a panic later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "SvmFile")]
pub struct OneClassSvm {
    /// Number of features.
    d: usize,
    /// The kernel width used.
    #[serde(with = "exact")]
    gamma: f64,
    /// The offset ρ.
    #[serde(with = "exact")]
    rho: f64,
    /// Support vectors (the training rows with α > 0, in row order), row-major.
    sv: Vec<f32>,
    /// Their α (in (0, 1]).
    #[serde(with = "exact::vec")]
    coef: Vec<f64>,
    /// Training rows used, l.
    n_train: usize,
    /// Solver iterations.
    n_iter: usize,
    /// False when the solver stopped at `max_iter` before reaching `tol`.
    converged: bool,
}

/// [`OneClassSvm`] as read from a file, before its checks.
#[derive(Deserialize)]
struct SvmFile {
    d: usize,
    #[serde(with = "exact")]
    gamma: f64,
    #[serde(with = "exact")]
    rho: f64,
    sv: Vec<f32>,
    #[serde(with = "exact::vec")]
    coef: Vec<f64>,
    n_train: usize,
    n_iter: usize,
    converged: bool,
}

impl TryFrom<SvmFile> for OneClassSvm {
    type Error = String;

    fn try_from(f: SvmFile) -> Result<Self, String> {
        let bad = |m: &str| Err(format!("not a valid one-class SVM model: {m}"));
        if f.d == 0 || f.coef.len().checked_mul(f.d) != Some(f.sv.len()) {
            return bad("the support vectors do not match d and the coefficients");
        }
        if !(f.gamma.is_finite() && f.gamma > 0.0 && f.rho.is_finite()) {
            return bad("γ or ρ is not a finite number (γ > 0)");
        }
        if f.coef.iter().any(|a| !a.is_finite()) || f.sv.iter().any(|v| !v.is_finite()) {
            return bad("a coefficient or support vector value is not finite");
        }
        Ok(OneClassSvm {
            d: f.d,
            gamma: f.gamma,
            rho: f.rho,
            sv: f.sv,
            coef: f.coef,
            n_train: f.n_train,
            n_iter: f.n_iter,
            converged: f.converged,
        })
    }
}

/// libsvm's τ for a non-positive curvature.
const TAU: f64 = 1e-12;

/// Number of partial sums in [`dot`] and [`sq_dist`]: enough independent additions to hide
/// their latency (four AVX registers of four f64). The summation order is fixed by this code,
/// not by the vector width, so every machine gets the same numbers.
const LANES: usize = 16;

/// Dot product of two f32 rows in f64 (exact products) with [`LANES`] partial sums: libsvm's
/// BLAS `ddot` order is not reproducible anyway; this one is fixed.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut s = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            s[k] += x[k] as f64 * y[k] as f64;
        }
    }
    let mut t = fold_lanes(&s);
    for (x, y) in ra.iter().zip(rb) {
        t += *x as f64 * *y as f64;
    }
    t
}

/// ‖a − b‖² in f64 with [`LANES`] partial sums (libsvm's `k_function` for RBF at prediction).
#[inline(always)]
fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    let mut s = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            let dk = x[k] as f64 - y[k] as f64;
            s[k] += dk * dk;
        }
    }
    let mut t = fold_lanes(&s);
    for (x, y) in ra.iter().zip(rb) {
        let dk = *x as f64 - *y as f64;
        t += dk * dk;
    }
    t
}

/// The partial sums added as a balanced tree.
#[inline(always)]
fn fold_lanes(s: &[f64; LANES]) -> f64 {
    let mut v = *s;
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            v[k] += v[k + w];
        }
    }
    v[0]
}

/// `out[k − start] = K(xᵢ, x_k)` as f32 for k in `start..start + out.len()` (training kernel:
/// exp(−γ(‖xᵢ‖² + ‖x_k‖² − 2xᵢ·x_k)), as libsvm's `kernel_rbf`).
#[inline(always)]
fn kernel_column_body(
    x: &[f32],
    x_sq: &[f64],
    d: usize,
    gamma: f64,
    i: usize,
    start: usize,
    out: &mut [f32],
) {
    let xi = &x[i * d..(i + 1) * d];
    let sq_i = x_sq[i];
    for (k, o) in (start..).zip(out.iter_mut()) {
        let dik = dot(xi, &x[k * d..(k + 1) * d]);
        *o = exp_f32(-gamma * (sq_i + x_sq[k] - 2.0 * dik));
    }
}

/// Below this, exp(a) < 7.0e-46, under half the smallest f32 subnormal: `exp(a) as f32` is 0.
/// (glibc's exp is slow where its result is subnormal, a < −708.)
const F32_EXP_ZERO: f64 = -104.0;
/// Below this, exp(a) is 0 in f64.
const F64_EXP_ZERO: f64 = -746.0;

/// `a.exp() as f32`, skipping the exp where the result rounds to 0 anyway.
#[inline(always)]
fn exp_f32(a: f64) -> f32 {
    if a < F32_EXP_ZERO {
        0.0
    } else {
        a.exp() as f32
    }
}

/// [`kernel_column_body`], in a copy compiled for AVX2 where the CPU has it. Same numbers:
/// Rust fuses no multiply-adds, the four partial sums are the four lanes of one register.
fn kernel_column(
    x: &[f32],
    x_sq: &[f64],
    d: usize,
    gamma: f64,
    i: usize,
    start: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(x: &[f32], x_sq: &[f64], d: usize, g: f64, i: usize, s: usize, o: &mut [f32]) {
            kernel_column_body(x, x_sq, d, g, i, s, o)
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has the features `avx2` is compiled for (checked above).
            return unsafe { avx2(x, x_sq, d, gamma, i, start, out) };
        }
    }
    kernel_column_body(x, x_sq, d, gamma, i, start, out)
}

/// Σᵢ αᵢ exp(−γ‖svᵢ − x‖²) over the support vectors (libsvm's `predict_values` sum).
#[inline(always)]
fn kernel_sum_body(row: &[f32], sv: &[f32], coef: &[f64], gamma: f64) -> f64 {
    let d = row.len();
    let mut sum = 0.0;
    for (s, &a) in sv.chunks_exact(d).zip(coef) {
        let arg = -gamma * sq_dist(row, s);
        // below F64_EXP_ZERO exp(arg) = 0: adding a·0 would change nothing (a NaN is added)
        if arg >= F64_EXP_ZERO || arg.is_nan() {
            sum += a * arg.exp();
        }
    }
    sum
}

/// [`kernel_sum_body`], in a copy compiled for AVX2 where the CPU has it (same numbers).
fn kernel_sum(row: &[f32], sv: &[f32], coef: &[f64], gamma: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(row: &[f32], sv: &[f32], coef: &[f64], gamma: f64) -> f64 {
            kernel_sum_body(row, sv, coef, gamma)
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has the features `avx2` is compiled for (checked above).
            return unsafe { avx2(row, sv, coef, gamma) };
        }
    }
    kernel_sum_body(row, sv, coef, gamma)
}

/// `X.var()` over all entries (population variance, as numpy).
fn variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = super::pairwise_sum(x) / n;
    let sq: Vec<f64> = x.iter().map(|v| (v - mean) * (v - mean)).collect();
    super::pairwise_sum(&sq) / n
}

/// libsvm's kernel column cache: column i (in solver positions) holds Q[i][0..len) as f32; the
/// least recently used columns are freed when the budget (in f32 entries) runs out.
struct Cache {
    cols: Vec<Vec<f32>>,
    /// Circular LRU list over the cached columns; index `l` is the list head (sentinel).
    prev: Vec<usize>,
    next: Vec<usize>,
    /// Free budget, in entries.
    free: usize,
}

impl Cache {
    fn new(l: usize, budget: usize) -> Self {
        Cache {
            cols: vec![Vec::new(); l],
            prev: vec![l; l + 1],
            next: vec![l; l + 1],
            // at least two full columns: get_q(i) then get_q(j) never frees column i
            free: budget.max(2 * l),
        }
    }

    fn head(&self) -> usize {
        self.cols.len()
    }

    fn unlink(&mut self, h: usize) {
        let (p, n) = (self.prev[h], self.next[h]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn push_back(&mut self, h: usize) {
        let head = self.head();
        let last = self.prev[head];
        self.next[h] = head;
        self.prev[h] = last;
        self.next[last] = h;
        self.prev[head] = h;
    }

    /// Makes column `i` hold at least `len` entries; returns where the new entries start
    /// (≥ `len` when nothing needs filling). Column `i` becomes the most recently used.
    fn request(&mut self, i: usize, len: usize) -> usize {
        let have = self.cols[i].len();
        if have > 0 {
            self.unlink(i);
        }
        let start = if len > have {
            let more = len - have;
            while self.free < more {
                let old = self.next[self.head()];
                if old == self.head() {
                    break; // nothing left to free (cannot happen with the 2l minimum)
                }
                self.unlink(old);
                self.free += self.cols[old].len();
                self.cols[old] = Vec::new();
            }
            self.cols[i].resize(len, 0.0);
            self.free = self.free.saturating_sub(more);
            have
        } else {
            len
        };
        self.push_back(i);
        start
    }

    /// Follows a swap of solver positions i and j (libsvm's `Cache::swap_index`).
    fn swap_index(&mut self, i: usize, j: usize) {
        if i == j {
            return;
        }
        if !self.cols[i].is_empty() {
            self.unlink(i);
        }
        if !self.cols[j].is_empty() {
            self.unlink(j);
        }
        self.cols.swap(i, j);
        if !self.cols[i].is_empty() {
            self.push_back(i);
        }
        if !self.cols[j].is_empty() {
            self.push_back(j);
        }
        let (i, j) = (i.min(j), i.max(j));
        let head = self.head();
        let mut h = self.next[head];
        while h != head {
            let nxt = self.next[h];
            let len = self.cols[h].len();
            if len > i {
                if len > j {
                    self.cols[h].swap(i, j);
                } else {
                    // the column covers i but not j: drop it
                    self.unlink(h);
                    self.free += len;
                    self.cols[h] = Vec::new();
                }
            }
            h = nxt;
        }
    }
}

/// The one-class Q matrix in solver positions (rows are swapped along with the solver's).
struct QMatrix {
    d: usize,
    gamma: f64,
    /// Training rows, row-major, in solver positions (f32 as given; products are taken in f64).
    x: Vec<f32>,
    x_sq: Vec<f64>,
    /// Q[i][i].
    qd: Vec<f64>,
    cache: Cache,
}

impl QMatrix {
    /// Ensures column i holds Q[i][0..len); read it with [`QMatrix::col`].
    fn get_q(&mut self, i: usize, len: usize) {
        let start = self.cache.request(i, len);
        if start < len {
            let col = &mut self.cache.cols[i][start..len];
            kernel_column(&self.x, &self.x_sq, self.d, self.gamma, i, start, col);
        }
    }

    fn col(&self, i: usize) -> &[f32] {
        &self.cache.cols[i]
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.cache.swap_index(i, j);
        let d = self.d;
        for k in 0..d {
            self.x.swap(i * d + k, j * d + k);
        }
        self.x_sq.swap(i, j);
        self.qd.swap(i, j);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Lower,
    Upper,
    Free,
}

/// libsvm's SMO `Solver` for the one-class problem (all yᵢ = +1, p = 0, C = 1).
struct Solver {
    q: QMatrix,
    l: usize,
    active_size: usize,
    alpha: Vec<f64>,
    status: Vec<Status>,
    g: Vec<f64>,
    g_bar: Vec<f64>,
    /// Original row index of each solver position.
    active_set: Vec<usize>,
    eps: f64,
    unshrink: bool,
}

/// How the solver ended.
struct Solution {
    /// α by original row.
    alpha: Vec<f64>,
    rho: f64,
    n_iter: usize,
    converged: bool,
}

impl Solver {
    fn status_of(a: f64) -> Status {
        if a >= 1.0 {
            Status::Upper
        } else if a <= 0.0 {
            Status::Lower
        } else {
            Status::Free
        }
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.q.swap_index(i, j);
        self.g.swap(i, j);
        self.status.swap(i, j);
        self.alpha.swap(i, j);
        self.active_set.swap(i, j);
        self.g_bar.swap(i, j);
    }

    /// Rebuilds G of the inactive positions from G_bar and the free α.
    fn reconstruct_gradient(&mut self) {
        let (l, act) = (self.l, self.active_size);
        if act == l {
            return;
        }
        for j in act..l {
            self.g[j] = self.g_bar[j];
        }
        let nr_free = (0..act).filter(|&j| self.status[j] == Status::Free).count();
        if nr_free * l > 2 * act * (l - act) {
            for i in act..l {
                self.q.get_q(i, act);
                let qi = self.q.col(i);
                let mut gi = self.g[i];
                for ((st, a), &q) in self.status[..act].iter().zip(&self.alpha).zip(qi) {
                    if *st == Status::Free {
                        gi += a * q as f64;
                    }
                }
                self.g[i] = gi;
            }
        } else {
            for i in 0..act {
                if self.status[i] == Status::Free {
                    self.q.get_q(i, l);
                    let qi = self.q.col(i);
                    let ai = self.alpha[i];
                    for (gj, &q) in self.g[act..l].iter_mut().zip(&qi[act..l]) {
                        *gj += ai * q as f64;
                    }
                }
            }
        }
    }

    /// WSS3: `Some((i, j))`, or `None` when m(α) − M(α) < eps. Also returns the violation.
    fn select_working_set(&mut self) -> (Option<(usize, usize)>, f64) {
        let act = self.active_size;
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax_idx = None;
        for t in 0..act {
            if self.status[t] != Status::Upper && -self.g[t] >= gmax {
                gmax = -self.g[t];
                gmax_idx = Some(t);
            }
        }
        let Some(i) = gmax_idx else {
            return (None, f64::NEG_INFINITY);
        };
        self.q.get_q(i, act);
        let qi = self.q.col(i);
        let qd = &self.q.qd;
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmin_idx = None;
        let mut obj_diff_min = f64::INFINITY;
        for j in 0..act {
            if self.status[j] != Status::Lower {
                let gj = self.g[j];
                let grad_diff = gmax + gj;
                if gj >= gmax2 {
                    gmax2 = gj;
                }
                if grad_diff > 0.0 {
                    let quad = qd[i] + qd[j] - 2.0 * qi[j] as f64;
                    let obj_diff = if quad > 0.0 {
                        -(grad_diff * grad_diff) / quad
                    } else {
                        -(grad_diff * grad_diff) / TAU
                    };
                    if obj_diff <= obj_diff_min {
                        gmin_idx = Some(j);
                        obj_diff_min = obj_diff;
                    }
                }
            }
        }
        let gap = gmax + gmax2;
        match gmin_idx {
            Some(j) if gap >= self.eps => (Some((i, j)), gap),
            _ => (None, gap),
        }
    }

    fn be_shrunk(&self, i: usize, gmax1: f64, gmax2: f64) -> bool {
        match self.status[i] {
            Status::Upper => -self.g[i] > gmax1,
            Status::Lower => self.g[i] > gmax2,
            Status::Free => false,
        }
    }

    fn do_shrinking(&mut self) {
        let mut gmax1 = f64::NEG_INFINITY; // max −G over I_up
        let mut gmax2 = f64::NEG_INFINITY; // max G over I_low
        for i in 0..self.active_size {
            if self.status[i] != Status::Upper && -self.g[i] >= gmax1 {
                gmax1 = -self.g[i];
            }
            if self.status[i] != Status::Lower && self.g[i] >= gmax2 {
                gmax2 = self.g[i];
            }
        }
        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
            self.active_size = self.l;
        }
        let mut i = 0;
        while i < self.active_size {
            if self.be_shrunk(i, gmax1, gmax2) {
                self.active_size -= 1;
                while self.active_size > i {
                    if !self.be_shrunk(self.active_size, gmax1, gmax2) {
                        self.swap_index(i, self.active_size);
                        break;
                    }
                    self.active_size -= 1;
                }
            }
            i += 1;
        }
    }

    fn calculate_rho(&self) -> f64 {
        let (mut nr_free, mut sum_free) = (0usize, 0.0);
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..self.active_size {
            let g = self.g[i];
            match self.status[i] {
                Status::Upper => lb = lb.max(g),
                Status::Lower => ub = ub.min(g),
                Status::Free => {
                    nr_free += 1;
                    sum_free += g;
                }
            }
        }
        if nr_free > 0 {
            sum_free / nr_free as f64
        } else {
            (ub + lb) / 2.0
        }
    }

    /// Runs SMO from `alpha` (by row). Progress is reported as the fraction of the way, on a log
    /// scale, from the first violation down to `eps`, in thousandths.
    fn solve(
        mut q: QMatrix,
        alpha: Vec<f64>,
        eps: f64,
        shrinking: bool,
        max_iter: usize,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Solution, FitError> {
        let l = alpha.len();
        let status: Vec<Status> = alpha.iter().map(|&a| Solver::status_of(a)).collect();
        let mut g = vec![0.0; l];
        let mut g_bar = vec![0.0; l];
        // G = Σ αᵢ Qᵢ over the α > 0, in row order as libsvm
        for i in 0..l {
            if status[i] != Status::Lower {
                if stop.load(Ordering::Relaxed) {
                    return Err(FitError::Stopped);
                }
                q.get_q(i, l);
                let qi = q.col(i);
                let ai = alpha[i];
                for (gj, &qij) in g.iter_mut().zip(qi) {
                    *gj += ai * qij as f64;
                }
                if status[i] == Status::Upper {
                    for (gj, &qij) in g_bar.iter_mut().zip(qi) {
                        *gj += qij as f64;
                    }
                }
            }
        }
        let mut s = Solver {
            q,
            l,
            active_size: l,
            alpha,
            status,
            g,
            g_bar,
            active_set: (0..l).collect(),
            eps,
            unshrink: false,
        };
        const PROGRESS_TOTAL: usize = 1000;
        let mut first_gap = None;
        let mut shown = 0;
        let mut iter = 0usize;
        let mut counter = l.min(1000) + 1;
        let mut converged = true;
        loop {
            if iter >= max_iter {
                converged = false;
                break;
            }
            if stop.load(Ordering::Relaxed) {
                return Err(FitError::Stopped);
            }
            counter -= 1;
            if counter == 0 {
                counter = l.min(1000);
                if shrinking {
                    s.do_shrinking();
                }
            }
            let (ij, gap) = s.select_working_set();
            let (i, j) = match ij {
                Some(ij) => ij,
                None => {
                    s.reconstruct_gradient();
                    s.active_size = l;
                    match s.select_working_set().0 {
                        Some(ij) => {
                            counter = 1; // shrink at the next iteration
                            ij
                        }
                        None => break,
                    }
                }
            };
            if iter % 64 == 0 && gap.is_finite() && gap > eps {
                let g0 = *first_gap.get_or_insert(gap);
                if g0 > eps {
                    let f = ((g0 / gap).ln() / (g0 / eps).ln()).clamp(0.0, 1.0);
                    let k = (f * (PROGRESS_TOTAL - 1) as f64) as usize;
                    if k > shown {
                        shown = k;
                        progress(shown, PROGRESS_TOTAL);
                    }
                }
            }
            iter += 1;
            s.step(i, j);
        }
        if s.active_size < l {
            s.reconstruct_gradient();
            s.active_size = l;
        }
        let rho = s.calculate_rho();
        let mut out = vec![0.0; l];
        for (p, &a) in s.active_set.iter().zip(&s.alpha) {
            out[*p] = a;
        }
        progress(PROGRESS_TOTAL, PROGRESS_TOTAL);
        Ok(Solution {
            alpha: out,
            rho,
            n_iter: iter,
            converged,
        })
    }

    /// One SMO update of the pair (i, j), both with y = +1 and C = 1.
    fn step(&mut self, i: usize, j: usize) {
        let act = self.active_size;
        self.q.get_q(i, act);
        self.q.get_q(j, act);
        let (old_ai, old_aj) = (self.alpha[i], self.alpha[j]);
        {
            let qi = self.q.col(i);
            let qd = &self.q.qd;
            let mut quad = qd[i] + qd[j] - 2.0 * qi[j] as f64;
            if quad <= 0.0 {
                quad = TAU;
            }
            let delta = (self.g[i] - self.g[j]) / quad;
            let sum = self.alpha[i] + self.alpha[j];
            let (mut ai, mut aj) = (self.alpha[i] - delta, self.alpha[j] + delta);
            if sum > 1.0 {
                if ai > 1.0 {
                    ai = 1.0;
                    aj = sum - 1.0;
                }
            } else if aj < 0.0 {
                aj = 0.0;
                ai = sum;
            }
            if sum > 1.0 {
                if aj > 1.0 {
                    aj = 1.0;
                    ai = sum - 1.0;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = sum;
            }
            self.alpha[i] = ai;
            self.alpha[j] = aj;
        }
        let dai = self.alpha[i] - old_ai;
        let daj = self.alpha[j] - old_aj;
        {
            let (qi, qj) = (self.q.col(i), self.q.col(j));
            for ((gk, &a), &b) in self.g[..act].iter_mut().zip(&qi[..act]).zip(&qj[..act]) {
                *gk += a as f64 * dai + b as f64 * daj;
            }
        }
        let ui = self.status[i] == Status::Upper;
        let uj = self.status[j] == Status::Upper;
        self.status[i] = Solver::status_of(self.alpha[i]);
        self.status[j] = Solver::status_of(self.alpha[j]);
        let l = self.l;
        for (k, was_upper) in [(i, ui), (j, uj)] {
            if was_upper != (self.status[k] == Status::Upper) {
                self.q.get_q(k, l);
                let qk = self.q.col(k);
                if was_upper {
                    for (gb, &v) in self.g_bar.iter_mut().zip(qk) {
                        *gb -= v as f64;
                    }
                } else {
                    for (gb, &v) in self.g_bar.iter_mut().zip(qk) {
                        *gb += v as f64;
                    }
                }
            }
        }
    }
}

impl OneClassSvm {
    /// Fits on the first `max_train` rows of `x` (row-major, `d` columns; every row must be
    /// finite). `progress(done, total)` follows the solver's KKT violation on a log scale down to
    /// `tol`; a set `stop` flag ends the fit with [`FitError::Stopped`] within one iteration.
    /// `seed` is unused (the solver is deterministic); it is there for a uniform signature.
    /// Runs on the calling thread (splitting each kernel column over threads was measured 2–4×
    /// slower when the cores are busy with other work).
    pub fn fit(
        p: &OneClassSvmParams,
        x: &[f32],
        d: usize,
        _seed: u64,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, FitError> {
        p.validate()
            .map_err(|(k, m)| FitError::Invalid(format!("{k}: {m}")))?;
        let rows = super::check_training(x, d)?;
        let l = rows.min(p.max_train);
        let xt = x[..l * d].to_vec();
        let gamma = match p.gamma {
            GammaRule::Value => p.gamma_value,
            GammaRule::Auto => 1.0 / d as f64,
            GammaRule::Scale => {
                let x64: Vec<f64> = xt.iter().map(|&v| v as f64).collect();
                let var = variance(&x64);
                if var != 0.0 {
                    1.0 / (d as f64 * var)
                } else {
                    1.0
                }
            }
        };
        if !gamma.is_finite() || gamma <= 0.0 {
            return Err(FitError::Invalid(format!(
                "γ = {gamma} is not usable (the training values are too large or too small)"
            )));
        }
        let x_sq: Vec<f64> = xt.chunks_exact(d).map(|r| dot(r, r)).collect();
        let budget = p.cache_mb.saturating_mul(1 << 20) / std::mem::size_of::<f32>();
        // Q[i][i] in f64 as libsvm keeps it (1 up to rounding)
        let qd: Vec<f64> = xt
            .chunks_exact(d)
            .zip(&x_sq)
            .map(|(r, &sq)| (-gamma * (sq + sq - 2.0 * dot(r, r))).exp())
            .collect();
        let q = QMatrix {
            d,
            gamma,
            x: xt,
            x_sq,
            qd,
            cache: Cache::new(l, budget),
        };
        // scikit-learn's solve_one_class: ν·l summed row by row, then α = min(1, what is left)
        let mut nu_l = 0.0;
        for _ in 0..l {
            nu_l += p.nu;
        }
        let mut alpha = vec![0.0; l];
        for a in alpha.iter_mut() {
            if nu_l <= 0.0 {
                break;
            }
            *a = nu_l.min(1.0);
            nu_l -= *a;
        }
        let max_iter = if p.max_iter == 0 {
            usize::MAX
        } else {
            p.max_iter
        };
        let sol = Solver::solve(q, alpha, p.tol, p.shrinking, max_iter, stop, progress)?;
        if !sol.rho.is_finite() {
            return Err(FitError::Invalid(format!(
                "the solution has no finite offset (ρ = {}); try a smaller ν",
                sol.rho
            )));
        }
        let mut sv = Vec::new();
        let mut coef = Vec::new();
        for (r, &a) in sol.alpha.iter().enumerate() {
            if a > 0.0 {
                sv.extend_from_slice(&x[r * d..(r + 1) * d]);
                coef.push(a);
            }
        }
        Ok(OneClassSvm {
            d,
            gamma,
            rho: sol.rho,
            sv,
            coef,
            n_train: l,
            n_iter: sol.n_iter,
            converged: sol.converged,
        })
    }

    /// Number of features the model was fitted on.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// The kernel width γ used.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The offset ρ (scikit-learn's `offset_`).
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// Number of support vectors.
    pub fn n_support(&self) -> usize {
        self.coef.len()
    }

    /// α of the support vectors, in training-row order (scikit-learn's `dual_coef_`).
    pub fn dual_coef(&self) -> &[f64] {
        &self.coef
    }

    /// Training rows used.
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// Solver iterations.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// False when the solver stopped at `max_iter` before reaching `tol`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// scikit-learn's `decision_function`: Σᵢ αᵢ K(svᵢ, x) − ρ per row (positive = inside).
    pub fn decision_function(&self, x: &[f32]) -> Vec<f64> {
        self.decision_threads(x, crate::nn::frozen_threads())
    }

    /// Scores of the rows of `x` (row-major, [`Self::dim`] columns; a trailing partial row is
    /// ignored): −decision_function, higher = more anomalous. A row with a NaN scores NaN.
    /// Uses all available cores; the numbers do not depend on their count.
    pub fn score(&self, x: &[f32]) -> Vec<f64> {
        self.score_threads(x, crate::nn::frozen_threads())
    }

    /// [`Self::score`] on at most `threads` threads (0 or 1: the calling thread).
    pub fn score_threads(&self, x: &[f32], threads: usize) -> Vec<f64> {
        let mut s = self.decision_threads(x, threads);
        for v in &mut s {
            *v = -*v;
        }
        s
    }

    fn decision_threads(&self, x: &[f32], threads: usize) -> Vec<f64> {
        let d = self.d;
        super::par_rows(x.len() / d.max(1), threads, 64, &|r| {
            let row = &x[r * d..(r + 1) * d];
            kernel_sum(row, &self.sv, &self.coef, self.gamma) - self.rho
        })
    }
}



impl super::MethodSpec for OneClassSvmParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "One-class SVM (RBF)",
            paper: "Schölkopf et al., Estimating the support of a high-dimensional distribution (Neural Computation 2001); libsvm's solver as scikit-learn's OneClassSVM (reference refbench/classical.py)",
            labels: super::Labels::NormalsOnly,
            summary: "A kernel boundary around the first max_train normal rows (ν-formulation, RBF kernel); score −(Σ α_i K(x_i, x) − ρ).",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::float("nu", 0.0, 1.0, "ν in (0, 1): bound on the fraction of training rows outside the boundary (reference: 0.1)"),
            P::choice("gamma", &["scale", "auto", "value"], "RBF width rule: scale = 1/(d·Var(X)), auto = 1/d, value = gamma_value (reference: scale)"),
            P::float("gamma_value", 0.0, 1e12, "γ when gamma is value (ignored otherwise)"),
            P::float("tol", 0.0, MAX_TOL, "solver tolerance on the largest KKT violation (scikit-learn: 1e-3)"),
            P::int("max_train", 1, MAX_TRAIN as u64, "training uses the first this many normal rows (reference: 10,000; the solver is quadratic in it)"),
            P::int("cache_mb", 1, MAX_CACHE_MB as u64, "kernel column cache in MiB; only speed depends on it (scikit-learn: 200)"),
            P::int("max_iter", 0, u32::MAX as u64, "solver iteration limit, 0 = none"),
            P::boolean("shrinking", "libsvm's shrinking heuristic (scikit-learn: true)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        OneClassSvmParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "ocsvm".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let l = s.normals.min(self.max_train as f64).max(1.0);
        // libsvm's solver: about l iterations (fewer with shrinking), each needing up to two
        // kernel columns of l entries (3d operations each) when not cached; the cache holds the
        // columns asked for, about a tenth of them on the CIC-IDS2017 sample
        let capacity = (self.cache_mb as f64 * 1048576.0 / (F32 * l)).min(l);
        let miss = 1.0 - capacity / l;
        let cached = capacity.min(0.1 * l);
        let iterations = if self.max_iter == 0 {
            l
        } else {
            l.min(self.max_iter as f64)
        };
        let sv = (self.nu * l * 1.1).min(l).max(1.0);
        Cost {
            params: sv * (s.d + 1.0),
            state_bytes: sv * (s.d + 1.0) * F32,
            // the rows, the kernel cache (as full as the columns asked for), α and gradients
            step_bytes: l * s.d * F32 + cached * l * F32 + 6.0 * 8.0 * l,
            phases: vec![
                Phase {
                    name: "kernel rows",
                    steps: 1.0,
                    flops: 3.0 * s.d * l * (l + 2.0 * iterations * miss),
                    speed: KERNEL_SPEED,
                },
                Phase {
                    name: "solver iterations",
                    steps: iterations,
                    flops: 10.0 * l,
                    speed: KERNEL_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    flops: 3.0 * s.d * sv * (s.checkpoint + s.scored()),
                    speed: KERNEL_SPEED,
                },
            ],
            records: checkpoint_records(s) + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<OneClassSvm>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

/// Speed of RBF kernel evaluations and the solver's scans (see [`super::cost::Speed`]),
/// fitted by `heldout bench estimate`.
const KERNEL_SPEED: super::cost::Speed = super::cost::Speed::new(0.25, 1.0);

impl super::Fit for OneClassSvm {
    type Params = OneClassSvmParams;
    fn fit(
        p: &OneClassSvmParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, super::DetectError> {
        let mut progress = super::step_progress(&mut *ctx.emit, "solver");
        Ok(OneClassSvm::fit(
            p,
            &data.normals,
            data.d,
            seed,
            ctx.stop,
            &mut progress,
        )?)
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, super::DetectError> {
        Ok(OneClassSvm::score(self, x))
    }
    fn save(&self, path: &std::path::Path) -> Result<(), super::DetectError> {
        super::save_json(self, path)
    }
    const MODEL_EXTENSION: &'static str = "json";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn blob(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut g = SplitMix64::new(seed);
        (0..n * d).map(|_| g.next_normal() as f32).collect()
    }

    fn fit_with(p: &OneClassSvmParams, x: &[f32], d: usize) -> OneClassSvm {
        OneClassSvm::fit(p, x, d, 0, &AtomicBool::new(false), &mut |_, _| {}).unwrap()
    }

    /// Full-precision kernel between two f32 rows.
    fn k(a: &[f32], b: &[f32], gamma: f64) -> f64 {
        let s: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum();
        (-gamma * s).exp()
    }

    /// Checks Σα = ν·l, 0 ≤ α ≤ 1 and the KKT conditions of the one-class dual at the solution
    /// (with f64 kernels: the solver's f32 cache and tolerance allow a small slack).
    fn check_kkt(m: &OneClassSvm, x: &[f32], d: usize, nu: f64, tol: f64) {
        let l = m.n_train();
        let sum: f64 = m.dual_coef().iter().sum();
        assert!((sum - nu * l as f64).abs() < 1e-9 * l as f64, "Σα = {sum}");
        assert!(m.dual_coef().iter().all(|&a| a > 0.0 && a <= 1.0));
        // α of every training row (0 for non-SVs)
        let mut alpha = vec![0.0; l];
        let mut c = 0;
        for (r, row) in x.chunks_exact(d).take(l).enumerate() {
            if c < m.n_support() && m.sv[c * d..(c + 1) * d] == *row {
                alpha[r] = m.dual_coef()[c];
                c += 1;
            }
        }
        assert_eq!(c, m.n_support());
        let rows: Vec<&[f32]> = x.chunks_exact(d).take(l).collect();
        let mut up = f64::NEG_INFINITY; // max −G over α < 1
        let mut low = f64::NEG_INFINITY; // max G over α > 0
        for i in 0..l {
            let g: f64 = (0..l)
                .map(|j| alpha[j] * k(rows[i], rows[j], m.gamma()))
                .sum();
            if alpha[i] < 1.0 {
                up = up.max(-g);
            }
            if alpha[i] > 0.0 {
                low = low.max(g);
            }
            // the decision function is G − ρ: ≥ 0 (within tol) off the lower bound side
            if alpha[i] == 0.0 {
                assert!(
                    g - m.rho() > -tol - 1e-4,
                    "row {i}: G − ρ = {}",
                    g - m.rho()
                );
            }
            if alpha[i] == 1.0 {
                assert!(g - m.rho() < tol + 1e-4, "row {i}: G − ρ = {}", g - m.rho());
            }
        }
        assert!(up + low < tol + 1e-4, "m − M = {}", up + low);
    }

    #[test]
    fn solution_satisfies_kkt_and_sum_constraint() {
        let d = 3;
        let x = blob(400, d, 1);
        for shrinking in [true, false] {
            let p = OneClassSvmParams {
                shrinking,
                ..Default::default()
            };
            let m = fit_with(&p, &x, d);
            assert!(m.converged());
            // ν is a lower bound on the fraction of support vectors
            assert!(m.n_support() >= 40, "{}", m.n_support());
            check_kkt(&m, &x, d, 0.1, 1e-3);
        }
        // a tiny cache (2 columns) gives the same solution
        let p = OneClassSvmParams {
            cache_mb: 1,
            max_train: 300,
            nu: 0.37,
            ..Default::default()
        };
        let x = blob(1000, d, 2);
        let small = fit_with(&p, &x, d);
        check_kkt(&small, &x, d, 0.37, 1e-3);
        assert_eq!(small.n_train(), 300);
    }

    #[test]
    fn cache_eviction_does_not_change_the_solution() {
        let d = 2;
        let x = blob(2000, d, 3);
        let big = fit_with(&OneClassSvmParams::default(), &x, d);
        // 1 MiB = 262,144 entries < the 2000² matrix: columns are evicted and recomputed
        let small = fit_with(
            &OneClassSvmParams {
                cache_mb: 1,
                ..Default::default()
            },
            &x,
            d,
        );
        assert_eq!(big.rho().to_bits(), small.rho().to_bits());
        assert!(big.dual_coef() == small.dual_coef());
        assert_eq!(big.n_iter(), small.n_iter());
    }

    #[test]
    fn vector_paths_give_the_same_bits() {
        let d = 37;
        let x = blob(300, d, 9);
        let x_sq: Vec<f64> = x.chunks_exact(d).map(|r| dot(r, r)).collect();
        for i in [0, 7, 299] {
            let mut a = vec![0f32; 300 - 5];
            let mut b = vec![0f32; 300 - 5];
            kernel_column(&x, &x_sq, d, 0.03, i, 5, &mut a);
            kernel_column_body(&x, &x_sq, d, 0.03, i, 5, &mut b);
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
        let coef: Vec<f64> = (0..299).map(|k| 1.0 / (k + 1) as f64).collect();
        let row = &x[299 * d..];
        let sv = &x[..299 * d];
        assert_eq!(
            kernel_sum(row, sv, &coef, 0.03).to_bits(),
            kernel_sum_body(row, sv, &coef, 0.03).to_bits()
        );
    }

    #[test]
    fn exp_shortcuts_are_exact() {
        let mut a = -110.0;
        while a < -100.0 {
            assert_eq!(exp_f32(a).to_bits(), (a.exp() as f32).to_bits(), "{a}");
            a += 1e-4;
        }
        assert_eq!((F32_EXP_ZERO - 1e-9).exp() as f32, 0.0);
        assert_eq!(F64_EXP_ZERO.exp(), 0.0);
    }

    #[test]
    fn gamma_scale_is_one_over_d_var() {
        let x = [0.0f32, 2.0, 4.0, 6.0];
        let m = fit_with(&OneClassSvmParams::default(), &x, 2);
        // Var of {0, 2, 4, 6} = 5 → γ = 1/(2·5)
        assert_eq!(m.gamma(), 0.1);
        let m = fit_with(
            &OneClassSvmParams {
                gamma: GammaRule::Auto,
                ..Default::default()
            },
            &x,
            2,
        );
        assert_eq!(m.gamma(), 0.5);
        // constant data: Var = 0 → γ = 1, and one row works
        let m = fit_with(&OneClassSvmParams::default(), &[3.0, 3.0], 2);
        assert_eq!(m.gamma(), 1.0);
        // l = 1: α = ν is free, ρ = ν·K(x, x) = ν
        assert_eq!(m.dual_coef(), &[0.1]);
        assert!((m.rho() - 0.1).abs() < 1e-15);
    }

    #[test]
    fn initial_alpha_split_and_scores() {
        // ν·l = 2.5 → two bounded, one free at the start; the sum is kept
        let d = 2;
        let x = blob(25, d, 4);
        let m = fit_with(&OneClassSvmParams::default(), &x, d);
        let sum: f64 = m.dual_coef().iter().sum();
        assert!((sum - 2.5).abs() < 1e-12);
        // an outlier scores above every training row
        let s = m.score(&[50.0, 50.0]);
        let st = m.score(&x);
        assert!(st.iter().all(|v| *v < s[0]));
        // far away: K → 0, score → ρ
        assert!((s[0] - m.rho()).abs() < 1e-12);
        // decision_function is −score
        let df = m.decision_function(&x);
        assert!(df.iter().zip(&st).all(|(a, b)| *a == -*b));
    }

    #[test]
    fn same_input_same_scores_any_thread_count_and_json() {
        let d = 4;
        let x = blob(600, d, 5);
        let a = fit_with(&OneClassSvmParams::default(), &x, d);
        let b = fit_with(&OneClassSvmParams::default(), &x, d);
        let s1 = a.score_threads(&x, 1);
        assert!(s1 == b.score_threads(&x, 1));
        assert!(s1 == a.score_threads(&x, 3));
        assert!(s1 == a.score_threads(&x, 7));
        let j = serde_json::to_string(&a).unwrap();
        let back: OneClassSvm = serde_json::from_str(&j).unwrap();
        assert_eq!(back.rho().to_bits(), a.rho().to_bits());
        assert!(back.score_threads(&x, 2) == s1);
        // a damaged file does not load
        let mut v: serde_json::Value = serde_json::to_value(&a).unwrap();
        v["d"] = serde_json::json!(3);
        let e = serde_json::from_value::<OneClassSvm>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid one-class SVM model"), "{e}");
        let s = a.score(&[f32::NAN, 0.0, 0.0, 0.0]);
        assert!(s[0].is_nan());
    }

    #[test]
    fn invalid_params_and_data_are_errors() {
        let ok = OneClassSvmParams::default();
        for (p, name) in [
            (
                OneClassSvmParams {
                    nu: 0.0,
                    ..ok.clone()
                },
                "nu",
            ),
            (
                OneClassSvmParams {
                    nu: 1.0,
                    ..ok.clone()
                },
                "nu",
            ),
            (
                OneClassSvmParams {
                    nu: f64::NAN,
                    ..ok.clone()
                },
                "nu",
            ),
            (
                OneClassSvmParams {
                    gamma: GammaRule::Value,
                    gamma_value: 0.0,
                    ..ok.clone()
                },
                "gamma_value",
            ),
            (
                OneClassSvmParams {
                    gamma: GammaRule::Value,
                    gamma_value: f64::INFINITY,
                    ..ok.clone()
                },
                "gamma_value",
            ),
            (
                OneClassSvmParams {
                    tol: 0.0,
                    ..ok.clone()
                },
                "tol",
            ),
            (
                OneClassSvmParams {
                    tol: 100.0,
                    ..ok.clone()
                },
                "tol",
            ),
            (
                OneClassSvmParams {
                    max_train: 0,
                    ..ok.clone()
                },
                "max_train",
            ),
            (
                OneClassSvmParams {
                    max_train: MAX_TRAIN + 1,
                    ..ok.clone()
                },
                "max_train",
            ),
            (
                OneClassSvmParams {
                    cache_mb: 0,
                    ..ok.clone()
                },
                "cache_mb",
            ),
        ] {
            assert_eq!(p.validate().unwrap_err().0, name, "{p:?}");
        }
        let stop = AtomicBool::new(false);
        let bad = |x: &[f32], d| match OneClassSvm::fit(&ok, x, d, 0, &stop, &mut |_, _| {}) {
            Err(FitError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad(&[], 2).contains("no training rows"));
        assert!(bad(&[1.0], 0).contains("d = 0"));
        assert!(bad(&[1.0, 2.0, 3.0], 2).contains("multiple"));
        assert!(bad(&[1.0, f32::NAN], 2).contains("row 0 feature 1"));
        let p: OneClassSvmParams =
            serde_json::from_str(r#"{"nu": 0.2, "gamma": "value", "gamma_value": 0.5}"#).unwrap();
        assert_eq!(
            (p.nu, p.gamma, p.gamma_value, p.max_train),
            (0.2, GammaRule::Value, 0.5, 10_000)
        );
        assert!(serde_json::from_str::<OneClassSvmParams>(r#"{"C": 1}"#).is_err());
    }

    #[test]
    fn stop_flag_and_progress() {
        let d = 3;
        let x = blob(1500, d, 6);
        let stop = AtomicBool::new(false);
        let mut last = (0, 0);
        let r = OneClassSvm::fit(
            &OneClassSvmParams::default(),
            &x,
            d,
            0,
            &stop,
            &mut |a, b| {
                last = (a, b);
                stop.store(true, Ordering::Relaxed);
            },
        );
        assert_eq!(r.unwrap_err(), FitError::Stopped);
        assert!(last.1 == 1000 && last.0 < 1000);
        // without stopping, progress ends at (total, total) and rises monotonically
        let stop = AtomicBool::new(false);
        let mut seen = Vec::new();
        OneClassSvm::fit(
            &OneClassSvmParams::default(),
            &x,
            d,
            0,
            &stop,
            &mut |a, b| seen.push((a, b)),
        )
        .unwrap();
        assert_eq!(seen.last(), Some(&(1000, 1000)));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn max_iter_keeps_a_model_marked_not_converged() {
        let d = 3;
        let x = blob(500, d, 7);
        let p = OneClassSvmParams {
            max_iter: 5,
            ..Default::default()
        };
        let m = fit_with(&p, &x, d);
        assert!(!m.converged());
        assert_eq!(m.n_iter(), 5);
        let sum: f64 = m.dual_coef().iter().sum();
        assert!((sum - 50.0).abs() < 1e-9);
    }
}
