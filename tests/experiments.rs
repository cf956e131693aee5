//! The experiment layer: ready files validate, the LofoBalanced tasks reproduce the reference
//! protocol (`protocol_fixtures.json` tasks: pool sizes, few-shot counts, scaler statistics,
//! scaled values), and bad files give errors that name the field and position.

mod common;
use common::*;
use heldout::data::{Scaler, ScalerKind};
use heldout::experiment::{plan_load_data, Experiment, Plan};
use heldout::split::{build_task, protocol_split, PoolSpec, Roles};
use std::path::{Path, PathBuf};

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")
}

#[test]
fn every_ready_experiment_file_validates_and_plans() {
    let mut n = 0;
    for entry in std::fs::read_dir(experiments_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let exp = Experiment::read(&p).unwrap_or_else(|e| panic!("{e}"));
        let table = plan_load_data(&exp, p.parent().unwrap()).unwrap();
        let plan = Plan::build(&exp, &table, 2).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!plan.rotations.is_empty(), "{}", p.display());
        // what the file says round-trips through the writer
        let again = Experiment::parse(&exp.to_ron(), &p).unwrap();
        assert_eq!(again, exp, "{}", p.display());
        n += 1;
    }
    assert_eq!(n, 11, "one file per dataset with families + the demo");
}

#[test]
fn lofo_tasks_match_the_reference_protocol() {
    let fx = protocol_fixtures();
    let normal = |key: &str| match key {
        "cicids2017" | "ciciot2023" => "Benign",
        "unsw_nb15" => "Normal",
        _ => "normal",
    };
    for (key, t) in protocol_tables() {
        let roles = Roles {
            normal: vec![normal(key).to_string()],
            held_out: Default::default(),
            few_shot: Default::default(),
            ignored: vec![],
        };
        let resolved = roles.resolve(&t).unwrap();
        for seed in 0..3u64 {
            let splits = protocol_split(&t, seed);
            let tasks = &fx[key]["seeds"][seed.to_string()]["tasks"];
            assert_eq!(
                resolved.rotations.len(),
                tasks.as_object().unwrap().len(),
                "{key}"
            );
            for rot in &resolved.rotations {
                let held = &t.families[rot.held_out[0] as usize];
                let want = &tasks[held];
                let task = build_task(
                    &splits,
                    &resolved.normal,
                    rot,
                    seed,
                    100,
                    &PoolSpec::default(),
                );
                let ctx = format!("{key} seed {seed} held out {held}");
                assert_eq!(
                    task.val_pool.per_class().0 as u64,
                    want["val_per_class"].as_u64().unwrap(),
                    "{ctx}"
                );
                assert_eq!(
                    task.test[0].1.per_class().1 as u64,
                    want["test_per_class"].as_u64().unwrap(),
                    "{ctx}"
                );
                for (f, rows) in &task.few_shot {
                    assert_eq!(
                        rows.len() as u64,
                        want["fewshot"][&t.families[*f as usize]].as_u64().unwrap(),
                        "{ctx}"
                    );
                }
                let s = Scaler::fit(
                    ScalerKind::Robust595,
                    &t.features,
                    t.n_features,
                    &task.scaler_rows,
                )
                .unwrap();
                // Features are stored as f32, the reference computes on f64: sums agree to ~1e-7.
                let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
                let cs: f64 = s.centre.iter().sum();
                let ss: f64 = s.scale.iter().sum();
                assert!(
                    rel(cs, want["center_sum"].as_f64().unwrap()) < 1e-6,
                    "{ctx}: centre sum {cs}"
                );
                assert!(
                    rel(ss, want["scale_sum"].as_f64().unwrap()) < 1e-6,
                    "{ctx}: scale sum {ss}"
                );
                let x00 = s.transform(&t.features, &task.test[0].1.rows[..1])[0] as f64;
                assert!(
                    rel(x00, want["xtest_00"].as_f64().unwrap()) < 1e-5,
                    "{ctx}: xtest[0,0] {x00}"
                );
                let last = *task.val_pool.rows.last().unwrap();
                let xv: f64 = s
                    .transform(&t.features, &[last])
                    .iter()
                    .map(|&x| x as f64)
                    .sum();
                let wv = want["xval_last_row_sum"].as_f64().unwrap();
                assert!(
                    (xv - wv).abs() < 1e-4 * wv.abs().max(1.0),
                    "{ctx}: last validation row sum {xv} vs {wv}"
                );
            }
        }
    }
}

