//! The results tab: the per-family table of the shown run (precision, recall, accuracy, F1, AP,
//! AUC-ROC, FPR@95; mean ± std over seeds; best per column marked), as the paper's Table 1, for
//! every method in the run. Clicking a cell shows that family's curves.

use super::Command;
use crate::report::{FamilyTable, RunData};

/// State of the results tab.
#[derive(Default)]
pub struct ResultsPanel {
    pub last_saved: Option<String>,
    /// The threshold-transfer view's (method, held-out family, seed).
    pub transfer: Option<(String, String, u64)>,
    /// Show (and copy / save) the table in the core paper's Table 1 layout: one row per method,
    /// P / R / AUC / F1 per held-out family.
    pub paper_layout: bool,
}

impl ResultsPanel {
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        shown: Option<(&RunData, String)>,
        cmds: &mut Vec<Command>,
    ) {
        let Some((d, title)) = shown else {
            ui.heading("No run shown");
            ui.label("Run the experiment or open a past run.");
            return;
        };
        let t = FamilyTable::from_metrics(&d.metrics);
        ui.horizontal_wrapped(|ui| {
            ui.heading(format!("Results · {title}"));
        });
        if t.rows.is_empty() {
            ui.label("No unit has finished its test yet.");
            return;
        }
        ui.label("Test metrics at τ* per held-out family, mean ± std over seeds; the best mean per column and family is marked ★. Click a cell to see that family's curves.");
        let per_block = crate::report::table::PAPER_FAMILIES_PER_BLOCK;
        let paper = self.paper_layout;
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.paper_layout, false, "Per family")
                .on_hover_text("one block of rows per held-out family, every metric");
            ui.selectable_value(&mut self.paper_layout, true, "Paper layout (Table 1)")
                .on_hover_text("the core paper's Table 1: one row per method, P / R / AUC / F1 per held-out family");
            ui.separator();
            if ui.button("Copy Markdown").clicked() {
                ui.ctx().copy_text(if paper {
                    t.paper_markdown(per_block)
                } else {
                    t.to_markdown()
                });
            }
            for (label, ext) in [
                ("Save CSV…", "csv"),
                ("Save Markdown…", "md"),
                ("Save LaTeX…", "tex"),
            ] {
                if ui.button(label).clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .set_file_name(if paper && ext != "csv" {
                            format!("table1.{ext}")
                        } else {
                            format!("results.{ext}")
                        })
                        .save_file()
                    {
                        let text = match (ext, paper) {
                            ("csv", _) => t.to_csv(),
                            ("md", false) => t.to_markdown(),
                            ("md", true) => t.paper_markdown(per_block),
                            (_, false) => t.to_latex(),
                            (_, true) => t.paper_latex(per_block),
                        };
                        self.last_saved = Some(match crate::atomic::write_atomic(&p, &text) {
                            Ok(()) => format!("saved {}", p.display()),
                            Err(e) => format!("{e:#}"),
                        });
                    }
                }
            }
            if ui.button("Export run").clicked() {
                cmds.push(Command::ExportRun);
            }
            if let Some(s) = &self.last_saved {
                ui.weak(s);
            }
        });
        ui.separator();
        egui::ScrollArea::both().id_salt("results").show(ui, |ui| {
            if paper {
                paper_grid(ui, &t, cmds);
            } else {
            egui::Grid::new("results_grid")
                .striped(true)
                .min_col_width(60.0)
                .show(ui, |ui| {
                    ui.strong("held-out family");
                    ui.strong("method");
                    for c in crate::report::table::COLUMNS {
                        ui.strong(c);
                    }
                    ui.end_row();
                    let mut blocks: Vec<&str> = t.families.iter().map(String::as_str).collect();
                    blocks.push("macro");
                    for f in blocks {
                        let rows = t.family_rows(f);
                        let best = FamilyTable::best_in(&rows);
                        for (r, b) in rows.iter().zip(&best) {
                            if f == "macro" {
                                ui.strong("macro");
                            } else {
                                ui.label(&r.family);
                            }
                            ui.label(&r.method);
                            for (c, cell) in r.cells.iter().enumerate() {
                                let text = cell.map(|s| s.text()).unwrap_or_else(|| "–".into());
                                let text = if b[c] { format!("★ {text}") } else { text };
                                let rich = if b[c] {
                                    egui::RichText::new(text).strong()
                                } else {
                                    egui::RichText::new(text)
                                };
                                let resp = ui
                                    .add(egui::Button::new(rich).frame(false))
                                    .on_hover_text(format!(
                                        "{} · {} · seeds {:?}",
                                        r.method, r.family, r.seeds
                                    ));
                                if resp.clicked() && f != "macro" {
                                    cmds.push(Command::ShowFamily {
                                        method: r.method.clone(),
                                        family: r.family.clone(),
                                    });
                                }
                            }
                            ui.end_row();
                        }
                    }
                });
            }
            let tests = FamilyTable::paired_tests(&d.metrics);
            if let (Some(main), false) = (t.methods.first(), tests.is_empty()) {
                ui.separator();
                ui.strong(format!("{main} against each other method"))
                    .on_hover_text("Wilcoxon signed-rank test (two-sided) on AUC-ROC over the (held-out family, seed) pairs both methods have");
                egui::Grid::new("paired_grid").striped(true).show(ui, |ui| {
                    for h in ["other method", "pairs", "Δ AUC-ROC", "higher / lower", "p-value"] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for x in tests {
                        ui.label(&x.other);
                        ui.label(x.pairs.to_string());
                        ui.label(crate::report::table::signed3(x.mean_diff));
                        ui.label(format!("{} / {}", x.wins, x.losses));
                        ui.label(x.p_value.map(crate::report::table::fmt_p).unwrap_or_else(|| "–".into()));
                        ui.end_row();
                    }
                });
            }
            self.transfer_ui(ui, d);
        });
    }

    /// "Threshold transfer": per held-out family, the test scores with every threshold policy's
    /// τ drawn on them and the recall / false-positive rate each realises, and the macro table
    /// of the policies side by side (the figure `heldout export` writes as `transfer_*`).
    fn transfer_ui(&mut self, ui: &mut egui::Ui, d: &RunData) {
        use crate::report::figures::{
            policy_color, transfer_choices, transfer_line_label, transfer_series,
        };
        use egui_plot::{Bar, BarChart, Legend, Plot, VLine};
        let choices = transfer_choices(d);
        if choices.is_empty() {
            return;
        }
        ui.separator();
        ui.strong("Threshold transfer")
            .on_hover_text("How each threshold policy, chosen without any held-out row, does on a family the detector never saw: τ* (best F1 on the seen families' validation pool) and the normals-only thresholds at a target false-positive rate");
        if self.transfer.as_ref().is_none_or(|k| !choices.contains(k)) {
            self.transfer = choices.first().cloned();
        }
        let Some((method, family, seed)) = self.transfer.clone() else {
            return;
        };
        let uniq = |f: &dyn Fn(&(String, String, u64)) -> String| {
            let mut v: Vec<String> = Vec::new();
            for c in &choices {
                let x = f(c);
                if !v.contains(&x) {
                    v.push(x);
                }
            }
            v
        };
        let methods = uniq(&|c| c.0.clone());
        let families = uniq(&|c| c.1.clone());
        let seeds = uniq(&|c| c.2.to_string());
        let mut pick = (method.clone(), family.clone(), seed);
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::from_label("method")
                .selected_text(&pick.0)
                .show_ui(ui, |ui| {
                    for m in &methods {
                        ui.selectable_value(&mut pick.0, m.clone(), m);
                    }
                });
            egui::ComboBox::from_label("held-out family")
                .selected_text(&pick.1)
                .show_ui(ui, |ui| {
                    for f in &families {
                        ui.selectable_value(&mut pick.1, f.clone(), f);
                    }
                });
            egui::ComboBox::from_label("seed")
                .selected_text(pick.2.to_string())
                .show_ui(ui, |ui| {
                    for s in &seeds {
                        if let Ok(v) = s.parse::<u64>() {
                            ui.selectable_value(&mut pick.2, v, s);
                        }
                    }
                });
        });
        if choices.contains(&pick) {
            self.transfer = Some(pick.clone());
        }
        let (method, family, seed) = self.transfer.clone().unwrap_or(pick);
        match transfer_series(d, &method, &family, seed) {
            None => {
                ui.weak("No test scores with both classes for this method, family and seed.");
            }
            Some(t) => {
                let bars = |shares: &[f64]| -> Vec<Bar> {
                    shares
                        .iter()
                        .zip(t.edges.windows(2))
                        .map(|(&v, e)| Bar::new((e[0] + e[1]) / 2.0, v).width((e[1] - e[0]) * 0.95))
                        .collect()
                };
                let ymax = t
                    .normals
                    .iter()
                    .chain(&t.anomalies)
                    .copied()
                    .fold(0.0f64, f64::max);
                Plot::new("transfer_plot")
                    .height(260.0)
                    .legend(Legend::default().position(egui_plot::Corner::RightTop))
                    .include_y(0.0)
                    .include_y(ymax * 1.1)
                    .x_axis_label(if t.clipped {
                        "score (1st–99th percentile; the rest in the end bins)"
                    } else {
                        "score"
                    })
                    .y_axis_label("share of class")
                    .allow_scroll(false)
                    .show(ui, |pl| {
                        for (anomaly, shares) in [(false, &t.normals), (true, &t.anomalies)] {
                            let name = if anomaly {
                                format!("{} ({})", t.family, t.n_anomaly)
                            } else {
                                format!("normal ({})", t.n_normal)
                            };
                            pl.bar_chart(
                                BarChart::new(name, bars(shares)).color(
                                    super::plots::color(crate::report::figures::class_color(
                                        anomaly,
                                    ))
                                    .gamma_multiply(0.6),
                                ),
                            );
                        }
                        for (i, l) in t.lines.iter().enumerate() {
                            if l.tau.is_finite() {
                                pl.vline(
                                    VLine::new(transfer_line_label(l), l.tau)
                                        .color(super::plots::color(policy_color(i)))
                                        .width(2.0),
                                );
                            }
                        }
                    });
            }
        }
        // the policies side by side: this family and the macro average
        let rows: Vec<crate::report::table::TransferRow> =
            crate::report::table::transfer_rows(&d.metrics)
                .into_iter()
                .filter(|r| r.method == method && (r.family == family || r.family == "macro"))
                .collect();
        let cell = |s: &Option<crate::report::table::Stat>| {
            s.map(|s| s.text()).unwrap_or_else(|| "–".into())
        };
        egui::Grid::new("transfer_grid")
            .striped(true)
            .show(ui, |ui| {
                for h in [
                    "family",
                    "threshold",
                    "target FPR",
                    "precision",
                    "recall",
                    "F1",
                    "test FPR",
                ] {
                    ui.strong(h);
                }
                ui.end_row();
                for r in rows {
                    ui.label(&r.family);
                    ui.label(&r.policy);
                    ui.label(
                        r.target
                            .map(|t| format!("{t}"))
                            .unwrap_or_else(|| "–".into()),
                    );
                    ui.label(cell(&r.precision));
                    ui.label(cell(&r.recall));
                    ui.label(cell(&r.f1));
                    ui.label(cell(&r.fpr));
                    ui.end_row();
                }
            });
    }
}

