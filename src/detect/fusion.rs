//! **heldout's own method: held-out-gated fusion** (`Fusion`, unit name `fusion`).
//!
//! The reference's tables show no single detector winning on held-out families: supervised
//! scores (ODIN, the MLP on every seen row) win where unseen attacks resemble seen ones
//! (UNSW-NB15, CIC-IDS2017), one-class scores (Isolation Forest, ECOD) where they do not
//! (NSL-KDD). Which of the two a dataset needs cannot be read from the seen families' own
//! validation scores — a supervised score always looks best on the families it trained on. What
//! this method adds is the question heldout asks, asked again inside the training data:
//!
//! 1. **Components.** ODIN on the meta-learner's encoder + head (few-shot rows), the
//!    Mahalanobis distance of that network's embedding to the normal training rows' Gaussian
//!    (one-class, in the space the supervised training shaped), the supervised MLP on every
//!    seen-family training row, Isolation Forest and ECOD (normals only) — each as the
//!    registry's method of that name, each switchable. Each component's raw score (the
//!    supervised ones as logits, so that confident scores do not saturate at 1) is put on one
//!    scale by the **validation normals**: `z = (s − median) / (q95 − q5)` of the component's
//!    scores on the normal rows of the seen-family validation pool.
//! 2. **Leave-one-seen-family-out gate.** For each seen family f with validation rows, the
//!    supervised components are trained again without f's rows (its few-shot and training rows
//!    both), and every candidate weighting is scored by the AUC of `Σ w_c z_c` separating the
//!    validation normals from f's validation rows — f plays the held-out family. The default
//!    gate (`groups`) chooses one number, the share λ of the supervised group (mean of ODIN,
//!    Mahalanobis, MLP) against the one-class group (mean of Isolation Forest, ECOD), in steps
//!    of 1/`grid`, and whether the z are floored at 0 (evidence only: a component that finds a
//!    row more normal than normal cannot outvote one that finds it anomalous); `lofo` chooses
//!    every weight on the simplex grid. The candidate with the best mean (or worst-case,
//!    `objective`) AUC over the folds is kept; ties go to the earlier candidate (supervised-heavy
//!    first, plain before floored). With fewer than two seen families there is no fold to learn
//!    from and the weights are equal.
//! 3. **Score** = `Σ w_c z_c` of the components trained on every seen family; τ* on the
//!    validation pool as for every method.
//!
//! **Selection rule, written down** (issue 13): every choice — the weights — is made from the
//! normal training rows, the seen families' training rows and the seen-family validation pool
//! (`TrainView::val`, `TrainView::val_family`). Nothing reads [`super::TrainView::checkpoint`]
//! (which holds the held-out family's validation block for the curves) or the test blocks;
//! `tests/fusion.rs` checks that the weights and scores do not change when those rows do.
//!
//! Cost: the supervised components are trained `1 + folds` times (folds = seen families with
//! validation rows); [`FusionParams`]'s `cost` counts it.

use super::ecod::{Ecod, EcodParams};
use super::iforest::{IsolationForestModel, IsolationForestParams};
use super::mlp::{AnomalyRows, MlpModel, MlpParams};
use super::odin::{Odin, OdinParams};
use super::{Ctx, DetectError, Detector, Event, MetaLearnerParams, Threshold, TrainView};
use crate::data::FamilyId;
use crate::rng::SplitMix64;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

type R<T> = Result<T, DetectError>;

/// How the component weights are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Leave one seen family out, choosing one number: the share λ of the supervised group
    /// (the mean of ODIN, the Mahalanobis score and the MLP) against the one-class group (the
    /// mean of Isolation Forest and ECOD). Few choices, so single fold models' luck moves it
    /// little.
    #[default]
    Groups,
    /// Leave one seen family out, choosing every component's weight on the simplex grid.
    Lofo,
    /// Equal weights (an ablation: fusion without the gate).
    Equal,
}

/// Whether a component's normalised score is floored at the validation normals' median (0)
/// before weighting, so that a component that finds a row *more* normal than normal cannot
/// outvote one that finds it anomalous (evidence-only fusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clip {
    /// The gate chooses, on its folds, between floored and plain scores.
    #[default]
    Auto,
    On,
    Off,
}

/// What the gate maximises over the leave-one-seen-family-out folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The mean fold AUC.
    #[default]
    Mean,
    /// The worst fold's AUC (the family caught worst).
    Worst,
}

/// Settings of heldout's fusion; the components' own settings are their registry defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FusionParams {
    /// Use ODIN (the meta-learner's encoder + head, few-shot rows, T = 1000, ε = 0.0014).
    pub odin: bool,
    /// Use the Mahalanobis distance of ODIN's encoder embedding to the normal training rows'
    /// (a one-class score in the space the supervised training shaped; Lee et al., NeurIPS
    /// 2018). Trains ODIN's network even when `odin` is off.
    pub maha: bool,
    /// Use the supervised MLP on the seen families' rows.
    pub mlp: bool,
    /// Use Isolation Forest (normals only).
    pub iforest: bool,
    /// Use ECOD (normals only).
    pub ecod: bool,
    /// Which seen-family rows the MLP trains on.
    pub mlp_anomalies: AnomalyRows,
    /// How the weights are chosen.
    pub gate: Gate,
    /// What the gate maximises over its folds.
    pub objective: Objective,
    /// Floor each normalised score at 0 (the validation normals' median) before weighting.
    pub clip: Clip,
    /// Weight grid resolution: weights are multiples of 1/grid summing to 1.
    pub grid: usize,
    /// ODIN training epochs.
    pub odin_epochs: usize,
    /// ODIN networks averaged (each from its own initial seed): ODIN's AUC on one unseen family
    /// swings widely between networks, which an ensemble evens out (and the gate's folds with
    /// it). 1 = one network, as ODIN itself.
    pub odin_members: usize,
    /// MLP training epochs.
    pub mlp_epochs: usize,
    /// Normal training rows the gate's fold models train on (the first ones, in the protocol's
    /// permutation order); 0 = all. The fold models only rank the components against each
    /// other, so they need not see every normal: this bounds the gate's cost on large data.
    pub fold_normals: usize,
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            odin: true,
            maha: true,
            mlp: true,
            iforest: true,
            ecod: true,
            mlp_anomalies: AnomalyRows::AllSeen,
            gate: Gate::Groups,
            objective: Objective::Mean,
            clip: Clip::Auto,
            grid: 10,
            odin_epochs: OdinParams::default().epochs,
            odin_members: 1,
            mlp_epochs: MlpParams::default().epochs,
            fold_normals: 8192,
        }
    }
}

