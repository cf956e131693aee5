//! The 2-D teaching playground: the real meta-learner on the built-in 2-D demo, one update at a
//! time — the score landscape as a heat map, the normal / seen / held-out points, the ODIN
//! perturbation arrows, and Step / Run / Pause / Reset. The engine (worker thread, stepping,
//! snapshots) is [`crate::experiment::playground`]; this panel only draws and sends clicks.

use crate::detect::Stage;
use crate::experiment::playground::{
    families, Playground, PlaygroundOptions, PlaygroundUpdate, PointRole, Scene, Snapshot,
};
use crate::experiment::InnerMode;
use egui::{Color32, TextureHandle, TextureOptions};
use egui_plot::{Arrows, Legend, MarkerShape, Plot, PlotImage, PlotPoint, Points};
use std::sync::Arc;
use std::time::Duration;

/// What the panel tells students.
const EXPLAIN: &str = "The real meta-learner, trained on the 2-D demo. Each episode has two \
stages. Inner updates teach the encoder what normal looks like: normal rows with a \
reconstruction loss (the paper) — with \"supervised inner stage\" (the authors' code) also the \
inner families' few labelled anomalies. Outer updates separate normals from a few labelled \
anomalies of the seen families, on ODIN-perturbed inputs, and tune the temperature T. The \
held-out family is never shown to the learner: watch whether the landscape turns red over it \
anyway.\n\
Background: the anomaly score 1 − p(normal) the model gives each spot (with \"stretch colours\" \
the colours span this landscape's own range: the ranking is what AUC measures). Arrows: the \
ODIN step of outer training — each point is moved by ε per coordinate in the direction that \
makes the model more sure of its current verdict (drawn longer than it is). Strong dots are \
rows the learner trains on, faint dots rows it never sees.";

/// The playground panel.
pub struct PlaygroundPanel {
    seed: u64,
    held_out: String,
    /// The inner stage as the authors' code has it (also fits the inner families' few shots)
    /// instead of the paper's (normal rows only).
    supervised_inner: bool,
    engine: Option<Playground>,
    scene: Option<Arc<Scene>>,
    snap: Option<Box<Snapshot>>,
    /// Free running (Run pressed, not paused or finished).
    running: bool,
    /// Waiting for a snapshot newer than this update (after Step, Run or a start).
    awaiting: Option<usize>,
    /// How training ended, for the status line.
    outcome: Option<String>,
    /// τ* of the finished training (the threshold line on the landscape).
    tau: Option<f64>,
    /// Why the playground could not start.
    error: Option<String>,
    /// Starts so far: part of the plot's id, so that a restart resets the view.
    generation: u64,
    texture: Option<TextureHandle>,
    /// (update, stretch) the texture shows.
    texture_of: Option<(usize, bool)>,
    /// Colours span this grid's score range instead of [0, 1].
    stretch: bool,
    show_arrows: bool,
}

impl Default for PlaygroundPanel {
    fn default() -> Self {
        Self::new()
    }
}

impl PlaygroundPanel {
    /// A panel that starts its worker the first time it is shown.
    pub fn new() -> Self {
        PlaygroundPanel {
            seed: 0,
            held_out: "Bridge".into(),
            // The teaching default is the authors'-code inner stage: with the paper's
            // normals-only inner stage the 2-D landscape barely moves (scores 0.045–0.052 over
            // the grid), so there is little to show; the checkbox switches to the paper's.
            supervised_inner: true,
            engine: None,
            scene: None,
            snap: None,
            running: false,
            awaiting: None,
            outcome: None,
            tau: None,
            error: None,
            generation: 0,
            texture: None,
            texture_of: None,
            stretch: true,
            show_arrows: true,
        }
    }

    /// (Re)starts the worker with the current seed and held-out family.
    fn restart(&mut self) {
        // Dropping the old controller stops and joins its worker (within about a second).
        self.engine = None;
        self.snap = None;
        self.running = false;
        self.outcome = None;
        self.tau = None;
        self.error = None;
        self.texture_of = None;
        self.generation += 1;
        let mut o = PlaygroundOptions {
            seed: self.seed,
            held_out: self.held_out.clone(),
            ..PlaygroundOptions::default()
        };
        if self.supervised_inner {
            o.params.inner_mode = InnerMode::SupervisedInnerFamilies;
        }
        match Playground::start_with(o) {
            Ok(p) => {
                self.scene = Some(p.scene().clone());
                self.engine = Some(p);
                self.awaiting = Some(0);
            }
            Err(e) => {
                self.scene = None;
                self.awaiting = None;
                self.error = Some(format!("{e:#}"));
            }
        }
    }

