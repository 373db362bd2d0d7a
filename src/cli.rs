//! The `concierge` command line: argument types and what each subcommand does.
//!
//! `main` parses [`Cli`] and calls [`run`]. Commands that read the agenda take it from the data dir's
//! store, or from a schedule file with `--file` (handy for trying a real schedule without importing
//! it). Every time-dependent command takes `--at TIME` (RFC 3339, or a local time read in the
//! conference's zone); without it, now.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::json;

use crate::agenda::{AgendaIndex, Filter, Session, Zone};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::import::{self, FlexTime, Format, ImportOptions};
use crate::state::{AgendaBoot, AppState};
use crate::store::{AgendaSource, Store};

#[derive(Debug, Parser)]
#[command(
    name = "concierge",
    version,
    about = "A conference concierge over SMS and web chat."
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./concierge.toml if it exists.
    #[arg(long, global = true, env = "CONCIERGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config and CONCIERGE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service. An empty data dir gets the demo conference.
    Serve(ServeArgs),
    /// Import a schedule file, replacing the stored agenda atomically.
    Import(ImportArgs),
    /// Ask the agenda: what is on, what is next, search, speakers.
    #[command(subcommand)]
    Agenda(AgendaCommand),
    /// Replace the stored agenda with the demo conference.
    Demo(DemoArgs),
    /// Exit 0 if the running service answers /healthz (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Validate intent files and run their examples and counter-examples.
    Check(CheckArgs),
    /// Classify messages from stdin, one per line, as JSON lines.
    Classify(ClassifyArgs),
    /// Classify one message and explain the result.
    Try(TryArgs),
    /// Send one message as an attendee and print the reply, using the data dir's store (so a
    /// conversation can be scripted from a shell, one command per message).
    Chat(ChatArgs),
    /// Leads captured by experts.
    #[command(subcommand)]
    Leads(LeadsCommand),
    /// Issue a bearer token for an expert of the routing file (printed once).
    ExpertToken(ExpertTokenArgs),
    /// Send an announcement through the running service (its admin API), or count who would get
    /// it with --dry-run.
    Announce(AnnounceArgs),
    /// Load-test the SMS webhook over loopback (signed requests, a realistic mix), against a
    /// baseline handler, and report throughput and latency percentiles.
    Load(LoadArgs),
    /// The load test's baseline: a trivial handler answering fixed TwiML (started by `load`).
    #[command(hide = true)]
    LoadBaseline(LoadBaselineArgs),
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Concurrent connections (open loop: the most requests in flight at once). Several,
    /// comma-separated, measure a closed loop at each in turn; each server's capacity is its
    /// best with p99 within 10 ms, and the ratio is taken at concierge's. Default: 64,128,256 for
    /// a closed loop against the baseline, otherwise 64.
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    pub connections: Vec<usize>,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Requests per second in all (open loop: each request, when due, takes the first idle
    /// connection); without, each connection sends back to back.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Distinct sender numbers (each is rate limited like a real sender, `sms.messages_*`).
    #[arg(long, default_value_t = 100_000)]
    pub numbers: u64,
    /// A running service's base URL (default: start one, with a fresh data dir).
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the Twilio auth token it checks signatures with.
    #[arg(long, env = "CONCIERGE_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// With --url: its AccountSid.
    #[arg(long, default_value = "AC10ad000000000000000000000000000a")]
    pub account_sid: String,
    /// With --url: its metrics listener's base URL (`metrics_bind`), to report its own times
    /// during the run (its /sms handler, its store writer's log syncs and batches). Without
    /// --url, the service started has one.
    #[arg(long, requires = "url")]
    pub metrics_url: Option<String>,
    /// Skip the baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Also print concierge's run second by second: requests answered, the share slower than
    /// 10 ms, the slowest (a slow spell or a slow run).
    #[arg(long)]
    pub timeline: bool,
    /// Threads that answer requests in the servers it starts, concierge (its connection
    /// threads, `workers`) and the baseline (its runtime's workers) alike. Default (or `0`): one
    /// per CPU, as `serve` runs.
    #[arg(long)]
    pub server_workers: Option<usize>,
    /// Measured runs back to back against the same service, its store growing from one to the
    /// next (with --no-baseline; only the first has a warm-up): each run's line, then how many
    /// had their p99 within 10 ms. A long-running service's test (BENCHMARKS.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// The folder its scratch data goes in: the fresh store of the service it starts and the
    /// disk flush probe's file, removed when it ends. Default: the system's temporary folder
    /// (TMPDIR). Every acknowledged message waits for a sync of that disk, so put it on the
    /// disk whose cost you want to measure.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadBaselineArgs {
    #[arg(long)]
    pub bind: std::net::SocketAddr,
    /// Threads that answer requests (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AnnounceArgs {
    /// An id for this announcement: sending the same id again sends nothing.
    #[arg(long)]
    pub id: String,
    /// The message.
    #[arg(long)]
    pub text: String,
    /// `everyone`, `session:ID` (those who saved it) or `track:NAME` (those who saved a session
    /// of it).
    #[arg(long, default_value = "everyone")]
    pub to: String,
    /// Only count the recipients.
    #[arg(long)]
    pub dry_run: bool,
    /// The running service (default: http:// and the configured bind address).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LeadsCommand {
    /// Print the leads whose attendees consented to be contacted, as CSV.
    Export,
}

