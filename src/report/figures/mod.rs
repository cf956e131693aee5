//! Figure files drawn from a run's rows at publication quality: SVG (vector) or PNG (raster at
//! [`PNG_SCALE`]× the SVG size), chosen by the file's extension. Not screen grabs: every figure is
//! drawn from [`RunData`] with plotters, its text through `ab_glyph` with egui's bundled Ubuntu
//! font (no system fonts needed).
//!
//! The data behind each panel comes from small pure functions ([`histogram_grid`],
//! [`curve_series`], [`training_series`], [`pcgrad_series`], [`method_auc_bars`],
//! [`test_roc_series`]) that the GUI can reuse and the tests check. Colours are fixed per
//! checkpoint stage ([`stage_color`]) and per class ([`class_color`]) across all figures.
//!
//! Odd data never panics: a figure or panel without rows is drawn with a note saying so.

use crate::detect::Stage;
use crate::report::rundata::{Curve, MetricRow, RunData, UnitKey};
use crate::report::table::{FamilyTable, Stat};
use anyhow::{bail, Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// PNG files are drawn at this multiple of the SVG (logical) size.
pub const PNG_SCALE: u32 = 2;

/// The checkpoint stages, in episode order.
pub const STAGES: [Stage; 3] = [Stage::Pre, Stage::Inner, Stage::Outer];

/// The column index of AUC-ROC in [`COLUMNS`](crate::report::table::COLUMNS).
pub const AUC_COLUMN: usize = 5;

/// The font family name the figures register and use.
const FONT: &str = "sans-serif";

/// A figure of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// The paper's Fig. 2: per family (rows) and checkpoint (columns pre / after inner / after
    /// outer), histograms of the scores of normals and anomalies, with the AUC in each panel.
    Histograms {
        unit: UnitKey,
        /// `None`: the unit's last episode.
        episode: Option<usize>,
        /// Also rows for the seen (few-shot) families, after the held-out ones.
        seen: bool,
        /// The score axis spans [0, 1] (widened to the scores when they leave it) instead of
        /// the scores' own range.
        unit_axis: bool,
    },
    /// ROC or PR curves of a held-out family at the three checkpoints of an episode.
    Curves {
        unit: UnitKey,
        family: String,
        curve: Curve,
        /// `None`: the last episode with curve rows.
        episode: Option<usize>,
    },
    /// Per episode: mean loss per stage, calibrated-logit margins, temperature T, τ*.
    Training { unit: UnitKey },
    /// PCGrad: pairwise cosines between task gradients per outer step, and the share projected.
    Pcgrad { unit: UnitKey },
    /// Test AUC-ROC per held-out family, mean ± std over seeds, per method (grouped bars).
    MethodAuc,
    /// The paper's Fig. 2 for one held-out family, sized for a paper column: its pre / after
    /// inner / after outer histograms side by side with the AUC of each, fonts ≥ 7 pt at the
    /// printed width.
    Paper {
        unit: UnitKey,
        /// `None`: the unit's last episode.
        episode: Option<usize>,
        width: PaperWidth,
        /// As in [`Figure::Histograms`].
        unit_axis: bool,
    },
    /// One slide (16:9) summing up a run: macro AUC-ROC per method (each seed a dot, the mean a
    /// bar) and a heat map of the mean AUC-ROC per held-out family and method.
    Summary,
    /// Test-set ROC curve of each method on one held-out family.
    TestRoc {
        family: String,
        /// `None`: the scores of all seeds pooled.
        seed: Option<u64>,
    },
    /// Threshold transfer: one method's test scores on a held-out family (normals and the
    /// family) with every threshold policy's τ drawn on them, and the recall and false-positive
    /// rate each one realises.
    Transfer {
        method: String,
        family: String,
        seed: u64,
    },
}

mod draw;
mod kit;
pub mod series;
pub mod style;

use draw::*;
use kit::*;
pub use series::*;
pub use style::*;

