/* safetensors reading and writing.
 *
 * Format: an 8-byte little-endian header size N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *    "__metadata__": {...}}
 * then the data, which the tensors must cover exactly, without overlap.
 * The JSON is parsed with jansson. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "netrt.h"

static int st_dtype(const char *s, netrt_dtype *t) {
    static const netrt_dtype all[] = {NETRT_F32, NETRT_F64, NETRT_F16, NETRT_BF16, NETRT_U8,
                                      NETRT_I8,  NETRT_I16, NETRT_I32, NETRT_I64,  NETRT_BOOL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, netrt_dtype_name(all[i])) == 0) {
            *t = all[i];
            return 0;
        }
    return -1;
}

/* "an array", "a string", ... for messages. */
static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* A JSON integer >= 0. */
static bool json_uint(const json_t *v, int64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* Fills e (but not its name) from one header entry; begin/end are the data
 * offsets, checked against the data size and the shape. */
static int parse_entry(const char *path, const char *name, json_t *v, size_t datasize,
                       netrt_st_entry *e, int64_t *begin, int64_t *end, char *err,
                       size_t errlen) {
    if (!json_is_object(v))
        return netrt_errorf(err, errlen,
                            "%s: tensor '%s': its header entry is %s, not an object with \"dtype\", "
                            "\"shape\" and \"data_offsets\"",
                            path, name, json_kind(v));
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dtype))
        return netrt_errorf(err, errlen, "%s: tensor '%s': missing or non-string \"dtype\"", path,
                            name);
    if (st_dtype(json_string_value(dtype), &e->dtype) < 0)
        return netrt_errorf(err, errlen,
                            "%s: tensor '%s': unsupported dtype '%s' (known: F32, F64, F16, BF16, U8, "
                            "I8, I16, I32, I64, BOOL)",
                            path, name, json_string_value(dtype));
    if (!json_is_array(shape))
        return netrt_errorf(err, errlen, "%s: tensor '%s': missing or non-array \"shape\"", path,
                            name);
    if (json_array_size(shape) > NETRT_MAX_RANK)
        return netrt_errorf(err, errlen, "%s: tensor '%s': rank %zu is above %d", path, name,
                            json_array_size(shape), NETRT_MAX_RANK);
    e->rank = (int)json_array_size(shape);
    for (int i = 0; i < e->rank; i++)
        if (!json_uint(json_array_get(shape, (size_t)i), &e->shape[i]))
            return netrt_errorf(err, errlen, "%s: tensor '%s': shape entries must be integers >= 0",
                                path, name);
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !json_uint(json_array_get(offs, 0), begin) || !json_uint(json_array_get(offs, 1), end))
        return netrt_errorf(err, errlen,
                            "%s: tensor '%s': \"data_offsets\" must be [begin, end], two integers >= 0",
                            path, name);
    if (*begin > *end)
        return netrt_errorf(err, errlen,
                            "%s: tensor '%s': data offsets [%lld, %lld) end before they begin", path,
                            name, (long long)*begin, (long long)*end);
    if ((uint64_t)*end > datasize)
        return netrt_errorf(err, errlen,
                            "%s: tensor '%s': data offsets [%lld, %lld) exceed the %zu bytes of data "
                            "after the header (truncated file?)",
                            path, name, (long long)*begin, (long long)*end, datasize);
    size_t want;
    char sh[160];
    netrt_shape_str(e->rank, e->shape, sh, sizeof sh);
    if (!netrt_nbytes(e->dtype, e->rank, e->shape, &want))
        return netrt_errorf(err, errlen, "%s: tensor '%s': shape %s is too large", path, name, sh);
    if ((uint64_t)(*end - *begin) != want)
        return netrt_errorf(err, errlen,
                            "%s: tensor '%s': data offsets [%lld, %lld) hold %lld bytes, but shape %s "
                            "of %s needs %zu",
                            path, name, (long long)*begin, (long long)*end,
                            (long long)(*end - *begin), sh, netrt_dtype_name(e->dtype), want);
    e->nbytes = want;
    return 0;
}

/* For sorting tensors by their data offsets. */
typedef struct {
    int64_t begin, end;
    int index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index - y->index;
}

