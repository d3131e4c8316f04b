"""Building blocks: small transformations that optimizers are assembled from."""
