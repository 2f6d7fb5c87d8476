/* libnetrt basics: aligned allocation, dtypes and shapes, error messages, and
 * the file helpers the readers and writers share (whole-file reads, atomic
 * writes through a temporary file and rename). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netrt.h"

/* ---- memory --------------------------------------------------------------- */

void *netrt_alloc(size_t bytes) {
    /* Round up to whole cache lines so vectorized loops may touch the tail. */
    if (bytes > SIZE_MAX - 63) return NULL;
    size_t n = bytes == 0 ? 64 : (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    memset(p, 0, n);
    return p;
}

void netrt_free(void *p) { free(p); }

/* ---- arrays --------------------------------------------------------------- */

const char *netrt_dtype_name(netrt_dtype t) {
    switch (t) {
    case NETRT_F32: return "F32";
    case NETRT_F64: return "F64";
    case NETRT_F16: return "F16";
    case NETRT_BF16: return "BF16";
    case NETRT_U8: return "U8";
    case NETRT_I8: return "I8";
    case NETRT_I16: return "I16";
    case NETRT_I32: return "I32";
    case NETRT_I64: return "I64";
    case NETRT_BOOL: return "BOOL";
    }
    return "?";
}

size_t netrt_dtype_size(netrt_dtype t) {
    switch (t) {
    case NETRT_F64: case NETRT_I64: return 8;
    case NETRT_F32: case NETRT_I32: return 4;
    case NETRT_F16: case NETRT_BF16: case NETRT_I16: return 2;
    case NETRT_U8: case NETRT_I8: case NETRT_BOOL: return 1;
    }
    return 0;
}

void netrt_array_free(netrt_array *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
    a->nbytes = 0;
}

int64_t netrt_numel(int rank, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    return n;
}

bool netrt_same_shape(int ra, const int64_t *a, int rb, const int64_t *b) {
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i]) return false;
    return true;
}

const char *netrt_shape_str(int rank, const int64_t *shape, char *buf, size_t n) {
    if (n == 0) return buf;
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < n) snprintf(buf + len, n - len, "]");
    return buf;
}

bool netrt_nbytes(netrt_dtype t, int rank, const int64_t *shape, size_t *out) {
    size_t n = netrt_dtype_size(t);
    if (rank < 0 || rank > NETRT_MAX_RANK) return false;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return false;
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && n > SIZE_MAX / d) return false;
        n *= (size_t)d;
    }
    /* Keep sizes representable as int64 too (file offsets, element counts). */
    if (n > (size_t)INT64_MAX) return false;
    *out = n;
    return true;
}

/* ---- errors and byte order ------------------------------------------------ */

int netrt_errorf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *netrt_bytes_str(const void *bytes, size_t n, char *buf, size_t len) {
    const unsigned char *b = bytes;
    size_t at = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    if (n == 0) {
        snprintf(buf, len, "(none)");
        return buf;
    }
    for (size_t i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%02x", i ? " " : "", b[i]);
    return buf;
}

bool netrt_host_is_le(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void netrt_bswap(void *data, size_t n, size_t size) {
    unsigned char *p = data;
    for (size_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ---- files ---------------------------------------------------------------- */

int netrt_read_file(const char *path, void **buf, size_t *size, char *err, size_t errlen) {
    *buf = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return netrt_errorf(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    size_t cap = 1 << 16;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < SIZE_MAX - 1)
        cap = (size_t)st.st_size + 1; /* +1 to see EOF without growing */
    unsigned char *data = malloc(cap);
    size_t len = 0;
    for (;;) {
        if (!data) {
            fclose(f);
            return netrt_errorf(err, errlen, "%s: out of memory", path);
        }
        len += fread(data + len, 1, cap - len, f);
        if (len < cap) break;
        if (cap > SIZE_MAX / 2) {
            free(data);
            fclose(f);
            return netrt_errorf(err, errlen, "%s: file too large", path);
        }
        unsigned char *bigger = realloc(data, cap * 2);
        if (!bigger) free(data);
        data = bigger;
        cap *= 2;
    }
    if (ferror(f)) {
        int e = errno;
        free(data);
        fclose(f);
        return netrt_errorf(err, errlen, "%s: read error: %s", path, strerror(e));
    }
    fclose(f);
    *buf = data;
    *size = len;
    return 0;
}

FILE *netrt_atomic_open(const char *path, char **tmp, char *err, size_t errlen) {
    /* The temporary file sits in the target's directory so rename() cannot
     * cross file systems; O_EXCL with mode 0666 lets the umask apply as for
     * an ordinary fopen. */
    size_t n = strlen(path) + 48;
    char *name = malloc(n);
    *tmp = NULL;
    if (!name) {
        netrt_errorf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    for (int k = 0; k < 100; k++) {
        snprintf(name, n, "%s.tmp%ld.%d", path, (long)getpid(), k);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0) break;
        FILE *f = fdopen(fd, "wb");
        if (!f) {
            close(fd);
            unlink(name);
            break;
        }
        *tmp = name;
        return f;
    }
    netrt_errorf(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
    free(name);
    return NULL;
}

int netrt_atomic_close(FILE *f, char *tmp, const char *path, bool ok, char *err, size_t errlen) {
    int rc = 0;
    if (ok && (fflush(f) != 0 || ferror(f)))
        rc = netrt_errorf(err, errlen, "%s: write error: %s", path, strerror(errno));
    if (fclose(f) != 0 && ok && rc == 0)
        rc = netrt_errorf(err, errlen, "%s: write error: %s", path, strerror(errno));
    if (ok && rc == 0 && rename(tmp, path) != 0)
        rc = netrt_errorf(err, errlen, "%s: cannot rename %s into place: %s", path, tmp,
                          strerror(errno));
    if (!ok || rc != 0) {
        unlink(tmp);
        if (!ok) rc = -1;
    }
    free(tmp);
    return rc;
}

bool netrt_write_f32le(FILE *f, const float *data, size_t n) {
    if (n == 0) return true;
    if (netrt_host_is_le()) return fwrite(data, sizeof(float), n, f) == n;
    float chunk[1024];
    while (n > 0) {
        size_t k = n < 1024 ? n : 1024;
        memcpy(chunk, data, k * sizeof(float));
        netrt_bswap(chunk, k, sizeof(float));
        if (fwrite(chunk, sizeof(float), k, f) != k) return false;
        data += k;
        n -= k;
    }
    return true;
}
