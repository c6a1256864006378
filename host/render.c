// render.c: PNG pictures of trained instances (render.h): a small RGB canvas with
// anti-aliased lines, arrows, circles, rectangles and stb_easy_font text, the paper's
// panels drawn on it, and an atomic PNG writer on top of stb_image_write.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" // stb_easy_font_spacing
#pragma GCC diagnostic ignored "-Wmissing-braces"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "geometry.h"
#include "render.h"

// ----------------------------------------------------------------------------
// layout constants of the instance picture (render.h documents the resulting geometry)

#define MARGIN 16
#define CAPTION_H 46    // label + loss at scale 2, model description at scale 1
#define TITLE_H 28      // panel titles at scale 2
#define PANEL_GAP 36
#define STRIP_GAP 6
#define BARS_W 200
#define BARS_RIGHT 24   // room for the last tick label right of the bars
#define LEGEND_H 48     // colour scales and bar ticks under the panels
#define MIN_WIDTH 640
#define MAP_TARGET 400  // heat map side for moderate n
#define MAP_MAX 1600    // heat map side never exceeds this

// contact sheet cell
#define THUMB_PLOT 184
#define THUMB_PAD 8

// ----------------------------------------------------------------------------
// colours

typedef struct { unsigned char r, g, b; } rgb_t;

static const rgb_t WHITE = {255, 255, 255};
static const rgb_t INK = {30, 30, 30};        // text
static const rgb_t MUTED = {110, 110, 110};   // secondary text
static const rgb_t FRAME = {200, 200, 200};
static const rgb_t AXIS = {215, 215, 215};
static const rgb_t CIRCLE = {160, 160, 160};
static const rgb_t NAN_GREY = {128, 128, 128};

// tab10, matplotlib's default qualitative palette
static const rgb_t PALETTE[10] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

static rgb_t feature_colour(int i) { return PALETTE[i % 10]; }

void tms_render_feature_colour(int i, unsigned char rgb[3]) {
    rgb_t c = feature_colour(i < 0 ? 0 : i);
    rgb[0] = c.r; rgb[1] = c.g; rgb[2] = c.b;
}

static rgb_t lerp_rgb(rgb_t a, rgb_t b, float t) {
    rgb_t c = {(unsigned char)lrintf(a.r + t * (b.r - a.r)), (unsigned char)lrintf(a.g + t * (b.g - a.g)),
               (unsigned char)lrintf(a.b + t * (b.b - a.b))};
    return c;
}

// W^T W and b: -1 blue, 0 white, +1 red, linear in between, clipped; NaN grey.
static rgb_t diverging(float v) {
    static const rgb_t RED = {222, 36, 36}, BLUE = {36, 84, 222};
    if (v != v) return NAN_GREY;
    if (v > 1.0f) v = 1.0f;
    if (v < -1.0f) v = -1.0f;
    return v >= 0.0f ? lerp_rgb(WHITE, RED, v) : lerp_rgb(WHITE, BLUE, -v);
}

// Norm bars: t = sqrt(superposition) clipped to [0, 1], as the notebook does; black (0,
// the feature has a dimension to itself) -> purple -> orange -> yellow (1, heavy interference).
static rgb_t superposition_colour(float superposition) {
    static const rgb_t STOPS[4] = {{0, 0, 0}, {120, 28, 130}, {236, 104, 30}, {250, 205, 30}};
    float t = superposition > 0.0f ? sqrtf(superposition) : 0.0f;
    if (t != t) return NAN_GREY;
    if (t > 1.0f) t = 1.0f;
    float s = t * 3.0f;
    int k = s >= 3.0f ? 2 : (int)s;
    return lerp_rgb(STOPS[k], STOPS[k + 1], s - k);
}

// ----------------------------------------------------------------------------
// canvas: RGB bytes, white background, a clip rectangle for the panel being drawn

typedef struct {
    int w, h;
    unsigned char *px;          // (h, w, 3)
    int cx0, cy0, cx1, cy1;     // clip: x in [cx0, cx1), y in [cy0, cy1)
} canvas_t;

static int canvas_init(canvas_t *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * h * 3);
    if (!c->px) return 1;
    memset(c->px, 255, (size_t)w * h * 3);
    c->cx0 = 0; c->cy0 = 0; c->cx1 = w; c->cy1 = h;
    return 0;
}

