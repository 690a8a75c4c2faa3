//! The raw-log -> sessions step on DataFusion (feature `datafusion`): the
//! same rule as [`crate::sessionize::sessionize`], written as one SQL
//! query (`datasets/sql/sessionize.sql`) that sorts, windows and
//! aggregates out of core within a memory limit, spilling to disk.
//!
//! 1. The input (JSONL or Parquet, any schema the readers accept) streams
//!    through the reader under the bad-line policy into a Parquet file of
//!    the canonical raw-log layout beside the spill files, so the query
//!    sees validated, typed rows.
//! 2. DataFusion runs the query over that file: it numbers each request's
//!    session and sorts the requests by session (both sorts spill). The
//!    result streams batch by batch; consecutive requests of one session
//!    are assembled into it and written (JSONL or Parquet) in the order of
//!    the in-memory sessionizer, one session in memory at a time.
//!
//! With a scheduler URL (feature `ballista`) the same query runs on an
//! Apache DataFusion Ballista cluster: the client plans it, the scheduler
//! splits it into stages, the executors run them (sorting and spilling
//! under their own memory settings) and the result streams back here. The
//! executors read the canonical copy by its path, so the scratch
//! directory must be one they can read (a shared volume; loopback
//! clusters share this machine's disk).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::{
    arrow::array::RecordBatch,
    execution::{memory_pool::FairSpillPool, runtime_env::RuntimeEnvBuilder},
    physical_plan::{execute_stream, ExecutionPlan},
    prelude::{ParquetReadOptions, SessionConfig, SessionContext},
};
use futures::StreamExt;

use crate::{
    columnar::{ArrowRecord, Columns, Kind, ParquetWriter, RecordSink, RecordSource},
    error::DataError,
    reader::{BadLinePolicy, ReadStats},
    schema::Session,
    sessionize::{RawRequest, SessionizeConfig},
};

/// The query, with `${gap_us}`, `${max_duration_us}` and `${max_events}`
/// to fill in.
pub const SESSIONIZE_SQL: &str = include_str!("../sql/sessionize.sql");

/// Memory each sort sets aside for merging its spilled runs: an eighth of
/// the limit, at least 2 MiB. The merge reads one batch of every run it
/// merges at once; memory it holds from the start is memory the other
/// operators cannot take first, which is what made merges fail under a
/// shared limit.
fn sort_merge_reservation(memory_limit: usize) -> usize {
    (memory_limit / 8).max(2 << 20)
}

/// Rows per batch inside the query: the merge of a sort's spilled runs
/// holds a batch of each run, so smaller batches let it merge more runs
/// within its reservation.
const BATCH_ROWS: usize = 1024;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Memory the query may hold before it spills, in bytes.
    pub memory_limit: usize,
    /// Where the canonical input copy and spill files go (the system's
    /// temporary directory when `None`).
    pub spill_dir: Option<PathBuf>,
    /// Threads (and DataFusion partitions).
    pub threads: usize,
    /// Run the query on this Ballista scheduler (`df://HOST:PORT`, any
    /// scheme) instead of in this process; needs the feature `ballista`.
    pub scheduler: Option<String>,
}

/// Anything that stops the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the input or writing the output.
    #[error(transparent)]
    Data(#[from] DataError),
    /// DataFusion planning or execution (a memory limit too small for
    /// the sorts' merge buffers shows up here).
    #[error("DataFusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// The runtime could not start, or a temporary file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The engine asked for is not in this build.
    #[error("{0}")]
    NotBuilt(String),
    /// The query's result did not have the sessions layout.
    #[error("query result column `{column}`: {message}")]
    Result {
        /// Column at fault.
        column: String,
        /// What is wrong.
        message: String,
    },
}

/// The query with `config`'s limits filled in.
pub fn sessionize_sql(config: &SessionizeConfig) -> String {
    let micros = |d: chrono::Duration| d.num_microseconds().unwrap_or(i64::MAX).max(1);
    SESSIONIZE_SQL
        .replace("${gap_us}", &micros(config.inactivity_gap).to_string())
        .replace(
            "${max_duration_us}",
            &micros(config.max_duration).to_string(),
        )
        .replace("${max_events}", &config.max_events.max(1).to_string())
}

