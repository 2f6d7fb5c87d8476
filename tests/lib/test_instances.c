/* netc build --lib, tested through its C API (lenet5.h, written by run.sh):
 * two instances of LeNet-5 with different weights, one loaded from a file
 * and one from a memory buffer, run at the same time from two threads many
 * times each with libnetrt's pool at 2 threads; every output must be the
 * same bits as the single-instance program's (netc build) on the same
 * weights.  Then bad weights through the memory API: each gives -1 and a
 * message, and leaves the instance as it was.
 *
 * usage: test_instances W1 W2 IMAGES EXPECTED1.npy EXPECTED2.npy SAMPLES ROUNDS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lenet5.h"

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "test_instances: FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

typedef struct Job {
    struct lenet5 *net;
    const float *images;   /* SAMPLES x LENET5_IMAGE_SIZE / LENET5_BATCH floats */
    const float *expected; /* the program's logits, SAMPLES x 10 */
    int batches, rounds;
    int mismatches, errors;
} Job;

static void *worker(void *arg) {
    Job *j = arg;
    float out[LENET5_LOGITS_SIZE];
    for (int r = 0; r < j->rounds; r++)
        for (int b = 0; b < j->batches; b++) {
            if (lenet5_run(j->net, j->images + (size_t)b * LENET5_IMAGE_SIZE, out) != 0) j->errors++;
            if (memcmp(out, j->expected + (size_t)b * LENET5_LOGITS_SIZE, sizeof out) != 0) j->mismatches++;
        }
    return NULL;
}

/* Runs every batch once on net; the batches whose output differs from expected. */
static int mismatches(struct lenet5 *net, const float *images, const float *expected, int batches) {
    Job j = {net, images, expected, batches, 1, 0, 0};
    worker(&j);
    return j.mismatches + j.errors;
}

static float *read_f32(const char *path, int64_t want) {
    netrt_array a;
    char err[512];
    if (netrt_array_read(path, &a, err, sizeof err) != 0) {
        fprintf(stderr, "test_instances: %s\n", err);
        exit(2);
    }
    if (a.dtype != NETRT_F32 || netrt_numel(a.rank, a.shape) < want) {
        fprintf(stderr, "test_instances: %s: not %lld float32 values\n", path, (long long)want);
        exit(2);
    }
    float *v = malloc(sizeof *v * (size_t)want);
    if (!v) {
        fprintf(stderr, "test_instances: out of memory\n");
        exit(2);
    }
    memcpy(v, a.data, sizeof *v * (size_t)want);
    netrt_array_free(&a);
    return v; /* the caller's, to free */
}

