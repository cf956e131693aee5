//! heldout — a workbench for class-generalizable anomaly detection.
//!
//! Layers (imports point down only, checked by `tests/layers.rs`): the binary (`main.rs`) starts
//! `gui` or `cli`; both use `experiment`, which uses `report`, `detect`, `split` and `data`;
//! `detect` uses `nn`; `eval` (metrics), `atomic` (file writes) and `rng` are shared by all.
//! Nothing below `experiment` imports it, and neither front end imports the other.

pub mod atomic;
pub mod cli;
pub mod data;
pub mod detect;
pub mod eval;
pub mod experiment;
pub mod fuzz;
pub mod gui;
pub mod nn;
pub mod report;
pub mod rng;
pub mod split;
