//! Self-attention at inference, fused per (batch item, head) on AVX-512:
//! `softmax(q k^T / sqrt(d) + mask) v` without materialising the scores of
//! the whole batch. One work item transposes its head's keys into a small
//! buffer, then takes the queries eight rows at a time: their scores (16
//! keys per vector, one broadcast query value per FMA), the masked softmax
//! of each row, and their context rows (16 head columns per vector, one
//! broadcast probability per FMA), written straight into the `(batch, seq,
//! hidden)` output the output projection reads.
//!
//! The unfused path (`batched_matmul`, [`super::attention_softmax`]) writes
//! and reads `batch * heads * seq * seq` scores twice and splits and merges
//! the heads with copies; at 128 tokens that traffic, not the arithmetic,
//! was most of attention's time. Training keeps the unfused path (it needs
//! the probabilities for the backward pass).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::is_cpu_f32;
use super::packed::{amx, lane_mask, round_row};
use crate::precision::{CpuFeatures, Precision};

/// How the attention's two products (scores and context) run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AttentionProducts {
    /// f32 FMAs on AVX-512.
    #[default]
    F32,
    /// bf16 products on AMX tiles with f32 sums (the softmax stays f32),
    /// where the CPU and OS allow AMX-BF16 and heads are a multiple of 32
    /// wide; else as [`AttentionProducts::F32`].
    Bf16Tiles,
}

impl AttentionProducts {
    /// The products the fused kernel runs for `heads` heads of a `hidden`
    /// width on this CPU: these, or f32 where the tiles cannot take the
    /// head width or the CPU or OS refuses them; `None` where the fused
    /// kernel does not run at all (no AVX-512F, or heads that are not
    /// whole vectors wide).
    pub(super) fn on_this_cpu(self, hidden: usize, heads: usize) -> Option<Self> {
        if !avx512() || heads == 0 || !hidden.is_multiple_of(heads) {
            return None;
        }
        let width = hidden / heads;
        if !width.is_multiple_of(LANES) {
            return None;
        }
        let tiles = self == AttentionProducts::Bf16Tiles
            && width.is_multiple_of(2 * LANES)
            && CpuFeatures::detect().tiles(Precision::Bf16);
        Some(match tiles {
            true => AttentionProducts::Bf16Tiles,
            false => AttentionProducts::F32,
        })
    }
}

/// Query rows per block: eight accumulators of scores or context.
const ROWS: usize = 8;
/// f32 lanes of an AVX-512 vector.
const LANES: usize = 16;

/// `softmax(q k^T / sqrt(d) + mask_bias) v` for `q`, `k`, `v` of shape
/// (batch, seq, hidden) split into `heads` heads, and `mask_bias` (batch,
/// 1, 1, seq): the attention context, (batch, seq, hidden). `q`, `k` and
/// `v` are read in place when their rows are evenly spaced (such as three
/// column ranges of one (batch, seq, 3 hidden) product), else copied. `None` where
/// the fused kernel does not run (not f32 on the CPU, no AVX-512F, or a
/// head width that is not a multiple of 16); the caller then takes the
/// unfused path. Not differentiable: for inference only.
pub fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
    products: AttentionProducts,
) -> Result<Option<Tensor>> {
    let (batch, seq, hidden) = q.dims3()?;
    let runs = is_cpu_f32(q)
        && is_cpu_f32(k)
        && is_cpu_f32(v)
        && k.dims() == q.dims()
        && v.dims() == q.dims()
        && mask_bias.dims() == [batch, 1, 1, seq];
    let Some(products) = products.on_this_cpu(hidden, heads).filter(|_| runs) else {
        return Ok(None);
    };
    let mask = mask_bias.flatten_all()?.to_vec1::<f32>()?;
    let op = FusedAttention {
        heads,
        mask,
        products,
    };
    let strides = [q, k, v].map(|t| row_stride(t.stride(), seq, hidden));
    let context = match strides {
        [Some(a), Some(b), Some(c)] if a == b && b == c => q.apply_op3_no_bwd(k, v, &op)?,
        _ => q
            .contiguous()?
            .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &op)?,
    };
    Ok(Some(context))
}

