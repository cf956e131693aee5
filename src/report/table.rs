//! The per-family results table (the paper's Table 1): for each method and held-out family the
//! test metrics at τ*, mean ± std (ddof 0) over seeds; and per method the macro average (mean over
//! held-out families within a seed, then mean ± std over seeds).

use super::rundata::MetricRow;
use crate::eval;

/// The table's metric columns, in order.
pub const COLUMNS: [&str; 7] = [
    "precision",
    "recall",
    "accuracy",
    "F1",
    "AP",
    "AUC-ROC",
    "FPR@95",
];

/// Whether a larger value of column `i` is better (FPR@95 is the one where lower is better).
pub fn higher_is_better(i: usize) -> bool {
    i != 6
}

fn values(r: &MetricRow) -> [f64; 7] {
    [
        r.precision,
        r.recall,
        r.accuracy,
        r.f1,
        r.ap,
        r.auc,
        r.fpr95,
    ]
}

/// Mean and standard deviation over seeds (`n` seeds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    fn of(v: &[f64]) -> Option<Stat> {
        eval::mean_std(v).ok().map(|m| Stat {
            mean: m.mean,
            std: m.std,
            n: v.len(),
        })
    }

    /// `0.912 ± 0.013`, or `0.912` for one seed.
    pub fn text(&self) -> String {
        if self.n > 1 {
            format!("{:.3} ± {:.3}", self.mean, self.std)
        } else {
            format!("{:.3}", self.mean)
        }
    }
}

/// One method at one threshold policy, on one held-out family or macro-averaged: what the
/// "threshold transfer" table and view show.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRow {
    pub method: String,
    /// The policy's `metrics.csv` label (`val_best_f1`, `val_fpr_0.05`, …).
    pub policy: String,
    /// A held-out family, or `macro`.
    pub family: String,
    /// Precision, recall, F1 and the realised false-positive rate on the test normals, mean ±
    /// std over seeds (macro: over held-out families within a seed first).
    pub precision: Option<Stat>,
    pub recall: Option<Stat>,
    pub f1: Option<Stat>,
    pub fpr: Option<Stat>,
    /// The policy's target false-positive rate, for `val_fpr_*`.
    pub target: Option<f64>,
}

impl TransferRow {
    /// The target FPR of a `val_fpr_α` label.
    pub fn target_of(policy: &str) -> Option<f64> {
        policy.strip_prefix("val_fpr_")?.parse().ok()
    }
}

