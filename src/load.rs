//! `concierge load`: drives the SMS webhook over loopback the way Twilio would, and measures it.
//!
//! Each request is a correctly signed `POST /sms` with a new `MessageSid`, from one of many
//! numbers, with a realistic mix of messages (what's next, searches, FAQs, where-is, saving,
//! hand-offs, noise). Connections send back to back (closed loop), or requests arrive at a fixed
//! total rate and each takes the first idle connection (open loop, latency measured from when each
//! request was due, so a stall is not hidden; see [`drive`]). Latencies go
//! into an HDR histogram. In the same run it measures a baseline (a trivial axum handler answering
//! a fixed TwiML string, in its own process like the service) and the disk's flush latency, since
//! every acknowledged message is flushed before the answer. A closed loop against the baseline
//! runs at several connection counts in turn ([`SWEEP`]): each server's throughput is its
//! capacity, its best run with p99 within 10 ms and no errors ([`capacity`]), and the ratio is
//! taken at concierge's, in the rounds that measured both.
//!
//! Without `--url`, it starts `concierge serve` itself, as a child process on a free loopback port
//! with a fresh data dir, signature checking on, and stops it after. The data dir and the flush
//! probe's file are in a [`Scratch`] folder under `--work-dir` (default the system's temporary
//! folder), so a run measures the disk it is told to: every acknowledgement waits for its sync.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

/// The account and auth token the load tool signs with when it starts the service itself.
const ACCOUNT: &str = "AC10ad000000000000000000000000000a";
const AUTH_TOKEN: &str = "load-test-auth-token";

/// How many of a series of runs had their p99 within [`SLOW`], and each run's p99, e.g.
/// `runs with p99 within 10 ms: 2 of 3 (p99 2.31, 14.02, 3.10 ms)`.
pub fn describe_runs(p99s: &[f64]) -> String {
    let slow_ms = SLOW.as_secs_f64() * 1000.0;
    let within = p99s.iter().filter(|&&p99| p99 <= slow_ms).count();
    let each: Vec<String> = p99s.iter().map(|p99| format!("{p99:.2}")).collect();
    format!(
        "runs with p99 within {} ms: {within} of {} (p99 {} ms)",
        SLOW.as_millis(),
        p99s.len(),
        each.join(", ")
    )
}

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct Plan {
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Requests per second in all, or `None` for as fast as the connections go.
    pub rate: Option<u64>,
    /// Distinct sender numbers.
    pub numbers: u64,
}

/// Where requests go and how they are signed.
#[derive(Clone, Debug)]
pub struct Target {
    /// The webhook, e.g. `http://127.0.0.1:8080/sms`.
    pub url: String,
    /// The URL Twilio would sign (public_url + `/sms`) and the auth token; `None`: unsigned.
    pub signing: Option<(String, String)>,
    pub account: String,
    /// The service's metrics (`…/metrics`), read for its handler's and store writer's times
    /// during the run ([`ServiceTimes`]); `None`: not reported.
    pub metrics: Option<String>,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    pub ok: u64,
    pub errors: u64,
    /// The first few error descriptions.
    pub error_samples: Vec<String>,
    pub elapsed: Duration,
    /// Microseconds.
    pub latency: Histogram<u64>,
    /// Microseconds from when each answered request was due to when it was sent: in an open
    /// loop, the part of its latency spent waiting for an idle connection (every one busy) or
    /// for the load generator itself; in a closed loop, nothing.
    pub waited: Histogram<u64>,
    /// In an open loop, the most the arrival thread woke up late, in microseconds: it sleeps
    /// about 1 ms at a time on a machine with CPU to spare, so a long oversleep is a spell in
    /// which a plain thread got no CPU (the machine stalled, not only the service).
    pub overslept: u64,
    /// The answered requests by the second of the run they were due in (rounds one after the
    /// other), to tell a slow spell from a slow run.
    pub timeline: Vec<Second>,
}

/// One second of a run: how many requests due in it were answered, how many of them slower
/// than [`SLOW`], and the slowest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Second {
    pub answered: u64,
    pub slow: u64,
    /// Microseconds.
    pub max: u64,
}

impl Second {
    fn add(&mut self, other: Second) {
        self.answered += other.answered;
        self.slow += other.slow;
        self.max = self.max.max(other.max);
    }
}

/// The latency the target's p99 must stay under (10 ms), that [`Second::slow`] counts.
pub const SLOW: Duration = Duration::from_millis(10);

/// The connection counts a closed loop against the baseline is measured at by default, each
/// server's capacity being its best among them ([`capacity`]). A closed loop with a fixed count
/// measures a server's round trip as much as its capacity (Little's law: 64 connections over
/// 1.2 ms is 53,000 req/s, with a CPU to spare while every request waits for its batch's disk
/// sync), so a ratio of capacities needs each server at the count that fills the machine:
/// TechEmpower's benchmarks report each framework's best over 16 to 512 connections the same
/// way (BENCHMARKS.md, SMS webhook step 69). `load` takes the ratio at the count of concierge's
/// capacity, where both were measured in the same alternating rounds.
pub const SWEEP: [usize; 3] = [64, 128, 256];

