"""The job specification: what to label, where to write, and how (YAML file and/or CLI flags).

Relative local paths (``input``, ``output``, ``model_dir``) are resolved against the current working
directory when the spec is loaded, whether they come from a YAML file or a flag, so run
``posepipe run --config jobs/sample-media.yaml`` from the repository root.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.storage import absolute_uri

DEFAULT_MODEL = "omz-lightweight"
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")


class SpecError(ValueError):
    """The job spec is invalid; the message names the key and where it came from."""


@dataclass(frozen=True)
class JobSpec:
    """One labelling job. Every field is also a YAML key and a ``posepipe run`` flag.

    input:            local paths, directories, globs or fsspec URIs (images and videos mixed).
    output:           folder or URI the tables and manifest go to.
    model:            registry name of the network.
    model_dir:        folder holding the weights (default: $POSEPIPE_MODEL_DIR).
    device:           "auto" (CUDA when the Ray cluster has GPUs), "cpu" or "cuda".
    precision:        network precision on GPU: "fp32", "fp16" or "bf16" (CPU always runs fp32).
    batch_size:       images per network forward pass.
    scales:           test-time scales (1.0 = the model's native input size).
    flip:             also run the horizontally flipped image and average.
    parse:            pipeline.parsing.ParseConfig fields (peak threshold etc.).
    images_per_shard: images per shard (the unit of work, output file and resume).
    frames_per_shard: video frames per shard.
    frame_step:       label every n-th video frame.
    tracking:         link people across video frames (fills poses.track_id and the tracks table).
    pool_size:        network actors (default: one per GPU; on CPU, 2-CPU actors filling 3/4 of the CPUs).
    cpus_per_actor:   CPUs (= math threads) per network actor on CPU (default 2; 1 under 4 CPUs).
    max_in_flight:    shards between read and write at once (bounds memory; default 2*pool_size+2).
    shard_retries:    extra attempts of a failing shard before it goes to the errors table.
    ray_address:      None = start Ray in-process on this machine; "auto" or "ray://host:port" = cluster.
    num_cpus:         CPUs of the in-process Ray (default: all of this machine's).
    storage_options:  fsspec options for remote inputs/outputs (e.g. endpoint_url, key, secret).
    progress:         draw the live progress line on stderr.
    """

    input: tuple[str, ...]
    output: str
    model: str = DEFAULT_MODEL
    model_dir: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 8
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    parse: Mapping[str, Any] = field(default_factory=dict)
    images_per_shard: int = 16
    frames_per_shard: int = 64
    frame_step: int = 1
    tracking: bool = True
    pool_size: int | None = None
    cpus_per_actor: float | None = None
    max_in_flight: int | None = None
    shard_retries: int = 2
    ray_address: str | None = None
    num_cpus: int | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True

    def parse_config(self):
        """The pipeline.parsing.ParseConfig these settings describe."""
        from pipeline.parsing import ParseConfig

        return ParseConfig.from_dict(dict(self.parse))

    def config_id(self) -> str:
        """16-hex hash of every setting that changes the rows (inference + parsing), not of throughput knobs."""
        payload = {
            "precision": self.precision, "scales": list(self.scales), "flip": self.flip,
            "parse": self.parse_config().to_dict(),
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for the manifest); secrets in storage_options are masked."""
        d = dataclasses.asdict(self)
        d["input"], d["scales"], d["parse"] = list(self.input), list(self.scales), dict(self.parse)
        d["storage_options"] = {k: ("***" if _is_secret(k) else v) for k, v in self.storage_options.items()}
        return d


def _is_secret(key: str) -> bool:
    k = key.lower()
    return any(s in k for s in ("secret", "token", "password", "key")) and k != "endpoint_url"


_FIELDS = {f.name: f for f in dataclasses.fields(JobSpec)}
_REQUIRED = ("input", "output")


def _where(source: str, key: str) -> str:
    return f"{source}: key {key!r}"


def _check(key: str, value: Any, source: str) -> Any:
    """``value`` converted to the type of JobSpec field ``key``; SpecError naming key and source if it isn't."""
    w = _where(source, key)

    def pos_int(v, allow_none=False):
        if v is None and allow_none:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(f"{w} must be a positive integer, got {v!r}")
        return v

    if key == "input":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(i, str) and i for i in items):
            raise SpecError(f"{w} must be a non-empty path/URI or list of them, got {value!r}")
        return tuple(items)
    if key in ("output", "model"):
        if not isinstance(value, str) or not value:
            raise SpecError(f"{w} must be a non-empty string, got {value!r}")
        return value
    if key in ("model_dir", "ray_address"):
        if value is not None and (not isinstance(value, str) or not value):
            raise SpecError(f"{w} must be a string or null, got {value!r}")
        return value
    if key == "device":
        if value not in DEVICES:
            raise SpecError(f"{w} must be one of {', '.join(DEVICES)}, got {value!r}")
        return value
    if key == "precision":
        if value not in PRECISIONS:
            raise SpecError(f"{w} must be one of {', '.join(PRECISIONS)}, got {value!r}")
        return value
    if key in ("batch_size", "images_per_shard", "frames_per_shard", "frame_step"):
        return pos_int(value)
    if key in ("pool_size", "max_in_flight", "num_cpus"):
        return pos_int(value, allow_none=True)
    if key == "shard_retries":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(f"{w} must be an integer >= 0, got {value!r}")
        return value
    if key == "cpus_per_actor":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise SpecError(f"{w} must be a positive number, got {value!r}")
        return float(value)
    if key == "scales":
        items = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if (not isinstance(items, (list, tuple)) or not items
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in items)):
            raise SpecError(f"{w} must be a positive number or a list of them, got {value!r}")
        return tuple(float(s) for s in items)
    if key in ("flip", "tracking", "progress"):
        if not isinstance(value, bool):
            raise SpecError(f"{w} must be true or false, got {value!r}")
        return value
    if key in ("parse", "storage_options"):
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise SpecError(f"{w} must be a mapping of names to values, got {value!r}")
        return dict(value)
    raise SpecError(f"{w} is not a known setting")  # pragma: no cover - guarded by caller


