//! heldout's metrics layer (`heldout::eval`) against scikit-learn 1.9.1, scipy 1.17.1 and
//! numpy, plus property tests and the error cases of `eval_scores_csv`.
//!
//! The reference numbers are in tests/fixtures/metrics.json; tests/fixtures/make_metrics.py
//! computed them (with the score vectors, made from ../shared/data/satimage) — see the
//! script's docstring for the library call behind each number.

use std::io::Write;
use std::path::{Path, PathBuf};

use heldout::eval::{
    auc_pr_trapezoid, average_precision, best_f1_threshold, equal_bins, eval_scores_csv,
    families_against_normals, family_table, fpr95, fpr_at_tpr, histogram, labels_from_01, mean_std,
    metric_row, precision_recall_curve, ranking_metrics, roc_auc, roc_curve, wilcoxon, EvalError,
    FamilySet, MetricRow, ThresholdMetrics, WilcoxonMethod,
};
use proptest::prelude::*;
use serde_json::Value;

const TOL: f64 = 1e-12;

fn fixture() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() == 1)
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[track_caller]
fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e} (diff {:e})",
        (got - want).abs()
    );
}

#[track_caller]
fn close_all(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(*g, *w, TOL, &format!("{what}[{i}]"));
    }
}

// ---------------------------------------------------------------------------------------
// Against scikit-learn / numpy
// ---------------------------------------------------------------------------------------

#[test]
fn curves_and_summaries_match_scikit_learn() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let s = f64s(&c["scores"]);
        let y = bools(&c["labels"]);

        let roc = roc_curve(&y, &s).unwrap();
        assert_eq!(roc.thresholds[0], f64::INFINITY, "{name}");
        close_all(&roc.fpr, &f64s(&c["roc"]["fpr"]), &format!("{name} fpr"));
        close_all(&roc.tpr, &f64s(&c["roc"]["tpr"]), &format!("{name} tpr"));
        close_all(
            &roc.thresholds[1..],
            &f64s(&c["roc"]["thresholds_after_inf"]),
            &format!("{name} roc thresholds"),
        );
        close(
            roc_auc(&y, &s).unwrap(),
            num(&c["roc_auc"]),
            TOL,
            &format!("{name} auc"),
        );

        let pr = precision_recall_curve(&y, &s).unwrap();
        close_all(
            &pr.precision,
            &f64s(&c["pr"]["precision"]),
            &format!("{name} precision"),
        );
        close_all(
            &pr.recall,
            &f64s(&c["pr"]["recall"]),
            &format!("{name} recall"),
        );
        close_all(
            &pr.thresholds,
            &f64s(&c["pr"]["thresholds"]),
            &format!("{name} pr thresholds"),
        );
        close(
            average_precision(&y, &s).unwrap(),
            num(&c["average_precision"]),
            TOL,
            &format!("{name} AP"),
        );
        close(
            auc_pr_trapezoid(&y, &s).unwrap(),
            num(&c["auc_pr_trapezoid"]),
            TOL,
            &format!("{name} AUC-PR"),
        );

        let f = fpr95(&y, &s).unwrap();
        for (got, key) in [
            (f.anomaly_positive, "fpr95_anomaly_positive"),
            (f.normal_positive, "fpr95_normal_positive"),
        ] {
            close(
                got.fpr,
                num(&c[key]["fpr"]),
                TOL,
                &format!("{name} {key} fpr"),
            );
            close(
                got.tpr,
                num(&c[key]["tpr"]),
                TOL,
                &format!("{name} {key} tpr"),
            );
            assert_eq!(
                got.threshold,
                num(&c[key]["threshold"]),
                "{name} {key} threshold"
            );
        }
        assert_eq!(fpr_at_tpr(&y, &s, 0.95).unwrap(), f.anomaly_positive);

        let b = best_f1_threshold(&y, &s).unwrap();
        assert_eq!(b.tau, num(&c["best_f1"]["tau"]), "{name} best-F1 tau");
        close(
            b.f1,
            num(&c["best_f1"]["f1"]),
            TOL,
            &format!("{name} best F1"),
        );
        close(
            b.precision,
            num(&c["best_f1"]["precision"]),
            TOL,
            &format!("{name} best-F1 precision"),
        );
        close(
            b.recall,
            num(&c["best_f1"]["recall"]),
            TOL,
            &format!("{name} best-F1 recall"),
        );

        for t in c["at_thresholds"].as_array().unwrap() {
            let tau = num(&t["tau"]);
            let m = ThresholdMetrics::at(&y, &s, tau).unwrap();
            let what = format!("{name} at {tau}");
            assert_eq!(
                (m.tp, m.fp, m.tn, m.fn_),
                (
                    t["tp"].as_u64().unwrap(),
                    t["fp"].as_u64().unwrap(),
                    t["tn"].as_u64().unwrap(),
                    t["fn"].as_u64().unwrap()
                ),
                "{what}"
            );
            for (got, key) in [
                (m.precision, "precision"),
                (m.recall, "recall"),
                (m.accuracy, "accuracy"),
                (m.f1, "f1"),
                (m.mcc, "mcc"),
            ] {
                close(got, num(&t[key]), TOL, &format!("{what} {key}"));
            }
        }

        // one-sort summary agrees with the single functions
        let r = ranking_metrics(&y, &s).unwrap();
        close(r.auc_roc, num(&c["roc_auc"]), TOL, name);
        close(r.average_precision, num(&c["average_precision"]), TOL, name);
        close(r.auc_pr_trapezoid, num(&c["auc_pr_trapezoid"]), TOL, name);
        assert_eq!(r.fpr95, f, "{name}");
        assert_eq!(r.best_f1, b, "{name}");

        let h = &c["histogram_equal"];
        let n = h["n"].as_u64().unwrap() as usize;
        let edges = equal_bins(num(&h["lo"]), num(&h["hi"]), n).unwrap();
        close_all(&edges, &f64s(&h["edges"]), &format!("{name} linspace"));
        let want: Vec<u64> = serde_json::from_value(h["counts"].clone()).unwrap();
        assert_eq!(histogram(&s, &edges).unwrap(), want, "{name} histogram");
        let h = &c["histogram_edges"];
        let want: Vec<u64> = serde_json::from_value(h["counts"].clone()).unwrap();
        assert_eq!(
            histogram(&s, &f64s(&h["edges"])).unwrap(),
            want,
            "{name} histogram, explicit edges"
        );
    }
}

