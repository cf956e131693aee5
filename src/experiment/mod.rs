//! Experiments: the RON file, the plan it implies, and (later) the runner.

/// The built-in demo experiment (the same text as `experiments/demo.ron`).
pub const DEMO_EXPERIMENT: &str = include_str!("../../experiments/demo.ron");

pub mod bench;
mod config;
pub mod estimate;
pub mod overrides;
mod plan;
pub mod playground;
mod run;

pub use config::*;
pub use estimate::Estimate;
pub use overrides::apply_overrides;
pub use plan::{load_data as plan_load_data, priority_families, Plan, RotationPlan};
pub use run::{
    load_resumable, new_run_dir, read_units, resume, run, train_view, RunEvent, RunState,
    UNITS_FILE,
};
