// render.c: PNG pictures of trained instances (render.h). cairo draws the panels into an
// RGB24 image surface (anti-aliased paths, text in DejaVu Sans through cairo's FreeType
// backend); the pixels are then encoded by stb_image_write into "<path>.tmp" and renamed.
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <cairo-ft.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <stb_image_write.h>

#include "geometry.h"
#include "render.h"

// ----------------------------------------------------------------------------
// layout constants of the instance picture (render.h documents the resulting geometry)

#define MARGIN 20
#define CAPTION_Y 12
#define CAPTION_H 44    // label and loss (16 px), the model (12 px)
#define TITLE_H 26      // panel titles (15 px)
#define COL_H 16        // feature indices above the maps
#define LABEL_W 28      // feature indices left of the map
#define PANEL_GAP 40
#define MAP_GAP 24      // between WᵀW and W₂W
#define CBAR_GAP 12
#define CBAR_W 14
#define CBAR_LABEL_W 44
#define BIAS_W 120
#define BARS_W 200
#define BARS_RIGHT 44   // the value at a bar's end
#define NEURON_LABEL_W 30
#define NEURON_W 240
#define LEGEND_H 62     // ticks, the dimensionality bar and its labels under the panels
#define MIN_WIDTH 640
#define MAP_TARGET 400
#define MAP_MIN 160
#define MAP_MAX 1600

// font sizes, px
#define FS_CAPTION 16
#define FS_MODEL 12
#define FS_TITLE 15
#define FS_TICK 11
#define FS_INDEX 10

// contact sheet cell
#define THUMB_PLOT 184
#define THUMB_PAD 8

// the 3-D view: azimuth and elevation, degrees
#define VIEW_AZIMUTH 35.0
#define VIEW_ELEVATION 25.0

// ----------------------------------------------------------------------------
// colours

typedef struct { unsigned char r, g, b; } rgb_t;

static const rgb_t WHITE = {255, 255, 255};
static const rgb_t INK = {25, 25, 25};        // text
static const rgb_t MUTED = {100, 100, 100};   // secondary text, ticks
static const rgb_t FRAME = {170, 170, 170};
static const rgb_t GRID = {225, 225, 225};
static const rgb_t CIRCLE = {150, 150, 150};
static const rgb_t NAN_GREY = {128, 128, 128};

// tab10, matplotlib's default qualitative palette
static const rgb_t PALETTE[10] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

static rgb_t feature_colour(int i) { return PALETTE[(i < 0 ? 0 : i) % 10]; }

void tms_render_feature_colour(int i, unsigned char rgb[3]) {
    rgb_t c = feature_colour(i);
    rgb[0] = c.r; rgb[1] = c.g; rgb[2] = c.b;
}

// piecewise-linear colour map through k evenly spaced stops, t in [0, 1]
static rgb_t ramp(const rgb_t *stops, int k, float t) {
    if (!(t > 0.0f)) t = 0.0f;
    if (t > 1.0f) t = 1.0f;
    float s = t * (k - 1);
    int i = s >= k - 1 ? k - 2 : (int)s;
    float f = s - i;
    rgb_t a = stops[i], b = stops[i + 1];
    rgb_t c = {(unsigned char)lrintf(a.r + f * (b.r - a.r)), (unsigned char)lrintf(a.g + f * (b.g - a.g)),
               (unsigned char)lrintf(a.b + f * (b.b - a.b))};
    return c;
}

// diverging, t in [-1, 1]: ColorBrewer RdBu's blues and reds around white; not finite grey
static rgb_t diverging(float t) {
    static const rgb_t STOPS[5] = {{33, 102, 172}, {103, 169, 207}, {255, 255, 255}, {239, 138, 98}, {178, 24, 43}};
    if (!isfinite(t)) return NAN_GREY;
    return ramp(STOPS, 5, 0.5f * (t + 1.0f));
}

// viridis, t in [0, 1]
static rgb_t sequential(float t) {
    static const rgb_t STOPS[5] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (t != t) return NAN_GREY;
    return ramp(STOPS, 5, t);
}

// ----------------------------------------------------------------------------
// the font: one FreeType face for the process, loaded on first use from its file

static struct {
    pthread_once_t once;
    FT_Library lib;
    FT_Face face;
    cairo_font_face_t *cairo_face;
    char err[512];
} font = {PTHREAD_ONCE_INIT, NULL, NULL, NULL, ""};

static void font_load(void) {
    const char *path = getenv("TMS_FONT");
    if (!path || !*path) path = TMS_RENDER_FONT;
    FT_Error e = FT_Init_FreeType(&font.lib);
    if (e) { snprintf(font.err, sizeof font.err, "FreeType failed to start (error %d)", e); return; }
    e = FT_New_Face(font.lib, path, 0, &font.face);
    if (e) {
        snprintf(font.err, sizeof font.err,
                 "cannot load the font %s (FreeType error %d): install Debian's fonts-dejavu-core "
                 "(scripts/install-deps.sh does), or set TMS_FONT to a TrueType font file", path, e);
        FT_Done_FreeType(font.lib);
        font.lib = NULL;
        return;
    }
    font.cairo_face = cairo_ft_font_face_create_for_ft_face(font.face, 0);
    if (cairo_font_face_status(font.cairo_face) != CAIRO_STATUS_SUCCESS) {
        snprintf(font.err, sizeof font.err, "cairo cannot use the font %s: %s", path,
                 cairo_status_to_string(cairo_font_face_status(font.cairo_face)));
        font.cairo_face = NULL;
    }
}

static const char *font_ready(void) {
    pthread_once(&font.once, font_load);
    return font.cairo_face ? NULL : font.err;
}

// ----------------------------------------------------------------------------
// drawing helpers over cairo

static void set_colour(cairo_t *cr, rgb_t c, double alpha) {
    cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

static void fill_rect(cairo_t *cr, double x, double y, double w, double h, rgb_t c) {
    set_colour(cr, c, 1.0);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill(cr);
}

// 1 px outline just outside the rectangle [x, x + w) x [y, y + h)
static void frame_rect(cairo_t *cr, tms_rect_t r, rgb_t c) {
    set_colour(cr, c, 1.0);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, r.x - 0.5, r.y - 0.5, r.w + 1.0, r.h + 1.0);
    cairo_stroke(cr);
}

static void line(cairo_t *cr, double x0, double y0, double x1, double y1, double width, rgb_t c, double alpha) {
    set_colour(cr, c, alpha);
    cairo_set_line_width(cr, width);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
}

