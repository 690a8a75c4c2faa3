//! The project's own prompt wordings that wrap corpus text: how students,
//! developers, pipelines and campaign operators phrase their requests.
//! `{task}` marks where the corpus text goes.
//!
//! Every list lives in a [`Wordings`]: [`Wordings::DEFAULT`] words the
//! default world, [`Wordings::HELD_OUT`] (config `shift.held_out_wordings`)
//! says the same things in other words, sharing no entry with it.

use rand::Rng;

use super::{config::ShiftConfig, corpus::Pool, infra::pick};

mod default;
mod held_out;

/// Every wording list a world draws from.
#[derive(Debug, Clone, Copy)]
pub struct Wordings {
    /// Students pasting homework.
    pub student_asks: &'static [&'static str],
    /// Student follow-ups inside the same session.
    pub student_follow_ups: &'static [&'static str],
    /// Everyday chat follow-ups.
    pub chat_follow_ups: &'static [&'static str],
    /// Developers asking about a programming task (`{task}` or
    /// `{task_lower}`).
    pub developer_asks: &'static [&'static str],
    /// Developers' own, non-corpus questions.
    pub developer_questions: &'static [&'static str],
    /// Developer follow-ups.
    pub developer_follow_ups: &'static [&'static str],
    /// Agent applications: a system frame around a user request with tools.
    pub agent_frames: &'static [&'static str],
    /// Agent loop continuations (tool results fed back).
    pub agent_continuations: &'static [&'static str],
    /// Probers mixing in harmless questions between attempts.
    pub prober_openers: &'static [&'static str],
    /// Enterprise pipelines' fixed templates (labeling, extraction,
    /// translation ...), each with whether its answers are a few tokens.
    pub pipeline_templates: &'static [(&'static str, bool)],
    /// Eval-harness prompt formats.
    pub harness_templates: &'static [HarnessTemplate],
    /// A few-shot harness's worked example: `{question}`, `{steps}` (one
    /// of `exemplar_steps`) and `{answer}`.
    pub exemplar: &'static str,
    /// The reasoning of a few-shot harness's worked examples.
    pub exemplar_steps: &'static [&'static str],
    /// Companies' internal tools: one fixed wrapper per tool around what
    /// the employee typed, with the pool the employees' tasks come from.
    pub company_tool_templates: &'static [(Pool, &'static str)],
    /// Chain-of-thought harvesting templates.
    pub cot: HarvestParts,
    /// Code distillation templates (explain, then implement).
    pub code: HarvestParts,
    /// Tool-trace harvesting: ReAct and function-calling frames.
    pub tool: HarvestParts,
    /// Capability sweeps: framing across topics (`{topic}`).
    pub sweep: HarvestParts,
}

impl Wordings {
    /// The default world's wordings.
    pub const DEFAULT: Wordings = default::WORDINGS;
    /// The shifted world's wordings: the same intents and styles as
    /// [`Wordings::DEFAULT`], list for list, in other words.
    pub const HELD_OUT: Wordings = held_out::WORDINGS;

    /// The wordings a config's world uses.
    pub fn select(shift: &ShiftConfig) -> &'static Wordings {
        if shift.held_out_wordings {
            &Self::HELD_OUT
        } else {
            &Self::DEFAULT
        }
    }

    /// Every list with its name, as plain texts (templates without their
    /// flags; a campaign kind's heads, tails and layouts as lists of their
    /// own).
    pub fn lists(&self) -> Vec<(String, Vec<&'static str>)> {
        let mut lists: Vec<(String, Vec<&'static str>)> = [
            ("student_asks", self.student_asks),
            ("student_follow_ups", self.student_follow_ups),
            ("chat_follow_ups", self.chat_follow_ups),
            ("developer_asks", self.developer_asks),
            ("developer_questions", self.developer_questions),
            ("developer_follow_ups", self.developer_follow_ups),
            ("agent_frames", self.agent_frames),
            ("agent_continuations", self.agent_continuations),
            ("prober_openers", self.prober_openers),
            ("exemplar", std::slice::from_ref(&self.exemplar)),
            ("exemplar_steps", self.exemplar_steps),
        ]
        .into_iter()
        .map(|(name, list)| (name.to_string(), list.to_vec()))
        .collect();
        lists.push((
            "pipeline_templates".into(),
            self.pipeline_templates.iter().map(|t| t.0).collect(),
        ));
        lists.push((
            "harness_templates".into(),
            self.harness_templates.iter().map(|t| t.text).collect(),
        ));
        lists.push((
            "company_tool_templates".into(),
            self.company_tool_templates.iter().map(|t| t.1).collect(),
        ));
        for (kind, parts) in [
            ("cot", &self.cot),
            ("code", &self.code),
            ("tool", &self.tool),
            ("sweep", &self.sweep),
        ] {
            lists.extend(parts.lists(kind));
        }
        lists
    }
}

