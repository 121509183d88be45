"""Scoring a MaskGAN text run's in-filling of held-out sentences (``seqgan-kit eval infill``).

Held-out sentences (the run's test split, or a file of the same kind of text) are masked (a
:class:`~seqgan_kit.models.masks.MaskSpec`, seeded), filled by the run's in-filler and scored on the masked
positions only, in the model's token space: the teacher-forced NLL and perplexity (and the run's pretraining
LM's at the same positions), the share of fills equal to the original token, and sacrebleu corpus BLEU-2/3/4 of
each row's filled tokens against its real ones. :func:`evaluate_infill` does it all and returns one dict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..data.corpus import encode_examples, load_lines, row_lengths
from ..data.tokenization import UNK
from ..errors import UserError
from ..files import read_lines
from ..metrics.corpus_bleu import corpus_bleu
from ..metrics.infill import masked_nll, masked_runs, masked_spans, token_accuracy
from ..models.masks import PREFIX, MaskSpec, build_present, fillable_lengths, masked_span_length
from ..runs.rundir import RunDir
from ..runs.textmodel import TextModel
from .filling import require_infiller

INFILL_BLEU_ORDERS = (2, 3, 4)
DEFAULT_RATE = 0.5
"""The keep rate when none is given and the run's ``maskgan.is_present_rate`` is 0 (an unconditional run)."""
MAX_UNKNOWN_SHARE = 0.25
"""Held-out text with more of its tokens outside the run's vocabulary is refused (text of another corpus)."""


