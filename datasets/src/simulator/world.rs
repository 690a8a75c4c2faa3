//! Generates the sessions of one simulated world: benign archetypes and
//! extraction campaigns drawing text from one split's pools. Campaigns are
//! in `campaign`, benchmark runs (researchers, lab teams) in `eval`, benign
//! coordination (classrooms, companies, VPN customers) in `groups`.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use rand::{seq::IndexedRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{
    config::{SimConfig, SplitName},
    corpus::{Corpora, CorpusItem, Pool},
    infra::{self, pick},
    timing::{self, Rhythm},
    wording::{self, Wordings},
};
use crate::schema::{Account, Event, Label, Session};

mod campaign;
mod eval;
mod groups;

/// A generated session with the source units its text came from.
#[derive(Debug, Clone)]
pub struct GeneratedSession {
    /// The session as written to the file.
    pub session: Session,
    /// Source units of the corpus items used (for disjointness checks).
    pub units: Vec<String>,
}

/// Why a world cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A split has no text for a pool an archetype needs.
    #[error("split {split} has no corpus items for {pool:?} (used by {who}); check the split's source units")]
    EmptyPool {
        /// Split name (`all` in random mode).
        split: String,
        /// Pool needed.
        pool: Pool,
        /// Archetype or campaign needing it.
        who: String,
    },
}

/// A random generator derived from the seed and a label, so each
/// archetype's and campaign's draws do not depend on the others'.
pub fn sub_rng(seed: u64, label: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(xxh3_64_with_seed(label.as_bytes(), seed))
}

/// Mints unique account and session ids.
pub struct IdMint {
    rng: ChaCha8Rng,
    used: HashSet<String>,
}

impl IdMint {
    /// A mint seeded from the config seed.
    pub fn new(seed: u64) -> Self {
        IdMint {
            rng: sub_rng(seed, "ids"),
            used: HashSet::new(),
        }
    }

    /// A fresh `{prefix}-{12 hex digits}` id.
    pub fn mint(&mut self, prefix: &str) -> String {
        loop {
            let id = format!("{prefix}-{:012x}", self.rng.random::<u64>() >> 16);
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }
}

const MODEL_NEW: &str = "large-2026-02";
const MODEL_OLD: &str = "large-2025-10";
const MODEL_SMALL: &str = "small-2026-02";

/// Answer length of students' requests: lognormal median and spread.
const STUDENT_ANSWER_TOKENS: (f64, f64) = (450.0, 0.5);
/// Answer length of developers' requests.
const DEVELOPER_ANSWER_TOKENS: (f64, f64) = (550.0, 0.5);
/// Answer length of an operator's harvesting template (long reasoning).
const HARVEST_ANSWER_TOKENS: (f64, f64) = (900.0, 0.4);

/// Who sends a session's requests.
#[derive(Debug, Clone)]
struct Persona {
    account_id: String,
    account: Account,
    region: &'static str,
    asn: u32,
    ip: String,
    user_agent: String,
}

/// How a person paces a session: daily rhythm, think time between
/// requests, and the length of the answers they get.
#[derive(Debug, Clone, Copy)]
struct HumanPace {
    rhythm: Rhythm,
    think_median_s: f64,
    tokens_median: f64,
    tokens_sigma: f64,
}

impl HumanPace {
    fn new(rhythm: Rhythm, think_median_s: f64, tokens_median: f64, tokens_sigma: f64) -> Self {
        HumanPace {
            rhythm,
            think_median_s,
            tokens_median,
            tokens_sigma,
        }
    }
}

/// One session of a person: who sends it, when it starts, how many
/// requests it has.
struct Visit<'p> {
    persona: &'p Persona,
    start: DateTime<Utc>,
    requests: usize,
}

