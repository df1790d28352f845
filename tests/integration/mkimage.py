#!/usr/bin/env python3
"""mkimage.py LAYOUT TAG LAYER... — write an OCI image made of hand-crafted layers.

Each LAYER is a file: `*.tar` is gzipped here, `*.gz` (or `*.tgz`) is taken as
already compressed (a gzip bomb, a truncated stream).  The diff_id is the
sha256 of the decompressed stream, as far as it decompresses (a broken
stream gets the digest of what could be read, so only the tar reader can
object).  Standard library only; umoci is not used because it refuses or
rewrites some of the hostile layers these tests need.

Also: `mkimage.py --tar OUT.tar SPEC.json` writes a tar from a JSON list of
entries {name, type: file|dir|symlink|hardlink|fifo|chr|blk, data, linkname,
mode, uid, gid, pax} — names may carry any byte via "\\uXXXX"/surrogates
("name_hex" gives raw bytes in hex).

`zstd_chunked(tar_bytes, edit_toc=None)` builds a zstd:chunked layer the way
containers/storage lays one out (the tar as zstd, then the table of contents
in a zstd skippable frame, then a footer frame) and returns the dict
make_image takes in place of a path: {blob, mediaType, annotations,
diff_id}.  `edit_toc(toc)` may change the table of contents before it is
written, to make a lying one.  Needs the zstd command.
"""
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import zlib

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
ZSTD_SKIPPABLE = 0x184D2A50


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    p = os.path.join(layout, "blobs", "sha256", d)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def gunzip_digest(data):
    h = hashlib.sha256()
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        pos = 0
        while pos < len(data):
            h.update(z.decompress(data[pos:pos + 65536], 1 << 20))
            while z.unconsumed_tail:
                h.update(z.decompress(z.unconsumed_tail, 1 << 20))
            pos += 65536
        h.update(z.flush())
    except zlib.error:
        pass
    return "sha256:" + h.hexdigest()


def make_image(layout, tag, layers, arch="amd64", bad_diff_ids=False):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    descs, diff_ids = [], []
    for path in layers:
        if isinstance(path, dict):  # made by zstd_chunked()
            digest, size = put_blob(layout, path["blob"])
            descs.append({"mediaType": path["mediaType"], "digest": digest, "size": size,
                          "annotations": path["annotations"]})
            diff_ids.append(path["diff_id"])
            continue
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith((".gz", ".tgz")):
            comp, diff_id = raw, gunzip_digest(raw)
        else:
            comp, diff_id = gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()
        digest, size = put_blob(layout, comp)
        descs.append({"mediaType": MT_LAYER_GZ, "digest": digest, "size": size})
        diff_ids.append(diff_id)
    config = {
        "created": "2020-01-01T00:00:00Z", "architecture": arch, "os": "linux",
        "config": {"Entrypoint": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(b"wrong").hexdigest()] * len(diff_ids)
                   if bad_diff_ids else diff_ids},
        "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "mkimage.py"}],
    }
    cdigest, csize = put_blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": cdigest, "size": csize}, "layers": descs}
    mdigest, msize = put_blob(layout, json.dumps(manifest).encode())
    ipath = os.path.join(layout, "index.json")
    try:
        with open(ipath) as f:
            index = json.load(f)
    except OSError:
        index = {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append({"mediaType": MT_MANIFEST, "digest": mdigest, "size": msize,
                               "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(ipath, "w") as f:
        json.dump(index, f)
    print(mdigest)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True).stdout


def zstd_chunked(tar_bytes, edit_toc=None):
    kinds = {tarfile.REGTYPE: "reg", tarfile.AREGTYPE: "reg", tarfile.DIRTYPE: "dir",
             tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
    entries = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
        for m in t.getmembers():
            e = {"type": kinds.get(m.type, "char"), "name": m.name, "mode": m.mode}
            if m.uid:
                e["uid"] = m.uid
            if m.gid:
                e["gid"] = m.gid
            if m.issym() or m.islnk():
                e["linkName"] = m.linkname
            if m.isreg() and m.size:  # as podman: no size nor digest for an empty file
                e["size"] = m.size
                e["digest"] = "sha256:" + hashlib.sha256(t.extractfile(m).read()).hexdigest()
            entries.append(e)
    toc = {"version": 1, "entries": entries}
    if edit_toc:
        edit_toc(toc)
    toc_json = json.dumps(toc).encode()
    toc_z = zstd(toc_json)
    body = zstd(tar_bytes)
    offset = len(body) + 8
    footer = struct.pack("<QQQQ", offset, len(toc_z), len(toc_json), 1) + b"GnUlInUx"
    blob = (body + struct.pack("<II", ZSTD_SKIPPABLE, len(toc_z)) + toc_z
            + struct.pack("<II", ZSTD_SKIPPABLE, len(footer)) + footer)
    return {"blob": blob, "mediaType": MT_LAYER_ZSTD, "diff_id": "sha256:" + hashlib.sha256(tar_bytes).hexdigest(),
            "annotations": {
                "io.containers.zstd-chunked.manifest-checksum": "sha256:" + hashlib.sha256(toc_z).hexdigest(),
                "io.containers.zstd-chunked.manifest-position": "%d:%d:%d:1" % (offset, len(toc_z), len(toc_json))}}


def make_tar(out, spec):
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE,
             "blk": tarfile.BLKTYPE}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
        for e in spec:
            name = bytes.fromhex(e["name_hex"]).decode("utf-8", "surrogateescape") if "name_hex" in e else e["name"]
            ti = tarfile.TarInfo(name)
            ti.type = types[e.get("type", "file")]
            ti.mode = e.get("mode", 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
            ti.uid, ti.gid = e.get("uid", 0), e.get("gid", 0)
            ti.mtime = 1577836800
            ti.linkname = e.get("linkname", "")
            ti.devmajor, ti.devminor = e.get("major", 0), e.get("minor", 0)
            if e.get("pax"):
                ti.pax_headers = e["pax"]
            data = e.get("data", "").encode()
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--tar":
        with open(sys.argv[3]) as f:
            make_tar(sys.argv[2], json.load(f))
        return
    args = sys.argv[1:]
    arch = "amd64"
    if args and args[0].startswith("--arch="):
        arch = args.pop(0).split("=", 1)[1]
    if len(args) < 2:
        sys.exit(__doc__)
    make_image(args[0], args[1], args[2:], arch)


if __name__ == "__main__":
    main()
