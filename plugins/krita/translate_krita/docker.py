"""The docker: a thin UI over `client` and `document`. Network work runs on a worker thread; a
timer on the UI thread shows its progress and, when it ends, puts the result into the document.
Every error ends as one line in the docker, never in Krita's Python console."""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from krita import DockWidget, Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import (
    QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)

from . import client, document

TITLE = "translate"


class Background:
    """`work(self)` on a worker thread (it may call `report` and watch `cancel`); `done` says it ended."""

    def __init__(self, work: Callable[["Background"], Any]) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.progress = (0, 0)
        self.cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[["Background"], Any]) -> None:
        try:
            self.result = work(self)
        except BaseException as e:  # noqa: BLE001 - shown in the docker, never lost
            self.error = e
        finally:
            self.done.set()

    def report(self, done: int, total: int) -> None:
        self.progress = (done, total)


def message(error: BaseException) -> str:
    """One line for the docker."""
    if isinstance(error, client.PluginError):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}"


class TranslateDocker(DockWidget):
    """Server address, model list, the chosen model's task and scale, Apply, progress, Cancel, last error."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(TITLE)
        self.models: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, Any] = {}
        self.work: Optional[Background] = None
        self.on_done: Optional[Callable[[Any], None]] = None
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.poll)
        QTimer.singleShot(0, self.refresh)

    def _build(self) -> None:
        root = QWidget(self)
        self.server = QLineEdit(client.DEFAULT_SERVER)
        self.refresh_button = QPushButton("Refresh")
        self.model = QComboBox()
        self.about = QLabel("")
        self.apply_button, self.cancel_button = QPushButton("Apply"), QPushButton("Cancel")
        self.bar = QProgressBar()
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        server_row = QHBoxLayout()
        server_row.addWidget(self.server)
        server_row.addWidget(self.refresh_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.cancel_button)
        form = QFormLayout()
        form.addRow("Server", server_row)
        form.addRow("Model", self.model)
        form.addRow("", self.about)
        layout = QVBoxLayout(root)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.setWidget(root)
        self.refresh_button.clicked.connect(self.refresh)
        self.model.currentTextChanged.connect(self.show_model)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.cancel)
        self.set_busy(False)

    def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 - Krita's name
        pass

    # ------------------------------------------------------------ actions
    def refresh(self) -> None:
        server = self.server.text().strip()
        self.start(lambda job: client.list_models(server), self.models_loaded)

    def models_loaded(self, answer: dict[str, Any]) -> None:
        self.models = {entry["name"]: entry for entry in answer.get("models", [])}
        self.limits = answer.get("limits", {})
        current = self.model.currentText()
        self.model.clear()
        self.model.addItems(list(self.models))
        if current in self.models:
            self.model.setCurrentText(current)

    def show_model(self, name: str) -> None:
        entry = self.models.get(name)
        if entry is None:
            self.about.setText("")
            return
        mask = ", fills the selection" if entry.get("takes_mask") else ""
        self.about.setText(f"task {entry.get('task')}, scale x{entry.get('scale', 1)}{mask}")

    def apply(self) -> None:
        entry = self.models.get(self.model.currentText())
        doc = Krita.instance().activeDocument()
        if entry is None or doc is None:
            self.error.setText("open a document and choose a model (Refresh lists the service's models)")
            return
        try:
            job = document.prepare(doc, doc.activeNode(), entry, self.limits)
        except Exception as e:  # noqa: BLE001 - one line in the docker
            self.error.setText(message(e))
            return
        server = self.server.text().strip()
        self.start(lambda work: document.translate(server, job, progress=work.report, cancel=work.cancel),
                   lambda result: document.finish(doc, job, result))

    def cancel(self) -> None:
        if self.work is not None:
            self.work.cancel.set()

    # ------------------------------------------------------------ the worker
    def start(self, work: Callable[[Background], Any], on_done: Callable[[Any], None]) -> None:
        if self.work is not None:
            return
        self.error.setText("")
        self.work = Background(work)
        self.on_done = on_done
        self.set_busy(True)
        self.timer.start()

    def poll(self) -> None:
        work = self.work
        if work is None:
            return
        done, total = work.progress
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        if not work.done.is_set():
            return
        self.timer.stop()
        self.work = None
        self.set_busy(False)
        try:
            if work.error is not None:
                raise work.error
            self.on_done(work.result)
            self.bar.setValue(self.bar.maximum())  # done: a full bar until the next Apply
        except client.JobCancelled:
            self.error.setText("cancelled; the document is as it was")
        except Exception as e:  # noqa: BLE001 - one line in the docker
            self.error.setText(message(e))

    def set_busy(self, busy: bool) -> None:
        self.apply_button.setEnabled(not busy)
        self.refresh_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
