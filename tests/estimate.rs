//! Issue 20: the cost estimate against what runs — each method's parameter count against the
//! numbers in the model file it writes, the meta-learner's step counts against the steps it
//! takes — and experiments that cannot fit refused by validate, run and the estimate with one
//! line naming the field. (Time and peak memory against measurement are a benchmark, not a
//! test: `heldout bench estimate`, bench/estimate.sh, bench/results/estimate-*.txt.)

use heldout::detect::{
    DeepCoralParams, DeepSadParams, DeepSvddParams, DevNetParams, EcodParams, FusionParams,
    IsolationForestParams, MetaLearnerParams, Method, MlpParams, MtaeParams, MtlRedParams,
    OdinParams, OdinSweepParams, OneClassSvmParams, ResAdParams,
};
use heldout::experiment::estimate::{Calibration, LimitSource, MemoryLimit};
use heldout::experiment::{
    plan_load_data, Estimate, Experiment, HeldOut, RunEvent, DEMO_EXPERIMENT,
};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

fn demo() -> Experiment {
    Experiment::load_text(DEMO_EXPERIMENT, Path::new("demo.ron"), Path::new("."), &[])
        .unwrap()
        .experiment()
        .clone()
}

fn demo_main() -> MetaLearnerParams {
    match demo().method {
        Method::MetaLearner(p) => p,
        m => panic!("the demo's method is {}", m.key()),
    }
}

/// A fixed machine (24 GiB, the development machine's rate): estimates that do not depend on
/// where the test runs.
fn fixed(exp: &Experiment, limit: MemoryLimit) -> Result<Estimate, String> {
    let table = plan_load_data(exp, Path::new(".")).unwrap();
    Estimate::with(
        exp,
        &table,
        limit,
        Calibration {
            gflops: 265.0,
            threads: 2,
        },
        "CPU".into(),
    )
}

fn machine_24g() -> MemoryLimit {
    MemoryLimit {
        bytes: 24.0 * 1073741824.0,
        source: LimitSource::Machine,
    }
}

/// Every registered method, with small budgets.
fn every_method() -> (Method, Vec<Method>) {
    let main = Method::MetaLearner(MetaLearnerParams {
        inner_epochs: 1,
        outer_epochs: 1,
        ..demo_main()
    });
    let compare = vec![
        Method::Odin(OdinParams {
            epochs: 1,
            ..Default::default()
        }),
        Method::OdinSweep(OdinSweepParams {
            epochs: 1,
            ..Default::default()
        }),
        Method::IsolationForest(IsolationForestParams::default()),
        Method::Ecod(EcodParams::default()),
        Method::OneClassSvm(OneClassSvmParams::default()),
        Method::DeepSvdd(DeepSvddParams {
            pre_epochs: 1,
            epochs: 1,
            ..Default::default()
        }),
        Method::DeepSad(DeepSadParams {
            pre_epochs: 1,
            epochs: 1,
            ..Default::default()
        }),
        Method::DevNet(DevNetParams {
            epochs: 1,
            batches_per_epoch: 2,
            ..Default::default()
        }),
        Method::Mlp(MlpParams {
            epochs: 1,
            ..Default::default()
        }),
        Method::Fusion(FusionParams {
            odin_epochs: 1,
            mlp_epochs: 1,
            ..Default::default()
        }),
        Method::Mtae(MtaeParams {
            epochs: 1,
            classifier_epochs: 1,
            ..Default::default()
        }),
        Method::ResAd(ResAdParams {
            pre_epochs: 1,
            epochs: 1,
            ..Default::default()
        }),
        Method::DeepCoral(DeepCoralParams {
            epochs: 1,
            ..Default::default()
        }),
        Method::MtlRed(MtlRedParams {
            epochs: 1,
            ..Default::default()
        }),
    ];
    (main, compare)
}

