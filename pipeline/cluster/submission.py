"""What a cluster job is made of: the entrypoint, the runtime_env and the metadata sent to Ray.

A job spec written for one machine (jobs/*.yaml) becomes a Ray Jobs API submission:

- the spec (a YAML file plus command-line overrides, as for ``posepipe run``) is validated here
  first (``pipeline.job.spec``), so a typo fails on the submitting machine, not minutes later on
  the cluster;
- no credential travels: secret-looking keys (``storage_options.key``/``secret``/``token``, nested
  ``client_kwargs.aws_session_token``...) are removed from the spec copy and passwords from its
  URLs (pipeline.secrets.strip_secrets), and ``env`` refuses credential variables: the nodes use
  their own (instance profile, or the environment the cluster config gives them);
- its inputs and output must be URIs every node can reach (s3://...), not this machine's paths;
- a copy of the spec, with ``ray_address: auto`` so the driver joins the cluster it runs on, travels
  in the job's ``working_dir``; the entrypoint is ``python -m pipeline.cli run --config job.yaml``;
- unless ``ship_code=False``, a copy of the local ``pipeline`` package (and the ``schemas/`` folder
  beside it, which ``pipeline.tables`` reads in a source checkout) travels in the same working_dir,
  which Ray puts first on every worker's Python path: the cluster runs exactly the submitter's code
  on top of the dependencies installed on the nodes;
- chosen environment variables (S3 endpoint/region by default, anything named with ``env`` that is
  not a credential) are set for the driver and every worker.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

import pipeline
from pipeline.job.spec import SpecError, build_spec, read_settings
from pipeline.secrets import is_secret_key, mask_url, secret_paths, strip_secrets
from pipeline.storage import is_remote, split_literal

SPEC_NAME = "job.yaml"
PACKAGE_DIR = Path(pipeline.__file__).resolve().parent
#: Folders beside the package that travel with it when present (pipeline.tables reads ../schemas).
PACKAGE_SIBLINGS = ("schemas",)

# Passed through from the submitting shell when set there: where S3 is, never credentials
# (on AWS the nodes' instance profile provides those; see docs/cluster.md).
DEFAULT_ENV_PASSTHROUGH = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION")


class SubmissionError(ValueError):
    """The job cannot be submitted as asked; the message says which input is wrong and what to do."""


@dataclass(frozen=True)
class Submission:
    """Everything ``JobSubmissionClient.submit_job`` needs.

    entrypoint:    shell command run by the driver on the head node, in ``working_dir``.
    runtime_env:   Ray runtime_env dict (working_dir, py_modules, env_vars, excludes).
    submission_id: the job id on the cluster (unique, readable: posepipe-<spec>-<UTC time>-<hex>).
    metadata:      str -> str shown by ``posepipe status`` (spec file, output URI, version).
    staging_dir:   local temp folder holding the spec copy (uploaded by Ray at submit time).
    stripped:      dotted paths of the spec entries that held credentials and were not sent.
    """

    entrypoint: str
    runtime_env: dict[str, Any]
    submission_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    staging_dir: str = ""
    stripped: tuple[str, ...] = ()

    def discard(self) -> None:
        """Delete the local staging folder (Ray has uploaded it once the job is submitted)."""
        if self.staging_dir:
            shutil.rmtree(self.staging_dir, ignore_errors=True)


def parse_env_args(items: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``["NAME=VALUE", "NAME", ...]`` -> {name: value}; a bare NAME copies this shell's value.

    Raises SubmissionError for a malformed name, a bare NAME that is not set here, or a credential
    (a secret-looking name such as AWS_SECRET_ACCESS_KEY, or a URL with a password): Ray shows and
    logs runtime_env values, so credentials come from the nodes' own environment instead.
    """
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SubmissionError(f"--env {item!r}: expected NAME or NAME=VALUE with a valid variable name")
        if not sep:
            if name not in environ:
                raise SubmissionError(f"--env {name}: not set in this shell; give it as {name}=VALUE")
            value = environ[name]
        if is_secret_key(name) or mask_url(value) != value:
            raise SubmissionError(
                f"--env {name}: credentials are not sent with a job (Ray logs and shows runtime_env values); "
                f"give the cluster nodes their own (instance profile, or the environment in the cluster config; "
                f"see docs/cluster.md)")
        out[name] = value
    return out


