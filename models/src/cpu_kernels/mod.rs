//! Fused, vectorisable and multi-threaded f32 CPU kernels for the ops where
//! candle's CPU backend spends most of its non-matmul time in this model:
//! exact (erf) GELU, the masked attention softmax, LayerNorm, dropout, the
//! bias add of linear layers and attention's batched matrix products.
//!
//! candle evaluates GELU with a scalar `erf` from libm on one thread, and its
//! differentiable softmax and LayerNorm as chains of separate tensor ops.
//! Here each is one pass over the data (two for LayerNorm's statistics),
//! split across rayon's threads, with `erf` and `exp` computed by polynomial
//! approximations written so the compiler can vectorise them (maximum error
//! against libm: a few units in the last place, checked by the tests). All
//! have fused backward passes, so training uses them too.
//!
//! On other devices and dtypes [`gelu_erf`], [`attention_softmax`] and
//! [`layer_norm`] fall back to candle's own ops. At inference on AVX-512,
//! [`fused_attention`] runs a layer's whole attention in one op.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

mod attention;
mod batched_matmul;
mod bias;
mod dropout;
mod layer_norm;
mod packed;

pub use attention::{fused_attention, AttentionProducts};
pub use batched_matmul::batched_matmul;
pub use bias::add_bias;
pub use dropout::{seed_dropout, Dropout};
pub use packed::{PackedAddNorm, PackedAttention, PackedFeedForward, PackedLinear, RowNorm};

/// Elements per parallel work item of the element-wise kernels.
pub(crate) const CHUNK: usize = 1 << 14;

/// GELU with the exact erf, `x / 2 * (1 + erf(x / sqrt 2))`.
///
/// Like every kernel here, it records itself for backpropagation only when
/// `training`: an inference result must not keep its inputs alive (cached
/// frozen-layer outputs would otherwise hold every intermediate tensor).
pub fn gelu_erf(xs: &Tensor, training: bool) -> Result<Tensor> {
    if !is_cpu_f32(xs) {
        xs.gelu_erf()
    } else if training {
        xs.contiguous()?.apply_op1(GeluErf)
    } else {
        xs.contiguous()?.apply_op1_no_bwd(&GeluErf)
    }
}

/// Attention probabilities: softmax over the last dimension of
/// `scores + mask_bias`, differentiable in `scores`.
///
/// `scores`: (batch, heads, queries, keys); `mask_bias`: (batch, 1, 1, keys),
/// added on the fly on the CPU. `training` picks, on devices other than the
/// CPU, between candle's differentiable composite softmax and its fused
/// inference kernel.
pub fn attention_softmax(scores: &Tensor, mask_bias: &Tensor, training: bool) -> Result<Tensor> {
    let (batch, _, _, keys) = scores.dims4()?;
    if is_cpu_f32(scores) && mask_bias.dims4()? == (batch, 1, 1, keys) {
        let (scores, mask_bias) = (scores.contiguous()?, mask_bias.contiguous()?);
        if training {
            scores.apply_op2(&mask_bias, MaskedSoftmax)
        } else {
            scores.apply_op2_no_bwd(&mask_bias, &MaskedSoftmax)
        }
    } else {
        let masked = scores.broadcast_add(mask_bias)?;
        if training {
            candle_nn::ops::softmax(&masked, D::Minus1)
        } else {
            candle_nn::ops::softmax_last_dim(&masked)
        }
    }
}

/// LayerNorm over the last dimension with per-column `weight` and `bias`,
/// differentiable in all three. `training` picks, on devices other than
/// the CPU, between candle's differentiable composite and its fused
/// inference kernel.
pub fn layer_norm(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
    training: bool,
) -> Result<Tensor> {
    if is_cpu_f32(xs) {
        let (xs, weight, bias) = (xs.contiguous()?, weight.contiguous()?, bias.contiguous()?);
        let op = layer_norm::LayerNorm { eps };
        if training {
            xs.apply_op3(&weight, &bias, op)
        } else {
            xs.apply_op3_no_bwd(&weight, &bias, &op)
        }
    } else if training {
        candle_nn::ops::layer_norm_slow(xs, weight, bias, eps)
    } else {
        candle_nn::ops::layer_norm(&xs.contiguous()?, weight, bias, eps)
    }
}

