"""One module per noun of `mlops`: model, deploy, batch, pipeline."""
