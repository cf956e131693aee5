//! The per-family split of the reference protocol (PROTOCOL.md §4) reproduces the PyTorch
//! reference's rows bit for bit: sizes, first rows and the sha256 digest of every split in
//! `../shared/reference/results/protocol_fixtures.json`, on every dataset and seed there.

mod common;
use common::*;
use heldout::split::{digest_text, protocol_split};
use sha2::{Digest, Sha256};

#[test]
fn splits_match_the_reference_on_every_dataset_and_seed() {
    let fx = protocol_fixtures();
    for (key, t) in protocol_tables() {
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