    fn poll(&mut self) {
        let Some(engine) = &self.engine else {
            return;
        };
        for u in engine.poll() {
            match u {
                PlaygroundUpdate::Probe(s) => {
                    if self.awaiting.is_some_and(|a| s.update > a) {
                        self.awaiting = None;
                    }
                    self.snap = Some(s);
                }
                PlaygroundUpdate::Finished { held_out_auc, tau } => {
                    self.tau = Some(tau);
                    self.outcome = Some(format!(
                        "finished · held-out {} test AUC-ROC {held_out_auc:.3} (τ* {tau:.3})",
                        self.held_out
                    ));
                    self.running = false;
                    self.awaiting = None;
                }
                PlaygroundUpdate::Stopped => {
                    self.outcome = Some("stopped".into());
                    self.running = false;
                    self.awaiting = None;
                }
                PlaygroundUpdate::Failed(e) => {
                    self.outcome = Some(format!("failed: {e}"));
                    self.running = false;
                    self.awaiting = None;
                }
            }
        }
    }

    /// Whether the worker can still take a Step or Run.
    fn can_advance(&self) -> bool {
        self.outcome.is_none() && self.engine.as_ref().is_some_and(Playground::is_running)
    }

    fn step(&mut self) {
        if let Some(e) = &self.engine {
            e.step();
            self.running = false;
            self.awaiting = Some(self.snap.as_ref().map_or(0, |s| s.update));
        }
    }

    /// Lets the updates flow, as the Run button does (starting the worker if it has not
    /// started yet), e.g. to show a trained landscape without clicking.
    pub fn run(&mut self) {
        if self.engine.is_none() && self.error.is_none() {
            self.restart();
        }
        if let Some(e) = &self.engine {
            e.run();
            self.running = true;
        }
    }

    /// Whether the worker is computing towards a snapshot the panel is waiting for (a Step, a
    /// free run, or the first snapshot).
    pub fn busy(&self) -> bool {
        self.engine.as_ref().is_some_and(Playground::is_running)
            && (self.running || self.awaiting.is_some())
    }

    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        if self.engine.is_none() && self.error.is_none() && self.generation == 0 {
            self.restart();
        }
        self.poll();

        ui.heading("2-D playground — does the learner catch a family it never saw?");
        self.toolbar(ui);
        self.status(ui);
        egui::CollapsingHeader::new("What am I looking at?")
            .default_open(true)
            .show(ui, |ui| {
                ui.label(EXPLAIN);
            });
        self.colour_legend(ui);
        self.plot(ui);

