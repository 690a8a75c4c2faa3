//! Raw request log -> sessions: group by `account_id`, order by time, and
//! cut sessions at inactivity gaps, duration spans and event caps (the
//! rule is on [`sessionize`]).
//!
//! Grouping needs every request of an account before its sessions can be
//! cut, so this engine holds the requests (not the raw lines) of the whole
//! log in memory, grouped by account. `crate::engine` (feature
//! `datafusion`) runs the same rule out of core.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    reader::{JsonlReader, Record},
    schema::{timestamp, Account, Event, Session},
};

/// One line of a gateway's raw request log: the `events[]` fields plus
/// `account_id` and optionally the `account` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawRequest {
    /// The API account that sent the request.
    pub account_id: String,
    /// Account metadata, if the gateway logs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Request time.
    #[serde(with = "timestamp")]
    pub ts: DateTime<Utc>,
    /// The user's prompt.
    pub prompt: String,
    /// Client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Autonomous system number of `ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Client user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Model queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_tokens: Option<u32>,
}

impl RawRequest {
    /// The request of `account_id` described by `event`.
    pub fn new(account_id: String, account: Option<Account>, event: Event) -> Self {
        RawRequest {
            account_id,
            account,
            ts: event.ts,
            prompt: event.prompt,
            ip: event.ip,
            asn: event.asn,
            user_agent: event.user_agent,
            model: event.model,
            response_tokens: event.response_tokens,
        }
    }

    /// Its event fields.
    pub fn event(&self) -> Event {
        self.clone().into_parts().2
    }

    /// Its account id, account object and event fields.
    pub fn into_parts(self) -> (String, Option<Account>, Event) {
        let event = Event {
            ts: self.ts,
            prompt: self.prompt,
            ip: self.ip,
            asn: self.asn,
            user_agent: self.user_agent,
            model: self.model,
            response_tokens: self.response_tokens,
        };
        (self.account_id, self.account, event)
    }
}

impl Record for RawRequest {
    fn validate(&mut self) -> Result<(), (String, String)> {
        if self.account_id.is_empty() {
            return Err(("account_id".into(), "must not be empty".into()));
        }
        if self.prompt.is_empty() {
            return Err(("prompt".into(), "must not be empty".into()));
        }
        Ok(())
    }
}

/// Reader of raw request logs.
pub type RawLogReader<R> = JsonlReader<RawRequest, R>;

/// Where sessions are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionizeConfig {
    /// A gap longer than this between two requests starts a new session.
    pub inactivity_gap: Duration,
    /// Activity without a gap is cut into spans of this length from its
    /// first request: a session spans less than this.
    pub max_duration: Duration,
    /// A session never holds more than this many requests.
    pub max_events: usize,
}

impl Default for SessionizeConfig {
    fn default() -> Self {
        SessionizeConfig {
            inactivity_gap: Duration::minutes(30),
            max_duration: Duration::hours(12),
            max_events: 1000,
        }
    }
}

/// Command-line flags of the sessionizer, shared by every binary that
/// reads raw request logs (feature `cli`).
#[cfg(feature = "cli")]
#[derive(Debug, Clone, clap::Args)]
pub struct SessionizeArgs {
    /// Inactivity gap that starts a new session, in minutes.
    #[arg(long, default_value_t = 30)]
    pub gap_minutes: i64,
    /// Longest session, in minutes (activity without a gap is cut into
    /// spans of this length from its first request).
    #[arg(long, default_value_t = 720)]
    pub max_session_minutes: i64,
    /// Most requests in one session.
    #[arg(long, default_value_t = 1000)]
    pub max_session_events: usize,
}

#[cfg(feature = "cli")]
impl SessionizeArgs {
    /// The validated config (every limit must be positive).
    pub fn config(&self) -> Result<SessionizeConfig, String> {
        if self.gap_minutes <= 0 || self.max_session_minutes <= 0 || self.max_session_events == 0 {
            return Err(
                "--gap-minutes, --max-session-minutes and --max-session-events must be positive"
                    .into(),
            );
        }
        Ok(SessionizeConfig {
            inactivity_gap: Duration::minutes(self.gap_minutes),
            max_duration: Duration::minutes(self.max_session_minutes),
            max_events: self.max_session_events,
        })
    }
}

