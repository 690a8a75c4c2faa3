//! Shared infrastructure: IP addresses and prefixes used by several
//! accounts, and ASN + user-agent fingerprints shared by fresh accounts.

use std::net::IpAddr;

use super::{
    activity::Accounts,
    keys::{key_of, KeyAccounts},
    ValidEvidenceParams,
};
use crate::{asn, features::ratio, schema::Session};

/// Infrastructure evidence of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InfraEvidence {
    /// Most other accounts seen on one of its IP addresses.
    pub ip_peers: u32,
    /// Most other accounts seen in one of its IP prefixes.
    pub prefix_peers: u32,
    /// Share of its requests from a prefix other accounts also used.
    pub shared_prefix_share: f32,
    /// Share of the requests on its shared prefixes that come from
    /// hosting ASNs (0 when it shares no prefix).
    pub shared_prefix_hosting_share: f32,
    /// Most other fresh accounts sharing one of its ASN + user-agent
    /// fingerprints (0 unless the account itself is fresh).
    pub fingerprint_peers: u32,
}

/// The network prefix of `ip` (`/ipv4_prefix` or `/ipv6_prefix`), as
/// text; an address that does not parse is its own prefix.
pub fn prefix_of(ip: &str, ipv4_prefix: u8, ipv6_prefix: u8) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(ipv4_prefix))
                .unwrap_or(0);
            format!(
                "{}/{ipv4_prefix}",
                std::net::Ipv4Addr::from(u32::from(a) & mask)
            )
        }
        Ok(IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(ipv6_prefix))
                .unwrap_or(0);
            format!(
                "{}/{ipv6_prefix}",
                std::net::Ipv6Addr::from(u128::from(a) & mask)
            )
        }
        Err(_) => ip.to_string(),
    }
}

/// Key of the prefix of `ip`.
pub fn prefix_key(ip: &str, params: &ValidEvidenceParams) -> u64 {
    key_of(&[
        b"prefix",
        prefix_of(ip, params.ipv4_prefix, params.ipv6_prefix).as_bytes(),
    ])
}

/// Joins of every request's IP, prefix and (for fresh accounts)
/// fingerprint.
struct InfraJoins {
    ips: KeyAccounts,
    prefixes: KeyAccounts,
    fingerprints: KeyAccounts,
}

fn joins(sessions: &[&Session], accounts: &Accounts, params: &ValidEvidenceParams) -> InfraJoins {
    let mut j = InfraJoins {
        ips: KeyAccounts::default(),
        prefixes: KeyAccounts::default(),
        fingerprints: KeyAccounts::default(),
    };
    for (s, &a) in sessions.iter().zip(&accounts.of_session) {
        let fresh = accounts.activity[a as usize].is_fresh(params.fresh_days);
        for e in &s.events {
            if let Some(ip) = &e.ip {
                j.ips.add(key_of(&[b"ip", ip.as_bytes()]), a);
                j.prefixes.add(prefix_key(ip, params), a);
            }
            if let (true, Some(asn), Some(ua)) = (fresh, e.asn, &e.user_agent) {
                j.fingerprints
                    .add(key_of(&[b"fp", &asn.to_le_bytes(), ua.as_bytes()]), a);
            }
        }
    }
    j.ips.finish();
    j.prefixes.finish();
    j.fingerprints.finish();
    j
}

/// Per-account request tallies on shared prefixes.
#[derive(Default, Clone, Copy)]
struct SharedTally {
    requests: u32,
    shared: u32,
    shared_hosting: u32,
}

fn shared_prefix_tallies(
    sessions: &[&Session],
    accounts: &Accounts,
    prefixes: &KeyAccounts,
    params: &ValidEvidenceParams,
) -> Vec<SharedTally> {
    let mut tallies = vec![SharedTally::default(); accounts.len()];
    for (s, &a) in sessions.iter().zip(&accounts.of_session) {
        let t = &mut tallies[a as usize];
        for e in &s.events {
            t.requests += 1;
            let Some(ip) = &e.ip else { continue };
            if prefixes.accounts(prefix_key(ip, params)) >= 2 {
                t.shared += 1;
                t.shared_hosting += u32::from(e.asn.is_some_and(asn::is_hosting));
            }
        }
    }
    tallies
}

/// Infrastructure evidence of every account (index order of `accounts`).
pub fn infra_evidence(
    sessions: &[&Session],
    accounts: &Accounts,
    params: &ValidEvidenceParams,
) -> Vec<InfraEvidence> {
    let n = accounts.len();
    let j = joins(sessions, accounts, params);
    let ip_peers = j.ips.max_peers(n);
    let prefix_peers = j.prefixes.max_peers(n);
    let fingerprint_peers = j.fingerprints.max_peers(n);
    let tallies = shared_prefix_tallies(sessions, accounts, &j.prefixes, params);
    (0..n)
        .map(|i| {
            let t = tallies[i];
            InfraEvidence {
                ip_peers: ip_peers[i],
                prefix_peers: prefix_peers[i],
                shared_prefix_share: ratio(t.shared as usize, t.requests as usize),
                shared_prefix_hosting_share: ratio(t.shared_hosting as usize, t.shared as usize),
                fingerprint_peers: fingerprint_peers[i],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(prefix_of("203.0.113.77", 24, 48), "203.0.113.0/24");
        assert_eq!(prefix_of("203.0.113.77", 16, 48), "203.0.0.0/16");
        assert_eq!(
            prefix_of("2a00:1450:4001:81b::200e", 24, 48),
            "2a00:1450:4001::/48"
        );
        assert_eq!(prefix_of("not an ip", 24, 48), "not an ip");
    }
}