#[track_caller]
fn row_matches(got: &MetricRow, want: &Value, what: &str) {
    for (g, key) in [
        (got.precision, "precision"),
        (got.recall, "recall"),
        (got.accuracy, "accuracy"),
        (got.f1, "f1"),
        (got.mcc, "mcc"),
        (got.ap, "ap"),
        (got.auc_pr, "auc_pr"),
        (got.auc_roc, "auc_roc"),
        (got.fpr95, "fpr95"),
        (got.fpr95_id, "fpr95_id"),
    ] {
        close(g, num(&want[key]), TOL, &format!("{what} {key}"));
    }
}

/// The family-table fixture as (labels, scores, class of each row).
fn family_data(ft: &Value) -> (Vec<bool>, Vec<f64>, Vec<u64>) {
    let scores = f64s(&ft["scores"]);
    let target: Vec<u64> = serde_json::from_value(ft["target"].clone()).unwrap();
    let normal: Vec<u64> = serde_json::from_value(ft["normal_classes"].clone()).unwrap();
    let labels = target.iter().map(|t| !normal.contains(t)).collect();
    (labels, scores, target)
}

#[test]
fn family_table_matches_scikit_learn() {
    let fx = fixture();
    let ft = &fx["family_table"];
    let (labels, scores, target) = family_data(ft);
    let tau = num(&ft["tau"]);
    assert_eq!(best_f1_threshold(&labels, &scores).unwrap().tau, tau);
    row_matches(
        &metric_row("all", &labels, &scores, tau).unwrap(),
        &ft["overall"],
        "overall",
    );

    let fam: Vec<String> = target.iter().map(|t| t.to_string()).collect();
    let table = families_against_normals(&labels, &scores, &fam, tau).unwrap();
    let want = ft["families"].as_array().unwrap();
    assert_eq!(table.rows.len(), want.len());
    for (row, w) in table.rows.iter().zip(want) {
        assert_eq!(row.name, w["family"].as_str().unwrap());
        assert_eq!(row.n_normal as u64, w["n_normal"].as_u64().unwrap());
        assert_eq!(row.n_anomaly as u64, w["n_anomaly"].as_u64().unwrap());
        row_matches(row, w, &format!("family {}", row.name));
    }
    row_matches(&table.macro_avg, &ft["macro"], "macro");
    row_matches(&table.micro_avg, &ft["micro"], "micro");

    // The same through explicit per-family sets.
    let sets: Vec<(String, Vec<bool>, Vec<f64>)> = table
        .rows
        .iter()
        .map(|r| {
            let k: u64 = r.name.parse().unwrap();
            let idx: Vec<usize> = (0..labels.len())
                .filter(|&i| !labels[i] || target[i] == k)
                .collect();
            (
                r.name.clone(),
                idx.iter().map(|&i| labels[i]).collect(),
                idx.iter().map(|&i| scores[i]).collect(),
            )
        })
        .collect();
    let sets: Vec<FamilySet<'_>> = sets
        .iter()
        .map(|(n, l, s)| FamilySet {
            name: n,
            labels: l,
            scores: s,
        })
        .collect();
    let explicit = family_table(&sets, tau).unwrap();
    for (a, b) in explicit.rows.iter().zip(&table.rows) {
        row_matches(a, &serde_json::to_value(b).unwrap(), &a.name);
    }
    row_matches(&explicit.micro_avg, &ft["micro"], "explicit micro");
}

