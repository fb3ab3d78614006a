"""etok against the official ElasticTok JAX code, side by side (Tools/official/bench.sh; BENCHMARKS.md
"etok against the official JAX code"). `etok-tools official NAME` runs to_official, same_tensors
and compare; `run` drives the official code and runs only inside the JAX venv, as
`python -m etok.tools.official.run` with the official code on PYTHONPATH. `search` is etok's
budget searches in plain Python, which `run` uses over the official forward."""