/// Whether `xs` is f32 on the CPU, where these kernels run.
pub(crate) fn is_cpu_f32(xs: &Tensor) -> bool {
    xs.device().is_cpu() && xs.dtype() == DType::F32
}

/// Runs `work` compiled for the widest vector unit the CPU has (AVX-512,
/// else AVX2 + FMA, else the build's baseline): the kernels' loops are
/// written so that the compiler vectorises them for whichever it is.
#[inline(always)]
pub(crate) fn with_widest_simd(work: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { x86_simd::avx512(work) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { x86_simd::avx2(work) };
        }
    }
    work()
}

/// Entry points compiled with x86-64 vector extensions; `work` is inlined
/// into them and vectorised with their instruction set.
#[cfg(target_arch = "x86_64")]
mod x86_simd {
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(work: impl FnOnce()) {
        work()
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(work: impl FnOnce()) {
        work()
    }
}

/// The contiguous f32 data of a storage, or an error naming the op.
pub(crate) fn contiguous_f32<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: expected f32 data");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the input must be contiguous"),
    }
}

/// The contiguous f32 data of a storage, writable, or an error naming the op.
pub(crate) fn contiguous_f32_mut<'a>(
    op: &str,
    storage: &'a mut CpuStorage,
    layout: &Layout,
) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: expected f32 data");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => candle_core::bail!("{op}: the tensor must be contiguous"),
    }
}

/// `1 / sqrt(2)`.
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// erf(x) for f32: the rational approximation Eigen and XLA use (odd
/// polynomial of degree 13 over an even one of degree 8) on [-4, 4], and
/// exactly +-1 outside, where erf is 1 to f32 precision (GELU multiplies
/// `1 + erf` by x, so any error there would grow with |x|).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let saturated = 1f32.copysign(x);
    let inside = x.abs() < 4.0;
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_2e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_3e-3;
    q = q * x2 + -1.426_474e-2;
    if inside {
        x * p / q
    } else {
        saturated
    }
}

/// e^x for f32: x = n ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor
/// polynomial of degree 6, 2^n built in the exponent bits. Inputs are
/// clamped to [-87.3, 88.3], where 2^n stays a normal float, and e^x below
/// that is 0 (as for masked attention scores).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let underflow = x < -87.3;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 720.0_f32;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if underflow {
        0.0
    } else {
        p * scale
    }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// d gelu / dx = Phi(x) + x phi(x).
#[inline(always)]
fn gelu_derivative(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * FRAC_1_SQRT_2PI * exp(-0.5 * x * x)
}

/// Applies `f` element-wise over `src`, in parallel chunks.
fn map_par(src: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    // SAFETY: each chunk writes one value per value of its source chunk,
    // which has the chunk's length.
    unsafe {
        par_filled(src.len(), CHUNK, |chunk, dst| {
            let src = &src[chunk * CHUNK..][..dst.len()];
            with_widest_simd(|| {
                for (d, &s) in dst.iter_mut().zip(src) {
                    d.write(f(s));
                }
            })
        })
    }
}

/// Applies `f` element-wise over `a` and `b`, in parallel chunks.
fn map2_par(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let len = a.len().min(b.len());
    // SAFETY: each chunk writes one value per value of its chunks of `a`
    // and `b`, which have the chunk's length.
    unsafe {
        par_filled(len, CHUNK, |chunk, dst| {
            let a = &a[chunk * CHUNK..][..dst.len()];
            let b = &b[chunk * CHUNK..][..dst.len()];
            with_widest_simd(|| {
                for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                    d.write(f(a, b));
                }
            })
        })
    }
}

