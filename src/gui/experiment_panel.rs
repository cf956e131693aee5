//! The roles & method tab: each family with its count and a role set by click, episodes,
//! seeds, method hyper-parameters with defaults and explanations, the live plan preview (the
//! `heldout validate` text, computed on a worker thread) and the RON file the form is.
//!
//! The form edits the [`Experiment`] itself and the RON text is regenerated from it, so what the
//! form shows and what the file says cannot drift apart.

use super::Command;
use crate::data::Table;
use crate::experiment::estimate::{bytes, count, duration, LONG_RUN_SECONDS};
use crate::experiment::{
    Curriculum, Device, Estimate, Experiment, FewShot, HeldOut, Method, Plan, Priority,
};
use crossbeam_channel::{bounded, Receiver};
use std::path::Path;
use std::sync::Arc;

/// A family's role as the form shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChoice {
    Normal,
    FewShot,
    HeldOut,
    Ignored,
}

impl RoleChoice {
    pub const ALL: [RoleChoice; 4] = [
        RoleChoice::Normal,
        RoleChoice::FewShot,
        RoleChoice::HeldOut,
        RoleChoice::Ignored,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RoleChoice::Normal => "Normal",
            RoleChoice::FewShot => "Few-shot",
            RoleChoice::HeldOut => "Held-out",
            RoleChoice::Ignored => "Ignored",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            RoleChoice::Normal => "the normal class (benign traffic, healthy beats): trained on",
            RoleChoice::FewShot => {
                "an anomaly family seen a few rows at a time in training; with 'rotate each' \
                 on, it is also held out in its own rotation"
            }
            RoleChoice::HeldOut => "never seen in training; only tested",
            RoleChoice::Ignored => "left out entirely",
        }
    }
}

/// The role of `family` under `exp.roles`.
pub fn role_of(exp: &Experiment, family: &str) -> RoleChoice {
    let r = &exp.roles;
    let has = |v: &[String]| v.iter().any(|x| x == family);
    if has(&r.normal) {
        RoleChoice::Normal
    } else if has(&r.ignored) {
        RoleChoice::Ignored
    } else if matches!(&r.held_out, HeldOut::Fixed(v) if has(v)) {
        RoleChoice::HeldOut
    } else if matches!(&r.few_shot, FewShot::Only(v) if !has(v)) {
        RoleChoice::Ignored
    } else {
        RoleChoice::FewShot
    }
}

/// Gives `family` the role `role`, keeping the other families' roles.
pub fn set_role(exp: &mut Experiment, family: &str, role: RoleChoice) {
    let r = &mut exp.roles;
    let f = family.to_string();
    r.normal.retain(|x| x != family);
    r.ignored.retain(|x| x != family);
    if let HeldOut::Fixed(v) = &mut r.held_out {
        v.retain(|x| x != family);
    }
    match role {
        RoleChoice::Normal => r.normal.push(f),
        RoleChoice::Ignored => r.ignored.push(f),
        RoleChoice::HeldOut => match &mut r.held_out {
            HeldOut::Fixed(v) => v.push(f),
            HeldOut::RotateEach { .. } => r.held_out = HeldOut::Fixed(vec![f]),
        },
        RoleChoice::FewShot => {
            if let FewShot::Only(v) = &mut r.few_shot {
                if !v.contains(&f) {
                    v.push(f);
                }
            }
        }
    }
    if let Priority::List(p) = &mut exp.episodes.priority {
        if role != RoleChoice::FewShot {
            p.retain(|x| x != family);
        }
    }
}

/// After a new table loads: if the roles name families it lacks, start from sensible roles
/// (normal = a family called benign/normal, else the largest; every other family rotates as
/// held out). Returns a note when it changed anything.
pub fn fit_roles(exp: &mut Experiment, t: &Table) -> Option<String> {
    if exp.roles.resolve(t).is_ok() {
        return None;
    }
    let counts = t.family_counts();
    let normal = t
        .families
        .iter()
        .find(|f| {
            matches!(
                f.to_lowercase().as_str(),
                "benign" | "normal" | "legitimate"
            )
        })
        .cloned()
        .or_else(|| {
            (0..t.families.len())
                .max_by_key(|&i| counts[i])
                .map(|i| t.families[i].clone())
        })?;
    exp.roles.normal = vec![normal.clone()];
    exp.roles.held_out = HeldOut::default();
    exp.roles.few_shot = FewShot::All;
    exp.roles.ignored.clear();
    exp.episodes.priority = Priority::Auto;
    Some(format!(
        "roles set for the new data: normal = {normal}, every other family rotates as held out"
    ))
}

