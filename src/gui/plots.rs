//! The live view: for the shown run (a running job or a folder) and a chosen unit (method ×
//! seed × rotation) — score histograms per family at pre / after-inner / after-outer, ROC and
//! PR curves with the three checkpoints overlaid, loss / margin / temperature per episode, and
//! the PCGrad view. All drawn with egui_plot (zoom, hover values, legend toggles) from the
//! series and in the colours of `report::figures` — the same ones the exported figures draw, so
//! the screen and the file agree; what is computed is cached until new rows arrive.

use super::Command;
use crate::detect::Stage;
use crate::report::figures::{
    class_color, curve_series, histogram_grid, pcgrad_series, stage_color as figure_stage_color,
    stage_label, training_series, CurveSeries, HistGrid, PairKind, PcgradSeries, TrainingSeries,
};
use crate::report::{Curve, RunData, UnitKey};
use egui::Color32;
use egui_plot::{Bar, BarChart, HLine, Legend, Line, Plot, PlotPoints, Points};

/// A figure colour on screen.
pub fn color(c: crate::report::figures::RGBColor) -> Color32 {
    Color32::from_rgb(c.0, c.1, c.2)
}

/// The colour of a checkpoint stage, as in the figure files.
pub fn stage_color(s: Stage) -> Color32 {
    color(figure_stage_color(s))
}

/// Which sub-view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sub {
    #[default]
    Histograms,
    Curves,
    Training,
    Pcgrad,
}

/// The series of one unit at one episode, from `report::figures` (the exporter's own).
#[derive(Default, Clone)]
pub struct Extract {
    /// Episodes with checkpoints.
    pub episodes: Vec<usize>,
    /// The episode shown (snapped to one whose histograms the live view kept).
    pub episode: Option<usize>,
    /// Every family's histograms at the shown episode (held-out rows first).
    pub grid: HistGrid,
    /// Per held-out family: its ROC and PR series.
    pub curves: Vec<(String, Vec<CurveSeries>, Vec<CurveSeries>)>,
    pub training: TrainingSeries,
    pub pcgrad: PcgradSeries,
}

/// The series the views draw for `unit` at `episode` (None = the latest with checkpoints).
pub fn extract(d: &RunData, unit: &UnitKey, episode: Option<usize>) -> Extract {
    let mut eps: Vec<usize> = d
        .checkpoints
        .iter()
        .filter(|c| &c.unit == unit)
        .map(|c| c.episode)
        .collect();
    eps.sort_unstable();
    eps.dedup();
    // the live view keeps histograms for some episodes only (RunData::thin_episodes): a chosen
    // episode snaps to the nearest earlier one that has them
    let mut kept: Vec<usize> = d
        .histograms
        .iter()
        .filter(|h| &h.unit == unit)
        .map(|h| h.episode)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let snap = |e: usize| match kept.binary_search(&e) {
        _ if kept.is_empty() => e,
        Ok(_) => e,
        Err(0) => kept[0],
        Err(i) => kept[i - 1],
    };
    let episode = episode
        .filter(|e| eps.contains(e))
        .or(eps.last().copied())
        .map(snap);
    let grid = match episode {
        Some(e) => histogram_grid(d, unit, Some(e), true),
        None => HistGrid::default(),
    };
    let curves = grid
        .rows
        .iter()
        .filter(|r| r.held_out)
        .map(|r| {
            let roc = curve_series(d, unit, &r.family, Curve::Roc, episode).1;
            let pr = curve_series(d, unit, &r.family, Curve::Pr, episode).1;
            (r.family.clone(), roc, pr)
        })
        .collect();
    Extract {
        episodes: eps,
        episode,
        grid,
        curves,
        training: training_series(d, unit),
        pcgrad: pcgrad_series(d, unit),
    }
}

/// Line width on screen (thicker in presentation mode).
fn width(presenting: bool) -> f32 {
    if presenting {
        3.5
    } else {
        2.0
    }
}

