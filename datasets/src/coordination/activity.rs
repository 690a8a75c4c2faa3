//! Per-account activity in the window: which sessions belong to which
//! account, when it was active, when it was created, and which fields its
//! requests carried at all.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::keys::AccountIndex;
use crate::{asn, schema::Session};

/// What the window shows of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountActivity {
    /// The account.
    pub account_id: String,
    /// Its sessions in the window.
    pub sessions: u32,
    /// Its requests in the window.
    pub requests: u32,
    /// Its first request.
    pub first_seen: DateTime<Utc>,
    /// Its last request.
    pub last_seen: DateTime<Utc>,
    /// Account creation time, when any session carried it.
    pub created_at: Option<DateTime<Utc>>,
    /// Some request carried an `ip`.
    pub has_ip: bool,
    /// Some request carried an `asn`.
    pub has_asn: bool,
    /// Some request carried a `user_agent`.
    pub has_user_agent: bool,
    /// Some request carried a `model`.
    pub has_model: bool,
    /// Identity verification, when any session carried it.
    pub verified: Option<bool>,
    /// Account tier, when any session carried it.
    pub tier: Option<String>,
    /// Distinct ASNs its requests came from.
    pub asns: Vec<u32>,
    /// Its requests from hosting ASNs.
    pub hosting_requests: u32,
}

impl AccountActivity {
    fn new(session: &Session) -> Self {
        AccountActivity {
            account_id: session.account_id.clone(),
            sessions: 0,
            requests: 0,
            first_seen: session.start(),
            last_seen: session.end(),
            created_at: None,
            has_ip: false,
            has_asn: false,
            has_user_agent: false,
            has_model: false,
            verified: None,
            tier: None,
            asns: Vec::new(),
            hosting_requests: 0,
        }
    }

    fn absorb(&mut self, session: &Session) {
        self.sessions += 1;
        self.requests += session.events.len() as u32;
        self.first_seen = self.first_seen.min(session.start());
        self.last_seen = self.last_seen.max(session.end());
        if let Some(account) = &session.account {
            if let Some(created) = account.created_at {
                self.created_at = Some(self.created_at.map_or(created, |c| c.min(created)));
            }
            self.verified = self.verified.or(account.verified);
            self.tier = self.tier.take().or_else(|| account.tier.clone());
        }
        for e in &session.events {
            self.has_ip |= e.ip.is_some();
            self.has_user_agent |= e.user_agent.is_some();
            self.has_model |= e.model.is_some();
            if let Some(asn) = e.asn {
                self.has_asn = true;
                self.hosting_requests += u32::from(asn::is_hosting(asn));
                if let Err(at) = self.asns.binary_search(&asn) {
                    self.asns.insert(at, asn);
                }
            }
        }
    }

    /// Hours from creation to the first request in the window (`None`
    /// when the creation time is unknown; 0 when it lies after the first
    /// request, which a clock skew can cause).
    pub fn hours_to_first_use(&self) -> Option<f64> {
        self.created_at
            .map(|c| ((self.first_seen - c).num_seconds() as f64 / 3600.0).max(0.0))
    }

    /// Created at most `fresh_days` before its first request. An account
    /// without a creation time is never fresh.
    pub fn is_fresh(&self, fresh_days: f64) -> bool {
        self.hours_to_first_use()
            .is_some_and(|h| h <= fresh_days * 24.0)
    }

    /// Names of the fields no request (or no session) of the account
    /// carried, in a fixed order.
    pub fn missing_fields(&self) -> Vec<&'static str> {
        [
            ("ip", self.has_ip),
            ("asn", self.has_asn),
            ("user_agent", self.has_user_agent),
            ("created_at", self.created_at.is_some()),
            ("model", self.has_model),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect()
    }
}

/// The window's accounts, in order of first appearance, and the account
/// of every session.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// Activity per account.
    pub activity: Vec<AccountActivity>,
    /// Account index of each input session.
    pub of_session: Vec<AccountIndex>,
}

impl Accounts {
    /// Groups `sessions` (events sorted by time) by account.
    pub fn build(sessions: &[&Session]) -> Self {
        let mut index: HashMap<&str, AccountIndex> = HashMap::new();
        let mut activity: Vec<AccountActivity> = Vec::new();
        let mut of_session = Vec::with_capacity(sessions.len());
        for s in sessions {
            let i = *index.entry(s.account_id.as_str()).or_insert_with(|| {
                activity.push(AccountActivity::new(s));
                (activity.len() - 1) as AccountIndex
            });
            activity[i as usize].absorb(s);
            of_session.push(i);
        }
        Accounts {
            activity,
            of_session,
        }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.activity.len()
    }

    /// Whether the window holds no account.
    pub fn is_empty(&self) -> bool {
        self.activity.is_empty()
    }
}