/// A vector of `len` values that `fill` writes in parallel, `chunk` values
/// at a time (given the chunk's index and its part of the vector; the last
/// part may be shorter), without the zero fill of `vec![0.0; len]` (about
/// 6% of a training step's samples on the Intel host, BENCHMARKS.md).
///
/// # Safety
/// `fill` must write every value of each part it is given.
unsafe fn par_filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, part)| fill(i, part));
    // SAFETY: the caller's `fill` wrote each of the first `len` values.
    unsafe { out.set_len(len) };
    out
}

/// Sum of a slice with eight independent accumulators (vectorisable).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Maximum of a non-empty slice with eight independent lanes.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(x);
        }
    }
    lanes.iter().fold(tail, |m, &x| m.max(x))
}

/// Exact GELU as a candle op with its backward pass.
struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "dg-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(self.name(), storage, layout)?;
        Ok((CpuStorage::F32(map_par(src, gelu)), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = arg
            .contiguous()?
            .apply_op2_no_bwd(&grad_res.contiguous()?, &GeluErfBackward)?;
        Ok(Some(grad))
    }
}

/// `grad * gelu'(x)` for the input `x` and the output gradient `grad`.
struct GeluErfBackward;

impl CustomOp2 for GeluErfBackward {
    fn name(&self) -> &'static str {
        "dg-gelu-erf-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), x, x_layout)?;
        let grad = contiguous_f32(self.name(), grad, grad_layout)?;
        if x.len() != grad.len() {
            candle_core::bail!("{}: input and gradient sizes differ", self.name());
        }
        let dst = map2_par(x, grad, |x, g| g * gelu_derivative(x));
        Ok((CpuStorage::F32(dst), x_layout.shape().clone()))
    }
}

/// Rows per parallel work item of the softmax kernels.
const ROWS: usize = 64;

/// Masked softmax over the last dimension as a candle op (scores, mask
/// bias) with its backward pass.
struct MaskedSoftmax;

/// The length of the last dimension, checked non-zero.
fn last_dim(op: &str, layout: &Layout) -> Result<usize> {
    match layout.shape().dims().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => candle_core::bail!("{op}: the last dimension must be non-empty"),
    }
}

/// One row's softmax of `scores + bias` into `dst`.
#[inline(always)]
fn softmax_row(dst: &mut [f32], scores: &[f32], bias: &[f32]) {
    for ((d, &s), &b) in dst.iter_mut().zip(scores).zip(bias) {
        *d = s + b;
    }
    let m = max(dst);
    for d in dst.iter_mut() {
        *d = exp(*d - m);
    }
    let inv = 1.0 / sum(dst);
    for d in dst.iter_mut() {
        *d *= inv;
    }
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "dg-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        scores: &CpuStorage,
        scores_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous_f32(self.name(), scores, scores_layout)?;
        let bias = contiguous_f32(self.name(), bias, bias_layout)?;
        let n = last_dim(self.name(), scores_layout)?;
        let batch = scores_layout.shape().dims().first().copied().unwrap_or(1);
        if bias.len() != batch * n {
            candle_core::bail!("{}: the mask must be (batch, 1, 1, keys)", self.name());
        }
        // Rows of one batch item share its mask row.
        let rows_per_item = scores.len() / n / batch.max(1);
        let mut dst = vec![0f32; scores.len()];
        dst.par_chunks_mut(n * ROWS)
            .zip(scores.par_chunks(n * ROWS))
            .enumerate()
            .for_each(|(block, (dst, scores))| {
                with_widest_simd(|| {
                    for (i, (dst, scores)) in dst.chunks_mut(n).zip(scores.chunks(n)).enumerate() {
                        let item = (block * ROWS + i) / rows_per_item;
                        softmax_row(dst, scores, &bias[item * n..(item + 1) * n]);
                    }
                })
            });
        Ok((CpuStorage::F32(dst), scores_layout.shape().clone()))
    }

    fn bwd(
        &self,
        _scores: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = res
            .contiguous()?
            .apply_op2_no_bwd(&grad_res.contiguous()?, &SoftmaxBackward)?;
        Ok((Some(grad), None))
    }
}