/// A server's capacity over runs at several connection counts: the most requests a second it
/// answered in a run with no errors and a p99 within [`SLOW`], and that run's count. `None` if
/// no run qualifies: throughput bought with slow answers or errors is not capacity.
pub fn capacity<'a>(runs: impl IntoIterator<Item = (usize, &'a Report)>) -> Option<(usize, f64)> {
    let slow_ms = SLOW.as_secs_f64() * 1000.0;
    runs.into_iter()
        .filter(|(_, r)| r.errors == 0 && r.ok > 0 && r.quantile_ms(0.99) <= slow_ms)
        .map(|(connections, r)| (connections, r.throughput()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// One connection count of a sweep: concierge's run, and the baseline's in the same alternating
/// rounds (none with `--no-baseline`).
pub struct Level {
    pub connections: usize,
    pub concierge: Report,
    pub baseline: Option<Report>,
}

/// A sweep's last lines: each server's [`capacity`] over its counts, then the ratio at
/// concierge's, against the baseline's run at that count. The ratio compares runs made in the
/// same alternating rounds: the host's speed drifts from one count's rounds to the next (by
/// more than a quarter within one sweep, BENCHMARKS.md step 69), and the baseline, which fills
/// the CPUs at every count, serves as much at one count as at another. `rounds` says how each
/// count was measured ("5 alternating rounds of 2.0 s").
pub fn describe_capacity(levels: &[Level], rounds: &str) -> Vec<String> {
    let counts: Vec<String> = levels.iter().map(|l| l.connections.to_string()).collect();
    let concierge = capacity(levels.iter().map(|l| (l.connections, &l.concierge)));
    let baseline = capacity(
        levels
            .iter()
            .filter_map(|l| Some((l.connections, l.baseline.as_ref()?))),
    );
    let best = |name: &str, best: Option<(usize, f64)>| match best {
        Some((connections, rate)) => format!("{name} {rate:.0} req/s at {connections}"),
        None => format!("{name} none"),
    };
    let with_baseline = levels.iter().any(|l| l.baseline.is_some());
    let mut lines = vec![format!(
        "capacity (the most req/s at any of {} connections, in a run with p99 within {} ms and no errors): {}{}",
        counts.join(", "),
        SLOW.as_millis(),
        best("concierge", concierge),
        if with_baseline {
            format!(", {}", best("baseline", baseline))
        } else {
            String::new()
        },
    )];
    if !with_baseline {
        return lines;
    }
    let at_capacity = concierge.and_then(|(n, ours)| {
        let level = levels.iter().find(|l| l.connections == n)?;
        let (_, theirs) = capacity([(n, level.baseline.as_ref()?)])?;
        Some((n, ours / theirs))
    });
    lines.push(match at_capacity {
        Some((n, ratio)) => format!(
            "ratio at concierge's capacity ({n} connections): concierge / baseline throughput = {ratio:.3} (the same {rounds})"
        ),
        None => format!(
            "ratio at concierge's capacity: none (no run of concierge's, or of the baseline's beside it, had p99 within {} ms and no errors)",
            SLOW.as_millis()
        ),
    });
    lines
}

/// Adds `other`'s seconds to `into`'s, second by second.
fn add_seconds(into: &mut Vec<Second>, other: &[Second]) {
    if into.len() < other.len() {
        into.resize(other.len(), Second::default());
    }
    for (a, b) in into.iter_mut().zip(other) {
        a.add(*b);
    }
}

impl Report {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Adds another run's requests to this one (runs measured in rounds).
    pub fn merge(&mut self, other: Report) -> Result<()> {
        self.ok += other.ok;
        self.errors += other.errors;
        for sample in other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(sample);
            }
        }
        self.elapsed += other.elapsed;
        self.latency.add(&other.latency)?;
        self.waited.add(&other.waited)?;
        self.overslept = self.overslept.max(other.overslept);
        self.timeline.extend(other.timeline);
        Ok(())
    }

    /// A line per second of the run: answered, the share slower than [`SLOW`], the slowest.
    pub fn describe_timeline(&self) -> String {
        self.timeline
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "  second {:>3}: answered {:>7}  over {} ms {:>6.2} %  max {:>8.2} ms",
                    i + 1,
                    s.answered,
                    SLOW.as_millis(),
                    100.0 * s.slow as f64 / s.answered.max(1) as f64,
                    s.max as f64 / 1000.0,
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The open loop's wait for a connection, for telling a slow service from a queue of requests
    /// that found every connection busy, and the arrival thread's worst oversleep, for telling
    /// either from a machine that stalled.
    pub fn describe_wait(&self) -> String {
        let ms = |q: f64| self.waited.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "           of which waiting to be sent (every connection busy, or the load generator late): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms; the arrival thread overslept at most {:.2} ms",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            self.waited.max() as f64 / 1000.0,
            self.overslept as f64 / 1000.0,
        )
    }

    pub fn describe(&self, name: &str) -> String {
        format!(
            "{name:<10} {:>9.0} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  ok {}  errors {}",
            self.throughput(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.9),
            self.quantile_ms(0.99),
            self.latency.max() as f64 / 1000.0,
            self.ok,
            self.errors,
        )
    }
}

/// The message mix: (weight, messages).
const MIX: &[(u32, &[&str])] = &[
    (
        30,
        &[
            "what's next",
            "whats next?",
            "next talks",
            "what's on now",
            "what's on after lunch",
        ],
    ),
    (
        20,
        &[
            "talks about video",
            "anything on security?",
            "is there a talk about webrtc",
            "sessions on serverless tomorrow",
            "data and ai talks",
        ],
    ),
    (
        15,
        &[
            "what's the wifi password",
            "where can I get lunch",
            "are the talks recorded?",
            "code of conduct",
        ],
    ),
    (
        10,
        &[
            "where is the keynote",
            "where is the bay room",
            "who is speaking in main stage",
        ],
    ),
    (5, &["2", "save that one", "my agenda"]),
    (3, &["can a video expert help me", "talk to an expert"]),
    (
        17,
        &[
            "lol",
            "asdf qwerty",
            "ok thanks",
            "hi",
            "purple elephant banana",
            "k",
        ],
    ),
];

fn pick(n: u64) -> &'static str {
    let total: u32 = MIX.iter().map(|(w, _)| w).sum();
    let mut x = splitmix(n);
    let mut slot = (x % u64::from(total)) as u32;
    x = splitmix(x);
    for (w, messages) in MIX {
        if slot < *w {
            return messages[(x % messages.len() as u64) as usize];
        }
        slot -= w;
    }
    MIX[0].1[0]
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Who sends each request of a run: each of the numbers in turn, in an order scattered by the
/// run (a run of rounds would repeat its senders otherwise), so every number sends once before
/// any sends again. Drawn at random instead, a few of 100,000 numbers sent over 16 messages in a
/// run at 40,000 requests a second, and were rate limited as a real sender sending that fast
/// would be (429s, counted as errors).
#[derive(Clone, Copy)]
struct Senders {
    numbers: u64,
    offset: u64,
    /// Coprime to `numbers`: multiplying by it permutes `0..numbers`.
    stride: u64,
}

impl Senders {
    fn new(numbers: u64, run: u64) -> Senders {
        let numbers = numbers.max(1);
        let mut stride = 0x9e37_79b9_u64 % numbers;
        while gcd(stride, numbers) != 1 {
            stride += 1;
        }
        Senders {
            numbers,
            offset: splitmix(run) % numbers,
            stride,
        }
    }

    /// Request `n`'s sender, in `0..numbers`.
    fn nth(&self, n: u64) -> u64 {
        let i = (n % self.numbers + self.offset) % self.numbers;
        (u128::from(i) * u128::from(self.stride) % u128::from(self.numbers)) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Where signed requests go and how they are signed: the URL Twilio would sign, and the key.
type Signing = Option<(String, crate::sms::signature::Signer)>;

/// Appends `x` as `width` decimal digits (zero-padded; the lowest `width` digits if longer).
fn push_decimal(out: &mut String, mut x: u64, width: usize) {
    let mut digits = [b'0'; 20];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
    out.extend(digits[..width].iter().map(|&d| char::from(d)));
}

/// Appends `x` as 16 lowercase hex digits.
fn push_hex(out: &mut String, x: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend(
        (0..16)
            .rev()
            .map(|i| char::from(HEX[(x >> (4 * i)) as usize & 15])),
    );
}

/// The form and signature of request `n`.
fn request(
    target: &Target,
    signing: &Signing,
    senders: &Senders,
    run: u64,
    n: u64,
) -> (String, Option<String>) {
    // Both strings are written by hand: `format!` was a tenth of the load generator's
    // instructions.
    let mut number = String::with_capacity(12);
    number.push_str("+1555");
    push_decimal(&mut number, senders.nth(n), 7);
    let mut sid = String::with_capacity(34);
    sid.push_str("SM");
    push_hex(&mut sid, run);
    push_hex(&mut sid, n);
    // Every parameter Twilio sends with an incoming SMS, in the order of a captured request
    // (`reference/twilio-and-taskrouter.md`, 1.1), the sender's geography unknown as it often is.
    let params: [(&str, &str); 19] = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", &sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", ""),
        ("SmsSid", &sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", pick(n)),
        ("FromCountry", "US"),
        ("To", "+15550000000"),
        ("ToZip", "94103"),
        ("NumSegments", "1"),
        ("MessageSid", &sid),
        ("AccountSid", &target.account),
        ("From", &number),
        ("ApiVersion", "2010-04-01"),
    ];
    // Room for the whole body, so it is not grown piece by piece.
    let body = url::form_urlencoded::Serializer::new(String::with_capacity(640))
        .extend_pairs(params.iter())
        .finish();
    let signature = signing
        .as_ref()
        .map(|(url, signer)| signer.sign(url, &params));
    (body, signature)
}

/// Runs the plan against the target: a warm-up (not recorded), then the measured part.
///
/// Closed loop: each connection sends its next request as soon as it has the answer to the last.
/// Open loop: requests arrive at the plan's rate, evenly spaced, on a schedule ([`Schedule`]),
/// and each goes out on the first idle connection, like webhooks that
/// do not wait for one another: one slow answer holds up only its own connection, and a request
/// waits for a connection only when every one is busy. A request's latency runs from its
/// arrival, so time spent waiting for a connection, or for a late load generator, counts against
/// the service (no coordinated omission).
pub async fn drive(target: &Target, plan: &Plan) -> Result<Report> {
    let endpoint = Arc::new(Endpoint::parse(&target.url)?);
    let run = splitmix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    let started = Instant::now();
    let measure_from = started + plan.warmup;
    let end = measure_from + plan.duration;
    let (source, schedule) = match plan.rate {
        Some(rate) => {
            let schedule = Schedule::start(started, end, rate, plan.connections, measure_from)?;
            (Source::Scheduled(schedule.clone()), Some(schedule))
        }
        None => (Source::BackToBack(Arc::new(AtomicU64::new(0))), None),
    };
    let senders = Senders::new(plan.numbers, run);
    let signing: Arc<Signing> = Arc::new(
        target
            .signing
            .as_ref()
            .map(|(url, token)| (url.clone(), crate::sms::signature::Signer::new(token))),
    );
    let mut tasks = Vec::new();
    for _ in 0..plan.connections {
        let (endpoint, target, signing, source) = (
            endpoint.clone(),
            target.clone(),
            signing.clone(),
            source.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(measure_from);
            let mut connection = None;
            while let Some((n, sent_at)) = source.next(end).await {
                let sending = Instant::now();
                let (body, signature) = request(&target, &signing, &senders, run, n);
                let outcome = tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    endpoint.post(&mut connection, body, signature),
                )
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
                if outcome.is_err() {
                    // Whatever state the connection is in, the next request gets a new one.
                    connection = None;
                }
                if sent_at >= measure_from {
                    tally.record(outcome, sent_at, sending);
                }
            }
            tally
        }));
    }
    let mut report = Report {
        ok: 0,
        errors: 0,
        error_samples: Vec::new(),
        elapsed: plan.duration,
        latency: histogram(),
        waited: histogram(),
        overslept: 0,
        timeline: Vec::new(),
    };
    for t in tasks {
        let tally = t.await?;
        report.latency.add(&tally.latency)?;
        report.waited.add(&tally.waited)?;
        add_seconds(&mut report.timeline, &tally.seconds);
        report.ok += tally.ok;
        report.errors += tally.errors;
        for s in tally.samples {
            if report.error_samples.len() < 5 {
                report.error_samples.push(s);
            }
        }
    }
    // Every connection has had its last permit, so the arrival thread is done.
    if let Some(schedule) = schedule {
        report.overslept = schedule.overslept.load(Ordering::Relaxed);
    }
    Ok(report)
}

/// Where a connection's next request comes from: its number and the instant its latency counts
/// from.
#[derive(Clone)]
enum Source {
    /// Closed loop: numbers from a shared counter, each request timed from when it is sent.
    BackToBack(Arc<AtomicU64>),
    /// Open loop: the arrival schedule, shared by every connection.
    Scheduled(Arc<Schedule>),
}

impl Source {
    /// The next request, or `None` once the run is over (closed loop: `end` has passed; open
    /// loop: every arrival due before `end` has been taken).
    async fn next(&self, end: Instant) -> Option<(u64, Instant)> {
        match self {
            Source::BackToBack(counter) => {
                let now = Instant::now();
                (now < end).then(|| (counter.fetch_add(1, Ordering::Relaxed), now))
            }
            Source::Scheduled(schedule) => schedule.next().await,
        }
    }
}

/// The open loop's schedule: request `n` is due at `started + n / rate`, for every `n` due
/// before the end. A request due is released as a permit of a semaphore; a connection takes a
/// permit, then the next number. So each arrival goes to exactly one idle connection, the first
/// to have asked.
///
/// Requests are released by whoever looks: each connection, when it asks for its next request,
/// releases every one due by then, and a thread of its own ([`Schedule::start`]) does the same
/// when it wakes. Under load connections ask thousands of times a second, so requests go out
/// when due without a timer; the thread only stands in when no connection asks, and sleeps at
/// least [`ARRIVAL_QUANTUM`].
struct Schedule {
    permits: tokio::sync::Semaphore,
    /// How many requests have been released (as permits).
    released: AtomicU64,
    taken: AtomicU64,
    started: Instant,
    rate: u64,
    /// How many requests are due before the end.
    total: u64,
    /// The arrival thread's longest oversleep after the warm-up, in microseconds
    /// ([`Report::overslept`]).
    overslept: AtomicU64,
}

impl Schedule {
    /// Starts releasing requests from `started` until `end`; after the last one, one permit per
    /// connection more, which tells each that the run is over. Oversleeps count from `measured`.
    fn start(
        started: Instant,
        end: Instant,
        rate: u64,
        connections: usize,
        measured: Instant,
    ) -> Result<Arc<Schedule>> {
        let schedule = Arc::new(Schedule::new(started, end, rate));
        let releasing = schedule.clone();
        std::thread::Builder::new()
            .name("load-arrivals".into())
            .spawn(move || releasing.release_until_done(connections, measured))
            .context("starting the arrival schedule's thread")?;
        Ok(schedule)
    }

    fn new(started: Instant, end: Instant, rate: u64) -> Schedule {
        let rate = rate.max(1);
        let span = end.saturating_duration_since(started).as_nanos();
        Schedule {
            permits: tokio::sync::Semaphore::new(0),
            released: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            started,
            rate,
            total: (span * u128::from(rate)).div_ceil(1_000_000_000) as u64,
            overslept: AtomicU64::new(0),
        }
    }

    fn due(&self, n: u64) -> Instant {
        self.started
            + Duration::from_nanos((u128::from(n) * 1_000_000_000 / u128::from(self.rate)) as u64)
    }

    /// Releases every request due by `now` that is not released yet; returns how many are
    /// released in all. Callers race: each request is released by exactly one of them.
    fn release_due(&self, now: Instant) -> u64 {
        let due_by_now = (now.saturating_duration_since(self.started).as_nanos()
            * u128::from(self.rate)
            / 1_000_000_000) as u64
            + 1;
        let due_by_now = due_by_now.min(self.total);
        let before = self.released.fetch_max(due_by_now, Ordering::AcqRel);
        if due_by_now > before {
            self.permits.add_permits((due_by_now - before) as usize);
        }
        due_by_now.max(before)
    }

    fn release_until_done(&self, connections: usize, measured: Instant) {
        loop {
            let now = Instant::now();
            let released = self.release_due(now);
            if released >= self.total {
                break;
            }
            let sleep = self
                .due(released)
                .saturating_duration_since(now)
                .max(ARRIVAL_QUANTUM);
            std::thread::sleep(sleep);
            if now >= measured {
                let overslept = now.elapsed().saturating_sub(sleep).as_micros() as u64;
                self.overslept.fetch_max(overslept, Ordering::Relaxed);
            }
        }
        self.permits.add_permits(connections);
    }

    /// The next request due, once it is; `None` when every one has been taken.
    async fn next(&self) -> Option<(u64, Instant)> {
        self.release_due(Instant::now());
        self.permits.acquire().await.ok()?.forget();
        let n = self.taken.fetch_add(1, Ordering::Relaxed);
        (n < self.total).then(|| (n, self.due(n)))
    }
}

