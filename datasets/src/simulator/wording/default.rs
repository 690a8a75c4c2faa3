//! The default world's wordings ([`Wordings::DEFAULT`]).

use super::{HarnessAnswer, HarnessTemplate, HarvestParts, Wordings};
use crate::simulator::corpus::Pool;

/// The default world's wordings.
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
    exemplar: "Q: {question}\nA: Let's think step by step. {steps} So the answer is {answer}.\n\n",
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
            "{head}\n\nUser request: {task}\n\n{tail}",
            "{head} {tail}\n\nRequest: {task}",
        ],
    },
    sweep: HarvestParts {
        heads: &[SWEEP_HEADS],
        tails: &[""],
        layouts: &["{head}\n\n{task}", "{task}\n\n{head}"],
    },
};

/// Students pasting homework.
const STUDENT_ASKS: &[&str] = &[
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
const STUDENT_FOLLOW_UPS: &[&str] = &[
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
const CHAT_FOLLOW_UPS: &[&str] = &[
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
const DEVELOPER_ASKS: &[&str] = &[
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
const DEVELOPER_QUESTIONS: &[&str] = &[
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

/// Developer follow-ups.
const DEVELOPER_FOLLOW_UPS: &[&str] = &[
    "that doesn't compile, I get a type error on line 3",
    "can you add type hints?",
    "what's the time complexity of that?",
    "could you do it without recursion?",
    "ok now write a test for it",
    "how would this look in TypeScript?",
    "thanks, that fixed it",
    "what if the input is really large, like 10 million items?",
];

/// Agent applications: a system frame around a user request with tools.
const AGENT_FRAMES: &[&str] = &[
    "You are an assistant inside a travel-booking app. Tools: search_flights(origin, destination, date), book_hotel(city, nights). User: {task}",
    "System: you can call functions get_weather(city), get_time(timezone), convert_currency(amount, from, to). Respond with a function call when needed.\nUser: {task}",
    "You are a helpful assistant with access to the company's CRM tools (lookup_customer, create_ticket, update_order). Customer message: {task}",
    "Tools available: calculator, web_search, calendar. Help the user with: {task}",
    "{task}",
];

/// Agent loop continuations (tool results fed back).
const AGENT_CONTINUATIONS: &[&str] = &[
    "Tool result: {\"status\": \"ok\", \"items\": 3}. Continue.",
    "Function returned: {\"temperature\": 18, \"unit\": \"C\"}. Answer the user.",
    "The tool call failed with error 429. Try again or answer without it.",
    "Observation: no results found. What should we do next?",
    "Tool result: {\"ticket_id\": \"T-4821\", \"created\": true}",
];

/// Probers mixing in harmless questions between attempts.
const PROBER_OPENERS: &[&str] = &[
    "{task}",
    "{task}",
    "Ignore the previous answer. {task}",
    "ok let's try something else. {task}",
];

/// Enterprise pipelines' fixed templates (labeling, extraction,
/// translation ...), each with whether its answers are a few tokens.
const PIPELINE_TEMPLATES: &[(&str, bool)] = &[
    ("Classify the sentiment of the following customer message as positive, negative or neutral. Reply with one word.\n\nMessage: {task}", true),
    ("Translate the following text to German. Keep formatting and do not add explanations.\n\n{task}", false),
    ("Summarize the following text in one sentence.\n\n{task}", false),
    ("Extract all named entities (people, organisations, places) from the text below and return them as a JSON list.\n\nText: {task}", false),
    ("Assign one topic label from [billing, shipping, product, account, other] to this support request. Output only the label.\n\n{task}", true),
    ("Rewrite the following product question so it is clear and polite, in at most 30 words:\n{task}", false),
    ("Translate to Japanese:\n{task}", false),
    ("Is the following request safe to answer under our content policy? Answer yes or no, then one short reason.\n\nRequest: {task}", false),
    ("You label data for an intent classifier. Is the text below a question, a command or small talk? Respond with exactly one of: question, command, smalltalk.\n\n{task}", true),
    ("Which language is the following text written in? Output the ISO 639-1 code and nothing else.\n\n{task}", true),
    ("Rate from 1 (trivial) to 5 (needs an expert) how hard it would be for a support agent to handle this request. Print the number only.\n\n{task}", true),
    ("List the key facts stated in the passage below as at most five bullet points. Do not add anything the passage does not say.\n\nPassage:\n{task}", false),
    ("Return a JSON object with the keys \"intent\", \"product\" and \"urgency\" (low, medium or high) for the message below. No prose.\n\nMessage: {task}", false),
    ("Translate this text into Brazilian Portuguese. Return only the translation.\n---\n{task}\n---", false),
    ("Write three alternative phrasings of the following user request, numbered 1 to 3, for our paraphrase dataset.\n\n{task}", false),
    ("Does the following text contain personal data (names, emails, phone numbers, addresses)? Answer PII or CLEAN.\n\n{task}", true),
];

/// Eval-harness prompt formats, as public evaluation harnesses word them:
/// zero- and few-shot chain of thought, multiple choice, final-answer
/// formats and instruction plus Question/Answer framing.
const HARNESS_TEMPLATES: &[HarnessTemplate] = &[
    HarnessTemplate {
        text: "Q: {task}\nA: Let's think step by step.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{task}\n\nLet's think step by step.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{shots}Q: {task}\nA: Let's think step by step.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{shots}Q: {task}\nA:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "The following are multiple choice questions (with answers). Think it through step by step, then finish your answer with \"the answer is (X)\" where X is the correct letter choice.\n\n{shots}Q: {task}\nA: Let's think step by step.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: true,
    },
    HarnessTemplate {
        text: "Answer the following multiple choice question. The last line of your response should be of the form 'Answer: $LETTER' (without quotes) where LETTER is one of the options. Think step by step before answering.\n\n{task}",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: true,
    },
    HarnessTemplate {
        text: "{task}\nAnswer with the letter of the correct option only.",
        answer: HarnessAnswer::Bare,
        multiple_choice: true,
    },
    HarnessTemplate {
        text: "{task}\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
        answer: HarnessAnswer::Reasoning,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Give the final answer within \\boxed{} and keep the working short.\n\nProblem:\n{task}\n\nSolution:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "{task}\nGive only the final answer, with no explanation.\nAnswer:",
        answer: HarnessAnswer::Bare,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "The following is a question from a reasoning benchmark. Read it carefully and answer it.\n\nQuestion: {task}\nAnswer:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
    HarnessTemplate {
        text: "Answer the question below. Explain your reasoning briefly, then write the final answer on its own line after \"Answer:\".\n\nQuestion: {task}\nAnswer:",
        answer: HarnessAnswer::Brief,
        multiple_choice: false,
    },
];

/// The reasoning of a few-shot harness's worked examples (the harness
/// author's own, short, before "So the answer is ...").
const EXEMPLAR_STEPS: &[&str] = &[
    "We write down what the question gives us, combine the quantities one at a time, and check the result against the question.",
    "Going through the statements in order and keeping track of what each one tells us leaves one possibility.",
    "We set up the relation the question describes, simplify it, and read off the value asked for.",
    "Checking each option against the conditions rules out all but one.",
];

/// Companies' internal tools: one fixed wrapper per tool around what the
/// employee typed, with the pool the employees' tasks come from.
const COMPANY_TOOL_TEMPLATES: &[(Pool, &str)] = &[
    (Pool::Chat, "[HelpdeskAssist] Summarize this customer ticket and propose a reply:\n{task}"),
    (Pool::Chat, "[DocDraft v2] Rewrite the following into a clear internal memo of at most 200 words.\n---\n{task}"),
    (Pool::Chat, "[SalesCopilot] Draft a short, friendly email answering the prospect's request below.\nRequest: {task}"),
    (Pool::Chat, "[KnowledgeBot] Answer the employee's question in plain language. If you are not sure, say so.\nQuestion: {task}"),
    (Pool::Chat, "[MeetingNotes] Turn these notes into a list of action items (leave owners blank):\n{task}"),
    (Pool::Chat, "[PeopleOps Helper] Answer this question from a colleague in a neutral, friendly tone:\n{task}"),
    (Pool::Code, "[DevAssist] A teammate needs help with the work item below. Suggest an implementation and point out pitfalls.\nWork item: {task}"),
    (Pool::Code, "[ReviewBuddy] Propose code for this ticket and list the tests it should pass.\nTicket: {task}"),
    (Pool::Code, "[snippet-helper] Write a small, well-named function for: {task}"),
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
