//! The experiment file (RON): everything a run needs, in one place, validated once.
//!
//! Unknown fields are errors (`deny_unknown_fields` everywhere); a bad value is reported with
//! the field's path and the values allowed. Defaults are the spec's (`../shared/spec/methods.md`
//! §1.16) unless a comment says otherwise.

use crate::data::demo::DemoKind;
use crate::data::{CategoricalPolicy, LoadOptions, MissingPolicy, ScalerKind};
pub use crate::split::{
    Curriculum, EpisodeSpec, FewShot, Fraction, HeldOut, PoolSpec, Priority, Roles, SplitSpec,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One experiment: data, roles, protocol, episodes, methods, seeds, device, output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    pub data: DataSpec,
    #[serde(default)]
    pub protocol: Protocol,
    pub roles: Roles,
    #[serde(default)]
    pub split: SplitSpec,
    #[serde(default)]
    pub pools: PoolSpec,
    #[serde(default)]
    pub scaler: ScalerKind,
    #[serde(default)]
    pub episodes: EpisodeSpec,
    /// The method under study.
    #[serde(default)]
    pub method: Method,
    /// Methods run beside it under the same protocol.
    #[serde(default)]
    pub compare: Vec<Method>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub device: Device,
    /// Folder under which each run gets its own folder.
    #[serde(default = "default_output")]
    pub output: PathBuf,
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}

fn default_output() -> PathBuf {
    PathBuf::from("runs")
}

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSpec {
    /// A file or folder, loaded and cleaned as by `heldout inspect`.
    File(FileSpec),
    /// A built-in demo dataset.
    Demo {
        #[serde(default)]
        kind: DemoKind,
        #[serde(default)]
        seed: u64,
    },
}

/// A dataset on disk and how to clean it (see [`LoadOptions`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Relative paths are relative to the experiment file's folder.
    pub path: PathBuf,
    pub label_column: String,
    #[serde(default)]
    pub family_map: Option<PathBuf>,
    #[serde(default)]
    pub keep_unmapped: bool,
    #[serde(default)]
    pub drop_columns: Vec<String>,
    #[serde(default)]
    pub categorical: CategoricalPolicy,
    #[serde(default)]
    pub missing: MissingPolicy,
    /// Families with fewer rows are removed before splitting (the protocol uses 50).
    #[serde(default)]
    pub min_family_rows: usize,
    #[serde(default)]
    pub drop_duplicates: bool,
    #[serde(default)]
    pub keep_identifiers: bool,
}

impl FileSpec {
    /// Loader options, with paths resolved against `base` (the experiment file's folder).
    pub fn load_options(&self, base: &Path) -> LoadOptions {
        LoadOptions {
            label_column: self.label_column.clone(),
            family_map: self.family_map.as_ref().map(|p| base.join(p)),
            keep_unmapped: self.keep_unmapped,
            drop_columns: self.drop_columns.clone(),
            categorical: self.categorical,
            missing: self.missing,
            min_family_rows: self.min_family_rows,
            drop_duplicates: self.drop_duplicates,
            keep_identifiers: self.keep_identifiers,
            ..LoadOptions::default()
        }
    }
}

/// How splits, pools and test blocks are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Protocol {
    /// The reference's leak-free leave-one-family-out protocol
    /// (`../shared/reference/PROTOCOL.md`): per-family SplitMix64 split, scaler on normal +
    /// seen train rows, round-robin validation pool of seen families, balanced test block of
    /// the first rows. Reproduces the reference's rows bit for bit.
    #[default]
    LofoBalanced,
}

/// A detector and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Method {
    /// The multidirectional meta-learner (spec §1).
    MetaLearner(MetaLearnerParams),
    /// ODIN with fixed temperature and perturbation (spec §1.20).
    Odin(OdinParams),
}

impl Default for Method {
    fn default() -> Self {
        Method::MetaLearner(MetaLearnerParams::default())
    }
}

impl Method {
    /// A short name for tables and folders.
    pub fn name(&self) -> String {
        match self {
            Method::MetaLearner(_) => "meta_learner".into(),
            Method::Odin(p) => format!("odin_T{}_eps{}", p.temperature, p.epsilon),
        }
    }
}

/// Inner-stage training data (spec §1.17 #1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InnerMode {
    /// The paper: normals only, BCE(ℓ₀, normal) + reconstruction.
    #[default]
    NormalsOnly,
    /// The authors' code: supervised BCE on anomalies and normals of the inner families.
    SupervisedInnerFamilies,
}

