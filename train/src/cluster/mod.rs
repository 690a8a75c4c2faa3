//! Coordination discovery: DBSCAN (linfa-clustering) over session points
//! built from the model's embeddings and behavioural features, a cluster
//! table, and account-level propagation (see [`propagate`] for the rule).

pub mod blocks;
pub mod eps;
pub mod params;
pub mod points;
pub mod propagate;
pub mod quality;
pub mod summary;

use std::time::Instant;

use anyhow::{Context, Result};
use linfa::{traits::Transformer, ParamGuard};
use linfa_clustering::Dbscan;
use linfa_nn::distance::L2Dist;
use ndarray::Array2;
use serde::Serialize;

use crate::score::{ScoreRecord, ScoredSession};
use models::reasons::session_reasons;
pub use params::{
    ClusterArgs, ClusterParams, ClusterParamsError, NeighbourIndex, ValidClusterParams,
};
use propagate::{account_verdicts, AccountVerdict, SessionView};
use summary::{members_by_cluster, summarise, ClusterSummary};

/// Scores file name in output folders.
pub const SCORES_FILE: &str = "scores.jsonl";
/// Cluster table file name.
pub const CLUSTERS_FILE: &str = "clusters.json";
/// Account verdicts file name.
pub const ACCOUNTS_FILE: &str = "accounts.jsonl";

/// Points the eps suggestion samples at most.
pub const EPS_SAMPLE: usize = 2000;

/// Seconds spent in each stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StageTimings {
    /// Building points.
    pub points_s: f64,
    /// PCA.
    pub pca_s: f64,
    /// Suggesting eps.
    pub eps_s: f64,
    /// DBSCAN.
    pub dbscan_s: f64,
}

/// Everything clustering found.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// Parameters used.
    pub params: ValidClusterParams,
    /// eps used.
    pub eps: f64,
    /// eps suggested by the k-distance curve (when it was asked for).
    pub eps_suggested: Option<f64>,
    /// Dimensions DBSCAN ran in.
    pub dims: usize,
    /// Cluster of each session (input order), `None` for noise. Ids are
    /// ordered by accounts, then sessions, largest first.
    pub labels: Vec<Option<usize>>,
    /// The cluster table, by id.
    pub clusters: Vec<ClusterSummary>,
    /// Account verdicts, by account id.
    pub accounts: Vec<AccountVerdict>,
    /// Stage timings.
    pub timings: StageTimings,
}

/// Clustering points of scored sessions (embeddings must have been kept),
/// before PCA.
fn points_of(sessions: &[&ScoredSession], params: &ValidClusterParams) -> Result<Array2<f32>> {
    if let Some(s) = sessions.iter().find(|s| s.embedding.is_empty()) {
        anyhow::bail!(
            "session {:?} has no embedding (score with embeddings kept)",
            s.session.session_id
        );
    }
    let embeddings: Vec<&[f32]> = sessions.iter().map(|s| s.embedding.as_slice()).collect();
    let features: Vec<_> = sessions.iter().map(|s| &s.features).collect();
    Ok(points::session_points(
        &embeddings,
        &features,
        params.text_weight,
        params.feature_weight,
    ))
}

/// Runs linfa DBSCAN on unit-vector points: cluster id per point, `None`
/// for noise.
pub fn dbscan(
    points: &Array2<f32>,
    eps: f64,
    min_points: usize,
    index: NeighbourIndex,
) -> Result<Vec<Option<usize>>> {
    let params = Dbscan::params_with(min_points, L2Dist, index.linfa())
        .tolerance(eps as f32)
        .check()
        .context("DBSCAN parameters")?;
    Ok(params.transform(points).to_vec())
}

/// Relabels clusters so that id 0 has the most accounts (then sessions).
fn renumber(
    labels: &[Option<usize>],
    accounts_of: impl Fn(&[usize]) -> usize,
) -> Vec<Option<usize>> {
    let groups = members_by_cluster(labels);
    let mut order: Vec<(usize, usize, usize)> = groups
        .iter()
        .map(|(&c, m)| (accounts_of(m), m.len(), c))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut new_id = vec![0usize; groups.keys().max().map_or(0, |m| m + 1)];
    for (rank, &(_, _, c)) in order.iter().enumerate() {
        new_id[c] = rank;
    }
    labels.iter().map(|l| l.map(|c| new_id[c])).collect()
}

/// What one clustering pass found, before clusters are renumbered.
struct Pass {
    /// Cluster of each point, `None` for noise.
    labels: Vec<Option<usize>>,
    /// eps used.
    eps: f64,
    /// eps suggested (when none was given).
    eps_suggested: Option<f64>,
    /// Dimensions DBSCAN ran in.
    dims: usize,
}

/// One DBSCAN over all points (after PCA when asked).
fn single_dbscan(
    points: Array2<f32>,
    params: &ValidClusterParams,
    timings: &mut StageTimings,
) -> Result<Pass> {
    let started = Instant::now();
    let points = match params.pca_dims {
        Some(dims) => points::reduce(points, dims, params.seed)?,
        None => points,
    };
    timings.pca_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let eps_suggested = match params.eps {
        Some(_) => None,
        None => eps::suggest_eps(&points, params.min_points, EPS_SAMPLE, params.index)?,
    };
    timings.eps_s = started.elapsed().as_secs_f64();
    // With too few points for a k-distance curve, fall back to a tight
    // radius (cosine similarity 0.98).
    let eps = params.eps.or(eps_suggested).unwrap_or(blocks::FALLBACK_EPS);

    let started = Instant::now();
    let raw = dbscan(&points, eps, params.min_points, params.index)?;
    timings.dbscan_s = started.elapsed().as_secs_f64();
    Ok(Pass {
        labels: raw,
        eps,
        eps_suggested,
        dims: points.ncols(),
    })
}

