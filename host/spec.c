// spec.c: reads and validates a run specification (JSON through cJSON), applies
// --set overrides, and expands the hyperparameter grid into instances.
//
// Every field is checked: its type, its range, and that it is known at all (a typo
// must never silently become a default). The first problem found is reported as
//   <field>: <value> is not allowed; expected <what is allowed>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"
#include "fileio.h"
#include <locale.h>
#include <wchar.h>

// ----------------------------------------------------------------------------
// error reporting

typedef struct {
    char *buf;
    size_t len;
} errbuf_t;

// Print a JSON value compactly for a message (truncated when long). A number is printed
// as the shortest text that reads back as the same double, so 1e30 prints as 1e+30, never
// rounded to another value; numbers beyond the double range never get here (scan_json_text
// refuses them with their text as given).
static void value_text(const cJSON *v, char *out, size_t outlen) {
    if (!v) { snprintf(out, outlen, "(missing)"); return; }
    if (cJSON_IsNumber(v)) { tms_format_double(out, outlen, v->valuedouble); return; }
    char *s = cJSON_PrintUnformatted(v);
    if (!s) { snprintf(out, outlen, "(value)"); return; }
    if (strlen(s) > 60) { s[57] = '.'; s[58] = '.'; s[59] = '.'; s[60] = 0; }
    snprintf(out, outlen, "%s", s);
    cJSON_free(s);
}

static int field_error(errbuf_t *e, const char *section, const char *key, const cJSON *v, const char *allowed) {
    char val[80];
    value_text(v, val, sizeof(val));
    if (key)
        snprintf(e->buf, e->len, "%s.%s: %s is not allowed; expected %s", section, key, val, allowed);
    else
        snprintf(e->buf, e->len, "%s: %s is not allowed; expected %s", section, val, allowed);
    return -1;
}

// ----------------------------------------------------------------------------
// numbers as text: the shortest form that reads back as the same value

// The fewest significant digits (at most `max_digits`) that read back as x, then written
// as Python's repr writes them: positional for exponents -4 .. 15 (200, 0.05), else
// scientific (1e+30, 1e-05).
static void format_shortest(char *out, size_t outlen, double x, int max_digits, int is_float) {
    if (!isfinite(x)) { snprintf(out, outlen, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf"); return; }
    if (x == 0.0) { snprintf(out, outlen, signbit(x) ? "-0" : "0"); return; }
    int digits = 1;
    char sci[64];
    for (; digits <= max_digits; digits++) {
        snprintf(sci, sizeof(sci), "%.*e", digits - 1, x);
        if (is_float ? strtof(sci, NULL) == (float)x : strtod(sci, NULL) == x) break;
    }
    if (digits > max_digits) digits = max_digits;
    snprintf(sci, sizeof(sci), "%.*e", digits - 1, x);
    int exponent = atoi(strchr(sci, 'e') + 1);
    if (exponent >= -4 && exponent < 16) {
        int decimals = digits - 1 - exponent;
        snprintf(out, outlen, "%.*f", decimals > 0 ? decimals : 0, x);
    } else {
        snprintf(out, outlen, "%s", sci);
    }
}

void tms_format_double(char *out, size_t outlen, double x) { format_shortest(out, outlen, x, 17, 0); }
void tms_format_float(char *out, size_t outlen, float x) { format_shortest(out, outlen, (double)x, 9, 1); }

// ----------------------------------------------------------------------------
// strict JSON: one value and nothing after it, nothing cJSON would silently change

// "line L, column C" of position `at` in text
static void text_position(const char *text, const char *at, char *out, size_t outlen) {
    int line = 1, col = 1;
    for (const char *c = text; c < at && *c; c++) {
        if (*c == '\n') { line++; col = 1; } else col++;
    }
    snprintf(out, outlen, "line %d, column %d", line, col);
}

// What cJSON accepts but would not keep as written, or that is not JSON: a raw control
// character inside a string or key (RFC 8259 requires it escaped; a newline in a key would
// split the error message naming it), a \u0000 escape (cJSON ends the string
// or key there) and a number literal beyond what a double holds (cJSON stores +-inf or a
// rounded value and prints inf as null). Integer literals beyond 2^53 would be rounded to
// another integer (a seed of 2^53 + 1 would silently become 2^53). Returns 0, or -1 with
// the offending text and its position in err.
// An integer literal [begin, end) (JSON: an optional '-', no leading zeros) whose magnitude
// exceeds 2^53, compared as text: strtod would round 2^53 + 1 down to 2^53.
static int integer_beyond_2_53(const char *begin, const char *end) {
    static const char limit[] = "9007199254740992";
    if (*begin == '-') begin++;
    size_t len = (size_t)(end - begin);
    if (len != sizeof(limit) - 1) return len > sizeof(limit) - 1;
    return strncmp(begin, limit, len) > 0;
}

static int scan_json_text(const char *text, char *err, size_t errlen) {
    int in_string = 0;
    for (const char *c = text; *c; c++) {
        if (in_string) {
            if ((unsigned char)*c < 0x20) { // RFC 8259: control characters in strings are escaped
                char pos[64];
                text_position(text, c, pos, sizeof(pos));
                snprintf(err, errlen, "%s: a raw control character (code %d) in a string or key is not "
                                      "allowed; expected it escaped (\\n, \\t, \\u00XX) or removed",
                         pos, (unsigned char)*c);
                return -1;
            }
            if (*c == '"') in_string = 0;
            else if (*c == '\\' && c[1]) {
                if (c[1] == 'u' && strncmp(c + 2, "0000", 4) == 0) {
                    char pos[64];
                    text_position(text, c, pos, sizeof(pos));
                    snprintf(err, errlen, "%s: \\u0000 (a NUL character) in a string or key is not allowed; "
                                          "expected text without NUL characters", pos);
                    return -1;
                }
                c++; // skip the escaped character (an escaped quote does not end the string)
            }
            continue;
        }
        if (*c == '"') { in_string = 1; continue; }
        if (*c != '-' && (*c < '0' || *c > '9')) continue;
        // a number literal: its extent as JSON writes it
        const char *end = c;
        int integer = 1;
        while (*end == '-' || *end == '+' || *end == '.' || *end == 'e' || *end == 'E' || (*end >= '0' && *end <= '9')) {
            if (*end == '.' || *end == 'e' || *end == 'E') integer = 0;
            end++;
        }
        errno = 0;
        double v = strtod(c, NULL);
        const char *problem = NULL;
        if (errno == ERANGE && isinf(v)) problem = "is beyond the range of a double (magnitude at most 1.8e308)";
        else if (errno == ERANGE) problem = "is too small for a double (nonzero magnitudes from 2.2e-308)";
        else if (integer && integer_beyond_2_53(c, end))
            problem = "is an integer beyond 2^53 = 9007199254740992, which a double cannot hold exactly";
        if (problem) {
            char pos[64];
            int len = (int)(end - c);
            text_position(text, c, pos, sizeof(pos));
            snprintf(err, errlen, "%s: the number %.*s%s %s", pos, len > 40 ? 40 : len, c, len > 40 ? "..." : "", problem);
            return -1;
        }
        c = end - 1;
    }
    return 0;
}

// Parse text as exactly one JSON value: trailing text (a second value, a comment, "1,0.1")
// is an error, not ignored. Returns the value, or NULL with "<position>: <problem>" in err.
static cJSON *parse_strict(const char *text, char *err, size_t errlen) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(text, &end, 1);
    if (!v) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        char pos[64] = "at the start";
        if (at) text_position(text, at, pos, sizeof(pos));
        // is it a complete value followed by more text? then say so
        const char *end2 = NULL;
        cJSON *prefix = cJSON_ParseWithOpts(text, &end2, 0);
        if (prefix && end2 && *end2) {
            while (*end2 == ' ' || *end2 == '\n' || *end2 == '\r' || *end2 == '\t') end2++;
            char near[24];
            snprintf(near, sizeof(near), "%.20s", end2);
            for (char *q = near; *q; q++) if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
            text_position(text, end2, pos, sizeof(pos));
            snprintf(err, errlen, "%s: unexpected text after the JSON value: '%s'; expected nothing "
                                  "(JSON has no comments, and a list is written [a, b])", pos, near);
        } else {
            snprintf(err, errlen, "%s: not valid JSON", pos);
        }
        cJSON_Delete(prefix);
        return NULL;
    }
    if (scan_json_text(text, err, errlen)) { cJSON_Delete(v); return NULL; }
    return v;
}

