//! Expert routing, modelled on Twilio TaskRouter: experts with skills, queues defined by
//! expressions ([`expr`]), a workflow of targets with timeouts (escalation), tasks and reservations.
//!
//! This module is the sans-IO core: a [`Board`] holds experts and tasks, [`Board::tick`] moves it to
//! an instant and says what happened (expiries, reservation timeouts, escalations, then offers), and
//! the event methods ([`Board::accept`], [`Board::reject`], [`Board::complete`], …) change it. No clock, no
//! store, no sockets: the edge (a later part) persists the board and acts on decisions.
//!
//! Rules, as TaskRouter has them:
//! - A task is offered in order of priority (higher first), then age (older first).
//! - Among the experts its current target's queue admits, the one idle longest gets the offer;
//!   an expert never has more reserved and assigned tasks than their capacity; an expert who
//!   rejected a task, or let its offer time out, is not offered it again.
//! - A task waits at a target for the target's timeout, then moves to the next target
//!   (escalation); the last target has no timeout.
//! - A task not accepted within the workflow's time-to-live is canceled.
//!
//! Indexes keep every decision cheap with thousands of tasks: pending tasks are bucketed by what
//! decides their eligibility (target, skill, language) and ordered within a bucket; deadlines are
//! ordered sets. A pass of [`Board::decide`] looks at each bucket's head, not at every task; the
//! recent acceptances and completions behind the wait estimates are ordered by time, so an
//! estimate reads the last hour's, not every task kept.

pub mod config;
pub mod expr;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use expr::{Attributes, Expr, Value};

/// Whether an expert takes conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    Busy,
    Offline,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expert {
    pub id: String,
    pub name: String,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    /// Conversations at once.
    pub capacity: u32,
    pub status: Availability,
    /// When they last had nothing to do: the longest idle is offered first.
    pub idle_since: Timestamp,
}

/// A queue: the experts its expression admits.
#[derive(Clone, Debug)]
pub struct Queue {
    pub name: String,
    pub expr: Expr,
}

/// A step of the workflow.
#[derive(Clone, Debug)]
pub struct Target {
    /// Index into [`Routing::queues`].
    pub queue: usize,
    /// How long a task waits here before moving on; `None` for the last target.
    pub timeout: Option<SignedDuration>,
    /// Overrides the task's priority while it is at this target.
    pub priority: Option<i32>,
}

/// Queues and the workflow.
#[derive(Clone, Debug)]
pub struct Routing {
    pub queues: Vec<Queue>,
    pub targets: Vec<Target>,
    /// How long an expert has to accept an offer.
    pub reservation_timeout: SignedDuration,
    /// How long a task may wait before it is canceled.
    pub task_ttl: SignedDuration,
}

