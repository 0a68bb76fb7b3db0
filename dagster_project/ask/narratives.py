"""Domains' insights: the `insights` product factories (a domain's own transform, or
`semantic_insights` from its semantic layer alone), the risks their anomaly and drift
checks raise, and the Markdown narrative under `MESH_HOME/reports/insights/`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from dagster_project.ask.insights import PERIOD_DAYS, DomainFacts, domain_facts
from dagster_project.ask.semantic_sql import run_query
from dagster_project.ask.values import shown
from dagster_project.checks.quality.checks import quality_check_specs
from dagster_project.checks.risks import CheckRisk, check_risks, quality_check_keys
from dagster_project.core.contracts import Contract, load_contracts
from dagster_project.core.settings import MeshSettings
from dagster_project.core.yamlfile import load_yaml
from dagster_project.metadata.semantics import (
    InsightsSpec,
    SemanticLayer,
    load_semantic_layer,
    parse_semantics,
)
from dagster_project.products.product import Product, ProductRun, Transform, asset_key
from dagster_project.products.sql import RESOURCE as DUCKDB

RISK_HEADING = "## Data quality warnings"


def insights_report_uri(settings: MeshSettings, domain: str) -> str:
    return settings.uri("reports", "insights", f"{domain}.md")


def write_insights_report(domain: str, markdown: str, settings: MeshSettings | None = None) -> str:
    """Writes the domain's insights narrative (replacing the last one); returns its URI."""
    settings = settings or MeshSettings()
    uri = insights_report_uri(settings, domain)
    settings.files.write_text(uri, markdown)
    return uri


def change_sentence(
    title: str, value: float, previous: float | None, change: float | None, *, decimals: int = 2
) -> str:
    """'Revenue rose 25.0% to 700.00 (from 560.00).': one number and how it moved
    (`decimals=0` for counts: 'Customer count fell 50.0% to 1 (from 2).')."""
    if change is None or previous is None:
        return f"{title} was {value:,.{decimals}f}, with nothing to compare in the period before."
    verb = "rose" if change > 0 else "fell" if change < 0 else "held"
    moved = f"{abs(change):.1f}% to {value:,.{decimals}f} (from {previous:,.{decimals}f})"
    return f"{title} {verb} {moved}."


@dataclass(frozen=True)
class InsightsRun:
    """What an insights transform gets besides its inputs (keyword `run`): the mesh home
    to write its Markdown to and the domain's anomaly and drift checks warning now."""

    domain: str
    settings: MeshSettings
    check_risks: list[CheckRisk] = field(default_factory=list)

    def report(self, frame: pl.DataFrame, markdown: str) -> pl.DataFrame:
        """Adds a `risk` row per check warning to `frame` (the contract's columns) and a
        section to `markdown`, writes reports/insights/<domain>.md, returns the rows."""
        texts = [r.narrative for r in self.check_risks] or ["None."]
        section = "\n".join([RISK_HEADING, "", *(f"- {t}" for t in texts), ""])
        write_insights_report(self.domain, f"{markdown.rstrip()}\n\n{section}", self.settings)
        if not self.check_risks:
            return frame
        period = frame.select("period_start", "period_end").row(0, named=True)
        risks = pl.DataFrame(
            [
                dict(
                    kind="risk",
                    subject=r.subject,
                    metric=r.metric,
                    **period,
                    value=r.value,
                    previous_value=None,
                    change_pct=None,
                    narrative=r.narrative,
                )
                for r in self.check_risks
            ],
            schema=frame.schema,
        )
        return pl.concat([frame, risks])


def domain_check_keys(contract: Contract) -> list[dg.AssetCheckKey]:
    """The anomaly and drift checks the contracts beside `contract` (its domain's) switch
    on: the contracts say which checks exist, whatever else the run's job holds."""
    if contract.path is None:
        return []
    siblings = load_contracts(contract.path.parent).values()
    specs = [s for c in siblings for s in quality_check_specs(c, asset_key(c.key))]
    return quality_check_keys([s.key for s in specs], contract.domain)


def insights(transform: Transform, *inputs: str, cron: str | None = None) -> Product:
    """The domain's `insights` product (contract `insights.odcs.yaml`): `transform(*inputs,
    run=InsightsRun)` returns what changed as rows and ends with `run.report(...)`; the run
    carries the domain's check outcomes from the instance and the mesh home to report to."""

    def build(run: ProductRun) -> pl.DataFrame:
        risks = check_risks(run.context.instance, domain_check_keys(run.contract))
        frames = [run.scan(key) for key in inputs]
        result = transform(*frames, run=InsightsRun(run.contract.domain, run.lake.settings, risks))
        return result.collect() if isinstance(result, pl.LazyFrame) else result

    return Product("insights", build=build, inputs=inputs, cron=cron, resources=(DUCKDB,))


