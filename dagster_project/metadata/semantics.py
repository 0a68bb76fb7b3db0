"""The semantic layer: business meaning on top of the contracts.

Each code location may keep a `semantics.yaml` beside its `contracts/` folder:

- `entities`: things the business talks about, identified by a key column (`store` is
  `store_id`, kept in `stores`); products that share an entity's key join through it,
  across domains too.
- `models`: one per product: its time dimension and the columns worth grouping or
  filtering by (dimensions), with synonyms.
- `metrics`: named aggregations of a model's column (`revenue` = sum of `net_amount`),
  ratios of two metrics, and semi-additive metrics (`non_additive: snapshot_date`
  takes the last snapshot of each period); `better: lower` where less is better (a
  delay, a cost: "the worst" is the highest), `higher` (the default) otherwise.
- `glossary`: business terms, their synonyms and what they relate to.
- `insights` (optional): what the domain's insights report - `headline` metrics over the
  last four weeks against the four before, the `movers` metric and the dimensions whose
  values moved most, the `lowest` values of a metric by a dimension. Without it a domain
  with metrics over a time dimension gets its first four as headline and the first two
  dimensions of the first one's model as movers.

The layer is validated against the contracts (every column exists with a sensible
type, no PII dimension, keys that join have the same type) and feeds discovery,
documentation, the knowledge graph and questions in plain language (see
`dagster_project.ask.semantic_sql` for the query compiler).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dagster_project.checks.quality.companion_contracts import discover_contracts
from dagster_project.core.contracts import Contract
from dagster_project.core.errors import UserError
from dagster_project.core.workspace import find_root, location_folder, read_workspace
from dagster_project.core.yamlfile import load_yaml

SEMANTICS_FILE = "semantics.yaml"
TIME_GRAINS = ("day", "week", "month", "quarter", "year")
AGGREGATIONS = ("sum", "avg", "min", "max", "count", "count_distinct")
NUMERIC = {"integer", "number"}
TEMPORAL = {"date", "timestamp"}


class SemanticError(UserError, ValueError):
    """A semantic layer that does not fit the contracts; lists every problem, a name two
    files declare first (`mesh` shows the message and its fix)."""

    def __init__(self, problems: list[str], source: str | None = None, clashes: Sequence[str] = ()):
        self.problems = problems
        if clashes:
            rest = len(problems) - 1
            more = f" ({rest} more problem{'s' * (rest > 1)} after that)" if rest else ""
            super().__init__(
                clashes[0] + more,
                "Rename it in one of them: metric and entity names (and entity keys) are one "
                "namespace across the mesh.",
            )
        else:
            super().__init__(
                f"{source or 'semantic layer'}: " + "; ".join(problems),
                f"Fix {source or 'the semantics.yaml named'}: every product and column it "
                "names must be in the contracts, an entity's key is its product's primaryKey.",
            )


@dataclass(frozen=True)
class Entity:
    name: str
    key: str
    product: str | None  # `domain/product` whose primary key is the entity key
    description: str = ""
    synonyms: tuple[str, ...] = ()
    domain: str = ""
    source: str = field(default="", compare=False)  # the file declaring it


@dataclass(frozen=True)
class Dimension:
    name: str
    product: str
    column: str
    description: str = ""
    synonyms: tuple[str, ...] = ()
    is_time: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.product}.{self.name}"


@dataclass(frozen=True)
class Metric:
    name: str
    product: str
    agg: str | None  # None for a ratio
    column: str | None = None
    label: str = ""
    description: str = ""
    synonyms: tuple[str, ...] = ()
    numerator: str | None = None
    denominator: str | None = None
    non_additive: str | None = None  # a date column: take the last snapshot per period
    better: str | None = None  # "higher" or "lower": which way "the best" ranks
    domain: str = ""
    source: str = field(default="", compare=False)  # the file declaring it

    @property
    def is_ratio(self) -> bool:
        return self.numerator is not None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Model:
    product: str
    time_dimension: str | None
    dimensions: tuple[Dimension, ...]
    description: str = ""


@dataclass(frozen=True)
class GlossaryTerm:
    term: str
    definition: str
    synonyms: tuple[str, ...] = ()
    related: tuple[str, ...] = ()  # node ids: metric:x, entity:x, product:d/p, column:d/p.c


@dataclass(frozen=True)
class JoinStep:
    """`left.column = right.column`, many-to-one from left to right."""

    left: str
    right: str
    column: str
    entity: str


@dataclass(frozen=True)
class Lowest:
    """The `limit` values of `dimension` with the lowest `metric` now (e.g. stock on hand
    by product), reported under `title`."""

    metric: str
    dimension: str
    limit: int = 5
    title: str = ""


@dataclass(frozen=True)
class InsightsSpec:
    """What a domain's insights compare (the `insights` section, or its defaults)."""

    domain: str
    headline: tuple[str, ...] = ()
    mover_metric: str | None = None
    movers: tuple[str, ...] = ()
    lowest: Lowest | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        extra = [m for m in (self.mover_metric, self.lowest and self.lowest.metric) if m]
        return tuple(dict.fromkeys([*self.headline, *extra]))


