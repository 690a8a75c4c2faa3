//! The classical baseline the evaluation report compares the transformer
//! with: TF-IDF over word n-grams of a session's prompts
//! (linfa-preprocessing), next to the standardised behavioural features,
//! into an L2-regularised logistic regression (linfa-logistic's objective
//! and solver over the sparse matrix: `sparse_logistic`).

use anyhow::{anyhow, bail, Result};
use datasets::{session_features, Label, Session, NUM_FEATURES};
use linfa_preprocessing::tf_idf_vectorization::{FittedTfIdfVectorizer, TfIdfVectorizer};
use models::FeatureNormalizer;
use ndarray::Array1;
use serde::Serialize;
use sprs::CsMat;

use crate::sparse_logistic::{SparseLogistic, SparseLogisticConfig};

/// Settings of the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineConfig {
    /// Word n-gram range.
    pub ngrams: (usize, usize),
    /// Vocabulary size (n-grams found in the most sessions).
    pub max_features: usize,
    /// Minimum share of sessions an n-gram must appear in.
    pub min_document_frequency: f32,
    /// L2 penalty of the logistic regression.
    pub alpha: f64,
    /// L-BFGS iterations at most (on the default training split the fit
    /// converges, gradient norm under 1e-4, in under 300).
    pub max_iterations: u64,
    /// Prompts of a session the text features read: evenly spaced, first
    /// and last included (pipeline sessions carry thousands).
    pub max_prompts: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            ngrams: (1, 2),
            max_features: 4000,
            min_document_frequency: 0.001,
            alpha: 1.0,
            max_iterations: 1000,
            max_prompts: 32,
        }
    }
}

/// A fitted baseline.
pub struct Baseline {
    vectorizer: FittedTfIdfVectorizer,
    norm: FeatureNormalizer,
    model: SparseLogistic,
    /// Design-matrix column of each vocabulary entry: the n-grams in sorted
    /// order, whatever order the vectorizer holds them in.
    columns: Vec<usize>,
    max_prompts: usize,
}

/// Column of each vocabulary entry when the entries are sorted.
fn sorted_columns(vectorizer: &FittedTfIdfVectorizer) -> Vec<usize> {
    let vocab = vectorizer.vocabulary();
    let mut order: Vec<usize> = (0..vocab.len()).collect();
    order.sort_by(|&a, &b| vocab[a].cmp(&vocab[b]));
    let mut columns = vec![0; vocab.len()];
    for (column, &entry) in order.iter().enumerate() {
        columns[entry] = column;
    }
    columns
}

