//! The workbench driven like a user, with egui_kittest (no display, no GPU): the real app is
//! built, widgets are found by role and label, clicked, and the state and text checked —
//! load → roles → run (a tiny run) → live view → results → runs → export.

mod common;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use heldout::experiment::{HeldOut, Method};
use heldout::gui::{Saved, Tab, Workbench};
use std::time::{Duration, Instant};

fn harness(wb: Workbench) -> Harness<'static, Workbench> {
    Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .with_max_steps(10_000)
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), wb)
}

/// Steps the UI until `done` holds (workers run on their own threads meanwhile).
fn step_until(
    h: &mut Harness<'static, Workbench>,
    what: &str,
    secs: u64,
    done: impl Fn(&Workbench) -> bool,
) {
    let t0 = Instant::now();
    while !done(h.state()) {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}; messages: {:?}",
            h.state().messages
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

#[test]
fn load_roles_run_results_runs_export() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Workbench::new(Saved::default()));

    // 1. Start: the built-in demo experiment, its data loading in the background.
    step_until(&mut h, "the demo data", 60, |wb| wb.data.table().is_some());
    assert_eq!(h.state().exp.name, "demo-lofo");
    // the summary heading (and the status bar's message)
    assert!(
        h.query_all_by_label_contains("rows × 12 features, 7 families")
            .count()
            >= 1
    );
    let rows_normal = {
        let t = h.state().data.table().unwrap();
        t.family_counts()[t.family_id("Normal").unwrap() as usize]
    };
    assert!(rows_normal > 0);

    // 2. Roles: open the tab, hold out one family by clicking, see the file follow.
    h.get_by_label("Roles & method").click();
    h.run();
    assert_eq!(h.state().tab, Tab::Experiment);
    let family = h.state().data.table().unwrap().families[1].clone();
    h.get_by_label(&format!("{family}: Held-out")).click();
    h.run();
    assert_eq!(
        h.state().exp.roles.held_out,
        HeldOut::Fixed(vec![family.clone()])
    );
    // what the file says is what the form shows
    let from_text = heldout::experiment::Experiment::parse(
        &h.state().experiment.ron_text,
        std::path::Path::new("view.ron"),
    )
    .unwrap();
    assert_eq!(from_text, h.state().exp, "the RON view follows the form");
    // the plan preview is computed in the background from the same experiment
    step_until(&mut h, "the plan", 60, |wb| {
        !wb.experiment.plan_text.is_empty() && !wb.experiment.busy()
    });
    assert!(
        h.state().experiment.plan_text.contains("rotations 1"),
        "{}",
        h.state().experiment.plan_text
    );

    // a tiny run: 2 episodes, one seed, into a temp folder
    {
        let wb = h.state_mut();
        wb.exp.episodes.count = 2;
        wb.exp.seeds = vec![0];
        wb.exp.output = tmp.path().to_path_buf();
        if let Method::MetaLearner(p) = &mut wb.exp.method {
            p.inner_per_family = 256;
            p.outer_epochs = 1;
        }
        wb.apply(heldout::gui::Command::RefreshRuns);
    }

    // 3. Run: the top bar's button queues it (once the changed experiment's cost is estimated)
    // and switches to the live view.
    h.get_by_label("▶ Run experiment").click();
    step_until(&mut h, "the run to be queued", 30, |wb| {
        !wb.jobs.list.is_empty()
    });
    assert_eq!(h.state().tab, Tab::Live);
    assert!(
        h.state().jobs.running_id().is_some()
            || h.state().jobs.list[0].state != heldout::gui::JobState::Queued
    );
    step_until(&mut h, "the run to finish", 300, |wb| {
        matches!(wb.jobs.list[0].state, heldout::gui::JobState::Finished)
    });
    let job_dir = h.state().jobs.list[0].dir.clone();
    assert!(job_dir.join("metrics.csv").exists());

    // 4. Live view: histograms at the three checkpoints of the held-out family, with AUCs.
    h.get_by_label(&format!("{family} (held out)"));
    h.get_by_label_contains("after outer · AUC");
    h.get_by_label("ROC / PR").click();
    h.run();
    h.get_by_label_contains(&format!("ROC · {family}"));
    h.get_by_label("PCGrad").click();
    h.run();
    assert!(h.query_all_by_label("inner vs family").count() >= 1);
    h.get_by_label("Loss · margin · T").click();
    h.run();
    h.get_by_label("Temperature T = exp(ρ)");

    // 5. Results: the per-family table; the numbers are those of metrics.csv.
    h.get_by_label("Results").click();
    h.run();
    let metrics = std::fs::read_to_string(job_dir.join("metrics.csv")).unwrap();
    let first = metrics.lines().nth(1).unwrap();
    let auc: f64 = first.split(',').nth(8).unwrap().parse().unwrap();
    let cell = format!("{auc:.3}");
    let hits = h.query_all_by_label_contains(&cell).count();
    assert!(hits >= 1, "AUC {cell} from metrics.csv shown in the table");
    assert!(h.query_all_by_label("macro").count() >= 1);
    // the core paper's layout: one row per method, P / R / AUC / F1 per held-out family, the
    // same numbers
    h.get_by_label("Paper layout (Table 1)").click();
    h.run();
    for c in ["P", "R", "AUC", "F1"] {
        assert!(h.query_all_by_label(c).count() >= 1, "{c} column header");
    }
    assert!(
        h.query_all_by_label_contains(&cell).count() >= 1,
        "AUC {cell} in the paper layout"
    );
    h.get_by_label("Per family").click();
    h.run();
    // the threshold-transfer panel: every policy of metrics.csv, with the recall each realises
    // on the held-out family (one seed: the cell is the value itself)
    h.get_by_label("Threshold transfer");
    for policy in [
        "val_best_f1",
        "val_fpr_0.01",
        "val_fpr_0.05",
        "val_worst_family_f1",
    ] {
        assert!(
            h.query_all_by_label(policy).count() >= 1,
            "{policy} row in the transfer table"
        );
    }
    let fpr5 = metrics
        .lines()
        .find(|l| l.contains(",val_fpr_0.05,") && l.starts_with("meta_learner,"))
        .unwrap();
    let recall: f64 = fpr5.split(',').nth(4).unwrap().parse().unwrap();
    assert!(
        h.query_all_by_label(&format!("{recall:.3}")).count() >= 1,
        "recall {recall:.3} at the 5 % policy shown"
    );
    // clicking a cell shows that family's curves
    h.query_all_by_label_contains(&cell).next().unwrap().click();
    h.run();
    assert_eq!(h.state().tab, Tab::Live);
    assert_eq!(h.state().view.family.as_deref(), Some(family.as_str()));

    // 6. Runs: the folder is listed; reopen it from disk and see its plots without training.
    h.get_by_label("Runs & compare").click();
    h.run();
    h.get_by_label("refresh").click();
    h.run();
    let name = job_dir.file_name().unwrap().to_string_lossy().to_string();
    h.get_by_label(&name);
    h.get_by_label("open").click();
    step_until(&mut h, "the run folder to open", 60, |wb| {
        wb.shown == Some(heldout::gui::Shown::Folder(job_dir.clone()))
    });
    assert_eq!(h.state().tab, Tab::Live);
    h.get_by_label("Histograms").click();
    h.run();
    h.get_by_label_contains("after outer · AUC");

    // 7. Export: figures and tables written into the run folder.
    h.get_by_label("Export run").click();
    step_until(&mut h, "the export", 120, |wb| {
        wb.messages.iter().any(|m| m.text.starts_with("exported "))
    });
    let export = job_dir.join("export");
    assert!(export.join("results.tex").exists() && export.join("results.csv").exists());
    let figures: Vec<_> = std::fs::read_dir(export.join("figures"))
        .unwrap()
        .flatten()
        .collect();
    assert!(figures
        .iter()
        .any(|f| f.path().extension().is_some_and(|e| e == "svg")));
    assert!(figures
        .iter()
        .any(|f| f.path().extension().is_some_and(|e| e == "png")));
    // the threshold-transfer figure of the view
    assert!(figures.iter().any(|f| f
        .file_name()
        .to_string_lossy()
        .starts_with("transfer_meta_learner_seed0_")));
}

