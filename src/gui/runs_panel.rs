//! Runs & compare: this session's jobs (queued, running, ended), the run folders under the
//! experiment's output folder (reopen any without retraining: reading runs on a worker thread),
//! a side-by-side comparison of two or more opened runs, and exporting a run's figures and
//! tables (worker thread `heldout-export`).

use super::jobs::{JobState, Jobs};
use super::{Command, Level, Message};
use crate::report::{list_runs, FamilyTable, RunEntry, RunFolder, RunStatus};
use crossbeam_channel::{bounded, Receiver, TryRecvError};
use std::path::{Path, PathBuf};

/// Episodes per unit whose histograms, curves and PCGrad cosines an opened run keeps in memory
/// (plus the latest; see [`crate::report::RunData::thin_episodes`]).
pub const OPENED_EPISODES: usize = 100;
/// Test-score rows an opened run keeps for the threshold-transfer view (~150 bytes each):
/// beyond, only the lowest seed's, at most this many.
pub const OPENED_SCORES: usize = 1_000_000;

enum Work {
    Open(PathBuf, Receiver<Result<RunFolder, String>>),
    Export(PathBuf, Receiver<Result<usize, String>>),
}

/// State of the runs tab.
#[derive(Default)]
pub struct RunsPanel {
    pub root: PathBuf,
    pub entries: Vec<RunEntry>,
    /// Runs read from disk, newest last.
    pub opened: Vec<RunFolder>,
    /// Opened runs ticked for comparison.
    pub compare: Vec<PathBuf>,
    work: Vec<Work>,
    just_opened: Option<PathBuf>,
    pub log: Vec<Message>,
}

impl RunsPanel {
    pub fn refresh(&mut self, root: &Path) {
        self.root = root.to_path_buf();
        self.entries = list_runs(root);
    }

    pub fn busy(&self) -> bool {
        !self.work.is_empty()
    }

    pub fn opened(&self, dir: &Path) -> Option<&RunFolder> {
        self.opened.iter().find(|f| f.dir == dir)
    }

    /// The run opened since the last call, to show it.
    pub fn take_opened(&mut self) -> Option<PathBuf> {
        self.just_opened.take()
    }

    /// Reads a run folder in the background (re-reads it if already open).
    pub fn open(&mut self, dir: &Path) {
        let (tx, rx) = bounded(1);
        let d = dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("heldout-open".into())
            .spawn(move || {
                // what the views draw, bounded: the test scores (the threshold-transfer view)
                // up to OPENED_SCORES rows — beyond, those of the lowest seed only — and the
                // per-episode rows of at most OPENED_EPISODES episodes per unit (the folder and
                // its export keep every row)
                let r = RunFolder::load(&d).map(|mut f| {
                    if f.data.scores.len() > OPENED_SCORES {
                        if let Some(low) = f.data.scores.iter().map(|s| s.unit.seed).min() {
                            f.data.scores.retain(|s| s.unit.seed == low);
                        }
                        f.data.scores.truncate(OPENED_SCORES);
                        f.data.scores.shrink_to_fit();
                    }
                    f.data.thin_episodes(OPENED_EPISODES);
                    f
                });
                let _ = tx.send(r.map_err(|e| format!("{e:#}")));
            });
        match spawned {
            Ok(_) => self.work.push(Work::Open(dir.to_path_buf(), rx)),
            Err(e) => self.log.push(Message {
                level: Level::Error,
                text: format!("could not start a thread: {e}"),
            }),
        }
    }