/// The distance between rows of a (batch, seq, hidden) layout with these
/// strides, if its rows are evenly spaced and each row is contiguous.
fn row_stride(stride: &[usize], seq: usize, hidden: usize) -> Option<usize> {
    match *stride {
        [batch, row, 1] if row >= hidden && (batch == seq * row || seq == 1) => Some(row),
        _ => None,
    }
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

struct FusedAttention {
    heads: usize,
    /// The additive mask, `batch * seq`.
    mask: Vec<f32>,
    products: AttentionProducts,
}

/// One head of one batch item: where its rows start and how they are laid
/// out in the inputs and in the (batch, seq, hidden) output.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Offset of the head's first input value: `item * seq * stride +
    /// head * width`.
    base: usize,
    /// Distance between input rows.
    stride: usize,
    /// Offset of the head's first output value: `item * seq * hidden +
    /// head * width`.
    out_base: usize,
    seq: usize,
    hidden: usize,
    width: usize,
    scale: f32,
}

/// A work item's buffers, reused over the items of one thread.
pub(super) struct Scratch {
    /// The head's keys transposed: `width` rows of `seq` rounded up to 16.
    keys_t: Vec<f32>,
    /// A block's scores, then its probabilities: [`ROWS`] rows as long.
    scores: Vec<f32>,
}

impl Scratch {
    fn new(seq: usize, width: usize) -> Self {
        let padded = seq.next_multiple_of(LANES);
        Scratch {
            keys_t: vec![0.0; width * padded],
            scores: vec![0.0; ROWS * padded],
        }
    }
}

/// The softmax, in place, of the first `len` values of `row` (whole
/// vectors long; the lanes past `len` are left undefined).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn softmax_row(row: &mut [f32], len: usize) {
    use std::arch::x86_64::*;
    debug_assert!(row.len() >= len.next_multiple_of(LANES));
    let start = row.as_mut_ptr();
    let at = |col: usize| start.add(col);
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for col in (0..len).step_by(LANES) {
        max = _mm512_mask_max_ps(max, lane_mask(col, len), max, _mm512_loadu_ps(at(col)));
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
    let mut sum = _mm512_setzero_ps();
    for col in (0..len).step_by(LANES) {
        let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(at(col)), max));
        sum = _mm512_mask_add_ps(sum, lane_mask(col, len), sum, e);
        _mm512_storeu_ps(at(col), e);
    }
    let inverse = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
    for col in (0..len).step_by(LANES) {
        _mm512_storeu_ps(at(col), _mm512_mul_ps(_mm512_loadu_ps(at(col)), inverse));
    }
}

