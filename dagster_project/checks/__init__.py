"""Checks: contract rules, shared policies, PII, quality detectors and drift."""
