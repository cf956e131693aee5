//! Bad input gives one clear line on stderr, a non-zero exit, no panic and nothing on stdout.

mod common;
use common::*;
use std::process::Command;

fn heldout(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heldout"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails the test unless the run failed cleanly with one error line containing every `needle`.
fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let (code, out, err) = heldout(args);
    assert_eq!(code, 1, "exit code; stderr: {err}");
    assert!(out.is_empty(), "partial output on stdout: {out}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "'{n}' missing from: {err}");
    }
    err
}

#[test]
fn missing_file() {
    fails_with(
        &["inspect", "/nonexistent/flows.csv", "--label", "Label"],
        &["/nonexistent/flows.csv", "no such file"],
    );
}

#[test]
fn binary_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("capture.csv");
    std::fs::write(&p, [0u8, 159, 146, 150, 0, 1, 2, 3, 10, 0, 0]).unwrap();
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "Label"],
        &["capture.csv", "binary"],
    );
    // a .gz that is not gzip
    let p = dir.path().join("flows.csv.gz");
    std::fs::write(&p, b"a,b\n1,2\n").unwrap();
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "a"],
        &["flows.csv.gz", "not gzip"],
    );
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.csv");
    std::fs::write(&p, b"").unwrap();
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "Label"],
        &["empty.csv", "empty"],
    );
    // header only
    std::fs::write(&p, b"x,Label\n").unwrap();
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "Label"],
        &["empty.csv", "no data rows"],
    );
}

#[test]
fn label_column_absent_lists_columns_and_suggests_the_closest() {
    let p = shared("ciciot2023_sample/ciciot2023_sample.csv.gz");
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "label_multi"],
        &[
            "no column named 'label_multi'",
            "did you mean 'label_multiclass'",
            "Header_Length",
        ],
    );
}

#[test]
fn family_map_leaving_labels_unmapped_lists_them_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("partial_map.csv");
    // CIC-IDS2017's map without the two rarest labels.
    let full =
        std::fs::read_to_string(shared("cicids2017_improved_sample/family_map.csv")).unwrap();
    let partial: String = full
        .lines()
        .filter(|l| !l.starts_with("Heartbleed") && !l.starts_with("Infiltration,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&map, partial).unwrap();
    let p = shared("cicids2017_improved_sample/cicids2017_improved_sample.csv.gz");
    let (ps, ms) = (p.to_str().unwrap(), map.to_str().unwrap());
    fails_with(
        &["inspect", ps, "--label", "Label", "--family-map", ms],
        &[
            "partial_map.csv",
            "2 label(s)",
            "'Heartbleed'",
            "'Infiltration'",
            "--keep-unmapped",
        ],
    );
    let (code, out, _) = heldout(&[
        "inspect",
        ps,
        "--label",
        "Label",
        "--family-map",
        ms,
        "--keep-unmapped",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["families"]["Heartbleed"], 11);
    // The unmapped label "Infiltration" (36 rows) has the name of the family that
    // "Infiltration - Portscan" (7,329 rows) maps to, so the two form one family.
    assert_eq!(v["families"]["Infiltration"], 7329 + 36);
}

#[test]
fn fewer_than_two_families() {
    let (h, lines) = head_lines(
        "cicids2017_improved_sample/cicids2017_improved_sample.csv.gz",
        50,
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write_lines(&dir, "benign_only.csv", &h, &lines);
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "Label"],
        &["benign_only.csv", "1 family", "BENIGN", "at least two"],
    );
}

#[test]
fn no_numeric_feature_columns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("text.csv");
    std::fs::write(
        &p,
        "Src IP,Timestamp,Label\n10.0.0.1,2017-07-06 12:00:00,a\n10.0.0.2,2017-07-06 12:00:01,b\n",
    )
    .unwrap();
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "Label"],
        &[
            "text.csv",
            "no usable numeric feature column",
            "Src IP (identifier)",
        ],
    );
}

#[test]
fn drop_of_an_unknown_column_and_a_missing_label_flag() {
    let p = shared("satimage/satimage.csv.gz");
    fails_with(
        &[
            "inspect",
            p.to_str().unwrap(),
            "--label",
            "target",
            "--drop",
            "A01",
        ],
        &["'A01'", "did you mean 'A1'"],
    );
    fails_with(&["inspect", p.to_str().unwrap()], &["--label"]);
}

#[test]
fn json_output_has_families_and_the_cleaning_report() {
    let p = shared("unsw_nb15/UNSW_NB15_82332.csv.gz");
    let (code, out, err) = heldout(&[
        "inspect",
        p.to_str().unwrap(),
        "--label",
        "attack_cat",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 82332);
    assert_eq!(v["families"]["Normal"], 37000);
    assert_eq!(v["families"]["Worms"], 44);
    assert_eq!(v["features"], 190);
    assert_eq!(v["cleaning"]["crlf_line_endings"], true);
    let dropped = v["dropped_columns"].as_array().unwrap();
    assert!(dropped
        .iter()
        .any(|d| d["name"] == "id" && d["reason"] == "identifier"));
}

#[test]
fn demo_inspects_without_a_file() {
    let (code, out, _) = heldout(&["inspect", "--demo"]);
    assert_eq!(code, 0);
    assert!(out.contains("Normal") && out.contains("Mimic"), "{out}");
    let (code, out, _) = heldout(&["inspect", "--demo", "2d", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["features"], 2);
    assert_eq!(v["families"].as_object().unwrap().len(), 5);
}

#[test]
fn text_that_is_not_utf8_names_the_row_and_open_quotes_are_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("latin1.csv");
    std::fs::write(&p, b"a,b,Label\n1,2,x\n3,4,caf\xe9\n5,6,y\n").unwrap();
    fails_with(
        &["inspect", p.to_str().unwrap(), "--label", "Label"],
        &["latin1.csv", "data row 2", "UTF-8"],
    );
    let p = dir.path().join("quote.csv");
    std::fs::write(&p, "a,b,Label\n1,2,\"x\n3,4,y\n5,6,z\n7,8,x\n").unwrap();
    let (code, out, err) = heldout(&["inspect", p.to_str().unwrap(), "--label", "Label", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cleaning"]["wrong_field_count_lines"], 1);
    assert_eq!(v["rows"], 3);
}

/// Sizes that passed `check` and then overflowed in the episode sampler (issue 14): refused by
/// `validate` and `run`, naming the field and its bound.
#[test]
fn huge_episode_sizes_are_refused_not_overflowed() {
    let dir = tempfile::tempdir().unwrap();
    let text = heldout::experiment::DEMO_EXPERIMENT.replace(
        "EpisodeSpec(count: 5,",
        "EpisodeSpec(count: 5, inner_tasks: (0, 18446744073709551615),",
    );
    assert!(text.contains("18446744073709551615"));
    let f = dir.path().join("huge.ron");
    std::fs::write(&f, text).unwrap();
    fails_with(
        &["validate", f.to_str().unwrap()],
        &["episodes.inner_tasks", "at most 1000"],
    );
    fails_with(
        &[
            "run",
            "--demo",
            "--set",
            "episodes.count=18446744073709551615",
        ],
        &["episodes.count", "at most"],
    );
}

/// `--exit-after` takes a number of seconds; `inf` panicked in Duration::from_secs_f64.
#[test]
fn exit_after_must_be_a_finite_number_of_seconds() {
    for bad in ["inf", "NaN", "-1", "1e300"] {
        let arg = format!("--exit-after={bad}");
        let (code, _, err) = heldout(&["gui", &arg]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            !err.contains("panicked") && err.contains("seconds"),
            "{bad}: {err}"
        );
    }
}
