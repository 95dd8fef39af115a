"""The demo graph: a deterministic, realistic e-commerce graph with the schema of docs/HELPERS.md.

``generate(seed, scale)`` is pure (one ``random.Random(seed)``, no clock, no I/O): the same seed and
scale always give the same rows. ``build_demo(store, ...)`` writes them with batched
``UNWIND $rows AS r CREATE …`` statements and indexes the ids. At ``scale=1`` (seed 7): 600
customers, 250 products in 12 categories, 20 suppliers, 2,500 orders with 4,891 order lines, 1,174
reviews and 63 referrals: 3,382 nodes and 9,167 relationships, built in well under a second.

Distributions: a few big cities hold most customers; customers' activity is log-normal (some never
order); product popularity is Zipf-like; prices are log-normal around a per-category median; order
dates run 2022-01-01..2025-12-31 with a yearly trend, a November/December peak and busier weekends,
never before the customer joined; recent orders are still pending or shipped; stars depend on a
hidden product quality and reviews only come from buyers; referrers joined before whom they refer.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from agent.core.errors import GraphError, UnknownGraph
from agent.graphdb.base import GraphStore

ORDERS_FROM = date(2022, 1, 1)
ORDERS_TO = date(2025, 12, 31)
JOINED_FROM = date(2019, 1, 1)
JOINED_TO = date(2025, 9, 30)
BATCH = 1000

BASE_COUNTS = {"customers": 600, "products": 250, "suppliers": 20, "orders": 2500}

# city, country, weight: a few big cities, a long tail
CITIES = [
    ("London", "United Kingdom", 14), ("New York", "United States", 12), ("Berlin", "Germany", 10),
    ("Paris", "France", 9), ("Madrid", "Spain", 6), ("Toronto", "Canada", 5), ("Sydney", "Australia", 5),
    ("Chicago", "United States", 5), ("Munich", "Germany", 4), ("Amsterdam", "Netherlands", 4),
    ("Milan", "Italy", 4), ("Manchester", "United Kingdom", 3), ("Lyon", "France", 3),
    ("Barcelona", "Spain", 3), ("Hamburg", "Germany", 3), ("Rome", "Italy", 3), ("Vienna", "Austria", 2),
    ("Zurich", "Switzerland", 2), ("Dublin", "Ireland", 2), ("Stockholm", "Sweden", 2),
    ("Copenhagen", "Denmark", 2), ("Lisbon", "Portugal", 2), ("Warsaw", "Poland", 2),
    ("Austin", "United States", 2), ("Seattle", "United States", 2), ("Melbourne", "Australia", 2),
    ("Vancouver", "Canada", 2), ("Brussels", "Belgium", 1), ("Oslo", "Norway", 1),
    ("Prague", "Czech Republic", 1), ("Edinburgh", "United Kingdom", 1), ("Cologne", "Germany", 1),
    ("Marseille", "France", 1), ("Valencia", "Spain", 1), ("Porto", "Portugal", 1),
    ("Boston", "United States", 1),
]
SEGMENTS = [("Consumer", 62), ("Corporate", 26), ("Home Office", 12)]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Alice Bob Claire David Emma Felix Grace Hugo Isabel Jonas Karin Liam Mia Noah Olivia Paul Quinn Rosa "
    "Sam Tara Uma Victor Wendy Xavier Yara Zoe Anna Ben Chloe Daniel Elena Finn Greta Henry Ines Jack Lena "
    "Marco Nina Oscar Pia Rafael Sofia Tom Ulla Vera Will Amir Bianca Carlos Dana Emil Fatima Georg Hana "
    "Ivan Julia Kenji Laura Mateo Nora Omar Priya Ruben Sara Theo Leo Eva Lucas Maya Ethan Aisha Jan Lea"
)
LAST_NAMES = _words(
    "Meyer Schmidt Dubois Martin Wilson Brown Garcia Rossi Novak Jensen Weber Smith Johnson Williams Jones "
    "Miller Davis Lopez Gonzalez Fischer Wagner Becker Moreau Laurent Bernard Fernandez Ruiz Romano Ricci "
    "Colombo Bianchi Kowalski Nowak Larsen Hansen Nielsen Andersson Johansson Murphy Kelly Walsh Taylor "
    "Clark Lewis Walker Hall Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts "
    "Carter Phillips Evans Turner Silva Santos Costa Pereira Tanaka Sato Kim Lee Chen Wang Singh Patel Khan "
    "Ali Cohen Levi"
)

# category: (weight in the catalogue, median price, log-normal sigma of the price, adjectives, nouns)
CATEGORIES: dict[str, tuple[int, float, float, tuple[str, ...], tuple[str, ...]]] = {
    "Electronics": (30, 95.0, 0.8, ("Wireless", "Smart", "Compact", "Portable", "Pro", "Premium"),
                    ("Headphones", "Speaker", "Smartwatch", "Charger", "USB-C Hub", "Webcam", "Soundbar",
                     "E-Reader", "Action Camera", "Power Bank", "Earbuds", "Projector")),
    "Computers": (14, 620.0, 0.55, ("Pro", "Air", "Ultra", "Studio", "Gaming", "Slim"),
                  ("Laptop", "Desktop", "Monitor", "Tablet", "Mechanical Keyboard", "Docking Station",
                   "SSD 2TB")),
    "Phones": (14, 430.0, 0.55, ("Pro", "Max", "Lite", "Mini", "Plus", "Neo"),
               ("Smartphone", "Flip Phone", "Rugged Phone", "Phone Case", "Screen Protector")),
    "Books": (35, 15.0, 0.4, ("Silent", "Hidden", "Last", "Golden", "Broken", "Midnight", "Northern", "Lost",
                              "Secret"),
              ("Harbor", "Garden", "Empire", "Letters", "River", "Algorithm", "Kingdom", "Orchard",
               "Detective", "Summer")),
    "Home": (25, 45.0, 0.8, ("Linen", "Oak", "Cozy", "Nordic", "Ceramic", "Velvet", "Bamboo"),
             ("Throw", "Lamp", "Cushion", "Rug", "Mirror", "Shelf", "Vase", "Curtains", "Armchair")),
    "Kitchen": (20, 35.0, 0.75, ("Cast Iron", "Stainless", "Nonstick", "Electric", "Glass", "Copper"),
                ("Skillet", "Kettle", "Knife Set", "Blender", "Coffee Grinder", "Dutch Oven", "Toaster",
                 "Espresso Machine")),
    "Garden": (14, 38.0, 0.8, ("Solar", "Folding", "Heavy-Duty", "Cedar", "Self-Watering"),
               ("Planter", "Hose", "Lantern", "Bench", "Pruner", "Bird Feeder", "Lawn Mower")),
    "Sports": (22, 48.0, 0.8, ("Trail", "Pro", "Ultralight", "Adjustable", "Carbon", "Insulated"),
               ("Running Shoes", "Yoga Mat", "Dumbbells", "Tent", "Bike Helmet", "Water Bottle", "Backpack",
                "Tennis Racket")),
    "Toys": (18, 24.0, 0.6, ("Wooden", "Magnetic", "Rainbow", "Junior", "Deluxe"),
             ("Building Blocks", "Puzzle", "Train Set", "Plush Bear", "Board Game", "Kite", "Robot Kit")),
    "Beauty": (18, 17.0, 0.5, ("Organic", "Hydrating", "Vitamin C", "Gentle", "Matte"),
               ("Face Cream", "Serum", "Shampoo", "Lip Balm", "Sunscreen", "Body Lotion")),
    "Clothing": (25, 39.0, 0.6, ("Merino", "Classic", "Waterproof", "Slim-Fit", "Organic Cotton", "Quilted"),
                 ("Sweater", "Jacket", "T-Shirt", "Jeans", "Scarf", "Raincoat", "Hoodie", "Socks 3-Pack")),
    "Office": (15, 19.0, 0.7, ("Ergonomic", "Recycled", "Premium", "Compact", "Magnetic"),
               ("Notebook", "Desk Organizer", "Fountain Pen", "Desk Lamp", "Office Chair", "Whiteboard",
                "Stapler")),
}
SUPPLIER_COUNTRIES = [
    ("China", 5), ("Germany", 3), ("United States", 3), ("Taiwan", 2), ("Vietnam", 1), ("India", 1),
    ("Italy", 1), ("United Kingdom", 1), ("Japan", 1), ("Poland", 1), ("Mexico", 1), ("Portugal", 1),
]
SUPPLIER_WORDS = _words(
    "Northwind Bluepeak Harbor Evergreen Summit Redwood Silverline Brightway Oakridge Pacific Atlas Meridian "
    "Lakeside Crescent Granite Sunrise Polaris Keystone Riverbend Ironwood Cobalt Juniper Falcon Maple"
)
SUPPLIER_KINDS = ("Trading", "Supply Co.", "Goods", "Distribution", "Imports", "Manufacturing", "Wholesale",
                  "Ltd")
REVIEW_TEXTS = {
    5: ("Excellent, exactly as described.", "Love it!", "Great value for money.", "Would buy again.",
        "Five stars, fast delivery.", "Better than expected.", "Perfect gift.", "Top quality."),
    4: ("Very good, minor flaws.", "Does the job well.", "Good quality for the price.", "Happy with it.",
        "Nice, but delivery was slow.", "Solid purchase."),
    3: ("It's okay.", "Average quality.", "Fine, nothing special.", "Mixed feelings.",
        "Works, but feels cheap."),
    2: ("Disappointing.", "Not as pictured.", "Broke after a few weeks.", "Would not buy again."),
    1: ("Terrible, returned it.", "Arrived damaged.", "Waste of money.", "Stopped working after two days."),
}
CATEGORY_REVIEW_TEXTS = {
    "Books": {5: ("Could not put it down.", "A beautiful story."), 3: ("Predictable ending.",),
              1: ("Could not finish it.",)},
    "Electronics": {5: ("Sound is amazing.", "Battery lasts for days."), 2: ("Battery drains fast.",)},
    "Clothing": {5: ("Fits perfectly.", "Comfortable from day one."), 2: ("Runs small.",)},
    "Kitchen": {5: ("Makes cooking a joy.",), 3: ("Hard to clean.",)},
}
LINES_PER_ORDER = ([1, 2, 3, 4, 5], [45, 28, 15, 8, 4])
QUANTITIES = ([1, 2, 3, 4, 5], [70, 18, 7, 3, 2])
MONTH_SEASON = {1: 0.8, 2: 0.75, 3: 0.9, 4: 0.9, 5: 0.95, 6: 0.95, 7: 0.9, 8: 0.9, 9: 1.0, 10: 1.05,
                11: 1.5, 12: 1.7}


@dataclass
class DemoData:
    """Rows for every label and relationship type (plain dicts, ready for ``UNWIND $rows``)."""

    categories: list[dict[str, Any]] = field(default_factory=list)
    suppliers: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)  # with "customer_id" (PLACED)
    in_category: list[dict[str, Any]] = field(default_factory=list)
    supplies: list[dict[str, Any]] = field(default_factory=list)
    contains: list[dict[str, Any]] = field(default_factory=list)
    reviewed: list[dict[str, Any]] = field(default_factory=list)
    referred: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        labels = {"Category": len(self.categories), "Customer": len(self.customers),
                  "Order": len(self.orders), "Product": len(self.products), "Supplier": len(self.suppliers)}
        types = {"CONTAINS": len(self.contains), "IN_CATEGORY": len(self.in_category),
                 "PLACED": len(self.orders), "REFERRED": len(self.referred), "REVIEWED": len(self.reviewed),
                 "SUPPLIES": len(self.supplies)}
        return {"nodes": sum(labels.values()), "relationships": sum(types.values()), "labels": labels,
                "types": types}


def _iso(d: date) -> str:
    return d.isoformat()


def _weighted(rng: random.Random, items: list[Any], weights: list[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def _split(total: int, weights: list[int], minimum: int) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder), each part at least ``minimum``."""
    base = [minimum] * len(weights)
    rest = total - minimum * len(weights)
    if rest <= 0:
        return [1 if i < total else 0 for i in range(len(weights))]
    raw = [rest * w / sum(weights) for w in weights]
    parts = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)[: rest - sum(parts)]:
        parts[i] += 1
    return [b + p for b, p in zip(base, parts, strict=True)]


