"""Benchmark: the mesh's PII detection against Microsoft Presidio's pattern recognizers.

    python bench/pii.py [--values N] [--seed S] [--json FILE]

Columns of N Faker values each, in seven locales (en_US, en_GB, de_DE, fr_FR, es_ES,
it_IT, nl_NL): emails, phone numbers, IBANs, card numbers, IPv4 and IPv6 addresses,
person names and birth dates (positives), and cities, companies, jobs, sentences,
event dates of this decade, EAN-13 codes, UUIDs, integers, prices, countries, colours,
licence plates and SKU-like codes (negatives). Column names are neutral (col_000...):
detection is by values only, on both sides.

Presidio (presidio-analyzer, in its own virtualenv under bench/results/venvs/) runs
offline: a blank spaCy pipeline saved to disk backs its NlpEngine (no model is
downloaded; so its NER-based PERSON recognizer finds nothing, which the table shows),
and tldextract uses its bundled suffix list. Its entities map to kinds: EMAIL_ADDRESS,
PHONE_NUMBER, IBAN_CODE, CREDIT_CARD, IP_ADDRESS, PERSON, DATE_TIME (-> birth date).
Both sides label a column with a kind when at least 60% of its values are found as
that kind (the mesh's own rule), so the comparison is column-level precision, recall
and F1 per kind, plus value-level recall on the positive columns.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.isolated_venv import venv_python  # noqa: E402

PRESIDIO_PINS = ["presidio-analyzer==2.2.366", "spacy==3.8.18"]
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")
POSITIVE = {
    "email": "email",
    "phone_number": "phone",
    "iban": "iban",
    "credit_card_number": "card",
    "ipv4": "ip",
    "ipv6": "ip",
    "name": "name",
    "date_of_birth": "birth_date",
}
NEGATIVE = (
    *("city", "company", "job", "sentence", "date_this_decade", "ean13", "uuid4"),
    *("pyint", "pricetag", "country", "color_name", "license_plate", "sku"),
)
KINDS = ("email", "phone", "iban", "card", "ip", "name", "birth_date")
ENTITY_KIND = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "card",
    "IP_ADDRESS": "ip",
    "PERSON": "name",
    "DATE_TIME": "birth_date",
}
MIN_SHARE = 0.6

PRESIDIO_SCRIPT = r"""
import json, sys, time, warnings, logging
from pathlib import Path
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import tldextract
tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())  # no fetch
import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider

model = Path(sys.argv[2])
if not model.exists():
    spacy.blank("en").to_disk(model)
config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": str(model)}]}
engine = NlpEngineProvider(nlp_configuration=config).create_engine()
analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
columns = json.loads(open(sys.argv[1]).read())
analyzer.analyze(text="warm up a@b.co", language="en")
started = time.perf_counter()
out = {}
for name, values in columns.items():
    found = []
    for value in values:
        results = analyzer.analyze(text=value, language="en")
        best = max(results, key=lambda r: r.score, default=None)
        found.append(best.entity_type if best else None)
    out[name] = found
