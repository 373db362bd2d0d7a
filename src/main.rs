//! The `concierge` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: under load glibc's allocator took 16 % of the request
/// threads' CPU (arena locks, `malloc_consolidate`); see BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc, called the way Rust's `System` allocator calls `malloc`: the plain entry points
/// when the alignment asked for is one every mimalloc block has anyway (a word, and no more than
/// the size), the aligned ones otherwise. The `mimalloc` crate's adapter calls the aligned ones
/// for everything: about 2,100 instructions more a webhook request, of ~105 allocations
/// (callgrind, BENCHMARKS.md SMS webhook step 65).
struct Mimalloc;

/// An alignment every block of mimalloc's has: its blocks are whole machine words (8 bytes on
/// 64-bit targets).
#[cfg(target_pointer_width = "64")]
const WORD_ALIGNED: usize = 8;
#[cfg(not(target_pointer_width = "64"))]
const WORD_ALIGNED: usize = 1;

fn plain(align: usize, size: usize) -> bool {
    align <= WORD_ALIGNED && align <= size
}

/// A block for `layout` from `plain` (size) where [`plain`] says it is aligned enough, else from
/// `aligned` (size, alignment).
///
/// # Safety
/// `layout` has a non-zero size, and the two are mimalloc's matching entry points.
unsafe fn allocate(
    layout: std::alloc::Layout,
    plain_entry: unsafe extern "C" fn(usize) -> *mut std::ffi::c_void,
    aligned_entry: unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void,
) -> *mut u8 {
    // SAFETY: as the caller promises.
    unsafe {
        if plain(layout.align(), layout.size()) {
            plain_entry(layout.size()).cast()
        } else {
            aligned_entry(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: each method hands mimalloc's C allocator the layout's size (and its alignment, unless
// `plain` says every block is aligned that well), as `GlobalAlloc` requires; `mi_free` and
// `mi_realloc` take blocks from either kind of call.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            allocate(
                layout,
                libmimalloc_sys::mi_malloc,
                libmimalloc_sys::mi_malloc_aligned,
            )
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            allocate(
                layout,
                libmimalloc_sys::mi_zalloc,
                libmimalloc_sys::mi_zalloc_aligned,
            )
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps its alignment.
        unsafe {
            if plain(layout.align(), new_size) {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = concierge::cli::Cli::parse();
    match concierge::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for this process. mimalloc asks for them on its large
/// regions; each one's first touch zeroes 2 MiB, and under `concierge load` (20,000 req/s, open
/// loop) growing an in-memory map stalled the store's writer ~5 ms at a time for it, 9 times in
/// 8 s; without huge pages none did, and the closed loop's p99 went from 6.2-6.6 to 4.4-4.9 ms
/// at the same throughput (BENCHMARKS.md). Failing to turn them off changes nothing else.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and sets a flag of the process's
    // memory map; no memory is passed or changed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::Mimalloc;

    /// Blocks of every size and alignment, plain and aligned, are aligned as asked, hold what is
    /// written to them, and keep it when grown or shrunk.
    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 7, 8, 9, 16, 24, 100, 1024, 1025, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; each block is freed once, with its layout.
                unsafe {
                    let p = Mimalloc.alloc(layout);
                    assert!(!p.is_null() && p as usize % align == 0, "{layout:?}");
                    std::ptr::write_bytes(p, 0xa5, size);
                    let new_size = size * 3 + 1;
                    let q = Mimalloc.realloc(p, layout, new_size);
                    assert!(
                        !q.is_null() && q as usize % align == 0,
                        "{layout:?} to {new_size}"
                    );
                    assert!((0..size).all(|i| *q.add(i) == 0xa5));
                    let r =
                        Mimalloc.realloc(q, Layout::from_size_align(new_size, align).unwrap(), 1);
                    assert!(!r.is_null() && r as usize % align == 0 && *r == 0xa5);
                    Mimalloc.dealloc(r, Layout::from_size_align(1, align).unwrap());
                    let z = Mimalloc.alloc_zeroed(layout);
                    assert!(!z.is_null() && z as usize % align == 0, "{layout:?}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    Mimalloc.dealloc(z, layout);
                }
            }
        }
    }
}
