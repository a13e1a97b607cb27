//! rolegrid's binary: parse arguments, run the command, map the outcome to an exit code.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rolegrid: cannot start the async runtime: {e}");
            return ExitCode::from(cli::exit::RUN_FAILURE);
        }
    };
    // A second Ctrl-C (or SIGTERM) ends the process at once; the first lets a scan stop,
    // clean up and write its partial report.
    rolegrid::run::exit_on_second_signal(cli::exit::RUN_FAILURE);
    let code = runtime.block_on(cli::run(args));
    ExitCode::from(code)
}
