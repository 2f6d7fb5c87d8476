/* Unit tests of libnetrt: the .npy, safetensors and IDX readers and writers
 * (round trips and every malformed variant), the RNG, netrt_load_params and
 * netrt_main end to end with fake models.  Files go to a mkdtemp directory
 * that is removed at the end. */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "netrt.h"

static char tmpdir[256];
static char err[1024];

/* A path in the temporary directory (64 rotating buffers, plenty for one
 * test). */
static const char *tpath(const char *name) {
    static char bufs[64][512];
    static int k;
    char *b = bufs[k++ % 64];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

#define ck_assert_err(call, substr)                                                               \
    do {                                                                                          \
        err[0] = '\0';                                                                            \
        ck_assert_int_eq((call), -1);                                                             \
        ck_assert_msg(strstr(err, (substr)) != NULL, "error '%s' lacks '%s'", err, (substr));    \
    } while (0)

/* ---- .npy ----------------------------------------------------------------- */

START_TEST(npy_round_trip) {
    float data[6] = {1, -2, 3.5f, 0, 1e-7f, 6};
    int64_t shape[2] = {2, 3};
    const char *p = tpath("rt.npy");
    ck_assert_int_eq(netrt_npy_write(p, data, 2, shape, err, sizeof err), 0);
    netrt_array a;
    ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NETRT_F32);
    ck_assert_int_eq(a.rank, 2);
    ck_assert_int_eq(a.shape[0], 2);
    ck_assert_int_eq(a.shape[1], 3);
    ck_assert_uint_eq(a.nbytes, sizeof data);
    ck_assert_mem_eq(a.data, data, sizeof data);
    netrt_array_free(&a);

    /* The header is a multiple of 64 bytes, version 1.0, and no temp file
     * is left behind. */
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq((st.st_size - (off_t)sizeof data) % 64, 0);

    /* Rank 1 writes "(3,)", rank 0 "()". */
    int64_t s1[1] = {3};
    ck_assert_int_eq(netrt_npy_write(p, data, 1, s1, err, sizeof err), 0);
    ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.rank, 1);
    ck_assert_int_eq(a.shape[0], 3);
    netrt_array_free(&a);
    ck_assert_int_eq(netrt_npy_write(p, data, 0, NULL, err, sizeof err), 0);
    ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.rank, 0);
    ck_assert_uint_eq(a.nbytes, 4);
    ck_assert_float_eq(((float *)a.data)[0], 1.0f);
    netrt_array_free(&a);
}
END_TEST

/* Writes a .npy file with the given version, dict and data. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t n) {
    unsigned char buf[1024];
    size_t len = strlen(dict), at = 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)len;
        buf[9] = (unsigned char)(len >> 8);
        at = 10;
    } else {
        buf[8] = (unsigned char)len;
        buf[9] = (unsigned char)(len >> 8);
        buf[10] = buf[11] = 0;
        at = 12;
    }
    memcpy(buf + at, dict, len);
    memcpy(buf + at + len, data, n);
    write_bytes(path, buf, at + len + n);
}

START_TEST(npy_dtypes) {
    const char *p = tpath("dt.npy");
    unsigned char u8[4] = {0, 1, 128, 255};
    netrt_array a;
    write_npy(p, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }\n", u8, 4);
    ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NETRT_U8);
    ck_assert_mem_eq(a.data, u8, 4);
    netrt_array_free(&a);

    int64_t i8[3] = {-1, 5, 1LL << 40};
    write_npy(p, 2, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<i8\"}", i8, sizeof i8);
    ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NETRT_I64);
    ck_assert_int_eq(((int64_t *)a.data)[2], 1LL << 40);
    netrt_array_free(&a);

    double f8[2] = {0.25, -3};
    write_npy(p, 3, "{'descr': '=f8', 'fortran_order': False, 'shape': (2,)}", f8, sizeof f8);
    ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NETRT_F64);
    ck_assert_double_eq(((double *)a.data)[0], 0.25);
    netrt_array_free(&a);

    const char *codes[] = {"|i1", "<i2", "<i4", "|b1"};
    netrt_dtype types[] = {NETRT_I8, NETRT_I16, NETRT_I32, NETRT_BOOL};
    size_t sizes[] = {1, 2, 4, 1};
    for (int i = 0; i < 4; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (3,), }",
                 codes[i]);
        write_npy(p, 1, dict, i8, 3 * sizes[i]);
        ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), 0);
        ck_assert_int_eq(a.dtype, types[i]);
        ck_assert_uint_eq(a.nbytes, 3 * sizes[i]);
        netrt_array_free(&a);
    }
}
END_TEST

START_TEST(npy_errors) {
    const char *p = tpath("bad.npy");
    netrt_array a;
    float d[4] = {0};
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";

    write_bytes(p, "\x93NUMPX\x01\x00\x10\x00", 10);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err),
                  "not a .npy file: it starts with 93 4e 55 4d 50 58, not the magic \"\\x93NUMPY\"");
    ck_assert_ptr_null(a.data);
    write_bytes(p, "\x93NU", 3);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "it starts with 93 4e 55,");
    write_bytes(p, "\x93NUMPY\x01", 7);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "truncated .npy header: 7 bytes");
    write_bytes(p, "", 0);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "the file is empty");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "fortran_order");
    write_npy(p, 1, good, d, sizeof d - 1);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err),
                  "truncated data: shape [4] of F32 needs 16 bytes of data, the file holds 15");
    write_npy(p, 1, good, d, sizeof d);
    {
        FILE *f = fopen(p, "ab");
        fputc(0, f);
        fclose(f);
    }
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err),
                  "trailing bytes after the data: shape [4] of F32 needs 16 bytes of data, the file holds 17");
    /* Truncated in the header. */
    write_npy(p, 1, good, d, 0);
    ck_assert_int_eq(truncate(p, 30), 0);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "truncated");
    write_npy(p, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (4,), }", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "unsupported dtype '<c8'");
    write_npy(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "big-endian");
    write_npy(p, 4, good, d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "version 4.0");
    write_npy(p, 1, "[1, 2]", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "bad .npy header: expected a dict, found '[1, 2]'");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4 4), }", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err),
                  "bad .npy header: expected ',' or ')' in the shape, found '4), }'");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'extra': 1, 'more': 2}", d,
              sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "unexpected or repeated key 'extra'");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} x             y", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err),
                  "expected the end of the header after the dict, found 'x             y'");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} 0123456789abcdefgh", d, sizeof d);
    ck_assert_err(netrt_npy_read(p, &a, err, sizeof err), "found '0123456789abcdef...'");

    const char *bad_dicts[] = {
        "",
        "[1, 2]",
        "{'descr': '<f4', 'shape': (4,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'extra': 1}",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4 4), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), } x",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,",
        "{'descr: '<f4'",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
    };
    for (size_t i = 0; i < sizeof bad_dicts / sizeof bad_dicts[0]; i++) {
        write_npy(p, 1, bad_dicts[i], d, sizeof d);
        ck_assert_int_eq(netrt_npy_read(p, &a, err, sizeof err), -1);
        ck_assert_msg(strncmp(err, p, strlen(p)) == 0, "message '%s' names no file", err);
    }
    ck_assert_err(netrt_npy_read(tpath("no-such.npy"), &a, err, sizeof err), "no-such.npy");

    /* A failed write leaves nothing behind. */
    int64_t shape[1] = {-1};
    ck_assert_err(netrt_npy_write(tpath("neg.npy"), d, 1, shape, err, sizeof err), "shape");
    ck_assert(!exists(tpath("neg.npy")));
    shape[0] = 4;
    ck_assert_int_eq(netrt_npy_write(tpath("nodir/x.npy"), d, 1, shape, err, sizeof err), -1);
}
END_TEST

