"""Bad input: one line that names the bad value and what is accepted, exit 2, nothing written."""

from __future__ import annotations

import json

import pytest

from generator.cli import main


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "argv, words",
    [
        (["sheet", "-p", "matmull"], ["'matmull'", "accepted:", "matmul", "inverse"]),
        (["sheet", "-p", "matmul:shape=3x3"], ["shape='3x3'", "accepted: 2x2, 2x1"]),
        (["sheet", "-p", "matmul:size=2"], ["'size'", "accepted: shape, difficulty"]),
        (["sheet", "-p", "matmul:shape"], ["'shape'", "name=value"]),
        (["sheet", "-p", "inverse", "--seed", "-4"], ["'-4'", "0 to"]),
        (["sheet", "-p", "inverse", "--seed", "abc"], ["'abc'"]),
        (["sheet", "-p", "inverse", "--paper", "a5"], ["'a5'", "a4", "letter"]),
        (["sheet", "-p", "inverse", "--name", "../x"], ["'../x'", "letters"]),
        (["sheet"], ["--preset", "--problem"]),
        (["sheet", "-p", "matmul:given=z"], ["no part z", "accepted:"]),
        (["sheet", "-p", "multi_head:heads=3,d_model=4"], ["d_model=4 is not divisible by heads=3", "accepted: d_model 3"]),
        (["sheet", "-p", "tiny_transformer:input=ABE", "--calculator", "basic"], ["'E', not in the vocabulary", "A, B, C, D"]),
        (["sheet", "-p", "tiny_transformer:input=ABCD", "--calculator", "basic"], ["4 tokens", "accepted: 2 or 3"]),
        (["sheet", "-p", "attention_scores:d_k=2"], ["d_k='2'", "accepted: 1, 4", "√d_k = 1 or 2"]),
        (["pdf", "missing.tex"], ["'missing.tex'", ".tex"]),
    ],
)
def test_bad_input_is_one_clear_line(tmp_cwd, capsys, argv, words):
    _refused_in_one_line(tmp_cwd, capsys, argv, words)


