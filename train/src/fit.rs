//! `train fit`: fine-tunes the session classifier on labeled sessions and
//! exports a bundle.
//!
//! - AdamW (encoder and head with their own learning rates), linear warm-up
//!   then linear decay, global gradient-norm clipping, class-weighted
//!   binary cross-entropy, a seed for every random choice.
//! - `--train-layers all | N | head`: fine-tune everything, only the top N
//!   transformer layers, or only the head. Frozen bottom layers are run once
//!   per session (inference mode) and their outputs cached, so each epoch
//!   only pays for the trainable part.
//! - Early stopping on validation PR-AUC; a checkpoint after every epoch in
//!   the run directory; `--resume` continues from the last one (AdamW
//!   moments restart from zero on resume).
//! - The operating threshold is the lowest that flags at most
//!   `--target-fpr` of benign validation sessions; cluster propagation's
//!   threshold is chosen the same way for `--propagation-fpr`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW, VarBuilder, VarMap};
use datasets::NUM_FEATURES;
use models::{
    base_model::{self, ModelFiles},
    bundle::{
        write_bundle, BundleMetadata, BundleParts, DataFile, PropagationThreshold, Threshold,
    },
    checkpoint::load_into,
    classifier::HEAD_PREFIX,
    cpu_kernels::seed_dropout,
    drift::{ScoreReference, REFERENCE_BINS},
    optim::FusedAdamW,
    BertConfig, BertEncoder, FeatureNormalizer, HeadConfig, Mode, SessionClassifier,
    SessionTokenizer,
};
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{
    data::LabeledSplit,
    frozen::{frozen_weights_fingerprint, FrozenIdentity, FrozenLayers},
    metrics::{average_precision, benign_scores, roc_auc, threshold_for_fpr, Confusion},
    warm_start::{self, WarmStart},
};

/// Which parameters are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainLayers {
    /// Embeddings, every layer and the head.
    All,
    /// The top N transformer layers and the head.
    Top(usize),
    /// The head only.
    HeadOnly,
}

impl std::str::FromStr for TrainLayers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(TrainLayers::All),
            "head" => Ok(TrainLayers::HeadOnly),
            n => n
                .parse::<usize>()
                .map(TrainLayers::Top)
                .map_err(|_| format!("expected all, head or a number of top layers, got {s:?}")),
        }
    }
}

/// Everything `fit` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitConfig {
    /// Training sessions file.
    pub train: PathBuf,
    /// Validation sessions file (early stopping, threshold).
    pub validation: PathBuf,
    /// Base model directory or hub id.
    pub base_model: String,
    /// Bundle directory to write.
    pub out: PathBuf,
    /// Checkpoints and run state.
    pub run_dir: PathBuf,
    /// Token budget per session.
    pub max_tokens: usize,
    /// Prompts kept per session.
    pub max_prompts: usize,
    /// Which parameters to train.
    pub train_layers: TrainLayers,
    /// Maximum epochs.
    pub epochs: usize,
    /// Sessions per optimisation step.
    pub batch_size: usize,
    /// Peak learning rate of encoder layers.
    pub learning_rate: f64,
    /// Peak learning rate of the head.
    pub head_learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Share of steps spent warming the learning rate up.
    pub warmup_fraction: f64,
    /// Clip the global gradient norm to this.
    pub max_grad_norm: f64,
    /// Weight extraction examples by benign/extraction ratio.
    pub class_weighting: bool,
    /// Epochs without validation PR-AUC improvement before stopping.
    pub patience: usize,
    /// Benign false-positive rate the threshold is chosen for.
    pub target_fpr: f64,
    /// Benign false-positive rate cluster propagation's (lower) threshold
    /// is chosen for.
    pub propagation_fpr: f64,
    /// Width of the head's hidden layer.
    pub head_hidden: usize,
    /// Head dropout.
    pub head_dropout: f32,
    /// Seed of shuffling, sampling and head initialisation.
    pub seed: u64,
    /// Use at most this many training sessions (seeded random sample).
    pub max_train_sessions: Option<usize>,
    /// Continue from the run directory's last checkpoint.
    pub resume: bool,
    /// Warm start: begin from this bundle's encoder, head and feature
    /// normalisation; its head width, token budget and prompts kept
    /// replace `head_hidden`, `max_tokens` and `max_prompts`.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// With `init_from`, fit the feature normalisation on the training
    /// data instead of keeping the bundle's.
    #[serde(default)]
    pub refit_normalization: bool,
    /// Older labeled sessions trained on beside `train` (a replay sample,
    /// so earlier campaigns are not forgotten).
    #[serde(default)]
    pub replay: Option<PathBuf>,
    /// Seeded sample of at most this many `replay` sessions (all when
    /// `None`).
    #[serde(default)]
    pub replay_sessions: Option<usize>,
}