/// Streams `input` into the canonical raw-log Parquet file `out`.
fn canonical_copy(input: &Path, out: &Path, policy: BadLinePolicy) -> Result<ReadStats, DataError> {
    let mut reader = RecordSource::<RawRequest>::open(input, policy)?;
    let mut writer = ParquetWriter::<RawRequest>::create(out)?;
    for request in reader.by_ref() {
        writer.write(&request?)?;
    }
    writer.finish()?;
    Ok(reader.stats().clone())
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct EngineRun {
    /// Sessions written.
    pub sessions: u64,
    /// Bytes the query's operators spilled to disk (`None` on Ballista,
    /// whose executors report their own spills).
    pub spilled_bytes: Option<usize>,
    /// The input reader's counts.
    pub read: ReadStats,
}

/// Stack of the engine's worker threads: tokio's 2 MiB default overflowed
/// in an unoptimised build (the tests' profile `engines`), where frames
/// are larger, during a query on a Ballista cluster; 4 MiB passed.
pub const ENGINE_THREAD_STACK: usize = 8 << 20;

/// Sessionizes `input` into `output` on DataFusion.
pub fn sessionize_with_datafusion(
    input: &Path,
    output: &Path,
    config: &SessionizeConfig,
    engine: &EngineConfig,
    policy: BadLinePolicy,
) -> Result<EngineRun, EngineError> {
    let scratch = match &engine.spill_dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let requests = scratch.path().join("requests.parquet");
    let stats = canonical_copy(input, &requests, policy)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(engine.threads.max(1))
        .thread_stack_size(ENGINE_THREAD_STACK)
        .enable_all()
        .build()?;
    let (sessions, spilled_bytes) =
        runtime.block_on(run_query(&requests, output, config, engine, scratch.path()))?;
    Ok(EngineRun {
        sessions,
        spilled_bytes,
        read: stats,
    })
}

/// Bytes spilled by `plan` and its inputs.
fn spilled_bytes(plan: &dyn ExecutionPlan) -> usize {
    let own = plan.metrics().and_then(|m| m.spilled_bytes()).unwrap_or(0);
    own + plan
        .children()
        .iter()
        .map(|c| spilled_bytes(c.as_ref()))
        .sum::<usize>()
}

/// The session's settings: partitions, batch size, the sorts' merge
/// reservation, and strings read as plain Utf8.
fn session_config(engine: &EngineConfig) -> SessionConfig {
    let mut session = SessionConfig::new()
        .with_target_partitions(engine.threads.max(1))
        .with_batch_size(BATCH_ROWS)
        .with_sort_spill_reservation_bytes(sort_merge_reservation(engine.memory_limit));
    // Strings as plain Utf8 rather than views: a sort counts every buffer
    // a batch of views points into, which can be a whole row group's, so
    // a 2,048-row batch was charged gigabytes and the sort failed instead
    // of spilling (apache/datafusion#12136).
    session
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    session
}

/// A context that runs queries in this process, or on the Ballista
/// cluster of `engine.scheduler`.
async fn context(engine: &EngineConfig, spill_dir: &Path) -> Result<SessionContext, EngineError> {
    // A fair pool: each spilling operator gets its share of the limit
    // rather than the first taking it all.
    let pool = FairSpillPool::new(engine.memory_limit);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_temp_file_path(spill_dir)
        .build_arc()?;
    let session = session_config(engine);
    match &engine.scheduler {
        None => Ok(SessionContext::new_with_config_rt(session, runtime)),
        Some(url) => ballista_context(url, session, runtime).await,
    }
}

#[cfg(feature = "ballista")]
async fn ballista_context(
    url: &str,
    session: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<SessionContext, EngineError> {
    use ballista::prelude::SessionContextExt;
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(session)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    Ok(SessionContext::remote_with_state(url, state).await?)
}

#[cfg(not(feature = "ballista"))]
async fn ballista_context(
    url: &str,
    _session: SessionConfig,
    _runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<SessionContext, EngineError> {
    Err(EngineError::NotBuilt(format!(
        "Ballista scheduler {url}: this build has no Ballista client; rebuild with \
         `--features ballista`"
    )))
}

async fn run_query(
    requests: &Path,
    output: &Path,
    config: &SessionizeConfig,
    engine: &EngineConfig,
    spill_dir: &Path,
) -> Result<(u64, Option<usize>), EngineError> {
    let ctx = context(engine, spill_dir).await?;
    let path = requests.to_str().ok_or_else(|| {
        std::io::Error::other(format!("{}: not a UTF-8 path", requests.display()))
    })?;
    ctx.register_parquet("requests", path, ParquetReadOptions::default())
        .await?;
    let plan = ctx
        .sql(&sessionize_sql(config))
        .await?
        .create_physical_plan()
        .await?;
    tracing::debug!(
        plan = %datafusion::physical_plan::displayable(plan.as_ref()).indent(true),
        "sessionize physical plan"
    );
    let mut batches = execute_stream(Arc::clone(&plan), ctx.task_ctx())?;
    let mut sink = RecordSink::<Session>::create(output)?;
    let mut current: Option<Session> = None;
    while let Some(batch) = batches.next().await {
        for (session_no, request) in numbered_requests(&batch?)? {
            let (account_id, account, event) = request.into_parts();
            let session_id = format!("{account_id}#{session_no}");
            match &mut current {
                Some(s) if s.session_id == session_id => s.events.push(event),
                _ => {
                    if let Some(done) = current.take() {
                        sink.write(&done)?;
                    }
                    current = Some(Session {
                        session_id,
                        account_id,
                        label: None,
                        campaign_id: None,
                        archetype: None,
                        account,
                        events: vec![event],
                    });
                }
            }
        }
    }
    if let Some(done) = current {
        sink.write(&done)?;
    }
    let written = sink.records();
    sink.finish()?;
    let spilled = engine
        .scheduler
        .is_none()
        .then(|| spilled_bytes(plan.as_ref()));
    Ok((written, spilled))
}

/// The rows of one result batch: each request with its session number.
fn numbered_requests(batch: &RecordBatch) -> Result<Vec<(u64, RawRequest)>, EngineError> {
    let result_error = |column: String, message: String| EngineError::Result { column, message };
    let numbers = Columns::of_batch(batch)
        .required("session_no", Kind::U64)
        .map_err(|p| result_error(p.column, p.message))?;
    let requests = RawRequest::from_batch(batch).map_err(|p| result_error(p.column, p.message))?;
    requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            let no = numbers
                .u64(i)
                .and_then(|n| n.ok_or_else(|| numbers.missing()));
            Ok((
                no.map_err(|(c, m)| result_error(c, m))?,
                request.map_err(|(c, m)| result_error(c, m))?,
            ))
        })
        .collect()
}
