//! What several commands share: stdout that tolerates a closed pipe, the notice naming a
//! target that is not this machine before the first request, the `--target`/`--proxy`
//! overrides, and the demo portal started on a loopback port.

use super::args::ReachFlags;
use super::exit::{self, fail};
use rolegrid::demo::{self, DemoOptions, RunningDemo};
use rolegrid::engagement::{Engagement, EnvSource, Overrides};
use rolegrid::inputs::Inputs;
use std::io::Write;
use std::path::Path;

/// Writes to stdout; a closed pipe (`rolegrid … | head`) is not an error.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes `text` to `output`, or to stdout when none is given.
pub fn write_or_print(output: Option<&Path>, text: &str) -> Result<(), String> {
    match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            print_stdout(text);
            Ok(())
        }
    }
}

/// Names a target that is not this machine (and the scope, proxy and TLS exceptions) on
/// stdout before the first request; standing warnings go to stderr.
pub fn announce(engagement: &Engagement) {
    if !engagement.target_is_local() {
        let mut text = format!(
            "rolegrid: target {} is not this machine; requests go only to {}",
            engagement.target,
            engagement.scope_text()
        );
        if let Some(proxy) = &engagement.proxy {
            text.push_str(&format!(", through the proxy {proxy}"));
        }
        text.push('\n');
        print_stdout(&text);
    }
    for warning in engagement.standing_warnings() {
        eprintln!("rolegrid: warning: {warning}");
    }
}

/// The overrides `--target` and `--proxy` ask for (checked when they are applied).
pub fn reach_overrides(reach: &ReachFlags) -> Overrides {
    Overrides {
        target: reach.target.clone(),
        proxy: reach.proxy.clone(),
        ..Overrides::default()
    }
}

/// Starts the demo portal on 127.0.0.1:`port` (0: any free port); `Err` is the exit code,
/// the reason already printed.
pub async fn start_portal(options: DemoOptions, port: u16) -> Result<RunningDemo, u8> {
    demo::spawn(options, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| {
            fail(
                exit::RUN_FAILURE,
                format!("cannot start the demo portal on port {port}: {e}"),
            )
        })
}

/// The engagement at `path` (`${VAR}` from the process environment) with `overrides`,
/// its spec and its matrix; `Err` is the exit code, the problem already printed.
pub fn load_inputs(path: &Path, overrides: Overrides) -> Result<Inputs, u8> {
    Inputs::load(path, &EnvSource::process(), overrides).map_err(|e| fail(exit::BAD_INPUT, e))
}
