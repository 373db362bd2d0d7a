//! Prometheus metrics, served on their own listener (`metrics_bind`) so they are never exposed
//! with the public webhook. Counters and histograms are updated where things happen; gauges that
//! describe state (queues, outbox backlog, store size) are read when scraped.
//!
//! | metric | what |
//! |---|---|
//! | `concierge_http_requests_total{route,method,status}` | requests by matched route |
//! | `concierge_http_request_duration_seconds{route}` | latency histogram |
//! | `concierge_messages_total{channel}` | attendee messages handled (not redeliveries) |
//! | `concierge_intent_hits_total{intent}` | what they were read as |
//! | `concierge_fallback_ratio` | share of messages since start that fell to fallback |
//! | `concierge_matcher_seconds` | time to classify one message |
//! | `concierge_queue_waiting{queue}`, `concierge_queue_longest_wait_seconds{queue}` | the expert queues |
//! | `concierge_experts_available` | experts available now |
//! | `concierge_outbox_backlog` | outbound messages waiting to be sent |
//! | `concierge_outbox_send_failures_total` | send attempts that failed (retried or final) |
//! | `concierge_reminders_pending` | reminders scheduled |
//! | `concierge_store_size_bytes` | the store's size on disk (sled and its write-ahead log) |
//! | `concierge_store_attendees_in_memory` | SMS attendees whose records the store holds in memory |
//! | `concierge_store_idempotency_keys` | processed-message keys remembered (their hashes in memory) |
//! | `concierge_store_log_sync_seconds` | the write-ahead log's append and `fdatasync`, per batch |
//! | `concierge_store_batch_seconds` | the store writer's batches, whole |
//! | `concierge_runtime_lag_seconds` | how late the request runtime wakes for a timer ([`watch_runtime_lag`]) |
//! | `concierge_runtime_busy_seconds_total{runtime}`, `concierge_runtime_parks_total{runtime}` | each runtime's time spent running tasks, and how often its threads went to sleep ([`Metrics::watch_runtime`]) |
//! | `concierge_thread_cpu_seconds_total{thread}`, `concierge_thread_wait_seconds_total{thread}` | each of the process's threads (by name): its time on a CPU, and its time ready to run but waiting for one (Linux, [`thread_times`]) |

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntentLabel {
    pub intent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuntimeLabel {
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabel {
    thread: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Request latency buckets: 100 µs doubling to about 3.3 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Handles of a family's series (they share the family's storage) by a key cheaper to find
/// than the family's labels, so the hot path builds no label and takes no family lock. FxHash:
/// the keys come from fixed sets (channels, intent names, routes).
#[derive(Debug)]
struct Series<K, V>(RwLock<FxHashMap<K, V>>);

impl<K, V> Default for Series<K, V> {
    fn default() -> Self {
        Series(RwLock::default())
    }
}

impl<K: Hash + Eq, V> Series<K, V> {
    /// Runs `apply` on the handles under `key`, made by `make` the first time `key` is seen.
    fn with<Q>(&self, key: &Q, make: impl FnOnce() -> V, apply: impl Fn(&V))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(handles) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            apply(handles);
            return;
        }
        let handles = make();
        apply(&handles);
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), handles);
    }
}

/// A family's counters by label value (the label has one value).
type Counters = Series<String, Counter>;

/// Counts one for `value` in `family`; the label is built only the first time.
fn count<L>(
    counters: &Counters,
    family: &Family<L, Counter>,
    value: &str,
    label: impl FnOnce() -> L,
) where
    L: Clone + Hash + Eq,
{
    counters.with(
        value,
        || family.get_or_create(&label()).clone(),
        |c| {
            c.inc();
        },
    );
}

/// The `requests` counter and `latency` histogram of each (route, method, status) served, so
/// that counting a request takes one read lock and an FxHash of three words, not both families'
/// locks and a SipHash of their labels. Keyed by the labels' addresses: the edge takes routes and
/// methods as `&'static str`s from fixed sets, so a label has few addresses, and one seen at a
/// second address only adds an entry for the same series.
type Served = Series<ServedKey, (Histogram, Counter)>;

/// The addresses of a request's route and method labels, and its status.
type ServedKey = (usize, usize, u16);