def load_infiller(path: Path | str) -> tuple[TextModel, dict[str, Any]]:
    """The run's TextModel and its ``[maskgan]`` settings; UserError unless it is a MaskGAN text run."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"not found: {path}")
    run = RunDir.holding(path)
    if not run.is_text_run():
        raise UserError(f"{path} is not a text run: eval infill scores in-filling of held-out text (a synthetic "
                        f"run's in-filler fills token ids with `seqgan-kit fill`)")
    settings = run.read_config().get("maskgan", {})
    model = TextModel.load(path)
    require_infiller(model.generator, path)
    return model, settings


def resolve_mask(spec: MaskSpec | None, rate: float | None, settings: dict[str, Any], seq_len: int
                 ) -> tuple[MaskSpec, float | None]:
    """The mask and keep rate to use (defaults from the run's ``[maskgan]``); UserError if it masks nothing."""
    if spec is None:
        spec = MaskSpec(settings.get("mask_strategy", "contiguous"))
    if spec.strategy == PREFIX:
        if not spec.keep < seq_len:
            raise UserError(f"--mask {spec}: the model's sequences have {seq_len} positions (EOS included), so K "
                            f"must be below {seq_len}")
        return spec, None
    if rate is None:
        rate = float(settings.get("is_present_rate") or DEFAULT_RATE)
    if spec.strategy == "contiguous" and masked_span_length(seq_len - 1, rate) < 1:
        raise UserError(f"--rate {rate} masks no token of even the longest sentence ({seq_len - 1} tokens before "
                        f"EOS) with contiguous masks (int((1 - rate) * L) tokens); lower it")
    return spec, rate


def held_out_sentences(model: TextModel, ref: str | None) -> tuple[list[str], str]:
    """The held-out text: the run's test split (as training splits it) or a file; and where it came from."""
    if ref is None:
        lines, source = load_lines(model.data, seed=model.seed)[1], "the run's test split"
    else:
        lines, source = read_lines(ref), ref
    if model.data.lowercase:
        lines = [line.lower() for line in lines]
    return lines, source


def sentence_rows(model: TextModel, lines: list[str], n: int, seed: int, source: str) -> tuple[torch.Tensor, int]:
    """``rows [min(n, S), T]`` int64 (ids, EOS, PAD; ``T = gen.seq_len``) of ``n`` sentences picked by a seeded
    permutation of the ``S`` that have a token, and how many of them were truncated to ``T - 1`` tokens.

    UserError when more than :data:`MAX_UNKNOWN_SHARE` of the picked sentences' tokens are outside the run's
    vocabulary: the text is not of the run's corpus, and its fills would be scored against ``<unk>``.
    """
    tokens = [t for t in map(model.tokenizer.tokenize, lines) if t]
    if not tokens:
        raise UserError(f"no sentence with a token in {source}")
    order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    picked = [tokens[i] for i in order]
    total = sum(map(len, picked))
    unknown = sum(i == UNK for t in picked for i in model.vocab.encode(t))
    if unknown > MAX_UNKNOWN_SHARE * total:
        raise UserError(f"{source}: {100 * unknown / total:.1f}% of its tokens ({unknown:,} of {total:,}) are outside "
                        f"the run's vocabulary (more than {100 * MAX_UNKNOWN_SHARE:.0f}%): give held-out text of "
                        f"the run's corpus")
    rows, truncated = encode_examples(picked, model.vocab, model.generator.seq_len - 1)
    return rows, truncated


def eval_present(gen: Any, spec: MaskSpec, rows: torch.Tensor, rate: float | None, seed: int) -> torch.Tensor:
    """``present [N, T]`` bool (CPU) for ``rows [N, T]``: the mask of ``spec`` (seeded), drawn inside each
    sentence's tokens before EOS (:func:`~seqgan_kit.models.masks.make_present`, the rule training uses: EOS
    and the padding after it are never filled)."""
    return build_present(spec, fillable_lengths(rows, gen.eos_token), rows.shape[1], rate or 0.0, seed)  # [N, T]


def score_fills(model: TextModel, rows: torch.Tensor, present: torch.Tensor, temperature: float, seed: int
                ) -> tuple[float, float | None, int, torch.Tensor]:
    """Summed masked NLL of the in-filler and of its wrapped language model (left context only, EOS excluded
    like the in-filler's; None without one), the masked token count and the fills ``[N, T]``, in chunks of
    ``eval.batch_size``."""
    gen = model.generator
    lm = getattr(gen, "lm", None)
    chunk = model.eval_cfg.batch_size
    rng = torch.Generator(device=gen.device).manual_seed(seed)
    nll_sum, lm_sum, count, fills = 0.0, 0.0, 0, []
    with torch.no_grad():
        for lo in range(0, len(rows), chunk):
            seqs = rows[lo:lo + chunk].to(gen.device)
            mask = present[lo:lo + chunk].to(gen.device)
            total, k = masked_nll(gen.teacher_forced(seqs, mask), seqs, mask)
            nll_sum, count = nll_sum + total, count + k
            if lm is not None:
                lm_sum += masked_nll(lm(seqs) + gen.fill_bias, seqs, mask)[0]  # [B, T, V], EOS banned
            filled, _ = gen.fill(seqs, mask, temperature=temperature, generator=rng)
            fills.append(filled.cpu())
    return nll_sum, lm_sum if lm is not None else None, count, torch.cat(fills)


def fill_bleu(filled: torch.Tensor, real: torch.Tensor, present: torch.Tensor) -> tuple[dict[int, float], str]:
    """sacrebleu corpus BLEU-n (0-100) of each row's filled masked tokens against its real ones, and the
    signature of the BLEU-4 metric."""
    hyps, refs = masked_spans(filled, real, present)
    scores, signature = {}, ""
    for n in INFILL_BLEU_ORDERS:
        result = corpus_bleu(hyps, refs, max_order=n)
        scores[n], signature = result.score, result.signature
    return scores, signature


def examples(model: TextModel, filled: torch.Tensor, real: torch.Tensor, present: torch.Tensor, k: int
             ) -> list[dict[str, Any]]:
    """The first ``k`` rows as text: context (each masked run shown as ``___``), original, fill, and the spans."""
    tokens, detok = model.vocab.tokens, model.tokenizer.detokenize
    out = []
    lengths = row_lengths(real[:k]).tolist()
    for row in range(min(k, len(real))):
        length = lengths[row]
        ids, fill_ids = real[row, :length].tolist(), filled[row, :length].tolist()
        runs = masked_runs(present[row, :length].tolist())
        context, spans, at = [], [], 0
        for start, stop in runs:
            if start > at:
                context.append(detok([tokens[i] for i in ids[at:start]]))
            context.append("___")
            spans.append({"original": detok([tokens[i] for i in ids[start:stop]]),
                          "fill": detok([tokens[i] for i in fill_ids[start:stop]])})
            at = stop
        if at < length:
            context.append(detok([tokens[i] for i in ids[at:length]]))
        out.append({"context": " ".join(context), "original": model.decode(real[row:row + 1])[0],
                    "fill": model.decode(filled[row:row + 1])[0], "spans": spans})
    return out


def perplexity(nll: float) -> float:
    return math.exp(nll) if nll < 700 else math.inf


def evaluate_infill(model: TextModel, settings: dict[str, Any], spec: MaskSpec | None = None,
                    rate: float | None = None, n: int = 1000, seed: int = 0, temperature: float = 1.0,
                    ref: str | None = None, n_examples: int = 0, notes: list[str] | None = None
                    ) -> dict[str, Any]:
    """Mask ``n`` held-out sentences, fill them and score the masked positions (see the module docstring).

    ``settings``: the run's ``[maskgan]`` table (the default mask and rate). ``notes`` collects what a caller
    may want to tell the user (fewer sentences than ``n``). Returns every number, keyed as ``eval infill
    --json`` prints them (without ``run``).
    """
    gen = model.generator
    spec, rate = resolve_mask(spec, rate, settings, gen.seq_len)
    lines, source = held_out_sentences(model, ref)
    rows, truncated = sentence_rows(model, lines, n, seed, source)
    if len(rows) < n and notes is not None:
        notes.append(f"{source} has {len(rows)} sentences with a token, fewer than -n {n}: scoring all of them")
    present = eval_present(gen, spec, rows, rate, seed)
    scored = (~present).any(dim=1)  # [N]
    if not bool(scored.any()):
        raise UserError(f"no sentence has a masked token under --mask {spec}"
                        + (f" --rate {rate}" if rate is not None else "") + " (the mask fell on EOS and padding)")
    rows, present = rows[scored], present[scored]
    nll_sum, lm_sum, count, filled = score_fills(model, rows, present, temperature, seed)
    nll = nll_sum / count
    lm_nll = None if lm_sum is None else lm_sum / count
    bleu, signature = fill_bleu(filled, rows, present)
    return {
        "source": source, "rows": len(scored), "scored_rows": len(rows),
        "dropped_rows": len(scored) - len(rows), "truncated": truncated, "masked_tokens": count,
        "mask": str(spec), "rate": rate, "seed": seed, "temperature": temperature,
        "masked_nll": nll, "masked_perplexity": perplexity(nll),
        "lm_masked_nll": lm_nll, "lm_masked_perplexity": None if lm_nll is None else perplexity(lm_nll),
        "token_accuracy": token_accuracy(filled, rows, present),
        "bleu": {str(k): v for k, v in bleu.items()}, "bleu_signature": signature,
        "examples": examples(model, filled, rows, present, n_examples),
    }