/// e^x on 16 lanes, as [`super::exp`]: `x = n ln 2 + r`, the degree-6
/// Taylor polynomial of e^r in FMAs, times 2^n by `vscalefps`; 0 below
/// -87.3.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn exp16(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let set = _mm512_set1_ps;
    let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, set(-87.3));
    let x = _mm512_min_ps(_mm512_max_ps(x, set(-87.3)), set(88.3));
    // Round to nearest (imm 0), exceptions suppressed (8).
    let n = _mm512_roundscale_ps::<8>(_mm512_mul_ps(x, set(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(n, set(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, set(LN2_LO), r);
    let mut p = set(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, set(c));
    }
    _mm512_maskz_scalef_ps(!underflow, p, n)
}

/// The output pointer, shared by work items that write disjoint parts.
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: every work item writes only its own head's columns of its own
// batch item, so no two items write the same element.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

impl CustomOp3 for FusedAttention {
    fn name(&self) -> &'static str {
        "dg-fused-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_layout: &Layout,
        k: &CpuStorage,
        k_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, seq, hidden) = q_layout.shape().dims3()?;
        if k_layout.dims() != q_layout.dims() || v_layout.dims() != q_layout.dims() {
            candle_core::bail!("{}: q, k and v must have one shape", self.name());
        }
        if self.mask.len() != batch * seq {
            candle_core::bail!("{}: the mask must be (batch, 1, 1, seq)", self.name());
        }
        let inputs = [(q, q_layout), (k, k_layout), (v, v_layout)];
        let strides = inputs.map(|(_, l)| row_stride(l.stride(), seq, hidden));
        let stride = match strides {
            [Some(a), Some(b), Some(c)] if a == b && b == c => a,
            _ => candle_core::bail!("{}: q, k and v need one row stride", self.name()),
        };
        let [q, k, v] = inputs.map(|(storage, layout)| match storage {
            CpuStorage::F32(data) => Ok(&data[layout.start_offset()..]),
            _ => Err(candle_core::Error::Msg(format!(
                "{}: expected f32",
                self.name()
            ))),
        });
        let (q, k, v) = (q?, k?, v?);
        let needed = (batch * seq).saturating_sub(1) * stride + hidden;
        if q.len().min(k.len()).min(v.len()) < needed {
            candle_core::bail!("{}: inputs shorter than their layout", self.name());
        }
        let width = hidden / self.heads;
        let scale = 1.0 / (width as f32).sqrt();
        let mut out = Vec::<f32>::with_capacity(batch * seq * hidden);
        let output = Output(out.as_mut_ptr());
        let head = |item: usize| {
            let (b, h) = (item / self.heads, item % self.heads);
            let head = Head {
                base: b * seq * stride + h * width,
                stride,
                out_base: b * seq * hidden + h * width,
                seq,
                hidden,
                width,
                scale,
            };
            (head, &self.mask[b * seq..(b + 1) * seq])
        };
        (0..batch * self.heads).into_par_iter().for_each_init(
            || HeadScratch::new(self.products, seq, width),
            |scratch, item| {
                let (head, mask) = head(item);
                // SAFETY: `fused_attention` ran this op only with the
                // products `on_this_cpu` chose; `out` is (batch, seq,
                // hidden) and the item writes its own head's columns of
                // its own item.
                unsafe { scratch.attend(head, [q, k, v], mask, output) };
            },
        );
        // SAFETY: the work items wrote every head's columns of every row.
        unsafe { out.set_len(batch * seq * hidden) };
        Ok((CpuStorage::F32(out), q_layout.shape().clone()))
    }
}

/// A thread's buffers for attending heads of one shape with one kind of
/// products.
pub(super) enum HeadScratch {
    F32(Scratch),
    Tiles(TileScratch),
}

impl HeadScratch {
    /// Buffers for heads of `seq` rows and `width` columns.
    pub(super) fn new(products: AttentionProducts, seq: usize, width: usize) -> Self {
        match products {
            AttentionProducts::F32 => HeadScratch::F32(Scratch::new(seq, width)),
            AttentionProducts::Bf16Tiles => HeadScratch::Tiles(TileScratch::new(seq, width)),
        }
    }

    /// Attention of one head of one batch item, written into `out`.
    ///
    /// # Safety
    /// The buffers' products are ones [`AttentionProducts::on_this_cpu`]
    /// returned for this head's width; the inputs and `out` cover `head`.
    unsafe fn attend(&mut self, head: Head, qkv: [&[f32]; 3], mask: &[f32], out: Output) {
        match self {
            HeadScratch::F32(scratch) => attend(head, qkv, mask, scratch, out),
            HeadScratch::Tiles(scratch) => attend_tiles(head, qkv, mask, scratch, out),
        }
    }
}

/// The attention context of every head of one batch item, on this
/// thread: `qkv` holds the item's `seq` rows of queries, keys and values
/// side by side (`3 * hidden` wide, as the packed query-key-value layer
/// writes them), `out` its `seq` rows of context (`hidden` wide, every
/// element written), `mask` its additive key mask.
///
/// # Safety
/// `scratch` was made for `products` that [`AttentionProducts::on_this_cpu`]
/// returned for `hidden` and `heads`, with this `seq`.
pub(super) unsafe fn attend_item(
    qkv: &[f32],
    [seq, hidden, heads]: [usize; 3],
    mask: &[f32],
    scratch: &mut HeadScratch,
    out: &mut [std::mem::MaybeUninit<f32>],
) {
    assert!(qkv.len() >= seq * 3 * hidden && out.len() >= seq * hidden && mask.len() == seq);
    let width = hidden / heads;
    let output = Output(out.as_mut_ptr().cast());
    let parts = [qkv, &qkv[hidden..], &qkv[2 * hidden..]];
    for h in 0..heads {
        let head = Head {
            base: h * width,
            stride: 3 * hidden,
            out_base: h * width,
            seq,
            hidden,
            width,
            scale: 1.0 / (width as f32).sqrt(),
        };
        scratch.attend(head, parts, mask, output);
    }
}

