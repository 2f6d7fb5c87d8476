/* IDX (the MNIST format), plain or gzip-compressed, and netrt_array_read,
 * which picks .npy or IDX by a file's first bytes.
 *
 * IDX: the bytes 0 0, a type byte, a rank byte, then rank big-endian u32
 * dimensions and the big-endian data.  Gzip is detected by its magic bytes
 * (1f 8b), never by the file name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "netrt.h"

/* A byte source: a plain FILE or a zlib stream. */
typedef struct {
    FILE *f;
    gzFile gz;
} source;

/* Reads up to n bytes; returns how many, or -1 on an I/O or gzip error (a
 * gzip stream that ends early is an error, not the end of the data). */
static int64_t src_read(source *s, void *buf, size_t n) {
    if (!s->gz) {
        size_t got = fread(buf, 1, n, s->f);
        return got < n && ferror(s->f) ? -1 : (int64_t)got;
    }
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? 1u << 30 : (unsigned)(n - got);
        int k = gzread(s->gz, (char *)buf + got, chunk);
        if (k < 0) return -1;
        if (k == 0) break;
        got += (size_t)k;
    }
    int code = Z_OK;
    if (got < n) gzerror(s->gz, &code);
    return code == Z_OK ? (int64_t)got : -1;
}

/* The message after a failed src_read. */
static int read_error(source *s, const char *path, char *err, size_t errlen) {
    if (!s->gz) return netrt_errorf(err, errlen, "%s: read error: %s", path, strerror(errno));
    int code;
    const char *msg = gzerror(s->gz, &code);
    if (code == Z_BUF_ERROR)
        return netrt_errorf(err, errlen, "%s: truncated gzip file: the compressed data ends early", path);
    /* zlib's message may start with the path again */
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0) msg += n + 2;
    return netrt_errorf(err, errlen, "%s: corrupted gzip data: %s", path, msg);
}

static int idx_dtype(unsigned char type, netrt_dtype *t) {
    switch (type) {
    case 0x08: *t = NETRT_U8; return 0;
    case 0x09: *t = NETRT_I8; return 0;
    case 0x0B: *t = NETRT_I16; return 0;
    case 0x0C: *t = NETRT_I32; return 0;
    case 0x0D: *t = NETRT_F32; return 0;
    case 0x0E: *t = NETRT_F64; return 0;
    }
    return -1;
}