impl Routing {
    /// When a task made at `created` is canceled if no expert has accepted it.
    pub fn expiry(&self, created: Timestamp) -> Timestamp {
        created.checked_add(self.task_ttl).unwrap_or(Timestamp::MAX)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Reserved,
    Assigned,
    Wrapping,
    Completed,
    Canceled,
}

impl TaskStatus {
    /// Completed or canceled: the task takes no more messages and is never offered again.
    pub fn is_over(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Canceled)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub expert: String,
    pub offered_at: Timestamp,
    pub deadline: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: u64,
    pub attendee: String,
    pub channel: String,
    pub question: String,
    pub skill: Option<String>,
    pub language: String,
    pub priority: i32,
    pub created: Timestamp,
    /// When the task is canceled if no expert has accepted it (set by [`Board::add_task`]).
    #[serde(default)]
    pub expires: Option<Timestamp>,
    pub status: TaskStatus,
    /// Index of the current workflow target.
    pub target: usize,
    pub target_since: Timestamp,
    pub reservation: Option<Reservation>,
    /// The expert the task is assigned to.
    pub expert: Option<String>,
    #[serde(default)]
    pub assigned_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    /// Experts who rejected the task or let its offer time out.
    pub passed_by: Vec<String>,
    /// What the attendee added while waiting or talking to the expert, in order.
    #[serde(default)]
    pub messages: Vec<(Timestamp, String)>,
    pub cancel_reason: Option<String>,
}

impl Task {
    /// A new request, waiting at the workflow's first target, nothing routed yet (priority 0, no
    /// expiry: [`Board::add_task`] sets it).
    pub fn pending(
        id: u64,
        attendee: &str,
        channel: &str,
        question: &str,
        skill: Option<String>,
        language: &str,
        created: Timestamp,
    ) -> Task {
        Task {
            id,
            attendee: attendee.to_string(),
            channel: channel.to_string(),
            question: question.to_string(),
            skill,
            language: language.to_string(),
            priority: 0,
            created,
            expires: None,
            status: TaskStatus::Pending,
            target: 0,
            target_since: created,
            reservation: None,
            expert: None,
            assigned_at: None,
            completed_at: None,
            passed_by: Vec::new(),
            messages: Vec::new(),
            cancel_reason: None,
        }
    }
}

/// What should happen now.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Offer the task to the expert until `deadline`.
    Offer {
        task: u64,
        expert: String,
        deadline: Timestamp,
    },
    /// The offer was not answered in time.
    ReservationTimedOut { task: u64, expert: String },
    /// The task waited its target's timeout: move it to the next target.
    Escalate { task: u64, to: usize },
    /// The task waited its time-to-live: cancel it and tell the attendee.
    Expire { task: u64 },
}

/// Why an event was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutingError {
    UnknownTask(u64),
    UnknownExpert(String),
    /// The task is not in a state where this can happen (e.g. accepting a task not offered to you).
    NotAllowed {
        task: u64,
        status: TaskStatus,
        action: &'static str,
    },
}

impl std::fmt::Display for RoutingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoutingError::UnknownTask(id) => write!(f, "there is no task {id}"),
            RoutingError::UnknownExpert(id) => write!(f, "there is no expert {id:?}"),
            RoutingError::NotAllowed {
                task,
                status,
                action,
            } => {
                write!(f, "task {task} is {status:?}, so it cannot be {action}")
            }
        }
    }
}

impl std::error::Error for RoutingError {}

/// Where a new task would stand.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// 1 for the next task to be offered.
    pub position: usize,
    /// About how many minutes until an expert takes it; `None` when no expert for it is online.
    pub minutes: Option<u32>,
    pub experts_online: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueStats {
    pub queue: String,
    pub waiting: usize,
    pub longest_wait_seconds: i64,
    pub available_experts: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub queues: Vec<QueueStats>,
    pub available_experts: usize,
    pub average_wait_seconds_15m: Option<f64>,
}

/// What decides a pending task's eligible experts.
type Bucket = (usize, Option<String>, String);
/// A pending task's place in its bucket: higher priority, then older, first.
type Rank = (Reverse<i32>, Timestamp, u64);

/// Experts and tasks, with the indexes decisions need.
#[derive(Clone, Debug, Default)]
pub struct Board {
    experts: Vec<Expert>,
    expert_pos: HashMap<String, usize>,
    /// Reserved plus assigned tasks per expert.
    load: Vec<u32>,
    tasks: BTreeMap<u64, Task>,
    pending: BTreeMap<Bucket, BTreeSet<Rank>>,
    escalations: BTreeSet<(Timestamp, u64)>,
    reservations: BTreeSet<(Timestamp, u64)>,
    expiries: BTreeSet<(Timestamp, u64)>,
    /// Tasks by when they were accepted.
    accepted: BTreeSet<(Timestamp, u64)>,
    /// Accepted tasks by when they were completed.
    completed: BTreeSet<(Timestamp, u64)>,
}

/// An expert and a task seen through the expression's eyes.
struct View<'a> {
    expert: &'a Expert,
    skill: Option<&'a str>,
    language: &'a str,
}

