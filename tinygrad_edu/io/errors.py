"""The one error type for weight files that cannot be used."""


class WeightsError(ValueError):
    """A weights file that is unreadable, of an unknown format, or does not fit the model.

    The message names the file and, where it applies, the layer or key and both shapes.
    """
