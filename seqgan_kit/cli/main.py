"""The ``seqgan-kit`` command line: ``train``, ``sample``, ``eval`` and ``data`` sub-commands.

Every command reports bad input as one line ``seqgan-kit: error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train.runner import check_before_launch, train

    if args.print_config:
        from .recipes import print_config

        print_config(args.recipe, args.set or [], args.resume)
        return 0
    if args.nproc is not None:
        from .launch import launch

        # bad input: no rank starts
        check_before_launch(args.recipe, args.set or [], args.resume, args.nproc, args.run_dir)
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
    fresh_seed = args.seed is None
    if fresh_seed:
        import secrets

        args.seed = secrets.randbelow(2**31)
    chunks = _sample_chunks(args)  # the model is loaded (or refused) here
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
    if fresh_seed:  # after the samples: a failed call still prints one line only
        print(f"seqgan-kit: sampled with seed {args.seed} (add --seed {args.seed} to repeat these samples)",
              file=sys.stderr, flush=True)
    return 0


def _check_dims(args: argparse.Namespace) -> None:
    for flag in ("vocab_size", "emb_dim", "hidden_dim"):
        value = getattr(args, flag)
        if value <= 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {value}")


def _parse_oracle(text: str, vocab_size: int, emb_dim: int, hidden_dim: int):
    from ..models.oracle import load_oracle_npz, random_oracle

    if text.lstrip("-").isdigit():
        from ..config import check_seed
        check_seed("--oracle (a random oracle's seed)", int(text))
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
    """Print a metric's result; a non-finite score is an error, never a number (a damaged model, an impossible
    token)."""
    bad = [key for key, value in result.items() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise UserError(f"{bad[0]} is not finite ({result[bad[0]]}): the model gives some of these sequences no "
                        f"probability, or its weights are damaged")
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}  {value:.4f}" if isinstance(value, float) else f"{key:>12}  {value}")


def _cmd_nll_oracle(args: argparse.Namespace) -> int:
    from ..data.tokens import read_token_file
    from ..metrics.nll import sequence_nll

    _check_dims(args)
    train_len = ORACLE_TRAIN_LEN
    if Path(args.oracle).is_dir():  # a run directory: its own oracle, checked against its checkpoint
        from ..runs.run_oracle import load_run_oracle

        oracle, oracle_cfg = load_run_oracle(args.oracle)
        train_len = oracle_cfg.seq_len
    else:
        oracle = _parse_oracle(args.oracle, args.vocab_size, args.emb_dim, args.hidden_dim)
    seqs = read_token_file(args.samples, vocab_size=oracle.vocab_size)  # ids beyond the oracle's vocab: refused
    seq_len = int(seqs.shape[1])
    if seq_len != train_len:
        print(f"seqgan-kit: warning: {args.samples} has sequences of {seq_len} tokens; the oracle generates "
              f"{train_len} (NLL_oracle is defined over {train_len}), so this score is not "
              f"comparable", file=sys.stderr)
    result = {"nll_oracle": sequence_nll(oracle, seqs), "n_sequences": int(seqs.shape[0]), "seq_len": seq_len}
    _print_result(result, args.json)
    return 0


def _cmd_nll_test(args: argparse.Namespace) -> int:
    from ..data.tokens import read_token_file
    from ..metrics.nll import sequence_nll
    from ..runs.rundir import RunDir

    text_model = None
    if RunDir.holding(Path(args.checkpoint)).is_text_run():  # scored as its evaluations score (pad text: to PAD)
        from ..runs.textmodel import TextModel

        text_model = TextModel.load(args.checkpoint)
        gen = text_model.generator
    else:
        gen = _load_generator(args.checkpoint)
    seqs = read_token_file(args.samples, vocab_size=gen.vocab_size)  # ids checked against the vocabulary
    if seqs.shape[1] > gen.seq_len:
        raise UserError(f"{args.samples} has sequences of {seqs.shape[1]} tokens, longer than the model's seq_len "
                        f"{gen.seq_len}")
    nll = text_model.nll_test(seqs) if text_model is not None else sequence_nll(gen, seqs)
    result = {"nll_test": nll, "n_sequences": int(seqs.shape[0])}
    _print_result(result, args.json)
    return 0


NO_COMPUTE = ("train", "data", "recipes")
"""Commands without a ``--threads`` of the shared kind (``train`` has its own; the others compute nothing)."""


def _add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` on every leaf command that computes (PyTorch's CPU threads; it changes no result)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if parser.prog == "seqgan-kit" and name in NO_COMPUTE:
                    continue
                _add_threads(sub)
            return
    if "--threads" not in parser._option_string_actions:
        parser.add_argument("--threads", type=int, metavar="N",
                            help="CPU threads for PyTorch (default: PyTorch's; 1 is fastest on a busy machine)")


def _set_threads(args: argparse.Namespace) -> None:
    threads = getattr(args, "threads", None)
    if threads is None or args.command in NO_COMPUTE:
        return
    if threads < 0:
        raise UserError(f"--threads must be >= 0 (0 = PyTorch's default), got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="seqgan-kit",
        description="Adversarial text generation: train SeqGAN-style models, sample, and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"seqgan-kit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train from a TOML recipe (or resume a run directory)")
    p.add_argument("recipe", nargs="?", help="a packaged recipe's name (see `seqgan-kit recipes`), e.g. poetry_mle, "
                                             "or a recipe TOML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe key, e.g. --set mle.lr=1e-3 (repeatable)")
    p.add_argument("--run-dir", help="where to write the run (default runs/<name>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for PyTorch (overrides runtime.threads; 1 is fastest on a busy machine)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train with N ranks on this machine (torchrun --standalone --nproc-per-node N; batch "
                        "sizes stay global); several machines: torchrun --nnodes, see the README")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (recipe, parents, card and --set) as TOML and exit")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="sample from a run directory (text runs print detokenized text, one "
                                      "sample per line; synthetic runs print token ids)")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("-n", type=int, default=10, help="number of samples (default 10)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = greedy")
    p.add_argument("--seed", type=int, default=None,
                   help="sampling seed: the same seed gives the same samples (default: a fresh random seed, "
                        "printed to stderr so that the call can be repeated)")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.add_argument("--ids", action="store_true", help="text runs: print token ids instead of text")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("eval", help="metrics: nll-oracle, nll-test, bleu, self-bleu, sweep, distinct, infill, fed, ...")
    ev = p.add_subparsers(dest="metric", metavar="METRIC", required=True)

    q = ev.add_parser("nll-oracle", help="mean per-token NLL of a token-id file under an oracle")
    q.add_argument("--oracle", required=True, metavar="RUN_DIR|ORACLE.npz|SEED",
                   help="a synthetic run directory (its own oracle: the safe choice), oracle weights .npz, or an "
                        "integer seed for a random oracle (must match the recipe's [oracle] seed and sizes)")
    q.add_argument("--samples", required=True, help="file of token-id lines")
    q.add_argument("--vocab-size", type=int, default=5000, help="random oracle only (default 5000)")
    q.add_argument("--emb-dim", type=int, default=32, help="random oracle only (default 32)")
    q.add_argument("--hidden-dim", type=int, default=32, help="random oracle only (default 32)")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=_cmd_nll_oracle)

    q = ev.add_parser("nll-test", help="a checkpoint's mean per-token NLL on a file of sequences (a text run's "
                                        "counts the tokens its evaluations count: through EOS, or the first PAD "
                                        "in pad text)")
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
    from .recipes import register as register_recipes
    register_recipes(sub)
    _add_threads(parser)
    return parser


RESUME_HINT = "a run that wrote a checkpoint can be continued with: seqgan-kit train --resume RUN_DIR"


def _terminated(signum: int, _frame) -> None:
    """SIGTERM unwinds like an error: temporary files are removed and a fresh run without a checkpoint too."""
    print(f"seqgan-kit: terminated ({RESUME_HINT})", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def check_seed_flags(args: argparse.Namespace) -> None:
    """Every ``--seed``-like flag of every command lies in ``[0, 2^63)`` (one line, before any work)."""
    from ..config import check_seed, is_seed_name

    for name, value in vars(args).items():
        if is_seed_name(name) and isinstance(value, int) and not isinstance(value, bool):
            check_seed(f"--{name.replace('_', '-')}", value)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    if "WORLD_SIZE" not in os.environ and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)  # torchrun's ranks keep the default
    try:
        check_seed_flags(args)
        _set_threads(args)
        return int(args.func(args) or 0)
    except UserError as exc:
        if str(exc):  # (empty: the error was already printed, e.g. by a rank of --nproc)
            print(f"seqgan-kit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"seqgan-kit: interrupted ({RESUME_HINT})", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
