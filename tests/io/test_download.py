"""The download cache, exercised against a local HTTP server on 127.0.0.1.

Besides the ordinary cases, the cache folder is treated as shared with someone hostile: planted
symlinks, corrupt cached files, concurrent fetches, and a server that lies about sizes.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tinygrad_edu.io.download import KNOWN, DownloadError, RemoteFile, fetch

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
MD5 = hashlib.md5(PAYLOAD).hexdigest()
REQUESTS: collections.Counter = collections.Counter()
_LOCK = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with _LOCK:
            REQUESTS[self.path] += 1
            count = REQUESTS[self.path]
        if self.path in ("/weights.bin", "/counted.bin"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/truncated.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])  # then the connection closes
        elif self.path == "/bad-length.bin":
            self.send_response(200)
            self.send_header("Content-Length", "abc")
            self.end_headers()
            self.wfile.write(PAYLOAD[:10])
        elif self.path == "/slow.bin" or self.path == "/every-other-corrupt.bin":
            # streamed in pieces so that concurrent fetches overlap; odd requests of the second
            # path get different bytes of the same length (a mirror serving a bad copy)
            body = PAYLOAD
            if self.path == "/every-other-corrupt.bin" and count % 2:
                body = bytes(reversed(PAYLOAD))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for start in range(0, len(body), 1 << 16):
                self.wfile.write(body[start : start + (1 << 16)])
                time.sleep(0.002)
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
    remote = _remote(f"{server}/weights.bin", md5=MD5)
    path = fetch(remote, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    # a verified cached file is returned without asking the network
    assert fetch(_remote("http://127.0.0.1:9/never-asked", md5=MD5), tmp_path, progress=False) == (
        path
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


# ----------------------------------------------------------------------------- hostile cache
def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"not the weights")
    before = REQUESTS["/counted.bin"]
    path = fetch(_remote(f"{server}/counted.bin", md5=MD5), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and REQUESTS["/counted.bin"] == before + 1


def test_symlinked_cached_file_is_replaced_and_its_target_untouched(server, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "weights.bin").symlink_to(victim)
    path = fetch(_remote(f"{server}/weights.bin", md5=MD5), cache, progress=False)
    assert not path.is_symlink() and path.read_bytes() == PAYLOAD
    assert victim.read_bytes() == b"precious"


def test_symlink_to_a_good_copy_is_not_trusted(server, tmp_path):
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(PAYLOAD)  # right bytes, but the cache must hold a file it owns
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "weights.bin").symlink_to(elsewhere)
    before = REQUESTS["/counted.bin"]
    path = fetch(_remote(f"{server}/counted.bin", md5=MD5), cache, progress=False)
    assert not path.is_symlink() and REQUESTS["/counted.bin"] == before + 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_in_the_cache_is_replaced_without_blocking(server, tmp_path):
    os.mkfifo(tmp_path / "weights.bin")  # opening it for reading would wait for a writer
    done = []
    worker = threading.Thread(
        target=lambda: done.append(
            fetch(_remote(f"{server}/weights.bin", md5=MD5), tmp_path, progress=False)
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=30)
    assert done, "fetch blocked on the FIFO in the cache"
    assert done[0].is_file() and done[0].read_bytes() == PAYLOAD


def test_a_directory_in_the_cache_is_named(server, tmp_path):
    (tmp_path / "weights.bin").mkdir()
    with pytest.raises(DownloadError, match=r"weights\.bin is a directory, where the cache keeps"):
        fetch(_remote(f"{server}/weights.bin", md5=MD5), tmp_path, progress=False)


def test_planted_symlinks_at_temporary_names_are_never_written_through(server, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in (".weights.bin.partial", ".weights.bin.tmp", "weights.bin.partial"):
        (cache / name).symlink_to(victim)
    fetch(_remote(f"{server}/weights.bin", md5=MD5), cache, progress=False)
    assert victim.read_bytes() == b"precious"
    assert (cache / "weights.bin").read_bytes() == PAYLOAD


def test_malformed_content_length_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match=r"Content-Length 'abc'"):
        fetch(_remote(f"{server}/bad-length.bin", md5=MD5), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_new_cache_folder_is_private(server, tmp_path):
    cache = tmp_path / "new" / "cache"
    fetch(_remote(f"{server}/weights.bin", md5=MD5), cache, progress=False)
    assert cache.stat().st_mode & 0o777 == 0o700


def test_concurrent_fetches_of_one_file_all_get_the_verified_file(server, tmp_path):
    remote = _remote(f"{server}/slow.bin", md5=MD5)
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: fetch(remote, tmp_path, progress=False), range(4)))
    assert {str(p) for p in paths} == {str(tmp_path / "weights.bin")}
    assert hashlib.md5(paths[0].read_bytes()).hexdigest() == MD5
    assert os.listdir(tmp_path) == ["weights.bin"], "a temporary file was left behind"


def test_a_bad_concurrent_download_never_lands_in_the_cache(server, tmp_path):
    remote = _remote(f"{server}/every-other-corrupt.bin", md5=MD5)

    def attempt(_):
        try:
            return fetch(remote, tmp_path, progress=False)
        except DownloadError as err:
            assert "published md5" in str(err)
            return None

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert any(r is not None for r in results)
    assert hashlib.md5((tmp_path / "weights.bin").read_bytes()).hexdigest() == MD5
    assert os.listdir(tmp_path) == ["weights.bin"]
