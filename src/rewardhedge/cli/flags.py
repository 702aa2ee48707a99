"""Flags made from typed configs, so help text and defaults have one source.

A command lists the config fields it exposes (a :class:`FlagSet`); each flag's
help is the field's attribute docstring and the default it shows is the
dataclass default, read from the class itself. The flag's own value defaults
to ``None``, so a setting from ``--config FILE`` survives unless the flag is
given: :func:`config_from` merges the dataclass defaults, then the file, then
the flags, and names the flag when its value is refused.

Options objects (:func:`options_params`, e.g. the data flags every command that
reads a file takes) work the same way, with the field's default as the flag's.

    TRAIN_FLAGS = FlagSet(EnsembleConfig, (Flag("n_members", "members"), Flag("train.lr")))

    @with_flags(flags=TRAIN_FLAGS, data=DataOptions)
    def train(data_path: ..., config: Path | None, flags: dict, data: DataOptions): ...
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import json
import re
import textwrap
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, TypeVar

import typer

from rewardhedge.config import from_dict
from rewardhedge.errors import ConfigError

T = TypeVar("T")


# -- attribute docstrings ------------------------------------------------------------------
@functools.cache
def attribute_docs(cls: type) -> dict[str, str]:
    """``field → docstring`` of a dataclass: the string literal right after each field
    (and after the fields of its bases), as Sphinx reads attribute docstrings."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # made at run time (make_dataclass): no docstrings
            continue
        body = ast.parse(textwrap.dedent(source)).body[0].body  # type: ignore[attr-defined]
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def help_text(doc: str) -> str:
    """A docstring as one-paragraph terminal help: the first paragraph, reST literals
    (````x````) and roles (``:class:`X```) as plain text, whitespace collapsed."""
    first = doc.split("\n\n", 1)[0]
    first = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", first)
    first = first.replace("``", "")
    return " ".join(first.split())


@dataclass(frozen=True)
class FieldInfo:
    """What a flag needs to know of the config field it sets."""

    owner: type
    name: str
    hint: Any
    default: Any
    doc: str


def field_info(cls: type, path: str) -> FieldInfo:
    """The field ``path`` (dotted through nested dataclasses, e.g. ``train.lr``) of ``cls``."""
    owner = cls
    *parents, name = path.split(".")
    for part in parents:
        owner = typing.get_type_hints(owner)[part]
    fields = {f.name: f for f in dataclasses.fields(owner)}
    if name not in fields:
        raise KeyError(f"{cls.__name__} has no field {path!r}")
    f = fields[name]
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = dataclasses.MISSING
    doc = attribute_docs(owner).get(name)
    if doc is None:
        raise KeyError(f"{owner.__name__}.{name} has no attribute docstring to use as help")
    return FieldInfo(owner, name, typing.get_type_hints(owner)[name], default, doc)


def shown_default(value: Any) -> str | bool:
    """How ``--help`` shows a default: ``5``, ``linear``, ``a,b``; nothing for ``None``."""
    if value is None or value is dataclasses.MISSING:
        return False
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else False
    return str(value)


def _flag_type(hint: Any) -> type:
    """The plain type a flag parses to: options (enums) and tuples are given as strings."""
    args = [a for a in typing.get_args(hint) if a is not NoneType]
    if typing.get_origin(hint) in (UnionType, typing.Union) and len(args) == 1:
        hint = args[0]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return str
    if typing.get_origin(hint) is tuple:
        return str
    if hint in (int, float, bool, str):
        return hint
    raise TypeError(f"no flag type for {hint!r}")


# -- config flags --------------------------------------------------------------------------
@dataclass(frozen=True)
class Flag:
    """One config field exposed as a flag."""

    path: str
    """The field, dotted through nested configs (``train.lr``)."""
    name: str | None = None
    """The parameter name (``--name-with-dashes``); default: the field's name."""
    decls: tuple[str, ...] = ()
    """Flag spellings when not ``--name`` (e.g. ``("--lora/--full",)``)."""

    @property
    def param(self) -> str:
        return self.name or self.path.rsplit(".", 1)[-1]

    @property
    def flag(self) -> str:
        return (self.decls[0].split("/")[0] if self.decls else "--" + self.param).replace("_", "-")


