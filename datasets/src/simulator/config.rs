//! Simulator configuration (TOML). Every knob has a default, so a config
//! file only lists what it changes; unknown keys are an error.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::schema::timestamp;

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// Config file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown or mistyped keys.
    #[error("{}: {source}", path.display())]
    Parse {
        /// Config file.
        path: PathBuf,
        /// Underlying error (with line and key).
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("config `{key}`: {message}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole simulator configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Directory of the prompt corpora (relative paths are relative to the
    /// config file).
    pub corpora_dir: PathBuf,
    /// First instant of simulated traffic.
    #[serde(with = "timestamp")]
    pub start: DateTime<Utc>,
    /// Length of the simulated traffic window, in days.
    pub days: u32,
    /// Release of the model that campaigns target; they start shortly after.
    #[serde(with = "timestamp")]
    pub model_release: DateTime<Utc>,
    /// How the train / validation / test files are split.
    pub split: SplitConfig,
    /// Benign traffic volume per archetype.
    pub benign: BenignConfig,
    /// Extraction campaigns.
    #[serde(default)]
    pub campaigns: Vec<CampaignConfig>,
    /// Distribution shift (`[shift]`): a world worded and tasked apart
    /// from the default one. Absent = no shift.
    #[serde(default)]
    pub shift: ShiftConfig,
}

/// A *shifted world*, to test that detection transfers: a model trained
/// on the default world's training split is scored on a world whose
/// wordings and tasks it has never seen. Both options default to off; a
/// config without `[shift]` builds exactly what it built before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftConfig {
    /// Every wording list the world draws from (campaign template parts
    /// and layouts, disguise wordings, student, developer, chat, agent and
    /// prober wordings, pipeline, harness and company-tool templates) is
    /// replaced by a second set with the same intents and styles in other
    /// words, sharing no entry with the default set
    /// ([`crate::simulator::wording::Wordings::HELD_OUT`]).
    #[serde(default)]
    pub held_out_wordings: bool,
    /// Every split draws its tasks only from the source units listed in
    /// `split.test_units` (the test split's pools), so with the default
    /// config's `test_units` none of the default training split's tasks
    /// appear. The shifted world's own splits then share their task
    /// sources: it is an evaluation world, not one to train and test in.
    #[serde(default)]
    pub held_out_tasks: bool,
}

impl ShiftConfig {
    /// The split whose task pools a world of `split` draws from: its own,
    /// or with `held_out_tasks` the test split's.
    pub fn task_split(&self, split: Option<SplitName>) -> Option<SplitName> {
        if self.held_out_tasks {
            Some(SplitName::Test)
        } else {
            split
        }
    }
}

/// Split strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SplitMode {
    /// Campaign- and source-disjoint: each campaign and each task source
    /// unit belongs to exactly one split.
    Source,
    /// Sessions assigned to splits at random (leaks campaigns and sources
    /// across splits; for comparison only).
    Random,
}

/// Split settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// `source` (default) or `random`.
    pub mode: SplitMode,
    /// Share of benign traffic (and, in random mode, of all sessions) in
    /// the validation file.
    pub validation_fraction: f64,
    /// Share in the test file.
    pub test_fraction: f64,
    /// Source units held out for validation (patterns, see
    /// [`crate::simulator::corpus::unit_matches`]).
    #[serde(default)]
    pub validation_units: Vec<String>,
    /// Source units held out for test.
    #[serde(default)]
    pub test_units: Vec<String>,
}

