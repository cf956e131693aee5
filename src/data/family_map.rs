//! Label → family maps (`label,family` CSVs such as CIC-IDS2017's `family_map.csv`).

use super::error::{DataError, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A label → family map read from a two-column CSV with a header row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyMap {
    pub path: PathBuf,
    pub map: HashMap<String, String>,
}

impl FamilyMap {
    /// Reads a map. Labels and families are whitespace-stripped; a label listed twice with
    /// different families is an error.
    pub fn read(path: &Path) -> Result<FamilyMap> {
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DataError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|_| DataError::BadFamilyMap {
            path: path.to_path_buf(),
            line: 1,
            what: "not UTF-8 text".into(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut map = HashMap::new();
        let bad = |line: usize, what: String| DataError::BadFamilyMap {
            path: path.to_path_buf(),
            line,
            what,
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if i == 0 || line.trim().is_empty() {
                continue; // header, blank
            }
            let Some((label, family)) = line.rsplit_once(',') else {
                return Err(bad(
                    i + 1,
                    format!("expected 'label,family', found '{line}'"),
                ));
            };
            let label = label.trim().trim_matches('"').trim();
            let family = family.trim().trim_matches('"').trim();
            if family.is_empty() {
                return Err(bad(i + 1, format!("label '{label}' has an empty family")));
            }
            if let Some(prev) = map.insert(label.to_string(), family.to_string()) {
                if prev != family {
                    return Err(bad(
                        i + 1,
                        format!("label '{label}' is mapped twice ('{prev}' and '{family}')"),
                    ));
                }
            }
        }
        if map.is_empty() {
            return Err(bad(1, "no mappings found".into()));
        }
        Ok(FamilyMap {
            path: path.to_path_buf(),
            map,
        })
    }
}
