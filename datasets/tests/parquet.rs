//! Parquet: round trips of sessions and raw logs, sessionizing a Parquet
//! log like its JSONL twin, and clear errors (file, row group / row,
//! column) for a wrong type, a missing column, a bad value and a
//! truncated file, under both policies.

use std::{fs::File, path::Path, sync::Arc};

use arrow_array::{ArrayRef, Int64Array, ListArray, RecordBatch, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema};
use chrono::{TimeZone, Utc};
use datasets::{
    columnar::{text_array, ParquetReader},
    read_sessions,
    sessionize::{sessionize_file, RawRequest, SessionizeConfig},
    Account, ArrowRecord, BadLinePolicy, DataError, DataFormat, Event, Label, RecordSink,
    RecordSource, Session,
};
use parquet::arrow::ArrowWriter;
use proptest::prelude::*;

fn event(ms: i64, prompt: &str) -> Event {
    Event {
        ts: Utc.timestamp_millis_opt(ms).unwrap(),
        prompt: prompt.into(),
        ip: Some("203.0.113.7".into()),
        asn: Some(64500),
        user_agent: Some("python-httpx/0.27.0".into()),
        model: None,
        response_tokens: Some(812),
    }
}

fn session(id: &str, prompts: &[&str]) -> Session {
    Session {
        session_id: id.into(),
        account_id: format!("acct-{id}"),
        label: Some(Label::Extraction),
        campaign_id: Some("camp-07".into()),
        archetype: None,
        account: Some(Account {
            created_at: Some(Utc.with_ymd_and_hms(2026, 2, 1, 10, 0, 0).unwrap()),
            tier: Some("edu".into()),
            verified: Some(false),
            region: None,
        }),
        events: prompts
            .iter()
            .enumerate()
            .map(|(i, p)| event(1_770_724_803_120 + 1000 * i as i64, p))
            .collect(),
    }
}

fn write_records<T: ArrowRecord + serde::Serialize + Clone>(path: &Path, rows: &[T]) {
    let mut sink = RecordSink::create(path).unwrap();
    for r in rows {
        sink.write(r).unwrap();
    }
    sink.finish().unwrap();
}

fn write_batch(path: &Path, batch: &RecordBatch) {
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn first_error(path: &Path, policy: BadLinePolicy) -> String {
    let reader = read_sessions(path, policy).unwrap();
    reader
        .filter_map(Result::err)
        .next()
        .expect("an error")
        .to_string()
}

#[test]
fn the_format_follows_the_extension() {
    assert_eq!(
        DataFormat::of_path(Path::new("a/b.parquet")),
        DataFormat::Parquet
    );
    assert_eq!(DataFormat::of_path(Path::new("b.PQ")), DataFormat::Parquet);
    assert_eq!(
        DataFormat::of_path(Path::new("b.jsonl.gz")),
        DataFormat::Jsonl
    );
    assert_eq!(DataFormat::of_path(Path::new("b")), DataFormat::Jsonl);
}

#[test]
fn sessions_round_trip_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.parquet");
    let mut sessions: Vec<Session> = (0..5000)
        .map(|i| {
            session(
                &format!("s-{i}"),
                &["one", "two \u{2028} é \"q\""][..1 + i % 2],
            )
        })
        .collect();
    sessions[3].account = None;
    sessions[4].label = None;
    write_records(&path, &sessions);
    let back: Vec<Session> = read_sessions(&path, BadLinePolicy::Strict)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, sessions);
}

#[test]
fn a_parquet_log_sessionizes_like_its_jsonl_twin() {
    let dir = tempfile::tempdir().unwrap();
    let requests: Vec<RawRequest> = (0..300)
        .map(|i| {
            let account = (i % 7 == 0).then(|| session("x", &["p"]).account.unwrap());
            // Three accounts; a 45-minute gap every 40 requests cuts sessions.
            let ms = 1_770_724_803_120 + 60_000 * i + 2_700_000 * (i / 40);
            RawRequest::new(format!("a-{}", i % 3), account, event(ms, &format!("q{i}")))
        })
        .collect();
    let (jsonl, parquet) = (dir.path().join("raw.jsonl"), dir.path().join("raw.parquet"));
    write_records(&jsonl, &requests);
    write_records(&parquet, &requests);
    let config = SessionizeConfig::default();
    let from_jsonl = sessionize_file(&jsonl, &config, BadLinePolicy::Strict).unwrap();
    let from_parquet = sessionize_file(&parquet, &config, BadLinePolicy::Strict).unwrap();
    assert!(from_jsonl.0.len() > 3, "gaps cut sessions");
    assert_eq!(from_parquet.0, from_jsonl.0);
    assert_eq!(from_parquet.1.records, 300);
}

