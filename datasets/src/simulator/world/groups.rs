//! Benign coordination: groups of unrelated or loosely related accounts
//! that share what campaigns share (networks, wordings, timing, account
//! creation waves) without extracting anything. Classrooms, companies
//! behind one NAT, and VPN customers.

use chrono::{DateTime, Duration, Utc};
use rand::{seq::IndexedRandom, Rng};
use rand_chacha::ChaCha8Rng;

use super::{
    pick_u32, HumanPace, Persona, Visit, World, WorldError, DEVELOPER_ANSWER_TOKENS,
    STUDENT_ANSWER_TOKENS,
};
use crate::simulator::{
    corpus::Pool,
    infra::{self, pick},
    timing::{self, Rhythm},
    wording,
};

/// Share of a classroom's accounts created in the start-of-term wave.
const TERM_WAVE_SHARE: f64 = 0.6;
/// Share of classroom sessions sent from the campus network.
const ON_CAMPUS_SHARE: f64 = 0.7;
/// Share of a VPN customer's sessions through their usual exit.
const USUAL_EXIT_SHARE: f64 = 0.7;
/// VPN sessions per exit the providers run (at least 3, at most 48 exits).
const VPN_SESSIONS_PER_EXIT: usize = 10;
/// VPN exits come in blocks of this many addresses per /24.
const VPN_EXITS_PER_24: (usize, usize) = (4, 12);

/// What a class shares: a campus network, a homework set, the week it is
/// worked on and the start of term.
struct Cohort {
    region: &'static str,
    asn: u32,
    campus_ips: Vec<String>,
    homework: Vec<usize>,
    week: (DateTime<Utc>, DateTime<Utc>),
    term_start: DateTime<Utc>,
}

/// What a company's employees share: the office region, the NAT egress,
/// the internal tool (wrapper, task pool, SDK).
struct Company<'a> {
    region: &'static str,
    asn: u32,
    ip: String,
    user_agent: &'static str,
    tool: &'static str,
    pool: &'a [usize],
}

/// Which ordinary user a VPN customer is.
#[derive(Debug, Clone, Copy)]
enum Asker {
    Chat,
    Developer,
    Student,
}

/// The pools ordinary users ask from.
struct AskPools<'a> {
    chat: &'a [usize],
    code: &'a [usize],
    math: &'a [usize],
}

/// A size drawn log-uniformly from `[lo, hi]`: small groups are common.
fn log_uniform(rng: &mut ChaCha8Rng, [lo, hi]: [usize; 2]) -> usize {
    let (lo_f, hi_f) = (lo as f64, hi as f64);
    let x = lo_f * (hi_f / lo_f).powf(rng.random::<f64>());
    (x.round() as usize).clamp(lo, hi)
}

impl Asker {
    fn draw(rng: &mut ChaCha8Rng) -> Self {
        match rng.random_range(0..4) {
            0 | 1 => Asker::Chat,
            2 => Asker::Developer,
            _ => Asker::Student,
        }
    }

    fn pace(self) -> HumanPace {
        match self {
            Asker::Chat => HumanPace::new(Rhythm::People, 60.0, 250.0, 0.6),
            Asker::Developer => {
                let (tokens, spread) = DEVELOPER_ANSWER_TOKENS;
                HumanPace::new(Rhythm::People, 90.0, tokens, spread)
            }
            Asker::Student => {
                let (tokens, spread) = STUDENT_ANSWER_TOKENS;
                HumanPace::new(Rhythm::Students, 75.0, tokens, spread)
            }
        }
    }
}

