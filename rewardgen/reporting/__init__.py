"""What people read: the terminal UI, report.html, plots, sweep tables, videos and the exported package."""