#[test]
fn every_method_is_estimated_and_neural_parameter_counts_are_the_saved_models() {
    let (method, compare) = every_method();
    let registered: Vec<&str> = std::iter::once(&method)
        .chain(&compare)
        .map(|m| m.key())
        .collect();
    assert_eq!(
        registered.len(),
        Method::KEYS.len(),
        "every registered method is in this test: {registered:?} vs {:?}",
        Method::KEYS
    );
    let exp = Experiment {
        seeds: vec![0],
        roles: heldout::experiment::Roles {
            held_out: HeldOut::Fixed(vec!["Flood".into()]),
            ..demo().roles
        },
        episodes: heldout::experiment::EpisodeSpec {
            count: 1,
            ..demo().episodes
        },
        method,
        compare,
        ..demo()
    };
    let est = fixed(&exp, machine_24g()).unwrap();
    assert_eq!(est.methods.len(), Method::KEYS.len());
    for m in &est.methods {
        assert!(
            m.seconds_per_unit > 0.0 && m.unit_bytes() > 0.0 && m.cost.params > 0.0,
            "{}: {:?}",
            m.name,
            m.cost
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let checked = exp
        .clone()
        .checked(Path::new("every.ron"), Path::new("."))
        .unwrap();
    heldout::experiment::run(&checked, tmp.path(), &AtomicBool::new(false), &mut |_| {}).unwrap();
    // the tensors each neural method saved: every learned number, counted independently
    for (name, what) in [
        ("meta_learner", "encoder, head, decoder and log T"),
        ("odin_T1000_eps0.0014", "encoder and head"),
        (
            "odin_sweep",
            "encoder and head (the sweep's record is a JSON beside it)",
        ),
        (
            "deepsvdd",
            "bias-free encoder and decoder, centre, batch-norm statistics",
        ),
        (
            "deepsad",
            "bias-free encoder and decoder, centre, batch-norm statistics",
        ),
        ("devnet", "two layers"),
        ("mlp_fewshot", "three layers"),
        (
            "mtae",
            "encoder, one decoder per domain, classifier, batch-norm parameters and statistics",
        ),
        (
            "resad",
            "encoder, decoder, constraintor, batch-norm statistics, centres, Gaussian",
        ),
        (
            "coral",
            "encoder, classifier, decoder, batch-norm γ, β and statistics",
        ),
        (
            "mtl_red",
            "encoder, classifier, decoder, batch-norm γ, β and statistics, two log σ",
        ),
    ] {
        let file = tmp
            .path()
            .join("models")
            .join(format!("{name}_seed0_Flood.safetensors"));
        let tensors = candle_core::safetensors::load(&file, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let saved: usize = tensors.values().map(|t| t.elem_count()).sum();
        let m = est.methods.iter().find(|m| m.name == name).unwrap();
        assert_eq!(
            m.cost.params,
            saved as f64,
            "{name} ({what}): estimated {} parameters, the model file holds {saved} ({:?})",
            m.cost.params,
            tensors.keys().collect::<Vec<_>>()
        );
    }
    // the fusion: its two networks (ODIN's, shared with the Mahalanobis part, and the MLP) are
    // counted exactly once each, beside the forest's nodes and ECOD's sorted columns
    let count = |part: &str| -> f64 {
        let file = tmp
            .path()
            .join("models")
            .join(format!("fusion_seed0_Flood.{part}.safetensors"));
        candle_core::safetensors::load(&file, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .values()
            .map(|t| t.elem_count() as f64)
            .sum()
    };
    let nets = count("odin") + count("mlp");
    let classical: f64 = ["iforest", "ecod"]
        .iter()
        .map(|n| {
            est.methods
                .iter()
                .find(|m| m.name == *n)
                .unwrap()
                .cost
                .params
        })
        .sum();
    let fusion = est.methods.iter().find(|m| m.name == "fusion").unwrap();
    assert_eq!(fusion.cost.params, nets + classical, "{:?}", fusion.cost);
}

#[test]
fn meta_learner_steps_are_the_ones_it_takes() {
    // the demo as it is: 5 episodes × 6 rotations, inner and outer steps counted from the run's
    // own progress events against the estimate's phases (its episodes are drawn ahead without
    // the hard-OOD priority list, which only reorders outer families, so the draws may differ)
    let exp = Experiment {
        compare: vec![],
        ..demo()
    };
    let est = fixed(&exp, machine_24g()).unwrap();
    let m = &est.methods[0];
    let phase = |name: &str| {
        m.cost
            .phases
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no phase {name}: {:?}", m.cost.phases))
            .steps
    };
    let (inner_est, outer_est) = (phase("inner steps"), phase("outer steps"));
    let tmp = tempfile::tempdir().unwrap();
    let checked = exp
        .clone()
        .checked(Path::new("demo.ron"), Path::new("."))
        .unwrap();
    let (mut inner, mut outer, mut units) = (0usize, 0usize, 0usize);
    heldout::experiment::run(
        &checked,
        tmp.path(),
        &AtomicBool::new(false),
        &mut |e| match e {
            RunEvent::Unit { .. } => units += 1,
            RunEvent::Detector(heldout::detect::Event::Progress { stage, .. }) => match stage {
                heldout::detect::Stage::Inner => inner += 1,
                heldout::detect::Stage::Outer => outer += 1,
                _ => {}
            },
            _ => {}
        },
    )
    .unwrap();
    assert_eq!(units, m.units);
    let per_unit = |n: usize| n as f64 / units as f64;
    for (what, ran, estimated) in [
        ("inner", per_unit(inner), inner_est),
        ("outer", per_unit(outer), outer_est),
    ] {
        let r = ran / estimated;
        assert!(
            (0.75..=1.34).contains(&r),
            "{what} steps per unit: ran {ran:.1}, estimated {estimated:.1}"
        );
    }
}

#[test]
fn what_cannot_fit_is_refused_naming_the_field_and_the_size() {
    // the report's hand-typed widths, as wide as the ranges allow
    let wide = Experiment {
        method: Method::MetaLearner(MetaLearnerParams {
            enc_hidden: 16_384,
            enc_depth: 64,
            ..demo_main()
        }),
        ..demo()
    };
    let est = fixed(&wide, machine_24g()).unwrap();
    assert!(est.too_large());
    let e = est.check_memory(&wide).unwrap_err();
    assert!(
        e.starts_with("`method.enc_hidden: 16384` needs ~")
            && e.contains(" GB at peak")
            && e.contains("this machine has 26 GB")
            && !e.contains('\n'),
        "{e}"
    );
    // 64 blocks of 2 × 16,384² weights, 4 copies (weights, gradients, Adam's moments) of 4 bytes
    let m = &est.methods[0];
    assert!(m.cost.params > 64.0 * 2.0 * 16384f64.powi(2));
    assert!(m.cost.state_bytes >= 16.0 * m.cost.params);

    // a baseline in `compare` is named by its place
    let mut sad = demo();
    sad.compare = vec![
        Method::Ecod(EcodParams::default()),
        Method::DeepSad(DeepSadParams {
            hidden: vec![8192, 8192, 8192],
            batch_size: 65_536,
            ..Default::default()
        }),
    ];
    let limit = MemoryLimit {
        bytes: 4e9,
        source: LimitSource::User("HELDOUT_MEMORY_LIMIT".into()),
    };
    let e = fixed(&sad, limit).unwrap().check_memory(&sad).unwrap_err();
    assert!(
        e.starts_with("`compare[1].hidden: [8192,8192,8192]`"),
        "{e}"
    );
    assert!(
        e.contains("deepsad:") && e.contains("the memory limit is 4.0 GB (HELDOUT_MEMORY_LIMIT)"),
        "{e}"
    );

    // a million episodes: the run rows one unit holds until it ends (its histograms and curves
    // at every checkpoint) are what cannot fit
    let long = Experiment {
        episodes: heldout::experiment::EpisodeSpec {
            count: 1_000_000,
            ..demo().episodes
        },
        ..demo()
    };
    let e = fixed(&long, machine_24g())
        .unwrap()
        .check_memory(&long)
        .unwrap_err();
    assert!(e.starts_with("`episodes.count: 1000000` needs ~"), "{e}");

    // a limit the user sets: the demo itself is refused under 1 MB, accepted under the machine
    let small = MemoryLimit {
        bytes: 1e6,
        source: LimitSource::User("--memory-limit".into()),
    };
    let e = fixed(&demo(), small)
        .unwrap()
        .check_memory(&demo())
        .unwrap_err();
    assert!(
        e.contains("the memory limit is 1.0 MB (--memory-limit)"),
        "{e}"
    );
    assert!(fixed(&demo(), machine_24g())
        .unwrap()
        .check_memory(&demo())
        .is_ok());
}

#[test]
fn validate_and_run_refuse_in_one_line_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let text = DEMO_EXPERIMENT.replace("enc_hidden: 64", "enc_hidden: 16384, enc_depth: 64");
    assert_ne!(text, DEMO_EXPERIMENT);
    let file = tmp.path().join("wide.ron");
    std::fs::write(&file, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_heldout");
    let v = Command::new(bin)
        .args(["validate"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("`method.enc_hidden: 16384` needs ~"),
        "{stderr}"
    );
    // the plan and the cost table are still printed: what the user needs to fix it
    let stdout = String::from_utf8_lossy(&v.stdout);
    assert!(stdout.contains("cost (estimated on CPU"), "{stdout}");

    // run: refused before any unit trains; the folder keeps the config and says why
    let out = tmp.path().join("runs");
    let r = Command::new(bin)
        .args(["run"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("`method.enc_hidden: 16384`"), "{stderr}");
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let status = std::fs::read_to_string(dir.join("status.txt")).unwrap();
    assert!(status.starts_with("failed: `method.enc_hidden"), "{status}");
    assert_eq!(std::fs::read_dir(dir.join("models")).unwrap().count(), 0);

    // --memory-limit and HELDOUT_MEMORY_LIMIT refuse the plain demo
    let demo_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/demo.ron");
    for (args, env) in [(vec!["--memory-limit", "1M"], None), (vec![], Some("1M"))] {
        let mut c = Command::new(bin);
        c.arg("validate").arg(&demo_file).args(&args);
        if let Some(v) = env {
            c.env("HELDOUT_MEMORY_LIMIT", v);
        }
        let o = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains("the memory limit is 1.0 MB"), "{stderr}");
    }
    let o = Command::new(bin)
        .args(["validate", "--memory-limit", "lots"])
        .arg(&demo_file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("'lots' is not a size"));
}
