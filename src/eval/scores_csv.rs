//! `heldout eval`: the metrics of a CSV of scores and labels (and optionally families).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use polars::prelude::{CsvReadOptions, DataFrame, SerReader};
use serde::Serialize;

use super::{
    families_against_normals, ranking_metrics, BestF1, EvalError, FamilyTable, Fpr95, MetricRow,
    ThresholdMetrics,
};

/// Everything `heldout eval` reports about one scores file. Serialises to JSON with serde.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The file read.
    pub file: PathBuf,
    /// The score column (higher = more anomalous).
    pub score_column: String,
    /// The label column.
    pub label_column: String,
    /// The family column, when one was given.
    pub family_column: Option<String>,
    /// The label value that marks normal rows, when labels are text.
    pub normal_value: Option<String>,
    /// Data rows.
    pub n_rows: usize,
    /// Normal rows.
    pub n_normal: usize,
    /// Anomalous rows.
    pub n_anomaly: usize,
    /// AUC-ROC over all rows (ties averaged).
    pub auc_roc: f64,
    /// Average precision, step-wise (scikit-learn's `average_precision_score`).
    pub average_precision: f64,
    /// AUC-PR by the trapezoid rule (scikit-learn's `auc(recall, precision)`).
    pub auc_pr_trapezoid: f64,
    /// FPR@95 with anomalies positive and with normals positive (ODIN).
    pub fpr95: Fpr95,
    /// The best-F1 threshold on this file's own scores (in-sample: it shows the best
    /// attainable F1, not what a threshold chosen elsewhere would give).
    pub best_f1: BestF1,
    /// Confusion counts and rates at the best-F1 threshold.
    pub at_best_f1: ThresholdMetrics,
    /// With a family column: each anomaly family against all normals, at the best-F1
    /// threshold of the whole file, plus macro and micro rows.
    pub families: Option<FamilyTable>,
}

