"""The component's entry module: finds the plugin's Stage subclass in
``stage.py`` and exports it as weir's ``transform`` interface. Part of the
SDK; plugin authors do not edit it."""

import inspect

import stage as _plugin
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Output as _WitOutput

from weir_plugin import Output, Stage

_stages = [
    c
    for c in vars(_plugin).values()
    if inspect.isclass(c) and issubclass(c, Stage) and c is not Stage and c.__module__ == "stage"
]
if len(_stages) != 1:
    raise RuntimeError(
        f"stage.py must define exactly one subclass of weir_plugin.Stage, found {len(_stages)}"
    )
_instance = _stages[0]()


def _refusal(e):
    return Err(str(e) or type(e).__name__)


class Transform(exports.Transform):
    def init(self, config):
        try:
            _instance.init(dict(config))
        except Exception as e:
            raise _refusal(e)

    def process(self, batch):
        out = _instance.process(batch)
        if isinstance(out, Output):
            return _WitOutput(out.events, out.errors)
        return _WitOutput(list(out), [])

    def checkpoint_export(self):
        return bytes(_instance.checkpoint_export() or b"")

    def checkpoint_import(self, state):
        try:
            _instance.checkpoint_import(state)
        except Exception as e:
            raise _refusal(e)
