//! The memory allocator of the programs that run the model.
//!
//! candle allocates a fresh buffer for every tensor an op produces and
//! frees it as soon as the tensor is dropped: one forward pass of
//! all-MiniLM-L6-v2 at batch 32 allocates and frees gigabytes in buffers of
//! up to tens of megabytes. With the system allocator or mimalloc's
//! defaults (a 1 s purge delay) that memory goes back to the kernel between passes and comes
//! back as fresh pages that the kernel must zero: `perf` showed 44% of a
//! CPU training step in `clear_page_erms`. mimalloc, told to keep the
//! memory it frees ([`retain_freed_memory`]), recycles the same pages, so
//! a process holds its peak working set instead (BENCHMARKS.md has the
//! measured effect).

use std::os::raw::c_long;

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// mimalloc, for a binary to declare as its global allocator (a library
/// does not choose its users' allocator):
///
/// ```ignore
/// #[global_allocator]
/// static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;
/// ```
pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` of `mimalloc.h` (the same index in mimalloc 2
/// and 3; `libmimalloc-sys` does not name it): milliseconds before freed
/// memory goes back to the kernel, `-1` for never.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// mimalloc's own setting of the purge delay, which takes precedence.
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Keeps memory the process frees for reuse instead of returning it to the
/// kernel, for the rest of the process, unless `MIMALLOC_PURGE_DELAY` is
/// set. Call it first thing in `main` of a program that runs the model; the
/// process then holds its peak memory.
pub fn retain_freed_memory() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    // SAFETY: setting an option is a plain store into mimalloc's option
    // table, allowed at any time and from any thread.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// The current purge delay in milliseconds (`-1`: freed memory is kept).
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reading an option has no preconditions.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_is_mimallocs_purge_delay() {
        // mimalloc 3 defaults it to 1000 ms (src/options.c): a wrong index
        // would read another option (its neighbours, 14 and 16, default to
        // 1 and 0).
        assert_eq!(purge_delay_ms(), 1000);
        retain_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
