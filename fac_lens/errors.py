"""The one exception type fac_lens raises for bad input."""


class FacLensError(ValueError):
    """Bad input to a fac_lens call.

    The message names the problem and the fix. Raised before anything is changed: the model
    and any stored result are left as they were.
    """
