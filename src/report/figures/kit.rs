//! The plotters kit: scaled pens, tick axes, legends drawn outside the data, notes.

use super::*;

/// Sizes scaled for the output (1 for SVG, [`PNG_SCALE`] for PNG).
#[derive(Clone, Copy)]
pub(super) struct Pen {
    pub(super) s: f64,
}

impl Pen {
    pub(super) fn px(&self, v: f64) -> u32 {
        (v * self.s).round().max(1.0) as u32
    }
    pub(super) fn ipx(&self, v: f64) -> i32 {
        (v * self.s).round() as i32
    }
    pub(super) fn font(&self, pt: f64) -> TextStyle<'static> {
        TextStyle::from(FontDesc::new(
            FontFamily::Name(FONT),
            pt * self.s,
            FontStyle::Normal,
        ))
        .color(&BLACK)
    }
    pub(super) fn line(&self, c: impl Color, w: f64) -> ShapeStyle {
        ShapeStyle {
            color: c.to_rgba(),
            filled: false,
            stroke_width: self.px(w),
        }
    }
}

pub(super) type Area<DB> = DrawingArea<DB, Shift>;
pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticks, RangedCoordf64>>;

/// An f64 axis with ticks exactly at given values (labels come from a formatter).
pub(super) struct Ticks {
    pub(super) inner: RangedCoordf64,
    pub(super) keys: Vec<f64>,
}

impl Ticks {
    pub(super) fn new(range: Range<f64>, keys: Vec<f64>) -> Ticks {
        Ticks {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }
    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// A legend entry drawn by [`legend_row`].
#[derive(Clone)]
pub(super) struct Swatch {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) mark: Mark,
}

#[derive(Clone, Copy)]
pub(super) enum Mark {
    /// A light box, as the overlapping histogram bars.
    Box,
    /// A solid box, as the bars of the method comparison.
    Bar,
    Line,
    Dot,
}

/// Draws the title (and a legend row) at the top; returns the area below.
pub(super) fn header<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    legend: &[Swatch],
) -> Result<Area<DB>>
where
    DB::ErrorType: 'static,
{
    let h = if legend.is_empty() { 46.0 } else { 76.0 };
    let (top, rest) = root.split_vertically(pen.ipx(h));
    let (w, _) = top.dim_in_pixel();
    top.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, pen.ipx(12.0)),
        pen.font(20.0).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    if !legend.is_empty() {
        legend_row(&top, pen, legend, pen.ipx(56.0))?;
    }
    Ok(rest)
}

/// A centred row of legend entries at height `y`.
pub(super) fn legend_row<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    items: &[Swatch],
    y: i32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let font = pen.font(14.0);
    let (sw, gap, sep) = (pen.ipx(24.0), pen.ipx(7.0), pen.ipx(26.0));
    let mut widths = Vec::with_capacity(items.len());
    for it in items {
        widths.push(area.estimate_text_size(&it.label, &font)?.0 as i32);
    }
    let total: i32 =
        widths.iter().map(|w| sw + gap + w).sum::<i32>() + sep * (items.len() as i32 - 1).max(0);
    let (aw, _) = area.dim_in_pixel();
    let mut x = ((aw as i32 - total) / 2).max(0);
    for (it, w) in items.iter().zip(&widths) {
        swatch(area, pen, it, (x, y), sw)?;
        area.draw(&Text::new(
            it.label.clone(),
            (x + sw + gap, y),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += sw + gap + w + sep;
    }
    Ok(())
}

pub(super) fn swatch<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    it: &Swatch,
    (x, y): (i32, i32),
    sw: i32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let hh = pen.ipx(6.0);
    match it.mark {
        Mark::Box => {
            area.draw(&Rectangle::new(
                [(x, y - hh), (x + sw, y + hh)],
                it.color.mix(0.45).filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x, y - hh), (x + sw, y + hh)],
                pen.line(it.color, 1.5),
            ))?;
        }
        Mark::Bar => area.draw(&Rectangle::new(
            [(x, y - hh), (x + sw, y + hh)],
            it.color.mix(0.85).filled(),
        ))?,
        Mark::Line => area.draw(&PathElement::new(
            vec![(x, y), (x + sw, y)],
            pen.line(it.color, 2.5),
        ))?,
        Mark::Dot => area.draw(&Circle::new(
            (x + sw / 2, y),
            pen.ipx(4.0),
            it.color.filled(),
        ))?,
    }
    Ok(())
}

/// A note in the middle of an area (for figures and panels without data).
pub(super) fn note<DB: DrawingBackend>(area: &Area<DB>, pen: Pen, text: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        pen.font(15.0)
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// Tick positions at a "nice" step (1, 2 or 5 × 10^k), at most about `max` of them; with
/// `integer` the step is at least 1.
pub fn nice_keys(lo: f64, hi: f64, max: usize, integer: bool) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![];
    }
    let raw = (hi - lo) / max.max(1) as f64;
    let mut e = raw.log10().floor() as i32;
    let mut m = [1i64, 2, 5, 10]
        .into_iter()
        .find(|&m| m as f64 * 10f64.powi(e) >= raw)
        .unwrap_or(10);
    if integer && e < 0 {
        (m, e) = (1, 0);
    }
    // k·m·10^e, divided by an exact power of ten so that 0.6 prints as 0.6
    let at = |k: i64| {
        if e >= 0 {
            (k * m) as f64 * 10f64.powi(e)
        } else {
            (k * m) as f64 / 10f64.powi(-e)
        }
    };
    let step = at(1);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(at).collect()
}