        if self.busy() {
            ui.ctx().request_repaint_after(Duration::from_millis(30));
        }
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let can = self.can_advance();
            if ui
                .add_enabled(can, egui::Button::new("Step"))
                .on_hover_text("let the learner make exactly one more update (inner or outer)")
                .clicked()
            {
                self.step();
            }
            if self.running {
                if ui
                    .add_enabled(can, egui::Button::new("Pause"))
                    .on_hover_text("hold after the current update")
                    .clicked()
                {
                    if let Some(e) = &self.engine {
                        e.pause();
                    }
                    self.running = false;
                }
            } else if ui
                .add_enabled(can, egui::Button::new("Run"))
                .on_hover_text("let the updates flow (Pause or Step to hold)")
                .clicked()
            {
                self.run();
            }
            if ui
                .button("Reset")
                .on_hover_text("a fresh, untrained model with the seed and family chosen here")
                .clicked()
            {
                self.restart();
            }
            ui.separator();
            let mut restart = false;
            egui::ComboBox::from_label("held out")
                .selected_text(self.held_out.as_str())
                .show_ui(ui, |ui| {
                    for f in families() {
                        restart |= ui
                            .selectable_value(&mut self.held_out, f.to_string(), f)
                            .changed();
                    }
                });
            let label = ui.label("seed");
            let r = ui
                .add(egui::DragValue::new(&mut self.seed).range(0..=9_999))
                .labelled_by(label.id)
                .on_hover_text("seed of the splits, the episodes and the model's weights");
            if r.drag_stopped() || (r.changed() && !r.dragged()) {
                restart = true;
            }
            restart |= ui
                .checkbox(&mut self.supervised_inner, "supervised inner stage")
                .on_hover_text(
                    "off: the paper's inner stage (normal rows only); on: the authors' code \
                     (the inner stage also fits the inner families' few labelled anomalies)",
                )
                .changed();
            if restart {
                self.restart();
            }
            ui.separator();
            ui.checkbox(&mut self.show_arrows, "ODIN arrows");
            ui.checkbox(&mut self.stretch, "stretch colours")
                .on_hover_text(
                    "colours span this landscape's lowest to highest score instead of 0 to 1",
                );
        });
    }

    fn status(&self, ui: &mut egui::Ui) {
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
        let line = match (&self.snap, &self.outcome) {
            (Some(s), Some(o)) => format!("{} · {o}", s.status()),
            (Some(s), None) => s.status(),
            (None, Some(o)) => o.clone(),
            (None, None) => "starting…".into(),
        };
        ui.label(egui::RichText::new(line).strong());
        if let Some(s) = &self.snap {
            let what = match s.stage {
                Stage::Pre => "next: the inner stage",
                Stage::Inner => "inner: learning what normal looks like",
                Stage::Outer => "outer: separating normals from the seen families' few shots",
                Stage::Pretrain => "stage 0: pre-training the encoder as an autoencoder",
                Stage::Final => "trained",
            };
            let list = |v: &[String]| {
                if v.is_empty() {
                    "–".to_string()
                } else {
                    v.join(", ")
                }
            };
            let inner = if self.supervised_inner {
                "normals and few shots"
            } else {
                "normal rows only"
            };
            ui.label(format!(
                "{what} · this episode: inner families {} ({inner}) · outer families {}",
                list(&s.inner_families),
                list(&s.outer_families)
            ));
        }
    }

    fn colour_legend(&self, ui: &mut egui::Ui) {
        let (lo, hi) = self.colour_range();
        ui.horizontal(|ui| {
            ui.label(format!("score: low {lo:.3}"));
            let (rect, _) = ui.allocate_exact_size(egui::vec2(180.0, 12.0), egui::Sense::hover());
            let n = 36;
            let w = rect.width() / n as f32;
            for i in 0..n {
                let r = egui::Rect::from_min_size(
                    rect.min + egui::vec2(i as f32 * w, 0.0),
                    egui::vec2(w + 0.5, rect.height()),
                );
                ui.painter()
                    .rect_filled(r, 0.0, ramp((i as f64 + 0.5) / n as f64));
            }
            ui.label(format!("high {hi:.3} (more anomalous)"));
        });
    }

    /// The score range the colours span.
    fn colour_range(&self) -> (f64, f64) {
        match (&self.snap, self.stretch) {
            (Some(s), true) => {
                let lo = s.scores.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = s.scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() && hi.is_finite() && hi > lo {
                    (lo, hi)
                } else {
                    (0.0, 1.0)
                }
            }
            _ => (0.0, 1.0),
        }
    }

    /// Uploads the landscape of the current snapshot when it changed.
    fn update_texture(&mut self, ctx: &egui::Context) {
        let (Some(scene), Some(snap)) = (&self.scene, &self.snap) else {
            return;
        };
        let key = (snap.update, self.stretch);
        if self.texture.is_some() && self.texture_of == Some(key) {
            return;
        }
        let g = scene.grid;
        if snap.scores.len() != g.nx * g.ny {
            return;
        }
        let (lo, hi) = self.colour_range();
        let span = (hi - lo).max(1e-12);
        // Image rows go top-down; grid rows go bottom-up.
        let pixels: Vec<Color32> = (0..g.ny)
            .rev()
            .flat_map(|iy| (0..g.nx).map(move |ix| iy * g.nx + ix))
            .map(|i| ramp((snap.scores[i] - lo) / span))
            .collect();
        let image = egui::ColorImage::new([g.nx, g.ny], pixels);
        match &mut self.texture {
            Some(t) => t.set(image, TextureOptions::LINEAR),
            None => {
                self.texture = Some(ctx.load_texture(
                    "heldout-playground-landscape",
                    image,
                    TextureOptions::LINEAR,
                ))
            }
        }
        self.texture_of = Some(key);
    }

    fn plot(&mut self, ui: &mut egui::Ui) {
        self.update_texture(ui.ctx());
        let Some(scene) = self.scene.clone() else {
            return;
        };
        let g = scene.grid;
        let texture = self
            .texture
            .as_ref()
            .filter(|_| self.snap.is_some())
            .map(|t| t.id());
        let snap = self.snap.as_deref();

        // Points grouped by family and whether the learner trains on them.
        let mut groups: Vec<(usize, bool, PointRole, Vec<[f64; 2]>)> = Vec::new();
        for p in &scene.points {
            let xy = [p.x as f64, p.y as f64];
            match groups
                .iter_mut()
                .find(|(f, t, _, _)| *f == p.family && *t == p.trained_on)
            {
                Some(gr) => gr.3.push(xy),
                None => groups.push((p.family, p.trained_on, p.role, vec![xy])),
            }
        }
        // Normal first, then seen families, the held-out family on top.
        let rank = |r: PointRole| match r {
            PointRole::Normal => 0,
            PointRole::Seen => 1,
            PointRole::HeldOut => 2,
        };
        groups.sort_by_key(|(f, t, r, _)| (rank(*r), *f, *t));

        // ODIN arrows, drawn longer than they are so that they can be seen.
        let arrows = snap
            .filter(|_| self.show_arrows)
            .filter(|s| s.arrow_to.len() == scene.arrow_from.len() && !s.arrow_to.is_empty())
            .map(|s| {
                let longest = scene
                    .arrow_from
                    .iter()
                    .zip(&s.arrow_to)
                    .map(|(a, b)| ((b[0] - a[0]) as f64).hypot((b[1] - a[1]) as f64))
                    .fold(0.0, f64::max);
                let factor = magnification(longest, g.x_max - g.x_min);
                let (from, to): (Vec<[f64; 2]>, Vec<[f64; 2]>) = scene
                    .arrow_from
                    .iter()
                    .zip(&s.arrow_to)
                    .map(|(a, b)| {
                        let a = [a[0] as f64, a[1] as f64];
                        let d = [(b[0] as f64 - a[0]) * factor, (b[1] as f64 - a[1]) * factor];
                        (a, [a[0] + d[0], a[1] + d[1]])
                    })
                    .unzip();
                (factor, from, to)
            });

        let scores = snap.map(|s| s.scores.clone());
        // the threshold line: where the landscape crosses τ* once training has chosen it
        let boundary = match (snap, self.tau) {
            (Some(s), Some(t)) => {
                let pts = g.threshold_crossings(&s.scores, t);
                (!pts.is_empty()).then_some(pts)
            }
            _ => None,
        };
        let held_out = scene.held_out.clone();
        let names = scene.families.clone();
        let response = Plot::new(("heldout-playground", self.generation))
            .legend(Legend::default())
            .data_aspect(1.0)
            .include_x(g.x_min)
            .include_x(g.x_max)
            .include_y(g.y_min)
            .include_y(g.y_max)
            .x_axis_label("x (scaled)")
            .y_axis_label("y (scaled)")
            .show(ui, |plot_ui| {
                if let Some(id) = texture {
                    plot_ui.image(
                        PlotImage::new(
                            "score landscape",
                            id,
                            PlotPoint::new((g.x_min + g.x_max) / 2.0, (g.y_min + g.y_max) / 2.0),
                            egui::vec2((g.x_max - g.x_min) as f32, (g.y_max - g.y_min) as f32),
                        )
                        .allow_hover(false),
                    );
                }
                for (f, trained, role, xy) in groups {
                    let fname = names.get(f).cloned().unwrap_or_default();
                    let (name, colour, shape, radius) = match role {
                        PointRole::Normal => (fname.clone(), NORMAL, MarkerShape::Circle, 1.8),
                        PointRole::Seen => (
                            format!("{fname} (seen, few-shot)"),
                            family_colour(&fname),
                            MarkerShape::Circle,
                            1.8,
                        ),
                        PointRole::HeldOut => (
                            format!("{held_out} (held out, never seen)"),
                            HELD_OUT,
                            MarkerShape::Diamond,
                            2.8,
                        ),
                    };
                    let (colour, radius) = if trained || role == PointRole::HeldOut {
                        (colour, radius)
                    } else {
                        (colour.gamma_multiply(0.35), radius * 0.8)
                    };
                    plot_ui.points(
                        Points::new(name, xy)
                            .color(colour)
                            .shape(shape)
                            .radius(radius)
                            .filled(true),
                    );
                }
                if let Some(line) = boundary {
                    plot_ui.points(
                        Points::new("τ* (the decision threshold: flagged where s ≥ τ*)", line)
                            .color(Color32::BLACK)
                            .radius(1.2)
                            .filled(true),
                    );
                }
                if let Some((factor, from, to)) = arrows {
                    plot_ui.arrows(
                        Arrows::new(format!("ODIN step (drawn {factor}× longer)"), from, to)
                            .color(ARROW)
                            .tip_length(5.0),
                    );
                }
                let hovered = plot_ui.response().hovered();
                plot_ui.pointer_coordinate().filter(|_| hovered)
            });
        // The score under the cursor.
        let under = response.inner.and_then(|p| {
            let s = scores.as_ref()?;
            if p.x < g.x_min || p.x > g.x_max || p.y < g.y_min || p.y > g.y_max {
                return None;
            }
            let (w, h) = g.cell();
            let ix = (((p.x - g.x_min) / w) as usize).min(g.nx - 1);
            let iy = (((p.y - g.y_min) / h) as usize).min(g.ny - 1);
            s.get(iy * g.nx + ix).map(|v| (p, *v))
        });
        if let Some((p, v)) = under {
            response
                .response
                .on_hover_text_at_pointer(format!("({:.2}, {:.2}) · score {v:.3}", p.x, p.y));
        }
    }
}

