"""The run directory: records that cross the process boundary, atomic writes and hostile-file
reading, the store (events, lock, recovery) and stored trajectories."""
