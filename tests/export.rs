//! `heldout export`: figures (SVG + PNG), tables (CSV, Markdown, LaTeX) and the experiment of a
//! real run folder made once by the built-in demo.

mod common;

use heldout::report::export::{export_run, figures_for, Format};
use heldout::report::{RunData, RunFolder};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// The demo run (2 episodes, seed 0), made once per test process.
fn run_folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // run folders of earlier test processes (over an hour old) are removed
        for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|d| d.as_secs() > 3600);
            if old && e.file_name().to_string_lossy().starts_with("export-test-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let root = tmp.join(format!("export-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        common::run_ok(
            Command::new(env!("CARGO_BIN_EXE_heldout"))
                .args([
                    "run",
                    "--demo",
                    "--set",
                    "episodes.count=2",
                    "--set",
                    "seeds=[0]",
                ])
                .arg("--out")
                .arg(&root),
        );
        std::fs::read_dir(&root)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    })
}

/// (width, height) from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// (width, height) attributes of an SVG's root element.
fn svg_size(svg: &str) -> (u32, u32) {
    let head = &svg[..svg.find('>').unwrap()];
    let attr = |name: &str| -> u32 {
        let i = head.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        head[i..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
}

/// metrics.csv read independently of the library: (family, method) → AUC per seed, in file order.
type Aucs = BTreeMap<(String, String), Vec<f64>>;

fn aucs(dir: &Path) -> (Vec<String>, Vec<String>, Aucs) {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let (cm, cf, ca, ct) = (
        col("method"),
        col("held_out"),
        col("auc_roc"),
        col("threshold"),
    );
    let (mut methods, mut fams) = (Vec::new(), Vec::new());
    let mut m: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        // one row per threshold policy: the τ* rows carry each unit once
        if f[ct] != "val_best_f1" {
            continue;
        }
        if !methods.contains(&f[cm].to_string()) {
            methods.push(f[cm].to_string());
        }
        if !fams.contains(&f[cf].to_string()) {
            fams.push(f[cf].to_string());
        }
        m.entry((f[cf].to_string(), f[cm].to_string()))
            .or_default()
            .push(f[ca].parse().unwrap());
    }
    (fams, methods, m)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn export_writes_every_figure_and_table() {
    let run = run_folder();
    let out = run.join("export-both");
    let t0 = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_heldout"))
        .arg("export")
        .arg(run)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!(
        "heldout export of the demo run: {secs:.2} s — {}",
        String::from_utf8_lossy(&o.stdout).trim()
    );

    let (fams, methods, auc) = aucs(run);
    assert_eq!(fams.len(), 6, "the demo holds out six families");
    let figs = out.join("figures");
    let exists = |name: &str| figs.join(name).exists();
    // every unit of the run: meta-learner units have checkpoints, PCGrad rows and curves
    let data = RunData::load(run).unwrap();
    let units = data.units();
    assert_eq!(units.len(), fams.len() * methods.len());
    for u in &units {
        let stem = format!("{}_seed{}_{}", u.method, u.seed, u.rotation);
        for ext in ["svg", "png"] {
            assert!(exists(&format!("training_{stem}.{ext}")), "training {stem}");
            if u.method == "meta_learner" {
                for kind in ["histograms", "roc", "pr", "pcgrad"] {
                    assert!(
                        exists(&format!("{kind}_{stem}.{ext}")),
                        "{kind}_{stem}.{ext}"
                    );
                }
            }
        }
    }
    for ext in ["svg", "png"] {
        assert!(exists(&format!("method_auc.{ext}")));
        for f in &fams {
            assert!(exists(&format!("test_roc_{f}_seed0.{ext}")), "test ROC {f}");
        }
    }
    for f in [
        "results.csv",
        "results.md",
        "results.tex",
        "table1.md",
        "table1.tex",
        "experiment.ron",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // the paper layout: a \multicolumn per held-out family (P, R, AUC, F1) and the macro block
    let t1 = std::fs::read_to_string(out.join("table1.tex")).unwrap();
    for f in &fams {
        assert!(
            t1.contains(&format!(
                "\\multicolumn{{4}}{{c}}{{{}}}",
                f.replace('_', "\\_")
            )),
            "{f}: {t1}"
        );
    }
    assert!(t1.contains("\\multicolumn{4}{c}{Macro}"), "{t1}");
    assert_eq!(
        std::fs::read_to_string(out.join("experiment.ron")).unwrap(),
        std::fs::read_to_string(run.join("config.ron")).unwrap()
    );

    // every figure in both formats; PNGs decode to twice the SVG size; SVGs are well formed
    let mut n_svg = 0;
    for e in std::fs::read_dir(&figs).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "no temp file left: {name}");
        if p.extension().unwrap() != "svg" {
            continue;
        }
        n_svg += 1;
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        let png = std::fs::read(p.with_extension("png")).unwrap();
        let (sw, sh) = svg_size(&svg);
        // paper figures: 300 dpi at 3.5 or 7 inches; the others twice their SVG size
        let paper = [
            heldout::report::figures::PaperWidth::OneColumn,
            heldout::report::figures::PaperWidth::TwoColumn,
        ]
        .into_iter()
        .find(|w| name.starts_with(&format!("paper_fig2_{}", w.tag())));
        match paper {
            Some(w) => {
                let s = w.png_scale();
                let want = (
                    (f64::from(sw) * s).round() as u32,
                    (f64::from(sh) * s).round() as u32,
                );
                assert_eq!(png_size(&png), want, "{name}");
                assert_eq!(want.0, (w.inches() * 300.0).round() as u32, "{name}");
            }
            None => {
                assert_eq!(png_size(&png), (2 * sw, 2 * sh), "{name}");
                assert!(sw >= 700 && sh >= 500, "{name}: {sw}×{sh}");
            }
        }
    }
    assert_eq!(n_svg, figures_for(&data).len());

    // titles and legends
    let read = |n: &str| std::fs::read_to_string(figs.join(n)).unwrap();
    let rot = &units
        .iter()
        .find(|u| u.method == "meta_learner")
        .unwrap()
        .rotation;
    let hist = read(&format!("histograms_meta_learner_seed0_{rot}.svg"));
    for t in [
        "pre",
        "after inner",
        "after outer",
        "normal",
        "anomaly",
        "AUC ",
    ] {
        assert!(hist.contains(t), "histograms: {t}");
    }
    assert!(hist.contains(&format!("{rot} (held out)")));
    for f in fams.iter().filter(|f| *f != rot) {
        assert!(
            hist.contains(&format!("{f} (seen)")),
            "histograms: seen family {f}"
        );
    }
    let roc = read(&format!("roc_meta_learner_seed0_{rot}.svg"));
    for t in [
        "ROC of",
        "chance",
        "pre (AUC",
        "after inner (AUC",
        "after outer (AUC",
        "false-positive rate",
    ] {
        assert!(roc.contains(t), "roc: {t}");
    }
    assert!(read(&format!("pr_meta_learner_seed0_{rot}.svg")).contains("after outer (AP"));
    let pc = read(&format!("pcgrad_meta_learner_seed0_{rot}.svg"));
    assert!(pc.contains("inner vs family") && pc.contains("family vs family"));
    let tr = read(&format!("training_meta_learner_seed0_{rot}.svg"));
    for t in [
        "inner stage",
        "outer stage",
        "held-out families",
        "temperature T",
    ] {
        assert!(tr.contains(t), "training: {t}");
    }
    let bars = read("method_auc.svg");
    for t in fams.iter().chain(&methods).chain([&"macro".to_string()]) {
        assert!(bars.contains(t.as_str()), "method_auc: {t}");
    }
    let test_roc = read(&format!("test_roc_{}_seed0.svg", fams[0]));
    assert!(test_roc.contains("seed 0"));
    for m in &methods {
        assert!(
            test_roc.contains(&format!("{m} (AUC")),
            "test roc legend {m}"
        );
    }

    // results.csv: one row per method × family, plus the macro rows
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    let head: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        lines.len(),
        1 + fams.len() * methods.len() + methods.len(),
        "{csv}"
    );
    let c_auc = head.iter().position(|h| *h == "auc_roc_mean").unwrap();
    assert_eq!(head[c_auc + 1], "auc_roc_std");
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), head.len(), "{l}");
        if f[0] != "macro" {
            let want = mean(&auc[&(f[0].to_string(), f[1].to_string())]);
            let got: f64 = f[c_auc].parse().unwrap();
            assert!((got - want).abs() < 1e-12, "{l}");
        }
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("macro,")).count(),
        methods.len()
    );

    // results.tex: in each family block the best AUC-ROC (computed here) is bold
    let tex = std::fs::read_to_string(out.join("results.tex")).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"));
    let esc = |s: &str| s.replace('_', "\\_");
    let auc_col = 2 + 5;
    let mut checked = 0;
    for f in &fams {
        let best = methods
            .iter()
            .map(|m| (m, mean(&auc[&(f.clone(), m.clone())])))
            .fold(None, |b: Option<(&String, f64)>, (m, v)| match b {
                Some((_, bv)) if bv >= v => b,
                _ => Some((m, v)),
            })
            .unwrap();
        let lines: Vec<&str> = tex.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with(&format!("{} & ", esc(f))))
            .unwrap();
        for l in &lines[start..start + methods.len()] {
            let cells: Vec<&str> = l.trim_end_matches(" \\\\").split(" & ").collect();
            let bold = cells[auc_col].starts_with("\\textbf{");
            let is_best = cells[1] == esc(best.0);
            let tie = methods.iter().any(|m| {
                m != best.0 && cells[1] == esc(m) && mean(&auc[&(f.clone(), m.clone())]) == best.1
            });
            assert!(bold == is_best || tie, "{f}: {l}");
            checked += usize::from(is_best);
        }
    }
    assert_eq!(checked, fams.len());
    assert!(std::fs::read_to_string(out.join("results.md"))
        .unwrap()
        .contains("| held-out family | method |"));
}

#[test]
fn export_run_writes_only_the_formats_asked_for() {
    let run = run_folder();
    let folder = RunFolder::load(run).unwrap();
    let out = run.join("export-svg");
    let files = export_run(&folder, &out, &[Format::Svg, Format::Svg]).unwrap();
    assert!(files.iter().all(|p| p.exists()));
    assert!(files.iter().all(|p| p.extension().unwrap() != "png"));
    let n_fig = files
        .iter()
        .filter(|p| p.extension().unwrap() == "svg")
        .count();
    assert_eq!(n_fig, figures_for(&folder.data).len(), "each figure once");
    // results.csv/.md/.tex, table1.md/.tex (the paper layout), experiment.ron
    assert_eq!(files.len(), n_fig + 6);
}

#[test]
fn export_of_a_folder_that_is_not_a_run_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (path, what) in [
        (dir.path().to_path_buf(), "not a run folder"),
        (dir.path().join("missing"), "no such folder"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_heldout"))
            .arg("export")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(what), "{err}");
        assert!(!dir.path().join("export").exists(), "nothing written");
    }
}
