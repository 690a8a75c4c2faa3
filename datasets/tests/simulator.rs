//! The simulator: determinism, labels, split disjointness, hard negatives.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::PathBuf,
};

use chrono::Duration;
use datasets::{
    session_features,
    simulator::{
        config::{CampaignConfig, ShiftConfig, SimConfig, SplitMode, SplitName},
        corpus::{split_of_unit, Corpora, Pool},
        infra::{LISTED_HOSTING_ASNS, UNIVERSITY_ASNS, UNLISTED_HOSTING_ASNS},
        simulate,
        wording::Wordings,
        SplitSessions,
    },
    Label, Session, FEATURE_NAMES,
};

fn config(name: &str) -> SimConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("config/{name}.toml"));
    SimConfig::load(&path).unwrap()
}

fn small_config() -> SimConfig {
    config("small")
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

/// Every session of a build as its JSON line, in split order.
fn lines(s: &SplitSessions) -> Vec<String> {
    all(s)
        .map(|(_, g)| serde_json::to_string(&g.session).unwrap())
        .collect()
}

#[test]
fn same_seed_same_sessions_other_seed_other_sessions() {
    let config = small_config();
    let a = simulate(&config).unwrap();
    let b = simulate(&config).unwrap();
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
fn no_request_names_the_new_model_before_its_release() {
    let config = config("default");
    let splits = simulate(&config).unwrap();
    let (mut before, mut after) = (0, 0);
    for (_, g) in all(&splits) {
        for e in &g.session.events {
            let new = e.model.as_deref() == Some("large-2026-02");
            assert!(
                !new || e.ts >= config.model_release,
                "{} asks the new model at {} before its release",
                g.session.session_id,
                e.ts
            );
            if e.ts < config.model_release {
                before += 1;
            } else {
                after += usize::from(new);
            }
        }
    }
    assert!(before > 0 && after > 0, "{before} {after}");
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
    let mut config = small_config();
    config.shift.held_out_tasks = true;
    config.split.test_units.clear();
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "config `shift.held_out_tasks`: needs split.test_units to draw tasks from"
    );
    assert!(toml::from_str::<ShiftConfig>("held_out_words = true").is_err());
}

#[test]
fn a_one_day_window_still_generates() {
    let mut config = small_config();
    config.days = 1;
    config.model_release = config.start + chrono::Duration::hours(2);
    let splits = simulate(&config).unwrap();
    assert!(!splits.get(SplitName::Train).is_empty());
}

/// Where a wording's parts go: the task, a harness's worked examples, a
/// campaign template's head, tail and topic, a worked example's parts.
const PLACEHOLDERS: [&str; 9] = [
    "{task_lower}",
    "{task}",
    "{shots}",
    "{head}",
    "{tail}",
    "{topic}",
    "{question}",
    "{steps}",
    "{answer}",
];

/// The wording fragments around its placeholders, lowercased, without the
/// punctuation casual typing may drop.
fn fragments(wording: &str) -> Vec<String> {
    let mut parts = vec![wording.to_string()];
    for p in PLACEHOLDERS {
        parts = parts
            .iter()
            .flat_map(|part| part.split(p).map(str::to_string))
            .collect();
    }
    parts
        .iter()
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
    use datasets::simulator::config::Disguise;
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
            let fits: HashSet<&str> = Wordings::DEFAULT
                .student_asks
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

/// The sessions of one archetype, over all splits.
fn of_archetype<'s>(splits: &'s SplitSessions, archetype: &str) -> Vec<&'s Session> {
    all(splits)
        .map(|(_, g)| &g.session)
        .filter(|s| s.archetype.as_deref() == Some(archetype))
        .collect()
}

/// Sessions grouped by a key of their first event.
fn group_by<'s, K: Ord>(
    sessions: &[&'s Session],
    key: impl Fn(&Session) -> K,
) -> BTreeMap<K, Vec<&'s Session>> {
    let mut groups: BTreeMap<K, Vec<&Session>> = BTreeMap::new();
    for s in sessions {
        groups.entry(key(s)).or_default().push(s);
    }
    groups
}

