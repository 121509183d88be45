"""``data.ending = "pad"``: RelGAN's fixed-length text (no EOS, PAD an ordinary token) next to ``eos`` text."""

import math

import pytest
import torch

from seqgan_kit.data.corpus import decode_rows, encode_examples, row_lengths
from seqgan_kit.data.tokenization import BOS, EOS, PAD, SPECIALS, UNK, Vocab, WhitespaceTokenizer
from seqgan_kit.metrics.nll import sequence_nll_sum, through_first
from seqgan_kit.models.generator import SequenceGenerator
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.models.relgan_discriminator import RelGANDiscriminator
from seqgan_kit.models.rmc_generator import RMCGenerator
from seqgan_kit.train.mle import mle_loss

A, B = 4, 5  # the two words of the hand-built vocabulary below


class Unigram(SequenceGenerator):
    """A generator whose next-token distribution is one fixed softmax(``logits``) at every position."""

    def __init__(self, logits, **tokens):
        super().__init__(len(logits), 4, **tokens)
        self.table = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float64))

    def forward(self, seqs):
        return (self.table + self.logit_bias.double()).expand(*seqs.shape, -1)  # [B, T, V]


def hand_vocab():
    return Vocab([*SPECIALS, "a", "b"])  # ids: PAD 0, BOS 1, EOS 2, UNK 3, a 4, b 5


def test_pad_rows_have_no_eos_and_the_length_of_max_tokens():
    vocab = hand_vocab()
    rows, truncated = encode_examples([["a", "b"], ["b", "a", "b", "a", "a"], ["a"]], vocab, max_tokens=4, ending="pad")
    assert rows.tolist() == [[A, B, PAD, PAD], [B, A, B, A], [A, PAD, PAD, PAD]] and truncated == 1
    assert row_lengths(rows).tolist() == [2, 4, 1]
    eos, _ = encode_examples([["a", "b"]], vocab, max_tokens=4)  # the default is unchanged
    assert eos.tolist() == [[A, B, EOS, PAD, PAD]] and row_lengths(eos).tolist() == [2]
    with pytest.raises(ValueError, match="ending"):
        encode_examples([["a"]], vocab, 4, ending="eof")


def test_decoding_drops_pads_wherever_they_stand():
    vocab, tok = hand_vocab(), WhitespaceTokenizer()
    rows = torch.tensor([[A, PAD, B, PAD], [PAD, PAD, PAD, PAD], [B, B, A, A]])
    assert decode_rows(rows, vocab, tok) == ["a b", "", "b b a a"]
    assert row_lengths(rows).tolist() == [1, 0, 4]  # mean_len counts the tokens before the first PAD


def test_sampling_then_decoding_round_trips_and_never_emits_bos_or_eos(one_thread):
    torch.manual_seed(0)
    vocab, tok = Vocab([*SPECIALS, *(f"w{i}" for i in range(8))]), WhitespaceTokenizer()
    gen = RMCGenerator(len(vocab), seq_len=6, emb_dim=4, head_size=4, num_heads=2, start_token=BOS, pad_token=PAD,
                       banned_tokens=(BOS, EOS))
    assert not gen.variable_length and gen.config()["banned_tokens"] == [BOS, EOS]
    seqs = gen.sample(300, generator=torch.Generator().manual_seed(1))  # [300, 6]
    assert not ((seqs == BOS) | (seqs == EOS)).any() and (seqs == PAD).any()  # PAD is emitted, mid-row too
    text = decode_rows(seqs, vocab, tok)
    for row, line in zip(seqs.tolist(), text, strict=True):
        assert line == " ".join(vocab.tokens[i] for i in row if i != PAD)
    again, _ = encode_examples([line.split() for line in text], vocab, max_tokens=6, ending="pad")
    assert decode_rows(again, vocab, tok) == text  # text -> rows -> text is the identity
    squeezed = [[i for i in row if i != PAD] for row in seqs.tolist()]
    assert all(r[: len(s)] == s for r, s in zip(again.tolist(), squeezed, strict=True))
    # a rebuilt model (what a checkpoint stores) keeps the ban
    rebuilt = RMCGenerator(**{**gen.config()})
    assert torch.equal(rebuilt.logit_bias, gen.logit_bias) and gen.logit_bias[[BOS, EOS]].isinf().all()
    with pytest.raises(ValueError, match="pad_token"):
        RMCGenerator(len(vocab), seq_len=6, banned_tokens=(PAD,))


