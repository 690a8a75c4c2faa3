//! int8 linear layers on AVX512-VNNI: `vpdpbusd` multiplies 16 groups of
//! four unsigned by four signed bytes and adds each group's sum to an i32
//! lane.
//!
//! Weights are quantised once, symmetrically per output column:
//! `scale = max |w| / 127`, `q = round(w / scale)` in [-127, 127].
//! Activations are quantised per call and per row (token), asymmetrically
//! into u8 as VNNI wants: the row's range `[min(x, 0), max(x, 0)]` maps onto
//! 0..=255, `q = round(x / scale) + zero_point`, so one-sided rows (GELU
//! outputs) keep all 8 bits. The zero point is taken back out with
//! `zero_point * sum_k q_w[col][k]` (column sums precomputed). The result
//! is `(acc - zero_point * colsum) * scale_x * scale_w + bias` in f32.
//!
//! Weight layout: for each 64-column panel, for each quad of input
//! positions `4q .. 4q + 4`, four vectors of 16 lanes, lane `j` of vector
//! `v` holding the four weights of column `panel * 64 + v * 16 + j`.

use std::mem::MaybeUninit;

use super::amx::{self, Block, BlockAt, Product, TileOperands, TILE};
use super::{checked_rows, lane_mask, panels, run_kernel, tiles, MicroKernel, PANEL};

/// Bytes per packed panel row (one input quad, 64 columns).
const QUAD_ROW: usize = 4 * PANEL;

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

/// One row of activations quantised to u8: `x ~ scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RowCodes {
    scale: f32,
    /// `1 / scale`: codes are `round_ties_even(x * inverse) + zero_point`.
    inverse: f32,
    zero_point: i32,
}

impl RowCodes {
    /// The codes of a row whose values lie in `[lo, hi]`: the range
    /// `[min(lo, 0), max(hi, 0)]` onto 0..=255 (scale 1 for all zeros).
    fn for_range(lo: f32, hi: f32) -> Self {
        let range = hi.max(0.0) - lo.min(0.0);
        let scale = if range > 0.0 && range.is_finite() {
            range / 255.0
        } else {
            1.0
        };
        let inverse = 1.0 / scale;
        let zero_point = (-lo.min(0.0) * inverse).round_ties_even().clamp(0.0, 255.0) as i32;
        RowCodes {
            scale,
            inverse,
            zero_point,
        }
    }

    /// The code of `x`.
    #[cfg(test)]
    fn code(&self, x: f32) -> u8 {
        ((x * self.inverse).round_ties_even() as i32 + self.zero_point).clamp(0, 255) as u8
    }
}

/// The asymmetric u8 quantisation of `row` into `dst`, four codes to a
/// `u32` in little-endian order (the first `row.len()` bytes; the rest are
/// left as they are), with AVX-512: one pass for the range, one for the
/// codes (rounded to nearest even, as [`RowCodes::code`]).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_row(row: &[f32], dst: &mut [u32]) -> RowCodes {
    use std::arch::x86_64::*;
    assert!(4 * dst.len() >= row.len(), "code buffer too short");
    let out = dst.as_mut_ptr() as *mut i8;
    let mask = |from: usize| lane_mask(from, row.len());
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    for i in (0..row.len()).step_by(16) {
        let x = _mm512_maskz_loadu_ps(mask(i), row.as_ptr().add(i));
        lo = _mm512_min_ps(lo, x);
        hi = _mm512_max_ps(hi, x);
    }
    let codes = RowCodes::for_range(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    let inverse = _mm512_set1_ps(codes.inverse);
    let zero_point = _mm512_set1_epi32(codes.zero_point);
    for i in (0..row.len()).step_by(16) {
        let x = _mm512_maskz_loadu_ps(mask(i), row.as_ptr().add(i));
        let q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x, inverse)), zero_point);
        let q = _mm512_max_epi32(q, _mm512_setzero_si512());
        _mm512_mask_cvtusepi32_storeu_epi8(out.add(i), mask(i), q);
    }
    codes
}

/// A weight quantised and packed for [`Int8Panels::multiply`].
#[derive(Debug)]
pub(super) struct Int8Panels {
    in_dim: usize,
    out_dim: usize,
    quads: usize,
    data: Vec<i8>,
    scales: Vec<f32>,
    /// `sum_k q_w[col][k]` per column.
    col_sums: Vec<i32>,
}

impl Int8Panels {
    /// Quantises and packs the rows (one per output column) of an
    /// `in_dim`-wide weight.
    pub(super) fn pack(rows: &[Vec<f32>], in_dim: usize) -> Self {
        let out_dim = rows.len();
        let quads = in_dim.div_ceil(4).next_multiple_of(TILE);
        let mut data = vec![0i8; panels(out_dim) * quads * QUAD_ROW];
        let mut scales = Vec::with_capacity(out_dim);
        let mut col_sums = Vec::with_capacity(out_dim);
        for (col, row) in rows.iter().enumerate() {
            let (panel, lane) = (col / PANEL, col % PANEL);
            let (scale, codes) = quantise(row);
            let mut sum = 0i32;
            for (k, q) in codes.enumerate() {
                data[(panel * quads + k / 4) * QUAD_ROW + 4 * lane + k % 4] = q;
                sum += i32::from(q);
            }
            scales.push(scale);
            col_sums.push(sum);
        }
        Int8Panels {
            in_dim,
            out_dim,
            quads,
            data,
            scales,
            col_sums,
        }
    }

