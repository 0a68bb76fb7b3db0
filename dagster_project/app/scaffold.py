"""`mesh new-domain`: a new domain code location from templates."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dagster_project.core.contracts import load_contract
from dagster_project.core.errors import UserError
from dagster_project.core.workspace import WORKSPACE_FILE, Location, add_location, read_workspace
from dagster_project.metadata.semantics import SEMANTICS_FILE, load_semantic_layer

NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# What every scaffolded contract starts with; `{key}` is the product, `{event}` the
# column whose newest value the SLA judges (check event_freshness).
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
  - property: latency  # the newest {event} is at most a day old
    value: 1
    unit: d
    element: {key}.{event}
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


def _header(fields: dict, key: str, name: str, event: str, mode: str) -> str:
    purpose = (
        f"Describe what one row of {key} is and why the {fields['domain']} domain publishes it."
        if key == fields["product"]
        else f"One row per name of {fields['product']}, with how many there are (SQL over "
        f"{fields['product']})."
    )
    values = {"key": key, "name": name, "event": event, "mode": mode, "purpose": purpose}
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
        doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
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
    if any(loc.name == domain for loc in read_workspace(workspace)):
        raise UserError(
            f"workspace.yaml already has a location named {domain!r}.",
            "Choose another name (`mesh status` lists the domains' products).",
        )
    folder = root / "domains" / domain
    _refuse_taken_names(root, singular(product), f"{product}_count")
    if folder.exists():
        raise UserError(f"{folder} already exists.", "Choose another name or remove the folder.")
    fields = {
        "domain": domain,
        "product": product,
        "owner": owner,
        "title": domain.replace("_", " ").capitalize(),
        "entity": singular(product),
        "key": f"{singular(product)}_id",
        "Product": product.replace("_", " ").capitalize(),
        "imports": "domain_definitions, landing" + (", sql" if with_sql else ""),
        "sql_line": (
            f'\n        sql("{product}_summary", HERE / "{product}_summary.sql"),'
            if with_sql
            else ""
        ),
    }
    contract_text = _header(fields, product, fields["title"], "updated_at", "merge") + (
        CONTRACT.format(**fields)
    )
    files = {
        folder / "__init__.py": f'"""The {domain} domain."""\n',
        folder / "definitions.py": DEFINITIONS.format(**fields),
        folder / "contracts" / f"{product}.odcs.yaml": contract_text,
        folder / SEMANTICS_FILE: SEMANTICS.format(**fields),
        root / "tests" / "locations" / f"test_{domain}_location.py": TEST.format(**fields),
    }
    if with_sql:
        files[folder / f"{product}_summary.sql"] = SUMMARY_SQL.format(**fields)
        summary = folder / "contracts" / f"{product}_summary.odcs.yaml"
        name = f"{fields['title']} {product} summary"
        header = _header(fields, f"{product}_summary", name, "last_updated_at", "overwrite")
        files[summary] = header + SUMMARY_CONTRACT.format(**fields)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # the templates stay valid: the contract, and the semantic layer against it
    contract = load_contract(folder / "contracts" / f"{product}.odcs.yaml")
    load_semantic_layer([folder / SEMANTICS_FILE], [contract])
    if with_sql:
        load_contract(summary)
    add_location(workspace, Location(domain, f"domains.{domain}.definitions"))
    return [*files, workspace]
