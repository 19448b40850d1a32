"""The walkthrough notebooks. A package only so that pytest imports notebooks/conftest.py as
``notebooks.conftest``, apart from tests/conftest.py (which the tests import as ``conftest``)."""
