"""Sentence-encoder commands: ``eval fed``, ``eval embsim``, ``eval novelty``, ``eval encoder`` and ``encode``.

::

    seqgan-kit eval fed --encoder RUN --hyp FILE --ref FILE [--pooling sif|mean] [--eps E] [--json]
    seqgan-kit eval embsim --encoder W2V_RUN --hyp FILE [--top-k K] [--json]
    seqgan-kit eval novelty --encoder RUN --hyp FILE [--train FILE] [--json]
    seqgan-kit encode RUN --nearest "a sentence" [-k 5]
    seqgan-kit eval encoder RUN [--baseline W2V_RUN] [--json]     (seqgan_kit.cli.encoder_check)

An encoder RUN is the directory of a ``word2vec`` or ``skipthought`` run (:mod:`seqgan_kit.encoders.loading`).
Text files are strict UTF-8, one sentence per line, no blank line. Text the encoder barely knows (another corpus
or tokenizer) is refused; so is a hypothesis run (``--hyp-run``) of another corpus or tokenizer. Every value is
printed with ``n`` and the encoder it was measured with.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from ..errors import UserError


def read_texts(path: str, max_lines: int | None = None) -> list[str]:
    """The non-blank lines of a strict UTF-8 file. Blank lines (e.g. samples that ended at once) have no
    embedding: they are left out with a note saying how many; a file of blank lines only is an error."""
    import sys

    from ..files import read_lines

    lines = read_lines(path, max_lines)
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise UserError(f"{path}: no sentence (only empty lines)")
    if len(texts) < len(lines):
        print(f"seqgan-kit: note: {path}: left out {len(lines) - len(texts)} empty line(s) of {len(lines)} "
              f"(an empty sentence has no embedding)", file=sys.stderr)
    return texts


def _encoder(args: argparse.Namespace) -> Any:
    from ..encoders.loading import load_encoder

    return load_encoder(args.encoder, pooling=args.pooling, expand=getattr(args, "expand", None))


def _check_hyp_run(encoder: Any, hyp_run: str | None) -> None:
    """Refuse hypotheses from a run of another corpus or tokenizer than the encoder's."""
    if not hyp_run:
        return
    from ..runs.rundir import RunDir

    data = RunDir(hyp_run).read_config().get("data", {})
    theirs = (data.get("name"), data.get("tokenizer"))
    ours = (encoder.corpus, encoder.cfg.data.tokenizer)
    if theirs != ours:
        raise UserError(f"--hyp-run {hyp_run} is a run of corpus {theirs[0]!r} ({theirs[1]} tokens), the encoder "
                        f"{encoder.run_dir} of corpus {ours[0]!r} ({ours[1]} tokens): use an encoder of the "
                        f"same corpus and tokenizer")


