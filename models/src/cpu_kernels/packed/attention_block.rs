//! BERT's whole attention block as one op at reduced-precision inference,
//! one batch item per work item: the packed query-key-value projection of
//! the item's rows, the fused attention of its heads, then the output
//! projection with its residual add and LayerNorm.
//!
//! Apart, the projection writes a (batch, seq, 3 hidden) f32 tensor that
//! the attention reads back head by head, 32 columns out of every
//! 1152-wide row, and the attention writes a (batch, seq, hidden) context
//! that the output projection reads back: 25 MB each way per layer at
//! batch 32 x 128 tokens. Here an item's rows of both stay in buffers of
//! the work item (590 kB and 197 kB at 128 tokens), in its core's L2
//! cache. A batch too small to give every thread several items takes the
//! ops apart, which spread one item's heads and rows over the threads.

use std::mem::MaybeUninit;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::fused::PackedAddNorm;
use super::{filled_rows, output_shape, PackedLinear};
use crate::cpu_kernels::attention::{attend_item, AttentionProducts, HeadScratch};
use crate::cpu_kernels::is_cpu_f32;

/// Batch items per thread at least for the op to run: with fewer, some
/// threads would idle while others attend.
const ITEMS_PER_THREAD: usize = 4;

/// The attention block of one layer with packed projections.
#[derive(Debug, Clone)]
pub struct PackedAttention {
    qkv: Arc<PackedLinear>,
    output: PackedAddNorm,
    heads: usize,
    products: AttentionProducts,
}

impl PackedAttention {
    /// Fuses `qkv` (hidden -> 3 hidden: queries, keys, values side by
    /// side), the attention of `heads` heads with `products`, and `output`;
    /// fails when the widths do not chain. `None` where the fused attention
    /// kernel cannot run on this CPU at these widths.
    pub fn new(
        qkv: Arc<PackedLinear>,
        output: PackedAddNorm,
        heads: usize,
        products: AttentionProducts,
    ) -> Result<Option<Self>> {
        let hidden = qkv.in_dim;
        if qkv.out_dim != 3 * hidden || output.dims() != (hidden, hidden) {
            candle_core::bail!(
                "attention block of {hidden}->{} and {:?} projections",
                qkv.out_dim,
                output.dims()
            );
        }
        Ok(products
            .on_this_cpu(hidden, heads)
            .map(|products| PackedAttention {
                qkv,
                output,
                heads,
                products,
            }))
    }

    /// The block on `xs` (batch, seq, hidden) with `mask_bias` (batch, 1,
    /// 1, seq); `None` (the caller runs the ops apart) unless both are f32
    /// on the CPU and the batch has [`ITEMS_PER_THREAD`] items per thread.
    pub fn forward(&self, xs: &Tensor, mask_bias: &Tensor) -> Result<Option<Tensor>> {
        let (batch, seq, _) = xs.dims3()?;
        let f32_on_cpu = is_cpu_f32(xs) && is_cpu_f32(mask_bias);
        if !f32_on_cpu || seq == 0 || batch < ITEMS_PER_THREAD * rayon::current_num_threads() {
            return Ok(None);
        }
        if mask_bias.dims() != [batch, 1, 1, seq] {
            candle_core::bail!(
                "attention mask {:?} for {batch} items of {seq} tokens",
                mask_bias.dims()
            );
        }
        let mask = mask_bias.contiguous()?;
        xs.contiguous()?.apply_op2_no_bwd(&mask, self).map(Some)
    }

    /// One batch item on this thread: `out = norm(attention(xs) @ output
    /// + xs)` through the work item's `buffers`.
    fn item(
        &self,
        xs: &[f32],
        mask: &[f32],
        out: &mut [MaybeUninit<f32>],
        buffers: &mut ItemBuffers,
    ) {
        let (hidden, seq) = (self.qkv.in_dim, mask.len());
        let qkv = self.qkv.multiply_rows(
            xs,
            &mut buffers.qkv.spare_capacity_mut()[..3 * seq * hidden],
        );
        let context = &mut buffers.context.spare_capacity_mut()[..seq * hidden];
        // SAFETY: `heads` was made for `products`, which `on_this_cpu`
        // returned for these widths, and for this `seq`.
        unsafe {
            attend_item(
                qkv,
                [seq, hidden, self.heads],
                mask,
                &mut buffers.heads,
                context,
            )
        };
        // SAFETY: `attend_item` wrote every element of `context`.
        let context = unsafe { &*(context as *const [MaybeUninit<f32>] as *const [f32]) };
        self.output.rows(context, xs, out);
    }
}

/// A work item's buffers, reused over the items of one thread.
struct ItemBuffers {
    /// The item's query-key-value rows (capacity only).
    qkv: Vec<f32>,
    /// The item's attention context (capacity only).
    context: Vec<f32>,
    heads: HeadScratch,
}

