"""The target-LSTM oracle of the synthetic experiment.

The oracle is an LSTM language model with the generator's architecture. It plays the "real data" source: its
samples are the training set, and it scores generated samples (NLL_oracle). Kinds (``oracle.kind``):

- ``seqgan`` (default): :func:`load_oracle_npz`, the SeqGAN reference weights (``seqgan_target_params.npz``,
  keys ``p00``-``p14``) when ``oracle.weights`` is set; else :func:`random_oracle`, every parameter ~ N(0, 1)
  drawn in one stream from a seed (the SeqGAN paper's construction; nothing to download).
- ``texygen``: :func:`texygen_oracle`, the ``OracleLstm`` that RelGAN (``utils/models/OracleLstm.py``, Texygen's
  class) builds: every tensor ~ N(0, 1) from its own TensorFlow op seed. Here each tensor is drawn from its own
  stream, seeded by ``oracle.seed`` and that tensor's op seed in the reference, so two tensors the reference
  gives the same op seed get the same values, as in TensorFlow: ``Wi`` and ``Uc`` share op seed 111, so with
  ``emb_dim == hidden_dim`` (32 and 32) the input gate's input matrix equals the cell candidate's recurrent
  matrix. The values are not TensorFlow's (its Philox stream is not reproduced); the distribution, the sizes
  and that tie are. (Texygen's own repository has at one commit N(0, 10^6) cell weights; RelGAN's copy, the
  one behind its oracle numbers, has N(0, 1), which is what this builds.)

Cell equations of the reference (row-vector convention, gates not fused, no forget-bias offset)::

    i = sigmoid(x Wi + h Ui + bi); f = sigmoid(x Wf + h Uf + bf); o = sigmoid(x Wog + h Uog + bog)
    g = tanh(x Wc + h Uc + bc);    c = f * c + i * g;             h = o * tanh(c);  logits = h Wo + bo

which is exactly ``torch.nn.LSTM`` with gates stacked in PyTorch order (i, f, g, o) and transposed weights.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .lstm_generator import LSTMGenerator

# Key -> (role, shape builder) of the reference npz; E = emb_dim, H = hidden_dim, V = vocab_size.
_NPZ_KEYS = [f"p{i:02d}" for i in range(15)]


def _freeze(model: LSTMGenerator) -> LSTMGenerator:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def random_oracle(
    seed: int,
    vocab_size: int = 5000,
    emb_dim: int = 32,
    hidden_dim: int = 32,
    seq_len: int = 20,
    start_token: int = 0,
) -> LSTMGenerator:
    """An oracle whose parameters are all i.i.d. N(0, 1), drawn from ``seed`` (same seed, same oracle)."""
    gen = torch.Generator().manual_seed(seed)
    model = LSTMGenerator(vocab_size, emb_dim, hidden_dim, seq_len, start_token, init_std=1.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "lstm.bias_hh_l0":
                p.zero_()  # one gate bias, as in the reference cell
            else:
                p.copy_(torch.randn(p.shape, generator=gen))
    return _freeze(model)


def load_oracle_npz(path: str | Path, seq_len: int = 20, start_token: int = 0) -> LSTMGenerator:
    """Load the SeqGAN reference oracle from an ``.npz`` with keys ``p00``-``p14`` (see module docstring).

    Sizes are read from the file (reference: V=5000, E=32, H=32). Shapes are validated with a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"oracle weights not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read oracle weights {path}: not a valid .npz file ({exc})") from None
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    if missing:
        raise UserError(f"oracle weights {path}: missing keys {', '.join(missing)} (expected p00-p14)")
    emb = arrays["p00"]
    if emb.ndim != 2:
        raise UserError(f"oracle weights {path}: p00 (embedding) must be 2-D [vocab, emb], got {emb.shape}")
    V, E = emb.shape
    H = arrays["p02"].shape[0] if arrays["p02"].ndim == 2 else -1
    expected = {"p00": (V, E), "p13": (H, V), "p14": (V,)}
    for gate in range(4):  # (W, U, b) for the i, f, o, c gates at p01.., p04.., p07.., p10..
        w, u, b = (f"p{1 + 3 * gate + j:02d}" for j in range(3))
        expected.update({w: (E, H), u: (H, H), b: (H,)})
    for key, shape in expected.items():
        if tuple(arrays[key].shape) != shape:
            raise UserError(
                f"oracle weights {path}: {key} has shape {tuple(arrays[key].shape)}, expected {shape} "
                f"(vocab {V}, emb {E}, hidden {H})"
            )
    if not 0 <= start_token < V:
        raise UserError(f"oracle start token {start_token} outside its vocabulary of size {V}")
    t = {k: torch.from_numpy(np.asarray(a, dtype=np.float32)) for k, a in arrays.items()}
    return _from_reference(t, seq_len, start_token)


