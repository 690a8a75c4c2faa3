//! Reduced-precision linear layers for inference on the CPU: the weight is
//! packed once (bf16 pairs for AVX512-BF16, or int8 per output channel for
//! AVX512-VNNI), and a candle op multiplies f32 activations by it, adds the
//! bias and returns f32. Where the CPU has AMX and Linux grants it, the same
//! packed weights go through AMX tiles instead (`amx`).
//!
//! Both AVX-512 kernels share one blocking: the output is cut into panels of 64
//! columns (four 16-lane vectors) and groups of up to 6 rows, so one
//! micro-kernel call keeps 24 accumulators in registers while it streams the
//! panel's packed weights once over the whole depth. Each rayon task takes
//! up to 48 rows (fewer for short inputs, so that every thread gets work),
//! converts them to the kernel's input format and runs every panel over
//! them. Panels are padded with zero weights to 64 columns and the
//! depth to whole pairs (bf16) or quads (int8); tails are stored masked.

pub(super) mod amx;
mod attention_block;
mod bf16;
mod fused;
mod int8;

pub use attention_block::PackedAttention;
pub use fused::{PackedAddNorm, PackedFeedForward, RowNorm};

pub(super) use bf16::round_row;

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::precision::{CpuFeatures, Precision};

/// Output columns one micro-kernel call covers: four 16-lane vectors.
const PANEL: usize = 64;
/// Most output rows one micro-kernel call covers.
const GROUP_ROWS: usize = 6;
/// Most output rows per parallel work item.
const TASK_ROWS: usize = 8 * GROUP_ROWS;
/// Work items per thread at least, when there are rows enough: short
/// inputs (one session) are cut finer so that every thread gets work.
const TASKS_PER_THREAD: usize = 4;

/// Rows per work item for `rows` rows on `threads` threads: whole row
/// groups, at most [`TASK_ROWS`], small enough for [`TASKS_PER_THREAD`]
/// items per thread.
fn task_rows(rows: usize, threads: usize) -> usize {
    let even_share = rows.div_ceil(TASKS_PER_THREAD * threads.max(1));
    (even_share.div_ceil(GROUP_ROWS) * GROUP_ROWS).clamp(GROUP_ROWS, TASK_ROWS)
}

/// A linear layer's weight and bias, packed for one reduced precision.
#[derive(Debug)]
pub struct PackedLinear {
    in_dim: usize,
    out_dim: usize,
    bias: Vec<f32>,
    weight: PackedWeight,
    /// Whether the product runs on AMX tiles (else AVX-512).
    tiles: bool,
}

#[derive(Debug)]
enum PackedWeight {
    Bf16(bf16::Bf16Panels),
    Int8(int8::Int8Panels),
}

impl PackedLinear {
    /// Packs `weight` (out, in) and `bias` (out) for `precision`; `None`
    /// for f32 (candle's matmul runs it). Fails when this CPU lacks the
    /// precision's instructions.
    /// Runs on AMX tiles where this CPU and the OS allow them.
    pub fn pack(weight: &Tensor, bias: &Tensor, precision: Precision) -> Result<Option<Self>> {
        let cpu = CpuFeatures::detect();
        Self::pack_for(weight, bias, precision, cpu.tiles(precision))
    }

    /// As [`PackedLinear::pack`], on AMX tiles if `tiles` (which fails
    /// where they cannot run), else on AVX-512.
    fn pack_for(
        weight: &Tensor,
        bias: &Tensor,
        precision: Precision,
        tiles: bool,
    ) -> Result<Option<Self>> {
        if precision == Precision::F32 {
            return Ok(None);
        }
        let cpu = CpuFeatures::detect();
        cpu.kernels(precision)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        if tiles && !cpu.tiles(precision) {
            candle_core::bail!("{precision} on AMX tiles: this CPU or OS does not allow them");
        }
        let (out_dim, in_dim) = weight.dims2()?;
        let rows = weight.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        let bias = bias.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        if bias.len() != out_dim {
            candle_core::bail!("bias of {} for {out_dim} outputs", bias.len());
        }
        let weight = match precision {
            Precision::Bf16 => PackedWeight::Bf16(bf16::Bf16Panels::pack(&rows, in_dim)),
            Precision::Int8 => PackedWeight::Int8(int8::Int8Panels::pack(&rows, in_dim)),
            Precision::F32 => unreachable!("returned above"),
        };
        Ok(Some(PackedLinear {
            in_dim,
            out_dim,
            bias,
            weight,
            tiles,
        }))
    }

