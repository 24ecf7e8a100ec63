"""The typed error taxonomy. Each backend converts its client's exceptions in exactly one place;
the CLI turns any `AutoevolError` into a one-line message and an exit code.

Messages must never contain secrets: backends build them from status codes and server text only.
"""

from __future__ import annotations


class AutoevolError(Exception):
    """Base of every error autoevol raises on purpose."""

    exit_code = 1


class ConfigError(AutoevolError):
    """A setting, model spec or preset is wrong."""

    exit_code = 2


class CacheError(ConfigError):
    """The request cache file in AUTOEVOL_HOME is not autoevol's, or is damaged."""


class StorageError(AutoevolError):
    """A file could not be written (disk full, permissions, a directory in the way)."""

    exit_code = 1


class DataError(AutoevolError):
    """Bad input data; names the file, line and field."""

    exit_code = 3

    def __init__(self, message: str, *, path: str = "", line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.detail = path, line, field, message
        where = path
        if line is not None:
            where += f":{line}"
        if field:
            where += f" field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)


class MethodError(AutoevolError):
    """An evolving method is unusable (no input slot, no final marker, unreadable file)."""

    exit_code = 2


class ResumeMismatchError(AutoevolError):
    """A run directory was made with a different configuration."""

    exit_code = 4


class RunLockedError(AutoevolError):
    """Another live process holds the run directory."""

    exit_code = 4


class BudgetExhausted(AutoevolError):
    """A --max-calls / --max-tokens budget ran out; the run stopped in a resumable state."""

    exit_code = 5


class HubPushError(AutoevolError):
    """The Hub refused a push or could not be reached; the run itself is finished and can be pushed again."""

    exit_code = 8


class BackendError(AutoevolError):
    """Anything that went wrong talking to a model."""

    exit_code = 6
    retryable = False
    #: Attempts made before giving up, when an endpoint gave up (set by `llm.endpoint`); None for a
    #: failure of the first and only try.
    attempts: int | None = None


class TransportError(BackendError):
    """Connection refused/reset, malformed response body."""

    retryable = True


class MalformedReplyError(TransportError):
    """A complete HTTP 200 whose body is no usable chat completion: not JSON, not UTF-8, the wrong
    shape, or larger than the response-size cap.

    A proxy hiccup can cause one, so the endpoint asks once more (`RetryPolicy.malformed_retries`);
    a model at T = 0 that produces invalid UTF-8 produces it every time, so after that the item fails
    like a rejected request (`REQUEST_ERRORS`) instead of being paid again on every rerun.
    """


class RateLimitError(BackendError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(BackendError):
    """5xx from the server."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(BackendError):
    """A request took longer than its per-request deadline."""

    retryable = True


class TooManyErrors(BackendError):
    """The run's error budget ran out: consecutive rows failed on model errors. Resumable."""

    exit_code = 7


class AuthError(BackendError):
    """401/403: retrying cannot help."""


class StalledServerError(TooManyErrors):
    """The server asked to wait longer than the run is willing to (a Retry-After above the cap), or
    accepts connections and answers nothing. Resumable like `TooManyErrors` (exit 7; the run is marked
    stopped), and systemic: a row that meets it stops the run instead of failing alone."""


class ModelNotFoundError(BackendError):
    """404 for the model or the endpoint."""


class ContextWindowError(BackendError):
    """The prompt does not fit the model's context."""


class BadRequestError(BackendError):
    """Any other 4xx the server rejects outright."""


#: The request itself is the problem (too long, malformed): asking again gives the same answer, so
#: the item fails and the run goes on.
REQUEST_ERRORS = (ContextWindowError, BadRequestError, MalformedReplyError)


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable
