//! Small hand-built worlds whose answer is known, taken through the
//! account layer as `train eval` takes a window: evidence, an account
//! scorer fitted on other worlds of the same kinds (train and validation
//! seeds), its verdicts, the corroboration rule and the operator and
//! template campaigns. Session
//! scores are given (no encoder), and the benign look-alikes get high
//! ones too: a lab's chain-of-thought benchmark reads like a harvest.

use chrono::{DateTime, Duration, TimeZone, Utc};
use datasets::{coordination::EvidenceParams, Account, Event, Label, Session};
use models::account_model::AccountVerdict;
use train::{
    accounts::{account_rows, fit_account_model, AccountFitConfig},
    corroboration::{link_and_corroborate, SessionCorroboration},
};

/// Who sends a session.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// 60 fresh accounts on a hosting proxy pool, one template.
    ProxyOperator,
    /// 200 accounts of 2-4 requests created on a release day, on a
    /// proxy pool of their own.
    LowAndSlow,
    /// 40 classmates on one campus network, the same homework.
    Classmate,
    /// One lab account and a three-account team on one egress, a
    /// chain-of-thought benchmark harness.
    Lab,
    /// People on their own networks.
    Chat,
}

const KINDS: [(Kind, usize); 5] = [
    (Kind::ProxyOperator, 60),
    (Kind::LowAndSlow, 200),
    (Kind::Classmate, 40),
    (Kind::Lab, 4),
    (Kind::Chat, 300),
];

/// A deterministic draw in [0, 1) from `seed` and `i`.
fn draw(seed: u64, i: usize) -> f32 {
    let x = xxhash_rust::xxh3::xxh3_64(&[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat());
    (x % 10_000) as f32 / 10_000.0
}

/// Prompt, IP, ASN, user agent, creation time and verification of
/// request `k` of account `i` of `kind`.
struct Profile {
    prompt: String,
    ip: String,
    asn: u32,
    user_agent: &'static str,
    created: DateTime<Utc>,
    verified: bool,
}

fn profile(kind: Kind, i: usize, k: usize, seed: u64, start: DateTime<Utc>) -> Profile {
    let release = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let task = format!(
        "question {} about {} items and {} boxes",
        7 * i + k,
        3 * k + i,
        i % 11
    );
    match kind {
        Kind::ProxyOperator => Profile {
            prompt: format!("Reason with full rigour and show each intermediate step before the answer. {task}"),
            ip: format!("198.51.{}.{}", 100 + (i + k) % 3, 10 + (7 * i + k) % 40),
            asn: 14061,
            user_agent: "python-httpx/0.27.2",
            created: start - Duration::hours(3 + (i % 5) as i64),
            verified: false,
        },
        Kind::LowAndSlow => Profile {
            prompt: format!("Think it through one step at a time and give the final result last. {task}"),
            ip: format!("203.0.{}.{}", 113 + (i + k) % 2, 20 + (5 * i + k) % 60),
            asn: 16509,
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:134.0) Gecko/20100101 Firefox/134.0",
            created: release + Duration::minutes((i % 180) as i64),
            verified: false,
        },
        Kind::Classmate => Profile {
            prompt: format!(
                "hw 4 problem {}: a train leaves at {} and travels {} km, when does it arrive? pls explain",
                1 + k % 3,
                i % 12,
                40 + k
            ),
            ip: format!("128.32.14.{}", 2 + i % 5),
            asn: 25,
            user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Safari/605.1.15",
            created: start - Duration::days(200 + (seed % 3) as i64 * 30 + i as i64),
            verified: i.is_multiple_of(2),
        },
        Kind::Lab => Profile {
            prompt: format!(
                "Answer the following multiple choice question. Think step by step before answering.\n{task}\nA) 1 B) 2 C) 3 D) 4"
            ),
            ip: "192.0.2.40".to_string(),
            asn: 7018,
            user_agent: "python-requests/2.32.3",
            created: start - Duration::days(400 + i as i64),
            verified: true,
        },
        Kind::Chat => Profile {
            prompt: format!("my garden note {i}: {k} roses need water, what else should I plant this spring"),
            ip: format!("{}.{}.{}.4", 11 + i % 200, (i * 7) % 250, k % 3),
            asn: 3000 + (i % 40) as u32,
            user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36",
            created: start - Duration::days(30 + (i * 13 % 900) as i64),
            verified: i.is_multiple_of(3),
        },
    }
}

/// The score the session model gave: operators middling to high, most
/// people low, but labs high and some classmates over the flag level.
fn session_score(kind: Kind, i: usize, seed: u64) -> f32 {
    let u = draw(seed, i);
    match kind {
        Kind::ProxyOperator => 0.3 + 0.65 * u,
        Kind::LowAndSlow => 0.15 + 0.7 * u,
        Kind::Classmate => {
            if i.is_multiple_of(10) {
                0.75
            } else {
                0.1 * u
            }
        }
        Kind::Lab => 0.7 + 0.25 * u,
        Kind::Chat => {
            if i.is_multiple_of(50) {
                0.8
            } else {
                0.05 * u
            }
        }
    }
}