#[test]
fn mean_std_matches_numpy() {
    let fx = fixture();
    let m = &fx["mean_std"];
    let got = mean_std(&f64s(&m["values"])).unwrap();
    close(got.mean, num(&m["mean"]), TOL, "mean");
    close(got.std, num(&m["std"]), TOL, "std (ddof 0)");
}

#[test]
fn wilcoxon_matches_scipy() {
    let fx = fixture();
    let cases = fx["wilcoxon"].as_array().unwrap();
    let mut methods = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let w = wilcoxon(&f64s(&c["x"]), &f64s(&c["y"])).unwrap();
        close(w.statistic, num(&c["statistic"]), TOL, name);
        let p = num(&c["pvalue"]);
        assert!(
            (w.p_value - p).abs() <= 1e-9 * p,
            "{name}: p {:e} vs scipy {p:e}",
            w.p_value
        );
        let want = match c["method"].as_str().unwrap() {
            "exact" => WilcoxonMethod::Exact,
            "permutation" => WilcoxonMethod::Permutation,
            _ => WilcoxonMethod::Asymptotic,
        };
        assert_eq!(w.method, want, "{name}");
        methods.push(w.method);
    }
    for m in [
        WilcoxonMethod::Exact,
        WilcoxonMethod::Permutation,
        WilcoxonMethod::Asymptotic,
    ] {
        assert!(methods.contains(&m), "no fixture case uses {m:?}");
    }
}

// ---------------------------------------------------------------------------------------
// eval_scores_csv
// ---------------------------------------------------------------------------------------

fn write_csv(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    p
}

