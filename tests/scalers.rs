//! heldout's normalisers against scikit-learn (fixture and the script that made it:
//! tests/fixtures/scalers.json, tests/fixtures/make_scalers.py).

mod common;
use common::*;
use heldout::data::{load, LoadOptions, Scaler, ScalerKind};

#[test]
fn scalers_match_scikit_learn_on_shared_files() {
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scalers.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for (key, case) in fx.as_object().unwrap() {
        let t = load(
            &shared(case["file"].as_str().unwrap()),
            &LoadOptions::new(case["label"].as_str().unwrap()),
        )
        .unwrap();
        let cols: Vec<String> = serde_json::from_value(case["columns"].clone()).unwrap();
        assert_eq!(t.feature_names, cols, "{key}");
        let fit_rows: Vec<usize> = (0..t.n_rows).filter(|i| i % 4 == 1).collect();
        let apply: Vec<usize> = serde_json::from_value(case["apply_rows"].clone()).unwrap();
        for (name, kind) in [
            ("zscore", ScalerKind::ZScore),
            ("minmax", ScalerKind::MinMax),
            (
                "robust_5_95",
                ScalerKind::Robust {
                    low: 5.0,
                    high: 95.0,
                },
            ),
        ] {
            let s = Scaler::fit(kind, &t.features, t.n_features, &fit_rows).unwrap();
            let want = &case[name];
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
            for j in 0..t.n_features {
                let c = want["centre"][j].as_f64().unwrap();
                let sc = want["scale"][j].as_f64().unwrap();
                assert!(
                    close(s.centre[j], c),
                    "{key} {name} centre[{j}]: {} vs {c}",
                    s.centre[j]
                );
                assert!(
                    close(s.scale[j], sc),
                    "{key} {name} scale[{j}]: {} vs {sc}",
                    s.scale[j]
                );
            }
            let got = s.transform(&t.features, &apply);
            for (i, row) in want["transformed"].as_array().unwrap().iter().enumerate() {
                for j in 0..t.n_features {
                    let w = row[j].as_f64().unwrap() as f32;
                    let g = got[i * t.n_features + j];
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "{key} {name} [{i},{j}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}
