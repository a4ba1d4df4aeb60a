"""`make bench`: generation time per problem type, render time and TeX time for a 10-problem sheet, a class set, and marking."""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

from generator.documents.pdf import compile_pdf
from generator.documents.presets import PRESETS, preset_problems
from generator.core.registry import make_problem, problem_types
from generator.documents.sheet import ProblemSpec, SheetSpec, build, problem_seed, render_key, render_key_json, render_worksheet, write_outputs

SEEDS = 1000
GENERATION_P99_TARGET_MS = 20.0
CHAINED_P99_TARGET_MS = 100.0
# The issue's own figure for the longest chain: a whole training step (forward, backward to every parameter, AdamW).
P99_TARGETS_MS = {"training_step": 150.0}
RATIO_TARGET = 0.10
LARGEST_CHAINED = "tiny_transformer"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_generation() -> None:
    """Median and p99 generation time per problem, over SEEDS seeds per type (options cycled)."""
    print(f"generation per problem over {SEEDS} seeds (target p99 < {GENERATION_P99_TARGET_MS:g} ms; "
          f"chained worksheets < {CHAINED_P99_TARGET_MS:g} ms; "
          + ", ".join(f"{name} < {ms:g} ms" for name, ms in P99_TARGETS_MS.items()) + ")")
    print(f"  {'type':<18}{'median ms':>10}{'p99 ms':>10}  verdict")
    for name, kind in problem_types().items():
        option_sets = kind.option_sets()
        samples = []
        for seed in range(SEEDS):
            start = time.perf_counter()
            make_problem(name, option_sets[seed % len(option_sets)], problem_seed(seed, 1, name))
            samples.append((time.perf_counter() - start) * 1000)
        p99 = _percentile(samples, 0.99)
        target = P99_TARGETS_MS.get(name, CHAINED_P99_TARGET_MS if kind.chained else GENERATION_P99_TARGET_MS)
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


CLASS_SIZE = 300
CLASS_TOTAL_TARGET_S = 10.0
CLASS_PYTHON_TARGET_S = 3.0
CLASS_MEMORY_TARGET_MB = 500
EXAMPLE_ASSIGNMENT = Path(__file__).resolve().parent.parent / "examples" / "assignment.toml"
BENCH_SECRET = bytes(range(32))  # a fixed class secret: every run times the same numbers
_NAMES = ("Zoë Ångström", "José Núñez", "Łukasz Żółć", "Siobhán O'Brien", "Nguyễn Văn An", "Åsa Öberg", "Ирина Петрова")


