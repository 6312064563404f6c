"""All writing of a job's output: Delta Lake tables whose transaction logs are the one record of
what the output holds.

Layout (every table a Delta table, unpartitioned; one data file per shard per table per commit,
with per-file min/max statistics so one source's rows are found without reading other files):

    <output>/poses  frames  errors  tracks      the user tables (schemas/*.v1.json)
    <output>/_posepipe/shard_log                one row per source of every committed shard
    <output>/_manifest.json                     run summary only (spec, ids, counts, quality)

Commit protocol of a shard (see docs/job.md): poses, errors, frames, then shard_log, each one
Delta commit that *replaces* whatever rows the tables held for the shard's sources (and, for a
video shard, its frame interval) -- `write_deltalake(mode="overwrite", predicate=...)`. Every
commit is therefore idempotent: a retried, re-run or concurrently run shard, a shard of another
size or a changed input leave each (source, frame) exactly once. A shard is finished iff its
shard_log rows say ``done``, and they are written last. A commit that loses a race with another
writer (``CommitFailedError``) is re-run against the new snapshot.
"""
from __future__ import annotations

import json
import os
import random
import time
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

import pyarrow as pa

from pipeline import tables
from pipeline.storage import filesystem, is_remote, join

SHARD_LOG = "shard_log"
COMMIT_ATTEMPTS = 30
#: Delta table properties: keep replaced files 7 days (readers of older snapshots), checkpoint often.
TABLE_CONFIGURATION = {"delta.deletedFileRetentionDuration": "interval 7 days",
                       "delta.logRetentionDuration": "interval 30 days",
                       "delta.checkpointInterval": "50"}


class OutputConflictError(RuntimeError):
    """The output already holds results of a different model or configuration."""


class OutputAccessError(RuntimeError):
    """The output location cannot be read or written (missing bucket, refused credentials, ...)."""


def delta_storage_options(uri: str, storage_options: Mapping[str, Any] | None) -> dict[str, str]:
    """delta-rs (object_store) options equivalent to the fsspec/s3fs ``storage_options`` for ``uri``.

    key/secret/token, endpoint_url (http endpoints allowed) and client_kwargs.region_name map to the
    AWS_* options; with none given, delta-rs uses the usual AWS environment / instance profile.
    """
    if not is_remote(uri) or urlparse(uri).scheme not in ("s3", "s3a"):
        return {}
    so = dict(storage_options or {})
    out: dict[str, str] = {}
    for src, dst in (("key", "AWS_ACCESS_KEY_ID"), ("secret", "AWS_SECRET_ACCESS_KEY"),
                     ("token", "AWS_SESSION_TOKEN"), ("endpoint_url", "AWS_ENDPOINT_URL")):
        if so.get(src):
            out[dst] = str(so[src])
    client = dict(so.get("client_kwargs") or {})
    for src, dst in (("aws_access_key_id", "AWS_ACCESS_KEY_ID"), ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                     ("aws_session_token", "AWS_SESSION_TOKEN"), ("endpoint_url", "AWS_ENDPOINT_URL"),
                     ("region_name", "AWS_REGION")):
        if client.get(src):
            out[dst] = str(client[src])
    if so.get("anon"):
        out["AWS_SKIP_SIGNATURE"] = "true"
    endpoint = out.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):  # also an endpoint set by the environment (cluster nodes)
        out["AWS_ALLOW_HTTP"] = "true"
    if "AWS_ENDPOINT_URL" in out:
        out.setdefault("AWS_REGION", "us-east-1")
    return out


def table_uri(output: str, name: str) -> str:
    """Where table ``name`` lives under ``output``."""
    return join(output, "_posepipe", name) if name in tables.INTERNAL else join(output, name)


def quote(value: str) -> str:
    """``value`` as a SQL string literal for a Delta predicate."""
    return "'" + str(value).replace("'", "''") + "'"


def replace_predicate(column: str, uris: Sequence[str], covers: tuple[int | None, int | None] | None = None,
                      frame_column: str = "frame_index") -> str:
    """SQL predicate matching the rows of ``uris`` in ``column`` (and, with ``covers`` = (lo, hi),
    only ``frame_column`` in [lo, hi), a None bound being open)."""
    if len(uris) == 1:
        pred = f"{column} = {quote(uris[0])}"
    else:
        pred = f"{column} IN ({', '.join(quote(u) for u in uris)})"
    if covers is not None:
        lo, hi = covers
        if lo is not None:
            pred += f" AND {frame_column} >= {int(lo)}"
        if hi is not None:
            pred += f" AND {frame_column} < {int(hi)}"
    return pred