/* A safetensors file in memory with one F32 tensor `name` of the given shape. */
static size_t one_tensor(unsigned char *buf, size_t cap, const char *name, const char *shape, size_t nfloats) {
    char header[256];
    int n = snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[0,%zu]}}", name,
                     shape, nfloats * 4);
    size_t total = 8 + (size_t)n + nfloats * 4;
    if (total > cap) exit(2);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, (size_t)n);
    memset(buf + 8 + n, 0, nfloats * 4);
    return total;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: test_instances W1 W2 IMAGES EXPECTED1 EXPECTED2 SAMPLES ROUNDS\n");
        return 2;
    }
    int samples = atoi(argv[6]), rounds = atoi(argv[7]);
    int batches = samples / LENET5_BATCH;
    if (batches < 1 || samples % LENET5_BATCH || rounds < 1) return 2;
    char err[512];

    /* the images as the program reads them (uint8 scaled to [0, 1]) */
    netrt_array idx;
    if (netrt_array_read(argv[3], &idx, err, sizeof err) != 0) {
        fprintf(stderr, "test_instances: %s\n", err);
        return 2;
    }
    int64_t per = LENET5_IMAGE_SIZE / LENET5_BATCH;
    float *images = malloc(sizeof(float) * (size_t)(per * samples));
    netrt_array_to_f32(&idx, per, 0, samples, images);
    float *want1 = read_f32(argv[4], (int64_t)samples * 10), *want2 = read_f32(argv[5], (int64_t)samples * 10);

    /* an instance runs only once it has weights */
    struct lenet5 *a = NULL, *b = NULL;
    CHECK(lenet5_create(&a, err, sizeof err) == 0, "create: %s", err);
    CHECK(lenet5_create(&b, err, sizeof err) == 0, "create: %s", err);
    if (!a || !b) return 1;
    float out[LENET5_LOGITS_SIZE];
    CHECK(lenet5_run(a, images, out) == -1, "run without weights did not fail");
    CHECK(lenet5_run(NULL, images, out) == -1, "run on NULL did not fail");

    /* a from the file, b from memory */
    CHECK(lenet5_load_file(a, argv[1], err, sizeof err) == 0, "load_file: %s", err);
    void *buf;
    size_t size;
    if (netrt_read_file(argv[2], &buf, &size, err, sizeof err) != 0) {
        fprintf(stderr, "test_instances: %s\n", err);
        return 2;
    }
    CHECK(lenet5_load_memory(b, buf, size, err, sizeof err) == 0, "load_memory: %s", err);
    CHECK(mismatches(a, images, want1, batches) == 0, "instance a (file) differs from the program");
    CHECK(mismatches(b, images, want2, batches) == 0, "instance b (memory) differs from the program");

    /* both at once from two threads, the pool at 2 threads */
    netrt_set_threads(2);
    Job ja = {a, images, want1, batches, rounds, 0, 0}, jb = {b, images, want2, batches, rounds, 0, 0};
    pthread_t ta, tb;
    if (pthread_create(&ta, NULL, worker, &ja) != 0 || pthread_create(&tb, NULL, worker, &jb) != 0) return 2;
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(ja.errors == 0 && jb.errors == 0, "run failed %d + %d times", ja.errors, jb.errors);
    CHECK(ja.mismatches == 0, "instance a: %d of %d batches differ from the program", ja.mismatches, batches * rounds);
    CHECK(jb.mismatches == 0, "instance b: %d of %d batches differ from the program", jb.mismatches, batches * rounds);

    /* bad weights through the memory API: -1, a message, b unchanged */
    err[0] = 0;
    CHECK(lenet5_load_memory(b, buf, size / 2, err, sizeof err) == -1, "a truncated buffer was accepted");
    CHECK(strstr(err, "lenet5 weights in memory") != NULL, "truncated: message '%s'", err);
    printf("truncated buffer: %s\n", err);
    err[0] = 0;
    CHECK(lenet5_load_memory(b, buf, 5, err, sizeof err) == -1 && strstr(err, "truncated"),
          "5 bytes: message '%s'", err);
    CHECK(lenet5_load_memory(b, NULL, 100, err, sizeof err) == -1, "a NULL buffer was accepted");
    static unsigned char bad[4096];
    size_t n = one_tensor(bad, sizeof bad, "conv0.weight", "[6,1,3,3]", 54);
    err[0] = 0;
    CHECK(lenet5_load_memory(b, bad, n, err, sizeof err) == -1, "a wrong shape was accepted");
    CHECK(strstr(err, "'conv0.weight'") && strstr(err, "[6, 1, 3, 3]") && strstr(err, "[6, 1, 5, 5]"),
          "wrong shape: message '%s' does not name the tensor and both shapes", err);
    printf("wrong shape: %s\n", err);
    memcpy(bad + 8, "{not json", 9);
    CHECK(lenet5_load_memory(b, bad, n, err, sizeof err) == -1, "bad JSON was accepted");
    CHECK(lenet5_load_file(b, "/nonexistent/w.safetensors", err, sizeof err) == -1, "a missing file was accepted");
    CHECK(mismatches(b, images, want2, batches) == 0, "a failed load changed instance b");

    /* the buffer is the caller's: b keeps its weights after it is freed */
    free(buf);
    CHECK(mismatches(b, images, want2, batches) == 0, "instance b changed when the buffer was freed");
    lenet5_free(a);
    lenet5_free(b);
    lenet5_free(NULL);
    netrt_array_free(&idx);
    free(images);
    free(want1);
    free(want2);
    if (failures) return 1;
    printf("test_instances: 2 instances x %d rounds x %d batches, concurrently: bit-identical to the program\n", rounds,
           batches);
    return 0;
}
