# Dynamic int8 quantisation of the ONNX classifier written by export_onnx.py,
# the way ONNX Runtime users do it: weights int8 per output channel,
# activations quantised at run time (onnxruntime.quantization.quantize_dynamic).
# The stored value_info shapes of the exported graph make the quantiser's shape
# inference fail, so they are cleared first.
#
# Run:  python quantize_onnx.py MODEL.onnx MODEL.int8.onnx
import argparse
import os
import tempfile

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fp32")
    ap.add_argument("out")
    a = ap.parse_args()

    model = onnx.load(a.fp32)
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        cleared = os.path.join(tmp, "cleared.onnx")
        onnx.save(model, cleared)
        quantize_dynamic(cleared, a.out, weight_type=QuantType.QInt8, per_channel=True)
    print("wrote", a.out, os.path.getsize(a.out), "bytes")


if __name__ == "__main__":
    main()
