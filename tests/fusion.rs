//! heldout's own method (held-out-gated fusion) on real data: it learns, its gate chooses from
//! seen families only — the held-out family's rows cannot reach the choice — and it is
//! deterministic.

mod common;
use heldout::detect::fusion::{Fusion, FusionParams};
use heldout::detect::{Ctx, Detector, Event};
use heldout::experiment::{plan_load_data, train_view, Experiment, MetaLearnerParams, Method};
use heldout::rng::SplitMix64;
use heldout::split::{protocol_split, Roles};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// NSL-KDD (the 20 % file), seed 0, one held-out family: the experiment, its table and the
/// rotation's task, scaler and training view, as `heldout run` forms them.
struct Setup {
    table: heldout::data::Table,
    task: heldout::split::Task,
    scaler: heldout::data::Scaler,
    view: heldout::detect::TrainView,
    held: heldout::data::FamilyId,
}

fn setup(held_out: &str) -> Setup {
    let data = common::data_dir().join("nsl_kdd");
    let text = format!(
        r#"Experiment(
    name: "nsl-fusion",
    data: File(
        path: "{}",
        label_column: "attack",
        family_map: "{}",
        drop_columns: ["difficulty"],
        min_family_rows: 50,
    ),
    roles: Roles(normal: ["normal"], held_out: Fixed(["{held_out}"]), few_shot: All, ignored: []),
    method: Fusion(odin_epochs: 1, mlp_epochs: 1),
    seeds: [0],
    device: Cpu,
)"#,
        data.join("KDDTrain+_20Percent.csv.gz").display(),
        data.join("attack_family_map.csv").display()
    );
    let exp = Experiment::load_text(&text, Path::new("nsl.ron"), Path::new("."), &[]).unwrap();
    let exp = exp.into_inner();
    let table = plan_load_data(&exp, Path::new(".")).unwrap();
    let roles: &Roles = &exp.roles;
    let r = roles.resolve(&table).unwrap();
    let rot = r.rotations[0].clone();
    let splits = protocol_split(&table, 0);
    let task =
        heldout::split::build_task(&splits, &r.normal, &rot, 0, exp.episodes.shots, &exp.pools);
    let scaler = heldout::data::Scaler::fit(
        exp.scaler,
        &table.features,
        table.n_features,
        &task.scaler_rows,
    )
    .unwrap();
    let view = train_view(&exp.method, &exp, &table, &task, &scaler, &rot, &[], 0);
    Setup {
        held: rot.held_out[0],
        table,
        task,
        scaler,
        view,
    }
}

fn params() -> FusionParams {
    FusionParams {
        odin_epochs: 1,
        mlp_epochs: 1,
        ..Default::default()
    }
}

/// Fits the fusion on `view`; returns the detector and the gate's `epochs.csv` events.
fn fit(s: &mut heldout::detect::TrainView, d: usize) -> (Fusion, Vec<Event>) {
    let mut f = Fusion::new(
        params(),
        MetaLearnerParams::default(),
        d,
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let mut emit = |e: Event| {
        if let Event::Epoch { phase, .. } = &e {
            if phase.starts_with("gate") {
                events.push(e);
            }
        }
    };
    let mut ctx = Ctx {
        emit: &mut emit,
        stop: &stop,
        rng: SplitMix64::new(40),
        device: candle_core::Device::Cpu,
        probe: None,
    };
    f.fit(s, &mut ctx).unwrap();
    (f, events)
}

/// The held-out family's rows are in none of the blocks the gate chooses from, and changing
/// every row the training view holds of it (the checkpoint block kept for the curves) changes
/// neither the chosen weights nor a single score: the selection cannot see them.
#[test]
fn the_gate_cannot_see_the_held_out_family() {
    let mut s = setup("Probe");
    let d = s.table.n_features;
    // 1. by row: no held-out row in the normals, labelled rows or the validation pool
    let held_rows: std::collections::BTreeSet<usize> = s
        .table
        .family
        .iter()
        .enumerate()
        .filter(|(_, &f)| f == s.held)
        .map(|(r, _)| r)
        .collect();
    let seen_rows = s
        .task
        .normal_train
        .iter()
        .chain(s.task.normal_val.iter())
        .chain(s.task.few_shot.iter().flat_map(|(_, r)| r))
        .chain(s.task.seen_train.iter().flat_map(|(_, r)| r))
        .chain(s.task.val_pool.rows.iter());
    for r in seen_rows {
        assert!(
            !held_rows.contains(r),
            "held-out row {r} in a training block"
        );
    }
    assert!(s.view.val_family.iter().all(|&f| f != s.held));
    assert_eq!(s.view.val_family.len(), s.view.val.len());

    // 2. by behaviour: the same weights and scores after the held-out rows in the view change
    let (a, events) = fit(&mut s.view, d);
    let probe_rows = s
        .scaler
        .transform(&s.table.features, &s.task.test[0].1.rows);
    let sa = a.score(&probe_rows).unwrap();
    let ga = a.gated().unwrap().clone();
    // the held-out family's checkpoint block: replaced by large values
    let mut touched = 0;
    for (f, rows) in s.view.checkpoint.families.iter_mut() {
        if *f == s.held {
            for v in rows.iter_mut() {
                *v = 1e6 - *v;
                touched += 1;
            }
        }
    }
    assert!(touched > 0, "the view holds no held-out rows to change");
    let (b, _) = fit(&mut s.view, d);
    assert_eq!(
        b.gated().unwrap(),
        &ga,
        "the gate changed with held-out rows"
    );
    assert_eq!(
        b.score(&probe_rows).unwrap(),
        sa,
        "scores changed with held-out rows"
    );

    // the gate's folds are the seen families (DoS and R2L here), never the held-out one
    let folds: Vec<&str> = ga.folds.iter().map(|f| f.family.as_str()).collect();
    assert_eq!(folds, ["DoS", "R2L"]);
    assert!((ga.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // and they are reported: one row per fold, then the weights
    assert_eq!(events.len(), 3);
}

/// Trained on NSL-KDD with Probe held out at a test-sized budget, the fusion separates the
/// unseen family's test rows from normal test rows, and two fits give identical scores.
#[test]
fn fusion_catches_an_unseen_family_and_is_deterministic() {
    let mut s = setup("Probe");
    let d = s.table.n_features;
    let (a, _) = fit(&mut s.view, d);
    let (_, pool) = &s.task.test[0];
    let x = s.scaler.transform(&s.table.features, &pool.rows);
    let labels: Vec<bool> = pool.label.iter().map(|&l| l == 1).collect();
    let sa = a.score(&x).unwrap();
    let auc = heldout::eval::roc_auc(&labels, &sa).unwrap();
    eprintln!(
        "fusion, Probe held out: test AUC {auc:.4}, gate {:?}",
        a.gated()
    );
    assert!(auc > 0.9, "held-out AUC {auc}");
    let (b, _) = fit(&mut s.view, d);
    assert_eq!(b.score(&x).unwrap(), sa);
}

/// The fusion runs from an experiment file like every method: its row in `heldout methods`,
/// its gate in `epochs.csv`, its models beside the gate's JSON.
#[test]
fn fusion_is_in_the_registry() {
    let m = Method::from_key("Fusion").unwrap();
    assert_eq!(m.name(), "fusion");
    assert!(m.info().paper.contains("heldout's own"));
    // an ensemble of 1 to 16 ODIN networks
    let bad = FusionParams {
        odin_members: 0,
        ..Default::default()
    };
    assert_eq!(bad.validate().unwrap_err().0, "odin_members");
}