@pytest.mark.parametrize("kind", ["lstm", "rmc"])
def test_every_path_of_a_fixed_length_model_bans_its_banned_tokens(kind, one_thread):
    """Teacher-forced logits, incremental logits, every sampler and the Gumbel rollout give BOS and EOS no mass."""
    torch.manual_seed(0)
    v, t = 12, 6
    gen = (LSTMGenerator(v, emb_dim=4, hidden_dim=4, seq_len=t, start_token=BOS, pad_token=PAD,
                         banned_tokens=(BOS, EOS)) if kind == "lstm"
           else RMCGenerator(v, seq_len=t, emb_dim=4, head_size=4, num_heads=2, start_token=BOS, pad_token=PAD,
                             banned_tokens=(BOS, EOS)))
    with torch.no_grad():
        gen.proj.bias[[BOS, EOS]] = 50.0  # without the ban these two would take nearly all the mass
        seqs = gen.sample(64, generator=torch.Generator().manual_seed(1))  # [64, T]
        assert gen(seqs)[..., [BOS, EOS]].isneginf().all()  # [64, T, 2]
        assert gen.logits(gen.initial_state(3))[:, [BOS, EOS]].isneginf().all()
        hard, soft = gen.gumbel_rollout(64, beta=1.0)
    for method in ("inverse_cdf", "softmax_inverse_cdf", "multinomial", "gumbel_max"):
        drawn = gen.sample(64, method=method, generator=torch.Generator().manual_seed(2))
        assert not ((drawn == BOS) | (drawn == EOS)).any(), method
    assert not ((seqs == BOS) | (seqs == EOS)).any() and not ((hard == BOS) | (hard == EOS)).any()
    assert soft[..., [BOS, EOS]].abs().max() < 1e-6


def test_nll_of_a_hand_built_example_under_both_modes():
    p = {PAD: 0.4, UNK: 0.1, A: 0.2, B: 0.3}  # the unigram model of the pad text; EOS takes PAD's mass for eos
    pad_logits = [math.log(p[i]) if i in p else 0.0 for i in range(6)]
    pad_model = Unigram(pad_logits, start_token=BOS, pad_token=PAD, banned_tokens=(BOS, EOS))
    eos_logits = [math.log(p[PAD]) if i == EOS else math.log(p[i]) if i in p and i != PAD else 0.0 for i in range(6)]
    eos_model = Unigram(eos_logits, start_token=BOS, eos_token=EOS, pad_token=PAD)
    lp = {i: math.log(q) for i, q in p.items()}

    pad_rows = torch.tensor([[A, B, PAD, PAD], [B, A, B, A]])
    eos_rows = torch.tensor([[A, B, EOS, PAD, PAD], [B, A, B, A, EOS]])
    # RelGAN's NLL (nll_gen, the MLE loss): every position, PADs included, divided by T * B
    total, count = sequence_nll_sum(pad_model, pad_rows)
    hand = -(lp[A] + lp[B] + 2 * lp[PAD] + 2 * lp[B] + 2 * lp[A]) / 8
    assert count == 8 and total / count == pytest.approx(hand, rel=1e-6)
    assert mle_loss(pad_model, pad_rows).item() == pytest.approx(hand, rel=1e-6)
    # nll_test of pad text: up to and including the first PAD (which plays EOS's part)
    total, count = sequence_nll_sum(pad_model, pad_rows, through=PAD)
    hand_test = -(lp[A] + lp[B] + lp[PAD] + 2 * lp[B] + 2 * lp[A]) / 7
    assert count == 7 and total / count == pytest.approx(hand_test, rel=1e-6)
    # eos text: up to and including EOS; the same sentences give the same number
    total, count = sequence_nll_sum(eos_model, eos_rows)
    assert count == 8 and total / count == pytest.approx(-(lp[A] + lp[B] + lp[PAD] + 2 * lp[B] + 2 * lp[A]
                                                          + lp[PAD]) / 8, rel=1e-6)
    assert mle_loss(eos_model, eos_rows).item() == pytest.approx(total / count, rel=1e-6)
    assert through_first(pad_rows, PAD).tolist() == [[True, True, True, False], [True] * 4]