impl FitConfig {
    /// Checks every setting that needs no file, before anything is read,
    /// naming the flag of the first one out of range (the token budget is
    /// checked against the model's position embeddings once its config is
    /// read).
    pub fn check(&self) -> Result<()> {
        let rate = |x: f64| x.is_finite() && x >= 0.0;
        let checks: [(bool, &str); 11] = [
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (
                self.max_tokens >= 2,
                "--max-tokens must be at least 2 ([CLS] and [SEP])",
            ),
            (self.max_prompts >= 1, "--max-prompts must be at least 1"),
            (self.head_hidden >= 1, "--head-hidden must be at least 1"),
            (
                (0.0..1.0).contains(&self.head_dropout),
                "--head-dropout must be in [0, 1)",
            ),
            (
                rate(self.learning_rate)
                    && rate(self.head_learning_rate)
                    && rate(self.weight_decay),
                "--learning-rate, --head-learning-rate and --weight-decay must be finite and >= 0",
            ),
            (
                (0.0..=1.0).contains(&self.warmup_fraction),
                "--warmup-fraction must be in [0, 1]",
            ),
            (
                self.max_grad_norm > 0.0 && self.max_grad_norm.is_finite(),
                "--max-grad-norm must be finite and > 0",
            ),
            (
                (0.0..1.0).contains(&self.target_fpr),
                "--target-fpr must be in [0, 1)",
            ),
            (
                (self.target_fpr..1.0).contains(&self.propagation_fpr),
                "--propagation-fpr must be in [--target-fpr, 1)",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            bail!("{message}");
        }
        if self.init_from.is_none() && self.refit_normalization {
            bail!("--refit-normalization needs --init-from");
        }
        if self.replay.is_none() && self.replay_sessions.is_some() {
            bail!("--replay-sessions needs --replay");
        }
        Ok(())
    }
}

/// Metrics of one scored split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Sessions scored.
    pub sessions: usize,
    /// ROC-AUC.
    pub roc_auc: Option<f64>,
    /// PR-AUC (average precision).
    pub pr_auc: Option<f64>,
}

impl SplitMetrics {
    /// Metrics of scores against labels.
    pub fn of(scores: &[f32], positive: &[bool]) -> Self {
        SplitMetrics {
            sessions: scores.len(),
            roc_auc: roc_auc(scores, positive),
            pr_auc: average_precision(scores, positive),
        }
    }
}

/// One epoch's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation metrics after the epoch.
    pub validation: SplitMetrics,
    /// Training throughput, sessions per second.
    pub sessions_per_second: f64,
}

/// Run state saved after every epoch (for `--resume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunState {
    fingerprint: String,
    epochs_done: usize,
    best_pr_auc: f64,
    best_epoch: usize,
    bad_epochs: usize,
    history: Vec<EpochRecord>,
}

/// What a fit produced.
#[derive(Debug, Clone)]
pub struct FitOutcome {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
    /// Threshold and its validation FPR / recall.
    pub threshold: Threshold,
    /// Validation metrics at the saved weights.
    pub validation: SplitMetrics,
    /// Validation scores at the saved weights, in file order.
    pub validation_scores: Vec<f32>,
}

/// The frozen part's output for each session of a split: hidden states
/// after the frozen layers, (tokens, hidden).
struct FrozenCache {
    start_layer: usize,
    hidden: Vec<Tensor>,
}

/// A split's model inputs: normalised features and, when layers are
/// frozen, their cached output.
struct SplitInputs<'a> {
    split: &'a LabeledSplit,
    features: Tensor,
    cache: Option<FrozenCache>,
}

/// Runs the classifier on sessions of a split.
struct Runner<'a> {
    model: &'a SessionClassifier,
    tokenizer: &'a SessionTokenizer,
    device: &'a Device,
}

