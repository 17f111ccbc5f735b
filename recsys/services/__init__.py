"""Writes of the recsys app. Views, consumers, tasks, commands and admin actions call these."""
