"""The job specification: what to label, where to write, and how (YAML file and/or CLI flags).

Each JobSpec field carries a :class:`Setting` in its dataclass metadata (type, help, choices,
bounds, flag, whether it changes the rows). That one declaration generates the validation
(:func:`build_spec`), the ``posepipe run`` / ``posepipe submit`` flags (:func:`add_arguments`,
:func:`overrides_from_args`) and the settings table of docs/job.md (:func:`settings_table`).

Relative local paths (``input``, ``output``, ``model_dir``) are resolved against the current working
directory when the spec is loaded, whether they come from a YAML file or a flag, so run
``posepipe run --config jobs/sample-media.yaml`` from the repository root.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pipeline.models.registry import BACKENDS, DEVICES, PRECISIONS  # noqa: F401 (torch-free; one definition)
from pipeline.secrets import mask
from pipeline.storage import LITERAL_PREFIX, StorageOptionsError, absolute_uri, check_storage_options, split_literal

DEFAULT_MODEL = "omz-lightweight"
EXECUTORS = ("auto", "ray", "inline")
#: executor auto runs a local CPU job inline when it has at most this many frames (images + video
#: frames) left to label: about what a 2-CPU machine labels in the time Ray takes to start and stop.
INLINE_MAX_FRAMES = 256

#: The value kinds a Setting can have (how it is checked, parsed from a flag and documented).
KINDS = ("paths", "str", "int", "float", "bool", "choice", "floats", "mapping")


class SpecError(ValueError):
    """The job spec is invalid; the message names the key and where it came from."""


@dataclass(frozen=True)
class Setting:
    """How one JobSpec field is given, checked and documented (kept in the field's metadata).

    help:      one line for the flag's help and the docs table.
    kind:      one of KINDS.
    choices:   the allowed values of a "choice".
    minimum:   smallest allowed number ("int", "float", the items of "floats"); None = unbounded.
    strict:    the number must be greater than ``minimum`` (not equal).
    nullable:  null (None) is allowed, meaning "derived" (see ``default_doc``).
    required:  the key must be given (no default).
    flag:      the command-line flag; "" = ``--`` + the name with dashes.
    metavar:   the flag's value placeholder ("mapping" flags take NAME=VALUE, repeatable).
    changes_rows: part of ``JobSpec.config_id()`` (it changes the output rows).
    local_path: a local path in it is made absolute against the CWD.
    default_doc: the default as the docs show it, when the field's value (None, {}) does not say it.
    """

    help: str
    kind: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    strict: bool = False
    nullable: bool = False
    required: bool = False
    flag: str = ""
    metavar: str | None = None
    changes_rows: bool = False
    local_path: bool = False
    default_doc: str = ""


def _setting(default: Any = dataclasses.MISSING, **meta) -> Any:
    """A dataclass field whose metadata holds ``Setting(**meta)``; mutable defaults become factories."""
    setting = Setting(**meta)
    assert setting.kind in KINDS, setting.kind
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"setting": setting})
    return field(default=default, metadata={"setting": setting})


@dataclass(frozen=True)
class JobSpec:
    """One labelling job. Every field is also a YAML key and a ``posepipe run`` flag; what each one
    means, its type and default are in its Setting (``settings()``, docs/job.md's generated table)."""

    input: tuple[str, ...] = _setting(
        kind="paths", required=True, local_path=True,
        help="local paths, folders (searched recursively, hidden files skipped), globs or fsspec URIs "
             "(s3://bucket/prefix), images and videos mixed; an existing path is taken literally, "
             "`literal:PATH` never globs")
    output: str = _setting(kind="str", required=True, local_path=True,
                           help="folder or URI the tables and manifest go to")
    model: str = _setting(DEFAULT_MODEL, kind="str", help="registry name of the network (the README's models table)")
    backend: str = _setting("auto", kind="choice", choices=BACKENDS,
                            help="inference runtime: auto = openvino on CPU, torch on CUDA")
    model_dir: str | None = _setting(None, kind="str", nullable=True, local_path=True, default_doc="$POSEPIPE_MODEL_DIR",
                                     help="folder or URI holding the weights")
    device: str = _setting("auto", kind="choice", choices=DEVICES,
                           help="auto = cuda when the Ray cluster has GPUs, else cpu")
    precision: str = _setting("fp32", kind="choice", choices=PRECISIONS, changes_rows=True,
                              help="network precision on GPU (autocast); CPU always runs fp32")
    batch_size: int = _setting(8, kind="int", minimum=1, help="images per network forward pass")
    scales: tuple[float, ...] = _setting((1.0,), kind="floats", minimum=0, strict=True, changes_rows=True,
                                         help="test-time scales (1.0 = the model's native input size), averaged")
    flip: bool = _setting(False, kind="bool", changes_rows=True,
                          help="also run the horizontally flipped image and average")
    parse: Mapping[str, Any] = _setting({}, kind="mapping", changes_rows=True, metavar="NAME=VALUE",
                                        help="pipeline.parsing.ParseConfig fields (peak_threshold, matching...)")
    images_per_shard: int = _setting(16, kind="int", minimum=1, help="images per shard (unit of work and resume)")
    frames_per_shard: int = _setting(64, kind="int", minimum=1, help="video frames per shard")
    frame_step: int = _setting(1, kind="int", minimum=1, help="label every n-th video frame (by index)")
    target_fps: float | None = _setting(
        None, kind="float", minimum=0, strict=True, nullable=True, changes_rows=True, default_doc="null (all frames)",
        help="instead of frame_step: label the first frame of each 1/target_fps s of presentation time "
             "(even sampling of variable-frame-rate video)")
    start_s: float | None = _setting(None, kind="float", minimum=0, nullable=True, changes_rows=True,
                                     default_doc="null (from the start)",
                                     help="label only video frames with timestamp >= start_s seconds")
    end_s: float | None = _setting(None, kind="float", minimum=0, strict=True, nullable=True, changes_rows=True,
                                   default_doc="null (to the end)",
                                   help="label only video frames with timestamp < end_s seconds")
    tracking: bool = _setting(True, kind="bool",
                              help="link people across video frames (poses.track_id and the tracks table)")
    track: Mapping[str, Any] = _setting({}, kind="mapping", changes_rows=True, metavar="NAME=VALUE",
                                        help="pipeline.video.TrackConfig fields (min_similarity, smoothing...)")
    pool_size: int | None = _setting(None, kind="int", minimum=1, nullable=True,
                                     default_doc="one per GPU; on CPU 2-CPU actors filling 3/4 of the CPUs",
                                     help="network actors")
    cpus_per_actor: float | None = _setting(None, kind="float", minimum=0, strict=True, nullable=True,
                                            default_doc="2 (1 under 4 CPUs)",
                                            help="CPUs (= math threads) per network actor on CPU")
    max_in_flight: int | None = _setting(None, kind="int", minimum=1, nullable=True, default_doc="2*pool_size+2",
                                         help="shards between decode and write at once (bounds memory)")
    shard_retries: int = _setting(2, kind="int", minimum=0,
                                  help="extra attempts of a failing shard before it goes to the errors table")
    max_pixels: int = _setting(40_000_000, kind="int", minimum=1,
                               help="largest image (width x height, read from the header before decoding); "
                                    "larger inputs get an errors row")
    max_aspect: float = _setting(10.0, kind="float", minimum=1,
                                 help="largest long-side / short-side ratio of an image; more gets an errors row")
    executor: str = _setting(
        "auto", kind="choice", choices=EXECUTORS,
        help=f"where the stages run: ray; inline = threads of this process (no Ray start-up, no crash isolation); "
             f"auto = inline for a local CPU job of at most {INLINE_MAX_FRAMES} frames to label, else ray")
    ray_address: str | None = _setting(None, kind="str", nullable=True, default_doc="null (in-process Ray)",
                                       help='Ray cluster to join: "auto" or "ray://host:10001"')
    num_cpus: int | None = _setting(None, kind="int", minimum=1, nullable=True, default_doc="all of this machine's",
                                    help="CPUs this job uses on this machine: the in-process Ray's, or the inline executor's threads")
    storage_options: Mapping[str, Any] = _setting(
        {}, kind="mapping", flag="--storage-option", metavar="NAME=VALUE",
        help="fsspec options for remote inputs/outputs (endpoint_url, key, secret...), checked against the "
             "filesystem's accepted keys; credentials also come from the usual AWS variables")
    progress: bool = _setting(True, kind="bool", help="draw the live progress line on stderr")
    compact: bool = _setting(False, kind="bool", help="compact the output tables at the end of the job")
    exports: Mapping[str, Any] = _setting(
        {}, kind="mapping", metavar="FORMAT=DEST",
        help="exports made at the end of the job (pipeline.export): FORMAT (openpose-json, controlnet, hf-dataset, "
             "coco) to a destination folder, or to {dest: ..., option: value} with that format's options")

    def export_requests(self) -> list[tuple[str, str, dict]]:
        """[(format, destination, options)] of ``exports``; ValueError naming a bad format or entry."""
        from pipeline.export.runner import ALL_FORMATS

        out = []
        for fmt, target in self.exports.items():
            if fmt not in ALL_FORMATS:
                raise ValueError(f"unknown export format {fmt!r}; formats: {', '.join(ALL_FORMATS)}")
            options = dict(target) if isinstance(target, Mapping) else {"dest": target}
            dest = options.pop("dest", None)
            if not isinstance(dest, str) or not dest:
                raise ValueError(f"export {fmt!r} needs a destination: {fmt}: DEST or {fmt}: {{dest: DEST, ...}}")
            out.append((fmt, absolute_uri(dest), options))
        return out

    def parse_config(self):
        """The pipeline.parsing.ParseConfig these settings describe."""
        from pipeline.parsing import ParseConfig

        return ParseConfig.from_dict(dict(self.parse))

    def track_config(self):
        """The pipeline.video.TrackConfig these settings describe (TypeError/ValueError if invalid)."""
        from pipeline.video.tracker import TrackConfig

        return TrackConfig(**dict(self.track))

    def config_id(self) -> str:
        """16-hex hash of every setting that changes the rows (Setting.changes_rows), not of throughput knobs."""
        payload = {}
        for f in dataclasses.fields(self):
            if f.metadata["setting"].changes_rows:
                value = getattr(self, f.name)
                if f.name == "parse":
                    value = self.parse_config().to_dict()
                elif f.name == "track":
                    value = dataclasses.asdict(self.track_config())
                payload[f.name] = list(value) if isinstance(value, tuple) else value
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for the manifest), with every secret masked (pipeline.secrets.mask)."""
        d = dataclasses.asdict(self)
        d["input"], d["scales"] = list(self.input), list(self.scales)
        d["parse"], d["track"], d["storage_options"] = dict(self.parse), dict(self.track), dict(self.storage_options)
        return mask(d)


_FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(JobSpec)}


def settings() -> dict[str, Setting]:
    """{key: Setting} of every job setting, in declaration order."""
    return {name: f.metadata["setting"] for name, f in _FIELDS.items()}


def _where(source: str, key: str) -> str:
    return f"{source}: key {key!r}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bound_text(s: Setting, noun: str) -> str:
    if s.minimum is None:
        return f"a {noun}" if noun != "integer" else "an integer"
    if s.minimum == 0 and s.strict or s.minimum == 1 and not s.strict and noun == "integer":
        return f"a positive {noun}"
    return f"{'an' if noun == 'integer' else 'a'} {noun} {'>' if s.strict else '>='} {s.minimum:g}"


def _in_bounds(s: Setting, v: float) -> bool:
    return s.minimum is None or (v > s.minimum if s.strict else v >= s.minimum)


def check_value(key: str, value: Any, source: str) -> Any:
    """``value`` of setting ``key`` converted to its type; SpecError naming key and source if it isn't valid."""
    s = settings()[key]
    w = _where(source, key)
    if value is None and s.nullable:
        return None
    if s.kind == "paths":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(i, str) and i for i in items):
            raise SpecError(f"{w} must be a non-empty path/URI or list of them, got {value!r}")
        return tuple(items)
    if s.kind == "str":
        if not isinstance(value, str) or not value:
            raise SpecError(f"{w} must be a non-empty string{' or null' if s.nullable else ''}, got {value!r}")
        return value
    if s.kind == "choice":
        if value not in s.choices:
            raise SpecError(f"{w} must be one of {', '.join(s.choices)}, got {value!r}")
        return value
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"{w} must be true or false, got {value!r}")
        return value
    if s.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not _in_bounds(s, value):
            raise SpecError(f"{w} must be {_bound_text(s, 'integer')}{' or null' if s.nullable else ''}, got {value!r}")
        return value
    if s.kind == "float":
        if not _is_number(value) or not _in_bounds(s, value):
            raise SpecError(f"{w} must be {_bound_text(s, 'number')}{' or null' if s.nullable else ''}, got {value!r}")
        return float(value)
    if s.kind == "floats":
        items = [value] if _is_number(value) else value
        if (not isinstance(items, (list, tuple)) or not items
                or not all(_is_number(v) and _in_bounds(s, v) for v in items)):
            raise SpecError(f"{w} must be {_bound_text(s, 'number')} or a list of them, got {value!r}")
        return tuple(float(v) for v in items)
    # mapping
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"{w} must be a mapping of names to values, got {value!r}")
    return dict(value)