/// The table in the core paper's Table 1 layout: one row per method; per held-out family (and the
/// macro average) P, R, AUC and F1, best mean per (family, column) marked ★; a cell opens that
/// family's curves.
fn paper_grid(ui: &mut egui::Ui, t: &FamilyTable, cmds: &mut Vec<Command>) {
    let fams: usize = t.families.len() + 1;
    for b in t.paper_blocks(fams) {
        egui::Grid::new("paper_grid")
            .striped(true)
            .min_col_width(48.0)
            .show(ui, |ui| {
                ui.strong("held-out family");
                for f in &b.families {
                    ui.strong(*f);
                    for _ in 1..crate::report::table::PAPER_COLUMNS.len() {
                        ui.label("");
                    }
                }
                ui.end_row();
                ui.strong("method");
                for _ in &b.families {
                    for (_, c) in crate::report::table::PAPER_COLUMNS {
                        ui.strong(c);
                    }
                }
                ui.end_row();
                for (m, cells) in &b.rows {
                    ui.label(*m);
                    for (f, cells) in b.families.iter().zip(cells) {
                        match cells {
                            None => {
                                for _ in crate::report::table::PAPER_COLUMNS {
                                    ui.weak("–");
                                }
                            }
                            Some(cells) => {
                                for (cell, best) in cells {
                                    let text = cell.map(|s| s.text()).unwrap_or_else(|| "–".into());
                                    let rich = if *best {
                                        egui::RichText::new(format!("★ {text}")).strong()
                                    } else {
                                        egui::RichText::new(text)
                                    };
                                    let resp = ui
                                        .add(egui::Button::new(rich).frame(false))
                                        .on_hover_text(format!("{m} · {f}"));
                                    if resp.clicked() && *f != "macro" {
                                        cmds.push(Command::ShowFamily {
                                            method: m.to_string(),
                                            family: f.to_string(),
                                        });
                                    }
                                }
                            }
                        }
                    }
                    ui.end_row();
                }
            });
    }
}
