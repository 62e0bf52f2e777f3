"""The words the parser knows without a catalog, in English and Chinese.

Nothing here names a category or attribute of a particular catalog: a concept below is
used only when the worker's catalog has a term whose key (core/understand/text.key)
equals one of the concept's English forms; then every form of the concept, in either
language, points at that term. A catalog whose terms are already Chinese ("笔记本电脑")
needs no concept: its own terms are matched as they are.
"""

from __future__ import annotations

# concept → surface forms (English forms are matched by key, Chinese ones as substrings).
# The first English form of a group is only a name; every form both matches the catalog's
# term and is looked for in queries.
CATEGORY_CONCEPTS: tuple[tuple[str, ...], ...] = (
    # films, music, books
    ("comedy", "comedies", "funny film", "喜剧", "喜剧片"),
    ("horror", "horror film", "恐怖", "恐怖片"),
    ("sci fi", "science fiction", "scifi", "sci-fi", "科幻"),
    ("animation", "animated", "cartoon", "动画", "动漫"),
    ("children", "childrens", "kids", "for kids", "儿童", "少儿"),
    ("romance", "romantic", "love story", "爱情", "浪漫"),
    ("thriller", "惊悚"),
    ("action", "动作", "动作片"),
    ("adventure", "冒险"),
    ("crime", "犯罪"),
    ("documentary", "纪录片"),
    ("drama", "剧情"),
    ("fantasy", "奇幻", "魔幻"),
    ("film noir", "noir", "黑色电影"),
    ("musical", "音乐剧", "歌舞片"),
    ("mystery", "悬疑", "推理"),
    ("war", "战争", "战争片"),
    ("western", "西部", "西部片"),
    ("jazz", "爵士"),
    ("rock", "摇滚"),
    ("classical", "古典"),
    ("fiction", "novel", "小说"),
    # shops
    ("laptop", "notebook computer", "笔记本", "笔记本电脑", "手提电脑"),
    ("phone", "smartphone", "mobile phone", "cell phone", "cellphone", "手机", "智能手机"),
    ("headphone", "earphone", "headset", "earbud", "耳机"),
    ("audio", "speaker", "音响", "音箱", "音频"),
    ("kitchen", "cookware", "厨房", "厨具"),
    ("book", "图书", "书籍"),
    ("tablet", "平板", "平板电脑"),
    ("camera", "相机", "摄像机"),
    ("tv", "television", "电视"),
    ("watch", "smartwatch", "手表"),
    ("shoe", "sneaker", "鞋", "鞋子"),
    ("clothing", "clothe", "apparel", "服装", "衣服"),
    ("toy", "玩具"),
    ("furniture", "家具"),
    ("beauty", "cosmetic", "美妆", "化妆品"),
    ("grocery", "food", "食品"),
    ("game", "video game", "游戏"),
    ("refurbished", "used", "second hand", "secondhand", "二手", "翻新"),
    # news
    ("technology", "tech", "科技"),
    ("sport", "体育", "运动"),
    ("finance", "financial", "财经", "金融"),
    ("business", "商业"),
    ("politic", "political", "政治"),
    ("entertainment", "娱乐"),
    ("health", "健康"),
    ("science", "科学"),
    ("world", "international", "国际"),
)

# a boolean concept: (attribute-name keys it may be stored under, phrases that ask for it)
BOOL_CONCEPTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("discount", "discounted", "on sale", "sale", "is discounted", "promo", "promotion"),
        (
            "discounted",
            "discount",
            "on sale",
            "on discount",
            "sale",
            "deal",
            "reduced",
            "marked down",
            "clearance",
            "打折",
            "折扣",
            "特价",
            "促销",
            "优惠",
            "降价",
        ),
    ),
    (
        ("in stock", "instock", "available", "availability", "stock", "inventory"),
        ("in stock", "in-stock", "available", "有货", "现货", "有库存"),
    ),
    (
        ("free shipping", "freeshipping", "free delivery"),
        ("free shipping", "free delivery", "ships free", "包邮", "免运费"),
    ),
)

NEGATIONS_EN = ("not", "no", "without", "except", "excluding", "non", "nothing", "never")
NEGATION_PHRASES_EN = ("anything but", "other than", "but not", "rather than")
NEGATIONS_ZH = ("不要", "不是", "除了", "不含", "没有", "不想要", "别", "非", "不")
FILLERS_EN = frozenset({"a", "an", "any", "the", "too", "so", "very", "more", "really"})

