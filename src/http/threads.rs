//! Connection threads: the threads that serve accepted connections, each running a
//! current-thread runtime of its own. The accept loop ([`super::run_on`]) hands each new
//! connection to the next thread in turn, and the connection (its requests, and whatever its
//! handlers spawn) stays on that thread until it closes.
//!
//! Why not tokio's multi-thread runtime: both spread the requests over the CPUs, but the
//! work-stealing scheduler's shared queues, the atomics around them and the wake-ups between its
//! workers cost the SMS webhook CPU on every request. Threads that each own their connections
//! keep the single thread's cost a request and still use every CPU (BENCHMARKS.md, SMS webhook
//! step 63).
//!
//! Invariant: a connection is registered with its thread's reactor only ([`spawn`] moves the
//! accepted socket there as a `std` socket), so no IO of a connection crosses threads.
//!
//! [`spawn`]: ConnectionThreads::spawn

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Running connection threads; dropping it (or [`ConnectionThreads::stop`]) ends them, and the
/// connections still on them.
#[derive(Debug)]
pub struct ConnectionThreads {
    handles: Vec<Handle>,
    /// The thread the next connection goes to.
    next: usize,
    /// Dropped to end the threads: each waits on its receiver.
    stops: Vec<oneshot::Sender<()>>,
    joins: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one), named `conn-N` as in the metrics' `runtime` label
    /// (Linux keeps 15 bytes of a thread's name: `concierge-conn-N` showed in `ps`, `top` and
    /// `perf` as `concierge-conn-` for every thread).
    pub fn start(count: usize) -> io::Result<ConnectionThreads> {
        let mut threads = ConnectionThreads {
            handles: Vec::new(),
            next: 0,
            stops: Vec::new(),
            joins: Vec::new(),
        };
        for n in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            threads.handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            threads.stops.push(stop);
            let join = std::thread::Builder::new()
                .name(format!("conn-{n}"))
                .spawn(move || {
                    // Either a stop or its sender dropped ends the thread.
                    let _ = runtime.block_on(stopped);
                })?;
            threads.joins.push(join);
        }
        Ok(threads)
    }

    /// How many threads there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Each thread's runtime, in thread order (for its metrics).
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Always false: there is at least one thread.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `connection` on the next thread in turn. The future runs only there: a socket it
    /// makes (from a `std` one) is registered with that thread's reactor.
    pub fn spawn(&mut self, connection: impl Future<Output = ()> + Send + 'static) {
        let handle = &self.handles[self.next];
        self.next = (self.next + 1) % self.handles.len();
        drop(handle.spawn(connection));
    }

    /// Runs a future made by `make` on every thread (a watcher of each thread's runtime).
    pub fn spawn_on_each<F>(&self, make: impl Fn() -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        for handle in &self.handles {
            drop(handle.spawn(make()));
        }
    }

    /// Ends the threads (connections still open on them are dropped) and waits for them.
    pub fn stop(mut self) {
        self.stops.clear();
        for join in self.joins.drain(..) {
            let _ = join.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread a future ran on, as its name.
    async fn thread_name() -> String {
        std::thread::current().name().unwrap_or("").to_string()
    }

    #[test]
    fn connections_go_to_each_thread_in_turn_and_stop_ends_them() {
        let mut threads = ConnectionThreads::start(3).unwrap();
        assert_eq!(threads.len(), 3);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..6 {
            let tx = tx.clone();
            threads.spawn(async move {
                tx.send(thread_name().await).unwrap();
            });
        }
        let mut names: Vec<String> = (0..6).map(|_| rx.recv().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            ["conn-0", "conn-0", "conn-1", "conn-1", "conn-2", "conn-2"]
        );

        // A task still running when the threads stop is dropped with its thread.
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        threads.spawn_on_each(move || {
            let guard = dropped_tx.clone();
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        });
        threads.stop();
        // Every sender is gone once the threads' runtimes dropped the pending tasks.
        assert_eq!(
            dropped_rx.recv_timeout(std::time::Duration::from_secs(10)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn zero_threads_means_one() {
        let threads = ConnectionThreads::start(0).unwrap();
        assert_eq!(threads.len(), 1);
        assert!(!threads.is_empty());
        threads.stop();
    }
}