    /// `xs @ weight^T + bias` for `xs` (rows, in) in f32 on the CPU.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let op = PackedOp {
            layer: self,
            gelu: false,
        };
        xs.contiguous()?.apply_op1_no_bwd(&op)
    }

    /// `gelu(xs @ weight^T + bias)` (exact GELU, as
    /// [`super::gelu_erf`]), applied to each work item's rows while they
    /// are in cache instead of in a pass of its own.
    pub fn forward_gelu(&self, xs: &Tensor) -> Result<Tensor> {
        let op = PackedOp {
            layer: self,
            gelu: true,
        };
        xs.contiguous()?.apply_op1_no_bwd(&op)
    }

    /// Multiplies `rows` rows of `xs` (row-major, `in_dim` wide) into
    /// `out` (row-major, `out_dim` wide), writing every element, then
    /// applies GELU if `gelu`.
    fn multiply(&self, xs: &[f32], out: &mut [MaybeUninit<f32>], gelu: bool) {
        let rows = self.task_rows(xs.len() / self.in_dim);
        out.par_chunks_mut(rows * self.out_dim)
            .zip(xs.par_chunks(rows * self.in_dim))
            .for_each(|(out, xs)| {
                let out = self.multiply_rows(xs, out);
                if gelu {
                    gelu_in_place(out);
                }
            });
    }

    /// Rows per parallel work item for an input of `rows` rows.
    fn task_rows(&self, rows: usize) -> usize {
        let threads = rayon::current_num_threads();
        match self.tiles {
            true => amx::task_rows(rows, threads),
            false => task_rows(rows, threads),
        }
    }

    /// One work item on this thread: `out = xs @ weight^T + bias` for
    /// whole rows of `xs` (`in_dim` wide) and `out` (`out_dim` wide);
    /// returns `out`, every element written.
    fn multiply_rows<'o>(&self, xs: &[f32], out: &'o mut [MaybeUninit<f32>]) -> &'o mut [f32] {
        match (&self.weight, self.tiles) {
            (PackedWeight::Bf16(w), false) => w.multiply(xs, &self.bias, out),
            (PackedWeight::Int8(w), false) => w.multiply(xs, &self.bias, out),
            // SAFETY: `tiles` is set only where `CpuFeatures::tiles`
            // found the precision's AMX instructions and Linux's grant.
            (PackedWeight::Bf16(w), true) => unsafe { w.multiply_tiles(xs, &self.bias, out) },
            (PackedWeight::Int8(w), true) => unsafe { w.multiply_tiles(xs, &self.bias, out) },
        }
        // SAFETY: the kernels above wrote every element.
        unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
    }
}

/// Exact GELU ([`super::gelu_erf`]) over `values`, in place.
fn gelu_in_place(values: &mut [f32]) {
    super::with_widest_simd(|| values.iter_mut().for_each(|x| *x = super::gelu(*x)));
}

/// The candle op of a [`PackedLinear`], with GELU after it or not.
struct PackedOp<'a> {
    layer: &'a PackedLinear,
    gelu: bool,
}

impl CustomOp1 for PackedOp<'_> {
    fn name(&self) -> &'static str {
        match (&self.layer.weight, self.gelu) {
            (PackedWeight::Bf16(_), false) => "dg-linear-bf16",
            (PackedWeight::Int8(_), false) => "dg-linear-int8",
            (PackedWeight::Bf16(_), true) => "dg-linear-bf16-gelu",
            (PackedWeight::Int8(_), true) => "dg-linear-int8-gelu",
        }
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::contiguous_f32(self.name(), storage, layout)?;
        let shape = output_shape(self.name(), layout, self.layer)?;
        // The output is not zeroed first: at BERT sizes that pass costs as
        // much as a GELU. SAFETY: `multiply` writes every element.
        let out = unsafe {
            filled_rows(shape.elem_count(), |out| {
                if !out.is_empty() {
                    self.layer.multiply(xs, out, self.gelu);
                }
            })
        };
        Ok((CpuStorage::F32(out), shape))
    }
}