#[derive(Debug, Args)]
pub struct ExpertTokenArgs {
    /// The expert's id in the routing file.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Who is texting: an E.164 number (the same conversation as that number's SMS) or a name.
    #[arg(long, value_name = "ID")]
    pub from: String,
    /// The time of the message: RFC 3339, or local time in the conference zone. Default: now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    pub message: String,
}

/// Which intents and which agenda's entities to match with.
#[derive(Debug, Args, Clone)]
pub struct MatcherArgs {
    /// The intents folder (default: the configured intents_dir).
    #[arg(long, value_name = "DIR")]
    pub intents: Option<PathBuf>,
    /// Take agenda entities from the store in this data dir (default: the embedded demo).
    #[arg(long, value_name = "DIR", conflicts_with = "schedule")]
    pub data: Option<PathBuf>,
    /// Take agenda entities from this schedule file.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The intents folder (default: the configured intents_dir).
    pub dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR", conflicts_with = "schedule")]
    pub data: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub matcher: MatcherArgs,
}

#[derive(Debug, Args)]
pub struct TryArgs {
    pub message: String,
    #[command(flatten)]
    pub matcher: MatcherArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides the config).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// DEVELOPMENT ONLY: accept SMS webhooks without checking X-Twilio-Signature, so they can be
    /// sent by hand (curl). Never use on a public address.
    #[arg(long)]
    pub dev_skip_signature: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The schedule file.
    pub file: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Check the file and print what would be imported, without storing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// How to read a schedule file.
