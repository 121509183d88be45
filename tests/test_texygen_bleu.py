"""Texygen's COCO BLEU / Self-BLEU tables, recomputed with seqgan_kit.metrics.bleu.

Protocol and expected values: ../shared/texygen_coco/README.md (the "recomputed" columns, nltk 3.10.4):
treebank tokens (``word_tokenize(line, preserve_line=True)``), method1 smoothing, mean over the 9,984
generated sentences; test BLEU against all 10,000 lines of test_coco.txt, train BLEU against all of
image_coco.txt, Self-BLEU leave-one-out over the full sample set. All six models, all three tables.
"""

import pytest

from seqgan_kit.metrics.bleu import BleuReferences, self_bleu
from seqgan_kit.metrics.text import read_sentences

from .conftest import require_shared

ORDERS = (2, 3, 4, 5)
TOL = 0.0005

# model file -> (test BLEU-2..5, train-reference BLEU-2..5, Self-BLEU-2..5), from the README.
EXPECTED = {
    "seq": ((.7457, .4977, .2945, .1801), (.9170, .7469, .5303, .3485), (.9510, .8410, .6704, .4900)),
    "maligan": ((.6730, .4322, .2567, .1587), (.8869, .6975, .4820, .3116), (.9182, .7814, .6069, .4374)),
    "rank": ((.7431, .4674, .2641, .1562), (.9372, .7992, .6008, .4139), (.9596, .8827, .7630, .6189)),
    "leakgan": ((.7457, .5279, .3550, .2300), (.9257, .8165, .6598, .4701), (.9662, .9133, .8486, .7804)),
    "textgan": ((.5931, .4631, .2772, .2067), (.6499, .6457, .5958, .5235), (.9419, .9319, .8047, .7464)),
    "mle": ((.7314, .4974, .3054, .1894), (.9209, .7676, .5702, .3916), (.9159, .7694, .5829, .4090)),
}


def tokens(path):
    # TextGAN's samples hold 4 empty lines; Texygen scores them as empty hypotheses (BLEU 0).
    return read_sentences(path, "treebank", allow_empty=True)


@pytest.fixture(scope="module")
def references():
    root = require_shared("texygen_coco")
    return {name: BleuReferences(tokens(root / f"{name}_coco.txt"), max_order=max(ORDERS))
            for name in ("test", "image")}


@pytest.mark.slow
@pytest.mark.parametrize("model", list(EXPECTED))
def test_texygen_table_row(model, references):
    samples = tokens(require_shared("texygen_coco", "instances", f"{model}.txt"))
    assert len(samples) == 9984
    got = (references["test"].score(samples, ORDERS), references["image"].score(samples, ORDERS),
           self_bleu(samples, orders=ORDERS))
    for table, values, expected in zip(("test BLEU", "train BLEU", "Self-BLEU"), got, EXPECTED[model],
                                       strict=True):
        for n, want in zip(ORDERS, expected, strict=True):
            assert abs(values[n] - want) <= TOL, f"{model} {table}-{n}: {values[n]:.5f} vs README {want}"
