//! The Arrow layout of the record types of `docs/data-format.md`:
//! sessions with their events as a list of structs, and raw requests as
//! a flat table. Both hold the same event and account fields.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};
use chrono::{DateTime, Utc};

use super::columns::{timestamp_type, Column, ColumnProblem, Columns, FieldProblem, Kind};
use crate::{
    schema::{Account, Event, Label, Session},
    sessionize::RawRequest,
};

/// A record type with an Arrow layout, readable from and writable to
/// Parquet.
pub trait ArrowRecord: Sized {
    /// The schema [`Self::to_batch`] writes.
    fn schema() -> SchemaRef;

    /// `rows` as one batch of [`Self::schema`].
    fn to_batch(rows: &[Self]) -> Result<RecordBatch, ArrowError>;

    /// The rows of `batch`. A missing column or one of the wrong type
    /// fails the batch; a bad value fails its row only.
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Result<Self, FieldProblem>>, ColumnProblem>;
}

/// Text array of optional values.
pub fn text_array<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// UTC microsecond timestamps.
pub fn time_array(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter(values.map(|t| t.map(|t| t.timestamp_micros())))
            .with_timezone("UTC"),
    )
}

fn u32_array(values: impl Iterator<Item = Option<u32>>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter(values))
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// The fields of one event.
fn event_fields() -> Fields {
    Fields::from(vec![
        field("ts", timestamp_type(), false),
        field("prompt", DataType::Utf8, false),
        field("ip", DataType::Utf8, true),
        field("asn", DataType::UInt32, true),
        field("user_agent", DataType::Utf8, true),
        field("model", DataType::Utf8, true),
        field("response_tokens", DataType::UInt32, true),
    ])
}

/// One array per [`event_fields`] entry.
fn event_arrays<'a>(events: impl Iterator<Item = &'a Event> + Clone) -> Vec<ArrayRef> {
    let e = events;
    vec![
        time_array(e.clone().map(|e| Some(e.ts))),
        text_array(e.clone().map(|e| Some(e.prompt.as_str()))),
        text_array(e.clone().map(|e| e.ip.as_deref())),
        u32_array(e.clone().map(|e| e.asn)),
        text_array(e.clone().map(|e| e.user_agent.as_deref())),
        text_array(e.clone().map(|e| e.model.as_deref())),
        u32_array(e.map(|e| e.response_tokens)),
    ]
}

fn account_fields() -> Fields {
    Fields::from(vec![
        field("created_at", timestamp_type(), true),
        field("tier", DataType::Utf8, true),
        field("verified", DataType::Boolean, true),
        field("region", DataType::Utf8, true),
    ])
}

fn account_field() -> Field {
    field("account", DataType::Struct(account_fields()), true)
}

fn account_array<'a>(
    accounts: impl Iterator<Item = Option<&'a Account>> + Clone,
) -> Result<ArrayRef, ArrowError> {
    let a = accounts;
    let children = vec![
        time_array(a.clone().map(|a| a.and_then(|a| a.created_at))),
        text_array(a.clone().map(|a| a.and_then(|a| a.tier.as_deref()))),
        Arc::new(BooleanArray::from_iter(
            a.clone().map(|a| a.and_then(|a| a.verified)),
        )) as ArrayRef,
        text_array(a.clone().map(|a| a.and_then(|a| a.region.as_deref()))),
    ];
    let nulls = NullBuffer::from_iter(a.map(|a| a.is_some()));
    Ok(Arc::new(StructArray::try_new(
        account_fields(),
        children,
        Some(nulls),
    )?))
}

/// The event columns of a table or of a list's items.
struct EventColumns {
    ts: Column,
    prompt: Column,
    ip: Option<Column>,
    asn: Option<Column>,
    user_agent: Option<Column>,
    model: Option<Column>,
    response_tokens: Option<Column>,
}

