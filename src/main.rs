//! The `heldout` binary: see `heldout --help`.

use clap::Parser;
use heldout::cli::{Cli, Command, GuiArgs, LiveArg, TabArg};
use heldout::gui::{LaunchOptions, LiveSub, Tab};

fn main() -> std::process::ExitCode {
    default_compute_threads();
    tune_allocator();
    let cli = Cli::parse();
    // The binary is the one place that knows both front ends: the workbench for `heldout` and
    // `heldout gui`, the command line for everything else.
    match cli.command {
        Some(Command::Gui(a)) => gui(gui_options(a)),
        None => gui(LaunchOptions::default()),
        Some(_) => heldout::cli::main(cli),
    }
}

fn gui(o: LaunchOptions) -> std::process::ExitCode {
    match heldout::gui::launch(o) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workbench's start options from `heldout gui`'s arguments.
fn gui_options(a: GuiArgs) -> LaunchOptions {
    LaunchOptions {
        experiment: a.experiment,
        open_run: a.open_run,
        tab: a.tab.map(|t| match t {
            TabArg::Data => Tab::Data,
            TabArg::Experiment => Tab::Experiment,
            TabArg::Live => Tab::Live,
            TabArg::Results => Tab::Results,
            TabArg::Runs => Tab::Runs,
            TabArg::Playground => Tab::Playground,
        }),
        live: a.live.map(|l| match l {
            LiveArg::Histograms => LiveSub::Histograms,
            LiveArg::Curves => LiveSub::Curves,
            LiveArg::Training => LiveSub::Training,
            LiveArg::Pcgrad => LiveSub::Pcgrad,
        }),
        screenshot: a.screenshot,
        size: a.size,
        start_run: a.start_run,
        exit_after: a.exit_after,
        load_data: a.load_data,
    }
}

/// glibc hands every allocation of 128 KiB or more (at first; the limit then moves) to `mmap`
/// and returns the top of the heap to the system when 128 KiB of it are free, so the
/// meta-learner's per-step buffers (128 rows × 256 floats each) came back as fresh pages, zeroed
/// by the kernel, at every step — and how often depended on what else had been allocated (the
/// inner step took 7.4–8.1 ms after the default checkpoint pools and 9.3 ms after small ones).
/// Fixed limits keep freed buffers for reuse: inner step 7.4–8.2 → 6.7–6.9 ms, episode
/// 0.70–0.71 → 0.67–0.70 s (`heldout bench episode`, three alternating runs each; peak RSS
/// 139 → 142 MB). Up to 64 MiB of freed memory may stay with the process.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; called before any other thread exists
    // (second statement of `main`).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
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
