"""Load cluster definitions from a YAML file into validated cluster settings.

File format::

    clusters:
      - name: prod-a
        bootstrap_servers: b1:9092,b2:9092
        security_protocol: SASL_SSL
        sasl_mechanism: SCRAM-SHA-512
        sasl_username: medic
        sasl_password: ${PROD_A_KAFKA_PASSWORD}
        policy: {mode: approve, dead_broker_grace_s: 600}

Every cluster item is validated by :class:`kafka_medic.settings.ClusterSettings` -- or by a
subclass the caller names, such as the ``KafkaCluster`` block, whose fields are the same -- so the
YAML accepts exactly what the block (and the Prefect UI form) accepts; there is no second field
list to keep in sync.

Why the extra machinery around ``yaml.safe_load``: operators edit this file by hand during
incidents, so every error names the file, the line, the field path and the reason, e.g.
``clusters.yaml:14: clusters[1].policy.dead_broker_grace_s: Input should be greater than or equal
to 0``. Line numbers come from composing the YAML node tree (its marks), which ``safe_load``
throws away. Duplicate keys, which ``safe_load`` silently resolves to the last one, are errors.

Top-level keys starting with ``x-`` are ignored, so shared settings can be written once as a YAML
anchor (``x-tls: &tls {...}``) and merged into clusters with ``<<: *tls``.

``${ENV_VAR}`` in any string value is replaced from the environment at load time (write ``$${``
for a literal ``${``), so secrets need not be stored in the file. A missing variable is an error
naming it. Error messages never include field values, so a secret cannot leak through them.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from kafka_medic.errors import ConfigError
from kafka_medic.settings.cluster import ClusterSettings

_ENV_REF_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{[^}]*\}?")
_TOP_LEVEL_KEYS = ("clusters",)

PathItem = str | int
C = TypeVar("C", bound=ClusterSettings)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a cluster file, with where it is."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    kind: str = "invalid"  # "env" for an unresolved ${VAR}, "syntax" for YAML errors

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ClusterConfigError(ConfigError):
    """A cluster file is invalid; ``issues`` lists every problem found (one per message line)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def format_path(path: tuple[PathItem, ...]) -> str:
    """``("clusters", 1, "policy", "x")`` -> ``clusters[1].policy.x``."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


class _NodeIndex:
    """Maps a data path to the YAML nodes it came from, to report line numbers."""

    def __init__(self) -> None:
        self.value_nodes: dict[tuple[PathItem, ...], yaml.Node] = {}
        self.key_nodes: dict[tuple[PathItem, ...], yaml.Node] = {}

    def mark_for(self, path: tuple[PathItem, ...], *, prefer_key: bool = False) -> yaml.Mark | None:
        """The mark of the deepest known node on ``path`` (the field itself when it exists)."""
        for depth in range(len(path), -1, -1):
            prefix = path[:depth]
            lookups = [prefix]
            if prefix and isinstance(prefix[-1], str) and prefix[-1].lstrip("-").isdigit():
                # pydantic reports dict[int, ...] keys as given; YAML may have built an int or a str.
                lookups.append((*prefix[:-1], int(prefix[-1])))
            for candidate in lookups:
                node = (self.key_nodes if prefer_key else self.value_nodes).get(candidate)
                node = node or self.value_nodes.get(candidate)
                if node is not None:
                    return node.start_mark
        return None


def _issue(
    file: str, mark: yaml.Mark | None, path: tuple[PathItem, ...], message: str, kind: str = "invalid"
) -> ConfigIssue:
    return ConfigIssue(
        file=file,
        line=None if mark is None else mark.line + 1,
        column=None,
        path=format_path(path),
        message=message,
        kind=kind,
    )


def _build(
    node: yaml.Node,
    path: tuple[PathItem, ...],
    constructor: yaml.constructor.SafeConstructor,
    index: _NodeIndex,
    issues: list[ConfigIssue],
    file: str,
    environ: Mapping[str, str],
) -> Any:
    """Construct Python data from a node while recording nodes and resolving ``${VAR}``."""
    index.value_nodes[path] = node
    if isinstance(node, yaml.MappingNode):
        # Keys written in this mapping (not brought in by a "<<" merge): only those can be duplicates.
        own_keys = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        constructor.flatten_mapping(node)  # resolve "<<" merge keys like safe_load does
        result: dict[Any, Any] = {}
        own_seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int) or isinstance(key, bool):
                issues.append(_issue(file, key_node.start_mark, path, f"keys must be strings, got {key!r}"))
                continue
            if id(key_node) in own_keys:
                if key in own_seen:
                    first = index.key_nodes[(*path, key)].start_mark.line + 1
                    issues.append(
                        _issue(
                            file,
                            key_node.start_mark,
                            (*path, key),
                            f"duplicate key (first defined on line {first})",
                        )
                    )
                    continue
                own_seen.add(key)
            # As in PyYAML, a later entry wins over a merged one.
            index.key_nodes[(*path, key)] = key_node
            result[key] = _build(value_node, (*path, key), constructor, index, issues, file, environ)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), constructor, index, issues, file, environ) for i, item in enumerate(node.value)
        ]
    value = constructor.construct_object(node, deep=True)
    if isinstance(value, str) and "$" in value:
        value = _resolve_env(value, node, path, issues, file, environ)
    return value


def _resolve_env(
    value: str,
    node: yaml.Node,
    path: tuple[PathItem, ...],
    issues: list[ConfigIssue],
    file: str,
    environ: Mapping[str, str],
) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            issues.append(
                _issue(file, node.start_mark, path, f"malformed environment reference {text!r} (use ${{NAME}})", "env")
            )
            return text
        if name not in environ:
            issues.append(_issue(file, node.start_mark, path, f"environment variable {name!r} is not set", "env"))
            return text
        return environ[name]

    return _ENV_REF_RE.sub(replace, value)


def _model_fields_at(path: tuple[PathItem, ...], root: type[BaseModel]) -> list[str] | None:
    """Field names of the pydantic model at ``path`` inside a cluster (for typo hints)."""
    model: Any = root
    for item in path:
        field = model.model_fields.get(item) if isinstance(item, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return sorted(model.model_fields)


def _clean_message(err: dict[str, Any], rel_path: tuple[PathItem, ...], root: type[BaseModel]) -> str:
    """Make pydantic's message operator-friendly; never include the input value (may be a secret)."""
    msg: str = err["msg"]
    if err["type"] == "extra_forbidden" and rel_path:
        field = str(rel_path[-1])
        msg = f"unknown field {field!r}"
        allowed = _model_fields_at(rel_path[:-1], root)
        if allowed:
            close = difflib.get_close_matches(field, allowed, n=1)
            msg += f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required field is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _pydantic_path(loc: tuple[Any, ...]) -> tuple[PathItem, ...]:
    # Drop pydantic's markers such as "[key]" (errors in a dict key) and tagged-union names.
    return tuple(item for item in loc if not (isinstance(item, str) and item.startswith("[")))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: cluster file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read cluster file: {exc}") from None


