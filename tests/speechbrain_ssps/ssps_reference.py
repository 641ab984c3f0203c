"""A plain per-anchor loop sampler, the reference of ``SSPS.sample``.

It follows SSPS.md §3 literally, with no index: for each anchor, the target
cluster is column ``floor(u1 * M)`` of its row of the neighbour table; the
candidates are the queue slots whose utterance is assigned to that cluster
and lies outside the anchor's exclusion group, listed in the order of the
index keys (group, then slot); the drawn one is candidate
``floor(u0 * count)``. Given the same uniform draws, the vectorised sampler
must return exactly these slots.

Example
-------
>>> reference_neighbors([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], 1)
[[1], [0], [1]]
>>> slots, positives = reference_sample(
...     pos_indices=[0, 1, 2, -1], assignments=[0, 0, 0],
...     neighbors=[[0]], groups=[0, 1, 2], anchors=[1], u=[[0.99], [0.0]])
>>> slots, positives  # candidates: slots 0 and 2 (utterance 1 excluded)
([2], [2])
"""


def reference_neighbors(centroids, num_neighbors):
    """Each cluster's ``num_neighbors`` most similar others, by a loop.

    Similarities are summed in Python floats (double precision); ties go
    to the lower cluster index.
    """
    rows = [[float(x) for x in row] for row in centroids]
    table = []
    for k, row in enumerate(rows):
        sims = []
        for j, other in enumerate(rows):
            if j != k:
                sims.append((-sum(a * b for a, b in zip(row, other)), j))
        table.append([j for _, j in sorted(sims)[:num_neighbors]])
    return table


def reference_sample(pos_indices, assignments, neighbors, groups, anchors, u):
    """The slot and utterance drawn for each anchor (-1: none).

    Arguments
    ---------
    pos_indices : list of int
        The utterance of each queue slot, -1 = empty.
    assignments : list of int
        The cluster of each utterance, -1 = not assigned.
    neighbors : list of list of int
        The target clusters of each cluster (SCS: ``[[0], [1], ...]``).
    groups : list of int
        The exclusion group of each utterance.
    anchors : list of int
        The anchors' utterances.
    u : pair of lists of float
        ``u[0][b]`` picks the candidate, ``u[1][b]`` the neighbour column.

    Returns
    -------
    slots, positives : list of int
    """
    slots, positives = [], []
    for b, anchor in enumerate(anchors):
        own = assignments[anchor]
        if own < 0:
            slots.append(-1)
            positives.append(-1)
            continue
        row = neighbors[own]
        target = row[min(int(u[1][b] * len(row)), len(row) - 1)]
        candidates = []
        for slot, utt in enumerate(pos_indices):
            if utt < 0 or assignments[utt] != target:
                continue
            if groups[utt] == groups[anchor]:
                continue
            candidates.append((groups[utt], slot))
        if not candidates:
            slots.append(-1)
            positives.append(-1)
            continue
        candidates.sort()
        pick = min(int(u[0][b] * len(candidates)), len(candidates) - 1)
        slot = candidates[pick][1]
        slots.append(slot)
        positives.append(pos_indices[slot])
    return slots, positives
