"""Where domains' narrative reports go: Markdown under `MESH_HOME/reports/insights/`."""

from __future__ import annotations

from dagster_project.settings import MeshSettings


def insights_report_uri(settings: MeshSettings, domain: str) -> str:
    return settings.uri("reports", "insights", f"{domain}.md")


def write_insights_report(domain: str, markdown: str, settings: MeshSettings | None = None) -> str:
    """Writes the domain's insights narrative (replacing the last one); returns its URI."""
    settings = settings or MeshSettings()
    uri = insights_report_uri(settings, domain)
    settings.write_text(uri, markdown)
    return uri


def change_sentence(title: str, value: float, previous: float | None, change: float | None) -> str:
    """'Revenue rose 25.0% to 700.00 (from 560.00).': one number and how it moved."""
    if change is None or previous is None:
        return f"{title} was {value:,.2f}, with nothing to compare in the period before."
    verb = "rose" if change > 0 else "fell" if change < 0 else "held"
    return f"{title} {verb} {abs(change):.1f}% to {value:,.2f} (from {previous:,.2f})."
