"""Runs inside Krita (kritarunner -s krita_checks -f run_cases PARAMS.json): each case makes a
document from raw pixels, drives the plug-in's functions against a real `translate serve`, and
writes what came out (raw pixel files and a JSON summary) for tests/test_krita_plugin.py to judge."""
import json
import os
import signal
import threading
import traceback

from krita import Krita, Selection


def _document(case):
    doc = Krita.instance().createDocument(case["width"], case["height"], "check", case["color_model"],
                                          case["depth"], "", 72.0)
    node = doc.topLevelNodes()[0]
    with open(case["input"], "rb") as f:
        node.setPixelData(f.read(), 0, 0, case["width"], case["height"])
    if case.get("selection"):
        x, y, w, h = case["selection"]
        selection = Selection()
        selection.select(x, y, w, h, 255)
        doc.setSelection(selection)
    doc.refreshProjection()
    return doc, node


def _write(path, data):
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


def _run_case(name, case, params):
    from translate_krita import client, document

    doc, node = _document(case)
    listing = client.list_models(case.get("server", params["server"]))
    model = next(m for m in listing["models"] if m["name"] == case["model"])
    seen, cancel = [], threading.Event()

    def progress(done, total):
        seen.append([done, total])
        if case.get("mode") == "cancel":
            cancel.set()
        if case.get("mode") == "kill":
            os.kill(case["pid"], signal.SIGKILL)

    out = {"error": None, "progress": seen}
    width, height = doc.width(), doc.height()
    try:
        made = document.apply_model(doc, node, case.get("server", params["server"]), model,
                                    limits=listing["limits"], progress=progress, cancel=cancel)
    except client.PluginError as e:
        out["error"] = str(e)
        out["error_type"] = type(e).__name__
        made = None
    out["layers"] = [n.name() for n in doc.topLevelNodes()]
    out["source"] = _write(os.path.join(params["out"], name + ".source"), node.pixelData(0, 0, width, height))
    if made is not None and hasattr(made, "topLevelNodes"):  # a new document
        out["doc_size"] = [made.width(), made.height()]
        made_layer = made.topLevelNodes()[0]
        out["result_depth"] = made_layer.colorDepth()
        out["result"] = _write(os.path.join(params["out"], name + ".result"),
                               made_layer.pixelData(0, 0, made.width(), made.height()))
    elif made is not None:
        out["result_depth"] = made.colorDepth()
        out["result_model"] = made.colorModel()
        out["result"] = _write(os.path.join(params["out"], name + ".result"), made.pixelData(0, 0, width, height))
    return out


def run_cases(args):
    """args[0]: a JSON file {"server", "out", "cases": {name: case}}; writes out/results.json."""
    with open(args[0]) as f:
        params = json.load(f)
    results = {}
    for name, case in params["cases"].items():
        try:
            results[name] = _run_case(name, case, params)
        except Exception:  # recorded for the test that owns the case
            results[name] = {"crash": traceback.format_exc()}
    with open(os.path.join(params["out"], "results.json"), "w") as f:
        json.dump(results, f)