/// A plan computed in the background: its text, warnings and the cost estimate with its
/// refusal (`Err`: why it cannot run in this machine's memory).
type PlanResult = Result<(String, Vec<String>, Result<Costed, String>), String>;

/// An estimate and whether it fits.
#[derive(Debug, Clone)]
pub struct Costed {
    pub estimate: Estimate,
    pub fits: Result<(), String>,
}

struct PlanJob {
    rx: Receiver<PlanResult>,
}

/// State of the tab.
#[derive(Default)]
pub struct ExperimentPanel {
    /// The RON text shown (regenerated from the experiment unless being edited).
    pub ron_text: String,
    ron_edited: bool,
    pub ron_error: Option<String>,
    /// The plan text for `plan_for` (the experiment's RON when it was computed).
    pub plan_text: String,
    pub plan_warnings: Vec<String>,
    pub plan_error: Option<String>,
    /// The cost estimate of `estimate_for` (the experiment's RON when it was computed), or why
    /// there is none.
    pub estimate: Option<Result<Costed, String>>,
    estimate_for: String,
    plan_for: String,
    plan_job: Option<PlanJob>,
    seeds_text: String,
    ron_label: Option<egui::Id>,
}

impl ExperimentPanel {
    /// Shows the experiment's RON (drops unapplied edits).
    pub fn sync_text(&mut self, exp: &Experiment) {
        self.ron_text = exp.to_ron();
        self.ron_edited = false;
        self.ron_error = None;
        self.seeds_text = seeds_text(&exp.seeds);
    }

    pub fn invalidate_plan(&mut self) {
        self.plan_for.clear();
    }

    pub fn busy(&self) -> bool {
        self.plan_job.is_some()
    }

    /// The estimate of `exp` when the latest one is for exactly this experiment.
    pub fn estimate_of(&self, exp: &Experiment) -> Option<&Costed> {
        match &self.estimate {
            Some(Ok(e)) if self.estimate_for == exp.to_ron() => Some(e),
            _ => None,
        }
    }

    /// Whether the latest estimate (or its failure) is for exactly this experiment.
    pub fn estimated(&self, exp: &Experiment) -> bool {
        self.estimate.is_some() && self.estimate_for == exp.to_ron()
    }

