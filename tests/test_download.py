"""The download cache, exercised against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tinygrad_edu.io.download import KNOWN, DownloadError, RemoteFile, fetch

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/weights.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/truncated.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])  # then the connection closes
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _remote(url: str, **hashes) -> RemoteFile:
    return RemoteFile(url=url, filename="weights.bin", **hashes)


def test_download_verifies_md5_and_caches(server, tmp_path):
    remote = _remote(f"{server}/weights.bin", md5=hashlib.md5(PAYLOAD).hexdigest())
    path = fetch(remote, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert (
        fetch(_remote("http://127.0.0.1:9/never-asked", md5="x"), tmp_path, progress=False) == path
    )
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_download_verifies_sha256_prefix(server, tmp_path):
    prefix = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    assert fetch(
        _remote(f"{server}/weights.bin", sha256_prefix=prefix), tmp_path, progress=False
    ).exists()


def test_hash_mismatch_leaves_nothing_behind(server, tmp_path):
    with pytest.raises(DownloadError, match=r"published md5 is 0{32}"):
        fetch(_remote(f"{server}/weights.bin", md5="0" * 32), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing_behind(server, tmp_path):
    with pytest.raises(DownloadError, match=r"stopped after|could not download"):
        fetch(_remote(f"{server}/truncated.bin", md5="0" * 32), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_names_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.bin.*Not Found"):
        fetch(_remote(f"{server}/missing.bin", md5="0" * 32), tmp_path, progress=False)


def test_offline_fails_at_once_with_a_way_out(tmp_path):
    unreachable = _remote("http://127.0.0.1:9/weights.bin", md5="0" * 32)  # nothing listens there
    with pytest.raises(DownloadError) as caught:
        fetch(unreachable, tmp_path, progress=False, timeout=5)
    message = str(caught.value)
    assert "http://127.0.0.1:9/weights.bin" in message and "pass the file's path" in message
    assert list(tmp_path.iterdir()) == []


def test_known_files_carry_their_published_hashes():
    assert KNOWN["keras"].md5 == "6d6bbae143d832006294945121d1f1fc"
    assert KNOWN["torchvision"].sha256_prefix == "397923af"
    assert KNOWN["torchvision"].url.endswith("vgg16-397923af.pth")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from tinygrad_edu.io.download import cache_dir

    monkeypatch.setenv("TINYGRAD_EDU_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
