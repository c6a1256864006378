// test_render.c: the PNG renderer (cairo). Draws a pentagon whose W^T W diagonal is 1.29
// (tied, with bias), the same pentagon untied, an n=20 m=5 hidden-ReLU instance, an m=3
// instance and contact sheets, decodes them with stb_image and checks, against the geometry
// render.h documents:
//   - sizes and the data ranges (R = 1.3 for a diagonal of 1.29: nothing clipped);
//   - map cells read back through the image's own colour bar give the true W^T W and W2 W
//     (so the bar shows the real range), the bar's ends are full red and full blue;
//   - arrows (2-D and the 3-D view) in their feature's colour at their midpoints;
//   - b bars on the right side of zero, ‖W_i‖ bars of the right length, their colour read
//     back through the dimensionality bar gives the pentagon's D_i = 2/5;
//   - the neuron view: a neuron's weight for feature 0 in feature 0's colour;
//   - text where labels must be (caption, panel titles, feature indices, colour-bar ticks:
//     non-background pixels in their boxes) and none where there is no label (between
//     panels, margins, a sheet's empty cells);
//   - the error paths (no such directory; a target that cannot be renamed onto; too many
//     thumbnails).
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

// pixels in [x, x + w) x [y, y + h) that are not white
static long ink(const image_t *im, int x, int y, int w, int h) {
    long k = 0;
    for (int yy = y; yy < y + h; yy++)
        for (int xx = x; xx < x + w; xx++) {
            const unsigned char *p = pixel(im, xx, yy);
            k += p[0] != 255 || p[1] != 255 || p[2] != 255;
        }
    return k;
}

static long ink_rect(const image_t *im, tms_rect_t r) { return ink(im, r.x, r.y, r.w, r.h); }

static int dist2(const unsigned char *a, const unsigned char *b) {
    int d = 0;
    for (int c = 0; c < 3; c++) d += (a[c] - b[c]) * (a[c] - b[c]);
    return d;
}

// The value a colour stands for, read from the image's vertical colour bar: the row whose
// colour is nearest, converted by the bar's documented scale (+R top, -R bottom).
static float value_from_bar(const image_t *im, const tms_render_layout_t *L, const unsigned char *c) {
    int best = 0, bd = 1 << 30;
    for (int y = 0; y < L->cbar.h; y++) {
        int d = dist2(pixel(im, L->cbar.x + L->cbar.w / 2, L->cbar.y + y), c);
        if (d < bd) { bd = d; best = y; }
    }
    return L->map_range * (1.0f - 2.0f * (best + 0.5f) / L->cbar.h);
}

// likewise from the horizontal dimensionality bar: 0 at its left, 1 at its right
static float value_from_dim_bar(const image_t *im, const tms_render_layout_t *L, const unsigned char *c) {
    int best = 0, bd = 1 << 30;
    for (int x = 0; x < L->dim_bar.w; x++) {
        int d = dist2(pixel(im, L->dim_bar.x + x, L->dim_bar.y + L->dim_bar.h / 2), c);
        if (d < bd) { bd = d; best = x; }
    }
    return (best + 0.5f) / L->dim_bar.w;
}

// centre pixel of cell (i, j) of a map
static void cell_centre(tms_rect_t map, int n, int i, int j, int *x, int *y) {
    *x = map.x + (j * map.w / n + (j + 1) * map.w / n) / 2;
    *y = map.y + (i * map.h / n + (i + 1) * map.h / n) / 2;
}

static void check_cell(const char *what, const image_t *im, const tms_render_layout_t *L, tms_rect_t map,
                       int i, int j, float want) {
    int x, y;
    cell_centre(map, L->n, i, j, &x, &y);
    float got = value_from_bar(im, L, pixel(im, x, y));
    CHECK(fabsf(got - want) < 0.04f * L->map_range, "%s: cell (%d, %d) reads %.3f through the colour bar, want %.3f",
          what, i, j, got, want);
}

static void check_size(const char *what, const image_t *im, int w, int h) {
    CHECK(im->w == w && im->h == h, "%s: decoded %d x %d, documented %d x %d", what, im->w, im->h, w, h);
}