HEADLINE_METRICS = 4
MOVER_DIMENSIONS = 2


@dataclass
class SemanticLayer:
    entities: dict[str, Entity] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    glossary: list[GlossaryTerm] = field(default_factory=list)
    contracts: dict[str, Contract] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)  # in the order of their files
    insights: dict[str, InsightsSpec] = field(default_factory=dict)  # declared ones
    clashes: list[str] = field(default_factory=list)  # names two declarations share
    excluded: dict[str, list[str]] = field(default_factory=dict)  # file → why it is left out

    # -- insights ------------------------------------------------------------------------
    def insights_spec(self, domain: str) -> InsightsSpec:
        """The domain's declared insights, else: its first metrics over a time dimension as
        headline, the first one broken down by the first dimensions of its model."""
        if domain in self.insights:
            return self.insights[domain]
        timed = [
            m.name
            for m in self.metrics.values()
            if m.domain == domain
            and self.models.get(m.product)
            and self.models[m.product].time_dimension
        ][:HEADLINE_METRICS]
        if not timed:
            return InsightsSpec(domain)
        model = self.models[self.metrics[timed[0]].product]
        dims = [d.name for d in model.dimensions if not d.is_time][:MOVER_DIMENSIONS]
        return InsightsSpec(domain, tuple(timed), timed[0], tuple(dims))

    def insights_specs(self) -> list[InsightsSpec]:
        """Every domain's insights that report something, in the order of their files."""
        specs = [self.insights_spec(d) for d in self.domains]
        return [s for s in specs if s.headline or s.lowest]

    # -- listing -----------------------------------------------------------------------
    def list_metrics(self) -> list[Metric]:
        return sorted(self.metrics.values(), key=lambda m: m.name)

    def list_dimensions(self, product: str | None = None) -> list[Dimension]:
        """Dimensions of one product's model and every model it joins to (or all)."""
        products = self.reachable(product) if product else sorted(self.models)
        return [d for p in products if p in self.models for d in self.models[p].dimensions]

    def metric(self, name: str) -> Metric:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"unknown metric {name!r}; known: {', '.join(self.metrics)}") from None

    def base_metrics(self, metric: Metric) -> list[Metric]:
        if not metric.is_ratio:
            return [metric]
        return [self.metric(metric.numerator), self.metric(metric.denominator)]

    def entity_of_key(self, column: str) -> Entity | None:
        return next((e for e in self.entities.values() if e.key == column), None)

    # -- joins -------------------------------------------------------------------------
    def join_targets(self, product: str) -> list[JoinStep]:
        """Many-to-one joins from a product: to every model keyed by an entity key it holds."""
        contract = self.contracts.get(product)
        if contract is None:
            return []
        steps = []
        for column in contract.column_names:
            entity = self.entity_of_key(column)
            if entity is None:
                continue
            for other in sorted(self.models):
                other_contract = self.contracts.get(other)
                if other != product and other_contract and other_contract.primary_key == [column]:
                    steps.append(JoinStep(product, other, column, entity.name))
        return steps

    def join_path(self, start: str, goal: str) -> list[JoinStep]:
        """The shortest chain of many-to-one joins from `start` to `goal` (deterministic).

        Raises KeyError when `goal` cannot be reached without fanning out rows."""
        if start == goal:
            return []
        seen = {start}
        queue: deque[tuple[str, list[JoinStep]]] = deque([(start, [])])
        while queue:
            product, path = queue.popleft()
            for step in self.join_targets(product):
                if step.right in seen:
                    continue
                if step.right == goal:
                    return [*path, step]
                seen.add(step.right)
                queue.append((step.right, [*path, step]))
        raise KeyError(f"{goal} cannot be joined to {start} through entity keys")

    def reachable(self, product: str) -> list[str]:
        """The product and every product it joins to, nearest first."""
        order, seen = [product], {product}
        queue = deque([product])
        while queue:
            for step in self.join_targets(queue.popleft()):
                if step.right not in seen:
                    seen.add(step.right)
                    order.append(step.right)
                    queue.append(step.right)
        return order

    def shared_keys(self) -> list[tuple[str, str, str]]:
        """(product, product, key column) for every pair of products holding an entity key."""
        holders: dict[str, list[str]] = {}
        for key, contract in sorted(self.contracts.items()):
            for column in contract.column_names:
                if self.entity_of_key(column):
                    holders.setdefault(column, []).append(key)
        return [
            (a, b, column)
            for column, products in holders.items()
            for i, a in enumerate(products)
            for b in products[i + 1 :]
        ]

    def resolve_dimension(self, name: str, product: str) -> tuple[Dimension, list[JoinStep]]:
        """A dimension by name (`region`, `stores.region` or `sales/stores.region`) as seen
        from a product: its own first, then the nearest joined model; ties are ambiguous."""
        nearest = self.nearest_dimensions(name, product)
        if not nearest:
            raise KeyError(f"no dimension {name!r} reachable from {product}")
        if len(nearest) > 1:
            options = ", ".join(d.qualified for d in nearest)
            raise KeyError(f"dimension {name!r} is ambiguous from {product}: use one of {options}")
        return nearest[0], self.join_path(product, nearest[0].product)

    def nearest_dimensions(self, name: str, product: str) -> list[Dimension]:
        """The dimensions `name` may mean from `product`: the nearest by joins (one unless
        equally near models hold it through different keys); none when unreachable."""
        owner, _, dim_name = name.rpartition(".")
        candidates = []
        for distance, other in enumerate(self.reachable(product)):
            if owner and owner not in {other, other.split("/")[1]}:
                continue
            model = self.models.get(other)
            if model is None:
                continue
            for dim in model.dimensions:
                if dim.name == dim_name or (dim.is_time and dim_name == "time"):
                    candidates.append((len(self.join_path(product, other)), distance, dim))
        if not candidates:
            return []
        best = min(c[0] for c in candidates)
        return self._entity_home([c[2] for c in candidates if c[0] == best], product)

    def _entity_home(self, tied: list[Dimension], product: str) -> list[Dimension]:
        """Of dimensions equally near, reached through one and the same key (species_id to
        `species` and to a `species_captures` keyed by it), the one on the entity's own
        product: both describe the same entity, and its product is where that is kept.
        Through different keys (a store's city, a customer's city) they stay tied."""
        if len(tied) < 2:
            return tied
        keys = {self.join_path(product, d.product)[-1].column for d in tied if d.product != product}
        entity = self.entity_of_key(next(iter(keys))) if len(keys) == 1 else None
        home = [d for d in tied if entity and d.product == entity.product]
        return home if len(home) == 1 and all(d.product != product for d in tied) else tied

    # -- validation ----------------------------------------------------------------------
    def excluded_notes(self) -> list[str]:
        """One line per semantics file left out of the layer, with what to fix."""
        return [
            f"{source} is left out of the semantic layer until fixed: {'; '.join(problems)}"
            for source, problems in self.excluded.items()
        ]

    def problems(self) -> list[str]:
        """Everything in the layer that does not fit the contracts."""
        return _validate(self)

    def validate(self, source: str | None = None) -> SemanticLayer:
        """The layer, or SemanticError naming `source` (the one file it was read from)."""
        problems = self.problems()
        if problems:
            raise SemanticError(problems, source, self.clashes)
        return self