def bench_class() -> None:
    """A class of CLASS_SIZE with the example assignment, everything built (the command `class --pdf` does), then
    rebuilt after one student's name changed. Run first in a fresh process: peak memory includes only this."""
    from generator.classes.assignment import load_assignment
    from generator.classes.classbuild import Summary, generate, write_class
    from generator.classes.roster import Student

    load = os.getloadavg()[0]
    assignment = load_assignment(EXAMPLE_ASSIGNMENT)
    roster = tuple(Student(f"s{i:03d}", f"{_NAMES[i % len(_NAMES)]} {i}", 0, i + 1) for i in range(1, CLASS_SIZE + 1))
    with tempfile.TemporaryDirectory() as folder:
        summary = Summary()
        start = time.perf_counter()
        workers = os.cpu_count() or 1
        sheets = generate(assignment, roster, BENCH_SECRET, workers=workers)
        python = time.perf_counter() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes are done: the rest is TeX
        write_class(assignment, sheets, Path(folder), BENCH_SECRET, pdf=True, summary=summary)
        total = time.perf_counter() - start
        tex, split = summary.seconds["TeX"], summary.seconds["splitting"]
        writing = total - python - tex - split
        self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        tex_mb = after.ru_maxrss / 1024
        # CPU time of the pdflatex runs: on a busy machine the wall time above is longer than the work.
        tex_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        changed = (roster[0].__class__(roster[0].id, roster[0].name + " Jr.", 0, 2),) + roster[1:]
        start = time.perf_counter()
        again = Summary()
        write_class(assignment, generate(assignment, changed, BENCH_SECRET), Path(folder), BENCH_SECRET, pdf=True,
                    summary=again)
        rebuild = time.perf_counter() - start
    n = len(roster)
    pages = ", ".join(f"{name} {count}" for name, count in summary.pages.items())
    print(f"class set: {n} students, {assignment.name} ({len(assignment.problems)} problems), pages: {pages}")
    print(f"  {'stage':<24}{'whole class':>12}{'per student':>13}  target")
    for label, seconds, target in (
        ("generation + rendering", python, CLASS_PYTHON_TARGET_S),
        ("writing .tex/.json", writing, None),
        ("TeX (3 documents)", tex, None),
        ("per-student PDFs", split, None),
        ("total", total, CLASS_TOTAL_TARGET_S),
    ):
        verdict = f"<= {target:g} s  {'ok' if seconds <= target else 'SLOW'}" if target else ""
        print(f"  {label:<24}{seconds:>10.2f} s{seconds / n * 1000:>10.1f} ms  {verdict}")
    print(f"  pdflatex CPU time: {tex_cpu:.2f} s for the three documents, run side by side on {os.cpu_count()} cores; "
          f"generation in {workers} process{'es' if workers > 1 else ''} (load average before: {load:.1f})")
    memory_ok = max(self_mb, tex_mb) <= CLASS_MEMORY_TARGET_MB
    print(f"  peak memory: Python {self_mb:.0f} MB, largest child process {tex_mb:.0f} MB "
          f"(target <= {CLASS_MEMORY_TARGET_MB} MB)  {'ok' if memory_ok else 'HIGH'}")
    print(f"  rebuild after one name changed: {rebuild:.2f} s ({len(again.changed)} student rewritten, "
          f"{again.pdfs_written} student PDFs cut, {again.pdfs_unchanged} unchanged)")


MARKING_TARGET_S = 3.0  # issue 13: 300 students × about 60 blanks
MARKING_PROBLEMS = ("matmul", "attention_scores:mask=causal", "example5", "layernorm", "sgd_step", "softmax:form=table")


def bench_marking() -> None:
    """Mark a class of CLASS_SIZE (about 60 blanks each, a third with errors carried forward) from its answers file:
    reading keys and answers, parsing, marking with follow-through and named mistakes, and writing every report."""
    import json

    from generator.classes.assignment import parse_assignment
    from generator.csvfile import csv_text
    from generator.classes.classbuild import Summary, generate, write_class
    from generator.marking.followthrough import apply, valid_recipes
    from generator.marking.markkey import key_from_data
    from generator.marking.marker import FOLLOW_THROUGH, Policy
    from generator.marking.markrun import class_roster, mark_files
    from generator.marking.reports import report_files, write_reports
    from generator.classes.roster import Student

    assignment = parse_assignment({"name": "bench", "title": "Marking benchmark", "seed": 6, "calculator": "basic",
                                   "problems": [{"type": spec.split(":")[0], "points": 4,
                                                 **({"options": dict([spec.split(":")[1].split("=")])} if ":" in spec else {})}
                                                for spec in MARKING_PROBLEMS]}, Path("bench.toml"))
    roster = tuple(Student(f"s{i:03d}", f"{_NAMES[i % len(_NAMES)]} {i}", 0, i + 1) for i in range(1, CLASS_SIZE + 1))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        write_class(assignment, generate(assignment, roster, BENCH_SECRET, workers=os.cpu_count() or 1), out / "class",
                    BENCH_SECRET, pdf=False, summary=Summary())
        manifest = json.loads((out / "class" / "class.json").read_text())
        rows = [["student_id", "variant", "blank", "answer"]]
        for n, entry in enumerate(manifest["students"]):
            data = json.loads((out / "class" / "students" / f"{entry['stem']}-key.json").read_text())
            rows += _bench_answers(key_from_data(data), entry["id"], n % 3, apply, valid_recipes)
        (out / "answers.csv").write_text(csv_text(rows), encoding="utf-8")
        start = time.perf_counter()
        run = mark_files([out / "answers.csv"], class_roster(out / "class"), Policy())
        marked = time.perf_counter()
        write_reports(report_files(run, assignment.title), out / "marks")
        total = time.perf_counter() - start
    blanks = sum(len(s.marks) for s in run.students)
    follow = sum(1 for s in run.students for m in s.marks if m.status == FOLLOW_THROUGH)
    verdict = "ok" if total <= MARKING_TARGET_S else "SLOW"
    print(f"marking: {len(run.students)} students x {blanks // max(1, len(run.students))} blanks ({blanks} answers, "
          f"{follow} given follow-through credit, {len(run.issues)} input problems)")
    print(f"  read + parse + mark {marked - start:.2f} s, reports {total - (marked - start):.2f} s, "
          f"total {total:.2f} s ({total / max(1, len(run.students)) * 1000:.1f} ms per student; "
          f"target <= {MARKING_TARGET_S:g} s)  {verdict}")


