"""`make bench`: generation time per problem type, render time and TeX time for a 10-problem sheet, a class set, marking,
and the web page under a class (the real server, 300 students saving and checking at once)."""

from __future__ import annotations

import os
import random
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
    """Median and p99 generation time per problem, over SEEDS seeds per type (options cycled). Each type is drawn in
    a process of its own forked from this one, its heap frozen before (classbuild.frozen_heap), as a class build's
    workers are: the caches and garbage of fifty other types do not slow the next (a class build's workers draw only
    its assignment's few types)."""
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import ExitStack
    import multiprocessing

    from generator.classes.classbuild import frozen_heap

    print(f"generation per problem over {SEEDS} seeds, each type in a worker forked as a class build forks them "
          f"(target p99 < {GENERATION_P99_TARGET_MS:g} ms; chained worksheets < {CHAINED_P99_TARGET_MS:g} ms; "
          + ", ".join(f"{name} < {ms:g} ms" for name, ms in P99_TARGETS_MS.items()) + ")")
    print(f"  {'type':<18}{'median ms':>10}{'p99 ms':>10}  verdict")
    types = problem_types()  # loaded before the fork, as in a class build (its workers start after the first sheet)
    runs = [(name, None) for name in types] + [(LARGEST_CHAINED, {})]  # the last: the chain teachers get by default
    for name, options in runs:
        with ExitStack() as stack:
            frozen_heap(stack)
            worker = stack.enter_context(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")))
            samples = worker.submit(_generation_samples, name, options).result()
        p99 = _percentile(samples, 0.99)
        if options is None:
            label = name
            target = P99_TARGETS_MS.get(name, CHAINED_P99_TARGET_MS if types[name].chained else GENERATION_P99_TARGET_MS)
        else:  # the target is for the largest chained worksheet as teachers get it: its default options
            label, target = f"{name} (defaults)", CHAINED_P99_TARGET_MS
        verdict = "ok" if p99 < target else "SLOW"
        print(f"  {label:<18}{statistics.median(samples):>10.2f}{p99:>10.2f}  {verdict}")


def _generation_samples(name: str, options: dict[str, str] | None) -> list[float]:
    """Milliseconds to make each of SEEDS problems of the type (its option sets in turn, or `options` for all)."""
    option_sets = problem_types()[name].option_sets() if options is None else [options]
    samples = []
    for seed in range(SEEDS):
        start = time.perf_counter()
        make_problem(name, option_sets[seed % len(option_sets)], problem_seed(seed, 1, name))
        samples.append((time.perf_counter() - start) * 1000)
    return samples


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
    from contextlib import ExitStack

    from generator.classes.classbuild import frozen_heap

    print(f"presets (as `make` builds them; Python time is the median of {PRESET_SEEDS} seeds, judged; cold = first build):")
    with ExitStack() as stack:
        frozen_heap(stack)  # as `transformer-worksheets sheet` freezes its heap before it makes the sheet
        for name in PRESETS:
            _bench_preset(name)


def _bench_preset(name: str) -> None:
    """One preset's line of bench_presets."""
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
CLASS_TOTAL_TARGET_S = 5.0  # issue 16: 300 students with PDFs on a quiet 2-core machine
CLASS_RATIO_TARGET = 3.0  # ... and at most 3× one pdflatex run of the same pages, measured in the same run
CLASS_REBUILD_TARGET_S = 2.0  # a rebuild after one student's name changed
CLASS_PYTHON_TARGET_S = 3.0
CLASS_MEMORY_TARGET_MB = 500
CLASS_10K = 10_000
CLASS_10K_TARGET_S = 60.0  # without PDFs, memory that does not grow with the class
EXAMPLE_ASSIGNMENT = Path(__file__).resolve().parent.parent / "examples" / "assignment.toml"
BENCH_SECRET = bytes(range(32))  # a fixed class secret: every run times the same numbers
_NAMES = ("Zoë Ångström", "José Núñez", "Łukasz Żółć", "Siobhán O'Brien", "Nguyễn Văn An", "Åsa Öberg", "Ирина Петрова")


def _class_roster(size: int):
    from generator.classes.roster import Student

    return tuple(Student(f"s{i:05d}" if size > 999 else f"s{i:03d}", f"{_NAMES[i % len(_NAMES)]} {i}", 0, i + 1)
                 for i in range(1, size + 1))


def _plain_pdflatex(folder: Path) -> float:
    """Wall time of one plain pdflatex run of each whole-class document (worksheets.tex, keys.tex: the same pages
    the build makes), one after the other, in a copy of the folder: the side-by-side reference of issue 16."""
    import shutil
    import subprocess

    from generator.classes.classpdf import PDFLATEX_FLAGS

    with tempfile.TemporaryDirectory() as plain:
        for name in ("worksheets.tex", "keys.tex", "names.dims", "names.pdf"):
            if (folder / name).exists():
                shutil.copyfile(folder / name, Path(plain) / name)
        start = time.perf_counter()
        for name in ("worksheets.tex", "keys.tex"):
            subprocess.run(["pdflatex", *PDFLATEX_FLAGS, name], cwd=plain, check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def _verdict(seconds: float, target: float) -> str:
    return f"<= {target:g} s  {'ok' if seconds <= target else 'SLOW'}"


def bench_class() -> None:
    """A class of CLASS_SIZE with the example assignment, everything built (the command `class --pdf` does), then
    rebuilt after one student's name changed; beside it, one plain pdflatex run of the same pages (the two
    whole-class documents), timed in the same run. Run first in a fresh process: peak memory includes only this."""
    from generator.classes.assignment import load_assignment
    from generator.classes.classbuild import Summary, generate, start_names, write_class

    load = os.getloadavg()[0]
    assignment = load_assignment(EXAMPLE_ASSIGNMENT)
    roster = _class_roster(CLASS_SIZE)
    with tempfile.TemporaryDirectory() as folder:
        summary = Summary()
        start = time.perf_counter()
        cpu_start = os.times()
        workers = os.cpu_count() or 1
        # As `class` does (build_class): LuaTeX sets the names while the sheets are generated.
        names_run = start_names(roster, Path(folder), pdf=True)
        sheets = generate(assignment, roster, BENCH_SECRET, workers=workers, cache=Path(folder))
        python = time.perf_counter() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes are done: the rest is TeX
        write_class(assignment, sheets, Path(folder), BENCH_SECRET, pdf=True, summary=summary, names_run=names_run)
        total = time.perf_counter() - start
        cpu_end = os.times()
        cpu = sum(cpu_end[:4]) - sum(cpu_start[:4])
        tex, split = summary.seconds["TeX"], summary.seconds["splitting"]
        writing = total - python - tex - split
        self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        tex_mb = after.ru_maxrss / 1024
        # CPU time of the pdflatex runs: on a busy machine the wall time above is longer than the work.
        tex_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        plain = _plain_pdflatex(Path(folder))
        changed = (roster[0].__class__(roster[0].id, roster[0].name + " Jr.", 0, 2),) + roster[1:]
        start = time.perf_counter()
        again = Summary()
        sheets = generate(assignment, changed, BENCH_SECRET, cache=Path(folder))  # the others from their records
        again.seconds["generation"] = time.perf_counter() - start
        write_class(assignment, sheets, Path(folder), BENCH_SECRET, pdf=True, summary=again)
        rebuild = time.perf_counter() - start
    n = len(roster)
    pages = ", ".join(f"{name} {count}" for name, count in summary.pages.items())
    print(f"class set: {n} students, {assignment.name} ({len(assignment.problems)} problems), pages: {pages}")
    print(f"  {'stage':<28}{'whole class':>12}{'per student':>13}  target")
    for label, seconds, target in (
        ("generation + rendering", python, CLASS_PYTHON_TARGET_S),  # LuaTeX sets the names meanwhile
        ("writing what TeX compiles", writing, None),  # the grading sheet's and the chunks' .tex
        ("TeX, students' files, PDFs", tex, None),  # files written, PDFs cut and joined while chunks compile
        ("PDFs after TeX", split, None),
        ("total", total, CLASS_TOTAL_TARGET_S),
    ):
        verdict = _verdict(seconds, target) if target else ""
        print(f"  {label:<28}{seconds:>10.2f} s{seconds / n * 1000:>10.1f} ms  {verdict}")
    ratio = total / plain
    print(f"  one plain pdflatex run of the same pages (worksheets.tex, then keys.tex), same run: {plain:.2f} s; "
          f"build / pdflatex {ratio:.2f}x (target <= {CLASS_RATIO_TARGET:g}x)  "
          f"{'ok' if ratio <= CLASS_RATIO_TARGET else 'SLOW'}")
    print(f"  CPU time of the build: {cpu:.2f} s, of which pdflatex {tex_cpu:.2f} s ({summary.chunks_compiled} "
          f"chunks and the grading sheet, a pdflatex per core on {os.cpu_count()} cores); generation in {workers} "
          f"process{'es' if workers > 1 else ''} (load average before: {load:.1f})")
    memory_ok = max(self_mb, tex_mb) <= CLASS_MEMORY_TARGET_MB
    print(f"  peak memory: Python {self_mb:.0f} MB, largest child process {tex_mb:.0f} MB "
          f"(target <= {CLASS_MEMORY_TARGET_MB} MB)  {'ok' if memory_ok else 'HIGH'}")
    print(f"  rebuild after one name changed: {rebuild:.2f} s  {_verdict(rebuild, CLASS_REBUILD_TARGET_S)} "
          f"({len(again.changed)} student rewritten, {again.chunks_compiled} chunks compiled, "
          f"{again.pdfs_written} student PDFs cut, {again.pdfs_unchanged} unchanged; generation "
          f"{again.seconds['generation']:.2f} s, TeX {again.seconds.get('TeX', 0):.2f} s)")


def bench_class_10k(size: int = CLASS_10K) -> None:
    """`class` without --pdf for a roster of `size` (10,000): wall time and peak memory of the building process
    (the worker processes' peak beside it); the target is memory that does not grow with the class."""
    from generator.classes.assignment import load_assignment
    from generator.classes.classbuild import Summary, build_class

    load = os.getloadavg()[0]
    assignment = load_assignment(EXAMPLE_ASSIGNMENT)
    roster = _class_roster(size)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cpu_start = os.times()
        summary = Summary()
        build_class(assignment, roster, Path(folder), BENCH_SECRET, pdf=False, summary=summary)
        total = time.perf_counter() - start
        cpu_end = os.times()
    # CPU time beside the wall time: on a shared machine the wall time also holds other people's work.
    own_cpu, workers_cpu = (sum(cpu_end[i:i + 2]) - sum(cpu_start[i:i + 2]) for i in (0, 2))
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"class set without PDFs: {size} students in {total:.1f} s ({total / size * 1000:.1f} ms a student)  "
          f"{_verdict(total * CLASS_10K / size, CLASS_10K_TARGET_S)} (scaled to {CLASS_10K})")
    print(f"  CPU: building process {own_cpu:.1f} s, workers {workers_cpu:.1f} s ({(own_cpu + workers_cpu) / size * 1000:.1f} "
          f"ms a student, on {os.cpu_count()} cores: at best {(own_cpu + workers_cpu) / (os.cpu_count() or 1):.1f} s)")
    print(f"  peak memory: building process {self_mb:.0f} MB, largest worker {child_mb:.0f} MB "
          f"(load average before: {load:.1f})")


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


def bench_discovery(specs: tuple[str, ...] = DISCOVERY_SPECS) -> None:
    """Seconds to find every follow-through recipe of the longest chains (or of `specs`), in a fresh cache."""
    from generator.marking.followthrough import recipes_for, reference_samples
    from generator.marking.markkey import key_from_data
    from generator.documents.sheet import key_data

    print(f"follow-through recipes per spec, found once per process (target <= {DISCOVERY_TARGET_S:g} s each)")
    for text in specs:
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


WEB_PROBLEMS = ("matmul:shape=2x2,difficulty=medium", "transpose", "dot_product", "matmul_gradient:difficulty=easy",
                "inverse", "linear_map", "matmul_gradient", "matmul")  # the example assignment and four more: 59 blanks
WEB_CONNECTIONS = 64  # the capacity phase: requests in flight at once, from different students, none waiting
WEB_SAVE_P99_TARGET_MS = 50.0
WEB_CHECK_P99_TARGET_MS = 300.0
# Before the burst, each student's first boxes are saved at a class's pace (one save every 3 s per student, spread
# out): the latency a student sees while the class types, for comparison with the burst's.
WEB_PACE = 100.0  # saves per second
WEB_PACED_BOXES = 3
WEB_SEED = 6  # the order in which students start the burst
WEB_SLIP_EVERY = 6  # every 6th blank is first saved with a slip, then saved again with the final text
WEB_WORKERS_VARIABLE = "BENCH_WEB_WORKERS"  # BENCH_WEB_WORKERS=1: the server in one process
WEB_PROFILE_VARIABLE = "BENCH_WEB_PROFILE"  # BENCH_WEB_PROFILE=1: print where the server's CPU time went


def bench_web() -> None:
    """The web page under a class: CLASS_SIZE students sign in; save a few boxes at a class's pace; then all at once
    save every box as fast as the page lets one student send (page_save_gap: one save in flight, the next no sooner
    than the page's save delay after it) and press Check as soon as their last box is saved: the targets' scenario.
    Then the server's capacity: every box again, back to back, WEB_CONNECTIONS in flight. The real server (uvicorn,
    SQLite in the class folder) in its own processes on loopback. Every save must be acknowledged and be in the
    database afterwards with its last text."""
    import asyncio

    from generator.classes.assignment import parse_assignment
    from generator.classes.classbuild import Summary, generate, write_class
    from generator.classes.roster import Student

    assignment = parse_assignment({"name": "webbench", "title": "Web benchmark", "seed": 6, "calculator": "none",
                                   "problems": [{"type": spec.split(":")[0], "points": 4, **(
                                       {"options": dict(kv.split("=") for kv in spec.split(":")[1].split(","))}
                                       if ":" in spec else {})} for spec in WEB_PROBLEMS]}, Path("webbench.toml"))
    roster = tuple(Student(f"s{i:03d}", f"{_NAMES[i % len(_NAMES)]} {i}", 0, i + 1) for i in range(1, CLASS_SIZE + 1))
    profile = os.environ.get(WEB_PROFILE_VARIABLE, "")
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "webbench"
        write_class(assignment, generate(assignment, roster, BENCH_SECRET, workers=os.cpu_count() or 1), folder,
                    BENCH_SECRET, pdf=False, summary=Summary())
        server = _WebServer(folder, Path(temp) / "profile.txt" if profile else None).start()
        try:
            result = asyncio.run(_web_load(server.url, folder, [s.id for s in roster]))
        finally:
            server_cpu, server_mb = server.cpu_seconds(), server.peak_mb()
            server.stop()
        stored = _stored_answers(folder)
        report = Path(temp) / "profile.txt"
        profile_text = report.read_text() if profile and report.exists() else ""
    _report_web(result, stored, server_cpu, server_mb, server.workers)
    if profile:
        print(profile_text)


class _WebServer:
    """`transformer-worksheets serve` in a child process on a free loopback port (with cProfile in every thread when
    profile names a file to write its report to)."""

    def __init__(self, folder: Path, profile: Path | None) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder, self.profile, self.process = folder, profile, None
        self.url = f"http://127.0.0.1:{self.port}"
        from generator.web.serve import DEFAULT_WORKERS

        # As `serve` runs by default (BENCH_WEB_WORKERS=N to compare); a profile is taken of one process.
        self.workers = 1 if profile else int(os.environ.get(WEB_WORKERS_VARIABLE) or DEFAULT_WORKERS)

    def start(self) -> "_WebServer":
        import subprocess
        import urllib.error
        import urllib.request

        if self.profile:
            command = [sys.executable, "-c", "import sys; from generator.bench import _profiled_serve; "
                       "_profiled_serve(*sys.argv[1:])", str(self.folder), str(self.port), str(self.profile)]
        else:
            command = [sys.executable, "-m", "generator", "serve", str(self.folder), "--port", str(self.port),
                       "--teacher-token", "bench-teacher-token", "--workers", str(self.workers)]
        self.log = open(self.folder.parent / "server.log", "w+", encoding="utf-8")  # a pipe could fill and block it
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"the server did not start: {self.output()[-2000:]}")

    def processes(self) -> list[int]:
        """The server's main process and its worker processes (uvicorn's children), as process ids."""
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            found.append(pid)
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def peak_mb(self) -> float:
        """The peak resident memory so far of the server's processes, added up."""
        total = 0.0
        for pid in self.processes():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the server's processes, added up."""
        total = 0
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except Exception:
                self.process.kill()
                self.process.wait()
        if self.process.returncode not in (0, -15) or "Traceback" in self.output():
            print(f"  the server exited with {self.process.returncode}: {self.output()[-3000:]}")
        self.log.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


