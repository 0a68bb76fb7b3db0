"""The mesh's HTTP API and web page (FastAPI): search, product pages, ask, insights.

    mesh serve [--port 8070]   # then open http://127.0.0.1:8070/

Every data read goes through `GovernedReader` (channel "api", PII masked for the role).
The role comes from the caller's API key (`Authorization: Bearer <key>`, see
`dagster_project.access.api_keys`); without a key, the anonymous role (`analyst` by default;
with `MESH_API_ANONYMOUS_ROLE=none` every route but the static page needs a key, the API
docs included). A `role` parameter may only repeat the caller's own role: it cannot raise
privileges. Bodies, questions, SQL and search text are capped (413 above); each query
runs in its own worker process under `dagster_project.ask.limits`, and no lock is held
while it runs, so one slow caller never delays another.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

import polars as pl
from dagster_duckdb import DuckDBResource
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

import dagster_project.ask.worker as worker
from dagster_project.access.api_keys import ApiKeyStore, anonymous_role
from dagster_project.access.http import BodyLimit
from dagster_project.access.policy import AccessDenied, AuditWriter, GovernedReader
from dagster_project.ask.charts import answer_chart, plotly_js
from dagster_project.ask.engine import Asker
from dagster_project.ask.insights import mesh_insights
from dagster_project.ask.limits import ANONYMOUS, AskError, check_size
from dagster_project.ask.narratives import insights_report_uri
from dagster_project.ask.page import PAGE
from dagster_project.ask.parser import OfflineParser
from dagster_project.ask.resources import ResourceConnections
from dagster_project.ask.vocabulary import Interpreter
from dagster_project.checks.freshness import judge_freshness
from dagster_project.checks.quality.companions import SUFFIX as ANOMALIES
from dagster_project.checks.quality.score import score_history
from dagster_project.core.settings import Limits, get_limits
from dagster_project.lake.storage import Lake, day_of
from dagster_project.metadata.discovery import mesh_index
from dagster_project.metadata.lineage import product_lineage
from dagster_project.metadata.semantics import SemanticLayer, load_semantic_layer

SAMPLE_ROWS = 10
MAX_CONVERSATIONS = 200
MAX_SEARCH_CHARS = 500


class AskRequest(BaseModel):
    question: str | None = None
    sql: str | None = None
    role: str | None = None
    conversation_id: str | None = None


@dataclass(frozen=True)
class Caller:
    principal: str  # audited as who read
    role: str

    def acting_as(self, role: str | None) -> str:
        """The role a request reads as: the caller's own; asking for another is refused."""
        if role is None or role == self.role:
            return self.role
        raise HTTPException(403, f"{self.principal} reads as {self.role}, not {role}")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


