//! Issue 19: one figure module for the screen and the paper. The series behind the figures
//! equal an independent computation from the run folder's CSV files
//! (`tests/fixtures/figures/series_from_csv.py`, standard-library Python); every exported figure
//! file is valid (the SVG parses and states its size, the PNG has the stated pixels, paper
//! figures 300 dpi at 3.5 and 7 inches); the live view draws the exporter's series in the
//! exporter's colours.

use heldout::experiment::{Experiment, HeldOut, DEMO_EXPERIMENT};
use heldout::report::export::{export_run, figures_for, ALL_FORMATS};
use heldout::report::figures::{
    histogram_grid, stage_color, summary_series, transfer_series, Figure, PaperWidth, PNG_SCALE,
};
use heldout::report::rundata::{RunData, RunFolder};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The demo, 2 episodes, seed 0, two held-out families (Drift, Scan) rotated, into a folder.
fn demo_run() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp =
        Experiment::load_text(DEMO_EXPERIMENT, Path::new("demo.ron"), Path::new("."), &[])
            .unwrap()
            .experiment()
            .clone();
    exp.seeds = vec![0, 1];
    exp.episodes.count = 2;
    exp.roles.held_out = HeldOut::Fixed(vec!["Drift".into()]);
    let dir = tmp.path().join("run");
    let checked = exp.checked(Path::new("demo.ron"), Path::new(".")).unwrap();
    heldout::experiment::run(&checked, &dir, &AtomicBool::new(false), &mut |_| {}).unwrap();
    (tmp, dir)
}