    /// Recomputes the plan in the background when the experiment or data changed.
    pub fn poll(&mut self, exp: &Experiment, table: Option<Arc<Table>>, _base: &Path) {
        if let Some(j) = &self.plan_job {
            if let Ok(r) = j.rx.try_recv() {
                match r {
                    Ok((text, warnings, estimate)) => {
                        self.plan_text = text;
                        self.plan_warnings = warnings;
                        self.plan_error = None;
                        self.estimate = Some(estimate);
                    }
                    Err(e) => {
                        self.plan_error = Some(e.clone());
                        self.plan_text.clear();
                        self.plan_warnings.clear();
                        // no plan, no estimate: a Run pressed meanwhile goes to the runner,
                        // which reports the same error
                        self.estimate = Some(Err(e));
                    }
                }
                self.estimate_for = self.plan_for.clone();
                self.plan_job = None;
            }
        }
        if !self.ron_edited {
            let now = exp.to_ron();
            if now != self.ron_text {
                self.ron_text = now;
            }
        }
        let Some(t) = table else { return };
        let key = exp.to_ron();
        if self.plan_job.is_some() || key == self.plan_for {
            return;
        }
        self.plan_for = key;
        let (tx, rx) = bounded(1);
        let exp = exp.clone();
        let spawned = std::thread::Builder::new()
            .name("heldout-plan".into())
            .spawn(move || {
                let r = Plan::build(&exp, &t, 3)
                    .map(|p| {
                        (
                            p.to_text(&exp, &t),
                            p.warnings.clone(),
                            Estimate::of(&exp, &t).map(|estimate| Costed {
                                fits: estimate.check_memory(&exp),
                                estimate,
                            }),
                        )
                    })
                    .map_err(|e| format!("{e:#}"));
                let _ = tx.send(r);
            });
        if spawned.is_ok() {
            self.plan_job = Some(PlanJob { rx });
        }
    }

    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        exp: &mut Experiment,
        table: Option<&Table>,
        cmds: &mut Vec<Command>,
    ) {
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("form")
                .show(&mut cols[0], |ui| {
                    self.form(ui, exp, table, cmds);
                });
            egui::ScrollArea::vertical()
                .id_salt("plan")
                .show(&mut cols[1], |ui| {
                    self.plan_and_file(ui, exp);
                });
        });
    }

    fn form(
        &mut self,
        ui: &mut egui::Ui,
        exp: &mut Experiment,
        table: Option<&Table>,
        cmds: &mut Vec<Command>,
    ) {
        ui.horizontal(|ui| {
            let l = ui.label("Experiment name");
            ui.text_edit_singleline(&mut exp.name).labelled_by(l.id);
        });
        ui.heading("Family roles");
        let mut rotate = matches!(exp.roles.held_out, HeldOut::RotateEach { .. });
        if ui
            .checkbox(&mut rotate, "Rotate each family as held-out")
            .on_hover_text(
                "leave-one-family-out: one rotation per anomaly family, the others seen few-shot \
                 (the paper's Table 1 protocol)",
            )
            .changed()
        {
            exp.roles.held_out = if rotate {
                HeldOut::default()
            } else {
                let first = table.and_then(|t| {
                    t.families
                        .iter()
                        .find(|f| role_of(exp, f) == RoleChoice::FewShot)
                        .cloned()
                });
                HeldOut::Fixed(first.into_iter().collect())
            };
        }
        if let HeldOut::RotateEach { min_rows } = &mut exp.roles.held_out {
            ui.horizontal(|ui| {
                let l = ui.label("   rotate families with at least");
                ui.add(egui::DragValue::new(min_rows).range(1..=1_000_000))
                    .labelled_by(l.id);
                ui.label("rows");
            });
        }
        let mut only = matches!(exp.roles.few_shot, FewShot::Only(_));
        if ui
            .checkbox(
                &mut only,
                "Few-shot: only the families marked (others ignored)",
            )
            .changed()
        {
            exp.roles.few_shot = if only {
                FewShot::Only(
                    table
                        .map(|t| {
                            t.families
                                .iter()
                                .filter(|f| role_of(exp, f) == RoleChoice::FewShot)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            } else {
                FewShot::All
            };
        }
        match table {
            None => {
                ui.label("Load data to set roles per family.");
            }
            Some(t) => {
                let counts = t.family_counts();
                egui::Grid::new("roles").striped(true).show(ui, |ui| {
                    ui.strong("family");
                    ui.strong("rows");
                    ui.strong("role");
                    ui.end_row();
                    for (i, f) in t.families.iter().enumerate() {
                        ui.label(f);
                        ui.label(counts[i].to_string());
                        ui.horizontal(|ui| {
                            let cur = role_of(exp, f);
                            for r in RoleChoice::ALL {
                                let resp = ui
                                    .selectable_label(cur == r, r.label())
                                    .on_hover_text(r.hint());
                                // egui_kittest finds role buttons by "family: role"
                                resp.widget_info(|| {
                                    egui::WidgetInfo::selected(
                                        egui::Role::Button,
                                        true,
                                        cur == r,
                                        format!("{f}: {}", r.label()),
                                    )
                                });
                                if resp.clicked() && cur != r {
                                    set_role(exp, f, r);
                                }
                            }
                        });
                        ui.end_row();
                    }
                });
            }
        }
        ui.separator();
        ui.heading("Episodes");
        let e = &mut exp.episodes;
        egui::Grid::new("episodes").num_columns(2).show(ui, |ui| {
            drag(ui, "episodes", &mut e.count, 1..=10_000, "meta-training episodes per rotation (spec: 20)");
            drag(ui, "shots", &mut e.shots, 1..=100_000, "few-shot rows per outer family in an episode (spec: 100)");
            drag(ui, "K outer families", &mut e.outer_families, 1..=50, "families in an episode's outer stage (spec: 3)");
            drag(ui, "families per inner task", &mut e.families_per_task, 1..=50, "spec: 2");
            let l = ui.label("inner tasks (min, max)");
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut e.inner_tasks.0).range(1..=20))
                    .labelled_by(l.id);
                ui.add(egui::DragValue::new(&mut e.inner_tasks.1).range(1..=20))
                    .labelled_by(l.id);
            });
            ui.end_row();
            let lc = ui.label("curriculum");
            egui::ComboBox::from_id_salt("curriculum")
                .selected_text(format!("{:?}", e.curriculum))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut e.curriculum, Curriculum::PriorityRoundRobin, "PriorityRoundRobin")
                        .on_hover_text("outer families from a rotating priority list, the rest shuffled (the reference)");
                    ui.selectable_value(&mut e.curriculum, Curriculum::EmaHardness, "EmaHardness")
                        .on_hover_text("favour families the model finds hard (EMA of AUC/F1)");
                    ui.selectable_value(&mut e.curriculum, Curriculum::Random, "Random");
                })
