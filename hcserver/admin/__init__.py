"""Admin commands on a store: the Healthchecks importer, keys, projects, checks, JSON dumps.

Each command works offline, on the store of a stopped server (`offline.open_offline`), except
`hcserver checks`, which reads the last commit of a store a server may be using (`offline.read_view`).
"""