/// A name usable in a file name: letters, digits and `._+-` kept, anything else `_`.
pub fn file_part(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

fn unit_part(u: &UnitKey) -> String {
    format!(
        "{}_seed{}_{}",
        file_part(&u.method),
        u.seed,
        file_part(&u.rotation)
    )
}

fn unit_text(u: &UnitKey) -> String {
    format!("{}, seed {}, held out {}", u.method, u.seed, u.rotation)
}

impl Figure {
    /// The file name without extension, e.g. `histograms_meta_learner_seed0_Botnet`.
    pub fn file_stem(&self) -> String {
        let ep = |e: &Option<usize>| e.map(|e| format!("_ep{e}")).unwrap_or_default();
        match self {
            Figure::Histograms {
                unit,
                episode,
                seen,
                ..
            } => format!(
                "histograms_{}{}{}",
                unit_part(unit),
                if *seen { "" } else { "_heldout" },
                ep(episode)
            ),
            Figure::Curves {
                unit,
                family,
                curve,
                episode,
            } => {
                let fam = if family == &unit.rotation {
                    String::new()
                } else {
                    format!("_{}", file_part(family))
                };
                format!("{}_{}{fam}{}", curve.as_str(), unit_part(unit), ep(episode))
            }
            Figure::Training { unit } => format!("training_{}", unit_part(unit)),
            Figure::Pcgrad { unit } => format!("pcgrad_{}", unit_part(unit)),
            Figure::MethodAuc => "method_auc".into(),
            Figure::Paper {
                unit,
                episode,
                width,
                ..
            } => format!(
                "paper_fig2_{}_{}{}",
                width.tag(),
                unit_part(unit),
                ep(episode)
            ),
            Figure::Summary => "summary".into(),
            Figure::TestRoc { family, seed } => format!(
                "test_roc_{}_{}",
                file_part(family),
                seed.map(|s| format!("seed{s}"))
                    .unwrap_or_else(|| "pooled".into())
            ),
            Figure::Transfer {
                method,
                family,
                seed,
            } => format!(
                "transfer_{}_seed{seed}_{}",
                file_part(method),
                file_part(family)
            ),
        }
    }

    /// The figure's title (it names what is drawn and from which rows).
    pub fn title(&self, data: &RunData) -> String {
        match self {
            Figure::Histograms { unit, episode, .. } => {
                let e = episode.or_else(|| last_hist_episode(data, unit));
                format!(
                    "Checkpoint scores: {}{}",
                    unit_text(unit),
                    e.map(|e| format!(", episode {e}")).unwrap_or_default()
                )
            }
            Figure::Curves {
                unit,
                family,
                curve,
                episode,
            } => {
                let e = episode.or_else(|| last_curve_episode(data, unit, family, *curve));
                format!(
                    "{} of {family} (held out): {}, seed {}{}",
                    match curve {
                        Curve::Roc => "ROC",
                        Curve::Pr => "Precision–recall",
                    },
                    unit.method,
                    unit.seed,
                    e.map(|e| format!(", episode {e}")).unwrap_or_default()
                )
            }
            Figure::Training { unit } => format!("Training: {}", unit_text(unit)),
            Figure::Pcgrad { unit } => {
                format!("PCGrad task-gradient cosines: {}", unit_text(unit))
            }
            Figure::Paper { unit, episode, .. } => {
                let e = episode.or_else(|| last_hist_episode(data, unit));
                format!(
                    "{} held out · {}, seed {}{}",
                    unit.rotation,
                    unit.method,
                    unit.seed,
                    e.map(|e| format!(", episode {e}")).unwrap_or_default()
                )
            }
            Figure::Summary => {
                let s = summary_series(&data.metrics);
                format!(
                    "Held-out families: macro AUC-ROC per method ({} seed{}) and per family",
                    s.seeds.len(),
                    if s.seeds.len() == 1 { "" } else { "s" }
                )
            }
            Figure::MethodAuc => {
                let n = method_auc_bars(&data.metrics)
                    .bars
                    .iter()
                    .map(|b| b.stat.n)
                    .max()
                    .unwrap_or(0);
                format!(
                    "Test AUC-ROC per held-out family: mean ± std over {n} seed{}",
                    if n == 1 { "" } else { "s" }
                )
            }
            Figure::TestRoc { family, seed } => format!(
                "Test ROC of {family} (held out): {}",
                match seed {
                    Some(s) => format!("seed {s}"),
                    None => "all seeds pooled".into(),
                }
            ),
            Figure::Transfer {
                method,
                family,
                seed,
            } => format!("Threshold transfer to {family} (held out): {method}, seed {seed}"),
        }
    }

    /// Whether `data` has rows for this figure (else it is drawn with a note).
    pub fn has_data(&self, data: &RunData) -> bool {
        match self {
            Figure::Histograms {
                unit,
                episode,
                seen,
                ..
            } => !histogram_grid(data, unit, *episode, *seen).rows.is_empty(),
            Figure::Curves {
                unit,
                family,
                curve,
                episode,
            } => curve_series(data, unit, family, *curve, *episode)
                .1
                .iter()
                .any(|s| !s.points.is_empty()),
            Figure::Training { unit } => !training_series(data, unit).is_empty(),
            Figure::Pcgrad { unit } => !pcgrad_series(data, unit).points.is_empty(),
            Figure::MethodAuc => !method_auc_bars(&data.metrics).bars.is_empty(),
            Figure::Paper { unit, episode, .. } => {
                !paper_grid(data, unit, *episode).rows.is_empty()
            }
            Figure::Summary => !summary_series(&data.metrics).methods.is_empty(),
            Figure::TestRoc { family, seed } => !test_roc_series(data, family, *seed).is_empty(),
            Figure::Transfer {
                method,
                family,
                seed,
            } => transfer_series(data, method, family, *seed).is_some(),
        }
    }

    /// The figure's size in SVG pixels; PNGs are [`PNG_SCALE`] times as large.
    /// PNG pixels per logical (SVG) pixel: [`PNG_SCALE`], or 300 dpi at the printed width of a
    /// paper figure.
    pub fn png_scale(&self) -> f64 {
        match self {
            Figure::Paper { width, .. } => width.png_scale(),
            _ => f64::from(PNG_SCALE),
        }
    }

    pub fn size(&self, data: &RunData) -> (u32, u32) {
        match self {
            Figure::Histograms {
                unit,
                episode,
                seen,
                ..
            } => {
                let rows = histogram_grid(data, unit, *episode, *seen)
                    .rows
                    .len()
                    .max(1) as u32;
                // panels shrink (down to 150 px) when there are many families
                let row_h = if rows <= 10 {
                    220
                } else {
                    (2200 / rows).max(150)
                };
                (1080, 104 + row_h * rows)
            }
            // the plot, and the legend band under it (a row per curve)
            Figure::Curves { .. } => (760, 720),
            Figure::TestRoc { .. } => {
                let n = data.methods().len() as u32;
                (760, 640 + 22 * (n + 1))
            }
            Figure::Training { .. } => (1100, 760),
            Figure::Transfer {
                method,
                family,
                seed,
            } => {
                let n = transfer_series(data, method, family, *seed).map_or(0, |t| t.lines.len())
                    as u32;
                (900, 560 + 22 * (n + 2))
            }
            Figure::Pcgrad { .. } => (1000, 760),
            Figure::Paper { width, .. } => width.size(),
            Figure::Summary => (1600, 900),
            Figure::MethodAuc => {
                let b = method_auc_bars(&data.metrics);
                let groups = b.families.len() as u32;
                let m = b.methods.len().max(1) as u32;
                ((180 + groups * (m * 26 + 36)).max(820), 580)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data extraction (pure)

fn ensure_font() -> Result<()> {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .is_ok()
    });
    if !ok {
        bail!("the built-in figure font (Ubuntu Light from epaint_default_fonts) did not load");
    }
    Ok(())
}

/// Writes `fig` to `path`: SVG for `.svg`, PNG ([`PNG_SCALE`]× size) for `.png`; atomically
/// (temp file + rename).
pub fn render(fig: &Figure, data: &RunData, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => {
            let svg = render_svg(fig, data)?;
            crate::atomic::write_atomic(path, &svg)
        }
        "png" => render_png_file(fig, data, path),
        _ => bail!(
            "{}: unknown figure format `.{ext}` — name the file .svg or .png",
            path.display()
        ),
    }
}

/// The figure as SVG text.
pub fn render_svg(fig: &Figure, data: &RunData) -> Result<String> {
    ensure_font()?;
    let size = fig.size(data);
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw(fig, data, &root, 1.0)?;
        root.present()?;
    }
    Ok(s)
}

/// The figure as RGB pixels (row-major, 3 bytes each) at `scale`× its size; returns
/// (width, height, pixels). For previews.
pub fn render_rgb(fig: &Figure, data: &RunData, scale: u32) -> Result<(u32, u32, Vec<u8>)> {
    ensure_font()?;
    let (w, h) = fig.size(data);
    let (w, h) = (w * scale.max(1), h * scale.max(1));
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(fig, data, &root, f64::from(scale.max(1)))?;
        root.present()?;
    }
    Ok((w, h, buf))
}

