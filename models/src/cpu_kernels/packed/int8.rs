//! int8 linear layers on AVX512-VNNI: `vpdpbusd` multiplies 16 groups of
//! four unsigned by four signed bytes and adds each group's sum to an i32
//! lane.
//!
//! Weights are quantised once, symmetrically per output column:
//! `scale = max |w| / 127`, `q = round(w / scale)` in [-127, 127].
//! Activations are quantised per call and per row (token) the same way,
//! then shifted by 128 into u8, as VNNI wants; the shift is taken back out
//! with `128 * sum_k q_w[col][k]`, precomputed per column. The result is
//! `(acc - 128 * colsum) * scale_x * scale_w + bias` in f32.
//!
//! Weight layout: for each 64-column panel, for each quad of input
//! positions `4q .. 4q + 4`, four vectors of 16 lanes, lane `j` of vector
//! `v` holding the four weights of column `panel * 64 + v * 16 + j`.

use super::{lane_mask, panels, GROUP_ROWS, PANEL};

/// Bytes per packed panel row (one input quad, 64 columns).
const QUAD_ROW: usize = 4 * PANEL;
/// Activation zero point: the shift from i8 to u8.
const ZERO_POINT: i32 = 128;

/// The symmetric int8 scale of `values` (1 for all zeros) and the values
/// quantised with it.
fn quantise(values: &[f32]) -> (f32, impl Iterator<Item = i8> + '_) {
    let max = values.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 && max.is_finite() {
        max / 127.0
    } else {
        1.0
    };
    let codes = values
        .iter()
        .map(move |x| (x / scale).round().clamp(-127.0, 127.0) as i8);
    (scale, codes)
}

/// A weight quantised and packed for [`Int8Panels::multiply`].
#[derive(Debug)]
pub(super) struct Int8Panels {
    in_dim: usize,
    out_dim: usize,
    quads: usize,
    data: Vec<i8>,
    scales: Vec<f32>,
    /// `128 * sum_k q_w[col][k]` per column.
    zero_point_sums: Vec<i32>,
}

impl Int8Panels {
    /// Quantises and packs the rows (one per output column) of an
    /// `in_dim`-wide weight.
    pub(super) fn pack(rows: &[Vec<f32>], in_dim: usize) -> Self {
        let out_dim = rows.len();
        let quads = in_dim.div_ceil(4);
        let mut data = vec![0i8; panels(out_dim) * quads * QUAD_ROW];
        let mut scales = Vec::with_capacity(out_dim);
        let mut zero_point_sums = Vec::with_capacity(out_dim);
        for (col, row) in rows.iter().enumerate() {
            let (panel, lane) = (col / PANEL, col % PANEL);
            let (scale, codes) = quantise(row);
            let mut sum = 0i32;
            for (k, q) in codes.enumerate() {
                data[(panel * quads + k / 4) * QUAD_ROW + 4 * lane + k % 4] = q;
                sum += i32::from(q);
            }
            scales.push(scale);
            zero_point_sums.push(ZERO_POINT * sum);
        }
        Int8Panels {
            in_dim,
            out_dim,
            quads,
            data,
            scales,
            zero_point_sums,
        }
    }

    /// `out = xs @ w^T + bias` for whole rows of `xs` (`in_dim` wide) and
    /// `out` (`out_dim` wide).
    pub(super) fn multiply(&self, xs: &[f32], bias: &[f32], out: &mut [f32]) {
        let rows = xs.len() / self.in_dim.max(1);
        assert_eq!(out.len(), rows * self.out_dim, "output rows");
        assert_eq!(bias.len(), self.out_dim, "bias width");
        let (activations, row_scales) = self.quantise_rows(xs, rows);
        for panel in 0..panels(self.out_dim) {
            let weights = &self.data[panel * self.quads * QUAD_ROW..][..self.quads * QUAD_ROW];
            for first in (0..rows).step_by(GROUP_ROWS) {
                let group = (rows - first).min(GROUP_ROWS);
                let tile = Tile {
                    activations: &activations[first * self.quads..][..group * self.quads],
                    row_scales: &row_scales[first..first + group],
                    weights,
                    quads: self.quads,
                    col: panel * PANEL,
                    out_dim: self.out_dim,
                    bias,
                    scales: &self.scales,
                    zero_point_sums: &self.zero_point_sums,
                };
                let out = &mut out[first * self.out_dim..][..group * self.out_dim];
                // SAFETY: `kernels` returned Ok for int8 before this layer
                // was packed, so the CPU has AVX-512F/BW and AVX512-VNNI;
                // the tile's slices were cut to the lengths the kernel reads.
                unsafe { tile.run(group, out) };
            }
        }
    }

