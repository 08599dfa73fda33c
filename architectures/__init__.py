"""Registered variants and ablation grids (installed as ``hrbench.architectures``): each module
declares configurations (never model code) by name.

Every public module here is imported by :func:`hrbench.registry._load` at the first lookup and
registers its variants with :func:`hrbench.registry.register_model` and its grids with
:func:`hrbench.registry.register_grid`.
"""