/// State of the live view.
#[derive(Default)]
pub struct LiveView {
    pub sub: Sub,
    pub unit: Option<UnitKey>,
    /// None = follow the latest episode.
    pub episode: Option<usize>,
    pub family: Option<String>,
    pub show_seen: bool,
    pending_select: Option<(String, String)>,
    cache_key: Option<(UnitKey, Option<usize>, usize)>,
    cache_at: Option<std::time::Instant>,
    /// What the last "Save figure" wrote (or why it failed).
    pub saved: Option<String>,
    /// Presentation mode (a projector): the whole window zoomed, thicker lines.
    pub presenting: bool,
    cache: Extract,
}

impl LiveView {
    pub fn reset(&mut self) {
        *self = LiveView {
            sub: self.sub,
            show_seen: self.show_seen,
            presenting: self.presenting,
            ..Default::default()
        };
    }

    /// Selects the unit of `method` in which `family` is held out (first seed).
    pub fn select_family(&mut self, method: &str, family: &str) {
        self.family = Some(family.to_string());
        self.pending_select = Some((method.to_string(), family.to_string()));
        self.sub = Sub::Curves;
    }

    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        shown: Option<(&RunData, String, String)>,
        cmds: &mut Vec<Command>,
    ) {
        let Some((d, title, status)) = shown else {
            ui.heading("No run shown");
            ui.label("Press ▶ Run experiment, or open a past run in 'Runs & compare'.");
            return;
        };
        let units = d.units();
        if let Some((m, f)) = self.pending_select.take() {
            if let Some(u) = units
                .iter()
                .find(|u| u.method == m && u.rotation.split('+').any(|r| r == f))
            {
                self.unit = Some(u.clone());
            }
        }
        if self.unit.as_ref().is_none_or(|u| !units.contains(u)) {
            // the unit of the main method's newest checkpoint (follows a running job); the
            // methods run beside it are chosen by hand
            let main = d.methods().into_iter().next();
            self.unit = d
                .checkpoints
                .iter()
                .rev()
                .find(|c| Some(&c.unit.method) == main.as_ref())
                .or(d.checkpoints.last())
                .map(|c| c.unit.clone())
                .or_else(|| units.last().cloned());
        }
        ui.horizontal_wrapped(|ui| {
            ui.heading(&title);
            ui.label(&status);
        });
        ui.horizontal_wrapped(|ui| {
            let lc = ui.label("unit");
            let text = self
                .unit
                .as_ref()
                .map(unit_text)
                .unwrap_or_else(|| "—".into());
            egui::ComboBox::from_id_salt("unit")
                .selected_text(text)
                .width(360.0)
                .show_ui(ui, |ui| {
                    for u in &units {
                        ui.selectable_value(&mut self.unit, Some(u.clone()), unit_text(u));
                    }
                })
.response
.labelled_by(lc.id);
            let mut follow = self.episode.is_none();
            if ui.checkbox(&mut follow, "latest episode").changed() {
                self.episode = if follow {
                    None
                } else {
                    self.cache.episode
                };
            }
            if let (Some(e), Some(last)) = (self.episode.as_mut(), self.cache.episodes.last()) {
                ui.add(egui::Slider::new(e, 0..=*last).text("episode"));
            }
            ui.separator();
            for (s, l) in [
                (Sub::Histograms, "Histograms"),
                (Sub::Curves, "ROC / PR"),
                (Sub::Training, "Loss · margin · T"),
                (Sub::Pcgrad, "PCGrad"),
            ] {
                if ui.selectable_label(self.sub == s, l).clicked() {
                    self.sub = s;
                }
            }
            ui.separator();
            if ui
                .checkbox(&mut self.presenting, "presentation")
                .on_hover_text("for a projector: everything larger (×1.5), thicker lines")
                .changed()
            {
                ui.ctx()
                    .set_zoom_factor(if self.presenting { 1.5 } else { 1.0 });
            }
            if let Some(unit) = self.unit.clone() {
                if ui
                    .button("Save figure…")
                    .on_hover_text("this view as a publication figure (SVG or PNG by the file name), drawn from the stored rows with plotters")
                    .clicked()
                {
                    self.save_figure(d, &unit);
                }
            }
            if let Some(s) = &self.saved {
                ui.weak(s);
            }
            if ui
                .button("Export run")
                .on_hover_text("write every figure (SVG + PNG), the tables (CSV, Markdown, LaTeX) and the experiment into the run folder's export/")
                .clicked()
            {
                cmds.push(Command::ExportRun);
            }
        });
        let Some(unit) = self.unit.clone() else {
            ui.label("Waiting for the first checkpoint…");
            return;
        };
        let n = d.checkpoints.len() + d.losses.len() + d.pcgrad.len();
        let key = (unit.clone(), self.episode, n);
        // re-extract when the selection changes, or new rows arrived — at most 5 times a
        // second while a run streams rows, so frames stay cheap however long the run
        let selection_changed = self
            .cache_key
            .as_ref()
            .is_none_or(|k| (&k.0, k.1) != (&key.0, key.1));
        let fresh = self
            .cache_at
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(200));
        if selection_changed || (self.cache_key.as_ref() != Some(&key) && !fresh) {
            self.cache = extract(d, &unit, self.episode);
            self.cache_key = Some(key);
            self.cache_at = Some(std::time::Instant::now());
        } else if self.cache_key.as_ref() != Some(&key) {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(200));
        }
        ui.separator();
        if self.cache.episodes.is_empty()
            && self.cache.training.loss.is_empty()
            && self.cache.training.epoch_terms.is_empty()
        {
            ui.label(format!(
                "{} reports no checkpoints (a baseline trains without episodes): its test metrics are in Results.",
                unit.method
            ));
            return;
        }
        // borrowed out of self for the drawing (no copy per frame)
        let x = std::mem::take(&mut self.cache);
        match self.sub {
            Sub::Histograms => self.histograms(ui, &x),
            Sub::Curves => self.curves(ui, &x),
            Sub::Training => training(ui, &x, self.presenting),
            Sub::Pcgrad => pcgrad(ui, &x, self.presenting),
        }
        self.cache = x;
    }

    /// The figure file of the current view.
    pub fn figure(&self, unit: &UnitKey) -> crate::report::figures::Figure {
        use crate::report::figures::Figure;
        match self.sub {
            Sub::Histograms => Figure::Histograms {
                unit: unit.clone(),
                episode: self.episode,
                seen: self.show_seen,
                unit_axis: false,
            },
            Sub::Curves => Figure::Curves {
                unit: unit.clone(),
                family: self.family.clone().unwrap_or_default(),
                curve: Curve::Roc,
                episode: self.episode,
            },
            Sub::Training => Figure::Training { unit: unit.clone() },
            Sub::Pcgrad => Figure::Pcgrad { unit: unit.clone() },
        }
    }

    fn save_figure(&mut self, d: &RunData, unit: &UnitKey) {
        let fig = self.figure(unit);
        let Some(path) = rfd::FileDialog::new()
            .add_filter("SVG", &["svg"])
            .add_filter("PNG", &["png"])
            .set_file_name(format!("{}.svg", fig.file_stem()))
            .save_file()
        else {
            return;
        };
        let mut figs = vec![fig.clone()];
        if let crate::report::figures::Figure::Curves {
            unit,
            family,
            episode,
            ..
        } = &fig
        {
            // the PR curve goes beside the ROC curve
            figs.push(crate::report::figures::Figure::Curves {
                unit: unit.clone(),
                family: family.clone(),
                curve: Curve::Pr,
                episode: *episode,
            });
        }
        let mut written = Vec::new();
        for (i, f) in figs.iter().enumerate() {
            let p = if i == 0 {
                path.clone()
            } else {
                let ext = path
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "svg".into());
                path.with_file_name(format!("{}.{ext}", f.file_stem()))
            };
            match crate::report::figures::render(f, d, &p) {
                Ok(()) => written.push(p.display().to_string()),
                Err(e) => {
                    self.saved = Some(format!("{e:#}"));
                    return;
                }
            }
        }
        self.saved = Some(format!("saved {}", written.join(", ")));
    }

    fn histograms(&mut self, ui: &mut egui::Ui, x: &Extract) {
        ui.horizontal(|ui| {
            ui.label(format!(
                "Episode {} · scores on the fixed per-family pools (higher = more anomalous), normal vs anomaly: shares of each class in the same bins, spanning the scores' range.",
                x.episode.map(|e| e.to_string()).unwrap_or("–".into())
            ));
            ui.checkbox(&mut self.show_seen, "also seen families");
        });
        let columns = x.grid.columns.len().max(1);
        let presenting = self.presenting;
        egui::ScrollArea::vertical()
            .id_salt("hists")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                // every panel as wide as its column and between 0.45 and 0.75 of that high:
                // the rows share the height when few, keep their aspect when the window is
                // resized, and the grid scrolls when many families do not fit
                let shown = x
                    .grid
                    .rows
                    .iter()
                    .filter(|r| r.held_out || self.show_seen)
                    .count()
                    .max(1) as f32;
                let col_w = ui.available_width() / columns as f32;
                let fit = ui.available_height() / shown - 44.0;
                let panel_h = fit.clamp(col_w * 0.45, col_w * 0.75).max(120.0);
                for row in &x.grid.rows {
                    if !row.held_out && !self.show_seen {
                        continue;
                    }
                    ui.strong(format!(
                        "{} ({})",
                        row.family,
                        if row.held_out { "held out" } else { "seen" }
                    ));
                    ui.columns(columns, |cols| {
                        for (i, s) in x.grid.columns.iter().enumerate() {
                            let ui = &mut cols[i];
                            let Some(Some(p)) = row.panels.get(i) else {
                                ui.weak(format!("{}: not yet", stage_label(*s)));
                                continue;
                            };
                            ui.label(format!(
                                "{} · AUC {}",
                                stage_label(*s),
                                p.auc.map_or("–".into(), |a| format!("{a:.3}"))
                            ));
                            let bars = |anomaly: bool| -> Vec<Bar> {
                                p.shares(anomaly)
                                    .iter()
                                    .zip(p.edges.windows(2))
                                    .map(|(&v, e)| {
                                        Bar::new((e[0] + e[1]) / 2.0, v).width((e[1] - e[0]) * 0.95)
                                    })
                                    .collect()
                            };
                            Plot::new(format!("hist_{}_{i}", row.family))
                                .height(panel_h)
                                .legend(Legend::default().position(egui_plot::Corner::RightTop))
                                .include_y(0.0)
                                .x_axis_label("score")
                                .y_axis_label(if i == 0 { "share" } else { "" })
                                .allow_scroll(false)
                                .show(ui, |pl| {
                                    for anomaly in [false, true] {
                                        let name = if anomaly { "anomaly" } else { "normal" };
                                        pl.bar_chart(BarChart::new(name, bars(anomaly)).color(
                                            color(class_color(anomaly)).gamma_multiply(
                                                if presenting { 0.85 } else { 0.6 },
                                            ),
                                        ));
                                    }
                                });
                        }
                    });
                }
            });
    }

    fn curves(&mut self, ui: &mut egui::Ui, x: &Extract) {
        let held: Vec<&String> = x.curves.iter().map(|(f, _, _)| f).collect();
        if self.family.as_ref().is_none_or(|f| !held.contains(&f)) {
            self.family = held.first().map(|f| f.to_string());
        }
        ui.horizontal(|ui| {
            ui.label("held-out family");
            for f in &held {
                if ui
                    .selectable_label(self.family.as_deref() == Some(f.as_str()), f.as_str())
                    .clicked()
                {
                    self.family = Some(f.to_string());
                }
            }
        });
        let Some((fam, roc, pr)) = x
            .curves
            .iter()
            .find(|(f, _, _)| Some(f) == self.family.as_ref())
        else {
            ui.label("No held-out family checkpoint yet.");
            return;
        };
        let w = width(self.presenting);
        // square plots as large as the space allows (side by side)
        let side = (ui.available_width() / 2.0 - 16.0)
            .min(ui.available_height() - 40.0)
            .max(220.0);
        ui.columns(2, |cols| {
            for (k, (name, xl, yl, series)) in [
                ("ROC", "false-positive rate", "true-positive rate", roc),
                ("PR", "recall", "precision", pr),
            ]
            .into_iter()
            .enumerate()
            {
                let ui = &mut cols[k];
                ui.strong(format!(
                    "{name} · {fam} · episode {}",
                    x.episode.unwrap_or(0)
                ));
                Plot::new(format!("curve_{k}"))
                    .height(side)
                    .data_aspect(1.0)
                    .legend(Legend::default().position(egui_plot::Corner::RightBottom))
                    .include_x(0.0)
                    .include_x(1.0)
                    .include_y(0.0)
                    .include_y(1.0)
                    .x_axis_label(xl)
                    .y_axis_label(yl)
                    .show(ui, |p| {
                        if k == 0 {
                            p.line(
                                Line::new("chance", PlotPoints::from(vec![[0.0, 0.0], [1.0, 1.0]]))
                                    .color(Color32::GRAY)
                                    .style(egui_plot::LineStyle::dashed_dense()),
                            );
                        }
                        for c in series {
                            let what = if k == 0 { "AUC" } else { "AP" };
                            let label = match c.summary {
                                Some(v) => format!("{} ({what} {v:.3})", stage_label(c.stage)),
                                None => stage_label(c.stage).to_string(),
                            };
                            let pts: Vec<[f64; 2]> =
                                c.points.iter().map(|&(a, b)| [a, b]).collect();
                            p.line(
                                Line::new(label, PlotPoints::from(pts))
                                    .color(stage_color(c.stage))
                                    .width(w),
                            );
                        }
                    });
            }
        });
    }
}

