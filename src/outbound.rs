//! Outbound messages: the outbox in sled and the worker that sends it through the Twilio Messages
//! API.
//!
//! A message is stored (and flushed) before any send is tried, and stays until the API accepts it
//! (2xx, its SID recorded). Timeouts, connection errors and 5xx are retried with exponential backoff
//! and jitter; a 4xx is final, and Twilio's error 21610 ("the recipient opted out") also records the
//! opt-out. Opt-outs are checked again at send time. Sends are spaced to a configured rate. After a
//! restart the worker carries on with whatever is still queued.
//!
//! What to do after an attempt is a pure function, [`after_attempt`]; the IO is [`TwilioSender`]
//! and [`run`].

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Secret;
use crate::store::{Store, StoreError};

/// Where an outbound message stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OutState {
    Queued,
    Sent {
        sid: String,
    },
    Failed {
        error: String,
    },
    /// Not sent: the number had opted out by the time it was due.
    Suppressed,
}

/// A message waiting in, or done with, the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub id: u64,
    pub to: String,
    pub body: String,
    /// Why it is sent ("expert reply", "reminder"), for the operator.
    pub reason: String,
    pub created: Timestamp,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    pub state: OutState,
    pub last_error: Option<String>,
}

/// The result of one send.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    Accepted {
        sid: String,
    },
    /// A 4xx: the request is wrong or refused; retrying will not help.
    Rejected {
        status: u16,
        code: Option<u32>,
        message: String,
    },
    /// A 5xx, a timeout or a connection error: worth trying again.
    Transient {
        error: String,
    },
}

/// Backoff for transient failures.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub base: SignedDuration,
    pub max: SignedDuration,
    pub max_attempts: u32,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            base: SignedDuration::from_secs(2),
            max: SignedDuration::from_mins(5),
            max_attempts: 8,
        }
    }
}

/// Twilio's error for a recipient who opted out.
pub const OPTED_OUT: u32 = 21610;

/// What happens to `msg` after `attempt` at `now`. `jitter` in [0, 1) spreads retries between half
/// and one and a half times the backoff. Returns the new message and whether the number opted out.
pub fn after_attempt(
    mut msg: Outgoing,
    attempt: Attempt,
    now: Timestamp,
    retry: &Retry,
    jitter: f64,
) -> (Outgoing, bool) {
    msg.attempts += 1;
    let mut opted_out = false;
    match attempt {
        Attempt::Accepted { sid } => {
            msg.state = OutState::Sent { sid };
            msg.last_error = None;
        }
        Attempt::Rejected {
            status,
            code,
            message,
        } => {
            opted_out = code == Some(OPTED_OUT);
            let error = match code {
                Some(c) => format!("HTTP {status}, Twilio error {c}: {message}"),
                None => format!("HTTP {status}: {message}"),
            };
            msg.state = OutState::Failed {
                error: error.clone(),
            };
            msg.last_error = Some(error);
        }
        Attempt::Transient { error } => {
            msg.last_error = Some(error.clone());
            if msg.attempts >= retry.max_attempts {
                msg.state = OutState::Failed {
                    error: format!("gave up after {} attempts: {error}", msg.attempts),
                };
            } else {
                let exp = retry.base.as_secs_f64() * 2f64.powi(msg.attempts as i32 - 1);
                let backoff = exp.min(retry.max.as_secs_f64()) * (0.5 + jitter.clamp(0.0, 1.0));
                msg.next_attempt = now
                    .checked_add(SignedDuration::from_secs_f64(backoff))
                    .unwrap_or(Timestamp::MAX);
            }
        }
    }
    (msg, opted_out)
}

/// Sends through the Twilio Messages API.
#[derive(Clone, Debug)]
pub struct TwilioSender {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: Secret,
    sender: String,
    status_callback: Option<String>,
}

