//! rolegrid's binary: parse arguments, run the command, map the outcome to an exit code.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic message may quote a value that holds a credential: printed scrubbed.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let redactor = rolegrid::engagement::Redactor::process();
        eprintln!("{}", redactor.panic_text(info.payload(), &location));
    }));
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
