// test_npy.c: the .npy header parser against headers numpy writes (and variants a Python
// dict literal allows), and the ones it must refuse; the lock that guards a run directory.
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "fileio.h"
#include "npy.h"

static int parse(const char *text, tms_npy_header_t *h, char *err, size_t errlen) {
    return tms_npy_parse_header(text, strlen(text), h, err, errlen);
}

int main(int argc, char **argv) {
    tms_npy_header_t h;
    char err[256];
    // accepted: numpy 1.x / 2.x text (padded with spaces and '\n'), other key orders,
    // double quotes, no trailing comma, 0-d and 1-tuple shapes
    struct { const char *text; const char *descr; int fortran, ndim; long shape[3]; } good[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (16, 2, 5), }          \n", "<f4", 0, 3, {16, 2, 5}},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (7,), }\n", "<i8", 0, 1, {7}},
        {"{'shape': (3, 4), 'fortran_order': True, 'descr': '>f4'}", ">f4", 1, 2, {3, 4}},
        {"{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":()}", "<f4", 0, 0, {0}},
        {"{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 0 , 5 , ) , }", "<f4", 0, 2, {0, 5}},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = parse(good[i].text, &h, err, sizeof(err));
        CHECK(rc == 0, "good header %zu refused: %s", i, err);
        if (rc) continue;
        CHECK(strcmp(h.descr, good[i].descr) == 0 && h.fortran_order == good[i].fortran && h.ndim == good[i].ndim,
              "good header %zu: descr %s fortran %d ndim %d", i, h.descr, h.fortran_order, h.ndim);
        for (int d = 0; d < h.ndim && d < 3; d++) CHECK(h.shape[d] == good[i].shape[d], "header %zu dim %d", i, d);
    }
    // refused, each with its reason
    struct { const char *text; const char *why; } bad[] = {
        {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", "unknown key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", "twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", "1-tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", "non-integer"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x", "after the dict"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}", "quoted string"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}", "escape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9)}", "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "absurdly large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,", "shape"},
        {"", "expected '{'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        int rc = parse(bad[i].text, &h, err, sizeof(err));
        CHECK(rc != 0 && strstr(err, bad[i].why), "bad header %zu: rc %d, message '%s', expected '%s'", i, rc, err, bad[i].why);
    }
    // a header that is not NUL-terminated is read only within its length
    const char cut[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}GARBAGE";
    CHECK(tms_npy_parse_header(cut, sizeof(cut) - 1 - 7, &h, err, sizeof(err)) == 0, "length-bounded header: %s", err);

    // the lock: a second acquirer (another process) is refused and told the holder's pid;
    // after release the file is gone and the lock can be taken again
    if (argc > 1) {
        char path[4096];
        snprintf(path, sizeof(path), "%s.lock", argv[1]);
        tms_lock_t a, b;
        CHECK(tms_lock_acquire(&a, path, err, sizeof(err)) == 0, "first lock: %s", err);
        pid_t child = fork();
        if (child == 0) {
            char cerr[512];
            int rc = tms_lock_acquire(&b, path, cerr, sizeof(cerr));
            char want[64];
            snprintf(want, sizeof(want), "pid %ld on ", (long)getppid());
            _exit(rc == 1 && strstr(cerr, want) ? 0 : 1);
        }
        int status = 0;
        waitpid(child, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a second process was not refused with the holder's pid");
        tms_lock_release(&a);
        CHECK(access(path, F_OK) != 0, "the lock file is left after release");
        CHECK(tms_lock_acquire(&b, path, err, sizeof(err)) == 0, "lock again after release: %s", err);
        tms_lock_release(&b);
    }
    return check_finish("test_npy");
}
