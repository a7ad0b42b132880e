"""The one error family of sagelocal.

Every error a user can cause is a :class:`SagelocalError` subclass whose message names the thing
(hyperparameter, channel, file, record), what is allowed and what was received. The container turns
them into SageMaker's failure file; the server turns them into 4xx answers.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class SagelocalError(Exception):
    """Base class of every error sagelocal raises on purpose."""

    #: HTTP status the server answers with when this error escapes a request.
    http_status = 400


class HyperparameterError(SagelocalError, ValueError):
    """One or more hyperparameters are invalid; all problems are reported together.

    Attributes
    ----------
    algorithm : str
        The algorithm's SageMaker name.
    problems : list of (str, str)
        ``(parameter name, message)`` pairs, one per problem.
    """

    def __init__(self, algorithm: str, problems: list[tuple[str, str]]):
        self.algorithm = algorithm
        self.problems = list(problems)
        lines = [f"{algorithm}: {message}" for _, message in self.problems]
        header = "" if len(lines) == 1 else f"{len(lines)} invalid hyperparameters:\n  "
        super().__init__(header + "\n  ".join(lines))

    @property
    def names(self) -> list[str]:
        """The names of the offending hyperparameters, in the order reported."""
        return [name for name, _ in self.problems]


class DataFormatError(SagelocalError, ValueError):
    """Input data cannot be read: names the channel, file and record where it can."""

    def __init__(self, message: str, *, channel: str | None = None, source: str | None = None,
                 record: int | None = None):
        self.channel, self.source, self.record = channel, source, record
        where = []
        if channel is not None:
            where.append(f"channel '{channel}'")
        if source is not None:
            where.append(f"file '{source}'")
        if record is not None:
            where.append(f"record {record}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ChannelError(SagelocalError):
    """A training channel is missing, unknown, or configured in a way the algorithm does not accept."""


class ChannelDataError(DataFormatError, ChannelError):
    """A channel that cannot be read at all: missing path, no data files, a FIFO that never appears."""


class UnsupportedContentTypeError(DataFormatError):
    """A content type the algorithm or reader does not handle (HTTP 415)."""

    http_status = 415


class NotFittedError(SagelocalError, _SklearnNotFittedError):
    """Predicting, transforming or saving before ``fit``; also a scikit-learn ``NotFittedError``."""


class ArtifactError(SagelocalError):
    """A model artifact is missing, corrupt, unsafe, of another algorithm or of a newer format."""


class UnknownAlgorithmError(SagelocalError, KeyError):
    """An algorithm name that is not registered; the message lists the ones that are."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsupportedAcceptError(SagelocalError):
    """An ``Accept`` type the algorithm cannot answer in (HTTP 406 when serving)."""

    http_status = 406


class MissingDependencyError(SagelocalError, ImportError):
    """An optional backend (xgboost, faiss, gensim, pyarrow, ...) is not installed; the message names the
    pip extra. When serving it is the server's fault, not the request's: HTTP 500."""

    http_status = 500