RECENCY_EN = (
    "latest",
    "newest",
    "most recent",
    "recent",
    "recently",
    "just released",
    "brand new",
    "new arrival",
    "new release",
    "up to date",
    "breaking",
)
# "new" alone asks for recency only before one of these (or a category): "new phones",
# "new arrivals"; "New York" or "new to me" stay text
NEW_BEFORE_EN = frozenset({"release", "arrival", "item", "product", "one", "stuff", "story"})
RECENCY_ZH = ("最新", "最近", "新品", "新上市", "新款", "新出", "刚出", "刚发布", "最新款")

# windows on published_at: phrase → seconds back from now
WINDOWS_EN = {
    "today": 86_400,
    "this week": 7 * 86_400,
    "past week": 7 * 86_400,
    "last week": 7 * 86_400,
    "this month": 31 * 86_400,
    "past month": 31 * 86_400,
    "last month": 31 * 86_400,
    "this year": 366 * 86_400,
    "past year": 366 * 86_400,
}
WINDOWS_ZH = {
    "今天": 86_400,
    "今日": 86_400,
    "本周": 7 * 86_400,
    "这周": 7 * 86_400,
    "最近一周": 7 * 86_400,
    "本月": 31 * 86_400,
    "这个月": 31 * 86_400,
    "今年": 366 * 86_400,
}
UNIT_SECONDS = {
    "hour": 3600,
    "day": 86_400,
    "week": 7 * 86_400,
    "month": 31 * 86_400,
    "year": 366 * 86_400,
    "小时": 3600,
    "天": 86_400,
    "日": 86_400,
    "周": 7 * 86_400,
    "星期": 7 * 86_400,
    "个月": 31 * 86_400,
    "月": 31 * 86_400,
    "年": 366 * 86_400,
}

DECADE_WORDS = {
    "twenties": 20,
    "thirties": 30,
    "forties": 40,
    "fifties": 50,
    "sixties": 60,
    "seventies": 70,
    "eighties": 80,
    "nineties": 90,
}

# attribute-name keys that hold a year (an item's release year, model year)
YEAR_NAMES = ("year", "release year", "years", "yr", "model year", "年份", "年代", "年")
# attribute-name keys that hold a price
PRICE_NAMES = (
    "price",
    "cost",
    "msrp",
    "sale price",
    "list price",
    "amount",
    "价格",
    "售价",
    "价钱",
)

CURRENCY_EN = ("$", "€", "£", "¥", "usd", "dollar", "buck", "eur", "euro", "pound", "yuan", "rmb")
CURRENCY_ZH = ("元", "块钱", "块", "美元", "欧元", "人民币")

# unit → attribute-name words that such a number may be stored under
UNITS: dict[str, tuple[str, ...]] = {
    "gb": ("gb", "ram", "memory", "storage", "ssd", "内存", "存储"),
    "tb": ("tb", "storage", "ssd", "disk", "存储", "硬盘"),
    "mb": ("mb", "memory", "size"),
    "inch": ("inch", "inches", "in", "screen", "display", "size", "屏幕", "尺寸"),
    "kg": ("kg", "weight", "重量"),
    "g": ("g", "gram", "weight", "重量"),
    "lb": ("lb", "lbs", "pound", "weight"),
    "mah": ("mah", "battery", "电池"),
    "hz": ("hz", "refresh", "刷新率"),
    "mp": ("mp", "megapixel", "camera", "像素"),
    "w": ("w", "watt", "power", "功率"),
    "star": ("star", "rating", "stars", "评分"),
    "min": ("min", "minute", "runtime", "duration", "length", "时长"),
    "h": ("h", "hour", "hours", "battery life", "续航"),
    "%": ("percent", "discount", "off", "折扣"),
}
UNIT_ALIASES = {
    "gb": "gb",
    "gig": "gb",
    "gigs": "gb",
    "tb": "tb",
    "mb": "mb",
    "inch": "inch",
    "inches": "inch",
    '"': "inch",
    "寸": "inch",
    "英寸": "inch",
    "kg": "kg",
    "kilo": "kg",
    "kilos": "kg",
    "公斤": "kg",
    "千克": "kg",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "克": "g",
    "lb": "lb",
    "lbs": "lb",
    "mah": "mah",
    "毫安": "mah",
    "hz": "hz",
    "mp": "mp",
    "w": "w",
    "watt": "w",
    "watts": "w",
    "瓦": "w",
    "star": "star",
    "stars": "star",
    "星": "star",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "分钟": "min",
    "hour": "h",
    "hours": "h",
    "hrs": "h",
    "小时": "h",
    "%": "%",
    "percent": "%",
}
