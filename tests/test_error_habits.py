"""Error habits of the package, checked on its source: no `except ValueError` as control flow."""
from __future__ import annotations

import ast
from pathlib import Path

import translate
from translate.errors import Cancelled, TranslateError

PACKAGE = Path(translate.__file__).parent


def _catches_value_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(c, ast.Name) and c.id == "ValueError" for c in caught)


def _own_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(functions and classes of ours callable by a bare name, names bound to modules of ours) in a module."""
    functions, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            functions.add(node.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("translate"):
            for alias in node.names:  # `from translate import x` may bind a module or a function: both ours
                functions.add(alias.asname or alias.name)
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("translate"))
    return functions, modules


def _calls_our_code(body: list[ast.stmt], functions: set[str], modules: set[str]) -> str | None:
    """The first call in `body` into translate's own code (a function of ours, `self.x()`, `ours.x()`)."""
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        while isinstance(func, ast.Attribute):  # a.b.c() -> a; f(x).g() -> f
            func = func.value.func if isinstance(func.value, ast.Call) else func.value
        if isinstance(func, ast.Name) and (func.id in functions or func.id in modules or func.id in ("self", "cls")):
            return ast.unparse(node.func)
    return None


def value_error_control_flow() -> list[str]:
    """Every `try` in translate/ that catches ValueError around a call into our own code, as "file:line call"."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions, modules = _own_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(_catches_value_error(h) for h in node.handlers):
                call = _calls_our_code(node.body, functions, modules)
                if call is not None:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {call}()")
    return found


def test_value_error_is_caught_only_around_other_libraries():
    """Our own code raises TranslateError for what a user can cause and ValueError only for bugs, so a
    handler for ValueError may guard only calls into Python or a third-party library (float(), PIL)."""
    assert value_error_control_flow() == []


def test_the_rule_sees_a_handler_around_our_own_code(tmp_path):
    """The check above can fail: it flags each way of calling our code, and passes a library call."""
    source = ("from translate.nets import spec_from_dict\nimport translate.config as cfg\n"
              "def helper(): pass\nclass A:\n    def m(self):\n"
              "        try:\n            self.n()\n        except ValueError:\n            pass\n"
              "try:\n    spec_from_dict('x')\nexcept (TypeError, ValueError):\n    pass\n"
              "try:\n    cfg.load('x').x()\nexcept ValueError:\n    pass\n"
              "try:\n    helper()\nexcept ValueError:\n    pass\n"
              "try:\n    int('x')\nexcept ValueError:\n    pass\n")
    tree = ast.parse(source)
    functions, modules = _own_names(tree)
    tries = [n for n in ast.walk(tree) if isinstance(n, ast.Try)]
    flagged = [_calls_our_code(t.body, functions, modules) for t in tries]
    assert sorted(f for f in flagged if f) == ["cfg.load('x').x", "helper", "self.n", "spec_from_dict"]
    assert flagged.count(None) == 1


def test_our_errors_are_not_value_errors_and_cancelling_is_not_one_of_them():
    assert not issubclass(TranslateError, ValueError)
    assert not issubclass(Cancelled, TranslateError)
