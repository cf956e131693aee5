//! heldout — a workbench for class-generalizable anomaly detection.
//!
//! Layers (imports point down only): `cli` → `split` → `data`; `rng` is shared.

pub mod cli;
pub mod data;
pub mod rng;
pub mod split;