const NORMAL: Color32 = Color32::from_rgb(25, 50, 130);
const HELD_OUT: Color32 = Color32::from_rgb(15, 15, 15);
const ARROW: Color32 = Color32::from_rgb(60, 60, 60);

/// A colour per demo family (stable whichever is held out).
fn family_colour(name: &str) -> Color32 {
    match name {
        "Ring" => Color32::from_rgb(0, 130, 60),
        "Cluster" => Color32::from_rgb(130, 40, 170),
        "Bridge" => Color32::from_rgb(150, 90, 0),
        "Halo" => Color32::from_rgb(0, 140, 160),
        _ => Color32::from_rgb(90, 90, 90),
    }
}

/// The landscape's colour ramp, `t` in [0, 1]: light blue (low score, normal-looking) through
/// cream to red (high score, more anomalous). Light, so that the dots stay visible.
fn ramp(t: f64) -> Color32 {
    const STOPS: [(f64, [f64; 3]); 4] = [
        (0.0, [214.0, 230.0, 246.0]),
        (0.5, [255.0, 252.0, 232.0]),
        (0.75, [253.0, 180.0, 120.0]),
        (1.0, [222.0, 60.0, 50.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut k = 1;
    while k < STOPS.len() - 1 && t > STOPS[k].0 {
        k += 1;
    }
    let (t0, c0) = STOPS[k - 1];
    let (t1, c1) = STOPS[k];
    let u = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    let c = |i: usize| (c0[i] + (c1[i] - c0[i]) * u).round() as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

/// A round factor (1, 2 or 5 × 10ᵏ) that draws the longest arrow at about 4 % of `width`.
fn magnification(longest: f64, width: f64) -> f64 {
    if longest <= 0.0 || !longest.is_finite() || width <= 0.0 {
        return 1.0;
    }
    let want = (0.04 * width / longest).max(1.0);
    let p = 10f64.powi(want.log10().floor() as i32);
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .take_while(|f| *f <= want)
        .last()
        .unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_goes_from_light_blue_to_red_and_magnification_is_round() {
        assert_eq!(ramp(0.0), Color32::from_rgb(214, 230, 246));
        assert_eq!(ramp(1.0), Color32::from_rgb(222, 60, 50));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
        assert_eq!(magnification(0.003, 3.0), 20.0);
        assert_eq!(magnification(0.0, 3.0), 1.0);
        assert_eq!(magnification(1.0, 3.0), 1.0);
    }
}
