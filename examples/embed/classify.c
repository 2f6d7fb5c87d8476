/* Classifies Fashion-MNIST test images with LeNet-5 compiled into a library
 * by `netc build --lib` (see README.md and docs/library.md).
 *
 *   classify WEIGHTS IMAGES LABELS COUNT [LOGITS.npy]
 *
 * WEIGHTS is a safetensors file of LeNet-5's parameters, IMAGES and LABELS
 * the IDX files (gzip or not) of the test set; COUNT images are classified,
 * in batches of LENET5_BATCH.  Prints the first predictions and the
 * accuracy; with LOGITS.npy, also writes every image's 10 logits there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lenet5.h" /* written beside liblenet5.a; includes netrt.h */

static const char *const classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

enum { PIXELS = LENET5_IMAGE_SIZE / LENET5_BATCH, CLASSES = LENET5_LOGITS_SIZE / LENET5_BATCH };

static int fail(const char *msg) {
    fprintf(stderr, "classify: %s\n", msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) return fail("usage: classify WEIGHTS IMAGES LABELS COUNT [LOGITS.npy]");
    char err[512];

    /* the test set, with libnetrt's IDX reader */
    netrt_array images, labels;
    if (netrt_array_read(argv[2], &images, err, sizeof err) != 0) return fail(err);
    if (netrt_array_read(argv[3], &labels, err, sizeof err) != 0) return fail(err);
    long count = atol(argv[4]);
    if (images.dtype != NETRT_U8 || netrt_numel(images.rank, images.shape) / PIXELS < count || count < 1 ||
        labels.shape[0] < count)
        return fail("COUNT must be between 1 and the number of images");
    if (labels.dtype != NETRT_U8 || labels.rank != 1) return fail("LABELS must be an IDX file of uint8 labels");
    for (long i = 0; i < count; i++)
        if (((const unsigned char *)labels.data)[i] >= CLASSES) return fail("a label is not a class of LeNet-5 (0-9)");

    /* an instance of the network, and its weights */
    struct lenet5 *net;
    if (lenet5_create(&net, err, sizeof err) != 0) return fail(err);
    if (lenet5_load_file(net, argv[1], err, sizeof err) != 0) return fail(err);

    /* batch by batch: our own input and output buffers; the last batch is padded with zeros */
    float *logits = malloc(sizeof(float) * (size_t)(count + LENET5_BATCH) * CLASSES);
    if (!logits) return fail("out of memory");
    static float batch[LENET5_IMAGE_SIZE];
    long correct = 0;
    for (long first = 0; first < count; first += LENET5_BATCH) {
        long n = count - first < LENET5_BATCH ? count - first : LENET5_BATCH;
        memset(batch, 0, sizeof batch);
        netrt_array_to_f32(&images, PIXELS, first, n, batch); /* uint8 to [0, 1], as netc's programs read it */
        if (lenet5_run(net, batch, logits + first * CLASSES) != 0) return fail("run failed");
    }
    for (long i = 0; i < count; i++) {
        const float *row = logits + i * CLASSES;
        int best = 0;
        for (int k = 1; k < CLASSES; k++)
            if (row[k] > row[best]) best = k;
        long truth = (long)((const unsigned char *)labels.data)[i];
        correct += best == truth;
        if (i < 5) printf("image %ld: %s (label: %s)\n", i, classes[best], classes[truth]);
    }
    printf("accuracy: %.2f%% of %ld images\n", 100.0 * (double)correct / (double)count, count);

    if (argc == 6) {
        int64_t shape[2] = {count, CLASSES};
        if (netrt_npy_write(argv[5], logits, 2, shape, err, sizeof err) != 0) return fail(err);
    }
    lenet5_free(net);
    free(logits);
    netrt_array_free(&images);
    netrt_array_free(&labels);
    return 0;
}
