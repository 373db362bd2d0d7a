//! The expert desk: the routing [`Board`] with IO around it.
//!
//! It owns the board behind a `std::sync::Mutex` (held only for a pure board operation, never across
//! an `.await`), saves every task and expert a change touched in one sled transaction, and flushes
//! before the caller is told it happened. At start it reads the routing file (experts, queues,
//! workflow) and the stored experts and tasks, and restores the board, so pending tasks stay in
//! order and reservation deadlines resume from what was stored.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use crate::intents::Diagnostic;
use crate::routing::config::RoutingFile;
use crate::routing::expr::Expr;
use crate::routing::{
    Availability, Board, Decision, Estimate, Expert, Queue, Routing, RoutingError, Stats, Target,
    Task,
};
use crate::store::{Store, StoreError};

#[derive(Debug)]
pub enum DeskError {
    Routing(RoutingError),
    Store(StoreError),
}

impl std::fmt::Display for DeskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeskError::Routing(err) => err.fmt(f),
            DeskError::Store(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for DeskError {}

impl From<StoreError> for DeskError {
    fn from(err: StoreError) -> DeskError {
        DeskError::Store(err)
    }
}

impl From<RoutingError> for DeskError {
    fn from(err: RoutingError) -> DeskError {
        DeskError::Routing(err)
    }
}

/// Whether an operation changed experts (their availability, idle time, the roster) and not only
/// tasks: only then are the experts saved again. Only [`Board`]'s `set_status`, `complete` and
/// a reload of the routing file change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Experts {
    Changed,
    Unchanged,
}

pub struct Desk {
    routing: arc_swap::ArcSwap<Routing>,
    file: std::path::PathBuf,
    board: Mutex<Board>,
    store: Store,
    events: tokio::sync::broadcast::Sender<DeskEvent>,
}

/// Something an expert's console should show at once.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeskEvent {
    /// A conversation is offered to the expert until `deadline`.
    Offered {
        expert: String,
        task: u64,
        deadline: Timestamp,
    },
    /// An offer was withdrawn (timed out or canceled).
    Withdrawn { expert: String, task: u64 },
    /// The attendee wrote in one of the expert's conversations.
    Message {
        expert: String,
        task: u64,
        at: Timestamp,
        text: String,
    },
    /// The attendee left or the task expired.
    Canceled { expert: String, task: u64 },
}

impl DeskEvent {
    pub fn expert(&self) -> &str {
        match self {
            DeskEvent::Offered { expert, .. }
            | DeskEvent::Withdrawn { expert, .. }
            | DeskEvent::Message { expert, .. }
            | DeskEvent::Canceled { expert, .. } => expert,
        }
    }
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk").finish_non_exhaustive()
    }
}

/// A routing configuration with no experts: one queue of everyone. Used when there is no routing
/// file, so hand-offs still queue (and expire politely) instead of failing.
pub fn empty_routing() -> Routing {
    Routing {
        queues: vec![Queue {
            name: "anyone".into(),
            expr: Expr::parse("1 == 1").expect("a constant expression parses"),
        }],
        targets: vec![Target {
            queue: 0,
            timeout: None,
            priority: None,
        }],
        reservation_timeout: SignedDuration::from_secs(30),
        task_ttl: SignedDuration::from_mins(15),
    }
}

