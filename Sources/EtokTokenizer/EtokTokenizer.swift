// EtokTokenizer module: see Package.swift for where it sits in the module graph.
