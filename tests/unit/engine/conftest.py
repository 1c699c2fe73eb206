"""Fixtures of the engine's unit tests: ``world`` is a fake Terraform driver and a factory of engine
contexts (the sample data, one SQLite store, a given acting user) that use it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from govcloud.engine.context import EngineContext, build
from govcloud.settings import Settings
from tests.support.faketerraform import SECRETS, FakeTerraform
from tests.support.tickets import REPO

Engine = Callable[..., EngineContext]


@pytest.fixture
def world(tmp_path: Path) -> tuple[FakeTerraform, Engine]:
    fake = FakeTerraform(tmp_path / "tf")
    db = f"sqlite:///{tmp_path / 'state.db'}"

    def engine(user: str, *, environ: Mapping[str, str] = SECRETS) -> EngineContext:
        settings = Settings.from_env({}).with_overrides(root=str(REPO), db=db, user=user)
        settings = dataclasses.replace(settings, state_dir=tmp_path / "state",
                                       terraform=dataclasses.replace(settings.terraform, environ=dict(environ)))
        ctx = build(settings)
        ctx.terraform_factory = lambda _ctx: fake
        return ctx

    return fake, engine
