"""Seconds per training step of DINO / SimCLR, with and without SSPS.

Builds :class:`speechbrain_ssps.brain.SSLBrain` from the recipe's own
hyperparameter files (``recipes/VoxCeleb/SSPS/hparams/dino_ssps.yaml`` and
``simclr_ssps.yaml``, loaded with overrides, no data files) and times
``brain.fit_batch`` on random waveforms, for ECAPA-TDNN at each requested
channel width. Per framework and width, two brains share the same modules:
the baseline (no ``ssps`` module, as ``dino.yaml`` / ``simclr.yaml``) and
the SSPS one, whose queues are filled with random rows and which is then put
in its first active epoch (k-means on the filled reference queue). Their
timed steps are interleaved (baseline, SSPS, baseline, ...) so that a load
change on a shared machine hits both alike; the ratio column is the median
of the paired ratios.

During the SSPS steps ``ssps.sample``, ``ssps.swap``, ``ssps.update`` and
``brain.encode_reference`` (the un-augmented reference crop through the
reference encoder) are wrapped with timers, so their shares are fractions
of the same measured steps (median over steps of the per-step fraction).
For DINO the queue stores the teacher's 256-d bottleneck (the recipe's
``dino_queue: bottleneck``); "re-proj" is the rest of
``DINO.targets`` (mostly the current teacher's prototype layer applied to
the swapped bottlenecks, in float32).

``--precision fp32,bf16`` (SpeechBrain's ``--precision``: autocast around
the forward and the loss; fp16 adds a ``GradScaler``, CUDA only) runs the
whole measurement once per precision and adds a table of steps per second
and peak memory: ``torch.cuda.max_memory_allocated`` over each step (reset
before it) on CUDA; on the CPU the process's peak resident set size so far
(``ru_maxrss``, which never goes down: an upper bound, not a per-step
figure). Default: fp32 and bf16 on CUDA (bf16 only where the device
supports it), fp32 on the CPU (bf16 works there too).

Not in the timed step: data loading and cropping (the waveforms are made
beforehand), augmentation (no MUSAN/RIR folders), the k-means at the start
of the epoch (printed separately). A second table gives the SSPS queue
memory at paper scale, from the buffer shapes of ``SSPS`` built on the meta
device (nothing allocated): DINO's positive queue of 65,536-d logits (the
paper's) against the 256-d bottleneck, float32 and float16, and the
reference queue of VoxCeleb2 dev.

Run::

    python benchmarks/train_step.py --threads 1      # CPU defaults
    python benchmarks/train_step.py --device cuda    # C=1024, batch 128
    python benchmarks/train_step.py --threads 1 --precision fp32,bf16 \
        --channels 64 --batch 2 --steps 2 --utterances 200 --clusters 20 \
        --queue 200                                  # tiny CPU check

On the project's shared 2-core machine the CPU defaults took 12 min with
``--threads 1`` at a load average of 5-9 (with 2 threads under such load,
OpenMP threads wait for each other and steps run several times slower).

CPU defaults: C in {512, 1024}, DINO batch 8 with 2 x 2 s global and
4 x 1 s local crops, SimCLR batch 16 with 2 x 1 s crops, 2 s reference
crops, 1 warm-up and 3 timed steps. CUDA defaults: the paper's shapes
(C=1024; DINO batch 128, 2 x 4 s + 4 x 2 s; SimCLR batch 256, 2 x 2 s;
4 s reference), 3 warm-up and 10 timed steps; 128 is the paper's DINO
batch, global and per GPU (the recipe's yamls: ``batch_size: 128`` on one
process). SSPS state, both devices:
N=20,000 utterances, K=2,000 clusters (the paper: N=1,092,009, K=25,000),
|Q'|=25,000 (the paper's), NCS with M=1.
"""

import argparse
import gc
import os
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_ssps.brain import SSLBrain
from speechbrain_ssps.preflight import check_precision
from speechbrain_ssps.ssps import SSPS