// Shaft from (x0, y0) to the tip (x1, y1) and a filled head whose length shrinks for short arrows.
static void arrow(cairo_t *cr, double x0, double y0, double x1, double y1, double width, double head,
                  rgb_t c, double alpha) {
    double dx = x1 - x0, dy = y1 - y0, len = sqrt(dx * dx + dy * dy);
    if (!isfinite(len)) return;
    if (len < 1.0) { line(cr, x0, y0, x1, y1, width, c, alpha); return; }
    double h = head < 0.45 * len ? head : 0.45 * len, ux = dx / len, uy = dy / len;
    double bx = x1 - h * ux, by = y1 - h * uy; // the base of the head
    cairo_push_group(cr);                      // shaft and head overlap: one alpha for both
    line(cr, x0, y0, bx + 0.3 * h * ux, by + 0.3 * h * uy, width, c, 1.0);
    set_colour(cr, c, 1.0);
    cairo_move_to(cr, x1, y1);
    cairo_line_to(cr, bx - 0.45 * h * uy, by + 0.45 * h * ux);
    cairo_line_to(cr, bx + 0.45 * h * uy, by - 0.45 * h * ux);
    cairo_close_path(cr);
    cairo_fill(cr);
    cairo_pop_group_to_source(cr);
    cairo_paint_with_alpha(cr, alpha);
}

// Text with its anchor at (x, y): ha 0 left, 0.5 centre, 1 right; va 0 top (of the capitals'
// ascent), 0.5 middle, 1 bottom (baseline + descent).
static void text(cairo_t *cr, double x, double y, double size, double ha, double va, rgb_t c, const char *s) {
    if (!s || !*s) return;
    cairo_set_font_size(cr, size);
    cairo_font_extents_t fe;
    cairo_text_extents_t te;
    cairo_font_extents(cr, &fe);
    cairo_text_extents(cr, s, &te);
    double top = fe.ascent * 0.8; // capitals and digits reach about 0.8 of the ascent
    double baseline = y + top - va * (top + fe.descent);
    set_colour(cr, c, 1.0);
    cairo_move_to(cr, x - ha * te.x_advance, baseline);
    cairo_show_text(cr, s);
}

static double text_width(cairo_t *cr, double size, const char *s) {
    cairo_text_extents_t te;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

// s shortened to fit room px (whole UTF-8 characters, then "…"), into out
static void fit(cairo_t *cr, double size, const char *s, double room, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", s ? s : "");
    if (text_width(cr, size, out) <= room) return;
    size_t len = strlen(out);
    while (len > 0) {
        do len--; while (len > 0 && ((unsigned char)out[len] & 0xC0) == 0x80);
        if (len + 4 > outlen) continue;
        memcpy(out + len, "\xE2\x80\xA6", 4); // …
        if (text_width(cr, size, out) <= room) return;
    }
    out[0] = 0;
}

// "%.3g", with U+2212 for the minus sign
static void number(char *out, size_t outlen, double v) {
    char t[32];
    snprintf(t, sizeof t, "%.3g", v);
    if (t[0] == '-') snprintf(out, outlen, "\xE2\x88\x92%s", t + 1);
    else snprintf(out, outlen, "%s", t);
}

// ----------------------------------------------------------------------------
// ranges and geometry

float tms_render_symmetric_range(const float *values, size_t count, float floor_value) {
    double top = 0.0;
    for (size_t k = 0; k < count; k++) {
        double a = fabs((double)values[k]);
        if (isfinite(a) && a > top) top = a;
    }
    if (!(top > 0.0)) return floor_value > 0.0f ? floor_value : 1.0f;
    double unit = pow(10.0, floor(log10(top)) - 1.0); // 2 significant digits
    double r = ceil(top / unit * (1.0 - 1e-5)) * unit; // float inputs: 0.6f is 0.6000000238
    if (r < top) r = top;
    return (float)(r > floor_value ? r : floor_value);
}

static int map_side(int n) {
    if (n <= 0) return 0;
    if (n > MAP_MAX / 4) return MAP_MAX;
    int cell = MAP_TARGET / n;
    cell = cell < 4 ? 4 : (cell > 40 ? 40 : cell);
    if (cell * n < MAP_MIN) cell = (MAP_MIN + n - 1) / n;
    return cell * n;
}

// Feature indices on every k-th row, k in 1, 2, 5, 10, 20, 50, ... with k rows >= 12 px.
static int index_step(int n, int S) {
    static const int steps[3] = {1, 2, 5};
    for (long scale = 1;; scale *= 10)
        for (int s = 0; s < 3; s++) {
            long k = steps[s] * scale;
            if ((double)k * S / n >= 12.0 || k >= n) return (int)k;
        }
}

void tms_render_instance_layout(const tms_model_t *M, tms_render_layout_t *L) {
    memset(L, 0, sizeof *L);
    const int n = M->n, m = M->m, S = map_side(n);
    L->n = n;
    L->m = m;
    L->title_h = TITLE_H;
    L->title_y = CAPTION_Y + CAPTION_H + 8;
    L->arrow_panels = (m == 2 || m == 3) ? (M->decoder == TMS_DECODER_UNTIED ? 2 : 1) : 0;
    L->index_every = index_step(n, S);
    const int top = CAPTION_Y + CAPTION_H + 8 + TITLE_H + COL_H; // the panels' top edge

    int x = MARGIN;
    for (int k = 0; k < L->arrow_panels; k++) {
        L->arrow[k] = (tms_rect_t){x, top, TMS_ARROW_PANEL, TMS_ARROW_PANEL};
        x += TMS_ARROW_PANEL + PANEL_GAP;
    }
    L->row_labels = (tms_rect_t){x, top, LABEL_W - 4, S};
    x += LABEL_W;
    L->map = (tms_rect_t){x, top, S, S};
    L->col_labels = (tms_rect_t){x, top - COL_H, S, COL_H - 2};
    x += S;
    if (M->decoder == TMS_DECODER_UNTIED) {
        x += MAP_GAP;
        L->map2 = (tms_rect_t){x, top, S, S};
        x += S;
    }
    x += CBAR_GAP;
    L->cbar = (tms_rect_t){x, top, CBAR_W, S};
    x += CBAR_W + 4;
    L->cbar_labels = (tms_rect_t){x, top - 8, CBAR_LABEL_W, S + 16};
    x += CBAR_LABEL_W;
    if (M->bias) {
        x += PANEL_GAP;
        L->bias = (tms_rect_t){x, top, BIAS_W, S};
        x += BIAS_W;
    }
    x += PANEL_GAP;
    L->bars = (tms_rect_t){x, top, BARS_W, S};
    L->dim_bar = (tms_rect_t){x, top + S + 34, 100, 9};
    x += BARS_W + BARS_RIGHT;
    if (M->hidden_act == TMS_ACT_RELU) {
        x += PANEL_GAP - 10;
        L->neurons = (tms_rect_t){x + NEURON_LABEL_W, top, NEURON_W, S};
        x += NEURON_LABEL_W + NEURON_W;
    }
    x += MARGIN;

    // centred when the image is wider than the panels
    int width = x < MIN_WIDTH ? MIN_WIDTH : x, shift = (width - x) / 2;
    tms_rect_t *all[] = {&L->arrow[0], &L->arrow[1], &L->row_labels, &L->map, &L->col_labels, &L->map2,
                         &L->cbar, &L->cbar_labels, &L->bias, &L->bars, &L->dim_bar, &L->neurons};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (all[k]->w) all[k]->x += shift;
    L->caption = (tms_rect_t){MARGIN, CAPTION_Y, width - 2 * MARGIN, CAPTION_H};
    int content = S + LEGEND_H;
    if (L->arrow_panels && TMS_ARROW_PANEL + 12 > content) content = TMS_ARROW_PANEL + 12;
    L->width = width;
    L->height = top + content + 8;
}

static float column_norm(const float *v, int stride_i, int stride_k, int i, int m) {
    double s = 0.0;
    for (int k = 0; k < m; k++) s += (double)v[(size_t)i * stride_i + (size_t)k * stride_k] * v[(size_t)i * stride_i + (size_t)k * stride_k];
    return (float)sqrt(s);
}

// E = 1.5, or the longest arrow + 0.1 rounded up to 0.5 when it is longer than 1.4
static float arrow_extent(const tms_render_item_t *it) {
    const tms_model_t *M = it->model;
    float top = 0.0f;
    for (int i = 0; i < M->n; i++) {
        float a = column_norm(it->W, 1, M->n, i, M->m);
        if (isfinite(a) && a > top) top = a;
        if (M->decoder == TMS_DECODER_UNTIED && it->W2) {
            a = column_norm(it->W2, M->m, 1, i, M->m);
            if (isfinite(a) && a > top) top = a;
        }
    }
    return top > 1.4f ? ceilf((top + 0.1f) * 2.0f) / 2.0f : 1.5f;
}

static void gram_untied(const tms_render_item_t *it, float *out) { // W2 W (n, n)
    const int n = it->model->n, m = it->model->m;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < m; k++) s += (double)it->W2[(size_t)i * m + k] * it->W[(size_t)k * n + j];
            out[(size_t)i * n + j] = (float)s;
        }
}