def _print(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        print("\n".join(lines))


def fed_of_texts(encoder: Any, hyps: list[str], refs: list[str], eps: float = 0.0) -> dict[str, Any]:
    """FED of two text lists under ``encoder``: ``{"fed", "n_hyp", "n_ref", "dim", "eps", "encoder", ...}``."""
    from ..metrics.embedding import fed, fed_error, min_samples

    if not (math.isfinite(eps) and eps >= 0):
        raise UserError(f"--eps must be a finite number >= 0, got {eps}")
    for what, texts in (("hypotheses", hyps), ("references", refs)):
        if len(texts) < 2:
            raise UserError(f"{what}: FED needs at least 2 sentences, got {len(texts)}")
        if len(texts) < min_samples(encoder.dim) and eps == 0:
            raise fed_error(len(texts), encoder.dim, what)
    start = time.perf_counter()
    x_ref = encoder.embed(refs)
    x_hyp = encoder.embed(hyps)
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    value = fed(x_ref, x_hyp, eps=eps)
    return {"fed": value, "n_hyp": len(hyps), "n_ref": len(refs), "dim": encoder.dim, "eps": eps,
            "encoder": encoder.describe(), "embed_s": round(embed_s, 3), "fed_s": round(time.perf_counter() - start, 3)}


def _cmd_fed(args: argparse.Namespace) -> int:
    from ..encoders.loading import check_coverage

    encoder = _encoder(args)
    _check_hyp_run(encoder, args.hyp_run)
    hyps = read_texts(args.hyp, args.max_n)
    refs = read_texts(args.ref, args.max_n)
    coverage = {"hyp": check_coverage(encoder, hyps, args.hyp), "ref": check_coverage(encoder, refs, args.ref)}
    result = {**fed_of_texts(encoder, hyps, refs, args.eps), "coverage": coverage}
    eps = f", covariances + {args.eps:g} I" if args.eps else ""
    _print(result, args.json, [
        f"FED {result['fed']:.6f}  ({result['n_hyp']} hypotheses vs {result['n_ref']} references{eps}; "
        f"encoder {encoder.label}; lower is closer)"])
    return 0


def _cmd_embsim(args: argparse.Namespace) -> int:
    from ..encoders.loading import check_coverage
    from ..encoders.word2vec import train_word2vec
    from ..metrics.embedding import embsim

    args.pooling = "mean"
    encoder = _encoder(args)
    if encoder.kind != "word2vec":
        raise UserError(f"eval embsim needs a word2vec run, {args.encoder} is a {encoder.kind} run")
    _check_hyp_run(encoder, args.hyp_run)
    hyps = read_texts(args.hyp)
    check_coverage(encoder, hyps, args.hyp)
    if args.top_k is not None and args.top_k < 2:
        raise UserError(f"--top-k must be at least 2, got {args.top_k}")
    real = encoder.vectors
    params = dict(real.meta.get("params", {}))
    params["min_count"] = 1  # a sample file is small; every word it has gets a vector
    params["workers"] = 1
    gen, _ = train_word2vec([encoder.tokenize(t) for t in hyps], seed=int(real.meta.get("seed", 1)), **params)
    counts = {w: int(c) for w, c in zip(real.words, real.counts, strict=True)}
    try:
        res = embsim({w: real.vectors[i] for w, i in real.index.items()},
                     {w: gen.vectors[i] for w, i in gen.index.items()}, counts, args.top_k)
    except ValueError as exc:
        raise UserError(f"eval embsim: {exc}") from None
    result = {"embsim": res.embsim, "n_hyp": len(hyps), "top_k": res.k, "words_used": res.words_used,
              "words_missing": res.words_missing, "encoder": encoder.describe()}
    _print(result, args.json, [
        f"EmbSim {res.embsim:.6f}  ({len(hyps)} hypotheses; top {res.k} words of the encoder corpus by count, "
        f"{res.words_used} with vectors in both spaces, {res.words_missing} missing from the hypotheses; "
        f"encoder {encoder.label}; 0 is best)"])
    return 0


def _training_texts(encoder: Any, path: str | None) -> list[str]:
    texts = read_texts(path) if path else encoder.training_sentences()
    if encoder.lowercase:
        texts = [t.lower() for t in texts]
    return texts


def _cmd_novelty(args: argparse.Namespace) -> int:
    from ..encoders.loading import check_coverage
    from ..metrics.embedding import normalise_text, novelty

    encoder = _encoder(args)
    _check_hyp_run(encoder, args.hyp_run)
    hyps = read_texts(args.hyp)
    check_coverage(encoder, hyps, args.hyp)
    train = _training_texts(encoder, args.train)
    res = novelty(encoder.embed(hyps), encoder.embed(train),
                  [normalise_text(encoder.tokenize(t)) for t in hyps],
                  [normalise_text(encoder.tokenize(t)) for t in train])
    examples = []
    for i in (res["nearest_similarity"].argsort()[::-1][: args.show]).tolist():
        examples.append({"sample": hyps[i], "nearest": train[int(res["nearest_index"][i])],
                         "similarity": float(res["nearest_similarity"][i]), "copy": bool(res["copies"][i])})
    result = {k: v for k, v in res.items() if k not in ("nearest_index", "nearest_similarity", "copies")}
    result.update(encoder=encoder.describe(), training_source=args.train or "the encoder corpus's training split",
                  most_similar=examples)
    q = result["nn_similarity_quantiles"]
    lines = [f"novelty of {result['n']} samples against {result['n_train']} training sentences "
             f"(encoder {encoder.label})",
             f"  copy rate (exact training sentence): {result['copy_rate']:.4f}",
             f"  nearest-neighbour cosine: mean {result['nn_similarity_mean']:.4f}; "
             + ", ".join(f"q{k} {v:.4f}" for k, v in q.items())]
    lines += [f"  {e['similarity']:.4f}{' copy' if e['copy'] else ''}  {e['sample']}  ->  {e['nearest']}"
              for e in examples]
    _print(result, args.json, lines)
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    from ..metrics.embedding import nearest

    if not args.nearest:
        raise UserError("encode needs --nearest TEXT (the sentence whose nearest training sentences to print)")
    if not args.nearest.strip():
        raise UserError("--nearest: empty text")
    if args.k < 1:
        raise UserError(f"-k must be at least 1, got {args.k}")
    args.encoder = args.run
    encoder = _encoder(args)
    train = _training_texts(encoder, args.train)
    query = args.nearest.lower() if encoder.lowercase else args.nearest
    if not any(tok in encoder.known for tok in encoder.tokenize(query)):
        raise UserError(f"--nearest: the encoder ({encoder.kind}, corpus {encoder.corpus}) knows none of the "
                        f"tokens of {args.nearest!r}")
    sims, idx = nearest(encoder.embed([query]), encoder.embed(train), k=args.k)
    result = {"query": args.nearest, "encoder": encoder.describe(),
              "nearest": [{"text": train[int(j)], "similarity": float(s)} for s, j in zip(sims[0], idx[0],
                                                                                          strict=True)]}
    _print(result, args.json, [f"nearest of {len(train)} training sentences to {args.nearest!r} "
                               f"(encoder {encoder.label}):"]
           + [f"  {n['similarity']:.4f}  {n['text']}" for n in result["nearest"]])
    return 0


def _encoder_args(p: argparse.ArgumentParser, with_expand: bool = True) -> None:
    p.add_argument("--pooling", choices=["sif", "mean"], default="sif",
                   help="word2vec encoders: SIF-weighted mean minus the stored principal component (default), "
                        "or the plain mean")
    if with_expand:
        p.add_argument("--expand", metavar="W2V_RUN",
                       help="skipthought encoders: vocabulary expansion from this word2vec run")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(eval_subparsers: argparse._SubParsersAction, subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval fed``, ``eval embsim``, ``eval novelty``, ``eval encoder`` and the ``encode`` command."""
    p = eval_subparsers.add_parser(
        "fed", help="Fréchet embedding distance between generated and reference sentences",
        description="||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) of Gaussians fitted to the sentence "
                    "vectors of an encoder run (word2vec or skipthought), in float64.")
    p.add_argument("--encoder", required=True, metavar="RUN", help="a word2vec or skipthought run directory")
    p.add_argument("--hyp", required=True, metavar="FILE", help="generated sentences, one per line")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference sentences, one per line")
    p.add_argument("--max-n", type=int, metavar="N", help="use only the first N lines of each file")
    p.add_argument("--eps", type=float, default=0.0, metavar="E",
                   help="add E*I to both covariances (needed when a file has no more lines than the encoder has "
                        "dimensions; default 0: refuse such files)")
    p.add_argument("--hyp-run", metavar="RUN", help="the run the hypotheses come from (checked: same corpus and "
                                                     "tokenizer as the encoder)")
    _encoder_args(p)
    p.set_defaults(func=_cmd_fed)

    p = eval_subparsers.add_parser(
        "embsim", help="EmbSim (Texygen's DocEmbSim) of generated text against a word2vec run's corpus",
        description="word2vec is trained on the hypotheses with the encoder run's settings; the cosine-similarity "
                    "rows of the corpus's top-K words (by count) are compared between the two spaces.")
    p.add_argument("--encoder", required=True, metavar="W2V_RUN", help="a word2vec run directory")
    p.add_argument("--hyp", required=True, metavar="FILE", help="generated sentences, one per line")
    p.add_argument("--top-k", type=int, metavar="K", help="frequent words compared (default: a tenth of the "
                                                          "word2vec vocabulary)")
    p.add_argument("--hyp-run", metavar="RUN", help="the run the hypotheses come from (checked)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_embsim, expand=None)

    p = eval_subparsers.add_parser(
        "novelty", help="copies and nearest training sentences of generated text",
        description="For each sample: is it a training sentence (exact copy), and how close is its nearest "
                    "training sentence by embedding cosine.")
    p.add_argument("--encoder", required=True, metavar="RUN", help="a word2vec or skipthought run directory")
    p.add_argument("--hyp", required=True, metavar="FILE", help="generated sentences, one per line")
    p.add_argument("--train", metavar="FILE", help="training sentences (default: the encoder corpus's training "
                                                   "split)")
    p.add_argument("--show", type=int, default=5, metavar="K", help="print the K samples closest to a training "
                                                                    "sentence (default 5)")
    p.add_argument("--hyp-run", metavar="RUN", help="the run the hypotheses come from (checked)")
    _encoder_args(p)
    p.set_defaults(func=_cmd_novelty)

    p = subparsers.add_parser("encode", help="sentence-encoder runs: nearest training sentences of a text")
    p.add_argument("run", metavar="RUN", help="a word2vec or skipthought run directory")
    p.add_argument("--nearest", metavar="TEXT", help="print the training sentences nearest to TEXT")
    p.add_argument("-k", type=int, default=5, help="how many (default 5)")
    p.add_argument("--train", metavar="FILE", help="search these sentences instead of the encoder corpus's "
                                                   "training split")
    _encoder_args(p)
    p.set_defaults(func=_cmd_encode)

    from .encoder_check import register as register_check

    register_check(eval_subparsers)