#[test]
fn eval_scores_csv_matches_the_fixture() {
    let fx = fixture();
    let ft = &fx["family_table"];
    let (labels, scores, target) = family_data(ft);
    let dir = tempfile::tempdir().unwrap();
    // 0/1 labels, family = class number; normal rows carry a family too (ignored).
    let mut text = String::from("id,score,is_anomaly,family\n");
    for i in 0..labels.len() {
        text += &format!("{i},{},{},{}\n", scores[i], u8::from(labels[i]), target[i]);
    }
    let p = write_csv(&dir, "scores.csv", &text);
    let r = eval_scores_csv(&p, "score", "is_anomaly", Some("family"), None).unwrap();
    let ov = &ft["overall"];
    assert_eq!(r.n_rows, labels.len());
    close(r.auc_roc, num(&ov["auc_roc"]), TOL, "auc");
    close(r.average_precision, num(&ov["ap"]), TOL, "ap");
    close(r.auc_pr_trapezoid, num(&ov["auc_pr"]), TOL, "auc-pr");
    close(
        r.fpr95.anomaly_positive.fpr,
        num(&ov["fpr95"]),
        TOL,
        "fpr95",
    );
    close(
        r.fpr95.normal_positive.fpr,
        num(&ov["fpr95_id"]),
        TOL,
        "fpr95 id",
    );
    assert_eq!(r.best_f1.tau, num(&ft["tau"]));
    close(r.at_best_f1.f1, num(&ov["f1"]), TOL, "f1");
    close(r.at_best_f1.mcc, num(&ov["mcc"]), TOL, "mcc");
    assert_eq!(r.at_best_f1.tp, ov["tp"].as_u64().unwrap());
    let t = r.families.as_ref().unwrap();
    assert_eq!(t.tau, num(&ft["tau"]));
    for (row, w) in t.rows.iter().zip(ft["families"].as_array().unwrap()) {
        row_matches(row, w, &row.name);
    }
    row_matches(&t.macro_avg, &ft["macro"], "macro");
    row_matches(&t.micro_avg, &ft["micro"], "micro");

    let json = serde_json::to_value(&r).unwrap();
    close(
        num(&json["families"]["macro"]["auc_roc"]),
        num(&ft["macro"]["auc_roc"]),
        TOL,
        "json",
    );
    assert!(json["families"]["micro"].is_object());
    assert!(json["fpr95"]["normal_positive"]["fpr"].is_number());
    let txt = r.to_text();
    assert!(
        txt.lines().all(|l| l == l.trim_end()),
        "trailing spaces:\n{txt}"
    );
    for needle in [
        "AUC-ROC",
        "AP (step-wise",
        "AUC-PR (trapezoid)",
        "FPR@95",
        "macro",
        "micro",
    ] {
        assert!(txt.contains(needle), "{needle} missing from\n{txt}");
    }
    assert!(
        txt.contains(&format!("{:.4}", num(&ft["macro"]["auc_roc"]))),
        "{txt}"
    );
    // aligned: every family-table line has the same width
    let table_lines: Vec<&str> = txt
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("family"))
        .take(1 + t.rows.len())
        .collect();
    assert_eq!(table_lines.len(), 1 + t.rows.len());
    assert!(
        table_lines.iter().all(|l| l.len() == table_lines[0].len()),
        "{txt}"
    );

    // Text labels with --normal: classes 1 and 3 are "soil" (normal); the label is the family.
    let mut text = String::from("label,score\n");
    for i in 0..labels.len() {
        let l = if labels[i] {
            format!("class{}", target[i])
        } else {
            "soil".to_string()
        };
        text += &format!("{l},{}\n", scores[i]);
    }
    let p = write_csv(&dir, "text.csv", &text);
    let r2 = eval_scores_csv(&p, "score", "label", Some("label"), Some("soil")).unwrap();
    close(r2.auc_roc, num(&ov["auc_roc"]), TOL, "auc (text labels)");
    let t2 = r2.families.unwrap();
    let names: Vec<&str> = t2.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["class2", "class4", "class5", "class7"]);
    row_matches(&t2.macro_avg, &ft["macro"], "macro (text labels)");
}

#[test]
fn eval_scores_csv_accepts_true_false_and_no_family() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(
        &dir,
        "tf.csv",
        "s,y\n0.1,false\n0.9,True\n0.4,FALSE\n0.35,true\n0.8,1.0\n0.2,0.0\n",
    );
    let r = eval_scores_csv(&p, "s", "y", None, None).unwrap();
    assert_eq!((r.n_normal, r.n_anomaly), (3, 3));
    // anomalies 0.9, 0.35, 0.8 vs normals 0.1, 0.4, 0.2: 8 of 9 pairs ordered
    close(r.auc_roc, 8.0 / 9.0, TOL, "auc");
    assert!(r.families.is_none());
    assert!(!r.to_text().contains("Per family"));
}

/// The error of a CSV `text` with the given arguments, as a message.
fn csv_error(
    text: &str,
    score: &str,
    label: &str,
    family: Option<&str>,
    normal: Option<&str>,
) -> (EvalError, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(&dir, "bad.csv", text);
    let e = eval_scores_csv(&p, score, label, family, normal).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("bad.csv"), "the message names the file: {msg}");
    (e, msg)
}

#[test]
fn csv_missing_file() {
    let e =
        eval_scores_csv(Path::new("/nonexistent/scores.csv"), "s", "y", None, None).unwrap_err();
    assert!(matches!(e, EvalError::FileNotFound { .. }));
    assert!(e.to_string().contains("/nonexistent/scores.csv"), "{e}");
}

#[test]
fn csv_missing_columns_list_the_existing_ones() {
    let (e, msg) = csv_error(
        "score,label,fam\n0.1,0,a\n0.5,1,b\n",
        "scor",
        "label",
        None,
        None,
    );
    assert!(
        matches!(e, EvalError::MissingColumn { role: "score", .. }),
        "{msg}"
    );
    assert!(
        msg.contains("'scor'") && msg.contains("score, label, fam"),
        "{msg}"
    );
    let (e, msg) = csv_error(
        "score,label,fam\n0.1,0,a\n0.5,1,b\n",
        "score",
        "y",
        None,
        None,
    );
    assert!(
        matches!(e, EvalError::MissingColumn { role: "label", .. }),
        "{msg}"
    );
    let (e, msg) = csv_error(
        "score,label,fam\n0.1,0,a\n0.5,1,b\n",
        "score",
        "label",
        Some("family"),
        None,
    );
    assert!(
        matches!(e, EvalError::MissingColumn { role: "family", .. }),
        "{msg}"
    );
    assert!(msg.contains("'family'"), "{msg}");
}

