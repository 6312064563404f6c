"""Make tests/data/reference/omz_reference.npz with Intel's official OpenVINO runtime (NOT run by tests).

The tests compare posepipe's PyTorch port of Open Model Zoo human-pose-estimation-0001 (FP16-INT8 IR)
against the maps this script saves. It needs OpenVINO, which posepipe does not depend on, so run it
in a scratch venv outside the repo:

    python3 -m venv /tmp/ov && /tmp/ov/bin/pip install openvino numpy opencv-python-headless
    /tmp/ov/bin/python tests/data/reference/make_omz_reference.py \
        --model-dir ../shared/models/omz-human-pose-estimation-0001-int8 --media ../shared/media/images

Two cases, each storing its exact uint8 BGR network input (so the test needs no resize code to agree):
  native:   apink1.jpg (a group photo) resized to the IR's native 1x3x256x456.
  reshaped: ski.jpg at 1x3x184x320, with the OpenVINO model reshaped to that size (checks that
            the fully convolutional port is right away from the native shape).
Outputs are stored as float16 (heatmaps [19, H/8, W/8], pafs [38, H/8, W/8]); the CPU plugin is
forced to f32 inference precision so no bf16 rounding enters the reference.
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

CASES = {"native": ("apink1.jpg", (456, 256)), "reshaped": ("ski.jpg", (320, 184))}


def run(core: ov.Core, xml: Path, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pixels: uint8 [H, W, 3] BGR -> (heatmaps [19, H/8, W/8], pafs [38, H/8, W/8]) float32."""
    model = core.read_model(str(xml))
    h, w = pixels.shape[:2]
    model.reshape({model.input(0).get_any_name(): [1, 3, h, w]})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = pixels.transpose(2, 0, 1)[None].astype(np.float16)  # 0-255 integers are exact in f16
    res = compiled([x])
    outs = {o.get_any_name(): res[o] for o in compiled.outputs}
    heat = next(v for v in outs.values() if v.shape[1] == 19)[0]
    pafs = next(v for v in outs.values() if v.shape[1] == 38)[0]
    return heat.astype(np.float32), pafs.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, required=True, help="folder with human-pose-estimation-0001.xml/.bin")
    ap.add_argument("--media", type=Path, required=True, help="folder with the shared media images")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("omz_reference.npz"))
    args = ap.parse_args()
    core = ov.Core()
    xml = args.model_dir / "human-pose-estimation-0001.xml"
    arrays: dict[str, np.ndarray] = {}
    for case, (name, (w, h)) in CASES.items():
        img = cv2.imread(str(args.media / name))
        if img is None:
            raise SystemExit(f"cannot read {args.media / name}")
        pixels = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        heat, pafs = run(core, xml, pixels)
        arrays[f"{case}_input"] = pixels
        arrays[f"{case}_heatmaps"] = heat.astype(np.float16)
        arrays[f"{case}_pafs"] = pafs.astype(np.float16)
        print(f"{case}: {name} -> input {pixels.shape}, heatmaps {heat.shape}, pafs {pafs.shape}, "
              f"max heat {heat[:18].max():.3f}")
    arrays["provenance"] = np.array(
        f"openvino {ov.__version__}; CPU plugin, INFERENCE_PRECISION_HINT=f32; {platform.processor() or platform.machine()}; "
        f"cases {CASES}")
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
