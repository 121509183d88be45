"""GAN losses on discriminator logits (RelGAN's ``get_losses``), each ``(d_loss, g_loss)`` as scalars.

``d_real`` and ``d_fake`` are logits of the same shape (``[B]``, or ``[B, S]`` for a multi-representation
discriminator; every loss is a mean over all their elements). With ``softplus(x) = log(1 + e^x)``:

- ``rsgan`` (relativistic standard GAN, RelGAN's default): ``L_D = mean softplus(-(d_real - d_fake))``,
  ``L_G = mean softplus(-(d_fake - d_real))`` (real and generated rows paired in order).
- ``standard`` (non-saturating): ``L_D = mean softplus(-d_real) + mean softplus(d_fake)``,
  ``L_G = mean softplus(-d_fake)``.
- ``hinge``: ``L_D = mean relu(1 - d_real) + mean relu(1 + d_fake)``, ``L_G = -mean d_fake``.

The losses are float32 under any precision: bfloat16 logits are widened before the differences and the
means (in bfloat16 an RSGAN loss near log 2 reads 0.6875).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("rsgan", "standard", "hinge")


def gan_losses(d_real: torch.Tensor, d_fake: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d_loss, g_loss)`` of the GAN loss ``loss`` from discriminator logits on real and generated data."""
    if d_real.shape != d_fake.shape:
        raise ValueError(f"real and generated logits differ in shape: {tuple(d_real.shape)} vs {tuple(d_fake.shape)}")
    d_real, d_fake = d_real.float(), d_fake.float()  # bfloat16 logits (a bf16 run): the losses in float32
    if loss == "rsgan":
        return F.softplus(d_fake - d_real).mean(), F.softplus(d_real - d_fake).mean()
    if loss == "standard":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean(), F.softplus(-d_fake).mean()
    if loss == "hinge":
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean(), -d_fake.mean()
    raise ValueError(f"unknown GAN loss {loss!r} (expected one of {', '.join(LOSSES)})")
