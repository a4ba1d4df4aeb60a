"""training_loop: ceil against floor matters in every draw, and the short last batch of each epoch counts."""

from __future__ import annotations

from .test_slips import _problems

SEEDS = 1000


def test_counts_by_hand_and_no_rounding_slip_gives_them():
    for options, p in _problems("training_loop", SEEDS):
        n, b, e = (int(p.given_value(k)) for k in "NBE")
        assert n % b and n // b >= 3, (options, n, b)
        keep, drop = -(-n // b), n // b
        if options["drop_last"] != "yes":
            assert int(p.answer("batches")) == keep and int(p.answer("steps")) == e * keep
            assert int(p.answer("seen")) == e * n and int(p.answer("last")) == n - (keep - 1) * b
            assert e * keep != -(-e * n // b)
            s, steps = int(p.given_value("S")), int(p.answer("steps_S"))
            seen, count = 0, 0
            while seen < s:  # replay: full batches, then the short one, epoch after epoch
                count += 1
                seen += b if count % keep else n - (keep - 1) * b
            assert seen == s and count == steps and -(-s // b) != steps and s // b != steps, (options, n, b, s)
        if options["drop_last"] != "no":
            assert int(p.answer("batches_drop")) == drop and int(p.answer("steps_drop")) == e * drop
            assert int(p.answer("seen_drop")) == e * drop * b and e * drop != e * n // b