/* The tensors, sorted by offset, must tile [0, datasize) exactly. */
static int check_coverage(const char *path, const netrt_st_entry *es, span *spans, int n,
                          size_t datasize, char *err, size_t errlen) {
    qsort(spans, (size_t)n, sizeof *spans, span_cmp);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin < at)
            return netrt_errorf(err, errlen, "%s: tensors '%s' and '%s' overlap ([%lld, %lld) and [%lld, %lld))",
                                path, es[spans[i - 1].index].name, es[spans[i].index].name,
                                (long long)spans[i - 1].begin, (long long)spans[i - 1].end,
                                (long long)spans[i].begin, (long long)spans[i].end);
        if (spans[i].begin > at) break;
        at = spans[i].end;
    }
    if ((uint64_t)at != datasize) {
        int64_t next = datasize;
        for (int i = 0; i < n; i++)
            if (spans[i].begin > at) {
                next = spans[i].begin;
                break;
            }
        return netrt_errorf(err, errlen, "%s: data bytes [%lld, %lld) belong to no tensor", path,
                            (long long)at, (long long)next);
    }
    return 0;
}

/* Parses the JSON header of a file already in f->buffer. */
/* The header's "__metadata__": an object of strings (the format's), kept as
 * key, value pairs in one allocation. */
static int read_metadata(const char *path, netrt_st_file *f, json_t *meta, char *err, size_t errlen) {
    if (!json_is_object(meta))
        return netrt_errorf(err, errlen, "%s: __metadata__ is %s, not an object of strings", path, json_kind(meta));
    size_t n = 0, bytes = 0;
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v))
            return netrt_errorf(err, errlen, "%s: __metadata__ entry '%s' is %s, not a string", path, key, json_kind(v));
        n++;
        bytes += strlen(key) + strlen(json_string_value(v)) + 2;
    }
    if (n > 4096) return netrt_errorf(err, errlen, "%s: too many __metadata__ entries", path);
    f->meta = malloc(2 * n * sizeof *f->meta + bytes + 1);
    if (!f->meta) return netrt_errorf(err, errlen, "%s: out of memory", path);
    char *p = (char *)(f->meta + 2 * n);
    int i = 0;
    json_object_foreach(meta, key, v) {
        const char *pair[2] = {key, json_string_value(v)};
        for (int k = 0; k < 2; k++) {
            size_t len = strlen(pair[k]) + 1;
            memcpy(p, pair[k], len);
            f->meta[i++] = p;
            p += len;
        }
    }
    f->nmeta = (int)n;
    return 0;
}

const char *netrt_st_meta(const netrt_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

static int parse_header(const char *path, netrt_st_file *f, size_t hlen, char *err,
                        size_t errlen) {
    const char *text = (const char *)f->buffer + 8;
    size_t datasize = f->size - 8 - hlen;
    json_error_t jerr;
    json_t *root = json_loadb(text, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return netrt_errorf(err, errlen, "%s: invalid JSON header: %s (line %d, column %d)", path,
                            jerr.text, jerr.line, jerr.column);
    int rc = -1;
    span *spans = NULL;
    if (!json_is_object(root)) {
        netrt_errorf(err, errlen, "%s: the JSON header is %s, not an object of tensors", path,
                     json_kind(root));
        goto done;
    }

    /* One allocation holds the entries and, after them, their names. */
    size_t count = 0, names = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (read_metadata(path, f, v, err, errlen) < 0) goto done;
            continue;
        }
        count++;
        names += strlen(key) + 1;
    }
    if (count > (size_t)INT32_MAX) {
        netrt_errorf(err, errlen, "%s: too many tensors", path);
        goto done;
    }
    f->entries = calloc(1, count * sizeof *f->entries + names + 1);
    spans = calloc(count ? count : 1, sizeof *spans);
    if (!f->entries || !spans) {
        netrt_errorf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    char *namep = (char *)(f->entries + count);
    const unsigned char *data = (const unsigned char *)f->buffer + 8 + hlen;
    int n = 0;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        netrt_st_entry *e = &f->entries[n];
        if (parse_entry(path, key, v, datasize, e, &spans[n].begin, &spans[n].end, err, errlen) <
            0)
            goto done;
        size_t len = strlen(key) + 1;
        memcpy(namep, key, len);
        e->name = namep;
        namep += len;
        e->data = data + spans[n].begin;
        spans[n].index = n;
        n++;
    }
    f->count = n;
    rc = check_coverage(path, f->entries, spans, n, datasize, err, errlen);
done:
    free(spans);
    json_decref(root);
    return rc;
}

/* Validates the safetensors bytes in f->buffer (f->size of them), naming
 * `what` in messages: shared by the file and the memory paths, so that a
 * buffer gets every check a file does. */
