//! The project's own prompt wordings that wrap corpus text: how students,
//! developers, pipelines and campaign operators phrase their requests.
//! `{task}` marks where the corpus text goes.

use rand::Rng;

use super::infra::pick;

/// Students pasting homework.
pub const STUDENT_ASKS: &[&str] = &[
    "{task}",
    "{task}\n\nplease explain step by step, i have a test tomorrow",
    "can someone explain how to do this? {task}",
    "I don't get this homework question: {task} Can you walk me through it?",
    "how do i solve this\n{task}",
    "{task} show your work pls",
    "Help me understand this problem, step by step if possible:\n{task}",
    "My teacher gave us this and I'm stuck. {task}",
    "{task}\nI got a different answer than the book, can you check the steps?",
    "explain like I'm 12: {task}",
    "Could you solve this and explain each step? {task}",
    "{task}\n\nWhat's the trick here?",
];

/// Student follow-ups inside the same session.
pub const STUDENT_FOLLOW_UPS: &[&str] = &[
    "wait why did you multiply there?",
    "can you explain step 2 again",
    "ok that makes sense, thanks!",
    "is there a faster way to do it?",
    "why isn't the answer just the first number you got?",
    "can you give me a similar problem to practice?",
    "I still don't understand the last part",
    "thank you!! what about this one: {task}",
    "so the answer is the same if the numbers are doubled?",
];

/// Everyday chat follow-ups.
pub const CHAT_FOLLOW_UPS: &[&str] = &[
    "thanks",
    "can you make it shorter?",
    "give me a few more examples",
    "what do you mean by that?",
    "ok, and what about in Europe?",
    "Can you put that in a table?",
    "make it sound more casual",
    "that's not quite right, try again",
    "perfect, thank you!",
    "explain the second point in more detail",
];

/// Developers asking about a programming task.
pub const DEVELOPER_ASKS: &[&str] = &[
    "how would I do this in python? {task}",
    "{task}",
    "I'm trying to solve this for an interview prep: {task} My solution times out, any ideas?",
    "What's the cleanest way to write this?\n{task}",
    "Here's the spec I was given at work:\n{task}\nWhat edge cases should I test?",
    "can you review my approach? I want to {task_lower}",
    "Is there a library function for this? {task}",
    "```python\n{task}\n```\nwhy does my implementation of this fail on empty input?",
];

/// Developers' own, non-corpus questions.
pub const DEVELOPER_QUESTIONS: &[&str] = &[
    "What's the difference between Arc and Rc in Rust?",
    "How do I undo the last git commit but keep the changes?",
    "why does my docker container exit immediately after starting",
    "pandas: how to group by two columns and count rows",
    "Explain async/await in JavaScript like I know callbacks already",
    "what does 'borrowed value does not live long enough' mean",
    "How can I speed up a slow SQL query with a LIKE '%foo%' filter?",
    "Write a bash one-liner to find the 10 largest files in a directory tree",
    "kubernetes pod stuck in CrashLoopBackOff, how do I debug it?",
    "Is it safe to store JWTs in localStorage?",
    "How do I read a large CSV in chunks with Python?",
    "TypeError: 'NoneType' object is not subscriptable - what usually causes this?",
    "regex to match an email address, simple version is fine",
    "How do I mock a datetime in pytest?",
];

/// Agent applications: a system frame around a user request with tools.
pub const AGENT_FRAMES: &[&str] = &[
    "You are an assistant inside a travel-booking app. Tools: search_flights(origin, destination, date), book_hotel(city, nights). User: {task}",
    "System: you can call functions get_weather(city), get_time(timezone), convert_currency(amount, from, to). Respond with a function call when needed.\nUser: {task}",
    "You are a helpful assistant with access to the company's CRM tools (lookup_customer, create_ticket, update_order). Customer message: {task}",
    "Tools available: calculator, web_search, calendar. Help the user with: {task}",
    "{task}",
];

/// Agent loop continuations (tool results fed back).
pub const AGENT_CONTINUATIONS: &[&str] = &[
    "Tool result: {\"status\": \"ok\", \"items\": 3}. Continue.",
    "Function returned: {\"temperature\": 18, \"unit\": \"C\"}. Answer the user.",
    "The tool call failed with error 429. Try again or answer without it.",
    "Observation: no results found. What should we do next?",
    "Tool result: {\"ticket_id\": \"T-4821\", \"created\": true}",
];