// ----------------------------------------------------------------------------
// the schema: which keys each section knows

static const char *const sections[] = {"name", "model", "data", "optimizer", "train", "output", NULL};
static const char *const model_keys[] = {"n_features", "n_hidden", "decoder", "hidden_activation",
                                         "output_activation", "bias", "hidden_bias", NULL};
static const char *const data_keys[] = {"density", "importance_decay", "importance", "batch_size", "task",
                                        "feature_sets", "relative_density", NULL};
static const char *const feature_sets_keys[] = {"kind", "size", NULL};
static const char *const optimizer_keys[] = {"name", "lr", "betas", "eps", "weight_decay", "schedule",
                                             "warmup_steps", NULL};
static const char *const train_keys[] = {"steps", "seed", "seeds", "log_every", "eval_samples", NULL};
static const char *const output_keys[] = {"images", "contact_sheet", "max_images", "snapshots", "snapshot_spacing",
                                          NULL};

static int in_list(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return i;
    return -1;
}

static void join(char *out, size_t outlen, const char *const *list) {
    out[0] = 0;
    for (int i = 0; list[i]; i++) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", list[i]);
    }
}

// A string the manifest can hold: valid UTF-8 (JSON text is UTF-8, and cJSON writes a
// string's bytes as they are), decoded by the C library in its C.UTF-8 locale.
static int is_utf8(const char *s) {
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8) return 1; // no UTF-8 locale to check with (glibc always has C.UTF-8)
    locale_t old = uselocale(utf8);
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    size_t len = strlen(s), k;
    for (; len > 0; s += k, len -= k) {
        wchar_t wc;
        k = mbrtowc(&wc, s, len, &st);
        if (k == (size_t)-1 || k == (size_t)-2 || k == 0) break;
    }
    uselocale(old);
    freelocale(utf8);
    return len == 0;
}

// cJSON keeps every member of an object; a field given twice would silently use the first
static int check_duplicates(errbuf_t *e, const cJSON *obj, const char *section) {
    for (const cJSON *c = obj->child; c; c = c->next)
        for (const cJSON *d = c->next; d; d = d->next)
            if (strcmp(c->string, d->string) == 0) {
                if (section) snprintf(e->buf, e->len, "%s.%s: given twice; expected each field once", section, c->string);
                else snprintf(e->buf, e->len, "%s: given twice; expected each section once", c->string);
                return -1;
            }
    return 0;
}

static int check_keys(errbuf_t *e, const cJSON *obj, const char *section, const char *const *known) {
    if (check_duplicates(e, obj, section)) return -1;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (in_list(c->string, known) < 0) {
            char allowed[512];
            join(allowed, sizeof(allowed), known);
            snprintf(e->buf, e->len, "%s.%s: unknown field; %s knows: %s", section, c->string, section, allowed);
            return -1;
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// typed getters: each returns 0 and sets *out, or -1 with a message

// an integral number a double holds exactly (|x| <= 2^53; larger literals are refused by
// scan_json_text before they get here)
static int is_integer(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) <= 9007199254740992.0;
}

static int get_int(errbuf_t *e, const cJSON *obj, const char *section, const char *key, long def,
                   long lo, long hi, long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) { *out = def; return 0; }
    if (!is_integer(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi) {
        char allowed[96];
        snprintf(allowed, sizeof(allowed), "an integer from %ld to %ld", lo, hi);
        return field_error(e, section, key, v, allowed);
    }
    *out = (long)v->valuedouble;
    return 0;
}

static int required_int(errbuf_t *e, const cJSON *obj, const char *section, const char *key,
                        long lo, long hi, long *out) {
    if (!cJSON_GetObjectItemCaseSensitive(obj, key)) {
        snprintf(e->buf, e->len, "%s.%s: missing; expected an integer from %ld to %ld", section, key, lo, hi);
        return -1;
    }
    return get_int(e, obj, section, key, 0, lo, hi, out);
}

static int get_bool(errbuf_t *e, const cJSON *obj, const char *section, const char *key, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) return field_error(e, section, key, v, "true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_choice(errbuf_t *e, const cJSON *obj, const char *section, const char *key,
                      const char *const *choices, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) { *out = def; return 0; }
    int idx = cJSON_IsString(v) ? in_list(v->valuestring, choices) : -1;
    if (idx < 0) {
        char allowed[256], quoted[300];
        join(allowed, sizeof(allowed), choices);
        snprintf(quoted, sizeof(quoted), "one of: %s", allowed);
        return field_error(e, section, key, v, quoted);
    }
    *out = idx;
    return 0;
}

// A range for numbers: lo < x (or lo <= x when lo_closed), x <= hi (or x < hi).
typedef struct {
    double lo, hi;
    int lo_closed, hi_closed;
    const char *text; // e.g. "a number in (0, 1]"
} range_t;

