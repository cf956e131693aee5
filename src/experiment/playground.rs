//! The 2-D teaching playground's engine (no egui): the real meta-learner
//! ([`crate::detect::meta::MetaLearner`]) trained on the built-in 2-D demo with one family held
//! out, one update at a time.
//!
//! [`Playground::start`] builds the scene synchronously — the demo table (data seed
//! [`DATA_SEED`], so the points stay put when the seed changes), the protocol's splits, roles and
//! scaler for the chosen held-out family, and a grid over the data in *scaled* coordinates — and
//! then trains on a worker thread named `heldout-playground`. Training runs through
//! [`crate::detect::Probe`]: after every update (and at the start of every episode) the model
//! scores the grid and moves a few rows by the training-time ODIN step, and the worker sends that
//! as a [`Snapshot`] and **waits** for the controller: [`Playground::step`] lets exactly one more
//! update happen, [`Playground::run`] lets them flow (with a short pause between them so the
//! landscape can be watched), [`Playground::pause`] holds again. Every wait polls the stop flag,
//! so [`Playground::stop`] (and dropping the controller) returns within about a second.
//!
//! The probe draws no training randomness, so the playground trains exactly as a headless run of
//! the same settings.

use super::config::{DataSpec, Device, Experiment, MetaLearnerParams, Method, Protocol};
use super::plan::{load_data, prepare_rotation};
use crate::data::demo::DemoKind;
use crate::data::{FamilyId, ScalerKind};
use crate::detect::meta::MetaLearner;
use crate::detect::{
    Block, CheckpointPools, Ctx, DetectError, Detector, Event, Probe, Stage, TrainView,
};
use crate::eval;
use crate::rng::SplitMix64;
use crate::split::{split_with, EpisodeSampler, EpisodeSpec, FewShot, HeldOut, PoolSpec, Roles};
use anyhow::{Context, Result};
use crossbeam_channel::{
    bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The demo's data seed: the points are the same whatever the training seed.
pub const DATA_SEED: u64 = 0;
/// How often a waiting worker looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The anomaly families of the 2-D demo, any of which can be held out.
pub fn families() -> Vec<&'static str> {
    DemoKind::TwoD
        .describe()
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| *f != "Normal")
        .collect()
}

/// The playground's settings.
#[derive(Debug, Clone)]
pub struct PlaygroundOptions {
    /// Seed of splits, episodes and model weights.
    pub seed: u64,
    /// The family never shown to the learner (one of [`families`]).
    pub held_out: String,
    /// Episodes to train.
    pub episodes: usize,
    /// Grid cells per axis.
    pub grid: usize,
    /// Few-shot anomalies per outer family.
    pub shots: usize,
    /// Pause between updates while running freely.
    pub run_delay: Duration,
    /// The meta-learner's settings (small, so that one update takes milliseconds).
    pub params: MetaLearnerParams,
}

impl Default for PlaygroundOptions {
    fn default() -> Self {
        PlaygroundOptions {
            seed: 0,
            held_out: "Bridge".into(),
            episodes: 6,
            grid: 48,
            shots: 50,
            run_delay: Duration::from_millis(60),
            params: MetaLearnerParams {
                enc_hidden: 64,
                enc_depth: 2,
                embed_dim: 32,
                dec_hidden: 32,
                inner_epochs: 1,
                inner_per_family: 512,
                inner_batch: 128,
                outer_epochs: 2,
                outer_batch: 64,
                ..MetaLearnerParams::default()
            },
        }
    }
}

/// What a point is to the learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointRole {
    Normal,
    /// An anomaly family the learner gets a few labelled rows of.
    Seen,
    /// The family it never sees.
    HeldOut,
}

/// One row of the demo, in scaled coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenePoint {
    pub x: f32,
    pub y: f32,
    /// Index into [`Scene::families`].
    pub family: usize,
    pub role: PointRole,
    /// Whether the learner trains on this row (normal training rows and few-shot anomalies).
    pub trained_on: bool,
}

/// The grid the score landscape is computed on: `nx × ny` cells over `[x_min, x_max] ×
/// [y_min, y_max]`, scored at their centres, row by row from the bottom (`y_min`) up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub x_min: f64,
    pub x_max: f64,
    pub y_min: f64,
    pub y_max: f64,
    pub nx: usize,
    pub ny: usize,
}