/* Reads header and data from an open source into out. */
static int idx_parse(source *s, const char *path, netrt_array *out, char *err, size_t errlen) {
    unsigned char head[4], dims[4 * 255];
    int64_t got = src_read(s, head, 4);
    if (got < 0) return read_error(s, path, err, errlen);
    if (got < 4)
        return netrt_errorf(err, errlen, "%s: truncated IDX header: %lld bytes%s, fewer than the 4 of its "
                            "magic, type and rank",
                            path, (long long)got, s->gz ? " after gunzip" : "");
    if (head[0] != 0 || head[1] != 0)
        return netrt_errorf(err, errlen, "%s: not an IDX file: it starts with %02x %02x%s, not 00 00", path,
                            head[0], head[1], s->gz ? " (after gunzip)" : "");
    if (idx_dtype(head[2], &out->dtype) < 0)
        return netrt_errorf(err, errlen,
                            "%s: unknown IDX type code 0x%02x (0x08 uint8, 0x09 int8, 0x0b int16, "
                            "0x0c int32, 0x0d float32 or 0x0e float64)",
                            path, head[2]);
    int rank = head[3];
    if (rank < 1 || rank > NETRT_MAX_RANK)
        return netrt_errorf(err, errlen, "%s: IDX rank %d is not supported (1 to %d)", path, rank,
                            NETRT_MAX_RANK);
    got = src_read(s, dims, 4 * (size_t)rank);
    if (got < 0) return read_error(s, path, err, errlen);
    if (got < 4 * rank)
        return netrt_errorf(err, errlen, "%s: truncated IDX header: %d dimensions need %d bytes, got %lld",
                            path, rank, 4 * rank, (long long)got);
    out->rank = rank;
    for (int i = 0; i < rank; i++) {
        const unsigned char *d = dims + 4 * i;
        out->shape[i] = (int64_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
                                  (uint32_t)d[2] << 8 | d[3]);
    }
    size_t want;
    char sh[160];
    if (!netrt_nbytes(out->dtype, rank, out->shape, &want))
        return netrt_errorf(err, errlen, "%s: IDX shape %s is too large", path,
                            netrt_shape_str(rank, out->shape, sh, sizeof sh));

    /* Grow the buffer as data arrives rather than trusting the header with
     * one huge allocation (a small corrupt .gz could claim gigabytes). */
    size_t cap = want < (1u << 20) ? want : 1u << 20, have = 0;
    unsigned char *data = malloc(cap ? cap : 1);
    for (;;) {
        if (!data) return netrt_errorf(err, errlen, "%s: out of memory", path);
        got = src_read(s, data + have, cap - have);
        if (got < 0) {
            free(data);
            return read_error(s, path, err, errlen);
        }
        have += (size_t)got;
        if (have < cap || cap == want) break;
        size_t next = cap > want / 2 ? want : cap * 2;
        unsigned char *bigger = realloc(data, next);
        if (!bigger) free(data);
        data = bigger;
        cap = next;
    }
    if (have < want) {
        free(data);
        return netrt_errorf(err, errlen,
                            "%s: truncated IDX data: shape %s of %s needs %zu bytes, the %sfile "
                            "holds %zu",
                            path, netrt_shape_str(rank, out->shape, sh, sizeof sh),
                            netrt_dtype_name(out->dtype), want, s->gz ? "decompressed " : "", have);
    }
    unsigned char extra;
    got = src_read(s, &extra, 1);
    if (got != 0) {
        free(data);
        if (got < 0) return read_error(s, path, err, errlen);
        return netrt_errorf(err, errlen, "%s: trailing bytes after the %zu bytes of IDX data of shape %s",
                            path, want, netrt_shape_str(rank, out->shape, sh, sizeof sh));
    }
    size_t esize = netrt_dtype_size(out->dtype);
    if (esize > 1 && netrt_host_is_le()) netrt_bswap(data, want / esize, esize);
    out->data = data;
    out->nbytes = want;
    return 0;
}

int netrt_idx_read(const char *path, netrt_array *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    source s = {fopen(path, "rb"), NULL};
    if (!s.f) return netrt_errorf(err, errlen, "%s: %s", path, strerror(errno));
    unsigned char magic[2] = {0, 0};
    size_t n = fread(magic, 1, 2, s.f);
    if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        fclose(s.f);
        s.f = NULL;
        s.gz = gzopen(path, "rb");
        if (!s.gz) return netrt_errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    } else {
        rewind(s.f);
    }
    int rc = idx_parse(&s, path, out, err, errlen);
    if (s.gz) gzclose(s.gz);
    if (s.f) fclose(s.f);
    if (rc < 0) memset(out, 0, sizeof *out);
    return rc;
}

int netrt_array_read(const char *path, netrt_array *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return netrt_errorf(err, errlen, "%s: %s", path, strerror(errno));
    unsigned char magic[6] = {0};
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (n == 6 && memcmp(magic, "\x93NUMPY", 6) == 0) return netrt_npy_read(path, out, err, errlen);
    if (n >= 2 && ((magic[0] == 0x1f && magic[1] == 0x8b) || (magic[0] == 0 && magic[1] == 0)))
        return netrt_idx_read(path, out, err, errlen);
    if (n == 0) return netrt_errorf(err, errlen, "%s: the file is empty (expected a .npy or IDX file)", path);
    char got[40];
    return netrt_errorf(err, errlen,
                        "%s: neither a .npy nor an IDX file: it starts with %s (.npy files start with "
                        "\"\\x93NUMPY\", IDX files with 00 00, gzip with 1f 8b)",
                        path, netrt_bytes_str(magic, n, got, sizeof got));
}
