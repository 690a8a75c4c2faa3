//! A linear layer whose bias add is [`cpu_kernels::add_bias`] (a fast bias
//! gradient on the CPU), loaded like `candle_nn::linear`, with an optional
//! reduced-precision copy of its weight for inference
//! ([`cpu_kernels::PackedLinear`]).

use std::sync::Arc;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::cpu_kernels::{self, PackedLinear};
use crate::precision::Precision;

/// `xs @ weight^T + bias`, weight `(out, in)` as in Hugging Face checkpoints.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
    /// The weight packed for a reduced inference precision (none: f32).
    packed: Option<Arc<PackedLinear>>,
}

impl Linear {
    /// Loads `weight` and `bias` under `vb`, initialised as
    /// `candle_nn::linear` does when they are new variables.
    pub fn load(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let layer = candle_nn::linear(in_dim, out_dim, vb)?;
        let bias = layer
            .bias()
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("linear layer without a bias".into()))?;
        Ok(Linear {
            weight: layer.weight().clone(),
            bias,
            packed: None,
        })
    }

    /// The layers stacked into one: their outputs side by side (an
    /// inference copy: it does not follow later training of the parts).
    pub fn concat(layers: &[&Linear]) -> candle_core::Result<Self> {
        let weights: Vec<&Tensor> = layers.iter().map(|l| &l.weight).collect();
        let biases: Vec<&Tensor> = layers.iter().map(|l| &l.bias).collect();
        Ok(Linear {
            weight: Tensor::cat(&weights, 0)?,
            bias: Tensor::cat(&biases, 0)?,
            packed: None,
        })
    }

    /// Sets the precision of inference (not training) passes on the CPU:
    /// packs the current weight for bf16 or int8, or drops the packed copy
    /// for f32. Fails when this CPU lacks the precision's instructions.
    pub fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        self.packed = PackedLinear::pack(&self.weight, &self.bias, precision)?.map(Arc::new);
        Ok(())
    }

    /// The packed inference copy of the weight, if a reduced precision is
    /// set.
    pub fn packed(&self) -> Option<Arc<PackedLinear>> {
        self.packed.clone()
    }

    /// `gelu(self.forward(xs))` with the exact GELU
    /// ([`cpu_kernels::gelu_erf`]); fused into the packed layer's work
    /// items at reduced-precision inference.
    pub fn forward_gelu(&self, xs: &Tensor, training: bool) -> candle_core::Result<Tensor> {
        if let Some(packed) = self.packed.as_deref().filter(|_| !training) {
            if cpu_kernels::is_cpu_f32(xs) {
                return packed.forward_gelu(xs);
            }
        }
        cpu_kernels::gelu_erf(&self.forward(xs, training)?, training)
    }

    /// Applies the layer to `(..., in)`; differentiable when `training`.
    /// Leading dimensions fold into the rows of one matrix product (a
    /// broadcast weight would make the weight gradient a batched product
    /// summed over the batch).
    pub fn forward(&self, xs: &Tensor, training: bool) -> candle_core::Result<Tensor> {
        if let Some(packed) = self.packed.as_deref().filter(|_| !training) {
            if cpu_kernels::is_cpu_f32(xs) {
                return packed.forward(xs);
            }
        }
        let (&in_dim, leading) = xs
            .dims()
            .split_last()
            .ok_or_else(|| candle_core::Error::Msg("linear layer on a scalar".into()))?;
        let rows = leading.iter().product::<usize>();
        let out = xs
            .contiguous()?
            .reshape((rows, in_dim))?
            .matmul(&self.weight.t()?)?;
        let out = cpu_kernels::add_bias(&out, &self.bias, training)?;
        let mut dims = leading.to_vec();
        dims.push(self.bias.elem_count());
        out.reshape(dims)
    }
}
