"""Commands whose modules are imported only when the command is looked up.

Each command group imports its own heavy dependencies (gRPC, protobuf, JWT, pydantic
settings); importing them all costs every command, even one that works on local files,
a few hundred milliseconds before it starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["lazy_group", "placeholder"]


def lazy_group(targets: Mapping[str, str]) -> type[TyperGroup]:
    """A group class whose commands named in ``targets`` are placeholders until looked up.

    ``targets`` maps a command name to ``"module:attribute"``: a Typer app (the command is
    then its group) or a command function. Register a placeholder under each name where the
    command belongs (``app.add_typer(placeholder(), name=...)`` or
    ``app.command(name)(...)``) so that listings keep their order.
    """

    class LazyGroup(TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self._loaded: set[str] = set()

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            target = targets.get(cmd_name)
            if target is not None and cmd_name not in self._loaded:
                self.commands[cmd_name] = _load(cmd_name, target)
                self._loaded.add(cmd_name)
            return super().get_command(ctx, cmd_name)

    return LazyGroup


def placeholder() -> typer.Typer:
    """Stands for a lazy command until it is looked up: an empty app to register with
    ``add_typer`` (a group), or a callback to register with ``app.command`` (a command)."""
    return typer.Typer()


def _load(name: str, target: str) -> Any:
    module, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if isinstance(found, typer.Typer):
        group = typer.main.get_group(found)
        group.name = name
        return group
    # Built as a command of a group, as it would be registered on the root (get_command
    # would make it a program of its own, with completion options).
    holder = typer.Typer()
    holder.command(name)(found)
    return typer.main.get_group(holder).commands[name]
