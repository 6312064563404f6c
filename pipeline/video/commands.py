"""``posepipe render``: draw a poses table onto its video (-> .mp4 or images) or image folder.

:func:`add_commands` registers the sub-command on the main CLI's subparsers (it sets
``func(args) -> int``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from pipeline.cli import fail, reporting_errors
from pipeline.evaluation.poses_table import read_poses_file
from pipeline.job.listing import IMAGE_EXTENSIONS
from pipeline.video.decode import iter_frames
from pipeline.video.drawing import VideoWriter, draw_poses
from pipeline.video.probe import probe
from pipeline.video.shards import FrameRange


def add_commands(subparsers) -> None:
    """Add ``render`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "render", help="draw poses (skeletons, track colours) onto a video or images",
        description="Draw the poses of one video (or a folder of images) from a poses table. "
                    "A video renders to an .mp4 (or, if --output has no .mp4 suffix, to a folder "
                    "of numbered .jpg frames); images render to a folder of same-named images.")
    p.add_argument("--poses", required=True, help="poses table: a job output URI or a .parquet file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="the video the poses came from (local path or URI)")
    src.add_argument("--images", help="folder of the images the poses came from")
    p.add_argument("--output", required=True, help=".mp4 file, or a folder for image output")
    p.add_argument("--source-uri", help="source_uri of the video in the table "
                                        "(default: the --video path, made absolute)")
    p.add_argument("--start", type=int, default=0, help="first frame to render (default 0)")
    p.add_argument("--stop", type=int, help="frame to stop before (default: end of video)")
    p.add_argument("--min-score", type=float, default=0.0, help="hide keypoints at or below this score")
    p.set_defaults(func=reporting_errors("render", _render))


def _candidates(path_or_uri: str) -> list[str]:
    """Forms the table may hold for a local path (as given, absolute, file:// URI) or a URI."""
    if "://" in path_or_uri and not path_or_uri.startswith("file://"):
        return [path_or_uri]
    local = path_or_uri[len("file://"):] if path_or_uri.startswith("file://") else path_or_uri
    absolute = os.path.abspath(os.path.expanduser(local))
    return sorted({path_or_uri, local, absolute, "file://" + absolute})


def _draw_rows(image: np.ndarray, rows: pd.DataFrame, min_score: float) -> np.ndarray:
    if rows is None or len(rows) == 0:
        return image
    kps = np.stack(rows["keypoints"].to_numpy()).astype(np.float32)
    ids = rows["track_id"].tolist() if "track_id" in rows and rows["track_id"].notna().any() else None
    return draw_poses(image, kps, ids, min_score=min_score)


def render_video(poses: pd.DataFrame, video: str, output: str, start: int = 0,
                 stop: int | None = None, min_score: float = 0.0) -> int:
    """Draw `poses` (one video's rows) on frames [start, stop) of `video`; write `output`
    (.mp4 keeping the frame timestamps, else a folder of frame_<index>.jpg). Returns frames written."""
    info = probe(video)
    stop = info.num_frames if stop is None else min(stop, info.num_frames)
    by_frame = {int(f): g for f, g in poses.groupby("frame_index")} if len(poses) else {}
    frames = iter_frames(video, FrameRange(start, stop), info)
    count = 0
    if output.lower().endswith(".mp4"):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(output, fps=info.fps or 25.0) as writer:
            for fr in frames:
                writer.write(_draw_rows(fr.image, by_frame.get(fr.index), min_score), fr.timestamp_s)
                count += 1
    else:
        os.makedirs(output, exist_ok=True)
        for fr in frames:
            image = _draw_rows(fr.image, by_frame.get(fr.index), min_score)
            cv2.imwrite(os.path.join(output, f"frame_{fr.index:06d}.jpg"), image)
            count += 1
    return count


def _render(args: argparse.Namespace) -> int:
    if args.video:
        uris = [args.source_uri] if args.source_uri else _candidates(args.video)
        poses = read_poses_file(args.poses, uris)
        if len(poses) == 0:
            return fail("render", f"no rows for {args.video} in {args.poses} (looked for source_uri in "
                                  f"{uris}); pass --source-uri as written in the table")
        n = render_video(poses, args.video, args.output, args.start, args.stop, args.min_score)
        print(f"rendered {n} frames ({len(poses)} poses) to {args.output}")
        return 0
    folder = Path(args.images)
    if not folder.is_dir():
        return fail("render", f"--images {folder} is not a folder")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    uri_of = {u: p for p in images for u in _candidates(str(p))}
    poses = read_poses_file(args.poses, list(uri_of))
    os.makedirs(args.output, exist_ok=True)
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(f"posepipe render: skipping {path}: not a readable image", file=sys.stderr)
            continue
        rows = poses[poses["source_uri"].map(uri_of) == path]
        cv2.imwrite(os.path.join(args.output, path.name), _draw_rows(image, rows, args.min_score))
    print(f"rendered {len(images)} images ({len(poses)} poses) to {args.output}")
    return 0