/// Every (method, policy) of `metrics`, per held-out family and macro, in the order they first
/// appear (τ*'s fallback rows count as τ*'s policy).
pub fn transfer_rows(metrics: &[MetricRow]) -> Vec<TransferRow> {
    let policy_of = |m: &MetricRow| {
        if m.is_primary() {
            "val_best_f1".to_string()
        } else {
            m.threshold.clone()
        }
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut families: Vec<String> = Vec::new();
    for m in metrics {
        let k = (m.method.clone(), policy_of(m));
        if !keys.contains(&k) {
            keys.push(k);
        }
        if !families.contains(&m.held_out) {
            families.push(m.held_out.clone());
        }
    }
    let finite = |v: Vec<f64>| -> Vec<f64> { v.into_iter().filter(|x| x.is_finite()).collect() };
    let mut out = Vec::new();
    for (method, policy) in &keys {
        let sel: Vec<&MetricRow> = metrics
            .iter()
            .filter(|m| &m.method == method && &policy_of(m) == policy)
            .collect();
        let stat = |rows: &[&MetricRow], f: &dyn Fn(&MetricRow) -> f64| {
            Stat::of(&finite(rows.iter().map(|r| f(r)).collect()))
        };
        for fam in &families {
            let rows: Vec<&MetricRow> =
                sel.iter().copied().filter(|m| &m.held_out == fam).collect();
            if rows.is_empty() {
                continue;
            }
            out.push(TransferRow {
                method: method.clone(),
                policy: policy.clone(),
                family: fam.clone(),
                precision: stat(&rows, &|r| r.precision),
                recall: stat(&rows, &|r| r.recall),
                f1: stat(&rows, &|r| r.f1),
                fpr: stat(&rows, &|r| r.fpr),
                target: TransferRow::target_of(policy),
            });
        }
        // macro: mean over families within a seed, then over seeds
        let mut seeds: Vec<u64> = sel.iter().map(|m| m.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let per_seed = |f: &dyn Fn(&MetricRow) -> f64| -> Option<Stat> {
            let v: Vec<f64> = seeds
                .iter()
                .filter_map(|&s| {
                    let v = finite(sel.iter().filter(|m| m.seed == s).map(|m| f(m)).collect());
                    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                })
                .collect();
            Stat::of(&v)
        };
        out.push(TransferRow {
            method: method.clone(),
            policy: policy.clone(),
            family: "macro".into(),
            precision: per_seed(&|r| r.precision),
            recall: per_seed(&|r| r.recall),
            f1: per_seed(&|r| r.f1),
            fpr: per_seed(&|r| r.fpr),
            target: TransferRow::target_of(policy),
        });
    }
    out
}

/// The macro "thresholds that transfer" table in Markdown (empty when the run has only τ*):
/// per method and policy, precision / recall / F1 on the held-out families and the false-positive
/// rate realised on their test normals, beside the policy's target.
pub fn transfer_markdown(metrics: &[MetricRow]) -> String {
    let rows: Vec<TransferRow> = transfer_rows(metrics)
        .into_iter()
        .filter(|r| r.family == "macro")
        .collect();
    if rows.iter().all(|r| r.policy == "val_best_f1") {
        return String::new();
    }
    let cell = |s: &Option<Stat>| s.map(|s| s.text()).unwrap_or_else(|| "–".into());
    let mut s = String::from(
        "\n## Thresholds that transfer\n\nMacro precision, recall and F1 on the held-out families at each threshold policy, and the false-positive rate realised on their test normals (mean ± std over seeds). `val_best_f1` = τ*, the best-F1 threshold on the seen-family validation pool; `val_fpr_α` = the normals-only threshold with target false-positive rate α (split-conformal quantile of the validation normals' scores); `val_worst_family_f1` = the threshold maximising the F1 of the seen family caught worst (each seen family's validation rows against the validation normals at 1:1). No policy reads a held-out row.\n\n| method | threshold | target FPR | precision | recall | F1 | test FPR |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.method,
            r.policy,
            r.target
                .map(|t| format!("{t}"))
                .unwrap_or_else(|| "–".into()),
            cell(&r.precision),
            cell(&r.recall),
            cell(&r.f1),
            cell(&r.fpr)
        );
    }
    s
}

/// One row: a method on one held-out family (or the macro average, `family = "macro"`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub method: String,
    pub family: String,
    pub cells: [Option<Stat>; 7],
    pub seeds: Vec<u64>,
}

/// The whole table: per-family rows grouped by family then method, and macro rows per method.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilyTable {
    pub methods: Vec<String>,
    pub families: Vec<String>,
    pub rows: Vec<TableRow>,
    pub macro_rows: Vec<TableRow>,
}

