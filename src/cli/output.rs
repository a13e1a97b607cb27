//! What the binary writes outside the reports: stdout that tolerates a closed pipe, and
//! the notice naming a target that is not this machine before the first request.

use rolegrid::engagement::Engagement;
use std::io::Write;

/// Writes to stdout; a closed pipe (`rolegrid … | head`) is not an error.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
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