static int in_range(double x, const range_t *r) {
    if (!isfinite(x)) return 0;
    if (r->lo_closed ? x < r->lo : x <= r->lo) return 0;
    if (r->hi_closed ? x > r->hi : x >= r->hi) return 0;
    return 1;
}

// A number or a non-empty list of numbers (a grid axis).
static int get_axis(errbuf_t *e, const cJSON *obj, const char *section, const char *key, double def,
                    const range_t *r, double *out, int *count) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char allowed[160];
    snprintf(allowed, sizeof(allowed), "%s, or a non-empty list of them (at most %d)", r->text, TMS_MAX_LIST);
    if (!v) { out[0] = def; *count = 1; return 0; }
    if (cJSON_IsNumber(v)) {
        if (!in_range(v->valuedouble, r)) return field_error(e, section, key, v, allowed);
        out[0] = v->valuedouble;
        *count = 1;
        return 0;
    }
    int len = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (len < 1 || len > TMS_MAX_LIST) return field_error(e, section, key, v, allowed);
    int k = 0;
    for (const cJSON *c = v->child; c; c = c->next, k++) {
        if (!cJSON_IsNumber(c) || !in_range(c->valuedouble, r)) {
            char field[80];
            snprintf(field, sizeof(field), "%s[%d]", key, k);
            return field_error(e, section, field, c, r->text);
        }
        out[k] = c->valuedouble;
    }
    *count = len;
    return 0;
}

// ----------------------------------------------------------------------------
// --set overrides

static int apply_override(cJSON *root, const char *assignment, char *err, size_t errlen) {
    const char *eq = strchr(assignment, '=');
    const char *dot = strchr(assignment, '.');
    if (!eq || !dot || dot > eq || dot == assignment || dot + 1 == eq) {
        snprintf(err, errlen, "--set %s: expected section.field=value, e.g. train.steps=2000", assignment);
        return -1;
    }
    char section[64], key[64];
    size_t slen = (size_t)(dot - assignment), klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof(section) || klen >= sizeof(key) || memchr(dot + 1, '.', klen)) {
        snprintf(err, errlen, "--set %s: expected section.field=value with one dot, e.g. data.density=0.1", assignment);
        return -1;
    }
    memcpy(section, assignment, slen); section[slen] = 0;
    memcpy(key, dot + 1, klen); key[klen] = 0;
    if (in_list(section, sections) < 0 || strcmp(section, "name") == 0) {
        char allowed[128];
        join(allowed, sizeof(allowed), sections + 1);
        snprintf(err, errlen, "--set %s: unknown section '%s'; sections: %s", assignment, section, allowed);
        return -1;
    }
    // The value is one JSON value, or a bare word taken as a string (decoder=untied). A bare
    // word starts with a letter: "1,0.1" or "10_000" is neither, and is refused rather than
    // read as its first number.
    const char *text = eq + 1;
    int bare = (*text >= 'a' && *text <= 'z') || (*text >= 'A' && *text <= 'Z');
    for (const char *c = text; *c && bare; c++)
        bare = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
               *c == '-' || *c == '.';
    if (bare && (!strcmp(text, "true") || !strcmp(text, "false") || !strcmp(text, "null"))) bare = 0;
    cJSON *value = NULL;
    if (bare) {
        value = cJSON_CreateString(text);
    } else {
        char msg[400];
        value = parse_strict(text, msg, sizeof(msg));
        if (!value) {
            char shown[64];
            snprintf(shown, sizeof(shown), "%.60s", text);
            snprintf(err, errlen, "--set %s.%s: '%s'%s is not allowed (%s); expected one JSON value: a number "
                                  "(1e-3, 10000), a list ([1, 0.1]), true/false, \"a string\", or a bare word "
                                  "such as untied", section, key, shown, strlen(text) > 60 ? "..." : "", msg);
            return -1;
        }
    }
    if (!value) { snprintf(err, errlen, "out of memory"); return -1; }
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, section);
    if (!sec) {
        sec = cJSON_AddObjectToObject(root, section);
        if (!sec) { cJSON_Delete(value); snprintf(err, errlen, "out of memory"); return -1; }
    } else if (!cJSON_IsObject(sec)) {
        cJSON_Delete(value);
        snprintf(err, errlen, "--set %s: '%s' in the spec is not an object", assignment, section);
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(sec, key))
        cJSON_ReplaceItemInObjectCaseSensitive(sec, key, value);
    else
        cJSON_AddItemToObject(sec, key, value);
    return 0;
}

// ----------------------------------------------------------------------------
// validation

static const char *const decoder_names[] = {"tied", "untied", NULL};
static const char *const act_names[] = {"none", "relu", NULL};
static const char *const optimizer_names[] = {"adamw", "adam", NULL};
static const char *const schedule_names[] = {"constant", "linear", "cosine", NULL};
static const char *const task_names[] = {"sparse", "abs", NULL};                               // TMS_TASK_*
static const char *const sets_names[] = {"independent", "correlated", "anticorrelated", NULL}; // TMS_SETS_*
static const char *const spacing_names[] = {"log", "linear", NULL};                            // TMS_SPACING_*

static const cJSON *section_object(errbuf_t *e, const cJSON *root, const char *name, int *status) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, name);
    *status = 0;
    if (s && !cJSON_IsObject(s)) {
        snprintf(e->buf, e->len, "%s: expected an object {...}", name);
        *status = -1;
    }
    return s;
}

static int validate_model(errbuf_t *e, const cJSON *s, tms_spec_t *spec) {
    if (!s) { snprintf(e->buf, e->len, "model: missing; it needs at least n_features and n_hidden"); return -1; }
    long n, m;
    if (check_keys(e, s, "model", model_keys)) return -1;
    if (required_int(e, s, "model", "n_features", 1, 1000000, &n)) return -1;
    if (required_int(e, s, "model", "n_hidden", 1, 1000000, &m)) return -1;
    if (n * m > 100000000L) {
        snprintf(e->buf, e->len, "model: n_features * n_hidden = %ld is too large; expected at most 1e8", n * m);
        return -1;
    }
    spec->model.n = (int)n;
    spec->model.m = (int)m;
    if (get_choice(e, s, "model", "decoder", decoder_names, TMS_DECODER_TIED, &spec->model.decoder)) return -1;
    if (get_choice(e, s, "model", "hidden_activation", act_names, TMS_ACT_NONE, &spec->model.hidden_act)) return -1;
    if (get_choice(e, s, "model", "output_activation", act_names, TMS_ACT_RELU, &spec->model.output_act)) return -1;
    if (get_bool(e, s, "model", "bias", 1, &spec->model.bias)) return -1;
    int hidden_bias = 1;
    if (get_bool(e, s, "model", "hidden_bias", 1, &hidden_bias)) return -1;
    spec->model.no_hidden_bias = !hidden_bias;
    return 0;
}

