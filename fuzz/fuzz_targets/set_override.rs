//! `heldout::fuzz::set_override` under libFuzzer: `bench/fuzz.sh set_override SECONDS`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heldout::fuzz::set_override(data));
