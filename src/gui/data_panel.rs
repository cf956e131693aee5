//! The data tab: choose a file or folder (dialog, drag and drop, recent files), pick the label
//! column, load in the background (thread `heldout-load`), then a summary, the cleaning report,
//! a family bar chart and a virtualised preview of the cleaned rows.

use super::{Command, Level, Message};
use crate::data::Table;
use crate::experiment::{DataSpec, Experiment, FileSpec};
use crossbeam_channel::{bounded, Receiver, TryRecvError};
use egui_extras::{Column, TableBuilder};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A file chosen but not loaded yet: the label column and family map are picked first.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingFile {
    pub path: PathBuf,
    pub columns: Vec<String>,
    pub label: String,
    pub family_map: String,
    pub min_family_rows: usize,
}

struct Loading {
    rx: Receiver<Result<Table, String>>,
    started: Instant,
    what: String,
}

/// State of the data tab.
#[derive(Default)]
pub struct DataPanel {
    table: Option<Arc<Table>>,
    source: String,
    loading: Option<Loading>,
    pub error: Option<String>,
    loaded_flag: bool,
    pub pending: Option<PendingFile>,
    report_text: String,
    load_seconds: f64,
}

/// Names that usually hold the class label, best first.
const LABEL_GUESSES: [&str; 10] = [
    "Label",
    "label",
    "attack_cat",
    "Attack",
    "attack",
    "class",
    "Class",
    "family",
    "target",
    "y",
];

impl DataPanel {
    /// The loaded table, if any.
    pub fn table(&self) -> Option<&Table> {
        self.table.as_deref()
    }

    /// The loaded table, shared (for worker threads).
    pub fn table_arc(&self) -> Option<Arc<Table>> {
        self.table.clone()
    }

    pub fn busy(&self) -> bool {
        self.loading.is_some()
    }

    pub fn busy_text(&self) -> String {
        match &self.loading {
            Some(l) => format!(
                "loading {} … {:.1} s",
                l.what,
                l.started.elapsed().as_secs_f64()
            ),
            None => String::new(),
        }
    }

    /// True once after a load finished.
    pub fn take_loaded(&mut self) -> bool {
        std::mem::take(&mut self.loaded_flag)
    }

