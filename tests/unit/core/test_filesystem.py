"""The mesh's files: the same behaviour on a local folder, a file:// URI and an in-memory
store (pyarrow's mock filesystem below a SubTreeFileSystem, as an object store would be)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from dagster_project.core.filesystem import Files
from dagster_project.core.settings import MeshSettings


def _local(tmp_path: Path) -> tuple[Files, str]:
    return Files.at(str(tmp_path)), str(tmp_path)


def _file_uri(tmp_path: Path) -> tuple[Files, str]:
    root = tmp_path.as_uri()
    return Files.at(root), root


def _in_memory(_tmp_path: Path) -> tuple[Files, str]:
    memory = pafs._MockFileSystem(datetime(2025, 3, 1))
    return Files(pafs.SubTreeFileSystem("mesh", memory)), "home"


@pytest.fixture(params=[_local, _file_uri, _in_memory], ids=["local", "file-uri", "in-memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Files, str]:
    make: Callable[[Path], tuple[Files, str]] = request.param
    return make(tmp_path)


def test_written_files_are_listed_read_and_moved(where: tuple[Files, str]) -> None:
    files, root = where
    folder = f"{root}/landing/sales/stores"
    files.write_bytes(f"{folder}/2025-03-02.parquet", b"two!")
    files.write_text(f"{folder}/2025-03-01.csv", "id\n1\n")
    files.makedirs(f"{folder}/sub")

    assert files.list_files(folder) == [f"{folder}/2025-03-01.csv", f"{folder}/2025-03-02.parquet"]
    assert [(i.base_name, i.size) for i in files.list_infos(folder)] == [
        ("2025-03-01.csv", 5),
        ("2025-03-02.parquet", 4),
    ]
    assert files.list_dirs(f"{root}/landing") == ["sales"]
    assert files.list_dirs(folder) == ["sub"]
    assert files.read_text(f"{folder}/2025-03-01.csv") == "id\n1\n"
    assert files.file_info(f"{folder}/2025-03-02.parquet").size == 4

    target = f"{root}/quarantine/sales/stores/2025-03-02.parquet"
    files.move(f"{folder}/2025-03-02.parquet", target)
    assert not files.exists(f"{folder}/2025-03-02.parquet")
    assert files.read_bytes(target) == b"two!"


def test_a_missing_folder_lists_nothing(where: tuple[Files, str]) -> None:
    files, root = where
    assert files.list_files(f"{root}/landing/nobody") == []
    assert files.list_dirs(f"{root}/landing") == []
    assert not files.exists(f"{root}/landing/nobody/file.csv")


def test_a_rewrite_replaces_the_whole_file(where: tuple[Files, str]) -> None:
    files, root = where
    uri = f"{root}/alerts/2025-03-01.jsonl"
    files.write_text(uri, "a much longer first version\n")
    files.write_text(uri, "short\n")
    assert files.read_text(uri) == "short\n"


def test_private_files_are_owner_only_on_a_local_disk(tmp_path: Path) -> None:
    files = Files.at(str(tmp_path))
    uri = f"{tmp_path}/registry/secrets.local.yaml"
    files.write_private_text(uri, "key: value\n")
    assert stat.S_IMODE(Path(uri).stat().st_mode) == 0o600
    assert files.read_text(uri) == "key: value\n"


def test_uris_below_the_root_map_to_the_stores_paths() -> None:
    files = Files(pafs.SubTreeFileSystem("", pafs._MockFileSystem()), "s3://bucket/mesh/", "b/m")
    assert files.path("s3://bucket/mesh/lake/sales") == "b/m/lake/sales"
    assert files.path("s3://bucket/mesh") == "b/m"
    assert files.path("already/a/path") == "already/a/path"
    assert Files.at("/tmp").path("file:///elsewhere/x") == "/elsewhere/x"  # outside the root


def test_settings_give_their_homes_files(tmp_path: Path) -> None:
    settings = MeshSettings(home=str(tmp_path))
    assert settings.files is settings.files  # one filesystem per settings object
    settings.files.write_text(settings.registry_uri("state.json"), "{}")
    assert (tmp_path / "registry" / "state.json").read_text() == "{}"
    assert settings.files.is_local and settings.is_local