// data.feature_sets: {"kind": "independent"} (the default), or {"kind": "correlated" or
// "anticorrelated", "size": k} with k from 2 to n dividing n. Anticorrelated sets need
// k * density <= 1 for every density: at most one feature of a set is active at a time,
// each with probability density.
static int validate_feature_sets(errbuf_t *e, const cJSON *v, tms_spec_t *spec) {
    const int n = spec->model.n;
    spec->data.sets = TMS_SETS_NONE;
    spec->data.set_size = 1;
    if (!v) return 0;
    if (!cJSON_IsObject(v))
        return field_error(e, "data", "feature_sets", v,
                           "an object {\"kind\": \"independent\"} or {\"kind\": \"correlated\" or \"anticorrelated\", "
                           "\"size\": k}");
    if (check_keys(e, v, "data.feature_sets", feature_sets_keys)) return -1;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(v, "kind");
    if (!kind) {
        snprintf(e->buf, e->len, "data.feature_sets.kind: missing; expected one of: independent, correlated, anticorrelated");
        return -1;
    }
    int idx = cJSON_IsString(kind) ? in_list(kind->valuestring, sets_names) : -1;
    if (idx < 0) return field_error(e, "data", "feature_sets.kind", kind, "one of: independent, correlated, anticorrelated");
    spec->data.sets = idx;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(v, "size");
    if (spec->data.sets == TMS_SETS_NONE) {
        if (size && !(is_integer(size) && size->valuedouble == 1))
            return field_error(e, "data", "feature_sets.size", size, "1 or nothing for independent features");
        return 0;
    }
    char allowed[160];
    snprintf(allowed, sizeof(allowed), "an integer from 2 to %d that divides model.n_features = %d", n, n);
    if (!size) {
        snprintf(e->buf, e->len, "data.feature_sets.size: missing; expected %s", allowed);
        return -1;
    }
    if (!is_integer(size) || size->valuedouble < 2 || size->valuedouble > n || n % (long)size->valuedouble != 0)
        return field_error(e, "data", "feature_sets.size", size, allowed);
    spec->data.set_size = (int)size->valuedouble;
    if (spec->data.sets == TMS_SETS_ANTICORRELATED) {
        const int k = spec->data.set_size;
        for (int d = 0; d < spec->n_density; d++) {
            // the same comparison the draw makes (tms_set_active), in float: v / density <= k
            if ((float)spec->density[d] * (float)k > 1.0f) {
                snprintf(e->buf, e->len,
                         "data.density: %.9g is not allowed with anticorrelated feature sets of size %d; expected "
                         "at most 1/%d = %.9g (at most one feature of a set is active at a time, each with "
                         "probability density)", spec->density[d], k, k, 1.0 / k);
                return -1;
            }
        }
    }
    return 0;
}

// data.relative_density: n factors; feature i is active with probability density * r_i (in
// float, as the draw computes it), which must stay in (0, 1] for every density of the grid.
static int validate_relative_density(errbuf_t *e, const cJSON *v, tms_spec_t *spec) {
    if (!v) return 0;
    const int n = spec->model.n;
    char allowed[200];
    snprintf(allowed, sizeof(allowed), "a list of %d numbers in (0, 1e6] (one per feature: feature i is active with "
             "probability density * relative_density[i])", n);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n) return field_error(e, "data", "relative_density", v, allowed);
    if (spec->data.sets != TMS_SETS_NONE)
        return field_error(e, "data", "relative_density", v, "no relative_density with data.feature_sets (a set's "
                           "features share one density)");
    spec->relative_density = malloc((size_t)n * sizeof(double));
    spec->data.relative_density = malloc((size_t)n * sizeof(float));
    if (!spec->relative_density || !spec->data.relative_density) { snprintf(e->buf, e->len, "out of memory"); return -1; }
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char field[48];
        snprintf(field, sizeof(field), "relative_density[%d]", i);
        if (!cJSON_IsNumber(c) || !(c->valuedouble > 0) || !(c->valuedouble <= 1e6))
            return field_error(e, "data", field, c, "a number in (0, 1e6]");
        spec->relative_density[i] = c->valuedouble;
        spec->data.relative_density[i] = (float)c->valuedouble;
        for (int d = 0; d < spec->n_density; d++) {
            const float p = (float)spec->density[d] * spec->data.relative_density[i];
            if (!(p <= 1.0f) || !(p > 0.0f)) {
                char what[200], dens[32];
                tms_format_double(dens, sizeof(dens), spec->density[d]);
                snprintf(what, sizeof(what), "a factor that keeps density * relative_density in (0, 1]: with "
                         "data.density %s it is %.9g", dens, (double)p);
                return field_error(e, "data", field, c, what);
            }
        }
    }
    return 0;
}

