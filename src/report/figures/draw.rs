//! The figures themselves, drawn with the kit from the series.

use super::*;

pub(super) fn draw<DB: DrawingBackend>(
    fig: &Figure,
    data: &RunData,
    root: &Area<DB>,
    s: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pen = Pen { s };
    root.fill(&WHITE)?;
    let title = fig.title(data);
    match fig {
        Figure::Histograms {
            unit,
            episode,
            seen,
            unit_axis,
        } => draw_histograms_with(
            root,
            pen,
            &title,
            &histogram_grid(data, unit, *episode, *seen),
            false,
            *unit_axis,
        ),
        Figure::Curves {
            unit,
            family,
            curve,
            episode,
        } => {
            let (ep, series) = curve_series(data, unit, family, *curve, *episode);
            let chance = match (curve, ep) {
                (Curve::Pr, Some(e)) => prevalence(data, unit, family, e),
                _ => None,
            };
            draw_curves(root, pen, &title, *curve, &series, chance)
        }
        Figure::Training { unit } => draw_training(root, pen, &title, &training_series(data, unit)),
        Figure::Pcgrad { unit } => draw_pcgrad(root, pen, &title, &pcgrad_series(data, unit)),
        Figure::MethodAuc => draw_method_auc(root, pen, &title, &method_auc_bars(&data.metrics)),
        Figure::Paper {
            unit,
            episode,
            unit_axis,
            ..
        } => draw_histograms_with(
            root,
            pen,
            &title,
            &paper_grid(data, unit, *episode),
            true,
            *unit_axis,
        ),
        Figure::Summary => draw_summary(root, pen, &title, &summary_series(&data.metrics)),
        Figure::TestRoc { family, seed } => {
            draw_test_roc(root, pen, &title, &test_roc_series(data, family, *seed))
        }
        Figure::Transfer {
            method,
            family,
            seed,
        } => draw_transfer(
            root,
            pen,
            &title,
            transfer_series(data, method, family, *seed).as_ref(),
        ),
    }
}

pub(super) fn draw_transfer<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    t: Option<&TransferSeries>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    let Some(t) = t else {
        return note(
            &body,
            pen,
            "no test scores with both normals and anomalies for this method, family and seed",
        );
    };
    let (body, band) = legend_band(&body, pen, t.lines.len() + 2);
    let lo = t.edges[0];
    let hi = t.edges[t.edges.len() - 1];
    let ymax = t
        .normals
        .iter()
        .chain(&t.anomalies)
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.12;
    let mut c = chart(
        &body,
        pen,
        "",
        lo..hi,
        nice_keys(lo, hi, 6, false),
        0.0..ymax,
        48.0,
        62.0,
    )?;
    let step = (hi - lo) / 6.0;
    let fx = |v: &f64| tick_for(*v, step);
    mesh(
        &mut c,
        pen,
        if t.clipped {
            "anomaly score (1st–99th percentile; the rest in the end bins)"
        } else {
            "anomaly score"
        },
        "share of class",
        &fx,
    )?;
    for (anomaly, shares) in [(false, &t.normals), (true, &t.anomalies)] {
        let col = class_color(anomaly);
        c.draw_series(
            shares
                .iter()
                .enumerate()
                .filter(|(_, &v)| v > 0.0)
                .map(|(i, &v)| {
                    Rectangle::new(
                        [(t.edges[i], 0.0), (t.edges[i + 1], v)],
                        col.mix(0.42).filled(),
                    )
                }),
        )?;
    }
    let mut items = vec![
        Swatch {
            label: format!("normal test rows ({})", t.n_normal),
            color: class_color(false),
            mark: Mark::Line,
        },
        Swatch {
            label: format!("{} test rows ({})", t.family, t.n_anomaly),
            color: class_color(true),
            mark: Mark::Line,
        },
    ];
    for (i, l) in t.lines.iter().enumerate() {
        if !l.tau.is_finite() {
            continue;
        }
        let col = policy_color(i);
        c.draw_series(DashedLineSeries::new(
            vec![(l.tau, 0.0), (l.tau, ymax)],
            pen.ipx(8.0),
            pen.ipx(4.0),
            pen.line(col, 2.0),
        ))?;
        items.push(Swatch {
            label: transfer_line_label(l),
            color: col,
            mark: Mark::Line,
        });
    }
    legend_column(&band, pen, &items)
}