fn parse_err(text: &str) -> String {
    match Experiment::parse(text, Path::new("x.ron"))
        .and_then(|e| e.check(Path::new("x.ron")).map(|_| e))
    {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

/// GOOD with one more field.
fn with(field: &str) -> String {
    format!(
        "{},\n    {field},\n)",
        GOOD.trim_end()
            .trim_end_matches(')')
            .trim_end()
            .trim_end_matches(',')
    )
}

const GOOD: &str = r#"Experiment(
    name: "t",
    data: Demo(kind: Tabular, seed: 0),
    roles: Roles(normal: ["Normal"]),
)"#;

#[test]
fn a_minimal_file_gets_the_spec_defaults() {
    let e = Experiment::parse(GOOD, Path::new("x.ron")).unwrap();
    e.check(Path::new("x.ron")).unwrap();
    assert_eq!(e.seeds, vec![0, 1, 2]);
    assert_eq!(e.episodes.count, 20);
    assert_eq!(e.episodes.shots, 100);
    assert_eq!(e.split.train, (2, 3));
    assert_eq!(e.pools.val_per_class, 25_000);
}

#[test]
fn unknown_fields_and_bad_values_name_the_field_and_position() {
    let e = parse_err(&GOOD.replace("name: \"t\",", "name: \"t\",\n    sedes: [1],"));
    assert!(e.starts_with("x.ron:3:"), "{e}");
    assert!(
        e.contains("sedes") && e.contains("seeds"),
        "lists the allowed fields: {e}"
    );
    let e = parse_err(&GOOD.replace("Tabular", "Cubic"));
    assert!(
        e.contains("Cubic") && e.contains("Tabular") && e.contains("TwoD"),
        "{e}"
    );
    let e = parse_err(&with("seeds: []"));
    assert!(e.contains("seeds"), "{e}");
    let e = parse_err(&with("split: SplitSpec(train: (5, 6), val: (1, 3))"));
    assert!(e.contains("split") && e.contains("exceeds 1"), "{e}");
    let e = parse_err(&with("method: MetaLearner(odin_sign: 0)"));
    assert!(
        e.contains("method.odin_sign") && e.contains("allowed"),
        "{e}"
    );
    let e = parse_err(&with("episodes: EpisodeSpec(curriculum: hardest)"));
    assert!(
        e.contains("hardest") && e.contains("priority_round_robin"),
        "{e}"
    );
}

#[test]
fn roles_naming_an_unknown_family_list_the_families() {
    let e = Experiment::parse(
        &GOOD.replace("[\"Normal\"]", "[\"Benign\"]"),
        Path::new("x.ron"),
    )
    .unwrap();
    let table = plan_load_data(&e, Path::new(".")).unwrap();
    let err = Plan::build(&e, &table, 1).unwrap_err().to_string();
    assert!(
        err.contains("roles.normal") && err.contains("'Benign'") && err.contains("Mimic"),
        "{err}"
    );
}

#[test]
fn validate_prints_the_same_plan_twice_and_fails_cleanly_on_a_bad_file() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
            .args(args)
            .output()
            .unwrap()
    };
    let f = experiments_dir().join("demo.ron");
    let a = run(&["validate", f.to_str().unwrap(), "--episodes", "5"]);
    let b = run(&["validate", f.to_str().unwrap(), "--episodes", "5"]);
    assert!(a.status.success());
    // the plan, byte for byte; the cost estimate after it depends on this machine's measured
    // speed at the time, so it is only checked to be there
    let plan = |o: &std::process::Output| {
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        let at = t
            .find("\ncost (estimated on ")
            .unwrap_or_else(|| panic!("no cost estimate after the plan: {t}"));
        t[..at].to_string()
    };
    assert_eq!(
        plan(&a),
        plan(&b),
        "same file + seed → same plan, byte for byte"
    );
    let text = String::from_utf8_lossy(&a.stdout);
    assert!(
        text.contains("episode  5:") && text.contains("held out: Mimic"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ron");
    std::fs::write(&bad, with("episodes: EpisodeSpec(count: 0)")).unwrap();
    let out = run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("episodes.count") && err.contains("bad.ron"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn set_overrides_name_unknown_fields_and_bad_values() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_heldout"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["run", "--demo", "--set", "episodes.nope=2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no field 'nope'") && err.contains("shots"),
        "{err}"
    );
    let out = run(&["run", "--demo", "--set", "episodes.count=-3"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["run", "--demo", "--set", "seeds"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FIELD=VALUE"), "{err}");
}

#[test]
fn set_overrides_unit_variants_by_name() {
    use heldout::experiment::{Device, Method, PcgradTasks};
    let text = heldout::cli::DEMO_EXPERIMENT;
    let out = heldout::cli::apply_overrides(
        text,
        &[
            "method.MetaLearner.pcgrad=off".into(),
            "device=Cpu".into(),
            "method.MetaLearner.unfreeze_last_block=false".into(),
            "seeds=[3, 4]".into(),
        ],
    )
    .unwrap();
    let exp = Experiment::parse(&out, Path::new("x.ron")).unwrap();
    let Method::MetaLearner(p) = &exp.method else {
        panic!("the demo's method is the meta-learner")
    };
    assert_eq!(p.pcgrad, PcgradTasks::Off);
    assert!(!p.unfreeze_last_block);
    assert_eq!(exp.device, Device::Cpu);
    assert_eq!(exp.seeds, vec![3, 4]);
    // a misspelt variant names the field's problem
    let e = heldout::cli::apply_overrides(text, &["method.MetaLearner.pcgrad=of".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown variant `of`") && e.contains("`per_family`, `two_tasks`, `off`"),
        "{e}"
    );
}

#[test]
fn set_overrides_variants_with_data_in_ron_syntax() {
    use heldout::experiment::{Device, InnerMode, Method};
    use heldout::split::HeldOut;
    let out = heldout::cli::apply_overrides(
        heldout::cli::DEMO_EXPERIMENT,
        &[
            "device=Cuda(1)".into(),
            r#"roles.held_out=Fixed(["Burst", "Scan"])"#.into(),
            "method=MetaLearner(inner_mode: supervised_inner_families, enc_hidden: 32)".into(),
            "compare=[Odin(temperature: 10.0, epsilon: 0.0)]".into(),
            "episodes=EpisodeSpec(count: 2, shots: 7)".into(),
        ],
    )
    .unwrap();
    let exp = Experiment::parse(&out, Path::new("x.ron")).unwrap();
    assert_eq!(exp.device, Device::Cuda(1));
    assert_eq!(
        exp.roles.held_out,
        HeldOut::Fixed(vec!["Burst".into(), "Scan".into()])
    );
    let Method::MetaLearner(p) = &exp.method else {
        panic!("method was set to the meta-learner")
    };
    assert_eq!(p.inner_mode, InnerMode::SupervisedInnerFamilies);
    assert_eq!(p.enc_hidden, 32);
    assert!(matches!(&exp.compare[..], [Method::Odin(o)] if o.temperature == 10.0));
    assert_eq!((exp.episodes.count, exp.episodes.shots), (2, 7));
    // a broken value names the column
    let e = heldout::cli::apply_overrides(heldout::cli::DEMO_EXPERIMENT, &["device=Cuda(0".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("column 7"), "{e}");
}