/// Every metric, and the registry that prints them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    messages: Family<ChannelLabel, Counter>,
    intents: Family<IntentLabel, Counter>,
    /// The two families' counters by label value, so counting a message builds no label (two
    /// strings allocated per message otherwise); each is the counter its family exports.
    by_channel: Counters,
    by_intent: Counters,
    served: Served,
    fallbacks: Counter,
    handled: Counter,
    fallback_ratio: FloatGauge,
    pub matcher: Histogram,
    queue_waiting: Family<QueueLabel, Gauge>,
    queue_longest: Family<QueueLabel, Gauge>,
    experts_available: Gauge,
    outbox_backlog: Gauge,
    pub send_failures: Counter,
    reminders_pending: Gauge,
    store_size: Gauge,
    attendees_in_memory: Gauge,
    idempotency_keys: Gauge,
    pub runtime_lag: Histogram,
    runtimes: std::sync::Arc<Runtimes>,
}

/// The runtimes [`Metrics::watch_runtime`] was given, read on each scrape from tokio's own
/// counters (kept whether or not anyone reads them).
#[derive(Debug, Default)]
struct Runtimes(std::sync::Mutex<Vec<(String, tokio::runtime::Handle)>>);

impl Collector for Runtimes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let runtimes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let each = || {
            runtimes.iter().map(|(runtime, handle)| {
                let label = RuntimeLabel {
                    runtime: runtime.clone(),
                };
                (label, handle.metrics())
            })
        };
        encode_counters(
            &mut encoder,
            "runtime_busy_seconds",
            "Time the runtime's threads spent running tasks (the rest they waited for work or were not running)",
            each().map(|(label, m)| {
                let busy = (0..m.num_workers())
                    .map(|w| m.worker_total_busy_duration(w))
                    .sum::<std::time::Duration>();
                (label, busy.as_secs_f64())
            }),
        )?;
        encode_counters(
            &mut encoder,
            "runtime_parks",
            "Times the runtime's threads went to sleep for want of work (each woken again for the next)",
            each().map(|(label, m)| {
                let parks = (0..m.num_workers()).map(|w| m.worker_park_count(w));
                (label, parks.sum::<u64>())
            }),
        )
    }
}

/// The process's threads, read from `/proc` on each scrape ([`thread_times`]).
#[derive(Debug, Default)]
struct Threads;

impl Collector for Threads {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let threads = thread_times();
        let each = |value: fn(&ThreadTime) -> f64| {
            threads.iter().map(move |(thread, time)| {
                let label = ThreadLabel {
                    thread: thread.clone(),
                };
                (label, value(time))
            })
        };
        encode_counters(
            &mut encoder,
            "thread_cpu_seconds",
            "Time the process's threads of this name spent on a CPU",
            each(|t| t.cpu),
        )?;
        encode_counters(
            &mut encoder,
            "thread_wait_seconds",
            "Time the process's threads of this name were ready to run but waited for a CPU (taken by other threads or processes)",
            each(|t| t.wait),
        )
    }
}