impl Desk {
    /// Reads the routing file (if it exists) and the stored experts and tasks.
    pub fn open(store: Store, file: &Path, now: Timestamp) -> Result<Desk, Vec<Diagnostic>> {
        let (routing, defined) = if file.is_file() {
            let text = std::fs::read_to_string(file).map_err(|err| {
                vec![Diagnostic::general(format!(
                    "{}: cannot read the file: {err}",
                    file.display()
                ))]
            })?;
            let parsed = RoutingFile::parse(&file.display().to_string(), &text, now)?;
            (parsed.routing, parsed.experts)
        } else {
            tracing::warn!(file = %file.display(), "no routing file: no experts are defined");
            (empty_routing(), Vec::new())
        };
        let (stored, tasks) = store
            .load_routing()
            .map_err(|err| vec![Diagnostic::general(err.to_string())])?;
        // The file defines who the experts are; the store remembers their status and idle time.
        let experts: Vec<Expert> = defined
            .into_iter()
            .map(|mut e| {
                if let Some(s) = stored.iter().find(|s| s.id == e.id) {
                    e.status = s.status;
                    e.idle_since = s.idle_since;
                }
                e
            })
            .collect();
        let board = Board::restore(experts, tasks, &routing);
        Ok(Desk {
            routing: arc_swap::ArcSwap::from_pointee(routing),
            file: file.to_path_buf(),
            board: Mutex::new(board),
            store,
            events: tokio::sync::broadcast::channel(1024).0,
        })
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the given tasks, and every expert when the operation changed experts.
    async fn save(&self, ids: &BTreeSet<u64>, experts: Experts) -> Result<(), StoreError> {
        let (experts, tasks): (Vec<Expert>, Vec<Task>) = {
            let board = self.board();
            (
                match experts {
                    Experts::Changed => board.experts().to_vec(),
                    Experts::Unchanged => Vec::new(),
                },
                ids.iter()
                    .filter_map(|id| board.task(*id).cloned())
                    .collect(),
            )
        };
        let refs: Vec<&Task> = tasks.iter().collect();
        self.store.save_routing(&experts, &refs).await
    }

    /// A new task, not yet on the board or in the store: the caller writes it with the turn that
    /// asked for it, then calls [`Desk::adopt`].
    pub fn new_task(
        &self,
        attendee: &str,
        channel: &str,
        question: &str,
        skill: Option<String>,
        language: &str,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let id = self.store.new_id()?;
        Ok(Task {
            // As the board will set it, so that putting it there changes nothing to save.
            expires: Some(self.routing.load().expiry(now)),
            ..Task::pending(id, attendee, channel, question, skill, language, now)
        })
    }

    /// Puts a stored task on the board and routes at once.
    pub async fn adopt(&self, task: Task, now: Timestamp) -> Result<Vec<Decision>, StoreError> {
        let id = task.id;
        let stored = task.clone();
        let changed = {
            let mut board = self.board();
            board.add_task(task, &self.routing.load(), now);
            board.task(id) != Some(&stored)
        };
        let (decisions, mut ids) = self.tick_inner(now);
        if changed {
            ids.insert(id);
        }
        // Usually nothing: the task was stored with its turn as the board holds it, and no
        // expert was free to offer it to.
        if !ids.is_empty() {
            self.save(&ids, Experts::Unchanged).await?;
        }
        Ok(decisions)
    }

    /// Re-reads the routing file. If it has a problem, nothing changes and the problems (with their
    /// places) are returned. Otherwise experts are updated (status and idle time kept, new ones
    /// offline) and the board is rebuilt under the new queues and workflow, tasks kept.
    pub async fn reload(&self, now: Timestamp) -> Result<usize, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(&self.file).map_err(|err| {
            vec![Diagnostic::general(format!(
                "{}: cannot read the file: {err}",
                self.file.display()
            ))]
        })?;
        let parsed = RoutingFile::parse(&self.file.display().to_string(), &text, now)?;
        let ids: BTreeSet<u64> = {
            let mut board = self.board();
            let experts: Vec<Expert> = parsed
                .experts
                .into_iter()
                .map(|mut e| {
                    if let Some(old) = board.expert(&e.id) {
                        e.status = old.status;
                        e.idle_since = old.idle_since;
                    }
                    e
                })
                .collect();
            let tasks: Vec<Task> = board.tasks().cloned().collect();
            *board = Board::restore(experts, tasks, &parsed.routing);
            board.tasks().map(|t| t.id).collect()
        };
        let count = self.board().experts().len();
        self.routing.store(std::sync::Arc::new(parsed.routing));
        self.save(&ids, Experts::Changed)
            .await
            .map_err(|err| vec![Diagnostic::general(err.to_string())])?;
        tracing::info!(experts = count, "routing file reloaded");
        Ok(count)
    }