static int same_rgb(const unsigned char *p, const unsigned char *q) { return p[0] == q[0] && p[1] == q[1] && p[2] == q[2]; }

// the arrow of feature i, panel k, has feature i's colour at its midpoint
static void check_arrow(const char *what, const image_t *im, const tms_render_layout_t *L, int k, int i,
                        const float *p) {
    int x, y;
    unsigned char want[3];
    tms_render_feature_colour(i, want);
    float mid[3] = {0.5f * p[0], 0.5f * p[1], L->m == 3 ? 0.5f * p[2] : 0.0f};
    int rc = tms_render_arrow_pixel(L, k, mid, &x, &y);
    CHECK(rc == 0, "%s: arrow panel %d missing", what, k);
    if (rc) return;
    const unsigned char *q = pixel(im, x, y);
    CHECK(same_rgb(q, want), "%s: panel %d feature %d midpoint (%d, %d) is (%d, %d, %d), want (%d, %d, %d)", what,
          k, i, x, y, q[0], q[1], q[2], want[0], want[1], want[2]);
}

// text where a label must be: at least `least` non-background pixels in the box
static void check_text(const char *what, const image_t *im, int x, int y, int w, int h, long least) {
    long k = ink(im, x, y, w, h);
    CHECK(k >= least, "%s: %ld non-white pixels in [%d, %d) x [%d, %d), want at least %ld", what, k, x, x + w, y,
          y + h, least);
}

static void check_blank(const char *what, const image_t *im, int x, int y, int w, int h) {
    long k = ink(im, x, y, w, h);
    CHECK(k == 0 && w > 0 && h > 0, "%s: %ld non-white pixels in [%d, %d) x [%d, %d), want none", what, k, x,
          x + w, y, y + h);
}

