from dagster_project.checks.profiling import profile_product
from tests.small_mesh import write_small_mesh


def test_aggregates_only_by_default_and_nothing_of_pii(lake, demo_contracts):
    data = write_small_mesh(lake, demo_contracts)
    profile = profile_product(lake, demo_contracts["customers/customer_profiles"])
    assert profile.rows == 5
    email = profile.columns["email"]
    assert email.pii and email.distinct_count == 5 and email.null_fraction == 0
    birth = profile.columns["birth_date"]
    assert (birth.minimum, birth.maximum, birth.samples) == (None, None, ())
    signup = profile.columns["signup_date"]
    assert signup.minimum == data["customers/customer_profiles"]["signup_date"].min()
    assert all(c.samples == () for c in profile.columns.values())
    facts = str([c.facts() for c in profile.columns.values()])
    for value in data["customers/customer_profiles"]["email"]:
        assert value not in facts


def test_samples_when_allowed_for_non_pii_columns_only(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    profile = profile_product(lake, demo_contracts["customers/customer_profiles"], samples=True)
    assert profile.columns["city"].samples[0] == "Porto"  # the most frequent first
    assert profile.columns["full_name"].samples == ()
    assert profile.columns["email"].samples == ()


def test_a_product_never_built_has_no_profile(lake, demo_contracts):
    assert profile_product(lake, demo_contracts["sales/stores"]) is None


def test_an_unchanged_product_is_not_scanned_again_a_changed_one_is(
    lake, demo_contracts, monkeypatch
):
    from dagster_project.core.contracts import Contract
    from dagster_project.lake.storage import Lake

    data = write_small_mesh(lake, demo_contracts)
    contract = demo_contracts["customers/customer_profiles"]
    first = profile_product(lake, contract, samples=True)
    scan = Lake.scan

    def refused(self, *args, **kwargs):
        raise AssertionError("an unchanged product was scanned again")

    monkeypatch.setattr(Lake, "scan", refused)
    assert profile_product(lake, contract, samples=True) == first
    monkeypatch.setattr(Lake, "scan", scan)
    lake.write(contract, data["customers/customer_profiles"].head(2), mode="overwrite")
    assert profile_product(lake, contract, samples=True).rows == 2  # a new Delta version
    # A column classified PII since (the same table version) shows no values any more.
    document = {**contract.document}
    schema = [dict(s) for s in document["schema"]]
    schema[0]["properties"] = [
        {**p, "classification": "pii"} if p["name"] == "city" else p
        for p in schema[0]["properties"]
    ]
    document["schema"] = schema
    reclassified = Contract(document, "<reclassified>")
    assert profile_product(lake, reclassified, samples=True).columns["city"].samples == ()
