//! The experiment file (RON): everything a run needs, in one place, validated once.
//!
//! Unknown fields are errors (`deny_unknown_fields` everywhere); a bad value is reported with
//! the field's path and the values allowed. Defaults are the spec's (`../shared/spec/methods.md`
//! §1.16) unless a comment says otherwise.

use crate::data::demo::DemoKind;
use crate::data::{CategoricalPolicy, LoadOptions, MissingPolicy, ScalerKind};
pub use crate::detect::{InnerMode, MetaLearnerParams, Method, OdinParams, PcgradTasks, TauPolicy};
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
    /// The decision thresholds every method's test metrics are reported at, one `metrics.csv`
    /// row each: `BestF1` (τ* on the seen-family validation pool, the paper's; always first in
    /// the tables) and `NormalFpr(α)` (a target false-positive rate on validation normals).
    #[serde(default = "crate::eval::ThresholdPolicy::defaults")]
    pub tau_policy: Vec<crate::eval::ThresholdPolicy>,
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

/// An experiment that passed [`Experiment::check`], with the folder its relative paths are
/// resolved against: what [`crate::experiment::run`] requires. Made only by
/// [`Experiment::load`] and [`Experiment::checked`], so a run can never start from an unchecked
/// file.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedExperiment {
    exp: Experiment,
    base: PathBuf,
}

impl CheckedExperiment {
    /// The folder relative data paths are resolved against (the experiment file's folder).
    pub fn base(&self) -> &Path {
        &self.base
    }
    /// The experiment.
    pub fn experiment(&self) -> &Experiment {
        &self.exp
    }
    /// The same experiment with another `compare` list, checked again.
    pub fn with_compare(self, compare: Vec<Method>) -> Result<CheckedExperiment, ConfigError> {
        let base = self.base;
        Experiment {
            compare,
            ..self.exp
        }
        .checked(Path::new("--compare"), &base)
    }

    /// Back to an editable experiment.
    pub fn into_inner(self) -> Experiment {
        self.exp
    }
}

impl std::ops::Deref for CheckedExperiment {
    type Target = Experiment;
    fn deref(&self) -> &Experiment {
        &self.exp
    }
}

/// The folder relative paths of an experiment file are resolved against.
pub fn base_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Experiment {
    /// The one checked loader (command line, workbench, playground): reads `path`, applies
    /// `--set FIELD=VALUE` overrides, parses and checks it.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<CheckedExperiment> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::load_text(&text, path, &base_of(path), overrides)
    }

    /// As [`Experiment::load`], from text (`path` names it in messages; `base` resolves its
    /// relative paths), e.g. the built-in demo or the workbench's editor.
    pub fn load_text(
        text: &str,
        path: &Path,
        base: &Path,
        overrides: &[String],
    ) -> anyhow::Result<CheckedExperiment> {
        use anyhow::Context as _;
        let text = super::overrides::apply_overrides(text, overrides)
            .with_context(|| path.display().to_string())?;
        Ok(Self::parse(&text, path)?.checked(path, base)?)
    }

    /// This experiment, checked (`path` names it in messages; `base` resolves relative paths).
    pub fn checked(self, path: &Path, base: &Path) -> Result<CheckedExperiment, ConfigError> {
        self.check(path)?;
        Ok(CheckedExperiment {
            exp: self,
            base: base.to_path_buf(),
        })
    }

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
        // t.0/t.1 + v.0/v.1 > 1, as t.0·v.1 > t.1·(v.1 − v.0) (v.0 ≤ v.1 above): products of two
        // u64 fit a u128, so no fraction can overflow the check
        let wide = |a: u64, b: u64| u128::from(a) * u128::from(b);
        if wide(t.0, v.1) > wide(t.1, v.1 - v.0) {
            return bad(
                "split",
                format!("train {}/{} + val {}/{} exceeds 1", t.0, t.1, v.0, v.1),
            );
        }
        if self.seeds.is_empty() {
            return bad("seeds", "give at least one seed, e.g. [0]".into());
        }
        for (i, p) in self.tau_policy.iter().enumerate() {
            if let Err(msg) = p.validate() {
                return bad(&format!("tau_policy[{i}]"), msg);
            }
            if self.tau_policy[..i].contains(p) {
                return bad(
                    &format!("tau_policy[{i}]"),
                    format!("{} is listed twice", p.label()),
                );
            }
        }
        if self.tau_policy.first() != Some(&crate::eval::ThresholdPolicy::BestF1) {
            return bad(
                "tau_policy",
                "must start with BestF1 (τ* on the seen-family validation pool, the tables' primary threshold), e.g. [BestF1, NormalFpr(0.05)]".into(),
            );
        }
        let ep = &self.episodes;
        if ep.count == 0 {
            return bad("episodes.count", "must be at least 1".into());
        }
        // Upper bounds: beyond them a run only repeats work or cannot fit (and sizes stay far
        // from integer overflow downstream).
        for (field, v, max, why) in [
            (
                "episodes.count",
                ep.count,
                1_000_000,
                "a million episodes is weeks of training",
            ),
            (
                "episodes.inner_tasks",
                ep.inner_tasks.1,
                1_000,
                "more inner tasks per episode only repeat families",
            ),
            (
                "episodes.outer_families",
                ep.outer_families,
                100_000,
                "more than any dataset's families",
            ),
            (
                "episodes.shots",
                ep.shots,
                10_000_000,
                "more rows than any family holds",
            ),
            (
                "episodes.families_per_task",
                ep.families_per_task,
                100_000,
                "more than any dataset's families",
            ),
        ] {
            if v > max {
                return bad(field, format!("{v} — at most {max} ({why})"));
            }
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
            if let Err(e) = m.check() {
                return bad(&format!("{field}.{}", e.param), e.msg);
            }
        }
        // Units, tables and model files are keyed by the method's name: two methods with one
        // name would merge their rows.
        let all: Vec<&Method> = std::iter::once(&self.method).chain(&self.compare).collect();
        for (i, m) in all.iter().enumerate() {
            if let Some(j) = all[..i].iter().position(|o| o.name() == m.name()) {
                let at = |k: usize| {
                    if k == 0 {
                        "method".to_string()
                    } else {
                        format!("compare[{}]", k - 1)
                    }
                };
                return bad(
                    &at(i),
                    format!(
                        "runs under the same name as {} ('{}'), so their results would merge — keep one, or change a parameter that the name shows",
                        at(j),
                        m.name()
                    ),
                );
            }
        }
        Ok(())
    }
}
