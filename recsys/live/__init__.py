"""Live push, above the engine: who listens (``presence``), every cache key name (``keys``),
numbered lists and the list cache (``lists``), per-visitor push state (``pushstate``), the
decision to push and the pushes (``push``), and the channel-layer send (``layer``)."""