impl TwilioSender {
    /// `api_base` is `https://api.twilio.com` in service and a local stub in tests.
    pub fn new(
        api_base: &str,
        account_sid: &str,
        auth_token: Secret,
        sender: &str,
        status_callback: Option<String>,
        timeout: Duration,
    ) -> Result<TwilioSender, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(TwilioSender {
            client,
            url: format!(
                "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
                api_base.trim_end_matches('/')
            ),
            account_sid: account_sid.to_string(),
            auth_token,
            sender: sender.to_string(),
            status_callback,
        })
    }

    /// One send. Never returns an error: every outcome is an [`Attempt`].
    pub async fn send(&self, to: &str, body: &str) -> Attempt {
        let sender_field = if self.sender.starts_with("MG") {
            "MessagingServiceSid"
        } else {
            "From"
        };
        let mut form: Vec<(&str, &str)> =
            vec![("To", to), (sender_field, &self.sender), ("Body", body)];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb));
        }
        let response = self
            .client
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                };
                return Attempt::Transient {
                    error: format!("the Messages API {kind}"),
                };
            }
        };
        let status = response.status().as_u16();
        let json: serde_json::Value = response.json().await.unwrap_or_default();
        match status {
            200..=299 => match json["sid"].as_str() {
                Some(sid) => Attempt::Accepted {
                    sid: sid.to_string(),
                },
                None => Attempt::Transient {
                    error: format!("HTTP {status} without a message sid"),
                },
            },
            400..=499 => Attempt::Rejected {
                status,
                code: json["code"].as_u64().map(|c| c as u32),
                message: json["message"].as_str().unwrap_or("").to_string(),
            },
            _ => Attempt::Transient {
                error: format!("HTTP {status}"),
            },
        }
    }
}

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub retry: Retry,
    /// Sends per second at most.
    pub rate_per_second: f64,
    /// How often to look for due messages when nothing wakes the worker.
    pub poll: Duration,
    /// Counts failed attempts (the `concierge_outbox_send_failures_total` metric).
    pub failures: Option<prometheus_client::metrics::counter::Counter>,
}

/// Stores a message to send; returns once it is on disk. `wake` (the worker's) is notified.
pub async fn enqueue(
    store: &Store,
    wake: &Notify,
    to: &str,
    body: &str,
    reason: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let id = store.enqueue_outgoing(to, body, reason, now).await?;
    wake.notify_one();
    Ok(id)
}

/// Sends `text` to an attendee by their channel, outside a conversation turn (an expert's reply, an
/// expiry notice), and records it in their transcript. `by` is the expert's name when an expert
/// wrote it. SMS attendees (`sms:+1…`) get it through the outbox; web chat attendees read it from
/// their transcript (and [`to_attendee_live`] pushes it to their open sockets).
pub async fn to_attendee(
    store: &Store,
    wake: &Notify,
    attendee: &str,
    text: &str,
    reason: &str,
    by: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    if let Some(phone) = attendee.strip_prefix("sms:") {
        enqueue(store, wake, phone, text, reason, now).await?;
    }
    let entry = crate::store::TranscriptEntry {
        at: now,
        inbound: false,
        text: text.to_string(),
        message_id: None,
        intent: None,
        sessions: Vec::new(),
        by: by.map(str::to_string),
    };
    store.append_transcript(attendee, &entry).await
}

/// [`to_attendee`] plus, for web chat attendees, a push to their open WebSockets.
pub async fn to_attendee_live(
    state: &crate::state::AppState,
    attendee: &str,
    text: &str,
    reason: &str,
    by: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    // The attendee's lock keeps transcript entries in order with their turns, so the numbers the
    // web chat resumes by stay right.
    let _turn = state.locks.lock(attendee).await;
    to_attendee(
        &state.store,
        &state.outbox_wake,
        attendee,
        text,
        reason,
        by,
        now,
    )
    .await?;
    push_web(state, attendee, text, by)
}

/// Pushes a message already in a web chat attendee's transcript (its last entry) to their open
/// sockets; nothing for other channels. Call it holding the attendee's lock.
pub fn push_web(
    state: &crate::state::AppState,
    attendee: &str,
    text: &str,
    by: Option<&str>,
) -> Result<(), StoreError> {
    if attendee.starts_with("web:") {
        // Nobody connected is fine: the message is in the history for the next visit.
        let push = crate::state::WebPush {
            to: attendee.to_string(),
            n: state.store.transcript_len(attendee)?,
            text: text.to_string(),
            by: by.map(str::to_string),
        };
        let _ = state.web_push.send(push);
    }
    Ok(())
}