# The chains whose follow-through recipes cost the most to find (once per spec and process, before any marking).
DISCOVERY_SPECS = ("tiny_transformer", "example3", "training_step", "training_step:heads=2,forward=compute")
DISCOVERY_TARGET_S = 5.0  # a spec's recipes in no more time than a whole class's marking


def bench_discovery() -> None:
    """Seconds to find every follow-through recipe of the longest chains, in a fresh cache."""
    from generator.marking.followthrough import recipes_for, reference_samples
    from generator.marking.markkey import key_from_data
    from generator.documents.sheet import key_data

    print(f"follow-through recipes per spec, found once per process (target <= {DISCOVERY_TARGET_S:g} s each)")
    for text in DISCOVERY_SPECS:
        spec = ProblemSpec.parse(text)
        data = key_data(build(SheetSpec(title="bench", seed=1, calculator="basic", problems=(spec,))))
        spec_key = key_from_data(data).problems[0].spec_key
        start = time.perf_counter()
        reference_samples(spec_key)
        drawn = time.perf_counter()
        recipes = recipes_for(spec_key)
        found = time.perf_counter()
        verdict = "ok" if found - start <= DISCOVERY_TARGET_S else "SLOW"
        print(f"  {text:<40} references {drawn - start:5.2f} s, recipes {found - drawn:5.2f} s "
              f"({sum(len(r) for r in recipes.values())} for {len(recipes)} answers)  {verdict}")


def _bench_answers(key, student_id: str, kind: int, apply, valid_recipes) -> list[list[str]]:
    """A student's answers: all right (kind 0), an early slip carried forward through every later step (1),
    or a few wrong and unreduced entries (2)."""
    from fractions import Fraction

    from generator.marking import exactnum as xn

    answers = {b.label: b.text for b in key.blanks}
    for problem in key.problems:
        values = {name: q.values for name, q in problem.quantities.items()}
        answer_names = [n for n, q in problem.quantities.items() if q.source == "answer"]
        if kind == 1 and answer_names:
            first = answer_names[0]
            values[first] = tuple(tuple(x + 1 if (i, j) == (0, 0) and isinstance(x, Fraction) else x
                                        for j, x in enumerate(row)) for i, row in enumerate(values[first]))
            recipes = valid_recipes(problem)
            for name in answer_names[1:]:
                for recipe in recipes.get(name, ()):
                    try:
                        values[name] = apply(recipe, values)
                        break
                    except (xn.Undefined, KeyError):
                        continue
        for name in answer_names:
            for (i, j), blank in problem.quantities[name].blanks.items():
                value = values[name][i][j]
                if kind == 2 and (i + j) % 4 == 1:
                    answers[blank.label] = "0" if blank.text != "0" else "1"
                elif isinstance(value, Fraction):
                    answers[blank.label] = str(value) if kind != 2 or value.denominator == 1 else \
                        f"{2 * value.numerator}/{2 * value.denominator}"
                elif xn.is_neg_inf(value):
                    answers[blank.label] = "-inf"
                else:
                    answers[blank.label] = xn.CTX.nstr(value, 6)
    return [[student_id, key.variant, label, text] for label, text in answers.items()]


if __name__ == "__main__":
    if sys.argv[1:] == ["marking"]:
        bench_marking()
        bench_discovery()
        sys.exit(0)
    bench_class()
    if sys.argv[1:] == ["class"]:
        sys.exit(0)
    bench_marking()
    bench_discovery()
    bench_generation()
    bench_documents()
    bench_presets()