#[test]
fn stop_ends_a_run_within_a_second_and_keeps_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Workbench::new(Saved::default()));
    step_until(&mut h, "the demo data", 60, |wb| wb.data.table().is_some());
    {
        let wb = h.state_mut();
        wb.exp.output = tmp.path().to_path_buf();
        wb.exp.episodes.count = 50;
    }
    h.get_by_label("▶ Run experiment").click();
    h.run_steps(2);
    // a second run queues behind the first (both start once the changed experiment's cost is
    // estimated)
    h.get_by_label("▶ Run experiment").click();
    h.run_steps(2);
    step_until(&mut h, "both runs", 30, |wb| wb.jobs.list.len() == 2);
    assert_eq!(h.state().jobs.queued_count(), 1);
    // wait until training is under way, then stop from the top bar
    step_until(&mut h, "training", 60, |wb| {
        wb.jobs.list[0].data.losses.len() > 3
    });
    h.get_by_label("■ Stop").click();
    step_until(&mut h, "the stop", 10, |wb| {
        matches!(wb.jobs.list[0].state, heldout::gui::JobState::Stopped)
    });
    let j = &h.state().jobs.list[0];
    let latency = j.stop_latency.unwrap();
    assert!(latency < Duration::from_secs(1), "stopped in {latency:?}");
    let status = std::fs::read_to_string(j.dir.join("status.txt")).unwrap();
    assert!(status.starts_with("stopped"), "{status}");
    assert!(j.dir.join("config.ron").exists() && j.dir.join("summary.md").exists());
    // the queued run starts when the first ends; stop it as well
    step_until(&mut h, "the queued run to start", 10, |wb| {
        wb.jobs.running_id() == Some(wb.jobs.list[1].id)
    });
    h.get_by_label("■ Stop").click();
    step_until(&mut h, "the second stop", 10, |wb| {
        matches!(wb.jobs.list[1].state, heldout::gui::JobState::Stopped)
    });
}

