//! The command-line front end (`heldout inspect`, `heldout bench load`). No egui here.

use crate::data::{self, demo::DemoKind, CategoricalPolicy, LoadOptions, MissingPolicy, Table};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// heldout — does the detector catch the families it never saw?
#[derive(Debug, Parser)]
#[command(name = "heldout", version, about, long_about = None)]
pub struct Cli {
    /// Without a command, heldout opens the desktop workbench on its built-in demo.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load a dataset, clean it, and report what is in it.
    Inspect(InspectArgs),
    /// Check an experiment file without training and print its plan.
    Validate(ValidateArgs),
    /// Run an experiment (all rotations × seeds × methods) into a run folder.
    Run(RunArgs),
    /// Write a run folder's figures (SVG/PNG), tables (CSV, Markdown, LaTeX) and experiment.
    Export(ExportArgs),
    /// List every detector heldout runs: its name in experiment files, paper, the labels it
    /// needs, and its parameters with defaults and meaning.
    Methods(MethodsArgs),
    /// Metrics for any detector's scores in a CSV (AUC-ROC, AP, AUC-PR, FPR@95, best-F1, …).
    Eval(EvalArgs),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Open the desktop workbench (what `heldout` does without a command).
    Gui(GuiArgs),
}

#[derive(Debug, Args)]
pub struct GuiArgs {
    /// An experiment file to open (default: the last session, or the built-in demo).
    pub experiment: Option<PathBuf>,
    /// A run folder to show (its plots and tables, without retraining).
    #[arg(long)]
    pub open_run: Option<PathBuf>,
    /// The tab to start on.
    #[arg(long, value_enum)]
    pub tab: Option<TabArg>,
    /// The live view's plots to start on.
    #[arg(long, value_enum)]
    pub live: Option<LiveArg>,
    /// Take a screenshot of the window once it has settled, write it (PNG) and close; the saved
    /// session is neither read nor written. For documentation (screenshots/render.sh).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Window size in points, e.g. 1400x900.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<[f32; 2]>,
    /// Queue a run of the experiment at start (as the ▶ button does).
    #[arg(long)]
    pub start_run: bool,
    /// Close the window after this many seconds and print frame-time statistics (for
    /// measuring the UI's frame rate during a run).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub exit_after: Option<f64>,
    /// Open and load this dataset at start (label column guessed), as the Data tab does; with
    /// `--start-run`, while the run streams (measures the UI under both loads).
    #[arg(long, value_name = "PATH")]
    pub load_data: Option<PathBuf>,
}