void tms_render_layout(const tms_render_item_t *it, tms_render_layout_t *L) {
    const tms_model_t *M = it->model;
    const int n = M->n, m = M->m;
    tms_render_instance_layout(M, L);
    // R over WᵀW (and W₂W), in rows so that no n x n buffer is needed here
    double top = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double g = 0.0, g2 = 0.0;
            for (int k = 0; k < m; k++) g += (double)it->W[(size_t)k * n + i] * it->W[(size_t)k * n + j];
            // the maps hold floats: an entry beyond float's range is drawn grey, not counted
            if (isfinite((float)g) && fabs(g) > top) top = fabs(g);
            if (M->decoder == TMS_DECODER_UNTIED && it->W2) {
                for (int k = 0; k < m; k++) g2 += (double)it->W2[(size_t)i * m + k] * it->W[(size_t)k * n + j];
                if (isfinite((float)g2) && fabs(g2) > top) top = fabs(g2);
            }
        }
    float t = (float)top;
    L->map_range = tms_render_symmetric_range(&t, 1, 1.0f);
    L->bias_range = M->bias && it->b ? tms_render_symmetric_range(it->b, (size_t)n, 0.0f) : 0.0f;
    float nt = 1.0f;
    for (int i = 0; i < n; i++) {
        float a = column_norm(it->W, 1, n, i, m);
        if (!isfinite(a) || a <= nt) continue;
        nt = a <= 10.0f ? ceilf(a * 2.0f) / 2.0f : tms_render_symmetric_range(&a, 1, 0.0f);
    }
    L->norm_top = nt;
    L->arrow_extent = L->arrow_panels ? arrow_extent(it) : 0.0f;
}

void tms_render_instance_size(const tms_model_t *M, int *width, int *height) {
    tms_render_layout_t L;
    tms_render_instance_layout(M, &L);
    *width = L.width;
    *height = L.height;
}

// the 3-D view: screen (u, v) with v up, and the depth towards the viewer
static void project3(const float *p, double *u, double *v, double *depth) {
    const double a = VIEW_AZIMUTH * M_PI / 180.0, e = VIEW_ELEVATION * M_PI / 180.0;
    double toward = p[0] * cos(a) + p[1] * sin(a);
    *u = -p[0] * sin(a) + p[1] * cos(a);
    *v = p[2] * cos(e) - toward * sin(e);
    if (depth) *depth = toward * cos(e) + p[2] * sin(e);
}

static void panel_point(const tms_rect_t *r, float extent, int dims, const float *p, double *x, double *y) {
    double u = p[0], v = p[1];
    if (dims == 3) project3(p, &u, &v, NULL);
    double s = r->w / (2.0 * extent);
    *x = r->x + r->w / 2.0 + s * u;
    *y = r->y + r->w / 2.0 - s * v;
}

int tms_render_arrow_pixel(const tms_render_layout_t *L, int k, const float *p, int *x, int *y) {
    if (k < 0 || k >= L->arrow_panels || !(L->arrow_extent > 0.0f)) return 1;
    double px, py;
    panel_point(&L->arrow[k], L->arrow_extent, L->m, p, &px, &py);
    *x = (int)floor(px);
    *y = (int)floor(py);
    return 0;
}

static int sheet_cols(int count) {
    int cols = (int)ceil(sqrt((double)count));
    while (cols * cols < count) cols++; // guard against sqrt rounding
    return cols > TMS_SHEET_MAX_COLS ? TMS_SHEET_MAX_COLS : cols;
}

void tms_render_contact_sheet_size(int count, int *w, int *h) {
    if (count <= 0) { *w = 0; *h = 0; return; }
    int cols = sheet_cols(count), rows = (count + cols - 1) / cols;
    *w = cols * TMS_THUMB_W < MIN_WIDTH ? MIN_WIDTH : cols * TMS_THUMB_W;
    *h = TMS_SHEET_HEAD_H + rows * TMS_THUMB_H;
}

double tms_render_instance_bytes(const tms_model_t *M) {
    tms_render_layout_t L;
    tms_render_instance_layout(M, &L);
    double px = (double)L.width * L.height, nn = (double)M->n * M->n;
    // the surface (4 bytes a pixel), the RGB copy (3), the PNG encoder's buffers (about 2),
    // two maps' pixel surfaces, WᵀW and W₂W, per-feature arrays, cairo's and FreeType's own
    return px * 9.0 + 2.0 * 4.0 * L.map.w * L.map.h + 2.0 * nn * sizeof(float) + 16.0 * M->n * sizeof(float) +
           (4 << 20);
}

double tms_render_contact_sheet_bytes(const tms_model_t *M, int count) {
    if (count > TMS_SHEET_MAX) count = TMS_SHEET_MAX;
    int w, h;
    tms_render_contact_sheet_size(count, &w, &h);
    return (double)w * h * 9.0 + 4.0 * THUMB_PLOT * THUMB_PLOT + (double)M->n * M->n * sizeof(float) + (4 << 20);
}