def _resolve_input(item: str) -> str:
    path, literal = split_literal(item)
    return (LITERAL_PREFIX if literal else "") + absolute_uri(path)


def _unknown_keys_error(source: str, unknown: list[str]) -> SpecError:
    hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, list(_FIELDS), 1))
             else repr(k) for k in unknown]
    return SpecError(f"{source}: unknown key(s) {', '.join(hints)}; known keys: {', '.join(_FIELDS)}")


def _check_model(name: str) -> None:
    from pipeline.models import get as registry_entry

    registry_entry(name)


def build_spec(settings_: Mapping[str, Any], source: str = "job spec") -> JobSpec:
    """A validated JobSpec from {key: value}; SpecError names the bad key and ``source``.

    Each value is checked against its Setting; local paths are made absolute against the CWD;
    ``model`` must be in the registry, ``parse`` / ``track`` must build a ParseConfig / TrackConfig,
    ``storage_options`` must be options the inputs' and output's filesystem takes.
    """
    unknown = sorted(set(settings_) - set(_FIELDS))
    if unknown:
        raise _unknown_keys_error(source, unknown)
    missing = [k for k, s in settings().items() if s.required and settings_.get(k) in (None, "", [], ())]
    if missing:
        raise SpecError(f"{source}: missing required key(s) {', '.join(map(repr, missing))} "
                        f"(give them in the YAML file or as {settings()[missing[0]].flag or '--' + missing[0]})")
    values = {k: check_value(k, v, source) for k, v in settings_.items()}
    values["input"] = tuple(_resolve_input(u) for u in values["input"])
    for key in ("output", "model_dir"):
        if values.get(key):
            values[key] = absolute_uri(values[key])
    spec = JobSpec(**values)
    _check_combinations(spec, source)
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("model", lambda: _check_model(spec.model)),
        ("parse", spec.parse_config),
        ("storage_options", lambda: check_storage_options(
            [split_literal(u)[0] for u in spec.input] + [spec.output], spec.storage_options)),
    ]
    if spec.track:
        checks.append(("track", spec.track_config))
    if spec.exports:
        checks.append(("exports", spec.export_requests))
    for key, check in checks:
        try:
            check()
        except KeyError as exc:
            raise SpecError(f"{_where(source, key)}: {exc.args[0]}") from None
        except StorageOptionsError as exc:
            raise SpecError(f"{_where(source, key)}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{_where(source, key)} is invalid: {exc}") from None
    return spec


