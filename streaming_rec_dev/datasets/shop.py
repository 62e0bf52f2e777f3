"""A generated shop for measuring query understanding: products and queries with known
answers, made from a seed (nothing downloaded, nothing shipped).

``catalog(seed, n_per_category)`` makes products in 8 categories (laptops, phones,
headphones, kitchen, books, cameras, tablets, watches), each of one *kind* (the semantic
target: a gaming laptop, a rice cooker) with a price, a discount rate (0 for most), a stock
flag, a brand, RAM for the devices and a ``published_at`` in the last two years.
``queries(products, seed)`` fills English and Chinese templates ("gaming laptops under
$1200", "1200元以下的游戏笔记本电脑", "打折的耳机", "not discounted watches", "最新的相机") with
values drawn from the catalog so that matches exist; each query carries the predicate of its
hard constraints and, where it names one, the kind it asks for. ``score`` gives the hard-
constraint precision of the answers (share of returned items meeting every constraint),
the fill (returned / min(k, matching)), the semantic relevance (share of the top k of the
asked kind) and, for recency queries, the share of the top k among the newest fifth of the
matching products.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cn2an
import numpy as np

DAY = 86_400.0
# category → (Chinese name, singular, price range, RAM sizes or (), kinds)
# kind → (description, English query words, Chinese query words)
CATEGORIES: dict[
    str, tuple[str, str, tuple[int, int], tuple[int, ...], dict[str, tuple[str, str, str]]]
] = {
    "Laptops": (
        "笔记本电脑",
        "laptop",
        (300, 3000),
        (8, 16, 32, 64),
        {
            "gaming": (
                "gaming laptop with a fast graphics card and an RGB keyboard",
                "gaming",
                "游戏",
            ),
            "ultralight": (
                "thin and light ultraportable laptop for travel",
                "lightweight travel",
                "轻薄",
            ),
            "business": (
                "business laptop with a long battery life and a fingerprint reader",
                "business",
                "商务",
            ),
            "creator": (
                "laptop with a color-accurate screen for photo and video editing",
                "video editing",
                "剪辑",
            ),
        },
    ),
    "Phones": (
        "手机",
        "phone",
        (100, 1500),
        (4, 6, 8, 12),
        {
            "camera": ("phone with a great camera for photos at night", "camera", "拍照"),
            "rugged": (
                "rugged waterproof phone for outdoor work sites",
                "rugged waterproof",
                "三防",
            ),
            "compact": ("small compact phone that fits in one hand", "compact small", "小屏"),
            "battery": (
                "phone with a huge battery that lasts two days",
                "long battery life",
                "长续航",
            ),
        },
    ),
    "Headphones": (
        "耳机",
        "headphone",
        (20, 500),
        (),
        {
            "anc": ("noise cancelling over-ear headphones for flights", "noise cancelling", "降噪"),
            "sport": ("sweatproof wireless earbuds for running", "running workout", "运动"),
            "studio": ("studio monitor headphones for mixing music", "studio monitor", "录音室"),
        },
    ),
    "Kitchen": (
        "厨具",
        "kitchen tool",
        (10, 400),
        (),
        {
            "pan": ("non-stick frying pan for eggs and pancakes", "frying pan", "平底锅"),
            "rice": ("rice cooker with a keep-warm timer", "rice cooker", "电饭煲"),
            "knife": ("chef knife of forged steel for slicing", "chef knife", "厨师刀"),
            "blender": ("blender for smoothies and soups", "blender", "搅拌机"),
        },
    ),
    "Books": (
        "图书",
        "book",
        (5, 80),
        (),
        {
            "mystery": (
                "a detective mystery novel with a twist ending",
                "detective mystery",
                "侦探",
            ),
            "cookbook": ("a cookbook of quick weeknight recipes", "cookbook recipes", "菜谱"),
            "space": (
                "a novel about a starship crew lost in deep space",
                "space adventure",
                "太空",
            ),
            "history": ("a history of the Roman empire and its emperors", "roman history", "历史"),
        },
    ),
    "Cameras": (
        "相机",
        "camera",
        (150, 4000),
        (),
        {
            "mirrorless": ("mirrorless camera with interchangeable lenses", "mirrorless", "微单"),
            "action": ("waterproof action camera for biking and diving", "action diving", "运动"),
            "instant": ("instant camera that prints photos on the spot", "instant print", "拍立得"),
        },
    ),
    "Tablets": (
        "平板电脑",
        "tablet",
        (100, 1500),
        (4, 6, 8, 12),
        {
            "drawing": (
                "tablet with a pressure-sensitive stylus for drawing",
                "drawing stylus",
                "绘画",
            ),
            "kids": ("sturdy tablet for children with parental controls", "for children", "儿童"),
            "reader": ("e-ink tablet for reading books and notes", "e-ink reading", "阅读"),
        },
    ),
    "Watches": (
        "手表",
        "watch",
        (30, 1000),
        (),
        {
            "smart": ("smartwatch with heart rate tracking and GPS", "heart rate gps", "智能"),
            "dive": ("dive watch water resistant to 200 meters", "diving", "潜水"),
            "dress": ("elegant dress watch with a leather strap", "elegant leather", "皮带"),
        },
    ),
}
BRANDS = ("Aerix", "Nimbra", "Kovo", "Velta", "Orvane", "Tessa", "Lumio", "Bravix")
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}
_WORDS |= {8: "eight", 9: "nine"}
_TENS = (
    "zero",
    "ten",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
)


@dataclass(frozen=True)
class Product:
    item_id: str
    title: str
    description: str
    categories: tuple[str, ...]
    attributes: Mapping[str, Any]
    published_at: float
    kind: str

    @property
    def category(self) -> str:
        return self.categories[0]

    def as_item(self) -> dict[str, object]:
        """The product as an `items` message (topics/schemas/item.v1.json)."""
        return {
            "item_id": self.item_id,
            "title": self.title,
            "description": self.description,
            "categories": list(self.categories),
            "attributes": dict(self.attributes),
            "published_at": self.published_at,
        }


@dataclass(frozen=True)
class ShopQuery:
    qid: str
    text: str
    lang: str  # "en" or "zh"
    template: str
    ok: Callable[[Product], bool] = field(repr=False)  # every hard constraint
    kind: str | None = None  # the kind asked for, if the text names one
    recency: bool = False


def catalog(seed: int = 11, n_per_category: int = 250, now: float = 1.78e9) -> list[Product]:
    """``8 × n_per_category`` products, the same for the same seed and ``now`` (Unix s)."""
    rng = random.Random(seed)
    out = []
    for category, (_, one, (lo, hi), rams, kinds) in CATEGORIES.items():
        for i in range(n_per_category):
            kind = rng.choice(sorted(kinds))
            brand = rng.choice(BRANDS)
            price = round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), 0) - 0.01
            attributes: dict[str, Any] = {
                "price": price,
                "discount": 0.0 if rng.random() < 0.55 else rng.choice([0.1, 0.15, 0.2, 0.3]),
                "in_stock": rng.random() < 0.85,
                "brand": brand,
            }
            if rams:
                attributes["ram_gb"] = rng.choice(rams)
            model = f"{rng.choice('XSMPQ')}{rng.randint(1, 99)}"
            title = f"{brand} {model} {kind.title()} {one.title()}"
            out.append(
                Product(
                    item_id=f"{category.lower()}-{i:04d}",
                    title=title,
                    description=kinds[kind][0],
                    categories=(category,),
                    attributes=attributes,
                    published_at=round(now - rng.uniform(1, 730) * DAY),
                    kind=kind,
                )
            )
    return out


def _words(value: int) -> str:
    """10..9900 (round tens below 100, round hundreds above) in English words."""
    if value < 100:
        return _TENS[value // 10]
    thousands, hundreds = divmod(value // 100, 10)
    parts = [f"{_WORDS[thousands]} thousand"] if thousands else []
    if hundreds:
        parts.append(f"{_WORDS[hundreds]} hundred")
    return " ".join(parts)


def queries(
    products: Sequence[Product], seed: int = 11, per_template: int = 16, now: float = 1.78e9
) -> list[ShopQuery]:
    """English and Chinese queries over ``products`` (``per_template`` of each template)."""
    rng = random.Random(seed + 1)
    by_cat: dict[str, list[Product]] = {}
    for p in products:
        by_cat.setdefault(p.category, []).append(p)
    out: list[ShopQuery] = []

    def price_at(cat: str, q: float) -> int:
        prices = sorted(p.attributes["price"] for p in by_cat[cat])
        value = prices[int(q * (len(prices) - 1))]
        step = 100 if value >= 300 else 10
        return max(step, int(round(value / step) * step))

    templates = _templates()
    for name, lang, make in templates:
        for _ in range(per_template):
            cat = rng.choice(sorted(by_cat))
            zh, one, _, rams, kinds = CATEGORIES[cat]
            if "ram" in name and not rams:
                cat = rng.choice(["Laptops", "Phones", "Tablets"])
                zh, one, _, rams, kinds = CATEGORIES[cat]
            kind = rng.choice(sorted(kinds))
            values = {
                "cat": cat,
                "plural": cat.lower(),
                "one": one,
                "zh": zh,
                "kind": kind,
                "kind_en": kinds[kind][1],
                "kind_zh": kinds[kind][2],
                "p": price_at(cat, rng.uniform(0.4, 0.8)),
                "a": price_at(cat, 0.2),
                "b": price_at(cat, 0.6),
                "r": rng.choice(rams[1:]) if rams else 0,
                "brand": rng.choice(BRANDS),
            }
            text, ok, asks_kind, recency = make(values)
            out.append(ShopQuery(f"s{len(out)}", text, lang, name, ok, asks_kind, recency))
    return out


Make = Callable[[dict[str, Any]], tuple[str, Callable[[Product], bool], str | None, bool]]


def _templates() -> list[tuple[str, str, Make]]:
    def in_cat(v: dict[str, Any]) -> Callable[[Product], bool]:
        return lambda p: p.category == v["cat"]

    def price(p: Product) -> float:
        return float(p.attributes["price"])

    def t(
        name: str,
        lang: str,
        fmt: str,
        extra: Callable[..., bool] | None,
        kind: bool,
        recency: bool = False,
    ) -> tuple[str, str, Make]:
        def make(v: dict[str, Any]) -> tuple[str, Callable[[Product], bool], str | None, bool]:
            base = in_cat(v)
            ok = (lambda p: base(p) and extra(p, v)) if extra else base
            words = {**v, "pw": _words(v["p"]), "pcn": cn2an.an2cn(str(v["p"]))}
            return fmt.format(**words), ok, v["kind"] if kind else None, recency

        return name, lang, make

    return [
        t(
            "kind+under",
            "en",
            "{kind_en} {plural} under ${p}",
            lambda p, v: price(p) <= v["p"],
            True,
        ),
        t(
            "discounted",
            "en",
            "discounted {plural}",
            lambda p, v: p.attributes["discount"] > 0,
            False,
        ),
        t(
            "between",
            "en",
            "{plural} between ${a} and ${b}",
            lambda p, v: v["a"] <= price(p) <= v["b"],
            False,
        ),
        t(
            "ram",
            "en",
            "{kind_en} {plural} with at least {r}GB of RAM",
            lambda p, v: p.attributes["ram_gb"] >= v["r"],
            True,
        ),
        t(
            "in stock",
            "en",
            "{kind_en} {one} in stock",
            lambda p, v: p.attributes["in_stock"],
            True,
        ),
        t(
            "brand+sale",
            "en",
            "{brand} {plural} on sale",
            lambda p, v: p.attributes["brand"] == v["brand"] and p.attributes["discount"] > 0,
            False,
        ),
        t(
            "not discounted",
            "en",
            "not discounted {plural}",
            lambda p, v: p.attributes["discount"] == 0,
            False,
        ),
        t("latest", "en", "the latest {plural}", None, False, True),
        t("kind+over", "en", "{kind_en} {plural} over ${p}", lambda p, v: price(p) >= v["p"], True),
        t("words", "en", "{plural} under {pw} dollars", lambda p, v: price(p) <= v["p"], False),
        t("kind+under", "zh", "{p}元以下的{kind_zh}{zh}", lambda p, v: price(p) <= v["p"], True),
        t("discounted", "zh", "打折的{zh}", lambda p, v: p.attributes["discount"] > 0, False),
        t("between", "zh", "{a}到{b}元的{zh}", lambda p, v: v["a"] <= price(p) <= v["b"], False),
        t("ram", "zh", "内存至少{r}GB的{zh}", lambda p, v: p.attributes["ram_gb"] >= v["r"], False),
        t("in stock", "zh", "有货的{kind_zh}{zh}", lambda p, v: p.attributes["in_stock"], True),
        t(
            "brand+sale",
            "zh",
            "{brand}的{zh}，打折",
            lambda p, v: p.attributes["brand"] == v["brand"] and p.attributes["discount"] > 0,
            False,
        ),
        t(
            "not discounted",
            "zh",
            "不打折的{zh}",
            lambda p, v: p.attributes["discount"] == 0,
            False,
        ),
        t("latest", "zh", "最新的{zh}", None, False, True),
        t("kind+over", "zh", "价格高于{p}元的{kind_zh}{zh}", lambda p, v: price(p) >= v["p"], True),
        t("words", "zh", "{pcn}元以内的{zh}", lambda p, v: price(p) <= v["p"], False),
    ]


def score(
    asked: Sequence[ShopQuery],
    answers: Mapping[str, Sequence[str]],
    products: Mapping[str, Product],
    k: int = 10,
) -> dict[str, Any]:
    """Per language and overall: precision of the hard constraints, fill, relevance of the
    named kind, and the newest-fifth share of recency queries (see the module docstring)."""
    out: dict[str, Any] = {}
    for lang in ("en", "zh", "all"):
        chosen = [q for q in asked if lang in ("all", q.lang)]
        precision, fill, relevance, fresh, failed = [], [], [], [], []
        for q in chosen:
            got = [products[i] for i in answers.get(q.qid, [])[:k] if i in products]
            matching = [p for p in products.values() if q.ok(p)]
            hits = [q.ok(p) for p in got]
            precision.append(sum(hits) / len(got) if got else float(not matching))
            fill.append(len(got) / min(k, len(matching)) if matching else 1.0)
            if got and not all(hits):
                failed.append(q.text)
            if q.kind is not None:
                relevance.append(sum(p.kind == q.kind for p in got) / k)
            if q.recency and matching:
                cut = sorted((p.published_at for p in matching), reverse=True)
                newest = cut[max(0, len(cut) // 5 - 1)]
                fresh.append(sum(p.published_at >= newest for p in got) / k)
        out[lang] = {
            "queries": len(chosen),
            f"constraint_precision@{k}": round(float(np.mean(precision)), 4),
            "fill": round(float(np.mean(fill)), 4),
            f"kind_relevance@{k}": round(float(np.mean(relevance)), 4) if relevance else None,
            "recency_newest_fifth@10": round(float(np.mean(fresh)), 4) if fresh else None,
            "failed_examples": failed[:5],
        }
    return out
