"""The synthetic product of an opted-in contract: `<domain>/<product>_synthetic`.

A contract opts in with `customProperties: synthetic: true` (and optionally
`syntheticRows`); `domain_definitions` then adds this asset next to the product. It
fits a Gaussian copula on the product (dagster_project/synthetic.py), writes the
synthetic rows through the lake API with their own contract and checks, and reports
quality and privacy as metadata (never a value of a real row).
"""

from dagster_project.core.contracts import Contract
from dagster_project.ml.synthetic import ROWS, opted_in, synthesize, synthetic_contract
from dagster_project.products.product import Product, ProductRun, Rows


def synthetic_products(contracts: list[Contract]) -> list[Product]:
    """One product per opted-in contract (`customProperties: synthetic: true`) building
    `<domain>/<product>_synthetic` from the product, with quality and privacy metadata."""
    return [_synthetic_product(c) for c in contracts if opted_in(c)]


def _synthetic_product(source: Contract) -> Product:
    contract = synthetic_contract(source)
    rows = source.custom(ROWS)

    def build(run: ProductRun) -> Rows:
        result = synthesize(source, run.read(source.key), int(rows) if rows else None)
        metrics = result.metrics
        run.log.info(
            f"{contract.key}: quality {metrics['quality']:.3f}, "
            f"{metrics['exact_copies']} exact copies, median DCR {metrics['dcr_median']:.3f}"
        )
        metadata = {
            "synthetic_of": source.key,
            "quality_score": metrics["quality"],
            "quality_column_shapes": metrics["column_shapes"],
            "quality_column_pair_trends": metrics["column_pair_trends"],
            "privacy_exact_copies": metrics["exact_copies"],
            "privacy_modelled_copies": metrics["modelled_copies"],
            "privacy_dcr_min": metrics["dcr_min"],
            "privacy_dcr_median": metrics["dcr_median"],
            "privacy_dcr_real_median": metrics["dcr_real_median"],
            "pii_generated_fresh": ", ".join(metrics["pii_generated"]) or "none",
            "synthesis_seconds": metrics["seconds"],
        }
        return Rows(result.frame, metadata)

    return Product(
        contract.product, build=build, inputs=(source.key,), contract=contract, kinds=("synthetic",)
    )