impl FamilyTable {
    /// The table of the primary rows of `metrics` (τ*, [`MetricRow::is_primary`]); rows of
    /// other threshold policies are left out (see [`FamilyTable::transfer_markdown`]).
    pub fn from_metrics(metrics: &[MetricRow]) -> FamilyTable {
        let primary = crate::report::rundata::primary_metrics(metrics);
        let metrics = primary.as_slice();
        let mut methods: Vec<String> = Vec::new();
        let mut families: Vec<String> = Vec::new();
        for m in metrics {
            if !methods.contains(&m.method) {
                methods.push(m.method.clone());
            }
            if !families.contains(&m.held_out) {
                families.push(m.held_out.clone());
            }
        }
        let mut rows = Vec::new();
        for f in &families {
            for m in &methods {
                let sel: Vec<&MetricRow> = metrics
                    .iter()
                    .filter(|r| &r.method == m && &r.held_out == f)
                    .collect();
                if sel.is_empty() {
                    continue;
                }
                let cells = std::array::from_fn(|i| {
                    Stat::of(&sel.iter().map(|r| values(r)[i]).collect::<Vec<_>>())
                });
                rows.push(TableRow {
                    method: m.clone(),
                    family: f.clone(),
                    cells,
                    seeds: sel.iter().map(|r| r.seed).collect(),
                });
            }
        }
        let mut macro_rows = Vec::new();
        for m in &methods {
            let mut seeds: Vec<u64> = metrics
                .iter()
                .filter(|r| &r.method == m)
                .map(|r| r.seed)
                .collect();
            seeds.sort_unstable();
            seeds.dedup();
            let cells = std::array::from_fn(|i| {
                let per_seed: Vec<f64> = seeds
                    .iter()
                    .map(|s| {
                        let v: Vec<f64> = metrics
                            .iter()
                            .filter(|r| &r.method == m && r.seed == *s)
                            .map(|r| values(r)[i])
                            .collect();
                        v.iter().sum::<f64>() / v.len().max(1) as f64
                    })
                    .collect();
                Stat::of(&per_seed)
            });
            macro_rows.push(TableRow {
                method: m.clone(),
                family: "macro".into(),
                cells,
                seeds,
            });
        }
        FamilyTable {
            methods,
            families,
            rows,
            macro_rows,
        }
    }

    /// For each row of `rows` (same family), which cells hold the best mean of their column.
    #[allow(clippy::needless_range_loop)] // `c` indexes both the cells and the output
    pub fn best_in(rows: &[&TableRow]) -> Vec<[bool; 7]> {
        let mut out = vec![[false; 7]; rows.len()];
        for c in 0..7 {
            let means: Vec<Option<f64>> = rows
                .iter()
                .map(|r| r.cells[c].map(|s| s.mean).filter(|m| m.is_finite()))
                .collect();
            let best = means
                .iter()
                .flatten()
                .copied()
                .fold(None, |acc: Option<f64>, v| {
                    Some(match acc {
                        None => v,
                        Some(a) if higher_is_better(c) => a.max(v),
                        Some(a) => a.min(v),
                    })
                });
            if let Some(b) = best {
                if rows.len() > 1 {
                    for (k, m) in means.iter().enumerate() {
                        out[k][c] = *m == Some(b);
                    }
                }
            }
        }
        out
    }

    /// Rows of one family (or `"macro"`), in method order.
    pub fn family_rows(&self, family: &str) -> Vec<&TableRow> {
        if family == "macro" {
            self.macro_rows.iter().collect()
        } else {
            self.rows.iter().filter(|r| r.family == family).collect()
        }
    }