def _price(rng: random.Random, median: float, sigma: float) -> float:
    p = rng.lognormvariate(math.log(median), sigma)
    if p < 10:
        return round(max(1.0, math.floor(p)) + 0.99, 2)
    if rng.random() < 0.2:
        return float(round(p / 5) * 5 or 5)
    return round(math.floor(p) + 0.99, 2)


class _DaySampler:
    """Order days 2022-01-01..2025-12-31 weighted by trend, season and weekday; sampled from a start day."""

    def __init__(self) -> None:
        self.days = [ORDERS_FROM + timedelta(n) for n in range((ORDERS_TO - ORDERS_FROM).days + 1)]
        cum, total = [], 0.0
        for d in self.days:
            weekend = 1.15 if d.weekday() >= 5 else 1.0
            w = (1 + 0.12 * (d.year - ORDERS_FROM.year)) * MONTH_SEASON[d.month] * weekend
            if d.month == 11 and 22 <= d.day <= 30:  # the Black Friday week
                w *= 1.5
            total += w
            cum.append(total)
        self.cum = cum

    def sample(self, rng: random.Random, not_before: date) -> date:
        i0 = max(0, (not_before - ORDERS_FROM).days)
        lo = self.cum[i0 - 1] if i0 else 0.0
        x = lo + rng.random() * (self.cum[-1] - lo)
        return self.days[min(bisect.bisect_left(self.cum, x), len(self.days) - 1)]


