#!/usr/bin/env python3
"""fake-registry.py — a hostile Distribution-API server for sysctr's tests.

Standard library only.  It serves images from OCI layouts
(LAYOUTS/NAME/index.json + blobs/) and misbehaves on request.  The first
component of the repository path picks the behaviour, so one server covers
every case:

    GET /v2/MODE/NAME/manifests/TAG|DIGEST    GET /v2/MODE/NAME/blobs/DIGEST

MODE (see BEHAVIOURS below): ok, manifest-digest, config-bytes, layer-bytes,
big-manifest, self-index, nested-N, cl-short, cl-long, cl-over, stall, drip,
redirect, redirect-same, http500, bad-mediatype, evil-mediatype, evil-ctype,
evil-json, endless, silent, bad-and-slow, bad-json, token-garbage,
token-empty, token-refuse, layer-mediatype.

Auth (--auth): "none", "bearer" (every /v2/ request needs the token that
GET /token hands out; the token endpoint looks at scope=repository:MODE/...
to misbehave, and checks Basic credentials when --user is given), or
"basic" (--user required).

--redirect-base URL: where "redirect" mode sends blob requests (another
instance of this script, e.g. on 127.0.0.2, serves them under
/redirected/NAME/DIGEST).  --log FILE: one JSON line per request with the
peer, method, path and all request headers (tests grep it for
Authorization).  --tls-cert/--tls-key: serve HTTPS.
"""
import argparse
import base64
import hashlib
import json
import os
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
TOKEN = "fake-token-4242"

ARGS = None
LOG_LOCK = threading.Lock()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    def __init__(self, path):
        self.path = path

    def blob(self, digest):
        if not digest.startswith("sha256:") or "/" in digest or ".." in digest:
            return None
        p = os.path.join(self.path, "blobs", "sha256", digest[len("sha256:"):])
        try:
            with open(p, "rb") as f:
                return f.read()
        except OSError:
            return None

    def tag(self, tag):
        try:
            with open(os.path.join(self.path, "index.json")) as f:
                index = json.load(f)
        except OSError:
            return None
        for m in index.get("manifests", []):
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return m
        return None

    def manifest(self, ref):
        """(bytes, media type, digest) of a manifest by tag or digest"""
        if ref.startswith("sha256:"):
            data = self.blob(ref)
            if data is None:
                return None
            mt = json.loads(data).get("mediaType", MT_OCI_MANIFEST)
            return data, mt, ref
        desc = self.tag(ref)
        if desc is None:
            return None
        data = self.blob(desc["digest"])
        return data, desc.get("mediaType", MT_OCI_MANIFEST), desc["digest"]

    def layer_index(self, digest):
        """position of a layer blob in the manifest that lists it (or -1)"""
        d = os.path.join(self.path, "blobs", "sha256")
        for name in os.listdir(d):
            try:
                with open(os.path.join(d, name), "rb") as f:
                    j = json.loads(f.read())
                for i, layer in enumerate(j.get("layers", [])):
                    if layer.get("digest") == digest:
                        return i
            except (OSError, ValueError, AttributeError):
                continue
        return -1

    def config_digests(self):
        out = set()
        d = os.path.join(self.path, "blobs", "sha256")
        for name in os.listdir(d):
            try:
                with open(os.path.join(d, name), "rb") as f:
                    head = f.read(1)
                    if head != b"{":
                        continue
                    j = json.loads(head + f.read())
            except (OSError, ValueError):
                continue
            if isinstance(j, dict) and isinstance(j.get("config"), dict) and "layers" in j:
                out.add(j["config"].get("digest"))
        return out


