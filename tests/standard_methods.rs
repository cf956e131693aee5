//! The registry's methods from the outside: every parameter out of range is refused by name,
//! `heldout methods` lists every method, every method runs deterministically from an experiment
//! file, and the one-class detectors learn on real data (NSL-KDD, DoS held out, where the
//! reference's Isolation Forest / ECOD / OCSVM reach 0.99 / 0.99 / 0.96).

mod common;

use heldout::detect::{Method, ParamKind};
use heldout::experiment::Experiment;
use std::path::Path;

const DEMO: &str = heldout::experiment::DEMO_EXPERIMENT;

fn heldout() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
}

/// The demo experiment with `compare` replaced by `m` (checked); the main method is the demo's
/// meta-learner, or Isolation Forest when `m` is a meta-learner (one name may appear once).
fn with_compare(m: Method) -> Result<(), String> {
    let e = Experiment::parse(DEMO, Path::new("demo.ron")).unwrap();
    let method = if m.key() == "MetaLearner" {
        Method::from_key("IsolationForest").unwrap()
    } else {
        e.method.clone()
    };
    Experiment {
        method,
        compare: vec![m],
        ..e
    }
    .checked(Path::new("x.ron"), Path::new("."))
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn every_parameter_out_of_range_is_refused_by_name() {
    let mut checked = 0;
    for m in Method::all() {
        assert!(
            with_compare(m.clone()).is_ok(),
            "{}: defaults refused",
            m.key()
        );
        for p in m.params() {
            let bad: Vec<serde_json::Value> = match p.kind {
                ParamKind::Int { min, max } => {
                    let mut v = vec![serde_json::json!(-1i64)];
                    if min > 0 {
                        v.push(serde_json::json!(min - 1));
                    }
                    if max < u64::MAX {
                        v.push(serde_json::json!(max + 1));
                    }
                    v.retain(|x| {
                        x.as_i64().is_none_or(|i| i < min) || x.as_u64().is_some_and(|u| u > max)
                    });
                    v
                }
                ParamKind::Float { min, max } => {
                    vec![
                        serde_json::json!(min - 1.0 - min.abs()),
                        serde_json::json!(max * 2.0 + 1.0),
                    ]
                }
                ParamKind::Bool => continue,
                ParamKind::Choice { .. } => vec![serde_json::json!("no_such_choice")],
                ParamKind::IntList { max, max_len, .. } => vec![
                    serde_json::json!([]),
                    serde_json::json!([0]),
                    serde_json::json!([max + 1]),
                    serde_json::json!(vec![1; max_len + 1]),
                ],
                ParamKind::FloatList { min, max, max_len } => vec![
                    serde_json::json!([]),
                    serde_json::json!([min - 1.0 - min.abs()]),
                    serde_json::json!([max * 2.0 + 1.0]),
                    serde_json::json!(vec![max; max_len + 1]),
                ],
            };
            for b in bad {
                let mut tree = serde_json::to_value(&m).unwrap();
                tree[m.key()][p.name] = b.clone();
                // a value the types reject (e.g. −1 for a count) is refused while parsing,
                // naming the field; one the types take is refused by the check, naming it too
                let err = match serde_json::from_value::<Method>(tree) {
                    Err(e) => e.to_string(),
                    Ok(bad_m) => {
                        with_compare(bad_m).expect_err(&format!("{}.{p:?} = {b}", m.key()))
                    }
                };
                assert!(
                    err.contains(p.name)
                        || err.contains("invalid value")
                        || err.contains("unknown variant"),
                    "{}.{} = {b}: {err}",
                    m.key(),
                    p.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked}");
}

#[test]
fn a_check_error_names_method_field_and_allowed_range() {
    let bad = Method::IsolationForest(heldout::detect::IsolationForestParams {
        n_estimators: 0,
        ..Default::default()
    });
    let e = with_compare(bad).unwrap_err();
    assert!(
        e.contains("compare[0].n_estimators") && e.contains("1 to"),
        "{e}"
    );
}

#[test]
fn methods_command_lists_every_method_with_its_parameters() {
    let out = common::run_ok(heldout().args(["methods", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, Method::KEYS);
    for m in list {
        assert!(!m["paper"].as_str().unwrap().is_empty());
        assert!(["normals_only", "few_shot", "all_seen"].contains(&m["labels"].as_str().unwrap()));
        for p in m["params"].as_array().unwrap() {
            assert!(!p["help"].as_str().unwrap().is_empty(), "{p}");
            assert!(!p["default"].is_null(), "{p}");
        }
    }
    let text = String::from_utf8(common::run_ok(heldout().arg("methods")).stdout).unwrap();
    for k in Method::KEYS {
        assert!(text.contains(k), "{k} missing from `heldout methods`");
    }
}

#[test]
fn compare_rejects_an_unknown_method_with_the_list() {
    let out = heldout()
        .args(["run", "--demo", "--compare", "IsolationForest,Nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'Nope'") && err.contains("IsolationForest"),
        "{err}"
    );
}

/// `heldout run` of the demo with every method but the meta-learner (its own tests cover it),
/// twice, once on one thread and once on two (HELDOUT_THREADS for heldout's own loops,
/// RAYON/CANDLE_NUM_THREADS for candle's): same file + seed → byte-identical metrics and scores,
/// whatever the thread count.
#[test]
fn every_method_runs_from_an_experiment_file_deterministically() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // every method with its defaults, but heldout's fusion at one epoch per network (it trains
    // its networks once per seen family more, which a debug build makes slow) and the core
    // paper's CORAL and MTL-RED baselines at a few epochs
    let others: Vec<String> = Method::KEYS
        .iter()
        .copied()
        .filter(|k| *k != "MetaLearner" && *k != "IsolationForest")
        .map(|k| match k {
            "Fusion" => "Fusion(odin_epochs: 1, mlp_epochs: 1)".to_string(),
            // 300 one-step epochs over every pair of domains: a handful suffice to run it
            "Mtae" => "Mtae(epochs: 5, classifier_epochs: 2)".to_string(),
            // the two baselines of the core paper at few epochs (defaults: 200 one-step epochs;
            // 12 grid points × 60 epochs)
            "DeepCoral" => "DeepCoral(epochs: 3)".to_string(),
            "MtlRed" => "MtlRed(epochs: 1)".to_string(),
            k => format!("{k}()"),
        })
        .collect();
    let compare = format!("compare=[{}]", others.join(", "));
    let mut folders = Vec::new();
    for (d, threads) in dirs.iter().zip(["1", "2"]) {
        common::run_ok(
            heldout()
                .env("HELDOUT_THREADS", threads)
                .env("RAYON_NUM_THREADS", threads)
                .env("CANDLE_NUM_THREADS", threads)
                .args([
                    "run",
                    "--demo",
                    "--set",
                    "method=IsolationForest()",
                    "--set",
                    &compare,
                    "--out",
                    d.path().to_str().unwrap(),
                ]),
        );
        folders.push(
            std::fs::read_dir(d.path())
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        );
    }
    for f in ["metrics.csv", "scores.csv", "checkpoints.csv"] {
        let a = std::fs::read_to_string(folders[0].join(f)).unwrap();
        let b = std::fs::read_to_string(folders[1].join(f)).unwrap();
        assert!(a == b, "{f} differs between two runs of the same file");
    }
    let metrics = heldout::report::RunData::load(&folders[0]).unwrap().metrics;
    for k in Method::KEYS.iter().filter(|k| **k != "MetaLearner") {
        let name = Method::from_key(k).unwrap().name();
        let rows: Vec<_> = metrics
            .iter()
            .filter(|m| m.method == name && m.is_primary())
            .collect();
        assert_eq!(
            rows.len(),
            6,
            "{name}: one τ* row per held-out family of the demo"
        );
        // and one row per other threshold policy (normals-only 1 % and 5 %, worst seen family)
        let all = metrics.iter().filter(|m| m.method == name).count();
        assert_eq!(all, 24, "{name}: four threshold policies");
        assert!(rows.iter().all(|r| r.auc.is_finite()), "{name}");
    }
    // every method without episodes reports a final checkpoint per unit and family: the demo's
    // 6 rotations × its 6 anomaly families, each with a finite AUC
    let data = heldout::report::RunData::load(&folders[0]).unwrap();
    for k in Method::KEYS.iter().filter(|k| **k != "MetaLearner") {
        let name = Method::from_key(k).unwrap().name();
        let finals: Vec<_> = data
            .checkpoints
            .iter()
            .filter(|c| c.unit.method == name && c.stage == heldout::detect::Stage::Final)
            .collect();
        assert_eq!(finals.len(), 36, "{name}: final checkpoint rows");
        assert!(finals.iter().all(|c| c.auc.is_finite()), "{name}");
        let units: std::collections::BTreeSet<_> =
            finals.iter().map(|c| c.unit.rotation.clone()).collect();
        assert_eq!(units.len(), 6, "{name}: one set per rotation");
    }
}

/// NSL-KDD with DoS held out, seed 0: the one-class detectors separate the unseen family.
#[test]
fn one_class_detectors_catch_an_unseen_family_on_nsl_kdd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nsl.ron");
    let data = common::data_dir().join("nsl_kdd");
    std::fs::write(
        &file,
        format!(
            r#"Experiment(
    name: "nsl-dos",
    data: File(
        path: "{}",
        label_column: "attack",
        family_map: "{}",
        drop_columns: ["difficulty"],
        min_family_rows: 50,
    ),
    roles: Roles(normal: ["normal"], held_out: Fixed(["DoS"]), few_shot: All, ignored: []),
    method: IsolationForest(),
    compare: [Ecod(), OneClassSvm()],
    seeds: [0],
    device: Cpu,
)"#,
            data.join("KDDTrain+_20Percent.csv.gz").display(),
            data.join("attack_family_map.csv").display()
        ),
    )
    .unwrap();
    common::run_ok(heldout().args([
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.path().join("runs").to_str().unwrap(),
    ]));
    let run = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let metrics = heldout::report::RunData::load(&run).unwrap().metrics;
    for (name, floor) in [("iforest", 0.9), ("ecod", 0.9), ("ocsvm", 0.85)] {
        let m = metrics.iter().find(|m| m.method == name).unwrap();
        assert!(
            m.held_out == "DoS" && m.auc > floor,
            "{name}: AUC {} ≤ {floor}",
            m.auc
        );
    }
}

/// Two methods under one name would merge their rows in every table: refused, naming both.
#[test]
fn two_methods_with_one_name_are_refused() {
    let e = Experiment::parse(DEMO, Path::new("demo.ron")).unwrap();
    let err = Experiment {
        compare: vec![Method::MetaLearner(Default::default())],
        ..e
    }
    .checked(Path::new("x.ron"), Path::new("."))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("compare[0]")
            && err.contains("same name as method")
            && err.contains("meta_learner"),
        "{err}"
    );
    let out = heldout()
        .args(["run", "--demo", "--compare", "Ecod,Ecod"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("compare[1]") && err.contains("'ecod'"),
        "{err}"
    );
}
