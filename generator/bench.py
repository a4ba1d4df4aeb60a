"""`make bench`: generation time per problem type, render time and TeX time for a 10-problem sheet."""

from __future__ import annotations

import statistics
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

from .pdf import compile_pdf
from .presets import PRESETS, preset_problems
from .registry import make_problem, problem_types
from .sheet import ProblemSpec, SheetSpec, build, problem_seed, render_key, render_key_json, render_worksheet, write_outputs

SEEDS = 1000
GENERATION_P99_TARGET_MS = 20.0
CHAINED_P99_TARGET_MS = 100.0
RATIO_TARGET = 0.10
LARGEST_CHAINED = "tiny_transformer"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_generation() -> None:
    """Median and p99 generation time per problem, over SEEDS seeds per type (options cycled)."""
    print(f"generation per problem over {SEEDS} seeds (target p99 < {GENERATION_P99_TARGET_MS:g} ms; "
          f"chained worksheets < {CHAINED_P99_TARGET_MS:g} ms)")
    print(f"  {'type':<18}{'median ms':>10}{'p99 ms':>10}  verdict")
    for name, kind in problem_types().items():
        option_sets = kind.option_sets()
        samples = []
        for seed in range(SEEDS):
            start = time.perf_counter()
            make_problem(name, option_sets[seed % len(option_sets)], problem_seed(seed, 1, name))
            samples.append((time.perf_counter() - start) * 1000)
        p99 = _percentile(samples, 0.99)
        target = CHAINED_P99_TARGET_MS if kind.chained else GENERATION_P99_TARGET_MS
        verdict = "ok" if p99 < target else "SLOW"
        print(f"  {name:<18}{statistics.median(samples):>10.2f}{p99:>10.2f}  {verdict}")
    # The target is for the largest chained worksheet as teachers get it: its default options.
    samples = []
    for seed in range(SEEDS):
        start = time.perf_counter()
        make_problem(LARGEST_CHAINED, {}, problem_seed(seed, 1, LARGEST_CHAINED))
        samples.append((time.perf_counter() - start) * 1000)
    p99 = _percentile(samples, 0.99)
    verdict = "ok" if p99 < CHAINED_P99_TARGET_MS else "SLOW"
    print(f"  {LARGEST_CHAINED + ' (defaults)':<18}{statistics.median(samples):>10.2f}{p99:>10.2f}  {verdict}")


def bench_documents() -> None:
    """Generation + rendering of a 10-problem sheet and its key, against latexmk/pdflatex for both.

    Printed twice: cold (the first sheet of a process, which also compiles the templates) and warm
    (every later sheet, as in a class set); the target is judged on the warm figure.
    """
    names = list(islice(cycle(sorted(problem_types())), 10))
    problems = tuple(ProblemSpec.parse(n) for n in names)
    timings = []
    for seed in (1, 2):
        spec = SheetSpec(title="Benchmark", seed=seed, problems=problems, calculator="basic")
        start = time.perf_counter()
        sheet = build(spec)
        generated = time.perf_counter()
        render_worksheet(sheet), render_key(sheet), render_key_json(sheet)
        timings.append((generated - start, time.perf_counter() - generated, sheet))
    with tempfile.TemporaryDirectory() as folder:
        paths = write_outputs(timings[-1][2], "bench", Path(folder), Path(folder))
        tex_start = time.perf_counter()
        for kind in ("worksheet", "key"):
            compile_pdf(paths[kind])
        tex = time.perf_counter() - tex_start
    print(f"10-problem sheet and key (latexmk/pdflatex {tex * 1000:.0f} ms for both):")
    for label, (generation, rendering, _) in zip(("cold", "warm"), timings):
        ratio = (generation + rendering) / tex
        verdict = "" if label == "cold" else ("ok" if ratio < RATIO_TARGET else "SLOW")
        print(f"  {label}: generation {generation * 1000:.1f} ms, rendering {rendering * 1000:.1f} ms, "
              f"(generation + rendering) / TeX = {ratio:.1%} (target < {RATIO_TARGET:.0%})  {verdict}")


PRESET_SEEDS = 5


def bench_presets() -> None:
    """Each preset as `make` builds it: generation + rendering (median over PRESET_SEEDS seeds, and the first,
    cold build) against latexmk for the seed-1 sheet and key."""
    print(f"presets (as `make` builds them; Python time is the median of {PRESET_SEEDS} seeds, judged; cold = first build):")
    for name in PRESETS:
        title, calculator, problems = preset_problems(name)
        timings = []
        for seed in range(1, PRESET_SEEDS + 1):
            spec = SheetSpec(title=title, seed=seed, problems=problems, calculator=calculator)
            start = time.perf_counter()
            sheet = build(spec)
            texts = (render_worksheet(sheet), render_key(sheet), render_key_json(sheet))
            timings.append(time.perf_counter() - start)
            if seed == 1:
                first_sheet, first_texts = sheet, texts
        python = statistics.median(timings)
        with tempfile.TemporaryDirectory() as folder:
            paths = write_outputs(first_sheet, name, Path(folder), Path(folder))
            tex_start = time.perf_counter()
            for kind in ("worksheet", "key"):
                compile_pdf(paths[kind])
            tex = time.perf_counter() - tex_start
        ratio = python / tex
        print(f"  {name:<16} generation + rendering {python * 1000:6.1f} ms (cold {timings[0] * 1000:6.1f}), "
              f"TeX {tex * 1000:5.0f} ms, ratio {ratio:.1%}  {'ok' if ratio < RATIO_TARGET else 'SLOW'}  "
              f"({sum(map(len, first_texts))} characters)")


if __name__ == "__main__":
    bench_generation()
    bench_documents()
    bench_presets()