/// One counter, `name`, with a series for each `(labels, value)`.
fn encode_counters<L: EncodeLabelSet, N: prometheus_client::encoding::EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (L, N)>,
) -> std::fmt::Result {
    let mut counter = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(counter.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A thread's name as a label value: names are set by whoever starts a thread (the main
/// thread's is the executable's), so only letters, digits, `-`, `_` and `.` are kept, the rest
/// made `_`.
fn thread_label(comm: &str) -> String {
    comm.trim_end()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect()
}

/// How long a thread (or the threads of one name, summed) has spent on a CPU and waiting for
/// one, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ThreadTime {
    pub cpu: f64,
    pub wait: f64,
}

impl ThreadTime {
    /// A `schedstat` file's line: nanoseconds on a CPU, nanoseconds runnable and waiting for
    /// one, timeslices (`Documentation/scheduler/sched-stats.rst`).
    fn parse(schedstat: &str) -> Option<ThreadTime> {
        let mut fields = schedstat.split_ascii_whitespace();
        let mut seconds = || Some(fields.next()?.parse::<u64>().ok()? as f64 / 1e9);
        Some(ThreadTime {
            cpu: seconds()?,
            wait: seconds()?,
        })
    }
}

/// This process's threads by name (`/proc/self/task/*/comm`), with their times
/// (`/proc/self/task/*/schedstat`); threads of the same name are summed, and a thread that
/// ended since is gone. Empty without those files (not Linux, or a kernel without schedstats).
///
/// Why: a thread waiting for a CPU is invisible to its own clocks. On two CPUs under load the
/// store writer, whose every batch each acknowledged message waits for, waited for a CPU as
/// long as it ran (BENCHMARKS.md, SMS webhook step 65); so did the connection threads behind
/// the load generator's. Steal (the host taking the VM's CPUs) shows in `/proc/stat`, not here.
pub fn thread_times() -> std::collections::BTreeMap<String, ThreadTime> {
    let mut threads = std::collections::BTreeMap::<String, ThreadTime>::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(name), Ok(schedstat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        if let Some(time) = ThreadTime::parse(&schedstat) {
            let sum = threads.entry(thread_label(&name)).or_default();
            sum.cpu += time.cpu;
            sum.wait += time.wait;
        }
    }
    threads
}

/// How often [`watch_runtime_lag`] samples the runtime: a hundred wake-ups a second, nothing
/// beside a service's request rate, and often enough to catch a lapse of 10 ms.
pub const LAG_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Samples how late the runtime it runs on wakes for a timer, every [`LAG_TICK`], into
/// `concierge_runtime_lag_seconds` (`serve` runs one on each of its runtimes: the one that
/// accepts and runs background tasks, and each connection thread's, `http::threads`): the time
/// its threads were busy with other tasks or not
/// running at all (the OS gave the CPU to others). Requests queued on the sockets wait that long,
/// before any handler's clock starts, so the request histogram cannot see it (BENCHMARKS.md, SMS
/// webhook step 58). Tokio's timer has 1 ms granularity: up to ~1 ms of every sample is the
/// timer's rounding. Runs until the task is dropped.
pub async fn watch_runtime_lag(metrics: std::sync::Arc<Metrics>) {
    loop {
        let asleep = tokio::time::Instant::now();
        tokio::time::sleep(LAG_TICK).await;
        let late = asleep.elapsed().saturating_sub(LAG_TICK);
        metrics.runtime_lag.observe(late.as_secs_f64());
    }
}

/// What the scrape reads from the service's state.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `(queue, waiting, longest wait in seconds)`.
    pub queues: Vec<(String, i64, i64)>,
    pub experts_available: i64,
    pub outbox_backlog: i64,
    pub reminders_pending: i64,
    pub store_size_bytes: i64,
    pub attendees_in_memory: i64,
    pub idempotency_keys: i64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("concierge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let latency: Family<RouteLabel, Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route",
            latency.clone(),
        );
        let messages = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "messages",
            "Attendee messages handled, by channel (redeliveries not counted)",
            messages.clone(),
        );
        let intents = Family::<IntentLabel, Counter>::default();
        registry.register(
            "intent_hits",
            "Messages by the intent they were read as",
            intents.clone(),
        );
        let fallback_ratio = FloatGauge::default();
        registry.register(
            "fallback_ratio",
            "Share of the messages since start that fell to fallback",
            fallback_ratio.clone(),
        );
        let matcher = Histogram::new(exponential_buckets(0.000_000_5, 2.0, 16));
        registry.register(
            "matcher_seconds",
            "Time to classify one message",
            matcher.clone(),
        );
        let queue_waiting = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "queue_waiting",
            "Hand-offs waiting, by queue",
            queue_waiting.clone(),
        );
        let queue_longest = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "queue_longest_wait_seconds",
            "The longest wait of a hand-off in the queue",
            queue_longest.clone(),
        );
        let experts_available = Gauge::default();
        registry.register(
            "experts_available",
            "Experts available now",
            experts_available.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Outbound messages waiting to be sent",
            outbox_backlog.clone(),
        );
        let send_failures = Counter::default();
        registry.register(
            "outbox_send_failures",
            "Outbound send attempts that failed (retried or final)",
            send_failures.clone(),
        );
        let reminders_pending = Gauge::default();
        registry.register(
            "reminders_pending",
            "Reminders scheduled",
            reminders_pending.clone(),
        );
        let store_size = Gauge::default();
        registry.register(
            "store_size_bytes",
            "The store's size on disk (sled and its write-ahead log)",
            store_size.clone(),
        );
        let attendees_in_memory = Gauge::default();
        registry.register(
            "store_attendees_in_memory",
            "SMS attendees whose records the store holds in memory",
            attendees_in_memory.clone(),
        );
        let idempotency_keys = Gauge::default();
        registry.register(
            "store_idempotency_keys",
            "Processed-message keys remembered for redeliveries (their hashes are held in memory)",
            idempotency_keys.clone(),
        );
        let runtime_lag = Histogram::new(crate::store::COMMIT_BUCKETS.iter().copied());
        registry.register(
            "runtime_lag_seconds",
            "How late the request runtime wakes for a timer, sampled every 10 ms (its threads busy elsewhere or not running)",
            runtime_lag.clone(),
        );
        let runtimes = std::sync::Arc::new(Runtimes::default());
        registry.register_collector(Box::new(runtimes.clone()));
        registry.register_collector(Box::new(Threads));
        Metrics {
            registry,
            requests,
            latency,
            messages,
            intents,
            by_channel: Counters::default(),
            by_intent: Counters::default(),
            served: Served::default(),
            fallbacks: Counter::default(),
            handled: Counter::default(),
            fallback_ratio,
            matcher,
            queue_waiting,
            queue_longest,
            experts_available,
            outbox_backlog,
            send_failures,
            reminders_pending,
            store_size,
            attendees_in_memory,
            idempotency_keys,
            runtime_lag,
            runtimes,
        }
    }

    /// Exports the busy time and parks of the runtime behind `handle` as `name`
    /// (`concierge_runtime_busy_seconds_total` and `concierge_runtime_parks_total`). A thread
    /// busy nearly all of a second is saturated even when it still wakes for its timers on time
    /// (so [`watch_runtime_lag`] shows nothing); parks per request tell how often a thread is
    /// woken for one.
    pub fn watch_runtime(&self, name: &str, handle: &tokio::runtime::Handle) {
        self.runtimes
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), handle.clone()));
    }

    /// Adds the store's writer timings (histograms the writer thread fills).
    pub fn register_store(&mut self, times: &crate::store::CommitTimes) {
        self.registry.register(
            "store_log_sync_seconds",
            "Time to append a batch to the write-ahead log and fdatasync it (the disk's share of every acknowledgement)",
            times.log_sync.clone(),
        );
        self.registry.register(
            "store_batch_seconds",
            "Time the store's writer takes for one batch of changes (log, journals, sled, answers)",
            times.batch.clone(),
        );
    }

    /// Counts one request answered with `status` and records its latency (`requests` and
    /// `latency`).
    pub fn served(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        let key = (route.as_ptr() as usize, method.as_ptr() as usize, status);
        let make = || {
            let latency = self.latency.get_or_create(&RouteLabel { route }).clone();
            let labels = RequestLabels {
                route,
                method,
                status,
            };
            (latency, self.requests.get_or_create(&labels).clone())
        };
        self.served.with(&key, make, |(latency, requests)| {
            latency.observe(seconds);
            requests.inc();
        });
    }

    /// Counts one handled message.
    pub fn message(&self, channel: &str, intent: &str) {
        count(&self.by_channel, &self.messages, channel, || ChannelLabel {
            channel: channel.into(),
        });
        count(&self.by_intent, &self.intents, intent, || IntentLabel {
            intent: intent.into(),
        });
        self.handled.inc();
        if intent == crate::intents::FALLBACK {
            self.fallbacks.inc();
        }
    }

    /// The text exposition (OpenMetrics), with the state gauges set from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let handled = self.handled.get();
        self.fallback_ratio.set(if handled == 0 {
            0.0
        } else {
            self.fallbacks.get() as f64 / handled as f64
        });
        for (queue, waiting, longest) in &snapshot.queues {
            let label = QueueLabel {
                queue: queue.clone(),
            };
            self.queue_waiting.get_or_create(&label).set(*waiting);
            self.queue_longest.get_or_create(&label).set(*longest);
        }
        self.experts_available.set(snapshot.experts_available);
        self.outbox_backlog.set(snapshot.outbox_backlog);
        self.reminders_pending.set(snapshot.reminders_pending);
        self.store_size.set(snapshot.store_size_bytes);
        self.attendees_in_memory.set(snapshot.attendees_in_memory);
        self.idempotency_keys.set(snapshot.idempotency_keys);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The metrics listener's one route: `GET /metrics`.