.response
.labelled_by(lc.id);
            ui.end_row();
        });
        let mut auto = matches!(e.priority, Priority::Auto);
        if ui
            .checkbox(&mut auto, "Priority families: automatic")
            .on_hover_text("the reference's rule: the 3 seen families least separable from normals")
            .changed()
        {
            e.priority = if auto {
                Priority::Auto
            } else {
                Priority::List(vec![])
            };
        }
        if let (Priority::List(list), Some(t)) = (&mut exp.episodes.priority, table) {
            ui.horizontal_wrapped(|ui| {
                ui.label("priority:");
                for f in &t.families {
                    if exp.roles.normal.contains(f) {
                        continue;
                    }
                    let mut on = list.contains(f);
                    if ui.checkbox(&mut on, f).changed() {
                        if on {
                            list.push(f.clone());
                        } else {
                            list.retain(|x| x != f);
                        }
                    }
                }
            });
        }
        ui.horizontal(|ui| {
            ui.label("Seeds").on_hover_text(
                "comma-separated; each seed re-splits the data and re-initialises the model",
            );
            if ui
                .add(egui::TextEdit::singleline(&mut self.seeds_text).hint_text("seeds"))
                .on_hover_text("seeds")
                .changed()
            {
                if let Some(s) = parse_seeds(&self.seeds_text) {
                    exp.seeds = s;
                }
            }
            if parse_seeds(&self.seeds_text).is_none() {
                ui.colored_label(ui.visuals().error_fg_color, "e.g. 0, 1, 2");
            }
        });
        ui.horizontal(|ui| {
            let lc = ui.label("Device");
            let cuda = cfg!(feature = "cuda");
            egui::ComboBox::from_id_salt("device")
                .selected_text(format!("{:?}", exp.device))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut exp.device, Device::Auto, "Auto");
                    ui.selectable_value(&mut exp.device, Device::Cpu, "Cpu");
                    ui.add_enabled_ui(cuda, |ui| {
                        ui.selectable_value(&mut exp.device, Device::Cuda(0), "Cuda(0)")
                            .on_disabled_hover_text(
                                "build with `--features cuda` to train on an NVIDIA GPU",
                            );
                    });
                })
                .response
                .labelled_by(lc.id);
            if !cuda {
                ui.weak("(CPU build)");
            }
        });
        ui.horizontal(|ui| {
            ui.label("Run folders under");
            let mut out = exp.output.display().to_string();
            if ui
                .add(egui::TextEdit::singleline(&mut out).hint_text("runs"))
                .changed()
            {
                exp.output = out.into();
            }
        });
        ui.separator();
        ui.heading("Method");
        method_picker(ui, &mut exp.method);
        method_form(ui, "main", &mut exp.method);
        ui.separator();
        ui.heading("Compare with");
        compare_ui(ui, exp);
        ui.separator();
        ui.horizontal(|ui| {
            if ui.button("▶ Run this experiment").clicked() {
                cmds.push(Command::StartRun);
            }
            if ui.button("Save experiment as…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("experiment", &["ron"])
                    .set_file_name(format!("{}.ron", exp.name))
                    .save_file()
                {
                    cmds.push(Command::SaveExperiment(p));
                }
            }
            if ui.button("Open experiment…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("experiment", &["ron"])
                    .pick_file()
                {
                    cmds.push(Command::OpenExperiment(p));
                }
            }
        });
    }

    /// The cost estimate: per method its parameters, memory and time; the peak against the limit
    /// and the whole run's time, in the warning colour past a threshold and the error colour
    /// when the run would be refused.
    fn cost_ui(&self, ui: &mut egui::Ui, exp: &Experiment) {
        if !self.estimated(exp) {
            // the form changed: the estimate of the previous experiment is not shown
            return;
        }
        match &self.estimate {
            None => {}
            // a plan error is shown above already
            Some(Err(_)) if self.plan_error.is_some() => {}
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("cost: {e}"));
            }
            Some(Ok(Costed {
                estimate: est,
                fits,
            })) => {
                ui.strong("Cost (estimated)");
                egui::Grid::new("cost")
                    .striped(true)
                    .num_columns(5)
                    .show(ui, |ui| {
                        for h in ["method", "params", "memory", "per unit", "units"] {
                            ui.strong(h);
                        }
                        ui.end_row();
                        for m in &est.methods {
                            ui.label(&m.name);
                            ui.label(count(m.cost.params));
                            ui.label(bytes(m.cost.peak_bytes() + m.view_bytes + m.record_bytes));
                            ui.label(duration(m.seconds_per_unit));
                            ui.label(m.units.to_string());
                            ui.end_row();
                        }
                    });
                let peak = format!(
                    "peak memory ~{} of {} · data {}",
                    bytes(est.peak_bytes),
                    bytes(est.limit.bytes),
                    bytes(est.data_bytes)
                );
                match fits {
                    Err(e) => {
                        ui.colored_label(ui.visuals().error_fg_color, format!("✖ {e}"));
                    }
                    Ok(()) if est.close_to_limit() => {
                        ui.colored_label(ui.visuals().warn_fg_color, format!("⚠ {peak}"));
                    }
                    Ok(()) => {
                        ui.label(peak);
                    }
                }
                let time = format!(
                    "whole run ~{} on {} ({:.0} GFLOP/s measured)",
                    duration(est.total_seconds),
                    est.device,
                    est.calibration.gflops
                );
                if est.total_seconds > LONG_RUN_SECONDS {
                    ui.colored_label(ui.visuals().warn_fg_color, format!("⚠ {time}"));
                } else {
                    ui.label(time);
                }
            }
        }
    }

    fn plan_and_file(&mut self, ui: &mut egui::Ui, exp: &mut Experiment) {
        ui.heading("Plan");
        if self.plan_job.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("planning…");
            });
        }
        if let Some(e) = &self.plan_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        for w in &self.plan_warnings {
            ui.colored_label(ui.visuals().warn_fg_color, format!("⚠ {w}"));
        }
        self.cost_ui(ui, exp);
        if !self.plan_text.is_empty() {
            egui::ScrollArea::both()
                .id_salt("plan_text")
                .max_height(360.0)
                .show(ui, |ui| {
                    ui.monospace(&self.plan_text);
                });
        }
        ui.separator();
        ui.horizontal(|ui| {
            self.ron_label = Some(ui.heading("Experiment file (RON)").id);
            if self.ron_edited {
                if ui.button("Apply").clicked() {
                    match Experiment::parse(&self.ron_text, Path::new("experiment.ron"))
                        .map_err(|e| e.to_string())
                        .and_then(|x| {
                            x.check(Path::new("experiment.ron"))
                                .map_err(|e| e.to_string())?;
                            Ok(x)
                        }) {
                        Ok(x) => {
                            *exp = x;
                            self.sync_text(exp);
                        }
                        Err(e) => self.ron_error = Some(e),
                    }
                }
                if ui.button("Revert").clicked() {
                    self.sync_text(exp);
                }
            }
        });
        if let Some(e) = &self.ron_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let resp = ui.add(
            egui::TextEdit::multiline(&mut self.ron_text)
                .code_editor()
                .desired_width(f32::INFINITY)
                .desired_rows(20),
        );
        let resp = match self.ron_label {
            Some(id) => resp.labelled_by(id),
            None => resp,
        };
        if resp.changed() {
            self.ron_edited = true;
        }
    }
}