class MeshAPI:
    """State of one server: the layer, the reader and the open conversations."""

    def __init__(
        self,
        lake: Lake | None = None,
        layer: SemanticLayer | None = None,
        limits: Limits | None = None,
    ):
        self.lake = lake or Lake()
        self.layer = layer or load_semantic_layer()
        self.limits = limits or get_limits()
        self.reader = GovernedReader(self.lake)
        # The queries' DuckDB connections, as in Dagster runs: an in-memory database each.
        self.duckdb = ResourceConnections.of(DuckDBResource(database=":memory:"))
        self.audit_writer = AuditWriter(self.reader)  # queries' audit rows, behind the answer
        self.keys = ApiKeyStore(self.lake.settings)
        self.conversations: dict[str, Asker] = {}
        # Guards the conversations only: queries run in parallel, each in its worker.
        self.conversations_lock = threading.Lock()
        self.interpreter = Interpreter()

    @cached_property
    def index(self):
        return mesh_index()

    @cached_property
    def lineage(self) -> list[tuple[str, str]]:
        return product_lineage()

    def caller(self, authorization: str | None, address: str = "unknown") -> Caller:
        """Who sends a request with this Authorization header (401 if nobody valid); a
        caller without a key is its client address (`api:anonymous@<address>`)."""
        if authorization is None:
            role = anonymous_role()
            if role is None:
                raise _unauthorized("this server needs an API key (Authorization: Bearer)")
            return Caller(f"{ANONYMOUS}@{address}", role)
        scheme, _, clear = authorization.partition(" ")
        key = self.keys.authenticate(clear.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise _unauthorized("unknown, revoked or expired API key")
        return Caller(f"api:{key.name}", key.role)

    def asker(self, conversation_id: str | None, caller: Caller) -> tuple[str, Asker]:
        with self.conversations_lock:
            known = self.conversations.get(conversation_id or "")
        if known is not None and known.principal == caller.principal:
            return conversation_id, known
        created = self.new_asker(caller)
        new_id = uuid.uuid4().hex[:12]
        with self.conversations_lock:
            if len(self.conversations) >= MAX_CONVERSATIONS:
                self.conversations.pop(next(iter(self.conversations)))
            self.conversations[new_id] = created
        return new_id, created

    def new_asker(self, caller: Caller, role: str | None = None) -> Asker:
        return Asker(
            self.lake,
            self.layer,
            self.reader,
            role=role or caller.role,
            principal=caller.principal,
            limits=self.limits,
            parser=self.parser(),
            audit_writer=self.audit_writer,
            duckdb=self.duckdb,
        )

    def parser(self) -> OfflineParser:
        """One interpreter for every conversation, made anew when the dimension values
        and latest days it matches have changed (a refresh committed to a product)."""
        return self.interpreter(self.layer, self.lake)

    def product_page(self, key: str, role: str, principal: str | None = None) -> dict[str, Any]:
        contract = self.layer.contracts.get(key)
        if contract is None:
            raise HTTPException(404, f"no product {key}")
        decision = self.reader.authorize(key, role, contract=contract)
        schema = [
            {
                "name": c.name,
                "type": c.logical_type,
                "description": c.description,
                "classification": c.classification,
                "mask": decision.masks.get(c.name) if decision.allowed else None,
            }
            for c in contract.columns
        ]
        info = self.lake.info(key) if self.lake.exists(key) else None
        page = {
            "key": key,
            "description": contract.description,
            "owner": contract.owner,
            "version": contract.version,
            "docs": self._docs(key),
            "schema": schema,
            "quality": self._quality(key, info),
            "lineage": {
                "upstream": sorted(a for a, b in self.lineage if b == key),
                "downstream": sorted(b for a, b in self.lineage if a == key),
            },
            "access": decision.reason,
            "sample": None,
            "trends": self._trends(contract, info, decision.allowed),
        }
        if decision.allowed and info is not None:
            frame = self.reader.read(
                key, role, limit=SAMPLE_ROWS, principal=principal, channel="api", contract=contract
            )
            page["sample"] = {"columns": frame.columns, "rows": _rows(frame.rows())}
        return page

    def domain_insights(self, role: str, principal: str) -> list[dict[str, Any]]:
        """Each domain's built `<domain>/insights` product the role may read: its rows
        (headlines, movers, risks from anomaly and drift checks) and Markdown report."""
        found = []
        for key in sorted(k for k in self.layer.contracts if k.endswith("/insights")):
            if not self.lake.exists(key):
                continue
            try:
                frame = self.reader.read(key, role, principal=principal, channel="api")
            except AccessDenied:
                continue
            uri = insights_report_uri(self.lake.settings, key.split("/")[0])
            markdown = self.lake.settings.files.read_text_or(uri, "")
            found.append({"product": key, "rows": frame.to_dicts(), "markdown": markdown})
        return found

    def _trends(self, contract: Any, info: Any, readable: bool) -> dict[str, Any]:
        """The product page's trend panel: rows and flagged anomalies per partition (for
        a role that may read the product) and the quality score's history, dimensions
        (freshness, anomalies, drift...) included."""
        part = contract.partition_column
        trends: dict[str, Any] = {"partition": part, "rows": [], "anomalies": []}
        trends["history"] = score_history(self.lake.settings, contract)
        if not (readable and info is not None and part):
            return trends
        trends["rows"] = self._per_partition(contract.key, part)
        companion = self.layer.contracts.get(contract.key + ANOMALIES)
        if companion is not None and companion.partition_column and self.lake.exists(companion.key):
            trends["anomalies"] = self._per_partition(companion.key, companion.partition_column)
        return trends

    def _per_partition(self, key: str, part: str) -> list[list[Any]]:
        by_day = self.lake.scan(key).group_by(day_of(part))  # a timestamp's: its UTC day
        counts = by_day.agg(pl.len().alias("rows")).sort(part)
        return [[str(value), n] for value, n in counts.collect().iter_rows()]

    def _docs(self, key: str) -> str | None:
        domain, name = key.split("/")
        uri = self.lake.settings.uri("docs", domain, f"{name}.md")
        return self.lake.settings.files.read_text_or(uri)

    def _quality(self, key: str, info: Any) -> dict[str, Any]:
        contract = self.layer.contracts[key]
        # the data's age is its newest event against the SLA, not the last write's time
        fresh = judge_freshness(contract, self.lake, info=info) if info else None
        quality: dict[str, Any] = {
            "rows": info.rows if info else None,
            "table_version": info.version if info else None,
            "last_update": info.last_update.isoformat() if info else None,
            "newest_event": str(fresh.newest) if fresh and fresh.newest else None,
            "freshness": fresh.label if fresh else "never built",
            "freshness_detail": fresh.describe() if fresh else "never built",
            "min_row_count": contract.min_row_count,
            "policies": [],
        }
        scorecard = "governance/policy_scorecard"
        if self.lake.exists(scorecard):
            rows = self.lake.scan(scorecard).filter(pl.col("product_key") == key).collect()
            quality["policies"] = [
                {"policy": r["policy"], "passed": r["passed"], "reason": r["reason"]}
                for r in rows.select("policy", "passed", "reason").to_dicts()
            ]
        return quality


def _rows(rows: list[tuple]) -> list[list[Any]]:
    return [
        [v if isinstance(v, int | float | str | bool) or v is None else str(v) for v in r]
        for r in rows
    ]


def _caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    address = request.client.host if request.client else "unknown"
    return request.app.state.mesh.caller(authorization, address)


CallerDep = Annotated[Caller, Depends(_caller)]


def create_app(lake: Lake | None = None, layer: SemanticLayer | None = None) -> FastAPI:
    app = FastAPI(
        title="Meshwork",
        description="Search, product pages and questions.",
        docs_url=None,  # served below, behind the same key check as the API
        redoc_url=None,
        openapi_url=None,
    )
    mesh = MeshAPI(lake, layer)
    app.state.mesh = mesh
    app.add_middleware(BodyLimit, max_bytes=mesh.limits.max_body_bytes)
    # The query workers' fork server, before the first request; it imports dagster_duckdb
    # once, for the DuckDBResource each job's connections come from.
    worker.warm_up(preload=worker.connections_modules(mesh.duckdb))

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE  # static: no data, and where a caller enters the key

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        # Static like the page (no data): Plotly from the installed package, cached a day.
        headers = {"Cache-Control": "public, max-age=86400"}
        return Response(plotly_js(), media_type="text/javascript", headers=headers)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: CallerDep) -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    def docs(who: CallerDep) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Meshwork API")

    @app.get("/api/search")
    def search(q: str, who: CallerDep, k: int = Query(10, ge=1, le=50)) -> list[dict[str, Any]]:
        _within(check_size, "search text", q, MAX_SEARCH_CHARS)
        return [h.to_dict() for h in mesh.index.search(q, k=k)]

    @app.get("/api/products")
    def products(who: CallerDep) -> list[dict[str, Any]]:
        return [
            {"key": key, "description": c.description, "owner": c.owner}
            for key, c in sorted(mesh.layer.contracts.items())
        ]

    @app.get("/api/products/{domain}/{name}")
    def product(domain: str, name: str, who: CallerDep, role: str | None = None) -> dict[str, Any]:
        try:
            return mesh.product_page(f"{domain}/{name}", who.acting_as(role), who.principal)
        except AccessDenied as exc:
            raise HTTPException(403, str(exc)) from None

    @app.post("/api/ask")
    def ask(request: AskRequest, who: CallerDep) -> dict[str, Any]:
        if not (request.question or request.sql):
            raise HTTPException(422, "give a question or sql")
        who.acting_as(request.role)
        conversation_id, asker = mesh.asker(request.conversation_id, who)
        if request.sql:
            columns, rows, truncated = _within(asker.run_sql, request.sql)
            answer = {
                "question": request.sql,
                "semantic_query": None,
                "sql": request.sql,
                "columns": columns,
                "rows": rows,
                "narrative": f"{len(rows)} row(s).",
                "provider": "sql",
                "answered": True,
                "status": "answered",
                "truncated": truncated,
            }
        else:
            follow_up = request.conversation_id == conversation_id
            answer = _within(asker.ask, request.question, follow_up=follow_up).as_dict()
        answer["rows"] = _rows([tuple(r) for r in answer["rows"]])
        answer["chart"] = answer_chart(answer["columns"], answer["rows"])
        return {**answer, "conversation_id": conversation_id}

    @app.get("/api/insights")
    def insights(who: CallerDep, role: str | None = None) -> dict[str, Any]:
        asker = mesh.new_asker(who, who.acting_as(role))
        computed = _within(mesh_insights, asker)
        return {**computed, "domains": mesh.domain_insights(asker.role, who.principal)}

    return app


def _within(call, *args, **kwargs):
    """The call's result; the mesh's refusals as HTTP errors (AskError carries its status:
    400, 413 too large, 429 or 503 busy)."""
    try:
        return call(*args, **kwargs)
    except AskError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except AccessDenied as exc:
        raise HTTPException(403, str(exc)) from None
