"""Runs inside the isolated virtualenv with the official `delta-sharing` client.

    python sharing_client.py JOB.json OUT_DIR

JOB: {"profile": path, "bad_profile": path, "share": name, "tables": [...],
"versions": {"schema.table": version}}. Writes OUT_DIR/result.json and one parquet file
per loaded frame, for the test (in the mesh's own environment) to compare.
"""

import json
import sys
from pathlib import Path

import delta_sharing
from delta_sharing.protocol import DeltaSharingProfile, Table
from delta_sharing.rest_client import DataSharingRestClient
from requests.exceptions import HTTPError


def status_of(call):
    try:
        call()
    except HTTPError as exc:
        return exc.response.status_code
    return 200


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    profile, share = job["profile"], job["share"]
    client = delta_sharing.SharingClient(profile)
    rest = DataSharingRestClient(DeltaSharingProfile.read_from_file(profile))
    result = {
        "shares": [s.name for s in client.list_shares()],
        "schemas": sorted(s.name for s in client.list_schemas(delta_sharing.Share(share))),
        "all_tables": sorted(f"{t.schema}.{t.name}" for t in client.list_all_tables()),
        "versions": {},
        "metadata": {},
        "loads": {},
    }
    for name in job["tables"]:
        schema, table = name.split(".")
        url = f"{profile}#{share}.{schema}.{table}"
        ref = Table(name=table, share=share, schema=schema)
        result["versions"][name] = rest.query_table_version(ref).delta_table_version
        meta = rest.query_table_metadata(ref)
        result["metadata"][name] = {
            "version": meta.delta_table_version,
            "schema": json.loads(meta.metadata.schema_string),
            "partition_columns": meta.metadata.partition_columns,
        }
        for fmt, delta in (("parquet", False), ("delta", True)):
            frame = delta_sharing.load_as_pandas(url, use_delta_format=delta)
            frame.to_parquet(out / f"{name}.{fmt}.full.parquet")
            limited = delta_sharing.load_as_pandas(url, limit=2, use_delta_format=delta)
            result["loads"][f"{name}.{fmt}.limit2"] = len(limited)
            version = job["versions"].get(name)
            if version is not None:
                old = delta_sharing.load_as_pandas(url, version=version, use_delta_format=delta)
                old.to_parquet(out / f"{name}.{fmt}.v{version}.parquet")
    first = job["tables"][0].split(".")
    bad = f"{job['bad_profile']}#{share}.{first[0]}.{first[1]}"
    result["wrong_token"] = status_of(lambda: delta_sharing.load_as_pandas(bad))
    missing = f"{profile}#{share}.{first[0]}.no_such_table"
    result["unknown_table"] = status_of(lambda: delta_sharing.load_as_pandas(missing))
    files = rest.list_files_in_table(Table(name=first[1], share=share, schema=first[0]))
    result["file_urls"] = [f.url for f in files.add_files]
    (out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