HPARAMS_DIR = (
    Path(__file__).resolve().parents[1] / "recipes" / "VoxCeleb" / "SSPS"
)
HPARAMS_DIR = HPARAMS_DIR / "hparams"
VOX2_DEV_UTTERANCES = 1_092_009
PAPER_QUEUE_SIZE = 25_000
PAPER_CLUSTERS = 25_000
SAMPLE_RATE = 16_000
SSPS_TIMERS = ("sample", "swap", "update", "ref", "targets")

CPU_DEFAULTS = dict(
    channels=[512, 1024],
    batch=8,
    global_seconds=2.0,
    local_seconds=1.0,
    steps=3,
    warmup=1,
)
CUDA_DEFAULTS = dict(
    channels=[1024],
    batch=128,
    global_seconds=4.0,
    local_seconds=2.0,
    steps=10,
    warmup=3,
)


def parse_args():
    """Command-line options; unset ones take the device's defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=["dino", "simclr"],
        choices=["dino", "simclr"],
    )
    parser.add_argument(
        "--channels",
        type=int,
        nargs="+",
        help="ECAPA-TDNN widths C (layers C, C, C, C, 3C)",
    )
    parser.add_argument("--batch", type=int, help="DINO batch size")
    parser.add_argument(
        "--simclr_batch",
        type=int,
        help="SimCLR batch size (default: 2 x --batch, the paper's ratio)",
    )
    parser.add_argument(
        "--global_seconds",
        type=float,
        help="DINO global crops (paper 4 s)",
    )
    parser.add_argument(
        "--local_seconds",
        type=float,
        help="DINO local crops and SimCLR's two crops (paper 2 s)",
    )
    parser.add_argument(
        "--ref_seconds",
        type=float,
        help="SSPS reference crop (default: --global_seconds; paper 4 s)",
    )
    parser.add_argument("--steps", type=int, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, help="untimed first steps")
    parser.add_argument(
        "--utterances", type=int, default=20_000, help="SSPS N (scaled)"
    )
    parser.add_argument(
        "--clusters", type=int, default=2_000, help="SSPS K (scaled)"
    )
    parser.add_argument(
        "--queue", type=int, default=PAPER_QUEUE_SIZE, help="SSPS |Q'|"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's; on a loaded shared "
        "machine 1 avoids OpenMP threads waiting for each other)",
    )
    parser.add_argument(
        "--precision",
        help="comma-separated SpeechBrain precisions (fp32, bf16, fp16); "
        "default fp32,bf16 on CUDA, fp32 on the CPU",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cuda = torch.device(args.device).type == "cuda"
    if args.precision is None:
        bf16 = cuda and torch.cuda.is_bf16_supported()
        args.precision = "fp32,bf16" if bf16 else "fp32"
    args.precisions = [p.strip() for p in args.precision.split(",") if p]
    for precision in args.precisions:
        check_precision(precision, args.device)
    for key, value in (CUDA_DEFAULTS if cuda else CPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.simclr_batch is None:
        args.simclr_batch = 2 * args.batch
    if args.ref_seconds is None:
        args.ref_seconds = args.global_seconds
    for name in ("batch", "simclr_batch", "steps", "utterances", "queue"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1")
    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be >= 1")
    if args.warmup < 0:
        raise ValueError("--warmup must be >= 0")
    if max(args.batch, args.simclr_batch) > args.utterances:
        raise ValueError("--batch/--simclr_batch larger than --utterances")
    return args


class Clock:
    """Wall time with the device synchronised at both ends."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        """Seconds, after all queued device work has finished."""
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def timed(fn, key, totals, clock):
    """``fn`` adding its wall time to ``totals[key]`` at every call."""

    def wrapper(*args, **kwargs):
        start = clock.now()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += clock.now() - start

    return wrapper


def load_hparams(framework, channels, args, out_dir):
    """The recipe's ``<framework>_ssps.yaml`` with this run's overrides."""
    if framework == "dino":
        view_seconds = {
            "global_crop_seconds": args.global_seconds,
            "local_crop_seconds": args.local_seconds,
        }
        batch = args.batch
    else:
        view_seconds = {"global_crop_seconds": args.local_seconds}
        batch = args.simclr_batch
    overrides = {
        "data_folder": str(out_dir),
        "output_folder": str(out_dir / framework / str(channels)),
        "channels": [channels] * 4 + [3 * channels],
        "batch_size": batch,
        "num_workers": 0,
        "ref_crop_seconds": args.ref_seconds,
        "ssps_num_clusters": args.clusters,
        "ssps_queue_size": args.queue,
        "seed": args.seed,
        **view_seconds,
    }
    path = HPARAMS_DIR / f"{framework}_ssps.yaml"
    with open(path, encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, overrides)


def make_brain(hparams, device, steps_per_epoch, precision, ssps=None):
    """An ``SSLBrain`` as the recipe builds it (no checkpointer, no data)."""
    modules = dict(hparams["modules"])
    if ssps is not None:
        modules["ssps"] = ssps
    brain = SSLBrain(
        modules=modules,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={
            "device": str(device),
            "noprogressbar": True,
            "precision": precision,
        },
    )
    brain.steps_per_epoch = steps_per_epoch  # set by make_dataloader
    brain.on_fit_start()
    return brain


def fill_queues(ssps, gen):
    """Fills both SSPS queues with random rows, as in epoch start - 1."""
    dev = ssps.pos_queue.device
    ssps.on_epoch_start(ssps.start_epoch - 1)
    total = max(ssps.num_utterances, ssps.queue_size)
    order = torch.cat(
        [
            torch.randperm(ssps.num_utterances, generator=gen)
            for _ in range(-(-total // ssps.num_utterances))
        ]
    )[:total]
    for chunk in order.split(4096):
        b = chunk.numel()
        y = torch.randn(b, ssps.repr_dim, generator=gen)
        z = torch.randn(ssps.pos_views, b, ssps.pos_dim, generator=gen)
        ssps.update(chunk.to(dev), y.to(dev), F.normalize(z, dim=-1).to(dev))


def enter_epoch(brain, epoch):
    """What ``Brain.fit`` does before the first batch of an epoch.

    With SSPS in an active epoch, ``on_stage_start`` runs the k-means.
    """
    brain.on_stage_start(sb.Stage.TRAIN, epoch)
    brain.modules.train()
    brain.zero_grad()


def make_batch(indices, view_seconds, ref_seconds, gen):
    """A ``PaddedBatch`` of random waveforms: index, view_0.., ref."""
    items = []
    for i in indices.tolist():
        item = {"id": f"u{i}", "index": i}
        for k, seconds in enumerate(view_seconds):
            item[f"view_{k}"] = 0.1 * torch.randn(
                int(seconds * SAMPLE_RATE), generator=gen
            )
        item["ref"] = 0.1 * torch.randn(
            int(ref_seconds * SAMPLE_RATE), generator=gen
        )
        items.append(item)
    return PaddedBatch(items)


class PeakMemory:
    """Peak memory of one step: CUDA allocations, or the process's RSS."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device

    def reset(self) -> None:
        """Starts a step (CUDA: resets the peak statistics)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int:
        """Bytes: CUDA peak since :meth:`reset`, else peak RSS so far."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_one(framework, channels, args, device, out_dir, precision="fp32"):
    """Times baseline and SSPS steps of one framework at one width."""
    hparams = load_hparams(framework, channels, args, out_dir)
    batch_size = hparams["batch_size"]
    n_global = hparams["num_global_views"]
    n_local = hparams["num_local_views"]
    view_seconds = [hparams["global_crop_seconds"]] * n_global + [
        hparams["local_crop_seconds"]
    ] * n_local
    ssps = hparams["ssps"](
        num_utterances=args.utterances,
        pos_dim=hparams["framework"].positive_dim(hparams["modules"]),
    )
    steps_per_epoch = args.utterances // batch_size
    base = make_brain(hparams, device, steps_per_epoch, precision)
    brain = make_brain(hparams, device, steps_per_epoch, precision, ssps)
    gen = torch.Generator().manual_seed(args.seed)
    fill_queues(ssps, gen)
    enter_epoch(base, ssps.start_epoch)
    enter_epoch(brain, ssps.start_epoch)  # SSPS active: k-means here
    kmeans_s = ssps.kmeans_seconds

    clock = Clock(device)
    totals = defaultdict(float)
    for name in ("sample", "swap", "update"):
        setattr(ssps, name, timed(getattr(ssps, name), name, totals, clock))
    brain.encode_reference = timed(brain.encode_reference, "ref", totals, clock)
    if framework == "dino":  # an instance attribute shadows the method
        dino = brain.framework
        dino.targets = timed(dino.targets, "targets", totals, clock)

    n_steps = args.warmup + args.steps
    batches = [
        make_batch(
            torch.randperm(args.utterances, generator=gen)[:batch_size],
            view_seconds,
            args.ref_seconds,
            gen,
        )
        for _ in range(n_steps)
    ]
    rows = defaultdict(list)
    memory = PeakMemory(device)
    for step, batch in enumerate(batches):
        memory.reset()
        start = clock.now()
        loss = base.fit_batch(batch)
        base_s = clock.now() - start
        base_mem = memory.peak()
        totals.clear()
        memory.reset()
        start = clock.now()
        loss_ssps = brain.fit_batch(batch)
        ssps_s = clock.now() - start
        ssps_mem = memory.peak()
        rows["finite"].append(
            bool(torch.isfinite(loss) and torch.isfinite(loss_ssps))
        )
        if step < args.warmup:
            continue
        rows["base"].append(base_s)
        rows["ssps"].append(ssps_s)
        rows["base_mem"].append(base_mem)
        rows["ssps_mem"].append(ssps_mem)
        for key in SSPS_TIMERS:
            rows[key].append(totals[key])
    coverage = ssps.metrics()["coverage"]
    del base, brain, ssps, hparams, batches
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    result = summarise(
        framework, channels, batch_size, rows, kmeans_s, coverage
    )
    result.update(
        precision=precision,
        base_mem=max(rows["base_mem"]),
        ssps_mem=max(rows["ssps_mem"]),
        finite=all(rows["finite"]),
    )
    return result


