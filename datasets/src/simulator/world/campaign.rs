//! Extraction campaigns: an operator with many accounts, a shared template
//! and task queue, a rented pool of proxy exits and scripted timing, with
//! the evasions the config turns on.

use chrono::{DateTime, Duration, Utc};
use rand::{seq::SliceRandom, Rng};
use rand_chacha::ChaCha8Rng;

use super::{
    weighted, Persona, SessionDraft, World, WorldError, DEVELOPER_ANSWER_TOKENS,
    HARVEST_ANSWER_TOKENS, MODEL_NEW, STUDENT_ANSWER_TOKENS,
};
use crate::schema::Account;
use crate::simulator::{
    config::{Cadence, CampaignConfig, CampaignKind, Disguise},
    corpus::Pool,
    infra::{self, pick},
    timing::{self, Rhythm},
    wording::{self, CampaignTemplate, HarvestParts, Wordings},
};

/// Hosting exits an operator rents per account (at least 8, at most 1500).
const ACCOUNTS_PER_HOSTING_EXIT: usize = 3;
/// Residential exits a proxy service hands one campaign, per account at
/// least, and per expected request: its pool is so large that two accounts
/// rarely meet on one address.
const RESIDENTIAL_EXITS_PER_ACCOUNT: usize = 4;
const RESIDENTIAL_EXITS_PER_REQUEST: usize = 20;
/// Hosting exits come in blocks of this many adjacent addresses per /24.
const HOSTING_EXITS_PER_24: (usize, usize) = (2, 8);
/// Share of a campaign's requests that rotate to another exit.
const ROTATE_SHARE: f64 = 0.8;

/// What an operator sets up once and shares across a campaign's accounts.
struct Operator<'a> {
    /// The task queue: every task once, in shuffled order, handed out
    /// across accounts (recycled when it runs out).
    queue: Vec<usize>,
    cursor: usize,
    padding_pool: &'a [usize],
    /// The rented exits `(asn, ip)` every account rotates through.
    exits: Vec<(u32, String)>,
    agents: Vec<&'static str>,
    template: CampaignTemplate,
    /// Answer length: lognormal median and spread.
    answer_tokens: (f64, f64),
    interval_s: f64,
}

impl Operator<'_> {
    /// Moves `p` to one of the operator's exits.
    fn use_exit(&self, rng: &mut ChaCha8Rng, p: &mut Persona) {
        let (asn, ip) = &self.exits[rng.random_range(0..self.exits.len())];
        p.asn = *asn;
        p.ip = ip.clone();
    }

    /// The next task of the queue.
    fn next_task(&mut self) -> usize {
        let task = self.queue[self.cursor % self.queue.len()];
        self.cursor += 1;
        task
    }
}

/// Requests a campaign sends, on average.
fn expected_requests(c: &CampaignConfig) -> usize {
    let [s0, s1] = c.sessions_per_account;
    let [e0, e1] = c.events_per_session;
    c.accounts * (s0 + s1) * (e0 + e1) / 4
}

/// The exits an operator rents, shared by all of a campaign's accounts:
/// hosting proxies (about one per three accounts, in blocks of adjacent
/// addresses of a few /24s) or a residential pool over every region, large
/// enough that reuse of an address between accounts is rare but possible.
fn exit_pool(rng: &mut ChaCha8Rng, c: &CampaignConfig) -> Vec<(u32, String)> {
    if c.residential_proxies {
        let count = (c.accounts * RESIDENTIAL_EXITS_PER_ACCOUNT)
            .max(expected_requests(c) * RESIDENTIAL_EXITS_PER_REQUEST);
        infra::residential_exits(rng, count)
    } else {
        let count = (c.accounts / ACCOUNTS_PER_HOSTING_EXIT).clamp(8, 1500);
        infra::hosting_exits(rng, count, HOSTING_EXITS_PER_24)
    }
}

/// The operator's wording (or, with a disguise, a borrowed user wording).
fn campaign_template(rng: &mut ChaCha8Rng, w: &Wordings, c: &CampaignConfig) -> CampaignTemplate {
    match c.disguise {
        Disguise::Student => CampaignTemplate::borrowed(rng, w.student_asks),
        Disguise::Developer => CampaignTemplate::borrowed(rng, w.developer_asks),
        Disguise::None => CampaignTemplate::harvest(rng, harvest_parts(w, c.kind)),
    }
}

