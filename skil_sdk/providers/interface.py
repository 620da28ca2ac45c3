"""The keyed data-set provider interface.

A provider turns options into *keyed data*: rows that each carry an ``id`` and the
features a model takes. It is the Python counterpart of SKIL's
``KeyedDataSetProvider``. A complete, working provider package looks like this::

    # my_provider/provider.py
    import skil_sdk
    from skil_sdk import KeyedDataSetProvider, ProviderOption


    class SquaresProvider(KeyedDataSetProvider):
        '''Rows 0..n-1 with one float feature each: the row number squared.'''

        PLUGIN_NAME = "squares"
        OPTIONS = (ProviderOption("n", "how many rows", default="100"),)

        def data(self, spark, **options):
            n = int(options.get("n", 100))
            rows = [(i, [float(i * i)]) for i in range(n)]
            return spark.createDataFrame(rows, "id long, features array<float>")


    @skil_sdk.hookimpl
    def register_providers(register):
        register(SquaresProvider)

    # pyproject.toml
    # [project.entry-points.skil_sdk]
    # squares = "my_provider.provider"

``data(spark, **options)`` returns one of:

* a Spark ``DataFrame`` with an ``id`` column and one column per model input
  (``features`` by default; an array column, flat features are reshaped to the model's
  input shape);
* an RDD of ``(key, numpy.ndarray)`` pairs;
* an :class:`ExecutorSource`: split descriptors that Spark schedules and a reader the
  executors run themselves (the fast path; the data never passes through the driver).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np


#: The value types an option can declare (``ProviderOption.type``).
OPTION_TYPES = ("string", "int", "float", "bool", "choice", "path")


@dataclass(frozen=True)
class ProviderOption:
    """One option a provider accepts (``--provider-option name=value``).

    The SDK enforces what an option declares before the job starts (before Spark):
    an option the provider does not declare is refused, a ``required`` one must be
    given, a missing one takes its ``default``, and the value must be of its ``type``:

    * ``string`` (the default): any text;
    * ``int`` / ``float``: a number, at least ``minimum`` when that is set;
    * ``bool``: ``true`` or ``false`` (also ``1``/``0``, ``yes``/``no``), passed on as
      ``"true"`` or ``"false"``;
    * ``choice``: one of ``choices``;
    * ``path``: a file or directory; a local path (no ``scheme://``, no wildcard) must
      exist on the submitting machine.

    ``data()`` still receives strings. A provider that declares no options takes any.
    """

    name: str
    help: str
    default: str | None = None
    required: bool = False
    type: str = "string"
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(
                f"ProviderOption {self.name!r} has type {self.type!r}; use one of "
                f"{', '.join(OPTION_TYPES)}."
            )
        if self.type == "choice" and not self.choices:
            raise ValueError(f"ProviderOption {self.name!r} is a choice without choices.")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``skil-sdk providers list --json``)."""
        data: dict[str, Any] = {
            "name": self.name,
            "help": self.help,
            "default": self.default,
            "required": self.required,
            "type": self.type,
        }
        if self.choices:
            data["choices"] = list(self.choices)
        if self.minimum is not None:
            data["minimum"] = self.minimum
        return data


class ExecutorSource(abc.ABC):
    """Keyed data the executors read themselves.

    ``splits()`` runs on the driver and returns small, picklable descriptors (a file
    and a row range, say), packed into tasks by :meth:`split_rows` (one task reads
    several small splits one after another). ``read(split,
    batch_size)`` runs on an executor and yields ``(ids, features)`` batches, where
    ``ids`` is a 1-D numpy array (or pyarrow array) and ``features`` a 2-D numpy array of
    one row per id, or a dict of input name to array. It must stream: never hold a
    whole split in memory. Rows it cannot decode it may yield as
    :class:`~skil_sdk.BadRows` (quarantined within the job's ``--max-bad-rows``).

    :meth:`count_hint` and :meth:`split_rows` must be exact when given: a job whose
    rows written and quarantined do not add up to them fails rather than lose rows.
    """

    @abc.abstractmethod
    def splits(self) -> Sequence[Any]:
        """The split descriptors (picklable), computed on the driver."""

    @abc.abstractmethod
    def read(self, split: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
        """Yield ``(ids, features)`` batches of at most ``batch_size`` rows."""

    def id_type(self) -> str:
        """The Spark SQL type of the ids (``bigint``, ``string``...)."""
        return "bigint"

    def count_hint(self) -> int | None:
        """The total number of rows, if cheap to know (None: unknown); exact when given,
        as jobs check their rows against it (and show progress by it)."""
        return None

    def split_rows(self, split: Any) -> int | None:
        """The rows of one split, if cheap to know (None: unknown); exact when given.

        Splits are packed into tasks by these sizes (many small files in one task, as
        Spark packs files); when a split's size is unknown, every split is a task.
        """
        return None

    def fingerprint(self) -> str | None:
        """A digest of the input as it is now (paths, sizes, modification times), or None.

        ``skil-sdk jobs resume`` continues a failed job only when the fingerprint has not
        changed since its first run; a source without one (the default) is not resumable.
        """
        return None

    def labels(self, split: Any, batch_size: int) -> Iterator[tuple[Any, np.ndarray]]:
        """Yield ``(ids, labels)`` batches, for evaluation jobs; optional."""
        from skil_sdk.errors import InvalidValueError

        raise InvalidValueError(
            f"{type(self).__name__} provides no labels; implement its labels() method, or "
            "have the provider return a DataFrame with a label column."
        )

    def has_labels(self, label_column: str) -> bool:
        """Whether evaluation jobs can read labels (``label_column`` is ``--label-column``).

        By default: whether the class implements :meth:`labels`. A source that reads
        labels from a column of its files overrides this and :meth:`read_labelled`.
        """
        return type(self).labels is not ExecutorSource.labels

    def read_labelled(
        self, split: Any, batch_size: int, label_column: str
    ) -> Iterator[tuple[Any, Any, np.ndarray]]:
        """Yield ``(ids, features, labels)`` batches, for evaluation jobs.

        By default :meth:`read` and :meth:`labels` side by side, which must yield the
        same ids in the same order.
        """
        import numpy as np

        from skil_sdk.errors import ProviderError

        for (ids, features), (label_ids, labels) in zip(
            self.read(split, batch_size), self.labels(split, batch_size), strict=True
        ):
            if not np.array_equal(np.asarray(ids), np.asarray(label_ids)):
                raise ProviderError(
                    f"{type(self).__name__}'s labels are not in the order of its rows; "
                    "labels() must yield the ids read() yields."
                )
            yield ids, features, labels


class KeyedDataSetProvider(abc.ABC):
    """Base class of every keyed data-set provider (see the module docstring)."""

    #: The name jobs use to pick this provider (``--provider NAME``).
    PLUGIN_NAME: ClassVar[str] = ""
    #: The options ``data`` understands, listed by ``skil-sdk providers list``.
    OPTIONS: ClassVar[tuple[ProviderOption, ...]] = ()
    #: True when ``data`` returns an :class:`ExecutorSource` without using ``spark`` (it
    #: may be None): such a provider runs on the local engine, without a JVM.
    READS_ON_EXECUTORS: ClassVar[bool] = False

    @abc.abstractmethod
    def data(self, spark: Any, **options: str) -> Any:
        """Return keyed data: a DataFrame, an RDD of ``(key, ndarray)``, or an ExecutorSource."""

    @classmethod
    def describe(cls) -> str:
        """A one-line description: the first line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
