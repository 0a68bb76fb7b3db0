"""Assembly: a code location's `Definitions` from its products, with sensors and automation."""
