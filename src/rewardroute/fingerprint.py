"""Fingerprints of resumable outputs, so a re-run never mixes results of different inputs,
models or settings.

A fingerprint is a flat mapping `{name: value}` (value: a string, number or small JSON
object): the input file's streamed sha256, the model's identity (hash of its checkpoint
files), and every setting that changes the result. It is kept in a sidecar file
`<output>.fingerprint.json` (or `<dir>/fingerprint.json` for a folder of parts), so the
readers of the output never see it. `guard_output` compares it with the one of the run
that wrote the output: the same -> resume; different -> a `StaleOutputError` naming each
field that differs, or, with `overwrite`, the old output is removed and the run starts afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import RewardRouteError
from .io import write_json_atomic

CHUNK = 1 << 20
FORMAT = "rewardroute.fingerprint/1"


class StaleOutputError(RewardRouteError):
    """An existing output (or resume state) was made from other inputs, models or settings."""


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (inputs can be larger than memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def tree_sha256(folder: str | Path, pattern: str = "*") -> str:
    """sha256 over the files of a folder matching `pattern` (relative names and contents, in
    sorted order): the identity of a checkpoint, its config and weights together. Hidden files
    (temporary copies, sidecars) are left out."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob(pattern)
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        h.update(file_sha256(p).encode("ascii"))
    return h.hexdigest()


def checkpoint_identity(path: str | Path) -> str:
    """A model's identity: the hash of its checkpoint folder (config, weights, tokenizer)."""
    return "sha256:" + tree_sha256(path)


def code_identity(*parts: str) -> str:
    """sha256 of the rewardroute sources under `parts` (sub-packages or modules, e.g. "reward",
    "backbone.py"): a cache of results goes stale when the code that made them changes."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for part in sorted(parts):
        path = root / part
        h.update(part.encode("utf-8") + b"\0")
        h.update((tree_sha256(path, "*.py") if path.is_dir() else file_sha256(path)).encode("ascii"))
    return h.hexdigest()


def short_key(fields: Mapping[str, Any]) -> str:
    """A 12-hex-digit name for a fingerprint: cache entries keyed by it never collide in practice."""
    return hashlib.sha256(json.dumps(dict(fields), sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def rows_sha256(rows: Iterable[Any]) -> str:
    """sha256 of records in order (pydantic models or JSON-able objects), for data held in memory."""
    h = hashlib.sha256()
    for r in rows:
        text = r.model_dump_json() if hasattr(r, "model_dump_json") else json.dumps(r, sort_keys=True, default=str)
        h.update(text.encode("utf-8") + b"\n")
    return h.hexdigest()


def settings_value(obj: Any, exclude: Sequence[str] = ()) -> Any:
    """A JSON-able form of a settings object (pydantic model or mapping) without `exclude`."""
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json", exclude=set(exclude))
    elif isinstance(obj, Mapping):
        obj = {k: v for k, v in obj.items() if k not in exclude}
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per field that differs: `name: was X, now Y` (long values shortened)."""
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key}: was {_short(old.get(key, '(absent)'))}, now {_short(new.get(key, '(absent)'))}")
    return out


def _short(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:60] + "…" + text[-12:]


def sidecar_for(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".fingerprint.json")


def read_fingerprint(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise StaleOutputError(f"{path}: unreadable fingerprint ({e}); remove it, or start afresh with --overwrite") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("fields"), dict):
        raise StaleOutputError(f"{path}: not a rewardroute fingerprint file")
    return data["fields"]


def write_fingerprint(path: str | Path, fields: Mapping[str, Any]) -> None:
    write_json_atomic(path, {"format": FORMAT, "fields": dict(fields)})


def guard_output(output: str | Path, fields: Mapping[str, Any], *, overwrite: bool = False,
                 also: Sequence[str | Path] = (), sidecar: str | Path | None = None,
                 hint: str = "start afresh with --overwrite") -> bool:
    """Make `output` safe to resume: returns True when earlier results may be reused (there
    are some and their fingerprint is `fields`), False when the run starts from nothing.

    `also` are the output's companions (its `.partial` file). With `overwrite` they and
    `output` are removed first. Existing results without a fingerprint cannot be trusted
    and are an error too. The new fingerprint is written before any work, so an interrupted
    run resumes under it.
    """
    import shutil

    output = Path(output)
    sidecar = Path(sidecar) if sidecar is not None else sidecar_for(output)
    paths = [output, *map(Path, also)]
    present = [p for p in paths if p.exists()]
    fields = json.loads(json.dumps(dict(fields), sort_keys=True, default=str))
    if overwrite:
        for p in present:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        present = []
    old = read_fingerprint(sidecar) if not overwrite else None
    if present and old is None:
        raise StaleOutputError(f"{present[0]} exists but has no fingerprint ({sidecar.name}), so it cannot be "
                               f"told apart from results of other inputs or models: {hint}")
    if present and old != fields:
        lines = "\n  ".join(differences(old, fields))
        raise StaleOutputError(f"{present[0]} was made with other inputs or settings; resuming would mix "
                               f"results. What differs:\n  {lines}\n{hint[0].upper() + hint[1:]}.")
    write_fingerprint(sidecar, fields)
    return bool(present)


def data_identity(path: str | Path) -> dict[str, str]:
    """What a model records about its training file: the name and content hash, never an absolute
    path (a checkpoint moves between machines; the hash still tells whether a file is the same)."""
    spec = str(path)
    if spec.startswith("hf:"):
        return {"name": spec}
    return {"name": Path(path).name, "sha256": file_sha256(path)}


def check_same_data(path: str | Path, recorded: Mapping[str, Any] | str | None) -> None:
    """Baselines fitted beside a model must see the model's own training data: a different file
    is an error naming both (a checkpoint without a record is accepted)."""
    if not isinstance(recorded, Mapping) or "sha256" not in recorded:
        return
    now = data_identity(path)
    if now.get("sha256") != recorded["sha256"]:
        raise StaleOutputError(f"{path} is not the data this model was trained on "
                               f"(trained on {recorded.get('name')}, sha256 {str(recorded['sha256'])[:12]}...)")