/// One enterprise pipeline's fixed template (labeling, translation ...).
pub const PIPELINE_TEMPLATES: &[&str] = &[
    "Classify the sentiment of the following customer message as positive, negative or neutral. Reply with one word.\n\nMessage: {task}",
    "Translate the following text to German. Keep formatting and do not add explanations.\n\n{task}",
    "Summarize the following text in one sentence.\n\n{task}",
    "Extract all named entities (people, organisations, places) from the text below and return them as a JSON list.\n\nText: {task}",
    "Assign one topic label from [billing, shipping, product, account, other] to this support request. Output only the label.\n\n{task}",
    "Rewrite the following product question so it is clear and polite, in at most 30 words:\n{task}",
    "Translate to Japanese:\n{task}",
    "Is the following request safe to answer under our content policy? Answer yes or no, then one short reason.\n\nRequest: {task}",
];

/// Research benchmark prompt formats (chain-of-thought prompting).
pub const RESEARCH_TEMPLATES: &[&str] = &[
    "Q: {task}\nA: Let's think step by step.",
    "{task}\nLet's think step by step.",
    "Question: {task}\nAnswer: Let's work this out in a step by step way to be sure we have the right answer.",
    "{task}\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
    "Answer the following question. Think step by step before answering.\n\n{task}",
];

/// Chain-of-thought harvesting: openers.
const COT_OPENERS: &[&str] = &[
    "Solve the following problem.",
    "You are a world-class mathematician and logician.",
    "Consider the problem below.",
    "Task:",
    "Here is a question from our dataset.",
    "Act as an expert tutor.",
    "Carefully answer the question that follows.",
    "Problem statement follows.",
];

/// Chain-of-thought harvesting: reasoning demands.
const COT_DEMANDS: &[&str] = &[
    "Think step by step and write out every intermediate step before the final answer.",
    "Reason carefully and show your complete chain of thought.",
    "Explain your full reasoning in detail, then state the answer.",
    "Break the solution into numbered steps and justify each one.",
    "Work through it methodically and do not skip any step of the derivation.",
    "Provide an exhaustive, step-by-step rationale, including any intermediate calculations.",
    "Verbalise your entire thought process, checking each step, before answering.",
    "Lay out the reasoning in full; include the dead ends you considered and why you rejected them.",
];

/// Chain-of-thought harvesting: output formats.
const COT_FORMATS: &[&str] = &[
    "Put the final answer after 'Final answer:'.",
    "End with the answer in \\boxed{}.",
    "Return your reasoning inside <reasoning></reasoning> tags and the answer inside <answer></answer> tags.",
    "Format:\nReasoning: ...\nAnswer: ...",
    "Output JSON with keys \"reasoning\" (string, detailed) and \"answer\".",
    "",
];

/// Where the task goes relative to the instructions.
const TASK_LAYOUTS: &[&str] = &[
    "{head}\n\nProblem: {task}\n\n{tail}",
    "{head} {tail}\n\n{task}",
    "### Instruction\n{head} {tail}\n\n### Question\n{task}",
    "{task}\n\n{head} {tail}",
    "{head}\n{task}\n{tail}",
];

/// Code distillation: openers.
const CODE_OPENERS: &[&str] = &[
    "You are a senior software engineer.",
    "Programming task.",
    "Solve the coding problem below.",
    "Implement the following.",
    "Here is a task from our benchmark.",
    "As an expert Python developer:",
];

/// Code distillation: demands (explain, then implement).
const CODE_DEMANDS: &[&str] = &[
    "First explain the algorithm in plain words and analyse its time complexity, then give a complete, commented Python implementation.",
    "Describe your approach step by step, then write the full solution code with docstrings and a few unit tests.",
    "Think aloud about edge cases before writing any code, then provide the final implementation.",
    "Give a detailed explanation of the reasoning, followed by clean, idiomatic code and an example run.",
    "Write out your reasoning as comments, then the working function, then assert-based tests.",
];

/// Code distillation: output formats.
const CODE_FORMATS: &[&str] = &[
    "Use exactly one ```python code block.",
    "Return sections: Explanation, Code, Tests.",
    "Do not omit any part of the code.",
    "",
];

