"""Reading the Open Bandit Dataset (ZOZOTOWN's logged fashion recommendations) into a bandit log."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adengine.ope import BanditLog

REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")
USER_PREFIX = "user_feature_"
AFFINITY_PREFIX = "user-item_affinity_"


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
    # the context, where the file has it (else None): the hashed user features (records, 4) as strings, the
    # user-item affinity of every record's user with every item (records, items), and the items' own numeric
    # feature (item_context.csv's item_feature_0, standardised; one per item)
    user: np.ndarray | None = None
    affinity: np.ndarray | None = None
    item_feature: np.ndarray | None = None

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
            user=None if self.user is None else self.user[sl],
            affinity=None if self.affinity is None else self.affinity[sl],
            item_feature=self.item_feature,
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
        user_cols = [i for i, name in enumerate(header) if name.startswith(USER_PREFIX)]
        affinity_cols = {
            int(name[len(AFFINITY_PREFIX) :]): i for i, name in enumerate(header) if name.startswith(AFFINITY_PREFIX)
        }
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
                        tuple(row[i] for i in user_cols),
                        tuple(float(row[i]) for i in affinity_cols.values()),
                    )
                )
            except (ValueError, IndexError) as exc:
                raise DatasetError(f"{path}:{line}: {exc}") from None
    if not rows:
        raise DatasetError(f"{path}: no records")
    rows.sort(key=lambda r: r[0])  # ISO timestamps sort as text
    items_file = folder / "item_context.csv"
    n_items = max(r[1] for r in rows) + 1
    item_feature = None
    if items_file.is_file():
        item_feature, n_file = _item_feature(items_file)
        n_items = max(n_items, n_file)
        if item_feature is not None and len(item_feature) < n_items:
            item_feature = np.concatenate([item_feature, np.zeros(n_items - len(item_feature))])
    affinity = None
    if affinity_cols:
        affinity = np.zeros((len(rows), n_items))
        known = [k for k in affinity_cols if k < n_items]
        affinity[:, known] = np.array([[r[6][j] for j, k in enumerate(affinity_cols) if k < n_items] for r in rows])
    return ObdLog(
        policy=policy,
        campaign=campaign,
        timestamp=np.array([r[0] for r in rows]),
        item=np.array([r[1] for r in rows], dtype=np.int64),
        position=np.array([r[2] for r in rows], dtype=np.int64),
        click=np.array([r[3] for r in rows]),
        pscore=np.array([r[4] for r in rows]),
        n_items=n_items,
        user=np.array([r[5] for r in rows], dtype=object) if user_cols else None,
        affinity=affinity,
        item_feature=item_feature,
    )


def _item_feature(path: Path) -> tuple[np.ndarray | None, int]:
    """item_context.csv's ``item_feature_0`` by item id (None when the column is absent) and the number of items."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        rows = list(reader)
    if "item_id" not in header or "item_feature_0" not in header:
        return None, len(rows)
    i, f = header.index("item_id"), header.index("item_feature_0")
    try:
        pairs = [(int(r[i]), float(r[f])) for r in rows]
    except (ValueError, IndexError) as exc:
        raise DatasetError(f"{path}: {exc}") from None
    out = np.zeros(max((k for k, _ in pairs), default=-1) + 1)
    for k, v in pairs:
        out[k] = v
    return out, len(rows)
