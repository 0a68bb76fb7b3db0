"""Domains' insights: the `insights` product factory, the risks their anomaly and drift
checks raise, and the Markdown narrative under `MESH_HOME/reports/insights/`."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from dagster_project.checks.quality.checks import quality_check_specs
from dagster_project.checks.risks import CheckRisk, check_risks, quality_check_keys
from dagster_project.core.contracts import Contract, load_contracts
from dagster_project.core.settings import MeshSettings
from dagster_project.products.product import Product, ProductRun, Transform, asset_key

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

    return Product("insights", build=build, inputs=inputs, cron=cron)
