"""``posepipe submit/status/logs`` against a real two-node Ray cluster and a real S3 API (moto).

One cluster for the whole module (``ray start`` is slow on 2 cores); the worker-loss test kills
the worker node, so it runs last. Jobs use the real default network (omz-lightweight) on a few
small photos from ../shared/media/images.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest
import yaml

from pipeline.job.read import read_frames, read_poses

REPO = Path(__file__).resolve().parents[2]
IMAGES = ["p1.jpg", "p2.jpg", "cat.jpg", "valid_person1.jpg"]                 # cat.jpg: nobody in it
MORE_IMAGES = ["p1.jpg", "p2.jpg", "p3.jpg", "valid_person1.jpg", "cat.jpg", "golf.jpg"]
BUCKET = "posepipe-test"


def posepipe(args: list[str], env: dict, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the ``posepipe`` CLI (as ``python -m pipeline.cli``) from the repository root."""
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def client_env(ray_cluster, s3_endpoint) -> dict:
    """What the submitting shell holds: the cluster's auth token and the S3 endpoint + credentials."""
    return {**ray_cluster.env, **s3_endpoint.env}


@pytest.fixture(scope="module")
def bucket(s3_endpoint, media_dir):
    fs = s3_endpoint.filesystem()
    fs.mkdir(BUCKET)
    for name in sorted(set(IMAGES + MORE_IMAGES)):
        fs.put_file(str(media_dir / "images" / name), f"{BUCKET}/photos/{name}")
    return fs


def write_spec(path: Path, inputs: list[str], output: str, **settings) -> Path:
    path.write_text(yaml.safe_dump({"input": inputs, "output": output, "model": "omz-lightweight",
                                    "images_per_shard": 1, "batch_size": 1, **settings}))
    return path


def submit_args(spec: Path, cluster) -> list[str]:
    # No credentials are sent: the nodes have their own (AWS_ENDPOINT_URL is passed through by default).
    return ["submit", "--config", str(spec), "--address", cluster.dashboard_url, "--wait", "--timeout", "240"]


def storage_options(s3_endpoint) -> dict:
    return {"endpoint_url": s3_endpoint.url, "key": s3_endpoint.env["AWS_ACCESS_KEY_ID"],
            "secret": s3_endpoint.env["AWS_SECRET_ACCESS_KEY"]}


def done_shards(output: str, s3_endpoint) -> list[dict]:
    """The shard_log rows (shard_id, source_uri, status) of the job output (the record of finished work)."""
    from pipeline.job.sink import DeltaSink

    try:
        return DeltaSink(output, storage_options(s3_endpoint)).shard_log(["shard_id", "source_uri", "status"]).to_pylist()
    except Exception:  # noqa: BLE001 - the log does not exist before the first commit
        return []


def check_output_exactly_once(fs, s3_endpoint, output: str, names: list[str], media_dir: Path) -> dict:
    """Every input image is one frames row, every shard is in the shard_log once, done; returns the manifest."""
    uris = sorted(f"s3://{BUCKET}/photos/{n}" for n in names)
    so = storage_options(s3_endpoint)
    frames = read_frames(output, storage_options=so)
    assert sorted(frames["source_uri"]) == uris, "each image exactly once in the frames table"
    for row in frames.itertuples():
        h, w = cv2.imread(str(media_dir / "images" / row.source_uri.rsplit("/", 1)[1])).shape[:2]
        assert (row.width, row.height) == (w, h), row.source_uri

    poses = read_poses(output, storage_options=so)
    assert not poses.duplicated(["source_uri", "frame_index", "person_index"]).any()
    per_image = poses.groupby("source_uri").size().reindex(uris, fill_value=0)
    assert per_image.to_dict() == frames.set_index("source_uri")["num_people"].reindex(uris).to_dict()
    assert per_image[f"s3://{BUCKET}/photos/cat.jpg"] == 0
    assert (per_image.drop(f"s3://{BUCKET}/photos/cat.jpg") >= 1).all(), per_image

    manifest = json.loads(fs.cat_file(f"{output[len('s3://'):]}/_manifest.json"))
    assert manifest["summary"]["frames"] == len(names) and manifest["summary"]["errors"] == 0
    assert manifest["summary"]["status"] == "complete"
    # The shard_log (Delta table, replacing commits) is the record of finished work: one shard per
    # image (images_per_shard 1), each once and done, covering exactly the inputs.
    log = [r for r in done_shards(output, s3_endpoint) if r["status"] == "done"]
    shard_ids = [r["shard_id"] for r in log]
    assert len(shard_ids) == len(names) == len(set(shard_ids)), log
    assert sorted(r["source_uri"] for r in log) == uris
    for table in ("frames", "poses"):
        assert fs.exists(f"{output[len('s3://'):]}/{table}/_delta_log/00000000000000000000.json")
    return manifest


