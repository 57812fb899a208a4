"""Whole studies: a validated configuration, the pipeline of stages into one folder, its report, and sweeps."""

from .config import ConfigError, StudyConfig, config_hash, load_config, validate_config
from .pipeline import STAGES, Study, StudyError, run_study

__all__ = ["STAGES", "ConfigError", "Study", "StudyConfig", "StudyError", "config_hash", "load_config", "run_study",
           "validate_config"]
