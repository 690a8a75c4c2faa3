//! A BERT encoder that fine-tunes.
//!
//! candle-transformers' `BertModel` cannot be fine-tuned as shipped: its
//! LayerNorm takes a fused path without a backward pass, its dropout is a
//! no-op and it has no pooling. Here every layer is differentiable: GELU,
//! the attention softmax and LayerNorm come from [`crate::cpu_kernels`]
//! (fused CPU kernels with backward passes, candle's ops elsewhere), and
//! dropout (seedable, see [`cpu_kernels::seed_dropout`]) is real in [`Mode::Train`] and off in [`Mode::Eval`].

use candle_core::{Module, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use crate::config::{BertConfig, HiddenAct};
use crate::cpu_kernels::{self, Dropout};
use crate::linear::Linear;
use crate::precision::{CpuFeatures, Precision};

/// Whether a forward pass is for training (dropout, differentiable ops) or
/// for inference (no dropout, fused kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: dropout on, every op differentiable.
    Train,
    /// Inference: dropout off, fused kernels.
    Eval,
}

impl Mode {
    fn training(self) -> bool {
        self == Mode::Train
    }
}

/// LayerNorm whose training path has a backward pass.
#[derive(Debug, Clone)]
pub struct TrainableLayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl TrainableLayerNorm {
    /// Loads `weight` and `bias` of width `size`.
    pub fn load(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(TrainableLayerNorm {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps: eps as f32,
        })
    }

    /// Its parameters, read out for a fused epilogue.
    pub fn row_norm(&self) -> candle_core::Result<cpu_kernels::RowNorm> {
        cpu_kernels::RowNorm::new(&self.weight, &self.bias, self.eps)
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        cpu_kernels::layer_norm(xs, &self.weight, &self.bias, self.eps, mode.training())
    }
}

/// Word + position + token-type embeddings, normalised.
#[derive(Debug, Clone)]
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: TrainableLayerNorm,
    dropout: Dropout,
}

impl BertEmbeddings {
    /// Loads `embeddings.*`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Ok(BertEmbeddings {
            word: embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?,
            position: embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type: embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            norm: TrainableLayerNorm::load(
                vb.pp("LayerNorm"),
                cfg.hidden_size,
                cfg.layer_norm_eps,
            )?,
            dropout: Dropout::new(cfg.hidden_dropout_prob),
        })
    }

    /// `input_ids`: (batch, seq) u32, padded on the right.
    pub fn forward(&self, input_ids: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let (_, seq) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, seq as u32, input_ids.device())?;
        let token_types = input_ids.zeros_like()?;
        let xs = self
            .word
            .forward(input_ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(&token_types)?)?;
        let xs = self.norm.forward(&xs, mode)?;
        self.dropout.forward(&xs, mode.training())
    }
}

/// Multi-head self-attention with its output projection and residual norm.
#[derive(Debug, Clone)]
pub struct BertAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    /// At bf16 or int8 inference: query, key and value as one packed
    /// layer (the input is converted once, and one product covers the
    /// three).
    packed_qkv: Option<Linear>,
    /// How inference runs the attention's products.
    products: cpu_kernels::AttentionProducts,
    output: Linear,
    norm: TrainableLayerNorm,
    /// At bf16 or int8 inference: the output projection, the residual
    /// add and the LayerNorm as one op.
    fused_output: Option<cpu_kernels::PackedAddNorm>,
    /// At bf16 or int8 inference where the fused attention runs: the
    /// whole block as one op, one batch item per work item.
    block: Option<cpu_kernels::PackedAttention>,
    attention_dropout: Dropout,
    hidden_dropout: Dropout,
    heads: usize,
    head_dim: usize,
}