/* ---- safetensors ------------------------------------------------------------ */

START_TEST(st_round_trip) {
    float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {-1, 0.5f};
    netrt_tensor ts[3] = {
        {"conv1.weight", 3, {1, 2, 3}, w},
        {"a.bias", 1, {2}, b},
        {"empty", 2, {0, 4}, NULL},
    };
    const char *p = tpath("rt.safetensors");
    ck_assert_int_eq(netrt_st_write(p, ts, 3, err, sizeof err), 0);
    netrt_st_file f;
    ck_assert_int_eq(netrt_st_open(p, &f, err, sizeof err), 0);
    ck_assert_int_eq(f.count, 3);
    ck_assert_str_eq(f.entries[0].name, "conv1.weight");
    ck_assert_str_eq(f.entries[1].name, "a.bias");
    ck_assert_str_eq(f.entries[2].name, "empty");
    const netrt_st_entry *e = netrt_st_find(&f, "conv1.weight");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->dtype, NETRT_F32);
    ck_assert_int_eq(e->rank, 3);
    ck_assert_int_eq(e->shape[2], 3);
    ck_assert_uint_eq(e->nbytes, sizeof w);
    ck_assert_mem_eq(e->data, w, sizeof w);
    e = netrt_st_find(&f, "a.bias");
    ck_assert_mem_eq(e->data, b, sizeof b);
    ck_assert_ptr_null(netrt_st_find(&f, "nope"));
    /* The header is padded to a multiple of 8. */
    uint64_t hlen;
    memcpy(&hlen, f.buffer, 8);
    ck_assert_uint_eq(hlen % 8, 0);
    netrt_st_close(&f);

    /* Duplicate names are refused and leave no file. */
    ts[1].name = "conv1.weight";
    ck_assert_err(netrt_st_write(tpath("dup.safetensors"), ts, 2, err, sizeof err),
                  "duplicate tensor 'conv1.weight'");
    ck_assert(!exists(tpath("dup.safetensors")));
}
END_TEST

/* Writes a safetensors file: header size, the JSON, then `data` bytes
 * (zeros unless given). */
static void write_st(const char *path, const char *json, size_t data, const void *bytes) {
    size_t len = strlen(json);
    unsigned char *buf = calloc(1, 8 + len + data);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(buf + 8, json, len);
    if (bytes) memcpy(buf + 8 + len, bytes, data);
    write_bytes(path, buf, 8 + len + data);
    free(buf);
}

START_TEST(st_metadata) {
    const char *p = tpath("meta.safetensors");
    netrt_st_file f;
    write_st(p,
             "{\"__metadata__\": {\"format\": \"pt\"}, \"b\": {\"dtype\": \"I64\", \"shape\": [], "
             "\"data_offsets\": [4, 12]}, \"a\": {\"dtype\": \"F16\", \"shape\": [2], "
             "\"data_offsets\": [0, 4]}}   ",
             12, NULL);
    ck_assert_int_eq(netrt_st_open(p, &f, err, sizeof err), 0);
    ck_assert_int_eq(f.count, 2);
    ck_assert_str_eq(f.entries[0].name, "b");
    ck_assert_int_eq(f.entries[0].rank, 0);
    ck_assert_int_eq(f.entries[1].dtype, NETRT_F16);
    netrt_st_close(&f);

    /* No tensors and no data is a valid file. */
    write_st(p, "{}", 0, NULL);
    ck_assert_int_eq(netrt_st_open(p, &f, err, sizeof err), 0);
    ck_assert_int_eq(f.count, 0);
    ck_assert_ptr_null(netrt_st_meta(&f, "format"));
    netrt_st_close(&f);

    /* Written metadata reads back (with the format's "pt"), beside the tensors. */
    float v[3] = {1, 2, 3};
    netrt_tensor t = {"w", 1, {3}, v};
    const char *kv[] = {"netc", "checkpoint 1", "epoch", "2", "empty", ""};
    ck_assert_int_eq(netrt_st_write_meta(p, &t, 1, kv, 3, err, sizeof err), 0);
    ck_assert_int_eq(netrt_st_open(p, &f, err, sizeof err), 0);
    ck_assert_int_eq(f.count, 1);
    ck_assert_int_eq(f.nmeta, 4);
    ck_assert_str_eq(netrt_st_meta(&f, "format"), "pt");
    ck_assert_str_eq(netrt_st_meta(&f, "netc"), "checkpoint 1");
    ck_assert_str_eq(netrt_st_meta(&f, "epoch"), "2");
    ck_assert_str_eq(netrt_st_meta(&f, "empty"), "");
    ck_assert_ptr_null(netrt_st_meta(&f, "step"));
    netrt_st_close(&f);

    /* The format allows only strings in __metadata__. */
    write_st(p, "{\"__metadata__\": {\"epoch\": 2}}", 0, NULL);
    ck_assert_err(netrt_st_open(p, &f, err, sizeof err), "__metadata__ entry 'epoch' is an integer, not a string");
    write_st(p, "{\"__metadata__\": [\"pt\"]}", 0, NULL);
    ck_assert_err(netrt_st_open(p, &f, err, sizeof err), "__metadata__ is an array, not an object of strings");
}
END_TEST

