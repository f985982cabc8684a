"""The layout rules hold for all code, including what is added later.

- the package's modules import each other without a circle (imports inside functions count);
- the config is at the bottom (it imports no model, pruning, training or tracking module), and no
  pruning module imports the training package;
- no development history in the README, docs/, the package or the benchmarks;
- only `gated_bert/tracking/` imports mlflow;
- importing any gated_bert module changes no process-wide state;
- method names are compared only in the registry and the methods' own files;
- no function over 60 lines, cli.py under 400 lines;
- CLI options, MLproject parameters and config fields agree.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gated_bert
from gated_bert.config import GatedBertConfig
from gated_bert.pruning import methods
from tests.conftest import REPO

PACKAGE = Path(gated_bert.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_FUNCTION_LINES = 60


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_only_tracking_imports_mlflow():
    offenders = []
    for path in SOURCES:
        if _relative(path).startswith("gated_bert/tracking/"):
            continue
        for node in ast.walk(_tree(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{_relative(path)}:{node.lineno}" for n in names if n.split(".")[0] == "mlflow"]
    assert offenders == []


def _module_name(path: Path) -> str:
    name = path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
    return name.removesuffix(".__init__")


MODULES = {_module_name(path): path for path in SOURCES}


def _imported_modules(tree: ast.Module) -> set[str]:
    """The gated_bert modules a module imports anywhere (functions too), `if TYPE_CHECKING:` aside.

    `from package import name` counts as importing the module `package.name` when that is a
    module, else `package`."""
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    return {name for name in found if name in MODULES}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: _imported_modules(_tree(path)) - {name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    assert circles(import_graph(MODULES)) == []


def test_the_circle_check_can_fail():
    """Two modules importing each other, one of them inside a function, are a circle."""
    a = ast.parse("from gated_bert.config import GatedBertConfig\n")
    b = ast.parse("def f():\n    from gated_bert.model import build_model\n")
    graph = {
        "gated_bert.model": _imported_modules(a),
        "gated_bert.config": _imported_modules(b),
    }
    assert circles(graph) == [["gated_bert.config", "gated_bert.model"]]


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for other in graph[todo.pop()]:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def test_config_is_at_the_bottom():
    """The config and what it imports reach no model, layer, data, pruning, training or tracking module."""
    reached = _reaches(import_graph(MODULES), "gated_bert.config")
    assert reached <= {"gated_bert.architecture", "gated_bert.errors", "gated_bert.tasks"}, reached


def test_no_pruning_module_imports_training():
    graph = import_graph(MODULES)
    back = [
        f"{name} -> {other}"
        for name, imported in graph.items()
        if name.startswith("gated_bert.pruning")
        for other in imported
        if other.startswith(("gated_bert.training", "gated_bert.tracking", "gated_bert.run"))
    ]
    assert back == []


def test_config_names_equal_the_registry():
    from gated_bert import config
    from gated_bert.pruning import groups, schedules
    from gated_bert.pruning.methods import spt

    assert config.PRUNING_METHODS == methods.method_names()
    assert config.GRANULARITIES == groups.GRANULARITIES
    assert config.EPOCH_SCHEDULE_KINDS == schedules.EPOCH_SCHEDULE_KINDS
    assert config.SPT_CREDITS is spt.CREDITS


HISTORY = re.compile(r"session [0-9]|\bthe (quality )?issue\b|\bthe bar\b|the spec", re.IGNORECASE)
ALLOWED = re.compile(r"scope=\"session\"|start_new_session")


def history_words(paths) -> list[str]:
    """Lines that speak of the development history (sessions, issues, the bar, the spec)."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if HISTORY.search(ALLOWED.sub("", line)):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:80]}")
    return found


def test_no_development_history_in_the_product():
    texts = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    code = [*SOURCES, *sorted((REPO / "benchmarks").rglob("*.py"))]
    assert history_words(texts + code) == []


def test_the_history_check_can_fail(tmp_path):
    (tmp_path / "page.md").write_text('Measured in session 12; see the issue.\nscope="session" is fine\n')
    lines = (tmp_path / "page.md").read_text().splitlines()
    assert [bool(HISTORY.search(ALLOWED.sub("", line))) for line in lines] == [True, False]


def test_the_check_above_can_fail(tmp_path):
    """The scan sees imports inside functions too."""
    source = "def f():\n    import mlflow.pyfunc\n"
    found = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)]
    assert found and found[0].names[0].name.split(".")[0] == "mlflow"


# The sweep's Optuna sampler "random" and trial pruner "none" share a spelling with methods.
OPTUNA_NAMES = {"random", "none"}


def _method_name_literals() -> set[str]:
    return set(methods.method_names()) | set(methods.labels())