/// `p * (g - sum(g * p))` per row, for the softmax output `p` and its
/// gradient `g`.
struct SoftmaxBackward;

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "dg-softmax-backward"
    }

    fn cpu_fwd(
        &self,
        probs: &CpuStorage,
        probs_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let probs = contiguous_f32(self.name(), probs, probs_layout)?;
        let grad = contiguous_f32(self.name(), grad, grad_layout)?;
        let n = last_dim(self.name(), probs_layout)?;
        if probs.len() != grad.len() {
            candle_core::bail!("{}: output and gradient sizes differ", self.name());
        }
        let mut dst = vec![0f32; probs.len()];
        dst.par_chunks_mut(n * ROWS)
            .zip(probs.par_chunks(n * ROWS).zip(grad.par_chunks(n * ROWS)))
            .for_each(|(dst, (p, g))| {
                with_widest_simd(|| {
                    for ((dst, p), g) in dst.chunks_mut(n).zip(p.chunks(n)).zip(g.chunks(n)) {
                        for ((d, &p), &g) in dst.iter_mut().zip(p).zip(g) {
                            *d = p * g;
                        }
                        let dot = sum(dst);
                        for ((d, &p), &g) in dst.iter_mut().zip(p).zip(g) {
                            *d = p * (g - dot);
                        }
                    }
                })
            });
        Ok((CpuStorage::F32(dst), probs_layout.shape().clone()))
    }
}

/// Helpers shared by the kernels' tests.
#[cfg(test)]
mod test_support {
    use candle_core::Tensor;

    /// Largest element-wise absolute difference of two tensors.
    pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::max_abs_diff;
    use super::*;
    use candle_core::{Device, Var};