/// The histogram grid (the paper's Fig. 2 layout: families in rows, checkpoints in columns);
/// `compact` (the paper figure): captions give only the AUC (the family is
/// in the title, the stage in the column head) and the panels after the first share its y axis
/// label.
pub(super) fn draw_histograms_with<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    grid: &HistGrid,
    compact: bool,
    unit_axis: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Swatch> = [false, true]
        .iter()
        .map(|&a| Swatch {
            label: if a { "anomaly" } else { "normal" }.into(),
            color: class_color(a),
            mark: Mark::Box,
        })
        .collect();
    let body = header(root, pen, title, &legend)?;
    if grid.rows.is_empty() {
        return note(
            &body,
            pen,
            "no histogram rows for this unit (no checkpoints recorded)",
        );
    }
    let (heads, panels) = body.split_vertically(pen.ipx(28.0));
    let nc = grid.columns.len().max(1);
    let cols = heads.split_evenly((1, nc));
    for (a, stage) in cols.iter().zip(&grid.columns) {
        let (w, h) = a.dim_in_pixel();
        // shift right by half the y-label area so headers sit over the plots
        a.draw(&Text::new(
            stage_label(*stage).to_string(),
            ((w as i32 + pen.ipx(50.0)) / 2, h as i32 / 2),
            pen.font(17.0).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }
    let n = grid.rows.len();
    let areas = panels.split_evenly((n, nc));
    for (r, row) in grid.rows.iter().enumerate() {
        for (k, p) in row.panels.iter().enumerate() {
            let area = &areas[r * nc + k];
            let tag = if row.held_out { "held out" } else { "seen" };
            let Some(p) = p else {
                note(
                    area,
                    pen,
                    &format!(
                        "{} ({tag}): no rows {}",
                        row.family,
                        stage_label(grid.columns[k])
                    ),
                )?;
                continue;
            };
            let auc = p
                .auc
                .map(|a| format!("{a:.3}"))
                .unwrap_or_else(|| "–".into());
            let caption = if compact {
                format!("AUC {auc}")
            } else {
                format!("{} ({tag}) · AUC {auc}", p.family)
            };
            let (nf, af) = (p.shares(false), p.shares(true));
            let own = |p: &HistPanel| {
                p.shares(false)
                    .into_iter()
                    .chain(p.shares(true))
                    .fold(0.0f64, f64::max)
            };
            // compact panels share the row's y axis (only the first shows its labels)
            let ymax = if compact {
                row.panels.iter().flatten().map(own).fold(0.0f64, f64::max)
            } else {
                own(p)
            }
            .max(1e-6)
                * 1.12;
            // the bins' own range (they span the checkpoint's scores): on a fixed [0, 1] axis
            // scores that crowd into a narrow band (ODIN's at T = 1000 sit within 1e-3 of 0.5)
            // become one spike and the separation cannot be seen
            let lo = p.edges.first().copied().unwrap_or(0.0);
            let hi = p.edges.last().copied().unwrap_or(1.0);
            let (lo, hi) = if unit_axis {
                // [0, 1], widened when the scores leave it (distances, log-likelihoods)
                (lo.min(0.0), hi.max(1.0))
            } else if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5, lo + 0.5)
            };
            let bottom = r + 1 == n;
            let mut c = chart(
                area,
                pen,
                &caption,
                lo..hi,
                nice_keys(lo, hi, if compact { 3 } else { 5 }, false),
                0.0..ymax,
                if bottom { 44.0 } else { 26.0 },
                match (k, compact) {
                    (0, _) => 60.0,
                    (_, true) => 8.0,
                    _ => 44.0,
                },
            )?;
            // ticks of a narrow score range need more than three decimals to differ
            let step = (hi - lo) / if compact { 3.0 } else { 5.0 };
            let fx = |v: &f64| tick_for(*v, step);
            mesh_with(
                &mut c,
                pen,
                if bottom { "anomaly score" } else { "" },
                if k == 0 { "share of class" } else { "" },
                &fx,
                !compact || k == 0,
            )?;
            for (anomaly, shares) in [(false, &nf), (true, &af)] {
                let col = class_color(anomaly);
                c.draw_series(shares.iter().enumerate().filter(|(_, &v)| v > 0.0).map(
                    |(i, &v)| {
                        Rectangle::new(
                            [(p.edges[i], 0.0), (p.edges[i + 1], v)],
                            col.mix(0.42).filled(),
                        )
                    },
                ))?;
                let mut step = Vec::with_capacity(2 * shares.len() + 2);
                step.push((p.edges[0], 0.0));
                for (i, &v) in shares.iter().enumerate() {
                    step.push((p.edges[i], v));
                    step.push((p.edges[i + 1], v));
                }
                step.push((p.edges[shares.len()], 0.0));
                c.draw_series(LineSeries::new(step, pen.line(col, 1.2)))?;
            }
        }
    }
    Ok(())
}