impl<'a> World<'a> {
    /// Classroom cohorts: students on one university network (a few
    /// addresses of one /24, or home connections) asking, each in their own
    /// words, about the same homework set in the same week; most of a
    /// class's accounts were created in one burst at the start of term.
    pub fn classrooms(
        &mut self,
        cohorts: usize,
        size: [usize; 2],
        sessions_each: [usize; 2],
    ) -> Result<(), WorldError> {
        let mut rng = self.rng("classroom");
        let pools = [
            self.pool(Pool::GradeMath, "classroom")?,
            self.pool(Pool::CompetitionMath, "classroom")?,
            self.pool(Pool::Reasoning, "classroom")?,
        ];
        for _ in 0..cohorts {
            let class = self.cohort(&mut rng, &pools);
            for _ in 0..rng.random_range(size[0]..=size[1]) {
                self.classroom_student(&mut rng, &class, sessions_each);
            }
        }
        Ok(())
    }

    /// A class: campus network, homework set, week and term start.
    fn cohort(&self, rng: &mut ChaCha8Rng, pools: &[&[usize]]) -> Cohort {
        let asn = *pick_u32(rng, infra::UNIVERSITY_ASNS);
        let egress = rng.random_range(1..=3);
        let campus_ips = infra::addresses_in_24(rng, asn, egress);
        let pool = pools[rng.random_range(0..pools.len())];
        let problems = rng.random_range(5..=10);
        let homework = pool.choose_multiple(rng, problems).copied().collect();
        let (from, to) = self.window();
        let span = (to - from - Duration::days(7)).num_seconds().max(0);
        let start = from + Duration::seconds(rng.random_range(0..=span));
        Cohort {
            region: infra::pick_region(rng).0,
            asn,
            campus_ips,
            homework,
            week: (start, (start + Duration::days(7)).min(to)),
            term_start: start - Duration::days(rng.random_range(30..=200)),
        }
    }

    /// One student of a class and their sessions.
    fn classroom_student(&mut self, rng: &mut ChaCha8Rng, class: &Cohort, sessions: [usize; 2]) {
        let mut home = self.person_in(
            rng,
            class.region,
            &[("edu", 80), ("free", 20)],
            0.25,
            (0, 0),
        );
        home.account.created_at = Some(if rng.random_bool(TERM_WAVE_SHARE) {
            class.term_start + Duration::seconds(rng.random_range(0..3 * 86_400))
        } else {
            class.term_start - Duration::days(rng.random_range(30..1500))
        });
        let ask = pick(rng, self.wordings.student_asks);
        let (tokens, spread) = STUDENT_ANSWER_TOKENS;
        let pace = HumanPace::new(Rhythm::Students, 75.0, tokens, spread);
        for _ in 0..rng.random_range(sessions[0]..=sessions[1]) {
            let mut p = home.clone();
            if rng.random_bool(ON_CAMPUS_SHARE) {
                p.asn = class.asn;
                p.ip = class.campus_ips.choose(rng).expect("campus egress").clone();
            }
            let (from, to) = class.week;
            let visit = Visit {
                persona: &p,
                start: timing::start_time(rng, from, to, p.region, Rhythm::Students),
                requests: timing::count_with_mean(rng, 3.0, 10),
            };
            self.visit(rng, &visit, "classroom", pace, |w, rng, i, units| {
                let own = (i == 0 || rng.random_bool(0.3)).then_some(ask);
                w.student_prompt(rng, &class.homework, own, i, units)
            });
        }
    }

    /// Companies: employees (verified enterprise accounts created over
    /// months) behind one NAT egress IP, all using one internal tool whose
    /// wrapper text and SDK are the same, in office hours.
    pub fn companies(
        &mut self,
        groups: usize,
        size: [usize; 2],
        sessions_each: [usize; 2],
    ) -> Result<(), WorldError> {
        let mut rng = self.rng("company");
        let chat = self.pool(Pool::Chat, "company")?;
        let code = self.pool(Pool::Code, "company")?;
        for _ in 0..groups {
            let company = self.company(&mut rng, chat, code);
            for _ in 0..log_uniform(&mut rng, size) {
                self.employee(&mut rng, &company, sessions_each);
            }
        }
        Ok(())
    }