START_TEST(st_errors) {
    const char *p = tpath("w.safetensors");
    netrt_st_file f;
    unsigned char raw[16] = {0};

    write_bytes(p, raw, 5);
    ck_assert_err(netrt_st_open(p, &f, err, sizeof err), "truncated");
    ck_assert_ptr_null(f.buffer);
    memset(raw, 0xff, 8);
    write_bytes(p, raw, 16);
    ck_assert_err(netrt_st_open(p, &f, err, sizeof err),
                  "header size 18446744073709551615 exceeds the 8 bytes that follow it (truncated, or not a "
                  "safetensors file)");
    memset(raw, 0, 8);
    raw[0] = 9;
    write_bytes(p, raw, 16);
    ck_assert_err(netrt_st_open(p, &f, err, sizeof err), "header size 9 exceeds the 8 bytes that follow it");
    ck_assert_err(netrt_st_open(tpath("missing.safetensors"), &f, err, sizeof err),
                  "missing.safetensors");

    static const struct {
        const char *json;
        size_t data;
        const char *msg;
    } cases[] = {
        {"{\"a\": {\"dtype\": \"F32\", ", 0, "invalid JSON"},
        {"[1, 2]", 0, "the JSON header is an array, not an object of tensors"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}} x", 8,
         "invalid JSON"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
         8, "invalid JSON"},
        {"{\"a\": 3}", 0, "tensor 'a': its header entry is an integer, not an object with \"dtype\""},
        {"{\"a\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "\"dtype\""},
        {"{\"a\": {\"dtype\": \"C64\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
         "unsupported dtype 'C64'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", 8, "\"shape\""},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8,
         "shape entries"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", 8,
         "shape entries"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
         4, "rank 9"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8,
         "tensor 'a': data offsets [8, 0) end before they begin"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8, "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8,
         "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 8,
         "data offsets [0, 16) exceed the 8 bytes of data after the header (truncated file?)"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, "
         "9223372036854775807]}}",
         8, "exceed"},
        {"{\"conv1.weight\": {\"dtype\": \"F32\", \"shape\": [6, 1, 5, 5], \"data_offsets\": "
         "[0, 96]}}",
         96,
         "w.safetensors: tensor 'conv1.weight': data offsets [0, 96) hold 96 bytes, but shape "
         "[6, 1, 5, 5] of F32 needs 600"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
         "\"data_offsets\": [0, 8]}}",
         8, "too large"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
         12, "tensors 'a' and 'b' overlap"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [12, 16]}}",
         16, "data bytes [8, 12) belong to no tensor"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 12,
         "data bytes [8, 12) belong to no tensor"},
        {"{}", 4, "data bytes [0, 4) belong to no tensor"},
        {"", 0, "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_st(p, cases[i].json, cases[i].data, NULL);
        err[0] = '\0';
        ck_assert_int_eq(netrt_st_open(p, &f, err, sizeof err), -1);
        ck_assert_msg(strstr(err, cases[i].msg) != NULL, "case %zu: error '%s' lacks '%s'", i, err,
                      cases[i].msg);
        ck_assert_ptr_null(f.entries);
        ck_assert_ptr_null(f.buffer);
    }
}
END_TEST

/* ---- IDX ------------------------------------------------------------------- */

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

START_TEST(idx_plain_and_gzip) {
    unsigned char img[4 + 12 + 12] = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2};
    for (int i = 0; i < 12; i++) img[16 + i] = (unsigned char)(i * 20);
    netrt_array a;
    /* The names say nothing: gzip is detected by content. */
    const char *plain = tpath("images.gz"), *gz = tpath("images.idx");
    write_bytes(plain, img, sizeof img);
    write_gz(gz, img, sizeof img);
    const char *paths[2] = {plain, gz};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(netrt_idx_read(paths[k], &a, err, sizeof err), 0);
        ck_assert_int_eq(a.dtype, NETRT_U8);
        ck_assert_int_eq(a.rank, 3);
        ck_assert_int_eq(a.shape[0], 2);
        ck_assert_int_eq(a.shape[1], 3);
        ck_assert_int_eq(a.shape[2], 2);
        ck_assert_mem_eq(a.data, img + 16, 12);
        netrt_array_free(&a);
        ck_assert_int_eq(netrt_array_read(paths[k], &a, err, sizeof err), 0);
        ck_assert_int_eq(a.rank, 3);
        netrt_array_free(&a);
    }

    /* Big-endian types are converted to host order. */
    unsigned char i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0x12, 0x34, 0x56, 0x78, 0xff, 0xff, 0xff, 0xfe};
    write_gz(gz, i32, sizeof i32);
    ck_assert_int_eq(netrt_array_read(gz, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NETRT_I32);
    ck_assert_int_eq(((int32_t *)a.data)[0], 0x12345678);
    ck_assert_int_eq(((int32_t *)a.data)[1], -2);
    netrt_array_free(&a);
    unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0};
    write_bytes(plain, f32, sizeof f32);
    ck_assert_int_eq(netrt_idx_read(plain, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NETRT_F32);
    ck_assert_float_eq(((float *)a.data)[0], 1.5f);
    netrt_array_free(&a);
    unsigned char f64[] = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0xc0, 0x04, 0, 0, 0, 0, 0, 0};
    write_bytes(plain, f64, sizeof f64);
    ck_assert_int_eq(netrt_idx_read(plain, &a, err, sizeof err), 0);
    ck_assert_double_eq(((double *)a.data)[0], -2.5);
    netrt_array_free(&a);
    unsigned char i16[] = {0, 0, 0x0B, 1, 0, 0, 0, 1, 0xff, 0x00};
    write_bytes(plain, i16, sizeof i16);
    ck_assert_int_eq(netrt_idx_read(plain, &a, err, sizeof err), 0);
    ck_assert_int_eq(((int16_t *)a.data)[0], -256);
    netrt_array_free(&a);
}
END_TEST

START_TEST(idx_errors) {
    const char *p = tpath("bad.idx");
    netrt_array a;
    unsigned char good[] = {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    unsigned char buf[64];

    memcpy(buf, good, sizeof good);
    buf[1] = 8;
    write_bytes(p, buf, sizeof good);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "not an IDX file: it starts with 00 08, not 00 00");
    ck_assert_ptr_null(a.data);
    memcpy(buf, good, sizeof good);
    buf[2] = 0x0A;
    write_bytes(p, buf, sizeof good);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "unknown IDX type code 0x0a (0x08 uint8");
    memcpy(buf, good, sizeof good);
    buf[3] = 0;
    write_bytes(p, buf, sizeof good);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "rank 0");
    write_bytes(p, good, sizeof good - 1);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated IDX data");
    write_bytes(p, good, 6);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated IDX header");
    write_bytes(p, good, 2);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated IDX header");
    memcpy(buf, good, sizeof good);
    buf[sizeof good] = 7;
    write_bytes(p, buf, sizeof good + 1);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "trailing");
    /* A header claiming a huge array in a tiny file. */
    unsigned char huge[] = {0, 0, 0x08, 3, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1};
    write_gz(p, huge, sizeof huge);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated IDX data");

    /* Gzip: truncated data inside a valid stream, and a cut stream. */
    write_gz(p, good, sizeof good - 2);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated IDX data");
    write_gz(p, good, sizeof good);
    struct stat st;
    stat(p, &st);
    ck_assert_int_eq(truncate(p, st.st_size - 12), 0);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated gzip file: the compressed data ends early");
    ck_assert_ptr_null(a.data);
    /* All the data, but the stream's trailer (CRC and size) cut off. */
    write_gz(p, good, sizeof good);
    ck_assert_int_eq(truncate(p, st.st_size - 8), 0);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "truncated gzip file");
    write_bytes(p, "\x1f\x8b\x08\x00garbage-garbage", 19);
    ck_assert_err(netrt_idx_read(p, &a, err, sizeof err), "bad.idx: corrupted gzip data: ");

    /* netrt_array_read refuses what is neither. */
    write_bytes(p, "hello", 5);
    ck_assert_err(netrt_array_read(p, &a, err, sizeof err),
                  "neither a .npy nor an IDX file: it starts with 68 65 6c 6c 6f (");
    write_bytes(p, "", 0);
    ck_assert_err(netrt_array_read(p, &a, err, sizeof err), "the file is empty (expected a .npy or IDX file)");
}
END_TEST