impl Grid {
    /// Cell width and height.
    pub fn cell(&self) -> (f64, f64) {
        (
            (self.x_max - self.x_min) / self.nx.max(1) as f64,
            (self.y_max - self.y_min) / self.ny.max(1) as f64,
        )
    }

    /// Centre of cell `i` (row-major from the bottom row).
    pub fn centre(&self, i: usize) -> [f64; 2] {
        let (w, h) = self.cell();
        let (ix, iy) = (i % self.nx.max(1), i / self.nx.max(1));
        [
            self.x_min + (ix as f64 + 0.5) * w,
            self.y_min + (iy as f64 + 0.5) * h,
        ]
    }

    /// All cell centres, row-major, as `f32` rows of two columns.
    fn points(&self) -> Vec<f32> {
        (0..self.nx * self.ny)
            .flat_map(|i| self.centre(i).map(|v| v as f32))
            .collect()
    }

    /// Where the landscape `scores` (one per cell centre, row-major from the bottom row)
    /// crosses the threshold `tau`: on every edge between two neighbouring cell centres whose
    /// scores lie on either side of τ (one ≥ τ, the other < τ, as the decision `s ≥ τ` splits
    /// them), the point found by linear interpolation. Drawn as a dotted line, these points trace
    /// the decision boundary. Empty when the sizes disagree or τ is not finite.
    pub fn threshold_crossings(&self, scores: &[f64], tau: f64) -> Vec<[f64; 2]> {
        let (nx, ny) = (self.nx, self.ny);
        if scores.len() != nx * ny || !tau.is_finite() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut edge = |a: usize, b: usize| {
            let (sa, sb) = (scores[a], scores[b]);
            if !(sa.is_finite() && sb.is_finite()) || (sa >= tau) == (sb >= tau) {
                return;
            }
            let t = ((tau - sa) / (sb - sa)).clamp(0.0, 1.0);
            let (pa, pb) = (self.centre(a), self.centre(b));
            out.push([pa[0] + t * (pb[0] - pa[0]), pa[1] + t * (pb[1] - pa[1])]);
        };
        for iy in 0..ny {
            for ix in 0..nx {
                let i = iy * nx + ix;
                if ix + 1 < nx {
                    edge(i, i + 1);
                }
                if iy + 1 < ny {
                    edge(i, i + nx);
                }
            }
        }
        out
    }
}

/// What stays fixed while the playground trains.
#[derive(Debug, Clone)]
pub struct Scene {
    pub seed: u64,
    pub held_out: String,
    /// Family names (the demo's, sorted); [`ScenePoint::family`] indexes them.
    pub families: Vec<String>,
    /// Seen anomaly families (names).
    pub seen: Vec<String>,
    pub points: Vec<ScenePoint>,
    pub grid: Grid,
    /// Where each ODIN arrow starts (a few normal training rows, few-shot rows of each seen
    /// family and held-out rows); [`Snapshot::arrow_to`] has where each ends.
    pub arrow_from: Vec<[f32; 2]>,
    pub episodes: usize,
    /// ε of the ODIN step (scaled units) and its number of sub-steps in training.
    pub epsilon: f64,
    pub odin_steps: usize,
}

/// The model after one update.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Updates seen so far, counting from 1 (the start of episode 1).
    pub update: usize,
    pub episode: usize,
    pub episodes: usize,
    pub stage: Stage,
    /// The update within its stage (1-based; 0 at the start of an episode) and the stage's
    /// updates.
    pub step: usize,
    pub steps: usize,
    /// The loss of this update (`None` at the start of an episode).
    pub loss: Option<f64>,
    pub temperature: f64,
    /// Score of each grid cell (higher = more anomalous), as [`Grid::centre`] orders them.
    pub scores: Vec<f64>,
    /// Where each arrow of [`Scene::arrow_from`] ends: the row after the training-time ODIN step.
    pub arrow_to: Vec<[f32; 2]>,
    /// This episode's inner-task families and outer families (names).
    pub inner_families: Vec<String>,
    pub outer_families: Vec<String>,
}