/// The largest weight grid: with four components, 1 + grid³/6 points, each scored on every
/// fold; 50 gives ~23,000 points, seconds of AUCs.
const MAX_GRID: usize = 50;

impl FusionParams {
    /// The components switched on, in their fixed order.
    pub fn parts(&self) -> Vec<Part> {
        let mut v = Vec::new();
        for (on, p) in [
            (self.odin, Part::Odin),
            (self.maha, Part::Maha),
            (self.mlp, Part::Mlp),
            (self.iforest, Part::IForest),
            (self.ecod, Part::Ecod),
        ] {
            if on {
                v.push(p);
            }
        }
        v
    }

    fn odin_params(&self) -> OdinParams {
        OdinParams {
            epochs: self.odin_epochs,
            ..Default::default()
        }
    }

    fn mlp_params(&self) -> MlpParams {
        MlpParams {
            epochs: self.mlp_epochs,
            anomalies: self.mlp_anomalies,
            ..Default::default()
        }
    }

    /// Checks every setting; the error names the parameter.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.parts().is_empty() {
            return Err((
                "odin",
                "no component is switched on: set at least one of odin, maha, mlp, iforest, ecod to true"
                    .into(),
            ));
        }
        if self.grid == 0 || self.grid > MAX_GRID {
            return Err((
                "grid",
                format!(
                    "must be 1 to {MAX_GRID} (got {}); 10 gives weights in steps of 0.1",
                    self.grid
                ),
            ));
        }
        if (self.odin || self.maha) && (self.odin_epochs == 0 || self.odin_epochs > 10_000) {
            return Err((
                "odin_epochs",
                format!("must be 1 to 10000 (got {})", self.odin_epochs),
            ));
        }
        if self.odin_members == 0 || self.odin_members > 16 {
            return Err((
                "odin_members",
                format!("must be 1 to 16 (got {})", self.odin_members),
            ));
        }
        if self.fold_normals > 100_000_000 {
            return Err((
                "fold_normals",
                format!("must be at most 100000000 (got {}); 0 = all", self.fold_normals),
            ));
        }
        if self.mlp && (self.mlp_epochs == 0 || self.mlp_epochs > 10_000) {
            return Err((
                "mlp_epochs",
                format!("must be 1 to 10000 (got {})", self.mlp_epochs),
            ));
        }
        Ok(())
    }

    /// Whether any component learns from labelled anomalies (and so is trained per fold).
    fn supervised(&self) -> bool {
        self.odin || self.maha || self.mlp
    }
}

/// A component of the fusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Odin,
    Maha,
    Mlp,
    IForest,
    Ecod,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Odin => "odin",
            Part::Maha => "maha",
            Part::Mlp => "mlp",
            Part::IForest => "iforest",
            Part::Ecod => "ecod",
        }
    }
    fn weight_term(self) -> &'static str {
        match self {
            Part::Odin => "w_odin",
            Part::Maha => "w_maha",
            Part::Mlp => "w_mlp",
            Part::IForest => "w_iforest",
            Part::Ecod => "w_ecod",
        }
    }
    fn auc_term(self) -> &'static str {
        match self {
            Part::Odin => "auc_odin",
            Part::Maha => "auc_maha",
            Part::Mlp => "auc_mlp",
            Part::IForest => "auc_iforest",
            Part::Ecod => "auc_ecod",
        }
    }
    fn supervised(self) -> bool {
        matches!(self, Part::Odin | Part::Maha | Part::Mlp)
    }
}

/// A fitted component.
enum Model {
    /// ODIN's networks (the ensemble's members; the score is their mean).
    Odin(Vec<Rc<Odin>>),
    /// Each member's network with its normals' Gaussian (the score is the members' mean).
    Maha(Vec<(Rc<Odin>, Gaussian)>),
    Mlp(MlpModel),
    IForest(IsolationForestModel),
    Ecod(Ecod),
}

impl Model {
    /// The raw score fused (higher = more anomalous): ODIN's (ℓ₁ − ℓ₀)/T after the perturbation
    /// and the MLP's logit — the logits of their probability scores, which saturate at 1 in
    /// f64 for confident rows — and the one-class scores as they are.
    fn raw(&self, x: &[f32]) -> R<Vec<f64>> {
        match self {
            Model::Odin(ms) => {
                let mut out = vec![0.0; x.len() / ms.first().map_or(1, |m| m.dim().max(1))];
                for m in ms {
                    for (o, g) in out.iter_mut().zip(m.calibrated_gap(x)?) {
                        *o -= g / ms.len() as f64;
                    }
                }
                Ok(out)
            }
            Model::Maha(ms) => {
                let mut out = vec![0.0; x.len() / ms.first().map_or(1, |m| m.0.dim().max(1))];
                for (m, g) in ms {
                    for (o, v) in out.iter_mut().zip(g.score(&m.embed(x)?)?) {
                        *o += v / ms.len() as f64;
                    }
                }
                Ok(out)
            }
            Model::Mlp(m) => m.logits_f64(x),
            Model::IForest(m) => Ok(m.score(x)),
            Model::Ecod(m) => Ok(m.score(x)),
        }
    }
}

/// The file extension of ensemble member `k`: `ext` for the first, `<k>.ext` for the others.
fn member_ext(k: usize, ext: &str) -> String {
    if k == 0 {
        ext.to_string()
    } else {
        format!("{k}.{ext}")
    }
}

/// Normal rows whose embeddings fit the Mahalanobis component's Gaussian (the first ones).
const MAHA_ROWS: usize = 8192;

/// The supervised components of one fit (final or a gate fold).
struct Supervised {
    odin: Vec<Rc<Odin>>,
    maha: Vec<Gaussian>,
    mlp: Option<MlpModel>,
}

