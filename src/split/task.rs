//! The rows of one (seed, rotation): training sets, the validation pool, test blocks and
//! checkpoint pools, formed as in `../shared/reference/PROTOCOL.md` §5–§8 (the `LofoBalanced`
//! protocol), generalised to several normal families, several held-out families and caps.
//! Only row indices live here; scaling happens where features are gathered.

use super::{FamilySplit, PoolSpec, Rotation};
use crate::data::FamilyId;

/// Labelled rows: `label` 0 = normal, 1 = anomaly; `family` of each row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub rows: Vec<usize>,
    pub label: Vec<u8>,
    pub family: Vec<FamilyId>,
}

impl Pool {
    /// Rows per class: (normal, anomaly).
    pub fn per_class(&self) -> (usize, usize) {
        let a = self.label.iter().filter(|&&l| l == 1).count();
        (self.label.len() - a, a)
    }

    /// A balanced block: the first `m` normals then the first `m` anomalies,
    /// `m = min(|normals|, |anomalies|, cap)`.
    fn balanced(
        normals: &[(usize, FamilyId)],
        anomalies: &[(usize, FamilyId)],
        cap: usize,
    ) -> Pool {
        let m = normals.len().min(anomalies.len()).min(cap);
        let mut p = Pool::default();
        for (label, src) in [(0u8, normals), (1u8, anomalies)] {
            for &(r, f) in &src[..m] {
                p.rows.push(r);
                p.label.push(label);
                p.family.push(f);
            }
        }
        p
    }
}

/// Everything one (seed, rotation) trains and is evaluated on.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub seed: u64,
    pub rotation: Rotation,
    /// Rows the scaler is fitted on: train rows of the normal and seen families (never a
    /// held-out family's).
    pub scaler_rows: Vec<usize>,
    pub normal_train: Vec<usize>,
    pub normal_val: Vec<usize>,
    pub normal_test: Vec<usize>,
    /// The first `shots` train rows of each seen family (permutation order).
    pub few_shot: Vec<(FamilyId, Vec<usize>)>,
    /// All train rows of each seen family (for methods that are allowed more labels).
    pub seen_train: Vec<(FamilyId, Vec<usize>)>,
    /// Seen families' validation rows, round-robin, balanced with normal validation rows.
    pub val_pool: Pool,
    /// One balanced test block per held-out family.
    pub test: Vec<(FamilyId, Pool)>,
    /// Balanced validation blocks per family (held-out and seen) for checkpoint curves;
    /// logging only, never used for a choice.
    pub checkpoint: Vec<(FamilyId, Pool)>,
}

/// Forms the task of one rotation from the per-family splits (indexed by family id).
pub fn build_task(
    splits: &[FamilySplit],
    normal: &[FamilyId],
    rotation: &Rotation,
    seed: u64,
    shots: usize,
    caps: &PoolSpec,
) -> Task {
    let tag = |rows: &[usize], f: FamilyId| rows.iter().map(|&r| (r, f)).collect::<Vec<_>>();
    let mut normal_train = Vec::new();
    let mut normal_val = Vec::new();
    let mut normal_test = Vec::new();
    let mut nv: Vec<(usize, FamilyId)> = Vec::new();
    let mut nt: Vec<(usize, FamilyId)> = Vec::new();
    for &f in normal {
        let s = &splits[f as usize];
        normal_train.extend_from_slice(&s.train);
        normal_val.extend_from_slice(&s.val);
        normal_test.extend_from_slice(&s.test);
        nv.extend(tag(&s.val, f));
        nt.extend(tag(&s.test, f));
    }
    let mut scaler_rows = normal_train.clone();
    for &f in &rotation.seen {
        scaler_rows.extend_from_slice(&splits[f as usize].train);
    }
    let few_shot = rotation
        .seen
        .iter()
        .map(|&f| {
            let t = &splits[f as usize].train;
            (f, t[..t.len().min(shots)].to_vec())
        })
        .collect();
    let seen_train = rotation
        .seen
        .iter()
        .map(|&f| (f, splits[f as usize].train.clone()))
        .collect();
    // Validation candidates: rank 0 of each seen family, then rank 1, … (families in order).
    let mut cand = Vec::new();
    let longest = rotation
        .seen
        .iter()
        .map(|&f| splits[f as usize].val.len())
        .max()
        .unwrap_or(0);
    for r in 0..longest {
        for &f in &rotation.seen {
            if let Some(&row) = splits[f as usize].val.get(r) {
                cand.push((row, f));
            }
        }
    }
    let val_pool = Pool::balanced(&nv, &cand, caps.val_per_class);
    let test = rotation
        .held_out
        .iter()
        .map(|&f| {
            (
                f,
                Pool::balanced(&nt, &tag(&splits[f as usize].test, f), caps.test_per_class),
            )
        })
        .collect();
    let checkpoint = rotation
        .held_out
        .iter()
        .chain(&rotation.seen)
        .map(|&f| {
            (
                f,
                Pool::balanced(
                    &nv,
                    &tag(&splits[f as usize].val, f),
                    caps.checkpoint_per_class,
                ),
            )
        })
        .collect();
    Task {
        seed,
        rotation: rotation.clone(),
        scaler_rows,
        normal_train,
        normal_val,
        normal_test,
        few_shot,
        seen_train,
        val_pool,
        test,
        checkpoint,
    }
}
