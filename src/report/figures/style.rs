//! One style for the screen and the paper: the colours of stages, classes and methods, the
//! labels of stages, and the sizes of figures. The workbench's live view draws with these colours
//! too (`gui::plots` converts them), so a figure and the view it was saved from agree.

use super::*;

/// The colour type of every figure (plotters'), shared with the workbench's views.
pub use plotters::style::RGBColor;

/// Label of a checkpoint stage in figures: `pre`, `after inner`, `after outer`.
pub fn stage_label(s: Stage) -> &'static str {
    match s {
        Stage::Pre => "pre",
        Stage::Inner => "after inner",
        Stage::Outer => "after outer",
        Stage::Pretrain => "stage 0",
        Stage::Final => "trained",
    }
}

/// The colour of a checkpoint stage (Okabe–Ito, colour-blind safe).
pub fn stage_color(s: Stage) -> RGBColor {
    match s {
        Stage::Pre => RGBColor(0x88, 0x88, 0x88),
        Stage::Inner => RGBColor(0xE6, 0x9F, 0x00),
        Stage::Outer => RGBColor(0x00, 0x9E, 0x73),
        Stage::Pretrain => RGBColor(0x56, 0xB4, 0xE9),
        Stage::Final => RGBColor(0x00, 0x9E, 0x73),
    }
}

/// The colour of a class: normal blue, anomaly vermilion.
pub fn class_color(anomaly: bool) -> RGBColor {
    if anomaly {
        RGBColor(0xD5, 0x5E, 0x00)
    } else {
        RGBColor(0x00, 0x72, 0xB2)
    }
}

/// The colour of the `i`-th method.
pub fn method_color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(0x00, 0x72, 0xB2),
        RGBColor(0xD5, 0x5E, 0x00),
        RGBColor(0x00, 0x9E, 0x73),
        RGBColor(0xCC, 0x79, 0xA7),
        RGBColor(0x56, 0xB4, 0xE9),
        RGBColor(0xE6, 0x9F, 0x00),
    ];
    C[i % C.len()]
}

/// The colour of the `i`-th threshold policy's line (after the two class colours).
pub fn policy_color(i: usize) -> RGBColor {
    // τ* first, in a grey that shows on the white figure and the dark workbench alike
    const C: [RGBColor; 5] = [
        RGBColor(0x8C, 0x8C, 0x8C),
        RGBColor(0x00, 0x9E, 0x73),
        RGBColor(0xCC, 0x79, 0xA7),
        RGBColor(0xE6, 0x9F, 0x00),
        RGBColor(0x56, 0xB4, 0xE9),
    ];
    C[i % C.len()]
}

pub(super) const GREY: RGBColor = RGBColor(0x60, 0x60, 0x60);

/// The printed width of a paper figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaperWidth {
    /// One column of a two-column paper: 3.5 in.
    OneColumn,
    /// The full text width: 7 in.
    TwoColumn,
}

/// Raster resolution of paper figures.
pub const PAPER_DPI: f64 = 300.0;

impl PaperWidth {
    pub const ALL: [PaperWidth; 2] = [PaperWidth::OneColumn, PaperWidth::TwoColumn];
    pub fn inches(self) -> f64 {
        match self {
            PaperWidth::OneColumn => 3.5,
            PaperWidth::TwoColumn => 7.0,
        }
    }
    /// In file names: `1col`, `2col`.
    pub fn tag(self) -> &'static str {
        match self {
            PaperWidth::OneColumn => "1col",
            PaperWidth::TwoColumn => "2col",
        }
    }
    /// The logical (SVG) size: 130 logical pixels per printed inch, so the figures' 13-pixel
    /// tick labels print at 7.2 pt and their 15-pixel captions at 8.3 pt.
    pub fn size(self) -> (u32, u32) {
        match self {
            PaperWidth::OneColumn => (455, 300),
            PaperWidth::TwoColumn => (910, 380),
        }
    }
    /// PNG pixels per logical pixel: 300 dpi at the printed width.
    pub fn png_scale(self) -> f64 {
        self.inches() * PAPER_DPI / f64::from(self.size().0)
    }
    /// Points per logical pixel when printed at this width.
    pub fn points_per_px(self) -> f64 {
        self.inches() * 72.0 / f64::from(self.size().0)
    }
}
