"""Learning-rate schedules: functions mapping a step count to a value, matching optax 0.2.8."""

from jaxgd.schedules.decay import constant_schedule as constant_schedule
from jaxgd.schedules.decay import cosine_decay_schedule as cosine_decay_schedule
from jaxgd.schedules.decay import exponential_decay as exponential_decay
from jaxgd.schedules.decay import linear_schedule as linear_schedule
from jaxgd.schedules.decay import piecewise_constant_schedule as piecewise_constant_schedule
from jaxgd.schedules.decay import polynomial_schedule as polynomial_schedule
from jaxgd.schedules.interpolate import cosine_onecycle_schedule as cosine_onecycle_schedule
from jaxgd.schedules.interpolate import linear_onecycle_schedule as linear_onecycle_schedule
from jaxgd.schedules.interpolate import (
    piecewise_interpolate_schedule as piecewise_interpolate_schedule,
)
from jaxgd.schedules.join import join_schedules as join_schedules
from jaxgd.schedules.join import sgdr_schedule as sgdr_schedule
from jaxgd.schedules.join import warmup_constant_schedule as warmup_constant_schedule
from jaxgd.schedules.join import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from jaxgd.schedules.join import (
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)
