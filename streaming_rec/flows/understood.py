"""Filters and the parse between the wire (schemas.Filters, schemas.Understood) and the core
(core/filters.ItemFilter, core/understand.parse.Understood)."""

from __future__ import annotations

from typing import Any

from streaming_rec.core.filters import OPS, Condition, ItemFilter
from streaming_rec.core.requests import Answer
from streaming_rec.schemas import AttributeCondition, Filters, Understood, UnderstoodFacet

_WIRE_OPS = ("eq", "one_of", "none_of", "gt", "gte", "lt", "lte")
assert _WIRE_OPS == OPS  # one name per operator on both sides


def filter_from_wire(filters: Filters | None) -> ItemFilter:
    """The client's filters beyond v1's ``categories``/``exclude_ids`` (those two stay on
    Request.categories and Request.exclude) as an ItemFilter."""
    if filters is None:
        return ItemFilter()
    conditions: list[Condition] = []
    for name, condition in filters.attributes.items():
        for op in OPS:
            value = getattr(condition, op)
            if value is None:
                continue
            if op in ("one_of", "none_of"):
                conditions.append(Condition(name, op, values=tuple(value)))
            else:
                conditions.append(Condition(name, op, value))
    return ItemFilter(
        categories=tuple(frozenset(c.lower() for c in g) for g in filters.category_groups if g),
        exclude_categories=frozenset(c.lower() for c in filters.exclude_categories),
        attributes=tuple(conditions),
        published_after=filters.published_after,
        published_before=filters.published_before,
    )


def filter_to_wire(flt: ItemFilter, exclude_ids: frozenset[str] = frozenset()) -> Filters:
    """An ItemFilter as the wire's Filters: one category group as ``categories``, more as
    ``category_groups``; the conditions on one attribute in one AttributeCondition (of two
    bounds of the same kind, the tighter one)."""
    by_name: dict[str, dict[str, Any]] = {}
    for c in flt.attributes:
        ops = by_name.setdefault(c.name, {})
        value: Any = list(c.values) if c.op in ("one_of", "none_of") else c.value
        if c.op in ("gt", "gte") and c.op in ops:
            value = max(ops[c.op], value)
        elif c.op in ("lt", "lte") and c.op in ops:
            value = min(ops[c.op], value)
        ops[c.op] = value
    groups = [sorted(g) for g in flt.categories]
    return Filters(
        categories=groups[0] if len(groups) == 1 else [],
        exclude_ids=sorted(exclude_ids)[:1000],
        category_groups=groups if len(groups) > 1 else [],
        exclude_categories=sorted(flt.exclude_categories),
        attributes={name: AttributeCondition(**ops) for name, ops in list(by_name.items())[:20]},
        published_after=flt.published_after,
        published_before=flt.published_before,
    )


def understood_to_wire(answer: Answer) -> Understood | None:
    """The reply's ``understood`` part (None when the answer had neither a parse nor
    filters)."""
    parsed = answer.understood
    if parsed is None:
        return None
    return Understood(
        text=parsed.text,
        filters=filter_to_wire(parsed.filter) if parsed.filter else None,
        facets=[UnderstoodFacet(label=f.label, span=f.span, field=f.field) for f in parsed.facets],
        recency=parsed.recency,
        matching=answer.matching,
    )