def summarise(framework, channels, batch_size, rows, kmeans_s, coverage):
    """Medians over the timed steps (shares: median per-step fraction)."""
    med = statistics.median
    ops = [
        a + b + c
        for a, b, c in zip(rows["sample"], rows["swap"], rows["update"])
    ]
    reproj = [t - o for t, o in zip(rows["targets"], ops)]
    return {
        "framework": framework,
        "channels": channels,
        "batch": batch_size,
        "base": med(rows["base"]),
        "ssps": med(rows["ssps"]),
        "ratio": med(s / b for s, b in zip(rows["ssps"], rows["base"])),
        "ops": med(ops),
        "ops_share": med(o / s for o, s in zip(ops, rows["ssps"])),
        "ref": med(rows["ref"]),
        "ref_share": med(r / s for r, s in zip(rows["ref"], rows["ssps"])),
        "with_ref_share": med(
            (o + r) / s for o, r, s in zip(ops, rows["ref"], rows["ssps"])
        ),
        "reproj": med(reproj) if framework == "dino" else None,
        "kmeans": kmeans_s,
        "coverage": coverage,
    }


def print_steps(results, args, device, load_before, load_after):
    """The step-time table."""
    dev = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else _cpu_name()
    )
    print(f"device: {device} ({dev}), torch threads {torch.get_num_threads()}")
    print(
        "load average (1/5/15 min) before: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in load_after)
        + f" on {os.cpu_count()} CPUs"
    )
    print(
        f"DINO: batch {args.batch}, 2 x {args.global_seconds:g} s global + "
        f"4 x {args.local_seconds:g} s local crops; SimCLR: batch "
        f"{args.simclr_batch}, 2 x {args.local_seconds:g} s crops; "
        f"reference crop {args.ref_seconds:g} s"
    )
    print(
        f"SSPS: N={args.utterances:,} (paper {VOX2_DEV_UTTERANCES:,}), "
        f"K={args.clusters:,} (paper {PAPER_CLUSTERS:,}), "
        f"|Q'|={args.queue:,}, NCS M=1, float32 queues, DINO queue = "
        f"256-d bottleneck"
    )
    print(
        f"median of {args.steps} timed steps after {args.warmup} warm-up; "
        "baseline and SSPS steps interleaved on the same modules"
    )
    print()
    head = (
        f"{'framework':<13} {'prec':>4} {'C':>5} {'B':>4} {'base s':>8} "
        f"{'+SSPS s':>8} "
        f"{'ratio':>6} {'s+s+u ms':>9} {'share':>6} {'ref s':>7} "
        f"{'share':>6} {'+ref':>6} {'re-proj ms':>10} {'k-means s':>9} "
        f"{'cover':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        name = {"dino": "DINO", "simclr": "SimCLR"}[r["framework"]]
        reproj = "-" if r["reproj"] is None else f"{r['reproj'] * 1e3:.1f}"
        print(
            f"{name + '(+SSPS)':<13} {r['precision']:>4} "
            f"{r['channels']:>5} {r['batch']:>4} "
            f"{r['base']:>8.3f} {r['ssps']:>8.3f} {r['ratio']:>6.3f} "
            f"{r['ops'] * 1e3:>9.2f} {r['ops_share']:>6.2%} "
            f"{r['ref']:>7.3f} {r['ref_share']:>6.1%} "
            f"{r['with_ref_share']:>6.1%} {reproj:>10} "
            f"{r['kmeans']:>9.2f} {r['coverage']:>5.2f}"
        )
    print()
    print(
        "base s / +SSPS s: seconds per fit_batch without / with SSPS; ratio: "
        "median of paired (+SSPS / base);\ns+s+u: ssps.sample + swap + "
        "update, share = of the +SSPS step; ref: brain.encode_reference "
        "(reference encoder,\neval, no grad); +ref: share of s+s+u + ref; "
        "re-proj: rest of DINO.targets (teacher prototypes on the\n"
        "swapped bottlenecks); k-means: once at the epoch start (not in the "
        "step); cover: fraction of anchors given a pseudo-positive."
    )


def print_precision(results, device):
    """Steps per second and peak memory per precision (vs fp32)."""
    cuda = device.type == "cuda"
    what = (
        "torch.cuda.max_memory_allocated per step"
        if cuda
        else "process peak RSS so far (ru_maxrss; monotone, an upper bound)"
    )
    print()
    print(f"Precision: steps per second (median) and peak memory ({what})")
    head = (
        f"{'framework':<8} {'C':>5} {'B':>4} {'prec':>4} {'base it/s':>9} "
        f"{'+SSPS it/s':>10} {'speed-up':>8} {'base mem':>9} "
        f"{'+SSPS mem':>9} {'finite':>6}"
    )
    print(head)
    print("-" * len(head))
    fp32 = {
        (r["framework"], r["channels"]): r
        for r in results
        if r["precision"] == "fp32"
    }
    for r in results:
        name = {"dino": "DINO", "simclr": "SimCLR"}[r["framework"]]
        ref = fp32.get((r["framework"], r["channels"]))
        speed = f"{ref['ssps'] / r['ssps']:.2f}x" if ref else "-"
        print(
            f"{name:<8} {r['channels']:>5} {r['batch']:>4} "
            f"{r['precision']:>4} {1 / r['base']:>9.3f} "
            f"{1 / r['ssps']:>10.3f} {speed:>8} {_fmt(r['base_mem']):>9} "
            f"{_fmt(r['ssps_mem']):>9} {str(r['finite']):>6}"
        )
    print(
        "speed-up: fp32 +SSPS step time / this precision's; finite: every "
        "loss (warm-up included) finite."
    )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fin:
            for line in fin:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def queue_bytes(pos_dim, pos_views, dtype):
    """Buffer bytes of a paper-scale ``SSPS`` built on the meta device."""
    with torch.device("meta"):
        ssps = SSPS(
            VOX2_DEV_UTTERANCES,
            192,
            pos_dim,
            pos_views=pos_views,
            queue_size=PAPER_QUEUE_SIZE,
            num_clusters=PAPER_CLUSTERS,
            queue_dtype=dtype,
        )
    sizes = {
        name: (tuple(buf.shape), buf.nelement() * buf.element_size())
        for name, buf in ssps.named_buffers()
    }
    other = sum(
        size
        for name, (_, size) in sizes.items()
        if name not in ("pos_queue", "ref_queue")
    )
    return sizes["pos_queue"], sizes["ref_queue"], other


def print_memory():
    """Queue memory at paper scale, from the SSPS buffer shapes."""
    print()
    print(
        f"SSPS queue memory at paper scale (|Q'| = {PAPER_QUEUE_SIZE:,}, "
        f"N = {VOX2_DEV_UTTERANCES:,} VoxCeleb2 dev utterances, "
        f"K = {PAPER_CLUSTERS:,}; 1 GB = 1e9 B)"
    )
    head = (
        f"{'queue':<34} {'shape':<20} {'float32':>10} {'float16':>10} "
        f"{'vs logits':>9}"
    )
    print(head)
    print("-" * len(head))
    cases = (
        ("DINO Q': 65,536-d logits (paper)", 65_536, 2),
        ("DINO Q': 256-d bottleneck (ours)", 256, 2),
        ("SimCLR Q': 192-d embedding", 192, 1),
    )
    logits32 = None
    for label, dim, views in cases:
        (shape, b32), _, _ = queue_bytes(dim, views, "float32")
        (_, b16), _, _ = queue_bytes(dim, views, "float16")
        logits32 = logits32 or b32
        print(
            f"{label:<34} {'x'.join(map(str, shape)):<20} {_fmt(b32):>10} "
            f"{_fmt(b16):>10} {logits32 / b32:>8.0f}x"
        )
    _, (ref_shape, ref32), other = queue_bytes(256, 2, "float32")
    _, (_, ref16), _ = queue_bytes(256, 2, "float16")
    print(
        f"{'reference queue Q^ (N x 192)':<34} "
        f"{'x'.join(map(str, ref_shape)):<20} {_fmt(ref32):>10} "
        f"{_fmt(ref16):>10} {'':>9}"
    )
    print(
        f"{'indices, clusters, sort keys':<34} {'':<20} {_fmt(other):>10} "
        f"{_fmt(other):>10} {'':>9}"
    )


def _fmt(num_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} B"


def main():
    args = parse_args()
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in args.precisions:
            for channels in args.channels:
                for framework in args.frameworks:
                    start = time.perf_counter()
                    results.append(
                        bench_one(
                            framework,
                            channels,
                            args,
                            device,
                            Path(tmp),
                            precision,
                        )
                    )
                    print(
                        f"[{framework} C={channels} {precision}: "
                        f"{time.perf_counter() - start:.0f} s]",
                        flush=True,
                    )
    print()
    print_steps(results, args, device, load_before, os.getloadavg())
    print_precision(results, device)
    print_memory()
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