# -- loading ---------------------------------------------------------------------------------
def _key(ref: str, domain: str) -> str:
    return ref if "/" in ref else f"{domain}/{ref}"


def _synonyms(raw: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(s) for s in raw.get("synonyms") or [])


def parse_semantics(
    documents: Iterable[tuple[str, Mapping[str, Any]]], contracts: Iterable[Contract]
) -> SemanticLayer:
    """A layer from `(source, document)` pairs and the contracts it describes."""
    layer = SemanticLayer(contracts={c.key: c for c in contracts})
    for source, doc in documents:
        domain = str(doc.get("domain") or "")
        layer.sources.append(source)
        if domain and domain not in layer.domains:
            layer.domains.append(domain)
        if doc.get("insights") is not None:
            layer.insights[domain] = _insights(doc["insights"] or {}, domain)
        for raw in doc.get("entities") or []:
            product = _key(raw["product"], domain) if raw.get("product") else None
            if _clash(layer, "entity", layer.entities.get(raw["name"]), source):
                continue
            same_key = layer.entity_of_key(raw["key"])
            if same_key is not None and same_key.name != raw["name"]:
                layer.clashes.append(
                    f"entity {raw['name']} in {_shown(source)} has the key {raw['key']} of "
                    f"entity {same_key.name} in {_shown(same_key.source)}"
                )
            layer.entities[raw["name"]] = Entity(
                raw["name"], raw["key"], product, raw.get("description", ""), _synonyms(raw),
                domain, source,
            )  # fmt: skip
        for raw in doc.get("models") or []:
            model = _model(raw, domain, layer.contracts)
            layer.models[model.product] = model
        for raw in doc.get("metrics") or []:
            ratio = raw.get("ratio") or {}
            if _clash(layer, "metric", layer.metrics.get(raw["name"]), source):
                continue
            layer.metrics[raw["name"]] = Metric(
                name=raw["name"],
                product=_key(raw["model"], domain),
                agg=None if ratio else raw.get("agg", "sum"),
                column=raw.get("column"),
                label=raw.get("label", ""),
                description=raw.get("description", ""),
                synonyms=_synonyms(raw),
                numerator=ratio.get("numerator"),
                denominator=ratio.get("denominator"),
                non_additive=raw.get("non_additive"),
                better=raw.get("better"),
                domain=domain,
                source=source,
            )
        for raw in doc.get("glossary") or []:
            layer.glossary.append(
                GlossaryTerm(
                    raw["term"],
                    raw.get("definition", ""),
                    _synonyms(raw),
                    tuple(raw.get("related") or []),
                )
            )
    return layer


