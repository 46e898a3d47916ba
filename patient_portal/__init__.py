"""The portal: Tsunagu's composition root (app factory, settings, CLI, pages, API, jobs)."""

__all__: list[str] = []
