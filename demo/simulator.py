"""A deterministic retail simulator: it lands the demo mesh's daily files in `landing/`.

Same arguments and the same state give byte-identical files. Entities derive from the
seed alone, each day's randomness from (seed, date), and slowly changing facts
(promotion weeks, stock-out episodes, customer traits) from a counter-based hash of
their keys, so a later call agrees with earlier ones without storing them.

Everything per order line is vectorized with numpy/polars (10M lines over 30 days land
in about 15 s on 2 cores).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import polars as pl

from dagster_project.core.settings import PARTITION_START, MeshSettings

# -- public API -------------------------------------------------------------------


@dataclass(frozen=True)
class AnomalySpec:
    """Errors injected into order lines, with ground truth, to exercise quality checks."""

    rate: float = 0.0  # fraction of order lines made anomalous
    kinds: tuple[str, ...] = ("spike", "derivation", "contextual")


@dataclass(frozen=True)
class DriftSpec:
    """A change of the data-generating process from `start` (a date) onward."""

    start: date
    price_shift_category: str | None = None  # multiply unit_price in that category
    price_shift_factor: float = 1.25
    online_share: float | None = None  # change the channel mix


@dataclass(frozen=True)
class MissingSpec:
    """Order-line values blanked out, with ground truth, to exercise imputation."""

    rate: float = 0.0  # fraction of order lines that lose a value
    columns: tuple[str, ...] = ("unit_price",)  # each masked line loses one of these


@dataclass
class SimulationResult:
    """What one call landed: its days, the landing files (ground truth excluded), rows."""

    dates: list[date]
    files: list[str]  # landing files written, in landing order
    rows: dict[str, int]  # rows per "domain/product"


# -- the retail world: fixed tables ---------------------------------------------------

PRODUCTS = (
    "sales/stores",
    "sales/order_lines",
    "inventory/products",
    "inventory/stock_levels",
    "customers/customer_profiles",
)
ANOMALY_COLUMNS = {"spike": "quantity", "derivation": "net_amount", "contextual": "unit_price"}
FORMATS = ("parquet", "csv")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "sales/stores": {
        "store_id": pl.Int64(),
        "store_name": pl.String(),
        "city": pl.String(),
        "region": pl.String(),
        "opened_date": pl.Date(),
        "size_sqm": pl.Float64(),
    },
    "sales/order_lines": {
        "order_id": pl.Int64(),
        "line_number": pl.Int64(),
        "order_ts": pl.Datetime("us"),
        "order_date": pl.Date(),
        "store_id": pl.Int64(),
        "customer_id": pl.Int64(),
        "product_id": pl.Int64(),
        "channel": pl.String(),
        "quantity": pl.Int64(),
        "unit_price": pl.Float64(),
        "discount": pl.Float64(),
        "net_amount": pl.Float64(),
        "payment_type": pl.String(),
    },
    "inventory/products": {
        "product_id": pl.Int64(),
        "sku": pl.String(),
        "product_name": pl.String(),
        "category": pl.String(),
        "brand": pl.String(),
        "unit_cost": pl.Float64(),
        "list_price": pl.Float64(),
        "supplier_id": pl.Int64(),
        "lead_time_days": pl.Int64(),
    },
    "inventory/stock_levels": {
        "snapshot_date": pl.Date(),
        "store_id": pl.Int64(),
        "product_id": pl.Int64(),
        "on_hand": pl.Int64(),
        "on_order": pl.Int64(),
    },
    "customers/customer_profiles": {
        "customer_id": pl.Int64(),
        "full_name": pl.String(),
        "email": pl.String(),
        "phone": pl.String(),
        "birth_date": pl.Date(),
        "city": pl.String(),
        "country": pl.String(),
        "signup_date": pl.Date(),
        "loyalty_tier": pl.String(),
        "marketing_opt_in": pl.Boolean(),
    },
}

_REGION_CITIES = {
    "North": ("Leeds", "Manchester", "Newcastle", "York", "Sheffield", "Liverpool"),
    "South": ("Brighton", "Southampton", "Portsmouth", "Bournemouth", "Exeter", "Plymouth"),
    "East": ("Norwich", "Cambridge", "Ipswich", "Colchester", "Peterborough"),
    "West": ("Bristol", "Cardiff", "Bath", "Gloucester", "Swansea"),
    "Central": ("Birmingham", "Nottingham", "Leicester", "Coventry", "Derby", "Oxford"),
}
_STORE_SUFFIXES = (
    *("High Street", "Retail Park", "Centre", "Station", "Market Square", "Riverside"),
    *("Outlet", "Gateway"),
)
_HOME_COUNTRY, _HOME_PHONE = "United Kingdom", "+44"
_ABROAD = (
    ("Dublin", "Ireland", "+353"),
    ("Paris", "France", "+33"),
    ("Amsterdam", "Netherlands", "+31"),
    ("Berlin", "Germany", "+49"),
    ("Madrid", "Spain", "+34"),
)
_FIRST_NAMES = (
    *("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy"),
    *("Leo", "Grace", "Arthur", "Freya", "Oscar", "Lily", "Charlie", "Emily", "Jacob"),
    *("Sophie", "Thomas", "Chloe", "James", "Ella", "William", "Evie", "Henry", "Poppy"),
    *("Samuel", "Ruby", "Daniel", "Hannah", "Joseph", "Zara", "Adam", "Layla", "Ethan", "Maya"),
    *("Lucas", "Anna", "Mohammed", "Aisha", "Ravi", "Priya", "Tomasz", "Olivia", "Liam", "Niamh"),
)
_LAST_NAMES = (
    *("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel"),
    *("Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall"),
    *("Wood", "Jackson", "Clarke", "Khan", "Lewis", "Hughes", "Edwards", "Turner", "Hill"),
    *("Moore", "Cooper", "Ward", "Morris", "King", "Harrison", "Baker", "Shah", "Murphy"),
    *("Kelly", "Novak", "Campbell", "Bennett", "Price", "Fisher", "Ahmed", "Singh", "Walsh"),
    *("Marsh", "Fraser", "Lloyd"),
)
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "inbox.example")
_ADJECTIVES = (
    *("Classic", "Essential", "Premium", "Everyday", "Organic", "Compact", "Deluxe"),
    *("Original", "Lite", "Pro"),
)


class _Category(NamedTuple):
    code: str  # sku prefix
    median_price: float
    share: float  # of the assortment
    peak_day: int  # day of the year when seasonal demand peaks
    amplitude: float  # of that yearly cycle


_CATEGORIES = {
    "Grocery": _Category("GRO", 3.5, 0.20, 1, 0.0),
    "Beverages": _Category("BEV", 2.8, 0.10, 200, 0.25),
    "Household": _Category("HOU", 6.0, 0.10, 1, 0.0),
    "Personal Care": _Category("PER", 6.5, 0.08, 1, 0.0),
    "Beauty": _Category("BEA", 16.0, 0.07, 350, 0.2),
    "Apparel": _Category("APP", 28.0, 0.10, 270, 0.2),
    "Home & Kitchen": _Category("HOM", 32.0, 0.09, 340, 0.2),
    "Electronics": _Category("ELE", 140.0, 0.07, 345, 0.45),
    "Toys": _Category("TOY", 22.0, 0.06, 350, 0.6),
    "Sports & Outdoors": _Category("SPO", 45.0, 0.06, 180, 0.3),
    "Garden": _Category("GAR", 24.0, 0.04, 140, 0.6),
    "Books": _Category("BOO", 12.0, 0.03, 350, 0.3),
}
CATEGORIES = tuple(_CATEGORIES)
_BRANDS = {
    "Grocery": ("Fieldgate", "Harvest Lane", "Kitchen Table"),
    "Beverages": ("Brookside", "Fizzwell", "Leaf & Co"),
    "Household": ("Brightly", "Homecare", "Purewash"),
    "Personal Care": ("Dermacare", "Freshday", "Natura"),
    "Beauty": ("Lumiere", "Velvet Rose", "Glowlab"),
    "Apparel": ("Northway", "Threadline", "Urban Fold"),
    "Home & Kitchen": ("Hearthstone", "Casa Nova", "Oakridge"),
    "Electronics": ("Voltix", "Sonara", "Pixelon"),
    "Toys": ("Playnest", "Brickwell", "Tiny Tales"),
    "Sports & Outdoors": ("Trailpeak", "Strideon", "Aqualine"),
    "Garden": ("Greenthumb", "Bloomfield", "Rootwise"),
    "Books": ("Inkwell Press", "Lantern Books", "Paperboat"),
}
_NOUNS = {
    "Grocery": ("Pasta", "Rice", "Cereal", "Coffee Beans", "Olive Oil", "Biscuits"),
    "Beverages": ("Sparkling Water", "Orange Juice", "Green Tea", "Cola", "Lemonade"),
    "Household": ("Detergent", "Dish Soap", "Paper Towels", "Bin Bags", "Surface Spray"),
    "Personal Care": ("Shampoo", "Toothpaste", "Body Wash", "Deodorant", "Hand Cream"),
    "Beauty": ("Lipstick", "Mascara", "Face Serum", "Perfume", "Nail Polish"),
    "Apparel": ("T-Shirt", "Jeans", "Hoodie", "Rain Jacket", "Socks"),
    "Home & Kitchen": ("Frying Pan", "Knife Set", "Cushion", "Table Lamp", "Mug Set"),
    "Electronics": ("Headphones", "Smart Speaker", "Tablet", "Power Bank", "Fitness Tracker"),
    "Toys": ("Building Set", "Board Game", "Plush Bear", "Puzzle", "Toy Car"),
    "Sports & Outdoors": ("Yoga Mat", "Running Shoes", "Tent", "Water Bottle", "Football"),
    "Garden": ("Seed Mix", "Hose", "Planter", "Compost", "Pruning Shears"),
    "Books": ("Novel", "Cookbook", "Travel Guide", "Puzzle Book", "Biography"),
}

_LINES_PER_ORDER_P = np.array([0.35, 0.25, 0.17, 0.12, 0.07, 0.04])  # 1..6 lines
_WEEKDAY_FACTOR = np.array([0.86, 0.84, 0.90, 0.96, 1.10, 1.40, 1.22])  # Mon..Sun
_STORE_HOURS = np.array([0] * 8 + [2, 4, 6, 8, 9, 8, 7, 7, 8, 9, 8, 6, 4, 2] + [0, 0], float)
_ONLINE_HOURS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 5, 5, 5, 5, 6, 7, 8, 9, 9, 7, 4], float
)
_CHANNELS = ("store", "online")
_PAYMENTS = ("card", "cash", "mobile", "gift_card")
_PAYMENT_CDF = np.array([[0.55, 0.75, 0.95], [0.72, 0.72, 0.95]])  # online: never cash
_TIERS = ("bronze", "silver", "gold", "platinum")
_TIER_CUTS = np.array([0.55, 0.83, 0.96])  # on the activity quantile: busy buyers rank higher
_PROMO_DISCOUNTS = np.array([0.10, 0.15, 0.20, 0.25, 0.30])

_BASE_ONLINE_SHARE = 0.22
_PROMO_WEEKLY_RATE = 0.05  # share of products on promotion in a given week
_STOCKOUT_START_RATE = 0.008  # per carried pair and day; episodes last 1..4 days
_SIGNUP_RATE = 0.0015  # daily signups as a share of the initial customer base
_UPDATE_RATE = 0.0003  # daily profile updates (tier changes) as a share of it
_COUPON_RATE = 0.05  # orders with a loyalty coupon
_MAX_STOCK_ROWS = 40_000  # stock_levels rows per day, whatever the scale
_STATE_VERSION = 1

# streams of the seeded generators and salts of the hash: distinct so facts stay independent
_S_STORES, _S_PRODUCTS, _S_ASSORTMENT = 1, 2, 3
_D_ORDERS, _D_VOLUME, _D_CUSTOMERS, _D_ANOMALIES, _D_STOCK = 0, 1, 2, 3, 4
_D_MISSING = 5
(
    _H_PROMO,
    _H_PROMO_DISC,
    _H_OUT,
    _H_OUT_LEN,
    _H_FIRST,
    _H_LAST,
    _H_DOMAIN,
    _H_PHONE,
    _H_BIRTH,
    _H_CITY,
    _H_ABROAD,
    _H_OPT_IN,
    _H_ACTIVITY,
    _H_SIGNUP,
) = range(101, 115)


# -- counter-based hashing ---------------------------------------------------------


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 arrays (wrapping arithmetic is intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash_u01(seed: int, salt: int, *keys: np.ndarray | int) -> np.ndarray:
    """A uniform in [0, 1) per key tuple: per-entity facts without stored state."""
    h = _mix(_mix(np.array([seed], dtype=np.uint64)) ^ np.uint64(salt))
    for key in keys:
        h = _mix(h ^ np.asarray(key, dtype=np.int64).astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _pick(values: tuple[str, ...], u: np.ndarray) -> pl.Series:
    """values[floor(u * len)], gathered in polars (numpy string arrays convert slowly)."""
    return _gather(values, (u * len(values)).astype(np.int64))


def _gather(values: tuple[str, ...], index: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(index)


def _pick_within(groups: list[tuple[str, ...]], group: np.ndarray, u: np.ndarray) -> pl.Series:
    """One value per row from that row's group (e.g. a brand of the product's category)."""
    sizes = np.array([len(g) for g in groups])
    offsets = np.cumsum(sizes) - sizes
    flat = tuple(v for g in groups for v in g)
    return _gather(flat, offsets[group] + (u * sizes[group]).astype(np.int64))


def _days(d: date) -> int:
    """Days since the Unix epoch, polars' physical Date."""
    return (d - date(1970, 1, 1)).days


