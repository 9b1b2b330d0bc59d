"""Rendering and the runner of the vision methods (VLM-RM, RL-VLM-F)."""