impl Supervised {
    /// The model of supervised part `p` (the MLP and the Gaussian move out; ODIN's network is
    /// shared by `odin` and `maha`).
    fn take(&mut self, p: Part) -> R<Model> {
        let missing = || DetectError::Other(format!("fusion: {} was not trained", p.as_str()));
        match p {
            Part::Odin if !self.odin.is_empty() => Ok(Model::Odin(self.odin.clone())),
            Part::Maha if !self.maha.is_empty() && self.maha.len() == self.odin.len() => {
                let maha = std::mem::take(&mut self.maha);
                Ok(Model::Maha(self.odin.iter().cloned().zip(maha).collect()))
            }
            Part::Mlp => Ok(Model::Mlp(self.mlp.take().ok_or_else(missing)?)),
            _ => Err(missing()),
        }
    }
}

/// A Gaussian of embeddings: the mean and the Cholesky factor L of the covariance plus a ridge
/// of 10⁻³ of its mean variance (so that a rank-deficient embedding still inverts). Score =
/// the squared Mahalanobis distance ‖L⁻¹(z − μ)‖².
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gaussian {
    pub dim: usize,
    pub mean: Vec<f64>,
    /// Row-major lower-triangular factor (dim × dim).
    pub chol: Vec<f64>,
}

impl Gaussian {
    /// Fits on `z` (row-major, `dim` columns, at least two rows).
    pub fn fit(z: &[f32], dim: usize) -> R<Gaussian> {
        let n = z.len().checked_div(dim).unwrap_or(0);
        if n < 2 {
            return Err(DetectError::Other(format!(
                "fusion: the Mahalanobis component needs at least 2 normal rows (got {n})"
            )));
        }
        let mut mean = vec![0.0; dim];
        for r in z.chunks_exact(dim) {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += f64::from(*v);
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let mut cov = vec![0.0; dim * dim];
        let mut c = vec![0.0; dim];
        for r in z.chunks_exact(dim) {
            for (ci, (v, m)) in c.iter_mut().zip(r.iter().zip(&mean)) {
                *ci = f64::from(*v) - m;
            }
            for i in 0..dim {
                let ci = c[i];
                let row = &mut cov[i * dim..i * dim + i + 1];
                for (x, cj) in row.iter_mut().zip(&c[..=i]) {
                    *x += ci * cj;
                }
            }
        }
        let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum::<f64>() / (n - 1) as f64;
        let ridge = 1e-3 * trace / dim as f64 + 1e-12;
        for i in 0..dim {
            for j in 0..=i {
                cov[i * dim + j] /= (n - 1) as f64;
            }
            cov[i * dim + i] += ridge;
        }
        // Cholesky of the lower triangle, in place
        for j in 0..dim {
            let mut dsum = cov[j * dim + j];
            for k in 0..j {
                dsum -= cov[j * dim + k] * cov[j * dim + k];
            }
            if !(dsum > 0.0 && dsum.is_finite()) {
                return Err(DetectError::Other(
                    "fusion: the Mahalanobis component's covariance is not positive definite (non-finite embeddings?)".into(),
                ));
            }
            let djj = dsum.sqrt();
            cov[j * dim + j] = djj;
            for i in j + 1..dim {
                let mut v = cov[i * dim + j];
                for k in 0..j {
                    v -= cov[i * dim + k] * cov[j * dim + k];
                }
                cov[i * dim + j] = v / djj;
            }
        }
        for i in 0..dim {
            for j in i + 1..dim {
                cov[i * dim + j] = 0.0;
            }
        }
        Ok(Gaussian {
            dim,
            mean,
            chol: cov,
        })
    }

    /// Squared Mahalanobis distance of each row of `z` (row-major, `dim` columns).
    pub fn score(&self, z: &[f32]) -> R<Vec<f64>> {
        let dim = self.dim;
        if dim == 0 || z.len() % dim != 0 {
            return Err(DetectError::Other(format!(
                "fusion: {} embedding values are not rows of {dim}",
                z.len()
            )));
        }
        let mut y = vec![0.0; dim];
        Ok(z
            .chunks_exact(dim)
            .map(|r| {
                // forward substitution: L y = z − μ
                for i in 0..dim {
                    let mut v = f64::from(r[i]) - self.mean[i];
                    let li = &self.chol[i * dim..i * dim + i];
                    for (l, yk) in li.iter().zip(&y[..i]) {
                        v -= l * yk;
                    }
                    y[i] = v / self.chol[i * dim + i];
                }
                y.iter().map(|v| v * v).sum()
            })
            .collect())
    }
}

/// Where the validation normals put a component's scores: `z = (s − centre) / scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Norm {
    pub centre: f64,
    pub scale: f64,
}

impl Norm {
    /// Median and q95 − q5 (linear interpolation) of `normals`; a scale of 0 (or no normals)
    /// becomes the largest |deviation| from the median, then 1.
    pub fn of(normals: &[f64]) -> Norm {
        if normals.is_empty() {
            return Norm {
                centre: 0.0,
                scale: 1.0,
            };
        }
        let mut v = normals.to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| crate::data::quantile_sorted(&v, p);
        let centre = q(0.5);
        let mut scale = q(0.95) - q(0.05);
        if !(scale > 1e-12 && scale.is_finite()) {
            scale = v
                .iter()
                .map(|s| (s - centre).abs())
                .fold(0.0, f64::max);
        }
        if !(scale > 1e-12 && scale.is_finite()) {
            scale = 1.0;
        }
        Norm { centre, scale }
    }
    fn apply(&self, s: &[f64]) -> Vec<f64> {
        s.iter().map(|v| (v - self.centre) / self.scale).collect()
    }
}

/// One leave-one-seen-family-out fold's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    /// The seen family left out (its name).
    pub family: String,
    /// Its validation rows (the fold's anomalies).
    pub rows: usize,
    /// Each component's AUC alone on the fold, in [`Gated::parts`] order.
    pub auc: Vec<f64>,
    /// The fused score's AUC with the chosen weights.
    pub fused: f64,
}

