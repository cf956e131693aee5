//! The `heldout` binary: see `heldout --help`.

fn main() -> std::process::ExitCode {
    heldout::cli::main()
}
