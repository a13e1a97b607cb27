//! Interruptions: SIGINT (Ctrl-C) and SIGTERM, counted. The first asks the run to stop
//! sending, clean up and write its partial report; the second, in the binary, ends the
//! process at once (every report file is written by an atomic rename, so whatever is on
//! disk stays valid JSON). Also the tally of what an interrupted run did not send.

use crate::plan::Probe;
use crate::spec::Api;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use tokio::sync::watch;

/// Exit code for a second signal; negative while the process should not exit (the library
/// in tests, or any embedder that keeps its own process).
static EXIT_ON_SECOND: AtomicI32 = AtomicI32::new(-1);

/// Makes a second signal end the process with `code` (the binary calls this once).
pub fn exit_on_second_signal(code: u8) {
    EXIT_ON_SECOND.store(i32::from(code), Ordering::SeqCst);
}

/// Signals received since [`Interrupts::listen`]; dropping it stops listening.
pub struct Interrupts {
    count: watch::Receiver<u32>,
    listener: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Starts counting SIGINT and SIGTERM on the current tokio runtime.
    pub fn listen() -> Self {
        let (tx, count) = watch::channel(0u32);
        let listener = tokio::spawn(async move {
            #[cfg(unix)]
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                #[cfg(unix)]
                let terminated = async {
                    match term.as_mut() {
                        Some(t) => t.recv().await.is_some(),
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let terminated = std::future::pending::<bool>();
                let got = tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                    r = terminated => r,
                };
                if !got {
                    // No signal handling on this platform or runtime: never "pressed".
                    return;
                }
                tx.send_modify(|n| *n += 1);
                let code = EXIT_ON_SECOND.load(Ordering::SeqCst);
                if *tx.borrow() >= 2 && code >= 0 {
                    eprintln!(
                        "rolegrid: second interrupt: exiting now; report files already written stay valid"
                    );
                    std::process::exit(code);
                }
            }
        });
        Interrupts { count, listener }
    }

    /// How many signals came so far.
    pub fn count(&self) -> u32 {
        *self.count.borrow()
    }

    /// Resolves once `times` signals came; never, if listening stopped before.
    pub fn pressed(&self, times: u32) -> impl std::future::Future<Output = ()> + 'static {
        let mut rx = self.count.clone();
        async move {
            if rx.wait_for(|n| *n >= times).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Why a run stopped before its end, when, and what it did not do: the partial report's
/// account (`run.complete` is `false` whenever this is present).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stopped {
    /// `interrupted` (SIGINT or SIGTERM) or `target-down` (the target stopped answering).
    pub reason: String,
    /// Seconds since the Unix epoch when it happened (for `target-down`: the first of the
    /// failures that stopped the run); 0 in deterministic (`--seed`) runs.
    pub at_unix: u64,
    /// Probes planned for the run, and how many of them were not sent or not judged.
    pub probes_planned: usize,
    pub probes_not_run: usize,
    /// The probes not run, per operation and attack.
    pub not_run: Vec<NotRun>,
    /// Later stages skipped or cut short (`canary cleanup`).
    pub stages_not_run: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotRun {
    pub operation: String,
    pub attack: String,
    pub probes: usize,
}

/// Probes planned but not sent, per operation and attack, sorted.
pub fn tally_not_run(api: &Api, probes: impl IntoIterator<Item = Probe>) -> Vec<NotRun> {
    let mut counts: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    for p in probes {
        *counts
            .entry((api.operations[p.op].key(), p.attack.as_str()))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((operation, attack), probes)| NotRun {
            operation,
            attack: attack.to_string(),
            probes,
        })
        .collect()
}
