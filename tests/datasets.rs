//! Every dataset in `../shared/data` loads, and its family counts equal the numbers in its
//! `SOURCE.md` (transcribed below; the curators counted them with their own scripts).

mod common;
use common::*;
use heldout::data::{load, DropReason, LoadOptions, MissingPolicy};

fn opts(label: &str, map: Option<&str>) -> LoadOptions {
    let mut o = LoadOptions::new(label);
    o.family_map = map.map(shared);
    o
}

#[test]
fn cicids2017_sample_with_family_map() {
    let t = load(
        &shared("cicids2017_improved_sample/cicids2017_improved_sample.csv.gz"),
        &opts("Label", Some("cicids2017_improved_sample/family_map.csv")),
    )
    .unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("DoS", 18863),
            ("Benign", 7492),
            ("PortScan", 7411),
            ("Infiltration", 7365),
            ("DDoS", 7362),
            ("BruteForce", 6933),
            ("Botnet", 736),
            ("Web", 104),
            ("Heartbleed", 11),
        ])
    );
    // SOURCE.md: identifiers id, Flow ID, Src IP, Src Port, Dst IP, Timestamp (and Dst Port);
    // constant: Bwd URG Flags, Subflow Bwd Packets, Attempted Category.
    let reason = |n: &str| {
        t.report
            .dropped_columns
            .iter()
            .find(|d| d.name == n)
            .map(|d| d.reason)
    };
    for id in [
        "id",
        "Flow ID",
        "Src IP",
        "Src Port",
        "Dst IP",
        "Dst Port",
        "Timestamp",
    ] {
        assert_eq!(reason(id), Some(DropReason::Identifier), "{id}");
    }
    for c in ["Bwd URG Flags", "Subflow Bwd Packets", "Attempted Category"] {
        assert_eq!(reason(c), Some(DropReason::Constant), "{c}");
    }
    assert_eq!(t.n_features, 80);
    assert_eq!(t.report.cells.total(), 0);
}

#[test]
fn ciciot2023_sample() {
    let t = load(
        &shared("ciciot2023_sample/ciciot2023_sample.csv.gz"),
        &opts("label_multiclass", None),
    )
    .unwrap();
    let mut e = vec![("Uploading", 1252)];
    for f in [
        "Benign",
        "BruteForce",
        "DDoS",
        "DoS",
        "Malware",
        "Mirai",
        "Recon",
        "Spoofing",
        "WebAttack",
    ] {
        e.push((f, 2000));
    }
    assert_eq!(counts(&t), expect(&e));
    // label_binary is a copy of the target: detected as a label leak.
    assert!(t
        .report
        .dropped_columns
        .iter()
        .any(|d| d.name == "label_binary" && d.reason == DropReason::LabelLeak));
    assert_eq!(t.n_features, 39);
    // SOURCE.md: exact duplicate rows (all columns equal): 55.
    assert_eq!(t.report.duplicate_rows, 55);
}

#[test]
fn unsw_nb15_attack_cat() {
    let t = load(
        &shared("unsw_nb15/UNSW_NB15_82332.csv.gz"),
        &opts("attack_cat", None),
    )
    .unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("Normal", 37000),
            ("Generic", 18871),
            ("Exploits", 11132),
            ("Fuzzers", 6062),
            ("DoS", 4089),
            ("Reconnaissance", 3496),
            ("Analysis", 677),
            ("Backdoor", 583),
            ("Shellcode", 378),
            ("Worms", 44),
        ])
    );
    assert!(t.report.crlf_line_endings);
    // proto (131), service (13), state (7) one-hot encoded.
    let levels: Vec<(String, usize)> = t
        .report
        .one_hot
        .iter()
        .map(|o| (o.name.clone(), o.levels))
        .collect();
    assert_eq!(
        levels,
        vec![
            ("proto".to_string(), 131),
            ("service".to_string(), 13),
            ("state".to_string(), 7)
        ]
    );
    // SOURCE.md: "Excluding id, there are 26,387 duplicated feature rows".
    assert_eq!(t.report.duplicate_rows, 26387);
}

#[test]
fn nsl_kdd_three_files() {
    let map = Some("nsl_kdd/attack_family_map.csv");
    for (file, e) in [
        (
            "nsl_kdd/KDDTrain+_20Percent.csv.gz",
            [
                ("normal", 13449),
                ("DoS", 9234),
                ("Probe", 2289),
                ("R2L", 209),
                ("U2R", 11),
            ],
        ),
        (
            "nsl_kdd/KDDTest+.csv.gz",
            [
                ("normal", 9711),
                ("DoS", 7460),
                ("R2L", 2885),
                ("Probe", 2421),
                ("U2R", 67),
            ],
        ),
        (
            "nsl_kdd/KDDTest-21.csv.gz",
            [
                ("DoS", 4344),
                ("R2L", 2885),
                ("Probe", 2402),
                ("normal", 2152),
                ("U2R", 67),
            ],
        ),
    ] {
        let mut o = opts("attack", map);
        o.drop_columns = vec!["difficulty".into()];
        let t = load(&shared(file), &o).unwrap();
        assert_eq!(counts(&t), expect(&e), "{file}");
    }
}

