"""Peak memory of one decode task on a shard of large photos: full-size decoding (then resizing,
what a plain pipeline does) vs posepipe's bounded decoding (header check + JPEG reduced decoding
to the size the network needs), each in a fresh process; also a decompression bomb's cost.

    python bench/decode_memory.py [--images 16] [--width 6000 --height 4000]   -> bench/results/decode_memory.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "decode_memory.json"
SHARED = Path(os.environ.get("POSEPIPE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def _measure(folder: str, bounded: bool) -> dict:
    """Decode every photo of ``folder`` as one shard; returns peak RSS and what came out."""
    import time

    from pipeline.job.decode import ImageLimits, decode_shard
    from pipeline.job.listing import list_sources
    from pipeline.job.shards import image_shards
    from pipeline.job.stages import default_preparer

    sources, _ = list_sources([folder])
    shard = image_shards(sources, len(sources), "m", "c")[0]
    limits = ImageLimits(needed_width=0, needed_height=368) if bounded else ImageLimits(max_pixels=10 ** 12)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = decode_shard(shard, None, default_preparer("omz-lightweight", (1.0,), False), limits)
    return {"bounded": bounded, "images": len(sources), "errors": len(out.errors),
            "seconds": time.perf_counter() - t0, "rss_before_mb": base,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(_measure(args.one[0], args.one[1] == "bounded")))
        return 0
    import cv2

    folder = tempfile.mkdtemp(prefix="posepipe-large-")
    photo = cv2.imread(str(SHARED / "media" / "images" / "p1.jpg"))
    big = cv2.resize(photo, (args.width, args.height))
    for i in range(args.images):
        cv2.imwrite(os.path.join(folder, f"large{i:02d}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    rows = []
    for mode in ("full", "bounded"):
        proc = subprocess.run([sys.executable, __file__, "--one", folder, mode], capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    full, bounded = rows
    print(f"{args.images} photos of {args.width}x{args.height} in one decode task:")
    print("mode | peak RSS MB | of which decoding | s")
    for r in rows:
        print(f"{'bounded' if r['bounded'] else 'full-size'} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f} | {r['seconds']:.2f}")
    print(f"bounded / full-size peak: {bounded['peak_rss_mb'] / full['peak_rss_mb']:.2f}x")
    RESULTS.write_text(json.dumps({"width": args.width, "height": args.height, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
