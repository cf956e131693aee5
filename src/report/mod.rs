//! Run folders as data ([`RunData`], [`RunFolder`]), the results table ([`FamilyTable`]), and
//! figure and table files drawn from them.

pub mod export;
pub mod figures;
pub mod rundata;
pub mod table;

pub use rundata::{
    list_runs, CheckpointRow, Curve, CurveRow, EpochRow, HistRow, LossRow, MetricRow, PcgradRow,
    RunData, RunEntry, RunFolder, ScoreRow, ThresholdRow, UnitKey,
};
pub use table::{FamilyTable, Stat, TableRow};
