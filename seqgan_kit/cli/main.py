"""The ``seqgan-kit`` command line: ``train``, ``sample``, ``eval`` and ``data`` sub-commands.

Every command reports bad input as one line ``seqgan-kit: error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train.runner import check_before_launch, train

    if args.nproc is not None:
        from .launch import launch

        check_before_launch(args.recipe, args.set or [], args.resume, args.nproc)  # bad input: no rank starts
        argv = [*([args.recipe] if args.recipe else []), *[f"--set={o}" for o in args.set or []],
                *([f"--run-dir={args.run_dir}"] if args.run_dir else []),
                *([f"--resume={args.resume}"] if args.resume else []),
                *([f"--threads={args.threads}"] if args.threads is not None else [])]
        return launch(args.nproc, argv)
    train(args.recipe, args.set or [], run_dir=args.run_dir, resume=args.resume, argv=sys.argv,
          threads=args.threads)
    return 0


def _load_generator(path_arg: str):
    """A generator from a checkpoint file, or from a run directory's latest checkpoint."""
    from ..runs.checkpoint import load_model

    return load_model(path_arg, "generator")[0]


SYNTHETIC_CHUNK = 4096
"""Rows sampled at once from a synthetic checkpoint (the generator's default batch: the same draws as before)."""

ORACLE_TRAIN_LEN = 20
"""The length the synthetic oracle generates at (its NLL_oracle is defined there)."""


def _sample_chunks(args: argparse.Namespace) -> Iterator[list[str]]:
    """Load the model now (errors before any output), then yield the sample lines chunk by chunk."""
    import torch

    path = Path(args.checkpoint)
    from ..runs.rundir import RunDir

    if RunDir.holding(path).is_text_run():
        from ..runs.textmodel import TextModel

        model = TextModel.load(path)

        def text_chunks() -> Iterator[list[str]]:
            for seqs in model.iter_sample_ids(args.n, args.temperature, args.seed):
                yield [" ".join(map(str, row)) for row in seqs.tolist()] if args.ids else model.decode(seqs)

        return text_chunks()
    gen = _load_generator(args.checkpoint)
    rng = torch.Generator().manual_seed(args.seed)

    def id_chunks() -> Iterator[list[str]]:
        for lo in range(0, args.n, SYNTHETIC_CHUNK):
            rows = min(SYNTHETIC_CHUNK, args.n - lo)
            seqs = gen.sample(rows, temperature=args.temperature, generator=rng, batch_size=SYNTHETIC_CHUNK)
            yield [" ".join(map(str, row)) for row in seqs.tolist()]

    return id_chunks()


