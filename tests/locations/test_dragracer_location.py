import dagster as dg

from domains.dragracer.definitions import defs


def test_dragracer_location_loads():
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert "dragracer/contestants" in keys
