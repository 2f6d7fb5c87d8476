#!/usr/bin/python3
"""The bad-ONNX catalogue of `netc import`: malformed or unsupported ONNX
files, each with the error netc must give (exit status 1, one message, no
file written, never a crash).

Each case is a small hand-written model in protobuf's text format (BASE,
a conv, relu, flatten and linear net, changed by the case's edit),
encoded into Inputs/<case>.onnx by protoc-c --encode with Debian's
onnx.proto; a few are byte-level damage of the encoded base (truncated,
empty, not protobuf).  For each case the script writes the lit test
<case>.net: its RUN lines and the expected message.  Run it again after
changing the table:

    /usr/bin/python3 tests/onnx/bad/gen.py
"""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(HERE, "Inputs")
PROTO = "/usr/include/onnx/onnx.proto"


def floats(n, scale=0.1):
    return " ".join(f"float_data: {((i * 37) % 17 - 8) * scale / 8:.4f}" for i in range(n))


def dims(*ds):
    return " ".join(f"dim {{ dim_value: {d} }}" for d in ds)


BASE = f"""
ir_version: 7
producer_name: "hand"
opset_import {{ version: 14 }}
graph {{
  name: "g"
  input {{ name: "image" type {{ tensor_type {{ elem_type: 1 shape {{ {dims(1, 1, 4, 4)} }} }} }} }}
  output {{ name: "logits" type {{ tensor_type {{ elem_type: 1 }} }} }}
  initializer {{ name: "conv.weight" dims: 2 dims: 1 dims: 3 dims: 3 data_type: 1 {floats(18)} }}
  initializer {{ name: "conv.bias" dims: 2 data_type: 1 {floats(2)} }}
  initializer {{ name: "fc.weight" dims: 3 dims: 8 data_type: 1 {floats(24)} }}
  initializer {{ name: "fc.bias" dims: 3 data_type: 1 {floats(3)} }}
  node {{ name: "/conv/Conv" op_type: "Conv" input: "image" input: "conv.weight" input: "conv.bias" output: "c"
          attribute {{ name: "kernel_shape" type: INTS ints: 3 ints: 3 }} }}
  node {{ name: "/relu/Relu" op_type: "Relu" input: "c" output: "r" }}
  node {{ name: "/Flatten" op_type: "Flatten" input: "r" output: "f" attribute {{ name: "axis" type: INT i: 1 }} }}
  node {{ name: "/fc/Gemm" op_type: "Gemm" input: "f" input: "fc.weight" input: "fc.bias" output: "logits"
          attribute {{ name: "transB" type: INT i: 1 }} }}
}}
"""

RELU = 'node { name: "/relu/Relu" op_type: "Relu" input: "c" output: "r" }'
CONV_W = f'initializer {{ name: "conv.weight" dims: 2 dims: 1 dims: 3 dims: 3 data_type: 1 {floats(18)} }}'


def edit(old, new, text=None):
    t = BASE if text is None else text
    assert old in t, old
    return t.replace(old, new)


def relu_to(node):
    return edit(RELU, node)