impl Runner<'_> {
    /// Logits (batch,) for the sessions `idx`.
    fn logits(&self, inputs: &SplitInputs, idx: &[usize], mode: Mode) -> Result<Tensor> {
        let idx_t = Tensor::from_vec(
            idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            idx.len(),
            self.device,
        )?;
        let feats = inputs.features.index_select(&idx_t, 0)?;
        let batch: Vec<&[u32]> = idx
            .iter()
            .map(|&i| inputs.split.encoded[i].as_slice())
            .collect();
        let (ids, mask) = self.tokenizer.pad_batch(&batch, self.device)?;
        let embeddings = match &inputs.cache {
            None => self.model.encoder.embed(&ids, &mask, mode)?,
            Some(c) => {
                let longest = mask.dim(1)?;
                let padded = idx
                    .iter()
                    .map(|&i| {
                        let h = &c.hidden[i];
                        h.pad_with_zeros(0, 0, longest - h.dim(0)?)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let hidden = Tensor::stack(&padded, 0)?;
                let top = self
                    .model
                    .encoder
                    .forward_top(&hidden, &mask, c.start_layer, mode)?;
                BertEncoder::mean_pool(&top, &mask)?
            }
        };
        Ok(self.model.head.forward(&embeddings, &feats, mode)?)
    }

    /// Scores every session of a split (inference mode), in file order.
    fn score(&self, inputs: &SplitInputs) -> Result<Vec<f32>> {
        let encoded = &inputs.split.encoded;
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut scores = vec![0f32; order.len()];
        for chunk in order.chunks(64) {
            let logits = self.logits(inputs, chunk, Mode::Eval)?;
            let probs = candle_nn::ops::sigmoid(&logits)?.to_vec1::<f32>()?;
            for (&i, p) in chunk.iter().zip(probs) {
                scores[i] = p;
            }
        }
        Ok(scores)
    }
}

/// Class-weighted, numerically stable binary cross-entropy on logits.
fn weighted_bce(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> candle_core::Result<Tensor> {
    // max(z, 0) - z*y + ln(1 + exp(-|z|))
    let per = ((logits.relu()? - (logits * labels)?)?
        + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    (per * weights)?
        .sum_all()?
        .broadcast_div(&weights.sum_all()?)
}

/// Scales gradients in place so their global L2 norm is at most `max_norm`;
/// returns the norm before clipping.
fn clip_gradients(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[Var],
    max_norm: f64,
) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v) {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm && norm.is_finite() {
        let scale = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.get(v) {
                let scaled = (g * scale)?;
                grads.insert(v, scaled);
            }
        }
    }
    Ok(norm)
}

/// Learning-rate multiplier at `step` of `total`: linear warm-up, then
/// linear decay to zero.
pub fn schedule(step: usize, total: usize, warmup_fraction: f64) -> f64 {
    let warmup = ((total as f64 * warmup_fraction).round() as usize).max(1);
    if step < warmup {
        (step + 1) as f64 / warmup as f64
    } else {
        let rest = (total - warmup).max(1) as f64;
        (1.0 - (step - warmup) as f64 / rest).max(0.0)
    }
}

/// Seeded initialisation of the new head: weights uniform in
/// ±1/sqrt(fan_in) (PyTorch's `nn.Linear` default), biases zero.
fn init_head(varmap: &VarMap, seed: u64) -> Result<()> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?;
    let mut names: Vec<&String> = vars.keys().filter(|n| n.starts_with(HEAD_PREFIX)).collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4ead);
    for name in names {
        let var = &vars[name];
        let values: Vec<f32> = match var.dims() {
            [_, fan_in] => {
                let bound = 1.0 / (*fan_in as f32).sqrt();
                (0..var.elem_count())
                    .map(|_| rng.random_range(-bound..bound))
                    .collect()
            }
            _ => vec![0.0; var.elem_count()],
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

fn trainable(name: &str, layers: TrainLayers, num_layers: usize) -> bool {
    if name.starts_with(HEAD_PREFIX) {
        return true;
    }
    match layers {
        TrainLayers::All => true,
        TrainLayers::HeadOnly => false,
        TrainLayers::Top(k) => (num_layers.saturating_sub(k)..num_layers)
            .any(|i| name.starts_with(&format!("encoder.layer.{i}."))),
    }
}

fn fingerprint(
    config: &FitConfig,
    train: &LabeledSplit,
    validation: &LabeledSplit,
    replay: Option<&DataFile>,
) -> Result<String> {
    let mut c = config.clone();
    c.resume = false;
    c.epochs = 0; // more epochs may be asked for on resume
    let text = serde_json::to_string(&(
        c,
        &train.file.sha256,
        &validation.file.sha256,
        replay.map(|f| &f.sha256),
    ))?;
    Ok(format!(
        "{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())
    ))
}

fn save_state(run_dir: &Path, state: &RunState) -> Result<()> {
    datasets::writer::write_atomic(
        &run_dir.join("state.json"),
        &serde_json::to_vec_pretty(state)?,
    )?;
    Ok(())
}

/// The encoder config, weights and tokenizer to start from: the warm
/// start's bundle, else the base model.
fn model_files(config: &FitConfig, warm: Option<&WarmStart>) -> Result<ModelFiles> {
    match warm {
        Some(w) => {
            info!(parent = %w.parent.dir, version = %w.parent.version, "warm start");
            Ok(w.files.clone())
        }
        None => {
            let (files, source) = base_model::resolve(&config.base_model)?;
            info!(?source, weights = %files.weights.display(), "base model");
            Ok(files)
        }
    }
}

/// The head and session input: the warm start's shape, else the flags'.
fn head_config(config: &FitConfig, warm: Option<&WarmStart>) -> HeadConfig {
    let (hidden_dim, max_tokens, max_prompts) = match warm {
        Some(w) => (w.head.hidden_dim, w.head.max_tokens, w.head.max_prompts),
        None => (config.head_hidden, config.max_tokens, config.max_prompts),
    };
    HeadConfig {
        num_features: NUM_FEATURES,
        hidden_dim,
        dropout: config.head_dropout,
        max_tokens,
        max_prompts,
    }
}

/// The training split, with the replay sample appended (and its file).
fn training_data(
    config: &FitConfig,
    tokenizer: &SessionTokenizer,
) -> Result<(LabeledSplit, Option<DataFile>)> {
    let mut train = LabeledSplit::load(
        &config.train,
        tokenizer,
        config.max_train_sessions.map(|n| (n, config.seed)),
    )?;
    let Some(path) = &config.replay else {
        return Ok((train, None));
    };
    let replay = LabeledSplit::load(
        path,
        tokenizer,
        config.replay_sessions.map(|n| (n, config.seed)),
    )?;
    let file = replay.file.clone();
    info!(sessions = file.sessions, file = %file.path, "replay sample");
    train.append(replay);
    Ok((train, Some(file)))
}

/// Everything a fit reads before training: the model's shape, the data,
/// the feature normaliser, and the model with its starting weights.
struct Prepared {
    warm: Option<WarmStart>,
    bert: BertConfig,
    head: HeadConfig,
    tokenizer: SessionTokenizer,
    train: LabeledSplit,
    replay_file: Option<DataFile>,
    validation: LabeledSplit,
    norm: FeatureNormalizer,
    varmap: VarMap,
    model: SessionClassifier,
}

/// The encoder and head configs, checked against the flags.
fn checked_configs(
    config: &FitConfig,
    warm: Option<&WarmStart>,
) -> Result<(ModelFiles, BertConfig, HeadConfig)> {
    let files = model_files(config, warm)?;
    let bert = BertConfig::from_file(&files.config)?;
    if let TrainLayers::Top(k) = config.train_layers {
        if k == 0 || k > bert.num_hidden_layers {
            bail!(
                "--train-layers {k}: the model has {} layers (use 1..={}, all or head)",
                bert.num_hidden_layers,
                bert.num_hidden_layers
            );
        }
    }
    let head = head_config(config, warm);
    if head.max_tokens > bert.max_position_embeddings {
        bail!(
            "--max-tokens {}: the model has {} position embeddings",
            head.max_tokens,
            bert.max_position_embeddings
        );
    }
    Ok((files, bert, head))
}

/// Reads the configs and data, fits (or keeps) the normaliser, seeds the
/// random draws and builds the model with its starting weights.
fn prepare(config: &FitConfig, device: &Device) -> Result<Prepared> {
    let warm = config
        .init_from
        .as_deref()
        .map(warm_start::load)
        .transpose()?;
    let (files, bert, head) = checked_configs(config, warm.as_ref())?;
    let tokenizer =
        SessionTokenizer::from_file(&files.tokenizer, head.max_tokens, head.max_prompts)?;
    let (train, replay_file) = training_data(config, &tokenizer)?;
    let validation = LabeledSplit::load(&config.validation, &tokenizer, None)?;
    let n_pos = train.positives().iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == train.labels.len() {
        bail!(
            "{}: training needs both benign and extraction sessions",
            config.train.display()
        );
    }
    let norm = match &warm {
        Some(w) if !config.refit_normalization => w.norm.clone(),
        _ => FeatureNormalizer::fit(&train.features),
    };
    // CPU dropout masks come from the project's seedable kernel; other
    // devices draw them from the device generator.
    seed_dropout(config.seed);
    if !device.is_cpu() {
        device.set_seed(config.seed)?;
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = SessionClassifier::load(vb, &bert, &head)?;
    if warm.is_some() {
        load_into(&varmap, &files.weights, |_| false)?;
    } else {
        load_into(&varmap, &files.weights, |n| n.starts_with(HEAD_PREFIX))?;
        init_head(&varmap, config.seed)?;
    }
    Ok(Prepared {
        warm,
        bert,
        head,
        tokenizer,
        train,
        replay_file,
        validation,
        norm,
        varmap,
        model,
    })
}

/// A fresh run state, or with `--resume` the saved one (its last weights
/// loaded), refused when it was made with other data or settings.
fn start_or_resume(config: &FitConfig, fingerprint: String, varmap: &VarMap) -> Result<RunState> {
    let fresh = RunState {
        fingerprint,
        epochs_done: 0,
        best_pr_auc: f64::NEG_INFINITY,
        best_epoch: 0,
        bad_epochs: 0,
        history: Vec::new(),
    };
    if !config.resume {
        return Ok(fresh);
    }
    let text = std::fs::read_to_string(config.run_dir.join("state.json"))
        .with_context(|| format!("--resume: no run state in {}", config.run_dir.display()))?;
    let saved: RunState = serde_json::from_str(&text)?;
    if saved.fingerprint != fresh.fingerprint {
        bail!(
            "--resume: {} was made with other data or settings",
            config.run_dir.display()
        );
    }
    load_into(varmap, &config.run_dir.join(LAST_CHECKPOINT), |_| false)?;
    info!(epochs_done = saved.epochs_done, "resuming");
    Ok(saved)
}

/// Weights after the last epoch, in the run directory.
const LAST_CHECKPOINT: &str = "last.safetensors";
/// Weights of the best epoch, in the run directory.
const BEST_CHECKPOINT: &str = "best.safetensors";

/// The optimisers of the trainable head and encoder variables.
struct Optimizers {
    head: FusedAdamW,
    encoder: FusedAdamW,
    trainable: Vec<Var>,
}

impl Optimizers {
    fn new(varmap: &VarMap, config: &FitConfig, num_layers: usize) -> Result<Self> {
        let mut head_vars: Vec<Var> = Vec::new();
        let mut encoder_vars: Vec<Var> = Vec::new();
        for (name, var) in varmap
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?
            .iter()
            .filter(|(name, _)| trainable(name, config.train_layers, num_layers))
        {
            if name.starts_with(HEAD_PREFIX) {
                head_vars.push(var.clone());
            } else {
                encoder_vars.push(var.clone());
            }
        }
        let trainable: Vec<Var> = head_vars.iter().chain(&encoder_vars).cloned().collect();
        let params = |lr: f64| ParamsAdamW {
            lr,
            weight_decay: config.weight_decay,
            ..Default::default()
        };
        Ok(Optimizers {
            head: FusedAdamW::new(head_vars, params(config.head_learning_rate))?,
            encoder: FusedAdamW::new(encoder_vars, params(config.learning_rate))?,
            trainable,
        })
    }

    /// Sets both learning rates to their base times `factor`.
    fn schedule(&mut self, config: &FitConfig, factor: f64) {
        self.head
            .set_learning_rate(config.head_learning_rate * factor);
        self.encoder
            .set_learning_rate(config.learning_rate * factor);
    }

    /// Clips the gradients of `loss` and steps both optimisers.
    fn step(&mut self, loss: &Tensor, max_grad_norm: f64) -> Result<()> {
        let mut grads = loss.backward()?;
        clip_gradients(&mut grads, &self.trainable, max_grad_norm)?;
        self.head.step(&grads)?;
        self.encoder.step(&grads)?;
        Ok(())
    }
}

/// The training split's inputs, labels and per-session loss weights.
struct TrainingBatches<'a> {
    inputs: SplitInputs<'a>,
    labels: Tensor,
    weights: Tensor,
}

impl<'a> TrainingBatches<'a> {
    fn new(inputs: SplitInputs<'a>, config: &FitConfig, device: &Device) -> Result<Self> {
        let labels = &inputs.split.labels;
        let n_pos = labels.iter().filter(|&&l| l > 0.5).count();
        let pos_weight = if config.class_weighting {
            (labels.len() - n_pos) as f64 / n_pos as f64
        } else {
            1.0
        };
        let weights: Vec<f32> = labels
            .iter()
            .map(|&l| if l > 0.5 { pos_weight as f32 } else { 1.0 })
            .collect();
        Ok(TrainingBatches {
            labels: Tensor::from_vec(labels.clone(), labels.len(), device)?,
            weights: Tensor::from_vec(weights, labels.len(), device)?,
            inputs,
        })
    }

    /// The weighted loss of the sessions `idx` in training mode.
    fn loss(&self, runner: &Runner, idx: &[usize]) -> Result<Tensor> {
        let logits = runner.logits(&self.inputs, idx, Mode::Train)?;
        let idx_t = Tensor::from_vec(
            idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            idx.len(),
            runner.device,
        )?;
        Ok(weighted_bce(
            &logits,
            &self.labels.index_select(&idx_t, 0)?,
            &self.weights.index_select(&idx_t, 0)?,
        )?)
    }
}

/// One pass over the training sessions in `order`: the mean loss and the
/// sessions per second.
fn train_epoch(
    config: &FitConfig,
    runner: &Runner,
    batches: &TrainingBatches,
    optimizers: &mut Optimizers,
    order: &[usize],
    epoch: usize,
) -> Result<(f64, f64)> {
    let steps_per_epoch = order.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let bar = crate::progress::bar(
        steps_per_epoch as u64,
        &format!("epoch {}/{}", epoch + 1, config.epochs),
    );
    let started = std::time::Instant::now();
    let mut loss_sum = 0f64;
    for (step, idx) in order.chunks(config.batch_size).enumerate() {
        let global = epoch * steps_per_epoch + step;
        optimizers.schedule(
            config,
            schedule(global, total_steps, config.warmup_fraction),
        );
        let loss = batches.loss(runner, idx)?;
        let loss_value = f64::from(loss.to_scalar::<f32>()?);
        if !loss_value.is_finite() {
            bail!(
                "training diverged at epoch {} step {step}: loss {loss_value}",
                epoch + 1
            );
        }
        optimizers.step(&loss, config.max_grad_norm)?;
        loss_sum += loss_value;
        bar.set_message(format!(
            "loss {:.4} {:.1} sessions/s",
            loss_sum / (step + 1) as f64,
            ((step + 1) * config.batch_size) as f64 / started.elapsed().as_secs_f64()
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let throughput = order.len() as f64 / started.elapsed().as_secs_f64();
    Ok((loss_sum / steps_per_epoch as f64, throughput))
}

/// Records an epoch's validation result: a better PR-AUC saves the best
/// checkpoint (and returns true); the last checkpoint and the run state
/// are saved after every epoch.
fn finish_epoch(
    config: &FitConfig,
    varmap: &VarMap,
    state: &mut RunState,
    record: EpochRecord,
) -> Result<bool> {
    let pr_auc = record.validation.pr_auc.unwrap_or(0.0);
    let improved = pr_auc > state.best_pr_auc + 1e-6;
    if improved {
        state.best_pr_auc = pr_auc;
        state.best_epoch = record.epoch;
        state.bad_epochs = 0;
        varmap.save(config.run_dir.join(BEST_CHECKPOINT))?;
    } else {
        state.bad_epochs += 1;
    }
    varmap.save(config.run_dir.join(LAST_CHECKPOINT))?;
    state.epochs_done = record.epoch;
    state.history.push(record);
    save_state(&config.run_dir, state)?;
    Ok(improved)
}

/// The epochs left (early stopping on validation PR-AUC). Returns the best
/// epoch's validation scores when that epoch ran in this process.
fn run_epochs(
    config: &FitConfig,
    prepared: &Prepared,
    runner: &Runner,
    state: &mut RunState,
    validation: &SplitInputs,
    frozen: &mut FrozenLayers,
) -> Result<Option<Vec<f32>>> {
    let device = runner.device;
    let train = &prepared.train;
    let inputs = split_inputs(config, prepared, train, runner, frozen, "train")?;
    let batches = TrainingBatches::new(inputs, config, device)?;
    let mut optimizers =
        Optimizers::new(&prepared.varmap, config, prepared.bert.num_hidden_layers)?;
    let validation_pos = prepared.validation.positives();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // Keep shuffles identical on resume: replay the skipped epochs' draws.
    let mut order: Vec<usize> = (0..train.sessions.len()).collect();
    for _ in 0..state.epochs_done {
        order.shuffle(&mut rng);
    }
    let mut best_scores = None;
    for epoch in state.epochs_done..config.epochs {
        if state.bad_epochs >= config.patience && epoch > 0 {
            info!(
                epoch,
                "early stop: no validation PR-AUC gain for {} epochs", config.patience
            );
            break;
        }
        order.shuffle(&mut rng);
        let (train_loss, sessions_per_second) =
            train_epoch(config, runner, &batches, &mut optimizers, &order, epoch)?;
        let scores = runner.score(validation)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss,
            validation: SplitMetrics::of(&scores, &validation_pos),
            sessions_per_second,
        };
        log_epoch(&record);
        if finish_epoch(config, &prepared.varmap, state, record)? {
            best_scores = Some(scores);
        }
    }
    Ok(best_scores)
}

fn log_epoch(record: &EpochRecord) {
    let m = &record.validation;
    info!(epoch = record.epoch, loss = record.train_loss, pr_auc = ?m.pr_auc, roc_auc = ?m.roc_auc, "epoch done");
    eprintln!(
        "epoch {}: loss {:.4}, validation PR-AUC {:.4}, ROC-AUC {:.4}, {:.1} sessions/s",
        record.epoch,
        record.train_loss,
        m.pr_auc.unwrap_or(f64::NAN),
        m.roc_auc.unwrap_or(f64::NAN),
        record.sessions_per_second
    );
}

/// A split's model inputs: normalised features and, when bottom layers are
/// frozen, their output (from `frozen`, which runs the sessions it lacks).
fn split_inputs<'a>(
    config: &FitConfig,
    prepared: &Prepared,
    split: &'a LabeledSplit,
    runner: &Runner,
    frozen: &mut FrozenLayers,
    what: &str,
) -> Result<SplitInputs<'a>> {
    let num_layers = prepared.bert.num_hidden_layers;
    let start_layer = match config.train_layers {
        TrainLayers::All => None,
        TrainLayers::Top(k) => Some(num_layers - k),
        TrainLayers::HeadOnly => Some(num_layers),
    };
    let cache = start_layer
        .map(|start_layer| -> Result<FrozenCache> {
            let identity = FrozenIdentity {
                start_layer,
                weights: frozen_weights_fingerprint(&prepared.varmap, |name| {
                    !trainable(name, config.train_layers, num_layers)
                })?,
                device: format!("{:?}", runner.device.location()),
            };
            let hidden = frozen.hidden_states(
                &runner.model.encoder,
                runner.tokenizer,
                &split.encoded,
                identity,
                runner.device,
                &format!("frozen layers ({what})"),
            )?;
            Ok(FrozenCache {
                start_layer,
                hidden,
            })
        })
        .transpose()?;
    Ok(SplitInputs {
        split,
        features: prepared.norm.tensor(&split.features, runner.device)?,
        cache,
    })
}

/// The session threshold for `--target-fpr` and cluster propagation's for
/// `--propagation-fpr`, both on the benign validation scores, with the
/// confusion at the session threshold.
fn choose_threshold(
    config: &FitConfig,
    scores: &[f32],
    positive: &[bool],
) -> Result<(Threshold, Confusion)> {
    let benign = benign_scores(scores, positive);
    let threshold_value = threshold_for_fpr(&benign, config.target_fpr).with_context(|| {
        format!(
            "{}: no benign sessions to choose a threshold on",
            config.validation.display()
        )
    })?;
    let confusion = Confusion::at(scores, positive, threshold_value);
    // Both thresholds come from the same benign scores, so the looser FPR
    // gives a threshold no higher than the session one (min guards ties).
    let propagation_value = threshold_for_fpr(&benign, config.propagation_fpr)
        .map_or(threshold_value, |t| t.min(threshold_value));
    let propagation_confusion = Confusion::at(scores, positive, propagation_value);
    let threshold = Threshold {
        threshold: threshold_value,
        target_fpr: config.target_fpr,
        validation_fpr: confusion.false_positive_rate(),
        validation_recall: confusion.recall(),
        propagation: Some(PropagationThreshold {
            threshold: propagation_value,
            target_fpr: config.propagation_fpr,
            validation_fpr: propagation_confusion.false_positive_rate(),
        }),
        score_reference: ScoreReference::from_scores(scores, REFERENCE_BINS),
    };
    Ok((threshold, confusion))
}

/// The bundle's provenance: data files, settings, history and validation
/// numbers.
fn bundle_metadata(
    config: &FitConfig,
    prepared: &Prepared,
    state: &RunState,
    validation_metrics: &SplitMetrics,
    confusion: &Confusion,
) -> BundleMetadata {
    let name = config
        .out
        .file_name()
        .map_or("bundle".into(), |n| n.to_string_lossy().into_owned());
    BundleMetadata {
        name,
        version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        base_model: prepared
            .warm
            .as_ref()
            .map_or_else(|| config.base_model.clone(), |w| w.base_model.clone()),
        data_files: [
            Some(&prepared.train.file),
            prepared.replay_file.as_ref(),
            Some(&prepared.validation.file),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect(),
        hyper_parameters: serde_json::json!({
            "fit": config,
            "best_epoch": state.best_epoch,
            "history": state.history,
        }),
        validation_metrics: serde_json::json!({
            "metrics": validation_metrics,
            "confusion_at_threshold": confusion,
        }),
        test_metrics: None,
        parent: prepared.warm.as_ref().map(|w| w.parent.clone()),
    }
}

/// Fine-tunes, picks the threshold and writes the bundle: preparation,
/// resume, the epoch loop, threshold choice and export.
pub fn fit(config: &FitConfig, device: &Device) -> Result<FitOutcome> {
    fit_sharing(config, device, &mut FrozenLayers::new())
}

/// [`fit`], with the frozen layers' output of every session taken from
/// `frozen` when it holds them for the same weights, and left there for
/// the next fit (see [`crate::frozen`]).
pub fn fit_sharing(
    config: &FitConfig,
    device: &Device,
    frozen: &mut FrozenLayers,
) -> Result<FitOutcome> {
    config.check()?;
    let prepared = prepare(config, device)?;
    std::fs::create_dir_all(&config.run_dir)
        .with_context(|| format!("creating {}", config.run_dir.display()))?;
    let fingerprint = fingerprint(
        config,
        &prepared.train,
        &prepared.validation,
        prepared.replay_file.as_ref(),
    )?;
    let mut state = start_or_resume(config, fingerprint, &prepared.varmap)?;
    let runner = Runner {
        model: &prepared.model,
        tokenizer: &prepared.tokenizer,
        device,
    };
    let validation = &prepared.validation;
    let validation_inputs =
        split_inputs(config, &prepared, validation, &runner, frozen, "validation")?;
    let best_scores = run_epochs(
        config,
        &prepared,
        &runner,
        &mut state,
        &validation_inputs,
        frozen,
    )?;
    if state.best_epoch == 0 {
        bail!("no epoch finished: nothing to export");
    }
    load_into(
        &prepared.varmap,
        &config.run_dir.join(BEST_CHECKPOINT),
        |_| false,
    )?;
    // The best epoch's validation scores are those of the weights just
    // loaded, unless that epoch ran before a resume.
    let validation_scores = match best_scores {
        Some(scores) => scores,
        None => runner.score(&validation_inputs)?,
    };
    let validation_pos = validation.positives();
    let validation_metrics = SplitMetrics::of(&validation_scores, &validation_pos);
    let (threshold, confusion) = choose_threshold(config, &validation_scores, &validation_pos)?;
    let metadata = bundle_metadata(config, &prepared, &state, &validation_metrics, &confusion);
    let bundle = write_bundle(
        &config.out,
        &BundleParts {
            varmap: &prepared.varmap,
            bert: &prepared.bert,
            head: &prepared.head,
            tokenizer: &prepared.tokenizer,
            norm: &prepared.norm,
            threshold: &threshold,
            metadata: &metadata,
        },
    )?;
    Ok(FitOutcome {
        bundle,
        history: state.history,
        threshold,
        validation: validation_metrics,
        validation_scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((schedule(0, 100, 0.1) - 0.1).abs() < 1e-12);
        assert!((schedule(9, 100, 0.1) - 1.0).abs() < 1e-12);
        assert!((schedule(10, 100, 0.1) - 1.0).abs() < 1e-12);
        assert!(schedule(99, 100, 0.1) < 0.02);
    }

    #[test]
    fn layer_selection() {
        assert!(trainable("head.hidden.weight", TrainLayers::HeadOnly, 6));
        assert!(!trainable(
            "encoder.layer.5.output.dense.weight",
            TrainLayers::HeadOnly,
            6
        ));
        assert!(trainable(
            "encoder.layer.5.output.dense.weight",
            TrainLayers::Top(2),
            6
        ));
        assert!(trainable(
            "encoder.layer.4.output.dense.weight",
            TrainLayers::Top(2),
            6
        ));
        assert!(!trainable(
            "encoder.layer.3.output.dense.weight",
            TrainLayers::Top(2),
            6
        ));
        assert!(!trainable(
            "embeddings.word_embeddings.weight",
            TrainLayers::Top(6),
            6
        ));
        assert!(trainable(
            "embeddings.word_embeddings.weight",
            TrainLayers::All,
            6
        ));
        assert_eq!("3".parse::<TrainLayers>(), Ok(TrainLayers::Top(3)));
        assert!("x".parse::<TrainLayers>().is_err());
    }

    #[test]
    fn weighted_bce_matches_the_formula() {
        let d = Device::Cpu;
        let z = Tensor::new(&[2.0f32, -1.0], &d).unwrap();
        let y = Tensor::new(&[1.0f32, 0.0], &d).unwrap();
        let w = Tensor::new(&[3.0f32, 1.0], &d).unwrap();
        let got = weighted_bce(&z, &y, &w)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let l1 = (1.0 + (-2.0f32).exp()).ln();
        let l2 = (1.0 + (-1.0f32).exp()).ln();
        assert!((got - (3.0 * l1 + l2) / 4.0).abs() < 1e-6);
    }
}
