//! Ctrl-C during a scan, counted: the first press stops probing (the partial report and
//! the canary cleanup still run), the second abandons the cleanup.

use std::future::Future;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(super) struct Interrupts {
    presses: watch::Receiver<u32>,
    listener: JoinHandle<()>,
}

impl Interrupts {
    /// Starts counting presses; [`Interrupts::stop`] ends it.
    pub fn listen() -> Self {
        let (tx, presses) = watch::channel(0u32);
        let listener = tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                tx.send_modify(|n| *n += 1);
            }
        });
        Interrupts { presses, listener }
    }

    /// Resolves once Ctrl-C was pressed `times` times (never, if the counting ended).
    pub fn pressed(&self, times: u32) -> impl Future<Output = ()> {
        let mut rx = self.presses.clone();
        async move {
            if rx.wait_for(|n| *n >= times).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Ctrl-C was pressed at least once already.
    pub fn any(&self) -> bool {
        *self.presses.borrow() > 0
    }

    pub fn stop(self) {
        self.listener.abort();
    }
}