/// The output shape of `layer` on an input of `layout`, checking the
/// input's width.
fn output_shape(op: &str, layout: &Layout, layer: &PackedLinear) -> Result<Shape> {
    let (&in_dim, leading) = layout
        .dims()
        .split_last()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: scalar input")))?;
    if in_dim != layer.in_dim {
        candle_core::bail!("{op}: input width {in_dim}, weight {}", layer.in_dim);
    }
    let mut dims = leading.to_vec();
    dims.push(layer.out_dim);
    Ok(Shape::from(dims))
}

/// A vector of `len` values that `fill` writes, without zeroing them
/// first.
///
/// # Safety
/// `fill` must write every one of the `len` values it is given.
unsafe fn filled_rows(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `fill` wrote all `len` values.
    unsafe { out.set_len(len) };
    out
}

/// Where one micro-kernel call works: `rows` rows from `first`, in one
/// panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TileAt {
    panel: usize,
    first: usize,
    rows: usize,
}

/// The tiles of a `rows` x `out_dim` output, panel by panel (a panel's
/// packed weights stay in cache over its row groups).
fn tiles(rows: usize, out_dim: usize) -> impl Iterator<Item = TileAt> {
    (0..panels(out_dim)).flat_map(move |panel| {
        (0..rows).step_by(GROUP_ROWS).map(move |first| TileAt {
            panel,
            first,
            rows: (rows - first).min(GROUP_ROWS),
        })
    })
}

/// A micro-kernel over up to [`GROUP_ROWS`] rows of one panel.
trait MicroKernel {
    /// Runs it for `R` rows into `out` (`R` rows of the output).
    ///
    /// # Safety
    /// The CPU has the kernel's instructions, and the kernel's slices hold
    /// everything it reads for `R` rows.
    unsafe fn rows<const R: usize>(&self, out: &mut [MaybeUninit<f32>]);
}

/// Runs `kernel` for `rows` (1 to [`GROUP_ROWS`]) rows.
///
/// # Safety
/// As [`MicroKernel::rows`].
unsafe fn run_kernel(kernel: &impl MicroKernel, rows: usize, out: &mut [MaybeUninit<f32>]) {
    match rows {
        1 => kernel.rows::<1>(out),
        2 => kernel.rows::<2>(out),
        3 => kernel.rows::<3>(out),
        4 => kernel.rows::<4>(out),
        5 => kernel.rows::<5>(out),
        _ => kernel.rows::<6>(out),
    }
}

/// The rows of a work item's `xs` (`in_dim` wide), checked against its
/// `out` (`out_dim` wide) and the layer's `bias`.
fn checked_rows(
    xs: &[f32],
    in_dim: usize,
    bias: &[f32],
    out: &[MaybeUninit<f32>],
    out_dim: usize,
) -> usize {
    let rows = xs.len() / in_dim.max(1);
    assert_eq!(out.len(), rows * out_dim, "output rows");
    assert_eq!(bias.len(), out_dim, "bias width");
    rows
}

/// Number of 64-column panels covering `out_dim` columns.
fn panels(out_dim: usize) -> usize {
    out_dim.div_ceil(PANEL)
}

