// render.h: PNG pictures of trained instances, drawn the way the paper draws them, with
// cairo (anti-aliased vector shapes, text in DejaVu Sans through FreeType) into a memory
// surface that stb_image_write encodes.
//
// tms_render_instance writes one picture of one instance. A caption at the top holds the
// label, the loss with its normalisation, and the model as an equation; then, left to right:
//   arrows   (m == 2)  W's columns W_i as arrows from the origin, the unit circle, axes
//                      [-E, E] (E = 1.5, larger when a column is longer than 1.4), one colour
//                      per feature (matplotlib's tab10, cycling), the feature index at the tip;
//            (m == 3)  the same in 3-D, an orthographic view from azimuth 35 deg, elevation
//                      25 deg: the unit sphere's outline and equator, the three axes, arrows
//                      pointing away from the viewer drawn lighter, behind the others;
//            untied:   a second panel with W2's rows drawn the same way;
//   WᵀW      (any m)   the n x n map, blue (-R) - white (0) - red (+R), R = the largest
//                      |entry| rounded up to 2 significant digits, at least 1 (so nothing is
//                      clipped: the colour bar beside the map shows the real range; a value
//                      that is not finite is grey); feature indices on rows and columns;
//   W₂W      (untied)  the map from input to output, same colours and colour bar;
//   b        (bias)    one signed bar per feature on the map's rows, its own symmetric axis
//                      [-Rb, Rb] (Rb as R, no floor), bars coloured by b / Rb;
//   ‖Wᵢ‖     (any m)   one bar per feature on the map's rows, the axis 0 .. 1 (or max ‖W_i‖
//                      rounded up to 0.5, above 10 to 2 significant digits), coloured by the feature's dimensionality D_i in
//                      [0, 1] (viridis: 0 purple .. 1 yellow, REFERENCE.md's measure; 1 = a
//                      dimension of its own, 1/2 an antipodal pair, 2/5 the pentagon);
//   neurons  (hidden ReLU) one row per hidden neuron k, the weights W[k][i] stacked by
//                      feature (positive to the right of 0, negative to the left), each
//                      segment in feature i's colour: the paper's view of a privileged basis.
//
// tms_render_contact_sheet writes a header (title, and the shared colour bar when the
// thumbnails are maps) over a grid of TMS_THUMB_W x TMS_THUMB_H thumbnails, one per item:
// the arrows when m is 2 or 3, else WᵀW on one range for all thumbnails; under each its label
// (on two lines when long) and its loss. Columns = ceil(sqrt(count)) capped at 16; at most TMS_SHEET_MAX items.
//
// Where everything is drawn is given by tms_render_layout (sizes depend on the model only;
// ranges on the data), so callers and tests can check an image without guessing.
//
// Text needs the font file TMS_RENDER_FONT (Debian's fonts-dejavu-core), loaded directly
// with FreeType (no fontconfig lookup); the environment variable TMS_FONT overrides the path.
// A missing font fails the writer with a message that says so.
//
// Both writers render into memory, write "<path>.tmp" and rename(2) it onto path. They
// return 0 on success; on failure they remove the tmp file, write "cannot write <path>:
// <reason>" into err and return nonzero. Link with cairo, cairo-ft, freetype2 and stb.
#ifndef TMS_RENDER_H
#define TMS_RENDER_H

#include <stddef.h>
#include "tms.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TMS_RENDER_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

typedef struct {
    const tms_model_t *model;   // n, m, decoder (tied/untied), activations, bias
    const float *W;             // (m, n) row-major; column i = feature i's direction
    const float *W2;            // (n, m) untied decoder, or NULL
    const float *b;             // (n) output bias, or NULL when the model has none
    const float *importance;    // (n)
    float density;              // probability a feature is active (1 - sparsity)
    float loss_mean_features;   // final loss, mean over batch and features
    const char *label;          // short caption, e.g. "#3  density 0.05  seed 0"
} tms_render_item_t;

typedef struct { int x, y, w, h; } tms_rect_t;   // pixels [x, x + w) x [y, y + h); w = 0: absent

// ----------------------------------------------------------------------------
// geometry of the instance picture

#define TMS_ARROW_PANEL 320     // side of an arrow panel, px
#define TMS_THUMB_W 200         // contact sheet cell
#define TMS_THUMB_H 244
#define TMS_SHEET_MAX_COLS 16
#define TMS_SHEET_MAX 256       // thumbnails on one contact sheet
#define TMS_SHEET_HEAD_H 44     // the contact sheet's header band

