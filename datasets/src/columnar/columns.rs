//! Reading Arrow columns as the fields of a record: found by name, cast
//! to the field's type, and every stored value that cannot be cast
//! reported on its own row, so one bad value costs one row under the skip
//! policy rather than the file.

use std::sync::Arc;

use arrow_array::{
    cast::AsArray,
    types::{Float32Type, TimestampMicrosecondType, UInt32Type, UInt64Type},
    Array, ArrayRef, RecordBatch, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_cast::{
    cast_with_options,
    display::{ArrayFormatter, FormatOptions},
    CastOptions,
};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Utc};

/// A column that is missing or stored as a type its field cannot be read
/// from: fatal for the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnProblem {
    /// Column path (`events.ts`).
    pub column: String,
    /// What is wrong.
    pub message: String,
}

/// A bad value on one row: the field's path and what is wrong.
pub type FieldProblem = (String, String);

/// The type every time column is written as and read into: microseconds
/// since the epoch, UTC (Spark's and Trino's `TIMESTAMP` precision).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// What a field holds, and so which stored types it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: `Utf8`, `LargeUtf8`, `Utf8View` or a dictionary of them.
    Text,
    /// `uint32` from any integer type (values out of range are bad rows).
    U32,
    /// `uint64` from any integer type.
    U64,
    /// `float32` from any floating-point or integer type.
    F32,
    /// `Boolean` only.
    Bool,
    /// A timestamp of any unit and zone, a date, or RFC 3339 text.
    Time,
}

impl Kind {
    fn target(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::F32 => DataType::Float32,
            Kind::Bool => DataType::Boolean,
            Kind::Time => timestamp_type(),
        }
    }

    fn accepts(self, stored: &DataType) -> bool {
        use DataType as D;
        let text = |t: &DataType| matches!(t, D::Utf8 | D::LargeUtf8 | D::Utf8View);
        match self {
            Kind::Text => text(stored) || matches!(stored, D::Dictionary(_, v) if text(v)),
            Kind::U32 | Kind::U64 => stored.is_integer(),
            Kind::F32 => stored.is_floating() || stored.is_integer(),
            Kind::Bool => stored == &D::Boolean,
            Kind::Time => {
                matches!(stored, D::Timestamp(..) | D::Date32 | D::Date64) || text(stored)
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::U32 => "uint32",
            Kind::U64 => "uint64",
            Kind::F32 => "float32",
            Kind::Bool => "boolean",
            Kind::Time => "timestamp",
        }
    }
}

/// One column, cast to its field's type.
pub struct Column {
    name: String,
    values: ArrayRef,
    stored: ArrayRef,
}

impl Column {
    /// The stored value at `i` as text, for messages.
    fn shown(&self, i: usize) -> String {
        ArrayFormatter::try_new(self.stored.as_ref(), &FormatOptions::default())
            .map(|f| f.value(i).to_string())
            .unwrap_or_else(|_| "?".into())
    }

    /// Whether row `i` holds a value; an error when the stored value is
    /// there but could not be cast.
    fn present(&self, i: usize, kind: Kind) -> Result<bool, FieldProblem> {
        match (self.stored.is_valid(i), self.values.is_valid(i)) {
            (_, true) => Ok(true),
            (false, false) => Ok(false),
            (true, false) => Err((
                self.name.clone(),
                format!("value {} cannot be read as {}", self.shown(i), kind.name()),
            )),
        }
    }

    /// `Err` naming the field: the row has no value where one is required.
    pub fn missing(&self) -> FieldProblem {
        (self.name.clone(), "must not be null".into())
    }

    /// Text at row `i`.
    pub fn text(&self, i: usize) -> Result<Option<&str>, FieldProblem> {
        Ok(self
            .present(i, Kind::Text)?
            .then(|| self.values.as_string::<i32>().value(i)))
    }

    /// Owned text at row `i`.
    pub fn string(&self, i: usize) -> Result<Option<String>, FieldProblem> {
        Ok(self.text(i)?.map(str::to_owned))
    }

    /// `uint32` at row `i`.
    pub fn u32(&self, i: usize) -> Result<Option<u32>, FieldProblem> {
        Ok(self
            .present(i, Kind::U32)?
            .then(|| self.values.as_primitive::<UInt32Type>().value(i)))
    }

    /// `uint64` at row `i`.
    pub fn u64(&self, i: usize) -> Result<Option<u64>, FieldProblem> {
        Ok(self
            .present(i, Kind::U64)?
            .then(|| self.values.as_primitive::<UInt64Type>().value(i)))
    }

    /// `float32` at row `i`.
    pub fn f32(&self, i: usize) -> Result<Option<f32>, FieldProblem> {
        Ok(self
            .present(i, Kind::F32)?
            .then(|| self.values.as_primitive::<Float32Type>().value(i)))
    }

    /// Boolean at row `i`.
    pub fn bool(&self, i: usize) -> Result<Option<bool>, FieldProblem> {
        Ok(self
            .present(i, Kind::Bool)?
            .then(|| self.values.as_boolean().value(i)))
    }