/// Mask of the valid lanes of the 16-lane vector starting at column `col`
/// of `cols` valid columns (0 when none).
pub(super) fn lane_mask(col: usize, cols: usize) -> u16 {
    match cols.saturating_sub(col) {
        0 => 0,
        n if n >= 16 => u16::MAX,
        n => (1u16 << n) - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Each reduced precision on AVX-512 (`false`) and on AMX tiles.
    pub(super) const KERNELS: [(Precision, bool); 4] = [
        (Precision::Bf16, false),
        (Precision::Int8, false),
        (Precision::Bf16, true),
        (Precision::Int8, true),
    ];

    /// Why a test of `precision` (on tiles if `tiles`) cannot run here, if
    /// it cannot.
    pub(super) fn skip_reason(precision: Precision, tiles: bool) -> Option<String> {
        let cpu = CpuFeatures::detect();
        match cpu.kernels(precision) {
            Err(e) => Some(e.to_string()),
            Ok(_) if tiles => cpu.tiles_unavailable(precision),
            Ok(_) => None,
        }
    }

    /// `"bf16 on AMX tiles"` and the like, for messages.
    pub(super) fn kernel_name(precision: Precision, tiles: bool) -> String {
        let unit = if tiles { "AMX tiles" } else { "AVX-512" };
        format!("{precision} on {unit}")
    }

    /// `len` values in [-1, 1) from a xorshift generator.
    pub(super) fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// A tensor of `shape` with [`random`] values.
    pub(super) fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
        let len = shape.iter().product();
        Tensor::from_vec(random(len, seed), shape, &Device::Cpu).unwrap()
    }

    /// A packed layer of random weights and bias, `in_dim` -> `out_dim`.
    pub(super) fn random_layer(
        in_dim: usize,
        out_dim: usize,
        seed: u64,
        (precision, tiles): (Precision, bool),
    ) -> std::sync::Arc<PackedLinear> {
        let w = random_tensor(&[out_dim, in_dim], seed);
        let b = random_tensor(&[out_dim], seed + 1);
        let layer = PackedLinear::pack_for(&w, &b, precision, tiles).unwrap();
        std::sync::Arc::new(layer.unwrap())
    }

    /// A LayerNorm of width `n` (weights about 1), and its weight and bias.
    pub(super) fn random_norm(n: usize) -> (RowNorm, Tensor, Tensor) {
        let weight = (random_tensor(&[n], 7) + 1.0).unwrap();
        let bias = random_tensor(&[n], 8);
        (RowNorm::new(&weight, &bias, 1e-12).unwrap(), weight, bias)
    }

    /// Each kernel this CPU runs, with its name; prints why each other one
    /// is skipped in the test of `what`.
    pub(super) fn runnable_kernels(what: &str) -> Vec<((Precision, bool), String)> {
        KERNELS
            .into_iter()
            .filter_map(|(precision, tiles)| {
                let name = kernel_name(precision, tiles);
                match skip_reason(precision, tiles) {
                    Some(why) => {
                        eprintln!("SKIPPED: {name} {what}: {why}");
                        None
                    }
                    None => Some(((precision, tiles), name)),
                }
            })
            .collect()
    }

    /// A reduced-precision kernel this CPU runs, if any.
    pub(super) fn any_kernel() -> Option<(Precision, bool)> {
        KERNELS
            .into_iter()
            .find(|&(p, t)| skip_reason(p, t).is_none())
    }

    /// `xs @ w^T + b` in f64.
    fn reference(xs: &[f32], w: &[f32], b: &[f32], k: usize) -> Vec<f32> {
        let n = b.len();
        xs.chunks(k)
            .flat_map(|x| {
                (0..n).map(move |j| {
                    let dot: f64 = (0..k).map(|i| x[i] as f64 * w[j * k + i] as f64).sum();
                    (dot + b[j] as f64) as f32
                })
            })
            .collect()
    }

    /// The packed op's output on (rows, k) x (n, k) random data, the
    /// reference of the precision's own rounding, and the exact product.
    struct Outputs {
        kernel: Vec<f32>,
        own_rounding: Vec<f32>,
        exact: Vec<f32>,
    }

    fn run(precision: Precision, tiles: bool, rows: usize, k: usize, n: usize) -> Outputs {
        let xs = random(rows * k, (rows * 131 + k * 7 + n) as u64);
        let w = random(n * k, 1 + n as u64);
        let b = random(n, 2);
        let weight = Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap();
        let bias = Tensor::from_vec(b.clone(), n, &Device::Cpu).unwrap();
        let packed = PackedLinear::pack_for(&weight, &bias, precision, tiles)
            .unwrap()
            .unwrap();
        let input = Tensor::from_vec(xs.clone(), (rows, k), &Device::Cpu).unwrap();
        let got = packed.forward(&input).unwrap();
        assert_eq!(got.dims(), &[rows, n]);
        let own_rounding = match precision {
            Precision::Bf16 => bf16::reference(&xs, &w, &b, k),
            Precision::Int8 => int8::reference(&xs, &w, &b, k),
            Precision::F32 => unreachable!("f32 packs nothing"),
        };
        Outputs {
            kernel: got.flatten_all().unwrap().to_vec1().unwrap(),
            own_rounding,
            exact: reference(&xs, &w, &b, k),
        }
    }

    /// Shapes with every tail: one row, one column, depth 1, partial row
    /// groups, tiles and blocks, task tails, partial vectors and panels,
    /// odd depths, depths of several tiles.
    const SHAPES: [(usize, usize, usize); 12] = [
        (1, 1, 1),
        (1, 384, 384),
        (5, 7, 3),
        (6, 32, 64),
        (7, 33, 65),
        (13, 3, 17),
        (47, 129, 130),
        (49, 384, 1536),
        (97, 1536, 384),
        (3, 2, 200),
        (17, 70, 33),
        (300, 384, 100),
    ];

    fn check_against_own_reference(precision: Precision, tiles: bool, tolerance: f32) {
        let name = kernel_name(precision, tiles);
        if let Some(why) = skip_reason(precision, tiles) {
            eprintln!("SKIPPED: {name} kernel test: {why}");
            return;
        }
        for (rows, k, n) in SHAPES {
            let out = run(precision, tiles, rows, k, n);
            // f32 accumulation (bf16) and the final scaling (int8) round;
            // the error grows about with the square root of the depth.
            let bound = |r: f32| tolerance * (k as f32).sqrt() * (1.0 + r.abs());
            for (i, (g, r)) in out.kernel.iter().zip(&out.own_rounding).enumerate() {
                assert!(
                    (g - r).abs() <= bound(*r),
                    "{name} {rows}x{k}x{n} element {i}: kernel {g}, reference {r}"
                );
            }
        }
    }

    #[test]
    fn bf16_avx512_kernel_matches_its_rounding_on_odd_shapes() {
        check_against_own_reference(Precision::Bf16, false, 1e-5);
    }

    #[test]
    fn int8_avx512_kernel_matches_its_quantisation_on_odd_shapes() {
        check_against_own_reference(Precision::Int8, false, 1e-5);
    }

    #[test]
    fn bf16_amx_kernel_matches_its_rounding_on_odd_shapes() {
        check_against_own_reference(Precision::Bf16, true, 1e-5);
    }

    #[test]
    fn int8_amx_kernel_matches_its_quantisation_on_odd_shapes() {
        check_against_own_reference(Precision::Int8, true, 1e-5);
    }

    #[test]
    fn reduced_precision_stays_close_to_f32() {
        // Dot products of 384 terms in [-1, 1] have a spread of about 11;
        // bf16 keeps 8 bits of mantissa, int8 7 bits of range per row.
        for ((precision, tiles), name) in runnable_kernels("against f32") {
            let bound = match precision {
                Precision::Int8 => 0.3f32,
                _ => 0.1,
            };
            let out = run(precision, tiles, 33, 384, 96);
            let worst = out
                .kernel
                .iter()
                .zip(&out.exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < bound, "{name}: worst error {worst} against f32");
        }
    }

    #[test]
    fn the_fused_gelu_equals_gelu_after_the_layer() {
        for ((precision, tiles), name) in runnable_kernels("with GELU") {
            for (rows, k, n) in [(1, 3, 5), (70, 384, 200)] {
                let w = Tensor::from_vec(random(n * k, 3), (n, k), &Device::Cpu).unwrap();
                let b = Tensor::from_vec(random(n, 4), n, &Device::Cpu).unwrap();
                let packed = PackedLinear::pack_for(&w, &b, precision, tiles)
                    .unwrap()
                    .unwrap();
                let xs = Tensor::from_vec(random(rows * k, 5), (rows, k), &Device::Cpu).unwrap();
                let fused = packed.forward_gelu(&xs).unwrap();
                let apart = super::super::gelu_erf(&packed.forward(&xs).unwrap(), false).unwrap();
                let diff = crate::cpu_kernels::test_support::max_abs_diff(&fused, &apart);
                assert!(diff <= 1e-6, "{name} {rows}x{k}x{n}: {diff}");
            }
        }
    }

    #[test]
    fn f32_packs_nothing_and_masks_cover_tails() {
        let w = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(PackedLinear::pack(&w, &b, Precision::F32)
            .unwrap()
            .is_none());
        assert_eq!(lane_mask(0, 64), u16::MAX);
        assert_eq!(lane_mask(48, 50), 0b11);
        assert_eq!(lane_mask(16, 10), 0);
        assert_eq!(panels(65), 2);
        let all: Vec<TileAt> = tiles(7, 65).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[1],
            TileAt {
                panel: 0,
                first: 6,
                rows: 1
            }
        );
        assert_eq!(
            all[2],
            TileAt {
                panel: 1,
                first: 0,
                rows: 6
            }
        );
    }

    #[test]
    fn work_items_are_whole_row_groups_spread_over_the_threads() {
        assert_eq!(task_rows(4096, 2), TASK_ROWS);
        assert_eq!(task_rows(128, 2), 18);
        assert_eq!(task_rows(64, 2), 12);
        assert_eq!(task_rows(1, 2), GROUP_ROWS);
        assert_eq!(task_rows(100, 0), 30, "no threads counts as one");
    }
}