fn accounts_of(sessions: &[&Session]) -> BTreeSet<String> {
    sessions.iter().map(|s| s.account_id.clone()).collect()
}

fn first_ip(s: &Session) -> String {
    s.events[0].ip.clone().unwrap()
}

fn prefix24(ip: &str) -> String {
    ip.rsplit_once('.').unwrap().0.to_string()
}

/// Ids of the wordings whose fragments every prompt carries.
fn wordings_in_common<'w>(sessions: &[&Session], wordings: &[&'w str]) -> HashSet<&'w str> {
    let mut common: HashSet<&str> = wordings.iter().copied().collect();
    for e in sessions.iter().flat_map(|s| &s.events) {
        let prompt = e.prompt.to_lowercase();
        common.retain(|w| fragments(w).iter().all(|f| prompt.contains(f.as_str())));
    }
    common
}

const BENIGN_ARCHETYPES: [&str; 11] = [
    "chat",
    "developer",
    "student",
    "agent",
    "prober",
    "pipeline",
    "researcher",
    "lab_team",
    "classroom",
    "company",
    "vpn",
];

#[test]
fn every_benign_archetype_is_in_every_split_of_the_default_small_and_shift_builds() {
    for name in ["default", "small", "shift"] {
        let splits = simulate(&config(name)).unwrap();
        for split in SplitName::ALL {
            let present: HashSet<&str> = splits
                .get(split)
                .iter()
                .filter_map(|g| g.session.archetype.as_deref())
                .collect();
            for archetype in BENIGN_ARCHETYPES {
                assert!(
                    present.contains(archetype),
                    "{name}: no {archetype} in {split:?}"
                );
            }
        }
    }
}

#[test]
fn a_lab_team_shares_one_ip_one_harness_and_runs_in_sync() {
    let splits = simulate(&small_config()).unwrap();
    let sessions = of_archetype(&splits, "lab_team");
    let teams = group_by(&sessions, first_ip);
    assert!(teams.len() >= 3, "{} teams", teams.len());
    let harness: Vec<&str> = Wordings::DEFAULT
        .harness_templates
        .iter()
        .map(|t| t.text)
        .collect();
    for (ip, team) in &teams {
        assert!(accounts_of(team).len() >= 2, "team at {ip} has one account");
        assert!(team
            .iter()
            .flat_map(|s| &s.events)
            .all(|e| e.ip.as_deref() == Some(ip.as_str())));
        assert!(
            !wordings_in_common(team, &harness).is_empty(),
            "team at {ip}: no harness template in common"
        );
        // Every run of a member is matched by every other member: same
        // items, started within minutes.
        for s in team.iter() {
            let prompts: Vec<&str> = s.events.iter().map(|e| e.prompt.as_str()).collect();
            let partners: BTreeSet<&str> = team
                .iter()
                .filter(|o| (o.start() - s.start()).abs() < Duration::minutes(10))
                .filter(|o| {
                    o.events
                        .iter()
                        .map(|e| e.prompt.as_str())
                        .eq(prompts.clone())
                })
                .map(|o| o.account_id.as_str())
                .collect();
            assert_eq!(partners.len(), accounts_of(team).len(), "team at {ip}");
        }
    }
}

/// Corpus items (index) whose text a prompt carries (casual typing may
/// lowercase it and drop its final punctuation).
fn items_in(corpora: &Corpora, pools: &[usize], prompt: &str) -> Vec<usize> {
    let prompt = prompt.to_lowercase();
    pools
        .iter()
        .copied()
        .filter(|&i| {
            let text = corpora.items[i].text.to_lowercase();
            prompt.contains(text.trim_end_matches(['.', '?', '!']))
        })
        .collect()
}

