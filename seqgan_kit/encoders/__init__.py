"""Sentence encoders: word2vec (mean / SIF pooling) and Skip-Thought, and the loader of their run directories.

- :mod:`.word2vec`: train gensim word2vec, store the vectors without pickle (safetensors + JSON).
- :mod:`.sentence`: sentence vectors from word vectors: mean, SIF-weighted mean with the first principal
  component removed (Arora et al. 2017).
- :mod:`.skipthought`: the Skip-Thought model (Kiros et al. 2015) and vocabulary expansion.
- :mod:`.loading`: open an encoder run directory as an object with ``embed(texts) -> [N, d]``.

The metrics built on them (FED, EmbSim, novelty) live in :mod:`seqgan_kit.metrics.embedding`.
"""
