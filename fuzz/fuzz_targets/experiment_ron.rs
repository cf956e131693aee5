//! `heldout::fuzz::experiment_ron` under libFuzzer: `bench/fuzz.sh experiment_ron SECONDS`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heldout::fuzz::experiment_ron(data));