    /// `out = xs @ w^T + bias` for whole rows of `xs` (`in_dim` wide) and
    /// `out` (`out_dim` wide).
    pub(super) fn multiply(&self, xs: &[f32], bias: &[f32], out: &mut [MaybeUninit<f32>]) {
        let rows = checked_rows(xs, self.in_dim, bias, out, self.out_dim);
        let mut activations = vec![0u32; rows * self.quads];
        let row_codes = self.quantise_rows(xs, &mut activations);
        for at in tiles(rows, self.out_dim) {
            let tile = Tile {
                activations: &activations[at.first * self.quads..][..at.rows * self.quads],
                row_codes: &row_codes[at.first..at.first + at.rows],
                weights: &self.data[at.panel * self.quads * QUAD_ROW..][..self.quads * QUAD_ROW],
                quads: self.quads,
                col: at.panel * PANEL,
                columns: self.columns(bias),
            };
            let out = &mut out[at.first * self.out_dim..][..at.rows * self.out_dim];
            // SAFETY: `kernels` returned Ok for int8 before this layer
            // was packed, so the CPU has AVX-512F/BW and AVX512-VNNI; the
            // tile's slices were cut to the lengths the kernel reads.
            unsafe { run_kernel(&tile, at.rows, out) };
        }
    }

    /// As [`Int8Panels::multiply`], with AMX tiles (`tdpbusd`).
    ///
    /// # Safety
    /// The CPU has AMX-TILE and AMX-INT8, and Linux granted tile data.
    pub(super) unsafe fn multiply_tiles(
        &self,
        xs: &[f32],
        bias: &[f32],
        out: &mut [MaybeUninit<f32>],
    ) {
        let rows = checked_rows(xs, self.in_dim, bias, out, self.out_dim);
        let mut activations = amx::activation_buffer(rows, self.quads);
        let row_codes = self.quantise_rows(xs, &mut activations);
        let operands = TileOperands {
            activations: &activations,
            groups: self.quads,
            weights: std::slice::from_raw_parts(self.data.as_ptr().cast(), self.data.len()),
            out_dim: self.out_dim,
        };
        let columns = self.columns(bias);
        amx::multiply(Product::Int8, &operands, rows, |at, block| {
            // SAFETY: AMX-INT8 machines have AVX-512F; `multiply` hands
            // out blocks within `rows`.
            unsafe { columns.store_block(at, block, &row_codes, out) }
        });
    }

    /// Quantises each row to u8 with its own scale and zero point into
    /// `packed` (`quads` per row, four codes to a `u32`; padding bytes
    /// stay 0 and meet zero weights) and returns the rows' codes.
    fn quantise_rows(&self, xs: &[f32], packed: &mut [u32]) -> Vec<RowCodes> {
        xs.chunks(self.in_dim)
            .zip(packed.chunks_mut(self.quads))
            // SAFETY: int8 layers exist only where `kernels` found
            // AVX-512F/BW; each row's quads hold the whole row.
            .map(|(row, dst)| unsafe { quantise_row(row, dst) })
            .collect()
    }

    /// What turns this layer's i32 sums into outputs, with `bias`.
    fn columns<'a>(&'a self, bias: &'a [f32]) -> Columns<'a> {
        Columns {
            out_dim: self.out_dim,
            bias,
            scales: &self.scales,
            col_sums: &self.col_sums,
        }
    }
}

/// Per output column: what dequantises an i32 sum, and the bias.
#[derive(Clone, Copy)]
struct Columns<'a> {
    out_dim: usize,
    bias: &'a [f32],
    scales: &'a [f32],
    /// `sum_k q_w[col][k]` per column.
    col_sums: &'a [i32],
}

/// The per-column factors of 16 columns, loaded once for many rows.
#[derive(Clone, Copy)]
struct ColumnVectors {
    mask: u16,
    col_sums: std::arch::x86_64::__m512i,
    scales: std::arch::x86_64::__m512,
    bias: std::arch::x86_64::__m512,
}

impl ColumnVectors {
    /// Writes the 16 outputs of one row (those in `mask`) to `dst`:
    /// `(sum - zero_point * col_sum) * scale_x * scale_w + bias`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(&self, sum: std::arch::x86_64::__m512i, row: RowCodes, dst: *mut f32) {
        use std::arch::x86_64::*;
        let shift = _mm512_mullo_epi32(_mm512_set1_epi32(row.zero_point), self.col_sums);
        let exact = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, shift));
        let scale = _mm512_mul_ps(_mm512_set1_ps(row.scale), self.scales);
        _mm512_mask_storeu_ps(dst, self.mask, _mm512_fmadd_ps(exact, scale, self.bias));
    }
}