    /// Live events for the consoles. A slow console that falls behind misses events and reloads.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<DeskEvent> {
        self.events.subscribe()
    }

    fn emit(&self, event: DeskEvent) {
        // No console listening is not an error.
        let _ = self.events.send(event);
    }

    /// The expert holding a task (offered or assigned), if any.
    fn holder(&self, task: u64) -> Option<String> {
        let board = self.board();
        let t = board.task(task)?;
        t.reservation
            .as_ref()
            .map(|r| r.expert.clone())
            .or_else(|| t.expert.clone())
    }

    fn tick_inner(&self, now: Timestamp) -> (Vec<Decision>, BTreeSet<u64>) {
        let decisions = self.board().tick(&self.routing.load(), now);
        for d in &decisions {
            match d {
                Decision::Offer {
                    task,
                    expert,
                    deadline,
                } => self.emit(DeskEvent::Offered {
                    expert: expert.clone(),
                    task: *task,
                    deadline: *deadline,
                }),
                Decision::ReservationTimedOut { task, expert } => self.emit(DeskEvent::Withdrawn {
                    expert: expert.clone(),
                    task: *task,
                }),
                _ => {}
            }
        }
        let ids = decisions
            .iter()
            .map(|d| match d {
                Decision::Offer { task, .. }
                | Decision::ReservationTimedOut { task, .. }
                | Decision::Escalate { task, .. }
                | Decision::Expire { task } => *task,
            })
            .collect();
        (decisions, ids)
    }

    /// Moves the board to `now` and saves what changed.
    pub async fn tick(&self, now: Timestamp) -> Result<Vec<Decision>, StoreError> {
        let (decisions, ids) = self.tick_inner(now);
        if !decisions.is_empty() {
            self.save(&ids, Experts::Unchanged).await?;
        }
        Ok(decisions)
    }

    pub async fn set_status(
        &self,
        expert: &str,
        status: Availability,
        now: Timestamp,
    ) -> Result<Vec<Decision>, DeskError> {
        self.board().set_status(expert, status, now)?;
        let (decisions, ids) = self.tick_inner(now);
        self.save(&ids, Experts::Changed).await?;
        Ok(decisions)
    }

    pub async fn accept(&self, task: u64, expert: &str, now: Timestamp) -> Result<(), DeskError> {
        self.board().accept(task, expert, now)?;
        self.save(&BTreeSet::from([task]), Experts::Unchanged)
            .await?;
        Ok(())
    }

    pub async fn reject(
        &self,
        task: u64,
        expert: &str,
        now: Timestamp,
    ) -> Result<Vec<Decision>, DeskError> {
        self.board()
            .reject(task, expert, &self.routing.load(), now)?;
        let (decisions, mut ids) = self.tick_inner(now);
        ids.insert(task);
        self.save(&ids, Experts::Unchanged).await?;
        Ok(decisions)
    }

    pub async fn complete(
        &self,
        task: u64,
        expert: &str,
        now: Timestamp,
    ) -> Result<Vec<Decision>, DeskError> {
        self.board().complete(task, expert, now)?;
        let (decisions, mut ids) = self.tick_inner(now);
        ids.insert(task);
        self.save(&ids, Experts::Changed).await?;
        Ok(decisions)
    }

    /// How many messages the attendee has added to a task (where the next one goes), if the task
    /// exists and still takes them (not completed or canceled).
    pub fn message_count(&self, task: u64) -> Option<usize> {
        self.board()
            .task(task)
            .filter(|t| !t.status.is_over())
            .map(|t| t.messages.len())
    }

    /// Adds the attendee's message to their task, and tells its expert. The message is stored
    /// already, with the turn that brought it ([`crate::store::TaskNote`]); the caller holds the
    /// attendee's lock from [`Desk::message_count`] to here, so no other message takes its place.
    pub fn noted(&self, task: u64, at: Timestamp, text: &str) -> Result<(), DeskError> {
        self.board().note(task, at, text)?;
        if let Some(expert) = self.holder(task) {
            self.emit(DeskEvent::Message {
                expert,
                task,
                at,
                text: text.to_string(),
            });
        }
        Ok(())
    }

    /// The attendee went back to the bot, or opted out.
    pub async fn cancel(&self, task: u64, reason: &str) -> Result<(), DeskError> {
        let holder = self.holder(task);
        self.board().cancel(task, reason, &self.routing.load())?;
        if let Some(expert) = holder {
            self.emit(DeskEvent::Canceled { expert, task });
        }
        self.save(&BTreeSet::from([task]), Experts::Unchanged)
            .await?;
        Ok(())
    }

    pub fn task(&self, id: u64) -> Option<Task> {
        self.board().task(id).cloned()
    }

    /// What `read` takes from a task, without copying the task (its notes can be long).
    pub fn read_task<R>(&self, id: u64, read: impl FnOnce(&Task) -> R) -> Option<R> {
        self.board().task(id).map(read)
    }

    pub fn experts(&self) -> Vec<Expert> {
        self.board().experts().to_vec()
    }

    /// An expert's display name; the id itself for an expert no longer in the routing file.
    pub fn expert_name(&self, id: &str) -> String {
        self.board()
            .expert(id)
            .map_or_else(|| id.to_string(), |e| e.name.clone())
    }

    pub fn estimate(&self, skill: Option<&str>, language: &str, now: Timestamp) -> Estimate {
        self.board()
            .estimate(&self.routing.load(), skill, language, now)
    }

    /// Where a waiting task stands (see [`crate::routing::Board::standing`]).
    pub fn standing(&self, task: u64, now: Timestamp) -> Option<Estimate> {
        self.board().standing(&self.routing.load(), task, now)
    }

    pub fn stats(&self, now: Timestamp) -> Stats {
        self.board().stats(&self.routing.load(), now)
    }

    /// The tasks offered or assigned to an expert.
    pub fn tasks_of(&self, expert: &str) -> Vec<Task> {
        self.board()
            .tasks()
            .filter(|t| {
                t.expert.as_deref() == Some(expert)
                    || t.reservation.as_ref().is_some_and(|r| r.expert == expert)
            })
            .cloned()
            .collect()
    }

    /// Tasks waiting, in the order they will be offered.
    pub fn waiting(&self) -> Vec<u64> {
        self.board().waiting()
    }
}

