//! What cleaning found and did, in a form both people (`Display`) and programs (serde) read.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a column is not a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Named by the user (`--drop`).
    UserDropped,
    /// Identifies a flow, host or row (IP address, `Flow ID`, `Timestamp`, ports, running id):
    /// using it would let a model memorise rows instead of behaviour.
    Identifier,
    /// Text that is neither numeric nor a usable category.
    NonNumeric,
    /// A categorical text column, dropped because one-hot encoding is off.
    Categorical,
    /// Every kept row has the same value.
    Constant,
    /// Every cell is missing.
    AllMissing,
    /// More than half of the cells are missing: dropping the column keeps the rows.
    MostlyMissing,
    /// One value per family: a copy of the label (e.g. UNSW-NB15 `label`), which would leak it.
    LabelLeak,
}

impl DropReason {
    /// A short lower-case name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UserDropped => "user-dropped",
            DropReason::Identifier => "identifier",
            DropReason::NonNumeric => "non-numeric",
            DropReason::Categorical => "categorical (one-hot off)",
            DropReason::Constant => "constant",
            DropReason::AllMissing => "all-missing",
            DropReason::MostlyMissing => "mostly missing",
            DropReason::LabelLeak => "label leak",
        }
    }
}

/// One column that is not used as a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedColumn {
    pub name: String,
    pub reason: DropReason,
    /// Why exactly, e.g. "values look like IP addresses (192.168.10.5)".
    pub detail: String,
}

/// A text column turned into one 0/1 column per value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHotColumn {
    pub name: String,
    pub levels: usize,
}

/// Cell-level problems of one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellCounts {
    pub nan: u64,
    pub pos_inf: u64,
    pub neg_inf: u64,
    pub empty: u64,
    pub question: u64,
    pub non_numeric: u64,
}

impl CellCounts {
    /// All problem cells together.
    pub fn total(&self) -> u64 {
        self.nan + self.pos_inf + self.neg_inf + self.empty + self.question + self.non_numeric
    }

    pub(crate) fn add(&mut self, o: &CellCounts) {
        self.nan += o.nan;
        self.pos_inf += o.pos_inf;
        self.neg_inf += o.neg_inf;
        self.empty += o.empty;
        self.question += o.question;
        self.non_numeric += o.non_numeric;
    }
}

/// Cell problems of one named column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnCells {
    pub column: String,
    #[serde(flatten)]
    pub cells: CellCounts,
}

/// A file that went into the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRead {
    pub path: String,
    pub bytes: u64,
    pub rows: u64,
}

/// What to do with rows that have a missing feature value (NaN, ±Infinity, empty, `?`, text in
/// a numeric column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Drop the row (the reference protocol's choice).
    #[default]
    DropRows,
    /// Keep the row; missing cells are filled with the median of the *training* rows when a
    /// normaliser is fitted (see [`crate::data::Imputer`]).
    ImputeMedian,
}

/// Everything cleaning found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleaningReport {
    pub files: Vec<FileRead>,
    /// Data lines seen (after the header), including the ones removed below.
    pub lines_read: u64,
    pub utf8_bom: bool,
    pub crlf_line_endings: bool,
    pub blank_lines: u64,
    /// Copies of the header line found inside the data (CSE-CIC-IDS2018 has them); removed.
    pub repeated_header_lines: u64,
    /// 1-based line numbers of the first few repeated headers.
    pub repeated_header_at: Vec<u64>,
    /// Lines whose field count differs from the header's, or with a quote left open; removed.
    pub wrong_field_count_lines: u64,
    /// (1-based line number, fields found) of the first few.
    pub wrong_field_count_at: Vec<(u64, usize)>,
    /// Cell problems over all feature columns.
    pub cells: CellCounts,
    /// Cell problems per column (only columns that have any).
    pub cells_by_column: Vec<ColumnCells>,
    /// Labels that had leading or trailing whitespace (stripped).
    pub labels_stripped: u64,
    /// Rows whose label cell was empty; removed.
    pub rows_without_label: u64,
    /// Families removed because they have fewer rows than the minimum.
    pub small_families_dropped: Vec<(String, u64)>,
    pub missing_policy: MissingPolicy,
    /// Kept rows with at least one missing feature value.
    pub rows_with_missing: u64,
    /// Rows removed for missing values (`DropRows`).
    pub rows_dropped_missing: u64,
    /// Rows identical to an earlier row in every used column (features and label).
    pub duplicate_rows: u64,
    /// Whether duplicates were removed.
    pub duplicates_dropped: bool,
    pub dropped_columns: Vec<DroppedColumn>,
    pub one_hot: Vec<OneHotColumn>,
    /// Rows in the final table.
    pub rows_kept: u64,
}