@pytest.fixture(scope="module")
def images_job(ray_cluster, bucket, client_env, tmp_path_factory):
    spec = write_spec(tmp_path_factory.mktemp("spec") / "s3-photos.yaml",
                      [f"s3://{BUCKET}/photos/{n}" for n in IMAGES], f"s3://{BUCKET}/out/images")
    result = posepipe(submit_args(spec, ray_cluster), client_env)
    job_id = result.stdout.splitlines()[0] if result.stdout else ""
    return job_id, result


def test_submitted_job_labels_every_image_on_s3(images_job, bucket, s3_endpoint, media_dir):
    job_id, result = images_job
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert job_id.startswith("posepipe-s3-photos-")
    assert "posepipe: complete: 4 frames" in result.stdout  # the driver's report, streamed by --wait
    manifest = check_output_exactly_once(bucket, s3_endpoint, f"s3://{BUCKET}/out/images", IMAGES, media_dir)
    assert manifest["spec"]["ray_address"] == "auto"          # the driver joined the cluster


def test_status_and_logs_of_the_finished_job(images_job, ray_cluster, client_env):
    job_id, _ = images_job
    status = posepipe(["status", job_id, "--address", ray_cluster.dashboard_url, "--json"], client_env)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["status"] == "SUCCEEDED" and info["driver_exit_code"] == 0
    assert info["metadata"]["posepipe_output"] == f"s3://{BUCKET}/out/images"
    assert info["entrypoint"] == "python -m pipeline.cli run --config job.yaml"

    logs = posepipe(["logs", job_id, "--address", ray_cluster.dashboard_url], client_env)
    assert logs.returncode == 0 and "posepipe: complete: 4 frames" in logs.stdout

    unknown = posepipe(["status", "posepipe-no-such-job", "--address", ray_cluster.dashboard_url], client_env)
    assert unknown.returncode == 2 and "posepipe-no-such-job" in unknown.stderr


def test_a_taken_job_id_is_refused(images_job, ray_cluster, client_env, tmp_path):
    job_id, _ = images_job
    spec = write_spec(tmp_path / "again.yaml", [f"s3://{BUCKET}/photos/p1.jpg"], f"s3://{BUCKET}/out/again")
    r = posepipe(["submit", str(spec), "--address", ray_cluster.dashboard_url, "--submission-id", job_id], client_env)
    assert r.returncode == 2 and f"refused job {job_id}" in r.stderr and "already exists" in r.stderr


def test_unreachable_cluster_and_local_paths_are_clear_errors(tmp_path, client_env, free_address):
    spec = write_spec(tmp_path / "ok.yaml", [f"s3://{BUCKET}/photos/"], f"s3://{BUCKET}/out/x")
    r = posepipe(["submit", str(spec), "--address", free_address], client_env)
    assert r.returncode == 2 and f"could not reach the Ray Jobs API at {free_address}" in r.stderr

    spec = write_spec(tmp_path / "local.yaml", [str(tmp_path)], f"s3://{BUCKET}/out/x")
    r = posepipe(["submit", str(spec), "--address", free_address], client_env)
    assert r.returncode == 2 and "is a path on this machine" in r.stderr


