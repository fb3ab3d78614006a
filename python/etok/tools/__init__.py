"""etok's Python tools, one command: `etok-tools` (or `python3 -m etok.tools`); see cli.py for the
list. Subpackages: reference (the PyTorch reference model and file formats), data (datasets),
bench (benchmarks), official (the side by side with the official JAX code, Tools/official/).
Most need the `tools` extra (torch, safetensors, msgpack), imported only by the commands that use
them: `import etok` stays numpy-only."""
