//! The live view: for the shown run (a running job or a folder) and a chosen unit (method ×
//! seed × rotation) — score histograms per family at pre / after-inner / after-outer, ROC and
//! PR curves with the three checkpoints overlaid, loss / margin / temperature per episode, and
//! the PCGrad view. All drawn with egui_plot (zoom, hover values, legend toggles) from the same
//! rows the run folder holds; what is extracted is cached until new rows arrive.

use super::Command;
use crate::detect::Stage;
use crate::report::{Curve, RunData, UnitKey};
use egui::Color32;
use egui_plot::{Bar, BarChart, HLine, Legend, Line, Plot, PlotPoints, Points};
use std::collections::BTreeMap;

pub const STAGES: [Stage; 3] = [Stage::Pre, Stage::Inner, Stage::Outer];

pub fn stage_label(s: Stage) -> &'static str {
    match s {
        Stage::Pre => "pre",
        Stage::Inner => "after inner",
        Stage::Outer => "after outer",
        Stage::Pretrain => "stage 0",
        Stage::Final => "trained",
    }
}

pub fn stage_color(s: Stage) -> Color32 {
    match s {
        Stage::Pre => Color32::from_rgb(150, 150, 150),
        Stage::Inner => Color32::from_rgb(66, 133, 244),
        Stage::Outer => Color32::from_rgb(234, 67, 53),
        Stage::Pretrain => Color32::from_rgb(120, 90, 200),
        // the trained model of a method without episodes: drawn like the meta-learner's
        // after-outer snapshot, its final state
        Stage::Final => Color32::from_rgb(234, 67, 53),
    }
}

pub const NORMAL_COLOR: Color32 = Color32::from_rgb(52, 168, 83);
pub const ANOMALY_COLOR: Color32 = Color32::from_rgb(234, 67, 53);

/// Which sub-view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sub {
    #[default]
    Histograms,
    Curves,
    Training,
    Pcgrad,
}

/// Bins (lo, hi, count).
pub type Bins = Vec<(f64, f64, u64)>;
/// A histogram panel: normal bins, anomaly bins, the checkpoint's AUC.
pub type HistPanel = (Bins, Bins, f64);

/// Rows of one unit at one episode, extracted for drawing.
#[derive(Default, Clone)]
pub struct Extract {
    pub episodes: Vec<usize>,
    pub episode: Option<usize>,
    /// Families with checkpoints: (name, held out).
    pub families: Vec<(String, bool)>,
    /// (family, stage) → (bins lo/hi/count normal, anomaly) and the AUC.
    pub hist: BTreeMap<(String, u8), HistPanel>,
    /// (family, stage, curve) → points.
    pub curves: BTreeMap<(String, u8, u8), Vec<[f64; 2]>>,
    /// per stage: (episode, mean loss)
    pub loss: Vec<(Stage, Vec<[f64; 2]>)>,
    /// Methods trained in epochs: per "phase · term", (epoch, mean over the epoch).
    pub epoch_terms: Vec<(String, Vec<[f64; 2]>)>,
    /// The checkpoint stages to draw: pre / after inner / after outer for the meta-learner,
    /// the trained model (`Final`) for methods without episodes.
    pub stages: Vec<Stage>,
    pub margin_seen: Vec<[f64; 2]>,
    pub margin_held: Vec<[f64; 2]>,
    pub temperature: Vec<[f64; 2]>,
    /// held-out AUC per episode after each stage
    pub auc_held: Vec<(Stage, Vec<[f64; 2]>)>,
    /// (x = outer step counter, cosine) for inner-vs-family and family-vs-family pairs
    pub pc_inner: Vec<[f64; 2]>,
    pub pc_family: Vec<[f64; 2]>,
    /// (pairs, negative, projected) for inner-vs-family and family-vs-family
    pub pc_stats: [(usize, usize, usize); 2],
}

fn stage_idx(s: Stage) -> u8 {
    match s {
        Stage::Pre => 0,
        Stage::Inner => 1,
        Stage::Outer => 2,
        Stage::Pretrain => 3,
        Stage::Final => 4,
    }
}

fn mean(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        f64::NAN
    } else {
        f.iter().sum::<f64>() / f.len() as f64
    }
}

