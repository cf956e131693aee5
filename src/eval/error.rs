//! Errors of the metrics layer. Each message names the problem (and, for files, the file, the
//! column and the row) so the command line can print it as one line.

use std::path::PathBuf;

/// Everything that can go wrong while computing metrics or reading a scores file.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// No data at all.
    #[error("{what} is empty — nothing to evaluate")]
    Empty {
        /// What was empty ("the score list", "the family list", …).
        what: &'static str,
    },

    /// Two inputs that must pair up one to one have different lengths.
    #[error("{left_name} has {left} entries but {right_name} has {right} — they must pair up one to one")]
    LengthMismatch {
        /// Name of the first input.
        left_name: &'static str,
        /// Its length.
        left: usize,
        /// Name of the second input.
        right_name: &'static str,
        /// Its length.
        right: usize,
    },

    /// A score (or other value) is NaN or infinite.
    #[error("{what} at index {index} is {value} — every value must be a finite number")]
    NonFinite {
        /// What holds the value ("score", "x", "edge", …).
        what: &'static str,
        /// 0-based position.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// The labels hold only one class where a ranking metric needs both.
    #[error("all {n} samples are {class} — this metric needs at least one normal (label 0) and one anomaly (label 1)")]
    SingleClass {
        /// Number of samples.
        n: usize,
        /// "normal" or "anomalies".
        class: &'static str,
    },

    /// A 0/1 label holds another value.
    #[error("label at index {index} is {value} — labels must be 0 (normal) or 1 (anomaly)")]
    BadLabel {
        /// 0-based position.
        index: usize,
        /// The offending value.
        value: u8,
    },

    /// A TPR level outside (0, 1].
    #[error("TPR level {level} is outside (0, 1]")]
    BadLevel {
        /// The level asked for.
        level: f64,
    },

    /// A threshold that is NaN.
    #[error("the threshold is NaN — give a number (±inf is allowed)")]
    NanThreshold,

    /// Histogram bin edges that are unusable.
    #[error("histogram edges: {reason}")]
    BadEdges {
        /// What is wrong with them.
        reason: String,
    },

    /// The Wilcoxon test got pairs that are all equal.
    #[error("all {n} paired differences are zero — the Wilcoxon signed-rank test is undefined")]
    AllZeroDifferences {
        /// Number of pairs.
        n: usize,
    },

    /// One family of a per-family table failed.
    #[error("family '{family}': {source}")]
    Family {
        /// The family's name.
        family: String,
        /// What went wrong with it.
        #[source]
        source: Box<EvalError>,
    },

    /// The scores file does not exist.
    #[error("{path}: no such file — check the path")]
    FileNotFound {
        /// The path given.
        path: PathBuf,
    },

    /// polars could not parse the file as CSV.
    #[error("{path}: cannot read it as CSV ({message})")]
    Csv {
        /// The file.
        path: PathBuf,
        /// polars' message, trimmed to one line.
        message: String,
    },

    /// The file has a header but no data rows.
    #[error("{path}: the file has no data rows")]
    NoRows {
        /// The file.
        path: PathBuf,
    },

    /// A column named on the command line is not in the file.
    #[error("{path}: no {role} column named '{column}'; columns are: {columns}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// "score", "label" or "family".
        role: &'static str,
        /// The name asked for.
        column: String,
        /// The file's columns, comma-separated.
        columns: String,
    },

    /// An empty cell where a value is needed.
    #[error("{path}: {role} column '{column}' is empty at row {row} (line {})", .row + 1)]
    EmptyCell {
        /// The file.
        path: PathBuf,
        /// "score", "label" or "family".
        role: &'static str,
        /// The column.
        column: String,
        /// 1-based data row: the header is not counted, so row N is line N + 1 of the file.
        row: usize,
    },

    /// A score cell that is not a number.
    #[error("{path}: score column '{column}' is not numeric at row {row} (line {}): '{value}'", .row + 1)]
    NonNumericScore {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// 1-based data row: the header is not counted, so row N is line N + 1 of the file.
        row: usize,
        /// The cell's text.
        value: String,
    },

    /// A score cell that is NaN or infinite.
    #[error("{path}: score column '{column}' is {what} at row {row} (line {}): '{value}' — scores must be finite numbers", .row + 1)]
    NonFiniteScore {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// 1-based data row: the header is not counted, so row N is line N + 1 of the file.
        row: usize,
        /// "NaN" or "infinite".
        what: &'static str,
        /// The cell's text.
        value: String,
    },

    /// A label cell that is neither 0/1 nor true/false.
    #[error("{path}: label column '{column}' holds '{value}' at row {row} (line {}), which is neither 0/1 nor true/false — pass the normal label's value (--normal VALUE) to treat every other value as an anomaly", .row + 1)]
    BadLabelCell {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// 1-based data row: the header is not counted, so row N is line N + 1 of the file.
        row: usize,
        /// The cell's text.
        value: String,
    },

    /// The file's labels hold only one class.
    #[error("{path}: all {n} rows are {class} by label column '{column}'{hint} — the metrics need both normals and anomalies")]
    OneClassInFile {
        /// The file.
        path: PathBuf,
        /// The label column.
        column: String,
        /// Number of rows.
        n: usize,
        /// "normal" or "anomalies".
        class: &'static str,
        /// Extra advice (may be empty).
        hint: String,
    },
}
