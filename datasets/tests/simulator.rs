//! The simulator: determinism, labels, split disjointness, hard negatives.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    path::PathBuf,
};

use datasets::{
    session_features,
    simulator::{
        config::{SimConfig, SplitMode, SplitName},
        corpus::split_of_unit,
        simulate, SplitSessions,
    },
    Label, FEATURE_NAMES,
};

fn small_config() -> SimConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/small.toml");
    SimConfig::load(&path).unwrap()
}

fn feature(name: &str) -> usize {
    FEATURE_NAMES.iter().position(|&n| n == name).unwrap()
}

fn all(
    splits: &SplitSessions,
) -> impl Iterator<Item = (SplitName, &datasets::simulator::world::GeneratedSession)> {
    SplitName::ALL
        .into_iter()
        .flat_map(move |s| splits.get(s).iter().map(move |g| (s, g)))
}

#[test]
fn same_seed_same_sessions_other_seed_other_sessions() {
    let config = small_config();
    let a = simulate(&config).unwrap();
    let b = simulate(&config).unwrap();
    let lines = |s: &SplitSessions| -> Vec<String> {
        all(s)
            .map(|(_, g)| serde_json::to_string(&g.session).unwrap())
            .collect()
    };
    assert_eq!(lines(&a), lines(&b));
    let mut other = config.clone();
    other.seed += 1;
    assert_ne!(lines(&a), lines(&simulate(&other).unwrap()));
}

#[test]
fn sessions_are_valid_and_labeled() {
    let splits = simulate(&small_config()).unwrap();
    let mut ids = HashSet::new();
    for (_, g) in all(&splits) {
        let mut s = g.session.clone();
        s.validate().unwrap();
        assert_eq!(s, g.session, "events already sorted");
        assert!(ids.insert(s.session_id.clone()), "duplicate session id");
        let label = s.label.expect("every session labeled");
        assert_eq!(label == Label::Extraction, s.campaign_id.is_some());
        assert!(s.archetype.is_some());
        assert!(s
            .events
            .iter()
            .all(|e| e.ip.is_some() && e.asn.is_some() && e.user_agent.is_some()));
    }
}

#[test]
fn source_split_is_campaign_source_and_account_disjoint() {
    let config = small_config();
    assert_eq!(config.split.mode, SplitMode::Source);
    let splits = simulate(&config).unwrap();
    let mut campaigns: HashMap<SplitName, BTreeSet<String>> = HashMap::new();
    let mut accounts: HashMap<String, SplitName> = HashMap::new();
    let mut units_seen: HashMap<SplitName, BTreeSet<String>> = HashMap::new();
    for (split, g) in all(&splits) {
        if let Some(c) = &g.session.campaign_id {
            campaigns.entry(split).or_default().insert(c.clone());
        }
        let prev = accounts.insert(g.session.account_id.clone(), split);
        assert!(
            prev.is_none() || prev == Some(split),
            "account in two splits"
        );
        for unit in &g.units {
            assert_eq!(
                split_of_unit(unit, &config.split),
                split,
                "unit {unit} leaked into {split:?}"
            );
            units_seen.entry(split).or_default().insert(unit.clone());
        }
    }
    for split in SplitName::ALL {
        let want: BTreeSet<String> = config
            .campaigns
            .iter()
            .filter(|c| c.split == split)
            .map(|c| c.id.clone())
            .collect();
        assert_eq!(campaigns[&split], want, "{split:?}");
        assert!(!splits.get(split).is_empty());
    }
    // Held-out sources really are used in test.
    assert!(units_seen[&SplitName::Test]
        .iter()
        .any(|u| u.starts_with("humaneval/")));
    assert!(units_seen[&SplitName::Test]
        .iter()
        .any(|u| u.starts_with("math/geometry")));
    // And the same task text never appears in two splits.
    let text_of = |split: SplitName| -> HashSet<String> {
        splits
            .get(split)
            .iter()
            .flat_map(|g| g.session.events.iter().map(|e| e.prompt.clone()))
            .collect()
    };
    let train = text_of(SplitName::Train);
    let shared: Vec<_> = text_of(SplitName::Test)
        .into_iter()
        .filter(|p| train.contains(p) && p.len() > 80)
        .collect();
    assert!(
        shared.is_empty(),
        "long prompts in train and test: {:?}",
        &shared[..shared.len().min(3)]
    );
}

#[test]
fn random_split_mixes_campaigns_across_splits() {
    let mut config = small_config();
    config.split.mode = SplitMode::Random;
    let splits = simulate(&config).unwrap();
    let total: usize = SplitName::ALL.iter().map(|&s| splits.get(s).len()).sum();
    let test = splits.get(SplitName::Test).len() as f64 / total as f64;
    assert!(
        (test - config.split.test_fraction).abs() < 0.06,
        "test share {test}"
    );
    let in_train: HashSet<_> = splits
        .get(SplitName::Train)
        .iter()
        .filter_map(|g| g.session.campaign_id.clone())
        .collect();
    let in_test: HashSet<_> = splits
        .get(SplitName::Test)
        .iter()
        .filter_map(|g| g.session.campaign_id.clone())
        .collect();
    assert!(in_train.intersection(&in_test).count() > 0);
}

