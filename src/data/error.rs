//! Errors of the data layer. Every message names the file, column or row at fault and says
//! what to do about it, so the command line can print it as one line.

use std::path::PathBuf;

/// Everything that can go wrong while loading, cleaning or normalising a table.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path does not exist.
    #[error("{path}: no such file or folder — check the path")]
    NotFound { path: PathBuf },

    /// The file exists but cannot be read.
    #[error("{path}: cannot read it ({source})")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file holds no data at all.
    #[error("{path}: the file is empty — expected a CSV with a header row")]
    Empty { path: PathBuf },

    /// The file is not text (or not the format its name claims).
    #[error("{path}: {what} — expected a CSV (optionally .gz) or a Parquet file")]
    NotTabular { path: PathBuf, what: String },

    /// A folder without any loadable file.
    #[error("{path}: the folder holds no .csv, .csv.gz or .parquet file")]
    EmptyFolder { path: PathBuf },

    /// Files of one folder disagree on their header.
    #[error("{path}: its header differs from {first}'s ({detail}) — all files of a folder must share one header")]
    HeaderMismatch {
        path: PathBuf,
        first: PathBuf,
        detail: String,
    },

    /// The label column is not in the file.
    #[error("{path}: no column named '{label}'{suggestion}; columns are: {columns}")]
    NoLabelColumn {
        path: PathBuf,
        label: String,
        suggestion: String,
        columns: String,
    },

    /// A column named on the command line or in an experiment file does not exist.
    #[error("{path}: --drop names column '{column}', which the file does not have{suggestion}")]
    NoSuchColumn {
        path: PathBuf,
        column: String,
        suggestion: String,
    },

    /// The family map leaves labels without a family.
    #[error("{map}: no family for {count} label(s) of {path}: {labels} — add them to the map, or pass --keep-unmapped to keep each as its own family")]
    UnmappedLabels {
        path: PathBuf,
        map: PathBuf,
        count: usize,
        labels: String,
    },

    /// A malformed family map.
    #[error("{path}, line {line}: {what} — a family map is a CSV with two columns: label,family")]
    BadFamilyMap {
        path: PathBuf,
        line: usize,
        what: String,
    },

    /// Fewer than two families left after mapping and cleaning.
    #[error("{path}: column '{label}' gives {count} famil{plural} after cleaning ({families}) — anomaly detection needs at least two")]
    TooFewFamilies {
        path: PathBuf,
        label: String,
        count: usize,
        plural: &'static str,
        families: String,
    },

    /// No numeric feature column survived cleaning.
    #[error("{path}: no usable numeric feature column is left after cleaning (dropped: {dropped}) — check --drop and the file's columns")]
    NoFeatures { path: PathBuf, dropped: String },

    /// No rows survived cleaning.
    #[error("{path}: no rows are left after cleaning ({why})")]
    NoRows { path: PathBuf, why: String },

    /// The CSV parser rejected the content.
    #[error("{path}: cannot parse as CSV ({detail})")]
    Parse { path: PathBuf, detail: String },

    /// A normaliser was asked for something impossible.
    #[error("normaliser: {0}")]
    Scaler(String),
}

/// Result alias of the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
