//! The `weir` binary: the command line's edge, where errors become exit
//! codes.

use clap::Parser;
use weir::cli::{Cli, Outcome};

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
