// test_render.c: the PNG renderer. Draws a regular pentagon (tied, with bias), the same
// pentagon untied, an n=20 m=5 instance and a contact sheet, decodes them with stb_image and
// checks sizes against the documented layout, the colour of an arrow and of heat-map cells,
// and the error path (no such directory; a target that cannot be renamed onto).
// Usage: test_render SCRATCH_DIR
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>
#include "geometry.h"
#include "render.h"

static int failures = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static int exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

// ----------------------------------------------------------------------------
// decoded image

typedef struct {
    int w, h;
    unsigned char *px; // (h, w, 3)
} image_t;

static int load(const char *path, image_t *im) {
    int comp;
    im->px = stbi_load(path, &im->w, &im->h, &comp, 3);
    if (!im->px) fprintf(stderr, "stbi_load %s: %s\n", path, stbi_failure_reason());
    return im->px != NULL;
}

static const unsigned char *pixel(const image_t *im, int x, int y) {
    static const unsigned char outside[3] = {0, 0, 0};
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return outside;
    return im->px + ((size_t)y * im->w + x) * 3;
}

static long non_white(const image_t *im) {
    long k = 0;
    for (long i = 0; i < (long)im->w * im->h; i++) {
        const unsigned char *p = im->px + i * 3;
        k += p[0] != 255 || p[1] != 255 || p[2] != 255;
    }
    return k;
}

// centre pixel of heat-map cell (i, j), from the geometry render.h documents
static void cell_centre(const tms_render_layout_t *L, int n, int i, int j, int *x, int *y) {
    int S = L->map_size;
    *x = L->map_x + (j * S / n + (j + 1) * S / n) / 2;
    *y = L->map_y + (i * S / n + (i + 1) * S / n) / 2;
}

static void check_size(const char *what, const image_t *im, int w, int h) {
    CHECK(im->w == w && im->h == h, "%s: decoded %d x %d, documented %d x %d", what, im->w, im->h, w, h);
}

// the arrow of feature i, panel k, has feature i's colour at its midpoint
static void check_arrow(const char *what, const image_t *im, const tms_render_layout_t *L, int k,
                        int i, float u, float v) {
    int x, y;
    unsigned char want[3];
    tms_render_feature_colour(i, want);
    int rc = tms_render_arrow_pixel(L, k, 0.5f * u, 0.5f * v, &x, &y);
    CHECK(rc == 0, "%s: arrow panel %d missing", what, k);
    if (rc) return;
    const unsigned char *p = pixel(im, x, y);
    CHECK(p[0] == want[0] && p[1] == want[1] && p[2] == want[2],
          "%s: panel %d feature %d midpoint (%d, %d) is (%d, %d, %d), want (%d, %d, %d)", what, k, i, x,
          y, p[0], p[1], p[2], want[0], want[1], want[2]);
}

