//! heldout — a workbench for class-generalizable anomaly detection.
//!
//! Layers (imports point down only): `cli` → `experiment` → `split` → `data`; `eval` (metrics) and `rng` are shared.

pub mod cli;
pub mod data;
pub mod detect;
pub mod eval;
pub mod experiment;
pub mod gui;
pub mod nn;
pub mod report;
pub mod rng;
pub mod split;