impl BertAttention {
    /// Sets the inference precision of the four projections: in bf16 and
    /// int8 the query, key and value weights are packed as one layer.
    pub fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        self.packed_qkv = match precision {
            Precision::F32 => None,
            _ => {
                let mut qkv = Linear::concat(&[&self.query, &self.key, &self.value])?;
                qkv.set_precision(precision)?;
                Some(qkv)
            }
        };
        self.products = match CpuFeatures::detect().attention_tiles(precision) {
            true => cpu_kernels::AttentionProducts::Bf16Tiles,
            false => cpu_kernels::AttentionProducts::F32,
        };
        self.output.set_precision(precision)?;
        self.fused_output = self
            .output
            .packed()
            .map(|layer| cpu_kernels::PackedAddNorm::new(layer, self.norm.row_norm()?))
            .transpose()?;
        let qkv = self.packed_qkv.as_ref().and_then(Linear::packed);
        self.block = match (qkv, self.fused_output.clone()) {
            (Some(qkv), Some(output)) => {
                cpu_kernels::PackedAttention::new(qkv, output, self.heads, self.products)?
            }
            _ => None,
        };
        Ok(())
    }

    /// The query, key and value projections of `xs`, each (batch, seq,
    /// hidden); at reduced-precision inference views of one product.
    fn project(&self, xs: &Tensor, training: bool) -> candle_core::Result<[Tensor; 3]> {
        if let Some(qkv) = self.packed_qkv.as_ref().filter(|_| !training) {
            let all = qkv.forward(xs, false)?;
            let h = self.heads * self.head_dim;
            return Ok([
                all.narrow(2, 0, h)?,
                all.narrow(2, h, h)?,
                all.narrow(2, 2 * h, h)?,
            ]);
        }
        Ok([
            self.query.forward(xs, training)?,
            self.key.forward(xs, training)?,
            self.value.forward(xs, training)?,
        ])
    }

    /// Loads `attention.self.*` and `attention.output.*`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let sa = vb.pp("self");
        Ok(BertAttention {
            query: Linear::load(h, h, sa.pp("query"))?,
            key: Linear::load(h, h, sa.pp("key"))?,
            value: Linear::load(h, h, sa.pp("value"))?,
            packed_qkv: None,
            products: cpu_kernels::AttentionProducts::F32,
            output: Linear::load(h, h, vb.pp("output").pp("dense"))?,
            norm: TrainableLayerNorm::load(vb.pp("output").pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            fused_output: None,
            block: None,
            attention_dropout: Dropout::new(cfg.attention_probs_dropout_prob),
            hidden_dropout: Dropout::new(cfg.hidden_dropout_prob),
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, _) = xs.dims3()?;
        xs.reshape((b, s, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// The attention context (batch, seq, hidden) of the projected `q`,
    /// `k`, `v`, head by head with batched products (differentiable).
    fn context(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask_bias: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let (b, s, h) = q.dims3()?;
        let (q, k, v) = (
            self.split_heads(q)?,
            self.split_heads(k)?,
            self.split_heads(v)?,
        );
        // Scaling the queries costs a quarter of scaling the scores.
        let q = (q * (1.0 / (self.head_dim as f64).sqrt()))?;
        let scores = cpu_kernels::batched_matmul(&q, &k.t()?, mode.training())?;
        let probs = cpu_kernels::attention_softmax(&scores, mask_bias, mode.training())?;
        let probs = self.attention_dropout.forward(&probs, mode.training())?;
        cpu_kernels::batched_matmul(&probs, &v, mode.training())?
            .transpose(1, 2)?
            .reshape((b, s, h))
    }

    /// `mask_bias`: (batch, 1, 1, seq) additive, 0 for tokens and a large
    /// negative for padding. At inference on AVX-512 the attention is one
    /// fused op ([`cpu_kernels::fused_attention`]).
    pub fn forward(
        &self,
        xs: &Tensor,
        mask_bias: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let training = mode.training();
        if let Some(block) = self.block.as_ref().filter(|_| !training) {
            if let Some(out) = block.forward(xs, mask_bias)? {
                return Ok(out);
            }
        }
        let [q, k, v] = self.project(xs, training)?;
        let fused = match training {
            false => {
                cpu_kernels::fused_attention(&q, &k, &v, mask_bias, self.heads, self.products)?
            }
            true => None,
        };
        let context = match fused {
            Some(context) => context,
            None => self.context(&q, &k, &v, mask_bias, mode)?,
        };
        if let Some(fused) = self.fused_output.as_ref().filter(|_| !training) {
            if cpu_kernels::is_cpu_f32(&context) {
                return fused.forward(&context, xs);
            }
        }
        let out = self.output.forward(&context, mode.training())?;
        let out = self.hidden_dropout.forward(&out, mode.training())?;
        self.norm.forward(&(out + xs)?, mode)
    }
}

/// Feed-forward block with its residual norm.
#[derive(Debug, Clone)]
pub struct BertFeedForward {
    intermediate: Linear,
    output: Linear,
    norm: TrainableLayerNorm,
    /// At bf16 or int8 inference with the exact GELU: the whole block as
    /// one op.
    fused: Option<cpu_kernels::PackedFeedForward>,
    dropout: Dropout,
    act: HiddenAct,
}

impl BertFeedForward {
    /// Sets the inference precision of both projections.
    pub fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        self.intermediate.set_precision(precision)?;
        self.output.set_precision(precision)?;
        self.fused =
            match (self.intermediate.packed(), self.output.packed(), self.act) {
                (Some(up), Some(down), HiddenAct::Gelu) => Some(
                    cpu_kernels::PackedFeedForward::new(up, down, self.norm.row_norm()?)?,
                ),
                _ => None,
            };
        Ok(())
    }

    /// Loads `intermediate.dense` and `output.*` of a layer.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Ok(BertFeedForward {
            intermediate: Linear::load(
                cfg.hidden_size,
                cfg.intermediate_size,
                vb.pp("intermediate").pp("dense"),
            )?,
            output: Linear::load(
                cfg.intermediate_size,
                cfg.hidden_size,
                vb.pp("output").pp("dense"),
            )?,
            norm: TrainableLayerNorm::load(
                vb.pp("output").pp("LayerNorm"),
                cfg.hidden_size,
                cfg.layer_norm_eps,
            )?,
            fused: None,
            dropout: Dropout::new(cfg.hidden_dropout_prob),
            act: cfg.hidden_act,
        })
    }

    /// Applies the block to (batch, seq, hidden).
    pub fn forward(&self, xs: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let training = mode.training();
        if let Some(fused) = self.fused.as_ref().filter(|_| !training) {
            if cpu_kernels::is_cpu_f32(xs) {
                return fused.forward(xs);
            }
        }
        let h = match self.act {
            HiddenAct::Gelu => self.intermediate.forward_gelu(xs, training)?,
            HiddenAct::GeluNew => self.intermediate.forward(xs, training)?.gelu()?,
            HiddenAct::Relu => self.intermediate.forward(xs, training)?.relu()?,
        };
        let out = self
            .dropout
            .forward(&self.output.forward(&h, mode.training())?, mode.training())?;
        self.norm.forward(&(out + xs)?, mode)
    }
}