class _Connections:
    """Keep-alive HTTP/1.1 connections to the server, at most size at once: a client of a few lines, so that the load
    generator takes little of the CPU the server needs (httpx took more CPU per request than the server itself)."""

    def __init__(self, url: str, size: int) -> None:
        import asyncio

        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.idle: asyncio.Queue = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)  # opened on first use

    async def request(self, method: str, path: str, cookie: str = "", headers: dict[str, str] | None = None,
                      body: bytes = b"") -> tuple[int, dict[str, str], bytes, float]:
        """(status, headers with lower-case names, body, milliseconds from sending to the last byte received)."""
        import asyncio

        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"Cookie: tw_session={cookie}"] if cookie else []
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        connection = await self.idle.get()
        try:
            for attempt in (1, 2):
                reused = connection is not None
                if connection is None:
                    connection = await asyncio.open_connection(self.host, self.port)
                reader, writer = connection
                start = time.perf_counter()
                writer.write(message)
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                    break
                except asyncio.IncompleteReadError as error:
                    # uvicorn closes a connection idle for 5 s: sent again on a new one, as browsers do.
                    writer.close()
                    connection = None
                    if error.partial or not reused or attempt == 2:
                        raise
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            received: dict[str, str] = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    name = name.strip().lower()
                    if name == "set-cookie" and not value.strip().startswith("tw_session="):
                        continue
                    received[name] = value.strip()
            if "content-length" not in received:
                raise RuntimeError(f"a response without Content-Length: {status_line}")
            content = await asyncio.wait_for(reader.readexactly(int(received["content-length"])), 60)
            elapsed = (time.perf_counter() - start) * 1000
            if received.get("connection", "").lower() == "close":
                writer.close()
                connection = None
            return int(status_line.split()[1]), received, content, elapsed
        except BaseException:
            if connection is not None:
                connection[1].close()
            connection = None
            raise
        finally:
            self.idle.put_nowait(connection)

    async def close(self) -> None:
        while not self.idle.empty():
            connection = self.idle.get_nowait()
            if connection is not None:
                connection[1].close()


