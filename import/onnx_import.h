/* netc import: an ONNX model -> a .net file and its parameters
 * (docs/interop.md).
 *
 * The ONNX protobuf is read with protobuf-c, from C generated at build time
 * out of the onnx.proto of Debian's libonnx-dev.  Each ONNX node becomes one
 * .net statement through one table entry per op type (import/onnx_import.c);
 * the parameters keep their ONNX initializer names where those have netc's
 * form (<instance>.weight, ...), so a model exported from PyTorch keeps its
 * state_dict names. */
#ifndef NETC_ONNX_IMPORT_H
#define NETC_ONNX_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "netrt.h"

typedef struct OnnxNet {
    char *text;             /* the .net file */
    netrt_tensor *params;   /* nparams tensors in the order the statements create them */
    int nparams;
    int batch;              /* the batch size of the model's inputs (1 when symbolic) */
} OnnxNet;

/* Imports the ONNX model in data[0..size).  path names the file in messages;
 * net_name is the net's name (a valid identifier is made of it); weights_name
 * is quoted in the .net file's header comment.  Returns NULL after printing
 * each error ("netc: error: model.onnx: node 3 '/0/Conv' (Conv): ...").  The
 * caller owns the result: free it with onnx_net_free. */
OnnxNet *onnx_import(const uint8_t *data, size_t size, const char *path, const char *net_name,
                     const char *weights_name);
void onnx_net_free(OnnxNet *n);

#endif
