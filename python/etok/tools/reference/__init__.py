"""etok's PyTorch reference of ElasticTok: config, model, FSQ, the official checkpoint format and
safetensors I/O. Needs the `tools` extra (torch, safetensors, msgpack)."""