def generate(seed: int = 7, scale: float = 1.0) -> DemoData:
    """All rows of the demo graph; pure and deterministic in ``(seed, scale)``.

    One ``random.Random(seed)`` feeds every step in this order (changing the order changes the graph):
    suppliers, products, customers, orders with their lines, reviews, referrals.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    rng = random.Random(seed)
    n = {k: max(2, round(v * scale)) for k, v in BASE_COUNTS.items()}
    data = DemoData(categories=[{"name": c} for c in CATEGORIES])
    supplier_focus = _suppliers(rng, n["suppliers"], data)
    catalogue = _products(rng, n["products"], supplier_focus, data)
    activity = _customers(rng, n["customers"], data)
    first_purchase = _orders(rng, n["orders"], activity, catalogue, data)
    _reviews(rng, first_purchase, catalogue, data)
    _referrals(rng, data)
    return data


@dataclass
class _Catalogue:
    """What the later steps need to know about the products."""

    category: dict[str, str]
    quality: dict[str, float]  # hidden: drives the stars of reviews
    popularity: list[float]  # order-line weights, aligned with ids
    ids: list[str]
    price: dict[str, float]


def _suppliers(rng: random.Random, count: int, data: DemoData) -> dict[str, list[str]]:
    """Suppliers, each focused on one to three categories; returns supplier id → its categories."""
    words = list(itertools.product(SUPPLIER_WORDS, SUPPLIER_KINDS))
    rng.shuffle(words)
    focus: dict[str, list[str]] = {}
    for i in range(count):
        sid = f"S{i + 1:02d}"
        country = _weighted(rng, [c for c, _ in SUPPLIER_COUNTRIES], [w for _, w in SUPPLIER_COUNTRIES])
        data.suppliers.append(
            {"supplier_id": sid, "name": f"{words[i][0]} {words[i][1]}", "country": country}
        )
        focus[sid] = rng.sample(list(CATEGORIES), k=rng.choice([1, 1, 2, 3]))
    return focus


def _product_name(rng: random.Random, cat: str, seen: set[str]) -> str:
    """A name from the category's words, unique in the catalogue ("Smart Smartwatch" is avoided)."""
    _, _, _, adjectives, nouns = CATEGORIES[cat]
    for attempt in itertools.count():
        if cat == "Books":
            name = f"The {rng.choice(adjectives)} {rng.choice(nouns)}"
        else:
            name = f"{rng.choice(adjectives)} {rng.choice(nouns)}"
        if (
            any(w.lower() in name.lower().split(" ", 2)[-1].lower() for w in name.split(" ")[:1])
            and cat != "Books"
        ):
            continue
        if attempt:
            name += f" {attempt + 1}" if cat == "Books" else f" {rng.choice(['II', 'S', 'X', 'Go', 'Max'])}"
        if name not in seen:
            return name
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count() never ends


