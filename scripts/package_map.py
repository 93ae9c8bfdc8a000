"""Print the translate package as folders of modules with line counts and the translate modules each imports.

Usage: python scripts/package_map.py [ROOT]   (ROOT: a checkout; default: this one)
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, this: str) -> set[str]:
    """translate.* modules this module imports, at any depth (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("translate")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("translate"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1]).resolve()
    files = sorted((root / "translate").rglob("*.py"))
    modules = {module_name(f, root): f for f in files}
    groups: dict[str, list[str]] = defaultdict(list)
    for name, path in modules.items():
        deps = {d for d in imported(ast.parse(path.read_text()), name) if d in modules and d != name}
        folder = name.rsplit(".", 1)[0] if path.name != "__init__.py" and name.count(".") > 1 else (
            name if path.name == "__init__.py" else "translate")
        lines = len(path.read_text().splitlines())
        short = sorted({".".join(d.split(".")[:2]) for d in deps} - {".".join(name.split(".")[:2])})
        groups[folder].append(f"  {name} ({lines} lines) -> {', '.join(s.removeprefix('translate.') for s in short) or '-'}")
    top = [n for n, p in modules.items() if n.count(".") == 1 and p.name != "__init__.py"]
    print(f"modules at the top of translate/: {len(top)} ({', '.join(sorted(t.split('.')[1] for t in top))})")
    for folder in sorted(groups):
        print(folder)
        print("\n".join(groups[folder]))


if __name__ == "__main__":
    main()
