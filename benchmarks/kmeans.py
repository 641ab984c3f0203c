"""Time the spherical k-means backends of ``speechbrain_ssps.kmeans``.

Runs every available backend (torch, faiss) on the same random data, on CPU
and on CUDA when a GPU is visible, and prints for each the wall time, the
achieved GFLOP/s of its E-steps (2 N K D flops each, ``num_iters + 1``
E-steps counting the final assignment) and its time relative to the torch
backend measured in the same run (fastest of ``--repeats`` interleaved
runs). A ``torch.mm`` probe of the same shape
shows what the matrix product alone reaches on the device. The measurement
behind ``backend="auto"`` comes from this script (see the module docstring
of ``speechbrain_ssps/kmeans.py``).

Usage::

    python benchmarks/kmeans.py
    python benchmarks/kmeans.py --num-rows 20000 --num-clusters 500

Timings on shared machines are noisy; compare ratios within one run.
"""

import argparse
import ctypes
import time

import torch

from speechbrain_ssps.kmeans import available_backends, spherical_kmeans


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-rows", type=int, default=100_000, help="N")
    parser.add_argument("--dim", type=int, default=192, help="D")
    parser.add_argument("--num-clusters", type=int, default=2_500, help="K")
    parser.add_argument("--num-iters", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="runs per backend, interleaved; the fastest is reported",
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
        help="devices holding the data (default: cpu, and cuda if present)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=available_backends(),
        help="backends to time (default: all available; torch is always "
        "timed as the baseline)",
    )
    return parser.parse_args()


def faiss_blas_core():
    """Kernel family that faiss's bundled OpenBLAS picked ("?" if unknown).

    faiss-cpu wheels ship their own OpenBLAS, which chooses its kernels from
    the CPU at start-up; an old kernel (e.g. SSE3) makes faiss slow.
    """
    try:
        import faiss  # noqa: F401  (loads the bundled OpenBLAS)

        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line}
        for path in sorted(paths):
            get_core = ctypes.CDLL(path).openblas_get_corename
            get_core.restype = ctypes.c_char_p
            return get_core().decode()
    except (ImportError, OSError, AttributeError):
        pass
    return "?"


def synchronize(device):
    """Wait for queued kernels so that wall time covers the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_kmeans(x, args, backend):
    """Seconds and mean similarity of one k-means run."""
    synchronize(x.device)
    start = time.perf_counter()
    result = spherical_kmeans(
        x, args.num_clusters, args.num_iters, args.seed, backend
    )
    synchronize(x.device)
    seconds = time.perf_counter() - start
    return seconds, float(result.similarities.mean())


def time_matmul(x, num_clusters, rows=16384):
    """GFLOP/s of ``torch.mm`` for a block of rows against K centroids."""
    block = x[:rows]
    centroids = x[:num_clusters].t().contiguous()
    torch.mm(block, centroids)  # warm-up (library start-up)
    synchronize(x.device)
    start = time.perf_counter()
    for _ in range(3):
        torch.mm(block, centroids)
    synchronize(x.device)
    seconds = (time.perf_counter() - start) / 3
    return 2 * block.shape[0] * num_clusters * x.shape[1] / seconds / 1e9


def main():
    """Run the benchmark and print one table per device."""
    args = parse_args()
    backends = ["torch"] + [b for b in args.backends if b != "torch"]
    num_e_steps = args.num_iters + 1
    flops = 2.0 * args.num_rows * args.num_clusters * args.dim * num_e_steps
    print(
        f"N={args.num_rows} D={args.dim} K={args.num_clusters} "
        f"iters={args.num_iters} ({num_e_steps} E-steps, "
        f"{flops / 1e9:.0f} GFLOP) torch={torch.__version__} "
        f"threads={torch.get_num_threads()}"
    )
    if "faiss" in backends:
        print(f"faiss OpenBLAS kernels: {faiss_blas_core()}")
    generator = torch.Generator().manual_seed(args.seed)
    data = torch.randn(args.num_rows, args.dim, generator=generator)
    for name in args.devices:
        device = torch.device(name)
        x = data.to(device)
        # Warm-up: library loading, CUDA context and kernels, faiss import.
        small = x[: min(args.num_rows, 4 * args.num_clusters)]
        for backend in backends:
            spherical_kmeans(small, args.num_clusters, 1, backend=backend)
        probe = time_matmul(x, args.num_clusters)
        print(f"\n[{device}] torch.mm probe: {probe:.0f} GFLOP/s")
        print(
            f"{'backend':<8} {'seconds':>8} {'GFLOP/s':>8} "
            f"{'time/torch':>10} {'mean sim':>9}"
        )
        best = {backend: (float("inf"), 0.0) for backend in backends}
        for _ in range(args.repeats):
            for backend in backends:
                best[backend] = min(
                    best[backend], time_kmeans(x, args, backend)
                )
        baseline = best["torch"][0]
        for backend in backends:
            seconds, objective = best[backend]
            print(
                f"{backend:<8} {seconds:8.2f} {flops / seconds / 1e9:8.0f} "
                f"{seconds / baseline:10.2f} {objective:9.4f}"
            )


if __name__ == "__main__":
    main()