def _products(
    rng: random.Random, count: int, supplier_focus: dict[str, list[str]], data: DemoData
) -> _Catalogue:
    """Products per category (log-normal prices, hidden quality), their category and suppliers."""
    cat_names = list(CATEGORIES)
    sizes = _split(count, [CATEGORIES[c][0] for c in cat_names], minimum=1 if count >= len(cat_names) else 0)
    seen_names: set[str] = set()
    category: dict[str, str] = {}
    quality: dict[str, float] = {}
    pid = 0
    for cat, size in zip(cat_names, sizes, strict=True):
        _, median, sigma, _, _ = CATEGORIES[cat]
        for _ in range(size):
            pid += 1
            product_id = f"P{pid:04d}"
            name = _product_name(rng, cat, seen_names)
            seen_names.add(name)
            stock = 0 if rng.random() < 0.05 else max(1, int(rng.lognormvariate(math.log(40), 1.0)))
            data.products.append({"product_id": product_id, "name": name, "price": _price(rng, median, sigma),
                                  "stock": stock})
            category[product_id] = cat
            quality[product_id] = min(4.9, max(2.0, rng.gauss(4.2, 0.5)))
            data.in_category.append({"product_id": product_id, "category": cat})
            focused = [s for s, cats in supplier_focus.items() if cat in cats] or list(supplier_focus)
            chosen = [rng.choice(focused)]
            if rng.random() < 0.15 and len(supplier_focus) > 1:
                other = rng.choice([s for s in supplier_focus if s != chosen[0]])
                chosen.append(other)
            data.supplies += [{"supplier_id": s, "product_id": product_id} for s in chosen]
    popularity_rank = list(range(1, len(data.products) + 1))
    rng.shuffle(popularity_rank)
    return _Catalogue(category=category, quality=quality, popularity=[1.0 / r**0.8 for r in popularity_rank],
                      ids=[p["product_id"] for p in data.products],
                      price={p["product_id"]: p["price"] for p in data.products})