/// Attention of one head of one batch item, written into `output`.
///
/// # Safety
/// AVX-512F; the tensors and `output` are (batch, seq, hidden) and cover
/// `head`.
#[target_feature(enable = "avx512f")]
unsafe fn attend(head: Head, [q, k, v]: [&[f32]; 3], mask: &[f32], s: &mut Scratch, out: Output) {
    let padded = head.seq.next_multiple_of(LANES);
    for j in 0..head.seq {
        let key = &k[head.base + j * head.stride..][..head.width];
        for (d, &x) in key.iter().enumerate() {
            s.keys_t[d * padded + j] = x;
        }
    }
    for first in (0..head.seq).step_by(ROWS) {
        let rows = (head.seq - first).min(ROWS);
        let block = Block {
            head,
            first,
            padded,
        };
        match rows {
            1 => block.run::<1>(q, v, mask, s, out),
            2 => block.run::<2>(q, v, mask, s, out),
            3 => block.run::<3>(q, v, mask, s, out),
            4 => block.run::<4>(q, v, mask, s, out),
            5 => block.run::<5>(q, v, mask, s, out),
            6 => block.run::<6>(q, v, mask, s, out),
            7 => block.run::<7>(q, v, mask, s, out),
            _ => block.run::<8>(q, v, mask, s, out),
        }
    }
}

/// A work item's buffers on AMX tiles (bf16 pairs as `u32`), zeroed once
/// so that padding stays zero.
pub(super) struct TileScratch {
    /// The queries, row-major pairs (A tiles): `seq` rounded up to 16 rows.
    queries: Vec<u32>,
    /// The keys in the VNNI layout (B tiles): per 16 keys, per pair of
    /// head columns, 16 keys.
    keys: Vec<u32>,
    /// The values in the VNNI layout: per 16 head columns, per pair of
    /// keys (`seq` rounded up to 32), 16 columns.
    values: Vec<u32>,
    /// 16 rows of scores, then of probabilities (`seq` rounded up to 16).
    scores: Vec<f32>,
    /// 16 rows of probabilities as pairs (A tiles).
    probs: Vec<u32>,
    /// A key's row of pairs being converted.
    row: Vec<u32>,
    /// A 16 x 16 output tile with fewer than 16 valid rows.
    tail: Vec<f32>,
}

impl TileScratch {
    fn new(seq: usize, width: usize) -> Self {
        let (keys16, pairs) = (seq.next_multiple_of(LANES), width / 2);
        let key_pairs = seq.next_multiple_of(2 * LANES) / 2;
        TileScratch {
            queries: vec![0; keys16 * pairs],
            keys: vec![0; keys16 * pairs],
            values: vec![0; width * key_pairs],
            scores: vec![0.0; LANES * keys16],
            probs: vec![0; LANES * key_pairs],
            row: vec![0; pairs],
            tail: vec![0.0; LANES * LANES],
        }
    }
}