@dataclass(frozen=True)
class FlagSet:
    """The flags a command takes for config class ``cls``."""

    cls: type
    flags: tuple[Flag, ...]

    def parameters(self) -> list[inspect.Parameter]:
        """One keyword parameter per flag: help and shown default from the field, value None."""
        params = []
        for flag in self.flags:
            info = field_info(self.cls, flag.path)
            kind = _flag_type(info.hint)
            decls = flag.decls or (
                (f"--{flag.param}/--no-{flag.param}".replace("_", "-"),) if kind is bool else ()
            )
            option = typer.Option(
                *decls, help=help_text(info.doc), show_default=shown_default(info.default)
            )
            params.append(_keyword(flag.param, Annotated[kind | None, option], None))
        return params

    def values(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``path → value`` of the flags given (``None``: not given), popped from ``kwargs``."""
        given = {f.path: kwargs.pop(f.param) for f in self.flags}
        return {path: value for path, value in given.items() if value is not None}

    def config(self, file: Path | None, values: Mapping[str, Any], *, base: Any = None) -> Any:
        """:func:`config_from` for this set's class and flag names."""
        flags = {f.path: f.flag for f in self.flags}
        return config_from(self.cls, file, values, flags, base=base)


def read_config_file(cls: type[T], file: Path) -> T:
    """A JSON config file with the keys of ``cls.to_dict()``; a clear error naming the file."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the config file ({exc}).") from exc
    try:
        _check_json_types(cls, data)
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # a check the type test above does not cover
        raise ConfigError(f"{file}: {exc}") from exc


_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _expected(hint: Any) -> str | None:
    """What a JSON value for a field of type ``hint`` must be, in words; ``None``: any value
    the type test does not know (the dataclass checks it)."""
    options = [a for a in typing.get_args(hint) if a is not NoneType]
    if typing.get_origin(hint) in (UnionType, typing.Union):
        words = [_expected(a) for a in options]
        if None in words:
            return None
        return " or ".join([*words, "null"] if NoneType in typing.get_args(hint) else words)
    if isinstance(hint, type) and issubclass(hint, Enum | Path):
        return "a string"
    if typing.get_origin(hint) is tuple:
        return "a list"
    return _KINDS.get(hint)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value can be a field of type ``hint`` (a number for a float, not a
    bool for an int; a string or a list for a tuple, as ``encoder.views`` takes)."""
    if typing.get_origin(hint) in (UnionType, typing.Union):
        return any(_fits(value, a) for a in typing.get_args(hint))
    if hint is NoneType:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str or (isinstance(hint, type) and issubclass(hint, Enum | Path)):
        return isinstance(value, str)
    if typing.get_origin(hint) is tuple:  # a comma-separated string where items are strings
        return isinstance(value, list) or (isinstance(value, str) and str in typing.get_args(hint))
    return True


def _check_json_types(cls: type, data: Any, prefix: str = "") -> None:
    """Each value of a config file against its field's type: ``n_members == 'three' is not
    an integer`` instead of a TypeError from deep inside the dataclass."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return  # from_dict reports a value that is not a mapping
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        hint = hints.get(name)
        if hint is None:
            continue  # from_dict names unknown keys
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            _check_json_types(hint, value, f"{prefix}{name}.")
            continue
        expected = _expected(hint)
        if expected is not None and not _fits(value, hint):
            raise ConfigError(f"{prefix}{name} == {value!r} is not {expected}.")


def config_from(
    cls: type[T],
    file: Path | None,
    values: Mapping[str, Any],
    flags: Mapping[str, str] | None = None,
    *,
    base: T | None = None,
) -> T:
    """The config ``file`` (JSON over ``cls``'s defaults), else ``base`` (e.g. a saved
    model's config), else the defaults; overridden by ``values`` (``dotted.path →
    value``, the flags given). A value the config refuses is reported with its flag's
    name (``flags``: ``path → --flag``)."""
    if file is not None:
        base = read_config_file(cls, file)
    cfg = base if base is not None else cls()
    try:
        return _replace_paths(cfg, values)
    except ConfigError as exc:
        for path, flag in (flags or {}).items():
            if path in values and _names_field(str(exc), path):
                raise ConfigError(f"{flag}: {exc}") from exc
        raise


def _names_field(message: str, path: str) -> bool:
    """Whether a config error is about ``path``: the field, dotted as in the message,
    among its first words (``train.lr == …``, ``ensemble.n_members …``, ``sandbox:
    pool_size must …``; ``head.kind`` is not ``encoder.kind``)."""
    words = [w.rstrip(":,") for w in message.split()[:3]]
    return any(w == path or w.endswith("." + path) for w in words)


def _replace_paths(cfg: Any, values: Mapping[str, Any]) -> Any:
    """``cfg`` with the dotted fields in ``values`` replaced (nested configs rebuilt)."""
    here = {p: v for p, v in values.items() if "." not in p}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        if "." in path:
            head, rest = path.split(".", 1)
            nested.setdefault(head, {})[rest] = value
    for head, sub in nested.items():
        here[head] = _replace_paths(getattr(cfg, head), sub)
    return replace(cfg, **here) if here else cfg


# -- options objects -----------------------------------------------------------------------
def options_params(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter per field of the options dataclass ``cls``: help from the
    field's docstring, the field's default as the flag's, spellings from the field's
    ``metadata["flag"]`` when not ``--name``."""
    params = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        info = field_info(cls, f.name)
        option = typer.Option(*f.metadata.get("flag", ()), help=help_text(info.doc))
        params.append(_keyword(f.name, Annotated[hints[f.name], option], info.default))
    return params


# -- commands ------------------------------------------------------------------------------
def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def with_flags(**groups: FlagSet | type) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a command the flags of each group: ``name=FlagSet`` passes ``name`` as the dict
    of config values the flags set (``path → value``); ``name=OptionsClass`` passes an
    instance built from its flags. The command's own parameters come first in ``--help``."""

    def wrap(func: Callable[..., T]) -> Callable[..., T]:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name not in groups]
        extra: list[inspect.Parameter] = []
        for group in groups.values():
            extra += group.parameters() if isinstance(group, FlagSet) else options_params(group)
        names = [p.name for p in own + extra] + list(groups)
        repeated = {n for n in names if names.count(n) > 1}
        if repeated:
            raise TypeError(f"{func.__name__}: flags repeat: {sorted(repeated)}")

        @functools.wraps(func)
        def command(**kwargs: Any) -> T:
            for name, group in groups.items():
                if isinstance(group, FlagSet):
                    kwargs[name] = group.values(kwargs)
                else:
                    kwargs[name] = group(
                        **{f.name: kwargs.pop(f.name) for f in dataclasses.fields(group)}
                    )
            return func(**kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own + extra]
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read __signature__, not the wrapped function's
        command.own_flags = [p.name for p in own]  # type: ignore[attr-defined]
        return command

    return wrap


def flag_help(
    command: Callable[..., Any], *, own_only: bool = False
) -> dict[str, tuple[str, str | bool]]:
    """``--flag → (help, shown default)`` of a command (for tests and docs: what ``--help``
    prints comes from here); ``own_only``: only the flags written in the command itself,
    not those :func:`with_flags` made from configs."""
    out = {}
    own = getattr(command, "own_flags", None)
    for p in inspect.signature(command).parameters.values():
        if own_only and own is not None and p.name not in own:
            continue
        meta = (
            typing.get_args(p.annotation)[1:]
            if typing.get_origin(p.annotation) is Annotated
            else ()
        )
        for info in meta:
            if isinstance(info, typer.models.OptionInfo):
                out["--" + p.name.replace("_", "-")] = (info.help or "", info.show_default)
    return out


__all__ = [
    "Flag",
    "FlagSet",
    "attribute_docs",
    "config_from",
    "field_info",
    "flag_help",
    "help_text",
    "options_params",
    "read_config_file",
    "shown_default",
    "with_flags",
]
