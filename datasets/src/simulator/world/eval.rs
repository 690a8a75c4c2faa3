//! Evaluation traffic: single researchers and eval-lab teams running
//! benchmark subsets through harness templates at machine cadence.

use chrono::{DateTime, Duration, Utc};
use rand::{
    seq::{IndexedRandom, SliceRandom},
    Rng,
};
use rand_chacha::ChaCha8Rng;

use super::{pick_u32, Persona, SessionDraft, World, WorldError, MODEL_OLD, MODEL_SMALL};
use crate::simulator::{
    corpus::Pool,
    infra::{self, pick},
    timing::{self, Rhythm},
    wording::{Harness, HarnessTemplate},
};

/// Items a benchmark subset keeps.
const SUBSET_ITEMS: usize = 300;
/// Items one benchmark run sends, inclusive range.
const RUN_ITEMS: (usize, usize) = (30, 120);
/// Lab-team members start a shared run within this many seconds.
const TEAM_SYNC_S: i64 = 600;
/// Tiers of lab-team accounts.
const LAB_TIERS: &[(&str, u32)] = &[("research", 60), ("enterprise", 40)];
/// Age of lab-team accounts, days.
const LAB_ACCOUNT_AGE_DAYS: (i64, i64) = (100, 1500);

/// A benchmark an eval harness runs: a fixed subset of one pool's items,
/// and whether they all have lettered options.
struct Benchmark {
    items: Vec<usize>,
    multiple_choice: bool,
}

impl Benchmark {
    /// `n` consecutive items from a random place (wrapping around).
    fn run_items(&self, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let n = rng.random_range(RUN_ITEMS.0..=RUN_ITEMS.1);
        let offset = rng.random_range(0..self.items.len());
        (0..n)
            .map(|k| self.items[(offset + k) % self.items.len()])
            .collect()
    }
}

/// A harness set up on a benchmark: its prompt format and the source
/// units of the worked examples it carries.
struct EvalHarness {
    harness: Harness,
    units: Vec<String>,
}

/// One benchmark run: which items, when, how fast, against which model.
struct EvalRun<'h> {
    format: &'h EvalHarness,
    items: Vec<usize>,
    start: DateTime<Utc>,
    interval_s: f64,
    model: &'static str,
}

impl<'a> World<'a> {
    /// Researchers running chain-of-thought benchmarks from one verified
    /// account: a fixed subset, two harness formats, reruns.
    pub fn researchers(&mut self, accounts: usize, sessions_each: usize) -> Result<(), WorldError> {
        let mut rng = self.rng("researcher");
        for _ in 0..accounts {
            let p = self.eval_persona(&mut rng, &[("research", 70), ("edu", 30)], (100, 1000));
            let mut bench = self.benchmark(&mut rng, "researcher")?;
            let formats: Vec<EvalHarness> = (0..2)
                .map(|_| self.harness(&mut rng, &mut bench, HarnessTemplate::is_chain_of_thought))
                .collect();
            let interval_s = rng.random_range(1.0..4.0);
            let (from, to) = self.window();
            for s in 0..sessions_each {
                let start = timing::start_time(&mut rng, from, to, p.region, Rhythm::AnyHour);
                let run = EvalRun {
                    format: &formats[s % formats.len()],
                    start,
                    items: bench.run_items(&mut rng),
                    interval_s,
                    model: self.current_large_model(start),
                };
                self.eval_session(&mut rng, &p, &run, "researcher");
            }
        }
        Ok(())
    }

    /// Eval-lab teams: 2-5 accounts of one lab behind one egress IP, one
    /// harness template and benchmark subset, every member running the
    /// same items on the same days within minutes of each other (each
    /// against another model version).
    pub fn lab_teams(
        &mut self,
        teams: usize,
        size: [usize; 2],
        sessions_each: [usize; 2],
    ) -> Result<(), WorldError> {
        let mut rng = self.rng("lab_team");
        for _ in 0..teams {
            let count = rng.random_range(size[0]..=size[1]);
            let members = self.lab_members(&mut rng, count);
            let mut bench = self.benchmark(&mut rng, "lab_team")?;
            let format = self.harness(&mut rng, &mut bench, |_| true);
            let runs = rng.random_range(sessions_each[0]..=sessions_each[1]);
            let (from, to) = self.window();
            for _ in 0..runs {
                let start =
                    timing::start_time(&mut rng, from, to, members[0].region, Rhythm::People);
                let items = bench.run_items(&mut rng);
                for (k, p) in members.iter().enumerate() {
                    let run = EvalRun {
                        format: &format,
                        items: items.clone(),
                        start: start + Duration::seconds(rng.random_range(0..TEAM_SYNC_S)),
                        interval_s: rng.random_range(1.0..4.0),
                        model: [self.current_large_model(start), MODEL_OLD, MODEL_SMALL][k % 3],
                    };
                    self.eval_session(&mut rng, p, &run, "lab_team");
                }
            }
        }
        Ok(())
    }