static int validate_data(errbuf_t *e, const cJSON *s, tms_spec_t *spec) {
    static const cJSON empty = {0};
    if (!s) s = &empty;
    if (check_keys(e, s, "data", data_keys)) return -1;
    const range_t density = {0.0, 1.0, 0, 1, "a number in (0, 1]"};
    if (get_axis(e, s, "data", "density", 1.0, &density, spec->density, &spec->n_density)) return -1;
    const cJSON *explicit_imp = cJSON_GetObjectItemCaseSensitive(s, "importance");
    const cJSON *decay = cJSON_GetObjectItemCaseSensitive(s, "importance_decay");
    const int n = spec->model.n;
    if (explicit_imp && decay) {
        snprintf(e->buf, e->len, "data: importance and importance_decay both given; expected one of them");
        return -1;
    }
    if (explicit_imp) {
        // a list of n positive numbers, or a list of such lists (a grid axis)
        char allowed[160];
        snprintf(allowed, sizeof(allowed), "a list of %d numbers in (0, 1e30] (one per feature), or a non-empty list "
                 "of such lists (at most %d)", n, TMS_MAX_LIST);
        if (!cJSON_IsArray(explicit_imp) || cJSON_GetArraySize(explicit_imp) < 1)
            return field_error(e, "data", "importance", explicit_imp, allowed);
        int nested = cJSON_IsArray(explicit_imp->child);
        int rows = nested ? cJSON_GetArraySize(explicit_imp) : 1;
        if (rows > TMS_MAX_LIST) return field_error(e, "data", "importance", explicit_imp, allowed);
        spec->importance_explicit = 1;
        spec->n_importance = rows;
        spec->importance_values = malloc((size_t)rows * n * sizeof(double));
        if (!spec->importance_values) { snprintf(e->buf, e->len, "out of memory"); return -1; }
        const cJSON *row = nested ? explicit_imp->child : explicit_imp;
        for (int r = 0; r < rows; r++, row = row->next) {
            char field[64];
            if (nested) snprintf(field, sizeof(field), "importance[%d]", r);
            else snprintf(field, sizeof(field), "importance");
            if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != n)
                return field_error(e, "data", field, row, allowed);
            int i = 0;
            for (const cJSON *c = row->child; c; c = c->next, i++) {
                if (!cJSON_IsNumber(c) || !(c->valuedouble > 0) || !(c->valuedouble <= 1e30))
                    return field_error(e, "data", field, row, allowed);
                spec->importance_values[(size_t)r * n + i] = c->valuedouble;
            }
        }
    } else {
        const range_t r = {0.0, 1e6, 0, 1, "a number r in (0, 1e6] (importance of feature i is r^i)"};
        double values[TMS_MAX_LIST];
        int count;
        if (get_axis(e, s, "data", "importance_decay", 1.0, &r, values, &count)) return -1;
        // the importances are floats in training: the largest, r^(n-1), must stay finite
        for (int k = 0; k < count; k++) {
            if (values[k] > 1.0 && (double)(n - 1) * log10(values[k]) > 30.0) {
                char val[40];
                tms_format_double(val, sizeof(val), values[k]);
                snprintf(e->buf, e->len, "data.importance_decay: %s is not allowed with model.n_features = %d; "
                         "expected r^(n_features - 1) at most 1e30 (here it is 1e%.0f)", val, n,
                         (double)(n - 1) * log10(values[k]));
                return -1;
            }
        }
        spec->n_importance = count;
        spec->importance_decay = malloc((size_t)count * sizeof(double));
        if (!spec->importance_decay) { snprintf(e->buf, e->len, "out of memory"); return -1; }
        memcpy(spec->importance_decay, values, (size_t)count * sizeof(double));
    }
    long batch;
    if (get_int(e, s, "data", "batch_size", 1024, 1, 1 << 20, &batch)) return -1;
    spec->batch_size = (int)batch;
    if (get_choice(e, s, "data", "task", task_names, TMS_TASK_SPARSE, &spec->data.task)) return -1;
    if (validate_feature_sets(e, cJSON_GetObjectItemCaseSensitive(s, "feature_sets"), spec)) return -1;
    return validate_relative_density(e, cJSON_GetObjectItemCaseSensitive(s, "relative_density"), spec);
}

static int validate_optimizer(errbuf_t *e, const cJSON *s, tms_spec_t *spec) {
    static const cJSON empty = {0};
    if (!s) s = &empty;
    if (check_keys(e, s, "optimizer", optimizer_keys)) return -1;
    if (get_choice(e, s, "optimizer", "name", optimizer_names, TMS_OPT_ADAMW, &spec->optimizer)) return -1;
    const range_t lr = {0.0, 1e6, 0, 1, "a number in (0, 1e6]"};
    if (get_axis(e, s, "optimizer", "lr", 1e-3, &lr, spec->lr, &spec->n_lr)) return -1;
    const cJSON *betas = cJSON_GetObjectItemCaseSensitive(s, "betas");
    spec->beta1 = 0.9;
    spec->beta2 = 0.999;
    if (betas) {
        const range_t unit = {0.0, 1.0, 1, 0, ""};
        if (!cJSON_IsArray(betas) || cJSON_GetArraySize(betas) != 2 || !cJSON_IsNumber(betas->child) ||
            !cJSON_IsNumber(betas->child->next) || !in_range(betas->child->valuedouble, &unit) ||
            !in_range(betas->child->next->valuedouble, &unit))
            return field_error(e, "optimizer", "betas", betas, "a list of two numbers in [0, 1), e.g. [0.9, 0.999]");
        spec->beta1 = betas->child->valuedouble;
        spec->beta2 = betas->child->next->valuedouble;
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(s, "eps");
    spec->eps = 1e-8;
    if (eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !(eps->valuedouble < 1))
            return field_error(e, "optimizer", "eps", eps, "a number in (0, 1)");
        spec->eps = eps->valuedouble;
    }
    const range_t wd = {0.0, 1e6, 1, 1, "a number in [0, 1e6]"};
    double wd_default = spec->optimizer == TMS_OPT_ADAMW ? 0.01 : 0.0;
    if (get_axis(e, s, "optimizer", "weight_decay", wd_default, &wd, spec->weight_decay, &spec->n_weight_decay))
        return -1;
    if (get_choice(e, s, "optimizer", "schedule", schedule_names, TMS_SCHED_CONSTANT, &spec->schedule)) return -1;
    return 0;
}

static int validate_train(errbuf_t *e, const cJSON *s, const cJSON *opt, tms_spec_t *spec) {
    static const cJSON empty = {0};
    if (!s) s = &empty;
    if (!opt) opt = &empty;
    if (check_keys(e, s, "train", train_keys)) return -1;
    if (get_int(e, s, "train", "steps", 10000, 1, 1000000000L, &spec->steps)) return -1;
    // warm-up is an optimizer field, but its bound is the step count
    if (get_int(e, opt, "optimizer", "warmup_steps", 0, 0, spec->steps - 1, &spec->warmup_steps)) return -1;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(s, "seed");
    const char *seed_allowed = "an integer from 0 to 2^53, or a non-empty list of them";
    if (!seed) {
        spec->seed[0] = 0;
        spec->n_seed = 1;
    } else if (is_integer(seed) && seed->valuedouble >= 0) { // is_integer: at most 2^53
        spec->seed[0] = (uint64_t)seed->valuedouble;
        spec->n_seed = 1;
    } else if (cJSON_IsArray(seed) && cJSON_GetArraySize(seed) >= 1 && cJSON_GetArraySize(seed) <= TMS_MAX_LIST) {
        int k = 0;
        for (const cJSON *c = seed->child; c; c = c->next, k++) {
            if (!is_integer(c) || c->valuedouble < 0) return field_error(e, "train", "seed", seed, seed_allowed);
            spec->seed[k] = (uint64_t)c->valuedouble;
        }
        spec->n_seed = k;
    } else {
        return field_error(e, "train", "seed", seed, seed_allowed);
    }
    long seeds;
    if (get_int(e, s, "train", "seeds", 1, 1, 100000, &seeds)) return -1;
    spec->seeds = (int)seeds;
    long log_default = spec->steps >= 100 ? spec->steps / 100 : 1;
    if (get_int(e, s, "train", "log_every", log_default, 1, 1000000000L, &spec->log_every)) return -1;
    // The default evaluation: TMS_EVAL_SAMPLES_MAX samples, enough for a standard error of
    // ~0.3% of the loss at density 0.05 (README), but never more than an eighth of the samples
    // training drew (steps * batch_size), so it costs at most a few percent of training
    // (an evaluated sample is one forward pass; a trained one is a forward and a backward).
    long eval_default = TMS_EVAL_SAMPLES_MAX;
    if ((double)spec->steps * spec->batch_size / 8 < (double)eval_default)
        eval_default = spec->steps * spec->batch_size / 8;
    if (eval_default < TMS_EVAL_SAMPLES_MIN) eval_default = TMS_EVAL_SAMPLES_MIN;
    if (get_int(e, s, "train", "eval_samples", eval_default, TMS_EVAL_SAMPLES_MIN, 1L << 28, &spec->eval_samples))
        return -1;
    return 0;
}