/// Builds one world's sessions.
pub struct World<'a> {
    config: &'a SimConfig,
    corpora: &'a Corpora,
    wordings: &'static Wordings,
    split: Option<SplitName>,
    /// The split whose pools the tasks come from (see
    /// [`crate::simulator::config::ShiftConfig::task_split`]).
    tasks: Option<SplitName>,
    ids: &'a mut IdMint,
    out: Vec<GeneratedSession>,
}

struct SessionDraft {
    events: Vec<Event>,
    units: Vec<String>,
}

impl SessionDraft {
    fn new() -> Self {
        SessionDraft {
            events: Vec::new(),
            units: Vec::new(),
        }
    }

    fn push(&mut self, p: &Persona, ts: DateTime<Utc>, prompt: String, model: &str, tokens: f64) {
        self.events.push(Event {
            ts,
            prompt,
            ip: Some(p.ip.clone()),
            asn: Some(p.asn),
            user_agent: Some(p.user_agent.clone()),
            model: Some(model.to_string()),
            response_tokens: Some(tokens.round().clamp(1.0, 8192.0) as u32),
        });
    }
}

impl<'a> World<'a> {
    /// The world of one split (`None`: all of a random split's world),
    /// worded in `wordings`, drawing its tasks from the pools that
    /// `config.shift` assigns it.
    pub fn new(
        config: &'a SimConfig,
        corpora: &'a Corpora,
        wordings: &'static Wordings,
        split: Option<SplitName>,
        ids: &'a mut IdMint,
    ) -> Self {
        World {
            config,
            corpora,
            wordings,
            split,
            tasks: config.shift.task_split(split),
            ids,
            out: Vec::new(),
        }
    }

    /// The sessions generated so far.
    pub fn into_sessions(self) -> Vec<GeneratedSession> {
        self.out
    }

    fn label(&self) -> String {
        self.split.map_or("all", SplitName::as_str).to_string()
    }

    fn rng(&self, what: &str) -> ChaCha8Rng {
        sub_rng(self.config.seed, &format!("{}/{what}", self.label()))
    }

