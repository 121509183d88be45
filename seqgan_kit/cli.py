"""The ``seqgan-kit`` command line: ``train``, ``sample`` and ``eval`` sub-commands.

Every command reports bad input as one line ``seqgan-kit: error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import UserError


def _cmd_train(args: argparse.Namespace) -> int:
    from .train.runner import train

    train(args.recipe, args.set or [], run_dir=args.run_dir, resume=args.resume, argv=sys.argv)
    return 0


def _load_generator(path_arg: str):
    """A generator from a checkpoint file, or from a run directory's latest checkpoint."""
    from .textmodel import load_generator

    return load_generator(path_arg)[0]


def _is_text_run(path: Path) -> bool:
    """Does ``path`` (a run directory or a checkpoint file inside one) belong to a text run?"""
    config = (path if path.is_dir() else path.parent) / "config.toml"
    if not config.is_file():
        return False
    from .rundir import RunDir

    return RunDir(config.parent).read_config().task == "text"


def _write_output(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temp file renamed into place); UserError if impossible."""
    import os

    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    if args.n <= 0:
        raise UserError(f"-n must be positive, got {args.n}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {args.temperature}")
    path = Path(args.checkpoint)
    if _is_text_run(path):
        from .textmodel import TextModel

        model = TextModel.load(path)
        seqs = model.sample_ids(args.n, args.temperature, args.seed)
        lines = [" ".join(map(str, row)) for row in seqs.tolist()] if args.ids else model.decode(seqs)
    else:
        gen = _load_generator(args.checkpoint)
        rng = torch.Generator().manual_seed(args.seed)
        lines = [" ".join(map(str, row)) for row in gen.sample(args.n, temperature=args.temperature,
                                                                generator=rng).tolist()]
    out = "".join(line + "\n" for line in lines)
    if args.out:
        _write_output(args.out, out)
    else:
        sys.stdout.write(out)
    return 0


def _parse_oracle(text: str, vocab_size: int, emb_dim: int, hidden_dim: int):
    from .oracle import load_oracle_npz, random_oracle

    if text.lstrip("-").isdigit():
        return random_oracle(int(text), vocab_size, emb_dim, hidden_dim)
    return load_oracle_npz(text)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}  {value:.4f}" if isinstance(value, float) else f"{key:>12}  {value}")


def _cmd_nll_oracle(args: argparse.Namespace) -> int:
    from .metrics.nll import sequence_nll
    from .tokens import read_token_file

    oracle = _parse_oracle(args.oracle, args.vocab_size, args.emb_dim, args.hidden_dim)
    seqs = read_token_file(args.samples, vocab_size=oracle.vocab_size)
    result = {"nll_oracle": sequence_nll(oracle, seqs), "n_sequences": int(seqs.shape[0])}
    _print_result(result, args.json)
    return 0


def _cmd_nll_test(args: argparse.Namespace) -> int:
    from .metrics.nll import sequence_nll
    from .tokens import read_token_file

    gen = _load_generator(args.checkpoint)
    seqs = read_token_file(args.samples, vocab_size=gen.vocab_size)
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

    p = sub.add_parser("eval", help="metrics: nll-oracle, nll-test, bleu, self-bleu, sweep")
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

    from .metrics.cli import register

    register(ev)
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
        print("seqgan-kit: interrupted (a run can be continued with: seqgan-kit train --resume RUN_DIR)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