impl Snapshot {
    /// One line for people: "episode 2/6 · outer step 5/12 · loss 0.431 · T 1.08".
    pub fn status(&self) -> String {
        let what = match self.stage {
            Stage::Pre => "start of episode".to_string(),
            Stage::Inner => format!("inner step {}/{}", self.step, self.steps),
            Stage::Outer => format!("outer step {}/{}", self.step, self.steps),
            Stage::Pretrain => format!("stage-0 step {}/{}", self.step, self.steps),
            Stage::Final => "trained".to_string(),
        };
        let loss = self
            .loss
            .map(|l| format!(" · loss {l:.3}"))
            .unwrap_or_default();
        format!(
            "episode {}/{} · {what}{loss} · T {:.2}",
            self.episode, self.episodes, self.temperature
        )
    }
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum PlaygroundUpdate {
    /// The model after one more update; the worker now waits for [`Playground::step`] or
    /// [`Playground::run`].
    Probe(Box<Snapshot>),
    /// Training finished: the held-out family's test AUC-ROC and the threshold τ*.
    Finished { held_out_auc: f64, tau: f64 },
    /// Stopped on request.
    Stopped,
    /// Training failed (e.g. a NaN loss).
    Failed(String),
}

#[derive(Debug, Clone, Copy)]
enum Command {
    Step,
    Run(Duration),
    Pause,
}

/// The controller: owns the worker and talks to it over bounded channels.
pub struct Playground {
    scene: Arc<Scene>,
    commands: Sender<Command>,
    updates: Receiver<PlaygroundUpdate>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    run_delay: Duration,
}

impl Playground {
    /// Starts the playground with the default settings; the worker computes the first snapshot
    /// (the untrained model) and waits.
    pub fn start(seed: u64, held_out: &str) -> Result<Self> {
        Self::start_with(PlaygroundOptions {
            seed,
            held_out: held_out.to_string(),
            ..PlaygroundOptions::default()
        })
    }

    /// Starts the playground with `o`.
    pub fn start_with(o: PlaygroundOptions) -> Result<Self> {
        let (scene, job) = build(&o)?;
        let scene = Arc::new(scene);
        let (cmd_tx, cmd_rx) = bounded::<Command>(64);
        let (up_tx, up_rx) = bounded::<PlaygroundUpdate>(256);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let stop = stop.clone();
            let scene = scene.clone();
            std::thread::Builder::new()
                .name("heldout-playground".into())
                .spawn(move || work(job, &scene, &cmd_rx, &up_tx, &stop))
                .context("cannot start the playground's worker thread")?
        };
        Ok(Playground {
            scene,
            commands: cmd_tx,
            updates: up_rx,
            stop,
            worker: Some(worker),
            run_delay: o.run_delay,
        })
    }

    /// The fixed part: points, grid, arrow starts.
    pub fn scene(&self) -> &Arc<Scene> {
        &self.scene
    }

    /// Lets exactly one more update happen (and pauses free running).
    pub fn step(&self) {
        let _ = self.commands.try_send(Command::Step);
    }

    /// Lets updates flow, with the options' pause between them.
    pub fn run(&self) {
        self.run_with_delay(self.run_delay);
    }

    /// Lets updates flow with `delay` between them.
    pub fn run_with_delay(&self, delay: Duration) {
        let _ = self.commands.try_send(Command::Run(delay));
    }

    /// Holds after the next update (drops pending steps).
    pub fn pause(&self) {
        let _ = self.commands.try_send(Command::Pause);
    }

    /// What the worker reported since the last call; never blocks.
    pub fn poll(&self) -> Vec<PlaygroundUpdate> {
        self.updates.try_iter().collect()
    }

    /// Waits up to `timeout` for the next report (for tests and headless use).
    pub fn wait(&self, timeout: Duration) -> Option<PlaygroundUpdate> {
        self.updates.recv_timeout(timeout).ok()
    }

    /// Whether the worker is still alive (waiting or training).
    pub fn is_running(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| !w.is_finished())
    }

    /// Stops the worker and waits for it (within about a second).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the worker takes: the model, its data and the held-out test block.
struct Job {
    model: MetaLearner,
    view: TrainView,
    probe: Probe,
    test: Block,
    seed: u64,
}