/// One transformer layer.
#[derive(Debug, Clone)]
pub struct BertLayer {
    attention: BertAttention,
    feed_forward: BertFeedForward,
}

impl BertLayer {
    /// Sets the inference precision of the layer's linear projections.
    pub fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        self.attention.set_precision(precision)?;
        self.feed_forward.set_precision(precision)
    }

    /// Loads `encoder.layer.N.*`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        Ok(BertLayer {
            attention: BertAttention::load(vb.pp("attention"), cfg)?,
            feed_forward: BertFeedForward::load(vb, cfg)?,
        })
    }

    /// Applies the layer.
    pub fn forward(
        &self,
        xs: &Tensor,
        mask_bias: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let xs = self.attention.forward(xs, mask_bias, mode)?;
        self.feed_forward.forward(&xs, mode)
    }
}

/// The encoder: embeddings and transformer layers, with masked mean pooling
/// (the sentence embedding of sentence-transformers checkpoints).
#[derive(Debug, Clone)]
pub struct BertEncoder {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    /// The configuration it was built from.
    pub config: BertConfig,
}

impl BertEncoder {
    /// Builds the encoder from `embeddings.*` and `encoder.layer.*` of `vb`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<candle_core::Result<_>>()?;
        Ok(BertEncoder {
            embeddings: BertEmbeddings::load(vb.pp("embeddings"), cfg)?,
            layers,
            config: cfg.clone(),
        })
    }

    /// Sets the precision of the transformer layers' linear projections
    /// for inference passes on the CPU (training passes stay f32). Call it
    /// again after the weights change.
    pub fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        self.layers
            .iter_mut()
            .try_for_each(|layer| layer.set_precision(precision))
    }

    /// Hidden states (batch, seq, hidden) for right-padded `input_ids` and
    /// their `attention_mask` (batch, seq; 1 = token, 0 = padding).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let hidden = self.forward_bottom(input_ids, attention_mask, 0, mode)?;
        self.forward_top(&hidden, attention_mask, 0, mode)
    }

    /// Embeddings followed by the first `layers` transformer layers: the
    /// part a top-K fine-tune keeps frozen, so it can be computed once.
    pub fn forward_bottom(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layers: usize,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let mask_bias = self.mask_bias(attention_mask)?;
        let mut xs = self.embeddings.forward(input_ids, mode)?;
        for layer in &self.layers[..layers.min(self.layers.len())] {
            xs = layer.forward(&xs, &mask_bias, mode)?;
        }
        Ok(xs)
    }

    /// Transformer layers `start..` applied to hidden states produced by
    /// [`Self::forward_bottom`] with `layers = start`.
    pub fn forward_top(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        start: usize,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let mask_bias = self.mask_bias(attention_mask)?;
        let mut xs = hidden.clone();
        for layer in self.layers.iter().skip(start) {
            xs = layer.forward(&xs, &mask_bias, mode)?;
        }
        Ok(xs)
    }

    /// (batch, 1, 1, seq) additive mask: 0 where attended, -1e4 (a large
    /// negative, safe in f16) where padded.
    fn mask_bias(&self, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = self.embeddings.word.embeddings().dtype();
        let mask = attention_mask.to_dtype(dtype)?;
        ((mask.ones_like()? - &mask)? * -1e4)?
            .unsqueeze(1)?
            .unsqueeze(1)
    }

    /// Mean of the hidden states over non-padding tokens: (batch, hidden).
    pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let mask = attention_mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        summed.broadcast_div(&counts)
    }

    /// Pooled sentence embedding (batch, hidden).
    pub fn embed(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let hidden = self.forward(input_ids, attention_mask, mode)?;
        Self::mean_pool(&hidden, attention_mask)
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
}