/// Extracts what the views draw for `unit` at `episode` (None = the latest with checkpoints).
pub fn extract(d: &RunData, unit: &UnitKey, episode: Option<usize>) -> Extract {
    let mut x = Extract::default();
    let cks: Vec<_> = d.checkpoints.iter().filter(|c| &c.unit == unit).collect();
    let mut eps: Vec<usize> = cks.iter().map(|c| c.episode).collect();
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
    x.episode = episode
        .filter(|e| eps.contains(e))
        .or(eps.last().copied())
        .map(snap);
    x.episodes = eps;
    let Some(ep) = x.episode else {
        // still compute losses (the first checkpoint may not have arrived)
        fill_training(&mut x, d, unit);
        return x;
    };
    for c in &cks {
        if c.episode == ep && !x.families.iter().any(|(f, _)| f == &c.family) {
            x.families.push((c.family.clone(), c.held_out));
        }
    }
    // held-out families first
    x.families.sort_by_key(|(_, h)| !*h);
    x.stages = if cks
        .iter()
        .any(|c| c.episode == ep && c.stage == Stage::Final)
    {
        vec![Stage::Final]
    } else {
        STAGES.to_vec()
    };
    for c in cks.iter().filter(|c| c.episode == ep) {
        x.hist
            .entry((c.family.clone(), stage_idx(c.stage)))
            .or_insert_with(|| (vec![], vec![], f64::NAN))
            .2 = c.auc;
    }
    for h in d
        .histograms
        .iter()
        .filter(|h| &h.unit == unit && h.episode == ep)
    {
        let e = x
            .hist
            .entry((h.family.clone(), stage_idx(h.stage)))
            .or_insert_with(|| (vec![], vec![], f64::NAN));
        let v = if h.anomaly { &mut e.1 } else { &mut e.0 };
        v.push((h.lo, h.hi, h.count));
    }
    for c in d
        .curves
        .iter()
        .filter(|c| &c.unit == unit && c.episode == ep)
    {
        let k = match c.curve {
            Curve::Roc => 0,
            Curve::Pr => 1,
        };
        x.curves
            .entry((c.family.clone(), stage_idx(c.stage), k))
            .or_default()
            .push([c.x, c.y]);
    }
    fill_training(&mut x, d, unit);
    x
}

