//! Raw request logs of any size, for scale benchmarks: a simulated world's
//! sessions flattened into one request per row and tiled.
//!
//! Tile `t` repeats every request of the world with its account renamed
//! `{account}~t{t}` and all of that account's times (requests and
//! creation) shifted by `t * TILE_SHIFT_SECONDS` modulo a day. Each tile
//! is a copy of the world's population, so the log keeps its mix of
//! archetypes and its requests per account (the default world: about 31
//! requests per account, so 20M requests come from about 640,000
//! accounts), while the shift keeps tiles from sending in lockstep.
//! Rows are written tile by tile, each tile in the world's session order;
//! the last tile is cut when the requested count is reached.

use chrono::Duration;

use crate::{error::DataError, schema::Session, sessionize::RawRequest, RecordSink};

/// Seconds between the start of one tile and the next, modulo a day: a
/// prime, so tiles spread over the day.
pub const TILE_SHIFT_SECONDS: i64 = 7919;

const SECONDS_PER_DAY: i64 = 86_400;

/// The requests of `session` as they appear in tile `tile`.
pub fn tiled_requests(session: &Session, tile: u64) -> impl Iterator<Item = RawRequest> + '_ {
    let shift = Duration::seconds((tile as i64 * TILE_SHIFT_SECONDS) % SECONDS_PER_DAY);
    let account_id = format!("{}~t{tile}", session.account_id);
    let account = session.account.clone().map(|mut a| {
        a.created_at = a.created_at.map(|t| t + shift);
        a
    });
    session.events.iter().map(move |e| RawRequest {
        account_id: account_id.clone(),
        account: account.clone(),
        ts: e.ts + shift,
        prompt: e.prompt.clone(),
        ip: e.ip.clone(),
        asn: e.asn,
        user_agent: e.user_agent.clone(),
        model: e.model.clone(),
        response_tokens: e.response_tokens,
    })
}

/// Writes `requests` rows of `world` tiled into `sink` (which the caller
/// finishes), calling `progress` with the count so far every 65,536 rows.
/// Returns the rows written: `requests`, or 0 when `world` has no request
/// to tile.
pub fn write_scaled_log(
    world: &[Session],
    requests: u64,
    sink: &mut RecordSink<RawRequest>,
    mut progress: impl FnMut(u64),
) -> Result<u64, DataError> {
    if world.iter().all(|s| s.events.is_empty()) {
        return Ok(0);
    }
    let mut written = 0u64;
    'tiles: for tile in 0.. {
        for session in world {
            for request in tiled_requests(session, tile) {
                if written == requests {
                    break 'tiles;
                }
                sink.write(&request)?;
                written += 1;
                if written.is_multiple_of(65_536) {
                    progress(written);
                }
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sessionize::sessionize, Account, Event, RecordSource};
    use chrono::{TimeZone, Utc};

    fn world() -> Vec<Session> {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 23, 0, 0).unwrap();
        (0..3)
            .map(|i| Session {
                session_id: format!("s{i}"),
                account_id: format!("a{i}"),
                label: None,
                campaign_id: None,
                archetype: None,
                account: Some(Account {
                    created_at: Some(t0 - Duration::days(3)),
                    ..Account::default()
                }),
                events: (0..4)
                    .map(|k| Event {
                        ts: t0 + Duration::minutes(5 * k + i),
                        prompt: format!("prompt {i} {k}"),
                        ip: Some("203.0.113.7".into()),
                        asn: Some(64500),
                        user_agent: None,
                        model: None,
                        response_tokens: None,
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn tiles_rename_accounts_shift_times_and_stop_at_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.parquet");
        let mut sink = RecordSink::create(&path).unwrap();
        let written = write_scaled_log(&world(), 30, &mut sink, |_| {}).unwrap();
        sink.finish().unwrap();
        assert_eq!(written, 30);
        let rows: Vec<RawRequest> = RecordSource::open(&path, Default::default())
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 30);
        // Two whole tiles of 12 requests, then six of the third.
        assert_eq!(rows[0].account_id, "a0~t0");
        assert_eq!(rows[12].account_id, "a0~t1");
        assert_eq!(rows[29].account_id, "a1~t2");
        let shift = rows[12].ts - rows[0].ts;
        assert_eq!(shift, Duration::seconds(TILE_SHIFT_SECONDS));
        let created = |r: &RawRequest| r.account.as_ref().unwrap().created_at.unwrap();
        assert_eq!(created(&rows[12]) - created(&rows[0]), shift);
        // Each tile sessionizes like the world: one session per account.
        let sessions = sessionize(rows, &Default::default());
        assert_eq!(sessions.len(), 3 + 3 + 2);
        assert!(sessions.iter().all(|s| s.events.len() <= 4));
    }

    #[test]
    fn a_world_without_requests_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.jsonl");
        let mut sink = RecordSink::create(&path).unwrap();
        let mut empty = world();
        empty.iter_mut().for_each(|s| s.events.clear());
        assert_eq!(write_scaled_log(&empty, 10, &mut sink, |_| {}).unwrap(), 0);
    }
}
