"""The sales domain: stores, every order line, and what sold each day."""
