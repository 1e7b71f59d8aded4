//! Graceful shutdown on SIGTERM / SIGINT.
//!
//! [`on_signals`] installs the handlers (before the sockets are bound, so a signal sent
//! right after the ready line is never lost) and returns a [`Shutdown`] that every worker
//! watches. When it fires, a worker stops reading its listening sockets, stops taking new
//! queries, answers the queries it already has (each within the query budget, so the wait
//! is bounded), flushes its TCP replies and returns; the process then exits 0. A second
//! signal during that wait exits at once with status 1.

use std::io;
use std::time::Duration;

use async_signal::{Signal, Signals};
use smol::channel::{self, Receiver, Sender};
use smol::stream::StreamExt;

/// Watched by the workers: fires once, for everyone. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(Receiver<()>);

/// Fires the [`Shutdown`] it was made with.
#[derive(Debug)]
pub struct Trigger(Sender<()>);

impl Shutdown {
    /// A shutdown that only fires through the returned [`Trigger`] (for tests and embedders).
    pub fn manual() -> (Trigger, Shutdown) {
        let (tx, rx) = channel::bounded(1);
        (Trigger(tx), Shutdown(rx))
    }

    /// A shutdown that never fires.
    pub fn never() -> Shutdown {
        let (tx, rx) = channel::bounded(1);
        std::mem::forget(tx);
        Shutdown(rx)
    }

    /// Whether it has fired.
    pub fn is_triggered(&self) -> bool {
        self.0.is_closed()
    }

    /// Resolves once it has fired.
    pub async fn wait(&self) {
        while self.0.recv().await.is_ok() {}
    }
}

impl Trigger {
    /// Fires the shutdown; every waiter wakes.
    pub fn fire(&self) {
        self.0.close();
    }
}

/// How long a worker waits for its in-flight queries at most: their budget plus a
/// margin for the replies to be written.
pub fn drain_limit(budget: Duration) -> Duration {
    budget + Duration::from_millis(500)
}

/// Installs SIGTERM and SIGINT handlers and returns the [`Shutdown`] they fire.
pub fn on_signals() -> io::Result<Shutdown> {
    let mut signals = Signals::new([Signal::Term, Signal::Int])?;
    let (trigger, shutdown) = Shutdown::manual();
    std::thread::Builder::new()
        .name("names-signals".into())
        .spawn(move || {
            smol::block_on(async {
                let mut fired = false;
                while let Some(signal) = signals.next().await {
                    let Ok(signal) = signal else { continue };
                    let name = if signal == Signal::Term {
                        "SIGTERM"
                    } else {
                        "SIGINT"
                    };
                    if fired {
                        eprintln!("names: second signal ({name}): exiting at once");
                        std::process::exit(1);
                    }
                    fired = true;
                    crate::systemd::stopping();
                    log::info!("{name}: finishing the queries in flight, then exiting");
                    trigger.fire();
                }
            })
        })?;
    Ok(shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_trigger_wakes_every_clone() {
        let (trigger, a) = Shutdown::manual();
        let b = a.clone();
        assert!(!a.is_triggered());
        trigger.fire();
        assert!(a.is_triggered() && b.is_triggered());
        smol::block_on(async {
            a.wait().await;
            b.wait().await;
        });
    }

    #[test]
    fn never_does_not_fire() {
        let s = Shutdown::never();
        assert!(!s.is_triggered());
        let waited = smol::block_on(smol::future::or(
            async {
                s.wait().await;
                true
            },
            async {
                smol::Timer::after(Duration::from_millis(20)).await;
                false
            },
        ));
        assert!(!waited);
    }
}