    /// Markdown: one table per family block, best mean per column in bold, then the macro table.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("| held-out family | method |");
        for c in COLUMNS {
            s.push_str(&format!(" {c} |"));
        }
        s.push_str("\n|---|---|");
        s.push_str(&"---|".repeat(COLUMNS.len()));
        s.push('\n');
        let mut blocks: Vec<&str> = self.families.iter().map(String::as_str).collect();
        blocks.push("macro");
        for f in blocks {
            let rows = self.family_rows(f);
            let best = Self::best_in(&rows);
            for (r, b) in rows.iter().zip(&best) {
                s.push_str(&format!("| {} | {} |", r.family, r.method));
                for (c, cell) in r.cells.iter().enumerate() {
                    let t = cell.map(|x| x.text()).unwrap_or_else(|| "–".into());
                    if b[c] {
                        s.push_str(&format!(" **{t}** |"));
                    } else {
                        s.push_str(&format!(" {t} |"));
                    }
                }
                s.push('\n');
            }
        }
        s
    }

    /// CSV: one row per (held-out family, method), then the macro rows; mean and std (ddof 0)
    /// of each metric in separate columns, and the number of seeds. Empty cells where a metric
    /// has no value.
    pub fn to_csv(&self) -> String {
        use super::rundata::csv_field;
        let mut s = String::from("family,method,seeds");
        for c in CSV_COLUMNS {
            s.push_str(&format!(",{c}_mean,{c}_std"));
        }
        s.push('\n');
        for r in self.rows.iter().chain(&self.macro_rows) {
            s.push_str(&format!(
                "{},{},{}",
                csv_field(&r.family),
                csv_field(&r.method),
                r.seeds.len()
            ));
            for cell in &r.cells {
                match cell {
                    Some(st) => s.push_str(&format!(",{},{}", st.mean, st.std)),
                    None => s.push_str(",,"),
                }
            }
            s.push('\n');
        }
        s
    }

    /// LaTeX: a booktabs `tabular` (needs `\usepackage{booktabs}`), one block per held-out
    /// family and the macro block last, cells `mean $\pm$ std` (3 decimals; the mean alone for
    /// one seed), the best mean per column of each block in `\textbf{}`.
    pub fn to_latex(&self) -> String {
        let mut s = String::from(
            "% heldout: test metrics at tau* per held-out family, mean $\\pm$ std over seeds\n% needs \\usepackage{booktabs}\n",
        );
        s.push_str(&format!(
            "\\begin{{tabular}}{{ll{}}}\n",
            "c".repeat(COLUMNS.len())
        ));
        s.push_str("\\toprule\nHeld-out family & Method");
        for c in COLUMNS {
            s.push_str(&format!(" & {}", latex_escape(c)));
        }
        s.push_str(" \\\\\n");
        let mut blocks: Vec<&str> = self.families.iter().map(String::as_str).collect();
        blocks.push("macro");
        for f in blocks {
            let rows = self.family_rows(f);
            if rows.is_empty() {
                continue;
            }
            s.push_str("\\midrule\n");
            let best = Self::best_in(&rows);
            for (k, (r, b)) in rows.iter().zip(&best).enumerate() {
                let fam = if k > 0 {
                    String::new()
                } else if f == "macro" {
                    "Macro".into()
                } else {
                    latex_escape(f)
                };
                s.push_str(&format!("{fam} & {}", latex_escape(&r.method)));
                for (c, cell) in r.cells.iter().enumerate() {
                    let t = match cell {
                        Some(st) if st.n > 1 => format!("{:.3} $\\pm$ {:.3}", st.mean, st.std),
                        Some(st) => format!("{:.3}", st.mean),
                        None => "--".into(),
                    };
                    if b[c] {
                        s.push_str(&format!(" & \\textbf{{{t}}}"));
                    } else {
                        s.push_str(&format!(" & {t}"));
                    }
                }
                s.push_str(" \\\\\n");
            }
        }
        s.push_str("\\bottomrule\n\\end{tabular}\n");
        s
    }
}

/// The core paper's Table 1 columns per held-out family, as indices into [`COLUMNS`]: precision,
/// recall, AUC-ROC, F1 (the paper's "P / R / AUC / F1").
pub const PAPER_COLUMNS: [(usize, &str); 4] = [(0, "P"), (1, "R"), (5, "AUC"), (3, "F1")];

/// Held-out families per block of the paper layout (the paper prints three per table half).
pub const PAPER_FAMILIES_PER_BLOCK: usize = 3;

/// One method's four [`PAPER_COLUMNS`] cells on one family, each with whether it is the best mean
/// of its (family, column); `None` where the method has no row for the family.
pub type PaperCells = Option<[(Option<Stat>, bool); 4]>;

/// One block of the paper layout: its families (the last block ends with `"macro"`) and, per
/// method, its [`PaperCells`] per family.
pub struct PaperBlock<'a> {
    pub families: Vec<&'a str>,
    /// (method, per family its cells).
    pub rows: Vec<(&'a str, Vec<PaperCells>)>,
}