def _clash(layer: SemanticLayer, kind: str, earlier: Entity | Metric | None, source: str) -> bool:
    """Whether a name is declared already: reported, and the first declaration kept (the
    second would silently replace it, and break what refers to the first)."""
    if earlier is not None:
        layer.clashes.append(
            f"{kind} {earlier.name} is declared twice: in {_shown(earlier.source)} (domain "
            f"{earlier.domain}) and in {_shown(source)}"
        )
    return earlier is not None


def _shown(source: str) -> str:
    """A semantics file as a user finds it: relative to the working folder when below it."""
    try:
        return str(Path(source).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return source


def _insights(raw: Mapping[str, Any], domain: str) -> InsightsSpec:
    movers = raw.get("movers") or {}
    lowest = raw.get("lowest")
    return InsightsSpec(
        domain,
        tuple(raw.get("headline") or ()),
        movers.get("metric"),
        tuple(movers.get("by") or ()),
        Lowest(lowest["metric"], lowest["by"], int(lowest.get("limit", 5)), lowest.get("title", ""))
        if lowest
        else None,
    )


def _model(raw: Mapping[str, Any], domain: str, contracts: Mapping[str, Contract]) -> Model:
    product = _key(raw["product"], domain)
    contract = contracts.get(product)
    time_column = raw.get("time_dimension")
    dims = []
    for d in raw.get("dimensions") or []:
        d = {"column": d} if isinstance(d, str) else d
        column = d["column"]
        described = (
            contract.column(column).description if contract and _has(contract, column) else ""
        )
        dims.append(
            Dimension(
                d.get("name", column),
                product,
                column,
                d.get("description", described),
                _synonyms(d),
                is_time=column == time_column,
            )
        )
    if time_column and not any(d.column == time_column for d in dims):
        described = (
            contract.column(time_column).description
            if contract and _has(contract, time_column)
            else ""
        )
        dims.insert(0, Dimension(time_column, product, time_column, described, is_time=True))
    return Model(product, time_column, tuple(dims), raw.get("description", ""))


def _has(contract: Contract, column: str) -> bool:
    return column in contract.column_names


def semantics_files(root: Path | None = None) -> list[Path]:
    """The `semantics.yaml` of every code location in workspace.yaml."""
    workspace = (root or find_root()) / "workspace.yaml"
    files = [location_folder(loc) / SEMANTICS_FILE for loc in read_workspace(workspace)]
    return [f for f in files if f.exists()]


def load_semantic_layer(
    files: Iterable[Path] | None = None,
    contracts: Iterable[Contract] | None = None,
    *,
    validate: bool = True,
) -> SemanticLayer:
    """The mesh's semantic layer (every location's semantics.yaml), validated against the
    workspace's contracts unless other files or contracts are given."""
    if contracts is None:
        contracts = discover_contracts()
    paths = list(files) if files is not None else semantics_files()
    if validate and files is None:
        return _valid_layer(paths, list(contracts))
    documents = [(str(p), load_yaml(Path(p).read_text()) or {}) for p in paths]
    layer = parse_semantics(documents, contracts)
    source = str(paths[0]) if len(paths) == 1 else None
    return layer.validate(source) if validate else layer


def _valid_layer(paths: list[Path], contracts: list[Contract]) -> SemanticLayer:
    """The workspace's layer without the files that break it: one domain's mistake must
    not leave every other domain unanswerable. Files are added in workspace order, so a
    file that clashes with an earlier one is the one left out; `excluded` says why."""
    documents: list[tuple[str, Mapping[str, Any]]] = []
    excluded: dict[str, list[str]] = {}
    for path in paths:
        try:
            documents.append((str(path), load_yaml(path.read_text()) or {}))
        except yaml.YAMLError as exc:
            excluded[str(path)] = [f"not valid YAML: {' '.join(str(exc).split())}"]
    kept = documents if not _problems(documents, contracts) else []
    if not kept:  # the usual case is one validation of every file; else one by one
        for document in documents:
            problems = _problems([*kept, document], contracts)
            if problems:
                excluded[document[0]] = problems
            else:
                kept.append(document)
    layer = parse_semantics(kept, contracts)
    layer.excluded = excluded
    return layer


def _problems(
    documents: list[tuple[str, Mapping[str, Any]]], contracts: list[Contract]
) -> list[str]:
    """What the layer of these documents gets wrong, a malformed document included."""
    try:
        return parse_semantics(documents, contracts).problems()
    except KeyError as exc:  # an entity, model or metric without a required field
        return [f"a required field {exc} is missing"]
    except (TypeError, AttributeError) as exc:
        return [f"not shaped as a semantic layer ({exc})"]


# -- validation --------------------------------------------------------------------------
def _validate(layer: SemanticLayer) -> list[str]:
    problems: list[str] = []
    contracts = layer.contracts

    def column_type(product: str, column: str | None, what: str) -> str | None:
        contract = contracts.get(product)
        if contract is None:
            problems.append(f"{what}: no contract for product {product}")
            return None
        if column is None or column not in contract.column_names:
            problems.append(f"{what}: {product} has no column {column!r}")
            return None
        return contract.column(column).logical_type

    for entity in layer.entities.values():
        what = f"entity {entity.name}"
        if entity.product:
            column_type(entity.product, entity.key, what)
            contract = contracts.get(entity.product)
            if contract and contract.primary_key != [entity.key]:
                problems.append(
                    f"{what}: {entity.product}'s primary key is not {entity.key} (an entity's "
                    f"product has one row per {entity.key}: make {entity.key} its contract's "
                    "primaryKey, or leave out `product`: the entity is then a key its "
                    "models share, counted by its distinct values)"
                )
    for model in layer.models.values():
        what = f"model {model.product}"
        if model.time_dimension:
            kind = column_type(model.product, model.time_dimension, what)
            if kind and kind not in TEMPORAL:
                problems.append(f"{what}: time dimension {model.time_dimension} is {kind}")
        names = [d.name for d in model.dimensions]
        if len(set(names)) != len(names):
            problems.append(f"{what}: duplicate dimension names")
        for dim in model.dimensions:
            known = column_type(model.product, dim.column, f"{what} dimension {dim.name}")
            if known and contracts[model.product].column(dim.column).is_pii:
                problems.append(f"{what}: dimension {dim.name} is a PII column")
    for metric in layer.metrics.values():
        what = f"metric {metric.name}"
        if metric.better not in {None, "higher", "lower"}:
            problems.append(f"{what}: better is {metric.better!r}, not 'higher' or 'lower'")
        if metric.product not in layer.models:
            problems.append(f"{what}: no model for {metric.product}")
        if metric.is_ratio:
            for part in (metric.numerator, metric.denominator):
                other = layer.metrics.get(part or "")
                if other is None or other.is_ratio:
                    problems.append(f"{what}: ratio part {part!r} is not a simple metric")
                elif other.product != metric.product:
                    problems.append(f"{what}: ratio part {part} is on another model")
            continue
        if metric.agg not in AGGREGATIONS:
            problems.append(f"{what}: aggregation {metric.agg!r} not in {', '.join(AGGREGATIONS)}")
        if not (metric.agg == "count" and metric.column is None):
            kind = column_type(metric.product, metric.column, what)
            if kind and metric.agg in {"sum", "avg"} and kind not in NUMERIC:
                problems.append(f"{what}: {metric.agg} of {metric.column}, a {kind} column")
        if metric.non_additive:
            kind = column_type(metric.product, metric.non_additive, f"{what} non_additive")
            if kind and kind not in TEMPORAL:
                problems.append(f"{what}: non_additive column {metric.non_additive} is {kind}")
    problems += layer.clashes
    problems += _key_types(layer)
    problems += _synonym_clashes(layer)
    problems += _insights_problems(layer)
    return problems


def _insights_problems(layer: SemanticLayer) -> list[str]:
    problems = []
    for spec in layer.insights.values():
        for name in spec.metrics:
            if name not in layer.metrics:
                problems.append(f"insights of {spec.domain}: no metric {name!r}")
        if spec.movers and not spec.mover_metric:
            problems.append(f"insights of {spec.domain}: movers need a metric")
    return problems


def _key_types(layer: SemanticLayer) -> list[str]:
    problems = []
    for a, b, column in layer.shared_keys():
        ta = layer.contracts[a].column(column).logical_type
        tb = layer.contracts[b].column(column).logical_type
        if ta != tb:
            problems.append(f"join key {column}: {a} has {ta}, {b} has {tb}")
    return problems


def _synonym_clashes(layer: SemanticLayer) -> list[str]:
    owner: dict[str, str] = {}
    problems = []
    for metric in layer.metrics.values():
        for word in (metric.name, *metric.synonyms):
            word = word.lower()
            if word in owner and owner[word] != metric.name:
                problems.append(
                    f"metric synonym {word!r} names both {owner[word]} and {metric.name}"
                )
            owner[word] = metric.name
    return problems
