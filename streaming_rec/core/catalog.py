"""What a worker knows about each item beside its vector: title, categories, attributes,
and the text the encoder reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ItemMeta:
    item_id: str
    title: str
    categories: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)

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

    def put(self, meta: ItemMeta) -> None:
        self._items[meta.item_id] = meta

    def remove(self, item_ids: Iterable[str]) -> None:
        for item_id in item_ids:
            self._items.pop(item_id, None)

    def get(self, item_id: str) -> ItemMeta | None:
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> Iterable[str]:
        return self._items.keys()
