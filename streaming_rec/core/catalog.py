"""What a worker knows about each item beside its vector: title, categories, attributes,
its time (``published_at``), and the text the encoder reads. The catalog keeps them by
column as well (core/facets.py) for filters and the query parser's vocabulary."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streaming_rec.core.facets import Facets


@dataclass(frozen=True)
class ItemMeta:
    item_id: str
    title: str
    categories: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    published_at: float | None = None  # Unix seconds, when the item carries a time

    def in_any(self, categories: frozenset[str]) -> bool:
        """True when the item has at least one of ``categories`` (lower-cased)."""
        return any(c.lower() in categories for c in self.categories)


def item_text(title: str, description: str, categories: Sequence[str]) -> str:
    """The text the encoder embeds for an item: what a query about it would say."""
    parts = [title.strip()]
    if categories:
        parts.append("Genres: " + ", ".join(categories) + ".")
    if description.strip():
        parts.append(description.strip())
    return " ".join(parts)


class Catalog:
    """Item metadata by id. Not thread-safe: the service owns it on its compute thread."""

    def __init__(self) -> None:
        self._items: dict[str, ItemMeta] = {}
        self.facets = Facets()
        #: item_id → in the catalog, as the dict's own method: no Python frame per call
        #: (retrieval checks every candidate with it on the compute thread)
        self.has: Callable[[object], bool] = self._items.__contains__

    def put(self, meta: ItemMeta) -> None:
        old = self._items.get(meta.item_id)
        if old is not None:
            self._forget(old)
        self._items[meta.item_id] = meta
        self.facets.put(
            meta.item_id, meta.title, meta.categories, meta.attributes, meta.published_at
        )

    def remove(self, item_ids: Iterable[str]) -> None:
        for item_id in item_ids:
            old = self._items.pop(item_id, None)
            if old is not None:
                self._forget(old)

    def _forget(self, meta: ItemMeta) -> None:
        self.facets.remove(meta.item_id, meta.title, meta.categories, meta.attributes)

    def get(self, item_id: str) -> ItemMeta | None:
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> Iterable[str]:
        return self._items.keys()
