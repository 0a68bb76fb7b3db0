from datetime import date

import polars as pl
import pytest
from faker import Faker

from dagster_project.checks.pii import (
    classify_column,
    detect_value,
    iban_valid,
    is_card,
    looks_like_birth_dates,
    luhn_valid,
)
from dagster_project.checks.policies import evaluate_policies
from dagster_project.core.contracts import Contract
from tests.factories import column, contract_document
from tests.small_mesh import frames

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
NEGATIVE = ("city", "company", "job", "sentence", "date_this_decade", "ean13", "uuid4", "pyint")


def test_validators():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert is_card("4111 1111 1111 1111") and not is_card("1234 5678 9012 3456")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82WEST12345698765433")
    assert detect_value("2001:db8::1") == "ip" and detect_value("10.0.0.256") is None
    assert detect_value("+44 20 7946 0958") == "phone" and detect_value("20250301") is None
    assert (
        detect_value("Dr. Grace Hopper") == "name" and detect_value("Leeds High Street") == "name"
    )


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "fr_FR", "es_ES"])
def test_faker_columns_are_found_by_values_alone(locale):
    fake = Faker(locale)
    fake.seed_instance(11)
    for generator, kind in POSITIVE.items():
        values = pl.Series([str(getattr(fake, generator)()) for _ in range(120)])
        finding = classify_column("col", values)
        assert finding is not None and finding.kind == kind, (locale, generator)
        assert finding.evidence == "values"
    for generator in NEGATIVE:
        values = pl.Series([str(getattr(fake, generator)()) for _ in range(120)])
        assert classify_column("col", values) is None, (locale, generator)


def test_names_need_a_given_name_somewhere():
    stores = pl.Series(
        [f"{city} {suffix}" for city in ("Leeds", "York") for suffix in ("Centre", "Station Road")]
    )
    assert classify_column("store_name", stores) is None


def test_places_and_firms_named_after_people_are_not_person_names():
    # Given names in a third of them, but "Airport" and "Intl" recur as no surname does.
    airports = pl.Series(
        [
            *("John F Kennedy Intl", "General Edward Lawrence Logan Intl", "Newark Liberty Intl"),
            *("Randall Airport", "Jefferson County Airport", "Moton Field Municipal Airport"),
            *("Lansdowne Airport", "Schaumburg Regional", "San Francisco Intl", "Denver Intl"),
        ]
    )
    assert classify_column("name", airports) is None
    people = pl.Series(["John Kennedy", "Edward Logan", "Maria Jefferson", "Anna Randall"] * 3)
    assert classify_column("name", people).kind == "name"


def test_birth_dates_spread_over_generations_event_dates_do_not():
    births = pl.Series([date(1950 + i % 50, 1 + i % 12, 1 + i % 28) for i in range(200)])
    events = pl.Series([date(2024, 1 + i % 12, 1 + i % 28) for i in range(200)])
    assert looks_like_birth_dates(births) == 1.0
    assert looks_like_birth_dates(events) == 0.0
    assert classify_column("born_on", births).evidence == "column name and values"
    # Decades of store openings look like birthdays by value; the name says otherwise.
    assert classify_column("col", births).kind == "birth_date"
    assert classify_column("opened_date", births) is None


def test_no_false_positives_on_the_demo_products(demo_contracts):
    for key, frame in frames().items():
        contract = demo_contracts[key]
        found = [n for n in frame.columns if classify_column(n, frame[n])]
        assert set(found) <= set(contract.pii_columns), (key, found)


def test_the_policy_fails_unclassified_personal_data_found_by_values():
    document = contract_document(
        [
            column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("contact"),
        ]
    )
    contract = Contract(document)
    sample = pl.DataFrame({"widget_id": [1, 2, 3], "contact": ["a@x.io", "b@y.io", "c@z.io"]})
    failed = evaluate_policies(contract, None, sample)["pii_classified"]
    assert not failed.passed and "contact (email, by values, 100% of values)" in failed.reason
    assert evaluate_policies(contract, None)["pii_classified"].passed  # names alone: fine
    document["schema"][0]["properties"][1]["classification"] = "pii"
    passed = evaluate_policies(Contract(document), None, sample)["pii_classified"]
    assert passed.passed and "values checked" in passed.reason


def test_an_explicit_classification_settles_a_value_match():
    document = contract_document(
        [
            column("widget_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("owner", classification="internal"),  # product owners' work emails
        ]
    )
    sample = pl.DataFrame({"widget_id": [1, 2], "owner": ["ana@corp.example", "bo@corp.example"]})
    assert evaluate_policies(Contract(document), None, sample)["pii_classified"].passed


def test_identifiers_numbered_under_one_prefix_are_not_phone_numbers():
    tickets = pl.Series([f"2015-{n:06d}" for n in range(1, 400, 3)])
    assert classify_column("ticket", tickets) is None
    invoices = pl.Series([f"INV-2024-{n:05d}" for n in range(1, 300)])
    assert classify_column("reference", invoices) is None
    # Real phones stay personal data, even all in one area code.
    london = pl.Series([f"020 {7000_0000 + 7919 * n}" for n in range(300)])
    assert classify_column("contact", london).kind == "phone"
    mixed = pl.Series([f"+1 ({200 + n % 700}) 555-{1000 + n:04d}" for n in range(300)])
    assert classify_column("contact", mixed).kind == "phone"