def _refused_in_one_line(folder, capsys, argv: list[str], words: list[str]) -> None:
    """The command exits 2 with one line on stderr that holds every one of words, and writes nothing."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("transformer-worksheets: error: ")
    for word in words:
        assert word in err
    assert _files(folder) == []


def test_unwritable_folder_writes_nothing(tmp_cwd, capsys):
    (tmp_cwd / "afile").write_text("")
    assert main(["sheet", "-p", "inverse", "--key-dir", "afile/keys"]) == 2
    err = capsys.readouterr().err
    assert "afile/keys" in err and err.count("\n") == 1
    assert _files(tmp_cwd) == ["afile"]


def test_sheet_writes_three_files(tmp_cwd, capsys):
    assert main(["sheet", "-p", "matmul:shape=2x1,difficulty=easy", "-p", "dot_product", "--seed", "9", "--name", "w"]) == 0
    assert _files(tmp_cwd) == ["answer_keys/w-key.json", "answer_keys/w-key.tex", "worksheets/w.tex"]
    key = json.loads((tmp_cwd / "answer_keys/w-key.json").read_text())
    assert [p["type"] for p in key["problems"]] == ["matmul", "dot_product"]
    assert key["problems"][0]["options"] == {"shape": "2x1", "difficulty": "easy"}


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["sheet", "-p", "inverse", "--seed", "1_0"], ["'1_0'", "whole numbers"]),
        (["sheet", "-p", "inverse", "--seed", "１２"], ["whole numbers"]),
        (["sheet", "-p", "inverse", "--title", "Привет"], ["'П'", "U+041F", "Latin"]),
        (["sheet", "-p", "inverse", "--title", "x" * 81], ["81 characters", "at most 80"]),
        (["sheet", "-p", "inverse:difficulty=easy,difficulty=hard"], ["'difficulty'", "twice"]),
        (["sheet", "-p", "inverse", "--name", "n" * 101], ["up to 100"]),
        (["sheet", "-p", "softmax:form=table"], ["needs a basic calculator", "--calculator basic"]),
        # Options a hand sheet cannot honour name what it accepts, and why.
        (["sheet", "-p", "adam_step:eps=1e-8"], ["eps='1e-8'", "accepted: 0", "exact"]),
        (["sheet", "-p", "sgd_step:optimizer=momentum,momentum=0.95"], ["momentum='0.95'", "1/2, 9/10"]),
        (["sheet", "-p", "sgd_step:lr=0.01"], ["lr='0.01'", "accepted: 1/10"]),
        (["sheet", "-p", "batch_average:batch=32"], ["batch='32'", "2, 3, 4", "at most 4"]),
        (["sheet", "-p", "example2:lr=1e99999999"], ["lr='1e99999999'", "1/2, 1"]),
        (["sheet", "-p", "training_step:update=E"], ["update='E'", "W_O, gamma, beta, b_1, b_2", "non-zero"]),
        (["sheet", "-p", "training_step:update=gamma+gamma"], ["update='gamma+gamma'", "each once"]),
        (["sheet", "-p", "training_step:input=ABC"], ["input='ABC'", "2 letters"]),
        (["sheet", "-p", "training_step:input=AZ"], ["input='AZ'", "A, B, C, D"]),
        (["sheet", "-p", "training_step:heads=4"], ["heads='4'", "accepted: 1, 2"]),
        (["sheet", "-p", "training_step:update=gamma_1"], ["update='gamma_1'", "W_O, gamma, beta, b_1, b_2"]),
        (["sheet", "-p", "training_step:norm=post,update=gamma+gamma_2"], ["update='gamma+gamma_2'", "with norm=post",
                                                                          "gamma_1, beta_1, gamma_2, beta_2", "each once"]),
        (["sheet", "-p", "training_step:norm=post,activation=gelu"], ["norm=post", "activation=gelu", "accepted"]),
        (["sheet", "-p", "training_step:norm=pre"], ["norm='pre'", "embeddings, post"]),
    ],
)
def test_more_bad_input(tmp_cwd, capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for word in words:
        assert word in err
    assert _files(tmp_cwd) == []


def test_a_failed_write_leaves_no_folder_behind(tmp_cwd, capsys):
    (tmp_cwd / "afile").write_text("")
    assert main(["sheet", "-p", "inverse", "--sheet-dir", "new/deep", "--key-dir", "afile/keys"]) == 2
    assert "afile/keys" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_cwd.iterdir()) == ["afile"]


def test_a_number_may_be_spelled_as_a_decimal(tmp_cwd, capsys):
    """lr=0.1 is the choice 1/10: the same sheet as lr=1/10."""
    assert main(["sheet", "-p", "sgd_step:lr=0.1", "--name", "decimal"]) == 0
    assert main(["sheet", "-p", "sgd_step:lr=1/10", "--name", "fraction"]) == 0
    assert (tmp_cwd / "worksheets" / "decimal.tex").read_text() == (tmp_cwd / "worksheets" / "fraction.tex").read_text()


@pytest.mark.parametrize(
    "argv, words",
    [
        # An empty name is refused like 'a/b', not replaced by the default (sheet.tex): nothing is written.
        (["sheet", "-p", "matmul", "--name", "", "--sheet-dir", "w", "--key-dir", "k"],
         ["--name ''", "accepted: 1 up to 100"]),
        (["sheet", "-p", "matmul", "--name", "  ", "--sheet-dir", "w", "--key-dir", "k"], ["--name '  '", "letters"]),
        (["sheet", "--preset", "forward-steps", "--name", "", "--sheet-dir", "w", "--key-dir", "k"], ["--name ''"]),
        (["sheet", "-p", "matmul", "--name", "a/b", "--sheet-dir", "w", "--key-dir", "k"], ["--name 'a/b'", "letters"]),
        (["sheet", "-p", "matmul", "--title", "", "--sheet-dir", "w", "--key-dir", "k"],
         ["--title", "accepted: 1 to 80"]),
        (["sheet", "-p", "matmul", "--title", " ", "--sheet-dir", "w", "--key-dir", "k"], ["--title", "empty"]),
        # Empty folders and files would silently be the current folder.
        (["sheet", "-p", "matmul", "--sheet-dir", "", "--key-dir", "k"], ["--sheet-dir", "empty", "accepted:"]),
        (["sheet", "-p", "matmul", "--sheet-dir", "w", "--key-dir", " "], ["--key-dir", "empty"]),
        (["pdf", "x.tex", "--outdir", ""], ["--outdir", "empty"]),
        (["class", "a.toml", "r.csv", "--out", ""], ["--out", "empty"]),
        (["class", "a.toml", "r.csv", "--only", ""], ["--only", "empty", "a student id"]),
        (["mark", "a.csv", "--key", "k.json", "--out", ""], ["--out", "empty"]),
        (["fillin", "--key", "k.json", "--out", ""], ["--out", "empty"]),
        # Empty serve options would silently fall back (the host '' even to every interface).
        (["serve", "c", "--host", ""], ["--host", "empty", "an address"]),
        (["serve", "c", "--teacher-token", ""], ["--teacher-token", "empty", "a password"]),
        (["serve", "c", "--database", " "], ["--database", "empty", "a database URL"]),
    ],
)
def test_an_empty_name_or_path_is_refused(tmp_cwd, capsys, argv, words):
    _refused_in_one_line(tmp_cwd, capsys, argv, words)


@pytest.mark.parametrize(
    "raw, said",
    [
        (b'\xffname = "x"\n', "line 1 is not UTF-8 text (byte 0xff at offset 0); save the assignment as UTF-8"),
        # After a byte-order mark: the byte itself (not the mark's), and its offset in the file.
        (b'\xef\xbb\xbfname = "x"\nseed = 1\xfe\n', "line 2 is not UTF-8 text (byte 0xfe at offset 22)"),
    ],
)
def test_a_non_utf8_assignment_names_the_byte_and_where(tmp_cwd, capsys, raw, said):
    """As the roster's message does: the byte's value and its place, not a bare 'byte 0'."""
    from pathlib import Path
    roster = Path(__file__).resolve().parent.parent / "examples" / "roster.csv"
    (tmp_cwd / "a.toml").write_bytes(raw)
    assert main(["class", "a.toml", str(roster), "--out", "c"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err
    assert _files(tmp_cwd) == ["a.toml"]


@pytest.mark.parametrize("raw, row, byte", [
    (b"\xffid,name\ns1,A\n", 1, "0xff"),
    (b"\xef\xbb\xbfid,name\ns1,A\xfe\n", 2, "0xfe"),  # after a byte-order mark this said 'row 1 … byte 0x0a'
])
def test_a_non_utf8_roster_or_answers_file_names_the_byte_after_a_byte_order_mark(tmp_cwd, raw, row, byte):
    from generator.classes.roster import RosterError, load_roster
    from generator.marking.answerfile import read_answers
    (tmp_cwd / "r.csv").write_bytes(raw)
    with pytest.raises(RosterError) as error:
        load_roster(tmp_cwd / "r.csv")
    assert f"row {row} is not UTF-8 text (byte {byte})" in str(error.value)
    rows, issues = read_answers(tmp_cwd / "r.csv")
    assert not rows and [(i.row, i.reason) for i in issues] == [(row, f"not UTF-8 text (byte {byte}); save the file as "
                                                                      "CSV UTF-8")]


def test_the_listed_description_of_embedding_grad_is_true_of_its_draws(capsys):
    """`list` said 'one token always appears twice'; draws repeat a token two, three or four times (C C C too)."""
    from collections import Counter

    from generator.core.registry import make_problem
    from generator.documents.sheet import problem_seed

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "tokens = 3|4 (default 3): length of the input sequence (at least one token appears more than once, so its " \
           "gradient rows add up)" in listed and "always appears twice" not in listed
    most = Counter()
    for seed in range(1, 41):
        for tokens in ("3", "4"):
            problem = make_problem("embedding_grad", {"tokens": tokens, "d_model": "2"},
                                   problem_seed(seed, 1, "embedding_grad"))
            most[max(Counter(problem.facts["token_ids"]).values())] += 1
    assert min(most) >= 2 and max(most) > 2  # always a repeat, and not always exactly twice