impl Columns<'_> {
    /// The factors of the 16 columns from `col` (those below `out_dim`).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn vectors(&self, col: usize) -> ColumnVectors {
        use std::arch::x86_64::*;
        let mask = lane_mask(col, self.out_dim);
        ColumnVectors {
            mask,
            col_sums: _mm512_maskz_loadu_epi32(mask, self.col_sums.as_ptr().add(col)),
            scales: _mm512_maskz_loadu_ps(mask, self.scales.as_ptr().add(col)),
            bias: _mm512_maskz_loadu_ps(mask, self.bias.as_ptr().add(col)),
        }
    }

    /// Writes a block's valid rows and columns into `out` (the work item's
    /// rows, `out_dim` wide); `row_codes` are the work item's rows' codes.
    #[target_feature(enable = "avx512f")]
    unsafe fn store_block(
        &self,
        at: BlockAt,
        block: &Block,
        row_codes: &[RowCodes],
        out: &mut [MaybeUninit<f32>],
    ) {
        use std::arch::x86_64::*;
        debug_assert!(out.len() >= (at.first_row + at.rows) * self.out_dim);
        for (t, tile) in block.0.iter().enumerate() {
            let (first, col) = (TILE * (t / 2), at.col + TILE * (t % 2));
            if col >= self.out_dim || first >= at.rows {
                continue;
            }
            let columns = self.vectors(col);
            for r in first..at.rows.min(first + TILE) {
                let sum = _mm512_loadu_si512(tile.as_ptr().add((r - first) * TILE).cast());
                let row = at.first_row + r;
                let dst = out.as_mut_ptr().cast::<f32>().add(row * self.out_dim + col);
                columns.store(sum, row_codes[row], dst);
            }
        }
    }
}

/// One micro-kernel call: up to six rows by one 64-column panel.
struct Tile<'a> {
    activations: &'a [u32],
    row_codes: &'a [RowCodes],
    weights: &'a [i8],
    quads: usize,
    col: usize,
    columns: Columns<'a>,
}

impl MicroKernel for Tile<'_> {
    unsafe fn rows<const R: usize>(&self, out: &mut [MaybeUninit<f32>]) {
        self.kernel::<R>(out)
    }
}

impl Tile<'_> {
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn kernel<const R: usize>(&self, out: &mut [MaybeUninit<f32>]) {
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
        for v in 0..4 {
            let col = self.col + 16 * v;
            if col >= self.columns.out_dim {
                break;
            }
            let columns = self.columns.vectors(col);
            for (r, acc) in acc.iter().enumerate() {
                let dst = out
                    .as_mut_ptr()
                    .cast::<f32>()
                    .add(r * self.columns.out_dim + col);
                columns.store(acc[v], self.row_codes[r], dst);
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
            let (lo, hi) = x
                .iter()
                .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            let row = RowCodes::for_range(lo, hi);
            let qx: Vec<i32> = x
                .iter()
                .map(|&v| i32::from(row.code(v)) - row.zero_point)
                .collect();
            weights
                .iter()
                .zip(b)
                .map(move |((sw, qw), &bias)| {
                    let dot: i32 = qx.iter().zip(qw).map(|(&a, &b)| a * i32::from(b)).sum();
                    (dot as f32).mul_add(row.scale * sw, bias)
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

    #[test]
    fn row_quantisation_spans_the_row_range_and_keeps_zero_exact() {
        // A one-sided row (like GELU output) uses all 256 codes.
        let row = RowCodes::for_range(-0.1, 2.45);
        assert!((row.scale - 2.55 / 255.0).abs() < 1e-7);
        assert_eq!(row.zero_point, 10);
        let codes: Vec<u8> = [-0.1, 0.0, 2.45].iter().map(|&x| row.code(x)).collect();
        assert_eq!(codes, vec![0, 10, 255]);
        let zeros = RowCodes::for_range(0.0, 0.0);
        assert_eq!(
            (zeros.scale, zeros.zero_point, zeros.code(0.0)),
            (1.0, 0, 0)
        );
    }

    #[test]
    fn vector_quantisation_matches_the_scalar_codes() {
        if !is_x86_feature_detected!("avx512bw") {
            eprintln!("SKIPPED: AVX-512 quantisation: this CPU lacks AVX512-BW");
            return;
        }
        for len in [1usize, 15, 16, 17, 100, 384] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 29 % 23) as f32 - 7.5) / 3.0)
                .collect();
            let mut quads = vec![u32::from_le_bytes([7; 4]); (len + 3).div_ceil(4) + 1];
            // SAFETY: AVX-512F/BW checked above.
            let codes = unsafe { quantise_row(&row, &mut quads) };
            let got: Vec<u8> = quads.iter().flat_map(|q| q.to_le_bytes()).collect();
            let (lo, hi) = row
                .iter()
                .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            assert_eq!(codes, RowCodes::for_range(lo, hi));
            let want: Vec<u8> = row.iter().map(|&x| codes.code(x)).collect();
            assert_eq!(&got[..len], &want[..], "length {len}");
            assert!(
                got[len..].iter().all(|&b| b == 7),
                "bytes past the row are untouched"
            );
        }
    }
}
