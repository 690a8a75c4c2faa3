//! A transformer layer's tails as single ops at reduced-precision
//! inference: a packed projection, its residual add and the LayerNorm
//! after it ([`PackedAddNorm`]), and the whole feed-forward block
//! ([`PackedFeedForward`]).
//!
//! A packed layer's work item computes whole output rows, so the residual
//! add and the LayerNorm can run on them while they are in cache instead of
//! in passes of their own over the batch. The feed-forward block goes
//! further: each work item keeps its rows of the 1536-wide GELU
//! activations in a buffer of its own and feeds them straight to the
//! output projection, so they are never written to (or read back from)
//! main memory. At batch 32 x 128 tokens that intermediate is 25 MB per
//! layer.

use std::mem::MaybeUninit;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{filled_rows, gelu_in_place, output_shape, PackedLinear};
use crate::cpu_kernels::layer_norm::add_and_normalize;

/// Most rows per work item of the fused feed-forward block: its
/// intermediate buffer (rows x 1536 f32, 384 kB at 64 rows) then stays in
/// a core's L2 cache with the codes of the output projection's input.
const FEED_FORWARD_TASK_ROWS: usize = 64;

/// A LayerNorm's parameters, read out of its tensors for a fused epilogue.
#[derive(Debug, Clone)]
pub struct RowNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl RowNorm {
    /// The LayerNorm with `weight` and `bias` (each of the row width).
    pub fn new(weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Self> {
        let weight = weight.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        let bias = bias.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        if weight.len() != bias.len() {
            candle_core::bail!(
                "LayerNorm weight of {} and bias of {}",
                weight.len(),
                bias.len()
            );
        }
        Ok(RowNorm { weight, bias, eps })
    }

    /// `rows = norm(rows + residual)`, row by row (`width` wide).
    fn apply(&self, rows: &mut [f32], residual: &[f32]) {
        let width = self.weight.len();
        crate::cpu_kernels::with_widest_simd(|| {
            for (row, res) in rows.chunks_mut(width).zip(residual.chunks(width)) {
                add_and_normalize(row, res, &self.weight, &self.bias, self.eps);
            }
        });
    }
}

/// `norm(xs @ weight^T + bias + residual)` for a packed layer: the
/// attention's output projection with its residual and LayerNorm.
#[derive(Debug, Clone)]
pub struct PackedAddNorm {
    layer: Arc<PackedLinear>,
    norm: RowNorm,
}

impl PackedAddNorm {
    /// Fuses `layer` with `norm`; fails when their widths differ.
    pub fn new(layer: Arc<PackedLinear>, norm: RowNorm) -> Result<Self> {
        if norm.weight.len() != layer.out_dim {
            candle_core::bail!(
                "LayerNorm of {} after a layer of {} outputs",
                norm.weight.len(),
                layer.out_dim
            );
        }
        Ok(PackedAddNorm { layer, norm })
    }

    /// The fused op on `xs` (..., in) and `residual` (..., out), f32 on
    /// the CPU.
    pub fn forward(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        xs.contiguous()?
            .apply_op2_no_bwd(&residual.contiguous()?, self)
    }

    /// Rows of input width, as wide as the LayerNorm.
    pub(super) fn dims(&self) -> (usize, usize) {
        (self.layer.in_dim, self.layer.out_dim)
    }

    /// One work item on this thread: `out = norm(xs @ weight^T + bias +
    /// residual)` for whole rows.
    pub(super) fn rows(&self, xs: &[f32], residual: &[f32], out: &mut [MaybeUninit<f32>]) {
        let out = self.layer.multiply_rows(xs, out);
        self.norm.apply(out, residual);
    }
}

impl CustomOp2 for PackedAddNorm {
    fn name(&self) -> &'static str {
        "dg-linear-add-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let layer = &self.layer;
        let xs = crate::cpu_kernels::contiguous_f32(self.name(), xs, xs_layout)?;
        let residual = crate::cpu_kernels::contiguous_f32(self.name(), residual, residual_layout)?;
        let shape = output_shape(self.name(), xs_layout, layer)?;
        if residual_layout.shape() != &shape {
            candle_core::bail!(
                "{}: residual {:?}, output {:?}",
                self.name(),
                residual_layout.dims(),
                shape.dims()
            );
        }
        let task = layer.task_rows(xs.len() / layer.in_dim);
        // SAFETY: each work item's `rows` writes all its output rows.
        let out = unsafe {
            filled_rows(residual.len(), |out| {
                out.par_chunks_mut(task * layer.out_dim)
                    .zip(xs.par_chunks(task * layer.in_dim))
                    .zip(residual.par_chunks(task * layer.out_dim))
                    .for_each(|((out, xs), residual)| self.rows(xs, residual, out));
            })
        };
        Ok((CpuStorage::F32(out), shape))
    }
}

/// `norm(gelu(xs @ up^T + up_bias) @ down^T + down_bias + xs)`: BERT's
/// feed-forward block with packed weights, its intermediate activations
/// kept per work item.
#[derive(Debug, Clone)]
pub struct PackedFeedForward {
    up: Arc<PackedLinear>,
    down: Arc<PackedLinear>,
    norm: RowNorm,
}

