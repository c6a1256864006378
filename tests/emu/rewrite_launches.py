#!/usr/bin/env python3
"""rewrite_launches.py OUT_DIR SOURCE...: copy CUDA sources for the emulator (tests/emu).

Every kernel launch `callee<<<grid, block[, shmem[, stream]]>>>(args)` becomes
`::emu::launch(callee, "callee", __FILE__, __LINE__, grid, block[, shmem[, stream]])(args)`:
the argument list is left as written (any nesting), the emulator's launcher takes it.
Nothing else changes; each output starts with a #line directive naming the original file,
and no line is added or removed, so compiler messages and __FILE__/__LINE__ point at the
real source. `#include "x.cuh"` finds the rewritten copy because all outputs share OUT_DIR.

Comments, string and character literals are skipped. A `<<<` that cannot be parsed (no
callee before it, no `>>>`, a configuration of other than 2 to 4 arguments, no `(` after
`>>>`) stops the build with the file and line: a launch the emulator would silently miss
must never compile.
"""
import os
import re
import sys


def code_mask(text):
    """A copy of text with comments and literals blanked (newlines kept), for scanning."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise SyntaxError("unterminated comment", i)
            for k in range(i, j + 2):
                if out[k] != "\n":
                    out[k] = " "
            i = j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise SyntaxError("unterminated literal", i)
            for k in range(i + 1, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


class LaunchError(Exception):
    pass


def callee_start(mask, end):
    """Start of the callee expression that ends just before index end: an identifier
    path (a::b) with optional template arguments <...>, balanced."""
    i = end
    while i > 0 and mask[i - 1] in " \t\n":
        i -= 1
    stop = i
    while True:
        if i > 0 and mask[i - 1] == ">":  # template arguments: walk back to the matching <
            depth = 0
            while i > 0:
                i -= 1
                if mask[i] == ">":
                    depth += 1
                elif mask[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
            if depth != 0:
                raise LaunchError("unbalanced template arguments before <<<")
            while i > 0 and mask[i - 1] in " \t\n":
                i -= 1
        j = i
        while j > 0 and (mask[j - 1].isalnum() or mask[j - 1] == "_"):
            j -= 1
        if j == i:
            raise LaunchError("no kernel name before <<<")
        i = j
        if i >= 2 and mask[i - 2:i] == "::":
            i -= 2
            if i > 0 and (mask[i - 1].isalnum() or mask[i - 1] in "_>"):
                continue
        return i, stop


def split_config(mask, text, start):
    """Arguments of <<<...>>> from index start (just after <<<): list of strings and the
    index just after >>>. Commas inside (), [], {} do not split."""
    depth, i, args, arg0 = 0, start, [], start
    n = len(mask)
    while i < n:
        if mask.startswith(">>>", i) and depth == 0:
            args.append(text[arg0:i])
            return args, i + 3
        c = mask[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                raise LaunchError("unbalanced brackets in <<<...>>>")
        elif c == "," and depth == 0:
            args.append(text[arg0:i])
            arg0 = i + 1
        elif c == ";" and depth == 0:
            break
        i += 1
    raise LaunchError("<<< without a matching >>>")


def rewrite(text, path):
    mask = code_mask(text)
    out, pos, count = [], 0, 0
    for m in re.finditer(r"<<<", mask):
        if m.start() < pos:
            continue
        line = mask.count("\n", 0, m.start()) + 1
        try:
            begin, stop = callee_start(mask, m.start())
            callee = text[begin:stop]
            args, after = split_config(mask, text, m.end())
            if not 2 <= len(args) <= 4 or any(not a.strip() for a in args):
                raise LaunchError("a launch takes 2 to 4 configuration arguments, found %d" % len(args))
            k = after
            while k < len(mask) and mask[k] in " \t\n":
                k += 1
            if k >= len(mask) or mask[k] != "(":
                raise LaunchError("no argument list after >>>")
        except LaunchError as e:
            raise SystemExit("%s:%d: rewrite_launches.py: cannot parse this kernel launch: %s"
                             % (path, line, e))
        name = re.sub(r"\s+", "", callee)
        # keep every newline of the original so line numbers stay put
        head = "::emu::launch(%s, \"%s\", __FILE__, __LINE__, " % (callee.strip(), name)
        config = ",".join(args)
        newlines = text.count("\n", begin, after) - config.count("\n")
        out.append(text[pos:begin])
        out.append(head + config + ")" + "\n" * max(newlines, 0))
        pos = after
        count += 1
    out.append(text[pos:])
    return "".join(out), count


def main(argv):
    if len(argv) < 3:
        raise SystemExit("usage: rewrite_launches.py OUT_DIR SOURCE...")
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for src in argv[2:]:
        with open(src, encoding="utf-8") as f:
            text = f.read()
        try:
            new, count = rewrite(text, src)
        except SyntaxError as e:
            raise SystemExit("%s: rewrite_launches.py: %s" % (src, e.msg))
        total += count
        dst = os.path.join(out_dir, os.path.basename(src))
        tmp = dst + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('#line 1 "%s"\n' % os.path.abspath(src))
            f.write(new)
        os.replace(tmp, dst)
    if total == 0:
        raise SystemExit("rewrite_launches.py: no kernel launch found in %s" % " ".join(argv[2:]))


if __name__ == "__main__":
    main(sys.argv)