def _cmd_sample(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.n <= 0:
        raise UserError(f"-n must be positive, got {args.n}")
    if not math.isfinite(args.temperature):
        raise UserError(f"--temperature must be a finite number, got {args.temperature}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {args.temperature}")
    chunks = _sample_chunks(args)
    bar = tqdm(total=args.n, desc="sample", unit="seq", disable=None, file=sys.stderr, leave=False)
    try:
        if args.out:
            from ..files import atomic_path

            with atomic_path(args.out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                for lines in chunks:
                    fh.write("".join(line + "\n" for line in lines))
                    bar.update(len(lines))
        else:
            try:
                for lines in chunks:
                    sys.stdout.write("".join(line + "\n" for line in lines))
                    sys.stdout.flush()
                    bar.update(len(lines))
            except BrokenPipeError:  # e.g. `| head`: the reader has all it wants
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        bar.close()
    return 0


def _check_dims(args: argparse.Namespace) -> None:
    for flag in ("vocab_size", "emb_dim", "hidden_dim"):
        value = getattr(args, flag)
        if value <= 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {value}")


def _parse_oracle(text: str, vocab_size: int, emb_dim: int, hidden_dim: int):
    from ..models.oracle import load_oracle_npz, random_oracle

    if text.lstrip("-").isdigit():
        from ..device import check_fits
        from ..models.lstm_generator import LSTMGenerator
        from ..models.registry import meta_build, parameter_bytes

        oracle = meta_build(lambda: LSTMGenerator(vocab_size, emb_dim, hidden_dim))
        if oracle is not None:
            check_fits({"oracle parameters": parameter_bytes(oracle)}, "the oracle",
                       "lower --vocab-size, --emb-dim or --hidden-dim")
        return random_oracle(int(text), vocab_size, emb_dim, hidden_dim)
    return load_oracle_npz(text)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}  {value:.4f}" if isinstance(value, float) else f"{key:>12}  {value}")


def _cmd_nll_oracle(args: argparse.Namespace) -> int:
    from ..data.tokens import read_token_file
    from ..metrics.nll import sequence_nll

    _check_dims(args)
    oracle = _parse_oracle(args.oracle, args.vocab_size, args.emb_dim, args.hidden_dim)
    seqs = read_token_file(args.samples, vocab_size=oracle.vocab_size)
    seq_len = int(seqs.shape[1])
    if seq_len != ORACLE_TRAIN_LEN:
        print(f"seqgan-kit: warning: {args.samples} has sequences of {seq_len} tokens; the oracle generates "
              f"{ORACLE_TRAIN_LEN} (NLL_oracle in the paper is over {ORACLE_TRAIN_LEN}), so this score is not "
              f"comparable", file=sys.stderr)
    result = {"nll_oracle": sequence_nll(oracle, seqs), "n_sequences": int(seqs.shape[0]), "seq_len": seq_len}
    _print_result(result, args.json)
    return 0


def _cmd_nll_test(args: argparse.Namespace) -> int:
    from ..data.tokens import read_token_file
    from ..metrics.nll import sequence_nll

    gen = _load_generator(args.checkpoint)
    seqs = read_token_file(args.samples, vocab_size=gen.vocab_size)  # ids checked against the vocabulary
    if seqs.shape[1] > gen.max_len:
        raise UserError(f"{args.samples} has sequences of {seqs.shape[1]} tokens, longer than the model's max_len "
                        f"{gen.max_len}")
    result = {"nll_test": sequence_nll(gen, seqs), "n_sequences": int(seqs.shape[0])}
    _print_result(result, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqgan-kit",
        description="Adversarial text generation: train SeqGAN-style models, sample, and evaluate.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train from a TOML recipe (or resume a run directory)")
    p.add_argument("recipe", nargs="?", help="recipe TOML file, e.g. recipes/synthetic_mle.toml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe key, e.g. --set mle.lr=1e-3 (repeatable)")
    p.add_argument("--run-dir", help="where to write the run (default runs/<name>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for PyTorch (overrides runtime.threads; 1 is fastest on a busy machine)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train with N ranks on this machine (torchrun --standalone --nproc-per-node N; batch "
                        "sizes stay global); several machines: torchrun --nnodes, see the README")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="sample from a run directory (text runs print detokenized text, one "
                                      "sample per line; synthetic runs print token ids)")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("-n", type=int, default=9984, help="number of samples (default 9984)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write to this file instead of stdout")
    p.add_argument("--ids", action="store_true", help="text runs: print token ids instead of text")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("eval", help="metrics: nll-oracle, nll-test, bleu, self-bleu, sweep, distinct, infill, fed, ...")
    ev = p.add_subparsers(dest="metric", metavar="METRIC", required=True)

    q = ev.add_parser("nll-oracle", help="mean per-token NLL of a token-id file under an oracle")
    q.add_argument("--oracle", required=True, help="oracle weights .npz, or an integer seed for a random oracle")
    q.add_argument("--samples", required=True, help="file of token-id lines")
    q.add_argument("--vocab-size", type=int, default=5000, help="random oracle only (default 5000)")
    q.add_argument("--emb-dim", type=int, default=32, help="random oracle only (default 32)")
    q.add_argument("--hidden-dim", type=int, default=32, help="random oracle only (default 32)")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=_cmd_nll_oracle)

    q = ev.add_parser("nll-test", help="a checkpoint's mean per-token NLL on a file of sequences")
    q.add_argument("--checkpoint", required=True, metavar="CHECKPOINT_OR_RUN_DIR")
    q.add_argument("--samples", required=True, help="file of token-id lines")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=_cmd_nll_test)

    from ..data.prepare import add_cli
    from .eval_metrics import register

    register(ev)
    from .eval_infill import register as register_infill
    register_infill(ev)
    add_cli(sub)
    from .encoders import register as register_encoders
    register_encoders(ev, sub)
    from .fill import register as register_fill
    register_fill(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"seqgan-kit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("seqgan-kit: interrupted (a run that wrote a checkpoint can be continued with: seqgan-kit train "
              "--resume RUN_DIR)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
