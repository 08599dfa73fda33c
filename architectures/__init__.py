"""Registered variants: each module declares configurations (never model code) by name.

Every ``*.py`` here is imported by :func:`hrbench.registry._load` and registers its variants
with :func:`hrbench.registry.register_model`.
"""
