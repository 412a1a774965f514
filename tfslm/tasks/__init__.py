"""Task types: one file per ``model.problem_type``, each a registered :class:`~tfslm.tasks.base.Task` subclass.

``Task(problem_type=...)``, ``Task.from_config(cfg)``, ``Task.from_dict(d)`` and
``Task.load(run_dir)`` return the registered class; :func:`problem_types`
lists them. Importing this package registers every task type.

Example:
    >>> from tfslm.tasks import Task, problem_types
    >>> type(Task(problem_type="ordinal")).__name__, "regression" in problem_types()
    ('OrdinalTask', True)
"""

from tfslm.tasks.base import (
    CLASSIFICATION,
    MULTI_TARGET,
    ORDINAL,
    REGRESSION,
    TASK_FILE,
    Task,
    band_label_space,
    parse_number_list,
    problem_types,
    register,
    task_class,
)
from tfslm.tasks.classification import ClassificationTask
from tfslm.tasks.ordinal import OrdinalTask
from tfslm.tasks.regression import RegressionTask
from tfslm.tasks.multi_target import MultiTargetTask
from tfslm.tasks.multi_label import MULTI_LABEL, MultiLabelTask

__all__ = [
    "Task", "CLASSIFICATION", "ORDINAL", "REGRESSION", "MULTI_TARGET", "TASK_FILE", "parse_number_list", "band_label_space",
    "register", "task_class", "problem_types",
    "ClassificationTask", "OrdinalTask", "RegressionTask", "MultiTargetTask", "MultiLabelTask", "MULTI_LABEL",
]
