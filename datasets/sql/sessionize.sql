-- Raw requests -> session numbers: the rule of
-- datasets::sessionize::sessionize as one SQL query (DataFusion dialect;
-- docs/data-format.md lists what changes for Spark SQL, Trino and DuckDB).
--
-- Input: a table `requests` with the raw-log columns of
-- docs/data-format.md (account_id, account, ts, prompt, ip, asn,
-- user_agent, model, response_tokens), ts a timestamp in microseconds.
-- Parameters, replaced before running: ${gap_us}, ${max_duration_us} and
-- ${max_events} (the inactivity gap, the span length in microseconds, the
-- most requests per session).
--
-- Output: every request with its session number (`session_no`, per account
-- from 0), its session's start (`session_start_us`) and its account's
-- latest account object, ordered by session
-- start, account, session number, then time and prompt: each session's
-- requests are consecutive rows, so a reader assembles sessions as they
-- stream by. Every window runs over one ordering (account, time, prompt),
-- so the plan sorts the requests once before the final sort; both sorts
-- spill to disk under a memory limit.
WITH timed AS (
  SELECT *, CAST(ts AS BIGINT) AS t_us FROM requests
),
-- 1. An island of activity ends where the gap to the next request
--    exceeds the inactivity gap.
gaps AS (
  SELECT *,
    CASE WHEN LAG(t_us) OVER w IS NULL OR t_us - LAG(t_us) OVER w > ${gap_us}
         THEN 1 ELSE 0 END AS island_starts
  FROM timed
  WINDOW w AS (PARTITION BY account_id ORDER BY t_us, prompt)
),
-- 2. An island is cut into spans of max_duration from its first request
--    (times only grow along the ordering, so the latest island start so
--    far is the current island's).
spans AS (
  SELECT *,
    (t_us - MAX(CASE WHEN island_starts = 1 THEN t_us END) OVER w) / ${max_duration_us} AS span,
    SUM(island_starts) OVER w AS island
  FROM gaps
  WINDOW w AS (PARTITION BY account_id ORDER BY t_us, prompt
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
span_starts AS (
  SELECT *,
    CASE WHEN island_starts = 1 OR span <> LAG(span) OVER w THEN 1 ELSE 0 END AS span_starts,
    CAST(ROW_NUMBER() OVER w AS BIGINT) AS n
  FROM spans
  WINDOW w AS (PARTITION BY account_id ORDER BY t_us, prompt)
),
-- 3. A span is cut into chunks of max_events requests.
chunks AS (
  SELECT *,
    (n - MAX(CASE WHEN span_starts = 1 THEN n END) OVER w) / ${max_events} AS chunk
  FROM span_starts
  WINDOW w AS (PARTITION BY account_id ORDER BY t_us, prompt
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
session_starts AS (
  SELECT *,
    CASE WHEN span_starts = 1 OR chunk <> LAG(chunk) OVER w THEN 1 ELSE 0 END AS session_starts
  FROM chunks
  WINDOW w AS (PARTITION BY account_id ORDER BY t_us, prompt)
),
numbered AS (
  SELECT *,
    SUM(session_starts) OVER w - 1 AS session_no,
    MAX(CASE WHEN session_starts = 1 THEN t_us END) OVER w AS session_start_us
  FROM session_starts
  WINDOW w AS (PARTITION BY account_id ORDER BY t_us, prompt
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
-- The account object of an account's latest request that carries one.
accounts AS (
  SELECT account_id AS latest_of, last_value(account ORDER BY t_us, prompt) AS latest_account
  FROM timed
  WHERE account IS NOT NULL
  GROUP BY account_id
)
-- The sort keys are all in the output: Ballista 55 merged the final
-- stage's sorted partitions in the wrong order when a key
-- (session_start_us) was left out of the select list.
SELECT
  r.account_id, r.session_no, a.latest_account AS account,
  r.ts, r.prompt, r.ip, r.asn, r.user_agent, r.model, r.response_tokens,
  r.session_start_us
FROM numbered AS r LEFT JOIN accounts AS a ON r.account_id = a.latest_of
ORDER BY r.session_start_us, r.account_id, r.session_no, r.ts, r.prompt
