"""`mesh new-domain`: a new domain code location from templates."""

from __future__ import annotations

import re
from pathlib import Path

from dagster_project.core.contracts import load_contract
from dagster_project.core.errors import UserError
from dagster_project.core.workspace import (
    WORKSPACE_FILE,
    Location,
    add_location,
    create_workspace,
    read_workspace,
)
from dagster_project.core.yamlfile import load_yaml
from dagster_project.metadata.semantics import SEMANTICS_FILE, load_semantic_layer

NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# What every scaffolded contract starts with; `{key}` is the product, `{sla}` its latency
# (on the column whose newest value check event_freshness judges, when it has one).
HEADER = """\
apiVersion: v3.2.0
kind: DataContract
id: urn:meshwork:{domain}:{key}
name: {name}
version: 0.1.0
status: draft
domain: {domain}
tags: [{domain}]
description:
  purpose: {purpose}
  usage: Describe who should use it and how.
team:
  name: {domain}-team
  members:
    - username: {owner}
      role: owner
slaProperties:
  - property: latency{sla}
customProperties:
  - property: writeMode
    value: {mode}
"""

CONTRACT = """\
schema:
  - name: {product}
    physicalType: table
    description: Describe what one row of {product} is and why the {domain} domain publishes it.
    quality:
      - type: library
        metric: rowCount
        mustBeGreaterThan: 0
    properties:
      - name: {key}
        logicalType: integer
        description: Identifier of the {entity}.
        primaryKey: true
        primaryKeyPosition: 1
        required: true
      # A key of another product names its contract's property (ODCS external reference):
      #   relationships:
      #     - to: ../../<domain>/contracts/<product>.odcs.yaml#/schema/<product>/properties/<column>
      - name: name
        logicalType: string
        description: Name of the {entity}.
        required: true
      - name: updated_at
        logicalType: timestamp
        description: When the source last changed the record.
"""

# Valid for the contract above as scaffolded, so `mesh ask` and `mesh search` answer about
# the domain as soon as its first files are refreshed; the team then names its metrics.
SEMANTICS = """\
# What can be asked about {domain} in plain words (`mesh ask`, `mesh search`): entities,
# one model per product (its time dimension, the columns to group by), metrics, synonyms.
# Every column named here must be in the product's contract; `mesh ask` validates it.
domain: {domain}
entities:
  - name: {entity}
    key: {key}
    product: {product}
    description: One {entity} of {product}, identified by {key}.
    synonyms: []  # other words for a {entity}, e.g. [item, entry]
models:
  - product: {product}
    time_dimension: updated_at
    dimensions:
      - column: name
        synonyms: []  # e.g. [title, label]
metrics:
  - name: {product}_count
    label: {Product}
    model: {product}
    agg: count
    description: Number of {product}.
    synonyms: [number of {product}, how many {product}]
# What {domain}/insights reports (reports/insights/{domain}.md, GET /api/insights): the
# headline metrics over the last 28 days against the 28 before, and the values of the
# `by` dimensions whose metric moved most. Name your own metrics and dimensions here.
insights:
  headline: [{product}_count]
  movers: {{metric: {product}_count, by: [name]}}
"""

# The insights product's columns are the platform's (narratives.INSIGHT_COLUMNS); its
# rows come from the semantic layer's `insights` section.
INSIGHTS_CONTRACT = """\
schema:
  - name: insights
    physicalType: table
    description: >-
      One row per headline metric and per top mover, the last 28 days against the 28
      before, and per anomaly or drift warning.
    quality:
      - type: library
        metric: rowCount
        mustBeGreaterThan: 0
    properties:
      - name: kind
        logicalType: string
        description: >-
          headline (the whole domain), mover (a dimension value that moved most) or risk
          (a check of the domain that warns now).
        primaryKey: true
        primaryKeyPosition: 1
        required: true
        enum:
          - value: headline
          - value: mover
          - value: risk
      - name: subject
        logicalType: string
        description: What the row is about, e.g. all, name=<value>, or what a warning check watches.
        primaryKey: true
        primaryKeyPosition: 2
        required: true
      - name: metric
        logicalType: string
        description: >-
          The semantic layer's metric (e.g. {product}_count; for risks drift_score,
          anomaly_rate_pct or <check>_not_evaluated).
        primaryKey: true
        primaryKeyPosition: 3
        required: true
      - name: period_start
        logicalType: date
        description: First day of the current period.
        required: true
      - name: period_end
        logicalType: date
        description: Last day with data, the end of the current period.
        required: true
      - name: value
        logicalType: number
        description: The metric over the current period.
        required: true
      - name: previous_value
        logicalType: number
        description: The metric over the period before; empty for risks.
      - name: change_pct
        logicalType: number
        description: Relative change in percent; empty when the previous value is zero.
      - name: narrative
        logicalType: string
        description: The row as one plain sentence.
        required: true
"""

