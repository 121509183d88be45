"""The shared ``[init]`` table: start a run from other runs' weights, whatever the algorithm.

- ``generator``: a checkpoint file or run directory whose generator replaces MLE pretraining (e.g. a finished
  MLE run's ``generator_mle_best.safetensors``; MaskGAN takes it into the language model its in-filler wraps).
- ``discriminator``: a checkpoint whose discriminator replaces discriminator pretraining.
- ``embeddings``: a checkpoint whose generator embedding table initialises the embedding rows of every model
  of this run whose embedding width matches (by token id for the same vocabulary, else by token string, with
  the misses counted and printed); or a word2vec run directory (``algorithm = "word2vec"``), whose vectors
  initialise those rows by token string (tokens without a vector, e.g. below word2vec's ``min_count``, are
  counted and printed).

Weights are applied once, when a run starts; a resumed run takes everything from its own checkpoint. Text runs
check the vocabulary here, in one place: a checkpoint of another vocabulary is refused (except for
``embeddings``, which map by token string). A text run that starts from another run's generator (or
discriminator) copies that run's ``tokenizer/`` folder first, so both use the same token ids.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..data.tokenization import Vocab
from ..errors import UserError
from ..runs.checkpoint import load_checkpoint, load_module
from ..runs.rundir import CHECKPOINT
from ..tasks.text import TOKENIZER_DIR

if TYPE_CHECKING:
    from .experiment import Experiment

@dataclass
class InitConfig:
    """The ``[init]`` table (see the module docstring). Empty strings: train from scratch."""

    generator: str = ""
    discriminator: str = ""
    embeddings: str = ""


def checkpoint_file(spec: str) -> Path:
    """A checkpoint path from ``spec``: the file itself, or a run directory's latest checkpoint."""
    path = Path(spec).expanduser()
    return path / CHECKPOINT if path.is_dir() else path


def reuse_vocabulary(init: InitConfig, workdir: Path) -> None:
    """Copy the ``tokenizer/`` folder of the run the generator (or discriminator) comes from into ``workdir``.

    Nothing happens when ``workdir`` exists (a resumed run) or the source has no such folder (the vocabulary
    check then decides).
    """
    spec = init.generator or init.discriminator
    if not spec or workdir.exists():
        return
    source = checkpoint_file(spec).parent / TOKENIZER_DIR
    if not source.is_dir():
        return
    try:
        shutil.copytree(source, workdir)
    except OSError as exc:
        raise UserError(f"cannot copy the vocabulary of {source} into {workdir}: {exc.strerror or exc}") from None


def _check_vocab(exp: Experiment, meta: dict[str, Any], path: Path, what: str) -> None:
    ours = exp.vocab_meta().get("vocab")
    theirs = meta.get("vocab")
    if ours and not theirs:
        raise UserError(f"{path}: its {what} was not trained on text (no vocabulary recorded); this run needs "
                        f"weights trained on {ours['corpus']!r}")
    if not ours and theirs:
        raise UserError(f"{path}: its {what} was trained on text ({theirs.get('corpus')!r}); this run is synthetic")
    if ours and theirs["fingerprint"] != ours["fingerprint"]:
        raise UserError(f"{path}: its {what} was trained with another vocabulary (corpus "
                        f"{theirs.get('corpus')!r}, {theirs.get('size')} tokens) than this run's "
                        f"({ours['corpus']!r}, {ours['size']} tokens)")


def load_weights(exp: Experiment, spec: str, name: str) -> None:
    """Load the ``name`` weights of the checkpoint ``spec`` into ``exp.modules[name]`` (vocabulary checked).

    A model that wraps the pretraining language model (``pretrained_lm``, e.g. MaskGAN's in-filler) takes a
    plain language model's weights (an MLE run's generator) into that wrapped LM, and its own kind's whole.
    """
    path = checkpoint_file(spec)
    tensors, meta = load_checkpoint(path)
    _check_vocab(exp, meta, path, name)
    module = exp.modules[name]
    inner = getattr(module, "pretrained_lm", None)
    if inner is not None and not any(k.startswith(f"model.{name}.lm.") for k in tensors):
        module = inner
    load_module(name, module, tensors, path)


def _source_vocab(path: Path) -> Vocab | None:
    vocab_file = path.parent / TOKENIZER_DIR / "vocab.json"
    return Vocab.load(vocab_file) if vocab_file.is_file() else None


