//! Atomic file writes, the one way heldout writes results: the bytes go to a temporary file in
//! the same folder, are flushed to disk, and the temporary file is renamed over the target, so a
//! reader (or a run killed mid-write) sees the old file or the new one, never half of one.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary file `write_atomic` uses for `path`: hidden, in the same folder (a rename
/// across file systems would not be atomic), unique per process and call (two threads writing
/// the same path never share one).
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.{}.{k}.tmp", std::process::id()))
}

/// Writes `contents` to `path` atomically (temp + fsync + rename). On error the temporary file
/// is removed and the target is left as it was.
pub fn write_atomic(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    replace_with(path, |f| f.write_all(contents.as_ref()))
}

/// Appends `extra` to `path` atomically: the old contents are copied into the temporary file
/// (streamed, not read into memory), `extra` follows, and the temporary file replaces `path`.
/// A reader sees the old file or the longer one, never a half-appended one; a missing `path`
/// is created. This is how a run folder's files grow unit by unit while the runner keeps only
/// the current unit's rows in memory.
pub fn append_atomic(path: &Path, extra: impl AsRef<[u8]>) -> Result<()> {
    replace_with(path, |f| {
        match std::fs::File::open(path) {
            Ok(mut old) => {
                std::io::copy(&mut old, f)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        f.write_all(extra.as_ref())
    })
}

fn replace_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write it", path.display()));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot replace it", path.display()));
    }
    // the rename itself is durable once the folder is flushed (best effort: not every
    // platform or file system lets a folder be opened and synced)
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(f) = std::fs::File::open(dir) {
            let _ = f.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        write_atomic(&p, "a\n").unwrap();
        write_atomic(&p, "b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn appends_and_creates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scores.csv");
        append_atomic(&p, "h\n").unwrap();
        append_atomic(&p, "1\n2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "h\n1\n2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("x.csv");
        let e = format!("{:#}", write_atomic(&p, "a").unwrap_err());
        assert!(e.contains("x.csv"), "{e}");
    }
}