static void canvas_clip(canvas_t *c, int x0, int y0, int x1, int y1) {
    c->cx0 = x0 < 0 ? 0 : x0;
    c->cy0 = y0 < 0 ? 0 : y0;
    c->cx1 = x1 > c->w ? c->w : x1;
    c->cy1 = y1 > c->h ? c->h : y1;
}

static void canvas_unclip(canvas_t *c) { canvas_clip(c, 0, 0, c->w, c->h); }

// blend colour with coverage a in [0, 1] into pixel (x, y)
static void blend(canvas_t *c, int x, int y, rgb_t col, float a) {
    if (x < c->cx0 || x >= c->cx1 || y < c->cy0 || y >= c->cy1 || !(a > 0.0f)) return;
    unsigned char *p = c->px + ((size_t)y * c->w + x) * 3;
    if (a >= 1.0f) { p[0] = col.r; p[1] = col.g; p[2] = col.b; return; }
    p[0] = (unsigned char)lrintf(p[0] + a * (col.r - p[0]));
    p[1] = (unsigned char)lrintf(p[1] + a * (col.g - p[1]));
    p[2] = (unsigned char)lrintf(p[2] + a * (col.b - p[2]));
}

// [x0, x1) x [y0, y1)
static void fill_rect(canvas_t *c, int x0, int y0, int x1, int y1, rgb_t col) {
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) blend(c, x, y, col, 1.0f);
}

// 1 px outline just inside [x0, x1) x [y0, y1)
static void rect_outline(canvas_t *c, int x0, int y0, int x1, int y1, rgb_t col) {
    fill_rect(c, x0, y0, x1, y0 + 1, col);
    fill_rect(c, x0, y1 - 1, x1, y1, col);
    fill_rect(c, x0, y0, x0 + 1, y1, col);
    fill_rect(c, x1 - 1, y0, x1, y1, col);
}

// Pixel range covering [lo, hi] (float coordinates), clipped; empty when not finite.
static void span(float lo, float hi, int cmin, int cmax, int *a, int *b) {
    if (!(lo == lo) || !(hi == hi) || isinf(lo) || isinf(hi)) { *a = 0; *b = -1; return; }
    float l = floorf(lo), h = ceilf(hi);
    *a = l < cmin ? cmin : (l > cmax ? cmax : (int)l);
    *b = h > cmax - 1 ? cmax - 1 : (h < cmin ? cmin - 1 : (int)h);
}

// Thick segment with round caps, anti-aliased by distance from the pixel centre.
static void draw_line(canvas_t *c, float x0, float y0, float x1, float y1, float width, rgb_t col) {
    float r = 0.5f * width;
    int xa, xb, ya, yb;
    span(fminf(x0, x1) - r - 1, fmaxf(x0, x1) + r + 1, c->cx0, c->cx1, &xa, &xb);
    span(fminf(y0, y1) - r - 1, fmaxf(y0, y1) + r + 1, c->cy0, c->cy1, &ya, &yb);
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = len2 > 0.0f ? (px * dx + py * dy) / len2 : 0.0f;
            t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
            float ex = px - t * dx, ey = py - t * dy;
            blend(c, x, y, col, r + 0.5f - sqrtf(ex * ex + ey * ey));
        }
}

static void draw_circle(canvas_t *c, float cx, float cy, float radius, float width, rgb_t col) {
    float r = 0.5f * width;
    int xa, xb, ya, yb;
    span(cx - radius - r - 1, cx + radius + r + 1, c->cx0, c->cx1, &xa, &xb);
    span(cy - radius - r - 1, cy + radius + r + 1, c->cy0, c->cy1, &ya, &yb);
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            float px = x + 0.5f - cx, py = y + 0.5f - cy;
            blend(c, x, y, col, r + 0.5f - fabsf(sqrtf(px * px + py * py) - radius));
        }
}