DEFINITIONS = '''\
"""{title}: {product} lands from its source system; add derived products below."""

from pathlib import Path

from dagster_project import {imports}

HERE = Path(__file__).parent

defs = domain_definitions(
    "{domain}",
    [
        landing("{product}"),{sql_line}
        # What changed in the last 28 days, from semantics.yaml's `insights` section.
        semantic_insights(HERE / "semantics.yaml"),
    ],
    contracts=HERE / "contracts",
)
'''

# `--sql`: a second product, one SELECT over the first, run by DuckDB (products.sql).
SUMMARY_SQL = """\
-- {product}_summary: one row per name of {product}. Tables are `domain.product`, or just
-- `product` for this domain's own; the inputs (and the lineage) are read from this SQL.
SELECT name, COUNT(*) AS {product}_count, MAX(updated_at) AS last_updated_at
FROM {product}
GROUP BY name
"""

SUMMARY_CONTRACT = """\
schema:
  - name: {product}_summary
    physicalType: table
    description: One row per name of {product}, with how many there are.
    properties:
      - name: name
        logicalType: string
        description: Name of the {entity}.
        primaryKey: true
        primaryKeyPosition: 1
        required: true
      - name: {product}_count
        logicalType: integer
        description: How many {product} have this name.
        required: true
      - name: last_updated_at
        logicalType: timestamp
        description: The latest updated_at of those {product}.
"""

TEST = """\
import dagster as dg

from domains.{domain}.definitions import defs


def test_{domain}_location_loads():
    dg.Definitions.validate_loadable(defs)
    keys = {{k.to_user_string() for k in defs.resolve_all_asset_keys()}}
    assert "{domain}/{product}" in keys
"""


def snake_case(name: str) -> str:
    """`name` as the closest snake_case name ("Bad Name!" -> "bad_name")."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    fixed = "_".join(words) or "domain"
    return fixed if fixed[0].isalpha() else f"d_{fixed}"


def _header(
    fields: dict, key: str, name: str, purpose: str, mode: str, event: str | None = None
) -> str:
    """A contract's header; its SLA judges the newest `event` (without one: not judged
    from the data)."""
    sla = "\n    value: 1\n    unit: d"
    if event:
        sla = f"  # the newest {event} is at most a day old{sla}\n    element: {key}.{event}"
    values = {"key": key, "name": name, "mode": mode, "purpose": purpose, "sla": sla}
    return HEADER.format(**{**fields, **values})


def singular(noun: str) -> str:
    """A plural product name's thing, for its entity ("records" -> "record")."""
    if noun.endswith("ies") and len(noun) > 4:
        return noun[:-3] + "y"
    if noun.endswith("s") and not noun.endswith(("ss", "us", "is")) and len(noun) > 1:
        return noun[:-1]
    return noun


def _refuse_taken_names(root: Path, entity: str, metric: str) -> None:
    """The semantic layer is one namespace: a second `record` entity or `records_count`
    metric would make every domain's questions fail to load."""
    for location in read_workspace(root / WORKSPACE_FILE):
        path = root.joinpath(*location.module.split(".")[:-1]) / SEMANTICS_FILE
        doc = (load_yaml(path.read_text()) or {}) if path.exists() else {}
        entities = {e.get("name") for e in doc.get("entities") or []}
        keys = {e.get("key") for e in doc.get("entities") or []}
        metrics = {m.get("name") for m in doc.get("metrics") or []}
        taken = [n for n, names in ((entity, entities), (f"{entity}_id", keys)) if n in names]
        taken += [metric] if metric in metrics else []
        if taken:
            raise UserError(
                f"{location.name}'s semantics.yaml already declares {', '.join(taken)}, "
                "which the new domain's first product would declare too.",
                "Name the first product after what it holds: `--product <plural noun>`.",
            )