fn seeds_text(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `0, 1, 2` → `[0, 1, 2]`; None when empty or not numbers.
pub fn parse_seeds(s: &str) -> Option<Vec<u64>> {
    let v: Option<Vec<u64>> = s
        .split([',', ' '])
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().parse().ok())
        .collect();
    v.filter(|v| !v.is_empty())
}

fn drag(
    ui: &mut egui::Ui,
    label: &str,
    v: &mut usize,
    range: std::ops::RangeInclusive<usize>,
    hint: &str,
) {
    let l = ui.label(label).on_hover_text(hint);
    ui.add(egui::DragValue::new(v).range(range))
        .labelled_by(l.id)
        .on_hover_text(hint);
    ui.end_row();
}

/// The method under study: every registered method.
fn method_picker(ui: &mut egui::Ui, m: &mut Method) {
    ui.horizontal(|ui| {
        let lc = ui.label("Method under study");
        egui::ComboBox::from_id_salt("method_key")
            .selected_text(m.info().title)
            .show_ui(ui, |ui| {
                for d in Method::all() {
                    let info = d.info();
                    let chosen = d.key() == m.key();
                    if ui
                        .selectable_label(chosen, info.title)
                        .on_hover_text(format!("{} — {}", info.summary, info.labels.describe()))
                        .clicked()
                        && !chosen
                    {
                        *m = d;
                    }
                }
            })
            .response
            .labelled_by(lc.id);
    });
}