// Filled triangle, anti-aliased by the distance to its nearest edge.
static void fill_triangle(canvas_t *c, const float v[6], rgb_t col) {
    float area = (v[2] - v[0]) * (v[5] - v[1]) - (v[3] - v[1]) * (v[4] - v[0]);
    if (!(fabsf(area) > 1e-6f)) return;
    float sign = area > 0.0f ? 1.0f : -1.0f;
    int xa, xb, ya, yb;
    span(fminf(v[0], fminf(v[2], v[4])) - 1, fmaxf(v[0], fmaxf(v[2], v[4])) + 1, c->cx0, c->cx1, &xa, &xb);
    span(fminf(v[1], fminf(v[3], v[5])) - 1, fmaxf(v[1], fmaxf(v[3], v[5])) + 1, c->cy0, c->cy1, &ya, &yb);
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            float px = x + 0.5f, py = y + 0.5f, inside = 1e30f;
            for (int e = 0; e < 3; e++) {
                float ax = v[2 * e], ay = v[2 * e + 1];
                float bx = v[(2 * e + 2) % 6], by = v[(2 * e + 3) % 6];
                float ex = bx - ax, ey = by - ay;
                float d = sign * (ex * (py - ay) - ey * (px - ax)) / sqrtf(ex * ex + ey * ey);
                if (d < inside) inside = d; // signed distance to this edge, > 0 inside
            }
            blend(c, x, y, col, inside + 0.5f);
        }
}

// Shaft from (x0, y0) to the tip (x1, y1), with a head whose length shrinks for short arrows.
static void draw_arrow(canvas_t *c, float x0, float y0, float x1, float y1, float width,
                       float head, rgb_t col) {
    float dx = x1 - x0, dy = y1 - y0, len = sqrtf(dx * dx + dy * dy);
    if (!(len == len) || isinf(len)) return;
    if (len < 1.0f) { draw_line(c, x0, y0, x1, y1, width, col); return; }
    float h = head < 0.45f * len ? head : 0.45f * len;
    float ux = dx / len, uy = dy / len;
    float bx = x1 - h * ux, by = y1 - h * uy; // base of the head
    draw_line(c, x0, y0, bx + 0.3f * h * ux, by + 0.3f * h * uy, width, col);
    float hw = 0.5f * h;
    float tri[6] = {x1, y1, bx - hw * uy, by + hw * ux, bx + hw * uy, by - hw * ux};
    fill_triangle(c, tri, col);
}

// ----------------------------------------------------------------------------
// text: stb_easy_font glyphs are axis-aligned quads; draw them one character at a time
// (so no long vertex buffer) and scale by an integer factor. Glyphs are about 7 px high
// at scale 1 (cap height), 12 px per line.

static char printable(char ch) { return ch >= 32 && ch < 127 ? ch : '?'; }

static int text_width(const char *s, int scale) {
    int w = 0;
    for (; *s; s++) {
        char one[2] = {printable(*s), 0};
        w += stb_easy_font_width(one);
    }
    return w * scale;
}

static void draw_text(canvas_t *c, int x, int y, const char *s, int scale, rgb_t col) {
    char vbuf[4096]; // one glyph: at most ~40 quads of 64 bytes
    for (; *s; s++) {
        char one[2] = {printable(*s), 0};
        int quads = stb_easy_font_print(0.0f, 0.0f, one, NULL, vbuf, (int)sizeof vbuf);
        for (int q = 0; q < quads; q++) {
            const float *v0 = (const float *)(vbuf + q * 64);      // corner (x0, y0)
            const float *v2 = (const float *)(vbuf + q * 64 + 32); // corner (x1, y1)
            fill_rect(c, x + (int)lrintf(v0[0] * scale), y + (int)lrintf(v0[1] * scale),
                      x + (int)lrintf(v2[0] * scale), y + (int)lrintf(v2[1] * scale), col);
        }
        x += stb_easy_font_width(one) * scale;
    }
}

static void draw_text_centred(canvas_t *c, int cx, int y, const char *s, int scale, rgb_t col) {
    draw_text(c, cx - text_width(s, scale) / 2, y, s, scale, col);
}

// Copy s into out (size outlen), cut with "..." so that it is at most max_px wide.
static void fit_text(const char *s, int scale, int max_px, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", s);
    size_t len = strlen(out);
    if (text_width(out, scale) <= max_px) return;
    while (len > 0) {
        len--;
        if (len + 4 > outlen) continue;
        memcpy(out + len, "...", 4);
        if (text_width(out, scale) <= max_px) return;
    }
    out[0] = 0;
}

// horizontal colour scale of width w at (x, y), t from 0 at the left to 1 at the right
static void colour_scale(canvas_t *c, int x, int y, int w, int h, rgb_t (*colour)(float), float lo,
                         float hi) {
    for (int i = 0; i < w; i++) {
        float t = lo + (hi - lo) * (i + 0.5f) / w;
        fill_rect(c, x + i, y, x + i + 1, y + h, colour(t));
    }
    rect_outline(c, x - 1, y - 1, x + w + 1, y + h + 1, FRAME);
}

