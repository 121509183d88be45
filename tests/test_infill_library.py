"""seqgan_kit.infill without a trained run: templates, blank sizing (bounded before enumerating), filling in
chunks, and the fill command's argument checks (made before any model is loaded)."""

import itertools
import time

import pytest
import torch

from seqgan_kit.cli import main
from seqgan_kit.errors import UserError
from seqgan_kit.infill import filling
from seqgan_kit.infill.filling import fill_best, fill_chunks
from seqgan_kit.infill.templates import MAX_SIZINGS, count_sizings, id_row, parse_template, sizings
from seqgan_kit.models.maskgan import MaskGANGenerator


def brute_sizings(template, room):
    """Every sizing by enumerating all products (the obvious, slow way)."""
    plain = sum(b is None for b in template.blanks)
    fixed = sum(b for b in template.blanks if b is not None)
    out = []
    for choice in itertools.product(range(1, room + 1), repeat=plain):
        if sum(choice) + fixed <= room:
            it = iter(choice)
            out.append(tuple(b if b is not None else next(it) for b in template.blanks))
    return out


@pytest.mark.parametrize("text", ["a ___ b", "___ x ___{2} ___", "___ ___ ___", "___{3} x", "___ ___ ___ ___"])
@pytest.mark.parametrize("room", [0, 1, 3, 6, 9])
def test_sizings_equal_the_brute_force_enumeration_in_order(text, room):
    template = parse_template(text)
    expected = brute_sizings(template, room)
    assert sizings(template, room) == expected
    plain = sum(b is None for b in template.blanks)
    fixed = sum(b for b in template.blanks if b is not None)
    assert count_sizings(plain, room - fixed) == len(expected)


def test_many_plain_blanks_are_refused_before_any_sizing_is_enumerated():
    template = parse_template(" ".join(["___"] * 8))
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"^186,087,894,300 ways to size the 8 plain blanks \(more than 512\)"):
        sizings(template, 100)  # C(100, 8): the old enumeration walked 93^8 products first
    assert time.perf_counter() - started < 1.0
    assert len(sizings(template, 10)) == count_sizings(8, 10) == 45 <= MAX_SIZINGS


@pytest.mark.parametrize("blank", ["___{-1}", "___{0}", "___{x}", "___{}", "___{1.5}"])
def test_a_blank_size_that_is_not_a_whole_number_from_1_is_an_error(blank):
    with pytest.raises(UserError, match="must have at least 1 token"):
        parse_template(f"a {blank} b")


def test_a_huge_blank_of_a_synthetic_run_is_refused_before_allocating():
    started = time.perf_counter()
    with pytest.raises(UserError, match="exactly 6 tokens; got 1000000000002"):
        id_row(parse_template("5 ___{1000000000000} 7"), 40, 6)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("args,message", [
    (["--temperature", "nan"], "--temperature must be a finite number, got nan"),
    (["--temperature", "inf"], "--temperature must be a finite number, got inf"),
    (["--temperature", "-1"], "--temperature must be >= 0"),
    (["-n", "0"], "-n must be between 1 and 100,000, got 0"),
    (["-n", "1000000000"], "-n must be between 1 and 100,000"),
])
def test_fill_refuses_bad_numbers_before_loading_a_model(tmp_path, capsys, args, message):
    assert main(["fill", str(tmp_path / "no_such_run"), "a ___ b", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_fills_in_chunks_are_the_fills_of_one_batch_when_it_fits(monkeypatch):
    gen = MaskGANGenerator(vocab_size=30, seq_len=6, start_token=1, eos_token=2, pad_token=0, emb_dim=8,
                           hidden_dim=8)
    gen.set_infilling(True)
    rows = torch.tensor([[5, 0, 2, 0, 0, 0], [5, 0, 0, 2, 0, 0]])  # [S=2, T]
    present = rows != 0
    whole = fill_best(gen, rows, present, 5, 1.0, torch.Generator().manual_seed(3))
    chunks = list(fill_chunks(gen, rows, present, 5, 1.0, torch.Generator().manual_seed(3)))
    assert len(chunks) == 1 and torch.equal(chunks[0], whole)
    monkeypatch.setattr(filling, "ROWS_AT_ONCE", 4)  # 2 fills (4 rows) at a time: chunks of 2, 2, 1
    chunks = list(fill_chunks(gen, rows, present, 5, 1.0, torch.Generator().manual_seed(3)))
    assert [len(c) for c in chunks] == [2, 2, 1]
    for row in torch.cat(chunks):  # [T] each: the given tokens of one of the two sizings, copied
        assert any(torch.equal(row[p], r[p]) for r, p in zip(rows, present, strict=True))
