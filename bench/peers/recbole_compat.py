"""Import RecBole 1.2.1 under current numpy/torch: the fixes are made here, at import, never
in a copy of RecBole.

- numpy 1.24+ removed the aliases ``np.float``, ``np.int``, ``np.bool``, ``np.object`` and
  numpy 2 removed ``np.float_``; RecBole 1.2.1 still names them (``recbole.data.interaction``
  tests ``isinstance(x, np.float)`` when an ``Interaction`` is built from lists, and
  ``recbole.config.configurator`` reads ``np.float_``). The aliases are restored only where
  missing, pointing at what they meant.
- RecBole's package ``__init__`` pulls in every model, so ``recbole.model.general_recommender``
  needs scikit-learn (SLIMElastic) and ``recbole.utils`` needs colorlog, colorama, texttable
  and tensorboard; they are in bench/peers/requirements.txt. ``ray`` (hyper-parameter search),
  ``thop`` (FLOPs), ``plotly`` and ``tabulate`` are only imported by the trainer and the
  tuning tools, which this benchmark does not use, so recbole is installed with --no-deps.

Only the model classes are used; RecBole's Config/Dataset/Trainer are not (its trainer ran
~260 s per SASRec epoch on 2 cores). The model constructors read a dict-like config and
``dataset.num(field)``: ``model_inputs`` gives them exactly those.
"""
from __future__ import annotations

import numpy as np

_ALIASES = {"float": float, "int": int, "bool": bool, "object": object, "float_": np.float64,
            "complex_": np.complex128, "unicode_": np.str_}
for _name, _value in _ALIASES.items():
    if _name not in np.__dict__:
        # numpy 2's module __getattr__ raises for the removed names: set them in the namespace.
        setattr(np, _name, _value)

from recbole.data.interaction import Interaction  # noqa: E402
from recbole.model.general_recommender.bpr import BPR  # noqa: E402
from recbole.model.sequential_recommender.gru4rec import GRU4Rec  # noqa: E402
from recbole.model.sequential_recommender.sasrec import SASRec  # noqa: E402

# The field names RecBole's own configuration would give (its defaults).
BASE_CONFIG = {
    "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
    "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "device": "cpu",
}


class _Counts:
    """The one thing RecBole's model constructors ask of a Dataset: how many ids a field has
    (padding id 0 included, as RecBole counts them)."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts

    def num(self, field: str) -> int:
        return self.counts[field]


def model_inputs(n_users: int, n_items: int, **params) -> tuple[dict, _Counts]:
    """(config, dataset) for a RecBole model class; ``n_users``/``n_items`` exclude padding."""
    config = {**BASE_CONFIG, **params}
    return config, _Counts({"user_id": n_users + 1, "item_id": n_items + 1})


__all__ = ["BPR", "GRU4Rec", "Interaction", "SASRec", "model_inputs"]
