"""Where the product page's ad slot spends its time: wall time per page of each part, summed over ``--pages`` views.

The same logged-in, personalised shopper and product pages as ``bench/serving.py --only page`` (its database,
``adengine_bench``), with each part wrapped in a timer: the decision, its cap reservation, scoring the page,
preparing and drawing the slate, the repeat decay, and the markup. Timers nest (the decision holds the others), and
the wrappers add a little of their own.

    python -m shop.embedded run -- .venv/bin/python bench/slot_parts.py [--pages 300]
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402  (bench/serving.py: the bench database and its settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    serving._setup_django()
    from adengine.serving import candidates, eligibility, engine, get_backend, presentation

    spent: collections.Counter = collections.Counter()

    def timed(owner, name: str, label: str, *also) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*a, **kw):
            started = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                spent[label] += time.perf_counter() - started

        setattr(owner, name, staticmethod(wrapper) if isinstance(owner.__dict__.get(name), staticmethod) else wrapper)
        for module in also:  # modules that imported the name themselves
            setattr(module, name, wrapper)

    timed(presentation.PageSlots, "render", "the slot (all of it)")
    timed(engine.Engine, "decide", "  the decision")
    timed(eligibility, "reserve_capped", "    the cap reservation", engine)
    timed(candidates, "score_page", "    scoring the page", engine)
    timed(engine, "_prepare", "    preparing the slate")
    timed(engine, "_choose", "    drawing the slate")
    timed(engine.Engine, "_repeat_decay", "    the repeat decay")
    timed(presentation, "render_slot_for_page", "  the markup")

    get_backend().snapshot()
    client, skus = serving.page_client()
    for sku in skus[:50]:
        client.get(f"/p/{sku}/")
    spent.clear()
    started = time.perf_counter()
    for i in range(args.pages):
        assert client.get(f"/p/{skus[i % len(skus)]}/").status_code == 200
    page = (time.perf_counter() - started) / args.pages * 1000
    print(f"product page with its slot: {page:.2f} ms a view (wall), {args.pages} views")
    for label, seconds in spent.items():
        print(f"{label:32s} {seconds / args.pages * 1000:7.3f} ms a view")


if __name__ == "__main__":
    main()