/// A number of seconds: finite, 0 to a year.
fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=31_536_000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}`: give a number of seconds from 0 to 31536000"
        )),
    }
}

fn parse_size(s: &str) -> std::result::Result<[f32; 2], String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}`: expected WIDTHxHEIGHT, e.g. 1400x900"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|x| *x >= 200.0)
            .ok_or_else(|| format!("`{s}`: sizes are numbers of at least 200"))
    };
    Ok([p(w)?, p(h)?])
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TabArg {
    Data,
    Experiment,
    Live,
    Results,
    Runs,
    Playground,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LiveArg {
    Histograms,
    Curves,
    Training,
    Pcgrad,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A CSV with one row per scored example.
    pub scores: PathBuf,
    /// Column with the anomaly score (higher = more anomalous).
    #[arg(long)]
    pub score: String,
    /// Column with the label: 0/1 or true/false (1 = anomaly), or any text with --normal.
    #[arg(long)]
    pub label: String,
    /// Column with each row's family, for a per-family table (each family against all normals).
    #[arg(long)]
    pub family: Option<String>,
    /// The label value of normal rows (every other value is an anomaly).
    #[arg(long)]
    pub normal: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (RON).
    #[arg(required_unless_present_any = ["demo", "resume"])]
    pub file: Option<PathBuf>,
    /// Run the built-in demo experiment instead.
    #[arg(long, conflicts_with_all = ["file", "resume"])]
    pub demo: bool,
    /// Continue an interrupted, stopped or failed run in its folder: keeps the units it lists as
    /// finished (`units.csv`) and runs only the others, with the folder's own `config.ron`.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["file", "set", "compare", "out"])]
    pub resume: Option<PathBuf>,
    /// Folder for the run folder (default: the experiment's `output`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a field, in RON syntax: `--set seeds=[0]`, `--set episodes.count=2`.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Methods to run beside the experiment's `method`, replacing its `compare` list: `all`
    /// (every registered method, with its defaults) or names as in `heldout methods`
    /// (`IsolationForest,Ecod`). Parameters of methods already in `compare` are kept.
    #[arg(long, value_name = "all|NAME,NAME")]
    pub compare: Option<String>,
    /// Refuse the run when it is estimated to need more memory than this (e.g. 8G, 512M;
    /// default: this machine's memory, or HELDOUT_MEMORY_LIMIT).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_limit)]
    pub memory_limit: Option<f64>,
}

#[derive(Debug, Args)]
pub struct MethodsArgs {
    /// Print JSON (every method with its description and parameters) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run folder (written by `heldout run` or the workbench).
    pub run_dir: PathBuf,
    /// Folder for the exported files (default: RUN_DIR/export).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Figure file format.
    #[arg(long, value_enum, default_value = "both")]
    pub format: ExportFormatArg,
    /// The score axis of the histogram figures: the scores' own range (readable when they
    /// crowd into a narrow band) or [0, 1] (comparable across figures).
    #[arg(long, value_enum, default_value = "scores")]
    pub score_axis: ScoreAxisArg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ScoreAxisArg {
    /// Each panel spans its scores (the checkpoint's bins).
    Scores,
    /// [0, 1], widened when scores leave it.
    Unit,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormatArg {
    /// Vector figures.
    Svg,
    /// Raster figures (2× size).
    Png,
    /// SVG and PNG.
    Both,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The experiment file (RON).
    pub file: PathBuf,
    /// Episodes to show per rotation.
    #[arg(long, default_value_t = 3)]
    pub episodes: usize,
    /// Refuse experiments estimated to need more memory than this (e.g. 8G, 512M; default:
    /// this machine's memory, or HELDOUT_MEMORY_LIMIT).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_limit)]
    pub memory_limit: Option<f64>,
}

/// `--memory-limit`'s value in bytes.
fn parse_memory_limit(s: &str) -> std::result::Result<f64, String> {
    crate::experiment::estimate::parse_size(s)
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MissingArg {
    /// Drop rows with a missing feature value.
    Drop,
    /// Keep them; fill with the training-row median.
    Impute,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DemoArg {
    /// The 12-feature tabular demo.
    Tabular,
    /// The 2-D teaching demo.
    #[value(name = "2d")]
    TwoD,
}

/// Options shared by every command that loads a dataset.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The column holding the class / family of each row.
    #[arg(long, short = 'l', value_name = "COLUMN")]
    pub label: Option<String>,
    /// A `label,family` CSV grouping labels into families.
    #[arg(long, value_name = "CSV")]
    pub family_map: Option<PathBuf>,
    /// Keep labels missing from the family map as families of their own.
    #[arg(long)]
    pub keep_unmapped: bool,
    /// A column never to use as a feature (repeatable).
    #[arg(long = "drop", value_name = "COL")]
    pub drop: Vec<String>,
    /// Drop categorical text columns instead of one-hot encoding them.
    #[arg(long)]
    pub drop_categorical: bool,
    /// Rows with a missing value: drop them, or impute the training median.
    #[arg(long, value_enum, default_value = "drop")]
    pub missing: MissingArg,
    /// Remove families with fewer rows than this (0 keeps all).
    #[arg(long, default_value_t = 0)]
    pub min_family_rows: usize,
    /// Remove rows identical to an earlier row.
    #[arg(long)]
    pub drop_duplicates: bool,
    /// Keep columns detected as identifiers (IPs, ports, timestamps, running ids).
    #[arg(long)]
    pub keep_identifiers: bool,
    /// Text columns with more distinct values are dropped instead of one-hot encoded.
    #[arg(long, default_value_t = 256)]
    pub max_categories: usize,
}

impl DataArgs {
    /// The loader options these flags describe.
    pub fn options(&self) -> Result<LoadOptions> {
        let Some(label) = &self.label else {
            bail!(
                "--label COLUMN is required: name the column that holds each row's class or family"
            );
        };
        Ok(LoadOptions {
            label_column: label.clone(),
            family_map: self.family_map.clone(),
            keep_unmapped: self.keep_unmapped,
            drop_columns: self.drop.clone(),
            categorical: if self.drop_categorical {
                CategoricalPolicy::Drop
            } else {
                CategoricalPolicy::OneHot
            },
            missing: match self.missing {
                MissingArg::Drop => MissingPolicy::DropRows,
                MissingArg::Impute => MissingPolicy::ImputeMedian,
            },
            min_family_rows: self.min_family_rows,
            drop_duplicates: self.drop_duplicates,
            max_categories: self.max_categories,
            keep_identifiers: self.keep_identifiers,
            ..LoadOptions::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A CSV, .csv.gz or Parquet file, or a folder of CSVs sharing one header.
    #[arg(required_unless_present = "demo")]
    pub path: Option<PathBuf>,
    /// Inspect a built-in demo dataset instead of a file.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "tabular", conflicts_with = "path")]
    pub demo: Option<DemoArg>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load + clean throughput on real and generated data.
    Load(BenchLoadArgs),
    /// Seconds per meta-learner episode and per inner / outer step on CIC-IDS2017 at the
    /// reference's sizes.
    Episode(BenchEpisodeArgs),
    /// Fit and score seconds and peak memory of each registered method on the CIC-IDS2017
    /// sample (one held-out family, one seed), as the reference's `cost.json` records them.
    Methods(BenchMethodsArgs),
    /// Runs an experiment and sets each unit's measured wall time and peak memory beside the
    /// estimate `heldout validate` prints (the check of the estimate; bench/estimate.sh).
    Estimate(BenchEstimateArgs),
}

#[derive(Debug, Args)]
pub struct BenchEstimateArgs {
    /// The experiment file (RON).
    pub file: PathBuf,
    /// Override a field, in RON syntax (as `heldout run --set`).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Methods beside `method`, replacing `compare` (as `heldout run --compare`).
    #[arg(long, value_name = "all|NAME,NAME")]
    pub compare: Option<String>,
    /// Where the benchmark's run folder goes.
    #[arg(long, default_value = "target/bench-runs")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchMethodsArgs {
    /// Folder of the shared datasets.
    #[arg(long, default_value = "../shared/data")]
    pub data_dir: PathBuf,
    /// `all` (every method but the meta-learner, which `bench episode` times) or names as in
    /// `heldout methods` (`IsolationForest,Ecod`).
    #[arg(long, default_value = "all")]
    pub methods: String,
    /// The held-out family.
    #[arg(long, default_value = "Botnet")]
    pub held_out: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Times each method is trained and timed anew.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

#[derive(Debug, Args)]
pub struct BenchEpisodeArgs {
    /// Folder of the shared datasets.
    #[arg(long, default_value = "../shared/data")]
    pub data_dir: PathBuf,
    /// Episodes to time.
    #[arg(long, default_value_t = 3)]
    pub episodes: usize,
    /// Where the benchmark's run folder goes.
    #[arg(long, default_value = "target/bench-runs")]
    pub out: PathBuf,
    /// Where the model runs: `cpu`, `cuda` (device 0), `cuda:N` or `auto` (a `cuda` build
    /// only reaches a GPU).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: crate::experiment::Device,
    /// Rows per class and family in the checkpoint pools (default: the spec's 4,000); fewer
    /// rows, to compare at the reference's checkpoint work.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub checkpoint_cap: Option<usize>,
}

/// `cpu`, `auto`, `cuda` or `cuda:N`, as the experiment file's `Cpu`, `Auto`, `Cuda(N)`.
fn parse_device(s: &str) -> Result<crate::experiment::Device, String> {
    use crate::experiment::Device;
    match s.to_ascii_lowercase().as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::Auto),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("`{s}`: expected cpu, auto, cuda or cuda:N (N a GPU index)")),
    }
}

#[derive(Debug, Args)]
pub struct BenchLoadArgs {
    /// Folder of the shared datasets.
    #[arg(long, default_value = "../shared/data")]
    pub data_dir: PathBuf,
    /// Where the generated CIC-IDS2018-shaped CSV is written (made once, then reused).
    #[arg(long, default_value = "target/bench-data")]
    pub work_dir: PathBuf,
    /// Rows of the generated CSV.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Timed repetitions per file (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Only generate the CSV and print its path.
    #[arg(long)]
    pub generate_only: bool,
}

/// Runs a parsed command line other than `gui` (which `main.rs` hands to the workbench);
/// errors are printed as one line and give exit code 1.
pub fn main(cli: Cli) -> ExitCode {
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("{e}");
            // the shell convention for a run ended by Ctrl-C (SIGINT)
            ExitCode::from(130)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("error: {}", msg.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// A run stopped by the user; its folder holds what finished.
#[derive(Debug, thiserror::Error)]
#[error("stopped: {dir} holds the {units} units finished so far (status.txt says so); `heldout run --resume {dir}` runs the rest")]
pub struct Interrupted {
    pub dir: String,
    pub units: usize,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Inspect(a)) => inspect(a),
        Some(Command::Validate(a)) => validate(a),
        Some(Command::Run(a)) => run_experiment(a),
        Some(Command::Methods(a)) => {
            let text = if a.json {
                serde_json::to_string_pretty(&methods_json())? + "\n"
            } else {
                methods_text()
            };
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(())
        }
        Some(Command::Export(a)) => export(a),
        Some(Command::Eval(a)) => {
            let r = crate::eval::eval_scores_csv(
                &a.scores,
                &a.score,
                &a.label,
                a.family.as_deref(),
                a.normal.as_deref(),
            )?;
            let text = if a.json {
                serde_json::to_string_pretty(&r)? + "\n"
            } else {
                r.to_text()
            };
            print!("{text}");
            Ok(())
        }
        Some(Command::Bench(BenchCommand::Load(a))) => bench_load(a),
        Some(Command::Bench(BenchCommand::Methods(a))) => {
            let methods = if a.methods.trim() == "all" {
                // the meta-learner's episodes have their own benchmark (`bench episode`)
                let mut v: Vec<_> = crate::detect::Method::all()
                    .into_iter()
                    .filter(|m| m.key() != "MetaLearner")
                    .collect();
                // the reference's second MLP variant (every seen-family training row)
                v.push(crate::detect::Method::Mlp(crate::detect::MlpParams {
                    anomalies: crate::detect::mlp::AnomalyRows::AllSeen,
                    ..Default::default()
                }));
                v
            } else {
                compare_list(&a.methods, &crate::detect::Method::default(), &[])?
            };
            let t = crate::experiment::bench::bench_methods(
                &a.data_dir,
                &methods,
                &a.held_out,
                a.seed,
                a.repeat,
            )?;
            println!(
                "CIC-IDS2017 sample, held out {}, seed {}, CPU, {} thread(s) (HELDOUT_THREADS), {} candle thread(s)",
                a.held_out,
                a.seed,
                crate::nn::frozen_threads(),
                candle_core::utils::get_num_threads()
            );
            println!(
                "{:<24} {:>9} {:>9} {:>8} {:>8} {:>7} {:>9}",
                "method", "fit s", "score s", "val", "test", "AUC", "peak MB"
            );
            for r in t {
                println!(
                    "{:<24} {:>9.3} {:>9.3} {:>8} {:>8} {:>7.3} {:>9.0}",
                    r.method,
                    r.fit_seconds,
                    r.score_seconds,
                    r.val_rows,
                    r.test_rows,
                    r.auc,
                    r.peak_rss_mb
                );
            }
            Ok(())
        }
        Some(Command::Bench(BenchCommand::Estimate(a))) => {
            let exp = crate::experiment::Experiment::load(&a.file, &a.set)?;
            let exp = match &a.compare {
                Some(list) => {
                    let compare = compare_list(list, &exp.method, &exp.compare)?;
                    exp.with_compare(compare)?
                }
                None => exp,
            };
            let dir = crate::experiment::new_run_dir(&a.out, "bench-estimate");
            let (est, units, total, peak) = crate::experiment::bench::bench_estimate(&exp, &dir)?;
            print!("{}", est.to_text());
            println!();
            print!(
                "{}",
                crate::experiment::bench::estimate_table(&est, &units, total, peak)
            );
            Ok(())
        }
        Some(Command::Bench(BenchCommand::Episode(a))) => {
            let dir = crate::experiment::new_run_dir(&a.out, "bench-episode");
            let t = crate::experiment::bench::bench_episode(
                &a.data_dir,
                a.episodes,
                a.device,
                a.checkpoint_cap,
                &dir,
            )?;
            println!("CIC-IDS2017 sample, held out Botnet, seed 0, {} episodes (1 inner epoch, 2,048 normals per inner family, batch 256 / 128), device {:?}", t.episodes, a.device);
            println!("  s / episode        {:.2}", t.seconds_per_episode);
            println!(
                "  inner steps / ep.  {:.1}   ms / inner step {:.1}",
                t.inner_steps_per_episode, t.ms_per_inner_step
            );
            println!(
                "  outer steps / ep.  {:.1}   ms / outer step {:.1}",
                t.outer_steps_per_episode, t.ms_per_outer_step
            );
            println!(
                "  rest s / episode   {:.2}   (s / episode minus the timed steps: checkpoints, τ*, bookkeeping)",
                t.eval_seconds_per_episode
            );
            println!(
                "  checkpoints s / ep. {:.2}   (measured; {:.1} checkpoints of {} rows)",
                t.checkpoint_seconds_per_episode, t.checkpoints_per_episode, t.rows_per_checkpoint
            );
            println!("  peak RSS MiB       {:.0}", t.peak_rss_mb);
            println!(
                "  threads            {} (graph-free passes, HELDOUT_THREADS), {} (candle ops)",
                crate::nn::frozen_threads(),
                candle_core::utils::get_num_threads()
            );
            Ok(())
        }
        // The workbench is started by the binary (`main.rs`), so the command line does not
        // depend on the GUI.
        Some(Command::Gui(_)) | None => Ok(()),
    }
}

fn inspect(a: InspectArgs) -> Result<()> {
    let (table, source) = match (a.demo, &a.path) {
        (Some(d), _) => {
            let kind = match d {
                DemoArg::Tabular => DemoKind::Tabular,
                DemoArg::TwoD => DemoKind::TwoD,
            };
            (
                data::demo::table(kind, 0),
                format!("built-in {} (seed 0)", kind.name()),
            )
        }
        (None, Some(p)) => {
            let opts = a.data.options()?;
            (data::load(p, &opts)?, p.display().to_string())
        }
        (None, None) => bail!("give a PATH to a dataset, or --demo"),
    };
    let text = if a.json {
        serde_json::to_string_pretty(&inspect_json(&table, &source))? + "\n"
    } else {
        inspect_text(&table, &source)
    };
    // Print only once everything succeeded: never partial output.
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// The `--json` form of `inspect`.
pub fn inspect_json(t: &Table, source: &str) -> serde_json::Value {
    let counts = t.family_counts();
    let families: serde_json::Map<String, serde_json::Value> = t
        .families
        .iter()
        .zip(&counts)
        .map(|(f, &c)| (f.clone(), serde_json::Value::from(c)))
        .collect();
    serde_json::json!({
        "source": source,
        "rows": t.n_rows,
        "label_column": t.label_column,
        "features": t.n_features,
        "feature_names": t.feature_names,
        "families": families,
        "dropped_columns": t.report.dropped_columns,
        "one_hot": t.report.one_hot,
        "cleaning": t.report,
    })
}

pub use crate::data::{inspect_text, thousands};
pub use crate::experiment::{apply_overrides, DEMO_EXPERIMENT};

/// `--compare all` or `--compare NAME,NAME`: the methods to run beside `main` (those already
/// in `current` keep their parameters).
fn compare_list(
    list: &str,
    main: &crate::detect::Method,
    current: &[crate::detect::Method],
) -> Result<Vec<crate::detect::Method>> {
    use crate::detect::Method;
    let keys: Vec<&str> = if list.trim() == "all" {
        Method::KEYS
            .iter()
            .copied()
            .filter(|k| *k != main.key())
            .collect()
    } else {
        list.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect()
    };
    let mut out = Vec::new();
    for k in keys {
        // every setting of this method already in the file (e.g. both MLP variants)
        let have: Vec<Method> = current.iter().filter(|m| m.key() == k).cloned().collect();
        if !have.is_empty() {
            out.extend(have);
            continue;
        }
        out.push(Method::from_key(k).ok_or_else(|| {
            anyhow::anyhow!(
                "--compare {list}: no method '{k}'; methods are: all, {} (see `heldout methods`)",
                Method::KEYS.join(", ")
            )
        })?);
    }
    Ok(out)
}

/// `heldout methods`: every registered method with its parameters.
pub fn methods_text() -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for m in crate::detect::Method::all() {
        let info = m.info();
        let _ = writeln!(s, "{}  —  {}", m.key(), info.title);
        let _ = writeln!(s, "  paper:  {}", info.paper);
        let _ = writeln!(s, "  labels: {}", info.labels.describe());
        let _ = writeln!(s, "  {}", info.summary);
        let defaults = serde_json::to_value(&m).unwrap_or_default();
        let w = m.params().iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in m.params() {
            let d = &defaults[m.key()][p.name];
            let _ = writeln!(s, "    {:<w$}  {:<12} {}", p.name, d.to_string(), p.help);
        }
        let _ = writeln!(s);
    }
    s
}

/// `heldout methods --json`.
pub fn methods_json() -> serde_json::Value {
    let list: Vec<serde_json::Value> = crate::detect::Method::all()
        .iter()
        .map(|m| {
            let defaults = serde_json::to_value(m).unwrap_or_default();
            let params: Vec<serde_json::Value> = m
                .params()
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "default": defaults[m.key()][p.name],
                        "kind": p.kind,
                        "help": p.help,
                        "group": p.group,
                    })
                })
                .collect();
            let info = m.info();
            serde_json::json!({
                "name": m.key(),
                "table_name": m.name(),
                "title": info.title,
                "paper": info.paper,
                "labels": info.labels,
                "summary": info.summary,
                "params": params,
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

fn run_experiment(a: RunArgs) -> Result<()> {
    use crate::experiment::{new_run_dir, Experiment, RunEvent, RunState};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    if let Some(b) = a.memory_limit {
        crate::experiment::estimate::set_memory_limit(b, "--memory-limit");
    }
    let (exp, dir) = match &a.resume {
        Some(dir) => {
            let exp = crate::experiment::load_resumable(dir)?;
            (exp, dir.clone())
        }
        None => {
            let exp = match &a.file {
                Some(f) => Experiment::load(f, &a.set)?,
                None => Experiment::load_text(
                    DEMO_EXPERIMENT,
                    Path::new("demo.ron"),
                    Path::new("."),
                    &a.set,
                )?,
            };
            let exp = match &a.compare {
                Some(list) => {
                    let compare = compare_list(list, &exp.method, &exp.compare)?;
                    exp.with_compare(compare)?
                }
                None => exp,
            };
            let root = a
                .out
                .clone()
                .unwrap_or_else(|| exp.base().join(&exp.output));
            let dir = new_run_dir(&root, &exp.name);
            (exp, dir)
        }
    };
    let resuming = a.resume.is_some();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let (tx, rx) = crossbeam_channel::bounded::<RunEvent>(1024);
    let worker = {
        let (exp, dir, stop) = (exp.clone(), dir.clone(), stop.clone());
        std::thread::Builder::new()
            .name("heldout-run".into())
            .spawn(move || {
                let mut sink = |e: RunEvent| {
                    let _ = tx.send(e);
                };
                if resuming {
                    crate::experiment::resume(&dir, &stop, &mut sink)
                } else {
                    crate::experiment::run(&exp, &dir, &stop, &mut sink)
                }
            })?
    };
    if resuming {
        let kept = crate::experiment::read_units(&dir)
            .map(|u| u.len())
            .unwrap_or(0);
        eprintln!(
            "resuming {}: {kept} finished units kept, running the rest",
            dir.display()
        );
    } else {
        eprintln!("run folder: {}", dir.display());
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} (ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut finished: Vec<String> = Vec::new();
    for e in rx.iter() {
        match e {
            RunEvent::Unit {
                index,
                units,
                method,
                seed,
                held_out,
            } => {
                bar.set_prefix(format!(
                    "[{index}/{units}] {method} seed {seed} held out {held_out}"
                ));
                bar.set_position(0);
            }
            RunEvent::Detector(crate::detect::Event::Progress {
                episode,
                stage,
                step,
                steps,
                loss,
            }) => {
                bar.set_length(steps as u64);
                bar.set_position(step as u64);
                bar.set_message(format!(
                    "episode {episode} {} loss {loss:.4}",
                    stage.as_str()
                ));
            }
            RunEvent::Detector(crate::detect::Event::Step { phase, done, total }) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(phase.to_string());
            }
            RunEvent::Detector(crate::detect::Event::Epoch {
                phase,
                epoch,
                epochs,
                terms,
            }) => {
                let t: Vec<String> = terms.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
                bar.set_message(format!("{phase} epoch {epoch}/{epochs} {}", t.join(" ")));
            }
            RunEvent::Finished {
                method,
                seed,
                held_out,
                auc,
                ap,
            } => {
                let line =
                    format!("{method} seed {seed} held out {held_out}: AUC {auc:.3}, AP {ap:.3}");
                bar.suspend(|| println!("{line}"));
                finished.push(line);
            }
            RunEvent::Warning(w) => bar.suspend(|| eprintln!("warning: {w}")),
            RunEvent::Estimate(e) => bar.suspend(|| eprintln!("{e}")),
            RunEvent::Detector(_) | RunEvent::Data(_) => {}
        }
    }
    bar.finish_and_clear();
    let state = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the run thread panicked"))??;
    match state {
        RunState::Finished => println!("finished: {}", dir.display()),
        RunState::Stopped => {
            return Err(Interrupted {
                dir: dir.display().to_string(),
                units: crate::experiment::read_units(&dir)
                    .map(|u| u.len())
                    .unwrap_or(finished.len()),
            }
            .into())
        }
    }
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    use crate::report::export::{default_out_dir, Format};
    if !a.run_dir.is_dir() {
        bail!(
            "{}: no such folder — give the path of a run folder written by `heldout run`",
            a.run_dir.display()
        );
    }
    let t0 = Instant::now();
    let folder = crate::report::RunFolder::load(&a.run_dir)?;
    let out = a.out.clone().unwrap_or_else(|| default_out_dir(&folder));
    let formats: &[Format] = match a.format {
        ExportFormatArg::Svg => &[Format::Svg],
        ExportFormatArg::Png => &[Format::Png],
        ExportFormatArg::Both => &[Format::Svg, Format::Png],
    };
    let files = crate::report::export::export_run_with(
        &folder,
        &out,
        formats,
        a.score_axis == ScoreAxisArg::Unit,
    )?;
    let figs = files
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("figures")))
        .count();
    println!(
        "exported {} files ({figs} figures, results.csv/.md/.tex, experiment.ron) to {} in {:.1} s",
        files.len(),
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn validate(a: ValidateArgs) -> Result<()> {
    use crate::experiment::{plan_load_data, Estimate, Experiment, Plan};
    if let Some(b) = a.memory_limit {
        crate::experiment::estimate::set_memory_limit(b, "--memory-limit");
    }
    let exp = Experiment::load(&a.file, &[])?;
    let table =
        plan_load_data(&exp, exp.base()).with_context(|| format!("{}: data", a.file.display()))?;
    let plan =
        Plan::build(&exp, &table, a.episodes).with_context(|| a.file.display().to_string())?;
    print!("{}", plan.to_text(&exp, &table));
    let est =
        Estimate::of(&exp, &table).map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    print!("\n{}", est.to_text());
    est.check_memory(&exp)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))
}

// ---------------------------------------------------------------------------------------------
// bench load

use crate::experiment::bench::{proc_status_bytes, reset_peak_rss as reset_peak};

/// Peak resident memory of this process in bytes (Linux), since the last `reset_peak`.
fn peak_rss() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

fn current_rss() -> Option<u64> {
    proc_status_bytes("VmRSS:")
}

/// Writes the CIC-IDS2018-shaped benchmark CSV (seeded): a timestamp, 80 numeric columns, a label;
/// a few `Infinity`/`NaN` cells and a header line repeated every 250,000 rows, as in the original
/// CSE-CIC-IDS2018 day files.
pub fn generate_cic_like(path: &Path, rows: usize) -> Result<()> {
    use crate::rng::SplitMix64;
    let tmp = path.with_extension("csv.tmp");
    let f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut header = String::from("Timestamp");
    for j in 0..80 {
        header.push_str(&format!(",Feature {j:02}"));
    }
    header.push_str(",Label\n");
    w.write_all(header.as_bytes())?;
    let labels = [
        ("Benign", 0.70),
        ("DDOS attack-HOIC", 0.08),
        ("DoS attacks-Hulk", 0.07),
        ("Bot", 0.05),
        ("FTP-BruteForce", 0.04),
        ("SSH-Bruteforce", 0.03),
        ("Infilteration", 0.02),
        ("Brute Force -Web", 0.01),
    ];
    let mut g = SplitMix64::new(2018);
    let mut line = String::with_capacity(1024);
    for r in 0..rows {
        if r > 0 && r % 250_000 == 0 {
            w.write_all(header.as_bytes())?;
        }
        line.clear();
        let u = g.next_f64();
        let mut acc = 0.0;
        let mut label = labels[0].0;
        for (l, p) in labels {
            acc += p;
            if u < acc {
                label = l;
                break;
            }
        }
        let k = labels.iter().position(|x| x.0 == label).unwrap_or(0) as f64;
        line.push_str(&format!(
            "14/02/2018 {:02}:{:02}:{:02}",
            (r / 3600) % 24,
            (r / 60) % 60,
            r % 60
        ));
        for j in 0..80 {
            let z = g.next_normal() + 0.3 * k * ((j % 7) as f64 - 3.0) / 3.0;
            line.push(',');
            if j == 15 && g.next_u64() % 2000 == 0 {
                line.push_str("Infinity");
            } else if j == 16 && g.next_u64() % 5000 == 0 {
                line.push_str("NaN");
            } else if j % 3 == 0 {
                // counts and ports: integers
                line.push_str(&((z.abs() * 1000.0) as i64).to_string());
            } else {
                line.push_str(&format!("{}", (z * 10f64.powi(j % 5)) as f32));
            }
        }
        line.push(',');
        line.push_str(label);
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn bench_load(a: BenchLoadArgs) -> Result<()> {
    std::fs::create_dir_all(&a.work_dir)?;
    let cic = a.work_dir.join(format!("cic2018_shaped_{}.csv", a.rows));
    if !cic.exists() {
        eprintln!("generating {} ({} rows)…", cic.display(), a.rows);
        generate_cic_like(&cic, a.rows)?;
    }
    if a.generate_only {
        println!("{}", cic.display());
        return Ok(());
    }
    let kdd = a
        .data_dir
        .join("kddcup99_10percent/kddcup.data_10_percent.csv.gz");
    let mut kdd_opts = LoadOptions::new("attack");
    kdd_opts.family_map = Some(a.data_dir.join("kddcup99_10percent/attack_family_map.csv"));
    let cic_opts = LoadOptions::new("Label");
    println!(
        "{:<34} {:>9} {:>5} {:>9} {:>9} {:>11} {:>9} {:>10} {:>6}",
        "file", "rows", "cols", "text MB", "best s", "rows/s", "MB/s", "peak MB", "×f32"
    );
    for (path, opts) in [(&kdd, &kdd_opts), (&cic, &cic_opts)] {
        let text_bytes = uncompressed_len(path)?;
        let mut best = f64::INFINITY;
        let mut peak = 0u64;
        let mut shape = (0, 0);
        for _ in 0..a.repeat.max(1) {
            reset_peak();
            let base = current_rss().unwrap_or(0);
            let t0 = Instant::now();
            let t =
                data::load(path, opts).with_context(|| format!("loading {}", path.display()))?;
            let secs = t0.elapsed().as_secs_f64();
            best = best.min(secs);
            peak = peak.max(peak_rss().unwrap_or(0).saturating_sub(base));
            shape = (t.n_rows, t.n_features);
            drop(t);
        }
        let f32_bytes = (shape.0 * shape.1 * 4) as f64;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{:<34} {:>9} {:>5} {:>9.1} {:>9.3} {:>11.0} {:>9.1} {:>10.1} {:>6.2}",
            name,
            shape.0,
            shape.1,
            text_bytes as f64 / 1e6,
            best,
            shape.0 as f64 / best,
            text_bytes as f64 / 1e6 / best,
            peak as f64 / 1e6,
            peak as f64 / f32_bytes
        );
    }
    println!("(peak MB = peak resident memory above the process's baseline during one load; ×f32 = that over the f32 size of the loaded table)");
    Ok(())
}

fn uncompressed_len(path: &Path) -> Result<u64> {
    if path.to_string_lossy().ends_with(".gz") {
        let f = std::fs::File::open(path)?;
        let mut d = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
        Ok(std::io::copy(&mut d, &mut std::io::sink())?)
    } else {
        Ok(std::fs::metadata(path)?.len())
    }
}