/// Ticks the desk every `every`: routes waiting tasks, times out offers, escalates, and tells
/// attendees whose request expired (through the outbox, so opt-outs are respected). Runs until the
/// task is dropped.
pub async fn run(state: crate::state::AppState, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        let now = state.clock.now();
        let decisions = match state.desk.tick(now).await {
            Ok(d) => d,
            Err(err) => {
                tracing::error!(error = %err, "routing tick failed");
                continue;
            }
        };
        for decision in decisions {
            match decision {
                Decision::Offer { task, expert, .. } => {
                    tracing::info!(task, expert = %expert, "offered a conversation");
                }
                Decision::Expire { task } => {
                    let Some(t) = state.desk.task(task) else {
                        continue;
                    };
                    let lang = crate::intents::Lang::parse(&t.language)
                        .unwrap_or(crate::intents::Lang::En);
                    let text = crate::conversation::render::Texts::new(lang).expired();
                    if let Err(err) = crate::outbound::to_attendee_live(
                        &state,
                        &t.attendee,
                        text,
                        "hand-off expired",
                        None,
                        now,
                    )
                    .await
                    {
                        tracing::error!(task, error = %err, "could not queue the expiry message");
                    }
                }
                Decision::ReservationTimedOut { task, expert } => {
                    tracing::info!(task, expert = %expert, "an offer timed out");
                }
                Decision::Escalate { task, to } => {
                    tracing::debug!(task, to, "escalated");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::TaskStatus;

    fn at(time: &str) -> Timestamp {
        format!("2026-06-09T{time}Z").parse().unwrap()
    }

    fn stored_expert(store: &Store, id: &str) -> Expert {
        let (experts, _) = store.load_routing().unwrap();
        experts.into_iter().find(|e| e.id == id).unwrap()
    }

    #[tokio::test]
    async fn expert_changes_are_saved_and_task_changes_save_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), 8 << 20).unwrap();
        let file = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/routing.toml"
        ));
        let desk = Desk::open(store.clone(), file, at("09:00:00")).unwrap();

        // Availability is an expert's: saved.
        desk.set_status("nora", Availability::Available, at("09:01:00"))
            .await
            .unwrap();
        assert_eq!(
            stored_expert(&store, "nora").status,
            Availability::Available
        );

        // A hand-off is offered to her; the offer, the acceptance and the task are saved.
        let task = desk
            .new_task(
                "sms:+15551230001",
                "sms",
                "help",
                Some("video".into()),
                "en",
                at("09:02:00"),
            )
            .unwrap();
        let id = task.id;
        desk.adopt(task, at("09:02:00")).await.unwrap();
        let saved = |id| {
            let (_, tasks) = store.load_routing().unwrap();
            tasks.into_iter().find(|t: &Task| t.id == id).unwrap()
        };
        assert_eq!(saved(id).status, TaskStatus::Reserved);
        assert_eq!(
            saved(id).reservation.map(|r| r.expert).as_deref(),
            Some("nora")
        );
        desk.accept(id, "nora", at("09:02:10")).await.unwrap();
        assert_eq!(saved(id).status, TaskStatus::Assigned);
        assert_eq!(saved(id).expert.as_deref(), Some("nora"));

        // Completing frees her, and her idle time starts then: saved.
        desk.complete(id, "nora", at("09:10:00")).await.unwrap();
        assert_eq!(saved(id).status, TaskStatus::Completed);
        assert_eq!(stored_expert(&store, "nora").idle_since, at("09:10:00"));

        // Going offline is saved too, and a reopened desk remembers it.
        desk.set_status("nora", Availability::Offline, at("09:11:00"))
            .await
            .unwrap();
        drop(desk);
        let reopened = Desk::open(store.clone(), file, at("09:12:00")).unwrap();
        let nora = reopened
            .experts()
            .into_iter()
            .find(|e| e.id == "nora")
            .unwrap();
        assert_eq!(nora.status, Availability::Offline);
    }
}
