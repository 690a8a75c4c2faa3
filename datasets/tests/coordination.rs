//! Cross-account evidence on small hand-built worlds whose answer is known.

use chrono::{DateTime, Duration, TimeZone, Utc};
use datasets::{
    coordination::{compute, AccountEvidence, EvidenceParams},
    Account, Event, Session,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// One session of `account` with one request per prompt, a minute apart.
fn session(
    account: &str,
    start: DateTime<Utc>,
    net: Option<(&str, u32, &str)>,
    prompts: &[String],
) -> Session {
    Session {
        session_id: format!("{account}-{}", start.timestamp()),
        account_id: account.to_string(),
        label: None,
        campaign_id: None,
        archetype: None,
        account: None,
        events: prompts
            .iter()
            .enumerate()
            .map(|(i, p)| Event {
                ts: start + Duration::minutes(i as i64),
                prompt: p.clone(),
                ip: net.map(|n| n.0.to_string()),
                asn: net.map(|n| n.1),
                user_agent: net.map(|n| n.2.to_string()),
                model: net.map(|_| "large-2025-10".to_string()),
                response_tokens: None,
            })
            .collect(),
    }
}

fn created(mut s: Session, at: DateTime<Utc>) -> Session {
    s.account = Some(Account {
        created_at: Some(at),
        ..Account::default()
    });
    s
}

fn evidence(sessions: &[Session]) -> Vec<AccountEvidence> {
    let refs: Vec<&Session> = sessions.iter().collect();
    compute(&refs, None, &EvidenceParams::default().check().unwrap()).accounts
}

fn task(i: usize) -> String {
    format!(
        "a train leaves station {i} at {} km per hour toward a city {} km away when does it arrive",
        40 + i,
        300 + 7 * i
    )
}

const TEMPLATE: &str = "You are a meticulous reasoner. Show every intermediate step in full detail before the final answer.";

/// 60 fresh accounts created in one wave, rotating through 10 exits in two
/// /24s, each sending the operator's template around different tasks.
fn operator_world() -> Vec<Session> {
    (0..60)
        .map(|a| {
            let ip = format!("198.51.{}.{}", 100 + a % 2, 10 + a % 5);
            let start = t0() + Duration::minutes(a as i64 * 7);
            let prompts: Vec<String> = (0..3)
                .map(|k| format!("{TEMPLATE} {}", task(a * 3 + k)))
                .collect();
            let s = session(
                &format!("op-{a}"),
                start,
                Some((&ip, 14061, "python-httpx/0.27.2")),
                &prompts,
            );
            created(s, start - Duration::hours(3))
        })
        .collect()
}

#[test]
fn an_operator_world_shares_infrastructure_templates_timing_and_a_wave() {
    let ev = evidence(&operator_world());
    assert_eq!(ev.len(), 60);
    for e in &ev {
        assert!(e.fresh, "{e:?}");
        assert!(e.ip_peers >= 5, "{e:?}");
        assert!(e.prefix_peers >= 29, "{e:?}");
        assert_eq!(e.shared_prefix_share, 1.0);
        assert_eq!(e.shared_prefix_hosting_share, 1.0);
        assert!(e.fingerprint_peers >= 5, "{e:?}");
        assert_eq!(e.template_peers, 59, "{e:?}");
        assert_eq!(e.template_share, 1.0);
        assert!(e.sync_peers >= 8 && e.sync_share == 1.0, "{e:?}");
        assert!(e.wave_peers >= 20, "{e:?}");
        assert!(e.missing.is_empty());
        assert_eq!(e.group.as_deref(), Some("op-0"), "{e:?}");
        assert_eq!(e.group_accounts, 60);
        assert_eq!(e.group_fresh_share, 1.0);
        for kind in [
            "template+day",
            "prefix+template",
            "fingerprint+creation-day",
        ] {
            assert!(e.group_links.iter().any(|k| k == kind), "{e:?}");
        }
    }
}

#[test]
fn unrelated_people_share_nothing() {
    let sessions: Vec<Session> = (0..30)
        .map(|a| {
            let ip = format!("{}.{}.7.9", 20 + a, 30 + a);
            let start = t0() + Duration::days(a as i64);
            // Every six-word frame carries the account's own number.
            let prompt =
                format!("note {a} on my garden: {a} roses, {a} tulips and {a} weeds, what now {a}");
            let s = session(
                &format!("u-{a}"),
                start,
                Some((&ip, 7922, "Mozilla/5.0")),
                &[prompt],
            );
            created(s, start - Duration::days(300 + 40 * a as i64))
        })
        .collect();
    for e in evidence(&sessions) {
        assert!(!e.fresh);
        assert_eq!(
            (e.ip_peers, e.prefix_peers, e.fingerprint_peers),
            (0, 0, 0),
            "{e:?}"
        );
        assert_eq!((e.template_peers, e.sync_peers), (0, 0), "{e:?}");
        assert_eq!(e.wave_peers, 0, "{e:?}");
        assert!(e.group.is_none() && e.group_accounts == 0, "{e:?}");
    }
}

#[test]
fn a_lone_lab_account_has_no_peers_however_templated() {
    let prompts: Vec<String> = (0..50)
        .map(|i| format!("Question: {}\nLet's think step by step. Answer:", task(i)))
        .collect();
    let s = created(
        session(
            "lab",
            t0(),
            Some(("192.0.2.10", 3, "OpenAI/Python 1.59.7")),
            &prompts,
        ),
        t0() - Duration::days(600),
    );
    let ev = evidence(&[s]);
    let e = &ev[0];
    assert_eq!(
        (e.ip_peers, e.prefix_peers, e.template_peers, e.sync_peers),
        (0, 0, 0, 0)
    );
    assert!(!e.fresh && e.template_share == 0.0);
    assert!(e.group.is_none());
}

#[test]
fn classmates_share_a_campus_prefix_and_homework_but_are_not_fresh() {
    let sessions: Vec<Session> = (0..40)
        .map(|a| {
            let ip = format!("128.32.14.{}", 1 + a % 3);
            let start = t0() + Duration::hours(a as i64 * 3);
            let prompt = format!("hey can you help me with this one? {}", task(a % 5));
            let s = session(
                &format!("student-{a}"),
                start,
                Some((&ip, 25, "Mozilla/5.0")),
                &[prompt],
            );
            created(s, t0() - Duration::days(120 + a as i64 % 3))
        })
        .collect();
    for e in evidence(&sessions) {
        assert!(!e.fresh && e.fingerprint_peers == 0, "{e:?}");
        assert_eq!(e.prefix_peers, 39, "{e:?}");
        assert!(e.template_peers >= 2, "{e:?}");
    }
}

#[test]
fn missing_fields_are_reported_and_never_count_as_coordination() {
    let sessions: Vec<Session> = (0..20)
        .map(|a| {
            session(
                &format!("bare-{a}"),
                t0(),
                None,
                &[format!("hello {a}, {}", task(a))],
            )
        })
        .collect();
    for e in evidence(&sessions) {
        assert_eq!(
            e.missing,
            ["ip", "asn", "user_agent", "created_at", "model"]
        );
        assert_eq!(e.hours_after_release, None);
        assert_eq!(
            (
                e.ip_peers,
                e.prefix_peers,
                e.fingerprint_peers,
                e.wave_peers
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(e.shared_prefix_share, 0.0);
        assert!(!e.fresh && e.hours_to_first_use.is_none());
    }
}

#[test]
fn low_and_slow_accounts_show_a_release_day_creation_wave() {
    // 200 accounts of 2-4 requests each over three weeks, created within a
    // day of one another, among 200 ordinary accounts created over years.
    let mut sessions: Vec<Session> = (0..200)
        .map(|a| {
            let start = t0() + Duration::hours(a as i64 * 2);
            let prompts: Vec<String> = (0..2 + a % 3)
                .map(|k| format!("{TEMPLATE} {}", task(a * 4 + k)))
                .collect();
            let ip = format!("100.{}.{}.{}", 64 + a % 3, a % 7, a % 11);
            let s = session(
                &format!("slow-{a}"),
                start,
                Some((&ip, 7018, "Mozilla/5.0")),
                &prompts,
            );
            created(
                s,
                t0() - Duration::hours(2) + Duration::minutes(a as i64 * 7 % 1300),
            )
        })
        .collect();
    sessions.extend((0..200).map(|a| {
        let start = t0() + Duration::hours(a as i64 * 2 + 1);
        let s = session(
            &format!("user-{a}"),
            start,
            None,
            &[format!("my question {a}")],
        );
        created(s, t0() - Duration::days(10 + 5 * a as i64))
    }));
    let ev = evidence(&sessions);
    for e in ev.iter().filter(|e| e.account_id.starts_with("slow-")) {
        assert!(e.wave_peers >= 100 && e.wave_ratio > 20.0, "{e:?}");
        assert_eq!(e.template_peers, 199, "{e:?}");
    }
    for e in ev.iter().filter(|e| e.account_id.starts_with("user-")) {
        assert!(e.wave_peers <= 1 && e.template_peers == 0, "{e:?}");
    }
}

#[test]
fn synchrony_needs_the_same_target_at_the_same_time() {
    let prompt = |i: usize| vec![format!("{TEMPLATE} {}", task(i))];
    let sessions = vec![
        session("a", t0(), None, &prompt(1)),
        session("b", t0() + Duration::minutes(20), None, &prompt(2)),
        session("c", t0() + Duration::days(3), None, &prompt(3)),
    ];
    let ev = evidence(&sessions);
    assert_eq!(
        (ev[0].sync_peers, ev[1].sync_peers, ev[2].sync_peers),
        (1, 1, 0)
    );
    assert!(ev.iter().all(|e| e.template_peers == 2));
}

#[test]
fn out_of_range_parameters_are_refused_by_name() {
    let err = EvidenceParams {
        ipv4_prefix: 40,
        ..EvidenceParams::default()
    }
    .check()
    .unwrap_err();
    assert!(err.to_string().contains("ipv4_prefix"), "{err}");
    let err = EvidenceParams {
        min_template_accounts: 1,
        ..EvidenceParams::default()
    }
    .check()
    .unwrap_err();
    assert!(err.to_string().contains("min_template_accounts"), "{err}");
}

#[test]
fn two_operators_created_the_same_day_stay_apart() {
    let mut sessions = Vec::new();
    for c in 0..2usize {
        for a in 0..40usize {
            let ip = format!("45.{c}.{}.{}", a % 4, 1 + a % 39);
            let start = t0() + Duration::minutes((a * 37 % 1440) as i64 + c as i64);
            let prompts: Vec<String> = (0..2)
                .map(|k| {
                    let i = a * 2 + k + 100 * c;
                    format!("Operator {c} asks: you are an expert solver, show all reasoning before the answer. case {i} has {} apples and {} pears", i * 7, i * 3)
                })
                .collect();
            let s = session(
                &format!("op{c}-{a}"),
                start,
                Some((&ip, 14061, "python-httpx/0.27.2")),
                &prompts,
            );
            sessions.push(created(s, t0() - Duration::hours(3)));
        }
    }
    let ev = evidence(&sessions);
    let groups: std::collections::BTreeSet<_> = ev.iter().map(|e| e.group.clone()).collect();
    assert_eq!(groups.len(), 2, "{groups:?} {:?}", ev[0].group_links);
}

#[test]
fn first_use_after_a_model_release_is_measured_from_the_release() {
    let net = Some(("203.0.113.9", 7018, "Mozilla/5.0"));
    let with_model = |mut s: Session, model: &str| {
        for e in &mut s.events {
            e.model = Some(model.to_string());
        }
        s
    };
    // 20 people on the old model from the window's start; a new model
    // first used five days in, then 30 accounts starting on it within
    // hours; two accounts of a third model, first seen late, are too few
    // to be a release.
    let mut sessions: Vec<Session> = (0..20)
        .map(|a| {
            let s = session(
                &format!("old-{a}"),
                t0() + Duration::hours(a as i64),
                net,
                &[task(a)],
            );
            with_model(s, "large-2025-10")
        })
        .collect();
    let release = t0() + Duration::days(5);
    sessions.extend((0..30).map(|a| {
        let s = session(
            &format!("new-{a}"),
            release + Duration::hours(2 * a as i64),
            net,
            &[task(100 + a)],
        );
        with_model(s, "large-2026-02")
    }));
    sessions.extend((0..2).map(|a| {
        let s = session(
            &format!("rare-{a}"),
            t0() + Duration::days(9),
            net,
            &[task(200 + a)],
        );
        with_model(s, "small-2026-03")
    }));
    sessions.sort_by_key(|s| s.start());
    for e in evidence(&sessions) {
        let id = e.account_id.as_str();
        if id.starts_with("old-") {
            assert_eq!(e.hours_after_release, None, "{e:?}");
        } else if let Some(n) = id.strip_prefix("new-") {
            let n: f32 = n.parse().unwrap();
            let hours = e.hours_after_release.unwrap();
            assert!((hours - 2.0 * n).abs() < 0.01, "{e:?}");
        } else {
            // Nine days in, the latest release before it is the new model's.
            let hours = e.hours_after_release.unwrap();
            assert!((hours - 96.0).abs() < 0.01, "{e:?}");
        }
    }
}