async def _web_load(url: str, folder: Path, students: list[str]) -> dict:
    """Sign in every student; a few boxes at a class's pace; every box back to back (capacity); then every box at the
    page's pace and Check, everyone at once; the timings and what was sent."""
    import asyncio
    import html
    import json
    import re

    from generator.marking.markkey import load_key
    from generator.web.codes import access_code, class_secret

    secret = class_secret(folder)
    manifest = json.loads((folder / "class.json").read_text())
    stems = {entry["id"]: entry["stem"] for entry in manifest["students"]}
    pool = _Connections(url, WEB_CONNECTIONS)
    # Every student's browser keeps the connection it loaded the sheet on (while the server keeps it alive).
    own = _Connections(url, len(students))
    cookies: dict[str, str] = {}
    csrf: dict[str, str] = {}
    plan: dict[str, list[tuple[str, str]]] = {}
    failures: list[str] = []
    save_ms: list[float] = []
    paced_ms: list[float] = []
    capacity_ms: list[float] = []
    check_ms: list[float] = []
    together_ms: list[float] = []
    checked: dict[str, int] = {}

    async def sign_in(student: str) -> None:
        status, headers, _, _ = await own.request("GET", f"/s/{access_code(secret, 'webbench', student)}")
        cookie = re.match(r"tw_session=([^;]*)", headers.get("set-cookie", ""))
        if status != 303 or headers.get("location") != "/sheet" or not cookie:
            failures.append(f"{student}: sign-in answered {status} {headers.get('location')}")
            return
        cookies[student] = cookie[1]
        status, headers, body, _ = await own.request("GET", "/sheet", cookies[student])
        page = body.decode()
        cookie = re.match(r"tw_session=([^;]*)", headers.get("set-cookie", ""))
        if cookie:  # the session now holds the page's CSRF token
            cookies[student] = cookie[1]
        if status != 200:
            failures.append(f"{student}: the sheet answered {status}")
            return
        csrf[student] = re.search(r'name="csrf-token" content="([^"]+)"', page)[1]
        labels = [html.unescape(label) for label in dict.fromkeys(
            re.findall(r'<input type="(?:text|radio)"[^>]*data-label="([^"]+)"', page))]
        key = load_key(folder / "students" / f"{stems[student]}-key.json")
        texts = {b.label: (b.choices[0] if b.kind == "choice" and b.choices else b.text) for b in key.blanks}
        if sorted(labels) != sorted(texts):
            failures.append(f"{student}: the page's boxes are not the key's blanks")
        # What the student types: the key's text for two boxes in three, "0" in the third; every WEB_SLIP_EVERY-th
        # box first gets a slip (a digit too many), then its final text.
        final = {label: texts[label] if n % 3 else "0" for n, label in enumerate(labels)}
        slipped = set(labels[::WEB_SLIP_EVERY])
        plan[student] = [save for label in labels for save in (
            ((label, final[label] + "1"), (label, final[label])) if label in slipped else ((label, final[label]),))]

    async def save_one(student: str, label: str, text: str, latencies: list[float], via: _Connections) -> None:
        body = json.dumps({"answers": {label: text}}).encode()
        try:
            status, _, content, ms = await via.request(
                "POST", "/api/answers", cookies[student], {"Content-Type": "application/json",
                                                           "X-CSRF-Token": csrf[student]}, body)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError) as error:
            failures.append(f"{student} {label}: {error!r}")
            return
        latencies.append(ms)
        if status != 200 or "saved_at" not in json.loads(content):
            failures.append(f"{student} {label}: save answered {status} {content[:200]!r}")

    async def save_paced(n: int, student: str, begin: float) -> None:
        # The student's first WEB_PACED_BOXES boxes, at the class's pace: one save every 1/WEB_PACE s, in turn.
        for box, (label, text) in enumerate(plan.get(student, ())[:WEB_PACED_BOXES]):
            await asyncio.sleep(max(0.0, begin + (box * len(plan) + n) / WEB_PACE - time.perf_counter()))
            await save_one(student, label, text, paced_ms, pool)

    async def save_back_to_back(student: str) -> None:
        # Every box with another text, each save sent the moment the one before is answered.
        for label, text in dict(plan.get(student, ())).items():  # each box once, its last text
            await save_one(student, label, text + "9", capacity_ms, pool)

    async def save_at_page_pace(student: str, begin: float, check_after: int) -> None:
        # As fast as the page sends: one save in flight; a change typed at once after a save is sent waits the
        # page's delay, and if the save is still unanswered then, the delay again after its answer. Check is pressed
        # once, the moment box check_after is saved (a practice student checks as they go).
        due = begin
        for box, (label, text) in enumerate(plan.get(student, ())):
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            await save_one(student, label, text, save_ms, own)
            due = max(sent, time.perf_counter() - gap) + gap
            if box == check_after:
                await check(student, own, check_ms)

    async def check(student: str, via: _Connections, latencies: list[float]) -> None:
        try:
            status, _, content, ms = await via.request("POST", "/api/check", cookies[student],
                                                       {"X-CSRF-Token": csrf[student]})
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError) as error:
            failures.append(f"{student}: check {error!r}")
            return
        latencies.append(ms)
        if status != 200:
            failures.append(f"{student}: check answered {status} {content[:200]!r}")
        else:
            checked[student] = sum(1 for v in json.loads(content)["verdicts"].values() if v["status"] == "right")

    gap = page_save_gap()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(sign_in(s) for s in students))
    paced = time.perf_counter()
    await asyncio.gather(*(save_paced(n, s, paced) for n, s in enumerate(plan)))
    capacity = time.perf_counter()
    await asyncio.gather(*(save_back_to_back(s) for s in plan))
    burst, burst_cpu = time.perf_counter(), time.process_time()
    # Students start within one save delay of each other, at moments spread evenly over it (the same moment to the
    # millisecond would send the whole class's saves in waves of CLASS_SIZE), and each presses Check after a box
    # spread evenly over the sheet; the order is shuffled with a fixed seed.
    order = list(plan)
    random.Random(WEB_SEED).shuffle(order)
    boxes = min(len(sends) for sends in plan.values()) if plan else 1
    await asyncio.gather(*(save_at_page_pace(s, burst + gap * i / len(order), (i * 7919) % boxes)
                           for i, s in enumerate(order)))
    done, done_cpu = time.perf_counter(), time.process_time()
    # The extreme beside it: the whole class presses Check in the same moment.
    await asyncio.gather(*(check(s, own, together_ms) for s in plan))
    together = time.perf_counter() - done
    await pool.close()
    await own.close()
    return {"plan": plan, "failures": failures, "save_ms": save_ms, "paced_ms": paced_ms, "check_ms": check_ms,
            "capacity_ms": capacity_ms, "capacity_s": burst - capacity, "right": checked, "load": load,
            "sign_in_s": paced - started, "burst_s": done - burst, "gap_s": gap, "together_ms": together_ms,
            "together_s": together,
            "client_cpu_s": time.process_time() - cpu, "client_burst_cpu_s": done_cpu - burst_cpu}


