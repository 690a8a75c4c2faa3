//! Coarse user-agent classes: a person's browser, an official SDK, or a
//! raw HTTP library / command-line tool typical of scripts.

/// What kind of client sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAgentClass {
    /// A web browser (`Mozilla/5.0 ...`).
    Browser,
    /// An API SDK or framework built for the purpose (openai-python, langchain ...).
    Sdk,
    /// A generic HTTP library or CLI tool (python-requests, curl, Go-http-client ...).
    Scripted,
    /// Anything else.
    Other,
}

const SDK_MARKERS: &[&str] = &[
    "openai/",
    "openai-python",
    "openai-node",
    "anthropic",
    "langchain",
    "llamaindex",
    "llama-index",
    "litellm",
    "semantic-kernel",
    "vercel-ai",
    "ai-sdk",
    "google-genai",
    "mistralai",
    "cohere",
    "dspy",
    "haystack",
];

const SCRIPTED_MARKERS: &[&str] = &[
    "python-requests",
    "python-httpx",
    "python-urllib",
    "aiohttp",
    "urllib3",
    "curl/",
    "wget/",
    "go-http-client",
    "node-fetch",
    "axios/",
    "undici",
    "okhttp",
    "java/",
    "apache-httpclient",
    "libwww-perl",
    "ruby",
    "scrapy",
    "postmanruntime",
    "httpie",
    "reqwest",
    "insomnia",
    "guzzle",
    "dart:io",
    "powershell",
];

/// Classifies a user-agent string (case-insensitive substring markers;
/// SDK markers win over the HTTP library an SDK may also name).
pub fn classify(user_agent: &str) -> UserAgentClass {
    let ua = user_agent.to_ascii_lowercase();
    if SDK_MARKERS.iter().any(|m| ua.contains(m)) {
        UserAgentClass::Sdk
    } else if SCRIPTED_MARKERS.iter().any(|m| ua.contains(m)) {
        UserAgentClass::Scripted
    } else if ua.starts_with("mozilla/") {
        UserAgentClass::Browser
    } else {
        UserAgentClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            classify("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"),
            UserAgentClass::Browser
        );
        assert_eq!(classify("OpenAI/Python 1.54.0"), UserAgentClass::Sdk);
        assert_eq!(classify("python-httpx/0.27.0"), UserAgentClass::Scripted);
        assert_eq!(classify("curl/8.5.0"), UserAgentClass::Scripted);
        assert_eq!(classify("MyApp/2.0"), UserAgentClass::Other);
    }
}