def parse_clusters(
    text: str, file: str = "<string>", environ: Mapping[str, str] | None = None, *, model: type[C] = ClusterSettings
) -> list[C]:
    """Validate cluster YAML text into ``model`` instances; ``file`` is only used in messages.
    See :func:`load_clusters`."""
    env = os.environ if environ is None else environ
    try:  # the reader rejects control characters already while the loader is being built
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        char, pos = getattr(exc, "character", None), getattr(exc, "position", None)
        why = f"character U+{char:04X} at offset {pos} is not allowed in YAML" if isinstance(char, int) else str(exc)
        raise ClusterConfigError([ConfigIssue(file, None, None, "", f"not YAML text: {why}", "syntax")]) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            reason = " ".join(p for p in (exc.context, exc.problem) if p)
            line = None if mark is None else mark.line + 1
            column = None if mark is None else mark.column + 1
            raise ClusterConfigError(
                [ConfigIssue(file, line, column, "", f"YAML syntax error: {reason}", "syntax")]
            ) from None
        except yaml.YAMLError as exc:
            raise ClusterConfigError([ConfigIssue(file, None, None, "", f"YAML error: {exc}")]) from None

        issues: list[ConfigIssue] = []
        index = _NodeIndex()
        if root is None:
            raise ClusterConfigError([ConfigIssue(file, None, None, "", "file is empty; expected 'clusters:'")])
        try:
            data = _build(root, (), loader, index, issues, file, env)
        except yaml.MarkedYAMLError as exc:  # e.g. an unknown !tag
            mark = exc.problem_mark
            line = None if mark is None else mark.line + 1
            raise ClusterConfigError([ConfigIssue(file, line, None, "", f"YAML error: {exc.problem}")]) from None
    finally:
        loader.dispose()

    if not isinstance(data, dict):
        issues.append(_issue(file, root.start_mark, (), "the top level must be a mapping with a 'clusters' list"))
        raise ClusterConfigError(issues)
    for key in data:
        if key not in _TOP_LEVEL_KEYS and not (isinstance(key, str) and key.startswith("x-")):
            issues.append(
                _issue(file, index.mark_for((key,), prefer_key=True), (key,), f"unknown top-level key {key!r}")
            )
    items = data.get("clusters")
    if not isinstance(items, list) or not items:
        what = "missing" if items is None else "not a non-empty list"
        issues.append(_issue(file, index.mark_for(("clusters",)), ("clusters",), f"{what}; list at least one cluster"))
        raise ClusterConfigError(issues)

    clusters: list[C] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        base: tuple[PathItem, ...] = ("clusters", i)
        if not isinstance(item, dict):
            issues.append(_issue(file, index.mark_for(base), base, "each cluster must be a mapping of fields"))
            continue
        try:
            cluster = model.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                rel = _pydantic_path(tuple(err["loc"]))
                path = base + rel
                mark = index.mark_for(path, prefer_key=err["type"] == "extra_forbidden")
                issues.append(_issue(file, mark, path, _clean_message(err, rel, model)))
            continue
        line = index.mark_for((*base, "name"))
        if cluster.name in seen:
            issues.append(
                _issue(
                    file,
                    line,
                    (*base, "name"),
                    f"duplicate cluster name {cluster.name!r} (first on line {seen[cluster.name]})",
                )
            )
            continue
        seen[cluster.name] = 0 if line is None else line.line + 1
        clusters.append(cluster)

    if issues:
        # An unresolved ${VAR} also fails the field's validation; report only the root cause.
        env_paths = {i.path for i in issues if i.kind == "env"}
        issues = [i for i in issues if i.kind == "env" or i.path not in env_paths]
        raise ClusterConfigError(sorted(issues, key=lambda i: i.line or 0))
    return clusters


def load_clusters(path: str | os.PathLike[str], *, model: type[C] = ClusterSettings) -> list[C]:
    """Load and validate every cluster in a YAML file (as ``model``: the settings, or the block).

    Raises :class:`ClusterConfigError` (a ``ConfigError``) listing every problem with its file,
    line and field path; nothing is returned unless the whole file is valid, so a half-valid file
    can never silently drop a cluster from monitoring.
    """
    p = Path(path)
    return parse_clusters(_read(p), file=str(path), model=model)
