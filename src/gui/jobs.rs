//! Runs of the workbench: a queue of experiments, one trained at a time on a named worker
//! thread (`heldout-run-N`) that runs [`crate::experiment::run`] — the engine of `heldout run` —
//! and sends its events over a bounded channel. Stop = a shared flag the detector checks every
//! step; the run folder keeps what finished and is marked stopped.

use super::{Level, Message};
use crate::detect::{Event, Stage};
use crate::experiment::{new_run_dir, resume, run, CheckedExperiment, RunEvent, RunState};
use crate::report::RunData;
use crossbeam_channel::{bounded, Receiver, TryRecvError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Capacity of a run's event channel; the worker waits when the UI falls this far behind.
const CHANNEL: usize = 4096;

/// Episodes per unit whose histograms, curves and PCGrad cosines the live view keeps (plus the
/// latest; see [`RunData::thin_episodes`]): memory stays bounded however long the run. The run
/// folder's files keep every episode.
pub const LIVE_EPISODES: usize = 24;

/// Episodes per unit the live view keeps of the units that are no longer training (plus the
/// latest): a 36-unit run kept 1.1 M rows at 24 each, and re-extracting the plots from them
/// took the UI build's 99th percentile to 100 ms (bench/results/frames-20261206-201111.txt).
/// Opening the run from the runs panel reads up to `OPENED_EPISODES` of every unit.
pub const LIVE_EPISODES_FINISHED: usize = 6;

/// Thinning walks every kept row, so it runs only once the kept rows have grown by a quarter
/// (and at least this many rows) since the last thinning: amortised O(1) per streamed row, and
/// the live copy stays within 1.25 × the thinned rows + this.
const THIN_SLACK_ROWS: usize = 20_000;

/// Where a job is.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Queued,
    Running,
    Finished,
    Stopped,
    Failed(String),
}

enum Msg {
    Event(RunEvent),
    Done(Result<RunState, String>),
}

/// One queued, running or ended run.
pub struct Job {
    pub id: u64,
    /// The experiment as checked when it was queued (with the folder its paths resolve against).
    pub exp: CheckedExperiment,
    /// The run folder (set when the job starts).
    pub dir: PathBuf,
    pub state: JobState,
    /// Rows received so far: the same rows the folder's files hold.
    pub data: RunData,
    stop: Arc<AtomicBool>,
    rx: Option<Receiver<Msg>>,
    handle: Option<std::thread::JoinHandle<()>>,
    started: Option<Instant>,
    ended: Option<Instant>,
    units: usize,
    unit: usize,
    unit_text: String,
    episode: usize,
    stage: Option<Stage>,
    /// The phase of a method without episodes (set by its `Step` events).
    phase: Option<&'static str>,
    step: (usize, usize),
    loss: f64,
    /// When the user asked to stop.
    stop_asked: Option<Instant>,
    /// How long the worker took to stop after being asked.
    pub stop_latency: Option<Duration>,
    /// One line per finished (method, seed, held-out family).
    pub finished_lines: Vec<String>,
    /// Continue the run already in `dir` (`heldout run --resume`) instead of starting a new one.
    resume: bool,
    /// Warnings of the run not yet passed to the message log.
    warnings: Vec<String>,
    /// The runner's cost estimate (one line), not yet passed to the message log.
    estimate: Option<String>,
    /// The unit whose rows arrived last (the one training), kept at [`LIVE_EPISODES`].
    training: Option<crate::report::UnitKey>,
    /// Rows kept after the last thinning.
    rows_at_thin: usize,
}

