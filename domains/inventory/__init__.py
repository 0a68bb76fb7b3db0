"""The inventory domain: the product catalogue and what every store holds."""
