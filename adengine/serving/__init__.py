"""The decision engine, one package to read top to bottom.

- ``backends``: the seam -- ``decide()`` asks the ``ADENGINE["DECISION_BACKEND"]`` (adengine's ``Engine`` by
  default), one instance per process, which owns the process's caches;
- ``engine``: the walk of one decision (``Engine.decide``), and what it returns (``Decision``, ``Ad``);
- ``context``: the page (``PageContext``), its language, each campaign's relevance to it;
- ``eligibility``: schedule, budgets and pacing, placement, copy, frequency caps;
- ``snapshot`` / ``builder`` / ``index``: the in-memory candidate index -- its types, how it is built from the
  database, the per-process holder that rebuilds it when stale;
- ``policy`` / ``learning`` / ``experiments``: Thompson sampling and its exact propensities, the posteriors the
  strategy update learns, A/B arms;
- ``rows`` / ``log``: the typed impression row and the writer that logs it off the request path;
- ``tokens`` / ``presentation``: the signed view, click and "Why this ad?" URLs, and an ad as a template or the
  API shows it.

``from adengine.serving import decide, PageContext, UnknownPlacement`` is all a caller needs.
"""

from __future__ import annotations

from typing import Any

from .backends import DecisionBackend, IndexNotReady, UnknownPlacement, decide, get_backend

__all__ = [
    "Ad",
    "Decision",
    "DecisionBackend",
    "IndexNotReady",
    "PageContext",
    "UnknownPlacement",
    "decide",
    "get_backend",
]


def __getattr__(name: str) -> Any:  # the engine's types load the models: imported on first use, after start-up
    if name == "PageContext":
        from .context import PageContext

        return PageContext
    if name in ("Ad", "Decision"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'adengine.serving' has no attribute {name!r}")
