//! Splits of a table into train / validation / test rows per family.
//!
//! The first piece of the experiment layer: the seeded per-family split of the reference
//! protocol (`../shared/reference/PROTOCOL.md` §4), bit for bit. Roles, pools, episodes and
//! the experiment file build on it.

mod episodes;
mod roles;
mod spec;
mod task;

pub use episodes::{Curriculum, Episode, EpisodeSampler, EpisodeSpec, Priority};
pub use roles::{FewShot, HeldOut, ResolvedRoles, Roles, Rotation};
pub use spec::{Fraction, PoolSpec, SplitSpec};
pub use task::{build_task, Pool, Task};

use crate::data::{FamilyId, Table};
use crate::rng::SplitMix64;

/// The rows of one family, split three ways; every list is in permutation order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FamilySplit {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// The protocol's permutation of `0..n` for `seed` and family index `family`:
/// SplitMix64 seeded with `seed · 1,000,003 + family` (mod 2⁶⁴) driving Fisher–Yates.
pub fn permutation(n: usize, seed: u64, family: u64) -> Vec<usize> {
    let mut g = SplitMix64::new(seed.wrapping_mul(1_000_003).wrapping_add(family));
    let mut p: Vec<usize> = (0..n).collect();
    g.shuffle(&mut p);
    p
}

/// Splits every family of `table` (rows in ascending order, permuted as in
/// [`permutation`]) into `floor(2n/3)` train, `floor(n/6)` validation and the rest test rows.
/// Indexed by [`FamilyId`].
pub fn protocol_split(table: &Table, seed: u64) -> Vec<FamilySplit> {
    split_with(table, seed, &SplitSpec::default())
}

/// [`protocol_split`] with other fractions: `floor(n·train)`, `floor(n·val)`, the rest.
pub fn split_with(table: &Table, seed: u64, spec: &SplitSpec) -> Vec<FamilySplit> {
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); table.families.len()];
    for (r, &f) in table.family.iter().enumerate() {
        rows[f as usize].push(r);
    }
    rows.iter()
        .enumerate()
        .map(|(i, rows_f)| {
            let n = rows_f.len();
            let perm: Vec<usize> = permutation(n, seed, i as u64)
                .into_iter()
                .map(|k| rows_f[k])
                .collect();
            // floor(n·num/den) in u128, which no u64 fraction overflows; ≤ n as num ≤ den
            let part = |(num, den): Fraction| {
                let k = n as u128 * u128::from(num) / u128::from(den.max(1));
                usize::try_from(k).unwrap_or(n).min(n)
            };
            let n_train = part(spec.train);
            let n_val = part(spec.val).min(n - n_train);
            FamilySplit {
                train: perm[..n_train].to_vec(),
                val: perm[n_train..n_train + n_val].to_vec(),
                test: perm[n_train + n_val..].to_vec(),
            }
        })
        .collect()
}

/// The text the protocol's split digest is taken over: `"{family},{part},{row}\n"` for
/// families in order, parts train, val, test, rows in permutation order.
pub fn digest_text(table: &Table, split: &[FamilySplit]) -> String {
    let mut s = String::new();
    for (f, sp) in split.iter().enumerate() {
        let name = &table.families[f as FamilyId as usize];
        for (part, rows) in [("train", &sp.train), ("val", &sp.val), ("test", &sp.test)] {
            for r in rows {
                s.push_str(&format!("{name},{part},{r}\n"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_the_reference_fixture() {
        // protocol_fixtures.json "permutation_n10_seed0_fam0"
        let fx: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/reference/results/protocol_fixtures.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let want: Vec<usize> =
            serde_json::from_value(fx["permutation_n10_seed0_fam0"].clone()).unwrap();
        assert_eq!(permutation(10, 0, 0), want);
    }
}