/// Methods run beside the main one on the same splits and seeds: one checkbox per registered
/// method, its form when ticked.
fn compare_ui(ui: &mut egui::Ui, exp: &mut Experiment) {
    ui.horizontal(|ui| {
        if ui
            .button("Compare with all")
            .on_hover_text(
                "every registered method other than the one under study, with its defaults",
            )
            .clicked()
        {
            let main = exp.method.key();
            for d in Method::all() {
                if d.key() != main && !exp.compare.iter().any(|c| c.key() == d.key()) {
                    exp.compare.push(d);
                }
            }
        }
        if !exp.compare.is_empty() && ui.button("None").clicked() {
            exp.compare.clear();
        }
    });
    for d in Method::all() {
        let info = d.info();
        let at = exp.compare.iter().position(|c| c.key() == d.key());
        let mut on = at.is_some();
        if ui
            .checkbox(
                &mut on,
                format!("{} ({})", info.title, info.labels.describe()),
            )
            .on_hover_text(format!("{}\n{}", info.summary, info.paper))
            .changed()
        {
            match at {
                // unticked: every setting of this method goes
                Some(_) if !on => exp.compare.retain(|c| c.key() != d.key()),
                None if on => exp.compare.push(d.clone()),
                _ => {}
            }
        }
        // one form per setting of this method in the file (e.g. both MLP variants)
        for i in 0..exp.compare.len() {
            if exp.compare[i].key() == d.key() {
                ui.indent(format!("{}-{i}", d.key()), |ui| {
                    method_form(ui, &format!("compare{i}"), &mut exp.compare[i])
                });
            }
        }
    }
}

/// A method's parameter form, drawn from its registry entry: one widget per parameter, by kind,
/// with the parameter's help on hover; the values travel through the experiment file's own
/// serialisation, so the form holds nothing per method.
pub fn method_form(ui: &mut egui::Ui, id: &str, m: &mut Method) {
    let key = m.key();
    let info = m.info();
    ui.horizontal(|ui| {
        ui.label(info.title).on_hover_text(info.paper);
        ui.weak(info.labels.describe());
        if !m.is_default() && ui.button("Reset to defaults").clicked() {
            if let Some(d) = Method::from_key(key) {
                *m = d;
            }
        }
    });
    let Ok(mut tree) = serde_json::to_value(&*m) else {
        return;
    };
    let Some(fields) = tree.get_mut(key).and_then(|v| v.as_object_mut()) else {
        return;
    };
    let params = m.params();
    let mut groups: Vec<&str> = Vec::new();
    for p in params {
        if !groups.contains(&p.group) {
            groups.push(p.group);
        }
    }
    let mut changed = false;
    for g in groups {
        let mut grid = |ui: &mut egui::Ui| {
            egui::Grid::new(format!("{id}-{key}-{g}"))
                .num_columns(2)
                .show(ui, |ui| {
                    for p in params.iter().filter(|p| p.group == g) {
                        if let Some(v) = fields.get_mut(p.name) {
                            changed |= param_widget(ui, id, p, v);
                        }
                    }
                });
        };
        if g.is_empty() {
            grid(ui);
        } else {
            egui::CollapsingHeader::new(g)
                .id_salt(format!("{id}-{g}"))
                .default_open(!g.starts_with("Arch"))
                .show(ui, grid);
        }
    }
    if changed {
        if let Ok(new) = serde_json::from_value::<Method>(tree) {
            *m = new;
        }
    }
}