/// What the gate chose and why: written beside the components' models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gated {
    pub parts: Vec<Part>,
    pub weights: Vec<f64>,
    /// The floor applied to every normalised score (`None`: plain scores).
    pub floor: Option<f64>,
    pub norms: Vec<Norm>,
    pub folds: Vec<Fold>,
    /// The objective's value at the chosen weights (NaN without folds).
    pub objective: f64,
    /// Why the weights are equal, when the gate could not choose.
    pub note: Option<String>,
}

/// heldout's fusion detector.
pub struct Fusion {
    p: FusionParams,
    arch: MetaLearnerParams,
    d: usize,
    seed: u64,
    device: Device,
    models: Vec<Model>,
    gated: Option<Gated>,
    tau: Threshold,
}

/// The weight vectors of the simplex grid over `m` components with step 1/`grid`, the first
/// component's weight descending first (so that ties keep the earlier components: the
/// supervised ones).
pub fn simplex_grid(m: usize, grid: usize) -> Vec<Vec<f64>> {
    fn rec(m: usize, left: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if m == 1 {
            cur.push(left);
            out.push(cur.clone());
            cur.pop();
            return;
        }
        for k in (0..=left).rev() {
            cur.push(k);
            rec(m - 1, left - k, cur, out);
            cur.pop();
        }
    }
    if m == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    rec(m, grid, &mut Vec::new(), &mut out);
    out.into_iter()
        .map(|v| v.into_iter().map(|k| k as f64 / grid as f64).collect())
        .collect()
}

/// The weight vectors of the group gate: for λ = 1, 1 − 1/grid, …, 0 the supervised parts
/// share λ equally and the one-class parts 1 − λ (a single vector, equal weights, when one
/// group is empty).
pub fn group_grid(parts: &[Part], grid: usize) -> Vec<Vec<f64>> {
    let n_sup = parts.iter().filter(|p| p.supervised()).count();
    let n_one = parts.len() - n_sup;
    if n_sup == 0 || n_one == 0 {
        return vec![vec![1.0 / parts.len().max(1) as f64; parts.len()]];
    }
    (0..=grid)
        .rev()
        .map(|k| {
            let lam = k as f64 / grid as f64;
            parts
                .iter()
                .map(|p| {
                    if p.supervised() {
                        lam / n_sup as f64
                    } else {
                        (1.0 - lam) / n_one as f64
                    }
                })
                .collect()
        })
        .collect()
}

/// `Σ_c w_c · z_c[i]` per row.
fn fuse(w: &[f64], z: &[Vec<f64>], floor: Option<f64>) -> Vec<f64> {
    let n = z.first().map_or(0, Vec::len);
    let lift = |v: f64| floor.map_or(v, |f| v.max(f));
    (0..n)
        .map(|i| w.iter().zip(z).map(|(w, zc)| w * lift(zc[i])).sum())
        .collect()
}

/// The gate: the (floor, grid point) with the best objective over the folds, each fold given as
/// the components' normalised scores `z[c]` on (validation normals, then the fold's anomalies)
/// and its labels. `floors` are the score floors tried (`None`: none), in order of preference.
/// Returns (weights, floor, objective value).
pub fn choose_weights(
    grid: &[Vec<f64>],
    floors: &[Option<f64>],
    folds: &[(Vec<Vec<f64>>, Vec<bool>)],
    objective: Objective,
) -> R<(Vec<f64>, Option<f64>, f64)> {
    let mut best: Option<(usize, Option<f64>, f64)> = None;
    for &floor in floors {
        for (gi, w) in grid.iter().enumerate() {
            let mut acc = match objective {
                Objective::Mean => 0.0,
                Objective::Worst => f64::INFINITY,
            };
            for (z, labels) in folds {
                let auc = crate::eval::roc_auc(labels, &fuse(w, z, floor))
                    .map_err(|e| DetectError::Other(format!("fusion gate: {e}")))?;
                match objective {
                    Objective::Mean => acc += auc / folds.len() as f64,
                    Objective::Worst => acc = acc.min(auc),
                }
            }
            // strictly better only: ties keep the earlier floor and grid point
            if best.is_none_or(|(_, _, b)| acc > b + 1e-12) {
                best = Some((gi, floor, acc));
            }
        }
    }
    let (gi, floor, v) =
        best.ok_or_else(|| DetectError::Other("fusion gate: empty weight grid".into()))?;
    Ok((grid[gi].clone(), floor, v))
}

/// The rows (concatenated) of every family in `v` except `skip`.
fn rows_except(v: &[(FamilyId, Vec<f32>)], skip: Option<FamilyId>) -> Vec<f32> {
    v.iter()
        .filter(|(f, _)| Some(*f) != skip)
        .flat_map(|(_, x)| x.iter().copied())
        .collect()
}

impl Fusion {
    pub fn new(
        p: FusionParams,
        arch: MetaLearnerParams,
        d: usize,
        seed: u64,
        device: &Device,
    ) -> R<Self> {
        p.validate()
            .map_err(|(k, m)| DetectError::Other(format!("fusion: {k}: {m}")))?;
        Ok(Fusion {
            p,
            arch,
            d,
            seed,
            device: device.clone(),
            models: Vec::new(),
            gated: None,
            tau: Threshold::fallback("not fitted"),
        })
    }

    /// What the gate chose (after `fit`).
    pub fn gated(&self) -> Option<&Gated> {
        self.gated.as_ref()
    }

