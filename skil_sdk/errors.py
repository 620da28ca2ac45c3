"""The one exception hierarchy of skil-sdk.

Every error a user can cause is a :class:`SkilError`. Its message is one sentence
that says what is wrong and what to do; the CLI prints it and exits with code 1
(the server answers ``{"error": {"code": ..., "message": ...}}``).
"""

from __future__ import annotations


class SkilError(Exception):
    """Base class of every user-facing skil-sdk error.

    ``code`` is a short machine-readable identifier (used in JSON output and by the
    server); ``http_status`` is the status the server answers with.
    """

    code = "error"
    http_status = 400
    #: False for a failure that resuming the job would meet again (its input changed, its
    #: rows do not add up): its message does not point at ``skil-sdk jobs resume``.
    resumable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def with_note(self, note: str) -> SkilError:
        """Add ``note`` (a sentence on what a failed job kept) to the message; return self."""
        self.message += note
        self.args = (self.message,)
        return self

    def to_dict(self) -> dict[str, str]:
        """The error as the JSON shape shared by the CLI and the server."""
        return {"code": self.code, "message": self.message}


class InvalidValueError(SkilError):
    """A value that is well-formed but wrong (a bad name, a bad master URL...)."""

    code = "invalid_value"


class NotFoundError(SkilError):
    """Something named by the user does not exist (model, plugin, provider, job)."""

    code = "not_found"
    http_status = 404


class ConflictError(SkilError):
    """The request conflicts with stored state (an existing path, an immutable version)."""

    code = "conflict"
    http_status = 409


class PluginError(SkilError):
    """A plugin could not be loaded or registers something invalid."""

    code = "plugin_error"


class ProviderError(SkilError):
    """A provider's own code failed (in ``data()`` on the driver or a reader on an executor)."""

    code = "provider_error"


class BuildError(SkilError):
    """A wheel or bundle could not be built."""

    code = "build_failed"


class ModelError(SkilError):
    """A model file is not a usable ONNX model, or inputs do not fit it.

    ``stage`` says where rows failed, for the quarantine (``OUTPUT/_errors/``): ``read``
    (a provider's reader), ``shape`` (rows that do not fit the model's input shape),
    ``cast`` (values that are not of the input's type) or ``model`` (onnxruntime).
    """

    code = "invalid_model"

    def __init__(self, message: str, stage: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage


class BadRowsError(ModelError):
    """More rows could not be fed to the model than the job's ``--max-bad-rows`` allows."""

    code = "too_many_bad_rows"


class IntegrityError(SkilError):
    """Stored bytes do not match their recorded sha256."""

    code = "integrity_error"
    http_status = 500


class AuthError(SkilError):
    """Missing or wrong credentials."""

    code = "unauthorized"
    http_status = 401


class ForbiddenError(SkilError):
    """Valid credentials that do not grant this request."""

    code = "forbidden"
    http_status = 403


class TooLargeError(SkilError):
    """A request body or upload beyond the configured limit."""

    code = "too_large"
    http_status = 413


class SparkError(SkilError):
    """Spark could not be started or the job failed on the cluster."""

    code = "spark_error"


class JobError(SkilError):
    """A batch-inference job failed; the message carries the cause."""

    code = "job_failed"


class HomeError(SkilError):
    """SKIL_HOME cannot be used (not writable, or written by an incompatible version)."""

    code = "home_error"