#[test]
fn a_classroom_shares_a_campus_24_one_homework_set_one_week_and_a_creation_wave() {
    let config = small_config();
    let splits = simulate(&config).unwrap();
    let corpora = Corpora::load(&config.corpora_dir, Some(&config.split)).unwrap();
    let sessions = of_archetype(&splits, "classroom");
    let on_campus: Vec<&Session> = sessions
        .iter()
        .copied()
        .filter(|s| UNIVERSITY_ASNS.contains(&s.events[0].asn.unwrap()))
        .collect();
    let classes = group_by(&on_campus, |s| prefix24(&first_ip(s)));
    assert!(classes.len() >= 3, "{} campus /24s", classes.len());
    let mut in_wave = 0;
    let mut students = 0;
    for (prefix, campus) in &classes {
        let class_accounts = accounts_of(campus);
        assert!(class_accounts.len() >= 3, "{prefix}: {class_accounts:?}");
        let class: Vec<&Session> = sessions
            .iter()
            .copied()
            .filter(|s| class_accounts.contains(&s.account_id))
            .collect();
        let first = class.iter().map(|s| s.start()).min().unwrap();
        let last = class.iter().map(|s| s.end()).max().unwrap();
        assert!(
            last - first <= Duration::days(8),
            "{prefix}: {first} .. {last}"
        );
        let ips: BTreeSet<String> = campus.iter().map(|s| first_ip(s)).collect();
        assert!(ips.len() <= 3, "{prefix}: {ips:?}");
        let split = SplitName::ALL
            .into_iter()
            .find(|&sp| {
                splits
                    .get(sp)
                    .iter()
                    .any(|g| g.session.session_id == class[0].session_id)
            })
            .unwrap();
        let pools: Vec<usize> = [Pool::GradeMath, Pool::CompetitionMath, Pool::Reasoning]
            .into_iter()
            .flat_map(|p| corpora.pool(Some(split), p).iter().copied())
            .collect();
        let mut homework: HashMap<usize, BTreeSet<&str>> = HashMap::new();
        for s in &class {
            for e in &s.events {
                for item in items_in(&corpora, &pools, &e.prompt) {
                    homework.entry(item).or_default().insert(&s.account_id);
                }
            }
        }
        assert!(
            (1..=10).contains(&homework.len()),
            "{prefix}: {} items",
            homework.len()
        );
        assert!(
            homework.values().any(|a| a.len() >= 3),
            "{prefix}: no shared item"
        );
        let created: Vec<_> = class
            .iter()
            .map(|s| s.account.as_ref().unwrap().created_at.unwrap())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        students += created.len();
        in_wave += created
            .iter()
            .filter(|&&c| {
                created
                    .iter()
                    .filter(|&&o| (o - c).abs() <= Duration::days(3))
                    .count()
                    >= 3
            })
            .count();
    }
    assert!(
        in_wave * 10 >= students * 4,
        "{in_wave} of {students} in a wave"
    );
}

#[test]
fn a_company_shares_one_ip_one_tool_wrapper_and_one_client() {
    let splits = simulate(&small_config()).unwrap();
    let sessions = of_archetype(&splits, "company");
    let companies = group_by(&sessions, first_ip);
    assert!(companies.len() >= 3, "{} companies", companies.len());
    for (ip, staff) in &companies {
        assert!(
            accounts_of(staff).len() >= 2,
            "company at {ip} has one account"
        );
        let events: Vec<_> = staff.iter().flat_map(|s| &s.events).collect();
        assert!(events.iter().all(|e| e.ip.as_deref() == Some(ip.as_str())));
        let agents: HashSet<_> = events.iter().map(|e| &e.user_agent).collect();
        assert_eq!(agents.len(), 1, "company at {ip}: {agents:?}");
        let tools = Wordings::DEFAULT.company_tool_templates.iter();
        let tools = tools.filter(|(_, t)| {
            let wrapper = t.split("{task}").next().unwrap();
            events.iter().all(|e| e.prompt.starts_with(wrapper))
        });
        assert_eq!(tools.count(), 1, "company at {ip}: not one wrapper");
    }
}

