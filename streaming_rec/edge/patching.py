"""Checks for the few places where we patch a third-party library (Faust, aiokafka,
kafka-python): each patch first checks the installed version and the shape of what it
replaces, and fails loudly at start (:class:`PatchMismatch`) instead of silently not
applying, or applying to something that changed underneath it.

Used by :mod:`streaming_rec.edge.faust_fixes`, :mod:`streaming_rec.edge.poison` and the
CLI's worker class. docs/transport.md lists every patch and what it guards.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from streaming_rec.errors import ConfigError

#: Marks a function installed by one of our patches (so a second apply() is a no-op).
MARK = "_srec_patch"


class PatchMismatch(ConfigError):
    """A third-party library is not the version, or not shaped the way, one of our patches
    was written for: the process stops at start rather than run unpatched."""


def check_version(dist: str, series: str, patch: str) -> str:
    """The installed version of ``dist``; PatchMismatch (naming ``patch``) unless it is in
    ``series`` (major.minor, e.g. "0.15")."""
    try:
        found = version(dist)
    except PackageNotFoundError as exc:
        raise PatchMismatch(f"{patch}: {dist} is not installed") from exc
    if found.split(".")[:2] != series.split("."):
        raise PatchMismatch(f"{patch}: written for {dist} {series}.x, found {found}")
    return found


def check_callable(
    owner: Any, name: str, params: Iterable[str], patch: str, *, is_async: bool | None = None
) -> Callable[..., Any]:
    """``owner.name`` (looked up in the class or module itself, not inherited), after
    checking that it exists, is callable, takes ``params`` as its leading parameters and,
    when ``is_async`` is given, is or is not a coroutine function; PatchMismatch otherwise."""
    where = getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))
    func: Callable[..., Any] | None = vars(owner).get(name)
    if func is None or not callable(func):
        raise PatchMismatch(f"{patch}: {where}.{name} no longer exists")
    wanted = list(params)
    signature = inspect.signature(func)
    if list(signature.parameters)[: len(wanted)] != wanted:
        raise PatchMismatch(f"{patch}: {where}.{name}{signature}, expected parameters {wanted}")
    original = inspect.unwrap(func)
    if is_async is not None and inspect.iscoroutinefunction(original) != is_async:
        kind = "a coroutine function" if is_async else "a plain function"
        raise PatchMismatch(f"{patch}: {where}.{name} is no longer {kind}")
    return func


def check_source(func: Callable[..., Any], needles: Iterable[str], patch: str) -> None:
    """PatchMismatch unless the source of ``func`` still contains each of ``needles`` (the
    calls or attributes a patch relies on)."""
    source = inspect.getsource(inspect.unwrap(func))
    for needle in needles:
        if needle not in source:
            raise PatchMismatch(f"{patch}: {func.__qualname__} no longer uses {needle!r}")


def is_patched(func: Any) -> bool:
    """True for a function one of our patches installed."""
    return bool(getattr(func, MARK, False))


def mark(func: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` marked as our patch of ``original`` (signature and source follow it)."""
    func.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(func, MARK, True)
    return func
