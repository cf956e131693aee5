//! Isolation Forest (Liu, Ting & Zhou, ICDM 2008) as scikit-learn's
//! `IsolationForest(n_estimators=100, max_samples='auto', max_features=1.0, bootstrap=False)`,
//! the reference's `iforest` baseline (`refbench/classical.py`).
//!
//! Each tree is grown on ψ = min(256, n) training rows drawn without replacement, down to the
//! height limit ⌈log₂ ψ⌉. At a node a feature is drawn uniformly among the features that are not
//! constant on the node's rows (scikit-learn's `ExtraTreeRegressor(max_features=1)` random
//! splitter: a feature whose max ≤ min + 1e-7 counts as constant), and the threshold uniformly in
//! [min, max) of that feature on the node's rows (a draw that lands on max becomes min); rows with
//! `x ≤ threshold` go left. A node with fewer than 2 rows or with every feature constant is a leaf.
//! The path length of a row is its leaf's depth plus c(n_leaf), with scikit-learn's
//! `_average_path_length` c(n) (0 for n ≤ 1, 1 for n = 2, 2(ln(n−1) + γ) − 2(n−1)/n otherwise),
//! and the score is `-score_samples` = 2^(−E[h(x)] / c(ψ)): higher = more anomalous.
//!
//! The random numbers come from [`SplitMix64`], so forests differ from scikit-learn's for the
//! same seed (the distribution is the same). Scores of a fitted model are deterministic and do
//! not depend on the number of scoring threads.

use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::FitError;

/// Isolation Forest settings (defaults = scikit-learn's, as the reference uses them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsolationForestParams {
    /// Number of isolation trees (scikit-learn: 100).
    pub n_estimators: usize,
    /// Training rows drawn without replacement for each tree; 0 = auto = min(256, n); capped at n (scikit-learn: 'auto').
    pub max_samples: usize,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: 0,
        }
    }
}

/// Largest accepted `n_estimators`: beyond it the model (and its JSON) grows without any gain in
/// the score's precision that matters for ranking.
pub const MAX_ESTIMATORS: usize = 100_000;
/// Largest accepted explicit `max_samples`: a tree holds up to 2ψ nodes and the point of the
/// method is small subsamples (the paper's ψ = 256).
pub const MAX_SAMPLES: usize = 10_000_000;

impl IsolationForestParams {
    /// `Err((parameter, message))` for a value out of range.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.n_estimators == 0 {
            return Err(("n_estimators", "must be at least 1 (got 0)".into()));
        }
        if self.n_estimators > MAX_ESTIMATORS {
            return Err((
                "n_estimators",
                format!(
                    "must be at most {MAX_ESTIMATORS} (got {}): more trees only make the model bigger and slower",
                    self.n_estimators
                ),
            ));
        }
        if self.max_samples > MAX_SAMPLES {
            return Err((
                "max_samples",
                format!(
                    "must be at most {MAX_SAMPLES} (got {}), or 0 for auto = min(256, n): isolation works on small subsamples",
                    self.max_samples
                ),
            ));
        }
        Ok(())
    }
}

/// Marks a leaf in [`Node::feature`].
const LEAF: u32 = u32::MAX;

/// scikit-learn's `FEATURE_THRESHOLD`: a feature with max ≤ min + 1e-7 on a node is constant.
const FEATURE_THRESHOLD: f64 = 1e-7;

/// One node of an isolation tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    /// Split feature, or `LEAF`.
    #[serde(rename = "f")]
    feature: u32,
    /// Rows with `x[feature] ≤ threshold` go to `left`, the others to `left + 1`. Stored as the
    /// largest f32 ≤ the f64 threshold drawn, which sends every f32 input the same way.
    #[serde(rename = "t")]
    threshold: f32,
    /// Index of the left child (the right child is next to it); for a leaf, the number of
    /// training rows that reached it.
    #[serde(rename = "l")]
    left: u32,
}

/// A fitted Isolation Forest. Loading checks the tree structure, so a damaged file is a
/// deserialisation error, not a panic later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "ForestFile")]
pub struct IsolationForestModel {
    /// Number of features.
    d: usize,
    /// Rows per tree, ψ.
    psi: usize,
    /// The trees, each a node list with the root first and children after their parent. Only
    /// integers and f32 are stored, so a JSON round trip keeps the model exactly.
    trees: Vec<Vec<Node>>,
}