/* ---- rng -------------------------------------------------------------------- */

START_TEST(rng_determinism_and_range) {
    netrt_rng a, b;
    netrt_rng_seed(&a, 0);
    /* splitmix64's first output from 0, a published test value. */
    ck_assert_uint_eq(a.s[0], 0xe220a8397b1dcdafULL);
    netrt_rng_seed(&a, 42);
    ck_assert_uint_eq(netrt_rng_next(&a), 0x15780b2e0c2ec716ULL);
    ck_assert_uint_eq(netrt_rng_next(&a), 0x6104d9866d113a7eULL);
    ck_assert_uint_eq(netrt_rng_next(&a), 0xae17533239e499a1ULL);

    netrt_rng_seed(&a, 7);
    netrt_rng_seed(&b, 7);
    for (int i = 0; i < 1000; i++) ck_assert_uint_eq(netrt_rng_next(&a), netrt_rng_next(&b));
    netrt_rng_seed(&b, 8);
    ck_assert_uint_ne(netrt_rng_next(&a), netrt_rng_next(&b));

    enum { N = 100000 };
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    int counts[7] = {0};
    for (int i = 0; i < N; i++) {
        double u = netrt_rng_uniform(&a);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        double z = netrt_rng_normal(&a);
        ck_assert(isfinite(z));
        nsum += z;
        nsum2 += z * z;
        uint64_t k = netrt_rng_below(&a, 7);
        ck_assert_uint_lt(k, 7);
        counts[k]++;
    }
    ck_assert(fabs(sum / N - 0.5) < 0.01);
    ck_assert(fabs(sum2 / N - 1.0 / 3) < 0.01);
    ck_assert(fabs(nsum / N) < 0.02);
    ck_assert(fabs(nsum2 / N - 1.0) < 0.03);
    for (int k = 0; k < 7; k++) ck_assert(abs(counts[k] - N / 7) < N / 70);
    ck_assert_uint_eq(netrt_rng_below(&a, 1), 0);
    ck_assert_uint_eq(netrt_rng_below(&a, 0), 0);
    for (int i = 0; i < 100; i++) ck_assert_uint_lt(netrt_rng_below(&a, (1ULL << 63) + 1), (1ULL << 63) + 1);
}
END_TEST

START_TEST(alloc_and_shapes) {
    float *p = netrt_alloc(100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    for (int i = 0; i < 25; i++) ck_assert_float_eq(p[i], 0.0f);
    netrt_free(p);
    p = netrt_alloc(0);
    ck_assert_ptr_nonnull(p);
    netrt_free(p);
    ck_assert_ptr_null(netrt_alloc(SIZE_MAX));

    char buf[64];
    int64_t s[3] = {1, 28, 28};
    ck_assert_str_eq(netrt_shape_str(3, s, buf, sizeof buf), "[1, 28, 28]");
    ck_assert_str_eq(netrt_shape_str(0, s, buf, sizeof buf), "[]");
    ck_assert_str_eq(netrt_shape_str(3, s, buf, 5), "[1, ");
    ck_assert_int_eq(netrt_numel(3, s), 784);
    ck_assert_str_eq(netrt_dtype_name(NETRT_BF16), "BF16");
    ck_assert_uint_eq(netrt_dtype_size(NETRT_I64), 8);
    double t0 = netrt_now();
    ck_assert(netrt_now() >= t0);
}
END_TEST

START_TEST(progress_not_tty) {
    /* With stderr redirected to a file: nothing until finish, then one line. */
    const char *p = tpath("progress.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    netrt_progress bar;
    netrt_progress_start(&bar, "eval", 10);
    for (int i = 1; i <= 10; i++) netrt_progress_update(&bar, i, "loss 1.0");
    struct stat st;
    fstat(2, &st);
    off_t before = st.st_size;
    netrt_progress_finish(&bar, "acc 90.0%");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(before, 0);
    char line[256] = {0};
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_int_eq(fgetc(f), EOF);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(line, "eval ["));
    ck_assert_ptr_nonnull(strstr(line, "10/10"));
    ck_assert_ptr_nonnull(strstr(line, "acc 90.0%\n"));
    ck_assert_ptr_null(strchr(line, '\r'));
}
END_TEST

/* ---- netrt_load_params --------------------------------------------------------- */

static float fc_w[6], fc_b[2], bn_mean[2];
static netrt_tensor fake_params[3] = {
    {"fc.weight", 2, {2, 3}, fc_w},
    {"fc.bias", 1, {2}, fc_b},
    {"bn.running_mean", 1, {2}, bn_mean},
};
static const netrt_model fake_params_model = {
    .name = "fake", .nparams = 3, .params = fake_params, .batch = 1};

static void write_params(const char *path, int n, const netrt_tensor *ts) {
    ck_assert_int_eq(netrt_st_write(path, ts, n, err, sizeof err), 0);
}

START_TEST(load_params_ok_and_errors) {
    float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {7, 8}, m[2] = {9, 10}, w33[9] = {0};
    netrt_tensor ts[4] = {
        {"fc.weight", 2, {2, 3}, w},
        {"fc.bias", 1, {2}, b},
        {"bn.running_mean", 1, {2}, m},
        {"foo", 1, {2}, b},
    };
    const char *p = tpath("w.safetensors");
    write_params(p, 3, ts);
    ck_assert_int_eq(netrt_load_params(&fake_params_model, p, err, sizeof err), 0);
    ck_assert_mem_eq(fc_w, w, sizeof w);
    ck_assert_mem_eq(fc_b, b, sizeof b);
    ck_assert_mem_eq(bn_mean, m, sizeof m);

    write_params(p, 2, ts);
    ck_assert_err(netrt_load_params(&fake_params_model, p, err, sizeof err),
                  "w.safetensors: missing tensor 'bn.running_mean' (expected shape [2])");
    write_params(p, 4, ts);
    ck_assert_err(netrt_load_params(&fake_params_model, p, err, sizeof err),
                  "w.safetensors: unexpected tensor 'foo' (the model has no such parameter)");
    netrt_tensor wrong[3] = {{"fc.weight", 2, {3, 3}, w33}, ts[1], ts[2]};
    memset(fc_w, 0, sizeof fc_w);
    write_params(p, 3, wrong);
    ck_assert_err(netrt_load_params(&fake_params_model, p, err, sizeof err),
                  "w.safetensors: tensor 'fc.weight' has shape [3, 3], expected [2, 3]");
    /* A failed load changes nothing. */
    for (int i = 0; i < 6; i++) ck_assert_float_eq(fc_w[i], 0.0f);
    ck_assert_err(netrt_load_params(&fake_params_model, tpath("none.safetensors"), err, sizeof err),
                  "none.safetensors");
}
END_TEST

START_TEST(load_params_dtypes) {
    /* fc.weight as F64, fc.bias as F16, bn.running_mean as BF16, and an I64
     * num_batches_tracked, which is ignored. */
    unsigned char data[48 + 4 + 4 + 8];
    double w[6] = {1.5, -2, 0.1, 1e30, 0, -0.25};
    memcpy(data, w, 48);
    const unsigned char f16[4] = {0x00, 0x3c, 0x00, 0xc1}; /* 1.0, -2.5 */
    memcpy(data + 48, f16, 4);
    const unsigned char bf16[4] = {0xc0, 0x3f, 0x80, 0xbf}; /* 1.5, -1.0 */
    memcpy(data + 52, bf16, 4);
    int64_t nbt = 123;
    memcpy(data + 56, &nbt, 8);
    const char *json =
        "{\"fc.weight\": {\"dtype\": \"F64\", \"shape\": [2, 3], \"data_offsets\": [0, 48]}, "
        "\"fc.bias\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [48, 52]}, "
        "\"bn.running_mean\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [52, 56]}, "
        "\"bn.num_batches_tracked\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [56, 64]}}";
    const char *p = tpath("mixed.safetensors");
    write_st(p, json, sizeof data, data);
    ck_assert_int_eq(netrt_load_params(&fake_params_model, p, err, sizeof err), 0);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(fc_w[i], (float)w[i]);
    ck_assert_float_eq(fc_b[0], 1.0f);
    ck_assert_float_eq(fc_b[1], -2.5f);
    ck_assert_float_eq(bn_mean[0], 1.5f);
    ck_assert_float_eq(bn_mean[1], -1.0f);

    /* A float num_batches_tracked, or an integer parameter, is an error. */
    const char *json2 =
        "{\"fc.weight\": {\"dtype\": \"F64\", \"shape\": [2, 3], \"data_offsets\": [0, 48]}, "
        "\"fc.bias\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [48, 52]}, "
        "\"bn.running_mean\": {\"dtype\": \"I16\", \"shape\": [2], \"data_offsets\": [52, 56]}, "
        "\"bn.num_batches_tracked\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [56, 64]}}";
    write_st(p, json2, sizeof data, data);
    ck_assert_err(netrt_load_params(&fake_params_model, p, err, sizeof err),
                  "tensor 'bn.running_mean' has dtype I16");
}
END_TEST

/* ---- netrt_main --------------------------------------------------------------- */

/* A fake emitted model: batch 4, input x [4, 1, 2, 2], outputs y = 2x and
 * s = [sum of x, scale] per sample, where scale is the loaded parameter. */
enum { B = 4, PER = 4 };
static float x_buf[B * PER], y_buf[B * PER], s_buf[B * 2], scale[1];
static int runs, prepares, init_fail;
static netrt_tensor doubler_params[1] = {{"scale", 1, {1}, scale}};
static netrt_tensor doubler_inputs[1] = {{"x", 4, {B, 1, 2, 2}, x_buf}};
static netrt_tensor doubler_outputs[2] = {{"y", 4, {B, 1, 2, 2}, y_buf}, {"s", 2, {B, 2}, s_buf}};

static int doubler_init(void) { return init_fail; }
static void doubler_prepare(void) { prepares++; }
static void doubler_run(void) {
    runs++;
    for (int i = 0; i < B * PER; i++) y_buf[i] = 2 * x_buf[i];
    for (int n = 0; n < B; n++) {
        s_buf[2 * n] = 0;
        for (int k = 0; k < PER; k++) s_buf[2 * n] += x_buf[n * PER + k];
        s_buf[2 * n + 1] = scale[0];
    }
}
static netrt_model doubler = {
    .name = "doubler", .source = "doubler.net", .batch = B,
    .nparams = 1, .params = doubler_params,
    .ninputs = 1, .inputs = doubler_inputs,
    .noutputs = 2, .outputs = doubler_outputs,
    .init = doubler_init, .prepare = doubler_prepare, .run = doubler_run,
};

/* Runs netrt_main with stdout and stderr captured into out and errout. */
static int run_main(const netrt_model *m, char *out, size_t outn, char *errout, size_t errn,
                    const char *first, ...) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = "./prog";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    char po[512], pe[512];
    snprintf(po, sizeof po, "%s/stdout.txt", tmpdir);
    snprintf(pe, sizeof pe, "%s/stderr.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = netrt_main(argc, argv, m);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    const char *paths[2] = {po, pe};
    char *bufs[2] = {out, errout};
    size_t ns[2] = {outn, errn};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(paths[k], "r");
        size_t n = fread(bufs[k], 1, ns[k] - 1, f);
        bufs[k][n] = '\0';
        fclose(f);
    }
    return rc;
}