    /// Trains the supervised components (ODIN's network, used by `odin` and `maha`, and the
    /// MLP) on the normals and the seen families' rows without family `skip` (`None`: all of
    /// them; a fold: the first `fold_normals` normals).
    fn fit_supervised(
        &self,
        data: &TrainView,
        skip: Option<FamilyId>,
        ctx: &mut Ctx,
    ) -> R<Supervised> {
        let d = self.d;
        let final_fit = skip.is_none();
        // the fold models see the first `fold_normals` normal rows
        let normals: &[f32] = if final_fit || self.p.fold_normals == 0 {
            &data.normals
        } else {
            &data.normals[..self.p.fold_normals.saturating_mul(d).min(data.normals.len())]
        };
        let mut out = Supervised {
            odin: Vec::new(),
            maha: Vec::new(),
            mlp: None,
        };
        let emit = &mut *ctx.emit;
        // progress passes through; only the final models' epochs go to epochs.csv
        let relay = |phase: &'static str, emit: &mut dyn FnMut(Event), e: Event| match e {
            Event::Step { done, total, .. } => emit(Event::Step { phase, done, total }),
            Event::Epoch {
                epoch,
                epochs,
                terms,
                ..
            } if final_fit => emit(Event::Epoch {
                phase,
                epoch,
                epochs,
                terms,
            }),
            _ => {}
        };
        if self.p.odin || self.p.maha {
            let phase = if final_fit { "odin" } else { "odin (gate folds)" };
            let anomalies = rows_except(&data.few_shot, skip);
            for k in 0..self.p.odin_members.max(1) {
                // member 0 is ODIN as it runs alone; the others start from seeds far apart
                let seed = self.seed.wrapping_add(1_000_003u64.wrapping_mul(k as u64));
                let mut m = Odin::new(self.p.odin_params(), &self.arch, d, seed, &self.device)?;
                // the runner's stream for a method's own draws (seed + 40), the same in every fold
                let mut rng = SplitMix64::new(seed.wrapping_add(40));
                m.train(
                    normals,
                    &anomalies,
                    &mut rng,
                    &mut |e| relay(phase, &mut *emit, e),
                    ctx.stop,
                )?;
                if self.p.maha {
                    let rows = &normals[..MAHA_ROWS.saturating_mul(d).min(normals.len())];
                    out.maha.push(Gaussian::fit(&m.embed(rows)?, m.embed_dim())?);
                }
                out.odin.push(Rc::new(m));
            }
        }
        if self.p.mlp {
            let phase = if final_fit { "mlp" } else { "mlp (gate folds)" };
            let source = match self.p.mlp_anomalies {
                AnomalyRows::FewShot => &data.few_shot,
                AnomalyRows::AllSeen => &data.seen_train,
            };
            let anomalies = rows_except(source, skip);
            let mut epoch_done =
                |stage: &'static str, epoch: usize, epochs: usize, terms: &[(&'static str, f64)]| {
                    super::emit_epoch(&mut |e| relay(phase, &mut *emit, e), stage, epoch, epochs, terms)
                };
            out.mlp = Some(MlpModel::fit(
                &self.p.mlp_params(),
                normals,
                &anomalies,
                d,
                self.seed,
                &self.device,
                ctx.stop,
                &mut epoch_done,
            )?);
        }
        Ok(out)
    }

    fn fit_one_class(&self, part: Part, data: &TrainView, ctx: &mut Ctx) -> R<Model> {
        let emit = &mut *ctx.emit;
        let mut progress = |done, total| {
            emit(Event::Step {
                phase: part.as_str(),
                done,
                total,
            })
        };
        match part {
            Part::IForest => Ok(Model::IForest(IsolationForestModel::fit(
                &IsolationForestParams::default(),
                &data.normals,
                self.d,
                self.seed,
                ctx.stop,
                &mut progress,
            )?)),
            Part::Ecod => Ok(Model::Ecod(Ecod::fit(
                &EcodParams::default(),
                &data.normals,
                self.d,
                ctx.stop,
                &mut progress,
            )?)),
            _ => Err(DetectError::Other(format!(
                "fusion: {} is not a one-class component",
                part.as_str()
            ))),
        }
    }

    /// The final score of rows `x`: the fused normalised component scores.
    fn fused(&self, x: &[f32]) -> R<Vec<f64>> {
        let g = self
            .gated
            .as_ref()
            .ok_or_else(|| DetectError::Other("fusion: score called before fit".into()))?;
        let mut out = vec![0.0; x.len() / self.d.max(1)];
        for ((m, n), w) in self.models.iter().zip(&g.norms).zip(&g.weights) {
            if *w == 0.0 {
                continue;
            }
            for (o, s) in out.iter_mut().zip(m.raw(x)?) {
                let z = (s - n.centre) / n.scale;
                *o += w * g.floor.map_or(z, |f| z.max(f));
            }
        }
        Ok(out)
    }
}

impl Detector for Fusion {
    fn name(&self) -> String {
        super::MethodSpec::name(&self.p)
    }