// ----------------------------------------------------------------------------

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
        return 2;
    }
    char path[4096], err[512];
    const float pi = 3.14159265358979f;

    // --- a regular pentagon, tied, with bias --------------------------------
    enum { N5 = 5 };
    tms_model_t tied = {.n = N5, .m = 2, .decoder = TMS_DECODER_TIED, .hidden_act = TMS_ACT_NONE,
                        .output_act = TMS_ACT_RELU, .bias = 1};
    float W5[2 * N5], W2_5[N5 * 2], b5[N5], imp5[N5];
    for (int i = 0; i < N5; i++) {
        W5[0 * N5 + i] = cosf(2 * pi * i / N5);
        W5[1 * N5 + i] = sinf(2 * pi * i / N5);
        W2_5[i * 2 + 0] = 0.8f * W5[0 * N5 + i];
        W2_5[i * 2 + 1] = 0.8f * W5[1 * N5 + i];
        b5[i] = i == 0 ? 0.6f : -0.3f;
        imp5[i] = powf(0.9f, (float)i);
    }
    tms_render_item_t pent = {.model = &tied, .W = W5, .W2 = NULL, .b = b5, .importance = imp5,
                              .density = 0.1f, .loss_mean_features = 0.0123f,
                              .label = "pentagon: density 0.1 seed 0"};
    tms_render_layout_t L5;
    tms_render_instance_layout(&tied, &L5);
    int w, h;
    tms_render_instance_size(&tied, &w, &h);
    CHECK(w == L5.width && h == L5.height, "size and layout disagree");
    CHECK(L5.arrow_panels == 1, "tied m=2 has %d arrow panels", L5.arrow_panels);

    snprintf(path, sizeof path, "%s/pentagon.png", dir);
    int rc = tms_render_instance(path, &pent, err, sizeof err);
    CHECK(rc == 0, "pentagon: %s", err);
    image_t im;
    if (rc == 0 && load(path, &im)) {
        check_size("pentagon", &im, w, h);
        CHECK(non_white(&im) > 1000, "pentagon: only %ld non-white pixels", non_white(&im));
        for (int i = 0; i < N5; i++) check_arrow("pentagon", &im, &L5, 0, i, W5[i], W5[N5 + i]);
        int x, y;
        cell_centre(&L5, N5, 0, 0, &x, &y); // W^T W [0][0] = 1: red
        const unsigned char *p = pixel(&im, x, y);
        CHECK(p[0] > 200 && p[1] < 80 && p[2] < 80, "cell (0,0) = 1 is (%d, %d, %d), want red", p[0],
              p[1], p[2]);
        cell_centre(&L5, N5, 0, 1, &x, &y); // cos 72 deg = 0.309: pale red
        p = pixel(&im, x, y);
        CHECK(p[0] > 230 && p[1] > 150 && p[1] < 230 && p[2] > 150 && p[2] < 230 && p[0] > p[1] + 30,
              "cell (0,1) = 0.309 is (%d, %d, %d), want pale red", p[0], p[1], p[2]);
        cell_centre(&L5, N5, 0, 2, &x, &y); // cos 144 deg = -0.809: blue
        p = pixel(&im, x, y);
        CHECK(p[2] > 200 && p[0] < 100 && p[2] > p[1] + 60, "cell (0,2) = -0.809 is (%d, %d, %d), want blue",
              p[0], p[1], p[2]);
        // bias strip: b[0] = 0.6 reddish, b[1] = -0.3 pale blue
        CHECK(L5.strip_w > 0, "no bias strip in the layout");
        cell_centre(&L5, N5, 0, 0, &x, &y);
        p = pixel(&im, L5.strip_x + L5.strip_w / 2, y);
        CHECK(p[0] > p[2] + 80, "bias strip row 0 (b = 0.6) is (%d, %d, %d), want red", p[0], p[1], p[2]);
        cell_centre(&L5, N5, 1, 0, &x, &y);
        p = pixel(&im, L5.strip_x + L5.strip_w / 2, y);
        CHECK(p[2] > p[0] + 30, "bias strip row 1 (b = -0.3) is (%d, %d, %d), want blue", p[0], p[1], p[2]);
        stbi_image_free(im.px);
    }
    snprintf(path, sizeof path, "%s/pentagon.png.tmp", dir);
    CHECK(!exists(path), "%s left behind after a successful write", path);

    // --- the same pentagon, untied ------------------------------------------
    tms_model_t untied = tied;
    untied.decoder = TMS_DECODER_UNTIED;
    tms_render_item_t pent2 = pent;
    pent2.model = &untied;
    pent2.W2 = W2_5;
    pent2.label = "untied pentagon";
    tms_render_layout_t L5u;
    tms_render_instance_layout(&untied, &L5u);
    CHECK(L5u.arrow_panels == 2, "untied m=2 has %d arrow panels", L5u.arrow_panels);
    CHECK(L5u.width > L5.width, "untied picture (%d px) not wider than tied (%d px)", L5u.width, L5.width);
    snprintf(path, sizeof path, "%s/pentagon_untied.png", dir);
    rc = tms_render_instance(path, &pent2, err, sizeof err);
    CHECK(rc == 0, "untied pentagon: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("untied pentagon", &im, L5u.width, L5u.height);
        CHECK(non_white(&im) > 1000, "untied pentagon: only %ld non-white pixels", non_white(&im));
        check_arrow("untied W", &im, &L5u, 0, 0, W5[0], W5[N5]);
        for (int i = 0; i < N5; i++) check_arrow("untied W2", &im, &L5u, 1, i, W2_5[2 * i], W2_5[2 * i + 1]);
        stbi_image_free(im.px);
    }

    // --- n = 20, m = 5, random unit columns, no bias --------------------------
    enum { N20 = 20, M5 = 5 };
    tms_model_t big = {.n = N20, .m = M5, .decoder = TMS_DECODER_TIED, .hidden_act = TMS_ACT_NONE,
                       .output_act = TMS_ACT_RELU, .bias = 0};
    float W20[M5 * N20], imp20[N20];
    unsigned long long s = 12345;
    for (int e = 0; e < M5 * N20; e++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        W20[e] = (float)((s >> 40) / 16777216.0) * 2.0f - 1.0f;
    }
    float norm20[N20];
    tms_feature_geometry(W20, M5, N20, norm20, NULL, NULL);
    for (int i = 0; i < N20; i++) {
        float scale = (i < 12 ? 1.0f : 0.1f * (i - 11)) / norm20[i]; // a few short columns
        for (int k = 0; k < M5; k++) W20[k * N20 + i] *= scale;
        imp20[i] = powf(0.7f, (float)i);
    }
    tms_render_item_t item20 = {.model = &big, .W = W20, .W2 = NULL, .b = NULL, .importance = imp20,
                                .density = 0.03f, .loss_mean_features = 0.00456f,
                                .label = "#3 density 0.03 seed 0"};
    tms_render_layout_t L20;
    tms_render_instance_layout(&big, &L20);
    CHECK(L20.arrow_panels == 0 && L20.strip_w == 0, "m=5 no-bias layout: %d arrow panels, strip %d px",
          L20.arrow_panels, L20.strip_w);
    int ax, ay;
    CHECK(tms_render_arrow_pixel(&L20, 0, 0.0f, 0.0f, &ax, &ay) != 0, "arrow pixel of an absent panel");
    snprintf(path, sizeof path, "%s/n20_m5.png", dir);
    rc = tms_render_instance(path, &item20, err, sizeof err);
    CHECK(rc == 0, "n=20 m=5: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("n=20 m=5", &im, L20.width, L20.height);
        CHECK(non_white(&im) > 1000, "n=20 m=5: only %ld non-white pixels", non_white(&im));
        int x, y;
        cell_centre(&L20, N20, 7, 7, &x, &y); // unit column: diagonal 1, red
        const unsigned char *p = pixel(&im, x, y);
        CHECK(p[0] > 200 && p[1] < 80 && p[2] < 80, "n=20 cell (7,7) = 1 is (%d, %d, %d), want red", p[0],
              p[1], p[2]);
        stbi_image_free(im.px);
    }

    // --- size rules for large n -----------------------------------------------
    tms_model_t huge = big;
    huge.n = 400;
    huge.m = 30;
    huge.bias = 1;
    tms_render_layout_t L400;
    tms_render_instance_layout(&huge, &L400);
    CHECK(L400.map_size == 1600, "n=400 heat map is %d px, want 1600", L400.map_size);
    CHECK(L400.width <= 2100, "n=400 picture is %d px wide", L400.width);
    huge.n = 5000;
    tms_render_instance_layout(&huge, &L400);
    CHECK(L400.map_size <= 1600 && L400.width <= 2100, "n=5000: map %d px, width %d px", L400.map_size,
          L400.width);

    // --- contact sheet of 7 ------------------------------------------------------
    tms_render_item_t sheet[7] = {pent, pent2, item20, pent, item20, pent2, pent};
    sheet[3].label = "a label much too long to fit under a thumbnail of two hundred pixels";
    tms_render_contact_sheet_size(7, &w, &h);
    CHECK(w == 3 * TMS_THUMB_W && h == 3 * TMS_THUMB_H, "sheet of 7 documented as %d x %d", w, h);
    snprintf(path, sizeof path, "%s/sheet.png", dir);
    rc = tms_render_contact_sheet(path, sheet, 7, err, sizeof err);
    CHECK(rc == 0, "contact sheet: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("contact sheet", &im, w, h);
        CHECK(non_white(&im) > 1000, "contact sheet: only %ld non-white pixels", non_white(&im));
        stbi_image_free(im.px);
    }
    tms_render_contact_sheet_size(300, &w, &h);
    CHECK(w == 16 * TMS_THUMB_W && h == 19 * TMS_THUMB_H, "sheet of 300 documented as %d x %d", w, h);

    // --- failures ----------------------------------------------------------------
    // a directory that does not exist: nonzero, the message names the path, no tmp file
    snprintf(path, sizeof path, "%s/no_such_dir/x.png", dir);
    err[0] = 0;
    rc = tms_render_instance(path, &pent, err, sizeof err);
    CHECK(rc != 0, "writing into a missing directory returned 0");
    CHECK(strstr(err, path) != NULL, "message does not name the path: '%s'", err);
    printf("expected error: %s\n", err);
    err[0] = 0;
    rc = tms_render_contact_sheet(path, sheet, 7, err, sizeof err);
    CHECK(rc != 0 && strstr(err, path) != NULL, "contact sheet into a missing directory: rc %d, '%s'", rc,
          err);
    snprintf(path, sizeof path, "%s/no_such_dir/x.png.tmp", dir);
    CHECK(!exists(path), "%s exists", path);

    // the target is a directory: the tmp file is written, the rename fails, the tmp goes
    snprintf(path, sizeof path, "%s/target_is_a_dir", dir);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        return 2;
    }
    err[0] = 0;
    rc = tms_render_instance(path, &pent, err, sizeof err);
    CHECK(rc != 0 && strstr(err, path) != NULL, "rename onto a directory: rc %d, '%s'", rc, err);
    printf("expected error: %s\n", err);
    snprintf(path, sizeof path, "%s/target_is_a_dir.tmp", dir);
    CHECK(!exists(path), "%s left behind after a failed rename", path);

    if (failures) {
        fprintf(stderr, "test_render: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_render: ok (pictures in %s)\n", dir);
    return 0;
}
