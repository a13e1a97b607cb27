//! Interruptions during a scan: SIGINT (Ctrl-C) and SIGTERM, counted. The first stops
//! probing (the partial report is written, then the canary cleanup runs and the report is
//! written again); the second, in the binary, ends the process at once: every report file
//! is written by an atomic rename, so whatever is on disk stays valid JSON. Also the tally
//! of what an interrupted run did not send.

use crate::plan::Attack;
use crate::report::NotRun;
use crate::spec::Api;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Exit code for a second signal; negative while the process should not exit (the library
/// in tests, or any embedder that keeps its own process).
static EXIT_ON_SECOND: AtomicI32 = AtomicI32::new(-1);

/// Makes a second signal end the process with `code` (the binary calls this once).
pub fn exit_on_second_signal(code: u8) {
    EXIT_ON_SECOND.store(i32::from(code), Ordering::SeqCst);
}

/// Signals received since [`Interrupts::listen`]; dropping it stops listening.
pub(super) struct Interrupts {
    count: watch::Receiver<u32>,
    listener: JoinHandle<()>,
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

    /// A signal came already.
    pub fn any(&self) -> bool {
        *self.count.borrow() > 0
    }

    /// Stops listening (signals get tokio's handling again: counted by nobody).
    pub fn stop(self) {}

    /// Resolves once `times` signals came; never, if listening stopped before.
    pub fn pressed(&self, times: u32) -> impl Future<Output = ()> + 'static {
        let mut rx = self.count.clone();
        async move {
            if rx.wait_for(|n| *n >= times).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Interrupts {
    // Also on an early return (a failed login): no listener outlives its scan.
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Probes planned but not sent (or sent and not judged), per operation and attack, sorted;
/// each given as (operation index, attack).
pub(super) fn tally_not_run(
    api: &Api,
    probes: impl IntoIterator<Item = (usize, Attack)>,
) -> Vec<NotRun> {
    let mut counts: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    for (op, attack) in probes {
        *counts
            .entry((api.operations[op].key(), attack.as_str()))
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
