//! Data layer: loading (CSV, gzip'd CSV, Parquet, folders of CSVs) with polars, cleaning with
//! every real-world quirk handled and reported, family maps, normalisers and the built-in demo.
//!
//! This layer imports neither candle nor egui.

pub mod demo;
mod error;
mod family_map;
mod load;
mod report;
mod scale;
mod table;
mod tokens;

pub use error::{DataError, Result};
pub use family_map::FamilyMap;
pub use load::{columns, load, CategoricalPolicy, LoadOptions};
pub use report::{
    inspect_text, thousands, CellCounts, CleaningReport, ColumnCells, DropReason, DroppedColumn,
    FileRead, MissingPolicy, OneHotColumn,
};
pub use scale::{quantile_sorted, Imputer, Scaler, ScalerKind};
pub use table::{FamilyId, Table};