// Heat-map side S(n), px: cells of clamp(400 / n, 4, 40) px, at least 160 px in all, while
// n <= 400 (n = 5: 200, n = 20: 400); above that S = 1600 and each pixel shows the nearest
// cell. Pixel (x, y) of a map shows cell (i, j) = ((y - map.y) * n / S, (x - map.x) * n / S)
// (integer division); the b and ‖Wᵢ‖ bars of feature i lie on the same rows.
// Colour bar: +R at its top row, -R at its bottom row, linear in between (row y shows
// R * (1 - 2 (y - cbar.y + 0.5) / cbar.h)). Dimensionality bar: horizontal, D = 0 at its
// left, 1 at its right (column x shows (x - dim_bar.x + 0.5) / dim_bar.w).
// Bars: feature i's ‖W_i‖ bar starts at bars.x and is norm * bars.w / norm_top px long; its b
// bar runs from bias.x + bias.w / 2 (b = 0) to b * (bias.w / 2) / bias_range px to the right.
// Arrow panel k (0 = W columns, 1 = W2 rows) maps the point p to pixel
//   (arrow[k].x + A/2 + s * P(p).u,  arrow[k].y + A/2 - s * P(p).v),  A = arrow[k].w,
//   s = A / (2 * arrow_extent), P the identity for m = 2 and the view's projection for m = 3.
// Every panel's title is in the band y in [title_y, title_y + title_h) over the panel's x range.
typedef struct {
    int width, height;          // whole image
    int n, m;
    tms_rect_t caption;         // the label and loss line, and the model line under it
    int title_y, title_h;
    int arrow_panels;           // 0, 1 (W columns) or 2 (and W2 rows); m == 2 or m == 3 only
    tms_rect_t arrow[2];
    tms_rect_t map, map2;       // WᵀW; W₂W (untied models; w = 0 otherwise)
    tms_rect_t row_labels;      // feature indices left of the map
    tms_rect_t col_labels;      // feature indices above the map
    tms_rect_t cbar;            // the maps' colour bar
    tms_rect_t cbar_labels;     // its tick labels
    tms_rect_t bias;            // b bars (w = 0 without bias)
    tms_rect_t bars;            // ‖Wᵢ‖ bars
    tms_rect_t dim_bar;         // the bars' colour bar (dimensionality)
    tms_rect_t neurons;         // hidden ReLU: the neuron view (w = 0 otherwise)
    int index_every;            // feature indices are printed on every index_every-th row
    // ranges, from the item's data (tms_render_layout); 0 from tms_render_instance_layout
    float map_range;            // R
    float bias_range;           // Rb
    float norm_top;             // right end of the ‖Wᵢ‖ axis
    float arrow_extent;         // E
} tms_render_layout_t;

// The layout of a model's picture (ranges left 0), and of an item's (ranges filled in).
void tms_render_instance_layout(const tms_model_t *M, tms_render_layout_t *L);
void tms_render_layout(const tms_render_item_t *item, tms_render_layout_t *L);
void tms_render_instance_size(const tms_model_t *M, int *width, int *height);

// The symmetric range of values[0..count): max |value| over the finite ones rounded up to 2
// significant digits, at least floor (1.29 -> 1.3, 0.0123 -> 0.013); floor when none is finite
// and nonzero.
float tms_render_symmetric_range(const float *values, size_t count, float floor);

// Pixel (x, y) of the point p (m == 2: p[0..1], m == 3: p[0..2]) in arrow panel k of an
// item's layout; returns nonzero if the panel is absent.
int tms_render_arrow_pixel(const tms_render_layout_t *L, int k, const float *p, int *x, int *y);

// The arrow colour of feature i (the palette cycles every 10 features).
void tms_render_feature_colour(int i, unsigned char rgb[3]);

// Contact sheet: cols = min(16, ceil(sqrt(count))), rows = ceil(count / cols),
// w = max(cols * TMS_THUMB_W, 640), h = TMS_SHEET_HEAD_H + rows * TMS_THUMB_H; 0 x 0 for
// count <= 0. Thumbnail k's top-left corner: ((w - cols * TMS_THUMB_W) / 2 + k % cols *
// TMS_THUMB_W, TMS_SHEET_HEAD_H + k / cols * TMS_THUMB_H); its plot is the THUMB_PLOT (184) px
// square 8 px from the cell's top, centred.
void tms_render_contact_sheet_size(int count, int *w, int *h);

// Bytes the writers hold while drawing (surfaces, W^T W and the like), for memory checks.
double tms_render_instance_bytes(const tms_model_t *M);
double tms_render_contact_sheet_bytes(const tms_model_t *M, int count);

// ----------------------------------------------------------------------------

int tms_render_instance(const char *path, const tms_render_item_t *item, char *err, size_t errlen);
// title: the header's text, e.g. "pentagon: best replicate of each grid point"
int tms_render_contact_sheet(const char *path, const tms_render_item_t *items, int count,
                             const char *title, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif // TMS_RENDER_H