#[derive(Debug, Args, Clone)]
pub struct ReadArgs {
    /// The file's format; detected from the content when absent.
    #[arg(long, value_parser = parse_format, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Conference time zone for files that name none (Sessionize), e.g. Europe/Berlin.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Conference name to use instead of the file's.
    #[arg(long = "name", value_name = "NAME")]
    pub conference_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AgendaCommand {
    /// Sessions starting next.
    Next(NextArgs),
    /// Sessions running now.
    Now(NowArgs),
    /// Search titles, abstracts, tracks, tags and speakers.
    Search(SearchArgs),
    /// Find a speaker and their sessions.
    Speaker(SpeakerArgs),
    /// Summary of the agenda: conference, days, rooms, tracks.
    Show(SourceArgs),
    /// Print the agenda as concierge agenda JSON.
    Export(SourceArgs),
}

/// Where the agenda comes from: the store, or a file.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Read this schedule file instead of the stored agenda.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct NextArgs {
    /// The time to ask at: RFC 3339, or local time in the conference zone. Default: now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Only this room.
    #[arg(long)]
    pub room: Option<String>,
    /// Only this track.
    #[arg(long)]
    pub track: Option<String>,
    /// Only sessions about this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// At most this many sessions.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct NowArgs {
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[arg(long)]
    pub room: Option<String>,
    #[arg(long)]
    pub track: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub query: String,
    /// Only sessions starting at or after this time.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct SpeakerArgs {
    pub name: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo's first day, where it then stays. Default: today in the demo's time zone, moved to
    /// each new today when `serve` starts.
    #[arg(long, value_name = "DATE")]
    pub first_day: Option<Date>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// host:port to check. Default: the configured bind address.
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<SocketAddr>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if matches!(cli.command, Command::Load(_)) && cli.data_dir.is_some() {
        bail!(
            "load starts its service on a fresh store of its own and never opens a data dir: \
             choose the disk it goes on with --work-dir"
        );
    }
    let mut config = Config::load(cli.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    init_tracing(matches!(cli.command, Command::Serve(_)));
    match cli.command {
        Command::Serve(args) => {
            if let Some(bind) = args.bind {
                config.bind = bind;
            }
            config.sms.skip_signature = args.dev_skip_signature;
            // The runtime here accepts connections and runs the background tasks; requests
            // are served on `workers` connection threads of their own (`http::threads`).
            runtime_with(Some(1))?.block_on(serve(config))
        }
        Command::Import(args) => runtime()?.block_on(import_command(config, args)),
        Command::Agenda(cmd) => agenda_command(&config, cmd),
        Command::Demo(args) => runtime()?.block_on(demo_command(config, args)),
        Command::Healthcheck(args) => healthcheck(&config, args),
        Command::Check(args) => check_command(&config, args),
        Command::Classify(args) => classify_command(&config, args),
        Command::Try(args) => try_command(&config, args),
        Command::Chat(args) => runtime()?.block_on(chat_command(config, args)),
        Command::Leads(LeadsCommand::Export) => {
            let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
            print!("{}", crate::store::leads_csv(&store.leads()?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Announce(args) => runtime()?.block_on(announce_command(&config, args)),
        Command::Load(args) => runtime()?.block_on(load_command(args)),
        Command::LoadBaseline(args) => {
            runtime_with(args.workers)?.block_on(crate::load::baseline(args.bind))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ExpertToken(args) => runtime()?.block_on(async {
            let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
            let desk =
                crate::desk::Desk::open(store.clone(), &config.routing_file, SystemClock.now())
                    .map_err(|problems| {
                        anyhow::anyhow!(
                            "{}",
                            problems
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("\n")
                        )
                    })?;
            if !desk.experts().iter().any(|e| e.id == args.id) {
                bail!(
                    "there is no expert {:?} in {}",
                    args.id,
                    config.routing_file.display()
                );
            }
            println!("{}", store.issue_expert_token(&args.id).await?);
            Ok(ExitCode::SUCCESS)
        }),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// A runtime with `workers` threads (default: one per CPU). One worker is a current-thread
/// runtime: one thread either way, without the work-stealing scheduler's shared queues and the
/// atomics around them (`concierge load`'s servers, both alike: BENCHMARKS.md, SMS webhook step
/// 34).
fn runtime_with(workers: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(workers);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs go to stderr. `serve` logs at info by default; other commands only warn, so their output
/// stays clean. `RUST_LOG` overrides both.
fn init_tracing(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(config: Config) -> Result<ExitCode> {
    if config.origin.is_default() {
        tracing::info!("no configuration file or CONCIERGE_* variables: using local defaults");
    } else {
        tracing::info!(file = ?config.origin.file, env = ?config.origin.env, "configuration loaded");
    }
    tracing::info!("{}", config.describe());
    if config.sms.skip_signature {
        for _ in 0..3 {
            tracing::warn!(
                "DEVELOPMENT MODE: X-Twilio-Signature is NOT checked; anyone who can reach this port can send SMS webhooks"
            );
        }
    } else if config.twilio.is_none() || config.public_url.is_none() {
        tracing::info!(
            "SMS webhook: POST /sms refuses requests until twilio.auth_token and public_url are configured \
             (or try it locally with `concierge chat`, or `serve --dev-skip-signature`)"
        );
    }
    let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
    let bind = config.bind;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (state, boot) = AppState::open(config, store, clock).await?;
    let agenda = state.agenda();
    match boot {
        AgendaBoot::Stored => tracing::info!("agenda: {}", agenda.agenda().summary()),
        AgendaBoot::DemoSeeded => tracing::info!(
            "empty data dir: loaded the demo conference, starting today: {}",
            agenda.agenda().summary()
        ),
        AgendaBoot::DemoMoved => tracing::info!(
            "moved the demo conference to start today: {}",
            agenda.agenda().summary()
        ),
    }
    let intents = state.intents.status();
    tracing::info!(
        dir = %intents.dir,
        files = intents.files.len(),
        intents = intents.stats.intents,
        "intents loaded; watching for changes"
    );
    spawn_reloaders(&state);
    spawn_outbox(&state)?;
    tokio::spawn(crate::metrics::watch_runtime_lag(state.metrics.clone()));
    tokio::spawn(crate::desk::run(state.clone(), Duration::from_secs(1)));
    tokio::spawn(crate::notices::worker::run_reminders(
        state.clone(),
        Duration::from_secs(5),
    ));
    tokio::spawn(crate::inbox::expire_records(
        state.clone(),
        Duration::from_secs(600),
    ));
    if let Some(addr) = state.config.metrics_bind {
        let metrics = crate::http::listen(addr)
            .with_context(|| format!("cannot listen for metrics on {addr} (metrics_bind)"))?;
        tracing::info!("metrics on http://{}/metrics", metrics.local_addr()?);
        let app = crate::metrics::router(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics, app).await {
                tracing::error!(error = %err, "the metrics listener failed");
            }
        });
    }
    let listener = crate::http::listen(bind).with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!("concierge listening on http://{}", listener.local_addr()?);
    let workers = state.config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let threads = crate::http::threads::ConnectionThreads::start(workers)
        .context("cannot start the connection threads")?;
    // (run_on watches each thread's lag, busy time and parks, beside this runtime's lag above.)
    crate::http::run_on(listener, state, crate::http::shutdown_signal(), threads).await?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn chat_command(config: Config, args: ChatArgs) -> Result<ExitCode> {
    let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
    let (state, _) = AppState::open(config, store, Arc::new(SystemClock)).await?;
    let zone = state.agenda().agenda().conference.time_zone.clone();
    let at = parse_at(args.at.as_deref(), &zone)?;
    let sender = match crate::sms::phone::Phone::parse(&args.from) {
        Some(phone) => crate::inbox::Sender::Sms(phone),
        None => crate::inbox::Sender::Local(args.from.clone()),
    };
    let message = crate::inbox::Message {
        sender,
        text: args.message,
        has_media: false,
        message_id: None,
        idempotency_key: None,
        opt_out_type: None,
        save: None,
        remove: None,
    };
    let outcome = crate::inbox::handle(&state, message, at).await?;
    if outcome.replies.is_empty() {
        println!("(no reply)");
    }
    for reply in outcome.replies {
        println!("{}", reply.text);
    }
    Ok(ExitCode::SUCCESS)
}

/// The outbox worker, when Twilio is configured: it sends what the service queues, at the rate.
fn spawn_outbox(state: &AppState) -> Result<()> {
    let Some(twilio) = &state.config.twilio else {
        tracing::info!(
            "no Twilio credentials: outbound messages stay queued until they are configured"
        );
        return Ok(());
    };
    let callback = state
        .config
        .public_url
        .as_ref()
        .map(|u| format!("{}/sms/status", u.as_str().trim_end_matches('/')));
    let sender = crate::outbound::TwilioSender::new(
        &twilio.api_base,
        &twilio.account_sid,
        twilio.auth_token.clone(),
        &twilio.sender,
        callback,
        Duration::from_secs(twilio.timeout_secs),
    )
    .context("cannot build the HTTP client for the Twilio Messages API")?;
    tokio::spawn(crate::outbound::run(
        state.store.clone(),
        Arc::new(sender),
        state.clock.clone(),
        state.outbox_wake.clone(),
        crate::outbound::WorkerSettings {
            retry: crate::outbound::Retry::default(),
            rate_per_second: state.config.sms.send_rate_per_second,
            poll: Duration::from_secs(1),
            failures: Some(state.metrics.send_failures.clone()),
        },
    ));
    Ok(())
}

/// Background tasks that reload the intents (on file changes and on SIGHUP) and the routing file
/// (on SIGHUP).
fn spawn_reloaders(state: &AppState) {
    let agenda = |s: AppState| move || s.agenda();
    let now = |s: AppState| move || s.clock.now();
    tokio::spawn(crate::live_intents::watch(
        state.intents.clone(),
        agenda(state.clone()),
        now(state.clone()),
        Duration::from_millis(500),
    ));
    #[cfg(unix)]
    tokio::spawn(crate::live_intents::on_sighup(
        state.intents.clone(),
        agenda(state.clone()),
        now(state.clone()),
    ));
    #[cfg(unix)]
    tokio::spawn(reload_routing_on_sighup(state.clone()));
}

/// Reloads the routing file on every SIGHUP (as `POST /admin/routing/reload` does); a file that
/// does not load leaves the running routing as it is.
#[cfg(unix)]
async fn reload_routing_on_sighup(state: AppState) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGHUP; reload the routing with POST /admin/routing/reload");
            return;
        }
    };
    while hup.recv().await.is_some() {
        if let Err(problems) = state.desk.reload(state.clock.now()).await {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            tracing::warn!(
                problems = %problems.join("; "),
                "routing reload refused; the running routing is unchanged"
            );
        }
    }
}

fn import_options(config: &Config, read: &ReadArgs) -> Result<ImportOptions> {
    let time_zone = match &read.tz {
        Some(tz) => Some(Zone::parse(tz).map_err(anyhow::Error::msg)?),
        None => config.time_zone.clone(),
    };
    Ok(ImportOptions {
        format: read.format,
        time_zone,
        conference_name: read.conference_name.clone(),
    })
}

async fn import_command(config: Config, args: ImportArgs) -> Result<ExitCode> {
    let options = import_options(&config, &args.read)?;
    let name = args.file.display().to_string();
    let result = import::import_file(&args.file, &options);
    if args.dry_run {
        let imported = result?;
        print_import(&imported);
        println!("dry run: nothing was stored");
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
    let now = SystemClock.now();
    match result {
        Ok(imported) => {
            print_import(&imported);
            let source = AgendaSource::File {
                name,
                format: imported.format,
            };
            // Attendees who saved a session that moved or went are told (through the outbox,
            // sent when `serve` runs), and their reminders move.
            let old = crate::agenda::AgendaIndex::new(match store.load_agenda()? {
                Some(stored) => stored.agenda,
                None => {
                    crate::agenda::demo::demo_agenda(crate::agenda::demo::today_for_demo(now)?)?
                }
            });
            let (record, notices) = crate::notices::worker::replace_agenda(
                &store,
                &old,
                imported.agenda,
                source,
                &config.reminders,
                true,
                now,
            )
            .await?;
            println!("stored as import #{}", record.id);
            if !notices.is_empty() {
                println!(
                    "{} attendees will be told about changes to sessions they saved",
                    notices.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            store
                .record_failed_import(&name, &err.to_string(), now)
                .await?;
            eprintln!("error: {err}");
            eprintln!("the stored agenda was not changed");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_import(imported: &import::Imported) {
    println!("format: {}", imported.format);
    println!("{}", imported.agenda.summary());
    for warning in &imported.warnings {
        println!("warning: {warning}");
    }
}

async fn demo_command(config: Config, args: DemoArgs) -> Result<ExitCode> {
    let now = SystemClock.now();
    let pinned = args.first_day.is_some();
    let first_day = match args.first_day {
        Some(day) => day,
        None => crate::agenda::demo::today_for_demo(now)?,
    };
    let agenda = crate::agenda::demo::demo_agenda(first_day)?;
    println!("{}", agenda.summary());
    let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
    store
        .replace_agenda(agenda, AgendaSource::Demo { first_day, pinned }, now)
        .await?;
    println!("the demo conference now starts on {first_day}");
    Ok(ExitCode::SUCCESS)
}

/// Loads the agenda for a read-only command: from `--file`, or from the store.
fn load_index(config: &Config, source: &SourceArgs) -> Result<AgendaIndex> {
    let agenda = match &source.file {
        Some(file) => import::import_file(file, &import_options(config, &source.read)?)?.agenda,
        None => {
            let store = Store::open(&config.data_dir, config.sled_cache_bytes)?;
            match store.load_agenda()? {
                Some(stored) => stored.agenda,
                None => bail!(
                    "no agenda in {}: run `concierge import FILE` or `concierge demo` first, or pass --file",
                    config.data_dir.display()
                ),
            }
        }
    };
    Ok(AgendaIndex::new(agenda))
}

/// Parses `--at`: RFC 3339, or a local date-time in the conference zone; `None` means now.
fn parse_at(at: Option<&str>, zone: &Zone) -> Result<Timestamp> {
    match at {
        None => Ok(SystemClock.now()),
        Some("now") => Ok(SystemClock.now()),
        Some(text) => Ok(FlexTime::parse(text)
            .map_err(anyhow::Error::msg)?
            .resolve(zone)),
    }
}

fn filter_for(index: &AgendaIndex, room: Option<&str>, track: Option<&str>) -> Result<Filter> {
    let mut filter = Filter::default();
    if let Some(room) = room {
        filter.room = Some(index.room(room).with_context(|| {
            format!(
                "no single room matches {room:?}; rooms: {}",
                names(index.agenda().rooms.iter().map(|r| r.name.as_str()))
            )
        })?);
    }
    if let Some(track) = track {
        filter.track = Some(index.track(track).with_context(|| {
            format!(
                "no single track matches {track:?}; tracks: {}",
                names(index.agenda().tracks.iter().map(|t| t.name.as_str()))
            )
        })?);
    }
    Ok(filter)
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = it.collect();
    if all.len() > 20 {
        format!("{}, … ({} in all)", all[..20].join(", "), all.len())
    } else {
        all.join(", ")
    }
}

fn agenda_command(config: &Config, cmd: AgendaCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        AgendaCommand::Next(args) => {
            let index = load_index(config, &args.source)?;
            let zone = &index.agenda().conference.time_zone;
            let at = parse_at(args.at.as_deref(), zone)?;
            let mut filter = filter_for(&index, args.room.as_deref(), args.track.as_deref())?;
            if let Some(topic) = &args.topic {
                filter = filter.topic(topic);
            }
            let sessions = index.next(at, &filter, args.limit);
            print_sessions(&mut out, &index, &sessions, args.json)?;
        }
        AgendaCommand::Now(args) => {
            let index = load_index(config, &args.source)?;
            let zone = &index.agenda().conference.time_zone;
            let at = parse_at(args.at.as_deref(), zone)?;
            let filter = filter_for(&index, args.room.as_deref(), args.track.as_deref())?;
            let sessions = index.now(at, &filter);
            print_sessions(&mut out, &index, &sessions, args.json)?;
        }
        AgendaCommand::Search(args) => {
            let index = load_index(config, &args.source)?;
            let zone = &index.agenda().conference.time_zone;
            let after = args
                .after
                .as_deref()
                .map(|t| parse_at(Some(t), zone))
                .transpose()?;
            let hits = index.search(&args.query, after, args.limit);
            let sessions: Vec<&Session> = hits.iter().map(|h| h.session).collect();
            print_sessions(&mut out, &index, &sessions, args.json)?;
        }
        AgendaCommand::Speaker(args) => {
            let index = load_index(config, &args.source)?;
            let speakers = index.find_speakers(&args.name);
            if args.json {
                let value: Vec<_> = speakers
                    .iter()
                    .map(|sp| {
                        json!({
                            "id": sp.id,
                            "name": sp.name,
                            "bio": sp.bio,
                            "sessions": sp.sessions.iter()
                                .filter_map(|id| index.session(id))
                                .map(|s| session_json(&index, s))
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                if speakers.is_empty() {
                    writeln!(out, "no speaker matches {:?}", args.name)?;
                }
                for sp in speakers {
                    writeln!(out, "{}", sp.name)?;
                    let sessions: Vec<&Session> = sp
                        .sessions
                        .iter()
                        .filter_map(|id| index.session(id))
                        .collect();
                    print_sessions(&mut out, &index, &sessions, false)?;
                }
            }
        }
        AgendaCommand::Show(source) => {
            let index = load_index(config, &source)?;
            let agenda = index.agenda();
            let zone = &agenda.conference.time_zone;
            writeln!(out, "{}", agenda.summary())?;
            for day in &agenda.conference.days {
                let count = agenda
                    .sessions
                    .iter()
                    .filter(|s| s.day == day.index)
                    .count();
                writeln!(
                    out,
                    "day {} {}: {} sessions, {} to {}",
                    day.index,
                    day.date,
                    count,
                    zone.rfc3339(day.start),
                    zone.rfc3339(day.end)
                )?;
            }
            writeln!(
                out,
                "rooms: {}",
                names(agenda.rooms.iter().map(|r| r.name.as_str()))
            )?;
            writeln!(
                out,
                "tracks: {}",
                names(agenda.tracks.iter().map(|t| t.name.as_str()))
            )?;
        }
        AgendaCommand::Export(source) => {
            let index = load_index(config, &source)?;
            let value = import::native::export(index.agenda());
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON form of a session the CLI prints: times in RFC 3339 with the conference's offset.
pub fn session_json(index: &AgendaIndex, s: &Session) -> serde_json::Value {
    let zone = &index.agenda().conference.time_zone;
    json!({
        "id": s.id,
        "title": s.title,
        "start": zone.rfc3339(s.start),
        "end": zone.rfc3339(s.end),
        "day": s.day,
        "room": s.room,
        "track": s.track,
        "kind": s.kind,
        "speakers": index.speakers_of(s).map(|sp| sp.name.as_str()).collect::<Vec<_>>(),
        "tags": s.tags,
        "url": s.url,
        "stream_url": s.stream_url,
        "recording_url": s.recording_url,
    })
}

fn print_sessions(
    out: &mut impl Write,
    index: &AgendaIndex,
    sessions: &[&Session],
    as_json: bool,
) -> Result<()> {
    if as_json {
        let value: Vec<_> = sessions.iter().map(|s| session_json(index, s)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    if sessions.is_empty() {
        writeln!(out, "no sessions")?;
    }
    let zone = &index.agenda().conference.time_zone;
    for s in sessions {
        let start = zone.at(s.start);
        let end = zone.at(s.end);
        let speakers: Vec<&str> = index.speakers_of(s).map(|sp| sp.name.as_str()).collect();
        write!(
            out,
            "{} {}–{}  {}  {}",
            start.strftime("%a %d %b"),
            start.strftime("%H:%M"),
            end.strftime("%H:%M"),
            s.room.as_deref().unwrap_or("-"),
            s.title
        )?;
        if !speakers.is_empty() {
            write!(out, " ({})", speakers.join(", "))?;
        }
        if let Some(track) = &s.track {
            write!(out, " [{track}]")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// How many rounds `load` measures concierge and the baseline in, alternating.
const LOAD_ROUNDS: u32 = 5;

/// `load`: see [`crate::load`].
async fn load_command(args: LoadArgs) -> Result<ExitCode> {
    use crate::load;
    let closed_with_baseline = args.rate.is_none() && args.runs == 1 && !args.no_baseline;
    let levels: Vec<usize> = match args.connections.as_slice() {
        [] if closed_with_baseline => load::SWEEP.to_vec(),
        [] => vec![64],
        given => given.iter().map(|&n| n.max(1)).collect(),
    };
    let sweep = levels.len() > 1;
    if sweep && (args.rate.is_some() || args.runs > 1) {
        bail!(
            "several --connections are measured in a closed loop, one run each: drop --rate and --runs"
        );
    }
    let plan = load::Plan {
        connections: levels[0],
        duration: Duration::from_secs(args.duration.max(1)),
        warmup: Duration::from_secs(args.warmup),
        rate: args.rate,
        numbers: args.numbers.max(1),
    };
    if args.runs > 1 && !args.no_baseline {
        bail!("--runs measures concierge alone: add --no-baseline");
    }
    let work_dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = load::Scratch::new(&work_dir);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    // The servers run as they would by default: a thread per CPU, shared with the load
    // generator. With one fewer (session 7's choice, for the closed loop), the one request
    // thread fell behind in the VM's slow phases at 20,000 req/s (BENCHMARKS.md, step 63).
    let workers = args.server_workers.filter(|&n| n > 0);
    let counts: Vec<String> = levels.iter().map(usize::to_string).collect();
    println!(
        "load: {} connections{}, {} s after {} s warm-up, {}, {} numbers; {cpus} CPUs, servers with {}",
        counts.join(", "),
        if sweep { " in turn" } else { "" },
        plan.duration.as_secs(),
        plan.warmup.as_secs(),
        plan.rate
            .map_or("as fast as they go".to_string(), |r| format!(
                "{r} req/s in all"
            )),
        plan.numbers,
        workers.map_or(format!("a worker thread per CPU ({cpus})"), |n| format!(
            "{n} worker thread{}",
            if n == 1 { "" } else { "s" }
        )),
    );
    let flush = load::flush_latency(scratch.path(), 200)?;
    let ms = |h: &hdrhistogram::Histogram<u64>| {
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
        )
    };
    println!(
        "disk flush (4 KiB write + fdatasync, 200 times, in {}): in place {}; growing the file {}; \
         in place, {} ms apart (the log's pace under load) {}",
        work_dir.display(),
        ms(&flush.in_place),
        ms(&flush.growing),
        crate::store::BATCH_SPACING.as_secs_f64() * 1000.0,
        ms(&flush.paced),
    );
    let (guard, base, target) = match &args.url {
        Some(url) => {
            let url = url.trim_end_matches('/').to_string();
            let signing = args.auth_token.clone().map(|t| (format!("{url}/sms"), t));
            let target = load::Target {
                url: format!("{url}/sms"),
                signing,
                account: args.account_sid.clone(),
                metrics: args
                    .metrics_url
                    .as_ref()
                    .map(|m| format!("{}/metrics", m.trim_end_matches('/'))),
            };
            (None, url, target)
        }
        None => {
            let workers = workers.map(|n| n.to_string());
            let env: Vec<(&str, &str)> = workers
                .as_deref()
                .map(|n| ("CONCIERGE_WORKERS", n))
                .into_iter()
                .collect();
            let (guard, base, target) = load::start_healthy(
                || load::spawn_service(scratch.path(), &env),
                Duration::from_secs(30),
            )
            .await?;
            (Some(guard), base, target)
        }
    };
    if guard.is_none() {
        load::wait_for(&base, Duration::from_secs(30)).await?;
    }
    let pid = guard.as_ref().map(|g| g.0.id());
    let baseline = if args.no_baseline {
        None
    } else {
        let (guard, base, ()) =
            load::start_healthy(|| load::spawn_baseline(workers), Duration::from_secs(30)).await?;
        let target = load::Target {
            url: format!("{base}/sms"),
            metrics: None,
            ..target.clone()
        };
        Some((guard, target))
    };
    let rounds = format!(
        "{LOAD_ROUNDS} alternating rounds of {:.1} s",
        plan.duration.as_secs_f64() / f64::from(LOAD_ROUNDS)
    );
    let mut errors = 0;
    let mut reports = Vec::new();
    for &connections in &levels {
        let plan = load::Plan {
            connections,
            ..plan.clone()
        };
        if sweep {
            println!("at {connections} connections:");
        }
        let (measured, other) = match &baseline {
            None => (drive_runs(&args, &target, &plan, pid).await?, None),
            Some((guard, baseline_target)) => {
                // Both servers run side by side (the one not driven is idle), measured in
                // alternating rounds so the machine's drifts in speed fall on both.
                let (measured, other) = load::drive_alternating(
                    (&target, pid),
                    (baseline_target, Some(guard.0.id())),
                    &plan,
                    LOAD_ROUNDS,
                )
                .await?;
                (measured, Some(other))
            }
        };
        // With several runs, each run's timeline was printed as it ended.
        print_measured(
            "concierge",
            &measured,
            plan.rate.is_some(),
            args.timeline && args.runs == 1,
        );
        for e in &measured.report.error_samples {
            println!("  error: {e}");
        }
        errors += measured.report.errors;
        if let Some(other) = &other {
            print_measured("baseline", other, plan.rate.is_some(), false);
            println!(
                "ratio{}: concierge / baseline throughput = {:.3} ({rounds} each)",
                if sweep {
                    format!(" at {connections} connections")
                } else {
                    String::new()
                },
                measured.report.throughput() / other.report.throughput(),
            );
        }
        reports.push(load::Level {
            connections,
            concierge: measured.report,
            baseline: other.map(|o| o.report),
        });
    }
    drop(guard);
    if sweep {
        for line in load::describe_capacity(&reports, &rounds) {
            println!("{line}");
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A measured target's lines of `load`'s report: its latencies (and, in an open loop, the part
/// spent waiting to be sent), its CPU, the service's own times when its metrics were read, and
/// its timeline if asked.
fn print_measured(name: &str, measured: &crate::load::Measured, wait: bool, timeline: bool) {
    println!("{}", measured.report.describe(name));
    if wait {
        println!("{}", measured.report.describe_wait());
    }
    println!("{}", measured.describe_cpu());
    if let Some(disks) = measured.describe_disks() {
        println!("{disks}");
    }
    if let Some(times) = measured.describe_service_times() {
        println!("{times}");
    }
    if timeline {
        println!("{}", measured.describe_timeline());
    }
}

/// `load --runs N`: N measured runs against the same service, each reported as it ends (in an
/// open loop with its wait for a connection, and with its timeline if asked), then how many had
/// their p99 within [`crate::load::SLOW`]; returns them merged. One run is reported by the
/// caller alone.
async fn drive_runs(
    args: &LoadArgs,
    target: &crate::load::Target,
    plan: &crate::load::Plan,
    pid: Option<u32>,
) -> Result<crate::load::Measured> {
    use crate::load;
    let mut merged: Option<load::Measured> = None;
    let mut p99s = Vec::new();
    for run in 1..=args.runs {
        let plan = load::Plan {
            warmup: if run == 1 {
                plan.warmup
            } else {
                Duration::ZERO
            },
            ..plan.clone()
        };
        let measured = load::drive_measured(target, &plan, pid).await?;
        if args.runs > 1 {
            let name = format!("run {run:>3}/{}", args.runs);
            print_measured(&name, &measured, plan.rate.is_some(), args.timeline);
        }
        p99s.push(measured.report.quantile_ms(0.99));
        match &mut merged {
            Some(all) => all.merge(measured)?,
            None => merged = Some(measured),
        }
    }
    if args.runs > 1 {
        println!("{}", load::describe_runs(&p99s));
    }
    merged.context("no run was measured")
}

/// `announce`: a client of the running service's admin API (the service holds the store).
async fn announce_command(config: &Config, args: AnnounceArgs) -> Result<ExitCode> {
    let audience = match args.to.split_once(':') {
        None if args.to == "everyone" => json!({ "to": "everyone" }),
        Some(("session", id)) => json!({ "to": "session", "session": id }),
        Some(("track", name)) => json!({ "to": "track", "track": name }),
        _ => bail!("--to must be everyone, session:ID or track:NAME"),
    };
    let Some(token) = &config.admin_token else {
        bail!("announcing needs the admin token: set admin_token (CONCIERGE_ADMIN_TOKEN)");
    };
    let base = args.url.clone().unwrap_or_else(|| {
        let mut addr = config.bind;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    });
    let mut body = json!({ "id": args.id, "text": args.text, "dry_run": args.dry_run });
    if let (Some(b), Some(a)) = (body.as_object_mut(), audience.as_object()) {
        b.extend(a.clone());
    }
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/announcements",
            base.trim_end_matches('/')
        ))
        .bearer_auth(token.expose())
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach the service at {base} (is `serve` running?)"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the service refused ({status}): {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    let n = answer["recipients"].as_u64().unwrap_or(0);
    if answer["duplicate"] == true {
        println!(
            "announcement {} was sent before, to {n}; nothing sent now",
            args.id
        );
    } else if args.dry_run {
        println!(
            "would send to {n} ({} by SMS, {} in the web chat)",
            answer["sms"], answer["web"]
        );
    } else {
        println!(
            "queued for {n} ({} by SMS, {} in the web chat)",
            answer["sms"], answer["web"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn healthcheck(config: &Config, args: HealthcheckArgs) -> Result<ExitCode> {
    let mut addr = args.addr.unwrap_or(config.bind);
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let timeout = Duration::from_secs(3);
    let check = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.take(4096).read_to_string(&mut response)?;
        Ok(response)
    };
    match check() {
        Ok(response)
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") =>
        {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Ok(response) => {
            eprintln!(
                "unhealthy: {}",
                response.lines().next().unwrap_or("(empty response)")
            );
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            eprintln!("unhealthy: cannot reach {addr}: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The agenda whose entities the matcher knows: a schedule file, a data dir's store, or the demo.
fn matcher_agenda(
    config: &Config,
    data: Option<&std::path::Path>,
    schedule: Option<&std::path::Path>,
) -> Result<crate::agenda::Agenda> {
    if let Some(file) = schedule {
        let options = ImportOptions {
            time_zone: config.time_zone.clone(),
            ..ImportOptions::default()
        };
        return Ok(import::import_file(file, &options)?.agenda);
    }
    if let Some(dir) = data {
        let store = Store::open(dir, config.sled_cache_bytes)?;
        return match store.load_agenda()? {
            Some(stored) => Ok(stored.agenda),
            None => bail!("no agenda in {}", dir.display()),
        };
    }
    let today = crate::agenda::demo::today_for_demo(SystemClock.now())?;
    Ok(crate::agenda::demo::demo_agenda(today)?)
}

impl MatcherArgs {
    /// The intents of `--intents` (or the configured folder) compiled with the chosen agenda.
    fn load(
        &self,
        config: &Config,
    ) -> Result<(crate::intents::Definitions, crate::intents::Matcher)> {
        let dir = self.intents.as_deref().unwrap_or(&config.intents_dir);
        let agenda = matcher_agenda(config, self.data.as_deref(), self.schedule.as_deref())?;
        load_matcher(dir, &agenda)
    }
}

/// Loads and compiles intents, or prints every problem and fails.
fn load_matcher(
    dir: &std::path::Path,
    agenda: &crate::agenda::Agenda,
) -> Result<(crate::intents::Definitions, crate::intents::Matcher)> {
    let report = |diags: Vec<crate::intents::Diagnostic>| {
        for d in &diags {
            eprintln!("error: {d}");
        }
        anyhow::anyhow!(
            "{} problem(s) in the intent files in {}",
            diags.len(),
            dir.display()
        )
    };
    let defs = crate::intents::file::load_dir(dir).map_err(report)?;
    let matcher = crate::intents::Matcher::compile(&defs, Some(agenda)).map_err(report)?;
    Ok((defs, matcher))
}

fn check_command(config: &Config, args: CheckArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| config.intents_dir.clone());
    let agenda = matcher_agenda(config, args.data.as_deref(), args.schedule.as_deref())?;
    let (defs, matcher) = match load_matcher(&dir, &agenda) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = crate::intents::check::run(&defs, &matcher, &agenda.conference.name);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn classify_command(config: &Config, args: ClassifyArgs) -> Result<ExitCode> {
    let (_, matcher) = args.matcher.load(config)?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::BufRead::lines(stdin.lock()) {
        let line = line.context("reading stdin")?;
        let c = matcher.explain(&line);
        serde_json::to_writer(&mut out, &c)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn try_command(config: &Config, args: TryArgs) -> Result<ExitCode> {
    let (_, matcher) = args.matcher.load(config)?;
    let c = matcher.explain(&args.message);
    let explain = c.explain.clone().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "intent:     {} ({:.2}){}",
        c.intent,
        c.confidence,
        c.ambiguous_with
            .as_ref()
            .map(|a| format!(", ambiguous with {a}"))
            .unwrap_or_default()
    )?;
    writeln!(out, "action:     {:?}", c.action)?;
    writeln!(out, "language:   {}", c.language.code())?;
    writeln!(out, "normalized: {:?}", explain.normalized)?;
    for (from, to) in &explain.corrections {
        writeln!(out, "corrected:  {from:?} -> {to:?}")?;
    }
    if let Some(exact) = &explain.exact {
        writeln!(out, "exact:      {exact:?}")?;
    }
    for e in &c.entities {
        writeln!(
            out,
            "entity:     {} = {} (from {:?})",
            e.kind,
            serde_json::to_string(&e.value)?,
            e.text
        )?;
    }
    for hit in &explain.phrases {
        writeln!(
            out,
            "phrase:     {:?} -> {}",
            hit.text,
            hit.claims.join("; ")
        )?;
    }
    for (intent, pattern) in &explain.patterns {
        writeln!(out, "pattern:    {intent}: {pattern}")?;
    }
    for (intent, word) in &explain.ruled_out {
        writeln!(out, "ruled out:  {intent} (by {word:?})")?;
    }
    for s in &explain.scores {
        writeln!(
            out,
            "score:      {:<20} {:.2} (strength {:.2}, coverage {:.2})",
            s.intent, s.confidence, s.strength, s.coverage
        )?;
    }
    writeln!(out, "threshold:  {:.2}", explain.threshold)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