def page_save_gap() -> float:
    """The shortest time between two saves of one student's page, in seconds: its save delay (page.js)."""
    import re

    script = (Path(__file__).parent / "web" / "static" / "page.js").read_text(encoding="utf-8")
    return int(re.search(r"const SAVE_DELAY_MS = (\d+);", script)[1]) / 1000


def _stored_answers(folder: Path) -> dict[str, dict[str, str]]:
    """Every saved answer in the class folder's database, read after the server stopped."""
    import sqlite3

    connection = sqlite3.connect(folder / "answers.sqlite3")
    try:
        stored: dict[str, dict[str, str]] = {}
        for student, label, text in connection.execute("SELECT student_id, label, text FROM answers"):
            stored.setdefault(student, {})[label] = text
        return stored
    finally:
        connection.close()


def _report_web(result: dict, stored: dict[str, dict[str, str]], server_cpu: float, server_mb: float,
                workers: int) -> None:
    plan, saves, checks, capacity = result["plan"], result["save_ms"], result["check_ms"], result["capacity_ms"]
    expected = {student: dict(sends) for student, sends in plan.items()}
    wrong = sum(1 for student, answers in expected.items() for label, text in answers.items()
                if stored.get(student, {}).get(label) != text)
    extra = sum(len(set(stored.get(student, {})) - set(answers)) for student, answers in expected.items())
    blanks = sum(map(len, expected.values()))
    n = len(plan)
    print(f"web page: {n} students x {blanks // max(1, n)} blanks; the real server (uvicorn, {workers} worker "
          f"process{'es' if workers > 1 else ''}, SQLite with synchronous=FULL) on loopback; the load generator "
          f"(asyncio, keep-alive connections) shares the {os.cpu_count()} cores with it (load average before: "
          f"{result['load']:.1f})")
    print(f"  sign-in: {n} students in {result['sign_in_s']:.2f} s (the code's link, then the sheet page)")
    paced = result["paced_ms"]
    if paced:
        print(f"  saves at a class's pace: {len(paced)} at {WEB_PACE:g}/s ({WEB_PACED_BOXES} boxes a student): latency "
              f"p50 {_percentile(paced, 0.5):.1f} ms, p99 {_percentile(paced, 0.99):.1f} ms, max {max(paced):.1f} ms")
    if capacity:
        print(f"  capacity: every box again, back to back, {WEB_CONNECTIONS} in flight: {len(capacity)} saves in "
              f"{result['capacity_s']:.2f} s, {len(capacity) / result['capacity_s']:.0f} saves/s; latency p50 "
              f"{_percentile(capacity, 0.5):.1f} ms, p99 {_percentile(capacity, 0.99):.1f} ms (the queue of "
              f"{WEB_CONNECTIONS} requests: no student's page sends like this)")
    rate = len(saves) / result["burst_s"] if result["burst_s"] else 0.0
    print(f"  all {n} at once, as fast as the page sends (one save in flight, {result['gap_s'] * 1000:.0f} ms apart at "
          f"the least, the students starting within {result['gap_s'] * 1000:.0f} ms; every {WEB_SLIP_EVERY}th box "
          f"twice), each pressing Check once on the way: {len(saves)} saves and {len(checks)} Checks in "
          f"{result['burst_s']:.2f} s ({rate:.0f} saves/s)")
    for label, samples, target in (("save", saves, WEB_SAVE_P99_TARGET_MS), ("check", checks, WEB_CHECK_P99_TARGET_MS)):
        if samples:
            p99 = _percentile(samples, 0.99)
            print(f"    {label:<6} latency p50 {_percentile(samples, 0.5):7.1f} ms, p99 {p99:7.1f} ms, max "
                  f"{max(samples):7.1f} ms (target p99 < {target:g} ms)  {'ok' if p99 < target else 'SLOW'}")
    together = result["together_ms"]
    if together:
        print(f"  the whole class pressing Check in the same moment: {len(together)} in {result['together_s']:.2f} s, "
              f"{len(together) / result['together_s']:.0f}/s; latency p50 {_percentile(together, 0.5):.1f} ms, p99 "
              f"{_percentile(together, 0.99):.1f} ms (the last waits for the whole class's marking)")
    print(f"    {sum(result['right'].values())} blanks marked right by the Checks")
    print(f"  CPU: server {server_cpu:.1f} s, load generator {result['client_cpu_s']:.1f} s "
          f"({result['client_burst_cpu_s']:.1f} s of it in the page-paced burst); server peak memory "
          f"{server_mb:.0f} MB (every worker added up)")
    verdict = "ok" if not result["failures"] and not wrong and not extra else "LOST"
    print(f"  read back from the database: {blanks - wrong} of {blanks} answers with their last text "
          f"({len(paced) + len(capacity) + len(saves)} saves acknowledged), {len(result['failures'])} requests failed, "
          f"{extra} unexpected answers  {verdict}")
    for failure in result["failures"][:5]:
        print(f"    {failure}")


