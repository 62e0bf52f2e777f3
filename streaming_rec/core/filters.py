"""Hard filters on items: categories, attribute conditions and a time window.

One :class:`ItemFilter` holds what a request allows. A client sends it in ``filters`` (the
schema's ``Filters``); the query parser (core/understand) makes one from the text; the
two are merged with :meth:`ItemFilter.overridden_by`, the client's side winning per field.
An item passes when it passes every part:

- ``categories``: a conjunction of groups; the item has at least one category of each
  group (lower-cased names). The v1 ``filters.categories`` list is one group.
- ``exclude_categories``: the item has none of these.
- ``attributes``: every condition holds (see :class:`Condition`).
- ``published_after`` / ``published_before``: the item's ``published_at`` (Unix seconds)
  is in ``[after, before)``; an item without a time fails a window.

:meth:`ItemFilter.matches` checks one item's metadata (plain Python, for tests and small
sets); core/facets.py evaluates the same filter over the whole catalog as a numpy mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Op = Literal["eq", "one_of", "none_of", "gt", "gte", "lt", "lte"]
OPS: tuple[Op, ...] = ("eq", "one_of", "none_of", "gt", "gte", "lt", "lte")
Scalar = str | int | float | bool
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})


def same_value(item_value: Any, wanted: Scalar) -> bool:
    """Equality as filters see it: strings case-insensitively, booleans only equal
    booleans, numbers numerically (True is not 1)."""
    if isinstance(wanted, bool) or isinstance(item_value, bool):
        return isinstance(item_value, bool) and isinstance(wanted, bool) and item_value == wanted
    if isinstance(wanted, str):
        return isinstance(item_value, str) and item_value.casefold() == wanted.casefold()
    return isinstance(item_value, int | float) and float(item_value) == float(wanted)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Condition:
    """One condition on the attribute ``name`` (its name as items carry it).

    ``eq``: equal (see :func:`same_value`); ``one_of``: equal to one of ``values``;
    ``none_of``: equal to none (an item without the attribute passes); ``gt``/``gte``/
    ``lt``/``lte``: a number (not a bool) above/at least/below/at most ``value``; an item
    without the attribute, or with a non-number, fails every op but ``none_of``."""

    name: str
    op: Op
    value: Scalar | None = None  # eq and the range ops
    values: tuple[Scalar, ...] = ()  # one_of / none_of

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        present = self.name in attributes
        item_value = attributes.get(self.name)
        if self.op == "none_of":
            return not present or not any(same_value(item_value, v) for v in self.values)
        if not present:
            return False
        if self.op == "eq":
            assert self.value is not None
            return same_value(item_value, self.value)
        if self.op == "one_of":
            return any(same_value(item_value, v) for v in self.values)
        if not is_number(item_value) or not is_number(self.value):
            return False
        x, bound = float(item_value), float(self.value)  # type: ignore[arg-type]
        if self.op == "gt":
            return x > bound
        if self.op == "gte":
            return x >= bound
        if self.op == "lt":
            return x < bound
        return x <= bound


@dataclass(frozen=True)
class ItemFilter:
    """What a request allows (see the module docstring); the empty filter allows all."""

    categories: tuple[frozenset[str], ...] = ()
    exclude_categories: frozenset[str] = frozenset()
    attributes: tuple[Condition, ...] = ()
    published_after: float | None = None
    published_before: float | None = None
    exclude_ids: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        """True when the filter restricts anything beyond excluded ids."""
        return bool(
            self.categories
            or self.exclude_categories
            or self.attributes
            or self.published_after is not None
            or self.published_before is not None
        )

    def matches(
        self,
        categories: tuple[str, ...],
        attributes: Mapping[str, Any],
        published_at: float | None,
    ) -> bool:
        """Whether an item with these categories, attributes and time passes."""
        have = {c.lower() for c in categories}
        if any(not (group & have) for group in self.categories):
            return False
        if self.exclude_categories & have:
            return False
        if not all(c.holds(attributes) for c in self.attributes):
            return False
        if self.published_after is None and self.published_before is None:
            return True
        if published_at is None:
            return False
        if self.published_after is not None and published_at < self.published_after:
            return False
        return self.published_before is None or published_at < self.published_before

    def overridden_by(self, client: ItemFilter) -> ItemFilter:
        """This (parsed) filter with the client's parts taking precedence: client categories
        replace the parsed ones, and a parsed exclusion of a category the client asks for is
        dropped; client exclusions of categories replace the parsed ones; a client condition
        on an attribute replaces every parsed condition on it; a client time bound replaces
        the parsed window. Excluded ids are the union."""
        named = {c.name for c in client.attributes}
        client_window = client.published_after is not None or client.published_before is not None
        asked = frozenset().union(*client.categories) if client.categories else frozenset()
        return replace(
            self,
            categories=client.categories or self.categories,
            exclude_categories=client.exclude_categories or (self.exclude_categories - asked),
            attributes=client.attributes + tuple(c for c in self.attributes if c.name not in named),
            published_after=client.published_after if client_window else self.published_after,
            published_before=client.published_before if client_window else self.published_before,
            exclude_ids=self.exclude_ids | client.exclude_ids,
        )
