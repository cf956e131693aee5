//! The byte-level pre-pass over CSV text. It runs before polars parses a chunk and does what a
//! CSV parser does not report: it removes header lines repeated inside the data, blank lines and
//! lines with the wrong number of fields (remembering where they were), strips CRLF and stray
//! whitespace around fields, and counts per column the cells that are `NaN`, `±Infinity`,
//! empty, `?` or text. The cleaned lines go to an output buffer that polars then parses.

use super::report::CellCounts;
use std::io::Read;

/// How one field looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Number,
    Empty,
    Question,
    NaN,
    PosInf,
    NegInf,
    Text,
}

/// Trims ASCII spaces and tabs.
#[inline]
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Classifies a trimmed field.
#[inline]
pub(crate) fn classify(f: &[u8]) -> Token {
    match f.first() {
        None => return Token::Empty,
        Some(b'0'..=b'9') => {
            if is_number(f) {
                return Token::Number;
            }
            return Token::Text;
        }
        _ => {}
    }
    let f = if f.len() >= 2 && f[0] == b'"' && f[f.len() - 1] == b'"' {
        trim(&f[1..f.len() - 1])
    } else {
        f
    };
    if f.is_empty() {
        return Token::Empty;
    }
    if f == b"?" {
        return Token::Question;
    }
    if is_number(f) {
        return Token::Number;
    }
    let (neg, body) = match f[0] {
        b'-' => (true, &f[1..]),
        b'+' => (false, &f[1..]),
        _ => (false, f),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return if neg { Token::NegInf } else { Token::PosInf };
    }
    if body.eq_ignore_ascii_case(b"nan") {
        return Token::NaN;
    }
    Token::Text
}