impl FamilyTable {
    /// The paper layout: one row per method, per held-out family the columns P, R, AUC and F1
    /// (mean ± std over seeds), families in blocks of `per_block` with the macro average as the
    /// last family; best mean per (family, column) marked.
    pub fn paper_blocks(&self, per_block: usize) -> Vec<PaperBlock<'_>> {
        let mut fams: Vec<&str> = self.families.iter().map(String::as_str).collect();
        fams.push("macro");
        fams.chunks(per_block.max(1))
            .map(|chunk| {
                let per_family: Vec<(Vec<&TableRow>, Vec<[bool; 7]>)> = chunk
                    .iter()
                    .map(|f| {
                        let rows = self.family_rows(f);
                        let best = Self::best_in(&rows);
                        (rows, best)
                    })
                    .collect();
                let rows = self
                    .methods
                    .iter()
                    .map(|m| {
                        let cells = per_family
                            .iter()
                            .map(|(rows, best)| {
                                let k = rows.iter().position(|r| &r.method == m)?;
                                Some(PAPER_COLUMNS.map(|(c, _)| (rows[k].cells[c], best[k][c])))
                            })
                            .collect();
                        (m.as_str(), cells)
                    })
                    .collect();
                PaperBlock {
                    families: chunk.to_vec(),
                    rows,
                }
            })
            .collect()
    }

    /// Markdown in the paper layout ([`FamilyTable::paper_blocks`]): one table per block.
    pub fn paper_markdown(&self, per_block: usize) -> String {
        let mut s = String::new();
        for b in self.paper_blocks(per_block) {
            s.push_str("| method |");
            for f in &b.families {
                for (_, c) in PAPER_COLUMNS {
                    s.push_str(&format!(" {f} {c} |"));
                }
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(4 * b.families.len()));
            s.push('\n');
            for (m, fams) in &b.rows {
                s.push_str(&format!("| {m} |"));
                for cells in fams {
                    match cells {
                        None => s.push_str(&" – |".repeat(4)),
                        Some(cells) => {
                            for (cell, best) in cells {
                                let t = cell.map(|x| x.text()).unwrap_or_else(|| "–".into());
                                if *best {
                                    s.push_str(&format!(" **{t}** |"));
                                } else {
                                    s.push_str(&format!(" {t} |"));
                                }
                            }
                        }
                    }
                }
                s.push('\n');
            }
            s.push('\n');
        }
        s
    }

    /// LaTeX in the paper layout: a booktabs `tabular` per block, a `\multicolumn` per held-out
    /// family over its P, R, AUC and F1, cells `mean $\pm$ std`, best in `\textbf{}`.
    pub fn paper_latex(&self, per_block: usize) -> String {
        let mut s = String::from(
            "% heldout: the core paper's Table 1 layout — per held-out family P / R / AUC / F1 at tau*, mean $\\pm$ std over seeds\n% needs \\usepackage{booktabs}\n",
        );
        for b in self.paper_blocks(per_block) {
            let n = b.families.len();
            s.push_str(&format!(
                "\\begin{{tabular}}{{l{}}}\n\\toprule\nMethod",
                "cccc".repeat(n)
            ));
            for f in &b.families {
                let name = if *f == "macro" {
                    "Macro".to_string()
                } else {
                    latex_escape(f)
                };
                s.push_str(&format!(" & \\multicolumn{{4}}{{c}}{{{name}}}"));
            }
            s.push_str(" \\\\\n");
            for k in 0..n {
                s.push_str(&format!("\\cmidrule(lr){{{}-{}}}", 2 + 4 * k, 5 + 4 * k));
            }
            s.push('\n');
            for _ in 0..n {
                for (_, c) in PAPER_COLUMNS {
                    s.push_str(&format!(" & {c}"));
                }
            }
            s.push_str(" \\\\\n\\midrule\n");
            for (m, fams) in &b.rows {
                s.push_str(&latex_escape(m));
                for cells in fams {
                    match cells {
                        None => s.push_str(&" & --".repeat(4)),
                        Some(cells) => {
                            for (cell, best) in cells {
                                let t = match cell {
                                    Some(st) if st.n > 1 => {
                                        format!("{:.3} $\\pm$ {:.3}", st.mean, st.std)
                                    }
                                    Some(st) => format!("{:.3}", st.mean),
                                    None => "--".into(),
                                };
                                if *best {
                                    s.push_str(&format!(" & \\textbf{{{t}}}"));
                                } else {
                                    s.push_str(&format!(" & {t}"));
                                }
                            }
                        }
                    }
                }
                s.push_str(" \\\\\n");
            }
            s.push_str("\\bottomrule\n\\end{tabular}\n\n");
        }
        s
    }
}

