//! Batched matrix products of attention (scores = Q K^T, context = P V)
//! with the batches spread over the threads.
//!
//! candle's CPU matmul runs the matrices of a batch one after the other and
//! splits each (for attention: 128 x 32 by 32 x 128 at 128 tokens, hundreds
//! per layer) across the threads, which for products this small costs more
//! in synchronisation than it gains. Here each thread takes whole matrices,
//! each multiplied by the `gemm` crate on one thread.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::{gemm, Parallelism};

use super::{is_cpu_f32, par_filled};

/// `a @ b` for `a`: (d0, d1, m, k) and `b`: (d0, d1, k, n), both with any
/// row and column strides (e.g. a transposed view) and batch dimensions that
/// step uniformly (others are copied first); differentiable in both when
/// `training`. Other devices and dtypes use candle's matmul.
pub fn batched_matmul(a: &Tensor, b: &Tensor, training: bool) -> Result<Tensor> {
    if !(is_cpu_f32(a) && is_cpu_f32(b)) {
        return a.matmul(b);
    }
    let uniform = |t: &Tensor| -> Result<Tensor> {
        match BatchView::of(t.layout()) {
            Some(_) => Ok(t.clone()),
            None => t.contiguous(),
        }
    };
    let (a, b) = (uniform(a)?, uniform(b)?);
    let (a_batch, m, k) = split_dims(a.dims())?;
    let (b_batch, k2, _) = split_dims(b.dims())?;
    if a_batch != b_batch || k != k2 || m == 0 {
        return a.matmul(&b);
    }
    if training {
        a.apply_op2(&b, BatchedMatMul)
    } else {
        a.apply_op2_no_bwd(&b, &BatchedMatMul)
    }
}

/// (leading dims, rows, columns) of a shape of rank >= 2.
fn split_dims(dims: &[usize]) -> Result<(&[usize], usize, usize)> {
    match dims {
        [batch @ .., rows, cols] => Ok((batch, *rows, *cols)),
        _ => candle_core::bail!("batched matmul needs matrices, got shape {dims:?}"),
    }
}

/// Where the matrices of a batched operand lie in its storage.
#[derive(Debug, Clone, Copy)]
struct BatchView {
    start: usize,
    /// Number of matrices.
    count: usize,
    /// Elements between consecutive matrices.
    batch_stride: usize,
    row_stride: usize,
    col_stride: usize,
    rows: usize,
    cols: usize,
}

impl BatchView {
    /// The view of `layout`, if its batch dimensions collapse into one
    /// uniform stride.
    fn of(layout: &Layout) -> Option<Self> {
        let dims = layout.dims();
        let strides = layout.stride();
        let rank = dims.len();
        if rank < 2 {
            return None;
        }
        let (rows, cols) = (dims[rank - 2], dims[rank - 1]);
        let mut count = 1;
        let mut batch_stride = rows * cols;
        // Walk the batch dimensions from the innermost out.
        for d in (0..rank - 2).rev() {
            if dims[d] == 1 {
                continue;
            }
            if count == 1 {
                batch_stride = strides[d];
            } else if strides[d] != batch_stride * count {
                return None;
            }
            count *= dims[d];
        }
        Some(BatchView {
            start: layout.start_offset(),
            count,
            batch_stride,
            row_stride: strides[rank - 2],
            col_stride: strides[rank - 1],
            rows,
            cols,
        })
    }
}

/// The product as a candle op.
struct BatchedMatMul;

