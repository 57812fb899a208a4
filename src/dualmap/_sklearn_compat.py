"""The one place where dualmap imports scikit-learn's private helpers (parameter validation)."""

from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: F401
