//! Run folders as data ([`RunData`], [`RunFolder`]), the results table ([`FamilyTable`]), and
//! figure and table files drawn from them.

pub mod export;
pub mod figures;
pub mod rundata;
pub mod table;

pub use rundata::{
    csv_field, list_runs, run_status, split_csv_line, CheckpointRow, Curve, CurveRow, EpochRow,
    HistRow, LossRow, MetricRow, PcgradRow, RunData, RunEntry, RunFolder, RunStatus, ScoreRow,
    ThresholdRow, UnitKey, FILES,
};
pub use table::{FamilyTable, Stat, TableRow};