impl CustomOp2 for BatchedMatMul {
    fn name(&self) -> &'static str {
        "dg-batched-matmul"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        a_layout: &Layout,
        b: &CpuStorage,
        b_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(a), CpuStorage::F32(b)) = (a, b) else {
            candle_core::bail!("{}: expected f32 data", self.name());
        };
        let (Some(av), Some(bv)) = (BatchView::of(a_layout), BatchView::of(b_layout)) else {
            candle_core::bail!("{}: batch dimensions must step uniformly", self.name());
        };
        if av.count != bv.count || av.cols != bv.rows {
            candle_core::bail!("{}: shapes do not match", self.name());
        }
        let (m, k, n) = (av.rows, av.cols, bv.cols);
        let mut dims = a_layout.dims().to_vec();
        let last = dims.len() - 1;
        dims[last] = n;
        let len = av.count * m * n;
        if len == 0 || k == 0 {
            return Ok((CpuStorage::F32(vec![0f32; len]), Shape::from(dims)));
        }
        let extent = |v: &BatchView| {
            v.start
                + (v.count - 1) * v.batch_stride
                + (v.rows - 1) * v.row_stride
                + (v.cols - 1) * v.col_stride
        };
        if extent(&av) >= a.len() || extent(&bv) >= b.len() {
            candle_core::bail!("{}: layout outside the storage", self.name());
        }
        let product = |i: usize, c: &mut [MaybeUninit<f32>]| {
            let a_mat = &a[av.start + i * av.batch_stride..];
            let b_mat = &b[bv.start + i * bv.batch_stride..];
            // SAFETY: every element read lies within the storages (the
            // last one was bounds-checked above), `c` holds exactly one
            // m x n row-major matrix, and the strides fit the shapes.
            unsafe {
                gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr().cast::<f32>(),
                    1,
                    n as isize,
                    false,
                    a_mat.as_ptr(),
                    av.col_stride as isize,
                    av.row_stride as isize,
                    b_mat.as_ptr(),
                    bv.col_stride as isize,
                    bv.row_stride as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            }
        };
        // SAFETY: each part is one m x n matrix, and gemm with k > 0 and
        // `read_dst` false writes each of its values.
        let dst = unsafe { par_filled(len, m * n, product) };
        Ok((CpuStorage::F32(dst), Shape::from(dims)))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_res = grad_res.contiguous()?;
        let grad_a = batched_matmul(&grad_res, &b.t()?, false)?;
        let grad_b = batched_matmul(&a.t()?, &grad_res, false)?;
        Ok((Some(grad_a), Some(grad_b)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::max_abs_diff;
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_on_transposed_views_forward_and_backward() {
        let dev = Device::Cpu;
        let q = Var::from_tensor(&Tensor::randn(0f32, 1f32, (2, 3, 17, 8), &dev).unwrap()).unwrap();
        let k = Var::from_tensor(&Tensor::randn(0f32, 1f32, (2, 3, 13, 8), &dev).unwrap()).unwrap();
        let kt = k.t().unwrap();
        assert!(!kt.is_contiguous());
        let ours = batched_matmul(&q, &kt, true).unwrap();
        let theirs = q.matmul(&kt).unwrap();
        assert_eq!(ours.dims(), &[2, 3, 17, 13]);
        assert!(max_abs_diff(&ours, &theirs) < 1e-5);

        let w = Tensor::randn(0f32, 1f32, (2, 3, 17, 13), &dev).unwrap();
        let g_ours = (&ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = (&theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for var in [&q, &k] {
            let (a, b) = (g_ours.get(var).unwrap(), g_theirs.get(var).unwrap());
            assert_eq!(a.dims(), b.dims());
            assert!(max_abs_diff(a, b) < 1e-4, "{}", max_abs_diff(a, b));
        }
    }

    #[test]
    fn non_uniform_batches_are_copied_and_inference_records_nothing() {
        let dev = Device::Cpu;
        // Transposing the two batch dimensions breaks the uniform stride.
        let a = Tensor::randn(0f32, 1f32, (3, 2, 4, 5), &dev)
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        assert!(BatchView::of(a.layout()).is_none());
        let b = Tensor::randn(0f32, 1f32, (2, 3, 5, 6), &dev).unwrap();
        let out = batched_matmul(&a, &b, false).unwrap();
        assert!(max_abs_diff(&out, &a.contiguous().unwrap().matmul(&b).unwrap()) < 1e-5);

        let v = Var::from_tensor(&b).unwrap();
        let c = Tensor::randn(0f32, 1f32, (2, 3, 4, 5), &dev).unwrap();
        assert!(!batched_matmul(&c, &v, false).unwrap().track_op());
        assert!(batched_matmul(&c, &v, true).unwrap().track_op());
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros_and_one_row_or_column_works() {
        let dev = Device::Cpu;
        for (m, k, n) in [(3, 0, 4), (1, 5, 1), (1, 7, 9), (6, 3, 1)] {
            let a = Tensor::randn(0f32, 1f32, (2, 1, m, k), &dev).unwrap();
            let b = Tensor::randn(0f32, 1f32, (2, 1, k, n), &dev).unwrap();
            let ours = batched_matmul(&a, &b, false).unwrap();
            assert_eq!(ours.dims(), &[2, 1, m, n]);
            let want = if k == 0 {
                Tensor::zeros((2, 1, m, n), candle_core::DType::F32, &dev).unwrap()
            } else {
                a.matmul(&b).unwrap()
            };
            assert!(max_abs_diff(&ours, &want) < 1e-5, "{m}x{k}x{n}");
        }
    }
}