/// One parameter's label and widget; true when the value changed.
fn param_widget(
    ui: &mut egui::Ui,
    id: &str,
    p: &crate::detect::ParamInfo,
    v: &mut serde_json::Value,
) -> bool {
    use crate::detect::ParamKind;
    let l = ui.label(p.name.replace('_', " ")).on_hover_text(p.help);
    let mut changed = false;
    match p.kind {
        ParamKind::Int { min, max } => {
            let hi = i64::try_from(max).unwrap_or(i64::MAX);
            let mut x = v.as_i64().unwrap_or(min);
            if ui
                .add(egui::DragValue::new(&mut x).range(min..=hi))
                .labelled_by(l.id)
                .on_hover_text(p.help)
                .changed()
            {
                *v = serde_json::json!(x);
                changed = true;
            }
        }
        ParamKind::Float { min, max } => {
            let mut x = v.as_f64().unwrap_or(min);
            let speed = (x.abs() * 0.01).max(1e-6);
            if ui
                .add(
                    egui::DragValue::new(&mut x)
                        .range(min..=max)
                        .speed(speed)
                        .max_decimals(6),
                )
                .labelled_by(l.id)
                .on_hover_text(p.help)
                .changed()
            {
                *v = serde_json::json!(x);
                changed = true;
            }
        }
        ParamKind::Bool => {
            let mut b = v.as_bool().unwrap_or(false);
            if ui.checkbox(&mut b, "").labelled_by(l.id).changed() {
                *v = serde_json::json!(b);
                changed = true;
            }
        }
        ParamKind::IntList { .. } | ParamKind::FloatList { .. } => {
            // widths (or a sweep's grid) as text, `256, 128`: written back when the text parses
            let floats = matches!(p.kind, ParamKind::FloatList { .. });
            let cur: Vec<String> = v
                .as_array()
                .map(|a| a.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default();
            // the text being typed is kept while the field has focus (rebuilt from the value
            // otherwise), so `256, 128, 64` can be typed key by key; the value follows whenever
            // the text parses
            let buf_id = ui.make_persistent_id(("int_list", id, p.name));
            let mut text = ui
                .data_mut(|m| m.get_temp::<String>(buf_id))
                .unwrap_or_else(|| cur.join(", "));
            let r = ui
                .add(egui::TextEdit::singleline(&mut text).desired_width(120.0))
                .labelled_by(l.id)
                .on_hover_text(p.help);
            if r.changed() {
                let parts = text.split([',', ' ']).filter(|t| !t.trim().is_empty());
                let parsed: Option<serde_json::Value> = if floats {
                    parts
                        .map(|t| t.trim().parse::<f64>().ok().filter(|f| f.is_finite()))
                        .collect::<Option<Vec<f64>>>()
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::json!(l))
                } else {
                    parts
                        .map(|t| t.trim().parse::<u64>().ok())
                        .collect::<Option<Vec<u64>>>()
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::json!(l))
                };
                if let Some(list) = parsed {
                    *v = list;
                    changed = true;
                }
            }
            if r.has_focus() {
                ui.data_mut(|m| m.insert_temp(buf_id, text));
            } else {
                ui.data_mut(|m| m.remove::<String>(buf_id));
            }
        }
        ParamKind::Choice { options } => {
            let cur = v.as_str().unwrap_or("").to_string();
            egui::ComboBox::from_id_salt(format!("{id}-{}", p.name))
                .selected_text(&cur)
                .show_ui(ui, |ui| {
                    for o in options {
                        if ui.selectable_label(cur == *o, *o).clicked() && cur != *o {
                            *v = serde_json::json!(o);
                            changed = true;
                        }
                    }
                })
                .response
                .labelled_by(l.id);
        }
    }
    ui.end_row();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!(parse_seeds("0, 1,2"), Some(vec![0, 1, 2]));
        assert_eq!(parse_seeds(""), None);
        assert_eq!(parse_seeds("a"), None);
    }
}
