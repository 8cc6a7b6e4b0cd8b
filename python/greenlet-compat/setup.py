"""The one thing pyproject.toml cannot say: greenlet.h also goes to the wheel's `headers` scheme."""

from setuptools import setup

setup(headers=["greenlet/greenlet.h"])