/// A decimal number: `[+-]? digits [. digits] [(e|E) [+-]? digits]`, at least one digit.
#[inline]
fn is_number(f: &[u8]) -> bool {
    let mut i = 0;
    let n = f.len();
    if i < n && (f[i] == b'+' || f[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    while i < n && f[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < n && f[i] == b'.' {
        i += 1;
        while i < n && f[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < n && (f[i] == b'e' || f[i] == b'E') {
        i += 1;
        if i < n && (f[i] == b'+' || f[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < n && f[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == n
}

/// Splits one line (no line terminator) into fields, honouring double quotes. Returns false
/// when a quote is left open (a malformed line: fields spanning lines are not supported).
pub(crate) fn split_fields(line: &[u8], out: &mut Vec<(usize, usize)>) -> bool {
    out.clear();
    if memchr::memchr(b'"', line).is_none() {
        let mut start = 0;
        for pos in memchr::memchr_iter(b',', line) {
            out.push((start, pos));
            start = pos + 1;
        }
        out.push((start, line.len()));
        return true;
    }
    let mut start = 0;
    let mut in_quotes = false;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, line.len()));
    !in_quotes
}

/// Per-column token counts of a stretch of data.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnTokens {
    pub cells: CellCounts,
    pub numbers: u64,
    pub text: u64,
    /// A few text values, for identifier detection and messages.
    pub samples: Vec<String>,
}

/// What the pre-pass found in the lines it removed or fixed.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineIssues {
    pub lines: u64,
    pub blank: u64,
    pub repeated_header: u64,
    pub repeated_header_at: Vec<u64>,
    pub wrong_fields: u64,
    pub wrong_fields_at: Vec<(u64, usize)>,
    pub crlf: bool,
    pub labels_stripped: u64,
}

/// The pre-pass state of one file.
pub(crate) struct Scanner {
    header: Vec<u8>,
    n_fields: usize,
    label_col: Option<usize>,
    /// Line number (1-based) of the last line consumed; the header is line 1.
    line_no: u64,
    fields: Vec<(usize, usize)>,
    pub issues: LineIssues,
}

const KEEP_AT: usize = 5;
const SAMPLES: usize = 64;

impl Scanner {
    /// `header` is the header line without terminator or BOM.
    pub fn new(header: &[u8], n_fields: usize, label_col: Option<usize>) -> Scanner {
        Scanner {
            header: header.to_vec(),
            n_fields,
            label_col,
            line_no: 1,
            fields: Vec::with_capacity(n_fields + 1),
            issues: LineIssues::default(),
        }
    }

    /// Scans whole lines of `chunk`, appends the good ones (fields trimmed, LF-terminated) to
    /// `out`, adds their token counts to `cols`, and returns how many rows it appended.
    pub fn scan(&mut self, chunk: &[u8], out: &mut Vec<u8>, cols: &mut [ColumnTokens]) -> u64 {
        let mut rows = 0u64;
        let mut start = 0usize;
        let n = chunk.len();
        while start < n {
            let end = memchr::memchr(b'\n', &chunk[start..]).map_or(n, |p| start + p);
            let mut line = &chunk[start..end];
            start = end + 1;
            self.line_no += 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
                self.issues.crlf = true;
            }
            if trim(line).is_empty() {
                self.issues.blank += 1;
                continue;
            }
            self.issues.lines += 1;
            if line == self.header.as_slice() {
                self.issues.repeated_header += 1;
                if self.issues.repeated_header_at.len() < KEEP_AT {
                    self.issues.repeated_header_at.push(self.line_no);
                }
                continue;
            }
            let balanced = split_fields(line, &mut self.fields);
            if !balanced || self.fields.len() != self.n_fields {
                self.issues.wrong_fields += 1;
                if self.issues.wrong_fields_at.len() < KEEP_AT {
                    self.issues
                        .wrong_fields_at
                        .push((self.line_no, self.fields.len()));
                }
                continue;
            }
            for (j, &(a, b)) in self.fields.iter().enumerate() {
                let raw = &line[a..b];
                let f = trim(raw);
                if j > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(f);
                if Some(j) == self.label_col {
                    if f.len() != raw.len() {
                        self.issues.labels_stripped += 1;
                    }
                    continue;
                }
                let c = &mut cols[j];
                match classify(f) {
                    Token::Number => c.numbers += 1,
                    Token::Empty => c.cells.empty += 1,
                    Token::Question => c.cells.question += 1,
                    Token::NaN => c.cells.nan += 1,
                    Token::PosInf => c.cells.pos_inf += 1,
                    Token::NegInf => c.cells.neg_inf += 1,
                    Token::Text => {
                        c.text += 1;
                        if c.samples.len() < SAMPLES {
                            c.samples.push(String::from_utf8_lossy(f).into_owned());
                        }
                    }
                }
            }
            out.push(b'\n');
            rows += 1;
        }
        rows
    }
}

/// Reads a stream in chunks that end on a line boundary.
pub(crate) struct LineChunks<R: Read> {
    reader: R,
    buf: Vec<u8>,
    /// Length of the complete-lines prefix of `buf` handed out by the last `next`.
    cut: usize,
    eof: bool,
    target: usize,
    pub bytes_read: u64,
}

impl<R: Read> LineChunks<R> {
    pub fn new(reader: R, target: usize) -> Self {
        LineChunks {
            reader,
            buf: Vec::with_capacity(target + (1 << 16)),
            cut: 0,
            eof: false,
            target,
            bytes_read: 0,
        }
    }

    /// The next chunk of whole lines, or `None` at the end.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.buf.drain(..self.cut);
        self.cut = 0;
        while !self.eof && self.buf.len() < self.target {
            let old = self.buf.len();
            let want = self.target - old;
            self.buf.resize(old + want.max(1 << 16), 0);
            let got = loop {
                match self.reader.read(&mut self.buf[old..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(old);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(old + got);
            self.bytes_read += got as u64;
            if got == 0 {
                self.eof = true;
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.cut = if self.eof {
            self.buf.len()
        } else {
            match memchr::memrchr(b'\n', &self.buf) {
                Some(p) => p + 1,
                // One line longer than the chunk: hand out what we have and keep reading.
                None => {
                    self.target *= 2;
                    return self.next_chunk_grow();
                }
            }
        };
        Ok(Some(&self.buf[..self.cut]))
    }

    fn next_chunk_grow(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.cut = 0;
        self.next_chunk()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_quirky_cells_of_real_ids_csvs() {
        for (s, t) in [
            ("12", Token::Number),
            ("-1.5e-3", Token::Number),
            (".5", Token::Number),
            ("1.", Token::Number),
            ("", Token::Empty),
            ("?", Token::Question),
            ("NaN", Token::NaN),
            ("nan", Token::NaN),
            ("Infinity", Token::PosInf),
            ("inf", Token::PosInf),
            ("+inf", Token::PosInf),
            ("-inf", Token::NegInf),
            ("-Infinity", Token::NegInf),
            ("192.168.10.5", Token::Text),
            ("2017-07-06 12:39:06", Token::Text),
            ("tcp", Token::Text),
            ("e5", Token::Text),
            ("-", Token::Text),
        ] {
            assert_eq!(classify(s.as_bytes()), t, "{s}");
        }
    }

    #[test]
    fn chunks_end_on_line_boundaries_and_cover_everything() {
        let text: String = (0..1000).map(|i| format!("{i},{}\n", i * 7)).collect();
        let mut r = LineChunks::new(text.as_bytes(), 100);
        let mut all = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            assert_eq!(*c.last().unwrap(), b'\n');
            all.extend_from_slice(c);
        }
        assert_eq!(all, text.as_bytes());
    }
}