/// The value of an optional column at row `i` (`None` when absent).
fn opt<'a, T>(
    column: &'a Option<Column>,
    get: impl FnOnce(&'a Column) -> Result<Option<T>, FieldProblem>,
) -> Result<Option<T>, FieldProblem> {
    column.as_ref().map_or(Ok(None), get)
}

impl EventColumns {
    fn load(c: &Columns) -> Result<Self, ColumnProblem> {
        Ok(EventColumns {
            ts: c.required("ts", Kind::Time)?,
            prompt: c.required("prompt", Kind::Text)?,
            ip: c.get("ip", Kind::Text, false)?,
            asn: c.get("asn", Kind::U32, false)?,
            user_agent: c.get("user_agent", Kind::Text, false)?,
            model: c.get("model", Kind::Text, false)?,
            response_tokens: c.get("response_tokens", Kind::U32, false)?,
        })
    }

    fn event(&self, i: usize) -> Result<Event, FieldProblem> {
        Ok(Event {
            ts: self.ts.time(i)?.ok_or_else(|| self.ts.missing())?,
            prompt: self
                .prompt
                .string(i)?
                .ok_or_else(|| self.prompt.missing())?,
            ip: opt(&self.ip, |c| c.string(i))?,
            asn: opt(&self.asn, |c| c.u32(i))?,
            user_agent: opt(&self.user_agent, |c| c.string(i))?,
            model: opt(&self.model, |c| c.string(i))?,
            response_tokens: opt(&self.response_tokens, |c| c.u32(i))?,
        })
    }
}

/// The account struct column, when the file has one.
struct AccountColumns {
    nulls: Option<NullBuffer>,
    created_at: Option<Column>,
    tier: Option<Column>,
    verified: Option<Column>,
    region: Option<Column>,
}

impl AccountColumns {
    fn load(c: &Columns) -> Result<Option<Self>, ColumnProblem> {
        let Some((children, nulls)) = c.structure("account")? else {
            return Ok(None);
        };
        Ok(Some(AccountColumns {
            nulls,
            created_at: children.get("created_at", Kind::Time, false)?,
            tier: children.get("tier", Kind::Text, false)?,
            verified: children.get("verified", Kind::Bool, false)?,
            region: children.get("region", Kind::Text, false)?,
        }))
    }

    fn account(&self, i: usize) -> Result<Option<Account>, FieldProblem> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            return Ok(None);
        }
        let in_account = |(field, message): FieldProblem| (format!("account.{field}"), message);
        Ok(Some(Account {
            created_at: opt(&self.created_at, |c| c.time(i)).map_err(in_account)?,
            tier: opt(&self.tier, |c| c.string(i)).map_err(in_account)?,
            verified: opt(&self.verified, |c| c.bool(i)).map_err(in_account)?,
            region: opt(&self.region, |c| c.string(i)).map_err(in_account)?,
        }))
    }
}

fn account_at(columns: &Option<AccountColumns>, i: usize) -> Result<Option<Account>, FieldProblem> {
    columns.as_ref().map_or(Ok(None), |c| c.account(i))
}

fn label_at(column: &Option<Column>, i: usize) -> Result<Option<Label>, FieldProblem> {
    match opt(column, |c| c.text(i))? {
        None => Ok(None),
        Some("benign") => Ok(Some(Label::Benign)),
        Some("extraction") => Ok(Some(Label::Extraction)),
        Some(other) => Err((
            "label".into(),
            format!("unknown label {other:?} (expected \"benign\" or \"extraction\")"),
        )),
    }
}

