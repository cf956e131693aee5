//! Fuzz entry points: what `heldout` does with untrusted bytes — data files, experiment files,
//! `--set` overrides and `heldout eval`'s scores CSV — behind one function each that takes
//! arbitrary bytes and must never panic (errors are expected and ignored).
//!
//! `fuzz/` runs them under libFuzzer (`bench/fuzz.sh TARGET SECONDS`); `tests/fuzz.rs` runs a
//! short, seeded mutation pass of each inside `cargo test` and keeps every finding as a
//! regression test. The `*_errors` variants return the error messages, for those tests.
//!
//! Each entry point is cheap: small inputs give small work (the loader reads in 64 KiB chunks
//! here, not the default 32 MiB, and the plan shows three episodes as `heldout validate` does).

use crate::data::{self, demo::DemoKind, CategoricalPolicy, LoadOptions, MissingPolicy, Table};
use crate::experiment::{self, DataSpec, Experiment, Plan};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Loads `data[1..]` as a dataset file; see [`loader_errors`].
pub fn loader(data: &[u8]) {
    let _ = loader_errors(data);
}

/// Parses `data` as an experiment file and builds its plan; see [`experiment_ron_errors`].
pub fn experiment_ron(data: &[u8]) {
    let _ = experiment_ron_errors(data);
}

/// Applies `data` as `--set` overrides to the demo experiment; see [`set_override_errors`].
pub fn set_override(data: &[u8]) {
    let _ = set_override_errors(data);
}

/// Evaluates `data[1..]` as a scores CSV; see [`scores_csv_errors`].
pub fn scores_csv(data: &[u8]) {
    let _ = scores_csv_errors(data);
}

/// The file formats the loader reads, chosen by the first byte of a loader input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderFormat {
    /// The bytes as `.csv`.
    Csv,
    /// The bytes as `.csv.gz` (mostly not gzip: the loader's "not gzip data" path).
    RawGz,
    /// The bytes gzip-compressed, as `.csv.gz`: the CSV parser through gzip.
    GzipCsv,
    /// The bytes as `.parquet`.
    Parquet,
}

impl LoaderFormat {
    /// The format a mode byte selects (its two low bits).
    pub fn of(mode: u8) -> LoaderFormat {
        match mode & 3 {
            0 => LoaderFormat::Csv,
            1 => LoaderFormat::RawGz,
            2 => LoaderFormat::GzipCsv,
            _ => LoaderFormat::Parquet,
        }
    }

    /// The mode byte of this format with default loader options.
    pub fn mode(self) -> u8 {
        match self {
            LoaderFormat::Csv => 0,
            LoaderFormat::RawGz => 1,
            LoaderFormat::GzipCsv => 2,
            LoaderFormat::Parquet => 3,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            LoaderFormat::Csv => "csv",
            LoaderFormat::RawGz | LoaderFormat::GzipCsv => "csv.gz",
            LoaderFormat::Parquet => "parquet",
        }
    }
}

/// A loader input: `mode` (format in bits 0–1, loader options in bits 2–7) followed by the
/// file's bytes.
pub fn loader_input(mode: u8, file: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(file.len() + 1);
    v.push(mode);
    v.extend_from_slice(file);
    v
}

/// A temporary file, removed when dropped. The name is unique per process and call.
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str, bytes: &[u8]) -> std::io::Result<TempFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "heldout-fuzz-{}-{n}.{extension}",
            std::process::id()
        ));
        let file = TempFile(path);
        std::fs::write(&file.0, bytes)?;
        Ok(file)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes)?;
    e.finish()
}

/// Writes `data[1..]` to a temporary file of the format `data[0]` selects ([`LoaderFormat`]),
/// reads its columns and loads it with a label column chosen from them (`label` when they
/// cannot be read). Bits 2–7 of `data[0]` vary the loader options (categorical, missing,
/// duplicates, identifiers, minimum family rows). Returns the error messages.
pub fn loader_errors(data: &[u8]) -> Vec<String> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    let format = LoaderFormat::of(mode);
    let bytes = match format {
        LoaderFormat::GzipCsv => match gzip(rest) {
            Ok(b) => b,
            Err(e) => return vec![format!("gzip: {e}")],
        },
        _ => rest.to_vec(),
    };
    let file = match TempFile::new(format.extension(), &bytes) {
        Ok(f) => f,
        Err(e) => return vec![format!("temporary file: {e}")],
    };
    let mut errors = Vec::new();
    let label = match data::columns(&file.0) {
        Ok(names) => label_of(&names),
        Err(e) => {
            errors.push(e.to_string());
            "label".into()
        }
    };
    let mut opts = LoadOptions::new(label);
    opts.chunk_bytes = 1 << 16;
    if mode & 4 != 0 {
        opts.categorical = CategoricalPolicy::Drop;
    }
    if mode & 8 != 0 {
        opts.missing = MissingPolicy::ImputeMedian;
    }
    opts.drop_duplicates = mode & 16 != 0;
    opts.keep_identifiers = mode & 32 != 0;
    if mode & 64 != 0 {
        opts.min_family_rows = 3;
    }
    if mode & 128 != 0 {
        opts.max_categories = 2;
    }
    if let Err(e) = data::load(&file.0, &opts) {
        errors.push(e.to_string());
    }
    errors
}

