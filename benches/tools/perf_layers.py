#!/usr/bin/env python3
"""Charges each sample of a `perf script` dump (recorded with
`--call-graph dwarf`) to the layer of its own frame, and prints the
per-layer table of BENCHMARKS.md.

usage: perf script -i perf.data > perf.txt
       benches/tools/perf_layers.py perf.txt US_PER_CALL

US_PER_CALL is the process's CPU per call from the same run (the bench's
`cpu µs/op`); each layer's share of it is printed beside its share of
samples. A leaf without a module path (an inlined closure or async block)
is charged to its nearest caller that has one.
"""
import collections
import re
import sys

LAYERS = [
    ("timers and clock", r"tokio::runtime::time|tokio::time|clock_gettime|__vdso|read_tsc|Instant"),
    ("allocator", r"_rjem_|\bje_|malloc|free_fastpath|cache_bin|sdallocx|tcache|arena_|realloc|calloc|__rust_alloc|__rust_dealloc"),
    ("copies (memcpy, memmove)", r"memcpy|memmove|memset|memcmp"),
    ("harness (its histogram, its closures)", r"omnigate_bench|hdrhistogram"),
    ("metrics (counters, histograms)", r"omnigate::metrics|::metrics::|Counters"),
    ("tracing", r"tracing"),
    ("statement parsing", r"redis_syntax|lexer|Words|sql::|from_utf8|utf8_validation|Args|session::|reserved::|first_keyword"),
    ("the Redis client, driver and pool", r"omnigate_drivers::resp|omnigate_drivers::redis|redis_protocol|redis::|combine::"),
    ("PostgreSQL driver (tokio-postgres, decoding, statement cache)", r"tokio_postgres|postgres_protocol|postgres_types|omnigate_drivers::postgres|deadpool_postgres"),
    ("pool front and checkout", r"omnigate_drivers::pool|deadpool|bb8"),
    ("gateway routing, admission, pipeline", r"omnigate::|omnigate_drivers::"),
    ("moka (metadata cache)", r"moka|sip::|hash_one|BuildHasher"),
    ("tokio scheduler, channels, wakers", r"tokio::|mio::|futures_channel|futures_util|futures_core|[Ww]aker|parking_lot|pthread|std::sys::sync"),
    ("drops, Bytes, formatting", r"drop_in_place|bytes::|core::fmt|alloc::|core::|std::|hashbrown|compact_str"),
]
KERNEL = "kernel: scheduling, wake-ups, syscalls, TCP"
SYSCALL_WRAPPERS = r"__libc_send|__libc_recv|__libc_write|__libc_read|writev|epoll_wait"


def samples(path):
    frames = None
    for line in open(path, errors="replace"):
        if not line.strip():
            if frames:
                yield frames
            frames = None
        elif not line[0].isspace():
            frames = []
        elif frames is not None:
            parts = line.strip().split(None, 2)
            if len(parts) >= 2:
                symbol = re.sub(r"\+0x[0-9a-f]+$", "", parts[1])
                frames.append((symbol, parts[2] if len(parts) > 2 else ""))
    if frames:
        yield frames


def layer(frames):
    symbol, dso = frames[0]
    if "[kernel" in dso or re.search(SYSCALL_WRAPPERS, symbol):
        return KERNEL
    if "::" not in symbol and not re.search(LAYERS[0][1] + "|" + LAYERS[1][1] + "|" + LAYERS[2][1], symbol):
        symbol = next((s for s, _ in frames[1:] if "::" in s), symbol)
    for name, pattern in LAYERS:
        if re.search(pattern, symbol):
            return name
    return "other"


def main():
    path, per_call = sys.argv[1], float(sys.argv[2])
    counts = collections.Counter(layer(f) for f in samples(path))
    total = sum(counts.values())
    print(f"{total} samples")
    print("| layer | share of samples | ≈ µs per call |\n|---|---:|---:|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f} % | {per_call * n / total:.2f} |")


if __name__ == "__main__":
    main()