def _fields(domain: str, product: str, owner: str, with_sql: bool) -> dict[str, str]:
    """What the templates are filled with."""
    return {
        "domain": domain,
        "product": product,
        "owner": owner,
        "title": domain.replace("_", " ").capitalize(),
        "entity": singular(product),
        "key": f"{singular(product)}_id",
        "Product": product.replace("_", " ").capitalize(),
        "imports": ", ".join(
            ["domain_definitions", "landing", "semantic_insights", *(["sql"] if with_sql else [])]
        ),
        "sql_line": (
            f'\n        sql("{product}_summary", HERE / "{product}_summary.sql"),'
            if with_sql
            else ""
        ),
    }


def _files(root: Path, fields: dict[str, str], with_sql: bool) -> dict[Path, str]:
    """Each scaffolded file and its text."""
    domain, product, title = fields["domain"], fields["product"], fields["title"]
    folder, contracts = root / "domains" / domain, root / "domains" / domain / "contracts"
    purpose = f"Describe what one row of {product} is and why the {domain} domain publishes it."
    insights = (
        f"What changed in {domain} in the last 28 days against the 28 days before (the "
        "headline metrics and movers its semantic layer declares), and what its checks warn "
        "of, as numbers and sentences."
    )
    files = {
        folder / "__init__.py": f'"""The {domain} domain."""\n',
        folder / "definitions.py": DEFINITIONS.format(**fields),
        contracts / f"{product}.odcs.yaml": _header(
            fields, product, title, purpose, "merge", "updated_at"
        )
        + CONTRACT.format(**fields),
        contracts / "insights.odcs.yaml": _header(
            fields, "insights", f"{title} insights", insights, "overwrite"
        )
        + INSIGHTS_CONTRACT.format(**fields),
        folder / SEMANTICS_FILE: SEMANTICS.format(**fields),
        root / "tests" / "locations" / f"test_{domain}_location.py": TEST.format(**fields),
    }
    if with_sql:
        summary = f"One row per name of {product}, with how many there are (SQL over {product})."
        files[folder / f"{product}_summary.sql"] = SUMMARY_SQL.format(**fields)
        files[contracts / f"{product}_summary.odcs.yaml"] = _header(
            fields, f"{product}_summary", f"{title} {product} summary", summary, "overwrite",
            "last_updated_at",
        ) + SUMMARY_CONTRACT.format(**fields)  # fmt: skip
    return files


def scaffold_domain(
    root: Path,
    domain: str,
    *,
    product: str = "records",
    owner: str = "owner@example.com",
    with_sql: bool = False,
) -> list[Path]:
    """Write the domain's package, contract, semantic layer and test (and, `with_sql`, a
    SQL product over the first one); register it in workspace.yaml."""
    for label, value in (("domain", domain), ("product", product)):
        if not NAME.match(value):
            fixed = f"mesh new-domain {snake_case(domain)}"
            fixed += f" --product {snake_case(product)}" if product != "records" else ""
            raise UserError(
                f"{label} name {value!r} must be snake_case (a-z, 0-9, _; a letter first).",
                f"Try `{fixed}`.",
            )
    workspace = root / WORKSPACE_FILE
    if not workspace.exists():  # a new mesh: governance, then this domain
        create_workspace(workspace)
    if any(loc.name == domain for loc in read_workspace(workspace)):
        raise UserError(
            f"workspace.yaml already has a location named {domain!r}.",
            "Choose another name (`mesh status` lists the domains' products).",
        )
    folder = root / "domains" / domain
    _refuse_taken_names(root, singular(product), f"{product}_count")
    if folder.exists():
        raise UserError(f"{folder} already exists.", "Choose another name or remove the folder.")
    files = _files(root, _fields(domain, product, owner, with_sql), with_sql)
    if not (root / "domains" / "__init__.py").exists():
        files[root / "domains" / "__init__.py"] = '"""The domains of this mesh."""\n'
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # the templates stay valid: the contracts, and the semantic layer against them
    contracts = [load_contract(p) for p in files if p.name.endswith(".odcs.yaml")]
    load_semantic_layer([folder / SEMANTICS_FILE], contracts)
    add_location(workspace, Location(domain, f"domains.{domain}.definitions"))
    return [*files, workspace]
