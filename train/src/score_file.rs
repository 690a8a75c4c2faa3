//! The scores file in Parquet as well as JSONL: the Arrow layout of
//! [`ScoreRecord`] (`reasons` as a list of text), and the checks a
//! scores file read back must pass.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, ListArray, RecordBatch, UInt64Array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use datasets::{
    columnar::{text_array, ColumnProblem, Columns, FieldProblem, Kind},
    reader::Record,
    ArrowRecord,
};

use crate::score::ScoreRecord;

fn reasons_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, false))
}

impl ArrowRecord for ScoreRecord {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("session_id", DataType::Utf8, false),
            Field::new("account_id", DataType::Utf8, false),
            Field::new("score", DataType::Float32, false),
            Field::new("flagged", DataType::Boolean, false),
            Field::new("cluster_id", DataType::UInt64, true),
            Field::new("reasons", DataType::List(reasons_item()), false),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch, ArrowError> {
        let r = rows.iter();
        let reasons = ListArray::try_new(
            reasons_item(),
            OffsetBuffer::from_lengths(r.clone().map(|s| s.reasons.len())),
            text_array(
                r.clone()
                    .flat_map(|s| s.reasons.iter().map(|x| Some(x.as_str()))),
            ),
            None,
        )?;
        RecordBatch::try_new(
            Self::schema(),
            vec![
                text_array(r.clone().map(|s| Some(s.session_id.as_str()))),
                text_array(r.clone().map(|s| Some(s.account_id.as_str()))),
                Arc::new(Float32Array::from_iter_values(r.clone().map(|s| s.score))) as ArrayRef,
                Arc::new(BooleanArray::from_iter(r.clone().map(|s| Some(s.flagged)))),
                Arc::new(UInt64Array::from_iter(
                    r.map(|s| s.cluster_id.map(|c| c as u64)),
                )),
                Arc::new(reasons),
            ],
        )
    }

    fn from_batch(batch: &RecordBatch) -> Result<Vec<Result<Self, FieldProblem>>, ColumnProblem> {
        let c = Columns::of_batch(batch);
        let session_id = c.required("session_id", Kind::Text)?;
        let account_id = c.required("account_id", Kind::Text)?;
        let score = c.required("score", Kind::F32)?;
        let flagged = c.required("flagged", Kind::Bool)?;
        let cluster_id = c.get("cluster_id", Kind::U64, false)?;
        let (offsets, _, reasons) = c.text_list("reasons")?;
        let row = |i: usize| -> Result<ScoreRecord, FieldProblem> {
            let reasons = (offsets[i] as usize..offsets[i + 1] as usize)
                .map(|j| reasons.string(j)?.ok_or_else(|| reasons.missing()))
                .collect::<Result<_, _>>()?;
            let cluster = match &cluster_id {
                Some(c) => c.u64(i)?.map(|c| c as usize),
                None => None,
            };
            Ok(ScoreRecord {
                session_id: session_id.string(i)?.ok_or_else(|| session_id.missing())?,
                account_id: account_id.string(i)?.ok_or_else(|| account_id.missing())?,
                score: score.f32(i)?.ok_or_else(|| score.missing())?,
                flagged: flagged.bool(i)?.ok_or_else(|| flagged.missing())?,
                cluster_id: cluster,
                reasons,
            })
        };
        Ok((0..batch.num_rows()).map(row).collect())
    }
}

impl Record for ScoreRecord {
    fn validate(&mut self) -> Result<(), (String, String)> {
        if self.session_id.is_empty() {
            return Err(("session_id".into(), "must not be empty".into()));
        }
        if !(0.0..=1.0).contains(&self.score) {
            return Err((
                "score".into(),
                format!("{} is not a probability", self.score),
            ));
        }
        Ok(())
    }

    fn unique_key(&self) -> Option<&str> {
        Some(&self.session_id)
    }

    const UNIQUE_FIELD: &'static str = "session_id";
}
