import json

import pytest
import torch
from safetensors.torch import save_file

from seqgan_kit.errors import UserError
from seqgan_kit.models.lstm_generator import LSTMGenerator
from seqgan_kit.runs.checkpoint import (
    load_checkpoint,
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_tensors,
    save_checkpoint,
)


def test_round_trip_of_weights_optimizer_and_meta(tmp_path):
    g = LSTMGenerator(20, 4, 6, 5)
    opt = torch.optim.Adam(g.parameters(), lr=0.01)
    loss = g.nll(torch.randint(0, 20, (3, 5)))
    loss.backward()
    opt.step()
    t_opt, groups = optimizer_tensors("g", opt)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {**module_tensors("generator", g), **t_opt}, {"epoch": 3, "groups": groups})
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]  # no temp file left behind

    tensors, meta = load_checkpoint(path)
    assert meta["epoch"] == 3
    g2 = LSTMGenerator(20, 4, 6, 5)
    load_module("generator", g2, tensors, path)
    for a, b in zip(g.parameters(), g2.parameters(), strict=True):
        assert torch.equal(a, b)
    opt2 = torch.optim.Adam(g2.parameters(), lr=0.5)
    load_optimizer("g", opt2, tensors, meta["groups"])
    assert opt2.param_groups[0]["lr"] == 0.01
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for idx in s1:
        assert torch.equal(s1[idx]["exp_avg_sq"], s2[idx]["exp_avg_sq"])
        assert float(s1[idx]["step"]) == float(s2[idx]["step"])


def test_corrupt_truncated_and_foreign_files_are_clear_errors(tmp_path):
    g = LSTMGenerator(20, 4, 6, 5)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, module_tensors("generator", g), {})
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match="not a seqgan-kit checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_weights_of_another_vocabulary_are_refused(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, module_tensors("generator", LSTMGenerator(20, 4, 6, 5)), {})
    tensors, _ = load_checkpoint(path)
    with pytest.raises(UserError, match="another vocabulary"):
        load_module("generator", LSTMGenerator(30, 4, 6, 5), tensors, path)
    with pytest.raises(UserError, match="no discriminator weights"):
        load_module("discriminator", LSTMGenerator(20, 4, 6, 5), tensors, path)


def test_metadata_is_plain_json_in_the_header(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"x": torch.ones(1)}, {"a": [1, 2]})
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert header["__metadata__"]["format"] == "seqgan-kit/checkpoint"
    assert json.loads(header["__metadata__"]["meta"]) == {"a": [1, 2]}