/// Reads a CSV of scores and evaluates it.
///
/// - `score_col`: numeric, higher = more anomalous; NaN, ±inf, empty or non-numeric cells are
///   errors naming the row (1-based data row; the header is not counted).
/// - `label_col`: without `normal`, each cell is `0`/`1` (also `0.0`/`1.0`) or
///   `true`/`false` (any case), 1/true = anomaly. With `normal = Some(v)`, rows whose label
///   (trimmed) equals `v` are normal and every other value is an anomaly.
/// - `family_col`: optional; gives the per-family table (each family's anomalies against all
///   normals; the family cell of normal rows is ignored).
///
/// Errors name the file and, where it applies, the column and row: missing file, polars
/// parse failure, missing column (listing the columns there are), no data rows, bad cells,
/// and a file with only one class.
pub fn eval_scores_csv(
    path: &Path,
    score_col: &str,
    label_col: &str,
    family_col: Option<&str>,
    normal: Option<&str>,
) -> Result<EvalReport, EvalError> {
    if !path.exists() {
        return Err(EvalError::FileNotFound {
            path: path.to_path_buf(),
        });
    }
    if path.is_dir() {
        return Err(EvalError::Csv {
            path: path.to_path_buf(),
            message: "it is a folder — give the CSV file itself".to_string(),
        });
    }
    let csv_err = |message: String| EvalError::Csv {
        path: path.to_path_buf(),
        message,
    };
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0)) // every column as text; we parse with row numbers
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| csv_err(one_line(&e.to_string())))?;

    let scores_text = text_column(&df, path, "score", score_col)?;
    let labels_text = text_column(&df, path, "label", label_col)?;
    let family_text = match family_col {
        Some(c) => Some(text_column(&df, path, "family", c)?),
        None => None,
    };
    if df.height() == 0 {
        return Err(EvalError::NoRows {
            path: path.to_path_buf(),
        });
    }

    let mut scores = Vec::with_capacity(df.height());
    for (i, cell) in scores_text.iter().enumerate() {
        let row = i + 1;
        let Some(text) = cell.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(EvalError::EmptyCell {
                path: path.to_path_buf(),
                role: "score",
                column: score_col.to_string(),
                row,
            });
        };
        let Ok(v) = text.parse::<f64>() else {
            return Err(EvalError::NonNumericScore {
                path: path.to_path_buf(),
                column: score_col.to_string(),
                row,
                value: text.to_string(),
            });
        };
        if !v.is_finite() {
            return Err(EvalError::NonFiniteScore {
                path: path.to_path_buf(),
                column: score_col.to_string(),
                row,
                what: if v.is_nan() { "NaN" } else { "infinite" },
                value: text.to_string(),
            });
        }
        scores.push(v);
    }

    let mut labels = Vec::with_capacity(df.height());
    for (i, cell) in labels_text.iter().enumerate() {
        let row = i + 1;
        let Some(text) = cell.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(EvalError::EmptyCell {
                path: path.to_path_buf(),
                role: "label",
                column: label_col.to_string(),
                row,
            });
        };
        let y = match normal {
            Some(v) => text != v.trim(),
            None => parse_01(text).ok_or_else(|| EvalError::BadLabelCell {
                path: path.to_path_buf(),
                column: label_col.to_string(),
                row,
                value: text.to_string(),
            })?,
        };
        labels.push(y);
    }

    let n_anomaly = labels.iter().filter(|&&y| y).count();
    let n_normal = labels.len() - n_anomaly;
    if n_anomaly == 0 || n_normal == 0 {
        let hint = match normal {
            Some(v) if n_normal == 0 => {
                let seen: BTreeSet<&str> = labels_text
                    .iter()
                    .filter_map(|c| c.as_deref().map(str::trim))
                    .take(10_000)
                    .collect();
                let shown: Vec<&str> = seen.into_iter().take(8).collect();
                format!(
                    " (no label equals the normal value '{v}'; values include: {})",
                    shown.join(", ")
                )
            }
            _ => String::new(),
        };
        return Err(EvalError::OneClassInFile {
            path: path.to_path_buf(),
            column: label_col.to_string(),
            n: labels.len(),
            class: if n_anomaly == 0 {
                "normal"
            } else {
                "anomalies"
            },
            hint,
        });
    }

    let ranking = ranking_metrics(&labels, &scores)?;
    let at_best_f1 = ThresholdMetrics::at(&labels, &scores, ranking.best_f1.tau)?;

    let families = match (family_col, family_text) {
        (Some(col), Some(text)) => {
            let mut fam = Vec::with_capacity(text.len());
            for (i, cell) in text.iter().enumerate() {
                let name = cell.as_deref().map(str::trim).unwrap_or("");
                if labels[i] && name.is_empty() {
                    return Err(EvalError::EmptyCell {
                        path: path.to_path_buf(),
                        role: "family",
                        column: col.to_string(),
                        row: i + 1,
                    });
                }
                fam.push(name.to_string());
            }
            Some(families_against_normals(
                &labels,
                &scores,
                &fam,
                ranking.best_f1.tau,
            )?)
        }
        _ => None,
    };

    Ok(EvalReport {
        file: path.to_path_buf(),
        score_column: score_col.to_string(),
        label_column: label_col.to_string(),
        family_column: family_col.map(str::to_string),
        normal_value: normal.map(str::to_string),
        n_rows: labels.len(),
        n_normal,
        n_anomaly,
        auc_roc: ranking.auc_roc,
        average_precision: ranking.average_precision,
        auc_pr_trapezoid: ranking.auc_pr_trapezoid,
        fpr95: ranking.fpr95,
        best_f1: ranking.best_f1,
        at_best_f1,
        families,
    })
}