impl CustomOp2 for PackedAttention {
    fn name(&self) -> &'static str {
        "dg-attention-block"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = crate::cpu_kernels::contiguous_f32(self.name(), xs, xs_layout)?;
        let mask = crate::cpu_kernels::contiguous_f32(self.name(), mask, mask_layout)?;
        // The input's width is the query-key-value projection's.
        output_shape(self.name(), xs_layout, &self.qkv)?;
        let (_, seq, hidden) = xs_layout.shape().dims3()?;
        let buffers = || ItemBuffers {
            qkv: Vec::with_capacity(3 * seq * hidden),
            context: Vec::with_capacity(seq * hidden),
            heads: HeadScratch::new(self.products, seq, hidden / self.heads),
        };
        // SAFETY: each batch item's `item` writes all its output rows.
        let out = unsafe {
            filled_rows(xs.len(), |out| {
                out.par_chunks_mut(seq * hidden)
                    .zip(xs.par_chunks(seq * hidden))
                    .zip(mask.par_chunks(seq))
                    .for_each_init(buffers, |buffers, ((out, xs), mask)| {
                        self.item(xs, mask, out, buffers)
                    });
            })
        };
        Ok((CpuStorage::F32(out), xs_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        any_kernel, kernel_name, random_layer, random_norm, random_tensor, runnable_kernels,
    };
    use super::*;
    use crate::cpu_kernels::fused_attention;
    use crate::cpu_kernels::test_support::max_abs_diff;
    use crate::precision::Precision;
    use candle_core::Device;

    /// A mask with the last third of the keys of every other item masked.
    fn mask(batch: usize, seq: usize) -> Tensor {
        let values: Vec<f32> = (0..batch * seq)
            .map(|i| match (i / seq % 2, i % seq) {
                (1, key) if key > 0 && key >= seq - seq / 3 => -1e4,
                _ => 0.0,
            })
            .collect();
        Tensor::from_vec(values, (batch, 1, 1, seq), &Device::Cpu).unwrap()
    }

    /// The block against its ops apart, on two threads (so that a batch
    /// of 8 items runs fused), for heads of `width` columns.
    fn check(precision: Precision, tiles: bool, products: AttentionProducts, width: usize) {
        let name = format!(
            "{}, {products:?}, heads of {width}",
            kernel_name(precision, tiles)
        );
        let (heads, batch) = (3, 9);
        let hidden = heads * width;
        let qkv = random_layer(hidden, 3 * hidden, 1, (precision, tiles));
        let out = random_layer(hidden, hidden, 3, (precision, tiles));
        let tail = PackedAddNorm::new(out, random_norm(hidden).0).unwrap();
        let block = PackedAttention::new(qkv.clone(), tail.clone(), heads, products)
            .unwrap()
            .expect("the fused attention runs on AVX-512");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for seq in [1, 7, 33, 128] {
                let xs = random_tensor(&[batch, seq, hidden], seq as u64);
                let mask = mask(batch, seq);
                let got = block
                    .forward(&xs, &mask)
                    .unwrap()
                    .expect("8 items per 2 threads");
                let all = qkv.forward(&xs).unwrap();
                let [q, k, v] = [0, 1, 2].map(|i| all.narrow(2, i * hidden, hidden).unwrap());
                let context = fused_attention(&q, &k, &v, &mask, heads, products)
                    .unwrap()
                    .unwrap();
                let want = tail.forward(&context, &xs).unwrap();
                let diff = max_abs_diff(&got, &want);
                assert!(diff <= 1e-5, "{name}, {seq} tokens: {diff}");
                let one = xs.narrow(0, 0, 1).unwrap();
                let one_mask = mask.narrow(0, 0, 1).unwrap();
                assert!(
                    block.forward(&one, &one_mask).unwrap().is_none(),
                    "one item runs the ops apart"
                );
            }
        });
    }

    #[test]
    fn the_attention_block_equals_its_ops_apart() {
        for ((precision, tiles), name) in runnable_kernels("attention block") {
            check(precision, tiles, AttentionProducts::F32, 16);
            let cpu = crate::precision::CpuFeatures::detect();
            match cpu.tiles_unavailable(Precision::Bf16) {
                Some(why) => eprintln!("SKIPPED: {name} attention block on AMX tiles: {why}"),
                None => check(precision, tiles, AttentionProducts::Bf16Tiles, 32),
            }
        }
    }

    #[test]
    fn widths_that_do_not_chain_are_refused() {
        let Some((precision, tiles)) = any_kernel() else {
            eprintln!("SKIPPED: attention block width checks: no reduced-precision kernel here");
            return;
        };
        let tail = PackedAddNorm::new(
            random_layer(32, 32, 1, (precision, tiles)),
            random_norm(32).0,
        )
        .unwrap();
        let narrow_qkv = random_layer(32, 64, 2, (precision, tiles));
        assert!(PackedAttention::new(narrow_qkv, tail.clone(), 2, AttentionProducts::F32).is_err());
        let qkv = random_layer(32, 96, 3, (precision, tiles));
        let odd_heads = PackedAttention::new(qkv, tail, 4, AttentionProducts::F32).unwrap();
        assert!(
            odd_heads.is_none(),
            "heads of 8 columns are not whole vectors"
        );
    }
}