    /// A file or folder was chosen: read its columns and propose a label column.
    pub fn choose_file(&mut self, path: &Path, exp: &mut Experiment, _base: &Path) {
        match crate::data::columns(path) {
            Ok(columns) => {
                let label = LABEL_GUESSES
                    .iter()
                    .find(|g| columns.iter().any(|c| c == *g))
                    .map(|g| g.to_string())
                    .or_else(|| columns.last().cloned())
                    .unwrap_or_default();
                let folder = if path.is_dir() {
                    path.to_path_buf()
                } else {
                    path.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                let map = folder.join("family_map.csv");
                let family_map = if map.exists() {
                    map.display().to_string()
                } else {
                    String::new()
                };
                self.pending = Some(PendingFile {
                    path: path.to_path_buf(),
                    columns,
                    label,
                    family_map,
                    min_family_rows: 50,
                });
                self.error = None;
                let _ = exp;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Makes the pending file the experiment's data and loads it.
    pub fn confirm_pending(&mut self, exp: &mut Experiment, base: &Path) {
        let Some(p) = self.pending.take() else { return };
        let path = std::path::absolute(&p.path).unwrap_or(p.path.clone());
        exp.data = DataSpec::File(FileSpec {
            path,
            label_column: p.label.clone(),
            family_map: (!p.family_map.trim().is_empty())
                .then(|| PathBuf::from(p.family_map.trim())),
            keep_unmapped: false,
            drop_columns: vec![],
            categorical: Default::default(),
            missing: Default::default(),
            min_family_rows: p.min_family_rows,
            drop_duplicates: false,
            keep_identifiers: false,
        });
        exp.name = p
            .path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap_or("data")
                    .to_string()
            })
            .unwrap_or_else(|| "data".into());
        self.start_load(exp, base);
    }

    /// Loads the experiment's data on a worker thread.
    pub fn start_load(&mut self, exp: &Experiment, base: &Path) {
        let (tx, rx) = bounded(1);
        let what = match &exp.data {
            DataSpec::File(f) => f.path.display().to_string(),
            DataSpec::Demo { kind, .. } => format!("built-in demo ({})", kind.name()),
        };
        let (exp2, base2) = (exp.clone(), base.to_path_buf());
        let spawned = std::thread::Builder::new()
            .name("heldout-load".into())
            .spawn(move || {
                super::background_priority();
                let r =
                    crate::experiment::plan_load_data(&exp2, &base2).map_err(|e| format!("{e:#}"));
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => {
                self.loading = Some(Loading {
                    rx,
                    started: Instant::now(),
                    what,
                });
                self.error = None;
            }
            Err(e) => self.error = Some(format!("could not start the loader thread: {e}")),
        }
    }

    /// Takes a finished load.
    pub fn poll(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let Some(l) = &self.loading else { return out };
        match l.rx.try_recv() {
            Ok(Ok(t)) => {
                self.load_seconds = l.started.elapsed().as_secs_f64();
                self.source = l.what.clone();
                self.report_text = crate::data::inspect_text(&t, &self.source);
                out.push(Message {
                    level: Level::Info,
                    text: format!(
                        "loaded {}: {} rows × {} features, {} families in {:.1} s",
                        self.source,
                        t.n_rows,
                        t.n_features,
                        t.families.len(),
                        self.load_seconds
                    ),
                });
                self.table = Some(Arc::new(t));
                self.loading = None;
                self.loaded_flag = true;
            }
            Ok(Err(e)) => {
                out.push(Message {
                    level: Level::Error,
                    text: e.clone(),
                });
                self.error = Some(e);
                self.loading = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.error = Some("the loader thread ended unexpectedly".into());
                self.loading = None;
            }
        }
        out
    }

    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        exp: &Experiment,
        recent: &[PathBuf],
        cmds: &mut Vec<Command>,
    ) {
        ui.horizontal(|ui| {
            if ui.button("Open file…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("tables", &["csv", "gz", "parquet", "pq"])
                    .pick_file()
                {
                    cmds.push(Command::OpenData(p));
                }
            }
            if ui.button("Open folder…").clicked() {
                if let Some(p) = rfd::FileDialog::new().pick_folder() {
                    cmds.push(Command::OpenData(p));
                }
            }
            if ui.button("Built-in demo").clicked() {
                cmds.push(Command::LoadDemo);
            }
            let recent_data: Vec<&PathBuf> = recent
                .iter()
                .filter(|p| p.extension().is_none_or(|e| e != "ron"))
                .collect();
            if !recent_data.is_empty() {
                egui::ComboBox::new("recent", "recent")
                    .selected_text("Recent files")
                    .show_ui(ui, |ui| {
                        for p in recent_data {
                            if ui
                                .selectable_label(false, p.display().to_string())
                                .clicked()
                            {
                                cmds.push(Command::OpenData(p.clone()));
                            }
                        }
                    });
            }
            ui.weak("…or drop a CSV, .csv.gz, Parquet file or folder on the window");
        });
        ui.separator();
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if self.pending.is_some() {
            self.pending_ui(ui, cmds);
            return;
        }
        if let Some(l) = &self.loading {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!(
                    "loading {} … {:.1} s (cleaning as `heldout inspect` does)",
                    l.what,
                    l.started.elapsed().as_secs_f64()
                ));
            });
        }
        let Some(t) = self.table.clone() else {
            if self.loading.is_none() {
                ui.label("No data loaded.");
            }
            return;
        };
        let _ = exp;
        ui.heading(format!(
            "{} — {} rows × {} features, {} families",
            self.source,
            crate::data::thousands(t.n_rows),
            t.n_features,
            t.families.len()
        ));
        ui.label(format!(
            "label column `{}` · loaded in {:.1} s · {} dropped columns · {} one-hot columns",
            t.label_column,
            self.load_seconds,
            t.report.dropped_columns.len(),
            t.report.one_hot.len()
        ));
        ui.columns(2, |cols| {
            family_chart(&mut cols[0], &t);
            egui::ScrollArea::vertical()
                .id_salt("report")
                .max_height(320.0)
                .show(&mut cols[1], |ui| {
                    ui.strong("Dropped columns");
                    egui::Grid::new("dropped").striped(true).show(ui, |ui| {
                        for d in &t.report.dropped_columns {
                            ui.label(&d.name);
                            ui.label(d.reason.as_str());
                            ui.weak(&d.detail);
                            ui.end_row();
                        }
                    });
                    ui.collapsing("Cleaning report", |ui| {
                        ui.monospace(&self.report_text);
                    });
                });
        });
        ui.separator();
        ui.strong("Preview (cleaned rows; scroll — only visible rows are drawn)");
        preview(ui, &t);
    }

    fn pending_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        ui.heading(format!("Open {}", p.path.display()));
        ui.label(format!("{} columns found.", p.columns.len()));
        let mut confirm = false;
        let mut cancel = false;
        egui::Grid::new("pending").num_columns(2).show(ui, |ui| {
            let lab1 = ui.label("Label (family) column");
            egui::ComboBox::from_id_salt("label_col")
                .selected_text(&p.label)
                .height(400.0)
                .show_ui(ui, |ui| {
                    for c in &p.columns {
                        ui.selectable_value(&mut p.label, c.clone(), c);
                    }
                })
                .response
                .labelled_by(lab1.id);
            ui.end_row();
            let lab2 = ui
                .label("Family map CSV (optional)")
                .on_hover_text("label,family lines that merge raw labels into families");
            ui.text_edit_singleline(&mut p.family_map)
                .labelled_by(lab2.id);
            ui.end_row();
            let lab3 = ui.label("Minimum rows per family").on_hover_text(
                "smaller families are removed before splitting (the protocol uses 50)",
            );
            ui.add(egui::DragValue::new(&mut p.min_family_rows).range(0..=100_000))
                .labelled_by(lab3.id);
            ui.end_row();
        });
        ui.horizontal(|ui| {
            confirm = ui.button("Load").clicked();
            cancel = ui.button("Cancel").clicked();
        });
        if confirm {
            cmds.push(Command::UsePendingData);
        }
        if cancel {
            self.pending = None;
        }
    }
}