def _customers(rng: random.Random, count: int, data: DemoData) -> list[float]:
    """Customers in a few big cities and a long tail; returns each one's (log-normal) ordering activity."""
    join_days = (JOINED_TO - JOINED_FROM).days
    emails: set[str] = set()
    activity = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, country, _ = _weighted(rng, CITIES, [w for *_, w in CITIES])
        joined = JOINED_FROM + timedelta(int(join_days * rng.random()))
        base = f"{first}.{last}".lower()
        email = f"{base}@example.com"
        k = 2
        while email in emails:
            email, k = f"{base}{k}@example.com", k + 1
        emails.add(email)
        data.customers.append({
            "customer_id": f"C{i + 1:04d}", "name": f"{first} {last}", "email": email, "city": city,
            "country": country, "segment": _weighted(rng, [s for s, _ in SEGMENTS], [w for _, w in SEGMENTS]),
            "joined": _iso(joined),
        })
        window = (ORDERS_TO - max(joined, ORDERS_FROM)).days / (ORDERS_TO - ORDERS_FROM).days
        activity.append(0.0 if rng.random() < 0.06 else rng.lognormvariate(0.0, 0.8) * window)
    return activity


def _order_status(rng: random.Random, day: date) -> str:
    """Recent orders are still pending or shipped; older ones mostly delivered."""
    age = (ORDERS_TO - day).days
    if age < 7:
        return _weighted(rng, ["pending", "shipped"], [60, 40])
    if age < 21:
        return _weighted(rng, ["shipped", "delivered", "cancelled"], [45, 50, 5])
    return _weighted(rng, ["delivered", "cancelled", "returned"], [91, 5, 4])


