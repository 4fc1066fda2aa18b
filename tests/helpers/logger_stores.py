"""What a run left in each logger's own store, read back with that logger's own format or client.

`read_store(name, run_dir)` gives every logger's record in one shape (`Stored`), so one test can ask the same
questions of all four: the scalars by step, the tables (columns and rows as text) and the figures (PNG bytes).
Scalars of TensorBoard, CSV and MLflow runs are read by the package's own reader (`audio_thinker.run_logs`, which
the tools use), so the end-to-end logger tests check it too.
"""

from __future__ import annotations

import csv
import json
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from audio_thinker.run_logs import csv_scalars, mlflow_scalars, tensorboard_scalars


class Table(NamedTuple):
    """One logged table: its column names and its rows, every cell as text."""

    columns: list[str]
    rows: list[list[str]]


class Stored(NamedTuple):
    """What one logger stored: tag -> {step: value}, key -> its last table, key -> its last figure as PNG bytes."""

    scalars: dict[str, dict[int, float]]
    tables: dict[str, Table]
    figures: dict[str, bytes]


def tensorboard_store(run_dir: Path) -> Stored:
    """The event files under `<run>/tensorboard`: scalars, tables as markdown text summaries, figures as images."""
    scalars, tables, figures = tensorboard_scalars(run_dir / "tensorboard"), {}, {}
    for events in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0, "images": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        for tag in tags["tensors"]:
            if tag.endswith("/text_summary"):
                last = max(accumulator.Tensors(tag), key=lambda e: e.step)
                tables[tag.removesuffix("/text_summary")] = _markdown_table(last.tensor_proto.string_val[0].decode())
        for tag in tags["images"]:
            figures[tag] = max(accumulator.Images(tag), key=lambda e: e.step).encoded_image_string
    return Stored(scalars, tables, figures)


def _markdown_table(text: str) -> Table:
    """`audio_thinker.loggers.markdown_table` read back (escaped pipes stay inside their cell)."""
    header, _, *lines = text.splitlines()

    def cells(line: str) -> list[str]:
        return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]

    return Table(cells(header), [cells(line) for line in lines])


def csv_store(run_dir: Path) -> Stored:
    """`<run>/csv/metrics.csv` (one row per step and source, blank cells elsewhere) and the side files beside it."""
    root = run_dir / "csv"
    assert (root / "metrics.csv").is_file(), f"no {root / 'metrics.csv'}"
    scalars, tables, figures = csv_scalars(root), {}, {}
    for path in sorted(root.rglob("step_*.csv")):  # sorted: a key's last step wins
        with path.open(newline="") as file:
            columns, *rows = csv.reader(file)
        tables[path.parent.relative_to(root).as_posix()] = Table(columns, rows)
    for path in sorted(root.rglob("step_*.png")):
        figures[path.parent.relative_to(root).as_posix()] = path.read_bytes()
    return Stored(scalars, tables, figures)


def mlflow_store(run_dir: Path) -> Stored:
    """The run in `<run>/mlflow.db`, through MLflow's own client: metric histories, JSON tables, PNG figures."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    (run,) = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    run_id = run.info.run_id
    scalars, tables, figures = mlflow_scalars(run_dir), {}, {}
    for path in sorted(_artifacts(client, run_id)):
        key = path.rsplit("/", 1)[0]
        local = Path(client.download_artifacts(run_id, path, str(run_dir / "downloaded")))
        if path.endswith(".json"):
            table = json.loads(local.read_text())
            tables[key] = Table(table["columns"], [[str(cell) for cell in row] for row in table["data"]])
        elif path.endswith(".png"):
            figures[key] = local.read_bytes()
    return Stored(scalars, tables, figures)


def _artifacts(client, run_id: str) -> Iterator[str]:
    """Every artifact file of the run, by its path inside the run."""
    pending = [None]
    while pending:
        for item in client.list_artifacts(run_id, pending.pop()):
            if item.is_dir:
                pending.append(item.path)
            else:
                yield item.path


def wandb_store(run_dir: Path) -> Stored:
    """The offline run under `<run>/wandb`: history rows from its transaction log (`run-<id>.wandb`), the tables
    and images those rows point to in its `files/` folder."""
    (run,) = (run_dir / "wandb").glob("offline-run-*")
    scalars: dict[str, dict[int, float]] = {}
    tables, figures = {}, {}
    for row in settled_wandb_history(next(run.glob("run-*.wandb"))):
        step = row.pop("trainer/global_step")  # Lightning's step; `_step` counts wandb.log calls
        for key, value in row.items():
            if key.startswith("_"):
                continue
            if isinstance(value, int | float):
                scalars.setdefault(key, {})[step] = float(value)
            elif not isinstance(value, dict):
                continue
            elif value.get("_type") == "table-file":
                table = json.loads((run / "files" / value["path"]).read_text())
                tables[key] = Table(table["columns"], [[str(cell) for cell in row] for row in table["data"]])
            elif value.get("_type") == "images/separated":
                figures[key] = (run / "files" / value["filenames"][-1]).read_bytes()
    return Stored(scalars, tables, figures)


# The W&B transaction log is a LevelDB-style log: a 7-byte file header, then 32 KiB blocks of records, each a
# 7-byte header (CRC-32C, length, type) and a chunk; a record split across blocks is FIRST, MIDDLE..., LAST.
_WANDB_HEADER = b":W&B\xe1\xbe\x00"  # identity, magic 0xBEE1, version 0
_BLOCK, _FULL, _LAST = 32 * 1024, 1, 4


def settled_wandb_history(path: Path, timeout_s: float = 30.0) -> list[dict]:
    """`wandb_history` once W&B's writer process has finished the file: `wandb.finish` can return while it still
    writes (seen under load: a half-written record, or no rows yet), so read until two reads a second apart agree."""
    deadline, previous = time.monotonic() + timeout_s, None
    while True:
        try:
            rows = list(wandb_history(path))
        except Exception:  # a record cut mid-write
            rows = None
        if rows is not None and rows == previous or time.monotonic() > deadline:
            return rows if rows is not None else list(wandb_history(path))
        previous = rows
        time.sleep(1.0)


def wandb_history(path: Path) -> Iterator[dict]:
    """Each `wandb.log` row of a `.wandb` transaction log, values decoded from JSON (nested keys as dicts)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[: len(_WANDB_HEADER)] == _WANDB_HEADER, f"{path} is not a W&B transaction log"
    position, chunks = len(_WANDB_HEADER), []
    while position + 7 <= len(data):
        if _BLOCK - position % _BLOCK < 7:  # the tail of a block too short for a header is padding
            position += _BLOCK - position % _BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunks.append(data[position + 7 : position + 7 + length])
        position += 7 + length
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record.FromString(b"".join(chunks))
            chunks = []
            if record.WhichOneof("record_type") == "history":
                yield _history_row(record.history)


def _history_row(history) -> dict:
    row: dict = {}
    for item in history.item:
        value = json.loads(item.value_json)
        if item.key:
            row[item.key] = value
        else:  # a dict logged under one key (a table, an image) arrives flattened: key, field
            *parents, field = item.nested_key
            target = row
            for parent in parents:
                target = target.setdefault(parent, {})
            target[field] = value
    return row


STORES = {"tensorboard": tensorboard_store, "csv": csv_store, "wandb": wandb_store, "mlflow": mlflow_store}


def read_store(logger: str, run_dir: Path) -> Stored:
    """What the run in `run_dir` logged through `logger=<logger>`, read from that logger's own store."""
    return STORES[logger](run_dir)