/// [`IsolationForestModel`] as read from a file, before its checks.
#[derive(Deserialize)]
struct ForestFile {
    d: usize,
    psi: usize,
    trees: Vec<Vec<Node>>,
}

impl TryFrom<ForestFile> for IsolationForestModel {
    type Error = String;

    fn try_from(f: ForestFile) -> Result<Self, String> {
        let bad = |m: &str| Err(format!("not a valid Isolation Forest model: {m}"));
        if f.d == 0 || f.psi == 0 || f.trees.is_empty() {
            return bad("d, ψ and the number of trees must be at least 1");
        }
        for t in &f.trees {
            if t.is_empty() {
                return bad("an empty tree");
            }
            for (k, node) in t.iter().enumerate() {
                let l = node.left as usize;
                let ok = if node.feature == LEAF {
                    l <= f.psi
                } else {
                    // children come after their parent, so every path ends at a leaf
                    (node.feature as usize) < f.d && l > k && l + 1 < t.len()
                };
                if !ok {
                    return bad("a node points outside its tree");
                }
            }
        }
        Ok(IsolationForestModel {
            d: f.d,
            psi: f.psi,
            trees: f.trees,
        })
    }
}

/// c(n): the average path length of an unsuccessful search in a binary search tree of n keys,
/// exactly as scikit-learn's `_average_path_length` (0 for n ≤ 1, 1 for n = 2).
pub fn average_path_length(n: usize) -> f64 {
    // np.euler_gamma
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    if n <= 1 {
        0.0
    } else if n == 2 {
        1.0
    } else {
        let n = n as f64;
        2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
    }
}

/// The largest f32 that is ≤ `t` (t finite and within the f32 range).
fn f32_at_or_below(t: f64) -> f32 {
    let c = t as f32;
    if (c as f64) <= t {
        c
    } else if c == 0.0 {
        -f32::from_bits(1)
    } else if c > 0.0 {
        f32::from_bits(c.to_bits() - 1)
    } else {
        f32::from_bits(c.to_bits() + 1)
    }
}

/// A node waiting to be split: its slot, its rows `[start, end)` of the subsample, its depth and
/// how many of the leading entries of `order` are features known to be constant on it.
struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    order: Vec<u32>,
    n_const: usize,
}

