"""In-filling with a MaskGAN run, as a library (the ``fill`` and ``eval infill`` commands are thin layers over it).

- :mod:`.templates`: a text with blanks (``___`` one or more tokens, ``___{k}`` exactly ``k``) -> the rows and
  ``present`` masks to fill, one per way of sizing the plain blanks (bounded before any is enumerated);
- :mod:`.filling`: fill those rows, keeping per fill the sizing the run's language model likes best;
- :mod:`.scoring`: mask held-out sentences, fill them, and score the masked positions (NLL, token accuracy,
  in-fill BLEU).

The masks themselves (training and evaluation) are :mod:`seqgan_kit.models.masks`; the measures on masked
positions are :mod:`seqgan_kit.metrics.infill`.
"""
