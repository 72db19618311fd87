"""Independent check of ONNX files written by tinyforge-onnx (dev tool, not run by the tests).

Usage: python3 -m venv /tmp/v && /tmp/v/bin/pip install onnx && /tmp/v/bin/python check_onnx.py FILE...
Runs onnx.checker.check_model(full_check=True) (schema, types, opset/IR rules, shape inference in
strict mode) and prints each graph's inferred output types, so a wrong field number, data type or
attribute encoding in our hand-written protobuf structs shows up as a failure here.
"""
import sys

import onnx
from onnx import shape_inference


def main(paths):
    for path in paths:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        outs = [
            (o.name, onnx.TensorProto.DataType.Name(o.type.tensor_type.elem_type),
             [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
            for o in inferred.graph.output
        ]
        print(f"OK {path}: onnx {onnx.__version__}, ir {model.ir_version}, "
              f"opsets {[(o.domain or 'ai.onnx', o.version) for o in model.opset_import]}, outputs {outs}, "
              f"metadata {[(p.key, p.value) for p in model.metadata_props]}, "
              f"initializers {[(t.name, onnx.numpy_helper.to_array(t).tolist()) for t in model.graph.initializer]}")


if __name__ == "__main__":
    main(sys.argv[1:])
