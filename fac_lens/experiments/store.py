"""The results store of experiment sweeps: runs, per-sample records, run summaries and named arrays
in one SQLite file.

    store = ResultStore("results/sweep.sqlite")
    run_id = store.ensure_run(model=..., dataset=..., sweep="gains", method=..., generation=...)
    todo = [s for s in samples if s.id not in store.done_sample_ids(run_id)]
    store.add_records(records)            # one transaction per call; re-adding is a no-op
    store.set_summary(run_id, summary)
    store.summaries(sweep="gains")        # one DataFrame row per summarised run

Why stdlib ``sqlite3``: it is embedded and ships with Python (no server); every write is one
transaction, and with the write-ahead log (WAL, ``synchronous=FULL``) a ``kill -9`` mid-sweep loses
at most the batch being written and never leaves part of one; several processes (distributed
ranks) can write to one file, waiting on each other through ``busy_timeout``; and the primary keys
((run_id, sample_id) for records) make a retried or resumed write idempotent.

Copying a store: committed writes first land in the log beside the file (``<store>-wal``); every
write is followed by a checkpoint that moves them into the file itself, and so is closing, so a
store no process is writing to is one file to copy. While a sweep runs (or after a crash, before
the store is opened again) copy the file and its ``-wal`` together, or write one consistent file
with :meth:`ResultStore.export` (``fac-lens store export <store> <file>``). Opening checks the file
(``PRAGMA quick_check``) and refuses, before writing anything, a damaged file and a file without
tables whose ``-wal`` beside it SQLite cannot apply (opening it would discard the log).

JSON columns (``method``, ``generation``, ``choices``, ``per_kind``, ``errors``, ``meta``) hold
canonical JSON: sorted keys, no spaces; numpy scalars and arrays become plain numbers and lists, and
dict keys that are not strings take their JSON spelling (``None`` -> ``"null"``).

A store object may be used from several processes: each process (found by its pid, so a forked
child included) opens its own connection on first use. Importing this module changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import numbers
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import FacConfig
from ..errors import FacLensError

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 2
#: Older versions a store is upgraded from when opened: version 1 summaries held the binary F1 as
#: ``f1``; they are dropped (records stay) and rewritten by the next eval / sweep of their runs.
UPGRADABLE = (1,)

#: Record keys added after schema version 1 (None when absent; older stores get the columns on open):
#: ``generated_tokens`` (tokens generated for the sample up to and including its first EOS) and
#: ``head_counts`` (dynamic runs: ``{"perception": [...], "reasoning": [...]}``, heads identified in
#: each forward pass that produced one of the sample's tokens; None for vanilla and static runs).
OPTIONAL_RECORD_KEYS = ("generated_tokens", "head_counts")
#: Summary keys added after schema version 1 (NaN when absent; older stores get the columns on open).
ADDED_SUMMARY_KEYS = (
    "seconds_per_token",
    "heads_perception_mean",
    "heads_perception_std",
    "heads_reasoning_mean",
    "heads_reasoning_std",
)

RECORD_KEYS = (
    "run_id",
    "sample_id",
    "kind",
    "question",
    "answer",
    "choices",
    "trace",
    "predicted",
    "correct",
    "error",
    "seconds",
    "batch_seconds",
    "batch_size",
    "code_version",
    *OPTIONAL_RECORD_KEYS,
)
RUN_KEYS = ("run_id", "model", "dataset", "sweep", "method", "generation", "code_version", "created")
#: FacConfig fields kept in a run's method JSON only, not flattened into summaries() columns
#: (schema version 1; ``target`` shows in ``name``).
UNFLATTENED = ("beta", "target")
#: FacConfig fields flattened into summaries() columns: ``strategy``, then the others in field order.
CONFIG_KEYS = ("strategy", *(k for k in FacConfig.field_names() if k not in ("strategy", *UNFLATTENED)))
METHOD_KEYS = ("name", "mode", *CONFIG_KEYS, "n_perception", "n_reasoning")
GENERATION_KEYS = ("max_new_tokens", "batch_size", "seed")
SUMMARY_KEYS = (
    "n",
    "n_skipped",
    "accuracy",
    "f1",
    "binary_f1",
    "per_kind",
    "errors",
    "seconds_per_batch",
    "seconds_total",
    *ADDED_SUMMARY_KEYS,
)
SUMMARY_COLUMNS = (
    "run_id",
    "model",
    "dataset",
    "sweep",
    "code_version",
    *METHOD_KEYS,
    *SUMMARY_KEYS,
    *GENERATION_KEYS,
    "baseline",  # a baseline's hyper-parameters (baseline_setting), None for vanilla and FAC runs
)
ARRAY_KEYS = ("name", "kind", "model", "dataset", "meta")


def baseline_setting(settings: dict | None) -> str | None:
    """A baseline's hyper-parameters as one string (``"alpha=1.0, beta=0.1, ..."``, in field
    order, the name left out); None for vanilla and FAC runs."""
    if not settings:
        return None
    return ", ".join(f"{k}={v}" for k, v in settings.items() if k != "name")


_RUN_FILTERS = ("run_id", "model", "dataset", "sweep", "code_version")
_SUMMARY_FLOATS = ("accuracy", "f1", "binary_f1", "seconds_per_batch", "seconds_total", *ADDED_SUMMARY_KEYS)
_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT_S = 60.0
_FIX = "use a new --store path, or move the old file away"

_SUMMARIES_TABLE = """CREATE TABLE IF NOT EXISTS summaries (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id), n INTEGER NOT NULL, n_skipped INTEGER NOT NULL,
        accuracy REAL, f1 REAL, binary_f1 REAL, per_kind TEXT NOT NULL, errors TEXT NOT NULL,
        seconds_per_batch REAL, seconds_total REAL)"""
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, model TEXT NOT NULL, dataset TEXT NOT NULL, sweep TEXT NOT NULL,
        method TEXT NOT NULL, generation TEXT NOT NULL, code_version TEXT NOT NULL, created REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS records (
        run_id TEXT NOT NULL REFERENCES runs(run_id), sample_id TEXT NOT NULL, kind TEXT NOT NULL,
        question TEXT NOT NULL, answer TEXT NOT NULL, choices TEXT NOT NULL, trace TEXT NOT NULL,
        predicted TEXT, correct INTEGER NOT NULL, error TEXT, seconds REAL NOT NULL,
        batch_seconds REAL NOT NULL, batch_size INTEGER NOT NULL, code_version TEXT NOT NULL,
        PRIMARY KEY (run_id, sample_id)) WITHOUT ROWID""",
    _SUMMARIES_TABLE,
    """CREATE TABLE IF NOT EXISTS arrays (
        name TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, dataset TEXT NOT NULL,
        meta TEXT NOT NULL, value BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep, model, dataset)",
    "CREATE INDEX IF NOT EXISTS arrays_by_kind ON arrays (kind, model, dataset)",
)

#: Nullable columns added after schema version 1 (same version: readers of version 1 ignore them):
#: a store without them gets them when it is opened (:meth:`ResultStore._add_columns`).
_ADDED_COLUMNS = {
    "records": (("generated_tokens", "INTEGER"), ("head_counts", "TEXT")),
    "summaries": tuple((key, "REAL") for key in ADDED_SUMMARY_KEYS),
}

# Connections a forked child inherited: never used there (SQLite forbids it), never closed by us.
_INHERITED: list[sqlite3.Connection] = []


# --- canonical JSON and ids ----------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    """``obj`` with numpy values, tuples and non-string dict keys made JSON-plain."""
    if isinstance(obj, Mapping):
        return {(k if isinstance(k, str) else json.dumps(_plain(k))): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def canonical_json(obj: Any, what: str = "value") -> str:
    """Canonical JSON text of ``obj`` (sorted keys, no spaces); FacLensError if it is not JSON-able."""
    try:
        return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise FacLensError(f"{what} cannot be stored as JSON ({e}); use str, numbers, lists and dicts") from e


def run_id_for(model: str, dataset: str, method: dict, generation: dict) -> str:
    """The id of a run: sha256 hex[:16] of the canonical JSON of {model, dataset, method, generation}."""
    text = canonical_json(
        {"model": model, "dataset": dataset, "method": method, "generation": generation}, "the run"
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def code_version() -> str:
    """``fac_lens.__version__``, plus ``+g<short sha>`` (and ``.dirty`` when tracked files have
    changes) when the package sits in a git checkout and ``git`` works. Never raises; computed on
    the first call and cached for the process."""
    return _code_version()


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    try:
        import fac_lens

        version = str(fac_lens.__version__)
    except Exception:
        return "unknown"
    try:
        package = Path(fac_lens.__file__).resolve().parent

        def git(*args: str) -> str:
            out = subprocess.run(
                ["git", "--no-optional-locks", *args],
                cwd=package,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            return out.stdout.strip()

        git("ls-files", "--error-unmatch", "--", "__init__.py")  # the package is tracked here
        sha = git("rev-parse", "--short", "HEAD")
        if not sha:
            return version
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except Exception:
        return version
    return f"{version}+g{sha}" + (".dirty" if dirty else "")


def _default_code_version() -> str:
    return code_version()


# --- validation ----------------------------------------------------------------------------------


def _text(value: Any, key: str, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        kind = "a str or None" if optional else "a str"
        raise FacLensError(f"{where}: {key}={value!r} is not {kind}; nothing was written")
    return value


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise FacLensError(f"{where}: {key}={value!r} is not a finite number; nothing was written")
    return float(value)


def _integer(value: Any, key: str, where: str, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise FacLensError(f"{where}: {key}={value!r} is not an integer >= {minimum}; nothing was written")
    return int(value)


def _record_row(record: Any, index: int) -> tuple[Any, ...]:
    """The row of one record, every key checked; FacLensError naming the first problem."""
    if not isinstance(record, Mapping):
        raise FacLensError(f"record {index} is a {type(record).__name__}, not a dict; nothing was written")
    where = f"record {index} (sample_id {record.get('sample_id')!r})"
    missing = [k for k in RECORD_KEYS if k not in record and k not in OPTIONAL_RECORD_KEYS]
    if missing:
        raise FacLensError(
            f"{where} is missing key {missing[0]!r}; nothing was written. A record needs: {', '.join(RECORD_KEYS)}"
        )
    unknown = sorted(str(k) for k in record if k not in RECORD_KEYS)
    if unknown:
        raise FacLensError(
            f"{where} has unknown key {unknown[0]!r}; nothing was written. A record has: {', '.join(RECORD_KEYS)}"
        )
    choices = record["choices"]
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) for c in choices):
        raise FacLensError(f"{where}: choices={choices!r} is not a list of str; nothing was written")
    correct = record["correct"]
    if not isinstance(correct, (bool, np.bool_)) and correct not in (0, 1):
        raise FacLensError(f"{where}: correct={correct!r} is not a bool; nothing was written")
    return (
        _text(record["run_id"], "run_id", where),
        _text(record["sample_id"], "sample_id", where),
        _text(record["kind"], "kind", where),
        _text(record["question"], "question", where),
        _text(record["answer"], "answer", where),
        canonical_json(list(choices), f"{where} choices"),
        _text(record["trace"], "trace", where),
        _text(record["predicted"], "predicted", where, optional=True),
        int(bool(correct)),
        _text(record["error"], "error", where, optional=True),
        _number(record["seconds"], "seconds", where),
        _number(record["batch_seconds"], "batch_seconds", where),
        _integer(record["batch_size"], "batch_size", where, minimum=1),
        _text(record["code_version"], "code_version", where),
        _optional_count(record.get("generated_tokens"), where),
        _head_counts(record.get("head_counts"), where),
    )


def _optional_count(value: Any, where: str) -> int | None:
    return None if value is None else _integer(value, "generated_tokens", where)


def _head_counts(value: Any, where: str) -> str | None:
    """Canonical JSON of ``{"perception": [int, ...], "reasoning": [int, ...]}`` (equal lengths), or None."""
    if value is None:
        return None
    ok = (
        isinstance(value, Mapping)
        and set(value) == {"perception", "reasoning"}
        and all(isinstance(v, (list, tuple)) for v in value.values())
        and len(value["perception"]) == len(value["reasoning"])
    )
    if ok:
        counts = [_integer(c, "head_counts", where) for v in value.values() for c in v]
        ok = len(counts) == 2 * len(value["perception"])
    if not ok:
        raise FacLensError(
            f"{where}: head_counts={value!r} is not {{'perception': [int, ...], 'reasoning': [int, ...]}} "
            "with one count per forward pass in each; nothing was written"
        )
    return canonical_json(value, f"{where} head_counts")


def _float_or_nan(value: Any, key: str, where: str) -> float | None:
    """A float for a REAL column; None (read back as NaN) for None or NaN."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise FacLensError(f"{where}: {key}={value!r} is not a number; nothing was written")
    return None if math.isnan(value) else float(value)


