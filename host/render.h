// render.h: PNG pictures of trained instances, drawn the way the paper draws them.
//
// tms_render_instance writes one picture of one instance; panels, left to right:
//   "W columns"  (m == 2)             W's columns as arrows from the origin, unit circle,
//                                     axes [-1.5, 1.5], one colour per feature (a fixed
//                                     10-colour qualitative palette, cycling);
//   "W2 rows"    (m == 2, untied)     the rows of W2 drawn the same way;
//   "W^T W | b"  (any m)              W^T W (n x n) as a blue-white-red heat map, -1 blue,
//                                     0 white, +1 red, clipped; b beside it as an (n x 1)
//                                     strip in the same colours (when the model has b);
//   "||W_i||"    (any m)              one horizontal bar per feature, on the same rows as
//                                     the heat map, coloured by sqrt(superposition)
//                                     clipped to [0, 1]: black (0) -> purple -> orange ->
//                                     yellow (1).
// A caption at the top holds the label and the loss (mean over batch and features).
//
// tms_render_contact_sheet writes a grid of TMS_THUMB_W x TMS_THUMB_H thumbnails, one per
// item: the W-columns arrow plot when m == 2, else the W^T W heat map, with the label,
// "p=<density>" and "loss <value>" under it. Columns = ceil(sqrt(count)) capped at 16.
//
// Sizes (pixels) and where things are drawn are given by tms_render_instance_layout and
// tms_render_contact_sheet_size, so callers and tests can check an image without guessing.
//
// Both writers render into memory, write "<path>.tmp" and rename(2) it onto path. They
// return 0 on success; on failure they remove the tmp file, write "cannot write <path>:
// <reason>" into err and return nonzero. Link with libstb (pkg-config stb).
#ifndef TMS_RENDER_H
#define TMS_RENDER_H

#include <stddef.h>
#include "tms.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const tms_model_t *model;   // n, m, decoder (tied/untied), activations, bias
    const float *W;             // (m, n) row-major; column i = feature i's direction
    const float *W2;            // (n, m) untied decoder, or NULL
    const float *b;             // (n) output bias, or NULL when the model has none
    const float *importance;    // (n)
    float density;              // 1 - sparsity
    float loss_mean_features;   // final loss, mean over batch and features
    const char *label;          // short caption, e.g. "#3 density 0.05 seed 0"
} tms_render_item_t;

// ----------------------------------------------------------------------------
// geometry of the instance picture

#define TMS_ARROW_PANEL 320     // side of an arrow panel, px
#define TMS_ARROW_EXTENT 1.5f   // an arrow panel shows [-1.5, 1.5] on both axes
#define TMS_THUMB_W 200         // contact sheet cell
#define TMS_THUMB_H 220
#define TMS_SHEET_MAX_COLS 16

// Instance picture: panels side by side (arrow panels 320 px with 36 px gaps, the map, a
// 6 px gap and the strip, 36 px, 200 px of bars), 16 px margins, at least 640 px wide with
// the panels centred; height = 46 (caption) + 28 (titles) + max(S + 48 (colour scales,
// ticks), 336 when there are arrow panels). With bias: n = 5, m = 2 tied: 894 x 410;
// n = 20, m = 5: 718 x 522; n >= 400: 1910 x 1722.
// Heat-map side S(n), px: cells of clamp(400 / n, 4, 40) px while n <= 400 (n = 5: 200,
// n = 20: 400, n = 400: 1600); above that the map stays 1600 px and each pixel shows the
// nearest cell. Cell (i, j) (row i, column j) covers pixels
//   x in [map_x + j * S / n, map_x + (j + 1) * S / n),  y likewise from map_y with i
// (integer division). The bias strip uses the same rows, x in [strip_x, strip_x + strip_w).
// Bars: feature i's bar sits on heat-map row i, starts at bars_x and is ||W_i|| * bars_w / top
// px long, top = 1, or max ||W_i|| rounded up to a multiple of 0.5 when some norm is above 1.
// Arrow panel k (0 = W columns, 1 = W2 rows) maps the point (u, v) to pixel
//   (arrow_x[k] + A/2 + u * A / 3,  arrow_y + A/2 - v * A / 3),  A = arrow_size (y up).
typedef struct {
    int width, height;        // whole image
    int arrow_panels;         // 0, 1 (W columns) or 2 (W columns, W2 rows)
    int arrow_x[2], arrow_y;  // top-left corner of each arrow panel
    int arrow_size;           // TMS_ARROW_PANEL
    int map_x, map_y, map_size;
    int strip_x, strip_w;     // strip_w = 0 when the model has no output bias (when it has
                              // one and the item's b is NULL, the strip's place stays blank)
    int bars_x, bars_y, bars_w, bars_h;
} tms_render_layout_t;

void tms_render_instance_layout(const tms_model_t *M, tms_render_layout_t *L);
void tms_render_instance_size(const tms_model_t *M, int *width, int *height);

// Pixel (x, y) of the point (u, v) of arrow panel k; returns nonzero if the panel is absent.
int tms_render_arrow_pixel(const tms_render_layout_t *L, int k, float u, float v, int *x, int *y);

// The arrow colour of feature i (the palette cycles every 10 features).
void tms_render_feature_colour(int i, unsigned char rgb[3]);

// Contact sheet: cols = min(16, ceil(sqrt(count))), rows = ceil(count / cols),
// w = cols * TMS_THUMB_W, h = rows * TMS_THUMB_H (0 x 0 for count <= 0).
void tms_render_contact_sheet_size(int count, int *w, int *h);

// ----------------------------------------------------------------------------

int tms_render_instance(const char *path, const tms_render_item_t *item, char *err, size_t errlen);
int tms_render_contact_sheet(const char *path, const tms_render_item_t *items, int count,
                             char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif // TMS_RENDER_H
