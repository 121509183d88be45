"""Several ranks on CPU with gloo (2 processes): the same updates as one process, rank 0 alone writes, exact
resume, a killed rank, two "nodes" on localhost, and the bf16 / compile options.

Runs go through ``seqgan-kit train --nproc 2`` (torchrun's launcher) in subprocesses, or through
``torch.multiprocessing.spawn`` where a test must replace a function inside every rank.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from seqgan_kit.cli import main
from seqgan_kit.runs.checkpoint import load_checkpoint

from .test_gumbel import BASE as GUMBEL
from .test_gumbel import KINDS
from .test_maskgan import MASKGAN
from .test_seqgan_train import SEQGAN
from .tiny import RECIPE, TINY

pytestmark = pytest.mark.slow  # end-to-end training runs: outside the fast subset (-m "not slow")

MLE = TINY + ["mle.epochs=3", "runtime.threads=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def cli(*args, timeout=300, **kwargs):
    return subprocess.run([sys.executable, "-m", "seqgan_kit", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, **kwargs)


def weights(run, name="checkpoint.safetensors"):
    """The model and optimizer tensors of a run's checkpoint."""
    return {k: v for k, v in load_file(str(run / name)).items() if k.startswith(("model.", "optim."))}


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mle_runs(tmp_path_factory):
    """The tiny synthetic MLE run with one process and with two ranks."""
    base = tmp_path_factory.mktemp("ddp_mle")
    assert main(["train", RECIPE, "--run-dir", str(base / "one"), *sets(MLE)]) == 0
    two = cli("train", RECIPE, "--run-dir", base / "two", "--nproc", 2, *sets(MLE))
    assert two.returncode == 0, two.stderr
    return base / "one", base / "two", two


def test_two_ranks_train_mle_like_one_process_and_only_rank_0_writes(mle_runs):
    one, two, proc = mle_runs
    assert max_diff(weights(one), weights(two)) < 1e-5
    assert weights(one).keys() == weights(two).keys()  # DDP leaves no trace in the checkpoint's names
    a, b = records(one), records(two)
    assert len(a) == len(b) == 4  # rank 1 wrote no record of its own
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "nll_test"):  # nll_oracle: other samples (each rank's own), see below
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], abs=1e-4)
    assert proc.stdout.count("[pretrain_g] epoch 3/3") == 1  # one summary line per epoch, from rank 0
    assert json.loads((two / "run.json").read_text())["world_size"] == 2
    tensors, meta = load_checkpoint(two / "checkpoint.safetensors")
    assert meta["world_size"] == 2
    assert not torch.equal(tensors["rng.rank.0.cpu"], tensors["rng.rank.1.cpu"])  # each rank's own stream


def test_two_nodes_on_localhost_train_like_one_process(mle_runs, tmp_path):
    """Two torchrun launches with --nnodes 2 meet at one rendezvous endpoint, as two machines would."""
    one, _, _ = mle_runs
    run, port = tmp_path / "two_nodes", free_port()
    launches = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
         "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-id", "seqgan-kit-test", "-m", "seqgan_kit", "train", RECIPE, "--run-dir", str(run), *sets(MLE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for node in (0, 1)]
    outputs = [p.communicate(timeout=300) for p in launches]
    assert [p.returncode for p in launches] == [0, 0], outputs
    assert max_diff(weights(one), weights(run)) < 1e-5
    assert json.loads((run / "run.json").read_text())["world_size"] == 2