int tms_snapshot_steps(long steps, int count, int spacing, long *out) {
    if (count <= 0 || steps <= 0) return 0;
    if ((long)count >= steps) { // every step
        for (long s = 1; s <= steps; s++) out[s - 1] = s;
        return (int)steps;
    }
    long prev = 0;
    for (int j = 0; j < count; j++) {
        // log: steps^(j / (count - 1)) from 1 to steps; linear: steps (j + 1) / count
        double ideal = spacing == TMS_SPACING_LINEAR ? (double)steps * (j + 1) / count
                       : count == 1 ? (double)steps : pow((double)steps, (double)j / (count - 1));
        long s = j == count - 1 ? steps : lround(ideal);
        if (s <= prev) s = prev + 1;                          // early log steps round to the same integer
        if (s > steps - (count - 1 - j)) s = steps - (count - 1 - j); // leave room for the rest
        out[j] = prev = s;
    }
    return count;
}

// output.snapshots: a count (spread over the run by output.snapshot_spacing) or a list of
// steps; output.snapshot_spacing only with a count.
static int validate_snapshots(errbuf_t *e, const cJSON *s, tms_spec_t *spec) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "snapshots");
    const cJSON *spacing = cJSON_GetObjectItemCaseSensitive(s, "snapshot_spacing");
    char allowed[256];
    snprintf(allowed, sizeof(allowed), "a count from 0 to %d (that many steps, spread by output.snapshot_spacing and "
             "ending at train.steps), or a non-empty list of at most %d strictly increasing steps from 0 to "
             "train.steps (%ld)", TMS_MAX_SNAPSHOTS, TMS_MAX_SNAPSHOTS, spec->steps);
    if (get_choice(e, s, "output", "snapshot_spacing", spacing_names, TMS_SPACING_LOG, &spec->snapshot_spacing))
        return -1;
    if (!v) return 0;
    if (cJSON_IsArray(v)) {
        if (spacing)
            return field_error(e, "output", "snapshot_spacing", spacing,
                               "no snapshot_spacing with a list of steps (it spreads a count of snapshots)");
        int len = cJSON_GetArraySize(v);
        if (len < 1 || len > TMS_MAX_SNAPSHOTS) return field_error(e, "output", "snapshots", v, allowed);
        spec->snapshot_steps = malloc((size_t)len * sizeof(long));
        if (!spec->snapshot_steps) { snprintf(e->buf, e->len, "out of memory"); return -1; }
        int k = 0;
        for (const cJSON *c = v->child; c; c = c->next, k++) {
            char field[48], what[160];
            snprintf(field, sizeof(field), "snapshots[%d]", k);
            if (!is_integer(c) || c->valuedouble < 0 || c->valuedouble > (double)spec->steps) {
                snprintf(what, sizeof(what), "a step: an integer from 0 (the initialisation) to train.steps (%ld)",
                         spec->steps);
                return field_error(e, "output", field, c, what);
            }
            spec->snapshot_steps[k] = (long)c->valuedouble;
            if (k > 0 && spec->snapshot_steps[k] <= spec->snapshot_steps[k - 1]) {
                snprintf(what, sizeof(what), "a step after the one before it (%ld): the list strictly increasing",
                         spec->snapshot_steps[k - 1]);
                return field_error(e, "output", field, c, what);
            }
        }
        spec->n_snapshots = len;
        spec->snapshots_listed = 1;
        return 0;
    }
    if (!is_integer(v) || v->valuedouble < 0 || v->valuedouble > TMS_MAX_SNAPSHOTS)
        return field_error(e, "output", "snapshots", v, allowed);
    int count = (int)v->valuedouble;
    if (count == 0) return 0;
    spec->snapshot_steps = malloc((size_t)count * sizeof(long));
    if (!spec->snapshot_steps) { snprintf(e->buf, e->len, "out of memory"); return -1; }
    spec->n_snapshots = tms_snapshot_steps(spec->steps, count, spec->snapshot_spacing, spec->snapshot_steps);
    return 0;
}

static int validate_output(errbuf_t *e, const cJSON *s, tms_spec_t *spec) {
    static const cJSON empty = {0};
    if (!s) s = &empty;
    if (check_keys(e, s, "output", output_keys)) return -1;
    if (get_bool(e, s, "output", "images", 1, &spec->images)) return -1;
    if (get_bool(e, s, "output", "contact_sheet", 1, &spec->contact_sheet)) return -1;
    long max_images;
    if (get_int(e, s, "output", "max_images", 256, 0, 100000, &max_images)) return -1;
    spec->max_images = (int)max_images;
    return validate_snapshots(e, s, spec);
}

// ----------------------------------------------------------------------------
// the resolved spec: every field, defaults filled in

// Numbers go into the resolved spec as raw text in the shortest exact form: cJSON's own
// printer tries "%1.15g" first and keeps it when it reads back within a relative DBL_EPSILON,
// which turns a seed of 2^53 into 9007199254740990 and 0.1 + 0.2 into 0.3; the manifest must
// hold the spec exactly (resume and render rebuild the run from it).
static cJSON *num(double x) {
    char text[40];
    tms_format_double(text, sizeof(text), x);
    return cJSON_CreateRaw(text);
}

static void add_num(cJSON *obj, const char *key, double x) { cJSON_AddItemToObject(obj, key, num(x)); }

static cJSON *num_array(const double *v, int count) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < count; k++) cJSON_AddItemToArray(a, num(v[k]));
    return a;
}

static cJSON *axis_json(const double *v, int count) {
    return count == 1 ? num(v[0]) : num_array(v, count);
}