#[test]
fn csv_non_numeric_score_names_the_row() {
    let (e, msg) = csv_error("s,y\n0.1,0\n0.5,1\nhigh,1\n", "s", "y", None, None);
    assert!(
        matches!(e, EvalError::NonNumericScore { row: 3, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("row 3 (line 4)") && msg.contains("'high'") && msg.contains("'s'"),
        "{msg}"
    );
}

#[test]
fn csv_nan_and_infinite_scores_name_the_row() {
    let (e, msg) = csv_error("s,y\n0.1,0\nNaN,1\n0.3,1\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::NonFiniteScore {
                row: 2,
                what: "NaN",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("NaN at row 2 (line 3)"), "{msg}");
    let (e, msg) = csv_error("s,y\n0.1,0\n0.2,1\n-inf,1\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::NonFiniteScore {
                row: 3,
                what: "infinite",
                ..
            }
        ),
        "{msg}"
    );
}

#[test]
fn csv_empty_score_cell_names_the_row() {
    let (e, msg) = csv_error("s,y\n0.1,0\n,1\n0.3,1\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::EmptyCell {
                row: 2,
                role: "score",
                ..
            }
        ),
        "{msg}"
    );
}

#[test]
fn csv_bad_label_names_the_row_and_suggests_normal() {
    let (e, msg) = csv_error("s,y\n0.1,0\n0.5,1\n0.7,2\n", "s", "y", None, None);
    assert!(matches!(e, EvalError::BadLabelCell { row: 3, .. }), "{msg}");
    assert!(
        msg.contains("'2' at row 3 (line 4)") && msg.contains("--normal"),
        "{msg}"
    );
    let (e, msg) = csv_error("s,y\n0.1,BENIGN\n0.5,DoS\n", "s", "y", None, None);
    assert!(matches!(e, EvalError::BadLabelCell { row: 1, .. }), "{msg}");
    let (e, msg) = csv_error("s,y\n0.1,0\n0.5,\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::EmptyCell {
                row: 2,
                role: "label",
                ..
            }
        ),
        "{msg}"
    );
}