/// Attention of one head of one batch item on AMX tiles: the queries,
/// keys and values rounded to bf16 and laid out as tiles (the values
/// interleaved two keys at a time with one permute), then 16 query rows
/// at a time their scores (one tile per 16 keys), the scaled, masked
/// softmax in f32 with the probabilities rounded to bf16 on the way out,
/// and the context (one tile per 16 head columns) stored into `output`.
///
/// # Safety
/// AMX-TILE and AMX-BF16 granted, AVX-512F/BW and AVX512-BF16; the head
/// width is a multiple of 32; the tensors and `output` cover `head`.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn attend_tiles<'a>(
    head: Head,
    [q, k, v]: [&'a [f32]; 3],
    mask: &[f32],
    t: &mut TileScratch,
    out: Output,
) {
    let Head { seq, width, .. } = head;
    let pairs = width / 2;
    let keys16 = seq.next_multiple_of(LANES);
    let key_pairs = seq.next_multiple_of(2 * LANES) / 2;
    let (base, stride) = (head.base, head.stride);
    let row = |x: &'a [f32], i: usize| -> &'a [f32] { &x[base + i * stride..][..width] };
    for i in 0..seq {
        round_row(row(q, i), &mut t.queries[i * pairs..][..pairs]);
    }
    for j in 0..seq {
        round_row(row(k, j), &mut t.row);
        for (p, &pair) in t.row.iter().enumerate() {
            t.keys[((j / LANES) * pairs + p) * LANES + j % LANES] = pair;
        }
    }
    for kp in 0..seq.div_ceil(2) {
        let second = (2 * kp + 1 < seq).then(|| row(v, 2 * kp + 1));
        let dst = t.values.as_mut_ptr().add(kp * LANES);
        interleave_values(row(v, 2 * kp), second, dst, key_pairs * LANES);
    }
    amx::configure();
    for first in (0..seq).step_by(LANES) {
        tile_rows(head, first, mask, t, out, [keys16, key_pairs]);
    }
    amx::release();
}

/// Scores, softmax and context of the 16 query rows from `first`.
///
/// # Safety
/// As [`attend_tiles`], with the tile configuration loaded.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[inline]
unsafe fn tile_rows(
    head: Head,
    first: usize,
    mask: &[f32],
    t: &mut TileScratch,
    out: Output,
    [keys16, key_pairs]: [usize; 2],
) {
    let Head { seq, width, .. } = head;
    let (pairs, rows) = (width / 2, (seq - first).min(LANES));
    let queries = t.queries.as_ptr().add(first * pairs).cast::<u8>();
    for key_tile in 0..keys16 / LANES {
        amx::bf16_tile(
            queries,
            4 * pairs,
            t.keys.as_ptr().add(key_tile * pairs * LANES).cast(),
            width / (2 * LANES),
            t.scores.as_mut_ptr().add(key_tile * LANES).cast(),
            4 * keys16,
        );
    }
    for r in 0..rows {
        let scores = &mut t.scores[r * keys16..][..keys16];
        let probs = &mut t.probs[r * key_pairs..][..key_pairs];
        softmax_to_pairs(scores, mask, head.scale, seq, probs);
    }
    for col in (0..width).step_by(LANES) {
        let dst = out.0.add(head.out_base + first * head.hidden + col);
        let (c, c_stride) = match rows {
            LANES => (dst, 4 * head.hidden),
            _ => (t.tail.as_mut_ptr(), 4 * LANES),
        };
        amx::bf16_tile(
            t.probs.as_ptr().cast(),
            4 * key_pairs,
            t.values.as_ptr().add(col * key_pairs).cast(),
            key_pairs / LANES,
            c.cast(),
            c_stride,
        );
        if rows < LANES {
            for r in 0..rows {
                let src = &t.tail[r * LANES..][..LANES];
                std::ptr::copy_nonoverlapping(src.as_ptr(), dst.add(r * head.hidden), LANES);
            }
        }
    }
}

/// Two keys' value rows as bf16 pairs in the VNNI layout: for each 16
/// head columns `c`, 16 `u32` at `dst + (c / 16) * tile_stride` holding
/// `(first[c + i], second[c + i])` (0 for a missing second key).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[inline]
unsafe fn interleave_values(
    first: &[f32],
    second: Option<&[f32]>,
    dst: *mut u32,
    tile_stride: usize,
) {
    use std::arch::x86_64::*;
    // Lane 2i takes bf16 i of the first row, lane 2i + 1 bf16 i of the second.
    static INTERLEAVE: [u16; 32] = {
        let mut idx = [0u16; 32];
        let mut i = 0;
        while i < 16 {
            idx[2 * i] = i as u16;
            idx[2 * i + 1] = 16 + i as u16;
            i += 1;
        }
        idx
    };
    let order = _mm512_loadu_si512(INTERLEAVE.as_ptr().cast());
    for col in (0..first.len()).step_by(LANES) {
        let a = _mm512_loadu_ps(first.as_ptr().add(col));
        let b = second.map_or(_mm512_setzero_ps(), |s| {
            _mm512_loadu_ps(s.as_ptr().add(col))
        });
        let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(b, a));
        let pairs = _mm512_permutexvar_epi16(order, both);
        _mm512_storeu_si512(dst.add(col / LANES * tile_stride).cast(), pairs);
    }
}

