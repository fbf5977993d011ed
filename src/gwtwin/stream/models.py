"""The model a running ``gwtwin stream`` uses, and how it follows a registry alias.

The service is started with a model: a :class:`~gwtwin.models.TwinModel` in memory, a fixed
MLflow URI (``models:/NAME/3``, ``runs:/...``, a local model directory) or an alias of a
registered model (``models:/NAME@production``).  Only an alias is followed: a
:class:`ModelFollower` resolves it at start (:meth:`~ModelFollower.load`, blocking, loading
``models:/NAME/VERSION`` so that what runs is exactly the version the registry named), then
:meth:`~ModelFollower.poll`, called by the service once per increment, re-resolves it in a daemon
thread at most every ``poll_interval`` seconds.  When the alias names another version, that
version is loaded in the same thread and handed over once by :meth:`~ModelFollower.take`; the
service checks it with :func:`check_compatible` against the model running and the stream's
channels, and swaps at an increment boundary (:meth:`~ModelFollower.adopt`) or keeps the old
model (:meth:`~ModelFollower.refuse`, remembered so that version is not loaded again).  Nothing
the registry does (unreachable, alias removed, version deleted, unreadable artifact) raises out
of :meth:`~ModelFollower.poll`: it is recorded as an ``"error"`` event and the old model keeps
running.

Every step is listed in :attr:`ModelFollower.events` as ``{"time", "event", "version",
"detail"}`` with ``event`` one of ``"resolved"``, ``"loaded"``, ``"adopted"``, ``"refused"``,
``"error"`` (``time``: Unix seconds).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gwtwin.errors import GwtwinError
from gwtwin.models.twin import TwinModel

#: events kept in :attr:`ModelFollower.events` (the oldest are dropped beyond this)
MAX_EVENTS = 1000

ACCEPTED_FORMS = (
    "models:/NAME@ALIAS (followed), models:/NAME/VERSION (fixed), or any other MLflow model "
    "URI such as runs:/RUN_ID/model or a local model directory (fixed)"
)

_NAME = r"[^/@\s]+"
_ALIAS_URI = re.compile(rf"models:/(?P<name>{_NAME})@(?P<alias>[\w-]+)")
_VERSION_URI = re.compile(rf"models:/(?P<name>{_NAME})/(?P<version>[0-9]+)")
_MODEL_ID_URI = re.compile(rf"models:/{_NAME}")  # MLflow 3 logged model: models:/m-<id>


class ModelMismatchError(GwtwinError):
    """A model does not fit the running stream (strain channel, strain rate or witnesses)."""


class ModelRef(NamedTuple):
    """What :func:`parse_model_uri` reads from a model URI."""

    name: str | None
    alias: str | None
    version: str | None


@dataclass(frozen=True)
class LoadedModel:
    """A twin model together with where it came from.

    Attributes
    ----------
    model : TwinModel
    uri : str or None
        The URI it was loaded from (``models:/NAME/VERSION`` for a followed alias); None in memory.
    name, version : str or None
        Registered model name and version, when it came from the registry.
    run_id : str or None
        MLflow run that logged it (from the registry, else the model's metadata).
    loaded_at : float
        When it was loaded, Unix seconds (:func:`time.time`).
    """

    model: TwinModel
    uri: str | None
    name: str | None
    version: str | None
    run_id: str | None
    loaded_at: float

    def label(self) -> str:
        """Short name for logs: ``"gwtwin-witness-td v3"``, the URI, or ``"in-memory model"``."""
        if self.name and self.version:
            return f"{self.name} v{self.version}"
        if self.uri:
            return self.uri
        return "in-memory model"


def parse_model_uri(uri: str) -> ModelRef:
    """Registered model name, alias and version named by a model URI.

    Parameters
    ----------
    uri : str
        ``models:/NAME@ALIAS`` (followed), ``models:/NAME/VERSION`` (fixed), or any other MLflow
        model URI (``runs:/RUN_ID/model``, ``models:/m-<id>`` of a logged model, a local model
        directory), accepted as fixed.

    Returns
    -------
    ModelRef
        ``(name, alias, None)`` for an alias, ``(name, None, version)`` for a version,
        ``(None, None, None)`` for any other URI.

    Raises
    ------
    GwtwinError
        An empty URI, or a ``models:/`` URI of none of these forms (e.g. a stage or ``latest``,
        which move without the registry's aliases), with the accepted forms.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise GwtwinError(f"expected a model URI ({ACCEPTED_FORMS}), found {uri!r}")
    uri = uri.strip()
    if not uri.startswith("models:"):
        return ModelRef(None, None, None)
    if m := _ALIAS_URI.fullmatch(uri):
        return ModelRef(m["name"], m["alias"], None)
    if m := _VERSION_URI.fullmatch(uri):
        return ModelRef(m["name"], None, m["version"])
    if _MODEL_ID_URI.fullmatch(uri):
        return ModelRef(None, None, None)
    raise GwtwinError(
        f"cannot read model URI {uri!r}: expected {ACCEPTED_FORMS} (stages and 'latest' are not "
        "supported: point an alias at the version instead)"
    )


def check_compatible(
    model: TwinModel,
    reference: TwinModel | None = None,
    stream_rates: Mapping[str, float] | None = None,
) -> None:
    """Refuse a model that cannot replace ``reference`` on a stream carrying ``stream_rates``.

    A model fits when its strain channel, strain rate and kind are the reference's, and every
    witness channel it needs is in the stream at the rate it was trained on.  The rest may
    differ: another model sample rate, window or target duration (the swap starts the new
    model's own prediction grid, which is fine), other or fewer witnesses (as long as the stream
    carries them), another conditioning.

    Parameters
    ----------
    model : TwinModel
        The candidate.
    reference : TwinModel, optional
        The model running now; not given: no comparison with it.
    stream_rates : mapping channel -> float, optional
        Channels the stream carries and their native rates (Hz); the strain channel, if listed,
        must be at the model's strain rate.  Not given: witnesses are not checked.

    Raises
    ------
    ModelMismatchError
        Naming every channel that does not fit, with the expected and found rates.
    """
    problems: list[str] = []
    spec = model.spec
    if reference is not None:
        ref = reference.spec
        if spec.strain_channel != ref.strain_channel:
            problems.append(
                f"strain channel: expected {ref.strain_channel} at {ref.strain_rate:g} Hz (the "
                f"running model's), found {spec.strain_channel} at {spec.strain_rate:g} Hz"
            )
        elif float(spec.strain_rate) != float(ref.strain_rate):
            problems.append(
                f"strain channel {spec.strain_channel}: expected {ref.strain_rate:g} Hz (the "
                f"running model's), found {spec.strain_rate:g} Hz"
            )
        if model.kind != reference.kind:
            problems.append(f"kind: expected {reference.kind!r}, found {model.kind!r}")
    if stream_rates is not None:
        carried = ", ".join(f"{c} ({float(r):g} Hz)" for c, r in stream_rates.items()) or "none"
        for name, rate in model.sample_rates.items():
            if name not in stream_rates:
                problems.append(
                    f"witness channel {name} (trained at {rate:g} Hz) is not in the stream, "
                    f"which carries {carried}"
                )
            elif float(stream_rates[name]) != float(rate):
                problems.append(
                    f"witness channel {name}: expected {float(stream_rates[name]):g} Hz (the "
                    f"stream's rate), found {rate:g} Hz (the model's)"
                )
        strain = spec.strain_channel
        if strain in stream_rates and float(stream_rates[strain]) != float(spec.strain_rate):
            problems.append(
                f"strain channel {strain}: expected {float(stream_rates[strain]):g} Hz (the "
                f"stream's rate), found {spec.strain_rate:g} Hz (the model's)"
            )
    if problems:
        raise ModelMismatchError(
            "the model does not fit the running stream: " + "; ".join(problems)
        )


class ModelFollower:
    """The model of a running service, following a registry alias if it was given one.

    Parameters
    ----------
    model : TwinModel or str
        A model in memory or a fixed URI (never followed), or ``models:/NAME@ALIAS`` (followed);
        see :func:`parse_model_uri`.
    tracking_uri : str, optional
        Tracking and registry URI (e.g. ``sqlite:///workdir/mlflow.db``); default MLflow's own.
    poll_interval : float
        Least time between two registry checks, s (of ``clock``).
    clock : callable
        Monotonic seconds, for the poll interval (tests pass a fake one).
    log : callable
        Takes one line of text per event worth telling (a repeated identical error is logged
        once, though every occurrence is in :attr:`events`).

    Notes
    -----
    Loads run in a daemon thread; :meth:`take`, :meth:`adopt` and :meth:`refuse` are meant for
    the service's own thread and take the follower's lock, as the thread does when it hands a
    model over.  Torch's thread settings are left as they are.
    """

    def __init__(
        self,
        model: TwinModel | str,
        *,
        tracking_uri: str | None = None,
        poll_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], object] = print,
    ):
        if poll_interval < 0:
            raise GwtwinError(f"poll_interval must be >= 0 s, found {poll_interval} s")
        if isinstance(model, TwinModel):
            self.model, self.uri = model, None
            self.name = self.alias = self.version = None
        else:
            self.name, self.alias, self.version = parse_model_uri(model)
            self.model, self.uri = None, model.strip()
        self.tracking_uri = tracking_uri
        self.poll_interval = float(poll_interval)
        self.clock = clock
        self.log = log
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._current: LoadedModel | None = None
        self._pending: LoadedModel | None = None
        self._offered: str | None = None  # version taken, not yet adopted or refused
        self._refused: dict[str, str] = {}
        self._last_check: float | None = None
        self._last_error: str | None = None
        self._closed = False
        self._client = None

    # -- views --------------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        """Whether the model follows a registry alias (else it is fixed)."""
        return self.alias is not None

    @property
    def current(self) -> LoadedModel | None:
        """The model adopted last (None before :meth:`load`)."""
        return self._current

    @property
    def refused(self) -> dict[str, str]:
        """Refused versions and why."""
        with self._lock:
            return dict(self._refused)

    def __repr__(self) -> str:
        what = "in-memory model" if self.uri is None else self.uri
        mode = "following" if self.following else "fixed"
        running = self._current.label() if self._current else "not loaded"
        return f"ModelFollower({what}, {mode}, running {running})"

    # -- the service's calls ------------------------------------------------------------------
    def load(self) -> LoadedModel:
        """Load the model now (blocking) and adopt it.

        An alias is resolved to a version first and ``models:/NAME/VERSION`` is loaded, so the
        version recorded is exactly the one running.

        Returns
        -------
        LoadedModel

        Raises
        ------
        GwtwinError
            The registry cannot be reached, the alias or version does not exist, or the
            artifact is not a twin model.
        """
        if self.model is not None:
            loaded = LoadedModel(
                self.model, None, None, None, self.model.metadata.get("run_id"), time.time()
            )
        elif self.alias is not None:
            version, run_id = self._resolve()
            self._event("resolved", version, f"{self.uri} points at version {version}")
            loaded = self._load(self.name, version, run_id)
        elif self.version is not None:
            loaded = self._load(self.name, self.version, self._run_of(self.version))
        else:
            model = _load_twin(self.uri, self.tracking_uri)
            loaded = LoadedModel(model, self.uri, None, None, _run_id(self.uri, model), time.time())
        self._event("loaded", loaded.version, f"loaded {loaded.label()}")
        self.adopt(loaded)
        with self._lock:
            self._last_check = self.clock()
        return loaded

    def poll(self) -> None:
        """Start a registry check in the background if one is due; never blocks or raises.

        Does nothing for a fixed model, after :meth:`close`, while a check is in flight, or
        before ``poll_interval`` has passed since the last check (or :meth:`load`).  The check
        resolves the alias and, if it names a version other than the running one, the one
        waiting in (or just taken from) :meth:`take` and those refused, loads it.  A failure
        is an ``"error"`` event; a version that failed to load is tried again at the next check
        (the failure may have been passing).
        """
        if not self.following or self._closed:
            return
        now = self.clock()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._last_check is not None and now - self._last_check < self.poll_interval:
                return
            self._last_check = now
            self._thread = threading.Thread(
                target=self._check, name=f"gwtwin-follow-{self.name}@{self.alias}", daemon=True
            )
            self._thread.start()

    def take(self) -> LoadedModel | None:
        """A newly loaded version, once (then None until another is loaded).

        The caller checks it (:func:`check_compatible`) and calls :meth:`adopt` or
        :meth:`refuse`.
        """
        with self._lock:
            loaded, self._pending = self._pending, None
            if loaded is not None:
                self._offered = loaded.version
        return loaded

    def adopt(self, loaded: LoadedModel) -> None:
        """Record that the service now runs ``loaded``."""
        with self._lock:
            before, self._current = self._current, loaded
            self._offered = None
        was = f" (was {before.label()})" if before is not None else ""
        self._event("adopted", loaded.version, f"running {loaded.label()}{was}", tell=True)

    def refuse(self, loaded: LoadedModel, reason: str) -> None:
        """Record that the service keeps its model instead of ``loaded``, and why; that version
        is not loaded again."""
        with self._lock:
            if loaded.version is not None:
                self._refused[loaded.version] = reason
            self._offered = None
            running = self._current.label() if self._current else "no model"
        self._event(
            "refused",
            loaded.version,
            f"refused {loaded.label()}, keeping {running}: {reason}",
            tell=True,
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the check in flight (if any) has finished; False if ``timeout`` (s)
        passed first."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def close(self) -> None:
        """Stop following: later polls do nothing, and a check in flight hands nothing over
        (its daemon thread is not waited for)."""
        with self._lock:
            self._closed = True
            self._pending = None

    def __enter__(self) -> ModelFollower:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the background check -----------------------------------------------------------------
    def _check(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # noqa: BLE001 - the thread must not die silently
            self._error(None, f"model check failed: {type(exc).__name__}: {_message(exc)}")

    def _follow(self) -> None:
        try:
            version, run_id = self._resolve()
        except GwtwinError as exc:
            self._error(None, str(exc))
            return
        with self._lock:
            current = self._current.version if self._current is not None else None
            pending = self._pending.version if self._pending is not None else None
            if version == current and pending is not None:
                self._pending = None  # the alias went back before the service took it
            skip = version in (current, pending, self._offered) or version in self._refused
        if version == current and pending is not None:
            self._event(
                "resolved",
                version,
                f"{self.uri} is back on running version {version}; v{pending} dropped",
                tell=True,
            )
        if skip:
            self._last_error = None
            return
        running = f"v{current}" if current is not None else "nothing"
        self._event(
            "resolved",
            version,
            f"{self.uri} now points at version {version} (running {running}); loading it",
            tell=True,
        )
        try:
            loaded = self._load(self.name, version, run_id)
        except GwtwinError as exc:
            self._error(version, str(exc))
            return
        self._last_error = None
        with self._lock:
            if self._closed:
                return
            self._pending = loaded
        self._event("loaded", version, f"loaded {loaded.label()}, ready to swap", tell=True)

    # -- registry -----------------------------------------------------------------------------
    def _registry(self):
        if self._client is None:
            import mlflow

            from gwtwin.train import tracking

            self._client = tracking.client(self.tracking_uri or mlflow.get_tracking_uri())
        return self._client

    def _where(self) -> str:
        return self.tracking_uri or "MLflow's default tracking URI"

    def _resolve(self) -> tuple[str, str | None]:
        """Version (and run) the alias names now."""
        try:
            mv = self._registry().get_model_version_by_alias(self.name, self.alias)
        except Exception as exc:  # noqa: BLE001 - any registry failure is reported by name
            raise GwtwinError(
                f"cannot resolve {self.uri} in the registry at {self._where()}: {_message(exc)}"
            ) from None
        return str(mv.version), mv.run_id

    def _run_of(self, version: str) -> str | None:
        try:
            return self._registry().get_model_version(self.name, version).run_id
        except Exception as exc:  # noqa: BLE001
            raise GwtwinError(
                f"cannot find {self.name} version {version} in the registry at "
                f"{self._where()}: {_message(exc)}"
            ) from None

    def _load(self, name: str, version: str, run_id: str | None) -> LoadedModel:
        uri = f"models:/{name}/{version}"
        model = _load_twin(uri, self.tracking_uri)
        return LoadedModel(model, uri, name, version, run_id or _run_id(uri, model), time.time())

    # -- events -------------------------------------------------------------------------------
    def _error(self, version: str | None, detail: str) -> None:
        repeated = detail == self._last_error
        self._last_error = detail
        running = self._current.label() if self._current is not None else "no model"
        self._event("error", version, f"{detail} (keeping {running})", tell=not repeated)

    def _event(self, event: str, version: str | None, detail: str, *, tell: bool = False):
        record = {"time": time.time(), "event": event, "version": version, "detail": detail}
        with self._lock:
            self.events.append(record)
            if len(self.events) > MAX_EVENTS:
                del self.events[: len(self.events) - MAX_EVENTS]
        if tell:
            self.log(f"model: {detail}")


def _load_twin(uri: str, tracking_uri: str | None) -> TwinModel:
    try:
        return TwinModel.load(uri, tracking_uri=tracking_uri)
    except GwtwinError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken artifact fails in many ways
        raise GwtwinError(f"cannot load model {uri!r}: {_message(exc)}") from None


def _run_id(uri: str, model: TwinModel) -> str | None:
    if uri.startswith("runs:/"):
        return uri[len("runs:/") :].split("/", 1)[0] or None
    return model.metadata.get("run_id")


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:500]