/// Reads a raw request log (JSONL, gzip or Parquet) under `policy` and sessionizes
/// it. Holds the whole log in memory (requests are grouped by account).
pub fn sessionize_file(
    path: &std::path::Path,
    config: &SessionizeConfig,
    policy: crate::BadLinePolicy,
) -> Result<(Vec<Session>, crate::ReadStats), crate::DataError> {
    let mut reader = crate::RecordSource::<RawRequest>::open(path, policy)?;
    let mut requests = Vec::new();
    for r in reader.by_ref() {
        requests.push(r?);
    }
    Ok((sessionize(requests, config), reader.stats().clone()))
}

/// Groups raw requests into sessions.
///
/// Per account, requests are ordered by (time, prompt) and cut in three
/// steps, each expressible in SQL (`datasets/sql/sessionize.sql` runs the
/// same rule on DataFusion):
/// 1. an *island* ends where the gap to the next request exceeds the
///    inactivity gap;
/// 2. an island is split into spans of `max_duration` from its first
///    request (span = elapsed / max_duration, rounded down);
/// 3. a span is split into chunks of `max_events` requests.
///
/// Sessions of an account are numbered in time order: `"{account_id}#{n}"`.
/// Output is ordered by (start time, account_id, session_id), so the same
/// requests in any order give the same sessions. The account object of a
/// session is that of the account's latest request (by time, then prompt)
/// that carries one.
pub fn sessionize(
    requests: impl IntoIterator<Item = RawRequest>,
    config: &SessionizeConfig,
) -> Vec<Session> {
    type Latest = Option<(DateTime<Utc>, String, Account)>;
    let mut by_account: BTreeMap<String, (Latest, Vec<Event>)> = BTreeMap::new();
    for r in requests {
        let (account_id, account, event) = r.into_parts();
        let entry = by_account.entry(account_id).or_default();
        if let Some(account) = account {
            let newer = entry
                .0
                .as_ref()
                .is_none_or(|(ts, prompt, _)| (&event.ts, &event.prompt) >= (ts, prompt));
            if newer {
                entry.0 = Some((event.ts, event.prompt.clone(), account));
            }
        }
        entry.1.push(event);
    }
    let mut sessions = Vec::new();
    for (account_id, (latest, mut events)) in by_account {
        events.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.prompt.cmp(&b.prompt)));
        let account = latest.map(|l| l.2);
        for (index, events) in cut(events, config).into_iter().enumerate() {
            sessions.push(Session {
                session_id: format!("{account_id}#{index}"),
                account_id: account_id.clone(),
                label: None,
                campaign_id: None,
                archetype: None,
                account: account.clone(),
                events,
            });
        }
    }
    sessions.sort_by(|a, b| {
        a.start()
            .cmp(&b.start())
            .then_with(|| a.account_id.cmp(&b.account_id))
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    sessions
}

/// Microseconds of `d`, saturating.
fn micros(d: Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

/// One account's time-ordered events cut into sessions (island, span,
/// chunk; see [`sessionize`]).
fn cut(events: Vec<Event>, config: &SessionizeConfig) -> Vec<Vec<Event>> {
    let max_duration = micros(config.max_duration).max(1);
    let mut sessions: Vec<Vec<Event>> = Vec::new();
    let (mut island, mut island_start) = (0usize, None);
    let mut previous: Option<DateTime<Utc>> = None;
    let mut span_events = 0usize;
    let mut current_key = None;
    for event in events {
        if previous.is_some_and(|p| event.ts - p > config.inactivity_gap) {
            island += 1;
            island_start = None;
        }
        let start = *island_start.get_or_insert(event.ts);
        let span = micros(event.ts - start) / max_duration;
        if current_key.is_none_or(|(i, s, _)| (i, s) != (island, span)) {
            span_events = 0;
        }
        let key = (island, span, span_events / config.max_events.max(1));
        span_events += 1;
        if current_key != Some(key) {
            sessions.push(Vec::new());
            current_key = Some(key);
        }
        previous = Some(event.ts);
        sessions
            .last_mut()
            .expect("a session was started")
            .push(event);
    }
    sessions
}