/// The least the arrival thread sleeps. Wake-ups are dear on a shared 2-CPU VM, for the service
/// as much as for the load generator: at 20,000 requests a second, a 0.1 ms quantum with only
/// the thread releasing (10,000 wake-ups a second) cost the load generator 22-25 µs a request
/// against 15-17 µs now, and the open loop's p99 was 7.3-54.6 ms against 3.8-4.2 ms (four
/// interleaved runs each, BENCHMARKS.md step 24). When no connection asks, a request may go out
/// up to this late; its latency counts from when it was due all the same.
const ARRIVAL_QUANTUM: Duration = Duration::from_millis(1);

/// An empty histogram of microseconds, up to a minute.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid bounds")
}

/// One connection's results.
struct Tally {
    latency: Histogram<u64>,
    /// See [`Report::waited`].
    waited: Histogram<u64>,
    /// See [`Report::timeline`]; seconds from `from`.
    seconds: Vec<Second>,
    from: Instant,
    ok: u64,
    errors: u64,
    /// The first few errors.
    samples: Vec<String>,
}

impl Tally {
    fn new(from: Instant) -> Tally {
        Tally {
            latency: histogram(),
            waited: histogram(),
            seconds: Vec::new(),
            from,
            ok: 0,
            errors: 0,
            samples: Vec::new(),
        }
    }

    /// A request due at `due`, sent at `sent`, answered (or failed) now.
    fn record(&mut self, outcome: std::result::Result<(), String>, due: Instant, sent: Instant) {
        let micros = |d: Duration| (d.as_micros() as u64).max(1);
        match outcome {
            Ok(()) => {
                self.ok += 1;
                let latency = due.elapsed();
                let _ = self.latency.record(micros(latency));
                let at = due.saturating_duration_since(self.from).as_secs() as usize;
                if self.seconds.len() <= at {
                    self.seconds.resize(at + 1, Second::default());
                }
                self.seconds[at].add(Second {
                    answered: 1,
                    slow: u64::from(latency > SLOW),
                    max: micros(latency),
                });
                let _ = self
                    .waited
                    .record(micros(sent.saturating_duration_since(due)));
            }
            Err(e) => {
                self.errors += 1;
                if self.samples.len() < 3 {
                    self.samples.push(e);
                }
            }
        }
    }
}

/// How long a request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the requests go, parsed once, and the HTTP/1.1 spoken to it. Each connection of a run is
/// one keep-alive connection that its task writes requests to and reads answers from itself: the
/// load generator shares the machine with the service, so every microsecond it spends a request
/// is one the service does not get. A general-purpose client took ~20 µs a request; hyper's
/// connection API, whose sender hands each request to a connection task and the answer back
/// (two task wake-ups a request, often across the runtime's threads), 20-22 µs in the open
/// loop, against 15-16 µs now (BENCHMARKS.md, SMS webhook step 64).
struct Endpoint {
    /// `host:port`, to connect to.
    authority: String,
    /// Every request's head up to its varying headers: request line, `host`, `content-type`.
    head: String,
}

/// A connection unused this long is replaced before the next request rather than reused: the
/// service closes connections idle for its header-read timeout (5 s), and a request written
/// into one it is closing would fail.
const IDLE_REUSE: Duration = Duration::from_secs(2);

/// A connection unused this long is checked before it is reused (one non-blocking read): a
/// server with a shorter idle timeout may have closed it meanwhile. Busier connections, nearly
/// all of them under load, skip the system call.
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// The most bytes of a response head the load generator reads before giving up on it.
const MAX_HEAD: usize = 16 * 1024;

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint> {
        let parsed = url::Url::parse(url).with_context(|| format!("the target URL {url}"))?;
        if parsed.scheme() != "http" {
            bail!("the load generator speaks plain HTTP (loopback only), not {url}");
        }
        let host = parsed
            .host_str()
            .with_context(|| format!("no host in {url}"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let mut path = parsed.path().to_string();
        if let Some(query) = parsed.query() {
            path = format!("{path}?{query}");
        }
        let authority = format!("{host}:{port}");
        Ok(Endpoint {
            head: format!(
                "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/x-www-form-urlencoded\r\n"
            ),
            authority,
        })
    }

    async fn connect(&self) -> std::result::Result<Connection, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(4096),
            used: Instant::now(),
        })
    }

    /// Posts a form on `connection` (connecting first if there is none, or if it has been idle
    /// too long) and reads the answer. A connection the answer closes, or that an error leaves
    /// in an unknown state, is dropped.
    async fn post(
        &self,
        connection: &mut Option<Connection>,
        body: String,
        signature: Option<String>,
    ) -> std::result::Result<(), String> {
        if connection.as_ref().is_some_and(|c| !c.reusable()) {
            *connection = None;
        }
        let open = match connection {
            Some(open) => open,
            None => connection.insert(self.connect().await?),
        };
        let answer = open.exchange(&self.head, &body, signature.as_deref()).await;
        if !matches!(answer, Ok(Answer { close: false, .. })) {
            *connection = None;
        }
        let status = answer?.status;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

/// A keep-alive HTTP/1.1 connection of the load generator.
struct Connection {
    stream: tokio::net::TcpStream,
    /// The request being written, then the answer being read (one at a time: no pipelining).
    buffer: Vec<u8>,
    /// When its last answer was read (or it was opened).
    used: Instant,
}

/// What the load generator needs of a response.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    /// The server closes the connection after it (`connection: close`).
    close: bool,
}

impl Connection {
    /// Whether the next request may go on this connection: not idle too long, and, if idle a
    /// while, not closed by the server meanwhile (nothing can be waiting to be read between
    /// answers but the end of the stream, or bytes nobody asked for).
    fn reusable(&self) -> bool {
        let idle = self.used.elapsed();
        if idle > IDLE_REUSE {
            return false;
        }
        if idle <= IDLE_CHECK {
            return true;
        }
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Writes one request (`head`, its signature and length, `body`) and reads its answer whole.
    async fn exchange(
        &mut self,
        head: &str,
        body: &str,
        signature: Option<&str>,
    ) -> std::result::Result<Answer, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        self.buffer.clear();
        self.buffer.extend_from_slice(head.as_bytes());
        if let Some(signature) = signature {
            self.buffer.extend_from_slice(b"x-twilio-signature: ");
            self.buffer.extend_from_slice(signature.as_bytes());
            self.buffer.extend_from_slice(b"\r\n");
        }
        self.buffer.extend_from_slice(b"content-length: ");
        push_length(&mut self.buffer, body.len());
        self.buffer.extend_from_slice(b"\r\n\r\n");
        self.buffer.extend_from_slice(body.as_bytes());
        self.stream
            .write_all(&self.buffer)
            .await
            .map_err(|e| format!("write: {e}"))?;

        self.buffer.clear();
        loop {
            if self.buffer.capacity() - self.buffer.len() < 1024 {
                self.buffer.reserve(4096);
            }
            let read = self
                .stream
                .read_buf(&mut self.buffer)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if read == 0 {
                return Err(format!(
                    "the connection closed after {} bytes of the answer",
                    self.buffer.len()
                ));
            }
            match parse_answer(&self.buffer)? {
                Some((answer, length)) if self.buffer.len() >= length => {
                    if self.buffer.len() > length {
                        return Err("bytes after the answer (nothing was asked for)".into());
                    }
                    self.used = Instant::now();
                    return Ok(answer);
                }
                _ if self.buffer.len() > MAX_HEAD + (1 << 20) => {
                    return Err("an answer over 1 MiB".into());
                }
                _ => {}
            }
        }
    }
}

/// Appends `n` in decimal.
fn push_length(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Reads a response's head from the start of `bytes`: the answer and the response's whole length
/// (head and body), or `None` while the head is incomplete. The body's length must be given
/// (`content-length`): the servers this drives send no other kind of answer, and anything else is
/// an error rather than a guess.
fn parse_answer(bytes: &[u8]) -> std::result::Result<Option<(Answer, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD => {
            return Err(format!("no end to the answer's head in {MAX_HEAD} bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed answer: {e}")),
    };
    let status = response.code.unwrap_or(0);
    if !(200..=599).contains(&status) {
        return Err(format!("an unexpected status {status}"));
    }
    let mut length = None;
    let mut close = response.version == Some(0);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).ok();
            length = Some(
                value
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| format!("a bad content-length {value:?}"))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("a chunked answer (the load generator reads content-length only)".into());
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = header.value.eq_ignore_ascii_case(b"close");
        }
    }
    let length = match length {
        Some(length) => length,
        None if status == 204 || status == 304 => 0,
        None => return Err("an answer without content-length".into()),
    };
    Ok(Some((Answer { status, close }, head + length)))
}

/// A run, and the CPU it cost.
#[derive(Debug)]
pub struct Measured {
    pub report: Report,
    /// The service's CPU time during the measured part (when its process is known).
    pub service_used: Option<Duration>,
    /// This process's CPU time during the measured part: the load generator's cost.
    pub client_used: Option<Duration>,
    /// What the machine's CPUs did meanwhile, all processes together (Linux only).
    pub machine: Option<MachineCpu>,
    /// What the machine's disks wrote meanwhile, all processes together (Linux only).
    pub disks: Option<MachineDisks>,
    /// The service's own times (its `/sms` handler, its store writer's log syncs and batches, its
    /// runtime's lag) in each second of the measured part (when its metrics could be read).
    pub service_times: Option<Vec<ServiceTimes>>,
    /// What the machine's CPUs did in each second of the measured part (Linux only): a second
    /// whose service was neither busy nor late for its timers, with steal, lost its time to the
    /// host (BENCHMARKS.md, SMS webhook step 64).
    pub machine_seconds: Option<Vec<MachineCpu>>,
}

impl Measured {
    /// Microseconds of the service's CPU per answered request.
    pub fn service_cpu(&self) -> Option<f64> {
        self.per_request(self.service_used)
    }

    /// Microseconds of the load generator's CPU per answered request.
    pub fn client_cpu(&self) -> Option<f64> {
        self.per_request(self.client_used)
    }

    fn per_request(&self, used: Option<Duration>) -> Option<f64> {
        Some(used?.as_secs_f64() * 1e6 / self.report.ok.max(1) as f64)
    }

    /// Adds another round of the same target.
    pub fn merge(&mut self, other: Measured) -> Result<()> {
        let add = |a: Option<Duration>, b: Option<Duration>| Some(a? + b?);
        self.service_used = add(self.service_used, other.service_used);
        self.client_used = add(self.client_used, other.client_used);
        self.machine = self.machine.zip(other.machine).map(|(a, b)| a.plus(&b));
        self.disks = self.disks.zip(other.disks).map(|(a, b)| a.plus(&b));
        // Seconds of both, or none if either lacks them.
        fn concat<T>(a: Option<Vec<T>>, b: Option<Vec<T>>) -> Option<Vec<T>> {
            let (mut a, b) = (a?, b?);
            a.extend(b);
            Some(a)
        }
        self.service_times = concat(self.service_times.take(), other.service_times);
        self.machine_seconds = concat(self.machine_seconds.take(), other.machine_seconds);
        self.report.merge(other.report)
    }