/// `+0.012`, or `–` when there is no value.
pub fn signed3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.3}")
    } else {
        "–".into()
    }
}

/// A p-value for tables: three decimals, or scientific notation below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// The experiment's main method against another on AUC-ROC: a Wilcoxon signed-rank test over
/// the (held-out family, seed) pairs both have.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedTest {
    pub other: String,
    pub pairs: usize,
    /// Mean of main − other over the pairs.
    pub mean_diff: f64,
    /// Pairs where the main method's AUC is higher / lower.
    pub wins: usize,
    pub losses: usize,
    /// Two-sided p-value (`None` with fewer than one non-zero difference).
    pub p_value: Option<f64>,
}

impl FamilyTable {
    /// The first method (the experiment's `method`; the runner runs it first) against every
    /// other method of `metrics`.
    pub fn paired_tests(metrics: &[MetricRow]) -> Vec<PairedTest> {
        let primary = crate::report::rundata::primary_metrics(metrics);
        let metrics = primary.as_slice();
        let t = FamilyTable::from_metrics(metrics);
        let Some(main) = t.methods.first() else {
            return Vec::new();
        };
        let auc = |m: &str| -> std::collections::BTreeMap<(String, u64), f64> {
            metrics
                .iter()
                .filter(|r| r.method == m && r.auc.is_finite())
                .map(|r| ((r.held_out.clone(), r.seed), r.auc))
                .collect()
        };
        let mine = auc(main);
        t.methods[1..]
            .iter()
            .map(|other| {
                let theirs = auc(other);
                let (x, y): (Vec<f64>, Vec<f64>) = mine
                    .iter()
                    .filter_map(|(k, &a)| theirs.get(k).map(|&b| (a, b)))
                    .unzip();
                let n = x.len();
                PairedTest {
                    other: other.clone(),
                    pairs: n,
                    mean_diff: if n == 0 {
                        f64::NAN
                    } else {
                        x.iter().zip(&y).map(|(a, b)| a - b).sum::<f64>() / n as f64
                    },
                    wins: x.iter().zip(&y).filter(|(a, b)| a > b).count(),
                    losses: x.iter().zip(&y).filter(|(a, b)| a < b).count(),
                    p_value: eval::wilcoxon(&x, &y)
                        .ok()
                        .map(|w| w.p_value)
                        .filter(|p| p.is_finite()),
                }
            })
            .collect()
    }

