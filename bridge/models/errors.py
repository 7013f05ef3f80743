"""The one error every model loader raises: it names the file and the fix."""


class ModelFileError(Exception):
    """A model file is missing, corrupt or unloadable; the message says which and what to do."""