def lrn_chain(pads=(1, 1), strides=(1, 1, 1), alpha="0.01"):
    """F.local_response_norm(c, 3, alpha, 0.75, 2) as the arithmetic PyTorch
    exports it (here in its plain form: Unsqueeze, Pad, AveragePool,
    Squeeze), ending in r."""
    lo, hi = pads
    return (f'initializer {{ name: "ax" dims: 1 data_type: 7 int64_data: 1 }} '
            f'initializer {{ name: "pads" dims: 10 data_type: 7 int64_data: [0, 0, {lo}, 0, 0, 0, 0, {hi}, 0, 0] }} '
            f'initializer {{ name: "alpha" {"dims: 2 " if "," in alpha else ""}data_type: 1 float_data: [{alpha}] }} '
            'initializer { name: "k" data_type: 1 float_data: 2 } '
            'initializer { name: "beta" data_type: 1 float_data: 0.75 } '
            'node { name: "/n/Mul" op_type: "Mul" input: "c" input: "c" output: "sq" } '
            'node { name: "/n/Unsqueeze" op_type: "Unsqueeze" input: "sq" input: "ax" output: "u" } '
            'node { name: "/n/Pad" op_type: "Pad" input: "u" input: "pads" output: "p" } '
            'node { name: "/n/AveragePool" op_type: "AveragePool" input: "p" output: "a" '
            'attribute { name: "kernel_shape" type: INTS ints: [3, 1, 1] } '
            f'attribute {{ name: "strides" type: INTS ints: [{", ".join(str(v) for v in strides)}] }} }} '
            'node { name: "/n/Squeeze" op_type: "Squeeze" input: "a" input: "ax" output: "s" } '
            'node { name: "/n/Mul_1" op_type: "Mul" input: "s" input: "alpha" output: "m" } '
            'node { name: "/n/Add" op_type: "Add" input: "m" input: "k" output: "ad" } '
            'node { name: "/n/Pow" op_type: "Pow" input: "ad" input: "beta" output: "pw" } '
            'node { name: "/n/Div" op_type: "Div" input: "c" input: "pw" output: "r" }')


# A valid model beside the catalogue: the base with that chain for its relu
# (../import_lrn.net imports it as lrn and runs it against PyTorch).
LRN_GOOD = relu_to(lrn_chain())
# and with SiLU as PyTorch exports it, x * sigmoid(x) (../import_silu.net)
SILU_GOOD = relu_to('node { name: "/act/Sigmoid" op_type: "Sigmoid" input: "c" output: "sg" } '
                    'node { name: "/act/Mul" op_type: "Mul" input: "c" input: "sg" output: "r" }')


