//! The shifted world's wordings ([`Wordings::HELD_OUT`]): list for list the
//! same intents and styles as the default ones, in other words. No entry
//! with words is shared with the default lists, nor any longer phrase of
//! them; entries without words (the bare `{task}`, the empty tail) are
//! structure and kept in the same proportions.

use super::{HarnessAnswer, HarnessTemplate, HarvestParts, Wordings};
use crate::simulator::corpus::Pool;

/// The shifted world's wordings.
pub(super) const WORDINGS: Wordings = Wordings {
    student_asks: STUDENT_ASKS,
    student_follow_ups: STUDENT_FOLLOW_UPS,
    chat_follow_ups: CHAT_FOLLOW_UPS,
    developer_asks: DEVELOPER_ASKS,
    developer_questions: DEVELOPER_QUESTIONS,
    developer_follow_ups: DEVELOPER_FOLLOW_UPS,
    agent_frames: AGENT_FRAMES,
    agent_continuations: AGENT_CONTINUATIONS,
    prober_openers: PROBER_OPENERS,
    pipeline_templates: PIPELINE_TEMPLATES,
    harness_templates: HARNESS_TEMPLATES,
    exemplar: "Question: {question}\nWorking: we take it one stage at a time. {steps} Hence the result is {answer}.\n\n",
    exemplar_steps: EXEMPLAR_STEPS,
    company_tool_templates: COMPANY_TOOL_TEMPLATES,
    cot: HarvestParts {
        heads: &[COT_OPENERS, COT_DEMANDS],
        tails: COT_FORMATS,
        layouts: TASK_LAYOUTS,
    },
    code: HarvestParts {
        heads: &[CODE_OPENERS, CODE_DEMANDS],
        tails: CODE_FORMATS,
        layouts: TASK_LAYOUTS,
    },
    tool: HarvestParts {
        heads: &[TOOL_HEADS],
        tails: TOOL_TAILS,
        layouts: &[
            "{head}\n\nWhat the user wants: {task}\n\n{tail}",
            "{head} {tail}\n\nTask from the user: {task}",
        ],
    },
    sweep: HarvestParts {
        heads: &[SWEEP_HEADS],
        tails: &[""],
        layouts: &["{head}\n---\n{task}", "{task}\n---\n{head}"],
    },
};

/// Students pasting homework.
const STUDENT_ASKS: &[&str] = &[
    "{task}",
    "{task}\n\nhelp??",
    "need help with this one, go through it with me pls:\n{task}",
    "{task}\n\ncould you go over how to get the answer? exam on friday",
    "stuck on my assignment. {task} where do i even start",
    "Can you break this down for me one part at a time? {task}",
    "{task} i keep getting the wrong number, what am i missing",
    "Our tutor set this for practice and I'm lost:\n{task}",
    "how do you work this out?? {task}",
    "{task}\nplease write out all the working so i can follow",
    "Explain this to me simply, I'm bad at math: {task}",
    "Homework question, I need to understand the method and not just the result. {task}",
    "{task}\n\nis there a shortcut for these?",
    "quick one from my worksheet: {task}",
];

/// Student follow-ups inside the same session.
const STUDENT_FOLLOW_UPS: &[&str] = &[
    "hold on, where did the 3 come from?",
    "could you redo the second part more slowly",
    "got it now, thank you so much",
    "is there an easier method?",
    "why can't I just add them together?",
    "can you make up another one like it so I can try",
    "the end still confuses me",
    "great, now this one please: {task}",
    "would it change if the numbers were negative?",
    "so what's the final result then",
];

/// Everyday chat follow-ups.
const CHAT_FOLLOW_UPS: &[&str] = &[
    "cheers",
    "shorter please",
    "any other examples?",
    "not sure I follow, could you clarify?",
    "and how does that work in Asia?",
    "could you format that as a list?",
    "say it in a friendlier way",
    "hmm, that seems wrong, check again",
    "great, exactly what I needed",
    "go deeper on the first point",
    "where does that come from?",
];

/// Developers asking about a programming task.
const DEVELOPER_ASKS: &[&str] = &[
    "any idea how to do this in rust? {task}",
    "{task}",
    "{task}\n\n(need it for a side project)",
    "Practising for coding interviews: {task} Mine is too slow on big inputs, how can I speed it up?",
    "What's an idiomatic way to implement this?\n{task}",
    "My lead handed me this ticket:\n{task}\nWhich corner cases would you cover?",
    "sanity check my plan please, I need to {task_lower}",
    "does the standard library already cover this? {task}",
    "```py\n{task}\n```\nmy version crashes when the list has one element, why?",
    "Help me write this cleanly in Go: {task}",
];

