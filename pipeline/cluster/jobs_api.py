"""Talking to a Ray cluster's Jobs API (the dashboard, port 8265 on the head): submit, status, logs, wait."""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Callable, TextIO

from pipeline.cluster.submission import Submission

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class ClusterError(RuntimeError):
    """The cluster could not be reached or did not know the job; the message says what to check."""


def connect(address: str):
    """A ``ray.job_submission.JobSubmissionClient`` for the Jobs API at ``address`` (http://HEAD:8265).

    Raises ClusterError naming the address when nothing answers there.
    """
    from ray.job_submission import JobSubmissionClient

    if not address.startswith(("http://", "https://")):
        raise ClusterError(f"--address {address!r}: expected the head's Jobs API URL, e.g. http://HEAD:8265")
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # the client raises ConnectionError / RuntimeError variants
        raise ClusterError(
            f"could not reach the Ray Jobs API at {address} ({exc}); is the cluster up? "
            f"`ray dashboard ray_cluster.yaml` forwards the head's port 8265 to localhost") from exc


def submit(client, submission: Submission) -> str:
    """Submit ``submission`` through ``client``; returns the job's submission id.

    The staged spec copy is uploaded by Ray during the call and removed locally afterwards.
    Raises ClusterError when the Jobs API refuses the job (e.g. the id is taken).
    """
    try:
        return client.submit_job(
            entrypoint=submission.entrypoint,
            runtime_env=submission.runtime_env,
            submission_id=submission.submission_id,
            metadata=submission.metadata,
        )
    except (RuntimeError, ConnectionError) as exc:
        lines = [ln.strip(" .") for ln in str(exc).splitlines() if ln.strip(" .")]
        reason = lines[-1] if lines else type(exc).__name__  # the server's traceback ends with the reason
        raise ClusterError(f"the cluster refused job {submission.submission_id}: {reason}") from exc
    finally:
        submission.discard()


def job_info(client, job_id: str) -> dict[str, Any]:
    """The job's details as a plain dict: status, message, entrypoint, start/end (unix seconds), metadata.

    Raises ClusterError if the cluster does not know ``job_id``.
    """
    try:
        info = client.get_job_info(job_id)
    except RuntimeError as exc:
        raise ClusterError(f"job {job_id!r}: {exc}; `ray job list --address ...` shows the known jobs") from exc
    return {
        "job_id": info.submission_id or info.job_id,
        "status": str(info.status.value if hasattr(info.status, "value") else info.status),
        "message": info.message or "",
        "entrypoint": info.entrypoint,
        "start_time": info.start_time / 1000 if info.start_time else None,
        "end_time": info.end_time / 1000 if info.end_time else None,
        "driver_exit_code": info.driver_exit_code,
        "metadata": dict(info.metadata or {}),
    }


def logs(client, job_id: str) -> str:
    """Everything the job's driver has printed so far."""
    job_info(client, job_id)  # a clear error for unknown ids
    return client.get_job_logs(job_id)


def follow_logs(client, job_id: str, out: TextIO = sys.stdout, timeout_s: float | None = None) -> None:
    """Stream the driver's output to ``out`` until the job ends (or ``timeout_s`` seconds pass).

    Raises TimeoutError when the timeout is hit first.
    """
    job_info(client, job_id)

    async def _tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    async def _run() -> None:
        await asyncio.wait_for(_tail(), timeout=timeout_s)

    asyncio.run(_run())


def wait(client, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0,
         on_change: Callable[[str], None] | None = None) -> str:
    """Poll until the job reaches SUCCEEDED, FAILED or STOPPED; returns that status.

    on_change(status) is called at every status change. Raises TimeoutError after ``timeout_s`` seconds.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = None
    while True:
        status = job_info(client, job_id)["status"]
        if status != last and on_change is not None:
            on_change(status)
        last = status
        if status in TERMINAL:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_s)