static void check_title(const char *what, const image_t *im, const tms_render_layout_t *L, tms_rect_t panel) {
    check_text(what, im, panel.x, L->title_y, panel.w, L->title_h, 30);
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
    image_t im;
    int rc, x, y;

    // --- tms_render_symmetric_range ---------------------------------------------------
    {
        float v1[3] = {0.2f, -1.29f, 1.0f}, v2[2] = {0.0123f, -0.001f}, v3[3] = {NAN, INFINITY, 0.5f}, v4[2] = {0, 0};
        float one = 1.0f, r;
        CHECK(fabsf((r = tms_render_symmetric_range(v1, 3, 1.0f)) - 1.3f) < 1e-6f, "range of 1.29: %g, want 1.3", r);
        CHECK(fabsf((r = tms_render_symmetric_range(v2, 2, 0.0f)) - 0.013f) < 1e-7f, "range of 0.0123: %g", r);
        CHECK((r = tms_render_symmetric_range(v2, 2, 1.0f)) == 1.0f, "floor 1 over 0.0123: %g", r);
        CHECK(fabsf((r = tms_render_symmetric_range(v3, 3, 0.0f)) - 0.5f) < 1e-7f, "non-finite values count: %g", r);
        CHECK((r = tms_render_symmetric_range(v4, 2, 0.0f)) == 1.0f, "all zero: %g, want 1", r);
        CHECK((r = tms_render_symmetric_range(&one, 1, 0.0f)) == 1.0f, "range of 1: %g", r);
    }

    // --- a regular pentagon of columns of length sqrt(1.29), tied, with bias ----------
    enum { N5 = 5 };
    tms_model_t tied = {.n = N5, .m = 2, .decoder = TMS_DECODER_TIED, .hidden_act = TMS_ACT_NONE,
                        .output_act = TMS_ACT_RELU, .bias = 1};
    const float len5 = sqrtf(1.29f);
    float W5[2 * N5], W2_5[N5 * 2], b5[N5], imp5[N5], gram5[N5 * N5];
    for (int i = 0; i < N5; i++) {
        W5[0 * N5 + i] = len5 * cosf(2 * pi * i / N5);
        W5[1 * N5 + i] = len5 * sinf(2 * pi * i / N5);
        W2_5[i * 2 + 0] = 0.8f * W5[0 * N5 + i];
        W2_5[i * 2 + 1] = 0.8f * W5[1 * N5 + i];
        b5[i] = i == 0 ? 0.6f : -0.3f;
        imp5[i] = powf(0.9f, (float)i);
    }
    tms_gram(W5, 2, N5, gram5);
    tms_render_item_t pent = {.model = &tied, .W = W5, .W2 = NULL, .b = b5, .importance = imp5,
                              .density = 0.1f, .loss_mean_features = 0.0123f,
                              .label = "pentagon: density 0.1 seed 0"};
    tms_render_layout_t L5;
    tms_render_layout(&pent, &L5);
    int w, h;
    tms_render_instance_size(&tied, &w, &h);
    CHECK(w == L5.width && h == L5.height, "size and layout disagree");
    CHECK(L5.arrow_panels == 1 && L5.map2.w == 0 && L5.neurons.w == 0 && L5.bias.w > 0,
          "tied m=2 bias layout: %d arrow panels, W2W %d px, neurons %d px, bias %d px", L5.arrow_panels, L5.map2.w,
          L5.neurons.w, L5.bias.w);
    CHECK(fabsf(L5.map_range - 1.3f) < 1e-6f, "W^T W range %g, want 1.3 (diagonal 1.29)", L5.map_range);
    CHECK(fabsf(L5.bias_range - 0.6f) < 1e-6f, "bias range %g, want 0.6", L5.bias_range);
    CHECK(L5.norm_top == 1.5f && L5.arrow_extent == 1.5f, "norm axis %g, arrow extent %g, want 1.5 and 1.5",
          L5.norm_top, L5.arrow_extent);
    CHECK(L5.index_every == 1, "n=5: indices every %d rows", L5.index_every);

    snprintf(path, sizeof path, "%s/pentagon.png", dir);
    rc = tms_render_instance(path, &pent, err, sizeof err);
    CHECK(rc == 0, "pentagon: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("pentagon", &im, w, h);
        for (int i = 0; i < N5; i++) {
            float p[2] = {W5[i], W5[N5 + i]};
            check_arrow("pentagon", &im, &L5, 0, i, p);
        }
        // cells read through the colour bar: the true values, 1.29 not clipped
        for (int j = 0; j < N5; j++) check_cell("pentagon", &im, &L5, L5.map, 0, j, gram5[j]);
        check_cell("pentagon", &im, &L5, L5.map, 3, 3, gram5[3 * N5 + 3]);
        // the bar's ends: +R deep red at the top, -R deep blue at the bottom, white at 0
        const unsigned char *p = pixel(&im, L5.cbar.x + L5.cbar.w / 2, L5.cbar.y);
        CHECK(p[0] > 150 && p[1] < 60 && p[2] < 70, "colour bar top (+R) is (%d, %d, %d), want red", p[0], p[1], p[2]);
        p = pixel(&im, L5.cbar.x + L5.cbar.w / 2, L5.cbar.y + L5.cbar.h - 1);
        CHECK(p[2] > 150 && p[0] < 60, "colour bar bottom (-R) is (%d, %d, %d), want blue", p[0], p[1], p[2]);
        p = pixel(&im, L5.cbar.x + L5.cbar.w / 2, L5.cbar.y + L5.cbar.h / 2);
        CHECK(p[0] > 240 && p[1] > 240 && p[2] > 240, "colour bar middle (0) is (%d, %d, %d), want white", p[0], p[1], p[2]);
        // its tick labels: at the top (+1.3), the middle (0) and the bottom (-1.3)
        check_text("colour bar label +R", &im, L5.cbar_labels.x, L5.cbar.y - 8, L5.cbar_labels.w, 16, 10);
        check_text("colour bar label 0", &im, L5.cbar_labels.x, L5.cbar.y + L5.cbar.h / 2 - 8, L5.cbar_labels.w, 16, 5);
        check_text("colour bar label -R", &im, L5.cbar_labels.x, L5.cbar.y + L5.cbar.h - 8, L5.cbar_labels.w, 16, 10);
        // b: feature 0's bar (0.6 = Rb) reaches from the centre to near the right edge, red;
        // feature 1's (-0.3) goes left, blue, and stops half way
        double cx = L5.bias.x + L5.bias.w / 2.0;
        cell_centre(L5.map, N5, 0, 0, &x, &y);
        p = pixel(&im, (int)(cx + 0.45 * L5.bias.w), y);
        CHECK(p[0] > p[2] + 80, "b[0] = 0.6 bar at 0.9 of its axis is (%d, %d, %d), want red", p[0], p[1], p[2]);
        cell_centre(L5.map, N5, 1, 0, &x, &y);
        p = pixel(&im, (int)(cx - 0.2 * L5.bias.w), y);
        CHECK(p[2] > p[0] + 30, "b[1] = -0.3 bar is (%d, %d, %d), want blue", p[0], p[1], p[2]);
        p = pixel(&im, (int)(cx - 0.3 * L5.bias.w), y);
        CHECK(p[0] > 240 && p[1] > 240 && p[2] > 240, "b[1] = -0.3 bar reaches past -0.36: (%d, %d, %d)", p[0], p[1], p[2]);
        p = pixel(&im, (int)(cx + 0.2 * L5.bias.w), y);
        CHECK(p[0] > 240 && p[1] > 240 && p[2] > 240, "b[1] = -0.3 has a bar right of zero: (%d, %d, %d)", p[0], p[1], p[2]);
        // ‖W_i‖ = 1.136 of 1.5: coloured up to its end, not beyond; its colour is D_i = 2/5
        for (int i = 0; i < N5; i++) {
            cell_centre(L5.map, N5, i, 0, &x, &y);
            int end = L5.bars.x + (int)(len5 / L5.norm_top * L5.bars.w);
            p = pixel(&im, end - 3, y);
            float d = value_from_dim_bar(&im, &L5, p);
            CHECK(fabsf(d - 0.4f) < 0.05f, "norm bar %d's colour (%d, %d, %d) reads D = %.3f, want 0.4", i, p[0], p[1],
                  p[2], d);
            p = pixel(&im, end + 2, y + 2);
            CHECK(p[0] > 200 && p[1] > 200 && p[2] > 200, "norm bar %d goes on past its end: (%d, %d, %d)", i, p[0], p[1], p[2]);
        }
        // text where labels are
        check_text("caption", &im, L5.caption.x, L5.caption.y, L5.caption.w, L5.caption.h, 400);
        check_title("arrows title", &im, &L5, L5.arrow[0]);
        check_title("W^T W title", &im, &L5, L5.map);
        check_title("bias title", &im, &L5, L5.bias);
        check_title("norms title", &im, &L5, L5.bars);
        for (int i = 0; i < N5; i++) {
            cell_centre(L5.map, N5, i, i, &x, &y);
            check_text("row index", &im, L5.row_labels.x, y - 6, L5.row_labels.w, 12, 5);
            check_text("column index", &im, x - 6, L5.col_labels.y, 12, L5.col_labels.h, 5);
        }
        check_text("bias ticks", &im, L5.bias.x - 10, L5.bias.y + L5.bias.h + 4, L5.bias.w + 20, 20, 30);
        check_text("norm ticks", &im, L5.bars.x - 10, L5.bars.y + L5.bars.h + 4, L5.bars.w + 20, 20, 30);
        check_text("dimensionality bar labels", &im, L5.dim_bar.x, L5.dim_bar.y + L5.dim_bar.h + 2, L5.dim_bar.w, 14, 10);
        // and none where there is no label: between the colour bar's labels and the bias
        // panel, between the bias and the norms, in the margins
        int gap0 = L5.cbar_labels.x + L5.cbar_labels.w + 2;
        check_blank("gap before the bias panel", &im, gap0, L5.title_y, L5.bias.x - 12 - gap0, L5.bias.y + L5.bias.h - L5.title_y);
        int gap1 = L5.bias.x + L5.bias.w + 14;
        check_blank("gap before the norm bars", &im, gap1, L5.title_y, L5.bars.x - 10 - gap1, L5.bars.h + L5.bars.y - L5.title_y + 24);
        check_blank("left margin", &im, 0, 0, 10, im.h);
        check_blank("right margin", &im, im.w - 10, 0, 10, im.h);
        check_blank("bottom margin", &im, 0, im.h - 6, im.w, 6);
        stbi_image_free(im.px);
    }
    snprintf(path, sizeof path, "%s/pentagon.png.tmp", dir);
    CHECK(!exists(path), "%s left behind after a successful write", path);

    // --- the same pentagon, untied: W2 = 0.8 W^T, so W2 W = 0.8 W^T W -----------------
    tms_model_t untied = tied;
    untied.decoder = TMS_DECODER_UNTIED;
    tms_render_item_t pent2 = pent;
    pent2.model = &untied;
    pent2.W2 = W2_5;
    pent2.label = "untied pentagon";
    tms_render_layout_t L5u;
    tms_render_layout(&pent2, &L5u);
    CHECK(L5u.arrow_panels == 2 && L5u.map2.w == L5u.map.w, "untied m=2: %d arrow panels, W2W %d px",
          L5u.arrow_panels, L5u.map2.w);
    CHECK(L5u.width > L5.width, "untied picture (%d px) not wider than tied (%d px)", L5u.width, L5.width);
    snprintf(path, sizeof path, "%s/pentagon_untied.png", dir);
    rc = tms_render_instance(path, &pent2, err, sizeof err);
    CHECK(rc == 0, "untied pentagon: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("untied pentagon", &im, L5u.width, L5u.height);
        float p0[2] = {W5[0], W5[N5]};
        check_arrow("untied W", &im, &L5u, 0, 0, p0);
        for (int i = 0; i < N5; i++) {
            float p[2] = {W2_5[2 * i], W2_5[2 * i + 1]};
            check_arrow("untied W2", &im, &L5u, 1, i, p);
        }
        check_cell("untied W^T W", &im, &L5u, L5u.map, 0, 0, gram5[0]);
        check_cell("untied W2 W", &im, &L5u, L5u.map2, 0, 0, 0.8f * gram5[0]);
        check_cell("untied W2 W", &im, &L5u, L5u.map2, 0, 2, 0.8f * gram5[2]);
        check_title("W2 W title", &im, &L5u, L5u.map2);
        check_title("W2 rows title", &im, &L5u, L5u.arrow[1]);
        stbi_image_free(im.px);
    }

    // --- n = 20, m = 5, hidden ReLU, random unit columns, no bias -----------------------
    enum { N20 = 20, M5 = 5 };
    tms_model_t big = {.n = N20, .m = M5, .decoder = TMS_DECODER_TIED, .hidden_act = TMS_ACT_RELU,
                       .output_act = TMS_ACT_RELU, .bias = 0};
    float W20[M5 * N20], imp20[N20], gram20[N20 * N20];
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
    W20[0] = fabsf(W20[0]) + 0.5f; // neuron 0's weight for feature 0: positive and long
    tms_gram(W20, M5, N20, gram20);
    tms_render_item_t item20 = {.model = &big, .W = W20, .W2 = NULL, .b = NULL, .importance = imp20,
                                .density = 0.03f, .loss_mean_features = 0.00456f,
                                .label = "#3 density 0.03 seed 0"};
    tms_render_layout_t L20;
    tms_render_layout(&item20, &L20);
    CHECK(L20.arrow_panels == 0 && L20.bias.w == 0 && L20.neurons.w > 0,
          "m=5 hidden-ReLU no-bias layout: %d arrow panels, bias %d px, neurons %d px", L20.arrow_panels, L20.bias.w,
          L20.neurons.w);
    float origin[2] = {0, 0};
    CHECK(tms_render_arrow_pixel(&L20, 0, origin, &x, &y) != 0, "arrow pixel of an absent panel");
    snprintf(path, sizeof path, "%s/n20_m5_relu.png", dir);
    rc = tms_render_instance(path, &item20, err, sizeof err);
    CHECK(rc == 0, "n=20 m=5: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("n=20 m=5", &im, L20.width, L20.height);
        check_cell("n=20", &im, &L20, L20.map, 7, 7, gram20[7 * N20 + 7]);
        check_cell("n=20", &im, &L20, L20.map, 0, 0, gram20[0]);
        check_cell("n=20", &im, &L20, L20.map, 3, 15, gram20[3 * N20 + 15]);
        check_title("neurons title", &im, &L20, L20.neurons);
        CHECK(ink_rect(&im, L20.neurons) > 2000, "neuron panel nearly empty: %ld px", ink_rect(&im, L20.neurons));
        // neuron 0's stack starts at 0 with feature 0 (positive): feature 0's colour there
        unsigned char want[3];
        tms_render_feature_colour(0, want);
        int row = L20.neurons.y + L20.neurons.h / (2 * M5);
        const unsigned char *p = pixel(&im, L20.neurons.x + L20.neurons.w / 2 + 4, row);
        CHECK(same_rgb(p, want), "neuron 0 next to zero is (%d, %d, %d), want feature 0's (%d, %d, %d)", p[0], p[1],
              p[2], want[0], want[1], want[2]);
        // no bias: nothing between the colour bar's labels and the norm bars
        int gap0 = L20.cbar_labels.x + L20.cbar_labels.w + 2;
        check_blank("no bias panel", &im, gap0, L20.title_y, L20.bars.x - 12 - gap0, L20.bars.y + L20.bars.h - L20.title_y);
        for (int i = 0; i < N20; i += 5) {
            cell_centre(L20.map, N20, i, i, &x, &y);
            check_text("n=20 row index", &im, L20.row_labels.x, y - 5, L20.row_labels.w, 10, 5);
        }
        stbi_image_free(im.px);
    }

    // --- m = 3: the 3-D view ------------------------------------------------------------
    enum { N4 = 4 };
    tms_model_t three = {.n = N4, .m = 3, .decoder = TMS_DECODER_TIED, .hidden_act = TMS_ACT_NONE,
                         .output_act = TMS_ACT_RELU, .bias = 0};
    // columns e0, e1, e2 (facing the viewer) and one pointing away, (-1, -1, -1) / sqrt 3
    float W3[3 * N4] = {1, 0, 0, -0.577f, 0, 1, 0, -0.577f, 0, 0, 1, -0.577f}, imp4[N4] = {1, 1, 1, 1};
    tms_render_item_t item3 = {.model = &three, .W = W3, .importance = imp4, .density = 0.05f,
                               .loss_mean_features = 0.01f, .label = "m = 3"};
    tms_render_layout_t L3;
    tms_render_layout(&item3, &L3);
    CHECK(L3.arrow_panels == 1, "m=3: %d arrow panels", L3.arrow_panels);
    snprintf(path, sizeof path, "%s/m3.png", dir);
    rc = tms_render_instance(path, &item3, err, sizeof err);
    CHECK(rc == 0, "m=3: %s", err);
    if (rc == 0 && load(path, &im)) {
        for (int i = 0; i < 3; i++) {
            float p[3] = {W3[i], W3[N4 + i], W3[2 * N4 + i]};
            check_arrow("m=3 front", &im, &L3, 0, i, p);
        }
        // the one pointing away is lighter: between its colour and white
        float back[3] = {-0.289f, -0.289f, -0.289f};
        unsigned char want[3];
        tms_render_feature_colour(3, want);
        tms_render_arrow_pixel(&L3, 0, back, &x, &y);
        const unsigned char *p = pixel(&im, x, y);
        CHECK(p[1] > want[1] + 40 && p[1] < 250 && p[2] > want[2] + 40 && p[2] < 250, "m=3 back arrow at (%d, %d) is (%d, %d, %d), want a lighter (%d, %d, %d)",
              x, y, p[0], p[1], p[2], want[0], want[1], want[2]);
        check_title("m=3 title", &im, &L3, L3.arrow[0]);
        stbi_image_free(im.px);
    }

    // --- a diverged instance: a column of length 1e30, a NaN, an infinite bias --------------
    // (drawn in finite time, NaN cells grey, the norm axis rounded to 2 significant digits)
    {
        float Wd[2 * N5], bd[N5];
        memcpy(Wd, W5, sizeof Wd);
        memcpy(bd, b5, sizeof bd);
        Wd[0] = 1e30f;         // feature 0: (1e30, W[1][0])
        Wd[N5 + 1] = NAN;      // feature 1: (W[0][1], NaN)
        bd[2] = INFINITY;
        tms_render_item_t dv = pent;
        dv.W = Wd;
        dv.b = bd;
        dv.label = "diverged";
        tms_render_layout_t Ld;
        tms_render_layout(&dv, &Ld);
        CHECK(Ld.norm_top == 1e30f, "norm axis of a 1e30 column: %g", Ld.norm_top);
        // W^T W (0, 0) = 1e60 is beyond float (grey); (0, 2) = -9.2e29 sets the range
        float g02 = (float)((double)Wd[0] * Wd[2] + (double)Wd[N5] * Wd[N5 + 2]);
        CHECK(Ld.map_range >= fabsf(g02) && Ld.map_range < 1.02f * fabsf(g02), "diverged map range %g, want |%g| rounded up",
              Ld.map_range, g02);
        snprintf(path, sizeof path, "%s/diverged.png", dir);
        rc = tms_render_instance(path, &dv, err, sizeof err);
        CHECK(rc == 0, "diverged: %s", err);
        if (rc == 0 && load(path, &im)) {
            cell_centre(Ld.map, N5, 1, 1, &x, &y);
            const unsigned char *p = pixel(&im, x, y);
            CHECK(p[0] == 128 && p[1] == 128 && p[2] == 128, "NaN cell (1, 1) is (%d, %d, %d), want grey", p[0], p[1], p[2]);
            cell_centre(Ld.map, N5, 0, 0, &x, &y);
            p = pixel(&im, x, y);
            CHECK(p[0] == 128 && p[1] == 128 && p[2] == 128, "infinite cell (0, 0) is (%d, %d, %d), want grey", p[0], p[1], p[2]);
            check_cell("diverged", &im, &Ld, Ld.map, 0, 2, g02);
            check_text("'grey: not finite' note", &im, Ld.map.x, Ld.map.y + Ld.map.h + 4, Ld.map.w, 14, 30);
            stbi_image_free(im.px);
        }
    }

    // --- size rules for large n ---------------------------------------------------------
    tms_model_t huge = big;
    huge.n = 400;
    huge.m = 30;
    huge.bias = 1;
    huge.hidden_act = TMS_ACT_NONE;
    tms_render_layout_t L400;
    tms_render_instance_layout(&huge, &L400);
    CHECK(L400.map.w == 1600, "n=400 heat map is %d px, want 1600", L400.map.w);
    CHECK(L400.width <= 2400, "n=400 picture is %d px wide", L400.width);
    huge.n = 5000;
    tms_render_instance_layout(&huge, &L400);
    CHECK(L400.map.w <= 1600 && L400.width <= 2400, "n=5000: map %d px, width %d px", L400.map.w, L400.width);
    CHECK(L400.index_every * 1600.0 / 5000 >= 12.0 && L400.index_every == 50, "n=5000: indices every %d",
          L400.index_every);
    CHECK(tms_render_instance_bytes(&huge) > 2.0 * 5000.0 * 5000 * 4, "n=5000: %g bytes counted for drawing",
          tms_render_instance_bytes(&huge));

    // --- contact sheet of 7: 3 x 3 cells, two of them empty --------------------------------
    tms_render_item_t sheet[7] = {pent, pent2, item20, pent, item20, item3, pent};
    sheet[3].label = "a label much too long to fit under a thumbnail of two hundred pixels";
    tms_render_contact_sheet_size(7, &w, &h);
    CHECK(w == 640 && h == TMS_SHEET_HEAD_H + 3 * TMS_THUMB_H, "sheet of 7 documented as %d x %d", w, h);
    snprintf(path, sizeof path, "%s/sheet.png", dir);
    rc = tms_render_contact_sheet(path, sheet, 7, "test sheet", err, sizeof err);
    CHECK(rc == 0, "contact sheet: %s", err);
    if (rc == 0 && load(path, &im)) {
        check_size("contact sheet", &im, w, h);
        int left = (w - 3 * TMS_THUMB_W) / 2;
        check_text("sheet title", &im, 0, 0, w / 2, TMS_SHEET_HEAD_H - 2, 200);
        check_text("sheet colour bar", &im, w / 2, 0, w / 2, TMS_SHEET_HEAD_H - 2, 200);
        for (int k = 0; k < 7; k++) {
            int cx0 = left + k % 3 * TMS_THUMB_W, cy0 = TMS_SHEET_HEAD_H + k / 3 * TMS_THUMB_H;
            check_text("thumbnail plot", &im, cx0 + 8, cy0 + 8, 184, 184, 500);
            check_text("thumbnail label", &im, cx0 + 4, cy0 + 8 + 184 + 4, TMS_THUMB_W - 8, 14, 50);
            check_text("thumbnail loss", &im, cx0 + 4, cy0 + 8 + 184 + 34, TMS_THUMB_W - 8, 12, 50);
        }
        // the long label goes on to a second line; a short one does not
        check_text("second label line", &im, left + 4, TMS_SHEET_HEAD_H + TMS_THUMB_H + 8 + 184 + 20, TMS_THUMB_W - 8, 10, 50);
        check_blank("no second label line", &im, left + 4, TMS_SHEET_HEAD_H + 8 + 184 + 21, TMS_THUMB_W - 8, 9);
        // cells 7 and 8 hold nothing
        check_blank("empty cells", &im, left + TMS_THUMB_W + 2, TMS_SHEET_HEAD_H + 2 * TMS_THUMB_H + 2,
                    2 * TMS_THUMB_W - 4, TMS_THUMB_H - 4);
        // the map thumbnail (n=20) shares the sheet's range: its diagonal cell reads red
        int cx0 = left + 2 * TMS_THUMB_W + 8, cy0 = TMS_SHEET_HEAD_H + 8;
        const unsigned char *p = pixel(&im, cx0 + 4, cy0 + 4); // cell (0, 0) of 9 px cells
        CHECK(p[0] > p[2] + 60, "sheet map cell (0, 0) is (%d, %d, %d), want red", p[0], p[1], p[2]);
        stbi_image_free(im.px);
    }
    tms_render_contact_sheet_size(300, &w, &h);
    CHECK(w == 16 * TMS_THUMB_W && h == TMS_SHEET_HEAD_H + 19 * TMS_THUMB_H, "sheet of 300 documented as %d x %d", w, h);
    tms_render_contact_sheet_size(1, &w, &h);
    CHECK(w == 640 && h == TMS_SHEET_HEAD_H + TMS_THUMB_H, "sheet of 1 documented as %d x %d", w, h);

    // --- failures -------------------------------------------------------------------------
    // a directory that does not exist: nonzero, the message names the path, no tmp file
    snprintf(path, sizeof path, "%s/no_such_dir/x.png", dir);
    err[0] = 0;
    rc = tms_render_instance(path, &pent, err, sizeof err);
    CHECK(rc != 0, "writing into a missing directory returned 0");
    CHECK(strstr(err, path) != NULL, "message does not name the path: '%s'", err);
    printf("expected error: %s\n", err);
    err[0] = 0;
    rc = tms_render_contact_sheet(path, sheet, 7, NULL, err, sizeof err);
    CHECK(rc != 0 && strstr(err, path) != NULL, "contact sheet into a missing directory: rc %d, '%s'", rc, err);
    snprintf(path, sizeof path, "%s/no_such_dir/x.png.tmp", dir);
    CHECK(!exists(path), "%s exists", path);
    // more thumbnails than a sheet holds
    snprintf(path, sizeof path, "%s/too_many.png", dir);
    err[0] = 0;
    rc = tms_render_contact_sheet(path, sheet, TMS_SHEET_MAX + 1, NULL, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "257 items") && !exists(path), "a sheet of 257: rc %d, '%s'", rc, err);

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