fn python_series(dir: &Path) -> serde_json::Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/figures/series_from_csv.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .expect("python3 (the independent computation) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn series_equal_an_independent_computation_from_the_csv_files() {
    let (_tmp, dir) = demo_run();
    let data = RunData::load(&dir).unwrap();
    let py = python_series(&dir);
    let hist = py["histograms"].as_array().unwrap();
    assert!(hist.len() >= 12, "{} panels", hist.len());
    for h in hist {
        let unit = data
            .units()
            .into_iter()
            .find(|u| {
                u.method == h["method"].as_str().unwrap()
                    && u.seed == h["seed"].as_u64().unwrap()
                    && u.rotation == h["rotation"].as_str().unwrap()
            })
            .unwrap();
        let grid = histogram_grid(&data, &unit, None, true);
        assert_eq!(grid.episode, h["episode"].as_u64().map(|e| e as usize));
        let row = grid
            .rows
            .iter()
            .find(|r| r.family == h["family"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{h}: no row"));
        let k = grid
            .columns
            .iter()
            .position(|s| s.as_str() == h["stage"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{h}: no column"));
        let p = row.panels[k].as_ref().unwrap();
        let edges: Vec<f64> = serde_json::from_value(h["edges"].clone()).unwrap();
        let normal: Vec<u64> = serde_json::from_value(h["normal"].clone()).unwrap();
        let anomaly: Vec<u64> = serde_json::from_value(h["anomaly"].clone()).unwrap();
        assert_eq!(p.edges.len(), edges.len(), "{h}");
        assert!(
            p.edges.iter().zip(&edges).all(|(a, b)| close(*a, *b)),
            "{h}"
        );
        assert_eq!(p.normal, normal, "{h}");
        assert_eq!(p.anomaly, anomaly, "{h}");
        match h["auc"].as_f64() {
            Some(a) => assert!(close(p.auc.unwrap(), a), "{h}"),
            None => assert!(p.auc.is_none()),
        }
        // both classes in the same bins, and the axis spans the scores (not [0, 1])
        assert_eq!(p.normal.len() + 1, p.edges.len());
    }
    let s = summary_series(&data.metrics);
    let ps = &py["summary"];
    assert_eq!(
        s.methods,
        serde_json::from_value::<Vec<String>>(ps["methods"].clone()).unwrap()
    );
    assert_eq!(
        s.families,
        serde_json::from_value::<Vec<String>>(ps["families"].clone()).unwrap()
    );
    for (i, per_seed) in s.macro_per_seed.iter().enumerate() {
        let want: Vec<(u64, f64)> =
            serde_json::from_value(ps["macro_per_seed"][i].clone()).unwrap();
        assert_eq!(per_seed.len(), want.len());
        for ((s1, v1), (s2, v2)) in per_seed.iter().zip(&want) {
            assert!(s1 == s2 && close(*v1, *v2));
        }
        assert!(close(
            s.macro_mean[i].unwrap(),
            ps["macro_mean"][i].as_f64().unwrap()
        ));
    }
    for (r, row) in s.cells.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            assert!(close(v.unwrap(), ps["cells"][r][j].as_f64().unwrap()));
        }
    }
    // the threshold-transfer lines: each policy's τ gives, on the test scores, the recall and
    // false-positive rate the figure and metrics.csv report
    let tr = py["transfer"].as_array().unwrap();
    assert!(
        tr.len() >= 2 * 4 && tr.len() % 4 == 0,
        "two seeds × four policies per held-out family: {}",
        tr.len()
    );
    for t in tr {
        let series = transfer_series(
            &data,
            t["method"].as_str().unwrap(),
            t["family"].as_str().unwrap(),
            t["seed"].as_u64().unwrap(),
        )
        .unwrap();
        assert_eq!(series.n_normal as u64, t["n_normal"].as_u64().unwrap());
        assert_eq!(series.n_anomaly as u64, t["n_anomaly"].as_u64().unwrap());
        let line = series
            .lines
            .iter()
            .find(|l| l.policy == t["policy"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{t}: no line"));
        assert!(close(line.tau, t["tau"].as_f64().unwrap()), "{t}");
        assert!(close(line.recall, t["recall"].as_f64().unwrap()), "{t}");
        assert!(close(line.fpr, t["fpr"].as_f64().unwrap()), "{t}");
        // every score is in a bin: the shares of each class sum to 1
        assert!(close(series.normals.iter().sum::<f64>(), 1.0));
        assert!(close(series.anomalies.iter().sum::<f64>(), 1.0));
        assert_eq!(series.edges.len(), series.normals.len() + 1);
    }
}

/// The root element's `width` and `height` of an SVG text, after checking that the whole text
/// is well-formed XML.
fn svg_size(text: &str) -> (u32, u32) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(text);
    let mut size = None;
    loop {
        match r
            .read_event()
            .unwrap_or_else(|e| panic!("SVG does not parse: {e}"))
        {
            Event::Start(e) | Event::Empty(e) if size.is_none() => {
                assert_eq!(e.name().as_ref(), b"svg");
                let attr = |k: &[u8]| -> u32 {
                    let a = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k)
                        .unwrap();
                    std::str::from_utf8(&a.value).unwrap().parse().unwrap()
                };
                size = Some((attr(b"width"), attr(b"height")));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    size.unwrap()
}

#[test]
fn every_exported_figure_file_is_valid_and_paper_figures_print_at_300_dpi() {
    let (_tmp, dir) = demo_run();
    let data = RunData::load(&dir).unwrap();
    let folder = RunFolder::load(&dir).unwrap();
    let out = dir.join("export");
    export_run(&folder, &out, &ALL_FORMATS).unwrap();
    let figs = figures_for(&data);
    let kinds = |pred: fn(&Figure) -> bool| figs.iter().filter(|f| pred(f)).count();
    // one paper figure per unit and width, and the summary slide
    assert_eq!(
        kinds(|f| matches!(f, Figure::Paper { .. })),
        2 * data.units().len()
    );
    assert_eq!(kinds(|f| matches!(f, Figure::Summary)), 1);
    for fig in &figs {
        // (stems may hold dots, e.g. `eps0.0014`: the extension is appended, not replaced)
        let file = |ext: &str| {
            out.join("figures")
                .join(format!("{}.{ext}", fig.file_stem()))
        };
        let (w, h) = fig.size(&data);
        let svg = std::fs::read_to_string(file("svg")).unwrap();
        assert_eq!(svg_size(&svg), (w, h), "{}", fig.file_stem());
        let png = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(file("png")).unwrap(),
        ))
        .read_info()
        .unwrap();
        let want = (
            (f64::from(w) * fig.png_scale()).round() as u32,
            (f64::from(h) * fig.png_scale()).round() as u32,
        );
        assert_eq!(
            (png.info().width, png.info().height),
            want,
            "{}",
            fig.file_stem()
        );
        match fig {
            Figure::Paper { width, .. } => {
                // 3.5 in → 1050 px, 7 in → 2100 px at 300 dpi; the 13-px tick labels ≥ 7 pt
                let px = (width.inches() * 300.0).round() as u32;
                assert_eq!(png.info().width, px);
                assert!(13.0 * width.points_per_px() >= 7.0);
            }
            _ => assert_eq!(fig.png_scale(), f64::from(PNG_SCALE)),
        }
    }
    assert_eq!(
        PaperWidth::OneColumn.size().0 * 2,
        PaperWidth::TwoColumn.size().0
    );
}

#[test]
fn the_live_view_draws_the_exporters_series_in_its_colours() {
    let (_tmp, dir) = demo_run();
    let data = RunData::load(&dir).unwrap();
    for unit in data.units() {
        let x = heldout::gui::plots::extract(&data, &unit, None);
        assert_eq!(x.grid, histogram_grid(&data, &unit, x.episode, true));
        assert_eq!(
            x.training,
            heldout::report::figures::training_series(&data, &unit)
        );
        assert_eq!(
            x.pcgrad,
            heldout::report::figures::pcgrad_series(&data, &unit)
        );
        for (family, roc, pr) in &x.curves {
            for (curve, series) in [
                (heldout::report::Curve::Roc, roc),
                (heldout::report::Curve::Pr, pr),
            ] {
                let (_, want) =
                    heldout::report::figures::curve_series(&data, &unit, family, curve, x.episode);
                assert_eq!(series, &want);
            }
        }
    }
    for s in [
        heldout::detect::Stage::Pre,
        heldout::detect::Stage::Inner,
        heldout::detect::Stage::Outer,
        heldout::detect::Stage::Final,
    ] {
        let c = stage_color(s);
        assert_eq!(
            heldout::gui::plots::stage_color(s),
            egui::Color32::from_rgb(c.0, c.1, c.2)
        );
    }
}

#[test]
fn histogram_score_axis_spans_the_scores_or_zero_to_one() {
    let (_tmp, dir) = demo_run();
    let data = RunData::load(&dir).unwrap();
    let unit = data
        .units()
        .into_iter()
        .find(|u| u.method == "meta_learner")
        .unwrap();
    let svg = |unit_axis: bool| {
        heldout::report::figures::render_svg(
            &Figure::Histograms {
                unit: unit.clone(),
                episode: None,
                seen: false,
                unit_axis,
            },
            &data,
        )
        .unwrap()
    };
    let ticks = |s: &str| -> Vec<String> {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.parse::<f64>().is_ok())
            .map(String::from)
            .collect()
    };
    let (own, unit_range) = (ticks(&svg(false)), ticks(&svg(true)));
    // [0, 1]: ticks at 0.2 … 1 on the score axis
    for t in ["0.2", "0.4", "0.6", "0.8"] {
        assert!(unit_range.iter().any(|x| x == t), "{t} in {unit_range:?}");
    }
    // the scores' own range: the demo's meta-learner scores sit well inside (0, 0.2)
    let grid = histogram_grid(&data, &unit, None, false);
    let hi = grid.rows[0]
        .panels
        .iter()
        .flatten()
        .map(|p| *p.edges.last().unwrap())
        .fold(0.0, f64::max);
    assert!(hi < 0.2, "{hi}");
    assert!(!own.iter().any(|x| x == "0.8"), "{own:?}");
}