fn fill_training(x: &mut Extract, d: &RunData, unit: &UnitKey) {
    for e in d.epochs.iter().filter(|e| &e.unit == unit) {
        let label = format!("{} · {}", e.phase, e.term);
        let at = match x.epoch_terms.iter().position(|(l, _)| *l == label) {
            Some(i) => i,
            None => {
                x.epoch_terms.push((label, Vec::new()));
                x.epoch_terms.len() - 1
            }
        };
        x.epoch_terms[at].1.push([e.epoch as f64, e.value]);
    }
    let mut loss: BTreeMap<(u8, usize), Vec<f64>> = BTreeMap::new();
    for l in d.losses.iter().filter(|l| &l.unit == unit) {
        loss.entry((stage_idx(l.stage), l.episode))
            .or_default()
            .push(l.loss);
    }
    for s in [Stage::Pretrain, Stage::Inner, Stage::Outer] {
        let pts: Vec<[f64; 2]> = loss
            .iter()
            .filter(|((st, _), _)| *st == stage_idx(s))
            .map(|((_, e), v)| [*e as f64, mean(v)])
            .collect();
        if !pts.is_empty() {
            x.loss.push((s, pts));
        }
    }
    let mut seen: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut held: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut temp: BTreeMap<usize, f64> = BTreeMap::new();
    let mut auc: BTreeMap<(u8, usize), Vec<f64>> = BTreeMap::new();
    for c in d.checkpoints.iter().filter(|c| &c.unit == unit) {
        if c.held_out {
            auc.entry((stage_idx(c.stage), c.episode))
                .or_default()
                .push(c.auc);
        }
        if c.stage != Stage::Outer {
            continue;
        }
        temp.insert(c.episode, c.temperature);
        if c.held_out {
            held.entry(c.episode).or_default().push(c.margin);
        } else {
            seen.entry(c.episode).or_default().push(c.margin);
        }
    }
    x.margin_seen = seen.iter().map(|(e, v)| [*e as f64, mean(v)]).collect();
    x.margin_held = held.iter().map(|(e, v)| [*e as f64, mean(v)]).collect();
    x.temperature = temp.iter().map(|(e, t)| [*e as f64, *t]).collect();
    for s in STAGES {
        let pts: Vec<[f64; 2]> = auc
            .iter()
            .filter(|((st, _), _)| *st == stage_idx(s))
            .map(|((_, e), v)| [*e as f64, mean(v)])
            .collect();
        if !pts.is_empty() {
            x.auc_held.push((s, pts));
        }
    }
    let mut steps: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for p in d.pcgrad.iter().filter(|p| &p.unit == unit) {
        let n = steps.len();
        let k = *steps.entry((p.episode, p.step)).or_insert(n);
        let inner = p.task_i == "inner" || p.task_j == "inner";
        let (v, st) = if inner {
            (&mut x.pc_inner, &mut x.pc_stats[0])
        } else {
            (&mut x.pc_family, &mut x.pc_stats[1])
        };
        v.push([k as f64, p.cosine]);
        st.0 += 1;
        st.1 += usize::from(p.cosine < 0.0);
        st.2 += usize::from(p.projected);
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
    cache: Extract,
}

impl LiveView {
    pub fn reset(&mut self) {
        *self = LiveView {
            sub: self.sub,
            show_seen: self.show_seen,
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
        if self.cache.episodes.is_empty() && self.cache.loss.is_empty() {
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
            Sub::Training => training(ui, &x),
            Sub::Pcgrad => pcgrad(ui, &x),
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
                "Episode {} · scores on the fixed per-family pools (higher = more anomalous), normal vs anomaly.",
                x.episode.map(|e| e.to_string()).unwrap_or("–".into())
            ));
            ui.checkbox(&mut self.show_seen, "also seen families");
        });
        egui::ScrollArea::vertical()
            .id_salt("hists")
            .show(ui, |ui| {
                for (fam, held) in &x.families {
                    if !held && !self.show_seen {
                        continue;
                    }
                    ui.strong(format!(
                        "{fam} ({})",
                        if *held { "held out" } else { "seen" }
                    ));
                    ui.columns(x.stages.len().max(1), |cols| {
                        for (i, s) in x.stages.iter().enumerate() {
                            let ui = &mut cols[i];
                            let Some((nb, ab, auc)) = x.hist.get(&(fam.clone(), stage_idx(*s)))
                            else {
                                ui.weak(format!("{}: not yet", stage_label(*s)));
                                continue;
                            };
                            ui.label(format!("{} · AUC {auc:.3}", stage_label(*s)));
                            let bars = |v: &[(f64, f64, u64)]| -> Vec<Bar> {
                                let total: u64 = v.iter().map(|b| b.2).sum::<u64>().max(1);
                                v.iter()
                                    .map(|&(lo, hi, c)| {
                                        Bar::new((lo + hi) / 2.0, c as f64 / total as f64)
                                            .width((hi - lo) * 0.95)
                                    })
                                    .collect()
                            };
                            Plot::new(format!("hist_{fam}_{}", stage_idx(*s)))
                                .height(130.0)
                                .legend(Legend::default())
                                .include_y(0.0)
                                .x_axis_label("score")
                                .allow_scroll(false)
                                .show(ui, |p| {
                                    p.bar_chart(
                                        BarChart::new("normal", bars(nb))
                                            .color(NORMAL_COLOR.gamma_multiply(0.7)),
                                    );
                                    p.bar_chart(
                                        BarChart::new("anomaly", bars(ab))
                                            .color(ANOMALY_COLOR.gamma_multiply(0.7)),
                                    );
                                });
                        }
                    });
                }
            });
    }

    fn curves(&mut self, ui: &mut egui::Ui, x: &Extract) {
        let held: Vec<&String> = x
            .families
            .iter()
            .filter(|(_, h)| *h)
            .map(|(f, _)| f)
            .collect();
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
        let Some(fam) = self.family.clone() else {
            ui.label("No held-out family checkpoint yet.");
            return;
        };
        ui.columns(2, |cols| {
            for (k, (name, xl, yl)) in [
                ("ROC", "false-positive rate", "true-positive rate"),
                ("PR", "recall", "precision"),
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
                    .height(ui.available_height().clamp(250.0, 520.0))
                    .data_aspect(1.0)
                    .legend(Legend::default())
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
                        for &s in &x.stages {
                            if let Some(pts) = x.curves.get(&(fam.clone(), stage_idx(s), k as u8)) {
                                let auc = x
                                    .hist
                                    .get(&(fam.clone(), stage_idx(s)))
                                    .map(|h| h.2)
                                    .unwrap_or(f64::NAN);
                                let label = if k == 0 {
                                    format!("{} (AUC {auc:.3})", stage_label(s))
                                } else {
                                    stage_label(s).to_string()
                                };
                                p.line(
                                    Line::new(label, PlotPoints::from(pts.clone()))
                                        .color(stage_color(s))
                                        .width(2.0),
                                );
                            }
                        }
                    });
            }
        });
    }
}