    /// Exports a run's figures and tables into `<run>/export` in the background.
    pub fn export(&mut self, dir: &Path) {
        let (tx, rx) = bounded(1);
        let d = dir.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("heldout-export".into())
            .spawn(move || {
                let r = RunFolder::load(&d)
                    .and_then(|f| {
                        crate::report::export::export_run(
                            &f,
                            &d.join("export"),
                            &crate::report::export::ALL_FORMATS,
                        )
                    })
                    .map(|files| files.len())
                    .map_err(|e| format!("{e:#}"));
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => {
                self.log.push(Message {
                    level: Level::Info,
                    text: format!("exporting {} …", dir.display()),
                });
                self.work.push(Work::Export(dir.to_path_buf(), rx));
            }
            Err(e) => self.log.push(Message {
                level: Level::Error,
                text: format!("could not start a thread: {e}"),
            }),
        }
    }

    /// Collects finished background work; returns messages for the status bar.
    pub fn poll(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for w in std::mem::take(&mut self.work) {
            match w {
                Work::Open(dir, rx) => match rx.try_recv() {
                    Ok(Ok(f)) => {
                        self.opened.retain(|o| o.dir != f.dir);
                        out.push(Message {
                            level: Level::Info,
                            text: format!("opened run {} ({})", f.name(), f.status),
                        });
                        self.opened.push(f);
                        self.just_opened = Some(dir);
                    }
                    Ok(Err(e)) => out.push(Message {
                        level: Level::Error,
                        text: e,
                    }),
                    Err(TryRecvError::Empty) => keep.push(Work::Open(dir, rx)),
                    Err(TryRecvError::Disconnected) => out.push(Message {
                        level: Level::Error,
                        text: format!("reading {} ended unexpectedly", dir.display()),
                    }),
                },
                Work::Export(dir, rx) => match rx.try_recv() {
                    Ok(Ok(n)) => out.push(Message {
                        level: Level::Info,
                        text: format!("exported {n} files into {}", dir.join("export").display()),
                    }),
                    Ok(Err(e)) => out.push(Message {
                        level: Level::Error,
                        text: format!("export failed: {e}"),
                    }),
                    Err(TryRecvError::Empty) => keep.push(Work::Export(dir, rx)),
                    Err(TryRecvError::Disconnected) => out.push(Message {
                        level: Level::Error,
                        text: format!("exporting {} ended unexpectedly", dir.display()),
                    }),
                },
            }
        }
        self.work = keep;
        self.log.extend(out.iter().cloned());
        out
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, jobs: &Jobs, cmds: &mut Vec<Command>) {
        ui.columns(2, |cols| {
            let ui = &mut cols[0];
            ui.heading("This session");
            if jobs.list.is_empty() {
                ui.weak("No runs started yet.");
            }
            egui::Grid::new("jobs").striped(true).show(ui, |ui| {
                for j in jobs.list.iter().rev() {
                    ui.label(format!("#{} {}", j.id, j.exp.name));
                    ui.label(j.status_text());
                    ui.horizontal(|ui| {
                        if matches!(j.state, JobState::Queued | JobState::Running)
                            && ui.small_button("stop").clicked()
                        {
                            cmds.push(Command::StopRun(j.id));
                        }
                        if j.state != JobState::Queued && ui.small_button("show").clicked() {
                            cmds.push(Command::ShowJob(j.id));
                        }
                        if !matches!(j.state, JobState::Queued | JobState::Running)
                            && ui.small_button("open folder").clicked()
                        {
                            cmds.push(Command::OpenRun(j.dir.clone()));
                        }
                    });
                    ui.end_row();
                }
            });
            ui.separator();
            ui.horizontal(|ui| {
                ui.heading("Run folders");
                if ui.small_button("refresh").clicked() {
                    cmds.push(Command::RefreshRuns);
                }
            });
            ui.weak(format!("under {}", self.root.display()));
            egui::ScrollArea::vertical()
                .id_salt("run_list")
                .max_height(300.0)
                .show(ui, |ui| {
                    egui::Grid::new("runs").striped(true).show(ui, |ui| {
                        for e in &self.entries {
                            ui.label(&e.name);
                            let status = e.status.to_string();
                            if matches!(e.status, RunStatus::Interrupted { .. }) {
                                ui.colored_label(ui.visuals().warn_fg_color, status);
                            } else {
                                ui.weak(status);
                            }
                            ui.horizontal(|ui| {
                                if ui.small_button("open").clicked() {
                                    cmds.push(Command::OpenRun(e.dir.clone()));
                                }
                                // a folder a job of this session is writing is not offered
                                let active = jobs.list.iter().any(|j| {
                                    j.dir == e.dir
                                        && matches!(j.state, JobState::Queued | JobState::Running)
                                });
                                if e.status.resumable()
                                    && !active
                                    && ui
                                        .small_button("resume")
                                        .on_hover_text(
                                            "run the units that did not finish, in this folder",
                                        )
                                        .clicked()
                                {
                                    cmds.push(Command::ResumeRun(e.dir.clone()));
                                }
                            });
                            ui.end_row();
                        }
                    });
                });
            ui.separator();
            ui.heading("Messages");
            egui::ScrollArea::vertical()
                .id_salt("log")
                .max_height(200.0)
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for m in &self.log {
                        match m.level {
                            Level::Info => ui.label(&m.text),
                            Level::Warning => ui.colored_label(ui.visuals().warn_fg_color, &m.text),
                            Level::Error => ui.colored_label(ui.visuals().error_fg_color, &m.text),
                        };
                    }
                });

            let ui = &mut cols[1];
            ui.heading("Opened runs — tick two or more to compare");
            let mut show = None;
            let mut export = None;
            for f in &self.opened {
                ui.horizontal(|ui| {
                    let mut on = self.compare.contains(&f.dir);
                    if ui.checkbox(&mut on, f.name()).changed() {
                        if on {
                            self.compare.push(f.dir.clone());
                        } else {
                            self.compare.retain(|d| d != &f.dir);
                        }
                    }
                    ui.weak(&f.status);
                    if ui.small_button("show").clicked() {
                        show = Some(f.dir.clone());
                    }
                    if ui
                        .small_button("export")
                        .on_hover_text(
                            "figures (SVG + PNG), tables and the experiment into <run>/export",
                        )
                        .clicked()
                    {
                        export = Some(f.dir.clone());
                    }
                });
            }
            if let Some(d) = show {
                self.just_opened = Some(d);
            }
            if let Some(d) = export {
                self.export(&d);
            }
            let chosen: Vec<&RunFolder> = self
                .compare
                .iter()
                .filter_map(|d| self.opened.iter().find(|f| &f.dir == d))
                .collect();
            if chosen.len() >= 2 {
                ui.separator();
                compare_ui(ui, &chosen);
            }
        });
    }
}

