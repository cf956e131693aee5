//! The results tab: the per-family table of the shown run (precision, recall, accuracy, F1, AP,
//! AUC-ROC, FPR@95; mean ± std over seeds; best per column marked), as the paper's Table 1, for
//! every method in the run. Clicking a cell shows that family's curves.

use super::Command;
use crate::report::{FamilyTable, RunData};

/// State of the results tab.
#[derive(Default)]
pub struct ResultsPanel {
    pub last_saved: Option<String>,
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
        ui.horizontal(|ui| {
            if ui.button("Copy Markdown").clicked() {
                ui.ctx().copy_text(t.to_markdown());
            }
            for (label, ext) in [
                ("Save CSV…", "csv"),
                ("Save Markdown…", "md"),
                ("Save LaTeX…", "tex"),
            ] {
                if ui.button(label).clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .set_file_name(format!("results.{ext}"))
                        .save_file()
                    {
                        let text = match ext {
                            "csv" => t.to_csv(),
                            "md" => t.to_markdown(),
                            _ => t.to_latex(),
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
        });
    }
}