static float sample_value(int s, int k) { return (float)(s * 10 + k) * 0.5f; }

/* Writes S samples [S, 1, 2, 2] of sample_value to name; returns the path. */
static const char *write_input(const char *name, int S) {
    float *d = malloc(sizeof(float) * (size_t)S * PER + 1);
    for (int s = 0; s < S; s++)
        for (int k = 0; k < PER; k++) d[s * PER + k] = sample_value(s, k);
    int64_t shape[4] = {S, 1, 2, 2};
    const char *p = tpath(name);
    ck_assert_int_eq(netrt_npy_write(p, d, 4, shape, err, sizeof err), 0);
    free(d);
    return p;
}

static const char *write_scale(float v) {
    float s[1] = {v};
    netrt_tensor t = {"scale", 1, {1}, s};
    const char *p = tpath("scale.safetensors");
    ck_assert_int_eq(netrt_st_write(p, &t, 1, err, sizeof err), 0);
    return p;
}

static char out[1 << 16], errout[4096];

START_TEST(main_end_to_end) {
    const char *x = write_input("x.npy", 10), *w = write_scale(3.0f);
    char yspec[600], sspec[600];
    snprintf(yspec, sizeof yspec, "y=%s", tpath("y.npy"));
    snprintf(sspec, sizeof sspec, "s=%s", tpath("s.npy"));
    runs = prepares = 0;
    int rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                      "--output", yspec, "--output", sspec, NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_int_eq(runs, 3); /* ceil(10 / 4) */
    ck_assert_int_eq(prepares, 1);

    netrt_array y, s;
    ck_assert_int_eq(netrt_npy_read(tpath("y.npy"), &y, err, sizeof err), 0);
    ck_assert_int_eq(y.rank, 4);
    ck_assert_int_eq(y.shape[0], 10);
    ck_assert_int_eq(y.shape[1], 1);
    ck_assert_int_eq(y.shape[3], 2);
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < PER; k++)
            ck_assert_float_eq(((float *)y.data)[i * PER + k], 2 * sample_value(i, k));
    netrt_array_free(&y);
    ck_assert_int_eq(netrt_npy_read(tpath("s.npy"), &s, err, sizeof err), 0);
    ck_assert_int_eq(s.rank, 2);
    ck_assert_int_eq(s.shape[0], 10);
    ck_assert_float_eq(((float *)s.data)[1], 3.0f);
    netrt_array_free(&s);
    /* The last batch held samples 8 and 9 and two zeroed padding rows. */
    for (int k = 0; k < 2 * PER; k++) ck_assert_float_eq(x_buf[2 * PER + k], 0.0f);
    ck_assert_float_eq(s_buf[2 * 2], 0.0f);

    /* --limit, and one output with the name left out... not allowed with 2
     * outputs; name it. */
    snprintf(yspec, sizeof yspec, "--output=y=%s", tpath("y5.npy"));
    runs = 0;
    rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input",
                  x, yspec, "--limit", "5", "--print", NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_int_eq(runs, 2);
    ck_assert_int_eq(netrt_npy_read(tpath("y5.npy"), &y, err, sizeof err), 0);
    ck_assert_int_eq(y.shape[0], 5);
    netrt_array_free(&y);
    /* The arg-max of sample 1's y row is its last element, 2 * 6.5: the
     * top class of the softmax, first of the (at most 5) printed. */
    ck_assert_msg(strstr(out, "sample 1: 3 ") != NULL, "stdout: %s", out);
    ck_assert_ptr_null(strstr(out, "sample 5"));
}
END_TEST

