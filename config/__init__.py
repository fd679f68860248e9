"""Typed, validated per-environment configuration (config/<env>.yaml)."""

from config.settings import ENVIRONMENTS, ConfigError, EnvironmentConfig, load_environment, load_environments

__all__ = ["ENVIRONMENTS", "ConfigError", "EnvironmentConfig", "load_environment", "load_environments"]
