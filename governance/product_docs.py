"""The `governance/product_docs` product: documentation for every product and column,
as a Delta table, Markdown under MESH_HOME/docs, suggested contract updates to review
(`mesh docs review`) and metadata the Dagster UI shows on each product."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

from dagster_project import (
    AIProvider,
    Contract,
    Lake,
    SemanticLayer,
    SuggestionStore,
    asset_key,
    profile_product,
    suggest,
)
from governance.docs import Documented, document_product, known_names, product_facts


@dataclass
class DocsBuild:
    documented: list[Documented] = field(default_factory=list)
    markdown: dict[str, str] = field(default_factory=dict)
    suggestions: int = 0
    samples_shared: bool = False

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame([row for d in self.documented for row in doc_rows(d)])

    @property
    def coverage(self) -> dict[str, Any]:
        rows = [r for d in self.documented for r in doc_rows(d)]
        columns = [r for r in rows if r["kind"] == "column"]
        described = [r for r in rows if r["description"].strip()]
        return {
            "products_documented": sum(1 for r in rows if r["kind"] == "product"),
            "columns_documented": sum(1 for r in columns if r["description"].strip()),
            "columns_total": len(columns),
            "coverage_pct": round(100 * len(described) / len(rows), 1) if rows else 0.0,
        }


def build_docs(
    contracts: list[Contract],
    lake: Lake,
    provider: AIProvider,
    layer: SemanticLayer,
    lineage: list[tuple[str, str]],
    *,
    share_samples: bool = False,
) -> DocsBuild:
    """Document every product, write the Markdown and refresh the suggestions."""
    known = known_names(contracts, layer)
    store = SuggestionStore(lake.settings)
    build = DocsBuild(samples_shared=share_samples)
    for contract in sorted(contracts, key=lambda c: c.key):
        profile = profile_product(lake, contract, samples=share_samples)
        facts = product_facts(contract, profile, layer, lineage)
        documented = document_product(provider, contract, facts, known)
        build.documented.append(documented)
        markdown = render_markdown(documented)
        build.markdown[contract.key] = markdown
        lake.settings.files.write_text(docs_uri(lake, contract.key), markdown)
        fresh = suggest(contract, proposals(documented), documented.provenance.as_dict())
        build.suggestions += sum(
            1 for s in store.merge(contract.key, fresh) if s.status == "pending"
        )
    lake.settings.files.write_text(lake.settings.uri("docs", "index.md"), render_index(build))
    return build


def docs_uri(lake: Lake, key: str) -> str:
    domain, product = key.split("/")
    return lake.settings.uri("docs", domain, f"{product}.md")


def proposals(documented: Documented) -> dict[str, Any]:
    """What the generated text could add to the contract."""
    gen = documented.generated
    found: dict[str, Any] = {
        "description.usage": gen.usage_notes,
        "description.limitations": gen.caveats,
        "context.questions": gen.example_questions,
    }
    for col in gen.columns:
        found[f"column:{col.name}"] = col.description
    return found


def doc_rows(documented: Documented) -> list[dict[str, Any]]:
    doc, prov, key = documented.doc, documented.provenance, documented.contract.key
    common = {
        "provider": prov.provider,
        "model": prov.model,
        "generated_at": prov.generated_at,
        "inputs_hash": prov.inputs_hash,
        "fallback": prov.fallback,
    }
    rows = [
        {
            "subject": key,
            "product_key": key,
            "column_name": None,
            "kind": "product",
            "description": doc.description,
            "usage_notes": doc.usage_notes,
            "caveats": doc.caveats,
            "example_questions": "\n".join(doc.example_questions),
            "generated_fields": ", ".join(documented.generated_fields[""]),
            **common,
        }
    ]
    for col in doc.columns:
        rows.append(
            {
                "subject": f"{key}.{col.name}",
                "product_key": key,
                "column_name": col.name,
                "kind": "column",
                "description": col.description,
                "usage_notes": col.usage_notes,
                "caveats": col.caveats,
                "example_questions": "\n".join(col.example_questions),
                "generated_fields": ", ".join(documented.generated_fields.get(col.name, [])),
                **common,
            }
        )
    return rows


def _mark(generated: bool) -> str:
    return " *(generated)*" if generated else ""


def render_markdown(documented: Documented) -> str:
    """The product's page: human text as written, generated text marked as such."""
    doc, contract, prov = documented.doc, documented.contract, documented.provenance
    gen = set(documented.generated_fields[""])
    lines = [
        f"# {contract.key}",
        "",
        doc.description + _mark("description" in gen),
        "",
        f"Owner: {contract.owner or '-'} · contract v{contract.version} · primary key: "
        f"{', '.join(contract.primary_key) or '-'}",
        "",
        f"## Usage{_mark('usage_notes' in gen)}",
        "",
        doc.usage_notes or "-",
        "",
        f"## Caveats{_mark('caveats' in gen)}",
        "",
        doc.caveats or "-",
        "",
    ]
    if "usage_notes" not in gen and documented.generated.usage_notes:
        lines += ["## More usage notes *(generated)*", "", documented.generated.usage_notes, ""]
    if "caveats" not in gen and documented.generated.caveats:
        lines += ["## More caveats *(generated)*", "", documented.generated.caveats, ""]
    lines += [f"## Example questions{_mark('example_questions' in gen)}", ""]
    lines += [f"- {q}" for q in doc.example_questions] or ["-"]
    lines += ["", "## Columns", "", "| column | type | description | usage | caveats |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for col, prop in zip(doc.columns, contract.columns, strict=True):
        generated = "description" in documented.generated_fields.get(col.name, [])
        cells = [
            f"`{col.name}`" + (" (PII)" if prop.is_pii else ""),
            prop.logical_type,
            col.description + _mark(generated),
            col.usage_notes,
            col.caveats,
        ]
        lines.append(
            "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"
        )
    lines += [
        "",
        "---",
        "",
        f"*Documentation {prov.label()}. Text marked generated is a "
        "suggestion; the contract's own text is never overwritten.*",
        "",
    ]
    return "\n".join(lines)


def render_index(build: DocsBuild) -> str:
    lines = ["# Data product documentation", ""]
    for documented in build.documented:
        key = documented.contract.key
        domain, product = key.split("/")
        lines.append(f"- [{key}]({domain}/{product}.md): {documented.doc.description}")
    coverage = build.coverage
    lines += [
        "",
        f"{coverage['products_documented']} products, {coverage['columns_documented']} of "
        f"{coverage['columns_total']} columns documented.",
        "",
    ]
    return "\n".join(lines)


def ui_observations(build: DocsBuild) -> list[dg.AssetObservation]:
    """Each product's documentation as an observation on its own asset in the UI."""
    from dagster_project import column_schema

    observations = []
    for documented in build.documented:
        contract, doc = documented.contract, documented.doc
        schema = column_schema(contract)
        described = {c.name: c.description for c in doc.columns}
        columns = [
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=described.get(c.name) or c.description,
                constraints=c.constraints,
                tags=c.tags,
            )
            for c in schema.columns
        ]
        observations.append(
            dg.AssetObservation(
                asset_key=asset_key(contract.key),
                description=doc.description,
                metadata={
                    "docs": dg.MetadataValue.md(build.markdown[contract.key]),
                    "dagster/column_schema": dg.TableSchema(columns=columns),
                    "docs_provider": documented.provenance.label(),
                },
            )
        )
    return observations
