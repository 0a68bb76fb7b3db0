"""Generative metadata assets: product docs, the semantic index and the knowledge graph.

Each is a governance data product with its own contract, written through `publish()`;
the AI provider comes from the `ai` resource (offline unless OpenAI is configured) and
its token usage lands in the materialization's metadata.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from dagster_project import MeshResource, asset_key, load_contract
from dagster_project.ai import AIResource
from dagster_project.core.workspace import discover_contracts
from dagster_project.metadata.lineage import product_lineage
from dagster_project.metadata.semantics import SemanticLayer, load_semantic_layer
from dagster_project.products.builder import product_asset_kwargs, publish
from governance.knowledge_graph import build_graph, edges_frame, write_reports
from governance.product_docs import build_docs, ui_observations
from governance.semantic_index import build_index

CONTRACTS = Path(__file__).parent / "contracts"
OWN = {
    name: load_contract(CONTRACTS / f"{name}.odcs.yaml")
    for name in ("product_docs", "semantic_index", "knowledge_graph")
}


def _kwargs(name: str, deps: Sequence[dg.AssetKey]) -> dict:
    kwargs = product_asset_kwargs(OWN[name])
    return {**kwargs, "kinds": {"delta", "polars", "ai"}, "deps": list(deps)}


def _layer() -> tuple[list, SemanticLayer]:
    contracts = discover_contracts()
    return contracts, load_semantic_layer(contracts=contracts)


def generative_assets(product_keys: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The three assets, over the given domain products (their inputs in the graph)."""

    @dg.asset(**_kwargs("product_docs", product_keys))
    def product_docs(
        context: dg.AssetExecutionContext, mesh: MeshResource, ai: AIResource
    ) -> dg.MaterializeResult:
        contracts, layer = _layer()
        provider = ai.get_provider(log=context.log)
        build = build_docs(
            contracts,
            mesh.lake,
            provider,
            layer,
            product_lineage(),
            share_samples=ai.samples_allowed,
        )
        for observation in ui_observations(build):
            context.log_event(observation)
        coverage = build.coverage
        context.log.info(
            f"documented {coverage['products_documented']} products and "
            f"{coverage['columns_documented']}/{coverage['columns_total']} columns; "
            f"{build.suggestions} suggestion(s) pending review (`mesh docs review`)"
        )
        extra = {
            **coverage,
            "suggestions_pending": build.suggestions,
            "sample_values_shared": build.samples_shared,
            "docs_folder": dg.MetadataValue.path(mesh.settings.uri("docs")),
            **provider.usage_metadata(),
            **{f"docs/{key}": dg.MetadataValue.md(md) for key, md in build.markdown.items()},
        }
        return publish(context, mesh.lake, OWN["product_docs"], build.frame(), extra=extra)

    @dg.asset(**_kwargs("semantic_index", [asset_key("governance/product_docs")]))
    def semantic_index(
        context: dg.AssetExecutionContext, mesh: MeshResource, ai: AIResource
    ) -> dg.MaterializeResult:
        contracts, layer = _layer()
        provider = ai.get_provider(log=context.log)
        frame, summary = build_index(contracts, layer, provider, mesh.settings)
        extra = {
            "entries": summary["entries"],
            "vector_model": summary["vector_model"],
            "by_kind": dg.MetadataValue.json(summary["by_kind"]),
            "sample_searches": dg.MetadataValue.json(summary["sample_searches"]),
            **provider.usage_metadata(),
        }
        return publish(context, mesh.lake, OWN["semantic_index"], frame, extra=extra)

    @dg.asset(**_kwargs("knowledge_graph", product_keys))
    def knowledge_graph(
        context: dg.AssetExecutionContext, mesh: MeshResource
    ) -> dg.MaterializeResult:
        contracts, layer = _layer()
        graph = build_graph(contracts, layer, product_lineage(), mesh.lake)
        frame = edges_frame(graph)
        reports = write_reports(graph, mesh.lake)
        joins = frame.filter(frame["relation"] == "joins_with")
        extra = {
            "nodes": graph.number_of_nodes(),
            "edges": frame.height,
            "joins_inferred": joins.height,
            "join_evidence": dg.MetadataValue.md(
                "\n".join(
                    f"- `{r['source']}` → `{r['target']}`: {r['evidence']}"
                    for r in joins.to_dicts()
                )
                or "no joins found"
            ),
            **{f"report_{k}": dg.MetadataValue.path(v) for k, v in reports.items()},
        }
        return publish(context, mesh.lake, OWN["knowledge_graph"], frame, extra=extra)

    return [product_docs, semantic_index, knowledge_graph]