/// Macro and per-family AUC-ROC / AP of several runs side by side.
fn compare_ui(ui: &mut egui::Ui, runs: &[&RunFolder]) {
    let tables: Vec<FamilyTable> = runs
        .iter()
        .map(|r| FamilyTable::from_metrics(&r.data.metrics))
        .collect();
    ui.strong("Macro over held-out families (mean ± std over seeds)");
    egui::Grid::new("cmp_macro").striped(true).show(ui, |ui| {
        ui.strong("run");
        ui.strong("method");
        ui.strong("AUC-ROC");
        ui.strong("AP");
        ui.strong("F1");
        ui.end_row();
        for (r, t) in runs.iter().zip(&tables) {
            for row in &t.macro_rows {
                ui.label(r.name());
                ui.label(&row.method);
                for c in [5, 4, 3] {
                    ui.label(row.cells[c].map(|s| s.text()).unwrap_or("–".into()));
                }
                ui.end_row();
            }
        }
    });
    ui.add_space(8.0);
    ui.strong("AUC-ROC per held-out family");
    let mut families: Vec<String> = Vec::new();
    for t in &tables {
        for f in &t.families {
            if !families.contains(f) {
                families.push(f.clone());
            }
        }
    }
    egui::ScrollArea::horizontal()
        .id_salt("cmp_h")
        .show(ui, |ui| {
            egui::Grid::new("cmp_fam").striped(true).show(ui, |ui| {
                ui.strong("run · method");
                for f in &families {
                    ui.strong(f);
                }
                ui.end_row();
                for (r, t) in runs.iter().zip(&tables) {
                    for m in &t.methods {
                        ui.label(format!("{} · {m}", r.name()));
                        for f in &families {
                            let cell = t
                                .rows
                                .iter()
                                .find(|x| &x.method == m && &x.family == f)
                                .and_then(|x| x.cells[5]);
                            ui.label(cell.map(|s| s.text()).unwrap_or("–".into()));
                        }
                        ui.end_row();
                    }
                }
            });
        });
}