/// The text of a session as the baseline sees it: at most `max_prompts`
/// prompts, evenly spaced, first and last included.
fn session_text(session: &Session, max_prompts: usize) -> String {
    datasets::features::evenly_spaced(session.events.len(), max_prompts.max(1))
        .map(|i| session.events[i].prompt.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Baseline {
    /// Fits on labeled sessions (both classes needed).
    pub fn fit(sessions: &[Session], config: &BaselineConfig) -> Result<Self> {
        let positive: Vec<bool> = sessions
            .iter()
            .map(|s| s.label == Some(Label::Extraction))
            .collect();
        let positives = positive.iter().filter(|&&p| p).count();
        if positives == 0 || positives == positive.len() {
            bail!("the baseline needs both benign and extraction sessions to train on");
        }
        let texts: Array1<String> = sessions
            .iter()
            .map(|s| session_text(s, config.max_prompts))
            .collect();
        let vectorizer = Self::vocabulary_of(&texts, config)?;
        let raw: Vec<_> = sessions.iter().map(session_features).collect();
        let norm = FeatureNormalizer::fit(&raw);
        let columns = sorted_columns(&vectorizer);
        let x = Self::design(&vectorizer, &columns, &norm, &texts, &raw)?;
        let solver = SparseLogisticConfig {
            alpha: config.alpha,
            max_iterations: config.max_iterations,
            ..SparseLogisticConfig::default()
        };
        let model = SparseLogistic::fit(&x, &positive, &solver)?;
        Ok(Baseline {
            vectorizer,
            norm,
            model,
            columns,
            max_prompts: config.max_prompts,
        })
    }

    /// The TF-IDF vectorizer over the `max_features` n-grams found in the
    /// most sessions, ties broken by the n-gram itself, so the same
    /// vocabulary on every run (linfa's own `max_features` breaks ties in
    /// hash-map order).
    fn vocabulary_of(
        texts: &Array1<String>,
        config: &BaselineConfig,
    ) -> Result<FittedTfIdfVectorizer> {
        let params = TfIdfVectorizer::default().n_gram_range(config.ngrams.0, config.ngrams.1);
        let full = params
            .clone()
            .document_frequency(config.min_document_frequency, 1.0)
            .fit(texts)
            .map_err(|e| anyhow!("fitting the TF-IDF vocabulary: {e}"))?;
        let counts = full
            .transform(texts)
            .map_err(|e| anyhow!("TF-IDF transform: {e}"))?;
        let mut document_frequency = vec![0usize; full.nentries()];
        for row in counts.outer_iterator() {
            for (col, _) in row.iter() {
                document_frequency[col] += 1;
            }
        }
        let vocab = full.vocabulary();
        let mut order: Vec<usize> = (0..vocab.len()).collect();
        order.sort_by(|&a, &b| {
            document_frequency[b]
                .cmp(&document_frequency[a])
                .then_with(|| vocab[a].cmp(&vocab[b]))
        });
        order.truncate(config.max_features);
        let chosen: Vec<&String> = order.iter().map(|&i| &vocab[i]).collect();
        params
            .fit_vocabulary(&chosen)
            .map_err(|e| anyhow!("fixing the TF-IDF vocabulary: {e}"))
    }

    /// The design matrix (CSR): TF-IDF columns, then the standardised
    /// features.
    fn design(
        vectorizer: &FittedTfIdfVectorizer,
        columns: &[usize],
        norm: &FeatureNormalizer,
        texts: &Array1<String>,
        raw: &[datasets::FeatureVector],
    ) -> Result<CsMat<f64>> {
        let tfidf = vectorizer
            .transform(texts)
            .map_err(|e| anyhow!("TF-IDF transform: {e}"))?;
        let vocab = vectorizer.nentries();
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        let mut row_entries: Vec<(usize, f64)> = Vec::new();
        for (row, f) in tfidf.outer_iterator().zip(raw) {
            row_entries.clear();
            row_entries.extend(row.iter().map(|(col, &v)| (columns[col], v)));
            row_entries.sort_unstable_by_key(|&(col, _)| col);
            let z = norm.apply(f);
            row_entries.extend(
                z.iter()
                    .enumerate()
                    .map(|(i, &v)| (vocab + i, f64::from(v))),
            );
            indices.extend(row_entries.iter().map(|&(col, _)| col));
            data.extend(row_entries.iter().map(|&(_, v)| v));
            indptr.push(indices.len());
        }
        CsMat::try_new((texts.len(), vocab + NUM_FEATURES), indptr, indices, data)
            .map_err(|(_, _, _, e)| anyhow!("building the baseline's design matrix: {e}"))
    }

    /// Probability of extraction for each session.
    pub fn score(&self, sessions: &[&Session]) -> Result<Vec<f32>> {
        let texts: Array1<String> = sessions
            .iter()
            .map(|s| session_text(s, self.max_prompts))
            .collect();
        let raw: Vec<_> = sessions.iter().map(|s| session_features(s)).collect();
        let x = Self::design(&self.vectorizer, &self.columns, &self.norm, &texts, &raw)?;
        Ok(self
            .model
            .probabilities(&x)?
            .into_iter()
            .map(|p| p as f32)
            .collect())
    }

    /// Vocabulary size.
    pub fn vocabulary(&self) -> usize {
        self.vectorizer.nentries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::{Event, Session};

    fn session(id: usize, prompt: &str, label: Label) -> Session {
        let json = serde_json::json!({
            "session_id": format!("s{id}"),
            "account_id": format!("a{id}"),
            "label": label.as_str(),
            "events": [{"ts": "2026-02-10T12:00:00Z", "prompt": prompt}],
        });
        let mut s: Session = serde_json::from_value(json).unwrap();
        s.validate().unwrap();
        let _: &Event = &s.events[0];
        s
    }

    #[test]
    fn separates_templated_extraction_from_chat() {
        let mut train = Vec::new();
        // Benign is the majority class, as in real traffic.
        for i in 0..60 {
            train.push(session(
                200 + i,
                &format!("tell me a story about a dragon called number {i}"),
                Label::Benign,
            ));
        }
        for i in 0..40 {
            train.push(session(
                i,
                &format!("solve step by step and show your reasoning: problem {i}"),
                Label::Extraction,
            ));
            train.push(session(
                100 + i,
                &format!("what is a good recipe for dinner number {i}"),
                Label::Benign,
            ));
        }
        let baseline = Baseline::fit(&train, &BaselineConfig::default()).unwrap();
        assert!(baseline.vocabulary() > 5);
        // A small vocabulary is chosen the same way every time.
        let small = BaselineConfig {
            max_features: 7,
            ..BaselineConfig::default()
        };
        let a = Baseline::fit(&train, &small).unwrap();
        let b = Baseline::fit(&train, &small).unwrap();
        let sorted = |b: &Baseline| {
            let mut v = b.vectorizer.vocabulary().clone();
            v.sort();
            v
        };
        assert_eq!(sorted(&a), sorted(&b));
        assert_eq!(a.vocabulary(), 7);
        let refs: Vec<&Session> = train.iter().collect();
        assert_eq!(a.score(&refs).unwrap(), b.score(&refs).unwrap());
        let test = [
            session(
                1000,
                "solve step by step and show your reasoning",
                Label::Extraction,
            ),
            session(1001, "a good recipe for dinner please", Label::Benign),
        ];
        let test: Vec<&Session> = test.iter().collect();
        let p = baseline.score(&test).unwrap();
        assert!(p[0] > 0.5 && p[1] < 0.5, "{p:?}");
        // The same with extraction as the majority class.
        let mut flipped = train.clone();
        flipped.retain(|s| {
            s.label == Some(Label::Extraction)
                || s.session_id.starts_with("s10")
                || s.session_id.starts_with("s11")
        });
        assert_eq!(flipped.len(), 60);
        let p = Baseline::fit(&flipped, &BaselineConfig::default())
            .unwrap()
            .score(&test)
            .unwrap();
        assert!(p[0] > 0.5 && p[1] < 0.5, "{p:?}");
        let one_class: Vec<Session> = train[..1].to_vec();
        assert!(Baseline::fit(&one_class, &BaselineConfig::default()).is_err());
    }
}
