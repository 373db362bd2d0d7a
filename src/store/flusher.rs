//! Group commit: one thread makes the store durable for everyone waiting.
//!
//! A writer calls [`Flusher::durable`] after its write: it takes a ticket, wakes the flusher
//! thread and waits until a flush that started after the ticket was taken has finished. The thread
//! flushes (a blocking `Db::flush`, one fsync of sled's log) for every ticket taken so far at once,
//! so under load one fsync acknowledges many messages. This is also how concierge avoids
//! `flush_async`, which deadlocks when called concurrently in sled 0.34 (spacejam/sled#1308).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The result of the latest flush: every ticket up to `covered` is durable, unless it failed.
#[derive(Clone, Debug)]
struct Flushed {
    covered: u64,
    error: Option<Arc<str>>,
}

/// Owns the flusher thread; dropping it stops and joins the thread (so the database is closed
/// when the last store handle goes).
#[derive(Debug)]
pub(super) struct Flusher {
    tickets: Arc<AtomicU64>,
    wake: Option<std::sync::mpsc::Sender<()>>,
    flushed: tokio::sync::watch::Receiver<Flushed>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(db: sled::Db) -> std::io::Result<Flusher> {
        let tickets = Arc::new(AtomicU64::new(0));
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        let (tell, flushed) = tokio::sync::watch::channel(Flushed {
            covered: 0,
            error: None,
        });
        let taken = tickets.clone();
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    // Everything asked for until now rides on this flush.
                    while woken.try_recv().is_ok() {}
                    let covered = taken.load(Ordering::SeqCst);
                    let error = db.flush().err().map(|e| Arc::from(e.to_string()));
                    tell.send_replace(Flushed { covered, error });
                }
            })?;
        Ok(Flusher {
            tickets,
            wake: Some(wake),
            flushed,
            thread: Some(thread),
        })
    }

    /// Returns once everything written before the call is on disk.
    pub(super) async fn durable(&self) -> Result<(), String> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(wake) = &self.wake else {
            return Err("the store is closing".into());
        };
        wake.send(())
            .map_err(|_| "the flusher has stopped".to_string())?;
        let mut flushed = self.flushed.clone();
        let result = flushed
            .wait_for(|f| f.covered >= ticket)
            .await
            .map_err(|_| "the flusher has stopped".to_string())?;
        match &result.error {
            Some(err) => Err(err.to_string()),
            None => Ok(()),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