fn render_png_file(fig: &Figure, data: &RunData, path: &Path) -> Result<()> {
    ensure_font()?;
    let (w, h) = fig.size(data);
    let scale = fig.png_scale();
    let (pw, ph) = (
        (f64::from(w) * scale).round() as u32,
        (f64::from(h) * scale).round() as u32,
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // the encoder picks the format by extension, so the temp file ends in .png too
    let tmp = path.with_file_name(format!(".{name}.tmp.png"));
    let drawn = (|| -> Result<()> {
        let root = BitMapBackend::new(&tmp, (pw, ph)).into_drawing_area();
        draw(fig, data, &root, scale)?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(path.display().to_string()));
    }
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckpointRow, CurveRow, HistRow, LossRow, PcgradRow, ScoreRow};

    fn unit(m: &str) -> UnitKey {
        UnitKey {
            method: m.into(),
            seed: 0,
            rotation: "A".into(),
        }
    }

    fn ck(u: &UnitKey, ep: usize, stage: Stage, fam: &str, auc: f64) -> CheckpointRow {
        CheckpointRow {
            unit: u.clone(),
            episode: ep,
            stage,
            family: fam.into(),
            held_out: fam == "A",
            auc,
            ap: auc - 0.1,
            margin: if fam == "A" { 0.5 } else { 1.5 } + ep as f64,
            temperature: 1.0 + ep as f64,
        }
    }

    /// Unit "m": families A (held out) and B (seen), episodes 1 and 2, 4 bins over [0, 1]:
    /// pool A has 10 normals + 3 anomalies, pool B 8 + 5.
    fn sample() -> RunData {
        let u = unit("m");
        let mut d = RunData::default();
        for ep in 1..=2 {
            for (k, stage) in STAGES.iter().enumerate() {
                for (fam, nn, na) in [
                    ("A", [4u64, 3, 2, 1], [0u64, 1, 1, 1]),
                    ("B", [5, 3, 0, 0], [0, 0, 2, 3]),
                ] {
                    d.checkpoints
                        .push(ck(&u, ep, *stage, fam, 0.6 + 0.1 * k as f64));
                    for (anomaly, counts) in [(false, nn), (true, na)] {
                        for (i, c) in counts.iter().enumerate() {
                            d.histograms.push(HistRow {
                                unit: u.clone(),
                                episode: ep,
                                stage: *stage,
                                family: fam.into(),
                                anomaly,
                                lo: i as f64 * 0.25,
                                hi: (i + 1) as f64 * 0.25,
                                count: *c,
                            });
                        }
                    }
                }
                for (x, y) in [(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)] {
                    d.curves.push(CurveRow {
                        unit: u.clone(),
                        episode: ep,
                        stage: *stage,
                        family: "A".into(),
                        curve: Curve::Roc,
                        x,
                        y,
                    });
                }
            }
            for (stage, losses) in [(Stage::Inner, [1.0, 3.0]), (Stage::Outer, [2.0, f64::NAN])] {
                for (step, l) in losses.iter().enumerate() {
                    d.losses.push(LossRow {
                        unit: u.clone(),
                        episode: ep,
                        stage,
                        step,
                        loss: *l * ep as f64,
                    });
                }
            }
            for step in 0..2 {
                for (i, j, c) in [("inner", "B", -0.5), ("B", "C", 0.25), ("inner", "C", 0.1)] {
                    d.pcgrad.push(PcgradRow {
                        unit: u.clone(),
                        episode: ep,
                        step,
                        task_i: i.into(),
                        task_j: j.into(),
                        cosine: c,
                        projected: c < 0.0,
                    });
                }
            }
        }
        d
    }

    #[test]
    fn a_method_without_episodes_gets_one_column_of_its_final_scores() {
        let mut d = sample();
        // the same rows, as a method without episodes reports them: one `Final` snapshot
        let u = unit("m");
        d.checkpoints
            .retain(|c| c.episode == 2 && c.stage == Stage::Outer);
        d.histograms
            .retain(|h| h.episode == 2 && h.stage == Stage::Outer);
        d.curves
            .retain(|c| c.episode == 2 && c.stage == Stage::Outer);
        for c in &mut d.checkpoints {
            c.stage = Stage::Final;
        }
        for h in &mut d.histograms {
            h.stage = Stage::Final;
        }
        for c in &mut d.curves {
            c.stage = Stage::Final;
        }
        assert_eq!(unit_stages(&d, &u), vec![Stage::Final]);
        let g = histogram_grid(&d, &u, None, true);
        assert_eq!(g.columns, vec![Stage::Final]);
        for r in &g.rows {
            assert_eq!(r.panels.len(), 1);
            let p = r.panels[0].as_ref().unwrap();
            assert_eq!(p.stage, Stage::Final);
            let (n, a) = if r.family == "A" { (10, 3) } else { (8, 5) };
            assert_eq!((p.n_normal(), p.n_anomaly()), (n, a));
        }
        let (_, series) = curve_series(&d, &u, "A", Curve::Roc, None);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].stage, Stage::Final);
    }

    #[test]
    fn histogram_panels_sum_to_the_pool_sizes() {
        let d = sample();
        let g = histogram_grid(&d, &unit("m"), None, true);
        assert_eq!(g.episode, Some(2), "None = the last episode");
        assert_eq!(
            g.rows
                .iter()
                .map(|r| (r.family.as_str(), r.held_out))
                .collect::<Vec<_>>(),
            vec![("A", true), ("B", false)],
            "held-out rows first"
        );
        for r in &g.rows {
            for (k, p) in r.panels.iter().enumerate() {
                let p = p.as_ref().unwrap();
                assert_eq!(p.stage, STAGES[k]);
                assert_eq!(p.edges, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
                let (n, a) = if r.family == "A" { (10, 3) } else { (8, 5) };
                assert_eq!((p.n_normal(), p.n_anomaly()), (n, a));
                assert!((p.shares(true).iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!((p.auc.unwrap() - (0.6 + 0.1 * k as f64)).abs() < 1e-12);
            }
        }
        assert_eq!(p_of(&g, "B").normal, vec![5, 3, 0, 0]);
        assert_eq!(p_of(&g, "B").anomaly, vec![0, 0, 2, 3]);
        let held = histogram_grid(&d, &unit("m"), Some(1), false);
        assert_eq!(held.rows.len(), 1);
        assert_eq!(held.episode, Some(1));
        assert!(histogram_grid(&d, &unit("other"), None, true)
            .rows
            .is_empty());
        assert!(histogram_grid(&d, &unit("m"), Some(9), true)
            .rows
            .is_empty());
        assert_eq!(prevalence(&d, &unit("m"), "A", 2), Some(3.0 / 13.0));
    }

    fn p_of<'a>(g: &'a HistGrid, fam: &str) -> &'a HistPanel {
        g.rows.iter().find(|r| r.family == fam).unwrap().panels[0]
            .as_ref()
            .unwrap()
    }

    #[test]
    fn curves_carry_the_checkpoint_auc_and_ap() {
        let d = sample();
        let (ep, s) = curve_series(&d, &unit("m"), "A", Curve::Roc, None);
        assert_eq!(ep, Some(2));
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].stage, Stage::Outer);
        assert_eq!(s[2].points, vec![(0.0, 0.0), (0.5, 0.8), (1.0, 1.0)]);
        assert!((s[2].summary.unwrap() - 0.8).abs() < 1e-12);
        let (ep, pr) = curve_series(&d, &unit("m"), "A", Curve::Pr, None);
        assert!(ep.is_none() && pr.is_empty(), "no PR rows");
        let (_, r1) = curve_series(&d, &unit("m"), "A", Curve::Roc, Some(1));
        assert!((r1[0].summary.unwrap() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn training_means_per_episode_skip_non_finite() {
        let d = sample();
        let t = training_series(&d, &unit("m"));
        assert_eq!(t.loss[0], (Stage::Inner, vec![(1, 2.0), (2, 4.0)]));
        assert_eq!(t.loss[1], (Stage::Outer, vec![(1, 2.0), (2, 4.0)]));
        assert!(t.loss_steps.is_empty(), "two episodes: per-episode means");
        assert_eq!(t.margin_held_out, vec![(1, 1.5), (2, 2.5)]);
        assert_eq!(t.margin_seen, vec![(1, 2.5), (2, 3.5)]);
        assert_eq!(t.temperature, vec![(1, 2.0), (2, 3.0)]);
        let mut one = d.clone();
        one.losses.retain(|l| l.episode == 1);
        let t1 = training_series(&one, &unit("m"));
        assert_eq!(t1.loss_steps[0], (Stage::Inner, vec![(0, 1.0), (1, 3.0)]));
        assert_eq!(t1.loss_steps[1], (Stage::Outer, vec![(0, 2.0)]));
        assert!(training_series(&d, &unit("x")).is_empty());
    }

    #[test]
    fn pcgrad_indexes_steps_and_counts_projections() {
        let p = pcgrad_series(&sample(), &unit("m"));
        assert_eq!(p.steps, 4);
        assert_eq!(p.points.len(), 12);
        assert_eq!(p.episode_starts, vec![(1, 0), (2, 2)]);
        assert!(p
            .fraction
            .iter()
            .all(|&(_, f)| (f - 1.0 / 3.0).abs() < 1e-12));
        assert!((p.overall.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let kinds: Vec<PairKind> = p.points.iter().take(3).map(|q| q.kind).collect();
        assert_eq!(
            kinds,
            vec![
                PairKind::InnerVsFamily,
                PairKind::FamilyVsFamily,
                PairKind::InnerVsFamily
            ]
        );
        assert_eq!(p.points.last().unwrap().index, 3);
    }

    fn metric(method: &str, seed: u64, fam: &str, auc: f64) -> MetricRow {
        MetricRow {
            method: method.into(),
            seed,
            held_out: fam.into(),
            precision: 0.5,
            recall: 0.5,
            accuracy: 0.5,
            f1: 0.5,
            ap: 0.5,
            auc,
            fpr95: 0.5,
            tau: 0.5,
            threshold: "val_best_f1".into(),
            fpr: f64::NAN,
        }
    }

    #[test]
    fn method_bars_are_the_table_auc_with_macro_last() {
        assert_eq!(crate::report::table::COLUMNS[AUC_COLUMN], "AUC-ROC");
        let m = vec![
            metric("M", 0, "A", 0.9),
            metric("M", 1, "A", 0.7),
            metric("O", 0, "A", 0.6),
            metric("M", 0, "B", 0.5),
            metric("M", 1, "B", f64::NAN),
        ];
        let b = method_auc_bars(&m);
        assert_eq!(b.families, vec!["A", "B", "macro"]);
        assert_eq!(b.methods, vec!["M", "O"]);
        let a = &b.bars[0];
        assert_eq!(
            (a.family.as_str(), a.method.as_str(), a.stat.n),
            ("A", "M", 2)
        );
        assert!((a.stat.mean - 0.8).abs() < 1e-12 && (a.stat.std - 0.1).abs() < 1e-12);
        assert!(
            b.bars.iter().all(|x| x.stat.mean.is_finite()),
            "NaN means left out"
        );
        assert!(method_auc_bars(&[]).bars.is_empty());
    }

    #[test]
    fn test_roc_matches_eval_and_filters_seeds() {
        let mut d = RunData::default();
        let rows = [(false, 0.1), (false, 0.4), (true, 0.35), (true, 0.8)];
        for seed in [0u64, 1] {
            for (i, &(a, s)) in rows.iter().enumerate() {
                d.scores.push(ScoreRow {
                    unit: UnitKey {
                        method: "M".into(),
                        seed,
                        rotation: "A".into(),
                    },
                    family: "A".into(),
                    row: i as _,
                    anomaly: a,
                    score: if seed == 0 { s } else { 1.0 - s },
                });
            }
        }
        let s0 = test_roc_series(&d, "A", Some(0));
        assert_eq!(s0.len(), 1);
        assert!((s0[0].auc - 0.75).abs() < 1e-12);
        assert_eq!((s0[0].n_normal, s0[0].n_anomaly), (2, 2));
        assert_eq!(s0[0].points.first(), Some(&(0.0, 0.0)));
        assert_eq!(s0[0].points.last(), Some(&(1.0, 1.0)));
        let pooled = test_roc_series(&d, "A", None);
        assert_eq!((pooled[0].n_normal, pooled[0].n_anomaly), (4, 4));
        assert!(test_roc_series(&d, "B", None).is_empty());
    }

    #[test]
    fn nice_keys_and_names() {
        assert_eq!(
            nice_keys(0.0, 1.0, 5, false),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(nice_keys(0.5, 3.5, 10, true), vec![1.0, 2.0, 3.0]);
        assert_eq!(nice_keys(-0.5, 99.5, 10, true).len(), 10);
        assert!(nice_keys(1.0, 1.0, 5, false).is_empty());
        assert!(nice_keys(f64::NAN, 1.0, 5, false).is_empty());
        assert_eq!(file_part("a b/c:d+e.f"), "a_b_c_d+e.f");
        let f = Figure::Curves {
            unit: UnitKey {
                method: "odin_T1000_eps0.0014".into(),
                seed: 3,
                rotation: "Web Attack+DoS".into(),
            },
            family: "DoS".into(),
            curve: Curve::Pr,
            episode: Some(4),
        };
        assert_eq!(
            f.file_stem(),
            "pr_odin_T1000_eps0.0014_seed3_Web_Attack+DoS_DoS_ep4"
        );
    }

    #[test]
    fn every_figure_renders_with_data_and_without() {
        let d = sample();
        let u = unit("m");
        let figs = [
            Figure::Histograms {
                unit: u.clone(),
                episode: None,
                seen: true,
                unit_axis: false,
            },
            Figure::Curves {
                unit: u.clone(),
                family: "A".into(),
                curve: Curve::Roc,
                episode: None,
            },
            Figure::Curves {
                unit: u.clone(),
                family: "A".into(),
                curve: Curve::Pr,
                episode: None,
            },
            Figure::Training { unit: u.clone() },
            Figure::Pcgrad { unit: u.clone() },
            Figure::MethodAuc,
            Figure::TestRoc {
                family: "A".into(),
                seed: None,
            },
        ];
        let empty = RunData::default();
        for f in &figs {
            let svg = render_svg(f, &d).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            let e = render_svg(f, &empty).unwrap();
            assert!(e.contains("no "), "{f:?} without rows says so");
            assert!(!f.has_data(&empty));
        }
        let hist = render_svg(&figs[0], &d).unwrap();
        for t in [
            "pre",
            "after inner",
            "after outer",
            "normal",
            "anomaly",
            "A (held out)",
            "B (seen)",
            "AUC 0.800",
        ] {
            assert!(hist.contains(t), "{t}");
        }
        let (w, h, px) = render_rgb(&figs[3], &d, 1).unwrap();
        assert_eq!((w, h), figs[3].size(&d));
        assert_eq!(px.len(), (w * h * 3) as usize);
        assert!(px.iter().any(|&b| b < 128), "something dark was drawn");
    }

    #[test]
    fn render_refuses_unknown_extensions() {
        let e = render(&Figure::MethodAuc, &RunData::default(), Path::new("x.jpg")).unwrap_err();
        assert!(e.to_string().contains("x.jpg") && e.to_string().contains(".svg or .png"));
    }
}