static rgb_t superposition_sqrt_colour(float t) { return superposition_colour(t * t); }

// ----------------------------------------------------------------------------
// panels

// Arrows from the origin to (vec[i * stride_i], vec[i * stride_i + stride_k]), i < n, in the
// square [x, x + size)^2 showing [-1.5, 1.5]^2 with the unit circle.
static void panel_arrows(canvas_t *c, int x, int y, int size, const float *vec, int n,
                         int stride_i, int stride_k, float width, float head, int labels) {
    float half = 0.5f * size, scale = size / (2.0f * TMS_ARROW_EXTENT);
    float ox = x + half, oy = y + half;
    canvas_clip(c, x, y, x + size, y + size);
    draw_line(c, (float)x, oy, (float)(x + size), oy, 1.0f, AXIS);
    draw_line(c, ox, (float)y, ox, (float)(y + size), 1.0f, AXIS);
    draw_circle(c, ox, oy, scale, 1.5f, CIRCLE);
    for (int i = 0; i < n; i++) {
        float u = vec[(size_t)i * stride_i], v = vec[(size_t)i * stride_i + stride_k];
        draw_arrow(c, ox, oy, ox + u * scale, oy - v * scale, width, head, feature_colour(i));
    }
    if (labels) {
        // feature index just beyond each tip, when there are few enough to read
        for (int i = 0; i < n; i++) {
            float u = vec[(size_t)i * stride_i], v = vec[(size_t)i * stride_i + stride_k];
            float len = sqrtf(u * u + v * v);
            if (!(len * scale > 12.0f) || isinf(len)) continue;
            char s[16];
            snprintf(s, sizeof s, "%d", i);
            float tx = ox + u * scale + 10.0f * u / len, ty = oy - v * scale - 10.0f * v / len;
            draw_text(c, (int)lrintf(tx) - text_width(s, 1) / 2, (int)lrintf(ty) - 4, s, 1,
                      feature_colour(i));
        }
    }
    canvas_unclip(c);
    rect_outline(c, x - 1, y - 1, x + size + 1, y + size + 1, FRAME);
}

// values (rows, cols) row-major in the diverging colours, in [x, x + w) x [y, y + h); each
// pixel shows the cell it falls in (nearest cell when there are more cells than pixels).
static void panel_heatmap(canvas_t *c, int x, int y, int w, int h, const float *values, int rows,
                          int cols) {
    for (int py = 0; py < h; py++) {
        int i = (int)((long)py * rows / h);
        for (int px = 0; px < w; px++) {
            int j = (int)((long)px * cols / w);
            blend(c, x + px, y + py, diverging(values[(size_t)i * cols + j]), 1.0f);
        }
    }
    rect_outline(c, x - 1, y - 1, x + w + 1, y + h + 1, FRAME);
}

// One horizontal bar per feature on the rows of the heat map, length ||W_i|| / top.
static void panel_bars(canvas_t *c, const tms_render_layout_t *L, const float *norm,
                       const float *superposition, int n, float top) {
    int x = L->bars_x, y = L->bars_y, w = L->bars_w, h = L->bars_h;
    float step = top <= 2.0f ? 0.5f : (top <= 4.0f ? 1.0f : 2.0f); // gridlines and ticks
    for (float g = step; g <= top + 1e-6f; g += step) {
        int gx = x + (int)lrintf(g / top * w);
        fill_rect(c, gx, y, gx + 1, y + h, g == 1.0f ? CIRCLE : AXIS);
    }
    float row = (float)h / n;
    float pad = row >= 5.0f ? 0.15f * row : 0.0f;
    for (int i = 0; i < n; i++) {
        float len = norm[i] / top;
        if (!(len > 0.0f)) continue;
        if (len > 1.0f) len = 1.0f;
        int y0 = y + (int)lrintf(i * row + pad), y1 = y + (int)lrintf((i + 1) * row - pad);
        if (y1 <= y0) y1 = y0 + 1;
        fill_rect(c, x, y0, x + (int)lrintf(len * w), y1, superposition_colour(superposition[i]));
    }
    fill_rect(c, x - 1, y, x, y + h, INK); // the zero axis
    // ticks under the panel
    for (float g = 0.0f; g <= top + 1e-6f; g += step) {
        char s[16];
        snprintf(s, sizeof s, "%g", g);
        int gx = x + (int)lrintf(g / top * w);
        fill_rect(c, gx, y + h, gx + 1, y + h + 4, MUTED);
        draw_text_centred(c, gx, y + h + 7, s, 1, MUTED);
    }
}

