"""Beyond one machine: hyper-parameter search on local processes or a Dask cluster (above the engine and io)."""