def test_no_method_name_comparisons_outside_the_registry():
    """Dispatch on method names lives in pruning/methods/ only (compare or dict keys)."""
    names = _method_name_literals()
    offenders = []
    for path in SOURCES:
        if _relative(path).startswith("gated_bert/pruning/methods/"):
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                literals = [
                    elt
                    for operand in operands
                    for elt in (
                        operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                    )
                ]
            elif isinstance(node, ast.Dict):
                literals = [key for key in node.keys if key is not None]
            else:
                continue
            hits = [c.value for c in literals if isinstance(c, ast.Constant) and c.value in names]
            if hits and not (set(hits) <= OPTUNA_NAMES and _relative(path) == "gated_bert/sweep/runner.py"):
                offenders.append(f"{_relative(path)}:{node.lineno} {hits}")
    assert offenders == []


def test_functions_are_short_and_cli_is_small():
    long_functions = []
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{_relative(path)}:{node.lineno} {node.name} ({length} lines)")
    assert long_functions == []
    assert len((PACKAGE / "cli.py").read_text().splitlines()) < 400


SNAPSHOT = textwrap.dedent(
    """
    import json, logging, os, pkgutil, signal, sys, warnings, importlib

    import numpy, pandas, tensorflow, keras, matplotlib, mlflow, optuna, sklearn, scipy, datasets
    import tokenizers, rich, click
    try:
        import psycopg  # gated_bert loads it early when installed (its logger's level is its own)
    except ImportError:
        pass

    def snapshot():
        loggers = {"": logging.getLogger()}
        loggers.update({n: l for n, l in logging.root.manager.loggerDict.items() if isinstance(l, logging.Logger)})
        return {
            "signals": {s.name: repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)},
            "handlers": {n: [repr(h) for h in l.handlers] for n, l in loggers.items() if l.handlers},
            "levels": {n: l.level for n, l in loggers.items() if l.level != logging.NOTSET},
            "warnings": [repr(f) for f in warnings.filters],
            "environ": dict(os.environ),
            "backend": repr(matplotlib.get_backend(auto_select=False)),
            "showwarning": repr(warnings.showwarning),
        }

    before = snapshot()
    import gated_bert
    modules = [m.name for m in pkgutil.walk_packages(gated_bert.__path__, "gated_bert.")]
    for name in modules:
        importlib.import_module(name)
    after = snapshot()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    print(json.dumps({"modules": modules, "changed": changed}, default=str))
    """
)


@pytest.mark.slow
def test_importing_gated_bert_changes_no_process_state():
    done = subprocess.run(
        [sys.executable, "-c", SNAPSHOT], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "gated_bert.tracking.pyfunc" in result["modules"] and "gated_bert.cli" in result["modules"]
    assert len(result["modules"]) >= 40
    assert result["changed"] == {}


def test_mlproject_is_generated_from_the_dataclasses():
    from gated_bert.mlproject import render

    assert (REPO / "MLproject").read_text() == render(), "run: python -m gated_bert.mlproject > MLproject"


def test_mlproject_cli_and_config_agree():
    import yaml
    from click import BOOL

    from gated_bert.cli import cli
    from gated_bert.sweep.runner import SweepSettings

    project = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    config_fields = [f.name for f in dataclasses.fields(GatedBertConfig)]
    settings_fields = [f.name for f in dataclasses.fields(SweepSettings) if f.name != "seed"]
    assert list(project["train"]["parameters"]) == [*config_fields, "resume"]
    assert "--resume {resume}" in project["train"]["command"]
    assert project["main"] == project["train"]
    assert list(project["sweep"]["parameters"]) == settings_fields + config_fields
    train_options = {p.name: p for p in cli.commands["train"].params if not p.hidden}
    assert sorted(train_options) == sorted([*config_fields, "resume"])
    sweep_options = {p.name for p in cli.commands["sweep"].params}
    assert sweep_options == set(config_fields) | set(settings_fields)
    defaults = GatedBertConfig()
    for name in config_fields:
        default = getattr(defaults, name)
        assert train_options[name].default == default, name
        written = project["train"]["parameters"][name]["default"]
        if default is None:
            assert written == "auto", name
        elif train_options[name].type is BOOL:
            assert written == str(default).lower(), name
        else:
            assert type(default)(written) == default, name
        assert f"--{name.replace('_', '-')} {{{name}}}" in project["train"]["command"]


def test_experiments_flags_default_to_the_config():
    from gated_bert.cli import cli
    from gated_bert.options import EXPERIMENT_FLAGS

    defaults = GatedBertConfig()
    options = {p.name: p for p in cli.commands["experiments"].params}
    for flag in EXPERIMENT_FLAGS:
        default = getattr(defaults, flag.field)
        written = options[flag.field].default
        assert written == (str(default).lower() if isinstance(default, bool) else default), flag


def test_readme_layout_names_every_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    missing = [_relative(p) for p in SOURCES if p.name != "__init__.py" and p.name not in layout]
    assert missing == []
