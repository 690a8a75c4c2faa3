//! Feature values on a hand-computed session.

use chrono::{DateTime, Duration, Utc};
use datasets::{session_features, Account, Event, Session, FEATURE_NAMES};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn event(
    ts: DateTime<Utc>,
    prompt: &str,
    ip: &str,
    asn: u32,
    ua: Option<&str>,
    tokens: Option<u32>,
) -> Event {
    Event {
        ts,
        prompt: prompt.into(),
        ip: Some(ip.into()),
        asn: Some(asn),
        user_agent: ua.map(str::to_string),
        model: None,
        response_tokens: tokens,
    }
}

fn hand_made() -> Session {
    let t0 = at("2026-02-10T03:00:00Z");
    Session {
        session_id: "s".into(),
        account_id: "a".into(),
        label: None,
        campaign_id: None,
        archetype: None,
        account: Some(Account {
            created_at: Some(at("2026-02-09T03:00:00Z")),
            tier: Some("edu".into()),
            verified: Some(false),
            region: Some("DE".into()),
        }),
        events: vec![
            event(
                t0,
                "Solve step by step: 2+2",
                "1.1.1.1",
                16509,
                Some("python-requests/2.31.0"),
                Some(100),
            ),
            event(
                t0 + Duration::seconds(1),
                "def f(): pass",
                "1.1.1.1",
                16509,
                Some("Mozilla/5.0 (X11)"),
                Some(300),
            ),
            event(
                t0 + Duration::seconds(61),
                "Thought: call the tool",
                "2.2.2.2",
                7922,
                None,
                None,
            ),
        ],
    }
}

fn get(f: &[f32], name: &str) -> f32 {
    f[FEATURE_NAMES
        .iter()
        .position(|&n| n == name)
        .unwrap_or_else(|| panic!("no feature {name}"))]
}

#[test]
fn hand_computed_values() {
    let f = session_features(&hand_made());
    let expect = |name: &str, want: f64| {
        let got = f64::from(get(&f, name));
        assert!((got - want).abs() < 1e-4, "{name}: got {got}, want {want}");
    };
    expect("log_requests", 4f64.ln());
    expect("log_duration_min", (1.0 + 61.0 / 60.0f64).ln());
    expect("requests_per_minute", 3.0 / (61.0 / 60.0));
    expect("log_interarrival_mean_s", 31.5f64.ln());
    expect("interarrival_cv", 29.5 / 30.5);
    expect("burst_share", 0.5);
    expect("night_share", 1.0); // 04:00 local in DE
    expect("ips_per_request", 2.0 / 3.0);
    expect("asns_per_request", 2.0 / 3.0);
    expect("hosting_asn_share", 2.0 / 3.0);
    expect("log_account_age_days", 2f64.ln());
    expect("account_age_known", 1.0);
    expect("tier_edu", 1.0);
    expect("tier_free", 0.0);
    expect("tier_other", 0.0);
    expect("verified", 0.0);
    expect("verified_known", 1.0);
    expect("browser_ua_share", 1.0 / 3.0);
    expect("sdk_ua_share", 0.0);
    expect("scripted_ua_share", 1.0 / 3.0);
    expect("ua_missing_share", 1.0 / 3.0);
    expect("user_agents_per_request", 2.0 / 3.0);
    let lens = [23.0f64, 13.0, 22.0];
    let mean = lens.iter().sum::<f64>() / 3.0;
    let std = (lens.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    expect("log_prompt_chars_mean", (1.0 + mean).ln());
    expect("prompt_chars_cv", std / mean);
    expect("log_prompt_chars_max", 24f64.ln());
    expect("template_share", 0.0);
    expect("reasoning_request_share", 1.0 / 3.0);
    expect("tool_trace_share", 1.0 / 3.0);
    expect("code_request_share", 1.0 / 3.0);
    expect("log_response_tokens_mean", 201f64.ln());
    assert!(get(&f, "mean_pairwise_jaccard") < 0.1);
    assert_eq!(get(&f, "near_duplicate_share"), 0.0);
}

#[test]
fn templated_prompts_are_near_duplicates() {
    let mut s = hand_made();
    let t0 = s.events[0].ts;
    s.events = (0..5)
        .map(|i| {
            event(
                t0 + Duration::seconds(i * 3),
                &format!("You are an expert. Think step by step and show every intermediate step before the final answer. Problem: what is {i} plus {i}?"),
                "1.1.1.1",
                16509,
                None,
                None,
            )
        })
        .collect();
    let f = session_features(&s);
    assert_eq!(get(&f, "template_share"), 1.0);
    assert_eq!(get(&f, "near_duplicate_share"), 1.0);
    assert!(get(&f, "mean_pairwise_jaccard") > 0.6);
    assert_eq!(get(&f, "reasoning_request_share"), 1.0);
}

#[test]
fn unknown_account_fields_give_neutral_values() {
    let mut s = hand_made();
    s.account = None;
    let f = session_features(&s);
    for name in [
        "account_age_known",
        "verified_known",
        "tier_other",
        "tier_edu",
        "verified",
    ] {
        assert_eq!(get(&f, name), 0.0, "{name}");
    }
    // No region: UTC, so 03:00 is still night.
    assert_eq!(get(&f, "night_share"), 1.0);
}

#[test]
fn every_value_is_finite_for_a_single_event_session() {
    let mut s = hand_made();
    s.events.truncate(1);
    let f = session_features(&s);
    assert!(f.iter().all(|v| v.is_finite()));
    assert_eq!(get(&f, "interarrival_cv"), 0.0);
    assert_eq!(get(&f, "requests_per_minute"), 1.0);
}
