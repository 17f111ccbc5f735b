"""The admin tuning UI's pages (registered by ``recsys.admin`` under the recsys app section)."""