/// The outbox worker: sends due messages in order, one at a time, at the configured rate. Runs until
/// the task is dropped.
pub async fn run(
    store: Store,
    sender: Arc<TwilioSender>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    settings: WorkerSettings,
) {
    let spacing = Duration::from_secs_f64(1.0 / settings.rate_per_second.max(0.001));
    let mut last_send: Option<tokio::time::Instant> = None;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ clock.now().as_nanosecond() as u64;
    loop {
        let due = match store.due_outgoing(clock.now(), 100) {
            Ok(due) => due,
            Err(err) => {
                tracing::error!(error = %err, "reading the outbox failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(settings.poll) => {}
            }
            continue;
        }
        for msg in due {
            if let Some(at) = last_send {
                tokio::time::sleep_until(at + spacing).await;
            }
            let now = clock.now();
            let opted_out = store.is_opted_out(&msg.to).unwrap_or(true);
            let (updated, opt_out) = if opted_out {
                let mut m = msg;
                m.state = OutState::Suppressed;
                (m, false)
            } else {
                last_send = Some(tokio::time::Instant::now());
                let attempt = sender.send(&msg.to, &msg.body).await;
                if !matches!(attempt, Attempt::Accepted { .. }) {
                    if let Some(failures) = &settings.failures {
                        failures.inc();
                    }
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let jitter = (seed % 1000) as f64 / 1000.0;
                after_attempt(msg, attempt, clock.now(), &settings.retry, jitter)
            };
            let to = updated.to.clone();
            tracing::info!(
                id = updated.id,
                to = %crate::sms::phone::Phone::parse(&to).map_or_else(|| "(not E.164)".into(), |p| p.redacted()),
                state = ?updated.state,
                attempts = updated.attempts,
                "outbound message"
            );
            let result = async {
                if opt_out {
                    store
                        .opt_out(&to, "Twilio error 21610 on send", now)
                        .await?;
                }
                if let OutState::Sent { sid } = &updated.state {
                    store.update_delivery(sid, "queued", None, now).await?;
                }
                store.update_outgoing(&updated).await
            }
            .await;
            if let Err(err) = result {
                tracing::error!(error = %err, "recording an outbound message failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Outgoing {
        Outgoing {
            id: 1,
            to: "+15551230001".into(),
            body: "hi".into(),
            reason: "test".into(),
            created: Timestamp::UNIX_EPOCH,
            attempts: 0,
            next_attempt: Timestamp::UNIX_EPOCH,
            state: OutState::Queued,
            last_error: None,
        }
    }

    #[test]
    fn outcomes_table() {
        let retry = Retry::default();
        let now = Timestamp::UNIX_EPOCH;
        let (m, out) = after_attempt(
            msg(),
            Attempt::Accepted { sid: "SM1".into() },
            now,
            &retry,
            0.5,
        );
        assert_eq!(
            (m.state, out, m.attempts),
            (OutState::Sent { sid: "SM1".into() }, false, 1)
        );
        let rejected = Attempt::Rejected {
            status: 400,
            code: Some(21610),
            message: "opted out".into(),
        };
        let (m, out) = after_attempt(msg(), rejected, now, &retry, 0.5);
        assert!(out && matches!(m.state, OutState::Failed { .. }));
        let rejected = Attempt::Rejected {
            status: 400,
            code: Some(21211),
            message: "invalid To".into(),
        };
        let (m, out) = after_attempt(msg(), rejected, now, &retry, 0.5);
        assert!(!out && matches!(m.state, OutState::Failed { .. }));
        // Transient: backoff doubles from 2 s, with jitter between 0.5x and 1.5x, up to the cap.
        let mut m = msg();
        let mut waits = Vec::new();
        for _ in 0..7 {
            let (next, _) = after_attempt(
                m,
                Attempt::Transient {
                    error: "HTTP 500".into(),
                },
                now,
                &retry,
                0.5,
            );
            assert_eq!(next.state, OutState::Queued);
            waits.push(next.next_attempt.duration_since(now).as_secs());
            m = next;
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128]);
        let (m, _) = after_attempt(
            m,
            Attempt::Transient {
                error: "HTTP 500".into(),
            },
            now,
            &retry,
            0.5,
        );
        assert!(
            matches!(m.state, OutState::Failed { .. }),
            "gives up after 8 attempts"
        );
        let (low, _) = after_attempt(
            msg(),
            Attempt::Transient { error: "x".into() },
            now,
            &retry,
            0.0,
        );
        let (high, _) = after_attempt(
            msg(),
            Attempt::Transient { error: "x".into() },
            now,
            &retry,
            0.999,
        );
        assert_eq!(low.next_attempt.duration_since(now).as_secs(), 1);
        assert!(high.next_attempt.duration_since(now).as_secs_f64() > 2.9);
    }
}