/// The threshold kept at the end (spec §1.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TauPolicy {
    /// The final episode's τ* (the paper).
    #[default]
    Final,
    /// The τ* with the best validation F1 over episodes (v5555).
    BestValF1,
}

/// PCGrad tasks (spec §1.17 #3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcgradTasks {
    /// Inner-consistency task + one task per outer family (the paper).
    #[default]
    PerFamily,
    /// Two tasks: inner-consistency and the pooled outer loss, fixed order (the code).
    TwoTasks,
    /// No gradient surgery.
    Off,
}

/// Hyper-parameters of the meta-learner; defaults from spec §1.16.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaLearnerParams {
    pub enc_hidden: usize,
    pub enc_depth: usize,
    pub embed_dim: usize,
    pub dropout: f64,
    pub drop_path: f64,
    pub feature_dropout: f64,
    pub dec_hidden: usize,
    pub dec_depth: usize,
    pub lambda_rec: f64,
    pub inner_mode: InnerMode,
    pub inner_lr: f64,
    pub weight_decay: f64,
    pub inner_batch: usize,
    pub inner_epochs: usize,
    pub inner_per_family: usize,
    pub outer_batch: usize,
    pub outer_epochs: usize,
    pub lr_head: f64,
    pub lr_last_block: f64,
    pub lr_temperature: f64,
    pub unfreeze_last_block: bool,
    pub margin: f64,
    pub alpha_margin: f64,
    pub epsilon: f64,
    pub lambda_t: f64,
    /// ODIN steps in training (each ε/steps) and at evaluation.
    pub odin_steps_train: usize,
    pub odin_steps_eval: usize,
    /// +1: confidence-increasing (the paper); −1: the authors' code.
    pub odin_sign: i8,
    pub pcgrad: PcgradTasks,
    pub clip_norm: f64,
    pub tau_policy: TauPolicy,
    /// Stage-0 encoder pre-training epochs on normal rows (0 = off).
    pub pretrain_epochs: usize,
}

impl Default for MetaLearnerParams {
    fn default() -> Self {
        MetaLearnerParams {
            enc_hidden: 256,
            enc_depth: 3,
            embed_dim: 128,
            dropout: 0.1,
            drop_path: 0.05,
            feature_dropout: 0.05,
            dec_hidden: 128,
            dec_depth: 2,
            lambda_rec: 0.1,
            inner_mode: InnerMode::NormalsOnly,
            inner_lr: 3e-3,
            weight_decay: 1e-4,
            inner_batch: 256,
            inner_epochs: 10,
            inner_per_family: 20_000,
            outer_batch: 128,
            outer_epochs: 5,
            lr_head: 3e-3,
            lr_last_block: 1e-4,
            lr_temperature: 1e-3,
            unfreeze_last_block: true,
            margin: 0.5,
            alpha_margin: 0.1,
            epsilon: 2e-3,
            lambda_t: 1e-2,
            odin_steps_train: 5,
            odin_steps_eval: 1,
            odin_sign: 1,
            pcgrad: PcgradTasks::PerFamily,
            clip_norm: 1.0,
            tau_policy: TauPolicy::Final,
            pretrain_epochs: 0,
        }
    }
}

/// ODIN baseline settings: same encoder + head trained supervised, scored with fixed T and ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OdinParams {
    pub temperature: f64,
    pub epsilon: f64,
    pub epochs: usize,
    pub lr: f64,
}

impl Default for OdinParams {
    fn default() -> Self {
        // OpenOOD's odin.yml default; 5 epochs and AdamW 1e-3 as the reference.
        OdinParams {
            temperature: 1000.0,
            epsilon: 0.0014,
            epochs: 5,
            lr: 1e-3,
        }
    }
}

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Device {
    /// CUDA device 0 when built with the `cuda` feature and one is present, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

/// A bad experiment file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read it ({source})")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {msg}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },
    #[error("{path}: {field}: {msg}")]
    Value {
        path: PathBuf,
        field: String,
        msg: String,
    },
}