pub(super) fn draw_curves<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    curve: Curve,
    series: &[CurveSeries],
    chance: Option<f64>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if series.is_empty() {
        return note(&body, pen, "no curve rows for this family and unit");
    }
    let (xd, yd, metric) = match curve {
        Curve::Roc => ("false-positive rate", "true-positive rate", "AUC"),
        Curve::Pr => ("recall", "precision", "AP"),
    };
    // the legend in its own band under the plot: it never covers a curve
    let (body, band) = legend_band(&body, pen, series.len() + 1);
    let mut c = chart(
        &body,
        pen,
        "",
        0.0..1.0,
        nice_keys(0.0, 1.0, 5, false),
        0.0..1.02,
        48.0,
        62.0,
    )?;
    let fx = |v: &f64| tick(*v);
    mesh(&mut c, pen, xd, yd, &fx)?;
    let chance_line = match curve {
        Curve::Roc => Some((vec![(0.0, 0.0), (1.0, 1.0)], "chance".to_string())),
        Curve::Pr => chance.map(|p| {
            (
                vec![(0.0, p), (1.0, p)],
                format!("chance (prevalence {p:.3})"),
            )
        }),
    };
    if let Some((pts, _)) = &chance_line {
        c.draw_series(DashedLineSeries::new(
            pts.clone(),
            pen.ipx(7.0),
            pen.ipx(5.0),
            pen.line(GREY, 1.5),
        ))?;
    }
    for s in series {
        let col = stage_color(s.stage);
        c.draw_series(LineSeries::new(s.points.clone(), pen.line(col, 2.5)))?;
    }
    let mut items: Vec<Swatch> = Vec::new();
    if let Some((_, label)) = &chance_line {
        items.push(Swatch {
            label: label.clone(),
            color: GREY,
            mark: Mark::Line,
        });
    }
    items.extend(series.iter().map(|s| Swatch {
        label: format!(
            "{} ({metric} {})",
            stage_label(s.stage),
            s.summary
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "–".into())
        ),
        color: stage_color(s.stage),
        mark: Mark::Line,
    }));
    legend_column(&band, pen, &items)
}

