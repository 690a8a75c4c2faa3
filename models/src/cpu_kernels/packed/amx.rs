//! AMX tile products for the packed linear layers: `tdpbf16ps` (bf16 pairs
//! into f32) and `tdpbusd` (u8 by i8 quads into i32).
//!
//! Both read the operands the AVX-512 kernels read. A weight panel of 64
//! columns holds, for each group of inputs (a bf16 pair or an int8 quad,
//! four bytes), 256 bytes: 64 columns of one group. So the 16 columns
//! `panel * 64 + 16 * v ..` over 16 groups are a B tile in the VNNI layout
//! AMX wants, with a row stride of 256 bytes. The activations are one
//! group (`u32`) per 4 bytes, row-major: 16 rows over 16 groups are an A
//! tile. Groups are padded to whole tiles with zeros, and the activation
//! rows to whole tiles.
//!
//! One block keeps 2x2 accumulator tiles (32 rows by 32 columns, tiles
//! 0-3), two A tiles (4, 5) and two B tiles (6, 7), and walks the depth a
//! tile (16 groups) at a time. The caller turns each block's accumulators
//! into f32 outputs. The AMX intrinsics are nightly-only, so the
//! instructions are written with `asm!`: the compiler never allocates the
//! tile registers, so nothing else touches them between the statements.

use std::arch::asm;

/// Rows of a tile, and groups (4 bytes) per tile row.
pub(super) const TILE: usize = 16;
/// Bytes per weight panel row: 64 columns of one 4-byte group.
const PANEL_ROW_BYTES: usize = 256;
/// Rows per parallel work item at most (whole blocks of 32).
const TASK_ROWS: usize = 256;

/// The tile configuration of every kernel here: palette 1, tiles 0-7 of
/// 16 rows by 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const FULL_TILES: TileConfig = {
    let mut bytes = [0u8; 64];
    bytes[0] = 1;
    let mut tile = 0;
    while tile < 8 {
        bytes[16 + 2 * tile] = 64;
        bytes[48 + tile] = TILE as u8;
        tile += 1;
    }
    TileConfig(bytes)
};

/// The accumulators of one block: tile `2 * i + j` holds rows `16 * i ..`
/// and columns `16 * j ..` of the block, 16 by 16, as f32 bits (bf16) or
/// i32 (int8).
#[repr(C, align(64))]
pub(super) struct Block(pub(super) [[u32; TILE * TILE]; 4]);

/// Where a block's outputs go: `rows` valid rows from `first_row` of the
/// work item, and 32 columns from `col` (those below the layer's width
/// are valid).
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockAt {
    pub(super) first_row: usize,
    pub(super) rows: usize,
    pub(super) col: usize,
}

/// A work item's operands in the layout the module docs describe.
pub(super) struct TileOperands<'a> {
    /// `rows` rounded up to whole tiles, by `groups`, one `u32` per group.
    pub(super) activations: &'a [u32],
    /// Groups per row: a whole number of tiles.
    pub(super) groups: usize,
    /// The packed weight panels, `groups * 256` bytes each.
    pub(super) weights: &'a [u8],
    /// Output columns (the panels cover them, rounded up to 64).
    pub(super) out_dim: usize,
}

/// Which tile product a kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Product {
    /// `tdpbf16ps`: bf16 pairs, f32 accumulators.
    Bf16,
    /// `tdpbusd`: u8 activations by i8 weights, i32 accumulators.
    Int8,
}

/// Loads the tile configuration of every kernel here (on this thread).
///
/// # Safety
/// The CPU has AMX-TILE and Linux granted tile data.
pub(in crate::cpu_kernels) unsafe fn configure() {
    asm!("ldtilecfg [{}]", in(reg) FULL_TILES.0.as_ptr(), options(nostack, readonly));
}

/// Ends tile use on this thread.
///
/// # Safety
/// As [`configure`].
pub(in crate::cpu_kernels) unsafe fn release() {
    asm!("tilerelease", options(nostack, nomem));
}

