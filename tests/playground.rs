//! The 2-D teaching playground: its stepping engine (one update per Step, a landscape that moves,
//! finite ODIN arrows, a prompt stop) and its panel (Step advances the status line).

use heldout::detect::Stage;
use heldout::experiment::playground::{
    families, Playground, PlaygroundOptions, PlaygroundUpdate, PointRole, Snapshot,
};
use std::time::Duration;

/// Long enough for any update on a loaded 2-core machine; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

/// The next snapshot (other reports are not expected while stepping).
fn next(p: &Playground) -> Box<Snapshot> {
    match p.wait(PATIENCE) {
        Some(PlaygroundUpdate::Probe(s)) => s,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[test]
fn each_step_is_one_update_and_the_outer_stage_moves_the_landscape() {
    let p = Playground::start(0, "Bridge").unwrap();
    let scene = p.scene().clone();
    assert_eq!(scene.held_out, "Bridge");
    assert_eq!(scene.seen.len(), families().len() - 1);
    assert!(!scene.seen.contains(&"Bridge".to_string()));
    assert!(scene.points.iter().any(|q| q.role == PointRole::Normal));
    assert!(scene
        .points
        .iter()
        .all(|q| (q.role == PointRole::HeldOut) == (scene.families[q.family] == "Bridge")));
    assert!(scene
        .points
        .iter()
        .filter(|q| q.role == PointRole::HeldOut)
        .all(|q| !q.trained_on));
    let cells = scene.grid.nx * scene.grid.ny;

    // The untrained model, at the start of episode 1; the worker then waits.
    let first = next(&p);
    assert_eq!(
        (first.update, first.episode, first.stage),
        (1, 1, Stage::Pre)
    );
    assert_eq!(first.loss, None);
    assert_eq!(first.scores.len(), cells);
    assert!(
        p.wait(Duration::from_millis(300)).is_none(),
        "it must wait for Step"
    );

    let mut prev = first;
    let mut outer_changed = false;
    let mut stages = vec![prev.stage];
    while !outer_changed {
        p.step();
        let s = next(&p);
        // exactly one update per Step
        assert_eq!(s.update, prev.update + 1);
        match s.stage {
            Stage::Pre => assert_eq!((s.episode, s.step), (prev.episode + 1, 0)),
            _ if prev.stage == s.stage => {
                assert_eq!((s.episode, s.step), (prev.episode, prev.step + 1))
            }
            _ => assert_eq!((s.episode, s.step), (prev.episode, 1)),
        }
        assert!(s.step <= s.steps);
        assert!(s.loss.is_some_and(f64::is_finite) || s.stage == Stage::Pre);
        assert!(s.temperature > 0.0 && s.temperature.is_finite());
        assert_eq!(s.scores.len(), cells);
        assert!(s.scores.iter().all(|v| (0.0..=1.0).contains(v)));
        // one finite arrow per arrow row, ending near where it starts (ε per coordinate)
        assert_eq!(s.arrow_to.len(), scene.arrow_from.len());
        assert!(scene.arrow_from.len() >= 12);
        for (a, b) in scene.arrow_from.iter().zip(&s.arrow_to) {
            assert!(b.iter().all(|v| v.is_finite()));
            for k in 0..2 {
                assert!((a[k] - b[k]).abs() <= scene.epsilon as f32 * 1.01 + 1e-6);
            }
        }
        assert!(!s.outer_families.is_empty());
        if s.stage == Stage::Outer {
            outer_changed = s.scores != prev.scores;
            assert!(outer_changed, "an outer update must move the landscape");
        }
        if stages.last() != Some(&s.stage) {
            stages.push(s.stage);
        }
        // no second snapshot without a second Step
        assert!(p.wait(Duration::from_millis(20)).is_none());
        prev = s;
        assert!(prev.update < 100, "no outer update within 100 steps");
    }
    assert_eq!(stages, [Stage::Pre, Stage::Inner, Stage::Outer]);
    assert!(prev.status().starts_with("episode 1/6 · outer step 1/"));
}

#[test]
fn same_seed_same_landscape() {
    let run = || {
        let p = Playground::start(3, "Halo").unwrap();
        let mut out = vec![next(&p).scores];
        for _ in 0..3 {
            p.step();
            out.push(next(&p).scores);
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn stop_returns_promptly_while_running_and_while_waiting() {
    for free_running in [false, true] {
        let mut p = Playground::start_with(PlaygroundOptions {
            held_out: "Ring".into(),
            ..Default::default()
        })
        .unwrap();
        next(&p);
        if free_running {
            p.run_with_delay(Duration::ZERO);
            next(&p);
            next(&p);
        }
        // stop from another thread so that a hang fails the test instead of blocking it
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            p.stop();
            let _ = tx.send(p.is_running());
        });
        let still_running = rx.recv_timeout(PATIENCE).expect("stop did not return");
        assert!(!still_running);
    }
}

#[test]
fn an_unknown_family_is_a_clear_error() {
    let e = Playground::start(0, "Nope").err().unwrap().to_string();
    assert!(e.contains("Nope") && e.contains("Bridge"), "{e}");
}

#[test]
fn the_panel_steps_when_its_step_button_is_clicked() {
    use egui_kittest::kittest::Queryable;
    let mut panel = heldout::gui::playground::PlaygroundPanel::new();
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1000.0, 800.0))
        .with_context_setup(heldout::gui::install_fonts)
        .build_ui(|ui| panel.ui(ui));
    let wait_for = |h: &mut egui_kittest::Harness<'_>, text: &str| {
        let t0 = std::time::Instant::now();
        while h.query_by_label_contains(text).is_none() {
            assert!(t0.elapsed() < PATIENCE, "no label containing '{text}'");
            std::thread::sleep(Duration::from_millis(20));
            h.step();
        }
    };
    wait_for(&mut harness, "episode 1/6 · start of episode");
    harness.get_by_label("Step").click();
    harness.step();
    wait_for(&mut harness, "episode 1/6 · inner step 1/");
    harness.get_by_label("Step").click();
    harness.step();
    wait_for(&mut harness, "episode 1/6 · inner step 2/");
    assert!(harness.query_by_label("Run").is_some());
    assert!(harness.query_by_label("Reset").is_some());
}