static cJSON *build_resolved(const tms_spec_t *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", s->name);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    add_num(model, "n_features", s->model.n);
    add_num(model, "n_hidden", s->model.m);
    cJSON_AddStringToObject(model, "decoder", decoder_names[s->model.decoder]);
    cJSON_AddStringToObject(model, "hidden_activation", act_names[s->model.hidden_act]);
    cJSON_AddStringToObject(model, "output_activation", act_names[s->model.output_act]);
    cJSON_AddBoolToObject(model, "bias", s->model.bias);
    cJSON_AddBoolToObject(model, "hidden_bias", !s->model.no_hidden_bias);
    cJSON *data = cJSON_AddObjectToObject(root, "data");
    cJSON_AddItemToObject(data, "density", axis_json(s->density, s->n_density));
    if (s->importance_explicit) {
        cJSON *rows = cJSON_AddArrayToObject(data, "importance");
        for (int r = 0; r < s->n_importance; r++)
            cJSON_AddItemToArray(rows, num_array(s->importance_values + (size_t)r * s->model.n, s->model.n));
    } else {
        cJSON_AddItemToObject(data, "importance_decay", axis_json(s->importance_decay, s->n_importance));
    }
    add_num(data, "batch_size", s->batch_size);
    cJSON_AddStringToObject(data, "task", task_names[s->data.task]);
    cJSON *sets = cJSON_AddObjectToObject(data, "feature_sets");
    cJSON_AddStringToObject(sets, "kind", sets_names[s->data.sets]);
    if (s->data.sets != TMS_SETS_NONE) add_num(sets, "size", s->data.set_size);
    if (s->relative_density) cJSON_AddItemToObject(data, "relative_density", num_array(s->relative_density, s->model.n));
    cJSON *opt = cJSON_AddObjectToObject(root, "optimizer");
    cJSON_AddStringToObject(opt, "name", optimizer_names[s->optimizer]);
    cJSON_AddItemToObject(opt, "lr", axis_json(s->lr, s->n_lr));
    double betas[2] = {s->beta1, s->beta2};
    cJSON_AddItemToObject(opt, "betas", num_array(betas, 2));
    add_num(opt, "eps", s->eps);
    cJSON_AddItemToObject(opt, "weight_decay", axis_json(s->weight_decay, s->n_weight_decay));
    cJSON_AddStringToObject(opt, "schedule", schedule_names[s->schedule]);
    add_num(opt, "warmup_steps", (double)s->warmup_steps);
    cJSON *train = cJSON_AddObjectToObject(root, "train");
    add_num(train, "steps", (double)s->steps);
    if (s->n_seed == 1) {
        add_num(train, "seed", (double)s->seed[0]);
    } else {
        cJSON *seeds = cJSON_AddArrayToObject(train, "seed");
        for (int k = 0; k < s->n_seed; k++) cJSON_AddItemToArray(seeds, num((double)s->seed[k]));
    }
    add_num(train, "seeds", s->seeds);
    add_num(train, "log_every", (double)s->log_every);
    add_num(train, "eval_samples", (double)s->eval_samples);
    cJSON *out = cJSON_AddObjectToObject(root, "output");
    cJSON_AddBoolToObject(out, "images", s->images);
    cJSON_AddBoolToObject(out, "contact_sheet", s->contact_sheet);
    add_num(out, "max_images", s->max_images);
    if (s->snapshots_listed) {
        cJSON *steps = cJSON_AddArrayToObject(out, "snapshots");
        for (int k = 0; k < s->n_snapshots; k++) cJSON_AddItemToArray(steps, num((double)s->snapshot_steps[k]));
    } else {
        // the count recorded (a count above train.steps records every step, and resolves to steps)
        add_num(out, "snapshots", s->n_snapshots);
        cJSON_AddStringToObject(out, "snapshot_spacing", spacing_names[s->snapshot_spacing]);
    }
    return root;
}

// ----------------------------------------------------------------------------

// Validate root (a parsed spec; the overrides are applied to it) into spec.
static int spec_from_root(tms_spec_t *spec, cJSON *root, const char *default_name, char *const *overrides,
                          int n_overrides, char *err, size_t errlen) {
    memset(spec, 0, sizeof(*spec));
    errbuf_t e = {err, errlen};
    int rc = -1, st;
    if (!cJSON_IsObject(root)) { snprintf(err, errlen, "the spec must be a JSON object {...}"); goto done; }
    if (check_duplicates(&e, root, NULL)) goto done;
    for (int i = 0; i < n_overrides; i++)
        if (apply_override(root, overrides[i], err, errlen)) goto done;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (in_list(c->string, sections) < 0) {
            char allowed[128];
            join(allowed, sizeof(allowed), sections);
            snprintf(err, errlen, "%s: unknown section; the spec knows: %s", c->string, allowed);
            goto done;
        }
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (name) {
        if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) >= sizeof(spec->name) ||
            !is_utf8(name->valuestring)) {
            field_error(&e, "name", NULL, name, "a non-empty string of at most 127 characters, in UTF-8");
            goto done;
        }
        snprintf(spec->name, sizeof(spec->name), "%s", name->valuestring);
    } else {
        snprintf(spec->name, sizeof(spec->name), "%s", default_name ? default_name : "run");
        if (!is_utf8(spec->name)) {
            snprintf(err, errlen, "name: the default name, the spec's file name without .json, is not UTF-8; "
                                  "expected a \"name\" in the spec");
            goto done;
        }
    }
    const cJSON *model = section_object(&e, root, "model", &st); if (st) goto done;
    const cJSON *data = section_object(&e, root, "data", &st); if (st) goto done;
    const cJSON *opt = section_object(&e, root, "optimizer", &st); if (st) goto done;
    const cJSON *train = section_object(&e, root, "train", &st); if (st) goto done;
    const cJSON *output = section_object(&e, root, "output", &st); if (st) goto done;
    if (validate_model(&e, model, spec)) goto done;
    if (validate_data(&e, data, spec)) goto done;
    if (validate_optimizer(&e, opt, spec)) goto done;
    if (validate_train(&e, train, opt, spec)) goto done;
    if (validate_output(&e, output, spec)) goto done;
    // the grid's size, in double (exact far beyond the limit; a product of up to five axes
    // of 4096 values and 100,000 seeds overflows 64-bit integers)
    double instances = (double)spec->n_density * spec->n_importance * spec->n_lr * spec->n_weight_decay *
                       spec->n_seed * spec->seeds;
    if (instances > (double)TMS_MAX_INSTANCES) {
        snprintf(err, errlen, "the grid has %d data.density x %d %s x %d optimizer.lr x %d optimizer.weight_decay x "
                 "%d train.seed x %d train.seeds = %.17g instances; expected at most %ld (shorten the lists or "
                 "lower train.seeds)", spec->n_density, spec->n_importance,
                 spec->importance_explicit ? "data.importance" : "data.importance_decay", spec->n_lr,
                 spec->n_weight_decay, spec->n_seed, spec->seeds, instances, TMS_MAX_INSTANCES);
        goto done;
    }
    spec->resolved = build_resolved(spec);
    if (!spec->resolved) { snprintf(err, errlen, "out of memory"); goto done; }
    rc = 0;