#[test]
fn vpn_exits_are_hosting_addresses_shared_by_many_accounts() {
    let splits = simulate(&small_config()).unwrap();
    let sessions = of_archetype(&splits, "vpn");
    for e in sessions.iter().flat_map(|s| &s.events) {
        let asn = e.asn.unwrap();
        assert!(LISTED_HOSTING_ASNS.contains(&asn) || UNLISTED_HOSTING_ASNS.contains(&asn));
    }
    let by_ip = group_by(&sessions, first_ip);
    let crowded = by_ip.values().filter(|s| accounts_of(s).len() >= 3).count();
    assert!(crowded >= 3, "{crowded} exits with 3+ accounts");
    let sharing: BTreeSet<String> = by_ip
        .values()
        .filter(|s| accounts_of(s).len() >= 2)
        .flat_map(|s| accounts_of(s))
        .collect();
    let users = accounts_of(&sessions).len();
    assert!(
        sharing.len() * 2 >= users,
        "{} of {users} share",
        sharing.len()
    );
}

#[test]
fn hosting_proxy_campaigns_rotate_accounts_through_a_shared_pool_of_24s() {
    let config = small_config();
    let splits = simulate(&config).unwrap();
    let hosting = config.campaigns.iter().filter(|c| !c.residential_proxies);
    for c in hosting {
        let sessions: Vec<&Session> = all(&splits)
            .map(|(_, g)| &g.session)
            .filter(|s| s.campaign_id.as_deref() == Some(c.id.as_str()))
            .collect();
        let mut accounts_by_ip: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for s in &sessions {
            for e in &s.events {
                accounts_by_ip
                    .entry(e.ip.as_deref().unwrap())
                    .or_default()
                    .insert(&s.account_id);
            }
        }
        let shared = accounts_by_ip.values().filter(|a| a.len() >= 2).count();
        assert!(shared >= 1, "{}: no IP used by two accounts", c.id);
        let pool = (c.accounts / 3).clamp(8, 1500);
        assert!(
            accounts_by_ip.len() <= pool,
            "{}: {} IPs",
            c.id,
            accounts_by_ip.len()
        );
        let prefixes: HashSet<String> = accounts_by_ip.keys().map(|ip| prefix24(ip)).collect();
        assert!(
            prefixes.len() < accounts_by_ip.len(),
            "{}: one IP per /24",
            c.id
        );
    }
}

/// Default phrases shorter than this are too generic to check against
/// prompts: "thanks", "Solution:" or "category" also occur in corpus text
/// and inside other words.
const MIN_PHRASE_CHARS: usize = 12;

/// The default wordings' phrases (fragments between placeholders) long
/// enough to check.
fn default_phrases() -> BTreeSet<String> {
    Wordings::DEFAULT
        .lists()
        .into_iter()
        .flat_map(|(_, list)| list)
        .flat_map(fragments)
        .filter(|f| f.chars().count() >= MIN_PHRASE_CHARS)
        .collect()
}

/// Whether a wording has words of its own (not the bare `{task}` or an
/// empty tail).
fn has_words(wording: &str) -> bool {
    fragments(wording)
        .iter()
        .any(|f| f.chars().any(char::is_alphabetic))
}