    /// Timestamp at row `i`.
    pub fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, FieldProblem> {
        if !self.present(i, Kind::Time)? {
            return Ok(None);
        }
        let micros = self
            .values
            .as_primitive::<TimestampMicrosecondType>()
            .value(i);
        DateTime::from_timestamp_micros(micros)
            .map(Some)
            .ok_or_else(|| {
                (
                    self.name.clone(),
                    format!("timestamp {micros} µs is out of range"),
                )
            })
    }
}

/// The columns of a record batch, or the children of a struct column.
pub struct Columns {
    prefix: String,
    parent: StructArray,
}

/// A list column: its offsets and the columns of its struct items.
pub struct ListColumns {
    /// Items of row `i`: `offsets[i]..offsets[i + 1]`.
    pub offsets: OffsetBuffer<i32>,
    /// Which rows hold a list.
    pub nulls: Option<NullBuffer>,
    /// The items' fields.
    pub items: Columns,
}

impl Columns {
    /// The top-level columns of `batch`.
    pub fn of_batch(batch: &RecordBatch) -> Self {
        Columns {
            prefix: String::new(),
            parent: StructArray::from(batch.clone()),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn problem(&self, name: &str, message: String) -> ColumnProblem {
        ColumnProblem {
            column: self.path(name),
            message,
        }
    }

    fn stored(&self, name: &str, required: bool) -> Result<Option<&ArrayRef>, ColumnProblem> {
        match self.parent.column_by_name(name) {
            Some(c) => Ok(Some(c)),
            None if required => Err(self.problem(name, "missing (a required column)".into())),
            None => Ok(None),
        }
    }

    /// Column `name` read as `kind`; `None` when an optional column is
    /// absent.
    pub fn get(
        &self,
        name: &str,
        kind: Kind,
        required: bool,
    ) -> Result<Option<Column>, ColumnProblem> {
        let Some(stored) = self.stored(name, required)? else {
            return Ok(None);
        };
        if !kind.accepts(stored.data_type()) {
            return Err(self.problem(
                name,
                format!(
                    "stored as {}, which cannot be read as {}",
                    stored.data_type(),
                    kind.name()
                ),
            ));
        }
        let options = CastOptions {
            safe: true,
            ..Default::default()
        };
        let values = cast_with_options(stored, &kind.target(), &options)
            .map_err(|e| self.problem(name, format!("cannot be read as {}: {e}", kind.name())))?;
        Ok(Some(Column {
            name: name.to_owned(),
            values,
            stored: Arc::clone(stored),
        }))
    }

    /// A required column (see [`Self::get`]).
    pub fn required(&self, name: &str, kind: Kind) -> Result<Column, ColumnProblem> {
        Ok(self
            .get(name, kind, true)?
            .expect("a required column is present"))
    }

    /// An optional struct column: its children and which rows hold one.
    pub fn structure(
        &self,
        name: &str,
    ) -> Result<Option<(Columns, Option<NullBuffer>)>, ColumnProblem> {
        let Some(stored) = self.stored(name, false)? else {
            return Ok(None);
        };
        let Some(parent) = stored.as_struct_opt() else {
            return Err(self.problem(
                name,
                format!("stored as {}, expected a struct", stored.data_type()),
            ));
        };
        let children = Columns {
            prefix: format!("{}.", self.path(name)),
            parent: parent.clone(),
        };
        Ok(Some((children, parent.nulls().cloned())))
    }

    /// A required list column (`List` or `LargeList`), as a `List`.
    fn list(&self, name: &str) -> Result<ArrayRef, ColumnProblem> {
        let stored = self
            .stored(name, true)?
            .expect("a required column is present");
        match stored.data_type() {
            DataType::List(_) => Ok(Arc::clone(stored)),
            DataType::LargeList(item) => {
                let as_list = DataType::List(Arc::clone(item));
                arrow_cast::cast(stored, &as_list)
                    .map_err(|e| self.problem(name, format!("cannot be read as a list: {e}")))
            }
            other => Err(self.problem(name, format!("stored as {other}, expected a list"))),
        }
    }

    /// A required list-of-structs column.
    pub fn struct_list(&self, name: &str) -> Result<ListColumns, ColumnProblem> {
        let list = self.list(name)?;
        let list = list.as_list::<i32>();
        let Some(items) = list.values().as_struct_opt() else {
            return Err(self.problem(
                name,
                format!(
                    "a list of {}, expected a list of structs",
                    list.value_type()
                ),
            ));
        };
        Ok(ListColumns {
            offsets: list.offsets().clone(),
            nulls: list.nulls().cloned(),
            items: Columns {
                prefix: format!("{}.", self.path(name)),
                parent: items.clone(),
            },
        })
    }

    /// A required list-of-text column: its offsets, which rows hold a
    /// list, and the items as one text column named `name`.
    pub fn text_list(
        &self,
        name: &str,
    ) -> Result<(OffsetBuffer<i32>, Option<NullBuffer>, Column), ColumnProblem> {
        let list = self.list(name)?;
        let list = list.as_list::<i32>();
        let items = Columns {
            prefix: self.prefix.clone(),
            parent: StructArray::from(vec![(
                Arc::new(arrow_schema::Field::new(name, list.value_type(), true)),
                Arc::clone(list.values()),
            )]),
        };
        let column = items.required(name, Kind::Text)?;
        Ok((list.offsets().clone(), list.nulls().cloned(), column))
    }

    /// Rows (or items) in these columns.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }
}