    /// A company: office region, NAT egress (a cloud NAT gateway or a
    /// business line of a local network, one fixed IP), internal tool.
    fn company(&self, rng: &mut ChaCha8Rng, chat: &'a [usize], code: &'a [usize]) -> Company<'a> {
        let region = infra::pick_region(rng).0;
        let asn = if rng.random_bool(0.6) {
            *pick_u32(rng, infra::LISTED_CLOUD_ASNS)
        } else {
            infra::residential_asn(rng, region)
        };
        let &(pool, tool) = self
            .wordings
            .company_tool_templates
            .choose(rng)
            .expect("company tools");
        Company {
            region,
            asn,
            ip: infra::address_in(rng, asn, false),
            user_agent: pick(rng, infra::SDK_USER_AGENTS),
            tool,
            pool: if pool == Pool::Code { code } else { chat },
        }
    }

    /// One employee of a company and their sessions with the tool.
    fn employee(&mut self, rng: &mut ChaCha8Rng, company: &Company, sessions: [usize; 2]) {
        let mut p = self.person_in(rng, company.region, &[("enterprise", 100)], 1.0, (60, 720));
        p.asn = company.asn;
        p.ip = company.ip.clone();
        p.user_agent = company.user_agent.to_string();
        let pace = HumanPace::new(Rhythm::Office, 60.0, 300.0, 0.5);
        for _ in 0..rng.random_range(sessions[0]..=sessions[1]) {
            let (from, to) = self.window();
            let visit = Visit {
                persona: &p,
                start: timing::start_time(rng, from, to, p.region, Rhythm::Office),
                requests: timing::count_with_mean(rng, 2.5, 8),
            };
            self.visit(rng, &visit, "company", pace, |w, rng, _, units| {
                let item = w.draw(rng, company.pool);
                units.push(item.unit.clone());
                wording::fill(company.tool, &item.text)
            });
        }
    }

    /// Ordinary people (chat, developer and student asks) connecting
    /// through commercial VPNs: a few exits in hosting networks, each
    /// shared by many unrelated accounts.
    pub fn vpn_users(&mut self, sessions: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("vpn");
        let pools = AskPools {
            chat: self.pool(Pool::Chat, "vpn")?,
            code: self.pool(Pool::Code, "vpn")?,
            math: self.pool(Pool::GradeMath, "vpn")?,
        };
        let exit_count = (sessions / VPN_SESSIONS_PER_EXIT).clamp(3, 48);
        let exits = infra::hosting_exits(&mut rng, exit_count, VPN_EXITS_PER_24);
        let mut made = 0;
        while made < sessions {
            let p = self.person(&mut rng, &[("free", 70), ("pro", 30)], 0.6, (-20, 1500));
            let usual = exits.choose(&mut rng).expect("vpn exits");
            let asker = Asker::draw(&mut rng);
            let k = timing::count_with_mean(&mut rng, 2.0, 8).min(sessions - made);
            for _ in 0..k {
                let mut p = p.clone();
                let exit = if rng.random_bool(USUAL_EXIT_SHARE) {
                    usual
                } else {
                    exits.choose(&mut rng).expect("vpn exits")
                };
                (p.asn, p.ip) = exit.clone();
                self.vpn_session(&mut rng, &p, asker, &pools);
                made += 1;
            }
        }
        Ok(())
    }

    /// One session of a VPN customer, asked the way their kind of user asks.
    fn vpn_session(&mut self, rng: &mut ChaCha8Rng, p: &Persona, asker: Asker, pools: &AskPools) {
        let n = timing::count_with_mean(rng, 3.0, 12);
        self.human_session(
            rng,
            p,
            "vpn",
            n,
            asker.pace(),
            |w, rng, i, units| match asker {
                Asker::Chat => w.chat_prompt(rng, pools.chat, i, units),
                Asker::Developer => w.developer_prompt(rng, pools.code, i, units),
                Asker::Student => w.student_prompt(rng, pools.math, None, i, units),
            },
        )
    }
}
