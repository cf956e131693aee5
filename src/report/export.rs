//! "Export run": every figure of a run folder as SVG and/or PNG, the results table as CSV,
//! Markdown and LaTeX, and the experiment as RON, written (atomically) into one folder —
//! `<run folder>/export` unless told otherwise.
//!
//! Layout of the export folder:
//!
//! ```text
//! figures/histograms_<method>_seed<s>_<rotation>.svg|png   per unit with checkpoints
//! figures/roc_<method>_seed<s>_<rotation>[_<family>].svg|png
//! figures/pr_<method>_seed<s>_<rotation>[_<family>].svg|png
//! figures/training_<method>_seed<s>_<rotation>.svg|png
//! figures/pcgrad_<method>_seed<s>_<rotation>.svg|png      per unit with PCGrad rows
//! figures/method_auc.svg|png
//! figures/test_roc_<family>_seed<s>.svg|png               lowest seed of the run
//! results.csv  results.md  results.tex  experiment.ron
//! ```

use super::figures::{self, Figure};
use super::rundata::{Curve, RunData, RunFolder};
use super::table::FamilyTable;
use crate::atomic::write_atomic;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A figure file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Vector, for papers and the web.
    Svg,
    /// Raster at [`figures::PNG_SCALE`]× the SVG size.
    Png,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// Both formats.
pub const ALL_FORMATS: [Format; 2] = [Format::Svg, Format::Png];

/// The default export folder of a run folder: `<run folder>/export`.
pub fn default_out_dir(folder: &RunFolder) -> PathBuf {
    folder.dir.join("export")
}

/// Every figure worth drawing for a run, in a stable order: per unit (sorted) its histograms,
/// ROC and PR curves of each held-out family, training and PCGrad figures and the paper's
/// Fig. 2 for one and two columns (each only when the unit has the rows); then the method
/// comparison, the summary slide and the test ROC of each held-out family (lowest seed).
pub fn figures_for(data: &RunData) -> Vec<Figure> {
    let mut out = Vec::new();
    for unit in data.units() {
        let mut cands = vec![Figure::Histograms {
            unit: unit.clone(),
            episode: None,
            seen: true,
            unit_axis: false,
        }];
        let mut fams: Vec<&str> = Vec::new();
        for c in data.curves.iter().filter(|c| c.unit == unit) {
            if !fams.contains(&c.family.as_str()) {
                fams.push(&c.family);
            }
        }
        for f in fams {
            for curve in [Curve::Roc, Curve::Pr] {
                cands.push(Figure::Curves {
                    unit: unit.clone(),
                    family: f.to_string(),
                    curve,
                    episode: None,
                });
            }
        }
        cands.push(Figure::Training { unit: unit.clone() });
        cands.push(Figure::Pcgrad { unit: unit.clone() });
        // the paper's Fig. 2 of the held-out family, for one and two columns
        for width in crate::report::figures::PaperWidth::ALL {
            cands.push(Figure::Paper {
                unit: unit.clone(),
                episode: None,
                width,
                unit_axis: false,
            });
        }
        out.extend(cands.into_iter().filter(|f| f.has_data(data)));
    }
    if !data.metrics.is_empty() {
        out.push(Figure::MethodAuc);
        out.push(Figure::Summary);
    }
    let seed = data.scores.iter().map(|s| s.unit.seed).min();
    let mut fams: Vec<&str> = Vec::new();
    for m in &data.metrics {
        if !fams.contains(&m.held_out.as_str()) {
            fams.push(&m.held_out);
        }
    }
    for f in fams {
        let fig = Figure::TestRoc {
            family: f.to_string(),
            seed,
        };
        if fig.has_data(data) {
            out.push(fig);
        }
    }
    // threshold transfer: every method on every held-out family, at the lowest seed
    if let Some(seed) = seed {
        for (method, family, s) in crate::report::figures::transfer_choices(data) {
            if s != seed {
                continue;
            }
            let fig = Figure::Transfer {
                method,
                family,
                seed,
            };
            if fig.has_data(data) {
                out.push(fig);
            }
        }
    }
    out
}

