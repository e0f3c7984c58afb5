//! Saving positions: the ledger of acknowledged state, written when due (every
//! `positions.sync_period`, or sooner once enough has been acknowledged that the spool should
//! shrink) and at shutdown. Spool segments are only deleted after this write covers them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::positions::{self, Ledger};

pub struct Checkpointer {
    pub ledger: Mutex<Ledger>,
    path: PathBuf,
    period: Duration,
    last: Mutex<Instant>,
    write: Mutex<()>,
}

impl Checkpointer {
    pub fn new(ledger: Ledger, path: PathBuf, period: Duration) -> Checkpointer {
        Checkpointer {
            ledger: Mutex::new(ledger),
            path,
            period,
            last: Mutex::new(Instant::now()),
            write: Mutex::new(()),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn acked(&self, client: &str) -> u64 {
        self.lock().clients.get(client).copied().unwrap_or(0)
    }

    pub fn ack(&self, client: &str, seq: u64) {
        self.lock().ack(client, seq);
    }

    /// Writes positions if due (or forced); returns the client acknowledgements now on disk.
    pub fn persist(&self, force: bool) -> Option<BTreeMap<String, u64>> {
        {
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if !force && last.elapsed() < self.period {
                return None;
            }
        }
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = {
            let mut l = self.lock();
            if !force && !l.dirty {
                return None;
            }
            l.dirty = false;
            l.snapshot()
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        match positions::store(&self.path, &snapshot) {
            Ok(()) => Some(snapshot.clients),
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %e, "cannot write positions");
                self.lock().dirty = true;
                None
            }
        }
    }
}