def _from_reference(t: dict[str, torch.Tensor], seq_len: int, start_token: int) -> LSTMGenerator:
    """The frozen LSTM of the reference tensors ``t`` (keys ``p00``-``p14``, row-vector convention, see above)."""
    (V, E), H = t["p00"].shape, t["p02"].shape[0]
    model = LSTMGenerator(V, E, H, seq_len, start_token)
    # Reference gate order i (p01-03), f (p04-06), o (p07-09), c (p10-12) -> PyTorch order i, f, g, o.
    order = [(1, 2, 3), (4, 5, 6), (10, 11, 12), (7, 8, 9)]
    with torch.no_grad():
        model.embedding.weight.copy_(t["p00"])
        model.lstm.weight_ih_l0.copy_(torch.cat([t[f"p{w:02d}"].T for w, _, _ in order]))  # [4H, E]
        model.lstm.weight_hh_l0.copy_(torch.cat([t[f"p{u:02d}"].T for _, u, _ in order]))  # [4H, H]
        model.lstm.bias_ih_l0.copy_(torch.cat([t[f"p{b:02d}"] for _, _, b in order]))  # [4H]
        model.lstm.bias_hh_l0.zero_()
        model.proj.weight.copy_(t["p13"].T)  # [V, H]
        model.proj.bias.copy_(t["p14"])
    return _freeze(model)


ORACLE_KINDS = ("seqgan", "texygen")

# The reference's tensors in SeqGAN's key order (p00-p14) with their op seeds in RelGAN's OracleLstm.py: the
# embedding, (W, U, b) of the input, forget, output gates and the cell candidate, then the output layer.
_TEXYGEN_OP_SEEDS = (123314154, 111, 211, 311, 114, 115, 116, 997, 998, 999, 110, 111, 112, 12341, 56865246)


def texygen_oracle(
    seed: int,
    vocab_size: int = 5000,
    emb_dim: int = 32,
    hidden_dim: int = 32,
    seq_len: int = 20,
    start_token: int = 0,
) -> LSTMGenerator:
    """RelGAN's (Texygen's) ``OracleLstm``: every tensor ~ N(0, 1) from its own stream ``(seed, op seed)``."""
    V, E, H = vocab_size, emb_dim, hidden_dim
    shapes = [(V, E)] + [(E, H), (H, H), (H,)] * 4 + [(H, V), (V,)]  # p00 .. p14
    t = {}
    for i, (shape, op_seed) in enumerate(zip(shapes, _TEXYGEN_OP_SEEDS, strict=True)):
        stream = torch.Generator().manual_seed((seed * 1_000_000_007 + op_seed) % 2**63)
        t[f"p{i:02d}"] = torch.randn(shape, generator=stream)
    return _from_reference(t, seq_len, start_token)


def build_oracle(
    weights: str,
    seed: int,
    vocab_size: int,
    emb_dim: int,
    hidden_dim: int,
    seq_len: int,
    start_token: int,
    kind: str = "seqgan",
) -> LSTMGenerator:
    """The oracle a recipe asks for: ``texygen``: :func:`texygen_oracle` of ``seed``; ``seqgan``: the ``.npz`` at
    ``weights`` if given, else the random oracle of ``seed``."""
    if kind == "texygen":
        if weights:
            raise UserError("oracle.kind = 'texygen' is built from oracle.seed: leave oracle.weights empty")
        return texygen_oracle(seed, vocab_size, emb_dim, hidden_dim, seq_len, start_token)
    if kind != "seqgan":
        raise UserError(f"oracle.kind must be one of {', '.join(ORACLE_KINDS)}, got {kind!r}")
    if weights:
        return load_oracle_npz(weights, seq_len=seq_len, start_token=start_token)
    return random_oracle(seed, vocab_size, emb_dim, hidden_dim, seq_len, start_token)