    /// Inputs spanning GELU's and softmax's interesting ranges, including
    /// the large negatives of masked attention scores.
    fn inputs(shape: (usize, usize, usize)) -> Tensor {
        let n = shape.0 * shape.1 * shape.2;
        let values: Vec<f32> = (0..n)
            .map(|i| {
                let t = (i as f32 * 0.618_034).fract();
                match i % 17 {
                    0 => -1e4,
                    1 => 30.0 * (t - 0.5),
                    _ => 12.0 * (t - 0.5),
                }
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn par_filled_hands_out_every_value_once_in_chunk_order() {
        for (len, chunk) in [(0, 4), (1, 4), (10, 4), (12, 4), (CHUNK + 3, CHUNK)] {
            // SAFETY: each part writes each of its values.
            let filled = unsafe {
                par_filled(len, chunk, |part, values| {
                    for (i, v) in values.iter_mut().enumerate() {
                        v.write((part * chunk + i) as f32);
                    }
                })
            };
            let want: Vec<f32> = (0..len).map(|i| i as f32).collect();
            assert_eq!(filled, want, "len {len}, chunk {chunk}");
        }
        assert_eq!(
            map2_par(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], |a, b| a * b),
            [4.0, 10.0, 18.0]
        );
    }

    #[test]
    fn erf_and_exp_match_libm() {
        let mut worst_erf = 0f32;
        let mut worst_exp = 0f32;
        // x over [-6, 6] (erf) and [-84, 84] (exp).
        for i in -100_000..=100_000 {
            let x = i as f32 * 6e-5;
            worst_erf = worst_erf.max((erf(x) - libm_erf(x)).abs());
            let e = x * 14.0;
            worst_exp = worst_exp.max(((exp(e) - e.exp()) / e.exp()).abs());
        }
        // A few units in the last place near +-1 (where one is 6e-8).
        assert!(worst_erf < 5e-7, "erf error {worst_erf}");
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert_eq!(exp(-1e4), 0.0);
        assert!(exp(-87.0) > 0.0);
    }

    /// erf via candle's own (libm) kernel, the reference.
    fn libm_erf(x: f32) -> f32 {
        Tensor::new(&[x], &Device::Cpu)
            .unwrap()
            .erf()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0]
    }

    /// max |a - b| / max(1, |x|): GELU's error grows with |x|.
    fn max_scaled_diff(a: &Tensor, b: &Tensor, xs: &Tensor) -> f32 {
        let scale = xs.abs().unwrap().maximum(1f32).unwrap();
        let scaled = ((a - b).unwrap() / scale).unwrap();
        max_abs_diff(&scaled, &scaled.zeros_like().unwrap())
    }

    #[test]
    fn gelu_matches_candle_forward_and_backward() {
        let xs = inputs((3, 50, 1000));
        let diff = max_scaled_diff(&gelu_erf(&xs, false).unwrap(), &xs.gelu_erf().unwrap(), &xs);
        assert!(diff < 1e-6, "forward difference {diff}");

        let var = Var::from_tensor(&xs.clamp(-20f32, 20f32).unwrap()).unwrap();
        let weights = inputs((3, 50, 1000)).clamp(-3f32, 3f32).unwrap();
        let ours = (gelu_erf(var.as_tensor(), true).unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let candle = (var.as_tensor().gelu_erf().unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let diff = max_abs_diff(ours.get(&var).unwrap(), candle.get(&var).unwrap());
        assert!(diff < 1e-5, "gradient difference {diff}");
    }

    /// A (batch, 1, 1, keys) mask bias that masks the last `batch_index`
    /// keys of each batch item, like padding.
    fn mask_bias(batch: usize, keys: usize) -> Tensor {
        let values: Vec<f32> = (0..batch * keys)
            .map(|i| {
                if i % keys >= keys - i / keys {
                    -3.4e38
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_vec(values, (batch, 1, 1, keys), &Device::Cpu).unwrap()
    }

    #[test]
    fn attention_softmax_matches_candle_forward_and_backward() {
        // Rows of 128 (attention) and 13 (a tail shorter than a lane
        // group); more rows than one parallel work item.
        for (batch, heads, queries, keys) in [(2, 12, 128, 128), (4, 5, 7, 13)] {
            let shape = (batch * heads, queries, keys);
            let xs = inputs(shape)
                .reshape((batch, heads, queries, keys))
                .unwrap();
            let mask = mask_bias(batch, keys);
            let ours = attention_softmax(&xs, &mask, false).unwrap();
            let masked = xs.broadcast_add(&mask).unwrap();
            let candle = candle_nn::ops::softmax_last_dim(&masked).unwrap();
            assert!(max_abs_diff(&ours, &candle) < 1e-6);
            let row_sums = ours.sum(D::Minus1).unwrap();
            let ones = Tensor::ones_like(&row_sums).unwrap();
            assert!(max_abs_diff(&row_sums, &ones) < 1e-5);
            // Masked keys get nothing.
            let last = ours
                .narrow(3, keys - 1, 1)
                .unwrap()
                .narrow(0, 1, 1)
                .unwrap();
            assert_eq!(max_abs_diff(&last, &last.zeros_like().unwrap()), 0.0);

            let var = Var::from_tensor(&xs).unwrap();
            let weights = inputs(shape)
                .reshape((batch, heads, queries, keys))
                .unwrap()
                .clamp(-3f32, 3f32)
                .unwrap();
            let ours = (attention_softmax(var.as_tensor(), &mask, true).unwrap() * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let masked = var.as_tensor().broadcast_add(&mask).unwrap();
            let candle = (candle_nn::ops::softmax(&masked, D::Minus1).unwrap() * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            // Gradients reach about 6 here: this is a few float ulps.
            let diff = max_abs_diff(ours.get(&var).unwrap(), candle.get(&var).unwrap());
            assert!(diff < 5e-6, "gradient difference {diff}");
        }
    }

    #[test]
    fn non_contiguous_inputs_are_handled() {
        let xs = inputs((2, 16, 24))
            .reshape((2, 4, 4, 24))
            .unwrap()
            .transpose(1, 2)
            .unwrap();
        let mask = mask_bias(2, 24);
        let expected =
            candle_nn::ops::softmax(&xs.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        assert!(max_abs_diff(&attention_softmax(&xs, &mask, false).unwrap(), &expected) < 1e-6);
        let expected = xs.gelu_erf().unwrap();
        assert!(max_scaled_diff(&gelu_erf(&xs, false).unwrap(), &expected, &xs) < 1e-6);
    }
}
