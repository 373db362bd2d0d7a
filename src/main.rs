//! The `concierge` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: under load glibc's allocator took 16 % of the request
/// threads' CPU (arena locks, `malloc_consolidate`); see BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