// ----------------------------------------------------------------------------
// geometry

static int map_side(int n) {
    if (n <= 0) return 0;
    if (n > MAP_MAX / 4) return MAP_MAX;
    int cell = MAP_TARGET / n;
    cell = cell < 4 ? 4 : (cell > 40 ? 40 : cell);
    return cell * n;
}

void tms_render_instance_layout(const tms_model_t *M, tms_render_layout_t *L) {
    memset(L, 0, sizeof *L);
    int S = map_side(M->n);
    L->arrow_panels = M->m == 2 ? (M->decoder == TMS_DECODER_UNTIED ? 2 : 1) : 0;
    L->arrow_size = TMS_ARROW_PANEL;
    L->map_size = S;
    int cell = S / (M->n > 0 ? M->n : 1);
    L->strip_w = M->bias ? (cell < 12 ? 12 : cell) : 0;

    // panels left to right, then centred when the image is wider than they are
    int x = MARGIN;
    for (int k = 0; k < L->arrow_panels; k++) {
        L->arrow_x[k] = x;
        x += TMS_ARROW_PANEL + PANEL_GAP;
    }
    L->map_x = x;
    x += S;
    if (L->strip_w) {
        L->strip_x = x + STRIP_GAP;
        x = L->strip_x + L->strip_w;
    }
    x += PANEL_GAP;
    L->bars_x = x;
    L->bars_w = BARS_W;
    x += BARS_W + BARS_RIGHT + MARGIN;

    int width = x < MIN_WIDTH ? MIN_WIDTH : x;
    int shift = (width - x) / 2;
    for (int k = 0; k < L->arrow_panels; k++) L->arrow_x[k] += shift;
    L->map_x += shift;
    if (L->strip_w) L->strip_x += shift;
    L->bars_x += shift;

    // the colour scales and bar ticks sit right under the map and the bars
    int top = CAPTION_H + TITLE_H;
    int content = S + LEGEND_H;
    if (L->arrow_panels && TMS_ARROW_PANEL + MARGIN > content) content = TMS_ARROW_PANEL + MARGIN;
    L->arrow_y = top;
    L->map_y = top;
    L->bars_y = top;
    L->bars_h = S;
    L->width = width;
    L->height = top + content;
}

void tms_render_instance_size(const tms_model_t *M, int *width, int *height) {
    tms_render_layout_t L;
    tms_render_instance_layout(M, &L);
    *width = L.width;
    *height = L.height;
}

int tms_render_arrow_pixel(const tms_render_layout_t *L, int k, float u, float v, int *x, int *y) {
    if (k < 0 || k >= L->arrow_panels) return 1;
    float half = 0.5f * L->arrow_size, scale = L->arrow_size / (2.0f * TMS_ARROW_EXTENT);
    *x = (int)floorf(L->arrow_x[k] + half + u * scale);
    *y = (int)floorf(L->arrow_y + half - v * scale);
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
    *w = cols * TMS_THUMB_W;
    *h = rows * TMS_THUMB_H;
}

// ----------------------------------------------------------------------------
// writing: PNG bytes into "<path>.tmp" through our own FILE (so a failure has an errno),
// then rename onto path

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

static int write_png_atomic(const char *path, const canvas_t *c, char *err, size_t errlen) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp) return fail(err, errlen, path, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);

    char reason[256] = {0};
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(reason, sizeof reason, "%s", strerror(errno));
    } else {
        png_sink_t sink = {f, 0};
        errno = 0;
        int ok = stbi_write_png_to_func(sink_write, &sink, c->w, c->h, 3, c->px, c->w * 3);
        if (!ok) snprintf(reason, sizeof reason, "PNG encoding failed (out of memory?)");
        else if (sink.err) snprintf(reason, sizeof reason, "%s", strerror(sink.err));
        if (fclose(f) != 0 && !reason[0]) snprintf(reason, sizeof reason, "%s", strerror(errno));
        if (!reason[0] && rename(tmp, path) != 0)
            snprintf(reason, sizeof reason, "rename from %s: %s", tmp, strerror(errno));
        if (reason[0]) remove(tmp);
    }
    free(tmp);
    return reason[0] ? fail(err, errlen, path, reason) : 0;
}