def test_pad_mode_relaxed_fakes_have_no_zero_rows_and_the_discriminator_masks_nothing(one_thread):
    torch.manual_seed(0)
    gen = RMCGenerator(12, seq_len=6, emb_dim=4, head_size=4, num_heads=2, start_token=BOS, pad_token=PAD,
                       banned_tokens=(BOS, EOS))
    hard, soft = gen.gumbel_rollout(64, beta=3.0)  # [64, 6], [64, 6, 12]
    assert soft.sum(-1).sub(1).abs().max() < 1e-5  # a relaxed row at every position, after a PAD too
    assert (hard == PAD).any() and torch.equal(soft.argmax(-1), hard)
    disc = RelGANDiscriminator(12, 6, emb_dim=8, num_rep=4, num_filters=(3, 3, 3, 3))  # pad_token None: no mask
    real = torch.tensor([[A, B, PAD, PAD, PAD, PAD]] * 2)
    shifted = torch.tensor([[A, B, PAD, PAD, PAD, B]] * 2)  # what follows the first PAD changes the score
    disc.eval()
    assert not torch.allclose(disc(real), disc(shifted))


def _corpus(tmp_path):
    tmp_path.mkdir()
    words = "a man rides a horse on the beach with a dog near two cats".split()
    lines = [" ".join(words[i:i + 3 + i % 5]) for i in range(10)]
    (tmp_path / "train.txt").write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    return tmp_path