def _orders(rng: random.Random, count: int, activity: list[float], catalogue: _Catalogue,
            data: DemoData) -> dict[tuple[str, str], date]:
    """Orders and their lines, never before the customer joined.

    Returns (customer, product) → the first delivery day."""
    days = _DaySampler()
    joined_of = {c["customer_id"]: date.fromisoformat(c["joined"]) for c in data.customers}
    buyers = rng.choices([c["customer_id"] for c in data.customers], weights=activity, k=count)
    placed = sorted(((days.sample(rng, joined_of[c]), c) for c in buyers), key=lambda x: (x[0], x[1]))
    first_purchase: dict[tuple[str, str], date] = {}
    for i, (day, cid) in enumerate(placed):
        order_id = f"O{i + 1:05d}"
        status = _order_status(rng, day)
        k = min(_weighted(rng, *LINES_PER_ORDER), len(catalogue.ids))
        chosen: list[str] = []
        while len(chosen) < k:
            p = rng.choices(catalogue.ids, weights=catalogue.popularity, k=1)[0]
            if p not in chosen:
                chosen.append(p)
        total = 0.0
        for p in chosen:
            quantity = _weighted(rng, *QUANTITIES)
            unit_price = catalogue.price[p]
            if rng.random() < 0.12:  # a discount
                unit_price = round(unit_price * (1 - rng.choice([0.05, 0.1, 0.15, 0.2, 0.25])), 2)
            total += quantity * unit_price
            data.contains.append(
                {"order_id": order_id, "product_id": p, "quantity": quantity, "unit_price": unit_price}
            )
            if status == "delivered":
                first_purchase.setdefault((cid, p), day)
        data.orders.append(
            {
                "order_id": order_id,
                "date": _iso(day),
                "status": status,
                "total": round(total, 2),
                "customer_id": cid,
            }
        )
    return first_purchase


def _reviews(rng: random.Random, first_purchase: dict[tuple[str, str], date], catalogue: _Catalogue,
             data: DemoData) -> None:
    """Reviews only from buyers, after delivery, with stars around the product's hidden quality; product
    ratings."""
    stars_of: dict[str, list[int]] = {}
    for (cid, p), day in sorted(first_purchase.items(), key=lambda x: (x[1], x[0])):
        if rng.random() >= 0.3:
            continue
        stars = min(5, max(1, round(rng.gauss(catalogue.quality[p], 0.9))))
        texts = REVIEW_TEXTS[stars] + CATEGORY_REVIEW_TEXTS.get(catalogue.category[p], {}).get(stars, ())
        when = min(ORDERS_TO, day + timedelta(rng.randint(3, 45)))
        data.reviewed.append({"customer_id": cid, "product_id": p, "stars": stars, "text": rng.choice(texts),
                              "date": _iso(when)})
        stars_of.setdefault(p, []).append(stars)
    for prod in data.products:
        got = stars_of.get(prod["product_id"])
        if got:
            prod["rating"] = round(sum(got) / len(got), 1)


def _referrals(rng: random.Random, data: DemoData) -> None:
    """Referrals from an earlier customer, a few prolific referrers."""
    by_join = sorted(data.customers, key=lambda c: (c["joined"], c["customer_id"]))
    ranked = rng.sample(data.customers, len(data.customers))
    influence = {c["customer_id"]: 1.0 / r**0.8 for r, c in enumerate(ranked, 1)}
    for idx, c in enumerate(by_join[1:], start=1):
        if rng.random() < 0.12:
            earlier = [e["customer_id"] for e in by_join[:idx] if e["joined"] < c["joined"]]
            if earlier:
                ref = rng.choices(earlier, weights=[influence[e] for e in earlier], k=1)[0]
                data.referred.append({"from": ref, "to": c["customer_id"]})


