"""HTTP with the standard library: JSON GETs and resumable file downloads with retries.

Network failures (refused or dropped connections, timeouts, HTTP 408/429/5xx) are retried with
exponential backoff; other HTTP errors fail at once, and so does a host that cannot be reached
at all (no network: :func:`medimeta.fetch.network.require_network`, before the first
request). A download appends to its ``.part`` file with an HTTP Range request, so an
interrupted transfer (even a killed process) resumes where it stopped.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medimeta.errors import ChecksumMismatchError, DownloadDeadlineError, DownloadError
from medimeta.fetch.files import file_problem
from medimeta.fetch.network import require_network
from medimeta.fetch.options import FetchOptions
from medimeta.fetch.progress import NullProgress, ProgressReporter

logger = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
RETRY_STATUS = frozenset({408, 425, 429})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

#: Called with the seconds to wait before a retry; tests replace it to run fast.
Sleeper = Callable[[float], None]


class _Retryable(Exception):
    """An attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, gained: int = 0, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.gained = gained
        self.retry_after = retry_after


class _Fatal(Exception):
    """An attempt failed in a way that retrying cannot fix (404, 403, ...)."""


class _Expired(Exception):
    """The overall deadline passed during an attempt."""


class _Clock:
    """The overall deadline of one transfer (``options.deadline`` seconds from its start)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def timeout(self, per_request: float) -> float:
        """The socket timeout of the next request: never beyond the deadline."""
        left = self.left()
        return per_request if left is None else max(0.05, min(per_request, left))


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _open(
    url: str, options: FetchOptions, headers: dict[str, str], timeout: float | None = None
) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": options.user_agent, **headers})
    try:
        response = urllib.request.urlopen(request, timeout=timeout or options.timeout)
    except urllib.error.HTTPError as err:
        err.close()
        reason = f"HTTP {err.code} {err.reason}"
        if err.code in RETRY_STATUS or err.code >= 500:
            raise _Retryable(reason, retry_after=_retry_after(err)) from err
        raise _Fatal(reason) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        why = getattr(err, "reason", None) or err
        raise _Retryable(f"{type(err).__name__}: {why}") from err
    if not isinstance(response, http.client.HTTPResponse):
        raise _Fatal(f"unsupported URL scheme in {url} (use http:// or https://)")
    return response


def _wait(
    failures: int,
    options: FetchOptions,
    retry_after: float | None,
    sleep: Sleeper,
    clock: _Clock | None = None,
) -> None:
    delay = min(options.max_backoff, options.backoff * 2 ** (failures - 1))
    if retry_after is not None:
        delay = min(options.max_backoff, max(delay, retry_after))
    left = clock.left() if clock is not None else None
    sleep(delay if left is None else max(0.0, min(delay, left)))


def fetch_json(url: str, options: FetchOptions, *, sleep: Sleeper = time.sleep) -> Any:
    """GET ``url`` and parse it as JSON, retrying network failures (none at all when the host
    cannot be reached: NetworkUnavailableError within seconds)."""
    require_network(url)
    failures = 0
    while True:
        try:
            with _open(url, options, {"Accept": "application/json"}) as response:
                try:
                    body = response.read()
                except (OSError, http.client.HTTPException) as err:
                    raise _Retryable(f"{type(err).__name__}: {err}") from err
        except _Retryable as err:
            failures += 1
            if failures > options.retries:
                raise DownloadError(
                    f"could not fetch {url} after {failures} attempts: {err}. Check the network "
                    "connection, or use a mirror (--mirror URL / MEDIMETA_MIRROR) or --offline."
                ) from err
            logger.info("retrying %s after: %s", url, err)
            _wait(failures, options, err.retry_after, sleep)
            continue
        except _Fatal as err:
            raise DownloadError(f"could not fetch {url}: {err}") from err
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError as err:
            raise DownloadError(f"{url} did not return valid JSON: {err}") from err


def _content_range_start(response: http.client.HTTPResponse) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _fetch_once(
    url: str,
    part: Path,
    have: int,
    options: FetchOptions,
    progress: ProgressReporter,
    clock: _Clock,
) -> int:
    """One request: append bytes from ``have`` on to ``part``; returns the bytes written."""
    headers = {"Range": f"bytes={have}-"} if have > 0 else {}
    try:
        response = _open(url, options, headers, clock.timeout(options.timeout))
    except _Fatal as err:
        if have > 0 and "HTTP 416" in str(err):
            # The server has nothing after `have`: the part file is already complete or longer
            # than the remote file; the size/checksum check below decides.
            return 0
        raise
    with response:
        mode = "ab"
        if response.status == 206:
            start = _content_range_start(response)
            if start != have:
                raise _Retryable(f"server answered range {start}- to a request for {have}-")
        elif response.status == 200:
            if have > 0:
                logger.info("%s ignores HTTP Range; restarting from byte 0", url)
                progress.reset(0)
            mode = "wb"
        else:
            raise _Fatal(f"unexpected HTTP status {response.status}")
        gained = 0
        # buffering=0: every chunk reaches the OS at once, so a killed process leaves all the
        # bytes it received in the part file and the next run resumes from there.
        with open(part, mode, buffering=0) as fh:
            while True:
                try:
                    chunk = response.read1(READ_CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise _Retryable(f"{type(err).__name__}: {err}", gained) from err
                if not chunk:
                    break
                fh.write(chunk)
                gained += len(chunk)
                progress.advance(len(chunk))
                if clock.expired():
                    raise _Expired()
        if response.length:
            # http.client returns b"" at an early EOF instead of raising; `length` still holds
            # the bytes that never came.
            raise _Retryable(
                f"connection closed after {gained} bytes, {response.length} bytes missing", gained
            )
        return gained


def _deadline_error(part: Path, size: int | None, clock: _Clock) -> DownloadDeadlineError:
    have = part.stat().st_size if part.exists() else 0
    of = f" of {size:,}" if size else ""
    return DownloadDeadlineError(
        f"deadline of {clock.seconds:g} s reached: {have:,}{of} bytes downloaded so far, kept in "
        f"{part}; nothing was installed. Run the same command again to resume from there (with "
        "a larger --deadline, or none)"
    )


def download_file(
    url: str,
    part: Path,
    *,
    size: int | None,
    md5: str | None,
    options: FetchOptions,
    progress: ProgressReporter | None = None,
    label: str = "",
    sleep: Sleeper = time.sleep,
    sha256: str | None = None,
) -> None:
    """Download ``url`` into ``part`` (resuming what is there) and check its size and MD5
    (and ``sha256``, a full hex digest or a prefix of one, when given).

    On return ``part`` holds exactly the expected bytes. Raises DownloadError when the retries
    are spent or the server refuses, DownloadDeadlineError past ``options.deadline`` (the part
    file is kept for resuming), ChecksumMismatchError when the complete file is wrong (the bad
    file is deleted so that the next run starts afresh), NetworkUnavailableError at once when
    the host cannot be reached (:mod:`medimeta.fetch.network`).
    """
    clock = _Clock(options.deadline)
    progress = progress or NullProgress()
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    pieces = 0
    restarted = False
    have = part.stat().st_size if part.exists() else 0
    if size is None or have < size:
        require_network(url)
    if have:
        pieces += 1
        logger.info("resuming %s at byte %d", part.name, have)
    progress.start(label or part.name, size, have)
    try:
        while True:
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have > size:
                part.unlink()
                have = 0
                progress.reset(0)
            if size is None or have < size:
                if clock.expired():
                    raise _deadline_error(part, size, clock)
                try:
                    if _fetch_once(url, part, have, options, progress, clock):
                        pieces += 1
                except _Expired:
                    raise _deadline_error(part, size, clock) from None
                except _Retryable as err:
                    if clock.expired():
                        raise _deadline_error(part, size, clock) from err
                    pieces += 1 if err.gained else 0
                    failures = 0 if err.gained else failures + 1
                    if failures > options.retries:
                        raise DownloadError(
                            f"{err} (gave up after {failures} attempts without progress)"
                        ) from err
                    logger.info("retrying %s after: %s", url, err)
                    _wait(max(failures, 1), options, err.retry_after, sleep, clock)
                    continue
                except _Fatal as err:
                    raise DownloadError(str(err)) from err
            problem = file_problem(part, size=size, md5=md5, sha256=sha256)
            if problem is None:
                return
            part.unlink()
            if pieces > 1 and not restarted:
                # A resumed file can mix bytes of two different remote versions; one clean
                # download from byte 0 tells a bad splice from a bad remote file.
                logger.info("%s: %s after resuming; downloading again from byte 0", url, problem)
                restarted = True
                pieces = 0
                progress.reset(0)
                continue
            raise ChecksumMismatchError(f"{problem} for {url} (the bad download was deleted)")
    finally:
        progress.close()