// ----------------------------------------------------------------------------
// panels

// values (rows, cols) in the diverging colours over [-range, range], filling r; each pixel
// shows the cell it falls in (the nearest when there are more cells than pixels)
static int panel_map(cairo_t *cr, tms_rect_t r, const float *values, int rows, int cols, float range) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, r.w, r.h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return 1; }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int py = 0; py < r.h; py++) {
        int i = (int)((long)py * rows / r.h);
        uint32_t *row = (uint32_t *)(data + (size_t)py * stride);
        for (int px = 0; px < r.w; px++) {
            int j = (int)((long)px * cols / r.w);
            rgb_t c = diverging(values[(size_t)i * cols + j] / range);
            row[px] = (uint32_t)c.r << 16 | (uint32_t)c.g << 8 | c.b;
        }
    }
    cairo_surface_mark_dirty(s);
    cairo_set_source_surface(cr, s, r.x, r.y);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_fill(cr);
    cairo_surface_destroy(s);
    frame_rect(cr, r, FRAME);
    return 0;
}

// feature indices: right-aligned left of the rows of r (labels != NULL), centred above its
// columns (cols != NULL)
static void feature_indices(cairo_t *cr, const tms_render_layout_t *L, const tms_rect_t *rows_of,
                            const tms_rect_t *rows, const tms_rect_t *cols) {
    int n = L->n, step = L->index_every;
    char s[16];
    for (int i = 0; i < n; i += step) {
        snprintf(s, sizeof s, "%d", i);
        double c = (i + 0.5) * rows_of->h / n;
        if (rows) text(cr, rows->x + rows->w, rows_of->y + c, FS_INDEX, 1.0, 0.5, MUTED, s);
        if (cols) text(cr, cols->x + (i + 0.5) * cols->w / n, cols->y + cols->h, FS_INDEX, 0.5, 1.0, MUTED, s);
    }
}

// a vertical colour bar of the diverging map: +range at the top, ticks at -range, 0, +range
static void colour_bar(cairo_t *cr, tms_rect_t r, tms_rect_t labels, float range) {
    for (int y = 0; y < r.h; y++) {
        float v = 1.0f - 2.0f * (y + 0.5f) / r.h;
        fill_rect(cr, r.x, r.y + y, r.w, 1, diverging(v));
    }
    frame_rect(cr, r, FRAME);
    const float ticks[5] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f};
    for (int k = 0; k < 5; k++) {
        if (r.h < 120 && (k == 1 || k == 3)) continue;
        char s[32];
        number(s, sizeof s, ticks[k] * range);
        double y = r.y + (1.0 - ticks[k]) * 0.5 * r.h;
        if (k == 0) y = r.y + 0.5;
        if (k == 4) y = r.y + r.h - 0.5;
        line(cr, r.x + r.w, y, r.x + r.w + 3, y, 1.0, MUTED, 1.0);
        text(cr, labels.x + 1, y, FS_TICK, 0.0, 0.5, MUTED, s);
    }
}

// A tick step for [0, top]: 1, 2 or 5 times a power of ten, at most 5 steps.
static double tick_step(double top) {
    double unit = pow(10.0, floor(log10(top / 5.0)));
    for (int k = 0; k < 3; k++) {
        const double f[3] = {1.0, 2.0, 5.0};
        if (f[k] * unit * 5.0 >= top * (1.0 - 1e-6)) return f[k] * unit;
    }
    return 10.0 * unit;
}

// ticks and labels under a horizontal axis [x0, x0 + w] showing [lo, hi], at lo, mid and hi
// (or at lo + multiples of step when step > 0)
static void axis_ticks(cairo_t *cr, double x0, double w, double y, float lo, float hi, double step) {
    char s[32];
    if (step > 0.0) {
        for (int k = 0; k <= 10 && lo + k * step <= hi * (1.0 + 1e-6); k++) {
            double g = lo + k * step, x = x0 + (g - lo) / (hi - lo) * w;
            line(cr, x, y, x, y + 4, 1.0, MUTED, 1.0);
            number(s, sizeof s, g);
            text(cr, x, y + 7, FS_TICK, 0.5, 0.0, MUTED, s);
        }
        return;
    }
    for (int k = 0; k < 3; k++) {
        float g = lo + 0.5f * k * (hi - lo);
        double x = x0 + 0.5 * k * w;
        line(cr, x, y, x, y + 4, 1.0, MUTED, 1.0);
        number(s, sizeof s, g);
        text(cr, x, y + 7, FS_TICK, 0.5, 0.0, MUTED, s);
    }
}

static void row_span(const tms_rect_t *r, int n, int i, double *y0, double *h) {
    double row = (double)r->h / n, pad = row >= 5.0 ? 0.15 * row : 0.0;
    *y0 = r->y + i * row + pad;
    *h = row - 2.0 * pad;
    if (*h < 1.0) *h = 1.0;
}

// b: signed bars from the centre, on the map's rows
static void panel_bias(cairo_t *cr, const tms_render_layout_t *L, const float *b) {
    tms_rect_t r = L->bias;
    const int n = L->n;
    double cx = r.x + r.w / 2.0, half = r.w / 2.0;
    for (int k = 1; k <= 2; k++) {
        line(cr, cx - k * half / 2 + 0.5, r.y, cx - k * half / 2 + 0.5, r.y + r.h, 1.0, GRID, 1.0);
        line(cr, cx + k * half / 2 - 0.5, r.y, cx + k * half / 2 - 0.5, r.y + r.h, 1.0, GRID, 1.0);
    }
    for (int i = 0; i < n; i++) {
        double y0, h, len = b[i] / L->bias_range * half;
        if (!isfinite(len)) continue;
        row_span(&r, n, i, &y0, &h);
        fill_rect(cr, len >= 0 ? cx : cx + len, y0, fabs(len), h, diverging(b[i] / L->bias_range));
    }
    line(cr, cx, r.y, cx, r.y + r.h, 1.0, INK, 1.0);
    axis_ticks(cr, r.x, r.w, r.y + r.h, -L->bias_range, L->bias_range, 0.0f);
}