impl fmt::Display for CleaningReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cleaning:")?;
        writeln!(f, "  data lines read          {}", self.lines_read)?;
        if self.utf8_bom {
            writeln!(f, "  UTF-8 byte-order mark    removed")?;
        }
        if self.crlf_line_endings {
            writeln!(f, "  CRLF line endings        handled")?;
        }
        if self.blank_lines > 0 {
            writeln!(f, "  blank lines              {} skipped", self.blank_lines)?;
        }
        let at = |v: &[u64]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "  repeated header lines    {}{}",
            self.repeated_header_lines,
            if self.repeated_header_lines > 0 {
                format!(" removed (lines {}…)", at(&self.repeated_header_at))
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "  wrong field count        {}{}",
            self.wrong_field_count_lines,
            if self.wrong_field_count_lines > 0 {
                let v: Vec<String> = self
                    .wrong_field_count_at
                    .iter()
                    .map(|(l, n)| format!("line {l}: {n} fields"))
                    .collect();
                format!(" removed ({}…)", v.join(", "))
            } else {
                String::new()
            }
        )?;
        let c = &self.cells;
        writeln!(f, "  NaN cells                {}", c.nan)?;
        writeln!(f, "  +Infinity cells          {}", c.pos_inf)?;
        writeln!(f, "  -Infinity cells          {}", c.neg_inf)?;
        writeln!(f, "  empty cells              {}", c.empty)?;
        writeln!(f, "  '?' cells                {}", c.question)?;
        writeln!(f, "  non-numeric cells        {}", c.non_numeric)?;
        for col in self.cells_by_column.iter().take(8) {
            writeln!(
                f,
                "      {:<28} {} missing/invalid",
                col.column,
                col.cells.total()
            )?;
        }
        if self.cells_by_column.len() > 8 {
            writeln!(f, "      … {} more columns", self.cells_by_column.len() - 8)?;
        }
        if self.labels_stripped > 0 {
            writeln!(
                f,
                "  labels with whitespace   {} stripped",
                self.labels_stripped
            )?;
        }
        if self.rows_without_label > 0 {
            writeln!(
                f,
                "  rows without a label     {} removed",
                self.rows_without_label
            )?;
        }
        for (fam, n) in &self.small_families_dropped {
            writeln!(f, "  small family removed     {fam} ({n} rows)")?;
        }
        match self.missing_policy {
            MissingPolicy::DropRows => writeln!(
                f,
                "  rows with missing values {} removed (policy: drop rows)",
                self.rows_dropped_missing
            )?,
            MissingPolicy::ImputeMedian => writeln!(
                f,
                "  rows with missing values {} kept (policy: impute the training median)",
                self.rows_with_missing
            )?,
        }
        writeln!(
            f,
            "  duplicate rows           {}{}",
            self.duplicate_rows,
            if self.duplicates_dropped {
                " removed"
            } else {
                " kept (same features and label as an earlier row)"
            }
        )?;
        write!(f, "  rows kept                {}", self.rows_kept)
    }
}

/// `n` with thousands separators (`1234567` → `1,234,567`).
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The text form of `inspect`.
pub fn inspect_text(t: &super::Table, source: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{source}");
    let _ = writeln!(s, "rows       {}", thousands(t.n_rows));
    let _ = writeln!(s, "features   {} usable", t.n_features);
    let _ = writeln!(
        s,
        "families   {} (column '{}')",
        t.families.len(),
        t.label_column
    );
    let counts = t.family_counts();
    let mut order: Vec<usize> = (0..t.families.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let w = t.families.iter().map(|f| f.len()).max().unwrap_or(0).max(8);
    for i in order {
        let _ = writeln!(
            s,
            "  {:<w$}  {:>10}  {:>5.1}%",
            t.families[i],
            thousands(counts[i]),
            100.0 * counts[i] as f64 / t.n_rows as f64
        );
    }
    if !t.report.one_hot.is_empty() {
        let v: Vec<String> = t
            .report
            .one_hot
            .iter()
            .map(|o| format!("{} ({} values)", o.name, o.levels))
            .collect();
        let _ = writeln!(s, "one-hot    {}", v.join(", "));
    }
    let dc = &t.report.dropped_columns;
    let _ = writeln!(s, "dropped columns ({})", dc.len());
    let w = dc.iter().map(|d| d.name.len()).max().unwrap_or(0).min(40);
    for d in dc {
        let _ = writeln!(
            s,
            "  {:<w$}  {:<14} {}",
            d.name,
            d.reason.as_str(),
            d.detail
        );
    }
    let _ = writeln!(s, "{}", t.report);
    s
}