@pytest.mark.slow
def test_a_tiny_pad_run_feeds_the_discriminator_every_position(tmp_path, monkeypatch, one_thread, capsys):
    """End to end (MLE, then Gumbel steps): real and fake batches reach D with no zero rows, nll_gen is logged."""
    import json
    from pathlib import Path

    from seqgan_kit.runs.rundir import RunDir
    from seqgan_kit.train.runner import train

    monkeypatch.setattr(RunDir, "plot", lambda self: None)
    seen = []
    forward = RelGANDiscriminator.forward

    def spy(self, seqs):
        seen.append((self.pad_token, seqs.detach().clone()))
        return forward(self, seqs)

    monkeypatch.setattr(RelGANDiscriminator, "forward", spy)
    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "coco_relgan_cpu.toml")
    corpus = _corpus(tmp_path / "corpus")
    train(recipe, [f"data.dir={corpus}", "data.max_tokens=8", "generator.head_size=4", "generator.emb_dim=4",
                   "discriminator.num_filters=[3, 3, 3, 3]", "mle.epochs=1", "gumbel.steps=2",
                   "gumbel.eval_every=1", "gumbel.batch_size=8", "eval.bleu_samples=0", "device=cpu"],
          run_dir=str(tmp_path / "run"))
    assert seen and all(pad is None for pad, _ in seen)
    fakes = [x for _, x in seen if x.is_floating_point()]
    assert fakes and all(x.shape[1] == 8 for _, x in seen)  # max_tokens positions, no EOS column
    for x in fakes:  # no zero rows: the positions of and after a PAD carry a relaxed one-hot too
        assert x.sum(-1).sub(1).abs().max() < 1e-4
    assert any((x == PAD).any() for _, x in seen if not x.is_floating_point())  # real rows hold PADs
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("nll_gen" in r and "nll_test" in r for r in recs)
    # the Python API and the run's TextModel score held-out text as the run's evaluations did (first PAD counted)
    import seqgan_kit
    from seqgan_kit.runs.textmodel import TextModel

    run = seqgan_kit.load(tmp_path / "run")
    test_lines = (corpus / "test.txt").read_text(encoding="utf-8").splitlines()
    assert run.nll(test_lines) == pytest.approx(recs[-1]["nll_test"], rel=1e-6)
    model = TextModel.load(tmp_path / "run")
    assert model.nll_test() == pytest.approx(recs[-1]["nll_test"], rel=1e-6)
    # so does `eval nll-test` on a file of the test rows' ids: it stops at the first PAD too
    from seqgan_kit.cli.main import main
    from seqgan_kit.metrics.nll import sequence_nll

    rows = model.test_ids()
    assert (rows == PAD).sum(1).gt(1).any()  # rows with several PADs: counting every position would differ
    ids = tmp_path / "test_ids.txt"
    ids.write_text("".join(" ".join(map(str, row)) + "\n" for row in rows.tolist()), encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", "nll-test", "--checkpoint", str(tmp_path / "run"), "--samples", str(ids), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["nll_test"]
    assert got == pytest.approx(recs[-1]["nll_test"], rel=1e-6)
    assert got != pytest.approx(sequence_nll(model.generator, rows), rel=1e-3)


def test_synthetic_nll_gen_is_the_nll_of_the_training_data(one_thread):
    from seqgan_kit.metrics.nll import sequence_nll
    from seqgan_kit.models.lstm_generator import LSTMGenerator
    from seqgan_kit.tasks.evaluation import EvalConfig
    from seqgan_kit.tasks.synthetic import OracleConfig, SyntheticTask

    cfg = OracleConfig(vocab_size=30, emb_dim=4, hidden_dim=4, seq_len=5, n_train=70, n_test=40)
    task = SyntheticTask(cfg, EvalConfig(n_samples=16, batch_size=32, nll_gen=True), 0, torch.device("cpu"))
    torch.manual_seed(0)
    gen = LSTMGenerator(30, 4, 4, 5)
    out = task.evaluate(gen, torch.Generator().manual_seed(0))
    assert set(out) == {"nll_oracle", "nll_test", "nll_gen"}
    assert out["nll_gen"] == pytest.approx(sequence_nll(gen, task.train), rel=1e-9)
    assert out["nll_gen"] == pytest.approx(mle_loss(gen, task.train).item(), rel=1e-5)  # RelGAN's /(T*B)
    assert out["nll_gen"] != pytest.approx(out["nll_test"], rel=1e-6)


def test_a_pad_corpus_prints_the_test_mean_length_and_the_task_counts_tokens_before_the_first_pad(tmp_path):
    from seqgan_kit.data.corpus import prepare_text_data
    from seqgan_kit.data.data_config import DataConfig
    from seqgan_kit.tasks.evaluation import EvalConfig
    from seqgan_kit.tasks.text import TextTask

    corpus = _corpus(tmp_path / "corpus")
    cfg = DataConfig(dir=str(corpus), train="train.txt", test="test.txt", tokenizer="whitespace", max_tokens=6,
                     ending="pad")
    lines = []
    data = prepare_text_data(cfg, tmp_path / "tok", seed=0, log=lines.append)
    assert data.train.shape[1] == data.test.shape[1] == 6 and not (data.train == EOS).any()
    test_lens = [min(len(x.split()), 6) for x in (corpus / "test.txt").read_text().splitlines()]
    mean = sum(test_lens) / len(test_lens)
    assert f"after truncation {mean:.1f}" in "\n".join(lines)
    task = TextTask(cfg, EvalConfig(bleu_samples=0), tmp_path / "tok", torch.device("cpu"), 0)
    assert task.seq_len == 6 and task.special_tokens()["banned_tokens"] == (BOS, EOS)
    assert "eos_token" not in task.special_tokens() and task.fingerprint()["ending"] == "pad"
    assert row_lengths(task.test).double().mean().item() == pytest.approx(mean)


def test_eval_test_rows_scores_the_first_test_rows_only(tmp_path, one_thread):
    """``eval.test_rows = N``: NLL_test of the first N test examples (through the first PAD), not of all."""
    from seqgan_kit.data.data_config import DataConfig
    from seqgan_kit.metrics.nll import sequence_nll_sum, through_first
    from seqgan_kit.models.lstm_generator import LSTMGenerator
    from seqgan_kit.tasks.evaluation import EvalConfig
    from seqgan_kit.tasks.text import TextTask

    cfg = DataConfig(dir=str(_corpus(tmp_path / "corpus")), train="train.txt", test="test.txt",
                     tokenizer="whitespace", max_tokens=6, ending="pad")
    part, whole = (TextTask(cfg, EvalConfig(bleu_samples=0, test_rows=n), tmp_path / "tok", torch.device("cpu"), 0)
                   for n in (4, 0))
    torch.manual_seed(0)
    gen = LSTMGenerator(part.vocab_size, 4, 4, part.seq_len, **part.special_tokens())
    rows = part.test[:4]  # [4, 6]
    lp = gen.log_probs(rows).double()  # [4, 6]
    keep = gen.token_mask(rows) & through_first(rows, PAD)
    expected = -(lp * keep).sum().item() / keep.sum().item()
    assert part.evaluate(gen)["nll_test"] == pytest.approx(expected, rel=1e-9)
    assert whole.evaluate(gen)["nll_test"] == pytest.approx(
        (lambda s, c: s / c)(*sequence_nll_sum(gen, whole.test, 256, PAD)), rel=1e-9)
    assert part.evaluate(gen)["nll_test"] != pytest.approx(whole.evaluate(gen)["nll_test"], rel=1e-6)