#[test]
fn csv_one_class_is_an_error() {
    let (e, msg) = csv_error("s,y\n0.1,0\n0.5,0\n0.7,false\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::OneClassInFile {
                n: 3,
                class: "normal",
                ..
            }
        ),
        "{msg}"
    );
    let (e, msg) = csv_error("s,y\n0.1,1\n0.5,1\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::OneClassInFile {
                class: "anomalies",
                ..
            }
        ),
        "{msg}"
    );
    // --normal value that no row has: say so, and show the values there are
    let (e, msg) = csv_error("s,y\n0.1,BENIGN\n0.5,DoS\n", "s", "y", None, Some("Benign"));
    assert!(
        matches!(
            e,
            EvalError::OneClassInFile {
                class: "anomalies",
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("'Benign'") && msg.contains("BENIGN, DoS"),
        "{msg}"
    );
}

#[test]
fn csv_blank_line_ragged_line_empty_file_and_folder() {
    // a blank line is a row of empty cells: the row number still matches the file
    let (e, msg) = csv_error("s,y\n0.1,0\n\n0.5,1\n", "s", "y", None, None);
    assert!(
        matches!(
            e,
            EvalError::EmptyCell {
                row: 2,
                role: "score",
                ..
            }
        ),
        "{msg}"
    );
    let (e, msg) = csv_error("s,y\n0.1,0\n0.5,1,7\n", "s", "y", None, None);
    assert!(matches!(e, EvalError::Csv { .. }), "{msg}");
    let (e, msg) = csv_error("", "s", "y", None, None);
    assert!(matches!(e, EvalError::Csv { .. }), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let e = eval_scores_csv(dir.path(), "s", "y", None, None).unwrap_err();
    assert!(e.to_string().contains("folder"), "{e}");
}

#[test]
fn csv_header_only_and_empty_family() {
    let (e, msg) = csv_error("s,y\n", "s", "y", None, None);
    assert!(matches!(e, EvalError::NoRows { .. }), "{msg}");
    let (e, msg) = csv_error(
        "s,y,f\n0.1,0,\n0.5,1,dos\n0.6,1,\n",
        "s",
        "y",
        Some("f"),
        None,
    );
    assert!(
        matches!(
            e,
            EvalError::EmptyCell {
                row: 3,
                role: "family",
                ..
            }
        ),
        "{msg}"
    );
}

#[test]
fn csv_family_of_normal_rows_is_ignored() {
    // normals (even with an empty or odd family cell) are shared by every family
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(
        &dir,
        "f.csv",
        "s,y,f\n0.1,0,x\n0.5,1,dos\n0.6,1,web\n0.2,0,\n",
    );
    let r = eval_scores_csv(&p, "s", "y", Some("f"), None).unwrap();
    let t = r.families.unwrap();
    assert_eq!(t.rows.len(), 2);
    assert_eq!(t.rows[0].n_normal, 2);
    assert_eq!(
        t.micro_avg.n_normal, 4,
        "normals counted once per family when pooled"
    );
}

// ---------------------------------------------------------------------------------------
// Error cases of the plain functions
// ---------------------------------------------------------------------------------------

#[test]
fn bad_inputs_give_named_errors() {
    let y = [false, true, false, true];
    let s = [0.1, 0.9, 0.2, 0.8];
    assert!(matches!(roc_auc(&[], &[]), Err(EvalError::Empty { .. })));
    let e = roc_auc(&y, &s[..3]).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::LengthMismatch {
                left: 3,
                right: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = average_precision(&y, &[0.1, f64::NAN, 0.2, 0.8]).unwrap_err();
    assert!(matches!(e, EvalError::NonFinite { index: 1, .. }), "{e}");
    assert!(e.to_string().contains("NaN"), "{e}");
    let e = best_f1_threshold(&[false; 4], &s).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::SingleClass {
                n: 4,
                class: "normal"
            }
        ),
        "{e}"
    );
    let e = precision_recall_curve(&[true; 4], &s).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::SingleClass {
                class: "anomalies",
                ..
            }
        ),
        "{e}"
    );
    for bad in [0.0, -0.1, 1.5, f64::NAN] {
        assert!(matches!(
            fpr_at_tpr(&y, &s, bad),
            Err(EvalError::BadLevel { .. })
        ));
    }
    assert!(matches!(
        ThresholdMetrics::at(&y, &s, f64::NAN),
        Err(EvalError::NanThreshold)
    ));
    // single class is fine for thresholded metrics (zero_division = 0)
    let m = ThresholdMetrics::at(&[false; 4], &s, 0.5).unwrap();
    assert_eq!(
        (m.precision, m.recall, m.f1, m.mcc, m.accuracy),
        (0.0, 0.0, 0.0, 0.0, 0.5)
    );
    assert!(matches!(
        histogram(&s, &[1.0]),
        Err(EvalError::BadEdges { .. })
    ));
    assert!(matches!(
        histogram(&s, &[0.0, 0.5, 0.5]),
        Err(EvalError::BadEdges { .. })
    ));
    assert!(matches!(
        histogram(&s, &[0.0, f64::INFINITY]),
        Err(EvalError::NonFinite { .. })
    ));
    assert!(matches!(
        histogram(&[f64::NAN], &[0.0, 1.0]),
        Err(EvalError::NonFinite { .. })
    ));
    assert!(matches!(
        equal_bins(0.0, 1.0, 0),
        Err(EvalError::BadEdges { .. })
    ));
    assert!(matches!(
        equal_bins(1.0, 1.0, 3),
        Err(EvalError::BadEdges { .. })
    ));
    assert_eq!(labels_from_01(&[0, 1, 1]).unwrap(), [false, true, true]);
    assert!(matches!(
        labels_from_01(&[0, 2]),
        Err(EvalError::BadLabel { index: 1, value: 2 })
    ));
    assert!(matches!(
        family_table(&[], 0.5),
        Err(EvalError::Empty { .. })
    ));
    let e = family_table(
        &[FamilySet {
            name: "dos",
            labels: &[true, true],
            scores: &[0.1, 0.2],
        }],
        0.5,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("family 'dos': all 2 samples are anomalies"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Labelled scores with both classes; scores k/8 for small integers k, so ties are common
/// and every transform below is exact enough to keep the order and the ties.
fn labelled() -> impl Strategy<Value = (Vec<bool>, Vec<f64>)> {
    (2usize..60)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(any::<bool>(), n),
                proptest::collection::vec(-40i32..40, n),
            )
        })
        .prop_map(|(mut y, k)| {
            y[0] = true;
            y[1] = false;
            (y, k.into_iter().map(|k| f64::from(k) / 8.0).collect())
        })
}