fn build(o: &PlaygroundOptions) -> Result<(Scene, Job)> {
    if !families().contains(&o.held_out.as_str()) {
        anyhow::bail!(
            "held-out family '{}': the 2-D demo's anomaly families are {}",
            o.held_out,
            families().join(", ")
        );
    }
    let exp = Experiment {
        name: "playground".into(),
        data: DataSpec::Demo {
            kind: DemoKind::TwoD,
            seed: DATA_SEED,
        },
        protocol: Protocol::LofoBalanced,
        roles: Roles {
            normal: vec!["Normal".into()],
            held_out: HeldOut::Fixed(vec![o.held_out.clone()]),
            few_shot: FewShot::All,
            ignored: vec![],
        },
        split: Default::default(),
        pools: PoolSpec::default(),
        scaler: ScalerKind::Robust595,
        episodes: EpisodeSpec {
            count: o.episodes.max(1),
            shots: o.shots.max(1),
            ..EpisodeSpec::default()
        },
        method: Method::MetaLearner(o.params.clone()),
        compare: vec![],
        tau_policy: crate::eval::ThresholdPolicy::defaults(),
        seeds: vec![o.seed],
        device: Device::Cpu,
        output: "runs".into(),
    }
    // the same checks as any experiment file (a width or count out of range is refused here)
    .checked(
        std::path::Path::new("playground"),
        std::path::Path::new("."),
    )?;
    let table = load_data(&exp, exp.base())?;
    let d = table.n_features;
    let roles = exp.roles.resolve(&table).map_err(anyhow::Error::msg)?;
    let rot = roles
        .rotations
        .first()
        .context("the roles give no rotation")?;
    let splits = split_with(&table, o.seed, &exp.split);
    let (task, scaler, priority) =
        prepare_rotation(&exp, &table, &splits, &roles.normal, rot, o.seed)?;
    let scaled = |rows: &[usize]| scaler.transform(&table.features, rows);

    // The points, their roles and whether the learner trains on them.
    let mut trained = vec![false; table.n_rows];
    for &r in task
        .normal_train
        .iter()
        .chain(task.few_shot.iter().flat_map(|(_, r)| r))
    {
        trained[r] = true;
    }
    let all: Vec<usize> = (0..table.n_rows).collect();
    let xy = scaled(&all);
    let role = |f: FamilyId| {
        if roles.normal.contains(&f) {
            PointRole::Normal
        } else if rot.held_out.contains(&f) {
            PointRole::HeldOut
        } else {
            PointRole::Seen
        }
    };
    let points: Vec<ScenePoint> = all
        .iter()
        .map(|&r| ScenePoint {
            x: xy[r * d],
            y: xy[r * d + 1],
            family: table.family[r] as usize,
            role: role(table.family[r]),
            trained_on: trained[r],
        })
        .collect();

    // The grid: the points' bounding box plus 8 % on each side.
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &points {
        x0 = x0.min(p.x as f64);
        x1 = x1.max(p.x as f64);
        y0 = y0.min(p.y as f64);
        y1 = y1.max(p.y as f64);
    }
    let (mx, my) = (0.08 * (x1 - x0).max(1e-3), 0.08 * (y1 - y0).max(1e-3));
    let n = o.grid.max(2);
    let grid = Grid {
        x_min: x0 - mx,
        x_max: x1 + mx,
        y_min: y0 - my,
        y_max: y1 + my,
        nx: n,
        ny: n,
    };

    // Arrow rows: a few normal training rows, few-shot rows of each seen family, held-out rows.
    let mut arrow_rows: Vec<usize> = task.normal_train.iter().copied().take(12).collect();
    for (_, r) in &task.few_shot {
        arrow_rows.extend(r.iter().take(6));
    }
    for (_, pool) in &task.test {
        arrow_rows.extend(
            pool.rows
                .iter()
                .zip(&pool.label)
                .filter(|(_, &l)| l == 1)
                .map(|(&r, _)| r)
                .take(6),
        );
    }
    let arrows = scaled(&arrow_rows);
    let arrow_from = arrows.chunks_exact(d).map(|r| [r[0], r[1]]).collect();

    let name = |f: FamilyId| table.families[f as usize].clone();
    let available: Vec<usize> = task.few_shot.iter().map(|(_, r)| r.len()).collect();
    let view = TrainView {
        d,
        normals: scaled(&task.normal_train),
        few_shot: task.few_shot.iter().map(|(f, r)| (*f, scaled(r))).collect(),
        seen_train: Vec::new(),
        val: Block {
            x: scaled(&task.val_pool.rows),
            y: task.val_pool.label.clone(),
        },
        val_family: task.val_pool.family.clone(),
        checkpoint: CheckpointPools::from_pools(&task.checkpoint, &|rows: &[usize]| scaled(rows)),
        episodes: EpisodeSampler::new(&exp.episodes, &rot.seen, &available, &priority, o.seed),
        n_episodes: exp.episodes.count,
        family_names: table.families.clone(),
    };
    let mut test = Block::default();
    for (_, pool) in &task.test {
        test.x.extend(scaled(&pool.rows));
        test.y.extend(&pool.label);
    }
    let model = MetaLearner::new(o.params.clone(), d, o.seed, &candle_core::Device::Cpu)?;
    let scene = Scene {
        seed: o.seed,
        held_out: o.held_out.clone(),
        families: table.families.clone(),
        seen: rot.seen.iter().map(|&f| name(f)).collect(),
        points,
        grid,
        arrow_from,
        episodes: exp.episodes.count,
        epsilon: o.params.epsilon,
        odin_steps: o.params.odin_steps_train,
    };
    let job = Job {
        model,
        view,
        probe: Probe {
            points: grid.points(),
            arrows,
        },
        test,
        seed: o.seed,
    };
    Ok((scene, job))
}