START_TEST(main_uint8_idx_and_labels) {
    /* An IDX [S, 2, 2] uint8 file (gzip) feeds the [1, 2, 2] input,
     * scaled by 1/255. */
    enum { S = 6 };
    unsigned char img[16 + S * 4] = {0, 0, 0x08, 3, 0, 0, 0, S, 0, 0, 0, 2, 0, 0, 0, 2};
    for (int s = 0; s < S; s++)
        for (int k = 0; k < 4; k++) img[16 + s * 4 + k] = (unsigned char)(k == s % 4 ? 255 : 51);
    const char *x = tpath("img.idx.gz");
    write_gz(x, img, sizeof img);
    /* Labels: IDX uint8, s % 4 except the last one wrong. */
    unsigned char lab[8 + S] = {0, 0, 0x08, 1, 0, 0, 0, S};
    for (int s = 0; s < S; s++) lab[8 + s] = (unsigned char)(s % 4);
    lab[8 + S - 1] = 0;
    const char *l = tpath("labels.idx");
    write_bytes(l, lab, sizeof lab);
    const char *w = write_scale(1.0f);
    char yspec[600];
    snprintf(yspec, sizeof yspec, "y=%s", tpath("yu8.npy"));
    int rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input",
                      x, "--output", yspec, "--labels", l, NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    netrt_array y;
    ck_assert_int_eq(netrt_npy_read(tpath("yu8.npy"), &y, err, sizeof err), 0);
    ck_assert_float_eq_tol(((float *)y.data)[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(((float *)y.data)[1], 0.4f, 1e-6f);
    netrt_array_free(&y);
    ck_assert_msg(strstr(out, "sample    2: predicted 2, true 2\n") != NULL, "stdout: %s", out);
    ck_assert_msg(strstr(out, "sample    5: predicted 1, true 0  <- wrong\n") != NULL, "stdout: %s", out);
    ck_assert_msg(strstr(out, "accuracy: 5/6 = 83.3%\n") != NULL, "stdout: %s", out);

    /* Class names beside the numbers. */
    rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                  "--labels", l, "--classes", "zero,one,two,three", NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_msg(strstr(out, "sample    5: predicted 1 (one), true 0 (zero)  <- wrong\n") != NULL,
                  "stdout: %s", out);

    /* Labels of the wrong length. */
    lab[7] = S - 1;
    write_bytes(l, lab, sizeof lab - 1);
    rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                  "--labels", l, NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(errout, "5 labels for 6 samples") != NULL, "stderr: %s", errout);
}
END_TEST

/* --repeat R: each batch runs W + R times (W = --warmup, default 1), the
 * outputs are the ones a plain run writes, and one timing line goes to
 * stderr in the format tools/bench.py parses. */
START_TEST(main_repeat) {
    const char *x = write_input("xr.npy", 10), *w = write_scale(2.0f);
    char plain[600], timed[600];
    snprintf(plain, sizeof plain, "y=%s", tpath("y_plain.npy"));
    snprintf(timed, sizeof timed, "y=%s", tpath("y_timed.npy"));
    int rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                      "--output", plain, NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_ptr_null(strstr(errout, "timing"));

    runs = 0;
    rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                  "--output", timed, "--repeat", "3", NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_int_eq(runs, 3 * (1 + 3)); /* 3 batches, each 1 warm-up + 3 timed */
    int batch = 0, warmup = -1, reps = 0;
    long long batches = 0;
    double median = -1, min = -1, mean = -1;
    int n = sscanf(errout, "prog: timing: batch=%d batches=%lld warmup=%d runs=%d median_ms=%lf min_ms=%lf mean_ms=%lf\n",
                   &batch, &batches, &warmup, &reps, &median, &min, &mean);
    ck_assert_msg(n == 7, "stderr: %s", errout);
    ck_assert_int_eq(batch, B);
    ck_assert_int_eq(batches, 3);
    ck_assert_int_eq(warmup, 1);
    ck_assert_int_eq(reps, 3);
    ck_assert(min >= 0 && min <= median && min <= mean);
    ck_assert_ptr_eq(strchr(errout, '\n'), errout + strlen(errout) - 1); /* one line */

    netrt_array a, b;
    ck_assert_int_eq(netrt_npy_read(tpath("y_plain.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(netrt_npy_read(tpath("y_timed.npy"), &b, err, sizeof err), 0);
    ck_assert_int_eq(b.shape[0], 10);
    ck_assert_int_eq(memcmp(a.data, b.data, sizeof(float) * 10 * PER), 0);
    netrt_array_free(&a);
    netrt_array_free(&b);

    /* --warmup 0 --limit 4: one batch, only the timed runs. */
    runs = 0;
    rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                  "--limit", "4", "--repeat=2", "--warmup", "0", NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_int_eq(runs, 2);
    ck_assert_msg(strncmp(errout, "prog: timing: batch=4 batches=1 warmup=0 runs=2 median_ms=", 58) == 0,
                  "stderr: %s", errout);
}
END_TEST

/* Expects netrt_main to fail with a message containing want on stderr. */
#define ck_main_fails(want, ...)                                                                  \
    do {                                                                                          \
        int rc_ = run_main(&doubler, out, sizeof out, errout, sizeof errout, __VA_ARGS__, NULL); \
        ck_assert_int_eq(rc_, 1);                                                                 \
        ck_assert_msg(strncmp(errout, "prog: error: ", 13) == 0 && strstr(errout, want) != NULL, \
                      "stderr '%s' lacks '%s'", errout, want);                                   \
        ck_assert_ptr_eq(strchr(errout, '\n'), errout + strlen(errout) - 1);                     \
    } while (0)

START_TEST(main_errors) {
    const char *x = write_input("x10.npy", 10), *w = write_scale(1.0f);
    char yspec[600];
    const char *y = tpath("never.npy");
    snprintf(yspec, sizeof yspec, "y=%s", y);

    /* Wrong per-sample shape. */
    float *d = calloc(10 * 12, sizeof(float));
    int64_t shape[4] = {10, 3, 2, 2};
    const char *x3 = tpath("x3.npy");
    ck_assert_int_eq(netrt_npy_write(x3, d, 4, shape, err, sizeof err), 0);
    free(d);
    runs = 0;
    ck_main_fails("input 'x' has shape [10, 3, 2, 2], expected [S, 1, 2, 2] or [S, 2, 2] (S samples of [1, 2, 2])",
                  "--weights", w, "--input", x3, "--output", yspec);
    ck_assert_int_eq(runs, 0);
    ck_assert(!exists(y));

    ck_main_fails("missing --weights", "--input", x);
    ck_main_fails("missing --input", "--weights", w);
    ck_main_fails("unknown option '--frobnicate'", "--weights", w, "--input", x, "--frobnicate");
    ck_main_fails("unexpected argument 'stray'", "--weights", w, "--input", x, "stray");
    ck_main_fails("option --limit needs a value", "--weights", w, "--input", x, "--limit");
    ck_main_fails("--limit needs a positive integer", "--weights", w, "--input", x, "--limit", "0");
    ck_main_fails("--limit needs a positive integer", "--weights", w, "--input", x, "--limit", "3x");
    ck_main_fails("no input named 'image'", "--weights", w, "--input", "image=x.npy");
    ck_main_fails("input 'x' given twice", "--weights", w, "--input", x, "--input", x);
    ck_main_fails("the model has 2 outputs", "--weights", w, "--input", x, "--output", y);
    ck_main_fails("option --print takes no value", "--weights", w, "--input", x, "--print=yes");
    ck_main_fails("--repeat needs a positive integer, not '0'", "--weights", w, "--input", x, "--repeat", "0");
    ck_main_fails("--repeat needs a positive integer, not '2x'", "--weights", w, "--input", x, "--repeat=2x");
    ck_main_fails("--repeat: at most 1000000", "--weights", w, "--input", x, "--repeat", "1000001");
    ck_main_fails("option --repeat needs a value", "--weights", w, "--input", x, "--repeat");
    ck_main_fails("--warmup needs an integer >= 0, not '-1'", "--weights", w, "--input", x, "--repeat", "1",
                  "--warmup", "-1");
    ck_main_fails("--warmup needs --repeat R", "--weights", w, "--input", x, "--warmup", "2");
    ck_main_fails("no-such.npy", "--weights", w, "--input", tpath("no-such.npy"));
    netrt_tensor other = {"other", 1, {1}, scale};
    ck_assert_int_eq(netrt_st_write(tpath("other.safetensors"), &other, 1, err, sizeof err), 0);
    ck_main_fails("other.safetensors: missing tensor 'scale' (expected shape [1])", "--weights",
                  tpath("other.safetensors"), "--input", x, "--output", yspec);
    ck_assert(!exists(y));

    /* Unsupported input dtype. */
    int32_t ints[4] = {1, 2, 3, 4};
    write_npy(tpath("i32.npy"), 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 2, 2), }",
              ints, sizeof ints);
    ck_main_fails("i32.npy: input 'x' has dtype I32, expected F32, F64 or U8", "--weights", w, "--input",
                  tpath("i32.npy"));

    /* Labels must be integers. */
    ck_main_fails("labels must be a 1-d integer array", "--weights", w, "--input", x, "--labels", x);

    /* No samples. */
    int64_t zero[4] = {0, 1, 2, 2};
    ck_assert_int_eq(netrt_npy_write(tpath("x0.npy"), NULL, 4, zero, err, sizeof err), 0);
    ck_main_fails("no samples", "--weights", w, "--input", tpath("x0.npy"));

    /* An output that cannot be written. */
    snprintf(yspec, sizeof yspec, "y=%s", tpath("nodir/y.npy"));
    ck_main_fails("nodir/y.npy", "--weights", w, "--input", x, "--output", yspec);

    /* init failing. */
    init_fail = 1;
    ck_main_fails("cannot initialize", "--weights", w, "--input", x);
    init_fail = 0;

    /* --help succeeds and names the input. */
    int rc = run_main(&doubler, out, sizeof out, errout, sizeof errout, "--help", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "input  x: [S, 1, 2, 2]"));
}
END_TEST

/* Embedded weights: --weights is optional but still overrides. */
/* ---- --check-numerics ------------------------------------------------------------ */

START_TEST(check_finite_messages) {
    float v[6] = {1, 2, 3, 4, NAN, 6};
    netrt_numerics_reset();
    ck_assert_ptr_null(netrt_numerics_error());
    ck_assert_int_eq(netrt_check_finite(v, 4, 0, "the output", "conv", "c", "m.net:1"), 0);
    ck_assert_int_eq(netrt_check_finite(v, 6, 0, "output 2", "bn_fold", "bn", "m.net:2"), -1);
    ck_assert_str_eq(netrt_numerics_error(), "numerics: NaN in output 2 of bn_fold \"bn\" (m.net:2), element 4");
    /* The first failure is kept, and every later check fails. */
    ck_assert_int_eq(netrt_check_finite(v, 4, 0, "the output", "conv", "c", "m.net:1"), -1);
    ck_assert_str_eq(netrt_numerics_error(), "numerics: NaN in output 2 of bn_fold \"bn\" (m.net:2), element 4");

    /* Per sample: rows map to samples through the batch's index; rows past
     * the batch's count (padding) are not checked. */
    netrt_numerics_reset();
    int64_t index[3] = {7, 3, 9};
    netrt_numerics_batch("test sample", index, 1, 2);
    ck_assert_int_eq(netrt_check_finite(v, 6, 2, "the output", "relu", "r", "m.net:3"), 0);
    v[3] = -INFINITY;
    ck_assert_int_eq(netrt_check_finite(v, 6, 2, "the output", "relu", "r", "m.net:3"), -1);
    ck_assert_str_eq(netrt_numerics_error(),
                     "numerics: -Inf in the output of relu \"r\" (m.net:3), test sample 9, element 1");
    netrt_numerics_reset();
    v[3] = INFINITY;
    ck_assert_int_eq(netrt_check_finite(v, 6, 3, "the updated 'w'", "sgd_update", "w", "m.net:4"), -1);
    ck_assert_str_eq(netrt_numerics_error(),
                     "numerics: Inf in the updated 'w' of sgd_update \"w\" (m.net:4), sample 1, element 0");
    netrt_numerics_reset();
    ck_assert_ptr_null(netrt_numerics_error());

    /* The same over doubles (netc gradcheck's double build): a value beyond
     * float's range is finite there. */
    double d[4] = {1, 1e300, 3, -INFINITY};
    ck_assert_int_eq(netrt_check_finite_f64(d, 3, 0, "the output", "conv", "c", "m.net:1"), 0);
    ck_assert_int_eq(netrt_check_finite_f64(d, 4, 2, "the output", "conv", "c", "m.net:1"), -1);
    ck_assert_str_eq(netrt_numerics_error(), "numerics: -Inf in the output of conv \"c\" (m.net:1), sample 1, element 1");
    netrt_numerics_reset();
}
END_TEST

/* A fake model computing r = 1 / x, checked when its flag is on: the zero
 * padding of the last batch makes Inf there, which must not count. */
static bool recip_check;
static float r_buf[B * PER];
static netrt_tensor recip_outputs[1] = {{"r", 4, {B, 1, 2, 2}, r_buf}};
static void recip_run(void) {
    for (int i = 0; i < B * PER; i++) r_buf[i] = 1.0f / x_buf[i];
    if (recip_check && netrt_check_finite(r_buf, B * PER, PER, "the output", "recip", "recip0", "recip.net:3"))
        return;
}
static netrt_model recip = {
    .name = "recip", .source = "recip.net", .batch = B,
    .ninputs = 1, .inputs = doubler_inputs, .noutputs = 1, .outputs = recip_outputs,
    .embedded = true, .run = recip_run, .check_numerics = &recip_check,
};

START_TEST(main_check_numerics) {
    enum { S = 6 }; /* batches of 4 and 2 + 2 padding rows */
    float d[S * PER];
    for (int i = 0; i < S * PER; i++) d[i] = 1.0f + (float)i;
    int64_t shape[4] = {S, 1, 2, 2};
    const char *x = tpath("cn_x.npy"), *bad = tpath("cn_bad.npy"), *r = tpath("cn_r.npy");
    ck_assert_int_eq(netrt_npy_write(x, d, 4, shape, err, sizeof err), 0);
    d[5 * PER + 2] = 0;
    ck_assert_int_eq(netrt_npy_write(bad, d, 4, shape, err, sizeof err), 0);

    ck_assert_int_eq(run_main(&recip, out, sizeof out, errout, sizeof errout, "--input", x, "--output", r,
                              "--check-numerics", NULL),
                     0);
    ck_assert(exists(r));
    unlink(r);
    ck_assert_int_eq(run_main(&recip, out, sizeof out, errout, sizeof errout, "--input", bad, "--output", r,
                              "--check-numerics", NULL),
                     1);
    ck_assert_str_eq(errout, "prog: error: numerics: Inf in the output of recip \"recip0\" (recip.net:3), "
                             "sample 5, element 2\n");
    ck_assert(!exists(r));
    /* Off: the Inf is written. */
    ck_assert_int_eq(run_main(&recip, out, sizeof out, errout, sizeof errout, "--input", bad, "--output", r, NULL),
                     0);
    ck_assert(!recip_check);
    ck_assert(exists(r));
    /* A model without the flag. */
    const char *w = write_scale(1.0f);
    ck_assert_int_eq(run_main(&doubler, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x,
                              "--check-numerics", NULL),
                     1);
    ck_assert_str_eq(errout, "prog: error: --check-numerics: this program was built without numerics checks\n");
}
END_TEST

START_TEST(main_embedded) {
    netrt_model m = doubler;
    m.embedded = true;
    m.noutputs = 1; /* only y, so --output needs no name */
    const char *x = write_input("xe.npy", 3);
    scale[0] = 0;
    prepares = 0;
    int rc = run_main(&m, out, sizeof out, errout, sizeof errout, "--input", x, "--output",
                      tpath("ye.npy"), NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    ck_assert_int_eq(prepares, 1);
    ck_assert(exists(tpath("ye.npy")));
    const char *w = write_scale(5.0f);
    rc = run_main(&m, out, sizeof out, errout, sizeof errout, "--weights", w, "--input", x, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_float_eq(scale[0], 5.0f);
}
END_TEST

/* Two inputs: names required, sample counts must agree. */
static float a_buf[2 * 3], b_buf[2 * 3], o_buf[2 * 3];
static netrt_tensor two_inputs[2] = {{"a", 2, {2, 3}, a_buf}, {"b", 2, {2, 3}, b_buf}};
static netrt_tensor two_outputs[1] = {{"sum", 2, {2, 3}, o_buf}};
static void two_run(void) {
    for (int i = 0; i < 6; i++) o_buf[i] = a_buf[i] + b_buf[i];
}
static const netrt_model two = {
    .name = "two", .batch = 2, .embedded = true,
    .ninputs = 2, .inputs = two_inputs, .noutputs = 1, .outputs = two_outputs, .run = two_run,
};

START_TEST(main_two_inputs) {
    float a[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double b[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
    int64_t s3[2] = {3, 3}, s2[2] = {2, 3};
    const char *pa = tpath("a.npy"), *pb = tpath("b.npy"), *pb2 = tpath("b2.npy");
    ck_assert_int_eq(netrt_npy_write(pa, a, 2, s3, err, sizeof err), 0);
    write_npy(pb, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }", b, sizeof b);
    ck_assert_int_eq(netrt_npy_write(pb2, a, 2, s2, err, sizeof err), 0);
    char sa[600], sb[600], sb2[600];
    snprintf(sa, sizeof sa, "a=%s", pa);
    snprintf(sb, sizeof sb, "b=%s", pb);
    snprintf(sb2, sizeof sb2, "b=%s", pb2);
    int rc = run_main(&two, out, sizeof out, errout, sizeof errout, "--input", sb, "--input", sa,
                      "--output", tpath("sum.npy"), NULL);
    ck_assert_msg(rc == 0, "stderr: %s", errout);
    netrt_array o;
    ck_assert_int_eq(netrt_npy_read(tpath("sum.npy"), &o, err, sizeof err), 0);
    ck_assert_int_eq(o.shape[0], 3);
    for (int i = 0; i < 9; i++) ck_assert_float_eq(((float *)o.data)[i], (float)(a[i] + b[i]));
    netrt_array_free(&o);

    rc = run_main(&two, out, sizeof out, errout, sizeof errout, "--input", sa, "--input", sb2, NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(errout, "input 'b' has 2 samples but input 'a' has 3"), "%s", errout);
    rc = run_main(&two, out, sizeof out, errout, sizeof errout, "--input", pa, NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(errout, "the model has 2 inputs"), "%s", errout);
    rc = run_main(&two, out, sizeof out, errout, sizeof errout, "--input", sa, NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(errout, "missing --input b=FILE"), "%s", errout);
}
END_TEST

/* ---- main ------------------------------------------------------------------ */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static Suite *runtime_suite(void) {
    Suite *s = suite_create("runtime");
    TCase *io = tcase_create("io");
    tcase_add_test(io, npy_round_trip);
    tcase_add_test(io, npy_dtypes);
    tcase_add_test(io, npy_errors);
    tcase_add_test(io, st_round_trip);
    tcase_add_test(io, st_metadata);
    tcase_add_test(io, st_errors);
    tcase_add_test(io, idx_plain_and_gzip);
    tcase_add_test(io, idx_errors);
    suite_add_tcase(s, io);
    TCase *misc = tcase_create("misc");
    tcase_add_test(misc, rng_determinism_and_range);
    tcase_add_test(misc, alloc_and_shapes);
    tcase_add_test(misc, progress_not_tty);
    suite_add_tcase(s, misc);
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 30);
    tcase_add_test(model, load_params_ok_and_errors);
    tcase_add_test(model, load_params_dtypes);
    tcase_add_test(model, main_end_to_end);
    tcase_add_test(model, main_uint8_idx_and_labels);
    tcase_add_test(model, main_errors);
    tcase_add_test(model, main_repeat);
    tcase_add_test(model, check_finite_messages);
    tcase_add_test(model, main_check_numerics);
    tcase_add_test(model, main_embedded);
    tcase_add_test(model, main_two_inputs);
    suite_add_tcase(s, model);
    return s;
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/netrt-test-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree(tmpdir);
    return failed == 0 ? 0 : 1;
}