/// The template parts of an operator harvesting for `kind`.
fn harvest_parts(w: &Wordings, kind: CampaignKind) -> &HarvestParts {
    match kind {
        CampaignKind::CotHarvest => &w.cot,
        CampaignKind::CodeDistill => &w.code,
        CampaignKind::ToolTrace => &w.tool,
        CampaignKind::CoverageSweep => &w.sweep,
    }
}

/// Disguised, the answers are as long as those of the users the campaign
/// words itself like.
fn answer_tokens(disguise: Disguise) -> (f64, f64) {
    match disguise {
        Disguise::None => HARVEST_ANSWER_TOKENS,
        Disguise::Student => STUDENT_ANSWER_TOKENS,
        Disguise::Developer => DEVELOPER_ANSWER_TOKENS,
    }
}

/// The pools a campaign of `kind` harvests.
fn harvested_pools(kind: CampaignKind) -> &'static [Pool] {
    match kind {
        CampaignKind::CotHarvest => &[Pool::GradeMath, Pool::CompetitionMath, Pool::Reasoning],
        CampaignKind::CodeDistill => &[Pool::Code],
        CampaignKind::ToolTrace => &[Pool::ToolUse],
        CampaignKind::CoverageSweep => &[
            Pool::Chat,
            Pool::GradeMath,
            Pool::CompetitionMath,
            Pool::Reasoning,
            Pool::Code,
            Pool::ToolUse,
        ],
    }
}

/// When an account's session starts, given the earliest instant.
fn session_start(
    rng: &mut ChaCha8Rng,
    cadence: Cadence,
    after: DateTime<Utc>,
    region: &str,
) -> DateTime<Utc> {
    match cadence {
        Cadence::ScheduledBursts => {
            let hour = after
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc()
                + Duration::hours(rng.random_range(0..24));
            hour + Duration::milliseconds(rng.random_range(0..3000))
        }
        Cadence::HumanJitter => timing::start_time(
            rng,
            after,
            after + Duration::days(1),
            region,
            Rhythm::People,
        ),
        Cadence::Machine => after,
    }
}

/// The gap before an account's next request.
fn request_gap(rng: &mut ChaCha8Rng, cadence: Cadence, interval_s: f64) -> Duration {
    match cadence {
        Cadence::Machine => timing::machine_gap(rng, interval_s, 0.1),
        Cadence::ScheduledBursts => timing::machine_gap(rng, interval_s / 3.0, 0.3),
        Cadence::HumanJitter => timing::human_gap(rng, 40.0),
    }
}

impl<'a> World<'a> {
    /// One extraction campaign: an operator with many accounts, a shared
    /// template and task queue, a rented pool of proxy exits all accounts
    /// rotate through, and scripted timing, with the evasions the config
    /// turns on.
    pub fn campaign(&mut self, c: &CampaignConfig) -> Result<(), WorldError> {
        let mut rng = self.rng(&format!("campaign/{}", c.id));
        let mut op = self.operator(&mut rng, c)?;
        let delay = rng.random_range(c.start_delay_days[0]..=c.start_delay_days[1]);
        let campaign_start = self.config.model_release
            + Duration::days(i64::from(delay))
            + Duration::minutes(rng.random_range(0..1440));
        for _ in 0..c.accounts {
            let account_start = campaign_start
                + Duration::minutes(rng.random_range(0..i64::from(c.duration_days) * 1440));
            self.campaign_account(&mut rng, c, &mut op, account_start);
        }
        Ok(())
    }