/// A line in a panel of [`line_panel`].
pub(super) struct LineSpec {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

pub(super) fn episodes_f(v: &[(usize, f64)]) -> Vec<(f64, f64)> {
    v.iter().map(|&(e, y)| (e as f64, y)).collect()
}

/// A panel of lines with point markers over episodes; `zero` draws a dashed zero line.
#[allow(clippy::too_many_arguments)]
pub(super) fn line_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    pen: Pen,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[LineSpec],
    y_include: &[f64],
    zero: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pts = || lines.iter().flat_map(|l| l.points.iter());
    if pts().next().is_none() {
        let (w, _) = area.dim_in_pixel();
        area.draw(&Text::new(
            caption.to_string(),
            (w as i32 / 2, pen.ipx(14.0)),
            pen.font(15.0).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        return note(area, pen, "no rows (the method records none)");
    }
    let xs = span(pts().map(|p| p.0), &[]);
    let (xlo, xhi) = (
        xs.start
            .min(pts().map(|p| p.0).fold(f64::INFINITY, f64::min) - 0.5),
        xs.end
            .max(pts().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max) + 0.5),
    );
    let y = span(pts().map(|p| p.1), y_include);
    // headroom for the legend (top right): the y axis is extended so that the legend's rows sit
    // above every data point and never cover one
    let n = lines.iter().filter(|l| !l.points.is_empty()).count() as f64;
    let (_, ah) = area.dim_in_pixel();
    let plot_px = (f64::from(ah) - pen.s * (46.0 + 30.0 + 20.0)).max(1.0);
    let legend_px = pen.s * (28.0 * n + 24.0);
    let share = (legend_px / plot_px).clamp(0.0, 0.6);
    let y = y.start..y.start + (y.end - y.start) / (1.0 - share);
    let mut c = chart(
        area,
        pen,
        caption,
        xlo..xhi,
        nice_keys(xlo, xhi, 10, true),
        y,
        46.0,
        64.0,
    )?;
    let fx = |v: &f64| tick(*v);
    mesh(&mut c, pen, x_desc, y_desc, &fx)?;
    if zero {
        c.draw_series(DashedLineSeries::new(
            vec![(xlo, 0.0), (xhi, 0.0)],
            pen.ipx(7.0),
            pen.ipx(5.0),
            pen.line(GREY, 1.2),
        ))?;
    }
    let mut labelled = false;
    for l in lines.iter().filter(|l| !l.points.is_empty()) {
        c.draw_series(LineSeries::new(l.points.clone(), pen.line(l.color, 2.2)))?
            .label(l.label.clone())
            .legend(line_legend(l.color, pen));
        if l.points.len() <= 60 {
            let r = pen.ipx(3.2);
            c.draw_series(
                l.points
                    .iter()
                    .map(|&p| Circle::new(p, r, l.color.filled())),
            )?;
        }
        labelled = true;
    }
    if labelled {
        chart_legend(&mut c, pen, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}

pub(super) fn draw_training<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    t: &TrainingSeries,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if t.is_empty() {
        return note(
            &body,
            pen,
            "no loss, checkpoint or threshold rows for this unit",
        );
    }
    let panels = body.split_evenly((2, 2));
    let per_step = !t.loss_steps.is_empty();
    let loss: Vec<LineSpec> = if per_step { &t.loss_steps } else { &t.loss }
        .iter()
        .map(|(s, v)| LineSpec {
            label: format!("{} stage", s.as_str()),
            color: stage_color(*s),
            points: episodes_f(v),
        })
        .collect();
    let (caption, x_desc) = if per_step {
        let e = t
            .loss
            .first()
            .and_then(|l| l.1.first())
            .map(|p| p.0)
            .unwrap_or(1);
        (
            "loss per step (a single episode)".to_string(),
            format!("step of episode {e}"),
        )
    } else {
        (
            "loss (mean over each episode's steps)".to_string(),
            "episode".to_string(),
        )
    };
    line_panel(
        &panels[0],
        pen,
        &caption,
        &x_desc,
        "loss",
        &loss,
        &[],
        false,
    )?;
    let margins = [
        LineSpec {
            label: "seen (outer) families".into(),
            color: class_color(false),
            points: episodes_f(&t.margin_seen),
        },
        LineSpec {
            label: "held-out families".into(),
            color: class_color(true),
            points: episodes_f(&t.margin_held_out),
        },
    ];
    line_panel(
        &panels[1],
        pen,
        "calibrated-logit margin after outer (normals − anomalies)",
        "episode",
        "margin",
        &margins,
        &[0.0],
        true,
    )?;
    let temp = [LineSpec {
        label: "T".into(),
        color: stage_color(Stage::Outer),
        points: episodes_f(&t.temperature),
    }];
    line_panel(
        &panels[2],
        pen,
        "temperature T after outer",
        "episode",
        "T",
        &temp,
        &[],
        false,
    )?;
    let tau = [
        LineSpec {
            label: "τ*".into(),
            color: RGBColor(0x33, 0x33, 0x33),
            points: episodes_f(&t.tau),
        },
        LineSpec {
            label: "validation F1 at τ*".into(),
            color: RGBColor(0xCC, 0x79, 0xA7),
            points: episodes_f(&t.val_f1),
        },
    ];
    line_panel(
        &panels[3],
        pen,
        "threshold τ* (seen-family validation pool)",
        "episode",
        "value",
        &tau,
        &[0.0, 1.0],
        false,
    )
}

pub(super) fn draw_pcgrad<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    p: &PcgradSeries,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Swatch> = [PairKind::InnerVsFamily, PairKind::FamilyVsFamily]
        .iter()
        .map(|k| Swatch {
            label: k.label().into(),
            color: k.color(),
            mark: Mark::Dot,
        })
        .chain([Swatch {
            label: "episode start".into(),
            color: RGBColor(0xBB, 0xBB, 0xBB),
            mark: Mark::Line,
        }])
        .collect();
    let body = header(root, pen, title, &legend)?;
    if p.points.is_empty() {
        return note(
            &body,
            pen,
            "no PCGrad rows for this unit (the method records none, or no outer step ran)",
        );
    }
    let (_, h) = body.dim_in_pixel();
    let (top, bottom) = body.split_vertically((f64::from(h) * 0.6) as i32);
    let (xlo, xhi) = (-0.5, p.steps as f64 - 0.5);
    let keys = nice_keys(0.0, xhi, 10, true);
    let fx = |v: &f64| tick(*v);
    let boundaries: Vec<f64> = p
        .episode_starts
        .iter()
        .skip(1)
        .map(|&(_, i)| i as f64 - 0.5)
        .collect();
    {
        let mut c = chart(
            &top,
            pen,
            "cosine between task gradients, before projection",
            xlo..xhi,
            keys.clone(),
            -1.05..1.05,
            46.0,
            64.0,
        )?;
        mesh(&mut c, pen, "outer step", "cosine", &fx)?;
        for &b in &boundaries {
            c.draw_series(LineSeries::new(
                vec![(b, -1.05), (b, 1.05)],
                pen.line(RGBColor(0xBB, 0xBB, 0xBB), 1.0),
            ))?;
        }
        c.draw_series(DashedLineSeries::new(
            vec![(xlo, 0.0), (xhi, 0.0)],
            pen.ipx(7.0),
            pen.ipx(5.0),
            pen.line(BLACK, 1.2),
        ))?;
        let r = pen.ipx(2.6);
        for kind in [PairKind::InnerVsFamily, PairKind::FamilyVsFamily] {
            let col = kind.color();
            c.draw_series(
                p.points
                    .iter()
                    .filter(|q| q.kind == kind)
                    .map(|q| Circle::new((q.index as f64, q.cosine), r, col.mix(0.7).filled())),
            )?;
        }
    }
    let mut c = chart(
        &bottom,
        pen,
        &format!(
            "share of pairs projected (cosine < 0): {} overall",
            p.overall
                .map(|v| format!("{:.0}%", 100.0 * v))
                .unwrap_or_else(|| "–".into())
        ),
        xlo..xhi,
        keys,
        0.0..1.05,
        46.0,
        64.0,
    )?;
    mesh(&mut c, pen, "outer step", "share projected", &fx)?;
    for &b in &boundaries {
        c.draw_series(LineSeries::new(
            vec![(b, 0.0), (b, 1.05)],
            pen.line(RGBColor(0xBB, 0xBB, 0xBB), 1.0),
        ))?;
    }
    let col = RGBColor(0x33, 0x33, 0x33);
    c.draw_series(LineSeries::new(
        p.fraction.iter().map(|&(i, f)| (i as f64, f)),
        pen.line(col, 1.8),
    ))?;
    Ok(())
}

pub(super) fn draw_method_auc<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    b: &AucBars,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Swatch> = b
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| Swatch {
            label: m.clone(),
            color: method_color(i),
            mark: Mark::Bar,
        })
        .chain([Swatch {
            label: "chance (0.5)".into(),
            color: GREY,
            mark: Mark::Line,
        }])
        .collect();
    let body = header(root, pen, title, &legend)?;
    if b.bars.is_empty() {
        return note(&body, pen, "no test metrics in this run yet");
    }
    let g = b.families.len();
    let m = b.methods.len().max(1);
    // AUC-ROC is bounded by 1: the axis ends there and the error bars are clipped to [0, 1]
    let ymax = 1.04;
    let (xlo, xhi) = (-0.5, g as f64 - 0.5);
    let mut c = chart(
        &body,
        pen,
        "",
        xlo..xhi,
        (0..g).map(|i| i as f64).collect(),
        0.0..ymax,
        52.0,
        62.0,
    )?;
    let names = b.families.clone();
    let fx = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    mesh(&mut c, pen, "held-out family", "test AUC-ROC", &fx)?;
    if g > 1 && b.families.last().map(String::as_str) == Some("macro") {
        let x = g as f64 - 1.5;
        c.draw_series(LineSeries::new(
            vec![(x, 0.0), (x, ymax)],
            pen.line(RGBColor(0xBB, 0xBB, 0xBB), 1.0),
        ))?;
    }
    c.draw_series(DashedLineSeries::new(
        vec![(xlo, 0.5), (xhi, 0.5)],
        pen.ipx(7.0),
        pen.ipx(5.0),
        pen.line(GREY, 1.2),
    ))?;
    let width = 0.8 / m as f64;
    for (mi, method) in b.methods.iter().enumerate() {
        let col = method_color(mi);
        let mine: Vec<(f64, &AucBar)> = b
            .bars
            .iter()
            .filter(|x| &x.method == method)
            .filter_map(|x| {
                let gi = b.families.iter().position(|f| f == &x.family)?;
                Some((gi as f64 - 0.4 + (mi as f64 + 0.5) * width, x))
            })
            .collect();
        c.draw_series(mine.iter().map(|&(x, bar)| {
            Rectangle::new(
                [(x - width * 0.45, 0.0), (x + width * 0.45, bar.stat.mean)],
                col.mix(0.85).filled(),
            )
        }))?;
        let err = pen.line(BLACK, 1.3);
        for &(x, bar) in &mine {
            if bar.stat.n > 1 && bar.stat.std > 0.0 {
                let (lo, hi) = (
                    (bar.stat.mean - bar.stat.std).max(0.0),
                    (bar.stat.mean + bar.stat.std).min(1.0),
                );
                let cap = width * 0.18;
                c.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], err),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], err),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], err),
                ])?;
            }
        }
    }
    Ok(())
}