impl Attributes for View<'_> {
    fn expert(&self, name: &str) -> Value {
        let list = |v: &[String]| Value::List(v.iter().map(|s| Value::Text(s.clone())).collect());
        match name {
            "id" => Value::Text(self.expert.id.clone()),
            "name" => Value::Text(self.expert.name.clone()),
            "skills" => list(&self.expert.skills),
            "languages" => list(&self.expert.languages),
            "capacity" => Value::Number(f64::from(self.expert.capacity)),
            _ => Value::Null,
        }
    }

    fn task(&self, name: &str) -> Value {
        match name {
            "skill" => self.skill.map_or(Value::Null, |s| Value::Text(s.into())),
            "language" => Value::Text(self.language.into()),
            _ => Value::Null,
        }
    }
}

impl Board {
    pub fn new(experts: Vec<Expert>) -> Board {
        let mut board = Board::default();
        for e in experts {
            board.upsert_expert(e);
        }
        board
    }

    pub fn experts(&self) -> &[Expert] {
        &self.experts
    }

    pub fn expert(&self, id: &str) -> Option<&Expert> {
        self.expert_pos.get(id).map(|&i| &self.experts[i])
    }

    pub fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.get(&id)
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// Reserved plus assigned tasks of an expert.
    pub fn load(&self, expert: &str) -> u32 {
        self.expert_pos.get(expert).map_or(0, |&i| self.load[i])
    }

    /// Adds or replaces an expert (their load is kept).
    pub fn upsert_expert(&mut self, expert: Expert) {
        match self.expert_pos.get(&expert.id) {
            Some(&i) => self.experts[i] = expert,
            None => {
                self.expert_pos
                    .insert(expert.id.clone(), self.experts.len());
                self.experts.push(expert);
                self.load.push(0);
            }
        }
    }

    /// Sets an expert's availability. Becoming available with nothing to do restarts idle time.
    pub fn set_status(
        &mut self,
        expert: &str,
        status: Availability,
        now: Timestamp,
    ) -> Result<(), RoutingError> {
        let &i = self
            .expert_pos
            .get(expert)
            .ok_or_else(|| RoutingError::UnknownExpert(expert.into()))?;
        let was = self.experts[i].status;
        self.experts[i].status = status;
        if status == Availability::Available && was != Availability::Available && self.load[i] == 0
        {
            self.experts[i].idle_since = now;
        }
        Ok(())
    }

    /// Adds a new pending task at the workflow's first target.
    pub fn add_task(&mut self, mut task: Task, routing: &Routing, now: Timestamp) {
        task.status = TaskStatus::Pending;
        task.target = 0;
        task.target_since = now;
        let expires = routing.expiry(task.created);
        task.expires = Some(expires);
        self.expiries.insert((expires, task.id));
        let id = task.id;
        self.tasks.insert(id, task);
        self.index_pending(id, routing);
    }

