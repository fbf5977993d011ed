"""MLflow tracking and the model registry.

Default: embedded, no server: runs in ``sqlite:///<workdir>/mlflow.db`` and artifacts under
``<workdir>/mlartifacts``; any other tracking URI (``http://host:5000``, a shared database) is one
config key away.  A trained twin is logged with ``mlflow.pytorch.log_model`` (the network, plus
``twin.json``: channel list, rates, conditioning spec, window geometry, provenance), registered
under a name and given an alias (``candidate``); :func:`promote` moves aliases (e.g. to
``production``) and inference loads ``models:/<name>@<alias>``.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
from pathlib import Path
from typing import Any

from gwtwin.errors import GwtwinError

#: packages pinned in a logged model's requirements (no bare ``torch``, which could pull CUDA)
REQUIREMENTS = ("torch", "numpy", "scipy", "gwpy", "pydantic", "h5py", "mlflow")


def tracking_uri_for(workdir: str | Path, uri: str | None = None) -> str:
    """``uri`` if given, else the embedded ``sqlite:///<workdir>/mlflow.db``."""
    if uri:
        return uri
    return f"sqlite:///{(Path(workdir) / 'mlflow.db').resolve()}"


def artifact_location_for(workdir: str | Path) -> str:
    """``file://`` URI of ``<workdir>/mlartifacts`` (where embedded runs keep artifacts)."""
    return (Path(workdir) / "mlartifacts").resolve().as_uri()


def pip_requirements() -> list[str]:
    """Exact pins of the installed versions of :data:`REQUIREMENTS` (e.g. ``torch==2.13.0``;
    a local build suffix such as ``+cpu`` is dropped so no CUDA wheel is implied)."""
    out = []
    for name in REQUIREMENTS:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        out.append(f"{name}=={version.split('+')[0]}")
    return out


def gwtwin_version() -> str:
    try:
        return importlib.metadata.version("gwtwin")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def client(tracking_uri: str):
    """An ``MlflowClient`` for tracking and registry at ``tracking_uri``."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    """Id of experiment ``name``, created with ``artifact_location`` if it does not exist."""
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(name, artifact_location=artifact_location)


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        out[prefix] = text[:500]  # MLflow's param value limit is generous; keep them readable


def log_params(run_id: str, tracking_uri: str, params: dict[str, Any]) -> None:
    """Log a nested mapping as flat ``a.b.c`` params (values JSON, cut at 500 characters)."""
    from mlflow.entities import Param

    flat: dict[str, str] = {}
    _flat("", params, flat)
    c = client(tracking_uri)
    items = [Param(k, v) for k, v in flat.items()]
    for i in range(0, len(items), 100):
        c.log_batch(run_id, params=items[i : i + 100])


def log_twin(
    twin,
    *,
    run_id: str,
    tracking_uri: str,
    registered_model_name: str | None,
    alias: str | None = "candidate",
) -> dict[str, Any]:
    """Log a :class:`~gwtwin.models.TwinModel` to a run, register it and set ``alias``.

    Returns ``{"model_uri", "version", "registered_model_name", "alias"}`` where ``model_uri`` is
    ``models:/<name>@<alias>`` (or ``models:/<name>/<version>``, or the run's model URI when not
    registered).
    """
    import mlflow
    import mlflow.pytorch

    c = client(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        description = twin.write_description(tmp)
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pytorch.log_model(
                twin.network,
                name="model",
                # pickle, not the traced "pt2" format: windows of any length must keep working
                serialization_format="pickle",
                pip_requirements=pip_requirements(),
                extra_files=[str(description)],
                registered_model_name=registered_model_name,
                metadata={
                    "gwtwin_version": gwtwin_version(),
                    "kind": twin.kind,
                    "channels": twin.channels,
                    "model": twin.metadata.get("model", {}),
                },
            )
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is None:
        latest = c.search_model_versions(f"name='{registered_model_name}'")
        version = max(int(v.version) for v in latest if v.run_id == run_id)
    model_uri = info.model_uri
    if registered_model_name:
        model_uri = f"models:/{registered_model_name}/{version}"
        if alias:
            c.set_registered_model_alias(registered_model_name, alias, str(version))
            model_uri = f"models:/{registered_model_name}@{alias}"
    return {
        "model_uri": model_uri,
        "version": None if version is None else int(version),
        "registered_model_name": registered_model_name,
        "alias": alias if registered_model_name else None,
    }


def list_models(tracking_uri: str, name: str | None = None) -> list[dict[str, Any]]:
    """Registered model versions (newest first per model): name, version, aliases, run id,
    creation time (ms) and the run's ``best_val_*`` metrics."""
    c = client(tracking_uri)
    query = f"name='{name}'" if name else None
    rows = []
    for mv in c.search_model_versions(query):
        reg = c.get_registered_model(mv.name)
        aliases = sorted(a for a, v in (reg.aliases or {}).items() if str(v) == str(mv.version))
        metrics = {}
        if mv.run_id:
            try:
                run = c.get_run(mv.run_id)
                metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("best_")}
            except Exception:  # noqa: BLE001 - a deleted run leaves the version listed
                metrics = {}
        rows.append(
            {
                "name": mv.name,
                "version": int(mv.version),
                "aliases": aliases,
                "run_id": mv.run_id,
                "created_ms": int(mv.creation_timestamp or 0),
                "metrics": metrics,
            }
        )
    rows.sort(key=lambda r: (r["name"], -r["version"]))
    return rows