    /// A lab's accounts: one region, one egress IP (a university or cloud
    /// network), one harness client.
    fn lab_members(&mut self, rng: &mut ChaCha8Rng, count: usize) -> Vec<Persona> {
        let first = self.eval_persona(rng, LAB_TIERS, LAB_ACCOUNT_AGE_DAYS);
        let mut members = vec![first.clone()];
        for _ in 1..count {
            let mut p = self.person(rng, LAB_TIERS, 1.0, LAB_ACCOUNT_AGE_DAYS);
            p.region = first.region;
            p.account.region = first.account.region.clone();
            p.asn = first.asn;
            p.ip = first.ip.clone();
            p.user_agent = first.user_agent.clone();
            members.push(p);
        }
        members
    }

    /// A verified, aged account running evals from a university or cloud
    /// network with an SDK or a scripted client.
    fn eval_persona(
        &mut self,
        rng: &mut ChaCha8Rng,
        tiers: &[(&str, u32)],
        age_days: (i64, i64),
    ) -> Persona {
        let mut p = self.person(rng, tiers, 1.0, age_days);
        p.asn = if rng.random_bool(0.5) {
            *pick_u32(rng, infra::UNIVERSITY_ASNS)
        } else {
            *pick_u32(rng, infra::LISTED_CLOUD_ASNS)
        };
        p.ip = infra::address_in(rng, p.asn, false);
        p.user_agent = if rng.random_bool(0.5) {
            pick(rng, infra::SCRIPTED_USER_AGENTS)
        } else {
            pick(rng, infra::SDK_USER_AGENTS)
        }
        .to_string();
        p
    }

    /// A benchmark subset: grade-school math, competition math, reasoning
    /// puzzles, or the reasoning puzzles with lettered options.
    fn benchmark(&self, rng: &mut ChaCha8Rng, who: &str) -> Result<Benchmark, WorldError> {
        let kind = rng.random_range(0..4);
        let pool = [
            Pool::GradeMath,
            Pool::CompetitionMath,
            Pool::Reasoning,
            Pool::Reasoning,
        ][kind];
        let all = self.pool(pool, who)?;
        let lettered: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| self.corpora.items[i].text.contains("\nOptions:"))
            .collect();
        let multiple_choice = kind == 3 && lettered.len() >= 8;
        let mut items = if multiple_choice {
            lettered
        } else {
            all.to_vec()
        };
        items.shuffle(rng);
        items.truncate(SUBSET_ITEMS);
        Ok(Benchmark {
            items,
            multiple_choice,
        })
    }

    /// A harness on `bench` with a template that `fits` (and suits the
    /// benchmark); a few-shot one takes its examples off the benchmark.
    fn harness(
        &self,
        rng: &mut ChaCha8Rng,
        bench: &mut Benchmark,
        fits: impl Fn(&HarnessTemplate) -> bool,
    ) -> EvalHarness {
        let templates: Vec<&'static HarnessTemplate> = self
            .wordings
            .harness_templates
            .iter()
            .filter(|t| fits(t) && (bench.multiple_choice || !t.multiple_choice))
            .collect();
        let template = *templates.choose(rng).expect("a harness template fits");
        let shots = if template.is_few_shot() {
            rng.random_range(2..=3).min(bench.items.len() - 1)
        } else {
            0
        };
        let examples: Vec<&str> = bench.items[..shots]
            .iter()
            .map(|&i| self.corpora.items[i].text.as_str())
            .collect();
        let units = bench.items[..shots]
            .iter()
            .map(|&i| self.corpora.items[i].unit.clone())
            .collect();
        let harness = Harness::new(rng, self.wordings, template, &examples);
        bench.items.drain(..shots);
        EvalHarness { harness, units }
    }

    /// One benchmark run of `p`: the run's items in the harness format at
    /// machine cadence.
    fn eval_session(&mut self, rng: &mut ChaCha8Rng, p: &Persona, run: &EvalRun, archetype: &str) {
        let mut ts = run.start;
        let mut d = SessionDraft::new();
        d.units.extend(run.format.units.iter().cloned());
        let median = run.format.harness.answer_tokens_median();
        for &i in &run.items {
            let item = &self.corpora.items[i];
            d.units.push(item.unit.clone());
            let tokens = timing::lognormal_seconds(rng, median, 0.4);
            d.push(
                p,
                ts,
                run.format.harness.render(&item.text),
                run.model,
                tokens,
            );
            ts += timing::machine_gap(rng, run.interval_s, 0.3);
        }
        self.emit(p, d, archetype, None);
    }
}