/// Mann–Whitney by counting pairs: an independent AUC.
fn auc_by_pairs(y: &[bool], s: &[f64]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for i in (0..y.len()).filter(|&i| y[i]) {
        for j in (0..y.len()).filter(|&j| !y[j]) {
            pairs += 1.0;
            if s[i] > s[j] {
                wins += 1.0;
            } else if s[i] == s[j] {
                wins += 0.5;
            }
        }
    }
    wins / pairs
}

/// Found by `summaries_stay_in_range`: nine anomalies with recall steps of 1/9 summed to an AP
/// of 1.0000000000000002.
#[test]
fn a_perfect_ranking_with_ties_gives_summaries_of_exactly_one() {
    let y = [true, false, true, true, true, true, true, true, true, true];
    let s = [0.0, -3.625, 0.0, 0.125, 0.0, 0.25, 0.0, 0.0, 0.0, 0.375];
    let r = ranking_metrics(&y, &s).unwrap();
    for v in [
        r.auc_roc,
        r.average_precision,
        r.auc_pr_trapezoid,
        r.best_f1.f1,
    ] {
        assert!((0.0..=1.0).contains(&v), "{v}");
    }
    assert_eq!(r.average_precision, 1.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn auc_equals_pair_counting((y, s) in labelled()) {
        prop_assert!((roc_auc(&y, &s).unwrap() - auc_by_pairs(&y, &s)).abs() <= TOL);
    }

    #[test]
    fn negated_scores_give_one_minus_auc((y, s) in labelled()) {
        let neg: Vec<f64> = s.iter().map(|x| -x).collect();
        let a = roc_auc(&y, &s).unwrap();
        prop_assert!((roc_auc(&y, &neg).unwrap() - (1.0 - a)).abs() <= TOL);
    }

    #[test]
    fn strictly_increasing_transforms_change_nothing((y, s) in labelled()) {
        let base = ranking_metrics(&y, &s).unwrap();
        let transforms: [fn(f64) -> f64; 2] = [|x| 3.0 * x + 1.0, |x| (x / 10.0).exp()];
        for g in transforms {
            let t: Vec<f64> = s.iter().map(|&x| g(x)).collect();
            let r = ranking_metrics(&y, &t).unwrap();
            prop_assert!((r.auc_roc - base.auc_roc).abs() <= TOL);
            prop_assert!((r.average_precision - base.average_precision).abs() <= TOL);
            prop_assert!((r.auc_pr_trapezoid - base.auc_pr_trapezoid).abs() <= TOL);
            prop_assert_eq!(r.fpr95.anomaly_positive.fpr, base.fpr95.anomaly_positive.fpr);
            prop_assert_eq!(r.fpr95.normal_positive.fpr, base.fpr95.normal_positive.fpr);
            prop_assert_eq!(r.best_f1.f1, base.best_f1.f1);
            prop_assert_eq!(r.best_f1.precision, base.best_f1.precision);
            prop_assert_eq!(r.best_f1.recall, base.best_f1.recall);
            prop_assert_eq!(r.best_f1.tau, g(base.best_f1.tau));
            let m0 = ThresholdMetrics::at(&y, &s, base.best_f1.tau).unwrap();
            let m1 = ThresholdMetrics::at(&y, &t, r.best_f1.tau).unwrap();
            prop_assert_eq!(m0.mcc, m1.mcc);
        }
    }

    #[test]
    fn summaries_stay_in_range((y, s) in labelled(), tau in -6.0f64..6.0) {
        let r = ranking_metrics(&y, &s).unwrap();
        for v in [r.auc_roc, r.average_precision, r.auc_pr_trapezoid, r.best_f1.f1,
                  r.fpr95.anomaly_positive.fpr, r.fpr95.normal_positive.fpr] {
            prop_assert!((0.0..=1.0).contains(&v), "{v}");
        }
        prop_assert!(r.fpr95.anomaly_positive.tpr >= 0.95);
        prop_assert!(r.fpr95.normal_positive.tpr >= 0.95);
        let m = ThresholdMetrics::at(&y, &s, tau).unwrap();
        prop_assert!((-1.0..=1.0).contains(&m.mcc), "mcc {}", m.mcc);
        prop_assert_eq!(m.tp + m.fn_, y.iter().filter(|&&v| v).count() as u64);
        prop_assert_eq!(m.fp + m.tn, y.iter().filter(|&&v| !v).count() as u64);
    }

    #[test]
    fn best_f1_is_the_max_and_the_smallest_tie((y, s) in labelled()) {
        let b = best_f1_threshold(&y, &s).unwrap();
        let mut distinct = s.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let f1s: Vec<f64> = distinct
            .iter()
            .map(|&t| ThresholdMetrics::at(&y, &s, t).unwrap().f1)
            .collect();
        let best = f1s.iter().cloned().fold(f64::MIN, f64::max);
        prop_assert_eq!(b.f1, best);
        let first = distinct[f1s.iter().position(|&f| f == best).unwrap()];
        prop_assert_eq!(b.tau, first);
    }

    #[test]
    fn fpr_at_tpr_is_the_lowest_fpr_reaching_the_level(
        (y, s) in labelled(),
        level in prop_oneof![Just(0.95), Just(0.5), Just(1.0), 0.01f64..1.0],
    ) {
        // brute force: the largest distinct score t whose recall reaches the level
        let mut distinct = s.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let t = distinct
            .iter()
            .rev()
            .copied()
            .find(|&t| ThresholdMetrics::at(&y, &s, t).unwrap().recall >= level)
            .unwrap();
        let m = ThresholdMetrics::at(&y, &s, t).unwrap();
        let got = fpr_at_tpr(&y, &s, level).unwrap();
        prop_assert_eq!(got.threshold, t);
        prop_assert_eq!(got.tpr, m.recall);
        prop_assert_eq!(got.fpr, m.fp as f64 / (m.fp + m.tn) as f64);
    }

    #[test]
    fn input_order_does_not_matter(
        (y, s, perm) in labelled().prop_flat_map(|(y, s)| {
            let idx: Vec<usize> = (0..y.len()).collect();
            (Just(y), Just(s), Just(idx).prop_shuffle())
        })
    ) {
        let y2: Vec<bool> = perm.iter().map(|&i| y[i]).collect();
        let s2: Vec<f64> = perm.iter().map(|&i| s[i]).collect();
        prop_assert_eq!(ranking_metrics(&y, &s).unwrap(), ranking_metrics(&y2, &s2).unwrap());
        prop_assert_eq!(roc_curve(&y, &s).unwrap(), roc_curve(&y2, &s2).unwrap());
        prop_assert_eq!(
            precision_recall_curve(&y, &s).unwrap(),
            precision_recall_curve(&y2, &s2).unwrap()
        );
        let t = s[0];
        prop_assert_eq!(
            ThresholdMetrics::at(&y, &s, t).unwrap(),
            ThresholdMetrics::at(&y2, &s2, t).unwrap()
        );
    }

    #[test]
    fn histogram_counts_everything_in_range(
        v in proptest::collection::vec(-20i32..20, 0..80),
        n in 1usize..9,
    ) {
        let v: Vec<f64> = v.into_iter().map(f64::from).collect();
        let edges = equal_bins(-10.0, 10.0, n).unwrap();
        let h = histogram(&v, &edges).unwrap();
        let inside = v.iter().filter(|&&x| (-10.0..=10.0).contains(&x)).count() as u64;
        prop_assert_eq!(h.iter().sum::<u64>(), inside);
    }

    #[test]
    fn wilcoxon_is_symmetric_and_a_probability(
        pairs in proptest::collection::vec((0i32..12, 0i32..12), 1..70)
    ) {
        let x: Vec<f64> = pairs.iter().map(|p| f64::from(p.0)).collect();
        let y: Vec<f64> = pairs.iter().map(|p| f64::from(p.1)).collect();
        match (wilcoxon(&x, &y), wilcoxon(&y, &x)) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.statistic, b.statistic);
                prop_assert!((a.p_value - b.p_value).abs() <= 1e-15);
                prop_assert!(a.p_value > 0.0 && a.p_value <= 1.0);
            }
            (Err(EvalError::AllZeroDifferences { .. }), Err(_)) => {
                prop_assert!(x == y);
            }
            (a, b) => prop_assert!(false, "{a:?} {b:?}"),
        }
    }
}
