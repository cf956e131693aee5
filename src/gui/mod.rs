//! The desktop workbench (eframe/egui). The only layer that imports egui: panels are structs
//! with `ui` methods, clicks become [`Command`]s applied by [`Workbench::apply`], and long work
//! (loading, planning, training, opening runs, exporting) runs on named worker threads that
//! talk over bounded channels. The engine is the one `heldout run` uses: the same experiment
//! file, runner, events and run folders.

mod data_panel;
mod experiment_panel;
mod jobs;
pub mod playground;
pub mod plots;
mod results;
mod runs_panel;

pub use data_panel::DataPanel;
pub use experiment_panel::{ExperimentPanel, RoleChoice};
pub use jobs::{Job, JobState, Jobs};
pub use plots::Sub as LiveSub;
pub use runs_panel::RunsPanel;

use crate::experiment::Experiment;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The workbench's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    #[default]
    Data,
    Experiment,
    Live,
    Results,
    Runs,
    Playground,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Data,
        Tab::Experiment,
        Tab::Live,
        Tab::Results,
        Tab::Runs,
        Tab::Playground,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tab::Data => "Data",
            Tab::Experiment => "Roles & method",
            Tab::Live => "Live view",
            Tab::Results => "Results",
            Tab::Runs => "Runs & compare",
            Tab::Playground => "2-D playground",
        }
    }
}

/// Everything a click can ask for. Panels return commands; [`Workbench::apply`] carries them
/// out, so tests and menus go through the same path.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    SetTab(Tab),
    /// Use a dataset file or folder (label column chosen in the data panel, then loaded).
    OpenData(PathBuf),
    /// Make the chosen file (with its label column) the experiment's data and load it.
    UsePendingData,
    /// (Re)load the experiment's data in the background.
    LoadData,
    /// Replace the experiment with the built-in demo.
    LoadDemo,
    OpenExperiment(PathBuf),
    SaveExperiment(PathBuf),
    /// Queue a run of the experiment as the form shows it.
    StartRun,
    /// Start the long run the dialog asked about.
    ConfirmRun,
    /// Close the dialog without starting.
    CancelRun,
    /// Stop a queued or running job.
    StopRun(u64),
    /// Show a run folder in the live view and results (read in the background).
    OpenRun(PathBuf),
    /// Show a job's run in the live view and results.
    ShowJob(u64),
    /// Select a family (e.g. from a results cell) and go to the live view.
    ShowFamily {
        method: String,
        family: String,
    },
    /// Export the shown run's figures and tables into its folder.
    ExportRun,
    /// Re-read the list of run folders.
    RefreshRuns,
    /// Continue an interrupted, stopped or failed run in its folder (queued like a new run).
    ResumeRun(PathBuf),
}

/// Severity of a message in the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    /// Something the user must know that did not stop anything (e.g. a threshold fallback).
    Warning,
    Error,
}

/// A message in the status bar / message log.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

/// What survives a restart (eframe persistence).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Saved {
    pub experiment_ron: Option<String>,
    pub experiment_path: Option<PathBuf>,
    pub base: Option<PathBuf>,
    pub recent: Vec<PathBuf>,
    pub tab: Tab,
}

/// The run a view shows: a job of this session or a folder on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Job(u64),
    Folder(PathBuf),
}

