"""etok's PyTorch reference of ElasticTok (model, FSQ, safetensors I/O, fixtures)."""