impl Job {
    /// Progress in [0, 1] and a one-line description with the ETA.
    pub fn progress(&self) -> (f32, String) {
        match &self.state {
            JobState::Queued => (0.0, "queued".into()),
            JobState::Running => {
                let n_ep = self.exp.episodes.count.max(1) as f64;
                let step_frac = self.step.0 as f64 / self.step.1.max(1) as f64;
                let within = if self.phase.is_some() {
                    // a method without episodes: its own steps
                    step_frac.min(1.0)
                } else {
                    let stage_frac = match self.stage {
                        Some(Stage::Pre) | Some(Stage::Pretrain) | Some(Stage::Final) | None => 0.0,
                        Some(Stage::Inner) => 0.4 * step_frac,
                        Some(Stage::Outer) => 0.4 + 0.6 * step_frac,
                    };
                    ((self.episode as f64 + stage_frac) / n_ep).min(1.0)
                };
                let frac = if self.units == 0 {
                    0.0
                } else {
                    ((self.unit.saturating_sub(1) as f64 + within) / self.units as f64).min(1.0)
                };
                let eta = match self.started {
                    Some(t) if frac > 0.01 => {
                        let el = t.elapsed().as_secs_f64();
                        format_secs(el * (1.0 - frac) / frac)
                    }
                    _ => "…".into(),
                };
                let what = match self.phase {
                    Some(phase) => format!("{phase} {}/{}", self.step.0, self.step.1),
                    None => format!(
                        "episode {}/{} {}",
                        self.episode + 1,
                        self.exp.episodes.count,
                        self.stage.map(|s| s.as_str()).unwrap_or("setup")
                    ),
                };
                (
                    frac as f32,
                    format!(
                        "unit {}/{} {} · {what} · loss {:.3} · ETA {eta}",
                        self.unit, self.units, self.unit_text, self.loss
                    ),
                )
            }
            JobState::Finished => (1.0, "finished".into()),
            JobState::Stopped => (1.0, "stopped".into()),
            JobState::Failed(e) => (1.0, format!("failed: {e}")),
        }
    }

    /// State and timing as text.
    pub fn status_text(&self) -> String {
        let took = match (self.started, self.ended) {
            (Some(a), Some(b)) => format!(" in {}", format_secs((b - a).as_secs_f64())),
            (Some(a), None) => format!(", {} so far", format_secs(a.elapsed().as_secs_f64())),
            _ => String::new(),
        };
        match &self.state {
            JobState::Running => format!("running{took}: {}", self.progress().1),
            s => format!("{s:?}{took}").to_lowercase(),
        }
    }

    fn is_active(&self) -> bool {
        matches!(self.state, JobState::Queued | JobState::Running)
    }
}

/// `1 h 02 min`, `3 min 05 s`, `12 s`.
pub fn format_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The queue.
#[derive(Default)]
pub struct Jobs {
    pub list: Vec<Job>,
    next_id: u64,
}

impl Jobs {
    /// Adds a run of `exp` to the queue; returns its id.
    pub fn queue(&mut self, exp: CheckedExperiment) -> u64 {
        self.push(exp, None)
    }

    /// Queues the resumption of the interrupted run in `dir` (its experiment `exp`, from
    /// [`crate::experiment::load_resumable`]); returns the job's id.
    pub fn queue_resume(&mut self, exp: CheckedExperiment, dir: PathBuf) -> u64 {
        self.push(exp, Some(dir))
    }

    fn push(&mut self, exp: CheckedExperiment, resume_dir: Option<PathBuf>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.list.push(Job {
            id,
            exp,
            resume: resume_dir.is_some(),
            warnings: Vec::new(),
            estimate: None,
            training: None,
            rows_at_thin: 0,
            dir: resume_dir.unwrap_or_default(),
            state: JobState::Queued,
            data: RunData::default(),
            stop: Arc::new(AtomicBool::new(false)),
            rx: None,
            handle: None,
            started: None,
            ended: None,
            units: 0,
            unit: 0,
            unit_text: String::new(),
            episode: 0,
            stage: None,
            phase: None,
            step: (0, 0),
            loss: f64::NAN,
            stop_asked: None,
            stop_latency: None,
            finished_lines: Vec::new(),
        });
        self.start_next();
        id
    }

    pub fn get(&self, id: u64) -> Option<&Job> {
        self.list.iter().find(|j| j.id == id)
    }

    pub fn running(&self) -> Option<&Job> {
        self.list.iter().find(|j| j.state == JobState::Running)
    }

