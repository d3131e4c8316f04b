"""jaxgd: gradient-descent optimizers for JAX.

Every optimizer is a pure ``init`` / ``update`` pair, structurally the same as optax's,
assembled from small building blocks; hyperparameters live in the optimizer state so
that they can be swept with ``jax.vmap`` and changed without recompiling.
"""

from jaxgd import losses as losses
from jaxgd import problems as problems
from jaxgd import schedules as schedules
from jaxgd.core.base import EmptyState as EmptyState
from jaxgd.core.base import GradientTransformation as GradientTransformation
from jaxgd.core.base import OptState as OptState
from jaxgd.core.base import Params as Params
from jaxgd.core.base import Updates as Updates
from jaxgd.core.base import apply_updates as apply_updates
from jaxgd.core.base import chain as chain
from jaxgd.core.base import identity as identity
from jaxgd.core.hyperparam_state import InjectHyperparamsState as InjectHyperparamsState
from jaxgd.core.hyperparam_state import get_hyperparams as get_hyperparams
from jaxgd.core.hyperparam_state import set_hyperparams as set_hyperparams
from jaxgd.core.hyperparams import hyperparam_names as hyperparam_names
from jaxgd.core.hyperparams import inject_hyperparams as inject_hyperparams
from jaxgd.core.tree import global_norm as global_norm
from jaxgd.optimizers.adam_family import adabelief as adabelief
from jaxgd.optimizers.adam_family import adadelta as adadelta
from jaxgd.optimizers.adam_family import adamax as adamax
from jaxgd.optimizers.adam_family import adamaxw as adamaxw
from jaxgd.optimizers.adam_family import adamw as adamw
from jaxgd.optimizers.adam_family import amsgrad as amsgrad
from jaxgd.optimizers.adam_family import lion as lion
from jaxgd.optimizers.adam_family import nadam as nadam
from jaxgd.optimizers.adam_family import nadamw as nadamw
from jaxgd.optimizers.adam_family import radam as radam
from jaxgd.optimizers.adam_family import yogi as yogi
from jaxgd.optimizers.adaptive import adagrad as adagrad
from jaxgd.optimizers.adaptive import adam as adam
from jaxgd.optimizers.adaptive import rmsprop as rmsprop
from jaxgd.optimizers.ademamix import ademamix as ademamix
from jaxgd.optimizers.ademamix import simplified_ademamix as simplified_ademamix
from jaxgd.optimizers.adopt import adopt as adopt
from jaxgd.optimizers.catalog import OPTIMIZERS as OPTIMIZERS
from jaxgd.optimizers.first_order import noisy_sgd as noisy_sgd
from jaxgd.optimizers.first_order import optimistic_gradient_descent as optimistic_gradient_descent
from jaxgd.optimizers.first_order import polyak_sgd as polyak_sgd
from jaxgd.optimizers.first_order import rprop as rprop
from jaxgd.optimizers.first_order import sign_sgd as sign_sgd
from jaxgd.optimizers.layerwise import fromage as fromage
from jaxgd.optimizers.layerwise import lamb as lamb
from jaxgd.optimizers.layerwise import lars as lars
from jaxgd.optimizers.layerwise import novograd as novograd
from jaxgd.optimizers.madgrad import madgrad as madgrad
from jaxgd.optimizers.memory_efficient import adafactor as adafactor
from jaxgd.optimizers.memory_efficient import sm3 as sm3
from jaxgd.optimizers.muon import muon as muon
from jaxgd.optimizers.parameter_free import cocob as cocob
from jaxgd.optimizers.parameter_free import dadapt_adamw as dadapt_adamw
from jaxgd.optimizers.parameter_free import dog as dog
from jaxgd.optimizers.parameter_free import dowg as dowg
from jaxgd.optimizers.parameter_free import prodigy as prodigy
from jaxgd.optimizers.quasi_newton import lbfgs as lbfgs
from jaxgd.optimizers.schedule_free import schedule_free_adamw as schedule_free_adamw
from jaxgd.optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd
from jaxgd.optimizers.second_order import newton as newton
from jaxgd.optimizers.sgd import momentum as momentum
from jaxgd.optimizers.sgd import nesterov as nesterov
from jaxgd.optimizers.sgd import sgd as sgd
from jaxgd.optimizers.sophia import sophia as sophia
from jaxgd.schedules import constant_schedule as constant_schedule
from jaxgd.schedules import cosine_decay_schedule as cosine_decay_schedule
from jaxgd.schedules import cosine_onecycle_schedule as cosine_onecycle_schedule
from jaxgd.schedules import exponential_decay as exponential_decay
from jaxgd.schedules import join_schedules as join_schedules
from jaxgd.schedules import linear_onecycle_schedule as linear_onecycle_schedule
from jaxgd.schedules import linear_schedule as linear_schedule
from jaxgd.schedules import piecewise_constant_schedule as piecewise_constant_schedule
from jaxgd.schedules import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from jaxgd.schedules import polynomial_schedule as polynomial_schedule
from jaxgd.schedules import sgdr_schedule as sgdr_schedule
from jaxgd.schedules import warmup_constant_schedule as warmup_constant_schedule
from jaxgd.schedules import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from jaxgd.schedules import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
from jaxgd.sweep import LRFindError as LRFindError
from jaxgd.sweep import LRFindResult as LRFindResult
from jaxgd.sweep import PathsResult as PathsResult
from jaxgd.sweep import SweepResult as SweepResult
from jaxgd.sweep import lr_find as lr_find
from jaxgd.sweep import optimizer_paths as optimizer_paths
from jaxgd.sweep import sweep as sweep
from jaxgd.train import STOP_REASONS as STOP_REASONS
from jaxgd.train import FitResult as FitResult
from jaxgd.train import fit as fit
from jaxgd.train import lower_fit as lower_fit
from jaxgd.transforms.adadelta import ScaleByAdaDeltaState as ScaleByAdaDeltaState
from jaxgd.transforms.adadelta import scale_by_adadelta as scale_by_adadelta
from jaxgd.transforms.adaptive import ScaleByAdagradState as ScaleByAdagradState
from jaxgd.transforms.adaptive import ScaleByAdamState as ScaleByAdamState
from jaxgd.transforms.adaptive import ScaleByRmsState as ScaleByRmsState
from jaxgd.transforms.adaptive import ScaleByStddevState as ScaleByStddevState
from jaxgd.transforms.adaptive import scale_by_adagrad as scale_by_adagrad
from jaxgd.transforms.adaptive import scale_by_adam as scale_by_adam
from jaxgd.transforms.adaptive import scale_by_rms as scale_by_rms
from jaxgd.transforms.adaptive import scale_by_stddev as scale_by_stddev
from jaxgd.transforms.ademamix import ScaleByAdemamixState as ScaleByAdemamixState
from jaxgd.transforms.ademamix import (
    ScaleBySimplifiedAdEMAMixState as ScaleBySimplifiedAdEMAMixState,
)
from jaxgd.transforms.ademamix import scale_by_ademamix as scale_by_ademamix
from jaxgd.transforms.ademamix import (
    scale_by_simplified_ademamix as scale_by_simplified_ademamix,
)
from jaxgd.transforms.adopt import scale_by_adopt as scale_by_adopt
from jaxgd.transforms.block_rms import clip_by_block_rms as clip_by_block_rms
from jaxgd.transforms.block_rms import scale_by_param_block_rms as scale_by_param_block_rms
from jaxgd.transforms.clipping import clip as clip
from jaxgd.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from jaxgd.transforms.cocob import COCOBState as COCOBState
from jaxgd.transforms.cocob import scale_by_cocob as scale_by_cocob
from jaxgd.transforms.dog import DoGState as DoGState
from jaxgd.transforms.dog import DoWGState as DoWGState
from jaxgd.transforms.dog import scale_by_dog as scale_by_dog
from jaxgd.transforms.dog import scale_by_dowg as scale_by_dowg
from jaxgd.transforms.ema import EmaState as EmaState
from jaxgd.transforms.ema import ema as ema
from jaxgd.transforms.factored import FactoredState as FactoredState
from jaxgd.transforms.factored import scale_by_factored_rms as scale_by_factored_rms
from jaxgd.transforms.lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from jaxgd.transforms.lbfgs import scale_by_lbfgs as scale_by_lbfgs
from jaxgd.transforms.linesearch import BacktrackingInfo as BacktrackingInfo
from jaxgd.transforms.linesearch import (
    ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState,
)
from jaxgd.transforms.linesearch import (
    scale_by_backtracking_linesearch as scale_by_backtracking_linesearch,
)
from jaxgd.transforms.lion import ScaleByLionState as ScaleByLionState
from jaxgd.transforms.lion import scale_by_lion as scale_by_lion
from jaxgd.transforms.lookahead import LookaheadState as LookaheadState
from jaxgd.transforms.lookahead import lookahead as lookahead
from jaxgd.transforms.lookahead import slow_params as slow_params
from jaxgd.transforms.madgrad import MadgradState as MadgradState
from jaxgd.transforms.madgrad import scale_by_madgrad as scale_by_madgrad
from jaxgd.transforms.masking import MaskedNode as MaskedNode
from jaxgd.transforms.masking import MaskedState as MaskedState
from jaxgd.transforms.masking import PartitionState as PartitionState
from jaxgd.transforms.masking import masked as masked
from jaxgd.transforms.masking import partition as partition
from jaxgd.transforms.mechanic import MechanicState as MechanicState
from jaxgd.transforms.mechanic import mechanize as mechanize
from jaxgd.transforms.moments import ScaleByAmsgradState as ScaleByAmsgradState
from jaxgd.transforms.moments import ScaleByBeliefState as ScaleByBeliefState
from jaxgd.transforms.moments import scale_by_adamax as scale_by_adamax
from jaxgd.transforms.moments import scale_by_amsgrad as scale_by_amsgrad
from jaxgd.transforms.moments import scale_by_belief as scale_by_belief
from jaxgd.transforms.moments import scale_by_radam as scale_by_radam
from jaxgd.transforms.moments import scale_by_yogi as scale_by_yogi
from jaxgd.transforms.momentum import TraceState as TraceState
from jaxgd.transforms.momentum import trace as trace
from jaxgd.transforms.muon import MuonDimensionNumbers as MuonDimensionNumbers
from jaxgd.transforms.muon import MuonState as MuonState
from jaxgd.transforms.muon import scale_by_muon as scale_by_muon
from jaxgd.transforms.newton import scale_by_newton as scale_by_newton
from jaxgd.transforms.noise import AddNoiseState as AddNoiseState
from jaxgd.transforms.noise import add_noise as add_noise
from jaxgd.transforms.novograd import ScaleByNovogradState as ScaleByNovogradState
from jaxgd.transforms.novograd import scale_by_novograd as scale_by_novograd
from jaxgd.transforms.optimistic import (
    ScaleByOptimisticGradientState as ScaleByOptimisticGradientState,
)
from jaxgd.transforms.optimistic import scale_by_optimistic_gradient as scale_by_optimistic_gradient
from jaxgd.transforms.params_average import ParamsAverageState as ParamsAverageState
from jaxgd.transforms.params_average import params_average_init as params_average_init
from jaxgd.transforms.params_average import params_ema_update as params_ema_update
from jaxgd.transforms.params_average import params_swa_update as params_swa_update
from jaxgd.transforms.plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from jaxgd.transforms.plateau import reduce_on_plateau as reduce_on_plateau
from jaxgd.transforms.polyak import scale_by_polyak as scale_by_polyak
from jaxgd.transforms.rprop import ScaleByRpropState as ScaleByRpropState
from jaxgd.transforms.rprop import scale_by_rprop as scale_by_rprop
from jaxgd.transforms.scaling import ScaleByScheduleState as ScaleByScheduleState
from jaxgd.transforms.scaling import scale as scale
from jaxgd.transforms.scaling import scale_by_learning_rate as scale_by_learning_rate
from jaxgd.transforms.scaling import scale_by_schedule as scale_by_schedule
from jaxgd.transforms.schedule_free import ScheduleFreeState as ScheduleFreeState
from jaxgd.transforms.schedule_free import schedule_free as schedule_free
from jaxgd.transforms.schedule_free import (
    schedule_free_eval_params as schedule_free_eval_params,
)
from jaxgd.transforms.sign import scale_by_sign as scale_by_sign
from jaxgd.transforms.sm3 import ScaleBySM3State as ScaleBySM3State
from jaxgd.transforms.sm3 import scale_by_sm3 as scale_by_sm3
from jaxgd.transforms.sophia import HutchinsonState as HutchinsonState
from jaxgd.transforms.sophia import SophiaState as SophiaState
from jaxgd.transforms.sophia import (
    hutchinson_estimator_diag_hessian as hutchinson_estimator_diag_hessian,
)
from jaxgd.transforms.sophia import scale_by_sophia as scale_by_sophia
from jaxgd.transforms.trust_ratio import scale_by_trust_ratio as scale_by_trust_ratio
from jaxgd.transforms.weight_decay import add_decayed_weights as add_decayed_weights
from jaxgd.transforms.wrappers import AccumulateGradientsState as AccumulateGradientsState
from jaxgd.transforms.wrappers import ApplyIfFiniteState as ApplyIfFiniteState
from jaxgd.transforms.wrappers import accumulate_gradients as accumulate_gradients
from jaxgd.transforms.wrappers import apply_if_finite as apply_if_finite

__version__ = "0.1.0"
