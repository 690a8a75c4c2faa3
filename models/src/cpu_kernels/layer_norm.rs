//! LayerNorm over the last dimension as one fused CPU op with a fused
//! backward pass (candle's differentiable `layer_norm_slow` is nine tensor
//! ops forward and more backward; its fused `layer_norm` has no backward).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, last_dim, sum, with_widest_simd};

/// Rows per parallel work item.
const ROWS: usize = 32;

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last dimension.
pub(super) struct LayerNorm {
    pub(super) eps: f32,
}

/// Mean and reciprocal standard deviation of one row (two-pass variance).
#[inline(always)]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum(x) / n;
    let mut lanes = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += (v - mean) * (v - mean);
        }
    }
    let var = (lanes.iter().sum::<f32>() + tail) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `row = norm(row + residual)` in place: the residual add and the
/// LayerNorm after a projection, as [`LayerNorm`] computes them apart
/// (the same order of operations), for a fused epilogue.
pub(super) fn add_and_normalize(
    row: &mut [f32],
    residual: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    for (x, &r) in row.iter_mut().zip(residual) {
        *x += r;
    }
    let (mean, rstd) = moments(row, eps);
    for ((x, &w), &b) in row.iter_mut().zip(weight).zip(bias) {
        *x = (*x - mean) * rstd * w + b;
    }
}