    pub fn running_id(&self) -> Option<u64> {
        self.running().map(|j| j.id)
    }

    pub fn queued_count(&self) -> usize {
        self.list
            .iter()
            .filter(|j| j.state == JobState::Queued)
            .count()
    }

    pub fn busy(&self) -> bool {
        self.list.iter().any(Job::is_active)
    }

    /// Asks a job to stop (a queued job is dropped from the queue).
    pub fn stop(&mut self, id: u64) {
        if let Some(j) = self.list.iter_mut().find(|j| j.id == id) {
            match j.state {
                JobState::Queued => {
                    j.state = JobState::Stopped;
                    j.ended = Some(Instant::now());
                }
                JobState::Running => {
                    j.stop.store(true, Ordering::Relaxed);
                    j.stop_asked.get_or_insert_with(Instant::now);
                }
                _ => {}
            }
        }
    }

    fn start_next(&mut self) {
        if self.running().is_some() {
            return;
        }
        let Some(j) = self.list.iter_mut().find(|j| j.state == JobState::Queued) else {
            return;
        };
        if !j.resume {
            let root = j.exp.base().join(&j.exp.output);
            j.dir = new_run_dir(&root, &j.exp.name);
        }
        let (tx, rx) = bounded::<Msg>(CHANNEL);
        let (exp, dir, stop) = (j.exp.clone(), j.dir.clone(), j.stop.clone());
        let resuming = j.resume;
        let spawned = std::thread::Builder::new()
            .name(format!("heldout-run-{}", j.id))
            .spawn(move || {
                super::background_priority();
                let mut sink = |e: RunEvent| {
                    // the UI may be gone (window closed): the run goes on to its stop flag
                    let _ = tx.send(Msg::Event(e));
                };
                let r = if resuming {
                    resume(&dir, &stop, &mut sink)
                } else {
                    run(&exp, &dir, &stop, &mut sink)
                }
                .map_err(|e| format!("{e:#}"));
                let _ = tx.send(Msg::Done(r));
            });
        match spawned {
            Ok(h) => {
                j.handle = Some(h);
                j.rx = Some(rx);
                j.state = JobState::Running;
                j.started = Some(Instant::now());
            }
            Err(e) => {
                j.state = JobState::Failed(format!("could not start a worker thread: {e}"));
            }
        }
    }

    /// Drains the channels for at most `budget`; returns messages and whether a job ended.
    pub fn poll(&mut self, budget: Duration) -> (Vec<Message>, bool) {
        let t0 = Instant::now();
        let mut msgs = Vec::new();
        let mut ended = false;
        for j in &mut self.list {
            let Some(rx) = j.rx.clone() else { continue };
            loop {
                if t0.elapsed() > budget {
                    break;
                }
                match rx.try_recv() {
                    Ok(Msg::Event(e)) => {
                        j.on_event(e);
                        msgs.extend(j.warnings.drain(..).map(|w| Message {
                            level: Level::Warning,
                            text: format!("run #{}: {w}", j.id),
                        }));
                        msgs.extend(j.estimate.take().map(|e| Message {
                            level: Level::Info,
                            text: format!("run #{}: {e}", j.id),
                        }));
                    }
                    Ok(Msg::Done(r)) => {
                        j.ended = Some(Instant::now());
                        j.stop_latency = j.stop_asked.map(|t| t.elapsed());
                        let dir = j.dir.display().to_string();
                        j.state = match r {
                            Ok(RunState::Finished) => {
                                msgs.push(Message {
                                    level: Level::Info,
                                    text: format!("run #{} finished: {dir}", j.id),
                                });
                                JobState::Finished
                            }
                            Ok(RunState::Stopped) => {
                                msgs.push(Message {
                                    level: Level::Info,
                                    text: format!(
                                        "run #{} stopped; what finished is in {dir}",
                                        j.id
                                    ),
                                });
                                JobState::Stopped
                            }
                            Err(e) => {
                                msgs.push(Message {
                                    level: Level::Error,
                                    text: format!("run #{} failed: {e}", j.id),
                                });
                                JobState::Failed(e)
                            }
                        };
                        if let Some(h) = j.handle.take() {
                            let _ = h.join();
                        }
                        j.rx = None;
                        ended = true;
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        // the worker ended without its last message (it panicked)
                        j.state = JobState::Failed("the worker thread ended unexpectedly".into());
                        j.ended = Some(Instant::now());
                        j.rx = None;
                        ended = true;
                        break;
                    }
                }
            }
        }
        if ended {
            self.start_next();
        }
        (msgs, ended)
    }

