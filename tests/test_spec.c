// test_spec.c: spec validation, defaults, --set overrides and grid expansion.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "spec.h"

static int parse(tms_spec_t *s, const char *json, char *const *sets, int nsets, char *err) {
    return tms_spec_parse(s, json, "t", sets, nsets, err, 512);
}

static void expect_error(const char *json, const char *set, const char *fragment) {
    tms_spec_t s;
    char err[512] = "";
    char *sets[1] = {(char *)set};
    int rc = parse(&s, json, sets, set ? 1 : 0, err);
    CHECK(rc != 0, "accepted a bad spec: %s %s", json, set ? set : "");
    CHECK(strstr(err, fragment) != NULL, "message '%s' does not mention '%s'", err, fragment);
    if (rc == 0) tms_spec_free(&s);
}

#define BASE "\"model\": {\"n_features\": 5, \"n_hidden\": 2}"

int main(void) {
    tms_spec_t s;
    char err[512];
    // defaults: the paper's model and the notebook's recipe
    CHECK(parse(&s, "{" BASE "}", NULL, 0, err) == 0, "minimal spec rejected: %s", err);
    CHECK(s.model.decoder == TMS_DECODER_TIED && s.model.hidden_act == TMS_ACT_NONE &&
          s.model.output_act == TMS_ACT_RELU && s.model.bias == 1, "model defaults");
    CHECK(s.batch_size == 1024 && s.steps == 10000 && s.lr[0] == 1e-3 && s.weight_decay[0] == 0.01 &&
          s.beta1 == 0.9 && s.beta2 == 0.999 && s.eps == 1e-8 && s.optimizer == TMS_OPT_ADAMW, "recipe defaults");
    CHECK(tms_spec_instances(&s) == 1 && s.eval_samples == TMS_EVAL_SAMPLES_MAX, "one instance by default, %ld eval samples",
          s.eval_samples);
    tms_spec_free(&s);
    // adam defaults to no weight decay
    CHECK(parse(&s, "{" BASE ", \"optimizer\": {\"name\": \"adam\"}}", NULL, 0, err) == 0, "%s", err);
    CHECK(s.weight_decay[0] == 0.0, "adam weight decay default");
    tms_spec_free(&s);

    // grid: 3 densities x 2 decays x 2 lr x 1 wd x 2 seeds x 3 replicates = 72
    const char *grid = "{" BASE ", \"data\": {\"density\": [1, 0.1, 0.01], \"importance_decay\": [0.9, 0.7]},"
                       "\"optimizer\": {\"lr\": [1e-3, 3e-3]}, \"train\": {\"seed\": [5, 6], \"seeds\": 3}}";
    CHECK(parse(&s, grid, NULL, 0, err) == 0, "%s", err);
    tms_problem_t P;
    CHECK(tms_problem_build(&P, &s) == 0 && P.instances == 72, "grid size %d", P.instances);
    // order: density slowest ... replicate fastest
    CHECK(P.inst[0].density == 1.0f && P.inst[24].density == 0.1f && P.inst[48].density == 0.01f, "density is slowest");
    CHECK(P.inst[0].replicate == 0 && P.inst[1].replicate == 1 && P.inst[2].replicate == 2 && P.inst[3].replicate == 0,
          "replicate is fastest");
    CHECK(P.inst[3].seed == 6 && P.inst[0].grid_point == P.inst[2].grid_point && P.inst[3].grid_point == 1, "seed axis");
    CHECK(P.inst[6].lr == 3e-3f, "lr axis");
    CHECK(P.inst[12].importance_index == 1 && P.importance[12 * 5 + 2] == (float)(0.7 * 0.7), "importance axis");
    // an instance's key depends only on its seed and replicate, not its grid position
    CHECK(P.inst[1].key == P.inst[25].key && P.inst[1].key != P.inst[2].key && P.inst[0].key != P.inst[3].key,
          "instance keys");
    tms_problem_free(&P);
    tms_spec_free(&s);

    // overrides
    char *sets[] = {"train.steps=2000", "model.decoder=untied", "data.density=[0.5,0.25]", "output.images=false"};
    CHECK(parse(&s, "{" BASE "}", sets, 4, err) == 0, "%s", err);
    CHECK(s.steps == 2000 && s.model.decoder == TMS_DECODER_UNTIED && s.n_density == 2 && s.density[1] == 0.25 &&
          s.images == 0, "overrides not applied");
    tms_spec_free(&s);

    // explicit importance
    CHECK(parse(&s, "{" BASE ", \"data\": {\"importance\": [[1,1,1,1,1],[5,4,3,2,1]]}}", NULL, 0, err) == 0, "%s", err);
    CHECK(s.n_importance == 2 && s.importance_values[5] == 5, "explicit importance lists");
    tms_spec_free(&s);

    // data modes: the default, then the abs task and feature sets (also through --set)
    CHECK(parse(&s, "{" BASE "}", NULL, 0, err) == 0, "%s", err);
    CHECK(s.data.task == TMS_TASK_SPARSE && s.data.sets == TMS_SETS_NONE, "data defaults");
    {
        char *text = cJSON_PrintUnformatted(s.resolved);
        CHECK(strstr(text, "\"task\":\"sparse\",\"feature_sets\":{\"kind\":\"independent\"}") != NULL,
              "resolved spec lacks the data defaults: %s", text);
        cJSON_free(text);
    }
    tms_spec_free(&s);
    CHECK(parse(&s, "{\"model\": {\"n_features\": 6, \"n_hidden\": 2}, \"data\": {\"task\": \"abs\", "
                    "\"density\": [0.5, 0.1], \"feature_sets\": {\"kind\": \"anticorrelated\", \"size\": 2}}}",
                NULL, 0, err) == 0, "%s", err);
    CHECK(s.data.task == TMS_TASK_ABS && s.data.sets == TMS_SETS_ANTICORRELATED && s.data.set_size == 2, "data modes");
    {
        tms_problem_t P;
        CHECK(tms_problem_build(&P, &s) == 0 && P.data.task == TMS_TASK_ABS && P.data.sets == TMS_SETS_ANTICORRELATED &&
              P.data.set_size == 2, "the problem carries the data modes");
        tms_problem_free(&P);
        char *text = cJSON_PrintUnformatted(s.resolved);
        CHECK(strstr(text, "\"task\":\"abs\",\"feature_sets\":{\"kind\":\"anticorrelated\",\"size\":2}") != NULL,
              "resolved spec: %s", text);
        // the resolved spec parses back to the same thing (render and resume read it)
        tms_spec_t again;
        CHECK(tms_spec_parse(&again, text, NULL, NULL, 0, err, 512) == 0 && again.data.sets == s.data.sets &&
              again.data.set_size == 2 && again.data.task == TMS_TASK_ABS, "resolved spec does not parse back: %s", err);
        tms_spec_free(&again);
        cJSON_free(text);
    }
    tms_spec_free(&s);
    {
        char *data_sets[] = {"data.task=abs", "data.feature_sets={\"kind\": \"correlated\", \"size\": 5}"};
        CHECK(parse(&s, "{" BASE "}", data_sets, 2, err) == 0, "%s", err);
        CHECK(s.data.task == TMS_TASK_ABS && s.data.sets == TMS_SETS_CORRELATED && s.data.set_size == 5, "--set data modes");
        tms_spec_free(&s);
    }
    CHECK(parse(&s, "{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"independent\", \"size\": 1}}}", NULL, 0, err) == 0,
          "%s", err);
    tms_spec_free(&s);

    // model.hidden_bias false: a hidden ReLU with no b1, though b stays
    CHECK(parse(&s, "{\"model\": {\"n_features\": 5, \"n_hidden\": 2, \"hidden_activation\": \"relu\", "
                    "\"hidden_bias\": false}}", NULL, 0, err) == 0, "%s", err);
    {
        tms_layout_t L;
        tms_layout_init(&L, &s.model, 1);
        CHECK(s.model.no_hidden_bias == 1 && !L.present[TMS_T_B1] && L.present[TMS_T_B], "hidden_bias false: no b1, b kept");
        char *text = cJSON_PrintUnformatted(s.resolved);
        CHECK(strstr(text, "\"bias\":true,\"hidden_bias\":false") != NULL, "resolved spec: %s", text);
        cJSON_free(text);
    }
    tms_spec_free(&s);
    CHECK(parse(&s, "{\"model\": {\"n_features\": 5, \"n_hidden\": 2, \"hidden_activation\": \"relu\"}}", NULL, 0, err) == 0,
          "%s", err);
    {
        tms_layout_t L;
        tms_layout_init(&L, &s.model, 1);
        CHECK(s.model.no_hidden_bias == 0 && L.present[TMS_T_B1], "hidden_bias defaults to true");
    }
    tms_spec_free(&s);

    // errors: each names the field, the value and what is allowed
    expect_error("{\"model\": {\"n_features\": 5, \"n_hidden\": 2, \"hidden_bias\": \"no\"}}", NULL,
                 "model.hidden_bias: \"no\" is not allowed; expected true or false");
    expect_error("{" BASE ", \"data\": {\"task\": \"absolute\"}}", NULL,
                 "data.task: \"absolute\" is not allowed; expected one of: sparse, abs");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": \"pairs\"}}", NULL,
                 "data.feature_sets: \"pairs\" is not allowed; expected an object {\"kind\": \"independent\"}");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"paired\", \"size\": 5}}}", NULL,
                 "data.feature_sets.kind: \"paired\" is not allowed; expected one of: independent, correlated, anticorrelated");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"size\": 5}}}", NULL,
                 "data.feature_sets.kind: missing; expected one of: independent, correlated, anticorrelated");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"correlated\"}}}", NULL,
                 "data.feature_sets.size: missing; expected an integer from 2 to 5 that divides model.n_features = 5");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"correlated\", \"size\": 2}}}", NULL,
                 "data.feature_sets.size: 2 is not allowed; expected an integer from 2 to 5 that divides model.n_features = 5");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"correlated\", \"size\": 1}}}", NULL,
                 "data.feature_sets.size: 1 is not allowed");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"independent\", \"size\": 5}}}", NULL,
                 "data.feature_sets.size: 5 is not allowed; expected 1 or nothing for independent features");
    expect_error("{" BASE ", \"data\": {\"feature_sets\": {\"kind\": \"correlated\", \"size\": 5, \"colour\": 1}}}", NULL,
                 "data.feature_sets.colour: unknown field; data.feature_sets knows: kind, size");
    expect_error("{\"model\": {\"n_features\": 4, \"n_hidden\": 2}, \"data\": {\"density\": [0.5, 0.6], "
                 "\"feature_sets\": {\"kind\": \"anticorrelated\", \"size\": 2}}}", NULL,
                 "data.density: 0.6 is not allowed with anticorrelated feature sets of size 2; expected at most 1/2 = 0.5");
    expect_error("{" BASE "}", "data.task=3", "data.task: 3 is not allowed");
    expect_error("{" BASE ", \"data\": {\"density\": 1.5}}", NULL, "data.density: 1.5 is not allowed; expected a number in (0, 1]");
    expect_error("{" BASE ", \"data\": {\"density\": [0.5, 0]}}", NULL, "data.density[1]: 0 is not allowed");
    expect_error("{" BASE ", \"data\": {\"densty\": 0.5}}", NULL, "data.densty: unknown field");
    expect_error("{" BASE ", \"modle\": {}}", NULL, "modle: unknown section");
    expect_error("{\"model\": {\"n_features\": 5}}", NULL, "model.n_hidden: missing");
    expect_error("{\"model\": {\"n_features\": 2.5, \"n_hidden\": 1}}", NULL, "model.n_features: 2.5 is not allowed; expected an integer");
    expect_error("{\"model\": {\"n_features\": 5, \"n_hidden\": 2, \"decoder\": \"shared\"}}", NULL,
                 "model.decoder: \"shared\" is not allowed; expected one of: tied, untied");
    expect_error("{\"model\": {\"n_features\": 5, \"n_hidden\": 2, \"bias\": 1}}", NULL, "model.bias: 1 is not allowed; expected true or false");
    expect_error("{" BASE ", \"data\": {\"importance\": [1, 2]}}", NULL, "data.importance");
    expect_error("{" BASE ", \"data\": {\"importance\": [1,1,1,1,1], \"importance_decay\": 0.9}}", NULL, "both given");
    expect_error("{" BASE ", \"optimizer\": {\"schedule\": \"step\"}}", NULL, "optimizer.schedule: \"step\" is not allowed; expected one of: constant, linear, cosine");
    expect_error("{" BASE ", \"optimizer\": {\"betas\": [0.9]}}", NULL, "optimizer.betas");
    expect_error("{" BASE ", \"optimizer\": {\"warmup_steps\": 200}, \"train\": {\"steps\": 100}}", NULL, "optimizer.warmup_steps: 200 is not allowed; expected an integer from 0 to 99");
    expect_error("{" BASE ", \"train\": {\"seeds\": 0}}", NULL, "train.seeds: 0 is not allowed");
    expect_error("{" BASE ", \"train\": {\"eval_samples\": 100}}", NULL, "train.eval_samples: 100 is not allowed; expected an integer from 8192");
    expect_error("{" BASE ", \"output\": {\"images\": \"yes\"}}", NULL, "output.images");
    expect_error("{" BASE "", NULL, "not valid JSON");
    expect_error("{" BASE ", " BASE "}", NULL, "model: given twice");
    expect_error("{\"model\": {\"n_features\": 5, \"n_hidden\": 2, \"n_hidden\": 3}}", NULL, "model.n_hidden: given twice");
    expect_error("[1, 2]", NULL, "must be a JSON object");
    expect_error("{" BASE "}", "train.stpes=5", "train.stpes: unknown field");
    expect_error("{" BASE "}", "steps=5", "--set steps=5: expected section.field=value");
    expect_error("{" BASE "}", "trian.steps=5", "unknown section 'trian'");
    expect_error("{" BASE "}", "data.density=2", "data.density: 2 is not allowed");

    // strict parsing (issue 10): nothing after the first JSON value is ignored
    expect_error("{" BASE "} x", NULL, "line 1, column 45: unexpected text after the JSON value: 'x'");
    expect_error("{" BASE "}\n// a comment\n", NULL, "line 2, column 1: unexpected text after the JSON value: '// a comment");
    expect_error("{" BASE "}", "data.density=1,0.1", "--set data.density: '1,0.1' is not allowed");
    expect_error("{" BASE "}", "train.steps=10_000", "--set train.steps: '10_000' is not allowed");
    expect_error("{" BASE "}", "optimizer.lr=1e-3,1e-2", "--set optimizer.lr: '1e-3,1e-2' is not allowed");
    expect_error("{" BASE "}", "train.steps=", "--set train.steps: '' is not allowed");
    expect_error("{" BASE "}", "train.steps=true", "train.steps: true is not allowed; expected an integer from 1 to 1000000000");
    // \u0000 would truncate a string or a key in cJSON
    expect_error("{" BASE ", \"name\": \"a\\u0000b\"}", NULL, "line 1, column 55: \\u0000 (a NUL character)");
    expect_error("{" BASE ", \"data\": {\"density\\u0000x\": 0.5}}", NULL, "\\u0000 (a NUL character)");
    // raw control characters inside strings are not JSON (RFC 8259): refused, not split messages
    expect_error("{" BASE ", \"train\": {\"st\nps\": 3}}", NULL, "a raw control character (code 10)");
    expect_error("{" BASE ", \"name\": \"a\tb\"}", NULL, "a raw control character (code 9)");
    // an escaped backslash before u0000 is ordinary text (then an unknown field, named)
    expect_error("{" BASE ", \"data\": {\"a\\\\u0000\": 0.5}}", NULL, "data.a\\u0000: unknown field");
    // numbers: the real range, the value as given
    expect_error("{" BASE ", \"optimizer\": {\"lr\": 1e30}}", NULL,
                 "optimizer.lr: 1e+30 is not allowed; expected a number in (0, 1e6], or a non-empty list of them (at most 4096)");
    expect_error("{" BASE ", \"optimizer\": {\"lr\": 1e400}}", NULL, "the number 1e400 is beyond the range of a double");
    expect_error("{" BASE "}", "optimizer.lr=-1e400", "the number -1e400 is beyond the range of a double");
    expect_error("{" BASE ", \"optimizer\": {\"weight_decay\": [0, 2e6]}}", NULL,
                 "optimizer.weight_decay[1]: 2000000 is not allowed; expected a number in [0, 1e6]");
    expect_error("{" BASE ", \"data\": {\"importance_decay\": 2e6}}", NULL, "expected a number r in (0, 1e6]");
    expect_error("{\"model\": {\"n_features\": 200, \"n_hidden\": 2}, \"data\": {\"importance_decay\": 2}}", NULL,
                 "data.importance_decay: 2 is not allowed with model.n_features = 200; expected r^(n_features - 1) at most 1e30");
    expect_error("{" BASE ", \"data\": {\"importance\": [1, 1, 1, 1, 1e31]}}", NULL, "expected a list of 5 numbers in (0, 1e30]");
    expect_error("{" BASE ", \"train\": {\"steps\": 2e9}}", NULL, "train.steps: 2000000000 is not allowed; expected an integer from 1 to 1000000000");
    // seeds: 2^53 inclusive, as the README says; 2^53 + 1 is refused, not rounded to 2^53
    CHECK(parse(&s, "{" BASE ", \"train\": {\"seed\": 9007199254740992}}", NULL, 0, err) == 0 &&
          s.seed[0] == 9007199254740992ULL, "seed 2^53 refused: %s", err);
    tms_spec_free(&s);
    expect_error("{" BASE ", \"train\": {\"seed\": 9007199254740993}}", NULL,
                 "the number 9007199254740993 is an integer beyond 2^53");
    expect_error("{" BASE ", \"train\": {\"seed\": [1, 90071992547409920]}}", NULL, "is an integer beyond 2^53");
    expect_error("{" BASE ", \"train\": {\"seed\": 9.1e15}}", NULL, "train.seed: 9100000000000000 is not allowed");

    // the default evaluation: 2^20 samples, or an eighth of the training samples, at least 8192
    CHECK(parse(&s, "{" BASE ", \"data\": {\"batch_size\": 256}, \"train\": {\"steps\": 300}}", NULL, 0, err) == 0 &&
          s.eval_samples == 300 * 256 / 8, "eval default for a short run: %ld", s.eval_samples);
    tms_spec_free(&s);
    CHECK(parse(&s, "{" BASE ", \"train\": {\"steps\": 10}}", NULL, 0, err) == 0 && s.eval_samples == 8192,
          "eval default floor: %ld", s.eval_samples);
    tms_spec_free(&s);

    // the grid size cannot wrap: 4096^5 x 16 = 2^64 instances is refused, naming the axes
    {
        size_t cap = 6 * 5 * 4096 * 8 + 1024;
        char *big = malloc(cap), *list = malloc(4096 * 8 + 8);
        size_t used = 0;
        list[used++] = '[';
        for (int k = 0; k < 4096; k++) used += (size_t)sprintf(list + used, "%s0.5", k ? "," : "");
        list[used++] = ']';
        list[used] = 0;
        char *seeds = malloc(4096 * 8 + 8);
        used = 0;
        seeds[used++] = '[';
        for (int k = 0; k < 4096; k++) used += (size_t)sprintf(seeds + used, "%s%d", k ? "," : "", k);
        seeds[used++] = ']';
        seeds[used] = 0;
        snprintf(big, cap, "{" BASE ", \"data\": {\"density\": %s, \"importance_decay\": %s}, \"optimizer\": {\"lr\": "
                 "%s, \"weight_decay\": %s}, \"train\": {\"seed\": %s, \"seeds\": 16}}", list, list, list, list, seeds);
        char err2[512] = "";
        CHECK(tms_spec_parse(&s, big, "t", NULL, 0, err2, sizeof(err2)) != 0 &&
              strstr(err2, "the grid has 4096 data.density x 4096 data.importance_decay x 4096 optimizer.lr x 4096 "
                           "optimizer.weight_decay x 4096 train.seed x 16 train.seeds = 1.8446744073709552e+19 instances; "
                           "expected at most 10000000") != NULL, "grid overflow: %s", err2);
        free(big); free(list); free(seeds);
        // and the count itself saturates for an unvalidated spec
        tms_spec_t raw = {0};
        raw.n_density = raw.n_importance = raw.n_lr = raw.n_weight_decay = raw.n_seed = 4096;
        raw.seeds = 16;
        CHECK(tms_spec_instances(&raw) == TMS_MAX_INSTANCES + 1, "tms_spec_instances wraps: %ld", tms_spec_instances(&raw));
    }

    // numbers written the shortest way that reads back exactly
    {
        const double values[] = {0.05, 200, 1e30, 1e-5, 0.1 + 0.2, 9007199254740992.0, 3e-3};
        const char *texts[] = {"0.05", "200", "1e+30", "1e-05", "0.30000000000000004", "9007199254740992", "0.003"};
        for (int k = 0; k < 7; k++) {
            char buf[40];
            tms_format_double(buf, sizeof(buf), values[k]);
            CHECK(strcmp(buf, texts[k]) == 0 && strtod(buf, NULL) == values[k], "format %.17g -> %s", values[k], buf);
        }
        char buf[40];
        tms_format_float(buf, sizeof(buf), 0.05f);
        CHECK(strcmp(buf, "0.05") == 0, "float 0.05 -> %s", buf);
        tms_format_float(buf, sizeof(buf), 0.0184569f);
        CHECK(strtof(buf, NULL) == 0.0184569f && strlen(buf) <= 10, "float -> %s", buf);
    }
    {
        // output.snapshots: known answers of the spacing, the list form, and what is refused
        long st[16];
        const long log5[] = {1, 10, 100, 1000, 10000}, lin4[] = {250, 500, 750, 1000}, all3[] = {1, 2, 3};
        CHECK(tms_snapshot_steps(10000, 5, TMS_SPACING_LOG, st) == 5 && !memcmp(st, log5, sizeof(log5)), "log 5 of 10000");
        CHECK(tms_snapshot_steps(1000, 4, TMS_SPACING_LINEAR, st) == 4 && !memcmp(st, lin4, sizeof(lin4)), "linear 4 of 1000");
        CHECK(tms_snapshot_steps(3, 8, TMS_SPACING_LOG, st) == 3 && !memcmp(st, all3, sizeof(all3)), "8 of 3 steps: every step");
        CHECK(tms_snapshot_steps(50, 1, TMS_SPACING_LOG, st) == 1 && st[0] == 50, "1 snapshot: the last step");
        // 12 of 20: the early log steps round to the same integers and are moved up, distinct, ending at 20
        CHECK(tms_snapshot_steps(20, 12, TMS_SPACING_LOG, st) == 12 && st[0] == 1 && st[11] == 20, "12 of 20");
        for (int k = 1; k < 12; k++) CHECK(st[k] > st[k - 1], "12 of 20: step %d (%ld) after %ld", k, st[k], st[k - 1]);
        CHECK(parse(&s, "{" BASE ", \"train\": {\"steps\": 100}, \"output\": {\"snapshots\": [0, 5, 100]}}", NULL, 0,
                    err) == 0, "%s", err);
        CHECK(s.n_snapshots == 3 && s.snapshots_listed && s.snapshot_steps[0] == 0 && s.snapshot_steps[2] == 100, "list");
        {
            char *text = cJSON_PrintUnformatted(s.resolved);
            CHECK(text && strstr(text, "\"snapshots\":[0,5,100]") != NULL, "resolved list: %s", text);
            cJSON_free(text);
        }
        tms_spec_free(&s);
        CHECK(parse(&s, "{" BASE ", \"train\": {\"steps\": 10}, \"output\": {\"snapshots\": 64}}", NULL, 0, err) == 0,
              "%s", err);
        CHECK(s.n_snapshots == 10, "64 snapshots of a 10-step run: every step, %d", s.n_snapshots);
        {
            char *text = cJSON_PrintUnformatted(s.resolved);
            CHECK(text && strstr(text, "\"snapshots\":10,\"snapshot_spacing\":\"log\"") != NULL, "resolved count: %s", text);
            cJSON_free(text);
        }
        tms_spec_free(&s);
        CHECK(parse(&s, "{" BASE "}", NULL, 0, err) == 0 && s.n_snapshots == 0, "no snapshots by default");
        tms_spec_free(&s);
#define SNAP "{" BASE ", \"train\": {\"steps\": 100}, \"output\": "
        expect_error(SNAP "{\"snapshots\": -1}}", NULL, "output.snapshots: -1 is not allowed; expected a count from 0 to 4096");
        expect_error(SNAP "{\"snapshots\": 4097}}", NULL, "output.snapshots: 4097 is not allowed");
        expect_error(SNAP "{\"snapshots\": 2.5}}", NULL, "output.snapshots: 2.5 is not allowed");
        expect_error(SNAP "{\"snapshots\": \"log\"}}", NULL, "output.snapshots: \"log\" is not allowed");
        expect_error(SNAP "{\"snapshots\": []}}", NULL, "output.snapshots: [] is not allowed");
        expect_error(SNAP "{\"snapshots\": [0, 101]}}", NULL,
                     "output.snapshots[1]: 101 is not allowed; expected a step: an integer from 0 (the initialisation) to train.steps (100)");
        expect_error(SNAP "{\"snapshots\": [5, 5]}}", NULL, "output.snapshots[1]: 5 is not allowed; expected a step after the one before it (5)");
        expect_error(SNAP "{\"snapshots\": [50, 3]}}", NULL, "output.snapshots[1]: 3 is not allowed");
        expect_error(SNAP "{\"snapshots\": [1, -2]}}", NULL, "output.snapshots[1]: -2 is not allowed");
        expect_error(SNAP "{\"snapshots\": 4, \"snapshot_spacing\": \"cubic\"}}", NULL,
                     "output.snapshot_spacing: \"cubic\" is not allowed; expected one of: log, linear");
        expect_error(SNAP "{\"snapshots\": [1, 2], \"snapshot_spacing\": \"log\"}}", NULL,
                     "output.snapshot_spacing: \"log\" is not allowed; expected no snapshot_spacing with a list of steps");
        expect_error("{" BASE "}", "output.snapshots=[0,20000]", "output.snapshots[1]: 20000 is not allowed");
#undef SNAP
    }
    {
        // data.relative_density: per-feature densities, carried into the problem and the resolved spec
        CHECK(parse(&s, "{" BASE ", \"data\": {\"density\": [0.05, 0.1], \"relative_density\": [1, 1, 1, 1, 4]}}",
                    NULL, 0, err) == 0, "%s", err);
        CHECK(s.relative_density && s.relative_density[4] == 4.0 && s.data.relative_density[4] == 4.0f, "relative density");
        {
            tms_problem_t P;
            CHECK(tms_problem_build(&P, &s) == 0 && P.data.relative_density && P.data.relative_density[4] == 4.0f &&
                  P.data.relative_density != s.data.relative_density, "the problem's own copy");
            tms_problem_free(&P);
            char *text = cJSON_PrintUnformatted(s.resolved);
            CHECK(text && strstr(text, "\"relative_density\":[1,1,1,1,4]") != NULL, "resolved: %s", text);
            cJSON_free(text);
        }
        tms_spec_free(&s);
        CHECK(parse(&s, "{" BASE "}", NULL, 0, err) == 0 && !s.data.relative_density, "none by default");
        tms_spec_free(&s);
        expect_error("{" BASE ", \"data\": {\"relative_density\": [1, 1, 1, 1]}}", NULL,
                     "data.relative_density: [1,1,1,1] is not allowed; expected a list of 5 numbers in (0, 1e6]");
        expect_error("{" BASE ", \"data\": {\"relative_density\": [1, 0, 1, 1, 1]}}", NULL,
                     "data.relative_density[1]: 0 is not allowed; expected a number in (0, 1e6]");
        expect_error("{" BASE ", \"data\": {\"density\": [0.05, 0.3], \"relative_density\": [1, 1, 1, 1, 4]}}", NULL,
                     "data.relative_density[4]: 4 is not allowed; expected a factor that keeps density * relative_density "
                     "in (0, 1]: with data.density 0.3 it is 1.2");
        expect_error("{\"model\": {\"n_features\": 4, \"n_hidden\": 2}, \"data\": {\"relative_density\": [1, 1, 1, 2], "
                     "\"feature_sets\": {\"kind\": \"correlated\", \"size\": 2}}}", NULL,
                     "expected no relative_density with data.feature_sets");
    }
    return check_finish("test_spec");
}