def _load_word2vec_embeddings(exp: Experiment, folder: Path) -> None:
    """Copy the vectors of the word2vec run ``folder`` into every model embedding of their width, by token."""
    from ..encoders.word2vec import WordVectors

    vectors = WordVectors.load(folder)
    targets = {name: m.embedding for name, m in exp.modules.items()
               if isinstance(getattr(m, "embedding", None), nn.Embedding)}
    matching = {n: e for n, e in targets.items() if e.embedding_dim == vectors.dim}
    if not matching:
        widths = ", ".join(f"{n} {e.embedding_dim}" for n, e in targets.items()) or "none"
        raise UserError(f"init.embeddings: the word2vec run {folder} has vectors of width {vectors.dim}, but no "
                        f"model of this run has that width (embedding widths: {widths})")
    ours = getattr(exp.task, "vocab", None)
    if ours is None:
        raise UserError(f"init.embeddings: {folder} holds word vectors; this run is synthetic (no tokens)")
    same = vectors.meta.get("vocab_fingerprint") == ours.fingerprint
    rows = torch.tensor([vectors.index.get(tok, -1) for tok in ours.tokens], dtype=torch.long)  # [V]
    source = torch.from_numpy(vectors.vectors)
    keep = rows >= 0  # [V] tokens with a vector
    how = "same vocabulary" if same else f"another vocabulary (corpus {vectors.meta.get('corpus')!r}), by token"
    for name, emb in matching.items():
        with torch.no_grad():
            emb.weight[keep] = source[rows[keep]].to(emb.weight)
            if emb.padding_idx is not None:
                emb.weight[emb.padding_idx] = 0.0
        print(f"init: {name} embedding <- word2vec {folder} ({how}: {int(keep.sum())} rows, "
              f"{int((~keep).sum())} tokens without a vector)", flush=True)


def load_embeddings(exp: Experiment, spec: str) -> None:
    """Copy the generator embedding of checkpoint ``spec`` (or the vectors of a word2vec run directory) into
    every model embedding of the same width."""
    from ..encoders.word2vec import VECTORS_FILE

    folder = Path(spec).expanduser()
    if folder.is_dir() and (folder / VECTORS_FILE).is_file():
        _load_word2vec_embeddings(exp, folder)
        return
    path = checkpoint_file(spec)
    tensors, meta = load_checkpoint(path)
    source = tensors.get("model.generator.embedding.weight")
    if source is None:
        raise UserError(f"{path}: holds no generator embedding to initialise from")
    targets = {name: m.embedding for name, m in exp.modules.items()
               if isinstance(getattr(m, "embedding", None), nn.Embedding)}
    matching = {n: e for n, e in targets.items() if e.embedding_dim == source.shape[1]}
    if not matching:
        widths = ", ".join(f"{n} {e.embedding_dim}" for n, e in targets.items()) or "none"
        raise UserError(f"init.embeddings: {path} has embeddings of width {source.shape[1]}, but no model of this "
                        f"run has that width (embedding widths: {widths})")
    rows, misses = _map_rows(exp, meta, path, source)
    for name, emb in matching.items():
        with torch.no_grad():
            keep = rows >= 0  # [V] rows that have a source vector
            emb.weight[keep] = source[rows[keep]].to(emb.weight)
            if emb.padding_idx is not None:
                emb.weight[emb.padding_idx] = 0.0
        print(f"init: {name} embedding <- {path} ({int(keep.sum())} rows, {misses} tokens without a vector)",
              flush=True)


def _map_rows(exp: Experiment, meta: dict[str, Any], path: Path, source: torch.Tensor) -> tuple[torch.Tensor, int]:
    """For each of this run's token ids, the source row holding its vector (-1: none), and the miss count."""
    ours = getattr(exp.task, "vocab", None)
    theirs = meta.get("vocab")
    if ours is None or theirs is None or theirs.get("fingerprint") == ours.fingerprint:
        if source.shape[0] != exp.task.vocab_size:
            raise UserError(f"init.embeddings: {path} has {source.shape[0]} embedding rows, this run's vocabulary "
                            f"has {exp.task.vocab_size}")
        return torch.arange(source.shape[0]), 0
    their_vocab = _source_vocab(path)
    if their_vocab is None:
        raise UserError(f"init.embeddings: {path} has another vocabulary and no tokenizer/vocab.json beside it to "
                        f"map tokens by string")
    index = {tok: i for i, tok in enumerate(their_vocab.tokens)}
    rows = torch.tensor([index.get(tok, -1) for tok in ours.tokens], dtype=torch.long)
    return rows, int((rows < 0).sum())


def apply_init(exp: Experiment) -> None:
    """Apply ``[init]`` to a fresh run's models (after every module is built)."""
    init = exp.cfg.init
    if init.generator:
        load_weights(exp, init.generator, "generator")
    if init.discriminator:
        if "discriminator" not in exp.modules:
            raise UserError(f"init.discriminator: algorithm {exp.cfg.algorithm!r} has no discriminator")
        load_weights(exp, init.discriminator, "discriminator")
    if init.embeddings:
        load_embeddings(exp, init.embeddings)