#[test]
fn bad_experiment_file_is_a_message_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.ron");
    std::fs::write(&p, "Experiment(name: \"x\", sedes: [1])").unwrap();
    let mut wb = Workbench::new(Saved::default());
    wb.apply(heldout::gui::Command::OpenExperiment(p.clone()));
    let last = wb.messages.last().unwrap();
    assert_eq!(last.level, heldout::gui::Level::Error);
    assert!(last.text.contains("bad.ron"), "{}", last.text);
    // the experiment is unchanged
    assert_eq!(wb.exp.name, "demo-lofo");
}

#[test]
fn session_round_trips_through_persistence() {
    let mut wb = Workbench::new(Saved::default());
    wb.exp.name = "restored-one".into();
    wb.exp.episodes.shots = 7;
    wb.tab = Tab::Results;
    let saved = wb.saved();
    let text = ron::to_string(&saved).unwrap();
    let back: Saved = ron::from_str(&text).unwrap();
    let wb2 = Workbench::new(back);
    assert_eq!(wb2.exp, wb.exp);
    assert_eq!(wb2.tab, Tab::Results);
}

#[test]
fn without_a_display_the_binary_says_so_and_points_to_heldout_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no display") && err.contains("heldout run"),
        "{err}"
    );
}

#[test]
fn two_run_folders_compare_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in ["[0]", "[1]"] {
        common::run_ok(
            std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
                .args(["run", "--demo", "--out"])
                .arg(tmp.path())
                .args(["--set", "episodes.count=1", "--set"])
                .arg(format!("seeds={seed}"))
                .args(["--set", "roles.held_out={\"Fixed\": [\"Burst\"]}"]),
        );
        // distinct folder names (they carry the second)
        std::thread::sleep(Duration::from_millis(1100));
    }
    let mut wb = Workbench::new(Saved::default());
    wb.exp.output = tmp.path().to_path_buf();
    wb.apply(heldout::gui::Command::RefreshRuns);
    assert_eq!(wb.runs.entries.len(), 2);
    let dirs: Vec<_> = wb.runs.entries.iter().map(|e| e.dir.clone()).collect();
    for d in &dirs {
        wb.apply(heldout::gui::Command::OpenRun(d.clone()));
    }
    let mut h = harness(wb);
    step_until(&mut h, "both runs to open", 60, |wb| {
        wb.runs.opened.len() == 2
    });
    h.get_by_label("Runs & compare").click();
    h.run();
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        // the compare checkbox of that run (its name is also in the folder list)
        h.get_by_role_and_label(egui::accesskit::Role::CheckBox, &name)
            .click();
        h.run();
    }
    assert_eq!(h.state().runs.compare.len(), 2);
    h.get_by_label("Macro over held-out families (mean ± std over seeds)");
    // each run's macro AUC (read independently from its metrics.csv) is in the table
    for d in &dirs {
        let m = std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        let auc: f64 = m
            .lines()
            .skip(1)
            .find(|l| l.starts_with("meta_learner,"))
            .unwrap()
            .split(',')
            .nth(8)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            h.query_all_by_label(&format!("{auc:.3}")).count() >= 1,
            "macro AUC {auc:.3} of {} shown",
            d.display()
        );
    }
}