#[test]
fn kddcup99_ten_percent() {
    let t = load(
        &shared("kddcup99_10percent/kddcup.data_10_percent.csv.gz"),
        &opts("attack", Some("kddcup99_10percent/attack_family_map.csv")),
    )
    .unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("DoS", 391458),
            ("normal", 97278),
            ("Probe", 4107),
            ("R2L", 1126),
            ("U2R", 52)
        ])
    );
    // SOURCE.md: exact duplicate rows 348435; constant num_outbound_cmds, is_host_login.
    assert_eq!(t.report.duplicate_rows, 348435);
    for c in ["num_outbound_cmds", "is_host_login"] {
        assert!(t
            .report
            .dropped_columns
            .iter()
            .any(|d| d.name == c && d.reason == DropReason::Constant));
    }
}

#[test]
fn arrhythmia_keeps_every_patient_when_imputing() {
    let mut o = opts("class", None);
    o.missing = MissingPolicy::ImputeMedian;
    let t = load(&shared("arrhythmia_uci/arrhythmia.csv.gz"), &o).unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("1", 245),
            ("2", 44),
            ("3", 15),
            ("4", 15),
            ("5", 13),
            ("6", 25),
            ("7", 3),
            ("8", 2),
            ("9", 9),
            ("10", 50),
            ("14", 4),
            ("15", 5),
            ("16", 22)
        ])
    );
    // SOURCE.md: `?` cells {'T': 8, 'P': 22, 'QRST': 1, 'J': 376, 'heartrate': 1}.
    let q: Vec<(String, u64)> = t
        .report
        .cells_by_column
        .iter()
        .map(|c| (c.column.clone(), c.cells.question))
        .collect();
    for (col, n) in [
        ("J", 376),
        ("P", 22),
        ("T", 8),
        ("QRST", 1),
        ("heartrate", 1),
    ] {
        assert!(q.contains(&(col.to_string(), n)), "{col}: {q:?}");
    }
    assert_eq!(t.report.cells.question, 408);
    // J is mostly missing and dropped as a column; the 32 other missing cells stay NaN.
    assert!(t
        .report
        .dropped_columns
        .iter()
        .any(|d| d.name == "J" && d.reason == DropReason::MostlyMissing));
    assert_eq!(t.missing_cells(), 22 + 8 + 1 + 1);
    assert_eq!(t.report.rows_with_missing, 32);
}

#[test]
fn ann_thyroid_train_and_test() {
    let t = load(
        &shared("ann_thyroid/ann_thyroid_train.csv.gz"),
        &opts("class", None),
    )
    .unwrap();
    assert_eq!(counts(&t), expect(&[("1", 93), ("2", 191), ("3", 3488)]));
    assert_eq!(t.report.duplicate_rows, 63);
    let t = load(
        &shared("ann_thyroid/ann_thyroid_test.csv.gz"),
        &opts("class", None),
    )
    .unwrap();
    assert_eq!(counts(&t), expect(&[("1", 73), ("2", 177), ("3", 3178)]));
    assert_eq!(t.report.duplicate_rows, 8);
    assert!(t
        .report
        .dropped_columns
        .iter()
        .any(|d| d.name == "hypopituitary" && d.reason == DropReason::Constant));
}

#[test]
fn shuttle() {
    let t = load(&shared("shuttle/shuttle.csv.gz"), &opts("target", None)).unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("1", 45586),
            ("2", 50),
            ("3", 171),
            ("4", 8903),
            ("5", 3267),
            ("6", 10),
            ("7", 13)
        ])
    );
    assert_eq!(t.n_features, 9);
}

#[test]
fn satimage() {
    let t = load(&shared("satimage/satimage.csv.gz"), &opts("target", None)).unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("1", 1533),
            ("2", 703),
            ("3", 1358),
            ("4", 626),
            ("5", 707),
            ("7", 1508)
        ])
    );
    assert_eq!(t.n_features, 36);
}

#[test]
fn pendigits() {
    let t = load(&shared("pendigits/pendigits.csv.gz"), &opts("target", None)).unwrap();
    assert_eq!(
        counts(&t),
        expect(&[
            ("0", 1143),
            ("1", 1143),
            ("2", 1144),
            ("3", 1055),
            ("4", 1144),
            ("5", 1055),
            ("6", 1056),
            ("7", 1142),
            ("8", 1055),
            ("9", 1055)
        ])
    );
    assert_eq!(t.n_features, 16);
}

/// The reference protocol's cleaning (PROTOCOL.md §1–2) gives the same feature columns, rows
/// and families as the PyTorch reference (`protocol_fixtures.json`, written by its `fixtures.py`).
#[test]
fn protocol_cleaning_matches_the_reference_fixtures() {
    let fx = protocol_fixtures();
    for (key, t) in protocol_tables() {
        let f = &fx[key];
        let names: Vec<String> = serde_json::from_value(f["feature_names"].clone()).unwrap();
        assert_eq!(t.feature_names, names, "{key}: feature columns");
        assert_eq!(t.n_rows as u64, f["n_rows"].as_u64().unwrap(), "{key}");
        let fams: Vec<String> = serde_json::from_value(f["families"].clone()).unwrap();
        assert_eq!(t.families, fams, "{key}");
        let sum: f64 = t.features.iter().map(|&x| x as f64).sum();
        let want = f["x_sum"].as_f64().unwrap();
        assert!(
            ((sum - want) / want).abs() < 1e-6,
            "{key}: sum of features {sum} vs {want}"
        );
    }
}