    /// Stops everything and waits up to `wait` for the workers to finish their folders.
    pub fn shutdown(&mut self, wait: Duration) {
        for j in &mut self.list {
            if j.state == JobState::Queued {
                j.state = JobState::Stopped;
            }
            j.stop.store(true, Ordering::Relaxed);
        }
        let t0 = Instant::now();
        while self.list.iter().any(|j| j.rx.is_some()) && t0.elapsed() < wait {
            // keep draining so no worker waits on a full channel
            let _ = self.poll(Duration::from_millis(50));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Job {
    /// Adds streamed rows to the live view's copy, bounded: test scores (the threshold-transfer
    /// view) up to [`super::runs_panel::OPENED_SCORES`] rows, the rest left to the folder's
    /// `scores.csv`, and the per-episode rows are thinned to
    /// [`LIVE_EPISODES`] for the unit that is training and [`LIVE_EPISODES_FINISHED`] for the
    /// others, once the kept rows have grown enough since the last thinning.
    fn keep(&mut self, mut d: RunData) {
        if self.data.scores.len() + d.scores.len() > super::runs_panel::OPENED_SCORES {
            d.scores = Vec::new();
        }
        let newest = d
            .histograms
            .last()
            .map(|r| &r.unit)
            .or(d.pcgrad.last().map(|r| &r.unit))
            .or(d.curves.last().map(|r| &r.unit));
        if let Some(u) = newest {
            self.training = Some(u.clone());
        }
        self.data.extend(d);
        let rows = self.data.row_count();
        if rows > self.rows_at_thin + self.rows_at_thin / 4 + THIN_SLACK_ROWS {
            let training = self.training.clone();
            self.data.thin_episodes_with(|u| {
                if Some(u) == training.as_ref() {
                    LIVE_EPISODES
                } else {
                    LIVE_EPISODES_FINISHED
                }
            });
            self.rows_at_thin = self.data.row_count();
        }
    }

    fn on_event(&mut self, e: RunEvent) {
        match e {
            RunEvent::Unit {
                index,
                units,
                method,
                seed,
                held_out,
            } => {
                self.unit = index;
                self.units = units;
                self.unit_text = format!("{method} · seed {seed} · held out {held_out}");
                self.episode = 0;
                self.stage = None;
                self.phase = None;
                self.step = (0, 0);
                self.loss = f64::NAN;
            }
            RunEvent::Detector(Event::Step { phase, done, total }) => {
                self.phase = Some(phase);
                self.step = (done, total);
            }
            RunEvent::Detector(Event::Epoch { terms, .. }) => {
                if let Some(&(_, v)) = terms.first() {
                    self.loss = v;
                }
            }
            RunEvent::Detector(Event::Progress {
                episode,
                stage,
                step,
                steps,
                loss,
            }) => {
                self.episode = episode;
                self.stage = Some(stage);
                self.step = (step + 1, steps);
                self.loss = loss;
            }
            RunEvent::Detector(_) => {}
            RunEvent::Warning(w) => self.warnings.push(w),
            RunEvent::Estimate(e) => self.estimate = Some(e),
            RunEvent::Data(d) => self.keep(*d),
            RunEvent::Finished {
                method,
                seed,
                held_out,
                auc,
                ap,
            } => self.finished_lines.push(format!(
                "{method} · seed {seed} · {held_out}: AUC-ROC {auc:.3}, AP {ap:.3}"
            )),
        }
    }
}
