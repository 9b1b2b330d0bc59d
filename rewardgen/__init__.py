"""rewardgen: language-model reward design for robot learning."""

__version__ = "0.1.0"