#[test]
fn hard_negatives_look_like_campaigns_on_single_signals() {
    let splits = simulate(&small_config()).unwrap();
    let mut by_archetype: HashMap<String, Vec<[f32; datasets::NUM_FEATURES]>> = HashMap::new();
    for (_, g) in all(&splits) {
        by_archetype
            .entry(g.session.archetype.clone().unwrap())
            .or_default()
            .push(session_features(&g.session));
    }
    let mean = |a: &str, f: &str| {
        let rows = &by_archetype[a];
        rows.iter().map(|r| r[feature(f)]).sum::<f32>() / rows.len() as f32
    };
    // Researchers: templated chain-of-thought prompts at machine cadence.
    assert!(mean("researcher", "reasoning_request_share") > 0.9);
    assert!(mean("researcher", "template_share") > 0.9);
    // Pipelines: one template, regular cadence, cloud IPs, high volume.
    assert!(mean("pipeline", "template_share") > 0.9);
    assert!(mean("pipeline", "hosting_asn_share") > 0.9);
    assert!(mean("pipeline", "interarrival_cv") < 0.1);
    // Students ask for step-by-step help too.
    assert!(mean("student", "reasoning_request_share") > 0.1);
    // Campaign traits: young accounts and rotating addresses.
    assert!(mean("cot_harvest", "ips_per_request") > mean("chat", "ips_per_request"));
    assert!(mean("cot_harvest", "log_account_age_days") < mean("chat", "log_account_age_days"));
}

#[test]
fn config_errors_name_the_key() {
    let mut config = small_config();
    config.campaigns[0].events_per_session = [5, 2];
    let err = config.validate().unwrap_err().to_string();
    assert_eq!(
        err,
        "config `campaigns[0].events_per_session`: must be [min, max] with 1 <= min <= max"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "seed = 1\nunknown_key = 2\n").unwrap();
    let err = SimConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("unknown"), "{err}");
}

#[test]
fn a_one_day_window_still_generates() {
    let mut config = small_config();
    config.days = 1;
    config.model_release = config.start + chrono::Duration::hours(2);
    let splits = simulate(&config).unwrap();
    assert!(!splits.get(SplitName::Train).is_empty());
}

/// The wording fragments around the task, lowercased, without the
/// punctuation casual typing may drop.
fn fragments(wording: &str) -> Vec<String> {
    wording
        .split("{task_lower}")
        .flat_map(|p| p.split("{task}"))
        .map(|f| {
            f.trim()
                .trim_end_matches(['.', '?', '!'])
                .trim()
                .to_lowercase()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

#[test]
fn a_disguised_campaign_words_every_account_like_one_student_ask() {
    use datasets::simulator::{config::Disguise, wording::STUDENT_ASKS};
    let mut config = small_config();
    let index = config
        .campaigns
        .iter()
        .position(|c| c.kind.archetype() == "cot_harvest")
        .unwrap();
    let mut campaign = config.campaigns[index].clone();
    campaign.id = "camp-disguised".into();
    campaign.disguise = Disguise::Student;
    campaign.paraphrase_per_account = false;
    campaign.benign_padding = 0.0;
    campaign.accounts = 30;
    config.campaigns.push(campaign.clone());
    let splits = simulate(&config).unwrap();
    let sessions: Vec<_> = all(&splits)
        .map(|(_, g)| &g.session)
        .filter(|s| s.campaign_id.as_deref() == Some("camp-disguised"))
        .collect();
    let accounts: HashSet<_> = sessions.iter().map(|s| &s.account_id).collect();
    assert_eq!(accounts.len(), 30);
    // Every prompt of every account carries the fragments of one and the
    // same student wording.
    let mut shared: Option<HashSet<&str>> = None;
    for s in &sessions {
        for e in &s.events {
            let prompt = e.prompt.to_lowercase();
            let fits: HashSet<&str> = STUDENT_ASKS
                .iter()
                .copied()
                .filter(|w| {
                    let f = fragments(w);
                    !f.is_empty() && f.iter().all(|f| prompt.contains(f.as_str()))
                })
                .collect();
            shared = Some(match shared {
                None => fits,
                Some(s) => s.intersection(&fits).copied().collect(),
            });
        }
    }
    assert!(!shared.unwrap().is_empty(), "no student wording in common");
    // Answers as long as students' rather than harvest-length.
    let tokens_f = feature("log_response_tokens_mean");
    let mean_log_tokens = |campaign: &str| {
        let rows: Vec<f32> = all(&splits)
            .filter(|(_, g)| g.session.campaign_id.as_deref() == Some(campaign))
            .map(|(_, g)| session_features(&g.session)[tokens_f])
            .collect();
        rows.iter().sum::<f32>() / rows.len() as f32
    };
    let plain = config.campaigns[index].id.clone();
    assert!(mean_log_tokens("camp-disguised") < mean_log_tokens(&plain) - 0.5);
}