print(json.dumps({"seconds": time.perf_counter() - started, "entities": out}))
"""


def make_columns(values: int, seed: int) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    from faker import Faker

    columns, truth = {}, {}
    index = 0
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        for generator in (*POSITIVE, *NEGATIVE):
            if generator == "sku":
                make = lambda fake=fake: fake.bothify("??-####-??").upper()  # noqa: E731
            else:
                make = getattr(fake, generator)
            name = f"col_{index:03d}"
            columns[name] = [str(make()) for _ in range(values)]
            truth[name] = POSITIVE.get(generator)
            index += 1
    return columns, truth


def column_kind(found: list[str | None]) -> str | None:
    counts = Counter(k for k in found if k)
    if not counts:
        return None
    kind, n = counts.most_common(1)[0]
    return kind if n >= MIN_SHARE * len(found) else None


def run_mesh(columns: dict[str, list[str]]) -> tuple[dict[str, str | None], dict, float]:
    from dagster_project.checks.pii import classify_column, detect_value

    started = time.perf_counter()
    labels = {}
    for name, values in columns.items():
        finding = classify_column(name, pl.Series(values))
        labels[name] = finding.kind if finding else None
    seconds = time.perf_counter() - started
    per_value = {name: [detect_value(v) for v in values] for name, values in columns.items()}
    return labels, per_value, seconds


def scores(labels: dict, truth: dict) -> dict[str, dict[str, float]]:
    out = {}
    for kind in KINDS:
        tp = sum(1 for c in truth if labels[c] == kind and truth[c] == kind)
        fp = sum(1 for c in truth if labels[c] == kind and truth[c] != kind)
        fn = sum(1 for c in truth if labels[c] != kind and truth[c] == kind)
        precision = tp / (tp + fp) if tp + fp else 1.0 if not fn else 0.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[kind] = {"precision": precision, "recall": recall, "f1": f1, "fp": fp}
    return out


def value_recall(per_value: dict, truth: dict, kind: str) -> float:
    hits = total = 0
    for column, expected in truth.items():
        if expected != kind or kind == "birth_date":
            continue
        total += len(per_value[column])
        hits += sum(1 for k in per_value[column] if k == kind)
    return hits / total if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=100, help="values per column")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console()
    columns, truth = make_columns(args.values, args.seed)
    labels, per_value, seconds = run_mesh(columns)
    venvs = ROOT / "bench" / "results" / "venvs"
    with console.status("Preparing Presidio's virtualenv (first run installs it)"):
        python = venv_python(venvs, PRESIDIO_PINS)
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "columns.json"
        job.write_text(json.dumps(columns))
        script = Path(tmp) / "presidio_job.py"
        script.write_text(PRESIDIO_SCRIPT)
        model = python.parent.parent / "blank_en"
        done = subprocess.run(
            [str(python), str(script), str(job), str(model)],
            capture_output=True,
            text=True,
            check=True,
        )
    presidio = json.loads(done.stdout.strip().splitlines()[-1])
    p_values = {c: [ENTITY_KIND.get(e) for e in found] for c, found in presidio["entities"].items()}
    p_labels = {c: column_kind(found) for c, found in p_values.items()}
    ours, theirs = scores(labels, truth), scores(p_labels, truth)
    report(console, ours, theirs, per_value, p_values, truth, seconds, presidio["seconds"], args)


def report(console, ours, theirs, per_value, p_values, truth, seconds, p_seconds, args) -> None:
    n_columns = len(truth)
    table = Table(
        title=f"PII detection by values: {n_columns} Faker columns x {args.values} values, "
        f"{len(LOCALES)} locales"
    )
    for column in ("kind", "mesh F1", "Presidio F1", "mesh P/R", "Presidio P/R"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    table.add_column("value recall mesh / Presidio", justify="right")
    result: dict[str, float | int] = {}
    for kind in KINDS:
        a, b = ours[kind], theirs[kind]
        recall_a = value_recall(per_value, truth, kind)
        recall_b = value_recall(p_values, truth, kind)
        table.add_row(
            kind,
            f"{a['f1']:.3f}",
            f"{b['f1']:.3f}",
            f"{a['precision']:.2f}/{a['recall']:.2f}",
            f"{b['precision']:.2f}/{b['recall']:.2f}",
            "-" if kind == "birth_date" else f"{recall_a:.3f} / {recall_b:.3f}",
        )
        result[f"{kind}_f1"] = round(a["f1"], 4)
        result[f"{kind}_presidio_f1"] = round(b["f1"], 4)
    macro = sum(ours[k]["f1"] for k in KINDS) / len(KINDS)
    p_macro = sum(theirs[k]["f1"] for k in KINDS) / len(KINDS)
    pattern = [k for k in KINDS if k != "name"]  # what Presidio covers without an NER model
    macro_pattern = sum(ours[k]["f1"] for k in pattern) / len(pattern)
    p_macro_pattern = sum(theirs[k]["f1"] for k in pattern) / len(pattern)
    table.add_row("macro F1 (all kinds)", f"{macro:.3f}", f"{p_macro:.3f}", "", "", "")
    table.add_row(
        "macro F1 (without names)", f"{macro_pattern:.3f}", f"{p_macro_pattern:.3f}", "", "", ""
    )
    values = n_columns * args.values
    table.add_row(
        "ms per value",
        f"{1000 * seconds / values:.3f}",
        f"{1000 * p_seconds / values:.3f}",
        "",
        "",
        "",
    )
    console.print(table)
    result.update(
        {
            "macro_f1": round(macro, 4),
            "presidio_macro_f1": round(p_macro, 4),
            "macro_f1_without_names": round(macro_pattern, 4),
            "presidio_macro_f1_without_names": round(p_macro_pattern, 4),
            "false_positive_columns": sum(ours[k]["fp"] for k in KINDS),
            "presidio_false_positive_columns": sum(theirs[k]["fp"] for k in KINDS),
            "seconds": round(seconds, 3),
            "presidio_seconds": round(p_seconds, 3),
            "columns": n_columns,
            "values_per_column": args.values,
        }
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
