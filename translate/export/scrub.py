"""Exports carry no paths of the machine that made them: torch records each node's Python stack
trace (absolute paths of the checkout and the virtual environment) as ONNX metadata
(`pkg.torch.onnx.stack_trace`) and as torch.export node meta. We drop those traces and
relativise any other absolute path a metadata value names."""
from __future__ import annotations

import re
from typing import Any

# Node metadata that is only a record of where the exporter was called from.
_TRACE_KEYS = ("stack_trace", "source_location", "pkg.torch.onnx.stack_trace")
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s\"'<>:|,;()\[\]]+[/\\])+")


def relativise(text: str) -> str:
    """`text` with every absolute folder path reduced to its last component (`.../torch/nn/x.py`
    becomes `x.py`): what a reader needs, nothing about the machine."""
    return _PATH.sub("", text)


def _scrub_props(props: Any) -> None:
    keep = [(p.key, relativise(p.value)) for p in props if not any(k in p.key for k in _TRACE_KEYS)]
    del props[:]
    for key, value in keep:
        entry = props.add()
        entry.key, entry.value = key, value


def _scrub_graph(graph: Any) -> None:
    for node in graph.node:
        _scrub_props(node.metadata_props)
        node.doc_string = relativise(node.doc_string)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _scrub_graph(attribute.g)
            for sub in attribute.graphs:
                _scrub_graph(sub)
    for group in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in group:
            if hasattr(item, "metadata_props"):
                _scrub_props(item.metadata_props)
    if hasattr(graph, "metadata_props"):
        _scrub_props(graph.metadata_props)
    graph.doc_string = relativise(graph.doc_string)


def scrub_onnx(model: Any) -> Any:
    """An onnx.ModelProto without stack traces or absolute paths in its metadata (in place)."""
    _scrub_graph(model.graph)
    for function in model.functions:
        _scrub_graph(function)
    _scrub_props(model.metadata_props)
    return model


def scrub_program(program: Any) -> Any:
    """A torch.export.ExportedProgram without per-node stack traces (in place)."""
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in getattr(graph, "nodes", ()):
            for key in _TRACE_KEYS:
                node.meta.pop(key, None)
    return program