/// Benign volume over the whole dataset (each split gets its fraction):
/// sessions, accounts or groups per archetype.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenignConfig {
    /// People chatting about everyday topics.
    pub chat_sessions: usize,
    /// Developers asking coding questions.
    pub developer_sessions: usize,
    /// Students pasting homework and asking for step-by-step help.
    pub student_sessions: usize,
    /// Agent / tool-use applications.
    pub agent_sessions: usize,
    /// Users probing system prompts or jailbreaking (bad, not distillation).
    pub prober_sessions: usize,
    /// Enterprise automation accounts (one template, high volume).
    pub pipeline_accounts: usize,
    /// Sessions per pipeline account.
    pub pipeline_sessions_per_account: usize,
    /// Research accounts running chain-of-thought benchmarks.
    pub researcher_accounts: usize,
    /// Sessions per researcher account.
    pub researcher_sessions_per_account: usize,
    /// Eval-lab teams: a few accounts behind one egress IP running the
    /// same benchmark subset through one harness template, in sync.
    #[serde(default)]
    pub lab_teams: usize,
    /// Accounts per lab team, inclusive range.
    #[serde(default = "default_lab_team_size")]
    pub lab_team_size: [usize; 2],
    /// Benchmark runs (sessions) per lab-team account, inclusive range.
    #[serde(default = "default_lab_sessions")]
    pub lab_sessions_per_account: [usize; 2],
    /// Classroom cohorts: students on one university network asking about
    /// the same homework set in the same week, many of their accounts
    /// created in one burst at the start of term.
    #[serde(default)]
    pub classrooms: usize,
    /// Students per classroom, inclusive range.
    #[serde(default = "default_classroom_size")]
    pub classroom_size: [usize; 2],
    /// Sessions per student, inclusive range.
    #[serde(default = "default_classroom_sessions")]
    pub classroom_sessions_per_student: [usize; 2],
    /// Companies whose employees use one internal tool (one wrapper text,
    /// one SDK) from behind one NAT egress IP.
    #[serde(default)]
    pub company_groups: usize,
    /// Employees per company, inclusive range (drawn log-uniformly: small
    /// companies are more common).
    #[serde(default = "default_company_size")]
    pub company_size: [usize; 2],
    /// Sessions per employee, inclusive range.
    #[serde(default = "default_company_sessions")]
    pub company_sessions_per_employee: [usize; 2],
    /// Sessions of ordinary people (chat, developer and student asks)
    /// connecting through commercial VPNs: few hosting exits shared by
    /// many unrelated accounts.
    #[serde(default)]
    pub vpn_sessions: usize,
}

fn default_lab_team_size() -> [usize; 2] {
    [2, 5]
}
fn default_lab_sessions() -> [usize; 2] {
    [4, 10]
}
fn default_classroom_size() -> [usize; 2] {
    [15, 60]
}
fn default_classroom_sessions() -> [usize; 2] {
    [1, 3]
}
fn default_company_size() -> [usize; 2] {
    [8, 80]
}
fn default_company_sessions() -> [usize; 2] {
    [2, 6]
}

/// `[min, max]` with `1 <= min <= max`, or the error for `key`.
fn check_range(key: String, [lo, hi]: [usize; 2]) -> Result<(), ConfigError> {
    if lo == 0 || lo > hi {
        return Err(invalid(key, "must be [min, max] with 1 <= min <= max"));
    }
    Ok(())
}

impl BenignConfig {
    /// Checks the group-size and per-member session ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, range) in [
            ("lab_team_size", self.lab_team_size),
            ("lab_sessions_per_account", self.lab_sessions_per_account),
            ("classroom_size", self.classroom_size),
            (
                "classroom_sessions_per_student",
                self.classroom_sessions_per_student,
            ),
            ("company_size", self.company_size),
            (
                "company_sessions_per_employee",
                self.company_sessions_per_employee,
            ),
        ] {
            check_range(format!("benign.{field}"), range)?;
        }
        Ok(())
    }
}

/// What a campaign harvests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// Chain-of-thought over math / reasoning task pools.
    CotHarvest,
    /// Explain-then-implement over coding tasks.
    CodeDistill,
    /// Agentic / tool-use traces (ReAct formats, function calls).
    ToolTrace,
    /// Capability-coverage sweeps across every topic.
    CoverageSweep,
}

impl CampaignKind {
    /// Archetype name written to sessions.
    pub fn archetype(self) -> &'static str {
        match self {
            CampaignKind::CotHarvest => "cot_harvest",
            CampaignKind::CodeDistill => "code_distill",
            CampaignKind::ToolTrace => "tool_trace",
            CampaignKind::CoverageSweep => "coverage_sweep",
        }
    }
}

/// Request timing of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Fixed interval with small jitter, any time of day.
    Machine,
    /// Runs that start on the hour, following a job schedule.
    ScheduledBursts,
    /// Human-like think times and waking hours (evasion).
    HumanJitter,
}

/// Whose wording a campaign borrows (evasion): instead of the operator's
/// harvesting template, each task is wrapped in one of the phrasings
/// ordinary users of that kind type, the answers are as long as theirs,
/// and the typing is as casual. What stays is the operator's: one wording
/// across all accounts (unless `paraphrase_per_account`), the task queue,
/// the proxies and the cadence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disguise {
    /// The operator's own harvesting template.
    #[default]
    None,
    /// Students asking for homework help.
    Student,
    /// Developers asking about a programming task.
    Developer,
}