/// The label column the loader input is read with: the first column named like the label of a
/// known dataset, else the last column.
fn label_of(names: &[String]) -> String {
    const LABELS: [&str; 5] = ["label", "attack_cat", "attack", "class", "target"];
    names
        .iter()
        .find(|n| LABELS.contains(&n.to_lowercase().as_str()))
        .or(names.last())
        .cloned()
        .unwrap_or_else(|| "label".into())
}

/// The table a plan is built on: the experiment's demo data, or for a file on disk (never read
/// here) the tabular demo.
fn plan_table(exp: &Experiment) -> Table {
    match &exp.data {
        DataSpec::Demo { kind, seed } => data::demo::table(*kind, *seed),
        DataSpec::File(_) => data::demo::table(DemoKind::Tabular, 0),
    }
}

/// What `heldout validate` does with an experiment file, short of reading a data file: parse,
/// check, build the plan (three episodes per rotation) and print it; also writes the
/// experiment back as RON and reads that again. Returns the error message, if any.
pub fn experiment_ron_errors(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.ron");
    let exp = match Experiment::load_text(&text, path, Path::new("."), &[]) {
        Ok(e) => e,
        Err(e) => return Some(format!("{e:#}")),
    };
    validate_checked(&exp, path)
}

/// The plan and the RON round trip of a checked experiment.
fn validate_checked(exp: &Experiment, path: &Path) -> Option<String> {
    let _ = Experiment::parse(&exp.to_ron(), path).and_then(|e| e.check(path));
    let table = plan_table(exp);
    match Plan::build(exp, &table, 3) {
        Ok(plan) => {
            let _ = plan.to_text(exp, &table);
            None
        }
        // as `heldout validate` names the file
        Err(e) => Some(format!("{}: {e:#}", path.display())),
    }
}

/// Splits `data` (lossy UTF-8) into `--set` arguments, one per line, applies them to the demo
/// experiment (`experiments/demo.ron`) as `heldout run --demo --set …` does, and validates the
/// result as [`experiment_ron_errors`] does. Returns the error message, if any.
pub fn set_override_errors(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let sets: Vec<String> = text.split('\n').map(str::to_string).collect();
    let path = Path::new("demo.ron");
    let exp = match Experiment::load_text(experiment::DEMO_EXPERIMENT, path, Path::new("."), &sets)
    {
        Ok(e) => e,
        Err(e) => return Some(format!("{e:#}")),
    };
    validate_checked(&exp, path)
}

/// The columns `heldout eval` is asked for, chosen by the first byte of a scores input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalColumns {
    pub score: String,
    pub label: String,
    pub family: Option<String>,
    pub normal: Option<String>,
}

impl EvalColumns {
    /// Bit 0: take the column names from the header (bits 1–6 pick them) or use the run
    /// folder's `score`, `label`, `family`; bit 7: `--normal Normal` (text labels).
    pub fn of(mode: u8, header: &[u8]) -> EvalColumns {
        let names: Vec<String> = String::from_utf8_lossy(header)
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let pick = |k: u8| names[usize::from(k) % names.len()].clone(); // `split` gives ≥ 1 item
        let (score, label, family) = if mode & 1 == 0 {
            let family = (mode & 2 == 0).then(|| "family".to_string());
            ("score".to_string(), "label".to_string(), family)
        } else {
            let family = (mode & 64 == 0).then(|| pick(mode >> 5));
            (pick((mode >> 1) & 3), pick((mode >> 3) & 3), family)
        };
        EvalColumns {
            score,
            label,
            family,
            normal: (mode & 128 != 0).then(|| "Normal".to_string()),
        }
    }
}

/// Writes `data[1..]` to a temporary `.csv` and evaluates it as `heldout eval` does, with the
/// columns `data[0]` selects ([`EvalColumns::of`]); also formats the report as text and JSON.
/// Returns the error message, if any.
pub fn scores_csv_errors(data: &[u8]) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    let header = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let cols = EvalColumns::of(mode, header);
    let file = match TempFile::new("csv", rest) {
        Ok(f) => f,
        Err(e) => return Some(format!("temporary file: {e}")),
    };
    match crate::eval::eval_scores_csv(
        &file.0,
        &cols.score,
        &cols.label,
        cols.family.as_deref(),
        cols.normal.as_deref(),
    ) {
        Ok(r) => {
            let _ = r.to_text();
            let _ = serde_json::to_string(&r);
            None
        }
        Err(e) => Some(e.to_string()),
    }
}
