"""The mesh's files, local or on an object store, by URI through `pyarrow.fs` (never
`os.path`), so `s3://`, `gs://` and `az://` work as a local folder does. Files are written
whole (object stores cannot append)."""

from __future__ import annotations

import io
import os

import polars as pl
import pyarrow.fs as pafs

from dagster_project.core.environment import is_uri

__all__ = ["Files", "is_uri"]


class Files:
    """The files below one root location (a local folder or an object-store URI)."""

    def __init__(self, fs: pafs.FileSystem, root: str = "", root_path: str = ""):
        self.fs = fs
        self.root = root.rstrip("/")
        self.root_path = root_path.rstrip("/")
        self.is_local = isinstance(fs, pafs.LocalFileSystem)

    @classmethod
    def at(cls, root: str) -> Files:
        """The files below `root`, on the filesystem its scheme names."""
        fs, root_path = pafs.FileSystem.from_uri(root)
        return cls(fs, root, root_path)

    def path(self, uri: str) -> str:
        """The path `self.fs` understands for a URI (a plain path is one already)."""
        if not is_uri(uri):
            return uri
        if self.root and (uri == self.root or uri.startswith(self.root + "/")):
            return self.root_path + uri[len(self.root) :]
        _, path = pafs.FileSystem.from_uri(uri)
        return path

    def list_infos(self, uri: str) -> list[pafs.FileInfo]:
        """Files directly below `uri` with size and mtime (one listing), sorted by name."""
        selector = pafs.FileSelector(self.path(uri), allow_not_found=True)
        infos = [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
        return sorted(infos, key=lambda i: i.base_name)

    def list_files(self, uri: str) -> list[str]:
        """Files directly below `uri` (sorted), as URIs; empty when it does not exist."""
        base = uri.rstrip("/")
        return [f"{base}/{i.base_name}" for i in self.list_infos(uri)]

    def list_dirs(self, uri: str) -> list[str]:
        """Names of the folders directly below `uri` (sorted)."""
        selector = pafs.FileSelector(self.path(uri), allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def file_info(self, uri: str) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path(uri))

    def exists(self, uri: str) -> bool:
        return self.file_info(uri).type != pafs.FileType.NotFound

    def makedirs(self, uri: str) -> None:
        self.fs.create_dir(self.path(uri), recursive=True)

    def write_bytes(self, uri: str, data: bytes) -> None:
        self.makedirs(uri.rsplit("/", 1)[0])  # a no-op on object stores
        with self.fs.open_output_stream(self.path(uri)) as out:
            out.write(data)

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode())

    def write_private_text(self, uri: str, text: str) -> None:
        """Write a file of secrets (or their digests): readable by its owner only on a
        local disk; on an object store the bucket's access policy decides."""
        self.write_text(uri, text)
        if self.is_local:
            os.chmod(self.path(uri), 0o600)

    def write_parquet(self, uri: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        self.write_bytes(uri, buffer.getvalue())

    def read_parquet(self, uri: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read_bytes(uri)))

    def read_bytes(self, uri: str) -> bytes:
        with self.fs.open_input_stream(self.path(uri)) as stream:
            return stream.read()

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode()

    def read_text_or(self, uri: str, default: str | None = None) -> str | None:
        """The file's text, or `default` when there is no such file."""
        return self.read_text(uri) if self.exists(uri) else default

    def move(self, src: str, dst: str) -> None:
        self.makedirs(dst.rsplit("/", 1)[0])
        self.fs.move(self.path(src), self.path(dst))

    def delete(self, uri: str) -> None:
        """Delete a file; one that is not there is fine."""
        if self.exists(uri):
            self.fs.delete_file(self.path(uri))