/// The workbench: one experiment (the form is the file), its data, jobs and views.
pub struct Workbench {
    pub tab: Tab,
    /// The experiment as the form shows it and the file will say.
    pub exp: Experiment,
    /// Where the experiment file lives (None: the built-in demo or unsaved).
    pub exp_path: Option<PathBuf>,
    /// Relative data paths are resolved against this folder.
    pub base: PathBuf,
    pub data: DataPanel,
    pub experiment: ExperimentPanel,
    pub jobs: Jobs,
    pub runs: RunsPanel,
    pub view: plots::LiveView,
    pub results: results::ResultsPanel,
    pub playground: playground::PlaygroundPanel,
    pub recent: Vec<PathBuf>,
    pub messages: Vec<Message>,
    /// UI build times (seconds) of recent frames, for the status bar.
    pub frame_times: std::collections::VecDeque<f32>,
    pub shown: Option<Shown>,
    /// The tab to show once a run folder being opened is read (default: the live view).
    pub tab_after_open: Option<Tab>,
    /// A long run waiting for the user's confirmation: what the dialog says.
    pub confirm_run: Option<String>,
    /// The experiment (its RON) the user confirmed a long run of.
    confirmed_for: Option<String>,
    /// Run was pressed this many times before the estimate of this experiment was computed:
    /// start (or ask, or refuse) once it is.
    pub starts_when_estimated: usize,
    fonts_installed: bool,
}