/// Grows one tree on the subsample `sub` (ψ rows, row-major, d columns).
fn grow_tree(sub: &[f32], d: usize, max_depth: usize, rng: &mut SplitMix64) -> Vec<Node> {
    let psi = sub.len() / d;
    let mut rows: Vec<u32> = (0..psi as u32).collect();
    let leaf = |n: usize| Node {
        feature: LEAF,
        threshold: 0.0,
        left: n as u32,
    };
    let mut nodes = vec![leaf(psi)];
    let mut stack = vec![Pending {
        node: 0,
        start: 0,
        end: psi,
        depth: 0,
        order: (0..d as u32).collect(),
        n_const: 0,
    }];
    while let Some(mut p) = stack.pop() {
        let n = p.end - p.start;
        if p.depth >= max_depth || n < 2 {
            nodes[p.node] = leaf(n);
            continue;
        }
        let here = &mut rows[p.start..p.end];
        // Draw features among those not known to be constant until one is not constant here.
        let mut split = None;
        while p.n_const < d {
            let k = p.n_const + rng.below((d - p.n_const) as u64) as usize;
            let f = p.order[k] as usize;
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &r in here.iter() {
                let v = sub[r as usize * d + f];
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi as f64 <= lo as f64 + FEATURE_THRESHOLD {
                p.order.swap(k, p.n_const);
                p.n_const += 1;
                continue;
            }
            let (lo64, hi64) = (lo as f64, hi as f64);
            let mut t = (hi64 - lo64) * rng.next_f64() + lo64;
            if t == hi64 {
                t = lo64;
            }
            split = Some((f, f32_at_or_below(t)));
            break;
        }
        let Some((f, t)) = split else {
            // every feature is constant on this node
            nodes[p.node] = leaf(n);
            continue;
        };
        // Partition: rows with x ≤ t first. Both sides are non-empty (min ≤ t < max).
        let mut m = 0;
        for q in 0..here.len() {
            if sub[here[q] as usize * d + f] <= t {
                here.swap(q, m);
                m += 1;
            }
        }
        let left = nodes.len();
        nodes[p.node] = Node {
            feature: f as u32,
            threshold: t,
            left: left as u32,
        };
        nodes.push(leaf(0));
        nodes.push(leaf(0));
        stack.push(Pending {
            node: left + 1,
            start: p.start + m,
            end: p.end,
            depth: p.depth + 1,
            order: p.order.clone(),
            n_const: p.n_const,
        });
        stack.push(Pending {
            node: left,
            start: p.start,
            end: p.start + m,
            depth: p.depth + 1,
            order: p.order,
            n_const: p.n_const,
        });
    }
    nodes
}

impl IsolationForestModel {
    /// Fits on `x` (row-major, `d` columns, finite values). `progress(done, total)` is called
    /// after each tree; a set `stop` flag ends the fit with [`FitError::Stopped`] before the next
    /// tree (a tree takes well under a millisecond).
    pub fn fit(
        p: &IsolationForestParams,
        x: &[f32],
        d: usize,
        seed: u64,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, FitError> {
        p.validate()
            .map_err(|(k, m)| FitError::Invalid(format!("{k}: {m}")))?;
        let n = super::check_training(x, d)?;
        let psi = if p.max_samples == 0 {
            n.min(256)
        } else {
            p.max_samples.min(n)
        };
        // ⌈log₂ max(ψ, 2)⌉ as an integer
        let max_depth = (usize::BITS - (psi.max(2) - 1).leading_zeros()) as usize;
        let mut rng = SplitMix64::new(seed);
        // A permutation of the rows; each tree takes a fresh uniform ψ-subset of it by a partial
        // Fisher–Yates shuffle.
        let mut perm: Vec<u32> = (0..n as u32).collect();
        let mut sub = vec![0f32; psi * d];
        let mut trees = Vec::with_capacity(p.n_estimators);
        for t in 0..p.n_estimators {
            if stop.load(Ordering::Relaxed) {
                return Err(FitError::Stopped);
            }
            for i in 0..psi {
                let j = i + rng.below((n - i) as u64) as usize;
                perm.swap(i, j);
                let r = perm[i] as usize;
                sub[i * d..(i + 1) * d].copy_from_slice(&x[r * d..(r + 1) * d]);
            }
            trees.push(grow_tree(&sub, d, max_depth, &mut rng));
            progress(t + 1, p.n_estimators);
        }
        Ok(IsolationForestModel { d, psi, trees })
    }

    /// Number of features the model was fitted on.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Rows per tree, ψ.
    pub fn max_samples(&self) -> usize {
        self.psi
    }

    /// Number of trees.
    pub fn n_estimators(&self) -> usize {
        self.trees.len()
    }

    /// Scores of the rows of `x` (row-major, [`Self::dim`] columns; a trailing partial row is
    /// ignored): higher = more anomalous, 2^(−E[h(x)]/c(ψ)) in (0, 1]. A row with a NaN scores
    /// NaN. Uses all available cores; the numbers do not depend on their count.
    pub fn score(&self, x: &[f32]) -> Vec<f64> {
        self.score_threads(x, crate::nn::frozen_threads())
    }

    /// [`Self::score`] on at most `threads` threads (0 or 1: the calling thread).
    pub fn score_threads(&self, x: &[f32], threads: usize) -> Vec<f64> {
        let d = self.d;
        let denom = self.trees.len() as f64 * average_path_length(self.psi);
        let paths: Vec<Vec<f64>> = self.trees.iter().map(|t| leaf_paths(t)).collect();
        super::par_rows(x.len() / d.max(1), threads, 512, &|r| {
            let row = &x[r * d..(r + 1) * d];
            if row.iter().any(|v| v.is_nan()) {
                return f64::NAN;
            }
            let mut depth = 0.0;
            for (tree, path) in self.trees.iter().zip(&paths) {
                let mut k = 0;
                loop {
                    let node = &tree[k];
                    if node.feature == LEAF {
                        depth += path[k];
                        break;
                    }
                    k = node.left as usize
                        + usize::from(row[node.feature as usize] > node.threshold);
                }
            }
            if denom != 0.0 {
                2f64.powf(-(depth / denom))
            } else {
                // ψ = 1: scikit-learn sets the score to 2^-1
                0.5
            }
        })
    }
}

/// Path length of each leaf of a tree (0 for inner nodes): depth + c(n_leaf), summed as
/// scikit-learn does (`compute_node_depths()`, root = 1, + c(n) − 1).
fn leaf_paths(tree: &[Node]) -> Vec<f64> {
    let mut depth = vec![0usize; tree.len()];
    let mut path = vec![0.0; tree.len()];
    for (k, node) in tree.iter().enumerate() {
        if node.feature == LEAF {
            path[k] = ((depth[k] + 1) as f64 + average_path_length(node.left as usize)) - 1.0;
        } else {
            // children come after their parent
            let l = node.left as usize;
            depth[l] = depth[k] + 1;
            depth[l + 1] = depth[k] + 1;
        }
    }
    path
}



impl super::MethodSpec for IsolationForestParams {
    fn info() -> super::MethodInfo {
        super::MethodInfo {
            title: "Isolation Forest",
            paper: "Liu, Ting & Zhou, Isolation Forest (ICDM 2008); as scikit-learn's IsolationForest (reference refbench/classical.py)",
            labels: super::Labels::NormalsOnly,
            summary: "Random axis-parallel splits isolate rows; rows isolated in few splits are anomalous. Score 2^(−E[h(x)]/c(ψ)) (scikit-learn's −score_samples).",
        }
    }
    fn params() -> &'static [super::ParamInfo] {
        use super::ParamInfo as P;
        const PARAMS: &[P] = &[
            P::int("n_estimators", 1, MAX_ESTIMATORS as u64, "number of isolation trees (scikit-learn: 100)"),
            P::int("max_samples", 0, MAX_SAMPLES as u64, "rows drawn without replacement per tree; 0 = auto = min(256, n) (scikit-learn: auto)"),
        ];
        PARAMS
    }
    fn validate(&self) -> Result<(), super::ParamError> {
        IsolationForestParams::validate(self).map_err(super::ParamError::from)
    }
    fn name(&self) -> String {
        "iforest".into()
    }
    fn cost(&self, s: &super::cost::UnitSizes, _main: &super::Method) -> super::cost::Cost {
        use super::cost::*;
        let psi = if self.max_samples == 0 {
            s.normals.min(256.0)
        } else {
            (self.max_samples as f64).min(s.normals)
        }
        .max(2.0);
        let trees = self.n_estimators as f64;
        let depth = psi.log2().ceil();
        // a tree holds up to 2ψ nodes (feature, threshold, children, size: ~24 bytes)
        let nodes = trees * 2.0 * psi;
        Cost {
            params: 2.0 * nodes,
            state_bytes: 24.0 * nodes,
            // the tree being grown: its sample's rows and index buffers
            step_bytes: psi * (s.d * F32 + 16.0),
            phases: vec![
                Phase {
                    name: "trees",
                    // per level, each row is compared and moved (~8 operations), the split
                    // feature's min and max scanned
                    steps: trees,
                    flops: 8.0 * psi * depth,
                    speed: TREE_SPEED,
                },
                Phase {
                    name: "scoring",
                    steps: 1.0,
                    flops: 8.0 * (s.checkpoint + s.scored()) * trees * depth,
                    speed: TREE_SPEED,
                },
            ],
            records: checkpoint_records(s) + final_records(s),
        }
    }
    fn build(&self, ctx: &super::BuildCtx) -> Result<Box<dyn super::Detector>, super::DetectError> {
        super::fitted::<IsolationForestModel>(self.clone(), super::MethodSpec::name(self), ctx.seed)
    }
}

/// Speed of tree growing and traversal (branchy, memory-bound; see [`super::cost::Speed`]),
/// fitted by `heldout bench estimate`.
const TREE_SPEED: super::cost::Speed = super::cost::Speed::new(0.02, 20.0);

impl super::Fit for IsolationForestModel {
    type Params = IsolationForestParams;
    fn fit(
        p: &IsolationForestParams,
        data: &super::TrainView,
        seed: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Self, super::DetectError> {
        let mut progress = super::step_progress(&mut *ctx.emit, "trees");
        Ok(IsolationForestModel::fit(
            p,
            &data.normals,
            data.d,
            seed,
            ctx.stop,
            &mut progress,
        )?)
    }
    fn score(&self, x: &[f32]) -> Result<Vec<f64>, super::DetectError> {
        Ok(IsolationForestModel::score(self, x))
    }
    fn save(&self, path: &std::path::Path) -> Result<(), super::DetectError> {
        super::save_json(self, path)
    }
    const MODEL_EXTENSION: &'static str = "json";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(x: &[f32], d: usize, seed: u64) -> IsolationForestModel {
        IsolationForestModel::fit(
            &IsolationForestParams::default(),
            x,
            d,
            seed,
            &AtomicBool::new(false),
            &mut |_, _| {},
        )
        .unwrap()
    }

    /// A 2-D Gaussian-ish cluster of `n` rows around the origin.
    fn cluster(n: usize, seed: u64) -> Vec<f32> {
        let mut g = SplitMix64::new(seed);
        (0..2 * n).map(|_| g.next_normal() as f32).collect()
    }

    #[test]
    fn c_of_n_matches_scikit_learn() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // sklearn.ensemble._iforest._average_path_length([3, 10, 256])
        let want = [
            1.207_392_357_589_623,
            3.748_880_484_475_505,
            10.244_770_920_119_917,
        ];
        for (n, w) in [3, 10, 256].into_iter().zip(want) {
            assert!((average_path_length(n) - w).abs() <= 1e-14 * w, "c({n})");
        }
    }

    #[test]
    fn threshold_rounding_keeps_every_f32_on_its_side() {
        for t in [0.1f64, -0.1, 1e-30, -1e-30, 0.0, 3.0, 0.3333333333333333] {
            let c = f32_at_or_below(t);
            assert!(c as f64 <= t);
            let up = if c >= 0.0 {
                f32::from_bits(c.to_bits() + 1)
            } else {
                f32::from_bits(c.to_bits() - 1)
            };
            let up = if c == 0.0 && c.is_sign_negative() {
                f32::from_bits(1)
            } else {
                up
            };
            assert!(up as f64 > t, "{t}: {c} {up}");
        }
    }

    #[test]
    fn far_point_scores_highest() {
        let mut x = cluster(500, 1);
        x.extend([8.0, -8.0]);
        let m = fit(&x, 2, 7);
        let s = m.score(&x);
        let top = s
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(top, 500);
        assert!(s.iter().all(|v| *v > 0.0 && *v <= 1.0));
        assert_eq!(m.max_samples(), 256);
        // height limit ⌈log₂ 256⌉ = 8: at most 2^9 − 1 nodes per tree
        assert!(m.trees.iter().all(|t| t.len() <= 511));
    }

    #[test]
    fn same_seed_same_scores_any_thread_count() {
        let x = cluster(3000, 2);
        let a = fit(&x, 2, 11);
        let b = fit(&x, 2, 11);
        let c = fit(&x, 2, 12);
        let s1 = a.score_threads(&x, 1);
        assert!(s1 == b.score_threads(&x, 1));
        assert!(s1 == a.score_threads(&x, 3));
        assert!(s1 == a.score_threads(&x, 8));
        assert!(s1 != c.score_threads(&x, 1));
        // a JSON round trip keeps the model and the scores exactly
        let j = serde_json::to_string(&a).unwrap();
        let back: IsolationForestModel = serde_json::from_str(&j).unwrap();
        assert!(back.trees == a.trees);
        assert!(back.score_threads(&x, 2) == s1);
        // a damaged file does not load
        let mut v: serde_json::Value = serde_json::to_value(&a).unwrap();
        v["trees"][0][0]["l"] = serde_json::json!(0);
        let e = serde_json::from_value::<IsolationForestModel>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid Isolation Forest model"), "{e}");
    }

    #[test]
    fn constant_and_duplicate_rows() {
        // all rows equal: the root is a leaf with c(ψ), the score is 2^-1
        let x = vec![1.5f32; 3 * 40];
        let m = fit(&x, 3, 0);
        assert!(m.trees.iter().all(|t| t.len() == 1));
        for s in m.score(&x) {
            assert!((s - 0.5).abs() < 1e-12);
        }
        // a constant column is never split on
        let mut g = SplitMix64::new(3);
        let x: Vec<f32> = (0..300).flat_map(|_| [2.0, g.next_f64() as f32]).collect();
        let m = fit(&x, 2, 0);
        for t in &m.trees {
            assert!(t.iter().all(|n| n.feature == LEAF || n.feature == 1));
        }
        // one training row: ψ = 1, c(1) = 0, score 0.5 like scikit-learn
        let m = fit(&[1.0, 2.0], 2, 0);
        assert_eq!(m.score(&[1.0, 2.0, 5.0, 5.0]), vec![0.5, 0.5]);
    }

    #[test]
    fn leaf_path_counts_unsplit_rows() {
        // two distinct rows, ψ = 2, height limit 1: root split, leaves of one row at depth 1
        let m = fit(&[0.0, 1.0], 1, 0);
        assert_eq!(m.trees[0].len(), 3);
        // E[h] = 1, c(2) = 1 → 2^-1
        assert_eq!(m.score(&[0.0, 1.0, 0.5]), vec![0.5; 3]);
        // max_samples caps at n and an explicit value is used
        let x = cluster(100, 4);
        let p = IsolationForestParams {
            n_estimators: 3,
            max_samples: 16,
        };
        let m = IsolationForestModel::fit(&p, &x, 2, 0, &AtomicBool::new(false), &mut |_, _| {})
            .unwrap();
        assert_eq!((m.max_samples(), m.n_estimators()), (16, 3));
        assert!(m.trees.iter().all(|t| t.len() <= 31));
    }

    #[test]
    fn nan_rows_score_nan() {
        let x = cluster(100, 5);
        let m = fit(&x, 2, 0);
        let s = m.score(&[f32::NAN, 0.0, 0.0, 0.0]);
        assert!(s[0].is_nan() && s[1].is_finite());
    }

    #[test]
    fn invalid_params_and_data_are_errors() {
        let p = IsolationForestParams {
            n_estimators: 0,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "n_estimators");
        let p = IsolationForestParams {
            n_estimators: MAX_ESTIMATORS + 1,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "n_estimators");
        let p = IsolationForestParams {
            max_samples: MAX_SAMPLES + 1,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "max_samples");
        let ok = IsolationForestParams::default();
        let stop = AtomicBool::new(false);
        let bad =
            |x: &[f32], d| match IsolationForestModel::fit(&ok, x, d, 0, &stop, &mut |_, _| {}) {
                Err(FitError::Invalid(m)) => m,
                other => panic!("{other:?}"),
            };
        assert!(bad(&[], 2).contains("no training rows"));
        assert!(bad(&[1.0], 0).contains("d = 0"));
        assert!(bad(&[1.0, 2.0, 3.0], 2).contains("multiple"));
        assert!(bad(&[1.0, f32::NAN], 2).contains("row 0 feature 1"));
        assert!(bad(&[1.0, 2.0, f32::INFINITY, 0.0], 2).contains("row 1 feature 0"));
        // unknown fields are rejected, missing ones default
        assert!(serde_json::from_str::<IsolationForestParams>(r#"{"trees": 3}"#).is_err());
        let p: IsolationForestParams = serde_json::from_str(r#"{"n_estimators": 7}"#).unwrap();
        assert_eq!((p.n_estimators, p.max_samples), (7, 0));
    }

    #[test]
    fn stop_flag_and_progress() {
        let x = cluster(1000, 6);
        let stop = AtomicBool::new(false);
        let mut calls = Vec::new();
        let r = IsolationForestModel::fit(
            &IsolationForestParams::default(),
            &x,
            2,
            0,
            &stop,
            &mut |done, total| {
                calls.push((done, total));
                if done == 10 {
                    stop.store(true, Ordering::Relaxed);
                }
            },
        );
        assert_eq!(r.unwrap_err(), FitError::Stopped);
        assert_eq!(calls.len(), 10);
        assert_eq!(calls[9], (10, 100));
    }
}
