"""The query parser on a small catalog of its own (no model, no broker): categories,
prices with currencies, ranges, units, decades, booleans, negations, recency, numbers
inside titles, Chinese, and a catalog without times."""

from __future__ import annotations

import pytest

from streaming_rec.core.catalog import Catalog, ItemMeta
from streaming_rec.core.filters import Condition, ItemFilter
from streaming_rec.core.understand.parse import Understander, Understood

pytestmark = pytest.mark.unit
NOW = 1_780_000_000.0


def shop() -> Catalog:
    catalog = Catalog()
    rows = [
        ("l1", "Aero 14 Laptop", ("Laptops",), {"price": 949.0, "discount": 0.15, "ram_gb": 16}),
        ("l2", "Vela 16 Laptop", ("Laptops",), {"price": 1899.0, "discount": 0.0, "ram_gb": 32}),
        ("p1", "Kora phone", ("Phones",), {"price": 599.0, "in_stock": True, "brand": "Kora"}),
        ("p2", "Nimbus phone", ("Phones",), {"price": 299.0, "in_stock": False, "brand": "Apple"}),
        ("h1", "Quiet headphones", ("Headphones",), {"price": 199.0, "discount": 0.2}),
        ("k1", "Rice cooker", ("Kitchen",), {"price": 79.0}),
        ("n1", "Chip news", ("Technology",), {}),
    ]
    for i, (item_id, title, cats, attrs) in enumerate(rows):
        catalog.put(ItemMeta(item_id, title, cats, attrs, published_at=NOW - i * 86_400))
    return catalog


def films() -> Catalog:
    catalog = Catalog()
    rows = [
        ("m1", "Star Wars (1977)", ("Action", "Sci-Fi"), 1977),
        ("m2", "Saving Private Ryan (1998)", ("War", "Drama"), 1998),
        ("m3", "Clueless (1995)", ("Comedy",), 1995),
        ("m4", "2001: A Space Odyssey (1968)", ("Sci-Fi",), 1968),
        ("m5", "Halloween (1978)", ("Horror",), 1978),
        ("m6", "Toy Story (1995)", ("Animation", "Children's", "Comedy"), 1995),
        ("m7", "Summer of '42 (1971)", ("Drama",), 1971),
        ("m8", "The Kid (1921)", ("Comedy", "Drama"), 1921),
    ]
    for item_id, title, cats, year in rows:
        catalog.put(ItemMeta(item_id, title, cats, {"year": year}))
    return catalog


def read(catalog: Catalog, text: str) -> Understood:
    return Understander().understand(text, catalog.facets.vocabulary(), NOW)


def labels(u: Understood) -> set[str]:
    return {f.label for f in u.facets}


def test_discounted_laptops_under_a_price_in_dollars() -> None:
    u = read(shop(), "discounted laptops under $1000")
    assert u.filter.categories == (frozenset({"laptops"}),)
    assert set(u.filter.attributes) == {
        Condition("price", "lte", 1000.0),
        Condition("discount", "gt", 0),  # a discount stored as a rate: > 0
    }
    assert labels(u) == {"Laptops", "discount", "price ≤ 1000"}
    assert u.text == "laptops"  # the amount and the boolean are cut, the category stays


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("laptops between $500 and $1,200", 500.0, 1200.0),
        ("laptops from 500 to 1200 dollars", 500.0, 1200.0),
        ("laptops $500-$1200", 500.0, 1200.0),
        ("laptops under 1.2k", None, 1200.0),
        ("laptops under one thousand two hundred dollars", None, 1200.0),
        ("laptops over €500", 500.0, None),
        ("laptops 800 or less", None, 800.0),
        ("500到1200元的笔记本", 500.0, 1200.0),
        ("5000元以下的笔记本电脑", None, 5000.0),
        ("价格低于一千五百元的笔记本", None, 1500.0),
        ("1.2万以内的笔记本", None, 12000.0),
    ],
)
def test_prices_with_currencies_words_and_ranges(
    text: str, low: float | None, high: float | None
) -> None:
    u = read(shop(), text)
    bounds = {c.op: c.value for c in u.filter.attributes if c.name == "price"}
    assert bounds.get("gte") == low and bounds.get("lte") == high, (text, u)
    assert u.filter.categories == (frozenset({"laptops"}),)


def test_units_pick_the_attribute_that_carries_them() -> None:
    u = read(shop(), "laptops with at least 16GB of RAM")
    assert Condition("ram_gb", "gte", 16.0) in u.filter.attributes
    zh = read(shop(), "内存至少32GB的笔记本")
    assert Condition("ram_gb", "gte", 32.0) in zh.filter.attributes


def test_a_discount_in_percent_is_read_against_rates() -> None:
    u = read(shop(), "headphones at least 20% off")
    assert Condition("discount", "gte", 0.2) in u.filter.attributes


def test_booleans_values_and_their_negations() -> None:
    u = read(shop(), "apple phones in stock")
    assert Condition("in_stock", "eq", True) in u.filter.attributes
    assert Condition("brand", "eq", "apple") in u.filter.attributes
    assert "apple" in u.text  # a value stays in the text for the encoder
    assert (
        Condition("discount", "lte", 0) in read(shop(), "not discounted laptops").filter.attributes
    )
    assert Condition("in_stock", "eq", True) in read(shop(), "有货的手机").filter.attributes
    assert Condition("discount", "lte", 0) in read(shop(), "不打折的耳机").filter.attributes
    assert Condition("discount", "gt", 0) in read(shop(), "打折商品").filter.attributes


