//! bf16 linear layers on AVX512-BF16: `vdpbf16ps` multiplies 16 pairs of
//! bf16 values and adds each pair's sum to an f32 lane.
//!
//! Weight layout (packed once): for each 64-column panel, for each pair of
//! input positions `(2p, 2p + 1)`, four vectors of 16 lanes, lane `j` of
//! vector `v` holding `w[col][2p]` and `w[col][2p + 1]` for
//! `col = panel * 64 + v * 16 + j`. Activations are rounded to bf16 per
//! call and read as one 32-bit pair, broadcast to every lane.

use std::mem::MaybeUninit;

use super::amx::{self, Block, BlockAt, Product, TileOperands, TILE};
use super::{checked_rows, lane_mask, panels, run_kernel, tiles, MicroKernel, PANEL};

/// bf16 values per packed panel row (one input pair, 64 columns).
const PAIR_ROW: usize = 2 * PANEL;

/// Rounds to the nearest bf16, ties to even (NaN stays NaN).
pub(super) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    (bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

/// The f32 value of a bf16.
#[cfg(test)]
fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// A weight packed for [`Bf16Panels::multiply`].
#[derive(Debug)]
pub(super) struct Bf16Panels {
    in_dim: usize,
    out_dim: usize,
    pairs: usize,
    data: Vec<u16>,
}

impl Bf16Panels {
    /// Packs the rows (one per output column) of an `in_dim`-wide weight.
    pub(super) fn pack(rows: &[Vec<f32>], in_dim: usize) -> Self {
        let out_dim = rows.len();
        let pairs = in_dim.div_ceil(2).next_multiple_of(TILE);
        let mut data = vec![0u16; panels(out_dim) * pairs * PAIR_ROW];
        for (col, row) in rows.iter().enumerate() {
            let (panel, lane) = (col / PANEL, col % PANEL);
            for (k, &w) in row.iter().enumerate() {
                let at = (panel * pairs + k / 2) * PAIR_ROW + 2 * lane + k % 2;
                data[at] = to_bf16(w);
            }
        }
        Bf16Panels {
            in_dim,
            out_dim,
            pairs,
            data,
        }
    }

    /// `out = xs @ w^T + bias` for whole rows of `xs` (`in_dim` wide) and
    /// `out` (`out_dim` wide).
    pub(super) fn multiply(&self, xs: &[f32], bias: &[f32], out: &mut [MaybeUninit<f32>]) {
        let rows = checked_rows(xs, self.in_dim, bias, out, self.out_dim);
        let mut activations = vec![0u32; rows * self.pairs];
        self.round_rows(xs, &mut activations);
        for at in tiles(rows, self.out_dim) {
            let tile = Tile {
                activations: &activations[at.first * self.pairs..][..at.rows * self.pairs],
                weights: &self.data[at.panel * self.pairs * PAIR_ROW..][..self.pairs * PAIR_ROW],
                pairs: self.pairs,
                col: at.panel * PANEL,
                out_dim: self.out_dim,
                bias,
            };
            let out = &mut out[at.first * self.out_dim..][..at.rows * self.out_dim];
            // SAFETY: `kernels` returned Ok for bf16 before this layer
            // was packed, so the CPU has AVX-512F and AVX512-BF16; the
            // tile's slices were cut to the lengths the kernel reads.
            unsafe { run_kernel(&tile, at.rows, out) };
        }
    }

    /// As [`Bf16Panels::multiply`], with AMX tiles (`tdpbf16ps`).
    ///
    /// # Safety
    /// The CPU has AMX-TILE and AMX-BF16, and Linux granted tile data.
    pub(super) unsafe fn multiply_tiles(
        &self,
        xs: &[f32],
        bias: &[f32],
        out: &mut [MaybeUninit<f32>],
    ) {
        let rows = checked_rows(xs, self.in_dim, bias, out, self.out_dim);
        let mut activations = amx::activation_buffer(rows, self.pairs);
        self.round_rows(xs, &mut activations);
        let operands = TileOperands {
            activations: &activations,
            groups: self.pairs,
            weights: std::slice::from_raw_parts(self.data.as_ptr().cast(), 2 * self.data.len()),
            out_dim: self.out_dim,
        };
        amx::multiply(Product::Bf16, &operands, rows, |at, block| {
            // SAFETY: AMX-BF16 machines have AVX-512F; `multiply` hands
            // out blocks within `rows`.
            unsafe { store_block(at, block, bias, self.out_dim, out) }
        });
    }

    /// Rounds the rows to bf16 pairs into `packed` (`pairs` per row), one
    /// `u32` per input pair (low half even; an odd row's last pair ends in
    /// 0; the padding pairs are left as they are).
    fn round_rows(&self, xs: &[f32], packed: &mut [u32]) {
        for (row, dst) in xs.chunks(self.in_dim).zip(packed.chunks_mut(self.pairs)) {
            // SAFETY: bf16 layers exist only where `kernels` found
            // AVX512-BF16; `dst` holds the row's pairs.
            unsafe { round_row(row, dst) };
        }
    }
}

/// Adds the bias to a block's f32 accumulators and writes its valid rows
/// and columns into `out` (the work item's rows, `out_dim` wide).
#[target_feature(enable = "avx512f")]
unsafe fn store_block(
    at: BlockAt,
    block: &Block,
    bias: &[f32],
    out_dim: usize,
    out: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    debug_assert!(out.len() >= (at.first_row + at.rows) * out_dim);
    for (t, tile) in block.0.iter().enumerate() {
        let (first, col) = (TILE * (t / 2), at.col + TILE * (t % 2));
        let mask = lane_mask(col, out_dim);
        if mask == 0 || first >= at.rows {
            continue;
        }
        let bias = _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(col));
        for r in first..at.rows.min(first + TILE) {
            let sum = _mm512_loadu_ps(tile.as_ptr().add((r - first) * TILE).cast());
            let dst = out
                .as_mut_ptr()
                .cast::<f32>()
                .add((at.first_row + r) * out_dim + col);
            _mm512_mask_storeu_ps(dst, mask, _mm512_add_ps(sum, bias));
        }
    }
}

