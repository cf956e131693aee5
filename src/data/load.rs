//! Loading: CSV (plain or gzip'd), Parquet, or a folder of CSVs sharing one header, parsed by
//! polars in chunks (so peak memory stays near the size of the finished `f32` table), cleaned in
//! the order of the reference protocol (`../shared/reference/PROTOCOL.md` §2):
//!
//! 1. read; strip labels; map labels to families;
//! 2. drop families below the minimum row count;
//! 3. remove user-dropped, identifier and label-leak columns;
//! 4. one-hot encode categorical text columns (values from the kept rows, ascending byte order,
//!    named `column=value`, blocks appended after the numeric columns);
//! 5. ±Infinity → NaN; drop rows with a missing value (or keep them for median imputation);
//! 6. drop constant and all-missing columns.

use super::error::{DataError, Result};
use super::family_map::FamilyMap;
use super::report::{
    CellCounts, CleaningReport, ColumnCells, DropReason, DroppedColumn, FileRead, MissingPolicy,
    OneHotColumn,
};
use super::table::{FamilyId, Table};
use super::tokens::{split_fields, trim, ColumnTokens, LineChunks, Scanner};
use polars::prelude::*;
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to do with categorical text columns (e.g. UNSW-NB15 `proto`, `service`, `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalPolicy {
    /// One 0/1 column per distinct value.
    #[default]
    OneHot,
    /// Drop the column.
    Drop,
}

/// How to load and clean a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    /// The column whose values (after the family map) are the families.
    pub label_column: String,
    /// Optional `label,family` CSV.
    pub family_map: Option<PathBuf>,
    /// Keep labels the map does not know as families of their own instead of failing.
    pub keep_unmapped: bool,
    /// Columns never to use as features.
    pub drop_columns: Vec<String>,
    pub categorical: CategoricalPolicy,
    pub missing: MissingPolicy,
    /// Families with fewer rows (before any row cleaning) are removed entirely; 0 keeps all.
    pub min_family_rows: usize,
    /// Remove rows identical to an earlier row in every used column.
    pub drop_duplicates: bool,
    /// Text columns with more distinct values than this are dropped as non-numeric.
    pub max_categories: usize,
    /// Keep columns detected as identifiers (not recommended: models memorise them).
    pub keep_identifiers: bool,
    /// Bytes of CSV text parsed at a time.
    pub chunk_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            label_column: String::new(),
            family_map: None,
            keep_unmapped: false,
            drop_columns: Vec::new(),
            categorical: CategoricalPolicy::OneHot,
            missing: MissingPolicy::DropRows,
            min_family_rows: 0,
            drop_duplicates: false,
            max_categories: 256,
            keep_identifiers: false,
            chunk_bytes: 32 << 20,
        }
    }
}

impl LoadOptions {
    /// Options for a label column, everything else default.
    pub fn new(label_column: impl Into<String>) -> Self {
        LoadOptions {
            label_column: label_column.into(),
            ..Default::default()
        }
    }
}

/// Identifier column names (lower-case, letters and digits only).
const ID_NAMES: &[&str] = &[
    "id",
    "flowid",
    "srcip",
    "dstip",
    "sourceip",
    "destinationip",
    "srcaddr",
    "dstaddr",
    "saddr",
    "daddr",
    "ipsrc",
    "ipdst",
    "srcport",
    "dstport",
    "sourceport",
    "destinationport",
    "sport",
    "dsport",
    "dport",
    "timestamp",
    "stime",
    "ltime",
    "unnamed0",
    "index",
];

fn norm_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What a column is, as far as loading goes.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Label,
    Skip(DropReason, String),
    Numeric,
    Text,
}

/// Loads and cleans a dataset. See the module docs for the order of the steps.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Table> {
    if !path.exists() {
        return Err(DataError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let files = if path.is_dir() {
        folder_files(path)?
    } else {
        vec![path.to_path_buf()]
    };
    let family_map = match &opts.family_map {
        Some(p) => Some(FamilyMap::read(p)?),
        None => None,
    };
    let mut b: Option<Builder> = None;
    let mut report = CleaningReport {
        missing_policy: opts.missing,
        ..Default::default()
    };
    for file in &files {
        if is_parquet(file) {
            parquet_guard(file, || read_parquet(file, path, opts, &mut b, &mut report))?;
        } else {
            read_csv(file, path, opts, &mut b, &mut report, &files[0])?;
        }
    }
    let Some(b) = b else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    b.finish(path, opts, family_map.as_ref(), report)
}

/// The column names of a CSV (plain or gzip), Parquet file or folder of them (its first file),
/// without loading the rows: for choosing the label column before a load.
pub fn columns(path: &Path) -> Result<Vec<String>> {
    if !path.exists() {
        return Err(DataError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let file = if path.is_dir() {
        folder_files(path)?.remove(0)
    } else {
        path.to_path_buf()
    };
    if is_parquet(&file) {
        check_parquet_footer(&file)?;
        let f = std::fs::File::open(&file).map_err(io_err(&file))?;
        let schema = parquet_guard(&file, || {
            ParquetReader::new(f)
                .schema()
                .map_err(|e| DataError::NotTabular {
                    path: file.clone(),
                    what: format!("not a readable Parquet file ({e})"),
                })
        })?;
        return Ok(schema.iter_names().map(|n| n.trim().to_string()).collect());
    }
    let (mut r, _) = open_text(&file)?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < (1 << 20) {
        match r.read(&mut byte).map_err(io_err(&file))? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let line = line
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(&line);
    if line.is_empty() {
        return Err(DataError::Empty { path: file });
    }
    Ok(header_names(line))
}

fn folder_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            p.is_file()
                && (n.ends_with(".csv") || n.ends_with(".csv.gz") || n.ends_with(".parquet"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::EmptyFolder {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// Runs a step of reading a Parquet file. polars' Parquet decoder asserts on some corrupt files
/// instead of returning an error (e.g. `offset + length <= self.length` in polars-arrow 0.55's
/// bitmaps, found by `bench/fuzz.sh loader`): its panic becomes this file's error. The step's
/// partial state is dropped with the failed load.
fn parquet_guard<T>(file: &Path, step: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(DataError::NotTabular {
            path: file.to_path_buf(),
            what: format!(
                "not a readable Parquet file: its content is corrupt (the Parquet reader failed: {why}); write it again"
            ),
        })
    })
}

fn is_parquet(p: &Path) -> bool {
    let n = p.to_string_lossy().to_lowercase();
    n.ends_with(".parquet") || n.ends_with(".pq")
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Opens a CSV, transparently gunzipping, after checking it is text.
fn open_text(file: &Path) -> Result<(Box<dyn Read>, u64)> {
    let bytes_on_disk = std::fs::metadata(file).map_err(io_err(file))?.len();
    if bytes_on_disk == 0 {
        return Err(DataError::Empty {
            path: file.to_path_buf(),
        });
    }
    let mut f = std::fs::File::open(file).map_err(io_err(file))?;
    let mut magic = [0u8; 2];
    let got = f.read(&mut magic).map_err(io_err(file))?;
    drop(f);
    let f = std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).map_err(io_err(file))?,
    );
    if got == 2 && magic == [0x1f, 0x8b] {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(f)),
            bytes_on_disk,
        ))
    } else if file.to_string_lossy().to_lowercase().ends_with(".gz") {
        Err(DataError::NotTabular {
            path: file.to_path_buf(),
            what: "named .gz but not gzip data".into(),
        })
    } else {
        Ok((Box::new(f), bytes_on_disk))
    }
}

/// Splits a header line into trimmed, de-duplicated column names (a repeated name gets `.1`,
/// `.2`, … as pandas does; the original CIC-IDS2017 CSVs repeat `Fwd Header Length`).
fn header_names(line: &[u8]) -> Vec<String> {
    let mut spans = Vec::new();
    let _ = split_fields(line, &mut spans); // an open quote in a header keeps its text
    let mut seen: HashMap<String, usize> = HashMap::new();
    spans
        .iter()
        .map(|&(a, b)| {
            let f = trim(&line[a..b]);
            let f = if f.len() >= 2 && f[0] == b'"' && f[f.len() - 1] == b'"' {
                &f[1..f.len() - 1]
            } else {
                f
            };
            let name = String::from_utf8_lossy(trim(f)).into_owned();
            let k = seen.entry(name.clone()).or_insert(0);
            *k += 1;
            if *k > 1 {
                format!("{name}.{}", *k - 1)
            } else {
                name
            }
        })
        .collect()
}

fn read_csv(
    file: &Path,
    root: &Path,
    opts: &LoadOptions,
    b: &mut Option<Builder>,
    report: &mut CleaningReport,
    first_file: &Path,
) -> Result<()> {
    let (reader, bytes_on_disk) = open_text(file)?;
    let mut chunks = LineChunks::new(reader, opts.chunk_bytes.max(1 << 16));
    let mut out: Vec<u8> = Vec::new();
    let mut scanner: Option<Scanner> = None;
    let mut rows_in_file = 0u64;
    let mut first = true;
    loop {
        let chunk = match chunks.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(DataError::NotTabular {
                    path: file.to_path_buf(),
                    what: format!("cannot decode it ({e})"),
                })
            }
        };
        let mut body = chunk;
        if first {
            first = false;
            if memchr::memchr(0, &chunk[..chunk.len().min(8192)]).is_some() {
                return Err(DataError::NotTabular {
                    path: file.to_path_buf(),
                    what: "binary content (NUL bytes)".into(),
                });
            }
            if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
                body = rest;
                report.utf8_bom = true;
            }
            // Skip leading blank lines, then take the header.
            loop {
                let end = memchr::memchr(b'\n', body).unwrap_or(body.len());
                let line = trim(body[..end].strip_suffix(b"\r").unwrap_or(&body[..end]));
                if line.is_empty() && end < body.len() {
                    body = &body[end + 1..];
                    continue;
                }
                break;
            }
            let end = memchr::memchr(b'\n', body).unwrap_or(body.len());
            let header = body[..end].strip_suffix(b"\r").unwrap_or(&body[..end]);
            if trim(header).is_empty() {
                return Err(DataError::Empty {
                    path: file.to_path_buf(),
                });
            }
            if std::str::from_utf8(header).is_err() {
                return Err(DataError::NotTabular {
                    path: file.to_path_buf(),
                    what: "the first line is not UTF-8 text".into(),
                });
            }
            let names = header_names(header);
            match b {
                None => *b = Some(Builder::new(names.clone(), root, opts)?),
                Some(bb) => {
                    if bb.names != names {
                        let detail = describe_header_diff(&bb.names, &names);
                        return Err(DataError::HeaderMismatch {
                            path: file.to_path_buf(),
                            first: first_file.to_path_buf(),
                            detail,
                        });
                    }
                }
            }
            let bb = b.as_ref().map(|bb| bb.label_idx);
            scanner = Some(Scanner::new(header, names.len(), bb));
            body = if end < body.len() {
                &body[end + 1..]
            } else {
                &[]
            };
        }
        let (Some(sc), Some(bb)) = (scanner.as_mut(), b.as_mut()) else {
            continue;
        };
        out.clear();
        let mut toks = vec![ColumnTokens::default(); bb.names.len()];
        let rows = sc.scan(body, &mut out, &mut toks);
        if rows == 0 {
            continue;
        }
        rows_in_file += rows;
        bb.push_csv(&out, rows as usize, &toks, file)?;
    }
    let Some(sc) = scanner else {
        return Err(DataError::Empty {
            path: file.to_path_buf(),
        });
    };
    let is = &sc.issues;
    report.lines_read += is.lines;
    report.blank_lines += is.blank;
    report.repeated_header_lines += is.repeated_header;
    report.repeated_header_at.extend(&is.repeated_header_at);
    report.wrong_field_count_lines += is.wrong_fields;
    report.wrong_field_count_at.extend(&is.wrong_fields_at);
    report.crlf_line_endings |= is.crlf;
    report.labels_stripped += is.labels_stripped;
    report.files.push(FileRead {
        path: file.display().to_string(),
        bytes: bytes_on_disk,
        rows: rows_in_file,
    });
    Ok(())
}

fn describe_header_diff(a: &[String], b: &[String]) -> String {
    if a.len() != b.len() {
        return format!("{} columns instead of {}", b.len(), a.len());
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            return format!("column {} is '{y}', expected '{x}'", i + 1);
        }
    }
    "different".into()
}

fn read_parquet(
    file: &Path,
    root: &Path,
    opts: &LoadOptions,
    b: &mut Option<Builder>,
    report: &mut CleaningReport,
) -> Result<()> {
    let meta = std::fs::metadata(file).map_err(io_err(file))?;
    if meta.len() == 0 {
        return Err(DataError::Empty {
            path: file.to_path_buf(),
        });
    }
    check_parquet_footer(file)?;
    let f = std::fs::File::open(file).map_err(io_err(file))?;
    let not_parquet = |e: PolarsError| DataError::NotTabular {
        path: file.to_path_buf(),
        what: format!("not a readable Parquet file ({e})"),
    };
    let mut reader = ParquetReader::new(f);
    let footer = reader.get_metadata().map_err(not_parquet)?.clone();
    let mut pages = std::fs::File::open(file).map_err(io_err(file))?;
    for (g, group) in footer.row_groups.iter().enumerate() {
        for (c, chunk) in group.parquet_columns().iter().enumerate() {
            check_parquet_pages(file, &mut pages, chunk.byte_range(), chunk.num_values())
                .map_err(|what| DataError::NotTabular {
                    path: file.to_path_buf(),
                    what: format!(
                        "not a readable Parquet file: its content is corrupt (row group {g}, column {c}: {what}); write it again"
                    ),
                })?;
        }
    }
    let df = reader.finish().map_err(not_parquet)?;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    if b.is_none() {
        *b = Some(Builder::new(names.clone(), root, opts)?);
    }
    let Some(bb) = b.as_mut() else {
        return Ok(());
    };
    if bb.names != names {
        return Err(DataError::HeaderMismatch {
            path: file.to_path_buf(),
            first: root.to_path_buf(),
            detail: describe_header_diff(&bb.names, &names),
        });
    }
    report.lines_read += df.height() as u64;
    report.files.push(FileRead {
        path: file.display().to_string(),
        bytes: meta.len(),
        rows: df.height() as u64,
    });
    bb.push_parquet(df, file)
}

/// Reads a Parquet file's footer (its metadata) with the bounded Thrift reader of
/// polars-parquet-format before polars decodes it: polars-parquet 0.55's own footer decoder
/// reserves each list at the length the file declares, so a corrupt length makes it allocate
/// tens of GB, and the failed allocation aborts the process (found by `bench/fuzz.sh loader`).
/// The bounded reader refuses lists longer than the footer could hold. A file without a
/// footer is left to polars, which reports it.
fn check_parquet_footer(file: &Path) -> Result<()> {
    use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
    use polars_parquet_format::FileMetaData;
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(file).map_err(io_err(file))?;
    let size = f.metadata().map_err(io_err(file))?.len();
    let mut tail = [0u8; 8];
    if size < 12 {
        return Ok(());
    }
    f.seek(SeekFrom::End(-8)).map_err(io_err(file))?;
    f.read_exact(&mut tail).map_err(io_err(file))?;
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if &tail[4..] != b"PAR1" || len + 8 > size {
        return Ok(());
    }
    f.seek(SeekFrom::Start(size - 8 - len))
        .map_err(io_err(file))?;
    let mut footer = Vec::new();
    Read::by_ref(&mut f)
        .take(len)
        .read_to_end(&mut footer)
        .map_err(io_err(file))?;
    // as polars-parquet's earlier footer reader: room for lists of 8-byte items and some slack
    let limit = footer.len().saturating_mul(8).saturating_add(1024);
    FileMetaData::read_from_in_protocol(&mut TCompactInputProtocol::new(footer.as_slice(), limit))
        .map(|_| ())
        .map_err(|e| DataError::NotTabular {
            path: file.to_path_buf(),
            what: format!(
                "not a readable Parquet file: its metadata (footer) is corrupt ({e}); write it again"
            ),
        })
}

/// Checks the page headers of one column chunk (`range` of the file, `total` values) before
/// polars decodes it: polars-parquet 0.55 takes a data page's value count (an i32) `as usize`,
/// so a corrupt negative count makes it reserve ~2^61 bytes, and the failed allocation aborts
/// the process, with no panic to catch (found by `bench/fuzz.sh loader`). Walks the pages as
/// polars does (from the chunk's start until `total` values are seen), reading the headers
/// only. A header that cannot be read is left to polars, which reports it.
fn check_parquet_pages(
    file: &Path,
    src: &mut std::fs::File,
    range: std::ops::Range<u64>,
    total: i64,
) -> std::result::Result<(), String> {
    use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
    use polars_parquet_format::PageHeader;
    use std::io::{Seek, SeekFrom};

    /// Counts the bytes the header reader takes.
    struct Counted<R> {
        inner: R,
        n: u64,
    }
    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let k = self.inner.read(buf)?;
            self.n += k as u64;
            Ok(k)
        }
    }

    let io = |e: std::io::Error| format!("cannot read {} ({e})", file.display());
    let end = range.end.min(src.metadata().map_err(io)?.len());
    let (mut pos, mut seen) = (range.start, 0i64);
    while seen < total && pos < end {
        src.seek(SeekFrom::Start(pos)).map_err(io)?;
        let left = end - pos;
        let mut r = Counted {
            inner: std::io::BufReader::with_capacity(8192, Read::by_ref(src).take(left)),
            n: 0,
        };
        let limit = usize::try_from(left).unwrap_or(usize::MAX);
        let Ok(h) =
            PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(&mut r, limit))
        else {
            return Ok(());
        };
        let mut counts = vec![
            ("uncompressed_page_size", h.uncompressed_page_size),
            ("compressed_page_size", h.compressed_page_size),
        ];
        if let Some(d) = &h.data_page_header {
            counts.push(("num_values", d.num_values));
        }
        if let Some(d) = &h.data_page_header_v2 {
            counts.extend([
                ("num_values", d.num_values),
                ("num_nulls", d.num_nulls),
                ("num_rows", d.num_rows),
            ]);
        }
        if let Some(d) = &h.dictionary_page_header {
            counts.push(("num_values", d.num_values));
        }
        if let Some((field, v)) = counts.iter().find(|(_, v)| *v < 0) {
            return Err(format!("the page at byte {pos} has {field} {v}"));
        }
        let values = h
            .data_page_header
            .map(|d| d.num_values)
            .or(h.data_page_header_v2.map(|d| d.num_values))
            .unwrap_or(0);
        seen += i64::from(values);
        // both non-negative (checked above)
        pos += r.n + h.compressed_page_size as u64;
    }
    Ok(())
}

/// Accumulates columns chunk by chunk.
struct Builder {
    names: Vec<String>,
    kinds: Vec<Kind>,
    label_idx: usize,
    /// Whether column kinds were settled from the first chunk.
    settled: bool,
    /// Keep columns whose content looks like identifiers.
    keep_ids: bool,
    num: Vec<Vec<f32>>,
    /// Running-id detection: the last value while the column still counts up by one.
    running: Vec<Option<f64>>,
    text_codes: Vec<Vec<u32>>,
    text_dict: Vec<HashMap<String, u32>>,
    labels: Vec<u32>,
    label_dict: HashMap<String, u32>,
    row_hash: Vec<u64>,
    cells: Vec<CellCounts>,
    n_rows: usize,
}

const MISSING: u32 = u32::MAX;

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    // The SplitMix64 finaliser over the running hash and the value.
    let mut z = (h ^ v).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn closest<'a>(want: &str, names: &'a [String]) -> Option<&'a str> {
    let w = want.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for n in names {
        let d = edit_distance(&w, &n.to_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.filter(|(d, n)| *d <= (n.len().max(want.len()) / 2).max(2))
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn suggestion(want: &str, names: &[String]) -> String {
    closest(want, names)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

fn looks_like_ip(s: &str) -> bool {
    // a dotted quad anywhere (also inside Flow IDs such as 192.168.10.5-192.168.10.3-…)
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let mut j = i;
            let mut parts = 0;
            loop {
                let s0 = j;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j == s0 || j - s0 > 3 {
                    break;
                }
                parts += 1;
                if parts == 4 || j >= b.len() || b[j] != b'.' {
                    break;
                }
                j += 1;
            }
            if parts == 4 {
                return true;
            }
        }
        i += 1;
    }
    // IPv6: at least two ':' and only hex digits and ':'
    s.matches(':').count() >= 2 && s.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
}

/// Why text values identify a flow or a moment rather than describe behaviour, if they do.
fn identifier_by_content(samples: &[String]) -> Option<String> {
    if let Some(s) = samples.iter().find(|s| looks_like_ip(s)) {
        return Some(format!("values look like IP addresses ({s})"));
    }
    samples
        .iter()
        .find(|s| looks_like_time(s))
        .map(|s| format!("values look like timestamps ({s})"))
}

fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    let date = b
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && (w[1] == b'-' || w[1] == b'/') && w[2].is_ascii_digit());
    let time = b.windows(4).any(|w| {
        w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit()
    });
    date || time
}

impl Builder {
    fn new(names: Vec<String>, root: &Path, opts: &LoadOptions) -> Result<Builder> {
        let Some(label_idx) = names.iter().position(|n| *n == opts.label_column) else {
            return Err(DataError::NoLabelColumn {
                path: root.to_path_buf(),
                label: opts.label_column.clone(),
                suggestion: suggestion(&opts.label_column, &names),
                columns: names.join(", "),
            });
        };
        for d in &opts.drop_columns {
            if !names.contains(d) {
                return Err(DataError::NoSuchColumn {
                    path: root.to_path_buf(),
                    column: d.clone(),
                    suggestion: suggestion(d, &names),
                });
            }
        }
        let kinds = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if i == label_idx {
                    Kind::Label
                } else if opts.drop_columns.contains(n) {
                    Kind::Skip(DropReason::UserDropped, "named by the user".into())
                } else if !opts.keep_identifiers && ID_NAMES.contains(&norm_name(n).as_str()) {
                    Kind::Skip(DropReason::Identifier, "identifier by name".into())
                } else {
                    Kind::Numeric // settled on the first chunk
                }
            })
            .collect::<Vec<_>>();
        let d = names.len();
        Ok(Builder {
            names,
            kinds,
            label_idx,
            settled: false,
            keep_ids: opts.keep_identifiers,
            num: vec![Vec::new(); d],
            running: vec![None; d],
            text_codes: vec![Vec::new(); d],
            text_dict: vec![HashMap::new(); d],
            labels: Vec::new(),
            label_dict: HashMap::new(),
            row_hash: Vec::new(),
            cells: vec![CellCounts::default(); d],
            n_rows: 0,
        })
    }

    /// Settles numeric vs text per column from the first chunk's tokens.
    fn settle(&mut self, toks: &[ColumnTokens]) {
        for (j, t) in toks.iter().enumerate() {
            if self.kinds[j] != Kind::Numeric {
                continue;
            }
            // Text if text cells are more than 1% of the non-missing cells (a numeric column
            // with a stray word stays numeric; the word is counted as a non-numeric cell).
            let present = t.numbers + t.text;
            if t.text > 0 && (t.text * 100 > present || t.numbers == 0) {
                self.kinds[j] = Kind::Text;
                if !self.keep_ids {
                    if let Some(why) = identifier_by_content(&t.samples) {
                        self.kinds[j] = Kind::Skip(DropReason::Identifier, why);
                    }
                }
            }
        }
        self.settled = true;
    }

    fn schema(&self) -> Schema {
        self.names
            .iter()
            .zip(&self.kinds)
            .map(|(n, k)| {
                let dt = match k {
                    Kind::Numeric => DataType::Float64,
                    _ => DataType::String,
                };
                Field::new(n.as_str().into(), dt)
            })
            .collect()
    }

    fn push_csv(
        &mut self,
        text: &[u8],
        rows: usize,
        toks: &[ColumnTokens],
        file: &Path,
    ) -> Result<()> {
        if !self.settled {
            self.settle(toks);
        }
        let projection: Vec<usize> = (0..self.names.len())
            .filter(|&j| !matches!(self.kinds[j], Kind::Skip(..)))
            .collect();
        let parse = CsvParseOptions::default()
            .with_null_values(Some(NullValues::AllColumns(vec!["?".into()])));
        let df = CsvReadOptions::default()
            .with_has_header(false)
            .with_schema(Some(Arc::new(self.schema())))
            .with_projection(Some(Arc::new(projection)))
            .with_ignore_errors(true)
            .with_rechunk(false)
            .with_parse_options(parse)
            .into_reader_with_file_handle(Cursor::new(text))
            .finish()
            .map_err(|e| {
                if let Err(u) = std::str::from_utf8(text) {
                    let row = self.n_rows
                        + memchr::memchr_iter(b'\n', &text[..u.valid_up_to()]).count()
                        + 1;
                    return DataError::NotTabular {
                        path: file.to_path_buf(),
                        what: format!("data row {row} is not UTF-8 text; save the file as UTF-8"),
                    };
                }
                DataError::Parse {
                    path: file.to_path_buf(),
                    // polars' first line; the rest suggests Python options
                    detail: e.to_string().lines().next().unwrap_or_default().to_string(),
                }
            })?;
        if df.height() != rows {
            return Err(DataError::Parse {
                path: file.to_path_buf(),
                detail: format!(
                    "the parser found {} rows where the pre-pass found {rows}",
                    df.height()
                ),
            });
        }
        let parser_missing = self.push_frame(&df, false, file)?;
        for (j, t) in toks.iter().enumerate() {
            if matches!(self.kinds[j], Kind::Numeric | Kind::Text) {
                self.cells[j].add(&t.cells);
                if self.kinds[j] == Kind::Numeric {
                    self.cells[j].non_numeric += t.text;
                    // Cells the pre-pass saw as numbers but the parser could not read.
                    let explained = t.cells.total() + t.text;
                    self.cells[j].non_numeric += parser_missing[j].saturating_sub(explained);
                }
            }
        }
        Ok(())
    }

    fn push_parquet(&mut self, df: DataFrame, file: &Path) -> Result<()> {
        if !self.settled {
            for (j, c) in df.columns().iter().enumerate() {
                if self.kinds[j] == Kind::Numeric
                    && !c.dtype().is_primitive_numeric()
                    && !c.dtype().is_bool()
                {
                    self.kinds[j] = Kind::Text;
                    if let Ok(s) = c.cast(&DataType::String) {
                        if let Ok(ca) = s.str() {
                            let samples: Vec<String> =
                                ca.iter().flatten().take(64).map(String::from).collect();
                            if let Some(why) = identifier_by_content(&samples) {
                                if !self.keep_ids {
                                    self.kinds[j] = Kind::Skip(DropReason::Identifier, why);
                                }
                            }
                        }
                    }
                }
            }
            self.settled = true;
        }
        let mut df = df;
        let names = self.names.clone();
        for (j, n) in names.iter().enumerate() {
            let target = match self.kinds[j] {
                Kind::Numeric => DataType::Float64,
                Kind::Skip(..) => continue,
                _ => DataType::String,
            };
            let col = df.column(n.as_str()).map_err(|e| DataError::Parse {
                path: file.to_path_buf(),
                detail: e.to_string(),
            })?;
            if col.dtype() != &target {
                let c = col.cast(&target).map_err(|e| DataError::Parse {
                    path: file.to_path_buf(),
                    detail: format!("column '{n}': {e}"),
                })?;
                df.with_column(c).map_err(|e| DataError::Parse {
                    path: file.to_path_buf(),
                    detail: e.to_string(),
                })?;
            }
        }
        self.push_frame(&df, true, file).map(|_| ())
    }

    /// Appends one parsed frame. With `count_cells`, missing and non-finite values are counted
    /// here (Parquet); for CSV the pre-pass counted them, and only values the parser rejected
    /// beyond those are added as non-numeric.
    // One index walks several parallel per-column vectors; an index loop is the clear form.
    #[allow(clippy::needless_range_loop)]
    fn push_frame(&mut self, df: &DataFrame, count_cells: bool, file: &Path) -> Result<Vec<u64>> {
        let h = df.height();
        let mut parser_missing = vec![0u64; self.names.len()];
        let base = self.n_rows;
        self.row_hash.resize(base + h, 0);
        let perr = |e: PolarsError| DataError::Parse {
            path: file.to_path_buf(),
            detail: e.to_string(),
        };
        for j in 0..self.names.len() {
            match self.kinds[j] {
                Kind::Skip(..) => {}
                Kind::Label => {
                    let col = df.column(self.names[j].as_str()).map_err(perr)?;
                    let ca = col.str().map_err(perr)?;
                    self.labels.reserve(h);
                    for (r, v) in ca.iter().enumerate() {
                        let code = match v.map(str::trim) {
                            None | Some("") => MISSING,
                            Some(s) => match self.label_dict.get(s) {
                                Some(&c) => c,
                                None => {
                                    let c = self.label_dict.len() as u32;
                                    self.label_dict.insert(s.to_string(), c);
                                    c
                                }
                            },
                        };
                        self.labels.push(code);
                        let hh = &mut self.row_hash[base + r];
                        *hh = mix(*hh, code as u64);
                    }
                }
                Kind::Numeric => {
                    let col = df.column(self.names[j].as_str()).map_err(perr)?;
                    let ca = col.f64().map_err(perr)?;
                    let out = &mut self.num[j];
                    out.reserve(h);
                    let mut missing = 0u64;
                    let mut cc = CellCounts::default();
                    let mut running = self.running[j];
                    let mut r = base;
                    for arr in ca.downcast_iter() {
                        let vals = arr.values().as_slice();
                        let validity = arr.validity();
                        for (k, &v) in vals.iter().enumerate() {
                            let valid = validity.is_none_or(|bm| bm.get_bit(k));
                            let x = if !valid {
                                cc.empty += 1;
                                f64::NAN
                            } else if v.is_nan() {
                                cc.nan += 1;
                                f64::NAN
                            } else if v.is_infinite() {
                                if v > 0.0 {
                                    cc.pos_inf += 1
                                } else {
                                    cc.neg_inf += 1
                                }
                                f64::NAN
                            } else {
                                v
                            };
                            if x.is_nan() {
                                missing += 1;
                            }
                            running = match running {
                                _ if r == 0 => Some(x),
                                Some(prev) if x == prev + 1.0 => Some(x),
                                _ => None,
                            };
                            out.push(x as f32);
                            let bits = if x.is_nan() {
                                u64::MAX
                            } else {
                                (x + 0.0).to_bits()
                            };
                            let hh = &mut self.row_hash[r];
                            *hh = mix(*hh, bits);
                            r += 1;
                        }
                    }
                    self.running[j] = running;
                    if count_cells {
                        self.cells[j].add(&cc);
                    }
                    parser_missing[j] = missing;
                }
                Kind::Text => {
                    let col = df.column(self.names[j].as_str()).map_err(perr)?;
                    let ca = col.str().map_err(perr)?;
                    let codes = &mut self.text_codes[j];
                    let dict = &mut self.text_dict[j];
                    codes.reserve(h);
                    for (r, v) in ca.iter().enumerate() {
                        let code = match v.map(str::trim) {
                            None | Some("") => {
                                if count_cells {
                                    self.cells[j].empty += 1;
                                }
                                MISSING
                            }
                            Some(s) => match dict.get(s) {
                                Some(&c) => c,
                                None => {
                                    let c = dict.len() as u32;
                                    dict.insert(s.to_string(), c);
                                    c
                                }
                            },
                        };
                        codes.push(code);
                        let hh = &mut self.row_hash[base + r];
                        *hh = mix(*hh, code as u64 ^ 0xA5A5_0000_0000_0000);
                    }
                }
            }
        }
        self.n_rows += h;
        Ok(parser_missing)
    }
}

impl Builder {
    /// Maps labels to families, applies the row and column cleaning, and assembles the table.
    #[allow(clippy::needless_range_loop)]
    fn finish(
        mut self,
        path: &Path,
        opts: &LoadOptions,
        map: Option<&FamilyMap>,
        mut report: CleaningReport,
    ) -> Result<Table> {
        let n = self.n_rows;
        if n == 0 {
            return Err(DataError::NoRows {
                path: path.to_path_buf(),
                why: "the file has a header but no data rows".into(),
            });
        }
        // 1. labels → families
        let mut label_names = vec![String::new(); self.label_dict.len()];
        for (s, &c) in &self.label_dict {
            label_names[c as usize] = s.clone();
        }
        let mut unmapped: Vec<&str> = Vec::new();
        let fam_of_label: Vec<String> = label_names
            .iter()
            .map(|l| match map {
                None => l.clone(),
                Some(m) => match m.map.get(l) {
                    Some(f) => f.clone(),
                    None => {
                        unmapped.push(l);
                        l.clone()
                    }
                },
            })
            .collect();
        if let (Some(m), false) = (map, unmapped.is_empty()) {
            if !opts.keep_unmapped {
                unmapped.sort();
                return Err(DataError::UnmappedLabels {
                    path: path.to_path_buf(),
                    map: m.path.clone(),
                    count: unmapped.len(),
                    labels: unmapped
                        .iter()
                        .map(|s| format!("'{s}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let mut fam_names: Vec<String> = fam_of_label.clone();
        fam_names.sort();
        fam_names.dedup();
        let fam_index: HashMap<&str, u32> = fam_names
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i as u32))
            .collect();
        // Indexing cannot fail: `fam_index` was built from `fam_of_label` itself.
        let label_fam: Vec<u32> = fam_of_label.iter().map(|f| fam_index[f.as_str()]).collect();
        const NONE: u32 = u32::MAX;
        let mut row_fam: Vec<u32> = self
            .labels
            .iter()
            .map(|&c| {
                if c == MISSING {
                    NONE
                } else {
                    label_fam[c as usize]
                }
            })
            .collect();
        report.rows_without_label = row_fam.iter().filter(|&&f| f == NONE).count() as u64;

        // 2. small families
        let mut fam_count = vec![0u64; fam_names.len()];
        for &f in &row_fam {
            if f != NONE {
                fam_count[f as usize] += 1;
            }
        }
        for (i, &c) in fam_count.iter().enumerate() {
            if c > 0 && (c as usize) < opts.min_family_rows {
                report
                    .small_families_dropped
                    .push((fam_names[i].clone(), c));
            }
        }
        if !report.small_families_dropped.is_empty() {
            let small: Vec<bool> = fam_count
                .iter()
                .map(|&c| c > 0 && (c as usize) < opts.min_family_rows)
                .collect();
            for f in row_fam.iter_mut() {
                if *f != NONE && small[*f as usize] {
                    *f = NONE;
                }
            }
        }
        let mut keep: Vec<bool> = row_fam.iter().map(|&f| f != NONE).collect();
        let kept_rows = |keep: &[bool]| keep.iter().filter(|&&k| k).count();

        // 3. columns: identifiers by content, label leaks, text → categorical or dropped
        let mut dropped: Vec<DroppedColumn> = Vec::new();
        let mut numeric: Vec<usize> = Vec::new();
        let mut categorical: Vec<usize> = Vec::new();
        for j in 0..self.names.len() {
            let name = self.names[j].clone();
            let mut drop = |reason, detail: String| {
                dropped.push(DroppedColumn {
                    name: name.clone(),
                    reason,
                    detail,
                })
            };
            match &self.kinds[j] {
                Kind::Label => {}
                Kind::Skip(r, d) => drop(*r, d.clone()),
                Kind::Numeric => {
                    if !opts.keep_identifiers && self.running[j].is_some() && n > 2 {
                        drop(
                            DropReason::Identifier,
                            "running row number (each row = previous + 1)".into(),
                        );
                    } else {
                        numeric.push(j);
                    }
                }
                Kind::Text => {
                    let dict = &self.text_dict[j];
                    let mut present = vec![false; dict.len()];
                    for (r, &c) in self.text_codes[j].iter().enumerate() {
                        if keep[r] && c != MISSING {
                            present[c as usize] = true;
                        }
                    }
                    let levels = present.iter().filter(|&&p| p).count();
                    let example = dict.keys().next().cloned().unwrap_or_default();
                    if levels > opts.max_categories {
                        drop(
                            DropReason::NonNumeric,
                            format!(
                                "text with {levels} distinct values (e.g. '{example}'), more than --max-categories {}",
                                opts.max_categories
                            ),
                        );
                    } else if opts.categorical == CategoricalPolicy::Drop {
                        drop(
                            DropReason::Categorical,
                            format!("text with {levels} values (e.g. '{example}')"),
                        );
                    } else {
                        categorical.push(j);
                    }
                }
            }
        }

        // all-missing / mostly-missing numeric columns (before rows are dropped for NaN)
        let n_keep = kept_rows(&keep);
        numeric.retain(|&j| {
            let miss = self.num[j]
                .iter()
                .zip(&keep)
                .filter(|(x, &k)| k && x.is_nan())
                .count();
            if miss == n_keep {
                dropped.push(DroppedColumn {
                    name: self.names[j].clone(),
                    reason: DropReason::AllMissing,
                    detail: "no value in any row".into(),
                });
                false
            } else if miss * 2 > n_keep {
                dropped.push(DroppedColumn {
                    name: self.names[j].clone(),
                    reason: DropReason::MostlyMissing,
                    detail: format!("{miss} of {n_keep} rows missing"),
                });
                false
            } else {
                true
            }
        });

        // label leaks: one value per family, at least two families, not constant overall
        numeric.retain(|&j| {
            let mut first: Vec<Option<f32>> = vec![None; fam_names.len()];
            let mut leak = true;
            for r in 0..n {
                if !keep[r] {
                    continue;
                }
                let x = self.num[j][r];
                let f = row_fam[r] as usize;
                match first[f] {
                    None => first[f] = Some(x),
                    Some(v) if v == x => {}
                    Some(_) => {
                        leak = false;
                        break;
                    }
                }
            }
            let vals: Vec<f32> = first.iter().flatten().copied().collect();
            let distinct = vals.iter().any(|&v| v != vals[0]);
            let fams_with_two = fam_count
                .iter()
                .enumerate()
                .filter(|(i, &c)| c >= 2 && first[*i].is_some())
                .count();
            if leak && distinct && fams_with_two >= 2 && vals.len() == fams_with_two {
                dropped.push(DroppedColumn {
                    name: self.names[j].clone(),
                    reason: DropReason::LabelLeak,
                    detail: "one value per family: a copy of the label".into(),
                });
                false
            } else {
                true
            }
        });

        // 4. one-hot levels from the kept rows, ascending byte order
        let mut onehot: Vec<(usize, Vec<u32>, Vec<String>)> = Vec::new();
        for &j in &categorical {
            let mut levels: Vec<(String, u32)> = self.text_dict[j]
                .iter()
                .map(|(s, &c)| (s.clone(), c))
                .collect();
            let mut present = vec![false; levels.len()];
            for (r, &c) in self.text_codes[j].iter().enumerate() {
                if keep[r] && c != MISSING {
                    present[c as usize] = true;
                }
            }
            levels.retain(|(_, c)| present[*c as usize]);
            levels.sort();
            // code → one-hot position
            let mut pos = vec![u32::MAX; self.text_dict[j].len()];
            for (k, (_, c)) in levels.iter().enumerate() {
                pos[*c as usize] = k as u32;
            }
            report.one_hot.push(OneHotColumn {
                name: self.names[j].clone(),
                levels: levels.len(),
            });
            onehot.push((j, pos, levels.into_iter().map(|(s, _)| s).collect()));
        }

        // 5. missing values
        let mut with_missing = 0u64;
        for r in 0..n {
            if keep[r] && numeric.iter().any(|&j| self.num[j][r].is_nan()) {
                with_missing += 1;
                if opts.missing == MissingPolicy::DropRows {
                    keep[r] = false;
                }
            }
        }
        report.rows_with_missing = with_missing;
        if opts.missing == MissingPolicy::DropRows {
            report.rows_dropped_missing = with_missing;
        }

        // duplicates among the kept rows
        let mut seen = std::collections::HashSet::with_capacity(kept_rows(&keep));
        let mut dups = 0u64;
        for r in 0..n {
            if keep[r] && !seen.insert(self.row_hash[r]) {
                dups += 1;
                if opts.drop_duplicates {
                    keep[r] = false;
                }
            }
        }
        report.duplicate_rows = dups;
        report.duplicates_dropped = opts.drop_duplicates;
        drop(seen);

        // 6. constant columns over the kept rows (NaN ignored)
        numeric.retain(|&j| {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for (x, &k) in self.num[j].iter().zip(&keep) {
                if k && !x.is_nan() {
                    lo = lo.min(*x);
                    hi = hi.max(*x);
                }
            }
            if hi > lo {
                true
            } else {
                dropped.push(DroppedColumn {
                    name: self.names[j].clone(),
                    reason: DropReason::Constant,
                    detail: if lo.is_finite() {
                        format!("always {lo}")
                    } else {
                        "no value".into()
                    },
                });
                false
            }
        });
        let mut onehot_cols: Vec<(usize, u32, String)> = Vec::new(); // (column, level, name)
        for (j, pos, levels) in &onehot {
            let mut count = vec![0usize; levels.len()];
            let mut kept = 0usize;
            for (r, &c) in self.text_codes[*j].iter().enumerate() {
                if keep[r] {
                    kept += 1;
                    if c != MISSING && pos[c as usize] != u32::MAX {
                        count[pos[c as usize] as usize] += 1;
                    }
                }
            }
            for (k, lv) in levels.iter().enumerate() {
                let name = format!("{}={lv}", self.names[*j]);
                if count[k] == 0 || count[k] == kept {
                    dropped.push(DroppedColumn {
                        name,
                        reason: DropReason::Constant,
                        detail: "one-hot level present in no row or in every row".into(),
                    });
                } else {
                    onehot_cols.push((*j, k as u32, name));
                }
            }
        }

        // per-column cell report over the columns considered as features
        for j in 0..self.names.len() {
            if matches!(self.kinds[j], Kind::Numeric | Kind::Text) && self.cells[j].total() > 0 {
                report.cells.add(&self.cells[j]);
                report.cells_by_column.push(ColumnCells {
                    column: self.names[j].clone(),
                    cells: self.cells[j].clone(),
                });
            }
        }
        report
            .cells_by_column
            .sort_by_key(|c| std::cmp::Reverse(c.cells.total()));
        report.dropped_columns = dropped;

        // assemble
        let rows: Vec<usize> = (0..n).filter(|&r| keep[r]).collect();
        report.rows_kept = rows.len() as u64;
        let used_fams: Vec<bool> = {
            let mut u = vec![false; fam_names.len()];
            for &r in &rows {
                u[row_fam[r] as usize] = true;
            }
            u
        };
        let families: Vec<String> = fam_names
            .iter()
            .zip(&used_fams)
            .filter(|(_, &u)| u)
            .map(|(f, _)| f.clone())
            .collect();
        let dropped_names = || {
            report
                .dropped_columns
                .iter()
                .map(|d| format!("{} ({})", d.name, d.reason.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if rows.is_empty() {
            return Err(DataError::NoRows {
                path: path.to_path_buf(),
                why: format!(
                    "{} rows with missing values, {} without a label, {} in small families",
                    report.rows_dropped_missing,
                    report.rows_without_label,
                    report
                        .small_families_dropped
                        .iter()
                        .map(|x| x.1)
                        .sum::<u64>()
                ),
            });
        }
        let d = numeric.len() + onehot_cols.len();
        if d == 0 {
            return Err(DataError::NoFeatures {
                path: path.to_path_buf(),
                dropped: dropped_names(),
            });
        }
        if families.len() < 2 {
            return Err(DataError::TooFewFamilies {
                path: path.to_path_buf(),
                label: self.names[self.label_idx].clone(),
                count: families.len(),
                plural: if families.len() == 1 { "y" } else { "ies" },
                families: families.join(", "),
            });
        }
        let remap: Vec<u32> = {
            let mut m = vec![u32::MAX; fam_names.len()];
            let mut k = 0u32;
            for (i, &u) in used_fams.iter().enumerate() {
                if u {
                    m[i] = k;
                    k += 1;
                }
            }
            m
        };
        let mut features = vec![0f32; rows.len() * d];
        for (c, &j) in numeric.iter().enumerate() {
            let col = std::mem::take(&mut self.num[j]);
            for (i, &r) in rows.iter().enumerate() {
                features[i * d + c] = col[r];
            }
        }
        let pos_of: HashMap<usize, &Vec<u32>> = onehot.iter().map(|(j, p, _)| (*j, p)).collect();
        for (c, (j, level, _)) in onehot_cols.iter().enumerate() {
            let codes = &self.text_codes[*j];
            let pos = pos_of[j]; // cannot fail: every one-hot column comes from `onehot`
            for (i, &r) in rows.iter().enumerate() {
                let code = codes[r];
                if code != MISSING && pos[code as usize] == *level {
                    features[i * d + numeric.len() + c] = 1.0;
                }
            }
        }
        let mut feature_names: Vec<String> =
            numeric.iter().map(|&j| self.names[j].clone()).collect();
        feature_names.extend(onehot_cols.into_iter().map(|(_, _, n)| n));
        let family: Vec<FamilyId> = rows.iter().map(|&r| remap[row_fam[r] as usize]).collect();
        Ok(Table {
            features,
            n_rows: rows.len(),
            n_features: d,
            feature_names,
            family,
            families,
            source_row: rows.iter().map(|&r| r as u64).collect(),
            label_column: self.names[self.label_idx].clone(),
            report,
        })
    }
}