def _torchrun_env(rank, world, port):
    """The environment torchrun gives rank ``rank`` of ``world`` on this machine."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def _evaluate_rank(rank, world, port, corpus, workdir, out):
    """Evaluate one synthetic and one text task on ``world`` ranks, each with the stream seeded by its rank."""
    _torchrun_env(rank, world, port)
    torch.set_num_threads(1)
    from seqgan_kit.distributed import Ranks

    ranks, _ = Ranks.from_env(torch.device("cpu"), 120)
    synthetic, text, generators = _tasks(corpus, workdir)
    results = [task.evaluate(gen, torch.Generator().manual_seed(rank), ranks)
               for task, gen in zip((synthetic, text), generators, strict=True)]
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    ranks.close()


def _tasks(corpus, workdir):
    from seqgan_kit.data.data_config import DataConfig
    from seqgan_kit.models.lstm_generator import LSTMGenerator
    from seqgan_kit.tasks.evaluation import EvalConfig
    from seqgan_kit.tasks.synthetic import OracleConfig, SyntheticTask
    from seqgan_kit.tasks.text import TextTask

    evals = EvalConfig(n_samples=101, batch_size=32, bleu_samples=37, bleu_references=50)
    synthetic = SyntheticTask(OracleConfig(vocab_size=30, emb_dim=8, hidden_dim=8, seq_len=7, n_train=16, n_test=53),
                              evals, data_seed=0, device=torch.device("cpu"))
    text = TextTask(DataConfig(name="toy", dir=str(corpus), tokenizer="whitespace", max_tokens=12, bleu_orders=[2, 3]),
                    evals, Path(workdir), torch.device("cpu"), seed=0)
    torch.manual_seed(0)
    generators = (LSTMGenerator(vocab_size=30, emb_dim=8, hidden_dim=8, seq_len=7),
                  LSTMGenerator(vocab_size=text.vocab_size, emb_dim=8, hidden_dim=8, seq_len=text.seq_len,
                                **text.special_tokens()))
    return synthetic, text, generators


def test_evaluation_split_over_two_ranks_equals_one_process_on_the_same_samples(tmp_path, one_thread):
    """Each rank samples its share with its own stream; the gathered metrics equal one process scoring exactly
    those samples (rank 0's 51 + rank 1's 50 for NLL_oracle, 19 + 18 for BLEU) and the whole test set."""
    from seqgan_kit.metrics.bleu import self_bleu
    from seqgan_kit.metrics.nll import sequence_nll

    corpus = _toy_corpus(tmp_path / "corpus")
    out = tmp_path / "out.json"
    mp.spawn(_evaluate_rank, args=(2, free_port(), str(corpus), str(tmp_path / "work"), str(out)), nprocs=2)
    got_synthetic, got_text = json.loads(out.read_text())
    synthetic, text, (gen, text_gen) = _tasks(corpus, tmp_path / "work")
    samples = torch.cat([gen.sample(n, generator=torch.Generator().manual_seed(r), batch_size=32)
                         for r, n in ((0, 51), (1, 50))])
    assert got_synthetic["nll_oracle"] == pytest.approx(sequence_nll(synthetic.oracle, samples), rel=1e-9)
    assert got_synthetic["nll_test"] == pytest.approx(sequence_nll(gen, synthetic.test), rel=1e-9)
    seqs = torch.cat([text_gen.sample(n, generator=torch.Generator().manual_seed(r), batch_size=32)
                      for r, n in ((0, 19), (1, 18))])
    hyps = text.eval_tokens(text.data.decode(seqs))
    assert got_text["nll_test"] == pytest.approx(sequence_nll(text_gen, text.test), rel=1e-9)
    assert got_text["bleu3"] == pytest.approx(float(text.references().score(hyps, (2, 3), False)[3]), rel=1e-9)
    assert got_text["self_bleu2"] == pytest.approx(float(self_bleu(hyps, orders=[2, 3])[2]), rel=1e-9)
    one = text.evaluate(text_gen, torch.Generator().manual_seed(0))  # one process: 37 samples from one stream
    assert one["bleu2"] != got_text["bleu2"]


def _final_reward(policy, reward_fn, seqs, num_rollouts, max_batch=None):
    """A rollout without randomness: every position gets D's score of the whole sequence."""
    return reward_fn(seqs)[:, None].expand(-1, seqs.shape[1]).clone()


def _seqgan_rank(rank, world, port, run_dir, overrides):
    _torchrun_env(rank, world, port)
    import seqgan_kit.train.seqgan as seqgan

    seqgan.rollout_rewards = _final_reward
    from seqgan_kit.train.runner import train

    train(RECIPE, overrides, run_dir=run_dir)


def test_seqgan_iterations_on_two_ranks_equal_one_process(tmp_path, monkeypatch):
    """Policy gradient (with the global per-position baseline) and discriminator rounds, 2 ranks vs 1.

    Rollouts and dropout draw from each rank's own stream, so they are replaced here by a deterministic
    reward and switched off; everything else (shared batches, negatives, sharding, loss scaling, DDP) runs.
    """
    import seqgan_kit.train.seqgan as seqgan

    overrides = SEQGAN + ["discriminator.dropout_keep=1.0", "seqgan.baseline=true", "seqgan.iterations=2",
                          "runtime.threads=1"]
    monkeypatch.setattr(seqgan, "rollout_rewards", _final_reward)
    from seqgan_kit.train.runner import train

    train(RECIPE, overrides, run_dir=str(tmp_path / "one"))
    mp.spawn(_seqgan_rank, args=(2, free_port(), str(tmp_path / "two"), overrides), nprocs=2)
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max_diff(one, two) < 1e-5
    gen_one = load_file(str(tmp_path / "one" / "generator_mle.safetensors"))
    assert any(not torch.equal(gen_one[k], one[k]) for k in gen_one)  # the adversarial phase moved the generator
    last_one, last_two = records(tmp_path / "one")[-1], records(tmp_path / "two")[-1]
    for key in ("g_loss_per_token", "mean_reward", "d_loss", "d_accuracy"):
        assert last_two[key] == pytest.approx(last_one[key], rel=1e-4, abs=1e-5)