# (case, what it is, model text or bytes, the expected message after "model.onnx: ")
CASES = [
    ("truncated", "the valid base cut in the middle of its weights", "TRUNCATED",
     "not an ONNX model: the protobuf does not parse (truncated or not a ModelProto)"),
    ("not_protobuf", "a text file", b"this is not an ONNX model\n",
     "not an ONNX model: the protobuf does not parse (truncated or not a ModelProto)"),
    ("empty_file", "zero bytes: an empty ModelProto, without a graph", b"",
     "the model holds no graph"),
    ("no_opset", "no opset_import", edit("opset_import { version: 14 }", ""),
     "the model imports no version of the ONNX operator set"),
    ("empty_graph", "a graph without nodes",
     'ir_version: 7 opset_import { version: 14 } graph { name: "g" '
     f'input {{ name: "image" type {{ tensor_type {{ elem_type: 1 shape {{ {dims(1, 1, 4, 4)} }} }} }} }} '
     'output { name: "image" } }',
     "the graph is empty (no nodes)"),
    ("no_output", "a graph without outputs",
     edit('output { name: "logits" type { tensor_type { elem_type: 1 } } }', ""),
     "the graph has no output"),
    ("no_input", "only initializers, no input to compute from",
     edit(f'input {{ name: "image" type {{ tensor_type {{ elem_type: 1 shape {{ {dims(1, 1, 4, 4)} }} }} }} }}', ""),
     "the graph has no input (besides initializers)"),
    ("missing_initializer", "the conv's weights are not in the file", edit(CONV_W, ""),
     "node 0 '/conv/Conv' (Conv): input 1 'conv.weight' is not defined (no initializer, graph input or node makes it)"),
    ("cycle", "relu reads the flatten after it",
     relu_to('node { name: "/relu/Relu" op_type: "Add" input: "c" input: "f" output: "r" }'),
     "node 1 '/relu/Relu' (Add): the graph has a cycle through this node"),
    ("defined_twice", "two nodes write the same value",
     relu_to('node { name: "/relu/Relu" op_type: "Relu" input: "c" output: "c" }'),
     "node 1 '/relu/Relu' (Relu): output 'c' is defined twice"),
    ("unknown_op", "an op netc has no counterpart of",
     relu_to('node { name: "/erf/Erf" op_type: "Erf" input: "c" output: "r" }'),
     "node 1 '/erf/Erf' (Erf): netc has no op for ONNX's Erf (docs/interop.md lists those it imports)"),
    ("custom_domain", "an op of another domain",
     relu_to('node { name: "/g/Gelu" op_type: "Gelu" domain: "com.microsoft" input: "c" output: "r" }'),
     "node 1 '/g/Gelu' (Gelu): the op is from domain 'com.microsoft'; netc imports the standard ONNX ops"),
    ("attr_wrong_type", "Conv's group as a float",
     edit('attribute { name: "kernel_shape" type: INTS ints: 3 ints: 3 }',
          'attribute { name: "kernel_shape" type: INTS ints: 3 ints: 3 } attribute { name: "group" type: FLOAT f: 1.0 }'),
     "node 0 '/conv/Conv' (Conv): attribute 'group' must be an int"),
    ("attr_unknown", "an attribute Relu does not have",
     relu_to('node { name: "/relu/Relu" op_type: "Relu" input: "c" output: "r" attribute { name: "alpha" type: FLOAT f: 0.1 } }'),
     "node 1 '/relu/Relu' (Relu): attribute 'alpha' is not one netc knows for Relu"),
    ("kernel_mismatch", "kernel_shape disagrees with the weights",
     edit("ints: 3 ints: 3", "ints: 5 ints: 5"),
     "node 0 '/conv/Conv' (Conv): attribute 'kernel_shape' [5, 5] differs from the weights' [3, 3]"),
    ("gemm_bad_shape", "linear weights for 7 features after 8",
     edit(f'initializer {{ name: "fc.weight" dims: 3 dims: 8 data_type: 1 {floats(24)} }}',
          f'initializer {{ name: "fc.weight" dims: 3 dims: 7 data_type: 1 {floats(21)} }}'),
     "node 3 '/fc/Gemm' (Gemm): the weights [3, 7] (transB 1) do not fit an input of 8 features"),
    ("conv_bad_channels", "conv weights for 2 input channels on a 1-channel image",
     edit(CONV_W, f'initializer {{ name: "conv.weight" dims: 2 dims: 2 dims: 3 dims: 3 data_type: 1 {floats(36)} }}'),
     "node 0 '/conv/Conv' (Conv): weights [2, 2, 3, 3] with group 1 do not fit an input of 1 channels"),
    ("kernel_too_big", "a 5x5 conv on a 4x4 image without padding",
     edit(CONV_W, f'initializer {{ name: "conv.weight" dims: 2 dims: 1 dims: 5 dims: 5 data_type: 1 {floats(50)} }}',
          edit("ints: 3 ints: 3", "ints: 5 ints: 5")),
     "node 0 '/conv/Conv' (Conv): the output would have the shape [2, 0, 0] per sample, with a size below 1"),
    ("float16_weights", "weights stored as FLOAT16",
     edit(CONV_W, 'initializer { name: "conv.weight" dims: 2 dims: 1 dims: 3 dims: 3 data_type: 10 raw_data: "'
          + "\\000\\074" * 18 + '" }'),
     "initializer 'conv.weight' has data type 10 (FLOAT16); netc import reads FLOAT, DOUBLE, INT32 and INT64"),
    ("raw_data_short", "raw_data shorter than its dims",
     edit('initializer { name: "conv.bias" dims: 2 data_type: 1 ' + floats(2) + " }",
          'initializer { name: "conv.bias" dims: 2 data_type: 1 raw_data: "\\000\\000\\200\\077" }'),
     "initializer 'conv.bias' has 4 bytes of data for 2 elements of FLOAT"),
    ("negative_dim", "an initializer with a negative dimension",
     edit('initializer { name: "conv.bias" dims: 2 ', 'initializer { name: "conv.bias" dims: -2 '),
     "initializer 'conv.bias' has a negative dimension -2"),
    ("external_data", "weights kept in an external file",
     edit('initializer { name: "conv.bias" dims: 2 data_type: 1 ' + floats(2) + " }",
          'initializer { name: "conv.bias" dims: 2 data_type: 1 data_location: EXTERNAL '
          'external_data { key: "location" value: "w.bin" } }'),
     "initializer 'conv.bias' keeps its data in an external file, which netc import does not read"),
    ("input_int64", "an integer input",
     edit('input { name: "image" type { tensor_type { elem_type: 1', 'input { name: "image" type { tensor_type { elem_type: 7'),
     "graph input 'image' has element type INT64; netc's inputs are FLOAT"),
    ("input_symbolic", "a symbolic height",
     edit(dims(1, 1, 4, 4), 'dim { dim_value: 1 } dim { dim_value: 1 } dim { dim_param: "h" } dim { dim_value: 4 }'),
     "graph input 'image' has a symbolic size in dimension 2; netc needs every size but the batch"),
    ("input_1d", "a conv1d-style [N, C, L] input",
     edit(dims(1, 1, 4, 4), dims(1, 1, 16)),
     "node 0 '/conv/Conv' (Conv): input 0 has the shape [1, 16] per sample (batch 1 first); netc needs [C, H, W]"),
    ("output_missing", "a graph output no node computes",
     edit('output { name: "logits"', 'output { name: "scores"'),
     "graph output 'scores' is not computed by any node"),
    ("clip_range", "Clip to [-1, 1]: neither relu nor relu6",
     relu_to('initializer { name: "lo" data_type: 1 float_data: -1 } initializer { name: "hi" data_type: 1 float_data: 1 } '
             'node { name: "/clip/Clip" op_type: "Clip" input: "c" input: "lo" input: "hi" output: "r" }'),
     "node 1 '/clip/Clip' (Clip): Clip to [-1, 1]: netc has relu6 (Clip to [0, 6]) and relu (Clip at 0) only"),
    ("softmax_axis", "a softmax over the width",
     relu_to('node { name: "/sm/Softmax" op_type: "Softmax" input: "c" output: "r" attribute { name: "axis" type: INT i: 3 } }'),
     "node 1 '/sm/Softmax' (Softmax): axis 3: netc normalizes over the channels (axis 1) only"),
    ("add_constant", "a tensor plus a constant",
     relu_to('node { name: "/add/Add" op_type: "Add" input: "c" input: "conv.bias" output: "r" }'),
     "node 1 '/add/Add' (Add): input 1 ('conv.bias') is a constant; netc needs a tensor computed from the net's input here"),
    ("maxpool_indices", "MaxPool's indices used",
     relu_to('node { name: "/pool/MaxPool" op_type: "MaxPool" input: "c" output: "r" output: "idx" '
             'attribute { name: "kernel_shape" type: INTS ints: 1 ints: 1 } }'),
     "node 1 '/pool/MaxPool' (MaxPool): output 1 ('idx') is not one netc computes (only the first 1)"),
    ("reshape_batch", "a reshape that moves data across the batch",
     relu_to('initializer { name: "shape" dims: 2 data_type: 7 int64_data: 2 int64_data: -1 } '
             'node { name: "/view/Reshape" op_type: "Reshape" input: "c" input: "shape" output: "r" }'),
     "node 1 '/view/Reshape' (Reshape): the shape's first size 2 is not the batch 1; netc reshapes each sample"),
    ("batchnorm_training", "a batchnorm in training mode",
     relu_to('initializer { name: "s" dims: 2 data_type: 1 float_data: 1 float_data: 1 } '
             'node { name: "/bn/BatchNormalization" op_type: "BatchNormalization" input: "c" input: "s" input: "s" '
             'input: "s" input: "s" output: "r" attribute { name: "training_mode" type: INT i: 1 } }'),
     "node 1 '/bn/BatchNormalization' (BatchNormalization): training_mode 1: netc imports inference graphs "
     "(export with the model in eval mode)"),
    ("pad_reflect", "reflection padding",
     relu_to('initializer { name: "pads" dims: 8 data_type: 7 int64_data: [0, 0, 1, 1, 0, 0, 1, 1] } '
             'node { name: "/pad/Pad" op_type: "Pad" input: "c" input: "pads" output: "r" '
             'attribute { name: "mode" type: STRING s: "reflect" } }'),
     "node 1 '/pad/Pad' (Pad): mode 'reflect': netc pads with zeros (constant) only"),
    ("reduce_channels", "a mean over the channels",
     relu_to('node { name: "/m/ReduceMean" op_type: "ReduceMean" input: "c" output: "r" '
             'attribute { name: "axes" type: INTS ints: 1 } }'),
     "node 1 '/m/ReduceMean' (ReduceMean): netc reduces over height and width together (axes [2, 3]) only"),
    ("sub_tensors", "a difference of two tensors",
     relu_to('node { name: "/s/Sub" op_type: "Sub" input: "c" input: "c" output: "r" }'),
     "node 1 '/s/Sub' (Sub): netc has no Sub of tensors (only of constants, which it folds)"),
    ("output_constant", "a graph output that is an initializer",
     edit('output { name: "logits"', 'output { name: "fc.bias" } output { name: "logits"'),
     "graph output 'fc.bias' is a constant; netc's outputs are computed from the input"),
    ("hardsigmoid_default", "ONNX's default HardSigmoid (alpha 0.2), not PyTorch's",
     relu_to('node { name: "/h/HardSigmoid" op_type: "HardSigmoid" input: "c" output: "r" }'),
     "node 1 '/h/HardSigmoid' (HardSigmoid): alpha 0.2, beta 0.5: netc's hardsigmoid is relu6(x + 3) / 6 "
     "(alpha 1/6, beta 0.5, PyTorch's)"),
    ("resize_cubic", "cubic resizing",
     relu_to('initializer { name: "scales" dims: 4 data_type: 1 float_data: [1, 1, 2, 2] } '
             'node { name: "/up/Resize" op_type: "Resize" input: "c" input: "" input: "scales" output: "r" '
             'attribute { name: "mode" type: STRING s: "cubic" } }'),
     "node 1 '/up/Resize' (Resize): mode 'cubic' with coordinate_transformation_mode 'half_pixel': netc has nearest "
     "and bilinear (half_pixel, PyTorch's align_corners=False)"),
    ("lrn_even", "an LRN of even size",
     relu_to('node { name: "/n/LRN" op_type: "LRN" input: "c" output: "r" attribute { name: "size" type: INT i: 2 } }'),
     "node 1 '/n/LRN' (LRN): an even size 2: ONNX's window and netc's (PyTorch's) differ by one channel"),
    ("transpose_tensor", "a transpose of a tensor",
     relu_to('node { name: "/t/Transpose" op_type: "Transpose" input: "c" output: "r" }'),
     "node 1 '/t/Transpose' (Transpose): netc has no transpose of tensors (only of constants, which it folds)"),
    ("lrn_pads", "PyTorch's local response normalization with the channel pads on one side",
     relu_to(lrn_chain(pads=(0, 2))),
     "node 4 '/n/AveragePool' (AveragePool): in a local response normalization as PyTorch exports it: channel pads "
     "0 and 2 around a window of 3; local_response_norm's are 1 and 1"),
    ("lrn_stride", "PyTorch's local response normalization pooled with a stride over the channels",
     relu_to(lrn_chain(strides=(2, 1, 1))),
     "node 4 '/n/AveragePool' (AveragePool): in a local response normalization as PyTorch exports it: netc reads "
     "a 3-D average over channels here: kernel [size, 1, 1], strides 1, no pads"),
    ("lrn_alpha", "PyTorch's local response normalization with an alpha per channel",
     relu_to(lrn_chain(alpha="0.01, 0.02")),
     "node 6 '/n/Mul_1' (Mul): in a local response normalization as PyTorch exports it: alpha must be one float"),
]


