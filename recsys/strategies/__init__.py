"""Recommendation strategies: plugins behind one small interface (see ``base``)."""