/// The softmax of `row[j] * scale + mask[j]` over the first `len` values,
/// rounded to bf16 pairs into `dst` (zeros past `len`, up to a whole 32);
/// `row` keeps the unrounded probabilities.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[inline]
unsafe fn softmax_to_pairs(row: &mut [f32], mask: &[f32], scale: f32, len: usize, dst: &mut [u32]) {
    use std::arch::x86_64::*;
    debug_assert!(
        row.len() >= len.next_multiple_of(LANES)
            && 2 * dst.len() >= len.next_multiple_of(2 * LANES)
    );
    let at = row.as_mut_ptr();
    let scale = _mm512_set1_ps(scale);
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for col in (0..len).step_by(LANES) {
        let lanes = lane_mask(col, len);
        let bias = _mm512_maskz_loadu_ps(lanes, mask.as_ptr().add(col));
        let x = _mm512_fmadd_ps(_mm512_loadu_ps(at.add(col)), scale, bias);
        _mm512_storeu_ps(at.add(col), x);
        max = _mm512_mask_max_ps(max, lanes, max, x);
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
    let mut sum = _mm512_setzero_ps();
    for col in (0..len).step_by(LANES) {
        let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(at.add(col)), max));
        sum = _mm512_mask_add_ps(sum, lane_mask(col, len), sum, e);
        _mm512_storeu_ps(at.add(col), e);
    }
    let inverse = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
    let out = dst.as_mut_ptr();
    for col in (0..len).step_by(2 * LANES) {
        let lo = _mm512_maskz_loadu_ps(lane_mask(col, len), at.add(col));
        let hi = _mm512_maskz_loadu_ps(lane_mask(col + LANES, len), at.wrapping_add(col + LANES));
        let pairs = _mm512_cvtne2ps_pbh(_mm512_mul_ps(hi, inverse), _mm512_mul_ps(lo, inverse));
        _mm512_storeu_si512(
            out.add(col / 2).cast(),
            std::mem::transmute::<__m512bh, __m512i>(pairs),
        );
    }
}

/// `R` query rows from `first` of one head.
#[derive(Debug, Clone, Copy)]
struct Block {
    head: Head,
    first: usize,
    /// The sequence rounded up to whole vectors.
    padded: usize,
}

