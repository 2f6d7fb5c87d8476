/* .npy reading and writing.
 *
 * The parser is hand-written: the format is tiny (a magic string, a version,
 * a header length, and a Python dict literal with three fixed keys) and
 * Debian ships no C library for it, so a few dozen lines beat a dependency.
 * Only what numpy.save writes is accepted: the keys 'descr', 'fortran_order'
 * and 'shape', a string, a boolean and a tuple of integers. */
#include <string.h>
#include <stdlib.h>

#include "netrt.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* The dict parser works on [p, end) and reports errors through ctx. */
typedef struct {
    const char *p, *end;
    const char *path;
    char *err;
    size_t errlen;
} hdr;

/* "bad .npy header: <what>, found '<the next few characters>'" (or "found
 * the end of the header"); returns -1. */
static int hdr_error(hdr *h, const char *what) {
    char near[24];
    size_t n = 0;
    const char *q = h->p;
    for (; q < h->end && n < 16; q++) near[n++] = *q >= 32 && *q < 127 ? *q : '?';
    bool more = false; /* anything but blanks after the excerpt */
    for (; q < h->end && !more; q++) more = *q != ' ' && *q != '\n';
    while (n > 0 && near[n - 1] == ' ') n--;
    near[n] = '\0';
    if (n == 0)
        return netrt_errorf(h->err, h->errlen, "%s: bad .npy header: %s, found the end of the header",
                            h->path, what);
    return netrt_errorf(h->err, h->errlen, "%s: bad .npy header: %s, found '%s%s'", h->path, what,
                        near, more ? "..." : "");
}

static void skip_ws(hdr *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static bool eat(hdr *h, char c) {
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "...", no escapes) into buf. */
static int parse_str(hdr *h, char *buf, size_t n) {
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return hdr_error(h, "expected a string");
    const char *start = h->p;
    char q = *h->p++;
    size_t len = 0;
    while (h->p < h->end && *h->p != q) {
        if (len + 1 >= n || *h->p == '\\') {
            h->p = start;
            return hdr_error(h, "a string too long or with escapes");
        }
        buf[len++] = *h->p++;
    }
    if (h->p >= h->end) {
        h->p = start;
        return hdr_error(h, "an unterminated string");
    }
    h->p++;
    buf[len] = '\0';
    return 0;
}

static int parse_bool(hdr *h, bool *v) {
    skip_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
        h->p += 4;
        *v = true;
        return 0;
    }
    if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
        h->p += 5;
        *v = false;
        return 0;
    }
    return hdr_error(h, "expected True or False");
}

/* A tuple of non-negative integers: (), (3,), (2, 3) and trailing commas. */
static int parse_shape(hdr *h, int *rank, int64_t *shape) {
    if (!eat(h, '(')) return hdr_error(h, "expected a shape tuple");
    *rank = 0;
    for (;;) {
        if (eat(h, ')')) return 0;
        skip_ws(h);
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return hdr_error(h, "expected a dimension (an integer >= 0) in the shape");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return netrt_errorf(h->err, h->errlen, "%s: bad .npy header: dimension too large",
                                    h->path);
            v = v * 10 + (*h->p++ - '0');
        }
        if (*rank == NETRT_MAX_RANK)
            return netrt_errorf(h->err, h->errlen, "%s: rank above %d is not supported", h->path,
                                NETRT_MAX_RANK);
        shape[(*rank)++] = v;
        if (eat(h, ',')) continue;
        if (eat(h, ')')) return 0;
        return hdr_error(h, "expected ',' or ')' in the shape");
    }
}

static int parse_descr(const char *d, netrt_dtype *t) {
    static const struct {
        const char *code;
        netrt_dtype t;
    } codes[] = {{"f4", NETRT_F32}, {"f8", NETRT_F64}, {"f2", NETRT_F16}, {"u1", NETRT_U8},
                 {"i1", NETRT_I8},  {"i2", NETRT_I16}, {"i4", NETRT_I32}, {"i8", NETRT_I64},
                 {"b1", NETRT_BOOL}};
    if (strlen(d) != 3 || (d[0] != '<' && d[0] != '=' && d[0] != '|')) return -1;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(d + 1, codes[i].code) == 0) {
            *t = codes[i].t;
            return 0;
        }
    return -1;
}