/// Developers' own, non-corpus questions.
const DEVELOPER_QUESTIONS: &[&str] = &[
    "How do I rebase a feature branch onto main without losing my commits?",
    "What's the difference between a process and a thread, briefly?",
    "npm install keeps failing with EACCES, how do I fix permissions?",
    "In Go, when should I use a buffered channel?",
    "numpy: how to normalise each row of a matrix so it sums to 1",
    "Why is my React component re-rendering on every keystroke?",
    "what does 'cannot move out of borrowed content' mean in rust",
    "postgres: how do I find which queries are slowest?",
    "How do I make a Python script accept command-line flags?",
    "Explain CORS errors and how to fix them on the server side",
    "What's the recommended way to hash passwords in Node these days?",
    "How can I run a single test function with cargo?",
    "segmentation fault (core dumped) in my C program, where do I start looking?",
    "How do I set environment variables for a systemd service?",
    "terraform plan shows changes I never made, why?",
];

/// Developer follow-ups.
const DEVELOPER_FOLLOW_UPS: &[&str] = &[
    "this throws a NameError when I run it",
    "could you annotate the types?",
    "how fast is that in big-O terms?",
    "can you write it iteratively instead?",
    "now add some unit tests please",
    "what would the Java version look like?",
    "works now, thanks a lot",
    "will it still be fast with a billion rows?",
    "can you explain the third line?",
];

/// Agent applications: a system frame around a user request with tools.
const AGENT_FRAMES: &[&str] = &[
    "You are the assistant of a food-delivery app. Tools: find_restaurants(cuisine, area), place_order(restaurant_id, items), track_order(order_id). User: {task}",
    "System: functions you may call: search_docs(query), send_email(to, subject, body), create_event(title, start, end). Call one whenever it helps.\nUser: {task}",
    "You help customers of an online bank and can use get_balance(account), list_transactions(account, days), freeze_card(card_id). Message from the customer: {task}",
    "Tools: python_exec, file_search, http_get. Complete the user's task: {task}",
    "[tools: maps_lookup, translate, currency_rates]\n{task}",
    "{task}",
];

/// Agent loop continuations (tool results fed back).
const AGENT_CONTINUATIONS: &[&str] = &[
    "Tool output: {\"ok\": true, \"count\": 7}. Go on.",
    "Result of call: {\"balance\": 1240.5, \"currency\": \"EUR\"}. Reply to the customer.",
    "The function timed out after 30 s. Retry once or reply with what you have.",
    "Tool output: []. Decide the next step.",
    "Tool response: {\"event_id\": \"E-77\", \"scheduled\": true}",
    "Error from tool: invalid argument 'date'. Fix the call and retry.",
];

/// Probers mixing in harmless questions between attempts.
const PROBER_OPENERS: &[&str] = &[
    "{task}",
    "{task}",
    "forget what you said before. {task}",
    "new attempt: {task}",
    "Let's start over. {task}",
];

/// Enterprise pipelines' fixed templates (labeling, extraction,
/// translation ...), each with whether its answers are a few tokens.
const PIPELINE_TEMPLATES: &[(&str, bool)] = &[
    ("Label the customer's tone: answer POS, NEG or NEU and nothing else.\n\n{task}", true),
    ("Render this text in French, preserving line breaks. Output the translation only.\n\n{task}", false),
    ("Give a two-line abstract of the text below.\n\n{task}", false),
    ("Find every person, company and location mentioned below. Output JSON: {\"people\": [], \"orgs\": [], \"places\": []}.\n\n{task}", false),
    ("Route this support message to one queue: payments, delivery, hardware, login, misc. Print the queue name only.\n\n{task}", true),
    ("Clean up the wording of this customer question; keep it under 25 words and keep the meaning.\n{task}", false),
    ("Translate into Korean:\n{task}", false),
    ("Moderation check: may our assistant respond to the message below? Reply ALLOW or BLOCK followed by a brief justification.\n\nInput: {task}", false),
    ("Tag the utterance for our dialogue model as one of: ask, instruct, chat. Output just the tag.\n\n{task}", true),
    ("Detect the language of the text and output its English name in one word.\n\n{task}", true),
    ("On a scale of 1-5, how complex is this ticket for tier-1 support? Digit only.\n\n{task}", true),
    ("Pull out the main claims of the passage as a short numbered list, using only what the passage states.\n\nText:\n{task}", false),
    ("Fill this schema from the message and return it as JSON only: {\"category\": ..., \"item\": ..., \"priority\": \"1|2|3\"}\n\n{task}", false),
    ("Convert the following text into Mexican Spanish. Reply with the translated text alone.\n<<<\n{task}\n>>>", false),
    ("Generate two paraphrases of the request below, one formal and one casual, as a JSON list.\n\n{task}", false),
    ("Scan the text for personal information such as names, phone numbers or street addresses. Output YES if any is present, otherwise NO.\n\n{task}", true),
    ("Extract the date, amount and vendor from this receipt text as one CSV row.\n\n{task}", false),
];

