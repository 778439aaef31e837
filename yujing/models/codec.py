"""A saved model's fitted parameters as bytes: skops, scikit-learn's secure format, never pickle.

Why not pickle: unpickling runs whatever code the file names, so a planted or altered
payload runs in the worker. skops stores numpy arrays, plain containers and
scikit-learn estimators as data and refuses, before building anything, every type outside
a trusted list: its defaults (numpy, builtins' containers and numbers, scikit-learn's
estimators) plus :data:`TRUSTED`, the one further type a fitted IsolationForest holds.
The signature (signing.py) is checked first; this is the second wall.

skops is imported when a model is saved or loaded, not at import time: it imports all of
scikit-learn to build its trusted list (seconds), which only a worker with models needs.
"""

from __future__ import annotations

import zipfile
from typing import Any

from yujing.models.errors import ModelError

PAYLOAD = "model.skops"  # the one payload name: nothing in meta.json says where to read
TRUSTED = ("sklearn.tree._tree.Tree",)


def encode(data: dict[str, Any]) -> bytes:
    # lazy: see the module's docstring
    import skops.io as sio

    return sio.dumps(data, compression=zipfile.ZIP_DEFLATED)


def decode(payload: bytes, where: Any) -> dict[str, Any]:
    """The parameters in ``payload``; ModelError (nothing built) for any type not trusted."""
    # lazy: see the module's docstring
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        data = sio.loads(payload, trusted=list(TRUSTED))
    except UntrustedTypesFoundException as exc:
        raise ModelError(f"{where}: refused: it holds types this build never loads ({exc}); "
                         "retrain with `yujing models train`") from None
    except Exception as exc:  # any malformed archive: a model that cannot be read
        raise ModelError(f"{where}: cannot be read with this build ({type(exc).__name__}: "
                         f"{str(exc)[:200]}): retrain with `yujing models train`") from None
    if not (isinstance(data, dict) and isinstance(data.get("params"), dict)
            and isinstance(data.get("groups"), dict)):
        raise ModelError(f"{where}: not a model payload (params and groups): retrain")
    return data
