"""The models' exceptions, in their own module so the payload codec and the signature check
(which base.py uses to save) can raise them without importing base.py."""

from __future__ import annotations


class ModelError(Exception):
    """A model that cannot be trained, saved or loaded; the message names it and the fix."""


class SchemaError(ModelError):
    """The model's feature schema is not one this build computes."""


class ChecksumError(ModelError):
    """The model file does not match the checksum in its metadata."""


class SignatureError(ModelError):
    """The model's metadata is unsigned or not signed with this key: nothing of it is loaded."""