impl PackedFeedForward {
    /// Fuses `up` (hidden -> intermediate, GELU after it), `down`
    /// (intermediate -> hidden) and `norm`; fails when the widths do not
    /// chain.
    pub fn new(up: Arc<PackedLinear>, down: Arc<PackedLinear>, norm: RowNorm) -> Result<Self> {
        let hidden = norm.weight.len();
        if up.out_dim != down.in_dim || up.in_dim != hidden || down.out_dim != hidden {
            candle_core::bail!(
                "feed-forward of {}->{} and {}->{} with a LayerNorm of {hidden}",
                up.in_dim,
                up.out_dim,
                down.in_dim,
                down.out_dim
            );
        }
        Ok(PackedFeedForward { up, down, norm })
    }

    /// The block on `xs` (..., hidden), f32 on the CPU.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.contiguous()?.apply_op1_no_bwd(self)
    }

    /// One work item: `out = norm(gelu(xs up) down + xs)` through the
    /// item's `intermediate` buffer.
    fn rows(&self, xs: &[f32], out: &mut [MaybeUninit<f32>], intermediate: &mut Vec<f32>) {
        let rows = xs.len() / self.up.in_dim;
        intermediate.clear();
        intermediate.reserve(rows * self.up.out_dim);
        let mid = self.up.multiply_rows(
            xs,
            &mut intermediate.spare_capacity_mut()[..rows * self.up.out_dim],
        );
        gelu_in_place(mid);
        let out = self.down.multiply_rows(mid, out);
        self.norm.apply(out, xs);
    }
}

impl CustomOp1 for PackedFeedForward {
    fn name(&self) -> &'static str {
        "dg-feed-forward"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = crate::cpu_kernels::contiguous_f32(self.name(), storage, layout)?;
        // The input's width is the up projection's.
        output_shape(self.name(), layout, &self.up)?;
        let hidden = self.up.in_dim;
        let task = self
            .up
            .task_rows(xs.len() / hidden)
            .min(FEED_FORWARD_TASK_ROWS);
        // SAFETY: each work item's `rows` writes all its output rows.
        let out = unsafe {
            filled_rows(xs.len(), |out| {
                out.par_chunks_mut(task * hidden)
                    .zip(xs.par_chunks(task * hidden))
                    .for_each_init(Vec::new, |intermediate, (out, xs)| {
                        self.rows(xs, out, intermediate)
                    });
            })
        };
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        any_kernel, random_layer, random_norm, random_tensor, runnable_kernels,
    };
    use super::*;
    use crate::cpu_kernels::test_support::max_abs_diff;

    /// Rows with every tail: one row, partial row groups and tiles, work
    /// items cut short, more rows than one fused work item.
    const ROWS: [usize; 5] = [1, 7, 33, 70, 200];

    #[test]
    fn fused_output_projection_equals_the_ops_apart() {
        for ((precision, tiles), name) in runnable_kernels("fused add and norm") {
            let (hidden, n) = (72, 40);
            let packed = random_layer(hidden, n, 1, (precision, tiles));
            let (row_norm, weight, bias) = random_norm(n);
            let fused = PackedAddNorm::new(packed.clone(), row_norm).unwrap();
            for rows in ROWS {
                let xs = random_tensor(&[1, rows, hidden], rows as u64);
                let residual = random_tensor(&[1, rows, n], 3);
                let got = fused.forward(&xs, &residual).unwrap();
                let sum = (packed.forward(&xs).unwrap() + &residual).unwrap();
                let want =
                    crate::cpu_kernels::layer_norm(&sum, &weight, &bias, 1e-12, false).unwrap();
                assert_eq!(got.dims(), &[1, rows, n]);
                let diff = max_abs_diff(&got, &want);
                assert!(diff <= 1e-5, "{name}, {rows} rows: {diff}");
            }
        }
    }

    #[test]
    fn fused_feed_forward_equals_the_ops_apart() {
        for ((precision, tiles), name) in runnable_kernels("fused feed-forward") {
            let (hidden, mid) = (48, 100);
            let up = random_layer(hidden, mid, 11, (precision, tiles));
            let down = random_layer(mid, hidden, 12, (precision, tiles));
            let (row_norm, weight, bias) = random_norm(hidden);
            let fused = PackedFeedForward::new(up.clone(), down.clone(), row_norm).unwrap();
            for rows in ROWS {
                let xs = random_tensor(&[rows, hidden], rows as u64 + 5);
                let got = fused.forward(&xs).unwrap();
                let h = up.forward_gelu(&xs).unwrap();
                let sum = (down.forward(&h).unwrap() + &xs).unwrap();
                let want =
                    crate::cpu_kernels::layer_norm(&sum, &weight, &bias, 1e-12, false).unwrap();
                let diff = max_abs_diff(&got, &want);
                assert!(diff <= 1e-5, "{name}, {rows} rows: {diff}");
            }
        }
    }

    #[test]
    fn mismatched_widths_are_refused() {
        let Some((precision, tiles)) = any_kernel() else {
            eprintln!("SKIPPED: fused width checks: this CPU has no reduced-precision kernel");
            return;
        };
        let (wide_norm, _, _) = random_norm(40);
        let up = random_layer(32, 64, 1, (precision, tiles));
        let down = random_layer(64, 32, 2, (precision, tiles));
        assert!(PackedAddNorm::new(up.clone(), wide_norm.clone()).is_err());
        assert!(PackedFeedForward::new(up.clone(), up.clone(), random_norm(32).0).is_err());
        assert!(PackedFeedForward::new(up.clone(), down.clone(), wide_norm).is_err());
        let fused = PackedFeedForward::new(up, down, random_norm(32).0).unwrap();
        let err = fused.forward(&random_tensor(&[2, 5], 1)).unwrap_err();
        assert!(err.to_string().contains("input width 5"), "{err}");
    }
}