    fn pool(&self, pool: Pool, who: &str) -> Result<&'a [usize], WorldError> {
        let items = self.corpora.pool(self.tasks, pool);
        if items.is_empty() {
            return Err(WorldError::EmptyPool {
                split: self.tasks.map_or("all", SplitName::as_str).to_string(),
                pool,
                who: who.to_string(),
            });
        }
        Ok(items)
    }

    fn draw<R: Rng>(&self, rng: &mut R, pool: &[usize]) -> &'a CorpusItem {
        &self.corpora.items[pool[rng.random_range(0..pool.len())]]
    }

    /// The newest large model at `ts`: the new one from its release on
    /// (nobody queries a model before it is released).
    fn current_large_model(&self, ts: DateTime<Utc>) -> &'static str {
        if ts >= self.config.model_release {
            MODEL_NEW
        } else {
            MODEL_OLD
        }
    }

    fn model_at(&self, rng: &mut impl Rng, ts: DateTime<Utc>) -> &'static str {
        if ts >= self.config.model_release && rng.random_bool(0.75) {
            MODEL_NEW
        } else {
            MODEL_OLD
        }
    }

    fn emit(&mut self, p: &Persona, draft: SessionDraft, archetype: &str, campaign: Option<&str>) {
        let mut units = draft.units;
        units.sort();
        units.dedup();
        let session = Session {
            session_id: self.ids.mint("s"),
            account_id: p.account_id.clone(),
            label: Some(if campaign.is_some() {
                Label::Extraction
            } else {
                Label::Benign
            }),
            campaign_id: campaign.map(str::to_string),
            archetype: Some(archetype.to_string()),
            account: Some(p.account.clone()),
            events: draft.events,
        };
        self.out.push(GeneratedSession { session, units });
    }

    /// A person with a home connection in a region drawn by population.
    fn person<R: Rng>(
        &mut self,
        rng: &mut R,
        tiers: &[(&str, u32)],
        verified_p: f64,
        age_days: (i64, i64),
    ) -> Persona {
        let region = infra::pick_region(rng).0;
        self.person_in(rng, region, tiers, verified_p, age_days)
    }

    /// A person with a home connection in `region`.
    fn person_in<R: Rng>(
        &mut self,
        rng: &mut R,
        region: &'static str,
        tiers: &[(&str, u32)],
        verified_p: f64,
        age_days: (i64, i64),
    ) -> Persona {
        let asn = infra::residential_asn(rng, region);
        let created = self.config.start - Duration::days(rng.random_range(age_days.0..=age_days.1))
            + Duration::seconds(rng.random_range(0..86_400));
        Persona {
            account_id: self.ids.mint("acct"),
            account: Account {
                created_at: Some(created),
                tier: Some(weighted(rng, tiers).to_string()),
                verified: Some(rng.random_bool(verified_p)),
                region: Some(region.to_string()),
            },
            region,
            asn,
            ip: infra::address_in(rng, asn, true),
            user_agent: pick(rng, infra::BROWSER_USER_AGENTS).to_string(),
        }
    }

    fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.config.start, self.config.end())
    }

    /// Moves the persona to another connection of the same region for one
    /// session (phone, café, office) with probability `p`.
    fn maybe_roam<R: Rng>(rng: &mut R, p: &Persona, prob: f64) -> Persona {
        let mut p = p.clone();
        if rng.random_bool(prob) {
            p.asn = infra::residential_asn(rng, p.region);
            p.ip = infra::address_in(rng, p.asn, true);
        }
        p
    }

    /// One session of a person at a time of the world's window that
    /// follows the pace's rhythm (see [`World::visit`]).
    fn human_session(
        &mut self,
        rng: &mut ChaCha8Rng,
        p: &Persona,
        archetype: &str,
        requests: usize,
        pace: HumanPace,
        next_prompt: impl FnMut(&Self, &mut ChaCha8Rng, usize, &mut Vec<String>) -> String,
    ) {
        let (from, to) = self.window();
        let start = timing::start_time(rng, from, to, p.region, pace.rhythm);
        let visit = Visit {
            persona: p,
            start,
            requests,
        };
        self.visit(rng, &visit, archetype, pace, next_prompt);
    }

    /// One session of a person: human think times between requests,
    /// prompts from `next_prompt(world, rng, request_index, units)`.
    fn visit(
        &mut self,
        rng: &mut ChaCha8Rng,
        v: &Visit,
        archetype: &str,
        pace: HumanPace,
        mut next_prompt: impl FnMut(&Self, &mut ChaCha8Rng, usize, &mut Vec<String>) -> String,
    ) {
        let mut ts = v.start;
        let mut d = SessionDraft::new();
        for i in 0..v.requests {
            let prompt = next_prompt(self, rng, i, &mut d.units);
            let model = self.model_at(rng, ts);
            let tokens = timing::lognormal_seconds(rng, pace.tokens_median, pace.tokens_sigma);
            d.push(v.persona, ts, prompt, model, tokens);
            ts += timing::human_gap(rng, pace.think_median_s);
        }
        self.emit(v.persona, d, archetype, None);
    }

    /// A chat user's request `i`: a follow-up or a new everyday ask.
    fn chat_prompt(
        &self,
        rng: &mut ChaCha8Rng,
        pool: &[usize],
        i: usize,
        units: &mut Vec<String>,
    ) -> String {
        if i > 0 && rng.random_bool(0.55) {
            pick(rng, self.wordings.chat_follow_ups).to_string()
        } else {
            let item = self.draw(rng, pool);
            units.push(item.unit.clone());
            wording::casual(rng, item.text.clone())
        }
    }

    /// A developer's request `i`: a follow-up, a corpus task in a
    /// developer's words, or a question of their own.
    fn developer_prompt(
        &self,
        rng: &mut ChaCha8Rng,
        pool: &[usize],
        i: usize,
        units: &mut Vec<String>,
    ) -> String {
        if i > 0 && rng.random_bool(0.5) {
            pick(rng, self.wordings.developer_follow_ups).to_string()
        } else if rng.random_bool(0.5) {
            let item = self.draw(rng, pool);
            units.push(item.unit.clone());
            wording::fill(pick(rng, self.wordings.developer_asks), &item.text)
        } else {
            pick(rng, self.wordings.developer_questions).to_string()
        }
    }

    /// A student's request `i`, typed casually: in the words of `ask` when
    /// given, else a follow-up or a fresh ask; a task comes from `pool`.
    fn student_prompt(
        &self,
        rng: &mut ChaCha8Rng,
        pool: &[usize],
        ask: Option<&str>,
        i: usize,
        units: &mut Vec<String>,
    ) -> String {
        let template = match ask {
            Some(ask) => ask,
            None if i > 0 && rng.random_bool(0.6) => pick(rng, self.wordings.student_follow_ups),
            None => pick(rng, self.wordings.student_asks),
        };
        let prompt = if template.contains("{task}") {
            let item = self.draw(rng, pool);
            units.push(item.unit.clone());
            wording::fill(template, &item.text)
        } else {
            template.to_string()
        };
        wording::casual(rng, prompt)
    }

    /// Everyday chat users.
    pub fn chat(&mut self, sessions: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("chat");
        let pool = self.pool(Pool::Chat, "chat")?;
        let pace = HumanPace::new(Rhythm::People, 60.0, 250.0, 0.6);
        let mut made = 0;
        while made < sessions {
            let p = self.person(&mut rng, &[("free", 70), ("pro", 30)], 0.6, (-20, 1500));
            let k = timing::count_with_mean(&mut rng, 2.0, 8).min(sessions - made);
            for _ in 0..k {
                let p = Self::maybe_roam(&mut rng, &p, 0.15);
                let n = timing::count_with_mean(&mut rng, 3.0, 20);
                self.human_session(&mut rng, &p, "chat", n, pace, |w, rng, i, units| {
                    w.chat_prompt(rng, pool, i, units)
                });
                made += 1;
            }
        }
        Ok(())
    }

    /// Developers asking coding questions from laptops (sometimes through
    /// the API with curl or an SDK, sometimes from a cloud dev box).
    pub fn developers(&mut self, sessions: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("developer");
        let pool = self.pool(Pool::Code, "developer")?;
        let (tokens, spread) = DEVELOPER_ANSWER_TOKENS;
        let pace = HumanPace::new(Rhythm::People, 90.0, tokens, spread);
        let mut made = 0;
        while made < sessions {
            let mut p = self.person(
                &mut rng,
                &[("free", 40), ("pro", 50), ("startup", 10)],
                0.7,
                (30, 1500),
            );
            if rng.random_bool(0.2) {
                p.user_agent = if rng.random_bool(0.5) {
                    pick(&mut rng, infra::SDK_USER_AGENTS)
                } else {
                    pick(&mut rng, infra::SCRIPTED_USER_AGENTS)
                }
                .to_string();
            }
            if rng.random_bool(0.1) {
                p.asn = *pick_u32(&mut rng, infra::LISTED_CLOUD_ASNS);
                p.ip = infra::address_in(&mut rng, p.asn, false);
            }
            let k = timing::count_with_mean(&mut rng, 2.5, 10).min(sessions - made);
            for _ in 0..k {
                let n = timing::count_with_mean(&mut rng, 4.0, 20);
                self.human_session(&mut rng, &p, "developer", n, pace, |w, rng, i, units| {
                    w.developer_prompt(rng, pool, i, units)
                });
                made += 1;
            }
        }
        Ok(())
    }

    /// Students pasting homework and asking to be walked through it.
    pub fn students(&mut self, sessions: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("student");
        let grade = self.pool(Pool::GradeMath, "student")?;
        let competition = self.pool(Pool::CompetitionMath, "student")?;
        let (tokens, spread) = STUDENT_ANSWER_TOKENS;
        let pace = HumanPace::new(Rhythm::Students, 75.0, tokens, spread);
        let mut made = 0;
        while made < sessions {
            let mut p = self.person(
                &mut rng,
                &[("free", 60), ("edu", 35), ("pro", 5)],
                0.3,
                (-30, 700),
            );
            if rng.random_bool(0.3) {
                p.asn = *pick_u32(&mut rng, infra::UNIVERSITY_ASNS);
                p.ip = infra::address_in(&mut rng, p.asn, false);
            }
            let pool = if rng.random_bool(0.6) {
                grade
            } else {
                competition
            };
            let ask = pick(&mut rng, self.wordings.student_asks);
            let k = timing::count_with_mean(&mut rng, 3.0, 12).min(sessions - made);
            for _ in 0..k {
                let p = Self::maybe_roam(&mut rng, &p, 0.2);
                // One in five sessions is a whole worksheet pasted problem
                // after problem with the same words.
                let worksheet = rng.random_bool(0.2);
                let n = if worksheet {
                    rng.random_range(4..=15)
                } else {
                    timing::count_with_mean(&mut rng, 3.0, 12)
                };
                let worksheet = worksheet.then_some(ask);
                self.human_session(&mut rng, &p, "student", n, pace, |w, rng, i, units| {
                    w.student_prompt(rng, pool, worksheet, i, units)
                });
                made += 1;
            }
        }
        Ok(())
    }

    /// Agent / tool-use applications calling through SDKs from clouds.
    pub fn agents(&mut self, sessions: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("agent");
        let pool = self.pool(Pool::ToolUse, "agent")?;
        let mut made = 0;
        while made < sessions {
            let mut p = self.person(
                &mut rng,
                &[("startup", 40), ("enterprise", 20), ("pro", 40)],
                0.8,
                (30, 1200),
            );
            p.user_agent = pick(&mut rng, infra::SDK_USER_AGENTS).to_string();
            let network = rng.random_range(0..10);
            if network < 6 {
                p.asn = *pick_u32(&mut rng, infra::LISTED_CLOUD_ASNS);
            } else if network < 8 {
                p.asn = *pick_u32(&mut rng, infra::UNLISTED_HOSTING_ASNS);
            }
            p.ip = infra::address_in(&mut rng, p.asn, false);
            let frame = pick(&mut rng, self.wordings.agent_frames);
            let k = timing::count_with_mean(&mut rng, 4.0, 20).min(sessions - made);
            for _ in 0..k {
                let (from, to) = self.window();
                let mut ts = timing::start_time(&mut rng, from, to, p.region, Rhythm::People);
                let n = timing::count_with_mean(&mut rng, 6.0, 40);
                let mut d = SessionDraft::new();
                for i in 0..n {
                    let continuation = i > 0 && rng.random_bool(0.5);
                    let prompt = if continuation {
                        pick(&mut rng, self.wordings.agent_continuations).to_string()
                    } else {
                        let item = self.draw(&mut rng, pool);
                        d.units.push(item.unit.clone());
                        wording::fill(frame, &item.text)
                    };
                    let model = self.model_at(&mut rng, ts);
                    let tokens = timing::lognormal_seconds(&mut rng, 180.0, 0.7);
                    d.push(&p, ts, prompt, model, tokens);
                    ts += if continuation || rng.random_bool(0.3) {
                        timing::machine_gap(&mut rng, 2.5, 0.6)
                    } else {
                        timing::human_gap(&mut rng, 45.0)
                    };
                }
                self.emit(&p, d, "agent", None);
                made += 1;
            }
        }
        Ok(())
    }

    /// System-prompt probers and jailbreakers: bad, but not distillation.
    pub fn probers(&mut self, sessions: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("prober");
        let pools = [
            self.pool(Pool::Jailbreak, "prober")?,
            self.pool(Pool::PromptExtraction, "prober")?,
            self.pool(Pool::Harmful, "prober")?,
            self.pool(Pool::Chat, "prober")?,
        ];
        let pace = HumanPace::new(Rhythm::People, 50.0, 150.0, 0.8);
        let mut made = 0;
        while made < sessions {
            let mut p = self.person(&mut rng, &[("free", 90), ("pro", 10)], 0.2, (-30, 400));
            if rng.random_bool(0.3) {
                // A consumer VPN exits from a hosting network.
                p.asn = *pick_u32(&mut rng, infra::LISTED_HOSTING_ASNS);
                p.ip = infra::address_in(&mut rng, p.asn, false);
            }
            let k = timing::count_with_mean(&mut rng, 1.8, 6).min(sessions - made);
            for _ in 0..k {
                let n = timing::count_with_mean(&mut rng, 3.0, 15);
                self.human_session(&mut rng, &p, "prober", n, pace, |w, rng, _, units| {
                    let pool = pools[weighted_index(rng, &[35, 30, 25, 10])];
                    let item = w.draw(rng, pool);
                    units.push(item.unit.clone());
                    wording::fill(pick(rng, w.wordings.prober_openers), &item.text)
                });
                made += 1;
            }
        }
        Ok(())
    }

    /// Enterprise automation: one template over thousands of items, high
    /// volume, regular cadence, one cloud IP, an SDK, nightly runs.
    pub fn pipelines(&mut self, accounts: usize, sessions_each: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("pipeline");
        let pool = self.pool(Pool::Chat, "pipeline")?;
        for _ in 0..accounts {
            let mut p = self.person(&mut rng, &[("enterprise", 100)], 1.0, (200, 1500));
            p.asn = *pick_u32(&mut rng, infra::LISTED_CLOUD_ASNS);
            p.ip = infra::address_in(&mut rng, p.asn, false);
            p.user_agent = pick(&mut rng, infra::SDK_USER_AGENTS).to_string();
            let &(template, short_answers) = self
                .wordings
                .pipeline_templates
                .choose(&mut rng)
                .expect("pipeline templates");
            let interval = rng.random_range(0.8..3.0);
            let run_hour = rng.random_range(0..24);
            let (from, to) = self.window();
            let first_day = rng.random_range(0..((to - from).num_days() / 2).max(1));
            for s in 0..sessions_each {
                let day = from + Duration::days(first_day + s as i64);
                let mut ts = day
                    .date_naive()
                    .and_hms_opt(run_hour, 0, 0)
                    .expect("valid hour")
                    .and_utc()
                    + Duration::seconds(rng.random_range(0..120));
                let n = rng.random_range(40..=150);
                let mut d = SessionDraft::new();
                for _ in 0..n {
                    let item = self.draw(&mut rng, pool);
                    d.units.push(item.unit.clone());
                    let tokens = if short_answers {
                        rng.random_range(1.0..12.0)
                    } else {
                        item.text.len() as f64 / 3.5 + rng.random_range(5.0..40.0)
                    };
                    d.push(
                        &p,
                        ts,
                        wording::fill(template, &item.text),
                        MODEL_SMALL,
                        tokens,
                    );
                    ts += timing::machine_gap(&mut rng, interval, 0.05);
                }
                self.emit(&p, d, "pipeline", None);
            }
        }
        Ok(())
    }
}

fn pick_u32<'l, R: Rng>(rng: &mut R, list: &'l [u32]) -> &'l u32 {
    &list[rng.random_range(0..list.len())]
}

fn weighted_index<R: Rng>(rng: &mut R, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn weighted<'s, R: Rng>(rng: &mut R, options: &[(&'s str, u32)]) -> &'s str {
    let weights: Vec<u32> = options.iter().map(|o| o.1).collect();
    options[weighted_index(rng, &weights)].0
}