def promote(name: str, version: int | str, alias: str, tracking_uri: str) -> None:
    """Point ``alias`` of registered model ``name`` at ``version``
    (``MlflowClient.set_registered_model_alias``); names an unknown model or version."""
    from mlflow.exceptions import MlflowException

    c = client(tracking_uri)
    try:
        c.get_model_version(name, str(version))
    except MlflowException:
        known = [r["version"] for r in list_models(tracking_uri, name)] if _exists(c, name) else []
        what = f"versions {known}" if known else "no such registered model"
        raise GwtwinError(
            f"cannot promote {name} version {version} to {alias!r}: not in the registry at "
            f"{tracking_uri} ({what})"
        ) from None
    previous = _alias_version(c, name, alias)
    if previous is not None and previous != str(version):
        history = alias_history(name, alias, tracking_uri) + [int(previous)]
        c.set_registered_model_tag(name, _history_tag(alias), json.dumps(history[-50:]))
    c.set_registered_model_alias(name, alias, str(version))


def _history_tag(alias: str) -> str:
    return f"gwtwin.alias_history.{alias}"


def _alias_version(c, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None."""
    reg = c.get_registered_model(name)
    version = (reg.aliases or {}).get(alias)
    return None if version is None else str(version)


def alias_history(name: str, alias: str, tracking_uri: str) -> list[int]:
    """The versions ``alias`` pointed at before, oldest first (kept by :func:`promote` as the
    registered model's tag ``gwtwin.alias_history.<alias>``)."""
    reg = client(tracking_uri).get_registered_model(name)
    text = (reg.tags or {}).get(_history_tag(alias))
    return [int(v) for v in json.loads(text)] if text else []


def rollback(name: str, alias: str, tracking_uri: str) -> tuple[int, int]:
    """Point ``alias`` back at the version it held before the last :func:`promote`.

    Returns ``(from_version, to_version)``; names the model and alias when no earlier version
    is recorded.
    """
    c = client(tracking_uri)
    if not _exists(c, name):
        raise GwtwinError(f"cannot roll back {name}: no such registered model at {tracking_uri}")
    current = _alias_version(c, name, alias)
    history = alias_history(name, alias, tracking_uri)
    if current is None or not history:
        raise GwtwinError(
            f"cannot roll back {name}@{alias}: "
            + ("the alias is not set" if current is None else "no earlier version is recorded")
            + " (promote records each move of an alias)"
        )
    target = history.pop()
    c.set_registered_model_tag(name, _history_tag(alias), json.dumps(history))
    c.set_registered_model_alias(name, alias, str(target))
    return int(current), target


def _exists(c, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
        return True
    except MlflowException:
        return False
