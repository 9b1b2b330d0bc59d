"""Reward programs and the wrappers that apply them to gymnasium envs."""