/// One world: its sessions, their scores and each session's kind.
fn world(seed: u64) -> (Vec<Session>, Vec<f32>, Vec<Kind>) {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let (mut sessions, mut scores, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    for (kind, n) in KINDS {
        for i in 0..n {
            let id = format!("{kind:?}-{seed}-{i}");
            let start = match kind {
                Kind::Classmate => t0 + Duration::hours((i % 5) as i64 * 24 + (i % 7) as i64),
                Kind::LowAndSlow => t0 + Duration::minutes(97 * i as i64),
                _ => t0 + Duration::minutes(13 * i as i64),
            };
            let requests = match kind {
                Kind::LowAndSlow => 2 + i % 3,
                Kind::Lab => 12,
                _ => 3,
            };
            let events: Vec<Event> = (0..requests)
                .map(|k| {
                    let p = profile(kind, i, k, seed, start);
                    Event {
                        ts: start + Duration::minutes(k as i64 * 2),
                        prompt: p.prompt,
                        ip: Some(p.ip),
                        asn: Some(p.asn),
                        user_agent: Some(p.user_agent.to_string()),
                        model: None,
                        response_tokens: None,
                    }
                })
                .collect();
            let p = profile(kind, i, 0, seed, start);
            let extraction = matches!(kind, Kind::ProxyOperator | Kind::LowAndSlow);
            sessions.push(Session {
                session_id: format!("s-{id}"),
                account_id: id,
                label: Some(if extraction {
                    Label::Extraction
                } else {
                    Label::Benign
                }),
                campaign_id: extraction.then(|| format!("{kind:?}")),
                archetype: (!extraction).then(|| format!("{kind:?}")),
                account: Some(Account {
                    created_at: Some(p.created),
                    verified: Some(p.verified),
                    ..Account::default()
                }),
                events,
            });
            scores.push(session_score(kind, i, seed));
            kinds.push(kind);
        }
    }
    (sessions, scores, kinds)
}

#[test]
fn known_worlds_get_their_known_verdicts_and_campaigns() {
    let params = EvidenceParams::default().check().unwrap();
    let session_threshold = 0.7;
    let rows_of = |seed: u64| {
        let (sessions, scores, _) = world(seed);
        let refs: Vec<&Session> = sessions.iter().collect();
        account_rows(&refs, &scores, session_threshold, &params).rows
    };
    let model = fit_account_model(&rows_of(1), &rows_of(2), &AccountFitConfig::default()).unwrap();
    let (sessions, scores, kinds) = world(3);
    let refs: Vec<&Session> = sessions.iter().collect();
    let window = account_rows(&refs, &scores, session_threshold, &params);
    let verdicts = link_and_corroborate(
        &model,
        &refs,
        &window,
        &params,
        SessionCorroboration {
            flag: session_threshold,
            review: 0.3,
        },
    );
    let (decisions, linked) = (&verdicts.decisions, &verdicts.linked);
    // One session per account here, so account i is session i.
    let campaign_of = |a: usize| linked.iter().position(|(_, m)| m.contains(&a));
    let kinds = &kinds;
    let of_kind = |kind: Kind| (0..kinds.len()).filter(move |&a| kinds[a] == kind);
    for kind in [Kind::ProxyOperator, Kind::LowAndSlow] {
        let campaigns: Vec<Option<usize>> = of_kind(kind).map(campaign_of).collect();
        assert!(campaigns[0].is_some(), "{kind:?}: no campaign");
        assert!(
            campaigns.iter().all(|c| *c == campaigns[0]),
            "{kind:?} is not one campaign: {campaigns:?}"
        );
    }
    let flagged = of_kind(Kind::ProxyOperator)
        .filter(|&a| decisions[a].verdict == AccountVerdict::Flag)
        .count();
    assert_eq!(flagged, 60, "proxy operators flagged");
    for kind in [Kind::Classmate, Kind::Lab, Kind::Chat] {
        let flags: Vec<String> = of_kind(kind)
            .filter(|&a| decisions[a].verdict == AccountVerdict::Flag)
            .map(|a| format!("{} {:.3}", decisions[a].account_id, decisions[a].score))
            .collect();
        assert!(flags.is_empty(), "{kind:?} flagged: {flags:?}");
    }
    // And every classmate scores under every proxy operator.
    let lowest_operator = of_kind(Kind::ProxyOperator)
        .map(|a| decisions[a].score)
        .fold(f32::INFINITY, f32::min);
    for a in of_kind(Kind::Classmate) {
        assert!(
            decisions[a].score < lowest_operator,
            "{} scores {} >= {lowest_operator}",
            decisions[a].account_id,
            decisions[a].score
        );
    }
}
