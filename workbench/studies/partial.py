"""A partial result of a study that streams: what is finished so far, how far along, and what was just done.

The ``iter_...`` functions of the studies (:func:`workbench.studies.lr_batch.iter_study`,
:func:`workbench.studies.hessian.iter_batch_hessian_study`) yield one :class:`Partial` per finished chunk of work;
the ``result`` of the last equals what the one-shot function returns. A :class:`Partial` unpacks as the
``(partial, fraction, note)`` chunk that :meth:`workbench.panels.base.Panel.experiment` draws.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Partial", "last"]


class Partial(NamedTuple):
    """``result``: the study of the work finished so far; ``fraction``: in [0, 1] (1 for the last);
    ``note``: what was just finished, e.g. ``"batch size 32"``."""

    result: Any
    fraction: float
    note: str


def last(partials: Any) -> Any:
    """Run a stream of :class:`Partial` to its end and return the last result."""
    result = None
    for result, _fraction, _note in partials:
        pass
    if result is None:
        raise RuntimeError("the study yielded no result")
    return result