    /// The service's own times over the whole measured part, as a line of the report.
    pub fn describe_service_times(&self) -> Option<String> {
        let mut all = ServiceTimes::default();
        for second in self.service_times.as_ref()? {
            all.add(second);
        }
        Some(format!(
            "           the service's metrics: {}",
            all.describe()
        ))
    }

    /// [`Report::describe_timeline`], with each second's machine CPUs and service times when
    /// they are known.
    pub fn describe_timeline(&self) -> String {
        let second = |i: usize| {
            let mut extra = String::new();
            if let Some(cpus) = self.machine_seconds.as_ref().and_then(|s| s.get(i)) {
                extra.push_str(&format!("  | {}", cpus.describe_briefly()));
            }
            if let Some(times) = self.service_times.as_ref().and_then(|s| s.get(i)) {
                extra.push_str(&format!("  | {}", times.describe()));
            }
            extra
        };
        self.report
            .describe_timeline()
            .lines()
            .enumerate()
            .map(|(i, line)| format!("{line}{}", second(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn describe_cpu(&self) -> String {
        let per_request = match (self.service_cpu(), self.client_cpu()) {
            (Some(service), Some(client)) => format!(
                "           CPU per request: service {service:.0} µs, load generator {client:.0} µs"
            ),
            (None, Some(client)) => {
                format!("           CPU per request: load generator {client:.0} µs")
            }
            _ => "           CPU per request: not measurable on this system".into(),
        };
        match &self.machine {
            Some(machine) => format!("{per_request}; {}", machine.describe()),
            None => per_request,
        }
    }

    /// What the machine's disks wrote during the measured part, as a line of the report.
    pub fn describe_disks(&self) -> Option<String> {
        Some(format!(
            "           {}",
            self.disks.as_ref()?.describe(self.report.ok)
        ))
    }
}

/// The machine's CPU time by what it went to, in USER_HZ ticks summed over every CPU, from the
/// first line of `/proc/stat`. Steal is time the hypervisor ran something else while this
/// machine's virtual CPUs had work: a run whose latencies jump with steal at zero was slowed
/// inside the machine (or by a host that does not report stealing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineCpu {
    /// user, nice, system, irq and softirq.
    pub busy: u64,
    pub idle: u64,
    pub iowait: u64,
    pub steal: u64,
}

impl MachineCpu {
    /// The counters so far (`None` where `/proc/stat` is missing or unreadable).
    pub fn now() -> Option<MachineCpu> {
        MachineCpu::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Parses `/proc/stat`'s aggregate `cpu` line (guest time is counted in user already).
    pub fn parse(stat: &str) -> Option<MachineCpu> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (the last ones are absent on old kernels).
        Some(MachineCpu {
            busy: field(0) + field(1) + field(2) + field(5) + field(6),
            idle: field(3),
            iowait: field(4),
            steal: field(7),
        })
    }

    /// What the counters moved by since `before` (`None` if any went backwards).
    pub fn since(&self, before: &MachineCpu) -> Option<MachineCpu> {
        Some(MachineCpu {
            busy: self.busy.checked_sub(before.busy)?,
            idle: self.idle.checked_sub(before.idle)?,
            iowait: self.iowait.checked_sub(before.iowait)?,
            steal: self.steal.checked_sub(before.steal)?,
        })
    }

    fn plus(&self, other: &MachineCpu) -> MachineCpu {
        MachineCpu {
            busy: self.busy + other.busy,
            idle: self.idle + other.idle,
            iowait: self.iowait + other.iowait,
            steal: self.steal + other.steal,
        }
    }

    /// Shares of the time, e.g. `the machine's CPUs: busy 61 %, idle 38 %, IO wait 1 %, steal 0.0 %`.
    pub fn describe(&self) -> String {
        format!(
            "the machine's CPUs: busy {:.0} %, idle {:.0} %, IO wait {:.0} %, steal {:.1} %",
            self.share(self.busy),
            self.share(self.idle),
            self.share(self.iowait),
            self.share(self.steal)
        )
    }

    /// The busy and stolen shares, for a line of the timeline: `CPUs busy 61 %, steal 0.0 %`.
    pub fn describe_briefly(&self) -> String {
        format!(
            "CPUs busy {:.0} %, steal {:.1} %",
            self.share(self.busy),
            self.share(self.steal)
        )
    }

    /// `ticks` as a percentage of all the time counted.
    fn share(&self, ticks: u64) -> f64 {
        ticks as f64 * 100.0 / (self.busy + self.idle + self.iowait + self.steal).max(1) as f64
    }
}

/// What the machine's disks were asked to do, summed over its disks (not partitions, and not
/// virtual devices such as loop, zram or device-mapper ones, whose writes land on a disk too),
/// from `/proc/diskstats`. Concierge syncs every acknowledged message, so each one costs bytes and
/// a flush on the device: what a request costs the disk, beside what it costs the CPUs, and a run
/// whose disks wrote far more than usual (another process, a burst) is told apart
/// (BENCHMARKS.md, SMS webhook step 62).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineDisks {
    pub bytes_written: u64,
    pub writes: u64,
    pub flushes: u64,
}

impl MachineDisks {
    /// The counters so far (`None` where `/proc/diskstats` is missing or unreadable).
    pub fn now() -> Option<MachineDisks> {
        let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
        Some(MachineDisks::parse(&stats, |name| {
            Path::new("/sys/block").join(name).join("device").exists()
        }))
    }

    /// Sums the lines of `/proc/diskstats` whose device `is_disk` says is a disk.
    pub fn parse(stats: &str, is_disk: impl Fn(&str) -> bool) -> MachineDisks {
        let mut sum = MachineDisks::default();
        for line in stats.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(name) = fields.get(2) else { continue };
            if !is_disk(name) {
                continue;
            }
            let field = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            // After major, minor and name: writes are the 5th field, sectors written (of 512
            // bytes whatever the device's) the 7th, flushes the 15th (kernels from 5.5).
            sum.writes += field(7);
            sum.bytes_written += field(9) * 512;
            sum.flushes += field(18);
        }
        sum
    }

    /// What the counters moved by since `before` (`None` if any went backwards).
    pub fn since(&self, before: &MachineDisks) -> Option<MachineDisks> {
        Some(MachineDisks {
            bytes_written: self.bytes_written.checked_sub(before.bytes_written)?,
            writes: self.writes.checked_sub(before.writes)?,
            flushes: self.flushes.checked_sub(before.flushes)?,
        })
    }

    fn plus(&self, other: &MachineDisks) -> MachineDisks {
        MachineDisks {
            bytes_written: self.bytes_written + other.bytes_written,
            writes: self.writes + other.writes,
            flushes: self.flushes + other.flushes,
        }
    }

    /// e.g. `the machine's disks: written 333.2 MB, 2083 bytes a request; 29827 writes, 12734 flushes`.
    pub fn describe(&self, requests: u64) -> String {
        format!(
            "the machine's disks: written {:.1} MB, {:.0} bytes a request; {} writes, {} flushes",
            self.bytes_written as f64 / 1e6,
            self.bytes_written as f64 / requests.max(1) as f64,
            self.writes,
            self.flushes
        )
    }
}

/// [`drive`], and the CPU the service (`pid`) and this process used during its measured part, and
/// the service's own times second by second (read from its metrics, when the target has them).
pub async fn drive_measured(target: &Target, plan: &Plan, pid: Option<u32>) -> Result<Measured> {
    let warmup = plan.warmup;
    let before = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        Counters::now(pid)
    });
    // Each second: the machine's CPUs, and the service's metrics when it has them.
    let seconds = {
        let metrics = target.metrics.clone();
        let (warmup, seconds) = (plan.warmup, plan.duration.as_secs().max(1));
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            let client = reqwest::Client::new();
            let mut samples = Vec::new();
            for _ in 0..=seconds {
                ticks.tick().await;
                let at = Instant::now();
                let cpus = MachineCpu::now();
                let times = match &metrics {
                    Some(url) => scrape_service_times(&client, url).await,
                    None => None,
                };
                samples.push((at, cpus, times));
            }
            let cpus: Option<Vec<MachineCpu>> = samples
                .windows(2)
                .map(|w| w[1].1?.since(&w[0].1?))
                .collect();
            let times: Option<Vec<ServiceTimes>> = samples
                .windows(2)
                .map(|w| Some(w[1].2.as_ref()?.since(w[0].2.as_ref()?, w[1].0 - w[0].0)))
                .collect();
            (cpus, times)
        })
    };
    let report = drive(target, plan).await?;
    let after = Counters::now(pid);
    let before = before.await?;
    let used = |before: Option<Duration>, after: Option<Duration>| after?.checked_sub(before?);
    let (machine_seconds, service_times) = seconds.await?;
    Ok(Measured {
        service_used: used(before.service, after.service),
        client_used: used(before.client, after.client),
        machine: after
            .cpus
            .zip(before.cpus)
            .and_then(|(after, before)| after.since(&before)),
        disks: after
            .disks
            .zip(before.disks)
            .and_then(|(after, before)| after.since(&before)),
        machine_seconds,
        service_times,
        report,
    })
}

/// What a run's cost is read from, at one moment: the service's (`pid`) and this process's CPU
/// time, the machine's CPUs and its disks.
struct Counters {
    service: Option<Duration>,
    client: Option<Duration>,
    cpus: Option<MachineCpu>,
    disks: Option<MachineDisks>,
}

impl Counters {
    fn now(pid: Option<u32>) -> Counters {
        Counters {
            service: pid.and_then(cpu_time),
            client: cpu_time(0),
            cpus: MachineCpu::now(),
            disks: MachineDisks::now(),
        }
    }
}

/// The histograms [`ServiceTimes`] are read from, and their labels but `le`.
const HANDLER_METRIC: (&str, &str) = ("concierge_http_request_duration_seconds", ",route=\"/sms\"");
const LOG_SYNC_METRIC: (&str, &str) = ("concierge_store_log_sync_seconds", "");
const BATCH_METRIC: (&str, &str) = ("concierge_store_batch_seconds", "");
pub(crate) const LAG_METRIC: (&str, &str) = ("concierge_runtime_lag_seconds", "");

/// What the service's metrics say of a stretch of a run: how long its `/sms` handler took
/// (from the request read to the response head), its store writer's log syncs and batches, and
/// how late its request runtime woke for a timer.
/// A second whose requests were slow at the load generator but not in the handler lost its time
/// before the handler (the request thread busy or not running); one with a slow log sync lost it
/// to the disk; one with a slow batch and no slow sync, to the writer's other steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceTimes {
    pub handler: Latencies,
    pub log_syncs: Latencies,
    pub batches: Latencies,
    /// How late its request runtime woke for a timer (sampled every 10 ms): a lapse here and
    /// none in the handler is a request thread that was held (empty from a service without it).
    pub lag: Latencies,
    /// Each runtime's busy time and parks (empty from a service without them): a connection
    /// thread busy nearly all the time is saturated, even when its timers still fire on time.
    pub runtimes: Vec<RuntimeUse>,
    /// Each of its threads' time on a CPU and waiting for one (empty from a service without
    /// them): the store writer waiting is every acknowledgement waiting.
    pub threads: Vec<ThreadUse>,
    /// How long the stretch was (zero for a single scrape).
    pub span: Duration,
}

