//! The running intent set: loaded at start, swapped whole on reload, watched for edits.
//!
//! A reload reads every file of the intents folder, compiles it with the current agenda's entities
//! and, only if all of that succeeds, swaps the new [`Matcher`] in with one atomic pointer store.
//! A broken edit changes nothing: its problems are logged and kept in [`IntentStatus::last_error`]
//! for `GET /admin/intents`, and the last good set keeps serving. Requests load the pointer once,
//! so none ever sees a half-loaded set.
//!
//! Reloads are triggered by edits in the folder (polled, see [`watch`]: polling works on every file
//! system, bind mounts and network shares included, and the folder holds a handful of files), by
//! SIGHUP, by `POST /admin/reload`, and by a new agenda (its entities change). They are serialised.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use serde::Serialize;

use crate::agenda::{Agenda, AgendaIndex};
use crate::intents::matcher::Stats;
use crate::intents::{Definitions, Diagnostic, Matcher, file};

/// What is loaded, and the last reload that failed.
#[derive(Clone, Debug, Serialize)]
pub struct IntentStatus {
    /// Counts successful loads, from 1.
    pub generation: u64,
    pub loaded_at: Timestamp,
    /// What caused the load: "start", "file change", "SIGHUP", "admin", "agenda".
    pub trigger: String,
    pub dir: String,
    pub files: Vec<String>,
    pub stats: Stats,
    pub last_error: Option<ReloadError>,
}

/// A reload that was refused, and why.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadError {
    pub at: Timestamp,
    pub trigger: String,
    pub problems: Vec<Diagnostic>,
}

/// The live intent set. Cheap to share behind an `Arc`.
pub struct LiveIntents {
    dir: PathBuf,
    matcher: ArcSwap<Matcher>,
    definitions: ArcSwap<Definitions>,
    status: Mutex<IntentStatus>,
    /// Serialises reloads, so two triggers at once cannot swap in an older set last.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LiveIntents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIntents")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn load(dir: &Path, agenda: &Agenda) -> Result<(Definitions, Matcher), Vec<Diagnostic>> {
    let defs = file::load_dir(dir)?;
    let matcher = Matcher::compile(&defs, Some(agenda))?;
    Ok((defs, matcher))
}

impl LiveIntents {
    /// Loads the folder for the first time. Without a working set there is nothing to serve, so
    /// problems are returned to the caller (which refuses to start).
    pub fn open(
        dir: &Path,
        agenda: &Agenda,
        now: Timestamp,
    ) -> Result<LiveIntents, Vec<Diagnostic>> {
        let (defs, matcher) = load(dir, agenda)?;
        let status = IntentStatus {
            generation: 1,
            loaded_at: now,
            trigger: "start".into(),
            dir: dir.display().to_string(),
            files: defs.files.clone(),
            stats: matcher.stats(),
            last_error: None,
        };
        Ok(LiveIntents {
            dir: dir.to_path_buf(),
            matcher: ArcSwap::from_pointee(matcher),
            definitions: ArcSwap::from_pointee(defs),
            status: Mutex::new(status),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The current matcher. Hold the returned `Arc` for the whole of one message.
    pub fn matcher(&self) -> Arc<Matcher> {
        self.matcher.load_full()
    }

    pub fn status(&self) -> IntentStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the folder and swaps the new set in if it compiles. Compiling runs on the blocking
    /// pool. On failure the running set stays and the problems are recorded.
    pub async fn reload(
        &self,
        agenda: Arc<AgendaIndex>,
        trigger: &str,
        now: Timestamp,
    ) -> Result<IntentStatus, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let dir = self.dir.clone();
        let result = tokio::task::spawn_blocking(move || load(&dir, agenda.agenda()))
            .await
            .unwrap_or_else(|err| {
                Err(vec![Diagnostic::general(format!(
                    "the reload task failed: {err}"
                ))])
            });
        self.finish(result, trigger, now)
    }

    /// Recompiles the current definitions with a new agenda's entities (no files are read).
    pub async fn agenda_changed(
        &self,
        agenda: Arc<AgendaIndex>,
        now: Timestamp,
    ) -> Result<IntentStatus, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let defs = self.definitions.load_full();
        let result = tokio::task::spawn_blocking(move || {
            Matcher::compile(&defs, Some(agenda.agenda())).map(|m| ((*defs).clone(), m))
        })
        .await
        .unwrap_or_else(|err| {
            Err(vec![Diagnostic::general(format!(
                "the reload task failed: {err}"
            ))])
        });
        self.finish(result, "agenda", now)
    }

    fn finish(
        &self,
        result: Result<(Definitions, Matcher), Vec<Diagnostic>>,
        trigger: &str,
        now: Timestamp,
    ) -> Result<IntentStatus, ReloadError> {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok((defs, matcher)) => {
                status.generation += 1;
                status.loaded_at = now;
                status.trigger = trigger.to_string();
                status.files = defs.files.clone();
                status.stats = matcher.stats();
                status.last_error = None;
                self.definitions.store(Arc::new(defs));
                self.matcher.store(Arc::new(matcher));
                tracing::info!(
                    generation = status.generation,
                    trigger,
                    intents = status.stats.intents,
                    "intents reloaded"
                );
                Ok(status.clone())
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(trigger, problem = %p, "intent reload refused; the running set stays");
                }
                let error = ReloadError {
                    at: now,
                    trigger: trigger.to_string(),
                    problems,
                };
                status.last_error = Some(error.clone());
                Err(error)
            }
        }
    }
}

/// A fingerprint of the folder's `*.toml` files: names, sizes and modification times.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    files.sort();
    files
}

/// Polls the folder every `interval` and reloads when its files change and then stay unchanged for
/// one more interval (an editor saving in several steps triggers one reload, not several). Runs
/// until the task is dropped.
pub async fn watch(
    live: Arc<LiveIntents>,
    agenda: impl Fn() -> Arc<AgendaIndex> + Send + 'static,
    now: impl Fn() -> Timestamp + Send + 'static,
    interval: Duration,
) {
    let dir = live.dir.clone();
    let mut seen = fingerprint(&dir);
    loop {
        tokio::time::sleep(interval).await;
        let current = fingerprint(&dir);
        if current == seen {
            continue;
        }
        tokio::time::sleep(interval).await;
        let settled = fingerprint(&dir);
        if settled != current {
            continue;
        }
        seen = settled;
        let _ = live.reload(agenda(), "file change", now()).await;
    }
}

/// Reloads on every SIGHUP. Runs until the task is dropped.
#[cfg(unix)]
pub async fn on_sighup(
    live: Arc<LiveIntents>,
    agenda: impl Fn() -> Arc<AgendaIndex> + Send + 'static,
    now: impl Fn() -> Timestamp + Send + 'static,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGHUP; reload with POST /admin/reload");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let _ = live.reload(agenda(), "SIGHUP", now()).await;
    }
}