// ‖Wᵢ‖ coloured by dimensionality, its value at the bar's end when the rows are tall enough
static void panel_norms(cairo_t *cr, const tms_render_layout_t *L, const float *norm, const float *dim) {
    tms_rect_t r = L->bars;
    const int n = L->n;
    float top = L->norm_top;
    double step = top <= 2.0f ? 0.5 : tick_step(top);
    for (int k = 1; k <= 10 && k * step <= top * (1.0 + 1e-6); k++) {
        double gx = r.x + k * step / top * r.w;
        line(cr, gx - 0.5, r.y, gx - 0.5, r.y + r.h, 1.0, k * step == 1.0 ? CIRCLE : GRID, 1.0);
    }
    double row = (double)r.h / n;
    for (int i = 0; i < n; i++) {
        double y0, h, len = norm[i] / top;
        if (!(len > 0.0) || !isfinite(len)) continue;
        if (len > 1.0) len = 1.0;
        row_span(&r, n, i, &y0, &h);
        fill_rect(cr, r.x, y0, len * r.w, h, sequential(dim[i]));
        if (row >= 14.0) {
            char s[32];
            snprintf(s, sizeof s, norm[i] < 100.0f ? "%.2f" : "%.3g", norm[i]);
            text(cr, r.x + len * r.w + 4, r.y + (i + 0.5) * row, FS_INDEX, 0.0, 0.5, MUTED, s);
        }
    }
    line(cr, r.x - 0.5, r.y, r.x - 0.5, r.y + r.h, 1.0, INK, 1.0);
    axis_ticks(cr, r.x, r.w, r.y + r.h, 0.0f, top, step);
    // the colour's key: dimensionality 0 .. 1
    tms_rect_t d = L->dim_bar;
    for (int x = 0; x < d.w; x++) fill_rect(cr, d.x + x, d.y, 1, d.h, sequential((x + 0.5f) / d.w));
    frame_rect(cr, d, FRAME);
    text(cr, d.x, d.y + d.h + 3, FS_INDEX, 0.0, 0.0, MUTED, "0");
    text(cr, d.x + d.w / 2.0, d.y + d.h + 3, FS_INDEX, 0.5, 0.0, MUTED, "\xC2\xBD");
    text(cr, d.x + d.w, d.y + d.h + 3, FS_INDEX, 1.0, 0.0, MUTED, "1");
    text(cr, d.x + d.w + 6, d.y + d.h / 2.0, FS_TICK, 0.0, 0.5, MUTED, "dimensionality D\xE1\xB5\xA2");
}

// hidden ReLU: per neuron k, the weights W[k][i] stacked by feature, positive to the right
static void panel_neurons(cairo_t *cr, const tms_render_layout_t *L, const float *W) {
    tms_rect_t r = L->neurons;
    const int n = L->n, m = L->m;
    double top = 0.0;
    for (int k = 0; k < m; k++) {
        double pos = 0.0, neg = 0.0;
        for (int i = 0; i < n; i++) {
            double w = W[(size_t)k * n + i];
            if (w > 0) pos += w; else if (w < 0) neg -= w;
        }
        if (isfinite(pos) && pos > top) top = pos;
        if (isfinite(neg) && neg > top) top = neg;
    }
    float t = (float)top;
    float range = tms_render_symmetric_range(&t, 1, 0.0f);
    double cx = r.x + r.w / 2.0, half = r.w / 2.0, row = (double)r.h / m;
    double bar = row * 0.7 < 36.0 ? row * 0.7 : 36.0;
    for (int k = 0; k < m; k++) {
        double yc = r.y + (k + 0.5) * row, y0 = yc - bar / 2.0;
        double at[2] = {cx, cx}; // the positive and negative stacks' ends
        for (int i = 0; i < n; i++) {
            double w = W[(size_t)k * n + i], len = w / range * half;
            if (!isfinite(len) || len == 0.0) continue;
            int side = len < 0;
            double x0 = side ? at[1] + len : at[0];
            fill_rect(cr, x0, y0, fabs(len), bar, feature_colour(i));
            if (fabs(len) >= 3.0) line(cr, side ? x0 : x0 + fabs(len), y0, side ? x0 : x0 + fabs(len), y0 + bar, 1.0, WHITE, 1.0);
            if (fabs(len) >= 16.0 && bar >= 12.0) {
                char s[16];
                snprintf(s, sizeof s, "%d", i);
                text(cr, x0 + fabs(len) / 2.0, yc, FS_INDEX, 0.5, 0.5, WHITE, s);
            }
            at[side] += len;
        }
        char s[16];
        snprintf(s, sizeof s, "h%d", k);
        if (row >= 11.0 || k % (int)ceil(11.0 / row) == 0) text(cr, r.x - 6, yc, FS_INDEX, 1.0, 0.5, MUTED, s);
    }
    line(cr, cx, r.y, cx, r.y + r.h, 1.0, INK, 1.0);
    frame_rect(cr, r, GRID);
    axis_ticks(cr, r.x, r.w, r.y + r.h, -range, range, 0.0f);
}