def encode(text):
    r = subprocess.run(["protoc-c", "--encode=onnx.ModelProto", "-I" + os.path.dirname(PROTO), PROTO],
                       input=text.encode(), capture_output=True)
    if r.returncode:
        raise SystemExit(f"protoc-c: {r.stderr.decode()}")
    return r.stdout


LIT = """# netc import of a bad ONNX file: {what}.
# Generated by gen.py (the model: Inputs/{case}.txt, unless it is bytes).
# Exit status 1, one line naming the file and what is wrong, nothing written.
# RUN: rm -rf %t && mkdir -p %t
# RUN: not %netc import %S/Inputs/{case}.onnx -o %t/model.net 2> %t/err
# RUN: FileCheck %s --match-full-lines --implicit-check-not='{{{{.}}}}' < %t/err
# RUN: test ! -e %t/model.net && test ! -e %t/model.safetensors
# CHECK: netc: error: {{{{.*}}}}/Inputs/{case}.onnx: {msg}
"""


def base_reference():
    """An input of the base model and PyTorch's output on it, for the import
    test of the base (../import_base.net)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    def vals(n):
        return torch.tensor([((i * 37) % 17 - 8) * 0.1 / 8 for i in range(n)], dtype=torch.float32)

    x = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(13))
    y = F.relu(F.conv2d(x, vals(18).reshape(2, 1, 3, 3), vals(2)))
    y = F.linear(torch.flatten(y, 1), vals(24).reshape(3, 8), vals(3))
    np.save(os.path.join(INPUTS, "base_input.npy"), x.numpy().astype("<f4"))
    np.save(os.path.join(INPUTS, "base_expected.npy"), y.numpy().astype("<f4"))
    c = F.conv2d(x, vals(18).reshape(2, 1, 3, 3), vals(2))
    y = F.local_response_norm(c, 3, alpha=0.01, beta=0.75, k=2.0)
    y = F.linear(torch.flatten(y, 1), vals(24).reshape(3, 8), vals(3))
    np.save(os.path.join(INPUTS, "lrn_expected.npy"), y.numpy().astype("<f4"))
    y = F.linear(torch.flatten(F.silu(c), 1), vals(24).reshape(3, 8), vals(3))
    np.save(os.path.join(INPUTS, "silu_expected.npy"), y.numpy().astype("<f4"))


def main():
    os.makedirs(INPUTS, exist_ok=True)
    base_reference()
    base = encode(BASE)
    with open(os.path.join(INPUTS, "base.txt"), "w") as f:
        f.write(BASE.lstrip())
    with open(os.path.join(INPUTS, "base.onnx"), "wb") as f:
        f.write(base)
    for name, text in (("lrn", LRN_GOOD), ("silu", SILU_GOOD)):
        with open(os.path.join(INPUTS, f"{name}.txt"), "w") as f:
            f.write(text.lstrip())
        with open(os.path.join(INPUTS, f"{name}.onnx"), "wb") as f:
            f.write(encode(text))
    for case, what, model, msg in CASES:
        if model == "TRUNCATED":
            data = base[: len(base) // 2]
        elif isinstance(model, bytes):
            data = model
        else:
            with open(os.path.join(INPUTS, f"{case}.txt"), "w") as f:
                f.write(model.lstrip())
            data = encode(model)
        with open(os.path.join(INPUTS, f"{case}.onnx"), "wb") as f:
            f.write(data)
        with open(os.path.join(HERE, f"{case}.net"), "w") as f:
            f.write(LIT.format(what=what, case=case, msg=msg))
    print(f"{len(CASES)} cases")


if __name__ == "__main__":
    main()