fn unit_text(u: &UnitKey) -> String {
    format!("{} · seed {} · held out {}", u.method, u.seed, u.rotation)
}

fn points(v: &[(usize, f64)]) -> PlotPoints<'static> {
    PlotPoints::from(v.iter().map(|&(e, y)| [e as f64, y]).collect::<Vec<_>>())
}

fn training(ui: &mut egui::Ui, x: &Extract, presenting: bool) {
    let t = &x.training;
    let w = width(presenting);
    let h = (ui.available_height() / 2.0 - 30.0).max(160.0);
    if t.loss.is_empty() && !t.epoch_terms.is_empty() {
        // a method trained in epochs: each loss term (phase · term) in a small plot of its
        // own, so terms of very different scales (cross-entropy, reconstruction, a CORAL or
        // mutual-information term, a sweep's validation AUC) each stay readable
        ui.strong("Loss terms per epoch (mean over the epoch's steps), one plot per term");
        let n = t.epoch_terms.len();
        let cols = if n <= 2 {
            n
        } else if n <= 6 {
            2
        } else {
            3
        };
        let rows = n.div_ceil(cols.max(1));
        let h = ((ui.available_height() - 30.0) / rows as f32 - 24.0).max(110.0);
        let cw = (ui.available_width() / cols.max(1) as f32 - 12.0).max(160.0);
        egui::Grid::new("epoch_terms_grid")
            .num_columns(cols)
            .show(ui, |ui| {
                for (i, (label, pts)) in t.epoch_terms.iter().enumerate() {
                    ui.vertical(|ui| {
                        ui.label(label.as_str());
                        Plot::new(("epoch_term", i))
                            .height(h)
                            .width(cw)
                            .x_axis_label("epoch")
                            .show(ui, |p| {
                                p.line(Line::new(label.clone(), points(pts)).width(w));
                            });
                    });
                    if (i + 1) % cols == 0 {
                        ui.end_row();
                    }
                }
            });
        return;
    }
    ui.columns(2, |cols| {
        cols[0].strong("Mean loss per episode");
        Plot::new("loss")
            .height(h)
            .legend(Legend::default())
            .x_axis_label("episode")
            .show(&mut cols[0], |p| {
                for (s, pts) in &t.loss {
                    p.line(
                        Line::new(format!("{} stage", s.as_str()), points(pts))
                            .color(stage_color(*s))
                            .width(w),
                    );
                }
            });
        cols[1].strong("Calibrated-logit margin after outer (normals − anomalies)");
        Plot::new("margin")
            .height(h)
            .legend(Legend::default())
            .x_axis_label("episode")
            .show(&mut cols[1], |p| {
                p.line(
                    Line::new("seen families", points(&t.margin_seen))
                        .color(color(class_color(false)))
                        .width(w),
                );
                p.line(
                    Line::new("held-out families", points(&t.margin_held_out))
                        .color(color(class_color(true)))
                        .width(w),
                );
                p.hline(HLine::new("0", 0.0).color(Color32::GRAY));
            });
    });
    ui.columns(2, |cols| {
        cols[0].strong("Temperature T = exp(ρ)");
        Plot::new("temperature")
            .height(h)
            .legend(Legend::default())
            .x_axis_label("episode")
            .show(&mut cols[0], |p| {
                p.line(Line::new("T", points(&t.temperature)).width(w));
            });
        cols[1].strong("Held-out AUC per episode at each checkpoint");
        Plot::new("auc_ep")
            .height(h)
            .legend(Legend::default())
            .include_y(0.5)
            .include_y(1.0)
            .x_axis_label("episode")
            .show(&mut cols[1], |p| {
                for (s, pts) in &t.held_out_auc {
                    p.line(
                        Line::new(stage_label(*s), points(pts))
                            .color(stage_color(*s))
                            .width(w),
                    );
                }
            });
    });
}