/// One of the service's runtimes over a stretch of a run, from
/// `concierge_runtime_busy_seconds_total` and `concierge_runtime_parks_total`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeUse {
    pub runtime: String,
    /// Seconds its threads spent running tasks.
    pub busy: f64,
    /// Times its threads went to sleep for want of work.
    pub parks: u64,
}

impl RuntimeUse {
    /// Every runtime in a scrape, in the order the scrape lists them.
    fn parse(scrape: &str) -> Vec<RuntimeUse> {
        let metrics = (
            "concierge_runtime_busy_seconds_total",
            "concierge_runtime_parks_total",
        );
        paired_series(scrape, "runtime", metrics)
            .into_iter()
            .map(|(runtime, busy, parks)| RuntimeUse {
                runtime: runtime.to_string(),
                busy,
                parks: parks.and_then(|p| p.parse().ok()).unwrap_or(0),
            })
            .collect()
    }
}

impl PerName for RuntimeUse {
    fn name(&self) -> &str {
        &self.runtime
    }

    fn since(&self, before: Option<&RuntimeUse>) -> RuntimeUse {
        RuntimeUse {
            runtime: self.runtime.clone(),
            busy: (self.busy - before.map_or(0.0, |r| r.busy)).max(0.0),
            parks: self.parks.saturating_sub(before.map_or(0, |r| r.parks)),
        }
    }

    fn add(&mut self, other: &RuntimeUse) {
        self.busy += other.busy;
        self.parks += other.parks;
    }
}

/// The series of two counters with one label, `(first, second)`, by label value in the order the
/// scrape lists the first: the value, the first's number, and the second's text if it has one
/// for that value. A first whose number does not parse is left out.
fn paired_series<'a>(
    scrape: &'a str,
    label: &str,
    (first, second): (&str, &str),
) -> Vec<(&'a str, f64, Option<&'a str>)> {
    let mut series: Vec<(&str, f64, Option<&str>)> = Vec::new();
    for line in scrape.lines() {
        if let Some((value, number)) = labelled(line, first, label) {
            if let Ok(number) = number.parse() {
                series.push((value, number, None));
            }
        } else if let Some((value, number)) = labelled(line, second, label)
            && let Some(known) = series.iter_mut().find(|s| s.0 == value)
        {
            known.2 = Some(number);
        }
    }
    series
}

/// `metric{label="value"} number` split into `value` and `number`, for a series with that one
/// label.
fn labelled<'a>(line: &'a str, metric: &str, label: &str) -> Option<(&'a str, &'a str)> {
    let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
    let rest = rest.strip_prefix(label)?.strip_prefix("=\"")?;
    let (value, number) = rest.split_once("\"} ")?;
    Some((value, number.trim()))
}

/// The service's threads of one name over a stretch of a run, from
/// `concierge_thread_cpu_seconds_total` and `concierge_thread_wait_seconds_total`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadUse {
    pub thread: String,
    /// Seconds on a CPU.
    pub cpu: f64,
    /// Seconds ready to run and waiting for a CPU.
    pub wait: f64,
}

impl ThreadUse {
    /// Every thread name in a scrape, in the order the scrape lists them.
    fn parse(scrape: &str) -> Vec<ThreadUse> {
        let metrics = (
            "concierge_thread_cpu_seconds_total",
            "concierge_thread_wait_seconds_total",
        );
        paired_series(scrape, "thread", metrics)
            .into_iter()
            .map(|(thread, cpu, wait)| ThreadUse {
                thread: thread.to_string(),
                cpu,
                wait: wait.and_then(|w| w.parse().ok()).unwrap_or(0.0),
            })
            .collect()
    }
}

impl PerName for ThreadUse {
    fn name(&self) -> &str {
        &self.thread
    }

    fn since(&self, before: Option<&ThreadUse>) -> ThreadUse {
        ThreadUse {
            thread: self.thread.clone(),
            cpu: (self.cpu - before.map_or(0.0, |t| t.cpu)).max(0.0),
            wait: (self.wait - before.map_or(0.0, |t| t.wait)).max(0.0),
        }
    }

    fn add(&mut self, other: &ThreadUse) {
        self.cpu += other.cpu;
        self.wait += other.wait;
    }
}

/// Counters of one runtime or thread name, read from successive scrapes: how much between two,
/// and summed over stretches.
trait PerName: Clone {
    fn name(&self) -> &str;
    /// Since `before` (the same name's earlier reading, if there was one).
    fn since(&self, before: Option<&Self>) -> Self;
    fn add(&mut self, other: &Self);
}

/// Each of `now` since the reading of its name in `earlier`.
fn each_since<T: PerName>(now: &[T], earlier: &[T]) -> Vec<T> {
    now.iter()
        .map(|n| n.since(earlier.iter().find(|e| e.name() == n.name())))
        .collect()
}

/// Adds each of `theirs` to `mine`'s of its name, or keeps it beside them.
fn add_each<T: PerName>(mine: &mut Vec<T>, theirs: &[T]) {
    for t in theirs {
        match mine.iter_mut().find(|m| m.name() == t.name()) {
            Some(m) => m.add(t),
            None => mine.push(t.clone()),
        }
    }
}

impl ServiceTimes {
    pub fn parse(scrape: &str) -> Option<ServiceTimes> {
        Some(ServiceTimes {
            handler: Latencies::parse(scrape, HANDLER_METRIC).unwrap_or_default(),
            log_syncs: Latencies::parse(scrape, LOG_SYNC_METRIC)?,
            batches: Latencies::parse(scrape, BATCH_METRIC)?,
            lag: Latencies::parse(scrape, LAG_METRIC).unwrap_or_default(),
            runtimes: RuntimeUse::parse(scrape),
            threads: ThreadUse::parse(scrape),
            span: Duration::ZERO,
        })
    }

    /// What happened between `earlier` and this scrape, `span` apart.
    fn since(&self, earlier: &ServiceTimes, span: Duration) -> ServiceTimes {
        ServiceTimes {
            handler: self.handler.since(&earlier.handler),
            log_syncs: self.log_syncs.since(&earlier.log_syncs),
            batches: self.batches.since(&earlier.batches),
            lag: self.lag.since(&earlier.lag),
            runtimes: each_since(&self.runtimes, &earlier.runtimes),
            threads: each_since(&self.threads, &earlier.threads),
            span,
        }
    }

    fn add(&mut self, other: &ServiceTimes) {
        self.handler.add(&other.handler);
        self.log_syncs.add(&other.log_syncs);
        self.batches.add(&other.batches);
        self.lag.add(&other.lag);
        add_each(&mut self.runtimes, &other.runtimes);
        add_each(&mut self.threads, &other.threads);
        self.span += other.span;
    }

    pub fn describe(&self) -> String {
        format!(
            "/sms handler {}; log syncs {}; batches {}; runtime lag {}{}{}",
            self.handler.describe(),
            self.log_syncs.describe(),
            self.batches.describe(),
            self.lag.describe(),
            self.describe_runtimes(),
            self.describe_threads()
        )
    }

    /// `; threads on a CPU / waiting for one: conn-0 60 / 26 %, store-writer 25 / 26 %`: each
    /// thread name on a CPU or waiting for one at least 1 % of the stretch; nothing when the
    /// service exports no threads or the stretch has no length.
    fn describe_threads(&self) -> String {
        let span = self.span.as_secs_f64();
        if span <= 0.0 {
            return String::new();
        }
        let percent = |seconds: f64| seconds * 100.0 / span;
        let threads = self
            .threads
            .iter()
            .filter(|t| percent(t.cpu) >= 1.0 || percent(t.wait) >= 1.0)
            .map(|t| {
                format!(
                    "{} {:.0} / {:.0} %",
                    t.thread,
                    percent(t.cpu),
                    percent(t.wait)
                )
            })
            .collect::<Vec<_>>();
        if threads.is_empty() {
            return String::new();
        }
        format!(
            "; threads on a CPU / waiting for one: {}",
            threads.join(", ")
        )
    }

    /// `; busy accept 2 %, conn-0 61 %, conn-1 58 %; parks 0.41 a request`, or nothing when the
    /// service exports no runtimes or the stretch has no length.
    fn describe_runtimes(&self) -> String {
        let span = self.span.as_secs_f64();
        if self.runtimes.is_empty() || span <= 0.0 {
            return String::new();
        }
        let busy = self
            .runtimes
            .iter()
            .map(|r| format!("{} {:.0} %", r.runtime, r.busy * 100.0 / span))
            .collect::<Vec<_>>()
            .join(", ");
        let parks: u64 = self.runtimes.iter().map(|r| r.parks).sum();
        format!(
            "; busy {busy}; parks {:.2} a request",
            parks as f64 / self.handler.count().max(1) as f64
        )
    }
}

/// One of the service's latency histograms over a stretch of a run: how many, by bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    /// `(upper bound in seconds, observations in that bucket)`, bounds rising, the counts not
    /// cumulative; the last bound is infinite.
    pub buckets: Vec<(f64, u64)>,
    /// The observations' total, in seconds (the histogram's `_sum`; 0 if the scrape has none).
    pub sum: f64,
}

impl Latencies {
    /// Reads the cumulative buckets of histogram `metric` with the other labels `labels` (as
    /// the scrape prints them after `le`, e.g. `,route="/sms"`) from a scrape; `None` if it has
    /// none.
    pub fn parse(scrape: &str, (metric, labels): (&str, &str)) -> Option<Latencies> {
        let prefix = format!("{metric}_bucket{{le=\"");
        let end = format!("\"{labels}}} ");
        // `metric_sum{route="/sms"} 1.5`, or `metric_sum 1.5` for a histogram without labels.
        let sum_prefix = match labels.strip_prefix(',') {
            Some(labels) => format!("{metric}_sum{{{labels}}} "),
            None => format!("{metric}_sum "),
        };
        let mut cumulative = Vec::new();
        let mut sum = 0.0;
        for line in scrape.lines() {
            if let Some(total) = line.strip_prefix(sum_prefix.as_str()) {
                sum = total.trim().parse().ok()?;
                continue;
            }
            let Some(rest) = line.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let Some((bound, count)) = rest.split_once(end.as_str()) else {
                continue;
            };
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            cumulative.push((bound, count.trim().parse::<u64>().ok()?));
        }
        if cumulative.is_empty() {
            return None;
        }
        let mut below = 0;
        let buckets = cumulative
            .into_iter()
            .map(|(bound, total)| {
                let n = total.saturating_sub(below);
                below = total.max(below);
                (bound, n)
            })
            .collect();
        Some(Latencies { buckets, sum })
    }