def _retrying(fn, what: str):
    """Run ``fn()`` until it commits, re-running it after a lost commit race (CommitFailedError)."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return fn()
        except CommitFailedError:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2 ** min(attempt, 5)) * (0.5 + random.random()))
    raise AssertionError(what)  # pragma: no cover


def _matches(table, predicate: str) -> bool:
    """Whether any row of the deltalake.DeltaTable snapshot ``table`` matches the SQL ``predicate``."""
    from pipeline.job.read import query

    return query(table, f"SELECT 1 AS x FROM t WHERE {predicate} LIMIT 1").num_rows > 0


def _with_table_columns(table, name: str, data: pa.Table) -> pa.Table:
    """``data`` with null string columns for the pass-through columns ``table`` (the frames table's
    snapshot) already has."""
    if name != "frames" or table is None:
        return data
    for column in (f.name for f in table.schema().fields):
        if column not in data.column_names:
            data = data.append_column(column, pa.nulls(data.num_rows, pa.string()))
    return data


class DeltaSink:
    """Opens, writes and commits a job's tables (the one interface for all writing).

    ``open(model_id, config_id)`` creates missing tables and refuses an output made with another
    model or configuration; ``replace(table, rows, predicate)`` is one idempotent commit;
    ``commit_shards`` writes shards' tables in the protocol's order; ``done_shards`` reads the log.
    Picklable (only the output URI and options are held), so Ray tasks carry it.
    """

    def __init__(self, output: str, storage_options: Mapping[str, Any] | None = None):
        self.output = output.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._delta_options = delta_storage_options(self.output, self.storage_options)

    # -- tables ------------------------------------------------------------------------------------
    def uri(self, name: str) -> str:
        """URI of table ``name``."""
        return table_uri(self.output, name)

    def table(self, name: str):
        """The current snapshot of table ``name`` as a deltalake.DeltaTable (None if not created)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri(name), storage_options=self._delta_options or None)
        except TableNotFoundError:
            return None

    def open(self, model_id: str, config_id: str) -> None:
        """Create the tables that are missing; raise OutputConflictError when the output was made with
        another model/config, OutputAccessError when it cannot be reached or written."""
        from deltalake import DeltaTable

        try:
            for name in tables.TABLES + tables.INTERNAL:
                if self.table(name) is None:
                    ids = json.dumps({"model_id": model_id, "config_id": config_id})
                    _retrying(lambda n=name, d=ids: DeltaTable.create(
                        self.uri(n), schema=tables.delta_schema(n), mode="ignore", name=n, description=d,
                        configuration=TABLE_CONFIGURATION, storage_options=self._delta_options or None),
                        f"create {name}")
            existing = json.loads(self.table(SHARD_LOG).metadata().description or "{}")
        except Exception as exc:  # noqa: BLE001
            from pipeline.storage import describe_error

            raise OutputAccessError(f"cannot use the output {describe_error(self.output, exc)}") from exc
        theirs = (existing.get("model_id"), existing.get("config_id"))
        if theirs != (model_id, config_id):
            raise OutputConflictError(
                f"{self.output} already holds results of model {theirs[0]} with config {theirs[1]}; this job "
                f"uses {model_id} / {config_id}. Write to a new output folder (or delete the old one).")

    def replace(self, name: str, rows: pa.Table, predicate: str | None, *, metadata: Mapping[str, str] | None = None
                ) -> int:
        """One commit to table ``name``: delete the rows matching ``predicate`` and add ``rows``
        (append when predicate is None); returns the table version it committed (the current one
        when there is nothing to add and no row matches: then nothing is committed)."""
        from deltalake import CommitProperties, write_deltalake

        if name == "errors" and rows.num_rows:  # no credential is ever written into a table
            from pipeline.secrets import mask_text, secret_values

            known = secret_values(self.storage_options)
            masked = [mask_text(m, known) for m in rows.column("message").to_pylist()]
            rows = rows.set_column(rows.schema.get_field_index("message"), "message", pa.array(masked, pa.string()))
        data = tables.to_delta(name, rows)
        props = CommitProperties(custom_metadata={k: str(v) for k, v in (metadata or {}).items()})

        def commit():
            table = self.table(name)  # one snapshot per attempt: written through, then its version read
            if not data.num_rows and predicate is not None and table is not None and not _matches(table, predicate):
                return table.version()  # nothing to add or delete: no commit (no empty log entry)
            rows = _with_table_columns(table, name, data)
            extra = set(rows.column_names) - set(tables.schema(name).names)  # manifest pass-through columns
            write_deltalake(table if table is not None else self.uri(name), rows,
                            mode="append" if predicate is None else "overwrite", predicate=predicate,
                            storage_options=self._delta_options or None, commit_properties=props,
                            schema_mode="merge" if extra else None)
            return (table or self.table(name)).version()

        return _retrying(commit, f"commit to {name}")

    def delete(self, name: str, predicate: str) -> None:
        """Delete the rows of ``name`` matching ``predicate`` (one commit; nothing if there is no table)."""
        def attempt():
            table = self.table(name)
            if table is not None:
                table.delete(predicate)

        _retrying(attempt, f"delete from {name}")

    def commit_shards(self, shards: Sequence[tuple[Mapping[str, pa.Table], Mapping[str, str], pa.Table, str]]) -> int:
        """Commit shards ``(rows, predicates, log_rows, shard_id)`` together: poses, errors, frames (each
        one commit replacing every old row any of the shards' predicates matches), then their
        shard_log rows (the "finished" record, last). The shards must not overlap (distinct sources,
        or distinct frame intervals of a video). Returns the poses version committed."""
        meta = {"posepipe.shard_ids": ",".join(s[3] for s in shards)}

        def together(name: str, table_rows: list[pa.Table]) -> tuple[pa.Table, str]:
            predicate = " OR ".join(f"({s[1][name]})" for s in shards)
            return pa.concat_tables(table_rows, promote_options="permissive"), predicate

        version = self.replace("poses", *together("poses", [s[0]["poses"] for s in shards]), metadata=meta)
        self.replace("errors", *together("errors", [s[0]["errors"] for s in shards]), metadata=meta)
        self.replace("frames", *together("frames", [s[0]["frames"] for s in shards]), metadata=meta)
        log, predicate = together(SHARD_LOG, [s[2] for s in shards])
        log = log.set_column(log.schema.get_field_index("poses_version"), "poses_version",
                             pa.array([version] * len(log), pa.int64()))
        self.replace(SHARD_LOG, log, predicate, metadata=meta)
        return version

    # -- reading the log ---------------------------------------------------------------------------
    def read(self, name: str, columns: Sequence[str] | None = None, filters=None) -> pa.Table:
        """Rows of table ``name`` from its current snapshot (empty when it does not exist); ``filters``:
        DNF tuples or a pyarrow Expression (see pipeline.job.read.scan)."""
        from pipeline.job.read import scan

        table = self.table(name)
        if table is None:
            empty = tables.schema(name).empty_table()
            return empty.select(list(columns)) if columns else empty
        return tables.from_delta(name, scan(table, columns, filters))

    def query(self, name: str, sql: str) -> pa.Table:
        """The result of ``sql`` over table ``name``'s current snapshot, registered as ``t``
        (deltalake.QueryBuilder: DataFusion SQL, file statistics used to skip files)."""
        from pipeline.job.read import query

        table = self.table(name)
        if table is None:
            raise OutputAccessError(f"{self.uri(name)} is not a table yet: open the output first")
        return query(table, sql)

    def done_shards(self, shards: Iterable[Any] | None = None) -> set[str]:
        """Ids of the shards (pipeline.job.records.Shard; None: all) whose shard_log rows say ``done``;
        the rows are looked up within the shards' URI range, so few log files are read."""
        import pyarrow.compute as pc

        filters: list = [("status", "=", "done")]
        if shards is not None:
            shards = list(shards)
            if not shards:
                return set()
            uris = [src.uri for shard in shards for src in shard.sources]
            filters += [("shard_id", "in", sorted({s.shard_id for s in shards})),
                        ("source_uri", ">=", min(uris)), ("source_uri", "<=", max(uris))]
        return set(pc.unique(self.read(SHARD_LOG, ["shard_id"], filters)["shard_id"]).to_pylist())

    def shard_log(self, columns: Iterable[str] | None = None, filters=None) -> pa.Table:
        """The shard_log (one row per source of every committed shard), or the rows ``filters`` select."""
        return self.read(SHARD_LOG, list(columns) if columns else None, filters)

    def write_manifest(self, body: Mapping[str, Any]) -> None:
        """Write ``<output>/_manifest.json`` (the run summary; the logs stay the record)."""
        from pipeline.storage import write_bytes_atomic

        fs, path = filesystem(self.output, self.storage_options)
        write_bytes_atomic(fs, join(path, "_manifest.json"), json.dumps(body, indent=1, default=str).encode())
