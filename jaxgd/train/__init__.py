"""The training driver: :func:`fit` runs an optimizer to a stopping rule on the device."""

from jaxgd.train.fit import fit as fit
from jaxgd.train.fit import lower_fit as lower_fit
from jaxgd.train.loop import trace_count as trace_count
from jaxgd.train.progress import TqdmBar as TqdmBar
from jaxgd.train.result import STOP_REASONS as STOP_REASONS
from jaxgd.train.result import FitResult as FitResult
from jaxgd.train.result import stop_reason_name as stop_reason_name