/// One DBSCAN (PCA and the k-distance eps as `params` say) over a subset
/// of scored sessions: cluster per session, `None` for noise.
pub fn cluster_subset(
    sessions: &[&ScoredSession],
    params: &ValidClusterParams,
) -> Result<Vec<Option<usize>>> {
    if sessions.len() < params.min_points {
        return Ok(vec![None; sessions.len()]);
    }
    let points = points_of(sessions, params)?;
    let mut timings = StageTimings::default();
    Ok(single_dbscan(points, params, &mut timings)?.labels)
}

/// Clusters scored sessions (embeddings kept), summarises clusters and
/// decides every account.
pub fn discover(
    sessions: &[ScoredSession],
    session_threshold: f32,
    params: &ValidClusterParams,
) -> Result<Discovery> {
    let mut timings = StageTimings::default();
    let started = Instant::now();
    let refs: Vec<&ScoredSession> = sessions.iter().collect();
    let points = points_of(&refs, params)?;
    timings.points_s = started.elapsed().as_secs_f64();
    let Pass {
        labels: raw,
        eps,
        eps_suggested,
        dims,
    } = match params.pca_dims {
        Some(dims) if params.blocks > 1 => {
            let started = Instant::now();
            let found = blocks::blocked_dbscan(
                &points,
                params.blocks,
                dims,
                params.min_points,
                params.index,
                params.eps,
                params.seed,
            )?;
            timings.dbscan_s = started.elapsed().as_secs_f64();
            Pass {
                eps_suggested: params.eps.is_none().then_some(found.eps),
                labels: found.labels,
                eps: found.eps,
                dims,
            }
        }
        _ => single_dbscan(points, params, &mut timings)?,
    };

    let labels = renumber(&raw, |members| {
        members
            .iter()
            .map(|&i| sessions[i].session.account_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    });
    let mut clusters: Vec<ClusterSummary> = members_by_cluster(&labels)
        .into_iter()
        .map(|(c, members)| {
            let m: Vec<_> = members
                .iter()
                .map(|&i| (&sessions[i].session, sessions[i].score))
                .collect();
            summarise(c, &m, params.min_accounts, params.propagation_threshold)
        })
        .collect();
    let views: Vec<SessionView> = sessions
        .iter()
        .zip(&labels)
        .map(|(s, l)| SessionView {
            account_id: &s.session.account_id,
            score: s.score,
            coordinated_cluster: l.filter(|&c| clusters[c].verdict.is_coordinated()),
        })
        .collect();
    let accounts = account_verdicts(&views, session_threshold, params.propagation_threshold);
    for c in &mut clusters {
        c.tally_accounts(&accounts);
    }
    Ok(Discovery {
        params: params.clone(),
        eps,
        eps_suggested,
        dims,
        labels,
        clusters,
        accounts,
        timings,
    })
}

impl Discovery {
    /// The verdict of an account.
    pub fn account(&self, account_id: &str) -> Option<&AccountVerdict> {
        propagate::find_verdict(&self.accounts, account_id)
    }

    /// Scores-file lines after clustering: a session is flagged when it
    /// passes the session threshold or its account was flagged by
    /// propagation; `cluster_id` is its cluster, and the reasons name the
    /// coordinated cluster and the propagation when they apply.
    pub fn records(&self, sessions: &[ScoredSession], session_threshold: f32) -> Vec<ScoreRecord> {
        sessions
            .iter()
            .zip(&self.labels)
            .map(|(s, &cluster_id)| {
                let account = self.account(&s.session.account_id);
                let mut reasons = session_reasons(s.score, session_threshold, &s.features);
                if let Some(c) = cluster_id.map(|c| &self.clusters[c]) {
                    if c.verdict.is_coordinated() {
                        reasons.push(format!(
                            "in coordinated cluster {} ({} accounts, mean score {:.3})",
                            c.cluster_id, c.accounts, c.mean_score
                        ));
                    }
                }
                let propagated = account.filter(|a| a.propagated);
                if let Some(a) = propagated {
                    reasons.push(format!(
                        "account propagated: in coordinated cluster {} with mean score {:.3} >= {:.3}",
                        a.coordinated_cluster.unwrap_or_default(),
                        a.mean_score,
                        self.params.propagation_threshold
                    ));
                }
                ScoreRecord {
                    session_id: s.session.session_id.clone(),
                    account_id: s.session.account_id.clone(),
                    score: s.score,
                    flagged: s.score >= session_threshold || propagated.is_some(),
                    cluster_id,
                    reasons,
                }
            })
            .collect()
    }

    /// Writes the scores file (with cluster ids), the cluster table and
    /// the account verdicts into the existing directory `dir`.
    pub fn write_files(
        &self,
        dir: &std::path::Path,
        sessions: &[ScoredSession],
        session_threshold: f32,
    ) -> Result<()> {
        let mut scores = datasets::JsonlWriter::create(&dir.join(SCORES_FILE))?;
        for r in self.records(sessions, session_threshold) {
            scores.write(&r)?;
        }
        scores.finish()?;
        let path = dir.join(CLUSTERS_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&self.clusters)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let mut accounts = datasets::JsonlWriter::create(&dir.join(ACCOUNTS_FILE))?;
        for a in &self.accounts {
            accounts.write(a)?;
        }
        accounts.finish()?;
        Ok(())
    }
}