def _children(pid):
    """Every descendant process id of ``pid`` (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        out += kids
        frontier += kids
    return out


def _rank_pid(launcher, rank):
    for pid in _children(launcher):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"seqgan_kit" in cmdline and b"torch.distributed.run" not in cmdline:
                return pid
    return None


LONG_SEQGAN = SEQGAN + ["seqgan.iterations=8", "runtime.threads=1"]


def test_a_killed_rank_stops_the_run_with_one_line_and_resume_is_exact(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = cli("train", RECIPE, "--run-dir", full, "--nproc", 2, *sets(LONG_SEQGAN))
    assert done.returncode == 0, done.stderr

    launcher = subprocess.Popen([sys.executable, "-m", "seqgan_kit", "train", RECIPE, "--run-dir", str(killed),
                                 "--nproc", "2", *sets(LONG_SEQGAN)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait for a checkpoint inside the adversarial phase
        if (killed / "checkpoint.safetensors").exists():
            meta = load_checkpoint(killed / "checkpoint.safetensors")[1]
            if meta["phase"] == "adversarial" and meta["units_done"] >= 2:
                break
        time.sleep(0.2)
    victim = _rank_pid(launcher.pid, 1)
    assert victim is not None and launcher.poll() is None, "the run ended before a rank could be killed"
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    _, err = launcher.communicate(timeout=120)
    assert time.time() - killed_at < 60  # the other rank does not hang
    assert launcher.returncode != 0
    errors = [line for line in err.splitlines() if line.startswith("seqgan-kit: error:")]
    assert errors and "ranks failed" in errors[-1] and "--resume" in errors[-1]
    assert "rank 1 was killed by signal 9" in errors[-1], errors  # the rank that died, not one torchrun stopped
    meta = load_checkpoint(killed / "checkpoint.safetensors")[1]  # the last checkpoint is complete
    assert meta["phase"] in ("adversarial",) and meta["units_done"] < 8

    resumed = cli("train", "--resume", killed, "--nproc", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(killed.glob(".*.tmp*"))  # a write the kill interrupted left nothing behind
    assert max_diff(weights(full), weights(killed)) == 0.0  # bitwise: every rank's stream was restored
    assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records(killed)] == \
        [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records(full)]


def test_a_two_rank_checkpoint_resumes_with_one_rank(tmp_path, capsys):
    run = tmp_path / "run"
    first = cli("train", RECIPE, "--run-dir", run, "--nproc", 2, *sets(SEQGAN + ["seqgan.iterations=1"]))
    assert first.returncode == 0, first.stderr
    assert main(["train", "--resume", str(run), "--set", "seqgan.iterations=2"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint of 2 rank(s) with 1" in out
    assert records(run)[-1]["step"] == 2


@pytest.mark.parametrize("name, overrides", [
    ("gumbel", GUMBEL + KINDS["rmc"]),
    ("maskgan", MASKGAN + ["maskgan.is_present_rate=0.5", "runtime.threads=1"]),
])
def test_gumbel_and_maskgan_train_on_two_ranks(name, overrides, tmp_path):
    """Their relaxed samples and fills are per rank, so these runs equal one process in distribution only:
    check that they run, log finite metrics once, and move the generator."""
    run = tmp_path / name
    proc = cli("train", RECIPE, "--run-dir", run, "--nproc", 2, *sets(overrides))
    assert proc.returncode == 0, proc.stderr
    recs = records(run)
    assert all(torch.isfinite(torch.tensor(v)) for r in recs for v in r.values() if isinstance(v, float))
    final = load_file(str(run / "generator.safetensors"))
    mle = load_file(str(run / "generator_mle.safetensors"))
    assert any(not torch.equal(final[k], mle[k]) for k in mle)


def _toy_corpus(folder: Path) -> Path:
    """Paragraphs of 2-4 sentences of 2-9 words: variable lengths, so padding and token counts matter."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(30)]

    def paragraph():
        return " ".join("W " + " ".join(rng.choices(words, k=rng.randint(1, 8))) + "."
                        for _ in range(rng.randint(3, 4)))

    folder.mkdir()
    (folder / "train.txt").write_text("\n".join(paragraph() for _ in range(120)) + "\n")
    (folder / "test.txt").write_text("\n".join(paragraph() for _ in range(20)) + "\n")
    return folder


