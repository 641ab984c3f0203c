"""Cost of one SSPS training step (sample + swap + update).

Compares :class:`speechbrain_ssps.ssps.SSPS` with a straightforward baseline
written here: a Python loop over the anchors that scans the whole positive
queue for each of them (what the reference implementation does), measured
in the same run on the same state.

Run::

    python benchmarks/ssps_step.py            # the issue's setting
    python benchmarks/ssps_step.py --device cuda

Default setting: B=128 anchors, |Q'|=25,000 entries of 2 views x 256,
N=100,000 utterances, K=2,500 clusters, NCS with M=1.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from speechbrain_ssps.ssps import SSPS


def loop_baseline_step(ssps, anchors, z_pos, y_ref, gen):
    """Per-anchor sampling by a linear scan of the queue, then the update."""
    pos_clusters = ssps.assignments[ssps.pos_indices.clamp(min=0)]
    pos_clusters[ssps.pos_indices < 0] = -1
    slots = []
    for i in anchors.tolist():
        own = int(ssps.assignments[i])
        if own < 0:
            slots.append(-1)
            continue
        col = int(torch.randint(ssps.neighbors.shape[1], (1,), generator=gen))
        target = int(ssps.neighbors[own, col])
        mask = (pos_clusters == target) & (ssps.pos_indices != i)
        candidates = mask.nonzero().squeeze(1)
        if candidates.numel() == 0:
            slots.append(-1)
            continue
        pick = torch.randint(candidates.numel(), (1,), generator=gen)
        slots.append(int(candidates[pick]))
    out = z_pos.clone()
    for j, slot in enumerate(slots):
        if slot >= 0:
            out[:, j] = ssps.pos_queue[slot]
    # Queue update as in the reference code: one row at a time.
    q = ssps.queue_size
    for j, i in enumerate(anchors.tolist()):
        ssps.ref_queue[i] = F.normalize(y_ref[j], dim=0)
        ptr = int(ssps.pos_ptr)
        ssps.pos_queue[ptr] = z_pos[:, j]
        ssps.pos_indices[ptr] = i
        ssps.pos_ptr.fill_((ptr + 1) % q)
    return out


def vectorised_step(ssps, anchors, z_pos, y_ref):
    ssps.sample(anchors)
    out = ssps.swap(z_pos)
    ssps.update(anchors, y_ref, z_pos)
    return out


def build(args, device):
    ssps = SSPS(
        args.utterances,
        args.repr_dim,
        args.pos_dim,
        pos_views=args.views,
        queue_size=args.queue,
        num_clusters=args.clusters,
        sampling="ncs",
        num_neighbors=1,
        start_epoch=2,
    ).to(device)
    gen = torch.Generator().manual_seed(0)
    ssps.on_epoch_start(1)
    for batch in torch.randperm(args.utterances, generator=gen).split(4096):
        b = batch.numel()
        ssps.update(
            batch.to(device),
            torch.randn(b, args.repr_dim, device=device),
            torch.randn(args.views, b, args.pos_dim, device=device),
        )
    ssps.epoch = 2  # active, with a random clustering (k-means not timed)
    ssps.set_clusters(
        torch.randint(args.clusters, (args.utterances,), generator=gen),
        torch.randn(args.clusters, args.repr_dim, generator=gen),
    )
    return ssps


def time_steps(fn, steps, device):
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--queue", type=int, default=25000)
    parser.add_argument("--utterances", type=int, default=100000)
    parser.add_argument("--clusters", type=int, default=2500)
    parser.add_argument("--pos_dim", type=int, default=256)
    parser.add_argument("--repr_dim", type=int, default=192)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--baseline_steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    ssps = build(args, device)
    gen = torch.Generator().manual_seed(1)

    def batch():
        anchors = torch.randperm(args.utterances, generator=gen)[: args.batch]
        return (
            anchors.to(device),
            torch.randn(args.views, args.batch, args.pos_dim, device=device),
            torch.randn(args.batch, args.repr_dim, device=device),
        )

    inputs = [batch() for _ in range(args.steps)]
    it = iter(inputs)
    vec = time_steps(
        lambda: vectorised_step(ssps, *next(it)), args.steps, device
    )
    coverage = ssps.metrics()["coverage"]
    it = iter(inputs)
    base = time_steps(
        lambda: loop_baseline_step(ssps, *next(it), gen),
        args.baseline_steps,
        device,
    )
    print(
        f"device={device} threads={torch.get_num_threads()} "
        f"B={args.batch} |Q'|={args.queue} N={args.utterances} "
        f"K={args.clusters} P={args.pos_dim} V={args.views}"
    )
    print(
        f"vectorised SSPS step  : {vec * 1e3:8.3f} ms (median of "
        f"{args.steps}, coverage {coverage:.2f})"
    )
    print(
        f"per-anchor loop step  : {base * 1e3:8.3f} ms (median of "
        f"{args.baseline_steps})"
    )
    print(f"speed-up              : {base / vec:8.1f}x")


if __name__ == "__main__":
    main()