/// The parts an operator's harvesting template is assembled from: one
/// entry of each head list (joined), a tail, and a layout placing
/// `{head}`, `{tail}` and `{task}`.
#[derive(Debug, Clone, Copy)]
pub struct HarvestParts {
    /// Head lists (opener, demand ...), one entry drawn from each.
    pub heads: &'static [&'static [&'static str]],
    /// Closing demands or output formats (`""` = none).
    pub tails: &'static [&'static str],
    /// Where the task goes relative to the instructions.
    pub layouts: &'static [&'static str],
}

impl HarvestParts {
    /// The head lists, tails and layouts, named after `kind`.
    fn lists(&self, kind: &str) -> Vec<(String, Vec<&'static str>)> {
        let heads = self.heads.iter().enumerate();
        heads
            .map(|(i, h)| (format!("{kind}.heads[{i}]"), h.to_vec()))
            .chain([
                (format!("{kind}.tails"), self.tails.to_vec()),
                (format!("{kind}.layouts"), self.layouts.to_vec()),
            ])
            .collect()
    }
}

/// What an eval-harness format asks the model to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HarnessAnswer {
    /// Chain of thought before the answer (the only formats researchers
    /// use).
    Reasoning,
    /// The answer with at most brief working.
    Brief,
    /// The answer alone (a letter or a number).
    Bare,
}

/// One eval-harness prompt format. `{shots}` marks where a few-shot
/// harness puts its worked examples (see [`Harness`]).
#[derive(Debug, Clone, Copy)]
pub struct HarnessTemplate {
    /// The prompt, with `{task}` (and `{shots}`).
    pub text: &'static str,
    /// What it asks the model to answer with.
    pub answer: HarnessAnswer,
    /// Whether it needs items with lettered options.
    pub multiple_choice: bool,
}

impl HarnessTemplate {
    /// Whether it asks for step-by-step reasoning.
    pub fn is_chain_of_thought(&self) -> bool {
        self.answer == HarnessAnswer::Reasoning
    }

    /// Whether it starts with worked examples.
    pub fn is_few_shot(&self) -> bool {
        self.text.contains("{shots}")
    }
}

/// One eval harness's prompt format: a harness template and, when it has
/// `{shots}`, the fixed worked examples every prompt starts with.
#[derive(Debug, Clone)]
pub struct Harness {
    template: &'static HarnessTemplate,
    shots: String,
}

impl Harness {
    /// A harness over `template`; a few-shot one works `examples` (two or
    /// three items of the benchmark) into its fixed prefix, in the
    /// exemplar wording of `wordings`.
    pub fn new<R: Rng>(
        rng: &mut R,
        wordings: &Wordings,
        template: &'static HarnessTemplate,
        examples: &[&str],
    ) -> Self {
        let shots = if template.is_few_shot() {
            examples
                .iter()
                .map(|q| worked_example(rng, wordings, q))
                .collect()
        } else {
            String::new()
        };
        Harness { template, shots }
    }

    /// Median answer length: reasoning for chain-of-thought and few-shot
    /// formats, a few tokens for answer-only ones.
    pub fn answer_tokens_median(&self) -> f64 {
        let t = self.template;
        if t.is_chain_of_thought() || t.is_few_shot() {
            350.0
        } else if t.answer == HarnessAnswer::Bare {
            6.0
        } else {
            150.0
        }
    }

    /// The prompt for one task.
    pub fn render(&self, task: &str) -> String {
        self.template
            .text
            .replace("{shots}", &self.shots)
            .replace("{task}", task)
    }
}

/// The worked example for one question (`Q: ... A: ... So the answer is
/// X.` by default): a lettered option when it has options, else a number.
fn worked_example<R: Rng>(rng: &mut R, wordings: &Wordings, question: &str) -> String {
    let letters: Vec<char> = ('A'..='G')
        .filter(|l| question.contains(&format!("({l})")))
        .collect();
    let answer = if letters.is_empty() {
        rng.random_range(2..200).to_string()
    } else {
        format!("({})", letters[rng.random_range(0..letters.len())])
    };
    wordings
        .exemplar
        .replace("{steps}", pick(rng, wordings.exemplar_steps))
        .replace("{answer}", &answer)
        .replace("{question}", question)
}

/// A wording assembled from parts: the shape of one campaign (or, with
/// per-account paraphrasing, of one account).
#[derive(Debug, Clone)]
pub struct CampaignTemplate {
    layout: String,
}

impl CampaignTemplate {
    /// An operator's harvesting template assembled from `parts` (one of
    /// [`Wordings::cot`], [`Wordings::code`], [`Wordings::tool`],
    /// [`Wordings::sweep`]).
    pub fn harvest<R: Rng>(rng: &mut R, parts: &HarvestParts) -> Self {
        let head = parts
            .heads
            .iter()
            .map(|part| pick(rng, part))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let tail = pick(rng, parts.tails);
        let layout = pick(rng, parts.layouts)
            .replace("{head}", &head)
            .replace("{tail}", tail);
        CampaignTemplate {
            layout: layout.trim().to_string(),
        }
    }