/// Which split a campaign's sessions go to (source mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    /// Training file.
    Train,
    /// Validation file.
    Validation,
    /// Test file.
    Test,
}

impl SplitName {
    /// All splits, in file order.
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Validation, SplitName::Test];

    /// File stem of the split.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Validation => "validation",
            SplitName::Test => "test",
        }
    }
}

/// One extraction campaign: an operator running many accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Campaign id written to sessions (`campaign_id`).
    pub id: String,
    /// What it harvests.
    pub kind: CampaignKind,
    /// Split its sessions belong to (source mode).
    pub split: SplitName,
    /// Number of accounts the operator runs.
    pub accounts: usize,
    /// Sessions per account, inclusive range.
    pub sessions_per_account: [usize; 2],
    /// Requests per session, inclusive range.
    pub events_per_session: [usize; 2],
    /// Days after the model release the campaign starts, inclusive range.
    #[serde(default = "default_start_delay")]
    pub start_delay_days: [u32; 2],
    /// Days the campaign runs.
    #[serde(default = "default_duration")]
    pub duration_days: u32,
    /// Request timing.
    #[serde(default = "default_cadence")]
    pub cadence: Cadence,
    /// Evasion: each account words the template differently.
    #[serde(default)]
    pub paraphrase_per_account: bool,
    /// Evasion: share of requests replaced by ordinary chat prompts.
    #[serde(default)]
    pub benign_padding: f64,
    /// Evasion: exit through residential proxies instead of hosting ASNs.
    #[serde(default)]
    pub residential_proxies: bool,
    /// Evasion: old, verified, paying accounts instead of fresh ones.
    #[serde(default)]
    pub aged_accounts: bool,
    /// Evasion: browser user agents instead of scripted clients.
    #[serde(default)]
    pub spoofed_user_agents: bool,
    /// Evasion: word requests like ordinary users (`none`, `student`,
    /// `developer`).
    #[serde(default)]
    pub disguise: Disguise,
}

fn default_start_delay() -> [u32; 2] {
    [0, 5]
}
fn default_duration() -> u32 {
    14
}
fn default_cadence() -> Cadence {
    Cadence::Machine
}

impl SimConfig {
    /// Reads, parses and validates a TOML config; resolves `corpora_dir`
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: SimConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        if config.corpora_dir.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            config.corpora_dir = base.join(&config.corpora_dir);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.days == 0 {
            return Err(invalid("days", "must be at least 1"));
        }
        let end = self.start + chrono::Duration::days(i64::from(self.days));
        if self.model_release < self.start || self.model_release >= end {
            return Err(invalid(
                "model_release",
                "must fall inside the traffic window",
            ));
        }
        let s = &self.split;
        for (key, v) in [
            ("split.validation_fraction", s.validation_fraction),
            ("split.test_fraction", s.test_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(invalid(key, "must be in [0, 1)"));
            }
        }
        if s.validation_fraction + s.test_fraction >= 1.0 {
            return Err(invalid(
                "split",
                "validation_fraction + test_fraction must be below 1",
            ));
        }
        if self.shift.held_out_tasks && s.test_units.is_empty() {
            return Err(invalid(
                "shift.held_out_tasks",
                "needs split.test_units to draw tasks from",
            ));
        }
        self.benign.validate()?;
        let mut ids = std::collections::HashSet::new();
        for (i, c) in self.campaigns.iter().enumerate() {
            let key = |field: &str| format!("campaigns[{i}].{field}");
            if c.id.is_empty() || !ids.insert(c.id.as_str()) {
                return Err(invalid(key("id"), "must be non-empty and unique"));
            }
            if c.accounts == 0 {
                return Err(invalid(key("accounts"), "must be at least 1"));
            }
            for (field, range) in [
                ("sessions_per_account", c.sessions_per_account),
                ("events_per_session", c.events_per_session),
            ] {
                check_range(key(field), range)?;
            }
            if c.start_delay_days[0] > c.start_delay_days[1] {
                return Err(invalid(key("start_delay_days"), "must be [min, max]"));
            }
            if c.duration_days == 0 {
                return Err(invalid(key("duration_days"), "must be at least 1"));
            }
            if !(0.0..0.9).contains(&c.benign_padding) {
                return Err(invalid(key("benign_padding"), "must be in [0, 0.9)"));
            }
        }
        Ok(())
    }

    /// End of the traffic window.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::days(i64::from(self.days))
    }
}