    /// The operator's shared set-up: task queue, template, clients, exits.
    fn operator(
        &self,
        rng: &mut ChaCha8Rng,
        c: &CampaignConfig,
    ) -> Result<Operator<'a>, WorldError> {
        let who = format!("campaign {}", c.id);
        let mut queue = Vec::new();
        for &pool in harvested_pools(c.kind) {
            queue.extend_from_slice(self.pool(pool, &who)?);
        }
        let padding_pool = self.pool(Pool::Chat, &who)?;
        queue.shuffle(rng);
        let template = campaign_template(rng, self.wordings, c);
        let agents = (0..2)
            .map(|_| pick(rng, infra::SCRIPTED_USER_AGENTS))
            .collect();
        Ok(Operator {
            queue,
            cursor: 0,
            padding_pool,
            exits: exit_pool(rng, c),
            agents,
            template,
            answer_tokens: answer_tokens(c.disguise),
            interval_s: rng.random_range(1.0..5.0),
        })
    }

    /// One account of a campaign and all its sessions.
    fn campaign_account(
        &mut self,
        rng: &mut ChaCha8Rng,
        c: &CampaignConfig,
        op: &mut Operator,
        first_use: DateTime<Utc>,
    ) {
        let mut p = self.campaign_persona(rng, c, first_use);
        op.use_exit(rng, &mut p);
        p.user_agent = if c.spoofed_user_agents {
            pick(rng, infra::BROWSER_USER_AGENTS)
        } else {
            op.agents[rng.random_range(0..op.agents.len())]
        }
        .to_string();
        let template = if c.paraphrase_per_account {
            campaign_template(rng, self.wordings, c)
        } else {
            op.template.clone()
        };
        let sessions = rng.random_range(c.sessions_per_account[0]..=c.sessions_per_account[1]);
        let mut after = first_use;
        for _ in 0..sessions {
            let start = session_start(rng, c.cadence, after, p.region);
            let end = self.campaign_session(rng, c, op, &mut p, &template, start);
            after = end + Duration::minutes(rng.random_range(45..(3 * 1440)));
        }
    }

    /// One session of a campaign account; returns when it ended.
    fn campaign_session(
        &mut self,
        rng: &mut ChaCha8Rng,
        c: &CampaignConfig,
        op: &mut Operator,
        p: &mut Persona,
        template: &CampaignTemplate,
        start: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let mut ts = start;
        let n = rng.random_range(c.events_per_session[0]..=c.events_per_session[1]);
        let mut d = SessionDraft::new();
        for _ in 0..n {
            // Rotating proxies: another of the rented exits for most requests.
            if rng.random_bool(ROTATE_SHARE) {
                op.use_exit(rng, p);
            }
            let (prompt, tokens) = self.campaign_request(rng, c, op, template, &mut d.units);
            d.push(p, ts, prompt, MODEL_NEW, tokens);
            ts += request_gap(rng, c.cadence, op.interval_s);
        }
        self.emit(p, d, c.kind.archetype(), Some(&c.id));
        ts
    }

    /// One request: padding chat (evasion) or the next task of the queue
    /// in the account's template; with its answer length.
    fn campaign_request(
        &self,
        rng: &mut ChaCha8Rng,
        c: &CampaignConfig,
        op: &mut Operator,
        template: &CampaignTemplate,
        units: &mut Vec<String>,
    ) -> (String, f64) {
        if rng.random_bool(c.benign_padding) {
            let item = self.draw(rng, op.padding_pool);
            units.push(item.unit.clone());
            let tokens = timing::lognormal_seconds(rng, 250.0, 0.6);
            return (wording::casual(rng, item.text.clone()), tokens);
        }
        let item = &self.corpora.items[op.next_task()];
        units.push(item.unit.clone());
        let (median, sigma) = op.answer_tokens;
        let tokens = timing::lognormal_seconds(rng, median, sigma);
        let prompt = template.render(&item.text, &item.topic);
        let prompt = if c.disguise == Disguise::None {
            prompt
        } else {
            wording::casual(rng, prompt)
        };
        (prompt, tokens)
    }

    /// A campaign account: fresh and lightly verified, or (evasion) an old
    /// verified paying one. Its exit is set by the operator.
    fn campaign_persona(
        &mut self,
        rng: &mut ChaCha8Rng,
        c: &CampaignConfig,
        first_use: DateTime<Utc>,
    ) -> Persona {
        let region = infra::pick_region(rng);
        let (tier, verified, created) = if c.aged_accounts {
            (
                weighted(rng, &[("pro", 80), ("enterprise", 20)]),
                true,
                first_use - Duration::days(rng.random_range(300..1500)),
            )
        } else {
            (
                weighted(
                    rng,
                    &[("edu", 35), ("startup", 25), ("research", 15), ("free", 25)],
                ),
                rng.random_bool(0.1),
                first_use - Duration::hours(rng.random_range(2..240)),
            )
        };
        Persona {
            account_id: self.ids.mint("acct"),
            account: Account {
                created_at: Some(created),
                tier: Some(tier.to_string()),
                verified: Some(verified),
                region: Some(region.0.to_string()),
            },
            region: region.0,
            asn: 0,
            ip: String::new(),
            user_agent: String::new(),
        }
    }
}