    /// Markdown section for [`FamilyTable::paired_tests`] (empty with one method).
    pub fn paired_markdown(metrics: &[MetricRow]) -> String {
        let tests = Self::paired_tests(metrics);
        let Some(main) = metrics.first().map(|m| m.method.clone()) else {
            return String::new();
        };
        if tests.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "\n## {main} against each other method\n\nWilcoxon signed-rank test (two-sided) on AUC-ROC over the (held-out family, seed) pairs both methods have; Δ = mean of {main} − other.\n\n| other method | pairs | Δ AUC-ROC | {main} higher / lower | p-value |\n|---|---|---|---|---|\n"
        );
        for t in tests {
            let p = t.p_value.map(fmt_p).unwrap_or_else(|| "–".into());
            s.push_str(&format!(
                "| {} | {} | {} | {} / {} | {p} |\n",
                t.other,
                t.pairs,
                signed3(t.mean_diff),
                t.wins,
                t.losses
            ));
        }
        s
    }

    /// LaTeX for [`FamilyTable::paired_tests`] (empty with one method).
    pub fn paired_latex(metrics: &[MetricRow]) -> String {
        let tests = Self::paired_tests(metrics);
        let Some(main) = metrics.first().map(|m| m.method.clone()) else {
            return String::new();
        };
        if tests.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "% {} against each other method: Wilcoxon signed-rank test (two-sided) on AUC-ROC over (held-out family, seed) pairs\n\\begin{{tabular}}{{lrrr}}\n\\toprule\nOther method & Pairs & $\\Delta$ AUC-ROC & $p$ \\\\\n\\midrule\n",
            latex_escape(&main)
        );
        for t in tests {
            let p = t.p_value.map(fmt_p).unwrap_or_else(|| "--".into());
            s.push_str(&format!(
                "{} & {} & {} & {p} \\\\\n",
                latex_escape(&t.other),
                t.pairs,
                signed3(t.mean_diff)
            ));
        }
        s.push_str("\\bottomrule\n\\end{tabular}\n");
        s
    }
}

/// The metric columns' names in CSV headers (those of `metrics.csv`).
pub const CSV_COLUMNS: [&str; 7] = [
    "precision",
    "recall",
    "accuracy",
    "f1",
    "ap",
    "auc_roc",
    "fpr95",
];