def nested_index(layout, tag, depth, store):
    """An index chain `depth` deep ending at the tag's manifest; returns the
    top index bytes and fills `store` with digest -> bytes of every level."""
    data, mt, digest = layout.manifest(tag)
    cfg = json.loads(layout.blob(json.loads(data)["config"]["digest"]))
    platform = {"os": cfg.get("os", "linux"), "architecture": cfg.get("architecture", "amd64")}
    for _ in range(depth):
        idx = json.dumps({
            "schemaVersion": 2, "mediaType": MT_OCI_INDEX,
            "manifests": [{"mediaType": mt, "digest": digest, "size": len(data), "platform": platform}],
        }).encode()
        data, mt, digest = idx, MT_OCI_INDEX, sha256(idx)
        store[digest] = (data, mt)
    return data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-registry/1"

    def log_message(self, fmt, *args):  # quiet stderr
        pass

    def log_request_json(self):
        if not ARGS.log:
            return
        rec = {"addr": "%s:%d" % self.server.server_address[:2], "method": self.command, "path": self.path,
               "headers": {k: v for k, v in self.headers.items()}}
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(rec) + "\n")

    # ---- responses
    def send(self, code, body=b"", ctype="application/json", headers=None, length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, err, msg):
        body = json.dumps({"errors": [{"code": err, "message": msg}]}).encode()
        self.send(code, body)

    def challenge(self):
        host = self.headers.get("Host", "127.0.0.1")
        scheme = "https" if ARGS.tls_cert else "http"
        if ARGS.auth == "basic":
            hdr = 'Basic realm="fake"'
        else:
            hdr = 'Bearer realm="%s://%s/token",service="fake-registry"' % (scheme, host)
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
        self.send(401, body, headers={"WWW-Authenticate": hdr})

    def authorized(self):
        a = self.headers.get("Authorization", "")
        if ARGS.auth == "none":
            return True
        if ARGS.auth == "bearer":
            return a == "Bearer " + TOKEN
        return a == "Basic " + base64.b64encode(ARGS.user.encode()).decode()

    # ---- endpoints
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log_request_json()
        path = self.path.split("?", 1)[0]
        if path == "/token":
            return self.token()
        if path.startswith("/redirected/"):
            return self.redirected(path)
        if not path.startswith("/v2/"):
            return self.error(404, "NOT_FOUND", "no such endpoint")
        if not self.authorized():
            return self.challenge()
        if path in ("/v2/", "/v2"):
            return self.send(200, b"{}")
        rest = path[len("/v2/"):]
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                repo, ref = rest.rsplit(kind, 1)
                break
        else:
            return self.error(404, "NOT_FOUND", "no such endpoint")
        if "/" not in repo:
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        mode, name = repo.split("/", 1)
        lay_path = os.path.join(ARGS.layouts, name)
        if ".." in name or not os.path.isfile(os.path.join(lay_path, "index.json")):
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        layout = Layout(lay_path)
        if kind == "/manifests/":
            return self.manifest(mode, name, layout, ref)
        return self.blob(mode, name, layout, ref)

    def token(self):
        q = self.path.split("?", 1)[1] if "?" in self.path else ""
        params = dict(p.split("=", 1) for p in q.split("&") if "=" in p)
        from urllib.parse import unquote
        scope = unquote(params.get("scope", ""))
        mode = scope.split(":", 2)[1].split("/", 1)[0] if scope.count(":") >= 2 else ""
        if mode == "token-garbage":
            return self.send(200, b"<html>\x00\x1b[31mnot json", ctype="text/html")
        if mode == "token-empty":
            return self.send(200, b'{"token": ""}')
        if mode == "token-badchars":
            return self.send(200, json.dumps({"token": "abc\r\nX-Injected: 1"}).encode())
        if mode == "token-refuse":
            return self.send(401, b'{"details":"nope"}')
        if ARGS.user:
            want = "Basic " + base64.b64encode(ARGS.user.encode()).decode()
            if self.headers.get("Authorization", "") != want:
                return self.send(401, b'{"details":"bad credentials"}')
        self.send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode())

    def manifest(self, mode, name, layout, ref):
        if mode == "silent":
            time.sleep(120)  # read the request, never answer
            self.close_connection = True
            return
        if mode == "http500":
            msg = "database on fire\nsecond line \x1b[31mred\x1b[0m " + "x" * 500
            return self.error(500, "UNKNOWN", msg)
        if mode == "self-index" or mode.startswith("nested-"):
            store = self.server.generated
            if ref in store:
                data, mt = store[ref]
                return self.send(200, data, ctype=mt)
            if mode == "self-index":
                if not ref.startswith("sha256:"):
                    got = layout.manifest(ref)
                    if got is None:
                        return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                    data, mt, digest = got
                    idx = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
                        {"mediaType": MT_OCI_MANIFEST, "digest": digest, "size": len(data),
                         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
                    self.server.self_index = idx
                # whatever is asked for, the answer is the index again
                return self.send(200, self.server.self_index, ctype=MT_OCI_INDEX)
            if ref.startswith("sha256:"):
                got = layout.manifest(ref)  # the bottom of the chain: the real manifest
                if got is None:
                    return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                return self.send(200, got[0], ctype=got[1])
            depth = int(mode.split("-", 1)[1])
            data = nested_index(layout, ref, depth, store)
            return self.send(200, data, ctype=MT_OCI_INDEX)
        got = layout.manifest(ref)
        if got is None:
            return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        data, mt, digest = got
        if mode == "manifest-digest" and ref.startswith("sha256:"):
            data = data + b"\n"  # still valid JSON, different digest
        elif mode == "big-manifest":
            data = data.rstrip(b"}") + b"," + b'"pad":"' + b"A" * (5 * 1024 * 1024) + b'"}'
        elif mode == "bad-mediatype":
            j = json.loads(data)
            j["mediaType"] = mt = "application/vnd.evil.manifest.v9+json"
            data = json.dumps(j).encode()
        elif mode == "evil-mediatype":
            # terminal escapes (C0 and C1) and a bidi override in a layer's mediaType
            j = json.loads(data)
            for layer in j.get("layers", []):
                layer["mediaType"] = "application/\u001b]0;pwned\u0007\u009b31m\u202eevil"
            data = json.dumps(j).encode()
        elif mode == "evil-ctype":
            mt = "application/x\x1b[2J\x1b[31mevil"
        elif mode == "evil-json":
            data = b'{"schemaVersion": 2, "layers": \x1b[31m }'
        elif mode == "endless":
            j = json.loads(data)
            j["layers"][0]["size"] = 1 << 40
            data = json.dumps(j).encode()
        elif mode == "layer-mediatype":
            j = json.loads(data)
            for layer in j.get("layers", []):
                layer["mediaType"] = "application/vnd.evil.layer.v1.tar+rar"
            data = json.dumps(j).encode()
        elif mode == "bad-json":
            data = b'{"schemaVersion": 2, "layers": [ {"digest": '
        self.send(200, data, ctype=mt, headers={"Docker-Content-Digest": digest})

    def blob(self, mode, name, layout, digest):
        data = layout.blob(digest)
        if data is None:
            return self.error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        is_config = digest in layout.config_digests()
        if mode == "config-bytes" and is_config:
            data = data.replace(b"linux", b"LINUX", 1)
        elif mode == "layer-bytes" and not is_config:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        elif mode in ("redirect", "redirect-same") and not is_config:
            base = ARGS.redirect_base if mode == "redirect" else ""
            loc = "%s/redirected/%s/%s" % (base, name, digest)
            return self.send(307, b"", headers={"Location": loc})
        elif mode == "cl-short" and not is_config:
            # promise everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        elif mode == "cl-long" and not is_config:
            # a Content-Length shorter than the blob: the client sees a short body
            return self.send(200, data, ctype="application/octet-stream", length=max(1, len(data) - 100))
        elif mode == "cl-over" and not is_config:
            # more bytes than the manifest declared, with an honest Content-Length
            pad = data + b"\0" * (1024 * 1024)
            return self.send(200, pad, ctype="application/octet-stream")
        elif mode == "endless" and not is_config:
            # a blob the manifest says is 1 TiB: zeros until the client
            # hangs up (capped at 256 MiB so a broken client cannot fill the disk)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            chunk = bytes(1 << 20)
            try:
                for _ in range(256):
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
            return
        elif mode == "bad-and-slow" and not is_config and layout.layer_index(digest) == 1:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        elif mode in ("drip", "bad-and-slow") and not is_config:
            # slow-loris: a byte every 0.3 s, never silent long enough to look stalled
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(400):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
            self.close_connection = True
            return
        elif mode == "stall" and not is_config:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            time.sleep(120)
            self.close_connection = True
            return
        self.send(200, data, ctype="application/octet-stream")

    def redirected(self, path):
        parts = path.split("/")
        name, digest = "/".join(parts[2:-1]), parts[-1]
        if ".." in name:
            return self.error(404, "NOT_FOUND", "no")
        data = Layout(os.path.join(ARGS.layouts, name)).blob(digest)
        if data is None:
            return self.error(404, "BLOB_UNKNOWN", "blob unknown")
        self.send(200, data, ctype="application/octet-stream")


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    generated = {}
    self_index = b""


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--layouts", required=True)
    p.add_argument("--auth", choices=("none", "bearer", "basic"), default="bearer")
    p.add_argument("--user", help="USER:PASS the token endpoint (or basic auth) requires")
    p.add_argument("--redirect-base", default="")
    p.add_argument("--log")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    ARGS = p.parse_args()
    srv = Server((ARGS.addr, ARGS.port), Handler)
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening on %s:%d" % (ARGS.addr, ARGS.port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