// arrows from the origin: W's columns (stride_i 1, stride_k n) or W2's rows (stride_i m,
// stride_k 1), in 2-D or in the 3-D view; feature indices at the tips when labels
static void panel_arrows(cairo_t *cr, tms_rect_t r, float extent, int dims, const float *vec, int n,
                         int stride_i, int stride_k, double width, double head, int labels) {
    double ox = r.x + r.w / 2.0, oy = r.y + r.h / 2.0, s = r.w / (2.0 * extent);
    cairo_save(cr);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_clip(cr);
    float e[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    if (dims == 2) {
        line(cr, r.x, oy, r.x + r.w, oy, 1.0, GRID, 1.0);
        line(cr, ox, r.y, ox, r.y + r.h, 1.0, GRID, 1.0);
        set_colour(cr, CIRCLE, 1.0);
        cairo_set_line_width(cr, 1.2);
        cairo_arc(cr, ox, oy, s, 0.0, 2.0 * M_PI);
        cairo_stroke(cr);
    } else {
        // the sphere's outline, its equator (dashed) and the three axes from -1 to 1
        set_colour(cr, CIRCLE, 1.0);
        cairo_set_line_width(cr, 1.2);
        cairo_arc(cr, ox, oy, s, 0.0, 2.0 * M_PI);
        cairo_stroke(cr);
        const double dash[1] = {4.0};
        cairo_set_dash(cr, dash, 1, 0.0);
        cairo_set_line_width(cr, 1.0);
        for (int k = 0; k <= 72; k++) {
            float p[3] = {cosf(k * (float)M_PI / 36.0f), sinf(k * (float)M_PI / 36.0f), 0.0f};
            double x, y;
            panel_point(&r, extent, 3, p, &x, &y);
            if (k == 0) cairo_move_to(cr, x, y); else cairo_line_to(cr, x, y);
        }
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0.0);
        for (int a = 0; a < 3; a++) {
            float lo[3] = {-e[a][0], -e[a][1], -e[a][2]}, hi[3] = {1.2f * e[a][0], 1.2f * e[a][1], 1.2f * e[a][2]};
            float at[3] = {1.38f * e[a][0], 1.38f * e[a][1], 1.38f * e[a][2]};
            double x0, y0, x1, y1, xl, yl;
            panel_point(&r, extent, 3, lo, &x0, &y0);
            panel_point(&r, extent, 3, hi, &x1, &y1);
            panel_point(&r, extent, 3, at, &xl, &yl);
            line(cr, x0, y0, x1, y1, 1.0, CIRCLE, 0.6);
            if (labels) { // the hidden dimensions' names, beyond the feature indices at unit tips
                char t[8];
                snprintf(t, sizeof t, "h%d", a);
                text(cr, xl, yl, FS_INDEX, 0.5, 0.5, CIRCLE, t);
            }
        }
    }
    // back to front (in 3-D); arrows pointing away from the viewer lighter
    int order[64], count = n < 64 ? n : 64, *ord = order, *heap = NULL;
    double *depth = NULL, dbuf[64];
    if (n > 64) {
        heap = malloc((size_t)n * sizeof(int));
        depth = malloc((size_t)n * sizeof(double));
        if (heap && depth) { ord = heap; count = n; } else { free(depth); depth = NULL; }
    }
    if (!depth) depth = dbuf;
    for (int i = 0; i < count; i++) {
        float p[3] = {0, 0, 0};
        for (int k = 0; k < dims; k++) p[k] = vec[(size_t)i * stride_i + (size_t)k * stride_k];
        double u, v;
        if (dims == 3) project3(p, &u, &v, &depth[i]); else depth[i] = 0.0;
        ord[i] = i;
    }
    for (int a = 1; a < count; a++) // insertion sort by depth, stable
        for (int b = a; b > 0 && depth[ord[b]] < depth[ord[b - 1]]; b--) { int t = ord[b]; ord[b] = ord[b - 1]; ord[b - 1] = t; }
    for (int q = 0; q < count; q++) {
        int i = ord[q];
        float p[3] = {0, 0, 0};
        for (int k = 0; k < dims; k++) p[k] = vec[(size_t)i * stride_i + (size_t)k * stride_k];
        double x, y;
        panel_point(&r, extent, dims, p, &x, &y);
        arrow(cr, ox, oy, x, y, width, head, feature_colour(i), depth[i] < -0.05 ? 0.4 : 1.0);
        double dx = x - ox, dy = y - oy, len = sqrt(dx * dx + dy * dy);
        if (labels && len > 12.0 && isfinite(len)) {
            char t[16];
            snprintf(t, sizeof t, "%d", i);
            text(cr, x + 11.0 * dx / len, y + 11.0 * dy / len, FS_TICK, 0.5, 0.5, feature_colour(i), t);
        }
    }
    free(heap);
    if (depth != dbuf) free(depth);
    cairo_restore(cr);
    frame_rect(cr, r, FRAME);
}

// ----------------------------------------------------------------------------
// writing: the surface's pixels as RGB bytes, PNG-encoded into "<path>.tmp" through our own
// FILE (so a failure has an errno), then renamed onto path

typedef struct {
    FILE *f;
    int err; // errno of the first failed fwrite, 0 if none
} png_sink_t;

static void sink_write(void *context, void *data, int size) {
    png_sink_t *s = context;
    if (s->err || size <= 0) return;
    if (fwrite(data, 1, (size_t)size, s->f) != (size_t)size) s->err = errno ? errno : EIO;
}

static int fail(char *err, size_t errlen, const char *path, const char *reason) {
    if (err && errlen) snprintf(err, errlen, "cannot write %s: %s", path, reason);
    return 1;
}

static int write_png_atomic(const char *path, cairo_surface_t *s, char *err, size_t errlen) {
    cairo_surface_flush(s);
    const int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    const unsigned char *data = cairo_image_surface_get_data(s);
    size_t len = strlen(path);
    unsigned char *rgb = malloc((size_t)w * h * 3); // (h, w, 3)
    char *tmp = malloc(len + 5);
    if (!rgb || !tmp || !data) { free(rgb); free(tmp); return fail(err, errlen, path, "out of memory"); }
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
        unsigned char *o = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            o[3 * x] = (unsigned char)(row[x] >> 16);
            o[3 * x + 1] = (unsigned char)(row[x] >> 8);
            o[3 * x + 2] = (unsigned char)row[x];
        }
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);

    char reason[256] = {0};
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(reason, sizeof reason, "%s", strerror(errno));
    } else {
        png_sink_t sink = {f, 0};
        errno = 0;
        int ok = stbi_write_png_to_func(sink_write, &sink, w, h, 3, rgb, w * 3);
        if (!ok) snprintf(reason, sizeof reason, "PNG encoding failed (out of memory?)");
        else if (sink.err) snprintf(reason, sizeof reason, "%s", strerror(sink.err));
        if (fclose(f) != 0 && !reason[0]) snprintf(reason, sizeof reason, "%s", strerror(errno));
        if (!reason[0] && rename(tmp, path) != 0)
            snprintf(reason, sizeof reason, "rename from %s: %s", tmp, strerror(errno));
        if (reason[0]) remove(tmp);
    }
    free(tmp);
    free(rgb);
    return reason[0] ? fail(err, errlen, path, reason) : 0;
}

static const char *check_item(const tms_render_item_t *it) {
    if (!it || !it->model || !it->W) return "item without model or W";
    if (it->model->n <= 0 || it->model->m <= 0) return "model with n or m <= 0";
    if (it->model->decoder == TMS_DECODER_UNTIED && !it->W2) return "untied model without W2";
    return NULL;
}

// a white surface and a context drawing on it with the font; NULL (and *why) on failure
static cairo_t *canvas(int w, int h, cairo_surface_t **surface, const char **why) {
    if ((*why = font_ready())) return NULL;
    *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(*surface) != CAIRO_STATUS_SUCCESS) {
        *why = cairo_status_to_string(cairo_surface_status(*surface));
        cairo_surface_destroy(*surface);
        return NULL;
    }
    cairo_t *cr = cairo_create(*surface);
    cairo_set_font_face(cr, font.cairo_face);
    cairo_font_options_t *fo = cairo_font_options_create();
    // unhinted outlines: the same text on every FreeType version's hinting defaults
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
    fill_rect(cr, 0, 0, w, h, WHITE);
    return cr;
}