/// Adds egui's bundled emoji, icon and monospace fonts as fallbacks of both families (the
/// workbench does this on its first frame; tests of single panels call it themselves).
pub fn install_fonts(ctx: &egui::Context) {
    use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
    for (name, bytes) in [
        (
            "heldout-noto-emoji",
            epaint_default_fonts::NOTO_EMOJI_REGULAR,
        ),
        ("heldout-emoji-icons", epaint_default_fonts::EMOJI_ICON),
        ("heldout-hack", epaint_default_fonts::HACK_REGULAR),
    ] {
        ctx.add_font(FontInsert {
            name: name.into(),
            data: egui::FontData::from_static(bytes),
            families: [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
                .into_iter()
                .map(|family| InsertFontFamily {
                    family,
                    priority: FontPriority::Lowest,
                })
                .collect(),
        });
    }
}

/// The built-in demo experiment.
pub fn demo_experiment() -> Experiment {
    // The file ships inside the binary and is tested (tests/experiments.rs), so it parses.
    Experiment::parse(crate::experiment::DEMO_EXPERIMENT, Path::new("demo.ron"))
        .unwrap_or_else(|_| unreachable_demo())
}

#[cold]
fn unreachable_demo() -> Experiment {
    // Only reachable if experiments/demo.ron were broken, which tests/experiments.rs rules out;
    // fall back to a minimal demo rather than panic.
    Experiment {
        name: "demo".into(),
        data: crate::experiment::DataSpec::Demo {
            kind: Default::default(),
            seed: 0,
        },
        protocol: Default::default(),
        roles: crate::experiment::Roles {
            normal: vec!["normal".into()],
            held_out: Default::default(),
            few_shot: Default::default(),
            ignored: vec![],
        },
        split: Default::default(),
        pools: Default::default(),
        scaler: Default::default(),
        episodes: Default::default(),
        method: Default::default(),
        compare: vec![],
        tau_policy: crate::eval::ThresholdPolicy::defaults(),
        seeds: vec![0],
        device: Default::default(),
        output: PathBuf::from("runs"),
    }
}

impl Default for Workbench {
    fn default() -> Self {
        Self::new(Saved::default())
    }
}

impl Workbench {
    /// A workbench restored from `saved` (or on the demo experiment).
    pub fn new(saved: Saved) -> Self {
        let mut wb = Workbench {
            tab: saved.tab,
            exp: demo_experiment(),
            exp_path: None,
            base: PathBuf::from("."),
            data: DataPanel::default(),
            experiment: ExperimentPanel::default(),
            jobs: Jobs::default(),
            runs: RunsPanel::default(),
            view: plots::LiveView::default(),
            results: results::ResultsPanel::default(),
            playground: playground::PlaygroundPanel::new(),
            recent: saved.recent,
            messages: Vec::new(),
            frame_times: Default::default(),
            shown: None,
            tab_after_open: None,
            confirm_run: None,
            confirmed_for: None,
            starts_when_estimated: 0,
            fonts_installed: false,
        };
        if let Some(text) = &saved.experiment_ron {
            let path = saved
                .experiment_path
                .clone()
                .unwrap_or_else(|| PathBuf::from("restored.ron"));
            match Experiment::parse(text, &path) {
                Ok(exp) => {
                    wb.exp = exp;
                    wb.exp_path = saved.experiment_path.clone();
                    wb.base = saved.base.clone().unwrap_or_else(|| PathBuf::from("."));
                }
                Err(e) => wb.error(format!("could not restore the last experiment: {e}")),
            }
        }
        wb.experiment.sync_text(&wb.exp);
        wb.apply(Command::LoadData);
        wb.apply(Command::RefreshRuns);
        wb
    }

    /// What to persist.
    pub fn saved(&self) -> Saved {
        Saved {
            experiment_ron: Some(self.exp.to_ron()),
            experiment_path: self.exp_path.clone(),
            base: Some(self.base.clone()),
            recent: self.recent.clone(),
            tab: self.tab,
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.push_message(Level::Info, text.into());
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.push_message(Level::Error, text.into());
    }

    fn push_message(&mut self, level: Level, text: String) {
        self.messages.push(Message { level, text });
        if self.messages.len() > 200 {
            self.messages.remove(0);
        }
    }

    /// Where run folders go: the experiment's output folder, relative to its file.
    pub fn runs_root(&self) -> PathBuf {
        self.base.join(&self.exp.output)
    }

    fn remember(&mut self, p: &Path) {
        self.recent.retain(|q| q != p);
        self.recent.insert(0, p.to_path_buf());
        self.recent.truncate(10);
    }

    /// Carries out a command.
    pub fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::SetTab(t) => self.tab = t,
            Command::OpenData(path) => {
                self.remember(&path);
                self.data.choose_file(&path, &mut self.exp, &self.base);
                self.experiment.sync_text(&self.exp);
                self.tab = Tab::Data;
            }
            Command::LoadData => self.data.start_load(&self.exp, &self.base),
            Command::UsePendingData => {
                self.data.confirm_pending(&mut self.exp, &self.base);
                self.exp_path = None;
                self.experiment.sync_text(&self.exp);
            }
            Command::LoadDemo => {
                self.exp = demo_experiment();
                self.exp_path = None;
                self.base = PathBuf::from(".");
                self.experiment.sync_text(&self.exp);
                self.data.start_load(&self.exp, &self.base);
            }
            Command::OpenExperiment(path) => match Experiment::load(&path, &[]) {
                Ok(checked) => {
                    self.base = checked.base().to_path_buf();
                    self.exp = checked.into_inner();
                    self.remember(&path);
                    self.exp_path = Some(path.clone());
                    self.experiment.sync_text(&self.exp);
                    self.data.start_load(&self.exp, &self.base);
                    self.info(format!("opened {}", path.display()));
                    self.apply(Command::RefreshRuns);
                }
                Err(e) => self.error(format!("{e:#}")),
            },
            Command::SaveExperiment(path) => {
                match crate::atomic::write_atomic(&path, self.exp.to_ron()) {
                    Ok(()) => {
                        self.info(format!("saved {}", path.display()));
                        self.exp_path = Some(path.clone());
                        self.remember(&path);
                    }
                    Err(e) => self.error(format!("{e:#}")),
                }
            }
            Command::StartRun => {
                // refused when it cannot fit; asked once when it will take long; started once the
                // estimate is there when it is still being computed
                if self.data.table().is_some() && !self.experiment.estimated(&self.exp) {
                    if self.starts_when_estimated == 0 {
                        self.info("estimating the run's cost first…".to_string());
                    }
                    self.starts_when_estimated += 1;
                    return;
                }
                if let Some(costed) = self.experiment.estimate_of(&self.exp) {
                    let est = &costed.estimate;
                    if let Err(e) = &costed.fits {
                        self.error(e.clone());
                        return;
                    }
                    let key = self.exp.to_ron();
                    if est.total_seconds > crate::experiment::estimate::LONG_RUN_SECONDS
                        && self.confirmed_for.as_deref() != Some(key.as_str())
                    {
                        self.confirm_run = Some(format!(
                            "This run is estimated to take ~{} ({} units; peak memory ~{}). Start it?",
                            crate::experiment::estimate::duration(est.total_seconds),
                            est.methods.iter().map(|m| m.units).sum::<usize>(),
                            crate::experiment::estimate::bytes(est.peak_bytes)
                        ));
                        return;
                    }
                }
                let checked = match self
                    .exp
                    .clone()
                    .checked(Path::new("experiment"), &self.base)
                {
                    Ok(c) => c,
                    Err(e) => {
                        self.error(e.to_string());
                        return;
                    }
                };
                let id = self.jobs.queue(checked);
                self.shown = Some(Shown::Job(id));
                self.view.reset();
                self.tab = Tab::Live;
                self.info(format!("run #{id} queued"));
            }
            Command::ConfirmRun => {
                self.confirm_run = None;
                self.confirmed_for = Some(self.exp.to_ron());
                self.apply(Command::StartRun);
            }
            Command::CancelRun => self.confirm_run = None,
            Command::ResumeRun(dir) => match crate::experiment::load_resumable(&dir) {
                Ok(exp) => {
                    let id = self.jobs.queue_resume(exp, dir.clone());
                    self.shown = Some(Shown::Job(id));
                    self.view.reset();
                    self.tab = Tab::Live;
                    self.info(format!("run #{id} queued: resuming {}", dir.display()));
                }
                Err(e) => self.error(format!("{e:#}")),
            },
            Command::StopRun(id) => self.jobs.stop(id),
            Command::OpenRun(dir) => self.runs.open(&dir),
            Command::ShowJob(id) => {
                self.shown = Some(Shown::Job(id));
                self.view.reset();
                self.tab = Tab::Live;
            }
            Command::ShowFamily { method, family } => {
                self.view.select_family(&method, &family);
                self.tab = Tab::Live;
            }
            Command::ExportRun => {
                let dir = match &self.shown {
                    Some(Shown::Folder(d)) => Some(d.clone()),
                    Some(Shown::Job(id)) => self.jobs.get(*id).map(|j| j.dir.clone()),
                    None => None,
                };
                match dir {
                    Some(d) => self.runs.export(&d),
                    None => self.error("no run shown: start a run or open one first"),
                }
            }
            Command::RefreshRuns => {
                let root = self.runs_root();
                self.runs.refresh(&root);
            }
        }
    }

    /// Moves worker results into the state (called every frame, time-capped).
    pub fn poll(&mut self) {
        for m in self.data.poll() {
            self.push_message(m.level, m.text);
        }
        if self.data.take_loaded() {
            if let Some(t) = self.data.table() {
                if let Some(note) = experiment_panel::fit_roles(&mut self.exp, t) {
                    self.info(note);
                    self.experiment.sync_text(&self.exp);
                }
            }
            self.experiment.invalidate_plan();
        }
        let (msgs, finished) = self.jobs.poll(std::time::Duration::from_millis(8));
        for m in msgs {
            self.push_message(m.level, m.text);
        }
        if finished {
            self.apply(Command::RefreshRuns);
        }
        for m in self.runs.poll() {
            self.push_message(m.level, m.text);
        }
        if let Some(dir) = self.runs.take_opened() {
            self.shown = Some(Shown::Folder(dir));
            self.view.reset();
            self.tab = self.tab_after_open.take().unwrap_or(Tab::Live);
        }
        self.experiment
            .poll(&self.exp, self.data.table_arc(), &self.base);
        // Run pressed while the estimate was being computed: go on now that it is there
        if self.starts_when_estimated > 0 && self.experiment.estimated(&self.exp) {
            for _ in 0..std::mem::take(&mut self.starts_when_estimated) {
                self.apply(Command::StartRun);
            }
        }
    }

    /// The rows of the shown run (live or opened).
    pub fn shown_data(&self) -> Option<(&crate::report::RunData, String, String)> {
        match self.shown.as_ref()? {
            Shown::Job(id) => {
                let j = self.jobs.get(*id)?;
                Some((
                    &j.data,
                    format!("run #{} · {}", j.id, j.exp.name),
                    j.status_text(),
                ))
            }
            Shown::Folder(d) => {
                let f = self.runs.opened(d)?;
                Some((&f.data, f.name(), f.status.clone()))
            }
        }
    }

    /// The whole window.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        if !self.fonts_installed {
            // symbols (▶ ■ ★ ⚠ ↔ →) come from the emoji and monospace fonts egui ships but does
            // not install by default; they take effect from the next frame
            install_fonts(ui.ctx());
            self.fonts_installed = true;
            ui.ctx().request_repaint();
            return;
        }
        let t0 = std::time::Instant::now();
        self.poll();
        let mut cmds: Vec<Command> = Vec::new();
        egui::Panel::top("menu").show(ui, |ui| self.top_bar(ui, &mut cmds));
        if let Some(text) = &self.confirm_run {
            let r =
                egui::Modal::new(egui::Id::unique("heldout-confirm-run")).show(ui.ctx(), |ui| {
                    ui.heading("Start a long run?");
                    ui.label(text);
                    ui.horizontal(|ui| {
                        if ui.button("Start the run").clicked() {
                            cmds.push(Command::ConfirmRun);
                        }
                        if ui.button("Cancel").clicked() {
                            cmds.push(Command::CancelRun);
                        }
                    });
                });
            if r.should_close() && cmds.is_empty() {
                cmds.push(Command::CancelRun);
            }
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui, &mut cmds));
        egui::CentralPanel::default_margins().show(ui, |ui| match self.tab {
            Tab::Data => self.data.ui(ui, &self.exp, &self.recent, &mut cmds),
            Tab::Experiment => self
                .experiment
                .ui(ui, &mut self.exp, self.data.table(), &mut cmds),
            Tab::Live => {
                let shown = match self.shown.as_ref() {
                    Some(Shown::Job(id)) => self.jobs.get(*id).map(|j| {
                        (
                            &j.data,
                            format!("run #{} · {}", j.id, j.exp.name),
                            j.status_text(),
                        )
                    }),
                    Some(Shown::Folder(d)) => self
                        .runs
                        .opened(d)
                        .map(|f| (&f.data, f.name(), f.status.clone())),
                    None => None,
                };
                self.view.ui(ui, shown, &mut cmds);
            }
            Tab::Results => {
                let shown = match self.shown.as_ref() {
                    Some(Shown::Job(id)) => self
                        .jobs
                        .get(*id)
                        .map(|j| (&j.data, format!("run #{} · {}", j.id, j.exp.name))),
                    Some(Shown::Folder(d)) => self.runs.opened(d).map(|f| (&f.data, f.name())),
                    None => None,
                };
                self.results.ui(ui, shown, &mut cmds);
            }
            Tab::Runs => self.runs.ui(ui, &self.jobs, &mut cmds),
            Tab::Playground => self.playground.ui(ui),
        });
        // keep polling while anything runs in the background
        if self.jobs.busy() || self.data.busy() || self.runs.busy() || self.experiment.busy() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(50));
        }
        for c in cmds {
            self.apply(c);
        }
        // the time this frame's UI took to build (polling included; painting is eframe's)
        self.frame_times.push_back(t0.elapsed().as_secs_f32());
        if self.frame_times.len() > 600 {
            self.frame_times.pop_front();
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        ui.horizontal_wrapped(|ui| {
            ui.strong("heldout");
            ui.separator();
            ui.menu_button("File", |ui| {
                if ui.button("Open dataset…").clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("tables", &["csv", "gz", "parquet", "pq"])
                        .pick_file()
                    {
                        cmds.push(Command::OpenData(p));
                    }
                    ui.close();
                }
                if ui.button("Open dataset folder…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_folder() {
                        cmds.push(Command::OpenData(p));
                    }
                    ui.close();
                }
                if ui.button("Open experiment (RON)…").clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("experiment", &["ron"])
                        .pick_file()
                    {
                        cmds.push(Command::OpenExperiment(p));
                    }
                    ui.close();
                }
                if ui.button("Save experiment as…").clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("experiment", &["ron"])
                        .set_file_name(format!("{}.ron", self.exp.name))
                        .save_file()
                    {
                        cmds.push(Command::SaveExperiment(p));
                    }
                    ui.close();
                }
                if ui.button("Open run folder…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_folder() {
                        cmds.push(Command::OpenRun(p));
                    }
                    ui.close();
                }
                ui.separator();
                if ui.button("Built-in demo").clicked() {
                    cmds.push(Command::LoadDemo);
                    ui.close();
                }
                if !self.recent.is_empty() {
                    ui.separator();
                    ui.label("Recent");
                    for p in self.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            if p.extension().is_some_and(|e| e == "ron") {
                                cmds.push(Command::OpenExperiment(p));
                            } else {
                                cmds.push(Command::OpenData(p));
                            }
                            ui.close();
                        }
                    }
                }
            });
            ui.separator();
            for t in Tab::ALL {
                if ui.selectable_label(self.tab == t, t.label()).clicked() {
                    cmds.push(Command::SetTab(t));
                }
            }
            ui.separator();
            let running = self.jobs.running_id();
            if ui
                .button("▶ Run experiment")
                .on_hover_text("Queue a run of the experiment as the form shows it")
                .clicked()
            {
                cmds.push(Command::StartRun);
            }
            if let Some(id) = running {
                if ui.button("■ Stop").clicked() {
                    cmds.push(Command::StopRun(id));
                }
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            if let Some(j) = self.jobs.running() {
                let (frac, text) = j.progress();
                ui.add(
                    egui::ProgressBar::new(frac)
                        .desired_width(220.0)
                        .text(format!("run #{}: {text}", j.id)),
                );
                if ui.small_button("show").clicked() {
                    cmds.push(Command::ShowJob(j.id));
                }
            } else if self.data.busy() {
                ui.spinner();
                ui.label(self.data.busy_text());
            }
            let queued = self.jobs.queued_count();
            if queued > 0 {
                ui.label(format!("{queued} queued"));
            }
            ui.separator();
            if let Some(m) = self.messages.last() {
                let color = match m.level {
                    Level::Info => ui.visuals().text_color(),
                    Level::Warning => ui.visuals().warn_fg_color,
                    Level::Error => ui.visuals().error_fg_color,
                };
                ui.colored_label(color, &m.text)
                    .on_hover_text("All messages are listed in the Runs tab");
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if let Some(p99) = frame_time_p99(&self.frame_times) {
                    ui.weak(format!("UI p99 {:.1} ms/frame", p99 * 1000.0))
                        .on_hover_text("99th percentile of the time to build a frame's UI over the last 600 frames");
                }
            });
        });
    }

    /// Drops files dropped on the window into the right command.
    pub fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for p in dropped {
            let cmd = if p.extension().is_some_and(|e| e == "ron") {
                Command::OpenExperiment(p)
            } else if p.join("config.ron").exists() {
                Command::OpenRun(p)
            } else {
                Command::OpenData(p)
            };
            self.apply(cmd);
        }
    }

    /// Stops every job and waits (up to `wait`) for the workers to write their folders.
    pub fn shutdown(&mut self, wait: std::time::Duration) {
        self.jobs.shutdown(wait);
    }
}

