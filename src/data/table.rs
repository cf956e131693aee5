//! The cleaned table every later layer builds on.

use super::report::CleaningReport;

/// Index of a family in [`Table::families`].
pub type FamilyId = u32;

/// A cleaned tabular dataset: `f32` features (row-major), one family per row, names, and what
/// cleaning did.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `n_rows × n_features`, row-major. May hold NaN only under
    /// [`MissingPolicy::ImputeMedian`](super::MissingPolicy::ImputeMedian).
    pub features: Vec<f32>,
    pub n_rows: usize,
    pub n_features: usize,
    /// One name per feature column; one-hot columns are named `column=value`.
    pub feature_names: Vec<String>,
    /// Family of each row, an index into `families`.
    pub family: Vec<FamilyId>,
    /// Family names in ascending byte order (the reference protocol's order).
    pub families: Vec<String>,
    /// The 0-based data row (file order, header and removed lines not counted) each row came from.
    pub source_row: Vec<u64>,
    /// Name of the column the families came from.
    pub label_column: String,
    /// What cleaning found and did.
    pub report: CleaningReport,
}

impl Table {
    /// The features of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Rows per family, indexed by [`FamilyId`].
    pub fn family_counts(&self) -> Vec<usize> {
        let mut c = vec![0usize; self.families.len()];
        for &f in &self.family {
            c[f as usize] += 1;
        }
        c
    }

    /// The id of a family by name.
    pub fn family_id(&self, name: &str) -> Option<FamilyId> {
        self.families
            .iter()
            .position(|f| f == name)
            .map(|i| i as FamilyId)
    }

    /// Row indices of one family, ascending.
    pub fn rows_of(&self, family: FamilyId) -> Vec<usize> {
        (0..self.n_rows)
            .filter(|&i| self.family[i] == family)
            .collect()
    }

    /// Gathers the given rows into a new row-major buffer.
    pub fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.n_features);
        for &r in rows {
            out.extend_from_slice(self.row(r));
        }
        out
    }

    /// Number of NaN cells (non-zero only under the impute policy).
    pub fn missing_cells(&self) -> usize {
        self.features.iter().filter(|x| x.is_nan()).count()
    }
}