// finish drawing; nonzero with *why when cairo failed anywhere on the way
static int canvas_done(cairo_t *cr, cairo_surface_t *s, const char **why) {
    cairo_status_t st = cairo_status(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_destroy(cr);
    if (st != CAIRO_STATUS_SUCCESS) { *why = cairo_status_to_string(st); return 1; }
    return 0;
}

// "x′ = ReLU(WᵀReLU(W x + b₁) + b)" and the like
static void model_equation(const tms_model_t *M, char *out, size_t outlen) {
    const char *dec = M->decoder == TMS_DECODER_UNTIED ? "W\xE2\x82\x82" : "W\xE1\xB5\x80";
    char inner[96], body[192];
    if (M->hidden_act == TMS_ACT_RELU)
        snprintf(inner, sizeof inner, "%s ReLU(W x%s)", dec, M->bias && !M->no_hidden_bias ? " + b\xE2\x82\x81" : "");
    else
        snprintf(inner, sizeof inner, "%sW x", dec);
    snprintf(body, sizeof body, "%s%s", inner, M->bias ? " + b" : "");
    if (M->output_act == TMS_ACT_RELU) snprintf(out, outlen, "x\xE2\x80\xB2 = ReLU(%s)", body);
    else snprintf(out, outlen, "x\xE2\x80\xB2 = %s", body);
}

static void panel_title(cairo_t *cr, const tms_render_layout_t *L, double x0, double x1, const char *s) {
    text(cr, 0.5 * (x0 + x1), L->title_y + 4, FS_TITLE, 0.5, 0.0, INK, s);
}

// ----------------------------------------------------------------------------
// the instance picture

int tms_render_instance(const char *path, const tms_render_item_t *item, char *err, size_t errlen) {
    const char *bad = check_item(item);
    if (bad) return fail(err, errlen, path, bad);
    const tms_model_t *M = item->model;
    const int n = M->n, m = M->m, untied = M->decoder == TMS_DECODER_UNTIED;
    tms_render_layout_t L;
    tms_render_layout(item, &L);

    float *gram = malloc((size_t)n * n * sizeof(float));                  // (n, n) WᵀW
    float *gram2 = untied ? malloc((size_t)n * n * sizeof(float)) : NULL; // (n, n) W₂W
    float *norm = malloc((size_t)n * 2 * sizeof(float));                  // (n) norms, (n) D_i
    if (!gram || !norm || (untied && !gram2)) {
        free(gram); free(gram2); free(norm);
        return fail(err, errlen, path, "out of memory");
    }
    float *dim = norm + n;
    tms_gram(item->W, m, n, gram);
    if (untied) gram_untied(item, gram2);
    tms_feature_geometry(item->W, m, n, norm, NULL, dim);

    const char *why = NULL;
    cairo_surface_t *surface = NULL;
    cairo_t *cr = canvas(L.width, L.height, &surface, &why);
    if (!cr) {
        free(gram); free(gram2); free(norm);
        return fail(err, errlen, path, why);
    }
    int rc = 0;

    // caption: label and loss; the model and the data
    char line1[512], fitted[512], eq[256];
    snprintf(line1, sizeof line1, "%s     loss %.4g  (mean over batch and features; sum over the %d features %.4g)",
             item->label ? item->label : "", item->loss_mean_features, n, item->loss_mean_features * n);
    fit(cr, FS_CAPTION, line1, L.caption.w, fitted, sizeof fitted);
    text(cr, L.caption.x, L.caption.y + 2, FS_CAPTION, 0.0, 0.0, INK, fitted);
    model_equation(M, eq, sizeof eq);
    char imp[96] = "1";
    if (item->importance && n > 1 && item->importance[0] != item->importance[n - 1])
        snprintf(imp, sizeof imp, "%.3g \xE2\x80\xA6 %.3g", item->importance[0], item->importance[n - 1]);
    else if (item->importance)
        snprintf(imp, sizeof imp, "%.3g", item->importance[0]);
    snprintf(line1, sizeof line1, "n = %d features, m = %d hidden dimensions;  %s;  density %.4g;  importance %s",
             n, m, eq, item->density, imp);
    fit(cr, FS_MODEL, line1, L.caption.w, fitted, sizeof fitted);
    text(cr, L.caption.x, L.caption.y + 27, FS_MODEL, 0.0, 0.0, MUTED, fitted);

    // arrows: W's column i is (W[0][i], W[1][i], ...); W2's row i is (W2[i][0], W2[i][1], ...)
    int labels = n <= 20;
    const char *dims = m == 3 ? " (3-D view)" : "";
    if (L.arrow_panels >= 1) {
        snprintf(line1, sizeof line1, "columns W\xE1\xB5\xA2 of W%s", dims);
        panel_title(cr, &L, L.arrow[0].x, L.arrow[0].x + L.arrow[0].w, line1);
        panel_arrows(cr, L.arrow[0], L.arrow_extent, m, item->W, n, 1, n, 3.0, 13.0, labels);
    }
    if (L.arrow_panels >= 2) {
        snprintf(line1, sizeof line1, "rows of W\xE2\x82\x82%s", dims);
        panel_title(cr, &L, L.arrow[1].x, L.arrow[1].x + L.arrow[1].w, line1);
        panel_arrows(cr, L.arrow[1], L.arrow_extent, m, item->W2, n, m, 1, 3.0, 13.0, labels);
    }

    // WᵀW (and W₂W) with their colour bar
    panel_title(cr, &L, L.map.x, L.map.x + L.map.w, "W\xE1\xB5\x80W");
    rc |= panel_map(cr, L.map, gram, n, n, L.map_range);
    feature_indices(cr, &L, &L.map, &L.row_labels, &L.col_labels);
    if (untied) {
        panel_title(cr, &L, L.map2.x, L.map2.x + L.map2.w, "W\xE2\x82\x82W  (input \xE2\x86\x92 output)");
        rc |= panel_map(cr, L.map2, gram2, n, n, L.map_range);
        tms_rect_t cols2 = L.col_labels;
        cols2.x = L.map2.x;
        feature_indices(cr, &L, &L.map2, NULL, &cols2);
    }
    colour_bar(cr, L.cbar, L.cbar_labels, L.map_range);
    int below = L.map.y + L.map.h + 6;
    int nonfinite = 0;
    for (size_t e = 0; e < (size_t)n * n; e++) nonfinite |= !isfinite(gram[e]) || (untied && !isfinite(gram2[e]));
    char note[160] = "";
    if (L.map.w < n)
        snprintf(note, sizeof note, "%d \xC3\x97 %d cells in %d px: each pixel shows the nearest cell", n, n, L.map.w);
    if (nonfinite)
        snprintf(note + strlen(note), sizeof note - strlen(note), "%sgrey: not finite", note[0] ? "; " : "");
    text(cr, L.map.x, below, FS_INDEX, 0.0, 0.0, MUTED, note);

    if (L.bias.w && item->b) {
        panel_title(cr, &L, L.bias.x, L.bias.x + L.bias.w, "bias b");
        panel_bias(cr, &L, item->b);
    }
    panel_title(cr, &L, L.bars.x, L.bars.x + L.bars.w, "\xE2\x80\x96W\xE1\xB5\xA2\xE2\x80\x96");
    panel_norms(cr, &L, norm, dim);
    if (L.neurons.w) {
        panel_title(cr, &L, L.neurons.x, L.neurons.x + L.neurons.w, "neurons: W\xE2\x82\x96\xE1\xB5\xA2 by feature i");
        panel_neurons(cr, &L, item->W);
    }

    if (canvas_done(cr, surface, &why)) rc = fail(err, errlen, path, why);
    else if (rc) rc = fail(err, errlen, path, "out of memory (cairo)");
    else rc = write_png_atomic(path, surface, err, errlen);
    cairo_surface_destroy(surface);
    free(gram); free(gram2); free(norm);
    return rc;
}

// ----------------------------------------------------------------------------
// the contact sheet

static int draw_thumb(cairo_t *cr, int x0, int y0, const tms_render_item_t *it, float range) {
    const tms_model_t *M = it->model;
    const int n = M->n, m = M->m;
    tms_rect_t plot = {x0 + (TMS_THUMB_W - THUMB_PLOT) / 2, y0 + THUMB_PAD, THUMB_PLOT, THUMB_PLOT};
    if (m == 2 || m == 3) {
        panel_arrows(cr, plot, arrow_extent(it), m, it->W, n, 1, n, 2.0, 8.0, n <= 10);
    } else {
        float *gram = malloc((size_t)n * n * sizeof(float)); // (n, n)
        if (!gram) return 1;
        tms_gram(it->W, m, n, gram);
        int cell = THUMB_PLOT / n, side = cell >= 2 ? cell * n : THUMB_PLOT, off = (THUMB_PLOT - side) / 2;
        tms_rect_t r = {plot.x + off, plot.y + off, side, side};
        int rc = panel_map(cr, r, gram, n, n, range);
        free(gram);
        if (rc) return 1;
    }
    // the label on up to two lines (broken at a space), then the loss
    char line1[256], fitted[256];
    const double room = TMS_THUMB_W - 8;
    snprintf(line1, sizeof line1, "%s", it->label ? it->label : "");
    const char *rest = NULL;
    if (text_width(cr, FS_INDEX + 1, line1) > room) {
        for (size_t k = strlen(line1); k > 0; k--) {
            if (line1[k] != ' ') continue;
            line1[k] = 0;
            if (text_width(cr, FS_INDEX + 1, line1) <= room) { rest = it->label + k + 1; break; }
        }
        if (!rest) snprintf(line1, sizeof line1, "%s", it->label);
    }
    double ty = plot.y + THUMB_PLOT + 6;
    fit(cr, FS_INDEX + 1, line1, room, fitted, sizeof fitted);
    text(cr, x0 + 4, ty, FS_INDEX + 1, 0.0, 0.0, INK, fitted);
    if (rest) {
        while (*rest == ' ') rest++;
        fit(cr, FS_INDEX + 1, rest, room, fitted, sizeof fitted);
        text(cr, x0 + 4, ty + 14, FS_INDEX + 1, 0.0, 0.0, INK, fitted);
    }
    snprintf(line1, sizeof line1, "loss %.4g (mean over features)", it->loss_mean_features);
    fit(cr, FS_INDEX, line1, room, fitted, sizeof fitted);
    text(cr, x0 + 4, ty + 30, FS_INDEX, 0.0, 0.0, MUTED, fitted);
    // separators on the right and bottom edges of the cell
    fill_rect(cr, x0 + TMS_THUMB_W - 1, y0, 1, TMS_THUMB_H, GRID);
    fill_rect(cr, x0, y0 + TMS_THUMB_H - 1, TMS_THUMB_W, 1, GRID);
    return 0;
}

int tms_render_contact_sheet(const char *path, const tms_render_item_t *items, int count, const char *title,
                             char *err, size_t errlen) {
    if (count <= 0 || !items) return fail(err, errlen, path, "no items to draw");
    if (count > TMS_SHEET_MAX) {
        char reason[96];
        snprintf(reason, sizeof reason, "%d items, more than the %d a sheet holds", count, TMS_SHEET_MAX);
        return fail(err, errlen, path, reason);
    }
    for (int k = 0; k < count; k++) {
        const char *bad = check_item(&items[k]);
        if (bad) {
            char reason[128];
            snprintf(reason, sizeof reason, "item %d: %s", k, bad);
            return fail(err, errlen, path, reason);
        }
    }
    // one range for every map thumbnail
    float range = 1.0f;
    int maps = 0;
    for (int k = 0; k < count; k++) {
        if (items[k].model->m == 2 || items[k].model->m == 3) continue;
        tms_render_layout_t L;
        tms_render_layout(&items[k], &L);
        if (L.map_range > range) range = L.map_range;
        maps = 1;
    }
    int w, h, cols = sheet_cols(count);
    tms_render_contact_sheet_size(count, &w, &h);
    const char *why = NULL;
    cairo_surface_t *surface = NULL;
    cairo_t *cr = canvas(w, h, &surface, &why);
    if (!cr) return fail(err, errlen, path, why);
    char head[512], fitted[512];
    int arrows = 0;
    for (int k = 0; k < count; k++) arrows |= items[k].model->m == 2 || items[k].model->m == 3;
    snprintf(head, sizeof head, "%s%s%s", title ? title : "", title && *title ? ":  " : "",
             !maps ? "columns W\xE1\xB5\xA2 of W" : arrows ? "columns W\xE1\xB5\xA2 of W (m \xE2\x89\xA4 3), W\xE1\xB5\x80W (m > 3)" : "W\xE1\xB5\x80W");
    int bar_w = maps ? 220 : 0;
    fit(cr, FS_TITLE, head, w - 24 - bar_w, fitted, sizeof fitted);
    text(cr, 10, 12, FS_TITLE, 0.0, 0.0, INK, fitted);
    if (maps) {
        // the shared colour bar, horizontal: -R at the left, +R at the right
        tms_rect_t r = {w - bar_w - 10 + 40, 10, bar_w - 80, 10};
        for (int x = 0; x < r.w; x++) fill_rect(cr, r.x + x, r.y, 1, r.h, diverging(2.0f * (x + 0.5f) / r.w - 1.0f));
        frame_rect(cr, r, FRAME);
        char s[32];
        number(s, sizeof s, -range);
        text(cr, r.x - 4, r.y + r.h / 2.0, FS_TICK, 1.0, 0.5, MUTED, s);
        number(s, sizeof s, range);
        text(cr, r.x + r.w + 4, r.y + r.h / 2.0, FS_TICK, 0.0, 0.5, MUTED, s);
    }
    fill_rect(cr, 0, TMS_SHEET_HEAD_H - 1, w, 1, GRID);
    int rc = 0, left = (w - cols * TMS_THUMB_W) / 2;
    for (int k = 0; k < count && !rc; k++)
        rc = draw_thumb(cr, left + (k % cols) * TMS_THUMB_W, TMS_SHEET_HEAD_H + (k / cols) * TMS_THUMB_H, &items[k], range);
    if (canvas_done(cr, surface, &why)) rc = fail(err, errlen, path, why);
    else if (rc) rc = fail(err, errlen, path, "out of memory");
    else rc = write_png_atomic(path, surface, err, errlen);
    cairo_surface_destroy(surface);
    return rc;
}