/// A one-row-per-session table with `events` built from the given item
/// columns (each item column's values are the events of all rows).
fn table(
    top: Vec<(&str, ArrayRef)>,
    items: Vec<(&str, ArrayRef)>,
    lengths: &[usize],
) -> RecordBatch {
    let item_fields: Fields = items
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let values = StructArray::try_new(
        item_fields.clone(),
        items.into_iter().map(|c| c.1).collect(),
        None,
    )
    .unwrap();
    let item = Arc::new(Field::new("item", DataType::Struct(item_fields), true));
    let events = ListArray::try_new(
        item,
        OffsetBuffer::from_lengths(lengths.iter().copied()),
        Arc::new(values),
        None,
    )
    .unwrap();
    let mut columns = top;
    columns.push(("events", Arc::new(events)));
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|c| c.1).collect()).unwrap()
}

fn texts(values: &[Option<&str>]) -> ArrayRef {
    text_array(values.iter().copied())
}

fn ids(n: usize) -> Vec<(&'static str, ArrayRef)> {
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let names: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    vec![
        ("session_id", texts(&names)),
        ("account_id", texts(&vec![Some("a"); n])),
    ]
}

#[test]
fn timestamps_as_text_and_wider_integers_are_read_and_bad_values_name_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.parquet");
    let batch = table(
        ids(3),
        vec![
            (
                "ts",
                texts(&[
                    Some("2026-02-10T12:00:03.120Z"),
                    Some("2026-02-10T12:00:04Z"),
                    Some("yesterday"),
                    Some("2026-02-10T12:00:05Z"),
                ]),
            ),
            (
                "prompt",
                texts(&[Some("a"), Some("b"), Some("c"), Some("d")]),
            ),
            (
                "asn",
                Arc::new(Int64Array::from(vec![Some(64500), None, Some(1), Some(-3)])),
            ),
        ],
        &[2, 1, 1],
    );
    write_batch(&path, &batch);
    let mut reader = read_sessions(&path, BadLinePolicy::Skip).unwrap();
    let good: Vec<Session> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].events.len(), 2);
    assert_eq!(good[0].events[0].asn, Some(64500));
    assert_eq!(
        good[0].events[1].ts,
        Utc.with_ymd_and_hms(2026, 2, 10, 12, 0, 4).unwrap()
    );
    let stats = reader.stats();
    assert_eq!((stats.lines, stats.records, stats.skipped), (3, 1, 2));
    let errors: Vec<String> = stats.first_errors.iter().map(ToString::to_string).collect();
    let file = path.display();
    assert_eq!(
        errors,
        [
            format!("{file}: row group 0, row 1: field `events[0].ts`: value yesterday cannot be read as timestamp"),
            format!("{file}: row group 0, row 2: field `events[0].asn`: value -3 cannot be read as uint32"),
        ]
    );
    assert_eq!(first_error(&path, BadLinePolicy::Strict), errors[0]);
}

#[test]
fn a_column_of_the_wrong_type_or_a_missing_one_fails_the_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ts = || texts(&[Some("2026-02-10T12:00:03Z")]);
    let cases = [
        (
            "asn as text",
            table(
                ids(1),
                vec![
                    ("ts", ts()),
                    ("prompt", texts(&[Some("a")])),
                    ("asn", texts(&[Some("AS1")])),
                ],
                &[1],
            ),
            "column `events.asn`: stored as Utf8, which cannot be read as uint32",
        ),
        (
            "prompt as number",
            table(
                ids(1),
                vec![
                    ("ts", ts()),
                    ("prompt", Arc::new(Int64Array::from(vec![1]))),
                ],
                &[1],
            ),
            "column `events.prompt`: stored as Int64, which cannot be read as text",
        ),
        (
            "no prompt",
            table(ids(1), vec![("ts", ts())], &[1]),
            "column `events.prompt`: missing (a required column)",
        ),
        (
            "no account_id",
            table(
                ids(1)[..1].to_vec(),
                vec![("ts", ts()), ("prompt", texts(&[Some("a")]))],
                &[1],
            ),
            "column `account_id`: missing (a required column)",
        ),
    ];
    for (name, batch, expected) in cases {
        let path = dir
            .path()
            .join(format!("{}.parquet", name.replace(' ', "_")));
        write_batch(&path, &batch);
        for policy in [BadLinePolicy::Strict, BadLinePolicy::Skip] {
            let err = first_error(&path, policy);
            assert_eq!(err, format!("{}: {expected}", path.display()), "{name}");
        }
    }
}