/// A column's cells as optional text (`None` = empty cell), or an error listing the columns.
fn text_column(
    df: &DataFrame,
    path: &Path,
    role: &'static str,
    name: &str,
) -> Result<Vec<Option<String>>, EvalError> {
    let missing = || EvalError::MissingColumn {
        path: path.to_path_buf(),
        role,
        column: name.to_string(),
        columns: df
            .get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let col = df.column(name).map_err(|_| missing())?;
    let text = col.str().map_err(|e| EvalError::Csv {
        path: path.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    Ok(text.iter().map(|c| c.map(str::to_string)).collect())
}

/// `0`/`1`/`0.0`/`1.0`/`true`/`false` (any case) → anomaly flag.
fn parse_01(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "0" | "0.0" | "false" => Some(false),
        "1" | "1.0" | "true" => Some(true),
        _ => None,
    }
}

/// The first line of a (possibly multi-line) library message.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}

impl EvalReport {
    /// A plain-text report with aligned columns, for the terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} — {} rows: {} normal, {} anomalous",
            self.file.display(),
            self.n_rows,
            self.n_normal,
            self.n_anomaly
        );
        let normal = match &self.normal_value {
            Some(v) => format!(" (normal = '{v}', any other value = anomaly)"),
            None => " (0/false = normal, 1/true = anomaly)".to_string(),
        };
        let _ = writeln!(
            out,
            "score column '{}' (higher = more anomalous), label column '{}'{}",
            self.score_column, self.label_column, normal
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Threshold-free");
        let a = &self.fpr95.anomaly_positive;
        let b = &self.fpr95.normal_positive;
        let lines = [
            ("AUC-ROC (ties averaged)", self.auc_roc, String::new()),
            (
                "AP (step-wise, sklearn)",
                self.average_precision,
                String::new(),
            ),
            ("AUC-PR (trapezoid)", self.auc_pr_trapezoid, String::new()),
            (
                "FPR@95, anomaly positive",
                a.fpr,
                format!(
                    "normals flagged when {:.4} of anomalies are (s >= {})",
                    a.tpr, a.threshold
                ),
            ),
            (
                "FPR@95, normal positive (ODIN)",
                b.fpr,
                format!(
                    "anomalies passed as normal when {:.4} of normals are (s <= {})",
                    b.tpr, b.threshold
                ),
            ),
        ];
        for (name, v, note) in lines {
            let line = format!("  {name:<32}{v:>8.4}  {note}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let _ = writeln!(out);
        let t = &self.at_best_f1;
        let _ = writeln!(
            out,
            "Best-F1 threshold on this file: anomaly iff score >= {}",
            self.best_f1.tau
        );
        let _ = writeln!(
            out,
            "  {:<10}{:>8}  {:<10}{:>8}  {:<10}{:>8}",
            "precision",
            fmt4(t.precision),
            "recall",
            fmt4(t.recall),
            "F1",
            fmt4(t.f1)
        );
        let _ = writeln!(
            out,
            "  {:<10}{:>8}  {:<10}{:>8}",
            "accuracy",
            fmt4(t.accuracy),
            "MCC",
            fmt4(t.mcc)
        );
        let _ = writeln!(
            out,
            "  {:<10}{:>8}  {:<10}{:>8}  {:<10}{:>8}  {:<10}{:>8}",
            "TP", t.tp, "FP", t.fp, "TN", t.tn, "FN", t.fn_
        );
        if let Some(table) = &self.families {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Per family: each family's anomalies against all {} normals; P/R/Acc/F1/MCC at score >= {}",
                self.n_normal, table.tau
            );
            out.push_str(&family_table_text(table));
        }
        out
    }
}

fn fmt4(v: f64) -> String {
    format!("{v:.4}")
}

/// The per-family rows, then macro and micro, as an aligned table.
fn family_table_text(table: &FamilyTable) -> String {
    let headers = [
        "anomalies",
        "AUC-ROC",
        "AP",
        "AUC-PR",
        "FPR95",
        "FPR95-ID",
        "precision",
        "recall",
        "accuracy",
        "F1",
        "MCC",
    ];
    let name_w = table
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .chain(["family".len(), "macro".len()])
        .max()
        .unwrap_or(6);
    let mut out = String::new();
    let _ = write!(out, "  {:<name_w$}", "family");
    for h in headers {
        let _ = write!(out, "  {h:>9}");
    }
    out.push('\n');
    let row_text = |out: &mut String, r: &MetricRow| {
        let _ = write!(out, "  {:<name_w$}", r.name);
        let _ = write!(out, "  {:>9}", r.n_anomaly);
        for v in [
            r.auc_roc,
            r.ap,
            r.auc_pr,
            r.fpr95,
            r.fpr95_id,
            r.precision,
            r.recall,
            r.accuracy,
            r.f1,
            r.mcc,
        ] {
            let _ = write!(out, "  {v:>9.4}");
        }
        out.push('\n');
    };
    for r in &table.rows {
        row_text(&mut out, r);
    }
    let rule = name_w + headers.len() * 11;
    let _ = writeln!(out, "  {}", "-".repeat(rule));
    row_text(&mut out, &table.macro_avg);
    row_text(&mut out, &table.micro_avg);
    let _ = writeln!(
        out,
        "  macro = mean of the family rows; micro = all family sets pooled into one (each normal counted once per family)"
    );
    out
}