    /// One of ordinary users' wordings, chosen as an operator's template
    /// (the `disguise` evasion): one that carries the task and asks
    /// something of it (the operator wants the worked answer, so never the
    /// bare task).
    pub fn borrowed<R: Rng>(rng: &mut R, wordings: &[&str]) -> Self {
        let carrying: Vec<&str> = wordings
            .iter()
            .copied()
            .filter(|w| w.contains("{task") && w.trim() != "{task}")
            .collect();
        CampaignTemplate {
            layout: pick(rng, &carrying).to_string(),
        }
    }

    /// Fills in a task (and topic).
    pub fn render(&self, task: &str, topic: &str) -> String {
        fill(&self.layout.replace("{topic}", topic), task)
    }
}

/// Fills `{task}` / `{task_lower}` of a benign wording.
pub fn fill(template: &str, task: &str) -> String {
    if template.contains("{task_lower}") {
        let mut chars = task.chars();
        let lower = match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
            None => String::new(),
        };
        template.replace("{task_lower}", &lower)
    } else {
        template.replace("{task}", task)
    }
}

/// Casual typing: occasionally lowercase everything or drop the final
/// punctuation, as people do.
pub fn casual<R: Rng>(rng: &mut R, text: String) -> String {
    match rng.random_range(0..10) {
        0 => text.to_lowercase(),
        1 => text.trim_end_matches(['.', '?', '!']).to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every non-empty part of the operators' harvesting templates.
    fn campaign_parts(w: &Wordings) -> Vec<&'static str> {
        [w.cot, w.code, w.tool, w.sweep]
            .iter()
            .flat_map(|p| p.heads.iter().copied().chain([p.tails]))
            .flatten()
            .copied()
            .filter(|p| !p.is_empty())
            .collect()
    }

    #[test]
    fn benign_group_wordings_share_no_part_with_campaign_templates() {
        for w in [Wordings::DEFAULT, Wordings::HELD_OUT] {
            let benign = w
                .harness_templates
                .iter()
                .map(|t| t.text)
                .chain(w.company_tool_templates.iter().map(|t| t.1))
                .chain(w.pipeline_templates.iter().map(|t| t.0));
            for wording in benign {
                for part in campaign_parts(&w) {
                    assert!(!wording.contains(part), "{wording:?} contains {part:?}");
                }
            }
        }
    }

    #[test]
    fn held_out_wordings_keep_the_default_kinds() {
        let (d, h) = (Wordings::DEFAULT, Wordings::HELD_OUT);
        let harness_kind = |t: &HarnessTemplate| (t.answer, t.multiple_choice, t.is_few_shot());
        for t in d.harness_templates {
            let kind = harness_kind(t);
            let same = h
                .harness_templates
                .iter()
                .filter(|o| harness_kind(o) == kind);
            assert!(same.count() >= 1, "no held-out harness of kind {kind:?}");
        }
        let short = |w: &Wordings| w.pipeline_templates.iter().filter(|t| t.1).count();
        assert!(short(&h) >= short(&d));
        for pool in [Pool::Chat, Pool::Code] {
            let tools = |w: &Wordings| {
                let of_pool = w.company_tool_templates.iter().filter(|t| t.0 == pool);
                of_pool.count()
            };
            assert!(tools(&h) >= tools(&d), "{pool:?}");
        }
        for w in [d, h] {
            let carrying = |asks: &[&str]| asks.iter().any(|a| a.trim() != "{task}");
            assert!(carrying(w.student_asks) && carrying(w.developer_asks));
            assert!(w.exemplar.contains("{question}") && w.exemplar.contains("{steps}"));
        }
    }

    #[test]
    fn few_shot_harness_prefixes_worked_examples() {
        let mut rng = rand::rng();
        let w = Wordings::DEFAULT;
        let template = &w.harness_templates[2];
        assert!(template.is_few_shot());
        let examples = ["What is 2 + 3?", "Which is larger?\nOptions:\n(A) 4\n(B) 9"];
        let prompt = Harness::new(&mut rng, &w, template, &examples).render("What is 7 * 6?");
        assert!(prompt.starts_with("Q: What is 2 + 3?\nA: Let's think step by step."));
        assert!(
            prompt.contains("So the answer is (A).") || prompt.contains("So the answer is (B).")
        );
        assert!(prompt.ends_with("Q: What is 7 * 6?\nA: Let's think step by step."));
        let zero_shot = Harness::new(&mut rng, &w, &w.harness_templates[0], &examples).render("x");
        assert_eq!(zero_shot, "Q: x\nA: Let's think step by step.");
    }
}
