"""Count the multiply-accumulates of a SeqGAN recipe's whole schedule, phase by phase (arithmetic, no run).

    python eval/flops_seqgan.py recipes/synthetic_seqgan.toml [--cpu-gmacs 10]

Counts only the matrix work (LSTM cells, vocabulary projections, convolutions, highway and output layers);
a training step counts as 3x its forward pass (forward + two backward matmuls). FLOPs = 2 x MACs.
"""

from __future__ import annotations

import argparse

from seqgan_kit.train.recipe import load_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe")
    ap.add_argument("--cpu-gmacs", type=float, default=10.0,
                    help="sustained GMAC/s to convert to hours (measured here: ~9-13 per core)")
    args = ap.parse_args()
    cfg = load_recipe(args.recipe)
    o, g, d, s, m = cfg.oracle, cfg.generator, cfg.discriminator, cfg.seqgan, cfg.mle
    V, T = o.vocab_size, o.seq_len
    gen_step = 4 * g.hidden_dim * (g.emb_dim + g.hidden_dim) + g.hidden_dim * V  # one token: LSTM cell + proj
    oracle_step = 4 * o.hidden_dim * (o.emb_dim + o.hidden_dim) + o.hidden_dim * V
    feats = sum(d.num_filters)
    conv = sum(k * d.emb_dim * c * (T - k + 1) for k, c in zip(d.filter_sizes, d.num_filters, strict=True))
    d_fwd = conv + feats * 2 * feats + feats * 2  # convolutions + fused highway (D -> 2D) + output
    n_eval_mle = m.epochs // m.eval_every + 2
    n_eval_adv = s.iterations // s.eval_every + 2
    evals = (n_eval_mle + n_eval_adv) * T * (cfg.eval.n_samples * (gen_step + oracle_step) + o.n_test * gen_step)
    d_seqs = o.n_train + s.n_negative  # positives + negatives per discriminator epoch
    rows = {
        "MLE pretraining": m.epochs * o.n_train * T * 3 * gen_step,
        "D pretraining (training)": s.d_pretrain_rounds * s.d_pretrain_epochs * d_seqs * 3 * d_fwd,
        "D pretraining (sampling negatives)": s.d_pretrain_rounds * s.n_negative * T * gen_step,
        "adversarial D training": s.iterations * s.d_steps * s.d_epochs * d_seqs * 3 * d_fwd,
        "adversarial negatives": s.iterations * s.d_steps * s.n_negative * T * gen_step,
        "rollout sampling (N·B·T(T−1)/2 steps)": s.iterations * s.g_steps * s.num_rollouts * s.g_batch_size
        * T * (T - 1) // 2 * gen_step,
        "rollout D scoring": s.iterations * s.g_steps * s.num_rollouts * s.g_batch_size * (T - 1) * d_fwd,
        "policy-gradient updates": s.iterations * s.g_steps * s.g_batch_size * T * 3 * gen_step,
        "NLL_oracle / NLL_test evaluations": evals,
    }
    total = sum(rows.values())
    print(f"recipe {args.recipe}: generator step {gen_step:,} MAC, discriminator forward {d_fwd:,} MAC/sequence")
    print("| part | MACs | PFLOP | share |\n|---|---:|---:|---:|")
    for name, macs in rows.items():
        print(f"| {name} | {macs:.3e} | {2 * macs / 1e15:.3f} | {100 * macs / total:.1f}% |")
    print(f"| **total** | {total:.3e} | {2 * total / 1e15:.3f} | 100% |")
    print(f"\nat {args.cpu_gmacs:g} GMAC/s sustained: {total / args.cpu_gmacs / 1e9 / 3600:.1f} hours")


if __name__ == "__main__":
    main()
