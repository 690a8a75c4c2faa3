//! The sessions record types of `docs/data-format.md`, with serde
//! mappings that read and write exactly that format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Ground-truth class of a session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Ordinary use, however heavy.
    Benign,
    /// Part of a distillation / capability-extraction campaign.
    Extraction,
}

impl Label {
    /// `"benign"` or `"extraction"`, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Benign => "benign",
            Label::Extraction => "extraction",
        }
    }
}

/// Account metadata attached to a session (every field optional).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Account creation time.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    /// `free`, `pro`, `edu`, `research`, `startup`, `enterprise` or another string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Whether identity verification passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// ISO 3166 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// One API request inside a session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Request time.
    #[serde(with = "timestamp")]
    pub ts: DateTime<Utc>,
    /// The user's prompt text (never empty).
    pub prompt: String,
    /// Client IPv4 or IPv6 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Autonomous system number of `ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Client user agent or SDK string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Which model was queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Size of the answer returned, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_tokens: Option<u32>,
}

/// The requests of one account inside one activity window.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Unique within a file.
    pub session_id: String,
    /// The API account that sent the requests.
    pub account_id: String,
    /// Ground truth; `None` means unlabeled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    /// Ground-truth campaign (extraction only). Never a model input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Simulator archetype that produced the session (an extra field the
    /// spec allows; used for per-archetype reports, never a model input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archetype: Option<String>,
    /// Account metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Requests in time order (non-empty).
    pub events: Vec<Event>,
}

impl Session {
    /// Checks the rules serde cannot express and sorts events by `ts`.
    /// Returns the offending field path and a message.
    pub fn validate(&mut self) -> Result<(), (String, String)> {
        if self.session_id.is_empty() {
            return Err(("session_id".into(), "must not be empty".into()));
        }
        if self.account_id.is_empty() {
            return Err(("account_id".into(), "must not be empty".into()));
        }
        if self.events.is_empty() {
            return Err(("events".into(), "must hold at least one event".into()));
        }
        if let Some(i) = self.events.iter().position(|e| e.prompt.is_empty()) {
            return Err((format!("events[{i}].prompt"), "must not be empty".into()));
        }
        self.events.sort_by_key(|e| e.ts);
        Ok(())
    }

    /// Time of the first event (events are sorted by [`Session::validate`]).
    pub fn start(&self) -> DateTime<Utc> {
        self.events[0].ts
    }

    /// Time of the last event.
    pub fn end(&self) -> DateTime<Utc> {
        self.events[self.events.len() - 1].ts
    }
}

/// RFC 3339 timestamps, written with millisecond precision and a `Z` suffix.
pub mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Formats a timestamp the way every writer in the project does.
    pub fn format(ts: &DateTime<Utc>) -> String {
        ts.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parses an RFC 3339 timestamp into UTC.
    pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("invalid RFC 3339 timestamp {text:?} ({e})"))
    }

    /// serde `serialize_with`.
    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    /// serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&text).map_err(D::Error::custom)
    }

    /// The same for optional timestamps (`null` or absent = `None`).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{de::Error, Deserialize, Deserializer, Serializer};

        /// serde `serialize_with`.
        pub fn serialize<S: Serializer>(
            ts: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => super::serialize(ts, s),
                None => s.serialize_none(),
            }
        }

        /// serde `deserialize_with`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
            text.map(|t| super::parse(&t).map_err(D::Error::custom))
                .transpose()
        }
    }
}