/* Parses the header dict into out's dtype and shape. */
static int parse_header(hdr *h, netrt_array *out) {
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    char key[32], descr[32];
    if (!eat(h, '{')) return hdr_error(h, "expected a dict");
    while (!eat(h, '}')) {
        if (parse_str(h, key, sizeof key) < 0) return -1;
        if (!eat(h, ':')) return hdr_error(h, "expected ':'");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (parse_str(h, descr, sizeof descr) < 0) return -1;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (parse_bool(h, &fortran) < 0) return -1;
            have_order = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (parse_shape(h, &out->rank, out->shape) < 0) return -1;
            have_shape = true;
        } else {
            return netrt_errorf(h->err, h->errlen,
                                "%s: bad .npy header: unexpected or repeated key '%s' (expected "
                                "'descr', 'fortran_order' and 'shape')",
                                h->path, key);
        }
        if (!eat(h, ',')) {
            if (eat(h, '}')) break;
            return hdr_error(h, "expected ',' or '}'");
        }
    }
    skip_ws(h);
    if (h->p != h->end) return hdr_error(h, "expected the end of the header after the dict");
    if (!have_descr || !have_order || !have_shape)
        return netrt_errorf(h->err, h->errlen, "%s: bad .npy header: missing '%s'", h->path,
                            !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    if (fortran)
        return netrt_errorf(h->err, h->errlen,
                            "%s: fortran_order arrays are not supported (save in C order)",
                            h->path);
    if (descr[0] == '>' && descr[1] != '\0')
        return netrt_errorf(h->err, h->errlen, "%s: big-endian dtype '%s' is not supported",
                            h->path, descr);
    if (parse_descr(descr, &out->dtype) < 0)
        return netrt_errorf(h->err, h->errlen,
                            "%s: unsupported dtype '%s' (supported: '<f4', '<f8', '<f2', '|u1', "
                            "'|i1', '<i2', '<i4', '<i8', '|b1')",
                            h->path, descr);
    return 0;
}

int netrt_npy_read(const char *path, netrt_array *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t size;
    if (netrt_read_file(path, (void **)&buf, &size, err, errlen) < 0) return -1;

    int rc = -1;
    size_t start, hlen;
    if (size == 0) {
        netrt_errorf(err, errlen, "%s: the file is empty (expected a .npy file)", path);
        goto done;
    }
    if (size < 6 || memcmp(buf, npy_magic, 6) != 0) {
        char got[40];
        netrt_errorf(err, errlen, "%s: not a .npy file: it starts with %s, not the magic \"\\x93NUMPY\"",
                     path, netrt_bytes_str(buf, size < 6 ? size : 6, got, sizeof got));
        goto done;
    }
    if (size < 10) {
        netrt_errorf(err, errlen, "%s: truncated .npy header: %zu bytes", path, size);
        goto done;
    }
    if (buf[6] == 1) {
        start = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (size < 12) {
            netrt_errorf(err, errlen, "%s: truncated .npy header: %zu bytes", path, size);
            goto done;
        }
        start = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
    } else {
        netrt_errorf(err, errlen, "%s: unsupported .npy format version %d.%d (1.0, 2.0 and 3.0 are "
                     "supported)", path, buf[6], buf[7]);
        goto done;
    }
    if (hlen > size - start) {
        netrt_errorf(err, errlen, "%s: truncated .npy header: it declares %zu bytes, the file holds %zu",
                     path, hlen, size - start);
        goto done;
    }
    hdr h = {(const char *)buf + start, (const char *)buf + start + hlen, path, err, errlen};
    if (parse_header(&h, out) < 0) goto done;

    size_t want, have = size - start - hlen;
    char sh[160];
    if (!netrt_nbytes(out->dtype, out->rank, out->shape, &want)) {
        netrt_errorf(err, errlen, "%s: shape %s is too large", path,
                     netrt_shape_str(out->rank, out->shape, sh, sizeof sh));
        goto done;
    }
    if (want != have) {
        netrt_errorf(err, errlen, "%s: %s: shape %s of %s needs %zu bytes of data, the file holds %zu",
                     path, want > have ? "truncated data" : "trailing bytes after the data",
                     netrt_shape_str(out->rank, out->shape, sh, sizeof sh),
                     netrt_dtype_name(out->dtype), want, have);
        goto done;
    }
    /* Keep the file buffer as the array: move the data to its start. */
    memmove(buf, buf + start + hlen, want);
    size_t esize = netrt_dtype_size(out->dtype);
    if (esize > 1 && !netrt_host_is_le()) netrt_bswap(buf, want / esize, esize);
    out->data = buf;
    out->nbytes = want;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    if (rc < 0) memset(out, 0, sizeof *out);
    return rc;
}

int netrt_npy_write(const char *path, const float *data, int rank, const int64_t *shape, char *err,
                    size_t errlen) {
    size_t nbytes;
    if (!netrt_nbytes(NETRT_F32, rank, shape, &nbytes))
        return netrt_errorf(err, errlen, "%s: invalid shape", path);
    if (nbytes > 0 && !data) return netrt_errorf(err, errlen, "%s: no data", path);

    /* Version 1.0 header: the dict, padded with spaces and a final newline so
     * that magic + version + length + dict is a multiple of 64 bytes. */
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < rank; i++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", i ? ", " : "",
                        (long long)shape[i]);
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", rank == 1 ? "," : "");
    size_t total = (10 + (size_t)len + 1 + 63) / 64 * 64;
    size_t hlen = total - 10;
    memset(dict + len, ' ', hlen - (size_t)len - 1);
    dict[hlen - 1] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};

    char *tmp;
    FILE *f = netrt_atomic_open(path, &tmp, err, errlen);
    if (!f) return -1;
    bool ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(dict, 1, hlen, f) == hlen &&
              netrt_write_f32le(f, data, nbytes / sizeof(float));
    if (!ok) netrt_errorf(err, errlen, "%s: write error", path);
    return netrt_atomic_close(f, tmp, path, ok, err, errlen);
}