impl Experiment {
    /// Reads and checks an experiment file.
    pub fn read(path: &Path) -> Result<Experiment, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let e = Experiment::parse(&text, path)?;
        e.check(path)?;
        Ok(e)
    }

    /// The RON dialect of experiment files: newtype variants may be written unwrapped
    /// (`Odin(temperature: 1000.0)`) and `Some(..)` may be left out.
    pub fn ron_options() -> ron::Options {
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
    }

    /// Parses RON text (`path` is only used in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Experiment, ConfigError> {
        Self::ron_options()
            .from_str::<Experiment>(text)
            .map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: e.span.start.line,
                col: e.span.start.col,
                msg: e.code.to_string(),
            })
    }

    /// The experiment as RON text (what `config.ron` of a run holds).
    pub fn to_ron(&self) -> String {
        let cfg = ron::ser::PrettyConfig::new()
            .depth_limit(4)
            .struct_names(true)
            .separate_tuple_members(false)
            .extensions(
                ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
                    | ron::extensions::Extensions::IMPLICIT_SOME,
            );
        ron::ser::to_string_pretty(self, cfg)
            .unwrap_or_else(|e| format!("// cannot serialise: {e}"))
    }

    /// Checks values that parse but make no sense.
    pub fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, msg: String| {
            Err(ConfigError::Value {
                path: path.to_path_buf(),
                field: field.into(),
                msg,
            })
        };
        if self.roles.normal.is_empty() {
            return bad("roles.normal", "name at least one normal family".into());
        }
        let frac_ok = |f: Fraction| f.1 > 0 && f.0 <= f.1;
        if !frac_ok(self.split.train) || !frac_ok(self.split.val) {
            return bad(
                "split",
                "fractions are (numerator, denominator) with 0 ≤ n ≤ d, d > 0".into(),
            );
        }
        let (t, v) = (self.split.train, self.split.val);
        if t.0 * v.1 + v.0 * t.1 > t.1 * v.1 {
            return bad(
                "split",
                format!("train {}/{} + val {}/{} exceeds 1", t.0, t.1, v.0, v.1),
            );
        }
        if self.seeds.is_empty() {
            return bad("seeds", "give at least one seed, e.g. [0]".into());
        }
        let ep = &self.episodes;
        if ep.count == 0 {
            return bad("episodes.count", "must be at least 1".into());
        }
        if ep.inner_tasks.0 > ep.inner_tasks.1 {
            return bad(
                "episodes.inner_tasks",
                format!(
                    "({}, {}) is not a range (min, max)",
                    ep.inner_tasks.0, ep.inner_tasks.1
                ),
            );
        }
        if ep.outer_families == 0 || ep.shots == 0 || ep.families_per_task == 0 {
            return bad(
                "episodes",
                "outer_families, shots and families_per_task must be at least 1".into(),
            );
        }
        if self.pools.histogram_bins == 0 {
            return bad("pools.histogram_bins", "must be at least 1".into());
        }
        if let ScalerKind::Robust { low, high } = self.scaler {
            if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                return bad(
                    "scaler",
                    format!("Robust(low: {low}, high: {high}) needs 0 ≤ low < high ≤ 100"),
                );
            }
        }
        for (i, m) in std::iter::once(&self.method)
            .chain(&self.compare)
            .enumerate()
        {
            let field = if i == 0 {
                "method".to_string()
            } else {
                format!("compare[{}]", i - 1)
            };
            match m {
                Method::MetaLearner(p) => {
                    if ![-1, 1].contains(&p.odin_sign) {
                        return bad(
                            &format!("{field}.odin_sign"),
                            format!("{} — allowed: 1 or -1", p.odin_sign),
                        );
                    }
                    for (n, v) in [
                        ("dropout", p.dropout),
                        ("drop_path", p.drop_path),
                        ("feature_dropout", p.feature_dropout),
                    ] {
                        if !(0.0..1.0).contains(&v) {
                            return bad(
                                &format!("{field}.{n}"),
                                format!("{v} — must be in [0, 1)"),
                            );
                        }
                    }
                    for (n, v) in [
                        ("inner_lr", p.inner_lr),
                        ("lr_head", p.lr_head),
                        ("epsilon", p.epsilon),
                    ] {
                        if !(v >= 0.0 && v.is_finite()) {
                            return bad(&format!("{field}.{n}"), format!("{v} — must be ≥ 0"));
                        }
                    }
                    if p.inner_batch == 0
                        || p.outer_batch == 0
                        || p.enc_hidden == 0
                        || p.embed_dim == 0
                        || p.enc_depth == 0
                    {
                        return bad(
                            &field,
                            "batch sizes and layer widths/depths must be at least 1".into(),
                        );
                    }
                }
                Method::Odin(p) => {
                    if p.temperature.is_nan() || p.temperature <= 0.0 {
                        return bad(
                            &format!("{field}.temperature"),
                            format!("{} — must be > 0", p.temperature),
                        );
                    }
                    if p.epsilon.is_nan() || p.epsilon < 0.0 {
                        return bad(
                            &format!("{field}.epsilon"),
                            format!("{} — must be ≥ 0", p.epsilon),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