impl Block {
    /// Scores, softmax and context of the block's rows.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const R: usize>(
        self,
        q: &[f32],
        v: &[f32],
        mask: &[f32],
        s: &mut Scratch,
        out: Output,
    ) {
        self.scores::<R>(q, &s.keys_t, mask, &mut s.scores);
        for r in 0..R {
            softmax_row(
                &mut s.scores[r * self.padded..][..self.padded],
                self.head.seq,
            );
        }
        self.context::<R>(v, &s.scores, out);
    }

    /// `scores[r][j] = q[first + r] . k[j] * scale + mask[j]` for every
    /// key `j` (the padded keys are never read).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn scores<const R: usize>(
        &self,
        q: &[f32],
        keys_t: &[f32],
        mask: &[f32],
        scores: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let Head {
            base,
            stride,
            width,
            scale,
            ..
        } = self.head;
        let query = |r: usize| q.as_ptr().add(base + (self.first + r) * stride);
        let scale = _mm512_set1_ps(scale);
        assert!(keys_t.len() >= width * self.padded && scores.len() >= R * self.padded);
        for col in (0..self.padded).step_by(LANES) {
            let mut acc = [_mm512_setzero_ps(); R];
            for d in 0..width {
                let keys = _mm512_loadu_ps(keys_t.as_ptr().add(d * self.padded + col));
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*query(r).add(d)), keys, *acc);
                }
            }
            let keys = lane_mask(col, self.head.seq);
            let bias = _mm512_maskz_loadu_ps(keys, mask.as_ptr().add(col));
            for (r, &acc) in acc.iter().enumerate() {
                let dst = scores.as_mut_ptr().add(r * self.padded + col);
                _mm512_storeu_ps(dst, _mm512_fmadd_ps(acc, scale, bias));
            }
        }
    }

    /// `out[first + r] = sum_j probs[r][j] v[j]` over the head's columns.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn context<const R: usize>(&self, v: &[f32], probs: &[f32], out: Output) {
        use std::arch::x86_64::*;
        let Head {
            base,
            stride,
            out_base,
            seq,
            hidden,
            width,
            ..
        } = self.head;
        assert!(probs.len() >= R * self.padded);
        assert!(v.len() >= base + (seq - 1) * stride + width);
        for col in (0..width).step_by(LANES) {
            let mut acc = [_mm512_setzero_ps(); R];
            for j in 0..seq {
                let values = _mm512_loadu_ps(v.as_ptr().add(base + j * stride + col));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let p = _mm512_set1_ps(*probs.get_unchecked(r * self.padded + j));
                    *acc = _mm512_fmadd_ps(p, values, *acc);
                }
            }
            for (r, &acc) in acc.iter().enumerate() {
                let dst = out.0.add(out_base + (self.first + r) * hidden + col);
                _mm512_storeu_ps(dst, acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_kernels::{attention_softmax, batched_matmul, test_support::max_abs_diff};
    use candle_core::{DType, Device};

    /// The unfused path's context, (batch, seq, hidden).
    fn unfused(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize) -> Tensor {
        let (b, s, h) = q.dims3().unwrap();
        let split = |x: &Tensor| {
            x.reshape((b, s, heads, h / heads))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let scale = 1.0 / ((h / heads) as f64).sqrt();
        let (q, k, v) = ((split(q) * scale).unwrap(), split(k), split(v));
        let scores = batched_matmul(&q, &k.t().unwrap(), false).unwrap();
        let probs = attention_softmax(&scores, mask, false).unwrap();
        batched_matmul(&probs, &v, false)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, s, h))
            .unwrap()
    }

    /// A mask with the last `pad` keys of every other item masked out.
    fn mask(batch: usize, seq: usize, pad: usize) -> Tensor {
        let values: Vec<f32> = (0..batch * seq)
            .map(|i| {
                let (item, key) = (i / seq, i % seq);
                if item % 2 == 1 && key + pad >= seq && key > 0 {
                    -1e4
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_vec(values, (batch, 1, 1, seq), &Device::Cpu).unwrap()
    }

    /// The largest difference of the fused attention from the unfused path
    /// over shapes with every tail (one token, one head, partial blocks of
    /// rows and keys, wide heads), on separate tensors and on column
    /// ranges of one (as the packed query-key-value layer gives them).
    fn worst_difference(products: AttentionProducts, widths: &[usize]) -> f32 {
        let mut worst = 0f32;
        for (batch, seq, heads) in [(1, 1, 1), (2, 7, 3), (3, 17, 12), (2, 33, 2), (4, 128, 12)] {
            for &width in widths {
                let hidden = heads * width;
                let rand = |mean: f32| {
                    Tensor::randn(mean, 1.0, (batch, seq, hidden), &Device::Cpu).unwrap()
                };
                let (q, k, v) = (rand(0.0), rand(0.1), rand(-0.1));
                let mask = mask(batch, seq, seq / 3);
                let want = unfused(&q, &k, &v, &mask, heads);
                let qkv = Tensor::cat(&[&q, &k, &v], 2).unwrap();
                let views = [0, 1, 2].map(|i| qkv.narrow(2, i * hidden, hidden).unwrap());
                for [q, k, v] in [[q.clone(), k.clone(), v.clone()], views] {
                    let fused = fused_attention(&q, &k, &v, &mask, heads, products)
                        .unwrap()
                        .expect("runs on AVX-512");
                    assert_eq!(fused.dims(), want.dims());
                    worst = worst.max(max_abs_diff(&fused, &want));
                }
            }
        }
        worst
    }

    #[test]
    fn fused_attention_matches_the_unfused_path_on_odd_shapes() {
        if !avx512() {
            eprintln!("SKIPPED: fused attention: this CPU lacks AVX-512F");
            return;
        }
        let worst = worst_difference(AttentionProducts::F32, &[16, 32, 64]);
        assert!(worst < 1e-5, "f32: {worst}");
    }

    #[test]
    fn bf16_tile_attention_stays_close_to_the_f32_path() {
        let cpu = CpuFeatures::detect();
        if let Some(why) = cpu.tiles_unavailable(Precision::Bf16) {
            eprintln!("SKIPPED: attention on AMX tiles: {why}");
            return;
        }
        // Unit-variance inputs: bf16 keeps 8 bits of each product's
        // operands, so scores and outputs move by about 1e-2.
        let worst = worst_difference(AttentionProducts::Bf16Tiles, &[32, 64]);
        assert!(worst < 0.06, "bf16 tiles: {worst}");
        assert!(
            worst > 0.0,
            "bf16 tiles: identical to f32, the tiles did not run"
        );
    }

    #[test]
    fn vector_exp_matches_the_scalar_one() {
        if !avx512() {
            eprintln!("SKIPPED: vector exp: this CPU lacks AVX-512F");
            return;
        }
        let xs: Vec<f32> = (0..4000).map(|i| -100.0 + i as f32 * 0.047).collect();
        for chunk in xs.chunks_exact(LANES) {
            let mut got = [0f32; LANES];
            // SAFETY: AVX-512F checked above.
            unsafe {
                use std::arch::x86_64::*;
                let e = exp16(_mm512_loadu_ps(chunk.as_ptr()));
                _mm512_storeu_ps(got.as_mut_ptr(), e);
            }
            for (&x, &g) in chunk.iter().zip(&got) {
                let want = crate::cpu_kernels::exp(x);
                assert!(
                    (g - want).abs() <= 4e-7 * want.abs(),
                    "exp({x}): {g}, scalar {want}"
                );
            }
        }
    }

    #[test]
    fn evenly_spaced_rows_are_read_in_place() {
        assert_eq!(row_stride(&[12, 4, 1], 3, 4), Some(4));
        assert_eq!(row_stride(&[36, 12, 1], 3, 4), Some(12));
        assert_eq!(row_stride(&[99, 12, 1], 1, 4), Some(12), "one row per item");
        assert_eq!(row_stride(&[12, 1, 3], 3, 4), None, "transposed");
        assert_eq!(
            row_stride(&[40, 12, 1], 3, 4),
            None,
            "items not evenly spaced"
        );
    }

    #[test]
    fn shapes_it_cannot_run_fall_back() {
        let q = Tensor::zeros((1, 4, 24), DType::F32, &Device::Cpu).unwrap();
        let mask = Tensor::zeros((1, 1, 1, 4), DType::F32, &Device::Cpu).unwrap();
        // 24 / 2 = 12 columns per head: not whole vectors.
        assert!(
            fused_attention(&q, &q, &q, &mask, 2, AttentionProducts::F32)
                .unwrap()
                .is_none()
        );
        let wrong_mask = Tensor::zeros((1, 1, 1, 5), DType::F32, &Device::Cpu).unwrap();
        let q = Tensor::zeros((1, 4, 32), DType::F32, &Device::Cpu).unwrap();
        assert!(
            fused_attention(&q, &q, &q, &wrong_mask, 2, AttentionProducts::F32)
                .unwrap()
                .is_none()
        );
        let f64s = q.to_dtype(DType::F64).unwrap();
        assert!(
            fused_attention(&f64s, &f64s, &f64s, &mask, 2, AttentionProducts::F32)
                .unwrap()
                .is_none()
        );
    }
}