/// The 99th percentile of frame times (seconds), over at least 20 frames.
pub fn frame_time_p99(times: &std::collections::VecDeque<f32>) -> Option<f32> {
    if times.len() < 20 {
        return None;
    }
    let mut v: Vec<f32> = times.iter().copied().collect();
    v.sort_by(f32::total_cmp);
    let k = ((v.len() as f64) * 0.99).ceil() as usize;
    v.get(k.saturating_sub(1)).copied()
}

/// A screenshot to take once the window has settled (for the README; see
/// `screenshots/render.sh`).
struct Shot {
    path: PathBuf,
    started: std::time::Instant,
    frames: u32,
    requested: bool,
    done: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// The eframe application around the [`Workbench`].
pub struct App {
    pub wb: Workbench,
    shot: Option<Shot>,
    exit_at: Option<std::time::Instant>,
    /// Intervals between frames (seconds), for the exit report; with `exit_after` the window
    /// repaints continuously, so these are whole frame times (UI + painting).
    all_frames: Vec<f32>,
    last_frame: Option<std::time::Instant>,
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.wb.handle_dropped_files(&ui.ctx().clone());
        self.wb.ui(ui);
        let now = std::time::Instant::now();
        if let Some(t) = self.last_frame.replace(now) {
            self.all_frames.push((now - t).as_secs_f32());
        }
        if let Some(at) = self.exit_at {
            if std::time::Instant::now() >= at {
                eprintln!("{}", frame_report(&self.all_frames, &self.wb));
                self.exit_at = None;
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            } else {
                ui.ctx().request_repaint();
            }
        }
        if let Some(s) = &mut self.shot {
            use std::sync::atomic::Ordering;
            let ctx = ui.ctx().clone();
            s.frames += 1;
            let playground = self.wb.tab == Tab::Playground;
            if playground && s.frames == 3 {
                // train the playground freely so the picture shows a learned landscape
                self.wb.playground.run();
            }
            let settled = s.frames > 30
                && !self.wb.data.busy()
                && !self.wb.runs.busy()
                && !self.wb.experiment.busy()
                && (!playground || s.started.elapsed() > std::time::Duration::from_secs(12));
            if settled && !s.requested {
                s.requested = true;
                let (path, done) = (s.path.clone(), s.done.clone());
                ctx.request_screenshot(move |img| {
                    let ok = write_png(&path, &img);
                    if let Err(e) = &ok {
                        eprintln!("error: {}: {e}", path.display());
                    }
                    done.store(if ok.is_ok() { 1 } else { 2 }, Ordering::SeqCst);
                });
            }
            match s.done.load(Ordering::SeqCst) {
                0 => ctx.request_repaint(),
                _ => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            }
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.shot.is_none() {
            eframe::set_value(storage, eframe::APP_KEY, &self.wb.saved());
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // A run in progress is stopped and its folder marked 'stopped': nothing is lost.
        self.wb.shutdown(std::time::Duration::from_secs(5));
    }
}

/// Frame-time statistics: count, median, p99, max (ms) of whole frames and of the UI build,
/// and what ran meanwhile.
pub fn frame_report(frames: &[f32], wb: &Workbench) -> String {
    let mut v: Vec<f32> = frames.to_vec();
    v.sort_by(f32::total_cmp);
    let q = |p: f64| -> f32 {
        if v.is_empty() {
            return f32::NAN;
        }
        let k = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len());
        v[k - 1] * 1000.0
    };
    let job = wb
        .jobs
        .list
        .last()
        .map(|j| j.status_text())
        .unwrap_or_else(|| "no run".into());
    let mb = |key: &str| {
        crate::experiment::bench::proc_status_bytes(key)
            .map_or("n/a".to_string(), |b| format!("{} MB", b >> 20))
    };
    format!(
        "frames {} · median {:.1} ms · p99 {:.1} ms · max {:.1} ms · UI build p99 {:.1} ms · peak RSS {} · RSS at exit {} · live rows kept {} · during: {job}",
        v.len(),
        q(0.5),
        q(0.99),
        q(1.0),
        frame_time_p99(&wb.frame_times).unwrap_or(f32::NAN) * 1000.0,
        mb("VmHWM:"),
        mb("VmRSS:"),
        wb.jobs.list.last().map_or(0, |j| j.data.row_count())
    )
}

/// Writes an egui image as an RGBA PNG.
fn write_png(path: &Path, img: &egui::ColorImage) -> Result<()> {
    let [w, h] = img.size;
    let mut bytes = Vec::with_capacity(w * h * 4);
    for c in &img.pixels {
        bytes.extend_from_slice(&c.to_srgba_unmultiplied());
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header()?;
        wr.write_image_data(&bytes)?;
    }
    let tmp = path.with_extension("png.tmp");
    std::fs::write(&tmp, &out)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// How to open the window.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// An experiment file to open.
    pub experiment: Option<PathBuf>,
    /// A run folder to show.
    pub open_run: Option<PathBuf>,
    pub tab: Option<Tab>,
    pub live: Option<LiveSub>,
    /// Take a screenshot of the window once it has settled, write it here and close.
    pub screenshot: Option<PathBuf>,
    /// Window size in points.
    pub size: Option<[f32; 2]>,
    /// Queue a run of the experiment at start.
    pub start_run: bool,
    /// Close after this many seconds and print frame-time statistics to stderr.
    pub exit_after: Option<f64>,
    /// A dataset to open and load at start (label column guessed), as the Data tab does —
    /// with `start_run`, while the run streams (to measure the UI under both loads).
    pub load_data: Option<PathBuf>,
}

/// Whether a display server is reachable (Linux/BSD: `DISPLAY` or `WAYLAND_DISPLAY`).
pub fn display_available() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Opens the workbench window (blocks until it is closed).
pub fn launch(opts: LaunchOptions) -> Result<()> {
    if !display_available() {
        anyhow::bail!(
            "no display: the workbench needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not set). \
             Run experiments headless with `heldout run FILE.ron` (or `heldout run --demo`), and see `heldout --help`"
        );
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("heldout — does the detector catch the families it never saw?")
            .with_inner_size(opts.size.unwrap_or([1400.0, 900.0]))
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        persist_window: true,
        ..Default::default()
    };
    // screenshots must not touch the user's saved session
    let app_name = if opts.screenshot.is_some() {
        "heldout-screenshot"
    } else {
        "heldout"
    };
    eframe::run_native(
        app_name,
        options,
        Box::new(move |cc| {
            let saved: Saved = match opts.screenshot {
                Some(_) => Saved::default(),
                None => cc
                    .storage
                    .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                    .unwrap_or_default(),
            };
            let mut wb = Workbench::new(saved);
            if let Some(p) = opts.experiment {
                wb.apply(Command::OpenExperiment(p));
            }
            if let Some(d) = opts.open_run {
                wb.apply(Command::OpenRun(d));
            }
            if let Some(t) = opts.tab {
                wb.tab_after_open = Some(t);
                wb.tab = t;
            }
            if let Some(l) = opts.live {
                wb.view.sub = l;
            }
            let shot = opts.screenshot.map(|path| Shot {
                path,
                started: std::time::Instant::now(),
                frames: 0,
                requested: false,
                done: Default::default(),
            });
            if opts.start_run {
                wb.apply(Command::StartRun);
            }
            if let Some(p) = opts.load_data {
                wb.apply(Command::OpenData(p));
                wb.apply(Command::UsePendingData);
                if opts.start_run {
                    // stay on the live view of the run; the file loads in the background
                    wb.tab = Tab::Live;
                }
            }
            // an impossible delay (negative, NaN, overflowing) never closes the window
            let exit_at = opts
                .exit_after
                .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
                .and_then(|d| std::time::Instant::now().checked_add(d));
            Ok(Box::new(App {
                wb,
                shot,
                exit_at,
                all_frames: Vec::new(),
                last_frame: None,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the workbench window: {e}"))
}

/// Lowers the calling worker thread's scheduling priority (nice +10) so that, on a machine with
/// fewer cores than busy threads, the UI thread is scheduled first and stays responsive while a
/// run trains and a dataset loads: threads it spawns afterwards (the training's compute threads)
/// inherit it. Scheduling only: no number changes. Linux only; elsewhere it does nothing.
pub(crate) fn background_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes plain integers and touches no memory of ours; on Linux
    // `PRIO_PROCESS` with id 0 applies to the calling thread only. A failure (e.g. a sandbox
    // forbidding it) leaves the priority as it was, which is harmless, so the result is ignored.
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