/// Horizontal bars: rows per family.
fn family_chart(ui: &mut egui::Ui, t: &Table) {
    use egui_plot::{Bar, BarChart, Plot};
    let counts = t.family_counts();
    let names = t.families.clone();
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar::new(i as f64, c as f64).name(&names[i]).width(0.7))
        .collect();
    let n = names.len();
    Plot::new("families")
        .height(320.0)
        .show_grid([true, false])
        .y_axis_formatter(move |m, _| {
            let i = m.value.round();
            if (m.value - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                names[i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_axis_label("rows")
        .allow_scroll(false)
        .show(ui, |p| {
            p.bar_chart(BarChart::new("rows per family", bars).horizontal());
        });
}

/// A virtualised table of the cleaned rows: family + features.
fn preview(ui: &mut egui::Ui, t: &Table) {
    let d = t.n_features;
    let cols = d.min(200);
    egui::ScrollArea::horizontal()
        .id_salt("preview_h")
        .show(ui, |ui| {
            TableBuilder::new(ui)
                .striped(true)
                .resizable(true)
                .column(Column::exact(70.0))
                .column(Column::initial(110.0))
                .columns(Column::initial(90.0), cols)
                .header(20.0, |mut h| {
                    h.col(|ui| {
                        ui.strong("row");
                    });
                    h.col(|ui| {
                        ui.strong("family");
                    });
                    for name in t.feature_names.iter().take(cols) {
                        h.col(|ui| {
                            ui.strong(name).on_hover_text(name);
                        });
                    }
                })
                .body(|body| {
                    body.rows(18.0, t.n_rows, |mut row| {
                        let i = row.index();
                        row.col(|ui| {
                            ui.label(t.source_row[i].to_string());
                        });
                        row.col(|ui| {
                            ui.label(&t.families[t.family[i] as usize]);
                        });
                        for v in &t.row(i)[..cols] {
                            row.col(|ui| {
                                ui.label(format!("{v:.4}"));
                            });
                        }
                    });
                });
        });
}
