"""Reading the Open Bandit Dataset (ZOZOTOWN's logged fashion recommendations) into a bandit log."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adengine.ope import BanditLog

REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")


class DatasetError(ValueError):
    """The dataset is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class ObdLog:
    """One policy's log of one campaign, in time order."""

    policy: str
    campaign: str
    timestamp: np.ndarray
    item: np.ndarray
    position: np.ndarray  # 0-based
    click: np.ndarray
    pscore: np.ndarray
    n_items: int

    def __len__(self) -> int:
        return len(self.item)

    def split(self, fraction: float = 0.5) -> tuple[ObdLog, ObdLog]:
        """The earlier and the later part, by time."""
        cut = int(len(self) * fraction)
        return self._part(slice(0, cut)), self._part(slice(cut, None))

    def _part(self, sl: slice) -> ObdLog:
        return ObdLog(
            self.policy, self.campaign, self.timestamp[sl], self.item[sl], self.position[sl], self.click[sl],
            self.pscore[sl], self.n_items,
        )  # fmt: skip

    def bandit_log(self) -> BanditLog:
        return BanditLog(
            action=self.item, reward=self.click, pscore=self.pscore, position=self.position, n_actions=self.n_items
        )


def read(root: Path, *, policy: str, campaign: str) -> ObdLog:
    """``root/<policy>/<campaign>/<campaign>.csv`` (and its item_context.csv for the number of items)."""
    folder = Path(root) / policy / campaign
    path = folder / f"{campaign}.csv"
    if not Path(root).is_dir():
        raise DatasetError(f"{root}: no such directory (expected the Open Bandit Dataset's folder)")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (expected <root>/{policy}/{campaign}/{campaign}.csv)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DatasetError(f"{path}: empty file")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
        col = {name: header.index(name) for name in REQUIRED}
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append(
                    (
                        row[col["timestamp"]],
                        int(row[col["item_id"]]),
                        int(row[col["position"]]) - 1,
                        float(row[col["click"]]),
                        float(row[col["propensity_score"]]),
                    )
                )
            except (ValueError, IndexError) as exc:
                raise DatasetError(f"{path}:{line}: {exc}") from None
    if not rows:
        raise DatasetError(f"{path}: no records")
    rows.sort(key=lambda r: r[0])  # ISO timestamps sort as text
    items_file = folder / "item_context.csv"
    n_items = max(r[1] for r in rows) + 1
    if items_file.is_file():
        with items_file.open(newline="", encoding="utf-8") as fh:
            n_items = max(n_items, sum(1 for _ in fh) - 1)
    return ObdLog(
        policy=policy,
        campaign=campaign,
        timestamp=np.array([r[0] for r in rows]),
        item=np.array([r[1] for r in rows], dtype=np.int64),
        position=np.array([r[2] for r in rows], dtype=np.int64),
        click=np.array([r[3] for r in rows]),
        pscore=np.array([r[4] for r in rows]),
        n_items=n_items,
    )