done:
    if (rc) tms_spec_free(spec);
    return rc;
}

int tms_spec_parse(tms_spec_t *spec, const char *json_text, const char *default_name,
                   char *const *overrides, int n_overrides, char *err, size_t errlen) {
    memset(spec, 0, sizeof(*spec));
    cJSON *root = parse_strict(json_text, err, errlen);
    if (!root) return -1;
    int rc = spec_from_root(spec, root, default_name, overrides, n_overrides, err, errlen);
    cJSON_Delete(root);
    return rc;
}

int tms_spec_from_json(tms_spec_t *spec, const cJSON *json, char *err, size_t errlen) {
    memset(spec, 0, sizeof(*spec));
    cJSON *root = cJSON_Duplicate(json, 1);
    if (!root) { snprintf(err, errlen, "out of memory"); return -1; }
    int rc = spec_from_root(spec, root, NULL, NULL, 0, err, errlen);
    cJSON_Delete(root);
    return rc;
}

// Read a spec file of at most TMS_SPEC_MAX_BYTES (NUL-terminated): /dev/zero or a huge
// file is refused after reading one byte more than the limit, never read to the end.
static int read_spec_text(const char *path, char **text, char *err, size_t errlen) {
    size_t used = 0;
    const int rc = tms_read_file_max(path, text, &used, (size_t)TMS_SPEC_MAX_BYTES, err, errlen);
    if (rc == -2)
        snprintf(err, errlen, "%s: larger than %ld MiB; expected a spec, a small JSON object", path,
                 TMS_SPEC_MAX_BYTES >> 20);
    if (rc) return -1;
    // JSON text has no NUL bytes; cJSON would stop at the first one and ignore the rest
    const size_t len = strlen(*text);
    if (len < used) {
        snprintf(err, errlen, "%s: a NUL byte at offset %zu; expected JSON text", path, len);
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

int tms_spec_load(tms_spec_t *spec, const char *path, char *const *overrides, int n_overrides,
                  char *err, size_t errlen) {
    memset(spec, 0, sizeof(*spec));
    char *text = NULL;
    char msg[512];
    if (read_spec_text(path, &text, msg, sizeof(msg))) {
        snprintf(err, errlen, "%s", msg);
        return -1;
    }
    // default name: the file name without directory and .json
    char name[128];
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(name, sizeof(name), "%s", base);
    char *ext = strstr(name, ".json");
    if (ext && ext[5] == 0) *ext = 0;
    int rc = tms_spec_parse(spec, text, name, overrides, n_overrides, msg, sizeof(msg));
    if (rc) snprintf(err, errlen, "%s: %s", path, msg);
    free(text);
    return rc;
}

void tms_spec_free(tms_spec_t *spec) {
    free(spec->importance_decay);
    free(spec->importance_values);
    free(spec->snapshot_steps);
    free(spec->relative_density);
    free(spec->data.relative_density);
    spec->snapshot_steps = NULL;
    spec->relative_density = NULL;
    spec->data.relative_density = NULL;
    cJSON_Delete(spec->resolved);
    spec->importance_decay = spec->importance_values = NULL;
    spec->resolved = NULL;
}

long tms_spec_instances(const tms_spec_t *s) {
    // each factor is at least 1 and the product was checked against TMS_MAX_INSTANCES in
    // double by tms_spec_parse; saturate anyway so an unvalidated spec cannot wrap
    long count = 1;
    const long factors[6] = {s->n_density, s->n_importance, s->n_lr, s->n_weight_decay, s->n_seed, s->seeds};
    for (int k = 0; k < 6; k++) {
        if (factors[k] < 1) return 0;
        if (count > TMS_MAX_INSTANCES / factors[k]) return TMS_MAX_INSTANCES + 1;
        count *= factors[k];
    }
    return count;
}

// ----------------------------------------------------------------------------
// the grid

int tms_problem_build(tms_problem_t *P, const tms_spec_t *s) {
    memset(P, 0, sizeof(*P));
    const int n = s->model.n;
    long count = tms_spec_instances(s);
    if (count < 1 || count > TMS_MAX_INSTANCES) return -1;
    P->model = s->model;
    P->data = s->data;
    P->data.relative_density = NULL; // the problem's own copy, below
    P->instances = (int)count;
    P->batch_size = s->batch_size;
    P->steps = s->steps;
    P->optimizer = s->optimizer;
    P->beta1 = (float)s->beta1;
    P->beta2 = (float)s->beta2;
    P->eps = (float)s->eps;
    P->schedule = s->schedule;
    P->warmup_steps = s->warmup_steps;
    P->inst = calloc((size_t)count, sizeof(tms_instance_t));
    P->importance = malloc((size_t)count * n * sizeof(float));
    if (!P->inst || !P->importance) { tms_problem_free(P); return -1; }
    if (s->data.relative_density) {
        P->data.relative_density = malloc((size_t)n * sizeof(float));
        if (!P->data.relative_density) { tms_problem_free(P); return -1; }
        memcpy(P->data.relative_density, s->data.relative_density, (size_t)n * sizeof(float));
    }
    int idx = 0, point = 0;
    for (int a = 0; a < s->n_density; a++)
    for (int b = 0; b < s->n_importance; b++)
    for (int c = 0; c < s->n_lr; c++)
    for (int d = 0; d < s->n_weight_decay; d++)
    for (int f = 0; f < s->n_seed; f++, point++)
    for (int r = 0; r < s->seeds; r++, idx++) {
        tms_instance_t *in = &P->inst[idx];
        in->density = (float)s->density[a];
        in->importance_index = b;
        in->lr = (float)s->lr[c];
        in->weight_decay = (float)s->weight_decay[d];
        in->seed = s->seed[f];
        in->replicate = r;
        in->key = tms_instance_key(s->seed[f], (uint64_t)r);
        in->grid_point = point;
        float *imp = P->importance + (size_t)idx * n;
        for (int i = 0; i < n; i++)
            imp[i] = s->importance_explicit ? (float)s->importance_values[(size_t)b * n + i]
                                            : (float)pow(s->importance_decay[b], (double)i);
    }
    return 0;
}

void tms_problem_free(tms_problem_t *P) {
    free(P->inst);
    free(P->importance);
    free(P->data.relative_density);
    P->inst = NULL;
    P->importance = NULL;
    P->data.relative_density = NULL;
}
