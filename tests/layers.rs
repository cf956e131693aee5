//! The module layering of `src/lib.rs`, checked on the source: an import that runs the wrong way
//! (a detector reaching up into the experiment, the command line into the workbench) fails here.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// (module folder or file under src/, module paths it must not name)
const RULES: &[(&str, &[&str])] = &[
    (
        "data",
        &[
            "crate::split",
            "crate::detect",
            "crate::experiment",
            "crate::report",
            "crate::gui",
            "crate::cli",
        ],
    ),
    (
        "split",
        &[
            "crate::detect",
            "crate::experiment",
            "crate::report",
            "crate::gui",
            "crate::cli",
        ],
    ),
    (
        "nn",
        &[
            "crate::detect",
            "crate::experiment",
            "crate::report",
            "crate::gui",
            "crate::cli",
        ],
    ),
    (
        "eval",
        &[
            "crate::detect",
            "crate::experiment",
            "crate::report",
            "crate::gui",
            "crate::cli",
        ],
    ),
    (
        "detect",
        &[
            "crate::experiment",
            "crate::report",
            "crate::gui",
            "crate::cli",
        ],
    ),
    ("report", &["crate::experiment", "crate::gui", "crate::cli"]),
    ("experiment", &["crate::gui", "crate::cli"]),
    ("gui", &["crate::cli"]),
    ("cli.rs", &["crate::gui"]),
    ("atomic.rs", &["crate::"]),
    ("rng.rs", &["crate::"]),
];

#[test]
fn imports_point_down_only() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for (module, forbidden) in RULES {
        let root = src.join(module);
        let mut files = Vec::new();
        if root.is_dir() {
            sources(&root, &mut files);
        } else {
            files.push(root.clone());
        }
        assert!(!files.is_empty(), "{module}: no source files");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for name in *forbidden {
                    if code.contains(name) {
                        bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                    }
                }
            }
            // grouped imports (`use crate::{experiment, …}`, over several lines too)
            let code: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" ");
            let mut rest = code.as_str();
            while let Some(at) = rest.find("crate::{") {
                let group = &rest[at + 8..];
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let item = item.trim();
                    for name in *forbidden {
                        let module = name.trim_start_matches("crate::");
                        if !module.is_empty()
                            && (item == module || item.starts_with(&format!("{module}::")))
                        {
                            bad.push(format!("{}: use crate::{{… {item} …}}", f.display()));
                        }
                    }
                }
                rest = &group[end..];
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports that run the wrong way:\n{}",
        bad.join("\n")
    );
}