static const char *check_item(const tms_render_item_t *it) {
    if (!it || !it->model || !it->W) return "item without model or W";
    if (it->model->n <= 0 || it->model->m <= 0) return "model with n or m <= 0";
    if (it->model->decoder == TMS_DECODER_UNTIED && !it->W2) return "untied model without W2";
    return NULL;
}

// ----------------------------------------------------------------------------
// the instance picture

int tms_render_instance(const char *path, const tms_render_item_t *item, char *err, size_t errlen) {
    const char *bad = check_item(item);
    if (bad) return fail(err, errlen, path, bad);
    const tms_model_t *M = item->model;
    int n = M->n, m = M->m;
    tms_render_layout_t L;
    tms_render_instance_layout(M, &L);

    canvas_t c = {0};
    float *gram = malloc((size_t)n * n * sizeof(float)); // (n, n)
    float *norm = malloc((size_t)n * sizeof(float));     // (n)
    float *sup = malloc((size_t)n * sizeof(float));      // (n)
    if (!gram || !norm || !sup || canvas_init(&c, L.width, L.height)) {
        free(gram); free(norm); free(sup); free(c.px);
        return fail(err, errlen, path, "out of memory");
    }
    tms_gram(item->W, m, n, gram);
    tms_feature_geometry(item->W, m, n, norm, sup, NULL);

    // caption: label and loss, then what model this is
    char line[512], fitted[512];
    snprintf(line, sizeof line, "%s    loss %.4g", item->label ? item->label : "",
             item->loss_mean_features);
    int room = L.width - 2 * MARGIN;
    int scale = text_width(line, 2) <= room ? 2 : 1;
    fit_text(line, scale, room, fitted, sizeof fitted);
    draw_text(&c, MARGIN, 10, fitted, scale, INK);
    snprintf(line, sizeof line,
             "loss: mean over batch and features.  n=%d m=%d, %s decoder, %s hidden, %s output, "
             "%s, density %.4g", n, m, M->decoder == TMS_DECODER_UNTIED ? "untied" : "tied",
             M->hidden_act == TMS_ACT_RELU ? "ReLU" : "linear",
             M->output_act == TMS_ACT_RELU ? "ReLU" : "linear", M->bias ? "bias" : "no bias",
             item->density);
    fit_text(line, 1, room, fitted, sizeof fitted);
    draw_text(&c, MARGIN, 30, fitted, 1, MUTED);

    int title_y = CAPTION_H + 4;
    int legend_y = L.map_y + L.map_size; // top of the legend band under the map and bars

    // arrows: W's column i is (W[0][i], W[1][i]); W2's row i is (W2[i][0], W2[i][1])
    int labels = n <= 20;
    if (L.arrow_panels >= 1) {
        draw_text_centred(&c, L.arrow_x[0] + L.arrow_size / 2, title_y, "W columns", 2, INK);
        panel_arrows(&c, L.arrow_x[0], L.arrow_y, L.arrow_size, item->W, n, 1, n, 3.0f, 13.0f, labels);
    }
    if (L.arrow_panels >= 2) {
        draw_text_centred(&c, L.arrow_x[1] + L.arrow_size / 2, title_y, "W2 rows", 2, INK);
        panel_arrows(&c, L.arrow_x[1], L.arrow_y, L.arrow_size, item->W2, n, 2, 1, 3.0f, 13.0f, labels);
    }

    // W^T W | b
    int draw_strip = L.strip_w && item->b;
    int map_end = draw_strip ? L.strip_x + L.strip_w : L.map_x + L.map_size;
    draw_text_centred(&c, (L.map_x + map_end) / 2, title_y, draw_strip ? "W^T W | b" : "W^T W", 2, INK);
    panel_heatmap(&c, L.map_x, L.map_y, L.map_size, L.map_size, gram, n, n);
    if (draw_strip) panel_heatmap(&c, L.strip_x, L.map_y, L.strip_w, L.map_size, item->b, n, 1);
    if (L.map_size < n) {
        snprintf(line, sizeof line, "(%d x %d cells at %d px: each pixel shows the nearest cell)", n, n,
                 L.map_size);
        draw_text(&c, L.map_x, L.map_y + L.map_size + 24, line, 1, MUTED);
    }
    int sw = L.map_size < 160 ? L.map_size : 160, sx = L.map_x + (L.map_size - sw) / 2;
    colour_scale(&c, sx, legend_y + 8, sw, 8, diverging, -1.0f, 1.0f);
    draw_text(&c, sx - text_width("-1", 1) - 4, legend_y + 8, "-1", 1, MUTED);
    draw_text(&c, sx + sw + 4, legend_y + 8, "+1", 1, MUTED);

    // ||W_i||, scale 0..1 unless some norm is larger
    float top = 1.0f;
    for (int i = 0; i < n; i++)
        if (norm[i] > top && !isinf(norm[i])) top = ceilf(norm[i] * 2.0f) / 2.0f;
    if (top > 8.0f) top = 8.0f;
    draw_text_centred(&c, L.bars_x + L.bars_w / 2, title_y, "||W_i||", 2, INK);
    panel_bars(&c, &L, norm, sup, n, top);
    const char *cap = "colour: sqrt(superposition) 0";
    int cw = text_width(cap, 1);
    draw_text(&c, L.bars_x, legend_y + 26, cap, 1, MUTED);
    colour_scale(&c, L.bars_x + cw + 4, legend_y + 26, 50, 8, superposition_sqrt_colour, 0.0f, 1.0f);
    draw_text(&c, L.bars_x + cw + 58, legend_y + 26, "1", 1, MUTED);

    int rc = write_png_atomic(path, &c, err, errlen);
    free(gram); free(norm); free(sup); free(c.px);
    return rc;
}

