//! The campaign simulator: composes real prompt text into labeled sessions
//! with realistic accounts, infrastructure and timing, and splits them into
//! train / validation / test files.
//!
//! Deterministic: the same config (and seed) gives the same sessions.

pub mod config;
pub mod corpus;
pub mod infra;
pub mod timing;
pub mod wording;
pub mod world;

use rand::{seq::SliceRandom, Rng};

use config::{SimConfig, SplitMode, SplitName};
use corpus::Corpora;
use wording::Wordings;
use world::{sub_rng, GeneratedSession, IdMint, World, WorldError};

use crate::error::DataError;

/// Everything that can stop a dataset build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Corpus or output file problem.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A world could not be generated.
    #[error(transparent)]
    World(#[from] WorldError),
}

/// The three splits, each sorted by session start time.
#[derive(Debug, Clone, Default)]
pub struct SplitSessions {
    /// Training sessions.
    pub train: Vec<GeneratedSession>,
    /// Validation sessions.
    pub validation: Vec<GeneratedSession>,
    /// Test sessions.
    pub test: Vec<GeneratedSession>,
}

impl SplitSessions {
    /// The sessions of one split.
    pub fn get(&self, split: SplitName) -> &[GeneratedSession] {
        match split {
            SplitName::Train => &self.train,
            SplitName::Validation => &self.validation,
            SplitName::Test => &self.test,
        }
    }

    fn get_mut(&mut self, split: SplitName) -> &mut Vec<GeneratedSession> {
        match split {
            SplitName::Train => &mut self.train,
            SplitName::Validation => &mut self.validation,
            SplitName::Test => &mut self.test,
        }
    }
}

fn scaled(count: usize, fraction: f64) -> usize {
    (count as f64 * fraction).round() as usize
}

/// Groups scaled by `fraction`, at least one in every world when the
/// config asks for any.
fn scaled_groups(count: usize, fraction: f64) -> usize {
    if count == 0 {
        0
    } else {
        scaled(count, fraction).max(1)
    }
}

/// Generates one world in `wordings`: benign archetypes scaled by
/// `fraction`, plus the given campaigns.
fn generate_world<'c>(
    config: &SimConfig,
    corpora: &Corpora,
    wordings: &'static Wordings,
    split: Option<SplitName>,
    fraction: f64,
    campaigns: impl Iterator<Item = &'c config::CampaignConfig>,
    ids: &mut IdMint,
) -> Result<Vec<GeneratedSession>, BuildError> {
    let b = &config.benign;
    let mut world = World::new(config, corpora, wordings, split, ids);
    world.chat(scaled(b.chat_sessions, fraction))?;
    world.developers(scaled(b.developer_sessions, fraction))?;
    world.students(scaled(b.student_sessions, fraction))?;
    world.agents(scaled(b.agent_sessions, fraction))?;
    world.probers(scaled(b.prober_sessions, fraction))?;
    world.pipelines(
        scaled(b.pipeline_accounts, fraction).max(1),
        b.pipeline_sessions_per_account,
    )?;
    world.researchers(
        scaled(b.researcher_accounts, fraction).max(1),
        b.researcher_sessions_per_account,
    )?;
    world.lab_teams(
        scaled_groups(b.lab_teams, fraction),
        b.lab_team_size,
        b.lab_sessions_per_account,
    )?;
    world.classrooms(
        scaled_groups(b.classrooms, fraction),
        b.classroom_size,
        b.classroom_sessions_per_student,
    )?;
    world.companies(
        scaled_groups(b.company_groups, fraction),
        b.company_size,
        b.company_sessions_per_employee,
    )?;
    world.vpn_users(scaled(b.vpn_sessions, fraction))?;
    for c in campaigns {
        world.campaign(c)?;
    }
    Ok(world.into_sessions())
}

/// Generates and splits the whole dataset described by `config`.
pub fn simulate(config: &SimConfig) -> Result<SplitSessions, BuildError> {
    config.validate()?;
    let mut ids = IdMint::new(config.seed);
    let wordings = Wordings::select(&config.shift);
    let mut out = SplitSessions::default();
    let s = &config.split;
    match s.mode {
        SplitMode::Source => {
            let corpora = Corpora::load(&config.corpora_dir, Some(s))?;
            for split in SplitName::ALL {
                let fraction = match split {
                    SplitName::Train => 1.0 - s.validation_fraction - s.test_fraction,
                    SplitName::Validation => s.validation_fraction,
                    SplitName::Test => s.test_fraction,
                };
                let campaigns = config.campaigns.iter().filter(|c| c.split == split);
                *out.get_mut(split) = generate_world(
                    config,
                    &corpora,
                    wordings,
                    Some(split),
                    fraction,
                    campaigns,
                    &mut ids,
                )?;
            }
        }
        SplitMode::Random => {
            // Held-out tasks need the units' splits even here.
            let units = config.shift.held_out_tasks.then_some(s);
            let corpora = Corpora::load(&config.corpora_dir, units)?;
            let mut all = generate_world(
                config,
                &corpora,
                wordings,
                None,
                1.0,
                config.campaigns.iter(),
                &mut ids,
            )?;
            let mut rng = sub_rng(config.seed, "random-split");
            all.shuffle(&mut rng);
            for g in all {
                let x: f64 = rng.random();
                let split = if x < s.test_fraction {
                    SplitName::Test
                } else if x < s.test_fraction + s.validation_fraction {
                    SplitName::Validation
                } else {
                    SplitName::Train
                };
                out.get_mut(split).push(g);
            }
        }
    }
    for split in SplitName::ALL {
        out.get_mut(split).sort_by(|a, b| {
            (a.session.start(), &a.session.session_id)
                .cmp(&(b.session.start(), &b.session.session_id))
        });
    }
    Ok(out)
}
