"""`make bench` is not run by `make test`; its cheapest figures are, so that a change elsewhere cannot stop it."""

from __future__ import annotations

import pytest

from generator import bench


def test_the_discovery_figures_run_on_a_key_as_the_marker_reads_it(capsys):
    bench.bench_discovery(("matmul",))
    out = capsys.readouterr().out
    assert "matmul" in out and "recipes" in out and "answers)" in out


def test_an_unknown_group_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["nothing"])
    assert stop.value.code == 2
    assert "invalid choice: 'nothing'" in capsys.readouterr().err
