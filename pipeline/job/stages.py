"""The job's three stages as plain functions/classes (Ray wraps them in pipeline.job.execute).

decode (CPU task):      read bytes, decode images / a video frame range, preprocess -> DecodedShard.
network (actor):        run the PAF network and pipeline.parsing.find_candidates -> CandidateShard
                        (only compact limb candidates leave the actor, never full maps).
assemble+write (CPU):   pipeline.parsing.assemble -> Poses -> Parquet files + the shard's marker.

Every failure tied to one input becomes an ErrorRecord; the rest of the shard goes on.
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from pipeline import tables
from pipeline.job.records import (CandidateShard, DecodedShard, ErrorRecord, FrameMeta, Shard,
                                  ShardResult)
from pipeline.storage import (describe_error, filesystem, join, remove_if_exists, write_bytes_atomic,
                              write_table_atomic)


class CorruptImageError(ValueError):
    """An image file is empty, truncated or not decodable."""


# ----------------------------------------------------------------------------------------- decode
def decode_image(data: bytes, uri: str) -> np.ndarray:
    """uint8 BGR [H, W, 3] pixels of the image file bytes ``data`` (EXIF orientation applied).

    Raises CorruptImageError naming ``uri`` for empty, undecodable or truncated (JPEG without its
    end-of-image marker) files.
    """
    import cv2

    if not data:
        raise CorruptImageError(f"{uri}: the file is empty (0 bytes); re-copy it from its origin or remove it")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise CorruptImageError(f"{uri}: not a decodable image (corrupt, or not the format its name says); "
                                "re-copy it from its origin or remove it")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data.rstrip(b"\x00\r\n ")[-4096:]:
        raise CorruptImageError(f"{uri}: truncated JPEG (no end-of-image marker, {len(data)} bytes); "
                                "re-copy it from its origin or remove it")
    return image


def _decode_images(shard: Shard, storage_options: Mapping[str, Any] | None) -> DecodedShard:
    frames, images, errors = [], [], []
    for src in shard.sources:
        try:
            fs, path = filesystem(src.uri, storage_options)
            data = fs.cat_file(path)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(src.uri, "read", exc, describe_error(src.uri, exc),
                                                     shard_id=shard.shard_id))
            continue
        try:
            image = decode_image(data, src.uri)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(src.uri, "decode", exc, str(exc), shard_id=shard.shard_id))
            continue
        h, w = image.shape[:2]
        frames.append(FrameMeta(src.uri, src.source_id, 0, None, int(w), int(h)))
        images.append(image)
    return DecodedShard(shard, frames, images, errors)


def _decode_video(shard: Shard, storage_options: Mapping[str, Any] | None) -> DecodedShard:
    from pipeline import video as pv

    src, fr = shard.sources[0], shard.frames
    frames, images, errors = [], [], []
    try:
        fs, path = filesystem(src.uri, storage_options)
        with fs.open(path, "rb") as f:
            for frame in pv.iter_frames(f, fr, shard.video_info):
                image = np.ascontiguousarray(frame.image)
                h, w = image.shape[:2]
                ts = None if frame.timestamp_s is None else float(frame.timestamp_s)
                frames.append(FrameMeta(src.uri, src.source_id, int(frame.index), ts, int(w), int(h)))
                images.append(image)
    except Exception as exc:  # noqa: BLE001
        msg = (describe_error(src.uri, exc) if isinstance(exc, (FileNotFoundError, PermissionError)) else
               f"{src.uri}: frames {fr.start}..{fr.stop - 1} could not be decoded after frame "
               f"{frames[-1].frame_index if frames else fr.start - 1} ({type(exc).__name__}: {exc}); "
               "the file may be truncated or corrupt")
        errors.append(ErrorRecord.from_exception(src.uri, "decode", exc, msg, shard_id=shard.shard_id))
    return DecodedShard(shard, frames, images, errors)


def decode_shard(shard: Shard, storage_options: Mapping[str, Any] | None = None,
                 prepare: Callable[[list[np.ndarray]], list] | None = None) -> DecodedShard:
    """Read and decode every frame of ``shard``; unreadable inputs become errors, not exceptions.

    prepare: optional images -> network input passes (the runner's preprocessing, e.g.
    functools.partial(prepare_passes, prep=..., scales=..., flip=...)); when given, the shard carries
    the passes instead of the raw pixels.
    """
    t0 = time.perf_counter()
    decode = _decode_video if shard.kind == "video" else _decode_images
    out = decode(shard, storage_options)
    if prepare is not None and out.images:
        out.passes, out.images = prepare(out.images), []
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------------------- network
def default_runner_factory(**kwargs):
    """pipeline.models.inference.PoseNetRunner(**kwargs): images -> list[PoseFields]."""
    from pipeline.models.inference import PoseNetRunner

    return PoseNetRunner(**kwargs)


def default_preparer(model: str, scales, flip: bool):
    """images -> network input passes for registry model ``model`` (PoseNetRunner's preprocessing),
    to run in the CPU decode workers."""
    from pipeline.models import get
    from pipeline.models.inference import prepare_passes

    return functools.partial(prepare_passes, prep=get(model).preprocessing, scales=tuple(scales), flip=flip)


class NetworkStage:
    """Holds one network runner (built once per actor) and turns a DecodedShard into a CandidateShard.

    runner_factory(**runner_kwargs) must return a callable: list of uint8 BGR [H, W, 3] images ->
    list of PoseFields (and, for shards preprocessed by the decode worker, ``infer_prepared(passes)``,
    as pipeline.models.inference.PoseNetRunner has). parse_config: the ParseConfig for find_candidates.
    """

    def __init__(self, runner_factory: Callable[..., Any] | None, runner_kwargs: Mapping[str, Any], parse_config):
        self.runner = (runner_factory or default_runner_factory)(**dict(runner_kwargs))
        self.parse_config = parse_config

    def _infer(self, decoded: DecodedShard, only: int | None = None) -> list:
        """PoseFields of every frame of ``decoded`` (or of frame ``only``)."""
        if decoded.passes is not None:
            passes = decoded.passes if only is None else [[p[only]] for p in decoded.passes]
            return list(self.runner.infer_prepared(passes))
        return list(self.runner(decoded.images if only is None else [decoded.images[only]]))

    def _fields(self, decoded: DecodedShard):
        """(PoseFields or None per frame, [(frame, exception)]); if the whole batch fails, each
        frame is retried alone to find the one(s) at fault."""
        try:
            return self._infer(decoded), []
        except Exception:  # noqa: BLE001
            pass
        fields, bad = [], []
        for i in range(len(decoded.frames)):
            try:
                fields.append(self._infer(decoded, i)[0])
            except Exception as exc:  # noqa: BLE001
                fields.append(None)
                bad.append((i, exc))
        return fields, bad

    def __call__(self, decoded: DecodedShard) -> CandidateShard:
        from pipeline.parsing import find_candidates

        t0 = time.perf_counter()
        sid = decoded.shard.shard_id
        errors = list(decoded.errors)
        fields, bad = self._fields(decoded) if decoded.frames else ([], [])
        for i, exc in bad:
            fm = decoded.frames[i]
            errors.append(ErrorRecord.from_exception(
                fm.source_uri, "network", exc,
                f"{fm.source_uri} frame {fm.frame_index}: the network failed on this image ({type(exc).__name__}: "
                f"{exc}); check the image or report it with the model name", shard_id=sid))
        t1 = time.perf_counter()
        inferred = [(fm, f) for fm, f in zip(decoded.frames, fields) if f is not None]
        frames, cands = per_frame(lambda f: find_candidates(f, self.parse_config), inferred,
                                  "finding keypoint candidates", sid, errors)
        t2 = time.perf_counter()
        return CandidateShard(decoded.shard, frames, cands, errors, decode_seconds=decoded.seconds,
                              network_seconds=t1 - t0, candidate_seconds=t2 - t1)


def per_frame(fn, items: list, what: str, shard_id: str, errors: list) -> tuple[list, list]:
    """Apply ``fn`` to the payload of each (frame, payload) in ``items``; returns (frames, results) of
    the frames where it worked. A frame where it raised becomes a "parse"-stage ErrorRecord in
    ``errors`` ("<what> failed") and is left out, so one bad frame never fails its shard."""
    frames, results = [], []
    for fm, x in items:
        try:
            results.append(fn(x))
            frames.append(fm)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(
                fm.source_uri, "parse", exc, f"{fm.source_uri} frame {fm.frame_index}: {what} failed "
                f"({type(exc).__name__}: {exc})", shard_id=shard_id))
    return frames, results


# ------------------------------------------------------------------------------- assemble + write
@dataclass(frozen=True)
class WriteContext:
    """Where and as what a shard's rows are written."""

    output: str
    model_id: str
    config_id: str
    parse_config: Any
    storage_options: Mapping[str, Any] | None = None


def table_path(output: str, table: str, shard_id: str, source_id: str | None = None) -> str:
    """Path of shard ``shard_id``'s file of ``table`` (inside the ``source_id=`` partition if partitioned)."""
    if table in tables.PARTITIONED:
        return join(output, table, f"{tables.PARTITION_KEY}={source_id}", f"part-{shard_id}.parquet")
    return join(output, table, f"part-{shard_id}.parquet")


def marker_path(output: str, shard_id: str) -> str:
    """Path of the JSON marker that says shard ``shard_id`` is finished (written after its data files)."""
    return join(output, "_shards", f"{shard_id}.json")


def errors_table(errors: list[ErrorRecord]):
    """The ``errors`` pyarrow Table of ``errors``."""
    cols = {k: [getattr(e, k) for e in errors] for k in
            ("input", "shard_id", "stage", "error_type", "message", "attempts", "time_utc")}
    return tables.from_columns("errors", cols)


def _sorted_people(poses) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(poses.keypoints, np.float32).reshape(-1, 18, 3)
    sc = np.asarray(poses.scores, np.float32).reshape(-1)
    order = np.argsort(-sc, kind="stable")
    return kp[order], sc[order]


def write_shard_rows(frames: list[FrameMeta], poses_list: list, shard: Shard, ctx: WriteContext,
                     errors: list[ErrorRecord]) -> dict[str, int]:
    """Write the shard's poses/frames rows (one file per source partition) and its errors file.

    frames[i] and poses_list[i] (pipeline.poses.Poses) describe the same frame. Files a killed
    earlier attempt of this shard wrote and this attempt does not are removed, so the shard's rows
    are exactly this attempt's. Returns {"frames", "people", "errors"} counts.
    """
    from pipeline.poses import Poses

    fs, _ = filesystem(ctx.output, ctx.storage_options)
    by_source: dict[str, list[int]] = {}
    for i, fm in enumerate(frames):
        by_source.setdefault(fm.source_id, []).append(i)
    people = 0
    for sid, idx in by_source.items():
        prow = {k: [] for k in ("source_uri", "frame_index", "timestamp_s", "person_index", "score")}
        kps, boxes = [], []
        frow = {k: [] for k in ("source_uri", "frame_index", "timestamp_s", "width", "height", "num_people")}
        for i in idx:
            fm, poses = frames[i], poses_list[i]
            kp, sc = _sorted_people(poses)
            n = len(sc)
            people += n
            for k, v in (("source_uri", fm.source_uri), ("frame_index", fm.frame_index),
                         ("timestamp_s", fm.timestamp_s), ("width", fm.width), ("height", fm.height),
                         ("num_people", n)):
                frow[k].append(v)
            prow["source_uri"] += [fm.source_uri] * n
            prow["frame_index"] += [fm.frame_index] * n
            prow["timestamp_s"] += [fm.timestamp_s] * n
            prow["person_index"] += list(range(n))
            prow["score"] += sc.tolist()
            kps.append(kp)
            boxes.append(Poses(kp, sc).bboxes())
        m = len(prow["score"])
        common = {"source_id": [sid] * m, "model_id": [ctx.model_id] * m, "config_id": [ctx.config_id] * m,
                  "shard_id": [shard.shard_id] * m}
        if m:
            kp_all = np.concatenate(kps).reshape(m, 54)
            num_kp = (np.concatenate(kps)[:, :, 2] > 0).sum(axis=1).astype(np.int32)
            ptab = tables.from_columns("poses", {**prow, **common, "track_id": [None] * m,
                                                 "bbox": np.concatenate(boxes), "keypoints": kp_all,
                                                 "num_keypoints": num_kp})
            write_table_atomic(fs, table_path(ctx.output, "poses", shard.shard_id, sid),
                               ptab.drop_columns([tables.PARTITION_KEY]))
        else:  # a killed earlier attempt may have left people here
            remove_if_exists(fs, table_path(ctx.output, "poses", shard.shard_id, sid))
        nf = len(idx)
        ftab = tables.from_columns("frames", {**frow, "source_id": [sid] * nf, "model_id": [ctx.model_id] * nf,
                                              "config_id": [ctx.config_id] * nf, "shard_id": [shard.shard_id] * nf})
        write_table_atomic(fs, table_path(ctx.output, "frames", shard.shard_id, sid),
                           ftab.drop_columns([tables.PARTITION_KEY]))
    for src in shard.sources:  # sources without a frame this time: drop files an earlier attempt wrote
        if src.source_id not in by_source:
            for table in ("poses", "frames"):
                remove_if_exists(fs, table_path(ctx.output, table, shard.shard_id, src.source_id))
    write_errors(fs, ctx.output, f"part-{shard.shard_id}", errors)
    return {"frames": len(frames), "people": people, "errors": len(errors)}


def write_errors(fs, output: str, name: str, errors: list[ErrorRecord]) -> None:
    """Write ``errors`` as errors/<name>.parquet, or remove a stale file of that name when there are none."""
    path = join(output, "errors", f"{name}.parquet")
    if errors:
        write_table_atomic(fs, path, errors_table(errors))
    else:
        remove_if_exists(fs, path)


def write_marker(ctx: WriteContext, shard: Shard, result: ShardResult) -> None:
    """Record ``shard`` as finished (after all of its data files are in place)."""
    fs, _ = filesystem(ctx.output, ctx.storage_options)
    body = {**asdict(result), "kind": shard.kind, "sources": [s.uri for s in shard.sources],
            "frame_range": None if shard.frames is None else asdict(shard.frames),
            "model_id": ctx.model_id, "config_id": ctx.config_id}
    write_bytes_atomic(fs, marker_path(ctx.output, shard.shard_id), json.dumps(body, indent=1).encode())


def assemble_and_write(cands: CandidateShard, ctx: WriteContext) -> ShardResult:
    """Assemble people from the shard's candidates, write its rows and marker; returns its ShardResult."""
    from pipeline.parsing import assemble

    t0 = time.perf_counter()
    sid = cands.shard.shard_id
    errors = list(cands.errors)
    frames, poses_list = per_frame(lambda c: assemble(c, ctx.parse_config),
                                   list(zip(cands.frames, cands.candidates)), "assembling people", sid, errors)
    t1 = time.perf_counter()
    counts = write_shard_rows(frames, poses_list, cands.shard, ctx, errors)
    t2 = time.perf_counter()
    result = ShardResult(
        sid, "done", counts["frames"], counts["people"], counts["errors"],
        tuple(sorted({s.source_id for s in cands.shard.sources})), cands.decode_seconds, cands.network_seconds,
        cands.candidate_seconds + (t1 - t0), t2 - t1)
    write_marker(ctx, cands.shard, result)
    return result