    /// The observations since `earlier` (a scrape of the same histogram).
    pub fn since(&self, earlier: &Latencies) -> Latencies {
        let buckets = self
            .buckets
            .iter()
            .map(|&(bound, n)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == bound)
                    .map_or(0, |(_, n)| *n);
                (bound, n.saturating_sub(before))
            })
            .collect();
        Latencies {
            buckets,
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    fn add(&mut self, other: &Latencies) {
        self.sum += other.sum;
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
            return;
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.1 += theirs.1;
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// Observations longer than `seconds` (a bucket bound).
    pub fn over(&self, seconds: f64) -> u64 {
        let mut lower = 0.0;
        let mut over = 0;
        for &(bound, n) in &self.buckets {
            if lower >= seconds {
                over += n;
            }
            lower = bound;
        }
        over
    }

    /// The bound under which the slowest observation fell (its bucket's upper bound).
    pub fn slowest(&self) -> Option<f64> {
        self.buckets
            .iter()
            .rev()
            .find(|(_, n)| *n > 0)
            .map(|(bound, _)| *bound)
    }

    /// The mean observation in seconds, if there is one.
    pub fn mean(&self) -> Option<f64> {
        let count = self.count();
        (count > 0).then(|| self.sum / count as f64)
    }

    /// How many, their mean, how many over [`SLOW`] (or the first bound above it), and the
    /// slowest's bucket.
    pub fn describe(&self) -> String {
        let threshold = self
            .buckets
            .iter()
            .map(|(bound, _)| *bound)
            .find(|bound| *bound >= SLOW.as_secs_f64())
            .unwrap_or(SLOW.as_secs_f64());
        let slowest = match self.slowest() {
            Some(bound) if bound.is_finite() => format!("slowest ≤ {} ms", bound * 1000.0),
            Some(_) => format!(
                "slowest > {} ms",
                self.buckets
                    .iter()
                    .rev()
                    .nth(1)
                    .map_or(0.0, |b| b.0 * 1000.0)
            ),
            None => "none".to_string(),
        };
        let mean = self
            .mean()
            .map_or(String::new(), |m| format!(", mean {:.2} ms", m * 1000.0));
        format!(
            "{:>5}{mean}, over {} ms {:>2}, {slowest}",
            self.count(),
            threshold * 1000.0,
            self.over(threshold),
        )
    }
}

/// One scrape of the service's histograms.
async fn scrape_service_times(client: &reqwest::Client, url: &str) -> Option<ServiceTimes> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    ServiceTimes::parse(&response.text().await.ok()?)
}

