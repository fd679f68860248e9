"""Typed, validated per-environment configuration (config/<env>.yaml)."""

from config.settings import ENVIRONMENTS, ConfigError, EnvironmentConfig, load_environment

__all__ = ["ENVIRONMENTS", "ConfigError", "EnvironmentConfig", "load_environment"]