def _is_lock_error(e: sqlite3.OperationalError) -> bool:
    return "locked" in str(e) or "busy" in str(e)


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Move the log's committed writes into the database file, as far as readers allow
    (``PASSIVE``: never waits on other processes; what is left goes with the next checkpoint)."""
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _table_count(path: Path, immutable: bool = False) -> int:
    """Tables in an SQLite file (``immutable``: read the file alone, log and locks ignored and
    untouched); -1 when it cannot be read."""
    target, uri = (f"{path.resolve().as_uri()}?immutable=1", True) if immutable else (str(path), False)
    try:
        conn = sqlite3.connect(target, uri=uri)
    except sqlite3.Error:
        return -1
    try:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    except sqlite3.Error:
        return -1
    finally:
        conn.close()


def _log_table_count(path: Path, log: Path) -> int:
    """Tables in ``path`` with its log ``log`` applied, read from copies of both (the originals are
    left as they are); -1 when they cannot be read."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "store.sqlite"
        try:
            shutil.copyfile(path, copy)
            shutil.copyfile(log, copy.with_name(copy.name + "-wal"))
        except OSError:
            return -1
        return _table_count(copy)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# --- the store -----------------------------------------------------------------------------------


class ResultStore:
    """Runs, records, summaries and arrays of experiment sweeps in one SQLite file.

    Opening creates the file (and its parent folders) or checks that it is a store of this schema
    version; FacLensError otherwise, before anything is written. Every write is one transaction.
    Use it as a context manager, or call :meth:`close`.
    """

    path: Path

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.RLock()
        self._open_checked()

    # -- connections --

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise FacLensError(
                f"cannot open the results store {self.path}: {e}; check the --store path"
            ) from e
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _open_checked(self) -> None:
        """Open (creating if new) and check the file and its schema version; raise before writing
        anything."""
        if self.path.is_dir():
            raise FacLensError(
                f"the results store {self.path} is a folder; give a file path such as results.sqlite"
            )
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as f:
                header = f.read(len(_SQLITE_HEADER))
            if header != _SQLITE_HEADER:
                raise FacLensError(
                    f"{self.path} is not a fac_lens results store (not an SQLite database); {_FIX}"
                )
        self._check_log_beside()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FacLensError(f"cannot create the folder of the results store {self.path}: {e}") from e
        # SQLite answers "database is locked" at once, without waiting on busy_timeout, when two
        # processes switch a new file to WAL or create the schema at the same moment (the busy
        # handler is skipped to avoid a deadlock); so the whole open is retried until the deadline.
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        delay = 0.005
        while True:
            try:
                conn = self._open_once()
            except sqlite3.OperationalError as e:
                if not _is_lock_error(e) or time.monotonic() + delay > deadline:
                    raise self._open_error(e) from e
                time.sleep(delay)
                delay = min(2 * delay, 0.25)
                continue
            except sqlite3.Error as e:
                raise self._open_error(e) from e
            self._conn, self._pid = conn, os.getpid()
            return

    def _open_once(self) -> sqlite3.Connection:
        """One attempt at opening: connect, check, switch to WAL, create the schema if new."""
        conn = self._connect()
        try:
            self._check_version(conn, raw_errors=True)  # read-only: a wrong file is left as it was
            self._check_integrity(conn)
            self._configure(conn)
            with self._transaction(conn):
                version = self._check_version(conn, raw_errors=True)  # re-checked under the write lock
                if version is None:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                elif version in UPGRADABLE:
                    self._upgrade(conn)
                self._add_columns(conn)
            _checkpoint(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _upgrade(conn: sqlite3.Connection) -> None:
        """Version 1 -> 2: the summaries (derived from records, with the old F1) are dropped and the
        table made anew; runs, records and arrays are kept."""
        conn.execute("DROP TABLE IF EXISTS summaries")
        conn.execute(_SUMMARIES_TABLE)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    @staticmethod
    def _add_columns(conn: sqlite3.Connection) -> None:
        """Add the nullable columns of :data:`_ADDED_COLUMNS` a store lacks (older stores: their rows
        read back None / NaN there). Idempotent; runs inside the open's write transaction."""
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns:
                if name not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def _check_log_beside(self) -> None:
        """FacLensError when a ``-wal`` log with data sits beside a store file that has no tables
        and SQLite cannot apply the log to it (a file copied without its log, or the two from
        different copies): opening would discard the log. Checked on copies; nothing is changed."""
        log = self.path.with_name(self.path.name + "-wal")
        if not log.is_file() or log.stat().st_size == 0:
            return
        for attempt in range(3):  # another process may be creating this store right now
            if self.path.is_file() and self.path.stat().st_size > 0:
                if _table_count(self.path, immutable=True) != 0 or _log_table_count(self.path, log) > 0:
                    return
            time.sleep(0.1 * (attempt + 1))
        raise FacLensError(
            f"the results store {self.path} holds no tables, but its write-ahead log {log.name} "
            f"({log.stat().st_size} bytes) beside it does not apply to it: the file was copied without "
            "its log, or the two come from different copies. Nothing was changed (opening would discard "
            "the log): copy the store and its -wal file together from the original, or run "
            f"`fac-lens store export` there; or move {log.name} away to use this file as an empty store"
        )

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        """FacLensError naming the file when ``PRAGMA quick_check`` finds it damaged (lock errors
        are raised as they are, for the open to retry)."""
        try:
            rows = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.OperationalError as e:
            if _is_lock_error(e):
                raise
            raise self._damaged(str(e)) from e
        except sqlite3.DatabaseError as e:
            raise self._damaged(str(e)) from e
        if rows != ["ok"]:
            raise self._damaged("; ".join(rows))

    def _damaged(self, problem: str) -> FacLensError:
        return FacLensError(
            f"the results store {self.path} is damaged (SQLite: {problem}); nothing was written to it. "
            "Restore it from a copy or an export (fac-lens store export), salvage its rows with "
            f"`sqlite3 {self.path} .recover`, or use a new --store path"
        )

    def _open_error(self, e: sqlite3.Error) -> FacLensError:
        """The error of a failed open: a lock held too long, a damaged file, or a file that is no store."""
        if isinstance(e, sqlite3.OperationalError) and _is_lock_error(e):
            return FacLensError(
                f"the results store {self.path} stayed locked by another process for "
                f"{_BUSY_TIMEOUT_S:.0f} s ({e}); retry when that writer is done"
            )
        if "malformed" in str(e) or "corrupt" in str(e):
            return self._damaged(str(e))
        return FacLensError(f"{self.path} is not a usable fac_lens results store ({e}); {_FIX}")

    def _check_version(self, conn: sqlite3.Connection, raw_errors: bool = False) -> int | None:
        """The schema version of the file (None for an empty database); FacLensError if foreign.

        With ``raw_errors`` a lock error is raised as the sqlite3 error, for the caller to retry.
        """
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return None
            row = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            if raw_errors and isinstance(e, sqlite3.OperationalError) and _is_lock_error(e):
                raise
            raise self._open_error(e) from e
        if row is None:
            raise FacLensError(
                f"{self.path} is an SQLite database but not a fac_lens results store (no schema_version); {_FIX}"
            )
        if str(row[0]) in map(str, UPGRADABLE):
            return int(row[0])
        if str(row[0]) != str(SCHEMA_VERSION):
            raise FacLensError(
                f"the results store {self.path} has schema version {row[0]}, but this fac_lens expects "
                f"schema version {SCHEMA_VERSION}; {_FIX}"
            )
        return SCHEMA_VERSION

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use (a forked child gets its own)."""
        pid = os.getpid()
        if self._pid != pid:
            if self._conn is not None:
                _INHERITED.append(self._conn)  # the parent's: leave it alone
            self._conn, self._pid, self._lock = None, pid, threading.RLock()
        if self._conn is None:
            conn = self._connect()
            self._configure(conn)
            self._conn = conn
        return self._conn

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock at its start (``BEGIN IMMEDIATE``)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, then a checkpoint that moves it from the log into the file."""
        conn = self._connection()
        with self._lock:
            with self._transaction(conn):
                yield conn
            _checkpoint(conn)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._connection()
        with self._lock:
            return conn.execute(sql, tuple(params)).fetchall()

    def export(self, target: str | Path) -> Path:
        """Write one consistent, self-contained copy of the store to ``target`` (a new file) with
        SQLite's backup API; safe while other processes write. Returns the path."""
        target = Path(target).expanduser()
        if target.exists() or target.with_name(target.name + "-wal").exists():
            raise FacLensError(f"{target} exists already; export to a new file (or move it away)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = sqlite3.connect(str(target))
        except (OSError, sqlite3.Error) as e:
            raise FacLensError(f"cannot write the export {target}: {e}; check the path") from e
        try:
            with self._lock:
                self._connection().backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # no log: the export is one file
        finally:
            copy.close()
        return target

    def close(self) -> None:
        """Checkpoint the log into the file and close this process's connection (a later call
        opens a new one)."""
        if self._conn is not None:
            if self._pid == os.getpid():
                with self._lock:
                    _checkpoint(self._conn)
                    self._conn.close()
            else:
                _INHERITED.append(self._conn)
        self._conn = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self._conn, self._pid, self._lock = None, None, threading.RLock()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # -- runs --

    def ensure_run(
        self,
        *,
        model: str,
        dataset: str,
        sweep: str,
        method: dict,
        generation: dict,
        code_version: str | None = None,
    ) -> str:
        """Register a run (kept as first written when it exists already); returns its run id.

        ``method`` needs every key of :data:`METHOD_KEYS` and ``generation`` every key of
        :data:`GENERATION_KEYS` (more keys are kept and are part of the run id).
        """
        for key, value in (("model", model), ("dataset", dataset), ("sweep", sweep)):
            if not isinstance(value, str) or not value:
                raise FacLensError(f"ensure_run: {key}={value!r} is not a non-empty str")
        for what, given, keys in (
            ("method", method, METHOD_KEYS),
            ("generation", generation, GENERATION_KEYS),
        ):
            if not isinstance(given, Mapping):
                raise FacLensError(f"ensure_run: {what} must be a dict with keys {', '.join(keys)}")
            missing = [k for k in keys if k not in given]
            if missing:
                raise FacLensError(
                    f"ensure_run: {what} is missing key {missing[0]!r}; it needs {', '.join(keys)} (None where n/a)"
                )
        version = _default_code_version() if code_version is None else code_version
        if not isinstance(version, str):
            raise FacLensError(f"ensure_run: code_version={version!r} is not a str")
        run_id = run_id_for(model, dataset, dict(method), dict(generation))
        row = (
            run_id,
            model,
            dataset,
            sweep,
            canonical_json(method, "method"),
            canonical_json(generation, "generation"),
            version,
            time.time(),
        )
        with self._write() as conn:
            conn.execute(
                f"INSERT OR IGNORE INTO runs ({', '.join(RUN_KEYS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row
            )
        return run_id

    @staticmethod
    def _run_dict(row: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(RUN_KEYS, row, strict=True))
        out["method"] = json.loads(out["method"])
        out["generation"] = json.loads(out["generation"])
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        """The run ``run_id`` (method and generation as dicts); FacLensError if there is none."""
        rows = self._query(f"SELECT {', '.join(RUN_KEYS)} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise FacLensError(f"no run {run_id!r} in {self.path}; store.runs() lists the runs there")
        return self._run_dict(rows[0])

    @staticmethod
    def _where(filters: Mapping[str, Any], columns: Sequence[str], prefix: str = "") -> tuple[str, list[Any]]:
        """SQL WHERE clause for equality filters (a list/tuple/set value means any of them)."""
        clauses, params = [], []
        for key, value in filters.items():
            if key not in columns:
                raise FacLensError(f"unknown filter {key!r}; filter on {', '.join(columns)}")
            if value is None:
                clauses.append(f"{prefix}{key} IS NULL")
            elif isinstance(value, (list, tuple, set, frozenset)):
                values = list(value)
                clauses.append(f"{prefix}{key} IN ({', '.join('?' * len(values))})" if values else "0")
                params.extend(values)
            else:
                clauses.append(f"{prefix}{key} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        """Every run, oldest first, filtered on run columns (``model=``, ``dataset=``, ``sweep=``,
        ``run_id=``, ``code_version=``; a list value matches any of its items)."""
        where, params = self._where(filters, _RUN_FILTERS)
        rows = self._query(f"SELECT {', '.join(RUN_KEYS)} FROM runs{where} ORDER BY created, run_id", params)
        return [self._run_dict(row) for row in rows]

    # -- records --

    def done_sample_ids(self, run_id: str) -> set[str]:
        """The sample ids with a stored record in ``run_id`` (empty for an unknown run)."""
        return {row[0] for row in self._query("SELECT sample_id FROM records WHERE run_id = ?", (run_id,))}

    def add_records(self, records: Sequence[dict]) -> int:
        """Store records in one transaction; returns how many were new.

        Every record is checked first (every key of :data:`RECORD_KEYS`, its run registered): on a
        problem FacLensError names it and nothing is written. A record whose (run_id, sample_id) is
        stored already is skipped, so writing a batch again is a no-op.
        """
        rows = [_record_row(record, i) for i, record in enumerate(records)]
        if not rows:
            return 0
        run_ids = sorted({row[0] for row in rows})
        with self._write() as conn:
            for run_id in run_ids:
                if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                    raise FacLensError(
                        f"records name the unknown run {run_id!r}; nothing was written. "
                        "Register it first with store.ensure_run(...)"
                    )
            before = conn.total_changes
            conn.executemany(
                f"INSERT OR IGNORE INTO records ({', '.join(RECORD_KEYS)}) VALUES ({', '.join('?' * len(RECORD_KEYS))})",
                rows,
            )
            return conn.total_changes - before

    def records(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Stored records (of one run, or all) ordered by run_id, sample_id; choices as a list,
        correct as a bool."""
        where, params = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        rows = self._query(
            f"SELECT {', '.join(RECORD_KEYS)} FROM records {where} ORDER BY run_id, sample_id", params
        )
        out = []
        for row in rows:
            record = dict(zip(RECORD_KEYS, row, strict=True))
            record["choices"] = json.loads(record["choices"])
            record["correct"] = bool(record["correct"])
            if record["head_counts"] is not None:
                record["head_counts"] = json.loads(record["head_counts"])
            out.append(record)
        return out

    def records_frame(self, run_id: str | None = None) -> pandas.DataFrame:
        """:meth:`records` as a DataFrame with the columns :data:`RECORD_KEYS` (also when empty)."""
        pd = _pandas()
        return pd.DataFrame(self.records(run_id), columns=list(RECORD_KEYS))

    # -- summaries --

    def set_summary(self, run_id: str, summary: dict) -> None:
        """Store (or replace) the summary of ``run_id``.

        Keys: :data:`SUMMARY_KEYS` (``n`` required; a missing ``n_skipped`` is stored as 0, a missing
        number as NaN and a missing ``per_kind`` / ``errors`` as ``{}``); a ``run_id`` key, if any,
        must match. ``f1`` is the reported (weighted, App. G) F1, ``binary_f1`` the F1 of "yes".
        """
        where = f"summary of run {run_id!r}"
        if not isinstance(summary, Mapping):
            raise FacLensError(f"{where} is a {type(summary).__name__}, not a dict; nothing was written")
        unknown = sorted(str(k) for k in summary if k not in (*SUMMARY_KEYS, "run_id"))
        if unknown:
            raise FacLensError(
                f"{where} has unknown key {unknown[0]!r}; a summary has {', '.join(SUMMARY_KEYS)}"
            )
        if "run_id" in summary and summary["run_id"] != run_id:
            raise FacLensError(f"{where} says run_id={summary['run_id']!r}; nothing was written")
        if "n" not in summary:
            raise FacLensError(f"{where} is missing key 'n'; nothing was written")
        dicts = {}
        for key in ("per_kind", "errors"):
            value = summary.get(key, {})
            if not isinstance(value, Mapping):
                raise FacLensError(f"{where}: {key}={value!r} is not a dict; nothing was written")
            dicts[key] = canonical_json(value, f"{where} {key}")
        row = (
            run_id,
            _integer(summary["n"], "n", where),
            _integer(summary.get("n_skipped", 0), "n_skipped", where),
            *(_float_or_nan(summary.get(k), k, where) for k in ("accuracy", "f1", "binary_f1")),
            dicts["per_kind"],
            dicts["errors"],
            *(_float_or_nan(summary.get(k), k, where) for k in ("seconds_per_batch", "seconds_total")),
            *(_float_or_nan(summary.get(k), k, where) for k in ADDED_SUMMARY_KEYS),
        )
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise FacLensError(
                    f"{where}: no such run in {self.path}; register it with store.ensure_run(...)"
                )
            conn.execute(
                f"INSERT OR REPLACE INTO summaries (run_id, {', '.join(SUMMARY_KEYS)}) VALUES ({', '.join('?' * len(row))})",
                row,
            )

    @staticmethod
    def _summary_dict(row: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(("run_id", *SUMMARY_KEYS), row, strict=True))
        for key in _SUMMARY_FLOATS:
            out[key] = _nan(out[key])
        out["per_kind"] = json.loads(out["per_kind"])
        out["errors"] = json.loads(out["errors"])
        return out

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The summary of ``run_id`` (run_id plus :data:`SUMMARY_KEYS`; NaN restored), or None."""
        rows = self._query(
            f"SELECT run_id, {', '.join(SUMMARY_KEYS)} FROM summaries WHERE run_id = ?", (run_id,)
        )
        return self._summary_dict(rows[0]) if rows else None

    def summaries(self, **filters: Any) -> pandas.DataFrame:
        """One row per summarised run (oldest run first), columns :data:`SUMMARY_COLUMNS`.

        Filters: run columns (``model=``, ``dataset=``, ``sweep=``, ``run_id=``, ``code_version=``)
        and the flattened method / generation keys (``name="static"``, ``seed=0``); a list value
        matches any of its items. No match gives an empty frame with the same columns.
        """
        flattened = (*METHOD_KEYS, "baseline", *GENERATION_KEYS)
        known = (*_RUN_FILTERS, *flattened)
        for key in filters:
            if key not in known:
                raise FacLensError(f"unknown filter {key!r}; filter on {', '.join(known)}")
        where, params = self._where(
            {k: v for k, v in filters.items() if k in _RUN_FILTERS}, _RUN_FILTERS, "r."
        )
        later = {k: v for k, v in filters.items() if k in flattened}
        rows = self._query(
            "SELECT r.run_id, r.model, r.dataset, r.sweep, r.code_version, r.method, r.generation, "
            f"{', '.join('s.' + k for k in SUMMARY_KEYS)} FROM summaries s JOIN runs r ON r.run_id = s.run_id"
            f"{where} ORDER BY r.created, r.run_id",
            params,
        )
        out = []
        for row in rows:
            run_id, model, dataset, sweep, version, method, generation = row[:7]
            method, generation = json.loads(method), json.loads(generation)
            summary = self._summary_dict((run_id, *row[7:]))
            entry = {
                "run_id": run_id,
                "model": model,
                "dataset": dataset,
                "sweep": sweep,
                "code_version": version,
            }
            entry.update({k: method.get(k) for k in METHOD_KEYS})
            entry["baseline"] = baseline_setting(method.get("baseline"))
            entry.update({k: summary[k] for k in SUMMARY_KEYS})
            entry.update({k: generation.get(k) for k in GENERATION_KEYS})
            if all(_matches(entry[k], v) for k, v in later.items()):
                out.append(entry)
        pd = _pandas()
        return pd.DataFrame(out, columns=list(SUMMARY_COLUMNS))

    # -- arrays --

    def put_array(
        self, name: str, value: Any, *, kind: str, model: str, dataset: str, meta: dict | None = None
    ) -> None:
        """Store (or replace) the numpy array ``name`` with its kind, model, dataset and JSON meta."""
        for key, text in (("name", name), ("kind", kind), ("model", model), ("dataset", dataset)):
            if not isinstance(text, str) or (key in ("name", "kind") and not text):
                raise FacLensError(
                    f"put_array: {key}={text!r} is not a {'non-empty ' * (key in ('name', 'kind'))}str"
                )
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise FacLensError(f"put_array {name!r}: an object array cannot be stored; give numbers")
        meta_json = canonical_json({} if meta is None else meta, f"put_array {name!r} meta")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO arrays (name, kind, model, dataset, meta, value) VALUES (?, ?, ?, ?, ?, ?)",
                (name, kind, model, dataset, meta_json, sqlite3.Binary(buffer.getvalue())),
            )

    def get_array(self, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        """(array, meta) of the array ``name``; FacLensError naming some stored names if unknown."""
        rows = self._query("SELECT value, meta FROM arrays WHERE name = ?", (name,))
        if not rows:
            names = [row[0] for row in self._query("SELECT name FROM arrays ORDER BY name LIMIT 6")]
            shown = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
            raise FacLensError(
                f"no array {name!r} in {self.path}; stored: {shown or 'none'} (store.arrays() lists them)"
            )
        value = np.load(io.BytesIO(rows[0][0]), allow_pickle=False)
        return value, json.loads(rows[0][1])

    def arrays(
        self, kind: str | None = None, model: str | None = None, dataset: str | None = None
    ) -> list[dict]:
        """Metadata of stored arrays (name, kind, model, dataset, meta), ordered by name; no values."""
        filters = {k: v for k, v in (("kind", kind), ("model", model), ("dataset", dataset)) if v is not None}
        where, params = self._where(filters, ("kind", "model", "dataset"))
        rows = self._query(f"SELECT {', '.join(ARRAY_KEYS)} FROM arrays{where} ORDER BY name", params)
        return [{**dict(zip(ARRAY_KEYS, row, strict=True)), "meta": json.loads(row[4])} for row in rows]


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, (list, tuple, set, frozenset)):
        return value in wanted
    return value == wanted


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - pandas comes with seaborn
        raise FacLensError("DataFrames of the results store need pandas: pip install pandas") from e
    return pandas
