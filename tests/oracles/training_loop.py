"""training_loop: len() of a real torch.utils.data.DataLoader over range(N), and the run replayed batch by batch."""

from __future__ import annotations

from torch.utils.data import DataLoader

from ..conftest import as_float


def _run(n: int, b: int, e: int, drop_last: bool) -> tuple[int, int, int, list[int]]:
    """(batches per epoch, steps, samples seen, samples seen after each step) over E epochs."""
    loader = DataLoader(range(n), batch_size=b, drop_last=drop_last, shuffle=False)
    seen, trail = 0, []
    for _ in range(e):
        for batch in loader:
            seen += len(batch)
            trail.append(seen)
    return len(loader), len(trail), seen, trail


def oracle(given, facts, options):
    n, b, e = (int(as_float(given[k])) for k in "NBE")
    mode = options["drop_last"]
    out = {}
    if mode in ("no", "both"):
        batches, steps, seen, trail = _run(n, b, e, drop_last=False)
        last = len(list(DataLoader(range(n), batch_size=b))[-1])
        out.update(batches=batches, last=last, steps=steps, seen=seen)
        # Steps until exactly S samples have gone through the model.
        out["steps_S"] = trail.index(int(as_float(given["S"]))) + 1
    if mode in ("yes", "both"):
        batches, steps, seen, _ = _run(n, b, e, drop_last=True)
        out.update(batches_drop=batches, steps_drop=steps, seen_drop=seen)
        dropped = n - batches * b  # the samples no full batch holds
        if mode == "yes":
            out["last"] = dropped
        else:
            assert dropped == out["last"]
    return {k: float(v) for k, v in out.items()}
