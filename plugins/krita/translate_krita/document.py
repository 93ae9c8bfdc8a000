"""Document operations: read the layer (or the selection's bounding box), build the mask, and put
the result on a new layer above the source or into a new document. Plain functions a script
inside Krita can call; `prepare` and `finish` touch Krita and run on its UI thread, `translate`
is HTTP only and runs anywhere. The source layer is never changed.

    from translate_krita import document
    job = document.prepare(doc, doc.activeNode(), model_entry)      # model_entry: from GET /models
    png = document.translate("http://127.0.0.1:8000", job)
    new_layer_or_document = document.finish(doc, job, png)
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Optional

from krita import Krita

from . import client, pixels


@dataclass
class Job:
    """One translation read from a document: what to send and where its result goes."""

    model: dict[str, Any]  # the model's entry from GET /models
    node: Any  # the source paint layer
    x: int
    y: int
    width: int
    height: int
    color_model: str
    depth: str
    image: pixels.Rgba
    mask_png: Optional[bytes] = None  # inpainting: the selection, 255 = hole
    max_upload_bytes: Optional[int] = None  # the service's limit (GET /models), for the PNG's compression

    @property
    def scale(self) -> int:
        return int(self.model.get("scale", 1))


def region(doc: Any) -> tuple[int, int, int, int]:
    """(x, y, width, height) to translate: the selection's bounding box within the image, or the image."""
    selection = doc.selection()
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return 0, 0, doc.width(), doc.height()
    x0, y0 = max(0, selection.x()), max(0, selection.y())
    x1 = min(doc.width(), selection.x() + selection.width())
    y1 = min(doc.height(), selection.y() + selection.height())
    if x1 <= x0 or y1 <= y0:
        raise client.PluginError("the selection lies outside the image")
    return x0, y0, x1 - x0, y1 - y0


def check_size(width: int, height: int, model: dict[str, Any], limits: Optional[dict[str, Any]]) -> None:
    """PluginError when the service would refuse the size (its max_pixels counts the output)."""
    max_pixels = (limits or {}).get("max_pixels")
    scale = int(model.get("scale", 1))
    if max_pixels and width * height * scale**2 > max_pixels:
        raise client.PluginError(
            f"image too large: {width}x{height}{f' (x{scale} out)' if scale > 1 else ''} is over the service's "
            f"limit of {max_pixels / 1e6:.4g} megapixels; select a smaller area, or start the service with a "
            f"larger --max-megapixels")


def prepare(doc: Any, node: Any, model: dict[str, Any], limits: Optional[dict[str, Any]] = None) -> Job:
    """Read `node` (a paint layer of `doc`) over the selection's bounding box, or the whole image,
    and for an inpainting model the selection as the mask. UI thread. Raises PluginError."""
    if node is None or node.type() != "paintlayer":
        raise client.PluginError("select a paint layer to translate")
    try:
        pixels.check_layout(node.colorModel(), node.colorDepth())
    except pixels.UnsupportedImage as e:
        raise client.PluginError(str(e)) from None
    x, y, width, height = region(doc)
    check_size(width, height, model, limits)
    mask_png = None
    if model.get("takes_mask"):
        selection = doc.selection()
        if selection is None:
            raise client.PluginError("inpainting fills the selection: select the area to fill first")
        mask_png = pixels.encode_mask_png(bytes(selection.pixelData(x, y, width, height)), width, height)
    data = bytes(node.pixelData(x, y, width, height))
    image = pixels.from_krita(data, width, height, node.colorModel(), node.colorDepth())
    return Job(model, node, x, y, width, height, node.colorModel(), node.colorDepth(), image, mask_png,
               (limits or {}).get("max_upload_bytes"))


def translate(server: str, job: Job, *, progress: Optional[client.Progress] = None,
              cancel: Optional[threading.Event] = None) -> pixels.Rgba:
    """Send the job to the service and decode its answer at the job's depth. Any thread."""
    upload = job.max_upload_bytes - len(job.mask_png or b"") if job.max_upload_bytes else None
    answer = client.run_job(server, job.model["name"], pixels.encode_png(job.image, upload), job.mask_png,
                            progress=progress, cancel=cancel)
    try:
        result = pixels.decode_png(answer, job.image.bits, job.image.alpha)
    except pixels.UnsupportedImage as e:
        raise client.PluginError(str(e)) from None
    expected = (job.width * job.scale, job.height * job.scale)
    if (result.width, result.height) != expected:
        raise client.PluginError(f"the service answered {result.width}x{result.height}, expected "
                                 f"{expected[0]}x{expected[1]}")
    return result


def finish(doc: Any, job: Job, result: pixels.Rgba) -> Any:
    """Put `result` where it belongs (UI thread): a new document for a super-resolution model,
    else a new layer above the source holding the source with the region replaced. Returns it."""
    if job.scale > 1:
        return _new_document(doc, job, result)
    name = f"{job.model['name']} ({job.model.get('task', 'translate')})"
    layer = doc.createNode(name, "paintlayer")
    bounds = doc.width(), doc.height()
    layer.setPixelData(job.node.pixelData(0, 0, *bounds), 0, 0, *bounds)
    layer.setPixelData(pixels.to_krita(result, job.color_model), job.x, job.y, job.width, job.height)
    parent = job.node.parentNode() or doc.rootNode()
    parent.addChildNode(layer, job.node)  # just above the source
    doc.refreshProjection()
    return layer


def _new_document(doc: Any, job: Job, result: pixels.Rgba) -> Any:
    """The result as a new document of the scaled size, shown in the active window when there is one."""
    app = Krita.instance()
    name = f"{doc.name() or 'image'} x{job.scale} ({job.model['name']})"
    new = app.createDocument(result.width, result.height, name, job.color_model, job.depth,
                             doc.colorProfile(), doc.resolution() * job.scale)
    layer = new.topLevelNodes()[0]
    layer.setName(job.model["name"])
    layer.setPixelData(pixels.to_krita(result, job.color_model), 0, 0, result.width, result.height)
    new.refreshProjection()
    window = app.activeWindow()
    if window is not None:
        window.addView(new)
    return new


def apply_model(doc: Any, node: Any, server: str, model: dict[str, Any], *,
                limits: Optional[dict[str, Any]] = None, progress: Optional[client.Progress] = None,
                cancel: Optional[threading.Event] = None) -> Any:
    """prepare, translate and finish in one call (blocks the calling thread: for scripts)."""
    job = prepare(doc, node, model, limits)
    return finish(doc, job, translate(server, job, progress=progress, cancel=cancel))