    /// Each row quantised with its own scale, shifted to u8 and packed four
    /// to a `u32` (padding quantises to 0, i.e. 128), with the scales.
    fn quantise_rows(&self, xs: &[f32], rows: usize) -> (Vec<u32>, Vec<f32>) {
        let mut packed = vec![0u32; rows * self.quads];
        let mut scales = Vec::with_capacity(rows);
        for (row, dst) in xs.chunks(self.in_dim).zip(packed.chunks_mut(self.quads)) {
            let (scale, codes) = quantise(row);
            let mut bytes = vec![ZERO_POINT as u8; self.quads * 4];
            for (b, q) in bytes.iter_mut().zip(codes) {
                *b = (i32::from(q) + ZERO_POINT) as u8;
            }
            for (d, quad) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
                *d = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
            }
            scales.push(scale);
        }
        (packed, scales)
    }
}

/// One micro-kernel call: up to six rows by one 64-column panel.
struct Tile<'a> {
    activations: &'a [u32],
    row_scales: &'a [f32],
    weights: &'a [i8],
    quads: usize,
    col: usize,
    out_dim: usize,
    bias: &'a [f32],
    scales: &'a [f32],
    zero_point_sums: &'a [i32],
}

impl Tile<'_> {
    /// Runs the kernel for `rows` (1 to 6) rows into `out`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn run(&self, rows: usize, out: &mut [f32]) {
        match rows {
            1 => self.kernel::<1>(out),
            2 => self.kernel::<2>(out),
            3 => self.kernel::<3>(out),
            4 => self.kernel::<4>(out),
            5 => self.kernel::<5>(out),
            _ => self.kernel::<6>(out),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn kernel<const R: usize>(&self, out: &mut [f32]) {
        use std::arch::x86_64::*;
        debug_assert!(self.activations.len() >= R * self.quads);
        debug_assert!(self.weights.len() >= self.quads * QUAD_ROW);
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        let a = self.activations.as_ptr();
        let w = self.weights.as_ptr() as *const __m512i;
        for q in 0..self.quads {
            let b: [__m512i; 4] = std::array::from_fn(|v| _mm512_loadu_si512(w.add(4 * q + v)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(*a.add(r * self.quads + q) as i32);
                for v in 0..4 {
                    acc[v] = _mm512_dpbusd_epi32(acc[v], x, b[v]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row_scale = _mm512_set1_ps(self.row_scales[r]);
            for (v, &sum) in acc.iter().enumerate() {
                let col = self.col + 16 * v;
                let mask = lane_mask(col, self.out_dim);
                if mask == 0 {
                    break;
                }
                let shift = _mm512_maskz_loadu_epi32(mask, self.zero_point_sums.as_ptr().add(col));
                let scale = _mm512_maskz_loadu_ps(mask, self.scales.as_ptr().add(col));
                let bias = _mm512_maskz_loadu_ps(mask, self.bias.as_ptr().add(col));
                let exact = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, shift));
                let value = _mm512_fmadd_ps(exact, _mm512_mul_ps(row_scale, scale), bias);
                let dst = out.as_mut_ptr().add(r * self.out_dim + col);
                _mm512_mask_storeu_ps(dst, mask, value);
            }
        }
    }
}

/// What the kernel computes, in scalar code: the same quantisation, the
/// integer dot products, then the same scaling.
#[cfg(test)]
pub(super) fn reference(xs: &[f32], w: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    let weights: Vec<(f32, Vec<i8>)> = w
        .chunks(k)
        .map(|row| {
            let (s, q) = quantise(row);
            (s, q.collect())
        })
        .collect();
    xs.chunks(k)
        .flat_map(|x| {
            let (sx, qx) = quantise(x);
            let qx: Vec<i8> = qx.collect();
            weights
                .iter()
                .zip(b)
                .map(move |((sw, qw), &bias)| {
                    let dot: i32 = qx
                        .iter()
                        .zip(qw)
                        .map(|(&a, &b)| i32::from(a) * i32::from(b))
                        .sum();
                    (dot as f32).mul_add(sx * sw, bias)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_is_symmetric_and_handles_zero_rows() {
        let (scale, codes) = quantise(&[0.5, -1.0, 0.25]);
        assert!((scale - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(codes.collect::<Vec<_>>(), vec![64, -127, 32]);
        let (scale, codes) = quantise(&[0.0, 0.0]);
        assert_eq!(scale, 1.0);
        assert_eq!(codes.collect::<Vec<_>>(), vec![0, 0]);
    }
}