def _check_combinations(spec: JobSpec, source: str) -> None:
    """SpecError for settings that are valid alone but not together."""
    if spec.target_fps is not None and spec.frame_step != 1:
        raise SpecError(f"{_where(source, 'target_fps')}: give target_fps or frame_step, not both "
                        f"(frame_step is {spec.frame_step})")
    if spec.executor == "inline" and spec.ray_address:
        raise SpecError(f"{_where(source, 'executor')}: inline runs in this process, not on the Ray cluster "
                        f"{spec.ray_address!r}; use executor ray (or auto), or drop ray_address")
    if spec.start_s is not None and spec.end_s is not None and spec.end_s <= spec.start_s:
        raise SpecError(f"{_where(source, 'end_s')} must be greater than start_s ({spec.start_s:g}), got {spec.end_s:g}")


def read_settings(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
                  ) -> tuple[dict[str, Any], str]:
    """(settings, source): the YAML file at ``path`` (if any) with ``overrides`` (not None) applied.

    ``source`` names the file (and the command line) for messages. Values in the file are checked
    here, so a bad one is reported with the file's name. Raises SpecError on an unreadable file,
    unknown keys or bad values.
    """
    import yaml

    settings_: dict[str, Any] = {}
    source = "command line"
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise SpecError(f"{path}: job spec file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: cannot read the job spec ({exc})") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML ({exc})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise SpecError(f"{path}: a job spec must be a mapping of settings, got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - set(_FIELDS))
        if unknown:
            raise _unknown_keys_error(str(path), unknown)
        for k, v in loaded.items():
            if k not in overrides:
                check_value(k, v, source)
        settings_.update(loaded)
    settings_.update(overrides)
    return settings_, (source if not overrides else f"{source} (with command-line overrides)")


def load_spec(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> JobSpec:
    """Read the YAML job spec at ``path`` (if any), apply ``overrides`` (CLI flags, not None), validate.

    Raises SpecError naming the file and key on unreadable YAML, unknown keys or bad values.
    """
    return build_spec(*read_settings(path, overrides))


# --- command-line flags ------------------------------------------------------------------------

def flag_name(key: str) -> str:
    """The command-line flag of setting ``key`` (``batch_size`` -> ``--batch-size``)."""
    return settings()[key].flag or "--" + key.replace("_", "-")


def _key_value(text: str) -> tuple[str, Any]:
    """"name=value" -> (name, YAML-parsed value), for the mapping flags (--parse, --track, --storage-option)."""
    import yaml

    if "=" not in text:  # the text is not echoed: it may be a credential
        raise argparse.ArgumentTypeError("expected NAME=VALUE (no '=' in the value given)")
    k, v = text.split("=", 1)
    try:
        return k.strip(), yaml.safe_load(v)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{k.strip()}=...: the value is not valid YAML") from None


def add_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """Add one flag per job setting (not in ``exclude``) to ``parser``; values stay None unless given."""
    group = parser.add_argument_group("job settings (override the --config file; see docs/job.md)")
    for key, s in settings().items():
        if key in exclude:
            continue
        kw: dict[str, Any] = {"dest": key, "help": s.help.replace("%", "%%")}
        if s.kind == "paths":
            kw.update(nargs="+", metavar="PATH")
        elif s.kind == "choice":
            kw.update(choices=s.choices)
        elif s.kind == "bool":
            kw.update(action=argparse.BooleanOptionalAction, default=None)
        elif s.kind in ("int", "float"):
            kw.update(type=int if s.kind == "int" else float)
        elif s.kind == "floats":
            kw.update(type=float, nargs="+")
        elif s.kind == "mapping":
            kw.update(type=_key_value, action="append", metavar=s.metavar, help=kw["help"] + " (repeatable)")
        group.add_argument(flag_name(key), **kw)


def overrides_from_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """{key: value} of the settings given as flags (None = not given); NAME=VALUE pairs of mapping
    flags are merged into the mapping of ``base`` (the --config file's settings)."""
    base = base or {}
    out: dict[str, Any] = {}
    for key, s in settings().items():
        value = getattr(args, key, None)
        if value is not None and s.kind == "mapping":
            given = base.get(key)
            value = {**(given if isinstance(given, Mapping) else {}), **dict(value)}
        out[key] = value
    return out


def file_settings(path: str | Path | None) -> dict[str, Any]:
    """The raw settings of the YAML file at ``path`` ({} if none or unreadable: read_settings reports that)."""
    import yaml

    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


# --- docs ----------------------------------------------------------------------------------------

def _type_doc(s: Setting) -> str:
    if s.kind == "paths":
        text = "list of paths/URIs"
    elif s.kind == "choice":
        text = " \\| ".join(s.choices)
    elif s.kind in ("int", "float", "floats"):
        noun = {"int": "int", "float": "float", "floats": "list of floats"}[s.kind]
        text = noun if s.minimum is None else f"{noun} {'>' if s.strict else '>='} {s.minimum:g}"
    else:
        text = s.kind
    return text + (" or null" if s.nullable else "")


def _default_doc(f: dataclasses.Field) -> str:
    s: Setting = f.metadata["setting"]
    if s.required:
        return "(required)"
    if s.default_doc:
        return s.default_doc
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return json.dumps(value) if isinstance(value, dict) else str(value)


def settings_table() -> str:
    """The Markdown table of every job setting (docs/job.md holds it between the settings-table markers)."""
    rows = ["| key | flag | type | default | in config_id | meaning |", "|---|---|---|---|---|---|"]
    for key, f in _FIELDS.items():
        s = f.metadata["setting"]
        flag = flag_name(key) + (f" {s.metavar}" if s.metavar else "")
        if s.kind == "bool":
            flag = "--[no-]" + flag[2:]
        rows.append(f"| `{key}` | `{flag}` | {_type_doc(s)} | {_default_doc(f)} | "
                    f"{'yes' if s.changes_rows else ''} | {s.help} |")
    return "\n".join(rows) + "\n"
