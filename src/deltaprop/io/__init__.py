"""Reading and writing: data sets, blocks of rows on disk, model files, checkpoints, input scaling."""