fn pcgrad(ui: &mut egui::Ui, x: &Extract, presenting: bool) {
    let pc = &x.pcgrad;
    ui.label("Cosine between task gradients at each outer step, before projection. Below 0 the tasks conflict and PCGrad projects one onto the other's normal plane.");
    let kinds = [PairKind::InnerVsFamily, PairKind::FamilyVsFamily];
    egui::Grid::new("pcstats").striped(true).show(ui, |ui| {
        ui.strong("pairs");
        ui.strong("count");
        ui.strong("conflicting (cos < 0)");
        ui.strong("projected");
        ui.end_row();
        for k in kinds {
            let of: Vec<_> = pc.points.iter().filter(|p| p.kind == k).collect();
            let n = of.len();
            let neg = of.iter().filter(|p| p.cosine < 0.0).count();
            let proj = of.iter().filter(|p| p.projected).count();
            ui.label(k.label());
            ui.label(n.to_string());
            ui.label(format!(
                "{neg} ({:.0} %)",
                100.0 * neg as f64 / n.max(1) as f64
            ));
            ui.label(format!(
                "{proj} ({:.0} %)",
                100.0 * proj as f64 / n.max(1) as f64
            ));
            ui.end_row();
        }
    });
    Plot::new("pcgrad")
        .height((ui.available_height() - 10.0).max(200.0))
        .legend(Legend::default())
        .include_y(-1.0)
        .include_y(1.0)
        .x_axis_label("outer step")
        .y_axis_label("cosine")
        .show(ui, |p| {
            for k in kinds {
                let pts: Vec<[f64; 2]> = pc
                    .points
                    .iter()
                    .filter(|q| q.kind == k)
                    .map(|q| [q.index as f64, q.cosine])
                    .collect();
                p.points(
                    Points::new(k.label(), PlotPoints::from(pts))
                        .radius(if presenting { 3.5 } else { 2.0 })
                        .color(color(k.color())),
                );
            }
            p.hline(HLine::new("no conflict above", 0.0).color(Color32::GRAY));
        });
}