/// The Markdown results file: the per-family table with a heading and what the numbers are.
fn results_markdown(t: &FamilyTable, folder: &RunFolder) -> String {
    format!(
        "# Results of {}\n\nTest metrics at τ* per held-out family, mean ± std over seeds (macro: mean over held-out families within a seed, then over seeds). Run status: {}.\n\n{}",
        folder.name(),
        folder.status,
        t.to_markdown()
    ) + &super::table::transfer_markdown(&folder.data.metrics)
        + &FamilyTable::paired_markdown(&folder.data.metrics)
}

/// Writes every figure (in each of `formats`) and the tables and experiment into `out_dir`
/// (created); returns the files written. Figures are drawn in parallel.
pub fn export_run(folder: &RunFolder, out_dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    export_run_with(folder, out_dir, formats, false)
}

/// [`export_run`]; `unit_axis`: histogram score axes span [0, 1] instead of the scores' range.
pub fn export_run_with(
    folder: &RunFolder,
    out_dir: &Path,
    formats: &[Format],
    unit_axis: bool,
) -> Result<Vec<PathBuf>> {
    let fig_dir = out_dir.join("figures");
    std::fs::create_dir_all(&fig_dir).with_context(|| {
        format!(
            "{}: cannot create the export folder — choose a writable folder with --out",
            fig_dir.display()
        )
    })?;
    let mut written = Vec::new();
    let table = FamilyTable::from_metrics(&folder.data.metrics);
    for (name, text) in [
        ("results.csv", table.to_csv()),
        ("results.md", results_markdown(&table, folder)),
        (
            "results.tex",
            table.to_latex() + &FamilyTable::paired_latex(&folder.data.metrics),
        ),
        // the core paper's Table 1 layout: per held-out family P / R / AUC / F1
        (
            "table1.md",
            table.paper_markdown(super::table::PAPER_FAMILIES_PER_BLOCK),
        ),
        (
            "table1.tex",
            table.paper_latex(super::table::PAPER_FAMILIES_PER_BLOCK),
        ),
        ("experiment.ron", folder.config_text.clone()),
    ] {
        let p = out_dir.join(name);
        write_atomic(&p, &text)?;
        written.push(p);
    }
    let mut unique: Vec<Format> = Vec::new();
    for f in formats {
        if !unique.contains(f) {
            unique.push(*f);
        }
    }
    let formats = unique;
    let jobs: Vec<(Figure, PathBuf)> = figures_for(&folder.data)
        .into_iter()
        .map(|f| match f {
            Figure::Histograms {
                unit,
                episode,
                seen,
                ..
            } => Figure::Histograms {
                unit,
                episode,
                seen,
                unit_axis,
            },
            Figure::Paper {
                unit,
                episode,
                width,
                ..
            } => Figure::Paper {
                unit,
                episode,
                width,
                unit_axis,
            },
            f => f,
        })
        .flat_map(|f| {
            let stem = f.file_stem();
            let dir = &fig_dir;
            formats
                .iter()
                .map(move |fmt| (f.clone(), dir.join(format!("{stem}.{}", fmt.ext()))))
                .collect::<Vec<_>>()
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((fig, path)) = jobs.get(i) else {
                            break;
                        };
                        let r = figures::render(fig, &folder.data, path)
                            .with_context(|| format!("drawing {}", path.display()));
                        done.push((i, r));
                    }
                    done
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<()>)> = Vec::new();
        for h in handles {
            match h.join() {
                Ok(d) => all.extend(d),
                Err(_) => all.push((
                    usize::MAX,
                    Err(anyhow::anyhow!("a figure-drawing thread panicked")),
                )),
            }
        }
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    for r in results {
        r?;
    }
    written.extend(jobs.into_iter().map(|(_, p)| p));
    Ok(written)
}
