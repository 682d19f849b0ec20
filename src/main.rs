//! The `weir` binary: the command line's edge, where errors become exit
//! codes.

use clap::Parser;
use weir::cli::{Cli, Outcome};

/// Every event is a handful of small heap blocks that one thread allocates
/// and another frees; mimalloc handles that pattern far better than glibc's
/// malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match weir::cli::main(Cli::parse()) {
        Ok(Outcome::Success) => std::process::ExitCode::SUCCESS,
        Ok(Outcome::Problems) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
