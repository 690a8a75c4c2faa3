//! Dropout whose CPU mask comes from a seedable, counter-based hash, drawn
//! in parallel chunks and applied in one multi-threaded pass.
//!
//! candle's CPU dropout draws uniforms one by one from an unseedable thread
//! generator, then compares, converts and multiplies in four more
//! single-threaded tensor ops; on attention probabilities of a training
//! batch that is tens of millions of elements per layer. Here element `i` of
//! chunk `c` of the `n`-th mask since [`seed_dropout`] is kept when a 32-bit
//! hash of `i` and a 64-bit key of `(seed, n, c)` clears the drop threshold, so masks are
//! reproducible from the seed whatever the number of threads.

use std::cell::Cell;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{contiguous_f32, is_cpu_f32, map2_par, par_filled, with_widest_simd, CHUNK};

thread_local! {
    /// Seed of the CPU dropout masks drawn on this thread.
    static SEED: Cell<u64> = const { Cell::new(0x5eed_d120_9047) };
    /// Masks drawn on this thread since its last [`seed_dropout`].
    static MASKS_DRAWN: Cell<u64> = const { Cell::new(0) };
}

/// Seeds the CPU dropout masks of the calling thread: the same seed
/// followed by the same sequence of dropout calls on that thread draws the
/// same masks. The state is per thread, so fits running on different
/// threads of one process do not draw from each other's sequence.
pub fn seed_dropout(seed: u64) {
    SEED.with(|s| s.set(seed));
    MASKS_DRAWN.with(|m| m.set(0));
}

/// Inverted dropout with probability `p`: active only when `train`.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Dropout that zeroes each element with probability `p` in `[0, 1)`.
    pub fn new(p: f32) -> Self {
        Dropout { p }
    }

    /// `xs` with each element zeroed with probability `p` and the rest
    /// scaled by `1 / (1 - p)` when `train`; `xs` itself otherwise.
    pub fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        if !(0.0..1.0).contains(&self.p) {
            candle_core::bail!("dropout probability {} outside [0, 1)", self.p);
        }
        if !is_cpu_f32(xs) {
            return candle_nn::ops::dropout(xs, self.p);
        }
        let mask = Tensor::from_vec(
            dropout_mask(xs.elem_count(), self.p),
            xs.shape(),
            xs.device(),
        )?;
        xs.contiguous()?.apply_op2(&mask, ApplyMask)
    }
}

/// A mask of `len` elements, each 0 with probability `p` and `1 / (1 - p)`
/// otherwise.
fn dropout_mask(len: usize, p: f32) -> Vec<f32> {
    let seed = SEED.with(Cell::get);
    let mask_index = MASKS_DRAWN.with(|m| m.replace(m.get() + 1));
    let mask_key = splitmix64(seed ^ splitmix64(mask_index));
    // Keep when the hash's top 24 bits reach p * 2^24.
    let threshold = (f64::from(p) * f64::from(1u32 << 24)).round() as u32;
    let scale = 1.0 / (1.0 - p);
    // SAFETY: each part writes each of its values.
    unsafe {
        par_filled(len, CHUNK, |chunk, out| {
            let key = splitmix64(mask_key ^ chunk as u64);
            let (offset, salt) = (key as u32, (key >> 32) as u32);
            with_widest_simd(|| {
                for (i, m) in out.iter_mut().enumerate() {
                    let bits = hash32(hash32((i as u32).wrapping_add(offset)) ^ salt);
                    let keep = bits >> 8 >= threshold;
                    m.write(if keep { scale } else { 0.0 });
                }
            })
        })
    }
}

/// A 64-bit mixing function (SplitMix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 32-bit integer hash with low bias (two multiply-xorshift rounds,
/// vectorisable).
#[inline(always)]
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// `xs * mask` element-wise, differentiable in `xs` (the mask is a
/// constant).
struct ApplyMask;

impl CustomOp2 for ApplyMask {
    fn name(&self) -> &'static str {
        "dg-dropout"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(self.name(), xs, xs_layout)?;
        let mask = contiguous_f32(self.name(), mask, mask_layout)?;
        if xs.len() != mask.len() {
            candle_core::bail!("{}: input and mask sizes differ", self.name());
        }
        Ok((
            CpuStorage::F32(map2_par(xs, mask, |x, m| x * m)),
            xs_layout.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        _xs: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad_res.contiguous()?.apply_op2_no_bwd(mask, &ApplyMask)?;
        Ok((Some(grad), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn drops_the_requested_share_and_keeps_the_mean() {
        seed_dropout(7);
        for p in [0.1f32, 0.5] {
            let mask = dropout_mask(1 << 20, p);
            let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / mask.len() as f64;
            assert!(
                (dropped - f64::from(p)).abs() < 0.003,
                "p {p}: dropped {dropped}"
            );
            let kept = 1.0 / (1.0 - p);
            assert!(mask.iter().all(|&m| m == 0.0 || m == kept));
            let mean = mask.iter().map(|&m| f64::from(m)).sum::<f64>() / mask.len() as f64;
            assert!((mean - 1.0).abs() < 0.01, "p {p}: mean {mean}");
        }
    }

    #[test]
    fn masks_follow_the_seed_and_differ_between_calls() {
        seed_dropout(11);
        let (first, second) = (dropout_mask(100_000, 0.1), dropout_mask(100_000, 0.1));
        assert_ne!(first, second);
        seed_dropout(11);
        assert_eq!(dropout_mask(100_000, 0.1), first);
        assert_eq!(dropout_mask(100_000, 0.1), second);
        seed_dropout(12);
        assert_ne!(dropout_mask(100_000, 0.1), first);
    }

    #[test]
    fn each_thread_draws_its_own_sequence() {
        seed_dropout(5);
        let first = dropout_mask(10_000, 0.1);
        // Another thread seeding and drawing in between changes nothing
        // here, and draws what this thread drew from the same seed.
        let other = std::thread::spawn(|| {
            seed_dropout(5);
            (dropout_mask(10_000, 0.1), dropout_mask(10_000, 0.1))
        })
        .join()
        .unwrap();
        let second = dropout_mask(10_000, 0.1);
        assert_eq!(other, (first, second));
    }

    #[test]
    fn neighbouring_elements_are_not_correlated() {
        seed_dropout(3);
        let mask = dropout_mask(1 << 18, 0.5);
        let both_dropped = mask
            .windows(2)
            .filter(|w| w[0] == 0.0 && w[1] == 0.0)
            .count() as f64
            / (mask.len() - 1) as f64;
        assert!((both_dropped - 0.25).abs() < 0.005, "{both_dropped}");
    }

    #[test]
    fn gradient_passes_through_the_kept_elements_only() {
        seed_dropout(5);
        let dev = Device::Cpu;
        let xs = Var::from_tensor(&Tensor::rand(-1f32, 1f32, (64, 300), &dev).unwrap()).unwrap();
        let out = Dropout::new(0.3).forward(&xs, true).unwrap();
        let (x, y) = (
            xs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let weights = Tensor::rand(0f32, 1f32, (64, 300), &dev).unwrap();
        let grads = (&out * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let grad = grads
            .get(&xs)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let w = weights.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for i in 0..x.len() {
            if y[i] == 0.0 {
                assert_eq!(grad[i], 0.0);
            } else {
                assert!((y[i] - x[i] / 0.7).abs() < 1e-6);
                assert!((grad[i] - w[i] / 0.7).abs() < 1e-6);
            }
        }
        assert_eq!(
            Dropout::new(0.3)
                .forward(&xs, false)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap(),
            xs.to_vec2::<f32>().unwrap()
        );
    }
}