def _profiled_serve(folder: str, port: str, report: str) -> None:
    """The server with cProfile in every thread (the event loop's and the pool's that run the endpoints), timed by
    each thread's own CPU clock, so time spent waiting (for a lock, the disk, the GIL) is left out; at exit the
    merged figures, most first, are written to report."""
    import cProfile
    import io
    import pstats
    import signal
    import threading

    from generator.web.serve import serve

    profiles: list[cProfile.Profile] = []
    bootstrap = threading.Thread._bootstrap_inner

    def profiled(thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            bootstrap(thread)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = profiled
    main = cProfile.Profile(time.thread_time)
    profiles.append(main)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    main.enable()
    try:
        serve(Path(folder), "127.0.0.1", int(port), None, "bench-teacher-token", workers=1)  # threads of one process
    except KeyboardInterrupt:  # uvicorn raises the SIGTERM it caught again once it has shut down
        pass
    finally:
        main.disable()
        out = io.StringIO()
        stats = pstats.Stats(*profiles, stream=out)
        out.write(f"server profile: CPU seconds by function, every thread ({len(profiles)}), cProfile's own cost "
                  "included\n")
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)
        Path(report).write_text(out.getvalue())


def main(argv: list[str] | None = None) -> None:
    """Run every figure, or one group of them (the argument names it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m generator.bench",
                                     description="The speed figures of `make bench`, all of them or one group.")
    parser.add_argument("group", nargs="?", choices=("all", "class", "class10k", "marking", "web", "generation"),
                        default="all", help="which figures: all (default), or one group")
    parser.add_argument("size", nargs="?", type=int, default=CLASS_10K, help="class10k only: the roster's size")
    args = parser.parse_args(argv)
    if args.size != CLASS_10K and args.group != "class10k":
        parser.error("a size is accepted only after class10k")
    if args.group == "web":
        bench_web()
    elif args.group == "marking":
        bench_marking()
        bench_discovery()
    elif args.group == "class10k":  # `class10k [SIZE]`: a smaller roster to try it out
        bench_class_10k(args.size)
    elif args.group == "class":
        bench_class()
    elif args.group == "generation":
        bench_generation()
    else:
        bench_class()
        bench_class_10k()
        bench_marking()
        bench_discovery()
        bench_generation()
        bench_documents()
        bench_presets()
        bench_web()


if __name__ == "__main__":
    main()