def _check_reachable(spec, allow_local_paths: bool, source: str) -> None:
    """SubmissionError if an input or the output is a path of this machine (unless allowed)."""
    if allow_local_paths:
        return
    for key, uris in (("input", [split_literal(u)[0] for u in spec.input]), ("output", (spec.output,))):
        for uri in uris:
            if not is_remote(uri):
                raise SubmissionError(
                    f"{source}: {key} {uri!r} is a path on this machine, which cluster nodes cannot read; "
                    f"use a URI every node reaches (e.g. s3://bucket/prefix), or pass --allow-local-paths "
                    f"if every node mounts that path")


def build_submission(spec_path: str | Path, *, overrides: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None,
                     ship_code: bool = True, allow_local_paths: bool = False,
                     submission_id: str | None = None,
                     environ: Mapping[str, str] | None = None) -> Submission:
    """Validate the job spec at ``spec_path`` (with ``overrides``, as ``posepipe run`` flags give
    them) and build its cluster submission.

    env:               extra environment variables for the driver and all workers (override the
                       defaults passed through from ``environ``: DEFAULT_ENV_PASSTHROUGH).
    ship_code:         send this checkout's ``pipeline`` package along (else the nodes' install runs).
    allow_local_paths: accept local input/output paths (only when every node mounts them).
    Raises SubmissionError (or pipeline.job.spec.SpecError) naming the bad input.
    """
    environ = os.environ if environ is None else environ
    spec_path = Path(spec_path)
    settings, source = read_settings(spec_path, overrides)
    spec = build_spec(settings, source)
    _check_reachable(spec, allow_local_paths, str(spec_path))

    # Paths as resolved on this machine (absolute), so a relative path cannot silently change meaning.
    raw = dict(settings, input=list(spec.input), output=spec.output)
    if spec.model_dir is not None:
        raw["model_dir"] = spec.model_dir
    raw["ray_address"] = "auto"        # the driver joins the cluster it runs on (RAY_ADDRESS is set)
    raw.setdefault("progress", False)  # a live progress line only clutters job logs
    raw = {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}
    stripped = tuple(secret_paths(raw))
    raw = strip_secrets(raw)

    staging = Path(tempfile.mkdtemp(prefix="posepipe-submit-"))
    (staging / SPEC_NAME).write_text(yaml.safe_dump(raw, sort_keys=False))
    if ship_code:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(PACKAGE_DIR, staging / PACKAGE_DIR.name, ignore=ignore)
        for name in PACKAGE_SIBLINGS:
            if (PACKAGE_DIR.parent / name).is_dir():
                shutil.copytree(PACKAGE_DIR.parent / name, staging / name, ignore=ignore)

    env_vars = {k: strip_secrets(environ[k]) for k in DEFAULT_ENV_PASSTHROUGH if k in environ}
    env_vars.update(env or {})
    runtime_env: dict[str, Any] = {"working_dir": str(staging), "env_vars": env_vars}

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9-]+", "-", spec_path.stem).strip("-") or "job"
    return Submission(
        entrypoint=f"python -m pipeline.cli run --config {SPEC_NAME}",
        runtime_env=runtime_env,
        submission_id=submission_id or f"posepipe-{stem}-{stamp}-{uuid.uuid4().hex[:6]}",
        metadata={"posepipe_spec": str(spec_path), "posepipe_output": raw["output"],
                  "posepipe_model": spec.model, "posepipe_version": pipeline.__version__},
        staging_dir=str(staging),
        stripped=stripped,
    )


__all__ = ["Submission", "SubmissionError", "SpecError", "build_submission", "parse_env_args",
           "DEFAULT_ENV_PASSTHROUGH", "SPEC_NAME"]
