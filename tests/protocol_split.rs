//! The per-family split of the reference protocol (PROTOCOL.md §4) reproduces the PyTorch
//! reference's rows bit for bit: sizes, first rows and the sha256 digest of every split in
//! `../shared/reference/results/protocol_fixtures.json`, on every dataset and seed there.

mod common;
use common::*;
use heldout::data::{load, LoadOptions};
use heldout::split::{digest_text, protocol_split};
use sha2::{Digest, Sha256};

#[test]
fn splits_match_the_reference_on_every_dataset_and_seed() {
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("../reference/results/protocol_fixtures.json"))
            .unwrap(),
    )
    .unwrap();
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "cicids2017",
            "cicids2017_improved_sample/cicids2017_improved_sample.csv.gz",
            "Label",
            Some("cicids2017_improved_sample/family_map.csv"),
            &[],
        ),
        (
            "unsw_nb15",
            "unsw_nb15/UNSW_NB15_82332.csv.gz",
            "attack_cat",
            None,
            &[],
        ),
        (
            "ciciot2023",
            "ciciot2023_sample/ciciot2023_sample.csv.gz",
            "label_multiclass",
            None,
            &[],
        ),
        (
            "nsl_kdd",
            "nsl_kdd/KDDTrain+_20Percent.csv.gz",
            "attack",
            Some("nsl_kdd/attack_family_map.csv"),
            &["difficulty"],
        ),
    ];
    for (key, file, label, map, drop) in cases {
        let mut o = LoadOptions::new(label);
        o.family_map = map.map(shared);
        o.min_family_rows = 50;
        o.drop_columns = drop.iter().map(|s| s.to_string()).collect();
        let t = load(&shared(file), &o).unwrap();
        for seed in 0..3u64 {
            let want = &fx[key]["seeds"][seed.to_string()];
            let sp = protocol_split(&t, seed);
            for (f, s) in sp.iter().enumerate() {
                let parts = &want["parts"][&t.families[f]];
                for (name, rows) in [("train", &s.train), ("val", &s.val), ("test", &s.test)] {
                    assert_eq!(rows.len() as u64, parts[name]["n"].as_u64().unwrap());
                    let head: Vec<usize> =
                        serde_json::from_value(parts[name]["head"].clone()).unwrap();
                    assert_eq!(&rows[..head.len()], head.as_slice(), "{key} {seed} {name}");
                }
            }
            let digest = format!("{:x}", Sha256::digest(digest_text(&t, &sp).as_bytes()));
            assert_eq!(
                digest,
                want["sha256"].as_str().unwrap(),
                "{key} seed {seed}"
            );
        }
    }
}
