"""The errors a user can mend, shown by the scripts as one line instead of a traceback (light to
import: no torch, no transformers)."""


class UsageError(ValueError):
    """A command line, config or grid file that a script cannot use; the message says what to change.
    From the command line it is one line on standard error, not a traceback."""


def is_input_error(error: BaseException) -> bool:
    """A usage error, or an input the readers refused with a message that names the file (and line)
    or the image and says what to fix: an input file or folder that is not there, a corpus, context
    or examples file not in its format, images a corpus names that are not there, images without a
    context, an image that cannot be read."""
    from processing.context_store import MissingContextError
    from processing.corpora.base import MissingImageError
    from processing.images import ImageReadError
    from processing.input_files import FileFormatError, InputFileNotFoundError

    known = (
        UsageError,
        FileFormatError,
        InputFileNotFoundError,
        MissingImageError,
        MissingContextError,
        ImageReadError,
    )
    return isinstance(error, known)