fn unit_text(u: &UnitKey) -> String {
    format!("{} · seed {} · held out {}", u.method, u.seed, u.rotation)
}

fn training(ui: &mut egui::Ui, x: &Extract) {
    let h = (ui.available_height() / 2.0 - 30.0).clamp(160.0, 320.0);
    if x.loss.is_empty() && !x.epoch_terms.is_empty() {
        // a method trained in epochs: its loss terms, one line each
        ui.strong("Loss terms per epoch (mean over the epoch's steps)");
        Plot::new("epoch_terms")
            .height((ui.available_height() - 30.0).clamp(200.0, 640.0))
            .legend(Legend::default())
            .x_axis_label("epoch")
            .show(ui, |p| {
                for (label, pts) in &x.epoch_terms {
                    p.line(Line::new(label.clone(), PlotPoints::from(pts.clone())).width(2.0));
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
                for (s, pts) in &x.loss {
                    p.line(
                        Line::new(
                            format!("{} stage", s.as_str()),
                            PlotPoints::from(pts.clone()),
                        )
                        .color(stage_color(*s))
                        .width(2.0),
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
                    Line::new("seen families", PlotPoints::from(x.margin_seen.clone())).width(2.0),
                );
                p.line(
                    Line::new("held-out families", PlotPoints::from(x.margin_held.clone()))
                        .width(2.0),
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
                p.line(Line::new("T", PlotPoints::from(x.temperature.clone())).width(2.0));
            });
        cols[1].strong("Held-out AUC per episode at each checkpoint");
        Plot::new("auc_ep")
            .height(h)
            .legend(Legend::default())
            .include_y(0.5)
            .include_y(1.0)
            .x_axis_label("episode")
            .show(&mut cols[1], |p| {
                for (s, pts) in &x.auc_held {
                    p.line(
                        Line::new(stage_label(*s), PlotPoints::from(pts.clone()))
                            .color(stage_color(*s))
                            .width(2.0),
                    );
                }
            });
    });
}

fn pcgrad(ui: &mut egui::Ui, x: &Extract) {
    ui.label("Cosine between task gradients at each outer step, before projection. Below 0 the tasks conflict and PCGrad projects one onto the other's normal plane.");
    egui::Grid::new("pcstats").striped(true).show(ui, |ui| {
        ui.strong("pairs");
        ui.strong("count");
        ui.strong("conflicting (cos < 0)");
        ui.strong("projected");
        ui.end_row();
        for (i, name) in ["inner ↔ family", "family ↔ family"].iter().enumerate() {
            let (n, neg, proj) = x.pc_stats[i];
            ui.label(*name);
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
        .height(ui.available_height().clamp(200.0, 600.0))
        .legend(Legend::default())
        .include_y(-1.0)
        .include_y(1.0)
        .x_axis_label("outer step")
        .y_axis_label("cosine")
        .show(ui, |p| {
            p.points(
                Points::new("inner ↔ family", PlotPoints::from(x.pc_inner.clone()))
                    .radius(2.0)
                    .color(stage_color(Stage::Inner)),
            );
            p.points(
                Points::new("family ↔ family", PlotPoints::from(x.pc_family.clone()))
                    .radius(2.0)
                    .color(stage_color(Stage::Outer)),
            );
            p.hline(HLine::new("no conflict above", 0.0).color(Color32::GRAY));
        });
}
