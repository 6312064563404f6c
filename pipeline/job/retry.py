"""Which failures may be transient (retried by the next run) and which are final (content failures).

A transient failure is never committed as done: its shard stays pending, the errors row says
``retryable = true``, and the next run of the job does the shard again. Content failures
(corrupt, truncated, undecodable, unsupported input) are final until the input changes.
"""
from __future__ import annotations

import errno
import re

#: Exception class names (anywhere in the exception's MRO or cause chain) that mean "try again later".
TRANSIENT_TYPES = frozenset({
    "FileNotFoundError", "PermissionError", "TimeoutError", "ConnectionError", "ConnectionResetError",
    "ConnectionAbortedError", "ConnectionRefusedError", "BrokenPipeError",
    "ClientError", "NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
    "EndpointConnectionError", "ReadTimeoutError", "ConnectTimeoutError", "ResponseStreamingError",
    "ServerDisconnectedError", "ClientConnectorError", "ClientOSError", "ClientPayloadError",
    "IncompleteReadError", "RayActorError", "ActorDiedError", "WorkerCrashedError", "NodeDiedError",
    "ObjectLostError", "OwnerDiedError", "CommitFailedError", "TransientStorageError",
})
#: OS error numbers of transient conditions (disk full counts: space may be freed before the re-run).
TRANSIENT_ERRNOS = frozenset({errno.ENOENT, errno.EACCES, errno.EPERM, errno.ETIMEDOUT, errno.ECONNRESET,
                              errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ENOSPC, errno.EIO,
                              errno.EAGAIN, errno.EDQUOT, errno.EROFS})
_TRANSIENT_TEXT = re.compile(
    r"SlowDown|Throttl|RequestTimeout|ServiceUnavailable|InternalError|503|500 |502|504|"
    r"ExpiredToken|TokenRefreshRequired|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|"
    r"NoSuchBucket|Connection reset|timed out|Temporary failure", re.IGNORECASE)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "cause", None)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) may go away on a later try: missing
    files or buckets, refused or expired credentials, throttling and 5xx answers, connection
    resets, timeouts, disk full, lost Ray workers. False for content failures (ValueError and
    friends raised by decoders, corrupt files)."""
    for e in _chain(exc):
        names = {c.__name__ for c in type(e).__mro__}
        if names & TRANSIENT_TYPES:
            return True
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
            return True
        if type(e).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs") and \
                _TRANSIENT_TEXT.search(str(e)):
            return True
    return False
