"""Console entry points (Hydra apps): each validates the config, builds an executor and calls the search, then the final phase."""
