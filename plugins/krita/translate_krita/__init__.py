"""translate for Krita: a docker that sends the active layer (or the selection) to a local
`translate serve` and puts the result on a new layer. Standard library and PyQt5 only.

Modules: `client` (HTTP: models, the job API), `pixels` (Krita's pixel layouts <-> PNG),
`document` (read the layer or selection, add the result layer or document), `docker` (the UI).
"""
try:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita
except ImportError:  # imported outside Krita (the benchmark uses client and pixels only)
    Krita = None

if Krita is not None:
    from .docker import TranslateDocker

    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory("translate_docker", DockWidgetFactoryBase.DockRight, TranslateDocker))