TEXT_RECIPE = """
name = "toy"
task = "text"
algorithm = "{algorithm}"
seed = 5
device = "cpu"
[runtime]
threads = 1
[data]
name = "toy"
dir = "{dir}"
tokenizer = "whitespace"
segment = "{segment}"
neighbours = "sentences"
max_tokens = 12
{generator}[mle]
epochs = 2
batch_size = 13
eval_every = 1
checkpoint_every = 1
[eval]
n_samples = 32
bleu_samples = 16
bleu_references = 16
"""
GENERATOR = """[generator]
emb_dim = 8
hidden_dim = 8
"""
SKIPTHOUGHT = """
[skipthought]
emb_dim = 8
dim = 8
epochs = 2
batch_size = 13
"""


@pytest.mark.parametrize("algorithm, segment", [("mle", "sentence"), ("skipthought", "line")])
def test_variable_length_text_on_two_ranks_equals_one_process(algorithm, segment, tmp_path):
    """Text MLE and Skip-Thought: a rank's loss is its share of the global per-token mean (odd batch of 13)."""
    corpus = _toy_corpus(tmp_path / "corpus")
    recipe = tmp_path / "toy.toml"
    skipthought = algorithm == "skipthought"  # builds no generator: a [generator] table is refused
    recipe.write_text(TEXT_RECIPE.format(algorithm=algorithm, dir=corpus, segment=segment,
                                         generator="" if skipthought else GENERATOR)
                      + (SKIPTHOUGHT if skipthought else ""))
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "one")]) == 0
    two = cli("train", recipe, "--run-dir", tmp_path / "two", "--nproc", 2)
    assert two.returncode == 0, two.stderr
    assert max_diff(weights(tmp_path / "one"), weights(tmp_path / "two")) < 1e-5
    assert records(tmp_path / "two")[-1]["train_loss"] == pytest.approx(records(tmp_path / "one")[-1]["train_loss"],
                                                                       rel=1e-5)


def test_bad_splits_are_refused_before_any_rank_starts(tmp_path, capsys):
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "r"), "--nproc", "3",
                 *sets(TINY + ["mle.batch_size=2"])]) == 2
    assert "mle.batch_size = 2 is a global batch and cannot be split over 3 ranks" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["train", RECIPE, "--nproc", "0"]) == 2
    assert "--nproc must be >= 1" in capsys.readouterr().err


def test_word2vec_refuses_several_ranks(tmp_path, capsys):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "poetry_word2vec.toml"
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "w"), "--nproc", "2",
                 "--set", f"data.dir={tmp_path}"]) == 2
    assert "runs in one process" in capsys.readouterr().err


@pytest.mark.parametrize("name, overrides", [
    ("seqgan", SEQGAN),
    ("gumbel", GUMBEL + KINDS["rmc"]),
])
def test_bf16_autocast_trains_with_finite_numbers_and_fp32_metrics(name, overrides, tmp_path, one_thread):
    run = tmp_path / name
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(overrides + ["runtime.precision=bf16"])]) == 0
    recs = records(run)
    assert all(torch.isfinite(torch.tensor(v)) for r in recs for v in r.values() if isinstance(v, float))
    # NLL metrics stay float32: not rounded to bfloat16's 8 significant bits
    assert any(torch.tensor(r["nll_test"]).to(torch.bfloat16).item() != r["nll_test"] for r in recs)
    weights_ = load_file(str(run / "generator.safetensors"))
    assert all(t.dtype == torch.float32 for t in weights_.values())


def test_bf16_rollout_gives_finite_rewards_of_the_right_shape(one_thread):
    from seqgan_kit.models.discriminator import CNNDiscriminator
    from seqgan_kit.models.lstm_generator import LSTMGenerator
    from seqgan_kit.rl.rollout import rollout_rewards

    gen = LSTMGenerator(vocab_size=30, emb_dim=8, hidden_dim=8, seq_len=7)
    disc = CNNDiscriminator(vocab_size=30, seq_len=7, emb_dim=8, filter_sizes=[2, 3], num_filters=[4, 4])
    seqs = gen.sample(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rewards = rollout_rewards(gen, disc.prob_real, seqs, 3)
    assert rewards.shape == (5, 7) and torch.isfinite(rewards).all()
    assert ((rewards >= 0) & (rewards <= 1)).all()


def test_compile_option_trains_a_tiny_model(tmp_path):
    run = tmp_path / "compiled"
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(TINY + ["mle.epochs=1", "runtime.compile=true",
                                                                      "runtime.threads=1"])]) == 0
    plain = tmp_path / "plain"
    assert main(["train", RECIPE, "--run-dir", str(plain), *sets(TINY + ["mle.epochs=1", "runtime.threads=1"])]) == 0
    assert max_diff(weights(run), weights(plain)) < 1e-5