#[test]
fn nulls_in_required_fields_and_duplicates_are_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.parquet");
    let mut top = ids(3);
    top[0].1 = texts(&[Some("s0"), None, Some("s0")]);
    let batch = table(
        top,
        vec![
            ("ts", texts(&[Some("2026-02-10T12:00:03Z"); 3])),
            ("prompt", texts(&[Some("a"), Some("b"), Some("")])),
        ],
        &[1, 1, 1],
    );
    write_batch(&path, &batch);
    let mut reader = read_sessions(&path, BadLinePolicy::Skip).unwrap();
    assert_eq!(reader.by_ref().filter(Result::is_ok).count(), 1);
    let errors: Vec<String> = reader
        .stats()
        .first_errors
        .iter()
        .map(|e| {
            e.to_string()
                .split(": ")
                .skip(2)
                .collect::<Vec<_>>()
                .join(": ")
        })
        .collect();
    assert_eq!(
        errors,
        [
            "field `session_id`: must not be null",
            "field `events[0].prompt`: must not be empty"
        ]
    );
}

#[test]
fn a_truncated_or_foreign_file_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_records(&good, &[session("s1", &["a", "b"]), session("s2", &["c"])]);
    let bytes = std::fs::read(&good).unwrap();
    for (name, content) in [
        ("truncated.parquet", bytes[..bytes.len() / 2].to_vec()),
        ("empty.parquet", Vec::new()),
        ("text.parquet", b"{\"session_id\": \"s\"}\n".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = match read_sessions(&path, BadLinePolicy::Skip) {
            Err(e) => e,
            Ok(mut r) => r.find_map(Result::err).expect("an error"),
        };
        assert!(matches!(err, DataError::Parquet { .. }), "{name}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: footer:", path.display())),
            "{err}"
        );
    }
}

#[test]
fn a_failed_parquet_write_leaves_the_previous_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    std::fs::write(&path, "previous").unwrap();
    {
        let mut sink = RecordSink::create(&path).unwrap();
        sink.write(&session("s1", &["a"])).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn rows_are_located_by_row_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.parquet");
    let n = datasets::columnar::ROW_GROUP_ROWS + 10;
    let mut sessions: Vec<Session> = (0..n).map(|i| session(&format!("s-{i}"), &["a"])).collect();
    sessions[n - 3].session_id = "s-0".into();
    write_records(&path, &sessions);
    let reader = ParquetReader::<Session>::open(&path, BadLinePolicy::Strict).unwrap();
    let err = reader.filter_map(Result::err).next().unwrap().to_string();
    assert_eq!(
        err,
        format!("{}: row group 1, row 7: field `session_id`: duplicate value \"s-0\" (must be unique within a file)", path.display())
    );
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        0i64..4_000_000_000_000,
        "\\PC{1,30}",
        proptest::option::of("[0-9.:a-f]{3,20}"),
        proptest::option::of(any::<u32>()),
        proptest::option::of("\\PC{0,20}"),
        proptest::option::of("[a-z0-9-]{1,12}"),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(ms, prompt, ip, asn, user_agent, model, response_tokens)| Event {
                ts: Utc.timestamp_millis_opt(ms).unwrap(),
                prompt,
                ip,
                asn,
                user_agent,
                model,
                response_tokens,
            },
        )
}

fn arb_account() -> impl Strategy<Value = Option<Account>> {
    proptest::option::of(
        (
            proptest::option::of(0i64..4_000_000_000),
            proptest::option::of("[a-z]{1,10}"),
            proptest::option::of(any::<bool>()),
            proptest::option::of("[A-Z]{2}"),
        )
            .prop_map(|(created, tier, verified, region)| Account {
                created_at: created.map(|s| Utc.timestamp_opt(s, 0).unwrap()),
                tier,
                verified,
                region,
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_valid_sessions_round_trip(
        rows in proptest::collection::vec(
            (proptest::option::of(any::<bool>()), proptest::option::of("\\PC{1,10}"), arb_account(),
             proptest::collection::vec(arb_event(), 1..5)),
            1..40,
        )
    ) {
        let sessions: Vec<Session> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (label, campaign, account, mut events))| {
                events.sort_by_key(|e| e.ts);
                Session {
                    session_id: format!("s{i}"),
                    account_id: format!("a{}", i % 4),
                    label: label.map(|x| if x { Label::Extraction } else { Label::Benign }),
                    campaign_id: campaign,
                    archetype: None,
                    account,
                    events,
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.parquet");
        write_records(&path, &sessions);
        let back: Vec<Session> = RecordSource::open(&path, BadLinePolicy::Strict)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(back, sessions);
    }
}
