//! Helpers shared by the integration tests. Tests read the real datasets in `../shared/data`
//! (CI has them there too) and never copy them into the repository.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

/// `../shared/data` next to the repository.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// A file of the shared data.
pub fn shared(rel: &str) -> PathBuf {
    data_dir().join(rel)
}

/// The decompressed text of a shared `.csv.gz`.
pub fn gunzip(rel: &str) -> String {
    let f = std::fs::File::open(shared(rel)).unwrap();
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(f)
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// The header and the first `n` data lines of a shared `.csv.gz` (line endings removed).
pub fn head_lines(rel: &str, n: usize) -> (String, Vec<String>) {
    let text = gunzip(rel);
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r').to_string());
    let header = lines.next().unwrap();
    (header, lines.take(n).collect())
}

/// Writes lines (LF-terminated) into a file of a temp dir and returns its path.
pub fn write_lines(dir: &tempfile::TempDir, name: &str, header: &str, lines: &[String]) -> PathBuf {
    let mut s = String::with_capacity(lines.len() * 200);
    s.push_str(header);
    s.push('\n');
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    let p = dir.path().join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// Family name → row count of a table.
pub fn counts(t: &heldout::data::Table) -> std::collections::BTreeMap<String, usize> {
    t.families.iter().cloned().zip(t.family_counts()).collect()
}

/// Builds a name → count map from pairs.
pub fn expect(pairs: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The header and `n` data lines spread evenly over a shared `.csv.gz` (so that a class-sorted
/// file still gives every family), in file order.
pub fn spread_lines(rel: &str, n: usize) -> (String, Vec<String>) {
    let text = gunzip(rel);
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0).trim_end_matches('\r').to_string();
    let step = (lines.len() / n).max(1);
    (
        header,
        lines
            .iter()
            .step_by(step)
            .take(n)
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect(),
    )
}

/// The four datasets of the reference protocol (PROTOCOL.md §1), loaded with its cleaning:
/// (fixture key, table).
pub fn protocol_tables() -> Vec<(&'static str, heldout::data::Table)> {
    // (fixture key, file, label column, family map, columns the protocol removes by name)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [&'static str],
    );
    let cases: [Case; 4] = [
        (
            "cicids2017",
            "cicids2017_improved_sample/cicids2017_improved_sample.csv.gz",
            "Label",
            Some("cicids2017_improved_sample/family_map.csv"),
            &[],
        ),
        (
            "unsw_nb15",
            "unsw_nb15/UNSW_NB15_82332.csv.gz",
            "attack_cat",
            None,
            &[],
        ),
        (
            "ciciot2023",
            "ciciot2023_sample/ciciot2023_sample.csv.gz",
            "label_multiclass",
            None,
            &[],
        ),
        (
            "nsl_kdd",
            "nsl_kdd/KDDTrain+_20Percent.csv.gz",
            "attack",
            Some("nsl_kdd/attack_family_map.csv"),
            &["difficulty"],
        ),
    ];
    cases
        .iter()
        .map(|&(key, file, label, map, drop)| {
            let mut o = heldout::data::LoadOptions::new(label);
            o.family_map = map.map(shared);
            o.min_family_rows = 50;
            o.drop_columns = drop.iter().map(|s| s.to_string()).collect();
            (key, heldout::data::load(&shared(file), &o).unwrap())
        })
        .collect()
}

/// `../shared/reference/results/protocol_fixtures.json`.
pub fn protocol_fixtures() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("../reference/results/protocol_fixtures.json"))
            .unwrap(),
    )
    .unwrap()
}

/// Runs a command (usually the `heldout` binary) and returns its output, failing the test with
/// the command's stderr unless it exits successfully.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