/// Sends `u`, waiting while the channel is full unless asked to stop. Returns false when the
/// controller is gone.
fn send(tx: &Sender<PlaygroundUpdate>, stop: &AtomicBool, mut u: PlaygroundUpdate) -> bool {
    loop {
        match tx.send_timeout(u, POLL) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(back)) => {
                if stop.load(Ordering::Relaxed) {
                    return true;
                }
                u = back;
            }
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

/// Whether the worker may go on after a snapshot, and how.
enum Mode {
    /// Held; `credits` updates may still happen.
    Paused {
        credits: usize,
    },
    Running(Duration),
}

impl Mode {
    fn apply(&mut self, c: Command) {
        *self = match (c, &*self) {
            (Command::Step, Mode::Paused { credits }) => Mode::Paused {
                credits: credits + 1,
            },
            (Command::Step, Mode::Running(_)) => Mode::Paused { credits: 1 },
            (Command::Run(d), _) => Mode::Running(d),
            (Command::Pause, _) => Mode::Paused { credits: 0 },
        };
    }

    /// Blocks until the next update may happen, the stop flag is set or the controller is gone
    /// (which sets the flag).
    fn gate(&mut self, rx: &Receiver<Command>, stop: &AtomicBool) {
        let started = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // Commands sent meanwhile count first (a Pause while running).
            loop {
                match rx.try_recv() {
                    Ok(c) => self.apply(c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
            let wait = match *self {
                Mode::Paused { credits } if credits > 0 => {
                    *self = Mode::Paused {
                        credits: credits - 1,
                    };
                    return;
                }
                Mode::Paused { .. } => POLL,
                Mode::Running(d) => {
                    let left = d.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return;
                    }
                    left.min(POLL)
                }
            };
            match rx.recv_timeout(wait) {
                Ok(c) => self.apply(c),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// The worker: trains, reporting a snapshot after every update and waiting at each.
fn work(
    job: Job,
    scene: &Scene,
    rx: &Receiver<Command>,
    tx: &Sender<PlaygroundUpdate>,
    stop: &AtomicBool,
) {
    let Job {
        mut model,
        mut view,
        probe,
        test,
        seed,
    } = job;
    let names = view.family_names.clone();
    let names_of = |fs: &[FamilyId]| -> Vec<String> {
        fs.iter()
            .map(|&f| names.get(f as usize).cloned().unwrap_or_default())
            .collect()
    };
    let mut mode = Mode::Paused { credits: 0 };
    let mut update = 0usize;
    let mut loss: Option<f64> = None;
    let (mut inner, mut outer) = (Vec::new(), Vec::new());
    let episodes = scene.episodes;
    let mut emit = |e: Event| match e {
        Event::Episode(ep) => {
            inner = names_of(&ep.inner);
            outer = names_of(&ep.outer);
        }
        Event::Progress { loss: l, .. } => loss = Some(l),
        Event::Probe {
            episode,
            stage,
            step,
            steps,
            scores,
            perturbed,
            temperature,
        } => {
            update += 1;
            let snap = Snapshot {
                update,
                episode,
                episodes,
                stage,
                step,
                steps,
                loss: if stage == Stage::Pre { None } else { loss },
                temperature,
                scores,
                arrow_to: perturbed.chunks_exact(2).map(|r| [r[0], r[1]]).collect(),
                inner_families: inner.clone(),
                outer_families: outer.clone(),
            };
            if !send(tx, stop, PlaygroundUpdate::Probe(Box::new(snap))) {
                stop.store(true, Ordering::Relaxed);
                return;
            }
            mode.gate(rx, stop);
        }
        _ => {}
    };
    let fit = {
        let mut ctx = Ctx {
            emit: &mut emit,
            stop,
            rng: SplitMix64::new(seed.wrapping_add(40)),
            device: candle_core::Device::Cpu,
            probe: Some(probe),
        };
        model.fit(&mut view, &mut ctx)
    };
    let last = match fit {
        Ok(()) => {
            let labels: Vec<bool> = test.y.iter().map(|&y| y == 1).collect();
            match model
                .score(&test.x)
                .map_err(|e| e.to_string())
                .and_then(|s| eval::roc_auc(&labels, &s).map_err(|e| e.to_string()))
            {
                Ok(auc) => PlaygroundUpdate::Finished {
                    held_out_auc: auc,
                    tau: model.threshold().tau,
                },
                Err(e) => PlaygroundUpdate::Failed(format!("scoring the held-out family: {e}")),
            }
        }
        Err(DetectError::Stopped) => PlaygroundUpdate::Stopped,
        Err(e) => PlaygroundUpdate::Failed(e.to_string()),
    };
    // After a stop the controller may be gone: then a failed send is fine.
    if stop.load(Ordering::Relaxed) {
        let _ = tx.try_send(last);
    } else {
        send(tx, stop, last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crossings of a radial landscape s = |p| at τ = 1 lie on the unit circle (to within
    /// the interpolation error of one cell), all around it.
    #[test]
    fn threshold_crossings_trace_the_decision_boundary() {
        let g = Grid {
            x_min: -2.0,
            x_max: 2.0,
            y_min: -2.0,
            y_max: 2.0,
            nx: 80,
            ny: 80,
        };
        let scores: Vec<f64> = (0..g.nx * g.ny)
            .map(|i| {
                let c = g.centre(i);
                c[0].hypot(c[1])
            })
            .collect();
        let pts = g.threshold_crossings(&scores, 1.0);
        assert!(pts.len() > 100, "{}", pts.len());
        let (w, _) = g.cell();
        for p in &pts {
            assert!((p[0].hypot(p[1]) - 1.0).abs() < w * w, "{p:?}");
        }
        // all four quadrants
        for (sx, sy) in [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)] {
            assert!(pts.iter().any(|p| p[0] * sx > 0.3 && p[1] * sy > 0.3));
        }
        // τ beyond every score: no boundary; a wrong size or NaN τ: none
        assert!(g.threshold_crossings(&scores, 10.0).is_empty());
        assert!(g.threshold_crossings(&scores[1..], 1.0).is_empty());
        assert!(g.threshold_crossings(&scores, f64::NAN).is_empty());
    }

    /// Training with a probe is training without one: the probe draws no randomness.
    #[test]
    fn a_probe_does_not_change_training() {
        let o = PlaygroundOptions {
            episodes: 2,
            held_out: "Halo".into(),
            ..PlaygroundOptions::default()
        };
        let train = |with_probe: bool| {
            let (_, job) = build(&o).unwrap();
            let Job {
                mut model,
                mut view,
                probe,
                test,
                seed,
            } = job;
            let stop = AtomicBool::new(false);
            let mut probes = 0;
            let mut checkpoints = Vec::new();
            let mut emit = |e: Event| match e {
                Event::Probe { .. } => probes += 1,
                Event::Checkpoint { families, .. } => {
                    checkpoints.push(families.iter().map(|f| f.margin).collect::<Vec<_>>())
                }
                _ => {}
            };
            let mut ctx = Ctx {
                emit: &mut emit,
                stop: &stop,
                rng: SplitMix64::new(seed.wrapping_add(40)),
                device: candle_core::Device::Cpu,
                probe: with_probe.then_some(probe),
            };
            model.fit(&mut view, &mut ctx).unwrap();
            (model.score(&test.x).unwrap(), checkpoints, probes)
        };
        let (a, ca, pa) = train(true);
        let (b, cb, pb) = train(false);
        assert!(pa > 2 && pb == 0);
        assert_eq!(ca, cb);
        assert_eq!(a, b);
    }
}