def test_negated_categories_are_excluded() -> None:
    for text in ("not horror", "a movie, no horror please", "anything but horror", "non-horror"):
        u = read(films(), text)
        assert u.filter.exclude_categories == {"horror"} and not u.filter.categories, text
        assert "horror" not in u.text  # never sent to the encoder, which would pull it closer
    assert read(films(), "不要恐怖片").filter.exclude_categories == {"horror"}


def test_decades_and_years_on_the_year_attribute() -> None:
    for text in ("a 1990s comedy", "a comedy from the 90s", "a comedy from the nineties"):
        u = read(films(), text)
        assert set(u.filter.attributes) == {
            Condition("year", "gte", 1990),
            Condition("year", "lt", 2000),
        }
        assert u.filter.categories == (frozenset({"comedy"}),), text
    assert Condition("year", "lt", 1980) in read(films(), "horror before 1980").filter.attributes
    zh = read(films(), "九十年代的喜剧")
    assert Condition("year", "gte", 1990) in zh.filter.attributes
    assert zh.filter.categories == (frozenset({"comedy"}),)
    twenties = read(films(), "a drama from the 20s")  # the century of the catalog's years
    assert Condition("year", "gte", 1920) in twenties.filter.attributes


def test_numbers_inside_titles_are_not_constraints() -> None:
    for text in ("2001 a space odyssey", "summer of 42", "apollo 13", "1984", "ocean's eleven"):
        u = read(films(), text)
        assert not u.filter.attributes and u.text == text, (text, u)


def test_a_category_word_inside_a_title_is_left_to_the_text() -> None:
    assert not read(films(), "star wars").filter  # 'wars' of a film that is not a War film
    assert read(films(), "a war film").filter.categories == (frozenset({"war"}),)


def test_lexicon_forms_reach_the_catalogs_own_names() -> None:
    assert read(films(), "a science fiction film").filter.categories == (frozenset({"sci-fi"}),)
    assert read(films(), "an animated film for kids").filter.categories == (
        frozenset({"animation"}),
        frozenset({"children's"}),
    )
    assert read(films(), "恐怖电影推荐").filter.categories == (frozenset({"horror"}),)
    assert read(shop(), "最新科技新闻").filter.categories == (frozenset({"technology"}),)


def test_categories_joined_by_and_or_are_any_of_them() -> None:
    u = read(shop(), "phones and laptops under $700")
    assert u.filter.categories == (frozenset({"phones", "laptops"}),)
    assert read(shop(), "手机和耳机").filter.categories == (frozenset({"phones", "headphones"}),)


def test_recency_and_windows_need_times() -> None:
    u = read(shop(), "the latest laptops")
    assert u.recency and u.text == "the laptops" and "latest" in labels(u)
    assert read(shop(), "最新的手机").recency
    week = read(shop(), "phones from the past 7 days")
    assert week.filter.published_after == NOW - 7 * 86_400
    assert not read(shop(), "New York stories").recency
    timeless = read(films(), "the latest comedy")  # no item has a time: nothing to rank by
    assert not timeless.recency and timeless.text == "the latest comedy"


def test_a_text_with_nothing_to_read_is_returned_as_sent() -> None:
    for text in ("", "   ", "a light laptop for travel", "€€€ $$$ ---", "under", "x" * 2000):
        u = read(shop(), text)
        assert u.text == text or not u.text.strip()
    assert read(shop(), "a light laptop for travel").text == "a light laptop for travel"


def test_client_filters_win_over_parsed_ones() -> None:
    parsed = read(shop(), "laptops under $1000 not discounted")
    client = ItemFilter(
        categories=(frozenset({"phones"}),), attributes=(Condition("price", "lte", 300),)
    )
    merged = parsed.filter.overridden_by(client)
    assert merged.categories == (frozenset({"phones"}),)
    assert [c for c in merged.attributes if c.name == "price"] == [Condition("price", "lte", 300)]
    assert Condition("discount", "lte", 0) in merged.attributes  # not named by the client


def test_the_vocabulary_follows_the_catalog() -> None:
    catalog = shop()
    understander = Understander()
    before = catalog.facets.vocabulary()
    assert not understander.understand("a blender", before, NOW).filter
    catalog.put(ItemMeta("b1", "Blendo", ("Blenders",), {"price": 50}))
    after = catalog.facets.vocabulary()
    assert after.version > before.version
    assert understander.understand("a blender", after, NOW).filter.categories == (
        frozenset({"blenders"}),
    )
    catalog.remove(["b1"])
    assert not understander.understand("a blender", catalog.facets.vocabulary(), NOW).filter


def test_chinese_numerals_are_read_only_as_amounts() -> None:
    catalog = shop()
    catalog.put(ItemMeta("r1", "Old laptop", ("Refurbished", "Laptops"), {"price": 100.0}))
    u = read(catalog, "五千元以下的打折笔记本电脑，不要二手的")
    assert Condition("price", "lte", 5000.0) in u.filter.attributes
    assert u.filter.exclude_categories == {"refurbished"}  # "二手" is a word, not "2手"
