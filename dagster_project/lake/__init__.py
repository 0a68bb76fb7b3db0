"""The lake: Delta tables through delta-rs, landing files, the mesh's Dagster resource."""