/// Measures two targets in alternating rounds (`a`, `b`, `a`, `b`, ...), `rounds` of each,
/// splitting the plan's duration between a target's rounds: whatever the machine's speed does
/// over the run (a VM's drifts by tens of percent within minutes) it does to both. Each target
/// is warmed up first for the plan's warm-up.
pub async fn drive_alternating(
    a: (&Target, Option<u32>),
    b: (&Target, Option<u32>),
    plan: &Plan,
    rounds: u32,
) -> Result<(Measured, Measured)> {
    let rounds = rounds.max(1);
    let warmup = Plan {
        duration: plan.warmup,
        warmup: Duration::ZERO,
        ..plan.clone()
    };
    let round = Plan {
        duration: plan.duration / rounds,
        warmup: Duration::ZERO,
        ..plan.clone()
    };
    if !plan.warmup.is_zero() {
        drive(a.0, &warmup).await?;
        drive(b.0, &warmup).await?;
    }
    let mut first = drive_measured(a.0, &round, a.1).await?;
    let mut second = drive_measured(b.0, &round, b.1).await?;
    for _ in 1..rounds {
        first.merge(drive_measured(a.0, &round, a.1).await?)?;
        second.merge(drive_measured(b.0, &round, b.1).await?)?;
    }
    Ok((first, second))
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat` (Linux only;
/// `None` elsewhere). `pid` 0 means this process. The kernel counts in USER_HZ ticks, 100 a second
/// on Linux whatever the kernel's own tick.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let path = if pid == 0 {
        "/proc/self/stat".to_string()
    } else {
        format!("/proc/{pid}/stat")
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The disk's flush latency under `dir`, the ways the write-ahead log meets it.
pub struct FlushLatency {
    /// Each write grows the file (a log's first appends, were it not grown ahead of them).
    pub growing: Histogram<u64>,
    /// Each write goes over zeros written before (the log's appends once it has been grown),
    /// back to back.
    pub in_place: Histogram<u64>,
    /// The same, each after a pause of [`crate::store::BATCH_SPACING`]: the pace of the log's
    /// syncs under load. A virtual disk can answer far slower after a pause than back to back
    /// (BENCHMARKS.md, step 68: 0.05 ms against 0.25 ms), and this is what every acknowledged
    /// message waits for.
    pub paced: Histogram<u64>,
}

/// `rounds` 4 KiB writes under `dir`, each followed by `sync_data`: appended to an empty file,
/// then over a file of zeros written and synced first, back to back and then paced.
pub fn flush_latency(dir: &Path, rounds: usize) -> Result<FlushLatency> {
    use std::io::{Seek, SeekFrom};
    std::fs::create_dir_all(dir)?;
    let path = dir.join("flush-probe");
    let block = [0x5au8; 4096];
    let probe = |in_place: bool, pause: Duration| -> Result<Histogram<u64>> {
        let mut file = std::fs::File::create(&path)?;
        if in_place {
            file.write_all(&vec![0; rounds * block.len()])?;
            file.sync_data()?;
            file.seek(SeekFrom::Start(0))?;
        }
        let mut hist = histogram();
        for _ in 0..rounds {
            std::thread::sleep(pause); // no time, and no system call, when zero
            let t = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            hist.record((t.elapsed().as_micros() as u64).max(1))?;
        }
        Ok(hist)
    };
    let measured = probe(false, Duration::ZERO).and_then(|growing| {
        Ok(FlushLatency {
            growing,
            in_place: probe(true, Duration::ZERO)?,
            paced: probe(true, crate::store::BATCH_SPACING)?,
        })
    });
    let _ = std::fs::remove_file(path);
    measured
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How many times `load` starts a server of its own on fresh ports, when one exits before it is
/// healthy. A port found free ([`free_port`]) can be taken before the server binds it: by a
/// connection's ephemeral port, or another test's server (seen once in CI: "Address already in
/// use").
const START_ATTEMPTS: usize = 5;

/// How long a started server must go on running after `/healthz` answers to be the one that
/// answered ([`wait_healthy`]).
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// Starts a server with `spawn` (which picks its ports) and waits until `GET base/healthz`
/// answers 200; a server that exits first is started again on new ports, up to
/// [`START_ATTEMPTS`] times.
pub async fn start_healthy<T>(
    mut spawn: impl FnMut() -> Result<(ChildGuard, String, T)>,
    within: Duration,
) -> Result<(ChildGuard, String, T)> {
    let mut exits = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let (mut guard, base, started) = spawn()?;
        match wait_healthy(Some(&mut guard), &base, within).await? {
            None => return Ok((guard, base, started)),
            Some(status) => exits.push(format!("{base}: {status}")),
        }
    }
    bail!(
        "the server exited before it was healthy, {START_ATTEMPTS} times ({})",
        exits.join("; ")
    )
}

/// Waits until a running service's `GET base/healthz` answers 200.
pub async fn wait_for(base: &str, within: Duration) -> Result<()> {
    wait_healthy(None, base, within).await.map(drop)
}

/// Waits until `GET base/healthz` answers 200 while `guard`'s process (if any) runs (`None`),
/// or until it exits (`Some` of its status). A server that cannot bind its port exits at once,
/// so one still running [`EXIT_GRACE`] after the answer is the one that answered (another
/// process may hold the port; on a loaded machine an answer can come before the exit).
async fn wait_healthy(
    mut guard: Option<&mut ChildGuard>,
    base: &str,
    within: Duration,
) -> Result<Option<std::process::ExitStatus>> {
    let start = Instant::now();
    let exited = |guard: &mut Option<&mut ChildGuard>| match guard {
        Some(guard) => guard.0.try_wait(),
        None => Ok(None),
    };
    loop {
        if let Some(status) = exited(&mut guard)? {
            return Ok(Some(status));
        }
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status().is_success()
        {
            if guard.is_some() {
                tokio::time::sleep(EXIT_GRACE).await;
            }
            return Ok(exited(&mut guard)?);
        }
        if start.elapsed() > within {
            bail!("{base} did not become healthy within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `concierge serve` on a free port over `data_dir`, with signature checking on. Returns
/// the process and the target for it.
pub fn spawn_service(
    data_dir: &Path,
    extra_env: &[(&str, &str)],
) -> Result<(ChildGuard, String, Target)> {
    let port = free_port()?;
    let metrics_port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    std::fs::create_dir_all(data_dir)?;
    let config = data_dir.join("load.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:{port}\"\nmetrics_bind = \"127.0.0.1:{metrics_port}\"\npublic_url = \"{base}\"\n\
             data_dir = \"{}\"\n\n[twilio]\naccount_sid = \"{ACCOUNT}\"\nauth_token = \"{AUTH_TOKEN}\"\n\
             sender = \"+15550000000\"\napi_base = \"http://127.0.0.1:9\"\n",
            data_dir.join("data").display()
        ),
    )?;
    let exe = std::env::current_exe().context("cannot find the concierge binary")?;
    let mut command = Command::new(exe);
    command
        .args(["--config"])
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let child = command.spawn().context("cannot start concierge serve")?;
    let target = Target {
        url: format!("{base}/sms"),
        signing: Some((format!("{base}/sms"), AUTH_TOKEN.to_string())),
        account: ACCOUNT.to_string(),
        metrics: Some(format!("http://127.0.0.1:{metrics_port}/metrics")),
    };
    Ok((ChildGuard(child), base, target))
}

/// Starts the baseline (`concierge load-baseline`) on a free port.
pub fn spawn_baseline(workers: Option<usize>) -> Result<(ChildGuard, String, ())> {
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.args(["load-baseline", "--bind", &format!("127.0.0.1:{port}")]);
    if let Some(workers) = workers {
        command.args(["--workers", &workers.to_string()]);
    }
    let child = command
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the baseline server")?;
    Ok((ChildGuard(child), format!("http://127.0.0.1:{port}"), ()))
}

/// The baseline: a trivial axum handler answering a fixed TwiML string.
pub async fn baseline(bind: std::net::SocketAddr) -> Result<()> {
    async fn sms() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
        (
            [(axum::http::header::CONTENT_TYPE, "text/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Hi!</Message></Response>",
        )
    }
    let app = axum::Router::new()
        .route("/sms", axum::routing::post(sms))
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    // The same backlog as the service's, so that a burst of connections meets the same queue.
    let listener = crate::http::listen(bind)?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A run's scratch folder under a base folder: the fresh store of the service `load` starts and
/// the disk probe's file. Dropping it removes it with everything in it, however the run ended
/// (the service, a [`ChildGuard`] made after it, is stopped first).
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new name under `base` (the folder is made by whoever writes in it first).
    pub fn new(base: &Path) -> Scratch {
        Scratch(base.join(format!(
            "concierge-load-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        )))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_of_runs_counts_those_within_ten_ms() {
        assert_eq!(
            describe_runs(&[2.31, 14.02, 10.0]),
            "runs with p99 within 10 ms: 2 of 3 (p99 2.31, 14.02, 10.00 ms)"
        );
    }

    /// A run of `ok` answers in a second, each taking `us` microseconds, `errors` failed.
    fn run_of(ok: u64, us: u64, errors: u64) -> Report {
        let mut latency = histogram();
        latency.record_n(us, ok).unwrap();
        Report {
            ok,
            errors,
            error_samples: Vec::new(),
            elapsed: Duration::from_secs(1),
            latency,
            waited: histogram(),
            overslept: 0,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn capacity_is_the_best_run_with_p99_within_ten_ms_and_no_errors() {
        let (fast, slow, failing, best) = (
            run_of(50_000, 6_000, 0),
            run_of(90_000, 11_000, 0),
            run_of(80_000, 2_000, 3),
            run_of(60_000, 9_900, 0),
        );
        // Faster runs that broke the latency target or failed requests do not count.
        assert_eq!(
            capacity([(64, &fast), (512, &slow), (256, &failing), (128, &best)]),
            Some((128, 60_000.0))
        );
        assert_eq!(capacity([(64, &fast)]), Some((64, 50_000.0)));
        assert_eq!(capacity([(512, &slow), (256, &failing)]), None);
        assert_eq!(capacity([(64, &run_of(0, 1, 0))]), None);
    }

    /// The ratio is taken at concierge's best count, against the baseline's run beside it, not
    /// against the baseline's best elsewhere (measured while the host was faster).
    #[test]
    fn the_ratio_is_taken_at_concierges_capacity_in_the_same_rounds() {
        let level = |connections, concierge, baseline| Level {
            connections,
            concierge,
            baseline: Some(baseline),
        };
        let levels = [
            level(64, run_of(38_700, 3_500, 0), run_of(121_900, 700, 0)),
            level(128, run_of(39_900, 7_900, 0), run_of(111_900, 4_600, 0)),
            level(256, run_of(48_100, 14_200, 0), run_of(143_300, 6_400, 0)),
        ];
        let rounds = "5 alternating rounds of 2.0 s";
        assert_eq!(
            describe_capacity(&levels, rounds),
            [
                "capacity (the most req/s at any of 64, 128, 256 connections, in a run with p99 \
                 within 10 ms and no errors): concierge 39900 req/s at 128, baseline 143300 req/s \
                 at 256",
                "ratio at concierge's capacity (128 connections): concierge / baseline throughput \
                 = 0.357 (the same 5 alternating rounds of 2.0 s)",
            ]
        );
        // No run of concierge's within 10 ms: no capacity, and no ratio.
        let slow = [level(
            64,
            run_of(50_000, 12_000, 0),
            run_of(150_000, 700, 0),
        )];
        assert_eq!(
            describe_capacity(&slow, rounds)[1],
            "ratio at concierge's capacity: none (no run of concierge's, or of the baseline's \
             beside it, had p99 within 10 ms and no errors)"
        );
        // Without the baseline: concierge's capacity alone.
        let alone = [Level {
            connections: 64,
            concierge: run_of(50_000, 2_000, 0),
            baseline: None,
        }];
        assert_eq!(
            describe_capacity(&alone, rounds),
            [
                "capacity (the most req/s at any of 64 connections, in a run with p99 within 10 ms \
              and no errors): concierge 50000 req/s at 64"
            ]
        );
    }

    #[test]
    fn the_machines_disk_writes_come_from_proc_diskstats_disks_only() {
        // A VM's /proc/diskstats (kernel 6.18: 20 fields), twice, 8 s apart: its disk, a
        // partition of it, and a zram device.
        let stats = |writes: u64, sectors: u64, flushes: u64| {
            format!(
                " 254       0 vda 4548 3023 1666778 7874 {writes} 22973 {sectors} 14450 0 5988 24192 4409 5 185808 362 {flushes} 1504\n \
                 254       1 vda1 100 0 800 7 {writes} 0 {sectors} 1 0 2 3 0 0 0 0 0 0\n \
                 253       0 zram0 0 0 0 0 9 0 72 0 0 0 0 0 0 0 0 0 0\n"
            )
        };
        let is_disk = |name: &str| name == "vda";
        let before = MachineDisks::parse(&stats(56_896, 3_157_104, 23_306), is_disk);
        assert_eq!(
            before,
            MachineDisks {
                bytes_written: 3_157_104 * 512,
                writes: 56_896,
                flushes: 23_306
            }
        );
        let after = MachineDisks::parse(&stats(86_723, 3_807_976, 36_040), is_disk);
        let run = after.since(&before).unwrap();
        assert_eq!(
            run,
            MachineDisks {
                bytes_written: 650_872 * 512,
                writes: 29_827,
                flushes: 12_734
            }
        );
        assert_eq!(
            run.describe(160_000),
            "the machine's disks: written 333.2 MB, 2083 bytes a request; 29827 writes, 12734 flushes"
        );
        assert_eq!(before.since(&after), None, "counters never go back");
        // An old kernel's line without flushes, and garbage, count what they have.
        let old = MachineDisks::parse(" 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\nsda\n\n", |_| true);
        assert_eq!(
            (old.writes, old.bytes_written, old.flushes),
            (5, 7 * 512, 0)
        );
        if cfg!(target_os = "linux") {
            assert!(MachineDisks::now().is_some(), "/proc/diskstats is readable");
        }
    }

    #[test]
    fn the_machines_cpu_shares_come_from_proc_stat() {
        // Two readings of a 2-CPU VM's /proc/stat, 8 s apart (cpu lines only matter).
        let before = MachineCpu::parse(
            "cpu  2177284 3110 662244 9955435 68400 0 124323 1681 0 0\n\
             cpu0 959199 1115 288769 5192437 7553 0 72208 763 0 0\n\
             intr 1 2 3\n",
        )
        .unwrap();
        assert_eq!(
            before,
            MachineCpu {
                busy: 2_177_284 + 3_110 + 662_244 + 124_323,
                idle: 9_955_435,
                iowait: 68_400,
                steal: 1_681,
            }
        );
        let after = MachineCpu::parse("cpu  2177784 3110 662544 9956135 68420 0 124423 1701 0 0\n")
            .unwrap();
        let run = after.since(&before).unwrap();
        assert_eq!(
            run,
            MachineCpu {
                busy: 900,
                idle: 700,
                iowait: 20,
                steal: 20
            }
        );
        assert_eq!(
            run.describe(),
            "the machine's CPUs: busy 55 %, idle 43 %, IO wait 1 %, steal 1.2 %"
        );
        assert_eq!(run.describe_briefly(), "CPUs busy 55 %, steal 1.2 %");
        assert_eq!(before.since(&after), None, "counters never go back");
        // An old kernel's shorter line, and garbage.
        assert_eq!(MachineCpu::parse("cpu  10 0 5 100 2\n").unwrap().steal, 0);
        assert_eq!(MachineCpu::parse("cpu  10 x 5\n"), None);
        assert_eq!(MachineCpu::parse("intr 1 2\n"), None);
        if cfg!(target_os = "linux") {
            let now = MachineCpu::now().expect("/proc/stat is readable on Linux");
            assert!(now.busy + now.idle > 0);
        }
    }

    #[test]
    fn service_times_are_read_from_the_services_own_scrape() {
        let mut metrics = crate::metrics::Metrics::new();
        let times = crate::store::CommitTimes::default();
        metrics.register_store(&times);
        let scrape = || {
            let text = metrics.render(&crate::metrics::Snapshot::default());
            let times = ServiceTimes::parse(&text).expect("the histograms are in the scrape");
            assert_eq!(times.batches.count(), 0);
            assert_eq!(times.handler.count(), 0);
            times.log_syncs
        };
        let empty = scrape();
        assert_eq!(empty.count(), 0);
        assert_eq!(empty.slowest(), None);
        assert_eq!(empty.mean(), None);
        assert_eq!(empty.describe(), "    0, over 10 ms  0, none");
        for seconds in [0.000_07, 0.000_08, 0.003, 0.012] {
            times.log_sync.observe(seconds);
        }
        let first = scrape();
        assert_eq!(first.count(), 4);
        assert_eq!(first.over(SLOW.as_secs_f64()), 1);
        assert_eq!(first.slowest(), Some(0.025));
        times.log_sync.observe(0.06);
        times.log_sync.observe(9.0);
        let second = scrape().since(&first);
        assert_eq!(second.count(), 2);
        assert_eq!(second.over(SLOW.as_secs_f64()), 2);
        assert_eq!(second.slowest(), Some(f64::INFINITY));
        assert_eq!(
            second.describe(),
            "    2, mean 4530.00 ms, over 10 ms  2, slowest > 2500 ms"
        );
        let mut both = first.clone();
        both.add(&second);
        assert_eq!(both.count(), 6);
        assert!(
            (both.mean().unwrap() - 9.075_15 / 6.0).abs() < 1e-9,
            "{both:?}"
        );
        assert_eq!(
            first.describe(),
            "    4, mean 3.79 ms, over 10 ms  1, slowest ≤ 25 ms"
        );

        // The handler's histogram is one route's of a family; its buckets double from 0.1 ms,
        // so "over 10 ms" is counted from the first bound above it.
        let route = |route| crate::metrics::RouteLabel { route };
        metrics
            .latency
            .get_or_create(&route("/sms"))
            .observe(0.000_3);
        metrics.latency.get_or_create(&route("/sms")).observe(0.02);
        metrics
            .latency
            .get_or_create(&route("/chat/messages"))
            .observe(0.5);
        let text = metrics.render(&crate::metrics::Snapshot::default());
        let handler = ServiceTimes::parse(&text).unwrap().handler;
        assert_eq!(handler.count(), 2);
        assert_eq!(
            handler.describe(),
            "    2, mean 10.15 ms, over 12.8 ms  1, slowest ≤ 25.6 ms",
            "the mean is /sms's alone"
        );
    }

    /// A runtime's busy time and parks reach `load` through the service's scrape, and a stretch
    /// of a run tells each runtime's share of it and the parks a request.
    #[test]
    fn runtimes_busy_time_and_parks_are_read_from_the_services_own_scrape() {
        let mut metrics = crate::metrics::Metrics::new();
        metrics.register_store(&crate::store::CommitTimes::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        metrics.watch_runtime("conn-0", runtime.handle());
        let scrape = || {
            ServiceTimes::parse(&metrics.render(&crate::metrics::Snapshot::default()))
                .expect("a scrape")
        };
        let before = scrape();
        assert_eq!(before.runtimes.len(), 1, "{before:?}");
        assert_eq!(before.runtimes[0].runtime, "conn-0");
        runtime.block_on(async {
            // A task that holds the thread 50 ms is busy time; the sleeps after park it.
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(50)) })
                .await
                .unwrap();
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let stretch = scrape().since(&before, Duration::from_millis(100));
        let conn = &stretch.runtimes[0];
        assert!(conn.busy >= 0.05 && conn.busy < 1.0, "{conn:?}");
        assert!(conn.parks >= 3, "{conn:?}");

        // Shares of the stretch, and parks per /sms request.
        let mut times = ServiceTimes {
            runtimes: vec![
                RuntimeUse {
                    runtime: "accept".into(),
                    busy: 0.02,
                    parks: 100,
                },
                RuntimeUse {
                    runtime: "conn-0".into(),
                    busy: 0.61,
                    parks: 300,
                },
            ],
            span: Duration::from_secs(1),
            ..ServiceTimes::default()
        };
        times.handler.buckets = vec![(0.001, 1000), (f64::INFINITY, 0)];
        assert_eq!(
            times.describe_runtimes(),
            "; busy accept 2 %, conn-0 61 %; parks 0.40 a request"
        );
        let mut two = times.clone();
        two.add(&times);
        assert_eq!(two.span, Duration::from_secs(2));
        assert_eq!(two.describe_runtimes(), times.describe_runtimes());
        // A service without the metrics, or a single scrape, adds nothing.
        assert_eq!(ServiceTimes::default().describe_runtimes(), "");
    }

    /// Threads' CPU and wait times reach `load` through the service's scrape; a stretch tells
    /// each thread's shares of it, leaving out the threads that hardly ran or waited.
    #[test]
    fn threads_cpu_and_wait_are_read_from_the_services_own_scrape() {
        let scrape = "# TYPE concierge_thread_cpu_seconds counter\n\
            concierge_thread_cpu_seconds_total{thread=\"conn-0\"} 2.5\n\
            concierge_thread_cpu_seconds_total{thread=\"sled-io-0\"} 0.001\n\
            concierge_thread_cpu_seconds_total{thread=\"store-writer\"} 1.0\n\
            # TYPE concierge_thread_wait_seconds counter\n\
            concierge_thread_wait_seconds_total{thread=\"conn-0\"} 1.25\n\
            concierge_thread_wait_seconds_total{thread=\"sled-io-0\"} 0.002\n\
            concierge_thread_wait_seconds_total{thread=\"store-writer\"} 0.75\n";
        let later = ThreadUse::parse(scrape);
        assert_eq!(later.len(), 3, "{later:?}");
        assert_eq!(
            later[2],
            ThreadUse {
                thread: "store-writer".into(),
                cpu: 1.0,
                wait: 0.75
            }
        );
        let earlier = ServiceTimes {
            threads: vec![ThreadUse {
                thread: "conn-0".into(),
                cpu: 1.9,
                wait: 1.0,
            }],
            ..ServiceTimes::default()
        };
        let now = ServiceTimes {
            threads: later,
            ..ServiceTimes::default()
        };
        let stretch = now.since(&earlier, Duration::from_secs(4));
        assert_eq!(
            stretch.describe_threads(),
            "; threads on a CPU / waiting for one: conn-0 15 / 6 %, store-writer 25 / 19 %"
        );
        let mut two = stretch.clone();
        two.add(&stretch);
        assert_eq!(two.describe_threads(), stretch.describe_threads());
        assert_eq!(ServiceTimes::default().describe_threads(), "");
        assert_eq!(now.describe_threads(), "", "a single scrape has no stretch");
    }

    #[test]
    fn an_answer_is_read_from_its_head_and_content_length() {
        let answer = |bytes: &str| parse_answer(bytes.as_bytes());
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: 5\r\n\r\n<R/>\n";
        assert_eq!(
            answer(ok),
            Ok(Some((
                Answer {
                    status: 200,
                    close: false
                },
                ok.len()
            )))
        );
        // Every prefix of the head is incomplete, not an error.
        let head = ok.find("\r\n\r\n").unwrap() + 4;
        for end in 0..head {
            assert_eq!(answer(&ok[..end]), Ok(None), "{end}");
        }
        let refused =
            "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            answer(refused),
            Ok(Some((
                Answer {
                    status: 429,
                    close: true
                },
                refused.len()
            )))
        );
        // HTTP/1.0 closes unless told otherwise; 204 has no body to measure.
        let empty = "HTTP/1.0 204 No Content\r\n\r\n";
        assert_eq!(
            answer(empty),
            Ok(Some((
                Answer {
                    status: 204,
                    close: true
                },
                empty.len()
            )))
        );
        for (bad, error) in [
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                "chunked",
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", "without content-length"),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
                "bad content-length",
            ),
            ("HTTP/1.1 100 Continue\r\n\r\n", "unexpected status 100"),
            ("SMTP ready\r\n\r\n", "malformed"),
        ] {
            let got = answer(bad).unwrap_err();
            assert!(got.contains(error), "{bad:?}: {got}");
        }
        let endless = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert!(answer(&endless).unwrap_err().contains("no end"));
    }

    /// Requests go out whole and answers are read whole, however the server splits its
    /// writes; a keep-alive connection carries the next request, a closing answer ends it, and
    /// a server that hangs up mid-answer is an error that drops the connection.
    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_exchanges_requests_over_loopback() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms?x=1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            let (mut socket, _) = listener.accept().await.unwrap();
            // Reads one request whole: its head, then as many bytes as it says.
            async fn request(socket: &mut tokio::net::TcpStream) -> String {
                let mut bytes = Vec::new();
                loop {
                    let mut chunk = [0u8; 256];
                    let n = socket.read(&mut chunk).await.unwrap();
                    bytes.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .unwrap()
                            .parse()
                            .unwrap();
                        if bytes.len() >= end + 4 + length {
                            return text;
                        }
                    }
                }
            }
            // An answer in three writes, a keep-alive one, then a closing one.
            requests.push(request(&mut socket).await);
            for piece in ["HTTP/1.1 200 OK\r\ncontent-len", "gth: 4\r\n\r\nab", "cd"] {
                socket.write_all(piece.as_bytes()).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            requests.push(request(&mut socket).await);
            socket
                .write_all(
                    b"HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                )
                .await
                .unwrap();
            drop(socket);
            // A new connection, hung up on halfway through its answer.
            let (mut socket, _) = listener.accept().await.unwrap();
            requests.push(request(&mut socket).await);
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                .await
                .unwrap();
            drop(socket);
            // A connection closed while idle, after a keep-alive answer: the next request
            // goes on a new one.
            for _ in 0..2 {
                let (mut socket, _) = listener.accept().await.unwrap();
                requests.push(request(&mut socket).await);
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
            }
            requests
        });

        let endpoint = Endpoint::parse(&url).unwrap();
        let mut connection = None;
        let signature = || Some("c2lnbmVk".to_string());
        assert_eq!(
            endpoint
                .post(&mut connection, "Body=next".into(), signature())
                .await,
            Ok(())
        );
        assert!(connection.is_some(), "kept alive");
        assert_eq!(
            endpoint
                .post(&mut connection, "Body=help".into(), signature())
                .await,
            Err("HTTP 403".to_string())
        );
        assert!(connection.is_none(), "closed by the answer");
        let broken = endpoint
            .post(&mut connection, "Body=stop".into(), signature())
            .await
            .unwrap_err();
        assert!(broken.contains("closed after"), "{broken}");
        assert!(connection.is_none());
        for body in ["Body=one", "Body=two"] {
            assert_eq!(
                endpoint
                    .post(&mut connection, body.into(), signature())
                    .await,
                Ok(())
            );
            // Idle long enough to be checked, while the server hangs up.
            tokio::time::sleep(IDLE_CHECK * 3).await;
        }

        let requests = server.await.unwrap();
        assert_eq!(requests.len(), 5);
        let authority = url.trim_start_matches("http://").split('/').next().unwrap();
        assert_eq!(
            requests[0],
            format!(
                "POST /sms?x=1 HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/x-www-form-urlencoded\r\nx-twilio-signature: c2lnbmVk\r\ncontent-length: 9\r\n\r\nBody=next"
            )
        );
        assert!(requests[1].ends_with("\r\n\r\nBody=help"));
        assert!(requests[4].ends_with("\r\n\r\nBody=two"));
    }

    #[test]
    fn lengths_are_written_in_decimal() {
        for n in [0, 7, 10, 640, 12_345, usize::MAX] {
            let mut out = Vec::new();
            push_length(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    /// A server that exits before it is healthy (its port taken) is started again, up to
    /// [`START_ATTEMPTS`] times; one that answers while it runs is kept.
    #[tokio::test]
    async fn a_server_that_exits_before_it_is_healthy_is_started_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let healthy = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let process = |program: &str, args: &[&str]| {
            ChildGuard(Command::new(program).args(args).spawn().unwrap())
        };
        // Twice a process that exits at once, then one that runs: the third is kept.
        let mut attempts = 0;
        let (mut guard, base, n) = start_healthy(
            || {
                attempts += 1;
                let child = if attempts < 3 {
                    process("false", &[])
                } else {
                    process("sleep", &["30"])
                };
                Ok((child, healthy.clone(), attempts))
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!((n, base.as_str()), (3, healthy.as_str()));
        assert!(guard.0.try_wait().unwrap().is_none(), "the kept one runs");
        // Every attempt exits: an error naming each exit.
        let err = start_healthy(
            || Ok((process("false", &[]), healthy.clone(), ())),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("5 times"), "{err}");
        assert_eq!(err.matches("exit status: 1").count(), 5, "{err}");
    }

    #[test]
    fn every_number_sends_once_before_any_sends_again() {
        for numbers in [0, 1, 2, 7, 100, 1_000, 4_096, 0x9e37_79b9, 100_000] {
            for run in [0, 1, 0xdead_beef] {
                let senders = Senders::new(numbers, run);
                let numbers = numbers.max(1);
                let mut seen = vec![false; numbers.min(100_000) as usize];
                let start = 3 * numbers;
                for n in start..start + numbers.min(100_000) {
                    let s = senders.nth(n);
                    assert!(s < numbers);
                    if numbers <= 100_000 {
                        assert!(!std::mem::replace(&mut seen[s as usize], true), "{s} twice");
                    }
                }
            }
        }
        // Runs start from different numbers, and neighbours are scattered.
        let (a, b) = (Senders::new(100_000, 0), Senders::new(100_000, 1));
        assert_ne!(a.nth(0), b.nth(0));
        assert!(a.nth(0).abs_diff(a.nth(1)) > 1);
    }

    #[test]
    fn numbers_and_sids_are_written_as_format_writes_them() {
        for x in [
            0,
            7,
            1_234_567,
            9_999_999,
            42,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            let mut out = String::new();
            push_decimal(&mut out, x % 10_000_000, 7);
            assert_eq!(out, format!("{:07}", x % 10_000_000));
            let mut out = String::new();
            push_hex(&mut out, x);
            assert_eq!(out, format!("{x:016x}"));
        }
    }

    #[test]
    fn a_schedule_releases_each_due_request_once() {
        let started = Instant::now();
        let schedule = Schedule::new(started, started + Duration::from_millis(20), 1000);
        assert_eq!(schedule.total, 20);
        // Requests 0 to 10 are due by 10 ms.
        let at_10ms = started + Duration::from_millis(10);
        assert_eq!(schedule.release_due(at_10ms), 11);
        assert_eq!(schedule.release_due(at_10ms), 11);
        assert_eq!(
            schedule.release_due(started),
            11,
            "an earlier look releases nothing"
        );
        assert_eq!(schedule.permits.available_permits(), 11);
        assert_eq!(schedule.release_due(started + Duration::from_secs(1)), 20);
        assert_eq!(schedule.permits.available_permits(), 20);
    }

    #[test]
    fn racing_releasers_release_each_request_once() {
        let started = Instant::now();
        let schedule = Schedule::new(started, started + Duration::from_millis(500), 1000);
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let schedule = &schedule;
                scope.spawn(move || {
                    for ms in 0..500u64 {
                        // Each thread looks at its own times, so their views cross.
                        let at = (ms * 7 + thread * 131) % 500;
                        schedule.release_due(started + Duration::from_millis(at));
                    }
                });
            }
        });
        assert_eq!(schedule.released.load(Ordering::Relaxed), 500);
        assert_eq!(schedule.permits.available_permits(), 500);
    }
}
