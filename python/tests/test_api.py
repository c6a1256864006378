"""The public API is documented and typed: every public function and class of tmslab and
its modules (tmslab.plot's included) has a docstring, and every public function's
parameters and return value have annotations."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import tmslab
import tmslab.plot

# tmslab.report and tmslab.plot.dynamics have their own owners and tests (tests/test_report.sh,
# tests/test_dynamics_plots.sh)
MODULES = sorted({"tmslab", *(f"tmslab.{m.name}" for m in pkgutil.iter_modules(tmslab.__path__)
                              if m.name not in ("__main__", "report")),
                  *(f"tmslab.plot.{m.name}" for m in pkgutil.iter_modules(tmslab.plot.__path__)
                    if m.name != "dynamics")})


def public(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", "").startswith("tmslab"):
            out.append((name, obj))
    return out


@pytest.mark.parametrize("module_name", MODULES)
def test_documented_and_typed(module_name: str) -> None:
    assert importlib.import_module(module_name).__doc__, f"{module_name} has no docstring"
    missing = []
    for name, obj in public(module_name):
        if not inspect.getdoc(obj):
            missing.append(f"{name}: no docstring")
        functions = [obj] if inspect.isfunction(obj) else [
            f for n, f in vars(obj).items() if inspect.isfunction(f) and (not n.startswith("_") or n == "__init__")]
        for f in functions:
            sig = inspect.signature(f)
            untyped = [p for p in sig.parameters.values() if p.name not in ("self", "cls")
                       and p.annotation is inspect.Parameter.empty]
            if untyped or (sig.return_annotation is inspect.Signature.empty and f.__name__ != "__init__"):
                missing.append(f"{name}.{f.__name__}: parameters {[p.name for p in untyped]} or return untyped")
    assert not missing, missing