/// One 16 x 16 f32 tile of a bf16 product: `c = sum_k a_k b_k` over
/// `depth_tiles` steps, where `a_k` is 16 rows of 64 bytes (32 bf16) from
/// `a + 64 k`, `a_stride` bytes apart, and `b_k` 16 rows of 64 bytes in
/// the VNNI layout from `b + 1024 k`, contiguous. Stored at `c`, rows
/// `c_stride` bytes apart. Uses tiles 0, 4 and 6.
///
/// # Safety
/// AMX-BF16, [`configure`] ran on this thread, and the pointers cover
/// what is read and written.
pub(in crate::cpu_kernels) unsafe fn bf16_tile(
    a: *const u8,
    a_stride: usize,
    b: *const u8,
    depth_tiles: usize,
    c: *mut u8,
    c_stride: usize,
) {
    asm!("tilezero tmm0", options(nostack, nomem));
    for k in 0..depth_tiles {
        asm!(
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm6, [{b} + {sb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            a = in(reg) a.add(64 * k),
            sa = in(reg) a_stride,
            b = in(reg) b.add(1024 * k),
            sb = in(reg) 64usize,
            options(nostack, readonly)
        );
    }
    asm!(
        "tilestored [{c} + {sc}*1], tmm0",
        c = in(reg) c,
        sc = in(reg) c_stride,
        options(nostack)
    );
}

/// Rows per work item for `rows` rows on `threads` threads: whole blocks
/// of 32, at most [`TASK_ROWS`], about two items per thread.
pub(super) fn task_rows(rows: usize, threads: usize) -> usize {
    rows.div_ceil(2 * threads.max(1))
        .next_multiple_of(2 * TILE)
        .min(TASK_ROWS)
}

/// The activations of `rows` rows: zeros for whole tiles of rows.
pub(super) fn activation_buffer(rows: usize, groups: usize) -> Vec<u32> {
    vec![0u32; rows.next_multiple_of(TILE) * groups]
}

/// Multiplies `rows` rows of activations by every weight panel and hands
/// each block to `store`.
///
/// # Safety
/// The CPU has AMX-TILE and the product's AMX instructions, Linux granted
/// this process tile data, and the operands are as [`TileOperands`] says.
pub(super) unsafe fn multiply(
    product: Product,
    operands: &TileOperands<'_>,
    rows: usize,
    mut store: impl FnMut(BlockAt, &Block),
) {
    let TileOperands {
        activations,
        groups,
        weights,
        out_dim,
    } = *operands;
    assert_eq!(groups % TILE, 0, "groups in whole tiles");
    assert!(activations.len() >= rows.next_multiple_of(TILE) * groups);
    assert!(weights.len() >= out_dim.div_ceil(64) * groups * PANEL_ROW_BYTES);
    let mut block = Block([[0; TILE * TILE]; 4]);
    configure();
    for col in (0..out_dim).step_by(2 * TILE) {
        let panel = weights
            .as_ptr()
            .add(col / 64 * groups * PANEL_ROW_BYTES + (col % 64) * 4);
        for first_row in (0..rows).step_by(2 * TILE) {
            let a = activations.as_ptr().add(first_row * groups) as *const u8;
            let two_row_tiles = rows - first_row > TILE;
            run_block(
                product,
                a,
                4 * groups,
                panel,
                groups / TILE,
                two_row_tiles,
                &mut block,
            );
            let rows = (rows - first_row).min(2 * TILE);
            store(
                BlockAt {
                    first_row,
                    rows,
                    col,
                },
                &block,
            );
        }
    }
    release();
}

/// One block: accumulates `depth_tiles` tiles of depth into tiles 0-3 and
/// stores them into `block`. With `two_row_tiles` false only the first 16
/// rows are read and tiles 2 and 3 hold zeros.
///
/// # Safety
/// As [`multiply`]; the tile configuration is loaded; `a` (row stride
/// `a_stride` bytes) and `b` (row stride 256 bytes) cover the depth.
#[inline(always)]
unsafe fn run_block(
    product: Product,
    a: *const u8,
    a_stride: usize,
    b: *const u8,
    depth_tiles: usize,
    two_row_tiles: bool,
    block: &mut Block,
) {
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack, nomem)
    );
    for k in 0..depth_tiles {
        let a = a.add(k * TILE * 4);
        let b = b.add(k * TILE * PANEL_ROW_BYTES);
        asm!(
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm6, [{b} + {sb}*1]",
            "tileloadd tmm7, [{b1} + {sb}*1]",
            a = in(reg) a,
            b = in(reg) b,
            b1 = in(reg) b.add(64),
            sa = in(reg) a_stride,
            sb = in(reg) PANEL_ROW_BYTES,
            options(nostack, readonly)
        );
        if two_row_tiles {
            asm!(
                "tileloadd tmm5, [{a} + {sa}*1]",
                a = in(reg) a.add(TILE * a_stride),
                sa = in(reg) a_stride,
                options(nostack, readonly)
            );
        }
        match (product, two_row_tiles) {
            (Product::Bf16, true) => asm!(
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                options(nostack, nomem)
            ),
            (Product::Bf16, false) => asm!(
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                options(nostack, nomem)
            ),
            (Product::Int8, true) => asm!(
                "tdpbusd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm4, tmm7",
                "tdpbusd tmm2, tmm5, tmm6",
                "tdpbusd tmm3, tmm5, tmm7",
                options(nostack, nomem)
            ),
            (Product::Int8, false) => asm!(
                "tdpbusd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm4, tmm7",
                options(nostack, nomem)
            ),
        }
    }
    let out = block.0.as_mut_ptr() as *mut u8;
    let stride = TILE * 4;
    asm!(
        "tilestored [{c0} + {s}*1], tmm0",
        "tilestored [{c1} + {s}*1], tmm1",
        "tilestored [{c2} + {s}*1], tmm2",
        "tilestored [{c3} + {s}*1], tmm3",
        c0 = in(reg) out,
        c1 = in(reg) out.add(1024),
        c2 = in(reg) out.add(2048),
        c3 = in(reg) out.add(3072),
        s = in(reg) stride,
        options(nostack)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_palette_one_with_full_tiles() {
        let bytes = FULL_TILES.0;
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[16..18], &[64, 0]);
        assert_eq!(&bytes[30..32], &[64, 0]);
        assert_eq!(&bytes[32..34], &[0, 0], "tiles 8+ unused");
        assert_eq!(&bytes[48..56], &[16; 8]);
        assert_eq!(bytes[56], 0);
    }

    #[test]
    fn work_items_are_whole_blocks_about_two_per_thread() {
        assert_eq!(task_rows(4096, 2), TASK_ROWS);
        assert_eq!(task_rows(128, 2), 32);
        assert_eq!(task_rows(200, 2), 64);
        assert_eq!(task_rows(1, 2), 32);
        assert_eq!(task_rows(100, 0), 64, "no threads counts as one");
        assert_eq!(activation_buffer(17, 16).len(), 32 * 16);
    }
}
