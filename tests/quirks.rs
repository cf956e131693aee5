//! Real-world quirks, each on a damaged copy of a shared file written into a temp dir.

mod common;
use common::*;
use heldout::data::{load, CategoricalPolicy, DropReason, Imputer, LoadOptions, MissingPolicy};

const CIC: &str = "cicids2017_improved_sample/cicids2017_improved_sample.csv.gz";
const UNSW: &str = "unsw_nb15/UNSW_NB15_82332.csv.gz";

fn col_index(header: &str, name: &str) -> usize {
    header.split(',').position(|c| c == name).unwrap()
}

fn set_cell(line: &str, j: usize, v: &str) -> String {
    let mut f: Vec<&str> = line.split(',').collect();
    f[j] = v;
    f.join(",")
}

fn cic_slice(n: usize) -> (String, Vec<String>) {
    spread_lines(CIC, n)
}

#[test]
fn bad_cells_are_counted_by_kind_and_rows_dropped_or_imputed() {
    let (h, mut lines) = cic_slice(300);
    let j = col_index(&h, "Flow Bytes/s");
    let k = col_index(&h, "Flow Packets/s");
    let bad = [
        (10, j, "Infinity"),
        (11, j, "inf"),
        (12, j, "-inf"),
        (13, j, "NaN"),
        (14, k, "?"),
        (15, k, ""),
        (16, k, "-Infinity"),
        (17, k, "oops"),
    ];
    for (r, c, v) in bad {
        lines[r] = set_cell(&lines[r], c, v);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write_lines(&dir, "bad.csv", &h, &lines);
    let t = load(&p, &LoadOptions::new("Label")).unwrap();
    let c = &t.report.cells;
    assert_eq!(
        (
            c.pos_inf,
            c.neg_inf,
            c.nan,
            c.question,
            c.empty,
            c.non_numeric
        ),
        (2, 2, 1, 1, 1, 1)
    );
    assert_eq!(t.report.rows_dropped_missing, 8);
    assert_eq!(t.n_rows, 292);
    assert!(t.features.iter().all(|x| x.is_finite()));
    let by_col: Vec<(&str, u64)> = t
        .report
        .cells_by_column
        .iter()
        .map(|c| (c.column.as_str(), c.cells.total()))
        .collect();
    assert_eq!(by_col, vec![("Flow Bytes/s", 4), ("Flow Packets/s", 4)]);

    // Impute: rows kept, cells NaN until the training median fills them.
    let mut o = LoadOptions::new("Label");
    o.missing = MissingPolicy::ImputeMedian;
    let mut t = load(&p, &o).unwrap();
    assert_eq!(t.n_rows, 300);
    assert_eq!(t.report.rows_with_missing, 8);
    assert_eq!(t.missing_cells(), 8);
    let train: Vec<usize> = (0..150).collect();
    let imp = Imputer::fit(&t.features, t.n_features, &train);
    assert_eq!(imp.fill(&mut t.features), 8);
    assert_eq!(t.missing_cells(), 0);
}

#[test]
fn header_lines_repeated_inside_the_data_are_removed_and_located() {
    let (h, lines) = cic_slice(300);
    let mut damaged = lines.clone();
    damaged.insert(100, h.clone());
    damaged.insert(201, h.clone());
    let dir = tempfile::tempdir().unwrap();
    let clean = load(
        &write_lines(&dir, "a.csv", &h, &lines),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    let t = load(
        &write_lines(&dir, "b.csv", &h, &damaged),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    assert_eq!(t.report.repeated_header_lines, 2);
    // header = line 1, data line k = line k+1
    assert_eq!(t.report.repeated_header_at, vec![102, 203]);
    assert_eq!(t.features, clean.features);
    assert_eq!(t.family, clean.family);
}

#[test]
fn crlf_endings_and_a_utf8_bom_change_nothing() {
    let (h, lines) = cic_slice(200);
    let dir = tempfile::tempdir().unwrap();
    let clean = load(
        &write_lines(&dir, "a.csv", &h, &lines),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    let mut s = String::from("\u{feff}");
    s.push_str(&h);
    s.push_str("\r\n");
    for l in &lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    let p = dir.path().join("crlf.csv");
    std::fs::write(&p, s).unwrap();
    let t = load(&p, &LoadOptions::new("Label")).unwrap();
    assert!(t.report.utf8_bom && t.report.crlf_line_endings);
    assert_eq!(t.features, clean.features);
    assert_eq!(t.feature_names, clean.feature_names);
    assert_eq!(t.families, clean.families);
}

#[test]
fn labels_with_stray_whitespace_are_stripped_and_counted() {
    let (h, lines) = cic_slice(200);
    let dir = tempfile::tempdir().unwrap();
    let clean = load(
        &write_lines(&dir, "a.csv", &h, &lines),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    let j = col_index(&h, "Label");
    let damaged: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let lab = l.split(',').nth(j).unwrap().to_string();
            if i % 3 == 0 {
                set_cell(l, j, &format!("  {lab} "))
            } else {
                l.clone()
            }
        })
        .collect();
    let t = load(
        &write_lines(&dir, "b.csv", &h, &damaged),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    assert_eq!(t.families, clean.families);
    assert_eq!(t.family, clean.family);
    assert_eq!(t.report.labels_stripped, 67);
}

#[test]
fn identifier_columns_are_found_by_name_and_by_content() {
    let (h, lines) = cic_slice(200);
    // Rename the IP and timestamp columns so only their content can give them away.
    let h2 = h
        .replace("Src IP", "Origin Host")
        .replace("Timestamp", "When");
    let dir = tempfile::tempdir().unwrap();
    let t = load(
        &write_lines(&dir, "a.csv", &h2, &lines),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    let get = |n: &str| {
        t.report
            .dropped_columns
            .iter()
            .find(|d| d.name == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(get("id").reason, DropReason::Identifier);
    assert_eq!(get("Flow ID").reason, DropReason::Identifier);
    let host = get("Origin Host");
    assert_eq!(host.reason, DropReason::Identifier);
    assert!(host.detail.contains("IP addresses"), "{}", host.detail);
    let when = get("When");
    assert_eq!(when.reason, DropReason::Identifier);
    assert!(when.detail.contains("timestamps"), "{}", when.detail);
    assert!(!t
        .feature_names
        .iter()
        .any(|n| n == "Origin Host" || n == "When"));

    // A running row number under another name (UNSW-NB15's id counts 1, 2, 3, …).
    let (h, lines) = head_lines(UNSW, 300);
    let h2 = h.replacen("id,", "row_no,", 1);
    let t = load(
        &write_lines(&dir, "u.csv", &h2, &lines),
        &LoadOptions::new("attack_cat"),
    )
    .unwrap();
    let d = t
        .report
        .dropped_columns
        .iter()
        .find(|d| d.name == "row_no")
        .unwrap();
    assert_eq!(d.reason, DropReason::Identifier);
    assert!(d.detail.contains("running"));
    // --keep-identifiers keeps it.
    let mut o = LoadOptions::new("attack_cat");
    o.keep_identifiers = true;
    let t = load(&write_lines(&dir, "u.csv", &h2, &lines), &o).unwrap();
    assert!(t.feature_names.iter().any(|n| n == "row_no"));
}

#[test]
fn categorical_text_columns_are_one_hot_encoded_or_dropped() {
    let (h, lines) = head_lines(UNSW, 2000);
    let dir = tempfile::tempdir().unwrap();
    let p = write_lines(&dir, "u.csv", &h, &lines);
    let t = load(&p, &LoadOptions::new("attack_cat")).unwrap();
    // Independent count of the distinct values in the slice.
    let j = col_index(&h, "state");
    let mut states: Vec<&str> = lines.iter().map(|l| l.split(',').nth(j).unwrap()).collect();
    states.sort();
    states.dedup();
    let onehot: Vec<&String> = t
        .feature_names
        .iter()
        .filter(|n| n.starts_with("state="))
        .collect();
    let expect: Vec<String> = states.iter().map(|s| format!("state={s}")).collect();
    assert_eq!(onehot.len(), expect.len());
    // each row has exactly one state column set
    let cols: Vec<usize> = t
        .feature_names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.starts_with("state="))
        .map(|(i, _)| i)
        .collect();
    for r in 0..t.n_rows {
        let s: f32 = cols.iter().map(|&c| t.row(r)[c]).sum();
        assert_eq!(s, 1.0);
    }
    let mut o = LoadOptions::new("attack_cat");
    o.categorical = CategoricalPolicy::Drop;
    let t = load(&p, &o).unwrap();
    for c in ["proto", "service", "state"] {
        assert!(t
            .report
            .dropped_columns
            .iter()
            .any(|d| d.name == c && d.reason == DropReason::Categorical));
    }
    assert!(!t.feature_names.iter().any(|n| n.contains('=')));
}

#[test]
fn lines_with_the_wrong_field_count_are_removed_and_located() {
    let (h, mut lines) = cic_slice(100);
    lines[9] = lines[9].rsplit_once(',').unwrap().0.to_string(); // one field short
    lines[20] = format!("{},extra", lines[20]);
    let dir = tempfile::tempdir().unwrap();
    let t = load(
        &write_lines(&dir, "a.csv", &h, &lines),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    assert_eq!(t.report.wrong_field_count_lines, 2);
    assert_eq!(t.report.wrong_field_count_at, vec![(11, 90), (22, 92)]);
    assert_eq!(t.n_rows, 98);
}

#[test]
fn a_folder_of_csvs_sharing_a_header_loads_as_one_table() {
    let (h, lines) = cic_slice(600);
    let dir = tempfile::tempdir().unwrap();
    let whole = load(
        &write_lines(&dir, "whole.csv", &h, &lines),
        &LoadOptions::new("Label"),
    )
    .unwrap();
    let days = tempfile::tempdir().unwrap();
    write_lines(&days, "Monday.csv", &h, &lines[..200]);
    write_lines(&days, "Tuesday.csv", &h, &lines[200..450]);
    // one day gzip'd
    let p = write_lines(&dir, "w.csv", &h, &lines[450..]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &std::fs::read(p).unwrap()).unwrap();
    std::fs::write(days.path().join("Wednesday.csv.gz"), gz.finish().unwrap()).unwrap();
    let t = load(days.path(), &LoadOptions::new("Label")).unwrap();
    assert_eq!(t.report.files.len(), 3);
    assert_eq!(t.features, whole.features);
    assert_eq!(t.family, whole.family);
    // A file with another header is an error naming it.
    write_lines(
        &days,
        "Thursday.csv",
        &h.replace("Flow Duration", "Duration"),
        &lines[..5],
    );
    let e = load(days.path(), &LoadOptions::new("Label"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Thursday.csv") && e.contains("Duration"), "{e}");
}

#[test]
fn parquet_loads_like_the_csv() {
    use polars::prelude::*;
    let (h, lines) = head_lines(UNSW, 500);
    let dir = tempfile::tempdir().unwrap();
    let csv = write_lines(&dir, "u.csv", &h, &lines);
    let from_csv = load(&csv, &LoadOptions::new("attack_cat")).unwrap();
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(csv.clone()))
        .unwrap()
        .finish()
        .unwrap();
    let pq = dir.path().join("u.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let t = load(&pq, &LoadOptions::new("attack_cat")).unwrap();
    assert_eq!(t.feature_names, from_csv.feature_names);
    assert_eq!(t.families, from_csv.families);
    assert_eq!(t.family, from_csv.family);
    assert_eq!(t.features, from_csv.features);
}

#[test]
fn duplicates_are_counted_and_optionally_dropped() {
    let (h, mut lines) = cic_slice(100);
    // Same flow features under a new id and timestamp: still a duplicate for a model.
    let dup = lines[5].clone();
    let j = col_index(&h, "id");
    lines.push(set_cell(&dup, j, "999999999"));
    let dir = tempfile::tempdir().unwrap();
    let p = write_lines(&dir, "a.csv", &h, &lines);
    let t = load(&p, &LoadOptions::new("Label")).unwrap();
    let base = load(
        &write_lines(&dir, "b.csv", &h, &lines[..100]),
        &LoadOptions::new("Label"),
    )
    .unwrap()
    .report
    .duplicate_rows;
    assert_eq!(t.report.duplicate_rows, base + 1);
    let mut o = LoadOptions::new("Label");
    o.drop_duplicates = true;
    let t = load(&p, &o).unwrap();
    assert_eq!(t.n_rows as u64, 101 - base - 1);
}