# -- insights from the semantic layer alone -------------------------------------------------
INSIGHT_COLUMNS = (
    "kind", "subject", "metric", "period_start", "period_end", "value", "previous_value",
    "change_pct", "narrative",
)  # fmt: skip


def _spec_and_inputs(semantics: Path) -> tuple[InsightsSpec, tuple[str, ...]]:
    """The domain's insights spec and the products its metrics and dimensions live in."""
    doc = load_yaml(semantics.read_text()) or {}
    domain = str(doc.get("domain") or semantics.parent.name)
    contracts = load_contracts(semantics.parent / "contracts").values()
    layer = parse_semantics([(str(semantics), doc)], contracts)
    spec = layer.insights_spec(domain)
    if not spec.headline and not spec.lowest:
        raise ValueError(f"{semantics}: no metric over a time dimension to report insights of")
    products = {layer.metrics[m].product for m in spec.metrics if m in layer.metrics}
    for dimension in spec.movers:
        try:
            owner, _ = layer.resolve_dimension(dimension, layer.metrics[spec.mover_metric].product)
            products.add(owner.product)
        except KeyError:  # a dimension of another domain: resolved when the product runs
            pass
    return spec, tuple(sorted(products))


def semantic_insights(semantics: Path | str, *, cron: str | None = None) -> Product:
    """The domain's `insights` product (contract `insights.odcs.yaml`) computed from its
    semantic layer alone, with no transform of its own: the `insights` section of
    `semantics` (or its defaults) says which metrics and dimensions to compare."""
    spec, inputs = _spec_and_inputs(Path(semantics))

    def build(run: ProductRun) -> pl.DataFrame:
        layer = load_semantic_layer()
        duckdb = run.resource(DUCKDB)  # the location's DuckDBResource
        facts = domain_facts(lambda q: run_query(layer, run.lake, q, duckdb).rows(), layer, spec)
        if facts.current is None:
            raise ValueError(f"{spec.domain}: no dated rows yet, nothing to compare")
        risks = check_risks(run.context.instance, domain_check_keys(run.contract))
        insights_run = InsightsRun(run.contract.domain, run.lake.settings, risks)
        frame = insight_rows(facts, layer)
        return insights_run.report(frame, insights_markdown(facts, frame))

    return Product("insights", build=build, inputs=inputs, cron=cron, resources=(DUCKDB,))


def insight_rows(facts: DomainFacts, layer: SemanticLayer) -> pl.DataFrame:
    """Headline and mover rows in the insights contract's columns, each with its sentence."""
    rows = []
    for h in facts.headline:
        rows.append(("headline", "all", h["metric"], h["after"], h["before"], h["change"]))
    for m in facts.movers:
        rows.append(
            ("mover", f"{m['dimension']}={shown(m['value'])}", m["metric"], m["after"], m["before"],
             m["change"])
        )  # fmt: skip
    records = []
    for kind, subject, metric, value, previous, change in rows:
        title = layer.metrics[metric].title
        decimals = 0 if layer.metrics[metric].agg in ("count", "count_distinct") else 2
        if kind == "mover":
            title = f"{title} in {subject.replace('=', ' ')}"
        pct = round(change * 100, 1) if change is not None else None
        value, previous = float(value or 0), float(previous or 0)
        records.append(
            dict(kind=kind, subject=subject, metric=metric, period_start=facts.current[0],
                 period_end=facts.current[1], value=round(value, 2),
                 previous_value=round(previous, 2), change_pct=pct,
                 narrative=change_sentence(title, value, previous, pct,
                                           decimals=decimals))
        )  # fmt: skip
    return pl.DataFrame(records).select(INSIGHT_COLUMNS)


def insights_markdown(facts: DomainFacts, frame: pl.DataFrame) -> str:
    title = facts.spec.domain.replace("_", " ").capitalize()
    return what_changed(title, frame, *facts.current)


def what_changed(title: str, frame: pl.DataFrame, start: date, end: date) -> str:
    """'# Sales: what changed', the period, then the headline and mover rows' sentences."""
    lines = [
        f"# {title}: what changed",
        "",
        f"The last {PERIOD_DAYS} days ({start} to {end}) against the {PERIOD_DAYS} days before.",
        "",
    ]
    for kind, heading in (("headline", "## Headline"), ("mover", "## Top movers")):
        texts = frame.filter(pl.col("kind") == kind)["narrative"].to_list()
        lines += [heading, "", *(f"- {t}" for t in texts or ["Nothing moved."]), ""]
    return "\n".join(lines)
