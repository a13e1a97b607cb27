//! The scan's progress on a terminal: an indicatif bar on stderr, redrawn at most ten
//! times a second, drawn only when stderr is a terminal and `--no-progress` is not given.
//! The library only reports (rolegrid::scan::Progress); drawing is the binary's business.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rolegrid::scan::{ProbeDone, Progress};
use std::io::IsTerminal;
use std::sync::Arc;

struct Bar(ProgressBar);

/// The bar for a scan, or `None` when nothing should be drawn.
pub fn terminal_bar(no_progress: bool) -> Option<Arc<dyn Progress>> {
    if no_progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} probes {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(Arc::new(Bar(bar)))
}

/// The text after the counts: the attack last judged and, once there are any, the
/// violations so far.
fn message(update: &ProbeDone) -> String {
    match update.violations {
        0 => update.attack.to_string(),
        n => format!("{} · {n} violations", update.attack),
    }
}

impl Progress for Bar {
    fn planned(&self, total: usize) {
        self.0.set_length(total as u64);
    }

    fn probe_done(&self, update: ProbeDone) {
        self.0.set_position(update.done as u64);
        self.0.set_message(message(&update));
    }

    fn finished(&self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolegrid::plan::Attack;

    #[test]
    fn message_names_the_attack_and_counts_violations_once_there_are_any() {
        let mut update = ProbeDone {
            done: 3,
            total: 10,
            attack: Attack::IdSwap,
            violations: 0,
        };
        assert_eq!(message(&update), "id-swap");
        update.violations = 2;
        assert_eq!(message(&update), "id-swap · 2 violations");
    }
}
