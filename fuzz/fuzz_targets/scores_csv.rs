//! `heldout::fuzz::scores_csv` under libFuzzer: `bench/fuzz.sh scores_csv SECONDS`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heldout::fuzz::scores_csv(data));
