//! Adding a per-column bias, with a backward pass whose bias gradient is a
//! parallel, vectorised column sum.
//!
//! candle's `broadcast_add` differentiates into a `sum_keepdim` over the
//! broadcast dimensions, which its CPU backend runs on one thread along a
//! strided path: the bias gradients of a linear layer over a training batch
//! were about 7% of a CPU training step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, is_cpu_f32, par_filled, with_widest_simd};

/// Rows per parallel work item.
const ROWS: usize = 64;

/// `xs + bias` with `bias` of shape `(n,)` added to every row of `xs`
/// (`(..., n)`), differentiable in both. Records itself for backpropagation
/// only when `training`.
pub fn add_bias(xs: &Tensor, bias: &Tensor, training: bool) -> Result<Tensor> {
    if !is_cpu_f32(xs) || bias.rank() != 1 || xs.dims().last() != Some(&bias.elem_count()) {
        return xs.broadcast_add(bias);
    }
    let (xs, bias) = (xs.contiguous()?, bias.contiguous()?);
    if training {
        xs.apply_op2(&bias, AddBias)
    } else {
        xs.apply_op2_no_bwd(&bias, &AddBias)
    }
}

/// The bias add as a candle op.
struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "dg-add-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(self.name(), xs, xs_layout)?;
        let bias = contiguous_f32(self.name(), bias, bias_layout)?;
        let n = bias.len();
        if n == 0 || xs.len() % n != 0 {
            candle_core::bail!("{}: rows are not a multiple of the bias", self.name());
        }
        // SAFETY: parts hold whole rows (n divides the length), and each
        // row writes its n values.
        let dst = unsafe {
            par_filled(xs.len(), n * ROWS, |part, dst| {
                let xs = &xs[part * n * ROWS..][..dst.len()];
                with_widest_simd(|| {
                    for (dst, xs) in dst.chunks_exact_mut(n).zip(xs.chunks_exact(n)) {
                        for ((d, &x), &b) in dst.iter_mut().zip(xs).zip(bias) {
                            d.write(x + b);
                        }
                    }
                })
            })
        };
        Ok((CpuStorage::F32(dst), xs_layout.shape().clone()))
    }

    fn bwd(
        &self,
        _xs: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_bias = grad_res.contiguous()?.apply_op1_no_bwd(&ColumnSums {
            columns: bias.elem_count(),
        })?;
        Ok((Some(grad_res.clone()), Some(grad_bias)))
    }
}

/// Sums of the columns of a row-major `(rows, columns)` matrix, in fixed
/// blocks of rows added in order (the same result whatever the threads).
struct ColumnSums {
    columns: usize,
}

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "dg-column-sums"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(self.name(), storage, layout)?;
        let n = self.columns;
        if n == 0 || xs.len() % n != 0 {
            candle_core::bail!("{}: rows are not a multiple of the columns", self.name());
        }
        let partial: Vec<Vec<f32>> = xs
            .par_chunks(n * ROWS)
            .map(|block| {
                let mut sums = vec![0f32; n];
                with_widest_simd(|| {
                    for row in block.chunks_exact(n) {
                        for (s, &x) in sums.iter_mut().zip(row) {
                            *s += x;
                        }
                    }
                });
                sums
            })
            .collect();
        let mut sums = vec![0f32; n];
        for block in &partial {
            for (s, &x) in sums.iter_mut().zip(block) {
                *s += x;
            }
        }
        Ok((CpuStorage::F32(sums), Shape::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::max_abs_diff;
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_forward_and_backward() {
        let dev = Device::Cpu;
        // 3 * 70 rows: more than one block, the last one partial.
        let xs = Var::from_tensor(&Tensor::randn(0f32, 1f32, (3, 70, 33), &dev).unwrap()).unwrap();
        let bias = Var::from_tensor(&Tensor::randn(0f32, 1f32, 33, &dev).unwrap()).unwrap();
        let weights = Tensor::randn(0f32, 1f32, (3, 70, 33), &dev).unwrap();

        let ours = add_bias(&xs, &bias, true).unwrap();
        let theirs = xs.broadcast_add(&bias).unwrap();
        assert!(max_abs_diff(&ours, &theirs) < 1e-6);

        let grads_ours = (&ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let grads_theirs = (&theirs * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for var in [&xs, &bias] {
            let (g1, g2) = (grads_ours.get(var).unwrap(), grads_theirs.get(var).unwrap());
            assert_eq!(g1.dims(), g2.dims());
            assert!(max_abs_diff(g1, g2) < 1e-4, "{}", max_abs_diff(g1, g2));
        }
    }

    #[test]
    fn inference_does_not_record_the_graph() {
        let dev = Device::Cpu;
        let xs = Var::from_tensor(&Tensor::ones((4, 5), candle_core::DType::F32, &dev).unwrap())
            .unwrap();
        let bias = Tensor::arange(0f32, 5f32, &dev).unwrap();
        let out = add_bias(&xs, &bias, false).unwrap();
        assert!(!out.track_op());
        assert_eq!(out.to_vec2::<f32>().unwrap()[3], vec![1., 2., 3., 4., 5.]);
        assert!(add_bias(&xs, &bias, true).unwrap().track_op());
    }
}