static int st_validate(const char *what, netrt_st_file *f, char *err, size_t errlen) {
    const unsigned char *b = f->buffer;
    if (f->size < 8)
        return netrt_errorf(err, errlen,
                            "%s: truncated: %zu bytes, too few for the 8-byte header size that "
                            "starts a safetensors file",
                            what, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    if (hlen > f->size - 8)
        return netrt_errorf(err, errlen,
                            "%s: header size %llu exceeds the %zu bytes that follow it (truncated, "
                            "or not a safetensors file)",
                            what, (unsigned long long)hlen, f->size - 8);
    return parse_header(what, f, (size_t)hlen, err, errlen);
}

int netrt_st_open(const char *path, netrt_st_file *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (netrt_read_file(path, &out->buffer, &out->size, err, errlen) < 0) return -1;
    int rc = st_validate(path, out, err, errlen);
    if (rc < 0) netrt_st_close(out);
    return rc;
}

int netrt_st_parse(const void *data, size_t size, const char *what, netrt_st_file *out, char *err,
                   size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!data && size > 0) return netrt_errorf(err, errlen, "%s: no buffer (NULL data)", what);
    out->buffer = (void *)data; /* borrowed: never written, not freed */
    out->size = data ? size : 0;
    out->borrowed = true;
    int rc = st_validate(what, out, err, errlen);
    if (rc < 0) netrt_st_close(out);
    return rc;
}

void netrt_st_close(netrt_st_file *f) {
    if (!f) return;
    free(f->entries);
    free(f->meta);
    if (!f->borrowed) free(f->buffer);
    memset(f, 0, sizeof *f);
}

const netrt_st_entry *netrt_st_find(const netrt_st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

/* Builds the JSON header for netrt_st_write; NULL after an error. */
static char *write_header(const char *path, const netrt_tensor *ts, int n, const char *const *meta_kv,
                          int nmeta, char *err, size_t errlen) {
    json_t *root = json_object(), *meta = json_pack("{s:s}", "format", "pt");
    char *text = NULL;
    bool ok = root && meta;
    for (int i = 0; ok && i < nmeta; i++) ok = json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1])) == 0;
    if (!ok || json_object_set_new(root, "__metadata__", meta) < 0) {
        json_decref(root);
        netrt_errorf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    size_t offset = 0, bytes;
    for (int i = 0; i < n; i++) {
        const netrt_tensor *t = &ts[i];
        char sh[160];
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0) {
            netrt_errorf(err, errlen, "%s: tensor %d has an invalid name", path, i);
            goto fail;
        }
        if (json_object_get(root, t->name)) {
            netrt_errorf(err, errlen, "%s: duplicate tensor '%s'", path, t->name);
            goto fail;
        }
        if (!netrt_nbytes(NETRT_F32, t->rank, t->shape, &bytes) || offset > SIZE_MAX - bytes) {
            int r = t->rank < 0 ? 0 : t->rank > NETRT_MAX_RANK ? NETRT_MAX_RANK : t->rank;
            netrt_errorf(err, errlen, "%s: tensor '%s': invalid shape %s (rank %d)", path, t->name,
                         netrt_shape_str(r, t->shape, sh, sizeof sh), t->rank);
            goto fail;
        }
        if (bytes > 0 && !t->data) {
            netrt_errorf(err, errlen, "%s: tensor '%s' has no data", path, t->name);
            goto fail;
        }
        json_t *shape = json_array();
        for (int d = 0; shape && d < t->rank; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape,
                              "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes));
        if (!e || json_object_set_new(root, t->name, e) < 0) {
            netrt_errorf(err, errlen, "%s: tensor '%s': cannot encode the name", path, t->name);
            goto fail;
        }
        offset += bytes;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (!text) netrt_errorf(err, errlen, "%s: out of memory", path);
fail:
    json_decref(root);
    return text;
}

int netrt_st_write(const char *path, const netrt_tensor *ts, int n, char *err, size_t errlen) {
    return netrt_st_write_meta(path, ts, n, NULL, 0, err, errlen);
}

int netrt_st_write_meta(const char *path, const netrt_tensor *ts, int n, const char *const *meta_kv, int nmeta,
                        char *err, size_t errlen) {
    char *text = write_header(path, ts, n, meta_kv, nmeta, err, errlen);
    if (!text) return -1;
    /* Pad the header with spaces so the data starts 8-byte aligned. */
    size_t len = strlen(text), hlen = (len + 7) / 8 * 8;
    unsigned char size[8];
    for (int i = 0; i < 8; i++) size[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    char *tmp;
    FILE *f = netrt_atomic_open(path, &tmp, err, errlen);
    if (!f) {
        free(text);
        return -1;
    }
    bool ok = fwrite(size, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t i = len; ok && i < hlen; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < n; i++)
        ok = netrt_write_f32le(f, ts[i].data, (size_t)netrt_numel(ts[i].rank, ts[i].shape));
    free(text);
    if (!ok) netrt_errorf(err, errlen, "%s: write error", path);
    return netrt_atomic_close(f, tmp, path, ok, err, errlen);
}