def _files_holding(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """{needle: [files under root whose bytes contain it]} (sockets and unreadable files skipped)."""
    found: dict[str, list[str]] = {n: [] for n in needles}
    for path in root.rglob("*"):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
        except OSError:
            continue
        for n in needles:
            if n.encode() in data:
                found[n].append(str(path))
    return found


def test_planted_secrets_never_reach_the_cluster(ray_cluster, bucket, s3_endpoint, client_env, tmp_path):
    """Credentials in the spec's storage_options (flat, nested, in the endpoint URL) and in the
    submitting shell stay on this machine: the job runs with the nodes' own credentials, and none
    of the planted values is in any file of the cluster's nodes (uploaded working dir, job files,
    Ray and driver logs) or under the job's output."""
    planted = [f"PLANTED-{name}-{secrets.token_hex(4)}" for name in ("KEY", "SECRET", "TOKEN", "NESTED", "URL", "SHELL")]
    host = s3_endpoint.url.split("://", 1)[1]
    output = f"s3://{BUCKET}/out/planted"
    spec = write_spec(tmp_path / "s3-planted.yaml", [f"s3://{BUCKET}/photos/p1.jpg"], output, storage_options={
        "key": planted[0], "secret": planted[1], "token": planted[2],
        "client_kwargs": {"aws_session_token": planted[3]},
        "endpoint_url": f"http://posepipe:{planted[4]}@{host}"})
    env = dict(client_env, AWS_SESSION_TOKEN=planted[5])  # the submitting shell's own session
    result = posepipe(["submit", str(spec), "--address", ray_cluster.dashboard_url, "--wait", "--timeout", "240",
                       "--storage-option", f"endpoint_url={s3_endpoint.url}"], env)   # positional spec = --config
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "posepipe: complete: 1 frames" in result.stdout
    assert "not sent to the cluster" in result.stderr and "storage_options.client_kwargs.aws_session_token" in result.stderr
    assert not [p for p in planted if p in result.stdout + result.stderr]
    # The scan covers what was uploaded: the job file Ray unpacked on the head is among the files read.
    shipped = [p for p in ray_cluster.root.rglob("job.yaml") if "s3-planted" in p.read_text() or
               "out/planted" in p.read_text()]
    assert shipped, "the uploaded job file was not found under the cluster's directories"
    assert yaml.safe_load(shipped[0].read_text())["storage_options"] == {"client_kwargs": {},
                                                                         "endpoint_url": s3_endpoint.url}
    leaks = {p: files for p, files in _files_holding(ray_cluster.root, planted).items() if files}
    assert not leaks, leaks
    bucket.invalidate_cache()
    objects = [p for p in bucket.find(output[len("s3://"):])]
    assert objects
    assert not [o for o in objects if any(p.encode() in bucket.cat_file(o) for p in planted)]


def _tasks_on_node(cluster, node_id: str) -> list[dict]:
    """Tasks and actor tasks the cluster recorded as run on ``node_id`` (dashboard state API)."""
    url = (f"{cluster.dashboard_url}/api/v0/tasks?limit=10000&detail=true"
           f"&filter_keys=node_id&filter_predicates=%3D&filter_values={node_id}")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {cluster.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)["data"]["result"]["result"]


def test_job_survives_losing_a_worker_node(ray_cluster, bucket, s3_endpoint, client_env, tmp_path, media_dir):
    """Kill the worker node (its whole process tree, SIGKILL) mid-job, once the first shard is in the
    shard_log: the job still finishes, every shard is written exactly once, and the lost node had
    really been doing the job's work.

    The job sizes its actor pool for the CPUs present at start; after the node dies the pool must
    shrink rather than fill the surviving head with replacement actors (no CPU would be left for
    decode/write tasks and the job would wait forever). max_in_flight 2 makes shards finish one by one,
    so the node dies while work is left.
    """
    output = f"s3://{BUCKET}/out/worker-loss"
    spec = write_spec(tmp_path / "s3-worker-loss.yaml", [f"s3://{BUCKET}/photos/{n}" for n in MORE_IMAGES], output,
                      max_in_flight=2)
    worker = next(n for n in ray_cluster.alive_nodes() if not n["is_head_node"])
    log = tmp_path / "submit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *submit_args(spec, ray_cluster)],
                                env=client_env, cwd=REPO, text=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        done_at_kill = []
        while time.monotonic() < deadline and proc.poll() is None:
            done_at_kill = [r["shard_id"] for r in done_shards(output, s3_endpoint) if r["status"] == "done"]
            if done_at_kill:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the job ended before the worker could be killed:\n" + log.read_text()[-3000:]
        assert 1 <= len(done_at_kill) < len(MORE_IMAGES), done_at_kill
        ray_cluster.nodes[-1].kill()
        proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text[-4000:]
    assert f"posepipe: complete: {len(MORE_IMAGES)} frames" in text
    check_output_exactly_once(bucket, s3_endpoint, output, MORE_IMAGES, media_dir)
    # Not vacuous: the cluster saw the node die (GCS health checks take ~15 s) and that node had
    # run, or was running, work of this job.
    deadline = time.monotonic() + 60
    while worker["node_id"] in {n["node_id"] for n in ray_cluster.alive_nodes()} and time.monotonic() < deadline:
        time.sleep(1)
    assert worker["node_id"] not in {n["node_id"] for n in ray_cluster.alive_nodes()}
    tasks = _tasks_on_node(ray_cluster, worker["node_id"])
    job_work = [(t["name"], t["state"]) for t in tasks
                if t["name"] in {"_decode_task", "_assemble_task", "NetworkActor.__init__", "NetworkActor.run"}]
    assert job_work, sorted({(t["name"], t["state"]) for t in tasks})
    print("job work on the killed node:", sorted(set(job_work)))