#[test]
fn held_out_wordings_replace_every_default_list_in_other_words() {
    let default = Wordings::DEFAULT.lists();
    let held_out = Wordings::HELD_OUT.lists();
    let names = |lists: &[(String, Vec<&str>)]| -> Vec<String> {
        lists.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(names(&default), names(&held_out));
    let entries: HashSet<&str> = default.iter().flat_map(|(_, l)| l.clone()).collect();
    let phrases = default_phrases();
    for ((name, d), (_, h)) in default.iter().zip(&held_out) {
        assert!(h.len() >= d.len(), "{name}: {} < {}", h.len(), d.len());
        for entry in h.iter().filter(|e| has_words(e)) {
            assert!(
                !entries.contains(entry),
                "{name}: {entry:?} is a default entry"
            );
            let lower = entry.to_lowercase();
            let said: Vec<_> = phrases.iter().filter(|p| lower.contains(*p)).collect();
            assert!(said.is_empty(), "{name}: {entry:?} says {said:?}");
        }
    }
}

/// `config` with both shift options on.
fn shifted(mut config: SimConfig) -> SimConfig {
    config.shift = ShiftConfig {
        held_out_wordings: true,
        held_out_tasks: true,
    };
    config
}

/// The phrases of `phrases` that some prompt of the build contains.
fn phrases_said<'p>(splits: &SplitSessions, phrases: &'p BTreeSet<String>) -> Vec<&'p str> {
    let text = all(splits)
        .flat_map(|(_, g)| &g.session.events)
        .map(|e| e.prompt.to_lowercase())
        .collect::<Vec<_>>()
        .join("\0");
    phrases
        .iter()
        .filter(|p| text.contains(p.as_str()))
        .map(String::as_str)
        .collect()
}

/// Per split of a build, the default config's splits of the source units
/// its tasks came from.
fn default_splits_of_units(splits: &SplitSessions) -> BTreeMap<SplitName, BTreeSet<SplitName>> {
    let default = config("default").split;
    let mut seen: BTreeMap<SplitName, BTreeSet<SplitName>> = BTreeMap::new();
    for (split, g) in all(splits) {
        for unit in &g.units {
            let of_unit = split_of_unit(unit, &default);
            seen.entry(split).or_default().insert(of_unit);
        }
    }
    seen
}

#[test]
fn a_shifted_world_says_no_default_phrase_and_draws_only_held_out_tasks() {
    let phrases = default_phrases();
    let plain = simulate(&small_config()).unwrap();
    let shifted = simulate(&shifted(small_config())).unwrap();
    // The checks bite: the default world says default phrases and draws
    // tasks of the default training split.
    let said = phrases_said(&plain, &phrases).len();
    assert!(said >= 60, "default world says {said} default phrases");
    assert!(default_splits_of_units(&plain)[&SplitName::Train].contains(&SplitName::Train));
    let said = phrases_said(&shifted, &phrases);
    assert!(said.is_empty(), "shifted world says {said:?}");
    let seen = default_splits_of_units(&shifted);
    for split in SplitName::ALL {
        let want = BTreeSet::from([SplitName::Test]);
        assert_eq!(
            seen[&split], want,
            "{split:?} draws from {:?}",
            seen[&split]
        );
        let campaigns = shifted.get(split).iter();
        assert!(
            campaigns
                .filter(|g| g.session.campaign_id.is_some())
                .count()
                > 0
        );
    }
}

#[test]
fn a_shifted_world_is_deterministic() {
    let config = shifted(small_config());
    let a = lines(&simulate(&config).unwrap());
    assert_eq!(a, lines(&simulate(&config).unwrap()));
    assert_ne!(a, lines(&simulate(&small_config()).unwrap()));
}

#[test]
fn the_shift_config_is_the_default_mix_under_another_seed_and_new_ids() {
    let (default, shift) = (config("default"), config("shift"));
    assert_eq!(default.shift, ShiftConfig::default());
    assert_eq!(shift.shift, shifted(default.clone()).shift);
    assert_ne!(shift.seed, default.seed);
    assert_eq!(
        (shift.start, shift.days, shift.model_release),
        (default.start, default.days, default.model_release)
    );
    assert_eq!(shift.split.test_units, default.split.test_units);
    assert_eq!(
        format!("{:?}", shift.benign),
        format!("{:?}", default.benign)
    );
    let ids: HashSet<&str> = default.campaigns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(shift.campaigns.len(), default.campaigns.len());
    let without_id = |c: &CampaignConfig| {
        let id = String::new();
        format!("{:?}", CampaignConfig { id, ..c.clone() })
    };
    for (s, d) in shift.campaigns.iter().zip(&default.campaigns) {
        assert!(!ids.contains(s.id.as_str()), "{} is a default id", s.id);
        assert_eq!(without_id(s), without_id(d));
    }
}