/// A tick label with enough decimals to tell ticks `step` apart (at least three).
pub(super) fn tick_for(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        ((-step.log10()).ceil().max(0.0) as usize + 1).clamp(3, 12)
    } else {
        3
    };
    if (v - v.round()).abs() < 1e-12 {
        return format!("{}", v.round() as i64);
    }
    let s = format!("{v:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Number text for tick labels: no trailing zeros.
pub(super) fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A padded range covering `values` (finite ones) and `include`.
pub(super) fn span(values: impl Iterator<Item = f64>, include: &[f64]) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values
        .chain(include.iter().copied())
        .filter(|v| v.is_finite())
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo < 1e-12 {
        let d = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            0.5
        };
        return (lo - d)..(hi + d);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad)..(hi + pad)
}

/// A chart on `area` with the house style; x ticks at `x_keys`.
#[allow(clippy::too_many_arguments)]
pub(super) fn chart<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    pen: Pen,
    caption: &str,
    x: Range<f64>,
    x_keys: Vec<f64>,
    y: Range<f64>,
    x_label_px: f64,
    y_label_px: f64,
) -> Result<Chart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let mut b = ChartBuilder::on(area);
    if !caption.is_empty() {
        b.caption(caption, pen.font(15.0));
    }
    let c = b
        .margin(pen.px(10.0))
        .margin_right(pen.px(18.0))
        .x_label_area_size(pen.px(x_label_px))
        .y_label_area_size(pen.px(y_label_px))
        .build_cartesian_2d(Ticks::new(x, x_keys), y)?;
    Ok(c)
}

/// Draws the mesh of a chart in the house style; `fx` formats x ticks.
pub(super) fn mesh<DB: DrawingBackend>(
    c: &mut Chart<'_, DB>,
    pen: Pen,
    x_desc: &str,
    y_desc: &str,
    fx: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    mesh_with(c, pen, x_desc, y_desc, fx, true)
}

/// [`mesh`], with the y tick labels left out when `y_labels` is false (panels sharing the
/// y axis of the panel to their left).
pub(super) fn mesh_with<DB: DrawingBackend>(
    c: &mut Chart<'_, DB>,
    pen: Pen,
    x_desc: &str,
    y_desc: &str,
    fx: &dyn Fn(&f64) -> String,
    y_labels: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let no_label = |_: &f64| String::new();
    let plain = |v: &f64| tick(*v);
    let fy: &dyn Fn(&f64) -> String = if y_labels { &plain } else { &no_label };
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(fy)
        .x_label_formatter(fx)
        .y_labels(7)
        .label_style(pen.font(13.0))
        .axis_desc_style(pen.font(14.0))
        .bold_line_style(BLACK.mix(0.10))
        .light_line_style(BLACK.mix(0.04))
        .axis_style(pen.line(BLACK.mix(0.75), 1.0))
        .set_all_tick_mark_size(pen.px(5.0))
        .draw()?;
    Ok(())
}

pub(super) fn chart_legend<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart<'a, DB>,
    pen: Pen,
    pos: SeriesLabelPosition,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    c.configure_series_labels()
        .position(pos)
        .margin(pen.px(10.0))
        .legend_area_size(pen.px(28.0))
        .label_font(pen.font(13.0))
        .background_style(WHITE.mix(0.88))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

pub(super) fn line_legend(
    color: RGBColor,
    pen: Pen,
) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    let (len, style) = (pen.ipx(22.0), pen.line(color, 2.5));
    move |(x, y)| PathElement::new(vec![(x, y), (x + len, y)], style)
}

/// Splits `area` into the plot (top) and a band under it for a legend of `items` rows.
pub(super) fn legend_band<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    items: usize,
) -> (Area<DB>, Area<DB>) {
    let (_, h) = area.dim_in_pixel();
    let band = (pen.ipx(22.0) * items as i32 + pen.ipx(14.0)).min(h as i32 / 2);
    area.split_vertically(h as i32 - band)
}

/// A legend as one row per item, left-aligned as a block centred in `area` (under a plot).
pub(super) fn legend_column<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    items: &[Swatch],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let font = pen.font(14.0);
    let (sw, gap) = (pen.ipx(24.0), pen.ipx(7.0));
    let mut widest = 0;
    for it in items {
        widest = widest.max(area.estimate_text_size(&it.label, &font)?.0 as i32);
    }
    let (aw, _) = area.dim_in_pixel();
    let x = ((aw as i32 - sw - gap - widest) / 2).max(0);
    for (k, it) in items.iter().enumerate() {
        let y = pen.ipx(10.0) + pen.ipx(22.0) * k as i32;
        swatch(area, pen, it, (x, y), sw)?;
        area.draw(&Text::new(
            it.label.clone(),
            (x + sw + gap, y),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}
