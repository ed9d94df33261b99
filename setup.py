"""Builds the compiled part of the package; all metadata is in pyproject.toml.

The cffi extension agent._libbpf_cffi (the libbpf binding, API mode) is
generated from agent/libbpf/_build.py.
"""

from setuptools import setup

setup(cffi_modules=["agent/libbpf/_build.py:ffibuilder"])