/// Text safe in LaTeX: `\ & % $ # _ { } ~ ^` escaped.
pub fn latex_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                o.push('\\');
                o.push(c);
            }
            '~' => o.push_str("\\textasciitilde{}"),
            '^' => o.push_str("\\textasciicircum{}"),
            _ => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, seed: u64, fam: &str, auc: f64) -> MetricRow {
        MetricRow {
            method: method.into(),
            seed,
            held_out: fam.into(),
            precision: 0.5,
            recall: 0.5,
            accuracy: 0.5,
            f1: 0.5,
            ap: auc,
            auc,
            fpr95: 1.0 - auc,
            tau: 0.5,
            threshold: "val_best_f1".into(),
            fpr: f64::NAN,
        }
    }

    #[test]
    fn macro_is_mean_over_families_then_seeds() {
        // seed 0: (0.6 + 0.8)/2 = 0.7; seed 1: (0.9 + 0.7)/2 = 0.8 → 0.75 ± 0.05
        let m = vec![
            row("A", 0, "x", 0.6),
            row("A", 0, "y", 0.8),
            row("A", 1, "x", 0.9),
            row("A", 1, "y", 0.7),
        ];
        let t = FamilyTable::from_metrics(&m);
        let s = t.macro_rows[0].cells[5].unwrap();
        assert!((s.mean - 0.75).abs() < 1e-12 && (s.std - 0.05).abs() < 1e-12);
        let x = t.family_rows("x")[0].cells[5].unwrap();
        assert!((x.mean - 0.75).abs() < 1e-12 && (x.std - 0.15).abs() < 1e-12);
    }

    #[test]
    fn best_marks_max_and_min_for_fpr() {
        let m = vec![row("A", 0, "x", 0.6), row("B", 0, "x", 0.8)];
        let t = FamilyTable::from_metrics(&m);
        let rows = t.family_rows("x");
        let b = FamilyTable::best_in(&rows);
        assert!(!b[0][5] && b[1][5]); // AUC: B higher
        assert!(!b[0][6] && b[1][6]); // FPR@95: B lower
        assert!(t.to_markdown().contains("**0.800**"));
    }

    #[test]
    fn csv_has_a_row_per_method_and_family_plus_macro() {
        let m = vec![
            row("A", 0, "x", 0.6),
            row("A", 1, "x", 0.8),
            row("B", 0, "x", 0.7),
            row("A", 0, "y_z", 0.9),
        ];
        let t = FamilyTable::from_metrics(&m);
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0].split(',').count(), 3 + 14);
        assert!(lines[0].contains("auc_roc_mean,auc_roc_std"));
        // x: A, B; y_z: A; macro: A, B
        assert_eq!(lines.len(), 1 + 3 + 2, "{csv}");
        assert!(lines[1].starts_with("x,A,2,"), "{csv}");
        let f: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(f[3 + 2 * 5].parse::<f64>().unwrap(), 0.7); // AUC mean
        assert!((f[4 + 2 * 5].parse::<f64>().unwrap() - 0.1).abs() < 1e-12); // AUC std
        assert!(lines[4].starts_with("macro,A,2,") && lines[5].starts_with("macro,B,1,"));
    }

    #[test]
    fn paper_layout_has_p_r_auc_f1_per_family_best_bold_and_macro_last() {
        // A: x 0.6, 0.7 (seeds 0, 1); y 0.9. B: x 0.8; no y row. P, R and F1 are 0.5 in every
        // row: equal means are all marked best.
        let m = vec![
            row("A", 0, "x", 0.6),
            row("A", 1, "x", 0.7),
            row("A", 0, "y_1", 0.9),
            row("B", 0, "x", 0.8),
        ];
        let t = FamilyTable::from_metrics(&m);
        let blocks = t.paper_blocks(2);
        // families x, y_1 | macro
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].families, ["x", "y_1"]);
        assert_eq!(blocks[1].families, ["macro"]);
        let a = &blocks[0].rows[0];
        assert_eq!(a.0, "A");
        let x = a.1[0].unwrap();
        // P, R, AUC, F1: AUC is COLUMNS[5], the mean of 0.6 and 0.7, not the best (B has 0.8)
        assert!((x[2].0.unwrap().mean - 0.65).abs() < 1e-12 && !x[2].1);
        assert!(
            blocks[0].rows[1].1[0].unwrap()[2].1,
            "B's AUC on x is the best"
        );
        assert!(blocks[0].rows[1].1[1].is_none(), "B has no y_1 row");
        let md = t.paper_markdown(2);
        assert!(
            md.starts_with("| method | x P | x R | x AUC | x F1 | y_1 P |"),
            "{md}"
        );
        assert!(
            md.contains("| B | **0.500** | **0.500** | **0.800** | **0.500** | – | – | – | – |"),
            "{md}"
        );
        let tex = t.paper_latex(2);
        assert!(tex.contains("\\begin{tabular}{lcccccccc}"), "{tex}");
        assert!(tex.contains("\\multicolumn{4}{c}{y\\_1}"), "{tex}");
        assert!(
            tex.contains("\\cmidrule(lr){2-5}\\cmidrule(lr){6-9}"),
            "{tex}"
        );
        assert!(tex.contains("\\multicolumn{4}{c}{Macro}"), "{tex}");
        assert!(tex.contains("0.650 $\\pm$ 0.050"), "{tex}");
        assert!(tex.contains("\\textbf{0.800}"), "{tex}");
    }

    #[test]
    fn latex_bolds_the_best_and_escapes_names() {
        let m = vec![
            row("meta_learner", 0, "Web & XSS", 0.6),
            row("odin_T1000_eps0.0014", 0, "Web & XSS", 0.8),
            row("meta_learner", 1, "Web & XSS", 0.7),
        ];
        let t = FamilyTable::from_metrics(&m);
        let tex = t.to_latex();
        assert!(tex.contains("\\begin{tabular}{llccccccc}"), "{tex}");
        assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"));
        assert!(tex.contains("Web \\& XSS & meta\\_learner & "), "{tex}");
        assert!(tex.contains("0.650 $\\pm$ 0.050"), "{tex}");
        assert!(tex.contains("odin\\_T1000\\_eps0.0014"), "{tex}");
        let odin = tex.lines().find(|l| l.starts_with(" & odin")).unwrap();
        assert!(odin.contains("\\textbf{0.800}"), "{odin}");
        assert_eq!(
            latex_escape("50% #1 {a}~^\\"),
            "50\\% \\#1 \\{a\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
        );
    }
}