impl ArrowRecord for Session {
    fn schema() -> SchemaRef {
        let item = field("item", DataType::Struct(event_fields()), false);
        Arc::new(Schema::new(vec![
            field("session_id", DataType::Utf8, false),
            field("account_id", DataType::Utf8, false),
            field("label", DataType::Utf8, true),
            field("campaign_id", DataType::Utf8, true),
            field("archetype", DataType::Utf8, true),
            account_field(),
            field("events", DataType::List(Arc::new(item)), false),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch, ArrowError> {
        let schema = Self::schema();
        let DataType::List(item) = schema.field(6).data_type().clone() else {
            unreachable!("events is a list")
        };
        let events = StructArray::try_new(
            event_fields(),
            event_arrays(rows.iter().flat_map(|s| s.events.iter())),
            None,
        )?;
        let offsets = OffsetBuffer::from_lengths(rows.iter().map(|s| s.events.len()));
        let r = rows.iter();
        RecordBatch::try_new(
            schema,
            vec![
                text_array(r.clone().map(|s| Some(s.session_id.as_str()))),
                text_array(r.clone().map(|s| Some(s.account_id.as_str()))),
                text_array(r.clone().map(|s| s.label.map(Label::as_str))),
                text_array(r.clone().map(|s| s.campaign_id.as_deref())),
                text_array(r.clone().map(|s| s.archetype.as_deref())),
                account_array(r.map(|s| s.account.as_ref()))?,
                Arc::new(ListArray::try_new(item, offsets, Arc::new(events), None)?),
            ],
        )
    }

    fn from_batch(batch: &RecordBatch) -> Result<Vec<Result<Self, FieldProblem>>, ColumnProblem> {
        let c = Columns::of_batch(batch);
        let session_id = c.required("session_id", Kind::Text)?;
        let account_id = c.required("account_id", Kind::Text)?;
        let label = c.get("label", Kind::Text, false)?;
        let campaign_id = c.get("campaign_id", Kind::Text, false)?;
        let archetype = c.get("archetype", Kind::Text, false)?;
        let account = AccountColumns::load(&c)?;
        let list = c.struct_list("events")?;
        let events = EventColumns::load(&list.items)?;
        let row = |i: usize| -> Result<Session, FieldProblem> {
            let range = list.offsets[i] as usize..list.offsets[i + 1] as usize;
            let listed = list.nulls.as_ref().is_none_or(|n| n.is_valid(i));
            let events = range
                .clone()
                .filter(|_| listed)
                .map(|j| {
                    events.event(j).map_err(|(field, message)| {
                        (format!("events[{}].{field}", j - range.start), message)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Session {
                session_id: session_id.string(i)?.ok_or_else(|| session_id.missing())?,
                account_id: account_id.string(i)?.ok_or_else(|| account_id.missing())?,
                label: label_at(&label, i)?,
                campaign_id: opt(&campaign_id, |c| c.string(i))?,
                archetype: opt(&archetype, |c| c.string(i))?,
                account: account_at(&account, i)?,
                events,
            })
        };
        Ok((0..batch.num_rows()).map(row).collect())
    }
}

impl ArrowRecord for RawRequest {
    fn schema() -> SchemaRef {
        let mut fields = vec![field("account_id", DataType::Utf8, false), account_field()];
        fields.extend(event_fields().iter().map(|f| f.as_ref().clone()));
        Arc::new(Schema::new(fields))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch, ArrowError> {
        let events: Vec<Event> = rows.iter().map(RawRequest::event).collect();
        let mut columns = vec![
            text_array(rows.iter().map(|r| Some(r.account_id.as_str()))),
            account_array(rows.iter().map(|r| r.account.as_ref()))?,
        ];
        columns.extend(event_arrays(events.iter()));
        RecordBatch::try_new(Self::schema(), columns)
    }

    fn from_batch(batch: &RecordBatch) -> Result<Vec<Result<Self, FieldProblem>>, ColumnProblem> {
        let c = Columns::of_batch(batch);
        let account_id = c.required("account_id", Kind::Text)?;
        let account = AccountColumns::load(&c)?;
        let events = EventColumns::load(&c)?;
        let row = |i: usize| -> Result<RawRequest, FieldProblem> {
            Ok(RawRequest::new(
                account_id.string(i)?.ok_or_else(|| account_id.missing())?,
                account_at(&account, i)?,
                events.event(i)?,
            ))
        };
        Ok((0..batch.num_rows()).map(row).collect())
    }
}
