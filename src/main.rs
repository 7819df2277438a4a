//! The `dane-survey` binary: a thin front-end over [`dane_survey::operations`].

/// jemalloc, not glibc's malloc: the crawl allocates each domain's row on the dispatcher's
/// thread and frees it on a writer's, and the DNS answers the other way round. glibc sends
/// such frees through the owning arena's lock and its free lists of small chunks, which it
/// sweeps (`malloc_consolidate`) on every larger allocation: that was a tenth of a warm
/// crawl's CPU time. jemalloc returns them through per-thread caches. Tuned in
/// `.cargo/config.toml` (`JEMALLOC_SYS_WITH_MALLOC_CONF`): an arena per CPU instead of four,
/// and freed pages given back after 10 s, so the peak memory stays flat as the input grows
/// (about 75 MiB for a 1M-name crawl on 2 cores).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    dane_survey::operations::main()
}
