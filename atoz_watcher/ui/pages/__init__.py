"""The page modules: each has ``router(parts, web) -> APIRouter`` (see ``ui.app.PAGES``)."""
