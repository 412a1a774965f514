"""The architecture, checked with ``ast``: where imports may happen, no cycles, short functions.

These rules keep a change in one place: a second model backend touches
``tfslm/backends/``, a distribution change touches ``tfslm/training/``. A rule
that has to bend is listed here, with the reason, for the next reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfslm"
MAX_FUNCTION_LINES = 60

# Functions allowed past MAX_FUNCTION_LINES, each with the reason it stays whole.
LONG_FUNCTIONS = {
    # One tf.Module class defined inside a function so TensorFlow is imported lazily:
    # its methods are the in-graph tokenizer's steps and read best in one place.
    "tfslm.serving.wordpiece_graph._define_tokenizer_class": "a lazily defined tf.Module (methods counted with it)",
    # A Jinja-rendered card: one keyword per template variable; splitting it scatters the template's inputs.
    "tfslm.publish.card.build_model_card": "one keyword argument per card-template variable",
}

# Names under which a tf.data pipeline is built: a dataset object never gets attributes of its own
# (they are lost on the next .map()); statistics travel in tfslm.inputs.InputData instead.
_DATASET_METHODS = {
    "prefetch", "batch", "padded_batch", "ragged_batch", "unbatch", "map", "with_options", "apply", "shuffle",
    "interleave", "from_tensor_slices", "from_tensors", "TFRecordDataset", "prepare_tf_dataset", "repeat", "take",
    "skip", "filter", "cache", "zip", "range",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for name, path in MODULES.items()}


def _imported_modules(tree: ast.AST, module: str) -> set[str]:
    """Every module an ``import``/``from ... import`` names, at any depth (function-local imports too)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _tfslm_dependencies(module: str) -> set[str]:
    return {m for m in _imported_modules(TREES[module], module) if m in MODULES and m != module}


def test_transformers_is_imported_only_under_backends():
    offenders = [
        f"{name}: imports {m}"
        for name, tree in TREES.items()
        if not name.startswith("tfslm.backends")
        for m in sorted(_imported_modules(tree, name))
        if m == "transformers" or m.startswith("transformers.")
    ]
    assert not offenders, "transformers is imported outside tfslm/backends/ (route it through the Backend):\n" + "\n".join(offenders)


def test_keras_hub_is_imported_only_by_its_backend():
    offenders = [
        f"{name}: imports {m}"
        for name, tree in TREES.items()
        if name != "tfslm.backends.keras_hub"
        for m in sorted(_imported_modules(tree, name))
        if m == "keras_hub" or m.startswith("keras_hub.")
    ]
    assert not offenders, "keras_hub is imported outside tfslm/backends/keras_hub.py (route it through the Backend):\n" + "\n".join(offenders)


def test_gradio_is_imported_only_by_the_demo_app():
    # tfslm imports without the demo extra; only `tfslm demo` needs Gradio (a one-line error otherwise).
    offenders = [
        f"{name}: imports {m}"
        for name, tree in TREES.items()
        if name != "tfslm.demo.app"
        for m in sorted(_imported_modules(tree, name))
        if m == "gradio" or m.startswith("gradio.")
    ]
    assert not offenders, "gradio is imported outside tfslm/demo/app.py:\n" + "\n".join(offenders)


def _attribute_chain(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def test_tf_distribute_is_used_only_in_training():
    offenders = []
    for name, tree in TREES.items():
        if name.startswith("tfslm.training"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _attribute_chain(node) in ("tf.distribute", "tensorflow.distribute"):
                offenders.append(f"{name}:{node.lineno}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                named = _imported_modules(node, name)
                offenders += [f"{name}:{node.lineno} imports {m}" for m in named if m.startswith("tensorflow.distribute")]
    assert not offenders, "tf.distribute outside tfslm/training/ (decide distribution in training/distribute.py):\n" + "\n".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_even_through_function_local_imports():
    graph = {name: _tfslm_dependencies(name) for name in MODULES}
    # The package __init__ only re-exports (lazily for the heavy stages); edges into it
    # would make every module a cycle with it, so they are checked separately below.
    graph = {k: {d for d in v if d != "tfslm"} for k, v in graph.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles (function-local imports count): " + "; ".join(" <-> ".join(c) for c in cycles)


def test_modules_import_nothing_from_the_package_init():
    """``from tfslm import x`` inside the package would tie every stage to the public façade."""
    offenders = []
    for name, tree in TREES.items():
        if name == "tfslm":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "tfslm" and not node.level:
                names = [a.name for a in node.names if f"tfslm.{a.name}" not in MODULES]
                if names:
                    offenders.append(f"{name}:{node.lineno} from tfslm import {', '.join(names)}")
    assert not offenders, "\n".join(offenders)


def _code_lines(path: Path, node: ast.AST) -> int:
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        if len(body) == 1:
            return 0
        first = body[1]
    lines = path.read_text(encoding="utf-8").splitlines()[first.lineno - 1 : node.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def _functions():
    for name, tree in TREES.items():
        stack = [(tree, name)]
        while stack:
            parent, prefix = stack.pop()
            for node in ast.iter_child_nodes(parent):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    qualified = f"{prefix}.{node.name}"
                    if not isinstance(node, ast.ClassDef):
                        yield qualified, MODULES[name], node
                    if isinstance(node, ast.ClassDef) or qualified not in LONG_FUNCTIONS:
                        stack.append((node, qualified))
                elif not isinstance(node, (ast.Lambda,)):
                    stack.append((node, prefix))


def test_functions_are_short():
    too_long = [
        f"{qualified}: {lines} lines"
        for qualified, path, node in _functions()
        if (lines := _code_lines(path, node)) > MAX_FUNCTION_LINES and qualified not in LONG_FUNCTIONS
    ]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines of code (split them, or list them with a reason):\n" + "\n".join(too_long)


def test_listed_long_functions_still_exist():
    names = {qualified for qualified, _, _ in _functions()}
    stale = sorted(set(LONG_FUNCTIONS) - names)
    assert not stale, f"LONG_FUNCTIONS lists functions that no longer exist: {stale}"


def _dataset_names(function: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            calls = {_attribute_chain(c.func).rpartition(".")[2] for c in ast.walk(node.value) if isinstance(c, ast.Call)}
            if calls & _DATASET_METHODS:
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_attribute_is_set_on_a_tf_data_dataset(module):
    offenders = []
    for node in ast.walk(TREES[module]):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        datasets = _dataset_names(node) | {"ds", "dataset", "tf_dataset"}
        for assign in ast.walk(node):
            targets = assign.targets if isinstance(assign, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in datasets:
                    offenders.append(f"{module}:{assign.lineno} {ast.unparse(target)}")
    assert not offenders, "attributes set on a tf.data.Dataset (lost on the next .map; carry them in InputData):\n" + "\n".join(offenders)