    fn fit(&mut self, data: &mut TrainView, ctx: &mut Ctx) -> R<()> {
        let d = self.d;
        if data.normals.is_empty() || d == 0 {
            return Err(DetectError::Other("fusion: no normal training rows".into()));
        }
        let parts = self.p.parts();
        if self.p.supervised() && data.few_shot.iter().all(|(_, x)| x.is_empty()) {
            return Err(DetectError::Other(
                "fusion: its supervised components (odin, mlp) need labelled anomalies of a seen family — switch them off (odin: false, mlp: false) or give the rotation a seen family".into(),
            ));
        }
        if data.val.y.len() != data.val_family.len() {
            return Err(DetectError::Other(format!(
                "fusion: the validation pool has {} rows but {} family labels",
                data.val.y.len(),
                data.val_family.len()
            )));
        }
        // validation normals (the scale of every component) and each seen family's val rows
        let n_rows = |x: &[f32]| x.len() / d;
        let val_n = n_rows(&data.val.x);
        let normal_ix: Vec<usize> = (0..val_n).filter(|&i| data.val.y[i] == 0).collect();
        let gather = |ix: &[usize]| -> Vec<f32> {
            ix.iter()
                .flat_map(|&i| data.val.x[i * d..(i + 1) * d].iter().copied())
                .collect()
        };
        let val_normals = gather(&normal_ix);

        // components trained on everything
        let mut sup = self.fit_supervised(data, None, ctx)?;
        let mut models = Vec::with_capacity(parts.len());
        for &p in &parts {
            if ctx.stopped() {
                return Err(DetectError::Stopped);
            }
            models.push(if p.supervised() {
                sup.take(p)?
            } else {
                self.fit_one_class(p, data, ctx)?
            });
        }
        let mut norms = Vec::with_capacity(parts.len());
        for m in &models {
            norms.push(Norm::of(&m.raw(&val_normals)?));
        }

        // the folds: each seen family with validation rows plays the held-out family once
        let seen: Vec<FamilyId> = data.few_shot.iter().map(|(f, _)| *f).collect();
        let fold_families: Vec<(FamilyId, Vec<usize>)> = seen
            .iter()
            .map(|&f| {
                let ix: Vec<usize> = (0..val_n)
                    .filter(|&i| data.val.y[i] == 1 && data.val_family[i] == f)
                    .collect();
                (f, ix)
            })
            .filter(|(_, ix)| !ix.is_empty())
            .collect();
        let grid = match self.p.gate {
            Gate::Groups => group_grid(&parts, self.p.grid),
            _ => simplex_grid(parts.len(), self.p.grid),
        };
        let name = |f: FamilyId| {
            data.family_names
                .get(f as usize)
                .cloned()
                .unwrap_or_else(|| format!("family {f}"))
        };
        let mut note = None;
        // the floors the gate may choose between, in order of preference; without a gate, the
        // first
        let floors: Vec<Option<f64>> = match self.p.clip {
            Clip::Auto => vec![None, Some(0.0)],
            Clip::On => vec![Some(0.0)],
            Clip::Off => vec![None],
        };
        let mut floor = floors[0];
        let (weights, objective, folds) = if parts.len() == 1 {
            (vec![1.0], f64::NAN, Vec::new())
        } else if self.p.gate == Gate::Equal {
            note = Some("gate = equal: equal weights".to_string());
            (vec![1.0 / parts.len() as f64; parts.len()], f64::NAN, Vec::new())
        } else if fold_families.len() < 2 || normal_ix.is_empty() {
            note = Some(format!(
                "{} seen famil{} with validation rows and {} validation normals: the gate needs two families and normals, so the weights are equal",
                fold_families.len(),
                if fold_families.len() == 1 { "y" } else { "ies" },
                normal_ix.len()
            ));
            (vec![1.0 / parts.len() as f64; parts.len()], f64::NAN, Vec::new())
        } else {
            let mut fold_z: Vec<(Vec<Vec<f64>>, Vec<bool>)> = Vec::new();
            for (f, ix) in &fold_families {
                let mut rows = val_normals.clone();
                rows.extend(gather(ix));
                let mut labels = vec![false; normal_ix.len()];
                labels.resize(normal_ix.len() + ix.len(), true);
                let mut z = Vec::with_capacity(parts.len());
                if ctx.stopped() {
                    return Err(DetectError::Stopped);
                }
                let mut sup = self.fit_supervised(data, Some(*f), ctx)?;
                for (ci, &p) in parts.iter().enumerate() {
                    if ctx.stopped() {
                        return Err(DetectError::Stopped);
                    }
                    let raw = if p.supervised() {
                        let raw = sup.take(p)?.raw(&rows)?;
                        // the fold model's own scale, from the same validation normals
                        let nn = Norm::of(&raw[..normal_ix.len()]);
                        nn.apply(&raw)
                    } else {
                        norms[ci].apply(&models[ci].raw(&rows)?)
                    };
                    z.push(raw);
                }
                fold_z.push((z, labels));
            }
            let (w, fl, v) = choose_weights(&grid, &floors, &fold_z, self.p.objective)?;
            floor = fl;
            let mut folds = Vec::with_capacity(fold_z.len());
            for ((f, ix), (z, labels)) in fold_families.iter().zip(&fold_z) {
                let auc: Vec<f64> = z
                    .iter()
                    .map(|zc| crate::eval::roc_auc(labels, zc).unwrap_or(f64::NAN))
                    .collect();
                let fused =
                    crate::eval::roc_auc(labels, &fuse(&w, z, floor)).unwrap_or(f64::NAN);
                folds.push(Fold {
                    family: name(*f),
                    rows: ix.len(),
                    auc,
                    fused,
                });
            }
            (w, v, folds)
        };

        // what the gate saw and chose, in epochs.csv: one row per fold, then the weights
        for (i, f) in folds.iter().enumerate() {
            let mut terms: Vec<(&'static str, f64)> = parts
                .iter()
                .zip(&f.auc)
                .map(|(p, a)| (p.auc_term(), *a))
                .collect();
            terms.push(("auc_fused", f.fused));
            (ctx.emit)(Event::Epoch {
                phase: "gate fold",
                epoch: i + 1,
                epochs: folds.len(),
                terms,
            });
        }
        let mut terms: Vec<(&'static str, f64)> = parts
            .iter()
            .zip(&weights)
            .map(|(p, w)| (p.weight_term(), *w))
            .collect();
        terms.push(("floor", floor.unwrap_or(f64::NEG_INFINITY)));
        terms.push(("objective", objective));
        (ctx.emit)(Event::Epoch {
            phase: "gate",
            epoch: 1,
            epochs: 1,
            terms,
        });

        self.models = models;
        self.gated = Some(Gated {
            parts,
            weights,
            floor,
            norms,
            folds,
            objective,
            note,
        });
        self.tau = if data.val.is_empty() {
            Threshold::fallback(super::EMPTY_VAL)
        } else {
            let s = self.fused(&data.val.x)?;
            super::val_threshold(&data.val, &s, ctx)
        };
        Ok(())
    }

    fn score(&self, x: &[f32]) -> R<Vec<f64>> {
        super::mlp::score_rows("fusion", x, self.d)?;
        self.fused(x)
    }

    fn threshold(&self) -> Threshold {
        self.tau.clone()
    }

    /// The gate (JSON) at `path`; each component beside it as `<stem>.<component>.<ext>`.
    fn save(&self, path: &std::path::Path) -> R<()> {
        let g = self
            .gated
            .as_ref()
            .ok_or_else(|| DetectError::Other("fusion: save called before fit".into()))?;
        super::save_json(g, path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "fusion".into());
        for (p, m) in g.parts.iter().zip(&self.models) {
            let side = |ext: &str| path.with_file_name(format!("{stem}.{}.{ext}", p.as_str()));
            match m {
                // member 0 as `<stem>.odin.safetensors`, the others `<stem>.odin.<k>.safetensors`
                Model::Odin(ms) => {
                    for (k, m) in ms.iter().enumerate() {
                        m.save(&side(&member_ext(k, "safetensors")))?;
                    }
                }
                Model::Maha(ms) => {
                    for (k, (m, g)) in ms.iter().enumerate() {
                        super::save_json(g, &side(&member_ext(k, "json")))?;
                        m.save(&side(&member_ext(k, "encoder.safetensors")))?;
                    }
                }
                Model::Mlp(m) => m.save(&side("safetensors"))?,
                Model::IForest(m) => super::save_json(m, &side("json"))?,
                Model::Ecod(m) => super::save_json(m, &side("json"))?,
            }
        }
        Ok(())
    }

    fn model_extension(&self) -> &'static str {
        "json"
    }
}

impl super::MethodSpec for FusionParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "heldout fusion (held-out-gated)",
            paper: "heldout's own method (src/detect/fusion.rs; experiments/RESULTS.md, issue 13)",
            labels: super::Labels::AllSeen,
            summary: "ODIN, a Mahalanobis score on ODIN's features, the supervised MLP, Isolation Forest and ECOD on one scale (the validation normals'), weighted by a gate that leaves each seen family out in turn and keeps the weights that best catch it: the held-out question asked inside the training data.",
        }
    }
    fn labels(&self) -> super::Labels {
        if self.mlp && self.mlp_anomalies == AnomalyRows::AllSeen {
            super::Labels::AllSeen
        } else if self.supervised() {
            super::Labels::FewShot
        } else {
            super::Labels::NormalsOnly
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const C: &str = "Components";
        const G: &str = "Gate";
        const PARAMS: &[P] = &[
            P::boolean("odin", "ODIN (T 1000, ε 0.0014) on the meta-learner's encoder + head, few-shot rows").in_group(C),
            P::boolean("maha", "Mahalanobis distance of ODIN's encoder embedding to the normals' Gaussian").in_group(C),
            P::boolean("mlp", "the supervised MLP (256, 128) on the seen families' rows").in_group(C),
            P::boolean("iforest", "Isolation Forest on the normals (100 trees)").in_group(C),
            P::boolean("ecod", "ECOD on the normals").in_group(C),
            P::choice("mlp_anomalies", &["few_shot", "all_seen"], "the MLP's labelled rows: the few-shot rows or every seen-family training row (default)").in_group(C),
            P::choice("gate", &["groups", "lofo", "equal"], "weights: leave each seen family out and keep the supervised / one-class share best at catching it (default), every weight (lofo), or equal (ablation)").in_group(G),
            P::choice("objective", &["mean", "worst"], "the gate maximises the mean fold AUC (default) or the worst fold's").in_group(G),
            P::choice("clip", &["auto", "on", "off"], "floor each normalised score at the normals' median (evidence only): chosen by the gate (default), always, never").in_group(G),
            P::int("grid", 1, MAX_GRID as u64, "weights are multiples of 1/grid (default 10)").in_group(G),
            P::int("odin_epochs", 1, 10_000, "ODIN training epochs (reference: 5)").in_group(C),
            P::int("mlp_epochs", 1, 10_000, "MLP training epochs (reference: 5)").in_group(C),
            P::int("odin_members", 1, 16, "ODIN networks averaged, each from its own initial seed (default 1)").in_group(C),
            P::int("fold_normals", 0, 100_000_000, "normal rows the gate's fold models train on, the first ones; 0 = all (default 8192)").in_group(G),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        FusionParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "fusion".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let folds = if self.gate != Gate::Equal && self.parts().len() > 1 {
            s.few_shot.iter().filter(|&&n| n > 0.0).count() as f64
        } else {
            0.0
        };
        // a fold model trains on at most fold_normals normal rows (its steps scale with them)
        let share = if self.fold_normals == 0 || s.normals <= 0.0 {
            1.0
        } else {
            (self.fold_normals as f64 / s.normals).min(1.0)
        };
        let mut parts: Vec<(Cost, f64)> = Vec::new();
        if self.odin || self.maha {
            let mut c = self.odin_params().cost(s, main);
            let members = self.odin_members.max(1) as f64;
            c.params *= members;
            c.state_bytes *= members;
            for ph in &mut c.phases {
                ph.steps *= members;
            }
            parts.push((c, 1.0 + folds * share));
        }
        if self.mlp {
            parts.push((self.mlp_params().cost(s, main), 1.0 + folds * share));
        }
        if self.iforest {
            parts.push((IsolationForestParams::default().cost(s, main), 1.0));
        }
        if self.ecod {
            parts.push((EcodParams::default().cost(s, main), 1.0));
        }
        let mut out = Cost {
            params: 0.0,
            state_bytes: 0.0,
            step_bytes: 0.0,
            phases: Vec::new(),
            records: 0.0,
        };
        for (c, times) in parts {
            out.params += c.params;
            out.state_bytes += c.state_bytes;
            out.step_bytes = out.step_bytes.max(c.step_bytes);
            for mut ph in c.phases {
                if ph.name != "scoring" {
                    ph.steps *= times;
                }
                out.phases.push(ph);
            }
            out.records = out.records.max(c.records);
        }
        // the gate: every grid point's AUC on every fold (validation normals + the fold's rows)
        let m = self.parts().len() as f64;
        let points = (1..m as usize).fold(1.0, |acc, k| {
            acc * (self.grid as f64 + k as f64) / k as f64
        });
        out.phases.push(Phase {
            name: "gate",
            steps: folds,
            flops: points * s.val * (m + 20.0),
            speed: Speed::new(0.02, 20.0),
        });
        out.records += folds + 1.0;
        out
    }
    fn build(&self, ctx: &super::BuildCtx) -> R<Box<dyn Detector>> {
        let arch = match ctx.main {
            super::Method::MetaLearner(a) => a.clone(),
            _ => MetaLearnerParams::default(),
        };
        Ok(Box::new(Fusion::new(
            self.clone(),
            arch,
            ctx.d,
            ctx.seed,
            ctx.device,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_the_simplex_in_order() {
        let g = simplex_grid(3, 2);
        // compositions of 2 into 3 parts: 6, the first component's weight descending
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], vec![1.0, 0.0, 0.0]);
        assert_eq!(g[5], vec![0.0, 0.0, 1.0]);
        for w in &g {
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // four components, step 0.1: C(13, 3) = 286
        assert_eq!(simplex_grid(4, 10).len(), 286);
        assert_eq!(simplex_grid(1, 10), vec![vec![1.0]]);
    }

    #[test]
    fn group_grid_splits_between_supervised_and_one_class() {
        let parts = [Part::Odin, Part::Maha, Part::Mlp, Part::IForest, Part::Ecod];
        let g = group_grid(&parts, 10);
        assert_eq!(g.len(), 11);
        // λ = 1 first: the supervised mean
        assert_eq!(g[0][0], 1.0 / 3.0);
        assert_eq!(g[0][3], 0.0);
        // λ = 0.3: 0.1 each supervised, 0.35 each one-class
        let w = &g[7];
        assert!((w[1] - 0.1).abs() < 1e-12 && (w[4] - 0.35).abs() < 1e-12, "{w:?}");
        for w in &g {
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // one group only: equal weights
        assert_eq!(group_grid(&[Part::IForest, Part::Ecod], 10), vec![vec![0.5, 0.5]]);
    }

    #[test]
    fn norm_is_median_and_the_5_95_range() {
        // 0..=100: median 50, q5 5, q95 95
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        let n = Norm::of(&v);
        assert_eq!(n.centre, 50.0);
        assert!((n.scale - 90.0).abs() < 1e-12);
        // constant scores: scale 1, never 0
        assert_eq!(Norm::of(&[3.0; 10]).scale, 1.0);
        assert_eq!(Norm::of(&[]).scale, 1.0);
    }

    /// The gate picks the component that separates the left-out families, and ties keep the
    /// earlier grid point.
    #[test]
    fn gate_prefers_what_catches_the_left_out_family() {
        // component 0 ranks fold anomalies below normals, component 1 above
        let labels = vec![false, false, true, true];
        let z = vec![vec![1.0, 2.0, 0.0, 0.5], vec![0.0, 0.1, 3.0, 4.0]];
        let grid = simplex_grid(2, 10);
        let folds = vec![(z.clone(), labels.clone()), (z, labels.clone())];
        let (w, floor, v) = choose_weights(&grid, &[None], &folds, Objective::Mean).unwrap();
        assert_eq!((v, floor), (1.0, None));
        // the chosen point separates perfectly, and it is the first in grid order that does
        let fused = fuse(&w, &folds[0].0, None);
        assert_eq!(crate::eval::roc_auc(&labels, &fused).unwrap(), 1.0);
        // no earlier grid point is perfect
        let gi = grid.iter().position(|g| *g == w).unwrap();
        for g in &grid[..gi] {
            assert!(crate::eval::roc_auc(&labels, &fuse(g, &folds[0].0, None)).unwrap() < 1.0);
        }
        // worst-case objective on folds that disagree
        let f1 = (vec![vec![0.0, 0.0, 1.0, 1.0], vec![0.0, 0.0, 0.0, 0.0]], labels.clone());
        let f2 = (vec![vec![0.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 1.0]], labels);
        let (w, _, v) = choose_weights(&grid, &[None], &[f1, f2], Objective::Worst).unwrap();
        assert_eq!(v, 1.0);
        assert!(w[0] > 0.0 && w[1] > 0.0, "{w:?}");
        // each component finds one anomaly *more normal* than normal (z −40) and catches the
        // other: no weighting of plain scores separates both, floored at the normals' median
        // (evidence only) equal weights do
        let labels = vec![false, false, false, true, true];
        let z = vec![
            vec![0.2, -0.3, 0.1, -40.0, 5.0],
            vec![0.1, 0.3, -0.2, 4.0, -40.0],
        ];
        let (_, floor, v) =
            choose_weights(&grid, &[None, Some(0.0)], &[(z, labels)], Objective::Mean).unwrap();
        assert_eq!((floor, v), (Some(0.0), 1.0));
    }

    /// The squared Mahalanobis distance against a direct 2 × 2 computation (sample covariance
    /// with the ridge, inverted by hand).
    #[test]
    fn mahalanobis_by_hand() {
        let z: Vec<f32> = vec![1.0, 2.0, 2.0, 1.0, 3.0, 5.0, 4.0, 3.0, 0.0, 1.0];
        let g = Gaussian::fit(&z, 2).unwrap();
        let n = 5.0;
        let (mx, my) = ((1.0 + 2.0 + 3.0 + 4.0 + 0.0) / n, (2.0 + 1.0 + 5.0 + 3.0 + 1.0) / n);
        let pts = [(1.0, 2.0), (2.0, 1.0), (3.0, 5.0), (4.0, 3.0), (0.0, 1.0)];
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for (x, y) in pts {
            sxx += (x - mx) * (x - mx);
            sxy += (x - mx) * (y - my);
            syy += (y - my) * (y - my);
        }
        let (sxx, sxy, syy) = (sxx / (n - 1.0), sxy / (n - 1.0), syy / (n - 1.0));
        let ridge = 1e-3 * (sxx + syy) / 2.0 + 1e-12;
        let (a, b, c) = (sxx + ridge, sxy, syy + ridge);
        let det = a * c - b * b;
        let q = |x: f64, y: f64| {
            let (dx, dy) = (x - mx, y - my);
            (c * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / det
        };
        let got = g.score(&[2.5, 2.5, 10.0, -3.0]).unwrap();
        assert!((got[0] - q(2.5, 2.5)).abs() < 1e-9, "{} {}", got[0], q(2.5, 2.5));
        assert!((got[1] - q(10.0, -3.0)).abs() < 1e-9 * q(10.0, -3.0));
        // the mean scores 0; a constant embedding still inverts (the ridge)
        assert!(g.score(&[mx as f32, my as f32]).unwrap()[0] < 1e-9);
        assert!(Gaussian::fit(&[1.0; 8], 2).is_ok());
        assert!(Gaussian::fit(&[1.0, 2.0], 2).is_err());
    }

    #[test]
    fn rejects_settings_naming_the_parameter() {
        let p = FusionParams {
            grid: 0,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "grid");
        let p = FusionParams {
            odin: false,
            maha: false,
            mlp: false,
            iforest: false,
            ecod: false,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "odin");
        let p = FusionParams {
            mlp_epochs: 0,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "mlp_epochs");
    }
}