pub(super) fn draw_test_roc<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    series: &[TestRocSeries],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if series.is_empty() {
        return note(
            &body,
            pen,
            "no test scores with both normals and anomalies for this family",
        );
    }
    let (body, band) = legend_band(&body, pen, series.len() + 1);
    let mut c = chart(
        &body,
        pen,
        "",
        0.0..1.0,
        nice_keys(0.0, 1.0, 5, false),
        0.0..1.02,
        48.0,
        62.0,
    )?;
    let fx = |v: &f64| tick(*v);
    mesh(
        &mut c,
        pen,
        "false-positive rate",
        "true-positive rate",
        &fx,
    )?;
    c.draw_series(DashedLineSeries::new(
        vec![(0.0, 0.0), (1.0, 1.0)],
        pen.ipx(7.0),
        pen.ipx(5.0),
        pen.line(GREY, 1.5),
    ))?;
    let mut items = vec![Swatch {
        label: "chance".into(),
        color: GREY,
        mark: Mark::Line,
    }];
    for (i, s) in series.iter().enumerate() {
        let col = method_color(i);
        c.draw_series(LineSeries::new(s.points.clone(), pen.line(col, 2.5)))?;
        items.push(Swatch {
            label: format!(
                "{} (AUC {:.3}; {} normal, {} anomalous)",
                s.method, s.auc, s.n_normal, s.n_anomaly
            ),
            color: col,
            mark: Mark::Line,
        });
    }
    legend_column(&band, pen, &items)
}