# -- entities ----------------------------------------------------------------------


def _entity_counts(scale: int) -> dict[str, int]:
    """Entity counts grow sub-linearly with the order-line volume, within fixed bounds."""
    ratio = scale / 10_000
    return {
        "stores": int(np.clip(round(8 * ratio**0.45), 8, 200)),
        "products": int(np.clip(round(50 * ratio**0.67), 50, 5000)),
        "customers": int(np.clip(scale // 20, 200, 250_000)),
    }


def _stores(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng([seed, _S_STORES])
    regions = list(_REGION_CITIES)
    region_idx = rng.permutation(np.arange(n) % len(regions))  # every region gets stores
    city_u = rng.random(n)
    cities = [
        _REGION_CITIES[regions[r]][int(u * len(_REGION_CITIES[regions[r]]))]
        for r, u in zip(region_idx, city_u, strict=True)
    ]
    suffixes = rng.integers(0, len(_STORE_SUFFIXES), n)
    names = [f"{c} {_STORE_SUFFIXES[s]}" for c, s in zip(cities, suffixes, strict=True)]
    names = [f"{nm} {i + 1}" if names.count(nm) > 1 else nm for i, nm in enumerate(names)]
    opened = _days(PARTITION_START) - rng.integers(180, 24 * 365, n)
    size = np.clip(np.round(rng.lognormal(np.log(1800), 0.5, n), -1), 300, 9000)
    return pl.DataFrame(
        {
            "store_id": np.arange(1, n + 1),
            "store_name": names,
            "city": cities,
            "region": [regions[r] for r in region_idx],
            "opened_date": pl.Series(opened.astype(np.int32)).cast(pl.Date),
            "size_sqm": size,
        },
        schema=SCHEMAS["sales/stores"],
    )


def _products(seed: int, n: int) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The product table, each product's category index and its Zipf-like popularity."""
    rng = np.random.default_rng([seed, _S_PRODUCTS])
    shares = np.array([c.share for c in _CATEGORIES.values()])
    cat = rng.choice(len(_CATEGORIES), n, p=shares / shares.sum())
    median = np.array([c.median_price for c in _CATEGORIES.values()])[cat]
    price = np.floor(rng.lognormal(np.log(median), 0.45)) + 0.99  # shelf prices end in .99
    cost = np.round(price * rng.uniform(0.35, 0.70, n), 2)
    brand_u, noun_u, adj_u = rng.random(n), rng.random(n), rng.random(n)
    ids = np.arange(1, n + 1)
    frame = pl.DataFrame(
        {
            "product_id": ids,
            "code": _gather(tuple(c.code for c in _CATEGORIES.values()), cat),
            "brand": _pick_within(list(_BRANDS.values()), cat, brand_u),
            "adjective": _pick(_ADJECTIVES, adj_u),
            "noun": _pick_within(list(_NOUNS.values()), cat, noun_u),
            "category": _gather(CATEGORIES, cat),
            "unit_cost": cost,
            "list_price": price,
            "supplier_id": rng.integers(1, max(5, n // 40) + 1, n),
            "lead_time_days": rng.integers(2, 22, n),
        }
    ).with_columns(
        sku=pl.concat_str("code", pl.lit("-"), pl.col("product_id").cast(pl.String).str.zfill(6)),
        product_name=pl.concat_str("brand", "adjective", "noun", separator=" "),
    )
    frame = frame.select(list(SCHEMAS["inventory/products"])).cast(SCHEMAS["inventory/products"])
    popularity = (rng.permutation(n) + 1.0) ** -0.8
    return frame, cat, popularity


def _customer_profiles(seed: int, ids: np.ndarray, signup_days: np.ndarray) -> pl.DataFrame:
    """Profiles as a pure function of (seed, customer_id), so updates can re-derive them."""

    def u(salt: int) -> np.ndarray:
        return _hash_u01(seed, salt, ids)

    abroad = u(_H_ABROAD) < 0.06
    home_cities = tuple(c for cs in _REGION_CITIES.values() for c in cs)
    # index 0 is the home country, 1.. the neighbours some customers live in
    country_idx = np.where(abroad, 1 + (u(_H_CITY) * len(_ABROAD)).astype(np.int64), 0)
    city = np.where(
        abroad, len(home_cities) - 1 + country_idx, (u(_H_CITY) * len(home_cities)).astype(np.int64)
    )
    birth_lo, birth_hi = _days(date(1940, 1, 1)), _days(date(2004, 12, 31))
    birth = birth_lo + (u(_H_BIRTH) * (birth_hi - birth_lo)).astype(np.int64)
    tier = np.searchsorted(_TIER_CUTS, u(_H_ACTIVITY), side="right")
    frame = pl.DataFrame(
        {
            "customer_id": ids.astype(np.int64),
            "first": _pick(_FIRST_NAMES, u(_H_FIRST)),
            "last": _pick(_LAST_NAMES, u(_H_LAST)),
            "domain": _pick(_EMAIL_DOMAINS, u(_H_DOMAIN)),
            "digits": (u(_H_PHONE) * 1e9).astype(np.int64),
            "prefix": _gather((_HOME_PHONE, *(a[2] for a in _ABROAD)), country_idx),
            "birth_date": pl.Series(birth.astype(np.int32)).cast(pl.Date),
            "city": _gather((*home_cities, *(a[0] for a in _ABROAD)), city),
            "country": _gather((_HOME_COUNTRY, *(a[1] for a in _ABROAD)), country_idx),
            "signup_date": pl.Series(signup_days.astype(np.int32)).cast(pl.Date),
            "loyalty_tier": _gather(_TIERS, tier),
            "marketing_opt_in": u(_H_OPT_IN) < 0.62,
        }
    )
    digits = pl.col("digits").cast(pl.String).str.zfill(9)
    return frame.select(
        "customer_id",
        full_name=pl.concat_str("first", pl.lit(" "), "last"),
        email=pl.concat_str(
            pl.col("first").str.to_lowercase(),
            pl.lit("."),
            pl.col("last").str.to_lowercase(),
            pl.col("customer_id").cast(pl.String),
            pl.lit("@"),
            "domain",
        ),
        phone=pl.concat_str(
            "prefix", pl.lit(" 7"), digits.str.slice(0, 3), pl.lit(" "), digits.str.slice(3)
        ),
        birth_date="birth_date",
        city="city",
        country="country",
        signup_date="signup_date",
        loyalty_tier="loyalty_tier",
        marketing_opt_in="marketing_opt_in",
    ).cast(SCHEMAS["customers/customer_profiles"])


def _initial_signup_days(seed: int, ids: np.ndarray, first_date: date) -> np.ndarray:
    """The initial base signed up over the three years before the first landed day."""
    return _days(first_date) - 1 - (_hash_u01(seed, _H_SIGNUP, ids) * 3 * 365).astype(np.int64)


def _activity(seed: int, n_customers: int) -> np.ndarray:
    """Heavy-tailed (Pareto) order propensity of customers 1..n."""
    u = _hash_u01(seed, _H_ACTIVITY, np.arange(1, n_customers + 1))
    return np.minimum((1.0 - u) ** (-1 / 1.5), 40.0)


@dataclass(frozen=True)
class _World:
    """Everything fixed by the seed and the entity counts, as arrays for the daily draws."""

    seed: int
    stores: pl.DataFrame
    products: pl.DataFrame
    store_weight: np.ndarray  # demand share from size and a fixed store effect
    category: np.ndarray  # category index per product
    popularity: np.ndarray
    list_price: np.ndarray
    qty_lambda: np.ndarray  # extra units per line: cheap items sell in multiples
    lead_time: np.ndarray
    pair_store: np.ndarray  # carried (store, product) pairs, 0-based, sorted by store
    pair_product: np.ndarray
    pair_affinity: np.ndarray  # local taste for a product in a store
    pair_cover: np.ndarray  # days of demand a store keeps on its shelf
    store_start: np.ndarray  # first pair index of each store

    @property
    def n_stores(self) -> int:
        return self.stores.height


def _assortment(
    rng: np.random.Generator,
    size: np.ndarray,
    popularity: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each store carries a size-dependent subset, popular products more likely."""
    n_stores, n_products = len(size), len(popularity)
    cap = max(20, _MAX_STOCK_ROWS // n_stores)
    rel = (size - size.min()) / max(size.max() - size.min(), 1.0)
    carried = np.minimum(n_products, np.round(cap * (0.6 + 0.4 * rel))).astype(np.int64)
    keys = rng.exponential(size=(n_stores, n_products)) / popularity  # weighted sampling keys
    ranked = np.argsort(keys, axis=1, kind="stable")
    chosen = np.arange(n_products)[None, :] < carried[:, None]
    stores = np.repeat(np.arange(n_stores), carried)
    flat = np.sort(stores * n_products + ranked[chosen])
    return flat // n_products, flat % n_products


def _world(seed: int, counts: dict[str, int]) -> _World:
    stores = _stores(seed, counts["stores"])
    products, category, popularity = _products(seed, counts["products"])
    rng = np.random.default_rng([seed, _S_ASSORTMENT])
    size = stores["size_sqm"].to_numpy()
    store_weight = size**0.8 * rng.lognormal(0.0, 0.25, len(size))
    pair_store, pair_product = _assortment(rng, size, popularity)
    price = products["list_price"].to_numpy()
    return _World(
        seed=seed,
        stores=stores,
        products=products,
        store_weight=store_weight,
        category=category,
        popularity=popularity,
        list_price=price,
        qty_lambda=np.select([price < 5, price < 20, price < 100], [1.1, 0.5, 0.2], 0.05),
        lead_time=products["lead_time_days"].to_numpy(),
        pair_store=pair_store,
        pair_product=pair_product,
        pair_affinity=rng.lognormal(0.0, 0.3, len(pair_store)),
        pair_cover=rng.uniform(3.0, 14.0, len(pair_store)),
        store_start=np.searchsorted(pair_store, np.arange(len(size))),
    )


# -- state ---------------------------------------------------------------------------


@dataclass
class _State:
    seed: int
    scale: int  # of the first call: it fixed the entity counts
    entities: dict[str, int]
    first_date: date
    last_date: date
    next_order_id: int
    next_customer_id: int
    lines_per_day: float  # of the last call: a caller continuing at the same volume reads it


def _state_uri(settings: MeshSettings) -> str:
    return settings.registry_uri("simulator", "state.json")


def landed_lines_per_day(settings: MeshSettings) -> float | None:
    """Order lines per day of the last simulation in this home (None before any)."""
    state = _load_state(settings)
    return state.lines_per_day if state else None


def _load_state(settings: MeshSettings) -> _State | None:
    uri = _state_uri(settings)
    if not settings.files.exists(uri):
        return None
    raw = json.loads(settings.files.read_text(uri))
    return _State(
        seed=raw["seed"],
        scale=raw["scale"],
        entities=raw["entities"],
        first_date=date.fromisoformat(raw["first_date"]),
        last_date=date.fromisoformat(raw["last_date"]),
        next_order_id=raw["next_order_id"],
        next_customer_id=raw["next_customer_id"],
        lines_per_day=raw["lines_per_day"],
    )


def _save_state(settings: MeshSettings, state: _State) -> None:
    raw = {
        "version": _STATE_VERSION,
        **asdict(state),
        "first_date": state.first_date.isoformat(),
        "last_date": state.last_date.isoformat(),
    }
    settings.files.write_text(_state_uri(settings), json.dumps(raw, indent=2) + "\n")


def _first_day(state: _State | None, days: int, start: date | None) -> date:
    if start is not None:
        if start < PARTITION_START:
            raise ValueError(f"start {start} is before PARTITION_START {PARTITION_START}")
        if state is not None and start <= state.last_date:
            raise ValueError(
                f"days up to {state.last_date} are already landed; "
                f"start after it or use a fresh MESH_HOME"
            )
        return start
    if state is not None:
        return state.last_date + timedelta(days=1)
    return max(datetime.now(UTC).date() - timedelta(days=days), PARTITION_START)


# -- one day ---------------------------------------------------------------------------


@dataclass
class _Day:
    """What one simulated day lands, plus its ground truth."""

    frames: dict[str, pl.DataFrame]
    promotions: pl.DataFrame
    anomalies: pl.DataFrame | None
    next_order_id: int
    next_customer_id: int
    missing: pl.DataFrame | None = None  # masked values: order_id, line_number, column, value


def _daily_lines(seed: int, dates: list[date], scale: int) -> np.ndarray:
    """Split `scale` lines exactly over the days by weekly and yearly seasonality."""
    weights = np.array(
        [
            _WEEKDAY_FACTOR[d.weekday()]
            * _yearly(d, 355, 0.12)
            * np.random.default_rng([seed, d.toordinal(), _D_VOLUME]).lognormal(0.0, 0.05)
            for d in dates
        ]
    )
    exact = scale * weights / weights.sum()
    lines = np.floor(exact).astype(np.int64)
    lines[np.argsort(lines - exact, kind="stable")[: scale - lines.sum()]] += 1
    return lines


def _yearly(d: date, peak_doy: float, amplitude: float) -> float:
    return 1.0 + amplitude * math.cos(2 * math.pi * (d.timetuple().tm_yday - peak_doy) / 365.25)


def _promotions(world: _World, day: date) -> tuple[np.ndarray, np.ndarray]:
    """Discount and demand uplift per product; campaigns run for a Monday-to-Sunday week."""
    ids = world.products["product_id"].to_numpy()
    week = (day.toordinal() - 1) // 7
    on = _hash_u01(world.seed, _H_PROMO, ids, week) < _PROMO_WEEKLY_RATE
    pick = (_hash_u01(world.seed, _H_PROMO_DISC, ids, week) * len(_PROMO_DISCOUNTS)).astype(int)
    discount = np.where(on, _PROMO_DISCOUNTS[pick], 0.0)
    return discount, 1.0 + 5.0 * discount


def _stockouts(world: _World, day: date) -> np.ndarray:
    """Out-of-stock pairs: episodes start at random and last 1..4 days, across calls."""
    out = np.zeros(len(world.pair_store), dtype=bool)
    store, product = world.pair_store + 1, world.pair_product + 1
    for lag in range(4):
        started = day.toordinal() - lag
        begins = _hash_u01(world.seed, _H_OUT, store, product, started) < _STOCKOUT_START_RATE
        length = 1 + (_hash_u01(world.seed, _H_OUT_LEN, store, product, started) * 4).astype(int)
        out |= begins & (length > lag)
    return out


def _pair_weights(world: _World, day: date, uplift: np.ndarray) -> np.ndarray:
    season = np.array([_yearly(day, c.peak_day, c.amplitude) for c in _CATEGORIES.values()])
    season = season[world.category]
    demand = world.popularity * season * uplift
    return demand[world.pair_product] * world.pair_affinity


def _order_sizes(rng: np.random.Generator, n_lines: int) -> np.ndarray:
    """Lines per order (1..6) adding up to exactly `n_lines`."""
    sizes = np.zeros(0, dtype=np.int64)
    while sizes.sum() < n_lines:
        more = rng.choice(6, int(n_lines / 2.4 * 1.05) + 16, p=_LINES_PER_ORDER_P) + 1
        sizes = np.concatenate([sizes, more])
    total = np.cumsum(sizes)
    last = int(np.searchsorted(total, n_lines)) if n_lines else -1
    sizes = sizes[: last + 1]
    if n_lines:
        sizes[-1] -= total[last] - n_lines
    return sizes


def _sample(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from a cumulative weight vector (zero weights never chosen)."""
    last_positive = np.flatnonzero(np.diff(cum, prepend=0.0) > 0)[-1]  # float edge at u -> 1
    return np.minimum(np.searchsorted(cum, u * cum[-1], side="right"), last_positive)


def _sample_pairs(
    rng: np.random.Generator, world: _World, weights: np.ndarray, line_store: np.ndarray
) -> np.ndarray:
    """A carried, in-stock pair of each line's store, proportional to the pair weights."""
    cum = np.cumsum(weights)
    before = np.concatenate([[0.0], cum])[world.store_start]
    end = np.append(world.store_start[1:], len(weights))
    total = np.concatenate([[0.0], cum])[end] - before
    target = before[line_store] + rng.random(len(line_store)) * total[line_store]
    pair = np.searchsorted(cum, target, side="right")
    positive = np.flatnonzero(weights > 0)  # float edge at a store's end: last sellable pair
    last_sellable = positive[np.searchsorted(positive, end, side="left") - 1]
    return np.minimum(pair, last_sellable[line_store])


@dataclass
class _Orders:
    store: np.ndarray
    customer: np.ndarray
    online: np.ndarray
    seconds: np.ndarray
    payment: np.ndarray
    coupon: np.ndarray
    sizes: np.ndarray


def _orders(
    rng: np.random.Generator,
    store_weight: np.ndarray,
    customer_cum: np.ndarray,
    sizes: np.ndarray,
    online_share: float,
) -> _Orders:
    """Order headers, sorted by time so order ids rise through the day."""
    n = len(sizes)
    online = rng.random(n) < online_share
    hour_cdf = np.cumsum(np.stack([_STORE_HOURS, _ONLINE_HOURS]), axis=1)
    hour_u = rng.random(n) * hour_cdf[online.astype(int), -1]
    hour = np.where(
        online,
        np.searchsorted(hour_cdf[1], hour_u, side="right"),
        np.searchsorted(hour_cdf[0], hour_u, side="right"),
    )
    seconds = hour * 3600 + rng.integers(0, 3600, n)
    payment_u = rng.random(n)
    payment = np.where(
        online,
        np.searchsorted(_PAYMENT_CDF[1], payment_u, side="right"),
        np.searchsorted(_PAYMENT_CDF[0], payment_u, side="right"),
    )
    orders = _Orders(
        store=_sample(np.cumsum(store_weight), rng.random(n)),
        customer=_sample(customer_cum, rng.random(n)) + 1,
        online=online,
        seconds=seconds,
        payment=payment,
        coupon=np.where(rng.random(n) < _COUPON_RATE, rng.choice([0.05, 0.10], n), 0.0),
        sizes=sizes,
    )
    order = np.argsort(seconds, kind="stable")
    return _Orders(**{k: v[order] for k, v in vars(orders).items()})


def _lines(
    rng: np.random.Generator,
    world: _World,
    orders: _Orders,
    weights: np.ndarray,
    promo_discount: np.ndarray,
) -> dict[str, np.ndarray]:
    """Order lines as arrays; prices are the product's list price before drift/anomalies."""
    n_lines = int(orders.sizes.sum())
    order_idx = np.repeat(np.arange(len(orders.sizes)), orders.sizes)
    starts = np.cumsum(orders.sizes) - orders.sizes
    store = orders.store[order_idx]
    pair = _sample_pairs(rng, world, weights, store) if n_lines else np.zeros(0, np.int64)
    product = world.pair_product[pair]
    promo = promo_discount[product]
    return {
        "order_idx": order_idx,
        "pair": pair,
        "store": store,
        "product": product,
        "line_number": np.arange(n_lines) - starts[order_idx] + 1,
        "quantity": 1 + rng.poisson(world.qty_lambda[product] * (1.0 + 2.0 * promo)),
        "unit_price": world.list_price[product].copy(),
        "discount": np.maximum(promo, orders.coupon[order_idx]),
    }


def _apply_drift(
    lines: dict[str, np.ndarray], world: _World, day: date, drift: DriftSpec | None
) -> None:
    if drift is None or day < drift.start or drift.price_shift_category is None:
        return
    in_category = world.category[lines["product"]] == CATEGORIES.index(drift.price_shift_category)
    shifted = np.round(lines["unit_price"] * drift.price_shift_factor, 2)
    lines["unit_price"] = np.where(in_category, shifted, lines["unit_price"])


def _inject(
    rng: np.random.Generator, lines: dict[str, np.ndarray], world: _World, spec: AnomalySpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spikes and contextual prices change lines in place; returns (rows, kind index,
    net_amount factor) so derivation errors are applied after net_amount is computed."""
    n_lines = len(lines["quantity"])
    rows = np.sort(rng.choice(n_lines, round(spec.rate * n_lines), replace=False))
    kinds = rng.permutation(np.arange(len(rows)) % len(spec.kinds))
    names = np.asarray(spec.kinds)[kinds] if len(rows) else np.zeros(0, dtype=str)
    spike, context = rows[names == "spike"], rows[names == "contextual"]
    lines["quantity"][spike] *= rng.integers(10, 51, len(spike))
    lines["unit_price"][context] = _contextual_prices(rng, world, lines["unit_price"][context])
    factor = np.ones(n_lines)
    derived = rows[names == "derivation"]
    factor[derived] = np.where(
        rng.random(len(derived)) < 0.5,
        rng.uniform(0.2, 0.6, len(derived)),
        rng.uniform(1.5, 3.0, len(derived)),
    )
    return rows, kinds, factor


def _contextual_prices(rng: np.random.Generator, world: _World, price: np.ndarray) -> np.ndarray:
    """A price common among all products but at least 3x off this product's own price."""
    lo, mid, hi = np.quantile(world.list_price, [0.25, 0.5, 0.75])
    cheap = world.list_price[world.list_price <= lo]
    dear = world.list_price[world.list_price >= hi]
    high = price >= mid
    other = np.where(
        high,
        cheap[rng.integers(0, len(cheap), len(price))],
        dear[rng.integers(0, len(dear), len(price))],
    )
    far = np.maximum(other / price, price / other) >= 3.0
    return np.where(far, other, np.round(np.where(high, price / 4.0, price * 4.0), 2))


def _order_frame(
    day: date,
    lines: dict[str, np.ndarray],
    orders: _Orders,
    first_order_id: int,
    factor: np.ndarray,
) -> pl.DataFrame:
    idx = lines["order_idx"]
    ts = (_days(day) * 86_400 + orders.seconds[idx]) * 1_000_000
    frame = pl.DataFrame(
        {
            "order_id": first_order_id + idx,
            "line_number": lines["line_number"],
            "order_ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us")),
            "order_date": pl.Series(np.full(len(idx), _days(day), np.int32)).cast(pl.Date),
            "store_id": lines["store"] + 1,
            "customer_id": orders.customer[idx],
            "product_id": lines["product"] + 1,
            "channel": _gather(_CHANNELS, orders.online[idx].astype(np.int64)),
            "quantity": lines["quantity"],
            "unit_price": lines["unit_price"],
            "discount": lines["discount"],
            "payment_type": _gather(_PAYMENTS, orders.payment[idx]),
        }
    )
    net = (pl.col("quantity") * pl.col("unit_price") * (1 - pl.col("discount"))).round(2)
    return (
        frame.with_columns(net_amount=(net * pl.Series(factor)).round(2))
        .select(list(SCHEMAS["sales/order_lines"]))
        .cast(SCHEMAS["sales/order_lines"])
    )


def _stock_frame(
    rng: np.random.Generator,
    world: _World,
    day: date,
    lines: dict[str, np.ndarray],
    clean_qty: np.ndarray,
    base_weights: np.ndarray,
    out: np.ndarray,
) -> pl.DataFrame:
    """Opening stock per carried pair: at least that day's sales, 0 exactly when out."""
    n_pairs = len(world.pair_store)
    sold = np.bincount(lines["pair"], weights=clean_qty, minlength=n_pairs)
    store_lines = np.bincount(lines["store"], minlength=world.n_stores)
    store_total = np.add.reduceat(base_weights, world.store_start)
    share = base_weights / store_total[world.pair_store]
    expected = store_lines[world.pair_store] * share * (1 + world.qty_lambda[world.pair_product])
    on_hand = np.maximum(1, sold + rng.poisson(expected * world.pair_cover)).astype(np.int64)
    on_hand = np.where(out, 0, on_hand)
    lead = world.lead_time[world.pair_product]
    reorder = out | (on_hand < expected * lead / 2)  # below half the lead-time demand
    case_packs = np.ceil(np.maximum(expected * (lead + 7), 1.0) / 6.0) * 6
    return pl.DataFrame(
        {
            "snapshot_date": pl.Series(np.full(n_pairs, _days(day), np.int32)).cast(pl.Date),
            "store_id": world.pair_store + 1,
            "product_id": world.pair_product + 1,
            "on_hand": on_hand,
            "on_order": np.where(reorder, case_packs, 0).astype(np.int64),
        },
        schema=SCHEMAS["inventory/stock_levels"],
    )


def _customer_day(
    seed: int, n_initial: int, first_date: date, day: date, next_customer_id: int, first: bool
) -> tuple[pl.DataFrame, int]:
    """That day's customer file: the initial base on the first day, then signups and a few
    profile updates (a loyalty tier or opt-in change, same customer_id)."""
    rng = np.random.default_rng([seed, day.toordinal(), _D_CUSTOMERS])
    busy = _WEEKDAY_FACTOR[day.weekday()]
    n_new = int(rng.poisson(n_initial * _SIGNUP_RATE * busy))
    new_ids = np.arange(next_customer_id, next_customer_id + n_new)
    parts = [_customer_profiles(seed, new_ids, np.full(n_new, _days(day)))]
    if first:
        initial = np.arange(1, n_initial + 1)
        parts.insert(
            0, _customer_profiles(seed, initial, _initial_signup_days(seed, initial, first_date))
        )
    else:
        parts.append(_profile_updates(rng, seed, n_initial, first_date))
    return pl.concat(parts), next_customer_id + n_new


def _profile_updates(
    rng: np.random.Generator, seed: int, n_initial: int, first_date: date
) -> pl.DataFrame:
    """Re-derive a few initial profiles and move their tier one step (mostly up)."""
    n = min(n_initial, int(rng.poisson(max(0.5, n_initial * _UPDATE_RATE))))
    ids = np.sort(rng.choice(n_initial, n, replace=False) + 1)
    base = _customer_profiles(seed, ids, _initial_signup_days(seed, ids, first_date))
    tier = np.searchsorted(_TIER_CUTS, _hash_u01(seed, _H_ACTIVITY, ids), side="right")
    step = np.where(rng.random(n) < 0.8, 1, -1)
    moved = np.where((tier + step < 0) | (tier + step > 3), tier - step, tier + step)
    return base.with_columns(
        loyalty_tier=_gather(_TIERS, moved),
        marketing_opt_in=pl.col("marketing_opt_in") ^ pl.Series(rng.random(n) < 0.3),
    )


def _simulate_day(
    world: _World,
    state: _State,
    day: date,
    n_lines: int,
    first: bool,
    anomalies: AnomalySpec | None,
    drift: DriftSpec | None,
) -> _Day:
    seed, ordinal = world.seed, day.toordinal()
    customers, next_customer_id = _customer_day(
        seed, state.entities["customers"], state.first_date, day, state.next_customer_id, first
    )
    promo_discount, uplift = _promotions(world, day)
    out = _stockouts(world, day)
    base_weights = _pair_weights(world, day, uplift)
    weights = np.where(out, 0.0, base_weights)  # stocked-out pairs sell nothing that day
    sellable = np.add.reduceat(weights, world.store_start) > 0
    rng = np.random.default_rng([seed, ordinal, _D_ORDERS])
    orders = _orders(
        rng,
        world.store_weight * sellable,
        np.cumsum(_activity(seed, next_customer_id - 1)),
        _order_sizes(rng, n_lines),
        _online_share(day, drift),
    )
    lines = _lines(rng, world, orders, weights, promo_discount)
    clean_quantity = lines["quantity"].copy()  # stock systems never saw injected errors
    _apply_drift(lines, world, day, drift)
    spec = anomalies if anomalies is not None and anomalies.rate > 0 else None
    rows, kinds, factor = np.zeros(0, np.int64), np.zeros(0, np.int64), np.ones(n_lines)
    if spec is not None:  # its own stream: clean lines stay identical with or without it
        rng_anomalies = np.random.default_rng([seed, ordinal, _D_ANOMALIES])
        rows, kinds, factor = _inject(rng_anomalies, lines, world, spec)
    order_lines = _order_frame(day, lines, orders, state.next_order_id, factor)
    frames = {
        "sales/order_lines": order_lines,
        "inventory/stock_levels": _stock_frame(
            np.random.default_rng([seed, ordinal, _D_STOCK]),
            world,
            day,
            lines,
            clean_quantity,
            base_weights,
            out,
        ),
        "customers/customer_profiles": customers,
    }
    if first:
        frames = {"sales/stores": world.stores, "inventory/products": world.products, **frames}
    return _Day(
        frames=frames,
        promotions=_promotion_truth(world, day, promo_discount, uplift),
        anomalies=_anomaly_truth(order_lines, rows, kinds, spec) if spec is not None else None,
        next_order_id=state.next_order_id + len(orders.sizes),
        next_customer_id=next_customer_id,
    )


def _online_share(day: date, drift: DriftSpec | None) -> float:
    if drift is not None and drift.online_share is not None and day >= drift.start:
        return drift.online_share
    return _BASE_ONLINE_SHARE


def _anomaly_truth(
    order_lines: pl.DataFrame, rows: np.ndarray, kinds: np.ndarray, spec: AnomalySpec
) -> pl.DataFrame:
    names = [spec.kinds[k] for k in kinds.tolist()]
    return order_lines.select("order_id", "line_number")[rows].with_columns(
        kind=pl.Series(names, dtype=pl.String),
        column=pl.Series([ANOMALY_COLUMNS[k] for k in names], dtype=pl.String),
    )


def _promotion_truth(
    world: _World, day: date, discount: np.ndarray, uplift: np.ndarray
) -> pl.DataFrame:
    on = discount > 0
    return pl.DataFrame(
        {
            "promo_date": pl.Series(np.full(int(on.sum()), _days(day), np.int32)).cast(pl.Date),
            "product_id": np.flatnonzero(on).astype(np.int64) + 1,
            "discount": discount[on],
            "uplift": uplift[on],
        }
    )


# -- landing -----------------------------------------------------------------------------


def _serialize(frame: pl.DataFrame, file_format: str) -> bytes:
    buffer = io.BytesIO()
    if file_format == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_parquet(buffer)
    return buffer.getvalue()


def _land(
    settings: MeshSettings, result: SimulationResult, day: date, out: _Day, file_format: str
) -> None:
    for key, frame in out.frames.items():
        if frame.is_empty():  # a day without signups lands no customer file
            continue
        domain, product = key.split("/")
        uri = f"{settings.landing_uri(domain, product)}/{day.isoformat()}.{file_format}"
        settings.files.write_bytes(uri, _serialize(frame, file_format))
        result.files.append(uri)
        result.rows[key] += frame.height
    truth = settings.registry_uri("simulator", "ground_truth")
    settings.files.write_bytes(
        f"{truth}/promotions/{day.isoformat()}.parquet", _serialize(out.promotions, "parquet")
    )
    if out.anomalies is not None:
        settings.files.write_bytes(
            f"{truth}/anomalies/{day.isoformat()}.parquet", _serialize(out.anomalies, "parquet")
        )
    if out.missing is not None:
        settings.files.write_bytes(
            f"{truth}/missing/{day.isoformat()}.parquet", _serialize(out.missing, "parquet")
        )


def _record_drift(settings: MeshSettings, drift: DriftSpec, dates: list[date]) -> None:
    """drift.json: the spec, the affected days (kept across calls with the same spec)
    and the columns it changes."""
    uri = settings.registry_uri("simulator", "ground_truth", "drift.json")
    spec = {**asdict(drift), "start": drift.start.isoformat()}
    affected = {d.isoformat() for d in dates if d >= drift.start}
    if settings.files.exists(uri):
        previous = json.loads(settings.files.read_text(uri))
        if previous.get("spec") == spec:
            affected |= set(previous.get("dates", []))
    columns = (["unit_price", "net_amount"] if drift.price_shift_category else []) + (
        ["channel", "payment_type"] if drift.online_share is not None else []
    )
    record = {
        "spec": spec,
        "dates": sorted(affected),
        "columns": columns,
        "baseline_online_share": _BASE_ONLINE_SHARE,
    }
    settings.files.write_text(uri, json.dumps(record, indent=2) + "\n")


def _validate(
    days: int,
    scale: int,
    seed: int,
    file_format: str,
    anomalies: AnomalySpec | None,
    drift: DriftSpec | None,
) -> None:
    if days < 1 or scale < 1:
        raise ValueError("days and scale must be at least 1")
    if not 0 <= seed < 2**63:
        raise ValueError("seed must be a non-negative 64-bit integer")
    if file_format not in FORMATS:
        raise ValueError(f"file_format must be one of {FORMATS}, not {file_format!r}")
    if anomalies is not None:
        if not 0.0 <= anomalies.rate <= 1.0:
            raise ValueError("anomaly rate must be within 0..1")
        unknown = set(anomalies.kinds) - set(ANOMALY_COLUMNS)
        if unknown or not anomalies.kinds:
            raise ValueError(f"anomaly kinds must be among {tuple(ANOMALY_COLUMNS)}")
    if drift is not None:
        if drift.price_shift_category not in (None, *CATEGORIES):
            raise ValueError(
                f"unknown category {drift.price_shift_category!r}; one of {CATEGORIES}"
            )
        if drift.price_shift_factor <= 0:
            raise ValueError("price_shift_factor must be positive")
        if drift.online_share is not None and not 0.0 <= drift.online_share <= 1.0:
            raise ValueError("online_share must be within 0..1")


def _validate_missing(missing: MissingSpec | None) -> None:
    if missing is None:
        return
    if not 0.0 <= missing.rate <= 1.0:
        raise ValueError("missing rate must be within 0..1")
    schema = SCHEMAS["sales/order_lines"]
    keys = {"order_id", "line_number"}
    maskable = {c for c, t in schema.items() if t.is_numeric() and c not in keys}
    if not missing.columns or set(missing.columns) - maskable:
        raise ValueError(f"missing columns must be among {sorted(maskable)}")


def _mask(out: _Day, spec: MissingSpec | None, seed: int, day: date) -> None:
    """Blank one value of a share of the day's order lines (own stream: the other values
    stay identical with or without masking) and keep the true values."""
    if spec is None or spec.rate <= 0:
        return
    lines = out.frames["sales/order_lines"]
    rng = np.random.default_rng([seed, day.toordinal(), _D_MISSING])
    rows = np.sort(rng.choice(lines.height, round(spec.rate * lines.height), replace=False))
    which = np.asarray(spec.columns)[rng.integers(0, len(spec.columns), len(rows))]
    truth = []
    for column in spec.columns:
        hit = rows[which == column]
        mask = np.zeros(lines.height, dtype=bool)
        mask[hit] = True
        truth.append(
            lines[hit].select(
                "order_id",
                "line_number",
                column=pl.lit(column),
                value=pl.col(column).cast(pl.Float64),
            )
        )
        lines = lines.with_columns(
            pl.when(pl.Series(mask)).then(None).otherwise(pl.col(column)).alias(column)
        )
    out.frames["sales/order_lines"] = lines
    out.missing = pl.concat(truth)


def simulate(
    settings: MeshSettings,
    *,
    days: int,
    scale: int = 10_000,
    start: date | None = None,
    seed: int = 42,
    file_format: str = "parquet",
    anomalies: AnomalySpec | None = None,
    drift: DriftSpec | None = None,
    missing: MissingSpec | None = None,
) -> SimulationResult:
    """Land `days` days of retail data (about `scale` order lines in total) in `landing/`.

    Without `start`, continues the day after the last landed day (state in the registry),
    or starts `days` days before today on a fresh home. Entities and ids stay consistent
    across calls: the first call fixes the entity counts from its `scale`; later calls'
    `scale` only sets their own volume.
    """
    _validate(days, scale, seed, file_format, anomalies, drift)
    _validate_missing(missing)
    state = _load_state(settings)
    if state is not None and state.seed != seed:
        raise ValueError(f"this home was simulated with seed {state.seed}, not {seed}")
    first_day = _first_day(state, days, start)
    dates = [first_day + timedelta(days=i) for i in range(days)]
    fresh = state is None
    if state is None:
        counts = _entity_counts(scale)
        state = _State(
            seed=seed,
            scale=scale,
            entities=counts,
            first_date=first_day,
            last_date=first_day - timedelta(days=1),
            next_order_id=1,
            next_customer_id=counts["customers"] + 1,
            lines_per_day=scale / days,
        )
    state.lines_per_day = scale / days
    world = _world(seed, state.entities)
    result = SimulationResult(dates=dates, files=[], rows=dict.fromkeys(PRODUCTS, 0))
    for i, (day, n_lines) in enumerate(zip(dates, _daily_lines(seed, dates, scale), strict=True)):
        out = _simulate_day(world, state, day, int(n_lines), fresh and i == 0, anomalies, drift)
        _mask(out, missing, seed, day)
        _land(settings, result, day, out, file_format)
        state.next_order_id, state.next_customer_id = out.next_order_id, out.next_customer_id
        state.last_date = day
    if drift is not None:
        _record_drift(settings, drift, dates)
    _save_state(settings, state)  # last: an interrupted call re-runs identically
    return result