pub fn router(state: crate::state::AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

async fn scrape(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
) -> impl axum::response::IntoResponse {
    let now = state.clock.now();
    let stats = state.desk.stats(now);
    let in_memory = state.store.in_memory();
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let snapshot = Snapshot {
        queues: stats
            .queues
            .iter()
            .map(|q| (q.queue.clone(), q.waiting as i64, q.longest_wait_seconds))
            .collect(),
        experts_available: stats.available_experts as i64,
        outbox_backlog: state.store.outbox_len() as i64,
        reminders_pending: state.store.pending_reminders() as i64,
        store_size_bytes: state
            .store
            .size_on_disk()
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
        attendees_in_memory: gauge(in_memory.attendees),
        idempotency_keys: gauge(in_memory.idempotency_keys),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&snapshot),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_lines_are_read_in_seconds() {
        let time = ThreadTime::parse("1239000000 1290500000 30418\n").unwrap();
        assert_eq!(
            time,
            ThreadTime {
                cpu: 1.239,
                wait: 1.2905
            }
        );
        assert_eq!(ThreadTime::parse(""), None);
        assert_eq!(ThreadTime::parse("12 x 3"), None);
    }

    #[test]
    fn thread_names_become_safe_label_values() {
        assert_eq!(thread_label("store-writer\n"), "store-writer");
        assert_eq!(thread_label("tokio-runtime-w"), "tokio-runtime-w");
        assert_eq!(thread_label("a \"b\"\\{c}"), "a__b___c_");
    }

    /// A named thread's CPU time is scraped under its name, while it runs (Linux).
    #[test]
    fn a_threads_cpu_time_is_exported_by_name() {
        if !std::path::Path::new("/proc/self/task").exists() {
            return;
        }
        let (done, stop) = std::sync::mpsc::channel::<()>();
        let (spun, spinning) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics-spin".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                while started.elapsed() < std::time::Duration::from_millis(60) {
                    std::hint::spin_loop();
                }
                spun.send(()).unwrap();
                let _ = stop.recv();
            })
            .unwrap();
        spinning.recv().unwrap();
        let scrape = Metrics::new().render(&Snapshot::default());
        done.send(()).unwrap();
        thread.join().unwrap();
        let value = |metric: &str| -> f64 {
            let prefix = format!("{metric}{{thread=\"metrics-spin\"}} ");
            scrape
                .lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no {prefix} in\n{scrape}"))
                .parse()
                .unwrap()
        };
        // 60 ms of spinning is on a CPU or waiting for one (other tests run beside it).
        let (cpu, wait) = (
            value("concierge_thread_cpu_seconds_total"),
            value("concierge_thread_wait_seconds_total"),
        );
        assert!(cpu + wait >= 0.055 && cpu > 0.0, "cpu {cpu} wait {wait}");
    }

    /// A thread held by a blocking call shows as lag: the watcher's next wake-up is late by
    /// about as long. (Read back as `load` reads it.)
    #[tokio::test(flavor = "current_thread")]
    async fn a_held_runtime_shows_as_lag() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let watcher = tokio::spawn(watch_runtime_lag(metrics.clone()));
        // Let the watcher start its first sleep, then hold the runtime's only thread.
        tokio::task::yield_now().await;
        std::thread::sleep(LAG_TICK * 4);
        tokio::time::sleep(LAG_TICK * 3).await;
        watcher.abort();
        let scrape = metrics.render(&Snapshot::default());
        let lag = crate::load::Latencies::parse(&scrape, crate::load::LAG_METRIC)
            .unwrap_or_else(|| panic!("no runtime lag in\n{scrape}"));
        assert!(lag.count() >= 2, "{lag:?}");
        // Held 40 ms from the start of a 10 ms sleep: at least 30 ms late, in the 25-50 ms bucket.
        assert!(lag.over(0.025) >= 1, "{lag:?}");
    }
}
