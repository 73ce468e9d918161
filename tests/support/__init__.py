"""Test doubles the suite runs the product against (test code, never imported by the product)."""