/// Eval-harness prompt formats, in the words of other harnesses: zero-
/// and few-shot chain of thought, multiple choice, result-only formats and
/// item/response framing.
const HARNESS_TEMPLATES: &[HarnessTemplate] = &[
    HarnessTemplate {
        text: "Question: {task}\nWorking: we take it one stage at a time.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{task}\n\nWork through this gradually, writing down each intermediate result.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{shots}Question: {task}\nWorking: we take it one stage at a time.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{shots}Question: {task}\nResult:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Below are multiple-choice items, each followed by its solution. Reason through the item carefully and close with \"Hence the result is (X)\", X being the letter of the correct option.\n\n{shots}Question: {task}\nWorking: we take it one stage at a time.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: true,
    },
    HarnessTemplate {
        text: "Pick the correct choice for the item below. Before choosing, reason it through in detail. Finish with a line 'Choice: X' where X is the label of the option you picked.\n\n{task}",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: true,
    },
    HarnessTemplate {
        text: "{task}\nReply with just the label of the right option.",
        answer: HarnessAnswer::Bare,
        multiple_choice: true,
    },
    HarnessTemplate {
        text: "{task}\n\nShow the full derivation, then write the result inside \\fbox{}.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Solve briefly and write only the result inside \\fbox{}.\n\nExercise:\n{task}\n\nWorked solution:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{task}\nRespond with the result alone; no working.\nResult:",
        answer: HarnessAnswer::Bare,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Item from an evaluation suite. Respond to it as accurately as you can.\n\nItem: {task}\nResponse:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Respond to the question with a sentence or two of justification, and put the result by itself on the last line.\n\n{task}",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Exercise: {task}\nThink carefully through each stage of the solution before you reply.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
];

/// The reasoning of a few-shot harness's worked examples (the harness
/// author's own, short, before "Hence the result is ...").
const EXEMPLAR_STEPS: &[&str] = &[
    "Listing the given quantities and combining them in order gives the value, which we then compare with what was asked.",
    "Taking the clues one by one and noting what each rules out leaves a single candidate.",
    "Writing the stated relation as an equation and solving it yields the requested quantity.",
    "Testing every choice against the constraints eliminates all of them except one.",
];

/// Companies' internal tools: one fixed wrapper per tool around what the
/// employee typed, with the pool the employees' tasks come from.
const COMPANY_TOOL_TEMPLATES: &[(Pool, &str)] = &[
    (Pool::Chat, "[SupportGenie] Read this customer ticket, give a one-line summary, then a suggested response:\n{task}"),
    (Pool::Chat, "[MemoWriter] Turn the text below into a concise note for the team, 150 words max.\n===\n{task}"),
    (Pool::Chat, "[DealDesk AI] Write a polite response email to the client message below.\nClient: {task}"),
    (Pool::Chat, "[AskHR-bot] A colleague asks the following. Reply clearly and kindly; say when you don't know.\nAsk: {task}"),
    (Pool::Chat, "[MinutesMaker] Extract decisions and to-dos from these meeting notes:\n{task}"),
    (Pool::Chat, "[Intranet Search+] Reply in plain words that any employee would understand:\n{task}"),
    (Pool::Chat, "[LegalLite] Flag anything in this text our legal team should look at, then summarise it:\n{task}"),
    (Pool::Code, "[CodePilot-internal] Help a colleague build what is described below; sketch the code and name common mistakes.\nStory: {task}"),
    (Pool::Code, "[PR-Helper] Write the code for this issue and outline tests that would cover it.\nIssue: {task}"),
    (Pool::Code, "[fn-gen] Produce one small, clearly named function that does the following: {task}"),
];

/// Chain-of-thought harvesting: openers.
const COT_OPENERS: &[&str] = &[
    "Here is a problem to solve.",
    "You are an expert in mathematics and formal logic.",
    "Look at the question below.",
    "Query:",
    "The following comes from our problem set.",
    "Take the role of a patient teacher.",
    "Answer the next question with care.",
    "The question is given below.",
];

/// Chain-of-thought harvesting: reasoning demands.
const COT_DEMANDS: &[&str] = &[
    "Walk through your reasoning one step at a time, then state the result.",
    "Write down your whole line of thought before you commit to an answer.",
    "Describe every stage of your thinking in full, then give the result.",
    "Split the solution into numbered stages and explain why each one holds.",
    "Proceed carefully and include every intermediate calculation; leave nothing out.",
    "Give a thorough justification covering each intermediate value you compute.",
    "Think out loud through the entire problem, double-checking each stage, before you reply.",
    "Spell out the full derivation, including approaches you tried and abandoned, with the reason for dropping each.",
];

/// Chain-of-thought harvesting: output formats.
const COT_FORMATS: &[&str] = &[
    "Write the result after 'Result:'.",
    "Finish with the result inside \\fbox{}.",
    "Wrap the thinking in <thinking></thinking> and the result in <final></final>.",
    "Layout:\nSteps: ...\nResult: ...",
    "Reply as JSON with fields \"steps\" (a detailed string) and \"result\".",
    "",
];

/// Where the task goes relative to the instructions.
const TASK_LAYOUTS: &[&str] = &[
    "{head}\n\nQuestion: {task}\n\n{tail}",
    "{head} {tail}\n---\n{task}",
    "## Task description\n{head} {tail}\n\n## Input\n{task}",
    "{task}\n---\n{head} {tail}",
    "{head}\n\n{task}\n\n{tail}",
];

/// Code distillation: openers.
const CODE_OPENERS: &[&str] = &[
    "You are a principal engineer.",
    "Coding exercise.",
    "Work out the programming problem below.",
    "Build the following.",
    "This task is taken from our evaluation set.",
    "As an experienced Python programmer:",
];

/// Code distillation: demands (explain, then implement).
const CODE_DEMANDS: &[&str] = &[
    "Start by describing the algorithm in prose along with its running time, then write a full Python implementation with comments.",
    "Outline your plan stage by stage, then give the complete code with docstrings plus a handful of unit tests.",
    "Discuss the tricky inputs out loud before coding, then present the finished implementation.",
    "Explain the idea behind the solution thoroughly, then give tidy, idiomatic code and a sample run.",
    "Put your reasoning in code comments, then the function itself, then tests written with assert.",
    "Begin with the approach and its complexity, continue with the code, and end with a short test suite.",
];

/// Code distillation: output formats.
const CODE_FORMATS: &[&str] = &[
    "Put all code in a single fenced block.",
    "Use the headings Approach, Implementation, Tests.",
    "Never abbreviate or elide code.",
    "",
];

/// Tool-trace harvesting: ReAct and function-calling frames.
const TOOL_HEADS: &[&str] = &[
    "Tools you may call:\nweb_lookup(q: str) -> str\nmath_eval(expr: str) -> float\nforecast(location: str, units: str) -> dict\nwiki(topic: str) -> str\n\nReply in this format:\nPlan: what to do next\nTool: the tool's name\nTool input: its arguments\nTool output: what it returned\n... (as many times as needed)\nPlan: ready to reply\nResult: the reply to the user",
    "Reply with nothing but a JSON list of tool invocations, each {\"tool\": ..., \"args\": {...}}, that together satisfy the request; afterwards justify every argument.",
    "Write out an entire agent run for the request: every tool invocation with its arguments, a realistic tool response, and your thinking between invocations.",
    "The callable functions are defined by JSON schemas you have been given; choose which to call, in which order and with what arguments. Before each call write your plan (Plan/Call/Result).",
];

/// Tool-trace harvesting: closing demands.
const TOOL_TAILS: &[&str] = &[
    "Cover every intermediate move; skip nothing.",
    "Give the whole trajectory, not only the result.",
    "Print the trace first and the result last.",
    "",
];

/// Capability sweeps: framing across topics.
const SWEEP_HEADS: &[&str] = &[
    "[area: {topic}] Write an authoritative, complete reply and justify it in detail.",
    "Subject {topic}. Be as thorough as you can and lay out your thinking.",
    "Reply to the following as a leading specialist in {topic} would, justifying each point.",
    "Benchmark entry ({topic}). Give a detailed, high-quality reply with the argument made explicit.",
];