    /// Puts a pending task into its bucket and its escalation deadline into the set.
    fn index_pending(&mut self, id: u64, routing: &Routing) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let target = &routing.targets[task.target.min(routing.targets.len() - 1)];
        let priority = target.priority.unwrap_or(task.priority);
        let bucket = (task.target, task.skill.clone(), task.language.clone());
        self.pending
            .entry(bucket)
            .or_default()
            .insert((Reverse(priority), task.created, id));
        if let Some(timeout) = target.timeout {
            let deadline = task
                .target_since
                .checked_add(timeout)
                .unwrap_or(Timestamp::MAX);
            self.escalations.insert((deadline, id));
        }
    }

    fn unindex_pending(&mut self, id: u64, routing: &Routing) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let target = &routing.targets[task.target.min(routing.targets.len() - 1)];
        let priority = target.priority.unwrap_or(task.priority);
        let bucket = (task.target, task.skill.clone(), task.language.clone());
        if let Some(set) = self.pending.get_mut(&bucket) {
            set.remove(&(Reverse(priority), task.created, id));
            if set.is_empty() {
                self.pending.remove(&bucket);
            }
        }
        if let Some(timeout) = target.timeout {
            let deadline = task
                .target_since
                .checked_add(timeout)
                .unwrap_or(Timestamp::MAX);
            self.escalations.remove(&(deadline, id));
        }
    }

    /// Moves the board to `now`: carries out expiries, reservation timeouts and escalations that
    /// are due, then makes every offer it can. Returns all of it, in that order, for the edge to
    /// act on (notify experts of offers, tell attendees whose task expired).
    pub fn tick(&mut self, routing: &Routing, now: Timestamp) -> Vec<Decision> {
        let mut decisions = self.due(routing, now);
        for d in &decisions {
            self.apply(d, routing, now);
        }
        let offers = self.offers(routing, now, &BTreeSet::new());
        for d in &offers {
            self.apply(d, routing, now);
        }
        decisions.extend(offers);
        decisions
    }

    /// What is due at `now` (expiries, reservation timeouts, escalations, in that order) and the
    /// offers the board as it is would make, without changing anything.
    pub fn decide(&self, routing: &Routing, now: Timestamp) -> Vec<Decision> {
        let mut out = self.due(routing, now);
        let expiring: BTreeSet<u64> = out
            .iter()
            .filter_map(|d| match d {
                Decision::Expire { task } => Some(*task),
                _ => None,
            })
            .collect();
        out.extend(self.offers(routing, now, &expiring));
        out
    }

    /// Expiries, reservation timeouts and escalations due at `now`.
    fn due(&self, routing: &Routing, now: Timestamp) -> Vec<Decision> {
        let mut out = Vec::new();
        for &(_, id) in self.expiries.range(..=(now, u64::MAX)) {
            if matches!(
                self.tasks.get(&id).map(|t| t.status),
                Some(TaskStatus::Pending | TaskStatus::Reserved)
            ) {
                out.push(Decision::Expire { task: id });
            }
        }
        let expiring: BTreeSet<u64> = out
            .iter()
            .filter_map(|d| match d {
                Decision::Expire { task } => Some(*task),
                _ => None,
            })
            .collect();
        for &(_, id) in self.reservations.range(..=(now, u64::MAX)) {
            if let Some(r) = self.tasks.get(&id).and_then(|t| t.reservation.as_ref()) {
                if !expiring.contains(&id) {
                    out.push(Decision::ReservationTimedOut {
                        task: id,
                        expert: r.expert.clone(),
                    });
                }
            }
        }
        for &(_, id) in self.escalations.range(..=(now, u64::MAX)) {
            if let Some(task) = self.tasks.get(&id) {
                if task.status == TaskStatus::Pending
                    && task.target + 1 < routing.targets.len()
                    && !expiring.contains(&id)
                {
                    out.push(Decision::Escalate {
                        task: id,
                        to: task.target + 1,
                    });
                }
            }
        }
        out
    }

    /// Offers for pending tasks, in task order, each to the longest-idle eligible expert.
    fn offers(&self, routing: &Routing, now: Timestamp, skip: &BTreeSet<u64>) -> Vec<Decision> {
        let mut load = self.load.clone();
        // Available experts with room, longest idle first.
        let mut free: Vec<usize> = (0..self.experts.len())
            .filter(|&i| {
                self.experts[i].status == Availability::Available
                    && load[i] < self.experts[i].capacity
            })
            .collect();
        if free.is_empty() {
            return Vec::new();
        }
        free.sort_by(|&a, &b| {
            (self.experts[a].idle_since, &self.experts[a].id)
                .cmp(&(self.experts[b].idle_since, &self.experts[b].id))
        });
        // The head of each bucket, merged in global task order.
        let mut heads: BinaryHeap<Reverse<(Rank, &Bucket)>> = self
            .pending
            .iter()
            .filter_map(|(bucket, set)| set.iter().next().map(|r| Reverse((*r, bucket))))
            .collect();
        let mut cursors: HashMap<&Bucket, std::collections::btree_set::Iter<'_, Rank>> = self
            .pending
            .iter()
            .map(|(b, set)| (b, set.iter()))
            .collect();
        for it in cursors.values_mut() {
            it.next();
        }
        let mut eligible: HashMap<&Bucket, Vec<usize>> = HashMap::new();
        let mut out = Vec::new();
        while let Some(Reverse((rank, bucket))) = heads.pop() {
            let id = rank.2;
            let task = &self.tasks[&id];
            let list = eligible.entry(bucket).or_insert_with(|| {
                let target = &routing.targets[bucket.0.min(routing.targets.len() - 1)];
                let queue = &routing.queues[target.queue].expr;
                free.iter()
                    .copied()
                    .filter(|&i| {
                        queue.eval(&View {
                            expert: &self.experts[i],
                            skill: bucket.1.as_deref(),
                            language: &bucket.2,
                        })
                    })
                    .collect()
            });
            list.retain(|&i| load[i] < self.experts[i].capacity);
            if list.is_empty() {
                // Nobody can take this bucket now: the rest of it waits too.
                continue;
            }
            let chosen = list
                .iter()
                .copied()
                .find(|&i| !task.passed_by.contains(&self.experts[i].id));
            if let Some(i) = chosen {
                if !skip.contains(&id) {
                    load[i] += 1;
                    out.push(Decision::Offer {
                        task: id,
                        expert: self.experts[i].id.clone(),
                        deadline: now
                            .checked_add(routing.reservation_timeout)
                            .unwrap_or(Timestamp::MAX),
                    });
                }
            }
            if let Some(next) = cursors.get_mut(bucket).and_then(Iterator::next) {
                heads.push(Reverse((*next, bucket)));
            }
        }
        out
    }

    /// Carries out a decision.
    pub fn apply(&mut self, decision: &Decision, routing: &Routing, now: Timestamp) {
        match decision {
            Decision::Offer {
                task,
                expert,
                deadline,
            } => {
                let Some(&i) = self.expert_pos.get(expert) else {
                    return;
                };
                if self.tasks.get(task).map(|t| t.status) != Some(TaskStatus::Pending) {
                    return;
                }
                self.unindex_pending(*task, routing);
                let t = self.tasks.get_mut(task).expect("checked above");
                t.status = TaskStatus::Reserved;
                t.reservation = Some(Reservation {
                    expert: expert.clone(),
                    offered_at: now,
                    deadline: *deadline,
                });
                self.load[i] += 1;
                self.reservations.insert((*deadline, *task));
            }
            Decision::ReservationTimedOut { task, expert } => {
                let _ = self.release(*task, expert, routing, now);
            }
            Decision::Escalate { task, to } => {
                if self.tasks.get(task).map(|t| t.status) != Some(TaskStatus::Pending) {
                    return;
                }
                self.unindex_pending(*task, routing);
                let t = self.tasks.get_mut(task).expect("checked above");
                t.target = *to;
                t.target_since = now;
                self.index_pending(*task, routing);
            }
            Decision::Expire { task } => {
                let _ = self.cancel(*task, "expired: no expert accepted in time", routing);
            }
        }
    }

    /// Puts a reserved task back to pending, remembering the expert passed on it.
    fn release(
        &mut self,
        task: u64,
        expert: &str,
        routing: &Routing,
        _now: Timestamp,
    ) -> Result<(), RoutingError> {
        let t = self.take_reservation(task, expert, "released by this expert")?;
        t.status = TaskStatus::Pending;
        t.passed_by.push(expert.to_string());
        if let Some(&i) = self.expert_pos.get(expert) {
            self.load[i] = self.load[i].saturating_sub(1);
        }
        self.index_pending(task, routing);
        Ok(())
    }

    /// Checks that `task` is offered to `expert` and ends the reservation (its deadline leaves the
    /// timeout set). The caller sets the task's next status.
    fn take_reservation(
        &mut self,
        task: u64,
        expert: &str,
        action: &'static str,
    ) -> Result<&mut Task, RoutingError> {
        let t = self
            .tasks
            .get_mut(&task)
            .ok_or(RoutingError::UnknownTask(task))?;
        let offered_to = t.reservation.as_ref().map(|r| r.expert.as_str());
        if t.status != TaskStatus::Reserved || offered_to != Some(expert) {
            return Err(RoutingError::NotAllowed {
                task,
                status: t.status,
                action,
            });
        }
        if let Some(r) = t.reservation.take() {
            self.reservations.remove(&(r.deadline, task));
        }
        Ok(self.tasks.get_mut(&task).expect("checked above"))
    }

    /// The expert takes the task offered to them.
    pub fn accept(&mut self, task: u64, expert: &str, now: Timestamp) -> Result<(), RoutingError> {
        let t = self.take_reservation(task, expert, "accepted by this expert")?;
        t.status = TaskStatus::Assigned;
        t.expert = Some(expert.to_string());
        t.assigned_at = Some(now);
        if let Some(e) = t.expires {
            self.expiries.remove(&(e, task));
        }
        self.accepted.insert((now, task));
        Ok(())
    }

    /// The expert turns the offer down; the task goes to someone else.
    pub fn reject(
        &mut self,
        task: u64,
        expert: &str,
        routing: &Routing,
        now: Timestamp,
    ) -> Result<(), RoutingError> {
        self.release(task, expert, routing, now)
    }

    /// The expert finishes the conversation (wrapping up, then completed).
    pub fn complete(
        &mut self,
        task: u64,
        expert: &str,
        now: Timestamp,
    ) -> Result<(), RoutingError> {
        let t = self
            .tasks
            .get_mut(&task)
            .ok_or(RoutingError::UnknownTask(task))?;
        if !matches!(t.status, TaskStatus::Assigned | TaskStatus::Wrapping)
            || t.expert.as_deref() != Some(expert)
        {
            return Err(RoutingError::NotAllowed {
                task,
                status: t.status,
                action: "completed by this expert",
            });
        }
        t.status = TaskStatus::Completed;
        t.completed_at = Some(now);
        if t.assigned_at.is_some() {
            self.completed.insert((now, task));
        }
        let &i = self
            .expert_pos
            .get(expert)
            .ok_or_else(|| RoutingError::UnknownExpert(expert.into()))?;
        self.load[i] = self.load[i].saturating_sub(1);
        if self.load[i] == 0 {
            self.experts[i].idle_since = now;
        }
        Ok(())
    }

    /// Cancels a task that is not finished (the attendee left, or it expired).
    pub fn cancel(
        &mut self,
        task: u64,
        reason: &str,
        routing: &Routing,
    ) -> Result<(), RoutingError> {
        let status = self
            .tasks
            .get(&task)
            .ok_or(RoutingError::UnknownTask(task))?
            .status;
        match status {
            TaskStatus::Pending => self.unindex_pending(task, routing),
            TaskStatus::Reserved | TaskStatus::Assigned | TaskStatus::Wrapping => {
                let t = &self.tasks[&task];
                let holder = t
                    .reservation
                    .as_ref()
                    .map(|r| r.expert.clone())
                    .or_else(|| t.expert.clone());
                if let Some(d) = t.reservation.as_ref().map(|r| r.deadline) {
                    self.reservations.remove(&(d, task));
                }
                if let Some(&i) = holder.as_ref().and_then(|h| self.expert_pos.get(h)) {
                    self.load[i] = self.load[i].saturating_sub(1);
                }
            }
            TaskStatus::Completed | TaskStatus::Canceled => {
                return Err(RoutingError::NotAllowed {
                    task,
                    status,
                    action: "canceled",
                });
            }
        }
        if let Some(e) = self.tasks[&task].expires {
            self.expiries.remove(&(e, task));
        }
        let t = self.tasks.get_mut(&task).expect("checked above");
        t.status = TaskStatus::Canceled;
        t.reservation = None;
        t.cancel_reason = Some(reason.to_string());
        Ok(())
    }

    /// Rebuilds a board from stored experts and tasks: pending tasks go back into their buckets
    /// with their stored target and deadlines, reservations keep their stored deadlines, loads are
    /// recounted. Finished tasks are kept for statistics.
    pub fn restore(experts: Vec<Expert>, tasks: Vec<Task>, routing: &Routing) -> Board {
        let mut board = Board::new(experts);
        for task in tasks {
            let id = task.id;
            let status = task.status;
            let holder = task
                .reservation
                .as_ref()
                .map(|r| r.expert.clone())
                .or_else(|| task.expert.clone());
            let reservation = task.reservation.as_ref().map(|r| r.deadline);
            let expires = task.expires;
            if let Some(accepted) = task.assigned_at {
                board.accepted.insert((accepted, id));
                if let Some(completed) = task.completed_at {
                    board.completed.insert((completed, id));
                }
            }
            board.tasks.insert(id, task);
            match status {
                TaskStatus::Pending => board.index_pending(id, routing),
                TaskStatus::Reserved => {
                    if let Some(d) = reservation {
                        board.reservations.insert((d, id));
                    }
                }
                _ => {}
            }
            if matches!(
                status,
                TaskStatus::Reserved | TaskStatus::Assigned | TaskStatus::Wrapping
            ) {
                if let Some(&i) = holder.as_ref().and_then(|h| board.expert_pos.get(h)) {
                    board.load[i] += 1;
                }
            }
            if matches!(status, TaskStatus::Pending | TaskStatus::Reserved) {
                if let Some(e) = expires {
                    board.expiries.insert((e, id));
                }
            }
        }
        board
    }

    /// Where a new task for `skill`/`language` would stand, and about how long it would wait: the
    /// tasks ahead of it, and the recent handling time (5 minutes when nothing was handled in the
    /// last hour) spread over the online experts the first target's queue admits.
    pub fn estimate(
        &self,
        routing: &Routing,
        skill: Option<&str>,
        language: &str,
        now: Timestamp,
    ) -> Estimate {
        // Every waiting task for the same skill and language is ahead: they are older, at this
        // target or escalated past it.
        let ahead: usize = self
            .pending
            .iter()
            .filter(|(b, _)| b.1.as_deref() == skill && b.2 == language)
            .map(|(_, set)| set.len())
            .sum();
        self.wait(routing, skill, language, ahead, now)
    }

    /// Where a waiting task stands now: the tasks for the same skill and language with a better
    /// place (higher priority, then older), and the wait that gives. Position 1 and no wait for
    /// a task on offer; `None` for a task that is not waiting.
    pub fn standing(&self, routing: &Routing, task: u64, now: Timestamp) -> Option<Estimate> {
        let t = self.tasks.get(&task)?;
        match t.status {
            TaskStatus::Reserved => Some(Estimate {
                position: 1,
                minutes: Some(0),
                experts_online: 1,
            }),
            TaskStatus::Pending => {
                let target = &routing.targets[t.target.min(routing.targets.len() - 1)];
                let mine = (
                    Reverse(target.priority.unwrap_or(t.priority)),
                    t.created,
                    t.id,
                );
                let ahead: usize = self
                    .pending
                    .iter()
                    .filter(|(b, _)| b.1 == t.skill && b.2 == t.language)
                    .map(|(_, set)| set.range(..mine).count())
                    .sum();
                Some(self.wait(routing, t.skill.as_deref(), &t.language, ahead, now))
            }
            _ => None,
        }
    }

    /// The estimate for a task with `ahead` tasks before it.
    fn wait(
        &self,
        routing: &Routing,
        skill: Option<&str>,
        language: &str,
        ahead: usize,
        now: Timestamp,
    ) -> Estimate {
        let queue = &routing.queues[routing.targets[0].queue].expr;
        let online: Vec<&Expert> = self
            .experts
            .iter()
            .filter(|e| e.status != Availability::Offline)
            .filter(|e| {
                queue.eval(&View {
                    expert: e,
                    skill,
                    language,
                })
            })
            .collect();
        let capacity: u32 = online.iter().map(|e| e.capacity).sum();
        let handling = self
            .recent_handling_time(now)
            .unwrap_or(SignedDuration::from_mins(5));
        let free_now = online
            .iter()
            .any(|e| e.status == Availability::Available && self.load(&e.id) < e.capacity);
        let minutes = if free_now && ahead == 0 {
            0
        } else if capacity == 0 {
            -1
        } else {
            let rounds = (ahead as f64 + 1.0) / f64::from(capacity);
            (rounds * handling.as_secs_f64() / 60.0).ceil() as i64
        };
        Estimate {
            position: ahead + 1,
            minutes: (minutes >= 0).then_some(minutes as u32),
            experts_online: online.len(),
        }
    }

    /// The average time from acceptance to completion over tasks completed in the last hour.
    fn recent_handling_time(&self, now: Timestamp) -> Option<SignedDuration> {
        let since = now.checked_sub(SignedDuration::from_hours(1)).ok()?;
        let times: Vec<f64> = self
            .completed
            .range((since, 0)..)
            .filter_map(|(_, id)| self.tasks.get(id))
            .filter_map(|t| match (t.assigned_at, t.completed_at) {
                (Some(a), Some(c)) => Some(c.duration_since(a).as_secs_f64()),
                _ => None,
            })
            .collect();
        (!times.is_empty())
            .then(|| SignedDuration::from_secs_f64(times.iter().sum::<f64>() / times.len() as f64))
    }

    /// Per queue: tasks waiting at a target of that queue, the longest wait, available experts it
    /// admits for those tasks; and, over all queues, the average wait until accepted in the last
    /// 15 minutes.
    pub fn stats(&self, routing: &Routing, now: Timestamp) -> Stats {
        let mut queues: Vec<QueueStats> = routing
            .queues
            .iter()
            .map(|q| QueueStats {
                queue: q.name.clone(),
                waiting: 0,
                longest_wait_seconds: 0,
                available_experts: 0,
            })
            .collect();
        for (bucket, set) in &self.pending {
            let q = routing.targets[bucket.0.min(routing.targets.len() - 1)].queue;
            queues[q].waiting += set.len();
            for &(_, created, _) in set {
                queues[q].longest_wait_seconds = queues[q]
                    .longest_wait_seconds
                    .max(now.duration_since(created).as_secs());
            }
        }
        for (q, stats) in queues.iter_mut().enumerate() {
            let buckets: Vec<&Bucket> = self
                .pending
                .keys()
                .filter(|b| routing.targets[b.0.min(routing.targets.len() - 1)].queue == q)
                .collect();
            stats.available_experts = self
                .experts
                .iter()
                .filter(|e| e.status == Availability::Available && self.load(&e.id) < e.capacity)
                .filter(|e| {
                    buckets.iter().any(|b| {
                        routing.queues[q].expr.eval(&View {
                            expert: e,
                            skill: b.1.as_deref(),
                            language: &b.2,
                        })
                    })
                })
                .count();
        }
        let since = now
            .checked_sub(SignedDuration::from_mins(15))
            .unwrap_or(Timestamp::MIN);
        let waits: Vec<f64> = self
            .accepted
            .range((since, 0)..)
            .filter_map(|&(accepted, id)| {
                let t = self.tasks.get(&id)?;
                Some(accepted.duration_since(t.created).as_secs_f64())
            })
            .collect();
        Stats {
            queues,
            available_experts: self
                .experts
                .iter()
                .filter(|e| e.status == Availability::Available && self.load(&e.id) < e.capacity)
                .count(),
            average_wait_seconds_15m: (!waits.is_empty())
                .then(|| waits.iter().sum::<f64>() / waits.len() as f64),
        }
    }

    /// Adds a message from the attendee to a task that is not finished.
    pub fn note(&mut self, task: u64, at: Timestamp, text: &str) -> Result<(), RoutingError> {
        let t = self
            .tasks
            .get_mut(&task)
            .ok_or(RoutingError::UnknownTask(task))?;
        if t.status.is_over() {
            return Err(RoutingError::NotAllowed {
                task,
                status: t.status,
                action: "added to",
            });
        }
        t.messages.push((at, text.to_string()));
        Ok(())
    }

    /// Pending tasks in the order they will be offered, with their position (from 1).
    pub fn waiting(&self) -> Vec<u64> {
        let mut all: Vec<Rank> = self
            .pending
            .values()
            .flat_map(|s| s.iter().copied())
            .collect();
        all.sort();
        all.into_iter().map(|r| r.2).collect()
    }
}