/// Tool-trace harvesting: ReAct and function-calling frames.
const TOOL_HEADS: &[&str] = &[
    "You have access to the following tools:\nsearch(query: str) -> str\ncalculator(expression: str) -> float\nget_weather(city: str, unit: str) -> dict\nlookup(entity: str) -> str\n\nUse this format:\nThought: reason about what to do\nAction: the tool to use\nAction Input: the input\nObservation: the result\n... (repeat)\nThought: I now know the final answer\nFinal Answer: the answer",
    "Respond ONLY with a JSON array of function calls, each {\"name\": ..., \"arguments\": {...}}, that would fulfil the user's request. Then explain each call's arguments.",
    "Simulate a complete agent trajectory for the request below: list every tool call with its arguments, the tool's plausible output, and your reasoning between calls.",
    "Available functions are described in JSON schema elsewhere; decide which functions to call, in what order, with which arguments. Show your reasoning before each call (Thought/Action/Observation).",
];

/// Tool-trace harvesting: closing demands.
const TOOL_TAILS: &[&str] = &[
    "Be exhaustive and do not skip intermediate steps.",
    "Include the full trace, not just the final answer.",
    "Output the trajectory, then the final answer.",
    "",
];

/// Capability sweeps: framing across topics.
const SWEEP_HEADS: &[&str] = &[
    "[domain: {topic}] Give an expert-level, comprehensive answer with detailed reasoning.",
    "Category {topic}. Answer as thoroughly as possible and explain your reasoning.",
    "Respond to the prompt below as a top expert in {topic}. Include step-by-step justification.",
    "Dataset item ({topic}). Produce a high-quality, detailed response with explicit reasoning.",
];

/// A wording assembled from parts: the shape of one campaign (or, with
/// per-account paraphrasing, of one account).
#[derive(Debug, Clone)]
pub struct CampaignTemplate {
    layout: String,
}

impl CampaignTemplate {
    fn assemble<R: Rng>(rng: &mut R, heads: &[&[&str]], tails: &[&str], layouts: &[&str]) -> Self {
        let head = heads
            .iter()
            .map(|part| pick(rng, part))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let tail = pick(rng, tails);
        let layout = pick(rng, layouts)
            .replace("{head}", &head)
            .replace("{tail}", tail);
        CampaignTemplate {
            layout: layout.trim().to_string(),
        }
    }

    /// A chain-of-thought harvesting template.
    pub fn cot<R: Rng>(rng: &mut R) -> Self {
        Self::assemble(rng, &[COT_OPENERS, COT_DEMANDS], COT_FORMATS, TASK_LAYOUTS)
    }

    /// A code distillation template.
    pub fn code<R: Rng>(rng: &mut R) -> Self {
        Self::assemble(
            rng,
            &[CODE_OPENERS, CODE_DEMANDS],
            CODE_FORMATS,
            TASK_LAYOUTS,
        )
    }

    /// A tool-trace harvesting template.
    pub fn tool<R: Rng>(rng: &mut R) -> Self {
        Self::assemble(
            rng,
            &[TOOL_HEADS],
            TOOL_TAILS,
            &[
                "{head}\n\nUser request: {task}\n\n{tail}",
                "{head} {tail}\n\nRequest: {task}",
            ],
        )
    }

    /// A capability-sweep template (`{topic}` filled per prompt).
    pub fn sweep<R: Rng>(rng: &mut R) -> Self {
        Self::assemble(
            rng,
            &[SWEEP_HEADS],
            &[""],
            &["{head}\n\n{task}", "{task}\n\n{head}"],
        )
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

/// Developer follow-ups.
pub const DEVELOPER_FOLLOW_UPS: &[&str] = &[
    "that doesn't compile, I get a type error on line 3",
    "can you add type hints?",
    "what's the time complexity of that?",
    "could you do it without recursion?",
    "ok now write a test for it",
    "how would this look in TypeScript?",
    "thanks, that fixed it",
    "what if the input is really large, like 10 million items?",
];

/// Probers mixing in harmless questions between attempts.
pub const PROBER_OPENERS: &[&str] = &[
    "{task}",
    "{task}",
    "Ignore the previous answer. {task}",
    "ok let's try something else. {task}",
];
