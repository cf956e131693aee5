//! Split fractions and pool caps.

use serde::{Deserialize, Serialize};

/// A fraction `numerator / denominator`, exact (the protocol takes `floor(2n/3)`).
pub type Fraction = (u64, u64);

/// Per-family split sizes: `floor(n·train)`, `floor(n·val)`, the rest is test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    #[serde(default = "two_thirds")]
    pub train: Fraction,
    #[serde(default = "one_sixth")]
    pub val: Fraction,
}

fn two_thirds() -> Fraction {
    (2, 3)
}
fn one_sixth() -> Fraction {
    (1, 6)
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            train: (2, 3),
            val: (1, 6),
        }
    }
}

/// Caps of the evaluation pools (spec §1.12–1.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Validation pool: at most this many rows per class.
    #[serde(default = "cap_25k")]
    pub val_per_class: usize,
    /// Test block: at most this many rows per class and held-out family.
    #[serde(default = "cap_25k")]
    pub test_per_class: usize,
    /// Checkpoint pools (pre / inner / outer): at most this many rows per class and family.
    #[serde(default = "cap_4k")]
    pub checkpoint_per_class: usize,
    /// Histogram bins of the checkpoint score histograms.
    #[serde(default = "bins_60")]
    pub histogram_bins: usize,
}

fn cap_25k() -> usize {
    25_000
}
fn cap_4k() -> usize {
    4_000
}
fn bins_60() -> usize {
    60
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            val_per_class: 25_000,
            test_per_class: 25_000,
            checkpoint_per_class: 4_000,
            histogram_bins: 60,
        }
    }
}