# --- writing ------------------------------------------------------------------------------------
INDEXES = [
    ("Customer", "customer_id"),
    ("Product", "product_id"),
    ("Order", "order_id"),
    ("Supplier", "supplier_id"),
    ("Category", "name"),
]
NODE_STATEMENTS = [
    ("categories", "UNWIND $rows AS r CREATE (n:Category) SET n = r"),
    ("suppliers", "UNWIND $rows AS r CREATE (n:Supplier) SET n = r"),
    ("products", "UNWIND $rows AS r CREATE (n:Product) SET n = r"),
    ("customers", "UNWIND $rows AS r CREATE (n:Customer) SET n = r"),
]
REL_STATEMENTS = [
    (
        "orders",
        "UNWIND $rows AS r MATCH (c:Customer {customer_id: r.customer_id}) "
        "CREATE (c)-[:PLACED]->(:Order {order_id: r.order_id, date: r.date, status: r.status, total: "
        "r.total})",
    ),
    (
        "in_category",
        "UNWIND $rows AS r MATCH (p:Product {product_id: r.product_id}), (c:Category {name: r.category}) "
        "CREATE (p)-[:IN_CATEGORY]->(c)",
    ),
    (
        "supplies",
        "UNWIND $rows AS r MATCH (s:Supplier {supplier_id: r.supplier_id}), (p:Product {product_id: "
        "r.product_id}) "
        "CREATE (s)-[:SUPPLIES]->(p)",
    ),
    (
        "contains",
        "UNWIND $rows AS r MATCH (o:Order {order_id: r.order_id}), (p:Product {product_id: r.product_id}) "
        "CREATE (o)-[:CONTAINS {quantity: r.quantity, unit_price: r.unit_price}]->(p)",
    ),
    (
        "reviewed",
        "UNWIND $rows AS r MATCH (c:Customer {customer_id: r.customer_id}), (p:Product {product_id: "
        "r.product_id}) "
        "CREATE (c)-[:REVIEWED {stars: r.stars, text: r.text, date: r.date}]->(p)",
    ),
    (
        "referred",
        "UNWIND $rows AS r MATCH (a:Customer {customer_id: r.`from`}), (b:Customer {customer_id: r.to}) "
        "CREATE (a)-[:REFERRED]->(b)",
    ),
]


def node_count(store: GraphStore) -> int:
    """Nodes in the graph (0 when it does not exist yet)."""
    try:
        return sum(store.stats()["nodes"].values())
    except UnknownGraph:
        return 0


def build_demo(
    store: GraphStore, seed: int = 7, scale: float = 1.0, *, replace: bool = False
) -> dict[str, Any]:
    """Write the demo graph into ``store``; returns ``{"nodes", "relationships", "labels", "types"}``.

    Refuses a non-empty graph unless ``replace`` (which deletes it first).
    """
    existing = node_count(store)
    if existing and not replace:
        raise GraphError(
            f"graph {store.name!r} is not empty ({existing} nodes); rebuild it with replace=True (demo init "
            "--force)"
        )
    if existing:
        store.delete_graph()
    data = generate(seed, scale)
    for label, prop in INDEXES:
        try:
            store.write(f"CREATE INDEX FOR (n:{label}) ON (n.{prop})")
        except GraphError as e:  # an index left on an emptied graph is fine
            if "already" not in str(e).lower():
                raise
    for attr, cypher in NODE_STATEMENTS + REL_STATEMENTS:
        rows = getattr(data, attr)
        for i in range(0, len(rows), BATCH):
            store.write(cypher, {"rows": rows[i : i + BATCH]})
    return data.counts()