/// The summary slide: macro AUC per method (a bar at the mean over seeds, a dot per seed) on
/// the left, the per-family heat map on the right.
pub(super) fn draw_summary<DB: DrawingBackend>(
    root: &Area<DB>,
    pen: Pen,
    title: &str,
    s: &SummarySeries,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let body = header(root, pen, title, &[])?;
    if s.methods.is_empty() {
        return note(&body, pen, "no test metrics in this run yet");
    }
    let (w, _) = body.dim_in_pixel();
    let (left, right) = body.split_horizontally(w * 2 / 5);
    // left: macro AUC per method
    let m = s.methods.len();
    let mut c = chart(
        &left,
        pen,
        "macro AUC-ROC (dots: seeds)",
        -0.5..m as f64 - 0.5,
        (0..m).map(|i| i as f64).collect(),
        0.0..1.04,
        230.0,
        62.0,
    )?;
    // method names under the bars, written downwards from the axis (long names fit)
    let none = |_: &f64| String::new();
    c.configure_mesh()
        .x_label_formatter(&none)
        .y_labels(6)
        .label_style(pen.font(14.0))
        .y_desc("AUC-ROC")
        .axis_desc_style(pen.font(15.0))
        .bold_line_style(BLACK.mix(0.10))
        .light_line_style(BLACK.mix(0.0))
        .axis_style(pen.line(BLACK.mix(0.75), 1.0))
        .draw()?;
    c.draw_series(DashedLineSeries::new(
        vec![(-0.5, 0.5), (m as f64 - 0.5, 0.5)],
        pen.px(5.0),
        pen.px(4.0),
        pen.line(BLACK.mix(0.4), 1.0),
    ))?;
    for (i, name) in s.methods.iter().enumerate() {
        let (px, py) = c.backend_coord(&(i as f64, 0.0));
        left.draw(&Text::new(
            name.clone(),
            (px, py + pen.ipx(2.0)),
            pen.font(14.0)
                .transform(FontTransform::Rotate90)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    for (i, mean) in s.macro_mean.iter().enumerate() {
        let col = method_color(i);
        if let Some(v) = mean {
            let x = i as f64;
            c.draw_series([Rectangle::new(
                [(x - 0.32, 0.0), (x + 0.32, *v)],
                col.mix(0.75).filled(),
            )])?;
            // the mean at the bar's foot, clear of the seeds' dots near its top
            c.draw_series([Text::new(
                format!("{v:.3}"),
                (x, 0.02),
                pen.font(15.0)
                    .color(&WHITE)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )])?;
        }
        let k = s.macro_per_seed[i].len().max(1) as f64;
        c.draw_series(s.macro_per_seed[i].iter().enumerate().map(|(j, &(_, v))| {
            let x = i as f64 - 0.2 + 0.4 * (j as f64 + 0.5) / k;
            Circle::new((x, v), pen.px(3.5), BLACK.filled())
        }))?;
    }
    // right: heat map families × methods
    let nf = s.families.len();
    let (hw, hh) = right.dim_in_pixel();
    let label_w = pen.ipx(150.0).min(hw as i32 / 3);
    let top = pen.ipx(130.0).min(hh as i32 / 3);
    let cell_w = ((hw as i32 - label_w - pen.ipx(20.0)) / m.max(1) as i32).max(1);
    let cell_h = ((hh as i32 - top - pen.ipx(20.0)) / nf.max(1) as i32).max(1);
    right.draw(&Text::new(
        "mean AUC-ROC per held-out family".to_string(),
        (label_w + cell_w * m as i32 / 2, pen.ipx(14.0)),
        pen.font(15.0).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    for (j, name) in s.methods.iter().enumerate() {
        right.draw(&Text::new(
            name.clone(),
            (label_w + cell_w * j as i32 + cell_w / 2, top - pen.ipx(6.0)),
            pen.font(13.0)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    for (r, fam) in s.families.iter().enumerate() {
        let y = top + cell_h * r as i32;
        right.draw(&Text::new(
            fam.clone(),
            (label_w - pen.ipx(8.0), y + cell_h / 2),
            pen.font(13.0).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        for (j, v) in s.cells[r].iter().enumerate() {
            let x = label_w + cell_w * j as i32;
            let fill = match v {
                // 0.5 (chance) white → 1.0 the outer stage's green; below chance vermilion
                Some(v) if *v >= 0.5 => {
                    let t = ((v - 0.5) / 0.5).clamp(0.0, 1.0);
                    let g = stage_color(Stage::Outer);
                    RGBColor(
                        (255.0 + t * (f64::from(g.0) - 255.0)) as u8,
                        (255.0 + t * (f64::from(g.1) - 255.0)) as u8,
                        (255.0 + t * (f64::from(g.2) - 255.0)) as u8,
                    )
                }
                Some(v) => {
                    let t = ((0.5 - v) / 0.5).clamp(0.0, 1.0);
                    let a = class_color(true);
                    RGBColor(
                        (255.0 + t * (f64::from(a.0) - 255.0)) as u8,
                        (255.0 + t * (f64::from(a.1) - 255.0)) as u8,
                        (255.0 + t * (f64::from(a.2) - 255.0)) as u8,
                    )
                }
                None => RGBColor(0xEE, 0xEE, 0xEE),
            };
            right.draw(&Rectangle::new(
                [(x, y), (x + cell_w - 1, y + cell_h - 1)],
                fill.filled(),
            ))?;
            right.draw(&Text::new(
                v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into()),
                (x + cell_w / 2, y + cell_h / 2),
                pen.font(13.0).pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
        }
    }
    Ok(())
}