def build_spec(settings: Mapping[str, Any], source: str = "job spec") -> JobSpec:
    """A validated JobSpec from {key: value}; SpecError names the bad key and ``source``.

    Local paths are made absolute against the CWD; ``parse`` is checked by building the ParseConfig.
    """
    unknown = sorted(set(settings) - set(_FIELDS))
    if unknown:
        raise SpecError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                        f"known keys: {', '.join(_FIELDS)}")
    missing = [k for k in _REQUIRED if settings.get(k) in (None, "", [], ())]
    if missing:
        raise SpecError(f"{source}: missing required key(s) {', '.join(map(repr, missing))} "
                        f"(give them in the YAML file or as --{missing[0]})")
    values = {k: _check(k, v, source) for k, v in settings.items()}
    values["input"] = tuple(absolute_uri(u) for u in values["input"])
    values["output"] = absolute_uri(values["output"])
    if values.get("model_dir"):
        values["model_dir"] = absolute_uri(values["model_dir"])
    spec = JobSpec(**values)
    from pipeline.models import get as registry_entry

    try:
        registry_entry(spec.model)
    except KeyError as exc:
        raise SpecError(f"{_where(source, 'model')}: {exc.args[0]}") from None
    try:
        spec.parse_config()
    except (TypeError, ValueError, KeyError) as exc:
        raise SpecError(f"{_where(source, 'parse')} is invalid: {exc}") from exc
    return spec


def load_spec(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> JobSpec:
    """Read the YAML job spec at ``path`` (if any), apply ``overrides`` (CLI flags, not None), validate.

    Raises SpecError naming the file and key on unreadable YAML, unknown keys or bad values.
    """
    import yaml

    settings: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise SpecError(f"{path}: job spec file not found") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML ({exc})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise SpecError(f"{path}: a job spec must be a mapping of settings, got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - set(_FIELDS))
        if unknown:
            raise SpecError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                            f"known keys: {', '.join(_FIELDS)}")
        for k, v in loaded.items():
            if (overrides or {}).get(k) is None:  # a bad value in the file is reported with the file's name
                _check(k, v, source)
        settings.update(loaded)
    for k, v in (overrides or {}).items():
        if v is not None:
            settings[k] = v
    return build_spec(settings, source if not overrides else f"{source} (with command-line overrides)")