/// The method forms are drawn from the registry: every method can be picked as the one under
/// study, its parameters appear with their names, a changed value reaches the experiment (and
/// its RON text), and "Compare with all" adds every other method.
#[test]
fn method_forms_come_from_the_registry() {
    let mut h = harness(Workbench::new(Saved::default()));
    step_until(&mut h, "the demo data", 60, |wb| wb.data.table().is_some());
    h.get_by_label("Roles & method").click();
    h.run();
    // the demo's meta-learner: its parameters, by their names in experiment files
    h.get_by_label("lambda rec");
    h.get_by_label("odin sign");
    // pick Isolation Forest as the method under study
    h.get_by_label("Method under study").click();
    h.run();
    h.get_by_label("Isolation Forest").click();
    h.run();
    assert_eq!(h.state().exp.method.key(), "IsolationForest");
    h.get_by_label("n estimators");
    h.get_by_label("max samples");
    // compare with every other registered method, each with its own form
    h.get_by_label("Compare with all").click();
    h.run();
    let keys: Vec<&str> = h.state().exp.compare.iter().map(|m| m.key()).collect();
    let others: Vec<&str> = Method::KEYS
        .iter()
        .copied()
        .filter(|k| *k != "IsolationForest")
        .collect();
    for k in &others {
        assert!(keys.contains(k), "{k} not added: {keys:?}");
    }
    h.get_by_label("gamma value"); // the one-class SVM's form
    h.get_by_label("half batch"); // the MLP's

    // the experiment as checked by the runner accepts what the form made
    let exp = h.state().exp.clone();
    assert!(exp
        .checked(std::path::Path::new("x.ron"), std::path::Path::new("."))
        .is_ok());
}

#[test]
fn cost_estimate_follows_the_form_refuses_what_cannot_fit_and_asks_before_a_long_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(Workbench::new(Saved::default()));
    step_until(&mut h, "the demo data", 60, |wb| wb.data.table().is_some());
    h.state_mut().exp.output = tmp.path().to_path_buf();
    h.get_by_label("Roles & method").click();
    h.run();
    let estimated =
        |wb: &Workbench| !wb.experiment.busy() && wb.experiment.estimate_of(&wb.exp).is_some();
    step_until(&mut h, "the estimate", 60, estimated);
    let demo_total = h
        .state()
        .experiment
        .estimate_of(&h.state().exp)
        .unwrap()
        .estimate
        .total_seconds;
    assert!(h.query_by_label_contains("whole run ~").is_some());

    // 1. live: more episodes (the form's most), a longer estimate (shown in the warning colour
    // past 10 minutes)
    h.state_mut().exp.episodes.count = 10_000;
    step_until(&mut h, "the new estimate", 60, estimated);
    let long = h
        .state()
        .experiment
        .estimate_of(&h.state().exp)
        .unwrap()
        .estimate
        .total_seconds;
    assert!(
        long > 100.0 * demo_total && long > 600.0,
        "{demo_total} → {long}"
    );
    assert!(h.query_by_label_contains("⚠ whole run ~").is_some());

    // 2. a long run asks once: cancel queues nothing; start queues it (a new area is invisible
    // in its first frame, its sizing pass: hence 3 steps)
    h.get_by_label("▶ Run experiment").click();
    h.run_steps(3);
    assert!(h.state().confirm_run.is_some());
    assert!(h.query_by_label_contains("estimated to take ~").is_some());
    assert!(h.state().jobs.list.is_empty());
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.state().confirm_run.is_none() && h.state().jobs.list.is_empty());
    h.get_by_label("▶ Run experiment").click();
    h.run_steps(3);
    h.get_by_label("Start the run").click();
    h.run_steps(2);
    assert!(h.state().confirm_run.is_none());
    assert_eq!(h.state().jobs.list.len(), 1);
    let id = h.state().jobs.list[0].id;
    h.state_mut().apply(heldout::gui::Command::StopRun(id));
    step_until(&mut h, "the stop", 20, |wb| {
        !matches!(
            wb.jobs.list[0].state,
            heldout::gui::JobState::Queued | heldout::gui::JobState::Running
        )
    });

    // 3. too wide to fit: the plan says so in one line naming the field; Run refuses
    h.state_mut().exp.episodes.count = 5;
    if let Method::MetaLearner(p) = &mut h.state_mut().exp.method {
        p.enc_hidden = 16_384;
        p.enc_depth = 64;
    }
    step_until(&mut h, "the wide estimate", 60, estimated);
    // (starting the run went to the live view)
    h.get_by_label("Roles & method").click();
    h.run();
    assert!(h
        .query_by_label_contains("✖ `method.enc_hidden: 16384` needs ~")
        .is_some());
    h.get_by_label("▶ Run experiment").click();
    h.run_steps(2);
    assert_eq!(h.state().jobs.list.len(), 1, "no second job");
    let last = h.state().messages.last().unwrap();
    assert_eq!(last.level, heldout::gui::Level::Error);
    assert!(
        last.text.contains("`method.enc_hidden: 16384`"),
        "{}",
        last.text
    );
}

