"""Tasks: the spec (envs/*.yaml), the State view the LLM reads, and the trusted fitness."""
