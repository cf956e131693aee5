//! The `heldout` binary: see `heldout --help`.

fn main() -> std::process::ExitCode {
    default_compute_threads();
    heldout::cli::main()
}

/// candle sizes its CPU thread pools from `RAYON_NUM_THREADS` (matrix products, read at every
/// call) and `CANDLE_NUM_THREADS` (element-wise ops, read once). On a machine with two cores or
/// fewer, one compute thread is the faster choice for the meta-learner's batch sizes (measured
/// with `heldout bench episode` on the 2-core dev machine: 3.56 s per episode on one thread,
/// 4.15 s on two; the second core then also stays free for the GUI and I/O). Larger machines
/// keep candle's default; either variable set by the user wins. The meta-learner's graph-free
/// CPU passes (`nn::frozen`, `nn::train`) split coarse row blocks over all cores instead
/// (`HELDOUT_THREADS`, default all cores; on the dev machine two threads took the checkpoint
/// scoring from 0.55 to 0.37 s per episode).
fn default_compute_threads() {
    let set = |k: &str| std::env::var_os(k).is_some();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 2 && !set("RAYON_NUM_THREADS") && !set("CANDLE_NUM_THREADS") {
        // Before any other thread exists (first statement of `main`), so no reader races it.
        std::env::set_var("RAYON_NUM_THREADS", "1");
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}