#[test]
fn histograms_keep_their_aspect_when_resized_and_presentation_mode_zooms() {
    // a finished run of the demo (2 episodes, one rotation), opened in the live view
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = heldout::experiment::Experiment::load_text(
        heldout::experiment::DEMO_EXPERIMENT,
        std::path::Path::new("demo.ron"),
        std::path::Path::new("."),
        &[],
    )
    .unwrap()
    .experiment()
    .clone();
    exp.seeds = vec![0];
    exp.episodes.count = 2;
    exp.compare.clear();
    exp.roles.held_out = HeldOut::Fixed(vec!["Drift".into()]);
    let dir = tmp.path().join("run");
    let checked = exp
        .checked(std::path::Path::new("demo.ron"), std::path::Path::new("."))
        .unwrap();
    heldout::experiment::run(
        &checked,
        &dir,
        &std::sync::atomic::AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let mut h = harness(Workbench::new(Saved::default()));
    h.state_mut()
        .apply(heldout::gui::Command::OpenRun(dir.clone()));
    step_until(&mut h, "the run to open", 30, |wb| wb.tab == Tab::Live);
    h.get_by_label("also seen families").click();
    h.run();
    // the distance between two families' rows: heading, caption and a panel 0.45–0.75 of its
    // width (7 rows do not fit: the grid scrolls)
    let row_pitch = |h: &Harness<'static, Workbench>| {
        let a = h.get_by_label("Drift (held out)").rect();
        let b = h
            .query_all_by_label_contains("(seen)")
            .next()
            .unwrap()
            .rect();
        b.min.y - a.min.y
    };
    let wide = row_pitch(&h);
    h.set_size(egui::vec2(900.0, 1000.0));
    h.run();
    let narrow = row_pitch(&h);
    assert!(
        wide > narrow * 1.3,
        "rows {wide:.0} px apart at 1500 px wide, {narrow:.0} at 900"
    );
    // presentation mode: everything larger, and back
    h.get_by_label("presentation").click();
    h.run();
    assert_eq!(h.ctx.zoom_factor(), 1.5);
    assert!(h.state().view.presenting);
    h.get_by_label("presentation").click();
    h.run();
    assert_eq!(h.ctx.zoom_factor(), 1.0);
}

/// A method trained in epochs (Deep CORAL, one of the core paper's baselines) shows each of its
/// loss terms — cross-entropy, reconstruction, the CORAL distance — in a plot of its own in the
/// live view, and its final histograms like any method.
#[test]
fn a_baselines_loss_terms_are_shown_each_in_its_own_plot() {
    let tmp = tempfile::tempdir().unwrap();
    common::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
            .args(["run", "--demo", "--out"])
            .arg(tmp.path())
            .args([
                "--set",
                "method=DeepCoral(epochs: 3)",
                "--set",
                "compare=[]",
                "--set",
                "seeds=[0]",
                "--set",
                "roles.held_out={\"Fixed\": [\"Burst\"]}",
            ]),
    );
    let mut wb = Workbench::new(Saved::default());
    wb.exp.output = tmp.path().to_path_buf();
    wb.apply(heldout::gui::Command::RefreshRuns);
    let dir = wb.runs.entries[0].dir.clone();
    wb.apply(heldout::gui::Command::OpenRun(dir.clone()));
    let mut h = harness(wb);
    step_until(&mut h, "the run to open", 60, |wb| {
        wb.shown == Some(heldout::gui::Shown::Folder(dir.clone()))
    });
    h.state_mut().apply(heldout::gui::Command::ShowFamily {
        method: "coral".into(),
        family: "Burst".into(),
    });
    h.run();
    h.get_by_label("Loss · margin · T").click();
    h.run();
    for term in ["ce", "recon", "coral"] {
        assert_eq!(
            h.query_all_by_label(&format!("train · {term}")).count(),
            1,
            "one plot titled train · {term}"
        );
    }
    h.get_by_label("Histograms").click();
    h.run();
    h.get_by_label("Burst (held out)");
}
