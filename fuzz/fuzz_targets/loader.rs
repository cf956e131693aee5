//! `heldout::fuzz::loader` under libFuzzer: `bench/fuzz.sh loader SECONDS`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    // libfuzzer-sys's panic hook aborts on every panic, even one the loader catches: polars'
    // Parquet decoder panics on some corrupt files, and `data::load` turns that into the file's
    // error. This hook only prints the panic on one line (`bench/fuzz.sh` counts these lines), so
    // that just a panic escaping `loader`, which libfuzzer-sys still catches and aborts on, is a
    // crash.
    init: std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        let msg = info.payload_as_str().unwrap_or_default().replace('\n', " ");
        eprintln!("heldout-fuzz: panic at {at}: {msg}");
    })),
    |data: &[u8]| heldout::fuzz::loader(data)
);