/// Rounds `row` to bf16 into `dst` (its pairs), 32 values at a time with
/// `vcvtne2ps2bf16`, which rounds to nearest even as [`to_bf16`] does
/// (but reads subnormal inputs as zero).
///
/// # Safety
/// The CPU has AVX-512F/BW and AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(in crate::cpu_kernels) unsafe fn round_row(row: &[f32], dst: &mut [u32]) {
    use std::arch::x86_64::*;
    assert!(2 * dst.len() >= row.len(), "pair buffer too short");
    let out = dst.as_mut_ptr() as *mut u16;
    for i in (0..row.len()).step_by(32) {
        let lo = _mm512_maskz_loadu_ps(lane_mask(i, row.len()), row.as_ptr().add(i));
        let hi = _mm512_maskz_loadu_ps(
            lane_mask(i + 16, row.len()),
            row.as_ptr().wrapping_add(i + 16),
        );
        let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        let valid = (2 * dst.len() - i).min(32);
        let mask = if valid == 32 {
            u32::MAX
        } else {
            (1u32 << valid) - 1
        };
        _mm512_mask_storeu_epi16(out.add(i) as *mut i16, mask, both);
    }
}

/// One micro-kernel call: up to six rows by one 64-column panel.
struct Tile<'a> {
    activations: &'a [u32],
    weights: &'a [u16],
    pairs: usize,
    col: usize,
    out_dim: usize,
    bias: &'a [f32],
}

impl MicroKernel for Tile<'_> {
    unsafe fn rows<const R: usize>(&self, out: &mut [MaybeUninit<f32>]) {
        self.kernel::<R>(out)
    }
}

impl Tile<'_> {
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn kernel<const R: usize>(&self, out: &mut [MaybeUninit<f32>]) {
        use std::arch::x86_64::*;
        debug_assert!(self.activations.len() >= R * self.pairs);
        debug_assert!(self.weights.len() >= self.pairs * PAIR_ROW);
        debug_assert!(out.len() >= (R - 1) * self.out_dim + self.col.min(self.out_dim));
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        let a = self.activations.as_ptr();
        let w = self.weights.as_ptr() as *const __m512i;
        for p in 0..self.pairs {
            let b: [__m512bh; 4] =
                std::array::from_fn(|v| std::mem::transmute(_mm512_loadu_si512(w.add(4 * p + v))));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * self.pairs + p) as i32));
                for v in 0..4 {
                    acc[v] = _mm512_dpbf16_ps(acc[v], x, b[v]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &sum) in acc.iter().enumerate() {
                let col = self.col + 16 * v;
                let mask = lane_mask(col, self.out_dim);
                if mask == 0 {
                    break;
                }
                let bias = _mm512_maskz_loadu_ps(mask, self.bias.as_ptr().add(col));
                let dst = out.as_mut_ptr().cast::<f32>().add(r * self.out_dim + col);
                _mm512_mask_storeu_ps(dst, mask, _mm512_add_ps(sum, bias));
            }
        }
    }
}

/// What the kernel computes, in scalar code: both operands rounded to bf16,
/// products summed in f64 (the kernel sums in f32).
#[cfg(test)]
pub(super) fn reference(xs: &[f32], w: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    let round = |x: f32| from_bf16(to_bf16(x)) as f64;
    xs.chunks(k)
        .flat_map(|x| {
            b.iter().enumerate().map(move |(j, &bias)| {
                let dot: f64 = (0..k).map(|i| round(x[i]) * round(w[j * k + i])).sum();
                (dot + bias as f64) as f32
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to even (1).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to even.
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
    }
}
