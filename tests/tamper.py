"""tamper.py: damage and edit tms's run files the way a disk, a crash or a hand would (test_tamper.sh).

  tamper.py flip FILE [OFFSET]       xor one byte (default: the last) with 0x01
  tamper.py truncate FILE BYTES      cut the file to BYTES bytes
  tamper.py edit FILE [--reseal] PATH=JSON...
                                     set (or, with the value DELETE, remove) a field of a JSON
                                     file; PATH is keys joined by ':' (files:W.npy). --reseal
                                     recomputes the file's "sha256" the way tms computes it, as
                                     a careful hand would: what then refuses the file is tms's
                                     validation, not its checksum
  tamper.py resave FILE MODE         numpy rewrites the array: same (np.save), v2 (format
                                     version 2.0, another header), fortran (Fortran order),
                                     bigendian ('>f4'), reshape (same bytes, last two axes swapped)
"""
import hashlib
import json
import sys


def shorten(d):
    # json.dumps prints integers, strings and short floats as cJSON does; the floats tms
    # writes with 16-17 digits (wall_seconds) may print otherwise: set them to a short value
    if "wall_seconds" in d:
        d["wall_seconds"] = 1.5
    for src in d.get("merged_from", []):
        src["wall_seconds"] = 1.5


def seal(d):
    # tms's checksum: SHA-256 of the object printed compactly by cJSON, without "sha256"
    d.pop("sha256", None)
    text = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    d["sha256"] = hashlib.sha256(text.encode()).hexdigest()


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "flip":
        data = bytearray(open(path, "rb").read())
        data[int(sys.argv[3]) if len(sys.argv) > 3 else -1] ^= 0x01
        open(path, "wb").write(data)
    elif cmd == "truncate":
        data = open(path, "rb").read()
        open(path, "wb").write(data[: int(sys.argv[3])])
    elif cmd == "edit":
        d = json.load(open(path))
        args = sys.argv[3:]
        reseal = "--reseal" in args
        if reseal:
            shorten(d)
        for arg in (a for a in args if a != "--reseal"):
            keys, value = arg.split("=", 1)
            keys = keys.split(":")
            node = d
            for k in keys[:-1]:
                node = node[k]
            if value == "DELETE":
                del node[keys[-1]]
            else:
                node[keys[-1]] = json.loads(value)
        if reseal:
            seal(d)
        json.dump(d, open(path, "w"), indent="\t")
    elif cmd == "resave":
        import numpy as np  # only here: the other commands start faster without it

        a = np.load(path)
        mode = sys.argv[3]
        if mode == "same":
            np.save(path, a)
        elif mode == "v2":
            with open(path, "wb") as f:
                np.lib.format.write_array(f, a, version=(2, 0))
        elif mode == "fortran":
            np.save(path, np.asfortranarray(a))
        elif mode == "bigendian":
            np.save(path, a.astype(a.dtype.newbyteorder(">")))
        elif mode == "reshape":
            np.save(path, a.reshape(a.shape[:-2] + (a.shape[-1], a.shape[-2])))
        else:
            sys.exit(f"unknown resave mode {mode}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