// ----------------------------------------------------------------------------
// the contact sheet

static int draw_thumb(canvas_t *c, int x0, int y0, const tms_render_item_t *it) {
    const tms_model_t *M = it->model;
    int n = M->n, m = M->m;
    int px = x0 + (TMS_THUMB_W - THUMB_PLOT) / 2, py = y0 + THUMB_PAD;
    if (m == 2) {
        panel_arrows(c, px, py, THUMB_PLOT, it->W, n, 1, n, 2.0f, 8.0f, 0);
    } else {
        float *gram = malloc((size_t)n * n * sizeof(float)); // (n, n)
        if (!gram) return 1;
        tms_gram(it->W, m, n, gram);
        int cell = THUMB_PLOT / n, side = cell >= 2 ? cell * n : THUMB_PLOT;
        int off = (THUMB_PLOT - side) / 2;
        panel_heatmap(c, px + off, py + off, side, side, gram, n, n);
        free(gram);
    }
    char line[256], fitted[256];
    fit_text(it->label ? it->label : "", 1, TMS_THUMB_W - 8, fitted, sizeof fitted);
    draw_text(c, x0 + 4, py + THUMB_PLOT + 5, fitted, 1, INK);
    snprintf(line, sizeof line, "p=%.4g  loss %.4g", it->density, it->loss_mean_features);
    fit_text(line, 1, TMS_THUMB_W - 8, fitted, sizeof fitted);
    draw_text(c, x0 + 4, py + THUMB_PLOT + 17, fitted, 1, MUTED);
    // separators on the right and bottom edges of the cell
    fill_rect(c, x0 + TMS_THUMB_W - 1, y0, x0 + TMS_THUMB_W, y0 + TMS_THUMB_H, AXIS);
    fill_rect(c, x0, y0 + TMS_THUMB_H - 1, x0 + TMS_THUMB_W, y0 + TMS_THUMB_H, AXIS);
    return 0;
}

int tms_render_contact_sheet(const char *path, const tms_render_item_t *items, int count,
                             char *err, size_t errlen) {
    if (count <= 0 || !items) return fail(err, errlen, path, "no items to draw");
    for (int k = 0; k < count; k++) {
        const char *bad = check_item(&items[k]);
        if (bad) {
            char reason[128];
            snprintf(reason, sizeof reason, "item %d: %s", k, bad);
            return fail(err, errlen, path, reason);
        }
    }
    int w, h, cols = sheet_cols(count);
    tms_render_contact_sheet_size(count, &w, &h);
    canvas_t c = {0};
    if (canvas_init(&c, w, h)) return fail(err, errlen, path, "out of memory");
    for (int k = 0; k < count; k++) {
        if (draw_thumb(&c, (k % cols) * TMS_THUMB_W, (k / cols) * TMS_THUMB_H, &items[k])) {
            free(c.px);
            return fail(err, errlen, path, "out of memory");
        }
    }
    int rc = write_png_atomic(path, &c, err, errlen);
    free(c.px);
    return rc;
}