/// `sum(a * (x - mean))` with eight independent accumulators.
#[inline(always)]
fn centered_dot(a: &[f32], x: &[f32], mean: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, x_chunks) = (a.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(x_chunks.remainder())
        .map(|(&a, &x)| a * (x - mean))
        .sum();
    for (a, x) in a_chunks.zip(x_chunks) {
        for ((lane, &a), &x) in lanes.iter_mut().zip(a).zip(x) {
            *lane += a * (x - mean);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Checks that a per-column parameter has one value per column.
fn check_param(op: &str, n: usize, param: &[f32]) -> Result<()> {
    if param.len() != n {
        candle_core::bail!("{op}: weight and bias must have the last dimension's size {n}");
    }
    Ok(())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "dg-layer-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(self.name(), xs, xs_layout)?;
        let weight = contiguous_f32(self.name(), weight, weight_layout)?;
        let bias = contiguous_f32(self.name(), bias, bias_layout)?;
        let n = last_dim(self.name(), xs_layout)?;
        check_param(self.name(), n, weight)?;
        check_param(self.name(), n, bias)?;
        let eps = self.eps;
        let mut dst = vec![0f32; xs.len()];
        dst.par_chunks_mut(n * ROWS)
            .zip(xs.par_chunks(n * ROWS))
            .for_each(|(dst, xs)| {
                with_widest_simd(|| {
                    for (dst, x) in dst.chunks_mut(n).zip(xs.chunks(n)) {
                        let (mean, rstd) = moments(x, eps);
                        for (((d, &x), &w), &b) in dst.iter_mut().zip(x).zip(weight).zip(bias) {
                            *d = (x - mean) * rstd * w + b;
                        }
                    }
                })
            });
        Ok((CpuStorage::F32(dst), xs_layout.shape().clone()))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = xs.dims();
        let n = *dims.last().unwrap_or(&0);
        let rows = xs.elem_count() / n.max(1);
        // One tensor holds the input gradient's rows, then d weight, then
        // d bias.
        let packed = xs.contiguous()?.apply_op3_no_bwd(
            &weight.contiguous()?,
            &grad_res.contiguous()?,
            &LayerNormBackward { eps: self.eps },
        )?;
        let grad_xs = packed.narrow(0, 0, rows)?.reshape(dims)?;
        let grad_weight = packed.get(rows)?;
        let grad_bias = packed.get(rows + 1)?;
        Ok((Some(grad_xs), Some(grad_weight), Some(grad_bias)))
    }
}

/// Gradients of [`LayerNorm`] from (x, weight, output gradient), packed as
/// (rows + 2, n): d x, then d weight, then d bias.
struct LayerNormBackward {
    eps: f32,
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "dg-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(self.name(), xs, xs_layout)?;
        let weight = contiguous_f32(self.name(), weight, weight_layout)?;
        let grad = contiguous_f32(self.name(), grad, grad_layout)?;
        let n = last_dim(self.name(), xs_layout)?;
        check_param(self.name(), n, weight)?;
        if grad.len() != xs.len() {
            candle_core::bail!("{}: input and gradient sizes differ", self.name());
        }
        let rows = xs.len() / n;
        let eps = self.eps;
        let mut dst = vec![0f32; (rows + 2) * n];
        let (grad_xs, params) = dst.split_at_mut(rows * n);
        // Each work item returns its partial d weight and d bias.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = grad_xs
            .par_chunks_mut(n * ROWS)
            .zip(xs.par_chunks(n * ROWS).zip(grad.par_chunks(n * ROWS)))
            .map(|(dx, (xs, gs))| {
                let mut d_weight = vec![0f32; n];
                let mut d_bias = vec![0f32; n];
                with_widest_simd(|| {
                    for ((dx, x), g) in dx.chunks_mut(n).zip(xs.chunks(n)).zip(gs.chunks(n)) {
                        let (mean, rstd) = moments(x, eps);
                        // dx holds d xhat = g * weight until the last pass.
                        for ((d, &g), &w) in dx.iter_mut().zip(g).zip(weight) {
                            *d = g * w;
                        }
                        let inv_n = 1.0 / n as f32;
                        let mean_dxhat = sum(dx) * inv_n;
                        let mean_dxhat_xhat = centered_dot(dx, x, mean) * rstd * inv_n;
                        let columns = dx
                            .iter_mut()
                            .zip(x)
                            .zip(g)
                            .zip(d_weight.iter_mut().zip(d_bias.iter_mut()));
                        for (((d, &x), &g), (dw, db)) in columns {
                            let xhat = (x - mean) * rstd;
                            *dw += g * xhat;
                            *db += g;
                            *d = rstd * (*d - mean_dxhat - xhat * mean_dxhat_xhat);
                        }
                    }
                });
                (d_weight, d_bias)
            })
            .collect();
        let (d_weight, d_bias) = params.split_at_mut(n);
        for (w, b) in &partials {
            for (acc, v) in d_weight.iter_mut().zip(w) {
                *acc += v;
            }
            for (acc, v) in d_bias.iter_mut().zip(b) {
                *acc += v;
            }
        }
        Ok((CpuStorage::F32(dst), Shape::from((rows + 2, n))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::super::layer_norm;
    use super::super::test_support::max_abs_diff;

    /// Deterministic values with a row-dependent offset and spread.
    fn values(rows: usize, n: usize, scale: f32) -> Vec<f32> {
        (0..rows * n)
            .map(|i| {
                let t = (i as f32 * 0.618_034).fract() - 0.5;
                scale * t * (1.0 + (i / n) as f32 % 5.0) + (i / n) as f32 % 3.0
            })
            .collect()
    }

    #[test]
    fn matches_candle_forward_and_backward() {
        // 384 columns as in MiniLM, 13 for a tail shorter than a lane group;
        // more rows than one parallel work item.
        for (rows, n) in [(3 * 70, 384), (3 * 17, 13)] {
            let dev = &Device::Cpu;
            let xs = Var::from_vec(values(rows, n, 4.0), (3, rows / 3, n), dev).unwrap();
            let weight = Var::from_vec(values(1, n, 1.0), n, dev).unwrap();
            let bias = Var::from_vec(values(1, n, 0.5), n, dev).unwrap();
            let upstream = Tensor::from_vec(values(rows, n, 2.0), (3, rows / 3, n), dev).unwrap();
            let (x, w, b) = (xs.as_tensor(), weight.as_tensor(), bias.as_tensor());

            let ours = layer_norm(x, w, b, 1e-12, true).unwrap();
            let candle = candle_nn::ops::layer_norm_slow(x, w, b, 1e-12).unwrap();
            assert!(max_abs_diff(&ours, &candle) < 1e-5);

            let ours = (ours * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let candle = (candle * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (var, what, tolerance) in [
                (&xs, "x", 1e-4),
                (&weight, "weight", 1e-3),
                (&bias, "bias", 1e-3),
            ] {
                let diff = max_abs_diff(ours.get(var).unwrap(), candle.get(var).unwrap());
                assert!(diff < tolerance, "d {what} differs by {diff}");
            }
        }
    }

    #[test]
    fn parameters_of_the_wrong_size_are_an_error() {
        let dev = &Device::Cpu;
        let xs = Tensor::zeros((2, 8), candle_core::DType::F32, dev).unwrap();
        let short = Tensor::ones(7, candle_core::DType::F32, dev).unwrap();
        let err = layer_norm(&xs, &short, &short, 1e-5, false).unwrap_err();
        assert!(err.to_string().contains("last dimension's size 8"), "{err}");
    }
}
