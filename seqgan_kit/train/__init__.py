"""Training: the shared MLE pretraining stage and the adversarial variants built on it.

The package is callable: ``seqgan_kit.train(recipe, overrides=..., run_dir=...)`` is :func:`seqgan_kit.api.train`
(the Python API's entry point shares the package's name, so the package forwards the call).
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
